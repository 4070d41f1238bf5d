"""The safety standards a plan is held to, and the limits it cannot lower itself.

A timing plan carries its own ``min_green_s``, ``walk_s`` and ``ped_clearance_s``, but those are
what the plan *claims*: a plan may raise them, never lower what is required. What is required
comes from the network and from :class:`SafetyStandards` (documented defaults, overridable on the
command line of ``greenwave validate`` / ``export``):

=========================  =======  ==============================================================
standard                   default  rule
=========================  =======  ==============================================================
``min_green_s``            5 s      every stage's green ≥ max(this, the phase's ``minDur``)
``pedestrian_walk_s``      4 s      a stage carrying a crossing: green ≥ walk + crossing length /
``pedestrian_speed_mps``   1.2 m/s  speed (the crossing length from the net file)
``min_yellow_s``           3 s      yellow after a stage whose base program has one
``min_allred_s``           network  all-red ≥ the base program's all-red after the stage
``max_cycle_s``            300 s    cycle ≤ this
``max_green_s``            255 s    every green ≤ this (NTCIP 1202 and GB/T 20999 hold greens in
                                    one byte)
=========================  =======  ==============================================================

Where the network's own program gives a stage less green than the minimum above, the
network's own green is that stage's floor; where its own cycle or green is longer than the
bounds, its own is the bound (the network's programs are the engineers' own and stay valid,
e.g. the game networks' 10000 s phases; a plan may still not go beyond them). The minimum greens come from
:func:`greenwave.networks.compile.stage_minimum_greens`, the rule the optimiser compiles with.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from greenwave.errors import NetworkError, PlanError
from greenwave.networks.compile import MIN_YELLOW_S, green_stage_phases, stage_minimum_greens

if TYPE_CHECKING:
    from greenwave.networks.model import Program, RoadNetwork

__all__ = ["DEFAULT_STANDARDS", "SafetyStandards", "StageFloor", "network_signals", "stage_floors"]


@dataclass(frozen=True)
class SafetyStandards:
    """The configured safety standards (see the module docstring); times in s, speeds in m/s.

    ``min_allred_s`` ``None`` keeps the network's all-red; a number replaces it.
    """

    min_green_s: float = 5.0
    min_yellow_s: float = MIN_YELLOW_S
    min_allred_s: float | None = None
    pedestrian_walk_s: float = 4.0
    pedestrian_speed_mps: float = 1.2
    max_cycle_s: float = 300.0
    max_green_s: float = 255.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None and f.name == "min_allred_s":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0):
                raise PlanError(f"safety standard {f.name} must be a finite number >= 0, got {v!r}")
        if self.pedestrian_speed_mps <= 0 or self.max_cycle_s <= 0 or self.max_green_s <= 0:
            raise PlanError("safety standards pedestrian_speed_mps, max_cycle_s and max_green_s must be > 0")

    @classmethod
    def given(cls, **values: Any) -> SafetyStandards:
        """The defaults with the values that are not ``None`` replaced (command-line options)."""
        return cls(**{k: v for k, v in values.items() if v is not None})


DEFAULT_STANDARDS = SafetyStandards()


@dataclass(frozen=True)
class StageFloor:
    """What one stage needs, whatever the plan says: ``green_s`` (vehicle minimum) and
    ``pedestrian_s`` (walk + crossing clearance), each already capped at the network's own green."""

    green_s: float
    pedestrian_s: float
    why_green: str
    why_pedestrian: str
    max_green_s: float = DEFAULT_STANDARDS.max_green_s
    max_cycle_s: float = DEFAULT_STANDARDS.max_cycle_s


_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple[str, str, SafetyStandards], list[StageFloor]]] = (
    weakref.WeakKeyDictionary()
)


def stage_floors(network: RoadNetwork, signal_id: str, program: Program,
                 standards: SafetyStandards = DEFAULT_STANDARDS) -> list[StageFloor]:
    """The required minimum green and pedestrian time of every stage of ``program`` (its green
    phases in order), from the network and ``standards``; see the module docstring."""
    key = (signal_id, program.id, standards)
    try:
        per_net = _CACHE.setdefault(network, {})
    except TypeError:  # not weak-referenceable: no cache
        per_net = {}
    if key in per_net:
        return per_net[key]
    try:
        veh, ped = stage_minimum_greens(network, signal_id, program, min_green_s=standards.min_green_s,
                                        pedestrian_walk_s=standards.pedestrian_walk_s,
                                        pedestrian_speed_mps=standards.pedestrian_speed_mps)
    except NetworkError as exc:
        raise PlanError(f"signal {signal_id!r}: {exc}") from exc
    out = []
    for p, v, q in zip(green_stage_phases(program), veh, ped, strict=True):
        own = float(program.phases[p].duration)
        ph = program.phases[p]
        why = f"standard minimum green {standards.min_green_s:g} s"
        if ph.min_dur is not None and math.isfinite(ph.min_dur) and ph.min_dur > standards.min_green_s:
            why = f"the phase's minDur {ph.min_dur:g} s"
        why_ped = (f"walk {standards.pedestrian_walk_s:g} s + crossing at {standards.pedestrian_speed_mps:g} m/s"
                   if q > 0 else "")
        if own < v:
            v, why = own, f"the network's own green {own:g} s (below {why})"
        if own < q:
            q, why_ped = own, f"the network's own green {own:g} s (below {why_ped})"
        out.append(StageFloor(v, q, why, why_ped, max(standards.max_green_s, own),
                              max(standards.max_cycle_s, float(program.cycle))))
    per_net[key] = out
    return out


def network_signals(network: RoadNetwork) -> list[str]:
    """The network's timeable signals: those whose default program has a green phase."""
    return [sid for sid, sig in network.signals.items()
            if sig.default_program is not None and green_stage_phases(sig.default_program)]
