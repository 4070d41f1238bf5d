"""Running scenarios end to end in real SUMO: controllers × seeds, KPIs, files, parallelism."""

from __future__ import annotations

from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from greenwave.controllers.base import Controller, register
from greenwave.engine.run import RunSpec
from greenwave.errors import ScenarioError, SimulationError
from greenwave.scenarios.runner import run_scenario, summary_columns
from greenwave.scenarios.spec import scenario_from_dict

SMALL = {
    "name": "small",
    "duration_s": 600,
    "seeds": [1, 2],
    "controllers": ["static", "actuated"],
    "network": {"generator": "grid", "rows": 2, "cols": 2, "lanes": 1},
    "demand": {"entry_vph": 300, "end_s": 500},
}


class InlineExecutor(Executor):
    """Runs each job at once in this process (libsumo allows one simulation at a time)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001
            fut.set_exception(exc)
        return fut


@register
class _BrokenController(Controller):
    """Test double: refuses to run."""

    name = "test-broken"
    kind = "greenwave"

    def prepare(self, ctx: RunSpec) -> list[Path]:
        raise SimulationError("the test controller refuses to run")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    out = tmp_path_factory.mktemp("small_run")
    summary = run_scenario(scenario_from_dict(SMALL), out, jobs=2)
    return summary, out


@pytest.mark.slow
def test_summary_has_documented_columns_and_rows(small_run: tuple[pd.DataFrame, Path]) -> None:
    summary, out = small_run
    on_disk = pd.read_csv(out / "summary.csv")
    documented = summary_columns()
    assert list(on_disk.columns[: len(documented)]) == documented
    assert len(on_disk) == 4
    assert set(zip(on_disk.controller, on_disk.seed, strict=True)) == {
        ("static", 1), ("static", 2), ("actuated", 1), ("actuated", 2)}
    for row in on_disk.itertuples():
        # 8 entries × 300 veh/h for 500 s ≈ 333 vehicles, all served in a light 2x2 grid
        assert 250 < row.vehicles_inserted < 420
        assert row.vehicles_arrived + row.vehicles_unfinished >= row.vehicles_inserted
        assert 0 < row.mean_time_loss_s < row.mean_travel_time_s
        assert row.resco_delay_s >= row.mean_time_loss_s * row.vehicles_inserted / (
            row.vehicles_inserted + row.vehicles_not_inserted) - 1e-6
        assert row.teleports == 0


@pytest.mark.slow
def test_intersections_table(small_run: tuple[pd.DataFrame, Path]) -> None:
    _, out = small_run
    inter = pd.read_csv(out / "intersections.csv")
    # 4 signals × 4 approaches × 2 controllers × 2 seeds
    assert len(inter) == 4 * 4 * 2 * 2
    assert inter["signal"].nunique() == 4
    assert (inter["vehicles_entered"] > 0).all()
    assert (inter["mean_queue_veh"] >= 0).all() and (inter["max_queue_veh"] >= inter["mean_queue_veh"]).all()
    assert (inter["mean_delay_s"] > 0).all()


@pytest.mark.slow
def test_same_seed_same_result(small_run: tuple[pd.DataFrame, Path], tmp_path: Path) -> None:
    summary, _ = small_run
    again = run_scenario(scenario_from_dict(SMALL), tmp_path, controllers=["static"], seeds=[1],
                         executor=InlineExecutor())
    first = summary[(summary.controller == "static") & (summary.seed == 1)]
    cols = [c for c in summary_columns() if c != "sim_wall_s"]
    pd.testing.assert_frame_equal(first[cols].reset_index(drop=True), again[cols].reset_index(drop=True))
    assert summary[summary.seed == 1].mean_time_loss_s.iloc[0] != summary[summary.seed == 2].mean_time_loss_s.iloc[0]


@register
class _TypoController(Controller):
    """Test double: fails with a plain bug."""

    name = "test-typo"
    kind = "greenwave"

    def prepare(self, ctx: RunSpec) -> list[Path]:
        return dict(max_gap=1)["max_gapp"]  # a plain bug: KeyError, not a greenwave error


@pytest.mark.slow
@pytest.mark.parametrize(("broken", "message"), [("test-broken", "refuses to run"),
                                                  ("test-typo", "KeyError: 'max_gapp'")])
def test_failed_run_is_a_failed_row_and_the_others_finish(tmp_path: Path, broken: str, message: str) -> None:
    sc = scenario_from_dict({**SMALL, "seeds": [1], "duration_s": 200, "demand": {"entry_vph": 300}})
    with pytest.raises(ScenarioError, match="1 of 3 runs failed") as info:
        run_scenario(sc, tmp_path, controllers=["static", broken, "actuated"], executor=InlineExecutor())
    assert message in str(info.value)
    kept = pd.read_csv(tmp_path / "summary.csv")
    assert sorted(kept.controller) == sorted(["static", broken, "actuated"])
    row = kept[kept.controller == broken].iloc[0]
    assert row.status == "failed" and message in row.error
    assert (kept[kept.controller != broken].status == "ok").all()
    assert (kept[kept.controller != broken].vehicles_arrived > 0).all()


def test_summary_csv_being_a_folder_is_refused_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "summary.csv").mkdir()
    sc = scenario_from_dict({**SMALL, "seeds": [1], "duration_s": 200, "demand": {"entry_vph": 300}})
    with pytest.raises(ScenarioError, match=r"summary\.csv: is a folder"):
        run_scenario(sc, tmp_path, controllers=["static"], executor=InlineExecutor())
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_result_file_turning_into_a_folder_mid_batch_loses_no_row(tmp_path: Path) -> None:
    """The table cannot be written any more once the runs started: the rows are saved beside it."""
    sc = scenario_from_dict({**SMALL, "seeds": [1, 2], "duration_s": 200, "demand": {"entry_vph": 300}})
    csv = tmp_path / "summary.csv"
    csv.write_text("an old summary\n")  # a file: the check before the runs passes

    class Sabotage(InlineExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
            if csv.is_file():  # while the batch runs, someone puts a folder there
                csv.unlink()
                csv.mkdir()
            return super().submit(fn, *args, **kwargs)

    with pytest.raises(ScenarioError, match="cannot be written") as info:
        run_scenario(sc, tmp_path, controllers=["static"], executor=Sabotage())
    rescued = list(tmp_path.glob("summary.rescued-*.csv"))
    assert len(rescued) == 1 and str(rescued[0]) in str(info.value)
    assert sorted(pd.read_csv(rescued[0]).seed) == [1, 2]


@pytest.mark.slow
def test_unserved_demand_counts(tmp_path: Path) -> None:
    """Far more demand than the grid can take: vehicles left outside are counted, not hidden."""
    sc = scenario_from_dict({**SMALL, "seeds": [1], "duration_s": 400,
                             "demand": {"entry_vph": 1500, "end_s": 400}})
    summary = run_scenario(sc, tmp_path, controllers=["static"], executor=InlineExecutor())
    row = summary.iloc[0]
    assert row.vehicles_not_inserted > 50
    assert row.vehicles_unfinished >= row.vehicles_not_inserted
    assert row.resco_delay_s > row.mean_depart_delay_s > 10
