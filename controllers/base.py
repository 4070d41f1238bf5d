"""The controller interface: prepare before SUMO starts, then observe → act every step.

A controller may contribute SUMO additional files (signal programs, detectors) before the
simulation starts, and may act on the signals each step through the session's connection.
Controllers that only install programs (the SUMO baselines) do nothing per step. What a
controller knows of its run is the run record, :class:`greenwave.engine.run.RunSpec`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from greenwave.errors import ScenarioError

if TYPE_CHECKING:
    from greenwave.engine.run import RunSpec
    from greenwave.engine.session import SumoSession


ControllerKind = Literal["baseline", "greenwave"]
#: ``baseline``: what greenwave is compared against (the network's own programs, SUMO's
#: controllers and tools); ``greenwave``: greenwave's own strategies and plans.
CONTROLLER_KINDS: tuple[str, ...] = ("baseline", "greenwave")


class Controller(ABC):
    """Base class of every signal control strategy.

    A registered controller declares its ``name`` and its ``kind`` (one of
    :data:`CONTROLLER_KINDS`); the first line of its docstring describes it.
    """

    name: ClassVar[str]
    kind: ClassVar[ControllerKind]
    summary_columns: ClassVar[Mapping[str, float]] = {}
    """KPI columns :meth:`finish` adds to ``summary.csv`` that every run has, with the value a
    run of a controller without them reports (see :func:`summary_defaults`)."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = dict(options or {})

    @classmethod
    def declared_options(cls) -> frozenset[str] | None:
        """The option names the controller takes (``[controller_options.NAME]``), checked when
        a scenario is loaded; ``None``: not declared, checked only when the controller runs."""
        return None

    def prepare(self, ctx: RunSpec) -> list[Path]:
        """Before SUMO starts: return additional files to load (default: none)."""
        return []

    def start(self, sim: SumoSession) -> None:  # noqa: B027 - an optional hook
        """After SUMO started, before the first step: subscribe to what is observed."""

    def step(self, sim: SumoSession) -> None:  # noqa: B027 - an optional hook
        """After each simulation step: observe and act."""

    def finish(self, ctx: RunSpec) -> dict[str, Any]:
        """After the run (SUMO closed): extra KPI columns for the run's summary row.

        Detailed outputs (time series) go into ``ctx.workdir``, written atomically.
        """
        return {}


class ProgramController(Controller):
    """A controller that installs signal programs before the run and then lets SUMO run them."""

    @abstractmethod
    def programs(self, ctx: RunSpec) -> Path | None:
        """Write the additional file with the programs; None keeps the network's own."""

    def prepare(self, ctx: RunSpec) -> list[Path]:
        path = self.programs(ctx)
        return [] if path is None else [path]


_REGISTRY: dict[str, type[Controller]] = {}


def register(cls: type[Controller]) -> type[Controller]:
    """Class decorator: make a controller available by its ``name``.

    Raises TypeError when the class declares no ``kind`` among :data:`CONTROLLER_KINDS` or no
    docstring (its description).
    """
    kind = getattr(cls, "kind", None)
    if kind not in CONTROLLER_KINDS:
        raise TypeError(
            f"controller class {cls.__name__} ({getattr(cls, 'name', '?')!r}) must declare "
            f"kind = one of {', '.join(CONTROLLER_KINDS)}, not {kind!r}"
        )
    if not (cls.__doc__ or "").strip():
        raise TypeError(f"controller class {cls.__name__} needs a docstring: its description")
    _REGISTRY[cls.name] = cls
    return cls


def available_controllers() -> list[str]:
    """Names of every registered controller."""
    from greenwave.controllers import (  # noqa: F401  (they register)
        baselines,
        central,
        fixed,
        max_pressure,
        max_pressure_cyclic,
        optimised,
        proven,
        schedule,
    )

    return sorted(_REGISTRY)


def summary_defaults() -> dict[str, float]:
    """The KPI columns every run's summary row has because some controller reports them
    (:attr:`Controller.summary_columns`), with the value the other controllers' runs report;
    in controller name order, each column once."""
    available_controllers()
    out: dict[str, float] = {}
    for name in sorted(_REGISTRY):
        for col, default in _REGISTRY[name].summary_columns.items():
            out.setdefault(col, default)
    return out


def check_controller_options(name: str, options: Mapping[str, Any], where: str) -> None:
    """:class:`ScenarioError` naming ``where``, the controller and the valid names when
    ``options`` has a name that controller ``name`` does not declare."""
    names = available_controllers()
    if name not in _REGISTRY:
        raise ScenarioError(f"{where}: controller_options: unknown controller {name!r}; valid: {', '.join(names)}")
    valid = _REGISTRY[name].declared_options()
    if valid is None:
        return
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ScenarioError(
            f"{where}: controller_options.{name}: unknown option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; valid: {', '.join(sorted(valid)) or 'none (it takes no options)'}"
        )


@dataclass(frozen=True)
class ControllerInfo:
    """A registered controller as ``greenwave controllers`` lists it."""

    name: str
    kind: ControllerKind
    description: str


def controller_infos() -> list[ControllerInfo]:
    """Every registered controller with its kind and description (its docstring's first line),
    sorted by name."""
    names = available_controllers()
    return [
        ControllerInfo(n, _REGISTRY[n].kind, (_REGISTRY[n].__doc__ or "").strip().splitlines()[0])
        for n in names
    ]


def controller_kind(name: str) -> ControllerKind:
    """The kind of a registered controller (ScenarioError for unknown names)."""
    available_controllers()
    if name not in _REGISTRY:
        raise ScenarioError(f"unknown controller {name!r}; valid controllers: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name].kind


def make_controller(name: str, options: Mapping[str, Any] | None = None) -> Controller:
    """Instantiate a controller by name; unknown names list the valid ones."""
    names = available_controllers()
    if name not in _REGISTRY:
        raise ScenarioError(f"unknown controller {name!r}; valid controllers: {', '.join(names)}")
    return _REGISTRY[name](options)
