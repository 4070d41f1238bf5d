"""The command line as an engineer uses it (the installed console script, real SUMO)."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest

from greenwave.scenarios.cli import main
from tests.test_interrupts import default_sigint


def console_script() -> str:
    """The ``greenwave`` script that installing greenwave put beside this interpreter: where pip puts
    console scripts of this environment, whether or not that folder is on PATH (an unactivated venv)."""
    exe = Path(sysconfig.get_path("scripts")) / ("greenwave.exe" if sys.platform == "win32" else "greenwave")
    assert exe.is_file(), f"the console script is not installed at {exe}"
    return str(exe)


@pytest.mark.slow
def test_console_script_is_installed() -> None:
    exe = console_script()
    out = subprocess.run([exe, "scenarios"], capture_output=True, text=True, check=True).stdout
    assert "grid4_moderate" in out and "(default)" in out and "arterial6" in out


@pytest.mark.slow
def test_run_small_scenario(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    toml = tmp_path / "tiny.toml"
    toml.write_text(
        'name = "tiny"\nduration_s = 300\ncontrollers = ["static", "sumo-webster"]\n'
        '[network]\ngenerator = "grid"\nrows = 2\ncols = 2\n[demand]\nentry_vph = 250\n'
    )
    assert main(["run", str(toml), "--jobs", "1", "--output", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "static" in captured.out and "sumo-webster" in captured.out
    assert "vs_best_baseline" in captured.out and "best baseline (*): " in captured.out
    assert "[2/2]" in captured.err  # progress
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert sorted(summary.controller) == ["static", "sumo-webster"]


@pytest.mark.slow
def test_run_with_the_default_relative_output(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """As the README's first command runs it: no --output, so greenwave-output/NAME relative to
    the working folder (SUMO reads paths inside additional files relative to those files, and
    SUMO's tools run in their own folders, so relative paths once broke every run)."""
    toml = tmp_path / "tiny.toml"
    toml.write_text(
        'name = "tiny"\nduration_s = 200\nseeds = 1\ncontrollers = ["static", "sumo-webster", "max_pressure"]\n'
        '[network]\ngenerator = "grid"\nrows = 2\ncols = 2\n[demand]\nentry_vph = 250\n'
    )
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["run", "../tiny.toml", "--jobs", "1"]) == 0
    summary = pd.read_csv(work / "greenwave-output" / "tiny" / "summary.csv")
    assert sorted(summary.controller) == ["max_pressure", "static", "sumo-webster"]
    assert (work / "greenwave-output" / "tiny" / "runs" / "static_seed1" / "approaches.edgedata.xml").is_file()


@pytest.mark.slow
def test_bad_scenario_is_a_clear_error(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text('duration_s = 300\ncolor = "red"\n[network]\ngenerator = "grid"\nrows = 2\ncols = 2\n'
                    "[demand]\nentry_vph = 250\n")
    proc = subprocess.run([sys.executable, "-m", "greenwave.scenarios.cli", "run", str(toml)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "greenwave: error:" in proc.stderr and "'color'" in proc.stderr and str(toml) in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_ctrl_c_keeps_finished_runs(tmp_path: Path) -> None:
    """Interrupting a run (SIGINT, as Ctrl-C) exits 130 and keeps the rows already written."""
    import signal
    import time

    toml = tmp_path / "four.toml"
    toml.write_text(
        'name = "four"\nduration_s = 900\nseeds = [1, 2, 3, 4, 5, 6]\ncontrollers = ["static"]\n'
        '[network]\ngenerator = "grid"\nrows = 3\ncols = 3\n[demand]\nentry_vph = 300\n'
    )
    out = tmp_path / "out"
    proc = subprocess.Popen([console_script(), "run", str(toml), "--jobs", "1", "--output", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)  # Ctrl-C works even if this run ignores it
    deadline = time.monotonic() + 120
    while not (out / "summary.csv").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    kept = pd.read_csv(out / "summary.csv")
    assert 1 <= len(kept) < 6
    assert set(kept.controller) == {"static"}


@pytest.mark.slow
def test_optimise_writes_plan_and_time_space_diagram(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    toml = tmp_path / "art.toml"
    toml.write_text(
        'name = "art"\nduration_s = 900\n[network]\ngenerator = "arterial"\nn_intersections = 3\n'
        "[demand]\nmajor_entry_vph = 700\nminor_entry_vph = 150\n"
    )
    out = tmp_path / "plan"
    assert main(["optimise", str(toml), "--objective", "bandwidth", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "PI before" in text and "PI after" in text and "green bands" in text
    plan = json.loads((out / "plan.json").read_text())
    assert plan["format"] == "greenwave.timing-plan" and len(plan["signals"]) == 3
    assert (out / "plan.add.xml").read_text().count("<tlLogic") == 3
    assert (out / "time_space.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grid = tmp_path / "grid.toml"
    grid.write_text('duration_s = 600\n[network]\ngenerator = "grid"\nrows = 2\ncols = 2\n[demand]\nentry_vph = 300\n')
    assert main(["optimise", str(grid), "--output", str(tmp_path / "g")]) == 0
    assert not (tmp_path / "g" / "time_space.png").exists()  # a grid is no arterial
    assert "1 sub-area(s)" in capsys.readouterr().out  # one common cycle by default
    # --subareas: the plan records its sub-areas (each with its cycle) and the screen lists them
    assert main(["optimise", str(grid), "--subareas", "--proof-seeds", "0", "--output", str(tmp_path / "s")]) == 0
    text = capsys.readouterr().out
    areas = json.loads((tmp_path / "s" / "plan.json").read_text())["meta"]["subareas"]
    assert sorted(s for a in areas for s in a["signals"]) == sorted(
        s["id"] for s in json.loads((tmp_path / "s" / "plan.json").read_text())["signals"])
    assert f"{len(areas)} sub-area(s)" in text and "sub-area 1: " in text


@pytest.mark.slow
def test_optimise_writes_only_the_signals_it_changes(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """DRT's OpenStreetMap district (15 signals): the proof keeps 8 signals on their own
    programs, whose crossings get less green than walk + clearance (they failed the safety check
    when the CLI wrote them back as part of its plan). The plan written holds the signals greenwave
    changes and names the others as left on their own programs; the signals that lost were
    planned again without them, and the screen says whether that plan was taken."""
    import json

    toml = tmp_path / "drt.toml"
    toml.write_text('name = "drt"\nduration_s = 600\nseeds = [1, 2]\n[network]\n'
                    'file = "sumo:tools/game/DRT/osm.net.xml"\n[demand]\nentry_vph = 45\n')
    out = tmp_path / "plan"
    assert main(["optimise", str(toml), "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "re-planned without the 8 signal(s) that lost" in text and "not taken: " in text
    plan = json.loads((out / "plan.json").read_text())
    kept = set(plan["meta"]["proof"]["kept_existing"])
    changed = {s["id"] for s in plan["signals"]}
    assert len(kept) == 8 and len(changed) == 7 and not kept & changed
    assert kept <= set(plan["meta"]["own_program_signals"])
    written = (out / "plan.add.xml").read_text()
    assert written.count("<tlLogic") == 7 and not any(f'id="{s}"' in written for s in kept)


@pytest.mark.slow
def test_optimise_writes_no_plan_when_sumo_finds_nothing_better(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """SUMO's cross junction near saturation: the optimised plan loses to the junction's own
    program in SUMO, so no plan is written, and an earlier run's plan, programs and diagram in the
    output folder are removed rather than left to be exported by mistake."""
    toml = tmp_path / "cross.toml"
    toml.write_text('name = "cross"\nduration_s = 900\nseeds = [1, 2]\n[network]\n'
                    'file = "sumo:tools/game/cross/cross.net.xml"\n[demand]\nentry_vph = 750\n'
                    'turn_left = 0.2\nturn_right = 0.15\n')
    out = tmp_path / "plan"
    out.mkdir()
    stale = [out / "plan.json", out / "plan.add.xml", out / "time_space.png"]
    for f in stale:
        f.write_text("an earlier run's")
    assert main(["optimise", str(toml), "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "recommended: the existing plan" in text
    assert "no plan written: SUMO measured nothing better than the network's own programs" in text
    assert not any(f.exists() for f in stale)
    assert (out / "work" / "proof" / "proof.json").is_file()


@pytest.mark.slow
def test_optimise_names_the_signals_it_leaves_alone(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Ingolstadt's gneJ21 has an unsafe program of its own: `optimise` plans the other signals
    and says which one it left, and why, on the screen and in excluded_signals.txt."""
    toml = tmp_path / "fkk.toml"
    toml.write_text('name = "fkk"\nduration_s = 300\n[demand]\nsumocfg = "sumo:tools/game/fkk_in.sumocfg"\n')
    out = tmp_path / "plan"
    assert main(["optimise", str(toml), "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1 signal(s) left on their own programs" in text and "gneJ21: " in text
    assert "gneJ21: " in (out / "work" / "excluded_signals.txt").read_text()
