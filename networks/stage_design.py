"""Stage designs: candidate phasings of each signal, built from its movements and SUMO's
conflict matrix, with their intergreens.

A :class:`StageDesign` is a plain record: the stages of one signal as SUMO link-state strings
(in cycle order), the intergreen of every ordered pair of stages (yellow and all-red, s), each
stage's minimum green, default greens, and where the design came from. :func:`stage_designs`
generates the candidates of a signal:

``own``
    The network's own program (its green phases and intergreens), unchanged.
``rebuilt``
    The green phases SUMO builds for the junction (``netconvert --tls.rebuild``, see
    :func:`rebuilt_programs`), carried over to this network's link indices connection by connection.
``merged``
    The own stages without the short protected-turn stages whose turners may yield: every link
    of a dropped stage goes to the remaining stage that carries most of its approach, where the
    conflict matrix lets it run permitted (``g``: it gives way to every green foe).
``two_stage``
    One stage per axis (opposite approaches together, by heading), turns permitted.
``split``
    One stage per approach (split phasing).
``lead_left``
    Per axis a leading protected stage for its left turns, then the axis with its lefts permitted
    (where they may yield) or without them.
``conflict_graph``
    Protected phasing from the conflict matrix alone: the fewest stages a greedy colouring of
    the links' conflict graph finds (the link with the most foes first) in which no two vehicle
    movements that cross are green together, nor two that merge unless one gives way (``g``),
    and a crossing only beside turning movements that give way to it; each stage is then
    filled with every link that fits. It needs neither the own stages nor approaches
    and axes, so it also designs junctions whose link indices were set by hand, one index for
    movements of several approaches (Ingolstadt's ``gneJ21`` groups crossings with the second
    halves of indirect lefts, and every other design greens two of its foes that do not give way).

Stage rules (:func:`stage_problems`): two links that are foes in ``Signal.conflicts`` (merges
into one lane excepted) may be green together only when one of them gives way to the other
(``Signal.yields``, SUMO's ``response`` bits); the yielding one shows ``g``, a link with no
green foe shows ``G``. Two links that merge into one lane may both be green, but where one gives
way to the other it shows ``g`` (SUMO calls two ``G`` links into one lane unsafe: before,
Luxembourg's rebuilt and merged designs showed ``GgGGG`` where SUMO's own program shows
``g``). Every link the own program ever shows green is green in some stage; pedestrian
crossings join only stages whose conflicting vehicle links are all turning (and yield to them);
a design that leaves a crossing without green is rejected. Links the own program never shows
green keep the character they show there.

Joined junctions: no generated design greens a link beside one its vehicles must give way to
after a lane too short to hold them (``Signal.chain_yields``): they would wait across the
junction. On RiLSA 2's 3 m median ``two_stage`` did, and ``schedule`` locked it on two of nine
seeds (one hour, seeds 1-9: 16.8 s/veh; 12.0 on the ``rebuilt`` design ``best`` now picks).
A generated stage that greens a link onto a lane inside a joined cluster (under 20 m) greens
the links of the signal it leads onto there too (``Signal.chain_links``), or leaves it red:
``conflict_graph`` did not, on DRT's cluster lanes (4.3 m, and 0.2 m tram lanes).
``conflict_graph`` places a link with those onward links, still greening no two vehicle links
that cross. ``own`` and ``rebuilt`` stay as the network and SUMO make them.

Intergreens and minimum greens: :mod:`greenwave.networks.intergreens`.

Programs: :meth:`StageDesign.program` is the design as a static SUMO program (each stage's
green phase with ``minDur`` = its minimum green, then the yellow and all-red to the next
stage; links green in both stages keep their green where there is no all-red, and end and
start again where there is one, see :func:`design_transition`; the switcher keeps them green
through an all-red too, unless a link ending there gives way to them). :func:`with_designs` returns a network
whose signals run chosen designs as their default programs, so that
:func:`~greenwave.networks.compile.compile_network`, plans, the validator and the exporters
work on them unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from greenwave.errors import NetworkError
from greenwave.networks.intergreens import (
    DesignParams,
    JunctionGeometry,
    ceil_to,
    intergreens,
    junction_geometry,
    merge_pairs,
    own_floor_allred,
    own_intergreens,
)
from greenwave.networks.model import NO_STORAGE_M, Program, RoadNetwork, Signal
from greenwave.networks.rebuilt_stages import rebuilt_programs
from greenwave.networks.signal_states import (
    GREEN,
    PERMISSIVE_GREEN,
    PRIORITY_GREEN,
    RED_LETTER,
    TRANSITION,
)
from greenwave.networks.stage_record import StageDesign, derived_transition, design_transition, stays_green_over

__all__ = [
    "DESIGN_KINDS",
    "DesignParams",
    "StageDesign",
    "derived_transition",
    "design_transition",
    "stays_green_over",
    "intergreens",
    "merge_pairs",
    "rebuilt_programs",
    "stage_designs",
    "stage_problems",
    "with_designs",
]

#: Names of the generated designs, in the order they are made.
DESIGN_KINDS = ("own", "rebuilt", "merged", "two_stage", "split", "lead_left", "conflict_graph")
_TURNS = frozenset("lLtrR")
_LEFTS = frozenset("lLt")


# ------------------------------------------------------------------------------------------
# stage rules


def _eligible(signal: Signal, own: Program | None) -> tuple[set[int], str]:
    """Links some program of the signal shows green (the own one, or another it switches to:
    SUMO's bs3d game runs four one-stage programs in turn, each serving a fifth of the links),
    and the fallback characters of the rest."""
    n = signal.n_links
    rest = [RED_LETTER] * n
    green: set[int] = set()
    for program in ([own] if own is not None else []) + list(signal.programs.values()):
        for ph in program.phases:
            for k, c in enumerate(ph.state[:n]):
                if c in GREEN:
                    green.add(k)
    if own is not None:
        first = own.phases[0].state
        for k in range(n):
            if k not in green and k < len(first) and first[k] not in TRANSITION:
                rest[k] = first[k]
    used = {m.link_index for m in signal.movements if m.is_used}
    return green & used, "".join(rest)


@dataclass
class _Ctx:
    """Per-signal facts the generator uses."""

    signal: Signal
    foes: np.ndarray  # conflicting, not merging
    yields: np.ndarray
    ped: frozenset[int]
    vehicle: frozenset[int]
    eligible: set[int]
    rest: str
    direction: dict[int, str]
    approach: dict[int, str]  # vehicle link -> from edge
    onward: dict[int, frozenset[int]] = field(default_factory=dict)  # link -> links it leads onto in the cluster

    def compatible(self, a: int, b: int) -> bool:
        return not self.foes[a, b] or bool(self.yields[a, b] or self.yields[b, a])

    def state(self, links: Iterable[int]) -> str:
        """The stage's SUMO state: ``g`` for a link that gives way to a green link it crosses or
        merges with (SUMO calls two ``G`` links into one lane unsafe), ``G`` for the others."""
        on = set(links)
        chars = list(self.rest)
        for k in on:
            gives_way = any(self.signal.conflicts[k, j] and self.yields[k, j] for j in on if j != k)
            chars[k] = PERMISSIVE_GREEN if gives_way else PRIORITY_GREEN
        return "".join(chars)


def _context(signal: Signal, own: Program | None, *, chains: bool = True) -> _Ctx:
    merge = merge_pairs(signal)
    yields = (np.asarray(signal.yields, dtype=bool) if signal.yields is not None
              else np.zeros_like(merge))
    if chains and signal.chain_yields is not None and signal.chain_yields.any():
        # a link whose vehicles would wait inside the junction (on an inner lane that holds
        # none) for a green link is generated apart from it, as a foe neither gives way to
        chain = signal.chain_yields | signal.chain_yields.T
        conflicts = signal.conflicts | chain
        conflicts.setflags(write=False)
        signal, yields, merge = replace(signal, conflicts=conflicts), yields & ~chain, merge & ~chain
    foes = np.asarray(signal.conflicts, dtype=bool) & ~merge
    eligible, rest = _eligible(signal, own)
    direction = {m.link_index: m.direction for m in signal.movements}
    approach = {m.link_index: m.from_edge for m in signal.movements}
    onward: dict[int, frozenset[int]] = {}  # each link's onward links in the cluster, hop by hop
    if chains and signal.chain_links is not None:
        nxt = {int(i): {int(k) for k in np.flatnonzero(row) if int(k) in eligible}
               for i, row in enumerate(signal.chain_links) if row.any()}
        for i in nxt:
            seen, todo = set(), list(nxt[i])
            while todo:
                k = todo.pop()
                if k != i and k not in seen:
                    seen.add(k)
                    todo += nxt.get(k, ())
            if seen:
                onward[i] = frozenset(seen)
    return _Ctx(signal, foes, yields, frozenset(signal.pedestrian_links), frozenset(signal.vehicle_links),
                eligible, rest, direction, approach, onward)


def _ahead_of(ctx: _Ctx, k: int, j: int) -> bool:
    """Whether link ``k`` may be green beside ``j`` without giving way to it: no conflict, or
    ``j`` gives way to ``k``."""
    return not ctx.signal.conflicts[k, j] or bool(ctx.yields[j, k] and not ctx.yields[k, j])


def _with_onward(ctx: _Ctx, links: set[int]) -> set[int]:
    """``links`` with every link of the joined cluster that one of them leads onto over a lane
    inside it (``Signal.chain_links``, hop by hop), where those all go beside the stage
    without giving way to any of it; a link whose onward links do not stays red (its vehicles
    would stop inside the junction)."""
    out = set(links)
    for _ in range(4 * len(ctx.signal.movements) + 4):  # each round adds a whole chain or drops a link
        short = next((i for i in sorted(out) if ctx.onward.get(i, frozenset()) - out), None)
        if short is None:
            break
        need = ctx.onward[short] - out
        if all(_ahead_of(ctx, k, j) for k in need for j in (out | need) - {k}):
            out |= need
        else:
            out.discard(short)
    return out


def stage_problems(signal: Signal, state: str) -> list[str]:
    """What makes ``state`` not a conflict-free stage of ``signal`` (empty list: fine).

    Two green foes (merges excepted) need one of them to give way to the other and show ``g``;
    two ``G`` foes are never allowed; two ``G`` links into one lane where one gives way to the
    other are not allowed either (it must show ``g``).
    """
    merge = merge_pairs(signal)
    foes = np.asarray(signal.conflicts, dtype=bool) & ~merge
    yields = np.asarray(signal.yields, dtype=bool) if signal.yields is not None else None
    n = min(len(state), signal.n_links)
    green = [k for k in range(n) if state[k] in GREEN]
    out = []
    for ai, a in enumerate(green):
        for b in green[ai + 1:]:
            if not foes[a, b]:
                if (merge[a, b] and yields is not None and state[a] == PRIORITY_GREEN
                        and state[b] == PRIORITY_GREEN and (yields[a, b] or yields[b, a])):
                    out.append(f"links {a} and {b} merge into one lane, both show 'G' and one gives way")
                continue
            if state[a] == PRIORITY_GREEN and state[b] == PRIORITY_GREEN:
                out.append(f"links {a} and {b} are foes and both show 'G'")
            elif yields is None:
                continue  # who gives way is unknown: SUMO's own g/G is taken as it is
            elif not ((state[a] == PERMISSIVE_GREEN and yields[a, b])
                      or (state[b] == PERMISSIVE_GREEN and yields[b, a])):
                out.append(f"links {a} and {b} are foes and neither gives way to the other with 'g'")
    return out


def _fill(ctx: _Ctx, core: set[int], pool: Iterable[int]) -> set[int]:
    """``core`` plus every link of ``pool`` that neither conflicts nor merges with any of it, then the
    crossings whose conflicting vehicle links in it all turn and give way to them."""
    out = set(core)
    for k in sorted(pool):
        if k in out or k in ctx.ped:
            continue
        if all(not ctx.signal.conflicts[k, j] for j in out):  # no foe, no merge: it shows G
            out.add(k)
    for c in sorted(ctx.ped & ctx.eligible):
        if c in out:
            continue
        ok = True
        for j in out:
            if not ctx.foes[c, j]:
                continue
            if j in ctx.ped or ctx.direction.get(j, "s") not in _TURNS or not ctx.yields[j, c]:
                ok = False
                break
        if ok:
            out.add(c)
    return out


def _may_run_together(ctx: _Ctx, a: int, b: int) -> bool:
    """Whether links ``a`` and ``b`` may be green in a protected stage: vehicle links that do not
    cross, and that merge only where one gives way to the other (it shows ``g``: two priority
    greens into one lane are what SUMO itself calls unsafe), a crossing beside a vehicle foe
    only when that one turns and gives way to it (as :func:`_fill`), crossings that are not foes."""
    if (a in ctx.ped) != (b in ctx.ped):
        c, v = (a, b) if a in ctx.ped else (b, a)
        return not ctx.foes[c, v] or (ctx.direction.get(v, "s") in _TURNS and bool(ctx.yields[v, c]))
    if ctx.foes[a, b]:
        return False
    return not ctx.signal.conflicts[a, b] or bool(ctx.yields[a, b] or ctx.yields[b, a])  # a merge: one gives way


def _colouring(ctx: _Ctx) -> list[set[int]]:
    """Stages covering every eligible link, as few as a greedy colouring of the conflict graph
    finds: each new stage starts from the uncovered link with the most links it may not run
    beside, takes every uncovered link that fits (most constrained first), then every link
    already served elsewhere that still fits (more green for it)."""
    links = sorted(ctx.eligible)
    clashes = {k: sum(1 for j in links if j != k and not _may_run_together(ctx, k, j)) for k in links}
    # a link goes with the links a joined cluster leads it onto (where they may run together)
    unit = {k: {k} | ctx.onward.get(k, frozenset()) for k in links}
    unit = {k: u if all(_may_run_together(ctx, a, b) for a in u for b in u if a != b) else {k} for k, u in unit.items()}

    def fits(k: int, stage: set[int]) -> bool:
        return all(_may_run_together(ctx, a, j) for a in unit[k] for j in stage if a != j)

    order = sorted(links, key=lambda k: (-clashes[k], k))
    uncovered = set(links)
    stages: list[set[int]] = []
    while uncovered:
        stage: set[int] = set()
        for k in [k for k in order if k in uncovered] + [k for k in order if k not in uncovered]:
            if k not in stage and fits(k, stage):
                stage |= unit[k]
        uncovered -= stage
        stages.append(stage)
    return stages


def _compatible_set(ctx: _Ctx, links: set[int]) -> tuple[int, int] | None:
    ls = sorted(links)
    for i, a in enumerate(ls):
        for b in ls[i + 1:]:
            if not ctx.compatible(a, b):
                return a, b
    return None


def _headings(ctx: _Ctx, g: JunctionGeometry) -> dict[str, float]:
    out = {}
    for k in ctx.vehicle & ctx.eligible:
        e = ctx.approach[k]
        if e in out:
            continue
        ends = g.edge_ends.get(e)
        if ends and ends[0] in g.node_xy and ends[1] in g.node_xy:
            (x0, y0), (x1, y1) = g.node_xy[ends[0]], g.node_xy[ends[1]]
            out[e] = math.degrees(math.atan2(y1 - y0, x1 - x0)) % 360.0
        else:
            out[e] = 0.0
    return out


def _axes(headings: Mapping[str, float]) -> list[list[str]]:
    """Approaches paired with the opposite one (headings 180° ± 45° apart), best pairs first."""
    edges = sorted(headings)
    pairs = []
    for i, a in enumerate(edges):
        for b in edges[i + 1:]:
            d = abs(((headings[a] - headings[b]) % 360.0) - 180.0)
            if d <= 45.0:
                pairs.append((d, a, b))
    used: set[str] = set()
    axes = []
    for _d, a, b in sorted(pairs):
        if a in used or b in used:
            continue
        used |= {a, b}
        axes.append([a, b])
    axes.extend([e] for e in edges if e not in used)
    axes.sort(key=lambda ax: min(headings[e] for e in ax))
    return axes


# ------------------------------------------------------------------------------------------
# the generator


def _green_stages(program: Program) -> list[int]:
    return [k for k, ph in enumerate(program.phases)
            if any(c in GREEN for c in ph.state) and not any(c in TRANSITION for c in ph.state)]


def stage_designs(
    network: RoadNetwork,
    signal_id: str,
    *,
    rebuilt: Program | None = None,
    params: DesignParams | None = None,
) -> tuple[list[StageDesign], dict[str, str]]:
    """The candidate designs of one signal, and the generated ones rejected with why.

    ``rebuilt`` is SUMO's rebuilt program of the signal (:func:`rebuilt_programs`); without it
    there is no ``rebuilt`` candidate. Designs with the same stages as an earlier one are
    dropped (listed as rejected, "same stages as ...").
    """
    p = params or DesignParams()
    sig = network.signals.get(signal_id)
    if sig is None:
        raise NetworkError(f"signal {signal_id!r} is not in the network {network.path}")
    own = sig.default_program
    if own is None or not _green_stages(own):
        return [], {"own": "the signal has no program with a green stage"}
    ctx = _context(sig, own)
    g = junction_geometry(Path(network.path))
    own_idx = _green_stages(own)
    floor = own_floor_allred(own, own_idx)
    rejected: dict[str, str] = {}
    designs: list[StageDesign] = []

    # link minimum greens of the own program (its minDur) and crossing minimums
    link_min: dict[int, float] = {}
    for k in own_idx:
        ph = own.phases[k]
        if ph.min_dur is not None and ph.min_dur > 0:
            for j, c in enumerate(ph.state[: sig.n_links]):
                if c in GREEN:
                    link_min[j] = min(link_min.get(j, math.inf), float(ph.min_dur))
    ped_min: dict[int, float] = {}
    for ci in ctx.ped & ctx.eligible:
        m = sig.movements[ci]
        length = max((g.crossing_length.get(e, 0.0) for x in (m, *m.merged) for e in (x.from_edge, x.to_edge)),
                     default=0.0)
        if length > 0:
            ped_min[ci] = p.pedestrian_walk_s + length / p.pedestrian_speed_mps

    own_yellow, own_red = own_intergreens(own, own_idx)
    own_states = tuple(own.phases[k].state for k in own_idx)
    designs.append(StageDesign(
        signal_id, "own", f"the network's own program {own.id!r}", own_states,
        tuple(float(md) if (md := own.phases[k].min_dur) is not None and md > 0
              else min(p.min_green_s, float(own.phases[k].duration)) for k in own_idx),
        tuple(float(own.phases[k].duration) for k in own_idx),
        tuple(tuple(r) for r in own_yellow), tuple(tuple(r) for r in own_red), own.id, base=own,
    ))

    def finish(name: str, provenance: str, sets: list[set[int]], ctx: _Ctx = ctx) -> None:
        sets = [s for s in (_with_onward(ctx, s) for s in sets) if s]
        uniq: list[set[int]] = []
        for s in sets:
            if s not in uniq:  # the same stage twice adds nothing but lost time
                uniq.append(s)
        if not uniq:
            rejected[name] = "no stage left"
            return
        served = set().union(*uniq)
        missing = sorted((ctx.eligible & ctx.vehicle) - served)
        if missing:
            rejected[name] = f"links {missing} are never green"
            return
        missing_ped = sorted((ctx.ped & ctx.eligible) - served)
        if missing_ped:
            rejected[name] = f"crossings {missing_ped} are never green"
            return
        for s in uniq:
            bad = _compatible_set(ctx, s)
            if bad is not None:
                a, b = bad
                if sig.conflicts[a, b]:
                    rejected[name] = f"links {a} and {b} are foes and neither gives way (SUMO's response bits)"
                else:  # a chained wait (ctx): name the link whose vehicles wait first
                    a, b = (b, a) if sig.chain_yields is not None and sig.chain_yields[b, a] else (a, b)
                    rejected[name] = (f"link {a}'s vehicles would wait inside the junction for link {b} (the lane "
                                      f"between, shorter than {NO_STORAGE_M:g} m, holds none)")
                return
        states = tuple(ctx.state(s) for s in uniq)
        for st in states:
            problems = stage_problems(sig, st)
            if problems:
                rejected[name] = problems[0]
                return
        for d in designs:
            if set(d.stages) == set(states) and len(d.stages) == len(states):
                rejected[name] = f"same stages as {d.name!r}"
                return
        mins = []
        for s in uniq:
            m = max([p.min_green_s] + [link_min.get(k, 0.0) for k in s if math.isfinite(link_min.get(k, 0.0))]
                    + [ped_min.get(k, 0.0) for k in s])
            mins.append(ceil_to(m, p.round_s))
        yellow, allred = intergreens(sig, states, network.path, params=p, floor_allred_s=floor)
        n = len(states)
        lost = sum(yellow[k][(k + 1) % n] + allred[k][(k + 1) % n] for k in range(n)) if n > 1 else 0.0
        spare = max(own.cycle - lost, sum(mins))
        greens = tuple(max(mins[k], ceil_to(spare / n, 1.0)) for k in range(n))
        designs.append(StageDesign(signal_id, name, provenance, states, tuple(mins), greens,
                                   yellow, allred, f"gw_{name}"))

    # rebuilt: SUMO's own phasing for the junction
    if rebuilt is not None:
        rb = [{k for k, c in enumerate(rebuilt.phases[i].state[: sig.n_links]) if c in GREEN} & ctx.eligible
              for i in _green_stages(rebuilt)]
        # SUMO's phasing as SUMO designs it, vehicles waiting inside joined junctions included
        chained = any(m is not None and m.any() for m in (sig.chain_yields, sig.chain_links))
        finish("rebuilt", "SUMO's program for the junction (netconvert --tls.rebuild)", rb,
               _context(sig, own, chains=False) if chained else ctx)
    else:
        rejected["rebuilt"] = "SUMO's rebuilt program was not given"

    own_sets = [{k for k, c in enumerate(st[: sig.n_links]) if c in GREEN} & ctx.eligible for st in own_states]

    # merged: drop short protected-turn stages whose turners may yield elsewhere
    sets = [set(s) for s in own_sets]
    dropped: list[int] = []
    for k, s in enumerate(own_sets):
        dur = float(own.phases[own_idx[k]].duration)
        veh = s & ctx.vehicle
        if not veh or dur > p.short_turn_stage_s or len(sets) - len(dropped) <= 1:
            continue
        only_here = {x for x in veh if not any(x in t for i, t in enumerate(sets) if i != k and i not in dropped)}
        if any(ctx.direction.get(x, "s") not in _TURNS for x in only_here) or not any(
                ctx.direction.get(x, "s") in _LEFTS for x in veh):
            continue  # not a protected-turn stage
        trial = [set(t) for t in sets]
        ok = True
        for x in sorted(only_here):
            homes = [i for i, t in enumerate(trial) if i != k and i not in dropped
                     and all(ctx.compatible(x, y) for y in t)]
            if not homes:
                ok = False
                break
            best = max(homes, key=lambda i: (sum(ctx.approach.get(y) == ctx.approach.get(x) for y in trial[i]), -i))
            trial[best].add(x)
        if ok:
            sets = trial
            dropped.append(k)
    if dropped:
        merged = [_fill(ctx, s - ctx.ped, s) | (s & ctx.ped) for i, s in enumerate(sets) if i not in dropped]
        finish("merged", f"the own stages without protected-turn stages {dropped}, their turns permitted",
               merged)
    else:
        rejected["merged"] = "no short protected-turn stage whose turns may yield elsewhere"

    vehicles = sorted(ctx.vehicle & ctx.eligible)
    axes = _axes(_headings(ctx, g))
    by_edge: dict[str, set[int]] = {}
    for k in vehicles:
        by_edge.setdefault(ctx.approach[k], set()).add(k)

    # two_stage: one stage per axis
    two = [_fill(ctx, set().union(*(by_edge[e] for e in ax)), vehicles) for ax in axes]
    finish("two_stage" if len(axes) == 2 else "axes",
           f"one stage per axis ({'; '.join('+'.join(ax) for ax in axes)}), turns permitted", two)
    # split: one stage per approach
    split = [_fill(ctx, by_edge[e], vehicles) for ax in axes for e in ax]
    finish("split", "one stage per approach (split phasing)", split)
    # lead_left: per axis, its left turns protected first, then the axis with lefts permitted
    lead: list[set[int]] = []
    for ax in axes:
        links = set().union(*(by_edge[e] for e in ax))
        lefts = {k for k in links if ctx.direction.get(k, "s") in _LEFTS}
        if lefts and _compatible_set(ctx, lefts) is None and lefts != links:
            lead.append(_fill(ctx, lefts, vehicles))
            rest = links if _compatible_set(ctx, links) is None else links - lefts
            lead.append(_fill(ctx, rest, vehicles))
        else:
            lead.append(_fill(ctx, links, vehicles))
    finish("lead_left", "per axis: its left turns protected first, then the axis (lefts permitted where "
           "they may yield)", lead)
    finish("conflict_graph", "protected phasing: the fewest stages a greedy colouring of the links' conflict "
           "graph finds, no vehicle movements that cross (or merge without giving way) green together",
           _colouring(ctx))
    return designs, rejected


def with_designs(network: RoadNetwork, designs: Mapping[str, StageDesign]) -> RoadNetwork:
    """A copy of ``network`` whose signals run ``designs`` (signal id → design) as their default
    program (the design's program is added last); ``own`` designs change nothing."""
    changed = {sid: d for sid, d in designs.items() if not d.is_own}
    if not changed:
        return network
    signals = dict(network.signals)
    for sid, d in changed.items():
        sig = signals.get(sid)
        if sig is None:
            raise NetworkError(f"stage design for signal {sid!r}, which is not in the network {network.path}")
        width = max((len(ph.state) for pr in sig.programs.values() for ph in pr.phases), default=sig.n_links)
        if any(len(s) != width for s in d.stages):
            raise NetworkError(f"signal {sid!r}: design {d.name!r} has states of length "
                               f"{len(d.stages[0])}, the signal's programs {width}")
        programs = {k: v for k, v in sig.programs.items() if k != d.program_id}
        programs[d.program_id] = d.program()
        signals[sid] = replace(sig, programs=programs)
    return network.with_signals(signals)
