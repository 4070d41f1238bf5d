"""A SUMO configuration (``.sumocfg``) read the way SUMO reads it, and run the way SUMO runs it.

SUMO itself parses the file (``sumo -c CFG --save-configuration``): option synonyms (``<net>``,
``<routes>``), any root element and section, relative paths (resolved against the ``.sumocfg``'s
folder) and time formats come out as SUMO understands them, and an option SUMO does not know fails
with SUMO's own message. What greenwave does with each option:

- ``net-file``, ``route-files``, ``additional-files``: the scenario's inputs, loaded in SUMO's
  order (additional files first, each list in the order given). Additional files that declare
  outputs (detectors, ``edgeData``, ``timedEvent`` ...) are loaded as copies whose output files
  are in the run's folder, never beside the scenario's files (:func:`localise_additional`).
- ``begin``, ``end``, ``step-length``, ``time-to-teleport``, ``seed``: the scenario's times and
  seed (a scenario TOML may override them).
- output files (``summary-output``, ``fcd-output``, ``device.rerouting.output`` ...): written
  into the run's folder under their own names. greenwave writes ``tripinfo-output`` and
  ``statistic-output`` itself.
- every other option that changes the simulation (processing, routing, devices, emissions,
  mesoscopic, ``load-state`` ...): passed to SUMO unchanged.
- report options (``verbose``, ``log`` ...), output formatting (``human-readable-time`` ...) and
  GUI options: not passed (they change no result; greenwave reads its own outputs in SUMO's
  default format); :attr:`SumoConfig.ignored` lists them with the reason.
- ``remote-port``/``num-clients`` (greenwave drives SUMO itself) and ``random`` (greenwave runs
  are seeded): a :class:`~greenwave.errors.ScenarioError` naming the option.
"""

from __future__ import annotations

import functools
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from greenwave._sumo import run_sumo_command
from greenwave._xml import open_xml
from greenwave.errors import GreenwaveError, ScenarioError
from greenwave.networks.program_files import parse_sumo_time

__all__ = [
    "DEMAND_TAGS",
    "STOP_TAGS",
    "SUMO_DEFAULT_SEED",
    "SumoConfig",
    "demand_files",
    "is_hotkey_program_file",
    "is_sumocfg",
    "localise_additional",
    "portable_sumocfg",
    "read_sumocfg",
    "scenario_defaults",
]

#: SUMO's seed when a configuration gives none (``sumo --help``: ``--seed INT ... default 23423``).
SUMO_DEFAULT_SEED = 23423

#: Options that become the scenario's own fields.
_SCENARIO_OPTIONS = frozenset({
    "net-file", "route-files", "additional-files", "begin", "end", "step-length",
    "time-to-teleport", "seed",
})
#: Outputs greenwave writes itself in every run (its KPIs come from them).
_OWN_OUTPUTS = {
    "tripinfo-output": "greenwave writes each run's tripinfo.xml itself",
    "tripinfo-output.write-unfinished": "greenwave always writes unfinished trips",
    "tripinfo-output.write-undeparted": "greenwave always writes undeparted trips",
    "statistic-output": "greenwave writes each run's statistics.xml itself",
}
#: Options that only change how outputs are formatted: greenwave reads its outputs in SUMO's
#: default format.
_FORMAT_OPTIONS = frozenset({
    "human-readable-time", "output.format", "output.column-header", "output.column-separator",
    "output.compression", "output-prefix", "output-suffix", "write-license", "write-metadata",
})
#: Options greenwave cannot honour.
_UNSUPPORTED = {
    "remote-port": "greenwave drives SUMO itself (libsumo or its own TraCI connection)",
    "num-clients": "greenwave drives SUMO itself (libsumo or its own TraCI connection)",
    "random": "greenwave runs are seeded and reproducible (give seeds in a scenario TOML instead)",
}
#: Output files outside the output section.
_OUTPUT_FILE_OPTIONS = frozenset({"device.ssm.file", "device.toc.file"})
#: GUI options greenwave passes on to sumo-gui runs (--gui).
_GUI_OPTIONS = frozenset({"gui-settings-file", "delay", "breakpoints"})

#: Top-level tags of demand (and of the vehicle types it uses).
DEMAND_TAGS = frozenset({
    "vType", "vTypeDistribution", "route", "routeDistribution", "vehicle", "trip", "flow",
    "person", "personFlow", "container", "containerFlow",
})

#: Top-level tags of the places demand stops at (routers need them to route the stops).
STOP_TAGS = frozenset({"busStop", "trainStop", "containerStop", "parkingArea", "chargingStation", "taz"})

#: Elements of additional files that write output files, and the attribute naming the file.
_OUTPUT_ATTRIBUTES = {
    "e1Detector": "file", "inductionLoop": "file", "e2Detector": "file",
    "laneAreaDetector": "file", "e3Detector": "file", "entryExitDetector": "file",
    "instantInductionLoop": "file", "edgeData": "file", "laneData": "file",
    "edgeRelations": "file", "tazRelations": "file", "routeProbe": "file", "vTypeProbe": "file",
    "timedEvent": "dest", "calibrator": "output",
}
#: Attributes of additional files that name input files (resolved against the file's folder).
_INPUT_ATTRIBUTES = {
    "include": "href", "rerouter": "file", "variableSpeedSign": "file", "poly": "imgFile",
    "poi": "imgFile",
}
_NULL_FILES = frozenset({"nul", "/dev/null"})


@dataclass(frozen=True)
class SumoConfig:
    """A ``.sumocfg`` as SUMO read it. Times in s; paths absolute."""

    path: Path
    net_file: Path | None
    route_files: tuple[Path, ...]
    additional_files: tuple[Path, ...]
    begin_s: float | None
    end_s: float | None
    step_length_s: float | None
    time_to_teleport_s: float | None
    seed: int | None
    options: tuple[tuple[str, str], ...]
    """Options passed to SUMO unchanged, in file order."""
    outputs: tuple[tuple[str, str], ...]
    """Output options and the file name each writes (in the run's folder)."""
    gui_options: tuple[tuple[str, str], ...]
    """Options passed only to sumo-gui runs."""
    ignored: tuple[tuple[str, str], ...]
    """Options not passed to SUMO, with the reason."""
    tls_all_off: bool = False
    """``tls.all-off``: SUMO switches every signal off, whatever program is loaded."""

    def sumo_args(self, output_dir: Path, *, gui: bool = False) -> tuple[str, ...]:
        """Command-line arguments for the options SUMO gets from this configuration, output files
        in ``output_dir``."""
        args: list[str] = []
        for name, value in self.options:
            args += [f"--{name}", value]
        for name, file in self.outputs:
            args += [f"--{name}", str(output_dir / file)]
        if gui:
            for name, value in self.gui_options:
                args += [f"--{name}", value]
        return tuple(args)

    def demand_files(self) -> tuple[Path, ...]:
        """The files holding demand or vehicle types, in SUMO's load order (see
        :func:`demand_files`)."""
        return demand_files(self.additional_files, self.route_files)


def is_sumocfg(path: str | Path) -> bool:
    """Whether ``path`` looks like a SUMO configuration (``*.sumocfg`` or ``*.sumo.cfg``)."""
    name = Path(path).name
    return name.endswith((".sumocfg", ".sumo.cfg"))


@functools.lru_cache(maxsize=1)
def _option_types() -> dict[str, tuple[str, str]]:
    """Every option of the installed SUMO: name → (section, type), from ``sumo --save-template``."""
    with tempfile.TemporaryDirectory(prefix="greenwave_sumo_template_") as tmp:
        out = Path(tmp) / "template.xml"
        run_sumo_command(["sumo", "--save-template", out],
                         what="listing SUMO's options")
        root = ET.parse(out).getroot()
    return {opt.tag: (section.tag, opt.get("type", "")) for section in root for opt in section}


def _sumo_view(path: Path) -> list[tuple[str, str, str]]:
    """(section, option, value) of every option the configuration sets, as SUMO read it."""
    with tempfile.TemporaryDirectory(prefix="greenwave_sumocfg_") as tmp:
        out = Path(tmp) / "as_read.sumocfg"
        try:
            run_sumo_command(["sumo", "-c", path, "--save-configuration", out],
                             what=f"reading {path} with SUMO", cwd=tmp)
        except GreenwaveError as exc:
            raise ScenarioError(f"{path}: SUMO cannot read this configuration: {exc}") from exc
        root = ET.parse(out).getroot()
    return [(section.tag, opt.tag, opt.get("value", "")) for section in root for opt in section]


def _time(value: str, where: str) -> float:
    try:
        return parse_sumo_time(value, where)
    except GreenwaveError as exc:
        raise ScenarioError(str(exc)) from None


def _files(value: str, path: Path, option: str) -> tuple[Path, ...]:
    out = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        p = Path(part)
        if not p.is_file():
            raise ScenarioError(f"{path}: <{option}> names {p}, which does not exist")
        out.append(p)
    return tuple(out)


def read_sumocfg(path: str | Path) -> SumoConfig:
    """Read a SUMO configuration as SUMO reads it (see the module's description).

    Raises
    ------
    ScenarioError
        SUMO cannot read the file, a file it names does not exist, or it sets an option greenwave
        cannot honour (named, with why).
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise ScenarioError(f"SUMO configuration {path} does not exist")
    types = _option_types()
    where = str(path)
    net: tuple[Path, ...] = ()
    routes: tuple[Path, ...] = ()
    adds: tuple[Path, ...] = ()
    begin = end = step = teleport = None
    seed: int | None = None
    options: list[tuple[str, str]] = []
    outputs: list[tuple[str, str]] = []
    gui: list[tuple[str, str]] = []
    ignored: list[tuple[str, str]] = []
    tls_off = False
    used_names: set[str] = set()
    for section, name, value in _sumo_view(path):
        otype = types.get(name, (section, ""))[1]
        if name in _UNSUPPORTED:
            if name == "random" and value.lower() not in ("true", "1", "yes", "on", "x"):
                continue
            raise ScenarioError(f"{where}: option <{name}> cannot be honoured: {_UNSUPPORTED[name]}")
        if name == "net-file":
            net = _files(value, path, name)
        elif name == "route-files":
            routes = _files(value, path, name)
        elif name == "additional-files":
            adds = _files(value, path, name)
        elif name == "begin":
            begin = _time(value, f"{where}: <begin>")
        elif name == "end":
            end = _time(value, f"{where}: <end>")
        elif name == "step-length":
            step = _time(value, f"{where}: <step-length>")
        elif name == "time-to-teleport":
            teleport = _time(value, f"{where}: <time-to-teleport>")
        elif name == "seed":
            try:
                seed = int(value)
            except ValueError:
                raise ScenarioError(f"{where}: <seed> must be an integer, got {value!r}") from None
        elif name in _OWN_OUTPUTS:
            ignored.append((name, _OWN_OUTPUTS[name]))
        elif name in _FORMAT_OPTIONS:
            ignored.append((name, "only formats outputs; greenwave reads its outputs in SUMO's "
                                  "default format"))
        elif section in ("report", "configuration"):
            ignored.append((name, "a report option; greenwave writes each run's log in its folder"))
        elif section == "gui_only":
            if name in _GUI_OPTIONS:
                gui.append((name, value))
            else:
                ignored.append((name, "a sumo-gui option"))
        elif (section == "output" and otype == "FILE" and not name.endswith("input-file")) or (
            name in _OUTPUT_FILE_OPTIONS or (otype == "FILE" and name.endswith("output"))
        ):
            file = Path(value).name or name
            if file in used_names:
                file = f"{name}.{file}"
            used_names.add(file)
            outputs.append((name, file))
        else:
            if name == "tls.all-off" and value.lower() in ("true", "1", "yes", "on", "x"):
                tls_off = True
            options.append((name, value))
    if len(net) > 1:
        raise ScenarioError(f"{where}: <net-file> names {len(net)} files; SUMO loads one network")
    return SumoConfig(
        path=path,
        net_file=net[0] if net else None,
        route_files=routes,
        additional_files=adds,
        begin_s=begin,
        end_s=end if end is not None and end >= 0 else None,
        step_length_s=step,
        time_to_teleport_s=teleport,
        seed=seed,
        options=tuple(options),
        outputs=tuple(outputs),
        gui_options=tuple(gui),
        ignored=tuple(ignored),
        tls_all_off=tls_off,
    )


def scenario_defaults(cfg: SumoConfig, begin_s: object = None) -> dict[str, object]:
    """Scenario keys the configuration sets (a TOML's own keys win over them): ``begin_s``,
    ``duration_s`` (its end minus the scenario's begin, ``begin_s`` when the TOML gives one),
    ``step_length_s``, ``time_to_teleport_s`` and ``seeds`` (its seed, or SUMO's default)."""
    out: dict[str, object] = {}
    begin = cfg.begin_s if cfg.begin_s is not None else 0.0
    if cfg.begin_s is not None:
        out["begin_s"] = cfg.begin_s
    if isinstance(begin_s, (int, float)) and not isinstance(begin_s, bool):
        begin = float(begin_s)
    if cfg.end_s is not None:
        if cfg.end_s <= begin:
            raise ScenarioError(f"{cfg.path}: <end> ({cfg.end_s:g} s) is not after the begin "
                                f"({begin:g} s)")
        out["duration_s"] = cfg.end_s - begin
    if cfg.step_length_s is not None:
        out["step_length_s"] = cfg.step_length_s
    if cfg.time_to_teleport_s is not None:
        out["time_to_teleport_s"] = cfg.time_to_teleport_s
    out["seeds"] = [cfg.seed if cfg.seed is not None else SUMO_DEFAULT_SEED]
    return out


# ------------------------------------------------------------------------------------------
# the files a configuration loads


def _top_tags(path: Path) -> tuple[str, set[str]]:
    """Root tag and the tags of its children (streamed)."""
    depth = 0
    root = ""
    children: set[str] = set()
    try:
        with open_xml(path) as fh:
            for event, el in ET.iterparse(fh, events=("start", "end")):
                if event == "start":
                    if depth == 0:
                        root = el.tag
                    elif depth == 1:
                        children.add(el.tag)
                    depth += 1
                else:
                    depth -= 1
                    if depth == 1:
                        el.clear()
    except (ET.ParseError, OSError, EOFError) as exc:
        raise ScenarioError(f"{path}: not readable XML: {exc}") from exc
    return root, children


def demand_files(additional: Iterable[Path], routes: Iterable[Path]) -> tuple[Path, ...]:
    """The files that hold demand, vehicle types or stops, in SUMO's load order: additional
    files with vehicles, routes, types or stopping places first, then every route file. What
    greenwave's own analyses (movement flows, Webster, routing with duarouter) read; SUMO still
    loads each file in its own role."""
    out = [p for p in additional if _top_tags(p)[1] & (DEMAND_TAGS | STOP_TAGS)]
    return (*out, *routes)


def localise_additional(files: Sequence[Path], run_dir: Path) -> tuple[Path, ...]:
    """The additional files to load for one run: a file that declares outputs (detectors,
    ``edgeData``, ``timedEvent``, calibrators, probes, actuated programs' detector ``file``
    parameters) is replaced by a copy in ``run_dir`` whose outputs go to ``run_dir/outputs``
    and whose input references point at the original files; the others are loaded as they are.
    Order is kept; the simulation is the same."""
    out: list[Path] = []
    outputs = run_dir / "outputs"
    names: dict[Path, str] = {}
    for i, path in enumerate(files):
        _root, children = _top_tags(path)
        if not children & (set(_OUTPUT_ATTRIBUTES) | {"tlLogic"}):
            out.append(path)
            continue
        try:
            with open_xml(path) as fh:
                tree = ET.parse(fh)
        except (ET.ParseError, OSError, EOFError) as exc:
            raise ScenarioError(f"{path}: not readable XML: {exc}") from exc
        changed = False
        for el in tree.getroot().iter():
            attr = _OUTPUT_ATTRIBUTES.get(str(el.tag))
            if el.tag == "tlLogic":  # an actuated program's detector output
                for param in el.findall("param"):
                    if param.get("key") == "file" and param.get("value"):
                        param.set("value", _output_path(param.get("value", ""), path, outputs, names))
                        changed = True
            if attr is not None and el.get(attr):
                el.set(attr, _output_path(el.get(attr, ""), path, outputs, names))
                changed = True
            attr = _INPUT_ATTRIBUTES.get(str(el.tag))
            if attr is not None and el.get(attr):
                el.set(attr, str((path.parent / el.get(attr, "")).resolve()))
        if not changed:
            out.append(path)
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        outputs.mkdir(parents=True, exist_ok=True)
        copy = run_dir / f"{i:02d}_{path.name.removesuffix('.gz')}"
        tree.write(copy, encoding="UTF-8", xml_declaration=True)
        out.append(copy)
    return tuple(out)


def _output_path(value: str, source: Path, outputs: Path, names: dict[Path, str]) -> str:
    if value.lower() in _NULL_FILES:
        return value
    original = (source.parent / value).resolve()
    if original not in names:
        name = original.name
        taken = set(names.values())
        k = 1
        while name in taken:
            k += 1
            name = f"{original.stem}_{k}{original.suffix}"
        names[original] = name
    return str(outputs / names[original])


def is_hotkey_program_file(path: Path) -> bool:
    """An additional file of SUMO's traffic-light game (``tools/game``): every element a
    ``<tlLogic>`` with the game's ``hotkeyAbort`` parameter, programs whose greens last 10000 s
    until the player presses a key. A device of the game, not a signal program. Streamed: a file
    of anything else (a city's routes loaded as additionals) is left at its first other element."""
    depth, logics, hotkey = 0, 0, False
    try:
        with open_xml(path) as fh:
            for event, el in ET.iterparse(fh, events=("start", "end")):
                if event == "start":
                    depth += 1
                    if depth == 2 and el.tag != "tlLogic":
                        return False
                    continue
                depth -= 1
                if el.tag == "param" and el.get("key") == "hotkeyAbort":
                    hotkey = True
                elif depth == 1:  # a <tlLogic> ends: it must have had the hotkey
                    if not hotkey:
                        return False
                    logics, hotkey = logics + 1, False
                    el.clear()
    except (OSError, ET.ParseError, EOFError):
        return False
    return logics > 0


def portable_sumocfg(src: str | Path, target: str | Path, *, routes: Sequence[Path] | None = None) -> Path:
    """The configuration ``src`` as SUMO reads it (absolute paths, option synonyms resolved),
    written to ``target`` without its GUI options and without the game's hand-switched programs
    (:func:`is_hotkey_program_file`), so that the network's own programs run; ``routes``, where
    given, are its route files instead of its own. :class:`ScenarioError` naming the file when
    SUMO cannot read ``src`` or ``target`` cannot be written."""
    src, target = Path(src).resolve(), Path(target)
    if not src.is_file():
        raise ScenarioError(f"SUMO configuration {src} does not exist")
    root = ET.Element("configuration")
    sections: dict[str, ET.Element] = {}
    given_routes = False
    for section, name, value in _sumo_view(src):
        if section == "gui_only":
            continue
        if name == "additional-files":
            value = ",".join(f for f in value.split(",") if f.strip() and not is_hotkey_program_file(Path(f.strip())))
            if not value:
                continue
        elif name == "route-files" and routes is not None:
            value, given_routes = ",".join(str(Path(r).resolve()) for r in routes), True
        if section not in sections:
            sections[section] = ET.SubElement(root, section)
        ET.SubElement(sections[section], name, {"value": value})
    if routes is not None and not given_routes:
        if "input" not in sections:
            sections["input"] = ET.SubElement(root, "input")
        ET.SubElement(sections["input"], "route-files", {"value": ",".join(str(Path(r).resolve()) for r in routes)})
    ET.indent(root, space="    ")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        ET.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=True)
        tmp.replace(target)
    except OSError as exc:
        raise ScenarioError(f"{target}: cannot write the SUMO configuration ({exc})") from None
    return target
