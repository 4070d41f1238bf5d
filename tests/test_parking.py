"""Parking without SUMO runs: options, networking rate, guidance bookkeeping, SFpark steps, KPIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from greenwave.errors import ScenarioError
from greenwave.parking.addon import Guidance, ParkingAddon, SFparkPricer
from greenwave.parking.carparks import (
    CarPark,
    apply_networking_rate,
    nearest_alternatives,
    networking_rates,
    perceived_costs,
    sample_dwell,
)
from greenwave.parking.options import parse_parking_options
from greenwave.parking.results import OCCUPANCY_COLUMNS, VEHICLE_COLUMNS, parking_kpis
from greenwave.scenarios.spec import scenario_from_dict

WHERE = "/x/city.toml"


def _table(**over: object) -> dict:
    t = {
        "policy": "guidance",
        "car_parks": [{"id": "a", "edge": "B1C1", "capacity": 10, "price_per_h": 2.0}],
        "demand": {"vehicles_per_hour": 100, "destinations": [{"edge": "B1C1"}]},
    }
    t.update(over)
    return t


def _parse(table: dict) -> dict:
    return parse_parking_options(table, where=WHERE, base=Path("/x"))


def test_options_defaults_and_values() -> None:
    o = _parse(_table(networking_rate=0.5, pricing={"step_per_h": 0.25}))
    assert o["policy"] == "guidance"
    assert o["networking_rate"] == 0.5
    assert o["pricing"]["step_per_h"] == 0.25
    assert o["pricing"]["target_low"] == 0.6 and o["pricing"]["target_high"] == 0.8
    assert o["car_parks"][0]["kind"] == "lot" and o["car_parks"][0]["networked"] is True
    assert o["demand"]["dwell"]["distribution"] == "lognormal"
    import pickle

    assert pickle.loads(pickle.dumps(o)) == o


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        (_table(policy="magic"), "parking.policy must be one of no_guidance, guidance, pricing"),
        (_table(networking_rate=1.5), "parking.networking_rate must be ≤ 1"),
        (_table(colour="red"), "unknown key 'parking.colour'"),
        (_table(car_parks=[{"id": "a", "edge": "E", "price_per_h": 1.0}]), "car_parks[0] (a).capacity is missing"),
        (_table(car_parks=[{"id": "a", "edge": "E", "x": 1.0, "y": 2.0, "capacity": 3, "price_per_h": 1.0}]),
         "needs either 'edge' or a location 'x' and 'y'"),
        (_table(car_parks=[{"id": "a", "edge": "E", "capacity": 0, "price_per_h": 1.0}]), "capacity must be ≥ 1"),
        (_table(car_parks=[{"id": "a", "edge": "E", "capacity": 2, "price_per_h": 1.0, "kind": "tower"}]),
         "kind must be one of lot, street"),
        (_table(car_parks=[{"id": "a", "edge": "E", "capacity": 2, "price_per_h": 1.0}] * 2), "duplicate id(s) a"),
        (_table(car_parks=[]), "declares no car parks"),
        ({"car_parks": [{"id": "a", "edge": "E", "capacity": 2, "price_per_h": 1.0}]}, "needs a [parking.demand]"),
        (_table(demand={"vehicles_per_hour": 10, "destinations": []}), "destinations must be a non-empty array"),
        (_table(demand={"vehicles_per_hour": 10, "destinations": [{"edge": "E"}],
                        "dwell": {"distribution": "lognormal", "mean_s": 60}}), "sd_s is needed"),
        (_table(pricing={"target_low": 0.9, "target_high": 0.5}), "target_high must be ≥ target_low"),
        (_table(pricing={"min_price_per_h": 5.0, "max_price_per_h": 1.0}), "max_price_per_h must be ≥ min"),
        (_table(generate={"capacity_min": 3}), "generate.count is missing"),
    ],
)
def test_bad_parking_tables_name_file_and_key(table: dict, needle: str) -> None:
    with pytest.raises(ScenarioError) as err:
        _parse(table)
    assert WHERE in str(err.value)
    assert needle in str(err.value)


def test_scenario_loader_hands_parking_table_to_the_addon(tmp_path: Path) -> None:
    data = {"duration_s": 60, "network": {"generator": "grid", "rows": 2, "cols": 2},
            "demand": {"entry_vph": 10}, "parking": _table()}
    sc = scenario_from_dict(data, source=tmp_path / "s.toml")
    assert sc.addons["parking"]["car_parks"][0]["id"] == "a"
    data["parking"] = _table(policy="free-for-all")
    with pytest.raises(ScenarioError, match=r"s\.toml: parking\.policy"):
        scenario_from_dict(data, source=tmp_path / "s.toml")


def _parks(n: int) -> list[CarPark]:
    return [CarPark(id=f"p{i}", edge="e", lane="e_0", start_m=0, end_m=10, capacity=10 * (i + 1), price_per_h=1.0,
                    kind="lot", networked=False, x=float(i * 100), y=0.0) for i in range(n)]


def test_networking_rate_by_count_nested_and_seeded() -> None:
    parks = _parks(10)
    sets = {}
    for rate in (0.0, 0.3, 0.5, 0.8, 1.0):
        marked = apply_networking_rate(parks, rate, seed=4)
        sets[rate] = {c.id for c in marked if c.networked}
        assert len(sets[rate]) == round(rate * 10)
    assert sets[0.3] <= sets[0.5] <= sets[0.8] <= sets[1.0]
    assert {c.id for c in apply_networking_rate(parks, 0.5, seed=4) if c.networked} == sets[0.5]
    others = [{c.id for c in apply_networking_rate(parks, 0.5, seed=s) if c.networked} for s in range(5, 12)]
    assert any(o != sets[0.5] for o in others)
    assert apply_networking_rate(parks, None, seed=1) == parks


def test_networking_rates_by_count_and_spaces() -> None:
    parks = apply_networking_rate(_parks(4), None, seed=0)
    parks = [CarPark(**{**c.__dict__, "networked": c.id in ("p0", "p3")}) for c in parks]
    by_count, by_spaces = networking_rates(parks)
    assert by_count == 0.5
    assert by_spaces == pytest.approx((10 + 40) / (10 + 20 + 30 + 40))
    assert networking_rates([]) == (0.0, 0.0)


def test_nearest_alternatives_exclude_self_nearest_first() -> None:
    alts = nearest_alternatives(_parks(4), 2)
    assert alts["p0"] == ["p1", "p2"]
    assert alts["p2"][0] in ("p1", "p3") and "p2" not in alts["p2"]


def test_guidance_never_overbooks_nor_sends_to_unseen_or_unreachable() -> None:
    rng = np.random.default_rng(11)
    cap = np.array([3, 5, 2, 8, 4])
    networked = np.array([True, True, False, True, True])
    g = Guidance(cap, networked)
    occ = np.array([1, 5, 0, 2, 0])
    for step in range(400):
        vid = f"v{step % 40}"
        if rng.random() < 0.3:
            g.release(vid)
        cost = rng.uniform(1, 10, 5)
        cost[4] = np.inf  # car park 4 is unreachable for everyone
        k = g.assign(vid, cost, occ)
        if k is not None:
            assert networked[k] and np.isfinite(cost[k])
        assert np.all(occ + g.assigned <= cap), (step, occ, g.assigned)
        assert g.assigned[2] == 0 and g.assigned[4] == 0
        assert sum(g.assigned) == len(g.target)
        if rng.random() < 0.2:  # others park: free spaces shrink; the overbooked get released
            k = int(rng.integers(0, 5))
            occ[k] = min(cap[k], occ[k] + 1)
            for v in g.overbooked(occ):
                assert v not in g.target
            assert np.all(occ + g.assigned <= cap)


def test_guidance_overbooked_releases_latest_bookings() -> None:
    g = Guidance([3], [True])
    occ = np.array([0])
    for v in ("a", "b", "c"):
        assert g.assign(v, np.array([1.0]), occ) == 0
    assert g.assign("d", np.array([1.0]), occ) is None
    assert g.overbooked(np.array([2])) == ["c", "b"]
    assert list(g.target) == ["a"] and g.assigned[0] == 1
    assert g.keep("e", 0, np.array([2])) is False


def test_sfpark_steps_are_bounded_and_only_on_priced() -> None:
    p = SFparkPricer(prices_per_h=np.array([2.0, 2.0, 2.0, 7.8, 0.6]), priced=np.array([True, True, True, True, False]),
                     interval_s=600, step_per_h=0.5, min_price_per_h=0.5, max_price_per_h=8.0)
    new = p.update(np.array([0.9, 0.7, 0.3, 0.95, 0.1]))
    assert new.tolist() == [2.5, 2.0, 1.5, 8.0, 0.6]
    for _ in range(20):
        p.update(np.array([0.1, 0.1, 0.1, 1.0, 1.0]))
    assert p.prices_per_h.tolist() == [0.5, 0.5, 0.5, 8.0, 0.6]


def test_sfpark_updates_at_interval_from_mean_occupancy() -> None:
    p = SFparkPricer(prices_per_h=np.array([2.0]), priced=np.array([True]), interval_s=10, step_per_h=0.5,
                     min_price_per_h=0.5, max_price_per_h=8.0)
    changed = [p.observe(float(t), np.array([0.95 if t < 15 else 0.65])) for t in range(1, 31)]
    assert [t for t, c in zip(range(1, 31), changed, strict=True) if c] == [11, 21]
    # first interval mean 0.95 → up; second: 4 of 10 at 0.95, 6 at 0.65 → mean 0.77, in band → unchanged
    assert [h[1][0] for h in p.history] == [2.5, 2.5]


def test_kpis_on_a_known_case() -> None:
    nan = np.nan
    rows = [
        # parked at first choice, search 30 s / 200 m
        ("v1", 0, 0, "a", 100, 1000, "a", 130, 1200, 1930, 50.0, 2.0, False, nan, 0),
        # parked elsewhere after 90 s / 600 m
        ("v2", 0, 0, "a", 110, 900, "b", 200, 1500, nan, 150.0, 1.0, False, nan, 1),
        # sent straight to a free space outside the area: no search
        ("v3", 0, 0, "b", nan, nan, "b", 300, 800, 600, 80.0, 1.0, False, nan, 0),
        ("v4", 0, 0, "a", 100, 900, "", nan, nan, nan, nan, nan, True, 1000, 0),   # gave up
        ("v5", 0, 0, "a", 3000, 900, "", nan, nan, nan, nan, nan, False, nan, 0),  # still searching
    ]
    vehicles = pd.DataFrame(rows, columns=VEHICLE_COLUMNS)
    occ_rows = []
    for t, (oa, ob) in zip([0, 1800, 3600], [(0, 0), (7, 1), (10, 8)], strict=True):
        occ_rows.append((t, "a", oa, 10, oa / 10, 2.0, True))
        occ_rows.append((t, "b", ob, 10, ob / 10, 1.0, False))
    occupancy = pd.DataFrame(occ_rows, columns=OCCUPANCY_COLUMNS)
    k = parking_kpis(vehicles, occupancy, capacity_total=20, kpi_begin_s=0.0, end_s=3600.0)
    assert k["parked"] == 3 and k["parking_vehicles"] == 5
    assert k["mean_search_time_s"] == pytest.approx((30 + 90 + 0) / 3)
    assert k["p90_search_time_s"] == pytest.approx(np.percentile([30, 90, 0], 90))
    assert k["mean_cruising_distance_m"] == pytest.approx((200 + 600 + 0) / 3)
    assert k["first_choice_share"] == pytest.approx(2 / 3)
    assert k["mean_walking_distance_m"] == pytest.approx((50 + 150 + 80) / 3)
    assert k["gave_up"] == 1 and k["still_searching"] == 1
    # samples: a 0, 0.7, 1.0; b 0, 0.1, 0.8 → in band: a@1800, b@3600
    assert k["occupancy_in_band_share"] == pytest.approx(2 / 6)
    assert k["turnover_per_space_hour"] == pytest.approx(3 / 20 / 1.0)
    # revenue: v1 2/h × 1800 s, v2 1/h × (3600 − 200) s (still parked at the end), v3 1/h × 300 s
    assert k["revenue"] == pytest.approx(2 * 0.5 + 1 * 3400 / 3600 + 1 * 300 / 3600)
    late = parking_kpis(vehicles, occupancy, capacity_total=20, kpi_begin_s=1800.0, end_s=3600.0)
    assert late["turnover_per_space_hour"] == pytest.approx(0 / 20 / 0.5)
    assert late["occupancy_in_band_share"] == pytest.approx(2 / 4)


def test_dwell_distributions_and_costs() -> None:
    rng = np.random.default_rng(3)
    x = sample_dwell(rng, {"distribution": "lognormal", "mean_s": 1800.0, "sd_s": 900.0, "min_s": 0.0,
                           "max_s": 1e9}, 40000)
    assert x.mean() == pytest.approx(1800, rel=0.03) and x.std() == pytest.approx(900, rel=0.06)
    y = sample_dwell(rng, {"distribution": "exponential", "mean_s": 600.0, "sd_s": None, "min_s": 300.0,
                           "max_s": 900.0}, 1000)
    assert y.min() >= 300 and y.max() <= 900
    cost = perceived_costs(prices_per_h=np.array([2.0, 0.0]), dwell_s=1800, drive_s=np.array([60.0, np.inf]),
                           walk_m=np.array([130.0, 0.0]), value_of_time_per_h=36.0, walk_speed_mps=1.3)
    assert cost[0] == pytest.approx(1.0 + 36 * (60 + 200) / 3600)
    assert np.isinf(cost[1])


class _Vehicles:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def rerouteParkingArea(self, vid: str, pid: str) -> None:  # noqa: N802 - TraCI's name
        self.sent.append((vid, pid))


class _Conn:
    def __init__(self) -> None:
        self.vehicle = _Vehicles()


def _bare_addon(networked: list[bool]) -> ParkingAddon:
    """A ParkingAddon with just the state guidance needs: car parks p0, p1 on edges e0, e1."""
    from greenwave.parking.carparks import Driver, DriveTimes

    a = ParkingAddon.__new__(ParkingAddon)
    a.options = {"value_of_time_per_h": 20.0, "walk_speed_mps": 1.3, "guidance_interval_s": 5.0}
    a.ids, a.edges = ["p0", "p1"], ["e0", "e1"]
    a.capacity = np.array([1, 1])
    a.networked = np.array(networked)
    a.starts, a.ends = np.array([50.0, 50.0]), np.array([60.0, 60.0])
    a.prices = np.array([1.0, 1.0])
    a.walk = np.array([[50.0, 300.0]])
    a.times = DriveTimes(edge_index={"e0": 0, "e1": 1, "x": 2},
                         to_park=np.array([[60.0, 20.0], [20.0, 60.0], [30.0, 40.0]], dtype=np.float32),
                         loop=np.array([80.0, 80.0]))
    a._parks_on = {"e0": [0], "e1": [1]}
    a.guidance = Guidance(a.capacity, a.networked)
    a.drivers = {"v": Driver(id="v", index=0, depart_s=0.0, origin="x", exit="x", destination=0, dwell_s=1800.0,
                             first_choice="p0")}
    a.records = {"v": {"reassignments": 0, "_edge": "x", "_pos": 10.0}}
    a.target = {}
    a.max_booked_excess = 0
    a._error = RuntimeError
    return a


def test_guidance_replans_a_driver_whose_networked_target_had_no_space() -> None:
    a = _bare_addon([True, True])
    conn = _Conn()
    a.target["v"] = 0
    a._replan(conn, "v", np.array([1, 1]), edge="x", lane_pos=10.0)  # both full: nothing to offer
    assert a.target["v"] == 0 and "v" not in a.guidance.target and conn.vehicle.sent == []
    a._plan(conn, np.array([1, 1]))
    assert conn.vehicle.sent == []
    a._plan(conn, np.array([1, 0]))  # a space frees up at p1: the driver is booked in and sent there
    assert conn.vehicle.sent == [("v", "p1")] and a.guidance.target == {"v": 1} and a.target["v"] == 1
    a._plan(conn, np.array([1, 0]))  # booked: left alone
    assert conn.vehicle.sent == [("v", "p1")] and a.records["v"]["reassignments"] == 1


def test_guidance_leaves_drivers_heading_for_car_parks_it_does_not_see() -> None:
    a = _bare_addon([False, True])
    conn = _Conn()
    a.target["v"] = 0  # own choice, not networked: the platform does not know it
    a._plan(conn, np.array([0, 0]))
    assert conn.vehicle.sent == [] and a.target["v"] == 0


@pytest.mark.parametrize(
    ("road", "pos", "prev_edge", "prev_pos", "failed"),
    [
        ("e0", 40.0, "e0", 30.0, False),  # still before it
        ("e0", 62.0, "e0", 55.0, True),   # drove past its end (it was full)
        ("e0", 75.0, "e0", 70.0, False),  # sent there while already past it: going round the block
        ("e0", 70.0, "x", 100.0, True),   # entered the edge and past it within one step
        ("x", 5.0, "e0", 58.0, True),     # left the edge, last seen before its end
        ("x", 5.0, "e0", 90.0, False),    # left the edge it had passed before being sent there
        ("x", 5.0, "y", 90.0, False),     # elsewhere
    ],
)
def test_a_missed_car_park_is_a_failed_attempt(road: str, pos: float, prev_edge: str, prev_pos: float,
                                               failed: bool) -> None:
    a = _bare_addon([True, True])
    assert a._failed(0, road, pos, prev_edge, prev_pos) is failed
