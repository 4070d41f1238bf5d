"""The documented ranges of scenario values, checked when a scenario is loaded.

Everything here is checked before anything is built or simulated, so a value that would run
for days, give NaN results or fail deep inside a SUMO tool is refused at once, with the file, the
key and the valid range. The ranges (also in the README's section on errors):

=============================  ==========================================================
``name``                       1–80 characters of ``A-Z a-z 0-9 _ - .``, not starting with
                               ``.`` (it names files and folders under ``--output``)
``duration_s``                 (0, 604800] s (a week)
``begin_s``                    [0, 31536000] s
``step_length_s``              [0.001, 10] s and not longer than the run
``time_to_teleport_s``         [-1, 86400] s (≤ 0: SUMO never teleports)
``seeds``                      1–1000 seeds, each in [0, 2147483647]
``controllers``                at least one
demand window                  ``demand.begin_s`` inside the run, ``end_s`` after the run's start
``demand.*entry_vph*``         [0, 10000] veh/h, not all 0
``demand.turn_*``              shares in [0, 1]
``network.saturation_flow``    (0, 4000] veh/h/lane
grid ``rows`` × ``cols``       each 1–50, at most 400 signals
arterial ``n_intersections``   1–200
``spacing_m``, lengths         (0, 10000] m (``attach_length_m``, ``side_length_m``: [0, 10000])
``lanes``, ``side_lanes``      1–8
``speed_mps``                  (0, 70] m/s
=============================  ==========================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from greenwave.errors import ScenarioError

__all__ = ["LIMITS", "MAX_SEEDS", "check_name", "check_scenario_values", "safe_name"]

MAX_SEEDS = 1000
#: Most parallel SUMO runs (``--jobs``): each is a process with its own simulation.
MAX_JOBS = 128
MAX_SEED = 2**31 - 1
MAX_GRID_SIGNALS = 400
NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,79}$")

#: key → (low, high, low inclusive?) for the top-level numbers
LIMITS: dict[str, tuple[float, float, bool]] = {
    "duration_s": (0.0, 7 * 86400.0, False),
    "begin_s": (0.0, 365 * 86400.0, True),
    "step_length_s": (0.001, 10.0, True),
    "time_to_teleport_s": (-1.0, 86400.0, True),
}
_GENERATOR_LIMITS: dict[str, tuple[float, float, bool]] = {
    "rows": (1, 50, True),
    "cols": (1, 50, True),
    "n_intersections": (1, 200, True),
    "spacing_m": (0.0, 10000.0, False),
    "attach_length_m": (0.0, 10000.0, True),
    "side_length_m": (0.0, 10000.0, True),
    "lanes": (1, 8, True),
    "side_lanes": (1, 8, True),
    "speed_mps": (0.0, 70.0, False),
    "side_speed_mps": (0.0, 70.0, False),
    "seed": (0, MAX_SEED, True),
}


def _range_text(lo: float, hi: float, lo_in: bool) -> str:
    return f"{'[' if lo_in else '('}{lo:g}, {hi:g}]"


def _in_range(where: str, key: str, value: Any, lo: float, hi: float, lo_in: bool, unit: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return  # type errors are the loader's
    ok = math.isfinite(value) and (value >= lo if lo_in else value > lo) and value <= hi
    if not ok:
        raise ScenarioError(f"{where}: {key} must be a finite number in {_range_text(lo, hi, lo_in)}"
                            f"{' ' + unit if unit else ''}, got {value!r}")


def safe_name(stem: str) -> str:
    """A file stem made a safe scenario name (characters outside the allowed ones become ``_``)."""
    out = re.sub(r"[^A-Za-z0-9_.-]", "_", stem)[:80].lstrip(".") or "scenario"
    return out.replace("..", "_")


def check_name(name: str, where: str) -> None:
    """A scenario name must be a safe file name: it names the network file and output folder."""
    if not NAME_RE.match(name) or ".." in name:
        raise ScenarioError(
            f"{where}: name {name!r} is not a safe file name; valid: 1-80 characters of letters, digits, "
            "'_', '-' and '.', not starting with '.' and without '..' (it names files under --output)"
        )


def check_scenario_values(data: Mapping[str, Any], where: str) -> None:
    """Check the ranges of a parsed scenario table's values (types are checked by the loader)."""
    for key, (lo, hi, lo_in) in LIMITS.items():
        if key in data:
            _in_range(where, key, data[key], lo, hi, lo_in, "s")
    duration = data.get("duration_s")
    step = data.get("step_length_s", 1.0)
    if isinstance(duration, (int, float)) and isinstance(step, (int, float)) and step > duration:
        raise ScenarioError(f"{where}: step_length_s {step:g} s is longer than the run (duration_s {duration:g} s)")
    if "name" in data and isinstance(data["name"], str):
        check_name(data["name"], where)
    seeds = data.get("seeds")
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds > MAX_SEEDS:
        raise ScenarioError(f"{where}: seeds = {seeds}: at most {MAX_SEEDS} seeds (each is a SUMO run per controller)")
    if isinstance(seeds, list):
        if len(seeds) > MAX_SEEDS:
            raise ScenarioError(f"{where}: seeds: {len(seeds)} seeds, at most {MAX_SEEDS}")
        bad = [s for s in seeds if isinstance(s, int) and not 0 <= s <= MAX_SEED]
        if bad:
            raise ScenarioError(f"{where}: seeds: {bad[0]} outside 0..{MAX_SEED} (SUMO's seed range)")
        dup = sorted({s for s in seeds if seeds.count(s) > 1})
        if dup:
            raise ScenarioError(f"{where}: seeds: {dup} appear more than once")
    if data.get("controllers") == []:
        raise ScenarioError(f"{where}: controllers is empty; name at least one (greenwave controllers lists them)")
    net = data.get("network")
    if isinstance(net, Mapping):
        _check_network(net, where)
    demand = data.get("demand")
    if isinstance(demand, Mapping):
        _check_demand(demand, data, where)


def _check_network(net: Mapping[str, Any], where: str) -> None:
    if "saturation_flow_per_lane" in net:
        _in_range(where, "network.saturation_flow_per_lane", net["saturation_flow_per_lane"], 0, 4000, False,
                  "veh/h/lane")
    if "generator" not in net:
        return
    for key, (lo, hi, lo_in) in _GENERATOR_LIMITS.items():
        if key in net:
            _in_range(where, f"network.{key}", net[key], lo, hi, lo_in)
    rows, cols = net.get("rows"), net.get("cols")
    if isinstance(rows, int) and isinstance(cols, int) and rows * cols > MAX_GRID_SIGNALS:
        raise ScenarioError(f"{where}: network.rows × network.cols = {rows * cols} signals; at most "
                            f"{MAX_GRID_SIGNALS} (a larger city: give its network as a file)")


def _check_demand(demand: Mapping[str, Any], data: Mapping[str, Any], where: str) -> None:
    flows = {k: demand[k] for k in ("entry_vph", "major_entry_vph", "minor_entry_vph") if k in demand}
    by_edge = demand.get("entry_vph_by_edge")
    if isinstance(by_edge, Mapping):
        flows.update({f"entry_vph_by_edge.{e}": v for e, v in by_edge.items()})
    for key, v in flows.items():
        _in_range(where, f"demand.{key}", v, 0, 10000, True, "veh/h")
    nums = [v for v in flows.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if flows and nums and all(v == 0 for v in nums):
        keys = ", ".join("demand." + k for k in flows)
        raise ScenarioError(f"{where}: demand: every entry flow is 0 veh/h ({keys}); give at least one flow > 0")
    for key in ("turn_left", "turn_right"):
        if key in demand:
            _in_range(where, f"demand.{key}", demand[key], 0, 1, True, "(share)")
    ratios = demand.get("turn_ratios")
    if isinstance(ratios, Mapping):
        for frm, row in ratios.items():
            if isinstance(row, Mapping):
                for to, share in row.items():
                    _in_range(where, f"demand.turn_ratios.{frm}.{to}", share, 0, 1, True, "(share)")
    begin = data.get("begin_s", 0.0)
    duration = data.get("duration_s")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
               for x in (begin, duration)):
        return
    end = begin + duration
    # the window must start inside the run (a window after it or before it would give no
    # vehicles and NaN results); it may go on past the end (those vehicles are simply not run)
    v = demand.get("begin_s")
    if isinstance(v, (int, float)) and not isinstance(v, bool) and not (math.isfinite(v) and begin <= v < end):
        raise ScenarioError(f"{where}: demand.begin_s = {v!r} s is outside the run [begin_s {begin:g}, begin_s + "
                            f"duration_s {end:g}) s; the demand window must start inside the run")
    v = demand.get("end_s")
    if isinstance(v, (int, float)) and not isinstance(v, bool) and not (math.isfinite(v) and v > begin):
        raise ScenarioError(f"{where}: demand.end_s = {v!r} s ends before the run starts (begin_s {begin:g} s); "
                            "the demand window must overlap the run")
    b, e = demand.get("begin_s"), demand.get("end_s")
    if isinstance(b, (int, float)) and isinstance(e, (int, float)) and e <= b:
        raise ScenarioError(f"{where}: demand.end_s ({e:g}) must be after demand.begin_s ({b:g})")
