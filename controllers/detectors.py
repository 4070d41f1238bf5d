"""Lane detectors placed automatically on every signalised approach, read in batches, with faults.

Nobody writes per-signal detector tables: :func:`place_detectors` walks the signals' links and
puts, on every vehicle lane that enters a signal,

* an induction loop (SUMO ``e1``) ``e1_distance_m`` before the stop line, and
* a lane-area detector (``e2``) over the last ``e2_length_m`` of the lane (clipped to the lane:
  a lane shorter than the detector is covered whole),

and an ``e2`` on every lane a signal's links lead into (downstream occupancy), where that lane
has none yet. Joined junction clusters and short lanes need nothing special: each link's own
from/to lanes are used and every position is clipped to the lane's length from the net file.

:class:`DetectorReader` polls them when the controller asks (libsumo evaluates a subscription
at every step, which costs more than reading at decision times), giving flat
numpy arrays per lane and per link (``link_queue_up``, ``link_queue_down``...). Controllers see
detectors and signal states; only :meth:`DetectorReader.zone_tracks` (a tracking camera or radar
over a zone) names the vehicles in a zone, and ``schedule`` asks SUMO which link each of them on
a shared lane will take: route knowledge that, in the street, turn indicators give near the
stop line and connected vehicles or a navigation feed further out.

Faults (:class:`DetectorFault`): ``missing`` detectors are not written at all; ``stuck_on``
ones report a full zone / an occupied loop, ``stuck_off`` ones report nothing, from ``start_s``
for ``duration_s``. The reader's plausibility checks flag faulty detectors (a loop occupied for
``stuck_on_s``, a loop silent while its lane's e2 stays busy for ``stuck_off_s``, an e2 empty
while its own lane's loop counts vehicles) and fall back: a lane whose e2 is faulty estimates
its queue from its loop (arrival rate × time since the last vehicle crossed), a lane with both
faulty reports NaN, which controllers treat with fixed min/max behaviour.

A lane whose loop and zone both go dead agree with each other (an empty lane), so no check
above sees it; a controller that serves only lanes with vehicles would then never serve it (on
SUMO's ``cross`` junction its vehicles waited until SUMO teleported them). The *silence* check
(NTCIP 1202's "no activity" diagnostic, with a threshold from the lane's own traffic) finds it:
a lane whose loop has counted ``silent_expected_veh`` (10) vehicles and which then shows
nothing, on loop or zone, for ``silent_expected_veh`` of its mean headways so far (at least
``silent_min_s``, 240 s; Poisson traffic is that quiet with probability e⁻¹⁰ ≈ 5·10⁻⁵) is taken
as silent: both its detectors read as faulty (its queue NaN, so its stages are still served)
until either shows a vehicle again, and the fault log says ``silent``. A lane dead from the
start, or one that never had traffic, is not told apart from an empty one. The thresholds were
set on healthy detectors under ``max_pressure`` (one hour, seed 1): 6 vehicles / 180 s took 8
lanes of the Luxembourg district and 5 of DRT's for silent (random-trip demand comes in
bursts) and cost 37.2 → 38.0 s/veh on Luxembourg; 8 / 240 s still 6 lanes on Luxembourg;
10 / 240 s none there, on DRT or on fkk_in_random.

Controller option ``detector_faults`` (a list of tables)::

    detector_faults = [
      {kind = "stuck_on", detectors = "e2", share = 0.2, start_s = 300, duration_s = 600},
      {kind = "missing", ids = ["gwe1_A0B0_0"]},
    ]

``kind`` is ``missing`` | ``stuck_on`` | ``stuck_off``; ``ids`` names detectors, otherwise
``share`` (0..1] of the ``detectors`` (``e1`` | ``e2`` | ``all``) is drawn with ``seed``
(default: the run's seed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import quoteattr

import numpy as np
import scipy.sparse as sp

from greenwave._xml import open_xml
from greenwave.engine.results import write_text_atomic
from greenwave.errors import NetworkError, ScenarioError

if TYPE_CHECKING:
    from greenwave.engine.session import SumoSession
    from greenwave.networks.model import RoadNetwork

__all__ = [
    "DetectorFault",
    "DetectorLayout",
    "DetectorReader",
    "lane_lengths",
    "parse_faults",
    "place_detectors",
]

FAULT_KINDS = ("missing", "stuck_on", "stuck_off")
#: Space one queued vehicle takes, m (5 m car + 2.5 m gap): zone capacity = length / this.
VEHICLE_SPACE_M = 7.5


def lane_lengths(net_file: str | Path, wanted: set[str] | None = None) -> dict[str, float]:
    """Length (m) of every lane (or of the ``wanted`` ones) of a SUMO net file, streamed once."""
    out: dict[str, float] = {}
    try:
        with open_xml(Path(net_file)) as fh:
            for _, el in ET.iterparse(fh, events=("end",)):
                if el.tag == "lane":
                    lid = el.get("id", "")
                    if wanted is None or lid in wanted:
                        try:
                            out[lid] = float(el.get("length", "nan"))
                        except ValueError:
                            raise NetworkError(f"{net_file}: <lane id={lid!r}> has a non-numeric length") from None
                if el.tag in ("edge", "junction", "connection", "tlLogic", "roundabout"):
                    el.clear()  # streamed: keep nothing of the parsed tree
    except (OSError, ET.ParseError, EOFError) as exc:
        raise NetworkError(f"{net_file}: cannot read lanes ({exc})") from exc
    return out


@dataclass(frozen=True)
class DetectorLayout:
    """Where the detectors are, and how lanes map to signals' links.

    Lane rows: ``lanes[r]`` with ``e1_ids[r]`` ("" on downstream-only lanes) and ``e2_ids[r]``.
    Link rows: signal ``signals[s]`` owns rows ``link_offsets[s]:link_offsets[s + 1]``, row
    ``link_offsets[s] + k`` being its SUMO link index ``k``; ``link_from``/``link_to`` give the
    lane row of the link's from/to lane (-1: pedestrian, unused or internal lane). A link index
    can carry several connections (SUMO lets lanes share one signal index): all its (from, to)
    lane rows are ``pair_from``/``pair_to[pair_ptr[row]:pair_ptr[row + 1]]``, the primary one
    (``link_from``/``link_to``) first.
    """

    lanes: tuple[str, ...]
    lane_length_m: np.ndarray
    approach: np.ndarray
    e1_ids: tuple[str, ...]
    e2_ids: tuple[str, ...]
    e1_pos_m: np.ndarray
    e2_begin_m: np.ndarray
    e2_end_m: np.ndarray
    signals: tuple[str, ...]
    link_offsets: np.ndarray
    link_from: np.ndarray
    link_to: np.ndarray
    pair_ptr: np.ndarray
    pair_from: np.ndarray
    pair_to: np.ndarray
    #: Loops' aggregation period, s: what they count over and what readers take as a period.
    count_period_s: float = 60.0

    @property
    def n_links(self) -> int:
        """Total link rows over all signals."""
        return int(self.link_offsets[-1])

    def all_ids(self) -> tuple[str, ...]:
        """Every detector id (loops first)."""
        return tuple(i for i in self.e1_ids if i) + self.e2_ids

    def write(self, path: Path, *, missing: Sequence[str] = ()) -> Path:
        """Write the SUMO additional file (without the ``missing`` detectors); return ``path``.

        Loops aggregate counts over :attr:`count_period_s` (their output goes nowhere: ``NUL``)."""
        skip = set(missing)
        lines = ["<additional>"]
        for r, lane in enumerate(self.lanes):
            e1 = self.e1_ids[r]
            if e1 and e1 not in skip:
                lines.append(f'    <inductionLoop id={quoteattr(e1)} lane={quoteattr(lane)} '
                             f'pos="{self.e1_pos_m[r]:.2f}" period="{self.count_period_s:g}" file="NUL"/>')
            e2 = self.e2_ids[r]
            if e2 not in skip:
                lines.append(f'    <laneAreaDetector id={quoteattr(e2)} lane={quoteattr(lane)} '
                             f'pos="{self.e2_begin_m[r]:.2f}" endPos="{self.e2_end_m[r]:.2f}" '
                             f'period="86400" file="NUL"/>')
        lines.append("</additional>")
        write_text_atomic("\n".join(lines) + "\n", path)
        return path


def place_detectors(
    network: RoadNetwork,
    signal_ids: Sequence[str] | None = None,
    *,
    e1_distance_m: float = 2.0,
    e2_length_m: float = 80.0,
    prefix: str = "gw",
) -> DetectorLayout:
    """Detectors for every vehicle approach lane (e1 + e2) and downstream lane (e2) of signals.

    Parameters
    ----------
    network
        The run's network (read from its ``.net.xml``; lane lengths are read from there too).
    signal_ids
        Signals to equip; default all with vehicle links.
    e1_distance_m
        Distance of the induction loop before the stop line, m.
    e2_length_m
        Length of the lane-area detector ending at the stop line, m (clipped to the lane).
    prefix
        Detector ids are ``<prefix>e1_<lane>`` / ``<prefix>e2_<lane>``.
    """
    if not (e1_distance_m >= 0 and e2_length_m > 0):
        raise ScenarioError(f"need e1_distance_m >= 0 and e2_length_m > 0, got {e1_distance_m}, {e2_length_m}")
    ids = sorted(network.signals) if signal_ids is None else list(signal_ids)
    lane_row: dict[str, int] = {}
    approach: list[bool] = []
    per_signal: list[tuple[str, list[list[tuple[str, str]]]]] = []
    for sid in ids:
        sig = network.signals[sid]
        links = []
        for m in sig.movements:  # every connection on the link index, the primary one first
            pairs = [(x.from_lane, x.to_lane) for x in (m, *m.merged)
                     if x.is_used and not x.is_pedestrian and not x.from_lane.startswith(":")]
            links.append(list(dict.fromkeys(pairs)))
        per_signal.append((sid, links))
        for pairs in links:
            for frm, _ in pairs:
                if frm not in lane_row:
                    lane_row[frm] = len(lane_row)
                    approach.append(True)
                else:
                    approach[lane_row[frm]] = True
    for _, links in per_signal:
        for pairs in links:
            for _, to in pairs:
                if to and not to.startswith(":") and to not in lane_row:
                    lane_row[to] = len(lane_row)
                    approach.append(False)
    lanes = tuple(lane_row)
    lengths = lane_lengths(network.path, set(lanes))
    missing = [lane for lane in lanes if lane not in lengths]
    if missing:
        raise NetworkError(f"{network.path}: lanes {missing[:5]} used by signal links are not in the file")
    length = np.array([lengths[lane] for lane in lanes], dtype=np.float64)
    appr = np.array(approach, dtype=bool)
    end = np.maximum(length - 0.1, 0.05)  # SUMO wants positions inside the lane
    e1_pos = np.clip(length - e1_distance_m, 0.05, end)
    e2_begin = np.clip(end - e2_length_m, 0.0, np.maximum(end - 0.05, 0.0))
    offsets = [0]
    frm_rows: list[int] = []
    to_rows: list[int] = []
    pair_ptr = [0]
    pair_from: list[int] = []
    pair_to: list[int] = []
    sigs = []
    for sid, links in per_signal:
        if not any(links):
            continue
        sigs.append(sid)
        for pairs in links:
            frm_rows.append(lane_row[pairs[0][0]] if pairs else -1)
            to_rows.append(lane_row.get(pairs[0][1], -1) if pairs else -1)
            for frm, to in pairs:
                pair_from.append(lane_row[frm])
                pair_to.append(lane_row.get(to, -1))
            pair_ptr.append(len(pair_from))
        offsets.append(len(frm_rows))
    return DetectorLayout(
        lanes=lanes,
        lane_length_m=length,
        approach=appr,
        e1_ids=tuple(f"{prefix}e1_{lane}" if appr[r] else "" for r, lane in enumerate(lanes)),
        e2_ids=tuple(f"{prefix}e2_{lane}" for lane in lanes),
        e1_pos_m=e1_pos,
        e2_begin_m=e2_begin,
        e2_end_m=end,
        signals=tuple(sigs),
        link_offsets=np.array(offsets, dtype=np.int64),
        link_from=np.array(frm_rows, dtype=np.int64),
        link_to=np.array(to_rows, dtype=np.int64),
        pair_ptr=np.array(pair_ptr, dtype=np.int64),
        pair_from=np.array(pair_from, dtype=np.int64),
        pair_to=np.array(pair_to, dtype=np.int64),
    )


# ------------------------------------------------------------------------------------------
# faults


@dataclass(frozen=True)
class DetectorFault:
    """A detector fault: ``kind`` on ``ids`` (resolved before the run) from ``start_s`` on."""

    kind: str
    ids: tuple[str, ...]
    start_s: float = 0.0
    duration_s: float = math.inf


def parse_faults(
    raw: Any, layout: DetectorLayout, *, seed: int, where: str = "detector_faults"
) -> list[DetectorFault]:
    """Validate the ``detector_faults`` option and draw the affected detectors with ``seed``."""
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        raise ScenarioError(f"{where}: must be a list of tables, got {type(raw).__name__}")
    allowed = {"kind", "ids", "share", "detectors", "start_s", "duration_s", "seed"}
    known = set(layout.all_ids())
    out = []
    for n, item in enumerate(raw):
        w = f"{where}[{n}]"
        if not isinstance(item, Mapping):
            raise ScenarioError(f"{w}: must be a table")
        unknown = sorted(set(item) - allowed)
        if unknown:
            raise ScenarioError(f"{w}: unknown key(s) {unknown}; valid: {sorted(allowed)}")
        kind = item.get("kind")
        if kind not in FAULT_KINDS:
            raise ScenarioError(f"{w}: 'kind' must be one of {FAULT_KINDS}, got {kind!r}")
        start = float(item.get("start_s", 0.0))
        duration = float(item.get("duration_s", math.inf))
        if not (start >= 0 and duration > 0):
            raise ScenarioError(f"{w}: need start_s >= 0 and duration_s > 0, got {start}, {duration}")
        if kind == "missing" and (start > 0 or math.isfinite(duration)):
            raise ScenarioError(f"{w}: a 'missing' detector is missing for the whole run; "
                                "leave out start_s and duration_s")
        if "ids" in item:
            ids = item["ids"]
            if not isinstance(ids, (list, tuple)) or not all(isinstance(i, str) for i in ids):
                raise ScenarioError(f"{w}: 'ids' must be a list of detector ids")
            bad = sorted(set(ids) - known)
            if bad:
                raise ScenarioError(f"{w}: unknown detector ids {bad[:5]}; ids look like {sorted(known)[:3]}")
            chosen = tuple(ids)
        else:
            share = item.get("share")
            if not isinstance(share, (int, float)) or not 0 < share <= 1:
                raise ScenarioError(f"{w}: needs 'ids' or a 'share' in (0, 1], got {share!r}")
            which = item.get("detectors", "all")
            if which not in ("e1", "e2", "all"):
                raise ScenarioError(f"{w}: 'detectors' must be 'e1', 'e2' or 'all', got {which!r}")
            pool = [i for i in layout.e1_ids if i] if which == "e1" else (
                list(layout.e2_ids) if which == "e2" else list(layout.all_ids()))
            if not pool:
                raise ScenarioError(f"{w}: the network has no {which} detectors to fail")
            rng = np.random.default_rng([int(item.get("seed", seed)), n])
            k = max(1, round(share * len(pool)))
            chosen = tuple(sorted(rng.choice(pool, size=k, replace=False).tolist()))
        out.append(DetectorFault(kind=str(kind), ids=chosen, start_s=start, duration_s=duration))
    return out


# ------------------------------------------------------------------------------------------
# reading


class DetectorReader:
    """Batched reads of a layout's detectors, fault injection, plausibility checks, estimates.

    Call :meth:`update` whenever the controller wants fresh values (every step, or only at its
    decision times: values are the last step's, times since detection cover the gap). After it,
    per lane row (arrays of ``len(layout.lanes)``):

    ``e1_since_s`` s since the loop last detected a vehicle; ``e1_occupied`` 1 while a vehicle
    is on the loop (time since detection 0), else 0; ``e1_interval_count`` vehicles over the
    loop's last complete ``count_period_s``; ``e2_vehicles`` vehicles in the zone; ``e2_occupancy``
    (0..1); ``e1_ok`` / ``e2_ok`` detector believed healthy; ``queue`` the best queue estimate in
    vehicles (NaN: no usable detector); ``flow_vph`` smoothed loop count rate.

    Per link row: :attr:`up_matrix` ``@ queue`` shares each from lane's queue among the
    connections leaving it, :attr:`down_matrix` does the same for their to lanes.
    """

    def __init__(
        self,
        layout: DetectorLayout,
        faults: Sequence[DetectorFault] = (),
        *,
        stuck_on_s: float = 300.0,
        stuck_off_s: float = 600.0,
        flow_window_s: float = 300.0,
        slow_read_s: float = 5.0,
        silent_min_s: float = 240.0,
        silent_expected_veh: float = 10.0,
    ) -> None:
        self.layout = layout
        self.faults = list(faults)
        self.stuck_on_s = stuck_on_s
        self.stuck_off_s = stuck_off_s
        self.flow_window_s = flow_window_s
        self.count_period_s = layout.count_period_s
        self.slow_read_s = slow_read_s
        self.silent_min_s = silent_min_s
        self.silent_expected_veh = silent_expected_veh
        n = len(layout.lanes)
        missing = {i for f in self.faults if f.kind == "missing" for i in f.ids}
        self.missing = missing
        # bool even when empty (a run where every signal is left on its own program)
        self.has_e1 = np.array([bool(i) and i not in missing for i in layout.e1_ids], dtype=bool)
        self.has_e2 = np.array([i not in missing for i in layout.e2_ids], dtype=bool)
        self.capacity = np.maximum(1.0, (layout.e2_end_m - layout.e2_begin_m) / VEHICLE_SPACE_M)
        row1 = {i: r for r, i in enumerate(layout.e1_ids) if i}
        row2 = {i: r for r, i in enumerate(layout.e2_ids)}
        self._row1, self._row2 = row1, row2
        self._timed: list[tuple[DetectorFault, np.ndarray, np.ndarray]] = []
        for f in self.faults:
            if f.kind == "missing":
                continue
            r1 = np.array([row1[i] for i in f.ids if i in row1], dtype=np.int64)
            r2 = np.array([row2[i] for i in f.ids if i in row2], dtype=np.int64)
            self._timed.append((f, r1, r2))
        z = np.zeros(n)
        self.e1_since_s, self.e1_occupied, self.e2_vehicles = z.copy(), z.copy(), z.copy()
        self.e1_interval_count = z.copy()
        self.e2_occupancy = z.copy()
        self.e1_ok = self.has_e1.copy()
        self.e2_ok = self.has_e2.copy()
        self.queue = z.copy()
        self.flow_vph = z.copy()
        self._e1_full_s = z.copy()  # s the loop has been fully occupied
        self._e2_busy_s = z.copy()  # s the e2 had vehicles since the loop last counted
        self._e2_blind = z.copy()  # count periods in a row with loop counts but a zone never busy
        self._e2_full_s = z.copy()
        self._zone_seen = np.zeros(n, dtype=bool)  # the zone showed a vehicle in this count period
        self._counted = z.copy()  # vehicles the loop counted since the start
        self._last_seen = z.copy()  # last time loop or zone showed a vehicle
        self._t0 = 0.0
        self.silent = np.zeros(n, dtype=bool)  # loop and zone quiet for far longer than the lane's traffic explains
        self._t = -math.inf
        self._t_slow = -math.inf
        # every connection's lanes: each from lane's queue split among the connections leaving it
        lay = layout
        rows = np.repeat(np.arange(lay.n_links), np.diff(lay.pair_ptr))
        pair_uses = np.bincount(lay.pair_from, minlength=n).astype(np.float64)
        w = 1.0 / np.maximum(pair_uses[lay.pair_from], 1.0)
        shape = (lay.n_links, n)
        self._up_matrix = sp.csr_matrix((w, (rows, lay.pair_from)), shape=shape)
        down = lay.pair_to >= 0
        self._down_matrix = sp.csr_matrix((w[down], (rows[down], lay.pair_to[down])), shape=shape)
        self.fault_log: list[tuple[float, str, str]] = []

    @property
    def up_matrix(self) -> sp.csr_matrix:
        """``n_links × n_lanes``: link row ← its connections' from lanes, each lane's weight
        1 / (connections leaving it), so ``up_matrix @ queue`` shares every lane's queue among
        the connections using it (all connections of a link index, not only the primary)."""
        return self._up_matrix

    @property
    def down_matrix(self) -> sp.csr_matrix:
        """As :attr:`up_matrix` for the connections' to lanes (weighted by their from lane's share)."""
        return self._down_matrix

    def start(self, sim: SumoSession) -> None:
        """Get ready to read every present detector (call once after SUMO started).

        Detectors are polled when :meth:`update` is called, not subscribed: libsumo evaluates
        every subscribed variable at every step and that cost more (measured on the bundled grid:
        about 3 s per simulated half hour for 288 detectors, against 1–2 s for polling each
        step)."""
        self._ids1 = [d for r, d in enumerate(self.layout.e1_ids) if self.has_e1[r]]
        self._rows1 = np.array([self._row1[d] for d in self._ids1], dtype=np.int64)
        self._ids2 = [d for r, d in enumerate(self.layout.e2_ids) if self.has_e2[r]]
        self._rows2 = np.array([self._row2[d] for d in self._ids2], dtype=np.int64)
        self._period = int(sim.time_s // self.count_period_s)
        self._t = self._t_slow = self._t0 = sim.time_s
        self._slow_due = True
        self.e1_since_s[:] = 0.0
        self._last_seen[:] = sim.time_s

    def update(self, sim: SumoSession) -> None:
        """Read the detectors and refresh diagnostics and estimates.

        Every call reads the zones' vehicle counts (what controllers act on); the loops' times
        since detection and the zones' occupancies, which serve the fallback estimate and the
        plausibility checks, are read every ``slow_read_s``, and the loops' counts once per
        ``count_period_s`` (when SUMO renews them)."""
        t = sim.time_s
        dt = max(t - self._t, 0.0) if math.isfinite(self._t) else 0.0
        self._t = t
        loop, zone = sim.conn.inductionloop, sim.conn.lanearea
        vehicles = zone.getLastStepVehicleNumber
        self.e2_vehicles[self._rows2] = [vehicles(d) for d in self._ids2]
        slow = self._slow_due or t - self._t_slow >= self.slow_read_s - 1e-9
        if slow:
            since, occupancy = loop.getTimeSinceDetection, zone.getLastStepOccupancy
            self.e1_since_s[self._rows1] = [since(d) for d in self._ids1]
            self.e1_occupied[:] = self.has_e1 & (self.e1_since_s <= 0.0)
            self.e2_occupancy[self._rows2] = [occupancy(d) / 100.0 for d in self._ids2]
        period = int(t // self.count_period_s)
        new_period = period != self._period
        if new_period:  # the loops' counts change once per count period
            self._period = period
            count = loop.getLastIntervalVehicleNumber
            self.e1_interval_count[self._rows1] = [count(d) for d in self._ids1]
        self._inject(t)
        if new_period:
            self._counted += self.e1_interval_count
        self._zone_seen |= self.e2_vehicles > 0
        self._last_seen[self.e2_vehicles > 0] = t
        self._e2_busy_s += np.where(self.e2_vehicles > 0, dt, 0.0)
        if new_period:
            self._check_blind()
        if slow:
            self._diagnose(t, t - self._t_slow)
            self._t_slow = t
            self._slow_due = False
        self._estimate(dt)

    def _inject(self, t: float) -> None:
        for f, r1, r2 in self._timed:
            if not f.start_s <= t < f.start_s + f.duration_s:
                continue
            if f.kind == "stuck_on":  # a loop that always sees a vehicle standing on it
                self.e1_since_s[r1], self.e1_occupied[r1], self.e1_interval_count[r1] = 0.0, 1.0, 0.0
                cap = self.capacity[r2]
                self.e2_vehicles[r2], self.e2_occupancy[r2] = cap, 1.0
            else:  # a dead detector: nothing, ever
                self.e1_since_s[r1] = t - f.start_s
                self.e1_occupied[r1], self.e1_interval_count[r1] = 0.0, 0.0
                self.e2_vehicles[r2], self.e2_occupancy[r2] = 0.0, 0.0

    def zone_vehicles(self, sim: SumoSession, r: int) -> list[tuple[float, float]]:
        """(distance to the zone's end in m, speed in m/s) of every vehicle in lane row ``r``'s
        zone, as a camera or radar over the zone reports them, with the faults injected now: a
        dead zone (``stuck_off``, or ``missing``) sees none, a ``stuck_on`` one its capacity
        standing from the stop line back."""
        return [(d, v) for _, d, v in self.zone_tracks(sim, r)]

    def zone_tracks(self, sim: SumoSession, r: int) -> list[tuple[str, float, float]]:
        """:meth:`zone_vehicles` with each vehicle's id, as a tracking camera or radar reports
        it ("" for the phantoms of a ``stuck_on`` zone)."""
        t = sim.time_s
        for f, _, r2 in reversed(self._timed):  # the last fault listed wins, as in what the reader reads
            if f.start_s <= t < f.start_s + f.duration_s and r in r2:
                if f.kind == "stuck_on":
                    return [("", VEHICLE_SPACE_M * n, 0.0) for n in range(int(self.capacity[r]))]
                return []
        if not self.has_e2[r]:
            return []
        # SUMO's lane-area detector also lists a vehicle whose front has left the lane (its back
        # still in the zone), and its position is then on the next lane: it reads as an arrival
        # far back in the zone (493 m on RiLSA 2), for the second or so its back takes to leave.
        # Measured under ``schedule`` (one hour, seed 1, s/veh), against leaving it out: Monaco
        # 83.4 / 86.5, kuehne 10.2 / 10.4, cross 8.7 / 9.0, bs3d 14.9 / 15.3, grid6 376.0 /
        # 405.6, but A10KW 40.6 / 36.8, rilsa1_out 41.5 / 39.9; read at the stop line instead it
        # held greens for nobody (cross 13.7, bs3d 30.6). It stays as the detector reports it
        # until the schedules are tuned without it.
        end = float(self.layout.e2_end_m[r])
        veh = sim.conn.vehicle
        return [(v, max(end - veh.getLanePosition(v), 0.0), veh.getSpeed(v))
                for v in sim.conn.lanearea.getLastStepVehicleIDs(self.layout.e2_ids[r])]

    @property
    def last_slow_read_s(self) -> float:
        """Simulation time of the last read of the loops and the zones' occupancies, s."""
        return self._t_slow

    def _check_blind(self) -> None:
        """At a count period's end: a healthy loop counted vehicles that its zone never showed
        (a zone that shows a vehicle again is cleared; a quiet period changes nothing)."""
        blind = (self.e1_interval_count >= 3) & ~self._zone_seen & self.e1_ok
        self._e2_blind = np.where(self._zone_seen, 0.0, self._e2_blind + blind)
        self._zone_seen[:] = False

    def _diagnose(self, t: float, dt: float) -> None:
        """Plausibility checks over the ``dt`` s since the last ones: flag (and, when the readings
        recover, clear) faulty detectors."""
        counted = self.e1_since_s <= dt + 1e-9
        self._last_seen = np.where(self.has_e1, np.maximum(self._last_seen, t - self.e1_since_s), self._last_seen)
        quiet = t - self._last_seen
        rate = self._counted / np.maximum(self._last_seen - self._t0, self.count_period_s)  # veh/s while seen
        with np.errstate(divide="ignore"):
            enough = quiet >= np.maximum(self.silent_min_s, self.silent_expected_veh / rate)
        silent = self.has_e1 & (self._counted >= self.silent_expected_veh) & enough
        self._e1_full_s = np.where(self.e1_occupied >= 0.999, self._e1_full_s + dt, 0.0)
        self._e2_full_s = np.where(self.e2_occupancy >= 0.999, self._e2_full_s + dt, 0.0)
        self._e2_busy_s = np.where(counted, 0.0, self._e2_busy_s)  # zone busy since the loop counted
        e1_bad = (self._e1_full_s >= self.stuck_on_s) | (
            (self.e1_since_s >= self.stuck_off_s) & (self._e2_busy_s >= 0.5 * self.stuck_off_s))
        e2_bad = (self._e2_full_s >= min(self.stuck_on_s, 60.0)) | (self._e2_blind >= 2)
        new1 = self.has_e1 & ~e1_bad & ~silent
        new2 = self.has_e2 & ~e2_bad & ~silent
        for r in np.flatnonzero(new1 != self.e1_ok):
            self.fault_log.append((t, self.layout.e1_ids[r], "ok" if new1[r] else "silent" if silent[r] else "flagged"))
        for r in np.flatnonzero(new2 != self.e2_ok):
            self.fault_log.append((t, self.layout.e2_ids[r], "ok" if new2[r] else "silent" if silent[r] else "flagged"))
        self.e1_ok, self.e2_ok, self.silent = new1, new2, silent

    def _estimate(self, dt: float) -> None:
        if dt > 0:
            a = min(1.0, dt / self.flow_window_s)
            self.flow_vph += a * (self.e1_interval_count * 3600.0 / self.count_period_s - self.flow_vph)
        # a lane whose e2 is faulty: vehicles arrive at the loop's rate while none crosses it
        from_e1 = np.minimum(self.capacity, self.flow_vph / 3600.0 * self.e1_since_s)
        self.queue = np.where(self.e2_ok, self.e2_vehicles, np.where(self.e1_ok, from_e1, np.nan))
