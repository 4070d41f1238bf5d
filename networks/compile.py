"""Compile a :class:`~greenwave.networks.RoadNetwork` plus movement flows into flat arrays.

:func:`compile_network` produces the read-only :class:`~greenwave.networks.compiled.CompiledNetwork`
the macroscopic model and the optimisers work on (see :mod:`greenwave.engine.arrays` for the
meaning of every array). It runs in named steps: choose the signals and their programs, compile
their stages, collect the links (:mod:`greenwave.networks.compile_links`: saturation flows, travel
times, feeders), assemble the arrays. The rules, in short:

Signals
    Every signal with a program that has at least one green phase, in the network's order
    (``signals=`` restricts and orders them). The program is ``program_id`` where the signal
    has it, otherwise its default (first) program. Signals without programs (rail signals) and
    programs without green phases are skipped, unless the signal was asked for by name: then
    that is a :class:`NetworkError`.

Stages
    A phase whose state shows ``G`` or ``g`` and no ``y``/``Y`` is a green stage. Stages run in
    program order, rotated so that stage 0 is the program's first green phase. The phases after
    a stage up to the next stage (cyclically) are its intergreen: phases showing ``y``/``Y``
    add to ``stage_yellow_s``, all others (red, red-yellow ``u``, off) to ``stage_allred_s``.
    Two green phases in a row (e.g. a pedestrian-clearance phase that keeps vehicles green)
    are two stages with no intergreen between them.

    Minimum green = max(``min_green_s``, the phase's ``minDur`` if given, and the pedestrian
    minimum ``pedestrian_walk_s`` + crossing length / ``pedestrian_speed_mps`` for a stage that
    shows a crossing link green, where the crossing's length is in the net file). A crossing
    green through several consecutive stages needs that time once over the run: it is put on
    the run's stage with the longest base green only (real programs keep crossings green
    across short transition stages; requiring it of each would inflate the minimum cycle far
    beyond the program's own); :mod:`greenwave.networks.pedestrians` holds that rule.
    Maximum green = max(``max_green_s``, minimum green).

Links
    One per (signal, from_edge, to_edge) over the signal's vehicle connections (merged ones
    included). Connections from or to an edge that is not a driving edge of the graph
    (internal lanes of indirect bicycle turns, bicycle-only edges) and connections leaving
    from a non-driving lane (a bicycle lane of a road) are left out. A link is green in each
    stage whose state shows ``G``/``g`` on one of its link indices; a link green in no stage
    (always red, ``s``, ``o``/``O``) cannot be timed and is left out.

    Saturation flow: every from-lane carries ``network.saturation_flow_per_lane``, shared among
    the links using it in proportion to their flows. A link without flow on a lane that others
    use gets an equal share of that lane (1/number of users): it carries no demand, so its
    value does not change the model, but it stays positive. A link that is never shown ``G``
    (only permissive ``g``) filters through gaps in the conflicting streams that have ``G`` in
    its stages: by default its saturation flow is scaled by the HCM permitted-movement factor
    min(1, s_p / s) with s_p = v_o e^(−v_o t_c) / (1 − e^(−v_o t_f)), v_o the conflicting flow
    (veh/s, from SUMO's conflict matrix), critical gap t_c = 4.5 s, follow-up t_f = 2.5 s; a
    number given as ``permissive_factor`` replaces that by a fixed factor.

    Turning movements discharge slower: links whose SUMO direction is left (``l``/``L``) or
    right (``r``/``R``) have their rate multiplied by ``left_turn_factor`` / ``right_turn_factor``
    (1 by default); a permitted link's gap-limited rate is capped by its turning rate (not
    multiplied by it). With ``shared_lanes="equivalents"`` a lane's saturation flow is not shared in
    proportion to flow at the full lane rate, but is the flow-weighted harmonic mean of its
    users' own rates (HCM through-car equivalents): s_lane = 1 / Σ_u (p_u / s_u) with p_u the
    user's share of the lane's flow and s_u = s × turn factor × permitted factor, and each user
    gets p_u × s_lane. A permitted left turner that waits for a gap then also holds up the
    through vehicles behind it in its lane, as in SUMO.

    Sneakers (``link_sneakers_veh``): a permissive-only link may clear ``sneakers_per_cycle``
    vehicles (default 2, HCM) at the end of each of its effective green windows, the permitted
    turners waiting inside the junction; protected links get 0.

Flows and feeders
    ``link_flow_vps`` = ``flow_vph`` / 3600 of the (from_edge, to_edge) row of ``flows``
    (rows for the same pair are added; pairs without a row have 0). Link ``l`` on approach edge
    ``e`` of signal ``S`` is fed by every link ``u`` (of any compiled signal, ``S`` included)
    whose ``to_edge`` is ``e``, when ``e`` runs directly from ``u``'s junctions to ``S``'s
    junctions. With ``Q`` = Σ flow of the links on ``e`` at ``S`` and ``I`` = Σ flow of the
    feeders, each feeder gets ``share = flow(l) / max(Q, I)`` (turning proportions,
    independent of origin; scaled down when the feeders carry more than leaves the edge) and
    ``entry = flow(l) − share · I`` (≥ 0). So ``link_flow == entry + Σ share · flow(u)`` holds
    for every link to rounding (≤ 1e-12 veh/s). Feeders with share 0 are not listed.
    ``link_travel_s`` = length / speed of the approach edge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
import numpy.typing as npt
import pandas as pd

from greenwave.errors import NetworkError
from greenwave.networks.compile_links import (
    collect_links,
    feeders,
    lane_users,
    rate_factors,
    saturation_flows,
    shared_lane_blocking,
    travel_times,
)
from greenwave.networks.compiled import CompiledNetwork
from greenwave.networks.model import Program, RoadNetwork, Signal
from greenwave.networks.pedestrians import stage_pedestrian_times
from greenwave.networks.signal_states import GREEN, YELLOW

__all__ = ["SUMO_COMPILE_OPTIONS", "CompileOptions", "compile_network", "green_stage_phases", "intergreen_phases",
           "stage_minimum_greens"]

#: Options of :func:`compile_network` for networks simulated in SUMO (default passenger cars,
#: 13.89 m/s streets, 3 s yellow), measured by ``benchmarks/calibrate.py``
#: (``benchmarks/results/calibration.json``): turning rates over the through lane rate (left
#: 0.76, right 0.72, unopposed); SUMO's permitted left turners want far longer gaps than the
#: HCM's 4.5 s (critical gap 10.6 s against 0–800 veh/h of opposing traffic) and about half a
#: turner per green clears at its end against 400–800 veh/h (per-green intercepts 0.41, 0.45,
#: 0.66). A turner that finds no gap stops its shared lane (``lane_blocking``): the measured
#: through+left lane of an oversaturated approach discharged 1.1 vehicles per green at both
#: 30 s and 60 s cycles. Use with ``saturation_flow_per_lane`` =
#: :data:`greenwave.engine.arrays.SUMO_SATURATION_FLOW_PER_LANE_VPH`.
class CompileOptions(TypedDict, total=False):
    """Keyword options of :func:`compile_network` that a caller keeps as one value."""

    left_turn_factor: float
    right_turn_factor: float
    critical_gap_s: float
    sneakers_per_cycle: float
    lane_blocking: bool


SUMO_COMPILE_OPTIONS: CompileOptions = {
    "left_turn_factor": 0.76,
    "right_turn_factor": 0.72,
    "critical_gap_s": 10.6,
    "sneakers_per_cycle": 0.5,
    "lane_blocking": True,
}


def _is_green_phase(state: str) -> bool:
    return any(c in GREEN for c in state) and not any(c in YELLOW for c in state)


#: The shortest yellow of a plan, s (the safety standards' default, ``SafetyStandards``).
MIN_YELLOW_S = 3.0


def _is_yellow_phase(state: str) -> bool:
    return any(c in YELLOW for c in state)


def green_stage_phases(program: Program) -> list[int]:
    """Phase indices of the green stages of ``program``, in program order (stage 0 first)."""
    return [k for k, ph in enumerate(program.phases) if _is_green_phase(ph.state)]


def intergreen_phases(program: Program, stage_phases: Sequence[int], k: int) -> list[int]:
    """Phase indices of stage ``k``'s intergreen: after its green, up to the next stage."""
    n = len(program.phases)
    start = stage_phases[k]
    nxt = stage_phases[(k + 1) % len(stage_phases)]
    out = []
    j = (start + 1) % n
    while j != nxt:  # with a single stage: every other phase of the cycle
        out.append(j)
        j = (j + 1) % n
    return out


def _stage_minimums(network: RoadNetwork, sig: Signal, program: Program, stages: Sequence[int],
                    min_green_s: float, walk_s: float, speed_mps: float) -> tuple[list[float], list[float]]:
    """Per stage: the vehicle minimum green (``min_green_s``, raised to the phase's ``minDur``)
    and the pedestrian minimum (walk + clearance, :func:`~greenwave.networks.pedestrians.stage_pedestrian_times`)."""
    phases = [program.phases[p] for p in stages]
    ped = [0.0 if t is None else t.min_green_s
           for t in stage_pedestrian_times(network, sig, phases, walk_s=walk_s, speed_mps=speed_mps)]
    veh = []
    for ph in phases:
        mg = float(min_green_s)
        if ph.min_dur is not None and math.isfinite(ph.min_dur):
            mg = max(mg, float(ph.min_dur))
        veh.append(mg)
    return veh, ped


def stage_minimum_greens(network: RoadNetwork, signal_id: str, program: Program, *, min_green_s: float = 5.0,
                         pedestrian_walk_s: float = 4.0, pedestrian_speed_mps: float = 1.2
                         ) -> tuple[list[float], list[float]]:
    """The minimum greens :func:`compile_network` gives the stages of ``program`` (its green
    phases in :func:`green_stage_phases` order), split by cause: (vehicle minimum =
    max(``min_green_s``, the phase's ``minDur``), pedestrian minimum = walk + crossing length /
    speed on the stage that carries each crossing). The one rule behind compiled minimum greens
    and the safety validator's."""
    _check_params(min_green_s=min_green_s, pedestrian_walk_s=pedestrian_walk_s,
                  pedestrian_speed_mps=pedestrian_speed_mps)
    return _stage_minimums(network, network.signals[signal_id], program, green_stage_phases(program), min_green_s,
                           pedestrian_walk_s, pedestrian_speed_mps)


def _ro(a: npt.ArrayLike, dtype: npt.DTypeLike) -> np.ndarray:
    out: np.ndarray = np.ascontiguousarray(np.asarray(a, dtype=dtype))
    if out.base is not None or not out.flags.owndata:
        out = out.copy()
    out.setflags(write=False)
    return out


def _flow_table(network: RoadNetwork, flows: pd.DataFrame) -> dict[tuple[str, str], float]:
    if flows is None or len(flows) == 0:
        return {}
    missing = {"from_edge", "to_edge", "flow_vph"} - set(flows.columns)
    if missing:
        raise NetworkError(f"flows lack the columns {sorted(missing)} (have {list(flows.columns)})")
    known = network.edge_ends
    frm = flows["from_edge"].astype(str).to_numpy()
    to = flows["to_edge"].astype(str).to_numpy()
    vph = pd.to_numeric(flows["flow_vph"], errors="coerce").to_numpy(dtype=np.float64)
    unknown = sorted({e for e in (*frm, *to) if e not in known})
    if unknown:
        shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        raise NetworkError(f"flows name edges that are not driving edges of {network.path}: {shown}")
    bad = ~np.isfinite(vph) | (vph < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise NetworkError(
            f"flows: flow_vph must be a finite number >= 0; row {i} ({frm[i]} -> {to[i]}) has "
            f"{flows['flow_vph'].iloc[i]!r}"
        )
    table: dict[tuple[str, str], float] = {}
    for f, t, q in zip(frm, to, vph, strict=True):
        table[(f, t)] = table.get((f, t), 0.0) + float(q)
    return table


def _check_params(**kw: float | None) -> None:
    for name, value in kw.items():
        if value is None:
            ok = name == "permissive_factor"  # None: SUMO's own factor; no other parameter may be left out
        elif not (isinstance(value, (int, float)) and math.isfinite(value)):
            ok = False
        elif name in ("permissive_factor", "left_turn_factor", "right_turn_factor"):
            ok = 0 < value <= 1
        elif name in ("min_green_s", "min_yellow_s", "pedestrian_walk_s", "sneakers_per_cycle"):
            ok = value >= 0
        else:
            ok = value > 0
        if not ok:
            raise NetworkError(f"compile_network: invalid {name}={value!r}")


def _program_of(sig: Signal, program_id: str | None, requested: bool) -> Program | None:
    if not sig.programs:
        if requested:
            raise NetworkError(f"signal {sig.id!r} has no signal program (a rail signal?)")
        return None
    program: Program | None
    if program_id is not None and program_id in sig.programs:
        program = sig.programs[program_id]
    elif program_id is not None and requested:
        raise NetworkError(
            f"signal {sig.id!r} has no program {program_id!r} (it has {', '.join(sig.programs)})"
        )
    else:
        program = sig.default_program
    assert program is not None
    if not green_stage_phases(program):
        if requested:
            raise NetworkError(
                f"signal {sig.id!r}: program {program.id!r} has no green phase (no state with "
                "'G' or 'g' and without 'y'), so it has no stage to time"
            )
        return None
    return program


def _choose_signals(network: RoadNetwork, program_id: str | None,
                    signals: Sequence[str] | None) -> list[tuple[Signal, Program]]:
    """The signals to compile, each with its program (see *Signals* in the module docstring)."""
    if signals is None:
        wanted = list(network.signals)
        requested = False
    else:
        if isinstance(signals, str):
            signals = [signals]
        wanted = list(dict.fromkeys(signals))
        unknown = [s for s in wanted if s not in network.signals]
        if unknown:
            raise NetworkError(f"{network.path}: no signal(s) {', '.join(map(repr, unknown))}")
        requested = True
    chosen: list[tuple[Signal, Program]] = []
    for sid in wanted:
        sig = network.signals[sid]
        program = _program_of(sig, program_id, requested)
        if program is not None:
            chosen.append((sig, program))
    return chosen


@dataclass
class _Stages:
    """The stages of the chosen signals in compiled order (see *Stages*); one entry per stage in
    each list but ``sig_stage_ptr`` (CSR pointer per signal)."""

    sig_stage_ptr: list[int] = field(default_factory=lambda: [0])
    min_green: list[float] = field(default_factory=list)
    max_green: list[float] = field(default_factory=list)
    yellow: list[float] = field(default_factory=list)
    allred: list[float] = field(default_factory=list)
    phase: list[int] = field(default_factory=list)
    state: list[str] = field(default_factory=list)


def _compile_stages(network: RoadNetwork, chosen: Sequence[tuple[Signal, Program]], *, min_green_s: float,
                    max_green_s: float, min_yellow_s: float, walk_s: float, speed_mps: float) -> _Stages:
    """Green stages with their intergreens and minimum and maximum greens."""
    out = _Stages()
    for sig, program in chosen:
        stages = green_stage_phases(program)
        veh_min, ped_min = _stage_minimums(network, sig, program, stages, min_green_s, walk_s, speed_mps)
        for k, p in enumerate(stages):
            ph = program.phases[p]
            yellow = allred = 0.0
            for j in intergreen_phases(program, stages, k):
                q = program.phases[j]
                if _is_yellow_phase(q.state):
                    yellow += q.duration
                else:
                    allred += q.duration
            if 0.0 < yellow < min_yellow_s:
                yellow = float(min_yellow_s)
            mg = max(veh_min[k], ped_min[k])
            out.min_green.append(mg)
            out.max_green.append(max(float(max_green_s), mg))
            out.yellow.append(yellow)
            out.allred.append(allred)
            out.phase.append(p)
            out.state.append(ph.state)
        out.sig_stage_ptr.append(len(out.phase))
    return out


def compile_network(
    network: RoadNetwork,
    flows: pd.DataFrame,
    *,
    program_id: str | None = None,
    signals: Sequence[str] | None = None,
    min_green_s: float = 5.0,
    max_green_s: float = 90.0,
    min_yellow_s: float = MIN_YELLOW_S,
    pedestrian_speed_mps: float = 1.2,
    pedestrian_walk_s: float = 4.0,
    permissive_factor: float | None = None,
    sneakers_per_cycle: float = 2.0,
    critical_gap_s: float = 4.5,
    follow_up_s: float = 2.5,
    left_turn_factor: float = 1.0,
    right_turn_factor: float = 1.0,
    shared_lanes: str = "proportional",
    lane_blocking: bool = False,
) -> CompiledNetwork:
    """Compile ``network`` and its movement ``flows`` into a read-only :class:`CompiledNetwork`.

    Parameters
    ----------
    network
        The road network.
    flows
        Movement flows, columns ``from_edge, to_edge, flow_vph`` (veh/h), e.g. from
        :func:`greenwave.scenarios.demand.movement_flows`. An empty DataFrame means no demand.
    program_id
        Program to take stages from where a signal has it (else its default program).
    signals
        Restrict to these signal ids (in this order); default: every timeable signal.
    min_green_s, max_green_s
        Lower bound of every minimum green and of every maximum green, s.
    min_yellow_s
        Shortest yellow a plan may show (the standards' 3 s): a program's shorter yellow is
        lengthened to it (SUMO's grid6 game ships 1 s yellows; a plan keeping them would be
        refused as unsafe), so plans made from the compiled stages are safe.
    pedestrian_speed_mps, pedestrian_walk_s
        Pedestrian minimum green = walk + crossing length / speed.
    permissive_factor
        Saturation flow factor of links that are only ever permissive green (``g``); ``None``
        (default) derives it from the conflicting flow by gap acceptance (HCM).
    sneakers_per_cycle
        Vehicles a permissive-only link clears at the end of each effective green window
        (``link_sneakers_veh``; ≥ 0, default 2 as in the HCM); protected links get 0.
    critical_gap_s, follow_up_s
        Gap acceptance of permitted movements, s (HCM: 4.5 and 2.5).
    left_turn_factor, right_turn_factor
        Saturation flow factors of left- and right-turning links, in (0, 1].
    shared_lanes
        ``"proportional"`` (default) or ``"equivalents"`` (see the module docstring).
        :data:`SUMO_COMPILE_OPTIONS` holds the values measured in SUMO.
    lane_blocking
        Model shared lanes that permitted turners block (``link_block``, see the module
        docstring); off by default (TRANSYT's lane sharing).

    Raises
    ------
    NetworkError
        Flows name edges the network lacks, a requested signal is unknown or has no timeable
        program, or a parameter is invalid.

    See the module docstring for the rules.
    """
    if shared_lanes not in ("proportional", "equivalents"):
        raise NetworkError(
            f"compile_network: shared_lanes must be 'proportional' or 'equivalents', not {shared_lanes!r}"
        )
    if shared_lanes == "equivalents" and lane_blocking:
        raise NetworkError(
            "compile_network: shared_lanes='equivalents' already slows a shared lane for its turners; "
            "with lane_blocking=True they would be counted twice: choose one"
        )
    _check_params(
        critical_gap_s=critical_gap_s,
        follow_up_s=follow_up_s,
        min_green_s=min_green_s,
        max_green_s=max_green_s,
        min_yellow_s=min_yellow_s,
        pedestrian_speed_mps=pedestrian_speed_mps,
        pedestrian_walk_s=pedestrian_walk_s,
        permissive_factor=permissive_factor,
        sneakers_per_cycle=sneakers_per_cycle,
        left_turn_factor=left_turn_factor,
        right_turn_factor=right_turn_factor,
    )
    flow_vph = _flow_table(network, flows)
    chosen = _choose_signals(network, program_id, signals)
    stages = _compile_stages(network, chosen, min_green_s=min_green_s, max_green_s=max_green_s,
                             min_yellow_s=min_yellow_s, walk_s=pedestrian_walk_s, speed_mps=pedestrian_speed_mps)
    links = collect_links(network, chosen, stages.sig_stage_ptr, stages.state)
    n_links = len(links.signal)
    flow = np.array(
        [flow_vph.get((f, t), 0.0) / 3600.0 for f, t in zip(links.from_edge, links.to_edge, strict=True)],
        dtype=np.float64,
    )
    # saturation flow: each link's own rate factor (turning, permitted), then lanes shared
    sat_lane_vps = network.saturation_flow_per_lane / 3600.0
    factor = rate_factors(chosen, links, stages.state, flow, sat_lane_vps, left_turn_factor=left_turn_factor,
                          right_turn_factor=right_turn_factor, permissive_factor=permissive_factor,
                          critical_gap_s=critical_gap_s, follow_up_s=follow_up_s)
    users = lane_users(links)
    sat = saturation_flows(users, flow, factor, sat_lane_vps, shared_lanes)
    sneak = np.array([0.0 if links.protected[l] else float(sneakers_per_cycle) for l in range(n_links)],
                     dtype=np.float64)
    block = shared_lane_blocking(users, flow, factor, links.protected, sat_lane_vps, sneak) if lane_blocking else None
    travel = travel_times(network, links)
    entry, in_ptr, in_src, in_share = feeders(network, chosen, links, flow)

    stage_ptr = np.zeros(n_links + 1, dtype=np.int64)
    stage_ptr[1:] = np.cumsum([len(g) for g in links.stages])
    stage_idx = [s for g in links.stages for s in g]
    yel = np.array(stages.yellow, dtype=np.float64)
    red = np.array(stages.allred, dtype=np.float64)
    return CompiledNetwork(
        signal_ids=tuple(sig.id for sig, _ in chosen),
        sig_stage_ptr=_ro(stages.sig_stage_ptr, np.int64),
        stage_min_green_s=_ro(stages.min_green, np.float64),
        stage_max_green_s=_ro(stages.max_green, np.float64),
        stage_yellow_s=_ro(yel, np.float64),
        stage_allred_s=_ro(red, np.float64),
        stage_intergreen_s=_ro(yel + red, np.float64),
        stage_phase=_ro(stages.phase, np.int64),
        link_signal=_ro(links.signal, np.int64),
        link_from_edge=tuple(links.from_edge),
        link_to_edge=tuple(links.to_edge),
        link_sat_flow_vps=_ro(sat, np.float64),
        link_flow_vps=_ro(flow, np.float64),
        link_entry_flow_vps=_ro(entry, np.float64),
        link_travel_s=_ro(travel, np.float64),
        link_stage_ptr=_ro(stage_ptr, np.int64),
        link_stage_idx=_ro(stage_idx, np.int64),
        link_in_ptr=_ro(in_ptr, np.int64),
        link_in_src=_ro(in_src, np.int64),
        link_in_share=_ro(in_share, np.float64),
        program_ids=tuple(program.id for _, program in chosen),
        link_sneakers_veh=_ro(sneak, np.float64),
        link_block=None if block is None else _ro(block, np.float64),
    )
