"""Signal timing optimisation on the compiled network: cycle, splits and offsets.

1. Webster: per signal, critical flow ratios per stage give Webster's cycle
   C0 = (1.5 L + 5) / (1 − Y); splits share the green beyond the minimum greens in proportion
   to the stages' flow ratios (equal degree of saturation).
2. A common cycle for the coordination group: candidate cycles in [min, max] are scored by the
   model with Webster splits, the best kept.
3. Offsets and splits: a multi-start local search in the spirit of TRANSYT's hill climb. Every
   move of one signal (its offset by ± steps, or green moved between two of its stages) is
   scored in one call of the batch evaluator, which spreads candidates over the cores. The
   global part draws random offset vectors (seeded) and scores them in batches too; the best
   few start hill climbs.

Every candidate keeps each stage's minimum green (pedestrian minimums included), its yellow and
all-red, the cycle sum, and 0 ≤ offset < cycle.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from greenwave.engine import local_eval, model
from greenwave.engine.arrays import CompiledNetwork, ModelParams, PlanArrays
from greenwave.engine.bandwidth import bandwidth_offsets
from greenwave.errors import PlanError

if TYPE_CHECKING:
    from greenwave.engine.model import ModelResult

Objective = Literal["delay", "stops", "bandwidth"]


@dataclass(frozen=True)
class OptimiserSettings:
    """Bounds and search settings (seconds).

    min_cycle_s, max_cycle_s
        Range of the common cycle. The lower end is also never below any signal's own minimum
        cycle (Σ minimum greens, pedestrian minimums included, + intergreens); 20 s is the
        shortest two-stage cycle in common practice.
    cycle_step_s
        Largest spacing of the candidate cycles scored: first every 20 %, then every 10 % (at
        least 2 s apart) around the best, since at short cycles a few seconds change much.
    offset_steps
        Offset moves tried in each hill-climb pass, as fractions of the cycle (then 2 s, 1 s).
    split_step_s
        Green moved between two stages per split move.
    starts
        Hill-climb starts (the best of the global search, plus the given start).
    global_candidates
        Random offset vectors scored by the batch evaluator in the global search.
    max_passes
        Hill-climb passes over all signals per start.
    seed
        Random seed of the global search.
    """

    min_cycle_s: float = 20.0
    max_cycle_s: float = 150.0
    cycle_step_s: float = 10.0
    offset_steps: tuple[float, ...] = (0.25, 0.125, 0.0625)
    split_step_s: float = 2.0
    starts: int = 3
    global_candidates: int = 64
    max_passes: int = 6
    seed: int = 0
    parallel: bool = True


@dataclass
class OptimiseResult:
    """The optimised plan with its predicted performance before and after."""

    plan: PlanArrays
    pi_start: float
    pi: float
    mean_delay_start_s: float
    mean_delay_s: float
    evaluations: int
    wall_s: float
    cycle_scores: dict[float, float] = field(default_factory=dict)
    history: list[float] = field(default_factory=list)


# ------------------------------------------------------------------------------------------
# Webster


def stage_flow_ratios(net: CompiledNetwork) -> np.ndarray:
    """Critical flow ratio y_k of each stage: the largest q/s among the links it serves (a link
    served by several stages counts its ratio shared among them)."""
    y = np.zeros(net.n_stages)
    for link in range(net.n_links):
        stages = net.link_stage_idx[net.link_stage_ptr[link]:net.link_stage_ptr[link + 1]]
        if len(stages) == 0 or net.link_sat_flow_vps[link] <= 0:
            continue
        ratio = net.link_flow_vps[link] / net.link_sat_flow_vps[link] / len(stages)
        for k in stages:
            y[k] = max(y[k], ratio)
    return y


def webster_cycles(net: CompiledNetwork, *, max_cycle_s: float = 150.0) -> np.ndarray:
    """Webster's optimum cycle per signal, C0 = (1.5 L + 5)/(1 − Y), L = Σ intergreens (s)."""
    y = stage_flow_ratios(net)
    out = np.empty(net.n_signals)
    for i in range(net.n_signals):
        s = net.stages_of(i)
        big_y = float(y[s.start:s.stop].sum())
        lost = float(net.stage_intergreen_s[s.start:s.stop].sum())
        out[i] = max_cycle_s if big_y >= 0.95 else (1.5 * lost + 5.0) / (1.0 - big_y)
    return out


def webster_splits(net: CompiledNetwork, cycle_s: float) -> np.ndarray:
    """Greens (s) of every stage for a common cycle: minimum greens plus the spare time shared in
    proportion to the stages' flow ratios (equally where a signal carries no flow)."""
    y = stage_flow_ratios(net)
    green = np.array(net.stage_min_green_s, dtype=np.float64)
    for i in range(net.n_signals):
        s = net.stages_of(i)
        spare = cycle_s - float(np.sum(net.stage_min_green_s[s.start:s.stop] + net.stage_intergreen_s[s.start:s.stop]))
        if spare < -1e-9:
            raise PlanError(
                f"signal {net.signal_ids[i]!r}: cycle {cycle_s:g} s is shorter than its minimum "
                f"cycle {net.min_cycle_s(i):g} s (minimum greens + intergreens)"
            )
        weights = y[s.start:s.stop].copy()
        if weights.sum() <= 0:
            weights[:] = 1.0
        green[s.start:s.stop] += spare * weights / weights.sum()
    return green


def feasible_cycle_range(net: CompiledNetwork, settings: OptimiserSettings) -> tuple[float, float]:
    """[lowest, highest] common cycle: no shorter than any signal's minimum cycle."""
    lowest = max([settings.min_cycle_s] + [net.min_cycle_s(i) for i in range(net.n_signals)])
    lowest = float(np.ceil(lowest))
    if lowest > settings.max_cycle_s:
        raise PlanError(
            f"no feasible common cycle: the signals need at least {lowest:g} s but the maximum "
            f"cycle is {settings.max_cycle_s:g} s"
        )
    return lowest, float(settings.max_cycle_s)


def candidate_cycles(lo: float, hi: float, max_step_s: float, *, relative: float = 0.1) -> list[float]:
    """Cycles from ``lo`` to ``hi`` (s, whole seconds): each ``relative`` (10 %) longer than the
    one before, at least 2 s and at most ``max_step_s`` apart; ``hi`` always included."""
    out = [float(np.ceil(lo))]
    while out[-1] < hi:
        step = min(max(2.0, round(relative * out[-1])), max(max_step_s, 1.0))
        out.append(min(float(hi), out[-1] + step))
    return out


def webster_plan(net: CompiledNetwork, settings: OptimiserSettings | None = None) -> PlanArrays:
    """The start plan: common cycle = the largest Webster cycle (clamped), Webster splits,
    all offsets 0."""
    settings = settings or OptimiserSettings()
    lo, hi = feasible_cycle_range(net, settings)
    c0 = float(np.ceil(np.clip(webster_cycles(net, max_cycle_s=hi).max(initial=lo), lo, hi)))
    return PlanArrays(cycle_s=c0, offset_s=np.zeros(net.n_signals), green_s=webster_splits(net, c0))


# ------------------------------------------------------------------------------------------
# search


class _Scorer:
    """Counts evaluations; scores single plans, batches and local moves with the numba model.

    ``evaluations`` counts every plan scored (full, batch or local); ``local_evaluations`` the
    local ones among them and ``full_evaluations`` the full single-plan ones.
    """

    def __init__(self, net: CompiledNetwork, params: ModelParams, parallel: bool) -> None:
        self.net, self.params, self.parallel = net, params, parallel
        self._model = model
        self._local = local_eval
        self.evaluations = 0
        self.local_evaluations = 0
        self.full_evaluations = 0
        self._active: tuple[np.ndarray, np.ndarray] | None = None

    def result(self, plan: PlanArrays) -> ModelResult:
        """The model's full result for one plan (for reports; not counted as an evaluation)."""
        return self._model.evaluate(self.net, plan, self.params)

    def one(self, plan: PlanArrays) -> float:
        self.evaluations += 1
        self.full_evaluations += 1
        return float(self._model.evaluate(self.net, plan, self.params).pi)

    def state(self, plan: PlanArrays, warm=None):  # type: ignore[no-untyped-def]
        """Full evaluation (cold, or warm from a BaseState) → (PI, BaseState)."""
        self.evaluations += 1
        self.full_evaluations += 1
        res, st = self._model.evaluate_state(self.net, plan, self.params, warm=warm)
        return float(res.pi), st

    def advance(self, state, signal: int, plan: PlanArrays):  # type: ignore[no-untyped-def]
        """The base state moved to ``plan`` (a move at ``signal``) by a local evaluation."""
        if self._active is None:
            self._active = self._local.active_sets(self.net)
        ptr, idx = self._active
        self.evaluations += 2
        self.local_evaluations += 2
        return self._local.advance_state(self.net, state, plan, idx[ptr[signal]:ptr[signal + 1]], self.params)

    def batch(self, cycle: float, offsets: np.ndarray, greens: np.ndarray) -> np.ndarray:
        self.evaluations += offsets.shape[0]
        return self._model.evaluate_batch(
            self.net, cycle, np.ascontiguousarray(offsets), np.ascontiguousarray(greens),
            self.params, parallel=self.parallel,
        )

    def moves(self, state, signal: int,  # type: ignore[no-untyped-def]
              offsets: np.ndarray, greens: np.ndarray) -> np.ndarray:
        """Local PI change of each candidate against ``state`` (one local evaluation per
        candidate plus one of the base plan)."""
        if self._active is None:
            self._active = self._local.active_sets(self.net)
        self.evaluations += offsets.shape[0] + 1
        self.local_evaluations += offsets.shape[0] + 1
        return self._local.evaluate_moves(
            self.net, state, signal, np.ascontiguousarray(offsets), np.ascontiguousarray(greens), self.params,
            parallel=self.parallel, active=self._active,
        )


def _offset_moves(cycle: float, steps: tuple[float, ...]) -> list[float]:
    moves = sorted({round(f * cycle) for f in steps} | {2.0, 1.0}, reverse=True)
    out: list[float] = []
    for m in moves:
        if 0 < m < cycle:
            out += [m, -m]
    return out


def _split_moves(net: CompiledNetwork, signal: int, green: np.ndarray, step: float) -> list[np.ndarray]:
    """Greens of one signal with ``step`` s moved from one stage to another (minimums kept)."""
    s = net.stages_of(signal)
    out = []
    for a in range(s.start, s.stop):
        for b in range(s.start, s.stop):
            if a != b and green[a] - step >= net.stage_min_green_s[a] - 1e-9 and green[b] + step <= max(
                net.stage_max_green_s[b], net.stage_min_green_s[b]
            ) + 1e-9:
                g = green[s.start:s.stop].copy()
                g[a - s.start] -= step
                g[b - s.start] += step
                out.append(g)
    return out


def hill_climb(
    scorer: _Scorer,
    start: PlanArrays,
    settings: OptimiserSettings,
    *,
    optimise_splits: bool = True,
    optimise_offsets: bool = True,
) -> tuple[PlanArrays, float, list[float]]:
    """TRANSYT-style hill climb: signal by signal, all its offset moves and split moves are
    scored by *local* evaluation (:func:`greenwave.engine.local_eval.evaluate_moves`: only the links
    up to two links downstream of the signal are re-simulated, from the current steady state);
    the best is taken if its local PI change is negative, and the steady state is moved to it
    locally (:func:`greenwave.engine.local_eval.advance_state`). Passes repeat until none improves.

    Every pass ends with a cold full evaluation, which also resets the steady state: ``history``
    holds exact PIs (of the start plan and after each pass) and never rises; a pass whose exact
    PI came out worse than before it is undone and ends the climb. Returns the plan, its exact
    PI and the history.
    """
    net = scorer.net
    cycle = start.cycle_s
    offsets = np.array(start.offset_s, dtype=np.float64)
    green = np.array(start.green_s, dtype=np.float64)
    best, state = scorer.state(PlanArrays(cycle, offsets, green))
    history = [best]
    moves = _offset_moves(cycle, settings.offset_steps) if optimise_offsets else []
    for _ in range(settings.max_passes):
        improved = False
        pass_start = (offsets.copy(), green.copy(), state, best)
        for i in range(net.n_signals):
            s = net.stages_of(i)
            cand_off = []
            cand_green = []
            for m in moves:
                o = offsets.copy()
                o[i] = (o[i] + m) % cycle
                cand_off.append(o)
                cand_green.append(green)
            if optimise_splits:
                for g in _split_moves(net, i, green, settings.split_step_s):
                    full = green.copy()
                    full[s.start:s.stop] = g
                    cand_off.append(offsets)
                    cand_green.append(full)
            if not cand_off:
                continue
            delta = scorer.moves(state, i, np.array(cand_off), np.array(cand_green))
            j = int(np.argmin(delta))
            if delta[j] < -1e-9 * max(1.0, abs(best)):
                plan = PlanArrays(cycle, cand_off[j].copy(), cand_green[j].copy())
                state = scorer.advance(state, i, plan)  # local update of the steady state
                best = state.pi  # an estimate until the end of the pass
                offsets, green = plan.offset_s, plan.green_s
                improved = True
        if improved:  # exact PI at the end of the pass (cold start)
            exact, exact_state = scorer.state(PlanArrays(cycle, offsets, green))
            if exact > history[-1]:
                offsets, green, state, best = pass_start
                history.append(best)
                break
            best, state = exact, exact_state
        history.append(best)
        if not improved:
            break
    return PlanArrays(cycle, offsets, green), best, history


def optimise(
    net: CompiledNetwork,
    *,
    settings: OptimiserSettings | None = None,
    params: ModelParams | None = None,
    start: PlanArrays | None = None,
    objective: Objective = "delay",
) -> OptimiseResult:
    """Optimise cycle, splits and offsets for least PI = Σ (delay + K·stops).

    ``objective="stops"`` weighs stops heavily (K = 120 s); ``"bandwidth"`` takes the offsets of
    the two-way green-wave bandwidth solution (:mod:`greenwave.engine.bandwidth`, MAXBAND-style
    MILP): splits are tuned with those offsets held, then the band is solved again for the final
    splits, so the plan keeps the widest two-way band its greens allow. ``start`` (for instance
    the network's own plan) is the plan the "before" PI is reported for; when its cycle is the one
    chosen, its splits are the base of the search and, for the delay and stops objectives, it is
    one more hill-climb start.
    """
    settings = settings or OptimiserSettings()
    params = params or ModelParams()
    if objective == "stops":
        params = ModelParams(**{**params.__dict__, "stop_penalty_s": max(params.stop_penalty_s, 120.0)})
    t0 = time.perf_counter()
    scorer = _Scorer(net, params, settings.parallel)
    rng = np.random.default_rng(settings.seed)

    webster = webster_plan(net, settings)
    pi_start_plan = start or webster
    first = scorer.result(pi_start_plan)
    scorer.evaluations += 1

    # 1. common cycle: score candidate cycles with Webster splits and the best of a few offsets,
    #    coarse (20 % apart), then finer (10 %) between the best one's neighbours
    lo, hi = feasible_cycle_range(net, settings)
    cycle_scores: dict[float, float] = {}
    n_probe = 4

    def score_cycles(cycles: list[float]) -> None:
        for c in cycles:
            if c in cycle_scores:
                continue
            g = webster_splits(net, c)
            offs = rng.uniform(0, c, size=(n_probe, net.n_signals)).round()
            offs[0] = 0.0
            scores = scorer.batch(c, offs % c, np.repeat(g[None, :], n_probe, axis=0))
            cycle_scores[float(c)] = float(scores.min())

    coarse = sorted(set(candidate_cycles(lo, hi, 2.0 * settings.cycle_step_s, relative=0.2)) | {webster.cycle_s})
    score_cycles(coarse)
    k = coarse.index(min(cycle_scores, key=cycle_scores.__getitem__))
    score_cycles(candidate_cycles(coarse[max(k - 1, 0)], coarse[min(k + 1, len(coarse) - 1)],
                                  settings.cycle_step_s))
    cycle = min(cycle_scores, key=cycle_scores.__getitem__)
    if start is not None and abs(start.cycle_s - cycle) < 1e-9:
        base_green = np.array(start.green_s)
    else:
        base_green = webster_splits(net, cycle)

    best_plan: PlanArrays | None = None
    best_pi = np.inf
    history: list[float] = []
    if objective == "bandwidth":
        # 2'. the green wave decides the offsets: splits are tuned with the band's offsets held,
        # and the band is then solved again for the final splits
        band = bandwidth_offsets(net, PlanArrays(cycle, np.zeros(net.n_signals), base_green))
        plan, _pi, history = hill_climb(scorer, PlanArrays(cycle, band, base_green.copy()), settings,
                                        optimise_offsets=False)
        best_plan = PlanArrays(cycle, bandwidth_offsets(net, plan), plan.green_s)
    else:
        # 2. global search over offsets (batch evaluator), seeded
        offs = rng.uniform(0, cycle, size=(settings.global_candidates, net.n_signals)).round() % cycle
        offs[0] = 0.0
        starts: list[PlanArrays] = []
        if start is not None and abs(start.cycle_s - cycle) < 1e-9:
            starts.append(start)
        scores = scorer.batch(cycle, offs, np.repeat(base_green[None, :], len(offs), axis=0))
        for j in np.argsort(scores)[: max(1, settings.starts - len(starts))]:
            starts.append(PlanArrays(cycle, offs[j].copy(), base_green.copy()))
        # 3. hill climbs
        for s in starts:
            plan, pi, hist = hill_climb(scorer, s, settings)
            if pi < best_pi:
                best_plan, best_pi, history = plan, pi, hist
    assert best_plan is not None
    final = scorer.result(best_plan)
    return OptimiseResult(
        plan=best_plan,
        pi_start=float(first.pi),
        pi=float(final.pi),
        mean_delay_start_s=float(first.mean_delay_s),
        mean_delay_s=float(final.mean_delay_s),
        evaluations=scorer.evaluations + 1,
        wall_s=time.perf_counter() - t0,
        cycle_scores=cycle_scores,
        history=history,
    )

