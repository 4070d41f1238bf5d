"""Centrally computed, networked signal control: ``adaptive`` and ``coordinated``.

Both run a control centre in the spirit of SCOOT/SCATS on top of
:class:`~greenwave.controllers.network_control.CentralDriver`:

1. **Before the run** the centre starts from the time-of-day plan a city would have installed:
   the engine's optimiser on the historical (prior) movement flows, read from the run's
   demand. Every signal also keeps a *local plan* for when its link to the centre fails.
2. **During the run** turning-movement counters at every signalised junction (SUMO induction
   loops on the junction's internal lanes, one per movement — what video or radar junction
   counters report) send their counts to the centre, but only while the signal's link works.
3. **Every ``interval_s``** the centre smooths the measured movement flows with the previous
   estimate, re-optimises cycle, splits and offsets with :func:`greenwave.engine.optimise.optimise`
   and hands the new plan to the driver, which moves each signal to it at its next cycle start
   with a bounded offset transition (no minimum green cut short, yellow and all-red untouched).

``adaptive`` re-optimises the whole network as one coordination group (one common cycle).
``coordinated`` partitions the network into sub-areas by coupling strength
(:mod:`greenwave.networks.subareas`), gives each sub-area its own common cycle and offsets,
and re-partitions at every re-plan so sub-areas merge and split as flows change.

Options (scenario ``[controller_options.adaptive]`` / ``[controller_options.coordinated]``):
``interval_s`` (300), ``smoothing`` (0.5, weight of the new measurement), ``count_period_s`` (60),
``min_cycle_s``/``max_cycle_s``/``global_candidates``/``starts``/``max_passes`` (optimiser),
``max_extend_share`` (0.25 of the cycle per cycle in transitions); local actuation inside
the central plan: ``max_gap_s`` (2.0 s; 0 runs the plan fixed-time), ``detector_gap_s`` (3.0:
detectors lie this many seconds of driving at the lane's speed before the stop line),
``gap_out_first_stage`` (true: stage 0 may end early too, its spare time going to the next
stages; false holds it to its force-off, the classic coordinated stage; a signal with one
stage never ends it early: there is no other stage to give the time to); and for
``coordinated`` ``coupling_threshold`` (2.0 veh/h per m), ``always_couple_m`` (120),
``max_distance_m`` (1000), ``keep_factor`` (0.7).

Each run writes ``plans.csv`` (every plan the centre computed: time, group, cycle, PI),
``control_rate.csv`` and the first plan as ``plan.json``; ``summary.csv`` gains
``coordinated_control_rate_mean``, ``coordinated_control_rate_min``, ``replans``,
``mode_switches``, ``subareas_mean`` and ``gap_outs``.

Local actuation matters: on the bundled grids the plan run fixed-time loses 50–90 s/veh in
SUMO, the same plans with gap-out 30–60 s/veh (seed 1; see the issue-4 note for the tables).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from greenwave.controllers.base import Controller, register
from greenwave.controllers.network_control import CentralDriver, LinkSchedule, write_rate_series
from greenwave.controllers.planning import plan_for_demand, subarea_settings
from greenwave.controllers.plans.arrays import arrays_from_plan, plan_from_arrays, plan_from_network
from greenwave.controllers.plans.safety import assert_safe, write_excluded
from greenwave.controllers.plans.sumo_writer import write_sumo_additional
from greenwave.controllers.plans.timing import TimingPlan
from greenwave.controllers.proof import prove_plan, run_cases
from greenwave.controllers.stage_choice import (
    DEFAULT_STAGE_DESIGN,
    DesignChoice,
    check_stage_design_option,
    choice_meta,
    write_design_programs,
)
from greenwave.controllers.sumo_programs import actuated_programs
from greenwave.engine.arrays import SUMO_PARAMS, SUMO_SATURATION_FLOW_PER_LANE_VPH
from greenwave.engine.optimise import OptimiserSettings, optimise
from greenwave.engine.results import write_table_atomic, write_text_atomic
from greenwave.engine.run import RunSpec
from greenwave.errors import PlanError, ScenarioError
from greenwave.networks.compile import SUMO_COMPILE_OPTIONS, compile_network
from greenwave.networks.model import RoadNetwork
from greenwave.networks.signal_states import GREEN
from greenwave.networks.subareas import SubareaSettings, neighbour_links
from greenwave.networks.subareas import subareas as partition_subareas

if TYPE_CHECKING:
    from greenwave.engine.session import SumoSession

__all__ = ["AdaptiveController", "CoordinatedController", "controlled_signals"]

_CENTRAL_PROGRAM = "gw_central"
_ACTUATED_PROGRAM = "gw_local_actuated"
_DESIGN_ACTUATED = "gw_local_design_actuated"

_OPT_KEYS = ("min_cycle_s", "max_cycle_s", "global_candidates", "starts", "max_passes")


def controlled_signals(network: RoadNetwork) -> list[str]:
    """The signalised intersections that count for the KPI: signals with at least one used
    road-vehicle movement (rail and pedestrian-only signals are not intersections)."""
    out = []
    for sid, sig in network.signals.items():
        edges = {mv.from_edge for link in sig.movements for mv in (link, *link.merged)
                 if mv.is_used and not mv.is_pedestrian}
        if any(network.has_edge(e) for e in edges):
            out.append(sid)
    return sorted(out)


@dataclass
class _Counter:
    """Turning-movement counters: detector ids and the movement each one counts."""

    ids: tuple[str, ...]
    signal: tuple[str, ...]
    movement: tuple[tuple[str, str], ...]


class CentralController(Controller):
    """Shared machinery of the networked central controllers (see the module docstring)."""

    name: ClassVar[str] = "central"
    kind = "greenwave"
    subareas: ClassVar[bool] = False
    # controllers without a networked centre (fixed plans, local actuation) report no rate: none
    # of their signals is under central coordinated control, so the rate is 0
    summary_columns: ClassVar[Mapping[str, float]] = {
        "coordinated_control_rate_mean": 0.0, "coordinated_control_rate_min": 0.0,
    }
    _DEFAULTS: ClassVar[dict[str, Any]] = {
        "interval_s": 300.0, "smoothing": 0.5, "count_period_s": 60.0, "max_extend_share": 0.25,
        "max_gap_s": 2.0, "detector_gap_s": 3.0, "gap_out_first_stage": True, "prove": True,
        "proof_seeds": 2,
    }
    _SUBAREA_DEFAULTS: ClassVar[dict[str, Any]] = {  # the options, defaulting to SubareaSettings'
        "coupling_threshold": SubareaSettings.threshold, "always_couple_m": SubareaSettings.always_m,
        "max_distance_m": SubareaSettings.max_distance_m, "keep_factor": SubareaSettings.keep_factor,
    }

    # -- options -----------------------------------------------------------------------------
    @classmethod
    def declared_options(cls) -> frozenset[str]:
        return frozenset({*cls._DEFAULTS, *_OPT_KEYS, "stage_design", *(cls._SUBAREA_DEFAULTS if cls.subareas else ())})

    def _opts(self) -> dict[str, Any]:
        defaults = dict(self._DEFAULTS)
        if self.subareas:
            defaults.update(self._SUBAREA_DEFAULTS)
        valid = set(defaults) | set(_OPT_KEYS) | {"stage_design"}
        unknown = sorted(set(self.options) - valid)
        if unknown:
            raise ScenarioError(f"controller {self.name!r}: unknown options {unknown}; valid: "
                                f"{', '.join(sorted(valid))}")
        opts = {**defaults, **self.options}
        opts["stage_design"] = check_stage_design_option(opts.get("stage_design", DEFAULT_STAGE_DESIGN),
                                                         f"controller {self.name!r}")
        for k, v in opts.items():
            if k == "stage_design":
                continue
            if k in ("gap_out_first_stage", "prove"):
                if not isinstance(v, bool):
                    raise ScenarioError(f"controller {self.name!r}: {k!r} must be true or false")
            elif isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ScenarioError(f"controller {self.name!r}: option {k!r} must be a number ≥ 0, got {v!r}")
        if not 0 < opts["smoothing"] <= 1:
            raise ScenarioError(f"controller {self.name!r}: 'smoothing' must be in (0, 1]")
        if opts["interval_s"] < opts["count_period_s"] or opts["count_period_s"] < 1:
            raise ScenarioError(f"controller {self.name!r}: need 1 ≤ count_period_s ≤ interval_s")
        return opts

    def _settings(self, seed: int) -> Any:
        kw = {k: self.opts[k] for k in _OPT_KEYS if k in self.opts}
        for k in ("global_candidates", "starts", "max_passes"):
            if k in kw:
                kw[k] = int(kw[k])
        return OptimiserSettings(seed=seed, **kw)

    # -- before the run ------------------------------------------------------------------------
    def prepare(self, ctx: RunSpec) -> list[Path]:
        self.opts = self._opts()
        self.ctx = ctx
        work = Path(ctx.workdir)
        # plans are made for SUMO, so the model uses what was measured there (engine.arrays)
        self.network = network = ctx.network(saturation_flow_per_lane=SUMO_SATURATION_FLOW_PER_LANE_VPH)
        self.kpi_signals = controlled_signals(network)
        if not self.kpi_signals:
            raise ScenarioError(f"controller {self.name!r}: {ctx.net_file} has no signalised intersection")
        self.links = None
        if self.subareas:
            settings = subarea_settings(f"controller {self.name!r}", {k: self.opts[k] for k in self._SUBAREA_DEFAULTS},
                                        default=True)
            assert settings is not None
            self.subarea_settings = settings
            self.links = neighbour_links(network, max_distance_m=self.subarea_settings.max_distance_m)
        self.designs: dict[str, DesignChoice] = {}
        self.groups: list[tuple[str, ...]] = []
        self.plan_log: list[dict[str, Any]] = []
        self._compilable: tuple[str, ...] = ()  # the signals the centre plans
        # the pipeline: flows, stage designs (stage_design option), signals whose own program or
        # first plan is unsafe left out (they stay on their own programs), the first plan
        planned = plan_for_demand(ctx.net_file, ctx.routed_demand(), begin_s=ctx.demand_begin_s, end_s=ctx.demand_end_s,
                                  workdir=work, seed=ctx.seed, stage_design=self.opts["stage_design"],
                                  network=network, optimiser=self._first_plan, route_choice=ctx.route_choice)
        self.network = network = planned.network
        self.designs = planned.designs
        self.unsafe = planned.excluded
        plan = planned.plan
        files: list[Path] = []
        self.untrusted: dict[str, str] = {}
        if self.opts["prove"]:
            plan = self._trusted_plan(plan)
        left_alone = {**self.unsafe, **self.untrusted}
        if left_alone:  # signals the centre does not plan: SUMO's actuated copy of their own program
            files.append(actuated_programs(ctx.net_file, workdir=work, program_id="gw_own_actuated",
                                           program_files=ctx.program_files, begin_s=ctx.begin_s,
                                           signals=set(left_alone)))
        self.first_plan = plan
        plan.to_json(work / "plan.json")
        if not plan.signals:  # the model was trusted nowhere: every signal runs actuated
            self.gap_detectors: dict[str, list[list[str]]] = {}
            self.counter = _Counter((), (), ())
            return files
        self.fallback = ctx.communication.fallback if ctx.communication is not None else "fixed"
        if self.fallback == "actuated":
            files.append(actuated_programs(ctx.net_file, workdir=work, program_id=_ACTUATED_PROGRAM,
                                           program_files=ctx.program_files, begin_s=ctx.begin_s))
        # only the signals the centre plans: a design written for a signal left alone would replace
        # its actuated copy (fkk_in_random's gneJ21, kept on its own program by the proof, ran its
        # design's fixed default greens: 150 s/veh)
        designs = write_design_programs(network, self.designs, work / "stage_designs.add.xml",
                                        actuated_id=_DESIGN_ACTUATED if self.fallback == "actuated" else None,
                                        signals=plan.signals)
        if designs is not None:  # the local programs of signals running a generated design
            files.append(designs)
        files.append(write_sumo_additional(plan, network, work / "central.add.xml", program_id=_CENTRAL_PROGRAM))
        files.append(self._write_counters(work / "counters.add.xml", plan))
        self.gap_detectors = {}
        if float(self.opts["max_gap_s"]) > 0:
            files.append(self._write_gap_detectors(work / "gap_detectors.add.xml", plan))
        return files

    def _trusted_plan(self, plan: TimingPlan) -> TimingPlan:
        """Prove the first plan in SUMO against the signals' own programs
        (:func:`~greenwave.controllers.proof.prove_plan`, on seeds of its own). Signals where the
        plan loses are signals whose model the centre cannot trust: they are not planned, run
        SUMO's actuated copy of their own program and are listed in ``excluded_signals.txt``;
        the rest are planned again without them."""
        compiled = compile_network(self.network, self.flows, signals=list(plan.signals), **SUMO_COMPILE_OPTIONS)
        existing = plan_from_network(self.network, compiled)
        folder = Path(self.ctx.workdir) / "proof"
        proof = prove_plan(plan, existing, self.network, run_cases(self.ctx, folder, int(self.opts["proof_seeds"])),
                           workdir=folder, program_id="gw_central_proof")
        write_text_atomic("\n".join(proof.lines()) + "\n", Path(self.ctx.workdir) / "proof.txt")
        if not proof.kept_existing:
            return plan
        self.untrusted = {s: f"the centre's model lost to the signal's own program in SUMO: {why}"
                          for s, why in proof.kept_existing.items()}
        write_excluded({**self.unsafe, **self.untrusted}, Path(self.ctx.workdir) / "excluded_signals.txt",
                       "the centre does not plan them; they run SUMO's actuated copy of their own program")
        self._compilable = tuple(s for s in self._compilable if s not in self.untrusted)
        self.groups = []
        self.plan_log.clear()
        if not self._compilable:
            return TimingPlan({}, {"controller": self.name, "time_s": self.ctx.begin_s})
        return self._optimise(self.flows, t=self.ctx.begin_s)

    def _first_plan(self, network: RoadNetwork, flows: pd.DataFrame, signals: tuple[str, ...]) -> TimingPlan:
        """The centre's optimiser in :func:`~greenwave.controllers.planning.plan_for_demand`: the
        first plan of ``signals`` (groups and the plan log start afresh)."""
        self.network, self.flows = network, flows
        self._compilable = signals
        self.groups = []
        self.plan_log.clear()
        return self._optimise(flows, t=self.ctx.begin_s)

    def _optimise(self, flows: pd.DataFrame, *, t: float) -> TimingPlan:
        """One plan for every controllable signal from ``flows`` (per group / sub-area)."""
        t0 = time.perf_counter()
        if self.subareas:
            self.groups = partition_subareas(self.network, flows, self._compilable, self.subarea_settings,
                                             links=self.links, previous=self.groups)
        else:
            self.groups = [tuple(self._compilable)]
        signals = {}
        settings = self._settings(self.ctx.seed)
        current = getattr(self, "driver", None)
        if current is not None:
            # a re-plan starts from the running plan with a lighter search, and moves the cycle
            # by at most one step (as SCATS does), so plans evolve instead of jumping
            c_now = max(t.cycle_s for t in current.plan.signals.values())
            settings = dataclasses.replace(
                settings, starts=1, global_candidates=8, max_passes=min(settings.max_passes, 2),
                min_cycle_s=max(settings.min_cycle_s, c_now - settings.cycle_step_s),
                max_cycle_s=min(settings.max_cycle_s, c_now + settings.cycle_step_s),
            )
        for n, group in enumerate(self.groups):
            compiled = compile_network(self.network, flows, signals=list(group), **SUMO_COMPILE_OPTIONS)
            start = None
            if current is not None:
                sub = TimingPlan(signals={s: current.plan.signals[s] for s in group})
                try:
                    start = arrays_from_plan(compiled, sub)
                except PlanError:
                    start = None  # the group had no common cycle (a sub-area just merged)
            res = optimise(compiled, settings=settings, start=start, params=SUMO_PARAMS)
            part = plan_from_arrays(compiled, res.plan)
            signals.update(part.signals)
            self.plan_log.append({"time_s": t, "group": n, "signals": len(group), "cycle_s": res.plan.cycle_s,
                                  "pi": res.pi, "mean_delay_s": res.mean_delay_s})
        self.replan_wall_s = time.perf_counter() - t0
        meta: dict[str, Any] = {"controller": self.name, "time_s": t}
        designs = {sid: c.design for sid, c in self.designs.items() if not c.design.is_own and sid in signals}
        if self.designs:
            meta["stage_design"] = choice_meta(self.opts["stage_design"],
                                               {s: c for s, c in self.designs.items() if s in signals})
        return TimingPlan(signals=signals, meta=meta, designs=designs)

    def _write_counters(self, path: Path, plan: TimingPlan) -> Path:
        """Induction loops on the internal lanes of every movement of the planned signals."""
        ids, sig, mvs, lines = [], [], [], []
        period = float(self.opts["count_period_s"])
        seen: set[str] = set()
        for sid in sorted(plan.signals):
            for link in self.network.signals[sid].movements:
                for mv in (link, *link.merged):
                    if not mv.is_used or mv.is_pedestrian or not mv.via or mv.via in seen:
                        continue
                    if not (self.network.has_edge(mv.from_edge) and self.network.has_edge(mv.to_edge)):
                        continue
                    seen.add(mv.via)
                    det = f"gwtmc_{mv.via}"
                    ids.append(det)
                    sig.append(sid)
                    mvs.append((mv.from_edge, mv.to_edge))
                    lines.append(f"    <inductionLoop id={quoteattr(det)} lane={quoteattr(mv.via)} pos=\"0\" "
                                 f"period=\"{period:g}\" file=\"NUL\"/>")
        self.counter = _Counter(tuple(ids), tuple(sig), tuple(mvs))
        write_text_atomic("<additional>\n" + "\n".join(lines) + "\n</additional>\n", path)
        return path

    def _write_gap_detectors(self, path: Path, plan: TimingPlan) -> Path:
        """An induction loop ``detector_gap_s`` × lane speed before the stop line of every lane
        that a stage of a planned signal serves (what actuated-coordinated field control uses);
        none for a signal with one stage, which never gaps out (:class:`CentralDriver`)."""
        gap_s = float(self.opts["detector_gap_s"])
        lane_len = {lane: float(attrs["length_m"]) for *_, attrs in self.network.graph.edges(data=True)
                    for lane in attrs.get("lane_ids", ())}
        lane_speed = {lane: float(attrs["speed_mps"]) for *_, attrs in self.network.graph.edges(data=True)
                      for lane in attrs.get("lane_ids", ())}
        lines: list[str] = []
        done: set[str] = set()
        for sid, timing in sorted(plan.signals.items()):
            if len(timing.stages) < 2:
                continue
            sig = self.network.signals[sid]
            base = sig.programs[timing.program_id]
            per_stage = []
            for st in timing.stages:
                state = base.phases[st.phase_index].state
                lanes = sorted({mv.from_lane for link in sig.movements for mv in (link, *link.merged)
                                if mv.is_used and not mv.is_pedestrian and mv.from_lane in lane_len
                                and link.link_index < len(state) and state[link.link_index] in GREEN})
                ids = []
                for lane in lanes:
                    det = f"gwgap_{lane}"
                    ids.append(det)
                    if det not in done:
                        done.add(det)
                        pos = max(0.1, lane_len[lane] - gap_s * lane_speed[lane])
                        lines.append(f"    <inductionLoop id={quoteattr(det)} lane={quoteattr(lane)} "
                                     f"pos=\"{pos:.2f}\" period=\"86400\" file=\"NUL\"/>")
                per_stage.append(ids)
            self.gap_detectors[sid] = per_stage
        write_text_atomic("<additional>\n" + "\n".join(lines) + "\n</additional>\n", path)
        return path

    # -- during the run ------------------------------------------------------------------------
    def start(self, sim: SumoSession) -> None:
        ctx = self.ctx
        self.schedule = LinkSchedule.build(ctx.communication, self.kpi_signals, begin_s=ctx.begin_s,
                                           end_s=ctx.end_s, seed=ctx.seed, where=f"scenario {ctx.scenario!r}")
        self._up: dict[str, bool] = {}
        self._up_since, self._up_until = 1.0, 0.0  # empty: compute at the first call
        self.rate_t: list[float] = []
        self.rate_v: list[float] = []
        self.replans = 0
        self.subarea_counts: list[int] = [len(self.groups)]
        plan = self.first_plan
        if not plan.signals:
            self.driver = None
            return
        local = {}
        for sid, timing in plan.signals.items():
            designed = sid in plan.designs
            local[sid] = ((_DESIGN_ACTUATED if designed else _ACTUATED_PROGRAM) if self.fallback == "actuated"
                          else timing.program_id)
        self.driver = CentralDriver(self.network, plan, central_program=_CENTRAL_PROGRAM, local_program=local,
                                    max_extend_share=float(self.opts["max_extend_share"]),
                                    hold_last_plan=self.fallback == "last_plan",
                                    gap_detectors=self.gap_detectors,
                                    max_gap_s=float(self.opts["max_gap_s"]),
                                    gap_out_first_stage=bool(self.opts["gap_out_first_stage"]))
        self.driver.start(sim, self._links_up(sim.time_s))
        n = len(self.counter.ids)
        self.counts = np.zeros(n)
        self.count_s = np.zeros(n)  # seconds each counter was visible to the centre
        self.last_replan = sim.time_s
        self.next_count = sim.time_s + float(self.opts["count_period_s"])

    def _links_up(self, t: float) -> dict[str, bool]:
        """Link state of every planned signal at ``t`` (recomputed only when some link changes)."""
        if t < self._up_until and t >= self._up_since:
            return self._up
        self._up = {sid: self.schedule.link_up(sid, t) for sid in self.first_plan.signals}
        self._up_since, self._up_until = self.schedule.stable_interval(t)
        return self._up

    def step(self, sim: SumoSession) -> None:
        t = sim.time_s
        if self.driver is None:  # nothing under central control
            self.rate_t.append(t)
            self.rate_v.append(0.0)
            return
        up = self._links_up(t)
        self.driver.step(sim, up)
        central = sum(1 for sid in self.driver.central_signals() if up.get(sid, False))
        self.rate_t.append(t)
        self.rate_v.append(central / len(self.kpi_signals))
        if t + 1e-9 >= self.next_count:
            self._read_counters(sim, up)
            self.next_count += float(self.opts["count_period_s"])
        if t - self.last_replan + 1e-9 >= float(self.opts["interval_s"]):
            self._replan(t)
            self.last_replan = t

    def _read_counters(self, sim: SumoSession, up: dict[str, bool]) -> None:
        """The last counting period's movement counts, from signals whose link works."""
        get = sim.conn.inductionloop.getLastIntervalVehicleNumber
        period = float(self.opts["count_period_s"])
        for i, (det, sid) in enumerate(zip(self.counter.ids, self.counter.signal, strict=True)):
            if up.get(sid, False):
                self.counts[i] += get(det)
                self.count_s[i] += period

    def _replan(self, t: float) -> None:
        assert self.driver is not None  # step() replans only signals under central control
        seen = self.count_s > 0
        if not seen.any():
            return  # the centre saw nothing this interval: keep the plan
        measured: dict[tuple[str, str], float] = {}
        for i in np.flatnonzero(seen):
            key = self.counter.movement[i]
            measured[key] = measured.get(key, 0.0) + self.counts[i] * 3600.0 / self.count_s[i]
        a = float(self.opts["smoothing"])
        prev = {(r.from_edge, r.to_edge): float(r.flow_vph) for r in self.flows.itertuples()}
        seen_signals = {self.counter.signal[i] for i in np.flatnonzero(seen)}
        seen_moves = {self.counter.movement[i] for i in range(len(self.counter.ids))
                      if self.counter.signal[i] in seen_signals}
        merged = dict(prev)
        for key in seen_moves:  # movements the centre measured: blend; the rest keep their estimate
            merged[key] = a * measured.get(key, 0.0) + (1 - a) * prev.get(key, 0.0)
        rows = [(f, to, v * (self.ctx.end_s - self.ctx.begin_s) / 3600.0, v) for (f, to), v in sorted(merged.items())]
        self.flows = pd.DataFrame(rows, columns=["from_edge", "to_edge", "vehicles", "flow_vph"])
        self.counts[:] = 0.0
        self.count_s[:] = 0.0
        plan = self._optimise(self.flows, t=t)
        assert_safe(plan, self.network)  # nothing unsafe reaches a signal
        self.driver.set_plan(plan)
        self.replans += 1
        self.subarea_counts.append(len(self.groups))

    def finish(self, ctx: RunSpec) -> dict[str, Any]:
        work = Path(ctx.workdir)
        write_rate_series(self.rate_t, self.rate_v, work / "control_rate.csv")
        write_table_atomic(pd.DataFrame(self.plan_log), work / "plans.csv")
        rates = np.asarray(self.rate_v) if self.rate_v else np.zeros(1)
        return {
            "coordinated_control_rate_mean": float(rates.mean()),
            "coordinated_control_rate_min": float(rates.min()),
            "replans": self.replans,
            "mode_switches": 0 if self.driver is None else self.driver.switches,
            "subareas_mean": float(np.mean(self.subarea_counts)),
            "gap_outs": 0 if self.driver is None else self.driver.gap_outs,
            "signals_untrusted": len(self.untrusted),
        }


@register
class AdaptiveController(CentralController):
    """Networked adaptive control: the whole network re-optimised from detector counts."""

    name = "adaptive"


@register
class CoordinatedController(CentralController):
    """Networked coordinated control in sub-areas that merge and split with the flows."""

    name = "coordinated"
    subareas = True
