"""Two-way green-wave bandwidth on an arterial (MAXBAND-style MILP with scipy.optimize.milp).

For a fixed common cycle C and fixed splits, choose each signal's offset so that a band of
width b (outbound) and b̄ (inbound) passes every signal's through green at the progression
speed; maximise b + k·b̄ (k weighs the inbound direction, by default its flow share).

In cycle units, with the outbound band leaving signal 0 at θ and reaching signal i after the
cumulative travel time T_i, and the through green of signal i at [a_i, e_i] of its own cycle
(shifted by the offset φ_i and a whole number n_i of cycles)::

    a_i + φ_i + n_i ≤ θ + T_i        θ + T_i + b ≤ e_i + φ_i + n_i
    ā_i + φ_i + n̄_i ≤ θ̄ + T̄_i        θ̄ + T̄_i + b̄ ≤ ē_i + φ_i + n̄_i   (inbound, from the far end)

φ_0 = 0. This is Little's MAXBAND with the loop integers written per signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from greenwave.engine.arrays import CompiledNetwork, ModelParams, PlanArrays
from greenwave.errors import PlanError


@dataclass(frozen=True)
class Arterial:
    """A chain of signals along a main road, with its through links both ways.

    ``out_links[i]`` / ``in_links[i]``: the link at ``signals[i]`` carrying the outbound /
    inbound through stream; ``travel_out_s[i]`` from signal i to i+1, ``travel_in_s[i]`` from
    signal i+1 back to i (s).
    """

    signals: tuple[int, ...]
    out_links: tuple[int, ...]
    in_links: tuple[int, ...]
    travel_out_s: tuple[float, ...]
    travel_in_s: tuple[float, ...]


@dataclass(frozen=True)
class BandwidthResult:
    """Bands (s) and the offsets (s, all signals) that give them."""

    arterial: Arterial
    cycle_s: float
    offsets_s: np.ndarray
    band_out_s: float
    band_in_s: float
    theta_out_s: float
    theta_in_s: float


def _stream_graph(net: CompiledNetwork) -> dict[tuple[int, int], tuple[float, int, int]]:
    """(upstream signal, downstream signal) → (vehicles/s of the heaviest stream, its link at
    the upstream signal, its link at the downstream signal)."""
    best: dict[tuple[int, int], tuple[float, int, int]] = {}
    for link in range(net.n_links):
        for j in range(net.link_in_ptr[link], net.link_in_ptr[link + 1]):
            src = int(net.link_in_src[j])
            a, b = int(net.link_signal[src]), int(net.link_signal[link])
            if a == b:
                continue
            w = float(net.link_in_share[j] * net.link_flow_vps[src])
            if w > best.get((a, b), (-1.0, -1, -1))[0]:
                best[(a, b)] = (w, src, link)
    return best


def is_arterial(net: CompiledNetwork) -> bool:
    """True when the signals form one chain: each exchanges traffic with at most two others and
    together they make a single path (a corridor, not a grid)."""
    g = nx.Graph()
    g.add_nodes_from(range(net.n_signals))
    g.add_edges_from(_stream_graph(net))
    return (
        net.n_signals >= 2
        and nx.is_connected(g)
        and all(d <= 2 for _, d in g.degree())
        and g.number_of_edges() == net.n_signals - 1
    )


def find_arterial(net: CompiledNetwork, signals: list[int] | None = None) -> Arterial:
    """The main road: the heaviest chain of neighbouring signals (by two-way through flow).

    ``signals`` fixes the chain (in order) instead.
    """
    streams = _stream_graph(net)
    if signals is None:
        g = nx.Graph()
        for (a, b), (w, _, _) in streams.items():
            prev = g.get_edge_data(a, b, {"weight": 0.0})["weight"]
            g.add_edge(a, b, weight=prev + w)
        if g.number_of_edges() == 0:
            raise PlanError("no two neighbouring signals exchange traffic: there is no arterial")
        a, b, _ = max(g.edges(data="weight"), key=lambda e: e[2])
        chain = [a, b]
        used = {a, b}
        for _ in range(2):  # grow at the tail, then (reversed) at the head
            while True:
                end = chain[-1]
                nxt = [(d["weight"], n) for n, d in g[end].items() if n not in used]
                if not nxt:
                    break
                _, n = max(nxt)
                chain.append(n)
                used.add(n)
            chain.reverse()
        signals = chain
    if len(signals) < 2:
        raise PlanError("an arterial needs at least two signals")
    out_links, in_links, t_out, t_in = [], [], [], []
    for i in range(len(signals) - 1):
        a, b = signals[i], signals[i + 1]
        if (a, b) not in streams or (b, a) not in streams:
            raise PlanError(
                f"signals {net.signal_ids[a]!r} and {net.signal_ids[b]!r} are not linked both ways"
            )
        _, src, dst = streams[(a, b)]
        out_links.append(src)
        t_out.append(float(net.link_travel_s[dst]))
        if i == len(signals) - 2:
            out_links.append(dst)
        _, src_in, dst_in = streams[(b, a)]
        t_in.append(float(net.link_travel_s[dst_in]))
        in_links.append(dst_in)
        if i == len(signals) - 2:
            in_links.append(src_in)
    return Arterial(tuple(signals), tuple(out_links), tuple(in_links), tuple(t_out), tuple(t_in))


def green_window(
    net: CompiledNetwork, plan: PlanArrays, link: int, params: ModelParams | None = None
) -> tuple[float, float]:
    """The longest effective green window [start, end) of ``link`` in seconds of the cycle,
    relative to its signal's offset (end may exceed the cycle when it wraps)."""
    p = params or ModelParams()
    c = int(round(plan.cycle_s))
    sig = int(net.link_signal[link])
    stages = net.stages_of(sig)
    starts = {}
    t = 0.0
    for k in stages:
        starts[k] = t
        t += plan.green_s[k] + net.stage_intergreen_s[k]
    mask = np.zeros(2 * c, dtype=bool)
    for k in net.link_stage_idx[net.link_stage_ptr[link]:net.link_stage_ptr[link + 1]]:
        a = int(round(starts[int(k)] + p.start_lag_s))
        e = int(round(starts[int(k)] + plan.green_s[int(k)] + p.end_gain_s))
        for x in range(a, e):
            mask[x % c] = True
            mask[x % c + c] = True
    if not mask.any():
        raise PlanError(f"link {link} of signal {net.signal_ids[sig]!r} is never green")
    if mask.all():
        return 0.0, float(c)
    best = (0, 0)
    run_start = None
    for x in range(2 * c):
        if mask[x] and run_start is None:
            run_start = x
        if (not mask[x] or x == 2 * c - 1) and run_start is not None:
            end = x if not mask[x] else x + 1
            if end - run_start > best[1] - best[0] and run_start < c:
                best = (run_start, end)
            run_start = None
    return float(best[0]), float(min(best[1], best[0] + c))


def maximise_bandwidth(
    net: CompiledNetwork,
    plan: PlanArrays,
    *,
    arterial: Arterial | None = None,
    inbound_weight: float | None = None,
    params: ModelParams | None = None,
) -> BandwidthResult:
    """Offsets (s) that maximise two-way bandwidth along the arterial for the plan's cycle and
    splits. Signals off the arterial keep their offsets."""
    art = arterial or find_arterial(net)
    n = len(art.signals)
    cyc = float(plan.cycle_s)
    zero = PlanArrays(cyc, np.zeros(net.n_signals), np.asarray(plan.green_s, dtype=np.float64))
    win_out = [green_window(net, zero, l, params) for l in art.out_links]
    win_in = [green_window(net, zero, l, params) for l in art.in_links]
    t_cum_out = np.concatenate([[0.0], np.cumsum(art.travel_out_s)]) / cyc
    t_cum_in = np.concatenate([np.cumsum(art.travel_in_s[::-1])[::-1], [0.0]]) / cyc  # from far end
    if inbound_weight is None:
        q_out = float(np.mean([net.link_flow_vps[l] for l in art.out_links]))
        q_in = float(np.mean([net.link_flow_vps[l] for l in art.in_links]))
        inbound_weight = q_in / q_out if q_out > 0 else 1.0
    # variables: b, bb, theta, theta_in, phi_0..phi_{n-1}, n_0..n_{n-1}, nb_0..nb_{n-1}
    nv = 4 + 3 * n
    B, BB, TH, THI = 0, 1, 2, 3
    PHI = 4
    NI = 4 + n
    NBI = 4 + 2 * n
    rows, lo, hi = [], [], []

    def row(coeffs: dict[int, float], low: float, high: float) -> None:
        r = np.zeros(nv)
        for k, v in coeffs.items():
            r[k] += v
        rows.append(r)
        lo.append(low)
        hi.append(high)

    for i in range(n):
        a, e = win_out[i][0] / cyc, win_out[i][1] / cyc
        # a + phi + n ≤ theta + T  →  phi + n − theta ≤ T − a
        row({PHI + i: 1, NI + i: 1, TH: -1}, -np.inf, t_cum_out[i] - a)
        # theta + T + b ≤ e + phi + n  →  theta + b − phi − n ≤ e − T
        row({TH: 1, B: 1, PHI + i: -1, NI + i: -1}, -np.inf, e - t_cum_out[i])
        ai, ei = win_in[i][0] / cyc, win_in[i][1] / cyc
        row({PHI + i: 1, NBI + i: 1, THI: -1}, -np.inf, t_cum_in[i] - ai)
        row({THI: 1, BB: 1, PHI + i: -1, NBI + i: -1}, -np.inf, ei - t_cum_in[i])
    span = int(np.ceil(max(t_cum_out.max(), t_cum_in.max()))) + 3
    lb = np.zeros(nv)
    ub = np.ones(nv)
    lb[NI:], ub[NI:] = -span, span
    ub[PHI] = 0.0  # phi_0 = 0
    ub[PHI + 1:PHI + n] = 1.0 - 1e-9
    integrality = np.zeros(nv)
    integrality[NI:] = 1
    c = np.zeros(nv)
    c[B], c[BB] = -1.0, -float(inbound_weight)
    res = milp(c, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=integrality,
               bounds=Bounds(lb, ub), options={"time_limit": 30.0})
    if res.x is None:
        raise PlanError(f"the bandwidth MILP found no solution: {res.message}")
    x = res.x
    offsets = np.array(plan.offset_s, dtype=np.float64).copy()
    for i, sig in enumerate(art.signals):
        offsets[sig] = (x[PHI + i] * cyc) % cyc
    offsets = np.round(offsets, 6) % cyc
    return BandwidthResult(art, cyc, offsets, x[B] * cyc, x[BB] * cyc, x[TH] * cyc, x[THI] * cyc)


def bandwidth_offsets(net: CompiledNetwork, plan: PlanArrays) -> np.ndarray:
    """Offsets of the two-way bandwidth solution (for use as an optimiser start)."""
    return maximise_bandwidth(net, plan).offsets_s


def _remaining_green(window: tuple[float, float], offset: float, cyc: float, t: np.ndarray) -> np.ndarray:
    """Seconds of green left at times ``t`` for a green window [a, e) shifted by ``offset``."""
    a, e = window
    x = (t - a - offset) % cyc  # time since this cycle's green start
    return np.where(x < e - a, (e - a) - x, 0.0)


def bands_of_plan(
    net: CompiledNetwork,
    plan: PlanArrays,
    arterial: Arterial | None = None,
    *,
    params: ModelParams | None = None,
    resolution_s: float = 0.5,
) -> BandwidthResult:
    """The two-way bands a given plan (with its own offsets) actually achieves: the widest band
    that enters at some time θ and finds every through green still open for its whole width."""
    art = arterial or find_arterial(net)
    cyc = float(plan.cycle_s)
    theta = np.arange(0.0, cyc, resolution_s)
    t_out = np.concatenate([[0.0], np.cumsum(art.travel_out_s)])
    t_in = np.concatenate([np.cumsum(art.travel_in_s[::-1])[::-1], [0.0]])
    width_out = np.full(theta.shape, np.inf)
    width_in = np.full(theta.shape, np.inf)
    for i, sig in enumerate(art.signals):
        off = float(plan.offset_s[sig])
        zero = PlanArrays(cyc, np.zeros(net.n_signals), np.asarray(plan.green_s, dtype=np.float64))
        w_o = green_window(net, zero, art.out_links[i], params)
        w_i = green_window(net, zero, art.in_links[i], params)
        width_out = np.minimum(width_out, _remaining_green(w_o, off, cyc, theta + t_out[i]))
        width_in = np.minimum(width_in, _remaining_green(w_i, off, cyc, theta + t_in[i]))
    jo, ji = int(np.argmax(width_out)), int(np.argmax(width_in))
    return BandwidthResult(art, cyc, np.asarray(plan.offset_s, dtype=np.float64).copy(),
                           float(width_out[jo]), float(width_in[ji]), float(theta[jo]), float(theta[ji]))
