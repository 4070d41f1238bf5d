"""What a controlled run costs beyond SUMO itself: wall time of controllers against ``static``.

    python benchmarks/bench_controllers.py [--scenario grid4_moderate] [--controllers ...] --json FILE

All runs go one after another in this process, on the same scenario, demand and seed, so the
ratios compare like with like on whatever machine runs them. Per controller it reports the
wall time of the simulation loop (SUMO steps plus the controller's work each step, as
``sim_wall_s`` in summary.csv), of the preparation before SUMO starts (e.g. an initial
optimisation), of the whole job and the process CPU time of the job, and each as a ratio to
``static``. The controllers run in rounds (static, A, B, static, A, B, ...) and each ratio is
taken within a round, so a machine whose speed drifts (shared cores) compares runs made
close together; the median over ``--repeats`` rounds is reported. Numba kernels are compiled
(or loaded from cache) by a warm-up run first, so compile time is not counted. It reports; it
does not fail on machine speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="grid4_moderate")
    p.add_argument("--controllers", default="static,actuated,max_pressure,adaptive,coordinated")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="rounds of runs (the median ratio counts)")
    p.add_argument("--json", required=True, help="output JSON file")
    args = p.parse_args(argv)

    from greenwave.controllers.base import available_controllers
    from greenwave.scenarios.runner import make_jobs, prepare, run_job
    from greenwave.scenarios.spec import load_scenario

    wanted = [c for c in args.controllers.split(",") if c]
    valid = available_controllers()
    skipped = [c for c in wanted if c not in valid]
    names = [c for c in wanted if c in valid]
    if "static" not in names:
        names.insert(0, "static")
    sc = load_scenario(args.scenario)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        prepared = prepare(sc, out, seeds=[args.seed])
        jobs = {j.controller: j for j in make_jobs(prepared, out, controllers=names)}
        run_job(jobs.get("adaptive", jobs["static"]))  # warm-up: numba kernels, SUMO caches
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for _ in range(max(1, args.repeats)):
            for name in names:
                c0, t0 = time.process_time(), time.perf_counter()
                res = run_job(jobs[name])
                total, cpu = time.perf_counter() - t0, time.process_time() - c0
                loop = float(res.summary["sim_wall_s"])
                runs[name].append({"loop_s": loop, "total_s": total, "cpu_s": cpu,
                                   "prepare_and_kpis_s": total - loop,
                                   "mean_time_loss_s": float(res.summary["mean_time_loss_s"])})
                print(f"{name:14s} loop {loop:6.2f} s  total {total:6.2f} s  cpu {cpu:6.2f} s", file=sys.stderr)
    rows = {}
    for name, rs in runs.items():
        row = {k: float(np.median([r[k] for r in rs])) for k in rs[0]}
        for k in ("loop", "total", "cpu"):
            ratios = [r[f"{k}_s"] / ref[f"{k}_s"] for r, ref in zip(rs, runs["static"], strict=True)]
            row[f"{k}_ratio_vs_static"] = float(np.median(ratios))
            row[f"{k}_ratios_per_round"] = [round(x, 3) for x in ratios]
        rows[name] = row
    result = {"scenario": sc.name, "seed": args.seed, "duration_s": sc.duration_s,
              "signals": len(prepared.approaches), "controllers": rows, "skipped": skipped}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    for name, r in rows.items():
        print(f"{name:14s} loop ×{r['loop_ratio_vs_static']:.2f}  total ×{r['total_ratio_vs_static']:.2f}  "
              f"cpu ×{r['cpu_ratio_vs_static']:.2f}  (median of {args.repeats} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
