"""The ``greenwave`` command line. Only this module exits; library code raises."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from greenwave import __version__
from greenwave.errors import GreenwaveError


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
        print(comparison_table(summary).round(2).to_string())
    print(f"\nwrote {out / 'summary.csv'} and {out / 'intersections.csv'} "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def _output_dir(given: str | None, name: str) -> Path:
    """``--output`` or ``greenwave-output/NAME``, made absolute: SUMO resolves relative paths in
    an additional file against that file's folder, and SUMO's tools run in their work folders."""
    return (Path(given) if given else Path("greenwave-output") / name).resolve()


def _cmd_optimise(args: argparse.Namespace) -> int:
    from greenwave.controllers.optimised import optimise_for_demand
    from greenwave.engine.bandwidth import bands_of_plan, is_arterial
    from greenwave.engine.optimise import OptimiserSettings
    from greenwave.errors import PlanError
    from greenwave.scenarios.runner import prepare
    from greenwave.scenarios.spec import load_scenario

    scenario = load_scenario(args.scenario)
    out = _output_dir(args.output, f"{scenario.name}-plan")
    seed = scenario.seeds[0]
    prepared = prepare(scenario, out, seeds=[seed])
    _say(f"{scenario.name}: optimising {len(prepared.approaches)} signals for objective "
         f"{args.objective!r} on the demand of seed {seed}")
    t0 = time.perf_counter()
    result = optimise_for_demand(
        prepared.net_file, prepared.routes_by_seed[seed],
        begin_s=prepared.begin_s, end_s=prepared.end_s, workdir=out / "work", seed=seed,
        objective=args.objective, settings=OptimiserSettings(seed=seed),
        **({} if args.stage_design is None else {"stage_design": args.stage_design}),
    )
    wall = time.perf_counter() - t0
    from greenwave.controllers.plan import complete_plan, write_sumo_additional

    plan_json = out / "plan.json"
    plan = complete_plan(result.plan, result.network)  # records the network, signal groups, links
    plan.to_json(plan_json)
    add = write_sumo_additional(plan, result.network, out / "plan.add.xml", program_id="gw_optimised")
    r = result.result
    print(f"signals {result.compiled.n_signals}, links {result.compiled.n_links}, "
          f"common cycle {r.plan.cycle_s:g} s")
    if result.excluded:
        print(f"{len(result.excluded)} signal(s) left on their own programs, no safe plan for them "
              f"(all listed in {out / 'work' / 'excluded_signals.txt'}):")
        for sid, why in sorted(result.excluded.items())[:5]:
            print(f"  {sid}: {why}")
    for sid, c in sorted(result.designs.items()):
        if not c.design.is_own:
            print(f"signal {sid}: stage design {c.design.name!r} ({c.design.n_stages} stages): {c.why}")
    if result.base_pi is not None:
        print(f"PI of the network's own programs: {result.base_pi:12.0f}")
    print(f"PI before (start plan):           {r.pi_start:12.0f}   mean delay {r.mean_delay_start_s:6.1f} s/veh")
    print(f"PI after optimisation:            {r.pi:12.0f}   mean delay {r.mean_delay_s:6.1f} s/veh")
    print(f"{r.evaluations} model evaluations in {r.wall_s:.2f} s (total {wall:.2f} s)")
    print(f"wrote {plan_json} and {add}")
    band = None
    if is_arterial(result.compiled):
        try:
            band = bands_of_plan(result.compiled, r.plan)
        except PlanError as exc:
            _say(f"no time-space diagram: {exc}")
    if band is not None:
        from greenwave.scenarios.report import time_space_diagram

        png = time_space_diagram(result.compiled, r.plan, band, out / "time_space.png",
                                 title=f"{scenario.name}: cycle {r.plan.cycle_s:g} s")
        print(f"green bands of the optimised plan: {band.band_out_s:.1f} s outbound, "
              f"{band.band_in_s:.1f} s inbound; time-space diagram {png}")
    return 0


def _cmd_parking_sweep(args: argparse.Namespace) -> int:
    import pandas as pd

    from greenwave.parking.results import parking_sweep, sweep_table
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


def _cmd_export(args: argparse.Namespace) -> int:
    from greenwave.controllers.export import export, load_for_export, parse_targets, validation_lines

    plan, network = load_for_export(args.plan, args.network)
    safe, lines = validation_lines(plan, network, min_yellow_s=args.min_yellow)
    if not safe:
        for line in lines:
            print(line)
        _say(f"greenwave: error: {args.plan}: plan is unsafe ({len(lines)} violation(s)); nothing written or sent")
        return 1
    targets = parse_targets(args.to or [], plan, signal=args.signal)
    for line in export(plan, network, args.format, output=args.output, targets=targets, protocol=args.protocol,
                       timeout_s=args.timeout, min_yellow_s=args.min_yellow):
        print(line)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from greenwave.controllers.export import load_for_export, validation_lines

    plan, network = load_for_export(args.plan, args.network)
    safe, lines = validation_lines(plan, network, min_yellow_s=args.min_yellow)
    for line in lines:
        print(line)
    n_stages = sum(len(t.stages) for t in plan.signals.values())
    if safe:
        print(f"SAFE: {len(plan.signals)} signals, {n_stages} stages checked against {network.path}")
        return 0
    print(f"UNSAFE: {len(lines)} violation(s) in {len({ln.split(':')[0] for ln in lines})} place(s)")
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
    o.add_argument("--stage-design", default=None,
                   help="stages each signal runs: own, best (the model's choice per signal) or a design name "
                        "(rebuilt, merged, two_stage, split, lead_left); default: the optimised controller's")
    o.set_defaults(func=_cmd_optimise)

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
    ex.add_argument("--min-yellow", type=float, default=None, help="shortest yellow accepted, s (default: 3)")
    ex.set_defaults(func=_cmd_export)

    va = sub.add_parser("validate", help="check a timing plan against a network; exit 1 if unsafe")
    va.add_argument("plan", help="timing-plan JSON")
    va.add_argument("--network", default=None, help="SUMO .net.xml (default: the plan's net_file)")
    va.add_argument("--min-yellow", type=float, default=None, help="shortest yellow accepted, s (default: 3)")
    va.set_defaults(func=_cmd_validate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``greenwave`` console script."""
    args = build_parser().parse_args(argv)
    if getattr(args, "seeds", None) is not None and args.seeds < 1:
        _say("greenwave: error: --seeds must be ≥ 1")
        return 2
    if getattr(args, "jobs", 1) < 1:
        _say("greenwave: error: --jobs must be ≥ 1")
        return 2
    try:
        return int(args.func(args))
    except GreenwaveError as exc:
        _say(f"greenwave: error: {exc}")
        return 1
    except KeyboardInterrupt:
        _say("greenwave: interrupted; finished runs are kept in the output folder")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
