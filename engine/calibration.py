"""A network's own model settings, measured in SUMO by ``greenwave calibrate``
(:mod:`greenwave.scenarios.calibrate`), and the file that carries them."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenwave.engine.arrays import SUMO_PARAMS, SUMO_SATURATION_FLOW_PER_LANE_VPH
from greenwave.errors import ScenarioError

__all__ = ["FORMAT", "Calibration", "default_calibration", "load_calibration"]

FORMAT = "greenwave-calibration"
#: Where the saturation flow was measured (``Calibration.lanes_used``).
LANES_USED = ("straight", "shared", "none")
#: The programs SUMO ran while measuring (``Calibration.programs``).
PROGRAMS = ("own", "sumo-rebuilt-static")


@dataclass(frozen=True)
class Calibration:
    """What SUMO measured on a network: the model settings to plan it with."""

    saturation_flow_per_lane_vph: float
    start_lag_s: float
    lanes_measured: int
    greens_measured: int
    source: str = ""
    #: straight: measured on straight-only lanes; shared: on the straight vehicles of lanes shared
    #: with turns (no straight-only lane ran saturated); none: the built-in figure kept.
    lanes_used: str = "straight"
    #: The programs SUMO ran while measuring: ``own`` (the network's) or ``sumo-rebuilt-static``
    #: (SUMO's rebuilt fixed-time programs, where the network's own hardly change).
    programs: str = "own"

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "saturation_flow_per_lane_vph": self.saturation_flow_per_lane_vph,
                "start_lag_s": self.start_lag_s, "lanes_measured": self.lanes_measured,
                "greens_measured": self.greens_measured, "lanes_used": self.lanes_used, "programs": self.programs,
                "source": self.source}


def load_calibration(path: str | os.PathLike[str]) -> Calibration:
    """Read ``calibration.json``; :class:`ScenarioError` naming the file and key when it is not one."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScenarioError(f"{p}: cannot read the calibration file: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ScenarioError(f"{p}: not a greenwave calibration file (expected \"format\": \"{FORMAT}\"; "
                            "greenwave calibrate writes one)")
    values = {}
    for key, lo, hi in (("saturation_flow_per_lane_vph", 600.0, 3600.0), ("start_lag_s", 0.0, 10.0)):
        v = data.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
            raise ScenarioError(f"{p}: {key} must be a number in [{lo:g}, {hi:g}], got {v!r}")
        values[key] = float(v)
    labels = {}
    for key, allowed, default in (("lanes_used", LANES_USED, "straight"), ("programs", PROGRAMS, "own")):
        v = data.get(key, default)
        if v not in allowed:
            raise ScenarioError(f"{p}: {key} must be one of {', '.join(allowed)}, got {v!r}")
        labels[key] = v
    return Calibration(values["saturation_flow_per_lane_vph"], values["start_lag_s"],
                       int(data.get("lanes_measured", 0)), int(data.get("greens_measured", 0)), str(p),
                       labels["lanes_used"], labels["programs"])


def default_calibration() -> Calibration:
    """The constants measured on greenwave's generated grid (what plans use without a file)."""
    return Calibration(SUMO_SATURATION_FLOW_PER_LANE_VPH, SUMO_PARAMS.start_lag_s, 0, 0, "built-in")
