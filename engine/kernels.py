"""The numba kernels of the macroscopic timing model and the bundles of arrays they take.

Every kernel here is ``@njit(cache=True)`` and is called by a validating wrapper in
:mod:`greenwave.engine.model` (full and batch evaluation) or :mod:`greenwave.engine.local_eval`
(local evaluation); :mod:`greenwave.engine.reference` is the plain Python version the tests
compare them against. The kernels trust their inputs: the wrappers check them first.

Inputs come in named bundles (``typing.NamedTuple``, which numba passes and caches like any
tuple of arrays), so a call names one bundle instead of thirty arrays:

:class:`NetArrays`
    The compiled network's flat arrays with the per-link dispersion factor and lag of the
    model settings at one cycle length (read-only, contiguous).
:class:`Settings`
    The model's scalar settings.
:class:`FullWork`, :class:`LocalWork`
    Caller-owned work and output buffers of a full and of a local evaluation.

Units: seconds, vehicles per second; PI in vehicle-seconds of delay per hour.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

__all__ = ["GREEN_EPS", "N_TOTALS", "FullWork", "LocalWork", "NetArrays", "Settings", "batch_parallel",
           "batch_serial", "disperse", "evaluate_kernel", "local_pi", "moves_parallel", "moves_serial"]

#: Totals a full evaluation writes: pi, total delay, total stops, mean delay, cycles iterated, converged.
N_TOTALS = 6
#: A bin counts as green for the end-of-green test (sneakers) when g > this: rounding slivers of a
#: window edge (~1e-15) must not move the green end by a bin.
GREEN_EPS = 1e-9


class NetArrays(NamedTuple):
    """The arrays the kernels read, for one network, model settings and cycle length C.

    See :mod:`greenwave.engine.arrays` for the network arrays; ``link_F`` and ``link_lag`` are
    Robertson's smoothing factor F = 1 / (1 + α β T) and lag L = round(β T) mod C of each link.
    """

    sig_stage_ptr: np.ndarray  # (n_signals + 1,) int64
    stage_ig: np.ndarray  # (n_stages,) intergreen after each stage, s
    link_signal: np.ndarray  # (n_links,) int64
    link_sat: np.ndarray  # (n_links,) saturation flow, veh/s
    link_dis: np.ndarray  # (n_links, 4) sneakers, then shared-lane blocking b, a0, a1
    link_flow: np.ndarray  # (n_links,) demand, veh/s
    link_entry: np.ndarray  # (n_links,) uniform arrivals, veh/s
    link_F: np.ndarray  # (n_links,) dispersion factor
    link_lag: np.ndarray  # (n_links,) int64, dispersion lag mod C, bins
    link_stage_ptr: np.ndarray  # (n_links + 1,) int64
    link_stage_idx: np.ndarray  # int64 stages showing each link green
    link_in_ptr: np.ndarray  # (n_links + 1,) int64
    link_in_src: np.ndarray  # int64 feeder links
    link_in_share: np.ndarray  # share of each feeder's departures


class Settings(NamedTuple):
    """The model's scalar settings (see :class:`greenwave.engine.arrays.ModelParams`)."""

    lag: float  # start lag of the effective green, s
    gain: float  # end gain of the effective green, s
    stop_penalty: float  # K, s per stop
    period_h: float  # analysis period of the random delay, h
    warmup: int  # cycle sweeps before convergence is tested
    max_cycles: int
    tol: float  # convergence tolerance, veh


class FullWork(NamedTuple):
    """Work and output buffers of one full evaluation (C bins, n links, n_stages stages)."""

    stage_start: np.ndarray  # (n_stages,)
    piece_a: np.ndarray  # (2 * max stages per link,)
    piece_b: np.ndarray
    green: np.ndarray  # (n_links * C,) effective green fraction per link and bin
    dep: np.ndarray  # (n_links * C,) departures per link and bin
    arr: np.ndarray  # (C,) arrivals
    mix: np.ndarray  # (C,) share-weighted feeder departures
    link_work: np.ndarray  # (5, n_links): q end, Σ q, min q, Σ stopped, Σ arrivals
    uniform: np.ndarray  # (n_links,) outputs from here on
    random: np.ndarray
    delay: np.ndarray
    stops: np.ndarray
    x: np.ndarray
    pi_link: np.ndarray
    totals: np.ndarray  # (N_TOTALS,)


class LocalWork(NamedTuple):
    """Work buffers of one local evaluation over n_a active links (C bins)."""

    stage_start: np.ndarray  # (n_stages,)
    piece_a: np.ndarray  # (2 * max stages per link,)
    piece_b: np.ndarray
    green: np.ndarray  # (n_a * C,)
    dep: np.ndarray  # (n_a * C,) local departures (the last sweep's on return)
    q_loc: np.ndarray  # (n_a,) local queues (at the end of the last sweep on return)
    arr: np.ndarray  # (C,)
    mix: np.ndarray  # (C,)


# ------------------------------------------------------------------------------------------
# green profiles


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
def _signal_stage_starts(i, offsets, greens, net, stage_start):  # pragma: no cover - njit
    """Green start of each stage of signal i (s, not reduced modulo C) into stage_start."""
    s = offsets[i]
    for k in range(net.sig_stage_ptr[i], net.sig_stage_ptr[i + 1]):
        stage_start[k] = s
        s += greens[k] + net.stage_ig[k]


@njit(cache=True)
def _link_green(l, C, greens, net, lag, gain, stage_start, piece_a, piece_b, g, base):  # pragma: no cover - njit
    """Effective green fraction of link l per 1-s bin into g[base : base + C].

    Needs stage_start of the stages showing the link green (:func:`_signal_stage_starts`).
    """
    for t in range(C):
        g[base + t] = 0.0
    Cf = float(C)
    m = 0
    for j in range(net.link_stage_ptr[l], net.link_stage_ptr[l + 1]):
        k = net.link_stage_idx[j]
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
def _green_profiles(C, offsets, greens, net, lag, gain, stage_start, piece_a, piece_b, g):  # pragma: no cover
    """Effective green fraction per link and 1-s bin into g (n_links * C)."""
    for i in range(offsets.shape[0]):
        _signal_stage_starts(i, offsets, greens, net, stage_start)
    n_links = net.link_stage_ptr.shape[0] - 1
    for l in range(n_links):
        _link_green(l, C, greens, net, lag, gain, stage_start, piece_a, piece_b, g, l * C)


# ------------------------------------------------------------------------------------------
# arrivals, queues and results of one link


@njit(cache=True)
def disperse(u, C, F, lag, entry, arr):  # pragma: no cover - njit
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
def _link_arrivals(l, C, net, slot, dep_local, dep_base, mix, arr):  # pragma: no cover - njit
    """Arrival profile of link l into arr (C,).

    Feeder ``src``'s departures are read from ``dep_local[slot[src] * C :]`` where
    ``slot[src] ≥ 0`` and from ``dep_base[src * C :]`` otherwise; an empty ``slot`` means the
    identity (every feeder read from ``dep_local``, the full model).
    """
    e = net.link_entry[l]
    if net.link_in_ptr[l + 1] == net.link_in_ptr[l]:
        for t in range(C):
            arr[t] = e
        return
    # all feeders share link l's dispersion: mix their departures, disperse once
    for t in range(C):
        mix[t] = 0.0
    identity = slot.shape[0] == 0
    for j in range(net.link_in_ptr[l], net.link_in_ptr[l + 1]):
        src = net.link_in_src[j]
        sh = net.link_in_share[j]
        k = src if identity else slot[src]
        if k >= 0:
            sb = k * C
            for t in range(C):
                mix[t] += sh * dep_local[sb + t]
        else:
            sb = src * C
            for t in range(C):
                mix[t] += sh * dep_base[sb + t]
    disperse(mix, C, net.link_F[l], net.link_lag[l], e, arr)


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
        if gt > GREEN_EPS and g[gbase + (t + 1) % C] <= GREEN_EPS:
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
        if sneak > 0.0 and gt > GREEN_EPS and g[gbase + (t + 1) % C] <= GREEN_EPS:
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
            if g[gbase + t] > GREEN_EPS and g[gbase + (t + 1) % C] <= GREEN_EPS:
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


# ------------------------------------------------------------------------------------------
# full evaluation


@njit(cache=True)
def evaluate_kernel(C, offsets, greens, net, settings, warm, work):  # pragma: no cover - njit
    """Steady-state cycle profiles of one plan; per-link results and totals into ``work``.

    Cold start (``warm`` false): departures = demand flow, queues 0. Warm start: from the
    departures in ``work.dep`` and the queues in ``work.link_work[0]`` as given.
    totals = [pi, total delay (veh·h/h), total stops (/h), mean delay (s), sweeps, converged].
    """
    g = work.green
    dep = work.dep
    _green_profiles(C, offsets, greens, net, settings.lag, settings.gain, work.stage_start, work.piece_a,
                    work.piece_b, g)
    link_flow = net.link_flow
    link_dis = net.link_dis
    n_links = link_flow.shape[0]
    s_eff = np.empty(n_links)  # saturation flows under this plan's greens (blocking), once
    for l in range(n_links):
        s_eff[l] = _eff_sat(C, net.link_sat[l], link_dis, l, g, l * C)
    q_end = work.link_work[0]
    sum_q = work.link_work[1]
    min_q = work.link_work[2]
    stopped = work.link_work[3]
    arrived = work.link_work[4]
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
            _link_arrivals(l, C, net, identity, dep, dep, work.mix, work.arr)
            q0 = q_end[l]
            q, sq, mq, st, sa, dd = _link_queue(C, s_eff[l], link_dis[l, 0], q0, work.arr, g, base, dep, base)
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
        if sweeps >= settings.warmup and biggest < settings.tol:
            converged = True
            break
        if sweeps >= settings.max_cycles:
            break

    pi = 0.0
    tot_delay = 0.0
    tot_stops = 0.0
    tot_q = 0.0
    for l in range(n_links):
        xl, ul, rl, sl, dl, pl = _link_result(C, s_eff[l], link_dis[l, 0], link_flow[l], sum_q[l], min_q[l],
                                              stopped[l], arrived[l], g, l * C, settings.stop_penalty,
                                              settings.period_h)
        work.x[l] = xl
        work.uniform[l] = ul
        work.random[l] = rl
        work.stops[l] = sl
        work.delay[l] = dl
        work.pi_link[l] = pl
        q = link_flow[l]
        pi += pl
        tot_delay += q * dl
        tot_stops += 3600.0 * q * sl
        tot_q += q
    totals = work.totals
    totals[0] = pi
    totals[1] = tot_delay
    totals[2] = tot_stops
    totals[3] = tot_delay / tot_q if tot_q > 0.0 else 0.0
    totals[4] = sweeps
    totals[5] = 1.0 if converged else 0.0


@njit(cache=True)
def _batch_chunk(chunk, n_chunks, C, offsets, greens, net, settings, n_pieces, out_pi):  # pragma: no cover - njit
    """Score candidates chunk, chunk + n_chunks, ... with buffers private to this chunk."""
    n_links = net.link_flow.shape[0]
    work = FullWork(np.empty(greens.shape[1]), np.empty(n_pieces), np.empty(n_pieces), np.empty(n_links * C),
                    np.empty(n_links * C), np.empty(C), np.empty(C), np.empty((5, n_links)), np.empty(n_links),
                    np.empty(n_links), np.empty(n_links), np.empty(n_links), np.empty(n_links), np.empty(n_links),
                    np.empty(N_TOTALS))
    for i in range(chunk, offsets.shape[0], n_chunks):
        evaluate_kernel(C, offsets[i], greens[i], net, settings, False, work)
        out_pi[i] = work.totals[0]


@njit(cache=True, parallel=True)
def batch_parallel(n_chunks, C, offsets, greens, net, settings, n_pieces, out_pi):  # pragma: no cover - njit
    """PI of every candidate row of ``offsets``/``greens`` into ``out_pi``, in ``n_chunks`` threads."""
    for chunk in prange(n_chunks):
        _batch_chunk(chunk, n_chunks, C, offsets, greens, net, settings, n_pieces, out_pi)


@njit(cache=True)
def batch_serial(C, offsets, greens, net, settings, n_pieces, out_pi):  # pragma: no cover - njit
    """:func:`batch_parallel` on one thread."""
    _batch_chunk(0, 1, C, offsets, greens, net, settings, n_pieces, out_pi)


# ------------------------------------------------------------------------------------------
# local evaluation


@njit(cache=True)
def local_pi(C, offsets, greens, active, slot, net, settings, base_dep, base_q, n_sweeps,
             work):  # pragma: no cover - njit
    """PI_local of one plan over the active links ``active`` (sorted), given a base state.

    ``slot[l]`` is the position of link l in ``active`` (−1 outside). Local departures start as
    the base departures, local queues as the base end-of-cycle queues; ``n_sweeps`` sweeps over
    the active links in index order, feeders outside the set read from ``base_dep``.
    Returns Σ over the active links of their PI contribution in the last sweep.
    """
    g = work.green
    dep = work.dep
    q_loc = work.q_loc
    link_dis = net.link_dis
    n_a = active.shape[0]
    s_loc = np.empty(n_a)
    for a in range(n_a):
        l = active[a]
        _signal_stage_starts(net.link_signal[l], offsets, greens, net, work.stage_start)
        _link_green(l, C, greens, net, settings.lag, settings.gain, work.stage_start, work.piece_a, work.piece_b,
                    g, a * C)
        s_loc[a] = _eff_sat(C, net.link_sat[l], link_dis, l, g, a * C)
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
            _link_arrivals(l, C, net, slot, dep, base_dep, work.mix, work.arr)
            q, sq, mq, st, sa, _ = _link_queue(C, s_loc[a], link_dis[l, 0], q_loc[a], work.arr, g, a * C, dep, a * C)
            q_loc[a] = q
            if last:
                res = _link_result(C, s_loc[a], link_dis[l, 0], net.link_flow[l], sq, mq, st, sa, g, a * C,
                                   settings.stop_penalty, settings.period_h)
                pi += res[5]
    return pi


@njit(cache=True)
def _moves_chunk(chunk, n_chunks, C, offsets, greens, active, slot, net, settings, base_dep, base_q, n_sweeps,
                 n_pieces, out_pi):  # pragma: no cover - njit
    """PI_local of candidates chunk, chunk + n_chunks, ... with buffers private to this chunk."""
    n_a = active.shape[0]
    work = LocalWork(np.empty(greens.shape[1]), np.empty(n_pieces), np.empty(n_pieces), np.empty(n_a * C),
                     np.empty(n_a * C), np.empty(n_a), np.empty(C), np.empty(C))
    for i in range(chunk, offsets.shape[0], n_chunks):
        out_pi[i] = local_pi(C, offsets[i], greens[i], active, slot, net, settings, base_dep, base_q, n_sweeps, work)


@njit(cache=True, parallel=True)
def moves_parallel(n_chunks, C, offsets, greens, active, slot, net, settings, base_dep, base_q, n_sweeps,
                   n_pieces, out_pi):  # pragma: no cover - njit
    """PI_local of every candidate row into ``out_pi``, in ``n_chunks`` threads."""
    for chunk in prange(n_chunks):
        _moves_chunk(chunk, n_chunks, C, offsets, greens, active, slot, net, settings, base_dep, base_q, n_sweeps,
                     n_pieces, out_pi)


@njit(cache=True)
def moves_serial(C, offsets, greens, active, slot, net, settings, base_dep, base_q, n_sweeps, n_pieces,
                 out_pi):  # pragma: no cover - njit
    """:func:`moves_parallel` on one thread."""
    _moves_chunk(0, 1, C, offsets, greens, active, slot, net, settings, base_dep, base_q, n_sweeps, n_pieces,
                 out_pi)
