"""Demand routing: trips, flows and person trips turned into vehicles with explicit routes
(``duarouter``), for the SUMO tools and planners that read routed vehicles only
(:func:`ensure_routes`)."""

from __future__ import annotations

import os
import random
import xml.etree.ElementTree as ET
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from greenwave._sumo import run_sumo_command
from greenwave._xml import open_xml
from greenwave.engine.results import atomic_path, write_text_atomic
from greenwave.errors import ScenarioError, SimulationError
from greenwave.networks.program_files import iter_top_level

if TYPE_CHECKING:
    from greenwave.engine.run import RunSpec, SumoOptions

__all__ = ["ROUTE_CHOICE_OPTIONS", "Chosen", "chosen_routes", "ensure_routes", "insertion_routed_demand",
           "route_choice_args", "routing_seed", "with_chosen_routes"]

PathLike = str | os.PathLike[str]

#: Tags of demand that SUMO's signal tools cannot read as routed vehicles.
_UNROUTED_TAGS = frozenset({"trip", "flow", "personTrip", "personFlow", "containerFlow"})
#: Tags that make a file hold demand (as opposed to type or route definitions only).
_DEMAND_TAGS = frozenset(
    {"vehicle", "trip", "flow", "person", "personFlow", "container", "containerFlow"}
)


#: SUMO options that decide the route a vehicle without one takes at insertion, which duarouter
#: takes alike: routing the demand for greenwave's analyses with them puts its flows where SUMO
#: drives them (``weights.random-factor`` spreads vehicles over near-shortest paths; without
#: it every trip of an OD pair takes the one shortest path). Not ``weights.tls-penalty``: SUMO
#: scales it by the green split, duarouter adds it as given, so the two would route apart.
ROUTE_CHOICE_OPTIONS = ("routing-algorithm", "weights.random-factor", "weights.minor-penalty",
                        "weights.turnaround-penalty", "weights.reversal-penalty", "weights.priority-factor")


def route_choice_args(config: SumoOptions | None) -> tuple[str, ...]:
    """duarouter arguments for the route-choice options (:data:`ROUTE_CHOICE_OPTIONS`) among a
    scenario's SUMO options (its ``.sumocfg``; None: none), in their order."""
    out: list[str] = []
    for name, value in () if config is None else config.options:
        if name in ROUTE_CHOICE_OPTIONS:
            out += [f"--{name}", str(value)]
    return tuple(out)


def _require_file(path: PathLike, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(f"{what} not found: {p}")
    return p


@dataclass(frozen=True)
class _DemandScan:
    needs_routing: bool  # trips, flows, person trips or vehicles without a resolvable route
    has_demand: bool  # any vehicle, trip, flow, person or container
    has_types: bool  # vType / vTypeDistribution definitions
    #: ids of the vehicles SUMO routes itself when it inserts them (trips, vehicles given by
    #: from/to, TAZ or junctions without a route) and of the flows whose vehicles it routes so
    routeless: frozenset[str] = frozenset()
    routeless_flows: frozenset[str] = frozenset()

    @property
    def incomplete(self) -> bool:
        """Whether SUMO routes some of the file's vehicles at insertion."""
        return bool(self.routeless or self.routeless_flows)


def _routeless(el: ET.Element) -> bool:
    """A vehicle, flow or trip element without a route of its own (SUMO routes it at insertion)."""
    return el.tag == "trip" or (not el.get("route") and el.find("route") is None
                                and el.find("routeDistribution") is None)


def _scan_demand(path: Path) -> _DemandScan:
    needs = demand = types = False
    routeless: set[str] = set()
    routeless_flows: set[str] = set()
    routes: set[str] = set()
    pending_refs: set[str] = set()
    for el in iter_top_level(path, "route file"):
        tag = el.tag
        if tag in ("vType", "vTypeDistribution"):
            types = True
        elif tag == "route" and el.get("id"):
            routes.add(el.get("id", ""))
        if tag in _DEMAND_TAGS:
            demand = True
        if tag in ("trip", "flow", "vehicle") and _routeless(el):
            (routeless_flows if tag == "flow" else routeless).add(el.get("id", ""))
        if tag in _UNROUTED_TAGS:
            needs = True
        elif tag == "vehicle":
            if el.find("route") is not None:
                continue
            ref = el.get("route")
            if ref:
                pending_refs.add(ref)  # resolved below: a route distribution needs routing
            else:
                needs = True  # routeDistribution child, or from/to attributes
        elif tag == "person" and el.find("personTrip") is not None:
            needs = True
    if pending_refs - routes:
        needs = True
    return _DemandScan(needs_routing=needs, has_demand=demand, has_types=types, routeless=frozenset(routeless),
                       routeless_flows=frozenset(routeless_flows))


def ensure_routes(
    net_file: PathLike,
    route_files: Sequence[PathLike],
    *,
    workdir: PathLike,
    seed: int = 0,
    begin: float | None = None,
    end: float | None = None,
    route_choice: Sequence[str] = (),
) -> list[Path]:
    """Make sure the demand consists of vehicles with explicit routes.

    SUMO's ``tlsCycleAdaptation.py`` counts only ``<vehicle>`` elements with an embedded route
    or a reference to a named ``<route>``; ``tlsCoordinator.py`` reads ``<route>`` elements.
    Files holding trips, flows (routed or not), person trips or vehicles that refer to a route
    distribution are routed together with ``duarouter``, which also expands every flow
    (``number``, ``vehsPerHour``, ``period``, ``probability``, seeded) into single vehicles.
    Files whose vehicles already have routes are returned unchanged; in a file that needs
    routing, vehicles and flows with routes of their own keep them (``--skip-new-routes``).

    Parameters
    ----------
    net_file : str or os.PathLike
        The SUMO network.
    route_files : sequence of str or os.PathLike
        Demand files (plain or gzipped XML).
    workdir : str or os.PathLike
        Folder for the routed file (created if missing).
    seed : int, default 0
        Seed of duarouter's random number generator (probability flows, random departures).
    begin, end : float, optional
        Only demand departing in ``[begin, end)`` s is routed (duarouter ``-b``/``-e``).
        Give ``end`` for flows that run for a very long time.
    route_choice : sequence of str, optional
        duarouter arguments that choose routes as the simulation does (:func:`route_choice_args`
        of the run's SUMO options), e.g. ``("--weights.random-factor", "1.2")``.

    Returns
    -------
    list of pathlib.Path
        The files that already had routes, in their given order, followed by
        ``workdir/routed.rou.xml`` if anything had to be routed. Files without demand (vehicle
        types, bus stops, parking areas the demand stops at) are handed to duarouter as
        additional files; types may appear twice in the result (harmless for the tools, but
        load only the originals into SUMO).

    Raises
    ------
    ScenarioError
        If the network or a route file is missing or not readable XML, or no file is given.
    SimulationError
        If duarouter fails; the message carries what it printed.
    """
    net = _require_file(net_file, "network file")
    files = [_require_file(f, "route file") for f in route_files]
    if not files:
        raise ScenarioError("no route files given: the signal tools need demand")
    scans = {f: _scan_demand(f) for f in files}
    to_route = [f for f in files if scans[f].needs_routing]
    keep = [f for f in files if not scans[f].needs_routing]
    if not to_route:
        return keep
    # types, stops and parking areas the demand refers to
    type_files = [f for f in keep if not scans[f].has_demand]
    folder = Path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "routed.rou.xml"
    args: list[PathLike] = [
        "duarouter",
        "-n", net,
        "-r", ",".join(str(f) for f in to_route),
        "-o", out,
        "--alternatives-output", out.with_name("routed.rou.alt.xml"),
        "--ignore-errors",
        # a vehicle or flow with a route of its own keeps it (without, duarouter draws between it
        # and the shortest path: half of a routed flow moved to another column on grid6)
        "--skip-new-routes",
        "--seed", str(int(seed)),
        "--no-step-log",
        "--xml-validation", "never",  # as the simulation reads them (scenarios carry odd attributes)
    ]  # fmt: skip
    if type_files:
        args += ["--additional-files", ",".join(str(f) for f in type_files)]
    if begin is not None:
        args += ["--begin", f"{begin:.10g}"]
    if end is not None:
        args += ["--end", f"{end:.10g}"]
    args += list(route_choice)
    run_sumo_command(
        args, what=f"routing demand {', '.join(f.name for f in to_route)}", cwd=out.parent
    )
    if not out.is_file():
        raise SimulationError(f"duarouter wrote no routes file at {out}")
    return [*keep, out]


# ---- routes as SUMO chooses them at insertion

#: a vehicle of duarouter's and one of SUMO's with the same id are the same vehicle when their
#: intended departures are this close (probability flows draw other departures in each), s
SAME_DEPARTURE_S = 1.0
#: a vehicle SUMO did not insert draws its route from the routes SUMO chose for this many
#: departures nearest its own (same vehicle type, first and last edge)
NEIGHBOURS = 20
DEFAULT_TYPE = "DEFAULT_VEHTYPE"


@dataclass(frozen=True)
class Chosen:
    """The route SUMO chose for one vehicle (:func:`chosen_routes`)."""

    depart_s: float  # intended departure
    edges: str
    vtype: str = DEFAULT_TYPE


def routing_seed(run_seed: int) -> int:
    """The SUMO seed of the routing run (:func:`insertion_routed_demand`) for a run on
    ``run_seed``: never a scenario seed below a million nor a proof seed
    (:func:`greenwave.controllers.proof.proof_seed`), so the routing run does not replay the
    scored run's random stream."""
    return 2_000_003 + 7919 * int(run_seed)


def chosen_routes(vehroute_file: Path) -> dict[str, Chosen]:
    """Vehicle id → its route from SUMO's ``--vehroute-output`` (with
    ``--vehroute-output.intended-depart``): the route it drove, the last of a
    ``routeDistribution`` (replaced at insertion, or on the way where the scenario reroutes).
    A vehicle without a departure time (``triggered``: it waits for a person) is left out."""
    out: dict[str, Chosen] = {}
    try:
        with open_xml(vehroute_file) as fh:
            for _, el in ET.iterparse(fh, events=("end",)):
                if el.tag != "vehicle":
                    continue
                routes = el.findall(".//route")
                edges = routes[-1].get("edges") if routes else None
                depart = _seconds(el.get("depart"))
                if edges and el.get("id") and depart is not None:
                    out[el.get("id", "")] = Chosen(depart, edges, el.get("type", DEFAULT_TYPE))
                el.clear()
    except (OSError, ET.ParseError) as exc:
        raise SimulationError(f"{vehroute_file}: SUMO's route output is not readable ({exc})") from exc
    return out


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:  # "triggered", "containerTriggered", "begin", "now"
        return None


def with_chosen_routes(routed: Path, chosen: Mapping[str, Chosen], out: Path, *,
                       routeless: Callable[[str], bool], seed: int = 0) -> tuple[int, int]:
    """Write ``routed`` (duarouter's vehicles, one route each) to ``out`` with each vehicle that
    SUMO routes at insertion (``routeless`` of its id) on the route SUMO chose for it
    (``chosen``, :func:`chosen_routes`: the same id and intended departure within
    :data:`SAME_DEPARTURE_S`). One SUMO did not insert (its probability flow drew other
    departures, the run ended first or its entry stayed full) draws, seeded, from the routes SUMO
    chose for the :data:`NEIGHBOURS` departures nearest its own of the same vehicle type between
    the same first and last edge, else keeps duarouter's. Vehicles with routes of their own keep
    them. Returns (vehicles on their own SUMO route, on a neighbour's).

    Raises
    ------
    SimulationError
        If ``routed`` (duarouter's output) is not readable XML.
    """
    rng = random.Random(seed)
    by_od: dict[tuple[str, str, str], list[tuple[float, str]]] = {}
    for vid, c in chosen.items():
        if routeless(vid):
            e = c.edges.split()
            by_od.setdefault((c.vtype, e[0], e[-1]), []).append((c.depart_s, c.edges))
    for listed in by_od.values():
        listed.sort()
    try:
        tree = ET.parse(routed)
    except (OSError, ET.ParseError) as exc:
        raise SimulationError(f"{routed}: duarouter's routes are not readable ({exc})") from exc
    own = near = 0
    for veh in tree.getroot().iter("vehicle"):
        route, vid = veh.find("route"), veh.get("id", "")
        depart = _seconds(veh.get("depart"))
        if route is None or not route.get("edges") or depart is None or not routeless(vid):
            continue
        same = chosen.get(vid)
        if same is not None and abs(same.depart_s - depart) <= SAME_DEPARTURE_S:
            route.set("edges", same.edges)
            own += 1
            continue
        e = route.get("edges", "").split()
        trips = by_od.get((veh.get("type", DEFAULT_TYPE), e[0], e[-1]), [])
        if not trips:
            continue
        i = bisect_left(trips, (depart, ""))
        lo = max(0, min(i - NEIGHBOURS // 2, len(trips) - NEIGHBOURS))
        route.set("edges", rng.choice(trips[lo:lo + NEIGHBOURS])[1])
        near += 1
    with atomic_path(out) as tmp:
        tree.write(tmp, encoding="utf-8", xml_declaration=True)
    return own, near


def insertion_routed_demand(spec: RunSpec) -> tuple[Path, ...]:
    """The run's demand files as greenwave's analyses should read them, routed as SUMO routes
    them in this run.

    SUMO routes a vehicle without a route (a trip, a flow or vehicle given by from/to) when it
    inserts it, on the travel times its network has at that moment (a routing device equipped
    for that), not on the free-flow times duarouter routes with: on grid6 duarouter put 69 % of
    a flow on the middle one of three equal columns, SUMO 38 %. So where the demand has such
    vehicles, SUMO runs the scenario once with its own programs (seed :func:`routing_seed`) and
    writes the routes it chose (``--vehroute-output``); duarouter's vehicles
    (:func:`ensure_routes`) that SUMO routes at insertion take them (:func:`with_chosen_routes`).
    Demand whose vehicles all have routes is returned unchanged, without a run. The result is
    kept in the run's folder (``insertion_routing/``, with ``routing.txt`` saying how many
    vehicles took which route) for the run's later calls with the same inputs.

    Raises
    ------
    ScenarioError
        If a file the run reads is missing.
    SimulationError
        If SUMO fails (with what it said) or writes no route output.
    """
    files = [_require_file(f, "demand file") for f in spec.demand_files]
    scans = {f: _scan_demand(f) for f in files}
    if not any(s.incomplete for s in scans.values()):
        return tuple(files)
    trips = frozenset().union(*(s.routeless for s in scans.values()))
    flows = frozenset().union(*(s.routeless_flows for s in scans.values()))
    folder = Path(spec.workdir) / "insertion_routing"
    result, key_file = folder / "insertion.rou.xml", folder / "inputs.sha256"
    keep = [f for f in files if not scans[f].needs_routing]
    # the scenario's own route output would clash with the routing run's
    extra = _without_vehroute_output(() if spec.sumo_config is None else spec.sumo_config.sumo_args(folder / "outputs"))
    key = _routing_key(spec, extra)
    if result.is_file() and key_file.is_file() and key_file.read_text() == key:
        return (*keep, result)  # this run's folder routed the same inputs before
    key_file.unlink(missing_ok=True)
    routed = ensure_routes(spec.net_file, files, workdir=folder, seed=spec.seed, begin=spec.demand_begin_s,
                           end=spec.demand_end_s, route_choice=spec.route_choice)[-1]
    vehroutes = folder / "vehroutes.xml"
    if spec.sumo_config is not None and spec.sumo_config.outputs:
        (folder / "outputs").mkdir(parents=True, exist_ok=True)
    run = replace(spec, seed=routing_seed(spec.seed), gui=False)
    config = run.session_config(
        route_files=tuple(spec.route_files), additional_files=tuple(spec.additional_files),
        outputs={"vehroute-output": vehroutes},
        extra_args=(*extra, "--vehroute-output.write-unfinished", "true", "--vehroute-output.intended-depart", "true",
                    "--no-warnings", "true"),
        log_file=folder / "sumo.log")
    run_sumo_command(config.command(), what=f"routing run (seed {run.seed}: the routes SUMO chooses at insertion)",
                     cwd=folder, timeout=None)
    if not vehroutes.is_file():
        raise SimulationError(f"the routing run wrote no route output at {vehroutes} (log: {folder / 'sumo.log'})")
    own, near = with_chosen_routes(routed, chosen_routes(vehroutes), result, seed=run.seed,
                                   routeless=lambda vid: vid in trips or vid.rpartition(".")[0] in flows)
    write_text_atomic(
        f"routing run seed {run.seed}: {own} vehicle(s) on the route SUMO chose for them; {near} on a route it "
        f"chose for one of the departures nearest theirs (SUMO did not insert them, or drew their flow's "
        f"departures anew); the others as duarouter routed them\n", folder / "routing.txt")
    write_text_atomic(key, key_file)
    return (*keep, result)


def _without_vehroute_output(args: Sequence[str]) -> tuple[str, ...]:
    """SUMO arguments (``--name value`` pairs) without the ``vehroute-output`` options."""
    out: list[str] = []
    pairs = iter(args)
    for name in pairs:
        value = next(pairs, None)
        if not name.startswith("--vehroute-output"):
            out += [name] if value is None else [name, value]
    return tuple(out)


def _routing_key(spec: RunSpec, sumo_args: Sequence[str]) -> str:
    """What the routing run's result depends on: its input files (path, size, modification
    time), the run's window, step, seeds and SUMO options. A run folder reused with other
    inputs routes again."""
    import hashlib

    parts: list[str] = []
    for f in (spec.net_file, *spec.demand_files, *spec.route_files, *spec.additional_files):
        st = _require_file(f, "input file").stat()
        parts.append(f"{Path(f).resolve()}:{st.st_size}:{st.st_mtime_ns}")
    parts += [repr((spec.seed, spec.begin_s, spec.end_s, spec.demand_begin_s, spec.demand_end_s, spec.step_length_s,
                    spec.time_to_teleport_s)), *spec.route_choice, *sumo_args]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
