"""The numbers: the SUMO session, results and (later) the macroscopic model and optimisers."""

from greenwave.engine.session import SessionConfig, SumoSession

__all__ = ["SessionConfig", "SumoSession"]
