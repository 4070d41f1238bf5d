"""Car parks, guidance of searching drivers and demand-responsive prices.

Importing the package registers the ``[parking]`` run add-on
(:class:`greenwave.parking.addon.ParkingAddon`); :mod:`greenwave.parking.sweep` runs the
networking-rate sweep behind ``greenwave parking-sweep``.
"""

from greenwave.parking.addon import ParkingAddon
from greenwave.parking.carparks import CarPark, apply_networking_rate, networking_rates, resolve_car_parks
from greenwave.parking.kpis import parking_kpis
from greenwave.parking.policies import Guidance, SFparkPricer

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
