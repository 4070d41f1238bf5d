"""``greenwave calibrate``: the model's saturation flow measured in SUMO on the user's network."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from greenwave.engine.calibration import FORMAT, default_calibration, load_calibration
from greenwave.errors import ScenarioError
from greenwave.scenarios.calibrate import LANE_COLUMNS, calibrate_scenario, saturated_greens
from greenwave.scenarios.cli import main
from greenwave.scenarios.spec import scenario_from_dict

CROSS = {"name": "cross", "duration_s": 600, "seeds": [1],
         "network": {"file": "sumo:tools/game/cross/cross.net.xml"},
         "demand": {"entry_vph": 750, "turn_left": 0.2, "turn_right": 0.15}}


def test_a_saturated_green_is_the_discharge_of_the_queue_standing_at_its_start() -> None:
    steady = [10.0 + 2.2 + 2.0 * k for k in range(10)]  # a queue crossing every 2 s, green 10-32
    short = [50.0 + 2.0 * k for k in range(4)]  # four vehicles: too few
    gappy = [70.0 + 2.0 * k for k in range(5)] + [85.0 + 2.0 * k for k in range(3)]  # a queue of 5, then arrivals
    late = [105.0 + 2.0 * k for k in range(8)]  # nobody waited at the green start
    ended = [120.0 + 2.0 * k for k in range(6)]  # the queue cleared 10 s before the green ended
    queue = [150.0 + 2.1 + 2.0 * k for k in range(7)]  # a queue of 7 discharges, then two arrive
    arrivals = [170.0, 172.0]
    crossings = sorted(steady + short + gappy + late + ended + queue + arrivals)
    greens = [(10.0, 32.0), (50.0, 60.0), (70.0, 92.0), (100.0, 116.0), (120.0, 140.0), (150.0, 180.0)]
    sat = saturated_greens(crossings, greens)
    # the queue's discharge counts, not the arrivals after its first gap (the HCM's field method)
    assert sat == [[10.0, *steady], [120.0, *ended], [150.0, *queue]]
    # with gaps of 7 s allowed the gappy green's queue runs on into its arrivals (8 vehicles)
    wide = saturated_greens(crossings, greens, max_headway_s=7.5, min_vehicles=6)
    assert [g[0] for g in wide] == [10.0, 70.0, 120.0, 150.0]
    assert wide[1] == [70.0, *gappy] and wide[3] == [150.0, *queue, *arrivals]
    assert saturated_greens([], greens) == []


def test_calibration_files_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "cal.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ScenarioError, match="cannot read the calibration file"):
        load_calibration(bad)
    bad.write_text(json.dumps({"saturation_flow_per_lane_vph": 1800}), encoding="utf-8")
    with pytest.raises(ScenarioError, match="not a greenwave calibration file"):
        load_calibration(bad)
    bad.write_text(json.dumps({"format": FORMAT, "saturation_flow_per_lane_vph": float("nan"),
                               "start_lag_s": 1.0}), encoding="utf-8")
    with pytest.raises(ScenarioError, match="saturation_flow_per_lane_vph must be a number in"):
        load_calibration(bad)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_calibration(tmp_path / "missing.json")
    for key, value in (("programs", "mine"), ("lanes_used", 3)):
        bad.write_text(json.dumps({"format": FORMAT, "saturation_flow_per_lane_vph": 1800, "start_lag_s": 1.0,
                                   key: value}), encoding="utf-8")
        with pytest.raises(ScenarioError, match=f"cal.json: {key} must be one of"):
            load_calibration(bad)
    assert default_calibration().saturation_flow_per_lane_vph == 1900.0


def test_calibrate_refuses_a_bad_scale(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="--scale must be in"):
        calibrate_scenario(scenario_from_dict(CROSS), tmp_path, scale=0.5)


@pytest.mark.slow
def test_calibrate_measures_the_saturation_flow_of_a_real_junction(tmp_path: Path, capsys) -> None:
    """SUMO's cross junction (tools/game) with its approaches overloaded: straight-only lanes
    discharge near the 1897 veh/h/lane benchmarks/calibrate.py measured on through-only lanes."""
    cal, table = calibrate_scenario(scenario_from_dict(CROSS), tmp_path, scale=1.5)
    assert cal.lanes_used == "straight"
    assert 1700 <= cal.saturation_flow_per_lane_vph <= 2100
    assert cal.greens_measured >= 5 and cal.lanes_measured >= 2
    assert list(table.columns) == LANE_COLUMNS
    straight = table[(table.kind == "s") & (table.greens_saturated > 0)]
    assert len(straight) >= 2 and straight.saturation_flow_vph.between(1600, 2200).all()
    # left-turn lanes wait for gaps in the through stages: never a saturated priority green there
    assert (table[table.kind == "l"].greens_saturated == 0).all()
    saved = load_calibration(tmp_path / "calibration.json")
    assert saved.saturation_flow_per_lane_vph == cal.saturation_flow_per_lane_vph
    assert pd.read_csv(tmp_path / "calibration_lanes.csv").shape[0] == len(table)
    # the optimiser plans with it (proof skipped here; its own tests cover it)
    toml = tmp_path / "cross.toml"
    toml.write_text('name = "cross"\nduration_s = 600\nseeds = [1]\n[network]\n'
                    'file = "sumo:tools/game/cross/cross.net.xml"\n[demand]\nentry_vph = 400\n', encoding="utf-8")
    rc = main(["optimise", str(toml), "--calibration", str(tmp_path / "calibration.json"), "--proof-seeds", "0",
               "--output", str(tmp_path / "plan")])
    assert rc == 0
    assert f"saturation flow {cal.saturation_flow_per_lane_vph:.0f} veh/h/lane" in capsys.readouterr().err
    assert main(["optimise", str(toml), "--calibration", str(tmp_path / "nope.json"), "--proof-seeds", "0",
                 "--output", str(tmp_path / "plan2")]) == 1


@pytest.mark.slow
def test_calibrate_says_why_it_found_too_few_saturated_greens(tmp_path: Path) -> None:
    """Too few saturated greens: the error names the cause SUMO's run shows; on cross with light
    demand the queues are too short."""
    light = scenario_from_dict({**CROSS, "duration_s": 300, "demand": {**CROSS["demand"], "entry_vph": 60}})
    with pytest.raises(ScenarioError, match=r"only \d of the \d+ greens of the \d+ lane\(s\) with priority on their "
                                            r"measured links discharged a queue of 6 or more vehicles without a gap"):
        calibrate_scenario(light, tmp_path / "cross", scale=1.0)


@pytest.mark.slow
def test_calibrate_measures_under_sumos_rebuilt_programs_where_the_own_never_cycle(tmp_path: Path) -> None:
    """corridor's and bs3d's game programs hold one stage until the player switches: no green
    ends in the run. calibrate measures under SUMO's rebuilt fixed-time programs and says so.
    Neither has a straight-only lane, so the figure comes from the straight vehicles of lanes
    shared with turns, each vehicle's movement read from its route."""
    from greenwave._sumo import sumo_home
    from greenwave.scenarios.sumocfg import portable_sumocfg
    from tests.bench_modules import load_benchmark

    cfg = portable_sumocfg(sumo_home() / "tools" / "game" / "corridor.sumocfg", tmp_path / "corridor.sumocfg")
    corridor = scenario_from_dict({"name": "corridor", "duration_s": 300, "seeds": [1],
                                   "demand": {"sumocfg": str(cfg)}})
    rn = load_benchmark("real_networks.py", "real_networks")
    bs3d = rn.scenario(rn.catalogue()["bs3d"], tmp_path / "inputs", duration=600, seeds=[1], controllers=["static"])
    for sc in (corridor, bs3d):
        out = tmp_path / sc.name
        cal, table = calibrate_scenario(sc, out, scale=2.0)
        assert cal.programs == "sumo-rebuilt-static", sc.name
        assert (out / "work" / "calibration" / "rebuilt").is_dir()
        assert cal.greens_measured >= 5 and cal.lanes_used == "shared", sc.name
        assert 1600 <= cal.saturation_flow_per_lane_vph <= 2400, sc.name
        assert (table.kind != "s").all() and (table.greens_saturated > 0).sum() >= 2, sc.name
        saved = load_calibration(out / "calibration.json")
        assert (saved.programs, saved.lanes_used) == ("sumo-rebuilt-static", "shared")
