"""The parking networking-rate sweep: every rate × policy × seed of a parking scenario as one SUMO run.

It reuses the scenario runner's pieces (:func:`~greenwave.scenarios.runner.prepare`,
:func:`~greenwave.scenarios.runner.make_jobs`, :func:`~greenwave.scenarios.runner.run_job`) and any
:class:`concurrent.futures.Executor`; each finished run is added to ``DIR/sweep.csv`` at once and
atomically, so an interrupted sweep keeps its rows. ``DIR/sweep.png`` plots the KPIs (mean over
seeds, min–max bars) against the networking rate, one line per policy
(:func:`greenwave.parking.results.plot_sweep`). Background traffic and parking drivers are the same
for every rate and policy of a seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from greenwave.engine.jobloop import run_jobs
from greenwave.engine.results import ResultTables, rows_frame
from greenwave.errors import ScenarioError
from greenwave.parking.options import POLICIES
from greenwave.parking.results import SWEEP_COLUMNS, plot_sweep
from greenwave.scenarios.runner import make_jobs, output_folder, prepare, run_job
from greenwave.scenarios.spec import Scenario

__all__ = ["parking_sweep"]


def parking_sweep(
    scenario: Scenario,
    output_dir: Path,
    *,
    rates: Sequence[float],
    policies: Sequence[str] = POLICIES,
    seeds: Sequence[int] | None = None,
    controller: str | None = None,
    jobs: int = 1,
    executor: Executor | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Run ``rates × policies × seeds`` of a parking scenario; return (and write) the sweep table.

    Parameters
    ----------
    scenario
        A scenario with a ``[parking]`` table.
    output_dir
        Where ``sweep.csv``, ``sweep.png`` and the runs (``runs/POLICY_rateR_seedS``) go.
    rates
        Networking rates, shares in [0, 1].
    policies
        Parking policies to compare.
    seeds
        Seeds (default: the scenario's).
    controller
        The signal controller of every run (default: the scenario's first).
    jobs, executor
        Parallel runs: a local process pool of ``jobs`` workers unless an executor is given.
    """

    say = progress or (lambda _msg: None)
    if "parking" not in scenario.addons:
        raise ScenarioError(f"scenario {scenario.name!r} has no [parking] table to sweep")
    bad = [r for r in rates if not 0.0 <= r <= 1.0]
    if not rates or bad:
        raise ScenarioError(f"networking rates must be shares in [0, 1], got {list(rates)}")
    unknown = [p for p in policies if p not in POLICIES]
    if not policies or unknown:
        raise ScenarioError(f"unknown parking policy {unknown}; valid: {', '.join(POLICIES)}")
    output_dir = output_folder(output_dir, ("sweep.csv", "sweep.png"))
    if seeds is not None:
        scenario = replace(scenario, seeds=tuple(seeds))
    prepared = prepare(scenario, output_dir)
    base = make_jobs(prepared, output_dir, controllers=[controller or scenario.controllers[0]])
    job_list = []
    for job in base:
        for policy in policies:
            for rate in rates:
                opts = {**job.addons["parking"], "policy": policy, "networking_rate": float(rate)}
                job_list.append(replace(
                    job, addons={**job.addons, "parking": opts},
                    workdir=output_dir / "runs" / f"{policy}_rate{rate:g}_seed{job.seed}",
                ))
    say(f"{scenario.name}: {len(job_list)} parking runs ({len(rates)} rates × {len(policies)} policies × "
        f"{len(base)} seeds, controller {base[0].controller})")
    rows: list[dict[str, Any]] = []
    csv = output_dir / "sweep.csv"
    tables = ResultTables()

    def record(job: Any, result: Any) -> str:
        s = result.summary
        opts = job.addons["parking"]
        row = {"networking_rate": opts["networking_rate"], "policy": opts["policy"], "seed": job.seed,
               "controller": job.controller, "status": "ok", "error": ""}
        row.update({k: s.get(k) for k in SWEEP_COLUMNS if k not in row})
        rows.append(row)
        tables.write(_sorted(rows_frame(rows, SWEEP_COLUMNS)), csv)
        return (f"search {s['mean_search_time_s']:.1f} s, in band {s['occupancy_in_band_share']:.2f}, "
                f"{s['sim_wall_s']:.1f} s")

    def record_failure(job: Any, message: str) -> None:
        opts = job.addons["parking"]
        rows.append({"networking_rate": opts["networking_rate"], "policy": opts["policy"], "seed": job.seed,
                     "controller": job.controller, "status": "failed", "error": message})
        tables.write(_sorted(rows_frame(rows, SWEEP_COLUMNS)), csv)

    def describe(job: Any) -> str:
        opts = job.addons["parking"]
        return f"{opts['policy']} rate {opts['networking_rate']:g} seed {job.seed}"

    t0 = time.perf_counter()
    try:
        failures = run_jobs(job_list, run_job, on_result=record, on_failure=record_failure, describe=describe,
                            say=say, workers=jobs, executor=executor, preload=(run_job.__module__,))
    except KeyboardInterrupt:
        say(f"interrupted; {sum(r['status'] == 'ok' for r in rows)} finished run(s) are in {csv}")
        for line in tables.rescue():
            say(line)
        raise
    table = _sorted(rows_frame(rows, SWEEP_COLUMNS))
    ok = table[table["status"] == "ok"]
    if len(ok):
        plot_sweep(ok, output_dir / "sweep.png", title=f"{scenario.name}: parking KPIs against networking rate")
    say(f"sweep done in {time.perf_counter() - t0:.1f} s")
    rescued = tables.rescue()
    if rescued:
        raise ScenarioError("results could not be written where they belong:\n" + "\n".join(rescued))
    if failures:
        raise ScenarioError(f"{len(failures)} of {len(job_list)} parking runs failed (every run is a row of "
                            f"{csv}, the failed ones with status 'failed'):\n"
                            + "\n".join(f"{describe(j)}: {m}" for j, m in failures))
    return table


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["policy", "networking_rate", "seed"]).reset_index(drop=True)
