"""Car parks, guidance of searching drivers and demand-responsive prices.

The ``[parking]`` run add-on is :class:`greenwave.parking.addon.ParkingAddon` (a scenario's
``[parking]`` table makes one per run, see :mod:`greenwave.scenarios.addons`);
:mod:`greenwave.parking.results` holds the parking KPIs and the tables and plot of the networking-rate
sweep that :mod:`greenwave.scenarios.parking_sweep` runs behind ``greenwave parking-sweep``.
"""

from greenwave.parking.addon import Guidance, ParkingAddon, SFparkPricer
from greenwave.parking.carparks import CarPark, apply_networking_rate, networking_rates, resolve_car_parks
from greenwave.parking.results import parking_kpis

__all__ = [
    "CarPark",
    "Guidance",
    "ParkingAddon",
    "SFparkPricer",
    "apply_networking_rate",
    "networking_rates",
    "parking_kpis",
    "resolve_car_parks",
]
