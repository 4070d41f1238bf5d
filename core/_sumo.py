"""Locate and run SUMO's binaries and tools through the installed ``eclipse-sumo`` package.

Nothing here needs a preset ``SUMO_HOME`` or a system SUMO: the PyPI package knows its own
location. A ``SUMO_HOME`` that the user did set is honoured only when it really holds SUMO.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from greenwave.errors import SimulationError, SumoNotFoundError


@lru_cache(maxsize=1)
def sumo_home() -> Path:
    """Return the SUMO installation folder (the one holding ``bin/`` and ``tools/``)."""
    try:
        import sumo  # the eclipse-sumo wheel
    except ImportError:
        sumo = None
    candidates: list[Path] = []
    if sumo is not None:
        candidates.append(Path(sumo.SUMO_HOME))
    if os.environ.get("SUMO_HOME"):
        candidates.append(Path(os.environ["SUMO_HOME"]))
    for home in candidates:
        if (home / "bin").is_dir() and (home / "tools").is_dir():
            return home
    raise SumoNotFoundError(
        "SUMO was not found: install it from PyPI with `pip install eclipse-sumo` "
        f"(looked in: {', '.join(str(c) for c in candidates) or 'no candidate'})"
    )


def sumo_binary(name: str) -> str:
    """Return the path of a SUMO executable such as ``sumo``, ``netconvert`` or ``sumo-gui``."""
    exe = sumo_home() / "bin" / (name + (".exe" if sys.platform == "win32" else ""))
    if not exe.exists():
        raise SumoNotFoundError(f"SUMO executable {name!r} not found at {exe}")
    return str(exe)


def sumo_tool(relative: str) -> Path:
    """Return the path of a script under SUMO's ``tools/`` folder, e.g. ``tlsCycleAdaptation.py``."""
    path = sumo_home() / "tools" / relative
    if not path.exists():
        raise SumoNotFoundError(f"SUMO tool {relative!r} not found at {path}")
    return path


def tool_env() -> dict[str, str]:
    """Environment for SUMO subprocesses: ``SUMO_HOME`` pointing at the installed package."""
    env = dict(os.environ)
    env["SUMO_HOME"] = str(sumo_home())
    return env


def run_sumo_command(
    args: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = 600.0,
) -> subprocess.CompletedProcess[str]:
    """Run a SUMO binary or tool; on failure raise :class:`SimulationError` with what it said.

    ``args[0]`` may be a binary name (``"netconvert"``) or a tool script (``*.py``, run with the
    current interpreter). ``what`` describes the step for the error message.
    """
    argv = [str(a) for a in args]
    if argv[0].endswith(".py"):
        argv = [sys.executable, *argv]
    elif os.sep not in argv[0]:
        argv[0] = sumo_binary(argv[0])
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise SimulationError(f"{what}: timed out after {timeout} s running {' '.join(argv)}") from exc
    if proc.returncode != 0:
        said = (proc.stderr.strip() or proc.stdout.strip())[-4000:]
        raise SimulationError(
            f"{what} failed (exit {proc.returncode}) running {' '.join(argv)}\nSUMO said:\n{said}"
        )
    return proc
