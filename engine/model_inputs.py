"""Checks of the timing model's inputs and the kernel bundles built from them.

The wrappers of :mod:`greenwave.engine.model` and :mod:`greenwave.engine.local_eval` call these
before a kernel of :mod:`greenwave.engine.kernels` sees anything: the compiled network's dtypes,
shapes and pointers (:func:`network_arrays`), the model settings (:func:`model_settings`), the
cycle (:func:`check_cycle`) and the candidate plans (:func:`check_candidates`,
:func:`check_plan_rows`). Bad input raises :class:`~greenwave.errors.NetworkError` or
:class:`~greenwave.errors.PlanError` naming what is wrong; a kernel never sees it.

Arrays go to the kernels as read-only views (:func:`read_only`), so every call hits the same
compiled signature whether the caller's arrays are writable or not.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from greenwave.engine.arrays import CompiledNetwork, ModelParams
from greenwave.engine.kernels import NetArrays, Settings
from greenwave.errors import NetworkError, PlanError

__all__ = ["SUM_TOL_S", "check_candidates", "check_cycle", "check_plan_rows", "kernel_arrays", "max_stages_per_link",
           "model_settings", "network_arrays", "piece_buffer_size", "plan_vector", "read_only"]

#: Tolerance of Σ (green + intergreen) = cycle per signal, s.
SUM_TOL_S = 1e-6

_NET_FIELDS_F64 = ("stage_intergreen_s", "link_sat_flow_vps", "link_flow_vps", "link_entry_flow_vps",
                   "link_travel_s", "link_in_share")
_NET_FIELDS_I64 = ("sig_stage_ptr", "link_signal", "link_stage_ptr", "link_stage_idx", "link_in_ptr",
                   "link_in_src")


def read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view (one compiled signature whether the caller's array is writable or not)."""
    v = a.view()
    v.flags.writeable = False
    return v


def max_stages_per_link(net: CompiledNetwork) -> int:
    """The most stages that show one link green."""
    ptr = np.asarray(net.link_stage_ptr)
    return int(np.max(np.diff(ptr))) if ptr.shape[0] > 1 else 0


def piece_buffer_size(net: CompiledNetwork) -> int:
    """Length of the green-window piece buffers (``piece_a``, ``piece_b``) the kernels need."""
    return max(1, 2 * max_stages_per_link(net))


def _optional_rows(net: CompiledNetwork, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    a = getattr(net, name, None)
    if a is None:
        return None
    if not isinstance(a, np.ndarray) or a.dtype != np.float64 or a.shape != shape:
        got = f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        raise NetworkError(f"CompiledNetwork.{name} must be a float64 array of shape {shape} or None, got {got}")
    if not np.all(np.isfinite(a) & (a >= 0)):
        raise NetworkError(f"CompiledNetwork.{name} must be finite and ≥ 0")
    return a


def _discharge_array(net: CompiledNetwork, n_l: int) -> np.ndarray:
    """``(n_links, 4)``: sneakers, then the shared-lane blocking b, a0, a1 (zeros where absent)."""
    out = np.zeros((n_l, 4))
    sneak = _optional_rows(net, "link_sneakers_veh", (n_l,))
    if sneak is not None:
        out[:, 0] = sneak
    block = _optional_rows(net, "link_block", (n_l, 3))
    if block is not None:
        if np.any(block[:, 0] > np.asarray(net.link_sat_flow_vps) + 1e-12):
            raise NetworkError("CompiledNetwork.link_block: the blocked part b exceeds the link's saturation flow")
        out[:, 1:] = block
    return read_only(out)


def network_arrays(net: CompiledNetwork) -> dict[str, np.ndarray]:
    """Check the network's dtypes and shapes; its arrays as contiguous read-only views, by field
    name, plus ``link_discharge`` (:func:`_discharge_array`)."""
    out: dict[str, np.ndarray] = {}
    for name in _NET_FIELDS_F64 + _NET_FIELDS_I64:
        a = getattr(net, name)
        want = np.float64 if name in _NET_FIELDS_F64 else np.int64
        if not isinstance(a, np.ndarray) or a.dtype != want or a.ndim != 1:
            got = f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
            raise NetworkError(f"CompiledNetwork.{name} must be a 1-D {np.dtype(want)} array, got {got}")
        out[name] = read_only(np.ascontiguousarray(a))
    n_sig, n_st, n_l = net.n_signals, net.n_stages, net.n_links
    out["link_discharge"] = _discharge_array(net, n_l)
    n_in = out["link_in_src"].shape[0]
    expected = {"sig_stage_ptr": n_sig + 1, "stage_intergreen_s": n_st, "link_sat_flow_vps": n_l,
                "link_flow_vps": n_l, "link_entry_flow_vps": n_l, "link_travel_s": n_l,
                "link_stage_ptr": n_l + 1, "link_in_ptr": n_l + 1, "link_in_share": n_in}
    for name, size in expected.items():
        if out[name].shape[0] != size:
            raise NetworkError(f"CompiledNetwork.{name} has {out[name].shape[0]} entries, expected {size}")
    for ptr, target in (("sig_stage_ptr", n_st), ("link_stage_ptr", out["link_stage_idx"].shape[0]),
                        ("link_in_ptr", n_in)):
        p = out[ptr]
        if p[0] != 0 or p[-1] != target or np.any(np.diff(p) < 0):
            raise NetworkError(f"CompiledNetwork.{ptr} must rise from 0 to {target}")
    if n_st and (np.any(out["link_stage_idx"] < 0) or np.any(out["link_stage_idx"] >= n_st)):
        raise NetworkError("CompiledNetwork.link_stage_idx names a stage outside 0..n_stages-1")
    if n_in and (np.any(out["link_in_src"] < 0) or np.any(out["link_in_src"] >= n_l)):
        raise NetworkError("CompiledNetwork.link_in_src names a link outside 0..n_links-1")
    return out


def model_settings(net: CompiledNetwork, params: ModelParams) -> tuple[np.ndarray, np.ndarray, Settings]:
    """Per-link dispersion factor F and lag L (whole bins, not reduced modulo a cycle), and the
    scalar settings, of ``params`` on ``net``."""
    if not isinstance(params, ModelParams):
        raise TypeError(f"params must be a ModelParams, got {type(params).__name__}")
    problems = []
    if not (params.alpha >= 0 and math.isfinite(params.alpha)):
        problems.append(f"alpha = {params.alpha} (must be ≥ 0)")
    if not (params.beta >= 0 and math.isfinite(params.beta)):
        problems.append(f"beta = {params.beta} (must be ≥ 0)")
    if not (params.analysis_period_h > 0 and math.isfinite(params.analysis_period_h)):
        problems.append(f"analysis_period_h = {params.analysis_period_h} (must be > 0)")
    if not (math.isfinite(params.start_lag_s) and math.isfinite(params.end_gain_s)):
        problems.append("start_lag_s and end_gain_s must be finite")
    if not math.isfinite(params.stop_penalty_s):
        problems.append(f"stop_penalty_s = {params.stop_penalty_s} (must be finite)")
    if int(params.max_cycles) < 1 or int(params.warmup_cycles) < 0:
        problems.append("need max_cycles ≥ 1 and warmup_cycles ≥ 0")
    if not params.tol_veh >= 0:
        problems.append(f"tol_veh = {params.tol_veh} (must be ≥ 0)")
    if problems:
        raise ValueError("invalid ModelParams: " + "; ".join(problems))
    travel = np.asarray(net.link_travel_s, dtype=np.float64)
    if np.any(~np.isfinite(travel)) or np.any(travel < 0):
        raise NetworkError("CompiledNetwork.link_travel_s must be finite and ≥ 0")
    link_F = 1.0 / (1.0 + params.alpha * params.beta * travel)
    link_L = np.round(params.beta * travel).astype(np.int64)  # half to even, like round()
    settings = Settings(float(params.start_lag_s), float(params.end_gain_s), float(params.stop_penalty_s),
                        float(params.analysis_period_h), int(params.warmup_cycles), int(params.max_cycles),
                        float(params.tol_veh))
    return link_F, link_L, settings


def kernel_arrays(arrays: dict[str, np.ndarray], link_F: np.ndarray, link_L: np.ndarray, C: int) -> NetArrays:
    """The kernels' bundle of the checked ``arrays`` (:func:`network_arrays`) and the dispersion
    of :func:`model_settings` at a cycle of ``C`` bins."""
    return NetArrays(
        sig_stage_ptr=arrays["sig_stage_ptr"], stage_ig=arrays["stage_intergreen_s"],
        link_signal=arrays["link_signal"], link_sat=arrays["link_sat_flow_vps"], link_dis=arrays["link_discharge"],
        link_flow=arrays["link_flow_vps"], link_entry=arrays["link_entry_flow_vps"], link_F=read_only(link_F),
        link_lag=read_only(link_L % C), link_stage_ptr=arrays["link_stage_ptr"],
        link_stage_idx=arrays["link_stage_idx"], link_in_ptr=arrays["link_in_ptr"],
        link_in_src=arrays["link_in_src"], link_in_share=arrays["link_in_share"])


def check_cycle(cycle_s: float) -> int:
    """The number of 1-s bins of a cycle of ``cycle_s`` seconds (PlanError unless ≥ 1)."""
    try:
        c = float(cycle_s)
    except (TypeError, ValueError):
        raise PlanError(f"cycle_s must be a number of seconds, got {cycle_s!r}") from None
    if not (math.isfinite(c) and c > 0):
        raise PlanError(f"cycle_s = {cycle_s} s; the cycle must be a finite positive length")
    C = int(round(c))
    if C < 1:
        raise PlanError(f"cycle_s = {cycle_s} s rounds to {C} one-second bins; use a cycle of at least 1 s")
    return C


def check_plan_rows(net: CompiledNetwork, cycle: float, offsets: np.ndarray, greens: np.ndarray,
                    stage_ig: np.ndarray, sig_ptr: np.ndarray, what: Callable[[int], str]) -> None:
    """Range checks of 2-D offsets (n_cand, n_signals) and greens (n_cand, n_stages); ``what(c)``
    names candidate ``c`` in the message."""
    n_cand = offsets.shape[0]
    cum = np.zeros((n_cand, greens.shape[1] + 1))
    np.cumsum(greens + stage_ig[None, :], axis=1, out=cum[:, 1:])
    sums = cum[:, sig_ptr[1:]] - cum[:, sig_ptr[:-1]]
    # one pass of whole-array tests first (hot path: optimisers call this for every batch); NaN
    # fails every comparison, so it falls through to the detailed checks below
    if ((offsets >= 0) & (offsets < cycle)).all() and (greens >= 0).all() and np.isfinite(greens).all() \
            and (np.abs(sums - cycle) <= SUM_TOL_S).all():
        return
    for name, a in (("offset", offsets), ("green", greens)):
        bad = np.argwhere(~np.isfinite(a))
        if bad.size:
            cand, col = bad[0]
            raise PlanError(f"{what(cand)}: {name} {a[cand, col]} at column {col} is not a finite number")
    bad = np.argwhere((offsets < 0) | (offsets >= cycle))
    if bad.size:
        cand, i = bad[0]
        raise PlanError(f"{what(cand)}: offset of signal {net.signal_ids[i]!r} is {offsets[cand, i]} s; "
                        f"it must lie in [0, {cycle}) (take it modulo the cycle)")
    bad = np.argwhere(greens < 0)
    if bad.size:
        cand, k = bad[0]
        i = int(np.searchsorted(sig_ptr, k, side="right")) - 1
        raise PlanError(f"{what(cand)}: stage {k - sig_ptr[i]} of signal {net.signal_ids[i]!r} has a negative "
                        f"green of {greens[cand, k]} s")
    bad = np.argwhere(np.abs(sums - cycle) > SUM_TOL_S)
    if bad.size:
        cand, i = bad[0]
        n_st = int(sig_ptr[i + 1] - sig_ptr[i])
        raise PlanError(f"{what(cand)}: signal {net.signal_ids[i]!r} runs Σ(green + intergreen) = "
                        f"{sums[cand, i]:.6f} s over its {n_st} stage(s) but the cycle is {cycle} s; "
                        f"change its greens by {cycle - sums[cand, i]:+.6f} s in total")


def plan_vector(a: object, name: str, size: int, what: str) -> np.ndarray:
    """``a`` checked to be a float64 vector of ``size`` entries (``name`` and ``what`` for the message)."""
    if not isinstance(a, np.ndarray) or a.dtype != np.float64:
        got = f"{a.dtype} array" if isinstance(a, np.ndarray) else type(a).__name__
        raise PlanError(f"{name} must be a float64 numpy array, got {got}")
    if a.shape != (size,):
        raise PlanError(f"{name} has shape {a.shape} but the network has {size} {what}")
    return a


def check_candidates(net: CompiledNetwork, cycle: float, offsets: np.ndarray, greens: np.ndarray,
                     arrays: dict[str, np.ndarray]) -> int:
    """Dtype, shape and range checks of candidate rows; their number."""
    for name, a, cols, what in (("offsets", offsets, net.n_signals, "signals"),
                                ("greens", greens, net.n_stages, "stages")):
        if not isinstance(a, np.ndarray) or a.dtype != np.float64:
            got = f"{a.dtype} array" if isinstance(a, np.ndarray) else type(a).__name__
            raise PlanError(f"{name} must be a float64 numpy array, got {got}")
        if a.ndim != 2 or a.shape[1] != cols:
            raise PlanError(f"{name} has shape {a.shape}; expected (n_candidates, {cols}) for {cols} {what}")
    if offsets.shape[0] != greens.shape[0]:
        raise PlanError(f"offsets has {offsets.shape[0]} candidates but greens has {greens.shape[0]}")
    n_cand = int(offsets.shape[0])
    check_plan_rows(net, cycle, offsets, greens, arrays["stage_intergreen_s"], arrays["sig_stage_ptr"],
                    lambda c: f"candidate {c}")
    return n_cand
