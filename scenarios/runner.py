"""Run a scenario: every controller × seed as one SUMO simulation, in parallel worker processes.

Work goes through a standard :class:`concurrent.futures.Executor` (local processes by default),
so a distributed executor (Dask's ``Client.get_executor()``, for example) can take over
unchanged. Each finished run is added to ``summary.csv`` and ``intersections.csv`` at once and
atomically: an interrupted run keeps the rows already finished.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from greenwave.controllers.base import RunContext, make_controller
from greenwave.engine.addons import make_addon
from greenwave.engine.results import (
    edge_data,
    rows_frame,
    statistic_kpis,
    trip_kpis,
    write_table_atomic,
    write_text_atomic,
)
from greenwave.engine.session import SessionConfig, SumoSession, ignore_sigint_in_worker
from greenwave.errors import GreenwaveError, ScenarioError
from greenwave.scenarios.spec import Scenario

if TYPE_CHECKING:
    from greenwave.controllers.transition_safety import TransitionMonitor

SUMMARY_COLUMNS = [
    "scenario", "controller", "seed",
    "vehicles_inserted", "vehicles_arrived", "vehicles_unfinished",
    "mean_travel_time_s", "mean_time_loss_s", "mean_waiting_time_s", "mean_depart_delay_s",
    "resco_delay_s", "teleports", "sim_wall_s",
    "coordinated_control_rate_mean", "coordinated_control_rate_min",
]
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


@dataclass(frozen=True)
class Job:
    """One simulation: a controller on a seed. Picklable, so it can go to any executor."""

    scenario: str
    controller: str
    seed: int
    net_file: Path
    route_files: tuple[Path, ...]
    additional_files: tuple[Path, ...]
    begin_s: float
    end_s: float
    step_length_s: float
    time_to_teleport_s: float
    workdir: Path
    demand_begin_s: float
    demand_end_s: float
    approaches: dict[str, dict[str, int]]
    options: dict[str, Any] = field(default_factory=dict)
    gui: bool = False
    addons: dict[str, dict[str, Any]] = field(default_factory=dict)
    communication: Any = None
    check_safety: bool = False


@dataclass
class JobResult:
    """The KPIs of one finished simulation."""

    job: Job
    summary: dict[str, Any]
    intersections: list[dict[str, Any]]


def build_network(scenario: Scenario, out_dir: Path) -> Path:
    """The scenario's ``.net.xml``: the given file, an OSM import, or a generated network."""
    spec = scenario.network
    if spec.kind == "file":
        assert spec.path is not None
        return spec.path
    from greenwave.networks import generate

    out = out_dir / f"{scenario.name}.net.xml"
    out_dir.mkdir(parents=True, exist_ok=True)
    if spec.kind == "osm":
        assert spec.path is not None
        return generate.import_osm(spec.path, out)
    gens = {"grid": generate.grid_network, "arterial": generate.arterial_network}
    return gens[spec.kind](out, **dict(spec.params))


def prepare(scenario: Scenario, output_dir: Path, *, seeds: Sequence[int] | None = None) -> PreparedScenario:
    """Build the network, route the demand for each seed and find every signal's approaches."""
    from greenwave.networks import load_network
    from greenwave.scenarios.demand import generate_routes

    output_dir = Path(output_dir).resolve()

    net_file = build_network(scenario, output_dir / "network")
    network = load_network(net_file, saturation_flow_per_lane=scenario.network.saturation_flow_per_lane)
    demand = scenario.demand
    begin = scenario.begin_s if demand.begin_s is None else demand.begin_s
    end = scenario.end_s if demand.end_s is None else demand.end_s
    routes: dict[int, tuple[Path, ...]] = {}
    for seed in seeds or scenario.seeds:
        if demand.uses_flows:
            routes[seed] = (
                generate_routes(net_file, demand, begin_s=begin, end_s=end, seed=seed,
                                out_dir=output_dir / "demand"),
            )
        else:
            routes[seed] = demand.route_files
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
    )


def make_jobs(
    prepared: PreparedScenario,
    output_dir: Path,
    *,
    controllers: Sequence[str] | None = None,
    gui: bool = False,
    check_safety: bool = False,
) -> list[Job]:
    """One job per controller × seed (``check_safety``: watch every signal's transitions, see
    :func:`run_job`)."""
    sc = prepared.scenario
    jobs = []
    for name in controllers or sc.controllers:
        make_controller(name)  # unknown names fail here, before anything runs
        for seed, routes in prepared.routes_by_seed.items():
            jobs.append(
                Job(
                    scenario=sc.name,
                    controller=name,
                    seed=seed,
                    net_file=prepared.net_file,
                    route_files=routes,
                    additional_files=prepared.additional_files,
                    begin_s=sc.begin_s,
                    end_s=sc.end_s,
                    step_length_s=sc.step_length_s,
                    time_to_teleport_s=sc.time_to_teleport_s,
                    workdir=output_dir / "runs" / f"{name}_seed{seed}",
                    demand_begin_s=prepared.begin_s,
                    demand_end_s=prepared.end_s,
                    approaches=prepared.approaches,
                    options=dict(sc.controller_options.get(name, {})),
                    gui=gui,
                    addons={a: dict(o) for a, o in sc.addons.items()},
                    communication=sc.communication,
                    check_safety=check_safety,
                )
            )
    return jobs


def run_job(job: Job) -> JobResult:
    """Run one simulation to the end and compute its KPIs (in whatever process calls it).

    With ``job.check_safety`` a :class:`~greenwave.controllers.transition_safety.TransitionMonitor`
    reads what every signal shows after each step (after the controller acted) and checks
    conflicting greens, yellow, minimum green and all-red; the run writes
    ``transition_safety.json`` and the summary gains ``safety_violations`` and ``signal_changes``.
    """
    from traci import constants as tc

    work = job.workdir
    work.mkdir(parents=True, exist_ok=True)
    controller = make_controller(job.controller, job.options)
    ctx = RunContext(
        scenario=job.scenario, net_file=job.net_file, route_files=job.route_files,
        begin_s=job.begin_s, end_s=job.end_s, seed=job.seed, workdir=work, options=job.options,
        demand_begin_s=job.demand_begin_s, demand_end_s=job.demand_end_s,
        communication=job.communication,
    )
    extra_adds = controller.prepare(ctx)
    addons = [make_addon(a, o) for a, o in job.addons.items()]
    addon_inputs = [addon.prepare(ctx) for addon in addons]
    addon_routes = tuple(p for i in addon_inputs for p in i.route_files)
    addon_adds = tuple(p for i in addon_inputs for p in i.additional_files)
    addon_args = tuple(a for i in addon_inputs for a in i.extra_args)
    approach_edges = sorted({e for per in job.approaches.values() for e in per})
    edgedata_add = work / "approaches.add.xml"
    edgedata_out = work / "approaches.edgedata.xml"
    write_text_atomic(
        f'<additional>\n  <edgeData id="gw_approaches" file="{edgedata_out}" '
        f'edges="{" ".join(approach_edges)}" excludeEmpty="false"/>\n</additional>\n',
        edgedata_add,
    )
    tripinfo, stats = work / "tripinfo.xml", work / "statistics.xml"
    config = SessionConfig(
        net_file=job.net_file,
        route_files=(*job.route_files, *addon_routes),
        additional_files=(*job.additional_files, *extra_adds, *addon_adds, edgedata_add),
        begin_s=job.begin_s,
        end_s=job.end_s,
        step_length_s=job.step_length_s,
        seed=job.seed,
        time_to_teleport_s=job.time_to_teleport_s,
        outputs={"tripinfo-output": tripinfo, "statistic-output": stats},
        extra_args=(
            "--tripinfo-output.write-unfinished", "true",
            "--tripinfo-output.write-undeparted", "true",
            *addon_args,
        ),
        gui=job.gui,
        log_file=work / "sumo.log",
    )
    max_queue = dict.fromkeys(approach_edges, 0.0)
    t0 = time.perf_counter()
    # SUMO's warnings (teleports, emergency braking) go to this run's log, not the console
    with _console_to(None if job.gui else work / "sumo.console.log"), SumoSession(config) as sim:
        for edge in approach_edges:
            sim.conn.edge.subscribe(edge, [tc.LAST_STEP_VEHICLE_HALTING_NUMBER])
        controller.start(sim)
        for addon in addons:
            addon.start(sim)
        monitor = _safety_monitor(job, sim)
        for _ in sim.steps():
            controller.step(sim)
            for addon in addons:
                addon.step(sim)
            if monitor is not None:
                monitor.record(sim)
            for edge, res in sim.conn.edge.getAllSubscriptionResults().items():
                q = res[tc.LAST_STEP_VEHICLE_HALTING_NUMBER]
                if q > max_queue[edge]:
                    max_queue[edge] = q
    wall = time.perf_counter() - t0

    summary: dict[str, Any] = {"scenario": job.scenario, "controller": job.controller, "seed": job.seed}
    summary.update(trip_kpis(tripinfo, end_s=job.end_s))
    summary.update(statistic_kpis(stats))
    summary["sim_wall_s"] = wall
    # controllers without a networked centre (fixed plans, local actuation) report no rate:
    # none of their signals is under central coordinated control, so the rate is 0
    summary.update({"coordinated_control_rate_mean": 0.0, "coordinated_control_rate_min": 0.0})
    summary.update(controller.finish(ctx))
    for addon in addons:
        summary.update(addon.finish(ctx))
    if monitor is not None:
        checked = monitor.summary()
        write_text_atomic(json.dumps(checked, indent=1), work / "transition_safety.json")
        summary.update({"safety_violations": checked["violations"], "signal_changes": checked["changes"]})
    duration = job.end_s - job.begin_s
    data = edge_data(edgedata_out)
    inter = []
    for sid, per in sorted(job.approaches.items()):
        for edge, lanes in per.items():
            d = data.get(edge, {})
            entered = d.get("entered", 0.0) + d.get("departed", 0.0)
            loss = d.get("timeLoss", 0.0)
            inter.append({
                "scenario": job.scenario, "controller": job.controller, "seed": job.seed,
                "signal": sid, "approach_edge": edge, "lanes": lanes,
                "vehicles_entered": int(entered),
                "mean_queue_veh": d.get("waitingTime", 0.0) / duration,
                "max_queue_veh": max_queue.get(edge, 0.0),
                "mean_delay_s": loss / entered if entered else 0.0,
                "total_delay_veh_s": loss,
            })
    return JobResult(job=job, summary=summary, intersections=inter)


def _safety_monitor(job: Job, sim: SumoSession) -> TransitionMonitor | None:
    """A started transition monitor for every signal of the run's network, if the job asks."""
    if not job.check_safety:
        return None
    from greenwave.controllers.transition_safety import TransitionMonitor
    from greenwave.networks import load_network

    monitor = TransitionMonitor(load_network(job.net_file))
    monitor.start(sim)
    return monitor


@contextmanager
def _console_to(path: Path | None) -> Iterator[None]:
    """Send this process's C-level stderr (where libsumo prints) to ``path`` for a while."""
    if path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "ab") as fh:
            os.dup2(fh.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def default_executor(jobs: int) -> Executor:
    """Local worker processes (spawned, so each has its own libsumo)."""
    return ProcessPoolExecutor(
        max_workers=max(1, jobs),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=ignore_sigint_in_worker,
    )


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

    ``executor`` may be any :class:`concurrent.futures.Executor`; by default a local process
    pool of ``jobs`` workers. With ``gui`` the runs go one after another in this process,
    through TraCI and sumo-gui. ``check_safety`` watches every run's signal transitions
    (:func:`run_job`).
    """
    say = progress or (lambda _msg: None)
    output_dir = Path(output_dir).resolve()  # SUMO reads paths in additional files relative to them
    output_dir.mkdir(parents=True, exist_ok=True)
    if seeds is not None:
        scenario = replace(scenario, seeds=tuple(seeds))
    t0 = time.perf_counter()
    prepared = prepare(scenario, output_dir)
    job_list = make_jobs(prepared, output_dir, controllers=controllers, gui=gui, check_safety=check_safety)
    say(f"{scenario.name}: {len(prepared.approaches)} signals, {len(job_list)} runs "
        f"({len(set(j.controller for j in job_list))} controllers × {len(prepared.routes_by_seed)} seeds), "
        f"prepared in {time.perf_counter() - t0:.1f} s")
    summary_rows: list[dict[str, Any]] = []
    inter_rows: list[dict[str, Any]] = []
    failures: list[str] = []

    def record(result: JobResult) -> None:
        summary_rows.append(result.summary)
        inter_rows.extend(result.intersections)
        key = ["controller", "seed"]
        write_table_atomic(rows_frame(summary_rows, SUMMARY_COLUMNS).sort_values(key), output_dir / "summary.csv")
        write_table_atomic(
            rows_frame(inter_rows, INTERSECTION_COLUMNS).sort_values(key + ["signal", "approach_edge"]),
            output_dir / "intersections.csv",
        )

    def describe(job: Job) -> str:
        return f"{job.controller} seed {job.seed}"

    if gui:
        for i, job in enumerate(job_list, 1):
            record(run_job(job))
            say(f"[{i}/{len(job_list)}] {describe(job)} done")
    else:
        own = executor is None
        pool = executor or default_executor(jobs)
        futures: dict[Future[JobResult], Job] = {}
        try:
            futures = {pool.submit(run_job, job): job for job in job_list}
            for done, fut in enumerate(as_completed(futures), 1):
                job = futures[fut]
                try:
                    result = fut.result()
                except GreenwaveError as exc:
                    failures.append(f"{describe(job)}: {exc}")
                    say(f"[{done}/{len(job_list)}] {describe(job)} FAILED: {exc}")
                    continue
                record(result)
                s = result.summary
                say(f"[{done}/{len(job_list)}] {describe(job)}: time loss {s['mean_time_loss_s']:.1f} s/veh, "
                    f"{s['vehicles_arrived']} arrived, {s['vehicles_unfinished']} unfinished, "
                    f"{s['sim_wall_s']:.1f} s")
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        finally:
            if own:
                pool.shutdown(wait=True, cancel_futures=True)
    if failures:
        raise ScenarioError(
            f"{len(failures)} of {len(job_list)} runs failed (finished rows are in "
            f"{output_dir / 'summary.csv'}):\n" + "\n".join(failures)
        )
    return rows_frame(summary_rows, SUMMARY_COLUMNS).sort_values(["controller", "seed"]).reset_index(drop=True)


def comparison_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per controller, lowest RESCO delay first, against the best baseline.

    ``kind`` is the controller's kind (``baseline`` or ``greenwave``); ``vs_best_baseline`` is
    the controller's mean ``resco_delay_s`` divided by that of the baseline with the lowest one
    (NaN when no baseline ran), and ``best_baseline`` marks that baseline with ``*``.
    """
    from greenwave.controllers.base import controller_kind

    cols = ["mean_travel_time_s", "mean_time_loss_s", "mean_waiting_time_s", "resco_delay_s",
            "vehicles_arrived", "vehicles_unfinished", "teleports", "sim_wall_s"]
    table = summary.groupby("controller")[cols].mean().sort_values(["resco_delay_s", "mean_time_loss_s"])
    table.insert(0, "seeds", summary.groupby("controller")["seed"].count())
    table.insert(0, "kind", [controller_kind(c) for c in table.index])
    baselines = table[table["kind"] == "baseline"]["resco_delay_s"]
    best = baselines.idxmin() if len(baselines) else None
    table["vs_best_baseline"] = table["resco_delay_s"] / baselines.min() if best is not None else float("nan")
    table["best_baseline"] = ["*" if c == best else "" for c in table.index]
    if "safety_violations" in summary:  # a count: the total over seeds, not a mean
        table["safety_violations"] = summary.groupby("controller")["safety_violations"].sum()
    return table
