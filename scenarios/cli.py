"""The ``greenwave`` command line. Only this module exits; library code raises."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from greenwave import __version__
from greenwave.errors import GreenwaveError

if TYPE_CHECKING:
    from greenwave.controllers.planning import DemandPlan, SubareaPlan
    from greenwave.controllers.plans.safety_rules import SafetyStandards


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from greenwave.scenarios.spec import DEFAULT_SCENARIO, bundled_scenarios, load_scenario

    for name, path in bundled_scenarios().items():
        sc = load_scenario(path)
        mark = " (default)" if name == DEFAULT_SCENARIO else ""
        print(f"{name:24s} {sc.description}{mark}")
    return 0


def _cmd_controllers(args: argparse.Namespace) -> int:
    from greenwave.controllers.base import controller_infos

    for info in controller_infos():
        print(f"{info.name:26s} {info.kind:9s} {info.description}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import pandas as pd

    from greenwave.scenarios.runner import comparison_table, run_scenario
    from greenwave.scenarios.spec import load_scenario

    scenario = load_scenario(args.scenario)
    seeds = list(range(1, args.seeds + 1)) if args.seeds else None
    out = _output_dir(args.output, scenario.name)
    t0 = time.perf_counter()
    summary = run_scenario(
        scenario,
        out,
        controllers=args.controllers,
        seeds=seeds,
        jobs=args.jobs,
        gui=args.gui,
        progress=_say,
        check_safety=args.check_safety,
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"\n{scenario.name}: mean over {summary['seed'].nunique()} seed(s), "
              f"{scenario.duration_s:g} s simulated")
        table = comparison_table(summary)
        print(table.round(2).to_string())
    best = table.index[table["best_baseline"] == "*"]
    if len(best):
        print(f"\nbest baseline (*): {best[0]}, RESCO delay {table.loc[best[0], 'resco_delay_s']:.2f} s/veh; "
              "vs_best_baseline = each controller's RESCO delay / the best baseline's (below 1: better)")
        if summary["seed"].nunique() > 1:
            print("vs_best_low .. vs_best_high: its 90 % interval, paired over the seeds; where it holds 1 the "
                  "seeds cannot tell that controller from the best baseline")
    print(f"\nwrote {out / 'summary.csv'} and {out / 'intersections.csv'} "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def _output_dir(given: str | None, name: str) -> Path:
    """``--output`` or ``greenwave-output/NAME``, made absolute: SUMO resolves relative paths in
    an additional file against that file's folder, and SUMO's tools run in their work folders."""
    return (Path(given) if given else Path("greenwave-output") / name).resolve()


def _cmd_optimise(args: argparse.Namespace) -> int:
    from greenwave.controllers.planning import plan_for_demand
    from greenwave.controllers.stage_choice import DEFAULT_STAGE_DESIGN
    from greenwave.engine.arrays import SUMO_SATURATION_FLOW_PER_LANE_VPH
    from greenwave.engine.bandwidth import bands_of_plan, is_arterial
    from greenwave.engine.optimise import OptimiserSettings
    from greenwave.engine.routing import route_choice_args
    from greenwave.errors import PlanError, ScenarioError
    from greenwave.networks.subareas import SubareaSettings
    from greenwave.scenarios.runner import make_jobs, output_folder, prepare
    from greenwave.scenarios.spec import load_scenario
    from greenwave.scenarios.sumocfg import localise_additional

    scenario = load_scenario(args.scenario)
    out = output_folder(_output_dir(args.output, f"{scenario.name}-plan"), ("plan.json", "plan.add.xml", "work"))
    seed = scenario.seeds[0]
    n_proof = len(scenario.seeds) if args.proof_seeds is None else args.proof_seeds
    if not 0 <= n_proof <= len(scenario.seeds):
        raise ScenarioError(f"--proof-seeds must be 0..{len(scenario.seeds)} (the scenario's seeds), "
                            f"not {n_proof}")
    calibration = None
    if args.calibration is not None:
        from greenwave.engine.calibration import load_calibration

        calibration = load_calibration(args.calibration)
        _say(f"model calibrated by {args.calibration}: saturation flow "
             f"{calibration.saturation_flow_per_lane_vph:.0f} veh/h/lane")
    prepared = prepare(scenario, out, seeds=list(scenario.seeds[:max(1, n_proof)]))
    if not prepared.approaches:
        _say(f"greenwave: error: {scenario.name}: the network {prepared.net_file} has no traffic signals; "
             "nothing to optimise (greenwave run works on it: its junctions run as they are)")
        return 1
    _say(f"{scenario.name}: optimising {len(prepared.approaches)} signals for objective "
         f"{args.objective!r} on the demand of seed {seed}")
    t0 = time.perf_counter()
    # trips and from/to flows on the routes SUMO gives them at insertion (a SUMO run of the
    # scenario with its own programs), as the ``optimised`` controller plans
    # (files that declare outputs as copies writing into the work folder, as a run loads them)
    run = dataclasses.replace(make_jobs(prepared, out / "work", controllers=["static"])[0], workdir=out / "work",
                              additional_files=localise_additional(prepared.additional_files,
                                                                   out / "work" / "scenario_files"))
    demand = run.routed_demand()

    def plan_signals(leave_out: Mapping[str, str]) -> DemandPlan:
        return plan_for_demand(
            prepared.net_file, demand,
            begin_s=prepared.begin_s, end_s=prepared.end_s, workdir=out / "work", seed=seed,
            objective=args.objective, settings=OptimiserSettings(seed=seed),
            program_files=prepared.program_files, run_begin_s=scenario.begin_s,
            saturation_flow_per_lane=(SUMO_SATURATION_FLOW_PER_LANE_VPH if calibration is None
                                      else calibration.saturation_flow_per_lane_vph),
            stage_design=DEFAULT_STAGE_DESIGN if args.stage_design is None else args.stage_design,
            route_choice=route_choice_args(scenario.demand.sumo_config),  # trips routed as SUMO routes them
            subareas=SubareaSettings() if args.subareas else None, leave_out=leave_out,
        )

    result = plan_signals({})
    wall = time.perf_counter() - t0
    from greenwave.controllers.plans.layout import complete_plan
    from greenwave.controllers.plans.sumo_writer import write_sumo_additional

    if not result.plan.signals:
        _say(f"greenwave: error: {scenario.name}: no signal of {prepared.net_file} can be timed safely "
             f"(see {out / 'work' / 'excluded_signals.txt'}); nothing to optimise, nothing written")
        return 1
    # the default optimiser's figures
    assert result.subareas and result.existing is not None
    plan_json = out / "plan.json"
    plan = result.plan
    proof, proof_lines = None, []
    if n_proof:
        from greenwave.controllers.optimised import prove_demand_plan
        from greenwave.controllers.proof import SimulationSetup, proof_setup

        sc = prepared.scenario
        cfg = sc.demand.sumo_config

        def cases(folder: Path) -> list[tuple[int, SimulationSetup]]:
            """The scenario's own seeds and their demand (a controller's proof runs seeds of its own)."""
            adds = tuple(localise_additional(prepared.additional_files, folder / "scenario_files"))
            return [(s, proof_setup(folder, prepared.net_file, prepared.routes_by_seed[s], adds, begin_s=sc.begin_s,
                                    end_s=sc.end_s, step_length_s=sc.step_length_s,
                                    time_to_teleport_s=sc.time_to_teleport_s, sumo_config=cfg))
                    for s in scenario.seeds[:n_proof]]

        _say(f"proving the plan in SUMO against the network's own programs on {n_proof} seed(s)")
        proven = prove_demand_plan(result, plan_signals, cases, out / "work" / "proof", program_id="gw_optimised",
                                   jobs=args.jobs)
        result, proof, proof_lines = proven.planned, proven.proof, proven.lines
        # what greenwave changes; the signals the proof kept run their own programs, which are
        # not greenwave's to write (DRT's own programs give crossings less than walk + clearance)
        plan = proof.changed
    plan = complete_plan(plan, result.network)  # records the network, signal groups, links
    own = {**result.excluded, **(proof.kept_existing if proof is not None else {})}
    if own:  # named in the plan, so that export knows they are left out on purpose
        plan.meta["own_program_signals"] = sorted(own)
    add = None
    if plan.signals:
        plan.to_json(plan_json)
        add = write_sumo_additional(plan, result.network, out / "plan.add.xml", program_id="gw_optimised")
    else:  # nothing to export or load on top of the network's programs; no earlier run's files left to mislead
        plan_json.unlink(missing_ok=True)
        (out / "plan.add.xml").unlink(missing_ok=True)
    areas = result.subareas
    print(f"signals {sum(a.compiled.n_signals for a in areas)}, links {sum(a.compiled.n_links for a in areas)}, "
          f"{len(areas)} sub-area(s) (signals that share a cycle)")
    for n, a in enumerate(areas[:10], 1):
        print(f"  sub-area {n}: {a.compiled.n_signals} signal(s), cycle {a.result.plan.cycle_s:g} s: "
              f"{', '.join(a.signals[:6])}{' …' if len(a.signals) > 6 else ''}")
    if len(areas) > 10:
        print(f"  … {len(areas) - 10} more, all in {plan_json} (meta.subareas)")
    if result.excluded:
        print(f"{len(result.excluded)} signal(s) left on their own programs "
              f"(all listed in {out / 'work' / 'excluded_signals.txt'}):")
        for sid, why in sorted(result.excluded.items())[:5]:
            print(f"  {sid}: {why}")
    for sid, c in sorted(result.designs.items()):
        if not c.design.is_own:
            print(f"signal {sid}: stage design {c.design.name!r} ({c.design.n_stages} stages): {c.why}")
    if result.base_pi is not None:
        print(f"PI of the network's own programs: {result.base_pi:12.0f}")
    pi_start, pi = sum(a.result.pi_start for a in areas), sum(a.result.pi for a in areas)
    print(f"PI before (start plan):           {pi_start:12.0f}   mean delay {_mean_delay(areas, True):6.1f} s/veh")
    print(f"PI after optimisation:            {pi:12.0f}   mean delay {_mean_delay(areas, False):6.1f} s/veh")
    print(f"{sum(a.result.evaluations for a in areas)} model evaluations in "
          f"{sum(a.result.wall_s for a in areas):.2f} s (total {wall:.2f} s)")
    if proof_lines:
        print("\n".join(proof_lines))
    if add is None:
        print(f"no plan written: SUMO measured nothing better than the network's own programs "
              f"(the proof: {out / 'work' / 'proof' / 'proof.json'})")
    else:
        print(f"wrote {plan_json} and {add}")
    band = None
    main = areas[0]  # the largest sub-area: an arterial gets its time-space diagram
    if is_arterial(main.compiled) and (proof is None or proof.decision == "candidate"):
        try:
            band = bands_of_plan(main.compiled, main.result.plan)
        except PlanError as exc:
            _say(f"no time-space diagram: {exc}")
    if band is not None:
        from greenwave.scenarios.report import time_space_diagram

        png = time_space_diagram(main.compiled, main.result.plan, band, out / "time_space.png",
                                 title=f"{scenario.name}: cycle {main.result.plan.cycle_s:g} s")
        print(f"green bands of the optimised plan: {band.band_out_s:.1f} s outbound, "
              f"{band.band_in_s:.1f} s inbound; time-space diagram {png}")
    else:
        (out / "time_space.png").unlink(missing_ok=True)  # an earlier run's diagram is not this plan's
    return 0


def _mean_delay(areas: Sequence[SubareaPlan], start: bool) -> float:
    """The model's mean delay over sub-areas, weighted by the demand each one carries."""
    w = [float(a.compiled.link_flow_vps.sum()) for a in areas]
    d = [a.result.mean_delay_start_s if start else a.result.mean_delay_s for a in areas]
    return sum(x * y for x, y in zip(w, d, strict=True)) / sum(w) if sum(w) > 0 else 0.0


def _cmd_parking_sweep(args: argparse.Namespace) -> int:
    import pandas as pd

    from greenwave.parking.results import sweep_table
    from greenwave.scenarios.parking_sweep import parking_sweep
    from greenwave.scenarios.spec import load_scenario

    scenario = load_scenario(args.scenario)
    try:
        rates = [float(r) for r in args.rates]
    except ValueError:
        _say(f"greenwave: error: --rates must be numbers in [0, 1], got {','.join(args.rates)}")
        return 2
    seeds = list(range(1, args.seeds + 1)) if args.seeds else None
    out = _output_dir(args.output, f"{scenario.name}-parking-sweep")
    sweep = parking_sweep(scenario, out, rates=rates, policies=args.policies, seeds=seeds,
                          controller=args.controller, jobs=args.jobs, progress=_say)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(sweep_table(sweep).round(3).to_string())
    print(f"\nwrote {out / 'sweep.csv'} and {out / 'sweep.png'}")
    return 0


def _standards(args: argparse.Namespace) -> tuple[SafetyStandards, bool]:
    """The safety standards of ``validate`` / ``export`` (defaults unless given) and --partial."""
    from greenwave.controllers.plans.safety import check_limit
    from greenwave.controllers.plans.safety_rules import SafetyStandards

    for opt in ("min_green", "min_yellow", "min_allred", "ped_walk", "ped_speed", "max_cycle", "max_green"):
        check_limit("--" + opt.replace("_", "-"), getattr(args, opt), optional=True)
    return SafetyStandards.given(
        min_green_s=args.min_green, min_yellow_s=args.min_yellow, min_allred_s=args.min_allred,
        pedestrian_walk_s=args.ped_walk, pedestrian_speed_mps=args.ped_speed,
        max_cycle_s=args.max_cycle, max_green_s=args.max_green,
    ), bool(args.partial)


def _add_standards(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("safety standards (a plan cannot lower them; see README 'Export to controllers')")
    g.add_argument("--min-green", type=float, default=None, help="shortest green, s (default: 5; raised to a "
                   "phase's minDur; the network's own green where that is shorter)")
    g.add_argument("--min-yellow", type=float, default=None, help="shortest yellow accepted, s (default: 3)")
    g.add_argument("--min-allred", type=float, default=None,
                   help="shortest all-red, s (default: the network's own all-red after each stage)")
    g.add_argument("--ped-walk", type=float, default=None, help="pedestrian walk time, s (default: 4)")
    g.add_argument("--ped-speed", type=float, default=None,
                   help="pedestrian clearance speed over the crossing, m/s (default: 1.2)")
    g.add_argument("--max-cycle", type=float, default=None, help="longest cycle, s (default: 300)")
    g.add_argument("--max-green", type=float, default=None, help="longest green, s (default: 255)")
    p.add_argument("--partial", action="store_true",
                   help="accept a plan for some of the network's signals only (the others keep their programs)")


def _cmd_export(args: argparse.Namespace) -> int:
    from greenwave.controllers.export.common import export, load_for_export, parse_targets, validation_lines

    standards, partial = _standards(args)
    plan, network = load_for_export(args.plan, args.network)
    safe, lines = validation_lines(plan, network, standards=standards, partial=partial)
    if not safe:
        for line in lines:
            print(line)
        _say(f"greenwave: error: {args.plan}: plan is unsafe ({len(lines)} cause(s)); nothing written or sent")
        return 1
    targets = parse_targets(args.to or [], plan, signal=args.signal)
    for line in export(plan, network, args.format, output=args.output, targets=targets, protocol=args.protocol,
                       timeout_s=args.timeout, standards=standards, partial=partial):
        print(line)
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from greenwave.engine.calibration import default_calibration
    from greenwave.scenarios.calibrate import calibrate_scenario
    from greenwave.scenarios.runner import output_folder
    from greenwave.scenarios.spec import load_scenario

    scenario = load_scenario(args.scenario)
    out = output_folder(_output_dir(args.output, f"{scenario.name}-calibration"),
                        ("calibration.json", "calibration_lanes.csv"))
    _say(f"{scenario.name}: measuring discharge at every signalised approach lane in SUMO "
         f"(demand × {args.scale:g})")
    cal, table = calibrate_scenario(scenario, out, scale=args.scale, duration_s=args.duration)
    ref = default_calibration()
    if cal.lanes_used == "none":
        print(f"saturation flow: no straight movement ran saturated; the built-in "
              f"{ref.saturation_flow_per_lane_vph:.0f} veh/h/lane is kept (per-lane figures of mixed lanes in the CSV)")
    else:
        where = ("straight-only lanes" if cal.lanes_used == "straight" else
                 "the straight vehicles of lanes shared with turns (no straight-only lane ran saturated; turners "
                 "ahead may slow them)")
        print(f"saturation flow {cal.saturation_flow_per_lane_vph:7.0f} veh/h/lane on {where} (built-in "
              f"{ref.saturation_flow_per_lane_vph:.0f}, measured on greenwave's generated grid)")
    print(f"start-up lost time {cal.start_lag_s:.2f} s (HCM: 4th crossing − 4 headways; reported, not applied)")
    print(f"from {cal.greens_measured} saturated greens on {cal.lanes_measured} of {len(table)} approach lanes; "
          f"per lane in {out / 'calibration_lanes.csv'}")
    if cal.programs != "own":
        print(f"measured under SUMO's rebuilt fixed-time programs ({cal.programs}): the network's own programs "
              "hardly changed in the run (saturation flow is the lanes', not the programs')")
    print(f"wrote {out / 'calibration.json'}: plan with it by greenwave optimise --calibration FILE, "
          f"or [controller_options.optimised] calibration = \"FILE\"")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from greenwave.controllers.export.common import load_for_export, validation_lines

    standards, partial = _standards(args)
    plan, network = load_for_export(args.plan, args.network)
    safe, lines = validation_lines(plan, network, standards=standards, partial=partial)
    for line in lines:
        print(line)
    n_stages = sum(len(t.stages) for t in plan.signals.values())
    if safe:
        print(f"SAFE: {len(plan.signals)} signals, {n_stages} stages checked against {network.path}")
        return 0
    print(f"UNSAFE: {len(lines)} cause(s) in {len({ln.split(':')[0] for ln in lines})} place(s)")
    return 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(
        prog="greenwave",
        description="Optimise signal timing and parking guidance for a city and prove it in SUMO.",
    )
    p.add_argument("--version", action="version", version=f"greenwave {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("scenarios", help="list the bundled scenarios")
    s.set_defaults(func=_cmd_scenarios)

    c = sub.add_parser("controllers", help="list every controller: NAME KIND DESCRIPTION (KIND: baseline or greenwave)")
    c.set_defaults(func=_cmd_controllers)

    r = sub.add_parser("run", help="run a scenario's controllers × seeds in SUMO and compare them")
    r.add_argument("scenario", nargs="?", default="default",
                   help="bundled scenario name or TOML file (default: %(default)s)")
    r.add_argument("--controllers", type=_csv, default=None,
                   help="comma-separated controllers (default: the scenario's)")
    r.add_argument("--seeds", type=int, default=None, help="run seeds 1..N (default: the scenario's)")
    r.add_argument("--jobs", type=int, default=2, help="parallel SUMO runs (default: %(default)s)")
    r.add_argument("--output", default=None, help="output folder (default: greenwave-output/NAME)")
    r.add_argument("--gui", action="store_true", help="watch the runs in sumo-gui (through TraCI)")
    r.add_argument("--check-safety", action="store_true",
                   help="check every signal change of every run (conflicting greens, yellow, minimum green, "
                        "all-red): safety_violations in summary.csv, details in runs/*/transition_safety.json")
    r.set_defaults(func=_cmd_run)

    o = sub.add_parser("optimise", help="optimise cycle, splits and offsets on a scenario's demand")
    o.add_argument("scenario", nargs="?", default="default",
                   help="bundled scenario name or TOML file (default: %(default)s)")
    o.add_argument("--objective", choices=["delay", "stops", "bandwidth"], default="delay",
                   help="what to minimise (bandwidth: start from the two-way green wave)")
    o.add_argument("--output", default=None, help="output folder (default: greenwave-output/NAME-plan)")
    o.add_argument("--calibration", default=None, metavar="FILE",
                   help="plan with the model settings greenwave calibrate measured on this network (calibration.json)")
    o.add_argument("--proof-seeds", type=int, default=None, metavar="N",
                   help="prove the plan in SUMO against the network's own programs on the scenario's first N "
                        "seeds (default: all of them); 0 skips the proof (the plan is then only the model's)")
    o.add_argument("--jobs", type=int, default=2,
                   help="proof runs at a time, SUMO subprocesses (default: %(default)s; same figures either way)")
    o.add_argument("--stage-design", default=None,
                   help="stages each signal runs: own, best (the model's choice per signal) or a design name "
                        "(rebuilt, merged, two_stage, split, lead_left, conflict_graph); default: the optimised "
                        "controller's")
    o.add_argument("--subareas", action="store_true",
                   help="give each sub-area (neighbours close together or with heavy flow between them) a cycle of "
                        "its own instead of one common cycle for every signal")
    o.set_defaults(func=_cmd_optimise)

    cb = sub.add_parser("calibrate", help="measure the network's saturation flow and start lag in SUMO, for the model")
    cb.add_argument("scenario", nargs="?", default="default",
                    help="bundled scenario name, TOML file or .sumocfg (default: %(default)s)")
    cb.add_argument("--scale", type=float, default=2.0,
                    help="demand multiplier, so that queues form and greens run saturated (default: %(default)s)")
    cb.add_argument("--duration", type=float, default=None, metavar="S",
                    help="simulated seconds (default: the scenario's, at most 3600)")
    cb.add_argument("--output", default=None, help="output folder (default: greenwave-output/NAME-calibration)")
    cb.set_defaults(func=_cmd_calibrate)

    ps = sub.add_parser("parking-sweep", help="run a parking scenario over networking rates × policies × seeds")
    ps.add_argument("scenario", help="bundled scenario name or TOML file with a [parking] table")
    ps.add_argument("--rates", type=_csv, default=["0", "0.3", "0.5", "0.8", "1.0"],
                    help="comma-separated networking rates in [0, 1] (default: 0,0.3,0.5,0.8,1.0)")
    ps.add_argument("--policies", type=_csv, default=["no_guidance", "guidance", "pricing"],
                    help="comma-separated parking policies (default: no_guidance,guidance,pricing)")
    ps.add_argument("--controller", default=None, help="signal controller of every run (default: the scenario's first)")
    ps.add_argument("--seeds", type=int, default=None, help="run seeds 1..N (default: the scenario's)")
    ps.add_argument("--jobs", type=int, default=2, help="parallel SUMO runs (default: %(default)s)")
    ps.add_argument("--output", default=None, help="output folder (default: greenwave-output/NAME-parking-sweep)")
    ps.set_defaults(func=_cmd_parking_sweep)

    ex = sub.add_parser("export", help="validate a timing plan and export it to SUMO, UTDF, NTCIP, GB/T 20999 or JSON")
    ex.add_argument("plan", help="timing-plan JSON (greenwave optimise writes DIR/plan.json)")
    ex.add_argument("--format", required=True, choices=["sumo", "utdf", "ntcip", "gbt20999", "json"])
    ex.add_argument("--network", default=None, help="SUMO .net.xml (default: the plan's net_file)")
    ex.add_argument("--output", default=None, help="file to write (sumo, utdf, gbt20999, json)")
    ex.add_argument("--to", action="append", default=None, metavar="[SIGNAL=]HOST:PORT",
                    help="controller to send to (ntcip by SNMP, gbt20999 by --protocol); repeatable")
    ex.add_argument("--signal", default=None, help="the plan's signal a plain HOST:PORT is for")
    ex.add_argument("--protocol", choices=["tcp", "udp"], default="tcp", help="gbt20999 transport (default: tcp)")
    ex.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for a controller (default: 2)")
    _add_standards(ex)
    ex.set_defaults(func=_cmd_export)

    va = sub.add_parser("validate", help="check a timing plan against a network; exit 1 if unsafe")
    va.add_argument("plan", help="timing-plan JSON")
    va.add_argument("--network", default=None, help="SUMO .net.xml (default: the plan's net_file)")
    _add_standards(va)
    va.set_defaults(func=_cmd_validate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``greenwave`` console script.

    Exit status: 0 done; 1 a clear error (bad input, unsafe plan, failed runs, nothing to do);
    2 bad command-line usage; 130 / 143 stopped by SIGINT (Ctrl-C) / SIGTERM, finished runs kept.
    """
    from greenwave.engine.jobloop import Interrupted, interrupt_on_sigterm

    args = build_parser().parse_args(argv)
    from greenwave.scenarios.limits import MAX_JOBS, MAX_SEEDS

    if getattr(args, "seeds", None) is not None and not 1 <= args.seeds <= MAX_SEEDS:
        _say(f"greenwave: error: --seeds must be 1..{MAX_SEEDS}")
        return 2
    if not 1 <= getattr(args, "jobs", 1) <= MAX_JOBS:
        _say(f"greenwave: error: --jobs must be 1..{MAX_JOBS} (parallel SUMO runs)")
        return 2
    try:
        interrupt_on_sigterm()
    except ValueError:  # not the main thread (called from a test's thread): SIGTERM stays default
        pass
    try:
        return int(args.func(args))
    except GreenwaveError as exc:
        _say(f"greenwave: error: {exc}")
        return 1
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else 2
        _say(f"greenwave: interrupted ({'SIGTERM' if signum == 15 else 'SIGINT'}); no new run was started, "
             "the running ones were stopped, and every finished run is in the output folder")
        return 128 + signum


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
