"""Compiling the links: the traffic streams of the chosen signals, their saturation flows and feeders.

The steps of :func:`greenwave.networks.compile.compile_network` that work link by link; the rules
are in that module's docstring (*Links*, *Flows and feeders*). Links come in compiled order, one
entry per link in each list of a :class:`LinkTable`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from greenwave.networks.model import Program, RoadNetwork, Signal
from greenwave.networks.signal_states import GREEN, PRIORITY_GREEN

__all__ = ["LinkTable", "collect_links", "feeders", "gap_acceptance_factor", "lane_users", "rate_factors",
           "saturation_flows", "shared_lane_blocking", "travel_times"]


@dataclass
class LinkTable:
    """The links of the chosen signals in compiled order (see *Links*); one entry per link in each
    list: signal, approach and exit edge, from-lanes, stages showing it green, whether one of them
    shows it ``G``, its SUMO link indices and its SUMO direction."""

    signal: list[int] = field(default_factory=list)
    from_edge: list[str] = field(default_factory=list)
    to_edge: list[str] = field(default_factory=list)
    lanes: list[set[str]] = field(default_factory=list)
    stages: list[list[int]] = field(default_factory=list)
    protected: list[bool] = field(default_factory=list)
    index_sets: list[set[int]] = field(default_factory=list)
    direction: list[str] = field(default_factory=list)


def collect_links(network: RoadNetwork, chosen: Sequence[tuple[Signal, Program]], sig_stage_ptr: Sequence[int],
                  stage_state: Sequence[str]) -> LinkTable:
    """One link per (signal, from_edge, to_edge) over the vehicle connections of the ``chosen``
    signals that are green in one of their stages (signal ``i``'s stages are
    ``sig_stage_ptr[i] .. sig_stage_ptr[i+1]-1``, ``stage_state`` their green phases' states)."""
    graph_edges = network.edge_ends
    lane_ok: dict[str, frozenset[str]] = {}

    def vehicle_lanes(edge: str) -> frozenset[str]:
        if edge not in lane_ok:
            lane_ok[edge] = frozenset(network.edge(edge)["lane_ids"])
        return lane_ok[edge]

    out = LinkTable()
    for i, (sig, _program) in enumerate(chosen):
        groups: dict[tuple[str, str], tuple[set[int], set[str]]] = {}
        dirs: dict[tuple[str, str], str] = {}
        for m in sig.movements:
            for x in (m, *m.merged):
                if not x.is_used or x.is_pedestrian:
                    continue
                if x.from_edge not in graph_edges or x.to_edge not in graph_edges:
                    continue
                if x.from_lane not in vehicle_lanes(x.from_edge):
                    continue
                idx, lanes = groups.setdefault((x.from_edge, x.to_edge), (set(), set()))
                dirs.setdefault((x.from_edge, x.to_edge), x.direction)
                idx.add(m.link_index)
                lanes.add(x.from_lane)
        for (fe, te), (idx, lanes) in groups.items():
            green, protected = [], False
            for s in range(sig_stage_ptr[i], sig_stage_ptr[i + 1]):
                chars = {stage_state[s][li] for li in idx if li < len(stage_state[s])}
                if chars & GREEN:
                    green.append(s)
                    protected = protected or PRIORITY_GREEN in chars
            if not green:
                continue
            out.signal.append(i)
            out.from_edge.append(fe)
            out.to_edge.append(te)
            out.lanes.append(lanes)
            out.stages.append(green)
            out.protected.append(protected)
            out.index_sets.append(idx)
            out.direction.append(dirs.get((fe, te), "s"))
    return out


def rate_factors(chosen: Sequence[tuple[Signal, Program]], links: LinkTable, stage_state: Sequence[str],
                  flow: np.ndarray, sat_lane_vps: float, *, left_turn_factor: float, right_turn_factor: float,
                  permissive_factor: float | None, critical_gap_s: float, follow_up_s: float) -> np.ndarray:
    """Each link's own discharge rate over the lane rate: its turning factor, and for a link that
    is only ever permitted (``g``) the fixed ``permissive_factor`` or else the gap-limited rate,
    at most the unopposed turning rate."""
    n_links = len(links.signal)
    factor = np.ones(n_links, dtype=np.float64)
    links_of_signal: dict[int, list[int]] = {}
    for l in range(n_links):
        links_of_signal.setdefault(links.signal[l], []).append(l)
    for l in range(n_links):
        if links.direction[l] in ("l", "L"):
            factor[l] *= left_turn_factor
        elif links.direction[l] in ("r", "R"):
            factor[l] *= right_turn_factor
        if not links.protected[l]:
            if permissive_factor is not None:
                factor[l] *= permissive_factor
            else:  # the gap-limited rate, at most the unopposed turning rate
                factor[l] = min(factor[l], gap_acceptance_factor(
                    l, chosen, links.signal, links.stages, links.index_sets, stage_state, flow, sat_lane_vps,
                    critical_gap_s=critical_gap_s, follow_up_s=follow_up_s,
                    signal_links=links_of_signal[links.signal[l]],
                ))
    return factor


def lane_users(links: LinkTable) -> dict[str, list[int]]:
    """The links using each from-lane, by lane id."""
    lane_users: dict[str, list[int]] = {}
    for l, lanes in enumerate(links.lanes):
        for ln in lanes:
            lane_users.setdefault(ln, []).append(l)
    return lane_users


def saturation_flows(by_lane: dict[str, list[int]], flow: np.ndarray, factor: np.ndarray, sat_lane_vps: float,
                     shared_lanes: str) -> np.ndarray:
    """Each link's saturation flow (veh/s): its share of every from-lane it uses (``by_lane``:
    :func:`lane_users`; see *Links* in :mod:`greenwave.networks.compile`)."""
    sat = np.zeros(len(flow), dtype=np.float64)
    for users in by_lane.values():
        total = float(sum(flow[u] for u in users))
        if shared_lanes == "equivalents" and total > 0:
            lane_rate = sat_lane_vps / sum(float(flow[u]) / total / factor[u] for u in users)
            for u in users:
                sat[u] += lane_rate * flow[u] / total if flow[u] > 0 else sat_lane_vps * factor[u] / len(users)
            continue
        for u in users:
            if flow[u] > 0 and total > 0:
                sat[u] += sat_lane_vps * factor[u] * flow[u] / total
            else:
                sat[u] += sat_lane_vps * factor[u] / len(users)
    return sat


def travel_times(network: RoadNetwork, links: LinkTable) -> np.ndarray:
    """Cruise time (s) of each link's approach edge: length / speed."""
    travel = np.empty(len(links.signal), dtype=np.float64)
    for l, fe in enumerate(links.from_edge):
        attrs = network.edge(fe)
        travel[l] = float(attrs["length_m"]) / max(float(attrs["speed_mps"]), 1e-6)
    return travel


def feeders(network: RoadNetwork, chosen: Sequence[tuple[Signal, Program]], links: LinkTable,
             flow: np.ndarray) -> tuple[np.ndarray, list[int], list[int], list[float]]:
    """Entry flow of each link and its feeders as CSR lists ``(entry, in_ptr, in_src, in_share)``
    (see *Flows and feeders*)."""
    graph_edges = network.edge_ends
    tls_nodes: dict[str, set[str]] = {}
    for n, tls in network.graph.nodes(data="tls"):
        if tls is not None:
            tls_nodes.setdefault(tls, set()).add(n)
    junction_sets: list[frozenset[str]] = []
    node_signal: dict[str, set[int]] = {}
    for i, (sig, _program) in enumerate(chosen):
        js = frozenset(sig.junctions) | tls_nodes.get(sig.id, set())
        junction_sets.append(js)
        for node in js:
            node_signal.setdefault(node, set()).add(i)
    n_links = len(links.signal)
    links_into: dict[str, list[int]] = {}  # to_edge -> links sending onto it
    links_on: dict[tuple[int, str], list[int]] = {}  # (signal, from_edge) -> links
    for l in range(n_links):
        links_into.setdefault(links.to_edge[l], []).append(l)
        links_on.setdefault((links.signal[l], links.from_edge[l]), []).append(l)
    entry = flow.copy()
    in_ptr = [0]
    in_src: list[int] = []
    in_share: list[float] = []
    for l in range(n_links):
        e = links.from_edge[l]
        s = links.signal[l]
        u_node, v_node = graph_edges[e]
        feeders: list[int] = []
        if v_node in junction_sets[s]:
            ups = node_signal.get(u_node, set())
            feeders = [u for u in links_into.get(e, []) if links.signal[u] in ups]
        if feeders and flow[l] > 0:
            q_e = float(sum(flow[x] for x in links_on[(s, e)]))
            i_e = float(sum(flow[u] for u in feeders))
            denom = max(q_e, i_e)
            if denom > 0:
                share = float(flow[l]) / denom
                entry[l] = 0.0 if i_e >= q_e else float(flow[l]) * (q_e - i_e) / q_e
                for u in feeders:
                    in_src.append(u)
                    in_share.append(share)
        in_ptr.append(len(in_src))
    return entry, in_ptr, in_src, in_share


def gap_acceptance_factor(
    l: int,
    chosen: Sequence[tuple[Signal, Program]],
    link_signal: Sequence[int],
    link_stages: Sequence[Sequence[int]],
    link_index_sets: Sequence[set[int]],
    stage_state: Sequence[str],
    flow: np.ndarray,
    sat_lane_vps: float,
    critical_gap_s: float = 4.5,
    follow_up_s: float = 2.5,
    *,
    signal_links: Sequence[int],
) -> float:
    """HCM permitted-movement factor of a permissive link: the flow it can filter through the
    gaps of the conflicting streams shown ``G`` in its stages (worst stage), over lane
    saturation flow. ``signal_links``: the links of ``l``'s signal."""
    i = link_signal[l]
    conflicts = chosen[i][0].conflicts
    mine = list(link_index_sets[l])
    worst = 1.0
    for stage in link_stages[l]:
        state = stage_state[stage]
        v_o = 0.0
        for m in signal_links:
            if m == l:
                continue
            theirs = [k for k in link_index_sets[m] if k < len(state) and state[k] == PRIORITY_GREEN]
            if theirs and conflicts[np.ix_(mine, theirs)].any():
                v_o += float(flow[m])
        if v_o <= 1e-9:
            s_p = 1.0 / follow_up_s
        else:
            s_p = v_o * math.exp(-v_o * critical_gap_s) / (1.0 - math.exp(-v_o * follow_up_s))
        worst = min(worst, s_p / sat_lane_vps)
    return min(1.0, max(worst, 0.05))


def shared_lane_blocking(
    by_lane: dict[str, list[int]],
    flow: np.ndarray,
    factor: np.ndarray,
    protected: Sequence[bool],
    sat_lane_vps: float,
    sneak: np.ndarray,
) -> np.ndarray:
    """``link_block`` rows (b, a0, a1) from the lanes shared by permitted and other links.

    In a lane whose flow has a share ``p`` of permitted turners, the vehicles that pass in one
    green window of length W before the next turner finds no gap and stops the lane are, in the
    mean, ``(k + 1) / p − 1``, with ``k = sneakers + s_p W`` turners cleared per window (``s_p``
    the turners' gap-limited rate). Each other user of the lane gets its flow share of that
    (``a0`` and ``a1`` per link), and ``b`` is the saturation flow it has from such lanes.
    """
    block = np.zeros((len(flow), 3), dtype=np.float64)
    for users in by_lane.values():
        total = float(sum(flow[u] for u in users))
        permitted = [u for u in users if not protected[u]]
        others = [u for u in users if protected[u]]
        p_flow = float(sum(flow[u] for u in permitted))
        if total <= 0 or p_flow <= 0 or not others:
            continue
        p = p_flow / total
        k0 = float(sum(sneak[u] * flow[u] for u in permitted)) / p_flow
        s_p = float(sum(sat_lane_vps * factor[u] * flow[u] for u in permitted)) / p_flow
        for u in others:
            w = float(flow[u]) / total
            if w <= 0:
                continue
            block[u, 0] += sat_lane_vps * factor[u] * w
            block[u, 1] += ((k0 + 1.0) / p - 1.0) * w
            block[u, 2] += s_p / p * w
    return block
