"""Safety validation of timing plans against the signals' SUMO programs and conflict matrices.

:func:`validate_plan` rebuilds, for every signal of a :class:`~greenwave.controllers.plans.timing.TimingPlan`,
the exact cyclic sequence of SUMO phases that :func:`~greenwave.controllers.plans.sumo_writer.write_sumo_additional`
would write (base program phases rotated to start with stage 0's green, the plan's durations in
ms resolution, phases of 0 ms dropped) and checks it against ``Signal.conflicts`` (SUMO's own foe
matrix over link indices). It returns every problem as a :class:`Violation`;
:func:`assert_safe` raises :class:`~greenwave.errors.PlanError` listing them.

Rules
-----
``conflicting-greens``
    Within one phase two links that conflict in ``Signal.conflicts`` both show ``G``
    (priority green). Not reported, because SUMO allows them: a ``g`` link (permissive, must
    yield) next to a conflicting ``G`` or ``g`` link (the yielding vehicles give way, e.g.
    permissive left turns); two ``G`` links into the same target lane (a merge: SUMO marks merging
    links as foes, the junction's right-of-way decides who goes first).
``conflicting-greens-transition``
    A link *j* turns green while a conflicting link *i* (merges excepted, ``g`` or ``G`` alike)
    was green in the phase just before (direct hand-over), or *i* showed yellow for less than
    the required yellow (``min(min_yellow_s, that clearance's yellow in the base program)``, and
    never 0) between its last green and *j*'s green. Pedestrian links (no yellow in SUMO) only
    need not be green in the phase before.
``yellow``
    A vehicle link goes from ``G``/``g`` directly to ``r``/``s`` without ``y``; a stage whose
    intergreen has a yellow phase in the base program has a yellow shorter than
    ``min_yellow_s`` (3 s by default; configurable, ``--min-yellow``); the plan has yellow
    where the base program has no yellow phase (two green stages in a row).
``min-green``
    Green ≤ 0 or below the stage's ``min_green_s`` (or a negative/non-finite minimum).
``all-red``
    All-red (red clearance) shorter than the base program's all-red after that stage (the
    network's clearance time is never cut; with ``min_allred_s`` given: shorter than that
    instead), negative, or all-red where the base program has none.
``cycle-sum``
    Cycle ≤ 0 or Σ (green + yellow + all-red) ≠ cycle (±1e-6 s).
``offset-range``
    Not 0 ≤ offset < cycle.
``offset-reference``
    The offset's reference stage is not a stage of the signal or its point is not
    ``green_start``/``green_end``.
``pedestrian``
    A stage with pedestrian walk and clearance times has a green shorter than walk +
    clearance, or a negative/non-finite walk or clearance.
``signal-groups``
    Two stages of a signal have the same controller phase / signal group number, a number is
    outside 1..255, or a stage's recorded SUMO ``links`` are not the links its base phase
    shows green (the mapping to the controller would drive other movements than SUMO). A
    recorded link that is not green in the base phase and conflicts with another link of the
    stage is also a ``conflicting-greens`` violation (a controller driving the stage's signal
    group would show both green).
``stage-mismatch``
    The plan's stages are not the base program's green phases (or the signal/program is not in
    the network, or the timing names another signal id). The phase checks are skipped then.
``max-cycle`` / ``max-green``
    Cycle above ``max_cycle_s`` (300 s) or a green above ``max_green_s`` (255 s).
``partial-plan``
    (with ``partial=False``) A timeable signal of the network is neither in the plan nor named
    in its ``meta["own_program_signals"]`` (signals deliberately left on their own programs).

Minimum green and pedestrian times are held to what the network and the
:class:`~greenwave.controllers.plans.safety_rules.SafetyStandards` require (``min-green`` and
``pedestrian``, see :mod:`greenwave.controllers.plans.safety_rules`): the plan's own ``min_green_s``,
``walk_s`` and ``ped_clearance_s`` can raise them, never lower them.

Stage-level violations (``min-green``, ``yellow``, ``all-red``, ``pedestrian``) name the
movements of the stage (its base phase's green links; for ``pedestrian`` its crossings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from greenwave.controllers.plans.layout import (
    StageLayout,
    base_program,
    plan_network,
    scaled_phase_ms,
    stage_layouts,
    to_ms,
)
from greenwave.controllers.plans.safety_rules import (
    DEFAULT_STANDARDS,
    SafetyStandards,
    StageFloor,
    network_signals,
    stage_floors,
)
from greenwave.controllers.plans.timing import TOLERANCE_S, SignalTiming, TimingPlan
from greenwave.errors import PlanError
from greenwave.networks.intergreens import merge_pairs
from greenwave.networks.signal_states import GREEN, OFF, PRIORITY_GREEN, RED, YELLOW

if TYPE_CHECKING:
    from pathlib import Path

    from greenwave.networks.model import Program, RoadNetwork, Signal

__all__ = ["RULES", "LinkFacts", "PhaseStep", "SafetyStandards", "Violation", "assert_safe", "check_limit", "grouped",
           "plan_phase_sequence", "read_excluded", "unsafe_signals", "validate_plan", "write_excluded"]

RULES = (
    "conflicting-greens",
    "conflicting-greens-transition",
    "min-green",
    "yellow",
    "all-red",
    "cycle-sum",
    "offset-range",
    "offset-reference",
    "pedestrian",
    "signal-groups",
    "stage-mismatch",
    "max-cycle",
    "max-green",
    "partial-plan",
)


@dataclass(frozen=True)
class Violation:
    """One safety problem of a plan.

    ``stage`` is the plan's stage index, ``phase`` the base program's phase index (``None``
    where not applicable); ``links`` the link indices involved and ``movements`` their
    ``"link k: from_edge→to_edge"`` descriptions.
    """

    signal_id: str
    stage: int | None
    phase: int | None
    rule: str
    links: tuple[int, ...]
    movements: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        where = f"signal {self.signal_id!r}"
        if self.stage is not None:
            where += f" stage {self.stage}"
        if self.phase is not None:
            where += f" phase {self.phase}"
        mv = f" [{'; '.join(self.movements)}]" if self.movements else ""
        return f"{where}: {self.rule}: {self.message}{mv}"


@dataclass(frozen=True)
class PhaseStep:
    """One phase of the program a plan runs: base phase index, stage, duration (s), state."""

    phase: int
    stage: int
    duration_s: float
    state: str


def _sequence(program: Program, timing: SignalTiming, layout: list[StageLayout]) -> list[PhaseStep]:
    # Mirrors write_sumo_additional (same helpers, same ms rounding, 0 ms phases dropped).
    out: list[PhaseStep] = []
    for k, (st, lay) in enumerate(zip(timing.stages, layout, strict=True)):
        steps = [(lay.green, to_ms(st.green_s))]
        inter = dict(scaled_phase_ms(program, lay.yellow, lay.base_yellow_s, st.yellow_s))
        inter.update(scaled_phase_ms(program, lay.allred, lay.base_allred_s, st.allred_s))
        steps.extend((j, inter[j]) for j in lay.order)
        for j, d in steps:
            if d > 0:
                out.append(PhaseStep(j, k, d / 1000.0, program.phases[j].state))
    return out


def plan_phase_sequence(plan: TimingPlan, network: RoadNetwork, signal_id: str) -> list[PhaseStep]:
    """The phases ``plan`` runs at ``signal_id``, as :func:`write_sumo_additional` writes them.

    Raises :class:`PlanError` when the signal, its base program or its stages do not match.
    """
    t = plan.signals[signal_id]
    program = base_program(plan_network(plan, network), signal_id, t.program_id)
    return _sequence(program, t, stage_layouts(program, t))


def _base_sequence(program: Program, layout: list[StageLayout]) -> list[PhaseStep]:
    out = []
    for k, lay in enumerate(layout):
        for j in (lay.green, *lay.order):
            if program.phases[j].duration > 0:
                out.append(PhaseStep(j, k, float(program.phases[j].duration), program.phases[j].state))
    return out


class LinkFacts:
    """What the safety rules need to know of one signal's links.

    ``conf``: SUMO's foe matrix (bool, link × link); ``merge``: the pairs of links into the same
    target lane (:func:`~greenwave.networks.intergreens.merge_pairs`); ``ped``: the pedestrian
    links; ``unused``: links no movement uses; ``foes``: the conflicting pairs that are not merges,
    among used links (what must never be green together). :meth:`describe` names links for
    messages.
    """

    def __init__(self, sig: Signal) -> None:
        self.sig = sig
        n = sig.n_links
        self.conf = np.asarray(sig.conflicts, dtype=bool)
        self.merge = merge_pairs(sig)
        self.ped = frozenset(sig.pedestrian_links)
        self.unused = frozenset(sig.unused_links) | {m.link_index for m in sig.movements if not m.is_used}
        # conflicting, non-merge pairs among used links
        self.foes = self.conf & ~self.merge
        for u in self.unused:
            if u < n:
                self.foes[u, :] = False
                self.foes[:, u] = False

    def describe(self, *links: int) -> tuple[str, ...]:
        out = []
        for k in links:
            if 0 <= k < self.sig.n_links:
                m = self.sig.movements[k]
                out.append(f"link {k}: {m.from_edge or '?'}→{m.to_edge or '?'}")
            else:
                out.append(f"link {k}: (not a link of the signal)")
        return tuple(out)


def _state(state: str, k: int) -> str:
    return state[k] if k < len(state) else OFF


def _check_phases(
    sid: str,
    seq: list[PhaseStep],
    base_seq: list[PhaseStep],
    info: LinkFacts,
    min_yellow_s: float,
) -> list[Violation]:
    out: list[Violation] = []
    n_links = info.sig.n_links
    foes = info.foes
    # 1. conflicting G–G within a phase (each base phase once)
    seen: set[int] = set()
    for step in seq:
        if step.phase in seen:
            continue
        seen.add(step.phase)
        g_links = [k for k in range(min(n_links, len(step.state))) if step.state[k] == PRIORITY_GREEN]
        for a_i, a in enumerate(g_links):
            for b in g_links[a_i + 1:]:
                if foes[a, b]:
                    out.append(Violation(
                        sid, step.stage, step.phase, "conflicting-greens", (a, b), info.describe(a, b),
                        f"links {a} and {b} conflict (SUMO foes, not a merge) but both show 'G' "
                        f"in state {step.state!r}",
                    ))

    # yellow clearance before a conflicting green: computed on a cyclic sequence
    def clearance(sq: list[PhaseStep], b: int, i: int) -> tuple[bool, float] | None:
        """(direct hand-over?, yellow seconds of link i since its last green) before sq[b]."""
        n = len(sq)
        prev = sq[(b - 1) % n]
        if _state(prev.state, i) in GREEN:
            return True, 0.0
        yel = 0.0
        for step_back in range(1, n + 1):
            s = sq[(b - step_back) % n]
            c = _state(s.state, i)
            if c in GREEN:
                return False, yel
            if c in YELLOW:
                yel += s.duration_s
        return None  # link i is never green

    base_clear: dict[tuple[int, int, int], float] = {}
    nb = len(base_seq)
    for b in range(nb):
        cur, prev = base_seq[b], base_seq[(b - 1) % nb]
        for j in range(min(n_links, len(cur.state))):
            if cur.state[j] in GREEN and _state(prev.state, j) not in GREEN:
                for i in np.flatnonzero(foes[j]).tolist():
                    if _state(cur.state, i) in GREEN:
                        continue
                    r = clearance(base_seq, b, i)
                    if r is not None:
                        base_clear[(cur.phase, j, i)] = r[1]

    n = len(seq)
    for b in range(n):
        cur, prev = seq[b], seq[(b - 1) % n]
        # 2a. green directly to red (vehicle links)
        for k in range(min(n_links, len(prev.state))):
            if k in info.unused or k in info.ped:
                continue
            if prev.state[k] in GREEN and _state(cur.state, k) in RED and n > 1:
                out.append(Violation(
                    sid, prev.stage, prev.phase, "yellow", (k,), info.describe(k),
                    f"link {k} goes from {prev.state[k]!r} (phase {prev.phase}) directly to "
                    f"{cur.state[k]!r} (phase {cur.phase}) without yellow",
                ))
        # 2b. conflicting green onsets
        for j in range(min(n_links, len(cur.state))):
            if not (cur.state[j] in GREEN and _state(prev.state, j) not in GREEN):
                continue
            for i in np.flatnonzero(foes[j]).tolist():
                if _state(cur.state, i) in GREEN:
                    continue  # simultaneous greens: rule 1's business
                r = clearance(seq, b, i)
                if r is None:
                    continue
                direct, yel = r
                if direct:
                    out.append(Violation(
                        sid, cur.stage, cur.phase, "conflicting-greens-transition", (i, j),
                        info.describe(i, j),
                        f"link {j} turns green in phase {cur.phase} directly after conflicting link {i} "
                        f"was green in phase {prev.phase} (no intervening yellow/red phase)",
                    ))
                    continue
                if i in info.ped:
                    continue
                need = min(min_yellow_s, base_clear.get((cur.phase, j, i), min_yellow_s))
                if yel <= TOLERANCE_S or yel < need - TOLERANCE_S:
                    out.append(Violation(
                        sid, cur.stage, cur.phase, "conflicting-greens-transition", (i, j),
                        info.describe(i, j),
                        f"link {i} shows yellow for {yel:g} s before conflicting link {j} turns green "
                        f"in phase {cur.phase}; needs > 0 and >= {need:g} s",
                    ))
    return out


def _check_times(
    sid: str,
    t: SignalTiming,
    layout: list[StageLayout] | None,
    min_yellow_s: float,
    min_allred_s: float | None,
    stage_links: list[tuple[int, ...]],
    ped_links: list[tuple[int, ...]],
    info: LinkFacts | None,
) -> list[Violation]:
    out: list[Violation] = []

    def v(stage: int | None, phase: int | None, rule: str, msg: str, links: tuple[int, ...] = ()) -> None:
        mv = info.describe(*links) if info is not None and links else ()
        out.append(Violation(sid, stage, phase, rule, links if mv else (), mv, msg))

    if not (math.isfinite(t.cycle_s) and t.cycle_s > 0):
        v(None, None, "cycle-sum", f"cycle {t.cycle_s!r} s must be a positive number")
    else:
        total = t.stage_sum_s
        if not (math.isfinite(total) and abs(total - t.cycle_s) <= TOLERANCE_S):
            v(None, None, "cycle-sum", f"Σ(green + yellow + all-red) = {total:g} s but cycle = {t.cycle_s:g} s")
    if not (math.isfinite(t.offset_s) and math.isfinite(t.cycle_s) and 0.0 <= t.offset_s < t.cycle_s):
        v(None, None, "offset-range", f"offset {t.offset_s:g} s must satisfy 0 <= offset < cycle ({t.cycle_s:g} s)")
    if t.offset_reference not in ("green_start", "green_end") or not (
        0 <= t.reference_stage < max(len(t.stages), 1)
    ):
        v(None, None, "offset-reference",
          f"offset referenced to {t.offset_reference!r} of stage {t.reference_stage}: needs "
          f"green_start or green_end of a stage 0..{len(t.stages) - 1}")
    groups: dict[int, int] = {}
    for k in range(len(t.stages)):
        g = t.group_of(k)
        if not 1 <= g <= 255:
            v(k, t.stages[k].phase_index, "signal-groups", f"signal group {g} outside 1..255")
        if g in groups:
            v(k, t.stages[k].phase_index, "signal-groups",
              f"signal group {g} is also stage {groups[g]}'s; each stage needs its own")
        groups.setdefault(g, k)
    for k, st in enumerate(t.stages):
        lay = layout[k] if layout is not None else None
        p = st.phase_index
        mv = stage_links[k]
        if st.walk_s is not None or st.ped_clearance_s is not None:
            w, c = st.walk_s or 0.0, st.ped_clearance_s or 0.0
            if not (math.isfinite(w) and math.isfinite(c) and w >= 0 and c >= 0):
                v(k, p, "pedestrian", f"walk {st.walk_s!r} s / clearance {st.ped_clearance_s!r} s must be >= 0",
                  ped_links[k])
            elif math.isfinite(st.green_s) and st.green_s < w + c - TOLERANCE_S:
                v(k, p, "pedestrian", f"green {st.green_s:g} s < walk {w:g} s + pedestrian clearance {c:g} s",
                  ped_links[k])
        if not (math.isfinite(st.min_green_s) and st.min_green_s >= 0):
            v(k, p, "min-green", f"minimum green {st.min_green_s!r} s must be >= 0", mv)
        if not (math.isfinite(st.green_s) and st.green_s > 0):
            v(k, p, "min-green", f"green {st.green_s!r} s must be > 0", mv)
        elif st.green_s < st.min_green_s - TOLERANCE_S:
            v(k, p, "min-green", f"green {st.green_s:g} s < minimum green {st.min_green_s:g} s", mv)
        if not (math.isfinite(st.yellow_s) and st.yellow_s >= 0):
            v(k, p, "yellow", f"yellow {st.yellow_s!r} s must be >= 0", mv)
        elif lay is not None:
            if lay.base_yellow_s > TOLERANCE_S and st.yellow_s < min_yellow_s - TOLERANCE_S:
                v(k, p, "yellow", f"yellow {st.yellow_s:g} s < {min_yellow_s:g} s (minimum yellow; "
                  f"base program has {lay.base_yellow_s:g} s)", mv)
            if st.yellow_s > TOLERANCE_S and lay.base_yellow_s <= 0:
                v(k, p, "yellow", f"plan has {st.yellow_s:g} s yellow but the base program has no "
                  "yellow phase after this stage", mv)
        if not (math.isfinite(st.allred_s) and st.allred_s >= 0):
            v(k, p, "all-red", f"all-red {st.allred_s!r} s must be >= 0", mv)
        else:
            if min_allred_s is not None:
                if st.allred_s < min_allred_s - TOLERANCE_S:
                    v(k, p, "all-red", f"all-red {st.allred_s:g} s < {min_allred_s:g} s", mv)
            elif lay is not None and st.allred_s < lay.base_allred_s - TOLERANCE_S:
                v(k, p, "all-red", f"all-red {st.allred_s:g} s < the network's red clearance "
                  f"{lay.base_allred_s:g} s (base program's all-red after this stage)", mv)
            if lay is not None and st.allred_s > TOLERANCE_S and lay.base_allred_s <= 0:
                v(k, p, "all-red", f"plan has {st.allred_s:g} s all-red but the base program has no "
                  "all-red phase after this stage", mv)
    return out


def check_limit(name: str, x: float | None, *, optional: bool = False) -> None:
    """Raise :class:`PlanError` unless ``x`` is a finite number of seconds ≥ 0 (or ``None`` when optional)."""
    if x is None and optional:
        return
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not (math.isfinite(x) and x >= 0):
        raise PlanError(f"{name} must be a finite number of seconds >= 0, got {x!r}")


def validate_plan(
    plan: TimingPlan,
    network: RoadNetwork,
    *,
    min_yellow_s: float | None = None,
    min_allred_s: float | None = None,
    standards: SafetyStandards | None = None,
    partial: bool = True,
) -> list[Violation]:
    """Every safety violation of ``plan`` on ``network`` (empty list: safe); see the module doc.

    ``standards``: the safety standards (default :data:`DEFAULT_STANDARDS`); ``min_yellow_s``
    (shortest yellow after a stage whose base program has one, 3 s) and ``min_allred_s``
    (shortest all-red; ``None``: the base program's) replace the standards' values when given.
    ``partial=False`` also requires every timeable signal of the network (rule ``partial-plan``).
    :class:`PlanError` for a limit that is not a finite number >= 0.
    """
    check_limit("min_yellow_s", min_yellow_s, optional=True)
    check_limit("min_allred_s", min_allred_s, optional=True)
    network = plan_network(plan, network)
    std = standards or DEFAULT_STANDARDS
    if min_yellow_s is not None:
        std = replace(std, min_yellow_s=float(min_yellow_s))
    if min_allred_s is not None:
        std = replace(std, min_allred_s=float(min_allred_s))
    min_yellow_s, min_allred_s = std.min_yellow_s, std.min_allred_s
    out: list[Violation] = []
    if not partial:
        out.extend(_coverage(plan, network))
    for sid, t in plan.signals.items():
        if t.signal_id != sid:
            out.append(Violation(sid, None, None, "stage-mismatch", (), (),
                                 f"its timing names signal {t.signal_id!r}"))
        sig = network.signals.get(sid)
        info = LinkFacts(sig) if sig is not None else None
        recorded = [tuple(st.links or ()) for st in t.stages]
        try:
            program = base_program(network, sid, t.program_id)
            layout = stage_layouts(program, t)
        except PlanError as exc:
            out.append(Violation(sid, None, None, "stage-mismatch", (), (), str(exc)))
            out.extend(_check_times(sid, t, None, min_yellow_s, min_allred_s, recorded,
                                    [()] * len(t.stages), info))
            continue
        assert sig is not None and info is not None
        green_of = [tuple(j for j, c in enumerate(program.phases[st.phase_index].state) if c in GREEN)
                    for st in t.stages]
        ped_of = [tuple(j for j in g if j in info.ped) for g in green_of]
        out.extend(_check_times(sid, t, layout, min_yellow_s, min_allred_s, green_of, ped_of, info))
        out.extend(_check_floors(sid, t, stage_floors(network, sid, program, std), std, green_of, ped_of, info))
        for k, st in enumerate(t.stages):
            if st.links is None:
                continue
            green = green_of[k]
            if tuple(sorted(st.links)) != green:
                odd = tuple(sorted(set(st.links) ^ set(green)))
                out.append(Violation(
                    sid, k, st.phase_index, "signal-groups", odd, info.describe(*odd),
                    f"stage's links {list(st.links)} are not the links its base phase shows green "
                    f"{list(green)}",
                ))
                # a recorded link the base phase does not show green, conflicting with another
                # link of the stage: a controller driving this stage would show both green
                n = sig.n_links
                mine = sorted({x for x in st.links if 0 <= x < n})
                for a in sorted(set(mine) - set(green)):
                    for b in mine:
                        if b != a and info.foes[a, b] and (b in green or b > a):
                            out.append(Violation(
                                sid, k, st.phase_index, "conflicting-greens", (a, b), info.describe(a, b),
                                f"stage's recorded links put link {a} green with link {b}; they conflict "
                                "(SUMO foes, not a merge)",
                            ))
        if any(not (math.isfinite(x) and x >= 0) for st in t.stages
               for x in (st.green_s, st.yellow_s, st.allred_s)):
            continue  # no sensible phase sequence
        seq = _sequence(program, t, layout)
        if not seq:
            continue
        out.extend(_check_phases(sid, seq, _base_sequence(program, layout), info, min_yellow_s))
    return out


def _check_floors(sid: str, t: SignalTiming, floors: list[StageFloor], std: SafetyStandards,
                  green_of: list[tuple[int, ...]], ped_of: list[tuple[int, ...]], info: LinkFacts) -> list[Violation]:
    """Minimum green and pedestrian time from the network and the standards (never the plan's
    own figures), and the upper bounds of cycle and green."""
    out: list[Violation] = []
    max_cycle = floors[0].max_cycle_s if floors else std.max_cycle_s
    if math.isfinite(t.cycle_s) and t.cycle_s > max_cycle + TOLERANCE_S:
        out.append(Violation(sid, None, None, "max-cycle", (), (),
                             f"cycle {t.cycle_s:g} s > the longest cycle allowed, {max_cycle:g} s"))
    for k, (st, fl) in enumerate(zip(t.stages, floors, strict=True)):
        g = st.green_s
        if not math.isfinite(g):
            continue
        p = st.phase_index
        if g > fl.max_green_s + TOLERANCE_S:
            out.append(Violation(sid, k, p, "max-green", green_of[k], info.describe(*green_of[k]),
                                 f"green {g:g} s > the longest green allowed, {fl.max_green_s:g} s"))
        if 0 < g < fl.green_s - TOLERANCE_S:
            out.append(Violation(sid, k, p, "min-green", green_of[k], info.describe(*green_of[k]),
                                 f"green {g:g} s < minimum green {fl.green_s:g} s ({fl.why_green}; "
                                 "a plan's own min_green_s cannot lower it)"))
        if fl.pedestrian_s > 0 and 0 < g < fl.pedestrian_s - TOLERANCE_S:
            out.append(Violation(sid, k, p, "pedestrian", ped_of[k], info.describe(*ped_of[k]),
                                 f"green {g:g} s < pedestrian time {fl.pedestrian_s:g} s ({fl.why_pedestrian}; "
                                 "a plan's own walk and clearance times cannot lower it)"))
    return out


def _coverage(plan: TimingPlan, network: RoadNetwork) -> list[Violation]:
    """Timeable signals of the network missing from a plan that should cover them all."""
    declared = plan.meta.get("own_program_signals", ())
    declared = set(declared) if isinstance(declared, (list, tuple)) else set()
    missing = [sid for sid in network_signals(network) if sid not in plan.signals and sid not in declared]
    if not plan.signals:
        return [Violation("*", None, None, "partial-plan", (), (),
                          f"the plan has no signals; the network has {len(network_signals(network))}")]
    return [Violation(sid, None, None, "partial-plan", (), (),
                      "signal of the network is not in the plan (nor in its meta own_program_signals); "
                      "a plan for some signals only needs --partial") for sid in missing]


def unsafe_signals(plan: TimingPlan, network: RoadNetwork, *, report: Path | None = None) -> dict[str, str]:
    """Signals of ``plan`` that the validator rejects, with their first violation.

    A signal whose own base program is unsafe (Ingolstadt's ``gneJ21`` shows conflicting
    greens) gets no safe plan from any timing, so controllers leave such signals on their own
    programs. With ``report`` the list is written there (atomically) when it is not empty.
    """
    bad: dict[str, str] = {}
    for v in validate_plan(plan, network):
        bad.setdefault(v.signal_id, str(v))
    if bad and report is not None:
        write_excluded(bad, report, "plan not safe")
    return bad


def write_excluded(bad: dict[str, str], path: Path, reason: str) -> None:
    """Write the signals a controller leaves on their own programs, one ``signal: why`` line each
    under a heading with ``reason`` (atomically)."""
    from greenwave.engine.results import write_text_atomic

    lines = [f"{sid}: {why}" for sid, why in sorted(bad.items())]
    write_text_atomic(f"signals left on their own programs ({reason}):\n" + "\n".join(lines) + "\n", path)


def read_excluded(path: Path) -> dict[str, str]:
    """The signals a :func:`write_excluded` file lists, with why (empty when there is no file:
    the controller left no signal alone)."""
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def grouped(found: list[Violation]) -> list[str]:
    """One line per cause: violations of the same signal, stage and rule (e.g. the dozens of
    link pairs one short yellow endangers) become one line with their count, the first
    message and every movement involved."""
    groups: dict[tuple[str, int | None, int | None, str], list[Violation]] = {}
    for v in found:
        groups.setdefault((v.signal_id, v.stage, v.phase, v.rule), []).append(v)
    lines = []
    for (sid, stage, phase, rule), vs in groups.items():
        where = f"signal {sid}"
        if stage is not None:
            where += f" stage {stage}"
        if phase is not None:
            where += f" (SUMO phase {phase})"
        msg = vs[0].message
        if len(vs) > 1:
            msg += f" (and {len(vs) - 1} more of this kind)"
        movements = list(dict.fromkeys(m for v in vs for m in v.movements))
        mv = ""
        if movements:
            mv = "; movements: " + "; ".join(movements[:8]) + (f"; +{len(movements) - 8} more" if len(movements) > 8
                                                              else "")
        lines.append(f"{where}: rule {rule}: {msg}{mv}")
    return lines


def assert_safe(plan: TimingPlan, network: RoadNetwork, **kw: Any) -> None:
    """Raise :class:`PlanError` listing the violations, one line per cause (:func:`grouped`;
    first 20, then a count), if any. Keywords as :func:`validate_plan`."""
    found = validate_plan(plan, network, **kw)
    if not found:
        return
    causes = grouped(found)
    lines = [f"timing plan is unsafe: {len(found)} violation(s), {len(causes)} cause(s)"]
    lines.extend(f"  - {c}" for c in causes[:20])
    if len(causes) > 20:
        lines.append(f"  ... and {len(causes) - 20} more")
    raise PlanError("\n".join(lines))
