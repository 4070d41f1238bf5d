"""Compile a :class:`~greenwave.networks.RoadNetwork` plus movement flows into flat arrays.

:func:`compile_network` produces the read-only :class:`~greenwave.networks.compiled.CompiledNetwork`
the macroscopic model and the optimisers work on (see :mod:`greenwave.engine.arrays` for the
meaning of every array). The rules, in short:

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
from typing import TypedDict

import numpy as np
import numpy.typing as npt
import pandas as pd

from greenwave.errors import NetworkError
from greenwave.networks.compiled import CompiledNetwork
from greenwave.networks.model import Program, RoadNetwork, Signal
from greenwave.networks.pedestrians import stage_pedestrian_times

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
    return ("G" in state or "g" in state) and "y" not in state and "Y" not in state


#: The shortest yellow of a plan, s (the safety standards' default, ``SafetyStandards``).
MIN_YELLOW_S = 3.0


def _is_yellow_phase(state: str) -> bool:
    return "y" in state or "Y" in state


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
    known = network._edge_ends
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


def _gap_acceptance_factor(
    l: int,
    chosen: Sequence[tuple[Signal, Program]],
    link_signal: Sequence[int],
    link_stages: Sequence[Sequence[int]],
    link_index_sets: Sequence[set[int]],
    stage_state: Sequence[str],
    flow: np.ndarray,
    sat_lane_vps: float,
    critical_gap_s: float = 4.5,
    follow_up_s: float = 2.5,
    *,
    signal_links: Sequence[int],
) -> float:
    """HCM permitted-movement factor of a permissive link: the flow it can filter through the
    gaps of the conflicting streams shown ``G`` in its stages (worst stage), over lane
    saturation flow. ``signal_links``: the links of ``l``'s signal."""
    i = link_signal[l]
    conflicts = chosen[i][0].conflicts
    mine = list(link_index_sets[l])
    worst = 1.0
    for stage in link_stages[l]:
        state = stage_state[stage]
        v_o = 0.0
        for m in signal_links:
            if m == l:
                continue
            theirs = [k for k in link_index_sets[m] if k < len(state) and state[k] == "G"]
            if theirs and conflicts[np.ix_(mine, theirs)].any():
                v_o += float(flow[m])
        if v_o <= 1e-9:
            s_p = 1.0 / follow_up_s
        else:
            s_p = v_o * math.exp(-v_o * critical_gap_s) / (1.0 - math.exp(-v_o * follow_up_s))
        worst = min(worst, s_p / sat_lane_vps)
    return min(1.0, max(worst, 0.05))


def _lane_blocking(
    lane_users: dict[str, list[int]],
    flow: np.ndarray,
    factor: np.ndarray,
    protected: Sequence[bool],
    sat_lane_vps: float,
    sneak: np.ndarray,
) -> np.ndarray:
    """``link_block`` rows (b, a0, a1) from the lanes shared by permitted and other links.

    In a lane whose flow has a share ``p`` of permitted turners, the vehicles that pass in one
    green window of length W before the next turner finds no gap and stops the lane are, in the
    mean, ``(k + 1) / p − 1``, with ``k = sneakers + s_p W`` turners cleared per window (``s_p``
    the turners' gap-limited rate). Each other user of the lane gets its flow share of that
    (``a0`` and ``a1`` per link), and ``b`` is the saturation flow it has from such lanes.
    """
    block = np.zeros((len(flow), 3), dtype=np.float64)
    for users in lane_users.values():
        total = float(sum(flow[u] for u in users))
        permitted = [u for u in users if not protected[u]]
        others = [u for u in users if protected[u]]
        p_flow = float(sum(flow[u] for u in permitted))
        if total <= 0 or p_flow <= 0 or not others:
            continue
        p = p_flow / total
        k0 = float(sum(sneak[u] * flow[u] for u in permitted)) / p_flow
        s_p = float(sum(sat_lane_vps * factor[u] * flow[u] for u in permitted)) / p_flow
        for u in others:
            w = float(flow[u]) / total
            if w <= 0:
                continue
            block[u, 0] += sat_lane_vps * factor[u] * w
            block[u, 1] += ((k0 + 1.0) / p - 1.0) * w
            block[u, 2] += s_p / p * w
    return block


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

    # ---- signals and their programs
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

    # ---- stages
    sig_stage_ptr = [0]
    st_min, st_max, st_yel, st_red, st_phase = [], [], [], [], []
    stage_state: list[str] = []
    for sig, program in chosen:
        stages = green_stage_phases(program)
        veh_min, ped_min = _stage_minimums(network, sig, program, stages, min_green_s,
                                           pedestrian_walk_s, pedestrian_speed_mps)
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
            st_min.append(mg)
            st_max.append(max(float(max_green_s), mg))
            st_yel.append(yellow)
            st_red.append(allred)
            st_phase.append(p)
            stage_state.append(ph.state)
        sig_stage_ptr.append(len(st_phase))

    # ---- links
    graph_edges = network._edge_ends
    lane_ok: dict[str, frozenset[str]] = {}

    def vehicle_lanes(edge: str) -> frozenset[str]:
        if edge not in lane_ok:
            lane_ok[edge] = frozenset(network.edge(edge)["lane_ids"])
        return lane_ok[edge]

    link_signal: list[int] = []
    link_from: list[str] = []
    link_to: list[str] = []
    link_lanes: list[set[str]] = []
    link_stages: list[list[int]] = []
    link_protected: list[bool] = []
    link_index_sets: list[set[int]] = []
    link_dir: list[str] = []
    for i, (sig, _program) in enumerate(chosen):
        groups: dict[tuple[str, str], tuple[set[int], set[str]]] = {}
        dirs: dict[tuple[str, str], str] = {}
        for m in sig.movements:
            for x in (m, *m.merged):
                if not x.is_used or x.is_pedestrian:
                    continue
                if x.from_edge not in graph_edges or x.to_edge not in graph_edges:
                    continue
                if x.from_lane not in vehicle_lanes(x.from_edge):
                    continue
                idx, lanes = groups.setdefault((x.from_edge, x.to_edge), (set(), set()))
                dirs.setdefault((x.from_edge, x.to_edge), x.direction)
                idx.add(m.link_index)
                lanes.add(x.from_lane)
        for (fe, te), (idx, lanes) in groups.items():
            green, protected = [], False
            for s in range(sig_stage_ptr[i], sig_stage_ptr[i + 1]):
                chars = {stage_state[s][li] for li in idx if li < len(stage_state[s])}
                if chars & {"G", "g"}:
                    green.append(s)
                    protected = protected or "G" in chars
            if not green:
                continue
            link_signal.append(i)
            link_from.append(fe)
            link_to.append(te)
            link_lanes.append(lanes)
            link_stages.append(green)
            link_protected.append(protected)
            link_index_sets.append(idx)
            link_dir.append(dirs.get((fe, te), "s"))
    n_links = len(link_signal)
    flow = np.array(
        [flow_vph.get((f, t), 0.0) / 3600.0 for f, t in zip(link_from, link_to, strict=True)],
        dtype=np.float64,
    )

    # saturation flow: each link's own rate factor (turning, permitted), then lanes shared
    sat_lane_vps = network.saturation_flow_per_lane / 3600.0
    factor = np.ones(n_links, dtype=np.float64)
    links_of_signal: dict[int, list[int]] = {}
    for l in range(n_links):
        links_of_signal.setdefault(link_signal[l], []).append(l)
    for l in range(n_links):
        if link_dir[l] in ("l", "L"):
            factor[l] *= left_turn_factor
        elif link_dir[l] in ("r", "R"):
            factor[l] *= right_turn_factor
        if not link_protected[l]:
            if permissive_factor is not None:
                factor[l] *= permissive_factor
            else:  # the gap-limited rate, at most the unopposed turning rate
                factor[l] = min(factor[l], _gap_acceptance_factor(
                    l, chosen, link_signal, link_stages, link_index_sets, stage_state, flow, sat_lane_vps,
                    critical_gap_s=critical_gap_s, follow_up_s=follow_up_s,
                    signal_links=links_of_signal[link_signal[l]],
                ))
    lane_users: dict[str, list[int]] = {}
    for l, lanes in enumerate(link_lanes):
        for ln in lanes:
            lane_users.setdefault(ln, []).append(l)
    sat = np.zeros(n_links, dtype=np.float64)
    for users in lane_users.values():
        total = float(sum(flow[u] for u in users))
        if shared_lanes == "equivalents" and total > 0:
            lane_rate = sat_lane_vps / sum(float(flow[u]) / total / factor[u] for u in users)
            for u in users:
                sat[u] += lane_rate * flow[u] / total if flow[u] > 0 else sat_lane_vps * factor[u] / len(users)
            continue
        for u in users:
            if flow[u] > 0 and total > 0:
                sat[u] += sat_lane_vps * factor[u] * flow[u] / total
            else:
                sat[u] += sat_lane_vps * factor[u] / len(users)

    sneak = np.array([0.0 if link_protected[l] else float(sneakers_per_cycle) for l in range(n_links)],
                     dtype=np.float64)
    block = _lane_blocking(lane_users, flow, factor, link_protected, sat_lane_vps, sneak) if lane_blocking else None

    # travel times
    travel = np.empty(n_links, dtype=np.float64)
    for l, fe in enumerate(link_from):
        attrs = network.edge(fe)
        travel[l] = float(attrs["length_m"]) / max(float(attrs["speed_mps"]), 1e-6)

    # feeders
    tls_nodes: dict[str, set[str]] = {}
    for n, tls in network.graph.nodes(data="tls"):
        if tls is not None:
            tls_nodes.setdefault(tls, set()).add(n)
    junction_sets: list[frozenset[str]] = []
    node_signal: dict[str, set[int]] = {}
    for i, (sig, _program) in enumerate(chosen):
        js = frozenset(sig.junctions) | tls_nodes.get(sig.id, set())
        junction_sets.append(js)
        for node in js:
            node_signal.setdefault(node, set()).add(i)
    links_into: dict[str, list[int]] = {}  # to_edge -> links sending onto it
    links_on: dict[tuple[int, str], list[int]] = {}  # (signal, from_edge) -> links
    for l in range(n_links):
        links_into.setdefault(link_to[l], []).append(l)
        links_on.setdefault((link_signal[l], link_from[l]), []).append(l)
    entry = flow.copy()
    in_ptr = [0]
    in_src: list[int] = []
    in_share: list[float] = []
    for l in range(n_links):
        e = link_from[l]
        s = link_signal[l]
        u_node, v_node = graph_edges[e]
        feeders: list[int] = []
        if v_node in junction_sets[s]:
            ups = node_signal.get(u_node, set())
            feeders = [u for u in links_into.get(e, []) if link_signal[u] in ups]
        if feeders and flow[l] > 0:
            q_e = float(sum(flow[x] for x in links_on[(s, e)]))
            i_e = float(sum(flow[u] for u in feeders))
            denom = max(q_e, i_e)
            if denom > 0:
                share = float(flow[l]) / denom
                entry[l] = 0.0 if i_e >= q_e else float(flow[l]) * (q_e - i_e) / q_e
                for u in feeders:
                    in_src.append(u)
                    in_share.append(share)
        in_ptr.append(len(in_src))

    stage_ptr = np.zeros(n_links + 1, dtype=np.int64)
    stage_ptr[1:] = np.cumsum([len(g) for g in link_stages])
    stage_idx = [s for g in link_stages for s in g]
    yel = np.array(st_yel, dtype=np.float64)
    red = np.array(st_red, dtype=np.float64)
    return CompiledNetwork(
        signal_ids=tuple(sig.id for sig, _ in chosen),
        sig_stage_ptr=_ro(sig_stage_ptr, np.int64),
        stage_min_green_s=_ro(st_min, np.float64),
        stage_max_green_s=_ro(st_max, np.float64),
        stage_yellow_s=_ro(yel, np.float64),
        stage_allred_s=_ro(red, np.float64),
        stage_intergreen_s=_ro(yel + red, np.float64),
        stage_phase=_ro(st_phase, np.int64),
        link_signal=_ro(link_signal, np.int64),
        link_from_edge=tuple(link_from),
        link_to_edge=tuple(link_to),
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
