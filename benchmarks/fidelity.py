"""Model fidelity: does the macroscopic model rank timing plans the way SUMO does?

    python benchmarks/fidelity.py [--plans 20] [--scenarios arterial6,grid4_moderate]
                                  [--networks fkk_in,grid6,...] [--duration S]
                                  [--params sumo|default] --json FILE

``--scenarios`` takes bundled scenario names or TOML files, ``--networks`` the real networks of
``benchmarks/real_networks.py`` (``all``: every one of them, as ``real_networks.py --networks``
lists them) with the demand that benchmark gives them, run for ``--duration`` s (default 900).
Demand that SUMO routes itself (``<trip>`` and ``<flow>`` elements with from/to, route
distributions) is routed first with duarouter (seeded with the run's seed) so the model counts
the movements the vehicles make; every plan then runs on those same routes. Signals whose own
program is unsafe are left out of the plans (on their own programs), as the ``optimised``
controller does; a signal whose running program serves only some of its links (bs3d's) is
planned on the design the controllers give it under ``stage_design = "own"``.

The JSON is written again (atomically) after each scenario, so a run stopped half-way keeps
what it measured; a scenario that cannot be measured (no flows at its signals, a SUMO run that
failed) gets its ``error`` and the rest go on.

For each scenario, draws random feasible plans (common cycle, splits above the minimum greens,
offsets; seeded), predicts each plan's mean delay with the model, runs each plan in SUMO with the
``fixed`` controller on the same demand and seed, and reports Spearman's ρ between predicted
delay and SUMO's mean time loss (and, ``spearman_rho_resco``, its RESCO delay: time loss plus
the wait to enter the network, where an oversaturated entry's queue stands; and,
``spearman_rho_approach``, the time loss on the planned signals' approach edges per vehicle
entering them, the figure the model's mean delay predicts: a trip's mean also counts vehicles
that never meet a planned signal and delays away from the signals). ``--params sumo``
(default) uses the model as the ``optimised`` controller does:
:data:`~greenwave.engine.arrays.SUMO_PARAMS`, the measured saturation flow and
:data:`~greenwave.networks.compile.SUMO_COMPILE_OPTIONS`; ``default`` uses TRANSYT's defaults and 1800 veh/h per lane.
"""

from __future__ import annotations

import argparse
import dataclasses
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


def measure(scenario_name: str, n_plans: int, seed: int, jobs: int, out_dir: Path, params: str = "sumo",
            *, scenario=None, calibrate: bool = False) -> dict:  # type: ignore[no-untyped-def]
    from greenwave.controllers.planning import designs_for_run, with_design_choice
    from greenwave.controllers.plans.arrays import plan_from_arrays
    from greenwave.controllers.plans.safety import unsafe_signals
    from greenwave.engine.arrays import SUMO_PARAMS, SUMO_SATURATION_FLOW_PER_LANE_VPH, ModelParams
    from greenwave.engine.model import evaluate
    from greenwave.engine.optimise import OptimiserSettings, webster_plan
    from greenwave.engine.routing import ensure_routes
    from greenwave.networks import load_network
    from greenwave.networks.compile import SUMO_COMPILE_OPTIONS, compile_network
    from greenwave.scenarios.demand import movement_flows
    from greenwave.scenarios.runner import make_jobs, prepare, run_job
    from greenwave.scenarios.spec import load_scenario
    from greenwave.scenarios.sumocfg import localise_additional

    sc = scenario if scenario is not None else load_scenario(scenario_name)
    prepared = prepare(sc, out_dir, seeds=[seed])
    # trips and flows without routes: the model counts the movements of the routes SUMO gives
    # them at insertion (a SUMO run of the scenario with its own programs), as the controllers
    # plan (RunSpec.routed_demand); vehicle types may sit in additional files
    # (flows with routes expand into vehicles)
    job = dataclasses.replace(make_jobs(prepared, out_dir, controllers=["static"])[0], workdir=out_dir / "routed",
                              additional_files=localise_additional(prepared.additional_files,
                                                                   out_dir / "routed" / "scenario_files"))
    routes = tuple(ensure_routes(prepared.net_file, list(job.routed_demand()), workdir=out_dir / "routed", seed=seed,
                                 begin=prepared.begin_s, end=prepared.end_s, route_choice=job.route_choice))
    if params == "sumo":
        model_params, sat = SUMO_PARAMS, SUMO_SATURATION_FLOW_PER_LANE_VPH
    else:
        model_params, sat = ModelParams(), 1800.0
    network = load_network(prepared.net_file, saturation_flow_per_lane=sat)
    # the stages the controllers plan with under stage_design = "own": a signal whose running
    # program serves only some of its links (bs3d's one-stage programs the game's player
    # switches) gets the model's best design, as the controllers give it
    network, designs = designs_for_run(network, "own", net_file=prepared.net_file, route_files=routes,
                                       begin_s=prepared.begin_s, end_s=prepared.end_s, workdir=out_dir / "designs",
                                       seed=seed, proof_follows=False)
    options = SUMO_COMPILE_OPTIONS if params == "sumo" else {}
    flows = network.driving_flows(movement_flows(routes, begin_s=prepared.begin_s, end_s=prepared.end_s))
    if flows.empty:
        raise ValueError(f"{sc.name}: the demand gives no movement flows at the signals; nothing to predict")
    net = compile_network(network, flows, **options)
    probe = plan_from_arrays(net, webster_plan(net, OptimiserSettings(seed=seed)))
    excluded = unsafe_signals(probe, network, report=out_dir / "excluded_signals.txt")
    if excluded:
        left = [s for s in net.signal_ids if s not in excluded]
        if not left:
            raise ValueError(f"{sc.name}: no signal left to plan: the validator rejects the own program of every "
                             "signal with flows: " + "; ".join(f"{k}: {v}" for k, v in sorted(excluded.items())))
        net = compile_network(network, flows, signals=left, **options)
    plans = random_plans(net, n_plans, seed)
    predicted = [float(evaluate(net, p, model_params).mean_delay_s) for p in plans]
    jobs_list = []
    for k, p in enumerate(plans):
        path = out_dir / f"plan{k}.json"
        with_design_choice(plan_from_arrays(net, p), designs, "own").to_json(path)
        (job,) = make_jobs(prepared, out_dir / f"p{k}", controllers=["fixed"])
        jobs_list.append(replace(job, options={"plan": str(path)}))
    with ProcessPoolExecutor(max_workers=jobs, max_tasks_per_child=1) as pool:  # one process per SUMO run
        results = list(pool.map(run_job, jobs_list))
    measured = [r.summary["mean_time_loss_s"] for r in results]
    resco = [r.summary["resco_delay_s"] for r in results]  # with the wait to enter the network
    # what the model predicts is the delay at the planned signals, per vehicle crossing one;
    # SUMO's counterpart: time loss on their approach edges per vehicle entering them (a trip's
    # mean time loss also counts vehicles that never meet a planned signal: A10KW's motorway)
    edges = sorted({e for sid in net.signal_ids for e in prepared.approaches.get(sid, {})})
    approach = [_approach_delay(job.workdir / "approaches.edgedata.xml", edges) for job in jobs_list]
    calibrated: dict = {}
    if calibrate:  # the same plans, predicted with the saturation flow SUMO measures on this network
        calibrated = _calibrated(sc, prepared.net_file, designs, flows, net, plans, measured, model_params, options,
                                 seed, out_dir / "calibration")
    rho, rho_resco, rho_approach = (_spearman(predicted, m) for m in (measured, resco, approach))
    note = ""
    if rho is None:  # ρ is undefined: say why instead of NaN
        note = (f"no ranking: the model predicts {predicted[0]:.1f} s/veh for every plan" if np.ptp(predicted) == 0
                else f"no ranking: SUMO measures {measured[0]:.1f} s/veh for every plan")
        note += " (the planned signals carry no traffic?)"
    return {"scenario": sc.name, "params": params, "plans": n_plans, "seed": seed, "spearman_rho": rho, "note": note,
            "signals": net.n_signals, "excluded_signals": sorted(excluded), "duration_s": sc.duration_s,
            "vehicles_arrived": [r.summary["vehicles_arrived"] for r in results],
            "teleports": [r.summary["teleports"] for r in results],
            "predicted_mean_delay_s": predicted, "sumo_mean_time_loss_s": measured,
            "sumo_resco_delay_s": resco, "spearman_rho_resco": rho_resco,
            "sumo_approach_delay_s": approach, "spearman_rho_approach": rho_approach,
            "cycles_s": [p.cycle_s for p in plans], **calibrated}


def _spearman(predicted: list[float], measured: list[float]) -> float | None:
    """Spearman's ρ of two figures per plan; None (undefined, not NaN) where either is constant."""
    if np.ptp(predicted) == 0 or np.ptp(measured) == 0:
        return None
    return float(spearmanr(predicted, measured).statistic)


def _approach_delay(edgedata: Path, edges: list[str]) -> float:
    """SUMO's time loss on ``edges`` (summed over the run) per vehicle that entered or departed on them."""
    from greenwave.engine.results import edge_data

    data = edge_data(edgedata)
    loss = sum(data.get(e, {}).get("timeLoss", 0.0) for e in edges)
    entered = sum(data.get(e, {}).get("entered", 0.0) + data.get(e, {}).get("departed", 0.0) for e in edges)
    return loss / entered if entered else 0.0


def _calibrated(sc, net_file, designs, flows, net, plans, measured, model_params, options, seed: int,
                out_dir: Path) -> dict:  # type: ignore[no-untyped-def]
    """``greenwave calibrate`` on the scenario (the network's own programs, its demand doubled,
    or four times where that saturates too few greens) and the model's predictions of
    ``plans`` with the saturation flow it measured; the error instead where SUMO gives too few
    saturated greens to calibrate on either way."""
    from greenwave.controllers.stage_choice import apply_choice
    from greenwave.engine.model import evaluate
    from greenwave.errors import GreenwaveError
    from greenwave.networks import load_network
    from greenwave.networks.compile import compile_network
    from greenwave.scenarios.calibrate import calibrate_scenario

    for scale in (2.0, 4.0):
        try:
            cal, _lanes = calibrate_scenario(sc, out_dir / f"scale{scale:g}", seed=seed, scale=scale)
            break
        except GreenwaveError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
    else:
        return {"calibration_error": error}
    sat = cal.saturation_flow_per_lane_vph
    cal_net = compile_network(apply_choice(load_network(net_file, saturation_flow_per_lane=sat), designs), flows,
                              signals=list(net.signal_ids), **options)
    predicted = [float(evaluate(cal_net, p, model_params).mean_delay_s) for p in plans]
    rho = _spearman(predicted, measured)
    return {"calibration": {**cal.to_dict(), "scale": scale}, "predicted_mean_delay_calibrated_s": predicted,
            "spearman_rho_calibrated": rho}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plans", type=int, default=20)
    ap.add_argument("--scenarios", default=None, help="bundled names or TOML files (default: arterial6,grid4_moderate "
                    "unless --networks is given)")
    ap.add_argument("--networks", default="", help="real networks of benchmarks/real_networks.py, comma-separated")
    ap.add_argument("--duration", type=float, default=900.0, help="simulated seconds on a real network (default 900)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--params", choices=("sumo", "default"), default="sumo")
    ap.add_argument("--calibrate", action="store_true",
                    help="also predict every plan with the saturation flow greenwave calibrate measures on the network")
    ap.add_argument("--json", required=True)
    args = ap.parse_args(argv)
    from greenwave.engine.results import write_text_atomic
    from greenwave.errors import GreenwaveError

    out: list[dict] = []
    path = Path(args.json)
    t0 = time.perf_counter()
    scenarios = args.scenarios or ("" if args.networks else "arterial6,grid4_moderate")
    with tempfile.TemporaryDirectory() as tmp:
        todo = [(name, None) for name in scenarios.split(",") if name]
        if args.networks:
            import real_networks

            cases = real_networks.catalogue()
            names = list(cases) if args.networks == "all" else [n for n in args.networks.split(",") if n]
            unknown = [n for n in names if n not in cases]
            if unknown:
                ap.error(f"unknown network {', '.join(map(repr, unknown))}; known: all, {', '.join(cases)}")
            for name in names:
                todo.append((name, lambda name=name: real_networks.scenario(
                    cases[name], Path(tmp) / "inputs", duration=args.duration, seeds=[args.seed],
                    controllers=["fixed"])))
        for name, make in todo:
            t1 = time.perf_counter()
            try:
                r = measure(name, args.plans, args.seed, args.jobs, Path(tmp) / name, args.params,
                            scenario=make() if make is not None else None, calibrate=args.calibrate)
            except (GreenwaveError, ValueError, OSError) as exc:  # say so and go on with the next one
                r = {"scenario": name, "error": f"{type(exc).__name__}: {exc}"[:1000]}
                print(f"{name}: not measured: {r['error']}", flush=True)
            else:
                rho = "undefined" if r["spearman_rho"] is None else f"{r['spearman_rho']:.3f}"
                rho_a = "undefined" if r["spearman_rho_approach"] is None else f"{r['spearman_rho_approach']:.3f}"
                print(f"{r['scenario']}: Spearman rho = {rho} over {r['plans']} plans "
                      f"({r['signals']} signals; model {np.mean(r['predicted_mean_delay_s']):.1f} s/veh, "
                      f"SUMO {np.mean(r['sumo_mean_time_loss_s']):.1f} s/veh on average; at the signals' "
                      f"approaches {np.mean(r['sumo_approach_delay_s']):.1f} s/veh, rho = {rho_a}) "
                      f"{r['note']}".rstrip(), flush=True)
                if "calibration" in r:
                    rho_c = r["spearman_rho_calibrated"]
                    print(f"  calibrated: {r['calibration']['saturation_flow_per_lane_vph']:.0f} veh/h per lane, "
                          f"rho = {'undefined' if rho_c is None else f'{rho_c:.3f}'}, "
                          f"model {np.mean(r['predicted_mean_delay_calibrated_s']):.1f} s/veh", flush=True)
                elif "calibration_error" in r:
                    print(f"  not calibrated: {r['calibration_error']}", flush=True)
            r["wall_s"] = round(time.perf_counter() - t1, 1)
            out.append(r)
            write_text_atomic(json.dumps({"results": out, "wall_s": round(time.perf_counter() - t0, 1)}, indent=2),
                              path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
