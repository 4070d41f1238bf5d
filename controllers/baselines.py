"""The baselines every greenwave result is compared against.

- ``static``: the network's own fixed-time programs, as they are in the ``.net.xml``.
- ``actuated`` / ``delay_based``: SUMO's built-in actuated controllers applied to every signal.
- ``sumo-webster``: SUMO's ``tools/tlsCycleAdaptation.py`` (Webster cycle and splits) run on the
  scenario's own demand.
- ``sumo-coordinator``: SUMO's ``tools/tlsCoordinator.py`` (offsets along the main flows).
- ``sumo-rebuilt-static`` / ``sumo-rebuilt-actuated`` / ``sumo-rebuilt-delay_based``: the
  programs SUMO designs itself for every signal (``netconvert --tls.rebuild`` with its default
  timing), see :mod:`greenwave.controllers.rebuilt_programs`.

Every controller here is of kind ``baseline``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from greenwave.controllers import rebuilt_programs, sumo_programs
from greenwave.controllers.base import ProgramController, RunContext, register
from greenwave.errors import ScenarioError


class _Baseline(ProgramController):
    kind = "baseline"


@register
class StaticController(_Baseline):
    """The network's own programs, unchanged."""

    name = "static"

    def programs(self, ctx: RunContext) -> Path | None:
        return None


class _SumoActuatedController(_Baseline):
    """Every signal's own program run by one of SUMO's actuated controllers."""

    program_type: ClassVar[Literal["actuated", "delay_based"]]

    def programs(self, ctx: RunContext) -> Path | None:
        return sumo_programs.actuated_programs(
            ctx.net_file, workdir=ctx.workdir, kind=self.program_type, **self.options
        )


@register
class ActuatedController(_SumoActuatedController):
    """SUMO's gap-based actuated control of every signal's own program (its stages, min/max green)."""

    name = "actuated"
    program_type = "actuated"


@register
class DelayBasedController(_SumoActuatedController):
    """SUMO's delay-based actuated control (time loss measured upstream) of every signal's own program."""

    name = "delay_based"
    program_type = "delay_based"


@register
class SumoWebsterController(_Baseline):
    """Webster cycle and splits from SUMO's tlsCycleAdaptation.py on the scenario's demand."""

    name = "sumo-webster"

    def programs(self, ctx: RunContext) -> Path | None:
        return sumo_programs.webster_programs(
            ctx.net_file,
            list(ctx.route_files),
            workdir=ctx.workdir,
            begin=ctx.begin_s,
            end=ctx.end_s,
            seed=ctx.seed,
            **self.options,
        )


@register
class SumoCoordinatorController(_Baseline):
    """Offsets from SUMO's tlsCoordinator.py along the scenario's main flows."""

    name = "sumo-coordinator"

    def programs(self, ctx: RunContext) -> Path | None:
        return sumo_programs.coordinator_programs(
            ctx.net_file,
            list(ctx.route_files),
            workdir=ctx.workdir,
            begin=ctx.begin_s,
            end=ctx.end_s,
            seed=ctx.seed,
            **self.options,
        )


class _SumoRebuiltController(_Baseline):
    """Every signal runs the program SUMO designs for it (netconvert --tls.rebuild)."""

    program_type: ClassVar[rebuilt_programs.RebuiltType]

    def programs(self, ctx: RunContext) -> Path | None:
        if self.options:
            raise ScenarioError(
                f"controller {self.name!r} takes no options (it runs SUMO's defaults), got "
                f"{', '.join(sorted(self.options))}"
            )
        return rebuilt_programs.rebuilt_programs(
            ctx.net_file, workdir=ctx.workdir, tls_type=self.program_type
        ).path


@register
class SumoRebuiltStaticController(_SumoRebuiltController):
    """SUMO's own fixed-time program for every signal (netconvert --tls.rebuild, default timing)."""

    name = "sumo-rebuilt-static"
    program_type = "static"


@register
class SumoRebuiltActuatedController(_SumoRebuiltController):
    """SUMO's own gap-based actuated program for every signal (netconvert --tls.rebuild)."""

    name = "sumo-rebuilt-actuated"
    program_type = "actuated"


@register
class SumoRebuiltDelayBasedController(_SumoRebuiltController):
    """SUMO's own delay-based actuated program for every signal (netconvert --tls.rebuild)."""

    name = "sumo-rebuilt-delay_based"
    program_type = "delay_based"
