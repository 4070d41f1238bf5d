"""The small error hierarchy of greenwave.

Library code raises these; only the command line turns them into an exit status. Each message
is built before it is raised and names what was wrong and where (file, element, key).
"""

from __future__ import annotations


class GreenwaveError(Exception):
    """Base class of every error greenwave raises on purpose."""


class NetworkError(GreenwaveError, ValueError):
    """A road network file is missing, malformed or inconsistent."""


class ScenarioError(GreenwaveError, ValueError):
    """A scenario file names an unknown key, a wrong type or a missing file."""


class SumoNotFoundError(GreenwaveError, FileNotFoundError):
    """SUMO's binaries or tools could not be located through the installed packages."""


class SimulationError(GreenwaveError, RuntimeError):
    """SUMO or one of its tools failed; the message carries what SUMO said."""


class PlanError(GreenwaveError, ValueError):
    """A timing plan is malformed or unsafe."""
