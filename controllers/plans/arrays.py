"""Timing plans and the flat arrays the model and optimisers work on (:class:`PlanArrays`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from greenwave.controllers.plans.layout import base_program
from greenwave.controllers.plans.timing import TOLERANCE_S, SignalTiming, StageTiming, TimingPlan
from greenwave.engine.arrays import CompiledNetwork, PlanArrays
from greenwave.errors import PlanError

if TYPE_CHECKING:
    from greenwave.networks.model import RoadNetwork

__all__ = ["arrays_from_plan", "plan_from_arrays", "plan_from_network"]


def plan_from_arrays(
    compiled: CompiledNetwork, plan: PlanArrays, *, meta: Mapping[str, Any] | None = None
) -> TimingPlan:
    """The :class:`TimingPlan` of flat plan arrays (yellow, all-red, minimum green from
    ``compiled``; offsets taken modulo the cycle)."""
    _check_arrays(compiled, plan)
    cycle = float(plan.cycle_s)
    signals: dict[str, SignalTiming] = {}
    for i, sid in enumerate(compiled.signal_ids):
        stages = tuple(
            StageTiming(
                phase_index=int(compiled.stage_phase[k]),
                green_s=float(plan.green_s[k]),
                yellow_s=float(compiled.stage_yellow_s[k]),
                allred_s=float(compiled.stage_allred_s[k]),
                min_green_s=float(compiled.stage_min_green_s[k]),
            )
            for k in compiled.stages_of(i)
        )
        off = float(plan.offset_s[i]) % cycle if cycle > 0 else float(plan.offset_s[i])
        signals[sid] = SignalTiming(sid, _program_id(compiled, i), cycle, off, stages)
    return TimingPlan(signals, dict(meta or {"source": "arrays"}))


def _program_id(compiled: CompiledNetwork, i: int) -> str:
    return compiled.program_ids[i] if i < len(compiled.program_ids) else ""


def _check_arrays(compiled: CompiledNetwork, plan: PlanArrays) -> None:
    if np.shape(plan.offset_s) != (compiled.n_signals,):
        raise PlanError(f"plan arrays: offset_s has shape {np.shape(plan.offset_s)}, expected ({compiled.n_signals},)")
    if np.shape(plan.green_s) != (compiled.n_stages,):
        raise PlanError(f"plan arrays: green_s has shape {np.shape(plan.green_s)}, expected ({compiled.n_stages},)")
    if not (math.isfinite(plan.cycle_s) and plan.cycle_s > 0):
        raise PlanError(f"plan arrays: cycle_s must be a positive number, got {plan.cycle_s!r}")
    if not (np.all(np.isfinite(plan.offset_s)) and np.all(np.isfinite(plan.green_s))):
        raise PlanError("plan arrays: offsets and greens must be finite")


def arrays_from_plan(compiled: CompiledNetwork, plan: TimingPlan) -> PlanArrays:
    """Flat arrays of ``plan`` for ``compiled`` (inverse of :func:`plan_from_arrays`).

    Raises :class:`PlanError` when a compiled signal is missing from the plan, its stages are
    not the compiled ones (phase indices, yellow, all-red), or the cycles differ (PlanArrays
    has one common cycle).
    """
    offsets = np.zeros(compiled.n_signals, dtype=np.float64)
    green = np.zeros(compiled.n_stages, dtype=np.float64)
    cycle: float | None = None
    first = ""
    for i, sid in enumerate(compiled.signal_ids):
        t = plan.signals.get(sid)
        if t is None:
            raise PlanError(f"signal {sid!r}: not in the plan (the compiled network has it)")
        ks = compiled.stages_of(i)
        if len(t.stages) != len(ks):
            raise PlanError(f"signal {sid!r}: plan has {len(t.stages)} stages, the compiled network {len(ks)}")
        for st, k in zip(t.stages, ks, strict=True):
            if st.phase_index != int(compiled.stage_phase[k]):
                raise PlanError(
                    f"signal {sid!r}: stage {k - ks.start} is phase {st.phase_index} in the plan but "
                    f"phase {int(compiled.stage_phase[k])} in the compiled network"
                )
            for name, a, b in (
                ("yellow", st.yellow_s, compiled.stage_yellow_s[k]),
                ("all-red", st.allred_s, compiled.stage_allred_s[k]),
            ):
                if abs(a - float(b)) > TOLERANCE_S:
                    raise PlanError(
                        f"signal {sid!r}: stage {k - ks.start} {name} is {a:g} s in the plan but "
                        f"{float(b):g} s in the compiled network; flat arrays cannot hold it"
                    )
            green[k] = st.green_s
        if cycle is None:
            cycle, first = float(t.cycle_s), sid
        elif abs(t.cycle_s - cycle) > TOLERANCE_S:
            raise PlanError(
                f"signal {sid!r}: cycle {t.cycle_s:g} s differs from signal {first!r}'s {cycle:g} s; "
                "flat plan arrays need one common cycle"
            )
        offsets[i] = t.stage0_green_start_s
    if cycle is None:
        cycles = {float(t.cycle_s) for t in plan.signals.values()}
        cycle = cycles.pop() if len(cycles) == 1 else 0.0
    return PlanArrays(cycle_s=float(cycle), offset_s=offsets, green_s=green)


def plan_from_network(network: RoadNetwork, compiled: CompiledNetwork) -> TimingPlan:
    """The network's own programs (those ``compiled`` was made from) as a :class:`TimingPlan`.

    Greens are the green phases' durations, yellow/all-red the compiled intergreens, the cycle
    the program's own (it may differ between signals), the offset when stage 0's green starts
    (``program offset + durations of the phases before it``, modulo the cycle). Where the
    program's green is shorter than the compiled minimum green the stage's ``min_green_s`` is
    lowered to it, so the network's own program stays a valid plan.
    """
    signals: dict[str, SignalTiming] = {}
    for i, sid in enumerate(compiled.signal_ids):
        program = base_program(network, sid, _program_id(compiled, i))
        ks = compiled.stages_of(i)
        stages = []
        for k in ks:
            p = int(compiled.stage_phase[k])
            g = float(program.phases[p].duration)
            stages.append(
                StageTiming(
                    phase_index=p,
                    green_s=g,
                    yellow_s=float(compiled.stage_yellow_s[k]),
                    allred_s=float(compiled.stage_allred_s[k]),
                    min_green_s=min(float(compiled.stage_min_green_s[k]), g),
                )
            )
        cycle = program.cycle
        p0 = int(compiled.stage_phase[ks.start])
        start0 = float(program.offset) + sum(ph.duration for ph in program.phases[:p0])
        offset = start0 % cycle if cycle > 0 else 0.0
        signals[sid] = SignalTiming(sid, program.id, float(cycle), float(offset), tuple(stages))
    return TimingPlan(signals, {"source": "network", "net_file": str(network.path)},
                      net_file=str(Path(network.path).resolve()))


