"""The controller interface: prepare before SUMO starts, then observe → act every step.

A controller may contribute SUMO additional files (signal programs, detectors) before the
simulation starts, and may act on the signals each step through the session's connection.
Controllers that only install programs (the SUMO baselines) do nothing per step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from greenwave.errors import ScenarioError

if TYPE_CHECKING:
    from greenwave.engine.session import SumoSession


@dataclass(frozen=True)
class RunContext:
    """What a controller may know about the run it takes part in.

    Times in seconds of simulated time; ``workdir`` is a folder of this run alone.
    """

    scenario: str
    net_file: Path
    route_files: tuple[Path, ...]
    begin_s: float
    end_s: float
    seed: int
    workdir: Path
    options: Mapping[str, Any]
    demand_begin_s: float = 0.0
    demand_end_s: float = 0.0
    communication: Any = None
    """The scenario's :class:`~greenwave.controllers.network_control.CommunicationSpec`, or
    None (every signal networked, no faults)."""

    def __post_init__(self) -> None:
        if self.demand_end_s <= self.demand_begin_s:  # no separate demand window: the run's
            object.__setattr__(self, "demand_begin_s", self.begin_s)
            object.__setattr__(self, "demand_end_s", self.end_s)


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

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = dict(options or {})

    def prepare(self, ctx: RunContext) -> list[Path]:
        """Before SUMO starts: return additional files to load (default: none)."""
        return []

    def start(self, sim: SumoSession) -> None:  # noqa: B027 - an optional hook
        """After SUMO started, before the first step: subscribe to what is observed."""

    def step(self, sim: SumoSession) -> None:  # noqa: B027 - an optional hook
        """After each simulation step: observe and act."""

    def finish(self, ctx: RunContext) -> dict[str, Any]:
        """After the run (SUMO closed): extra KPI columns for the run's summary row.

        Detailed outputs (time series) go into ``ctx.workdir``, written atomically.
        """
        return {}


class ProgramController(Controller):
    """A controller that installs signal programs before the run and then lets SUMO run them."""

    @abstractmethod
    def programs(self, ctx: RunContext) -> Path | None:
        """Write the additional file with the programs; None keeps the network's own."""

    def prepare(self, ctx: RunContext) -> list[Path]:
        path = self.programs(ctx)
        return [] if path is None else [path]


_REGISTRY: dict[str, Callable[[Mapping[str, Any] | None], Controller]] = {}


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
    from greenwave.controllers import baselines, central, max_pressure, optimised, plan  # noqa: F401  (they register)

    return sorted(_REGISTRY)


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
