"""Benchmark the hot optimisation loop on generated grids of about 16, 100, 400 and 1000 signals.

    python benchmarks/bench_optimiser.py [--quick] --json FILE

Figures per case: model evaluations per second for the numba kernel and for the plain
reference and their ratio (measured in the same run, so machine speed cancels), link-steps per
second (links × cycle seconds × sweeps per second), the optimiser's wall time to converge after
compilation, the JIT compile time (measured in a fresh process with an empty numba cache), and
the batch evaluator's gain from parallel threads. It reports; it does not fail on machine speed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CASES = {16: (4, 4), 100: (10, 10), 400: (20, 20), 1024: (32, 32)}


def build_case(rows: int, cols: int, workdir: Path):  # type: ignore[no-untyped-def]
    from greenwave.networks import load_network
    from greenwave.networks.compile import compile_network
    from greenwave.networks.generate import grid_network
    from greenwave.scenarios.demand import expected_movement_flows
    from greenwave.scenarios.spec import scenario_from_dict

    net_file = grid_network(workdir / f"grid{rows}x{cols}.net.xml", rows=rows, cols=cols, lanes=2)
    spec = scenario_from_dict({
        "duration_s": 3600, "network": {"generator": "grid", "rows": rows, "cols": cols},
        "demand": {"entry_vph": 500, "turn_left": 0.15, "turn_right": 0.2},
    }).demand
    flows = expected_movement_flows(net_file, spec)
    return compile_network(load_network(net_file), flows)


def rate(fn, *, min_time: float, max_reps: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(calls per second, seconds per call) over at least ``min_time`` s or ``max_reps`` calls."""
    reps, t0 = 0, time.perf_counter()
    while True:
        fn()
        reps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time or reps >= max_reps:
            return reps / elapsed, elapsed / reps


def compile_time() -> float:
    """JIT compile time of the model kernels in a fresh process with an empty numba cache."""
    code = (
        "import time, numpy as np\n"
        "from tests.handmade import arterial\n"
        "from greenwave.engine.arrays import PlanArrays\n"
        "from greenwave.engine import model\n"
        "net = arterial(3)\n"
        "plan = PlanArrays(90.0, np.zeros(3), np.tile([40.0, 40.0], 3))\n"
        "t0 = time.perf_counter(); model.evaluate(net, plan)\n"
        "model.evaluate_batch(net, 90.0, np.zeros((2, 3)), np.tile([40.0, 40.0], (2, 3)))\n"
        "model.evaluate_batch(net, 90.0, np.zeros((2, 3)), np.tile([40.0, 40.0], (2, 3)), parallel=False)\n"
        "print(time.perf_counter() - t0)\n"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parent.parent)
    return float(out.stdout.strip().splitlines()[-1])


def _warm_optimiser() -> None:
    """Compile (or load from cache) every kernel the optimiser uses, so timings exclude JIT."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from greenwave.engine.optimise import OptimiserSettings, optimise
    from tests.handmade import arterial

    for parallel in (True, False):
        optimise(arterial(3), settings=OptimiserSettings(parallel=parallel, global_candidates=4))


def bench_case(signals: int, quick: bool, workdir: Path, compile_s: float) -> dict:
    from greenwave.engine import model, reference
    from greenwave.engine.arrays import ModelParams
    from greenwave.engine.optimise import OptimiserSettings, optimise, webster_plan

    rows, cols = CASES[signals]
    t0 = time.perf_counter()
    net = build_case(rows, cols, workdir)
    build_s = time.perf_counter() - t0
    plan = webster_plan(net)
    params = ModelParams()
    model.evaluate(net, plan, params)  # warm (JIT or cache load)
    k_rate, k_sec = rate(lambda: model.evaluate(net, plan, params), min_time=1.0 if quick else 3.0, max_reps=10_000)
    r_rate, r_sec = rate(lambda: reference.evaluate_reference(net, plan, params), min_time=0.5 if quick else 2.0,
                         max_reps=3 if signals > 100 else 20)
    res = model.evaluate(net, plan, params)
    link_steps = net.n_links * int(round(plan.cycle_s)) * int(res.cycles_iterated) * k_rate
    n_cand = 64
    rng = np.random.default_rng(0)
    offs = rng.uniform(0, plan.cycle_s, size=(n_cand, net.n_signals)).round() % plan.cycle_s
    greens = np.repeat(np.asarray(plan.green_s)[None, :], n_cand, axis=0)
    model.evaluate_batch(net, plan.cycle_s, offs, greens, params, parallel=True)
    model.evaluate_batch(net, plan.cycle_s, offs, greens, params, parallel=False)
    par, _ = rate(lambda: model.evaluate_batch(net, plan.cycle_s, offs, greens, params, parallel=True),
                  min_time=0.5 if quick else 2.0, max_reps=200)
    ser, _ = rate(lambda: model.evaluate_batch(net, plan.cycle_s, offs, greens, params, parallel=False),
                  min_time=0.5 if quick else 2.0, max_reps=200)
    opt_wall = None
    opt: dict = {}
    if not quick or signals <= 100:
        one_core = optimise(net, settings=OptimiserSettings(seed=0, parallel=False))
        result = optimise(net, settings=OptimiserSettings(seed=0))
        opt_wall = result.wall_s
        opt = {"optimise_wall_1core_s": one_core.wall_s, "optimise_evaluations": result.evaluations,
               "pi_start": result.pi_start, "pi_optimised": result.pi, "common_cycle_s": result.plan.cycle_s}
    return {
        "signals": net.n_signals,
        "links": net.n_links,
        "stages": net.n_stages,
        "cycle_s": plan.cycle_s,
        "sweeps_per_eval": int(res.cycles_iterated),
        "kernel_evals_per_s": k_rate,
        "kernel_s_per_eval": k_sec,
        "reference_evals_per_s": r_rate,
        "speedup": k_rate / r_rate,
        "link_steps_per_s": link_steps,
        "batch_parallel_evals_per_s": par * n_cand,
        "batch_serial_evals_per_s": ser * n_cand,
        "batch_parallel_gain": par / ser,
        "optimise_wall_s": opt_wall,
        "compile_s": compile_s,
        "build_network_s": build_s,
        **opt,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="16 and 100 signals only, short timings (< 1 min)")
    ap.add_argument("--json", required=True, help="where to write the figures")
    args = ap.parse_args(argv)
    import numba

    sizes = [16, 100] if args.quick else [16, 100, 400, 1024]
    compile_s = compile_time()
    _warm_optimiser()
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            case = bench_case(n, args.quick, Path(tmp), compile_s)
            cases.append(case)
            print(f"{case['signals']:5d} signals {case['links']:6d} links: "
                  f"kernel {case['kernel_evals_per_s']:9.1f} eval/s, "
                  f"reference {case['reference_evals_per_s']:8.3f} eval/s, speedup {case['speedup']:7.1f}x, "
                  f"batch gain {case['batch_parallel_gain']:.2f}x, optimise {case['optimise_wall_s']} s "
                  f"(one core {case.get('optimise_wall_1core_s')} s)", flush=True)
    by = {c["signals"]: c for c in cases}
    summary = {}
    if 100 in by and 1024 in by:
        summary["eval_time_ratio_1000_vs_100"] = by[1024]["kernel_s_per_eval"] / by[100]["kernel_s_per_eval"]
    out = {"cases": cases, "summary": summary, "threads": numba.get_num_threads(), "quick": args.quick}
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_suffix(".tmp")
    tmp_path.write_text(json.dumps(out, indent=2))
    tmp_path.replace(path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
