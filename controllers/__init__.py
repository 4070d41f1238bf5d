"""Who decides the lights: strategies in simulation and plans for the street."""

from greenwave.controllers.base import (
    Controller,
    ProgramController,
    available_controllers,
    make_controller,
    register,
)
from greenwave.controllers.fixed import FixedPlanController
from greenwave.controllers.plans.arrays import arrays_from_plan, plan_from_arrays, plan_from_network
from greenwave.controllers.plans.sumo_writer import write_sumo_additional
from greenwave.controllers.plans.timing import SignalTiming, StageTiming, TimingPlan

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
