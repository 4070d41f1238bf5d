"""Who decides the lights: strategies in simulation and plans for the street."""

from greenwave.controllers.base import (
    Controller,
    ProgramController,
    RunContext,
    available_controllers,
    make_controller,
    register,
)

__all__ = [
    "Controller",
    "ProgramController",
    "RunContext",
    "available_controllers",
    "make_controller",
    "register",
]
