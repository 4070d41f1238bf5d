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
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from greenwave.engine.arrays import CompiledNetwork, ModelParams, PlanArrays
from greenwave.errors import NetworkError, PlanError

__all__ = ["ModelBuffers", "ModelResult", "evaluate", "evaluate_batch"]

_N_TOTALS = 6  # pi, total delay, total stops, mean delay, cycles iterated, converged
_SUM_TOL_S = 1e-6


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
            totals=np.empty(_N_TOTALS),
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
def _green_profiles(C, offsets, greens, sig_stage_ptr, stage_ig, link_stage_ptr, link_stage_idx,
                    lag, gain, stage_start, piece_a, piece_b, g):  # pragma: no cover - njit
    """Effective green fraction per link and 1-s bin into g (n_links * C)."""
    n_sig = offsets.shape[0]
    for i in range(n_sig):
        s = offsets[i]
        for k in range(sig_stage_ptr[i], sig_stage_ptr[i + 1]):
            stage_start[k] = s
            s += greens[k] + stage_ig[k]
    n_links = link_stage_ptr.shape[0] - 1
    Cf = float(C)
    for l in range(n_links):
        base = l * C
        for t in range(C):
            g[base + t] = 0.0
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
def _evaluate_kernel(C, offsets, greens, sig_stage_ptr, stage_ig, link_sat, link_flow, link_entry,
                     link_F, link_lag, link_stage_ptr, link_stage_idx, link_in_ptr, link_in_src,
                     link_in_share, lag, gain, stop_penalty, period_h, warmup, max_cycles, tol,
                     stage_start, piece_a, piece_b, g, dep, arr, mix, link_work,
                     uniform, random, delay, stops, x, totals):  # pragma: no cover - njit
    """Steady-state cycle profiles of one plan; per-link results and totals into the outputs.

    totals = [pi, total delay (veh·h/h), total stops (/h), mean delay (s), sweeps, converged].
    """
    _green_profiles(C, offsets, greens, sig_stage_ptr, stage_ig, link_stage_ptr, link_stage_idx,
                    lag, gain, stage_start, piece_a, piece_b, g)
    n_links = link_flow.shape[0]
    q_end = link_work[0]
    sum_q = link_work[1]
    min_q = link_work[2]
    stopped = link_work[3]
    arrived = link_work[4]
    for l in range(n_links):
        base = l * C
        for t in range(C):
            dep[base + t] = link_flow[l]
        q_end[l] = 0.0

    sweeps = 0
    converged = False
    while True:
        sweeps += 1
        biggest = 0.0
        for l in range(n_links):
            base = l * C
            e = link_entry[l]
            if link_in_ptr[l + 1] == link_in_ptr[l]:
                for t in range(C):
                    arr[t] = e
            else:  # all feeders share link l's dispersion: mix their departures, disperse once
                for t in range(C):
                    mix[t] = 0.0
                for j in range(link_in_ptr[l], link_in_ptr[l + 1]):
                    sb = link_in_src[j] * C
                    sh = link_in_share[j]
                    for t in range(C):
                        mix[t] += sh * dep[sb + t]
                _disperse(mix, C, link_F[l], link_lag[l], e, arr)
            s = link_sat[l]
            q0 = q_end[l]
            q = q0
            sq = 0.0
            mq = np.inf
            st = 0.0
            sa = 0.0
            for t in range(C):
                a = arr[t]
                gt = g[base + t]
                sq += q
                if q < mq:
                    mq = q
                if q > 1e-9:
                    st += a
                else:
                    st += a * (1.0 - gt)
                sa += a
                qn = q + a - s * gt
                if qn < 0.0:
                    qn = 0.0
                dep[base + t] = q + a - qn
                q = qn
            d = abs(q - q0)
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
        base = l * C
        green_s = 0.0
        for t in range(C):
            green_s += g[base + t]
        cap = link_sat[l] * green_s / C
        q = link_flow[l]
        x[l] = q / cap if cap > 0.0 else np.inf
        if q > 0.0:
            uniform[l] = (sum_q[l] - C * min_q[l]) / (q * C)
            if cap > 0.0:
                xl = x[l]
                random[l] = 900.0 * period_h * ((xl - 1.0) + math.sqrt(
                    (xl - 1.0) ** 2 + 4.0 * xl / (3600.0 * cap * period_h)))
            else:
                random[l] = 3600.0
        else:
            uniform[l] = 0.0
            random[l] = 0.0
        if arrived[l] > 0.0:
            sf = stopped[l] / arrived[l]
            stops[l] = sf if sf < 1.0 else 1.0
        else:
            stops[l] = 0.0
        delay[l] = uniform[l] + random[l]
        pi += 3600.0 * q * (delay[l] + stop_penalty * stops[l])
        tot_delay += q * delay[l]
        tot_stops += 3600.0 * q * stops[l]
        tot_q += q
    totals[0] = pi
    totals[1] = tot_delay
    totals[2] = tot_stops
    totals[3] = tot_delay / tot_q if tot_q > 0.0 else 0.0
    totals[4] = sweeps
    totals[5] = 1.0 if converged else 0.0


@njit(cache=True)
def _batch_chunk(chunk, n_chunks, C, offsets, greens, sig_stage_ptr, stage_ig, link_sat, link_flow,
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
    totals = np.empty(_N_TOTALS)
    for i in range(chunk, offsets.shape[0], n_chunks):
        _evaluate_kernel(C, offsets[i], greens[i], sig_stage_ptr, stage_ig, link_sat, link_flow,
                         link_entry, link_F, link_lag, link_stage_ptr, link_stage_idx, link_in_ptr,
                         link_in_src, link_in_share, lag, gain, stop_penalty, period_h, warmup,
                         max_cycles, tol, stage_start, piece_a, piece_b, g, dep, arr, mix, link_work,
                         uniform, random, delay, stops, x, totals)
        out_pi[i] = totals[0]


@njit(cache=True, parallel=True)
def _batch_parallel(n_chunks, C, offsets, greens, sig_stage_ptr, stage_ig, link_sat, link_flow,
                    link_entry, link_F, link_lag, link_stage_ptr, link_stage_idx, link_in_ptr,
                    link_in_src, link_in_share, lag, gain, stop_penalty, period_h, warmup,
                    max_cycles, tol, n_pieces, out_pi):  # pragma: no cover - njit
    for chunk in prange(n_chunks):
        _batch_chunk(chunk, n_chunks, C, offsets, greens, sig_stage_ptr, stage_ig, link_sat,
                     link_flow, link_entry, link_F, link_lag, link_stage_ptr, link_stage_idx,
                     link_in_ptr, link_in_src, link_in_share, lag, gain, stop_penalty, period_h,
                     warmup, max_cycles, tol, n_pieces, out_pi)


@njit(cache=True)
def _batch_serial(C, offsets, greens, sig_stage_ptr, stage_ig, link_sat, link_flow, link_entry,
                  link_F, link_lag, link_stage_ptr, link_stage_idx, link_in_ptr, link_in_src,
                  link_in_share, lag, gain, stop_penalty, period_h, warmup, max_cycles, tol,
                  n_pieces, out_pi):  # pragma: no cover - njit
    _batch_chunk(0, 1, C, offsets, greens, sig_stage_ptr, stage_ig, link_sat, link_flow, link_entry,
                 link_F, link_lag, link_stage_ptr, link_stage_idx, link_in_ptr, link_in_src,
                 link_in_share, lag, gain, stop_penalty, period_h, warmup, max_cycles, tol,
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


def _model_settings(net: CompiledNetwork, params: ModelParams) -> tuple[np.ndarray, np.ndarray, tuple]:
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
    n_cand = offsets.shape[0]
    cum = np.zeros((n_cand, greens.shape[1] + 1))
    np.cumsum(greens + stage_ig[None, :], axis=1, out=cum[:, 1:])
    sums = cum[:, sig_ptr[1:]] - cum[:, sig_ptr[:-1]]
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
    _evaluate_kernel(
        C, _ro(np.ascontiguousarray(offsets)), _ro(np.ascontiguousarray(greens)), arrays["sig_stage_ptr"],
        arrays["stage_intergreen_s"], arrays["link_sat_flow_vps"], arrays["link_flow_vps"],
        arrays["link_entry_flow_vps"], _ro(link_F), _ro(link_L % C), arrays["link_stage_ptr"],
        arrays["link_stage_idx"], arrays["link_in_ptr"], arrays["link_in_src"], arrays["link_in_share"],
        lag, gain, pen, period, warmup, max_cycles, tol,
        out.stage_start, out.piece_a, out.piece_b, out.green, out.dep, out.arr, out.mix, out.link_work,
        out.uniform, out.random, out.delay, out.stops, out.x, out.totals)
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
    for name, a, cols, what in (("offsets", offsets, net.n_signals, "signals"),
                                ("greens", greens, net.n_stages, "stages")):
        if not isinstance(a, np.ndarray) or a.dtype != np.float64:
            got = f"{a.dtype} array" if isinstance(a, np.ndarray) else type(a).__name__
            raise PlanError(f"{name} must be a float64 numpy array, got {got}")
        if a.ndim != 2 or a.shape[1] != cols:
            raise PlanError(f"{name} has shape {a.shape}; expected (n_candidates, {cols}) for {cols} {what}")
    if offsets.shape[0] != greens.shape[0]:
        raise PlanError(f"offsets has {offsets.shape[0]} candidates but greens has {greens.shape[0]}")
    n_cand = offsets.shape[0]
    _check_plan_rows(net, float(cycle_s), offsets, greens, arrays["stage_intergreen_s"], arrays["sig_stage_ptr"],
                     lambda c: f"candidate {c}")
    if out_pi is None:
        out_pi = np.empty(n_cand)
    elif not (isinstance(out_pi, np.ndarray) and out_pi.dtype == np.float64 and out_pi.shape == (n_cand,)
              and out_pi.flags.c_contiguous and out_pi.flags.writeable):
        raise ValueError(f"out_pi must be a writable contiguous float64 array of shape ({n_cand},)")
    if n_cand == 0:
        return out_pi
    args = (C, _ro(np.ascontiguousarray(offsets)), _ro(np.ascontiguousarray(greens)), arrays["sig_stage_ptr"],
            arrays["stage_intergreen_s"], arrays["link_sat_flow_vps"], arrays["link_flow_vps"],
            arrays["link_entry_flow_vps"], _ro(link_F), _ro(link_L % C), arrays["link_stage_ptr"],
            arrays["link_stage_idx"], arrays["link_in_ptr"], arrays["link_in_src"], arrays["link_in_share"],
            lag, gain, pen, period, warmup, max_cycles, tol, max(1, 2 * _max_stages_per_link(net)), out_pi)
    if parallel:
        n_chunks = min(n_cand, numba.get_num_threads())
        _batch_parallel(n_chunks, *args)
    else:
        _batch_serial(*args)
    return out_pi
