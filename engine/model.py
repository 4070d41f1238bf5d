"""The macroscopic signal timing model (TRANSYT-style): validating wrappers and result types.

Public surface
--------------
:func:`evaluate`
    One plan → :class:`ModelResult` (per-link delay, stops, degree of saturation and totals).
:func:`evaluate_batch`
    Many candidate plans with a common cycle → performance index per candidate, spread over
    the cores with ``numba.prange`` (each thread its own work buffers).
:func:`evaluate_state`
    :func:`evaluate` that also returns the plan's :class:`BaseState`, the base of the local
    evaluations in :mod:`greenwave.engine.local_eval`.
:class:`ModelBuffers`
    Caller-owned work and output buffers for repeated :func:`evaluate` calls.

The kernels are in :mod:`greenwave.engine.kernels`, the checks of their inputs in
:mod:`greenwave.engine.model_inputs`. The model's exact semantics are written out in
:mod:`greenwave.engine.reference`, a plain Python version that the tests compare the kernels
against. Units: seconds, vehicles per second; PI in vehicle-seconds of delay per hour (stops
weighted by ``stop_penalty_s``).

Network and plan arrays always reach the kernels as read-only views, so every call hits the same
compiled signature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from greenwave.engine.arrays import CompiledNetwork, ModelParams, PlanArrays
from greenwave.engine.kernels import N_TOTALS, FullWork, batch_parallel, batch_serial, evaluate_kernel
from greenwave.engine.model_inputs import (
    check_candidates,
    check_cycle,
    check_plan_rows,
    kernel_arrays,
    max_stages_per_link,
    model_settings,
    network_arrays,
    piece_buffer_size,
    plan_vector,
    read_only,
)

__all__ = ["BaseState", "ModelBuffers", "ModelResult", "evaluate", "evaluate_batch", "evaluate_state"]


@dataclass(frozen=True)
class ModelResult:
    """What the model says about one plan.

    Per link (arrays of shape ``(n_links,)``)
        ``delay_s`` mean delay per vehicle (uniform + random), ``uniform_delay_s``,
        ``random_delay_s`` (HCM d2), ``stops`` (stops per vehicle, 0..1),
        ``degree_of_saturation`` (q / c; inf where the link never gets green).
    Totals
        ``pi`` performance index Σ 3600 q (delay + K stops) (veh·s per hour),
        ``total_delay_veh_h_per_h``, ``total_stops_per_h``, ``mean_delay_s`` (flow-weighted),
        ``cycles_iterated`` (cycle sweeps run) and ``converged`` (steady state reached before
        ``max_cycles``).
    """

    delay_s: np.ndarray
    uniform_delay_s: np.ndarray
    random_delay_s: np.ndarray
    stops: np.ndarray
    degree_of_saturation: np.ndarray
    pi: float
    total_delay_veh_h_per_h: float
    total_stops_per_h: float
    mean_delay_s: float
    cycles_iterated: int
    converged: bool


@dataclass(frozen=True)
class ModelBuffers:
    """Work and output buffers of :func:`evaluate` for one network and cycle length.

    Make them once with :meth:`allocate` and pass them as ``out=`` to avoid allocations in a
    loop. The :class:`ModelResult` returned then *shares* the per-link output arrays, which the
    next call with the same buffers overwrites.
    """

    n_links: int
    n_stages: int
    cycle_bins: int
    stage_start: np.ndarray  # (n_stages,)
    piece_a: np.ndarray  # (2 * max stages per link,)
    piece_b: np.ndarray
    green: np.ndarray  # (n_links * C,)
    dep: np.ndarray  # (n_links * C,)
    arr: np.ndarray  # (C,) arrivals
    mix: np.ndarray  # (C,) share-weighted feeder departures
    link_work: np.ndarray  # (5, n_links): q end, Σ q, min q, Σ stopped, Σ arrivals
    uniform: np.ndarray
    random: np.ndarray
    delay: np.ndarray
    stops: np.ndarray
    x: np.ndarray
    totals: np.ndarray  # (6,)
    pi_link: np.ndarray  # (n_links,) PI contribution of each link

    @classmethod
    def allocate(cls, net: CompiledNetwork, cycle_s: float) -> ModelBuffers:
        """Fresh buffers for ``net`` at cycle length ``cycle_s`` (s)."""
        n, C = net.n_links, int(round(cycle_s))
        pieces = piece_buffer_size(net)
        return cls(
            n_links=n, n_stages=net.n_stages, cycle_bins=C,
            stage_start=np.empty(net.n_stages), piece_a=np.empty(pieces), piece_b=np.empty(pieces),
            green=np.empty(n * C), dep=np.empty(n * C), arr=np.empty(C), mix=np.empty(C), link_work=np.empty((5, n)),
            uniform=np.empty(n), random=np.empty(n), delay=np.empty(n), stops=np.empty(n), x=np.empty(n),
            totals=np.empty(N_TOTALS), pi_link=np.empty(n),
        )

    def kernel_work(self) -> FullWork:
        """The buffers as the kernels take them."""
        return FullWork(self.stage_start, self.piece_a, self.piece_b, self.green, self.dep, self.arr, self.mix,
                        self.link_work, self.uniform, self.random, self.delay, self.stops, self.x, self.pi_link,
                        self.totals)


def evaluate(net: CompiledNetwork, plan: PlanArrays, params: ModelParams = ModelParams(), *,
             out: ModelBuffers | None = None) -> ModelResult:
    """Evaluate one timing plan with the macroscopic model.

    Parameters
    ----------
    net
        The compiled network with its demand.
    plan
        Common cycle (s), an offset per signal (s, 0 ≤ offset < cycle) and a green per stage (s);
        per signal Σ (green + intergreen) must equal the cycle within 1e-6 s.
    params
        Model settings.
    out
        Optional buffers from :meth:`ModelBuffers.allocate` for this network and cycle; the
        result's arrays then share memory with them.

    Returns
    -------
    ModelResult

    Raises
    ------
    PlanError
        The plan has a wrong dtype or shape or breaks a range rule; the message names the signal.
    NetworkError
        The network's arrays are inconsistent.
    """
    return _evaluate_run(net, plan, params, out, None)


def _evaluate_run(net: CompiledNetwork, plan: PlanArrays, params: ModelParams, out: ModelBuffers | None,
                  warm: BaseState | None) -> ModelResult:
    """Validate, then run the full kernel (cold, or warm from ``warm``'s departures and queues)."""
    arrays = network_arrays(net)
    link_F, link_L, settings = model_settings(net, params)
    C = check_cycle(plan.cycle_s)
    offsets = plan_vector(plan.offset_s, "plan.offset_s", net.n_signals, "signals")
    greens = plan_vector(plan.green_s, "plan.green_s", net.n_stages, "stages")
    check_plan_rows(net, float(plan.cycle_s), offsets[None, :], greens[None, :], arrays["stage_intergreen_s"],
                    arrays["sig_stage_ptr"], lambda _c: "plan")
    if out is None:
        out = ModelBuffers.allocate(net, plan.cycle_s)
    elif not isinstance(out, ModelBuffers) or (out.n_links, out.n_stages, out.cycle_bins) != (
            net.n_links, net.n_stages, C) or out.piece_a.shape[0] < 2 * max_stages_per_link(net):
        raise ValueError("out= buffers were allocated for another network or cycle; "
                         "use ModelBuffers.allocate(net, plan.cycle_s)")
    if warm is not None:
        if not isinstance(warm, BaseState) or warm.dep.shape != (net.n_links, C):
            raise ValueError("warm= must be a BaseState of this network at the plan's cycle length")
        out.dep[:] = warm.dep.reshape(-1)
        out.link_work[0, :] = warm.q_end
    evaluate_kernel(C, read_only(np.ascontiguousarray(offsets)), read_only(np.ascontiguousarray(greens)),
                    kernel_arrays(arrays, link_F, link_L, C), settings, warm is not None, out.kernel_work())
    t = out.totals
    return ModelResult(
        delay_s=out.delay, uniform_delay_s=out.uniform, random_delay_s=out.random, stops=out.stops,
        degree_of_saturation=out.x, pi=float(t[0]), total_delay_veh_h_per_h=float(t[1]),
        total_stops_per_h=float(t[2]), mean_delay_s=float(t[3]), cycles_iterated=int(t[4]),
        converged=bool(t[5] > 0.5),
    )


def evaluate_batch(net: CompiledNetwork, cycle_s: float, offsets: np.ndarray, greens: np.ndarray,
                   params: ModelParams = ModelParams(), *, out_pi: np.ndarray | None = None,
                   parallel: bool = True) -> np.ndarray:
    """Performance index of many candidate plans sharing one cycle.

    Parameters
    ----------
    net
        The compiled network.
    cycle_s
        Common cycle of every candidate (s).
    offsets
        ``(n_cand, n_signals)`` float64, one offset vector per candidate (0 ≤ offset < cycle).
    greens
        ``(n_cand, n_stages)`` float64, one green vector per candidate.
    params
        Model settings.
    out_pi
        Optional ``(n_cand,)`` float64 buffer for the result.
    parallel
        Spread the candidates over numba's threads (``prange``); ``False`` runs on one thread.

    Returns
    -------
    numpy.ndarray
        PI per candidate (veh·s per hour), ``out_pi`` if given.
    """
    arrays = network_arrays(net)
    link_F, link_L, settings = model_settings(net, params)
    C = check_cycle(cycle_s)
    n_cand = check_candidates(net, float(cycle_s), offsets, greens, arrays)
    if out_pi is None:
        out_pi = np.empty(n_cand)
    elif not (isinstance(out_pi, np.ndarray) and out_pi.dtype == np.float64 and out_pi.shape == (n_cand,)
              and out_pi.flags.c_contiguous and out_pi.flags.writeable):
        raise ValueError(f"out_pi must be a writable contiguous float64 array of shape ({n_cand},)")
    if n_cand == 0:
        return out_pi
    args = (C, read_only(np.ascontiguousarray(offsets)), read_only(np.ascontiguousarray(greens)),
            kernel_arrays(arrays, link_F, link_L, C), settings, piece_buffer_size(net), out_pi)
    if parallel:
        n_chunks = min(n_cand, numba.get_num_threads())
        batch_parallel(n_chunks, *args)
    else:
        batch_serial(*args)
    return out_pi


# ------------------------------------------------------------------------------------------
# the base state of local evaluations


@dataclass(frozen=True)
class BaseState:
    """Steady state of one plan from a full evaluation: the base of local evaluations.

    ``plan`` (a copy), ``dep`` the departure profile of every link in the last sweep
    (``(n_links, C)``, veh/s per 1-s bin), ``q_end`` the queues at the end of that sweep (veh),
    ``pi_link`` each link's PI contribution 3600 q (delay + K stops) (veh·s/h) and their sum
    ``pi``. The arrays are read-only.
    """

    plan: PlanArrays
    dep: np.ndarray
    q_end: np.ndarray
    pi_link: np.ndarray
    pi: float
    cycles_iterated: int
    converged: bool


def evaluate_state(net: CompiledNetwork, plan: PlanArrays, params: ModelParams = ModelParams(), *,
                   warm: BaseState | None = None) -> tuple[ModelResult, BaseState]:
    """:func:`evaluate` that also returns the plan's :class:`BaseState`.

    With ``warm=None`` the result is exactly :func:`evaluate`'s (cold start). With ``warm`` the
    cycle sweeps start from that state's departures and queues instead (a *warm* full
    evaluation, same convergence rule): cheaper after a small change of the plan, and equal to
    the cold result within the convergence tolerance, not bit for bit.
    """
    out = ModelBuffers.allocate(net, plan.cycle_s)
    res = _evaluate_run(net, plan, params, out, warm)
    C = out.cycle_bins
    state = BaseState(
        plan=PlanArrays(float(plan.cycle_s), np.array(plan.offset_s, dtype=np.float64),
                        np.array(plan.green_s, dtype=np.float64)),
        dep=read_only(out.dep.reshape(net.n_links, C)), q_end=read_only(out.link_work[0].copy()),
        pi_link=read_only(out.pi_link),
        pi=res.pi, cycles_iterated=res.cycles_iterated, converged=res.converged)
    return res, state


