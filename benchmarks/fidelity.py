"""Model fidelity: does the macroscopic model rank timing plans the way SUMO does?

    python benchmarks/fidelity.py [--plans 20] [--scenarios arterial6,grid4_moderate]
                                  [--params sumo|default] --json FILE

For each scenario, draws random feasible plans (common cycle, splits above the minimum greens,
offsets; seeded), predicts each plan's mean delay with the model, runs each plan in SUMO with the
``fixed`` controller on the same demand and seed, and reports Spearman's ρ between predicted
delay and SUMO's mean time loss. ``--params sumo`` (default) uses the model as the ``optimised``
controller does: :data:`~greenwave.engine.arrays.SUMO_PARAMS`, the measured saturation flow and
:data:`~greenwave.networks.compile.SUMO_COMPILE_OPTIONS`;
``default`` uses TRANSYT's defaults and 1800 veh/h per lane.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr


def random_plans(net, n: int, seed: int, lo: float = 50.0, hi: float = 120.0):  # type: ignore[no-untyped-def]
    from greenwave.engine.arrays import PlanArrays

    rng = np.random.default_rng(seed)
    lo = max(lo, max(net.min_cycle_s(i) for i in range(net.n_signals)))
    plans = []
    for _ in range(n):
        cycle = float(rng.integers(int(np.ceil(lo)), int(hi) + 1))
        green = np.array(net.stage_min_green_s, dtype=np.float64)
        for i in range(net.n_signals):
            s = net.stages_of(i)
            spare = cycle - net.min_cycle_s(i)
            green[s.start:s.stop] += spare * rng.dirichlet(np.ones(s.stop - s.start) * 2.0)
        offsets = np.round(rng.uniform(0, cycle, net.n_signals)) % cycle
        plans.append(PlanArrays(cycle, offsets, green))
    return plans


def measure(scenario_name: str, n_plans: int, seed: int, jobs: int, out_dir: Path, params: str = "sumo") -> dict:
    from greenwave.controllers.plan import plan_from_arrays
    from greenwave.engine.arrays import SUMO_PARAMS, SUMO_SATURATION_FLOW_PER_LANE_VPH, ModelParams
    from greenwave.engine.model import evaluate
    from greenwave.networks import load_network
    from greenwave.networks.compile import SUMO_COMPILE_OPTIONS, compile_network
    from greenwave.scenarios.demand import movement_flows
    from greenwave.scenarios.runner import make_jobs, prepare, run_job
    from greenwave.scenarios.spec import load_scenario

    sc = load_scenario(scenario_name)
    prepared = prepare(sc, out_dir, seeds=[seed])
    routes = prepared.routes_by_seed[seed]
    if params == "sumo":
        model_params, sat = SUMO_PARAMS, SUMO_SATURATION_FLOW_PER_LANE_VPH
    else:
        model_params, sat = ModelParams(), 1800.0
    network = load_network(prepared.net_file, saturation_flow_per_lane=sat)
    options = SUMO_COMPILE_OPTIONS if params == "sumo" else {}
    net = compile_network(network, movement_flows(routes, begin_s=prepared.begin_s, end_s=prepared.end_s), **options)
    plans = random_plans(net, n_plans, seed)
    predicted = [float(evaluate(net, p, model_params).mean_delay_s) for p in plans]
    jobs_list = []
    for k, p in enumerate(plans):
        path = out_dir / f"plan{k}.json"
        plan_from_arrays(net, p).to_json(path)
        (job,) = make_jobs(prepared, out_dir / f"p{k}", controllers=["fixed"])
        jobs_list.append(replace(job, options={"plan": str(path)}))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(run_job, jobs_list))
    measured = [r.summary["mean_time_loss_s"] for r in results]
    rho = float(spearmanr(predicted, measured).statistic)
    return {"scenario": sc.name, "params": params, "plans": n_plans, "seed": seed, "spearman_rho": rho,
            "predicted_mean_delay_s": predicted, "sumo_mean_time_loss_s": measured,
            "cycles_s": [p.cycle_s for p in plans]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plans", type=int, default=20)
    ap.add_argument("--scenarios", default="arterial6,grid4_moderate")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--params", choices=("sumo", "default"), default="sumo")
    ap.add_argument("--json", required=True)
    args = ap.parse_args(argv)
    out = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenarios.split(","):
            r = measure(name, args.plans, args.seed, args.jobs, Path(tmp) / name, args.params)
            out.append(r)
            print(f"{r['scenario']}: Spearman rho = {r['spearman_rho']:.3f} over {r['plans']} plans", flush=True)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"results": out, "wall_s": time.perf_counter() - t0}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
