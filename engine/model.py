"""The macroscopic signal timing model (TRANSYT-style), as numba kernels.

Public surface
--------------
:func:`evaluate`
    One plan → :class:`ModelResult` (per-link delay, stops, degree of saturation and totals).
:func:`evaluate_batch`
    Many candidate plans with a common cycle → performance index per candidate, spread over
    the cores with ``numba.prange`` (each thread its own work buffers).
:class:`ModelBuffers`
    Caller-owned work and output buffers for repeated :func:`evaluate` calls.

The model's exact semantics are written out in :mod:`greenwave.engine.reference`, a plain
Python version that the tests compare these kernels against. Units: seconds, vehicles per
second; PI in vehicle-seconds of delay per hour (stops weighted by ``stop_penalty_s``).

The kernels (``_``-prefixed) take flat float64/int64 arrays only. Network and plan arrays are
always passed as read-only views, so every call hits the same compiled signature.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numba import njit, prange

from greenwave.engine.arrays import CompiledNetwork, ModelParams, PlanArrays
from greenwave.errors import NetworkError, PlanError

__all__ = ["BaseState", "ModelBuffers", "ModelResult", "active_sets", "evaluate", "evaluate_batch",
           "evaluate_local", "evaluate_moves", "evaluate_state", "advance_state"]

_N_TOTALS = 6  # pi, total delay, total stops, mean delay, cycles iterated, converged
_SUM_TOL_S = 1e-6
# a bin counts as green for the end-of-green test (sneakers) when g > this: rounding slivers of
# a window edge (~1e-15) must not move the green end by a bin
_GREEN_EPS = 1e-9


@dataclass(frozen=True)
class ModelResult:
    """What the model says about one plan.

    Per link (arrays of shape ``(n_links,)``)
        ``delay_s`` mean delay per vehicle (uniform + random), ``uniform_delay_s``,
        ``random_delay_s`` (HCM d2), ``stops`` (stops per vehicle, 0..1),
        ``degree_of_saturation`` (q / c; inf where the link never gets green).
    Totals
        ``pi`` performance index Σ 3600 q (delay + K stops) (veh·s per hour),
        ``total_delay_veh_h_per_h``, ``total_stops_per_h``, ``mean_delay_s`` (flow-weighted),
        ``cycles_iterated`` (cycle sweeps run) and ``converged`` (steady state reached before
        ``max_cycles``).
    """

    delay_s: np.ndarray
    uniform_delay_s: np.ndarray
    random_delay_s: np.ndarray
    stops: np.ndarray
    degree_of_saturation: np.ndarray
    pi: float
    total_delay_veh_h_per_h: float
    total_stops_per_h: float
    mean_delay_s: float
    cycles_iterated: int
    converged: bool


@dataclass(frozen=True)
class ModelBuffers:
    """Work and output buffers of :func:`evaluate` for one network and cycle length.

    Make them once with :meth:`allocate` and pass them as ``out=`` to avoid allocations in a
    loop. The :class:`ModelResult` returned then *shares* the per-link output arrays, which the
    next call with the same buffers overwrites.
    """

    n_links: int
    n_stages: int
    cycle_bins: int
    stage_start: np.ndarray  # (n_stages,)
    piece_a: np.ndarray  # (2 * max stages per link,)
    piece_b: np.ndarray
    green: np.ndarray  # (n_links * C,)
    dep: np.ndarray  # (n_links * C,)
    arr: np.ndarray  # (C,) arrivals
    mix: np.ndarray  # (C,) share-weighted feeder departures
    link_work: np.ndarray  # (5, n_links): q end, Σ q, min q, Σ stopped, Σ arrivals
    uniform: np.ndarray
    random: np.ndarray
    delay: np.ndarray
    stops: np.ndarray
    x: np.ndarray
    totals: np.ndarray  # (6,)
    pi_link: np.ndarray  # (n_links,) PI contribution of each link

    @classmethod
    def allocate(cls, net: CompiledNetwork, cycle_s: float) -> ModelBuffers:
        """Fresh buffers for ``net`` at cycle length ``cycle_s`` (s)."""
        n, C = net.n_links, int(round(cycle_s))
        pieces = max(1, 2 * _max_stages_per_link(net))
        return cls(
            n_links=n, n_stages=net.n_stages, cycle_bins=C,
            stage_start=np.empty(net.n_stages), piece_a=np.empty(pieces), piece_b=np.empty(pieces),
            green=np.empty(n * C), dep=np.empty(n * C), arr=np.empty(C), mix=np.empty(C), link_work=np.empty((5, n)),
            uniform=np.empty(n), random=np.empty(n), delay=np.empty(n), stops=np.empty(n), x=np.empty(n),
            totals=np.empty(_N_TOTALS), pi_link=np.empty(n),
        )


# ------------------------------------------------------------------------------------------
# kernels


@njit(cache=True)
def _spread(g, base, C, a, b):  # pragma: no cover - njit (covered with NUMBA_DISABLE_JIT=1)
    """Add the overlap of [a, b) (0 ≤ a < b ≤ C) with each bin [t, t+1) to g[base + t]."""
    t0 = int(math.floor(a))
    t1 = int(math.ceil(b)) - 1
    if t1 > C - 1:
        t1 = C - 1
    for t in range(t0, t1 + 1):
        lo = a if a > t else float(t)
        hi = b if b < t + 1 else float(t + 1)
        if hi > lo:
            g[base + t] += hi - lo


@njit(cache=True)
def _signal_stage_starts(i, offsets, greens, sig_stage_ptr, stage_ig, stage_start):  # pragma: no cover - njit
    """Green start of each stage of signal i (s, not reduced modulo C) into stage_start."""
    s = offsets[i]
    for k in range(sig_stage_ptr[i], sig_stage_ptr[i + 1]):
        stage_start[k] = s
        s += greens[k] + stage_ig[k]


@njit(cache=True)
def _link_green(l, C, greens, link_stage_ptr, link_stage_idx, lag, gain, stage_start, piece_a, piece_b,
                g, base):  # pragma: no cover - njit
    """Effective green fraction of link l per 1-s bin into g[base : base + C].

    Needs stage_start of the stages showing the link green (:func:`_signal_stage_starts`).
    """
    for t in range(C):
        g[base + t] = 0.0
    Cf = float(C)
    m = 0
    for j in range(link_stage_ptr[l], link_stage_ptr[l + 1]):
        k = link_stage_idx[j]
        length = greens[k] + gain - lag
        if length <= 0.0:
            continue
        if length > Cf:
            length = Cf
        a = (stage_start[k] + lag) % Cf
        if a >= Cf or a < 0.0:  # rounding of a tiny negative number
            a = 0.0
        b = a + length
        if b <= Cf:
            piece_a[m] = a
            piece_b[m] = b
            m += 1
        else:  # wraps around the cycle end
            piece_a[m] = a
            piece_b[m] = Cf
            piece_a[m + 1] = 0.0
            piece_b[m + 1] = b - Cf
            m += 2
    for p in range(1, m):  # insertion sort by start
        ka = piece_a[p]
        kb = piece_b[p]
        q = p - 1
        while q >= 0 and piece_a[q] > ka:
            piece_a[q + 1] = piece_a[q]
            piece_b[q + 1] = piece_b[q]
            q -= 1
        piece_a[q + 1] = ka
        piece_b[q + 1] = kb
    p = 0
    while p < m:  # merge overlapping pieces, then spread over the bins
        a = piece_a[p]
        b = piece_b[p]
        p += 1
        while p < m and piece_a[p] <= b:
            if piece_b[p] > b:
                b = piece_b[p]
            p += 1
        _spread(g, base, C, a, b)


@njit(cache=True)
def _green_profiles(C, offsets, greens, sig_stage_ptr, stage_ig, link_stage_ptr, link_stage_idx,
                    lag, gain, stage_start, piece_a, piece_b, g):  # pragma: no cover - njit
    """Effective green fraction per link and 1-s bin into g (n_links * C)."""
    for i in range(offsets.shape[0]):
        _signal_stage_starts(i, offsets, greens, sig_stage_ptr, stage_ig, stage_start)
    n_links = link_stage_ptr.shape[0] - 1
    for l in range(n_links):
        _link_green(l, C, greens, link_stage_ptr, link_stage_idx, lag, gain, stage_start, piece_a, piece_b,
                    g, l * C)


@njit(cache=True)
def _disperse(u, C, F, lag, entry, arr):  # pragma: no cover - njit
    """arr[t] = entry + Robertson-dispersed profile of u (cyclic steady state).

    ``lag`` is L mod C (0 ≤ lag < C). Closed form at bin 0, then the recursion
    A(t) = F u(t − L) + (1 − F) A(t − 1); the index loops are split so they need no modulo.
    """
    r = 1.0 - F
    start = C - lag if lag > 0 else 0  # (0 − L) mod C
    acc = 0.0
    p = 1.0
    for i in range(start, -1, -1):  # k = 0, 1, ... : bins start, start − 1, ..., 0
        acc += p * u[i]
        p *= r
    for i in range(C - 1, start, -1):  # then C − 1, ..., start + 1
        acc += p * u[i]
        p *= r
    A = F * acc / (1.0 - p)  # p = (1 − F)^C
    arr[0] = entry + A
    first = lag if lag > 1 else 1
    for t in range(1, first):  # t < L: source bin t − L + C
        A = F * u[t - lag + C] + r * A
        arr[t] = entry + A
    for t in range(first, C):
        A = F * u[t - lag] + r * A
        arr[t] = entry + A


@njit(cache=True)
def _link_arrivals(l, C, link_entry, link_F, link_lag, link_in_ptr, link_in_src, link_in_share,
                   slot, dep_local, dep_base, mix, arr):  # pragma: no cover - njit
    """Arrival profile of link l into arr (C,).

    Feeder ``src``'s departures are read from ``dep_local[slot[src] * C :]`` where
    ``slot[src] ≥ 0`` and from ``dep_base[src * C :]`` otherwise; an empty ``slot`` means the
    identity (every feeder read from ``dep_local``, the full model).
    """
    e = link_entry[l]
    if link_in_ptr[l + 1] == link_in_ptr[l]:
        for t in range(C):
            arr[t] = e
        return
    # all feeders share link l's dispersion: mix their departures, disperse once
    for t in range(C):
        mix[t] = 0.0
    identity = slot.shape[0] == 0
    for j in range(link_in_ptr[l], link_in_ptr[l + 1]):
        src = link_in_src[j]
        sh = link_in_share[j]
        k = src if identity else slot[src]
        if k >= 0:
            sb = k * C
            for t in range(C):
                mix[t] += sh * dep_local[sb + t]
        else:
            sb = src * C
            for t in range(C):
                mix[t] += sh * dep_base[sb + t]
    _disperse(mix, C, link_F[l], link_lag[l], e, arr)


@njit(cache=True)
def _eff_sat(C, s, link_dis, l, g, gbase):  # pragma: no cover - njit
    """Link l's saturation flow under this plan: ``s − b + min(b, (a0 n + a1 G) / G)`` with
    (b, a0, a1) = ``link_dis[l, 1:4]`` (shared-lane blocking), G its effective green per cycle and
    n its green windows (see :mod:`greenwave.engine.arrays`)."""
    b = link_dis[l, 1]
    if b <= 0.0:
        return s
    green = 0.0
    ends = 0
    for t in range(C):
        gt = g[gbase + t]
        green += gt
        if gt > _GREEN_EPS and g[gbase + (t + 1) % C] <= _GREEN_EPS:
            ends += 1
    if green <= 0.0:
        return s
    cap = (link_dis[l, 2] * ends + link_dis[l, 3] * green) / green
    return s - b + (cap if cap < b else b)


@njit(cache=True)
def _link_queue(C, s, sneak, q0, arr, g, gbase, dep, dbase):  # pragma: no cover - njit
    """One cycle of link l's vertical queue from q0: departures into dep[dbase : dbase + C].

    In the last bin of each effective green window (g(t) > ε, g((t+1) mod C) ≤ ε, ε = 1e-9) up to
    ``sneak`` more vehicles leave the queue (permitted turners clearing at the end of green).

    Returns (queue at cycle end, Σ_t q(t), min_t q(t), arrivals meeting a queue or red, arrivals,
    Σ_t |new − previous departures|).
    """
    q = q0
    sq = 0.0
    dd = 0.0
    mq = np.inf
    st = 0.0
    sa = 0.0
    for t in range(C):
        a = arr[t]
        gt = g[gbase + t]
        sq += q
        if q < mq:
            mq = q
        if q > 1e-9:
            st += a
        else:
            st += a * (1.0 - gt)
        sa += a
        qn = q + a - s * gt
        if sneak > 0.0 and gt > _GREEN_EPS and g[gbase + (t + 1) % C] <= _GREEN_EPS:
            qn -= sneak
        if qn < 0.0:
            qn = 0.0
        d = q + a - qn
        dd += abs(d - dep[dbase + t])
        dep[dbase + t] = d
        q = qn
    return q, sq, mq, st, sa, dd


@njit(cache=True)
def _link_result(C, sat, sneak, flow, sum_q, min_q, stopped, arrived, g, gbase, stop_penalty,
                 period_h):  # pragma: no cover - njit
    """One link's results from its last sweep.

    Capacity = sat · Σ g / C + sneak · (green-window ends per cycle) / C.
    Returns (x, uniform delay, random delay, stops, delay, PI contribution 3600 q (d + K stops)).
    """
    green_s = 0.0
    for t in range(C):
        green_s += g[gbase + t]
    cap = sat * green_s / C
    if sneak > 0.0:
        ends = 0
        for t in range(C):
            if g[gbase + t] > _GREEN_EPS and g[gbase + (t + 1) % C] <= _GREEN_EPS:
                ends += 1
        cap += sneak * ends / C
    q = flow
    x = q / cap if cap > 0.0 else np.inf
    uniform = 0.0
    random = 0.0
    if q > 0.0:
        uniform = (sum_q - C * min_q) / (q * C)
        if cap > 0.0:
            random = 900.0 * period_h * ((x - 1.0) + math.sqrt(
                (x - 1.0) ** 2 + 4.0 * x / (3600.0 * cap * period_h)))
        else:
            random = 3600.0
    stops = 0.0
    if arrived > 0.0:
        sf = stopped / arrived
        stops = sf if sf < 1.0 else 1.0
    delay = uniform + random
    return x, uniform, random, stops, delay, 3600.0 * q * (delay + stop_penalty * stops)


@njit(cache=True)
def _evaluate_kernel(C, offsets, greens, sig_stage_ptr, stage_ig, link_sat, link_dis, link_flow, link_entry,
                     link_F, link_lag, link_stage_ptr, link_stage_idx, link_in_ptr, link_in_src,
                     link_in_share, lag, gain, stop_penalty, period_h, warmup, max_cycles, tol, warm,
                     stage_start, piece_a, piece_b, g, dep, arr, mix, link_work,
                     uniform, random, delay, stops, x, pi_link, totals):  # pragma: no cover - njit
    """Steady-state cycle profiles of one plan; per-link results and totals into the outputs.

    Cold start (``warm`` false): departures = demand flow, queues 0. Warm start: from the
    departures in ``dep`` and the queues in ``link_work[0]`` as given.
    totals = [pi, total delay (veh·h/h), total stops (/h), mean delay (s), sweeps, converged].
    """
    _green_profiles(C, offsets, greens, sig_stage_ptr, stage_ig, link_stage_ptr, link_stage_idx,
                    lag, gain, stage_start, piece_a, piece_b, g)
    n_links = link_flow.shape[0]
    s_eff = np.empty(n_links)  # saturation flows under this plan's greens (blocking), once
    for l in range(n_links):
        s_eff[l] = _eff_sat(C, link_sat[l], link_dis, l, g, l * C)
    q_end = link_work[0]
    sum_q = link_work[1]
    min_q = link_work[2]
    stopped = link_work[3]
    arrived = link_work[4]
    if not warm:
        for l in range(n_links):
            base = l * C
            for t in range(C):
                dep[base + t] = link_flow[l]
            q_end[l] = 0.0
    identity = np.empty(0, dtype=np.int64)

    sweeps = 0
    converged = False
    while True:
        sweeps += 1
        biggest = 0.0
        for l in range(n_links):
            base = l * C
            _link_arrivals(l, C, link_entry, link_F, link_lag, link_in_ptr, link_in_src, link_in_share,
                           identity, dep, dep, mix, arr)
            q0 = q_end[l]
            q, sq, mq, st, sa, dd = _link_queue(C, s_eff[l], link_dis[l, 0], q0, arr, g, base, dep, base)
            # steady when neither the queue nor the departure profile changes any more (a
            # platoon still travelling down the index order shows in the departures only)
            d = max(abs(q - q0), dd)
            if d > biggest:
                biggest = d
            q_end[l] = q
            sum_q[l] = sq
            min_q[l] = mq
            stopped[l] = st
            arrived[l] = sa
        if sweeps >= warmup and biggest < tol:
            converged = True
            break
        if sweeps >= max_cycles:
            break

    pi = 0.0
    tot_delay = 0.0
    tot_stops = 0.0
    tot_q = 0.0
    for l in range(n_links):
        xl, ul, rl, sl, dl, pl = _link_result(C, s_eff[l], link_dis[l, 0], link_flow[l], sum_q[l], min_q[l],
                                              stopped[l], arrived[l], g, l * C, stop_penalty, period_h)
        x[l] = xl
        uniform[l] = ul
        random[l] = rl
        stops[l] = sl
        delay[l] = dl
        pi_link[l] = pl
        q = link_flow[l]
        pi += pl
        tot_delay += q * dl
        tot_stops += 3600.0 * q * sl
        tot_q += q
    totals[0] = pi
    totals[1] = tot_delay
    totals[2] = tot_stops
    totals[3] = tot_delay / tot_q if tot_q > 0.0 else 0.0
    totals[4] = sweeps
    totals[5] = 1.0 if converged else 0.0


@njit(cache=True)
def _batch_chunk(chunk, n_chunks, C, offsets, greens, sig_stage_ptr, stage_ig, link_sat, link_dis, link_flow,
                 link_entry, link_F, link_lag, link_stage_ptr, link_stage_idx, link_in_ptr,
                 link_in_src, link_in_share, lag, gain, stop_penalty, period_h, warmup,
                 max_cycles, tol, n_pieces, out_pi):  # pragma: no cover - njit
    """Score candidates chunk, chunk + n_chunks, ... with buffers private to this chunk."""
    n_links = link_flow.shape[0]
    stage_start = np.empty(greens.shape[1])
    piece_a = np.empty(n_pieces)
    piece_b = np.empty(n_pieces)
    g = np.empty(n_links * C)
    dep = np.empty(n_links * C)
    arr = np.empty(C)
    mix = np.empty(C)
    link_work = np.empty((5, n_links))
    uniform = np.empty(n_links)
    random = np.empty(n_links)
    delay = np.empty(n_links)
    stops = np.empty(n_links)
    x = np.empty(n_links)
    pi_link = np.empty(n_links)
    totals = np.empty(_N_TOTALS)
    for i in range(chunk, offsets.shape[0], n_chunks):
        _evaluate_kernel(C, offsets[i], greens[i], sig_stage_ptr, stage_ig, link_sat, link_dis, link_flow,
                         link_entry, link_F, link_lag, link_stage_ptr, link_stage_idx, link_in_ptr,
                         link_in_src, link_in_share, lag, gain, stop_penalty, period_h, warmup,
                         max_cycles, tol, False, stage_start, piece_a, piece_b, g, dep, arr, mix, link_work,
                         uniform, random, delay, stops, x, pi_link, totals)
        out_pi[i] = totals[0]


@njit(cache=True, parallel=True)
def _batch_parallel(n_chunks, C, offsets, greens, sig_stage_ptr, stage_ig, link_sat, link_dis, link_flow,
                    link_entry, link_F, link_lag, link_stage_ptr, link_stage_idx, link_in_ptr,
                    link_in_src, link_in_share, lag, gain, stop_penalty, period_h, warmup,
                    max_cycles, tol, n_pieces, out_pi):  # pragma: no cover - njit
    for chunk in prange(n_chunks):
        _batch_chunk(chunk, n_chunks, C, offsets, greens, sig_stage_ptr, stage_ig, link_sat, link_dis,
                     link_flow, link_entry, link_F, link_lag, link_stage_ptr, link_stage_idx,
                     link_in_ptr, link_in_src, link_in_share, lag, gain, stop_penalty, period_h,
                     warmup, max_cycles, tol, n_pieces, out_pi)


@njit(cache=True)
def _batch_serial(C, offsets, greens, sig_stage_ptr, stage_ig, link_sat, link_dis, link_flow, link_entry,
                  link_F, link_lag, link_stage_ptr, link_stage_idx, link_in_ptr, link_in_src,
                  link_in_share, lag, gain, stop_penalty, period_h, warmup, max_cycles, tol,
                  n_pieces, out_pi):  # pragma: no cover - njit
    _batch_chunk(0, 1, C, offsets, greens, sig_stage_ptr, stage_ig, link_sat, link_dis, link_flow, link_entry,
                 link_F, link_lag, link_stage_ptr, link_stage_idx, link_in_ptr, link_in_src,
                 link_in_share, lag, gain, stop_penalty, period_h, warmup, max_cycles, tol,
                 n_pieces, out_pi)


@njit(cache=True)
def _local_pi(C, offsets, greens, active, slot, sig_stage_ptr, stage_ig, link_signal, link_sat, link_dis, link_flow,
              link_entry, link_F, link_lag, link_stage_ptr, link_stage_idx, link_in_ptr, link_in_src,
              link_in_share, base_dep, base_q, lag, gain, stop_penalty, period_h, n_sweeps,
              stage_start, piece_a, piece_b, g, dep, q_loc, arr, mix):  # pragma: no cover - njit
    """PI_local of one plan over the active links ``active`` (sorted), given a base state.

    ``slot[l]`` is the position of link l in ``active`` (−1 outside). Local departures start as
    the base departures, local queues as the base end-of-cycle queues; ``n_sweeps`` sweeps over
    the active links in index order, feeders outside the set read from ``base_dep``.
    Returns Σ over the active links of their PI contribution in the last sweep.
    """
    n_a = active.shape[0]
    s_loc = np.empty(n_a)
    for a in range(n_a):
        l = active[a]
        _signal_stage_starts(link_signal[l], offsets, greens, sig_stage_ptr, stage_ig, stage_start)
        _link_green(l, C, greens, link_stage_ptr, link_stage_idx, lag, gain, stage_start, piece_a, piece_b,
                    g, a * C)
        s_loc[a] = _eff_sat(C, link_sat[l], link_dis, l, g, a * C)
        q_loc[a] = base_q[l]
        sb = l * C
        db = a * C
        for t in range(C):
            dep[db + t] = base_dep[sb + t]
    pi = 0.0
    for sweep in range(n_sweeps):
        last = sweep == n_sweeps - 1
        for a in range(n_a):
            l = active[a]
            _link_arrivals(l, C, link_entry, link_F, link_lag, link_in_ptr, link_in_src, link_in_share,
                           slot, dep, base_dep, mix, arr)
            q, sq, mq, st, sa, _ = _link_queue(C, s_loc[a], link_dis[l, 0], q_loc[a], arr, g, a * C, dep, a * C)
            q_loc[a] = q
            if last:
                res = _link_result(C, s_loc[a], link_dis[l, 0], link_flow[l], sq, mq, st, sa, g, a * C, stop_penalty,
                                   period_h)
                pi += res[5]
    return pi


@njit(cache=True)
def _moves_chunk(chunk, n_chunks, C, offsets, greens, active, slot, sig_stage_ptr, stage_ig, link_signal,
                 link_sat, link_dis, link_flow, link_entry, link_F, link_lag, link_stage_ptr, link_stage_idx,
                 link_in_ptr, link_in_src, link_in_share, base_dep, base_q, lag, gain, stop_penalty,
                 period_h, n_sweeps, n_pieces, out_pi):  # pragma: no cover - njit
    """PI_local of candidates chunk, chunk + n_chunks, ... with buffers private to this chunk."""
    n_a = active.shape[0]
    stage_start = np.empty(greens.shape[1])
    piece_a = np.empty(n_pieces)
    piece_b = np.empty(n_pieces)
    g = np.empty(n_a * C)
    dep = np.empty(n_a * C)
    q_loc = np.empty(n_a)
    arr = np.empty(C)
    mix = np.empty(C)
    for i in range(chunk, offsets.shape[0], n_chunks):
        out_pi[i] = _local_pi(C, offsets[i], greens[i], active, slot, sig_stage_ptr, stage_ig, link_signal,
                              link_sat, link_dis, link_flow, link_entry, link_F, link_lag, link_stage_ptr,
                              link_stage_idx, link_in_ptr, link_in_src, link_in_share, base_dep, base_q,
                              lag, gain, stop_penalty, period_h, n_sweeps, stage_start, piece_a, piece_b,
                              g, dep, q_loc, arr, mix)


@njit(cache=True, parallel=True)
def _moves_parallel(n_chunks, C, offsets, greens, active, slot, sig_stage_ptr, stage_ig, link_signal,
                    link_sat, link_dis, link_flow, link_entry, link_F, link_lag, link_stage_ptr, link_stage_idx,
                    link_in_ptr, link_in_src, link_in_share, base_dep, base_q, lag, gain, stop_penalty,
                    period_h, n_sweeps, n_pieces, out_pi):  # pragma: no cover - njit
    for chunk in prange(n_chunks):
        _moves_chunk(chunk, n_chunks, C, offsets, greens, active, slot, sig_stage_ptr, stage_ig, link_signal,
                     link_sat, link_dis, link_flow, link_entry, link_F, link_lag, link_stage_ptr, link_stage_idx,
                     link_in_ptr, link_in_src, link_in_share, base_dep, base_q, lag, gain, stop_penalty,
                     period_h, n_sweeps, n_pieces, out_pi)


@njit(cache=True)
def _moves_serial(C, offsets, greens, active, slot, sig_stage_ptr, stage_ig, link_signal, link_sat, link_dis,
                  link_flow, link_entry, link_F, link_lag, link_stage_ptr, link_stage_idx, link_in_ptr,
                  link_in_src, link_in_share, base_dep, base_q, lag, gain, stop_penalty, period_h,
                  n_sweeps, n_pieces, out_pi):  # pragma: no cover - njit
    _moves_chunk(0, 1, C, offsets, greens, active, slot, sig_stage_ptr, stage_ig, link_signal, link_sat, link_dis,
                 link_flow, link_entry, link_F, link_lag, link_stage_ptr, link_stage_idx, link_in_ptr,
                 link_in_src, link_in_share, base_dep, base_q, lag, gain, stop_penalty, period_h, n_sweeps,
                 n_pieces, out_pi)


# ------------------------------------------------------------------------------------------
# validation and wrappers


def _ro(a: np.ndarray) -> np.ndarray:
    """A read-only view (one compiled signature whether the caller's array is writable or not)."""
    v = a.view()
    v.flags.writeable = False
    return v


def _max_stages_per_link(net: CompiledNetwork) -> int:
    ptr = np.asarray(net.link_stage_ptr)
    return int(np.max(np.diff(ptr))) if ptr.shape[0] > 1 else 0


_NET_FIELDS_F64 = ("stage_intergreen_s", "link_sat_flow_vps", "link_flow_vps", "link_entry_flow_vps",
                   "link_travel_s", "link_in_share")
_NET_FIELDS_I64 = ("sig_stage_ptr", "link_signal", "link_stage_ptr", "link_stage_idx", "link_in_ptr",
                   "link_in_src")


def _optional_rows(net: CompiledNetwork, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    a = getattr(net, name, None)
    if a is None:
        return None
    if not isinstance(a, np.ndarray) or a.dtype != np.float64 or a.shape != shape:
        got = f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        raise NetworkError(f"CompiledNetwork.{name} must be a float64 array of shape {shape} or None, got {got}")
    if not np.all(np.isfinite(a) & (a >= 0)):
        raise NetworkError(f"CompiledNetwork.{name} must be finite and ≥ 0")
    return a


def _discharge_array(net: CompiledNetwork, n_l: int) -> np.ndarray:
    """``(n_links, 4)``: sneakers, then the shared-lane blocking b, a0, a1 (zeros where absent)."""
    out = np.zeros((n_l, 4))
    sneak = _optional_rows(net, "link_sneakers_veh", (n_l,))
    if sneak is not None:
        out[:, 0] = sneak
    block = _optional_rows(net, "link_block", (n_l, 3))
    if block is not None:
        if np.any(block[:, 0] > np.asarray(net.link_sat_flow_vps) + 1e-12):
            raise NetworkError("CompiledNetwork.link_block: the blocked part b exceeds the link's saturation flow")
        out[:, 1:] = block
    return _ro(out)


def _network_arrays(net: CompiledNetwork) -> dict[str, np.ndarray]:
    """Check the network's dtypes and shapes; its arrays as contiguous read-only views."""
    out: dict[str, np.ndarray] = {}
    for name in _NET_FIELDS_F64 + _NET_FIELDS_I64:
        a = getattr(net, name)
        want = np.float64 if name in _NET_FIELDS_F64 else np.int64
        if not isinstance(a, np.ndarray) or a.dtype != want or a.ndim != 1:
            got = f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
            raise NetworkError(f"CompiledNetwork.{name} must be a 1-D {np.dtype(want)} array, got {got}")
        out[name] = _ro(np.ascontiguousarray(a))
    n_sig, n_st, n_l = net.n_signals, net.n_stages, net.n_links
    out["link_discharge"] = _discharge_array(net, n_l)
    n_in = out["link_in_src"].shape[0]
    expected = {"sig_stage_ptr": n_sig + 1, "stage_intergreen_s": n_st, "link_sat_flow_vps": n_l,
                "link_flow_vps": n_l, "link_entry_flow_vps": n_l, "link_travel_s": n_l,
                "link_stage_ptr": n_l + 1, "link_in_ptr": n_l + 1, "link_in_share": n_in}
    for name, size in expected.items():
        if out[name].shape[0] != size:
            raise NetworkError(f"CompiledNetwork.{name} has {out[name].shape[0]} entries, expected {size}")
    for ptr, target in (("sig_stage_ptr", n_st), ("link_stage_ptr", out["link_stage_idx"].shape[0]),
                        ("link_in_ptr", n_in)):
        p = out[ptr]
        if p[0] != 0 or p[-1] != target or np.any(np.diff(p) < 0):
            raise NetworkError(f"CompiledNetwork.{ptr} must rise from 0 to {target}")
    if n_st and (np.any(out["link_stage_idx"] < 0) or np.any(out["link_stage_idx"] >= n_st)):
        raise NetworkError("CompiledNetwork.link_stage_idx names a stage outside 0..n_stages-1")
    if n_in and (np.any(out["link_in_src"] < 0) or np.any(out["link_in_src"] >= n_l)):
        raise NetworkError("CompiledNetwork.link_in_src names a link outside 0..n_links-1")
    return out


def _model_settings(net: CompiledNetwork, params: ModelParams) -> tuple[np.ndarray, np.ndarray, tuple[Any, ...]]:
    """Per-link dispersion factor F and lag L, and the scalar settings in kernel order."""
    if not isinstance(params, ModelParams):
        raise TypeError(f"params must be a ModelParams, got {type(params).__name__}")
    problems = []
    if not (params.alpha >= 0 and math.isfinite(params.alpha)):
        problems.append(f"alpha = {params.alpha} (must be ≥ 0)")
    if not (params.beta >= 0 and math.isfinite(params.beta)):
        problems.append(f"beta = {params.beta} (must be ≥ 0)")
    if not (params.analysis_period_h > 0 and math.isfinite(params.analysis_period_h)):
        problems.append(f"analysis_period_h = {params.analysis_period_h} (must be > 0)")
    if not (math.isfinite(params.start_lag_s) and math.isfinite(params.end_gain_s)):
        problems.append("start_lag_s and end_gain_s must be finite")
    if not math.isfinite(params.stop_penalty_s):
        problems.append(f"stop_penalty_s = {params.stop_penalty_s} (must be finite)")
    if int(params.max_cycles) < 1 or int(params.warmup_cycles) < 0:
        problems.append("need max_cycles ≥ 1 and warmup_cycles ≥ 0")
    if not params.tol_veh >= 0:
        problems.append(f"tol_veh = {params.tol_veh} (must be ≥ 0)")
    if problems:
        raise ValueError("invalid ModelParams: " + "; ".join(problems))
    travel = np.asarray(net.link_travel_s, dtype=np.float64)
    if np.any(~np.isfinite(travel)) or np.any(travel < 0):
        raise NetworkError("CompiledNetwork.link_travel_s must be finite and ≥ 0")
    link_F = 1.0 / (1.0 + params.alpha * params.beta * travel)
    link_L = np.round(params.beta * travel).astype(np.int64)  # half to even, like round()
    scalars = (float(params.start_lag_s), float(params.end_gain_s), float(params.stop_penalty_s),
               float(params.analysis_period_h), int(params.warmup_cycles), int(params.max_cycles),
               float(params.tol_veh))
    return link_F, link_L, scalars


def _check_cycle(cycle_s: float) -> int:
    try:
        c = float(cycle_s)
    except (TypeError, ValueError):
        raise PlanError(f"cycle_s must be a number of seconds, got {cycle_s!r}") from None
    if not (math.isfinite(c) and c > 0):
        raise PlanError(f"cycle_s = {cycle_s} s; the cycle must be a finite positive length")
    C = int(round(c))
    if C < 1:
        raise PlanError(f"cycle_s = {cycle_s} s rounds to {C} one-second bins; use a cycle of at least 1 s")
    return C


def _check_plan_rows(net: CompiledNetwork, cycle: float, offsets: np.ndarray, greens: np.ndarray,
                     stage_ig: np.ndarray, sig_ptr: np.ndarray, what: Callable[[int], str]) -> None:
    """Range checks of 2-D offsets (n_cand, n_signals) and greens (n_cand, n_stages)."""
    n_cand = offsets.shape[0]
    cum = np.zeros((n_cand, greens.shape[1] + 1))
    np.cumsum(greens + stage_ig[None, :], axis=1, out=cum[:, 1:])
    sums = cum[:, sig_ptr[1:]] - cum[:, sig_ptr[:-1]]
    # one pass of whole-array tests first (hot path: optimisers call this for every batch); NaN
    # fails every comparison, so it falls through to the detailed checks below
    if ((offsets >= 0) & (offsets < cycle)).all() and (greens >= 0).all() and np.isfinite(greens).all() \
            and (np.abs(sums - cycle) <= _SUM_TOL_S).all():
        return
    for name, a in (("offset", offsets), ("green", greens)):
        bad = np.argwhere(~np.isfinite(a))
        if bad.size:
            cand, col = bad[0]
            raise PlanError(f"{what(cand)}: {name} {a[cand, col]} at column {col} is not a finite number")
    bad = np.argwhere((offsets < 0) | (offsets >= cycle))
    if bad.size:
        cand, i = bad[0]
        raise PlanError(f"{what(cand)}: offset of signal {net.signal_ids[i]!r} is {offsets[cand, i]} s; "
                        f"it must lie in [0, {cycle}) (take it modulo the cycle)")
    bad = np.argwhere(greens < 0)
    if bad.size:
        cand, k = bad[0]
        i = int(np.searchsorted(sig_ptr, k, side="right")) - 1
        raise PlanError(f"{what(cand)}: stage {k - sig_ptr[i]} of signal {net.signal_ids[i]!r} has a negative "
                        f"green of {greens[cand, k]} s")
    bad = np.argwhere(np.abs(sums - cycle) > _SUM_TOL_S)
    if bad.size:
        cand, i = bad[0]
        n_st = int(sig_ptr[i + 1] - sig_ptr[i])
        raise PlanError(f"{what(cand)}: signal {net.signal_ids[i]!r} runs Σ(green + intergreen) = "
                        f"{sums[cand, i]:.6f} s over its {n_st} stage(s) but the cycle is {cycle} s; "
                        f"change its greens by {cycle - sums[cand, i]:+.6f} s in total")


def _plan_vector(a: object, name: str, size: int, what: str) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.dtype != np.float64:
        got = f"{a.dtype} array" if isinstance(a, np.ndarray) else type(a).__name__
        raise PlanError(f"{name} must be a float64 numpy array, got {got}")
    if a.shape != (size,):
        raise PlanError(f"{name} has shape {a.shape} but the network has {size} {what}")
    return a


def _check_candidates(net: CompiledNetwork, cycle: float, offsets: np.ndarray, greens: np.ndarray,
                      arrays: dict[str, np.ndarray]) -> int:
    """Dtype, shape and range checks of candidate rows; their number."""
    for name, a, cols, what in (("offsets", offsets, net.n_signals, "signals"),
                                ("greens", greens, net.n_stages, "stages")):
        if not isinstance(a, np.ndarray) or a.dtype != np.float64:
            got = f"{a.dtype} array" if isinstance(a, np.ndarray) else type(a).__name__
            raise PlanError(f"{name} must be a float64 numpy array, got {got}")
        if a.ndim != 2 or a.shape[1] != cols:
            raise PlanError(f"{name} has shape {a.shape}; expected (n_candidates, {cols}) for {cols} {what}")
    if offsets.shape[0] != greens.shape[0]:
        raise PlanError(f"offsets has {offsets.shape[0]} candidates but greens has {greens.shape[0]}")
    n_cand = int(offsets.shape[0])
    _check_plan_rows(net, cycle, offsets, greens, arrays["stage_intergreen_s"], arrays["sig_stage_ptr"],
                     lambda c: f"candidate {c}")
    return n_cand


def evaluate(net: CompiledNetwork, plan: PlanArrays, params: ModelParams = ModelParams(), *,
             out: ModelBuffers | None = None) -> ModelResult:
    """Evaluate one timing plan with the macroscopic model.

    Parameters
    ----------
    net
        The compiled network with its demand.
    plan
        Common cycle (s), an offset per signal (s, 0 ≤ offset < cycle) and a green per stage (s);
        per signal Σ (green + intergreen) must equal the cycle within 1e-6 s.
    params
        Model settings.
    out
        Optional buffers from :meth:`ModelBuffers.allocate` for this network and cycle; the
        result's arrays then share memory with them.

    Returns
    -------
    ModelResult

    Raises
    ------
    PlanError
        The plan has a wrong dtype or shape or breaks a range rule; the message names the signal.
    NetworkError
        The network's arrays are inconsistent.
    """
    return _evaluate_run(net, plan, params, out, None)


def _evaluate_run(net: CompiledNetwork, plan: PlanArrays, params: ModelParams, out: ModelBuffers | None,
                  warm: BaseState | None) -> ModelResult:
    """Validate, then run the full kernel (cold, or warm from ``warm``'s departures and queues)."""
    arrays = _network_arrays(net)
    link_F, link_L, (lag, gain, pen, period, warmup, max_cycles, tol) = _model_settings(net, params)
    C = _check_cycle(plan.cycle_s)
    offsets = _plan_vector(plan.offset_s, "plan.offset_s", net.n_signals, "signals")
    greens = _plan_vector(plan.green_s, "plan.green_s", net.n_stages, "stages")
    _check_plan_rows(net, float(plan.cycle_s), offsets[None, :], greens[None, :], arrays["stage_intergreen_s"],
                     arrays["sig_stage_ptr"], lambda _c: "plan")
    if out is None:
        out = ModelBuffers.allocate(net, plan.cycle_s)
    elif not isinstance(out, ModelBuffers) or (out.n_links, out.n_stages, out.cycle_bins) != (
            net.n_links, net.n_stages, C) or out.piece_a.shape[0] < 2 * _max_stages_per_link(net):
        raise ValueError("out= buffers were allocated for another network or cycle; "
                         "use ModelBuffers.allocate(net, plan.cycle_s)")
    if warm is not None:
        if not isinstance(warm, BaseState) or warm.dep.shape != (net.n_links, C):
            raise ValueError("warm= must be a BaseState of this network at the plan's cycle length")
        out.dep[:] = warm.dep.reshape(-1)
        out.link_work[0, :] = warm.q_end
    _evaluate_kernel(
        C, _ro(np.ascontiguousarray(offsets)), _ro(np.ascontiguousarray(greens)), arrays["sig_stage_ptr"],
        arrays["stage_intergreen_s"], arrays["link_sat_flow_vps"], arrays["link_discharge"], arrays["link_flow_vps"],
        arrays["link_entry_flow_vps"], _ro(link_F), _ro(link_L % C), arrays["link_stage_ptr"],
        arrays["link_stage_idx"], arrays["link_in_ptr"], arrays["link_in_src"], arrays["link_in_share"],
        lag, gain, pen, period, warmup, max_cycles, tol, warm is not None,
        out.stage_start, out.piece_a, out.piece_b, out.green, out.dep, out.arr, out.mix, out.link_work,
        out.uniform, out.random, out.delay, out.stops, out.x, out.pi_link, out.totals)
    t = out.totals
    return ModelResult(
        delay_s=out.delay, uniform_delay_s=out.uniform, random_delay_s=out.random, stops=out.stops,
        degree_of_saturation=out.x, pi=float(t[0]), total_delay_veh_h_per_h=float(t[1]),
        total_stops_per_h=float(t[2]), mean_delay_s=float(t[3]), cycles_iterated=int(t[4]),
        converged=bool(t[5] > 0.5),
    )


def evaluate_batch(net: CompiledNetwork, cycle_s: float, offsets: np.ndarray, greens: np.ndarray,
                   params: ModelParams = ModelParams(), *, out_pi: np.ndarray | None = None,
                   parallel: bool = True) -> np.ndarray:
    """Performance index of many candidate plans sharing one cycle.

    Parameters
    ----------
    net
        The compiled network.
    cycle_s
        Common cycle of every candidate (s).
    offsets
        ``(n_cand, n_signals)`` float64, one offset vector per candidate (0 ≤ offset < cycle).
    greens
        ``(n_cand, n_stages)`` float64, one green vector per candidate.
    params
        Model settings.
    out_pi
        Optional ``(n_cand,)`` float64 buffer for the result.
    parallel
        Spread the candidates over numba's threads (``prange``); ``False`` runs on one thread.

    Returns
    -------
    numpy.ndarray
        PI per candidate (veh·s per hour), ``out_pi`` if given.
    """
    arrays = _network_arrays(net)
    link_F, link_L, (lag, gain, pen, period, warmup, max_cycles, tol) = _model_settings(net, params)
    C = _check_cycle(cycle_s)
    n_cand = _check_candidates(net, float(cycle_s), offsets, greens, arrays)
    if out_pi is None:
        out_pi = np.empty(n_cand)
    elif not (isinstance(out_pi, np.ndarray) and out_pi.dtype == np.float64 and out_pi.shape == (n_cand,)
              and out_pi.flags.c_contiguous and out_pi.flags.writeable):
        raise ValueError(f"out_pi must be a writable contiguous float64 array of shape ({n_cand},)")
    if n_cand == 0:
        return out_pi
    args = (C, _ro(np.ascontiguousarray(offsets)), _ro(np.ascontiguousarray(greens)), arrays["sig_stage_ptr"],
            arrays["stage_intergreen_s"], arrays["link_sat_flow_vps"], arrays["link_discharge"],
            arrays["link_flow_vps"], arrays["link_entry_flow_vps"], _ro(link_F), _ro(link_L % C),
            arrays["link_stage_ptr"],
            arrays["link_stage_idx"], arrays["link_in_ptr"], arrays["link_in_src"], arrays["link_in_share"],
            lag, gain, pen, period, warmup, max_cycles, tol, max(1, 2 * _max_stages_per_link(net)), out_pi)
    if parallel:
        n_chunks = min(n_cand, numba.get_num_threads())
        _batch_parallel(n_chunks, *args)
    else:
        _batch_serial(*args)
    return out_pi


# ------------------------------------------------------------------------------------------
# local (incremental) evaluation


@dataclass(frozen=True)
class BaseState:
    """Steady state of one plan from a full evaluation: the base of local evaluations.

    ``plan`` (a copy), ``dep`` the departure profile of every link in the last sweep
    (``(n_links, C)``, veh/s per 1-s bin), ``q_end`` the queues at the end of that sweep (veh),
    ``pi_link`` each link's PI contribution 3600 q (delay + K stops) (veh·s/h) and their sum
    ``pi``. The arrays are read-only.
    """

    plan: PlanArrays
    dep: np.ndarray
    q_end: np.ndarray
    pi_link: np.ndarray
    pi: float
    cycles_iterated: int
    converged: bool


def evaluate_state(net: CompiledNetwork, plan: PlanArrays, params: ModelParams = ModelParams(), *,
                   warm: BaseState | None = None) -> tuple[ModelResult, BaseState]:
    """:func:`evaluate` that also returns the plan's :class:`BaseState`.

    With ``warm=None`` the result is exactly :func:`evaluate`'s (cold start). With ``warm`` the
    cycle sweeps start from that state's departures and queues instead (a *warm* full
    evaluation, same convergence rule): cheaper after a small change of the plan, and equal to
    the cold result within the convergence tolerance, not bit for bit.
    """
    out = ModelBuffers.allocate(net, plan.cycle_s)
    res = _evaluate_run(net, plan, params, out, warm)
    C = out.cycle_bins
    state = BaseState(
        plan=PlanArrays(float(plan.cycle_s), np.array(plan.offset_s, dtype=np.float64),
                        np.array(plan.green_s, dtype=np.float64)),
        dep=_ro(out.dep.reshape(net.n_links, C)), q_end=_ro(out.link_work[0].copy()), pi_link=_ro(out.pi_link),
        pi=res.pi, cycles_iterated=res.cycles_iterated, converged=res.converged)
    return res, state


def active_sets(net: CompiledNetwork, depth: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Active link set of every signal, as CSR arrays ``(active_ptr, active_idx)``.

    The set of signal ``i`` (``active_idx[active_ptr[i] : active_ptr[i+1]]``, sorted by link
    index) holds its own links, the links they feed (``link_in_src``; depth 1), the links those
    feed (depth 2), ... up to ``depth``.
    """
    if int(depth) < 0:
        raise ValueError(f"depth = {depth}; it must be ≥ 0")
    arrays = _network_arrays(net)
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
    return _ro(ptr), _ro(idx)


_LocalEntry = tuple[weakref.ref[CompiledNetwork], dict[str, np.ndarray], tuple[Any, ...]]
_LOCAL_CACHE: dict[tuple[int, ModelParams], _LocalEntry] = {}


def _local_context(net: CompiledNetwork, params: ModelParams) -> tuple[dict[str, np.ndarray], tuple[Any, ...]]:
    """Validated network arrays and settings for the local evaluators, cached per network object
    and params (the network's arrays are read-only by contract), so that a call costs
    ∝ |active links| and not ∝ network size."""
    key = (id(net), params)
    hit = _LOCAL_CACHE.get(key)
    if hit is not None and hit[0]() is net:
        return hit[1], hit[2]
    arrays = dict(_network_arrays(net))
    link_F, link_L, scalars = _model_settings(net, params)
    arrays["link_signal"] = _ro(np.ascontiguousarray(net.link_signal, dtype=np.int64))
    arrays["link_F"] = _ro(link_F)
    arrays["link_L"] = _ro(link_L)
    extra = (scalars, max(1, 2 * _max_stages_per_link(net)))
    if len(_LOCAL_CACHE) >= 16:
        _LOCAL_CACHE.clear()
    _LOCAL_CACHE[key] = (weakref.ref(net), arrays, extra)
    return arrays, extra


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
        Base state from :func:`evaluate_state` at the candidates' cycle length.
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
    arrays, ((lag, gain, pen, period, _warmup, _max_cycles, _tol), n_pieces) = _local_context(net, params)
    link_F, link_L = arrays["link_F"], arrays["link_L"]
    if not isinstance(state, BaseState):
        raise TypeError(f"state must be a BaseState from evaluate_state, got {type(state).__name__}")
    cycle = float(state.plan.cycle_s)
    C = _check_cycle(cycle)
    if state.dep.shape != (net.n_links, C) or state.q_end.shape != (net.n_links,):
        raise ValueError(f"state has departures of shape {state.dep.shape}; this network and cycle need "
                         f"({net.n_links}, {C})")
    n_cand = _check_candidates(net, cycle, offsets, greens, arrays)
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
    args = (C, _ro(np.ascontiguousarray(offsets)), _ro(np.ascontiguousarray(greens)), _ro(act), _ro(slot),
            arrays["sig_stage_ptr"], arrays["stage_intergreen_s"], arrays["link_signal"], arrays["link_sat_flow_vps"],
            arrays["link_discharge"], arrays["link_flow_vps"], arrays["link_entry_flow_vps"], _ro(link_F),
            _ro(link_L % C), arrays["link_stage_ptr"], arrays["link_stage_idx"], arrays["link_in_ptr"],
            arrays["link_in_src"],
            arrays["link_in_share"], _ro(np.ascontiguousarray(state.dep, dtype=np.float64).reshape(-1)),
            _ro(np.ascontiguousarray(state.q_end, dtype=np.float64)), lag, gain, pen, period, int(local_sweeps),
            n_pieces, out)
    if parallel and n_cand > 1:
        _moves_parallel(min(n_cand, numba.get_num_threads()), *args)
    else:
        _moves_serial(*args)
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
    copy of the departures; refresh with :func:`evaluate_state` for an exact state.
    """
    arrays, ((lag, gain, pen, period, _w, _m, _t), n_pieces) = _local_context(net, params)
    link_F, link_L = arrays["link_F"], arrays["link_L"]
    cycle = float(state.plan.cycle_s)
    C = _check_cycle(cycle)
    rows_off = np.stack([np.asarray(state.plan.offset_s, dtype=np.float64),
                         np.asarray(plan.offset_s, dtype=np.float64)])
    rows_green = np.stack([np.asarray(state.plan.green_s, dtype=np.float64), np.asarray(plan.green_s, np.float64)])
    _check_candidates(net, cycle, rows_off, rows_green, arrays)
    if abs(float(plan.cycle_s) - cycle) > 1e-9:
        raise PlanError(f"plan cycle {plan.cycle_s} s differs from the state's {cycle} s")
    act = np.ascontiguousarray(active_links, dtype=np.int64)
    if int(local_sweeps) < 1:
        raise ValueError(f"local_sweeps = {local_sweeps}; it must be ≥ 1")
    slot = np.full(net.n_links, -1, dtype=np.int64)
    slot[act] = np.arange(act.size, dtype=np.int64)
    base_dep = np.ascontiguousarray(state.dep, dtype=np.float64).reshape(-1)
    n_a = act.size
    bufs = (np.empty(net.n_stages), np.empty(n_pieces), np.empty(n_pieces), np.empty(n_a * C), np.empty(n_a * C),
            np.empty(n_a),
            np.empty(C), np.empty(C))
    pis = []
    for r in range(2):  # the base plan first, then the new one (its buffers are kept)
        pis.append(_local_pi(C, _ro(rows_off[r]), _ro(rows_green[r]), _ro(act), _ro(slot), arrays["sig_stage_ptr"],
                             arrays["stage_intergreen_s"], arrays["link_signal"],
                             arrays["link_sat_flow_vps"], arrays["link_discharge"], arrays["link_flow_vps"],
                             arrays["link_entry_flow_vps"],
                             _ro(link_F), _ro(link_L % C), arrays["link_stage_ptr"], arrays["link_stage_idx"],
                             arrays["link_in_ptr"], arrays["link_in_src"], arrays["link_in_share"], _ro(base_dep),
                             _ro(np.ascontiguousarray(state.q_end, dtype=np.float64)), lag, gain, pen, period,
                             int(local_sweeps), *bufs))
    dep = np.array(state.dep, dtype=np.float64)
    dep[act] = bufs[4].reshape(n_a, C)
    q_end = np.array(state.q_end, dtype=np.float64)
    q_end[act] = bufs[5]
    pi_link = np.array(state.pi_link, dtype=np.float64)
    pi_link[act] = np.nan
    return BaseState(plan=PlanArrays(cycle, np.array(plan.offset_s, dtype=np.float64),
                                     np.array(plan.green_s, dtype=np.float64)),
                     dep=_ro(dep), q_end=_ro(q_end), pi_link=_ro(pi_link), pi=state.pi - pis[0] + pis[1],
                     cycles_iterated=0, converged=False)
