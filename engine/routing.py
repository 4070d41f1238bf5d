"""Demand routing: trips, flows and person trips turned into vehicles with explicit routes
(``duarouter``), for the SUMO tools and planners that read routed vehicles only
(:func:`ensure_routes`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from greenwave._sumo import run_sumo_command
from greenwave.errors import ScenarioError, SimulationError
from greenwave.networks.program_files import iter_top_level

if TYPE_CHECKING:
    from greenwave.engine.run import SumoOptions

__all__ = ["ROUTE_CHOICE_OPTIONS", "ensure_routes", "route_choice_args"]

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


def _scan_demand(path: Path) -> _DemandScan:
    needs = demand = types = False
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
    return _DemandScan(needs_routing=needs, has_demand=demand, has_types=types)


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
    Files whose vehicles already have routes are returned unchanged.

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
