"""Pedestrian crossings of a signal and the green time they need: the one rule.

A crossing served by a stage needs ``walk_s`` of walk plus ``length / speed_mps`` of clearance
(flashing don't-walk) of continuous green. Where a crossing stays green through several
consecutive stages (a run, cyclically), the requirement goes to the stage of the run with the
longest base green (the first on ties): the run then lasts at least that long, and short
transition stages are not forced to the full pedestrian time (real programs keep crossings green
across them). The compiled minimum greens (:func:`greenwave.networks.compile.compile_network`)
and the walk and clearance times a plan exports both come from :func:`stage_pedestrian_times`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

from greenwave._xml import open_xml
from greenwave.networks.model import Phase, RoadNetwork, Signal
from greenwave.networks.signal_states import GREEN, cyclic_runs

__all__ = ["PedestrianTime", "crossing_lengths", "has_pedestrian_links", "pedestrian_times", "signal_crossings",
           "stage_pedestrian_times"]


@dataclass(frozen=True)
class PedestrianTime:
    """Walk and clearance time (s) a stage must give the crossings it carries."""

    walk_s: float
    clearance_s: float

    @property
    def min_green_s(self) -> float:
        """The pedestrian minimum green: walk + clearance, s."""
        return self.walk_s + self.clearance_s


def crossing_lengths(path: str | Path) -> dict[str, float]:
    """Length (m) of every pedestrian crossing edge in the net file (its longest lane; empty if the
    file is unreadable); read once per file version."""
    try:
        st = Path(path).stat()
    except OSError:
        return {}
    return dict(_read_crossing_lengths(str(path), st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=8)
def _read_crossing_lengths(path: str, _mtime_ns: int, _size: int) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        with open_xml(path) as fh:
            for _event, el in ET.iterparse(fh, events=("end",)):
                if el.tag == "edge":
                    if el.get("function") == "crossing":
                        lengths = [float(ln.get("length", "nan")) for ln in el.iter("lane")]
                        lengths = [x for x in lengths if math.isfinite(x)]
                        if lengths:
                            out[el.get("id", "")] = max(lengths)
                    el.clear()
                elif el.tag in ("junction", "connection", "tlLogic"):
                    el.clear()
    except (OSError, ET.ParseError, EOFError, ValueError):
        return {}
    return out


def has_pedestrian_links(signal: Signal) -> bool:
    """Whether any used connection of ``signal`` is a pedestrian one."""
    return any(x.is_pedestrian for m in signal.movements if m.is_used for x in (m, *m.merged))


def signal_crossings(signal: Signal, lengths: Mapping[str, float]) -> dict[int, float]:
    """Length (m) of the longest crossing each link index of ``signal`` leads pedestrians over:
    the used pedestrian connections of the index (merged ones included) whose from- or to-edge
    is a crossing in ``lengths`` (:func:`crossing_lengths`). Indices without one are left out."""
    out: dict[int, float] = {}
    for m in signal.movements:
        for x in (m, *m.merged):
            if x.is_used and x.is_pedestrian:
                for e in (x.from_edge, x.to_edge):
                    if e in lengths:
                        out[m.link_index] = max(out.get(m.link_index, 0.0), lengths[e])
    return out


def pedestrian_times(phases: Sequence[Phase], crossings: Mapping[int, float], *, walk_s: float,
                     speed_mps: float) -> list[PedestrianTime | None]:
    """Per stage (its green phase in ``phases``, in stage order): the walk and clearance it must
    give, ``None`` for a stage that carries no crossing's requirement (see the module docstring).

    ``crossings``: crossing length (m) per pedestrian link index (:func:`signal_crossings`);
    ``walk_s`` ≥ 0 and ``speed_mps`` > 0 (the callers check them). The clearance of a stage
    carrying several crossings is that of the longest.
    """
    n = len(phases)
    clearance: list[float | None] = [None] * n
    for li, length in crossings.items():
        green = [li < len(ph.state) and ph.state[li] in GREEN for ph in phases]
        if not any(green):
            continue
        for run in (r for r in cyclic_runs(green) if green[r[0]]):
            best = max(run, key=lambda k: (phases[k].duration, -run.index(k)))
            clearance[best] = max(clearance[best] or 0.0, length / speed_mps)
    return [None if c is None else PedestrianTime(float(walk_s), c) for c in clearance]


def stage_pedestrian_times(network: RoadNetwork, signal: Signal, phases: Sequence[Phase], *, walk_s: float,
                           speed_mps: float) -> list[PedestrianTime | None]:
    """:func:`pedestrian_times` of ``signal``'s stages (their green ``phases``), with the crossing
    lengths read from ``network``'s net file (only where the signal has pedestrian links)."""
    lengths = crossing_lengths(Path(network.path)) if has_pedestrian_links(signal) else {}
    return pedestrian_times(phases, signal_crossings(signal, lengths), walk_s=walk_s, speed_mps=speed_mps)
