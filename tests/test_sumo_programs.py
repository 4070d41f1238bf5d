"""SUMO programs for the baselines, checked by running them in SUMO (libsumo), no mocks."""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from greenwave._sumo import run_sumo_command, sumo_binary, sumo_home, sumo_tool
from greenwave.controllers import sumo_programs as sp
from greenwave.engine.routing import ensure_routes
from greenwave.errors import NetworkError, ScenarioError, SimulationError

END = 600


@dataclass
class Grid:
    net: Path
    trips: Path
    tls: list[str]


@dataclass
class RunResult:
    program: dict[str, str]
    logic: dict[str, object]  # tls -> libsumo logic of the active program
    green_durations: dict[str, list[float]] = field(default_factory=dict)
    detectors: list[str] = field(default_factory=list)
    lanearea_lengths: list[float] = field(default_factory=list)
    arrived: int = 0


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Grid:
    d = tmp_path_factory.mktemp("sumo_programs")
    net = d / "grid.net.xml"
    run_sumo_command(
        ["netgenerate", "--grid", "--grid.number", "3", "--grid.length", "200",
         "--grid.attach-length", "200", "--default-junction-type", "traffic_light",
         "--default.lanenumber", "2", "--no-turnarounds", "true", "--seed", "1", "-o", net],
        what="test grid",
    )  # fmt: skip
    trips = d / "trips.xml"
    run_sumo_command(
        [sumo_tool("randomTrips.py"), "-n", net, "-o", trips, "-b", "0", "-e", str(END),
         "-p", "1.5", "--fringe-factor", "10", "--min-distance", "300", "--seed", "42"],
        what="test trips",
        cwd=d,  # randomTrips also writes a validated routes.rou.xml into its working folder
    )  # fmt: skip
    tls = sorted(sp.read_programs(net))
    assert len(tls) == 9
    return Grid(net=net, trips=trips, tls=tls)


def _run(net: Path, routes: list[Path], adds: list[Path], end: int = END) -> RunResult:
    import libsumo

    args = [sumo_binary("sumo"), "-n", str(net), "-r", ",".join(map(str, routes)),
            "--no-step-log", "--seed", "1", "-e", str(end), "--xml-validation", "never",
            "--no-warnings"]  # fmt: skip
    if adds:
        args += ["-a", ",".join(map(str, adds))]
    libsumo.start(args)
    try:
        tl = libsumo.trafficlight
        ids = list(tl.getIDList())
        last_phase = {t: tl.getPhase(t) for t in ids}
        since = {t: 0.0 for t in ids}
        greens: dict[str, list[float]] = defaultdict(list)
        arrived = 0
        for _ in range(end):
            libsumo.simulationStep()
            arrived += libsumo.simulation.getArrivedNumber()
            now = libsumo.simulation.getTime()
            for t in ids:
                ph = tl.getPhase(t)
                if ph != last_phase[t]:
                    state = tl.getCompleteRedYellowGreenDefinition(t)
                    active = next(lg for lg in state if lg.programID == tl.getProgram(t))
                    old = active.phases[last_phase[t]].state
                    if ("G" in old or "g" in old) and "y" not in old and since[t] > 0:
                        greens[t].append(round(now - since[t], 1))
                    last_phase[t], since[t] = ph, now
        program = {t: tl.getProgram(t) for t in ids}
        logic = {}
        for t in ids:
            logic[t] = next(
                lg for lg in tl.getAllProgramLogics(t) if lg.programID == program[t]
            )
        dets = list(libsumo.inductionloop.getIDList())
        areas = list(libsumo.lanearea.getIDList())
        lengths = [libsumo.lanearea.getLength(a) for a in areas]
        return RunResult(program, logic, dict(greens), dets, lengths, arrived)
    finally:
        libsumo.close()


def _cycle(logic: object) -> float:
    return sum(p.duration for p in logic.phases)  # type: ignore[attr-defined]


def _tlogics(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "additional"
    return {el.get("id", ""): el for el in root.findall("tlLogic")}


# ------------------------------------------------------------------------------------------
# ensure_routes


@pytest.mark.slow
def test_ensure_routes_routes_trips(grid: Grid, tmp_path: Path) -> None:
    out = ensure_routes(grid.net, [grid.trips], workdir=tmp_path, seed=3)
    assert len(out) == 1 and out[0].parent == tmp_path
    root = ET.parse(out[0]).getroot()
    assert not root.findall("trip")
    vehicles = root.findall("vehicle")
    n_trips = len(ET.parse(grid.trips).getroot().findall("trip"))
    assert 0.9 * n_trips <= len(vehicles) <= n_trips
    assert all(len(v.find("route").get("edges", "").split()) >= 2 for v in vehicles)
    # already routed: handed back untouched, nothing new written
    again = ensure_routes(grid.net, out, workdir=tmp_path / "again")
    assert again == out
    assert not (tmp_path / "again" / "routed.rou.xml").exists()


@pytest.mark.slow
def test_ensure_routes_expands_flows_and_reads_gzip(grid: Grid, tmp_path: Path) -> None:
    demand = """<routes>
  <vType id="slow" maxSpeed="10"/>
  <route id="r0" edges="A0B0 B0C0"/>
  <flow id="num" begin="0" end="100" number="10" from="A0B0" to="B0C0"/>
  <flow id="vph" begin="0" end="100" vehsPerHour="360" route="r0" type="slow"/>
  <flow id="per" begin="0" end="100" period="20"><route edges="A0A1 A1A2"/></flow>
  <flow id="prob" begin="0" end="100" probability="0.2" from="A0B0" to="B0C0"/>
  <vehicle id="fixed" depart="3" route="r0"/>
</routes>
"""
    src = tmp_path / "demand.rou.xml.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.write(demand)
    routed_a = ensure_routes(grid.net, [src], workdir=tmp_path / "a", seed=7)
    routed_b = ensure_routes(grid.net, [src], workdir=tmp_path / "b", seed=7)
    root = ET.parse(routed_a[0]).getroot()
    assert not root.findall("flow")
    ids = [v.get("id", "") for v in root.findall("vehicle")]
    by_flow = defaultdict(int)
    for i in ids:
        by_flow[i.split(".")[0]] += 1
    assert by_flow["num"] == 10
    assert by_flow["vph"] == 10
    assert by_flow["per"] == 5
    assert 5 <= by_flow["prob"] <= 40
    assert by_flow["fixed"] == 1
    assert all(v.find("route") is not None for v in root.findall("vehicle"))
    # seeded: the same seed gives the same demand
    assert routed_a[0].read_text().split("-->", 1)[1] == routed_b[0].read_text().split("-->", 1)[1]


def test_ensure_routes_window(grid: Grid, tmp_path: Path) -> None:
    out = ensure_routes(grid.net, [grid.trips], workdir=tmp_path, begin=100, end=200)
    departs = [float(v.get("depart", "0")) for v in ET.parse(out[0]).getroot().iter("vehicle")]
    assert departs and all(100 <= d < 200 for d in departs)


def test_missing_inputs_are_scenario_errors(grid: Grid, tmp_path: Path) -> None:
    missing = tmp_path / "nope.rou.xml"
    with pytest.raises(ScenarioError, match="nope.rou.xml"):
        ensure_routes(grid.net, [missing], workdir=tmp_path)
    with pytest.raises(ScenarioError, match="nope.rou.xml"):
        sp.webster_programs(grid.net, [missing], workdir=tmp_path)
    with pytest.raises(ScenarioError, match="nope.rou.xml"):
        sp.coordinator_programs(grid.net, [missing], workdir=tmp_path)
    with pytest.raises(ScenarioError, match="missing.net.xml"):
        sp.actuated_programs(tmp_path / "missing.net.xml", workdir=tmp_path, kind="actuated")
    with pytest.raises(ScenarioError, match="missing.net.xml"):
        sp.webster_programs(tmp_path / "missing.net.xml", [grid.trips], workdir=tmp_path)
    with pytest.raises(ScenarioError, match="kind"):
        sp.actuated_programs(grid.net, workdir=tmp_path, kind="fixed")  # type: ignore[arg-type]


def test_tool_failure_is_simulation_error(grid: Grid, tmp_path: Path) -> None:
    bad_net = tmp_path / "bad.net.xml"
    bad_net.write_text("<net><edge id='x'></net>")
    with pytest.raises(SimulationError, match="duarouter"):
        ensure_routes(bad_net, [grid.trips], workdir=tmp_path)


def test_net_without_signals_is_network_error(tmp_path: Path) -> None:
    net = tmp_path / "plain.net.xml"
    run_sumo_command(["netgenerate", "--grid", "--grid.number", "2", "-o", net], what="plain")
    with pytest.raises(NetworkError, match="no traffic light"):
        sp.actuated_programs(net, workdir=tmp_path, kind="actuated")


# ------------------------------------------------------------------------------------------
# Webster


@pytest.mark.slow
def test_webster_programs_run_in_sumo(grid: Grid, tmp_path: Path) -> None:
    add = sp.webster_programs(grid.net, [grid.trips], workdir=tmp_path, end=END, seed=1)
    assert add == tmp_path / "gw_webster.add.xml"
    logics = _tlogics(add)
    assert sorted(logics) == grid.tls
    static = sp.read_programs(grid.net)
    res = _run(grid.net, [grid.trips], [add])
    assert set(res.program.values()) == {"gw_webster"}
    changed = 0
    for t in grid.tls:
        cycle = _cycle(res.logic[t])
        assert 30 <= cycle <= 120 + 4 * 4
        # yellow phases keep the network's clearance time
        for ph_new, ph_old in zip(res.logic[t].phases, static[t].findall("phase"), strict=True):
            assert ph_new.state == ph_old.get("state")
            if "y" in ph_new.state:
                assert ph_new.duration >= float(ph_old.get("duration", "0"))
        changed += cycle != sum(float(p.get("duration", "0")) for p in static[t].findall("phase"))
    assert changed == len(grid.tls)  # demand reaches every signal of this grid
    assert res.arrived > 100


@pytest.mark.slow
def test_webster_keeps_static_program_without_traffic(grid: Grid, tmp_path: Path) -> None:
    # demand along one row only: the other signals see no vehicle and keep their program
    demand = tmp_path / "row.rou.xml"
    demand.write_text(
        '<routes><flow id="f" begin="0" end="600" vehsPerHour="600" '
        'from="bottom0A0" to="A0B0"/></routes>'
    )
    add = sp.webster_programs(grid.net, [demand], workdir=tmp_path, end=END)
    logics = _tlogics(add)
    static = sp.read_programs(grid.net)
    assert sorted(logics) == grid.tls
    cycles = {t: sum(float(p.get("duration", "0")) for p in lg.findall("phase"))
              for t, lg in logics.items()}  # fmt: skip
    static_cycles = {t: sum(float(p.get("duration", "0")) for p in lg.findall("phase"))
                     for t, lg in static.items()}  # fmt: skip
    assert cycles["A0"] != static_cycles["A0"]
    assert all(cycles[t] == static_cycles[t] for t in grid.tls if t != "A0")
    res = _run(grid.net, [demand], [add], end=120)
    assert set(res.program.values()) == {"gw_webster"}


# ------------------------------------------------------------------------------------------
# coordinator


@pytest.mark.slow
def test_coordinator_programs_run_in_sumo(grid: Grid, tmp_path: Path) -> None:
    add = sp.coordinator_programs(grid.net, [grid.trips], workdir=tmp_path, end=END)
    logics = _tlogics(add)
    assert sorted(logics) == grid.tls
    offsets = [float(lg.get("offset", "0")) for lg in logics.values()]
    assert len(set(offsets)) > 1
    res = _run(grid.net, [grid.trips], [add])
    assert set(res.program.values()) == {"gw_coordinator"}
    for t in grid.tls:
        assert 0 <= float(logics[t].get("offset", "0")) < _cycle(res.logic[t])


@pytest.mark.slow
def test_coordinator_on_webster_programs(grid: Grid, tmp_path: Path) -> None:
    web = sp.webster_programs(grid.net, [grid.trips], workdir=tmp_path / "w", end=END)
    add = sp.coordinator_programs(
        grid.net, [grid.trips], workdir=tmp_path / "c", end=END, base_programs=web,
        program_id="gw_both",
    )  # fmt: skip
    web_logics, logics = _tlogics(web), _tlogics(add)
    for t in grid.tls:
        assert [p.attrib for p in logics[t].findall("phase")] == [
            p.attrib for p in web_logics[t].findall("phase")
        ]
    res = _run(grid.net, [grid.trips], [add], end=120)
    assert set(res.program.values()) == {"gw_both"}


# ------------------------------------------------------------------------------------------
# actuated / delay-based


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["actuated", "delay_based"])
def test_actuated_programs_run_in_sumo(grid: Grid, tmp_path: Path, kind: str) -> None:
    add = sp.actuated_programs(
        grid.net, workdir=tmp_path, kind=kind, detector_range=50.0  # type: ignore[arg-type]
    )
    pid = f"gw_{kind}"
    logics = _tlogics(add)
    assert sorted(logics) == grid.tls
    for lg in logics.values():
        assert lg.get("type") == kind and lg.get("programID") == pid
        for ph in lg.findall("phase"):
            lo, hi, dur = (float(ph.get(k, "nan")) for k in ("minDur", "maxDur", "duration"))
            if "y" in ph.get("state", ""):
                assert lo == hi == dur
            else:
                assert 0 < lo <= 5 and lo <= dur <= hi <= 50
    res = _run(grid.net, [grid.trips], [add])
    assert set(res.program.values()) == {pid}
    code = 3 if kind == "actuated" else 5  # libsumo.TRAFFICLIGHT_TYPE_ACTUATED / _DELAYBASED
    assert {res.logic[t].type for t in grid.tls} == {code}  # type: ignore[attr-defined]
    durations = [d for ds in res.green_durations.values() for d in ds]
    assert len(durations) > 20
    assert len(set(durations)) > 3  # green times respond to traffic
    assert min(durations) >= 5 - 1e-6 and max(durations) <= 50 + 1e-6
    if kind == "actuated":
        assert res.detectors  # SUMO placed induction loops for the gap-based control
    else:
        assert res.lanearea_lengths and max(res.lanearea_lengths) <= 50 + 1e-6


def test_actuated_bounds_policy(tmp_path: Path) -> None:
    net = tmp_path / "turns.net.xml"
    run_sumo_command(
        ["netgenerate", "--grid", "--grid.number", "2", "--grid.attach-length", "100",
         "-j", "traffic_light", "-L", "3", "--turn-lanes", "1", "--tls.left-green.time", "6",
         "--no-turnarounds", "true", "-o", net],
        what="grid with turn lanes",
    )  # fmt: skip
    add = sp.actuated_programs(net, workdir=tmp_path, kind="actuated", min_green=7, max_green=60)
    for lg in _tlogics(add).values():
        for ph in lg.findall("phase"):
            state = ph.get("state", "")
            dur = float(ph.get("duration", "0"))
            lo, hi = float(ph.get("minDur", "0")), float(ph.get("maxDur", "0"))
            if "y" in state or not ({"G", "g"} & set(state)):
                assert lo == hi == dur
            else:
                assert lo == min(7, dur)
                assert hi == max(dur, min(60, 2 * dur))


# ------------------------------------------------------------------------------------------
# a network shipped with SUMO


@pytest.mark.slow
def test_real_network_grid6(tmp_path: Path) -> None:
    base = sumo_home() / "tools" / "game" / "grid6"
    net, flows = base / "grid6.net.xml", base / "grid6.rou.xml"
    tls = sorted(sp.read_programs(net))
    assert tls
    routed = ensure_routes(net, [flows], workdir=tmp_path / "r", end=END, seed=2)
    assert routed[0].parent == tmp_path / "r"
    web = sp.webster_programs(net, [flows], workdir=tmp_path / "w", end=END, seed=2)
    coord = sp.coordinator_programs(net, [flows], workdir=tmp_path / "c", end=END,
                                    base_programs=web)  # fmt: skip
    act = sp.actuated_programs(net, workdir=tmp_path / "a", kind="actuated")
    static = sp.read_programs(net)
    for add, pid in ((web, "gw_webster"), (coord, "gw_coordinator"), (act, "gw_actuated")):
        res = _run(net, [flows], [add], end=300)
        assert set(res.program.values()) == {pid}, add
        assert sorted(res.program) == tls
        if pid == "gw_webster":
            assert any(
                _cycle(res.logic[t])
                != sum(float(p.get("duration", "0")) for p in static[t].findall("phase"))
                for t in tls
            )


def test_demand_is_routed_as_the_sumocfg_routes_it(tmp_path: Path) -> None:
    """grid6's .sumocfg routes its from/to flows with ``weights.random-factor`` 1.2: SUMO spreads
    them over the grid, so the analyses' routing must too. Without the option every flow takes
    its one shortest path and the model saw no demand at all on half of the approaches (the
    optimiser gave them 5 s of a 150 s cycle, and SUMO's vehicles there waited 200–280 s)."""
    from greenwave.engine.run import RunSpec
    from greenwave.scenarios.sumocfg import read_sumocfg

    game = sumo_home() / "tools" / "game"
    cfg = read_sumocfg(game / "grid6.sumocfg")
    spec = RunSpec("grid6", "static", 1, game / "grid6" / "grid6.net.xml", tmp_path, sumo_config=cfg)
    assert spec.route_choice == ("--weights.random-factor", "1.2")
    assert RunSpec("grid6", "static", 1, spec.net_file, tmp_path).route_choice == ()

    def routes(folder: str, choice: tuple[str, ...]) -> dict[str, int]:
        out = ensure_routes(spec.net_file, [game / "grid6" / "grid6.rou.xml"], workdir=tmp_path / folder,
                            seed=1, end=900, route_choice=choice)
        count: dict[str, int] = defaultdict(int)
        for veh in ET.parse(out[-1]).getroot().iter("vehicle"):
            count[veh.find("route").get("edges", "")] += 1  # type: ignore[union-attr]
        return count

    plain, spread = routes("plain", ()), routes("spread", spec.route_choice)
    assert sum(plain.values()) == sum(spread.values()) > 1000
    assert len(plain) == 4  # four OD pairs, one path each
    assert len(spread) > 8
    # the bottom approach of signal 0/0 carries vehicles only when routed as SUMO does
    assert not any(" bottom0to0/0 " in r for r in plain)
    assert sum(n for r, n in spread.items() if " bottom0to0/0 " in r) > 30


def test_a_green_written_as_several_phases_is_one_green(tmp_path: Path) -> None:
    """RiLSA example 3's city program shows one stage as phases of 2, 2 and 9 s with the same
    state: one 13 s green, so SUMO's actuated copy may extend all three; a 2 s phase with a
    state of its own (a group starting early) keeps its length, and the cycle wraps (its last
    1 s and first 5 s of all-red are one 6 s red)."""
    rilsa = sumo_home() / "tools" / "sumolib" / "scenario" / "scenarios" / "RealWorld" / "RiLSA_example3"
    tls = rilsa / "rilsa3_tls.add.xml"
    own = ET.parse(tls).getroot().find("tlLogic")
    assert own is not None
    phases = own.findall("phase")
    shown = sp._shown_s(phases)
    assert [p.get("state") for p in phases[4:7]] == ["rrrGGGrrrrrr"] * 3 and shown[4:7] == [13.0] * 3
    assert phases[3].get("state") == "rrrGGorrrrrr" and shown[3] == 2.0
    assert shown[0] == shown[-1] == 6.0
    add = sp.actuated_programs(rilsa / "rilsa3.net.xml", workdir=tmp_path, program_files=[tls])
    copy = _tlogics(add)["0"].findall("phase")
    bounds = [(p.get("state"), float(p.get("minDur", "0")), float(p.get("maxDur", "0"))) for p in copy]
    assert bounds[3] == ("rrrGGorrrrrr", 2.0, 2.0)  # a step
    assert bounds[4:7] == [("rrrGGGrrrrrr", 2.0, 4.0), ("rrrGGGrrrrrr", 2.0, 4.0), ("rrrGGGrrrrrr", 5.0, 18.0)]
    assert sp._shown_s([]) == [] and sp._shown_s(phases[4:6]) == [4.0, 4.0]


def test_cyclic_runs_group_equal_neighbours_around_the_cycle() -> None:
    """The one run finder of a program's cycle (SUMO's actuated copies, pedestrian times)."""
    from greenwave.networks.signal_states import cyclic_runs

    assert cyclic_runs([]) == []
    assert cyclic_runs(["a"]) == [[0]]
    assert cyclic_runs(["a", "a", "a"]) == [[0, 1, 2]]
    assert cyclic_runs(["a", "b", "b", "a"]) == [[1, 2], [3, 0]]  # the last run wraps to the first phase
    assert cyclic_runs([True, False, True, True]) == [[1], [2, 3, 0]]
