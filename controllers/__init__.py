"""Who decides the lights: strategies in simulation and plans for the street."""

from greenwave.controllers.base import (
    Controller,
    ProgramController,
    available_controllers,
    make_controller,
    register,
)
from greenwave.controllers.plan import (
    FixedPlanController,
    SignalTiming,
    StageTiming,
    TimingPlan,
    arrays_from_plan,
    plan_from_arrays,
    plan_from_network,
    write_sumo_additional,
)

__all__ = [
    "Controller",
    "FixedPlanController",
    "ProgramController",
    "SignalTiming",
    "StageTiming",
    "TimingPlan",
    "arrays_from_plan",
    "available_controllers",
    "make_controller",
    "plan_from_arrays",
    "plan_from_network",
    "register",
    "write_sumo_additional",
]
