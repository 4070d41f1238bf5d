"""The baselines every greenwave result is compared against.

- ``static``: the programs SUMO runs: the network's own, or the scenario's own (additional
  ``tlLogic`` files, WAUTs), untouched.
- ``actuated`` / ``delay_based``: SUMO's built-in actuated controllers applied to every signal.
- ``sumo-webster``: SUMO's ``tools/tlsCycleAdaptation.py`` (Webster cycle and splits) run on the
  scenario's own demand.
- ``sumo-coordinator``: SUMO's ``tools/tlsCoordinator.py`` (offsets along the main flows).
- ``sumo-rebuilt-static`` / ``sumo-rebuilt-actuated`` / ``sumo-rebuilt-delay_based``: the
  programs SUMO designs itself for every signal (``netconvert --tls.rebuild`` with its default
  timing and no all-red: the strongest in SUMO), see :mod:`greenwave.controllers.rebuilt_programs`;
  option ``all_red = "own"`` keeps the all-red of the programs SUMO runs instead.

Every controller here is of kind ``baseline``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

from greenwave.controllers import rebuilt_programs, sumo_programs
from greenwave.controllers.base import ProgramController, register
from greenwave.engine.run import RunSpec
from greenwave.errors import ScenarioError


class _Baseline(ProgramController):
    kind = "baseline"


def _keywords(func: Callable[..., Any], given: set[str]) -> frozenset[str]:
    """The keyword options of ``func`` that a controller passes on (those it sets itself left out)."""
    return frozenset(n for n, p in inspect.signature(func).parameters.items()
                     if p.kind is inspect.Parameter.KEYWORD_ONLY and n not in given)


@register
class StaticController(_Baseline):
    """The programs SUMO runs, unchanged: the network's own or the scenario's, as they are.

    The scenario's additional files and WAUTs count; actuated city programs stay actuated."""

    name = "static"

    @classmethod
    def declared_options(cls) -> frozenset[str]:
        return frozenset()

    def programs(self, ctx: RunSpec) -> Path | None:
        return None


class _SumoActuatedController(_Baseline):
    """Every signal's own program run by one of SUMO's actuated controllers."""

    program_type: ClassVar[Literal["actuated", "delay_based"]]

    @classmethod
    def declared_options(cls) -> frozenset[str]:
        return _keywords(sumo_programs.actuated_programs, {"workdir", "kind"})

    def programs(self, ctx: RunSpec) -> Path | None:
        return sumo_programs.actuated_programs(
            ctx.net_file, workdir=ctx.workdir, kind=self.program_type, program_files=ctx.program_files,
            begin_s=ctx.begin_s, **self.options
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

    @classmethod
    def declared_options(cls) -> frozenset[str]:
        return _keywords(sumo_programs.webster_programs, {"workdir", "begin", "end", "seed", "route_choice"})

    def programs(self, ctx: RunSpec) -> Path | None:
        return sumo_programs.webster_programs(
            ctx.net_file,
            list(ctx.demand_files),
            workdir=ctx.workdir,
            begin=ctx.begin_s,
            end=ctx.end_s,
            seed=ctx.seed,
            route_choice=ctx.route_choice,
            program_files=ctx.program_files,
            **self.options,
        )


@register
class SumoCoordinatorController(_Baseline):
    """Offsets from SUMO's tlsCoordinator.py along the scenario's main flows."""

    name = "sumo-coordinator"

    @classmethod
    def declared_options(cls) -> frozenset[str]:
        return _keywords(sumo_programs.coordinator_programs, {"workdir", "begin", "end", "seed", "route_choice"})

    def programs(self, ctx: RunSpec) -> Path | None:
        return sumo_programs.coordinator_programs(
            ctx.net_file,
            list(ctx.demand_files),
            workdir=ctx.workdir,
            begin=ctx.begin_s,
            end=ctx.end_s,
            seed=ctx.seed,
            route_choice=ctx.route_choice,
            program_files=ctx.program_files,
            **self.options,
        )


class _SumoRebuiltController(_Baseline):
    """Every signal runs the program SUMO designs for it (netconvert --tls.rebuild)."""

    program_type: ClassVar[rebuilt_programs.RebuiltType]

    @classmethod
    def declared_options(cls) -> frozenset[str]:
        return frozenset({"all_red"})

    def programs(self, ctx: RunSpec) -> Path | None:
        unknown = sorted(set(self.options) - {"all_red"})
        if unknown:
            raise ScenarioError(
                f"controller {self.name!r} takes only the option all_red (it runs SUMO's defaults), got "
                f"{', '.join(unknown)}"
            )
        all_red = self.options.get("all_red", "netconvert")
        if all_red not in rebuilt_programs.ALL_RED:
            raise ScenarioError(f"controller {self.name!r}: all_red must be one of "
                                f"{', '.join(rebuilt_programs.ALL_RED)}, not {all_red!r}")
        return rebuilt_programs.rebuilt_programs(
            ctx.net_file, workdir=ctx.workdir, tls_type=self.program_type, program_files=ctx.program_files,
            begin_s=ctx.begin_s, all_red=all_red,
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
