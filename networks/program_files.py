"""Signal programs a scenario loads besides its network: ``<tlLogic>`` and ``<WAUT>`` elements of
SUMO additional files, and which program each signal runs when the simulation starts.

SUMO reads the network's programs first, then the additional files in the order given; every
program it loads for a light becomes that light's active one, so a light runs the **last loaded**
program, unless a WAUT (``<WAUT startProg=...>`` with ``<wautSwitch>`` times and
``<wautJunction>`` members) says otherwise: when a light joins a WAUT, SUMO switches it to the
WAUT's program for the current time (its ``startProg`` before the first switch, the target of the
latest switch after it) and later switches it at every switch time.

Times in s (SUMO also writes them as ``h:m:s`` or ``d:h:m:s``, both understood here).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenwave._xml import open_xml
from greenwave.errors import NetworkError, ScenarioError
from greenwave.networks.model import Phase, Program

__all__ = [
    "LoadedPrograms",
    "Waut",
    "parse_sumo_time",
    "program_files",
    "read_program_files",
    "iter_top_level",
    "tl_logic_program",
    "top_level_elements",
]

#: Tags that make an additional file carry signal programs or their switching.
PROGRAM_TAGS = frozenset({"tlLogic", "WAUT", "wautJunction"})


def parse_sumo_time(text: str, where: str = "") -> float:
    """A SUMO time value in s: seconds (``"54000"``, ``"0.5"``) or ``h:m:s`` / ``d:h:m:s``."""
    raw = text.strip()
    try:
        if ":" not in raw:
            return float(raw)
        sign = -1.0 if raw.startswith("-") else 1.0
        parts = [float(p) for p in raw.lstrip("-").split(":")]
    except ValueError:
        raise NetworkError(f"{where}: {text!r} is not a SUMO time (s, h:m:s or d:h:m:s)") from None
    if len(parts) == 3:
        return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])
    if len(parts) == 4:
        return sign * (parts[0] * 86400 + parts[1] * 3600 + parts[2] * 60 + parts[3])
    raise NetworkError(f"{where}: {text!r} is not a SUMO time (s, h:m:s or d:h:m:s)")


def tl_logic_program(elem: ET.Element, where: str) -> tuple[str, Program]:
    """The signal id and :class:`Program` of a ``<tlLogic>`` element (``where`` names the file in
    errors). A ``<tlLogic>`` without phases gives a program without phases."""
    tid = elem.get("id")
    if not tid:
        raise NetworkError(f"{where}: a <tlLogic> has no id")
    pid = elem.get("programID", "0")
    phases = []
    for ph in elem.iter("phase"):
        state = ph.get("state")
        if state is None:
            raise NetworkError(f"{where}: a <phase> of <tlLogic id={tid!r} programID={pid!r}> has no state")
        try:
            phases.append(
                Phase(
                    duration=float(ph.get("duration", "")),
                    state=state,
                    min_dur=float(ph.get("minDur", "")) if ph.get("minDur") is not None else None,
                    max_dur=float(ph.get("maxDur", "")) if ph.get("maxDur") is not None else None,
                    name=ph.get("name", ""),
                )
            )
        except ValueError:
            raise NetworkError(
                f"{where}: a <phase> of <tlLogic id={tid!r} programID={pid!r}> has a missing or "
                f"non-numeric duration/minDur/maxDur ({dict(ph.attrib)})"
            ) from None
    try:
        offset = float(elem.get("offset", "0"))
    except ValueError:
        offset = 0.0  # SUMO also allows offset="begin"
    return tid, Program(id=pid, type=elem.get("type", "static"), offset=offset, phases=tuple(phases))


@dataclass(frozen=True)
class Waut:
    """A SUMO WAUT: program switches by time of day for a group of signals.

    ``switches`` are (time s, target program) with SUMO's reference time already added (and taken
    modulo ``period_s`` when the WAUT repeats), in file order.
    """

    id: str
    start_program: str
    period_s: float
    switches: tuple[tuple[float, str], ...]
    signals: tuple[str, ...]

    def program_at(self, t: float) -> str:
        """The program a light joining this WAUT at time ``t`` is switched to (SUMO's rule: the
        target of the switch listed before the next one to come; ``start_program`` before it)."""
        program = self.start_program
        first = len(self.switches)
        best = None
        for i, (when, _to) in enumerate(self.switches):
            if when > t and (best is None or when < best):
                best, first = when, i
            if first != 0:
                program = self.switches[first - 1][1]
        return program

    def switches_between(self, begin_s: float, end_s: float) -> list[tuple[float, str]]:
        """Every switch SUMO performs in ``(begin_s, end_s)``, repeating with the period."""
        out = []
        for when, to in self.switches:
            t = when
            while t < end_s:
                if t > begin_s:
                    out.append((t, to))
                if self.period_s <= 0:
                    break
                t += self.period_s
        return sorted(out)


@dataclass(frozen=True)
class LoadedPrograms:
    """Programs and WAUTs of additional files, in load order."""

    programs: tuple[tuple[Path, str, Program], ...]
    """(file, signal id, program) for every ``<tlLogic>`` with phases, in load order."""
    offsets: tuple[tuple[Path, str, str, float], ...]
    """(file, signal id, program id, offset) of phase-less ``<tlLogic>`` elements."""
    wauts: tuple[Waut, ...]

    def initial_programs(self, begin_s: float) -> dict[str, str]:
        """Signal id → the program its WAUT switches it to when the simulation starts."""
        out: dict[str, str] = {}
        for w in self.wauts:
            for sid in w.signals:
                out[sid] = w.program_at(begin_s)
        return out


def top_level_elements(path: Path) -> Iterable[ET.Element]:
    """The root's children, or the root itself when it is a program (SUMO reads a file whose
    root is a ``<tlLogic>``, as Braunschweig's ``signalPlan.add.xml``)."""
    try:
        with open_xml(path) as fh:
            depth = 0
            root: ET.Element | None = None
            for event, el in ET.iterparse(fh, events=("start", "end")):
                if event == "start":
                    depth += 1
                    if root is None:
                        root = el
                    continue
                depth -= 1
                if depth == 1:
                    yield el
                    assert root is not None
                    if root.tag not in PROGRAM_TAGS:  # a program root keeps its attributes
                        root.clear()
                elif depth == 0 and el.tag in PROGRAM_TAGS:
                    yield el
    except (ET.ParseError, OSError, EOFError) as exc:
        raise NetworkError(f"{path}: not readable XML: {exc}") from exc


def program_files(files: Sequence[str | os.PathLike[str]]) -> tuple[Path, ...]:
    """The files among ``files`` (additional files, in load order) that define signal programs
    or WAUTs."""
    out = []
    for f in files:
        if any(el.tag in PROGRAM_TAGS for el in top_level_elements(Path(f))):
            out.append(Path(f))
    return tuple(out)


def read_program_files(files: Sequence[str | os.PathLike[str]]) -> LoadedPrograms:
    """Every ``<tlLogic>`` and ``<WAUT>`` of additional files, in SUMO's load order."""
    programs: list[tuple[Path, str, Program]] = []
    offsets: list[tuple[Path, str, str, float]] = []
    wauts: dict[str, dict[str, Any]] = {}
    members: list[tuple[Path, str, str]] = []
    for f in files:
        path = Path(f)
        for el in top_level_elements(path):
            if el.tag == "tlLogic":
                tid, program = tl_logic_program(el, str(path))
                if program.phases:
                    programs.append((path, tid, program))
                else:
                    offsets.append((path, tid, program.id, program.offset))
            elif el.tag == "WAUT":
                wid = el.get("id", "")
                where = f"{path}: <WAUT id={wid!r}>"
                ref = parse_sumo_time(el.get("refTime", "0"), where)
                period = parse_sumo_time(el.get("period", "0"), where)
                switches = []
                for sw in el.iter("wautSwitch"):
                    when = ref + parse_sumo_time(sw.get("time", "0"), where)
                    if period > 0:
                        when %= period
                    switches.append((when, sw.get("to", "")))
                wauts[wid] = {"start": el.get("startProg", ""), "period": period,
                              "switches": tuple(switches), "where": where}
            elif el.tag == "wautJunction":
                members.append((path, el.get("wautID", ""), el.get("junctionID", "")))
    by_waut: dict[str, list[str]] = {}
    for path, wid, sid in members:
        if wid not in wauts:
            raise NetworkError(f"{path}: <wautJunction wautID={wid!r}> names no WAUT loaded before it")
        by_waut.setdefault(wid, []).append(sid)
    return LoadedPrograms(
        programs=tuple(programs),
        offsets=tuple(offsets),
        wauts=tuple(
            Waut(id=wid, start_program=w["start"], period_s=w["period"], switches=w["switches"],
                 signals=tuple(by_waut.get(wid, ())))
            for wid, w in wauts.items()
        ),
    )


def iter_top_level(path: Path, what: str) -> Iterator[ET.Element]:
    """:func:`top_level_elements` of a scenario's input file; unreadable XML is a
    :class:`~greenwave.errors.ScenarioError` naming ``what`` (``"route file"``, ...) and the file."""
    try:
        yield from top_level_elements(Path(path))
    except NetworkError as exc:
        raise ScenarioError(f"{what} {exc}") from exc
