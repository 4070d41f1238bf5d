"""``schedule``: schedule-driven signal control on the vehicles the detectors see.

Each ``decision_interval_s`` every signal whose green has run its minimum looks at the vehicles
in the lane-area zones of its approach lanes (``e2_length_m``, 400 m by default and clipped to the
lane: what a camera or radar on the approach sees) and asks which *schedule* of its stages serves
them with the least total delay; it switches now when the best schedule starts with a switch,
else it keeps its green and asks again a step later. It is the idea of schedule-driven control
(Xie, Smith and Barlow's SURTRAC: vehicles approaching a junction are jobs, and the signal
sequence that gives them the least delay is re-planned every second), written for greenwave's
stage designs, its switcher and its detectors:

* a vehicle's earliest time at the stop line is its distance there over its speed (at least
  ``eta_speed_mps``, so a standing one in a queue counts by its place), and a lane discharges one
  vehicle per ``headway_s`` at its rate: per stage, the mean over its links of 1 for a priority
  ``G``, ``permitted_rate`` for a permitted ``g`` (it yields) and 0 for red, but 0 while any of
  its links is red where some stage shows them all green (the vehicle at its head may want the
  red one: on Monaco, signal 14375's shared lane, rated a third in the stage that showed only
  its through link green, kept that stage green for nobody while 13 vehicles waited, 92.9 s/veh
  RESCO delay against 85.8 then); a green that follows a switch loses ``startup_s`` first;
* with ``vehicle_links`` (on by default) a lane whose links the stages treat differently is queued
  by what its vehicles need instead: each vehicle the link it will take (SUMO's next signal link,
  one TraCI call per vehicle on such lanes: route knowledge, which in the street turn indicators
  give near the stop line and connected vehicles further out) and the links of the vehicles standing
  ahead of it, which it cannot pass; one queue per such set, at its slowest link's rate while they
  are all green (where no stage shows them all, at its own link's), and a vehicle whose needs every
  stage serves decides nothing. The whole-lane rule stays for a lane whose zone is flagged. Measured
  (one hour): Monaco 85.8 → 83.4 s/veh on seed 1 (seeds 1–3: 83.7 → 82.7), Luxembourg 28.85 → 28.38
  (seeds 1–3), A10KW 34.3 → 40.6 on seed 1 but 37.7 → 33.7 over seeds 2–4, RiLSA 2 a median of 12.35
  → 12.31 over seeds 1–9 (both gridlock on some seed there: 95.97 on seed 9 before, 34.35 on seed 5
  and 31.14 on seed 3 now: the design's turners waiting in the median, which generated designs no
  longer allow, see :mod:`greenwave.networks.stage_design`; seeds 1–9 since: 12.01), DRT and the
  networks without such lanes the same;
* the schedules it compares: the current green for ``d0`` more seconds (0 up to its maximum
  green, within ``horizon_s``), then any other stage ``k1`` after the intergreen the switcher
  will show, for its minimum green or longer, then any stage ``k2`` but ``k1``, open-ended;
  where a schedule switches for the last time after ``horizon_s``, it ends there;
* lanes red in the schedule's last stage are served after ``horizon_s`` (or that stage's start,
  if later) and the signal's longest intergreen, at their best rate: every vehicle seen counts,
  so a queue that a schedule leaves waiting is never free;
* a stage has a call when a vehicle is seen on a lane with a link it shows green and the
  current stage red (on a lane queued by link: when it shows green every link the vehicle
  needs and the current stage does not; a lane whose links are green in every stage decides nothing and is left
  out; before, a lane with one link red in some stage was left out too, and on Monaco a
  through lane behind a waiting left turner was never called: 86 teleports in the hour); a green
  at its maximum (``max_green_s``) ends for the cheapest stage with a call (else it rests); a stage with such a
  vehicle that has not shown for ``max_red_s`` (at most the signal's own cycle) is served next,
  as under ``max_pressure``, and with ``recall_s`` > 0 any stage not shown for that long.
  Without that guard DRT's district measured 21.3 s/veh (one hour, seeds 1–2) against 18.8
  with it; counting a stage that shows a crossing as always called (the pedestrians: no
  detector sees them) forced 938 of 1770 switches there and measured 21.1. A stage that only
  serves a crossing is served only with ``recall_s``, as under ``max_pressure``.

The yellow, all-red and minimum greens are the switcher's (:mod:`greenwave.controllers.switching`);
the stages are the design the model picks per signal (``stage_design``, default ``"best"``).
Lanes whose zone the detector checks flag count their queue estimate as vehicles at the stop
line. The decision is a numba kernel (:func:`best_move`) over flat arrays, with a plain
reference (:func:`best_move_reference`) that it is tested against.

Measured in SUMO (one hour, mean RESCO delay s/veh of seeds 1–2, RiLSA 1, 3 and 4, cross,
corridor, kuehne, square and DRT): ``horizon_s`` 20 / 25 / 30 / 40 gave RiLSA 1 26.7 / 28.2 /
25.0 / 24.9, RiLSA 4 25.7 / 25.0 / 22.8 / 23.9, RiLSA 3 19.6 / 19.4 / 19.2 / 19.7, kuehne 10.6 /
10.4 / 10.4 / 10.5 (the others within 0.15); 400 m zones against 200 m (at ``horizon_s`` 40) RiLSA 4
23.9 against 24.4, RiLSA 1 24.9 against 25.1, RiLSA 3 19.7 against 19.3, the others the same
(their lanes are shorter than 200 m); ``permitted_rate`` 0.7, ``startup_s`` 1 and ``eta_speed_mps`` 3 won nowhere
by more than the seeds scatter and lost RiLSA 4 (24.2, 24.1, 25.8). When lanes left red at a
schedule's end cost only their wait up to ``horizon_s``, RiLSA 4's permitted left turners
queued all hour on seed 1 (44.5); charging their wait until served, but with the last stage
held until its own lanes cleared, lost corridor (19.5 against 16.6) and kuehne (15.8 against
10.3).

Options (``[controller_options.schedule]``), besides those it shares with ``max_pressure``
(``decision_interval_s``, ``min_green_s``, ``max_green_s``, ``max_red_s``, ``stage_design``,
``e2_length_m``, ``detector_faults``, ``left_alone_programs``, ...): ``horizon_s`` (30),
``headway_s`` (2), ``startup_s`` (2), ``permitted_rate`` (0.5), ``eta_speed_mps`` (5),
``vehicle_links`` (1: on; 0: every lane as a whole).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numba import njit

from greenwave.controllers.base import register
from greenwave.controllers.max_pressure import PressureController
from greenwave.errors import ScenarioError
from greenwave.networks.signal_states import GREEN, PRIORITY_GREEN

if TYPE_CHECKING:
    from pathlib import Path

    from greenwave.engine.run import RunSpec

__all__ = ["ScheduleController", "best_move", "best_move_reference", "lane_delay", "lane_delay_reference",
           "schedule_delay", "schedule_delay_reference"]

#: The options it adds to ``max_pressure``'s, with their defaults.
SCHEDULE_DEFAULTS: dict[str, float] = {
    "horizon_s": 30.0,
    "headway_s": 2.0,
    "startup_s": 2.0,
    "permitted_rate": 0.5,
    "eta_speed_mps": 5.0,
    "vehicle_links": 1.0,
}
#: The longest ``horizon_s``: the schedules compared grow with its square.
MAX_HORIZON_S = 120.0
#: Its zones: 400 m (clipped to the lane), where ``max_pressure`` counts queues in 80 m.
SCHEDULE_ZONE_M = 400.0
_OPEN = 1e9  # the end of an open green, s
#: The delay of a lane no green serves (none reaches the kernel: the controller leaves such lanes out).
NEVER = 1e12


# -- the decision, plainly (the reference) ---------------------------------------------------------

def lane_delay_reference(eta: list[float], greens: list[tuple[float, float, float]], headway: float) -> float:
    """Total delay of one lane's vehicles (earliest stop-line times ``eta``, sorted) discharging
    one per ``headway / rate`` s inside ``greens`` ((start, end, rate) in time order, the last
    one open-ended where it matters): a vehicle leaves at its earliest time, or when the vehicle
    ahead has left, or at the start of the next green with a rate, whichever is latest. A lane
    that no green serves costs ``NEVER`` (the controller gives the kernel no such lane)."""
    total, prev, j = 0.0, -_OPEN, 0
    for e in eta:
        t = max(e, prev)
        while j < len(greens) and (greens[j][2] <= 0.0 or greens[j][1] <= t):
            j += 1
        if j == len(greens):
            return NEVER
        t = max(t, greens[j][0])
        total += t - e
        prev = t + headway / greens[j][2]
    return total


def schedule_delay_reference(eta: list[list[float]], rate: np.ndarray, rmax: np.ndarray,
                             schedule: list[tuple[int, float, float]], headway: float, startup: float,
                             back: float, clear: float) -> float:
    """Delay of every vehicle seen (per lane, sorted ``eta``) under ``schedule``: greens
    (stage, start, end), the first one running now, the last one open-ended. Greens after a
    switch lose ``startup``; lanes red in the last stage get an open green at their best rate
    (``rmax``) from ``max(clear, start of the last green) + back + startup``."""
    last_stage, last_start = schedule[-1][0], schedule[-1][1]
    total = 0.0
    for lane, vehicles in enumerate(eta):
        greens = [(s + (startup if j > 0 else 0.0), e if j < len(schedule) - 1 else _OPEN, float(rate[k, lane]))
                  for j, (k, s, e) in enumerate(schedule)]
        if rate[last_stage, lane] <= 0.0:
            greens[-1] = (greens[-1][0], schedule[-1][2], greens[-1][2])
            greens.append((max(clear, last_start) + back + startup, _OPEN, float(rmax[lane])))
        total += lane_delay_reference(vehicles, greens, headway)
    return total


def _d0_values(d0_max: float, step: float) -> list[float]:
    """How long the current green may go on before a switch: 0, ``step``, ... and ``d0_max``."""
    out, d0 = [], 0.0
    while d0 < d0_max - 1e-9:
        out.append(d0)
        d0 += step
    out.append(d0_max)
    return out


def _schedules(cur: int, elapsed: float, min_g: np.ndarray, max_g: np.ndarray, inter: np.ndarray,
               horizon: float, step: float):
    """Every schedule compared, in the kernel's order: (d0, k1, greens)."""
    n = len(min_g)
    d0_max = min(horizon, max(float(max_g[cur]) - elapsed, 0.0))
    for d0 in _d0_values(d0_max, step):
        for k1 in range(n):
            if k1 == cur:
                continue
            s1 = d0 + inter[cur, k1]
            if s1 >= horizon:
                yield d0, k1, [(cur, 0.0, d0)]
                continue
            d1 = float(min_g[k1])
            while True:
                e1 = min(s1 + d1, horizon)
                two = False
                for k2 in range(n):
                    if k2 == k1:
                        continue
                    s2 = e1 + inter[k1, k2]
                    if s2 < horizon:
                        yield d0, k1, [(cur, 0.0, d0), (k1, s1, e1), (k2, s2, horizon)]
                    else:
                        two = True
                if two:  # k1 green to the end, whichever stage would follow
                    yield d0, k1, [(cur, 0.0, d0), (k1, s1, e1)]
                if e1 >= horizon:
                    break
                d1 += 2.0 * step
    if d0_max >= horizon - 1e-9:
        yield horizon, -1, [(cur, 0.0, horizon)]


def best_move_reference(cur: int, elapsed: float, min_g: np.ndarray, max_g: np.ndarray, inter: np.ndarray,
                        rate: np.ndarray, eta_ptr: np.ndarray, eta: np.ndarray, headway: float, horizon: float,
                        step: float, startup: float, switch_to: np.ndarray) -> tuple[int, float, float]:
    """The schedule decision of one signal, written plainly (the reference of :func:`best_move`).

    ``cur``: the stage showing, green for ``elapsed`` s; per stage ``min_g``/``max_g`` (s);
    ``inter[a, b]``: the intergreen from stage ``a`` to ``b`` (s); ``rate[k, lane]``: the
    lane's discharge rate under stage ``k`` (share of saturation flow); ``eta[eta_ptr[l]:eta_ptr[l
    + 1]]``: lane ``l``'s vehicles' earliest stop-line times from now, sorted (s). Returns (the
    stage to switch to now, or -1 to keep the green; the least delay of the schedules that keep
    it; the least of those that switch now) and writes into ``switch_to[k]`` the least delay of
    the schedules that switch to ``k`` now (inf for ``cur``). It keeps the green unless a
    switch is cheaper or the green is at its maximum; ties go to the lower stage."""
    rmax = rate.max(axis=0) if rate.shape[0] else np.zeros(rate.shape[1])
    back = float(inter.max()) if inter.size else 0.0
    lanes = [list(eta[eta_ptr[i]:eta_ptr[i + 1]]) for i in range(len(eta_ptr) - 1)]
    stay = math.inf
    switch_to[:] = math.inf
    for d0, k1, sched in _schedules(cur, elapsed, min_g, max_g, inter, horizon, step):
        c = schedule_delay_reference(lanes, rate, rmax, sched, headway, startup, back, horizon)
        if d0 > 0:
            stay = min(stay, c)
        elif c < switch_to[k1]:
            switch_to[k1] = c
    best = int(np.argmin(switch_to)) if np.isfinite(switch_to).any() else -1
    switch = float(switch_to[best]) if best >= 0 else math.inf
    if max_g[cur] - elapsed <= 0.0 or switch < stay:
        return best, stay, switch
    return -1, stay, switch


# -- the decision, compiled -------------------------------------------------------------------------

@njit(cache=True)
def lane_delay(eta, a, b, g_start, g_end, g_rate, n_int, headway):  # pragma: no cover - njit
    """:func:`lane_delay_reference` over ``eta[a:b]`` and the first ``n_int`` greens."""
    total = 0.0
    prev = -_OPEN
    j = 0
    for v in range(a, b):
        e = eta[v]
        t = max(e, prev)
        while j < n_int and (g_rate[j] <= 0.0 or g_end[j] <= t):
            j += 1
        if j == n_int:
            return NEVER
        t = max(t, g_start[j])
        total += t - e
        prev = t + headway / g_rate[j]
    return total


@njit(cache=True)
def schedule_delay(eta_ptr, eta, rate, rmax, seq, starts, ends, n_int, headway, startup, back,
                   clear):  # pragma: no cover - njit
    """:func:`schedule_delay_reference` of the schedule of ``n_int`` greens: stages ``seq``,
    from ``starts`` to ``ends``; lanes as CSR ``(eta_ptr, eta)``."""
    g_start = np.empty(4)
    g_end = np.empty(4)
    g_rate = np.empty(4)
    last = seq[n_int - 1]
    total = 0.0
    for lane in range(eta_ptr.shape[0] - 1):
        for j in range(n_int):
            g_start[j] = starts[j] + (startup if j > 0 else 0.0)
            g_end[j] = ends[j] if j < n_int - 1 else _OPEN
            g_rate[j] = rate[seq[j], lane]
        m = n_int
        if rate[last, lane] <= 0.0:
            g_end[n_int - 1] = ends[n_int - 1]
            g_start[n_int] = max(clear, starts[n_int - 1]) + back + startup
            g_end[n_int] = _OPEN
            g_rate[n_int] = rmax[lane]
            m = n_int + 1
        total += lane_delay(eta, eta_ptr[lane], eta_ptr[lane + 1], g_start, g_end, g_rate, m, headway)
    return total


@njit(cache=True)
def _tally(c, d0, k1, stay, switch_to):  # pragma: no cover - njit
    """Count schedule cost ``c``: a stay when it keeps the green a while, else a switch to ``k1``."""
    if d0 > 0:
        return min(stay, c)
    if c < switch_to[k1]:
        switch_to[k1] = c
    return stay


@njit(cache=True)
def best_move(cur, elapsed, min_g, max_g, inter, rate, eta_ptr, eta, headway, horizon, step, startup,
              switch_to):  # pragma: no cover - njit (reference: best_move_reference)
    """The schedule decision of one signal (:func:`best_move_reference`), compiled."""
    n = min_g.shape[0]
    n_lanes = rate.shape[1]
    rmax = np.zeros(n_lanes)
    for k in range(n):
        for lane in range(n_lanes):
            rmax[lane] = max(rmax[lane], rate[k, lane])
    back = 0.0
    for a in range(n):
        for b in range(n):
            back = max(back, inter[a, b])
    seq = np.zeros(3, dtype=np.int64)
    starts = np.zeros(3)
    ends = np.zeros(3)
    stay = np.inf
    switch_to[:] = np.inf
    d0_max = min(horizon, max(max_g[cur] - elapsed, 0.0))
    d0 = 0.0
    last_d0 = False
    while not last_d0:
        if d0 >= d0_max - 1e-9:
            d0 = d0_max
            last_d0 = True
        for k1 in range(n):
            if k1 == cur:
                continue
            s1 = d0 + inter[cur, k1]
            seq[0] = cur
            starts[0] = 0.0
            ends[0] = d0
            if s1 >= horizon:
                c = schedule_delay(eta_ptr, eta, rate, rmax, seq, starts, ends, 1, headway, startup, back, horizon)
                stay = _tally(c, d0, k1, stay, switch_to)
                continue
            d1 = min_g[k1]
            while True:
                e1 = min(s1 + d1, horizon)
                seq[1] = k1
                starts[1] = s1
                ends[1] = e1
                two = False
                for k2 in range(n):
                    if k2 == k1:
                        continue
                    s2 = e1 + inter[k1, k2]
                    if s2 < horizon:
                        seq[2] = k2
                        starts[2] = s2
                        ends[2] = horizon
                        c = schedule_delay(eta_ptr, eta, rate, rmax, seq, starts, ends, 3, headway, startup, back,
                                           horizon)
                        stay = _tally(c, d0, k1, stay, switch_to)
                    else:
                        two = True
                if two:
                    c = schedule_delay(eta_ptr, eta, rate, rmax, seq, starts, ends, 2, headway, startup, back,
                                       horizon)
                    stay = _tally(c, d0, k1, stay, switch_to)
                if e1 >= horizon:
                    break
                d1 += 2.0 * step
        d0 += step
    if d0_max >= horizon - 1e-9:
        seq[0] = cur
        starts[0] = 0.0
        ends[0] = horizon
        stay = min(stay, schedule_delay(eta_ptr, eta, rate, rmax, seq, starts, ends, 1, headway, startup, back,
                                        horizon))
    best = -1
    for k in range(n):
        if switch_to[k] < np.inf and (best < 0 or switch_to[k] < switch_to[best]):
            best = k
    switch = switch_to[best] if best >= 0 else np.inf
    if max_g[cur] - elapsed <= 0.0 or switch < stay:
        return best, stay, switch
    return -1, stay, switch


# -- the controller -----------------------------------------------------------------------------------

@register
class ScheduleController(PressureController):
    """Schedule-driven control: each second, the stage schedule giving the vehicles seen the least delay."""

    name = "schedule"
    stage_design_default: ClassVar[str] = "best"
    extra_options = tuple(SCHEDULE_DEFAULTS)

    def _opts(self) -> dict[str, Any]:
        out = {**SCHEDULE_DEFAULTS, **super()._opts()}
        if "e2_length_m" not in self.options:
            out["e2_length_m"] = SCHEDULE_ZONE_M
        for k in ("horizon_s", "headway_s", "permitted_rate", "eta_speed_mps"):
            if out[k] <= 0:
                raise ScenarioError(f"controller {self.name!r}: option {k!r} must be > 0, got {out[k]!r}")
        if out["permitted_rate"] > 1:
            raise ScenarioError(f"controller {self.name!r}: option 'permitted_rate' must be in (0, 1], "
                                f"got {out['permitted_rate']!r}")
        if out["horizon_s"] > MAX_HORIZON_S:  # the schedules compared grow with its square
            raise ScenarioError(f"controller {self.name!r}: option 'horizon_s' must be at most {MAX_HORIZON_S:g} s, "
                                f"got {out['horizon_s']!r}")
        return out

    def prepare(self, ctx: RunSpec) -> list[Path]:
        out = super().prepare(ctx)
        lay = self.layout
        first = {sid: int(lay.link_offsets[r]) for r, sid in enumerate(lay.signals)}
        rho = float(self.opts["permitted_rate"])
        self._lanes: list[np.ndarray] = []  # per switcher signal: its approach lane rows that some stage stops
        self._rate: list[np.ndarray] = []  # per signal: stages × those lanes, the discharge rate
        self._inter: list[np.ndarray] = []  # per signal: stages × stages, the intergreen (s)
        self._gains: list[np.ndarray] = []  # per signal: stages × stages × lanes, a link of the lane turns green
        # per signal: its lanes queued by link, by column of ``_lanes``: (link index -> column, stages × links rates)
        self._split: list[dict[int, tuple[dict[int, int], np.ndarray]]] = []
        self._min_g: list[np.ndarray] = []  # per signal: each stage's minimum green (s)
        self._max_g: list[np.ndarray] = []  # per signal: each stage's maximum green (s)
        for i, (sid, st) in enumerate(zip(self.switcher.signals, self.switcher.stages, strict=True)):
            f = first.get(sid)
            sig = self.network.signals[sid]
            links_of: dict[int, list[int]] = {}
            if f is not None:
                for m in sig.movements:
                    j = m.link_index
                    if not m.is_used or j >= sig.n_links:
                        continue
                    lanes = [int(x) for x in lay.pair_from[lay.pair_ptr[f + j]:lay.pair_ptr[f + j + 1]] if x >= 0]
                    for x in lanes:
                        if j not in links_of.setdefault(x, []):  # a link counts once per lane
                            links_of[x].append(j)
            rows = sorted(links_of)
            n = st.n_stages
            # per stage, lane and link of the lane: its rate (1 for G, rho for g, 0 for red)
            per_link = [[[1.0 if j < len(state) and state[j] == PRIORITY_GREEN
                          else rho if j < len(state) and state[j] in GREEN else 0.0 for j in links_of[r]]
                         for r in rows] for state in st.states]
            green = [[[v > 0.0 for v in lane] for lane in stage] for stage in per_link]
            all_green = np.array([[all(lane) for lane in stage] for stage in green], dtype=bool).reshape(n, len(rows))
            # a lane discharges at the share of its links green; but one whose links some stage
            # shows all green only while all are (the vehicle at its head may want any of them)
            rate = np.array([[sum(lane) / len(lane) for lane in stage] for stage in per_link]).reshape(n, len(rows))
            whole = all_green.any(axis=0)
            rate[:, whole] *= all_green[:, whole]
            # a lane whose links are green in every stage loses nothing by a switch, one red in all
            # gains nothing; one with a link red in some stage decides (a left turner waiting at its
            # head holds up the through vehicles behind it)
            keep = np.flatnonzero(~all_green.all(axis=0) & (rate > 0).any(axis=0))
            # gains[cur, k, lane]: stage k shows green a link of the lane that stage cur shows red
            gains = np.zeros((n, n, len(keep)), dtype=bool)
            for cur in range(n):
                for k in range(n):
                    for x, col in enumerate(keep.tolist()):
                        pairs = zip(green[k][col], green[cur][col], strict=True)
                        gains[cur, k, x] = cur != k and any(gk and not gc for gk, gc in pairs)
            # a lane whose links the stages treat differently: with ``vehicle_links``, queues by
            # the links its vehicles will take (see :meth:`arrivals`); the whole-lane model stays
            # for when its zone is flagged
            split = np.array([self.opts["vehicle_links"] > 0 and len({tuple(green[k][col][y] for k in range(n))
                                                                       for y in range(len(links_of[rows[col]]))}) > 1
                              for col in keep.tolist()], dtype=bool)
            self._split.append({x: ({j: y for y, j in enumerate(links_of[rows[col]])},
                                    np.array([per_link[k][col] for k in range(n)], dtype=np.float64))
                                for x, col in enumerate(keep.tolist()) if split[x]})
            self._lanes.append(np.array(rows, dtype=np.int64)[keep])
            self._rate.append(np.ascontiguousarray(rate[:, keep]))
            self._gains.append(gains)
            inter = np.array([st.lost_time_s(a, b) if a != b else 0.0 for a in range(n) for b in range(n)],
                             dtype=np.float64).reshape(n, n)
            if n >= 2 and inter.max() >= self.opts["horizon_s"]:
                raise ScenarioError(
                    f"controller {self.name!r}: option 'horizon_s' ({self.opts['horizon_s']:g} s) must be longer than "
                    f"every intergreen; signal {sid!r} of {ctx.net_file} shows {inter.max():g} s between two stages")
            self._inter.append(inter)
            a = int(self.stage_offsets[i])
            self._min_g.append(np.ascontiguousarray(st.min_green_s, dtype=np.float64))
            self._max_g.append(np.ascontiguousarray(self.max_green[a:a + n], dtype=np.float64))
        self.forced = 0
        return out

    def lane_model(self, signal: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        """What the schedules of ``signal`` assume: its approach lanes that decide, their
        discharge rates per stage (stages × lanes, shares of the saturation flow) and which stages
        a vehicle on each lane calls from each stage (stages × stages × lanes), each lane as a
        whole. With ``vehicle_links``, the lanes in :meth:`split_lanes` are queued by their
        vehicles' links instead while their zone is healthy (:meth:`arrivals`)."""
        i = self.switcher.signals.index(signal)
        return [self.layout.lanes[r] for r in self._lanes[i]], self._rate[i].copy(), self._gains[i].copy()

    def split_lanes(self, signal: str) -> list[str]:
        """The approach lanes of ``signal`` queued by their vehicles' links (``vehicle_links``)."""
        i = self.switcher.signals.index(signal)
        return [self.layout.lanes[self._lanes[i][x]] for x in self._split[i]]

    def arrivals(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Signal row ``i``'s vehicles as the kernel takes them, and the queues' rates and calls.

        Per lane of ``self._lanes[i]``, the earliest stop-line times (s from now, sorted; CSR
        ``(ptr, eta)``) of the vehicles in its zone (:meth:`DetectorReader.zone_vehicles`, faults
        injected); a lane whose zone the plausibility checks flag: its queue estimate
        (``unknown_queue_veh`` without one) standing at the stop line. A lane whose links the stages
        treat differently (with ``vehicle_links``) is queued instead by what its vehicles need: each
        vehicle the link it will take (SUMO's next signal link: route knowledge) and the links of
        the vehicles standing ahead of it, which it cannot pass; one queue per such set, discharging
        at its slowest link's rate while they are all green (or, where no stage shows them all, its
        own link's). Returns ``(ptr, eta, rate, gains)``: ``rate`` stages × queues, ``gains`` stages
        × stages × queues (stage k shows green what the queue needs and stage cur does not)."""
        reader = self.reader
        v_min = float(self.opts["eta_speed_mps"])
        split, sid = self._split[i], self.switcher.signals[i]
        per: list[np.ndarray] = []
        extra: list[np.ndarray] = []  # the split lanes' queues, after the others
        extra_rate: list[np.ndarray] = []
        keep = np.ones(len(self._lanes[i]), dtype=bool)
        for x, r in enumerate(self._lanes[i].tolist()):
            if reader.e2_ok[r] and x in split:
                keep[x] = False
                col_of, lrate = split[x]
                groups: dict[tuple[int, ...], list[float]] = {}
                ahead: set[int] = set()
                for vid, d, v in sorted(reader.zone_tracks(self.sim, int(r)), key=lambda a: a[1]):
                    own = self._next_link(vid, sid) if vid else -1
                    if own not in col_of:
                        if not vid:  # a phantom of a stuck zone: it counts as the whole lane does
                            groups.setdefault((), []).append(d / max(v, v_min))
                        continue
                    need = tuple(sorted({col_of[own]} | ahead))
                    if not (lrate[:, list(need)].min(axis=1) > 0).any():
                        need = (col_of[own],)  # no stage shows them all: it waits for its own link
                    groups.setdefault(need, []).append(d / max(v, v_min))
                    if v < 1.0:
                        ahead.add(col_of[own])
                for need, etas in groups.items():
                    col = lrate[:, list(need)].min(axis=1) if need else self._rate[i][:, x]
                    if (col > 0).all() or not (col > 0).any():
                        continue  # every stage serves it (it decides nothing), or none
                    extra_rate.append(col)
                    extra.append(np.sort(np.array(etas, dtype=np.float64)))
            elif reader.e2_ok[r]:
                seen = reader.zone_vehicles(self.sim, int(r))
                per.append(np.sort(np.array([d / max(v, v_min) for d, v in seen], dtype=np.float64)))
            else:  # as many as the estimate says (one while one stands on the loop), at most what the zone holds
                q = float(reader.queue[r])
                q = float(self.opts["unknown_queue_veh"]) if math.isnan(q) else max(q, float(reader.e1_occupied[r]))
                per.append(np.zeros(round(min(q, float(reader.capacity[r])))))
        per += extra
        rate, gains = self._rate[i][:, keep], self._gains[i][:, :, keep]
        if extra_rate:
            cols = np.array(extra_rate).T
            n = rate.shape[0]
            on = cols > 0
            g = on[None, :, :] & ~on[:, None, :] & ~np.eye(n, dtype=bool)[:, :, None]
            rate, gains = np.concatenate([rate, cols], axis=1), np.concatenate([gains, g], axis=2)
        ptr = np.zeros(len(per) + 1, dtype=np.int64)
        ptr[1:] = np.cumsum([len(x) for x in per])
        return ptr, (np.concatenate(per) if per else np.zeros(0)), np.ascontiguousarray(rate), gains

    def _next_link(self, vid: str, sid: str) -> int:
        """The link index of signal ``sid`` vehicle ``vid`` will take (SUMO's next signals), -1
        where SUMO names none."""
        for tls, link, _dist, _state in self.sim.conn.vehicle.getNextTLS(vid):
            if tls == sid:
                return int(link)
        return -1

    def decide(self, t: float, *, fresh: bool) -> None:
        if not fresh:
            return
        sw, o = self.switcher, self.opts
        recall = float(o["recall_s"])
        for i in np.flatnonzero(sw.ready(t) & (sw.pending < 0)):
            st = sw.stages[i]
            if st.n_stages < 2:
                continue
            cur, a = int(sw.stage[i]), int(self.stage_offsets[i])
            ptr, eta, rate, gains = self.arrivals(int(i))
            # stages with a call: a vehicle on a queue they serve and the current green does not
            seen = np.diff(ptr) > 0
            called = (gains[cur] & seen).any(axis=1)
            waited = t - self.last_served[a:a + st.n_stages]
            due = called & (waited >= self.max_red[i])
            if recall > 0:
                due |= waited >= recall
            due[cur] = False
            starving = np.flatnonzero(due)
            if starving.size:
                nxt = int(starving[np.argmax(waited[starving])])
                self.forced += 1
            else:
                elapsed = float(t - sw.green_start_s[i])
                switch_to = np.empty(st.n_stages)
                nxt, _, _ = best_move(cur, elapsed, self._min_g[i], self._max_g[i], self._inter[i], rate, ptr, eta,
                                      float(o["headway_s"]), float(o["horizon_s"]), 1.0, float(o["startup_s"]),
                                      switch_to)
                if elapsed >= float(self._max_g[i][cur]) - 1e-9:
                    # at its maximum green: the cheapest switch to a stage with a vehicle waiting,
                    # or no yellow at all for nobody (the green rests)
                    nxt = int(np.flatnonzero(called)[np.argmin(switch_to[called])]) if called.any() else -1
            if nxt >= 0:
                sw.request(int(i), int(nxt))
                self.switches += 1

    def finish(self, ctx: RunSpec) -> dict[str, Any]:
        return {**super().finish(ctx), "starved_stages_served": self.forced}
