"""Automatic detectors: placement on generated and real SUMO networks, reading in SUMO, faults.

Every check that touches a simulation runs real SUMO (libsumo); positions are compared with
what SUMO itself reports for the loaded detectors and lanes.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from greenwave._sumo import sumo_home
from greenwave.controllers.detectors import DetectorLayout, DetectorReader, parse_faults, place_detectors
from greenwave.engine.session import SessionConfig, SumoSession
from greenwave.errors import ScenarioError
from greenwave.networks import RoadNetwork, load_network
from greenwave.networks.generate import grid_network
from greenwave.scenarios.demand import read_sumocfg
from greenwave.scenarios.runner import prepare, run_scenario
from greenwave.scenarios.spec import scenario_from_dict
from tests.test_runner import InlineExecutor

GAME = sumo_home() / "tools" / "game"
NETWORKS = ["grid", "grid6", "square", "corridor", "fkk_in", "A10KW", "DRT"]


def _net_file(name: str, tmp: Path) -> Path:
    if name == "grid":  # turn lanes: short lanes and split edges before every stop line
        return grid_network(tmp / "grid.net.xml", rows=2, cols=3, lanes=2, left_turn_lanes=True)
    if name in ("grid6", "square", "corridor"):
        net = read_sumocfg(GAME / f"{name}.sumocfg").net_file
        assert net is not None
        return net
    return {"fkk_in": GAME / "fkk_in" / "ingolstadt.net.xml.gz",
            "A10KW": GAME / "A10KW" / "osm.net.xml",
            "DRT": GAME / "DRT" / "osm.net.xml"}[name]


@pytest.fixture(scope="module")
def placed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[RoadNetwork, DetectorLayout]]:
    tmp = tmp_path_factory.mktemp("detectors")
    out = {}
    for name in NETWORKS:
        net = load_network(_net_file(name, tmp))
        out[name] = (net, place_detectors(net))
    return out


def _vehicle_signals(net: RoadNetwork) -> list[str]:
    return sorted(s for s, sig in net.signals.items() if sig.vehicle_links)


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS)
def test_every_approach_lane_gets_a_loop_and_a_zone(
    name: str, placed: dict[str, tuple[RoadNetwork, DetectorLayout]]
) -> None:
    net, lay = placed[name]
    row = {lane: r for r, lane in enumerate(lay.lanes)}
    assert len(row) == len(lay.lanes)  # each lane once
    assert set(lay.signals) == set(_vehicle_signals(net))
    assert lay.n_links == sum(net.signals[s].n_links for s in lay.signals)
    approaches = 0
    for s, sid in enumerate(lay.signals):
        sig = net.signals[sid]
        first = int(lay.link_offsets[s])
        assert int(lay.link_offsets[s + 1]) - first == sig.n_links
        for k in sig.vehicle_links:
            m = sig.movements[k]
            if m.is_pedestrian or m.from_lane.startswith(":"):
                continue
            r = row[m.from_lane]
            approaches += 1
            assert lay.approach[r], (sid, k, m.from_lane)
            assert lay.e1_ids[r] and lay.e2_ids[r]
            assert int(lay.link_from[first + k]) == r
            if m.to_lane and not m.to_lane.startswith(":"):
                assert lay.e2_ids[int(lay.link_to[first + k])] and lay.lanes[int(lay.link_to[first + k])] == m.to_lane
        for k in set(range(sig.n_links)) - set(sig.vehicle_links):
            assert int(lay.link_from[first + k]) == -1  # pedestrian and unused link indices
    assert approaches > 0
    # downstream-only lanes have a zone but no loop; ids are unique and name their lane
    assert all(bool(e1) == bool(a) for e1, a in zip(lay.e1_ids, lay.approach, strict=True))
    ids = lay.all_ids()
    assert len(set(ids)) == len(ids)
    assert all(e2 == f"gwe2_{lane}" for e2, lane in zip(lay.e2_ids, lay.lanes, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS)
def test_positions_lie_inside_the_lane(name: str, placed: dict[str, tuple[RoadNetwork, DetectorLayout]]) -> None:
    _, lay = placed[name]
    length = lay.lane_length_m
    assert np.all(length > 0)
    a = lay.approach
    assert np.all((lay.e1_pos_m[a] >= 0) & (lay.e1_pos_m[a] <= length[a]))
    assert np.all(lay.e2_begin_m >= 0)
    assert np.all(lay.e2_begin_m < lay.e2_end_m)
    assert np.all(lay.e2_end_m <= length)
    # the zone ends at the stop line and is 80 m long where the lane allows
    assert np.all(length - lay.e2_end_m <= 0.1 + 1e-9)
    assert np.all(lay.e2_end_m - lay.e2_begin_m <= 80.0 + 1e-9)
    long = length >= 81.0
    assert np.allclose((lay.e2_end_m - lay.e2_begin_m)[long], 80.0)
    # the loop is 2 m before the stop line on every lane long enough for it
    ok = a & (length >= 2.5)
    assert np.allclose(lay.e1_pos_m[ok], length[ok] - 2.0)


def test_lanes_of_merged_connections_get_detectors(placed: dict[str, tuple[RoadNetwork, DetectorLayout]]) -> None:
    net, lay = placed["fkk_in"]
    row = {lane: r for r, lane in enumerate(lay.lanes)}
    missing = []
    for sid in _vehicle_signals(net):
        for m in net.signals[sid].movements:
            for x in m.merged:
                if x.is_used and not x.is_pedestrian and not x.from_lane.startswith(":"):
                    r = row.get(x.from_lane)
                    if r is None or not lay.e1_ids[r]:
                        missing.append((sid, m.link_index, x.from_lane))
    assert missing == []
    # every connection of a link index is one of its (from, to) pairs, the primary one first
    reader = DetectorReader(lay)
    for s_row, sid in enumerate(lay.signals):
        first = int(lay.link_offsets[s_row])
        for m in net.signals[sid].movements:
            i = first + m.link_index
            pairs = list(zip(lay.pair_from[lay.pair_ptr[i]:lay.pair_ptr[i + 1]],
                             lay.pair_to[lay.pair_ptr[i]:lay.pair_ptr[i + 1]], strict=True))
            want = list(dict.fromkeys((x.from_lane, x.to_lane) for x in (m, *m.merged)
                                      if x.is_used and not x.is_pedestrian and not x.from_lane.startswith(":")))
            assert [(lay.lanes[f], lay.lanes[t] if t >= 0 else x) for (f, t), (_, x) in zip(pairs, want, strict=True)] \
                == want
            if pairs:
                assert (lay.link_from[i], lay.link_to[i]) == pairs[0]
    # each lane's queue is shared out whole among the connections leaving it
    used = np.unique(lay.pair_from)
    np.testing.assert_allclose(np.asarray(reader.up_matrix.sum(axis=0)).ravel()[used], 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS)
def test_written_detectors_load_in_sumo(
    name: str, placed: dict[str, tuple[RoadNetwork, DetectorLayout]], tmp_path: Path
) -> None:
    net, lay = placed[name]
    e1 = [i for i in lay.e1_ids if i]
    gone = [e1[0], lay.e2_ids[-1]]  # 'missing' detectors are not written
    add = lay.write(tmp_path / "det.add.xml", missing=gone)
    cfg = SessionConfig(net_file=net.path, additional_files=(add,), end_s=3, log_file=tmp_path / "sumo.log")
    with SumoSession(cfg) as sim:
        for _ in sim.steps():
            pass
        c = sim.conn
        loops = set(c.inductionloop.getIDList())  # actuated programs add loops of their own
        zones = set(c.lanearea.getIDList())
        assert set(e1) - set(gone) <= loops and not set(gone) & loops
        assert zones == set(lay.e2_ids) - set(gone)
        for r, lane in enumerate(lay.lanes):
            length = c.lane.getLength(lane)
            assert lay.lane_length_m[r] == pytest.approx(length, abs=0.01)
            if lay.e1_ids[r] and lay.e1_ids[r] not in gone:
                assert c.inductionloop.getLaneID(lay.e1_ids[r]) == lane
                pos = c.inductionloop.getPosition(lay.e1_ids[r])
                assert pos == pytest.approx(lay.e1_pos_m[r], abs=0.01) and 0 <= pos <= length
            if lay.e2_ids[r] not in gone:
                begin = c.lanearea.getPosition(lay.e2_ids[r])
                assert c.lanearea.getLaneID(lay.e2_ids[r]) == lane
                assert begin == pytest.approx(lay.e2_begin_m[r], abs=0.01)
                # SUMO runs a zone ending within 0.1 m of the stop line up to the stop line
                end = begin + c.lanearea.getLength(lay.e2_ids[r])
                assert lay.e2_end_m[r] - 0.01 <= end <= length + 0.01


# -- fault option ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, message",
    [
        ({"faults": 1}, "detector_faults: must be a list of tables"),
        ([{"kind": "broken", "share": 0.1}], "detector_faults[0]: 'kind' must be one of"),
        ([{"kind": "stuck_on", "share": 0.1}, {"kind": "stuck_on", "ids": ["gwe1_nope"]}],
         "detector_faults[1]: unknown detector ids ['gwe1_nope']"),
        ([{"kind": "stuck_on", "share": 0}], "detector_faults[0]: needs 'ids' or a 'share' in (0, 1]"),
        ([{"kind": "stuck_on", "share": 1.5}], "detector_faults[0]: needs 'ids' or a 'share' in (0, 1]"),
        ([{"kind": "stuck_on", "share": "half"}], "detector_faults[0]: needs 'ids' or a 'share' in (0, 1]"),
        ([{"kind": "stuck_on"}], "detector_faults[0]: needs 'ids' or a 'share'"),
        ([{"kind": "missing", "share": 0.1, "start_s": 100}], "detector_faults[0]: a 'missing' detector"),
        ([{"kind": "missing", "share": 0.1, "duration_s": 100}], "leave out start_s and duration_s"),
        ([{"kind": "stuck_off", "share": 0.1, "duration_s": 0}], "detector_faults[0]: need start_s >= 0"),
        ([{"kind": "stuck_off", "share": 0.1, "detectors": "e3"}], "detector_faults[0]: 'detectors' must be"),
        ([{"kind": "stuck_off", "share": 0.1, "when": 3}], "detector_faults[0]: unknown key(s) ['when']"),
        ([{"kind": "stuck_off", "ids": "gwe1_x"}], "detector_faults[0]: 'ids' must be a list"),
        (["stuck_on"], "detector_faults[0]: must be a table"),
    ],
)
def test_bad_faults_name_the_key(
    raw: object, message: str, placed: dict[str, tuple[RoadNetwork, DetectorLayout]]
) -> None:
    _, lay = placed["grid"]
    with pytest.raises(ScenarioError) as err:
        parse_faults(raw, lay, seed=1)
    assert message in str(err.value)


def test_a_share_of_detectors_the_network_lacks_is_named(placed: dict[str, tuple[RoadNetwork, DetectorLayout]]) -> None:
    _, lay = placed["grid"]
    no_loops = replace(lay, e1_ids=tuple("" for _ in lay.e1_ids))
    with pytest.raises(ScenarioError, match=r"detector_faults\[0\]: the network has no e1 detectors to fail"):
        parse_faults([{"kind": "stuck_on", "share": 0.5, "detectors": "e1"}], no_loops, seed=1)


def test_faults_are_drawn_with_the_seed(placed: dict[str, tuple[RoadNetwork, DetectorLayout]]) -> None:
    _, lay = placed["grid"]
    e1 = {i for i in lay.e1_ids if i}
    raw = [{"kind": "stuck_on", "detectors": "e2", "share": 0.3, "start_s": 200, "duration_s": 400},
           {"kind": "stuck_off", "detectors": "e1", "share": 0.2},
           {"kind": "missing", "share": 0.1, "detectors": "all"},
           {"kind": "missing", "ids": [lay.e2_ids[0]]}]
    a = parse_faults(raw, lay, seed=3)
    assert a == parse_faults(raw, lay, seed=3)
    assert a != parse_faults(raw, lay, seed=4)
    on, off, miss, named = a
    assert (on.kind, on.start_s, on.duration_s) == ("stuck_on", 200.0, 400.0)
    assert set(on.ids) <= set(lay.e2_ids) and len(on.ids) == round(0.3 * len(lay.e2_ids))
    assert set(off.ids) <= e1 and len(off.ids) == round(0.2 * len(e1)) and off.duration_s == math.inf
    assert len(miss.ids) == round(0.1 * len(lay.all_ids()))
    assert named.ids == (lay.e2_ids[0],)
    tiny = parse_faults([{"kind": "stuck_off", "share": 1e-6}], lay, seed=1)
    assert len(tiny[0].ids) == 1  # a share always hits at least one detector
    own_seed = [{"kind": "stuck_off", "share": 0.5, "seed": 7}]
    assert parse_faults(own_seed, lay, seed=1) == parse_faults(own_seed, lay, seed=2)
    assert parse_faults(None, lay, seed=1) == []


# -- reading in SUMO ---------------------------------------------------------------------------

SMALL = {"name": "det", "duration_s": 300, "seeds": [1], "controllers": ["static"],
         "network": {"generator": "grid", "rows": 2, "cols": 2, "lanes": 1},
         "demand": {"entry_vph": 400, "end_s": 300}}


@pytest.mark.slow
def test_reader_values_faults_and_fallbacks_in_sumo(tmp_path: Path) -> None:
    """Healthy detectors read what SUMO reports; a stuck-on zone reads full, is flagged after
    60 s and its lane falls back to the loop's estimate (NaN with the loop missing too); a dead
    loop reads nothing; a missing one is not in SUMO at all."""
    prepared = prepare(scenario_from_dict(SMALL), tmp_path)
    net = load_network(prepared.net_file)
    lay = place_detectors(net)
    appr = [r for r in range(len(lay.lanes)) if lay.approach[r]]
    stuck, both, dead, healthy = appr[0], appr[1], appr[2], appr[3:]
    raw = [{"kind": "stuck_on", "ids": [lay.e2_ids[stuck], lay.e2_ids[both]], "start_s": 50, "duration_s": 150},
           {"kind": "missing", "ids": [lay.e1_ids[both]]},
           {"kind": "stuck_off", "ids": [lay.e1_ids[dead]]}]
    faults = parse_faults(raw, lay, seed=1)
    add = lay.write(tmp_path / "det.add.xml", missing=[lay.e1_ids[both]])
    reader = DetectorReader(lay, faults)
    cfg = SessionConfig(net_file=prepared.net_file, route_files=prepared.routes_by_seed[1],
                        additional_files=(add,), end_s=300, seed=1)
    seen_vehicles, slow_reads = 0.0, 0
    with SumoSession(cfg) as sim:
        reader.start(sim)
        c = sim.conn
        assert lay.e1_ids[both] not in c.inductionloop.getIDList()
        for t in sim.steps():
            reader.update(sim)
            for r in healthy:
                assert reader.e2_vehicles[r] == c.lanearea.getLastStepVehicleNumber(lay.e2_ids[r])
                if reader.last_slow_read_s == t:  # loops and occupancies: every slow_read_s
                    assert reader.e1_since_s[r] == c.inductionloop.getTimeSinceDetection(lay.e1_ids[r])
                    assert reader.e1_occupied[r] == (c.inductionloop.getLastStepOccupancy(lay.e1_ids[r]) > 0
                                                     and reader.e1_since_s[r] == 0)
                    assert reader.e2_occupancy[r] == c.lanearea.getLastStepOccupancy(lay.e2_ids[r]) / 100.0
                    slow_reads += 1
                assert reader.e1_ok[r] and reader.e2_ok[r]
                assert reader.queue[r] == reader.e2_vehicles[r]
                seen_vehicles += reader.e2_vehicles[r]
            assert reader.e1_occupied[dead] == 0 and reader.e1_interval_count[dead] == 0
            assert not reader.e1_ok[both]
            if 50 <= t < 200:
                assert reader.e2_vehicles[stuck] == reader.capacity[stuck] and reader.e2_occupancy[stuck] == 1.0
            if 115 <= t < 200:  # flagged after 60 s full
                assert not reader.e2_ok[stuck] and not reader.e2_ok[both]
                est = reader.queue[stuck]
                assert np.isfinite(est) and 0 <= est <= reader.capacity[stuck]
                assert math.isnan(reader.queue[both])
                up = reader.up_matrix @ reader.queue
                rows = np.repeat(np.arange(lay.n_links), np.diff(lay.pair_ptr))
                assert np.isnan(up[rows[lay.pair_from == both]]).all()
            if t >= 205:  # the zones recover once the fault ends
                assert reader.e2_ok[stuck] and reader.e2_ok[both]
    assert seen_vehicles > 0
    assert slow_reads >= 50 * len(healthy)  # every 5 s of the 300 s
    log = {(d, s) for _, d, s in reader.fault_log}
    assert {(lay.e2_ids[stuck], "flagged"), (lay.e2_ids[stuck], "ok")} <= log
    flagged_at = [t for t, d, s in reader.fault_log if d == lay.e2_ids[stuck] and s == "flagged"]
    assert flagged_at and 100 <= flagged_at[0] <= 115
    # links from lanes used by several connections share the lane's queue: each used lane's
    # weights over the links sum to one
    used = np.unique(lay.pair_from)
    assert np.asarray(reader.up_matrix.sum(axis=0)).ravel()[used] == pytest.approx(np.ones(used.size))


@pytest.mark.slow
def test_a_dead_zone_is_found_by_its_loop(tmp_path: Path) -> None:
    """A zone that reports nothing while its healthy loop counts vehicles is flagged after two
    count periods, and its lane's queue then comes from the loop."""
    prepared = prepare(scenario_from_dict({**SMALL, "duration_s": 400,
                                           "demand": {"entry_vph": 600, "end_s": 400}}), tmp_path)
    lay = place_detectors(load_network(prepared.net_file))
    appr = [r for r in range(len(lay.lanes)) if lay.approach[r]]
    dead = appr[0]
    faults = parse_faults([{"kind": "stuck_off", "ids": [lay.e2_ids[dead]]}], lay, seed=1)
    add = lay.write(tmp_path / "det.add.xml")
    reader = DetectorReader(lay, faults)
    cfg = SessionConfig(net_file=prepared.net_file, route_files=prepared.routes_by_seed[1],
                        additional_files=(add,), end_s=400, seed=1)
    with SumoSession(cfg) as sim:
        reader.start(sim)
        for _ in sim.steps():
            reader.update(sim)
    flagged = [t for t, d, s in reader.fault_log if d == lay.e2_ids[dead] and s == "flagged"]
    assert flagged and flagged[0] <= 4 * 60 + 1, reader.fault_log  # the network fills in the first period
    assert not reader.e2_ok[dead] and reader.e1_ok[dead]
    healthy = [lay.e2_ids[r] for r in appr[1:]]
    assert not {d for _, d, s in reader.fault_log if s == "flagged"} & set(healthy)


FAULTY = {
    "name": "faulty", "duration_s": 700, "seeds": [1], "controllers": ["max_pressure"],
    "network": {"generator": "grid", "rows": 2, "cols": 2, "lanes": 1},
    "demand": {"entry_vph": 300, "end_s": 600},
}
FAULTS = [
    {"kind": "stuck_on", "detectors": "e2", "share": 0.3, "start_s": 200, "duration_s": 400},
    {"kind": "stuck_off", "detectors": "e1", "share": 0.2},
    {"kind": "missing", "detectors": "e1", "share": 0.1},
]


@pytest.mark.slow
def test_max_pressure_survives_detector_faults(tmp_path: Path) -> None:
    clean = run_scenario(scenario_from_dict(FAULTY), tmp_path / "clean", executor=InlineExecutor(),
                         check_safety=True).iloc[0]
    sc = scenario_from_dict({**FAULTY, "controller_options": {"max_pressure": {"detector_faults": FAULTS}}})
    faulty = run_scenario(sc, tmp_path / "faulty", executor=InlineExecutor(), check_safety=True).iloc[0]
    assert clean.vehicles_arrived > 300
    assert faulty.vehicles_arrived >= 0.9 * clean.vehicles_arrived
    assert faulty.teleports == 0
    assert faulty.safety_violations == 0 and clean.safety_violations == 0
    assert faulty.detectors_faulty > 0 and faulty.detectors_flagged > 0
    assert "detectors_faulty" not in clean or pd.isna(clean.detectors_faulty)
    assert clean.detectors_flagged == 0  # no healthy detector is taken for a faulty one
    assert clean.detectors_silent == 0  # nor a quiet healthy lane for a dead one
    assert not (tmp_path / "clean" / "runs" / "max_pressure_seed1" / "detector_faults.json").exists()
    on_disk = pd.read_csv(tmp_path / "faulty" / "summary.csv").iloc[0]
    assert on_disk.detectors_faulty == faulty.detectors_faulty
    report = json.loads((tmp_path / "faulty" / "runs" / "max_pressure_seed1" / "detector_faults.json").read_text())
    assert [f["kind"] for f in report["faults"]] == ["stuck_on", "stuck_off", "missing"]
    stuck = set(report["faults"][0]["ids"])
    assert stuck and all(i.startswith("gwe2_") for i in stuck)
    assert all(i.startswith("gwe1_") for f in report["faults"][1:] for i in f["ids"])
    flagged = {d["detector"]: d["time_s"] for d in report["diagnostics"] if d["status"] == "flagged"}
    assert faulty.detectors_flagged == len(flagged)
    assert stuck & set(flagged)  # stuck-on zones are found, after the fault began
    assert all(200 < flagged[d] < 600 for d in stuck & set(flagged))
    missing = report["faults"][2]["ids"]
    written = (tmp_path / "faulty" / "runs" / "max_pressure_seed1" / "gw_detectors.add.xml").read_text()
    assert missing and not any(f'"{i}"' in written for i in missing)
