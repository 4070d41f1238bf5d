"""The ``fixed`` controller: a timing plan from a JSON file run as fixed-time SUMO programs."""

from __future__ import annotations

import os
from pathlib import Path

from greenwave.controllers.base import ProgramController, register
from greenwave.controllers.plans.sumo_writer import write_sumo_additional
from greenwave.controllers.plans.timing import TimingPlan
from greenwave.engine.run import RunSpec
from greenwave.errors import ScenarioError

__all__ = ["FixedPlanController"]


@register
class FixedPlanController(ProgramController):
    """Runs a timing plan from a JSON file as fixed-time SUMO programs.

    Options: ``plan`` (path of a plan JSON, required; relative paths from the current folder),
    ``program_id`` (SUMO program id to write, default ``"greenwave"``).
    """

    name = "fixed"
    kind = "greenwave"

    @classmethod
    def declared_options(cls) -> frozenset[str]:
        return frozenset({"plan", "program_id"})

    def programs(self, ctx: RunSpec) -> Path | None:

        unknown = set(self.options) - {"plan", "program_id"}
        if unknown:
            raise ScenarioError(
                f"controller 'fixed': unknown options {sorted(unknown)}; valid: plan, program_id"
            )
        raw = self.options.get("plan")
        if not isinstance(raw, (str, os.PathLike)) or not str(raw):
            raise ScenarioError("controller 'fixed': option 'plan' (path of a timing-plan JSON) is required")
        plan = TimingPlan.from_json(Path(raw))
        network = ctx.network()
        pid = self.options.get("program_id", "greenwave")
        return write_sumo_additional(plan, network, Path(ctx.workdir) / "fixed_plan.add.xml", program_id=str(pid))
