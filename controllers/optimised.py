"""The ``optimised`` controller: greenwave's own fixed-time plan, optimised on the run's demand.

Before SUMO starts it counts movement flows from the run's routes, compiles the network,
optimises cycle, splits and offsets with :func:`greenwave.engine.optimise.optimise`, writes the
plan (JSON) and runs it in SUMO as fixed-time programs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenwave.controllers.base import ProgramController, register
from greenwave.controllers.stage_choice import (
    DEFAULT_STAGE_DESIGN,
    apply_choice,
    check_stage_design_option,
    choice_meta,
    choose_designs,
)
from greenwave.engine.arrays import SUMO_PARAMS, SUMO_SATURATION_FLOW_PER_LANE_VPH, CompiledNetwork, ModelParams
from greenwave.engine.optimise import Objective, OptimiseResult, OptimiserSettings, optimise
from greenwave.engine.run import RunSpec
from greenwave.errors import ScenarioError


@dataclass
class OptimisedPlan:
    """Everything an optimisation produced, for the CLI and reports."""

    network: Any  # RoadNetwork
    compiled: CompiledNetwork
    result: OptimiseResult
    plan: Any  # TimingPlan
    base_pi: float | None
    excluded: dict[str, str]  # signals left on their own programs (no safe plan), with why
    existing: Any = None  # TimingPlan of the network's own programs for the compiled signals
    designs: dict[str, Any] = field(default_factory=dict)  # signal -> DesignChoice (stage_design)


def optimise_for_demand(
    net_file: Path,
    route_files: tuple[Path, ...] | list[Path],
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
) -> OptimisedPlan:
    """Count flows from the routes in [begin_s, end_s), compile and optimise.

    The plan runs in SUMO, so the model uses the settings measured there by default
    (:data:`greenwave.engine.arrays.SUMO_PARAMS`: platoon lag and dispersion, the time loss of a
    stop as stop penalty, effective green; saturation flow
    :data:`~greenwave.engine.arrays.SUMO_SATURATION_FLOW_PER_LANE_VPH` veh/h per lane; turning
    rates, gap acceptance and shared-lane blocking
    :data:`~greenwave.networks.compile.SUMO_COMPILE_OPTIONS`, unless ``compile_options`` says
    otherwise). ``program_files`` (the scenario's additional files with programs, in load
    order) and ``run_begin_s`` decide which program each signal runs, as in SUMO.

    ``stage_design`` (``"own"``, ``"best"`` or a design name, see
    :mod:`greenwave.controllers.stage_choice`) says which stages each signal runs; the plan
    carries the chosen designs and records in ``meta["stage_design"]`` why each won.
    """
    from greenwave.controllers.plans.arrays import arrays_from_plan, plan_from_arrays, plan_from_network
    from greenwave.engine.model import evaluate
    from greenwave.engine.optimise import webster_plan
    from greenwave.engine.routing import ensure_routes
    from greenwave.errors import PlanError
    from greenwave.networks import load_network
    from greenwave.networks.compile import SUMO_COMPILE_OPTIONS, compile_network
    from greenwave.scenarios.demand import movement_flows

    network = load_network(net_file, saturation_flow_per_lane=saturation_flow_per_lane,
                           program_files=program_files, begin_s=run_begin_s)
    routes = ensure_routes(net_file, list(route_files), workdir=workdir, seed=seed, begin=begin_s, end=end_s)
    flows = network.driving_flows(movement_flows(routes, begin_s=begin_s, end_s=end_s))
    options = SUMO_COMPILE_OPTIONS if compile_options is None else compile_options
    choice: dict[str, Any] = {}
    own_network = network
    if stage_design != "own":
        choice = choose_designs(network, flows, stage_design, workdir=Path(workdir), params=params,
                                compile_options=options, seed=seed)
        network = apply_choice(network, choice)
    compiled = compile_network(network, flows, **options)
    # a signal whose own program is unsafe gets no safe plan from any timing: leave it out
    from greenwave.controllers.plans.safety import unsafe_signals, write_excluded
    from greenwave.controllers.switching import unsafe_own_programs

    excluded = {s: why for s, why in unsafe_own_programs(network).items() if s in compiled.signal_ids}
    if excluded:
        keep = [s for s in compiled.signal_ids if s not in excluded]
        if not keep:
            raise PlanError(f"{net_file}: no signal can be planned safely: {excluded}")
        compiled = compile_network(network, flows, signals=keep, **options)
    settings = settings or OptimiserSettings(seed=seed)
    probe = plan_from_arrays(compiled, webster_plan(compiled, settings))
    excluded.update(unsafe_signals(probe, network))
    if excluded:
        write_excluded(excluded, Path(workdir) / "excluded_signals.txt", "plan not safe")
        keep = [s for s in compiled.signal_ids if s not in excluded]
        if not keep:
            raise PlanError(f"{net_file}: no signal can be planned safely: {excluded}")
        compiled = compile_network(network, flows, signals=keep, **options)
    params = params or SUMO_PARAMS
    base_pi = None
    start = None
    existing = plan_from_network(network, compiled)  # the start: the designs' default timings
    try:
        start = arrays_from_plan(compiled, existing)
        base_pi = float(evaluate(compiled, start, params).pi)
    except PlanError:
        start = None  # the network's own programs have different cycles: no common start
    if own_network is not network:  # the PI of the network's own programs, not of the designs' defaults
        from greenwave.errors import NetworkError

        try:
            own_c = compile_network(own_network, flows, signals=list(compiled.signal_ids), **options)
            existing = plan_from_network(own_network, own_c)  # what the signals run today
            base_pi = float(evaluate(own_c, arrays_from_plan(own_c, existing), params).pi)
        except (PlanError, NetworkError):
            base_pi = None
    result = optimise(compiled, settings=settings, params=params, objective=objective, start=start)
    plan = plan_from_arrays(compiled, result.plan)
    if choice:
        plan.designs = {sid: c.design for sid, c in choice.items() if not c.design.is_own and sid in plan.signals}
        plan.meta["stage_design"] = choice_meta(stage_design, {s: c for s, c in choice.items() if s in plan.signals})
    return OptimisedPlan(network, compiled, result, plan, base_pi, excluded, existing, choice)


@register
class OptimisedController(ProgramController):
    """greenwave's optimised fixed-time plan, proven in SUMO against the network's own programs.

    Options: objective, stage_design, prove, proof_seeds, calibration and the optimiser's
    settings such as min_cycle_s, max_cycle_s.

    With ``prove`` (default true) the plan and the network's programs both run ``proof_seeds``
    (2) times in SUMO on the run's routes with seeds of their own
    (:mod:`greenwave.controllers.proof`); signals that lose keep their own programs, and if the
    plan as a whole still loses the network's programs run unchanged. ``summary.csv`` gains
    ``proof_decision`` (candidate, mixed, existing, or not_proven) and ``signals_kept_existing``.
    """

    name = "optimised"
    kind = "greenwave"

    @classmethod
    def declared_options(cls) -> frozenset[str]:
        return frozenset({"objective", "stage_design", "prove", "proof_seeds", "calibration",
                          *OptimiserSettings.__dataclass_fields__})

    def programs(self, ctx: RunSpec) -> Path | None:
        from greenwave.controllers.plans.sumo_writer import write_sumo_additional
        from greenwave.controllers.proof import prove_plan, run_cases

        opts = dict(self.options)
        objective = opts.pop("objective", "delay")
        prove = opts.pop("prove", True)
        calibration = opts.pop("calibration", None)
        sat_kw: dict[str, Any] = {}  # saturation_flow_per_lane of a calibration, if given
        if calibration is not None:
            from greenwave.engine.calibration import load_calibration

            if not isinstance(calibration, (str, os.PathLike)) or not str(calibration):
                raise ScenarioError("controller 'optimised': calibration must be the path of a calibration.json "
                                    f"(greenwave calibrate writes one), not {calibration!r}")
            sat_kw["saturation_flow_per_lane"] = load_calibration(calibration).saturation_flow_per_lane_vph
        proof_seeds = opts.pop("proof_seeds", 2)
        if not isinstance(prove, bool):
            raise ScenarioError(f"controller 'optimised': prove must be true or false, not {prove!r}")
        if isinstance(proof_seeds, bool) or not isinstance(proof_seeds, int) or not 1 <= proof_seeds <= 20:
            raise ScenarioError(f"controller 'optimised': proof_seeds must be an integer 1..20, not {proof_seeds!r}")
        if objective not in ("delay", "stops", "bandwidth"):
            raise ScenarioError(
                f"controller 'optimised': objective must be delay, stops or bandwidth, not {objective!r}"
            )
        stage_design = check_stage_design_option(opts.pop("stage_design", DEFAULT_STAGE_DESIGN),
                                                 "controller 'optimised'")
        known = set(OptimiserSettings.__dataclass_fields__)
        unknown = set(opts) - known
        if unknown:
            raise ScenarioError(
                f"controller 'optimised': unknown options {sorted(unknown)}; "
                f"valid: objective, stage_design, prove, proof_seeds, calibration, {', '.join(sorted(known))}"
            )
        settings = OptimiserSettings(**{"seed": ctx.seed, **opts})
        out = optimise_for_demand(
            ctx.net_file, ctx.demand_files,
            begin_s=ctx.demand_begin_s, end_s=ctx.demand_end_s, workdir=ctx.workdir, seed=ctx.seed,
            objective=objective, settings=settings, program_files=ctx.program_files, **sat_kw,
            run_begin_s=ctx.begin_s, stage_design=stage_design,
        )
        self.proof_decision, self.kept = "not_proven", 0
        plan, to_sumo = out.plan, out.plan
        if prove:
            proof_dir = Path(ctx.workdir) / "proof"
            proof = prove_plan(out.plan, out.existing, out.network, run_cases(ctx, proof_dir, proof_seeds),
                               workdir=proof_dir, program_id="gw_optimised")
            plan, to_sumo = proof.plan, proof.changed
            self.proof_decision, self.kept = proof.decision, len(proof.kept_existing)
            from greenwave.engine.results import write_text_atomic

            write_text_atomic("\n".join(proof.lines()) + "\n", Path(ctx.workdir) / "proof.txt")
        plan.to_json(ctx.workdir / "plan.json")
        if not to_sumo.signals:
            return None  # SUMO found nothing better than the network's own programs
        return write_sumo_additional(to_sumo, out.network, ctx.workdir / "optimised.add.xml",
                                     program_id="gw_optimised")

    def finish(self, ctx: RunSpec) -> dict[str, Any]:
        return {"proof_decision": getattr(self, "proof_decision", "not_proven"),
                "signals_kept_existing": getattr(self, "kept", 0)}
