"""The road graph as parking needs it: drive times to every car park, destination areas.

Drive times come from the free-flow road graph (edge length ÷ speed limit) with one Dijkstra
per car park on the reversed edge graph (``scipy.sparse.csgraph``): O(P · E log E) once per
run, then every look-up is an array read. An infinite time means the car park cannot be
reached from that edge: guidance never sends anyone there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from greenwave.errors import ScenarioError

if TYPE_CHECKING:
    from greenwave.parking.carparks import CarPark


@dataclass(frozen=True)
class DriveTimes:
    """Free-flow drive times (s) from the end of every road edge to every car park.

    Attributes
    ----------
    edge_index
        Edge id → row.
    to_park
        ``(edges, car parks)`` float32: time from the end of the edge to the end of the car
        park's edge, s; ``inf`` where unreachable. A vehicle already on the car park's edge
        but past it needs :attr:`loop` instead.
    loop
        Per car park: time to leave its edge and come back to it, s (``inf``: impossible).
    """

    edge_index: dict[str, int]
    to_park: np.ndarray
    loop: np.ndarray

    def from_edge(self, edge: str) -> np.ndarray:
        """Drive times from ``edge`` to every car park (all ``inf`` for an unknown edge), s."""
        i = self.edge_index.get(edge)
        if i is None:
            return np.full(self.to_park.shape[1], np.inf, dtype=np.float32)
        return self.to_park[i]


def _is_road(edge: Any) -> bool:
    return edge.getFunction() == "" and edge.allows("passenger")


def drive_times(net: Any, car_parks: Sequence[CarPark], *, chunk: int = 64) -> DriveTimes:
    """Drive times from every road edge of ``net`` (sumolib) to each of ``car_parks``.

    Arcs follow the network's connections between roads cars may use; an arc e → f costs the
    free-flow time of f. Dijkstra runs in chunks of ``chunk`` car parks to bound memory.
    """
    edges = sorted((e for e in net.getEdges() if _is_road(e)), key=lambda e: e.getID())
    index = {e.getID(): i for i, e in enumerate(edges)}
    tt = np.array([e.getLength() / max(e.getSpeed(), 0.1) for e in edges])
    rows, cols, data = [], [], []
    for e in edges:
        i = index[e.getID()]
        for f in e.getOutgoing():
            j = index.get(f.getID())
            if j is not None:
                rows.append(i)
                cols.append(j)
                data.append(tt[j])
    n = len(edges)
    graph = csr_matrix((np.array(data) + 1e-9, (rows, cols)), shape=(n, n))
    reverse = graph.T.tocsr()
    targets = np.array([index[c.edge] for c in car_parks], dtype=np.int64)
    to_park = np.full((n, len(car_parks)), np.inf, dtype=np.float32)
    for s in range(0, len(targets), chunk):
        block = targets[s:s + chunk]
        d = dijkstra(reverse, directed=True, indices=block)  # (block, n): from node to target
        to_park[:, s:s + len(block)] = d.T.astype(np.float32)
    loop = np.full(len(car_parks), np.inf)
    for k, t in enumerate(targets):
        succ = graph.indices[graph.indptr[t]:graph.indptr[t + 1]]
        if len(succ):
            loop[k] = float(np.min(tt[succ] + to_park[succ, k]))
    return DriveTimes(edge_index=index, to_park=to_park, loop=loop)


class EdgeGeometry:
    """Distances from points to every road edge of a network (vectorised over all segments).

    sumolib's own neighbour search wants the optional ``rtree`` module; this needs only numpy.
    """

    def __init__(self, net: Any) -> None:
        self.edges = sorted((e for e in net.getEdges() if _is_road(e)), key=lambda e: e.getID())
        a, b, owner = [], [], []
        for k, e in enumerate(self.edges):
            shape = e.getLanes()[0].getShape()
            for p, q in zip(shape[:-1], shape[1:], strict=True):
                a.append(p[:2])
                b.append(q[:2])
                owner.append(k)
        self._a = np.array(a, dtype=float).reshape(-1, 2)
        self._b = np.array(b, dtype=float).reshape(-1, 2)
        self._owner = np.array(owner, dtype=np.int64)

    def distances(self, x: float, y: float) -> np.ndarray:
        """Shortest distance from ``(x, y)`` to each road edge (first lane's shape), m."""
        p = np.array([x, y])
        ab = self._b - self._a
        denom = np.maximum((ab**2).sum(axis=1), 1e-12)
        u = np.clip(((p - self._a) * ab).sum(axis=1) / denom, 0.0, 1.0)
        seg = np.hypot(*(self._a + u[:, None] * ab - p).T)
        out = np.full(len(self.edges), np.inf)
        np.minimum.at(out, self._owner, seg)
        return out

    def nearest(self, x: float, y: float) -> tuple[Any, float]:
        """The nearest road edge (sumolib) and its distance, m."""
        d = self.distances(x, y)
        k = int(np.argmin(d))
        return self.edges[k], float(d[k])

    def within(self, x: float, y: float, radius_m: float) -> frozenset[str]:
        """Ids of the road edges within ``radius_m`` of ``(x, y)``."""
        d = self.distances(x, y)
        return frozenset(self.edges[k].getID() for k in np.flatnonzero(d <= radius_m))


def geometry(net: Any) -> EdgeGeometry:
    """The :class:`EdgeGeometry` of ``net``, built once and kept on the network object."""
    geo = getattr(net, "_greenwave_geometry", None)
    if geo is None:
        geo = EdgeGeometry(net)
        net._greenwave_geometry = geo
    return geo


def locate(net: Any, *, x: float, y: float, what: str) -> tuple[Any, float]:
    """The road edge nearest to ``(x, y)`` and the position along its first lane (m).

    Raises :class:`ScenarioError` naming ``what`` when no road lies within 1 km.
    """
    edge, dist = geometry(net).nearest(x, y)
    if dist > 1000.0:
        raise ScenarioError(f"{what}: no road for cars within 1000 m of ({x:g}, {y:g})")
    pos, _ = edge.getLanes()[0].getClosestLanePosAndDist((x, y))
    return edge, float(pos)


def point_of(net: Any, place: dict[str, Any]) -> tuple[str, float, float]:
    """(edge id, x, y) of a destination given as ``{"edge": ...}`` or ``{"x": ..., "y": ...}``."""
    import sumolib

    if place.get("edge") is not None:
        if not net.hasEdge(place["edge"]):
            raise ScenarioError(f"[parking.demand]: destination edge {place['edge']!r} is not in the network")
        edge = net.getEdge(place["edge"])
        if not _is_road(edge):
            raise ScenarioError(f"[parking.demand]: destination edge {place['edge']!r} is not a road cars may use")
        shape = edge.getLanes()[0].getShape()
        x, y = sumolib.geomhelper.positionAtShapeOffset(shape, edge.getLength() / 2)
        return edge.getID(), float(x), float(y)
    edge, _ = locate(net, x=place["x"], y=place["y"], what="[parking.demand] destination")
    return edge.getID(), float(place["x"]), float(place["y"])


def area_edges(net: Any, *, x: float, y: float, radius_m: float) -> frozenset[str]:
    """Road edges within ``radius_m`` of ``(x, y)``: the destination area where search begins."""
    return geometry(net).within(x, y, radius_m)


def walking_m(car_parks: Sequence[CarPark], x: float, y: float) -> np.ndarray:
    """Straight-line walking distance from each car park to ``(x, y)``, m."""
    return np.array([float(np.hypot(c.x - x, c.y - y)) for c in car_parks])
