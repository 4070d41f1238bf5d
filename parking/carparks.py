"""Car parks: placed on the network, networked or not, written as SUMO ``parkingArea`` elements.

A car park is either an off-street lot (``kind="lot"``: the spaces sit off the road, reached
from an access edge) or kerb parking (``kind="street"``: spaces along the kerb of the edge, about
6 m each). Both become SUMO ``parkingArea`` elements; a declared charging station becomes a
``chargingStation`` bound to the parking area. For SUMO's own search of drivers without
guidance, every car park gets a ``rerouter`` on its edge listing itself (visible: a driver who
reaches it sees whether it is full) and its nearest alternatives (not visible: their occupancy is
unknown until reached), as SUMO's ``generateParkingAreaRerouters.py`` does.

The road graph as parking needs it lives here too: free-flow drive times from every edge to
every car park (one Dijkstra per car park on the reversed edge graph, ``scipy.sparse.csgraph``;
``inf`` = unreachable) and destination areas. So do the drivers who look for a space (parking
demand): Poisson arrivals with a destination and a dwell time, written as SUMO trips with a
parking stop at their own first choice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from greenwave.engine.results import write_text_atomic
from greenwave.errors import ScenarioError
from greenwave.networks.route_flows import entry_edges

SPACE_LENGTH_M = 6.0
"""Kerb length of one on-street space, m."""
LOT_ACCESS_LENGTH_M = 10.0
"""Length of a lot's access stretch on its edge, m (the spaces themselves are off the road)."""


@dataclass(frozen=True)
class CarPark:
    """One public car park.

    Attributes
    ----------
    id
        Identifier, also the SUMO ``parkingArea`` id.
    edge, lane
        Where it is entered (SUMO edge and lane ids).
    start_m, end_m
        Stretch of the lane it occupies, m from the lane's start.
    capacity
        Spaces.
    price_per_h
        Price at the start of the run, money per hour.
    kind
        ``"lot"`` (off-street) or ``"street"`` (kerb parking).
    networked
        Whether its occupancy reaches the city's platform (guidance and pricing see it).
    x, y
        Position of its entrance, m (network coordinates).
    charging_kw
        Power of its charging station, kW (None: none).
    """

    id: str
    edge: str
    lane: str
    start_m: float
    end_m: float
    capacity: int
    price_per_h: float
    kind: str
    networked: bool
    x: float
    y: float
    charging_kw: float | None = None


def _road_edges(net: Any) -> list[Any]:
    return [e for e in net.getEdges() if e.getFunction() == "" and e.allows("passenger")]


def _parking_lane(edge: Any) -> Any:
    for lane in edge.getLanes():  # rightmost lane that passenger cars may use
        if lane.allows("passenger"):
            return lane
    return edge.getLanes()[0]


def _stretch_length(kind: str, capacity: int) -> float:
    return LOT_ACCESS_LENGTH_M if kind == "lot" else capacity * SPACE_LENGTH_M


def _place(net: Any, edge: Any, *, pos: float | None, kind: str, capacity: int, what: str) -> tuple[str, float, float]:
    lane = _parking_lane(edge)
    length = lane.getLength()
    need = _stretch_length(kind, capacity)
    if need > length - 1.0:
        raise ScenarioError(
            f"{what}: {capacity} kerb spaces need {need:g} m but lane {lane.getID()} is only "
            f"{length:.1f} m long (declare it as kind = \"lot\" or split it over edges)"
        )
    start = (length - need) / 2 if pos is None else pos
    if start < 0 or start + need > length:
        raise ScenarioError(
            f"{what}: pos_m = {start:g} puts its {need:g} m stretch outside lane {lane.getID()} "
            f"(0 .. {length:.1f} m)"
        )
    return lane.getID(), float(start), float(start + need)


def resolve_car_parks(options: Mapping[str, Any], net: Any, *, where: str = "[parking]") -> list[CarPark]:
    """Declared and generated car parks, placed on ``net`` (a sumolib network).

    Declared car parks keep their ``networked`` flag; generated ones take the generator's.
    Raises :class:`ScenarioError` for unknown edges, edges cars may not use, or stretches that do
    not fit on their lane.
    """
    out: list[CarPark] = []
    for cp in options.get("car_parks", []):
        what = f"{where}: car park {cp['id']!r}"
        if cp["edge"] is not None:
            if not net.hasEdge(cp["edge"]):
                raise ScenarioError(f"{what}: edge {cp['edge']!r} is not in the network")
            edge = net.getEdge(cp["edge"])
            if edge.getFunction() != "" or not edge.allows("passenger"):
                raise ScenarioError(f"{what}: edge {cp['edge']!r} is not a road that cars may use")
            pos = cp["pos_m"]
        else:
            edge, p = locate(net, x=cp["x"], y=cp["y"], what=what)
            need = _stretch_length(cp["kind"], cp["capacity"])
            pos = min(max(0.0, p - need / 2), max(0.0, _parking_lane(edge).getLength() - need))
        lane, start, end = _place(net, edge, pos=pos, kind=cp["kind"], capacity=cp["capacity"], what=what)
        x, y = _lane_xy(net, lane, (start + end) / 2)
        out.append(CarPark(
            id=cp["id"], edge=edge.getID(), lane=lane, start_m=start, end_m=end,
            capacity=cp["capacity"], price_per_h=cp["price_per_h"], kind=cp["kind"],
            networked=cp["networked"], x=x, y=y, charging_kw=cp["charging_kw"],
        ))
    gen = options.get("generate")
    if gen is not None:
        out += generate_car_parks(net, gen, taken={c.edge for c in out}, where=where)
    return out


def _lane_xy(net: Any, lane_id: str, pos: float) -> tuple[float, float]:
    import sumolib

    lane = net.getLane(lane_id)
    x, y = sumolib.geomhelper.positionAtShapeOffset(lane.getShape(), min(pos, lane.getLength()))
    return float(x), float(y)


def generate_car_parks(
    net: Any, gen: Mapping[str, Any], *, taken: Iterable[str] = (), where: str = "[parking]"
) -> list[CarPark]:
    """``gen["count"]`` car parks on distinct random road edges, seeded by ``gen["seed"]``.

    Capacities are uniform integers in ``[capacity_min, capacity_max]``, prices uniform in
    ``[price_min_per_h, price_max_per_h]`` (rounded to 0.1), a ``street_share`` of them kerb
    parking (on edges long enough), the rest lots. Ids are ``gen_0, gen_1, ...``.
    """
    rng = np.random.default_rng(gen["seed"])
    taken = set(taken)
    if gen.get("edges"):
        edges = []
        for eid in gen["edges"]:
            if not net.hasEdge(eid):
                raise ScenarioError(f"{where}: parking.generate.edges names {eid!r}, which is not in the network")
            edges.append(net.getEdge(eid))
    else:
        edges = _road_edges(net)
    edges = sorted((e for e in edges if e.getID() not in taken), key=lambda e: e.getID())
    if len(edges) < gen["count"]:
        raise ScenarioError(
            f"{where}: parking.generate.count = {gen['count']} but only {len(edges)} free road edges to use"
        )
    chosen = rng.choice(len(edges), size=gen["count"], replace=False)
    out = []
    for i, k in enumerate(sorted(int(c) for c in chosen)):
        edge = edges[k]
        cap = int(rng.integers(gen["capacity_min"], gen["capacity_max"] + 1))
        price = round(float(rng.uniform(gen["price_min_per_h"], gen["price_max_per_h"])), 1)
        kind = "street" if rng.random() < gen["street_share"] else "lot"
        lane_len = _parking_lane(edge).getLength()
        if kind == "street" and _stretch_length("street", cap) > lane_len - 1.0:
            kind = "lot"
        lane, start, end = _place(net, edge, pos=None, kind=kind, capacity=cap, what=f"{where}: gen_{i}")
        x, y = _lane_xy(net, lane, (start + end) / 2)
        out.append(CarPark(
            id=f"gen_{i}", edge=edge.getID(), lane=lane, start_m=start, end_m=end, capacity=cap,
            price_per_h=price, kind=kind, networked=bool(gen.get("networked", True)), x=x, y=y,
        ))
    return out


def apply_networking_rate(car_parks: Sequence[CarPark], rate: float | None, *, seed: int) -> list[CarPark]:
    """Mark ``round(rate · n)`` car parks networked, chosen by a seeded random order.

    The order depends only on ``seed`` and the car park ids, so the networked sets of rising
    rates are nested (the car parks networked at 30% stay networked at 50%). ``rate=None``
    keeps each car park's own flag.
    """
    if rate is None:
        return list(car_parks)
    if not 0.0 <= rate <= 1.0:
        raise ScenarioError(f"networking_rate must be in [0, 1], got {rate!r}")
    ids = sorted(c.id for c in car_parks)
    order = np.random.default_rng(seed).permutation(len(ids))
    k = int(math.floor(rate * len(ids) + 0.5))
    networked = {ids[i] for i in order[:k]}
    return [replace(c, networked=c.id in networked) for c in car_parks]


def networking_rates(car_parks: Sequence[CarPark]) -> tuple[float, float]:
    """(networked car parks ÷ all car parks, networked spaces ÷ all spaces); 0 when none."""
    if not car_parks:
        return 0.0, 0.0
    n = sum(c.networked for c in car_parks)
    spaces = sum(c.capacity for c in car_parks)
    return n / len(car_parks), sum(c.capacity for c in car_parks if c.networked) / spaces


def nearest_alternatives(car_parks: Sequence[CarPark], k: int) -> dict[str, list[str]]:
    """For every car park, the ids of the ``k`` nearest others (straight line), nearest first."""
    if not car_parks:
        return {}
    xy = np.array([[c.x, c.y] for c in car_parks])
    out = {}
    for i, c in enumerate(car_parks):
        d = np.hypot(xy[:, 0] - c.x, xy[:, 1] - c.y)
        d[i] = np.inf
        order = np.argsort(d, kind="stable")[: min(k, len(car_parks) - 1)]
        out[c.id] = [car_parks[j].id for j in order]
    return out


def write_parking_additional(
    car_parks: Sequence[CarPark], path: Path, *, alternatives: int, end_s: float
) -> Path:
    """Write the car parks (``parkingArea``), charging stations and search rerouters atomically.

    Parameters
    ----------
    car_parks
        What to write.
    path
        The additional file.
    alternatives
        How many nearest other car parks each car park's rerouter offers a driver who finds it
        full.
    end_s
        End of the rerouters' interval, s (the end of the run).
    """
    alts = nearest_alternatives(car_parks, alternatives)
    lines = ["<additional>"]
    for c in car_parks:
        on_road = "false"
        lines.append(
            f"    <parkingArea id={quoteattr(c.id)} lane={quoteattr(c.lane)} startPos=\"{c.start_m:.2f}\" "
            f"endPos=\"{c.end_m:.2f}\" roadsideCapacity=\"{c.capacity}\" onRoad=\"{on_road}\" "
            f"friendlyPos=\"true\" name={quoteattr(c.kind)}>\n"
            f"        <param key=\"price_per_h\" value=\"{c.price_per_h:g}\"/>\n"
            f"        <param key=\"networked\" value=\"{str(c.networked).lower()}\"/>\n"
            f"    </parkingArea>"
        )
        if c.charging_kw is not None:
            lines.append(
                f"    <chargingStation id={quoteattr('cs_' + c.id)} lane={quoteattr(c.lane)} "
                f"startPos=\"{c.start_m:.2f}\" endPos=\"{c.end_m:.2f}\" power=\"{c.charging_kw * 1000:g}\" "
                f"parkingArea={quoteattr(c.id)} friendlyPos=\"true\"/>"
            )
    for c in car_parks:
        lines.append(f"    <rerouter id={quoteattr('rr_' + c.id)} edges={quoteattr(c.edge)}>")
        lines.append(f"        <interval begin=\"0\" end=\"{end_s + 86400:g}\">")
        lines.append(f"            <parkingAreaReroute id={quoteattr(c.id)} visible=\"true\"/>")
        for a in alts[c.id]:
            lines.append(f"            <parkingAreaReroute id={quoteattr(a)} visible=\"false\"/>")
        lines.append("        </interval>")
        lines.append("    </rerouter>")
    lines.append("</additional>")
    write_text_atomic("\n".join(lines) + "\n", path)
    return path

# ------------------------------------------------------------------------------------------
# the road graph: drive times, destination areas, walking


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

# ------------------------------------------------------------------------------------------
# parking demand: the drivers


VEHICLE_PREFIX = "pk_"
"""Ids of parking vehicles start with this (background vehicles never do)."""


@dataclass(frozen=True)
class Destination:
    """Where drivers go: the edge, the point (m) and the relative weight."""

    edge: str
    x: float
    y: float
    weight: float


@dataclass(frozen=True)
class Driver:
    """One parking trip. Times in s; ``first_choice`` is the car park id the trip is written with."""

    id: str
    index: int
    depart_s: float
    origin: str
    exit: str
    destination: int
    dwell_s: float
    first_choice: str


def destinations(net: Any, demand: Mapping[str, Any]) -> list[Destination]:
    """The demand's destinations placed on ``net``."""
    out = []
    for d in demand["destinations"]:
        edge, x, y = point_of(net, d)
        out.append(Destination(edge=edge, x=x, y=y, weight=d["weight"]))
    return out


def sample_dwell(rng: np.random.Generator, dwell: Mapping[str, Any], n: int) -> np.ndarray:
    """``n`` dwell times (s) from the dwell table, clipped to ``[min_s, max_s]``.

    ``lognormal`` has the given arithmetic mean and standard deviation; ``exponential`` the
    given mean; ``uniform`` spans ``[min_s, max_s]``; ``fixed`` is always ``mean_s``.
    """
    dist = dwell["distribution"]
    if dist == "lognormal":
        m, s = dwell["mean_s"], dwell["sd_s"]
        sigma2 = math.log(1.0 + (s / m) ** 2)
        x = rng.lognormal(math.log(m) - sigma2 / 2, math.sqrt(sigma2), n)
    elif dist == "exponential":
        x = rng.exponential(dwell["mean_s"], n)
    elif dist == "uniform":
        x = rng.uniform(dwell["min_s"], dwell["max_s"], n)
    else:
        x = np.full(n, dwell["mean_s"])
    return np.clip(x, dwell["min_s"], dwell["max_s"])


def perceived_costs(
    *,
    prices_per_h: np.ndarray,
    dwell_s: float,
    drive_s: np.ndarray,
    walk_m: np.ndarray,
    value_of_time_per_h: float,
    walk_speed_mps: float,
) -> np.ndarray:
    """Generalised cost of each car park for one driver, money.

    cost = price · dwell (h) + value of time · (drive time + walk there and back) (h);
    ``inf`` where the car park cannot be reached.
    """
    hours = (np.asarray(drive_s, dtype=float) + 2.0 * walk_m / walk_speed_mps) / 3600.0
    return np.asarray(prices_per_h) * (dwell_s / 3600.0) + value_of_time_per_h * hours


def taste(seed: int, index: int, n: int, scale: float) -> np.ndarray:
    """A driver's fixed random taste for each of ``n`` car parks (Gumbel, money), reproducible."""
    if scale <= 0:
        return np.zeros(n)
    return np.random.default_rng([seed, index]).gumbel(0.0, scale, n)


def _fringe(net: Any) -> tuple[list[str], list[str]]:
    entries = entry_edges(net)
    exits = []
    for e in entries:
        for back in e.getToNode().getOutgoing():
            if back.getToNode() is e.getFromNode() and back.allows("passenger"):
                exits.append(back.getID())
    return sorted(e.getID() for e in entries), sorted(set(exits))


def generate_drivers(
    net: Any,
    demand: Mapping[str, Any],
    car_parks: Sequence[CarPark],
    times: DriveTimes,
    *,
    begin_s: float,
    end_s: float,
    seed: int,
    value_of_time_per_h: float,
    walk_speed_mps: float,
    choice_noise: float,
) -> tuple[list[Driver], list[Destination]]:
    """Draw the parking drivers of one run (seeded) and their first choices at initial prices."""
    entries, exits = _fringe(net)
    for key in ("origins", "exits"):
        given = demand.get(key)
        if given:
            for eid in given:
                if not net.hasEdge(eid) or not net.getEdge(eid).allows("passenger"):
                    raise ScenarioError(f"[parking.demand]: {key} names {eid!r}, not a road of the network")
            if key == "origins":
                entries = sorted(given)
            else:
                exits = sorted(given)
    if not entries or not exits:
        raise ScenarioError("[parking.demand]: the network has no fringe entry/exit edges for parking trips")
    dests = destinations(net, demand)
    rng = np.random.default_rng([seed, 7919])
    lo = begin_s if demand["begin_s"] is None else demand["begin_s"]
    hi = end_s if demand["end_s"] is None else demand["end_s"]
    rate = demand["vehicles_per_hour"] / 3600.0
    departs = []
    t = lo + rng.exponential(1.0 / rate)
    while t < hi:
        departs.append(t)
        t += rng.exponential(1.0 / rate)
    n = len(departs)
    weights = np.array([d.weight for d in dests])
    dest_idx = rng.choice(len(dests), size=n, p=weights / weights.sum())
    origins = rng.choice(len(entries), size=n)
    exit_idx = rng.choice(len(exits), size=n)
    dwell = sample_dwell(rng, demand["dwell"], n)
    prices = np.array([c.price_per_h for c in car_parks])
    walks = [walking_m(car_parks, d.x, d.y) for d in dests]
    drivers = []
    for i in range(n):
        origin = entries[int(origins[i])]
        cost = perceived_costs(
            prices_per_h=prices, dwell_s=float(dwell[i]), drive_s=times.from_edge(origin),
            walk_m=walks[int(dest_idx[i])], value_of_time_per_h=value_of_time_per_h,
            walk_speed_mps=walk_speed_mps,
        ) + taste(seed, i, len(car_parks), choice_noise)
        if not np.isfinite(cost).any():
            raise ScenarioError(f"[parking]: no car park can be reached from entry edge {origin!r}")
        drivers.append(Driver(
            id=f"{VEHICLE_PREFIX}{i}", index=i, depart_s=round(float(departs[i]), 1), origin=origin,
            exit=exits[int(exit_idx[i])], destination=int(dest_idx[i]), dwell_s=round(float(dwell[i]), 1),
            first_choice=car_parks[int(np.argmin(cost))].id,
        ))
    return drivers, dests


def write_trips(drivers: Sequence[Driver], path: Path) -> Path:
    """Write the drivers as SUMO trips with a parking stop, sorted by departure (atomic)."""
    lines = [
        "<routes>",
        '    <vType id="gw_parker" vClass="passenger">',
        '        <param key="parking.memory" value="600"/>',
        "    </vType>",
    ]
    for d in sorted(drivers, key=lambda d: (d.depart_s, d.index)):
        lines.append(
            f"    <trip id={quoteattr(d.id)} type=\"gw_parker\" depart=\"{d.depart_s:.1f}\" "
            f"from={quoteattr(d.origin)} to={quoteattr(d.exit)} departLane=\"best\">\n"
            f"        <stop parkingArea={quoteattr(d.first_choice)} duration=\"{d.dwell_s:.1f}\" parking=\"true\"/>\n"
            f"    </trip>"
        )
    lines.append("</routes>")
    write_text_atomic("\n".join(lines) + "\n", path)
    return path
