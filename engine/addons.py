"""Run add-ons: parts of a simulation that are not the signal controller (parking, faults...).

A scenario may name add-ons in its own top-level tables (``[parking]``, for example), and a run
may ask for others (the transition safety monitor of ``--check-safety``); which add-ons exist is
decided above the engine (:mod:`greenwave.scenarios.addons`), which makes them through their
factories. For each run the runner creates every add-on of the run's record
(:attr:`greenwave.engine.run.RunSpec.addons`), lets it contribute SUMO inputs before the start,
calls it after every step next to the signal controller, and merges the KPIs it returns at the
end into the run's ``summary.csv`` row. Add-ons write their own detailed outputs (time series,
per-car-park tables) into the run's folder, atomically.

The life cycle mirrors :class:`greenwave.controllers.base.Controller`::

    prepare(run) -> AddonInputs      before SUMO starts
    start(sim)                        after SUMO started
    step(sim)                         after every simulation step
    finish(run) -> dict               after SUMO closed: KPI columns for summary.csv
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from greenwave.errors import ScenarioError

if TYPE_CHECKING:
    from greenwave.engine.run import RunSpec
    from greenwave.engine.session import SumoSession


@dataclass(frozen=True)
class AddonInputs:
    """What an add-on adds to the SUMO command: route files, additional files, extra options."""

    route_files: tuple[Path, ...] = ()
    additional_files: tuple[Path, ...] = ()
    extra_args: tuple[str, ...] = ()


class RunAddon:
    """Base class of run add-ons. ``options`` are the add-on's validated scenario table."""

    name: ClassVar[str]

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = dict(options or {})

    @classmethod
    def parse_options(cls, raw: Any, *, where: str, base: Path) -> dict[str, Any]:
        """Validate the add-on's scenario table; raise :class:`ScenarioError` naming the key.

        ``where`` names the scenario file, ``base`` is its folder (relative paths resolve there).
        The returned dict must be picklable: it travels to worker processes with the job.
        """
        if not isinstance(raw, dict):
            raise ScenarioError(f"{where}: [{cls.name}] must be a table")
        return dict(raw)

    def prepare(self, ctx: RunSpec) -> AddonInputs:
        """Before SUMO starts: files and options to add to the simulation."""
        return AddonInputs()

    def start(self, sim: SumoSession) -> None:  # noqa: B027 - optional hook
        """After SUMO started, before the first step."""

    def step(self, sim: SumoSession) -> None:  # noqa: B027 - optional hook
        """After each simulation step (after the signal controller's step)."""

    def finish(self, ctx: RunSpec) -> dict[str, Any]:
        """After the run (SUMO closed, its outputs flushed): KPI columns for the summary row."""
        return {}


AddonFactory = Callable[[Mapping[str, Any]], RunAddon]
"""Makes a run add-on from its options (an add-on class is one)."""
