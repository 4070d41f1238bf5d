"""Signal programs as SUMO's XML: read them from networks and additional files, and find the
one each traffic light runs when the simulation starts (:func:`active_programs`).

Programs stay ``xml.etree`` elements here (every attribute, ``<param>`` and ``<condition>`` kept),
for the tools that write programs back for SUMO (:mod:`greenwave.controllers.sumo_programs`);
:mod:`greenwave.networks` reads the same files into its own model.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from greenwave.errors import NetworkError, ScenarioError
from greenwave.networks.program_files import iter_top_level as iter_top_level
from greenwave.networks.program_files import read_program_files

__all__ = ["active_programs", "copy_element", "iter_top_level", "read_programs", "write_additional"]

PathLike = str | os.PathLike[str]


def read_programs(path: PathLike) -> dict[str, ET.Element]:
    """Return the program SUMO would run for each traffic light defined in a file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.net.xml`` (optionally gzipped) or an additional file with ``<tlLogic>`` elements.

    Returns
    -------
    dict of str to xml.etree.ElementTree.Element
        Traffic light id to a detached copy of its ``<tlLogic>`` element. When a file defines
        several programs for one signal, the last one wins (SUMO activates the last loaded).
        Elements without phases (offset-only overrides) are skipped.

    Raises
    ------
    NetworkError
        If the file is missing or not readable XML.
    """
    p = Path(path)
    if not p.is_file():
        raise NetworkError(f"signal program file not found: {p}")
    programs: dict[str, ET.Element] = {}
    try:
        for el in iter_top_level(p, "signal program file"):
            if el.tag != "tlLogic" or el.find("phase") is None:
                continue
            programs[el.get("id", "")] = copy_element(el)
    except ScenarioError as exc:
        raise NetworkError(str(exc)) from exc
    return programs


def copy_element(el: ET.Element) -> ET.Element:
    new = ET.Element(el.tag, dict(el.attrib))
    for child in el:
        new.append(copy_element(child))
    return new


def active_programs(
    net_file: PathLike, program_files: Sequence[PathLike] = (), *, begin_s: float = 0.0
) -> dict[str, ET.Element]:
    """The program each traffic light runs when the simulation starts, as SUMO decides it.

    SUMO loads the network's programs, then those of the additional files in the order given;
    each becomes its light's active program, unless a WAUT starts the light on another one (see
    :mod:`greenwave.networks.program_files`). A ``<tlLogic>`` without phases sets the offset of a
    program loaded before it.

    Parameters
    ----------
    net_file : str or os.PathLike
        The SUMO network.
    program_files : sequence of str or os.PathLike
        The scenario's additional files in load order (files without programs add nothing).
    begin_s : float, default 0
        Simulation begin (s): when the WAUTs choose their programs.

    Returns
    -------
    dict of str to xml.etree.ElementTree.Element
        Traffic light id to a detached copy of its active ``<tlLogic>``.

    Raises
    ------
    NetworkError
        A file is not readable, the network has no programs, or a WAUT starts a light on a program
        that is not loaded.
    """
    loaded: dict[str, dict[str, ET.Element]] = {}
    for path in (net_file, *program_files):
        try:
            elements = list(iter_top_level(Path(path), "signal program file"))
        except ScenarioError as exc:
            raise NetworkError(str(exc)) from exc
        for el in elements:
            if el.tag != "tlLogic":
                continue
            tid, pid = el.get("id", ""), el.get("programID", "0")
            own = loaded.setdefault(tid, {})
            if el.find("phase") is None:  # an offset for a program loaded before
                if pid in own and el.get("offset") is not None:
                    own[pid].set("offset", el.get("offset", "0"))
                continue
            own.pop(pid, None)
            own[pid] = copy_element(el)
    if not loaded:
        raise NetworkError(f"network {net_file} has no traffic light programs (<tlLogic>)")
    start = read_program_files(program_files).initial_programs(begin_s) if program_files else {}
    out = {}
    for tid, own in loaded.items():
        first = start.get(tid)
        if first is not None and first not in own:
            raise NetworkError(f"a WAUT starts traffic light {tid!r} on program {first!r}, which is "
                               f"not loaded (loaded: {', '.join(own)})")
        out[tid] = own[first] if first is not None else next(reversed(own.values()))
    return out


def write_additional(elements: Sequence[ET.Element], out: Path, comment: str) -> Path:
    """Write ``<additional>`` holding ``elements`` to ``out`` atomically; return ``out``."""
    root = ET.Element("additional")
    root.append(ET.Comment(f" {comment} "))
    root.extend(elements)
    ET.indent(root, space="    ")
    tmp = out.with_name(out.name + ".tmp")
    ET.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=True)
    tmp.replace(out)
    return out
