"""SUMO signal programs for the baseline controllers, written as additional files.

Every function here writes an ``<additional>`` file of ``<tlLogic>`` elements into a folder the
caller owns and returns its path. Loading that file into SUMO (``-a``) makes the new programs the
active ones, since SUMO switches a traffic light to the program loaded last for it. Every traffic
light of the network gets a program under the new ``programID``, so that a run can check which
program each signal runs.

- :func:`webster_programs` runs ``tools/tlsCycleAdaptation.py`` (Webster cycle and green splits).
- :func:`coordinator_programs` runs ``tools/tlsCoordinator.py`` (offsets along the main flows).
- :func:`actuated_programs` copies each active program as a gap-based (``actuated``) or
  delay-based (``delay_based``) program with minimum and maximum green times.

Each starts from the program SUMO runs for a light (:func:`~greenwave.controllers.tls_xml.active_programs`:
the network's, or the scenario's own from its additional files and WAUTs).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Literal

from greenwave._sumo import run_sumo_command, sumo_tool
from greenwave.controllers.plans.safety_rules import DEFAULT_STANDARDS
from greenwave.controllers.tls_xml import active_programs, read_programs, write_additional
from greenwave.controllers.tls_xml import copy_element as _copy
from greenwave.controllers.tls_xml import iter_top_level as _iter_top_level
from greenwave.engine.routing import ensure_routes
from greenwave.errors import NetworkError, ScenarioError
from greenwave.networks.signal_states import GREEN, TRANSITION, YELLOW, cyclic_runs

__all__ = [
    "active_programs",
    "actuated_programs",
    "coordinator_programs",
    "read_programs",
    "webster_programs",
]

PathLike = str | os.PathLike[str]



# ------------------------------------------------------------------------------------------
# small helpers


def _require_file(path: PathLike, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(f"{what} not found: {p}")
    return p


def _workdir(workdir: PathLike) -> Path:
    w = Path(workdir)
    w.mkdir(parents=True, exist_ok=True)
    return w


def _fmt(x: float) -> str:
    return f"{x:.10g}"


# ------------------------------------------------------------------------------------------
# reading programs


def _cycle(program: ET.Element) -> float:
    return sum(float(ph.get("duration", "0")) for ph in program.iter("phase"))


def _net_programs(net_file: Path) -> dict[str, ET.Element]:
    programs = read_programs(net_file)
    if not programs:
        raise NetworkError(f"network {net_file} has no traffic light programs (<tlLogic>)")
    return programs


def _renamed(program: ET.Element, program_id: str) -> ET.Element:
    new = _copy(program)
    new.set("programID", program_id)
    return new


# ------------------------------------------------------------------------------------------
# routes


def _iter_routed_vehicles(files: Sequence[Path]) -> Iterator[tuple[float, str, list[str]]]:
    """(depart s, type, edges) of every vehicle with an explicit or named route."""
    for path in files:
        named: dict[str, list[str]] = {}
        for el in _iter_top_level(path, "route file"):
            if el.tag == "route" and el.get("id"):
                named[el.get("id", "")] = el.get("edges", "").split()
            elif el.tag == "vehicle":
                try:
                    depart = float(el.get("depart", "0"))
                except ValueError:  # "triggered", "containerTriggered", "begin"...
                    continue
                inner = el.find("route")
                edges = (
                    inner.get("edges", "").split()
                    if inner is not None
                    else named.get(el.get("route", ""), [])
                )
                if edges:
                    yield depart, el.get("type", ""), edges


def _run_tool(script: str, args: Sequence[PathLike], *, what: str, workdir: Path) -> str:
    proc = run_sumo_command([sumo_tool(script), *args], what=what, cwd=workdir)
    return proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------
# Webster (tlsCycleAdaptation.py)


def _yellow_default(programs: dict[str, ET.Element]) -> int:
    """The longest yellow among the network's programs (s, at least 3), as an integer."""
    longest = 0.0
    for program in programs.values():
        for ph in program.iter("phase"):
            state = ph.get("state", "")
            if any(c in YELLOW for c in state):
                longest = max(longest, float(ph.get("duration", "0")))
    return max(3, int(round(longest)))


def webster_programs(
    net_file: PathLike,
    route_files: Sequence[PathLike],
    *,
    workdir: PathLike,
    begin: float = 0.0,
    end: float | None = None,
    seed: int = 0,
    program_id: str = "gw_webster",
    min_cycle: int = 30,
    max_cycle: int = 120,
    yellow: int | None = None,
    all_red: int = 0,
    lost_time: int = 4,
    min_green: int = 5,
    saturation_headway: float = 2.0,
    unified_cycle: bool = False,
    restrict_cycle: bool = False,
    existing_cycle: bool = False,
    program_files: Sequence[PathLike] = (),
    begin_s: float | None = None,
    route_choice: Sequence[str] = (),
) -> Path:
    """Webster cycle lengths and green splits from SUMO's ``tlsCycleAdaptation.py``.

    The tool reads one hour of demand from ``begin`` (shorter periods are scaled up to an hour),
    computes each signal's critical flow ratios and derives the cycle ``(1.5 L + 5) / (1 - Y)``,
    clipped to ``[min_cycle, max_cycle]``, and the green splits. Signals without traffic are not
    optimised by the tool; they keep their static program under the new id.

    Parameters
    ----------
    net_file : str or os.PathLike
        The SUMO network.
    route_files : sequence of str or os.PathLike
        Demand; routed first with :func:`~greenwave.engine.routing.ensure_routes` when it holds trips or flows.
    workdir : str or os.PathLike
        Folder for the routed demand, the tool's raw output and the result.
    begin : float, default 0
        Start of the analysed hour (s).
    end : float, optional
        End of the demand that is routed (s); the tool itself always looks at one hour.
    seed : int, default 0
        Seed for routing (probability flows).
    route_choice : sequence of str, optional
        duarouter arguments that route trips as the simulation does (``RunSpec.route_choice``).
    program_id : str, default "gw_webster"
        ``programID`` of the written programs.
    min_cycle, max_cycle : int, default 30, 120
        Bounds of the cycle length (s).
    yellow : int, optional
        Yellow time the tool writes into every yellow phase (s). Default: the longest yellow in
        the network, so clearance times are never shortened.
    all_red : int, default 0
        All-red time per cycle (s) counted as lost time.
    lost_time : int, default 4
        Start-up and clearance lost time per phase (s).
    min_green : int, default 5
        Minimum green time (s) the tool gives a phase.
    saturation_headway : float, default 2.0
        Saturation headway (s), i.e. saturation flow ``3600 / h`` veh/h per lane.
    unified_cycle : bool, default False
        Give every signal the largest optimised cycle (``-u``).
    restrict_cycle : bool, default False
        Re-allocate greens so that minimum greens do not push the cycle above ``max_cycle``.
    existing_cycle : bool, default False
        Keep each signal's existing cycle length and only re-split it (``-e``).

    Returns
    -------
    pathlib.Path
        ``workdir/<program_id>.add.xml`` with one ``<tlLogic>`` per traffic light.

    Raises
    ------
    ScenarioError
        If the network or a route file is missing, or the options are inconsistent.
    NetworkError
        If the network has no traffic light programs.
    SimulationError
        If duarouter or the tool fails.
    """
    net = _require_file(net_file, "network file")
    if not 0 < min_cycle <= max_cycle:
        raise ScenarioError(f"need 0 < min_cycle <= max_cycle, got {min_cycle}, {max_cycle}")
    if min_green <= 0 or lost_time < 0 or all_red < 0 or saturation_headway <= 0:
        raise ScenarioError(
            "min_green and saturation_headway must be positive, lost_time and all_red >= 0"
        )
    wd = _workdir(workdir)
    statics = active_programs(net, program_files, begin_s=begin if begin_s is None else begin_s)
    routes = ensure_routes(net, route_files, workdir=wd, seed=seed, begin=begin, end=end,
                           route_choice=route_choice)
    y = _yellow_default(statics) if yellow is None else int(yellow)
    if y <= 0:
        raise ScenarioError(f"yellow must be positive, got {yellow}")
    raw = wd / f"{program_id}.raw.add.xml"
    args: list[PathLike] = [
        "-n", net,
        "-r", ",".join(str(r) for r in routes),
        "-o", raw,
        "-b", _fmt(begin),
        "-p", program_id,
        "-y", str(y),
        "-a", str(int(all_red)),
        "-l", str(int(lost_time)),
        "-g", str(int(min_green)),
        "--min-cycle", str(int(min_cycle)),
        "--max-cycle", str(int(max_cycle)),
        "-H", _fmt(saturation_headway),
    ]  # fmt: skip
    if unified_cycle:
        args.append("-u")
    if restrict_cycle:
        args.append("-R")
    if existing_cycle:
        args.append("-e")
    skip = webster_tool_skips(net)
    if skip:
        args.append("--skip=" + ",".join(skip))  # one token: OSM ids such as "-11266" look like options
    _run_tool("tlsCycleAdaptation.py", args, what="Webster programs (tlsCycleAdaptation.py)",
              workdir=wd)  # fmt: skip
    optimised = read_programs(raw) if raw.is_file() else {}
    elements: list[ET.Element] = []
    for tls_id, static in statics.items():
        new = optimised.get(tls_id)
        if new is None or not _same_shape(new, static):
            new = static
        elements.append(_renamed(new, program_id))
    return write_additional(
        elements,
        wd / f"{program_id}.add.xml",
        f"Webster programs from tlsCycleAdaptation.py ({len(optimised)} of {len(statics)} "
        "signals optimised, the others keep their static program)",
    )


def webster_tool_skips(net_file: PathLike) -> list[str]:
    """Traffic lights that ``tlsCycleAdaptation.py`` cannot handle, to pass as ``--skip``.

    The tool looks up a connection by its link index in the list of the light's connections
    sorted by index, so it fails (IndexError) when a link index it counts as active, i.e. any
    index of a connection leaving one of the light's incoming edges, is not the position of that
    connection in the list: link indices with gaps, or edges shared with another light of a
    junction cluster (seen in A10KW). Such lights keep their static program."""
    import sumolib

    net = sumolib.net.readNet(str(net_file), withPrograms=False)
    out = []
    for tl in net.getTrafficLights():
        conns = sorted(tl.getConnections(), key=lambda c: c[2])
        active: set[int] = set()
        for conn in conns:
            for to_edge, cs in conn[0].getEdge().getOutgoing().items():
                if to_edge.getFunction() in ("crossing", "walkingarea", "internal"):
                    continue
                active.update(c.getTLLinkIndex() for c in cs if c.getTLLinkIndex() >= 0)
        if any(j >= len(conns) or conns[j][2] != j for j in active):
            out.append(tl.getID())
    return sorted(out)


def _same_shape(a: ET.Element, b: ET.Element) -> bool:
    sa = [ph.get("state", "") for ph in a.iter("phase")]
    sb = [ph.get("state", "") for ph in b.iter("phase")]
    durations_ok = all(float(ph.get("duration", "0")) > 0 for ph in a.iter("phase"))
    return sa == sb and durations_ok


# ------------------------------------------------------------------------------------------
# coordination (tlsCoordinator.py)


def coordinator_programs(
    net_file: PathLike,
    route_files: Sequence[PathLike],
    *,
    workdir: PathLike,
    program_id: str = "gw_coordinator",
    base_programs: PathLike | None = None,
    seed: int = 0,
    begin: float | None = None,
    end: float | None = None,
    speed_factor: float = 0.8,
    ignore_priority: bool = False,
    program_files: Sequence[PathLike] = (),
    begin_s: float | None = None,
    route_choice: Sequence[str] = (),
) -> Path:
    """Offsets along the main flows from SUMO's ``tlsCoordinator.py``.

    The tool pairs consecutive signals on every route, sorts the pairs by road priority and
    number of vehicles per travel time and chains offsets so that the first green of the
    downstream signal starts when vehicles released at the upstream one arrive. It only writes
    offsets; this function writes full programs (phases of the base program, the new offset
    taken modulo the cycle) so that every signal runs ``program_id``.

    Parameters
    ----------
    net_file : str or os.PathLike
        The SUMO network.
    route_files : sequence of str or os.PathLike
        Demand; routed first with :func:`~greenwave.engine.routing.ensure_routes`. Each vehicle counts once.
    workdir : str or os.PathLike
        Folder for intermediate files and the result.
    program_id : str, default "gw_coordinator"
        ``programID`` of the written programs.
    base_programs : str or os.PathLike, optional
        An additional file with programs to coordinate (e.g. the output of
        :func:`webster_programs`); default: the network's own programs.
    seed : int, default 0
        Seed for routing.
    route_choice : sequence of str, optional
        duarouter arguments that route trips as the simulation does (``RunSpec.route_choice``).
    begin, end : float, optional
        Only vehicles departing in ``[begin, end)`` s are counted.
    speed_factor : float, default 0.8
        Mean speed as a fraction of the speed limit, for travel times between signals.
    ignore_priority : bool, default False
        Sort signal pairs by traffic only, not by road priority.

    Returns
    -------
    pathlib.Path
        ``workdir/<program_id>.add.xml`` with one ``<tlLogic>`` per traffic light.

    Raises
    ------
    ScenarioError
        If an input file is missing or ``speed_factor`` is not positive.
    NetworkError
        If the network has no traffic light programs.
    SimulationError
        If duarouter or the tool fails.
    """
    net = _require_file(net_file, "network file")
    if speed_factor <= 0:
        raise ScenarioError(f"speed_factor must be positive, got {speed_factor}")
    base_file = None if base_programs is None else _require_file(base_programs, "program file")
    wd = _workdir(workdir)
    programs = active_programs(net, program_files,
                               begin_s=(begin or 0.0) if begin_s is None else begin_s)
    if base_file is not None:
        programs.update(read_programs(base_file))
    routes = ensure_routes(net, route_files, workdir=wd, seed=seed, begin=begin, end=end,
                           route_choice=route_choice)

    # One <route> per vehicle: the tool counts route elements, so named routes shared by many
    # vehicles would count once. Only one route file is accepted.
    merged = wd / f"{program_id}.routes.xml"
    lo = float("-inf") if begin is None else begin
    hi = float("inf") if end is None else end
    n = 0
    with open(merged, "w", encoding="utf-8") as fh:
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n<routes>\n')
        for depart, _vtype, edges in _iter_routed_vehicles(routes):
            if lo <= depart < hi and len(edges) > 1:
                fh.write(f'    <vehicle id="v{n}" depart="{depart:.2f}">'
                         f'<route edges="{" ".join(edges)}"/></vehicle>\n')  # fmt: skip
                n += 1
        fh.write("</routes>\n")

    # The tool reads the latest program of each signal from the net and -a; hand it exactly the
    # programs we coordinate (phases decide the first-green offsets it computes).
    base_add = write_additional(
        [_copy(p) for p in programs.values()], wd / f"{program_id}.base.add.xml",
        "programs handed to tlsCoordinator.py",
    )  # fmt: skip
    raw = wd / f"{program_id}.raw.add.xml"
    args: list[PathLike] = [
        "-n", net, "-r", merged, "-a", base_add, "-o", raw,
        "--speed-factor", _fmt(speed_factor),
    ]  # fmt: skip
    if ignore_priority:
        args.append("-i")
    _run_tool("tlsCoordinator.py", args, what="coordinated offsets (tlsCoordinator.py)",
              workdir=wd)  # fmt: skip
    offsets: dict[str, float] = {}
    if raw.is_file():
        for el in _iter_top_level(raw, "tlsCoordinator output"):
            if el.tag == "tlLogic" and el.get("offset") is not None:
                offsets[el.get("id", "")] = float(el.get("offset", "0"))
    elements: list[ET.Element] = []
    for tls_id, program in programs.items():
        new = _renamed(program, program_id)
        if tls_id in offsets:
            cycle = _cycle(program)
            off = offsets[tls_id] % cycle if cycle > 0 else offsets[tls_id]
            new.set("offset", f"{off:.2f}")
        elements.append(new)
    return write_additional(
        elements,
        wd / f"{program_id}.add.xml",
        f"coordinated offsets from tlsCoordinator.py for {len(offsets)} of {len(programs)} "
        f"signals ({n} vehicles)",
    )


# ------------------------------------------------------------------------------------------
# actuated / delay-based


# Greens shorter than this are steps of a change of stage in a signal-group plan, not stages:
# the safety standards' minimum green (RiLSA's 5 s for vehicles).
_STAGE_GREEN_S = DEFAULT_STANDARDS.min_green_s


def _is_variable(state: str) -> bool:
    """A phase whose duration an actuated controller may vary: some green, no transition."""
    chars = set(state)
    return bool(chars & GREEN) and not chars & TRANSITION


def _shown_s(phases: Sequence[ET.Element]) -> list[float]:
    """Per phase, how long its state shows: its duration summed with the phases next to it in
    the cycle that show the same state (RiLSA example 3 shows one stage as phases of 2, 2 and
    9 s: a 13 s green, not two 2 s steps)."""
    durations = [float(ph.get("duration", "0")) for ph in phases]
    out = [0.0] * len(phases)
    for run in cyclic_runs([ph.get("state", "") for ph in phases]):
        for k in run:
            out[k] = sum(durations[j] for j in run)
    return out


def actuated_programs(
    net_file: PathLike,
    *,
    workdir: PathLike,
    kind: Literal["actuated", "delay_based"] = "actuated",
    program_id: str | None = None,
    min_green: float = 5.0,
    max_green: float = 50.0,
    max_green_factor: float = 2.0,
    max_gap: float = 3.0,
    detector_gap: float = 2.0,
    passing_time: float | None = None,
    detector_range: float = 100.0,
    min_time_loss: float = 1.0,
    show_detectors: bool = False,
    keep_existing_bounds: bool = True,
    program_files: Sequence[PathLike] = (),
    begin_s: float = 0.0,
    signals: Collection[str] | None = None,
) -> Path:
    """Every signal's active program as a SUMO actuated or delay-based program.

    The program is the one SUMO runs when the simulation starts (:func:`active_programs`: the
    network's, or the scenario's own from ``program_files``, e.g. a city's signal plans). A
    program that already has its own ``minDur < maxDur`` keeps them (``keep_existing_bounds``),
    and one of the same ``kind`` keeps its own parameters; programs of other types (NEMA, ...)
    are copied unchanged.

    Green phases (some ``G``/``g``, no yellow) get ``minDur = min(min_green, duration)`` and
    ``maxDur = max(duration, min(max_green, max_green_factor * duration))``: a 42 s green may
    run from 5 to 50 s, a 6 s protected turn from 5 to 12 s. Yellow, red-yellow and all-red
    phases keep their fixed durations, and so do greens shown for less than 5 s (or ``min_green``
    where that is less), shorter than the standards' minimum green: in a city's signal-group plan they
    are the steps of a change of stage (a group starting 1-3 s early or ending late), and
    stretching each of them to twice its length lengthens every change (Braunschweig's fokr
    plan: 16 of its 46 phases are greens, 13 of them of 1-4 s; 37.3 s/veh with every step
    extendable, 27.4 with the steps kept). A green shows for as long as the phases next to it
    in the cycle show the same state (:func:`_shown_s`): a stage written as phases of 2, 2 and
    9 s is a 13 s green, all three extendable (RiLSA example 3, one hour, seeds 1-5: SUMO's
    actuated copy 191.4 s/veh with the 2 s phases fixed, 165.1 so; on fkk_in, which gridlocks,
    seeds 1-8 measured 400.8 and 507.7, each seed moving by up to 190 s/veh either way). SUMO
    places the detectors itself.

    Parameters
    ----------
    net_file : str or os.PathLike
        The SUMO network.
    workdir : str or os.PathLike
        Folder for the result.
    kind : {"actuated", "delay_based"}, default "actuated"
        ``actuated``: a green is extended while vehicles pass the detector within ``max_gap``.
        ``delay_based``: a green is extended while approaching vehicles accumulate time loss.
    program_id : str, optional
        ``programID`` of the written programs; default ``"gw_" + kind``.
    min_green : float, default 5
        Minimum green (s); shorter fixed greens keep their length as minimum.
    max_green : float, default 50
        Upper bound of the maximum green (s).
    max_green_factor : float, default 2
        The maximum green is at most this multiple of the fixed green.
    max_gap : float, default 3
        ``actuated``: largest time gap between vehicles (s) that extends the green.
    detector_gap : float, default 2
        ``actuated``: detector distance from the stop line in seconds of travel at the limit.
    passing_time : float, optional
        ``actuated``: passing time (s) from detector to stop line; SUMO's default when omitted.
    detector_range : float, default 100
        ``delay_based``: length (m) of the area detectors upstream of the stop line.
    min_time_loss : float, default 1
        ``delay_based``: time loss (s) a vehicle must have to count as waiting.
    show_detectors : bool, default False
        Show SUMO's generated detectors in the GUI.
    keep_existing_bounds : bool, default True
        Keep ``minDur``/``maxDur`` a program already has (an actuated network).
    program_files : sequence of str or os.PathLike
        The scenario's additional files, in load order (their programs count, see
        :func:`active_programs`).
    begin_s : float, default 0
        Simulation begin (s), when WAUTs choose the start programs.
    signals : collection of str, optional
        Only these traffic lights (default: all).

    Returns
    -------
    pathlib.Path
        ``workdir/<program_id>.add.xml`` with one ``<tlLogic>`` per traffic light.

    Raises
    ------
    ScenarioError
        If the network is missing or an option is out of range.
    NetworkError
        If the network has no traffic light programs.
    """
    net = _require_file(net_file, "network file")
    if kind not in ("actuated", "delay_based"):
        raise ScenarioError(f"kind must be 'actuated' or 'delay_based', got {kind!r}")
    if not 0 < min_green <= max_green:
        raise ScenarioError(f"need 0 < min_green <= max_green, got {min_green}, {max_green}")
    if max_green_factor < 1:
        raise ScenarioError(f"max_green_factor must be >= 1, got {max_green_factor}")
    positive = {"max_gap": max_gap, "detector_gap": detector_gap,
                "detector_range": detector_range}  # fmt: skip
    if passing_time is not None:
        positive["passing_time"] = passing_time
    for name, value in positive.items():
        if not value > 0:
            raise ScenarioError(f"{name} must be positive, got {value}")
    if min_time_loss < 0:
        raise ScenarioError(f"min_time_loss must be >= 0, got {min_time_loss}")
    pid = program_id or f"gw_{kind}"
    params: dict[str, str]
    if kind == "actuated":
        params = {"max-gap": _fmt(max_gap), "detector-gap": _fmt(detector_gap)}
        if passing_time is not None:
            params["passing-time"] = _fmt(passing_time)
    else:
        params = {"detectorRange": _fmt(detector_range), "minTimeloss": _fmt(min_time_loss)}
    params["show-detectors"] = "true" if show_detectors else "false"

    elements: list[ET.Element] = []
    for program in active_programs(net, program_files, begin_s=begin_s).values():
        if signals is not None and program.get("id") not in signals:
            continue
        if program.get("type", "static") not in ("static", "actuated", "delay_based"):
            elements.append(_renamed(program, pid))  # NEMA etc.: its own logic, as it is
            continue
        new = ET.Element("tlLogic", dict(program.attrib))
        new.set("type", kind)
        new.set("programID", pid)
        own = {p.get("key", ""): p.get("value", "") for p in program.findall("param")}
        # parameters of another controller type would only confuse SUMO's parser; a program of
        # this type keeps its own (the city tuned them)
        merged = {**params, **own} if program.get("type") == kind else params
        for key, text in merged.items():
            ET.SubElement(new, "param", {"key": key, "value": text})
        phases = program.findall("phase")
        shown = _shown_s(phases)
        for ph, shown_s in zip(phases, shown, strict=True):
            attrs = dict(ph.attrib)
            duration = float(attrs.get("duration", "0"))
            lo, hi = attrs.get("minDur"), attrs.get("maxDur")
            has_bounds = lo is not None and hi is not None and float(lo) < float(hi)
            green = _is_variable(attrs.get("state", ""))
            if not green or not (keep_existing_bounds and has_bounds):
                if green and shown_s >= min(min_green, _STAGE_GREEN_S):
                    attrs["minDur"] = _fmt(min(min_green, duration))
                    attrs["maxDur"] = _fmt(max(duration, min(max_green, max_green_factor * duration)))
                else:  # a transition, or a green shorter than a minimum green: one step of a
                    # signal-group plan's change of stage (a group starting early or ending
                    # late), not a stage of its own; it keeps its time
                    attrs["minDur"] = attrs["maxDur"] = _fmt(duration)
            ET.SubElement(new, "phase", attrs)
        elements.append(new)
    return write_additional(
        elements, _workdir(workdir) / f"{pid}.add.xml", f"{kind} copies of the active programs"
    )
