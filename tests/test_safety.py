"""Safety validator of timing plans: real SUMO networks and Hypothesis property tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from greenwave._sumo import run_sumo_command, sumo_binary, sumo_home
from greenwave.controllers.plans.arrays import plan_from_network
from greenwave.controllers.plans.safety import (
    RULES,
    Violation,
    assert_safe,
    plan_phase_sequence,
    validate_plan,
)
from greenwave.controllers.plans.sumo_writer import write_sumo_additional
from greenwave.controllers.plans.timing import TimingPlan
from greenwave.errors import PlanError
from greenwave.networks import RoadNetwork, load_network
from greenwave.networks.compile import compile_network
from greenwave.networks.generate import grid_network

SETTINGS = settings(
    max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
_NO_FLOWS = pd.DataFrame(columns=["from_edge", "to_edge", "vehicles", "flow_vph"])
_GRID6 = sumo_home() / "tools" / "game" / "grid6" / "grid6.net.xml"


def _own_plan(network: RoadNetwork) -> TimingPlan:
    return plan_from_network(network, compile_network(network, _NO_FLOWS))


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[RoadNetwork, TimingPlan]:
    path = grid_network(tmp_path_factory.mktemp("safety") / "g.net.xml", rows=2, cols=2, lanes=2)
    network = load_network(path)
    return network, _own_plan(network)


@pytest.fixture(scope="module")
def grid6() -> tuple[RoadNetwork, TimingPlan]:
    if not _GRID6.exists():
        pytest.skip(f"{_GRID6} not shipped with this SUMO")
    network = load_network(_GRID6)
    return network, _own_plan(network)


def _with_signal(plan: TimingPlan, sid: str, **changes: object) -> TimingPlan:
    signals = dict(plan.signals)
    signals[sid] = replace(signals[sid], **changes)
    return TimingPlan(signals, dict(plan.meta))


def _with_stage(plan: TimingPlan, sid: str, k: int, **changes: float) -> TimingPlan:
    t = plan.signals[sid]
    stages = list(t.stages)
    stages[k] = replace(stages[k], **changes)
    return _with_signal(plan, sid, stages=tuple(stages))


def _with_phase_state(network: RoadNetwork, sid: str, phase: int, state: str) -> RoadNetwork:
    """A copy of ``network`` whose signal ``sid`` base program has ``state`` in ``phase``."""
    sig = network.signals[sid]
    program = sig.default_program
    assert program is not None
    phases = list(program.phases)
    phases[phase] = replace(phases[phase], state=state)
    programs = dict(sig.programs)
    programs[program.id] = replace(program, phases=tuple(phases))
    signals = dict(network.signals)
    signals[sid] = replace(sig, programs=programs)
    return RoadNetwork(network.path, network.graph, signals, network.saturation_flow_per_lane)


def _rules(found: list[Violation]) -> set[str]:
    return {v.rule for v in found}


# ------------------------------------------------------------------------------------------
# real networks


def test_own_plan_of_grid_is_safe(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = grid
    assert len(plan.signals) == 4
    assert validate_plan(plan, network) == []
    assert_safe(plan, network)


def test_own_plan_of_shipped_grid6_is_safe(grid6: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = grid6
    assert plan.signals
    assert validate_plan(plan, network) == []


def test_phase_sequence_matches_sumo_export(grid: tuple[RoadNetwork, TimingPlan], tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    network, plan = grid
    plan = _with_signal(plan, "A1", offset_s=7.5)
    root = ET.parse(write_sumo_additional(plan, network, tmp_path / "p.add.xml")).getroot()
    for tl in root.iter("tlLogic"):
        seq = plan_phase_sequence(plan, network, tl.get("id"))
        written = [(float(p.get("duration")), p.get("state")) for p in tl.iter("phase")]
        assert [(s.duration_s, s.state) for s in seq] == written


def test_rules_are_known(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = grid
    bad = _with_signal(plan, "A1", offset_s=-1.0)
    found = validate_plan(bad, network)
    assert found and all(v.rule in RULES for v in found)
    assert all(v.signal_id == "A1" for v in found)


def test_direct_handover_without_yellow_is_caught(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = grid
    st0 = plan.signals["A1"].stages[0]
    bad = _with_stage(plan, "A1", 0, yellow_s=0.0, green_s=st0.green_s + st0.yellow_s)
    found = validate_plan(bad, network)
    rules = _rules(found)
    assert {"yellow", "conflicting-greens-transition"} <= rules
    trans = [v for v in found if v.rule == "conflicting-greens-transition"]
    sig = network.signals["A1"]
    for v in trans:
        i, j = v.links
        assert sig.conflicts[i, j]
        assert len(v.movements) == 2 and "→" in v.movements[0]


def test_assert_safe_lists_violations(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = grid
    bad = plan
    for sid in plan.signals:
        bad = _with_signal(bad, sid, offset_s=1000.0)
        st0 = bad.signals[sid].stages[0]
        bad = _with_stage(bad, sid, 0, yellow_s=0.0, green_s=st0.green_s + st0.yellow_s)
    n = len(validate_plan(bad, network))
    assert n > 20
    with pytest.raises(PlanError) as err:
        assert_safe(bad, network)
    text = str(err.value)
    # one line per cause (signal, stage, rule), not one per endangered link pair
    causes = {(v.signal_id, v.stage, v.rule) for v in validate_plan(bad, network)}
    assert f"{n} violation(s), {len(causes)} cause(s)" in text
    assert len(text.splitlines()) == 1 + len(causes) < n
    assert "offset-range" in text and "more of this kind" in text


def test_stage_mismatch(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = grid
    t = plan.signals["A1"]
    bad = _with_signal(plan, "A1", stages=t.stages[:1])
    assert "stage-mismatch" in _rules(validate_plan(bad, network))
    bad = _with_signal(plan, "A1", program_id="nope")
    assert "stage-mismatch" in _rules(validate_plan(bad, network))


def test_min_allred(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = grid
    found = validate_plan(plan, network, min_allred_s=1.0)
    assert found and _rules(found) == {"all-red"}


# ------------------------------------------------------------------------------------------
# Hypothesis: valid mutations stay valid


@SETTINGS
@given(data=st.data())
def test_valid_mutations_stay_valid(grid: tuple[RoadNetwork, TimingPlan], data: st.DataObject) -> None:
    network, plan = grid
    for sid in sorted(plan.signals):
        t = plan.signals[sid]
        slack = sum(s.green_s - s.min_green_s for s in t.stages)
        w = [data.draw(st.floats(0.0, 1.0), label=f"{sid} weight {k}") for k in range(len(t.stages))]
        total_w = sum(w)
        if total_w > 0:
            stages = tuple(
                replace(s, green_s=s.min_green_s + slack * wk / total_w) for s, wk in zip(t.stages, w, strict=True)
            )
            # put the float residue into the last stage so the sum is exact to ~1e-12
            resid = t.cycle_s - sum(s.green_s + s.yellow_s + s.allred_s for s in stages)
            stages = (*stages[:-1], replace(stages[-1], green_s=stages[-1].green_s + resid))
            plan = _with_signal(plan, sid, stages=stages)
        offset = data.draw(st.floats(0.0, t.cycle_s, exclude_max=True), label=f"{sid} offset")
        plan = _with_signal(plan, sid, offset_s=offset)
    assert validate_plan(plan, network) == []


# ------------------------------------------------------------------------------------------
# Hypothesis: unsafe mutations are caught with the right rule

_signal_ids = st.sampled_from(["A0", "A1", "B0", "B1"])


@SETTINGS
@given(sid=_signal_ids, k=st.integers(0, 1), short=st.floats(0.01, 1.0))
def test_green_below_min_is_caught(
    grid: tuple[RoadNetwork, TimingPlan], sid: str, k: int, short: float
) -> None:
    network, plan = grid
    t = plan.signals[sid]
    other = (k + 1) % len(t.stages)
    g = t.stages[k].min_green_s * (1.0 - short)
    moved = t.stages[k].green_s - g
    bad = _with_stage(plan, sid, k, green_s=g)
    bad = _with_stage(bad, sid, other, green_s=t.stages[other].green_s + moved)
    found = validate_plan(bad, network)
    assert "min-green" in _rules(found)
    assert any(v.rule == "min-green" and v.signal_id == sid and v.stage == k for v in found)


@SETTINGS
@given(sid=_signal_ids, k=st.integers(0, 1), yellow=st.floats(0.0, 2.99))
def test_short_yellow_is_caught(grid: tuple[RoadNetwork, TimingPlan], sid: str, k: int, yellow: float) -> None:
    network, plan = grid
    s = plan.signals[sid].stages[k]
    bad = _with_stage(plan, sid, k, yellow_s=yellow, green_s=s.green_s + s.yellow_s - yellow)
    found = validate_plan(bad, network)
    assert any(v.rule == "yellow" and v.signal_id == sid and v.stage == k for v in found)


@SETTINGS
@given(sid=_signal_ids, delta=st.one_of(st.floats(-10.0, -1e-3), st.floats(1e-3, 60.0)))
def test_cycle_sum_off_is_caught(grid: tuple[RoadNetwork, TimingPlan], sid: str, delta: float) -> None:
    network, plan = grid
    t = plan.signals[sid]
    bad = _with_signal(plan, sid, cycle_s=t.cycle_s + delta, offset_s=0.0)
    found = validate_plan(bad, network)
    assert any(v.rule == "cycle-sum" and v.signal_id == sid for v in found)


@SETTINGS
@given(sid=_signal_ids, factor=st.one_of(st.floats(1.0, 5.0), st.floats(-3.0, -1e-6)))
def test_offset_out_of_range_is_caught(
    grid: tuple[RoadNetwork, TimingPlan], sid: str, factor: float
) -> None:
    network, plan = grid
    t = plan.signals[sid]
    bad = _with_signal(plan, sid, offset_s=t.cycle_s * factor)
    found = validate_plan(bad, network)
    assert _rules(found) == {"offset-range"}
    assert all(v.signal_id == sid for v in found)


@SETTINGS
@given(data=st.data())
def test_conflicting_greens_in_a_phase_are_caught(
    grid: tuple[RoadNetwork, TimingPlan], data: st.DataObject
) -> None:
    network, plan = grid
    sid = data.draw(_signal_ids, label="signal")
    sig = network.signals[sid]
    program = sig.default_program
    assert program is not None
    stage = data.draw(st.sampled_from(plan.signals[sid].stages), label="stage")
    p = stage.phase_index
    pairs = [
        (i, j)
        for i in range(sig.n_links)
        for j in range(i + 1, sig.n_links)
        if sig.conflicts[i, j]
        and not ({sig.movements[i].to_lane} & {sig.movements[j].to_lane})
    ]
    assert pairs
    i, j = data.draw(st.sampled_from(pairs), label="pair")
    state = list(program.phases[p].state)
    state[i] = state[j] = "G"
    bad_net = _with_phase_state(network, sid, p, "".join(state))
    found = validate_plan(plan, bad_net)
    assert any(
        v.rule == "conflicting-greens" and v.signal_id == sid and v.phase == p and set(v.links) == {i, j}
        for v in found
    ), found
    # the unchanged network is still fine
    assert validate_plan(plan, network) == []


@SETTINGS
@given(data=st.data())
def test_green_to_red_without_yellow_is_caught(
    grid: tuple[RoadNetwork, TimingPlan], data: st.DataObject
) -> None:
    network, plan = grid
    sid = data.draw(_signal_ids, label="signal")
    program = network.signals[sid].default_program
    assert program is not None
    yellow_phases = [k for k, ph in enumerate(program.phases) if "y" in ph.state]
    p = data.draw(st.sampled_from(yellow_phases), label="yellow phase")
    ys = [k for k, c in enumerate(program.phases[p].state) if c == "y"]
    # keep at least one 'y' so the phase stays a yellow phase of the same stage layout
    drop = data.draw(st.lists(st.sampled_from(ys), min_size=1, max_size=len(ys) - 1, unique=True), label="links")
    state = list(program.phases[p].state)
    for k in drop:
        state[k] = "r"
    bad_net = _with_phase_state(network, sid, p, "".join(state))
    found = validate_plan(plan, bad_net)
    flagged = {v.links[0] for v in found if v.rule == "yellow" and v.signal_id == sid}
    assert set(drop) <= flagged, found


def test_base_program_without_yellow_phase(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    """A program handing green straight to conflicting links (no intergreen) is caught."""
    network, plan = grid
    sig = network.signals["A1"]
    program = sig.default_program
    assert program is not None
    greens = tuple(ph for ph in program.phases if "y" not in ph.state)
    programs = {program.id: replace(program, phases=greens)}
    signals = dict(network.signals)
    signals["A1"] = replace(sig, programs=programs)
    bad_net = RoadNetwork(network.path, network.graph, signals, network.saturation_flow_per_lane)
    t = plan.signals["A1"]
    stages = tuple(
        replace(s, phase_index=k, green_s=s.green_s + s.yellow_s + s.allred_s, yellow_s=0.0, allred_s=0.0)
        for k, s in enumerate(t.stages)
    )
    bad = _with_signal(plan, "A1", stages=stages)
    rules = _rules(validate_plan(bad, bad_net))
    assert {"yellow", "conflicting-greens-transition"} <= rules
    assert "stage-mismatch" not in rules


def test_unsafe_plan_is_never_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """write_sumo_additional refuses a plan the validator rejects and leaves no file behind."""
    import dataclasses

    import pandas as pd
    import pytest

    from greenwave.controllers.plans.arrays import plan_from_network
    from greenwave.controllers.plans.sumo_writer import write_sumo_additional
    from greenwave.errors import PlanError
    from greenwave.networks import load_network
    from greenwave.networks.compile import compile_network
    from greenwave.networks.generate import grid_network

    network = load_network(grid_network(tmp_path / "g.net.xml", rows=1, cols=1, lanes=2))
    empty = pd.DataFrame(columns=["from_edge", "to_edge", "vehicles", "flow_vph"])
    plan = plan_from_network(network, compile_network(network, empty))
    sid, timing = next(iter(plan.signals.items()))
    stages = list(timing.stages)
    # yellow cut to 1 s, the cycle kept by giving the time to the green
    cut = stages[0].yellow_s - 1.0
    stages[0] = dataclasses.replace(stages[0], yellow_s=1.0, green_s=stages[0].green_s + cut)
    bad = dataclasses.replace(plan, signals={**plan.signals, sid: dataclasses.replace(timing, stages=tuple(stages))})
    out = tmp_path / "bad.add.xml"
    with pytest.raises(PlanError, match="yellow"):
        write_sumo_additional(bad, network, out)
    assert not out.exists()
    write_sumo_additional(plan, network, tmp_path / "good.add.xml")
    assert (tmp_path / "good.add.xml").exists()


# ------------------------------------------------------------------------------------------
# Hypothesis: quantisation keeps valid plans valid; no exporter emits an invalid plan


def _random_timing(data: st.DataObject, plan: TimingPlan, sid: str) -> TimingPlan:
    """Random greens (above the minimum), cycle, offset and reference point for ``sid``."""
    t = plan.signals[sid]
    greens = [data.draw(st.floats(s.min_green_s, 60.0), label=f"{sid} green {k}") for k, s in enumerate(t.stages)]
    stages = tuple(replace(s, green_s=g) for s, g in zip(t.stages, greens, strict=True))
    cycle = sum(s.green_s + s.yellow_s + s.allred_s for s in stages)
    timing = replace(t, stages=stages, cycle_s=cycle,
                     offset_s=data.draw(st.floats(0.0, cycle, exclude_max=True), label=f"{sid} offset"))
    point = data.draw(st.sampled_from(["green_start", "green_end"]), label="point")
    timing = timing.with_offset_reference(point, data.draw(st.integers(0, len(stages) - 1), label="stage"))
    return _with_signal(plan, sid, **{f: getattr(timing, f) for f in
                                      ("stages", "cycle_s", "offset_s", "offset_reference", "reference_stage")})


@SETTINGS
@given(data=st.data())
def test_quantised_valid_plan_stays_valid(grid: tuple[RoadNetwork, TimingPlan], data: st.DataObject) -> None:
    from greenwave.controllers.export.common import max_change_s, quantise_plan

    network, plan = grid
    for sid in sorted(plan.signals):
        plan = _random_timing(data, plan, sid)
    assert validate_plan(plan, network) == []
    q = quantise_plan(plan)
    assert validate_plan(q, network) == []
    for sid, t in q.signals.items():
        assert t.cycle_s.is_integer() and t.offset_s.is_integer() and 0 <= t.offset_s < t.cycle_s
        for a, b in zip(plan.signals[sid].stages, t.stages, strict=True):
            assert b.green_s.is_integer() and b.yellow_s >= a.yellow_s and b.allred_s >= a.allred_s
            assert b.green_s >= b.min_green_s >= a.min_green_s
    assert max_change_s(plan, q) <= 1.0 + 1e-9 + max(len(t.stages) for t in plan.signals.values())


@pytest.mark.slow
@SETTINGS
@given(data=st.data())
def test_no_file_exporter_writes_an_invalid_plan(grid: tuple[RoadNetwork, TimingPlan], data: st.DataObject,
                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    """Random plans and mutations: SUMO, UTDF, GB/T 20999 and JSON-via-check writers either
    refuse (PlanError, no file) or write a plan the validator accepts."""
    from greenwave.controllers.export.gbt20999 import plan_from_frames, read_frame_file, write_frame_file
    from greenwave.controllers.export.utdf import read_utdf, write_utdf
    from greenwave.controllers.plans.layout import complete_plan

    network, plan = grid
    sid = data.draw(_signal_ids, label="signal")
    plan = complete_plan(_random_timing(data, plan, sid), network)
    k = data.draw(st.integers(0, 1), label="stage")
    field = data.draw(st.sampled_from(["green_s", "yellow_s", "allred_s", "min_green_s", "walk_s"]), label="field")
    delta = data.draw(st.floats(-5.0, 5.0), label="delta")
    t = plan.signals[sid]
    if field == "walk_s":
        st_k = replace(t.stages[k], walk_s=4.0, ped_clearance_s=max(0.0, t.stages[k].green_s - 4.0 + delta))
    else:
        st_k = replace(t.stages[k], **{field: max(0.0, getattr(t.stages[k], field) + delta)})
    stages = list(t.stages)
    stages[k] = st_k
    if data.draw(st.booleans(), label="keep cycle") and field in ("yellow_s", "allred_s"):
        j = 1 - k
        stages[j] = replace(stages[j], green_s=stages[j].green_s - (getattr(st_k, field) - getattr(t.stages[k], field)))
    bad = _with_signal(plan, sid, stages=tuple(stages))
    safe = not validate_plan(bad, network)
    tmp = tmp_path_factory.mktemp("exp")
    writers = {
        "sumo": lambda p: write_sumo_additional(bad, network, p),
        "utdf": lambda p: write_utdf(bad, network, p),
        "gbt": lambda p: write_frame_file(bad, network, p),
    }
    for name, write in writers.items():
        out = tmp / name
        try:
            write(out)
        except PlanError:
            assert not out.exists(), name
            assert not safe or name == "gbt", name  # a safe plan is refused only for a format limit
            continue
        assert safe, name
        if name == "utdf":
            assert validate_plan(read_utdf(out, bad), network) == []
        elif name == "gbt":
            assert validate_plan(plan_from_frames(read_frame_file(out), bad), network) == []


# ------------------------------------------------------------------------------------------
# networks with all-red and with short yellows (netgenerate's own programs)


def _netgen(path: Path, *extra: str) -> Path:
    """A 1×2 signalised grid (2 lanes) from netgenerate with extra tls options."""
    run_sumo_command(["netgenerate", "--grid", "--grid.x-number=2", "--grid.y-number=1",
                      "--grid.x-length=200", "--grid.y-length=200", "--grid.attach-length=200",
                      "--default.lanenumber=2", "--tls.guess=true", "--tls.guess.threshold=0",
                      "--no-turnarounds=true", *extra, f"--output-file={path}"], what="netgenerate test grid")
    return path


@pytest.fixture(scope="module")
def allred(tmp_path_factory: pytest.TempPathFactory) -> tuple[RoadNetwork, TimingPlan]:
    """Base programs: 40 s green, 3 s yellow, 2 s all-red per stage (network clearance 2 s)."""
    network = load_network(_netgen(tmp_path_factory.mktemp("allred") / "ar.net.xml", "--tls.allred.time=2"))
    plan = _own_plan(network)
    assert {(s.yellow_s, s.allred_s) for t in plan.signals.values() for s in t.stages} == {(3.0, 2.0)}
    return network, plan


def test_allred_cut_below_network_clearance_is_caught(allred: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = allred
    assert validate_plan(plan, network) == []
    s0 = plan.signals["A0"].stages[0]
    bad = _with_stage(plan, "A0", 0, allred_s=0.5, green_s=s0.green_s + 1.5)
    found = validate_plan(bad, network)
    assert [(v.rule, v.signal_id, v.stage, v.phase) for v in found] == [("all-red", "A0", 0, 0)]
    (v,) = found
    assert "red clearance 2 s" in v.message and v.movements and all("→" in m for m in v.movements)
    with pytest.raises(PlanError, match="all-red"):
        assert_safe(bad, network)
    # configurable: an explicit minimum all-red replaces the network's
    assert validate_plan(bad, network, min_allred_s=0.5) == []
    assert _rules(validate_plan(bad, network, min_allred_s=1.0)) == {"all-red"}


def test_yellow_minimum_holds_even_where_the_network_has_less(tmp_path: Path) -> None:
    """A base program with 2 s yellows does not lower the 3 s default; --min-yellow 2 does.
    (Compiling lengthens such yellows to 3 s, so plans greenwave makes are safe; the plan of the
    program as it is, with its 2 s yellows, is what the validator must refuse.)"""
    network = load_network(_netgen(tmp_path / "y2.net.xml", "--tls.yellow.time=2"))
    assert {s.yellow_s for t in _own_plan(network).signals.values() for s in t.stages} == {3.0}
    plan = plan_from_network(network, compile_network(network, _NO_FLOWS, min_yellow_s=0.0))
    assert {s.yellow_s for t in plan.signals.values() for s in t.stages} == {2.0}
    found = validate_plan(plan, network)
    assert found and _rules(found) >= {"yellow"}
    assert all(v.signal_id in plan.signals for v in found)
    assert any(v.rule == "yellow" and "yellow 2 s < 3 s" in v.message for v in found)
    assert validate_plan(plan, network, min_yellow_s=2.0) == []
    with pytest.raises(PlanError, match="yellow"):
        write_sumo_additional(plan, network, tmp_path / "y.add.xml")
    assert not (tmp_path / "y.add.xml").exists()
    write_sumo_additional(plan, network, tmp_path / "y.add.xml", min_yellow_s=2.0)
    assert (tmp_path / "y.add.xml").exists()


def test_limits_must_be_numbers(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = grid
    for kw in ({"min_yellow_s": float("nan")}, {"min_yellow_s": -1.0}, {"min_allred_s": float("inf")}):
        with pytest.raises(PlanError, match="must be a finite number"):
            validate_plan(plan, network, **kw)


def test_stage_violations_name_signal_phase_movements_rule(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = grid
    s0 = plan.signals["B0"].stages[1]
    bad = _with_stage(plan, "B0", 1, yellow_s=1.0, green_s=s0.green_s + s0.yellow_s - 1.0)
    found = [v for v in validate_plan(bad, network) if v.rule == "yellow"]
    assert found
    program = network.signals["B0"].default_program
    assert program is not None
    green = [j for j, c in enumerate(program.phases[s0.phase_index].state) if c in "Gg"]
    (v,) = [v for v in found if not v.links or len(v.links) > 1]
    assert (v.signal_id, v.stage, v.phase) == ("B0", 1, s0.phase_index)
    assert list(v.links) == green and len(v.movements) == len(green)
    assert str(v).startswith(f"signal 'B0' stage 1 phase {s0.phase_index}: yellow: yellow 1 s < 3 s")


def test_recorded_links_with_a_conflicting_movement(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    """Editing a stage's links to add a movement of the crossing stage: both green at once."""
    from greenwave.controllers.plans.layout import complete_plan

    network, plan = grid
    plan = complete_plan(plan, network)
    assert validate_plan(plan, network) == []
    t = plan.signals["A1"]
    l0, l1 = t.stages[0].links, t.stages[1].links
    assert l0 and l1
    sig = network.signals["A1"]
    lanes = [{x.to_lane for x in (m, *m.merged)} for m in sig.movements]
    extra = next(b for b in l1 if any(sig.conflicts[a, b] and not lanes[a] & lanes[b] for a in l0))
    bad = _with_stage(plan, "A1", 0, links=(*l0, extra))
    found = validate_plan(bad, network)
    conf = [v for v in found if v.rule == "conflicting-greens"]
    assert conf and all(v.stage == 0 and extra in v.links and len(v.movements) == 2 for v in conf)
    assert any(v.rule == "signal-groups" and v.links == (extra,) for v in found)


# ------------------------------------------------------------------------------------------
# Hypothesis: random mutations of a valid plan, judged by an independent rule list and by the
# signal states SUMO itself shows when it runs the exported program


def _spec_unsafe(plan: TimingPlan, base: TimingPlan) -> list[str]:
    """The issue's rules written out directly (no validator code): what is wrong with ``plan``,
    whose stages' base yellow / all-red are ``base``'s."""
    bad = []
    for sid, t in plan.signals.items():
        if abs(sum(s.green_s + s.yellow_s + s.allred_s for s in t.stages) - t.cycle_s) > 1e-6:
            bad.append(f"{sid} cycle sum")
        if not 0 <= t.offset_s < t.cycle_s:
            bad.append(f"{sid} offset")
        for k, (s, b) in enumerate(zip(t.stages, base.signals[sid].stages, strict=True)):
            # the plan's own minimum can raise the 5 s standard, never lower it
            if s.green_s <= 0 or s.green_s < max(s.min_green_s, 5.0) - 1e-6:
                bad.append(f"{sid}/{k} min green")
            if s.yellow_s < 3.0 - 1e-6 or (b.yellow_s == 0 and s.yellow_s > 0):
                bad.append(f"{sid}/{k} yellow")
            if s.allred_s < b.allred_s - 1e-6 or (b.allred_s == 0 and s.allred_s > 0):
                bad.append(f"{sid}/{k} all-red")
    return bad


def _sumo_states(net_file: str, add: Path, ids: list[str], seconds: float, step: float) -> dict[str, list[str]]:
    import libsumo

    libsumo.start([sumo_binary("sumo"), "-n", net_file, "-a", str(add), "--step-length", str(step),
                   "--no-step-log", "--no-warnings", "--duration-log.disable"])
    try:
        out: dict[str, list[str]] = {s: [] for s in ids}
        for _ in range(round(seconds / step)):
            libsumo.simulationStep()
            for s in ids:
                out[s].append(libsumo.trafficlight.getRedYellowGreenState(s))
    finally:
        libsumo.close()
    return out


def _sumo_violations(network: RoadNetwork, plan: TimingPlan, states: dict[str, list[str]], step: float) -> list[str]:
    """Safety problems visible in the states SUMO showed (independent of the validator)."""
    out = []
    eps = 1e-6
    for sid, seq in states.items():
        sig = network.signals[sid]
        t = plan.signals[sid]
        lanes = [{x.to_lane for x in (m, *m.merged) if x.to_lane} for m in sig.movements]
        n = sig.n_links
        foe = [[bool(sig.conflicts[a, b]) and not (lanes[a] & lanes[b]) for b in range(n)] for a in range(n)]
        period = round(t.cycle_s / step)
        for i, state in enumerate(seq):
            g = [a for a in range(n) if state[a] == "G"]
            out += [f"{sid} t={i * step:.1f}: links {a},{b} both G" for a in g for b in g if a < b and foe[a][b]]
            if i + period < len(seq) and seq[i + period] != state:
                out.append(f"{sid} t={i * step:.1f}: not periodic with the cycle {t.cycle_s:g} s")
            if i <= period:
                continue  # look-back needs a full cycle of history
            prev = seq[i - 1]
            for j in range(n):
                if not (state[j] in "Gg" and prev[j] not in "Gg"):
                    continue
                for a in range(n):
                    if not foe[a][j] or state[a] in "Gg":
                        continue
                    if prev[a] in "Gg":
                        out.append(f"{sid} t={i * step:.1f}: link {j} green right after foe {a}")
                        continue
                    back, yellow, red = i - 1, 0, 0
                    while back >= 0 and seq[back][a] not in "Gg":
                        yellow += seq[back][a] in "yY"
                        red += seq[back][a] in "rs" and yellow == 0
                        back -= 1
                    if back < 0:
                        continue  # foe never green in the window
                    if yellow * step < 3.0 - eps:
                        out.append(f"{sid} t={i * step:.1f}: foe {a} yellow {yellow * step:g} s before link {j}")
                    need_red = min(s.allred_s for s in t.stages)
                    if red * step < need_red - eps:
                        out.append(f"{sid} t={i * step:.1f}: foe {a} red {red * step:g} s before link {j}")
        # minimum green of each complete run of a stage's green state
        program = network.signals[sid].default_program
        assert program is not None
        for s in t.stages:
            gstate = program.phases[s.phase_index].state
            runs, cur = [], 0
            for state in seq:
                if state == gstate:
                    cur += 1
                elif cur:
                    runs.append(cur)
                    cur = 0
            need = max(s.min_green_s, 5.0)
            out += [f"{sid}: green of phase {s.phase_index} ran {r * step:g} s < min {need:g} s"
                    for r in runs[1:] if r * step < need - eps]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("field", ["none", "green_s", "yellow_s", "allred_s", "min_green_s", "cycle_s", "offset_s"])
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_validator_matches_rules_and_sumo(allred: tuple[RoadNetwork, TimingPlan], field: str, data: st.DataObject,
                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    """Random plans (greens, offsets) and random mutations of them (green, yellow, all-red,
    minimum green, cycle, offset; cycle kept or not). The validator flags a plan exactly when
    the rules written out independently say it is unsafe; a plan it passes is exported and run
    in SUMO (0.1 s steps), and the states SUMO shows have no conflicting greens, yellow >= 3 s
    and the all-red before every conflicting green, and every green >= its minimum. An unsafe
    plan is never written."""
    network, base = allred
    tenth = st.integers
    signals = dict(base.signals)
    for sid, t in base.signals.items():
        stages = tuple(replace(s, green_s=data.draw(tenth(50, 400), label=f"{sid} green") / 10) for s in t.stages)
        cycle = sum(s.green_s + s.yellow_s + s.allred_s for s in stages)
        signals[sid] = replace(t, stages=stages, cycle_s=cycle,
                               offset_s=data.draw(tenth(0, round(cycle * 10) - 1), label=f"{sid} offset") / 10)
    plan = TimingPlan(signals, {})
    assert validate_plan(plan, network) == [] and not _spec_unsafe(plan, base)
    sid = data.draw(st.sampled_from(sorted(signals)), label="mutated signal")
    k = data.draw(st.integers(0, 1), label="stage")
    delta = data.draw(tenth(-40, 40), label="delta (0.1 s)") / 10
    t = plan.signals[sid]
    if field in ("cycle_s", "offset_s"):
        plan = _with_signal(plan, sid, **{field: getattr(t, field) + delta})
    elif field != "none":
        s = t.stages[k]
        # a minimum green is moved around the green it must not exceed
        new = max(0.0, (s.green_s if field == "min_green_s" else getattr(s, field)) + delta)
        plan = _with_stage(plan, sid, k, **{field: new})
        if field != "min_green_s" and data.draw(st.booleans(), label="keep cycle"):
            o = plan.signals[sid].stages[1 - k]
            plan = _with_stage(plan, sid, 1 - k, green_s=o.green_s - (new - getattr(s, field)))
    found = validate_plan(plan, network)
    spec = _spec_unsafe(plan, base)
    event(f"mutated {field}: {'unsafe' if spec else 'safe'}")
    assert bool(found) == bool(spec), (spec, [str(v) for v in found])
    out = tmp_path_factory.mktemp("hyp_sumo") / "p.add.xml"
    if found:
        with pytest.raises(PlanError):
            write_sumo_additional(plan, network, out)
        assert not out.exists()
        return
    write_sumo_additional(plan, network, out)
    cycle = max(t.cycle_s for t in plan.signals.values())
    states = _sumo_states(str(network.path), out, sorted(plan.signals), 2 * cycle + 5, 0.1)
    assert _sumo_violations(network, plan, states, 0.1) == []


def test_sumo_oracle_sees_unsafe_programs(allred: tuple[RoadNetwork, TimingPlan], tmp_path: Path) -> None:
    """The SUMO check above is not blind: programs edited past the writer (1 s yellow, no
    all-red, a conflicting G) show up in the states SUMO runs."""
    network, plan = allred
    good = write_sumo_additional(plan, network, tmp_path / "good.add.xml")
    text = good.read_text()
    assert _sumo_violations(network, plan, _sumo_states(str(network.path), good, sorted(plan.signals), 95, 0.1),
                            0.1) == []
    cases = {  # (edited program, what the SUMO check must report); the cycle stays 90 s
        "yellow": (text.replace('duration="3" state="yyyyrrrr', 'duration="1" state="yyyyrrrr').replace(
            'duration="40" state="GGGg', 'duration="42" state="GGGg'), "yellow 1 s"),
        "red": (text.replace('duration="2" state="rrrrrrrrrrrrrrrr"', 'duration="0.5" state="rrrrrrrrrrrrrrrr"')
                .replace('duration="40" state="', 'duration="41.5" state="'), "red 0.5 s"),
        "both G": (text.replace('state="GGGgrrrrGGGgrrrr"', 'state="GGGgGrrrGGGgrrrr"'), "both G"),
    }
    for what, (bad_text, expect) in cases.items():
        assert bad_text != text, what
        bad = tmp_path / f"{what}.add.xml"
        bad.write_text(bad_text)
        found = _sumo_violations(network, plan, _sumo_states(str(network.path), bad, sorted(plan.signals), 185, 0.1),
                                 0.1)
        assert found and all(expect in f for f in found), (what, found[:5])
