"""The ``optimised`` controller: greenwave's own fixed-time plan, optimised on the run's demand.

Before SUMO starts it plans with :func:`greenwave.controllers.planning.plan_for_demand` (movement
flows from the run's routes, stage designs, the network compiled, cycle, splits and offsets
optimised by :func:`greenwave.engine.optimise.optimise`), proves the plan in SUMO, writes it
(JSON) and runs it in SUMO as fixed-time programs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from greenwave.controllers.base import ProgramController, register
from greenwave.controllers.planning import plan_for_demand
from greenwave.controllers.plans.sumo_writer import write_sumo_additional
from greenwave.controllers.proof import proof_options, prove_plan, run_cases
from greenwave.controllers.stage_choice import DEFAULT_STAGE_DESIGN, check_stage_design_option
from greenwave.engine.calibration import load_calibration
from greenwave.engine.optimise import OptimiserSettings
from greenwave.engine.results import write_text_atomic
from greenwave.engine.run import RunSpec
from greenwave.errors import ScenarioError


@register
class OptimisedController(ProgramController):
    """greenwave's optimised fixed-time plan, proven in SUMO against the network's own programs.

    Options: objective, stage_design, prove, proof_seeds, proof_jobs (proof runs at a time, 1),
    calibration and the optimiser's settings such as min_cycle_s, max_cycle_s.

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
        return frozenset({"objective", "stage_design", "prove", "proof_seeds", "proof_jobs", "calibration",
                          *OptimiserSettings.__dataclass_fields__})

    def programs(self, ctx: RunSpec) -> Path | None:
        opts = dict(self.options)
        objective = opts.pop("objective", "delay")
        prove = opts.pop("prove", True)
        calibration = opts.pop("calibration", None)
        sat_kw: dict[str, Any] = {}  # saturation_flow_per_lane of a calibration, if given
        if calibration is not None:
            if not isinstance(calibration, (str, os.PathLike)) or not str(calibration):
                raise ScenarioError("controller 'optimised': calibration must be the path of a calibration.json "
                                    f"(greenwave calibrate writes one), not {calibration!r}")
            sat_kw["saturation_flow_per_lane"] = load_calibration(calibration).saturation_flow_per_lane_vph
        proof_seeds, proof_jobs = proof_options("optimised", opts)
        opts.pop("proof_seeds", None)
        opts.pop("proof_jobs", None)
        if not isinstance(prove, bool):
            raise ScenarioError(f"controller 'optimised': prove must be true or false, not {prove!r}")
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
                f"valid: objective, stage_design, prove, proof_seeds, proof_jobs, calibration, "
                f"{', '.join(sorted(known))}"
            )
        settings = OptimiserSettings(**{"seed": ctx.seed, **opts})
        out = plan_for_demand(
            ctx.net_file, ctx.demand_files,
            begin_s=ctx.demand_begin_s, end_s=ctx.demand_end_s, workdir=ctx.workdir, seed=ctx.seed,
            objective=objective, settings=settings, program_files=ctx.program_files, **sat_kw,
            run_begin_s=ctx.begin_s, stage_design=stage_design, route_choice=ctx.route_choice,
        )
        self.proof_decision, self.kept = "not_proven", 0
        plan, to_sumo = out.plan, out.plan
        if prove:
            proof_dir = Path(ctx.workdir) / "proof"
            assert out.existing is not None  # the default optimiser records the network's own plan
            proof = prove_plan(out.plan, out.existing, out.network, run_cases(ctx, proof_dir, proof_seeds),
                               workdir=proof_dir, program_id="gw_optimised", jobs=proof_jobs)
            plan, to_sumo = proof.plan, proof.changed
            self.proof_decision, self.kept = proof.decision, len(proof.kept_existing)
            write_text_atomic("\n".join(proof.lines()) + "\n", Path(ctx.workdir) / "proof.txt")
        plan.to_json(ctx.workdir / "plan.json")
        if not to_sumo.signals:
            return None  # SUMO found nothing better than the network's own programs
        return write_sumo_additional(to_sumo, out.network, ctx.workdir / "optimised.add.xml",
                                     program_id="gw_optimised")

    def finish(self, ctx: RunSpec) -> dict[str, Any]:
        return {"proof_decision": getattr(self, "proof_decision", "not_proven"),
                "signals_kept_existing": getattr(self, "kept", 0)}
