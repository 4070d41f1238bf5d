"""The distribution installs one package, greenwave, with the user's folders as subpackages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_holds_only_greenwave(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, text=True)
    (wheel,) = tmp_path.glob("greenwave-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"greenwave", next(t for t in tops if t.endswith(".dist-info"))}
    for sub in ("engine", "networks", "controllers", "controllers/plans", "controllers/export", "parking", "scenarios"):
        assert f"greenwave/{sub}/__init__.py" in names
    assert "greenwave/scenarios/bundled/grid4_moderate.toml" in names
    assert "greenwave/py.typed" in names  # PEP 561: type checkers read greenwave's annotations
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "greenwave = greenwave.scenarios.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
