"""Parking in real SUMO: car parks and trips written and loaded, every policy parks vehicles,
guidance books only networked reachable car parks with free spaces, prices move in bounded steps,
parking runs next to static, actuated, max_pressure and adaptive signal control, and the
parking-sweep command."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sumolib

from greenwave._sumo import run_sumo_command
from greenwave.engine.session import SessionConfig, SumoSession
from greenwave.errors import ScenarioError
from greenwave.parking.addon import ParkingAddon
from greenwave.parking.carparks import (
    drive_times,
    generate_drivers,
    resolve_car_parks,
    write_parking_additional,
    write_trips,
)
from greenwave.parking.options import parse_parking_options
from greenwave.scenarios.runner import make_jobs, prepare, run_job
from greenwave.scenarios.spec import load_scenario, scenario_from_dict

PARKING = {
    "search_radius_m": 150.0,
    "patience_s": 600.0,
    "kpi_begin_s": 300.0,
    "guidance_interval_s": 5.0,
    "car_parks": [
        {"id": "kerb", "edge": "B1C1", "kind": "street", "capacity": 4, "price_per_h": 1.0},
        {"id": "lot", "edge": "C1B1", "capacity": 6, "price_per_h": 2.0, "charging_kw": 11.0},
        {"id": "hidden", "edge": "B1A1", "kind": "street", "capacity": 5, "price_per_h": 1.0, "networked": False},
        {"id": "west", "x": 0.0, "y": 50.0, "capacity": 20, "price_per_h": 1.0},
        {"id": "east", "edge": "C2B2", "capacity": 20, "price_per_h": 1.0},
    ],
    "pricing": {"interval_s": 120.0, "step_per_h": 0.5, "min_price_per_h": 0.5, "max_price_per_h": 3.0},
    "demand": {
        "vehicles_per_hour": 360.0, "end_s": 600.0,
        "dwell": {"distribution": "uniform", "min_s": 400.0, "max_s": 800.0},
        "destinations": [{"edge": "B1C1", "weight": 3.0}, {"edge": "C1B1"}],
    },
}


def grid_scenario(tmp_path: Path, *, policy: str, controller: str = "static", duration_s: int = 1200,
                  **over: object) -> object:
    parking = copy.deepcopy(PARKING)
    parking["policy"] = policy
    parking.update(over)
    data = {
        "name": "pk", "duration_s": duration_s, "seeds": [1], "controllers": [controller],
        "network": {"generator": "grid", "rows": 3, "cols": 3, "spacing_m": 150.0, "lanes": 1,
                    "attach_length_m": 100.0},
        "demand": {"entry_vph": 60.0, "end_s": min(900.0, float(duration_s))},
        "parking": parking,
    }
    return scenario_from_dict(data, source=tmp_path / "pk.toml")


def run_one(scenario: object, out: Path) -> tuple[dict, pd.DataFrame]:
    prepared = prepare(scenario, out)
    (job,) = make_jobs(prepared, out)
    result = run_job(job)
    return result.summary, pd.read_csv(job.workdir / "parking" / "vehicles.csv")


@pytest.mark.slow
def test_car_parks_and_trips_load_in_sumo(tmp_path: Path) -> None:
    sc = grid_scenario(tmp_path, policy="no_guidance")
    prepared = prepare(sc, tmp_path / "out")
    net = sumolib.net.readNet(str(prepared.net_file))
    opts = sc.addons["parking"]
    parks = resolve_car_parks(opts, net)
    assert [c.id for c in parks] == ["kerb", "lot", "hidden", "west", "east"]
    west = parks[3]
    assert west.edge.startswith("A") or "left" in west.edge  # the road nearest to (0, 50) is on the west side
    kerb = parks[0]
    assert kerb.end_m - kerb.start_m == pytest.approx(4 * 6.0)
    add = write_parking_additional(parks, tmp_path / "p.add.xml", alternatives=2, end_s=1200)
    times = drive_times(net, parks)
    drivers, _ = generate_drivers(net, opts["demand"], parks, times, begin_s=0, end_s=1200, seed=5,
                                  value_of_time_per_h=20, walk_speed_mps=1.3, choice_noise=0.5)
    again, _ = generate_drivers(net, opts["demand"], parks, times, begin_s=0, end_s=1200, seed=5,
                                value_of_time_per_h=20, walk_speed_mps=1.3, choice_noise=0.5)
    other, _ = generate_drivers(net, opts["demand"], parks, times, begin_s=0, end_s=1200, seed=6,
                                value_of_time_per_h=20, walk_speed_mps=1.3, choice_noise=0.5)
    assert drivers == again and drivers != other
    assert 30 <= len(drivers) <= 90  # Poisson, 360 veh/h over 600 s: 60 expected
    assert all(d.depart_s < 600 and 400 <= d.dwell_s <= 800 for d in drivers)
    trips = write_trips(drivers, tmp_path / "p.rou.xml")
    stops = [s for t in sumolib.xml.parse(str(trips), "trip") for s in t.stop]
    assert len(stops) == len(drivers) and all(s.parking == "true" for s in stops)
    cfg = SessionConfig(net_file=prepared.net_file, route_files=(trips,), additional_files=(add,), end_s=60)
    with SumoSession(cfg) as sim:
        conn = sim.conn
        assert sorted(conn.parkingarea.getIDList()) == sorted(c.id for c in parks)
        for c in parks:
            assert conn.parkingarea.getLaneID(c.id) == c.lane
            assert conn.parkingarea.getStartPos(c.id) == pytest.approx(c.start_m, abs=0.01)
        assert conn.chargingstation.getIDList() == ("cs_lot",)
        for _ in sim.steps():
            pass


def test_car_parks_generated_along_edges_with_a_seed(tmp_path: Path) -> None:
    sc = grid_scenario(tmp_path, policy="no_guidance")
    prepared = prepare(sc, tmp_path / "out")
    net = sumolib.net.readNet(str(prepared.net_file))
    gen = parse_parking_options({"generate": {"count": 8, "seed": 3, "capacity_min": 5, "capacity_max": 15},
                                 "demand": PARKING["demand"]}, where="g.toml", base=tmp_path)
    a = resolve_car_parks(gen, net)
    assert a == resolve_car_parks(gen, net)
    assert len(a) == 8 and len({c.edge for c in a}) == 8
    assert all(5 <= c.capacity <= 15 for c in a)
    gen["generate"]["seed"] = 4
    assert resolve_car_parks(gen, net) != a
    bad = copy.deepcopy(gen)
    bad["car_parks"] = [{"id": "x", "edge": "nowhere", "pos_m": None, "x": None, "y": None, "capacity": 3,
                         "price_per_h": 1.0, "kind": "lot", "networked": True, "charging_kw": None}]
    with pytest.raises(ScenarioError, match="edge 'nowhere' is not in the network"):
        resolve_car_parks(bad, net)
    bad["car_parks"][0].update(edge="B1C1", kind="street", capacity=40)
    with pytest.raises(ScenarioError, match="40 kerb spaces need 240 m"):
        resolve_car_parks(bad, net)


@pytest.mark.slow
@pytest.mark.parametrize(("policy", "controller"), [("no_guidance", "static"), ("guidance", "actuated"),
                                                    ("pricing", "static")])
def test_each_policy_parks_vehicles(tmp_path: Path, policy: str, controller: str) -> None:
    summary, vehicles = run_one(grid_scenario(tmp_path, policy=policy, controller=controller), tmp_path / "out")
    assert summary["parking_policy"] == policy
    assert summary["parked"] >= 0.8 * summary["parking_vehicles"] > 0
    assert summary["parking_networking_rate"] == pytest.approx(4 / 5)
    assert summary["parking_networking_rate_spaces"] == pytest.approx(50 / 55)
    parked = vehicles[vehicles["park_s"].notna()]
    assert set(parked["parked_at"]) <= {"kerb", "lot", "hidden", "west", "east"}
    assert (parked["park_s"] >= parked["depart_s"]).all()
    for col in ("mean_search_time_s", "p90_search_time_s", "mean_cruising_distance_m", "first_choice_share",
                "occupancy_in_band_share", "turnover_per_space_hour", "revenue"):
        assert np.isfinite(summary[col]), col
    # the popular kerb (4 spaces) cannot take everyone who wants it: someone searched
    assert summary["p90_search_time_s"] > 0 and summary["first_choice_share"] < 1.0
    occ = pd.read_csv(tmp_path / "out" / "runs" / f"{controller}_seed1" / "parking" / "occupancy.csv")
    assert (occ["occupancy"] <= occ["capacity"]).all() and occ["occupancy"].max() > 0
    if policy != "no_guidance":
        assert summary["parking_max_overbooking"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("controller", ["max_pressure", "adaptive"])
def test_parking_runs_next_to_other_signal_controllers(tmp_path: Path, controller: str) -> None:
    """Guidance and the controller share one simulation (short run: 600 s)."""
    sc = grid_scenario(tmp_path, policy="guidance", controller=controller, duration_s=600)
    summary, vehicles = run_one(sc, tmp_path / "out")
    assert summary["controller"] == controller and summary["parking_policy"] == "guidance"
    assert summary["parked"] > 0.5 * summary["parking_vehicles"] > 0
    assert summary["parking_max_overbooking"] == 0
    assert np.isfinite(summary["mean_search_time_s"]) and np.isfinite(summary["mean_time_loss_s"])


@pytest.mark.slow
def test_impatient_drivers_give_up_and_drive_on(tmp_path: Path) -> None:
    summary, vehicles = run_one(grid_scenario(tmp_path, policy="no_guidance", patience_s=45.0), tmp_path / "out")
    gave_up = vehicles[vehicles["gave_up"]]
    assert summary["gave_up"] == len(gave_up) > 0
    assert gave_up["park_s"].isna().all()
    assert (gave_up["gave_up_s"] - gave_up["search_start_s"] > 45.0).all()
    assert (gave_up["gave_up_s"] - gave_up["search_start_s"] <= 47.0).all()
    trips = {t.id: t for t in sumolib.xml.parse(str(tmp_path / "out" / "runs" / "static_seed1" / "tripinfo.xml"),
                                                 "tripinfo")}
    assert all(float(trips[v].arrival) > 0 for v in gave_up["vehicle"])  # they left the district


def _drive(scenario: object, tmp_path: Path, each_step: object) -> ParkingAddon:
    """Run the add-on step by step (as run_job does) and call ``each_step(addon, sim)``."""
    prepared = prepare(scenario, tmp_path / "out")
    (job,) = make_jobs(prepared, tmp_path / "out")
    addon = ParkingAddon(job.addons["parking"])
    inputs = addon.prepare(job)
    cfg = SessionConfig(net_file=job.net_file, route_files=(*job.route_files, *inputs.route_files),
                        additional_files=inputs.additional_files, end_s=job.end_s, seed=job.seed,
                        log_file=job.workdir / "sumo.log")
    with SumoSession(cfg) as sim:
        addon.start(sim)
        for _ in sim.steps():
            addon.step(sim)
            each_step(addon, sim)
    addon.summary = addon.finish(job)
    return addon


@pytest.mark.slow
def test_guidance_books_only_free_networked_reachable_car_parks(tmp_path: Path) -> None:
    seen = {"booked": 0, "reassigned": set()}

    def check(addon: ParkingAddon, sim: SumoSession) -> None:
        g = addon.guidance
        occ = addon.occupancy(sim.conn)
        for vid, k in g.target.items():
            assert addon.networked[k], (vid, addon.ids[k])
            drive = addon.times.from_edge(addon.records[vid]["_edge"])
            assert np.isfinite(drive[k]) or addon.records[vid]["_edge"] == addon.edges[k]
        # bookings never exceed what was free when made; parking by others is caught at the next plan
        assert np.all(g.assigned <= addon.capacity)
        if sim.time_s % addon.options["guidance_interval_s"] == 0:
            assert np.all(occ + g.assigned <= addon.capacity)
        seen["booked"] = max(seen["booked"], int(g.assigned.sum()))

    addon = _drive(grid_scenario(tmp_path, policy="guidance"), tmp_path, check)
    vehicles, _ = addon.tables()
    assert seen["booked"] > 0
    assert addon.summary["parking_max_overbooking"] == 0
    assert (vehicles["reassignments"] > 0).any()  # the kerb filled up: some were sent elsewhere
    # drivers still find the car park the platform does not know
    assert (vehicles["parked_at"] == "hidden").any()


def _island_net(tmp_path: Path) -> Path:
    """A street W–A–B–E (two-way) and a one-way spur X→B from a dead end: X→B cannot be reached."""
    nodes = tmp_path / "n.nod.xml"
    edges = tmp_path / "e.edg.xml"
    nodes.write_text('<nodes><node id="W" x="0" y="0"/><node id="A" x="200" y="0"/><node id="B" x="400" y="0"/>'
                     '<node id="E" x="600" y="0"/><node id="X" x="400" y="150"/></nodes>')
    e = [("WA", "W", "A"), ("AW", "A", "W"), ("AB", "A", "B"), ("BA", "B", "A"), ("BE", "B", "E"),
         ("EB", "E", "B"), ("XB", "X", "B")]
    edges.write_text("<edges>" + "".join(f'<edge id="{i}" from="{f}" to="{t}" numLanes="1" speed="13.89"/>'
                                         for i, f, t in e) + "</edges>")
    out = tmp_path / "island.net.xml"
    run_sumo_command(["netconvert", "-n", nodes, "-e", edges, "-o", out, "--no-turnarounds", "false"],
                     what="test network")
    return out


@pytest.mark.slow
def test_guidance_never_sends_to_an_unreachable_car_park(tmp_path: Path) -> None:
    net = _island_net(tmp_path)
    data = {
        "name": "island", "duration_s": 900, "seeds": [1], "controllers": ["static"],
        "network": {"file": str(net)}, "demand": {"entry_vph": 30.0},
        "parking": {
            "policy": "guidance", "search_radius_m": 150.0,
            "car_parks": [
                {"id": "main", "edge": "AB", "kind": "street", "capacity": 3, "price_per_h": 2.0},
                {"id": "island", "edge": "XB", "capacity": 30, "price_per_h": 0.0},  # cheapest, nearest, unreachable
                {"id": "east", "edge": "BE", "capacity": 30, "price_per_h": 3.0},
            ],
            "demand": {"vehicles_per_hour": 300.0, "end_s": 400.0, "origins": ["WA"], "exits": ["BE"],
                       "dwell": {"distribution": "fixed", "mean_s": 600.0},
                       "destinations": [{"x": 400.0, "y": 40.0}]},
        },
    }
    sc = scenario_from_dict(data, source=tmp_path / "island.toml")
    island = 1

    def check(addon: ParkingAddon, sim: SumoSession) -> None:
        assert island not in addon.guidance.target.values()
        assert not np.isfinite(addon.times.from_edge("WA")[island])

    addon = _drive(sc, tmp_path, check)
    vehicles, _ = addon.tables()
    parked = vehicles[vehicles["park_s"].notna()]
    assert "island" not in set(parked["parked_at"])
    assert (parked["parked_at"] == "main").sum() >= 3 and (parked["parked_at"] == "east").sum() > 0
    assert (vehicles["reassignments"] > 0).any()


@pytest.mark.slow
def test_pricing_moves_prices_in_bounded_steps(tmp_path: Path) -> None:
    summary, _ = run_one(grid_scenario(tmp_path, policy="pricing"), tmp_path / "out")
    prices = pd.read_csv(tmp_path / "out" / "runs" / "static_seed1" / "parking" / "prices.csv")
    wide = prices.pivot(index="time_s", columns="car_park", values="price_per_h")
    initial = {c["id"]: c["price_per_h"] for c in PARKING["car_parks"]}
    start = pd.DataFrame([initial])[wide.columns]
    steps = pd.concat([start, wide]).diff().iloc[1:]
    assert set(np.round(steps.to_numpy().ravel(), 6)) <= {-0.5, 0.0, 0.5}
    assert ((wide >= 0.5) & (wide <= 3.0)).all().all()
    assert (wide["hidden"] == 1.0).all()  # not networked: no occupancy data, no dynamic price
    assert (steps.abs().to_numpy() > 0).any()
    assert wide["kerb"].max() > 1.0  # the full kerb got dearer


def test_bundled_parking_scenario_loads() -> None:
    sc = load_scenario("parking_district")
    opts = sc.addons["parking"]
    assert len(opts["car_parks"]) >= 8 and opts["policy"] in ("no_guidance", "guidance", "pricing")
    assert len({c["price_per_h"] for c in opts["car_parks"]}) >= 3


@pytest.mark.slow
def test_parking_sweep_command(tmp_path: Path) -> None:
    from greenwave.scenarios.cli import main

    toml = tmp_path / "pk.toml"
    lines = ["name = 'pk'", "duration_s = 900", "controllers = ['static']",
             "[network]", "generator = 'grid'", "rows = 3", "cols = 3", "spacing_m = 150.0",
             "[demand]", "entry_vph = 30.0",
             "[parking]", "kpi_begin_s = 300.0",
             "[parking.demand]", "vehicles_per_hour = 200.0", "end_s = 500.0",
             "dwell = { distribution = 'fixed', mean_s = 400.0 }",
             "[[parking.demand.destinations]]", "edge = 'B1C1'"]
    for cp in PARKING["car_parks"][:3] + PARKING["car_parks"][4:]:
        lines += ["[[parking.car_parks]]"] + [f"{k} = {v!r}".replace("True", "true").replace("False", "false")
                                              for k, v in cp.items()]
    toml.write_text("\n".join(lines) + "\n")
    out = tmp_path / "sweep"
    rc = main(["parking-sweep", str(toml), "--rates", "0,1", "--policies", "no_guidance,guidance",
               "--jobs", "2", "--output", str(out)])
    assert rc == 0
    sweep = pd.read_csv(out / "sweep.csv")
    assert len(sweep) == 4
    assert set(zip(sweep["policy"], sweep["networking_rate"], strict=True)) == {
        ("no_guidance", 0.0), ("no_guidance", 1.0), ("guidance", 0.0), ("guidance", 1.0)}
    for col in ("networking_rate", "policy", "seed", "mean_search_time_s", "p90_search_time_s",
                "mean_cruising_distance_m", "first_choice_share", "occupancy_in_band_share",
                "turnover_per_space_hour", "gave_up"):
        assert col in sweep.columns and sweep[col].notna().all(), col
    assert (sweep["parking_networking_rate"] == sweep["networking_rate"]).all()
    assert (out / "sweep.png").stat().st_size > 10_000
    assert main(["parking-sweep", str(toml), "--rates", "0,2", "--output", str(out)]) == 1
