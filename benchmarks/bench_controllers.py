"""What a controlled run costs beyond SUMO itself: wall time of controllers against ``static``.

    python benchmarks/bench_controllers.py [--scenario grid4_moderate] [--controllers ...] --json FILE

All runs go one after another in this process, on the same scenario, demand and seed, so the
ratios compare like with like on whatever machine runs them. Per controller it reports the
wall time of the simulation loop (SUMO steps plus the controller's work each step, as
``sim_wall_s`` in summary.csv), of the preparation before SUMO starts (e.g. an initial
optimisation), and of the whole job, and each as a ratio to ``static``. Numba kernels are
compiled (or loaded from cache) by a warm-up run first, so compile time is not counted.
It reports; it does not fail on machine speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="grid4_moderate")
    p.add_argument("--controllers", default="static,actuated,max_pressure,adaptive,coordinated")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1, help="runs per controller (the fastest counts)")
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
        rows = {}
        for name in names:
            best = None
            for _ in range(max(1, args.repeats)):
                t0 = time.perf_counter()
                res = run_job(jobs[name])
                total = time.perf_counter() - t0
                loop = float(res.summary["sim_wall_s"])
                cand = {"loop_s": loop, "total_s": total, "prepare_and_kpis_s": total - loop,
                        "mean_time_loss_s": float(res.summary["mean_time_loss_s"])}
                if best is None or cand["total_s"] < best["total_s"]:
                    best = cand
            rows[name] = best
            print(f"{name:14s} loop {best['loop_s']:6.2f} s  total {best['total_s']:6.2f} s  "
                  f"time loss {best['mean_time_loss_s']:.1f} s/veh", file=sys.stderr)
    ref = rows["static"]
    for r in rows.values():
        r["loop_ratio_vs_static"] = r["loop_s"] / ref["loop_s"]
        r["total_ratio_vs_static"] = r["total_s"] / ref["total_s"]
    result = {"scenario": sc.name, "seed": args.seed, "duration_s": sc.duration_s,
              "signals": len(prepared.approaches), "controllers": rows, "skipped": skipped}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    for name, r in rows.items():
        print(f"{name:14s} loop ×{r['loop_ratio_vs_static']:.2f}  total ×{r['total_ratio_vs_static']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
