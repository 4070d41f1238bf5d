"""Run add-ons: parts of a simulation that are not the signal controller (parking, faults...).

A scenario may name add-ons in its own top-level tables (``[parking]``, for example). For each
run the runner creates every add-on the scenario names, lets it contribute SUMO inputs before
the start, calls it after every step next to the signal controller, and merges the KPIs it
returns at the end into the run's ``summary.csv`` row. Add-ons write their own detailed outputs
(time series, per-car-park tables) into the run's folder, atomically.

The life cycle mirrors :class:`greenwave.controllers.base.Controller`::

    prepare(ctx) -> AddonInputs      before SUMO starts
    start(sim)                        after SUMO started
    step(sim)                         after every simulation step
    finish(ctx) -> dict               after SUMO closed: KPI columns for summary.csv
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from greenwave.errors import ScenarioError

if TYPE_CHECKING:
    from greenwave.controllers.base import RunContext
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

    def prepare(self, ctx: RunContext) -> AddonInputs:
        """Before SUMO starts: files and options to add to the simulation."""
        return AddonInputs()

    def start(self, sim: SumoSession) -> None:  # noqa: B027 - optional hook
        """After SUMO started, before the first step."""

    def step(self, sim: SumoSession) -> None:  # noqa: B027 - optional hook
        """After each simulation step (after the signal controller's step)."""

    def finish(self, ctx: RunContext) -> dict[str, Any]:
        """After the run (SUMO closed, its outputs flushed): KPI columns for the summary row."""
        return {}


_ADDONS: dict[str, Callable[..., RunAddon]] = {}


def register_addon(cls: type[RunAddon]) -> type[RunAddon]:
    """Class decorator: make an add-on available under its ``name`` (= its scenario table)."""
    _ADDONS[cls.name] = cls
    return cls


def available_addons() -> dict[str, type[RunAddon]]:
    """Add-on name → class, for every add-on greenwave ships."""
    import greenwave.parking  # noqa: F401  (registers its add-ons, if any)

    return dict(sorted(_ADDONS.items()))  # type: ignore[arg-type]


def make_addon(name: str, options: Mapping[str, Any] | None = None) -> RunAddon:
    """Instantiate an add-on by name; unknown names list the valid ones."""
    addons = available_addons()
    if name not in addons:
        raise ScenarioError(f"unknown run add-on {name!r}; valid: {', '.join(addons) or 'none'}")
    return addons[name](options)
