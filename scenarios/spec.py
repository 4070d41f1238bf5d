"""Scenario files: a TOML file says what network, what demand, how long, which seeds and which
controllers to compare. The loader checks every key and type and says exactly what is wrong.

Example (the bundled ``grid4_moderate``)::

    name = "grid4_moderate"
    description = "4x4 signalised grid, 200 m blocks, moderate demand"
    duration_s = 1800
    seeds = [1]
    controllers = ["static", "actuated", "delay_based", "sumo-webster", "sumo-coordinator"]

    [network]
    generator = "grid"
    rows = 4
    cols = 4

    [demand]
    entry_vph = 350
    turn_left = 0.2
    turn_right = 0.2

Times are seconds, flows veh/h, lengths metres, speeds m/s.
"""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenwave._sumo import sumo_home
from greenwave.controllers import available_controllers
from greenwave.controllers.base import check_controller_options
from greenwave.controllers.network_control import parse_communication
from greenwave.errors import ScenarioError
from greenwave.networks import generate
from greenwave.scenarios.addons import available_addons
from greenwave.scenarios.limits import MAX_SEEDS, check_scenario_values, safe_name
from greenwave.scenarios.sumocfg import is_sumocfg, read_sumocfg, scenario_defaults
from greenwave.toml_checks import check_keys, number, string, string_list

if TYPE_CHECKING:
    from greenwave.engine.run import CommunicationSpec

DEFAULT_CONTROLLERS = ("static", "actuated", "delay_based", "sumo-webster", "sumo-coordinator")

_TOP_KEYS: dict[str, str] = {
    "name": "str",
    "description": "str",
    "duration_s": "float",
    "begin_s": "float",
    "step_length_s": "float",
    "seeds": "list[int] | int",
    "controllers": "list[str]",
    "controller_options": "table",
    "time_to_teleport_s": "float",
    "network": "table",
    "demand": "table",
    "communication": "table (networked signals, link faults, fallback)",
}

_DEMAND_KEYS: dict[str, str] = {
    "route_files": "list[str]",
    "sumocfg": "str",
    "additional_files": "list[str]",
    "begin_s": "float",
    "end_s": "float",
    "entry_vph": "float",
    "major_entry_vph": "float",
    "minor_entry_vph": "float",
    "entry_vph_by_edge": "table",
    "turn_left": "float",
    "turn_right": "float",
    "turn_ratios": "table",
}


@dataclass(frozen=True)
class NetworkSpec:
    """Where the road network comes from.

    ``kind`` is ``"file"`` (an existing ``.net.xml``), ``"osm"`` (an OpenStreetMap file imported
    with netconvert) or a generator name (``"grid"``, ``"arterial"``); ``params`` are the
    generator's keyword arguments.
    """

    kind: str
    path: Path | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    saturation_flow_per_lane: float = 1800.0


@dataclass(frozen=True)
class DemandSpec:
    """The demand: existing route files / a ``.sumocfg``, or entry flows with turning ratios.

    Entry flows (veh/h) enter at every edge that comes from the network's fringe; vehicles turn
    at each junction left/right with the given shares (the rest go straight), unless
    ``turn_ratios`` gives ``{from_edge: {to_edge: share}}`` explicitly. Routes are drawn with
    SUMO's jtrrouter, seeded with the run's seed.
    """

    route_files: tuple[Path, ...] = ()
    additional_files: tuple[Path, ...] = ()
    sumocfg: Path | None = None
    begin_s: float | None = None
    end_s: float | None = None
    entry_vph: float | None = None
    major_entry_vph: float | None = None
    minor_entry_vph: float | None = None
    entry_vph_by_edge: Mapping[str, float] = field(default_factory=dict)
    turn_left: float = 0.2
    turn_right: float = 0.2
    turn_ratios: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    sumo_config: Any = None
    """The :class:`~greenwave.scenarios.sumocfg.SumoConfig` read from ``sumocfg`` (or None): its
    options and output files go to every run."""

    @property
    def uses_flows(self) -> bool:
        """True when demand is generated from entry flows rather than read from route files."""
        return not self.route_files and self.sumocfg is None


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. ``source`` is the TOML file it came from (None if built in code)."""

    name: str
    network: NetworkSpec
    demand: DemandSpec
    duration_s: float
    begin_s: float = 0.0
    step_length_s: float = 1.0
    seeds: tuple[int, ...] = (1,)
    controllers: tuple[str, ...] = DEFAULT_CONTROLLERS
    controller_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    time_to_teleport_s: float = 300.0
    description: str = ""
    source: Path | None = None
    addons: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Run add-on name → its validated options (see :mod:`greenwave.scenarios.addons`)."""
    communication: CommunicationSpec | None = None
    """The ``[communication]`` table (:func:`~greenwave.controllers.network_control.parse_communication`),
    or None."""

    @property
    def end_s(self) -> float:
        """Simulation end time (s)."""
        return self.begin_s + self.duration_s


# ------------------------------------------------------------------------------------------
# bundled scenarios


def bundled_dir() -> Path:
    """The folder of the scenarios installed with greenwave."""
    return Path(str(resources.files("greenwave.scenarios.bundled")))


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenario names → TOML paths."""
    return {p.stem: p for p in sorted(bundled_dir().glob("*.toml"))}


DEFAULT_SCENARIO = "grid4_moderate"


def resolve_scenario(name_or_path: str | Path) -> Path:
    """A bundled scenario name (``default`` is :data:`DEFAULT_SCENARIO`) or a TOML path → the
    TOML path (clear error otherwise)."""
    bundled = bundled_scenarios()
    if str(name_or_path) == "default":
        name_or_path = DEFAULT_SCENARIO
    if str(name_or_path) in bundled:
        return bundled[str(name_or_path)]
    path = Path(name_or_path)
    if path.suffix in (".toml", ".sumocfg") or path.name.endswith(".sumo.cfg") or path.exists():
        if not path.is_file():
            raise ScenarioError(f"scenario file {path} does not exist")
        return path
    raise ScenarioError(
        f"unknown scenario {str(name_or_path)!r}: neither a bundled scenario "
        f"({', '.join(bundled) or 'none installed'}) nor an existing TOML file"
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load and validate a scenario by bundled name, TOML path or SUMO configuration
    (``*.sumocfg``: run as SUMO runs it, see :mod:`greenwave.scenarios.sumocfg`)."""
    path = resolve_scenario(name_or_path)
    if is_sumocfg(path):
        name = path.name.removesuffix(".sumocfg").removesuffix(".sumo.cfg")
        return scenario_from_dict({"name": name, "demand": {"sumocfg": str(path.resolve())}},
                                  source=path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not a TOML text file (TOML is UTF-8 text; byte {exc.start} is not): "
                            f"{exc.reason}") from exc
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot be read: {exc}") from exc
    return scenario_from_dict(data, source=path)


def scenario_from_dict(data: Mapping[str, Any], *, source: Path | None = None) -> Scenario:
    """Validate a parsed scenario table; relative paths resolve against ``source``'s folder."""
    where = str(source) if source is not None else "<scenario>"
    base = source.parent if source is not None else Path.cwd()
    addon_classes = available_addons()
    check_keys(data, {**_TOP_KEYS, **{a: "table (run add-on)" for a in addon_classes}}, where, "")
    if "demand" not in data:
        raise ScenarioError(f"{where}: missing required key 'demand'")
    demand = _demand_spec(data["demand"], where, base)
    if demand.sumo_config is not None:
        data = {**scenario_defaults(demand.sumo_config, data.get("begin_s")), **data}
    if "duration_s" not in data:
        raise ScenarioError(
            f"{where}: missing required key 'duration_s'"
            + (" (the .sumocfg sets no <end>: SUMO would run until the last vehicle has left, "
               "greenwave compares controllers over a fixed time; give duration_s in a scenario "
               "TOML whose [demand] has sumocfg = \"...\")" if demand.sumo_config is not None else "")
        )

    duration = number(data, "duration_s", where, "", positive=True)
    begin = number(data, "begin_s", where, "", default=0.0, lo=0.0)
    step = number(data, "step_length_s", where, "", default=1.0, positive=True)
    teleport = number(data, "time_to_teleport_s", where, "", default=300.0)
    name = string(data, "name", where, "", default=safe_name(source.stem) if source else "scenario")
    description = string(data, "description", where, "", default="")

    seeds_raw = data.get("seeds", [1])
    if isinstance(seeds_raw, bool):
        raise ScenarioError(f"{where}: 'seeds' must be a list of integers or a count, not a bool")
    if isinstance(seeds_raw, int):
        if not 1 <= seeds_raw <= MAX_SEEDS:
            raise ScenarioError(f"{where}: 'seeds' as a count must be 1..{MAX_SEEDS} (at most {MAX_SEEDS} "
                                f"seeds; each is a SUMO run per controller), got {seeds_raw}")
        seeds = tuple(range(1, seeds_raw + 1))
    elif isinstance(seeds_raw, list) and seeds_raw and all(
        isinstance(s, int) and not isinstance(s, bool) for s in seeds_raw
    ):
        seeds = tuple(seeds_raw)
    else:
        raise ScenarioError(f"{where}: 'seeds' must be a non-empty list of integers or a count")

    controllers = tuple(string_list(data, "controllers", where, "", default=list(DEFAULT_CONTROLLERS)))
    valid = available_controllers()
    for c in controllers:
        if c not in valid:
            raise ScenarioError(
                f"{where}: controllers: unknown controller {c!r}; valid: {', '.join(valid)}"
            )
    options = data.get("controller_options", {})
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ScenarioError(f"{where}: 'controller_options' must be a table of tables")
    for c, opts in options.items():
        check_controller_options(c, opts, where)

    if "network" in data:
        network = _network_spec(data["network"], where, base)
    else:
        net = demand.sumo_config.net_file if demand.sumo_config is not None else None
        if net is None:
            raise ScenarioError(
                f"{where}: missing required key 'network' (only a demand 'sumocfg' that names a "
                "net-file can stand in for it)"
            )
        network = NetworkSpec(kind="file", path=net)
    addons = {
        a: cls.parse_options(data[a], where=where, base=base)
        for a, cls in addon_classes.items()
        if a in data
    }
    communication = None
    if "communication" in data:
        communication = parse_communication(data["communication"], where=where)
    check_scenario_values(data, where)  # ranges, demand window, sizes (greenwave.scenarios.limits)
    return Scenario(
        name=name,
        description=description,
        addons=addons,
        communication=communication,
        network=network,
        demand=demand,
        duration_s=duration,
        begin_s=begin,
        step_length_s=step,
        seeds=seeds,
        controllers=controllers,
        controller_options=options,
        time_to_teleport_s=teleport,
        source=source,
    )


def _generators() -> dict[str, Any]:
    return {"grid": generate.grid_network, "arterial": generate.arterial_network}


def _generator_params(func: Any) -> dict[str, inspect.Parameter]:
    return {
        name: p
        for name, p in inspect.signature(func).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _network_spec(raw: Any, where: str, base: Path) -> NetworkSpec:
    ctx = "network."
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: 'network' must be a table")
    sources = [k for k in ("generator", "file", "osm") if k in raw]
    if len(sources) != 1:
        raise ScenarioError(
            f"{where}: [network] needs exactly one of 'generator', 'file', 'osm' (got "
            f"{', '.join(sources) or 'none'})"
        )
    sat = number(raw, "saturation_flow_per_lane", where, ctx, default=1800.0, positive=True)
    if "file" in raw or "osm" in raw:
        key = sources[0]
        check_keys(raw, {key: "str", "saturation_flow_per_lane": "float"}, where, ctx)
        path = _existing_file(raw, key, where, ctx, base)
        return NetworkSpec(kind=key, path=path, saturation_flow_per_lane=sat)
    gens = _generators()
    gen = raw["generator"]
    if gen not in gens:
        raise ScenarioError(
            f"{where}: network.generator {gen!r} is not known; valid: {', '.join(gens)}"
        )
    params = _generator_params(gens[gen])
    allowed = {"generator": "str", "saturation_flow_per_lane": "float"}
    allowed.update({k: _type_name(p) for k, p in params.items()})
    check_keys(raw, allowed, where, ctx)
    values: dict[str, Any] = {}
    for k, p in params.items():
        if k in raw:
            values[k] = _coerce(raw[k], p, where, ctx + k)
        elif p.default is inspect.Parameter.empty:
            raise ScenarioError(f"{where}: network generator {gen!r} needs '{k}'")
    return NetworkSpec(kind=gen, params=values, saturation_flow_per_lane=sat)


def _annotation(p: inspect.Parameter) -> str:
    ann = p.annotation
    return ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))


def _type_name(p: inspect.Parameter) -> str:
    if p.default is inspect.Parameter.empty or p.default is None:
        return _annotation(p)
    return type(p.default).__name__


def _expected_type(p: inspect.Parameter) -> type[Any] | None:
    """The type a TOML value for ``p`` must have: its default's, else its annotation's (int, float)."""
    if p.default not in (inspect.Parameter.empty, None):
        return type(p.default)
    ann = _annotation(p)
    return int if ann == "int" else float if ann == "float" else None


def _coerce(value: Any, p: inspect.Parameter, where: str, key: str) -> Any:
    expected = _expected_type(p)
    if expected is bool:
        if not isinstance(value, bool):
            raise ScenarioError(f"{where}: {key} must be true or false, got {value!r}")
        return value
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{where}: {key} must be an integer, got {value!r}")
        return value
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScenarioError(f"{where}: {key} must be a number, got {value!r}")
        return float(value)
    if expected is str and not isinstance(value, str):
        raise ScenarioError(f"{where}: {key} must be a string, got {value!r}")
    return value


def _demand_spec(raw: Any, where: str, base: Path) -> DemandSpec:
    ctx = "demand."
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: 'demand' must be a table")
    check_keys(raw, _DEMAND_KEYS, where, ctx)
    files_given = "route_files" in raw or "sumocfg" in raw
    flows_given = any(
        k in raw for k in ("entry_vph", "major_entry_vph", "minor_entry_vph", "entry_vph_by_edge")
    )
    if files_given == flows_given:
        raise ScenarioError(
            f"{where}: [demand] needs either route files ('route_files' or 'sumocfg') or entry "
            "flows ('entry_vph', 'major_entry_vph'/'minor_entry_vph', 'entry_vph_by_edge'), "
            "not both and not neither"
        )
    route_files: list[Path] = []
    additional: list[Path] = []
    cfg: Path | None = None
    info = None
    begin = number(raw, "begin_s", where, ctx, default=None, lo=0.0)
    end = number(raw, "end_s", where, ctx, default=None, lo=0.0)
    if "sumocfg" in raw:
        cfg = _existing_file(raw, "sumocfg", where, ctx, base)
        info = read_sumocfg(cfg)
        route_files += info.route_files
        additional += info.additional_files
    for i, _ in enumerate(string_list(raw, "route_files", where, ctx, default=[])):
        route_files.append(_existing_file(raw["route_files"], i, where, ctx + "route_files", base))
    for i, _ in enumerate(string_list(raw, "additional_files", where, ctx, default=[])):
        additional.append(
            _existing_file(raw["additional_files"], i, where, ctx + "additional_files", base)
        )
    if begin is not None and end is not None and end <= begin:
        raise ScenarioError(f"{where}: demand.end_s ({end}) must be after demand.begin_s ({begin})")

    by_edge = raw.get("entry_vph_by_edge", {})
    if not isinstance(by_edge, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in by_edge.values()
    ):
        raise ScenarioError(f"{where}: demand.entry_vph_by_edge must map edge ids to flows ≥ 0 veh/h")
    ratios = raw.get("turn_ratios", {})
    if not isinstance(ratios, dict) or not all(isinstance(v, dict) for v in ratios.values()):
        raise ScenarioError(
            f"{where}: demand.turn_ratios must be a table of tables {{from_edge = {{to_edge = share}}}}"
        )
    for frm, row in ratios.items():
        total = 0.0
        for to, share in row.items():
            if isinstance(share, bool) or not isinstance(share, (int, float)) or share < 0:
                raise ScenarioError(
                    f"{where}: demand.turn_ratios.{frm}.{to} must be a share ≥ 0, got {share!r}"
                )
            total += share
        if total <= 0:
            raise ScenarioError(f"{where}: demand.turn_ratios.{frm} has no positive share")
    left = number(raw, "turn_left", where, ctx, default=0.2, lo=0.0)
    right = number(raw, "turn_right", where, ctx, default=0.2, lo=0.0)
    if left + right > 1.0 + 1e-9:
        raise ScenarioError(f"{where}: demand.turn_left + demand.turn_right must be ≤ 1")
    return DemandSpec(
        route_files=tuple(route_files),
        additional_files=tuple(additional),
        sumocfg=cfg,
        begin_s=begin,
        end_s=end,
        entry_vph=number(raw, "entry_vph", where, ctx, default=None, lo=0.0),
        major_entry_vph=number(raw, "major_entry_vph", where, ctx, default=None, lo=0.0),
        minor_entry_vph=number(raw, "minor_entry_vph", where, ctx, default=None, lo=0.0),
        entry_vph_by_edge={str(k): float(v) for k, v in by_edge.items()},
        turn_left=left,
        turn_right=right,
        turn_ratios={f: {t: float(s) for t, s in row.items()} for f, row in ratios.items()},
        sumo_config=info,
    )


# ------------------------------------------------------------------------------------------
# files named in a scenario (the other checkers: greenwave.toml_checks)


def _existing_file(data: Any, key: str | int, where: str, ctx: str, base: Path) -> Path:
    raw = data[key]
    label = f"{ctx}{key}" if isinstance(key, str) else f"{ctx}[{key}]"
    if not isinstance(raw, str):
        raise ScenarioError(f"{where}: {label} must be a file path string, got {raw!r}")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (base / path).resolve()
    if raw.startswith("sumo:"):
        path = sumo_home() / raw[len("sumo:"):].lstrip("/")
    if not path.is_file():
        raise ScenarioError(f"{where}: {label}: file {path} does not exist")
    return path
