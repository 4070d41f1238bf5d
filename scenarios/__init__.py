"""Scenario files, their loader and runner, and the command line."""

from greenwave.scenarios.spec import (
    DemandSpec,
    NetworkSpec,
    Scenario,
    bundled_scenarios,
    load_scenario,
    scenario_from_dict,
)

__all__ = [
    "DemandSpec",
    "NetworkSpec",
    "Scenario",
    "bundled_scenarios",
    "load_scenario",
    "scenario_from_dict",
]
