"""Intergreens of stage designs from the junction geometry in the net file.

- yellow of a vehicle link ending its green: the yellow the network's own program shows that
  link after its green (its longest; the local engineers' standard, e.g. RiLSA's 3 s at
  50 km/h); for a link whose own program shows it none, the longest the program shows a link
  approached at least as fast (an own yellow over 6 s and ITE's counts as none); where there is
  none either, ``t_r + v / (2 a)`` (ITE; ``t_r`` =
  1 s, ``a`` = 3 m/s², ``v`` its approach lane's speed) rounded up to 0.1 s; at least 3 s either way
  (``DesignParams.yellow = "ite"`` takes the larger of the two rules); a transition's yellow
  is the largest over its ending links; none where only crossings end (then 1 s all-red before a
  conflicting green, their clearance being part of the stage's minimum green);
- all-red from ``i`` to ``j``: the largest, over a clearing link ``c`` (green in ``i``, not in
  ``j``) and an entering foe ``e`` (green in ``j``, not in ``i``), of
  ``(d_c + L) / v_c − d_e / v_e``: ``d_c`` the distance along ``c``'s internal lanes from its
  stop line to the conflict point (the first crossing of the two paths' shapes; the whole
  path where the shapes do not cross), ``L`` = 7.5 m (a car and its gap), ``v_c`` the clearing
  path's speed (its internal lanes'), ``d_e`` the entering path's distance to the same point
  (minus 1.5 m) at its speed; pedestrians clear at 1.2 m/s. A vehicle link green in both
  stages that a clearing link ``c`` gives way to counts as an entering foe too, at least
  0.1 s (no yellow trap: ``c``'s vehicles may be waiting inside the junction for it, so it
  stops with ``c`` and starts again after ``c``'s clearance). Never below the own program's
  shortest all-red (the network's clearance is not cut), rounded up to 0.1 s; with an all-red,
  the links green in both stages end and start again in the programs greenwave writes (a phase
  with some green and no yellow reads as a stage), so the yellow covers them too (the switcher
  keeps most of them green through it: :func:`~greenwave.networks.stage_record.design_transition`);
- minimum green: 5 s, the own program's minimum for the links of the stage
  (``minDur``), and a crossing's walk (4 s) + length / 1.2 m/s where the stage serves it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from greenwave._xml import open_xml
from greenwave.errors import NetworkError
from greenwave.networks.compile import MIN_YELLOW_S
from greenwave.networks.model import Program, Signal
from greenwave.networks.signal_states import GREEN, GREEN_OR_TRANSITION, YELLOW
from greenwave.networks.stage_record import stays_green_over, trap_pairs

__all__ = ["DesignParams", "JunctionGeometry", "ceil_to", "intergreens", "junction_geometry", "merge_pairs",
           "own_floor_allred", "own_intergreens", "own_link_yellow"]



@dataclass(frozen=True)
class DesignParams:
    """Constants of the intergreen and minimum-green rules (s, m, m/s, m/s²)."""

    min_yellow_s: float = MIN_YELLOW_S
    #: "network": a link's yellow is its own program's where it has one, ITE's otherwise;
    #: "ite": never below ITE's kinematic yellow either
    yellow: str = "network"
    #: a yellow the own program shows longer than this (and than ITE's) is not taken as the
    #: network's standard (standards stop at 5–6 s); ITE's is then
    max_own_yellow_s: float = 6.0
    reaction_s: float = 1.0
    decel_mps2: float = 3.0
    vehicle_length_m: float = 7.5
    conflict_margin_m: float = 1.5
    min_green_s: float = 5.0
    pedestrian_walk_s: float = 4.0
    pedestrian_speed_mps: float = 1.2
    round_s: float = 0.1
    #: the longest own stage that counts as a short protected-turn stage for ``merged``
    short_turn_stage_s: float = 15.0


def own_link_yellow(program: Program | None, n_links: int, *, shortest: bool = False) -> dict[int, float]:
    """Per link index, the longest (``shortest``: the shortest) yellow ``program`` shows it right
    after a green (s), over the consecutive phases that show it yellow."""
    pick = min if shortest else max
    out: dict[int, float] = {}
    if program is None or not program.phases:
        return out
    phases = program.phases
    n = len(phases)
    for k in range(n_links):
        for i in range(n):
            st = phases[i].state
            if k >= len(st) or st[k] not in GREEN:
                continue
            y, j = 0.0, (i + 1) % n
            for _ in range(n - 1):
                sj = phases[j].state
                if k >= len(sj) or sj[k] not in YELLOW:
                    break
                y += phases[j].duration
                j = (j + 1) % n
            if y > 0:
                out[k] = pick(out[k], y) if k in out else y
    return out


def ceil_to(x: float, step: float) -> float:
    return round(math.ceil(x / step - 1e-9) * step, 6)


def merge_pairs(signal: Signal) -> np.ndarray:
    """Boolean ``n_links × n_links``: True where two links (any of their connections) lead into
    the same lane — a merge. SUMO marks merging links as foes, but two priority greens into one
    lane are normal (the junction's right-of-way orders them), so safety checks leave them out."""
    n = signal.n_links
    by_lane: dict[str, list[int]] = {}
    for k, m in enumerate(signal.movements):
        for lane in {x.to_lane for x in (m, *m.merged) if x.to_lane}:
            by_lane.setdefault(lane, []).append(k)
    out = np.zeros((n, n), dtype=bool)
    for ks in by_lane.values():
        if len(ks) > 1:
            out[np.ix_(ks, ks)] = True
    np.fill_diagonal(out, False)
    return out

# ------------------------------------------------------------------------------------------
# geometry of the net file


@dataclass
class JunctionGeometry:
    """What the intergreens need from the net file: lane shapes, lengths, speeds, chains."""

    lane_shape: dict[str, np.ndarray] = field(default_factory=dict)
    lane_length: dict[str, float] = field(default_factory=dict)
    lane_speed: dict[str, float] = field(default_factory=dict)
    chain_next: dict[str, str] = field(default_factory=dict)
    edge_ends: dict[str, tuple[str, str]] = field(default_factory=dict)
    node_xy: dict[str, tuple[float, float]] = field(default_factory=dict)
    crossing_length: dict[str, float] = field(default_factory=dict)

    def path(self, via: str | None) -> list[str]:
        out: list[str] = []
        lane = via
        while lane is not None and lane not in out and len(out) < 8:
            out.append(lane)
            lane = self.chain_next.get(lane)
        return out


_GEOMETRY: dict[tuple[str, float], JunctionGeometry] = {}


def _shape(raw: str | None) -> np.ndarray:
    pts = []
    for pair in (raw or "").split():
        xy = pair.split(",")
        if len(xy) >= 2:
            try:
                pts.append((float(xy[0]), float(xy[1])))
            except ValueError:
                continue
    return np.array(pts, dtype=np.float64).reshape(-1, 2)


def junction_geometry(path: Path) -> JunctionGeometry:
    try:
        key = (str(Path(path).resolve()), Path(path).stat().st_mtime)
    except OSError as exc:
        raise NetworkError(f"{path}: cannot read the net file for stage design ({exc})") from None
    if key in _GEOMETRY:
        return _GEOMETRY[key]
    g = JunctionGeometry()
    try:
        with open_xml(path) as fh:
            for _event, el in ET.iterparse(fh, events=("end",)):
                tag = el.tag
                if tag == "edge":
                    eid = el.get("id", "")
                    func = el.get("function", "normal")
                    if func == "normal":
                        g.edge_ends[eid] = (el.get("from", ""), el.get("to", ""))
                    for ln in el.iter("lane"):
                        lid = ln.get("id", "")
                        length = float(ln.get("length", "0") or 0.0)
                        g.lane_speed[lid] = float(ln.get("speed", "13.89") or 13.89)
                        if func != "normal":
                            g.lane_shape[lid] = _shape(ln.get("shape"))
                            g.lane_length[lid] = length
                        if func == "crossing":
                            g.crossing_length[eid] = max(g.crossing_length.get(eid, 0.0), length)
                    el.clear()
                elif tag == "junction":
                    if el.get("type") != "internal":
                        g.node_xy[el.get("id", "")] = (float(el.get("x", "0")), float(el.get("y", "0")))
                    el.clear()
                elif tag == "connection":
                    frm, via = el.get("from", ""), el.get("via")
                    if frm.startswith(":") and via:
                        g.chain_next[f"{frm}_{el.get('fromLane', '0')}"] = via
                    el.clear()
                elif tag == "tlLogic":
                    el.clear()
    except (OSError, ET.ParseError, EOFError, ValueError) as exc:
        raise NetworkError(f"{path}: cannot read the junction geometry for stage design ({exc})") from None
    _GEOMETRY.clear()
    _GEOMETRY[key] = g
    return g


def _polyline(g: JunctionGeometry, lanes: Sequence[str]) -> np.ndarray:
    parts = [g.lane_shape[ln] for ln in lanes if ln in g.lane_shape and len(g.lane_shape[ln])]
    if not parts:
        return np.zeros((0, 2))
    return np.vstack(parts)


def _first_crossing(a: np.ndarray, b: np.ndarray) -> tuple[float, float] | None:
    """Distances along polylines ``a`` and ``b`` to their first crossing (along ``a``), or None."""
    if len(a) < 2 or len(b) < 2:
        return None
    cum_b = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(b, axis=0).T))])
    da = 0.0
    for i in range(len(a) - 1):
        p, r = a[i], a[i + 1] - a[i]
        la = float(np.hypot(*r))
        q, s = b[:-1], np.diff(b, axis=0)
        den = r[0] * s[:, 1] - r[1] * s[:, 0]
        ok = np.abs(den) > 1e-12
        qp = q - p
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (qp[:, 0] * s[:, 1] - qp[:, 1] * s[:, 0]) / den
            u = (qp[:, 0] * r[1] - qp[:, 1] * r[0]) / den
        hit = ok & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
        if hit.any():
            idx = np.flatnonzero(hit)
            k = idx[np.argmin(t[idx])]
            ls = float(np.hypot(*s[k]))
            return da + float(t[k]) * la, float(cum_b[k] + u[k] * ls)
        da += la
    return None


# ------------------------------------------------------------------------------------------
# intergreens


def intergreens(
    signal: Signal,
    stages: Sequence[str],
    net_file: Path | str,
    *,
    params: DesignParams | None = None,
    floor_allred_s: float = 0.0,
) -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
    """Yellow and all-red matrices (s) of ``stages`` of ``signal`` (see the module doc)."""
    p = params or DesignParams()
    g = junction_geometry(Path(net_file))
    ped = frozenset(signal.pedestrian_links)
    foes = np.asarray(signal.conflicts, dtype=bool) & ~merge_pairs(signal)
    paths: dict[int, list[str]] = {}
    speed: dict[int, float] = {}
    yellow_of: dict[int, float] = {}
    if p.yellow not in ("network", "ite"):
        raise NetworkError(f"stage design: yellow rule must be 'network' or 'ite', got {p.yellow!r}")
    own_yellow = own_link_yellow(signal.default_program, signal.n_links)
    v_link = {m.link_index: g.lane_speed.get(m.from_lane, 13.89) for m in signal.movements
              if m.is_used and m.link_index not in ped}
    for m in signal.movements:
        if not m.is_used:
            continue
        k = m.link_index
        if k in ped:
            lanes = [x for x in (m.to_lane, m.from_lane) if x in g.lane_shape and x.startswith(":")]
            lanes = [ln for ln in lanes if ln.rsplit("_", 1)[0] in g.crossing_length][:1]
            paths[k] = lanes
            speed[k] = p.pedestrian_speed_mps
            continue
        paths[k] = g.path(m.via)
        v_path = min((g.lane_speed.get(ln, 13.89) for ln in paths[k]), default=13.89)
        v_app = v_link[k]
        speed[k] = max(min(v_path, v_app), 1.0)
        ite = ceil_to(p.reaction_s + v_app / (2.0 * p.decel_mps2), p.round_s)
        own = own_yellow.get(k)
        if own is None:  # the network's yellow at this speed, from its links approached as fast
            own = max((y for j, y in own_yellow.items() if v_link.get(j, 0.0) >= v_app - 0.05), default=None)
        if own is not None and own > max(p.max_own_yellow_s, ite):
            own = None  # no yellow standard shows that much (a game's or a hand-switched program)
        rule = ite if own is None else (max(own, ite) if p.yellow == "ite" else own)
        yellow_of[k] = max(p.min_yellow_s, rule)
    n = len(stages)
    cache: dict[tuple[int, int], float] = {}
    stays = stays_green_over(signal)

    def clear_s(c: int, e: int) -> float:
        if (c, e) in cache:
            return cache[(c, e)]
        pc, pe = _polyline(g, paths.get(c, [])), _polyline(g, paths.get(e, []))
        hit = _first_crossing(pc, pe)
        length_c = float(sum(g.lane_length.get(ln, 0.0) for ln in paths.get(c, [])))
        if hit is None:
            d_c, d_e = length_c, 0.0
        else:
            d_c, d_e = hit
        tail = 0.0 if c in ped else p.vehicle_length_m
        t = (d_c + tail) / speed.get(c, 13.89) - max(d_e - p.conflict_margin_m, 0.0) / speed.get(e, 13.89)
        cache[(c, e)] = t
        return t

    yellow = [[0.0] * n for _ in range(n)]
    allred = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            a, b = stages[i], stages[j]
            ending = [k for k in range(min(len(a), signal.n_links)) if a[k] in GREEN and b[k] not in GREEN]
            if not ending:
                continue
            starting = [k for k in range(min(len(b), signal.n_links)) if b[k] in GREEN and a[k] not in GREEN]
            vehicles_end = [k for k in ending if k not in ped]
            # only crossings end: no yellow; a conflicting start still waits one step (never a
            # direct hand-over), their clearance being part of their stage's minimum green
            red = 0.0 if vehicles_end else max((1.0 for c in ending for e in starting if foes[c, e]), default=0.0)
            for c in ending:
                if c in ped:
                    continue  # a crossing's clearance is part of its stage's minimum green
                for e in starting:
                    if foes[c, e]:
                        # a vehicle clears during its yellow too only when it entered at its end:
                        # the all-red is what the clearing takes beyond the yellow's last moment
                        red = max(red, clear_s(c, e))
            # a vehicle link green in both stages that an ending one gives way to: its vehicles
            # may be waiting inside the junction for it, so it stops and starts again after
            # their clearance (no yellow trap), never straight from yellow to green
            for c, k in trap_pairs(a, b, stays, ped):
                red = max(red, clear_s(c, k), p.round_s)
            allred[i][j] = ceil_to(max(red, floor_allred_s if vehicles_end else 0.0, 0.0), p.round_s)
            if allred[i][j] > 0:  # links green in both stages end too in written programs (design_transition)
                vehicles_end = [k for k in range(min(len(a), signal.n_links)) if a[k] in GREEN and k not in ped]
            yellow[i][j] = max((yellow_of.get(k, p.min_yellow_s) for k in vehicles_end), default=0.0)
    return tuple(tuple(r) for r in yellow), tuple(tuple(r) for r in allred)


def own_intergreens(program: Program, stage_idx: Sequence[int]) -> tuple[list[list[float]], list[list[float]]]:
    n = len(stage_idx)
    yel_after, red_after = [], []
    for s, k in enumerate(stage_idx):
        nxt = stage_idx[(s + 1) % n]
        j, y, r = (k + 1) % len(program.phases), 0.0, 0.0
        while j != nxt:
            ph = program.phases[j]
            if any(c in YELLOW for c in ph.state):
                y += ph.duration
            else:
                r += ph.duration
            j = (j + 1) % len(program.phases)
        yel_after.append(y)
        red_after.append(r)
    yellow = [[0.0 if i == j else yel_after[i] for j in range(n)] for i in range(n)]
    allred = [[0.0 if i == j else red_after[i] for j in range(n)] for i in range(n)]
    return yellow, allred


def own_floor_allred(program: Program, stage_idx: Sequence[int]) -> float:
    """The own program's shortest all-red between two stages (0 when one has none)."""
    if len(stage_idx) < 2:
        return 0.0
    reds = []
    n = len(program.phases)
    for s, k in enumerate(stage_idx):
        nxt = stage_idx[(s + 1) % len(stage_idx)]
        j, r = (k + 1) % n, 0.0
        if j == nxt:
            continue
        while j != nxt:
            ph = program.phases[j]
            if not any(c in GREEN_OR_TRANSITION for c in ph.state):
                r += ph.duration
            j = (j + 1) % n
        reds.append(r)
    return min(reds, default=0.0)


