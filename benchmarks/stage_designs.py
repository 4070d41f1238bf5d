"""What stage design buys in SUMO: controllers run with ``stage_design = "own"`` and with
another choice (default ``"best"``) on the same networks, demand and seeds.

    python benchmarks/stage_designs.py [--networks cross,rilsa1,...] [--controllers optimised,adaptive,max_pressure]
                                       [--modes own,best] [--seeds 1,2] [--duration 900] --json FILE

Per network, controller and mode: the RESCO delay (s/veh) of every seed and their mean,
teleports, unfinished vehicles and transition-safety violations (the monitor runs in every
run), the ratio of each mode's mean delay to ``own``'s, and which design each signal ran (from
the run's ``plan.json`` / ``stage_designs.json``; empty where no signal ran a generated design:
under ``own`` the controllers record no choice, every signal keeping its program).
Networks: the bundled scenarios and real networks from the eclipse-sumo wheel (``tools/game``
with their own demand; the RiLSA guideline junction and kuehne with generated entry flows).
It reports; it does not fail.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

_RILSA = "tools/sumolib/scenario/scenarios/RealWorld"
NETWORKS: dict[str, dict[str, Any]] = {
    "grid4_moderate": {"bundled": "grid4_moderate"},
    "arterial6": {"bundled": "arterial6"},
    # the game's configurations without its hand-switched programs (cross, square, grid6, fkk_in's gneJ21)
    **{name: {"game": name} for name in ("cross", "corridor", "square", "grid6", "fkk_in", "A10KW")},
    **{f"rilsa{k}": {"network": {"file": f"sumo:{_RILSA}/RiLSA_example{k}/net.net.xml"},
                     "demand": {"major_entry_vph": 500, "minor_entry_vph": 300, "turn_left": 0.2, "turn_right": 0.15}}
       for k in (1, 2, 3, 4)},
    "DRT": {"network": {"file": "sumo:tools/game/DRT/osm.net.xml"}, "demand": {"entry_vph": 60}},
    "kuehne": {"network": {"file": "sumo:tools/game/kuehne/kuehne.net.xml"},
               "demand": {"entry_vph": 250, "turn_left": 0.15, "turn_right": 0.15}},
}


def _designs(run: Path) -> dict[str, int]:
    """How many signals ran each design in a run (from its plan or its stage_designs.json);
    empty when neither records a choice (``stage_design = "own"``: the network's programs)."""
    for name in ("plan.json", "stage_designs.json"):
        f = run / name
        if f.exists():
            data = json.loads(f.read_text())
            meta = data.get("meta", {}).get("stage_design", {}) if name == "plan.json" else data
            sigs = meta.get("signals", {}) if isinstance(meta, dict) else {}
            if not isinstance(sigs, dict):
                continue
            if sigs:
                return dict(Counter(v["design"] for v in sigs.values()))
    return {}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--networks", default=",".join(NETWORKS))
    p.add_argument("--controllers", default="optimised,adaptive,max_pressure")
    p.add_argument("--modes", default="own,best")
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--duration", type=float, default=900.0)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--json", required=True, help="output JSON file")
    args = p.parse_args(argv)

    from greenwave.engine.results import write_text_atomic
    from greenwave.scenarios.runner import default_executor, run_scenario
    from greenwave.scenarios.spec import load_scenario, scenario_from_dict

    unknown = [n for n in args.networks.split(",") if n and n not in NETWORKS]
    if unknown:
        p.error(f"--networks: unknown {', '.join(unknown)}; known: {', '.join(NETWORKS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    controllers = [c for c in args.controllers.split(",") if c]
    modes = [m for m in args.modes.split(",") if m]
    out: dict[str, Any] = {"duration_s": args.duration, "seeds": seeds, "modes": modes, "networks": {}}
    executor = default_executor(args.jobs)
    inputs = tempfile.TemporaryDirectory()
    try:
        for net in [n for n in args.networks.split(",") if n]:
            spec = NETWORKS[net]
            if "game" in spec:
                from greenwave._sumo import sumo_home
                from greenwave.scenarios.sumocfg import portable_sumocfg

                cfg = portable_sumocfg(sumo_home() / "tools" / "game" / f"{spec['game']}.sumocfg",
                                       Path(inputs.name) / f"{spec['game']}.sumocfg")
                spec = {"demand": {"sumocfg": str(cfg)}}
            res: dict[str, Any] = {}
            for mode in modes:
                opts = {c: {"stage_design": mode} for c in controllers}
                if "bundled" in spec:
                    sc = replace(load_scenario(spec["bundled"]), duration_s=args.duration, seeds=tuple(seeds),
                                 controllers=tuple(controllers), controller_options=opts)
                else:
                    sc = scenario_from_dict({"name": net, "duration_s": args.duration, "seeds": seeds,
                                             "controllers": controllers, "controller_options": opts, **spec})
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    try:
                        summary = run_scenario(sc, Path(tmp), executor=executor, check_safety=True)
                    except Exception as exc:  # report and go on with the next network
                        res[mode] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                        print(f"{net} {mode}: {res[mode]['error']}", flush=True)
                        continue
                    for c in controllers:
                        rows = summary[summary.controller == c]
                        res.setdefault(mode, {})[c] = {
                            "resco_delay_s": [round(float(x), 3) for x in rows.resco_delay_s],
                            "mean_resco_delay_s": round(float(rows.resco_delay_s.mean()), 3),
                            "teleports": int(rows.teleports.sum()),
                            "unfinished": int(rows.vehicles_unfinished.sum()),
                            "safety_violations": int(rows.safety_violations.sum()),
                            "designs": _designs(Path(tmp) / "runs" / f"{c}_seed{seeds[0]}"),
                        }
                    res[mode]["wall_s"] = round(time.perf_counter() - t0, 1)
                    print(net, mode, {c: res[mode][c]["mean_resco_delay_s"] for c in controllers}, flush=True)
            if "own" in res and "error" not in res["own"]:
                for mode in modes:
                    if mode == "own" or "error" in res.get(mode, {"error": 1}):
                        continue
                    for c in controllers:
                        own = res["own"][c]["mean_resco_delay_s"]
                        mine = res[mode][c]["mean_resco_delay_s"]
                        res[mode][c]["ratio_to_own"] = round(mine / own, 3) if own else None
            out["networks"][net] = res
            write_text_atomic(json.dumps(out, indent=1) + "\n", Path(args.json))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        inputs.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
