"""Run a scenario: every controller × seed as one SUMO simulation, in parallel worker processes.

Work goes through a standard :class:`concurrent.futures.Executor` (local processes by default),
so a distributed executor (Dask's ``Client.get_executor()``, for example) can take over
unchanged. Each finished run is added to ``summary.csv`` and ``intersections.csv`` at once and
atomically: an interrupted run keeps the rows already finished.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from greenwave.controllers.base import Controller, controller_kind, make_controller, summary_defaults
from greenwave.engine.addons import RunAddon
from greenwave.engine.jobloop import ProcessExecutor, run_jobs
from greenwave.engine.results import (
    ResultTables,
    edge_data,
    paired_t_margin,
    rows_frame,
    statistic_kpis,
    trip_kpis,
    write_text_atomic,
)
from greenwave.engine.run import RunSpec
from greenwave.engine.session import SessionConfig, SumoSession, console_to
from greenwave.errors import ScenarioError, SimulationError
from greenwave.networks import generate, load_network
from greenwave.networks.program_files import program_files, read_program_files
from greenwave.scenarios.addons import SAFETY_ADDON, make_addon
from greenwave.scenarios.demand import generate_routes
from greenwave.scenarios.spec import Scenario
from greenwave.scenarios.sumocfg import demand_files, localise_additional

RUN_COLUMNS = [
    "scenario", "controller", "seed",
    "vehicles_inserted", "vehicles_arrived", "vehicles_unfinished",
    "mean_travel_time_s", "mean_time_loss_s", "mean_waiting_time_s", "mean_depart_delay_s",
    "resco_delay_s", "teleports", "sim_wall_s",
]
"""The columns every run's summary row starts with, whatever its controller."""


def summary_columns() -> list[str]:
    """The documented columns of ``summary.csv``, in order: :data:`RUN_COLUMNS`, the KPI columns
    that controllers give every run (:func:`greenwave.controllers.base.summary_defaults`), then
    ``status`` and ``error``; add-ons' and controllers' other KPI columns follow them."""
    return [*RUN_COLUMNS, *summary_defaults(), "status", "error"]

INTERSECTION_COLUMNS = [
    "scenario", "controller", "seed", "signal", "approach_edge", "lanes",
    "vehicles_entered", "mean_queue_veh", "max_queue_veh", "mean_delay_s", "total_delay_veh_s",
]


@dataclass(frozen=True)
class PreparedScenario:
    """A scenario made concrete: network built, demand routed per seed, approaches known."""

    scenario: Scenario
    net_file: Path
    routes_by_seed: dict[int, tuple[Path, ...]]
    additional_files: tuple[Path, ...]
    approaches: dict[str, dict[str, int]]  # signal → approach edge → lanes
    begin_s: float
    end_s: float
    program_files: tuple[Path, ...] = ()
    """The additional files that bring signal programs or WAUTs, in load order."""
    demand_files_by_seed: dict[int, tuple[Path, ...]] = field(default_factory=dict)
    """Per seed, the files holding demand or vehicle types, in SUMO's load order (what greenwave's
    analyses read; additional files with routes or types come first)."""


@dataclass
class JobResult:
    """The KPIs of one finished simulation."""

    job: RunSpec
    summary: dict[str, Any]
    intersections: list[dict[str, Any]]


def build_network(scenario: Scenario, out_dir: Path) -> Path:
    """The scenario's ``.net.xml``: the given file, an OSM import, or a generated network."""
    spec = scenario.network
    if spec.kind == "file":
        assert spec.path is not None
        return spec.path
    out = out_dir / f"{scenario.name}.net.xml"
    out_dir.mkdir(parents=True, exist_ok=True)
    if spec.kind == "osm":
        assert spec.path is not None
        return generate.import_osm(spec.path, out)
    gens: dict[str, Callable[..., Path]] = {"grid": generate.grid_network, "arterial": generate.arterial_network}
    return gens[spec.kind](out, **dict(spec.params))


def prepare(scenario: Scenario, output_dir: Path, *, seeds: Sequence[int] | None = None) -> PreparedScenario:
    """Build the network, route the demand for each seed and find every signal's approaches."""
    output_dir = Path(output_dir).resolve()

    net_file = build_network(scenario, output_dir / "network")
    network = load_network(net_file, saturation_flow_per_lane=scenario.network.saturation_flow_per_lane)
    demand = scenario.demand
    begin = scenario.begin_s if demand.begin_s is None else demand.begin_s
    end = scenario.end_s if demand.end_s is None else demand.end_s
    routes: dict[int, tuple[Path, ...]] = {}
    analysed: dict[int, tuple[Path, ...]] = {}
    scenario_demand = demand_files(demand.additional_files, ())  # scanned once
    for seed in seeds or scenario.seeds:
        if demand.uses_flows:
            routes[seed] = (
                generate_routes(net_file, demand, begin_s=begin, end_s=end, seed=seed,
                                out_dir=output_dir / "demand"),
            )
        else:
            routes[seed] = demand.route_files
        analysed[seed] = (*scenario_demand, *routes[seed])
    approaches: dict[str, dict[str, int]] = {}
    for sid, sig in network.signals.items():
        lanes: dict[str, set[str]] = {}
        for link in sig.movements:
            for mv in (link, *link.merged):
                if mv.is_used and not mv.is_pedestrian:
                    lanes.setdefault(mv.from_edge, set()).add(mv.from_lane)
        approaches[sid] = {e: len(ls) for e, ls in sorted(lanes.items())}
    return PreparedScenario(
        scenario=scenario,
        net_file=net_file,
        routes_by_seed=routes,
        additional_files=demand.additional_files,
        approaches=approaches,
        begin_s=begin,
        end_s=end,
        program_files=program_files(demand.additional_files),
        demand_files_by_seed=analysed,
    )


def make_jobs(
    prepared: PreparedScenario,
    output_dir: Path,
    *,
    controllers: Sequence[str] | None = None,
    gui: bool = False,
    check_safety: bool = False,
) -> list[RunSpec]:
    """One run per controller × seed (``check_safety``: each with the transition safety monitor
    among its add-ons, see :func:`run_job`)."""
    sc = prepared.scenario
    addons = {a: dict(o) for a, o in sc.addons.items()}
    if check_safety:
        addons[SAFETY_ADDON] = {}
    jobs = []
    for name in controllers or sc.controllers:
        make_controller(name)  # unknown names fail here, before anything runs
        if name != "static":
            check_takeover(prepared, name)
        for seed, routes in prepared.routes_by_seed.items():
            jobs.append(
                RunSpec(
                    scenario=sc.name,
                    controller=name,
                    seed=seed,
                    net_file=prepared.net_file,
                    workdir=output_dir / "runs" / f"{name}_seed{seed}",
                    begin_s=sc.begin_s,
                    end_s=sc.end_s,
                    step_length_s=sc.step_length_s,
                    time_to_teleport_s=sc.time_to_teleport_s,
                    route_files=routes,
                    demand_files=prepared.demand_files_by_seed.get(seed, routes),
                    additional_files=prepared.additional_files,
                    program_files=prepared.program_files,
                    demand_begin_s=prepared.begin_s,
                    demand_end_s=prepared.end_s,
                    options=dict(sc.controller_options.get(name, {})),
                    addons={a: dict(o) for a, o in addons.items()},
                    communication=sc.communication,
                    sumo_config=sc.demand.sumo_config,
                    approaches=prepared.approaches,
                    gui=gui,
                )
            )
    return jobs


def run_job(job: RunSpec) -> JobResult:
    """Run one simulation to the end and compute its KPIs (in whatever process calls it).

    The controller and every add-on of the run (:mod:`greenwave.scenarios.addons`) see the run
    with the scenario's additional files as this run loads them. The transition safety add-on
    (``check_safety`` of :func:`make_jobs`) reads what every signal shows after each step (after
    the controller acted) and checks conflicting greens, yellow, minimum green and all-red; the
    run writes ``transition_safety.json`` and the summary gains ``safety_violations`` and
    ``signal_changes``.
    """

    work = job.workdir
    work.mkdir(parents=True, exist_ok=True)
    controller = make_controller(job.controller, job.options)
    # the scenario's own files first, in its order (SUMO: additional files, then routes); files
    # that declare outputs are loaded as copies writing into this run's folder
    scenario_adds = tuple(localise_additional(job.additional_files, work / "scenario_files"))
    run = replace(job, additional_files=scenario_adds)
    extra_adds = controller.prepare(run)
    addons = [make_addon(a, o) for a, o in job.addons.items()]
    addon_inputs = [addon.prepare(run) for addon in addons]
    addon_routes = tuple(p for i in addon_inputs for p in i.route_files)
    addon_adds = tuple(p for i in addon_inputs for p in i.additional_files)
    addon_args = tuple(a for i in addon_inputs for a in i.extra_args)
    approach_edges = sorted({e for per in job.approaches.values() for e in per})
    edgedata_add = work / "approaches.add.xml"
    edgedata_out = work / "approaches.edgedata.xml"
    # a network without signals has no approaches: SUMO refuses an edgeData with edges="" (it
    # would mean every edge), so the file then holds no edgeData at all
    write_text_atomic(
        f'<additional>\n  <edgeData id="gw_approaches" file="{edgedata_out}" '
        f'edges="{" ".join(approach_edges)}" excludeEmpty="false"/>\n</additional>\n'
        if approach_edges else "<additional/>\n",
        edgedata_add,
    )
    tripinfo, stats = work / "tripinfo.xml", work / "statistics.xml"
    cfg_args = () if job.sumo_config is None else job.sumo_config.sumo_args(
        work / "scenario_files" / "outputs", gui=job.gui)
    if job.sumo_config is not None and job.sumo_config.outputs:
        (work / "scenario_files" / "outputs").mkdir(parents=True, exist_ok=True)
    config = run.session_config(
        route_files=(*job.route_files, *addon_routes),
        # a network without signals has no approaches (SUMO refuses an edgeData without edges)
        additional_files=(*scenario_adds, *extra_adds, *addon_adds, *([edgedata_add] if approach_edges else [])),
        outputs={"tripinfo-output": tripinfo, "statistic-output": stats},
        extra_args=(
            *cfg_args,
            "--tripinfo-output.write-unfinished", "true",
            "--tripinfo-output.write-undeparted", "true",
            *addon_args,
        ),
        log_file=work / "sumo.log",
    )
    max_queue = dict.fromkeys(approach_edges, 0.0)
    t0 = time.perf_counter()
    console = None if job.gui else work / "sumo.console.log"
    with _console_said(console):
        return _simulate(run, controller, addons, config, approach_edges, edgedata_out, tripinfo, stats,
                         max_queue, console, t0)


@contextmanager
def _console_said(console: Path | None) -> Iterator[None]:
    """A SUMO failure carries what SUMO printed on its console (libsumo writes its errors there,
    not to the log): the tail of ``console`` joins the error's message."""
    try:
        yield
    except SimulationError as exc:
        tail = ""
        if console is not None and console.is_file():
            tail = console.read_text(errors="replace").strip()[-2000:]
        if tail and tail not in str(exc):
            raise SimulationError(f"{exc}\nSUMO's console ({console}):\n{tail}") from exc
        raise


def _simulate(run: RunSpec, controller: Controller, addons: list[RunAddon], config: SessionConfig,
              approach_edges: list[str], edgedata_out: Path, tripinfo: Path, stats: Path,
              max_queue: dict[str, float], console: Path | None, t0: float) -> JobResult:
    """The simulation of :func:`run_job` and its KPIs."""
    from traci import constants as tc

    # SUMO's warnings (teleports, emergency braking) go to this run's log, not the console
    with console_to(console), SumoSession(config) as sim:
        for edge in approach_edges:
            sim.conn.edge.subscribe(edge, [tc.LAST_STEP_VEHICLE_HALTING_NUMBER])
        controller.start(sim)
        for addon in addons:
            addon.start(sim)
        for _ in sim.steps():
            controller.step(sim)
            for addon in addons:
                addon.step(sim)
            for edge, res in sim.conn.edge.getAllSubscriptionResults().items():
                q = res[tc.LAST_STEP_VEHICLE_HALTING_NUMBER]
                if q > max_queue[edge]:
                    max_queue[edge] = q
    wall = time.perf_counter() - t0

    summary: dict[str, Any] = {"scenario": run.scenario, "controller": run.controller, "seed": run.seed}
    summary.update(trip_kpis(tripinfo, end_s=run.end_s))
    summary.update(statistic_kpis(stats))
    summary["sim_wall_s"] = wall
    summary.update(summary_defaults())  # KPI columns of other controllers: what this one reports
    summary.update(controller.finish(run))
    for addon in addons:
        summary.update(addon.finish(run))
    duration = run.end_s - run.begin_s
    data = edge_data(edgedata_out) if approach_edges else {}
    inter = []
    for sid, per in sorted(run.approaches.items()):
        for edge, lanes in per.items():
            d = data.get(edge, {})
            entered = d.get("entered", 0.0) + d.get("departed", 0.0)
            loss = d.get("timeLoss", 0.0)
            inter.append({
                "scenario": run.scenario, "controller": run.controller, "seed": run.seed,
                "signal": sid, "approach_edge": edge, "lanes": lanes,
                "vehicles_entered": int(entered),
                "mean_queue_veh": d.get("waitingTime", 0.0) / duration,
                "max_queue_veh": max_queue.get(edge, 0.0),
                "mean_delay_s": loss / entered if entered else 0.0,
                "total_delay_veh_s": loss,
            })
    return JobResult(job=run, summary=summary, intersections=inter)


def check_takeover(prepared: PreparedScenario, controller: str) -> None:
    """Refuse, with a clear error, a controller other than ``static`` on a scenario whose own
    signal switching would overrule it: ``tls.all-off`` (SUMO switches every light off) or a
    WAUT that switches programs during the run (SUMO would switch away from the controller's
    programs at that time)."""
    sc = prepared.scenario
    cfg = sc.demand.sumo_config
    if cfg is not None and cfg.tls_all_off:
        raise ScenarioError(
            f"{cfg.path}: tls.all-off switches every traffic light off, so controller "
            f"{controller!r} would control nothing; run it with 'static' only or remove tls.all-off"
        )
    if not prepared.program_files:
        return
    for waut in read_program_files(prepared.program_files).wauts:
        switches = waut.switches_between(sc.begin_s, sc.end_s)
        if switches and waut.signals:
            t, to = switches[0]
            raise ScenarioError(
                f"WAUT {waut.id!r} switches signals {', '.join(waut.signals)} to program {to!r} at "
                f"t={t:g} s, inside the run ({sc.begin_s:g}-{sc.end_s:g} s); controller "
                f"{controller!r} cannot take over signals whose programs the scenario switches "
                "during the run (not supported): run 'static', or end the run before the switch"
            )


def default_executor(jobs: int) -> Executor:
    """Local worker processes: each run in a fresh process (its own libsumo), at most ``jobs``
    at a time, forked from a server that has imported this module once; see
    :class:`~greenwave.engine.jobloop.ProcessExecutor`."""
    return ProcessExecutor(max(1, jobs), preload=(run_job.__module__,))


def output_folder(output_dir: Path, files: Sequence[str] = ()) -> Path:
    """``output_dir`` made absolute and created, checked before anything runs: a file where the
    folder should be, a folder that cannot be created, or one of ``files`` (results written
    there) being a folder is a :class:`ScenarioError` naming the path."""
    out = Path(output_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ScenarioError(f"output folder {out}: is a file, expected a folder (give another --output)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScenarioError(f"output folder {out}: cannot be created: {exc.strerror or exc}") from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise ScenarioError(f"output folder {out}: not writable (give another --output)")
    for name in files:
        if (out / name).is_dir():
            raise ScenarioError(f"{out / name}: is a folder, but greenwave writes this result file there; "
                                "move the folder away or give another --output")
    return out


def failed_row(job: RunSpec, message: str) -> dict[str, Any]:
    """The summary row of a run that failed: what ran, ``status`` failed and the error."""
    return {"scenario": job.scenario, "controller": job.controller, "seed": job.seed,
            "status": "failed", "error": message}


def run_scenario(
    scenario: Scenario,
    output_dir: Path,
    *,
    controllers: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    jobs: int = 1,
    executor: Executor | None = None,
    gui: bool = False,
    progress: Callable[[str], None] | None = None,
    check_safety: bool = False,
) -> pd.DataFrame:
    """Run every controller × seed and return the summary table (also in ``output_dir``).

    ``executor`` may be any :class:`concurrent.futures.Executor`; by default local worker
    processes, ``jobs`` at a time (:func:`default_executor`). With ``gui`` the runs go one after
    another in this process, through TraCI and sumo-gui. ``check_safety`` watches every run's
    signal transitions (:func:`run_job`).

    Runs go through :func:`greenwave.engine.jobloop.run_jobs`: a run that fails (any exception)
    is a row with ``status`` ``failed`` and its ``error``, the others go on; a killed worker's run
    is run once more; on an interrupt every finished run is in ``summary.csv`` before it is
    raised again. Failed runs raise :class:`ScenarioError` at the end (their rows written).
    """
    say = progress or (lambda _msg: None)
    # SUMO reads paths in additional files relative to them: absolute paths throughout
    output_dir = output_folder(output_dir, ("summary.csv", "intersections.csv"))
    if seeds is not None:
        scenario = replace(scenario, seeds=tuple(seeds))
    t0 = time.perf_counter()
    prepared = prepare(scenario, output_dir)
    job_list = make_jobs(prepared, output_dir, controllers=controllers, gui=gui, check_safety=check_safety)
    running = {j.controller for j in job_list}
    unused = sorted(set(scenario.controller_options) - running)
    if unused:
        say(f"{scenario.name}: controller_options for {', '.join(unused)} not used: "
            f"{'that controller does' if len(unused) == 1 else 'those controllers do'} not run")
    cfg = scenario.demand.sumo_config
    if cfg is not None and cfg.ignored:
        say(f"{cfg.path.name}: not passed to SUMO (no effect on the runs): "
            + "; ".join(f"{name} ({why})" for name, why in cfg.ignored))
    say(f"{scenario.name}: {len(prepared.approaches)} signals, {len(job_list)} runs "
        f"({len(running)} controllers × {len(prepared.routes_by_seed)} seeds), "
        f"prepared in {time.perf_counter() - t0:.1f} s")
    summary_rows: list[dict[str, Any]] = []
    inter_rows: list[dict[str, Any]] = []
    tables = ResultTables()
    key = ["controller", "seed"]

    columns = summary_columns()

    def write() -> None:
        tables.write(rows_frame(summary_rows, columns).sort_values(key), output_dir / "summary.csv")
        tables.write(rows_frame(inter_rows, INTERSECTION_COLUMNS).sort_values(key + ["signal", "approach_edge"]),
                     output_dir / "intersections.csv")

    def record(_job: RunSpec, result: JobResult) -> str:
        summary_rows.append({**result.summary, "status": "ok", "error": ""})
        inter_rows.extend(result.intersections)
        write()
        s = result.summary
        return (f"time loss {s['mean_time_loss_s']:.1f} s/veh, {s['vehicles_arrived']} arrived, "
                f"{s['vehicles_unfinished']} unfinished, {s['sim_wall_s']:.1f} s")

    def record_failure(job: RunSpec, message: str) -> None:
        summary_rows.append(failed_row(job, message))
        write()

    try:
        failures = run_jobs(job_list, run_job, on_result=record, on_failure=record_failure,
                            describe=lambda j: f"{j.controller} seed {j.seed}", say=say, workers=jobs,
                            executor=executor, inline=gui, preload=(run_job.__module__,))
    except KeyboardInterrupt:
        done = sum(r.get("status") == "ok" for r in summary_rows)
        say(f"{scenario.name}: interrupted; {done} finished run(s) of {len(job_list)} are in "
            f"{output_dir / 'summary.csv'}")
        for line in tables.rescue():
            say(line)
        raise
    rescued = tables.rescue()
    if rescued:
        raise ScenarioError("results could not be written where they belong:\n" + "\n".join(rescued))
    if failures:
        raise ScenarioError(
            f"{len(failures)} of {len(job_list)} runs failed (every run is a row of "
            f"{output_dir / 'summary.csv'}, the failed ones with status 'failed'):\n"
            + "\n".join(f"{j.controller} seed {j.seed}: {m}" for j, m in failures)
        )
    return rows_frame(summary_rows, columns).sort_values(key).reset_index(drop=True)


#: Two-sided level of the interval around each controller's ratio to the best baseline.
RATIO_LEVEL = 0.90


def paired_ratio_interval(ours: pd.Series, base: pd.Series, level: float = RATIO_LEVEL) -> tuple[float, float]:
    """The ``level`` confidence interval of mean(``ours``) / mean(``base``) from the seeds both
    ran (indexed by seed), paired per seed: the Student-t interval of the mean difference, over
    the base's mean (its lower end not below 0). NaN, NaN with fewer than two seeds, where the
    two ran on different seeds (a failed run: the ratio's means are then over other seeds) or
    where the base's mean is not positive. An interval that holds 1 is a
    difference the seeds cannot tell from none (fkk_in, one hour, 20 seeds: SUMO's actuated and
    fixed-time programs differ by 127 ± 63 s/veh on a mean of 459)."""
    common = ours.index.intersection(base.index)
    if len(common) < 2 or len(common) != len(ours) or len(common) != len(base) or not common.is_unique:
        return math.nan, math.nan  # the ratio's means were taken over other seeds than a pairing has
    mean_d, half = paired_t_margin((ours[common] - base[common]).astype(float).tolist(), 0.5 + level / 2)
    mean_b = float(base[common].mean())
    if not mean_b > 0 or not math.isfinite(half):
        return math.nan, math.nan
    return max(0.0, (mean_b + mean_d - half) / mean_b), (mean_b + mean_d + half) / mean_b


def comparison_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per controller, lowest RESCO delay first, against the best baseline.

    ``kind`` is the controller's kind (``baseline`` or ``greenwave``); ``vs_best_baseline`` is
    the controller's mean ``resco_delay_s`` divided by that of the baseline with the lowest one
    (NaN when no baseline ran), and ``best_baseline`` marks that baseline with ``*``. With two
    or more seeds ``vs_best_low`` and ``vs_best_high`` bound that ratio
    (:func:`paired_ratio_interval`, :data:`RATIO_LEVEL`): the best of several baselines is
    partly the luckiest, and gridlocking demand scatters a controller's delay from seed to seed.
    """
    cols = ["mean_travel_time_s", "mean_time_loss_s", "mean_waiting_time_s", "resco_delay_s",
            "vehicles_arrived", "vehicles_unfinished", "teleports", "sim_wall_s"]
    if "status" in summary:
        summary = summary[summary["status"].fillna("ok") == "ok"]
    table = summary.groupby("controller")[cols].mean().sort_values(["resco_delay_s", "mean_time_loss_s"])
    table.insert(0, "seeds", summary.groupby("controller")["seed"].count())
    table.insert(0, "kind", [controller_kind(c) for c in table.index])
    baselines = table[table["kind"] == "baseline"]["resco_delay_s"]
    best = baselines.idxmin() if len(baselines) else None
    table["vs_best_baseline"] = table["resco_delay_s"] / baselines.min() if best is not None else float("nan")
    table["best_baseline"] = ["*" if c == best else "" for c in table.index]
    delays = {c: d.set_index("seed")["resco_delay_s"].dropna() for c, d in summary.groupby("controller")}
    bounds = [paired_ratio_interval(delays[c], delays[best]) if best is not None else (math.nan, math.nan)
              for c in table.index]
    table["vs_best_low"] = [lo for lo, _ in bounds]
    table["vs_best_high"] = [hi for _, hi in bounds]
    if "safety_violations" in summary:  # a count: the total over seeds, not a mean
        table["safety_violations"] = summary.groupby("controller")["safety_violations"].sum()
    return table
