"""Where traffic enters a network, and the movement flows that routes put on it.

Movement flows (veh/h per from-edge → to-edge pair) counted from SUMO route files are what
:func:`greenwave.networks.compile.compile_network` and the stage-design choice read; the entry
edges (the network's fringe) are where generated demand and parking drivers come in.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from greenwave._xml import open_xml
from greenwave.errors import ScenarioError

__all__ = ["entry_edges", "is_road", "iter_vehicle_routes", "movement_flows"]


def is_road(edge: Any) -> bool:
    """A sumolib edge that passenger cars may use and that is not internal, a crossing or a walking area."""
    return bool(edge.getFunction() == "" and edge.allows("passenger"))


def entry_edges(net: Any) -> list[Any]:
    """Edges through which traffic enters: roads no vehicle can drive onto from another road
    except by turning round (the network's fringe). Judged by connections, not nodes, so an
    approach split in two for its turn lanes still has its first piece as the entry."""
    entries = []
    for edge in net.getEdges():
        if not is_road(edge):
            continue
        arriving = [c for frm, conns in edge.getIncoming().items() if is_road(frm)
                    for c in conns if c.getDirection() not in ("t", "T")]
        if not arriving:
            entries.append(edge)
    return entries


def iter_vehicle_routes(route_files: Iterable[Path]) -> Iterator[tuple[float, list[str]]]:
    """(depart s, edge list) of every vehicle with an explicit route in the files.

    Vehicles referring to a named ``<route>`` are resolved; trips without routes are skipped
    (route them first with :func:`greenwave.engine.routing.ensure_routes`).
    """
    for path in route_files:
        named: dict[str, list[str]] = {}
        try:
            with open_xml(Path(path)) as fh:
                for _, el in ET.iterparse(fh, events=("end",)):
                    if el.tag == "route" and el.get("id"):
                        named[el.get("id", "")] = el.get("edges", "").split()
                    elif el.tag == "vehicle":
                        depart = el.get("depart", "0")
                        try:
                            t = float(depart)
                        except ValueError:
                            t = 0.0
                        inner = el.find("route")
                        if inner is not None:
                            edges = inner.get("edges", "").split()
                        else:
                            edges = named.get(el.get("route", ""), [])
                        if edges:
                            yield t, edges
                        el.clear()
        except ET.ParseError as exc:
            raise ScenarioError(f"{path}: route file is not valid XML: {exc}") from exc


def movement_flows(route_files: Sequence[Path], *, begin_s: float, end_s: float) -> pd.DataFrame:
    """Flows per movement from routes: columns ``from_edge, to_edge, vehicles, flow_vph``.

    A vehicle counts for every consecutive edge pair on its route if it departs inside
    [begin_s, end_s); flow_vph = vehicles · 3600 / (end_s − begin_s).
    """
    if end_s <= begin_s:
        raise ValueError(f"end_s ({end_s}) must be after begin_s ({begin_s})")
    counts: Counter[tuple[str, str]] = Counter()
    for depart, edges in iter_vehicle_routes(route_files):
        if begin_s <= depart < end_s:
            counts.update(zip(edges[:-1], edges[1:], strict=False))
    hours = (end_s - begin_s) / 3600.0
    rows = [(f, t, n, n / hours) for (f, t), n in sorted(counts.items())]
    return pd.DataFrame(rows, columns=["from_edge", "to_edge", "vehicles", "flow_vph"])
