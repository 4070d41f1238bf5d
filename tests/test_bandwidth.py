"""Two-way green-wave bandwidth (MILP) against geometry and an independent band measurement."""

from __future__ import annotations

import numpy as np
import pytest

from greenwave.engine.arrays import PlanArrays
from greenwave.engine.bandwidth import bands_of_plan, find_arterial, maximise_bandwidth
from tests.handmade import arterial


def _plan(net, cycle: float, main_green: float) -> PlanArrays:  # type: ignore[no-untyped-def]
    greens = []
    for _ in range(net.n_signals):
        greens += [main_green, cycle - main_green - 10.0]
    return PlanArrays(cycle, np.zeros(net.n_signals), np.array(greens))


def test_finds_the_chain_in_order() -> None:
    net = arterial(5)
    art = find_arterial(net)
    assert art.signals in ((0, 1, 2, 3, 4), (4, 3, 2, 1, 0))
    if art.signals[0] == 0:
        assert art.out_links == (0, 3, 6, 9, 12) and art.in_links == (1, 4, 7, 10, 13)


def test_half_cycle_spacing_gives_full_two_way_bands() -> None:
    """Travel time C/2 between signals: alternate offsets carry the whole green both ways."""
    cycle, green = 80.0, 40.0
    net = arterial(4, travel_s=cycle / 2)
    plan = _plan(net, cycle, green)
    res = maximise_bandwidth(net, plan, arterial=find_arterial(net, [0, 1, 2, 3]))
    # effective green = displayed green (start lag 2 s, end gain 2 s)
    assert res.band_out_s == pytest.approx(green, abs=0.01)
    assert res.band_in_s == pytest.approx(green, abs=0.01)
    shifts = (np.diff(res.offsets_s) % cycle)
    assert np.allclose(shifts, cycle / 2)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_milp_band_is_achieved_by_its_offsets(seed: int) -> None:
    """The MILP's bands equal the bands measured on the plan with its offsets (independent code),
    and no random offset vector with a band both ways does better on the sum (MAXBAND asks for
    a band in each direction)."""
    rng = np.random.default_rng(seed)
    cycle = 90.0
    n = 5
    net = arterial(n, travel_s=list(rng.uniform(15, 45, n - 1)))
    greens = []
    for _ in range(n):
        g = rng.uniform(30, 55)
        greens += [g, cycle - g - 10.0]
    plan = PlanArrays(cycle, np.zeros(n), np.array(greens))
    art = find_arterial(net, list(range(n)))
    res = maximise_bandwidth(net, plan, arterial=art, inbound_weight=1.0)
    achieved = bands_of_plan(net, PlanArrays(cycle, res.offsets_s, plan.green_s), art, resolution_s=0.25)
    assert achieved.band_out_s == pytest.approx(res.band_out_s, abs=0.6)
    assert achieved.band_in_s == pytest.approx(res.band_in_s, abs=0.6)
    best_random = 0.0
    for _ in range(300):
        offs = np.round(rng.uniform(0, cycle, n))
        b = bands_of_plan(net, PlanArrays(cycle, offs, plan.green_s), art)
        if b.band_out_s > 0 and b.band_in_s > 0:
            best_random = max(best_random, b.band_out_s + b.band_in_s)
    assert res.band_out_s + res.band_in_s >= best_random - 0.6


def test_is_arterial_tells_a_corridor_from_a_grid() -> None:
    from greenwave.engine.bandwidth import is_arterial
    from tests.test_local_eval import grid

    assert is_arterial(arterial(4))
    assert not is_arterial(grid(3, 3))
    assert not is_arterial(arterial(1))
