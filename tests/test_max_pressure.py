"""Max-pressure control and the stage switcher under it, in real SUMO.

* ``max_pressure`` against the signals' own fixed programs on a grid loaded heavily on one axis;
* ``max_pressure_cyclic`` driven step by step: stages come in the design's order, those without
  a call skipped, and a green without a conflicting call rests;
* :class:`StageSwitcher`: its intergreens, minimum greens and holds, and the signals it leaves
  alone because their own program is unsafe (Ingolstadt's ``gneJ21``);
* option checking.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from greenwave._sumo import sumo_home
from greenwave.controllers.base import make_controller
from greenwave.controllers.switching import (
    StageSwitcher,
    derived_transition,
    is_stage_state,
    signal_stages,
    state_conflicts,
    trap_free_transition,
)
from greenwave.controllers.transition_safety import TransitionMonitor
from greenwave.engine.run import RunSpec
from greenwave.engine.session import SessionConfig, SumoSession
from greenwave.errors import ScenarioError
from greenwave.networks import RoadNetwork, Signal, load_network
from greenwave.networks.generate import grid_network
from greenwave.networks.stage_record import design_transition, stays_green_over
from greenwave.scenarios.runner import run_scenario
from greenwave.scenarios.spec import scenario_from_dict

FKK = sumo_home() / "tools" / "game" / "fkk_in"

# east-west entries carry 650 veh/h, north-south ones 120 veh/h
UNEVEN = {
    "name": "uneven", "duration_s": 600, "seeds": [1, 2], "controllers": ["static", "max_pressure"],
    "network": {"generator": "grid", "rows": 2, "cols": 2, "lanes": 1},
    "demand": {"entry_vph": 120, "end_s": 500, "turn_left": 0.1, "turn_right": 0.1,
               "entry_vph_by_edge": {e: 650 for e in ("left0A0", "left1A1", "right0B0", "right1B1")}},
}


@pytest.mark.slow
def test_kernel_and_plain_decisions_run_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small networks decide with the plain function, large ones with the numba kernel: forcing
    the kernel on the small grid gives the very same run."""
    from greenwave.controllers import max_pressure
    from tests.test_runner import InlineExecutor

    sc = scenario_from_dict({**UNEVEN, "seeds": [1], "controllers": ["max_pressure"], "duration_s": 300,
                             "demand": {**UNEVEN["demand"], "end_s": 300}})
    plain = run_scenario(sc, tmp_path / "plain", executor=InlineExecutor()).iloc[0]
    monkeypatch.setattr(max_pressure, "KERNEL_MIN_SIGNALS", 1)
    kernel = run_scenario(sc, tmp_path / "kernel", executor=InlineExecutor()).iloc[0]
    assert plain.signal_switches > 0
    for col in ("signal_switches", "vehicles_arrived", "mean_time_loss_s"):
        assert kernel[col] == plain[col], col


@pytest.mark.slow
def test_max_pressure_beats_fixed_programs_on_uneven_demand(tmp_path: Path) -> None:
    summary = run_scenario(scenario_from_dict(UNEVEN), tmp_path, jobs=2, check_safety=True)
    loss = summary.pivot(index="seed", columns="controller", values="mean_time_loss_s")
    assert list(loss.index) == [1, 2]
    # on every seed, and by far on the mean: the fixed 42 s splits starve the busy axis
    assert (loss["max_pressure"] < loss["static"]).all(), loss
    assert loss["max_pressure"].mean() < 0.8 * loss["static"].mean(), loss
    mp = summary[summary.controller == "max_pressure"]
    assert (mp.safety_violations == 0).all()
    assert (mp.teleports == 0).all()
    assert (mp.signal_switches > 0).all()
    assert (summary.vehicles_inserted > 300).all()


# -- a grid with left-turn lanes: four stages per signal ---------------------------------------

@pytest.fixture(scope="module")
def turn_grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[RoadNetwork, Path]:
    """2×2 grid with exclusive left-turn lanes and flows from every entry to every other exit."""
    d = tmp_path_factory.mktemp("turn_grid")
    net = load_network(grid_network(d / "g.net.xml", rows=2, cols=2, lanes=1, left_turn_lanes=True))
    fringe = re.compile(r"^(left|right|top|bottom)\d+$")
    entries = sorted(k for u, _, k in net.graph.edges(keys=True) if fringe.match(u))
    exits = sorted((k, v) for _, v, k in net.graph.edges(keys=True) if fringe.match(v))
    assert len(entries) == len(exits) == 8
    flows = ["<routes>"]
    for a in entries:
        for b, tip in exits:
            if not a.startswith(tip):  # no U-turns back to the entry's own fringe node
                vph = 60 if a.startswith(("left", "right")) else 25
                flows.append(f'    <flow id="{a}_{b}" from="{a}" to="{b}" begin="0" end="600" vehsPerHour="{vph}"/>')
    flows.append("</routes>")
    routes = d / "flows.rou.xml"
    routes.write_text("\n".join(flows) + "\n")
    return net, routes


def _strict(sig: Signal) -> np.ndarray:
    to = [m.to_lane for m in sig.movements]
    return sig.conflicts & ~np.array([[a == b and a != "" for b in to] for a in to])


def test_stage_transitions_are_safe(turn_grid: tuple[RoadNetwork, Path]) -> None:
    net, _ = turn_grid
    for _sid, sig in sorted(net.signals.items()):
        st = signal_stages(sig)
        assert st is not None and st.n_stages == 4
        phases = sig.default_program.phases
        assert st.states == tuple(p.state for p in phases if is_stage_state(p.state))
        for i in range(st.n_stages):
            assert st.min_green_s[i] == min(5.0, st.program_green_s[i])
            nxt = st.next_stage(i)
            # program order: the program's own intergreen
            own = phases[st.phase_index[i] + 1: st.phase_index[nxt] or len(phases)]  # (stage 0 is phase 0)
            assert st.transitions[(i, nxt)] == tuple((p.state, p.duration) for p in own)
        _assert_transitions_safe(sig, st)


def _assert_transitions_safe(sig: Signal, st: Any) -> None:
    """Every transition between two stages: no strict foes green together, yellow before red,
    and every yellow at least 3 s."""
    strict = _strict(sig)
    for i in range(st.n_stages):
        for j in range(st.n_stages):
            if i == j:
                continue
            seq = [st.states[i], *(s for s, _ in st.transitions[(i, j)]), st.states[j]]
            for s in seq:
                g = np.array([c == "G" for c in s])
                assert not (strict & g[:, None] & g[None, :]).any(), (sig.id, i, j, s)
            for a, b in zip(seq, seq[1:], strict=False):
                for k, (x, y) in enumerate(zip(a, b, strict=True)):
                    assert not (x in "Gg" and y in "rs"), (sig.id, i, j, k, a, b)  # yellow first
            for s, dur in st.transitions[(i, j)]:
                if "y" in s:
                    assert dur >= 3.0


def test_a_zero_length_yellow_of_the_program_is_not_trusted(turn_grid: tuple[RoadNetwork, Path]) -> None:
    """SUMO skips a phase of duration 0: a program whose yellows last 0 s goes green -> red, so
    the switcher must not take its intergreen as it stands but derive one with a yellow."""
    net, _ = turn_grid
    sig = net.signals["A0"]
    prog = sig.default_program
    zero = replace(prog, phases=tuple(replace(p, duration=0.0) if "y" in p.state else p for p in prog.phases))
    st = signal_stages(sig, zero)
    assert st is not None and st.n_stages == 4
    for i in range(st.n_stages):
        ig = st.transitions[(i, st.next_stage(i))]
        assert ig and all(d > 0 for _, d in ig)
        assert any("y" in s for s, _ in ig)
    _assert_transitions_safe(sig, st)


def test_a_request_for_the_stage_coming_only_raises_its_hold(turn_grid: tuple[RoadNetwork, Path]) -> None:
    """Asking for the stage that shows (with another switch pending) or the one an intergreen
    heads to keeps the hold asked for, and drops the pending switch."""
    net, _ = turn_grid
    sw = StageSwitcher(net, ["A0"], default_min_green_s=5.0)
    sw.stage[0], sw.min_green_s[0] = 1, 5.0  # showing stage 1
    sw.request(0, 2)
    assert sw.pending[0] == 2
    sw.request(0, 1, hold_s=30.0)
    assert sw.pending[0] == -1 and sw.min_green_s[0] == 30.0
    sw.stage[0], sw.target[0] = -1, 3  # in the intergreen towards stage 3
    sw.request(0, 3, hold_s=40.0)
    assert sw.pending[0] == -1 and sw.hold_s[0] == 40.0
    sw._show_green(0, 3, 100.0)
    assert sw.min_green_s[0] == 40.0


def test_derived_transition() -> None:
    assert derived_transition("GGrr", "rrGG", yellow_s=3, all_red_s=2) == [("yyrr", 3.0), ("rrrr", 2.0)]
    assert derived_transition("GGrr", "rrGG", yellow_s=3, all_red_s=2, red_yellow_s=1) == [
        ("yyrr", 3.0), ("rrrr", 2.0), ("rruu", 1.0)]
    # links green in both keep (the weaker) green through the intergreen
    assert derived_transition("GgGr", "rGgG", yellow_s=4, all_red_s=0) == [("yggr", 4.0)]
    assert derived_transition("rGrr", "GGrr", yellow_s=3, all_red_s=2) == []  # nothing ends: no clearance


def test_state_conflicts_on_a_real_signal(turn_grid: tuple[RoadNetwork, Path]) -> None:
    net, _ = turn_grid
    sig = net.signals["A0"]
    strict = _strict(sig)
    i, j = (int(x) for x in np.argwhere(np.triu(strict))[0])
    state = "".join("G" if k in (i, j) else "r" for k in range(sig.n_links))
    assert state_conflicts(sig, state) == [(i, j)]
    assert state_conflicts(sig, state.replace("G", "g")) == []  # permitted greens yield


def test_switcher_keeps_min_green_and_holds_in_sumo(turn_grid: tuple[RoadNetwork, Path], tmp_path: Path) -> None:
    """A jump to a non-successor stage asked for at once waits for the minimum green, shows the
    derived intergreen, and the new green is held as long as asked."""
    net, routes = turn_grid
    sid = "A0"
    sw = StageSwitcher(net, [sid], default_min_green_s=10.0)
    st = sw.stages[0]
    shown: list[tuple[float, str]] = []
    cfg = SessionConfig(net_file=net.path, route_files=(routes,), end_s=120, seed=1)
    jumped_at = None
    with SumoSession(cfg) as sim:
        sw.start(sim)  # the program starts in a green stage: attached at once
        assert sw.attached[0] and sw.stage[0] >= 0
        attached_at, first = sim.time_s, int(sw.stage[0])
        target = (first + 2) % st.n_stages  # not the next stage in program order
        sw.request(0, target, hold_s=25.0)
        mon = TransitionMonitor(net, [sid], default_min_green_s=10.0)
        mon.start(sim)
        for t in sim.steps():
            sw.step(sim)
            mon.record(sim)
            shown.append((t, sim.conn.trafficlight.getRedYellowGreenState(sid)))
            if jumped_at is None and sw.stage[0] == target:
                jumped_at = t
                sw.request(0, first)  # asked at once, honoured only after the hold
    assert jumped_at is not None
    assert mon.violations == []
    states = dict(shown)
    # the first green ran its minimum, then the derived intergreen, then the target stage
    lost = st.lost_time_s(first, target)
    assert jumped_at == attached_at + 10.0 + lost
    k = attached_at + 10.0
    for s, dur in st.transitions[(first, target)]:
        assert states[k] == s
        k += dur
    assert states[jumped_at] == st.states[target]
    back = next(t for t, s in shown if t > jumped_at and s != st.states[target])
    assert back == jumped_at + 25.0
    assert sw.changes >= 2 + len(st.transitions[(first, target)])


def _drive(name: str, options: dict, net_file: Path, routes: tuple[Path, ...], adds: tuple[Path, ...],
           workdir: Path, end_s: float) -> tuple[Any, dict[str, list[str]], TransitionMonitor]:
    """Run a controller through its interface in SUMO; every step's state of every signal."""
    ctrl = make_controller(name, options)
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = RunSpec(scenario="t", controller=name, net_file=net_file, route_files=routes, begin_s=0.0, end_s=end_s,
                  seed=1, workdir=workdir, options=options)
    extra = ctrl.prepare(ctx)
    cfg = SessionConfig(net_file=net_file, route_files=routes, additional_files=(*adds, *extra), end_s=end_s,
                        seed=1, log_file=workdir / "sumo.log")
    states: dict[str, list[str]] = {}
    with SumoSession(cfg) as sim:
        ctrl.start(sim)
        mon = TransitionMonitor(load_network(net_file))
        mon.start(sim)
        get = sim.conn.trafficlight.getRedYellowGreenState
        for _ in sim.steps():
            ctrl.step(sim)
            mon.record(sim)
            for sid in mon.signals:
                states.setdefault(sid, []).append(get(sid))
    ctrl.finish(ctx)
    return ctrl, states, mon


@pytest.mark.slow
def test_max_pressure_holds_a_green_only_for_vehicles_still_in_its_zones(
    turn_grid: tuple[RoadNetwork, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A green holds while its queue discharges only if a vehicle is still in one of its
    priority lanes' zones, or a moving permitted turn's own zone (``hold_queue_veh`` = 1):
    before (0, which the option still gives), the last vehicle of a platoon crossing its loop
    held the green for nobody. With ``hold_per_lane`` the vehicle must be in the zone of the
    lane whose loop was crossed."""
    from greenwave.controllers.max_pressure import MaxPressureController

    net, routes = turn_grid
    original = MaxPressureController.discharging
    held: list[tuple[float, bool]] = []  # per hold: most vehicles in a zone; a crossed lane's zone had one

    def recording(self: MaxPressureController, sim: Any, signals: np.ndarray) -> np.ndarray:
        out = original(self, sim, signals)
        loop = sim.conn.inductionloop
        for n, i in enumerate(signals):
            if out[n]:
                k = int(self.switcher.stage[i])  # priority lanes, and permitted turns' (``hold_permitted``)
                rows = np.concatenate([self._hold_loops[i][k], self._permitted_loops[i][k]])
                queue = np.nan_to_num(self.reader.queue[rows], nan=0.0)
                paired = False
                for r, q in zip(rows, queue, strict=True):
                    since = loop.getTimeSinceDetection(self.layout.e1_ids[r])
                    crossed = 0.0 < since < self.opts["hold_gap_s"] or (
                        since <= 0.0 and loop.getLastStepMeanSpeed(self.layout.e1_ids[r]) > 1.0)
                    paired |= crossed and q >= 1.0
                held.append((float(queue.max(initial=0.0)), paired))
        return out

    monkeypatch.setattr(MaxPressureController, "discharging", recording)
    seen = {}
    for name, opts in (("default", {}), ("zero", {"hold_queue_veh": 0.0}), ("per_lane", {"hold_per_lane": 1.0})):
        held.clear()
        opts = {**opts, "hold_speed_share": 0.0}  # every zone counts, whatever its speed: the queue rule alone
        _, _, mon = _drive("max_pressure", opts, net.path, (routes,), (), tmp_path / name, 600.0)
        assert not mon.violations, mon.violations[:3]
        seen[name] = (len(held), sum(q < 1.0 for q, _ in held), sum(not p for _, p in held))
    assert seen["default"][0] > 50 and seen["default"][1] == 0, seen
    assert seen["zero"][1] > 100, seen  # held with every zone empty
    assert seen["default"][2] > 10 and seen["per_lane"][0] > 50 and seen["per_lane"][2] == 0, seen


@pytest.mark.slow
def test_cyclic_max_pressure_keeps_the_stage_order(turn_grid: tuple[RoadNetwork, Path], tmp_path: Path) -> None:
    net, routes = turn_grid
    cycle = 60.0
    ctrl, states, mon = _drive("max_pressure_cyclic", {"cycle_s": cycle}, net.path, (routes,), (), tmp_path, 600.0)
    sw = ctrl.switcher
    assert set(sw.signals) == set(net.signals) == set(states)
    assert mon.violations == []
    for i, sid in enumerate(sw.signals):
        st = sw.stages[i]
        seq: list[tuple[int, int]] = []  # (step, stage) at each start of a green stage
        for step, s in enumerate(states[sid]):
            k = st.states.index(s) if s in st.states else -1
            if k >= 0 and (not seq or seq[-1][1] != k):
                seq.append((step, k))
        stages = [k for _, k in seq]
        assert len(stages) >= 4 * st.n_stages, (sid, stages)  # several cycles were seen
        for a, b in zip(stages, stages[1:], strict=False):
            assert b == st.next_stage(a), (sid, stages)
        # re-split at each start of stage 0: cycle_s is the longest cycle (each stage ends on a
        # whole step); greens whose queues cleared end early, but never below their minimum
        starts = [step for step, k in seq if k == 0]
        gaps = np.diff(starts[1:])
        assert len(gaps) >= 3
        shortest = float(st.min_green_s.sum()) + sum(st.lost_time_s(k, st.next_stage(k)) for k in range(st.n_stages))
        assert np.all((gaps >= shortest - 1e-6) & (gaps <= cycle + st.n_stages)), (sid, gaps)


def test_cyclic_max_pressure_without_gap_out_runs_the_whole_cycle(
    turn_grid: tuple[RoadNetwork, Path], tmp_path: Path
) -> None:
    net, routes = turn_grid
    cycle = 60.0
    ctrl, states, _ = _drive("max_pressure_cyclic", {"cycle_s": cycle, "hold_gap_s": 0.0}, net.path, (routes,), (),
                             tmp_path, 400.0)
    sid, st = ctrl.switcher.signals[0], ctrl.switcher.stages[0]
    starts = [n for n, s in enumerate(states[sid]) if s == st.states[0] and (n == 0 or states[sid][n - 1] != s)]
    gaps = np.diff(starts[1:])
    assert len(gaps) >= 3 and np.all((gaps >= cycle - 1e-6) & (gaps <= cycle + st.n_stages)), gaps



@pytest.mark.slow
def test_cyclic_max_pressure_skips_stages_without_a_call_and_rests(tmp_path: Path) -> None:
    """SUMO's four-stage cross junction (tools/game/cross, its own stages: two through stages,
    each followed by a protected-left stage) with through traffic on one axis and a single
    vehicle on the other: the protected-left stages are skipped (no vehicle calls them), the
    through green rests while no other stage has a call, and the one vehicle is served."""
    net_file = sumo_home() / "tools" / "game" / "cross" / "cross.net.xml"
    routes = tmp_path / "cross.rou.xml"
    routes.write_text('<routes>\n    <flow id="main" from="2fi" to="1fo" begin="0" end="500" vehsPerHour="360"/>\n'
                      '    <trip id="side" from="3fi" to="4fo" depart="250"/>\n</routes>\n')
    ctrl, states, mon = _drive("max_pressure_cyclic", {"stage_design": "own"}, net_file, (routes,), (),
                               tmp_path / "run", 600.0)
    assert mon.violations == []
    st = ctrl.switcher.stages[0]
    assert st.n_stages == 4 and [s.count("G") for s in st.states] == [4, 2, 4, 2]
    shown = [st.states.index(s) for n, s in enumerate(states["0"])
             if s in st.states and (n == 0 or states["0"][n - 1] != s)]  # each green's stage, in turn
    main = next(k for k, s in enumerate(st.states) if s[1] == "G")  # the stage of 2si's through lane
    side = st.next_stage(st.next_stage(main))
    assert 1 not in shown[1:] and 3 not in shown[1:], shown  # the protected lefts were never called
    assert shown[-3:] == [main, side, main] and shown.count(side) == 1, shown  # side served once
    assert ctrl.skips >= 2
    # resting: the main green ended only for the side vehicle, so every yellow of the last 450 s
    # belongs to those two switches (a yellow a step counts once per switch)
    switches = sum(1 for n in range(150, 600) if "y" in states["0"][n] and "y" not in states["0"][n - 1])
    assert switches == 2, switches


@pytest.mark.slow
def test_cyclic_max_pressure_calls_a_protected_left_for_waiting_turners(tmp_path: Path) -> None:
    """The same junction with left turners (lane 2si_2, permitted ``g`` in the through stage,
    protected ``G`` in the next) against opposing through traffic: the protected-left stage is
    called and shown; the other axis, with no vehicle, is skipped every cycle."""
    net_file = sumo_home() / "tools" / "game" / "cross" / "cross.net.xml"
    routes = tmp_path / "cross.rou.xml"
    routes.write_text('<routes>\n    <flow id="main" from="2fi" to="1fo" begin="0" end="600" vehsPerHour="300"/>\n'
                      '    <flow id="opposing" from="1fi" to="2fo" begin="0" end="600" vehsPerHour="600"/>\n'
                      '    <flow id="left" from="2fi" to="3fo" begin="0" end="600" vehsPerHour="150"/>\n</routes>\n')
    ctrl, states, mon = _drive("max_pressure_cyclic", {"stage_design": "own"}, net_file, (routes,), (),
                               tmp_path / "run", 600.0)
    assert mon.violations == []
    st = ctrl.switcher.stages[0]
    shown = [st.states.index(s) for n, s in enumerate(states["0"])
             if s in st.states and (n == 0 or states["0"][n - 1] != s)]
    through, left = 0, 1
    assert st.states[through][2] == "g" and st.states[left][2] == "G"
    assert shown[1:].count(left) >= 3, shown
    assert set(shown[1:]) == {through, left}, shown


def _side_road_greens(name: str, options: dict, start_s: float, tmp_path: Path) -> tuple[list[int], Any, str]:
    """SUMO's cross junction, through traffic on one axis and a side-road vehicle every 15 s,
    both detectors of every side-road lane dead from ``start_s``: the steps at which the side
    flow's link (4: 3si_0 -> 4o) turns green, the controller and SUMO's log."""
    net_file = sumo_home() / "tools" / "game" / "cross" / "cross.net.xml"
    routes = tmp_path / "cross.rou.xml"
    routes.write_text('<routes>\n    <flow id="main" from="2fi" to="1fo" begin="0" end="900" vehsPerHour="400"/>\n'
                      '    <flow id="side" from="3fi" to="4fo" begin="0" end="900" period="15"/>\n</routes>\n')
    dead = [f"gw{kind}_3si_{n}" for n in (0, 1) for kind in ("e1", "e2")]
    opts = {**options, "detector_faults": [{"kind": "stuck_off", "ids": dead, "start_s": start_s}]}
    ctrl, states, mon = _drive(name, opts, net_file, (routes,), (), tmp_path / "run", 900.0)
    assert mon.violations == []
    side = [n for n, s in enumerate(states["0"]) if s[4] in "gG"]
    return [n for n in side if n - 1 not in side], ctrl, (tmp_path / "run" / "sumo.log").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["max_pressure", "max_pressure_cyclic"])
def test_a_side_road_whose_detectors_die_unseen_is_still_served(name: str, tmp_path: Path) -> None:
    """Both detectors of the side road die at 240 s (loop and zone agree the lane is empty: no
    plausibility check sees it). Before the silence check the side road never got a green again
    and its vehicles waited until SUMO teleported them; now the reader takes the lanes as silent
    once they are quiet for ten of their mean headways (240 s at least) and the side road is
    served every cycle after that."""
    starts, ctrl, log = _side_road_greens(name, {}, 240.0, tmp_path)
    after = [n for n in starts if n > 240]
    # quiet since the last side vehicle for ten headways of the loop's counts (240 s at least),
    # then served within a cycle
    assert after and after[0] <= 240 + 300, starts
    assert len(after) >= 5 and np.diff(after).max() <= 90, starts
    assert "Teleporting" not in log, log[-500:]
    # the side flow uses lane 0; lane 1, which never had traffic, is not told from an empty lane
    assert {d for _, d, s in ctrl.reader.fault_log if s == "silent"} == {"gwe1_3si_0", "gwe2_3si_0"}


@pytest.mark.slow
def test_the_recall_serves_a_side_road_whose_detectors_are_dead_from_the_start(tmp_path: Path) -> None:
    """Detectors dead from the start look like an empty lane to every check; ``recall_s`` serves
    each stage at least that often whatever its detectors say."""
    starts, _, log = _side_road_greens("max_pressure_cyclic", {"recall_s": 180.0}, 0.0, tmp_path)
    assert len(starts) >= 4 and np.diff([0, *starts]).max() <= 180 + 60, starts
    assert "Teleporting" not in log, log[-500:]


@pytest.mark.parametrize("design", ["own", "conflict_graph"])
def test_cyclic_calls_of_every_signal_at_once_match_the_plain_rule(design: str, tmp_path: Path) -> None:
    """The calls :meth:`pair_calls` finds for every signal of DRT's OpenStreetMap district with
    one sparse product are, per signal and current stage, what the plain per-signal rule
    (:meth:`calls`) finds: random vehicles per link, random current stages and times since each
    stage showed, with and without the recall."""
    net_file = sumo_home() / "tools" / "game" / "DRT" / "osm.net.xml"
    rng = np.random.default_rng(7)
    options = {"stage_design": design}
    ctrl = make_controller("max_pressure_cyclic", options)
    ctrl.prepare(RunSpec(scenario="drt", controller="max_pressure_cyclic", net_file=net_file, route_files=(),
                         begin_s=0, end_s=60, seed=1, workdir=tmp_path, options=options))
    sw = ctrl.switcher
    assert len(sw.signals) >= 10 and max(st.n_stages for st in sw.stages) >= 3
    for recall in (0.0, 90.0):
        ctrl.opts["recall_s"] = recall
        for _ in range(20):
            sw.stage[:] = [int(rng.integers(0, st.n_stages)) for st in sw.stages]
            link_veh = rng.choice([0.0, 0.0, 0.5, 2.0], ctrl.layout.n_links)
            ctrl.last_served[:] = rng.choice([0.0, 50.0, 100.0, 200.0], ctrl.last_served.size)
            pairs = ctrl.pair_calls(link_veh, 200.0)
            for i, st in enumerate(sw.stages):
                a = int(ctrl.pair_offsets[i]) + int(sw.stage[i]) * st.n_stages
                np.testing.assert_array_equal(pairs[a:a + st.n_stages], ctrl.calls(i, link_veh, 200.0))
            assert pairs.any() and not pairs.all()


# -- signals with unsafe programs of their own ------------------------------------------------

@pytest.fixture(scope="module")
def ingolstadt() -> RoadNetwork:
    return load_network(FKK / "ingolstadt.net.xml.gz")


def test_unsafe_own_program_is_left_alone(ingolstadt: RoadNetwork, tmp_path: Path) -> None:
    sig = ingolstadt.signals["gneJ21"]
    strict = _strict(sig)
    stages = [p.state for p in sig.default_program.phases if is_stage_state(p.state)]
    unsafe = []
    for s in stages:  # independently of the module: some stage shows two conflicting G
        g = np.array([c == "G" for c in s])
        if (strict & g[:, None] & g[None, :]).any():
            unsafe.append(s)
    assert unsafe
    sw = StageSwitcher(ingolstadt)
    assert set(sw.excluded) == {"gneJ21"}
    assert "conflicting priority greens" in sw.excluded["gneJ21"]
    assert "gneJ21" not in sw.signals and "335525545" in sw.signals
    for name in ("max_pressure", "max_pressure_cyclic"):
        ctrl = make_controller(name)
        work = tmp_path / name
        work.mkdir()
        ctx = RunSpec(scenario="fkk", controller=name, net_file=ingolstadt.path, route_files=(), begin_s=0,
                      end_s=60, seed=1, workdir=work, options={})
        actuated, add = ctrl.prepare(ctx)
        text = (work / "excluded_signals.txt").read_text()
        assert "gneJ21:" in text and "335525545" not in text
        # the signal it leaves alone runs its own program under SUMO's actuated control
        programs = actuated.read_text()
        assert 'id="gneJ21"' in programs and 'type="actuated"' in programs and "335525545" not in programs
        assert ctrl.layout.signals == ("335525545",)
        written = add.read_text()
        assert "gneE12_0" not in written  # an approach of gneJ21 only
        assert "29119849#1_1" in written  # an approach of 335525545


def test_a_program_given_for_no_traffic_light_is_refused(tmp_path: Path) -> None:
    """left_alone_programs naming a light the network does not have (a typo) is an error naming
    the file and the id, not a program silently dropped."""
    corridor = sumo_home() / "tools" / "game" / "corridor"
    given = tmp_path / "given.add.xml"
    given.write_text('<additional><tlLogic id="gneJ99" programID="given" type="static" offset="0">'
                     '<phase duration="30" state="G"/></tlLogic></additional>')
    ctrl = make_controller("max_pressure", {"left_alone_programs": str(given)})
    ctx = RunSpec(scenario="t", controller="max_pressure", net_file=corridor / "corridor.net.xml", route_files=(),
                  begin_s=0.0, end_s=60.0, seed=1, workdir=tmp_path, options={"left_alone_programs": str(given)})
    with pytest.raises(ScenarioError, match=r"given\.add\.xml: <tlLogic> ids \['gneJ99'\] name no traffic light"):
        ctrl.prepare(ctx)


@pytest.mark.slow
def test_a_signal_given_a_program_is_left_alone_on_it(tmp_path: Path) -> None:
    """SUMO's corridor: ``left_alone_programs`` naming a signal max_pressure could drive
    (``gneJ11``) leaves it on that program, which SUMO runs phase by phase, while max_pressure
    drives the other two safely."""
    corridor = sumo_home() / "tools" / "game" / "corridor"
    net = load_network(corridor / "corridor.net.xml")
    own = net.signals["gneJ11"].default_program
    assert own is not None
    # the game's program waits 10005 s for a player; the one given greens each stage for 20 s
    phases = "".join(f'<phase duration="{min(ph.duration, 20.0):g}" state="{ph.state}"/>' for ph in own.phases)
    given = tmp_path / "given.add.xml"
    given.write_text(f'<additional><tlLogic id="gneJ11" programID="given" type="static" offset="0">{phases}'
                     "</tlLogic></additional>")
    ctrl, states, mon = _drive("max_pressure", {"left_alone_programs": str(given)}, corridor / "corridor.net.xml",
                               (corridor / "corridor.rou.xml",), (), tmp_path / "run", 300.0)
    assert ctrl.switcher.signals == ("gneJ10", "gneJ12")
    text = (tmp_path / "run" / "excluded_signals.txt").read_text()
    assert "gneJ11: left_alone_programs gives it a program; it runs program 'given'" in text
    assert "gneJ10" not in text and "gneJ12" not in text
    seen = [st for k, st in enumerate(states["gneJ11"]) if k == 0 or states["gneJ11"][k - 1] != st]
    cycle = [ph.state for ph in own.phases]
    start = cycle.index(seen[0])
    assert seen == [cycle[(start + k) % len(cycle)] for k in range(len(seen))]  # the program, in its order
    assert len(seen) > len(cycle)  # over 300 s more than one cycle
    assert mon.violations == []
    assert ctrl.switches > 0


@pytest.mark.slow
def test_max_pressure_takes_over_every_driven_signal(tmp_path: Path) -> None:
    ctrl, _, mon = _drive("max_pressure", {}, FKK / "ingolstadt.net.xml.gz", (FKK / "fkk_in.rou.xml",),
                          (FKK / "fkk_in.tls.add.xml",), tmp_path, 200.0)
    sw = ctrl.switcher
    assert sw.signals == ("335525545",)
    assert sw.attached.all()  # SUMO runs the last program loaded; any of its greens is taken over
    # ... safely: the foreign green is held, then yellow and all-red (gneJ21 is not driven; its
    # own program is unsafe)
    assert [v for v in mon.violations if v.signal == "335525545"] == []


# -- options -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, options, message",
    [
        ("max_pressure", {"bogus": 1}, "unknown options ['bogus']"),
        ("max_pressure", {"cycle_s": 60}, "unknown options ['cycle_s']"),
        ("max_pressure", {"min_green_s": -1}, "option 'min_green_s' must be a number >= 0"),
        ("max_pressure", {"threshold_veh": "high"}, "option 'threshold_veh' must be a number >= 0"),
        ("max_pressure", {"max_green_s": True}, "option 'max_green_s' must be a number >= 0"),
        ("max_pressure", {"max_red_s": float("nan")}, "option 'max_red_s' must be a number >= 0"),
        ("max_pressure", {"min_green_s": 30, "max_green_s": 10}, "min_green_s <= max_green_s"),
        ("max_pressure", {"min_green_s": 0}, "min_green_s <= max_green_s"),
        ("max_pressure", {"decision_interval_s": 0}, "decision_interval_s must be > 0"),
        ("max_pressure", {"initial_per_veh_s": -2}, "option 'initial_per_veh_s' must be a number >= 0"),
        ("max_pressure_cyclic", {"initial_per_veh_s": 1.5}, "unknown options ['initial_per_veh_s']"),
        ("max_pressure", {"e2_length_m": 0}, "e2_length_m > 0"),
        ("max_pressure", {"detector_faults": [{"kind": "melted", "share": 0.1}]},
         "option 'detector_faults'[0]: 'kind' must be one of"),
        ("max_pressure_cyclic", {"cycle_s": -60}, "option 'cycle_s' must be a number >= 0"),
        ("max_pressure_cyclic", {"smoothing": "lots"}, "option 'smoothing' must be a number >= 0"),
    ],
)
def test_bad_options_name_the_option(
    name: str, options: dict, message: str, turn_grid: tuple[RoadNetwork, Path], tmp_path: Path
) -> None:
    net, routes = turn_grid
    ctx = RunSpec(scenario="t", controller=name, net_file=net.path, route_files=(routes,), begin_s=0, end_s=60,
                  seed=1, workdir=tmp_path, options=options)
    with pytest.raises(ScenarioError) as err:
        make_controller(name, options).prepare(ctx)
    assert message in str(err.value)
    if "must be a number" in message or "unknown options" in message:
        assert f"controller {name!r}" in str(err.value)


def test_bad_option_is_refused_when_the_scenario_loads() -> None:
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict({**UNEVEN, "seeds": [1], "controllers": ["max_pressure"], "duration_s": 600,
                            "controller_options": {"max_pressure": {"threshold_vehicles": 2}}})
    assert "controller_options.max_pressure: unknown option 'threshold_vehicles'; valid: " in str(err.value)
    assert "min_green_s" in str(err.value)


# -- the decision kernel against its plain reference ---------------------------------------------

@pytest.mark.parametrize("seed", range(20))
def test_decision_kernel_matches_reference(seed: int) -> None:
    """Random signals (1–5 stages), pressures with ties and zeros, starving and maxed-out
    greens: the numba kernel decides exactly as the plain reference."""
    from greenwave.controllers.max_pressure import _next_stages_kernel, next_stages

    rng = np.random.default_rng(seed)
    n_sig = int(rng.integers(1, 40))
    sizes = rng.integers(1, 6, n_sig)
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n_rows = int(off[-1])
    pressure = rng.choice([0.0, 1.0, 2.5, 4.0, -1.0], n_rows) + rng.choice([0.0, 0.25], n_rows)
    stage = np.array([rng.integers(0, s) for s in sizes], dtype=np.int64)
    ready = rng.random(n_sig) < 0.8
    waited = rng.choice([0.0, 30.0, 120.0, 150.0, 150.0], n_rows)
    elapsed = rng.choice([5.0, 30.0, 60.0], n_sig)
    max_green = rng.choice([40.0, 60.0], n_rows)
    threshold = float(rng.choice([0.0, 0.5, 1.0]))
    hold = rng.random(n_sig) < 0.3
    max_red = rng.choice([90.0, 120.0], n_sig)
    recall = float(rng.choice([0.0, 150.0]))
    want = next_stages(pressure, off, stage, ready, hold, waited, elapsed, max_green, max_red, recall, threshold)
    got = np.full(n_sig, -7, dtype=np.int64)
    _next_stages_kernel(pressure, off, stage, ready, hold, waited, elapsed, max_green, max_red, recall, threshold,
                        got)
    np.testing.assert_array_equal(got, want)
    assert (want[~ready] == -1).all() and (want[sizes < 2] == -1).all()
    assert ((want == -1) | (want != stage)).all()  # never a "switch" to the stage showing



def test_a_maxed_out_green_ends_only_for_a_stage_with_demand() -> None:
    """At its maximum green a stage gives way only to a stage whose pressure is above zero: no
    yellow is paid for a stage nobody waits for (plain reference and kernel alike)."""
    from greenwave.controllers.max_pressure import _next_stages_kernel, next_stages

    off = np.array([0, 2, 4], dtype=np.int64)
    pressure = np.array([3.0, 0.0, 3.0, 1.5])  # signal 0: nobody for stage 1; signal 1: stage 1 waits
    args = (pressure, off, np.zeros(2, dtype=np.int64), np.ones(2, dtype=bool), np.zeros(2, dtype=bool),
            np.zeros(4), np.full(2, 60.0), np.full(4, 60.0), np.full(2, 120.0), 180.0, 0.5)
    want = next_stages(*args)
    got = np.full(2, -7, dtype=np.int64)
    _next_stages_kernel(*args, got)
    assert list(want) == list(got) == [-1, 1]


def test_a_stage_unserved_for_the_recall_time_is_served_without_demand() -> None:
    """A stage nobody seems to wait for (its detectors may have died unseen) is served once it
    has not shown for ``recall_s``, even against a holding green; not before, and not with the
    recall off (0). Plain reference and kernel alike."""
    from greenwave.controllers.max_pressure import _next_stages_kernel, next_stages

    off = np.array([0, 2], dtype=np.int64)
    for waited, recall, want_next in ((179.0, 180.0, -1), (180.0, 180.0, 1), (900.0, 0.0, -1)):
        args = (np.array([3.0, 0.0]), off, np.zeros(1, dtype=np.int64), np.ones(1, dtype=bool),
                np.ones(1, dtype=bool), np.array([0.0, waited]), np.full(1, 20.0), np.full(2, 60.0),
                np.full(1, 120.0), recall, 0.5)
        got = np.full(1, -7, dtype=np.int64)
        _next_stages_kernel(*args, got)
        assert list(next_stages(*args)) == list(got) == [want_next], (waited, recall)

# -- a real guideline junction: RiLSA example 2 with the city's own programs --------------------

RILSA2 = sumo_home() / "tools" / "sumolib" / "scenario" / "scenarios" / "RealWorld" / "RiLSA_example2"


def _green_runs(tls_states: Path, end_s: float) -> list[tuple[str, float]]:
    """(state, seconds shown) of every run of one state, from SUMO's SaveTLSStates output."""
    changes: list[tuple[float, str]] = []
    for _, el in ET.iterparse(tls_states):
        if el.tag == "tlsState" and (not changes or changes[-1][1] != el.get("state")):
            changes.append((float(el.get("time", "0")), el.get("state", "")))
    ends = [t for t, _ in changes[1:]] + [end_s]
    return [(s, e - t) for (t, s), e in zip(changes, ends, strict=True)]


def _run_rilsa2(tmp_path: Path, end: float, example: int = 2, options: dict | None = None) -> tuple[Any, Path, Path]:
    """max_pressure on RiLSA example 2 (or ``example``; its city program and counted flows, seed
    1) with the transition monitor: (summary row, run folder, SUMO's tls states of the run)."""
    from greenwave._sumo import run_sumo_command

    folder = RILSA2.parent / f"RiLSA_example{example}"
    tmp_path.mkdir(parents=True, exist_ok=True)
    run_sumo_command([folder / "makeRoutes.py"], what=f"RiLSA example {example} demand", cwd=tmp_path)
    save = tmp_path / "save.add.xml"
    save.write_text(f'<additional><timedEvent type="SaveTLSStates" dest="{tmp_path / "tls.xml"}"/></additional>\n')
    sc = scenario_from_dict({
        "name": f"rilsa{example}", "duration_s": end, "seeds": [1], "controllers": ["max_pressure"],
        "network": {"file": str(folder / f"rilsa{example}.net.xml")},
        "demand": {"route_files": [str(tmp_path / "flows.rou.xml")],
                   "additional_files": [str(folder / "vtypes.add.xml"), str(folder / f"rilsa{example}_tls.add.xml"),
                                        str(save)]},
        "controller_options": {"max_pressure": options or {}},
    })
    row = run_scenario(sc, tmp_path / "out", check_safety=True).iloc[0]
    run = next((tmp_path / "out").rglob("max_pressure_seed1"))
    return row, run, next(run.rglob("tls.xml"))


@pytest.mark.slow
def test_max_pressure_on_rilsa_example_2_runs_two_stages_and_cuts_greens_that_lose_nothing(tmp_path: Path) -> None:
    """RiLSA example 2 (a T junction, its city program and counted flows, 900 s, seed 1).

    Measured on the code before (SUMO's tls states): on the city's five overlapping stages
    max_pressure showed all-red 114 s and yellow 198 s of 900, the side road lost 143 s/veh,
    mean time loss 63.9 s/veh (SUMO's rebuilt delay_based: 9.4). On the two-stage design the
    main road's through lanes are green in both stages: their vehicles held each stage up to
    its 60 s maximum green (side road's stage: up to 59 s), 18.8 s/veh. Now the design is the
    model's two stages and only lanes that lose their green hold it: 14.5 s/veh."""
    end = 900.0
    row, run, tls = _run_rilsa2(tmp_path, end)
    assert (run / "stage_designs.json").is_file()  # before: the own stages, no design chosen
    design = json.loads((run / "stage_designs.json").read_text())["signals"]["0"]
    assert design["stages"] == 2, design  # not the city's five overlapping stages
    runs = _green_runs(tls, end)
    intergreen = sum(d for s, d in runs if not any(c in "Gg" for c in s) or any(c in "yYu" for c in s))
    # before: 312 s of 900; now 207, and 58 s of all-red in which links 0 and 1 run on (counted green)
    assert intergreen < 0.3 * end, intergreen
    # the side road's stage (links 3 and 4 green) ends when the side road has nothing left
    side = [d for s, d in runs if s[3] in "Gg" and s[4] in "Gg"]
    assert len(side) >= 12 and max(side) <= 30.0, side  # before: 10 greens, up to 59 s
    assert row.safety_violations == 0
    assert row.mean_time_loss_s < 16.5, row.mean_time_loss_s  # before: 63.9 (own), 18.8 (two stages)
    # SUMO's rebuilt stages: the westbound through lanes (links 0, 1), green in both, run on
    # through the intergreen after the west approach's stage and stop after the side road's,
    # whose left turners wait for them in the median (stage_choice.design_signal_stages); before,
    # they stopped after both ("yyrrryyy")
    assert design["design"] == "rebuilt", design
    shown = [s for s, _ in runs]
    after = set(zip(shown, shown[1:], strict=False))
    assert {("GGrrryyy", "GGrrrrrr"), ("GGrrrrrr", "GGGGGrrr"), ("yyyyyrrr", "rrrrrrrr")} <= after, sorted(after)
    assert not [s for s in shown if s[:2] == "yy" and s[5:] == "yyy"]


@pytest.mark.slow
def test_a_permitted_left_turn_moving_over_its_loop_holds_the_green(tmp_path: Path) -> None:
    """RiLSA example 4 (its counted flows, one hour, seed 1): the south approach's left lane
    ``sm_1`` turns permitted (``g``) across the opposing through traffic, so its vehicles go when
    the opposing queue has cleared, just when the priority lanes gap out. Without the permitted
    hold (``hold_permitted = 0``, the rule before) the stage ended on them each cycle and their
    queue grew all run (142 s of time loss each, RESCO delay 34.6 s/veh); with it they move on
    (61 s; 27.9 s/veh)."""
    losses = {}
    for hold in (0, 1):
        row, run, _ = _run_rilsa2(tmp_path / f"hold{hold}", 3600.0, example=4, options={"hold_permitted": hold})
        assert row.safety_violations == 0
        left = [float(t.get("timeLoss", "0")) for t in ET.parse(run / "tripinfo.xml").getroot().iter("tripinfo")
                if t.get("departLane") == "sm_1" and float(t.get("arrival", "-1")) >= 0]
        assert len(left) > 50
        losses[hold] = (sum(left) / len(left), float(row.resco_delay_s))
    assert losses[1][0] < 0.6 * losses[0][0], losses  # the left turners' mean time loss
    assert losses[1][1] < losses[0][1], losses


@pytest.mark.slow
def test_arrivals_at_free_speed_do_not_hold_a_green_that_served_its_queue(tmp_path: Path) -> None:
    """RiLSA example 3 (its city program and counted flows, one hour, seed 1): with every zone
    counting for the hold whatever its vehicles' speed (``hold_speed_share = 0``, the rule
    before) vehicles arriving at free speed kept crossing the loops and held each green after
    its queue had gone, while the other approaches queued; counting a zone only while its
    vehicles move below 85 % of the speed limit ends those greens: mean green 22.9 → 16.8 s,
    RESCO delay 23.99 → 21.89 s/veh (seeds 1-8: 23.99 → 21.59)."""
    runs = {}
    for share in (0.0, 0.85):
        row, _, tls = _run_rilsa2(tmp_path / f"share{share}", 3600.0, example=3, options={"hold_speed_share": share})
        assert row.safety_violations == 0
        greens = [d for s, d in _green_runs(tls, 3600.0) if any(c in "Gg" for c in s) and not any(c in "yu" for c in s)]
        runs[share] = (float(row.resco_delay_s), sum(greens) / len(greens))
    assert runs[0.85][1] < 0.9 * runs[0.0][1], runs  # shorter greens
    assert runs[0.85][0] < 0.95 * runs[0.0][0], runs  # less delay


@pytest.mark.slow
def test_variable_initial_green_lets_the_queue_found_at_a_green_start_discharge(tmp_path: Path,
                                                                                 pool: Any) -> None:
    """grid6's own demand oversaturates the grid: with ``initial_per_veh_s`` no green ends
    before 2 s per vehicle that queued in its longest priority lane at its start, so greens are
    longer and switches fewer than without, and every transition stays safe."""
    from greenwave.scenarios.sumocfg import portable_sumocfg

    cfg = portable_sumocfg(sumo_home() / "tools" / "game" / "grid6.sumocfg", tmp_path / "grid6.sumocfg")
    runs = {}
    for name, opts in (("plain", {}), ("initial", {"initial_per_veh_s": 2.0, "max_initial_s": 20.0})):
        sc = scenario_from_dict({"name": "grid6", "duration_s": 300, "seeds": [1], "controllers": ["max_pressure"],
                                 "controller_options": {"max_pressure": opts}, "demand": {"sumocfg": str(cfg)}})
        runs[name] = run_scenario(sc, tmp_path / name, executor=pool, check_safety=True).iloc[0]
    plain, initial = runs["plain"], runs["initial"]
    assert plain.safety_violations == 0 and initial.safety_violations == 0
    assert 5.0 < initial.initial_green_mean_s <= 20.0
    assert "initial_green_mean_s" not in plain or np.isnan(plain.initial_green_mean_s)
    assert initial.signal_switches < plain.signal_switches, (initial.signal_switches, plain.signal_switches)


def test_switching_never_takes_a_yellow_under_three_seconds_from_the_program() -> None:
    """square's game programs switch with 1 s of yellow and 1 s of red-yellow: the stages
    derived from them show 3 s of yellow between every pair (the standards' minimum)."""
    game = sumo_home() / "tools" / "game"
    net = load_network(game / "square" / "square.net.xml", program_files=[game / "square" / "square.tll.xml"])
    st = signal_stages(net.signals["A0"])
    assert st is not None and st.program_id == "manual" and st.transitions
    for seq in st.transitions.values():
        shown: dict[int, float] = {}
        for state, duration in seq:
            for k, c in enumerate(state):
                if c in "yY":
                    shown[k] = shown.get(k, 0.0) + duration
        assert shown and min(shown.values()) >= 3.0, seq


def test_a_skip_switch_of_an_own_program_does_not_trap_turners() -> None:
    """A switch between two stages of an own program that are not neighbours is derived from
    the two states. RiLSA example 2's own program (its net file), stage 0 -> 2: link 2 (the east
    approach's left turners, who wait in the median for the westbound lanes) ends its green and
    gives way to link 5, green in both. Before, 5 ran on ('yyyrrgyy', no all-red) over turners
    waiting for it; now it ends with them and starts again after their clearance (1.5 s from the
    junction's geometry; the program's longest all-red, at least 1 s, without the net file).
    The program's own switch to the next stage is as the program has it. On Ingolstadt's
    ``335525545`` (3 s all-red), stage 2 -> 1: links 7-9 stop with link 1's left turners."""
    net = load_network(RILSA2 / "rilsa2.net.xml")
    sig = net.signals["0"]
    assert sig.chain_yields is not None and sig.chain_yields[2, 5]  # after the median lane
    with_file = signal_stages(sig, net_file=net.path)
    without = signal_stages(sig)
    assert with_file is not None and without is not None
    assert with_file.states[0] == "GGgrrggg" and with_file.states[2] == "rrrGGGrr"
    assert with_file.transitions[(0, 2)] == (("yyyrryyy", 4.0), ("rrrrrrrr", 1.5))
    assert without.transitions[(0, 2)] == (("yyyrryyy", 4.0), ("rrrrrrrr", 1.0))
    assert with_file.transitions[(0, 1)] == (("yygrrggg", 4.0),)  # the program's own
    fkk = load_network(FKK / "ingolstadt.net.xml.gz")
    st = signal_stages(fkk.signals["335525545"], net_file=fkk.path)
    assert st is not None and st.states[2] == "ggGGrrrgGGrrr" and st.states[1] == "rrrrrrrgGGrrr"
    assert st.transitions[(2, 1)] == (("yyyyrrryyyrrr", 3.0), ("rrrrrrrrrrrrr", 3.0))
    # a red-yellow before the green shows on the links that stopped too
    steps = design_transition("GGgrrggg", "rrrGGGrr", yellow_s=3.0, all_red_s=1.0,
                              keep_through=stays_green_over(sig), red_yellow_s=1.0)
    assert steps[-1] == ("rrruuurr", 1.0)


@pytest.mark.slow
def test_max_pressure_on_rilsa_example_2s_own_program_skips_without_a_yellow_trap(tmp_path: Path) -> None:
    """In SUMO: max_pressure on RiLSA example 2's own program (its net file's, no design; its
    counted flows, 900 s, seed 1) skips from stage 0 straight to stage 2, and link 5 stops with
    the east approach's left turners who wait for it in the median, then starts again."""
    from greenwave._sumo import run_sumo_command

    run_sumo_command([RILSA2 / "makeRoutes.py"], what="RiLSA example 2 demand", cwd=tmp_path)
    save = tmp_path / "save.add.xml"
    save.write_text(f'<additional><timedEvent type="SaveTLSStates" dest="{tmp_path / "tls.xml"}"/></additional>\n')
    end = 900.0
    sc = scenario_from_dict({
        "name": "rilsa2_own", "duration_s": end, "seeds": [1], "controllers": ["max_pressure"],
        "network": {"file": str(RILSA2 / "rilsa2.net.xml")},
        "demand": {"route_files": [str(tmp_path / "flows.rou.xml")],
                   "additional_files": [str(RILSA2 / "vtypes.add.xml"), str(save)]},
        "controller_options": {"max_pressure": {"stage_design": "own"}},
    })
    row = run_scenario(sc, tmp_path / "out", check_safety=True).iloc[0]
    assert row.safety_violations == 0
    shown = [s for s, _ in _green_runs(next(tmp_path.rglob("tls.xml")), end)]
    after = set(zip(shown, shown[1:], strict=False))
    assert ("yyyrryyy", "rrrrrrrr") in after, sorted(after)  # 0 -> 2: link 5 stops too
    assert "yyyrrgyy" not in shown  # before: 5 ran on


def test_a_take_over_from_a_foreign_green_does_not_trap_turners_either() -> None:
    """The switcher takes over from another program's green with the same rule
    (``trap_free_transition``, which ``StageSwitcher._take_over`` uses): from RiLSA 2's
    ``GGgrrggg`` shown by a foreign program to ``rrrGGGrr``, link 5 stops with link 2's median
    turners. Where the right of way is unknown (no response bits) or nobody is trapped it is
    :func:`derived_transition`, links green in both running on."""
    net = load_network(RILSA2 / "rilsa2.net.xml")
    sig = net.signals["0"]
    a, b = "GGgrrggg", "rrrGGGrr"
    assert trap_free_transition(sig, a, b, yellow_s=4.0, all_red_s=0.0, net_file=net.path) == [
        ("yyyrryyy", 4.0), ("rrrrrrrr", 1.5)]
    assert trap_free_transition(sig, a, b, yellow_s=4.0, all_red_s=0.0, longest_all_red_s=2.0) == [
        ("yyyrryyy", 4.0), ("rrrrrrrr", 2.0)]
    unknown = replace(sig, yields=None)
    assert trap_free_transition(unknown, a, b, yellow_s=4.0, all_red_s=0.0, net_file=net.path) == \
        derived_transition(a, b, yellow_s=4.0, all_red_s=0.0) == [("yyyrrgyy", 4.0)]
    # 2 -> 1 keeps link 5 green: the side road's turners (3, 4) do not wait for it
    assert trap_free_transition(sig, "rrrGGGrr", "rrGrrGGG", yellow_s=4.0, all_red_s=0.0, net_file=net.path) == \
        derived_transition("rrrGGGrr", "rrGrrGGG", yellow_s=4.0, all_red_s=0.0)


class _ForeignProgram:
    """A TraCI stand-in for one signal whose running program is not the switcher's: it shows
    ``state`` until the switcher sets one, and records every state set."""

    def __init__(self, state: str) -> None:
        self.state, self.shown = state, []
        self.trafficlight, self.vehicle = self, self

    def getProgram(self, _sid: str) -> str:  # noqa: N802 (TraCI's names)
        return "foreign"

    def getRedYellowGreenState(self, _sid: str) -> str:  # noqa: N802
        return self.state

    def setRedYellowGreenState(self, _sid: str, state: str) -> None:  # noqa: N802
        self.state = state
        self.shown.append(state)

    def getIDCount(self) -> int:  # noqa: N802
        return 1


def test_the_switcher_takes_over_a_foreign_green_without_a_yellow_trap() -> None:
    """``StageSwitcher`` attaching while another program shows ``rrgGGGrr`` on RiLSA 2 (link
    2, the east approach's left turners, green beside 3-5): the closest stage is ``rrrGGGrr``,
    so link 2 ends while 5, which 2's turners wait for in the median, is green in both. It holds
    the foreign green for the stage's minimum, then shows yellow on 2 and 5 and an all-red
    before the stage; before, 5 ran on (``rryGGGrr``)."""
    from types import SimpleNamespace

    net = load_network(RILSA2 / "rilsa2.net.xml")
    switcher = StageSwitcher(net, ["0"])
    conn = _ForeignProgram("rrgGGGrr")
    sim = SimpleNamespace(conn=conn, time_s=0.0)
    switcher.start(sim)
    for t in range(1, 40):
        sim.time_s = float(t)
        switcher.step(sim)
    shown = conn.shown
    assert shown[0] == "rrgGGGrr" and "rrrGGGrr" in shown, shown
    clearance = shown[1:shown.index("rrrGGGrr")]
    assert clearance and clearance[0][2] == "y" and clearance[0][5] == "y", shown
    assert any(s[5] == "r" for s in clearance), shown
