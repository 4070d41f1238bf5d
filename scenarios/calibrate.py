"""Calibrate greenwave's model to the user's own network, from SUMO itself.

``greenwave calibrate SCENARIO`` measures, at every signalised approach lane of the scenario's
network, how fast queues discharge in green: SUMO runs the network with its own programs and the
scenario's demand scaled up (``--scale``, so that queues form and greens run saturated), an
instant induction loop at each stop line records every vehicle that crosses it, and SUMO's
signal states give each lane's green intervals. A *saturated green* is one in which the queue
standing at its start discharges without a gap, as the HCM's field method measures saturation
flow (headways until the last queued vehicle crosses; the queue need not last the whole green):
the crossings from the green's start up to the first headway above ``max_headway_s`` (or the
green's end), at least ``min_vehicles`` of them, the first within ``first_s`` of the start. Until
2026-12-04 the queue had to last until the green ended, which left too few greens on most real
networks (fkk_in and its random demand, measured, below the five needed at twice and four times
the demand). Per lane:

- **saturation flow** = 3600 / median headway of the 4th and later vehicles of saturated greens
  (the first three still accelerate), veh/h;
- **start lag** = median over saturated greens of (time from green start to the 4th crossing −
  4 saturation headways), s: the start-up lost time as the HCM defines it (the first vehicles
  react and accelerate; from the 4th on they cross at the saturation headway).

Where the network's own programs hardly change in the run (no signal's state more than
:data:`STILL_CHANGES` times: a game's hand-switched programs, corridor, A10KW, bs3d), SUMO runs
again under its rebuilt fixed-time programs (:func:`~greenwave.controllers.rebuilt_programs.rebuilt_programs`,
with the network's all-red), since saturation flow is the lanes' and the vehicles', not the
programs'; ``calibration.json`` says so (``programs``).

The network's saturation flow is the median headway on its straight-only lanes, in greens with
priority on every link (turning vehicles slow down, and the model applies its own turning factors
to the lane's flow; ``lanes_used = "straight"``). A network without a saturated straight-only lane
(square's and kuehne's single-lane approaches) takes the headways of straight vehicles following
straight vehicles on lanes they share with turns, in greens with priority on the straight links,
each vehicle's movement read from its route (SUMO's ``--vehroute-output``; a turner that waits
for a gap ends the discharge, one ahead still slows those behind it: ``"shared"``, less sure
than a straight-only lane's figure); a network with neither keeps the built-in figure and says
so (``"none"``). The CSV's ``movement_unknown`` counts a shared lane's crossings in saturated
greens whose vehicle's route did not say where it went.
Per lane in the CSV: a shared lane's figure is its straight vehicles', a lane without straight
movements its every vehicle's in greens with priority on every link (permitted turners wait for
gaps, which the model's gap acceptance covers). It goes to ``calibration.json``,
every lane's figures to ``calibration_lanes.csv``, both written atomically. ``greenwave optimise
--calibration FILE`` and the ``optimised`` controller's ``calibration`` option plan with that
saturation flow instead of the one measured on greenwave's generated grid
(:data:`greenwave.engine.arrays.SUMO_SATURATION_FLOW_PER_LANE_VPH`). The start lag is reported,
not applied: the model's effective green (start lag and end gain together) was fitted by
regression over two cycle lengths (``benchmarks/calibrate.py``), which one program cannot give.
"""

from __future__ import annotations

import json
import math
import statistics
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from greenwave._sumo import run_sumo_command
from greenwave.controllers.detectors import lane_lengths
from greenwave.controllers.rebuilt_programs import rebuilt_programs
from greenwave.engine.arrays import SUMO_SATURATION_FLOW_PER_LANE_VPH
from greenwave.engine.calibration import Calibration
from greenwave.engine.results import write_table_atomic, write_text_atomic
from greenwave.engine.session import SessionConfig
from greenwave.errors import ScenarioError, SimulationError
from greenwave.networks import load_network
from greenwave.networks.signal_states import PRIORITY_GREEN
from greenwave.scenarios.runner import prepare
from greenwave.scenarios.sumocfg import localise_additional

__all__ = ["calibrate_scenario", "saturated_greens"]

LANE_COLUMNS = ["signal", "lane", "kind", "greens_seen", "greens_saturated", "saturation_flow_vph",
                "start_lag_s", "movement_unknown"]
#: The fewest crossings a saturated green's discharge has (the 4th and later give the headways).
MIN_VEHICLES = 6
#: A run in which no signal's state changed more than this often shows programs that do not
#: cycle (a game's hand-switched ones: corridor, A10KW, bs3d); calibrate measures under SUMO's
#: rebuilt fixed-time programs instead.
STILL_CHANGES = 3


STRAIGHT = "s"


@dataclass(frozen=True)
class _Lane:
    """A signalised approach lane: its link indices, its directions (``kind``, e.g. ``"ls"``),
    the indices of its straight links, and the direction to each edge it leads to."""

    links: list[int]
    kind: str
    straight_links: list[int]
    direction_to: dict[str, str]

    @property
    def shared(self) -> bool:
        """Straight movements share the lane with turns: measured on its straight vehicles."""
        return bool(self.straight_links) and self.kind != STRAIGHT


def saturated_greens(
    crossings: Sequence[float],
    greens: Sequence[tuple[float, float]],
    *,
    min_vehicles: int = MIN_VEHICLES,
    first_s: float = 4.0,
    max_headway_s: float = 3.5,
) -> list[list[float]]:
    """The queue discharge of each saturated green (see the module docstring): the green's
    start time, then the crossing times up to the first headway above ``max_headway_s``;
    ``crossings`` sorted, ``greens`` as (start, end)."""
    out = []
    j = 0
    n = len(crossings)
    for g0, g1 in greens:
        while j < n and crossings[j] < g0:
            j += 1
        times: list[float] = []
        discharging = True  # until the first gap: later crossings are arrivals, not the queue
        while j < n and crossings[j] < g1 + 1.0:  # a vehicle on the line at the green's end counts
            discharging = discharging and (not times or crossings[j] - times[-1] <= max_headway_s)
            if discharging:
                times.append(crossings[j])
            j += 1
        if len(times) >= min_vehicles and times[0] - g0 <= first_s:
            out.append([g0, *times])
    return out


def _most_changes(states: dict[str, list[tuple[float, str]]]) -> int | None:
    """The most times any signal's state changed in a run (None without signals)."""
    changes = [sum(a != b for (_, a), (_, b) in zip(st, st[1:], strict=False)) for st in states.values()]
    return max(changes) if changes else None


def _why_too_few(table: pd.DataFrame, lanes: dict[tuple[str, str], _Lane],
                 states: dict[str, list[tuple[float, str]]], span_s: float, programs: str) -> str:
    """Why a calibration run gave too few saturated greens, from the signal states and what it
    saw per lane; ``programs``: what SUMO ran (``own``, or SUMO's rebuilt programs because the
    own hardly change)."""
    most = _most_changes(states)
    if most is not None and most <= STILL_CHANGES:
        return (f"the programs hardly change: no signal's state changed more than {most} time(s) "
                f"in {span_s:g} s (greens longer than the run, as a game's hand-switched programs have), "
                + ("and SUMO rebuilt no program for them" if programs == "own" else
                   "not even under SUMO's rebuilt fixed-time programs") + "; calibrate under programs that cycle")
    where = ("" if programs == "own" else "under SUMO's rebuilt fixed-time programs (the network's own hardly "
             "change), ")
    if not (table.greens_seen > 0).any():
        return (where + f"none of the {len(lanes)} signalised approach lanes ever shows priority green 'G' on all "
                "of its straight links (on all of its links, where it has none); calibrate measures the discharge of "
                "movements with priority")
    seen = table[table.greens_seen > 0]
    return (where + f"only {int(table.greens_saturated.sum())} of the {int(seen.greens_seen.sum())} greens of the "
            f"{len(seen)} lane(s) with priority on their measured links discharged a queue of {MIN_VEHICLES} or more "
            "vehicles without a gap (raise --scale or --duration)")


def _movements(spec: _Lane, lane: str, crossed: Sequence[tuple[float, str]],
               routes: dict[str, list[str]]) -> dict[float, str | None]:
    """Per crossing time of ``lane`` the direction the vehicle took from it: the edge after the
    lane's edge in its route (internal edges skipped), at the visit of that crossing (a route may
    pass an edge twice); None where the vehicle's route is unknown or does not lead on."""
    edge = lane.rsplit("_", 1)[0]
    visits: dict[str, int] = defaultdict(int)
    out: dict[float, str | None] = {}
    for t, veh in crossed:
        route = [e for e in routes.get(veh, []) if not e.startswith(":")]
        at = [k for k, e in enumerate(route) if e == edge]
        k = visits[veh]
        visits[veh] += 1
        out[t] = spec.direction_to.get(route[at[k] + 1]) if k < len(at) and at[k] + 1 < len(route) else None
    return out


def _lane_greens(states: dict[str, list[tuple[float, str]]], links: list[int], sid: str,
                 end_s: float) -> list[tuple[float, float]]:
    """Intervals in which all of ``links`` show priority green ``G``."""
    out, start = [], None
    for t, state in states.get(sid, []):
        green = all(k < len(state) and state[k] == PRIORITY_GREEN for k in links)
        if green and start is None:
            start = t
        elif not green and start is not None:
            out.append((start, t))
            start = None
    if start is not None:
        out.append((start, end_s))
    return out


def calibrate_scenario(
    scenario: Any,
    output_dir: Path,
    *,
    scale: float = 2.0,
    duration_s: float | None = None,
    seed: int | None = None,
) -> tuple[Calibration, pd.DataFrame]:
    """Measure the network's saturation flow and start lag in SUMO (see the module docstring).

    Raises :class:`ScenarioError` for a network without signals, a bad ``scale`` or too few
    saturated greens to calibrate on (the message says why: programs that hardly change, no lane
    with priority on its measured links, or queues too short, where a larger ``scale`` helps), and
    :class:`SimulationError` with SUMO's own words when SUMO fails.
    """
    if not (math.isfinite(scale) and 1.0 <= scale <= 10.0):
        raise ScenarioError(f"calibrate: --scale must be in [1, 10] (demand multiplier), got {scale!r}")
    out = Path(output_dir)
    run = seed if seed is not None else scenario.seeds[0]
    prepared = prepare(scenario, out / "work", seeds=[run])
    network = load_network(prepared.net_file, program_files=prepared.program_files, begin_s=scenario.begin_s)
    lanes: dict[tuple[str, str], _Lane] = {}
    for sid, sig in network.signals.items():
        per: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        for link in sig.movements:
            for mv in (link, *link.merged):
                if mv.is_used and not mv.is_pedestrian and network.has_edge(mv.from_edge):
                    per[mv.from_lane].append((link.link_index, mv.direction, mv.to_edge))
        for lane, moves in per.items():
            lanes[(sid, lane)] = _Lane(sorted({k for k, _, _ in moves}), "".join(sorted({d for _, d, _ in moves})),
                                       sorted({k for k, d, _ in moves if d == STRAIGHT}),
                                       {to: d for _, d, to in moves})
    if not lanes:
        raise ScenarioError(f"calibrate: {scenario.name}: the network {prepared.net_file} has no signalised "
                            "approach lanes; nothing to calibrate")
    length = lane_lengths(prepared.net_file, {lane for _, lane in lanes})
    end = scenario.begin_s + (duration_s if duration_s is not None else min(scenario.duration_s, 3600.0))
    work = out / "work" / "calibration"
    work.mkdir(parents=True, exist_ok=True)
    loops_out, tls_out = work / "stopline_loops.xml", work / "tls_states.xml"
    lines = []
    for lane in sorted({la for _, la in lanes}):
        if lane in length:
            pos = max(0.1, length[lane] - 0.5)
            lines.append(f'  <instantInductionLoop id="gwcal_{lane}" lane="{lane}" pos="{pos:.2f}" '
                         f'file="{loops_out}"/>')
    lines += [f'  <timedEvent type="SaveTLSStates" source="{sid}" dest="{tls_out}"/>'
              for sid in sorted(network.signals)]
    add = work / "calibration.add.xml"
    write_text_atomic("<additional>\n" + "\n".join(lines) + "\n</additional>\n", add)
    cfg = scenario.demand.sumo_config
    if cfg is not None and cfg.outputs:
        (work / "outputs").mkdir(parents=True, exist_ok=True)
    scenario_files = localise_additional(prepared.additional_files, work / "scenario_files")

    cfg_args = list(() if cfg is None else cfg.sumo_args(work / "outputs"))
    routes_out = work / "vehroutes.xml"
    pairs = list(zip(cfg_args[::2], cfg_args[1::2], strict=True))
    for name, value in pairs:  # the configuration's own output: read it (SUMO takes one)
        if name in ("--vehroute-output", "--vehroutes"):
            routes_out = Path(value)
    # its options of that output (internal edges, no unfinished vehicles) would hide movements
    cfg_args = [x for name, value in pairs if not name.startswith("--vehroute") for x in (name, value)]
    cfg_args += ["--vehroute-output", str(routes_out), "--vehroute-output.write-unfinished", "true"]

    def measure(programs: Path | None) -> tuple[dict[str, list[tuple[float, str]]], dict[str, list[tuple[float, str]]],
                                               dict[str, list[str]]]:
        """Run SUMO (with ``programs`` loaded last, if given) and read each lane's crossings
        (time, vehicle), each signal's states and each vehicle's route."""
        config = SessionConfig(
            net_file=prepared.net_file, route_files=prepared.routes_by_seed[run],
            additional_files=(*scenario_files, add, *(() if programs is None else (programs,))),
            begin_s=scenario.begin_s, end_s=end, step_length_s=scenario.step_length_s, seed=run,
            time_to_teleport_s=scenario.time_to_teleport_s,
            extra_args=(*cfg_args, "--scale", f"{scale:g}", "--no-warnings", "true"),
            log_file=work / "sumo.log",
        )
        run_sumo_command(config.command(), what=f"calibration run of {scenario.name}", cwd=work, timeout=None)
        crossings: dict[str, list[tuple[float, str]]] = defaultdict(list)
        states: dict[str, list[tuple[float, str]]] = defaultdict(list)
        routes: dict[str, list[str]] = {}
        try:
            for _, el in ET.iterparse(str(loops_out)):
                if el.tag == "instantOut" and el.get("state") == "leave":
                    crossings[el.get("id", "")[len("gwcal_"):]].append((float(el.get("time", "0")),
                                                                        el.get("vehID", "")))
                el.clear()
            for _, el in ET.iterparse(str(tls_out)):
                if el.tag == "tlsState":
                    states[el.get("id", "")].append((float(el.get("time", "0")), el.get("state", "")))
                el.clear()
            for _, el in ET.iterparse(str(routes_out)):
                if el.tag == "vehicle":  # its last route: the one it drove (a rerouted vehicle's replaced first)
                    last = [r for r in el.iter("route")]
                    if last:
                        routes[el.get("id", "")] = last[-1].get("edges", "").split()
                    el.clear()
        except (ET.ParseError, OSError) as exc:
            raise SimulationError(f"calibration run of {scenario.name}: SUMO's outputs cannot be read: {exc}") from exc
        return crossings, states, routes

    crossings, states, routes = measure(None)
    programs = "own"
    most = _most_changes(states)
    if most is not None and most <= STILL_CHANGES:  # saturation flow is the lanes', not the programs'
        rebuilt = rebuilt_programs(prepared.net_file, workdir=work / "rebuilt", tls_type="static",
                                   program_files=prepared.program_files, begin_s=scenario.begin_s, all_red="own")
        if rebuilt.rebuilt:
            crossings, states, routes = measure(rebuilt.path)
            programs = "sumo-rebuilt-static"
    rows = []
    straight_heads: list[float] = []
    shared_heads: list[float] = []  # straight vehicles on lanes they share with turns
    all_lags: list[float] = []
    for (sid, lane), spec in sorted(lanes.items()):
        greens = _lane_greens(states, spec.straight_links if spec.shared else spec.links, sid, end)
        crossed = sorted(crossings.get(lane, []))
        sat = saturated_greens([t for t, _ in crossed], greens)
        unknown = 0
        if spec.shared:  # the headways of straight vehicles following straight ones
            movement = _movements(spec, lane, crossed, routes)
            in_sat = {t for g in sat for t in g[1:]}
            unknown = sum(1 for t, m in movement.items() if m is None and t in in_sat)
            per_green = [[b - a for a, b in zip(g[4:], g[5:], strict=False)
                          if movement.get(a) == STRAIGHT and movement.get(b) == STRAIGHT] for g in sat]
        else:
            per_green = [[b - a for a, b in zip(g[4:], g[5:], strict=False)] for g in sat]
        used_greens = [g for g, hs in zip(sat, per_green, strict=True) if hs]  # those that gave headways
        heads = [h for hs in per_green for h in hs]
        h = statistics.median(heads) if heads else float("nan")
        lags = [g[4] - g[0] - 4.0 * h for g in used_greens]
        lag = max(0.0, statistics.median(lags)) if lags else float("nan")
        rows.append({"signal": sid, "lane": lane, "kind": spec.kind, "greens_seen": len(greens),
                     "greens_saturated": len(used_greens),
                     "saturation_flow_vph": 3600.0 / h if heads else float("nan"), "start_lag_s": lag,
                     "movement_unknown": unknown})
        all_lags.extend(lags)
        if spec.kind == STRAIGHT:
            straight_heads.extend(heads)
        elif spec.shared:
            shared_heads.extend(heads)
    table = pd.DataFrame(rows, columns=LANE_COLUMNS)
    measured = table[table.greens_saturated > 0]
    n_greens = int(measured.greens_saturated.sum())
    if n_greens < 5:
        raise ScenarioError(f"calibrate: {scenario.name}: only {n_greens} saturated green(s) in "
                            f"{end - scenario.begin_s:g} s at --scale {scale:g}; too few to calibrate on: "
                            + _why_too_few(table, lanes, states, end - scenario.begin_s, programs))
    # straight-only lanes measure the base figure; a turner ahead slows the straight vehicles of
    # a shared lane (one of bs3d's: 1304 veh/h against 1841 for all its vehicles), so those
    # count only where no straight-only lane ran saturated (square's and kuehne's single-lane
    # approaches)
    used, lanes_used = ((straight_heads, "straight") if straight_heads else (shared_heads, "shared") if shared_heads
                        else ([], "none"))
    cal = Calibration(
        saturation_flow_per_lane_vph=(round(3600.0 / statistics.median(used), 1) if used
                                      else SUMO_SATURATION_FLOW_PER_LANE_VPH),
        start_lag_s=round(max(0.0, statistics.median(all_lags)), 2),
        lanes_measured=len(measured), greens_measured=n_greens, source=str(prepared.net_file),
        lanes_used=lanes_used, programs=programs,
    )
    write_table_atomic(table, out / "calibration_lanes.csv")
    write_text_atomic(json.dumps(cal.to_dict(), indent=1) + "\n", out / "calibration.json")
    return cal, table
