"""Max-pressure signal control on automatically placed detectors: acyclic and cyclic.

``max_pressure`` (acyclic, Varaiya's max-pressure): every ``decision_interval_s`` each signal
whose current green has run its minimum compares the *pressure* of its stages,

    pressure(stage) = Σ_links w_link · (q_up(link) − β · q_down(link)) / n_lane(link),

where ``q_up`` is the from lane's detected queue (vehicles in its stop-line zone), ``q_down`` the
vehicles in the to lane's zone, ``n_lane`` the number of links leaving the from lane (so a lane
counts once, with its links' mean downstream queue), and ``w_link`` 1 for a priority ``G`` link
and ``permitted_weight`` for a permitted ``g`` link, which must yield (every lane has the same
saturation flow in greenwave's road graph, so a lane's weight is one). It switches to the stage of highest pressure when
that beats the current one by ``threshold_veh``, or when the current green reached its maximum;
a stage with waiting vehicles that has not been served for ``max_red_s`` (at most the signal's
own program cycle: no movement waits longer than the city's plan makes it wait) is served
next; without that bound the short protected-turn stages of four-stage junctions, whose
pressure two lanes can never match the through stages', were served only every 120 s and
their turn bays spilled back into the through lanes. With ``recall_s`` > 0 a stage not shown
for that long is served next whatever its detectors say (a recall, for detectors that may be
dead from the start: the reader's silence check finds only those that die after seeing traffic).
It is off by default because it serves stages nobody uses: on DRT's district (one hour, seed 1),
whose designs give rarely used turns stages of their own, ``max_pressure`` measured 18.7 s/veh
without it, 20.7 with 180 s and 19.6 with 300 s (``max_pressure_cyclic`` 30.9 → 33.5 with
180 s); on RiLSA 1–4, cross, corridor, kuehne, square and bs3d nothing changed. A green
whose queue is still discharging is not cut: while a vehicle crossed the stop-line loop of one of
the stage's priority (``G``) lanes within ``hold_gap_s`` (a vehicle on the loop counts only when it
moves; under ``max_pressure_cyclic`` a standing one counts too) and a vehicle is still in one of
those lanes' zones (``hold_queue_veh``), the stage
holds, up to its maximum green; lanes whose links are green in every stage do not hold it
(ending the stage stops none of them). A permitted (``g``) turn's lane holds it too while a
vehicle moves over its loop (never one standing there, waiting for a gap) and its zone holds
``hold_queue_veh`` (``hold_permitted``, 1; 0: priority lanes only): permitted left turners go
when the opposing queue has cleared, just when the priority lanes gap out, and the stage used
to end on them. Measured on RiLSA example 4 (one hour, seed 1; the left lane ``sm_1``, 185
veh/h against the opposing through traffic): its left turners lost 142 s each under
``max_pressure`` (272 under the cyclic variant), 34 under SUMO's delay-based control of the
same stages and intergreens; with the permitted hold RESCO delay went 34.6 → 27.9 s/veh
(seeds 2–3: 41.5 → 27.2; the cyclic variant 44.2 → 26.8 and 39.4 → 26.3), RiLSA 1 29.1 →
27.9 (seeds 2–3 28.6 → 28.6), rilsa1_out 42.0 → 41.6 / 39.6 → 38.4; it cost RiLSA 3 24.1 →
24.0 / 23.7 → 24.5 (cyclic 23.8 → 24.9 / 24.3 → 25.1), rilsa1_both 41.4 → 42.1 / 39.2 → 38.7
and cross 9.6 → 9.5 / 9.2 → 9.4; corridor, kuehne, square, bs3d, DRT, Luxembourg and
fkk_in_random within 0.3. Without that hold, max-pressure pays a yellow
for every few seconds of green: on SUMO's four-stage ``cross`` junction at 750 veh/h per approach
it switched every 6 s, lost a third of the hour to yellow and left 436 of 1500 vehicles
unfinished (RESCO delay 232 s/veh against 36 for SUMO's actuated control).

``max_pressure_cyclic`` (:mod:`greenwave.controllers.max_pressure_cyclic`) keeps the design's
stage order: at every start of a cycle it splits the cycle (``cycle_s``, default the program's)
in proportion to the stage pressures, within each stage's minimum and maximum green; a split is
the stage's maximum, and a green whose queue has cleared (the hold above released; a vehicle
standing on a loop holds too, as presence detection does) ends at its minimum, as in actuated
control. Split time a green leaves unused goes to the next green that runs (up to its maximum
green and the signal's spare time), across cycle starts too; the time of skipped stages is not
passed on, and a resting green lengthens its cycle. As in actuated control a stage without a
call (no vehicle in the zone of a lane of the links it newly shows green or turns from permitted
to protected; a link without a zone, such as a crossing, always calls) is skipped, and a green
with no conflicting call rests instead of paying a yellow for nobody. A cycle starts where the
order wraps (stage 0, or the first called stage after it).

Both drive the signals through :class:`~greenwave.controllers.switching.StageSwitcher` (yellow,
all-red and minimum greens always kept) and read only detectors
(:mod:`greenwave.controllers.detectors`) and signal states. Lanes whose detectors are faulty fall
back to their loop's estimate; lanes with no usable detector count ``unknown_queue_veh``, so
their stages are still served, within min/max green.

Options (``[controller_options.max_pressure]``): ``decision_interval_s`` (1), ``min_green_s``
(5, for stages without ``minDur``), ``max_green_s`` (60), ``threshold_veh`` (0.5), ``max_red_s``
(120), ``recall_s`` (0: no recall), ``hold_gap_s`` (2.5; 0 turns the hold off),
``hold_queue_veh`` (the hold and the gap-out need at least this many vehicles in a priority
lane's zone: 1), ``hold_per_lane`` (0; 1: in the zone of the lane whose loop was crossed),
``hold_permitted`` (1: permitted turns moving over their loops hold the green too),
``hold_speed_share`` (``max_pressure`` 0.85, the cyclic variant 0: off): a zone counts for the
hold only while its vehicles move below that share of the lane's speed limit, so arrivals at
free speed do not hold a green that has served its queue,
``downstream_weight`` (β, 0.5), for the acyclic variant ``initial_per_veh_s`` (0: off) and
``max_initial_s`` (30): a variable initial green as in actuated control, no green ends before
``initial_per_veh_s`` per vehicle queued in the longest zone of its priority lanes at its first
decision (at most ``max_initial_s`` and the stage's maximum green),
``permitted_weight`` (1), ``unknown_queue_veh`` (2),
``e1_distance_m`` (2), ``e2_length_m`` (80), ``detector_faults`` (see detectors),
``stage_design`` (which stages each signal runs, :mod:`greenwave.controllers.stage_choice`;
default ``"best"``; the choice goes to
``stage_designs.json``), ``left_alone_programs`` (an additional file: every signal it gives a
``<tlLogic>`` is left alone on that program, one whose ``programID`` SUMO has already loaded for
the light renamed ``<id>_left_alone``: the signals it cannot drive safely, which otherwise run
SUMO's actuated copy of their own program, and any other it names; ``proven`` hands it the
programs its proof chose for the signals where a program beat max_pressure),
and for the cyclic variant ``cycle_s``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numba import njit

from greenwave.controllers.base import Controller, register
from greenwave.controllers.detectors import DetectorReader, parse_faults, place_detectors
from greenwave.controllers.planning import designs_for_run
from greenwave.controllers.plans.safety import write_excluded
from greenwave.controllers.stage_choice import (
    DEFAULT_STAGE_DESIGN,
    check_stage_design_option,
    choice_meta,
    design_signal_stages,
)
from greenwave.controllers.sumo_programs import actuated_programs
from greenwave.controllers.switching import StageSwitcher
from greenwave.controllers.tls_xml import read_programs, write_additional
from greenwave.engine.results import write_text_atomic
from greenwave.engine.run import RunSpec
from greenwave.errors import ScenarioError
from greenwave.networks.signal_states import GREEN, PRIORITY_GREEN

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    from greenwave.engine.session import SumoSession
    from greenwave.networks.model import RoadNetwork

__all__ = ["MaxPressureController", "PressureController", "next_stages", "stage_link_matrix"]

#: Options that are not numbers.
_TEXT_OPTIONS = ("detector_faults", "stage_design", "left_alone_programs")

_DEFAULTS: dict[str, float] = {
    "decision_interval_s": 1.0,
    "min_green_s": 5.0,
    "max_green_s": 60.0,
    "threshold_veh": 0.5,
    "max_red_s": 120.0,
    "recall_s": 0.0,
    "hold_gap_s": 2.5,
    "hold_queue_veh": 0.0,
    "hold_per_lane": 0.0,
    "hold_permitted": 1.0,
    "hold_speed_share": 0.0,
    "downstream_weight": 0.5,
    "permitted_weight": 1.0,
    "unknown_queue_veh": 2.0,
    "e1_distance_m": 2.0,
    "e2_length_m": 80.0,
}


def stage_link_matrix(
    network: RoadNetwork,
    switcher: StageSwitcher,
    link_offsets_by_signal: dict[str, int],
    n_links: int,
    *,
    permitted_weight: float,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sparse ``n_stage_rows × n_links`` weights of each stage's green links, and stage offsets.

    Stage rows of switcher signal ``i`` are ``offsets[i]:offsets[i + 1]``. A ``G`` link weighs 1
    (every lane of the network has the same saturation flow), a ``g`` link ``permitted_weight``.
    """
    rows, cols, vals = [], [], []
    offsets = [0]
    for sid, st in zip(switcher.signals, switcher.stages, strict=True):
        sig = network.signals[sid]
        first = link_offsets_by_signal.get(sid)
        for k, state in enumerate(st.states):
            r = offsets[-1] + k
            if first is None:
                continue
            for j, c in enumerate(state[: sig.n_links]):
                if c in GREEN:
                    rows.append(r)
                    cols.append(first + j)
                    vals.append(1.0 if c == PRIORITY_GREEN else permitted_weight)
        offsets.append(offsets[-1] + st.n_stages)
    mat = sp.csr_matrix((vals, (rows, cols)), shape=(offsets[-1], n_links))
    return mat, np.array(offsets, dtype=np.int64)


class PressureController(Controller):
    """Shared machinery: detectors, switcher, stage pressures."""

    kind = "greenwave"
    cyclic: ClassVar[bool] = False
    extra_options: ClassVar[tuple[str, ...]] = ()
    #: the hold needs a queue of this many vehicles in a zone (0: any discharge holds)
    hold_queue_default: ClassVar[float] = 0.0
    #: a zone holds only while its vehicles' mean speed is below this share of the lane's speed
    #: limit (0: any speed holds)
    hold_speed_default: ClassVar[float] = 0.0
    #: a vehicle standing on a stop-line loop holds the green (presence detection, as in
    #: actuated control); else only one moving over it does
    hold_on_presence: ClassVar[bool] = False
    #: the ``stage_design`` unless the options say otherwise
    stage_design_default: ClassVar[str] = DEFAULT_STAGE_DESIGN

    @classmethod
    def declared_options(cls) -> frozenset[str]:
        return frozenset({*_DEFAULTS, *_TEXT_OPTIONS, *cls.extra_options})

    def _opts(self) -> dict[str, Any]:
        valid = set(_DEFAULTS) | {*_TEXT_OPTIONS, *self.extra_options}
        unknown = sorted(set(self.options) - valid)
        if unknown:
            raise ScenarioError(f"controller {self.name!r}: unknown options {unknown}; valid: {sorted(valid)}")
        out: dict[str, Any] = {**_DEFAULTS, "hold_queue_veh": self.hold_queue_default,
                               "hold_speed_share": self.hold_speed_default}
        out["stage_design"] = check_stage_design_option(self.options.get("stage_design", self.stage_design_default),
                                                        f"controller {self.name!r}")
        left_alone = self.options.get("left_alone_programs")
        if left_alone is not None:
            if not isinstance(left_alone, (str, Path)) or not Path(left_alone).is_file():
                raise ScenarioError(f"controller {self.name!r}: option 'left_alone_programs' must name an existing "
                                    f"additional file with <tlLogic> elements, got {left_alone!r}")
            out["left_alone_programs"] = Path(left_alone)
        for k, v in self.options.items():
            if k in _TEXT_OPTIONS:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ScenarioError(f"controller {self.name!r}: option {k!r} must be a number >= 0, got {v!r}")
            out[k] = float(v)
        if out["min_green_s"] <= 0 or out["max_green_s"] < out["min_green_s"]:
            raise ScenarioError(f"controller {self.name!r}: need 0 < min_green_s <= max_green_s")
        if out["decision_interval_s"] <= 0:
            raise ScenarioError(f"controller {self.name!r}: decision_interval_s must be > 0")
        return out

    def _given_programs(self) -> dict[str, ET.Element]:
        """Signal → its ``<tlLogic>`` in ``left_alone_programs``; a :class:`ScenarioError` naming the
        file and the ids when one names no traffic light of the network."""
        source = self.opts.get("left_alone_programs")
        if source is None:
            return {}
        given = read_programs(source)
        unknown = sorted(set(given) - set(self.network.signals))
        if unknown:
            raise ScenarioError(f"controller {self.name!r}: option 'left_alone_programs' {source}: <tlLogic> ids "
                                f"{unknown} name no traffic light of the network {self.network.path}")
        return given

    def _left_alone(self, ctx: RunSpec, excluded: dict[str, str], given: dict[str, ET.Element]) -> list[Path]:
        """Programs for the signals it leaves alone (``excluded``: signal → why): their
        ``<tlLogic>`` from ``left_alone_programs`` where it has one (``given``), else their own
        program under SUMO's actuated control, as the actuated baseline runs them (left fixed-time
        they cost fkk_in's gneJ21 three times the delay of its approaches under actuated
        control). Listed, with why, in ``excluded_signals.txt``."""
        files: list[Path] = []
        source = self.opts.get("left_alone_programs")
        for sid, el in given.items():
            if el.get("programID", "0") in self.network.signals[sid].programs:  # SUMO refuses a second one
                el.set("programID", f"{el.get('programID', '0')}_left_alone")
            excluded[sid] += f"; it runs program {el.get('programID', '0')!r} of {source}"
        write_excluded(excluded, Path(ctx.workdir) / "excluded_signals.txt",
                       "their stages are not safe, or left_alone_programs gives them a program; they run their "
                       "own program under SUMO's actuated control, or the program named")
        if given:
            files.append(write_additional(list(given.values()), Path(ctx.workdir) / "gw_left_alone.add.xml",
                                          f"programs of the signals {self.name} leaves alone"))
        rest = set(excluded) - set(given)
        if rest:
            files.append(actuated_programs(ctx.net_file, workdir=ctx.workdir, program_id="gw_excluded_actuated",
                                           program_files=ctx.program_files, begin_s=ctx.begin_s, signals=rest))
        return files

    def prepare(self, ctx: RunSpec) -> list[Path]:
        self.opts = self._opts()
        self.ctx = ctx
        self.network = ctx.network()  # the programs SUMO runs: stages come from the active one
        # the stage design each signal runs (stage_design option): its stages and intergreens;
        # without demand the model cannot choose, and a default "best" keeps the own programs
        if not ctx.demand_files and "stage_design" not in self.options and self.opts["stage_design"] == "best":
            self.opts["stage_design"] = "own"
        self.network, self.designs = designs_for_run(
            self.network, self.opts["stage_design"], net_file=Path(ctx.net_file),
            route_files=ctx.demand_files if self.opts["stage_design"] == "own" else ctx.routed_demand(),
            begin_s=ctx.demand_begin_s, end_s=ctx.demand_end_s, workdir=Path(ctx.workdir), seed=ctx.seed,
            route_choice=ctx.route_choice, proof_follows=False)  # it proves nothing in SUMO
        if self.designs:
            write_text_atomic(json.dumps(choice_meta(self.opts["stage_design"], self.designs), indent=1),
                              Path(ctx.workdir) / "stage_designs.json")
        kw = {"default_min_green_s": self.opts["min_green_s"], "default_max_green_s": self.opts["max_green_s"]}
        given = self._given_programs()  # signals it leaves alone on the program given
        self.switcher = StageSwitcher(self.network, [s for s in sorted(self.network.signals) if s not in given],
                                      stages=design_signal_stages(self.network, self.designs, **kw), **kw)
        excluded = {**self.switcher.excluded,
                    **{s: "left_alone_programs gives it a program" for s in sorted(given)}}
        files: list[Path] = []
        if excluded:
            files.extend(self._left_alone(ctx, excluded, given))
        self.layout = place_detectors(self.network, self.switcher.signals,
                                      e1_distance_m=self.opts["e1_distance_m"],
                                      e2_length_m=self.opts["e2_length_m"])
        self.faults = parse_faults(self.options.get("detector_faults"), self.layout, seed=ctx.seed,
                                   where=f"controller {self.name!r} option 'detector_faults'")
        missing = [i for f in self.faults if f.kind == "missing" for i in f.ids]
        path = self.layout.write(Path(ctx.workdir) / "gw_detectors.add.xml", missing=missing)
        offsets = {sid: int(self.layout.link_offsets[r]) for r, sid in enumerate(self.layout.signals)}
        self.W, self.stage_offsets = stage_link_matrix(
            self.network, self.switcher, offsets, self.layout.n_links,
            permitted_weight=self.opts["permitted_weight"])
        self._hold_loops = self._priority_loops(offsets)
        self._permitted_loops = self._priority_loops(offsets, permitted=True)
        n_rows = int(self.stage_offsets[-1])
        self.last_served = np.zeros(n_rows)
        self.max_green = np.concatenate([st.max_green_s for st in self.switcher.stages]) if n_rows else np.zeros(0)
        self.max_red = np.array([min(self.opts["max_red_s"], st.cycle_s) if st.cycle_s > 0 else self.opts["max_red_s"]
                                 for st in self.switcher.stages], dtype=float)
        self.switches = 0
        return [*files, path]

    def _priority_loops(self, offsets: dict[str, int], *, permitted: bool = False) -> list[list[np.ndarray]]:
        """Per switcher signal and stage: the lane rows (with a stop-line loop) of the stage's
        priority ``G`` links (``permitted``: its ``g`` links) that some other stage stops, every
        connection of a link index included. A link green in every stage loses nothing when the
        stage ends, so its traffic does not hold the stage (measured on RiLSA example 2 under its two-stage design: the
        main road's through lanes, green in both stages, crossed their loops every few seconds
        and held each stage to its 60 s maximum; the side road waited 31.5 s/veh)."""
        lay = self.layout
        has_e1 = np.array([bool(d) for d in lay.e1_ids], dtype=bool)
        out = []
        for sid, st in zip(self.switcher.signals, self.switcher.stages, strict=True):
            first = offsets.get(sid)
            n = self.network.signals[sid].n_links
            always = [all(len(s) > j and s[j] in GREEN for s in st.states) for j in range(n)]
            per = []
            for state in st.states:
                rows: set[int] = set()
                if first is not None:
                    for j, c in enumerate(state[:n]):
                        if (c == "g" if permitted else c == PRIORITY_GREEN) and not always[j]:
                            r = first + j
                            rows.update(int(x) for x in lay.pair_from[lay.pair_ptr[r]:lay.pair_ptr[r + 1]] if x >= 0)
                per.append(np.array(sorted(x for x in rows if has_e1[x]), dtype=np.int64))
            out.append(per)
        return out

    def discharging(self, sim: SumoSession, signals: np.ndarray) -> np.ndarray:
        """Whether each of ``signals`` (switcher rows) still discharges a queue on its green: a
        vehicle crossed one of the stage's priority stop-line loops within ``hold_gap_s``, or one
        moves over it now (or stands on it, with ``hold_on_presence``), and a zone of the stage's
        priority lanes (with ``hold_per_lane``, that
        loop's own lane's zone) holds ``hold_queue_veh`` vehicles or more; or, with
        ``hold_permitted``, the same of a permitted (``g``) turn's lane, its own zone holding
        ``hold_queue_veh``, a vehicle standing on its loop never counting. Loops the
        plausibility checks flagged are not trusted."""
        gap, min_queue = self.opts["hold_gap_s"], self.opts["hold_queue_veh"]
        per_lane = self.opts["hold_per_lane"] > 0
        out = np.zeros(len(signals), dtype=bool)
        if gap <= 0:
            return out
        loop = sim.conn.inductionloop
        ids, ok = self.layout.e1_ids, self.reader.e1_ok
        permitted = self.opts["hold_permitted"] > 0

        def crossed(r: int, presence: bool) -> bool:
            """A vehicle crossed loop row ``r`` within the gap, or moves (stands: ``presence``) on it."""
            since = loop.getTimeSinceDetection(ids[r])
            return 0.0 < since < gap or (since <= 0.0 and (presence or loop.getLastStepMeanSpeed(ids[r]) > 1.0))

        zone = np.nan_to_num(self.reader.queue, nan=0.0)  # once: per signal it cost more than the loop reads
        for n, i in enumerate(signals):
            k = int(self.switcher.stage[i])
            if k < 0:
                continue
            rows = self._hold_loops[i][k]
            queue = self._held(sim, zone, rows)
            if not (min_queue > 0 and not (queue >= min_queue).any()):  # short queues: switching costs less
                out[n] = any(crossed(r, self.hold_on_presence) for r, q in zip(rows, queue, strict=True)
                             if ok[r] and not (per_lane and q < min_queue))
            if permitted and not out[n]:  # a permitted turn moving over its loop: never a standing one
                perm = self._permitted_loops[i][k]
                pq = self._held(sim, zone, perm)
                out[n] = any(crossed(r, False) for r, q in zip(perm, pq, strict=True)
                             if ok[r] and not (min_queue > 0 and q < min_queue))
        return out

    def _held(self, sim: SumoSession, zone: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The vehicles of lane rows ``rows``' zones as the hold counts them: none in a zone the
        checks trust whose vehicles move at ``hold_speed_share`` of the lane's speed limit or
        faster (arrivals at free speed, not a queue the red held back)."""
        out = zone[rows]
        share = self.opts["hold_speed_share"]
        if share > 0:
            speed, ids, ok = sim.conn.lanearea.getLastStepMeanSpeed, self.layout.e2_ids, self.reader.e2_ok
            for n, r in enumerate(rows):
                if out[n] > 0 and ok[r] and speed(ids[r]) >= share * self._speed_limit[r]:
                    out[n] = 0.0
        return out

    def start(self, sim: SumoSession) -> None:
        self.sim = sim  # the running session (for subclasses' decisions)
        self.reader = DetectorReader(self.layout, self.faults)
        self.reader.start(sim)
        limit = sim.conn.lane.getMaxSpeed
        self._speed_limit = np.array([limit(lane) if self.opts["hold_speed_share"] > 0 and e2 else np.inf
                                      for lane, e2 in zip(self.layout.lanes, self.layout.e2_ids, strict=True)])
        # stage rows × lanes, once: pressures are then two sparse products per decision
        self._stage_up = (self.W @ self.reader.up_matrix).tocsr()
        self._stage_down = (self.W @ self.reader.down_matrix).tocsr()
        self.switcher.start(sim)
        self.next_decision = sim.time_s
        self.last_served[:] = sim.time_s
        n = len(self.switcher.signals)
        self._initial, self._initial_of = np.zeros(n), np.full(n, -np.inf)  # variable initial green
        self._initial_sum, self._initial_count = 0.0, 0  # over the greens it timed (a mean for the summary)

    def pressures(self) -> np.ndarray:
        """Pressure of every stage row (veh, saturation-flow weighted) from the last readings:
        per connection its from lane's queue − β · its to lane's, each lane shared among the
        connections leaving it (lanes with no usable detector count ``unknown_queue_veh`` up and
        0 down)."""
        q = self.reader.queue
        up = np.nan_to_num(q, nan=self.opts["unknown_queue_veh"])
        down = np.nan_to_num(q, nan=0.0)
        return self._stage_up @ up - self.opts["downstream_weight"] * (self._stage_down @ down)

    def step(self, sim: SumoSession) -> None:
        t = sim.time_s
        sw = self.switcher
        cur = sw.stage >= 0
        rows = self.stage_offsets[:-1][cur] + sw.stage[cur]
        self.last_served[rows] = t
        fresh = t + 1e-9 >= self.next_decision
        if fresh:  # detectors are read at decision times only (their values are the last step's)
            self.next_decision = t + self.opts["decision_interval_s"]
            self.reader.update(sim)
        if fresh or self.cyclic:
            self.decide(t, fresh=fresh)
        sw.step(sim)

    def decide(self, t: float, *, fresh: bool) -> None:
        """Request stage changes at time ``t`` (s); ``fresh``: detectors were just read."""
        raise NotImplementedError

    def finish(self, ctx: RunSpec) -> dict[str, Any]:
        out: dict[str, Any] = {
            "signal_switches": self.switches,
            # detectors the plausibility checks flagged at some time (healthy ones should not be)
            "detectors_flagged": len({d for _, d, s in self.reader.fault_log if s == "flagged"}),
            # lanes whose loop and zone went quiet for far longer than their traffic explains
            "detectors_silent": len({d for _, d, s in self.reader.fault_log if s == "silent"}),
        }
        if self._initial_count:  # the variable initial green: mean over the greens it timed
            out["initial_green_mean_s"] = self._initial_sum / self._initial_count
        if self.faults:
            log = [{"time_s": t, "detector": d, "status": s} for t, d, s in self.reader.fault_log]
            write_text_atomic(json.dumps({"faults": [f.__dict__ | {"ids": list(f.ids)} for f in self.faults],
                                          "diagnostics": log}, indent=1, default=str),
                              Path(ctx.workdir) / "detector_faults.json")
            out["detectors_faulty"] = len({i for f in self.faults for i in f.ids})  # a detector once
        return out


@register
class MaxPressureController(PressureController):
    """Acyclic max-pressure over each signal's program stages."""

    name = "max_pressure"
    #: measured in SUMO (README "Real networks", seed 1, 900 s): on the RiLSA guideline junctions
    #: the city programs' own stages overlap (five stages on example 2, three of them subsets of
    #: others) and every switch between them pays the city's yellow and all-red: on example 4 the
    #: junction showed all-red 301 s and yellow 187 s of 900 and the main road's stage lasted
    #: 7.9 s on average (RESCO delay 157.7 s/veh); the design the model picks there (two stages)
    #: cut it to 29.5. On DRT and Luxembourg, where the own programs win, "best" keeps them.
    stage_design_default: ClassVar[str] = "best"
    #: a green holds only while a vehicle is still in one of its priority lanes' zones: the
    #: last vehicle of a platoon crossing its loop held the green for nobody. Measured in SUMO
    #: (900 s, mean RESCO delay s/veh of seeds 1-5; RiLSA 1: 1-3, RiLSA 2: 1-8), 0 → 1: bs3d
    #: 24.3 → 21.9, RiLSA 1 27.8 → 27.3, RiLSA 2 16.3 → 15.4, RiLSA 4 29.7 → 29.1, corridor
    #: 20.1 → 16.9, DRT 19.7 → 19.5 (seed 1 alone: DRT 20.6 → 21.2, RiLSA 4 30.0 → 30.7).
    #: With ``hold_per_lane`` (the zone of the lane whose loop was crossed): bs3d 16.9, RiLSA 1
    #: 26.8, RiLSA 4 28.4, corridor 17.2, DRT 19.5, but RiLSA 2 18.7 (seed 5: 39.6; its
    #: side road's left turners, blocked where they merge downstream with the main road's
    #: through traffic, held nothing, so their stage ended with them waiting)
    hold_queue_default: ClassVar[float] = 1.0
    #: a zone holds the green only while its vehicles move below 85 % of the lane's speed limit:
    #: a queue the red held back, still accelerating, not arrivals at free speed (SUMO's
    #: delay-based control likewise extends only for vehicles that lost time). Measured in SUMO
    #: (one hour, mean RESCO delay s/veh of seeds 1-8; rilsa1_out, rilsa1_both, DRT, Luxembourg
    #: and fkk_in_random seeds 1-3), off → 0.85: RiLSA 1 28.34 → 27.91, RiLSA 2 15.90 → 13.93,
    #: RiLSA 3 23.99 → 21.59, RiLSA 4 27.36 → 25.50, cross 9.58 → 9.17, kuehne 13.43 → 12.25,
    #: square 9.32 → 8.39, bs3d 27.32 → 27.18 (its seeds spread over 20-36), rilsa1_out 39.45 →
    #: 36.56, rilsa1_both 39.83 → 37.72, DRT 18.91 → 18.88, Luxembourg 36.77 and fkk_in_random
    #: 25.22 either way; it cost corridor 18.55 → 18.72. 0.8 lost RiLSA 1 (29.45), 0.95 RiLSA 2
    #: (18.87), 0.7 RiLSA 1 (49.77: greens cut while the platoon still arrived). Under
    #: ``max_pressure_cyclic``, whose released hold ends a green at its minimum, 0.85 won on RiLSA
    #: 2-4 but lost on corridor (20.84 → 22.52), square (10.81 → 12.32) and kuehne: off there.
    hold_speed_default: ClassVar[float] = 0.85

    #: the variable initial green (off by default; README "Max-pressure on real junctions")
    extra_options = ("initial_per_veh_s", "max_initial_s")

    def decide(self, t: float, *, fresh: bool) -> None:
        """Every ready signal's next stage from the stage pressures (:func:`next_stages`)."""
        sw = self.switcher
        ready = sw.ready(t) & (sw.pending < 0)
        per_veh = float(self.opts.get("initial_per_veh_s", 0.0))
        if per_veh > 0:  # variable initial green: the queue found at the green's start discharges first
            ready &= t - sw.green_start_s >= self._initial_green(per_veh) - 1e-9
        if not ready.any():
            return
        hold = np.zeros(ready.size, dtype=bool)
        cand = np.flatnonzero(ready)
        hold[cand] = self.discharging(self.sim, cand)
        args = (self.pressures(), self.stage_offsets, sw.stage, ready, hold, t - self.last_served,
                t - sw.green_start_s, self.max_green, self.max_red, self.opts["recall_s"], self.opts["threshold_veh"])
        if ready.size >= KERNEL_MIN_SIGNALS:
            nxt = np.full(ready.size, -1, dtype=np.int64)
            _next_stages_kernel(*args, nxt)
        else:  # the same decision; below this size the kernel's one-off load (~0.5 s) costs more
            nxt = next_stages(*args)
        for i in np.flatnonzero(nxt >= 0):
            sw.request(int(i), int(nxt[i]))
            self.switches += 1


    def _initial_green(self, per_veh: float) -> np.ndarray:
        """Per switcher signal, the initial green of its current green (s): ``per_veh`` per
        vehicle queued in the longest zone of the stage's priority lanes at the first decision of
        the green (decisions come every ``decision_interval_s``), at most ``max_initial_s`` and
        the stage's maximum green (the variable initial green of actuated control)."""
        sw = self.switcher
        cap = float(self.opts.get("max_initial_s", 30.0))
        for i in np.flatnonzero((sw.stage >= 0) & (sw.green_start_s != self._initial_of)):
            k = int(sw.stage[i])
            rows = self._hold_loops[i][k]
            queue = np.nan_to_num(self.reader.queue[rows], nan=0.0)
            most = min(cap, float(self.max_green[self.stage_offsets[i] + k]))
            self._initial[i] = min(per_veh * float(queue.max(initial=0.0)), most)
            self._initial_of[i] = sw.green_start_s[i]
            self._initial_sum += float(self._initial[i])
            self._initial_count += 1
        return self._initial


#: Signals from which decisions use the numba kernel: loading a cached kernel costs a process
#: about 0.5 s once, the plain decision about 4 µs per signal and second, so below this size a
#: simulated hour is cheaper without the kernel.
KERNEL_MIN_SIGNALS = 64


def next_stages(
    pressure: np.ndarray,
    stage_offsets: np.ndarray,
    stage: np.ndarray,
    ready: np.ndarray,
    hold: np.ndarray,
    waited_s: np.ndarray,
    elapsed_s: np.ndarray,
    max_green_s: np.ndarray,
    max_red_s: np.ndarray,
    recall_s: float,
    threshold_veh: float,
) -> np.ndarray:
    """The max-pressure decision, written plainly (the reference of the numba kernel).

    Stage rows of signal ``i`` are ``stage_offsets[i]:stage_offsets[i + 1]``; ``pressure``,
    ``waited_s`` (s since the stage last showed) and ``max_green_s`` are per stage row;
    ``stage`` (current stage, local index), ``max_red_s`` (the longest wait of a stage with
    demand), ``ready`` (minimum green over, nothing pending),
    ``hold`` (the current green still discharges a queue) and ``elapsed_s`` (s of the current
    green) per signal. Returns per signal the local stage to switch to, or -1 to stay. A ready
    signal with two or more stages switches to

    1. the stage with demand (pressure > 0) that has waited ``max_red_s`` or more, or any stage
       that has waited ``recall_s`` (> 0) or more, the longest waiting first, if there is one;
       else, unless it holds below its maximum green,
    2. the stage of highest pressure if it beats the current one by more than ``threshold_veh``;
       else
    3. the stage of highest pressure but the current one, if the current green reached its
       maximum and that stage's pressure is above zero (no yellow for a stage nobody waits
       for: the green rests instead).

    Ties go to the lower stage index.
    """
    out = np.full(len(stage), -1, dtype=np.int64)
    for i in range(len(stage)):
        a, b = int(stage_offsets[i]), int(stage_offsets[i + 1])
        if not ready[i] or b - a < 2:
            continue
        cur = int(stage[i])
        ps = [float(v) for v in pressure[a:b]]
        starving = [k for k in range(b - a) if k != cur and ((waited_s[a + k] >= max_red_s[i] and ps[k] > 0)
                                                           or 0 < recall_s <= waited_s[a + k])]
        best = ps.index(max(ps))
        maxed = elapsed_s[i] >= max_green_s[a + cur] - 1e-9
        if starving:
            longest = max(waited_s[a + k] for k in starving)
            out[i] = next(k for k in starving if waited_s[a + k] == longest)
        elif hold[i] and not maxed:
            continue
        elif best != cur and ps[best] > ps[cur] + threshold_veh:
            out[i] = best
        elif maxed:
            others = [v if k != cur else -math.inf for k, v in enumerate(ps)]
            if max(others) > 0.0:  # no yellow at the maximum green for a stage nobody waits for
                out[i] = others.index(max(others))
    return out


@njit(cache=True)
def _next_stages_kernel(pressure, stage_offsets, stage, ready, hold, waited_s, elapsed_s, max_green_s, max_red_s,
                        recall_s, threshold_veh, out):  # pragma: no cover - njit (reference: next_stages)
    for i in range(stage.shape[0]):
        out[i] = -1
        a = stage_offsets[i]
        b = stage_offsets[i + 1]
        if not ready[i] or b - a < 2:
            continue
        cur = stage[i]
        best = 0
        best_other = -1
        longest = -1
        for k in range(b - a):
            v = pressure[a + k]
            if v > pressure[a + best]:
                best = k
            if k != cur:
                if best_other < 0 or v > pressure[a + best_other]:
                    best_other = k
                w = waited_s[a + k]
                due = (w >= max_red_s[i] and v > 0.0) or (recall_s > 0.0 and w >= recall_s)
                if due and (longest < 0 or w > waited_s[a + longest]):
                    longest = k
        maxed = elapsed_s[i] >= max_green_s[a + cur] - 1e-9
        if longest >= 0:
            out[i] = longest
        elif hold[i] and not maxed:
            continue
        elif best != cur and pressure[a + best] > pressure[a + cur] + threshold_veh:
            out[i] = best
        elif maxed and pressure[a + best_other] > 0.0:
            out[i] = best_other

