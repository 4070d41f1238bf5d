"""The ``[parking]`` table of a scenario: validated into plain, picklable dicts.

Every error names the scenario file, the key and what was expected. Units: seconds, metres,
money per hour (any currency; prices only need to be consistent with ``value_of_time_per_h``).

Example::

    [parking]
    policy = "guidance"            # no_guidance | guidance | pricing
    networking_rate = 0.8          # share of car parks connected to the platform (optional)

    [[parking.car_parks]]
    id = "mall"
    edge = "B1C1"                  # or x = 310.0, y = 150.0 (nearest road)
    capacity = 60
    price_per_h = 4.0
    kind = "lot"                   # lot (off-street) | street (kerb parking)
    networked = true
    charging_kw = 22               # optional charging station at the car park

    [parking.demand]
    vehicles_per_hour = 300
    dwell = { distribution = "lognormal", mean_s = 2400, sd_s = 1200 }
    [[parking.demand.destinations]]
    edge = "C2C1"
    weight = 3
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greenwave.errors import ScenarioError
from greenwave.toml_checks import check_keys, integer, number

POLICIES = ("no_guidance", "guidance", "pricing")
KINDS = ("lot", "street")
DWELL_DISTRIBUTIONS = ("lognormal", "exponential", "uniform", "fixed")

_TOP: dict[str, str] = {
    "policy": f"str, one of {', '.join(POLICIES)}",
    "networking_rate": "float in [0, 1] (overrides each car park's 'networked')",
    "networking_seed": "int (default: the run's seed)",
    "search_radius_m": "float > 0, radius of the destination area, m",
    "patience_s": "float > 0, search time after which a driver gives up, s",
    "occupancy_interval_s": "float > 0, sampling interval of the occupancy series, s",
    "kpi_begin_s": "float, start of the occupancy/turnover KPI window, s",
    "guidance_interval_s": "float > 0, how often guidance re-plans, s",
    "alternatives": "int ≥ 1, alternatives per car park in SUMO's own search",
    "value_of_time_per_h": "float ≥ 0, money per hour of driving or walking",
    "walk_speed_mps": "float > 0, m/s",
    "choice_noise": "float ≥ 0, scale of the drivers' random taste (Gumbel), money",
    "car_parks": "array of tables [[parking.car_parks]]",
    "generate": "table [parking.generate]",
    "demand": "table [parking.demand]",
    "pricing": "table [parking.pricing]",
}
_CAR_PARK: dict[str, str] = {
    "id": "str",
    "edge": "str (or x and y)",
    "pos_m": "float ≥ 0, start position on the edge, m",
    "x": "float, m",
    "y": "float, m",
    "capacity": "int ≥ 1",
    "price_per_h": "float ≥ 0",
    "kind": f"str, one of {', '.join(KINDS)}",
    "networked": "bool",
    "charging_kw": "float > 0",
}
_GENERATE: dict[str, str] = {
    "count": "int ≥ 1",
    "seed": "int",
    "capacity_min": "int ≥ 1",
    "capacity_max": "int ≥ capacity_min",
    "price_min_per_h": "float ≥ 0",
    "price_max_per_h": "float ≥ price_min_per_h",
    "street_share": "float in [0, 1]",
    "edges": "list[str], edges to choose from (default: every road)",
    "networked": "bool (default true)",
}
_DEMAND: dict[str, str] = {
    "vehicles_per_hour": "float > 0",
    "begin_s": "float",
    "end_s": "float",
    "dwell": "table {distribution, mean_s, sd_s, min_s, max_s}",
    "destinations": "array of tables [[parking.demand.destinations]] {edge or x, y; weight}",
    "origins": "list[str], edges where parking drivers enter (default: the network's fringe)",
    "exits": "list[str], edges where they leave (default: the network's fringe)",
}
_DWELL: dict[str, str] = {
    "distribution": f"str, one of {', '.join(DWELL_DISTRIBUTIONS)}",
    "mean_s": "float > 0",
    "sd_s": "float > 0 (lognormal)",
    "min_s": "float ≥ 0",
    "max_s": "float > min_s",
}
_DEST: dict[str, str] = {"edge": "str (or x and y)", "x": "float", "y": "float", "weight": "float > 0"}
_PRICING: dict[str, str] = {
    "interval_s": "float > 0",
    "step_per_h": "float > 0",
    "min_price_per_h": "float ≥ 0",
    "max_price_per_h": "float ≥ min_price_per_h",
    "target_low": "float in [0, 1]",
    "target_high": "float in [target_low, 1]",
}

DEFAULTS: dict[str, Any] = {
    "policy": "no_guidance",
    "networking_rate": None,
    "networking_seed": None,
    "search_radius_m": 250.0,
    "patience_s": 900.0,
    "occupancy_interval_s": 60.0,
    "kpi_begin_s": None,
    "guidance_interval_s": 5.0,
    "alternatives": 5,
    "value_of_time_per_h": 20.0,
    "walk_speed_mps": 1.3,
    "choice_noise": 0.5,
}
PRICING_DEFAULTS: dict[str, float] = {
    "interval_s": 600.0,
    "step_per_h": 0.5,
    "min_price_per_h": 0.5,
    "max_price_per_h": 10.0,
    "target_low": 0.6,
    "target_high": 0.8,
}


def parse_parking_options(raw: Any, *, where: str, base: Path) -> dict[str, Any]:
    """Validate a ``[parking]`` table; return a picklable dict with every default filled in.

    Parameters
    ----------
    raw
        The table as parsed from TOML.
    where
        The scenario file (for messages).
    base
        The scenario's folder (unused for now: car parks and demand live in the table itself).

    Raises
    ------
    ScenarioError
        Naming the file, the key and what was expected.
    """
    ctx = "parking."
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: [parking] must be a table, got {raw!r}")
    check_keys(raw, _TOP, where, ctx)
    out: dict[str, Any] = dict(DEFAULTS)
    policy = raw.get("policy", DEFAULTS["policy"])
    if policy not in POLICIES:
        raise ScenarioError(f"{where}: parking.policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    out["policy"] = policy
    if "networking_rate" in raw:
        out["networking_rate"] = number(raw, "networking_rate", where, ctx, lo=0.0, hi=1.0)
    if "networking_seed" in raw:
        out["networking_seed"] = integer(raw, "networking_seed", where, ctx)
    for key in ("search_radius_m", "patience_s", "occupancy_interval_s", "guidance_interval_s", "walk_speed_mps"):
        if key in raw:
            out[key] = number(raw, key, where, ctx, positive=True)
    for key in ("value_of_time_per_h", "choice_noise"):
        if key in raw:
            out[key] = number(raw, key, where, ctx, lo=0.0)
    if "kpi_begin_s" in raw:
        out["kpi_begin_s"] = number(raw, "kpi_begin_s", where, ctx, lo=0.0)
    if "alternatives" in raw:
        out["alternatives"] = integer(raw, "alternatives", where, ctx, lo=1)

    cps = raw.get("car_parks", [])
    if not isinstance(cps, list) or not all(isinstance(c, dict) for c in cps):
        raise ScenarioError(f"{where}: parking.car_parks must be an array of tables [[parking.car_parks]]")
    out["car_parks"] = [_car_park(c, where, f"{ctx}car_parks[{i}].") for i, c in enumerate(cps)]
    ids = [c["id"] for c in out["car_parks"]]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ScenarioError(f"{where}: parking.car_parks: duplicate id(s) {', '.join(dup)}")
    out["generate"] = _generate(raw["generate"], where, ctx + "generate.") if "generate" in raw else None
    if not out["car_parks"] and out["generate"] is None:
        raise ScenarioError(
            f"{where}: [parking] declares no car parks: give [[parking.car_parks]] or [parking.generate]"
        )
    if "demand" not in raw:
        raise ScenarioError(f"{where}: [parking] needs a [parking.demand] table (who parks where, how long)")
    out["demand"] = _demand(raw["demand"], where, ctx + "demand.")
    pricing = raw.get("pricing", {})
    if not isinstance(pricing, dict):
        raise ScenarioError(f"{where}: parking.pricing must be a table")
    check_keys(pricing, _PRICING, where, ctx + "pricing.")
    p = dict(PRICING_DEFAULTS)
    for key in ("interval_s", "step_per_h"):
        if key in pricing:
            p[key] = number(pricing, key, where, ctx + "pricing.", positive=True)
    for key in ("min_price_per_h", "max_price_per_h"):
        if key in pricing:
            p[key] = number(pricing, key, where, ctx + "pricing.", lo=0.0)
    for key in ("target_low", "target_high"):
        if key in pricing:
            p[key] = number(pricing, key, where, ctx + "pricing.", lo=0.0, hi=1.0)
    if p["max_price_per_h"] < p["min_price_per_h"]:
        raise ScenarioError(f"{where}: parking.pricing.max_price_per_h must be ≥ min_price_per_h")
    if p["target_high"] < p["target_low"]:
        raise ScenarioError(f"{where}: parking.pricing.target_high must be ≥ target_low")
    out["pricing"] = p
    return out


def _car_park(raw: dict[str, Any], where: str, ctx: str) -> dict[str, Any]:
    check_keys(raw, _CAR_PARK, where, ctx)
    if "id" not in raw or not isinstance(raw["id"], str) or not raw["id"]:
        raise ScenarioError(f"{where}: {ctx}id must be a non-empty string")
    ctx = f"{ctx[:-1]} ({raw['id']})."
    cp: dict[str, Any] = {"id": raw["id"], **_place(raw, where, ctx)}
    if "pos_m" in raw:
        if cp["edge"] is None:
            raise ScenarioError(f"{where}: {ctx}pos_m needs 'edge' (a location x, y places itself)")
        cp["pos_m"] = number(raw, "pos_m", where, ctx, lo=0.0)
    else:
        cp["pos_m"] = None
    if "capacity" not in raw:
        raise ScenarioError(f"{where}: {ctx}capacity is missing (number of spaces, int ≥ 1)")
    cp["capacity"] = integer(raw, "capacity", where, ctx, lo=1)
    if "price_per_h" not in raw:
        raise ScenarioError(f"{where}: {ctx}price_per_h is missing (money per hour, ≥ 0)")
    cp["price_per_h"] = number(raw, "price_per_h", where, ctx, lo=0.0)
    kind = raw.get("kind", "lot")
    if kind not in KINDS:
        raise ScenarioError(f"{where}: {ctx}kind must be one of {', '.join(KINDS)}, got {kind!r}")
    cp["kind"] = kind
    networked = raw.get("networked", True)
    if not isinstance(networked, bool):
        raise ScenarioError(f"{where}: {ctx}networked must be true or false, got {networked!r}")
    cp["networked"] = networked
    cp["charging_kw"] = number(raw, "charging_kw", where, ctx, positive=True) if "charging_kw" in raw else None
    return cp


def _place(raw: dict[str, Any], where: str, ctx: str) -> dict[str, Any]:
    has_edge = "edge" in raw
    has_xy = "x" in raw or "y" in raw
    if has_edge == has_xy:
        raise ScenarioError(f"{where}: {ctx[:-1]} needs either 'edge' or a location 'x' and 'y', not both or neither")
    if has_edge:
        if not isinstance(raw["edge"], str) or not raw["edge"]:
            raise ScenarioError(f"{where}: {ctx}edge must be an edge id string, got {raw['edge']!r}")
        return {"edge": raw["edge"], "x": None, "y": None}
    if "x" not in raw or "y" not in raw:
        raise ScenarioError(f"{where}: {ctx[:-1]} needs both 'x' and 'y' (m)")
    return {"edge": None, "x": number(raw, "x", where, ctx), "y": number(raw, "y", where, ctx)}


def _generate(raw: Any, where: str, ctx: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: {ctx[:-1]} must be a table")
    check_keys(raw, _GENERATE, where, ctx)
    if "count" not in raw:
        raise ScenarioError(f"{where}: {ctx}count is missing (number of car parks to generate)")
    g: dict[str, Any] = {
        "count": integer(raw, "count", where, ctx, lo=1),
        "seed": integer(raw, "seed", where, ctx) if "seed" in raw else 1,
        "capacity_min": integer(raw, "capacity_min", where, ctx, lo=1) if "capacity_min" in raw else 10,
        "capacity_max": integer(raw, "capacity_max", where, ctx, lo=1) if "capacity_max" in raw else 40,
        "price_min_per_h": number(raw, "price_min_per_h", where, ctx, lo=0.0) if "price_min_per_h" in raw else 1.0,
        "price_max_per_h": number(raw, "price_max_per_h", where, ctx, lo=0.0) if "price_max_per_h" in raw else 4.0,
        "street_share": number(raw, "street_share", where, ctx, lo=0.0, hi=1.0) if "street_share" in raw else 0.5,
        "edges": None,
        "networked": True,
    }
    if g["capacity_max"] < g["capacity_min"]:
        raise ScenarioError(f"{where}: {ctx}capacity_max must be ≥ capacity_min")
    if g["price_max_per_h"] < g["price_min_per_h"]:
        raise ScenarioError(f"{where}: {ctx}price_max_per_h must be ≥ price_min_per_h")
    if "edges" in raw:
        edges = raw["edges"]
        if not isinstance(edges, list) or not edges or not all(isinstance(e, str) for e in edges):
            raise ScenarioError(f"{where}: {ctx}edges must be a non-empty list of edge ids")
        g["edges"] = list(edges)
    if "networked" in raw:
        if not isinstance(raw["networked"], bool):
            raise ScenarioError(f"{where}: {ctx}networked must be true or false")
        g["networked"] = raw["networked"]
    return g


def _demand(raw: Any, where: str, ctx: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: {ctx[:-1]} must be a table")
    check_keys(raw, _DEMAND, where, ctx)
    if "vehicles_per_hour" not in raw:
        raise ScenarioError(f"{where}: {ctx}vehicles_per_hour is missing (parking arrivals, veh/h > 0)")
    d: dict[str, Any] = {
        "vehicles_per_hour": number(raw, "vehicles_per_hour", where, ctx, positive=True),
        "begin_s": number(raw, "begin_s", where, ctx, lo=0.0) if "begin_s" in raw else None,
        "end_s": number(raw, "end_s", where, ctx, lo=0.0) if "end_s" in raw else None,
    }
    if d["begin_s"] is not None and d["end_s"] is not None and d["end_s"] <= d["begin_s"]:
        raise ScenarioError(f"{where}: {ctx}end_s must be after begin_s")
    dwell = raw.get("dwell", {"distribution": "lognormal", "mean_s": 2400.0, "sd_s": 1200.0})
    if not isinstance(dwell, dict):
        raise ScenarioError(f"{where}: {ctx}dwell must be a table {{distribution, mean_s, ...}}")
    dctx = ctx + "dwell."
    check_keys(dwell, _DWELL, where, dctx)
    dist = dwell.get("distribution", "lognormal")
    if dist not in DWELL_DISTRIBUTIONS:
        raise ScenarioError(
            f"{where}: {dctx}distribution must be one of {', '.join(DWELL_DISTRIBUTIONS)}, got {dist!r}"
        )
    dw: dict[str, Any] = {"distribution": dist}
    if dist == "uniform":
        for key in ("min_s", "max_s"):
            if key not in dwell:
                raise ScenarioError(f"{where}: {dctx}{key} is needed for a uniform dwell time")
    elif "mean_s" not in dwell:
        raise ScenarioError(f"{where}: {dctx}mean_s is needed for a {dist} dwell time")
    dw["mean_s"] = number(dwell, "mean_s", where, dctx, positive=True) if "mean_s" in dwell else None
    if dist == "lognormal" and "sd_s" not in dwell:
        raise ScenarioError(f"{where}: {dctx}sd_s is needed for a lognormal dwell time")
    dw["sd_s"] = number(dwell, "sd_s", where, dctx, positive=True) if "sd_s" in dwell else None
    dw["min_s"] = number(dwell, "min_s", where, dctx, lo=0.0) if "min_s" in dwell else 60.0
    dw["max_s"] = number(dwell, "max_s", where, dctx, positive=True) if "max_s" in dwell else 6 * 3600.0
    if dw["max_s"] <= dw["min_s"]:
        raise ScenarioError(f"{where}: {dctx}max_s must be greater than min_s")
    d["dwell"] = dw
    dests = raw.get("destinations")
    if not isinstance(dests, list) or not dests or not all(isinstance(x, dict) for x in dests):
        raise ScenarioError(
            f"{where}: {ctx}destinations must be a non-empty array of tables "
            "[[parking.demand.destinations]] with 'edge' (or 'x', 'y') and 'weight'"
        )
    out = []
    for i, dest in enumerate(dests):
        c = f"{ctx}destinations[{i}]."
        check_keys(dest, _DEST, where, c)
        item = _place(dest, where, c)
        item["weight"] = number(dest, "weight", where, c, positive=True) if "weight" in dest else 1.0
        out.append(item)
    d["destinations"] = out
    for key in ("origins", "exits"):
        v = raw.get(key)
        if v is not None and (not isinstance(v, list) or not v or not all(isinstance(e, str) and e for e in v)):
            raise ScenarioError(f"{where}: {ctx}{key} must be a non-empty list of edge ids, got {v!r}")
        d[key] = list(v) if v is not None else None
    return d
