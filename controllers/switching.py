"""Safe stage switching: drive signals between the green stages of their own programs.

A *stage* is a green phase of a signal's program (some ``G``/``g``, no ``y``/``Y``/``u``).
:class:`StageSwitcher` lets a controller say "go to stage X next and hold its green at least
N s"; it guarantees, for every signal it drives:

* every link that loses its green shows yellow first (``y`` for the program's yellow time, at
  least :data:`MIN_YELLOW_S`, the standards' 3 s: a program with a shorter yellow, like the
  hand-switched programs of SUMO's game with 1 s, does not lower it) and then the program's
  all-red, before any other link turns green;
* no green ends before the stage's minimum green (the program's ``minDur``, otherwise
  ``min(default_min_green_s, phase duration)``);
* no state it shows has two conflicting priority greens (``G``–``G`` of links that are foes in
  SUMO's conflict matrix; merges into the same lane excepted, as in
  :mod:`greenwave.controllers.plans.safety`).

A signal whose running program is not the switcher's (one loaded by an additional file) is
attached when it shows one of the stages, or taken over from any green it shows (held for the
stage's minimum green, then switched); at the run's start a signal showing all-red is attached
at once (when no vehicle is in the network yet), so a foreign program's first green never
shows, and a foreign green with conflicting
priority greens is switched away from without being held.

Between a stage and the next one *in program order* it shows the program's own intergreen
phases (when they pass the same checks); between any other pair it derives the intergreen from
the two states: links ending their green show ``y`` for the program's yellow time, then every
link that is not green in both stages shows ``r`` for the program's all-red time (and ``u``
for its red-yellow time, where the program has one). A link green in both keeps its green,
unless a vehicle link ending gives way to it: then it ends and starts again too, after the
ending link's clearance (:func:`trap_free_transition`; no yellow trap). A take-over from a
foreign green follows the same rule, with the longest all-red of the signal's switches.

States are sent with ``trafficlight.setRedYellowGreenState`` only when they change (one TraCI
call per signal change, none per step); signal phases are read from a subscription. Per-step
work is vectorised over all driven signals: only signals with a due event are touched.

Reuse (e.g. adaptive / coordinated controllers)::

    sw = StageSwitcher(network, ["A0", "B0"])
    sw.start(sim)                 # after SUMO started; attaches at each signal's next green stage
    each step:
        sw.step(sim)              # advances yellow/all-red timers, applies due requests
        sw.request(i, stage, hold_s=20.0)   # i: row in sw.signals; honoured once min green is over
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from greenwave.errors import NetworkError, SimulationError
from greenwave.networks.compile import MIN_YELLOW_S  # the standards' 3 s: the shortest yellow shown
from greenwave.networks.intergreens import intergreens, merge_pairs
from greenwave.networks.signal_states import (
    GREEN,
    GREEN_OR_TRANSITION,
    PRIORITY_GREEN,
    RED,
    RED_YELLOW,
    TRANSITION,
    YELLOW,
)
from greenwave.networks.stage_record import derived_transition, design_transition, stays_green_over, trap_pairs

if TYPE_CHECKING:
    from greenwave.engine.session import SumoSession
    from greenwave.networks.model import Program, RoadNetwork, Signal

__all__ = [
    "DEFAULT_MAX_GREEN_S",
    "DEFAULT_MIN_GREEN_S",
    "DEFAULT_YELLOW_S",
    "MIN_YELLOW_S",
    "SignalStages",
    "StageSwitcher",
    "derived_transition",
    "trap_free_transition",
    "is_all_red",
    "is_stage_state",
    "signal_stages",
    "state_conflicts",
]

DEFAULT_MIN_GREEN_S = 5.0
DEFAULT_MAX_GREEN_S = 60.0
DEFAULT_YELLOW_S = 3.0


def is_stage_state(state: str) -> bool:
    """True for a green stage: some ``G``/``g`` and no yellow or red-yellow character."""
    return any(c in GREEN for c in state) and not any(c in TRANSITION for c in state)


def is_all_red(state: str) -> bool:
    """No link shows green, yellow or red-yellow (an all-red phase)."""
    return not any(c in GREEN_OR_TRANSITION for c in state)


def _strict_conflicts(signal: Signal) -> np.ndarray:
    return signal.conflicts & ~merge_pairs(signal)


def state_conflicts(signal: Signal, state: str, *, strict: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of conflicting links that both show ``G`` in ``state``."""
    m = _strict_conflicts(signal) if strict is None else strict
    n = min(len(state), m.shape[0])
    g = np.fromiter((c == PRIORITY_GREEN for c in state[:n]), dtype=bool, count=n)
    if g.sum() < 2:
        return []
    sub = m[:n, :n] & g[:, None] & g[None, :]
    ii, jj = np.nonzero(np.triu(sub))
    return [(int(i), int(j)) for i, j in zip(ii, jj, strict=True)]


def _sequence_ok(signal: Signal, seq: Sequence[str], strict: np.ndarray, pedestrian: np.ndarray) -> bool:
    """Every state free of G–G conflicts; every vehicle link leaving green passes through yellow."""
    for s in seq:
        if state_conflicts(signal, s, strict=strict):
            return False
    for a, b in zip(seq[:-1], seq[1:], strict=True):
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            if x in GREEN and y in RED and not pedestrian[k]:
                return False
    return True


def trap_free_transition(
    signal: Signal,
    from_state: str,
    to_state: str,
    *,
    yellow_s: float,
    all_red_s: float,
    red_yellow_s: float = 0.0,
    longest_all_red_s: float = 0.0,
    net_file: str | os.PathLike[str] | None = None,
) -> list[tuple[str, float]]:
    """:func:`derived_transition` (links green in both states keep their green), except where a
    vehicle link ending its green gives way to a vehicle link green in both (SUMO's response
    bits, or a wait inside a joined junction: :func:`stays_green_over`; unknown without the
    bits): its vehicles may wait inside the junction for that link, so it ends too and starts
    again after their clearance (no yellow trap, as in the generated designs' intergreens; a
    crossing the ending turners give way to ends with it, as there). That all-red is
    ``all_red_s`` or, where longer, the one
    :func:`~greenwave.networks.intergreens.intergreens` derives from the junction's geometry in
    ``net_file``; without it, or where it cannot be read, ``longest_all_red_s``, at least 1 s."""
    if signal.yields is not None and len(from_state) == len(to_state):
        keep = stays_green_over(signal)
        if trap_pairs(from_state, to_state, keep, frozenset(signal.pedestrian_links)):
            red = max(all_red_s, longest_all_red_s, 1.0)  # without the geometry
            if net_file is not None:
                try:
                    red = max(all_red_s, intergreens(signal, (from_state, to_state), Path(net_file))[1][0][1])
                except NetworkError:
                    pass  # net file missing or its geometry unreadable: not a reason to call the program unsafe
            return design_transition(from_state, to_state, yellow_s=yellow_s, all_red_s=red, keep_through=keep,
                                     red_yellow_s=red_yellow_s)
    return derived_transition(from_state, to_state, yellow_s=yellow_s, all_red_s=all_red_s,
                              red_yellow_s=red_yellow_s)


def _link_yellows(seq: Sequence[tuple[str, float]]) -> list[float]:
    """How long each link that shows yellow in the intergreen ``seq`` shows it, s."""
    shown: dict[int, float] = {}
    for state, duration in seq:
        for k, c in enumerate(state):
            if c in YELLOW:
                shown[k] = shown.get(k, 0.0) + duration
    return list(shown.values())


@dataclass(frozen=True)
class SignalStages:
    """The stages of one signal's program and the safe intergreens between every pair.

    Times in s. ``transitions[(i, j)]`` is the list of (state, duration) shown between the
    green of stage ``i`` and the green of stage ``j``.
    """

    signal: str
    program_id: str
    states: tuple[str, ...]
    phase_index: tuple[int, ...]
    program_green_s: np.ndarray
    min_green_s: np.ndarray
    max_green_s: np.ndarray
    transitions: dict[tuple[int, int], tuple[tuple[str, float], ...]] = field(repr=False)
    cycle_s: float = 0.0

    @property
    def n_stages(self) -> int:
        """Number of green stages."""
        return len(self.states)

    def next_stage(self, k: int) -> int:
        """The stage after ``k`` in program order."""
        return (k + 1) % self.n_stages

    def lost_time_s(self, i: int, j: int) -> float:
        """Duration of the intergreen from stage ``i`` to stage ``j``, s."""
        return float(sum(d for _, d in self.transitions[(i, j)]))


def stage_min_green(phase_min_dur: float | None, duration: float, default_s: float) -> float:
    """Minimum green of a stage: the program's ``minDur``, else ``min(default_s, duration)``."""
    if phase_min_dur is not None and phase_min_dur > 0:
        return float(phase_min_dur)
    return float(min(default_s, duration)) if duration > 0 else float(default_s)


def unsafe_own_programs(network: RoadNetwork) -> dict[str, str]:
    """Signals whose active program shows conflicting priority greens in a green stage, with
    why: no timing of those stages is safe, so controllers leave them on their own program (a
    city's plan may give ``G`` to links SUMO marks as foes, e.g. Braunschweig's signal 38)."""
    out: dict[str, str] = {}
    for sid, sig in network.signals.items():
        try:
            signal_stages(sig)
        except NetworkError as exc:
            out[sid] = str(exc)
    return out


def signal_stages(
    signal: Signal,
    program: Program | None = None,
    *,
    default_min_green_s: float = DEFAULT_MIN_GREEN_S,
    default_max_green_s: float = DEFAULT_MAX_GREEN_S,
    net_file: str | os.PathLike[str] | None = None,
) -> SignalStages | None:
    """The stages of ``program`` (default: the one SUMO runs, ``signal.default_program``) with
    safe intergreens.

    From a stage to the next the program's own intergreen runs (where it is safe); every other
    switch is derived from the two states with the program's yellow and all-red, links green in
    both keeping their green except where that would trap turners waiting for one of them
    (:func:`trap_free_transition`, with the junction's geometry from ``net_file``).

    Returns ``None`` when the program has no green stage (rail or switched-off signals).

    Raises
    ------
    NetworkError
        A stage state itself shows conflicting priority greens, so no safe switching exists.
    """
    prog = program if program is not None else signal.default_program
    if prog is None:
        return None
    phases = prog.phases
    idx = [k for k, ph in enumerate(phases) if is_stage_state(ph.state)]
    if not idx:
        return None
    strict = _strict_conflicts(signal)
    n_links = signal.n_links
    pedestrian = np.zeros(max(n_links, max(len(p.state) for p in phases)), dtype=bool)
    for k in signal.pedestrian_links:
        pedestrian[k] = True
    states = tuple(phases[k].state for k in idx)
    for k, s in zip(idx, states, strict=True):
        bad = state_conflicts(signal, s, strict=strict)
        if bad:
            raise NetworkError(
                f"signal {signal.id!r} program {prog.id!r} phase {k} state {s!r} shows conflicting "
                f"priority greens on links {bad[:3]}; it cannot be driven safely"
            )
    # the program's own intergreens, and its yellow / all-red / red-yellow times
    inter: list[list[tuple[str, float]]] = []
    yellow_after, red_after, ry_after = [], [], []
    for s_i, k in enumerate(idx):
        nxt = idx[(s_i + 1) % len(idx)]
        j = (k + 1) % len(phases)
        seq = []
        while j != nxt:
            if phases[j].duration > 0:  # SUMO skips zero-length phases: check what it shows
                seq.append((phases[j].state, float(phases[j].duration)))
            j = (j + 1) % len(phases)
        inter.append(seq)
        yellow_after.append(sum(d for s, d in seq if any(c in YELLOW for c in s)))
        red_after.append(sum(d for s, d in seq if is_all_red(s)))
        ry_after.append(sum(d for s, d in seq if RED_YELLOW in s and not any(c in YELLOW for c in s)))
    yellows = [y for y in yellow_after if y > 0]
    reds = [r for r in red_after if r > 0]
    rys = [r for r in ry_after if r > 0]
    max_red = max(reds, default=0.0)
    max_ry = max(rys, default=0.0)
    transitions: dict[tuple[int, int], tuple[tuple[str, float], ...]] = {}
    n = len(idx)
    for i in range(n):
        y_i = max(yellow_after[i] if yellow_after[i] > 0 else max(yellows, default=DEFAULT_YELLOW_S), MIN_YELLOW_S)
        r_i = red_after[i] if red_after[i] > 0 else max_red
        own_yellow_ok = min(_link_yellows(inter[i]), default=MIN_YELLOW_S) >= MIN_YELLOW_S - 1e-9
        for j in range(n):
            if i == j:
                continue
            if j == (i + 1) % n and inter[i] and own_yellow_ok:
                own = [states[i], *(s for s, _ in inter[i]), states[j]]
                if all(len(s) == len(states[i]) for s in own) and _sequence_ok(signal, own, strict, pedestrian):
                    transitions[(i, j)] = tuple(inter[i])
                    continue
            transitions[(i, j)] = tuple(trap_free_transition(
                signal, states[i], states[j], yellow_s=y_i, all_red_s=r_i, red_yellow_s=max_ry,
                longest_all_red_s=max_red, net_file=net_file))
    dur = np.array([float(phases[k].duration) for k in idx])
    mins = np.array([stage_min_green(phases[k].min_dur, phases[k].duration, default_min_green_s) for k in idx])
    maxs = np.array([
        float(mx) if (mx := phases[k].max_dur) is not None and mx > 0
        else max(default_max_green_s, float(phases[k].duration))
        for k in idx
    ])
    maxs = np.maximum(maxs, mins)
    return SignalStages(
        signal=signal.id,
        program_id=prog.id,
        states=states,
        phase_index=tuple(idx),
        program_green_s=dur,
        min_green_s=mins,
        max_green_s=maxs,
        transitions=transitions,
        cycle_s=prog.cycle,
    )


class StageSwitcher:
    """Drives signals between their program's green stages with safe intergreens.

    Parameters
    ----------
    network
        The run's road network (signals, programs, conflicts).
    signal_ids
        Signals to drive; default: every signal whose default program has a green stage.
    program_ids
        Program per signal whose stages are used (default: the signal's first program).
    default_min_green_s
        Minimum green (s) of stages whose phase has no ``minDur``, capped at the phase duration.
    default_max_green_s
        Maximum green (s) of stages whose phase has no ``maxDur`` (at least the phase duration).
    stages
        Stages to use for some signals instead of their program's (e.g. a stage design with its
        intergreen for every pair of stages, :func:`greenwave.controllers.stage_choice.design_signal_stages`).

    Attributes
    ----------
    signals : tuple[str, ...]
        Driven signal ids; row ``i`` of every array below.
    stages : list[SignalStages]
        Stages of each driven signal.
    stage : numpy.ndarray
        Green stage currently shown (-1: in an intergreen, or not yet attached).
    green_start_s : numpy.ndarray
        Simulation time when the current green began, s.
    attached : numpy.ndarray
        True once the switcher has taken a signal over (at its first green stage).
    excluded : dict[str, str]
        Signals not driven because their own program's stages show conflicting greens (e.g.
        Ingolstadt's ``gneJ21``): they keep running that program, untouched.
    """

    def __init__(
        self,
        network: RoadNetwork,
        signal_ids: Sequence[str] | None = None,
        *,
        program_ids: Mapping[str, str] | None = None,
        default_min_green_s: float = DEFAULT_MIN_GREEN_S,
        default_max_green_s: float = DEFAULT_MAX_GREEN_S,
        stages: Mapping[str, SignalStages] | None = None,
    ) -> None:
        if not (math.isfinite(default_min_green_s) and default_min_green_s > 0):
            raise SimulationError(f"default_min_green_s must be > 0, got {default_min_green_s!r}")
        ids = sorted(network.signals) if signal_ids is None else list(signal_ids)
        self.network = network
        #: signals left alone because a stage of their program shows conflicting greens, with why
        self.excluded: dict[str, str] = {}
        sigs: list[str] = []
        kept: list[SignalStages] = []  # the stages of each signal in sigs (``stages`` are the given ones)
        for sid in ids:
            sig = network.signals.get(sid)
            if sig is None:
                raise SimulationError(f"signal {sid!r} is not in the network {network.path}")
            prog = None
            if program_ids and sid in program_ids:
                prog = sig.programs.get(program_ids[sid])
                if prog is None:
                    raise SimulationError(f"signal {sid!r} has no program {program_ids[sid]!r}")
            try:
                st = stages[sid] if stages and sid in stages else signal_stages(
                    sig, prog, default_min_green_s=default_min_green_s, default_max_green_s=default_max_green_s,
                    net_file=network.path)
            except NetworkError as exc:  # its own stages are unsafe: it keeps its own program
                self.excluded[sid] = str(exc)
                continue
            if st is not None and sig.vehicle_links:
                sigs.append(sid)
                kept.append(st)
        self.signals: tuple[str, ...] = tuple(sigs)
        self.stages = kept
        n = len(sigs)
        self.stage = np.full(n, -1, dtype=np.int64)
        self.target = np.full(n, -1, dtype=np.int64)
        self.pending = np.full(n, -1, dtype=np.int64)
        self.pending_hold_s = np.zeros(n)
        self.hold_s = np.zeros(n)
        self.green_start_s = np.zeros(n)
        self.next_change_s = np.full(n, np.inf)
        self.attached = np.zeros(n, dtype=bool)
        self.min_green_s = np.zeros(n)  # of the current green
        self._seq: list[list[tuple[str, float]]] = [[] for _ in range(n)]
        self.changes = 0
        self._conn: Any = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, sim: SumoSession) -> None:
        """Signals attach at their program's next green stage (or take over a foreign green); a
        foreign program that shows red on every link when the run starts, with no vehicle in the
        network yet, hands over at once (no green came before it, so nothing needs clearing):
        greenwave's first stage shows from the start, never a foreign green greenwave's checks
        may reject (RiLSA 1 with signals on its legs: its scenario program's first green gives a
        right turn and the crossing it passes both ``G``)."""
        self._conn = sim.conn
        self._attach(sim.time_s, at_start=True)

    def _attach(self, t: float, *, at_start: bool = False) -> None:
        # read by getters, not subscriptions: libsumo would evaluate a subscription at every step
        # of the run, while a signal is only read here until it attaches (within one cycle)
        tl = self._conn.trafficlight
        # at the start, before any vehicle (a state loaded with SUMO's load-state may be the
        # clearance after a green): a foreign all-red hands over at once
        fresh = at_start and self._conn.vehicle.getIDCount() == 0
        for i in np.flatnonzero(~self.attached).tolist():
            sid = self.signals[i]
            st = self.stages[i]
            if tl.getProgram(sid) != st.program_id:
                # another program runs (e.g. one loaded by an additional file): attach when its
                # shown state is one of our stages, or take over from any green of it
                state = tl.getRedYellowGreenState(sid)
                k = st.states.index(state) if state in st.states else -1
                if k < 0 and fresh and len(state) == len(st.states[0]) and all(c in RED for c in state):
                    k = 0  # red on every link (r/s: not a signal switched off)
                if k < 0 and is_stage_state(state) and len(state) == len(st.states[0]):
                    self._take_over(i, state, t)
                    continue
            else:
                phase = int(tl.getPhase(sid))
                k = st.phase_index.index(phase) if phase in st.phase_index else -1
            if k < 0:
                continue
            self.attached[i] = True
            self._show_green(i, k, t)
            self._conn.trafficlight.setRedYellowGreenState(sid, st.states[k])
            self.changes += 1

    def _take_over(self, i: int, state: str, t: float) -> None:
        """Attach signal row ``i`` while another program shows the green ``state``: hold it for
        the closest stage's minimum green (its start is unknown), then yellow and all-red derived
        from the two states, then that stage."""
        st = self.stages[i]
        green = np.array([[c in GREEN for c in s] for s in st.states])
        mine = np.array([c in GREEN for c in state])
        k = int(np.argmax((green & mine).sum(axis=1) - (green & ~mine).sum(axis=1)))
        yellows = [d for seq in st.transitions.values() for s, d in seq if any(c in YELLOW for c in s)]
        # the clearance after the yellow (an overlap may keep a link green through it)
        reds = [d for seq in st.transitions.values() for s, d in seq if not any(c in TRANSITION for c in s)]
        sig = self.network.signals[self.signals[i]]
        # the longest all-red of its switches (those that end a link a turner waits for included)
        seq = trap_free_transition(sig, state, st.states[k], yellow_s=max(*yellows, DEFAULT_YELLOW_S, MIN_YELLOW_S),
                                   all_red_s=max(reds, default=0.0), longest_all_red_s=max(reds, default=0.0),
                                   net_file=self.network.path)
        self.attached[i] = True
        self.stage[i] = -1
        self.target[i] = k
        self._seq[i] = list(seq)
        # the green is set now, as it shows: the foreign program must not move on to its own
        # yellow before the hold starts (a later green over that yellow would be y -> G)
        self._conn.trafficlight.setRedYellowGreenState(self.signals[i], state)
        self.changes += 1
        # a foreign green with conflicting priority greens is not held for a minimum green
        unsafe = bool(state_conflicts(sig, state))
        self.next_change_s[i] = t if unsafe else t + float(st.min_green_s[k])

    def _show_green(self, i: int, k: int, t: float) -> None:
        self.stage[i] = k
        self.target[i] = -1
        self.green_start_s[i] = t
        self.min_green_s[i] = max(float(self.stages[i].min_green_s[k]), float(self.hold_s[i]))
        self.hold_s[i] = 0.0
        self.next_change_s[i] = np.inf

    # -- requests ------------------------------------------------------------------------------
    def request(self, i: int, stage: int, *, hold_s: float = 0.0) -> None:
        """Ask signal row ``i`` to show ``stage`` next, holding its green at least ``hold_s``.

        A request for the stage already showing, or for the one the running intergreen leads to,
        only raises its hold (and drops a pending switch). The switch starts once the current green
        has run its minimum (and any hold asked for it); a later request replaces an earlier one
        that has not started yet.
        """
        n = self.stages[i].n_stages
        if not 0 <= stage < n:
            raise SimulationError(f"signal {self.signals[i]!r} has stages 0..{n - 1}, not {stage}")
        if stage == self.stage[i]:  # replaces any pending switch: the green stays
            self.pending[i] = -1
            self.min_green_s[i] = max(self.min_green_s[i], float(hold_s))
            return
        if self.stage[i] < 0 and stage == self.target[i]:  # the intergreen already heads there
            self.pending[i] = -1
            self.hold_s[i] = max(self.hold_s[i], float(hold_s))
            return
        self.pending[i] = stage
        self.pending_hold_s[i] = float(hold_s)

    def ready(self, t: float) -> np.ndarray:
        """Signals whose current green may end now (attached, in a stage, minimum green over)."""
        return (self.stage >= 0) & (t - self.green_start_s >= self.min_green_s - 1e-9)

    # -- stepping ------------------------------------------------------------------------------
    def step(self, sim: SumoSession) -> None:
        """Advance intergreens and start requested switches that are due (after each SUMO step)."""
        t = sim.time_s
        conn = sim.conn
        if not self.attached.all():
            self._attach(t)
        go = np.flatnonzero((self.pending >= 0) & self.ready(t))
        for i in go.tolist():
            k = int(self.pending[i])
            self.pending[i] = -1
            cur = int(self.stage[i])
            if k == cur:
                continue
            self.hold_s[i] = self.pending_hold_s[i]
            seq = list(self.stages[i].transitions[(cur, k)])
            self.stage[i] = -1
            self.target[i] = k
            self._seq[i] = seq
            self.next_change_s[i] = t  # start at once
        due = np.flatnonzero(self.next_change_s <= t + 1e-9)
        for i in due.tolist():
            seq = self._seq[i]
            st = self.stages[i]
            while seq and seq[0][1] <= 0:  # zero-length phases of the program are skipped
                seq.pop(0)
            if seq:
                state, dur = seq.pop(0)
                conn.trafficlight.setRedYellowGreenState(self.signals[i], state)
                self.next_change_s[i] = t + dur
            else:
                k = int(self.target[i])
                conn.trafficlight.setRedYellowGreenState(self.signals[i], st.states[k])
                self._show_green(i, k, t)
            self.changes += 1
