"""Read a SUMO ``.net.xml`` (plain or gzipped) into a :class:`~greenwave.networks.RoadNetwork`.

The file is streamed once with :func:`xml.etree.ElementTree.iterparse`; sumolib is not needed
because everything used here (edges, lanes and their permissions, junctions with their
``<request>`` foe rows, connections with ``tl``/``linkIndex``/``via``, ``<tlLogic>`` programs)
is read directly.

The conflict matrix of each signal comes from SUMO's own right-of-way model: each junction's
``<request index="i" foes="..."/>`` rows, whose bit strings are reversed (the last character is
junction-local link 0). A junction-local request index belongs to the internal lane at that
position of the junction's ``intLanes``; a connection reaches it through its ``via`` chain (for
left turns with an internal junction the listed lane is the second part of the chain), a
pedestrian crossing link through its target crossing lane. Nets built without internal lanes
fall back to SUMO's link order (incoming lanes in ``incLanes`` order, their connections in file
order). Joined clusters: where a signal's link leads onto a lane between two of its nodes, the
onward connections there give ``Signal.chain_yields`` (an unsignalled one's ``response`` bits,
on a lane too short to hold a car) and ``Signal.chain_links`` (a signalled one's link index).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from xml.etree import ElementTree as ET

import networkx as nx
import numpy as np

from greenwave._xml import open_xml
from greenwave.errors import NetworkError
from greenwave.networks.model import CLUSTER_LANE_M, NO_STORAGE_M, Movement, Program, RoadNetwork, Signal
from greenwave.networks.program_files import read_program_files, tl_logic_program

__all__ = ["load_network"]

#: Every SUMO vehicle class (for resolving ``disallow``).
_ALL_CLASSES = frozenset(
    "private emergency authority army vip pedestrian passenger hov taxi bus coach delivery truck "
    "trailer motorcycle moped bicycle evehicle tram rail_urban rail rail_electric rail_fast "
    "ship subway aircraft wheelchair scooter drone container cable_car custom1 custom2".split()
)
#: Classes that do not make a lane a driving lane.
_NON_DRIVING = frozenset({"pedestrian", "bicycle", "wheelchair", "scooter"})
_PEDESTRIAN = frozenset({"pedestrian", "wheelchair"})


@dataclass(slots=True)
class _Lane:
    id: str
    edge: str
    index: int
    speed: float
    length: float
    classes: frozenset[str]


@dataclass(slots=True)
class _Edge:
    id: str
    function: str
    from_node: str
    to_node: str
    priority: int
    type: str
    lanes: list[_Lane] = field(default_factory=list)


@dataclass(slots=True)
class _Junction:
    id: str
    type: str
    x: float
    y: float
    inc_lanes: list[str]
    int_lanes: list[str]
    foes: dict[int, str] = field(default_factory=dict)
    response: dict[int, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Connection:
    from_edge: str
    to_edge: str
    from_lane: str
    to_lane: str
    via: str | None
    tl: str | None
    link_index: int
    direction: str
    line: int


def _classes(elem: ET.Element) -> frozenset[str]:
    allow = elem.get("allow")
    disallow = elem.get("disallow")
    if allow is not None:
        names = set(allow.split())
        return _ALL_CLASSES if "all" in names else frozenset(names)
    if disallow is not None:
        names = set(disallow.split())
        return frozenset() if "all" in names else _ALL_CLASSES - names
    return _ALL_CLASSES


class _Reader:
    """Stream the XML once and keep what the model needs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.edges: dict[str, _Edge] = {}
        self.lanes: dict[str, _Lane] = {}
        self.junctions: dict[str, _Junction] = {}
        self.connections: list[_Connection] = []
        self.programs: dict[str, dict[str, Program]] = {}

    def fail(self, what: str) -> NetworkError:
        return NetworkError(f"{self.path}: {what}")

    def _float(self, elem: ET.Element, key: str, default: float | None = None) -> float:
        raw = elem.get(key)
        if raw is None:
            if default is None:
                raise self.fail(f"<{elem.tag} id={elem.get('id')!r}> lacks attribute {key!r}")
            return default
        try:
            return float(raw)
        except ValueError:
            raise self.fail(
                f"<{elem.tag} id={elem.get('id')!r}> has non-numeric {key}={raw!r}"
            ) from None

    def read(self) -> None:
        try:
            stream = open_xml(self.path)
        except FileNotFoundError:
            raise self.fail("file not found") from None
        except IsADirectoryError:
            raise self.fail("is a directory, not a net file") from None
        except OSError as exc:
            raise self.fail(f"cannot be read ({exc})") from None
        try:
            with stream:
                self._parse(iter(ET.iterparse(stream, events=("start", "end"))))
        except ET.ParseError as exc:
            raise self.fail(f"is not well-formed XML ({exc})") from None
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise self.fail(f"is a damaged or truncated gzip file ({exc})") from None
        except UnicodeDecodeError as exc:
            raise self.fail(f"has undecodable text ({exc})") from None

    def _parse(self, events: Iterator[tuple[str, ET.Element]]) -> None:
        try:
            event, root = next(events)
        except StopIteration:
            raise self.fail("is empty") from None
        if root.tag != "net":
            raise self.fail(f"is not a SUMO net file: root element is <{root.tag}>, expected <net>")
        depth = 1
        for event, elem in events:
            if event == "start":
                depth += 1
                continue
            depth -= 1
            if depth != 1:
                continue
            tag = elem.tag
            if tag == "edge":
                self._edge(elem)
            elif tag == "junction":
                self._junction(elem)
            elif tag == "connection":
                self._connection(elem)
            elif tag == "tlLogic":
                self._tl_logic(elem)
            root.clear()
        if depth != 0:
            raise self.fail("ends before </net> (truncated file)")

    def _edge(self, elem: ET.Element) -> None:
        eid = elem.get("id")
        if not eid:
            raise self.fail("an <edge> has no id")
        function = elem.get("function", "normal")
        edge = _Edge(
            id=eid,
            function=function,
            from_node=elem.get("from", ""),
            to_node=elem.get("to", ""),
            priority=int(self._float(elem, "priority", -1.0)),
            type=elem.get("type", ""),
        )
        if function == "normal" and not (edge.from_node and edge.to_node):
            raise self.fail(f"<edge id={eid!r}> lacks from/to junction")
        edge_classes = None
        for lane_elem in elem.iter("lane"):
            lid = lane_elem.get("id")
            if not lid:
                raise self.fail(f"a <lane> of <edge id={eid!r}> has no id")
            classes = _classes(lane_elem)
            if function == "crossing" or function == "walkingarea":
                classes = _PEDESTRIAN
            elif lane_elem.get("allow") is None and lane_elem.get("disallow") is None:
                if edge_classes is None:
                    edge_classes = _classes(elem)
                classes = edge_classes
            lane = _Lane(
                id=lid,
                edge=eid,
                index=int(self._float(lane_elem, "index", float(len(edge.lanes)))),
                speed=self._float(lane_elem, "speed"),
                length=self._float(lane_elem, "length"),
                classes=classes,
            )
            edge.lanes.append(lane)
            self.lanes[lid] = lane
        if not edge.lanes:
            raise self.fail(f"<edge id={eid!r}> has no <lane>")
        self.edges[eid] = edge

    def _junction(self, elem: ET.Element) -> None:
        jid = elem.get("id")
        if not jid:
            raise self.fail("a <junction> has no id")
        jtype = elem.get("type", "")
        if jtype == "internal":
            return  # internal junctions' rows repeat what their junction says
        junction = _Junction(
            id=jid,
            type=jtype,
            x=self._float(elem, "x"),
            y=self._float(elem, "y"),
            inc_lanes=elem.get("incLanes", "").split(),
            int_lanes=elem.get("intLanes", "").split(),
        )
        for req in elem.iter("request"):
            raw_index = req.get("index")
            foes = req.get("foes")
            response = req.get("response", "")
            if raw_index is None or foes is None:
                raise self.fail(f"a <request> of <junction id={jid!r}> lacks index or foes")
            try:
                index = int(raw_index)
            except ValueError:
                raise self.fail(
                    f"<request index={raw_index!r}> of <junction id={jid!r}> is not an integer"
                ) from None
            if set(foes) - {"0", "1"}:
                raise self.fail(f"<request index={index}> of <junction id={jid!r}> has foes={foes!r}")
            if response and len(response) == len(foes):
                junction.response[index] = response
                # a link that must yield to another is its foe too (SUMO: response ⊆ foes)
                foes = "".join("1" if "1" in ab else "0" for ab in zip(foes, response, strict=False))
            junction.foes[index] = foes
        n = len(junction.foes)
        if n:
            if sorted(junction.foes) != list(range(n)):
                raise self.fail(f"<junction id={jid!r}> has request indices that are not 0..{n - 1}")
            bad = [i for i, f in junction.foes.items() if len(f) != n]
            if bad:
                raise self.fail(
                    f"<request index={bad[0]}> of <junction id={jid!r}>: foes has "
                    f"{len(junction.foes[bad[0]])} bits, the junction has {n} requests"
                )
        self.junctions[jid] = junction

    def _connection(self, elem: ET.Element) -> None:
        frm, to = elem.get("from"), elem.get("to")
        from_lane, to_lane = elem.get("fromLane"), elem.get("toLane")
        if not frm or not to or from_lane is None or to_lane is None:
            raise self.fail(f"a <connection from={frm!r} to={to!r}> lacks from/to/fromLane/toLane")
        tl = elem.get("tl")
        link_index = -1
        if tl is not None:
            try:
                link_index = int(elem.get("linkIndex", "-1"))
            except ValueError:
                raise self.fail(
                    f"<connection from={frm!r} to={to!r}> has linkIndex={elem.get('linkIndex')!r}"
                ) from None
        self.connections.append(
            _Connection(
                from_edge=frm,
                to_edge=to,
                from_lane=f"{frm}_{from_lane}",
                to_lane=f"{to}_{to_lane}",
                via=elem.get("via") or None,
                tl=tl,
                link_index=link_index,
                direction=elem.get("dir", ""),
                line=len(self.connections),
            )
        )

    def _tl_logic(self, elem: ET.Element) -> None:
        tid, program = tl_logic_program(elem, str(self.path))
        if not program.phases:
            raise self.fail(f"<tlLogic id={tid!r} programID={program.id!r}> has no <phase>")
        self.programs.setdefault(tid, {})[program.id] = program

    def add_program_files(self, files: Sequence[str | os.PathLike[str]], begin_s: float) -> dict[str, str]:
        """Add the programs of additional files as SUMO loads them (each becomes its light's
        active one; a phase-less ``<tlLogic>`` sets an existing program's offset); return the
        program each WAUT starts its lights on."""
        loaded = read_program_files(files)
        known = {c.tl for c in self.connections if c.tl is not None} | set(self.programs)
        for path, tid, program in loaded.programs:
            if tid not in known:
                raise NetworkError(f"{path}: <tlLogic id={tid!r}> names no traffic light of {self.path}")
            own = self.programs.setdefault(tid, {})
            own.pop(program.id, None)
            own[program.id] = program
        for path, tid, pid, offset in loaded.offsets:
            if pid not in self.programs.get(tid, {}):
                raise NetworkError(f"{path}: <tlLogic id={tid!r} programID={pid!r}> without phases "
                                   "changes a program that was not loaded before it")
            self.programs[tid][pid] = replace(self.programs[tid][pid], offset=offset)
        initial = loaded.initial_programs(begin_s)
        for sid, pid in initial.items():
            if pid not in self.programs.get(sid, {}):
                raise NetworkError(f"a WAUT starts signal {sid!r} on program {pid!r}, which is not "
                                   f"loaded (it has {', '.join(self.programs.get(sid, {})) or 'none'})")
        return initial


def _is_driving(lane: _Lane) -> bool:
    return bool(lane.classes - _NON_DRIVING)


def _is_pedestrian_lane(lane: _Lane | None) -> bool:
    return lane is not None and bool(lane.classes) and lane.classes <= _PEDESTRIAN


def _build_graph(reader: _Reader, sat_per_lane: float) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    for j in reader.junctions.values():
        graph.add_node(j.id, x=j.x, y=j.y, type=j.type, tls=None)
    for e in reader.edges.values():
        if e.function != "normal":
            continue
        lanes = [lane for lane in e.lanes if _is_driving(lane)]
        if not lanes:
            continue
        for node in (e.from_node, e.to_node):
            if node not in graph:
                raise reader.fail(f"<edge id={e.id!r}> names junction {node!r}, which does not exist")
        graph.add_edge(
            e.from_node,
            e.to_node,
            key=e.id,
            id=e.id,
            length_m=max(lane.length for lane in lanes),
            lanes=len(lanes),
            speed_mps=max(lane.speed for lane in lanes),
            saturation_flow_vph=sat_per_lane * len(lanes),
            priority=e.priority,
            type=e.type,
            lane_ids=tuple(lane.id for lane in sorted(lanes, key=lambda x: x.index)),
        )
    return graph


def _connection_junction(reader: _Reader, c: _Connection) -> str:
    edge = reader.edges.get(c.from_edge)
    if edge is None:
        raise reader.fail(f"<connection from={c.from_edge!r}> names an edge that does not exist")
    if edge.function == "normal":
        return edge.to_node
    # internal / crossing / walking area ids are ":<junction>_<n>"
    return c.from_edge[1:].rsplit("_", 1)[0]


def _request_indices(reader: _Reader) -> dict[int, tuple[str, int]]:
    """Map connection position → (junction id, junction-local request index)."""
    int_lane_pos: dict[str, tuple[str, int]] = {}
    for junction in reader.junctions.values():
        for i, int_lane in enumerate(junction.int_lanes):
            int_lane_pos[int_lane] = (junction.id, i)
    # internal lane → next internal lane of the same chain
    chain_next: dict[str, str] = {}
    for c in reader.connections:
        if c.from_edge.startswith(":") and c.via:
            chain_next[c.from_lane] = c.via
    result: dict[int, tuple[str, int]] = {}
    no_internal: dict[str, list[int]] = {}
    for pos, c in enumerate(reader.connections):
        from_edge = reader.edges.get(c.from_edge)
        if from_edge is None:
            raise reader.fail(f"<connection from={c.from_edge!r}> names an edge that does not exist")
        if from_edge.function == "internal" and c.tl is None:
            continue  # second half of a chain: counted with its first half
        # (an internal connection with its own ``tl`` is a signalled second stage, e.g. an
        # indirect bicycle left turn: it has its own request through its via lane)
        if c.via:
            lane: str | None = c.via
            seen = 0
            while lane is not None and lane not in int_lane_pos and seen < 8:
                lane = chain_next.get(lane)
                seen += 1
            if lane is not None and lane in int_lane_pos:
                result[pos] = int_lane_pos[lane]
        elif c.to_lane in int_lane_pos:  # walking area → crossing
            result[pos] = int_lane_pos[c.to_lane]
        elif from_edge.function == "normal":
            no_internal.setdefault(from_edge.to_node, []).append(pos)
    # Nets without internal lanes: SUMO's link order is incLanes order, then connection order.
    for jid, positions in no_internal.items():
        j = reader.junctions.get(jid)
        if j is None or j.int_lanes or not j.foes:
            continue
        order = {inc: k for k, inc in enumerate(j.inc_lanes)}
        positions.sort(key=lambda p: (order.get(reader.connections[p].from_lane, 1 << 30), p))
        if len(positions) == len(j.foes):
            for k, p in enumerate(positions):
                result[p] = (jid, k)
    return result


def _request_owners(link_requests: dict[int, list[tuple[str, int]]]) -> dict[tuple[str, int], list[int]]:
    """(junction, request index) → the link indices whose connections use that request."""
    owner: dict[tuple[str, int], list[int]] = {}
    for k, reqs in link_requests.items():
        for r in reqs:
            owner.setdefault(r, []).append(k)
    return owner


def _conflict_matrix(reader: _Reader, n_links: int, owner: dict[tuple[str, int], list[int]]) -> np.ndarray:
    """Link-level foe matrix from junction request rows (symmetric, false diagonal); ``owner``:
    :func:`_request_owners` of the links' requests."""
    conflicts = np.zeros((n_links, n_links), dtype=bool)
    for (jid, ri), links in owner.items():
        junction = reader.junctions[jid]
        foes = junction.foes.get(ri)
        if foes is None:
            raise reader.fail(
                f"<junction id={jid!r}> has no <request index={ri}> for its internal lane "
                f"{junction.int_lanes[ri] if ri < len(junction.int_lanes) else ri!r}"
            )
        n = len(foes)
        for rj in range(n):
            if foes[n - 1 - rj] == "1":  # bit strings are reversed: last char is link 0
                for other in owner.get((jid, rj), ()):
                    conflicts[np.ix_(links, [other])] = True
    conflicts |= conflicts.T
    np.fill_diagonal(conflicts, False)
    conflicts.setflags(write=False)
    return conflicts


def _yield_matrices(reader: _Reader, n_links: int,
                    owner: dict[tuple[str, int], list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """``(yields, yields_any)``: ``yields[i, j]``, every request of link ``i`` that is a foe of a
    request of link ``j`` must give way to it (SUMO's ``response`` bit), so ``i`` may show ``g``
    beside a green ``j``; ``yields_any[i, j]``, some of them must."""
    pairs = np.zeros((n_links, n_links), dtype=np.int64)
    giving = np.zeros((n_links, n_links), dtype=np.int64)
    for (jid, ri), links in owner.items():
        junction = reader.junctions[jid]
        foes = junction.foes.get(ri, "")
        response = junction.response.get(ri, "0" * len(foes))
        n = len(foes)
        for rj in range(n):
            if foes[n - 1 - rj] != "1":
                continue
            for other in owner.get((jid, rj), ()):
                pairs[np.ix_(links, [other])] += 1
                if response[n - 1 - rj] == "1":
                    giving[np.ix_(links, [other])] += 1
    out: np.ndarray = (pairs > 0) & (giving == pairs)
    some: np.ndarray = giving > 0
    for m in (out, some):
        np.fill_diagonal(m, False)
        m.setflags(write=False)
    return out, some


def _chains(
    reader: _Reader, tid: str, requests: dict[int, tuple[str, int]], used: list[int], n_links: int,
    owner: dict[tuple[str, int], list[int]], onward: dict[str, list[int]],
) -> tuple[np.ndarray, np.ndarray]:
    """``(yields, links)``: ``yields[i, j]``, link ``i`` leads onto a lane shorter than
    :data:`NO_STORAGE_M` whose unsignalled onward connection gives way to link ``j`` of signal
    ``tid``; ``links[i, k]``, link ``i`` leads onto a lane shorter than :data:`CLUSTER_LANE_M`
    whose onward connection is link ``k`` of ``tid`` (see :attr:`Signal.chain_yields` and
    :attr:`Signal.chain_links`)."""
    out = np.zeros((n_links, n_links), dtype=bool)
    links = np.zeros((n_links, n_links), dtype=bool)
    for p in used:
        c = reader.connections[p]
        lane, edge = reader.lanes.get(c.to_lane), reader.edges.get(c.to_edge)
        if (lane is None or edge is None or edge.function != "normal" or lane.length >= CLUSTER_LANE_M
                or lane.classes <= _NON_DRIVING):  # bicycles and pedestrians fit where a car does not
            continue
        for q in onward.get(c.to_lane, ()):
            d = reader.connections[q]
            if d.tl == tid and 0 <= d.link_index < n_links:
                links[c.link_index, d.link_index] = True
            if d.tl is not None or q not in requests or lane.length >= NO_STORAGE_M:
                continue
            jid, ri = requests[q]
            junction = reader.junctions[jid]
            foes, response = junction.foes.get(ri, ""), junction.response.get(ri, "")
            n = len(foes)
            for rj in range(min(n, len(response))):
                if foes[n - 1 - rj] == "1" and response[n - 1 - rj] == "1":
                    for other in owner.get((jid, rj), ()):
                        out[c.link_index, other] = True
    for m in (out, links):
        np.fill_diagonal(m, False)
        m.setflags(write=False)
    return out, links


def _signals(
    reader: _Reader, graph: nx.MultiDiGraph, active: dict[str, str] | None = None
) -> dict[str, Signal]:
    requests = _request_indices(reader)
    by_tl: dict[str, list[int]] = {}
    for pos, c in enumerate(reader.connections):
        if c.tl is not None:
            by_tl.setdefault(c.tl, []).append(pos)
    for tid in reader.programs:
        by_tl.setdefault(tid, [])
    onward: dict[str, list[int]] = {}  # normal lane -> the connections leaving it
    for pos, c in enumerate(reader.connections):
        if not c.from_edge.startswith(":"):
            onward.setdefault(c.from_lane, []).append(pos)
    signals: dict[str, Signal] = {}
    for tid, positions in by_tl.items():
        programs = reader.programs.get(tid, {})
        used = [p for p in positions if reader.connections[p].link_index >= 0]
        max_state = max((len(ph.state) for pr in programs.values() for ph in pr.phases), default=0)
        n_links = max([reader.connections[p].link_index + 1 for p in used] + [max_state])
        for pr in programs.values():
            for k, ph in enumerate(pr.phases):
                if used and len(ph.state) < max(reader.connections[p].link_index for p in used) + 1:
                    raise reader.fail(
                        f"<tlLogic id={tid!r} programID={pr.id!r}> phase {k} has state "
                        f"{ph.state!r} of length {len(ph.state)}, shorter than the links it controls"
                    )
        # movements per link index
        per_link: dict[int, list[Movement]] = {}
        junctions: dict[str, None] = {}
        link_requests: dict[int, list[tuple[str, int]]] = {}
        primary_requests: dict[int, list[tuple[str, int]]] = {}
        for p in used:
            c = reader.connections[p]
            jid = _connection_junction(reader, c)
            junctions.setdefault(jid, None)
            if jid in graph and graph.nodes[jid]["tls"] is None:
                graph.nodes[jid]["tls"] = tid
            from_lane = reader.lanes.get(c.from_lane)
            to_lane = reader.lanes.get(c.to_lane)
            if from_lane is None or to_lane is None:
                missing = c.from_lane if from_lane is None else c.to_lane
                raise reader.fail(
                    f"<connection from={c.from_edge!r} to={c.to_edge!r}> uses lane {missing!r}, "
                    "which does not exist"
                )
            pedestrian = (
                reader.edges[c.from_edge].function in ("crossing", "walkingarea")
                or reader.edges[c.to_edge].function in ("crossing", "walkingarea")
                or _is_pedestrian_lane(from_lane)
                or _is_pedestrian_lane(to_lane)
            )
            per_link.setdefault(c.link_index, []).append(
                Movement(
                    link_index=c.link_index,
                    from_edge=c.from_edge,
                    from_lane=c.from_lane,
                    to_edge=c.to_edge,
                    to_lane=c.to_lane,
                    via=c.via,
                    direction=c.direction,
                    junction=jid,
                    is_pedestrian=pedestrian,
                )
            )
            if p in requests:
                link_requests.setdefault(c.link_index, []).append(requests[p])
                if not c.from_edge.startswith(":") or pedestrian:
                    primary_requests.setdefault(c.link_index, []).append(requests[p])
        movements: list[Movement] = []
        unused: set[int] = set()
        for k in range(n_links):
            group = per_link.get(k)
            if not group:
                unused.add(k)
                movements.append(Movement(k, "", "", "", "", None, "", "", False))
                continue
            # vehicles first, so the representative of a mixed index is the vehicle link
            group.sort(key=lambda m: m.is_pedestrian)
            first = group[0]
            movements.append(
                Movement(
                    link_index=k,
                    from_edge=first.from_edge,
                    from_lane=first.from_lane,
                    to_edge=first.to_edge,
                    to_lane=first.to_lane,
                    via=first.via,
                    direction=first.direction,
                    junction=first.junction,
                    is_pedestrian=first.is_pedestrian,
                    merged=tuple(group[1:]),
                )
            )
        owner = _request_owners(link_requests)  # one map for every matrix of the link's requests
        conflicts = _conflict_matrix(reader, n_links, owner)
        primary = _conflict_matrix(reader, n_links, _request_owners(primary_requests))
        yields, yields_any = _yield_matrices(reader, n_links, owner)
        chain_yields, chain_links = _chains(reader, tid, requests, used, n_links, owner, onward)
        signals[tid] = Signal(
            id=tid,
            junctions=tuple(junctions),
            movements=tuple(movements),
            programs=dict(programs),
            conflicts=conflicts,
            unused_links=frozenset(unused),
            primary_conflicts=primary,
            active_program_id=(active or {}).get(tid),
            yields=yields,
            yields_any=yields_any,
            chain_yields=chain_yields,
            chain_links=chain_links,
        )
    return signals


def load_network(
    path: str | os.PathLike[str],
    *,
    saturation_flow_per_lane: float = 1800.0,
    program_files: Sequence[str | os.PathLike[str]] = (),
    begin_s: float = 0.0,
) -> RoadNetwork:
    """Read a SUMO net file into a :class:`RoadNetwork`.

    Parameters
    ----------
    path
        A ``.net.xml`` or gzipped ``.net.xml.gz`` file (gzip is recognised by content).
    saturation_flow_per_lane
        Saturation flow of one vehicle lane in veh/h/lane; edges carry it times their lanes.
    program_files
        Additional files the scenario loads, in SUMO's order: their ``<tlLogic>`` programs join
        the signals' own (each becomes the active one, as in SUMO) and their WAUTs choose the
        program each signal starts on at ``begin_s`` (see :mod:`greenwave.networks.program_files`).
        Files without programs may be given; they add nothing.

    Returns
    -------
    RoadNetwork
        The driving graph and every traffic light (``tl`` id), with conflicts from SUMO's
        ``<request foes=...>`` rows.

    Raises
    ------
    NetworkError
        The file is missing, not XML, truncated, not a SUMO net, or internally inconsistent.
    """
    if not (isinstance(saturation_flow_per_lane, (int, float)) and saturation_flow_per_lane > 0):
        raise NetworkError(
            f"saturation_flow_per_lane must be a positive number of veh/h/lane, "
            f"got {saturation_flow_per_lane!r}"
        )
    net_path = Path(path)
    reader = _Reader(net_path)
    reader.read()
    active = reader.add_program_files(program_files, begin_s) if program_files else {}
    graph = _build_graph(reader, float(saturation_flow_per_lane))
    signals = _signals(reader, graph, active)
    return RoadNetwork(
        path=net_path,
        graph=graph,
        signals=signals,
        saturation_flow_per_lane=float(saturation_flow_per_lane),
    )
