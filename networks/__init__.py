"""greenwave.networks: what the road is.

Read SUMO nets (:func:`load_network`), generate grids and arterials, import OpenStreetMap, and
hold junctions, edges, signals, movements and conflicts in a :class:`RoadNetwork`.
"""

from greenwave.networks.compile import compile_network
from greenwave.networks.generate import arterial_network, grid_network, import_osm
from greenwave.networks.model import Movement, Phase, Program, RoadNetwork, Signal
from greenwave.networks.sumo_net import load_network

__all__ = [
    "Movement",
    "Phase",
    "Program",
    "RoadNetwork",
    "Signal",
    "arterial_network",
    "compile_network",
    "grid_network",
    "import_osm",
    "load_network",
]
