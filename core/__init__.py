"""greenwave: city-scale signal timing optimisation and parking guidance, proven in SUMO."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("greenwave")
except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
