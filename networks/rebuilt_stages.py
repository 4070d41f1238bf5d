"""SUMO's own program of every signal (``netconvert --tls.rebuild``), re-indexed to a network's
link indices: the ``rebuilt`` stage design's source (:mod:`greenwave.networks.stage_design`), and
the re-indexing itself (:func:`signal_links`, :func:`carried_over`), which the ``sumo-rebuilt-*``
baselines (:mod:`greenwave.controllers.rebuilt_programs`) use too.

Rebuilding renumbers link indices (a signal whose indices were set by hand, several connections
sharing one, gets one per connection), so a connection of the own network is found in the rebuilt
one by from/to edge and lane (a pedestrian crossing by its crossing), and the rebuilt states are
carried over to the own indices. Where the connections of one own index show different states in
a rebuilt phase (Ingolstadt's ``gneJ21`` groups a crossing with car movements SUMO's program runs
in different stages), the program cannot be expressed on the own network.
"""

from __future__ import annotations

import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from greenwave._sumo import sumo_binary, tool_env
from greenwave._xml import open_xml
from greenwave.errors import NetworkError
from greenwave.networks.model import Program
from greenwave.networks.signal_states import GREEN, PERMISSIVE_GREEN, RED_LETTER
from greenwave.networks.sumo_net import load_network

__all__ = ["ConnectionKey", "carried_over", "rebuilt_left_out", "rebuilt_programs", "signal_links"]

#: A connection's identity across a rebuild: (from edge, to edge, from lane, to lane) for a
#: vehicle connection, ("crossing", crossing id) for a pedestrian crossing.
ConnectionKey = tuple[str, ...]


def signal_links(net_file: Path) -> dict[str, dict[ConnectionKey, int]]:
    """Signal id → connection key → link index, for every signalised connection of a network."""
    crossing: set[str] = set()
    links: dict[str, dict[ConnectionKey, int]] = {}
    pending: list[tuple[str, str, str, str, str, int]] = []
    try:
        with open_xml(net_file) as fh:
            for _event, el in ET.iterparse(fh, events=("end",)):
                if el.tag == "edge" and el.get("function") == "crossing":
                    crossing.add(el.get("id", ""))
                elif el.tag == "connection" and el.get("tl") is not None:
                    try:
                        index = int(el.get("linkIndex", ""))
                    except ValueError:
                        raise NetworkError(
                            f"{net_file}: <connection from={el.get('from')!r} to={el.get('to')!r}> "
                            f"has linkIndex={el.get('linkIndex')!r}, expected an integer"
                        ) from None
                    pending.append((el.get("tl", ""), el.get("from", ""), el.get("to", ""),
                                    el.get("fromLane", ""), el.get("toLane", ""), index))
                if el.tag in ("edge", "connection", "junction"):
                    el.clear()
    except (ET.ParseError, OSError, EOFError) as exc:
        raise NetworkError(f"{net_file}: not a readable SUMO network: {exc}") from exc
    for tl, frm, to, from_lane, to_lane, index in pending:
        if frm.startswith(":"):
            if to not in crossing:
                continue  # the second half of an indirect turn: its first half carries the index
            key: ConnectionKey = ("crossing", to)
        else:
            key = (frm, to, from_lane, to_lane)
        links.setdefault(tl, {})[key] = index
    return links


def carried_over(
    own: dict[ConnectionKey, int], rebuilt: dict[ConnectionKey, int], states: list[str], n_own: int
) -> tuple[list[str] | None, str]:
    """The rebuilt program's states on the own link indices, or None and why not."""
    sources: dict[int, set[int]] = {}
    for key, index in own.items():
        if key not in rebuilt:
            return None, f"connection {'/'.join(key)} has no counterpart in the rebuilt network"
        sources.setdefault(index, set()).add(rebuilt[key])
    out = []
    for phase, state in enumerate(states):
        chars = []
        for i in range(n_own):
            if i not in sources:  # an index no connection uses (a gap): any state, none shown
                chars.append(RED_LETTER)
                continue
            shown = {state[j] for j in sources[i] if j < len(state)}
            if shown == GREEN:
                shown = {PERMISSIVE_GREEN}  # all green, some yielding: the shared index yields (as safe)
            if len(shown) != 1:
                return None, (
                    f"link index {i} groups connections that SUMO's rebuilt program shows as "
                    f"{'/'.join(sorted(shown)) or 'nothing'} in its phase {phase}"
                )
            chars.append(shown.pop())
        out.append("".join(chars))
    return out, ""


def rebuilt_programs(net_file: Path | str, *, workdir: Path | str | None = None,
                     timeout_s: float = 300.0) -> dict[str, Program]:
    """SUMO's own program of every signal of ``net_file`` (``netconvert --tls.rebuild``), its
    states carried over to ``net_file``'s link indices (:func:`carried_over`; signals whose
    connections cannot all be found, or whose shared indices the rebuilt program splits, are left
    out: :func:`rebuilt_left_out`). :class:`NetworkError` when netconvert fails."""
    return dict(_rebuilt(net_file, workdir, timeout_s)[0])


def rebuilt_left_out(net_file: Path | str, *, workdir: Path | str | None = None,
                     timeout_s: float = 300.0) -> dict[str, str]:
    """The signals :func:`rebuilt_programs` leaves out → why (netconvert runs once per net file
    and process for both)."""
    return dict(_rebuilt(net_file, workdir, timeout_s)[1])


def _rebuilt(net_file: Path | str, workdir: Path | str | None,
             timeout_s: float) -> tuple[dict[str, Program], dict[str, str]]:
    net = Path(net_file)
    try:
        key = (str(net.resolve()), net.stat().st_mtime)
    except OSError as exc:
        raise NetworkError(f"{net}: cannot read the net file ({exc})") from None
    if key in _REBUILT:  # one netconvert per net file and process
        return _REBUILT[key]
    if workdir is not None:
        try:
            Path(workdir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NetworkError(f"{workdir}: cannot make the work folder for netconvert ({exc})") from None
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        out = Path(tmp) / "rebuilt.net.xml"
        cmd = [sumo_binary("netconvert"), "-s", str(net), "--tls.rebuild", "-o", str(out),
               "--no-warnings"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=tool_env(), timeout=timeout_s,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NetworkError(f"{net}: netconvert --tls.rebuild failed: {exc}") from None
        if proc.returncode != 0 or not out.exists():
            raise NetworkError(f"{net}: netconvert --tls.rebuild failed: {proc.stderr.strip()[-500:]}")
        original = load_network(net)
        rebuilt = load_network(out)
        own_links, new_links = signal_links(net), signal_links(out)
    result: dict[str, Program] = {}
    left_out: dict[str, str] = {}
    for sid, sig in original.signals.items():
        other = rebuilt.signals.get(sid)
        if other is None or other.default_program is None:
            left_out[sid] = "netconvert wrote no program for it"
            continue
        prog = other.default_program
        states, why = carried_over(own_links.get(sid, {}), new_links.get(sid, {}),
                                   [ph.state for ph in prog.phases], len(sig.movements))
        if states is None:
            left_out[sid] = f"SUMO's rebuilt program does not fit its link indices: {why}"
            continue
        result[sid] = replace(prog, phases=tuple(replace(ph, state=st) for ph, st in zip(prog.phases, states,
                                                                                          strict=True)))
    _REBUILT.clear()
    _REBUILT[key] = (result, left_out)
    return result, left_out


_REBUILT: dict[tuple[str, float], tuple[dict[str, Program], dict[str, str]]] = {}
