"""First, do no harm: a new plan is proven in SUMO against the network's existing plan.

A model is a model. Before greenwave recommends a plan (``greenwave optimise``) or runs it as
the ``optimised`` controller, the candidate and the network's existing programs are both run in
SUMO on the scenario's demand, over several seeds, and compared:

1. **Network**: mean RESCO delay, (Σ time loss + Σ depart delay) / due vehicles, over the proof
   seeds. Vehicles still on the road or never inserted count, so a plan that gridlocks cannot
   look good.
2. If the candidate is worse, each signal whose approaches lost more time under the candidate
   than under its existing program (edgeData time loss summed over the proof seeds) goes back to
   its existing program, and that **mixed** plan is run too.
3. The recommendation is the best of candidate, mixed and existing that is no worse than the
   existing plan in SUMO: the existing plan itself when nothing beats it. Every signal kept on
   its existing program is listed with the reason.

``greenwave optimise`` proves over the scenario's seeds. The ``optimised`` controller proves on the
run's routes with SUMO seeds of its own, never the seed of the run that is then scored, so a plan
is not chosen on the very random stream that judges it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from greenwave._sumo import run_sumo_command
from greenwave.controllers.plans.sumo_writer import write_sumo_additional
from greenwave.controllers.plans.timing import TimingPlan
from greenwave.engine.results import edge_data, statistic_kpis, trip_kpis, write_text_atomic
from greenwave.engine.session import SessionConfig, SumoSession, console_to
from greenwave.errors import PlanError, ScenarioError

if TYPE_CHECKING:
    from greenwave.controllers.base import Controller
    from greenwave.engine.run import RunSpec, SumoOptions
    from greenwave.networks.model import RoadNetwork

__all__ = ["Proof", "ProofRun", "SimulationSetup", "proof_options", "proof_pool", "proof_seed", "proof_setup",
           "prove_plan", "run_cases", "signal_approaches", "simulate", "simulate_controller", "start_controller_proofs",
           "start_proofs"]

Decision = Literal["candidate", "mixed", "existing"]


@dataclass(frozen=True)
class SimulationSetup:
    """The scenario as SUMO runs it (everything but the signal programs)."""

    net_file: Path
    route_files: tuple[Path, ...]
    additional_files: tuple[Path, ...] = ()
    begin_s: float = 0.0
    end_s: float = 3600.0
    step_length_s: float = 1.0
    time_to_teleport_s: float = 300.0
    extra_args: tuple[str, ...] = ()  # the scenario's own SUMO options (a .sumocfg's)


@dataclass(frozen=True)
class ProofRun:
    """One SUMO run of one variant on one seed."""

    variant: str
    seed: int
    resco_delay_s: float
    mean_time_loss_s: float
    vehicles_unfinished: int
    teleports: int
    signal_loss_veh_s: dict[str, float]  # signal → time loss on its approaches, veh·s
    #: signal → vehicles that entered its approaches (a run that lets fewer reach a signal loses
    #: less there without controlling it better: a gridlock upstream starves it)
    signal_entered: dict[str, float] = field(default_factory=dict)


@dataclass
class Proof:
    """What SUMO said about a candidate plan against the existing one, and the decision."""

    decision: Decision
    plan: TimingPlan  # the plan recommended (candidate, mixed or existing)
    kept_existing: dict[str, str]  # signal → why it keeps its existing program
    runs: list[ProofRun] = field(default_factory=list)
    #: signals whose approaches lost more time under the candidate than under their existing
    #: program (a subset of ``kept_existing``; the others there were kept because the plan lost)
    lost_alone: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> TimingPlan:
        """The signals whose programs change (the recommended plan less those kept existing):
        what to load into SUMO on top of the network's own programs."""
        changed = [s for s in self.plan.signals if s not in self.kept_existing]
        return TimingPlan({s: self.plan.signals[s] for s in changed}, dict(self.plan.meta),
                          net_file=self.plan.net_file, designs=_designs(self.plan, changed))

    def mean(self, variant: str) -> float:
        vals = [r.resco_delay_s for r in self.runs if r.variant == variant]
        return sum(vals) / len(vals) if vals else float("nan")

    def lines(self) -> list[str]:
        """Human-readable lines for the CLI and the run's log."""
        seeds = sorted({r.seed for r in self.runs})
        out = [f"proof in SUMO over seeds {', '.join(map(str, seeds))} (mean RESCO delay, s/veh):"]
        for variant in ("existing", "candidate", "mixed"):
            if any(r.variant == variant for r in self.runs):
                unfinished = sum(r.vehicles_unfinished for r in self.runs if r.variant == variant)
                tele = sum(r.teleports for r in self.runs if r.variant == variant)
                out.append(f"  {variant:<9} {self.mean(variant):8.2f}   unfinished {unfinished}, teleports {tele}")
        what = {"candidate": "the optimised plan", "mixed": "the optimised plan, with "
                f"{len(self.kept_existing)} signal(s) kept on their existing programs",
                "existing": "the existing plan (no change: nothing greenwave found beats it in SUMO)"}
        out.append(f"  recommended: {what[self.decision]}")
        for sid, why in sorted(self.kept_existing.items()):
            out.append(f"    {sid}: {why}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "kept_existing": dict(self.kept_existing),
                "mean_resco_delay_s": {v: self.mean(v) for v in ("existing", "candidate", "mixed")
                                       if any(r.variant == v for r in self.runs)},
                "runs": [dataclasses.asdict(r) for r in self.runs]}


def proof_seed(run_seed: int, k: int) -> int:
    """The SUMO seed of the ``k``-th proof run for a scored run on ``run_seed``: never equal to a
    scenario seed below a million, so the proof does not see the scored run's random stream."""
    return 1_000_003 + 7919 * int(run_seed) + int(k)


def proof_setup(
    folder: Path, net_file: Path, route_files: Sequence[Path], additional_files: Sequence[Path], *,
    begin_s: float, end_s: float, step_length_s: float, time_to_teleport_s: float,
    sumo_config: SumoOptions | None = None,
) -> SimulationSetup:
    """A proof run of a scenario as SUMO runs it: its routes and additional files, and a
    .sumocfg's options with their outputs into ``folder/outputs``. Serves the controllers'
    proofs (:func:`run_cases`) and ``greenwave optimise``'s."""
    folder = Path(folder)
    args = () if sumo_config is None else tuple(sumo_config.sumo_args(folder / "outputs"))
    if sumo_config is not None and sumo_config.outputs:
        (folder / "outputs").mkdir(parents=True, exist_ok=True)
    return SimulationSetup(Path(net_file), tuple(route_files), tuple(additional_files), begin_s=begin_s,
                           end_s=end_s, step_length_s=step_length_s, time_to_teleport_s=time_to_teleport_s,
                           extra_args=args)


def run_cases(ctx: RunSpec, folder: Path, n: int) -> list[tuple[int, SimulationSetup]]:
    """``n`` proof runs of a controller's run (:func:`proof_setup`), on seeds of their own
    (:func:`proof_seed`)."""
    setup = proof_setup(folder, Path(ctx.net_file), ctx.route_files, ctx.additional_files, begin_s=ctx.begin_s,
                        end_s=ctx.end_s, step_length_s=ctx.step_length_s, time_to_teleport_s=ctx.time_to_teleport_s,
                        sumo_config=ctx.sumo_config)
    return [(proof_seed(ctx.seed, k), setup) for k in range(n)]


def _designs(plan: TimingPlan, signals: Sequence[str]) -> dict[str, Any]:
    """The stage designs ``plan`` carries for ``signals`` (kept signals run their own program)."""
    return {s: d for s, d in plan.designs.items() if s in signals}


def signal_approaches(network: RoadNetwork, signals: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Signal → the road edges its used vehicle movements come from."""
    out: dict[str, tuple[str, ...]] = {}
    for sid in signals:
        sig = network.signals[sid]
        edges = {mv.from_edge for link in sig.movements for mv in (link, *link.merged)
                 if mv.is_used and not mv.is_pedestrian and network.has_edge(mv.from_edge)}
        out[sid] = tuple(sorted(edges))
    return out


def simulate(
    setup: SimulationSetup,
    programs: Path | None,
    *,
    seed: int,
    approaches: Mapping[str, Sequence[str]],
    workdir: Path,
    variant: str,
) -> ProofRun:
    """Run SUMO (a subprocess) with ``programs`` (None: the network's own) and measure it."""
    work = Path(workdir)
    config = _proof_config(setup, (() if programs is None else (programs,)), seed=seed, approaches=approaches,
                           work=work)
    run_sumo_command(config.command(), what=f"proof run ({variant}, seed {seed})", cwd=work, timeout=None)
    return _measured(setup, work, variant=variant, seed=seed, approaches=approaches)


def proof_options(controller: str, options: Mapping[str, Any]) -> tuple[int, int]:
    """A controller's ``proof_seeds`` (SUMO seeds each proof runs on, 1..20, default 2) and
    ``proof_jobs`` (proof runs at a time, 1..256, default 1), checked."""
    out = []
    for key, default, high in (("proof_seeds", 2, 20), ("proof_jobs", 1, 256)):
        v = options.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= high:
            raise ScenarioError(f"controller {controller!r}: {key} must be an integer 1..{high}, not {v!r}")
        out.append(v)
    return out[0], out[1]


def proof_pool(jobs: int) -> contextlib.AbstractContextManager[Executor | None]:
    """Threads for up to ``jobs`` proof runs at a time (each waits for its SUMO subprocess), or
    None for ``jobs`` 1: :func:`start_proofs` then runs each proof when its result is asked for."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise PlanError(f"proof runs at a time must be an integer >= 1, not {jobs!r}")
    return ThreadPoolExecutor(jobs, thread_name_prefix="greenwave-proof") if jobs > 1 else contextlib.nullcontext()


def start_proofs(
    pool: Executor | None,
    cases: Sequence[tuple[int, SimulationSetup]],
    programs: Path | None,
    *,
    approaches: Mapping[str, Sequence[str]],
    workdir: Path,
    variant: str,
) -> Callable[[], list[ProofRun]]:
    """:func:`simulate` ``programs`` on every ``(seed, setup)`` of ``cases`` (in
    ``workdir/VARIANT_seedN``): started on ``pool`` now, or run one after another when the
    returned function is called (``pool`` None). The function returns the runs in ``cases``'
    order and raises what a run raised."""

    def one(seed: int, setup: SimulationSetup) -> ProofRun:
        return simulate(setup, programs, seed=seed, approaches=approaches,
                        workdir=Path(workdir) / f"{variant}_seed{seed}", variant=variant)

    if pool is None:
        return lambda: [one(seed, setup) for seed, setup in cases]
    futures = [pool.submit(one, seed, setup) for seed, setup in cases]
    return lambda: [f.result() for f in futures]


def start_controller_proofs(
    pool: Executor | None,
    cases: Sequence[tuple[int, SimulationSetup]],
    controller: Callable[[], Controller],
    ctx: RunSpec,
    *,
    approaches: Mapping[str, Sequence[str]],
    workdir: Path,
    variant: str,
) -> Callable[[], list[ProofRun]]:
    """:func:`simulate_controller` for every ``(seed, setup)`` of ``cases``: with libsumo, each in
    a fresh process of ``pool`` (a :class:`~greenwave.engine.jobloop.ProcessExecutor`: one
    simulation per process), or, ``pool`` None (a process that may not start processes of its
    own, such as a daemonic worker of another executor), one after another over TraCI when the
    returned function is called. ``controller`` makes a fresh instance per run. The returned
    function returns the runs in ``cases``' order and raises what a run raised."""

    def kw(seed: int) -> dict[str, Any]:
        return {"seed": seed, "approaches": approaches, "workdir": Path(workdir) / f"{variant}_seed{seed}",
                "variant": variant}

    if pool is None:
        return lambda: [simulate_controller(setup, controller(), ctx, **kw(seed)) for seed, setup in cases]
    futures = [pool.submit(simulate_controller, setup, controller(), ctx, **kw(seed), backend="libsumo")
               for seed, setup in cases]
    return lambda: [f.result() for f in futures]


def simulate_controller(
    setup: SimulationSetup,
    controller: Controller,
    ctx: RunSpec,
    *,
    seed: int,
    approaches: Mapping[str, Sequence[str]],
    workdir: Path,
    variant: str,
    backend: Literal["traci", "libsumo"] = "traci",
) -> ProofRun:
    """Run SUMO with ``controller`` (a fresh instance) acting every step, and measure it as
    :func:`simulate` does. The controller prepares on ``ctx`` with ``workdir`` as its folder and
    keeps ``ctx``'s seed for its own choices (stage designs, detector faults), so the proof runs
    the controller the scored run gets; only SUMO's seed is ``seed``.

    ``backend`` "traci" (default) steps a SUMO subprocess over TraCI; "libsumo" runs SUMO in this
    process, 2-3 times faster, but only for a process that runs no other simulation (SUMO's
    results depend on the simulations that ran before in the same process,
    :class:`~greenwave.engine.jobloop.ProcessExecutor`): :func:`start_controller_proofs` runs it
    so, in fresh worker processes."""

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    adds = tuple(controller.prepare(dataclasses.replace(ctx, workdir=work)))
    config = _proof_config(setup, adds, seed=seed, approaches=approaches, work=work)
    # what SUMO prints (libsumo's errors, e.g. a vehicle that cannot depart) goes to the run's
    # folder, not the console of the greenwave run that proves
    with console_to(work / "sumo.console.log"), SumoSession(config, backend=backend) as sim:
        controller.start(sim)
        for _ in sim.steps():
            controller.step(sim)
    return _measured(setup, work, variant=variant, seed=seed, approaches=approaches)


def _proof_config(setup: SimulationSetup, programs: Sequence[Path], *, seed: int,
                  approaches: Mapping[str, Sequence[str]], work: Path) -> SessionConfig:
    """The SUMO session of a proof run: the scenario, ``programs`` (additional files loaded after
    the scenario's) and the outputs :func:`_measured` reads, in ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    edges = sorted({e for per in approaches.values() for e in per})
    edge_out = work / "approaches.edgedata.xml"
    edge_add = work / "approaches.add.xml"
    write_text_atomic(f'<additional>\n  <edgeData id="gw_proof" file="{edge_out}" '
                      f'edges="{" ".join(edges)}" excludeEmpty="false"/>\n</additional>\n', edge_add)
    adds = (*setup.additional_files, *programs, *((edge_add,) if edges else ()))
    return SessionConfig(
        net_file=setup.net_file, route_files=setup.route_files, additional_files=adds,
        begin_s=setup.begin_s, end_s=setup.end_s, step_length_s=setup.step_length_s, seed=seed,
        time_to_teleport_s=setup.time_to_teleport_s,
        outputs={"tripinfo-output": work / "tripinfo.xml", "statistic-output": work / "statistics.xml"},
        extra_args=(*setup.extra_args, "--tripinfo-output.write-unfinished", "true",
                    "--tripinfo-output.write-undeparted", "true", "--no-warnings", "true"),
        log_file=work / "sumo.log",
    )


def _measured(setup: SimulationSetup, work: Path, *, variant: str, seed: int,
              approaches: Mapping[str, Sequence[str]]) -> ProofRun:
    """The KPIs of the proof run whose outputs :func:`_proof_config` put into ``work``."""
    tripinfo, stats, edge_out = work / "tripinfo.xml", work / "statistics.xml", work / "approaches.edgedata.xml"
    edges = sorted({e for per in approaches.values() for e in per})
    trips = trip_kpis(tripinfo, end_s=setup.end_s)
    data = edge_data(edge_out) if edges else {}
    loss = {sid: sum(data.get(e, {}).get("timeLoss", 0.0) for e in per) for sid, per in approaches.items()}
    entered = {sid: sum(data.get(e, {}).get("entered", 0.0) + data.get(e, {}).get("departed", 0.0) for e in per)
               for sid, per in approaches.items()}
    return ProofRun(variant=variant, seed=seed, resco_delay_s=float(trips["resco_delay_s"]),
                    mean_time_loss_s=float(trips["mean_time_loss_s"]),
                    vehicles_unfinished=int(trips["vehicles_unfinished"]),
                    teleports=int(statistic_kpis(stats)["teleports"]), signal_loss_veh_s=loss,
                    signal_entered=entered)


def prove_plan(
    candidate: TimingPlan,
    existing: TimingPlan,
    network: RoadNetwork,
    cases: Sequence[tuple[int, SimulationSetup]],
    *,
    workdir: Path,
    program_id: str = "gw_candidate",
    jobs: int = 1,
    existing_runs: Sequence[ProofRun] = (),
) -> Proof:
    """Run ``candidate`` and ``existing`` (the network's own programs) in SUMO on every
    ``(seed, setup)`` of ``cases`` (a scenario's seeds may each have their own routes) and
    decide what to recommend (see the module docstring). ``existing`` must cover the candidate's
    signals; it is what a kept signal falls back to in the recommended plan. ``jobs``: proof
    runs at a time (:func:`proof_pool`); the figures do not depend on it. ``existing_runs``: the
    ``existing`` runs of an earlier proof on the same cases, used instead of running the network's
    own programs again where they cover the same seeds and every candidate signal's approaches.

    Raises :class:`PlanError` for an empty seed list or a candidate signal with no existing
    timing; SUMO failures raise :class:`~greenwave.errors.SimulationError` with what SUMO said.
    """
    if not cases:
        raise PlanError("prove_plan: at least one seed is needed to prove a plan in SUMO")
    seeds = [seed for seed, _ in cases]
    missing = sorted(set(candidate.signals) - set(existing.signals))
    if missing:
        raise PlanError(f"prove_plan: no existing timing for signal(s) {missing[:5]}")
    work = Path(workdir)
    signals = sorted(candidate.signals)
    approaches = signal_approaches(network, signals)
    runs: list[ProofRun] = []

    def start(pool: Executor | None, variant: str, plan: TimingPlan | None) -> Callable[[], list[ProofRun]]:
        programs = None
        if plan is not None and plan.signals:
            programs = write_sumo_additional(plan, network, work / f"{variant}.add.xml", program_id=program_id)
        return start_proofs(pool, cases, programs, approaches=approaches, workdir=work, variant=variant)

    def run_variant(variant: str, plan: TimingPlan | None) -> list[ProofRun]:
        got = start(None, variant, plan)()
        runs.extend(got)
        return got

    reuse = (sorted(r.seed for r in existing_runs) == sorted(seeds)
             and all(r.variant == "existing" and set(signals) <= set(r.signal_loss_veh_s) for r in existing_runs))
    with proof_pool(jobs) as pool:
        get_base = (lambda: list(existing_runs)) if reuse else start(pool, "existing", None)
        get_cand = start(pool, "candidate", candidate)
        base, cand = get_base(), get_cand()
    runs.extend(base + cand)
    e_mean = sum(r.resco_delay_s for r in base) / len(base)
    c_mean = sum(r.resco_delay_s for r in cand) / len(cand)
    if c_mean <= e_mean:
        proof = Proof("candidate", candidate, {}, runs)
    else:
        worse = {}
        for sid in signals:
            e_loss = sum(r.signal_loss_veh_s[sid] for r in base)
            c_loss = sum(r.signal_loss_veh_s[sid] for r in cand)
            if c_loss > e_loss:
                worse[sid] = (f"its approaches lost {c_loss / len(seeds):.0f} veh·s per run under the "
                              f"optimised plan against {e_loss / len(seeds):.0f} under its existing program")
        keep = [s for s in signals if s not in worse]
        mixed_plan = TimingPlan({**{s: candidate.signals[s] for s in keep},
                                 **{s: existing.signals[s] for s in worse}}, dict(candidate.meta),
                                net_file=candidate.net_file, designs=_designs(candidate, keep))
        m_mean = float("inf")
        if keep and worse:
            mixed = run_variant("mixed", TimingPlan({s: candidate.signals[s] for s in keep}, dict(candidate.meta),
                                                    net_file=candidate.net_file, designs=_designs(candidate, keep)))
            m_mean = sum(r.resco_delay_s for r in mixed) / len(mixed)
        if m_mean <= e_mean:
            proof = Proof("mixed", mixed_plan, worse, runs, dict(worse))
        else:
            why = (f"SUMO measured {c_mean:.1f} s/veh under the optimised plan"
                   + (f" and {m_mean:.1f} under the mixed one" if m_mean != float("inf") else "")
                   + f" against {e_mean:.1f} under the existing plan")
            kept = {s: worse.get(s, why) for s in signals}
            proof = Proof("existing", TimingPlan({s: existing.signals[s] for s in signals}, dict(existing.meta),
                                                 net_file=existing.net_file), kept, runs, dict(worse))
    proof.plan.meta["proof"] = {"decision": proof.decision,
                                "mean_resco_delay_s": proof.to_dict()["mean_resco_delay_s"],
                                "seeds": list(seeds), "kept_existing": dict(proof.kept_existing)}
    write_text_atomic(json.dumps(proof.to_dict(), indent=1), work / "proof.json")
    return proof
