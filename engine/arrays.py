"""The flat, read-only arrays the timing model and optimisers work on.

A :class:`CompiledNetwork` (defined in :mod:`greenwave.networks.compiled`, beside the compiler,
and re-exported here) is made once per run from a ``RoadNetwork`` plus movement flows
(:func:`greenwave.networks.compile.compile_network`); kernels never see networkx or pandas.
A :class:`PlanArrays` is one candidate timing plan in the same flat form. Units: seconds,
vehicles per second (flows and saturation flows), metres.

Model elements
--------------
*Signal* ``i`` (0..n_signals-1) has *stages* ``sig_stage_ptr[i] .. sig_stage_ptr[i+1]-1``, in
the order they run. A stage is one green phase of the signal's program; after stage ``k`` come
``stage_yellow_s[k]`` s of yellow and ``stage_allred_s[k]`` s of all-red (the intergreen
``stage_intergreen_s[k]`` = yellow + red) before the next stage's green starts. Within a cycle
of length C the signal runs, starting at its offset::

    start(first stage) = offset
    start(k+1) = start(k) + green(k) + intergreen(k)          (all modulo C)

and Σ_k (green(k) + intergreen(k)) = C must hold.

*Link* ``l`` (0..n_links-1) is one modelled traffic stream: the vehicles on approach edge
``link_from_edge[l]`` of signal ``link_signal[l]`` that turn into ``link_to_edge[l]``. It
discharges at ``link_sat_flow_vps[l]`` during its *effective green*: the union, over the stages
``link_stage_idx[link_stage_ptr[l] : link_stage_ptr[l+1]]`` that show it green, of
``[start(k) + start_lag_s, start(k) + green(k) + end_gain_s)``.

Arrivals at link ``l``'s stop line, per second of the cycle, are

* ``link_entry_flow_vps[l]`` uniformly (vehicles from outside the modelled network or from
  unsignalised upstream junctions), plus
* for each feeder ``j`` in ``link_in_ptr[l] .. link_in_ptr[l+1]-1``: ``link_in_share[j]`` times
  the departure profile of upstream link ``link_in_src[j]``, delayed by ``link_travel_s[l]`` and
  smoothed by Robertson's platoon dispersion (α, β from :class:`ModelParams`).

*Sneakers*: ``link_sneakers_veh[l]`` (``None`` means all 0) vehicles may leave link ``l``'s queue
in addition, in the last 1-s bin of each effective green window (bin ``t`` with ``g(t) > ε`` and
``g((t+1) mod C) ≤ ε``, ε = 1e-9 so that rounding slivers count as red): permitted turners that
waited inside the junction and clear at the end of green (HCM, TRANSYT). They add
``sneakers · (green-window ends per cycle) / C`` to the capacity.

*Shared-lane blocking*: ``link_block[l] = (b, a0, a1)`` (``None`` means no blocking). A part
``b`` (veh/s) of link ``l``'s saturation flow comes from lanes it shares with permitted turners
(``g`` links that wait for gaps). Such a lane discharges only until a turner that finds no gap
reaches the stop line and stops it; per effective green window of length W it lets through at
most ``a0 + a1 · W`` of link ``l``'s vehicles (``a0`` from the turners that clear at the end of
green, ``a1`` from those that find gaps during it). Over a cycle with ``n`` green windows of
total effective length G, the link discharges at ``s − b + min(b, (a0 n + a1 G) / G)``. This is
what makes short cycles serve shared lanes with permitted turns better (more green ends per
hour), as SUMO and the street show.

``link_flow_vps[l]`` is the link's total demand (= entry flow + Σ share · upstream flow, by
construction); it drives Webster and the random delay term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from greenwave.networks.compiled import CompiledNetwork

__all__ = ["SUMO_PARAMS", "SUMO_SATURATION_FLOW_PER_LANE_VPH", "CompiledNetwork", "ModelParams", "PlanArrays"]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class ModelParams:
    """Settings of the macroscopic model (TRANSYT's defaults).

    alpha, beta
        Robertson platoon dispersion: F = 1 / (1 + α β T), travel time lag β T.
    stop_penalty_s
        K in PI = Σ (delay + K · stops): seconds of delay one stop is worth.
    start_lag_s, end_gain_s
        Effective green = [green start + start_lag, green end + end_gain): start-up loss and
        yellow use. With both 2 s the effective green equals the displayed green, as measured in
        SUMO (tests/test_theory.py).
    analysis_period_h
        T of the random/oversaturation delay term (HCM d2), hours.
    warmup_cycles, max_cycles, tol_veh
        Profiles are iterated cycle by cycle until neither the queues at cycle end nor the
        departure profiles (Σ over the cycle of the absolute change) change by more than
        ``tol_veh`` vehicles (steady state, also on networks with loops), at most ``max_cycles``.
    """

    alpha: float = 0.35
    beta: float = 0.8
    stop_penalty_s: float = 20.0
    start_lag_s: float = 2.0
    end_gain_s: float = 2.0
    analysis_period_h: float = 0.25
    warmup_cycles: int = 2
    max_cycles: int = 20
    tol_veh: float = 0.01


#: Model settings measured in SUMO (default passenger cars, 13.89 m/s streets, 3 s yellow) by
#: ``benchmarks/calibrate.py`` (figures in ``benchmarks/results/calibration.json``, rounded here):
#: Robertson's lag and smoothing fitted to the arrival profile one 179 m block downstream of a
#: fixed-time signal (β = 1.20: a platoon leaving a stop line reaches the next one 15–16 s later,
#: not 0.8 × 12.9 s, because queued cars accelerate from a standstill; α = 0.16); the time loss
#: of one stop beyond the time spent standing (4.1 s, deceleration plus acceleration), which
#: makes PI = Σ (delay + K · stops) the model's estimate of SUMO's time loss; effective green =
#: displayed green − 1.3 s with 3 s yellow and no all-red (start lag 2 s, end gain 0.7 s).
#: ``tests/test_theory.py`` re-measures the lag, the smoothing and the stop loss.
SUMO_PARAMS = ModelParams(alpha=0.16, beta=1.2, stop_penalty_s=4.0, start_lag_s=2.0, end_gain_s=0.7)

#: Saturation flow of a through lane in SUMO, veh/h (benchmarks/calibrate.py: 1897 veh/h/lane
#: from the discharge of oversaturated through-only approaches at cycles of 30 and 60 s).
SUMO_SATURATION_FLOW_PER_LANE_VPH = 1900.0


@dataclass(frozen=True)
class PlanArrays:
    """One timing plan in flat form: common cycle, an offset per signal, a green per stage (s).

    Offsets are the start of each signal's first stage green within the cycle, 0 ≤ offset < C.
    """

    cycle_s: float
    offset_s: F64  # (n_signals,)
    green_s: F64  # (n_stages,)
