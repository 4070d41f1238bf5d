"""Real SUMO scenarios run as SUMO runs them: a ``.sumocfg`` read as SUMO reads it, the same run as
``sumo -c`` under ``static``, the scenario's own signal programs as the baseline, and what real
scenarios carry (buses, stops, persons, bicycles, detectors, rerouters, parking) under every
controller.

The scenarios are the ones shipped in the eclipse-sumo wheel (``tools/game`` and sumolib's RiLSA
examples). SUMO's reference runs use a copy of the ``.sumocfg`` beside links to its files, so
that they write their outputs into the test's folder and never into the installed package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import Executor
from pathlib import Path

import pytest

from greenwave._sumo import sumo_binary, sumo_home, tool_env
from greenwave.controllers.base import available_controllers, make_controller
from greenwave.controllers.sumo_programs import active_programs, actuated_programs
from greenwave.engine.run import RunSpec
from greenwave.errors import ScenarioError
from greenwave.networks import load_network
from greenwave.scenarios.runner import make_jobs, prepare, run_scenario
from greenwave.scenarios.spec import load_scenario, scenario_from_dict
from greenwave.scenarios.sumocfg import SUMO_DEFAULT_SEED, read_sumocfg

TOOLS = sumo_home() / "tools"
GAME = TOOLS / "game"
RILSA = TOOLS / "sumolib" / "scenario" / "scenarios" / "RealWorld"
FEATURES = Path(__file__).parent / "data" / "scenario_features"

#: Every configuration of the installed package that ``sumo -c`` runs, with the end used here
#: (None: its own end; a shorter one keeps the test affordable). Each takes a few seconds at least
#: (two SUMO runs and a worker), so all are marked slow.
SAME_RUN: dict[str, float | None] = {
    "game/A10KW.sumocfg": 300,
    "game/DRT.sumocfg": 600,
    "game/DRT2.sumocfg": 600,
    "game/DRT_demo.sumocfg": 600,
    "game/corridor.sumocfg": None,
    "game/cross.sumocfg": None,
    "game/cross_demo.sumocfg": 600,
    "game/fkk_in.sumocfg": None,
    "game/fokr_bs_demo.sumocfg": 54060,
    "game/grid6.sumocfg": None,
    "game/hiking/hiking.sumocfg": 300,  # no <end>: SUMO runs until the walkers are home
    "game/racing/racing.sumocfg": 300,  # no <end>
    "game/rail.sumocfg": 600,
    "game/rail/test.sumocfg": 300,  # no <end>
    "game/rail_demo.sumocfg": 600,
    "game/ramp.sumocfg": None,
    "game/square.sumocfg": None,
    # RiLSA examples: their demand (flows.rou.xml) is written by their own makeRoutes.py
    **{f"rilsa/RiLSA_example{i}/run.sumo.cfg": 900 for i in (1, 2, 3, 4)},
}
#: Configurations ``sumo -c`` itself cannot run, with SUMO's reason.
SUMO_CANNOT_RUN = {
    "game/bs3d.sumocfg": "osg-view",  # an option of the OpenSceneGraph sumo-gui only
    "game/bs3Dosm.sumocfg": "osg-view",
}

CONTROLLERS = [c for c in available_controllers() if c != "fixed" and not c.startswith("test")]



def _installed(key: str) -> Path:
    if key.startswith("rilsa/"):
        return RILSA / key.removeprefix("rilsa/")
    return TOOLS / key


def _rilsa(tmp_path: Path, example: int = 1, *, routes: bool = True) -> Path:
    """A copy of RiLSA example ``example`` with its demand written by its own makeRoutes.py."""
    d = tmp_path / f"RiLSA_example{example}"
    shutil.copytree(RILSA / f"RiLSA_example{example}", d, ignore=shutil.ignore_patterns("__pycache__"))
    if routes:
        subprocess.run([sys.executable, "makeRoutes.py"], cwd=d, check=True)
    return d / "run.sumo.cfg"


def _mirror(cfg: Path, into: Path) -> Path:
    """The configuration copied into ``into`` beside links to every file next to it."""
    into.mkdir(parents=True)
    for entry in cfg.parent.iterdir():
        if entry.name != cfg.name:
            (into / entry.name).symlink_to(entry)
    shutil.copy(cfg, into / cfg.name)
    return into / cfg.name


def _sumo_c(cfg: Path, out: Path, *, end: float | None, seed: int) -> tuple[dict, dict]:
    """Plain ``sumo -c CFG`` (same seed and end), with the trip outputs greenwave writes."""
    out.mkdir(parents=True, exist_ok=True)
    args = [sumo_binary("sumo"), "-c", cfg.name, "--seed", str(seed), "--no-step-log", "true",
            "--statistic-output", str(out / "statistics.xml"), "--tripinfo-output", str(out / "tripinfo.xml"),
            "--tripinfo-output.write-unfinished", "true", "--tripinfo-output.write-undeparted", "true"]
    if end is not None:
        args += ["--end", f"{end:g}"]
    subprocess.run(args, cwd=cfg.parent, env=tool_env(), check=True, capture_output=True)
    return _statistics(out / "statistics.xml"), _trips(out / "tripinfo.xml")


def _statistics(path: Path) -> dict[str, dict[str, str]]:
    """Every element of SUMO's statistic output but the wall-clock ``performance``."""
    return {el.tag: dict(el.attrib) for el in ET.parse(path).getroot() if el.tag != "performance"}


def _trips(path: Path) -> dict[str, dict[str, str]]:
    return {el.get("id", ""): dict(el.attrib) for el in ET.parse(path).getroot().iter("tripinfo")}


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if "__pycache__" not in p.parts}


# ------------------------------------------------------------------------------------------
# 1. a .sumocfg read as SUMO reads it


def test_configuration_is_read_as_sumo_reads_it(tmp_path: Path) -> None:
    """RiLSA's ``run.sumo.cfg`` (root ``<c>``, synonym ``<net>``, types in an additional file):
    paths resolve against the configuration, additional files keep their role and order."""
    cfg = _rilsa(tmp_path, routes=False)
    with pytest.raises(ScenarioError, match="flows.rou.xml"):  # as shipped: its demand is missing
        read_sumocfg(cfg)
    subprocess.run([sys.executable, "makeRoutes.py"], cwd=cfg.parent, check=True)
    c = read_sumocfg(cfg)
    d = cfg.parent.resolve()
    assert c.net_file == d / "rilsa1.net.xml"
    assert c.additional_files == (d / "vtypes.add.xml", d / "rilsa1_tls.add.xml")
    assert c.route_files == (d / "flows.rou.xml",)
    assert c.demand_files() == (d / "vtypes.add.xml", d / "flows.rou.xml")  # types first
    assert c.begin_s is None and c.end_s is None and c.seed is None
    assert {"tripinfo-output", "log"} <= {name for name, _ in c.ignored}
    sc = scenario_from_dict({"duration_s": 600, "demand": {"sumocfg": str(cfg)}})
    assert sc.seeds == (SUMO_DEFAULT_SEED,) and sc.step_length_s == 1.0 and sc.end_s == 600


def test_times_seed_and_result_changing_options_reach_sumo(tmp_path: Path) -> None:
    cfg = _rilsa(tmp_path)
    text = cfg.read_text().replace("</c>", """
    <begin value="0:01:00"/><end value="0:11:00"/><step-length value="0.5"/>
    <time-to-teleport value="120"/><seed value="7"/>
    <weights.random-factor value="1.5"/><ignore-route-errors value="true"/>
    <summary-output value="sub/summary.xml"/><device.rerouting.output value="rr.xml"/>
    <human-readable-time value="true"/><verbose value="true"/><gui-settings-file value="view.xml"/>
</c>""")
    cfg.write_text(text)
    c = read_sumocfg(cfg)
    assert (c.begin_s, c.end_s, c.step_length_s, c.time_to_teleport_s, c.seed) == (60, 660, 0.5, 120, 7)
    assert ("weights.random-factor", "1.5") in c.options and ("ignore-route-errors", "true") in c.options
    assert dict(c.outputs) == {"summary-output": "summary.xml", "device.rerouting.output": "rr.xml"}
    assert {"human-readable-time", "verbose"} <= {n for n, _ in c.ignored}
    args = c.sumo_args(tmp_path / "run")
    assert args[args.index("--summary-output") + 1] == str(tmp_path / "run" / "summary.xml")
    assert "--gui-settings-file" not in args and "--gui-settings-file" in c.sumo_args(tmp_path, gui=True)
    sc = load_scenario(cfg)
    assert (sc.begin_s, sc.end_s, sc.step_length_s, sc.time_to_teleport_s, sc.seeds) == (60, 660, 0.5, 120, (7,))
    # a TOML's own keys win over the configuration's
    toml = tmp_path / "sc.toml"
    toml.write_text(f'duration_s = 300\nseeds = [1, 2]\n[demand]\nsumocfg = "{cfg}"\n')
    sc = load_scenario(toml)
    assert (sc.begin_s, sc.end_s, sc.seeds, sc.step_length_s) == (60, 360, (1, 2), 0.5)


@pytest.mark.parametrize("option, value, named", [
    ("remote-port", "8813", "remote-port"),
    ("random", "true", "random"),
    ("no-such-option", "1", "no-such-option"),
])
def test_options_greenwave_cannot_honour_are_named(tmp_path: Path, option: str, value: str, named: str) -> None:
    cfg = _rilsa(tmp_path)
    cfg.write_text(cfg.read_text().replace("</c>", f'<{option} value="{value}"/></c>'))
    with pytest.raises(ScenarioError, match=named):
        read_sumocfg(cfg)


@pytest.mark.parametrize("key, option", sorted(SUMO_CANNOT_RUN.items()))
def test_configurations_sumo_cannot_run_fail_with_sumos_reason(key: str, option: str) -> None:
    with pytest.raises(ScenarioError, match=option):
        load_scenario(_installed(key))


def test_every_installed_configuration_is_covered() -> None:
    found = {str(p.relative_to(TOOLS)) for p in GAME.rglob("*.sumocfg")}
    found |= {f"rilsa/{p.parent.name}/{p.name}" for p in RILSA.glob("*/run.sumo.cfg")}
    assert found == set(SAME_RUN) | set(SUMO_CANNOT_RUN)


# ------------------------------------------------------------------------------------------
# 2. the same run as SUMO


def _same_run(key: str, tmp_path: Path, pool: Executor) -> None:
    end = SAME_RUN[key]
    if key.startswith("rilsa/"):
        cfg = _rilsa(tmp_path / "scenario", int(key.split("/")[1][-1]))
    else:
        cfg = _installed(key)
    before = _listing(cfg.parent)
    own = read_sumocfg(cfg)
    if end is None:
        sc = load_scenario(cfg)  # exactly what `greenwave run CFG` does
    else:
        sc = scenario_from_dict({"duration_s": end - (own.begin_s or 0.0), "demand": {"sumocfg": str(cfg)}})
    seed = sc.seeds[0]
    assert seed == (own.seed or SUMO_DEFAULT_SEED)
    run_scenario(sc, tmp_path / "gw", controllers=["static"], executor=pool)
    run = tmp_path / "gw" / "runs" / f"static_seed{seed}"
    stats, trips = _sumo_c(_mirror(cfg, tmp_path / "ref"), tmp_path / "ref_out", end=sc.end_s, seed=seed)
    assert _statistics(run / "statistics.xml") == stats
    assert _trips(run / "tripinfo.xml") == trips
    assert _listing(cfg.parent) == before  # nothing written beside the scenario's files


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(SAME_RUN))
def test_static_is_the_same_run_as_sumo(key: str, tmp_path: Path, pool: Executor) -> None:
    _same_run(key, tmp_path, pool)


@pytest.mark.slow
def test_greenwave_run_on_a_sumocfg_from_the_command_line(tmp_path: Path) -> None:
    cfg = GAME / "cross.sumocfg"
    subprocess.run([sys.executable, "-m", "greenwave.scenarios.cli", "run", str(cfg), "--controllers",
                    "static", "--output", str(tmp_path / "gw")], check=True, capture_output=True)
    stats, trips = _sumo_c(_mirror(cfg, tmp_path / "ref"), tmp_path / "ref_out", end=None, seed=SUMO_DEFAULT_SEED)
    run = tmp_path / "gw" / "runs" / f"static_seed{SUMO_DEFAULT_SEED}"
    assert _statistics(run / "statistics.xml") == stats and _trips(run / "tripinfo.xml") == trips


# ------------------------------------------------------------------------------------------
# 3. the city's own programs


_WAUT = """<additional>
    <tlLogic id="0" programID="day" type="static" offset="0">{day}</tlLogic>
    <tlLogic id="0" programID="night" type="static" offset="0">{night}</tlLogic>
    <WAUT id="w0" refTime="0" startProg="day">
        <wautSwitch time="300" to="night"/>
    </WAUT>
    <wautJunction wautID="w0" junctionID="0"/>
</additional>
"""


def _phases(program: ET.Element, scale: float = 1.0) -> str:
    return "".join(
        f'<phase duration="{float(p.get("duration", "0")) * (scale if "G" in p.get("state", "") else 1):g}" '
        f'state="{p.get("state")}"/>'
        for p in program.iter("phase")
    )


def _city_programs(cfg: Path) -> Path:
    """RiLSA's own program as a WAUT of a day (as is) and a night program (greens doubled)."""
    own = active_programs(cfg.parent / "rilsa1.net.xml", [cfg.parent / "rilsa1_tls.add.xml"])["0"]
    path = cfg.parent / "city_waut.add.xml"
    path.write_text(_WAUT.format(day=_phases(own), night=_phases(own, 2.0)))
    cfg.write_text(cfg.read_text().replace("rilsa1_tls.add.xml", "rilsa1_tls.add.xml,city_waut.add.xml"))
    return path


def _program_sumo_starts(cfg: Path, begin: float) -> str:
    import libsumo

    c = read_sumocfg(cfg)
    libsumo.start([sumo_binary("sumo"), "-n", str(c.net_file), "-a", ",".join(map(str, c.additional_files)),
                   "--begin", f"{begin:g}", "--no-step-log", "true"])
    try:
        return str(libsumo.trafficlight.getProgram("0"))
    finally:
        libsumo.close()


def test_the_program_sumo_runs_is_the_one_greenwave_starts_from(tmp_path: Path) -> None:
    """The last loaded program (RiLSA's own ``own`` over the network's ``0``), or what a WAUT
    says at the begin: the day program before its switch, the night one after it, checked
    against SUMO itself; actuated variants and take-over controllers start from it."""
    cfg = _rilsa(tmp_path)
    d = cfg.parent
    files = [d / "vtypes.add.xml", d / "rilsa1_tls.add.xml"]
    assert load_network(d / "rilsa1.net.xml", program_files=files).signals["0"].default_program.id == "own"
    assert _program_sumo_starts(cfg, 0) == "own"
    waut = _city_programs(cfg)
    files.append(waut)
    for begin, expected in ((0, "day"), (400, "night")):
        assert _program_sumo_starts(cfg, begin) == expected
        net = load_network(d / "rilsa1.net.xml", program_files=files, begin_s=begin)
        assert net.signals["0"].default_program.id == expected
        assert active_programs(d / "rilsa1.net.xml", files, begin_s=begin)["0"].get("programID") == expected
    # actuated variants start from it: same states, the night program's longer greens as base
    night = active_programs(d / "rilsa1.net.xml", files, begin_s=400)["0"]
    out = actuated_programs(d / "rilsa1.net.xml", workdir=tmp_path / "act", program_files=files, begin_s=400)
    variant = ET.parse(out).getroot().find("tlLogic")
    assert variant is not None
    assert [p.get("state") for p in variant.iter("phase")] == [p.get("state") for p in night.iter("phase")]
    assert [p.get("duration") for p in variant.iter("phase")] == [p.get("duration") for p in night.iter("phase")]
    # a controller taking the signal over uses the stages of the program SUMO runs
    ctx = RunSpec(scenario="rilsa", controller="max_pressure", net_file=d / "rilsa1.net.xml", route_files=(),
                  begin_s=0, end_s=600, seed=1, workdir=tmp_path / "mp", options={},
                  program_files=(d / "rilsa1_tls.add.xml",))
    mp = make_controller("max_pressure")
    mp.prepare(ctx)
    own = load_network(d / "rilsa1.net.xml", program_files=ctx.program_files).signals["0"].programs["own"]
    assert set(mp.switcher.stages[0].states) <= {p.state for p in own.phases}
    assert any(p.state not in {q.state for q in mp.network.signals["0"].programs["0"].phases}
               for p in own.phases)  # the network's program differs: the test can tell them apart


@pytest.mark.slow
def test_static_runs_a_waut_exactly_and_takeover_of_switched_signals_is_refused(
    tmp_path: Path, pool: Executor
) -> None:
    cfg = _rilsa(tmp_path)
    _city_programs(cfg)
    sc = scenario_from_dict({"duration_s": 600, "demand": {"sumocfg": str(cfg)}})
    run_scenario(sc, tmp_path / "gw", controllers=["static"], executor=pool)
    stats, trips = _sumo_c(cfg, tmp_path / "ref", end=600, seed=SUMO_DEFAULT_SEED)
    run = tmp_path / "gw" / "runs" / f"static_seed{SUMO_DEFAULT_SEED}"
    assert _statistics(run / "statistics.xml") == stats and _trips(run / "tripinfo.xml") == trips
    with pytest.raises(ScenarioError, match="WAUT 'w0' switches signals 0 to program 'night' at t=300"):
        run_scenario(sc, tmp_path / "gw2", controllers=["actuated"], executor=pool)
    # a switch after the end does not touch the run: the controller starts from the WAUT's program
    short = scenario_from_dict({"duration_s": 290, "demand": {"sumocfg": str(cfg)}})
    run_scenario(short, tmp_path / "gw3", controllers=["max_pressure"], executor=pool)


@pytest.mark.slow
def test_a_scenario_that_switches_every_light_off_runs_static_only(tmp_path: Path) -> None:
    """DRT's configuration sets ``tls.all-off``: SUMO switches every light off whatever program
    is loaded, so a controller would control nothing; it is refused, naming the option."""
    sc = load_scenario(GAME / "DRT.sumocfg")
    prepared = prepare(sc, tmp_path, seeds=sc.seeds)
    assert [j.controller for j in make_jobs(prepared, tmp_path, controllers=["static"])] == ["static"]
    with pytest.raises(ScenarioError, match="tls.all-off"):
        make_jobs(prepared, tmp_path, controllers=["static", "max_pressure"])


@pytest.mark.slow
def test_actuated_keeps_a_city_programs_own_bounds(tmp_path: Path, pool: Executor) -> None:
    """A city program that is already actuated, with its own minDur/maxDur: greenwave's
    ``actuated`` runs it as it is, so its trips are the very trips of ``static``."""
    cfg = _rilsa(tmp_path)
    own = active_programs(cfg.parent / "rilsa1.net.xml", [cfg.parent / "rilsa1_tls.add.xml"])["0"]
    phases = "".join(
        f'<phase duration="{p.get("duration")}" state="{p.get("state")}"'
        + (' minDur="6" maxDur="55"' if "G" in (p.get("state") or "") else "") + "/>"
        for p in own.iter("phase")
    )
    (cfg.parent / "city.add.xml").write_text(
        f'<additional><tlLogic id="0" programID="city" type="actuated" offset="0">{phases}</tlLogic></additional>')
    cfg.write_text(cfg.read_text().replace("rilsa1_tls.add.xml", "rilsa1_tls.add.xml,city.add.xml"))
    files = [cfg.parent / "rilsa1_tls.add.xml", cfg.parent / "city.add.xml"]
    out = actuated_programs(cfg.parent / "rilsa1.net.xml", workdir=tmp_path / "act", program_files=files)
    bounds = [(p.get("minDur"), p.get("maxDur")) for p in ET.parse(out).getroot().iter("phase")
              if "G" in p.get("state", "")]
    assert bounds and set(bounds) == {("6", "55")}
    sc = scenario_from_dict({"duration_s": 900, "demand": {"sumocfg": str(cfg)}})
    summary = run_scenario(sc, tmp_path / "gw", controllers=["static", "actuated"], executor=pool)
    runs = tmp_path / "gw" / "runs"
    seed = SUMO_DEFAULT_SEED
    static, actuated = (_trips(runs / f"{c}_seed{seed}" / "tripinfo.xml") for c in ("static", "actuated"))
    assert static == actuated
    assert summary.mean_time_loss_s.nunique() == 1


# ------------------------------------------------------------------------------------------
# 4. what real scenarios carry, under every controller


def _features(tmp_path: Path) -> Path:
    cfg = _rilsa(tmp_path)
    for f in FEATURES.glob("*.xml"):
        shutil.copy(f, cfg.parent / f.name)
    (cfg.parent / "features.sumocfg").write_text("""<configuration>
    <input>
        <net-file value="rilsa1.net.xml"/>
        <route-files value="flows.rou.xml,features.rou.xml"/>
        <additional-files value="vtypes.add.xml,rilsa1_tls.add.xml,features.add.xml"/>
    </input>
    <time><end value="600"/></time>
    <output><summary-output value="summary.xml"/></output>
</configuration>
""")
    return cfg.parent / "features.sumocfg"


@pytest.mark.slow
def test_buses_stops_persons_bicycles_detectors_rerouters_parking_under_every_controller(
    tmp_path: Path, pool: Executor
) -> None:
    cfg = _features(tmp_path / "scenario")
    before = _listing(cfg.parent)
    sc = scenario_from_dict({"controllers": CONTROLLERS, "demand": {"sumocfg": str(cfg)}})
    summary = run_scenario(sc, tmp_path / "gw", executor=pool, check_safety=True)
    assert sorted(summary.controller) == sorted(CONTROLLERS)
    # netconvert's rebuilt design keeps no all-red where the network's programs keep one: the
    # monitor reports those (all-red only); every other controller shows nothing unsafe
    rebuilt = summary.controller.str.startswith("sumo-rebuilt-")
    assert (summary.safety_violations[~rebuilt] == 0).all(), summary[["controller", "safety_violations"]]
    for row in summary.itertuples():
        run = tmp_path / "gw" / "runs" / f"{row.controller}_seed{row.seed}"
        if row.controller.startswith("sumo-rebuilt-"):
            checked = json.loads((run / "transition_safety.json").read_text())
            assert set(checked["by_rule"]) <= {"all-red"}, (row.controller, checked["by_rule"])
        stats = _statistics(run / "statistics.xml")
        assert stats["persons"]["loaded"] == "1", row.controller
        trips = _trips(run / "tripinfo.xml")
        for prefix in ("bus_line_1.", "bikes.", "mixed.", "parkers."):
            assert any(t.startswith(prefix) for t in trips), (row.controller, prefix)
        outputs = run / "scenario_files" / "outputs"
        for name in ("det_e1.xml", "det_e2.xml", "edges.xml", "summary.xml"):
            assert (outputs / name).stat().st_size > 0, (row.controller, name)
    assert _listing(cfg.parent) == before  # the detectors wrote nothing beside the scenario


@pytest.mark.slow
def test_real_city_scenario_with_bicycles_pedestrian_crossings_and_its_own_program(
    tmp_path: Path, pool: Executor
) -> None:
    """Braunschweig's fokr_bs_demo: bicycles, pedestrians on signalised crossings, bus lanes and
    the city's signal plan (``signalPlan.add.xml``, a file whose root is the ``<tlLogic>``),
    under every controller for a minute. The city's plan gives ``G`` to links SUMO marks as
    foes, so greenwave's checks find conflicting greens at signal 38 under ``static`` already:
    controllers that switch stages leave it on that plan, and the planners keep it where SUMO
    finds their own plan no better (first, do no harm)."""
    cfg = GAME / "fokr_bs_demo.sumocfg"
    own = read_sumocfg(cfg)
    net = load_network(own.net_file, program_files=own.additional_files, begin_s=own.begin_s)
    assert net.signals["38"].default_program.id == "DLR_UT_v1-0-0"
    sc = scenario_from_dict({"duration_s": 60, "controllers": CONTROLLERS, "demand": {"sumocfg": str(cfg)}})
    planners = {"optimised", "adaptive", "coordinated"}
    # the planners design safe stages for 38, but SUMO finds them no better than the city's plan
    # in the proof runs: optimised keeps the city's plan, the centre does not take 38 over
    summary = run_scenario(sc, tmp_path / "gw", executor=pool, check_safety=True)
    assert sorted(summary.controller) == sorted(CONTROLLERS)
    rows = summary.set_index("controller")
    assert rows.loc["optimised", "proof_decision"] == "existing"
    assert all(rows.loc[c, "signals_untrusted"] >= 1 for c in planners - {"optimised"})
    assert (summary.vehicles_inserted > 0).all()
    for row in summary.itertuples():
        checked = json.loads((tmp_path / "gw" / "runs" / f"{row.controller}_seed{row.seed}"
                              / "transition_safety.json").read_text())
        assert {v["signal"] for v in checked["first"]} <= {"38"}, row.controller
    static = summary.set_index("controller").safety_violations
    assert static["static"] > 0  # the city's own plan, as SUMO runs it


def test_portable_sumocfg_leaves_out_the_games_hotkey_programs(tmp_path: Path) -> None:
    """SUMO's game configurations load hand-switched programs (``hotkeyAbort``, 10000 s greens):
    the portable copy leaves those files out and keeps the others, with absolute paths; an
    unreadable configuration gets a ScenarioError naming it."""
    from greenwave.scenarios.sumocfg import is_hotkey_program_file, portable_sumocfg

    game = sumo_home() / "tools" / "game"
    assert is_hotkey_program_file(game / "square" / "square.tll.xml")
    assert not is_hotkey_program_file(game / "square" / "square.rou.xml")
    assert not is_hotkey_program_file(tmp_path / "missing.xml")
    out = portable_sumocfg(game / "square.sumocfg", tmp_path / "square.sumocfg")
    adds = ET.parse(out).getroot().find("input/additional-files")
    assert adds is not None
    files = [Path(f) for f in adds.get("value", "").split(",")]
    assert [f.name for f in files] == ["square.poi.xml", "square.rou.xml", "input_additional.add.xml"]
    assert all(f.is_absolute() and f.exists() for f in files)
    assert ET.parse(out).getroot().find("gui_only") is None
    cfg = read_sumocfg(out)
    assert cfg.net_file == game / "square" / "square.net.xml"
    (tmp_path / "broken.sumocfg").write_text("<configuration><input>")
    with pytest.raises(ScenarioError, match="broken.sumocfg: SUMO cannot read this configuration"):
        portable_sumocfg(tmp_path / "broken.sumocfg", tmp_path / "out.sumocfg")
    # other routes given to a configuration without route files; a relative source
    routes = game / "grid6" / "grid6.rou.xml"
    out = portable_sumocfg(Path(os.path.relpath(game / "square.sumocfg")), tmp_path / "sub" / "sq.sumocfg",
                           routes=[routes])
    assert read_sumocfg(out).route_files == (routes,)
