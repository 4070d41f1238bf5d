"""The ``[parking]`` run add-on: car parks, parking demand, search, guidance, pricing, KPIs.

It runs next to whatever signal controller the run uses. Before SUMO starts it places the car
parks (``parkingArea`` + search rerouters), applies the networking rate and writes the parking
trips; during the run it follows the parking vehicles through subscriptions (road, odometer,
lane position) and the simulation's aggregated lists (departed, parking started/ended), and
acts according to the policy:

``no_guidance``
    Nothing: drivers head for their own first choice and, finding it full, search as SUMO
    models it (parking rerouters; alternatives not visible; memory of full car parks).
``guidance``
    A platform that sees the live occupancy of the networked car parks books drivers in: at
    departure the driver's own choice if it is networked and has an unbooked space, otherwise
    the networked car park with an unbooked space and the lowest generalised cost (drive time
    from the vehicle's edge on the road graph, walking to the destination and back, price ×
    dwell). Vehicles whose target filled up meanwhile, that found a car park full, that search
    on their own or that were offered no space when last planned are re-planned every
    ``guidance_interval_s``. Car parks that are not
    networked stay unknown to the platform; drivers may still find them on their own.
``pricing``
    ``guidance`` plus SFpark prices on the networked car parks; drivers choose with the prices
    published when they set off.

Outputs in ``RUN/parking/``: ``vehicles.csv`` (one row per parking vehicle), ``occupancy.csv``
(occupancy of every car park every ``occupancy_interval_s``), ``car_parks.csv`` and
``prices.csv``; KPIs in the run's summary row (see :mod:`greenwave.parking.kpis`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from greenwave.engine.addons import AddonInputs, RunAddon
from greenwave.engine.results import write_table_atomic
from greenwave.parking.carparks import (
    VEHICLE_PREFIX,
    CarPark,
    Driver,
    DriveTimes,
    apply_networking_rate,
    area_edges,
    drive_times,
    generate_drivers,
    networking_rates,
    perceived_costs,
    resolve_car_parks,
    taste,
    walking_m,
    write_parking_additional,
    write_trips,
)
from greenwave.parking.options import parse_parking_options
from greenwave.parking.results import OCCUPANCY_COLUMNS, VEHICLE_COLUMNS, car_park_table, parking_kpis

if TYPE_CHECKING:
    from greenwave.engine.run import RunSpec
    from greenwave.engine.session import SumoSession


def _traci_error(conn: Any) -> type[Exception]:
    return getattr(conn, "TraCIException", None) or __import__("traci").exceptions.TraCIException


class ParkingAddon(RunAddon):
    """Parking in the run: see the module docstring. Options: :mod:`greenwave.parking.options`."""

    name = "parking"

    @classmethod
    def parse_options(cls, raw: Any, *, where: str, base: Path) -> dict[str, Any]:
        return parse_parking_options(raw, where=where, base=base)

    # -- before the run --------------------------------------------------------------------
    def prepare(self, ctx: RunSpec) -> AddonInputs:
        import sumolib

        o = self.options
        net = sumolib.net.readNet(str(ctx.net_file))
        where = f"[parking] of scenario {ctx.scenario!r}"
        cps = resolve_car_parks(o, net, where=where)
        seed = ctx.seed if o.get("networking_seed") is None else o["networking_seed"]
        self.car_parks: list[CarPark] = apply_networking_rate(cps, o.get("networking_rate"), seed=seed)
        self.times: DriveTimes = drive_times(net, self.car_parks)
        drivers, dests = generate_drivers(
            net, o["demand"], self.car_parks, self.times, begin_s=ctx.demand_begin_s,
            end_s=ctx.demand_end_s, seed=ctx.seed, value_of_time_per_h=o["value_of_time_per_h"],
            walk_speed_mps=o["walk_speed_mps"], choice_noise=o["choice_noise"],
        )
        self.drivers: dict[str, Driver] = {d.id: d for d in drivers}
        self.walk = np.array([walking_m(self.car_parks, d.x, d.y) for d in dests])  # (dest, car park), m
        self.areas = [area_edges(net, x=d.x, y=d.y, radius_m=o["search_radius_m"]) for d in dests]
        self.seed = ctx.seed
        self.begin_s, self.end_s = ctx.begin_s, ctx.end_s
        out = ctx.workdir / "parking"
        add = write_parking_additional(self.car_parks, out / "car_parks.add.xml",
                                       alternatives=o["alternatives"], end_s=ctx.end_s)
        trips = write_trips(drivers, out / "parking.rou.xml")
        return AddonInputs(route_files=(trips,), additional_files=(add,))

    # -- during the run --------------------------------------------------------------------
    def start(self, sim: SumoSession) -> None:
        from traci import constants as tc

        o = self.options
        self._tc = tc
        conn = sim.conn
        self._error = _traci_error(conn)
        self.ids = [c.id for c in self.car_parks]
        self.index = {c: k for k, c in enumerate(self.ids)}
        self.capacity = np.array([c.capacity for c in self.car_parks], dtype=np.int64)
        self.networked = np.array([c.networked for c in self.car_parks], dtype=bool)
        self.edges = [c.edge for c in self.car_parks]
        self.starts = np.array([c.start_m for c in self.car_parks])
        self.ends = np.array([c.end_m for c in self.car_parks])
        self.prices = np.array([c.price_per_h for c in self.car_parks], dtype=float)
        self._parks_on: dict[str, list[int]] = {}
        for k, e in enumerate(self.edges):
            self._parks_on.setdefault(e, []).append(k)
        for pid in self.ids:
            conn.parkingarea.subscribe(pid, [tc.VAR_STOP_STARTING_VEHICLES_NUMBER])
        policy = o["policy"]
        self.guidance = Guidance(self.capacity, self.networked) if policy in ("guidance", "pricing") else None
        pr = o["pricing"]
        self.pricer = SFparkPricer(
            prices_per_h=self.prices, priced=self.networked, interval_s=pr["interval_s"],
            step_per_h=pr["step_per_h"], min_price_per_h=pr["min_price_per_h"],
            max_price_per_h=pr["max_price_per_h"], target_low=pr["target_low"],
            target_high=pr["target_high"],
        ) if policy == "pricing" else None
        self.records: dict[str, dict[str, Any]] = {}
        self.target: dict[str, int | None] = {}  # en-route vehicle → car park index it heads for (None: own search)
        self.samples_t: list[float] = []
        self.samples_occ: list[np.ndarray] = []
        self.samples_price: list[np.ndarray] = []
        self._next_sample = self.begin_s
        self._next_guidance = self.begin_s
        self.max_booked_excess = 0  # worst (occupied + booked − capacity) ever seen right after planning
        self._vars = [tc.VAR_ROAD_ID, tc.VAR_DISTANCE, tc.VAR_LANEPOSITION]

    def occupancy(self, conn: Any) -> np.ndarray:
        """Vehicles parked in each car park now (subscription results, one call)."""
        res = conn.parkingarea.getAllSubscriptionResults()
        key = self._tc.VAR_STOP_STARTING_VEHICLES_NUMBER
        return np.array([res[p][key] for p in self.ids], dtype=np.int64)

    def _costs(self, d: Driver, drive: np.ndarray) -> np.ndarray:
        return perceived_costs(
            prices_per_h=self.prices, dwell_s=d.dwell_s, drive_s=drive, walk_m=self.walk[d.destination],
            value_of_time_per_h=self.options["value_of_time_per_h"], walk_speed_mps=self.options["walk_speed_mps"],
        )

    def _drive_from(self, edge: str, lane_pos: float) -> np.ndarray:
        drive = np.array(self.times.from_edge(edge), dtype=float)
        for k in self._parks_on.get(edge, ()):
            if lane_pos > self.starts[k]:  # already past it: round the block
                drive[k] = self.times.loop[k]
        return drive

    def _send(self, conn: Any, vid: str, k: int) -> bool:
        try:
            conn.vehicle.rerouteParkingArea(vid, self.ids[k])
        except self._error:
            return False
        return True

    def step(self, sim: SumoSession) -> None:
        conn, t, tc = sim.conn, sim.time_s, self._tc
        occ = self.occupancy(conn)
        if self.pricer is not None and self.pricer.observe(t, occ / self.capacity):
            self.prices = self.pricer.prices_per_h.copy()
        # departures: first choice with the prices of now, then the platform books
        for vid in conn.simulation.getDepartedIDList():
            if not vid.startswith(VEHICLE_PREFIX) or vid not in self.drivers:
                continue
            d = self.drivers[vid]
            conn.vehicle.subscribe(vid, self._vars)
            first = self.index[d.first_choice]
            if self.pricer is not None:  # published prices may have moved since the trip was written
                cost = self._costs(d, self.times.from_edge(d.origin)) + taste(
                    self.seed, d.index, len(self.ids), self.options["choice_noise"])
                own = int(np.argmin(cost))
                if own != first and self._send(conn, vid, own):
                    first = own
            self.records[vid] = {
                "vehicle": vid, "depart_s": t, "destination": d.destination, "first_choice": self.ids[first],
                "search_start_s": np.nan, "search_start_odometer_m": np.nan, "parked_at": "", "park_s": np.nan,
                "park_odometer_m": np.nan, "leave_s": np.nan, "walk_m": np.nan, "price_per_h_at_park": np.nan,
                "gave_up": False, "gave_up_s": np.nan, "reassignments": 0, "_edge": d.origin,
                "_pos": 0.0,
            }
            self.target[vid] = first
            if self.guidance is not None and self.networked[first] and not self.guidance.keep(vid, first, occ):
                self._replan(conn, vid, occ, edge=d.origin, lane_pos=0.0)
        # parking starts and ends (aggregated lists, one call each)
        for vid in conn.simulation.getParkingStartingVehiclesIDList():
            rec = self.records.get(vid)
            if rec is None:
                continue
            stops = conn.vehicle.getStops(vid, 1)
            pid = stops[0].stoppingPlaceID if stops else ""
            res = conn.vehicle.getSubscriptionResults(vid)
            rec["parked_at"], rec["park_s"] = pid, t
            rec["park_odometer_m"] = res.get(tc.VAR_DISTANCE, np.nan) if res else np.nan
            k = self.index.get(pid)
            if k is not None:
                rec["walk_m"] = float(self.walk[rec["destination"], k])
                rec["price_per_h_at_park"] = float(self.prices[k])
            if self.guidance is not None:
                self.guidance.release(vid)
            self.target.pop(vid, None)
            conn.vehicle.unsubscribe(vid)
        for vid in conn.simulation.getParkingEndingVehiclesIDList():
            rec = self.records.get(vid)
            if rec is not None:
                rec["leave_s"] = t
        # the vehicles still looking for their space
        patience = self.options["patience_s"]
        lost: list[str] = []
        for vid, res in conn.vehicle.getAllSubscriptionResults().items():
            rec = self.records.get(vid)
            if rec is None or vid not in self.target:
                continue
            if not np.isnan(rec["search_start_s"]) and t - rec["search_start_s"] > patience:
                lost.append(vid)
                continue
            road = res[tc.VAR_ROAD_ID]
            if road.startswith(":"):
                continue
            pos = res[tc.VAR_LANEPOSITION]
            prev_edge, prev_pos = rec["_edge"], rec["_pos"]
            rec["_edge"], rec["_pos"] = road, pos
            k = self.target[vid]
            at_target = k is not None and road == self.edges[k]
            if np.isnan(rec["search_start_s"]) and (at_target or road in self.areas[rec["destination"]]):
                rec["search_start_s"], rec["search_start_odometer_m"] = t, res[tc.VAR_DISTANCE]
            if k is not None and self._failed(k, road, pos, prev_edge, prev_pos):
                self.target[vid] = None
                if self.guidance is not None:
                    self.guidance.release(vid)
        for vid in lost:
            self._give_up(conn, vid, t)
        if self.guidance is not None and t + 1e-9 >= self._next_guidance:
            self._next_guidance += self.options["guidance_interval_s"]
            self._plan(conn, occ)
        if t + 1e-9 >= self._next_sample:
            self._next_sample += self.options["occupancy_interval_s"]
            self.samples_t.append(t)
            self.samples_occ.append(occ)
            self.samples_price.append(self.prices.copy())

    def _failed(self, k: int, road: str, pos: float, prev_edge: str, prev_pos: float) -> bool:
        """Whether a vehicle heading for car park ``k`` just missed it (it was full): it drove past
        its end on its edge, or left that edge, having last been seen before the end.

        A vehicle sent to a car park it has already passed on the same edge (it must go round the
        block) has not failed until it comes back and passes it again.
        """
        end = float(self.ends[k]) + 1.0
        if road == self.edges[k]:
            return pos > end and (prev_edge != road or prev_pos <= end)
        return prev_edge == self.edges[k] and prev_pos <= end

    def _replan(self, conn: Any, vid: str, occ: np.ndarray, *, edge: str, lane_pos: float) -> None:
        assert self.guidance is not None
        d = self.drivers[vid]
        old = self.target.get(vid)
        k = self.guidance.assign(vid, self._costs(d, self._drive_from(edge, lane_pos)), occ)
        if k is None:
            if old is not None and self.networked[old]:
                self.target[vid] = old  # nothing better to offer: it keeps heading there
            return
        if k != old and not self._send(conn, vid, k):
            self.guidance.release(vid)
            return
        if k != old:
            self.records[vid]["reassignments"] += 1
        self.target[vid] = k

    def _plan(self, conn: Any, occ: np.ndarray) -> None:
        """Re-plan vehicles whose booking no longer holds and those searching on their own."""
        assert self.guidance is not None
        todo = self.guidance.overbooked(occ)
        # searching on their own, or heading for a networked car park that had no space for them
        # when last planned (nothing was free then; something may be now)
        todo += [v for v, k in self.target.items()
                 if k is None or (self.networked[k] and v not in self.guidance.target)]
        for vid in dict.fromkeys(todo):
            rec = self.records[vid]
            self._replan(conn, vid, occ, edge=rec["_edge"], lane_pos=rec.get("_pos", 0.0))
        excess = int(np.max(occ + self.guidance.assigned - self.capacity, initial=0))
        self.max_booked_excess = max(self.max_booked_excess, excess)

    def _give_up(self, conn: Any, vid: str, t: float) -> None:
        rec = self.records[vid]
        rec["gave_up"], rec["gave_up_s"] = True, t
        if self.guidance is not None:
            self.guidance.release(vid)
        self.target.pop(vid, None)
        try:
            conn.vehicle.replaceStop(vid, 0, "")  # drop the parking stop: drive on to the exit
        except self._error:
            pass  # already gone from the network
        conn.vehicle.unsubscribe(vid)

    # -- after the run ---------------------------------------------------------------------
    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(vehicles, occupancy samples) as recorded so far."""
        vehicles = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")}
                                 for r in self.records.values()], columns=VEHICLE_COLUMNS)
        rows = []
        for t, occ, price in zip(self.samples_t, self.samples_occ, self.samples_price, strict=True):
            for k, pid in enumerate(self.ids):
                rows.append((t, pid, int(occ[k]), int(self.capacity[k]), occ[k] / self.capacity[k],
                             float(price[k]), bool(self.networked[k])))
        return vehicles, pd.DataFrame(rows, columns=OCCUPANCY_COLUMNS)

    def finish(self, ctx: RunSpec) -> dict[str, Any]:
        o = self.options
        if not hasattr(self, "records"):  # SUMO never started
            return {}
        vehicles, occupancy = self.tables()
        kpi_begin = ctx.begin_s if o.get("kpi_begin_s") is None else o["kpi_begin_s"]
        band = (o["pricing"]["target_low"], o["pricing"]["target_high"])
        out = ctx.workdir / "parking"
        write_table_atomic(vehicles, out / "vehicles.csv")
        write_table_atomic(occupancy, out / "occupancy.csv")
        write_table_atomic(car_park_table(occupancy, vehicles, kpi_begin_s=kpi_begin, end_s=ctx.end_s,
                                          target_low=band[0], target_high=band[1]), out / "car_parks.csv")
        if self.pricer is not None:
            prices = pd.DataFrame([(t, pid, float(p[k])) for t, p in self.pricer.history
                                   for k, pid in enumerate(self.ids)], columns=["time_s", "car_park", "price_per_h"])
            write_table_atomic(prices, out / "prices.csv")
        by_count, by_spaces = networking_rates(self.car_parks)
        row: dict[str, Any] = {
            "parking_policy": o["policy"],
            "parking_networking_rate": by_count,
            "parking_networking_rate_spaces": by_spaces,
        }
        row.update(parking_kpis(vehicles, occupancy, capacity_total=int(self.capacity.sum()),
                                kpi_begin_s=kpi_begin, end_s=ctx.end_s, target_low=band[0], target_high=band[1]))
        if self.guidance is not None:
            row["parking_max_overbooking"] = self.max_booked_excess
        return row

# ------------------------------------------------------------------------------------------
# the policies' state machines (no SUMO in them)


# Parking policies as plain state machines, independent of SUMO: guidance and SFpark pricing.
#
# :class:`Guidance` holds the platform's view: live occupancy of the *networked* car parks and
# the vehicles it has sent to each. It never assigns a vehicle to a car park whose free spaces
# are all spoken for (occupied + en-route assignments ≥ capacity), never to a car park that is not
# networked (the platform does not know it) and never to one the vehicle cannot reach (infinite
# cost). When a target fills up by other drivers it names the vehicles to re-assign (the most
# recently assigned first).
#
# :class:`SFparkPricer` adjusts each networked car park's price at a fixed interval from its mean
# occupancy over the past interval: one step up above the target band, one step down below it,
# within bounds (SFpark's rule).
# """


class Guidance:
    """Assignment of searching vehicles to networked car parks with free spaces.

    Parameters
    ----------
    capacity
        Spaces per car park.
    networked
        Boolean mask: which car parks the platform sees.
    """

    def __init__(self, capacity: npt.ArrayLike, networked: npt.ArrayLike) -> None:
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
