"""Car parks: placed on the network, networked or not, written as SUMO ``parkingArea`` elements.

A car park is either an off-street lot (``kind="lot"``: the spaces sit off the road, reached
from an access edge) or kerb parking (``kind="street"``: spaces along the kerb of the edge, about
6 m each). Both become SUMO ``parkingArea`` elements; a declared charging station becomes a
``chargingStation`` bound to the parking area. For SUMO's own search of drivers without
guidance, every car park gets a ``rerouter`` on its edge listing itself (visible: a driver who
reaches it sees whether it is full) and its nearest alternatives (not visible: their occupancy is
unknown until reached), as SUMO's ``generateParkingAreaRerouters.py`` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from greenwave.engine.results import write_text_atomic
from greenwave.errors import ScenarioError
from greenwave.parking.roads import locate

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
