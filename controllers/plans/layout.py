"""A timing plan on its network: the base programs its signals run, where each stage's phases
sit in them (:class:`StageLayout`), the plan's basic checks (:func:`check_plan`) and what the
network fills in (:func:`complete_plan`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenwave.controllers.plans.timing import (
    MIN_YELLOW_S,
    TOLERANCE_S,
    SignalTiming,
    TimingPlan,
    default_signal_group,
)
from greenwave.errors import NetworkError, PlanError
from greenwave.networks.signal_states import GREEN, YELLOW
from greenwave.networks.stage_design import with_designs

if TYPE_CHECKING:
    from greenwave.networks.model import Program, RoadNetwork

__all__ = [
    "StageLayout",
    "base_program",
    "check_plan",
    "complete_plan",
    "plan_network",
    "scaled_phase_ms",
    "stage_layouts",
    "to_ms",
]


def plan_network(plan: TimingPlan, network: RoadNetwork) -> RoadNetwork:
    """``network`` with the stage designs ``plan`` carries added as its signals' programs (the
    network itself when the plan has none or it has them already)."""
    need = {sid: d for sid, d in plan.designs.items()
            if sid not in network.signals or d.program_id not in network.signals[sid].programs
            or network.signals[sid].programs[d.program_id] != d.program()}
    if not need:
        return network
    try:
        return with_designs(network, need)
    except NetworkError as exc:
        raise PlanError(str(exc)) from None


def base_program(network: RoadNetwork, sid: str, program_id: str) -> Program:
    """The base program ``program_id`` of signal ``sid`` (``""``: the signal's default program);
    :class:`PlanError` when the signal or the program is not in ``network``."""
    sig = network.signals.get(sid)
    if sig is None:
        raise PlanError(f"signal {sid!r}: not in the network {network.path}")
    if program_id:
        program = sig.programs.get(program_id)
        if program is None:
            raise PlanError(
                f"signal {sid!r}: base program {program_id!r} not in the network "
                f"(it has {', '.join(sig.programs) or 'none'})"
            )
        return program
    program = sig.default_program
    if program is None:
        raise PlanError(f"signal {sid!r}: has no signal program in the network")
    return program


def complete_plan(
    plan: TimingPlan,
    network: RoadNetwork,
    *,
    pedestrian_walk_s: float = 4.0,
    pedestrian_speed_mps: float = 1.2,
) -> TimingPlan:
    """``plan`` with what the network tells filled in where the plan leaves it open.

    - ``net_file``: the network's file;
    - per stage ``signal_group``: :func:`default_signal_group` (2, 4, 6, 8, 1, 3, 5, 7, ...);
    - per stage ``links``: the SUMO link indices green (``G``/``g``) in its base phase;
    - per stage ``walk_s`` / ``ped_clearance_s`` (where both are ``None``): for each
      pedestrian crossing link green in the stage, walk = ``pedestrian_walk_s`` and clearance =
      crossing length / ``pedestrian_speed_mps`` (the largest over its crossings), put — as
      :func:`greenwave.networks.compile.compile_network` puts the pedestrian minimum green — on
      the stage with the longest base green of each run of stages the crossing stays green in.

    Values the plan already has are kept. Raises :class:`PlanError` when a signal or its base
    program is not in the network, or a stage's phase index is not in the program.
    """
    from greenwave.networks.pedestrians import stage_pedestrian_times

    if not (pedestrian_walk_s >= 0 and pedestrian_speed_mps > 0):
        raise PlanError(
            f"pedestrian_walk_s must be >= 0 and pedestrian_speed_mps > 0, got "
            f"{pedestrian_walk_s!r} and {pedestrian_speed_mps!r}"
        )
    network = plan_network(plan, network)
    signals: dict[str, SignalTiming] = {}
    for sid, t in plan.signals.items():
        program = base_program(network, sid, t.program_id)
        sig = network.signals[sid]
        for k, st in enumerate(t.stages):
            if not 0 <= st.phase_index < len(program.phases):
                raise PlanError(
                    f"signal {sid!r}: stage {k}: phase {st.phase_index} is not in base program "
                    f"{program.id!r} ({len(program.phases)} phases)"
                )
        phases = [program.phases[st.phase_index] for st in t.stages]
        times = stage_pedestrian_times(network, sig, phases, walk_s=pedestrian_walk_s, speed_mps=pedestrian_speed_mps)
        walk = [None if x is None else x.walk_s for x in times]
        clear = [None if x is None else x.clearance_s for x in times]
        stages = []
        for k, (st, ph) in enumerate(zip(t.stages, phases, strict=True)):
            upd: dict[str, Any] = {}
            if st.signal_group is None:
                upd["signal_group"] = default_signal_group(k)
            if st.links is None:
                upd["links"] = tuple(j for j, c in enumerate(ph.state) if c in GREEN)
            if st.walk_s is None and st.ped_clearance_s is None and walk[k] is not None:
                upd["walk_s"], upd["ped_clearance_s"] = walk[k], clear[k]
            stages.append(replace(st, **upd) if upd else st)
        signals[sid] = replace(t, stages=tuple(stages))
    return TimingPlan(signals, dict(plan.meta), net_file=plan.net_file or str(Path(network.path).resolve()),
                      designs=dict(plan.designs))



# ------------------------------------------------------------------------------------------
# layout and checks


@dataclass(frozen=True)
class StageLayout:
    """A stage's phases in the base program: its green phase, the phases of the intergreen after
    it in program order (``order``), which of those show yellow and which are all-red, and
    their base durations, s."""

    green: int
    order: tuple[int, ...]
    yellow: tuple[int, ...]
    allred: tuple[int, ...]
    base_yellow_s: float
    base_allred_s: float


def stage_layouts(program: Program, timing: SignalTiming) -> list[StageLayout]:
    """The :class:`StageLayout` of each stage of ``timing`` in ``program``; :class:`PlanError`
    (rule ``stages``) when the plan's stages are not the program's green phases."""
    from greenwave.networks.compile import green_stage_phases, intergreen_phases

    stages = green_stage_phases(program)
    got = [s.phase_index for s in timing.stages]
    if got != stages:
        raise PlanError(
            f"signal {timing.signal_id!r}: rule stages: plan stages are phases {got}, but the green "
            f"phases of base program {program.id!r} are {stages}"
        )
    out = []
    for k, p in enumerate(stages):
        inter = intergreen_phases(program, stages, k)
        yel = tuple(j for j in inter if any(c in YELLOW for c in program.phases[j].state))
        red = tuple(j for j in inter if j not in yel)
        out.append(
            StageLayout(
                p, tuple(inter), yel, red,
                float(sum(program.phases[j].duration for j in yel)),
                float(sum(program.phases[j].duration for j in red)),
            )
        )
    return out


def check_plan(plan: TimingPlan, network: RoadNetwork, *, min_yellow_s: float = MIN_YELLOW_S) -> None:
    """The basic checks :func:`~greenwave.controllers.plans.sumo_writer.write_sumo_additional`
    makes; :class:`PlanError` naming the signal and the rule on the first failure.

    Rules: stages match the base program's green phases; cycle > 0 and
    Σ (green + yellow + all-red) == cycle (±1e-6 s); 0 ≤ offset < cycle; green ≥ min green;
    yellow ≥ ``min_yellow_s`` (3 s) where the base program has a yellow after the stage;
    yellow / all-red > 0 only where the base program has such phases; all times ≥ 0.
    (Conflicting greens, all-red shorter than the network's, etc. are the full safety
    validator's job.)
    """
    network = plan_network(plan, network)
    for sid, t in plan.signals.items():
        if t.signal_id != sid:
            raise PlanError(f"signal {sid!r}: rule id: its timing names signal {t.signal_id!r}")
        program = base_program(network, sid, t.program_id)
        layout = stage_layouts(program, t)
        if not (math.isfinite(t.cycle_s) and t.cycle_s > 0):
            raise PlanError(f"signal {sid!r}: rule cycle: cycle {t.cycle_s!r} s must be > 0")
        total = t.stage_sum_s
        if abs(total - t.cycle_s) > TOLERANCE_S:
            raise PlanError(
                f"signal {sid!r}: rule cycle sum: Σ(green + yellow + all-red) = {total:g} s "
                f"but cycle = {t.cycle_s:g} s"
            )
        if not (0.0 <= t.offset_s < t.cycle_s):
            raise PlanError(
                f"signal {sid!r}: rule offset: offset {t.offset_s:g} s must satisfy "
                f"0 <= offset < cycle ({t.cycle_s:g} s)"
            )
        for k, (st, lay) in enumerate(zip(t.stages, layout, strict=True)):
            where = f"signal {sid!r}: stage {k} (phase {st.phase_index})"
            for name, v in (("green", st.green_s), ("yellow", st.yellow_s), ("all-red", st.allred_s),
                            ("min green", st.min_green_s)):
                if not (math.isfinite(v) and v >= 0):
                    raise PlanError(f"{where}: rule times: {name} {v!r} s must be >= 0")
            if st.green_s <= 0:
                raise PlanError(f"{where}: rule min green: green {st.green_s:g} s must be > 0")
            if st.green_s < st.min_green_s - TOLERANCE_S:
                raise PlanError(
                    f"{where}: rule min green: green {st.green_s:g} s < minimum green {st.min_green_s:g} s"
                )
            need_y = min_yellow_s if lay.base_yellow_s > TOLERANCE_S else 0.0
            if st.yellow_s < need_y - TOLERANCE_S:
                raise PlanError(
                    f"{where}: rule yellow: yellow {st.yellow_s:g} s < {need_y:g} s "
                    f"(base program has {lay.base_yellow_s:g} s)"
                )
            if st.yellow_s > TOLERANCE_S and lay.base_yellow_s <= 0:
                raise PlanError(
                    f"{where}: rule yellow: plan has {st.yellow_s:g} s yellow but the base program "
                    "has no yellow phase after this stage"
                )
            if st.allred_s > TOLERANCE_S and lay.base_allred_s <= 0:
                raise PlanError(
                    f"{where}: rule all-red: plan has {st.allred_s:g} s all-red but the base program "
                    "has no all-red phase after this stage"
                )


def to_ms(x: float) -> int:
    """``x`` seconds in whole milliseconds (rounded), the resolution SUMO programs are written in."""
    return int(round(x * 1000.0))


def scaled_phase_ms(program: Program, phases: tuple[int, ...], base_s: float, total_s: float) -> list[tuple[int, int]]:
    """(phase, duration ms) of ``phases`` of ``program``, their base durations (summing to
    ``base_s``) scaled to ``total_s``; the rounding residue goes to the last phase."""
    if not phases:
        return []
    total = to_ms(total_s)
    out, used = [], 0
    for n, j in enumerate(phases):
        if n == len(phases) - 1:
            d = total - used
        else:
            d = int(total * program.phases[j].duration / base_s) if base_s > 0 else 0
        used += d
        out.append((j, d))
    return out


