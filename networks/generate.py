"""Make real SUMO networks: signalised grids (netgenerate), arterials and OSM imports (netconvert).

Every function writes a ``.net.xml`` through SUMO's own tools (run by
:func:`greenwave._sumo.run_sumo_command`) and returns its path; load it with
:func:`greenwave.networks.load_network`.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

from greenwave._sumo import run_sumo_command
from greenwave.errors import NetworkError

__all__ = ["arterial_network", "grid_network", "import_osm"]

_TLS_TYPES = ("static", "actuated", "delay_based")


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise NetworkError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _positive_float(name: str, value: object, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise NetworkError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise NetworkError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def _seed(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise NetworkError(f"seed must be a non-negative integer, got {value!r}")
    return value


def _out(out_path: str | os.PathLike[str]) -> Path:
    path = Path(out_path)
    if path.is_dir():
        raise NetworkError(f"out_path {path} is a directory; give a file name such as grid.net.xml")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def grid_network(
    out_path: str | os.PathLike[str],
    *,
    rows: int,
    cols: int,
    spacing_m: float = 200.0,
    lanes: int = 1,
    speed_mps: float = 13.89,
    attach_length_m: float = 200.0,
    left_turn_lanes: bool = False,
    tls_type: str = "static",
    seed: int = 0,
) -> Path:
    """Generate a signalised ``rows × cols`` grid with ``netgenerate --grid``.

    Every grid junction is a traffic light; with ``attach_length_m > 0`` each border junction
    gets a feeder street of that length, so all signals have four approaches, and the fringe
    ends of the feeders stay unsignalised dead ends.

    Parameters
    ----------
    out_path
        The ``.net.xml`` to write (parent folders are created).
    rows, cols
        Number of junction rows (y) and columns (x), each >= 1.
    spacing_m
        Distance between neighbouring junctions, m.
    lanes
        Lanes per direction on every street.
    speed_mps
        Speed limit, m/s.
    attach_length_m
        Length of the feeder streets at the border, m (0: none).
    left_turn_lanes
        Add one exclusive left-turn lane per approach (``netgenerate --turn-lanes 1``).
    tls_type
        SUMO program type: ``static``, ``actuated`` or ``delay_based``.
    seed
        Seed for netgenerate's random choices.

    Returns
    -------
    Path
        ``out_path``.
    """
    rows = _positive_int("rows", rows)
    cols = _positive_int("cols", cols)
    spacing = _positive_float("spacing_m", spacing_m)
    lanes = _positive_int("lanes", lanes)
    speed = _positive_float("speed_mps", speed_mps)
    attach = _positive_float("attach_length_m", attach_length_m, allow_zero=True)
    if tls_type not in _TLS_TYPES:
        raise NetworkError(f"tls_type must be one of {', '.join(_TLS_TYPES)}, got {tls_type!r}")
    if rows * cols < 2 and attach == 0:
        raise NetworkError("rows × cols must be >= 2 when attach_length_m is 0 (no streets)")
    out = _out(out_path)
    args: list[str] = [
        "netgenerate",
        "--grid",
        f"--grid.x-number={cols}",
        f"--grid.y-number={rows}",
        f"--grid.x-length={spacing}",
        f"--grid.y-length={spacing}",
        f"--grid.attach-length={attach}",
        f"--default.lanenumber={lanes}",
        f"--default.speed={speed}",
        # only real junctions (>= 3 legs) are guessed as signals; fringe dead ends never are
        "--tls.guess=true",
        "--tls.guess.threshold=0",
        f"--tls.default-type={tls_type}",
        "--no-turnarounds=true",
        f"--seed={_seed(seed)}",
        f"--output-file={out}",
    ]
    if left_turn_lanes:
        args += ["--turn-lanes=1", f"--turn-lanes.length={min(50.0, spacing / 3.0):.2f}"]
    run_sumo_command(args, what=f"netgenerate grid {rows}x{cols}")
    return out


def arterial_network(
    out_path: str | os.PathLike[str],
    *,
    n_intersections: int,
    spacing_m: float = 300.0,
    side_length_m: float = 200.0,
    lanes: int = 2,
    side_lanes: int = 1,
    speed_mps: float = 13.89,
    side_speed_mps: float = 11.11,
    seed: int = 0,
) -> Path:
    """Build an arterial: a main road through ``n_intersections`` signals with side streets.

    The main road runs west → east along y = 0 with signalised junctions ``I0 … I{n-1}`` at
    ``x = k · spacing_m``; it starts at ``W`` and ends at ``E``, one ``spacing_m`` beyond the
    first and last signal. Each signal has a side street to the north (``N{k}``) and south
    (``S{k}``) of length ``side_length_m``. Plain XML nodes/edges go through netconvert.

    Parameters
    ----------
    out_path
        The ``.net.xml`` to write.
    n_intersections
        Number of signalised intersections (>= 1).
    spacing_m
        Distance between neighbouring intersections, m.
    side_length_m
        Length of each side street, m.
    lanes, side_lanes
        Lanes per direction on the main road and on the side streets.
    speed_mps, side_speed_mps
        Speed limits on the main road and the side streets, m/s.
    seed
        Seed for netconvert.

    Returns
    -------
    Path
        ``out_path``.
    """
    n = _positive_int("n_intersections", n_intersections)
    spacing = _positive_float("spacing_m", spacing_m)
    side = _positive_float("side_length_m", side_length_m)
    lanes = _positive_int("lanes", lanes)
    side_lanes = _positive_int("side_lanes", side_lanes)
    speed = _positive_float("speed_mps", speed_mps)
    side_speed = _positive_float("side_speed_mps", side_speed_mps)
    out = _out(out_path)

    nodes = [("W", -spacing, 0.0, "priority"), ("E", n * spacing, 0.0, "priority")]
    edges: list[tuple[str, str, str, int, float, int]] = []
    main = ["W", *(f"I{k}" for k in range(n)), "E"]
    for k in range(n):
        x = k * spacing
        nodes += [(f"I{k}", x, 0.0, "traffic_light"), (f"N{k}", x, side, "priority")]
        nodes.append((f"S{k}", x, -side, "priority"))
        for tip in (f"N{k}", f"S{k}"):
            edges.append((f"{tip}_I{k}", tip, f"I{k}", side_lanes, side_speed, 1))
            edges.append((f"I{k}_{tip}", f"I{k}", tip, side_lanes, side_speed, 1))
    for a, b in zip(main, main[1:], strict=False):
        edges.append((f"{a}_{b}", a, b, lanes, speed, 2))
        edges.append((f"{b}_{a}", b, a, lanes, speed, 2))

    with tempfile.TemporaryDirectory(prefix="greenwave_arterial_") as tmp:
        nod = Path(tmp) / "arterial.nod.xml"
        edg = Path(tmp) / "arterial.edg.xml"
        nod.write_text(
            "<nodes>\n"
            + "".join(
                f'    <node id={quoteattr(i)} x="{x:.2f}" y="{y:.2f}" type="{t}"/>\n'
                for i, x, y, t in nodes
            )
            + "</nodes>\n",
            encoding="utf-8",
        )
        edg.write_text(
            "<edges>\n"
            + "".join(
                f"    <edge id={quoteattr(i)} from={quoteattr(a)} to={quoteattr(b)} "
                f'numLanes="{nl}" speed="{sp:.2f}" priority="{pr}"/>\n'
                for i, a, b, nl, sp, pr in edges
            )
            + "</edges>\n",
            encoding="utf-8",
        )
        run_sumo_command(
            [
                "netconvert",
                f"--node-files={nod}",
                f"--edge-files={edg}",
                "--tls.default-type=static",
                "--no-turnarounds=true",
                f"--seed={_seed(seed)}",
                f"--output-file={out}",
            ],
            what=f"netconvert arterial of {n} intersections",
        )
    return out


def import_osm(
    osm_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    guess_tls: bool = True,
    join_junctions: bool = True,
    passenger_only: bool = True,
    tls_type: str = "static",
    extra_args: Sequence[str] = (),
    seed: int = 0,
) -> Path:
    """Convert an OpenStreetMap file into a SUMO net with ``netconvert --osm-files``.

    Parameters
    ----------
    osm_path
        The ``.osm`` (or ``.osm.xml``/``.osm.gz``) file.
    out_path
        The ``.net.xml`` to write.
    guess_tls
        Guess signals (``--tls.guess``), turn OSM ``highway=traffic_signals`` nodes near a
        junction into its signal (``--tls.guess-signals``) and join close signals
        (``--tls.join``).
    join_junctions
        Join close junctions into one (``--junctions.join``).
    passenger_only
        Keep only edges passenger cars may use (``--keep-edges.by-vclass passenger``).
    tls_type
        Program type for the generated signals.
    extra_args
        Further netconvert options, passed through as given.
    seed
        Seed for netconvert.

    Returns
    -------
    Path
        ``out_path``.
    """
    src = Path(osm_path)
    if not src.is_file():
        raise NetworkError(f"{src}: OSM file not found")
    if tls_type not in _TLS_TYPES:
        raise NetworkError(f"tls_type must be one of {', '.join(_TLS_TYPES)}, got {tls_type!r}")
    out = _out(out_path)
    args: list[str] = [
        "netconvert",
        f"--osm-files={src}",
        "--geometry.remove=true",
        "--ramps.guess=true",
        "--roundabouts.guess=true",
        f"--tls.default-type={tls_type}",
        "--remove-edges.isolated=true",
        f"--seed={_seed(seed)}",
        f"--output-file={out}",
    ]
    if guess_tls:
        args += ["--tls.guess=true", "--tls.guess-signals=true", "--tls.join=true"]
    if join_junctions:
        args.append("--junctions.join=true")
    if passenger_only:
        args.append("--keep-edges.by-vclass=passenger")
    args += [str(a) for a in extra_args]
    run_sumo_command(args, what=f"netconvert import of {src}")
    return out
