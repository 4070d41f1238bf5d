"""A whole-run transition safety monitor: what every signal actually showed, checked step by step.

:class:`TransitionMonitor` reads every signal's state string after each step of a run and
records every violation of these rules (times in s, links by SUMO link index):

``conflicting-greens``
    Two links that are foes in the signal's conflict matrix both show ``G`` (merges into the
    same lane excepted, as in :mod:`greenwave.controllers.plans.safety`).
``yellow``
    A vehicle link goes from ``G``/``g`` straight to ``r``/``s`` (no yellow), or its yellow
    lasts less than the required yellow: ``min(3 s, the shortest yellow the signal's program
    shows that link after a green)`` (a yellow shown over several phases counts whole), and
    at least ``min_yellow_s`` where a caller gives it (a test watching signals that greenwave
    drives: its switching never shows less than the standards' 3 s,
    :data:`~greenwave.networks.compile.MIN_YELLOW_S`; the add-on does not, since greenwave's
    controllers leave some signals on programs of the network's own, which may show less).
``min-green``
    A link's green ends before its minimum: the smallest minimum green of the program stages
    that show it green (``minDur``, else ``min(default_min_green_s, phase duration)``).
``all-red``
    A link turns green less than the required intergreen after a conflicting vehicle link's green
    ended: that link's required yellow + the program's all-red (the shortest all-red of its intergreens; 0
    when one of them has none).

Greens already showing when recording starts have no known start and are not checked for
minimum green. ``greenwave run --check-safety`` (``run_scenario(..., check_safety=True)``)
attaches a monitor to every run, whatever its controller, as the run add-on
:class:`TransitionSafetyAddon`: it writes ``transition_safety.json`` in the run folder and
``safety_violations`` and ``signal_changes`` into the summary row.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from greenwave.controllers.switching import (
    DEFAULT_MIN_GREEN_S,
    DEFAULT_YELLOW_S,
    is_all_red,
    is_stage_state,
    stage_min_green,
    state_conflicts,
)
from greenwave.engine.addons import AddonInputs, RunAddon
from greenwave.engine.results import write_text_atomic
from greenwave.networks.intergreens import merge_pairs, own_link_yellow
from greenwave.networks.signal_states import GREEN, RED, YELLOW

if TYPE_CHECKING:
    from greenwave.engine.run import RunSpec
    from greenwave.engine.session import SumoSession
    from greenwave.networks.model import RoadNetwork, Signal

__all__ = ["TransitionMonitor", "TransitionSafetyAddon", "TransitionViolation"]


@dataclass(frozen=True)
class TransitionViolation:
    """One broken rule: when (s), where, which rule and links, and what was seen."""

    time_s: float
    signal: str
    rule: str
    links: tuple[int, ...]
    detail: str


class _Rules:
    """Per-signal requirements derived from its (default) program and conflict matrix."""

    def __init__(self, sig: Signal, default_min_green_s: float, min_yellow_s: float | None = None) -> None:
        n = sig.n_links
        self.strict = sig.conflicts & ~merge_pairs(sig)
        self.pedestrian = np.zeros(n, dtype=bool)
        self.pedestrian[list(sig.pedestrian_links)] = True
        self.vehicle = np.zeros(n, dtype=bool)
        self.vehicle[list(sig.vehicle_links)] = True
        #: per link: its strict foes among the vehicle links (checked at each of its green starts)
        self.foes = [np.flatnonzero(self.strict[k] & self.vehicle) for k in range(n)]
        prog = sig.default_program
        self.min_green = np.full(n, default_min_green_s)
        reds: list[float] = []
        if prog is not None:
            mins = np.full(n, np.inf)
            phases = prog.phases
            for ph in phases:
                if is_stage_state(ph.state):
                    m = stage_min_green(ph.min_dur, ph.duration, default_min_green_s)
                    for k, c in enumerate(ph.state[:n]):
                        if c in GREEN:
                            mins[k] = min(mins[k], m)
            self.min_green = np.where(np.isfinite(mins), mins, default_min_green_s)
            # all-red of each intergreen (the phases between two stages)
            stage_idx = [k for k, ph in enumerate(phases) if is_stage_state(ph.state)]
            for a, k in enumerate(stage_idx):
                nxt = stage_idx[(a + 1) % len(stage_idx)]
                j, red = (k + 1) % len(phases), 0.0
                if j == nxt:
                    continue
                while j != nxt:
                    if is_all_red(phases[j].state):
                        red += float(phases[j].duration)
                    j = (j + 1) % len(phases)
                reds.append(red)
        own = own_link_yellow(prog, n, shortest=True)
        #: per link: the yellow it must show after a green
        self.yellow = np.array([min(DEFAULT_YELLOW_S, own.get(k, DEFAULT_YELLOW_S)) for k in range(n)])
        if min_yellow_s is not None:
            self.yellow = np.maximum(self.yellow, float(min_yellow_s))
        self.all_red = min(reds, default=0.0)


class TransitionMonitor:
    """Records what every signal shows, step by step, and checks the transition rules.

    Parameters
    ----------
    network
        The run's network (programs and conflict matrices).
    signal_ids
        Signals to watch; default every signal with vehicle links.
    default_min_green_s
        Minimum green (s) of stages whose phase has no ``minDur`` (capped at the phase duration).
    min_yellow_s
        The shortest yellow any link may show (s), whatever its program shows; ``None``: the
        program's own, up to 3 s.

    Call :meth:`start` after SUMO started and :meth:`record` after every step (after the
    controller acted). States are read with one ``getRedYellowGreenState`` call per watched
    signal, so as not to replace the controller's own trafficlight subscriptions.
    """

    def __init__(
        self,
        network: RoadNetwork,
        signal_ids: Sequence[str] | None = None,
        *,
        default_min_green_s: float = DEFAULT_MIN_GREEN_S,
        min_yellow_s: float | None = None,
    ) -> None:
        ids = [s for s in sorted(network.signals) if network.signals[s].vehicle_links] \
            if signal_ids is None else list(signal_ids)
        self.network = network
        self.signals = ids
        self.rules = {s: _Rules(network.signals[s], default_min_green_s, min_yellow_s) for s in ids}
        self.violations: list[TransitionViolation] = []
        self.steps = 0
        self.changes = 0
        self._prev: dict[str, str] = {}
        self._green_since: dict[str, np.ndarray] = {}
        self._green_end: dict[str, np.ndarray] = {}
        self._yellow_since: dict[str, np.ndarray] = {}

    def start(self, sim: SumoSession) -> None:
        """Record the first states (greens showing now have an unknown start)."""
        for sid in self.signals:
            self.begin(sid, sim.conn.trafficlight.getRedYellowGreenState(sid), sim.time_s)

    def begin(self, sid: str, state: str, t: float) -> None:
        """Start watching ``sid`` showing ``state`` at time ``t`` (s); its greens' starts are unknown."""
        n = len(state)
        self._prev[sid] = state
        self._green_since[sid] = np.full(n, np.nan)
        self._green_end[sid] = np.full(n, -np.inf)
        self._yellow_since[sid] = np.full(n, np.nan)
        self._check_conflicts(sid, state, t)

    def record(self, sim: SumoSession) -> None:
        """Read every watched signal's state and check what changed."""
        t = sim.time_s
        self.steps += 1
        get = sim.conn.trafficlight.getRedYellowGreenState
        for sid in self.signals:
            self.observe(sid, get(sid), t)

    def observe(self, sid: str, state: str, t: float) -> None:
        """Check one signal's ``state`` shown from time ``t`` (s) on against what it showed before."""
        prev = self._prev[sid]
        if state != prev:
            self.changes += 1
            self._check_change(sid, prev, state, t)
            self._prev[sid] = state

    def _add(self, t: float, sid: str, rule: str, links: Sequence[int], detail: str) -> None:
        self.violations.append(TransitionViolation(t, sid, rule, tuple(int(k) for k in links), detail))

    def _check_conflicts(self, sid: str, state: str, t: float) -> None:
        sig = self.network.signals[sid]
        bad = state_conflicts(sig, state, strict=self.rules[sid].strict)
        if bad:
            self._add(t, sid, "conflicting-greens", bad[0], f"state {state!r}: {len(bad)} G–G foe pairs")

    def _check_change(self, sid: str, prev: str, state: str, t: float) -> None:
        r = self.rules[sid]
        if len(state) != len(prev):
            self._add(t, sid, "state-length", (), f"state {prev!r} -> {state!r} changed length")
            self.begin(sid, state, t)  # watch the new length from here
            return
        self._check_conflicts(sid, state, t)
        since, end, ysince = self._green_since[sid], self._green_end[sid], self._yellow_since[sid]
        n = min(len(state), r.min_green.size)
        for k in range(n):
            a, b = prev[k], state[k]
            if a == b:
                continue
            if a in GREEN and b not in GREEN:
                dur = t - since[k]
                if not math.isnan(dur) and dur < r.min_green[k] - 1e-6:
                    self._add(t, sid, "min-green", (k,), f"link {k} green for {dur:g} s < {r.min_green[k]:g} s")
                if b in RED and r.vehicle[k] and not r.pedestrian[k]:
                    self._add(t, sid, "yellow", (k,), f"link {k} {a}->{b} without yellow ({prev!r} -> {state!r})")
                end[k] = t
                since[k] = np.nan
            if b in YELLOW and a not in YELLOW:
                ysince[k] = t
            if a in YELLOW and b not in YELLOW:
                dur = t - ysince[k]
                if b in RED and not math.isnan(dur) and dur < r.yellow[k] - 1e-6:
                    self._add(t, sid, "yellow", (k,), f"link {k} yellow for {dur:g} s < {r.yellow[k]:g} s")
                ysince[k] = np.nan
        need = r.yellow + r.all_red  # per link ending its green
        for k in range(n):
            if state[k] in GREEN and prev[k] not in GREEN:
                since[k] = t
                for i in r.foes[k]:
                    if i >= n or state[i] in GREEN:
                        continue
                    gap = t - end[i]
                    if gap < need[i] - 1e-6:
                        self._add(t, sid, "all-red", (int(i), k),
                                  f"link {k} green {gap:g} s after foe link {i}'s green ended (< {need[i]:g} s)")

    def summary(self) -> dict[str, Any]:
        """Counts by rule and the first violations (JSON-ready)."""
        by_rule: dict[str, int] = {}
        for v in self.violations:
            by_rule[v.rule] = by_rule.get(v.rule, 0) + 1
        return {"signals": len(self.signals), "steps": self.steps, "changes": self.changes,
                "violations": len(self.violations), "by_rule": by_rule,
                "first": [asdict(v) for v in self.violations[:50]]}


class TransitionSafetyAddon(RunAddon):
    """A :class:`TransitionMonitor` on every signal of a run's network, as a run add-on.

    It records after every step, after the controller and the other add-ons acted; at the end
    it writes ``transition_safety.json`` in the run folder and returns ``safety_violations``
    and ``signal_changes`` for the summary row. Takes no options.
    """

    name = "transition_safety"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.run: RunSpec | None = None
        self.monitor: TransitionMonitor | None = None

    def prepare(self, ctx: RunSpec) -> AddonInputs:
        self.run = ctx
        return AddonInputs()

    def start(self, sim: SumoSession) -> None:
        assert self.run is not None, "prepare() comes before start()"
        self.monitor = TransitionMonitor(self.run.network())
        self.monitor.start(sim)

    def step(self, sim: SumoSession) -> None:
        assert self.monitor is not None
        self.monitor.record(sim)

    def finish(self, ctx: RunSpec) -> dict[str, Any]:
        if self.monitor is None:  # SUMO never started
            return {}
        checked = self.monitor.summary()
        write_text_atomic(json.dumps(checked, indent=1), ctx.workdir / "transition_safety.json")
        return {"safety_violations": checked["violations"], "signal_changes": checked["changes"]}
