"""Optimisers: Webster start, common cycle, hill climb with the batch evaluator, constraints."""

from __future__ import annotations

import numpy as np
import pytest

from greenwave.engine.arrays import ModelParams, PlanArrays
from greenwave.engine.model import evaluate
from greenwave.engine.optimise import (
    OptimiserSettings,
    optimise,
    stage_flow_ratios,
    webster_cycles,
    webster_plan,
    webster_splits,
)
from greenwave.errors import PlanError
from tests.handmade import arterial


def _feasible(net, plan: PlanArrays) -> None:  # type: ignore[no-untyped-def]
    assert np.all(plan.offset_s >= 0) and np.all(plan.offset_s < plan.cycle_s)
    assert np.all(plan.green_s >= net.stage_min_green_s - 1e-9)
    for i in range(net.n_signals):
        s = net.stages_of(i)
        total = plan.green_s[s.start:s.stop].sum() + net.stage_intergreen_s[s.start:s.stop].sum()
        assert total == pytest.approx(plan.cycle_s, abs=1e-6)


def test_webster_cycle_and_equal_saturation_splits() -> None:
    net = arterial(1, main_vph=720, side_vph=360)  # y: main 0.4, side 0.2, L = 10 s
    y = stage_flow_ratios(net)
    assert y == pytest.approx([0.4, 0.2])
    assert webster_cycles(net)[0] == pytest.approx((1.5 * 10 + 5) / (1 - 0.6))
    g = webster_splits(net, 60.0)
    # spare 60 - 10 - 2*5 = 40 split 2:1 on top of the 5 s minimums
    assert g == pytest.approx([5 + 40 * 2 / 3, 5 + 40 / 3])
    with pytest.raises(PlanError, match="shorter than its minimum cycle"):
        webster_splits(net, 15.0)


@pytest.mark.slow
def test_optimise_improves_and_respects_constraints() -> None:
    net = arterial(5, travel_s=[25, 35, 30, 40], main_vph=900, inbound_vph=600, side_vph=250)
    settings = OptimiserSettings(seed=3, global_candidates=64)
    res = optimise(net, settings=settings)
    _feasible(net, res.plan)
    start = webster_plan(net, settings)
    assert res.pi <= evaluate(net, start).pi
    assert res.pi < res.pi_start
    assert res.history == sorted(res.history, reverse=True)
    assert settings.min_cycle_s <= res.plan.cycle_s <= settings.max_cycle_s
    again = optimise(net, settings=settings)
    assert again.pi == res.pi and np.array_equal(again.plan.offset_s, res.plan.offset_s)


def test_bandwidth_objective_starts_from_the_green_wave() -> None:
    net = arterial(4, travel_s=30.0)
    res = optimise(net, settings=OptimiserSettings(seed=1, global_candidates=32), objective="bandwidth")
    _feasible(net, res.plan)
    assert res.pi < res.pi_start


def test_stops_objective_weighs_stops() -> None:
    net = arterial(3, travel_s=30.0)
    settings = OptimiserSettings(seed=1, global_candidates=32)
    by_delay = optimise(net, settings=settings)
    by_stops = optimise(net, settings=settings, objective="stops")
    stops = lambda r: evaluate(net, r.plan).total_stops_per_h  # noqa: E731
    assert stops(by_stops) <= stops(by_delay) + 1e-6
    assert isinstance(ModelParams().stop_penalty_s, float)


def test_candidate_cycles_are_fine_where_short() -> None:
    from greenwave.engine.optimise import candidate_cycles

    c = candidate_cycles(16.0, 150.0, 10.0)
    assert c[0] == 16.0 and c[-1] == 150.0
    steps = np.diff(c)
    assert (steps >= 2.0 - 1e-9).all() and (steps <= 10.0 + 1e-9).all()
    assert steps[0] == 2.0 and steps[-2] == 10.0  # 10 % of the cycle, bounded
    assert candidate_cycles(30.0, 30.0, 10.0) == [30.0]
    assert candidate_cycles(40.0, 46.0, 2.0) == [40.0, 42.0, 44.0, 46.0]


def test_bandwidth_objective_keeps_a_green_wave() -> None:
    """objective="bandwidth" returns the band solution's offsets for its final splits: the plan
    achieves the band the MILP promises, where the delay objective need not keep one."""
    from greenwave.engine.bandwidth import bands_of_plan, maximise_bandwidth

    net = arterial(5, travel_s=30.0, main_vph=700, side_vph=150)
    settings = OptimiserSettings(seed=2, min_cycle_s=60.0, max_cycle_s=60.0)
    res = optimise(net, settings=settings, objective="bandwidth")
    promised = maximise_bandwidth(net, res.plan)
    got = bands_of_plan(net, res.plan)
    assert promised.band_out_s + promised.band_in_s > 5.0
    assert got.band_out_s + got.band_in_s == pytest.approx(promised.band_out_s + promised.band_in_s, abs=1.0)
