"""What one decision of the ``schedule`` controller costs: the numba kernel against its plain reference.

    python benchmarks/bench_schedule.py [--cases 200] [--seed 1] --json FILE

Random decisions of the sizes real junctions give (2–4 stages, 4–12 approach lanes, 0–15
vehicles seen per lane, intergreens of 4–10 s, greenwave's default horizon and steps), each
decided by :func:`greenwave.controllers.schedule.best_move` (compiled, or loaded from numba's
cache, by a warm-up first) and by :func:`~greenwave.controllers.schedule.best_move_reference`,
in the same process, one after the other. It reports the mean time per decision of each and
their ratio (the kernel against the reference on the same machine and moment), checks that
they decide alike, and what a city costs per simulated second if every signal of
``--signals`` decides once. It reports; it does not judge machine speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def cases(n: int, seed: int) -> list[tuple]:
    """``n`` decisions as the controller hands them to the kernel."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        stages = int(rng.integers(2, 5))
        lanes = int(rng.integers(4, 13))
        rate = np.zeros((stages, lanes))
        for lane in range(lanes):
            rate[rng.integers(stages), lane] = rng.choice([0.5, 1.0], p=[0.3, 0.7])
        counts = rng.integers(0, 16, size=lanes)
        eta = np.concatenate([np.sort(rng.uniform(0.0, 30.0, size=c)) for c in counts])
        ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        min_g = np.full(stages, 5.0)
        max_g = np.full(stages, 60.0)
        inter = rng.choice([4.0, 5.0, 7.0, 10.0], size=(stages, stages))
        np.fill_diagonal(inter, 0.0)
        cur = int(rng.integers(stages))
        out.append((cur, float(rng.uniform(5.0, 65.0)), min_g, max_g, inter, rate, ptr, eta, 2.0, 30.0, 1.0, 2.0))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--signals", type=int, default=1000, help="signals of the city the per-second cost is for")
    p.add_argument("--json", required=True, help="output JSON file")
    args = p.parse_args(argv)

    from greenwave.controllers.schedule import best_move, best_move_reference
    from greenwave.engine.results import write_text_atomic

    todo = cases(max(1, args.cases), args.seed)
    t0 = time.perf_counter()
    out = [np.empty(len(c[2])) for c in todo]
    best_move(*todo[0], out[0])  # compile, or load from numba's cache
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = [best_move(*c, o) for c, o in zip(todo, out, strict=True)]
    kernel_s = (time.perf_counter() - t0) / len(todo)
    t0 = time.perf_counter()
    plain = [best_move_reference(*c, np.empty(len(c[2]))) for c in todo]
    reference_s = (time.perf_counter() - t0) / len(todo)
    agree = sum(a[0] == b[0] for a, b in zip(fast, plain, strict=True))
    result = {
        "cases": len(todo),
        "kernel_load_s": round(load_s, 3),
        "kernel_us_per_decision": round(kernel_s * 1e6, 2),
        "reference_us_per_decision": round(reference_s * 1e6, 2),
        "kernel_to_reference": round(kernel_s / reference_s, 5),
        "decisions_agree": agree,
        "city_signals": args.signals,
        "city_kernel_s_per_simulated_s": round(kernel_s * args.signals, 4),
    }
    write_text_atomic(json.dumps(result, indent=1), Path(args.json))
    print(json.dumps(result, indent=1))
    return 0 if agree == len(todo) else 1


if __name__ == "__main__":
    sys.exit(main())
