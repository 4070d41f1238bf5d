"""Local (incremental) evaluation of moves at one signal: kernel against reference, limits,
agreement with full evaluation, and the hill climb that uses it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from greenwave.engine import local_eval, model, reference
from greenwave.engine.arrays import CompiledNetwork, ModelParams, PlanArrays
from greenwave.engine.optimise import OptimiserSettings, _Scorer, hill_climb, optimise, webster_plan
from tests.handmade import arterial
from tests.test_model import random_net, random_params, random_plan, with_blocking

# ------------------------------------------------------------------------------------------
# a grid of signals with 12 turning links each


def grid(rows: int, cols: int, *, seed: int = 0, boundary_vph: float = 450.0, sat_vph: float = 1800.0,
         turn: tuple[float, float, float] = (0.15, 0.7, 0.15), keep: float = 0.9,
         sneakers: float | None = None) -> CompiledNetwork:
    """``rows × cols`` signals, two stages each (N–S, then E–W); per signal 4 approaches × 3 turns
    (left, through, right). A link feeds the three turning links of the approach it enters at
    the next signal (shares ``keep · turn``); approaches from outside get uniform arrivals.
    ``sneakers`` (if given) are set on the (permissive) left-turn links."""
    rng = np.random.default_rng(seed)
    n_sig = rows * cols
    dirs = [(-1, 0), (0, 1), (1, 0), (0, -1)]  # heading of travel: N, E, S, W (row, col)

    def sig(r: int, c: int) -> int:
        return r * cols + c

    def link(i: int, approach: int, t: int) -> int:  # approach = heading of the arriving traffic
        return 12 * i + 3 * approach + t

    n = 12 * n_sig
    entry = np.zeros(n)
    travel = np.zeros(n)
    stage_idx = np.zeros(n, dtype=np.int64)
    feeders: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for r in range(rows):
        for c in range(cols):
            i = sig(r, c)
            for h, (dr, dc) in enumerate(dirs):
                pr, pc = r - dr, c - dc  # the signal the traffic heading h comes from
                for t in range(3):
                    lk = link(i, h, t)
                    stage_idx[lk] = 2 * i + (0 if h in (0, 2) else 1)
                    travel[lk] = rng.uniform(18.0, 40.0)
                    if not (0 <= pr < rows and 0 <= pc < cols):
                        entry[lk] = boundary_vph / 3600.0 * turn[t]
                    else:
                        entry[lk] = 20.0 / 3600.0 * turn[t]
                for up_h in range(4):  # links at the previous signal leaving with heading h
                    for t in range(3):
                        out_h = (up_h + (-1, 0, 1)[t]) % 4
                        if out_h != h or not (0 <= pr < rows and 0 <= pc < cols):
                            continue
                        src = link(sig(pr, pc), up_h, t)
                        for t2 in range(3):
                            feeders[link(i, h, t2)].append((src, keep * turn[t2]))
    ptr = np.concatenate([[0], np.cumsum([len(f) for f in feeders])]).astype(np.int64)
    src = np.array([s for f in feeders for s, _ in f], dtype=np.int64)
    share = np.array([sh for f in feeders for _, sh in f], dtype=np.float64)
    dst = np.repeat(np.arange(n), np.diff(ptr))
    S = sp.csr_matrix((share, (dst, src)), shape=(n, n))
    flow = entry.copy()
    for _ in range(400):
        flow = entry + S @ flow
    n_st = 2 * n_sig
    return CompiledNetwork(
        signal_ids=tuple(f"G{i}" for i in range(n_sig)),
        sig_stage_ptr=np.arange(0, n_st + 1, 2, dtype=np.int64),
        stage_min_green_s=np.full(n_st, 6.0), stage_max_green_s=np.full(n_st, 120.0),
        stage_yellow_s=np.full(n_st, 3.0), stage_allred_s=np.full(n_st, 2.0), stage_intergreen_s=np.full(n_st, 5.0),
        stage_phase=np.tile(np.array([0, 2], dtype=np.int64), n_sig),
        link_signal=np.repeat(np.arange(n_sig, dtype=np.int64), 12),
        link_from_edge=tuple(f"in{l}" for l in range(n)), link_to_edge=tuple(f"out{l}" for l in range(n)),
        link_sat_flow_vps=np.full(n, sat_vph / 3600.0) * np.tile([0.8, 1.0, 0.85], 4 * n_sig),
        link_flow_vps=flow, link_entry_flow_vps=entry, link_travel_s=travel,
        link_stage_ptr=np.arange(n + 1, dtype=np.int64), link_stage_idx=stage_idx,
        link_in_ptr=ptr, link_in_src=src, link_in_share=share,
        link_sneakers_veh=None if sneakers is None else np.tile([float(sneakers), 0.0, 0.0], 4 * n_sig),
    )


def signal_moves(net: CompiledNetwork, plan: PlanArrays, signal: int, rng: np.random.Generator,
                 n_off: int = 4, n_split: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Random offset and split moves of one signal (candidate rows)."""
    C = plan.cycle_s
    offs, greens = [], []
    for _ in range(n_off):
        o = np.array(plan.offset_s, dtype=np.float64)
        o[signal] = (o[signal] + float(rng.choice([1.0, 2.0, 5.0, C / 4, -3.0, -C / 8]))) % C
        offs.append(o)
        greens.append(np.array(plan.green_s, dtype=np.float64))
    s = net.stages_of(signal)
    for _ in range(n_split if len(s) > 1 else 0):
        a, b = rng.choice(np.arange(s.start, s.stop), size=2, replace=False)
        g = np.array(plan.green_s, dtype=np.float64)
        step = min(float(rng.uniform(0.5, 4.0)), float(g[a]))
        g[a] -= step
        g[b] += step
        offs.append(np.array(plan.offset_s, dtype=np.float64))
        greens.append(g)
    return np.array(offs), np.array(greens)


# ------------------------------------------------------------------------------------------
# kernel against reference


@pytest.mark.parametrize("seed", range(14))
def test_moves_kernel_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    if seed < 10:
        net = random_net(rng)
        plan = random_plan(net, rng)
        params = ModelParams() if seed % 3 == 0 else random_params(rng)
    else:
        net = arterial(4, travel_s=list(rng.uniform(15, 45, 3))) if seed % 2 else grid(2, 2, seed=seed)
        plan = webster_plan(net)
        plan = PlanArrays(plan.cycle_s, np.floor(rng.uniform(0, plan.cycle_s, net.n_signals)), plan.green_s)
        params = ModelParams()
    _res, state = model.evaluate_state(net, plan, params)
    active = local_eval.active_sets(net)
    for signal in range(net.n_signals):
        want_set = reference.active_sets_reference(net, signal)
        assert list(active[1][active[0][signal]:active[0][signal + 1]]) == want_set
    signal = int(rng.integers(net.n_signals))
    offs, greens = signal_moves(net, plan, signal, rng)
    sweeps = int(rng.integers(1, 5))
    fast = local_eval.evaluate_moves(net, state, signal, offs, greens, params, active=active, local_sweeps=sweeps)
    serial = local_eval.evaluate_moves(net, state, signal, offs, greens, params, parallel=False, local_sweeps=sweeps)
    slow = reference.evaluate_moves_reference(net, state, signal, offs, greens, params, local_sweeps=sweeps)
    np.testing.assert_array_equal(fast, serial)
    scale = max(1.0, state.pi)
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9 * scale)
    # and the local PIs themselves
    links = reference.active_sets_reference(net, signal)
    pl = local_eval.evaluate_local(net, state, np.array(links, dtype=np.int64), offs, greens, params,
                                   local_sweeps=sweeps)
    pr = reference.evaluate_local_reference(net, state, links, offs, greens, params, local_sweeps=sweeps)
    np.testing.assert_allclose(pl, pr, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_moves_kernel_matches_reference_with_sneakers(seed: int) -> None:
    rng = np.random.default_rng(2000 + seed)
    if seed < 5:
        net = random_net(rng, sneakers=True)
        plan = random_plan(net, rng)
        params = ModelParams() if seed % 3 == 0 else random_params(rng)
    else:
        net = grid(2, 2, seed=seed, boundary_vph=600.0, sneakers=float(rng.uniform(1.0, 3.0)))
        plan = webster_plan(net)
        plan = PlanArrays(plan.cycle_s, np.floor(rng.uniform(0, plan.cycle_s, net.n_signals)), plan.green_s)
        params = ModelParams()
    assert net.link_sneakers_veh is not None and np.any(net.link_sneakers_veh > 0)
    _res, state = model.evaluate_state(net, plan, params)
    signal = int(rng.integers(net.n_signals))
    offs, greens = signal_moves(net, plan, signal, rng)
    sweeps = int(rng.integers(1, 5))
    fast = local_eval.evaluate_moves(net, state, signal, offs, greens, params, local_sweeps=sweeps)
    serial = local_eval.evaluate_moves(net, state, signal, offs, greens, params, parallel=False, local_sweeps=sweeps)
    slow = reference.evaluate_moves_reference(net, state, signal, offs, greens, params, local_sweeps=sweeps)
    np.testing.assert_array_equal(fast, serial)
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9 * max(1.0, state.pi))
    links = reference.active_sets_reference(net, signal)
    pl = local_eval.evaluate_local(net, state, np.array(links, dtype=np.int64), offs, greens, params,
                                   local_sweeps=sweeps)
    pr = reference.evaluate_local_reference(net, state, links, offs, greens, params, local_sweeps=sweeps)
    np.testing.assert_allclose(pl, pr, rtol=1e-9, atol=1e-9)
    # advance_state (the _local_pi path) agrees with the local delta
    ptr, idx = local_eval.active_sets(net)
    new = local_eval.advance_state(net, state, PlanArrays(plan.cycle_s, offs[0], greens[0]),
                              idx[ptr[signal]:ptr[signal + 1]], params, local_sweeps=sweeps)
    assert new.pi == pytest.approx(state.pi + fast[0], rel=1e-9, abs=1e-9 * max(1.0, state.pi))


@pytest.mark.parametrize("seed", range(4))
def test_moves_kernel_matches_reference_with_lane_blocking(seed: int) -> None:
    rng = np.random.default_rng(3000 + seed)
    net = with_blocking(random_net(rng, sneakers=True), rng)
    plan = random_plan(net, rng)
    params = ModelParams() if seed % 2 == 0 else random_params(rng)
    _res, state = model.evaluate_state(net, plan, params)
    signal = int(rng.integers(net.n_signals))
    offs, greens = signal_moves(net, plan, signal, rng)
    fast = local_eval.evaluate_moves(net, state, signal, offs, greens, params, local_sweeps=3)
    slow = reference.evaluate_moves_reference(net, state, signal, offs, greens, params, local_sweeps=3)
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9 * max(1.0, state.pi))


def test_all_links_local_is_the_full_model_with_sneakers() -> None:
    rng = np.random.default_rng(12)
    net = grid(2, 3, seed=4, boundary_vph=300, sneakers=2.0)
    params = ModelParams(tol_veh=1e-12, warmup_cycles=60, max_cycles=200)
    plan = webster_plan(net)
    plan = PlanArrays(plan.cycle_s, np.floor(rng.uniform(0, plan.cycle_s, net.n_signals)), plan.green_s)
    res, state = model.evaluate_state(net, plan, params)
    assert res.converged
    offs, greens = signal_moves(net, plan, 1, rng)
    local = local_eval.evaluate_local(net, state, np.arange(net.n_links, dtype=np.int64), offs, greens, params,
                                 local_sweeps=50)
    full = model.evaluate_batch(net, plan.cycle_s, offs, greens, params)
    np.testing.assert_allclose(local, full, rtol=1e-6)


def test_state_matches_evaluate_and_warm_start() -> None:
    rng = np.random.default_rng(5)
    net = grid(3, 3, seed=5)
    plan = webster_plan(net)
    res, state = model.evaluate_state(net, plan)
    full = model.evaluate(net, plan)
    assert res.pi == full.pi and state.pi == full.pi
    np.testing.assert_array_equal(res.delay_s, full.delay_s)
    assert state.dep.shape == (net.n_links, round(plan.cycle_s))
    assert state.pi_link.sum() == pytest.approx(full.pi, rel=1e-12)
    moved = PlanArrays(plan.cycle_s, np.floor(rng.uniform(0, plan.cycle_s, net.n_signals)), plan.green_s)
    warm, _ = model.evaluate_state(net, moved, warm=state)
    cold = model.evaluate(net, moved)
    assert warm.converged and warm.pi == pytest.approx(cold.pi, rel=1e-3)
    again, _ = model.evaluate_state(net, plan, warm=state)  # warm from its own steady state
    assert again.cycles_iterated <= 3
    assert again.pi == pytest.approx(full.pi, rel=1e-3)


def test_validation() -> None:
    net = arterial(3)
    plan = webster_plan(net)
    _res, state = model.evaluate_state(net, plan)
    offs = np.array([plan.offset_s])
    greens = np.array([plan.green_s])
    with pytest.raises(ValueError, match="signal"):
        local_eval.evaluate_moves(net, state, 3, offs, greens)
    with pytest.raises(ValueError, match="local_sweeps"):
        local_eval.evaluate_moves(net, state, 0, offs, greens, local_sweeps=0)
    with pytest.raises(Exception, match="float64"):
        local_eval.evaluate_moves(net, state, 0, offs.astype(np.float32), greens)
    with pytest.raises(ValueError, match="sorted"):
        local_eval.evaluate_local(net, state, np.array([2, 1]), offs, greens)
    assert local_eval.evaluate_moves(net, state, 0, offs, greens) == pytest.approx([0.0], abs=1e-9)


# ------------------------------------------------------------------------------------------
# limits and agreement with the full model


@pytest.mark.parametrize("which", ["arterial", "grid"])
def test_all_links_and_many_sweeps_is_the_full_model(which: str) -> None:
    """A = all links, 50 sweeps, undersaturated: PI_local(candidate) = full PI(candidate)."""
    rng = np.random.default_rng(11)
    net = arterial(6, travel_s=[20, 35, 30, 25, 40]) if which == "arterial" else grid(3, 3, seed=2,
                                                                                      boundary_vph=300)
    # the full model's stopping rule looks at queues only: with queues that clear every cycle it can
    # stop while platoons still travel against the link order, so force enough sweeps for the true
    # steady state (the deepest chain here is 6 links)
    params = ModelParams(tol_veh=1e-12, warmup_cycles=60, max_cycles=200)
    plan = webster_plan(net)
    plan = PlanArrays(plan.cycle_s, np.floor(rng.uniform(0, plan.cycle_s, net.n_signals)), plan.green_s)
    res, state = model.evaluate_state(net, plan, params)
    assert res.converged and np.all(res.degree_of_saturation < 1)
    every = np.arange(net.n_links, dtype=np.int64)
    for signal in (0, net.n_signals // 2):
        offs, greens = signal_moves(net, plan, signal, rng)
        local = local_eval.evaluate_local(net, state, every, offs, greens, params, local_sweeps=50)
        full = [model.evaluate(net, PlanArrays(plan.cycle_s, o, g), params).pi for o, g in zip(offs, greens,
                                                                                                strict=True)]
        np.testing.assert_allclose(local, full, rtol=1e-6)


def test_local_delta_sign_agrees_with_full_delta() -> None:
    agree = total = 0
    for k in range(4):
        rng = np.random.default_rng(50 + k)
        net = arterial(8, travel_s=list(rng.uniform(15, 50, 7)), main_vph=rng.uniform(600, 1000),
                       inbound_vph=rng.uniform(400, 900), side_vph=rng.uniform(150, 300))
        plan = webster_plan(net)
        plan = PlanArrays(plan.cycle_s, np.floor(rng.uniform(0, plan.cycle_s, net.n_signals)), plan.green_s)
        _res, state = model.evaluate_state(net, plan)
        for signal in range(net.n_signals):
            offs, greens = signal_moves(net, plan, signal, rng, n_off=6, n_split=0)
            local = local_eval.evaluate_moves(net, state, signal, offs, greens)
            full = model.evaluate_batch(net, plan.cycle_s, offs, greens) - state.pi
            big = np.abs(full) > 0.01 * state.pi
            agree += int(np.sum(np.sign(local[big]) == np.sign(full[big])))
            total += int(np.sum(big))
    assert total >= 40
    assert agree >= 0.9 * total


# ------------------------------------------------------------------------------------------
# the hill climb


@pytest.mark.parametrize("parallel", [True, False])
def test_hill_climb_history_is_exact_and_non_increasing(parallel: bool) -> None:
    net = grid(3, 4, seed=3)
    settings = OptimiserSettings(parallel=parallel, max_passes=4)
    scorer = _Scorer(net, ModelParams(), parallel)
    rng = np.random.default_rng(3)
    start = webster_plan(net, settings)
    start = PlanArrays(start.cycle_s, np.floor(rng.uniform(0, start.cycle_s, net.n_signals)), start.green_s)
    plan, pi, history = hill_climb(scorer, start, settings)
    assert history == sorted(history, reverse=True)
    assert history[0] == model.evaluate(net, start).pi
    assert pi == history[-1] == model.evaluate(net, plan).pi
    assert pi < history[0]
    assert scorer.local_evaluations > 0 and scorer.evaluations >= scorer.local_evaluations


@pytest.mark.slow
def test_optimise_on_a_grid_beats_webster() -> None:
    net = grid(3, 3, seed=9)
    settings = OptimiserSettings(seed=2, global_candidates=32)
    res = optimise(net, settings=settings)
    assert res.pi <= model.evaluate(net, webster_plan(net, settings)).pi
    assert res.history == sorted(res.history, reverse=True)
    assert res.pi == pytest.approx(res.history[-1], rel=1e-12)


def test_advance_state_moves_the_base_by_the_local_delta() -> None:
    rng = np.random.default_rng(21)
    net = grid(3, 3, seed=21)
    plan = webster_plan(net)
    _res, state = model.evaluate_state(net, plan)
    ptr, idx = local_eval.active_sets(net)
    signal = 4
    offs, greens = signal_moves(net, plan, signal, rng, n_off=2, n_split=1)
    delta = local_eval.evaluate_moves(net, state, signal, offs, greens, parallel=False)
    moved = PlanArrays(plan.cycle_s, offs[0], greens[0])
    new = local_eval.advance_state(net, state, moved, idx[ptr[signal]:ptr[signal + 1]])
    assert new.pi == pytest.approx(state.pi + delta[0], rel=1e-12)
    np.testing.assert_array_equal(new.plan.offset_s, offs[0])
    outside = np.setdiff1d(np.arange(net.n_links), idx[ptr[signal]:ptr[signal + 1]])
    np.testing.assert_array_equal(new.dep[outside], state.dep[outside])
    # the moved state is close to the plan's own steady state
    assert new.pi == pytest.approx(model.evaluate(net, moved).pi, rel=0.02)
