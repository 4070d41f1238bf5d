"""The run record: one SUMO simulation of a scenario, as every layer above the engine sees it.

One :class:`RunSpec` is made per controller × seed (by :func:`greenwave.scenarios.runner.make_jobs`)
and goes, picklable, to whatever executor runs it; the runner, the controllers
(:meth:`greenwave.controllers.base.Controller.prepare`), the run add-ons
(:class:`greenwave.engine.addons.RunAddon`) and the SUMO session
(:meth:`RunSpec.session_config`) all read this one record.

It also holds the types of the parts of a scenario a run carries that are defined above the
engine: the communication model (:class:`CommunicationSpec`, read by
:func:`greenwave.controllers.network_control.parse_communication`) and a scenario's own SUMO
options (:class:`SumoOptions`, a :class:`greenwave.scenarios.sumocfg.SumoConfig`).

Times are seconds of simulated time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from greenwave.engine.session import SessionConfig

if TYPE_CHECKING:
    from greenwave.networks import RoadNetwork

__all__ = ["CommunicationSpec", "OutageSpec", "RunSpec", "SumoOptions"]


@dataclass(frozen=True)
class OutageSpec:
    """A scheduled loss of the link to the centre: ``signals`` or a ``share`` of the networked
    signals (drawn with the seed), from ``start_s`` for ``duration_s`` seconds."""

    start_s: float
    duration_s: float
    signals: tuple[str, ...] = ()
    share: float | None = None


@dataclass(frozen=True)
class CommunicationSpec:
    """Which signals are networked, how their links fail and what they fall back to (a
    scenario's ``[communication]`` table, see :mod:`greenwave.controllers.network_control`)."""

    networked: str | float | tuple[str, ...] = "all"
    fallback: str = "fixed"
    seed: int | None = None
    outages: tuple[OutageSpec, ...] = ()
    failure_rate_per_h: float = 0.0
    mean_repair_s: float = 300.0


class SumoOptions(Protocol):
    """A scenario's own SUMO options (those of its ``.sumocfg``:
    :class:`greenwave.scenarios.sumocfg.SumoConfig`)."""

    @property
    def outputs(self) -> tuple[tuple[str, str], ...]:
        """Output options and the file name each writes (in the run's folder)."""
        ...

    @property
    def options(self) -> tuple[tuple[str, str], ...]:
        """The options SUMO gets unchanged, ``(name, value)`` in file order."""
        ...

    def sumo_args(self, output_dir: Path, *, gui: bool = False) -> tuple[str, ...]:
        """Command-line arguments for SUMO, output files in ``output_dir``."""
        ...


@dataclass(frozen=True)
class RunSpec:
    """One simulation: a controller on a seed, and everything it runs with. Picklable.

    ``workdir`` is a folder of this run alone. ``route_files`` are the route files as SUMO loads
    them; ``demand_files`` the files greenwave's analyses read the demand and vehicle types from
    (additional files with routes or types first; empty: ``route_files``).
    """

    scenario: str
    controller: str
    seed: int
    net_file: Path
    workdir: Path
    begin_s: float = 0.0
    end_s: float = 3600.0
    step_length_s: float = 1.0
    time_to_teleport_s: float = 300.0
    route_files: tuple[Path, ...] = ()
    demand_files: tuple[Path, ...] = ()
    additional_files: tuple[Path, ...] = ()
    """The scenario's own additional files (vehicle types, stops, detectors, programs)."""
    program_files: tuple[Path, ...] = ()
    """The scenario's additional files that bring signal programs or WAUTs, in SUMO's load
    order: with the network they decide which program each signal runs (:meth:`network`)."""
    demand_begin_s: float = 0.0
    demand_end_s: float = 0.0
    """The demand's window; when not after ``demand_begin_s``, the run's."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """The controller's options (the scenario's ``[controller_options.NAME]``)."""
    addons: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Run add-on name → its options (picklable)."""
    communication: CommunicationSpec | None = None
    """The communication model; None: every signal networked, no faults."""
    sumo_config: SumoOptions | None = None
    """The scenario's own SUMO options (a ``.sumocfg``'s), or None."""
    approaches: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Signal → approach edge → lanes: where the per-intersection KPIs are measured."""
    gui: bool = False

    def __post_init__(self) -> None:
        if not self.demand_files:
            object.__setattr__(self, "demand_files", self.route_files)
        if self.demand_end_s <= self.demand_begin_s:  # no separate demand window: the run's
            object.__setattr__(self, "demand_begin_s", self.begin_s)
            object.__setattr__(self, "demand_end_s", self.end_s)

    @property
    def route_choice(self) -> tuple[str, ...]:
        """duarouter arguments that route the demand as SUMO does in this run (the route-choice
        options of the scenario's .sumocfg, :func:`greenwave.engine.routing.route_choice_args`)."""
        from greenwave.engine.routing import route_choice_args

        return route_choice_args(self.sumo_config)

    def routed_demand(self) -> tuple[Path, ...]:
        """``demand_files`` with the vehicles SUMO routes when it inserts them on the routes it
        chooses in this run (:func:`greenwave.engine.routing.insertion_routed_demand`): the
        demand greenwave's planners read."""
        from greenwave.engine.routing import insertion_routed_demand

        return insertion_routed_demand(self)

    def network(self, *, saturation_flow_per_lane: float = 1800.0) -> RoadNetwork:
        """The run's road network with the programs SUMO runs: the network's own, those of the
        scenario's additional files (the last loaded, or a WAUT's start program, active)."""
        from greenwave.networks import load_network

        return load_network(self.net_file, saturation_flow_per_lane=saturation_flow_per_lane,
                            program_files=self.program_files, begin_s=self.begin_s)

    def session_config(
        self,
        *,
        route_files: tuple[Path, ...],
        additional_files: tuple[Path, ...],
        outputs: Mapping[str, Path],
        extra_args: tuple[str, ...],
        log_file: Path | None,
    ) -> SessionConfig:
        """The SUMO session of this run: its network, window, step, seed, teleport time and GUI,
        with the given inputs (all of them, the run's own included) and outputs."""
        return SessionConfig(
            net_file=self.net_file, route_files=route_files, additional_files=additional_files,
            begin_s=self.begin_s, end_s=self.end_s, step_length_s=self.step_length_s, seed=self.seed,
            time_to_teleport_s=self.time_to_teleport_s, outputs=dict(outputs), extra_args=extra_args,
            gui=self.gui, log_file=log_file,
        )
