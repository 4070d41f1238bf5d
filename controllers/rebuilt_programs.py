"""SUMO's own programs for every signal, rebuilt by ``netconvert --tls.rebuild``.

netconvert designs a program for every traffic light from its movements (its default phasing:
opposing approaches together, a protected left-turn stage where left turners would otherwise
block, yellow from the approach speed) with the timing options' defaults (``--tls.cycle.time``,
``--tls.green.time``, ``--tls.left-green.time``, ...), of type ``static``, ``actuated`` or
``delay_based`` (``--tls.default-type``). These are the programs SUMO gives a network for free.

Rebuilding writes a whole new network, and netconvert recomputes more than the programs: lane
lengths move by a few metres where junction shapes are recomputed, walking areas are numbered
anew, connections from internal lanes change, and a signal whose link indices were set by hand
(several connections sharing one index) gets one index per connection. So the rebuilt network
is not run. Only its programs are, on the scenario's own network: each connection of the own
network is found in the rebuilt one (by from/to edge and lane; a pedestrian crossing by its
crossing), and the rebuilt program's states are carried over to the own link indices. When all
connections of one own link index show the same state in every rebuilt phase the carried-over
program is exactly SUMO's (where some show ``G`` and others ``g``, the index shows ``g``: it
yields); when they do not (the hand-made indices of Ingolstadt's ``gneJ21``
group a crossing with car movements that SUMO's program runs in different stages) the program
cannot be expressed on the own network, and that signal keeps its own program, listed with the
reason in ``excluded_signals.txt``.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from greenwave._sumo import run_sumo_command
from greenwave.controllers.sumo_programs import read_programs
from greenwave.controllers.switching import is_all_red, is_stage_state
from greenwave.controllers.tls_xml import active_programs
from greenwave.errors import NetworkError, ScenarioError
from greenwave.networks.rebuilt_stages import carried_over, signal_links

__all__ = ["ALL_RED", "REBUILT_TYPES", "AllRed", "RebuiltPrograms", "RebuiltType", "own_all_red_s", "rebuilt_programs"]

PathLike = str | os.PathLike[str]
RebuiltType = Literal["static", "actuated", "delay_based"]
REBUILT_TYPES: tuple[str, ...] = ("static", "actuated", "delay_based")
#: The all-red of the rebuilt programs: netconvert's (none) or the programs SUMO runs.
AllRed = Literal["netconvert", "own"]
ALL_RED: tuple[str, ...] = ("netconvert", "own")

@dataclass(frozen=True)
class RebuiltPrograms:
    """What :func:`rebuilt_programs` wrote."""

    path: Path
    """The additional file: one ``<tlLogic>`` per signal that runs SUMO's rebuilt program."""
    rebuilt: tuple[str, ...]
    """Signals running SUMO's rebuilt program."""
    kept: dict[str, str]
    """Signals left on their own program → why."""


def own_all_red_s(programs: dict[str, ET.Element]) -> float:
    """The all-red the network's own programs keep: per signal the shortest all-red between two
    of its stages (0 when one change has none, or the program has one stage only), the longest
    of these over the signals (s)."""
    longest = 0.0
    for program in programs.values():
        phases = [(ph.get("state", ""), float(ph.get("duration", "0"))) for ph in program.iter("phase")]
        stages = [k for k, (state, _d) in enumerate(phases) if is_stage_state(state)]
        if len(stages) < 2:  # one stage: its red serves what the light does not control, no clearance
            continue
        reds = []
        for a, k in enumerate(stages):
            nxt, j, red = stages[(a + 1) % len(stages)], (k + 1) % len(phases), 0.0
            if j == nxt:
                continue
            while j != nxt:
                red += phases[j][1] if is_all_red(phases[j][0]) else 0.0
                j = (j + 1) % len(phases)
            reds.append(red)
        longest = max(longest, min(reds, default=0.0))
    return longest


def rebuilt_programs(
    net_file: PathLike,
    *,
    workdir: PathLike,
    tls_type: RebuiltType = "actuated",
    program_id: str | None = None,
    program_files: Sequence[PathLike] = (),
    begin_s: float = 0.0,
    all_red: AllRed = "netconvert",
) -> RebuiltPrograms:
    """Write SUMO's rebuilt programs of every signal as an additional file for ``net_file``.

    Parameters
    ----------
    net_file : str or os.PathLike
        The SUMO network the run uses (plain or gzipped).
    workdir : str or os.PathLike
        Folder for the rebuilt network and the result (created if missing).
    tls_type : {"static", "actuated", "delay_based"}, default "actuated"
        netconvert's ``--tls.default-type``; every other timing option keeps netconvert's default.
    program_id : str, optional
        ``programID`` of the written programs; default ``"gw_rebuilt_" + tls_type``.
    program_files, begin_s
        The scenario's additional files with programs and the run's begin: the programs SUMO
        runs (a city's own programs, RiLSA example 1), whose all-red ``all_red="own"`` keeps.
    all_red : {"netconvert", "own"}, default "netconvert"
        ``netconvert``: netconvert's own design, no all-red (its default ``--tls.allred.time``
        0): the baseline as SUMO gives it, the strongest in SUMO, whose junction model needs no
        clearance time. ``own``: each signal gets the shortest all-red its program (the one SUMO
        runs) keeps between two stages (``--tls.allred.time``, corridor: 3 s, RiLSA example 1:
        7 s, 13 of Monaco's 14 none), so the program keeps the network's clearances, as a
        program greenwave recommends must.

    Returns
    -------
    RebuiltPrograms
        The file (``workdir/<program_id>.add.xml``), the signals it covers and those that keep
        their own program, with why (also written to ``workdir/excluded_signals.txt``).

    Raises
    ------
    ScenarioError
        If ``tls_type`` is not one of :data:`REBUILT_TYPES` or the network is missing.
    NetworkError
        If the network has no signals or cannot be read.
    SimulationError
        If netconvert fails.
    """
    if tls_type not in REBUILT_TYPES:
        raise ScenarioError(f"tls_type must be one of {', '.join(REBUILT_TYPES)}, got {tls_type!r}")
    if all_red not in ALL_RED:
        raise ScenarioError(f"all_red must be one of {', '.join(ALL_RED)}, got {all_red!r}")
    net = Path(net_file)
    if not net.is_file():
        raise ScenarioError(f"network file not found: {net}")
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    pid = program_id or f"gw_rebuilt_{tls_type}"
    rebuilt_net = wd / f"{pid}.net.xml"
    own_programs = read_programs(net)
    if not own_programs:
        raise NetworkError(f"network {net} has no traffic light programs (<tlLogic>)")
    if program_files:
        own_programs = {**own_programs, **active_programs(net, program_files, begin_s=begin_s)}
    # SUMO's design has no all-red by default; "own" keeps each signal's all-red of the program
    # SUMO runs for it (netconvert --tls.allred.time, one rebuild per distinct all-red: one
    # signal's 1 s on Monaco must not impose 1 s on the other 13), as greenwave's controllers must
    red_of = {sid: math.ceil(own_all_red_s({sid: prog}) - 1e-9) if all_red == "own" else 0
              for sid, prog in own_programs.items()}
    new_by_red: dict[int, dict[str, ET.Element]] = {}
    try:
        for red_s in sorted(set(red_of.values())):
            extra = ["--tls.allred.time", str(red_s)] if red_s > 0 else []
            run_sumo_command(
                ["netconvert", "--sumo-net-file", net, "--tls.rebuild", "--tls.default-type", tls_type, *extra,
                 "--output-file", rebuilt_net, "--no-warnings"],
                what=f"rebuilding the signal programs of {net.name} (netconvert --tls.rebuild, all-red {red_s} s)",
                cwd=wd,
            )  # fmt: skip
            new_by_red[red_s] = read_programs(rebuilt_net)
        # the all-red does not change link indices: the last rebuild numbers them as every one does
        own_links, new_links = signal_links(net), signal_links(rebuilt_net)
    finally:
        rebuilt_net.unlink(missing_ok=True)  # several MB on a city; the programs are all that is used
    new_programs = {sid: new_by_red[red_of[sid]][sid] for sid in own_programs if sid in new_by_red[red_of[sid]]}
    elements: list[ET.Element] = []
    kept: dict[str, str] = {}
    for tls_id in sorted(own_programs):
        new = new_programs.get(tls_id)
        if new is None:
            kept[tls_id] = "netconvert wrote no program for it"
            continue
        own = own_links.get(tls_id, {})
        own_states = [ph.get("state", "") for ph in own_programs[tls_id].iter("phase")]
        n_own = max([max(own.values(), default=-1) + 1, *map(len, own_states)])
        states, why = carried_over(own, new_links.get(tls_id, {}),
                                    [ph.get("state", "") for ph in new.iter("phase")], n_own)
        if states is None:
            kept[tls_id] = why
            continue
        el = ET.Element("tlLogic", dict(new.attrib))
        el.set("programID", pid)
        for child in new:
            attrs = dict(child.attrib)
            if child.tag == "phase":
                attrs["state"] = states.pop(0)
            ET.SubElement(el, child.tag, attrs)
        elements.append(el)
    out = wd / f"{pid}.add.xml"
    root = ET.Element("additional")
    root.append(ET.Comment(f" SUMO's rebuilt {tls_type} programs (netconvert, tls.rebuild), "
                           f"{len(elements)} of {len(own_programs)} signals "))
    root.extend(elements)
    ET.indent(root, space="    ")
    tmp = out.with_name(out.name + ".tmp")
    ET.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=True)
    tmp.replace(out)
    _write_kept(kept, wd / "excluded_signals.txt")
    return RebuiltPrograms(path=out, rebuilt=tuple(e.get("id", "") for e in elements), kept=kept)


def _write_kept(kept: dict[str, str], path: Path) -> None:
    lines = ["signals left on their own program: SUMO's rebuilt program does not fit their link indices"]
    lines += [f"{sid}: {why}" for sid, why in sorted(kept.items())]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
