"""Networked signal control: links to the centre, their faults, local fallback, and the KPI.

The city's target 交通信号系统网联联控率 (*coordinated control rate*) is the share of
signalised intersections that are networked to the control centre **and** under its
coordinated/adaptive control. This module models what that needs in a simulation:

* **Which signals are networked** (scenario table ``[communication]``, key ``networked``: ``"all"``,
  a list of signal ids, or a share drawn with a seed).
* **Communication faults**: scheduled outages (a signal set or a share of the networked signals,
  a start and a duration) and random failures (a rate per signal-hour and a mean repair time,
  seeded). :class:`LinkSchedule` turns them into per-signal down intervals before the run.
* **Fallback**: a signal whose link is down runs its *local plan* — the network's own fixed
  program (``fallback = "fixed"``), the same program actuated by SUMO's detectors
  (``fallback = "actuated"``), or the last plan the centre sent, kept on the controller's own
  clock without further updates (``fallback = "last_plan"``) — and rejoins central control when
  the link returns. Switches between programs happen only at the start of stage 0's green,
  where the central and the local program show the same state, so no green is cut short and no
  clearance is skipped.
* **Central timing**: :class:`CentralDriver` runs each centrally controlled signal's current
  plan (cycle, greens, offset) on the green phases of a SUMO program, leaving yellow and all-red
  phases exactly as programmed. A new plan takes effect at the next cycle start; the offset is
  reached by a bounded transition (greens shortened down to their minimum, or lengthened by at
  most a set share of the cycle, per cycle), as field controllers do.

``coordinated_control_rate`` is recorded every step: in ``summary.csv`` as its time-weighted
mean and minimum over the run, and as a time series in the run's ``control_rate.csv``.

Scenario table::

    [communication]
    networked = "all"            # or ["A0", "B1"], or a share such as 0.9
    fallback = "fixed"           # or "actuated", "last_plan"
    seed = 11                    # optional; default: the run's seed
    failure_rate_per_h = 0.0     # random link failures per signal-hour
    mean_repair_s = 300.0        # mean duration of a random failure (exponential)

    [[communication.outages]]    # any number of scheduled outages
    share = 0.2                  # or signals = ["A0", "B1"]
    start_s = 600
    duration_s = 600
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from greenwave.engine.results import write_text_atomic
from greenwave.engine.run import CommunicationSpec, OutageSpec
from greenwave.errors import ScenarioError, SimulationError
from greenwave.toml_checks import check_keys, number

if TYPE_CHECKING:
    from greenwave.controllers.plans.timing import SignalTiming, TimingPlan
    from greenwave.engine.session import SumoSession
    from greenwave.networks.model import RoadNetwork

__all__ = [
    "CentralDriver",
    "CommunicationSpec",
    "LinkSchedule",
    "OutageSpec",
    "parse_communication",
    "stage_green_times",
]

FALLBACKS = ("fixed", "actuated", "last_plan")


# ------------------------------------------------------------------------------------------
# the scenario's communication model (its types, CommunicationSpec and OutageSpec, are the
# run record's: greenwave.engine.run)


_COMM_KEYS = {
    "networked": '"all" | list[str] | share (0..1)',
    "fallback": '"fixed" | "actuated"',
    "seed": "int",
    "outages": "array of tables",
    "failure_rate_per_h": "float ≥ 0",
    "mean_repair_s": "float > 0",
}
_OUTAGE_KEYS = {"signals": "list[str]", "share": "float (0..1]", "start_s": "float ≥ 0",
                "duration_s": "float > 0"}


def _signal_list(v: Any, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(s, str) and s for s in v):
        raise ScenarioError(f"{where}: {key!r} must be a list of signal ids, got {v!r}")
    return tuple(v)


def parse_communication(raw: Any, *, where: str) -> CommunicationSpec:
    """Validate a scenario's ``[communication]`` table (errors name the file and key)."""
    where = f"{where}: [communication]"
    raw = check_keys(raw, _COMM_KEYS, where)
    net = raw.get("networked", "all")
    networked: str | float | tuple[str, ...]
    if net == "all":
        networked = "all"
    elif isinstance(net, list):
        networked = _signal_list(net, where, "networked")
    elif isinstance(net, (int, float)) and not isinstance(net, bool) and 0.0 <= float(net) <= 1.0:
        networked = float(net)
    else:
        raise ScenarioError(f"{where}: 'networked' must be \"all\", a list of signal ids or a share in "
                            f"[0, 1], got {net!r}")
    fallback = raw.get("fallback", "fixed")
    if fallback not in FALLBACKS:
        raise ScenarioError(f"{where}: 'fallback' must be one of {', '.join(FALLBACKS)}, got {fallback!r}")
    seed = raw.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ScenarioError(f"{where}: 'seed' must be an integer, got {seed!r}")
    outages_raw = raw.get("outages", [])
    if not isinstance(outages_raw, list):
        raise ScenarioError(f"{where}: 'outages' must be an array of tables ([[communication.outages]])")
    outages = []
    for n, o in enumerate(outages_raw):
        w = f"{where} outages[{n}]"
        o = check_keys(o, _OUTAGE_KEYS, w)
        if ("signals" in o) == ("share" in o):
            raise ScenarioError(f"{w}: give exactly one of 'signals' (a list of ids) or 'share'")
        outages.append(OutageSpec(
            start_s=number(o, "start_s", w, label="'start_s'", lo=0.0),
            duration_s=number(o, "duration_s", w, label="'duration_s'", lo=0.0, lo_open=True),
            signals=_signal_list(o["signals"], w, "signals") if "signals" in o else (),
            share=number(o, "share", w, label="'share'", lo=0.0, lo_open=True, hi=1.0) if "share" in o else None,
        ))
    return CommunicationSpec(
        networked=networked,
        fallback=str(fallback),
        seed=seed,
        outages=tuple(outages),
        failure_rate_per_h=number(raw, "failure_rate_per_h", where, label="'failure_rate_per_h'", default=0.0, lo=0.0),
        mean_repair_s=number(raw, "mean_repair_s", where, label="'mean_repair_s'", default=300.0, lo=0.0, lo_open=True),
    )


def _draw(ids: Sequence[str], share: float, rng: np.random.Generator) -> list[str]:
    """``round(share · n)`` of ``ids`` (at least one for a positive share), drawn with ``rng``."""
    n = len(ids)
    k = min(n, max(1 if share > 0 else 0, int(round(share * n))))
    if not k:
        return []
    return sorted(ids[int(i)] for i in rng.choice(n, size=k, replace=False))


@dataclass
class LinkSchedule:
    """Per-signal link state over a run: networked signals and their down intervals (s)."""

    signals: tuple[str, ...]
    networked: frozenset[str]
    down: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        spec: CommunicationSpec | None,
        signals: Sequence[str],
        *,
        begin_s: float,
        end_s: float,
        seed: int,
        where: str = "[communication]",
    ) -> LinkSchedule:
        """Draw the run's networked set and outages (reproducible for a given seed)."""
        ids = tuple(sorted(signals))
        if spec is None:
            return cls(ids, frozenset(ids))
        rng = np.random.default_rng(spec.seed if spec.seed is not None else seed)
        if spec.networked == "all":
            networked = list(ids)
        elif isinstance(spec.networked, tuple):
            unknown = sorted(set(spec.networked) - set(ids))
            if unknown:
                raise ScenarioError(f"{where}: 'networked' names signals the network does not have: "
                                    f"{unknown[:10]}; signals: {list(ids)[:20]}")
            networked = sorted(spec.networked)
        else:
            networked = _draw(ids, float(spec.networked), rng)
        down: dict[str, list[tuple[float, float]]] = {s: [] for s in networked}
        for n, o in enumerate(spec.outages):
            if o.signals:
                unknown = sorted(set(o.signals) - set(ids))
                if unknown:
                    raise ScenarioError(f"{where}: outages[{n}] names signals the network does not have: "
                                        f"{unknown[:10]}")
                hit = [s for s in o.signals if s in down]
            else:
                hit = _draw(networked, float(o.share or 0.0), rng)
            for s in hit:
                down[s].append((o.start_s, o.start_s + o.duration_s))
        if spec.failure_rate_per_h > 0:
            rate = spec.failure_rate_per_h / 3600.0
            for s in networked:
                t = begin_s + rng.exponential(1.0 / rate)
                while t < end_s:
                    d = rng.exponential(spec.mean_repair_s)
                    down[s].append((t, t + d))
                    t += d + rng.exponential(1.0 / rate)
        for s in down:
            down[s] = _merge(down[s])
        return cls(ids, frozenset(networked), down)

    def stable_interval(self, t: float) -> tuple[float, float]:
        """``[since, until)`` around ``t`` in which no link changes state."""
        since, until = -math.inf, math.inf
        for iv in self.down.values():
            for a, b in iv:
                for edge in (a, b):
                    if edge <= t:
                        since = max(since, edge)
                    else:
                        until = min(until, edge)
        return since, until

    def link_up(self, signal: str, t: float) -> bool:
        """True when ``signal`` is networked and its link works at time ``t``."""
        if signal not in self.networked:
            return False
        return not any(a <= t < b for a, b in self.down.get(signal, ()))


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


# ------------------------------------------------------------------------------------------
# timing a signal's green phases from the centre


def stage_green_times(
    greens: Sequence[float],
    min_greens: Sequence[float],
    *,
    error_s: float,
    cycle_s: float,
    max_extend_share: float = 0.25,
) -> np.ndarray:
    """The greens (s) of one cycle that move the cycle start ``error_s`` seconds later/earlier.

    ``error_s`` > 0: this cycle started late by that much, so the cycle is shortened (greens
    cut pro rata to their slack above the minimum, never below it); ``error_s`` < 0: it started
    early and the cycle is lengthened (greens extended pro rata, at most ``max_extend_share``
    of the cycle). When shortening cannot close a late start within two cycles but lengthening
    the cycle by the rest (``cycle − error``) can, the signal lengthens instead: whichever way is
    shorter, as field controllers' "shortest way" offset transition does. The correction applied
    in one cycle is limited; the rest follows in the next cycles.
    """
    g = np.asarray(greens, dtype=np.float64)
    mins = np.minimum(np.asarray(min_greens, dtype=np.float64), g)
    slack = g - mins
    max_short = float(slack.sum())
    max_long = max_extend_share * cycle_s
    e = float(error_s)
    if abs(e) < 0.5:
        return g.copy()
    if e > 0 and e > 2.0 * max_short and (cycle_s - e) <= 2.0 * max_long:
        e = e - cycle_s  # late by e = early by cycle − e: lengthen instead
    if e > 0:
        cut = min(e, max_short)
        return g - (slack * (cut / max_short) if max_short > 0 else 0.0)
    add = min(-e, max_long)
    return g + g * (add / g.sum())


@dataclass
class _SignalState:
    """What the driver knows about one centrally controlled signal."""

    central_program: str
    local_program: str
    stage_phase: tuple[int, ...]  # green phase index of each stage in the central program
    local_stage0_phase: int  # index of stage 0's green phase in the local program
    timing: SignalTiming
    mode: str = "central"  # "central" | "local" | "held" (last plan, no updates)
    pending: str | None = None  # the mode to switch to at the next stage-0 start
    last_phase: int = -1
    next_timing: SignalTiming | None = None
    stage: int = -1  # stage whose green is showing (-1: none, or already ended early)
    green_start_s: float = 0.0
    green_s: float = 0.0
    carry_s: float = 0.0  # green a stage gave up early, for the next stage
    gap_detectors: tuple[tuple[str, ...], ...] = ()
    greens: np.ndarray = field(default_factory=lambda: np.zeros(0))


class CentralDriver:
    """Runs centrally computed plans on SUMO programs, with local fallback per signal.

    Every signal in ``plan`` must have a program ``central_program`` loaded (its phases:
    stage greens in plan order, each followed by the program's own intergreen phases — what
    :func:`greenwave.controllers.plans.sumo_writer.write_sumo_additional` writes) and the local program
    ``local_program[sid]`` (same phase states, possibly rotated or actuated). With
    ``hold_last_plan`` a signal that loses its link keeps running its last plan instead
    (mode ``"held"``: same program, no new plans until the link returns).

    With ``gap_detectors`` (per signal, per stage: detector ids on the lanes the stage serves)
    the plan's greens are maximum greens, as in actuated-coordinated field control: once a
    stage has shown its minimum green and no vehicle has crossed any of its detectors for
    ``max_gap_s``, its green ends early and the time left is carried to the next stage (the
    last stage's to the next cycle's stage 0), so cycle and offsets stay as planned. Stage 0,
    the coordinated stage, holds its green to the force-off unless ``gap_out_first_stage``;
    a signal with one stage never ends it early.

    Call :meth:`start` once after SUMO started and :meth:`step` after every step with which
    signals currently have a working link; :meth:`set_plan` installs a new plan (it takes
    effect at each signal's next cycle start).
    """

    def __init__(
        self,
        network: RoadNetwork,
        plan: TimingPlan,
        *,
        central_program: str,
        local_program: Mapping[str, str],
        max_extend_share: float = 0.25,
        hold_last_plan: bool = False,
        gap_detectors: Mapping[str, Sequence[Sequence[str]]] | None = None,
        max_gap_s: float = 3.0,
        gap_out_first_stage: bool = False,
    ) -> None:
        self.network = network
        self.plan = plan
        self.central_program = central_program
        self.local_program = dict(local_program)
        self.max_extend_share = max_extend_share
        self.hold_last_plan = hold_last_plan
        self.gap_detectors = {k: tuple(tuple(d) for d in v) for k, v in (gap_detectors or {}).items()}
        self.max_gap_s = max_gap_s
        self.gap_out_first_stage = gap_out_first_stage
        self.gap_outs = 0
        self.state: dict[str, _SignalState] = {}
        self.switches = 0

    # -- set-up ------------------------------------------------------------------------------
    def start(self, sim: SumoSession, link_up: Mapping[str, bool]) -> None:
        """Read the loaded programs, put every signal in its mode and on its plan's offset."""
        from traci import constants as tc

        conn = sim.conn
        t = sim.time_s
        for sid, timing in self.plan.signals.items():
            logics = {lg.programID: lg for lg in conn.trafficlight.getAllProgramLogics(sid)}
            local = self.local_program[sid]
            for pid in (self.central_program, local):
                if pid not in logics:
                    raise SimulationError(
                        f"signal {sid!r}: program {pid!r} is not loaded in SUMO "
                        f"(loaded: {sorted(logics)})"
                    )
            central_states = [p.state for p in logics[self.central_program].phases]
            base = self.network.signals[sid].programs[timing.program_id]
            wanted = [base.phases[st.phase_index].state for st in timing.stages]
            stage_phase = _find_in_order(central_states, wanted, sid, self.central_program)
            local_states = [p.state for p in logics[local].phases]
            if wanted[0] not in local_states:
                raise SimulationError(
                    f"signal {sid!r}: local program {local!r} has no phase with stage 0's state "
                    f"{wanted[0]!r}; it cannot take over from the central plan safely"
                )
            st = _SignalState(
                central_program=self.central_program,
                local_program=local,
                stage_phase=tuple(stage_phase),
                local_stage0_phase=local_states.index(wanted[0]),
                timing=timing,
                greens=np.array([s.green_s for s in timing.stages]),
                gap_detectors=self.gap_detectors.get(sid, ()),
            )
            self.state[sid] = st
            if link_up.get(sid, False) or self.hold_last_plan:
                conn.trafficlight.setProgram(sid, self.central_program)
                self._jump_to_offset(sim, sid, st, logics[self.central_program], t)
                st.mode = "central" if link_up.get(sid, False) else "held"
            else:
                conn.trafficlight.setProgram(sid, local)
                st.mode = "local"
            st.last_phase = int(conn.trafficlight.getPhase(sid))
            conn.trafficlight.subscribe(sid, [tc.TL_CURRENT_PHASE, tc.TL_CURRENT_PROGRAM])

    def _jump_to_offset(self, sim: SumoSession, sid: str, st: _SignalState, logic: Any, t: float) -> None:
        """At the start of the run only: put the signal where its plan's offset says it is."""
        phases = [float(p.duration) for p in logic.phases]
        cycle = sum(phases)
        tau = (t - st.timing.offset_s) % cycle  # time since stage 0's green began
        j = st.stage_phase[0]
        n = len(phases)
        while tau >= phases[j]:
            tau -= phases[j]
            j = (j + 1) % n
        sim.conn.trafficlight.setPhase(sid, j)
        sim.conn.trafficlight.setPhaseDuration(sid, phases[j] - tau)

    # -- running -----------------------------------------------------------------------------
    def set_plan(self, plan: TimingPlan) -> None:
        """Use ``plan`` from each signal's next cycle start (same signals and stages)."""
        for sid, timing in plan.signals.items():
            st = self.state.get(sid)
            if st is None:
                raise SimulationError(f"new plan names signal {sid!r}, which the driver does not run")
            if len(timing.stages) != len(st.timing.stages):
                raise SimulationError(f"signal {sid!r}: new plan has {len(timing.stages)} stages, "
                                      f"the running one {len(st.timing.stages)}")
            if st.mode != "held":
                st.timing = timing
            else:
                st.next_timing = timing  # taken up when the link returns
        self.plan = plan

    def central_signals(self) -> list[str]:
        """Signals running the central plan right now."""
        return [sid for sid, st in self.state.items() if st.mode == "central"]

    def step(self, sim: SumoSession, link_up: Mapping[str, bool]) -> None:
        """Time the green that just started; switch modes at stage-0 starts when links changed."""
        from traci import constants as tc

        conn = sim.conn
        t = sim.time_s
        results = conn.trafficlight.getAllSubscriptionResults()
        for sid, st in self.state.items():
            res = results.get(sid)
            if res is None:
                continue
            phase = int(res[tc.TL_CURRENT_PHASE])
            if self.hold_last_plan:  # same program either way: change mode at once
                up = link_up.get(sid, False)
                if up and st.mode == "held":
                    st.mode = "central"
                    if st.next_timing is not None:
                        st.timing, st.next_timing = st.next_timing, None
                elif not up and st.mode == "central":
                    st.mode = "held"
                    self.switches += 1
                st.pending = None
            else:
                want = "central" if link_up.get(sid, False) else "local"
                st.pending = want if want != st.mode else None
            if phase == st.last_phase:
                if st.stage >= 0 and st.gap_detectors and st.mode in ("central", "held"):
                    self._gap_out(conn, sid, st, t)
                continue
            st.last_phase = phase
            st.stage = -1
            if st.mode in ("central", "held"):
                if phase == st.stage_phase[0]:
                    if st.pending == "local":
                        conn.trafficlight.setProgram(sid, st.local_program)
                        conn.trafficlight.setPhase(sid, st.local_stage0_phase)
                        # an actuated local program starts its phase afresh and may end it at
                        # once (RiLSA example 1: a 2 s green); the green keeps its minimum
                        min_g = float(st.timing.stages[0].min_green_s)
                        if conn.trafficlight.getNextSwitch(sid) - t < min_g - 1e-6:
                            conn.trafficlight.setPhaseDuration(sid, min_g)
                        st.mode, st.pending = "local", None
                        st.last_phase = st.local_stage0_phase
                        self.switches += 1
                        continue
                    self._new_cycle(st, t)
                if phase in st.stage_phase:
                    k = st.stage_phase.index(phase)
                    st.stage, st.green_start_s = k, t
                    st.green_s = float(st.greens[k]) + (st.carry_s if k > 0 else 0.0)
                    st.carry_s = 0.0
                    conn.trafficlight.setPhaseDuration(sid, st.green_s)
            elif phase == st.local_stage0_phase and st.pending == "central":
                conn.trafficlight.setProgram(sid, st.central_program)
                conn.trafficlight.setPhase(sid, st.stage_phase[0])
                st.mode, st.pending = "central", None
                st.last_phase = st.stage_phase[0]
                self.switches += 1
                self._new_cycle(st, t)
                st.stage, st.green_start_s, st.green_s, st.carry_s = 0, t, float(st.greens[0]), 0.0
                conn.trafficlight.setPhaseDuration(sid, st.green_s)

    def _gap_out(self, conn: Any, sid: str, st: _SignalState, t: float) -> None:
        """End stage ``st.stage``'s green early when its detectors show a gap (see class doc).

        Only this stage's detectors are read, and only once its minimum green is over (polled:
        a libsumo subscription would be evaluated at every step for every detector)."""
        k = st.stage
        if len(st.stage_phase) < 2:  # a one-stage signal: a gap-out serves no other stage, it only
            return  # brings its red back sooner (RiLSA 1's approach signals: 6 s greens, 39 s reds)
        if k == 0 and not self.gap_out_first_stage:
            return
        elapsed = t - st.green_start_s
        left = st.green_s - elapsed
        if elapsed < st.timing.stages[k].min_green_s or left < 1.0:
            return
        ids = st.gap_detectors[k] if k < len(st.gap_detectors) else ()
        if not ids:
            return
        since = conn.inductionloop.getTimeSinceDetection
        for det in ids:
            if since(det) < self.max_gap_s:
                return
        conn.trafficlight.setPhaseDuration(sid, 0.0)
        st.carry_s = left if k + 1 < len(st.stage_phase) else 0.0
        st.stage = -1
        self.gap_outs += 1

    def _new_cycle(self, st: _SignalState, t: float) -> None:
        """Greens of the cycle starting at ``t``: the plan's, corrected towards its offset."""
        timing = st.timing
        c = timing.cycle_s
        err = ((t - timing.offset_s + c / 2.0) % c) - c / 2.0
        st.greens = stage_green_times(
            [s.green_s for s in timing.stages],
            [s.min_green_s for s in timing.stages],
            error_s=err,
            cycle_s=c,
            max_extend_share=self.max_extend_share,
        )


def _find_in_order(states: Sequence[str], wanted: Sequence[str], sid: str, pid: str) -> list[int]:
    out, j = [], 0
    for w in wanted:
        while j < len(states) and states[j] != w:
            j += 1
        if j == len(states):
            raise SimulationError(
                f"signal {sid!r}: program {pid!r} lacks the stage green state {w!r} in plan order"
            )
        out.append(j)
        j += 1
    return out


def write_rate_series(times: Sequence[float], rates: Sequence[float], path: Path) -> Path:
    """The coordinated control rate over time as CSV (``time_s, coordinated_control_rate``)."""
    lines = ["time_s,coordinated_control_rate"]
    lines += [f"{t:g},{r:.6f}" for t, r in zip(times, rates, strict=True)]
    write_text_atomic("\n".join(lines) + "\n", path)
    return path
