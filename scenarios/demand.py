"""Demand: read it from SUMO files, or generate it from entry flows and turning ratios.

Entry flows (veh/h) and turning shares become SUMO routes through SUMO's own jtrrouter (junction
turning ratio router), seeded, with random (Poisson-like) departure times. Movement flows
(veh/h per from-edge → to-edge pair) are counted from routes for the optimiser.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from greenwave._sumo import run_sumo_command
from greenwave._xml import open_xml
from greenwave.errors import ScenarioError
from greenwave.scenarios.spec import DemandSpec
from greenwave.scenarios.sumocfg import SumoConfig, read_sumocfg

__all__ = [
    "SumoConfig",
    "entry_edges",
    "entry_flows",
    "expected_movement_flows",
    "generate_routes",
    "iter_vehicle_routes",
    "movement_flows",
    "read_sumocfg",
    "turning_shares",
]

_TURN_DIRECTIONS = {"l": "left", "L": "left", "r": "right", "R": "right", "s": "straight"}


# ------------------------------------------------------------------------------------------
# flows + turning ratios → routes


def _is_road(edge: Any) -> bool:
    return edge.getFunction() == "" and edge.allows("passenger")


def entry_edges(net: Any) -> list[Any]:
    """Edges through which traffic enters: roads no vehicle can drive onto from another road
    except by turning round (the network's fringe). Judged by connections, not nodes, so an
    approach split in two for its turn lanes still has its first piece as the entry."""
    entries = []
    for edge in net.getEdges():
        if not _is_road(edge):
            continue
        arriving = [c for frm, conns in edge.getIncoming().items() if _is_road(frm)
                    for c in conns if c.getDirection() not in ("t", "T")]
        if not arriving:
            entries.append(edge)
    return entries


def turning_shares(
    net: Any,
    *,
    left: float,
    right: float,
    overrides: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, dict[str, float]]:
    """Turning shares ``{from_edge: {to_edge: share}}`` for every edge with a choice.

    Left and right turns (SUMO connection directions l/L and r/R) get ``left`` and ``right``;
    straight on gets the rest; where a direction is missing the others are scaled up; U-turns
    get nothing unless they are the only way on. ``overrides`` replace whole rows.
    """
    overrides = dict(overrides or {})
    edge_ids = {e.getID() for e in net.getEdges()}
    for frm, row in overrides.items():
        for eid in (frm, *row):
            if eid not in edge_ids:
                raise ScenarioError(f"demand.turn_ratios names edge {eid!r}, not in the network")
    weights = {"left": left, "right": right, "straight": max(0.0, 1.0 - left - right)}
    shares: dict[str, dict[str, float]] = {}
    for edge in net.getEdges():
        if not _is_road(edge):
            continue
        eid = edge.getID()
        if eid in overrides:
            row = overrides[eid]
            total = sum(row.values())
            shares[eid] = {t: s / total for t, s in row.items() if s > 0}
            continue
        by_kind: dict[str, set[str]] = defaultdict(set)
        for to_edge, conns in edge.getOutgoing().items():
            if not _is_road(to_edge):
                continue
            dirs = {c.getDirection() for c in conns}
            kind = next((_TURN_DIRECTIONS[d] for d in "sLlRr" if d in dirs), "uturn")
            by_kind[kind].add(to_edge.getID())
        if not by_kind:
            continue
        present = {k: w for k, w in weights.items() if k in by_kind and w > 0}
        if not present:
            present = {k: 1.0 for k in by_kind}
        total = sum(present.values())
        row = {}
        for kind, w in present.items():
            for to in sorted(by_kind[kind]):
                row[to] = w / total / len(by_kind[kind])
        shares[eid] = row
    return shares


def entry_flows(net: Any, spec: DemandSpec) -> dict[str, float]:
    """Flow (veh/h) on every entry edge from the spec: per-edge values override class values
    (major = entries of the highest priority/lane count, minor = the others), which override
    ``entry_vph``."""
    entries = entry_edges(net)
    if not entries:
        raise ScenarioError("the network has no entry edges from its fringe to put demand on")
    rank = {e.getID(): (e.getPriority(), e.getLaneNumber()) for e in entries}
    top = max(rank.values())
    ids = set(rank)
    for eid in spec.entry_vph_by_edge:
        if eid not in ids:
            raise ScenarioError(
                f"demand.entry_vph_by_edge names {eid!r}, which is not an entry edge; entry edges: "
                f"{', '.join(sorted(ids))}"
            )
    flows: dict[str, float] = {}
    for eid, r in sorted(rank.items()):
        vph = spec.entry_vph
        cls = spec.major_entry_vph if r == top else spec.minor_entry_vph
        if cls is not None:
            vph = cls
        vph = spec.entry_vph_by_edge.get(eid, vph)
        if vph:
            flows[eid] = float(vph)
    return flows


def generate_routes(
    net_file: Path,
    spec: DemandSpec,
    *,
    begin_s: float,
    end_s: float,
    seed: int,
    out_dir: Path,
) -> Path:
    """Write entry flows and turning shares and route them with jtrrouter; return the routes.

    The same ``seed`` gives the same routes and departure times.
    """
    import sumolib

    net = sumolib.net.readNet(str(net_file))
    flows = entry_flows(net, spec)
    shares = turning_shares(net, left=spec.turn_left, right=spec.turn_right, overrides=spec.turn_ratios)
    out_dir.mkdir(parents=True, exist_ok=True)
    flow_file = out_dir / f"flows_seed{seed}.xml"
    turn_file = out_dir / f"turns_seed{seed}.xml"
    route_file = out_dir / f"routes_seed{seed}.rou.xml"
    with flow_file.open("w") as fh:
        fh.write("<routes>\n")
        fh.write('    <vType id="gw_car" vClass="passenger"/>\n')
        for eid, vph in flows.items():
            fh.write(
                f'    <flow id="in_{eid}" type="gw_car" from="{eid}" begin="{begin_s:g}" '
                f'end="{end_s:g}" vehsPerHour="{vph:g}" departLane="best" departSpeed="max"/>\n'
            )
        fh.write("</routes>\n")
    with turn_file.open("w") as fh:
        # the shares hold for as long as any vehicle is on its way, not only while flows enter
        # (jtrrouter falls back to its own defaults outside the interval)
        fh.write(f'<edgeRelations>\n  <interval begin="{begin_s:g}" end="{end_s + 86400:g}">\n')
        for frm, row in sorted(shares.items()):
            for to, share in sorted(row.items()):
                fh.write(f'    <edgeRelation from="{frm}" to="{to}" probability="{share:.6f}"/>\n')
        fh.write("  </interval>\n</edgeRelations>\n")
    tmp = route_file.with_suffix(".tmp.xml")
    run_sumo_command(
        [
            "jtrrouter", "-n", net_file, "-r", flow_file, "-t", turn_file, "-o", tmp,
            "--seed", str(seed), "--randomize-flows", "--accept-all-destinations",
            "--begin", f"{begin_s:g}", "--end", f"{end_s:g}",
            "--no-step-log", "--no-warnings", "--xml-validation", "never",
        ],
        what=f"routing demand for seed {seed} with jtrrouter",
    )
    tmp.replace(route_file)
    return route_file


# ------------------------------------------------------------------------------------------
# movement flows


def iter_vehicle_routes(route_files: Iterable[Path]) -> Iterable[tuple[float, list[str]]]:
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


def expected_movement_flows(
    net_file: Path, spec: DemandSpec, *, max_iterations: int = 10_000, tol_vph: float = 1e-6
) -> pd.DataFrame:
    """Expected movement flows (veh/h) of entry-flow demand, without sampling routes.

    Entry flows are pushed through the network with the turning shares until what is still
    travelling falls below ``tol_vph`` (a vehicle turning in circles forever would carry no
    weight). Same columns as :func:`movement_flows` (``vehicles`` is per hour).
    """
    import sumolib

    net = sumolib.net.readNet(str(net_file))
    shares = turning_shares(net, left=spec.turn_left, right=spec.turn_right, overrides=spec.turn_ratios)
    moving = dict(entry_flows(net, spec))
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for _ in range(max_iterations):
        nxt: dict[str, float] = defaultdict(float)
        for edge, q in moving.items():
            for to, share in shares.get(edge, {}).items():
                totals[(edge, to)] += q * share
                nxt[to] += q * share
        moving = {e: q for e, q in nxt.items() if q > tol_vph}
        if not moving:
            break
    rows = [(f, t, q, q) for (f, t), q in sorted(totals.items())]
    return pd.DataFrame(rows, columns=["from_edge", "to_edge", "vehicles", "flow_vph"])
