"""The command line as an engineer uses it (the installed console script, real SUMO)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from greenwave.scenarios.cli import main


def test_console_script_is_installed() -> None:
    exe = shutil.which("greenwave")
    assert exe is not None
    out = subprocess.run([exe, "scenarios"], capture_output=True, text=True, check=True).stdout
    assert "grid4_moderate" in out and "(default)" in out and "arterial6" in out


def test_run_small_scenario(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    toml = tmp_path / "tiny.toml"
    toml.write_text(
        'name = "tiny"\nduration_s = 300\ncontrollers = ["static", "sumo-webster"]\n'
        '[network]\ngenerator = "grid"\nrows = 2\ncols = 2\n[demand]\nentry_vph = 250\n'
    )
    assert main(["run", str(toml), "--jobs", "1", "--output", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "static" in captured.out and "sumo-webster" in captured.out
    assert "[2/2]" in captured.err  # progress
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert sorted(summary.controller) == ["static", "sumo-webster"]


def test_bad_scenario_is_a_clear_error(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text('duration_s = 300\ncolor = "red"\n[network]\ngenerator = "grid"\nrows = 2\ncols = 2\n'
                    "[demand]\nentry_vph = 250\n")
    proc = subprocess.run([sys.executable, "-m", "greenwave.scenarios.cli", "run", str(toml)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "greenwave: error:" in proc.stderr and "'color'" in proc.stderr and str(toml) in proc.stderr
    assert "Traceback" not in proc.stderr
