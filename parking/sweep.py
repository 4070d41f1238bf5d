"""The networking-rate sweep: every rate × policy × seed as one SUMO run, KPIs against the rate.

It reuses the scenario runner's pieces (:func:`~greenwave.scenarios.runner.prepare`,
:class:`~greenwave.scenarios.runner.Job`, :func:`~greenwave.scenarios.runner.run_job`) and any
:class:`concurrent.futures.Executor`; each finished run is added to ``DIR/sweep.csv`` at once and
atomically, so an interrupted sweep keeps its rows. ``DIR/sweep.png`` plots the KPIs (mean over
seeds, min–max bars) against the networking rate, one line per policy. Background traffic and
parking drivers are the same for every rate and policy of a seed.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from greenwave.engine.results import rows_frame, write_table_atomic
from greenwave.errors import GreenwaveError, ScenarioError
from greenwave.parking.options import POLICIES
from greenwave.scenarios.spec import Scenario

SWEEP_COLUMNS = [
    "networking_rate", "policy", "seed", "controller",
    "mean_search_time_s", "p90_search_time_s", "mean_cruising_distance_m", "p90_cruising_distance_m",
    "first_choice_share", "mean_walking_distance_m", "occupancy_in_band_share", "mean_occupancy_share",
    "turnover_per_space_hour", "gave_up", "still_searching", "parked", "parking_vehicles", "revenue",
    "parking_networking_rate", "parking_networking_rate_spaces", "mean_time_loss_s", "sim_wall_s",
]
PLOTTED = [
    ("mean_search_time_s", "mean search time (s)"),
    ("p90_search_time_s", "p90 search time (s)"),
    ("mean_cruising_distance_m", "mean cruising distance (m)"),
    ("first_choice_share", "parked at first choice (share)"),
    ("occupancy_in_band_share", "car-park-hours in 60-80% band (share)"),
    ("turnover_per_space_hour", "turnover (events / space / h)"),
]


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
    from greenwave.scenarios.runner import default_executor, make_jobs, prepare, run_job

    say = progress or (lambda _msg: None)
    if "parking" not in scenario.addons:
        raise ScenarioError(f"scenario {scenario.name!r} has no [parking] table to sweep")
    bad = [r for r in rates if not 0.0 <= r <= 1.0]
    if not rates or bad:
        raise ScenarioError(f"networking rates must be shares in [0, 1], got {list(rates)}")
    unknown = [p for p in policies if p not in POLICIES]
    if not policies or unknown:
        raise ScenarioError(f"unknown parking policy {unknown}; valid: {', '.join(POLICIES)}")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
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
    failures: list[str] = []
    csv = output_dir / "sweep.csv"

    def record(job: Any, summary: dict[str, Any]) -> None:
        opts = job.addons["parking"]
        row = {"networking_rate": opts["networking_rate"], "policy": opts["policy"], "seed": job.seed,
               "controller": job.controller}
        row.update({k: summary.get(k) for k in SWEEP_COLUMNS if k not in row})
        rows.append(row)
        write_table_atomic(_sorted(rows_frame(rows, SWEEP_COLUMNS)), csv)

    t0 = time.perf_counter()
    own = executor is None
    pool = executor or default_executor(jobs)
    futures: dict[Future[Any], Any] = {}
    try:
        futures = {pool.submit(run_job, job): job for job in job_list}
        for done, fut in enumerate(as_completed(futures), 1):
            job = futures[fut]
            opts = job.addons["parking"]
            what = f"{opts['policy']} rate {opts['networking_rate']:g} seed {job.seed}"
            try:
                result = fut.result()
            except GreenwaveError as exc:
                failures.append(f"{what}: {exc}")
                say(f"[{done}/{len(job_list)}] {what} FAILED: {exc}")
                continue
            record(job, result.summary)
            s = result.summary
            say(f"[{done}/{len(job_list)}] {what}: search {s['mean_search_time_s']:.1f} s, "
                f"in band {s['occupancy_in_band_share']:.2f}, {s['sim_wall_s']:.1f} s")
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)
    table = _sorted(rows_frame(rows, SWEEP_COLUMNS))
    if rows:
        plot_sweep(table, output_dir / "sweep.png", title=f"{scenario.name}: parking KPIs against networking rate")
    say(f"sweep done in {time.perf_counter() - t0:.1f} s")
    if failures:
        raise ScenarioError(f"{len(failures)} of {len(job_list)} parking runs failed (finished rows are in "
                            f"{csv}):\n" + "\n".join(failures))
    return table


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["policy", "networking_rate", "seed"]).reset_index(drop=True)


def sweep_table(sweep: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per policy and rate of the main KPIs (for printing)."""
    cols = ["mean_search_time_s", "p90_search_time_s", "mean_cruising_distance_m", "first_choice_share",
            "occupancy_in_band_share", "turnover_per_space_hour", "gave_up"]
    table = sweep.groupby(["policy", "networking_rate"])[cols].mean()
    table.insert(0, "seeds", sweep.groupby(["policy", "networking_rate"])["seed"].count())
    return table


def plot_sweep(sweep: pd.DataFrame, path: Path, *, title: str = "") -> Path:
    """Plot the KPIs against the networking rate, one line per policy; write the PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    for ax, (col, label) in zip(axes.flat, PLOTTED, strict=True):
        for policy, part in sweep.groupby("policy"):
            g = part.groupby("networking_rate")[col].agg(["mean", "min", "max"]).sort_index()
            ax.errorbar(g.index, g["mean"], yerr=[g["mean"] - g["min"], g["max"] - g["mean"]],
                        marker="o", capsize=3, label=str(policy))
        ax.set_xlabel("networking rate (share of car parks)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes.flat[0].legend()
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path
