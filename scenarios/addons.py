"""Which run add-ons exist: those a scenario names in its own tables, and those a run asks for.

The engine defines what a run add-on is (:class:`greenwave.engine.addons.RunAddon`) and knows
none of them; this module, above every layer that ships one, names them:

- ``[parking]`` (:class:`greenwave.parking.addon.ParkingAddon`): a scenario table;
- ``transition_safety`` (:class:`greenwave.controllers.transition_safety.TransitionSafetyAddon`):
  not a scenario table, added to every run by ``greenwave run --check-safety``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from greenwave.controllers.transition_safety import TransitionSafetyAddon
from greenwave.engine.addons import AddonFactory, RunAddon
from greenwave.errors import ScenarioError
from greenwave.parking.addon import ParkingAddon

__all__ = ["SAFETY_ADDON", "available_addons", "make_addon"]

SAFETY_ADDON = "transition_safety"
"""The name of the transition safety monitor among a run's add-ons."""


def available_addons() -> dict[str, type[RunAddon]]:
    """Add-on name → class, for every add-on a scenario may name in a table of its own."""
    return {"parking": ParkingAddon}


def _run_addons() -> dict[str, AddonFactory]:
    return {**available_addons(), SAFETY_ADDON: TransitionSafetyAddon}


def make_addon(name: str, options: Mapping[str, Any] | None = None) -> RunAddon:
    """Make a run's add-on by name; unknown names list the valid ones."""
    factories = _run_addons()
    if name not in factories:
        raise ScenarioError(f"unknown run add-on {name!r}; valid: {', '.join(sorted(factories))}")
    return factories[name](dict(options or {}))
