"""Local (incremental) evaluation of the timing model: a move scored over the links it touches.

A full evaluation (:func:`greenwave.engine.model.evaluate_state`) gives a plan's steady state
(:class:`~greenwave.engine.model.BaseState`); a candidate that changes one signal is then scored
over that signal's *active set* only (its links and those they feed, :func:`active_sets`), the
rest of the network held at the base state. Cost ∝ |active links| instead of ∝ network size.

:func:`evaluate_local`
    PI_local of candidate plans over a set of active links.
:func:`evaluate_moves`
    Local PI change of candidate moves at one signal against the base plan.
:func:`advance_state`
    The base state moved to a new plan by a local evaluation.

The kernels are in :mod:`greenwave.engine.kernels`; :mod:`greenwave.engine.reference` has the
plain Python versions the tests compare them against.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numba
import numpy as np

from greenwave.engine.arrays import CompiledNetwork, ModelParams, PlanArrays
from greenwave.engine.kernels import LocalWork, NetArrays, Settings, local_pi, moves_parallel, moves_serial
from greenwave.engine.model import BaseState
from greenwave.engine.model_inputs import (
    check_candidates,
    check_cycle,
    kernel_arrays,
    model_settings,
    network_arrays,
    piece_buffer_size,
    read_only,
)
from greenwave.errors import NetworkError, PlanError

__all__ = ["active_sets", "advance_state", "evaluate_local", "evaluate_moves"]


def active_sets(net: CompiledNetwork, depth: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Active link set of every signal, as CSR arrays ``(active_ptr, active_idx)``.

    The set of signal ``i`` (``active_idx[active_ptr[i] : active_ptr[i+1]]``, sorted by link
    index) holds its own links, the links they feed (``link_in_src``; depth 1), the links those
    feed (depth 2), ... up to ``depth``.
    """
    if int(depth) < 0:
        raise ValueError(f"depth = {depth}; it must be ≥ 0")
    arrays = network_arrays(net)
    n_l, n_sig = net.n_links, net.n_signals
    link_signal = np.asarray(net.link_signal, dtype=np.int64)
    if n_l and (link_signal.min() < 0 or link_signal.max() >= n_sig):
        raise NetworkError("CompiledNetwork.link_signal names a signal outside 0..n_signals-1")
    src = arrays["link_in_src"]
    dst = np.repeat(np.arange(n_l, dtype=np.int64), np.diff(arrays["link_in_ptr"]))
    order = np.argsort(src, kind="stable")
    down_ptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n_l))]).astype(np.int64)
    down_idx = dst[order]
    by_signal = np.argsort(link_signal, kind="stable")
    sig_ptr = np.concatenate([[0], np.cumsum(np.bincount(link_signal, minlength=n_sig))]).astype(np.int64)
    sets = []
    for i in range(n_sig):
        level = by_signal[sig_ptr[i]:sig_ptr[i + 1]]
        members = [level]
        for _ in range(int(depth)):
            if level.size == 0:
                break
            level = np.unique(np.concatenate([down_idx[down_ptr[l]:down_ptr[l + 1]] for l in level]))
            members.append(level)
        sets.append(np.unique(np.concatenate(members)))
    ptr = np.concatenate([[0], np.cumsum([s.size for s in sets])]).astype(np.int64)
    idx = np.concatenate(sets).astype(np.int64) if sets else np.zeros(0, dtype=np.int64)
    return read_only(ptr), read_only(idx)


@dataclass(frozen=True)
class _Context:
    """A network's checked arrays and the model settings, as the local evaluators need them."""

    arrays: dict[str, np.ndarray]
    link_F: np.ndarray
    link_L: np.ndarray
    settings: Settings
    n_pieces: int

    def kernel_arrays(self, C: int) -> NetArrays:
        return kernel_arrays(self.arrays, self.link_F, self.link_L, C)


_LOCAL_CACHE: dict[tuple[int, ModelParams], tuple[weakref.ref[CompiledNetwork], _Context]] = {}


def _local_context(net: CompiledNetwork, params: ModelParams) -> _Context:
    """Validated network arrays and settings for the local evaluators, cached per network object
    and params (the network's arrays are read-only by contract), so that a call costs
    ∝ |active links| and not ∝ network size."""
    key = (id(net), params)
    hit = _LOCAL_CACHE.get(key)
    if hit is not None and hit[0]() is net:
        return hit[1]
    arrays = network_arrays(net)
    link_F, link_L, settings = model_settings(net, params)
    ctx = _Context(arrays, read_only(link_F), read_only(link_L), settings, piece_buffer_size(net))
    if len(_LOCAL_CACHE) >= 16:
        _LOCAL_CACHE.clear()
    _LOCAL_CACHE[key] = (weakref.ref(net), ctx)
    return ctx


def evaluate_local(net: CompiledNetwork, state: BaseState, active_links: np.ndarray, offsets: np.ndarray,
                   greens: np.ndarray, params: ModelParams = ModelParams(), *, local_sweeps: int = 3,
                   parallel: bool = True) -> np.ndarray:
    """PI_local of candidate plans over a set of active links, given a base state.

    For each candidate: green profiles of the active links only; departures of the active links
    start as ``state.dep``, their queues as ``state.q_end``; ``local_sweeps`` sweeps over the
    active links in index order, each link's arrivals from the current local departures of
    feeders in the set and the base departures of feeders outside it; each queue carries on
    from its previous sweep. PI_local = Σ over the active links of their PI contribution
    (3600 q (delay + K stops)) in the last sweep. Cost ∝ |active links| · C · local_sweeps.

    Parameters
    ----------
    net
        The compiled network.
    state
        Base state from :func:`~greenwave.engine.model.evaluate_state` at the candidates' cycle length.
    active_links
        Sorted, distinct link indices (int64).
    offsets, greens
        ``(n_cand, n_signals)`` and ``(n_cand, n_stages)`` float64 candidate plans (same rules as
        :func:`evaluate_batch`; only the signals of active links are read by the kernel).
    params
        Model settings (as used for ``state``).
    local_sweeps
        Sweeps over the active links (≥ 1).
    parallel
        Spread the candidates over numba's threads; ``False`` runs on one thread.

    Returns
    -------
    numpy.ndarray
        ``(n_cand,)`` PI_local per candidate (veh·s per hour).
    """
    ctx = _local_context(net, params)
    if not isinstance(state, BaseState):
        raise TypeError(f"state must be a BaseState from evaluate_state, got {type(state).__name__}")
    cycle = float(state.plan.cycle_s)
    C = check_cycle(cycle)
    if state.dep.shape != (net.n_links, C) or state.q_end.shape != (net.n_links,):
        raise ValueError(f"state has departures of shape {state.dep.shape}; this network and cycle need "
                         f"({net.n_links}, {C})")
    n_cand = check_candidates(net, cycle, offsets, greens, ctx.arrays)
    act = np.asarray(active_links)
    if act.ndim != 1 or (act.size and (not np.issubdtype(act.dtype, np.integer) or act[0] < 0
                                       or act[-1] >= net.n_links or np.any(np.diff(act) <= 0))):
        raise ValueError("active_links must be sorted distinct link indices in 0..n_links-1")
    if int(local_sweeps) < 1:
        raise ValueError(f"local_sweeps = {local_sweeps}; it must be ≥ 1")
    out = np.empty(n_cand)
    if n_cand == 0:
        return out
    act = np.ascontiguousarray(act, dtype=np.int64)
    slot = np.full(net.n_links, -1, dtype=np.int64)
    slot[act] = np.arange(act.size, dtype=np.int64)
    args = (C, read_only(np.ascontiguousarray(offsets)), read_only(np.ascontiguousarray(greens)), read_only(act),
            read_only(slot), ctx.kernel_arrays(C), ctx.settings,
            read_only(np.ascontiguousarray(state.dep, dtype=np.float64).reshape(-1)),
            read_only(np.ascontiguousarray(state.q_end, dtype=np.float64)), int(local_sweeps), ctx.n_pieces, out)
    if parallel and n_cand > 1:
        moves_parallel(min(n_cand, numba.get_num_threads()), *args)
    else:
        moves_serial(*args)
    return out


def evaluate_moves(net: CompiledNetwork, base_plan_state: BaseState, signal: int, offsets: np.ndarray,
                   greens: np.ndarray, params: ModelParams = ModelParams(), *, parallel: bool = True,
                   active: tuple[np.ndarray, np.ndarray] | None = None, local_sweeps: int = 3) -> np.ndarray:
    """Local PI change of candidate moves at one signal against the base plan.

    ``delta[c] = PI_local(candidate c) − PI_local(base plan)``, both by :func:`evaluate_local`
    over the active set of ``signal`` (``active`` from :func:`active_sets`, computed with
    depth 2 if not given; pass it when calling repeatedly). Candidates typically differ from
    ``base_plan_state.plan`` at ``signal`` only. Negative = better.
    """
    if not isinstance(base_plan_state, BaseState):
        raise TypeError(f"base_plan_state must be a BaseState, got {type(base_plan_state).__name__}")
    if not 0 <= int(signal) < net.n_signals:
        raise ValueError(f"signal = {signal}; the network has signals 0..{net.n_signals - 1}")
    ptr, idx = active_sets(net) if active is None else active
    links = idx[ptr[signal]:ptr[signal + 1]]
    base = base_plan_state.plan
    if not (isinstance(offsets, np.ndarray) and isinstance(greens, np.ndarray) and offsets.ndim == 2
            and greens.ndim == 2 and offsets.dtype == np.float64 and greens.dtype == np.float64):
        raise PlanError("offsets and greens must be 2-D float64 numpy arrays (n_candidates, n_signals / n_stages)")
    rows_off = np.concatenate([np.asarray(base.offset_s, dtype=np.float64)[None, :], offsets]) \
        if offsets.shape[1] == net.n_signals else offsets
    rows_green = np.concatenate([np.asarray(base.green_s, dtype=np.float64)[None, :], greens]) \
        if greens.shape[1] == net.n_stages else greens
    pi = evaluate_local(net, base_plan_state, links, rows_off, rows_green, params, local_sweeps=local_sweeps,
                        parallel=parallel)
    delta: np.ndarray = pi[1:] - pi[0]
    return delta


def advance_state(net: CompiledNetwork, state: BaseState, plan: PlanArrays, active_links: np.ndarray,
                  params: ModelParams = ModelParams(), *, local_sweeps: int = 3) -> BaseState:
    """The base state moved to ``plan`` by a local evaluation (cheap, approximate).

    ``plan`` is evaluated locally over ``active_links`` (as in :func:`evaluate_local`); its
    final local departures and queues replace those of the active links, and
    ``pi = state.pi − PI_local(state.plan) + PI_local(plan)`` (an estimate; ``pi_link`` of the
    active links is set to NaN, ``cycles_iterated`` to 0). Cost ∝ |active links| plus one
    copy of the departures; refresh with :func:`~greenwave.engine.model.evaluate_state` for an exact state.
    """
    ctx = _local_context(net, params)
    cycle = float(state.plan.cycle_s)
    C = check_cycle(cycle)
    rows_off = np.stack([np.asarray(state.plan.offset_s, dtype=np.float64),
                         np.asarray(plan.offset_s, dtype=np.float64)])
    rows_green = np.stack([np.asarray(state.plan.green_s, dtype=np.float64), np.asarray(plan.green_s, np.float64)])
    check_candidates(net, cycle, rows_off, rows_green, ctx.arrays)
    if abs(float(plan.cycle_s) - cycle) > 1e-9:
        raise PlanError(f"plan cycle {plan.cycle_s} s differs from the state's {cycle} s")
    act = np.ascontiguousarray(active_links, dtype=np.int64)
    if int(local_sweeps) < 1:
        raise ValueError(f"local_sweeps = {local_sweeps}; it must be ≥ 1")
    slot = np.full(net.n_links, -1, dtype=np.int64)
    slot[act] = np.arange(act.size, dtype=np.int64)
    base_dep = np.ascontiguousarray(state.dep, dtype=np.float64).reshape(-1)
    n_a = act.size
    work = LocalWork(np.empty(net.n_stages), np.empty(ctx.n_pieces), np.empty(ctx.n_pieces), np.empty(n_a * C),
                     np.empty(n_a * C), np.empty(n_a), np.empty(C), np.empty(C))
    bundle = ctx.kernel_arrays(C)
    pis = []
    for r in range(2):  # the base plan first, then the new one (its buffers are kept)
        pis.append(local_pi(C, read_only(rows_off[r]), read_only(rows_green[r]), read_only(act), read_only(slot),
                            bundle, ctx.settings, read_only(base_dep),
                            read_only(np.ascontiguousarray(state.q_end, dtype=np.float64)), int(local_sweeps), work))
    dep = np.array(state.dep, dtype=np.float64)
    dep[act] = work.dep.reshape(n_a, C)
    q_end = np.array(state.q_end, dtype=np.float64)
    q_end[act] = work.q_loc
    pi_link = np.array(state.pi_link, dtype=np.float64)
    pi_link[act] = np.nan
    return BaseState(plan=PlanArrays(cycle, np.array(plan.offset_s, dtype=np.float64),
                                     np.array(plan.green_s, dtype=np.float64)),
                     dep=read_only(dep), q_end=read_only(q_end), pi_link=read_only(pi_link),
                     pi=state.pi - pis[0] + pis[1],
                     cycles_iterated=0, converged=False)
