"""Coordination sub-areas: which neighbouring signals should share a cycle.

Two signals are *neighbours* when a vehicle leaving one reaches the other without passing a
third signal (through any number of unsignalised junctions, up to ``max_distance_m``). Their
**coupling index** is the two-way flow on the roads between them per metre of distance,
``CI = (q_ab + q_ba) / L`` in veh/h per m (after Whitson's coupling index V/D): close signals
with heavy flow between them gain most from a common cycle and good offsets; far apart or
lightly used pairs lose little by running their own cycle.

:func:`partition` links neighbours whose CI reaches ``threshold`` (and always those closer than
``always_m``) and returns the connected components of that graph (networkx) as sub-areas. With
the previous partition given, links inside an existing sub-area survive down to
``threshold × keep_factor`` — hysteresis, so sub-areas merge when flows rise and split only when
they have clearly fallen, instead of flickering at the threshold.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx
import pandas as pd

from greenwave.networks.model import RoadNetwork

__all__ = ["SETTING_RULES", "SignalLink", "SubareaSettings", "edge_flows", "neighbour_links", "coupling_graph",
           "partition", "subareas"]


#: What each :class:`SubareaSettings` field must be: (the rule in words, whether a value passes).
SETTING_RULES: dict[str, tuple[str, Callable[[float], bool]]] = {
    "threshold": ("> 0", lambda v: v > 0),
    "always_m": (">= 0", lambda v: v >= 0),
    "max_distance_m": ("> 0", lambda v: v > 0),
    "keep_factor": ("in (0, 1]", lambda v: 0 < v <= 1),
}


@dataclass(frozen=True)
class SubareaSettings:
    """How signals are grouped into sub-areas (see :func:`partition`): ``threshold`` (veh/h per m),
    ``always_m`` (pairs closer than this share a cycle whatever their flow), ``max_distance_m``
    (neighbours farther apart are never coupled) and ``keep_factor`` (hysteresis); each checked
    against :data:`SETTING_RULES`."""

    threshold: float = 2.0
    always_m: float = 120.0
    max_distance_m: float = 1000.0
    keep_factor: float = 0.7

    def __post_init__(self) -> None:
        for name, (rule, ok) in SETTING_RULES.items():
            if not ok(getattr(self, name)):
                raise ValueError(f"sub-area setting {name} must be {rule}, not {getattr(self, name)!r}")


@dataclass(frozen=True)
class SignalLink:
    """A road connection from signal ``a`` to signal ``b``: ``distance_m`` along the shortest
    route and the edges of that route (first leaves ``a``, last enters ``b``)."""

    a: str
    b: str
    distance_m: float
    edges: tuple[str, ...]


def _signal_of(network: RoadNetwork) -> dict[str, str]:
    return {n: tls for n, tls in network.graph.nodes(data="tls") if tls is not None}


def neighbour_links(network: RoadNetwork, *, max_distance_m: float = 1000.0) -> list[SignalLink]:
    """Every neighbouring signal pair (directed), by a bounded Dijkstra from each signal.

    The search from a signal stops at other signals' junctions, so the cost grows with the
    number of signals times the (bounded) road area around each, not with its square.
    """
    g = network.graph
    sig_of = _signal_of(network)
    nodes_of: dict[str, list[str]] = {}
    for n, s in sig_of.items():
        nodes_of.setdefault(s, []).append(n)
    links: dict[tuple[str, str], SignalLink] = {}
    for sid, nodes in sorted(nodes_of.items()):
        own = set(nodes)
        heap: list[tuple[float, str, tuple[str, ...]]] = [(0.0, n, ()) for n in nodes]
        seen: dict[str, float] = {}
        while heap:
            d, n, path = heapq.heappop(heap)
            if n in seen:
                continue
            seen[n] = d
            other = sig_of.get(n)
            if other is not None and other != sid:
                key = (sid, other)
                if key not in links or d < links[key].distance_m:
                    links[key] = SignalLink(sid, other, d, path)
                continue  # never search through another signal
            for _, v, key, attrs in g.out_edges(n, keys=True, data=True):
                if v in own or v in seen:
                    continue
                nd = d + float(attrs.get("length_m", 0.0))
                if nd <= max_distance_m:
                    heapq.heappush(heap, (nd, v, (*path, key)))
    return [links[k] for k in sorted(links)]


def edge_flows(flows: pd.DataFrame) -> dict[str, float]:
    """Flow (veh/h) entering each edge, from movement flows (``from_edge, to_edge, flow_vph``)."""
    if flows.empty:
        return {}
    return {str(k): float(v) for k, v in flows.groupby("to_edge")["flow_vph"].sum().items()}


def coupling_graph(
    network: RoadNetwork,
    flows: pd.DataFrame,
    *,
    links: Sequence[SignalLink] | None = None,
    signals: Iterable[str] | None = None,
    max_distance_m: float = 1000.0,
) -> nx.Graph:
    """Undirected graph of neighbouring signals with ``distance_m``, ``flow_vph`` (two-way flow
    on the last edge into each signal) and ``coupling`` (veh/h per m) per pair."""
    links = neighbour_links(network, max_distance_m=max_distance_m) if links is None else links
    keep = set(network.signals if signals is None else signals)
    q = edge_flows(flows)
    g = nx.Graph()
    g.add_nodes_from(sorted(keep))
    for lk in links:
        if lk.a not in keep or lk.b not in keep or not lk.edges:
            continue
        flow = q.get(lk.edges[-1], 0.0)
        if g.has_edge(lk.a, lk.b):
            e = g.edges[lk.a, lk.b]
            e["flow_vph"] += flow
            e["distance_m"] = min(e["distance_m"], lk.distance_m)
        else:
            g.add_edge(lk.a, lk.b, flow_vph=flow, distance_m=lk.distance_m)
    for _, _, e in g.edges(data=True):
        e["coupling"] = e["flow_vph"] / max(e["distance_m"], 1.0)
    return g


def partition(
    graph: nx.Graph,
    *,
    threshold: float = 2.0,
    always_m: float = 120.0,
    previous: Sequence[Iterable[str]] | None = None,
    keep_factor: float = 0.7,
) -> list[tuple[str, ...]]:
    """Sub-areas (sorted tuples of signal ids, largest first) from a :func:`coupling_graph`.

    A pair is coupled when ``coupling ≥ threshold`` veh/h per m or ``distance_m ≤ always_m``;
    a pair inside one sub-area of ``previous`` stays coupled down to ``threshold × keep_factor``.
    """
    SubareaSettings(threshold=threshold, always_m=always_m, keep_factor=keep_factor)  # ValueError if out of range
    area_of: Mapping[str, int] = {s: i for i, area in enumerate(previous or ()) for s in area}
    h = nx.Graph()
    h.add_nodes_from(graph.nodes)
    for a, b, e in graph.edges(data=True):
        together = a in area_of and area_of.get(a) == area_of.get(b)
        need = threshold * (keep_factor if together else 1.0)
        if e["coupling"] >= need or e["distance_m"] <= always_m:
            h.add_edge(a, b)
    areas = [tuple(sorted(c)) for c in nx.connected_components(h)]
    return sorted(areas, key=lambda c: (-len(c), c))


def subareas(
    network: RoadNetwork,
    flows: pd.DataFrame,
    signals: Iterable[str],
    settings: SubareaSettings,
    *,
    links: Sequence[SignalLink] | None = None,
    previous: Sequence[Iterable[str]] | None = None,
) -> list[tuple[str, ...]]:
    """The sub-areas of ``signals`` under ``flows``: :func:`partition` of their
    :func:`coupling_graph` with ``settings`` (``links`` from :func:`neighbour_links` when the
    caller keeps them between calls)."""
    if links is None:
        links = neighbour_links(network, max_distance_m=settings.max_distance_m)
    graph = coupling_graph(network, flows, links=links, signals=signals)
    return partition(graph, threshold=settings.threshold, always_m=settings.always_m, previous=previous,
                     keep_factor=settings.keep_factor)
