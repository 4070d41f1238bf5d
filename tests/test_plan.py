"""TimingPlan: JSON, arrays round trip, SUMO export checked in libsumo, basic plan checks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from greenwave._sumo import sumo_binary, sumo_home
from greenwave.controllers.base import make_controller
from greenwave.controllers.fixed import FixedPlanController
from greenwave.controllers.plans.arrays import arrays_from_plan, plan_from_arrays, plan_from_network
from greenwave.controllers.plans.layout import complete_plan
from greenwave.controllers.plans.sumo_writer import write_sumo_additional
from greenwave.controllers.plans.timing import SignalTiming, StageTiming, TimingPlan
from greenwave.engine.arrays import CompiledNetwork, PlanArrays
from greenwave.engine.run import RunSpec
from greenwave.errors import PlanError, ScenarioError
from greenwave.networks import RoadNetwork, load_network
from greenwave.networks.compile import compile_network
from greenwave.networks.generate import grid_network
from greenwave.networks.model import Phase, Program, Signal
from greenwave.networks.pedestrians import crossing_lengths

DRT = sumo_home() / "tools" / "game" / "DRT" / "osm.net.xml"
INGOLSTADT = sumo_home() / "tools" / "game" / "fkk_in" / "ingolstadt.net.xml.gz"


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RoadNetwork, CompiledNetwork]:
    d = tmp_path_factory.mktemp("plan")
    net_file = grid_network(d / "g.net.xml", rows=2, cols=2, lanes=1)
    network = load_network(net_file)
    return net_file, network, compile_network(network, pd.DataFrame())


def run_sumo(net_file: Path, add: Path, ids: list[str], steps: int, begin: int = 0) -> tuple[dict, dict]:
    """Run SUMO (no traffic); return the loaded logics and per signal [(time, phase, next_switch)]."""
    import libsumo

    libsumo.start([sumo_binary("sumo"), "-n", str(net_file), "-a", str(add), "-b", str(begin),
                   "--no-step-log", "--no-warnings", "--duration-log.disable"])
    try:
        logics = {s: libsumo.trafficlight.getAllProgramLogics(s) for s in ids}
        programs = {s: libsumo.trafficlight.getProgram(s) for s in ids}
        trace: dict[str, list[tuple[float, int, float]]] = {s: [] for s in ids}
        for _ in range(steps):
            t = libsumo.simulation.getTime()
            for s in ids:
                trace[s].append((t, libsumo.trafficlight.getPhase(s), libsumo.trafficlight.getNextSwitch(s)))
            libsumo.simulationStep()
    finally:
        libsumo.close()
    return {s: (programs[s], logics[s]) for s in ids}, trace


def logic_of(loaded: tuple[str, list], program_id: str):  # type: ignore[no-untyped-def]
    active, logics = loaded
    assert active == program_id
    (lg,) = [lg for lg in logics if lg.programID == program_id]
    return lg


def stage0_starts(trace: list[tuple[float, int, float]], green0: float) -> list[float]:
    """Start times of phase 0 (stage 0's green) from getNextSwitch while it shows."""
    return sorted({round(ns - green0, 6) for _t, ph, ns in trace if ph == 0})


# ---------------------------------------------------------------------------------------------
# SUMO's offset semantics (the basis of write_sumo_additional's offset)


@pytest.mark.parametrize("offset", [0, 17, -17])
def test_sumo_offset_semantics(grid, tmp_path: Path, offset: int) -> None:  # type: ignore[no-untyped-def]
    """SUMO runs phase 0 of a static program from t ≡ offset (mod C), whatever --begin is."""
    net_file, network, _ = grid
    sid = next(iter(network.signals))
    n = network.signals[sid].n_links
    add = tmp_path / "raw.add.xml"
    add.write_text(
        f'<additional><tlLogic id="{sid}" type="static" programID="raw" offset="{offset}">'
        f'<phase duration="40" state="{"G" * n}"/><phase duration="3" state="{"y" * n}"/>'
        f'<phase duration="30" state="{"r" * n}"/><phase duration="7" state="{"y" * n}"/>'
        "</tlLogic></additional>"
    )
    for begin in (0, 100):
        _, trace = run_sumo(net_file, add, [sid], 170, begin=begin)
        starts = stage0_starts(trace[sid], 40.0)
        assert len(starts) >= 2
        assert all((s - offset) % 80 == 0 for s in starts), (begin, starts)
        # getPhase reports the phase of the step just done: phase 0 shows from start + 1
        tr = trace[sid]
        seen = [tr[j][0] for j in range(1, len(tr)) if tr[j][1] == 0 and tr[j - 1][1] != 0]
        assert seen and all(t - 1.0 in starts for t in seen), (seen, starts)


# ---------------------------------------------------------------------------------------------
# JSON


def _plan(compiled: CompiledNetwork, cycle: float = 90.0, offsets=None) -> TimingPlan:  # type: ignore[no-untyped-def]
    ig = compiled.stage_intergreen_s
    green = np.zeros(compiled.n_stages)
    for i in range(compiled.n_signals):
        ks = compiled.stages_of(i)
        free = cycle - ig[ks.start:ks.stop].sum()
        g = np.full(len(ks), free / len(ks))
        g[0] += 7.0
        g[-1] -= 7.0
        green[ks.start:ks.stop] = g
    off = np.arange(compiled.n_signals) * 11.0 if offsets is None else np.asarray(offsets, float)
    return plan_from_arrays(compiled, PlanArrays(cycle, off, green))


def test_json_round_trip(grid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, compiled = grid
    plan = _plan(compiled)
    plan.meta["note"] = "hello"
    path = plan.to_json(tmp_path / "sub" / "p.json")
    data = json.loads(path.read_text())
    assert data["format"] == "greenwave.timing-plan" and data["version"] == 2
    back = TimingPlan.from_json(path)
    assert back == plan
    assert list(back.signals) == list(plan.signals)
    assert not [p for p in path.parent.iterdir() if p.name != "p.json"]  # no temp files left


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(version=3), "version"),
        (lambda d: d.update(version=True), "version"),
        (lambda d: d["signals"][0].update(offset_reference={"stage": 9, "point": "green_start"}),
         r"signals\[0\]\.offset_reference\.stage"),
        (lambda d: d["signals"][0].update(offset_reference={"stage": 0, "point": "red"}),
         r"offset_reference\.point"),
        (lambda d: d["signals"][0]["stages"][0].update(links=[0, -1]), r"stages\[0\]\.links"),
        (lambda d: d["signals"][0]["stages"][0].update(signal_group=0), r"signal_group"),
        (lambda d: d["signals"][0]["stages"][0].update(walk_s=-1), r"walk_s"),
        (lambda d: d.update(net_file=3), "net_file"),
        (lambda d: d.pop("signals"), "signals"),
        (lambda d: d["signals"][1].pop("cycle_s"), r"signals\[1\]\.cycle_s"),
        (lambda d: d["signals"][0]["stages"][1].update(green_s="x"), r"signals\[0\]\.stages\[1\]\.green_s"),
        (lambda d: d["signals"][0]["stages"][0].update(phase_index=-1), r"phase_index"),
        (lambda d: d["signals"][0].update(extra=1), r"signals\[0\]\.extra"),
        (lambda d: d["signals"].append(dict(d["signals"][0])), "twice"),
    ],
)
def test_json_errors_name_file_and_key(grid, tmp_path: Path, mutate, match) -> None:  # type: ignore[no-untyped-def]
    _, _, compiled = grid
    data = _plan(compiled).to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PlanError, match=match) as err:
        TimingPlan.from_json(path)
    assert str(path) in str(err.value)


def test_json_version1_still_read(grid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A version-1 file (no offset reference, groups, links, pedestrian times, net file) reads."""
    _, _, compiled = grid
    plan = _plan(compiled)
    data = plan.to_dict()
    data["version"] = 1
    del data["net_file"]
    for sig in data["signals"]:
        del sig["offset_reference"]
        for st in sig["stages"]:
            for key in ("signal_group", "links", "walk_s", "ped_clearance_s"):
                del st[key]
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(data))
    assert TimingPlan.from_json(path) == plan
    # version 1 does not know the version-2 keys
    data["signals"][0]["stages"][0]["walk_s"] = 3.0
    path.write_text(json.dumps(data))
    with pytest.raises(PlanError, match=r"stages\[0\]\.walk_s.*unknown"):
        TimingPlan.from_json(path)


def test_json_version2_fields_round_trip(grid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    net_file, network, compiled = grid
    plan = complete_plan(_plan(compiled), network)
    assert plan.net_file == str(Path(network.path).resolve())
    sid = compiled.signal_ids[0]
    t = plan.signals[sid]
    stages = (replace(t.stages[0], walk_s=4.0, ped_clearance_s=7.5), *t.stages[1:])
    plan.signals[sid] = replace(t, stages=stages).with_offset_reference("green_end", 1)
    back = TimingPlan.from_json(plan.to_json(tmp_path / "p.json"))
    assert back == plan
    bt = back.signals[sid]
    assert (bt.offset_reference, bt.reference_stage) == ("green_end", 1)
    assert bt.stages[0].walk_s == 4.0 and bt.stages[0].ped_clearance_s == 7.5
    assert [s.signal_group for s in bt.stages] == [2, 4]
    sig = network.signals[sid]
    program = sig.programs[t.program_id]
    for st in bt.stages:
        assert st.links == tuple(j for j, c in enumerate(program.phases[st.phase_index].state) if c in "Gg")


def test_offset_reference_conversion(grid) -> None:  # type: ignore[no-untyped-def]
    _, _, compiled = grid
    t = next(iter(_plan(compiled, offsets=[13.0] * compiled.n_signals).signals.values()))
    assert t.stage0_green_start_s == 13.0
    for point, k in (("green_end", 0), ("green_start", 1), ("green_end", 1)):
        u = t.with_offset_reference(point, k)
        assert (u.offset_reference, u.reference_stage) == (point, k)
        expect = 13.0 + t.stage_green_start_s(k) + (t.stages[k].green_s if point == "green_end" else 0.0)
        assert u.offset_s == pytest.approx(expect % t.cycle_s)
        assert u.stage0_green_start_s == pytest.approx(13.0)
        assert 0 <= u.offset_s < u.cycle_s
    with pytest.raises(PlanError, match="offset-reference"):
        _ = replace(t, reference_stage=5, offset_s=1.0).stage0_green_start_s


def test_offset_reference_in_sumo(grid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An offset referenced to the end of stage 1's green runs stage 0 where it belongs."""
    net_file, network, compiled = grid
    plan = _plan(compiled)
    moved = TimingPlan({sid: t.with_offset_reference("green_end", 1) for sid, t in plan.signals.items()})
    assert any(m.offset_s != t.offset_s for m, t in zip(moved.signals.values(), plan.signals.values(), strict=True))
    add = write_sumo_additional(moved, network, tmp_path / "ref.add.xml")
    check_in_sumo(net_file, network, moved, add, "greenwave", 200)


@pytest.mark.slow
def test_complete_plan_pedestrians() -> None:
    """DRT's crossings: walk and clearance on the stage compile puts the pedestrian minimum on."""
    network = load_network(DRT)
    compiled = compile_network(network, pd.DataFrame())
    plan = complete_plan(plan_from_network(network, compiled), network)
    lengths = crossing_lengths(DRT)
    served = 0
    for i, sid in enumerate(compiled.signal_ids):
        t = plan.signals[sid]
        for k, st in zip(compiled.stages_of(i), t.stages, strict=True):
            if st.walk_s is None:
                assert st.ped_clearance_s is None
                continue
            served += 1
            assert st.walk_s == 4.0
            # the compiled pedestrian minimum green is walk + clearance on that stage
            assert float(compiled.stage_min_green_s[k]) >= st.walk_s + st.ped_clearance_s - 1e-9
            assert st.ped_clearance_s * 1.2 <= max(lengths.values()) + 1e-9
    assert served > 0
    # the signal-group mapping is complete and the network's plan stays valid
    assert all(s.signal_group is not None and s.links is not None for t in plan.signals.values() for s in t.stages)


def test_json_unreadable(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="missing.json"):
        TimingPlan.from_json(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(PlanError, match="x.json.*JSON"):
        TimingPlan.from_json(tmp_path / "x.json")


# ---------------------------------------------------------------------------------------------
# arrays


def test_arrays_round_trip(grid) -> None:  # type: ignore[no-untyped-def]
    _, _, compiled = grid
    arrays = PlanArrays(80.0, np.array([0.0, 10.0, 79.5, 33.0]), np.linspace(20, 50, compiled.n_stages))
    plan = plan_from_arrays(compiled, arrays)
    assert set(plan.signals) == set(compiled.signal_ids)
    back = arrays_from_plan(compiled, plan)
    assert back.cycle_s == 80.0
    np.testing.assert_array_equal(back.offset_s, arrays.offset_s)
    np.testing.assert_array_equal(back.green_s, arrays.green_s)
    with pytest.raises(PlanError, match="green_s has shape"):
        plan_from_arrays(compiled, PlanArrays(80.0, arrays.offset_s, arrays.green_s[:-1]))


def test_network_plan_and_cycle_mismatch(grid) -> None:  # type: ignore[no-untyped-def]
    _, network, compiled = grid
    plan = plan_from_network(network, compiled)
    for i, sid in enumerate(compiled.signal_ids):
        program = network.signals[sid].programs[compiled.program_ids[i]]
        t = plan.signals[sid]
        assert t.cycle_s == program.cycle and t.offset_s == 0.0
        assert [s.green_s for s in t.stages] == [program.phases[s.phase_index].duration for s in t.stages]
        assert t.stage_sum_s == pytest.approx(t.cycle_s)
    arrays = arrays_from_plan(compiled, plan)  # netgenerate gives every signal the same cycle
    assert arrays.cycle_s == 90.0
    sid = compiled.signal_ids[1]
    t = plan.signals[sid]
    stages = (replace(t.stages[0], green_s=t.stages[0].green_s + 10), *t.stages[1:])
    other = TimingPlan({**plan.signals, sid: replace(t, cycle_s=t.cycle_s + 10, stages=stages)})
    with pytest.raises(PlanError, match=f"{sid}.*cycle"):
        arrays_from_plan(compiled, other)
    missing = TimingPlan({k: v for k, v in plan.signals.items() if k != sid})
    with pytest.raises(PlanError, match=sid):
        arrays_from_plan(compiled, missing)


# ---------------------------------------------------------------------------------------------
# SUMO export


def check_in_sumo(net_file: Path, network: RoadNetwork, plan: TimingPlan, add: Path, program_id: str,
                  steps: int) -> None:
    """The programs SUMO loaded are what the plan says; stage 0's green starts at the offset."""
    loaded, trace = run_sumo(net_file, add, list(plan.signals), steps)
    from greenwave.networks.compile import intergreen_phases

    for sid, t in plan.signals.items():
        lg = logic_of(loaded[sid], program_id)
        base = network.signals[sid].programs[t.program_id]
        stage_phases = [s.phase_index for s in t.stages]
        expected: list[tuple[float, str]] = []
        for k, st in enumerate(t.stages):
            expected.append((st.green_s, base.phases[st.phase_index].state))
            inter = intergreen_phases(base, stage_phases, k)
            yel = [j for j in inter if "y" in base.phases[j].state]
            red = [j for j in inter if j not in yel]
            by = sum(base.phases[j].duration for j in yel)
            br = sum(base.phases[j].duration for j in red)
            for j in inter:
                share = st.yellow_s / by if j in yel else st.allred_s / br
                expected.append((base.phases[j].duration * share, base.phases[j].state))
        got = [(p.duration, p.state) for p in lg.phases]
        assert [s for _, s in got] == [s for _, s in expected], sid
        np.testing.assert_allclose([d for d, _ in got], [d for d, _ in expected], atol=1e-3)
        assert sum(d for d, _ in got) == pytest.approx(t.cycle_s, abs=1e-3)
        starts = stage0_starts(trace[sid], t.stages[0].green_s)
        assert len(starts) >= 2, sid
        start0 = t.stage0_green_start_s
        assert all((s - start0) % t.cycle_s == pytest.approx(0, abs=1e-6) for s in starts), (sid, starts)


def test_network_program_in_sumo(grid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    net_file, network, compiled = grid
    plan = plan_from_network(network, compiled)
    add = write_sumo_additional(plan, network, tmp_path / "own.add.xml")
    check_in_sumo(net_file, network, plan, add, "greenwave", 200)


def test_changed_plan_in_sumo(grid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    net_file, network, compiled = grid
    base = plan_from_network(network, compiled)
    sid = compiled.signal_ids[0]
    t = base.signals[sid]
    cycle = 70.0
    free = cycle - sum(s.intergreen_s for s in t.stages)
    stages = (replace(t.stages[0], green_s=free - 20.0), replace(t.stages[1], green_s=20.0))
    plan = TimingPlan({**base.signals, sid: replace(t, cycle_s=cycle, offset_s=17.0, stages=stages)})
    add = write_sumo_additional(plan, network, tmp_path / "changed.add.xml", program_id="gw2")
    check_in_sumo(net_file, network, plan, add, "gw2", 160)


def test_rotated_base_program_in_sumo(grid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A base program starting with a yellow phase and with split intergreens: rotated and scaled."""
    net_file, network, _ = grid
    sid = next(iter(network.signals))
    sig = network.signals[sid]
    n = sig.n_links
    half = n // 2
    # permissive greens: a half of the junction's links may conflict among themselves, and
    # the safety validator rightly refuses conflicting 'G's (see tests/test_safety.py)
    g1, g2 = "g" * half + "r" * (n - half), "r" * half + "g" * (n - half)
    y1, y2 = "y" * half + "r" * (n - half), "r" * half + "y" * (n - half)
    program = Program("rot", "static", 5.0, (
        Phase(4.0, y2), Phase(2.0, "r" * n), Phase(30.0, g1), Phase(3.0, y1), Phase(1.0, "r" * n),
        Phase(1.0, "r" * n), Phase(20.0, g2),
    ))
    sig2 = Signal(sig.id, sig.junctions, sig.movements, {"rot": program}, sig.conflicts, sig.unused_links)
    net2 = RoadNetwork(network.path, network.graph, {sid: sig2})
    compiled = compile_network(net2, pd.DataFrame())
    assert list(compiled.stage_phase) == [2, 6]
    np.testing.assert_array_equal(compiled.stage_yellow_s, [3.0, 4.0])
    np.testing.assert_array_equal(compiled.stage_allred_s, [2.0, 2.0])
    own = plan_from_network(net2, compiled)
    assert own.signals[sid].offset_s == (5.0 + 6.0) % 61.0
    check_in_sumo(net_file, net2, own, write_sumo_additional(own, net2, tmp_path / "a.add.xml"), "greenwave", 140)
    t = own.signals[sid]
    stages = (replace(t.stages[0], green_s=25.0, allred_s=4.0), replace(t.stages[1], green_s=24.0, yellow_s=5.0))
    changed = TimingPlan({sid: replace(t, cycle_s=25 + 3 + 4 + 24 + 5 + 2, offset_s=17.0, stages=stages)})
    add = write_sumo_additional(changed, net2, tmp_path / "b.add.xml")
    check_in_sumo(net_file, net2, changed, add, "greenwave", 140)


@pytest.mark.slow
@pytest.mark.parametrize("path", [DRT, INGOLSTADT], ids=["drt", "ingolstadt"])
def test_real_network_program_in_sumo(path: Path, tmp_path: Path) -> None:
    network = load_network(path)
    compiled = compile_network(network, pd.DataFrame())
    plan = plan_from_network(network, compiled)
    if path == INGOLSTADT:
        # gneJ21's hand-edited program greens a left turn together with the opposing straight
        # (see tests/test_networks.py KNOWN_GG): it is refused, the rest of the city is exported
        with pytest.raises(PlanError, match="gneJ21.*conflicting-greens"):
            write_sumo_additional(plan, network, tmp_path / "refused.add.xml")
        assert not (tmp_path / "refused.add.xml").exists()
        plan = TimingPlan({k: v for k, v in plan.signals.items() if k != "gneJ21"}, plan.meta)
    add = write_sumo_additional(plan, network, tmp_path / "own.add.xml")
    check_in_sumo(path, network, plan, add, "greenwave", int(max(t.cycle_s for t in plan.signals.values()) * 2 + 5))


# ---------------------------------------------------------------------------------------------
# basic checks


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda t: replace(t, cycle_s=t.cycle_s + 5), "cycle sum"),
        (lambda t: replace(t, offset_s=t.cycle_s), "offset"),
        (lambda t: replace(t, offset_s=-1.0), "offset"),
        (lambda t: replace(t, stages=(replace(t.stages[0], green_s=3.0, min_green_s=5.0),
                                      replace(t.stages[1], green_s=t.stages[1].green_s + t.stages[0].green_s - 3.0))),
         "min green"),
        (lambda t: replace(t, stages=(replace(t.stages[0], yellow_s=2.0, green_s=t.stages[0].green_s + 1.0),
                                      *t.stages[1:])), "yellow"),
        (lambda t: replace(t, stages=(replace(t.stages[0], allred_s=2.0, green_s=t.stages[0].green_s - 2.0),
                                      *t.stages[1:])), "all-red"),
        (lambda t: replace(t, stages=t.stages[:1]), "stages"),
        (lambda t: replace(t, program_id="nope"), "nope"),
    ],
)
def test_bad_plans(grid, tmp_path: Path, change, rule) -> None:  # type: ignore[no-untyped-def]
    _, network, compiled = grid
    plan = plan_from_network(network, compiled)
    sid = compiled.signal_ids[-1]
    bad = TimingPlan({**plan.signals, sid: change(plan.signals[sid])})
    out = tmp_path / "bad.add.xml"
    with pytest.raises(PlanError, match=rule) as err:
        write_sumo_additional(bad, network, out)
    assert repr(sid) in str(err.value)
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# controller


def test_fixed_controller(grid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    net_file, network, compiled = grid
    plan_path = plan_from_network(network, compiled).to_json(tmp_path / "plan.json")
    ctx = RunSpec(scenario="t", controller="fixed", net_file=net_file, route_files=(), begin_s=0, end_s=100,
                  seed=1, workdir=tmp_path, options={})
    ctrl = make_controller("fixed", {"plan": str(plan_path)})
    assert isinstance(ctrl, FixedPlanController)
    (add,) = ctrl.prepare(ctx)
    assert add.parent == tmp_path and "programID=\"greenwave\"" in add.read_text()
    with pytest.raises(ScenarioError, match="plan"):
        make_controller("fixed", {}).prepare(ctx)
    with pytest.raises(ScenarioError, match="unknown"):
        make_controller("fixed", {"plan": str(plan_path), "x": 1}).prepare(ctx)


def test_stage_types() -> None:
    st = StageTiming(0, 30.0, 3.0, 2.0, 5.0)
    assert st.intergreen_s == 5.0
    sig = SignalTiming("a", "0", 70.0, 0.0, (st, StageTiming(2, 30.0, 5.0, 0.0, 5.0)))
    assert sig.stage_sum_s == 70.0


def test_sumo_round_trip_every_timing(grid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Export, load in SUMO, read back with getCompleteRedYellowGreenDefinition: same plan.

    The stage times are rebuilt from the phases SUMO reports (green = the stage's green
    phase, yellow = its phases showing 'y', all-red = its other intergreen phases) and the
    offset from when SUMO starts stage 0's green; every one equals the plan's (ms export).
    """
    import libsumo

    net_file, network, compiled = grid
    plan = complete_plan(_plan(compiled, cycle=90.0, offsets=[0.0, 12.0, 41.0, 89.0]), network)
    add = write_sumo_additional(plan, network, tmp_path / "rt.add.xml", program_id="rt")
    libsumo.start([sumo_binary("sumo"), "-n", str(net_file), "-a", str(add), "--no-step-log",
                   "--no-warnings", "--duration-log.disable"])
    try:
        logics = {sid: libsumo.trafficlight.getCompleteRedYellowGreenDefinition(sid) for sid in plan.signals}
    finally:
        libsumo.close()
    _, trace = run_sumo(net_file, add, list(plan.signals), 170)
    for sid, t in plan.signals.items():
        (lg,) = [lg for lg in logics[sid] if lg.programID == "rt"]
        phases = [(p.duration, p.state) for p in lg.phases]
        # rebuild the stages: a green phase (no 'y') starts a stage
        rebuilt: list[list[float]] = []
        for d, state in phases:
            if "y" not in state and ("G" in state or "g" in state):
                rebuilt.append([d, 0.0, 0.0])
            elif "y" in state:
                rebuilt[-1][1] += d
            else:
                rebuilt[-1][2] += d
        assert len(rebuilt) == len(t.stages), sid
        for st, (g, y, r) in zip(t.stages, rebuilt, strict=True):
            assert g == pytest.approx(st.green_s, abs=5e-4)
            assert y == pytest.approx(st.yellow_s, abs=5e-4)
            assert r == pytest.approx(st.allred_s, abs=5e-4)
        assert sum(d for d, _ in phases) == pytest.approx(t.cycle_s, abs=1e-3)
        starts = stage0_starts(trace[sid], t.stages[0].green_s)
        assert starts and all((s - t.offset_s) % t.cycle_s == pytest.approx(0, abs=1e-6)
                              or (s - t.offset_s) % t.cycle_s == pytest.approx(t.cycle_s, abs=1e-6)
                              for s in starts), (sid, starts)


def traci_read_back(net_file: Path, add: Path, plan: TimingPlan, program_id: str, seconds: int) -> TimingPlan:
    """Load ``add`` with the net in SUMO through TraCI (the socket client ``traci``, a separate
    SUMO process) and rebuild the plan from what SUMO reports: each stage's green, yellow and
    all-red from the active program's phases (getAllProgramLogics), the offset from when SUMO
    starts stage 0's green (getNextSwitch while phase 0 shows), re-referenced as in ``plan``."""
    import traci

    traci.start([sumo_binary("sumo"), "-n", str(net_file), "-a", str(add), "--step-length", "0.125",
                 "--no-step-log", "--no-warnings", "--duration-log.disable"], label="greenwave-read-back")
    try:
        conn = traci.getConnection("greenwave-read-back")
        ids = list(plan.signals)
        logics, starts = {}, {sid: set() for sid in ids}
        for sid in ids:
            assert conn.trafficlight.getProgram(sid) == program_id
            (logics[sid],) = [lg for lg in conn.trafficlight.getAllProgramLogics(sid) if lg.programID == program_id]
        for _ in range(seconds * 8):  # 0.125 s steps: the plans' times are multiples of 1/8 s
            for sid in ids:
                if conn.trafficlight.getPhase(sid) == 0:
                    g0 = logics[sid].phases[0].duration
                    starts[sid].add(round(conn.trafficlight.getNextSwitch(sid) - g0, 3))
            conn.simulationStep()
    finally:
        traci.switch("greenwave-read-back")
        traci.close()
    signals = {}
    for sid, t in plan.signals.items():
        rebuilt: list[list[float]] = []
        for ph in logics[sid].phases:
            if "y" not in ph.state and ("G" in ph.state or "g" in ph.state):
                rebuilt.append([ph.duration, 0.0, 0.0])
            elif "y" in ph.state:
                rebuilt[-1][1] += ph.duration
            else:
                rebuilt[-1][2] += ph.duration
        cycle = sum(ph.duration for ph in logics[sid].phases)
        start0 = min(starts[sid]) % cycle
        stages = tuple(replace(st, green_s=g, yellow_s=y, allred_s=r)
                       for st, (g, y, r) in zip(t.stages, rebuilt, strict=True))
        back = replace(t, cycle_s=cycle, stages=stages, offset_s=start0, offset_reference="green_start",
                       reference_stage=0)
        signals[sid] = back.with_offset_reference(t.offset_reference, t.reference_stage)
    return TimingPlan(signals, dict(plan.meta), net_file=plan.net_file)


def _assert_same_timings(a: TimingPlan, b: TimingPlan, tol: float) -> None:
    assert list(a.signals) == list(b.signals)
    for sid, ta in a.signals.items():
        tb = b.signals[sid]
        assert tb.cycle_s == pytest.approx(ta.cycle_s, abs=tol), sid
        d = (tb.offset_s - ta.offset_s) % ta.cycle_s
        assert min(d, ta.cycle_s - d) <= tol, (sid, ta.offset_s, tb.offset_s)
        for sa, sb in zip(ta.stages, tb.stages, strict=True):
            for f in ("green_s", "yellow_s", "allred_s"):
                assert getattr(sb, f) == pytest.approx(getattr(sa, f), abs=tol), (sid, f)


@pytest.mark.slow
def test_sumo_round_trip_through_traci(grid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Export (greenwave export --format sumo), load in SUMO, read back through TraCI: the
    same cycle, offset (to its reference point) and every stage's green, yellow and all-red."""
    from greenwave.scenarios.cli import main

    net_file, network, compiled = grid
    plan = complete_plan(_plan(compiled, cycle=87.0, offsets=[0.0, 12.0, 41.0, 86.0]), network)
    # ms-resolution greens and an offset referenced to the end of stage 1's green at one signal
    sid0, sid1 = list(plan.signals)[:2]
    t = plan.signals[sid0]
    t = replace(t, stages=(replace(t.stages[0], green_s=t.stages[0].green_s + 0.125),
                           replace(t.stages[1], green_s=t.stages[1].green_s - 0.125)))
    plan = TimingPlan({**plan.signals, sid0: t, sid1: plan.signals[sid1].with_offset_reference("green_end", 1)},
                      net_file=str(net_file))
    path = plan.to_json(tmp_path / "plan.json")
    add = tmp_path / "plan.add.xml"
    assert main(["export", str(path), "--format", "sumo", "--output", str(add)]) == 0
    back = traci_read_back(net_file, add, plan, "greenwave", 2 * 87 + 5)
    _assert_same_timings(plan, back, 1e-3)
    # all-red phases too: a netgenerate grid with 2 s all-red, greens and all-reds retimed
    from greenwave._sumo import run_sumo_command

    ar = tmp_path / "ar.net.xml"
    run_sumo_command(["netgenerate", "--grid", "--grid.x-number=2", "--grid.y-number=1", "--grid.attach-length=100",
                      "--tls.guess=true", "--tls.guess.threshold=0", "--tls.allred.time=2",
                      f"--output-file={ar}"], what="netgenerate")
    ar_net = load_network(ar)
    own = plan_from_network(ar_net, compile_network(ar_net, pd.DataFrame()))
    signals = {}
    for n, (sid, t) in enumerate(own.signals.items()):
        st0, st1 = t.stages
        signals[sid] = replace(t, offset_s=17.5 + n, stages=(replace(st0, green_s=st0.green_s - 10.5, allred_s=3.5),
                                                             replace(st1, green_s=st1.green_s + 9.0)))
    retimed = TimingPlan(signals, net_file=str(ar))
    add = write_sumo_additional(retimed, ar_net, tmp_path / "ar.add.xml")
    _assert_same_timings(retimed, traci_read_back(ar, add, retimed, "greenwave", 2 * 90 + 5), 1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("control", ["actuated", "delay_based"])
def test_actuated_plan_greens_never_end_below_the_floors_in_sumo(control: str, tmp_path: Path) -> None:
    """DRT's signals (crossings included) written as SUMO actuated / delay-based programs: every
    green may end at its floor (minimum green, walk + crossing time), never below, and run to
    twice its planned length; with no traffic SUMO ends each green at that floor."""
    from traci import constants as tc

    from greenwave.controllers.plans.layout import base_program
    from greenwave.controllers.plans.safety_rules import stage_floors

    network = load_network(DRT)
    plan = plan_from_network(network, compile_network(network, pd.DataFrame()))
    add = write_sumo_additional(plan, network, tmp_path / "act.add.xml", program_id="gw_act", control=control)
    ids = sorted(plan.signals)[:4]
    longest = max(sum(st.green_s * 2 + st.intergreen_s for st in plan.signals[s].stages) for s in ids)
    loaded, trace = run_sumo(DRT, add, ids, int(longest) + 5)
    at_floor = 0
    for sid in ids:
        t = plan.signals[sid]
        lg = logic_of(loaded[sid], "gw_act")
        kinds = {"actuated": tc.TRAFFICLIGHT_TYPE_ACTUATED, "delay_based": tc.TRAFFICLIGHT_TYPE_DELAYBASED}
        assert lg.type == kinds[control]
        floors = stage_floors(network, sid, base_program(network, sid, t.program_id))
        greens = [ph for ph in lg.phases if ph.minDur != ph.maxDur]
        assert len(greens) == len(t.stages)
        for ph, st, fl in zip(greens, t.stages, floors, strict=True):
            assert ph.minDur >= max(fl.green_s, fl.pedestrian_s, st.min_green_s)
            assert ph.minDur == int(ph.minDur) and ph.maxDur == int(ph.maxDur)  # whole seconds, rounded up
            assert 0 <= ph.maxDur - max(st.green_s, min(2 * st.green_s, 60.0)) < 1
        # no traffic: greens end early, never before their minDur (their floor)
        green_idx = [k for k, ph in enumerate(lg.phases) if ph.minDur != ph.maxDur]
        runs = []
        last, length = None, 0
        for _t, phase, _ns in trace[sid]:
            if phase == last:
                length += 1
            else:
                if last in green_idx:
                    runs.append((last, length))
                last, length = phase, 1
        assert runs, sid
        for k, n in runs[1:]:  # the first may have started before t=0
            assert lg.phases[k].minDur <= n <= lg.phases[k].maxDur
            at_floor += n == lg.phases[k].minDur
    # SUMO's gap-based logic ends greens without traffic at their floor; its delay-based one
    # runs them to their maximum when no other stage waits either
    assert at_floor > 0 if control == "actuated" else at_floor == 0
