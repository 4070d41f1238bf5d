"""The ``optimised`` controller: greenwave's own fixed-time plan, optimised on the run's demand.

Before SUMO starts it plans with :func:`greenwave.controllers.planning.plan_for_demand` (movement
flows from the run's routes, stage designs, the network compiled, cycle, splits and offsets
optimised by :func:`greenwave.engine.optimise.optimise`), proves the plan in SUMO, writes it
(JSON) and runs it in SUMO as fixed-time programs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from greenwave.controllers.base import ProgramController, register
from greenwave.controllers.planning import SUBAREA_OPTIONS, DemandPlan, plan_for_demand, subarea_settings
from greenwave.controllers.plans.sumo_writer import write_sumo_additional
from greenwave.controllers.proof import Proof, SimulationSetup, proof_options, prove_plan, run_cases
from greenwave.controllers.stage_choice import DEFAULT_STAGE_DESIGN, check_stage_design_option
from greenwave.engine.calibration import load_calibration
from greenwave.engine.optimise import OptimiserSettings
from greenwave.engine.results import write_text_atomic
from greenwave.engine.run import RunSpec
from greenwave.errors import PlanError, ScenarioError

#: The proof runs of a folder: (seed, simulation setup) pairs, as :func:`~greenwave.controllers.proof.run_cases` makes.
Cases = Callable[[Path], list[tuple[int, SimulationSetup]]]


@dataclass
class ProvenPlan:
    """What :func:`prove_demand_plan` found: the plan to follow (``planned``, the re-plan when it
    was taken), its proof, the decision (candidate, mixed, existing or replanned) and the lines
    of ``proof.txt``."""

    planned: DemandPlan
    proof: Proof
    decision: str
    lines: list[str]


def prove_demand_plan(out: DemandPlan, plan: Callable[[Mapping[str, str]], DemandPlan], cases: Cases, folder: Path, *,
                      program_id: str, jobs: int = 1) -> ProvenPlan:
    """Prove ``out`` in SUMO against the network's own programs
    (:func:`~greenwave.controllers.proof.prove_plan` on ``cases(folder)``); where signals lost on
    their own approaches, plan the others again without them (``plan(leave_out)``), prove that
    plan in ``folder/replanned`` and follow it when SUMO measures it better. What ``optimised``
    and ``greenwave optimise`` recommend."""
    assert out.existing is not None  # the default optimiser records the network's own plan
    proof = prove_plan(out.plan, out.existing, out.network, cases(folder), workdir=folder, program_id=program_id,
                       jobs=jobs)
    lines = proof.lines()
    again = _replan(proof, out, plan, cases, folder / "replanned", program_id, jobs, lines)
    if again is None:
        return ProvenPlan(out, proof, proof.decision, lines)
    return ProvenPlan(again[1], again[0], "replanned", lines)


def _replan(proof: Proof, out: DemandPlan, plan: Callable[[Mapping[str, str]], DemandPlan], cases: Cases,
            folder: Path, program_id: str, jobs: int, lines: list[str]) -> tuple[Proof, DemandPlan] | None:
    """Where the proof found signals that lost on their own approaches, the others were
    planned with them (one common cycle: fkk_in_random's far signal ran the 150 s that
    gneJ21's six protected stages asked for). Plan again without them and prove that plan;
    it replaces the first proof's recommendation when SUMO measures it better (mean RESCO
    delay over the same seeds): then the second proof and plan, else None. Adds what it did
    to ``lines``."""
    lost = frozenset(proof.lost_alone)
    if not lost or not set(out.plan.signals) - lost:
        return None
    try:
        second = plan({s: f"first proof in SUMO: {proof.lost_alone[s]}" for s in lost})
        assert second.existing is not None
        again = prove_plan(second.plan, second.existing, second.network, cases(folder),
                           workdir=folder, program_id=program_id, jobs=jobs,
                           existing_runs=[r for r in proof.runs if r.variant == "existing"])
    except PlanError as exc:
        lines.append(f"re-planned without the {len(lost)} signal(s) that lost: no plan ({exc})")
        return None
    first = proof.mean(proof.decision)
    better = again.decision != "existing" and again.mean(again.decision) < first
    lines.append(f"re-planned without the {len(lost)} signal(s) that lost on their own approaches "
                 f"(they keep their existing programs):")
    lines.extend("  " + line for line in again.lines())
    lines.append(f"  {'taken' if better else 'not taken'}: {again.mean(again.decision):.2f} s/veh against "
                 f"{first:.2f} for the first proof's recommendation")
    if not better:
        return None
    # the recommended plan lists them with the timings they keep, as a mixed one does
    again.plan.signals.update({s: proof.plan.signals[s] for s in lost if s in proof.plan.signals})
    again.kept_existing.update(proof.lost_alone)
    again.plan.meta["proof"] = {**again.plan.meta.get("proof", {}), "decision": "replanned",
                                "kept_existing": dict(again.kept_existing),
                                "first_proof": proof.plan.meta.get("proof", {})}
    return again, second


@register
class OptimisedController(ProgramController):
    """greenwave's optimised fixed-time plan, proven in SUMO against the network's own programs.

    Options: objective, stage_design, prove, proof_seeds, proof_jobs (proof runs at a time, 1),
    calibration, the optimiser's settings such as min_cycle_s, max_cycle_s, and the sub-areas
    (:func:`~greenwave.controllers.planning.subarea_settings`): ``subareas`` (false: one common
    cycle for all, the default, see :func:`~greenwave.controllers.planning.plan_for_demand`; true:
    signals share a cycle only within their sub-area), ``coupling_threshold`` (2.0 veh/h per m),
    ``always_couple_m`` (120), ``max_distance_m`` (1000).

    With ``prove`` (default true) the plan and the network's programs both run ``proof_seeds``
    (2) times in SUMO on the run's routes with seeds of their own
    (:mod:`greenwave.controllers.proof`); signals that lose keep their own programs, and if the
    plan as a whole still loses the network's programs run unchanged. Where some signals lost on
    their own approaches, the others are planned again without them and proven again; that plan
    is taken when SUMO measures it better. ``summary.csv`` gains ``proof_decision`` (candidate,
    mixed, existing, replanned, or not_proven) and ``signals_kept_existing``.
    """

    name = "optimised"
    kind = "greenwave"

    @classmethod
    def declared_options(cls) -> frozenset[str]:
        return frozenset({"objective", "stage_design", "prove", "proof_seeds", "proof_jobs", "calibration",
                          *SUBAREA_OPTIONS, *OptimiserSettings.__dataclass_fields__})

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
        subareas = subarea_settings("controller 'optimised'", {k: opts.pop(k) for k in SUBAREA_OPTIONS if k in opts})
        known = set(OptimiserSettings.__dataclass_fields__)
        unknown = set(opts) - known
        if unknown:
            raise ScenarioError(
                f"controller 'optimised': unknown options {sorted(unknown)}; "
                f"valid: objective, stage_design, prove, proof_seeds, proof_jobs, calibration, "
                f"{', '.join(sorted(known | set(SUBAREA_OPTIONS)))}"
            )
        settings = OptimiserSettings(**{"seed": ctx.seed, **opts})

        def plan(leave_out: Mapping[str, str] = MappingProxyType({})) -> DemandPlan:
            return plan_for_demand(
                ctx.net_file, ctx.routed_demand(),
                begin_s=ctx.demand_begin_s, end_s=ctx.demand_end_s, workdir=ctx.workdir, seed=ctx.seed,
                objective=objective, settings=settings, program_files=ctx.program_files, **sat_kw,
                run_begin_s=ctx.begin_s, stage_design=stage_design, route_choice=ctx.route_choice,
                leave_out=leave_out, subareas=subareas,
            )

        out = plan()
        self.proof_decision, self.kept = "not_proven", 0
        recommended, to_sumo = out.plan, out.plan
        if prove:
            proven = prove_demand_plan(out, plan, lambda folder: run_cases(ctx, folder, proof_seeds),
                                       Path(ctx.workdir) / "proof", program_id="gw_optimised", jobs=proof_jobs)
            out, proof = proven.planned, proven.proof
            self.proof_decision, self.kept = proven.decision, len(proof.kept_existing)
            recommended, to_sumo = proof.plan, proof.changed
            write_text_atomic("\n".join(proven.lines) + "\n", Path(ctx.workdir) / "proof.txt")
        recommended.to_json(ctx.workdir / "plan.json")
        if not to_sumo.signals:
            return None  # SUMO found nothing better than the network's own programs
        return write_sumo_additional(to_sumo, out.network, ctx.workdir / "optimised.add.xml",
                                     program_id="gw_optimised")

    def finish(self, ctx: RunSpec) -> dict[str, Any]:
        return {"proof_decision": getattr(self, "proof_decision", "not_proven"),
                "signals_kept_existing": getattr(self, "kept", 0)}
