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
    dwell). Vehicles whose target filled up meanwhile, that found a car park full or that
    search on their own are re-planned every ``guidance_interval_s``. Car parks that are not
    networked stay unknown to the platform; drivers may still find them on their own.
``pricing``
    ``guidance`` plus SFpark prices on the networked car parks; drivers choose with the prices
    published when they set off.

Outputs in ``RUN/parking/``: ``vehicles.csv`` (one row per parking vehicle), ``occupancy.csv``
(occupancy of every car park every ``occupancy_interval_s``), ``car_parks.csv`` and
``prices.csv``; KPIs in the run's summary row (see :mod:`greenwave.parking.kpis`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from greenwave.engine.addons import AddonInputs, RunAddon, register_addon
from greenwave.engine.results import write_table_atomic
from greenwave.parking.carparks import (
    CarPark,
    apply_networking_rate,
    networking_rates,
    resolve_car_parks,
    write_parking_additional,
)
from greenwave.parking.demand import (
    VEHICLE_PREFIX,
    Driver,
    generate_drivers,
    perceived_costs,
    taste,
    write_trips,
)
from greenwave.parking.kpis import OCCUPANCY_COLUMNS, VEHICLE_COLUMNS, car_park_table, parking_kpis
from greenwave.parking.options import parse_parking_options
from greenwave.parking.policies import Guidance, SFparkPricer
from greenwave.parking.roads import DriveTimes, area_edges, drive_times, walking_m

if TYPE_CHECKING:
    from greenwave.controllers.base import RunContext
    from greenwave.engine.session import SumoSession


def _traci_error(conn: Any) -> type[Exception]:
    return getattr(conn, "TraCIException", None) or __import__("traci").exceptions.TraCIException


@register_addon
class ParkingAddon(RunAddon):
    """Parking in the run: see the module docstring. Options: :mod:`greenwave.parking.options`."""

    name = "parking"

    @classmethod
    def parse_options(cls, raw: Any, *, where: str, base: Path) -> dict[str, Any]:
        return parse_parking_options(raw, where=where, base=base)

    # -- before the run --------------------------------------------------------------------
    def prepare(self, ctx: RunContext) -> AddonInputs:
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
            road = res[tc.VAR_ROAD_ID]
            if road.startswith(":"):
                continue
            rec["_edge"] = road
            pos = res[tc.VAR_LANEPOSITION]
            k = self.target[vid]
            at_target = k is not None and road == self.edges[k]
            if np.isnan(rec["search_start_s"]) and (at_target or road in self.areas[rec["destination"]]):
                rec["search_start_s"], rec["search_start_odometer_m"] = t, res[tc.VAR_DISTANCE]
            if at_target and pos > self.ends[k] + 1.0:  # drove past it: it was full (a failed attempt)
                self.target[vid] = None
                if self.guidance is not None:
                    self.guidance.release(vid)
            if not np.isnan(rec["search_start_s"]) and t - rec["search_start_s"] > patience:
                lost.append(vid)
            rec["_pos"] = pos
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
        todo += [v for v, k in self.target.items() if k is None]
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

    def finish(self, ctx: RunContext) -> dict[str, Any]:
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
