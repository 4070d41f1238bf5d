"""The ``proven`` controller: per signal, the best of SUMO's and greenwave's control, proven in SUMO.

The controller to start with on a new network. Before the scored run it runs every candidate
in SUMO on the run's demand (the run's routes, SUMO seeds of their own:
:func:`greenwave.controllers.proof.run_cases`), each a program for every signal it can control:

- ``static``: the programs the network runs today (its own, or the scenario's);
- ``actuated`` / ``delay_based``: SUMO's actuated controllers on those programs;
- ``sumo-rebuilt-static`` / ``-actuated`` / ``-delay_based``: the programs SUMO designs for
  every signal (:mod:`greenwave.controllers.rebuilt_programs`), keeping the all-red of the
  programs SUMO runs (``all_red="own"``: a program greenwave recommends keeps the network's
  clearances; the baselines of those names run netconvert's design without it);
- ``optimised``: greenwave's fixed-time plan optimised on the run's demand
  (:func:`greenwave.controllers.planning.plan_for_demand`), where it can plan;
  ``optimised-actuated`` / ``optimised-delay_based``: the same plan (its stage designs,
  intergreens and splits) run by SUMO's gap- or delay-based actuated logic, greens between the
  plan's floors and twice the planned green (``write_sumo_additional(control=...)``);
- ``max_pressure`` / ``max_pressure_cyclic`` / ``adaptive`` / ``schedule``: greenwave's controllers that act
  every step, with their default options, and ``max_pressure-short-hold``, max_pressure
  releasing a green after 1.5 s without a vehicle instead of 2.5 s (:data:`STEPPING_CONTROLLERS`; each proof run steps
  libsumo in a fresh process, :func:`~greenwave.controllers.proof.start_controller_proofs`).

Then:

1. each candidate runs uniformly (every signal it covers) on ``proof_seeds`` seeds (up to
   ``proof_jobs`` proof runs at a time);
2. per signal the program candidate whose approaches lost least time (edgeData time loss,
   summed over the seeds, :func:`~greenwave.controllers.proof.signal_approaches`) is chosen
   (a stepping candidate drives every signal or none, so it is not mixed);
3. that mixture runs on the same seeds (unless it is one of the uniform candidates); and the
   best max_pressure candidate (the cyclic one and ``schedule`` included) runs again with
   some signals left alone on the programs step 2 chose for them
   (``max_pressure+left-alone``, its ``left_alone_programs`` option): those it cannot drive
   safely (instead of SUMO's actuated copy of their program), and those whose chosen program
   lost at least :data:`LEAVE_ALONE_GAIN` less than max_pressure on their approaches
   (Luxembourg, one hour: 27 of 50 signals, 40.8 → 38.2 s/veh; on corridor the middle
   signal's fixed-time plan only looked better because it ran coordinated with its
   neighbours, and the variant lost its proof there);
4. where the proof seeds cannot tell the best of the mixture, the left-alone variant and the
   uniform candidates from others (paired per seed: the mean difference below the one-sided
   80 % Student-t bound of the differences), the best and those run on as many seeds again,
   until the seeds tell them apart or ``max_proof_seeds`` (6) is reached (``raced`` in
   ``proven.json``): gridlocking demand scatters a controller's delay from seed to seed by
   more than controllers differ (fkk_in, one hour: 45 to 220 s/veh for the same one). The
   network's own programs (``static``) race on with them while the seeds do not show every
   one of them better at the one-sided 95 % level (:data:`KEEP_LEVEL`);
5. the scored run gets the best by mean RESCO delay over the seeds the raced ones ran (the
   earlier in the list above on a tie), unless those seeds (two or more) do not show it better
   than the network's own programs at :data:`KEEP_LEVEL`: then the network keeps its own
   programs (``kept_own`` in ``proven.json``: first, do no harm; on fkk_in's gridlock the least
   mean of a few seeds picked one of SUMO's programs almost at random). A stepping candidate
   chosen runs as that controller would (``proven`` hands it the run, with its left-alone
   signals' programs for the variant).

So on its first proof seeds ``proven`` is never worse than any of its candidates (SUMO's
programs among them, with the network's clearances) but those it raced, and over the seeds of
a race never worse than the candidates that raced, except that it keeps the network's own
programs where the seeds cannot show the best clearly better; a candidate left out of a race
measured clearly worse than the best on the first seeds (not necessarily than every rival of
it). With ``candidates`` that leave out ``static``, or a single proof seed, nothing is kept
for want of proof. The run folder gets ``proven.json`` (per signal: the chosen candidate, what runs and every
candidate's loss; the candidates' mean delays) and
``proven.txt`` (one line per signal); ``summary.csv`` gains ``proven_choice`` (a candidate,
``mixture``, ``max_pressure[-short-hold|_cyclic]+left-alone`` or ``schedule+left-alone``) and ``proven_signals_changed``
(signals not on the network's own program). A signal whose program
(the network's own, or one SUMO designed) greenwave's own checks find unsafe (conflicting
priority greens) keeps its proof but carries ``greenwave_checks`` with what they found.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import json
import math
import multiprocessing
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenwave.controllers import rebuilt_programs, sumo_programs
from greenwave.controllers.base import Controller, ProgramController, make_controller, register
from greenwave.controllers.planning import DemandPlan, plan_for_demand
from greenwave.controllers.plans.safety import read_excluded
from greenwave.controllers.plans.sumo_writer import write_sumo_additional
from greenwave.controllers.proof import (
    ProofRun,
    SimulationSetup,
    proof_options,
    run_cases,
    signal_approaches,
    simulate_controller,
    start_controller_proofs,
    start_proofs,
)
from greenwave.controllers.proof_race import KEEP_LEVEL, OWN, close_rivals, keep_own, own_in_race
from greenwave.controllers.switching import signal_stages
from greenwave.controllers.tls_xml import active_programs, read_programs, write_additional
from greenwave.engine.jobloop import ProcessExecutor
from greenwave.engine.optimise import OptimiserSettings
from greenwave.engine.results import write_text_atomic
from greenwave.engine.run import RunSpec
from greenwave.errors import GreenwaveError, NetworkError, ScenarioError
from greenwave.networks.program_files import tl_logic_program

if TYPE_CHECKING:
    from greenwave.engine.session import SumoSession
    from greenwave.networks.model import RoadNetwork

__all__ = ["CANDIDATES", "LEFT_ALONE_CONTROLLERS", "STEPPING", "STEPPING_CONTROLLERS", "Candidate",
           "ProvenController", "choose_per_signal", "mixture_programs"]

#: Every candidate, in the order that breaks ties (the simplest first).
CANDIDATES: tuple[str, ...] = ("static", "actuated", "delay_based", "sumo-rebuilt-static",
                               "sumo-rebuilt-actuated", "sumo-rebuilt-delay_based", "optimised",
                               "optimised-actuated", "optimised-delay_based", "max_pressure",
                               "max_pressure-short-hold", "max_pressure_cyclic", "adaptive", "schedule")
#: The candidates that act on the signals every step (greenwave's controllers, proven with
#: libsumo in fresh processes); they run on every signal or not at all, never in a mixture.
STEPPING: tuple[str, ...] = ("max_pressure", "max_pressure-short-hold", "max_pressure_cyclic", "adaptive",
                             "schedule")
#: What each stepping candidate runs: a controller and its options. ``max_pressure-short-hold``
#: releases a green after 1.5 s without a vehicle over its stop-line loops instead of 2.5 s:
#: measured (seed 1, one hour) it cut kuehne from 13.3 to 12.8 s/veh but lost on Monaco,
#: A10KW, RiLSA 1 and corridor, so the proof decides per network.
STEPPING_CONTROLLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "max_pressure": ("max_pressure", {}),
    "max_pressure-short-hold": ("max_pressure", {"hold_gap_s": 1.5}),
    "max_pressure_cyclic": ("max_pressure_cyclic", {}),
    "adaptive": ("adaptive", {}),
    "schedule": ("schedule", {}),
}
#: The stepping controllers that leave signals alone on given programs (``left_alone_programs``).
LEFT_ALONE_CONTROLLERS = ("max_pressure", "max_pressure_cyclic", "schedule")
MIXTURE = "mixture"
#: A max_pressure candidate with the signals it leaves alone on the programs the proof chose (step 3).
LEFT_ALONE = "+left-alone"


@dataclass(frozen=True)
class Candidate:
    """One way to control the network: a programs file (None: the network's own programs) and
    the signals it gives a program of its own (the others keep theirs)."""

    name: str
    programs: Path | None
    signals: frozenset[str]


#: A candidate competes for a signal only when at least this share of the most vehicles any
#: candidate brought onto the signal's approaches entered them: a program that gridlocks the
#: network upstream loses little time at the signals it starves (square's own fixed-time
#: programs, one hour: 0 veh·s at four signals whose approaches 5-10 vehicles reached, against
#: 430-470 vehicles and 200-240 veh·s under the others).
SERVED_SHARE = 0.97


def choose_per_signal(losses: Mapping[str, Mapping[str, float]], order: Sequence[str] = CANDIDATES,
                      entered: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, str]:
    """Per signal the candidate whose approaches lost least.

    ``losses``: candidate → signal → time loss on the signal's approaches (veh·s per run, the
    mean over the proof seeds); a candidate that does not control a signal has no entry for it.
    ``entered`` (candidate → signal → vehicles per run that entered its approaches): a
    candidate that brought fewer than :data:`SERVED_SHARE` of the most any candidate of
    ``losses`` brought onto a signal's approaches does not compete for it (the one that brought
    the most always does, so every signal with a finite loss gets a choice). Ties go to the
    candidate first in ``order`` (then by name). Returns signal → candidate.
    """
    rank = {name: k for k, name in enumerate(order)}
    most: dict[str, float] = {}
    for cand, per in (entered or {}).items():
        if cand not in losses:
            continue
        for sid, n in per.items():
            if not math.isnan(losses[cand].get(sid, math.nan)):
                most[sid] = max(most.get(sid, 0.0), n)
    best: dict[str, tuple[float, int, str]] = {}
    for cand, per in losses.items():
        for sid, loss in per.items():
            if math.isnan(loss):
                continue
            if entered is not None and entered.get(cand, {}).get(sid, 0.0) < SERVED_SHARE * most.get(sid, 0.0):
                continue
            key = (loss, rank.get(cand, len(rank)), cand)
            if sid not in best or key < best[sid]:
                best[sid] = key
    return {sid: key[2] for sid, key in sorted(best.items())}


def mixture_programs(choice: Mapping[str, str], candidates: Mapping[str, Candidate], out: Path) -> Path | None:
    """One additional file with, per signal, the ``<tlLogic>`` of its chosen candidate (None
    when every signal keeps the network's own program). Each program keeps its candidate's
    ``programID``; loaded after the network's and the scenario's programs, it is the one SUMO
    runs for its signal (the last loaded program of a light is active)."""

    files: dict[str, dict[str, ET.Element]] = {}
    elements = []
    for sid, name in sorted(choice.items()):
        cand = candidates[name]
        if cand.programs is None or sid not in cand.signals:
            continue  # the network's own program: nothing to load
        if name not in files:
            files[name] = read_programs(cand.programs)
        program = files[name].get(sid)
        if program is None:
            raise ScenarioError(f"{cand.programs}: candidate {name!r} has no <tlLogic id={sid!r}>")
        elements.append(program)
    if not elements:
        return None
    return write_additional(elements, out, "proven: per signal the program that lost least in SUMO")


#: How a variant runs in a proof: a programs file (None: the network's own programs), run by
#: SUMO in a subprocess, or a factory of a stepping controller, run with libsumo in a fresh process.
Variant = Path | None | Callable[[], Controller]
Case = tuple[int, SimulationSetup]


def _prove(variants: Mapping[str, Variant], cases: Sequence[Case], ctx: RunSpec,
           approaches: Mapping[str, Sequence[str]], work: Path, jobs: int,
           ) -> tuple[dict[str, list[ProofRun]], dict[str, str]]:
    """Every variant on every case: the runs (in the variants' order) and the variants whose
    proof failed, with why. The stepping variants' proofs run libsumo, each in a fresh process
    (one simulation per process); the program variants' proofs are SUMO subprocesses, on threads
    when ``jobs`` > 1. At most ``jobs`` proof runs at a time; with 1, one after another."""
    stepping = [v for v, how in variants.items() if callable(how)]
    fixed = [v for v in variants if v not in stepping]
    n_proc = (jobs + 1) // 2 if fixed and jobs > 1 else jobs
    threads = jobs - n_proc if stepping else jobs
    procs = None
    if stepping and not multiprocessing.current_process().daemon:  # else over TraCI, here
        modules = {simulate_controller.__module__,
                   *(type(variants[v]()).__module__ for v in stepping)}  # type: ignore[operator, misc]
        procs = ProcessExecutor(max(1, n_proc), preload=sorted(modules))
    runs: dict[str, list[ProofRun]] = {}
    failed: dict[str, str] = {}
    try:
        with ThreadPoolExecutor(threads, thread_name_prefix="greenwave-proof") if jobs > 1 and fixed and threads \
                else contextlib.nullcontext() as pool:
            pending = {v: start_controller_proofs(procs, cases, variants[v], ctx,  # type: ignore[arg-type]
                                                  approaches=approaches, workdir=work, variant=v)
                       for v in stepping}
            pending.update({v: start_proofs(pool, cases, variants[v], approaches=approaches,  # type: ignore[arg-type]
                                            workdir=work, variant=v) for v in fixed})
            for v in [*stepping, *fixed]:  # with jobs 1 the program proofs start here
                try:
                    runs[v] = pending[v]()
                except GreenwaveError as exc:
                    failed[v] = f"its proof run failed: {exc}"
    finally:
        if procs is not None:
            procs.shutdown(wait=True, cancel_futures=True)
    return {v: runs[v] for v in variants if v in runs}, failed


def _race(runs: dict[str, list[ProofRun]], variants: Mapping[str, Variant], cases: list[Case], max_seeds: int,
          more_cases: Callable[[int], list[Case]], ctx: RunSpec, approaches: Mapping[str, Sequence[str]],
          work: Path, jobs: int) -> tuple[list[Case], list[dict[str, Any]]]:
    """While the seeds so far cannot tell the best variant (least mean RESCO delay) from others
    (:func:`close_rivals`), run the best and those on as many seeds again (at most ``max_seeds``
    in all), adding to ``runs``: gridlocking demand scatters a controller's delay from seed to
    seed by more than the controllers differ (fkk_in, one hour: 45 to 220 s/veh for the same
    one). The network's own programs race with them while those seeds do not show every racer
    better than them (:func:`~greenwave.controllers.proof_race.own_in_race`), so that the
    decision is tested against them over its seeds. A round in which a run fails ends the
    race; the variants whose runs failed keep the seeds they ran before (the failure is in the
    round's record). Returns the cases the last round ran and, per round, who raced."""
    raced: list[dict[str, Any]] = []
    while len(cases) < max_seeds:
        full = [v for v in runs if len(runs[v]) == len(cases)]
        best = min(full, key=lambda v: sum(r.resco_delay_s for r in runs[v]))
        rivals = close_rivals({v: runs[v] for v in full}, best)
        by_seed = {v: {r.seed: r.resco_delay_s for r in runs[v]} for v in full}
        own_races = own_in_race(by_seed, [best, *rivals])
        if own_races:
            rivals.append(OWN)
        if not rivals:
            break
        total = min(max_seeds, 2 * len(cases))
        extra = more_cases(total)[len(cases):]
        more, failed = _prove({v: variants[v] for v in [best, *rivals]}, extra, ctx, approaches, work, jobs)
        for v, rs in more.items():
            runs[v].extend(rs)
        raced.append({"seeds": [seed for seed, _ in extra], "best_so_far": best, "rivals": rivals,
                      **({"own_not_yet_beaten": True} if own_races else {}),
                      **({"failed": failed} if failed else {})})
        cases = [*cases, *extra]
        if failed:
            break
    return cases, raced


def _candidates(ctx: RunSpec, names: Sequence[str], work: Path,
                every: frozenset[str]) -> tuple[dict[str, Candidate], dict[str, str]]:
    """The candidates' program files (written into ``work``), and the candidates left out with
    why; ``every``: the signals with a program."""

    out: dict[str, Candidate] = {}
    skipped: dict[str, str] = {}
    plan: DemandPlan | None = None  # the optimised plan, planned once for its three controls
    plan_failed: GreenwaveError | None = None
    for name in names:
        try:
            if name == "static" or name in STEPPING:
                out[name] = Candidate(name, None, every)
            elif name in ("actuated", "delay_based"):
                path = sumo_programs.actuated_programs(ctx.net_file, workdir=work / name, kind=name,  # type: ignore[arg-type]
                                                       program_files=ctx.program_files, begin_s=ctx.begin_s)
                out[name] = Candidate(name, path, every)
            elif name.startswith("sumo-rebuilt-"):
                got = rebuilt_programs.rebuilt_programs(
                    ctx.net_file, workdir=work / name, tls_type=name.removeprefix("sumo-rebuilt-"),  # type: ignore[arg-type]
                    program_files=ctx.program_files, begin_s=ctx.begin_s, all_red="own")
                out[name] = Candidate(name, got.path, frozenset(got.rebuilt))
            elif name.startswith("optimised"):
                if plan_failed is not None:
                    raise plan_failed
                if plan is None:
                    try:
                        plan = _optimised_plan(ctx, work / "optimised")
                    except GreenwaveError as exc:
                        plan_failed = exc
                        raise
                control = name.removeprefix("optimised").removeprefix("-") or "static"
                path = write_sumo_additional(plan.plan, plan.network, work / "optimised" / f"{name}.add.xml",
                                             program_id=f"gw_{name}", control=control)  # type: ignore[arg-type]
                out[name] = Candidate(name, path, frozenset(plan.plan.signals))
        except GreenwaveError as exc:
            skipped[name] = f"{type(exc).__name__}: {exc}"
    return out, skipped


def _optimised_plan(ctx: RunSpec, work: Path) -> DemandPlan:
    opt = plan_for_demand(ctx.net_file, ctx.routed_demand(), begin_s=ctx.demand_begin_s, end_s=ctx.demand_end_s,
                          workdir=work, seed=ctx.seed, settings=OptimiserSettings(seed=ctx.seed),
                          program_files=ctx.program_files, run_begin_s=ctx.begin_s, route_choice=ctx.route_choice)
    if not opt.plan.signals:
        raise ScenarioError("the optimiser planned no signal")
    return opt


def _same(choice: Mapping[str, str], cand: Candidate) -> bool:
    """Whether the mixture ``choice`` runs exactly what ``cand`` runs (its program on the
    signals it covers, the network's own elsewhere)."""
    return all(c == (cand.name if s in cand.signals else "static") for s, c in choice.items())


OPTIONS = frozenset({"proof_seeds", "candidates", "proof_jobs", "max_proof_seeds"})
#: The most seeds a candidate runs on when the first ``proof_seeds`` cannot tell it from the best.
MAX_PROOF_SEEDS = 6


def _check_options(options: Mapping[str, Any]) -> tuple[int, tuple[str, ...], int, int]:
    unknown = set(options) - OPTIONS
    if unknown:
        raise ScenarioError(f"controller 'proven': unknown options {sorted(unknown)}; "
                            f"valid: {', '.join(sorted(OPTIONS))}")
    seeds, jobs = proof_options("proven", options)
    names = options.get("candidates", CANDIDATES)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, (list, tuple)) or not names or any(n not in CANDIDATES for n in names):
        raise ScenarioError(f"controller 'proven': candidates must be a non-empty list of {', '.join(CANDIDATES)}, "
                            f"not {names!r}")
    most = options.get("max_proof_seeds", max(seeds, MAX_PROOF_SEEDS))
    if isinstance(most, bool) or not isinstance(most, int) or not seeds <= most <= 20:
        raise ScenarioError(f"controller 'proven': max_proof_seeds must be an integer from proof_seeds ({seeds}) "
                            f"to 20, not {most!r}")
    return seeds, tuple(n for n in CANDIDATES if n in names), jobs, most


@register
class ProvenController(ProgramController):
    """The best of SUMO's and greenwave's control per signal, or a max-pressure, adaptive or schedule one, proven.

    The controller to start with on a new network. Options: ``proof_seeds`` (2),
    ``max_proof_seeds`` (6: the most seeds a close race runs on; ``proof_seeds`` for none), ``candidates``
    (default all: static, actuated, delay_based, sumo-rebuilt-static, sumo-rebuilt-actuated,
    sumo-rebuilt-delay_based, optimised, optimised-actuated, optimised-delay_based, max_pressure,
    max_pressure-short-hold, max_pressure_cyclic, adaptive, schedule), ``proof_jobs`` (1: proof runs one at a
    time; more runs the program candidates'
    proofs, SUMO subprocesses, side by side). See :mod:`greenwave.controllers.proven`.
    """

    decision: str = ""
    changed: int = 0
    _delegate: Controller | None = None  # the stepping candidate chosen, which runs the scored run
    _left_alone_programs: Path | None = None  # the programs of a max_pressure+left-alone decision

    name = "proven"
    kind = "greenwave"

    @classmethod
    def declared_options(cls) -> frozenset[str]:
        return OPTIONS

    def prepare(self, ctx: RunSpec) -> list[Path]:
        self._delegate = None
        # routed once as SUMO routes them (a SUMO run where the demand has trips): every candidate
        # of every proof run, and the one this run delegates to, plans on the same routes
        ctx = dataclasses.replace(ctx, demand_files=ctx.routed_demand())
        path = self.programs(ctx)
        if self.decision in STEPPING or self.decision.endswith(LEFT_ALONE):
            self._delegate = _stepping(self.decision.removesuffix(LEFT_ALONE), self._left_alone_programs)
            return self._delegate.prepare(ctx)
        return [] if path is None else [path]

    def programs(self, ctx: RunSpec) -> Path | None:

        self._left_alone_programs = None
        n, names, jobs, max_seeds = _check_options(self.options)
        work = Path(ctx.workdir) / "proven"
        own = active_programs(ctx.net_file, ctx.program_files, begin_s=ctx.begin_s)
        cands, skipped = _candidates(ctx, names, work / "candidates", frozenset(own))
        network = ctx.network()
        signals = sorted(s for s in set().union(*(c.signals for c in cands.values())) if s in network.signals)
        approaches = signal_approaches(network, signals)
        cases = run_cases(ctx, work, n)
        variants: dict[str, Variant] = {name: (functools.partial(_stepping, name) if name in STEPPING
                                               else cands[name].programs) for name in cands}
        runs, failed = _prove(variants, cases, ctx, approaches, work, jobs)
        skipped.update(failed)
        runs = {name: runs[name] for name in cands if name in runs}  # in the candidates' order
        losses = {name: {s: sum(r.signal_loss_veh_s[s] for r in runs[name]) / n for s in cands[name].signals
                         if s in approaches} for name in runs}
        entered = {name: {s: sum(r.signal_entered.get(s, 0.0) for r in runs[name]) / n for s in losses[name]}
                   for name in runs}
        programs_ran = [c for c in runs if c not in STEPPING]
        choice = choose_per_signal({c: losses[c] for c in programs_ran}, entered=entered)
        mixture = None
        if not any(_same(choice, cands[c]) for c in programs_ran):  # else the mixture is a uniform candidate
            mixture = mixture_programs(choice, {c: cands[c] for c in programs_ran}, work / "mixture.add.xml")
            variants[MIXTURE] = mixture
            more, failed = _prove({MIXTURE: mixture}, cases, ctx, approaches, work, jobs)
            runs.update(more)
            skipped.update(failed)
        if not runs:
            raise ScenarioError(f"controller 'proven': no candidate could run in SUMO: {skipped}")
        means = {v: sum(r.resco_delay_s for r in rs) / len(rs) for v, rs in runs.items()}
        rank = {name: k for k, name in enumerate((*CANDIDATES, MIXTURE))}
        left_alone = _left_alone_variant(means, choice, own, cands, work, cases[0][0], losses)
        if left_alone is not None:
            name, path, picks = left_alone
            variants[name] = functools.partial(_stepping, name.removesuffix(LEFT_ALONE), path)
            more, failed = _prove({name: variants[name]}, cases, ctx, approaches, work, jobs)
            runs.update(more)
            skipped.update(failed)
        # where two seeds cannot tell the best from others, those run on more seeds (up to max_seeds)
        cases, raced = _race(runs, variants, cases, max_seeds, lambda k: run_cases(ctx, work, k), ctx, approaches,
                             work, jobs)
        means = {v: sum(r.resco_delay_s for r in rs) / len(rs) for v, rs in runs.items()}
        most = max(len(rs) for rs in runs.values())  # the seeds the last race ran on (fewer if every racer failed)
        decision = min((v for v in means if len(runs[v]) == most), key=lambda v: (means[v], rank.get(v, len(rank))))
        kept = keep_own(runs, decision)
        if kept is not None:
            decision = OWN
        if left_alone is not None and decision == left_alone[0]:
            base, self._left_alone_programs = decision.removesuffix(LEFT_ALONE), left_alone[1]
            runs_program = {s: left_alone[2].get(s, base) for s in signals}
        else:
            runs_program = {s: (choice.get(s, "static") if decision == MIXTURE
                                else decision if s in cands[decision].signals else "static") for s in signals}
        self.decision = decision
        self.changed = sum(1 for s in signals if runs_program[s] != "static")
        running = _running_programs(own, cands, runs_program)
        if self._left_alone_programs is not None:  # as written for max_pressure (``proven_own``: renamed)
            running.update(read_programs(self._left_alone_programs))
        ids = _program_ids(running, runs_program)
        flags = _flagged(network, running, runs_program)
        record: dict[str, Any] = {"decision": decision, "proof_seeds": [seed for seed, _ in cases],
                  "seeds_run": {v: len(rs) for v, rs in runs.items()},  # means over this many seeds
                  "mean_resco_delay_s": means, "skipped_candidates": skipped, "raced": raced,
                  **({"kept_own": kept} if kept is not None else {}),
                  "resco_delay_s_by_seed": {v: [r.resco_delay_s for r in rs] for v, rs in runs.items()},
                  "signals": {s: {"chosen": choice.get(s, "static"), "runs": runs_program[s], "program_id": ids[s],
                                  "loss_veh_s": {c: losses[c][s] for c in losses if s in losses[c]},
                                  "entered_veh": {c: entered[c][s] for c in entered if s in entered[c]},
                                  **({"greenwave_checks": flags[s]} if s in flags else {})}
                              for s in signals}}
        self._record, self._record_path = record, Path(ctx.workdir) / "proven.json"
        write_text_atomic(json.dumps(record, indent=1), self._record_path)
        write_text_atomic("\n".join(_lines(record)) + "\n", Path(ctx.workdir) / "proven.txt")
        if decision == MIXTURE:
            return mixture
        return cands[decision].programs if decision in cands else None  # a left-alone variant steps

    def start(self, sim: SumoSession) -> None:
        """Start the stepping controller chosen, if one was; record in ``proven.json`` the
        program SUMO runs for each signal (``sumo_program_id``: the chosen one's ``program_id``
        unless something else switched it)."""

        if self._delegate is not None:
            self._delegate.start(sim)
        record = getattr(self, "_record", None)
        if record is None:
            return
        for sid, per in record["signals"].items():
            per["sumo_program_id"] = str(sim.conn.trafficlight.getProgram(sid))
        write_text_atomic(json.dumps(record, indent=1), self._record_path)

    def step(self, sim: SumoSession) -> None:
        if self._delegate is not None:
            self._delegate.step(sim)

    def finish(self, ctx: RunSpec) -> dict[str, Any]:
        out = {} if self._delegate is None else self._delegate.finish(ctx)
        return {**out, "proven_choice": self.decision, "proven_signals_changed": self.changed}


def _stepping(name: str, left_alone_programs: Path | None = None) -> Controller:
    """A fresh instance of the stepping candidate ``name`` (a max_pressure one may get
    ``left_alone_programs``)."""
    controller, options = STEPPING_CONTROLLERS[name]
    if left_alone_programs is not None:
        options = {**options, "left_alone_programs": str(left_alone_programs)}
    return make_controller(controller, dict(options))


#: A signal max_pressure can drive goes to the program the proof chose for it when that
#: program's approaches lost at least this share less time than under max_pressure (per run,
#: the mean over the proof seeds): below it the difference is within what two seeds tell apart.
LEAVE_ALONE_GAIN = 0.05


def _left_alone_variant(means: Mapping[str, float], choice: Mapping[str, str], own: Mapping[str, ET.Element],
                        cands: Mapping[str, Candidate], work: Path, seed: int,
                        losses: Mapping[str, Mapping[str, float]] | None = None,
                        ) -> tuple[str, Path, dict[str, str]] | None:
    """The best max_pressure candidate (cyclic and ``schedule`` included) with some signals left alone on the
    programs the proof chose for them (``choice``): its name, the programs and signal → candidate. Left alone are
    the signals it left alone in its proof run on ``seed`` (their programs are not safe for it to
    drive) where the proof chose something else than SUMO's actuated copy (what it runs them on
    anyway), and the signals whose chosen program's approaches lost ``LEAVE_ALONE_GAIN`` less
    than under max_pressure (``losses``: candidate → signal → veh·s). None when no max_pressure
    candidate ran, no signal is to be left alone, or every signal is (then it is the mixture,
    proved already)."""
    ran = [v for v in means if v in STEPPING and STEPPING_CONTROLLERS[v][0] in LEFT_ALONE_CONTROLLERS]
    if not ran:
        return None
    best = min(ran, key=lambda v: (means[v], CANDIDATES.index(v)))
    alone = read_excluded(work / f"{best}_seed{seed}" / "excluded_signals.txt")
    picks = {s: choice[s] for s in sorted(alone) if choice.get(s, "actuated") != "actuated" and s in own}
    losses = losses or {}
    mine = losses.get(best, {})
    for s, name in sorted(choice.items()):
        theirs = losses.get(name, {}).get(s)
        if s in alone or s not in own or s not in mine or theirs is None:
            continue
        if theirs < (1.0 - LEAVE_ALONE_GAIN) * mine[s]:
            picks[s] = name
    if not picks or set(mine or choice) <= set(alone) | set(picks):  # nothing to change, or it drives no signal
        return None
    elements = []
    files: dict[str, dict[str, ET.Element]] = {}
    for sid, name in picks.items():
        cand = cands[name]
        if cand.programs is None or sid not in cand.signals:  # the network's own program
            element = copy.deepcopy(own[sid])
            element.set("programID", "proven_own")  # SUMO has the own one loaded already
        else:
            if name not in files:
                files[name] = read_programs(cand.programs)
            element = files[name][sid]
        elements.append(element)
    path = write_additional(elements, work / f"{best}{LEFT_ALONE}.add.xml",
                            f"proven: the programs its proof chose for the signals {best} leaves alone")
    return best + LEFT_ALONE, path, picks


def _running_programs(own: Mapping[str, ET.Element], cands: Mapping[str, Candidate],
                      runs_program: Mapping[str, str]) -> dict[str, ET.Element]:
    """Signal → the ``<tlLogic>`` it runs (its candidate's, or its own program in ``own``); the
    signals a stepping candidate drives have none (it sets their states itself)."""
    files: dict[str, dict[str, ET.Element]] = {}
    out = {}
    for sid, name in runs_program.items():
        if name in STEPPING:
            continue
        cand = cands.get(name)
        if cand is None or cand.programs is None or sid not in cand.signals:
            if sid in own:
                out[sid] = own[sid]
            continue
        if name not in files:
            files[name] = read_programs(cand.programs)
        out[sid] = files[name][sid]
    return out


def _program_ids(running: Mapping[str, ET.Element], runs_program: Mapping[str, str]) -> dict[str, str]:
    """Signal → the ``programID`` of the program it runs (a stepping candidate's name for the
    signals it drives)."""
    return {sid: name if name in STEPPING else running[sid].get("programID", "0")
            for sid, name in runs_program.items()}


def _flagged(network: RoadNetwork, running: Mapping[str, ET.Element],
             runs_program: Mapping[str, str]) -> dict[str, str]:
    """Signal → what greenwave's own checks find in the SUMO program it runs (conflicting
    priority greens, :func:`~greenwave.controllers.switching.signal_stages`), for the signals
    whose program greenwave would not drive itself: the network's own program or one SUMO
    designed (measured: netconvert's rebuilt program for Braunschweig's fokr junction greens
    two links SUMO marks as foes through an indirect turn's second half). The proof stands;
    the flag tells the engineer what to check before taking the program to the street."""
    out: dict[str, str] = {}
    for sid, elem in running.items():
        if sid not in network.signals:
            continue
        try:
            _, program = tl_logic_program(elem, f"candidate {runs_program[sid]!r}")
            signal_stages(network.signals[sid], program=program)
        except NetworkError as exc:
            out[sid] = str(exc)
    return out


def _lines(record: Mapping[str, Any]) -> list[str]:
    """The proof as text: the network means, then one line per signal."""
    means = record["mean_resco_delay_s"]
    runs = record.get("seeds_run", {})
    first = min(runs.values(), default=0)
    out = [f"proven: proof in SUMO over seeds {', '.join(map(str, record['proof_seeds']))} "
           "(mean RESCO delay, s/veh): " + ", ".join(
               f"{v} {d:.2f}" + (f" ({runs[v]} seeds)" if runs.get(v, first) != first else "")
               for v, d in means.items()),
           f"  runs: {record['decision']}"]
    kept = record.get("kept_own")
    if kept:
        out[-1] += (f": the network's own programs, kept: over seeds {', '.join(map(str, kept['seeds']))} "
                    f"{kept['instead_of']} ({kept['its_mean_resco_delay_s']:.2f}) is not shown better than them "
                    f"({kept['own_mean_resco_delay_s']:.2f}) at one-sided {kept['level']:.0%} (paired per seed)")
    for race in record.get("raced", ()):
        own = bool(race.get("own_not_yet_beaten"))
        rivals = [r for r in race["rivals"] if not (own and r == OWN)]
        out.append(f"  seeds {', '.join(map(str, race['seeds']))}: {race['best_so_far']}"
                   + (f" and {', '.join(rivals)}, which the seeds before could not tell from it" if rivals else "")
                   + (f"; {OWN}, the network's own programs, not yet shown worse than every one of them "
                      f"at one-sided {KEEP_LEVEL:.0%}"
                      if own else "")
                   + (f"; failed, the race ends: {race['failed']}" if race.get("failed") else ""))
    for name, why in record["skipped_candidates"].items():
        out.append(f"  candidate {name} left out: {why}")
    for sid, per in record["signals"].items():
        loss = per["loss_veh_s"]
        out.append(f"  {sid}: runs {per['runs']} (least loss: {per['chosen']}); loss veh·s per run: "
                   + ", ".join(f"{c} {v:.0f}" for c, v in loss.items()))
        if "greenwave_checks" in per:
            out.append(f"    {sid}: greenwave's checks flag the program it runs: {per['greenwave_checks']}")
    return out
