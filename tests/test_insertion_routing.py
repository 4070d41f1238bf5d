"""Demand routed as SUMO routes it: vehicles without a route take the one SUMO chose when it
inserted them (:func:`greenwave.engine.routing.insertion_routed_demand`), not duarouter's
free-flow shortest path."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from greenwave._sumo import sumo_home
from greenwave.engine.routing import Chosen, chosen_routes, ensure_routes, routing_seed, with_chosen_routes
from greenwave.engine.run import RunSpec
from greenwave.errors import SimulationError

GRID6 = sumo_home() / "tools" / "game" / "grid6"
END = 900.0
#: the edges from the bottom entry into grid6's three columns (80 m each)
COLUMNS = ("gneE27", "gneE28", "gneE31")


def _routes(path: Path) -> list[str]:
    return [v.find("route").get("edges", "") for v in ET.parse(path).getroot().iter("vehicle")]  # type: ignore[union-attr]


def _columns(routes: list[str]) -> Counter[str]:
    return Counter(e for r in routes for e in r.split() if e in COLUMNS)


def _spec(tmp_path: Path, name: str, routes: Path) -> RunSpec:
    return RunSpec("grid6", "optimised", 1, GRID6 / "grid6.net.xml", tmp_path / name, end_s=END,
                   route_files=(routes,))


@pytest.mark.slow
def test_flows_take_the_routes_sumo_chooses_at_insertion(tmp_path: Path) -> None:
    """grid6's from/to flows: duarouter sends every vehicle of an OD pair down its one shortest
    path (the middle column); SUMO routes each at insertion on the travel times of the moment and
    spreads them over the three columns as they fill."""
    spec = _spec(tmp_path, "a", GRID6 / "grid6.rou.xml")
    files = spec.routed_demand()
    assert files == (tmp_path / "a" / "insertion_routing" / "insertion.rou.xml",)
    duarouter = _routes(ensure_routes(spec.net_file, [GRID6 / "grid6.rou.xml"], workdir=tmp_path / "d", seed=1,
                                      begin=0, end=END)[-1])
    sumo = _routes(files[0])
    assert len(sumo) == len(duarouter) > 1000  # the same vehicles, routes replaced
    assert {(r.split()[0], r.split()[-1]) for r in sumo} == {(r.split()[0], r.split()[-1]) for r in duarouter}
    free, chosen = _columns(duarouter), _columns(sumo)
    assert set(free) == {"gneE28"}  # all on the middle column
    assert set(chosen) == set(COLUMNS) and min(chosen.values()) > 0.2 * sum(chosen.values())
    assert len(set(sumo)) >= 2 * len({(r.split()[0], r.split()[-1]) for r in sumo})  # 10 paths for 4 pairs
    # every route is one SUMO drove or chose at insertion, read from its route output
    vehroutes = tmp_path / "a" / "insertion_routing" / "vehroutes.xml"
    assert vehroutes.is_file() and "device.rerouting" in vehroutes.read_text()
    # kept for the run's later calls, and the same from another folder (seeded)
    stamp = files[0].stat().st_mtime_ns
    assert spec.routed_demand() == files and files[0].stat().st_mtime_ns == stamp
    assert _routes(_spec(tmp_path, "b", GRID6 / "grid6.rou.xml").routed_demand()[0]) == sumo
    # the folder reused with other inputs (a shorter run) routes again
    shorter = dataclasses.replace(spec, end_s=300.0, demand_end_s=300.0)
    assert shorter.routed_demand() == files and files[0].stat().st_mtime_ns != stamp
    assert len(_routes(files[0])) < len(sumo) / 2


def test_routed_demand_is_left_alone(tmp_path: Path) -> None:
    """Vehicles with routes need no routing run: the files come back as given, and routed demand
    passes through a second time unchanged (so ``proven`` routes once for all its candidates)."""
    routed = ensure_routes(GRID6 / "grid6.net.xml", [GRID6 / "grid6.rou.xml"], workdir=tmp_path / "d", seed=1,
                           begin=0, end=300)[-1]
    spec = _spec(tmp_path, "a", routed)
    assert spec.routed_demand() == (routed,)
    assert not (tmp_path / "a").exists()
    assert routing_seed(1) != routing_seed(2) and routing_seed(1) > 1_000_000


def test_vehicles_sumo_did_not_insert_take_a_neighbours_route(tmp_path: Path) -> None:
    routed = tmp_path / "routed.rou.xml"
    routed.write_text(
        '<routes>\n'
        '  <vehicle id="a" depart="10"><route edges="in mid out"/></vehicle>\n'
        '  <vehicle id="b" depart="95"><route edges="in mid out"/></vehicle>\n'
        '  <vehicle id="c" depart="20"><route edges="x y"/></vehicle>\n'
        '  <vehicle id="d" depart="triggered"><route edges="in mid out"/></vehicle>\n'
        '  <vehicle id="e" depart="30" type="truck"><route edges="in mid out"/></vehicle>\n'
        '  <vehicle id="given" depart="10"><route edges="in mid out"/></vehicle>\n'
        '</routes>\n')
    # SUMO's "b" is another departure of the flow than duarouter's (intended 40 s, not 95 s): "b"
    # takes a route chosen near 95 s; "c" has no such pair of edges; "d" no departure time; the
    # truck "e" no route chosen for a truck; "given" had a route of its own
    chosen = {"a": Chosen(10.0, "in west out"), "b": Chosen(40.0, "in east out"),
              "given": Chosen(10.0, "in east out")}
    out = tmp_path / "out.rou.xml"
    assert with_chosen_routes(routed, chosen, out, routeless=lambda v: v != "given") == (1, 1)
    assert _routes(out) == ["in west out", _routes(out)[1], "x y", "in mid out", "in mid out", "in mid out"]
    assert _routes(out)[1] in ("in west out", "in east out")
    # vehicles past the last insertion draw from the routes SUMO chose nearest their departures,
    # not all the last one; seeded
    many = tmp_path / "many.rou.xml"
    many.write_text("<routes>\n" + "".join(f'  <vehicle id="late{i}" depart="{1000 + i}"><route edges="in mid out"/>'
                                           "</vehicle>\n" for i in range(40)) + "</routes>\n")
    chosen = {f"v{i}": Chosen(float(i), f"in r{i % 4} out") for i in range(100)}
    assert with_chosen_routes(many, chosen, out, routeless=lambda v: True, seed=3) == (0, 40)
    drawn = _routes(out)
    assert set(drawn) == {f"in r{i} out" for i in range(4)}
    with_chosen_routes(many, chosen, tmp_path / "again.rou.xml", routeless=lambda v: True, seed=3)
    assert _routes(tmp_path / "again.rou.xml") == drawn


def test_route_output_of_vehicles_waiting_for_a_person_is_left_out(tmp_path: Path) -> None:
    vehroutes = tmp_path / "vehroutes.xml"
    vehroutes.write_text(
        '<routes>\n'
        '  <vehicle id="taxi" depart="triggered"><route edges="a b"/></vehicle>\n'
        '  <vehicle id="t1" depart="5.00" type="car"><routeDistribution>\n'
        '    <route replacedOnEdge="" reason="device.rerouting" edges="a b"/>\n'
        '    <route edges="a c b"/></routeDistribution></vehicle>\n'
        '</routes>\n')
    assert chosen_routes(vehroutes) == {"t1": Chosen(5.0, "a c b", "car")}
    vehroutes.write_text("<routes><vehicle")
    with pytest.raises(SimulationError, match="vehroutes.xml"):
        chosen_routes(vehroutes)


@pytest.mark.slow
def test_vehicles_with_routes_of_their_own_keep_them(tmp_path: Path) -> None:
    """A file mixing a flow with its own route and a from/to flow between the same edges: only
    the from/to flow's vehicles take the routes SUMO chose; a scenario's own route output
    (``vehroute-output`` in its .sumocfg) does not clash with the routing run's."""
    from greenwave.scenarios.sumocfg import read_sumocfg

    given = "bottom_in gneE27 bottom0to0/0 0/0to0/1 0/1totop0 gneE34 top_out"
    demand = tmp_path / "mixed.rou.xml"
    demand.write_text(
        '<routes>\n'
        f'  <flow id="given" begin="0" end="{END:g}" probability="0.1"><route edges="{given}"/></flow>\n'
        f'  <flow id="free" from="bottom_in" to="top_out" begin="0" end="{END:g}" probability="0.3"/>\n'
        '</routes>\n')
    cfg = tmp_path / "mixed.sumocfg"
    cfg.write_text(
        '<configuration><input><net-file value="{}"/><route-files value="{}"/></input>'
        '<output><vehroute-output value="own.vehroutes.xml"/><vehroute-output.exit-times value="true"/></output>'
        '</configuration>'.format(GRID6 / "grid6.net.xml", demand))
    spec = dataclasses.replace(_spec(tmp_path, "a", demand), sumo_config=read_sumocfg(cfg))
    (files,) = [spec.routed_demand()]
    routes = {v.get("id", ""): v.find("route").get("edges", "")  # type: ignore[union-attr]
              for v in ET.parse(files[-1]).getroot().iter("vehicle")}
    mine = [r for v, r in routes.items() if v.startswith("given.")]
    free = [r for v, r in routes.items() if v.startswith("free.")]
    assert len(mine) > 50 and set(mine) == {given}
    assert len(free) > 150 and len(set(free)) >= 2
    assert "on the route SUMO chose" in (tmp_path / "a" / "insertion_routing" / "routing.txt").read_text()


@pytest.mark.slow
def test_a_failed_routing_run_says_what_sumo_said(tmp_path: Path) -> None:
    bad = tmp_path / "bad.add.xml"
    bad.write_text('<additional><tlLogic id="no-such-signal" type="static" programID="x"/></additional>')
    spec = RunSpec("grid6", "optimised", 1, GRID6 / "grid6.net.xml", tmp_path / "a", end_s=60.0,
                   route_files=(GRID6 / "grid6.rou.xml",), additional_files=(bad,))
    with pytest.raises(SimulationError, match="routing run") as err:
        spec.routed_demand()
    assert "no-such-signal" in str(err.value)


@pytest.mark.slow
def test_the_optimiser_plans_on_the_routes_sumo_drives(tmp_path: Path) -> None:
    """On duarouter's routes the middle column carries every vertical vehicle, and the optimiser
    gives the middle signals' vertical stage the longer green at its 150 s cycle bound (on its
    proof seeds, one hour, SUMO measured such a plan at 226.8 s/veh, grid6's own program at
    186.9). On the routes SUMO drives, the horizontal stage (two rows for one entry, against
    three columns) gets the longer green at every signal, on a shorter cycle."""
    from greenwave.controllers.planning import plan_for_demand

    spec = _spec(tmp_path, "run", GRID6 / "grid6.rou.xml")

    def greens(files: tuple[Path, ...], name: str) -> dict[str, tuple[float, list[float]]]:
        out = plan_for_demand(spec.net_file, files, begin_s=0, end_s=END, workdir=tmp_path / name, seed=1,
                              stage_design="own")
        return {s: (t.cycle_s, [st.green_s for st in t.stages]) for s, t in out.plan.signals.items()}

    free, sumo = greens(spec.demand_files, "free"), greens(spec.routed_demand(), "sumo")
    assert set(free) == set(sumo) == {"0/0", "0/1", "1/0", "1/1", "2/0", "2/1"}
    # stage 0 greens links 0, 1, 4, 5: the vertical approaches; stage 1 the horizontal ones
    assert all(free[s][1][0] > free[s][1][1] for s in ("1/0", "1/1"))
    assert all(g[1] > g[0] for _c, g in sumo.values())
    assert max(c for c, _g in sumo.values()) < min(c for c, _g in free.values())
