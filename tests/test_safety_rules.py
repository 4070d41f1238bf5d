"""Safety rules a plan cannot lower: minimum green, pedestrian, yellow and all-red times come from
the network and the configured standards, cycle and green have upper bounds, and a plan for some
signals only is refused unless asked for. Hypothesis mutates safe plans; every plan the validator
passes is checked against the rules written out here, on the program the writer produced (a fast
pure-Python check over many examples, and a few in SUMO at 0.1 s steps)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from greenwave._sumo import run_sumo_command, sumo_binary
from greenwave.controllers.export.common import export, validation_lines
from greenwave.controllers.plans.arrays import plan_from_network
from greenwave.controllers.plans.layout import complete_plan
from greenwave.controllers.plans.safety import validate_plan
from greenwave.controllers.plans.safety_rules import SafetyStandards
from greenwave.controllers.plans.sumo_writer import write_sumo_additional
from greenwave.controllers.plans.timing import TimingPlan
from greenwave.controllers.transition_safety import TransitionMonitor
from greenwave.errors import PlanError
from greenwave.networks import RoadNetwork, load_network
from greenwave.networks.compile import compile_network
from greenwave.scenarios.cli import main

_NO_FLOWS = pd.DataFrame(columns=["from_edge", "to_edge", "flow_vph"])
STEP = 0.1


@pytest.fixture(scope="module")
def ped(tmp_path_factory: pytest.TempPathFactory) -> tuple[RoadNetwork, TimingPlan]:
    """Two signals with pedestrian crossings (netgenerate's programs: 35 s + 5 s greens per
    direction, 3 s yellow, 2 s all-red), and their own plan with the network's file recorded."""
    path = tmp_path_factory.mktemp("ped") / "ped.net.xml"
    run_sumo_command(["netgenerate", "--grid", "--grid.x-number=2", "--grid.y-number=1", "--grid.x-length=200",
                      "--grid.y-length=200", "--grid.attach-length=200", "--default.lanenumber=2",
                      "--tls.guess=true", "--tls.guess.threshold=0", "--no-turnarounds=true",
                      "--sidewalks.guess=true", "--crossings.guess=true", "--tls.allred.time=2",
                      f"--output-file={path}"], what="netgenerate pedestrian grid")
    network = load_network(path)
    plan = complete_plan(plan_from_network(network, compile_network(network, _NO_FLOWS)), network)
    assert validate_plan(plan, network, partial=False) == []
    return network, plan


# ------------------------------------------------------------------------------------------
# the rules, written out independently of the validator


def _crossing_lengths(net_file: Path) -> dict[str, float]:
    out = {}
    for edge in ET.parse(net_file).getroot().iter("edge"):
        if edge.get("function") == "crossing":
            out[edge.get("id", "")] = max(float(ln.get("length", "0")) for ln in edge.iter("lane"))
    return out


def _required(network: RoadNetwork, sid: str) -> list[float]:
    """Each stage's least green: 5 s, or 4 s walk + crossing length / 1.2 m/s for a stage that
    shows a crossing green (each crossing here is green in one stage only), never more than the
    network's own green."""
    sig = network.signals[sid]
    program = sig.default_program
    assert program is not None
    lengths = _crossing_lengths(Path(network.path))
    crossing_of = {m.link_index: max(lengths.get(m.from_edge, 0.0), lengths.get(m.to_edge, 0.0))
                   for m in sig.movements if m.link_index in sig.pedestrian_links}
    out = []
    for ph in program.phases:
        if "y" in ph.state or not any(c in "Gg" for c in ph.state):
            continue
        need = 5.0
        for k, length in crossing_of.items():
            if ph.state[k] in "Gg" and length > 0:
                need = max(need, 4.0 + length / 1.2)
        out.append(min(need, float(ph.duration)))
    return out


def _rule_breaks(network: RoadNetwork, plan: TimingPlan, base: TimingPlan) -> list[str]:
    """The rules broken; ``base`` (the network's own plan) gives each stage's yellow and all-red."""
    bad = []
    for sid in network.signals:
        if sid not in plan.signals:
            bad.append(f"{sid} missing")
    for sid, t in plan.signals.items():
        if abs(sum(s.green_s + s.yellow_s + s.allred_s for s in t.stages) - t.cycle_s) > 1e-6:
            bad.append(f"{sid} cycle sum")
        if t.cycle_s > 300:
            bad.append(f"{sid} cycle over 300 s")
        if not 0 <= t.offset_s < t.cycle_s:
            bad.append(f"{sid} offset")
        own = base.signals[sid].stages
        for k, (s, need, b) in enumerate(zip(t.stages, _required(network, sid), own, strict=True)):
            if s.green_s < need - 1e-6 or s.green_s < s.min_green_s - 1e-6:
                bad.append(f"{sid}/{k} green {s.green_s:g} < {need:g}")
            if s.green_s > 255:
                bad.append(f"{sid}/{k} green over 255 s")
            if (b.yellow_s > 0 and s.yellow_s < 3.0 - 1e-6) or (b.yellow_s == 0 and s.yellow_s > 0):
                bad.append(f"{sid}/{k} yellow")
            if s.allred_s < b.allred_s - 1e-6 or (b.allred_s == 0 and s.allred_s > 0):
                bad.append(f"{sid}/{k} all-red")
    return bad


def _program_states(add: Path, sid: str, seconds: float) -> list[str]:
    """The state the written program shows at each 0.1 s step from t = 0 (offset applied)."""
    logic = next(tl for tl in ET.parse(add).getroot().iter("tlLogic") if tl.get("id") == sid)
    phases = [(round(float(p.get("duration", "0")) / STEP), p.get("state", "")) for p in logic.iter("phase")]
    cycle = sum(d for d, _ in phases)
    offset = round(float(logic.get("offset", "0")) / STEP)
    seq = [s for d, s in phases for _ in range(d)]
    return [seq[(i - offset) % cycle] for i in range(round(seconds / STEP))]


def _shown_breaks(network: RoadNetwork, plan: TimingPlan, states: dict[str, list[str]]) -> list[str]:
    """What the states shown break: the transition monitor's rules (conflicting greens, yellow,
    all-red) and each stage's green, measured on complete runs of its state, against the
    required green written out above."""
    monitor = TransitionMonitor(network, sorted(states))
    for sid, seq in states.items():
        monitor.begin(sid, seq[0], 0.0)
        for i, s in enumerate(seq[1:], 1):
            monitor.observe(sid, s, i * STEP)
    out = [f"{v.signal}: {v.rule}: {v.detail}" for v in monitor.violations if v.rule != "min-green"]
    for sid, seq in states.items():
        program = network.signals[sid].default_program
        assert program is not None
        for s, need in zip(plan.signals[sid].stages, _required(network, sid), strict=True):
            gstate = program.phases[s.phase_index].state
            runs, cur = [], 0
            for x in seq:
                if x == gstate:
                    cur += 1
                elif cur:
                    runs.append(cur)
                    cur = 0
            out += [f"{sid}: phase {s.phase_index} green {r * STEP:g} s < {need:g} s"
                    for r in runs[1:] if r * STEP < need - 1e-6]
    return out


def _mutate(data: st.DataObject, network: RoadNetwork, base: TimingPlan) -> TimingPlan:
    """A safe plan (random greens at or above what is required) with one or two mutations."""
    signals = dict(base.signals)
    for sid, t in base.signals.items():
        stages = tuple(replace(s, green_s=data.draw(st.integers(round(need * 10), 600), label=f"{sid} g{k}") / 10)
                       for k, (s, need) in enumerate(zip(t.stages, _required(network, sid), strict=True)))
        cycle = sum(s.split_s for s in stages)
        signals[sid] = replace(t, stages=stages, cycle_s=cycle, offset_s=data.draw(
            st.integers(0, round(cycle * 10) - 1), label=f"{sid} offset") / 10)
    plan = TimingPlan(signals, {}, net_file=base.net_file)
    assert not _rule_breaks(network, plan, base)
    for _ in range(data.draw(st.integers(1, 2), label="mutations")):
        sid = data.draw(st.sampled_from(sorted(plan.signals)), label="signal")
        t = plan.signals[sid]
        k = data.draw(st.integers(0, len(t.stages) - 1), label="stage")
        s = t.stages[k]
        what = data.draw(st.sampled_from(["green", "min_green", "pedestrian", "yellow", "allred", "cycle",
                                          "huge_cycle", "drop_signal"]), label="mutation")
        event(what)
        keep_cycle = data.draw(st.booleans(), label="keep cycle")
        if what == "drop_signal":
            plan = TimingPlan({i: x for i, x in plan.signals.items() if i != sid}, {}, net_file=plan.net_file)
            continue
        if what == "huge_cycle":  # one approach green for a very long time
            g = data.draw(st.sampled_from([256.0, 400.0, 1e4, 1e9]), label="long green")
            stages = list(t.stages)
            stages[k] = replace(s, green_s=g)
            plan.signals[sid] = replace(t, stages=tuple(stages), cycle_s=sum(x.split_s for x in stages))
            continue
        if what == "cycle":
            plan.signals[sid] = replace(t, cycle_s=t.cycle_s + data.draw(st.integers(-50, 50)) / 10)
            continue
        if what == "min_green":  # the plan lowers its own minimum and the green with it
            new = replace(s, min_green_s=0.0, green_s=data.draw(st.integers(1, 150), label="green") / 10)
        elif what == "pedestrian":  # the plan drops its walk times and shortens the green
            new = replace(s, walk_s=0.0, ped_clearance_s=0.0,
                          green_s=data.draw(st.integers(1, 200), label="green") / 10)
        elif what == "green":
            new = replace(s, green_s=max(0.1, s.green_s + data.draw(st.integers(-400, 400), label="d") / 10))
        elif what == "yellow":
            new = replace(s, yellow_s=data.draw(st.integers(0, 60), label="yellow") / 10)
        else:
            new = replace(s, allred_s=data.draw(st.integers(0, 40), label="all-red") / 10)
        stages = list(t.stages)
        stages[k] = new
        cycle = sum(x.split_s for x in stages) if keep_cycle else t.cycle_s
        plan.signals[sid] = replace(t, stages=tuple(stages), cycle_s=cycle,
                                    offset_s=min(t.offset_s, max(0.0, cycle - 0.1)))
    return plan


def _check_mutated(ped: tuple[RoadNetwork, TimingPlan], data: st.DataObject,
                   tmp_path_factory: pytest.TempPathFactory) -> None:
    """Mutations of safe plans (lowered minimum green, dropped walk times, short greens, yellows
    and all-reds, long and wrong cycles, a signal left out). The validator passes a plan exactly
    when the rules written out above hold, and what the writer then produces, stepped at 0.1 s,
    shows no conflicting green, no short yellow or all-red and no green below its minimum."""
    network, base = ped
    plan = _mutate(data, network, base)
    found = validate_plan(plan, network, partial=False)
    rules = _rule_breaks(network, plan, base)
    event("unsafe" if rules else "safe")
    assert bool(found) == bool(rules), (rules, [str(v) for v in found][:5])
    if found:
        return
    out = tmp_path_factory.mktemp("rules") / "p.add.xml"
    write_sumo_additional(plan, network, out)
    seconds = 2 * max(t.cycle_s for t in plan.signals.values()) + 5
    states = {sid: _program_states(out, sid, seconds) for sid in plan.signals}
    assert _shown_breaks(network, plan, states) == []


_HYP = {"deadline": None, "derandomize": True,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]}


@pytest.mark.slow
@settings(max_examples=30, **_HYP)
@given(data=st.data())
def test_every_plan_the_validator_passes_keeps_the_rules(ped: tuple[RoadNetwork, TimingPlan], data: st.DataObject,
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    """The property below on a few examples (the fast loop)."""
    _check_mutated(ped, data, tmp_path_factory)


@pytest.mark.slow
@settings(max_examples=300, **_HYP)
@given(data=st.data())
def test_every_plan_the_validator_passes_keeps_the_rules_many(ped: tuple[RoadNetwork, TimingPlan],
                                                              data: st.DataObject,
                                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    """The property on 300 examples: see :func:`_check_mutated`."""
    _check_mutated(ped, data, tmp_path_factory)


@pytest.mark.slow
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_plans_the_validator_passes_are_safe_in_sumo(ped: tuple[RoadNetwork, TimingPlan], data: st.DataObject,
                                                     tmp_path_factory: pytest.TempPathFactory) -> None:
    """A few plans the validator passes, run in SUMO at 0.1 s steps: what SUMO shows keeps the rules."""
    import libsumo

    network, base = ped
    plan = _mutate(data, network, base)
    while validate_plan(plan, network, partial=False):  # keep only what the validator passes
        plan = _mutate(data, network, base)
    out = tmp_path_factory.mktemp("rules_sumo") / "p.add.xml"
    write_sumo_additional(plan, network, out)
    seconds = 2 * max(t.cycle_s for t in plan.signals.values()) + 5
    libsumo.start([sumo_binary("sumo"), "-n", str(network.path), "-a", str(out), "--step-length", str(STEP),
                   "--no-step-log", "--no-warnings", "--duration-log.disable"])
    try:
        states: dict[str, list[str]] = {sid: [] for sid in plan.signals}
        for _ in range(round(seconds / STEP)):
            libsumo.simulationStep()
            for sid in plan.signals:
                states[sid].append(libsumo.trafficlight.getRedYellowGreenState(sid))
    finally:
        libsumo.close()
    # after the step to time t SUMO shows what the program shows from t - 0.1 s
    assert states == {sid: _program_states(out, sid, seconds) for sid in plan.signals}
    assert _shown_breaks(network, plan, states) == []


# ------------------------------------------------------------------------------------------
# the cases of the issue, one by one


def _stage(plan: TimingPlan, sid: str, k: int, **kw: float) -> TimingPlan:
    t = plan.signals[sid]
    stages = list(t.stages)
    stages[k] = replace(stages[k], **kw)
    signals = dict(plan.signals)
    signals[sid] = replace(t, stages=tuple(stages), cycle_s=sum(s.split_s for s in stages))
    return TimingPlan(signals, dict(plan.meta), net_file=plan.net_file)


def test_a_plan_cannot_lower_its_own_minimum_green(ped: tuple[RoadNetwork, TimingPlan], tmp_path: Path) -> None:
    network, plan = ped
    bad = _stage(plan, "A0", 1, min_green_s=0.0, green_s=0.5)
    found = validate_plan(bad, network)
    assert [v.rule for v in found] == ["min-green"]
    assert "minimum green 5 s (standard minimum green 5 s; a plan's own min_green_s cannot lower it)" in (
        found[0].message)
    for fmt in ("sumo", "utdf", "gbt20999", "json"):
        with pytest.raises(PlanError, match="min-green"):
            export(bad, network, fmt, output=tmp_path / f"x.{fmt}")
        assert not (tmp_path / f"x.{fmt}").exists()
    # the standard is configurable (on the command line: --min-green)
    assert validate_plan(bad, network, standards=SafetyStandards(min_green_s=0.5)) == []


def test_a_plan_cannot_drop_its_walk_times(ped: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = ped
    bad = _stage(plan, "B0", 0, walk_s=0.0, ped_clearance_s=0.0, min_green_s=0.0, green_s=8.0)
    found = validate_plan(bad, network)
    assert {v.rule for v in found} == {"pedestrian"}
    assert "walk 4 s + crossing at 1.2 m/s" in found[0].message and found[0].movements
    assert validate_plan(bad, network, standards=SafetyStandards(pedestrian_walk_s=0, pedestrian_speed_mps=100)) == []


def test_cycle_and_green_have_upper_bounds(ped: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = ped
    bad = _stage(plan, "A0", 0, green_s=1e9)
    assert {v.rule for v in validate_plan(bad, network)} == {"max-cycle", "max-green"}
    long_cycle = _stage(plan, "A0", 0, green_s=250.0)  # green within 255 s, cycle over 300 s
    assert {v.rule for v in validate_plan(long_cycle, network)} == {"max-cycle"}
    assert validate_plan(long_cycle, network, standards=SafetyStandards(max_cycle_s=400)) == []


def test_a_partial_or_empty_plan_is_refused_unless_asked_for(ped: tuple[RoadNetwork, TimingPlan],
                                                              tmp_path: Path) -> None:
    network, plan = ped
    one = TimingPlan({"A0": plan.signals["A0"]}, {}, net_file=plan.net_file)
    found = validate_plan(one, network, partial=False)
    assert [(v.signal_id, v.rule) for v in found] == [("B0", "partial-plan")]
    assert validate_plan(one, network, partial=True) == []
    # signals the plan names as left on their own programs are not missing
    assert validate_plan(TimingPlan(one.signals, {"own_program_signals": ["B0"]}), network, partial=False) == []
    safe, lines = validation_lines(TimingPlan({}, {}), network, partial=False)
    assert not safe and "the plan has no signals" in lines[0]
    # on the command line: refused, the previous export left as it was
    previous = tmp_path / "plan.add.xml"
    write_sumo_additional(plan, network, previous)
    before = previous.read_text()
    for p, name in ((one, "one"), (TimingPlan({}, {}, net_file=plan.net_file), "empty")):
        path = tmp_path / f"{name}.json"
        p.to_json(path)
        assert main(["export", str(path), "--format", "sumo", "--output", str(previous)]) == 1
        assert previous.read_text() == before
        assert main(["validate", str(path)]) == 1
    one.to_json(tmp_path / "one.json")
    assert main(["export", str(tmp_path / "one.json"), "--format", "sumo", "--output", str(previous),
                 "--partial"]) == 0
    assert previous.read_text() != before


def test_one_short_yellow_is_one_line_per_cause(ped: tuple[RoadNetwork, TimingPlan], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    network, plan = ped
    bad = _stage(plan, "A0", 1, yellow_s=1.0)
    found = validate_plan(bad, network)
    path = tmp_path / "y.json"
    bad.to_json(path)
    assert main(["validate", str(path)]) == 1
    out = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("UNSAFE signal")]
    assert len(found) > 2 * len(out)  # many link pairs, few causes
    assert len(out) == len({(v.signal_id, v.stage, v.rule) for v in found})
    assert any("more of this kind" in ln for ln in out)


def test_standards_on_the_command_line(ped: tuple[RoadNetwork, TimingPlan], tmp_path: Path) -> None:
    network, plan = ped
    bad = _stage(plan, "A0", 1, min_green_s=0.0, green_s=3.0)
    path = tmp_path / "g3.json"
    bad.to_json(path)
    assert main(["validate", str(path)]) == 1
    assert main(["validate", str(path), "--min-green", "3"]) == 0
    assert main(["validate", str(path), "--min-green", "nan"]) == 1  # a clear error, not a traceback


def test_a_network_whose_own_program_is_longer_keeps_its_own_as_the_bound() -> None:
    """SUMO's corridor game holds greens for 10000 s: its own program stays valid, and a plan
    may not go beyond it."""
    from greenwave._sumo import sumo_home
    from greenwave.scenarios.demand import read_sumocfg

    cfg = sumo_home() / "tools" / "game" / "corridor.sumocfg"
    if not cfg.exists():
        pytest.skip("SUMO's corridor game is not shipped with this SUMO")
    net_file = read_sumocfg(cfg).net_file
    assert net_file is not None
    network = load_network(net_file)
    plan = plan_from_network(network, compile_network(network, _NO_FLOWS))
    assert max(t.cycle_s for t in plan.signals.values()) > 300
    assert validate_plan(plan, network, partial=False) == []
    sid, t = next(iter(plan.signals.items()))
    longer = _stage(plan, sid, 0, green_s=t.stages[0].green_s + 100)
    assert {v.rule for v in validate_plan(longer, network)} == {"max-cycle", "max-green"}
