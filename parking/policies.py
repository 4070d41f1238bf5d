"""Parking policies as plain state machines, independent of SUMO: guidance and SFpark pricing.

:class:`Guidance` holds the platform's view: live occupancy of the *networked* car parks and
the vehicles it has sent to each. It never assigns a vehicle to a car park whose free spaces
are all spoken for (occupied + en-route assignments ≥ capacity), never to a car park that is not
networked (the platform does not know it) and never to one the vehicle cannot reach (infinite
cost). When a target fills up by other drivers it names the vehicles to re-assign (the most
recently assigned first).

:class:`SFparkPricer` adjusts each networked car park's price at a fixed interval from its mean
occupancy over the past interval: one step up above the target band, one step down below it,
within bounds (SFpark's rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class Guidance:
    """Assignment of searching vehicles to networked car parks with free spaces.

    Parameters
    ----------
    capacity
        Spaces per car park.
    networked
        Boolean mask: which car parks the platform sees.
    """

    def __init__(self, capacity: Sequence[int], networked: Sequence[bool]) -> None:
        self.capacity = np.asarray(capacity, dtype=np.int64)
        self.networked = np.asarray(networked, dtype=bool)
        self.assigned = np.zeros(len(self.capacity), dtype=np.int64)
        self.target: dict[str, int] = {}
        self._order: dict[int, list[str]] = {}

    def free(self, occupancy: np.ndarray) -> np.ndarray:
        """Spaces the platform can still offer per car park (−1 for car parks it does not see)."""
        free = self.capacity - np.asarray(occupancy, dtype=np.int64) - self.assigned
        return np.where(self.networked, free, -1)

    def _take(self, vid: str, p: int) -> None:
        self.release(vid)
        self.target[vid] = p
        self.assigned[p] += 1
        self._order.setdefault(p, []).append(vid)

    def keep(self, vid: str, p: int, occupancy: np.ndarray) -> bool:
        """Book the driver's own choice ``p`` if the platform sees it and it has an unbooked space."""
        if self.free(occupancy)[p] > 0:
            self._take(vid, p)
            return True
        return False

    def assign(self, vid: str, cost: np.ndarray, occupancy: np.ndarray) -> int | None:
        """Book and return the cheapest networked, reachable car park with an unbooked space.

        ``cost`` is the vehicle's generalised cost per car park (``inf``: unreachable). Returns
        None (and books nothing) when there is none; the vehicle then keeps searching on its own.
        """
        cost = np.asarray(cost, dtype=float)
        ok = (self.free(occupancy) > 0) & np.isfinite(cost)
        if vid in self.target:  # its own booking counts as free for itself
            ok[self.target[vid]] = np.isfinite(cost[self.target[vid]])
        if not ok.any():
            return None
        p = int(np.argmin(np.where(ok, cost, np.inf)))
        self._take(vid, p)
        return p

    def release(self, vid: str) -> int | None:
        """Forget the booking of ``vid`` (it parked, gave up or left); return the car park."""
        p = self.target.pop(vid, None)
        if p is not None:
            self.assigned[p] -= 1
            self._order[p].remove(vid)
        return p

    def overbooked(self, occupancy: np.ndarray) -> list[str]:
        """Vehicles whose target no longer holds a space for them (latest bookings first).

        Their bookings are released; the caller re-assigns them.
        """
        excess = self.assigned - np.maximum(self.capacity - np.asarray(occupancy, dtype=np.int64), 0)
        out: list[str] = []
        for p in np.flatnonzero(excess > 0):
            victims = self._order[int(p)][-int(excess[p]):]
            for vid in reversed(victims):
                self.release(vid)
                out.append(vid)
        return out


@dataclass
class SFparkPricer:
    """Demand-responsive prices, SFpark style, per car park.

    Every ``interval_s`` each priced car park's mean occupancy share over the past interval is
    compared with the target band [``target_low``, ``target_high``]: above it the price rises by
    ``step_per_h``, below it it falls by ``step_per_h``, inside it stays; prices stay within
    [``min_price_per_h``, ``max_price_per_h``]. Car parks outside ``priced`` keep their price.
    """

    prices_per_h: np.ndarray
    priced: np.ndarray
    interval_s: float
    step_per_h: float
    min_price_per_h: float
    max_price_per_h: float
    target_low: float = 0.6
    target_high: float = 0.8

    def __post_init__(self) -> None:
        self.prices_per_h = np.asarray(self.prices_per_h, dtype=float).copy()
        self.priced = np.asarray(self.priced, dtype=bool)
        self._sum = np.zeros(len(self.prices_per_h))
        self._n = 0
        self._next: float | None = None
        self.history: list[tuple[float, np.ndarray]] = []

    def observe(self, time_s: float, occupancy_share: np.ndarray) -> bool:
        """Add one occupancy observation; at the interval's end, update prices (returns True)."""
        if self._next is None:
            self._next = time_s + self.interval_s
        self._sum += occupancy_share
        self._n += 1
        if time_s + 1e-9 < self._next:
            return False
        self.update(self._sum / max(self._n, 1))
        self.history.append((time_s, self.prices_per_h.copy()))
        self._sum[:] = 0.0
        self._n = 0
        self._next += self.interval_s
        return True

    def update(self, mean_share: np.ndarray) -> np.ndarray:
        """One SFpark step from the mean occupancy shares; returns the new prices."""
        step = np.where(mean_share > self.target_high, self.step_per_h,
                        np.where(mean_share < self.target_low, -self.step_per_h, 0.0))
        new = np.clip(self.prices_per_h + step, self.min_price_per_h, self.max_price_per_h)
        self.prices_per_h = np.where(self.priced, new, self.prices_per_h)
        return self.prices_per_h
