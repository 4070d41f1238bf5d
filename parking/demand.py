"""Parking demand: drivers with a destination and a dwell time who need a space near it.

Arrivals are Poisson (``vehicles_per_hour``) over the demand window; each driver enters at a
random entry edge of the network's fringe, has a destination drawn by weight and a dwell time
drawn from the given distribution, parks, and then leaves through a random exit. Each becomes a
SUMO ``trip`` with a ``<stop parkingArea=... duration=... parking="true"/>`` at the car park of
the driver's own first choice (lowest perceived cost, see :func:`perceived_costs`). The same
seed gives the same drivers. Background traffic (the scenario's ``[demand]``) runs alongside.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from greenwave.engine.results import write_text_atomic
from greenwave.errors import ScenarioError
from greenwave.parking.carparks import CarPark
from greenwave.parking.roads import DriveTimes, point_of, walking_m

VEHICLE_PREFIX = "pk_"
"""Ids of parking vehicles start with this (background vehicles never do)."""


@dataclass(frozen=True)
class Destination:
    """Where drivers go: the edge, the point (m) and the relative weight."""

    edge: str
    x: float
    y: float
    weight: float


@dataclass(frozen=True)
class Driver:
    """One parking trip. Times in s; ``first_choice`` is the car park id the trip is written with."""

    id: str
    index: int
    depart_s: float
    origin: str
    exit: str
    destination: int
    dwell_s: float
    first_choice: str


def destinations(net: Any, demand: Mapping[str, Any]) -> list[Destination]:
    """The demand's destinations placed on ``net``."""
    out = []
    for d in demand["destinations"]:
        edge, x, y = point_of(net, d)
        out.append(Destination(edge=edge, x=x, y=y, weight=d["weight"]))
    return out


def sample_dwell(rng: np.random.Generator, dwell: Mapping[str, Any], n: int) -> np.ndarray:
    """``n`` dwell times (s) from the dwell table, clipped to ``[min_s, max_s]``.

    ``lognormal`` has the given arithmetic mean and standard deviation; ``exponential`` the
    given mean; ``uniform`` spans ``[min_s, max_s]``; ``fixed`` is always ``mean_s``.
    """
    dist = dwell["distribution"]
    if dist == "lognormal":
        m, s = dwell["mean_s"], dwell["sd_s"]
        sigma2 = math.log(1.0 + (s / m) ** 2)
        x = rng.lognormal(math.log(m) - sigma2 / 2, math.sqrt(sigma2), n)
    elif dist == "exponential":
        x = rng.exponential(dwell["mean_s"], n)
    elif dist == "uniform":
        x = rng.uniform(dwell["min_s"], dwell["max_s"], n)
    else:
        x = np.full(n, dwell["mean_s"])
    return np.clip(x, dwell["min_s"], dwell["max_s"])


def perceived_costs(
    *,
    prices_per_h: np.ndarray,
    dwell_s: float,
    drive_s: np.ndarray,
    walk_m: np.ndarray,
    value_of_time_per_h: float,
    walk_speed_mps: float,
) -> np.ndarray:
    """Generalised cost of each car park for one driver, money.

    cost = price · dwell (h) + value of time · (drive time + walk there and back) (h);
    ``inf`` where the car park cannot be reached.
    """
    hours = (np.asarray(drive_s, dtype=float) + 2.0 * walk_m / walk_speed_mps) / 3600.0
    return np.asarray(prices_per_h) * (dwell_s / 3600.0) + value_of_time_per_h * hours


def taste(seed: int, index: int, n: int, scale: float) -> np.ndarray:
    """A driver's fixed random taste for each of ``n`` car parks (Gumbel, money), reproducible."""
    if scale <= 0:
        return np.zeros(n)
    return np.random.default_rng([seed, index]).gumbel(0.0, scale, n)


def _fringe(net: Any) -> tuple[list[str], list[str]]:
    from greenwave.scenarios.demand import entry_edges

    entries = entry_edges(net)
    exits = []
    for e in entries:
        for back in e.getToNode().getOutgoing():
            if back.getToNode() is e.getFromNode() and back.allows("passenger"):
                exits.append(back.getID())
    return sorted(e.getID() for e in entries), sorted(set(exits))


def generate_drivers(
    net: Any,
    demand: Mapping[str, Any],
    car_parks: Sequence[CarPark],
    times: DriveTimes,
    *,
    begin_s: float,
    end_s: float,
    seed: int,
    value_of_time_per_h: float,
    walk_speed_mps: float,
    choice_noise: float,
) -> tuple[list[Driver], list[Destination]]:
    """Draw the parking drivers of one run (seeded) and their first choices at initial prices."""
    entries, exits = _fringe(net)
    for key in ("origins", "exits"):
        given = demand.get(key)
        if given:
            for eid in given:
                if not net.hasEdge(eid) or not net.getEdge(eid).allows("passenger"):
                    raise ScenarioError(f"[parking.demand]: {key} names {eid!r}, not a road of the network")
            if key == "origins":
                entries = sorted(given)
            else:
                exits = sorted(given)
    if not entries or not exits:
        raise ScenarioError("[parking.demand]: the network has no fringe entry/exit edges for parking trips")
    dests = destinations(net, demand)
    rng = np.random.default_rng([seed, 7919])
    lo = begin_s if demand["begin_s"] is None else demand["begin_s"]
    hi = end_s if demand["end_s"] is None else demand["end_s"]
    rate = demand["vehicles_per_hour"] / 3600.0
    departs = []
    t = lo + rng.exponential(1.0 / rate)
    while t < hi:
        departs.append(t)
        t += rng.exponential(1.0 / rate)
    n = len(departs)
    weights = np.array([d.weight for d in dests])
    dest_idx = rng.choice(len(dests), size=n, p=weights / weights.sum())
    origins = rng.choice(len(entries), size=n)
    exit_idx = rng.choice(len(exits), size=n)
    dwell = sample_dwell(rng, demand["dwell"], n)
    prices = np.array([c.price_per_h for c in car_parks])
    walks = [walking_m(car_parks, d.x, d.y) for d in dests]
    drivers = []
    for i in range(n):
        origin = entries[int(origins[i])]
        cost = perceived_costs(
            prices_per_h=prices, dwell_s=float(dwell[i]), drive_s=times.from_edge(origin),
            walk_m=walks[int(dest_idx[i])], value_of_time_per_h=value_of_time_per_h,
            walk_speed_mps=walk_speed_mps,
        ) + taste(seed, i, len(car_parks), choice_noise)
        if not np.isfinite(cost).any():
            raise ScenarioError(f"[parking]: no car park can be reached from entry edge {origin!r}")
        drivers.append(Driver(
            id=f"{VEHICLE_PREFIX}{i}", index=i, depart_s=round(float(departs[i]), 1), origin=origin,
            exit=exits[int(exit_idx[i])], destination=int(dest_idx[i]), dwell_s=round(float(dwell[i]), 1),
            first_choice=car_parks[int(np.argmin(cost))].id,
        ))
    return drivers, dests


def write_trips(drivers: Sequence[Driver], path: Path) -> Path:
    """Write the drivers as SUMO trips with a parking stop, sorted by departure (atomic)."""
    lines = [
        "<routes>",
        '    <vType id="gw_parker" vClass="passenger">',
        '        <param key="parking.memory" value="600"/>',
        "    </vType>",
    ]
    for d in sorted(drivers, key=lambda d: (d.depart_s, d.index)):
        lines.append(
            f"    <trip id={quoteattr(d.id)} type=\"gw_parker\" depart=\"{d.depart_s:.1f}\" "
            f"from={quoteattr(d.origin)} to={quoteattr(d.exit)} departLane=\"best\">\n"
            f"        <stop parkingArea={quoteattr(d.first_choice)} duration=\"{d.dwell_s:.1f}\" parking=\"true\"/>\n"
            f"    </trip>"
        )
    lines.append("</routes>")
    write_text_atomic("\n".join(lines) + "\n", path)
    return path
