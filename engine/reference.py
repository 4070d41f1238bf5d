"""A plain Python reference of the macroscopic timing model (clarity first, speed last).

:func:`evaluate_reference` computes exactly what :func:`greenwave.engine.model.evaluate` computes,
written as directly as the definitions allow, so the numba kernels can be tested against it.
Loops over links and seconds are plain Python; only the platoon-dispersion sum uses numpy.

The model (TRANSYT-style, time step 1 s, C = round(cycle) bins per cycle)
-------------------------------------------------------------------------
* Effective green fraction ``g_l(t)`` of bin ``[t, t+1)``: the length of its overlap with the
  union (modulo C) of the windows ``[start(k) + start_lag, start(k) + green(k) + end_gain)`` of
  the stages ``k`` showing link ``l`` green; a window is clipped to at most C seconds.
* Green-window ends: bins ``t`` with ``g(t) > ε`` and ``g((t+1) mod C) ≤ ε`` (ε = 1e-9, so that
  rounding slivers of a window edge count as red); ``n_end`` of them.
* Saturation flow under the plan (shared-lane blocking, ``link_block = (b, a0, a1)``):
  ``s = s_link − b + min(b, (a0 n_end + a1 G) / G)`` with ``G = Σ_t g(t)``; ``s = s_link`` where
  ``b = 0``, ``G = 0`` or the network has no ``link_block``.
* Capacity ``c = s · Σ_t g(t) / C + sneakers · n_end / C``; degree of saturation ``x = q / c``
  (inf if ``c = 0``).
* Robertson dispersion of an upstream departure profile ``d`` over travel time ``T``
  (``L = round(β T)``, ``F = 1 / (1 + α β T)``), cyclic steady state::

      A(t) = F / (1 − (1−F)^C) · Σ_{k=0}^{C−1} (1−F)^k · d((t − L − k) mod C)

* Arrivals ``a_l(t) = entry_l + Σ_feeders share · A_src(t)`` (dispersed with link ``l``'s T).
* Vertical queue ``q(t+1) = max(0, q(t) + a(t) − s g(t) − sneak(t))`` with ``sneak(t)`` the
  link's sneakers in a green-window end bin and 0 elsewhere, departures
  ``d(t) = q(t) + a(t) − q(t+1)``.
* Cycle sweeps over the links in index order (Gauss–Seidel), each link's queue starting from
  its end-of-previous-sweep value, until (sweep ≥ warmup and every |q_end − q_start| < tol) or
  max_cycles. Results describe the last sweep.
* Uniform delay ``Σ_t (q(t) − min q) / (q_l C)``; random delay HCM d2 (k = 0.5, I = 1);
  stops = share of arrivals that meet a queue or a red; PI = Σ 3600 q (delay + K stops).
"""

from __future__ import annotations

import math

import numpy as np

from greenwave.engine.arrays import CompiledNetwork, ModelParams, PlanArrays
from greenwave.engine.kernels import GREEN_EPS
from greenwave.engine.model import BaseState, ModelResult

__all__ = ["evaluate_reference", "evaluate_local_reference", "evaluate_moves_reference", "green_profile",
           "disperse", "active_sets_reference"]


def stage_starts(net: CompiledNetwork, plan: PlanArrays) -> list[float]:
    """Green start of every stage (s, not reduced modulo C)."""
    starts = [0.0] * net.n_stages
    for i in range(net.n_signals):
        s = float(plan.offset_s[i])
        for k in net.stages_of(i):
            starts[k] = s
            s += float(plan.green_s[k]) + float(net.stage_intergreen_s[k])
    return starts


def _union_length(pieces: list[tuple[float, float]]) -> float:
    """Total length of the union of intervals."""
    total = 0.0
    cur: tuple[float, float] | None = None  # the interval being merged
    for a, b in sorted(pieces):
        if cur is None or a > cur[1]:
            if cur is not None:
                total += cur[1] - cur[0]
            cur = (a, b)
        else:
            cur = (cur[0], max(cur[1], b))
    if cur is not None:
        total += cur[1] - cur[0]
    return total


def green_profile(net: CompiledNetwork, plan: PlanArrays, link: int, params: ModelParams) -> np.ndarray:
    """Effective green fraction of each 1-s bin of the cycle for one link."""
    C = int(round(plan.cycle_s))
    starts = stage_starts(net, plan)
    windows = []  # (start mod C, length), length clipped to C
    for j in range(int(net.link_stage_ptr[link]), int(net.link_stage_ptr[link + 1])):
        k = int(net.link_stage_idx[j])
        length = min(float(plan.green_s[k]) + params.end_gain_s - params.start_lag_s, float(C))
        if length > 0:
            windows.append(((starts[k] + params.start_lag_s) % C, length))
    g = np.zeros(C)
    for t in range(C):
        pieces = []
        for a, length in windows:
            for shift in (-C, 0, C):  # the window and its copies one cycle earlier and later
                lo, hi = max(a + shift, t), min(a + shift + length, t + 1)
                if hi > lo:
                    pieces.append((lo, hi))
        g[t] = _union_length(pieces)
    return g


def disperse(d: np.ndarray, travel_s: float, params: ModelParams) -> np.ndarray:
    """Robertson's dispersed arrival profile of departure profile ``d`` (closed form)."""
    C = len(d)
    lag = int(round(params.beta * travel_s))
    F = 1.0 / (1.0 + params.alpha * params.beta * travel_s)
    k = np.arange(C)
    weights = (1.0 - F) ** k  # weight of the departure k seconds before t − L
    t = np.arange(C)
    source_bin = (t[:, None] - lag - k[None, :]) % C  # [t, k] -> bin of d
    arrivals: np.ndarray = F / (1.0 - (1.0 - F) ** C) * (d[source_bin] @ weights)
    return arrivals


def sneakers(net: CompiledNetwork) -> list[float]:
    """Sneakers per green-window end of every link (0 where the network has none)."""
    if net.link_sneakers_veh is None:
        return [0.0] * net.n_links
    return [float(v) for v in net.link_sneakers_veh]


def effective_sat_flow(net: CompiledNetwork, l: int, g: np.ndarray) -> float:
    """Saturation flow of link ``l`` (veh/s) with green profile ``g``, shared-lane blocking applied."""
    s = float(net.link_sat_flow_vps[l])
    if net.link_block is None:
        return s
    b, a0, a1 = (float(v) for v in net.link_block[l])
    green = float(np.sum(g))
    if b <= 0 or green <= 0:
        return s
    return s - b + min(b, (a0 * sum(green_ends(g)) + a1 * green) / green)


def green_ends(g: np.ndarray) -> list[bool]:
    """Whether each bin is the last one of an effective green window (bins with g ≤ 1e-9, rounding
    slivers of a window edge, count as red)."""
    C = len(g)
    return [bool(g[t] > GREEN_EPS and g[(t + 1) % C] <= GREEN_EPS) for t in range(C)]


def queue_sweep(q0: float, arr: np.ndarray, g: np.ndarray, sat: float,
                sneak: float) -> tuple[list[float], np.ndarray]:
    """One cycle of the vertical queue from ``q0``: (queue at every bin start and at the end, departures)."""
    C = len(g)
    ends = green_ends(g)
    queue = [q0]
    dep = np.empty(C)
    for t in range(C):
        nxt = queue[t] + arr[t] - sat * g[t]
        if sneak > 0 and ends[t]:
            nxt -= sneak
        nxt = max(0.0, nxt)
        dep[t] = queue[t] + arr[t] - nxt
        queue.append(nxt)
    return queue, dep


def link_outcome(net: CompiledNetwork, l: int, g: np.ndarray, queue: list[float], arr: np.ndarray,
                 params: ModelParams) -> tuple[float, float, float, float]:
    """(x, uniform delay, random delay, stops) of link ``l`` from its last sweep's queue and arrivals."""
    C = len(g)
    T = params.analysis_period_h
    q = float(net.link_flow_vps[l])
    sat = effective_sat_flow(net, l, g)
    cap = sat * float(np.sum(g)) / C
    sneak = sneakers(net)[l]
    if sneak > 0:
        cap += sneak * sum(green_ends(g)) / C
    x = q / cap if cap > 0 else math.inf
    uniform = random = 0.0
    lowest = min(queue)
    if q > 0:
        uniform = sum(qt - lowest for qt in queue) / (q * C)
        if cap > 0:
            random = 900.0 * T * ((x - 1) + math.sqrt((x - 1) ** 2 + 8 * 0.5 * x / (3600.0 * cap * T)))
        else:
            random = 3600.0
    stopped = sum(arr[t] if queue[t] > 1e-9 else arr[t] * (1.0 - g[t]) for t in range(C))
    arrived = float(np.sum(arr))
    stops = min(1.0, stopped / arrived) if arrived > 0 else 0.0
    return x, uniform, random, stops


def evaluate_reference(net: CompiledNetwork, plan: PlanArrays, params: ModelParams = ModelParams()) -> ModelResult:
    """Evaluate one plan with the plain reference model (no validation; see ``model.evaluate``)."""
    C = int(round(plan.cycle_s))
    n = net.n_links
    g = [green_profile(net, plan, l, params) for l in range(n)]
    flow = [float(v) for v in net.link_flow_vps]
    sat = [effective_sat_flow(net, l, g[l]) for l in range(n)]
    sneak = sneakers(net)

    dep_prev = [np.full(C, flow[l]) for l in range(n)]  # departures of the previous sweep
    q_end = [0.0] * n
    last_arr: list[np.ndarray] = [np.zeros(C) for _ in range(n)]  # the last sweep's arrivals and queues
    last_queue: list[list[float]] = [[] for _ in range(n)]
    sweep, converged = 0, False
    while True:
        sweep += 1
        dep_cur: dict[int, np.ndarray] = {}
        biggest_change = 0.0
        for l in range(n):
            arr = np.full(C, float(net.link_entry_flow_vps[l]))
            for j in range(int(net.link_in_ptr[l]), int(net.link_in_ptr[l + 1])):
                src = int(net.link_in_src[j])
                d_src = dep_cur[src] if src in dep_cur else dep_prev[src]
                arr = arr + float(net.link_in_share[j]) * disperse(d_src, float(net.link_travel_s[l]), params)
            queue, dep = queue_sweep(q_end[l], arr, g[l], sat[l], sneak[l])
            # steady when neither the queue nor the departure profile changes any more
            dep_change = float(np.abs(dep - dep_prev[l]).sum())
            biggest_change = max(biggest_change, abs(queue[C] - queue[0]), dep_change)
            q_end[l] = queue[C]
            dep_cur[l] = dep
            last_arr[l], last_queue[l] = arr, queue[:C]
        dep_prev = [dep_cur[l] for l in range(n)]
        if sweep >= params.warmup_cycles and biggest_change < params.tol_veh:
            converged = True
            break
        if sweep >= params.max_cycles:
            break

    uniform, random, stops, x = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    for l in range(n):
        x[l], uniform[l], random[l], stops[l] = link_outcome(net, l, g[l], last_queue[l], last_arr[l], params)
    delay = uniform + random
    q = np.array(flow)
    total_q = float(np.sum(q))
    return ModelResult(
        delay_s=delay,
        uniform_delay_s=uniform,
        random_delay_s=random,
        stops=stops,
        degree_of_saturation=x,
        pi=float(np.sum(3600.0 * q * (delay + params.stop_penalty_s * stops))),
        total_delay_veh_h_per_h=float(np.sum(q * delay)),
        total_stops_per_h=float(np.sum(3600.0 * q * stops)),
        mean_delay_s=float(np.sum(q * delay)) / total_q if total_q > 0 else 0.0,
        cycles_iterated=sweep,
        converged=converged,
    )



# ------------------------------------------------------------------------------------------
# local evaluation of moves


def active_sets_reference(net: CompiledNetwork, signal: int, depth: int = 2) -> list[int]:
    """Sorted active links of ``signal``: its links and the links fed by them, ``depth`` levels deep."""
    level = {l for l in range(net.n_links) if int(net.link_signal[l]) == signal}
    members = set(level)
    for _ in range(depth):
        level = {l for l in range(net.n_links)
                 for j in range(int(net.link_in_ptr[l]), int(net.link_in_ptr[l + 1]))
                 if int(net.link_in_src[j]) in level}
        members |= level
    return sorted(members)


def evaluate_local_reference(net: CompiledNetwork, state: BaseState, active_links: list[int], offsets: np.ndarray,
                             greens: np.ndarray, params: ModelParams = ModelParams(), *,
                             local_sweeps: int = 3) -> np.ndarray:
    """PI_local of each candidate row over ``active_links`` (see ``local_eval.evaluate_local``)."""
    cycle = float(state.plan.cycle_s)
    C = int(round(cycle))
    act = sorted(int(l) for l in active_links)
    sneak = sneakers(net)
    out = np.empty(len(offsets))
    for c in range(len(offsets)):
        plan = PlanArrays(cycle, np.asarray(offsets[c]), np.asarray(greens[c]))
        g = {l: green_profile(net, plan, l, params) for l in act}
        dep = {l: np.array(state.dep[l], dtype=float) for l in act}  # local departures
        q_end = {l: float(state.q_end[l]) for l in act}
        pi = 0.0
        for _sweep in range(local_sweeps):
            pi = 0.0
            for l in act:
                arr = np.full(C, float(net.link_entry_flow_vps[l]))
                for j in range(int(net.link_in_ptr[l]), int(net.link_in_ptr[l + 1])):
                    src = int(net.link_in_src[j])
                    d_src = dep[src] if src in dep else np.asarray(state.dep[src])
                    arr = arr + float(net.link_in_share[j]) * disperse(d_src, float(net.link_travel_s[l]), params)
                queue, d = queue_sweep(q_end[l], arr, g[l], effective_sat_flow(net, l, g[l]), sneak[l])
                q_end[l] = queue[C]
                dep[l] = d
                _x, uniform, random, stops = link_outcome(net, l, g[l], queue[:C], arr, params)
                pi += 3600.0 * float(net.link_flow_vps[l]) * (uniform + random + params.stop_penalty_s * stops)
        out[c] = pi
    return out


def evaluate_moves_reference(net: CompiledNetwork, base_plan_state: BaseState, signal: int, offsets: np.ndarray,
                             greens: np.ndarray, params: ModelParams = ModelParams(), *,
                             local_sweeps: int = 3, depth: int = 2) -> np.ndarray:
    """PI_local(candidate) − PI_local(base plan) over the active set of ``signal``."""
    act = active_sets_reference(net, signal, depth)
    base = base_plan_state.plan
    rows_off = np.vstack([np.asarray(base.offset_s)[None, :], offsets])
    rows_green = np.vstack([np.asarray(base.green_s)[None, :], greens])
    pi = evaluate_local_reference(net, base_plan_state, act, rows_off, rows_green, params, local_sweeps=local_sweeps)
    delta: np.ndarray = pi[1:] - pi[0]
    return delta
