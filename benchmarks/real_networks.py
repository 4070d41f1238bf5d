"""Every controller on every real network at hand, against the best baseline.

    python benchmarks/real_networks.py --json FILE [--duration 3600] [--networks a,b]
                                       [--controllers a,b] [--seeds 1] [--jobs 1]
                                       [--work DIR] [--markdown FILE] [--data DIR]
                                       [--sumocfg NAME=FILE.sumocfg ...]
    python benchmarks/real_networks.py --table FILE.json      # the markdown table of a result

Networks (``--networks``, default all): from the eclipse-sumo wheel ``tools/game/`` fkk_in
(Ingolstadt; ``fkk_in_random`` with random trips through the city's signal-group plans), DRT
(an OpenStreetMap district), kuehne, square, bs3d (Braunschweig), A10KW, corridor, cross (one
junction, netconvert's four stages with 6 s protected turns), grid6 and fokr
(``fokr_bs_demo``: a Braunschweig junction with recorded traffic and pedestrians and its
signal-group plan, each recorded bicycle and pedestrian once, not repeated as the demo repeats
them); the RiLSA guideline examples 1-4 among sumolib's scenarios, and example 1 with signals
200 m out on its legs (``rilsa1_out``: on the outbound lanes, sumolib's RiLSA1OutTLS;
``rilsa1_both``: both directions, RiLSA1BothTLS), with their scenario's programs and counted
flows; Monaco and a district of Luxembourg City imported from ``../shared/data``
(``--data DIR``) with greenwave's OSM import.
A network with its own demand runs it (the game's ``.sumocfg``, without the hand-switched "manual"
programs grid6's, square's and cross's load, greens of 10000 s until the player presses a key, so the
network's own programs run; fkk_in its network and routes, without the game's manual program for
gneJ21; kuehne, whose configuration is disabled, with its own routes;
the RiLSA examples' ``makeRoutes.py`` counts); DRT (whose own demand is people riding one
taxi), Monaco, Luxembourg and ``fkk_in_random`` get random trips (SUMO's ``randomTrips.py``,
seeded, trips from and to the fringe weighted 5×, at least 300 m long, routed once with
duarouter so every controller drives the same routes) at :data:`GENERATED_DENSITY` vehicles
per hour per km of road. ``--sumocfg NAME=FILE`` adds a network of your own, run with its own
SUMO configuration (a city's calibrated scenario: its network, demand, programs and step
length), beside them or alone.

Every network runs through :func:`greenwave.scenarios.runner.run_scenario`; per network and
controller the JSON holds the mean over seeds of the RESCO delay (``resco_delay_s``: time lost
plus waiting to be inserted, per due vehicle, s), its ratio to the best baseline's (the
``sumo-rebuilt-*`` ones included; with two or more seeds ``vs_best_interval``, its 90 %
interval paired over the seeds, :func:`greenwave.scenarios.runner.paired_ratio_interval`),
teleports and unfinished vehicles, plus the runs that failed.
The JSON is rewritten after each network, so an interrupted benchmark keeps what it finished.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling, loaded by path in the tests too
from rilsa_scenarios import RILSA1_SIGNALS as RILSA1_SIGNALS  # noqa: E402
from rilsa_scenarios import rilsa1_flows as rilsa1_flows  # noqa: E402
from rilsa_scenarios import rilsa1_with_signals, rilsa_example  # noqa: E402

#: Vehicles per hour per km of road for generated demand (randomTrips ``--insertion-density``).
GENERATED_DENSITY = {"DRT": 12.0, "luxembourg": 10.0,
                     # at 10 the city gridlocks within the hour under every controller (1436-2191
                     # of 4805 vehicles unfinished); at 6 the best finish it without a teleport
                     "monaco": 6.0,
                     # 4.8 km of road between two signals: 711 vehicles an hour, 330 through
                     # 335525545 and 710 through gneJ21
                     "fkk_in_random": 150.0}
#: The Luxembourg district: a square of this side (m) around the middle of the imported city.
LUXEMBOURG_DISTRICT_M = 1500.0
#: The shared city maps (``--data``): ``../shared/data`` beside the checkout, else /work/shared/data.
DATA = next((p for p in (Path(__file__).resolve().parents[2] / "shared" / "data", Path("/work/shared/data"))
             if p.is_dir()), Path("/work/shared/data"))


@dataclass(frozen=True)
class Case:
    """A real network: where it comes from and what demand it runs."""

    name: str
    what: str
    build: Callable[[Path, int, float], dict[str, Any]]
    """(work folder, seed, end s) → the scenario table without name, duration and seeds."""
    demand: str  # "own" or "generated"


def _home() -> Path:
    from greenwave._sumo import sumo_home

    return sumo_home()


def _game_cfg(name: str) -> Callable[[Path, int, float], dict[str, Any]]:
    """The game's configuration (grid6's and square's without their hand-switched programs)."""
    def build(work: Path, _seed: int, _end: float) -> dict[str, Any]:
        from greenwave.scenarios.sumocfg import portable_sumocfg

        src = _home() / "tools" / "game" / f"{name}.sumocfg"
        return {"demand": {"sumocfg": str(portable_sumocfg(src, work / name / f"{name}.sumocfg"))}}
    return build


def _bs3d(_work: Path, _seed: int, _end: float) -> dict[str, Any]:
    # bs3d.sumocfg asks for osg-view, an option of the OpenSceneGraph sumo-gui only: sumo refuses
    # the configuration, so its network and routes are named directly
    return {"network": {"file": "sumo:tools/game/bs3d/bs.net.xml"},
            "demand": {"route_files": ["sumo:tools/game/bs3d/bs3d.rou.xml"]}}


def _kuehne(_work: Path, _seed: int, _end: float) -> dict[str, Any]:
    # the game's kuehne.sumocfg is disabled (it loads square's programs): the net, its own routes
    return {"network": {"file": "sumo:tools/game/kuehne/kuehne.net.xml"},
            "demand": {"route_files": ["sumo:tools/game/kuehne/kuehne.rou.xml"]}}


def _fkk_in(_work: Path, _seed: int, _end: float) -> dict[str, Any]:
    # the game's fkk_in.sumocfg adds a "manual" program for gneJ21 whose phases last 10000 s until
    # the player presses a key: a game device, not a signal program. The net's own programs run.
    return {"network": {"file": "sumo:tools/game/fkk_in/ingolstadt.net.xml.gz"},
            "demand": {"route_files": ["sumo:tools/game/fkk_in/fkk_in.rou.xml"]}}


def _fokr(work: Path, _seed: int, _end: float) -> dict[str, Any]:
    """Braunschweig's research junction as recorded: the game's configuration with each of its
    bicycle ``<flow>`` and pedestrian ``<personFlow>`` elements (ids are detection times, like the
    recorded car trips') as the one road user it recorded. The demo repeats each of them every
    25 s (bicycles) or 15 s (pedestrians) until 62000 s to fill the screen: 152 bicycle streams
    that reach 21900 bicycles an hour, which SUMO can neither insert nor step in reasonable time."""
    from greenwave.scenarios.sumocfg import portable_sumocfg

    src = _home() / "tools" / "game" / "fokr_bs_demo.sumocfg"
    out = work / "fokr"
    out.mkdir(parents=True, exist_ok=True)
    cfg = ET.parse(src).getroot()
    routes = [src.parent / r for r in cfg.find("input/route-files").get("value", "").split(",")]  # type: ignore[union-attr]
    once: list[Path] = []
    for path in routes:
        root = ET.parse(path).getroot() if not path.name.endswith(".gz") else None
        if root is None or not any(el.tag in ("flow", "personFlow") for el in root):
            once.append(path)
            continue
        users = []
        for el in root:
            if el.tag == "flow":
                attrs = {"id": el.get("id", ""), "depart": el.get("begin", "0")}
                for key in ("type", "from", "to", "speedFactor"):
                    if el.get(key) is not None:
                        attrs[key] = el.get(key, "")
                for key, to in (("beginLane", "departLane"), ("beginPos", "departPos"), ("beginSpeed", "departSpeed")):
                    if el.get(key) is not None:
                        attrs[to] = el.get(key, "")
                users.append(ET.Element("trip", attrs))
            elif el.tag == "personFlow":
                attrs = {"id": el.get("id", ""), "depart": el.get("begin", "0")}
                for key, to in (("type", "type"), ("beginPos", "departPos"), ("speedFactor", "speedFactor")):
                    if el.get(key) is not None:
                        attrs[to] = el.get(key, "")
                person = ET.Element("person", attrs)
                person.extend(list(el))
                users.append(person)
        users.sort(key=lambda e: float(e.get("depart", "0")))
        new = ET.Element("routes")
        new.extend(users)
        target = out / path.name.replace(".xml", ".once.xml")
        ET.ElementTree(new).write(target, encoding="unicode")
        once.append(target)
    return {"demand": {"sumocfg": str(portable_sumocfg(src, out / "fokr_recorded.sumocfg", routes=once))}}


def _random_trips(net: Path, out: Path, *, density: float, seed: int, end: float) -> Path:
    """Seeded random trips over the whole network, routed once (duarouter)."""
    from greenwave._sumo import run_sumo_command, sumo_tool

    routes = out / f"trips_seed{seed}_{end:g}_d{density:g}.rou.xml"  # a --work folder reused at another density
    if routes.is_file():
        return routes
    run_sumo_command(
        [sumo_tool("randomTrips.py"), "-n", net, "-o", out / f"trips_seed{seed}_d{density:g}.trips.xml", "-r", routes,
         "-b", "0", "-e", f"{end:g}", "--insertion-density", f"{density:g}", "--fringe-factor", "5",
         "--min-distance", "300", "--seed", str(seed), "--vehicle-class", "passenger", "--validate",
         "--remove-loops"],
        what=f"random trips on {net.name}", cwd=out,
    )  # fmt: skip
    return routes


def _generated(name: str, net_of: Callable[[Path], Path]) -> Callable[[Path, int, float], dict[str, Any]]:
    def build(work: Path, seed: int, end: float) -> dict[str, Any]:
        out = work / name
        out.mkdir(parents=True, exist_ok=True)
        net = net_of(out)
        routes = _random_trips(net, out, density=GENERATED_DENSITY[name], seed=seed, end=end)
        return {"network": {"file": str(net)}, "demand": {"route_files": [str(routes)]}}

    return build


def _fkk_in_net(_out: Path) -> Path:
    return _home() / "tools" / "game" / "fkk_in" / "ingolstadt.net.xml.gz"


def _drt_net(_out: Path) -> Path:
    return _home() / "tools" / "game" / "DRT" / "osm.net.xml"


def _osm_net(name: str, osm: str) -> Callable[[Path], Path]:
    def net(out: Path) -> Path:
        from greenwave.networks.generate import import_osm

        path = out / f"{name}.net.xml"
        if not path.is_file():
            import_osm(DATA / osm, path)
        return path

    return net


def _luxembourg_net(out: Path) -> Path:
    """The LuST OpenStreetMap city imported, then a district around its middle cut out."""
    from greenwave._sumo import run_sumo_command

    district = out / "luxembourg_district.net.xml"
    if district.is_file():
        return district
    city = _osm_net("luxembourg", "luxembourg/lust.osm.gz")(out)
    with (gzip.open if city.suffix == ".gz" else open)(city, "rb") as fh:
        for _event, el in ET.iterparse(fh, events=("start",)):
            if el.tag == "location":
                x0, y0, x1, y1 = map(float, el.get("convBoundary", "0,0,0,0").split(","))
                break
    cx, cy, h = (x0 + x1) / 2, (y0 + y1) / 2, LUXEMBOURG_DISTRICT_M / 2
    run_sumo_command(
        ["netconvert", "-s", city, "--keep-edges.in-boundary", f"{cx - h},{cy - h},{cx + h},{cy + h}",
         "--remove-edges.isolated", "--keep-edges.components", "1", "-o", district],
        what="cutting a Luxembourg district",
    )  # fmt: skip
    return district


def catalogue() -> dict[str, Case]:
    """Every real network this benchmark knows, by name."""
    cases = [
        Case("fkk_in", "Ingolstadt (tools/game/fkk_in)", _fkk_in, "own"),
        Case("fkk_in_random", "Ingolstadt (tools/game/fkk_in) with random trips, through the city's signal-group plan "
             "of 335525545 (real_tl_4050_9), which the game's own demand never reaches",
             _generated("fkk_in_random", _fkk_in_net), "generated"),
        Case("DRT", "OpenStreetMap district (tools/game/DRT)", _generated("DRT", _drt_net), "generated"),
        Case("kuehne", "tools/game/kuehne", _kuehne, "own"),
        Case("square", "tools/game/square", _game_cfg("square"), "own"),
        Case("bs3d", "Braunschweig (tools/game/bs3d)", _bs3d, "own"),
        Case("A10KW", "tools/game/A10KW", _game_cfg("A10KW"), "own"),
        Case("corridor", "tools/game/corridor", _game_cfg("corridor"), "own"),
        Case("cross", "tools/game/cross: one junction, netconvert's four stages (6 s protected turns)",
             _game_cfg("cross"), "own"),
        Case("grid6", "tools/game/grid6", _game_cfg("grid6"), "own"),
        Case("fokr", "Braunschweig research junction (tools/game/fokr_bs_demo): recorded traffic and pedestrians "
             "15:00-16:00, the DLR signal plan, 0.05 s steps", _fokr, "own"),
        *(Case(f"rilsa{k}", f"RiLSA example {k} (sumolib scenarios)", rilsa_example(k), "own") for k in (1, 2, 3, 4)),
        Case("rilsa1_out", "RiLSA example 1 with signals on its outbound legs (sumolib scenario RiLSA1OutTLS)",
             rilsa1_with_signals("rilsa1_out"), "own"),
        Case("rilsa1_both", "RiLSA example 1 with signals on its legs, both directions (sumolib scenario "
             "RiLSA1BothTLS)", rilsa1_with_signals("rilsa1_both"), "own"),
        Case("monaco", "Monaco (shared/data, OSM import)",
             _generated("monaco", _osm_net("monaco", "monaco/monaco.osm.gz")), "generated"),
        Case("luxembourg", f"Luxembourg City, {LUXEMBOURG_DISTRICT_M / 1000:g} km district (shared/data, OSM import)",
             _generated("luxembourg", _luxembourg_net), "generated"),
    ]
    return {c.name: c for c in cases}


def sumocfg_case(spec: str) -> Case:
    """``NAME=FILE.sumocfg``: a network of the user's own, run with its own configuration (its
    network, demand, programs and step length), e.g. a city's calibrated scenario."""
    name, sep, file = spec.partition("=")
    name, file = name.strip(), file.strip()
    if not sep or not name or not file:
        raise ValueError(f"--sumocfg {spec!r}: expected NAME=FILE.sumocfg")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"--sumocfg {spec!r}: the name {name!r} may hold only letters, digits, '_' and '-'")
    if name in catalogue():
        raise ValueError(f"--sumocfg {spec!r}: {name!r} is already one of the benchmark's networks; "
                         "choose another name")
    path = Path(file).expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"--sumocfg {spec!r}: no such file {path}")
    return Case(name, f"own SUMO configuration {path.name}", lambda _w, _s, _e: {"demand": {"sumocfg": str(path)}},
                "own")


def default_controllers() -> list[str]:
    """Every registered controller but ``fixed`` (it needs a plan file) and test doubles."""
    from greenwave.controllers.base import available_controllers

    return [c for c in available_controllers() if c != "fixed" and not c.startswith("test")]


def scenario(case: Case, work: Path, *, duration: float, seeds: list[int], controllers: list[str],
             jobs: int = 1, rebuilt_all_red: str = "netconvert") -> Any:
    """The case as a validated scenario (its demand built for the first seed). ``proven`` may run
    ``jobs`` proof runs at a time (its proofs decide the same either way, see ``proof_jobs``):
    a network's single proven run otherwise leaves the other cores idle once the rest are done.
    ``rebuilt_all_red``: the ``sumo-rebuilt-*`` baselines' ``all_red`` option ("own": with the
    all-red of the network's programs, as ``proven`` runs them)."""
    from greenwave.scenarios.spec import scenario_from_dict

    table = case.build(work, seeds[0], duration)
    options: dict[str, Any] = {"proven": {"proof_jobs": jobs}} if "proven" in controllers and jobs > 1 else {}
    if rebuilt_all_red != "netconvert":
        options.update({c: {"all_red": rebuilt_all_red} for c in controllers if c.startswith("sumo-rebuilt-")})
    return scenario_from_dict({"name": case.name, "description": case.what, "duration_s": duration,
                               "seeds": seeds, "controllers": controllers, "controller_options": options, **table})


def run_network(case: Case, work: Path, *, duration: float, seeds: list[int], controllers: list[str],
                jobs: int, say: Callable[[str], None], rebuilt_all_red: str = "netconvert") -> dict[str, Any]:
    """Run one network; return its JSON entry (failed runs listed, finished rows kept)."""
    import pandas as pd

    from greenwave.errors import GreenwaveError
    from greenwave.scenarios.runner import comparison_table, run_scenario

    t0 = time.perf_counter()
    entry: dict[str, Any] = {"network": case.name, "what": case.what, "demand": case.demand, "failed": []}
    if case.name in GENERATED_DENSITY:  # veh/h per km of the generated demand: runs at another do not compare
        entry["generated_density"] = GENERATED_DENSITY[case.name]
    out = work / "runs" / case.name
    try:
        sc = scenario(case, work / "inputs", duration=duration, seeds=seeds, controllers=controllers, jobs=jobs,
                      rebuilt_all_red=rebuilt_all_red)
        from greenwave.controllers.sumo_programs import read_programs

        entry["signals"] = len(read_programs(sc.network.path)) if sc.network.path is not None else None
        summary = run_scenario(sc, out, jobs=jobs, progress=say)
    except GreenwaveError as exc:
        entry["failed"].append(str(exc)[:2000])
        csv = out / "summary.csv"
        if not csv.is_file():
            entry["wall_s"] = time.perf_counter() - t0
            return entry
        summary = pd.read_csv(csv)
    table = comparison_table(summary)
    entry["controllers"] = {
        name: {"kind": row.kind, "resco_delay_s": _num(row.resco_delay_s),
               "vs_best_baseline": _num(row.vs_best_baseline),
               "vs_best_interval": [_num(row.vs_best_low), _num(row.vs_best_high)]  # 90 %, paired over seeds
               if not math.isnan(row.vs_best_low) else None, "teleports": _num(row.teleports),
               "vehicles_unfinished": _num(row.vehicles_unfinished), "vehicles_arrived": _num(row.vehicles_arrived),
               "mean_time_loss_s": _num(row.mean_time_loss_s), "seeds": int(row.seeds)}
        for name, row in table.iterrows()
    }
    best = table.index[table["best_baseline"] == "*"]
    entry["best_baseline"] = str(best[0]) if len(best) else None
    entry["wall_s"] = time.perf_counter() - t0
    return entry


def _num(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def markdown_table(result: dict[str, Any]) -> str:
    """One row per network: the best baseline, greenwave's best and every controller's
    RESCO delay (s/veh) with its ratio to the best baseline, teleports and unfinished vehicles."""
    cfg = result.get("config", {})
    names: list[str] = list(cfg.get("controllers", []))  # the order asked for, then any other
    for net in result["networks"]:
        for c in net.get("controllers", {}):
            if c not in names:
                names.append(c)
    lines = [
        f"Measured {cfg.get('date', '?')}: {cfg.get('duration_s', '?'):g} s simulated, seeds "
        f"{cfg.get('seeds')}; each cell: RESCO delay s/veh (ratio to the best baseline"
        + (", its 90 % interval paired over the seeds" if len(cfg.get("seeds") or []) > 1 else "") + ") "
        "[teleports / unfinished vehicles]; best baseline in bold."
        + (" The sumo-rebuilt-* baselines keep the all-red of the network's own programs."
           if cfg.get("rebuilt_all_red") == "own" else ""),
        "",
        "| network | demand | best baseline | greenwave's best | " + " | ".join(f"`{n}`" for n in names) + " |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for net in result["networks"]:
        ctrl = net.get("controllers", {})
        if not ctrl:
            why = net["failed"][0][:80] if net["failed"] else "?"
            lines.append(f"| {net['network']} | {net['demand']} | failed: {why} |")
            continue
        best = net.get("best_baseline")
        ours = [(v["resco_delay_s"], c) for c, v in ctrl.items()
                if v["kind"] == "greenwave" and v["resco_delay_s"] is not None]
        gw = min(ours) if ours else None
        cells = []
        for n in names:
            v = ctrl.get(n)
            if v is None or v["resco_delay_s"] is None:
                cells.append("–")
                continue
            band = v.get("vs_best_interval")
            ratio = ("" if v["vs_best_baseline"] is None else f" ({v['vs_best_baseline']:.2f}"
                     + (f", {band[0]:.2f}–{band[1]:.2f}" if band and n != best else "") + ")")
            counts = "/".join("?" if v[k] is None else f"{v[k]:.0f}" for k in ("teleports", "vehicles_unfinished"))
            text = f"{v['resco_delay_s']:.1f}{ratio} [{counts}]"
            cells.append(f"**{text}**" if n == best else text)
        if gw is None:
            gw_text = "–"
        else:
            gw_ratio = ctrl[gw[1]]["vs_best_baseline"]  # None where no baseline ran
            gw_text = f"`{gw[1]}` " + (f"{gw_ratio:.2f}" if gw_ratio is not None else f"{gw[0]:.1f} s/veh")
        best_text = "–" if best is None else f"`{best}` {ctrl[best]['resco_delay_s']:.1f}"
        failed = f" ({len(net['failed'])} failure(s))" if net["failed"] else ""
        where = f"{net['network']}{failed} ({net.get('signals')} signals)"
        head = f"| {where} | {net['demand']} | {best_text} | {gw_text} | "
        lines.append(head + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def merge_results(results: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One result from several (``(file name, result)`` in order): per network the union of the
    controllers (a later file's run of a controller replaces an earlier one), each ratio
    recomputed against the best baseline of the union (an interval only kept where its file had the same
    best baseline: it needs the runs per seed). Runs of different durations or seeds are
    not comparable: ValueError naming the file."""
    if not results:
        raise ValueError("nothing to merge")
    first_name, first = results[0]
    cfg0 = first.get("config", {})
    sources = [{"file": n, "config": r.get("config", {})} for n, r in results]
    merged: dict[str, Any] = {"config": {**cfg0, "controllers": [], "networks": [], "merged_from": sources},
                              "networks": []}
    by_name: dict[str, dict[str, Any]] = {}
    rebuilt_red: tuple[str, str] | None = None  # (file, all_red) of the first run with rebuilt baselines
    against: dict[tuple[str, str], str | None] = {}  # (network, controller) → the best baseline its file had
    for name, res in results:
        cfg = res.get("config", {})
        for key in ("duration_s", "seeds"):
            if cfg.get(key) != cfg0.get(key):
                raise ValueError(f"{name}: {key} {cfg.get(key)!r} differs from {first_name}'s {cfg0.get(key)!r}; "
                                 "only runs of the same duration and seeds compare")
        if any(c.startswith("sumo-rebuilt-") for c in cfg.get("controllers", [])):
            red = cfg.get("rebuilt_all_red", "netconvert")
            if rebuilt_red is not None and red != rebuilt_red[1]:
                raise ValueError(f"{name}: its sumo-rebuilt-* baselines ran with all_red {red!r}, "
                                 f"{rebuilt_red[0]}'s with {rebuilt_red[1]!r}; runs of the same controller names "
                                 "would mix")
            rebuilt_red = (name, red)
            merged["config"]["rebuilt_all_red"] = red
        for c in cfg.get("controllers", []):
            if c not in merged["config"]["controllers"]:
                merged["config"]["controllers"].append(c)
        for net in res.get("networks", []):
            bad = [k for k in ("network", "controllers") if not isinstance(net, dict) or k not in net]
            bad += [f"controllers.{c}.{k}" for c, v in (net.get("controllers") or {}).items()
                    for k in ("kind", "resco_delay_s") if not isinstance(v, dict) or k not in v] if not bad else []
            if bad:
                raise ValueError(f"{name}: a network entry lacks {', '.join(bad)} (not a real_networks.py result)")
            entry = by_name.get(net["network"])
            mine, theirs = (None if entry is None else entry.get("generated_density")), net.get("generated_density")
            if mine is not None and theirs is not None and mine != theirs:  # (files before it was recorded: unknown)
                raise ValueError(f"{name}: {net['network']}'s generated demand ran at {net.get('generated_density')!r} "
                                 f"veh/h per km, an earlier file's at {entry.get('generated_density')!r}; only runs of "
                                 "the same demand compare")
            if entry is None:
                entry = by_name[net["network"]] = {**net, "controllers": {}, "failed": []}
                merged["networks"].append(entry)
                merged["config"]["networks"].append(net["network"])
            entry["controllers"].update(net.get("controllers", {}))
            against.update({(net["network"], c): net.get("best_baseline") for c in net.get("controllers", {})})
            entry["failed"] += net.get("failed", [])
            if theirs is not None:
                entry["generated_density"] = theirs
    for entry in merged["networks"]:
        ctrl = entry["controllers"]
        base = {c: v["resco_delay_s"] for c, v in ctrl.items()
                if v["kind"] == "baseline" and v["resco_delay_s"] is not None}
        entry["best_baseline"] = min(base, key=lambda c: (base[c], c)) if base else None
        best = base.get(entry["best_baseline"]) if base else None
        for c, v in ctrl.items():
            v["vs_best_baseline"] = (v["resco_delay_s"] / best if best and v["resco_delay_s"] is not None
                                     else None)
            if against.get((entry["network"], c)) != entry["best_baseline"]:  # its interval was against another
                v["vs_best_interval"] = None
    return merged


def read_result(path: str | Path) -> dict[str, Any]:
    """A result file of this benchmark; ValueError naming the file and the entry when it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    problem = _result_problem(data)
    if problem:
        raise ValueError(f"{path}: not a result of benchmarks/real_networks.py: {problem}")
    return data


def _is_num(x: Any, *, none: bool = False) -> bool:
    return (x is None and none) or (isinstance(x, (int, float)) and not isinstance(x, bool))


def _result_problem(data: Any) -> str:
    """What in ``data`` is not as :func:`markdown_table` and :func:`merge_results` read it ("" if all is)."""
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict) or not isinstance(data.get("networks"),
                                                                                                list):
        return "expected an object with 'config' and 'networks'"
    cfg = data["config"]
    if not _is_num(cfg.get("duration_s")):
        return "config.duration_s: expected a number"
    if not isinstance(cfg.get("seeds"), list) or not all(isinstance(x, int) for x in cfg["seeds"]):
        return "config.seeds: expected a list of integers"
    names = cfg.get("controllers", [])
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        return "config.controllers: expected a list of names"
    for k, net in enumerate(data["networks"]):
        where = f"networks[{k}]"
        if not isinstance(net, dict):
            return f"{where}: expected an object"
        for key, kind in (("network", str), ("demand", str), ("failed", list), ("controllers", dict)):
            if not isinstance(net.get(key), kind):
                return f"{where}.{key}: expected {'text' if kind is str else kind.__name__}"
        ctrl = net["controllers"]
        if net.get("best_baseline") is not None and net["best_baseline"] not in ctrl:
            return f"{where}.best_baseline: {net['best_baseline']!r} is not among its controllers"
        for name, v in ctrl.items():
            if not isinstance(v, dict) or v.get("kind") not in ("baseline", "greenwave"):
                return f"{where}.controllers.{name}.kind: expected 'baseline' or 'greenwave'"
            for key in ("resco_delay_s", "vs_best_baseline", "teleports", "vehicles_unfinished"):
                if not _is_num(v.get(key), none=True):
                    return f"{where}.controllers.{name}.{key}: expected a number or null"
    return ""


def _write_json(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    global DATA
    saved = DATA  # --data holds for this call only (tests call main more than once)
    try:
        return _main(argv)
    finally:
        DATA = saved


def _main(argv: list[str] | None) -> int:
    global DATA
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="result file (JSON), rewritten after each network")
    ap.add_argument("--table", help="print the markdown table of an existing result JSON and exit")
    ap.add_argument("--duration", type=float, default=3600.0, help="simulated seconds per run (default 3600)")
    ap.add_argument("--networks", default=None, help=f"comma-separated (default all: {','.join(catalogue())})")
    ap.add_argument("--controllers", default=None, help="comma-separated (default: every controller but fixed)")
    ap.add_argument("--seeds", type=int, default=1, help="seeds 1..N (default 1)")
    ap.add_argument("--jobs", type=int, default=1, help="parallel SUMO runs (default 1)")
    ap.add_argument("--work", default=None, help="folder for inputs and runs (default: a temporary one)")
    ap.add_argument("--markdown", default=None, help="also write the markdown table here")
    ap.add_argument("--rebuilt-all-red", choices=("netconvert", "own"), default="netconvert",
                    help="all-red of the sumo-rebuilt-* baselines: netconvert's design without any (default), "
                         "or the network's own programs' (as proven runs them)")
    ap.add_argument("--data", default=None, help=f"folder of the shared city maps (default {DATA})")
    ap.add_argument("--sumocfg", action="append", default=[], metavar="NAME=FILE.sumocfg",
                    help="also run a network of your own with its SUMO configuration (repeatable); with "
                         "--sumocfg and no --networks only these run")
    ap.add_argument("--density", action="append", default=[], metavar="NAME=VEH_PER_H_PER_KM",
                    help="generated demand of a network (repeatable; default "
                         f"{', '.join(f'{k}={v:g}' for k, v in GENERATED_DENSITY.items())})")
    ap.add_argument("--merge", nargs="+", metavar="RESULT.json",
                    help="merge result files of the same duration and seeds (e.g. baselines and greenwave's "
                         "controllers run apart) into --json, ratios recomputed, and print the table")
    args = ap.parse_args(argv)
    if args.merge:
        if not args.json:
            ap.error("--merge needs --json FILE for the merged result")
        try:
            merged = merge_results([(f, read_result(f)) for f in args.merge])
            table = markdown_table(merged)
        except (OSError, ValueError) as exc:
            ap.error(f"--merge: {exc}")
        _write_json(merged, Path(args.json))
        print(table, end="")
        if args.markdown:
            Path(args.markdown).write_text(table)
        return 0
    if args.table:
        try:
            print(markdown_table(read_result(args.table)), end="")
        except (OSError, ValueError) as exc:
            ap.error(f"--table: {exc}")
        return 0
    if not args.json:
        ap.error("--json FILE is required (or --table FILE.json)")
    if args.data:
        DATA = Path(args.data).expanduser().resolve()
        if not DATA.is_dir():
            ap.error(f"--data {args.data}: no such folder")
    for spec in args.density:
        name, sep, value = spec.partition("=")
        try:
            density = float(value)
        except ValueError:
            density = float("nan")
        if not sep or name.strip() not in GENERATED_DENSITY or not math.isfinite(density) or density <= 0:
            ap.error(f"--density {spec!r}: expected NAME=VEH_PER_H_PER_KM, NAME one of "
                     f"{', '.join(GENERATED_DENSITY)} and a number > 0")
        GENERATED_DENSITY[name.strip()] = density
    cases = catalogue()
    try:
        own = [sumocfg_case(spec) for spec in args.sumocfg]
    except ValueError as exc:
        ap.error(str(exc))
    if len({c.name for c in own}) < len(own):
        ap.error("--sumocfg: two configurations with the same NAME")
    if args.networks is None:
        names = [c.name for c in own] if own else list(cases)
    else:
        names = [n.strip() for n in args.networks.split(",") if n.strip()] + [c.name for c in own]
        names = list(dict.fromkeys(names))  # each once, in the order given
    cases.update({c.name: c for c in own})
    unknown = [n for n in names if n not in cases]
    if unknown:
        ap.error(f"unknown network(s) {', '.join(unknown)}; known: {', '.join(cases)}")
    controllers = default_controllers() if args.controllers is None else [
        c.strip() for c in args.controllers.split(",") if c.strip()]
    seeds = list(range(1, args.seeds + 1))
    work = Path(args.work).resolve() if args.work else Path(tempfile_dir())
    result: dict[str, Any] = {
        "config": {"duration_s": args.duration, "seeds": seeds, "controllers": controllers, "networks": list(names),
                   "jobs": args.jobs, "date": time.strftime("%Y-%m-%d", time.gmtime()), "commit": code_version(),
                   "rebuilt_all_red": args.rebuilt_all_red},
        "networks": [],
    }
    t0 = time.perf_counter()
    try:
        for name in names:
            entry = run_network(cases[name], work, duration=args.duration, seeds=seeds, controllers=controllers,
                                jobs=args.jobs, say=lambda m: print(m, file=sys.stderr, flush=True),
                                rebuilt_all_red=args.rebuilt_all_red)
            result["networks"].append(entry)
            result["wall_s"] = time.perf_counter() - t0
            _write_json(result, Path(args.json))
            print(f"{name}: best baseline {entry.get('best_baseline')}, {len(entry['failed'])} failure(s), "
                  f"{entry['wall_s']:.0f} s", flush=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    table = markdown_table(result)
    print(table, end="")
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0


def code_version() -> str | None:
    """The git commit the benchmark runs (``+dirty`` with uncommitted changes), or None outside git."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def tempfile_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="gw-real-networks-")


if __name__ == "__main__":
    sys.exit(main())
