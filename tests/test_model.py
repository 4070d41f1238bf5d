"""The macroscopic model: numba kernels against the plain reference, against theory, validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from greenwave.engine import kernels, model, reference
from greenwave.engine.arrays import CompiledNetwork, ModelParams, PlanArrays
from greenwave.errors import PlanError

# ------------------------------------------------------------------------------------------
# networks built by hand


def make_net(stage_ig: list[list[float]], links: list[dict]) -> CompiledNetwork:
    """A CompiledNetwork from per-signal intergreens and link dicts.

    Link keys: ``signal``, ``stages`` (global stage indices), ``sat`` (veh/s), ``entry`` (veh/s),
    ``travel`` (s), ``feeders`` [(upstream link, share)]. Total flows solve flow = entry + S flow.
    """
    n_sig = len(stage_ig)
    sig_ptr = np.concatenate([[0], np.cumsum([len(s) for s in stage_ig])]).astype(np.int64)
    ig = np.array([v for s in stage_ig for v in s], dtype=np.float64)
    n_st, n = len(ig), len(links)
    share = np.zeros((n, n))
    for l, lk in enumerate(links):
        for src, sh in lk.get("feeders", []):
            share[l, src] += sh
    entry = np.array([lk.get("entry", 0.0) for lk in links], dtype=np.float64)
    flow = np.linalg.solve(np.eye(n) - share, entry) if n else np.zeros(0)
    feeders = [lk.get("feeders", []) for lk in links]
    return CompiledNetwork(
        signal_ids=tuple(f"S{i}" for i in range(n_sig)),
        sig_stage_ptr=sig_ptr,
        stage_min_green_s=np.full(n_st, 5.0),
        stage_max_green_s=np.full(n_st, 90.0),
        stage_yellow_s=np.minimum(ig, 3.0),
        stage_allred_s=ig - np.minimum(ig, 3.0),
        stage_intergreen_s=ig,
        stage_phase=np.arange(n_st, dtype=np.int64),
        link_signal=np.array([lk["signal"] for lk in links], dtype=np.int64),
        link_from_edge=tuple(f"in{l}" for l in range(n)),
        link_to_edge=tuple(f"out{l}" for l in range(n)),
        link_sat_flow_vps=np.array([lk.get("sat", 0.5) for lk in links], dtype=np.float64),
        link_flow_vps=np.maximum(flow, 0.0),
        link_entry_flow_vps=entry,
        link_travel_s=np.array([lk.get("travel", 20.0) for lk in links], dtype=np.float64),
        link_stage_ptr=np.concatenate([[0], np.cumsum([len(lk["stages"]) for lk in links])]).astype(np.int64),
        link_stage_idx=np.array([k for lk in links for k in lk["stages"]], dtype=np.int64),
        link_in_ptr=np.concatenate([[0], np.cumsum([len(f) for f in feeders])]).astype(np.int64),
        link_in_src=np.array([s for f in feeders for s, _ in f], dtype=np.int64),
        link_in_share=np.array([sh for f in feeders for _, sh in f], dtype=np.float64),
        link_sneakers_veh=(np.array([lk.get("sneak", 0.0) for lk in links], dtype=np.float64)
                           if any("sneak" in lk for lk in links) else None),
    )


def isolated(q: float, *, sat: float = 0.5, ig: float = 5.0) -> CompiledNetwork:
    """One signal, two stages; one link (uniform arrivals q veh/s) green in stage 0."""
    return make_net([[ig, ig]], [{"signal": 0, "stages": [0], "sat": sat, "entry": q}])


def two_signal_chain(q: float, *, travel: float = 25.0, sat: float = 0.5) -> CompiledNetwork:
    """Signal 0's link 0 (entry q) feeds all its departures into link 1 at signal 1."""
    return make_net([[5.0, 5.0], [5.0, 5.0]], [
        {"signal": 0, "stages": [0], "sat": sat, "entry": q, "travel": 30.0},
        {"signal": 1, "stages": [2], "sat": sat, "entry": 0.0, "travel": travel, "feeders": [(0, 1.0)]},
    ])


def two_stage_plan(net: CompiledNetwork, cycle: float, first_greens: list[float], offsets: list[float]) -> PlanArrays:
    greens = []
    for i, g in enumerate(first_greens):
        ig = net.stage_intergreen_s[net.sig_stage_ptr[i]: net.sig_stage_ptr[i + 1]]
        greens += [g, cycle - g - float(np.sum(ig))]
    return PlanArrays(float(cycle), np.array(offsets, dtype=np.float64), np.array(greens, dtype=np.float64))


def with_blocking(net: CompiledNetwork, rng: np.random.Generator) -> CompiledNetwork:
    """``net`` with shared-lane blocking on about half its links: b up to the link's saturation
    flow, a0 0..6 vehicles per green window, a1 0..0.3 veh/s (some binding, some not)."""
    n = net.n_links
    on = rng.random(n) < 0.5
    block = np.zeros((n, 3))
    block[on, 0] = net.link_sat_flow_vps[on] * rng.uniform(0.2, 1.0, int(on.sum()))
    block[on, 1] = rng.uniform(0.0, 6.0, int(on.sum()))
    block[on, 2] = rng.choice([0.0, 0.05, 0.3], int(on.sum()))
    return dataclasses.replace(net, link_block=block)


def random_net(rng: np.random.Generator, sneakers: bool = False) -> CompiledNetwork:
    """Random signals, stages and links; feeders anywhere (loops), shares ≤ 0.9 per upstream link.

    With ``sneakers`` about half the links get 0.5..3 sneakers per green end (drawn after
    everything else, so the network is otherwise the one without).
    """
    n_sig = int(rng.integers(1, 6))
    stage_ig, first = [], []
    for _ in range(n_sig):
        first.append(sum(len(s) for s in stage_ig))
        stage_ig.append([float(rng.choice([0.0, 3.0, 4.5, 5.0])) for _ in range(int(rng.integers(1, 5)))])
    links: list[dict] = []
    for i in range(n_sig):
        n_st = len(stage_ig[i])
        for _ in range(int(rng.integers(1, 5))):
            k = int(rng.choice([0, 1, 1, 2])) if n_st > 1 else int(rng.choice([0, 1, 1, 1]))
            stages = sorted(first[i] + s for s in rng.choice(n_st, size=min(k, n_st), replace=False))
            entry = 0.0 if rng.random() < 0.3 else float(rng.uniform(0.0, 0.35))  # some oversaturated
            links.append({"signal": i, "stages": stages, "sat": float(rng.uniform(0.3, 0.6)), "entry": entry,
                          "travel": float(rng.choice([0.0, rng.uniform(1, 80)]))})
    left = np.full(len(links), 0.9)
    for lk in links:
        feeders = []
        for _ in range(int(rng.integers(0, 4))):
            src = int(rng.integers(len(links)))
            sh = float(rng.uniform(0, left[src]))
            left[src] -= sh
            feeders.append((src, sh))
        lk["feeders"] = feeders
    if sneakers:
        for lk in links:
            lk["sneak"] = float(rng.uniform(0.5, 3.0)) if rng.random() < 0.5 else 0.0
    return make_net(stage_ig, links)


def random_plan(net: CompiledNetwork, rng: np.random.Generator, cycle: float | None = None) -> PlanArrays:
    if cycle is None:
        cycle = float(rng.integers(40, 121)) if rng.random() < 0.8 else float(rng.uniform(40, 120))
    greens = np.zeros(net.n_stages)
    for i in range(net.n_signals):
        s = net.stages_of(i)
        spare = cycle - float(np.sum(net.stage_intergreen_s[s.start:s.stop]))
        w = rng.dirichlet(np.ones(len(s)))
        if len(s) > 1 and rng.random() < 0.2:  # a zero green
            w[0] = 0.0
            w /= w.sum()
        g = w * spare
        g[-1] = spare - float(np.sum(g[:-1]))
        greens[s.start:s.stop] = np.maximum(g, 0.0)
    offsets = rng.uniform(0, cycle, net.n_signals)
    if rng.random() < 0.5:
        offsets = np.floor(offsets)
    return PlanArrays(cycle, offsets, greens)


def random_params(rng: np.random.Generator) -> ModelParams:
    return ModelParams(alpha=float(rng.choice([0.0, 0.35, 0.6])), beta=float(rng.choice([0.8, 1.0])),
                       start_lag_s=float(rng.choice([0.0, 2.0, 3.5])), end_gain_s=float(rng.choice([0.0, 2.0, 7.0])),
                       stop_penalty_s=float(rng.choice([0.0, 20.0])), warmup_cycles=int(rng.integers(0, 4)),
                       max_cycles=int(rng.integers(3, 9)), tol_veh=0.01)


FIELDS = ("delay_s", "uniform_delay_s", "random_delay_s", "stops", "degree_of_saturation")
TOTALS = ("pi", "total_delay_veh_h_per_h", "total_stops_per_h", "mean_delay_s")


def assert_same(fast: model.ModelResult, slow: model.ModelResult, rtol: float = 1e-9) -> None:
    for f in FIELDS:
        np.testing.assert_allclose(getattr(fast, f), getattr(slow, f), rtol=rtol, atol=1e-9, err_msg=f)
    for f in TOTALS:
        np.testing.assert_allclose(getattr(fast, f), getattr(slow, f), rtol=rtol, atol=1e-9, err_msg=f)
    assert fast.cycles_iterated == slow.cycles_iterated
    assert fast.converged == slow.converged


# ------------------------------------------------------------------------------------------
# kernel against reference


@pytest.mark.parametrize("seed", range(24))
def test_kernel_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    net = random_net(rng)
    plan = random_plan(net, rng)
    params = ModelParams() if seed % 3 == 0 else random_params(rng)
    assert_same(model.evaluate(net, plan, params), reference.evaluate_reference(net, plan, params))


@pytest.mark.parametrize("seed", range(16))
def test_kernel_matches_reference_with_sneakers(seed: int) -> None:
    rng = np.random.default_rng(500 + seed)
    net = random_net(rng, sneakers=True)
    assert net.link_sneakers_veh is not None
    plan = random_plan(net, rng)
    params = ModelParams() if seed % 3 == 0 else random_params(rng)
    fast = model.evaluate(net, plan, params)
    assert_same(fast, reference.evaluate_reference(net, plan, params))


@pytest.mark.parametrize("seed", range(12))
def test_kernel_matches_reference_with_lane_blocking(seed: int) -> None:
    rng = np.random.default_rng(900 + seed)
    net = with_blocking(random_net(rng, sneakers=seed % 2 == 0), rng)
    plan = random_plan(net, rng)
    params = ModelParams() if seed % 3 == 0 else random_params(rng)
    assert_same(model.evaluate(net, plan, params), reference.evaluate_reference(net, plan, params))


@pytest.mark.parametrize("cycle", [40.0, 60.0, 90.0])
def test_blocked_shared_lane_discharges_a0_per_green(cycle: float) -> None:
    """An oversaturated link whose whole saturation flow is blocked (a1 = 0) discharges a0 vehicles
    per green window, whatever the green's length: short cycles serve it more often per hour."""
    sat, a0 = 0.5, 4.0
    net = make_net([[5.0, 5.0]], [{"signal": 0, "stages": [0], "sat": sat, "entry": 0.3}])
    net = dataclasses.replace(net, link_block=np.array([[sat, a0, 0.0]]))
    green = (cycle - 10.0) / 2
    plan = two_stage_plan(net, cycle, [green], [0.0])
    buf = model.ModelBuffers.allocate(net, cycle)
    res = model.evaluate(net, plan, out=buf)
    assert buf.dep.sum() == pytest.approx(a0, rel=1e-12)
    assert res.degree_of_saturation[0] == pytest.approx(0.3 / (a0 / cycle), rel=1e-12)
    assert_same(res, reference.evaluate_reference(net, plan))
    # not binding: a lane that could pass more than s·G per window discharges s·G
    free = dataclasses.replace(net, link_block=np.array([[sat, 1000.0, 0.0]]))
    buf2 = model.ModelBuffers.allocate(net, cycle)
    model.evaluate(free, plan, out=buf2)
    g = reference.green_profile(net, plan, 0, ModelParams())
    assert buf2.dep.sum() == pytest.approx(sat * g.sum(), rel=1e-12)


def test_lane_blocking_validation() -> None:
    from greenwave.errors import NetworkError
    net = isolated(0.2)
    plan = two_stage_plan(net, 60, [25.0], [0.0])
    with pytest.raises(NetworkError, match="link_block"):
        model.evaluate(dataclasses.replace(net, link_block=np.array([[0.1, -1.0, 0.0]])), plan)
    with pytest.raises(NetworkError, match="link_block"):
        model.evaluate(dataclasses.replace(net, link_block=np.array([0.1, 1.0, 0.0])), plan)
    with pytest.raises(NetworkError, match="exceeds"):
        model.evaluate(dataclasses.replace(net, link_block=np.array([[0.9, 1.0, 0.0]])), plan)


def test_zero_sneakers_are_bit_identical() -> None:
    for seed in range(6):
        rng = np.random.default_rng(seed)
        net = random_net(rng)
        plan = random_plan(net, rng)
        a = model.evaluate(net, plan)
        b = model.evaluate(dataclasses.replace(net, link_sneakers_veh=np.zeros(net.n_links)), plan)
        for f in FIELDS:
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
        assert a.pi == b.pi


@pytest.mark.parametrize("blocking", [False, True])
@pytest.mark.parametrize("parallel", [True, False])
def test_batch_matches_single_with_sneakers(parallel: bool, blocking: bool) -> None:
    rng = np.random.default_rng(321 + blocking)
    net = random_net(rng, sneakers=True)
    if blocking:
        net = with_blocking(net, rng)
    cycle = 70.0
    plans = [random_plan(net, rng, cycle) for _ in range(5)]
    got = model.evaluate_batch(net, cycle, np.array([p.offset_s for p in plans]),
                               np.array([p.green_s for p in plans]), parallel=parallel)
    np.testing.assert_allclose(got, [model.evaluate(net, p).pi for p in plans], rtol=1e-12)


@pytest.mark.parametrize("sneak", [0.0, 2.0, 3.5])
def test_oversaturated_permissive_link_discharges_sneakers(sneak: float) -> None:
    """Per cycle an oversaturated link discharges s·g + sneakers; capacity s·g/C + sneakers/C."""
    sat, cycle, green = 0.5, 60.0, 20.0
    net = make_net([[5.0, 5.0]], [{"signal": 0, "stages": [0], "sat": sat, "entry": 0.4, "sneak": sneak}])
    plan = two_stage_plan(net, cycle, [green], [0.0])
    buf = model.ModelBuffers.allocate(net, cycle)
    res = model.evaluate(net, plan, out=buf)
    assert buf.dep.sum() == pytest.approx(sat * green + sneak, rel=1e-12)
    cap = sat * green / cycle + sneak / cycle
    assert res.degree_of_saturation[0] == pytest.approx(0.4 / cap, rel=1e-12)
    assert_same(res, reference.evaluate_reference(net, plan))
    g = reference.green_profile(net, plan, 0, ModelParams())
    end = int(np.flatnonzero(g > 0)[-1])
    assert buf.dep[end] == pytest.approx(sat * g[end] + sneak)


def test_sneakers_validation() -> None:
    from greenwave.errors import NetworkError
    net = isolated(0.2)
    plan = two_stage_plan(net, 60, [25.0], [0.0])
    with pytest.raises(NetworkError, match="link_sneakers_veh"):
        model.evaluate(dataclasses.replace(net, link_sneakers_veh=np.array([-1.0])), plan)
    with pytest.raises(NetworkError, match="link_sneakers_veh"):
        model.evaluate(dataclasses.replace(net, link_sneakers_veh=np.array([1.0, 1.0])), plan)


def test_random_cases_cover_the_edge_cases() -> None:
    """The random cases above include oversaturation, zero flow, never-green and wrapping windows."""
    over = zero = never = wrap = 0
    for seed in range(24):
        rng = np.random.default_rng(seed)
        net = random_net(rng)
        plan = random_plan(net, rng)
        params = ModelParams() if seed % 3 == 0 else random_params(rng)
        res = model.evaluate(net, plan, params)
        x = res.degree_of_saturation
        over += int(np.sum((x > 1) & np.isfinite(x)))
        zero += int(np.sum(net.link_flow_vps == 0))
        never += int(np.sum(np.isinf(x)))
        starts = reference.stage_starts(net, plan)
        C = round(plan.cycle_s)
        wrap += sum((s + params.start_lag_s) % C + plan.green_s[k] + params.end_gain_s - params.start_lag_s > C
                    for k, s in enumerate(starts))
    assert over and zero and never and wrap


def test_green_profile_and_capacity() -> None:
    net = isolated(0.2, sat=0.5)
    plan = two_stage_plan(net, 90, [40.0], [85.5])  # window [87.5, 127.5) wraps the cycle end
    g = reference.green_profile(net, plan, 0, ModelParams())
    assert g.sum() == pytest.approx(40.0)
    assert g[87] == pytest.approx(0.5) and g[88] == 1.0 and g[37] == pytest.approx(0.5) and g[38] == 0.0
    res = model.evaluate(net, plan)
    assert res.degree_of_saturation[0] == pytest.approx(0.2 / (0.5 * 40 / 90))


def test_overlapping_windows_are_a_union() -> None:
    """A link green in two stages with a zero intergreen and a long end gain counts overlap once."""
    net = make_net([[0.0, 0.0]], [{"signal": 0, "stages": [0, 1], "sat": 0.5, "entry": 0.1}])
    plan = PlanArrays(60.0, np.array([10.0]), np.array([20.0, 40.0]))
    params = ModelParams(start_lag_s=0.0, end_gain_s=5.0)
    res = model.evaluate(net, plan, params)
    assert res.degree_of_saturation[0] == pytest.approx(0.1 / 0.5)  # green all cycle
    assert_same(res, reference.evaluate_reference(net, plan, params))


@pytest.mark.parametrize("parallel", [True, False])
def test_batch_matches_single(parallel: bool) -> None:
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        net = random_net(rng)
        params = random_params(rng)
        cycle = float(rng.integers(50, 100))
        plans = [random_plan(net, rng, cycle) for _ in range(7)]
        offs = np.array([p.offset_s for p in plans])
        greens = np.array([p.green_s for p in plans])
        got = model.evaluate_batch(net, cycle, offs, greens, params, parallel=parallel)
        want = [model.evaluate(net, p, params).pi for p in plans]
        np.testing.assert_allclose(got, want, rtol=1e-12)
        buf = np.empty(len(plans))
        assert model.evaluate_batch(net, cycle, offs, greens, params, out_pi=buf, parallel=parallel) is buf


def test_buffers_are_reused() -> None:
    rng = np.random.default_rng(7)
    net = random_net(rng)
    plan = random_plan(net, rng, 80.0)
    buf = model.ModelBuffers.allocate(net, 80.0)
    a = model.evaluate(net, plan, out=buf)
    assert a.delay_s is buf.delay
    assert_same(a, model.evaluate(net, plan))
    with pytest.raises(ValueError, match="allocate"):
        model.evaluate(net, random_plan(net, rng, 60.0), out=buf)


# ------------------------------------------------------------------------------------------
# theory


@pytest.mark.parametrize(("cycle", "green", "x"), [(60, 25, 0.5), (90, 40, 0.8), (120, 50, 0.3), (90, 30, 0.85),
                                                   (75, 45, 0.6)])
def test_webster_uniform_delay(cycle: int, green: float, x: float) -> None:
    sat = 0.5
    q = x * sat * green / cycle
    net = isolated(q, sat=sat)
    res = model.evaluate(net, two_stage_plan(net, cycle, [green], [3.0]))
    lam = green / cycle
    d1 = 0.5 * cycle * (1 - lam) ** 2 / (1 - min(1.0, x) * lam)
    assert res.degree_of_saturation[0] == pytest.approx(x)
    assert res.uniform_delay_s[0] == pytest.approx(d1, rel=0.05)
    assert res.converged
    # the queue clears within the green: a share (1 − λ) / (1 − y) of vehicles stop
    assert res.stops[0] == pytest.approx((1 - lam) / (1 - q / sat), rel=0.05)


def test_oversaturated_random_delay_grows() -> None:
    net_u, net_o = isolated(0.1), isolated(0.3)
    plan = two_stage_plan(net_u, 90, [40.0], [0.0])
    under, over = model.evaluate(net_u, plan), model.evaluate(net_o, plan)
    assert over.degree_of_saturation[0] > 1 > under.degree_of_saturation[0]
    assert over.random_delay_s[0] > 60 * under.random_delay_s[0] > 0
    assert not over.converged and over.cycles_iterated == ModelParams().max_cycles


@pytest.mark.parametrize("x_up", [0.9, 1.2])
def test_perfect_and_bad_offset(x_up: float) -> None:
    """No dispersion: a green wave timed to the platoon stops nobody; half a cycle off stops most."""
    cycle, green, travel = 80.0, 30.0, 25.0
    params = ModelParams(alpha=0.0)
    lag = round(params.beta * travel)
    net = two_signal_chain(x_up * 0.5 * green / cycle, travel=travel)
    good = model.evaluate(net, two_stage_plan(net, cycle, [green, green], [10.0, 10.0 + lag]), params)
    bad = model.evaluate(net, two_stage_plan(net, cycle, [green, green], [10.0, (10.0 + lag + cycle / 2) % cycle]),
                         params)
    assert good.stops[1] < 0.05
    assert bad.stops[1] > 0.5
    assert good.uniform_delay_s[1] < 0.1 < 5 < bad.uniform_delay_s[1]


def test_dispersion_spreads_the_platoon() -> None:
    C, travel = 90, 30.0
    d = np.zeros(C)
    d[10:30] = 0.5  # a 20-s platoon at saturation flow
    sharp = reference.disperse(d, travel, ModelParams(alpha=0.0))
    spread = reference.disperse(d, travel, ModelParams())
    assert np.array_equal(sharp, np.roll(d, round(0.8 * travel)))
    assert spread.sum() == pytest.approx(d.sum(), rel=1e-12)
    assert spread.max() < 0.95 * d.max()
    assert np.count_nonzero(spread > 1e-3) > np.count_nonzero(d)
    for params in (ModelParams(), ModelParams(alpha=0.0), ModelParams(alpha=0.9, beta=1.0), ModelParams(beta=0.0),
                   ModelParams(beta=3.0)):  # lags 24, 24, 30, 0 and 90 ≡ 0 (mod C)
        lag = round(params.beta * travel)
        arr = np.zeros(C)
        kernels.disperse(d, C, 1 / (1 + params.alpha * params.beta * travel), lag % C, 0.25, arr)
        np.testing.assert_allclose(arr, 0.25 + reference.disperse(d, travel, params), rtol=1e-10, atol=1e-14)
    # on the network: dispersion makes the perfect offset imperfect, but still far better than a bad one
    net = two_signal_chain(0.9 * 0.5 * 30 / 80, travel=travel)
    lag = round(0.8 * travel)
    good = model.evaluate(net, two_stage_plan(net, 80, [30.0, 30.0], [10.0, 10.0 + lag]))
    bad = model.evaluate(net, two_stage_plan(net, 80, [30.0, 30.0], [10.0, (10.0 + lag + 40) % 80]))
    assert 0.0 < good.stops[1] < 0.5 * bad.stops[1]


def test_loop_network_converges() -> None:
    ring = [{"signal": i, "stages": [2 * i], "sat": 0.5, "entry": 0.05, "travel": 30.0 + 5 * i,
             "feeders": [((i - 1) % 3, 0.6)]} for i in range(3)]
    side = [{"signal": i, "stages": [2 * i + 1], "sat": 0.5, "entry": 0.08} for i in range(3)]
    net = make_net([[5.0, 5.0]] * 3, ring + side)
    assert net.link_flow_vps[0] == pytest.approx(0.125)
    plan = PlanArrays(90.0, np.array([0.0, 30.0, 60.0]), np.array([45.0, 35.0] * 3))
    res = model.evaluate(net, plan)
    assert res.converged and ModelParams().warmup_cycles <= res.cycles_iterated < ModelParams().max_cycles
    assert np.all(res.degree_of_saturation < 1)
    assert_same(res, reference.evaluate_reference(net, plan))


def test_totals_are_consistent() -> None:
    rng = np.random.default_rng(3)
    net = random_net(rng)
    params = ModelParams(stop_penalty_s=15.0)
    res = model.evaluate(net, random_plan(net, rng), params)
    q = net.link_flow_vps
    assert res.pi == pytest.approx(3600 * res.total_delay_veh_h_per_h + params.stop_penalty_s * res.total_stops_per_h)
    assert res.mean_delay_s == pytest.approx(float(q @ res.delay_s / q.sum()))
    np.testing.assert_allclose(res.delay_s, res.uniform_delay_s + res.random_delay_s)
    assert np.all((res.stops >= 0) & (res.stops <= 1))


# ------------------------------------------------------------------------------------------
# validation


def test_validation_names_the_signal() -> None:
    net = make_net([[5.0, 5.0], [4.0, 4.0, 4.0]], [{"signal": 0, "stages": [0]}, {"signal": 1, "stages": [3]}])
    ok = PlanArrays(90.0, np.array([0.0, 10.0]), np.array([40.0, 40.0, 26.0, 26.0, 26.0]))
    model.evaluate(net, ok)
    with pytest.raises(PlanError, match="'S1'.*offset|offset.*'S1'"):
        model.evaluate(net, dataclasses.replace(ok, offset_s=np.array([0.0, 90.0])))
    with pytest.raises(PlanError, match="'S0'"):
        model.evaluate(net, dataclasses.replace(ok, offset_s=np.array([-1.0, 10.0])))
    with pytest.raises(PlanError, match="'S1'.*cycle"):
        model.evaluate(net, dataclasses.replace(ok, green_s=np.array([40.0, 40.0, 26.0, 26.0, 25.0])))
    with pytest.raises(PlanError, match="'S0'.*negative"):
        model.evaluate(net, dataclasses.replace(ok, green_s=np.array([-1.0, 81.0, 26.0, 26.0, 26.0])))
    with pytest.raises(PlanError, match="float64"):
        model.evaluate(net, dataclasses.replace(ok, offset_s=np.array([0, 10])))
    with pytest.raises(PlanError, match="shape"):
        model.evaluate(net, dataclasses.replace(ok, green_s=np.array([40.0, 40.0, 26.0, 26.0])))
    with pytest.raises(PlanError, match="cycle"):
        model.evaluate(net, dataclasses.replace(ok, cycle_s=0.0))
    offs = np.array([[0.0, 10.0], [0.0, 10.0]])
    greens = np.array([ok.green_s, ok.green_s])
    greens[1, 0] += 1.0
    with pytest.raises(PlanError, match="candidate 1.*'S0'"):
        model.evaluate_batch(net, 90.0, offs, greens)
    with pytest.raises(PlanError, match="shape"):
        model.evaluate_batch(net, 90.0, offs[:, :1], greens)
    with pytest.raises(PlanError, match="float64"):
        model.evaluate_batch(net, 90.0, offs.astype(np.float32), greens)
    with pytest.raises(ValueError, match="alpha"):
        model.evaluate(net, ok, ModelParams(alpha=-1.0))
