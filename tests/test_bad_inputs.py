"""One test per class of bad input: each gets a clear error naming the file, the key or element and
what is valid (exit status 1 from the command line), never a traceback, a silent default or NaN
results. The interruptions and killed workers are in test_interrupts.py, the unsafe plans in
test_safety_rules.py; the cases here are the rest of what a hostile user tried."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from greenwave._sumo import run_sumo_command
from greenwave.controllers.export.gbt20999 import plan_from_frames, read_frame_file
from greenwave.controllers.export.utdf import read_utdf, write_utdf
from greenwave.controllers.plans.arrays import plan_from_network
from greenwave.errors import PlanError, ScenarioError
from greenwave.networks import load_network
from greenwave.networks.compile import compile_network
from greenwave.networks.generate import grid_network
from greenwave.scenarios.cli import main
from greenwave.scenarios.spec import load_scenario, scenario_from_dict

GOOD = {
    "name": "ok",
    "duration_s": 300,
    "controllers": ["static"],
    "network": {"generator": "grid", "rows": 2, "cols": 2},
    "demand": {"entry_vph": 200},
}


def _toml(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out + cap.err


# ------------------------------------------------------------------------------------------
# scenario values, checked when the scenario is loaded


@pytest.mark.parametrize(("patch", "key", "valid"), [
    ({"duration_s": math.nan}, "duration_s", "finite number"),
    ({"duration_s": math.inf}, "duration_s", "finite number"),
    ({"duration_s": 1e12}, "duration_s", "(0, 604800]"),
    ({"time_to_teleport_s": math.nan}, "time_to_teleport_s", "finite number"),
    ({"step_length_s": 600}, "step_length_s", "[0.001, 10]"),
    ({"step_length_s": 5, "duration_s": 2}, "step_length_s", "longer than the run"),
    ({"seeds": 100_000_000}, "seeds", "at most 1000"),
    ({"seeds": list(range(2000))}, "seeds", "at most 1000"),
    ({"seeds": [1, 1]}, "seeds", "more than once"),
    ({"network": {"generator": "grid", "rows": 100_000, "cols": 100_000}}, "network.rows", "[1, 50]"),
    ({"network": {"generator": "grid", "rows": 30, "cols": 30}}, "network.rows × network.cols", "at most 400"),
    ({"network": {"generator": "grid", "rows": 2, "cols": 2, "spacing_m": math.nan}}, "network.spacing_m",
     "finite number"),
    ({"demand": {"entry_vph": math.inf}}, "demand.entry_vph", "finite number"),
    ({"demand": {"entry_vph": 0}}, "every entry flow is 0", "at least one flow > 0"),
    ({"demand": {"entry_vph": 100, "turn_left": 1.5}}, "demand.turn_left", "must be ≤ 1"),
    ({"demand": {"entry_vph": 100, "begin_s": 400, "end_s": 500}}, "demand.begin_s", "start inside the run"),
    ({"demand": {"entry_vph": 100, "begin_s": 300}}, "demand.begin_s", "start inside the run"),
    ({"begin_s": 100, "demand": {"entry_vph": 100, "end_s": 50}}, "demand.end_s", "overlap the run"),
])
def test_scenario_values_out_of_range(patch: dict, key: str, valid: str) -> None:
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict({**GOOD, **patch})
    assert key in str(err.value) and valid in str(err.value)


def test_no_controllers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _toml(tmp_path, 'duration_s = 300\ncontrollers = []\n[network]\ngenerator = "grid"\nrows = 2\ncols = 2\n'
                           '[demand]\nentry_vph = 200\n')
    code, text = _cli(["run", str(path), "--output", str(tmp_path / "out")], capsys)
    assert code == 1 and str(path) in text and "controllers is empty" in text


@pytest.mark.parametrize("name", ["../../../x", "/tmp/evil", "a b", "", ".hidden", "x" * 81])
def test_unsafe_scenario_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(ScenarioError, match="not a safe file name"):
        scenario_from_dict({**GOOD, "name": name})
    # a file name that would not do is made safe when the name comes from the file
    path = _toml(tmp_path, "duration_s = 300\n[demand]\nentry_vph = 200\n[network]\ngenerator = 'grid'\n"
                           "rows = 2\ncols = 2\n", "my grid (v2).toml")
    assert load_scenario(path).name == "my_grid__v2_"


def test_misspelt_controller_option_is_refused_at_load_with_the_valid_names() -> None:
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict({**GOOD, "controllers": ["static", "actuated"],
                            "controller_options": {"actuated": {"max_gapp": 4}}})
    text = str(err.value)
    assert "controller_options.actuated: unknown option 'max_gapp'" in text and "max_gap" in text
    with pytest.raises(ScenarioError, match="controller_options.static: unknown option 'x'; valid: none"):
        scenario_from_dict({**GOOD, "controller_options": {"static": {"x": 1}}})


@pytest.mark.slow
def test_options_for_a_controller_that_does_not_run_are_named(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = _toml(tmp_path, 'duration_s = 120\nseeds = 1\ncontrollers = ["static"]\n'
                           '[network]\ngenerator = "grid"\nrows = 2\ncols = 2\n[demand]\nentry_vph = 200\n'
                           '[controller_options.actuated]\nmax_gap = 4\n')
    code, text = _cli(["run", str(path), "--jobs", "1", "--output", str(tmp_path / "out")], capsys)
    assert code == 0
    assert "controller_options for actuated not used: that controller does not run" in text


def test_binary_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bin.toml"
    path.write_bytes(bytes(range(256)))
    code, text = _cli(["run", str(path)], capsys)
    assert code == 1 and f"{path}: not a TOML text file" in text and "Traceback" not in text


# ------------------------------------------------------------------------------------------
# output folders


@pytest.mark.parametrize("command", ["run", "optimise"])
def test_output_that_is_a_file_or_under_a_file(tmp_path: Path, command: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    scenario = _toml(tmp_path, 'duration_s = 300\n[network]\ngenerator = "grid"\nrows = 2\ncols = 2\n'
                               '[demand]\nentry_vph = 200\n')
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    code, text = _cli([command, str(scenario), "--output", str(a_file)], capsys)
    assert code == 1 and f"output folder {a_file}: is a file" in text
    code, text = _cli([command, str(scenario), "--output", str(a_file / "sub")], capsys)
    assert code == 1 and f"output folder {a_file / 'sub'}: cannot be created" in text
    assert a_file.read_text() == "not a folder"


def test_summary_csv_that_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = _toml(tmp_path, 'duration_s = 120\n[network]\ngenerator = "grid"\nrows = 2\ncols = 2\n'
                               '[demand]\nentry_vph = 200\n')
    out = tmp_path / "out"
    (out / "summary.csv").mkdir(parents=True)
    code, text = _cli(["run", str(scenario), "--output", str(out)], capsys)
    assert code == 1 and "summary.csv: is a folder" in text
    assert not (out / "runs").exists()  # refused before anything ran


# ------------------------------------------------------------------------------------------
# networks and SUMO


@pytest.fixture(scope="module")
def no_signals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nosig")
    net = folder / "plain.net.xml"
    run_sumo_command(["netgenerate", "--grid", "--grid.number=3", "--grid.length=150", "--grid.attach-length=100",
                      f"--output-file={net}"], what="netgenerate grid without signals")
    assert not load_network(net).signals
    return _toml(folder, 'duration_s = 200\nseeds = 1\ncontrollers = ["static"]\n[network]\nfile = "plain.net.xml"\n'
                         '[demand]\nentry_vph = 200\n')


@pytest.mark.slow
def test_network_without_signals_runs_under_static(no_signals: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _cli(["run", str(no_signals), "--jobs", "1", "--output", str(tmp_path / "out")], capsys)
    assert code == 0, text
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary.loc[0, "status"] == "ok" and summary.loc[0, "vehicles_arrived"] > 0
    assert not math.isnan(summary.loc[0, "mean_time_loss_s"])


def test_network_without_signals_has_nothing_to_optimise(no_signals: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _cli(["optimise", str(no_signals), "--output", str(tmp_path / "out")], capsys)
    assert code == 1 and "has no traffic signals; nothing to optimise" in text
    assert not (tmp_path / "out" / "plan.json").exists()


@pytest.mark.slow
def test_sumo_failing_to_start_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.add.xml").write_text(
        '<additional>\n  <busStop id="stop" lane="no_such_lane" startPos="0" endPos="10"/>\n</additional>\n')
    scenario = _toml(tmp_path, 'duration_s = 120\nseeds = 1\ncontrollers = ["static"]\n'
                               '[network]\ngenerator = "grid"\nrows = 2\ncols = 2\n'
                               '[demand]\nentry_vph = 200\nadditional_files = ["bad.add.xml"]\n')
    code, text = _cli(["run", str(scenario), "--jobs", "1", "--output", str(tmp_path / "out")], capsys)
    assert code == 1 and "SUMO failed to start" in text and "no_such_lane" in text
    row = pd.read_csv(tmp_path / "out" / "summary.csv").iloc[0]
    assert row.status == "failed" and "no_such_lane" in row.error


# ------------------------------------------------------------------------------------------
# plan files read back


@pytest.fixture(scope="module")
def grid_plan(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    net = load_network(grid_network(tmp_path_factory.mktemp("plans") / "g.net.xml", rows=1, cols=2))
    flows = pd.DataFrame(columns=["from_edge", "to_edge", "flow_vph"])
    return net, plan_from_network(net, compile_network(net, flows))


def test_empty_gbt_frame_stream(tmp_path: Path, grid_plan) -> None:  # type: ignore[no-untyped-def]
    _, plan = grid_plan
    empty = tmp_path / "empty.gbt"
    empty.write_bytes(b"")
    with pytest.raises(PlanError, match="empty file: no GB/T 20999 frames"):
        read_frame_file(empty)
    with pytest.raises(PlanError, match="no GB/T 20999 frames"):
        plan_from_frames([], plan, where="stream")


def test_utdf_whose_splits_do_not_sum_to_its_cycle(tmp_path: Path, grid_plan) -> None:  # type: ignore[no-untyped-def]
    net, plan = grid_plan
    path = write_utdf(plan, net, tmp_path / "p.csv")
    t = next(iter(plan.signals.values()))
    cycle = f"{t.cycle_s:g}"
    lines = path.read_text().splitlines()
    edited = [ln.replace(f"Cycle Length,1,{cycle}", f"Cycle Length,1,{t.cycle_s + 7:g}") for ln in lines]
    assert edited != lines
    path.write_text("\n".join(edited) + "\n")
    with pytest.raises(PlanError) as err:
        read_utdf(path, plan)
    assert str(path) in str(err.value) and "Cycle Length" in str(err.value) and "sum to" in str(err.value)


@pytest.mark.slow
def test_no_traceback_from_the_installed_command(tmp_path: Path) -> None:
    """The console script itself: a bad input is one line on stderr and exit 1."""
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00binary")
    proc = subprocess.run([sys.executable, "-m", "greenwave.scenarios.cli", "run", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("greenwave: error: ")


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--seeds", "100000000"], "--seeds must be 1..1000"),
    (["run", "--seeds", "0"], "--seeds must be 1..1000"),
    (["run", "--jobs", "100000"], "--jobs must be 1..128"),
    (["parking-sweep", "parking_district", "--rates", "0.5,nan"], "networking rates must be shares in [0, 1]"),
])
def test_command_line_values_out_of_range(args: list[str], message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _cli([*args, "--output", str(tmp_path / "out")], capsys)
    assert code in (1, 2) and message in text and "Traceback" not in text
