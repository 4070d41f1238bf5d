"""The one planning pipeline: flows → stage designs → compile → drop unsafe signals → recompile → optimise.

:func:`plan_for_demand` is what the ``optimised`` controller, the centre of ``adaptive`` and
``coordinated`` (:mod:`greenwave.controllers.central`) and ``greenwave optimise`` run before SUMO
starts:

1. count the movement flows of the run's routes in the demand window (:func:`demand_flows`);
2. choose each signal's stage design on them (``stage_design``, :mod:`~greenwave.controllers.stage_choice`);
3. leave out signals whose own program is unsafe (no timing of its stages is safe);
4. make a first plan, leave out the signals the safety validator rejects in it (listed in
   ``WORKDIR/excluded_signals.txt``) and plan the rest again;
5. the plan: by default the fixed-time optimiser over all signals on one common cycle, or per
   sub-area with ``subareas`` (:mod:`greenwave.networks.subareas`; Webster's plan for all is
   the first plan, the network's own timings the start), or a controller's own optimiser
   (``optimiser``: its first plan is also the plan when every signal of it is safe).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from greenwave.controllers.plans.arrays import arrays_from_plan, plan_from_arrays, plan_from_network
from greenwave.controllers.plans.safety import unsafe_signals, write_excluded
from greenwave.controllers.plans.timing import TimingPlan
from greenwave.controllers.stage_choice import (
    DEFAULT_STAGE_DESIGN,
    DesignChoice,
    apply_choice,
    choice_meta,
    choose_designs,
    own_incomplete,
)
from greenwave.controllers.switching import unsafe_own_programs
from greenwave.engine.arrays import SUMO_PARAMS, SUMO_SATURATION_FLOW_PER_LANE_VPH, CompiledNetwork, ModelParams
from greenwave.engine.model import evaluate
from greenwave.engine.optimise import Objective, OptimiseResult, OptimiserSettings, optimise, webster_plan
from greenwave.engine.routing import ensure_routes
from greenwave.errors import NetworkError, PlanError, ScenarioError
from greenwave.networks import load_network
from greenwave.networks.compile import SUMO_COMPILE_OPTIONS, compile_network
from greenwave.networks.model import RoadNetwork
from greenwave.networks.route_flows import movement_flows
from greenwave.networks.subareas import SETTING_RULES, SubareaSettings
from greenwave.networks.subareas import subareas as partition_subareas

__all__ = [
    "SUBAREA_OPTIONS", "DemandPlan", "Optimiser", "SubareaPlan", "demand_flows", "designs_for_run", "plan_for_demand",
    "subarea_settings", "with_design_choice",
]

#: A controller's own optimiser: the plan of ``signals`` on ``network`` for the movement flows.
Optimiser = Callable[[RoadNetwork, pd.DataFrame, tuple[str, ...]], TimingPlan]


@dataclass(frozen=True)
class SubareaPlan:
    """The default optimiser's plan of one sub-area (its signals share one cycle): the network
    compiled for them, the optimiser's result and the model's PI of the programs the signals run
    today (None where the model cannot time them, e.g. own programs of different cycles)."""

    signals: tuple[str, ...]
    compiled: CompiledNetwork
    result: OptimiseResult
    base_pi: float | None


@dataclass
class DemandPlan:
    """Everything the pipeline produced, for the controllers, the CLI and reports.

    ``subareas`` and ``existing`` come from the default optimiser (empty and None with a
    controller's own).
    """

    network: RoadNetwork  # with the chosen stage designs as default programs
    plan: TimingPlan
    excluded: dict[str, str]  # signals left on their own programs (no safe plan, or leave_out), with why
    existing: TimingPlan | None = None  # the network's own programs for the compiled signals
    designs: dict[str, DesignChoice] = field(default_factory=dict)  # signal -> DesignChoice (stage_design)
    flows: pd.DataFrame | None = None  # the driving movement flows planned for, veh/h
    signals: tuple[str, ...] = ()  # the signals planned
    subareas: tuple[SubareaPlan, ...] = ()  # the default optimiser's sub-areas, largest first

    @property
    def base_pi(self) -> float | None:
        """The model's PI of the programs the planned signals run today (None when unknown for a sub-area)."""
        pis = [a.base_pi for a in self.subareas]
        return None if not pis or any(p is None for p in pis) else float(sum(pis))  # type: ignore[arg-type]


def demand_flows(
    network: RoadNetwork,
    net_file: Path,
    route_files: Sequence[Path],
    *,
    workdir: Path,
    seed: int,
    begin_s: float,
    end_s: float,
    route_choice: Sequence[str] = (),
) -> pd.DataFrame:
    """Movement flows (veh/h) between the driving edges of ``network`` that vehicles departing in
    [begin_s, end_s) put on it; trips without routes are routed first (``ensure_routes``, with
    ``route_choice``: the run's route-choice options, :attr:`RunSpec.route_choice`)."""
    routes = ensure_routes(net_file, list(route_files), workdir=workdir, seed=seed, begin=begin_s, end=end_s,
                           route_choice=route_choice)
    return network.driving_flows(movement_flows(routes, begin_s=begin_s, end_s=end_s))


def designs_for_run(
    network: RoadNetwork,
    mode: str,
    *,
    net_file: Path,
    route_files: Any,
    begin_s: float,
    end_s: float,
    workdir: Path,
    seed: int,
    route_choice: Sequence[str] = (),
    proof_follows: bool = True,
) -> tuple[RoadNetwork, dict[str, DesignChoice]]:
    """For a controller's ``prepare``: choose designs on the run's demand (``mode``) and return
    the network with them applied, and the choice (empty for ``own``, but for the signals of
    :func:`~greenwave.controllers.stage_choice.own_incomplete`, which get the model's best design).
    ``proof_follows``: see :func:`~greenwave.controllers.stage_choice.choose_designs`."""
    signals = None
    if mode == "own":
        signals = own_incomplete(network)
        if not signals:
            return network, {}
        mode = "best"  # those signals get the model's best design; the rest keep their own
    flows = None
    if mode == "best":
        flows = demand_flows(network, net_file, route_files, workdir=workdir, seed=seed, begin_s=begin_s,
                             end_s=end_s, route_choice=route_choice)
    choice = choose_designs(network, flows, mode, workdir=workdir, seed=seed, signals=signals,
                            proof_follows=proof_follows)
    return apply_choice(network, choice), choice


def with_design_choice(plan: TimingPlan, choice: Mapping[str, DesignChoice], mode: str) -> TimingPlan:
    """``plan`` carrying the generated designs its signals run, and in ``meta["stage_design"]``
    why each signal's design won (nothing added when no design was chosen)."""
    if choice:
        plan.designs = {sid: c.design for sid, c in choice.items() if not c.design.is_own and sid in plan.signals}
        plan.meta["stage_design"] = choice_meta(mode, {s: c for s, c in choice.items() if s in plan.signals})
    return plan


#: The options that set a plan's sub-areas (``optimised``, ``greenwave optimise``).
SUBAREA_OPTIONS: tuple[str, ...] = ("subareas", "coupling_threshold", "always_couple_m", "max_distance_m")


def subarea_settings(owner: str, options: Mapping[str, Any], *, default: bool = False) -> SubareaSettings | None:
    """:class:`~greenwave.networks.subareas.SubareaSettings` from a controller's options (see
    :data:`SUBAREA_OPTIONS`); None for ``subareas = false`` (one common cycle for every signal),
    which is what an absent ``subareas`` means unless ``default``.

    Raises
    ------
    ScenarioError
        Naming ``owner`` and the option, for an unknown option or a value out of range.
    """
    # option -> SubareaSettings field (checked by its SETTING_RULES); keep_factor: for a centre that
    # partitions again (hysteresis)
    fields = {"coupling_threshold": "threshold", "always_couple_m": "always_m", "max_distance_m": "max_distance_m",
              "keep_factor": "keep_factor"}
    unknown = sorted(set(options) - {"subareas", *fields})
    if unknown:
        raise ScenarioError(f"{owner}: unknown sub-area options {unknown}; valid: subareas, {', '.join(fields)}")
    on = options.get("subareas", default)
    if not isinstance(on, bool):
        raise ScenarioError(f"{owner}: subareas must be true or false, not {on!r}")
    kw: dict[str, float] = {}
    for key, field_name in fields.items():
        if key in options:
            v = options[key]
            rule, ok = SETTING_RULES[field_name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(float(v)):
                raise ScenarioError(f"{owner}: {key} must be a number {rule}, not {v!r}")
            kw[field_name] = float(v)
    if kw and not on:
        raise ScenarioError(f"{owner}: {', '.join(sorted(set(options) - {'subareas'}))} set with subareas = false")
    settings = SubareaSettings(**kw)
    return settings if on else None


def _without(signals: Sequence[str], left_out: Mapping[str, str], net_file: Path,
             excluded: Mapping[str, str]) -> tuple[str, ...]:
    keep = tuple(s for s in signals if s not in left_out)
    if not keep:
        raise PlanError(f"{net_file}: no signal can be planned safely: {dict(excluded)}")
    return keep


def plan_for_demand(
    net_file: Path,
    route_files: Sequence[Path],
    *,
    begin_s: float,
    end_s: float,
    workdir: Path,
    seed: int = 0,
    objective: Objective = "delay",
    settings: OptimiserSettings | None = None,
    params: ModelParams | None = None,
    saturation_flow_per_lane: float = SUMO_SATURATION_FLOW_PER_LANE_VPH,
    compile_options: Mapping[str, Any] | None = None,
    program_files: Sequence[Path] = (),
    run_begin_s: float = 0.0,
    stage_design: str = DEFAULT_STAGE_DESIGN,
    network: RoadNetwork | None = None,
    optimiser: Optimiser | None = None,
    route_choice: Sequence[str] = (),
    leave_out: Mapping[str, str] | Collection[str] = (),
    subareas: SubareaSettings | None = None,
) -> DemandPlan:
    """Count flows from the routes in [begin_s, end_s), choose designs, compile and plan the safe signals.

    The plan runs in SUMO, so the model uses the settings measured there by default
    (:data:`greenwave.engine.arrays.SUMO_PARAMS`: platoon lag and dispersion, the time loss of a
    stop as stop penalty, effective green; saturation flow
    :data:`~greenwave.engine.arrays.SUMO_SATURATION_FLOW_PER_LANE_VPH` veh/h per lane; turning
    rates, gap acceptance and shared-lane blocking
    :data:`~greenwave.networks.compile.SUMO_COMPILE_OPTIONS`, unless ``compile_options`` says
    otherwise). ``program_files`` (the scenario's additional files with programs, in load
    order) and ``run_begin_s`` decide which program each signal runs, as in SUMO; a caller that
    has loaded that network already passes it as ``network``.

    ``stage_design`` (``"own"``, ``"best"`` or a design name, see
    :mod:`greenwave.controllers.stage_choice`) says which stages each signal runs; the plan
    carries the chosen designs and records in ``meta["stage_design"]`` why each won.

    ``route_choice``: duarouter arguments that route trips as the simulation does
    (:attr:`~greenwave.engine.run.RunSpec.route_choice`).

    ``leave_out``: signals not to plan (they keep the programs they run; ``optimised`` plans again
    without the signals its proof found losing, so the others' cycle is no longer theirs), or a
    mapping of them to why; they are listed in ``excluded`` and ``excluded_signals.txt``.

    ``optimiser`` replaces the default: one fixed-time plan for all signals on one common cycle,
    started from the network's own timings and optimised with ``objective`` and ``settings``; or,
    with ``subareas``, a plan per sub-area (:func:`greenwave.networks.subareas.subareas`:
    neighbours with heavy flow between them, or close together, share a cycle and offsets; the
    others run cycles of their own). One common cycle is the default because SUMO measured no gain
    from sub-areas on the real networks (one hour, seed 1, ``optimised``: Luxembourg 51.6 s/veh
    with one cycle, 53.7 and 52.6 with two partitions; DRT 37.6, 38.4 and 38.1; corridor, one
    sub-area either way, 21.8 and 20.2, which is what the order of the signals alone does to the
    hill-climb), and an isolated signal on its own cycle goes to the ends of the cycle range (DRT's
    mid-block crossings to 150 s, where vehicle delay is all the model weighs). A controller's own
    optimiser's first plan is its own safety probe.

    Raises
    ------
    PlanError
        When no signal can be planned safely.
    """
    workdir = Path(workdir)
    if network is None:
        network = load_network(net_file, saturation_flow_per_lane=saturation_flow_per_lane,
                               program_files=program_files, begin_s=run_begin_s)
    flows = demand_flows(network, net_file, route_files, workdir=workdir, seed=seed, begin_s=begin_s, end_s=end_s,
                         route_choice=route_choice)
    options = SUMO_COMPILE_OPTIONS if compile_options is None else compile_options
    choice: dict[str, DesignChoice] = {}
    own_network = network
    if stage_design != "own":
        choice = choose_designs(network, flows, stage_design, workdir=workdir, params=params,
                                compile_options=options, seed=seed)
        network = apply_choice(network, choice)
    # a signal whose own program is unsafe gets no safe plan from any timing: leave it out
    compilable = compile_network(network, flows, **options).signal_ids
    excluded = {s: why for s, why in unsafe_own_programs(network).items() if s in compilable}
    signals = _without(compilable, excluded, net_file, excluded)
    if leave_out:  # listed with the others left alone, with the caller's reason
        left = dict(leave_out) if isinstance(leave_out, Mapping) else dict.fromkeys(leave_out, "left out by the caller")
        left = {s: why for s, why in left.items() if s in signals}
        excluded.update(left)
        signals = _without(signals, left, net_file, excluded)

    settings = settings or OptimiserSettings(seed=seed)
    params = params or SUMO_PARAMS
    made: dict[str, Any] = {}

    def one_area(net: RoadNetwork, fl: pd.DataFrame, sigs: tuple[str, ...]) -> tuple[SubareaPlan, TimingPlan]:
        """One common cycle for ``sigs``, optimised from the network's own timings; and the
        programs they run today."""
        compiled = compile_network(net, fl, signals=list(sigs), **options)
        base_pi = None
        start = None
        existing = plan_from_network(net, compiled)  # the start: the designs' default timings
        try:
            start = arrays_from_plan(compiled, existing)
            base_pi = float(evaluate(compiled, start, params).pi)
        except PlanError:
            start = None  # the network's own programs have different cycles: no common start
        if own_network is not net:  # the PI of the network's own programs, not of the designs' defaults
            try:
                own_c = compile_network(own_network, fl, signals=list(compiled.signal_ids), **options)
                existing = plan_from_network(own_network, own_c)  # what the signals run today
                base_pi = float(evaluate(own_c, arrays_from_plan(own_c, existing), params).pi)
            except (PlanError, NetworkError):
                base_pi = None
        result = optimise(compiled, settings=settings, params=params, objective=objective, start=start)
        return SubareaPlan(tuple(compiled.signal_ids), compiled, result, base_pi), existing

    def fixed_time(net: RoadNetwork, fl: pd.DataFrame, sigs: tuple[str, ...]) -> TimingPlan:
        """The default optimiser: a plan per sub-area of ``sigs`` (one for all without ``subareas``)."""
        groups = [sigs] if subareas is None else partition_subareas(net, fl, sigs, subareas)
        areas, plans, existing = [], TimingPlan({}, {"source": "arrays"}), None
        for group in groups:
            area, own = one_area(net, fl, group)
            areas.append(area)
            plans.signals.update(plan_from_arrays(area.compiled, area.result.plan).signals)
            if existing is None:
                existing = own
            else:
                existing.signals.update(own.signals)
        plans.meta["subareas"] = [{"signals": list(a.signals), "cycle_s": float(a.result.plan.cycle_s)} for a in areas]
        made.update(subareas=tuple(areas), existing=existing)
        return plans

    def webster(net: RoadNetwork, fl: pd.DataFrame, sigs: tuple[str, ...]) -> TimingPlan:
        compiled = compile_network(net, fl, signals=list(sigs), **options)
        return plan_from_arrays(compiled, webster_plan(compiled, settings))

    probe = webster if optimiser is None else optimiser
    first = with_design_choice(probe(network, flows, signals), choice, stage_design)
    bad = unsafe_signals(first, network)
    excluded.update(bad)
    if excluded:
        write_excluded(excluded, workdir / "excluded_signals.txt", "not planned")
    else:  # every signal planned: an earlier plan's list in a reused folder would say otherwise
        (workdir / "excluded_signals.txt").unlink(missing_ok=True)
    if bad:
        signals = _without(signals, bad, net_file, excluded)
    if optimiser is not None and not bad:
        plan = first  # a controller's own first plan is its plan when every signal of it is safe
    else:
        plan = with_design_choice((optimiser or fixed_time)(network, flows, signals), choice, stage_design)
    return DemandPlan(network, plan, excluded, made.get("existing"), choice, flows, signals, made.get("subareas", ()))
