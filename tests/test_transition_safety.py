"""The transition safety monitor: synthetic state sequences on a real signal, then every
controller in SUMO with ``check_safety``.

The unit tests feed :meth:`TransitionMonitor.observe` hand-made state strings of signal ``A0``
of a generated 2×2 grid (its own netgenerate program: green 42 s, yellow 3 s, no all-red) and,
for the all-red and minimum-green rules with non-default values, of the same signal carrying a
program with ``minDur``, 4 s yellows and 2 s all-reds.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from greenwave.controllers.base import Controller, available_controllers, register
from greenwave.controllers.transition_safety import TransitionMonitor
from greenwave.networks import Phase, Program, RoadNetwork, Signal, load_network
from greenwave.networks.generate import grid_network
from greenwave.scenarios.runner import run_scenario
from greenwave.scenarios.spec import scenario_from_dict
from tests.test_runner import InlineExecutor

if TYPE_CHECKING:
    from greenwave.engine.session import SumoSession

SID = "A0"
GRID = {"generator": "grid", "rows": 2, "cols": 2, "lanes": 1}


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> RoadNetwork:
    return load_network(grid_network(tmp_path_factory.mktemp("tsafety") / "g.net.xml", rows=2, cols=2, lanes=1))


@pytest.fixture(scope="module")
def sig(network: RoadNetwork) -> Signal:
    return network.signals[SID]


def _program_states(sig: Signal) -> tuple[str, str, str, str]:
    """Green 0, yellow 0, green 1, yellow 1 of the signal's own program (checked, not assumed)."""
    phases = sig.default_program.phases
    assert [p.duration for p in phases] == [42.0, 3.0, 42.0, 3.0], phases
    s0, y0, s1, y1 = (p.state for p in phases)
    assert set(y0) <= set("yr") and set(y1) <= set("yr")
    return s0, y0, s1, y1


def _greens(state: str) -> list[int]:
    return [k for k, c in enumerate(state) if c in "Gg"]


def _strict(sig: Signal) -> np.ndarray:
    """Foes in SUMO's conflict matrix, merges into the same lane left out (independent of the module)."""
    to = [m.to_lane for m in sig.movements]
    same = np.array([[a == b and a != "" for b in to] for a in to])
    return sig.conflicts & ~same


def _with(state: str, **links: str) -> str:
    s = list(state)
    for k, c in links.items():
        s[int(k[1:])] = c
    return "".join(s)


def _found(mon: TransitionMonitor) -> set[tuple[str, tuple[int, ...]]]:
    assert all(v.signal == SID for v in mon.violations)
    return {(v.rule, v.links) for v in mon.violations}


def _feed(mon: TransitionMonitor, seq: list[tuple[float, str]]) -> TransitionMonitor:
    (t0, first), *rest = seq
    mon.begin(SID, first, t0)
    for t, state in rest:
        mon.observe(SID, state, t)
    return mon


def test_own_program_cycle_has_no_violation(network: RoadNetwork, sig: Signal) -> None:
    s0, y0, s1, y1 = _program_states(sig)
    seq = [(0.0, s0)]
    t = 0.0
    for _ in range(3):  # three full cycles at the program's own times
        seq += [(t + 42, y0), (t + 45, s1), (t + 87, y1), (t + 90, s0)]
        t += 90
    mon = _feed(TransitionMonitor(network, [SID]), seq)
    assert mon.violations == []
    assert mon.changes == len(seq) - 1
    assert mon.summary()["violations"] == 0


def test_conflicting_greens(network: RoadNetwork, sig: Signal) -> None:
    s0, *_ = _program_states(sig)
    strict = _strict(sig)
    i = next(k for k in _greens(s0) if strict[k].any())
    j = int(np.flatnonzero(strict[i])[0])  # a foe of link i
    red = "r" * sig.n_links
    both = _with(red, **{f"k{i}": "G", f"k{j}": "G"})
    mon = _feed(TransitionMonitor(network, [SID]), [(0.0, red), (10.0, both)])
    assert _found(mon) == {("conflicting-greens", (min(i, j), max(i, j)))}
    assert mon.violations[0].time_s == 10.0
    # a conflicting state already showing when watching begins is reported too
    again = _feed(TransitionMonitor(network, [SID]), [(5.0, both)])
    assert _found(again) == {("conflicting-greens", (min(i, j), max(i, j)))}


def test_merging_greens_are_not_conflicts(network: RoadNetwork, sig: Signal) -> None:
    """Two priority greens into the same lane are normal; SUMO marks them as foes anyway."""
    to = [m.to_lane for m in sig.movements]
    pairs = [(a, b) for a in range(sig.n_links) for b in range(a + 1, sig.n_links)
             if to[a] and to[a] == to[b] and sig.conflicts[a, b]]
    if not pairs:
        pytest.skip("this SUMO's grid has no merging foe links")
    a, b = pairs[0]
    red = "r" * sig.n_links
    mon = _feed(TransitionMonitor(network, [SID]), [(0.0, red), (10.0, _with(red, **{f"k{a}": "G", f"k{b}": "G"}))])
    assert mon.violations == []


def test_green_to_red_without_yellow(network: RoadNetwork, sig: Signal) -> None:
    s0, *_ = _program_states(sig)
    red = "r" * sig.n_links
    mon = _feed(TransitionMonitor(network, [SID]), [(0.0, s0), (20.0, red)])
    # the greens showing at the start have no known start: only the yellow rule applies
    assert _found(mon) == {("yellow", (k,)) for k in _greens(s0)}
    assert all("without yellow" in v.detail for v in mon.violations)


def test_a_state_of_another_length_is_reported_and_watched_from_there(network: RoadNetwork, sig: Signal) -> None:
    """A signal whose state changes length (a program loaded with other link indices) is
    reported once; the monitor then watches the new state instead of failing on it."""
    s0, *_ = _program_states(sig)
    last = "y" if s0[-1] != "y" else "r"
    mon = _feed(TransitionMonitor(network, [SID]), [(0.0, s0[:-2]), (10.0, s0), (20.0, s0[:-1] + last)])
    assert [v.rule for v in mon.violations] == ["state-length"]
    assert mon.changes == 2


def test_yellow_shorter_than_required(network: RoadNetwork, sig: Signal) -> None:
    s0, y0, s1, _ = _program_states(sig)
    red = "r" * sig.n_links
    mon = _feed(TransitionMonitor(network, [SID]), [(0.0, s0), (20.0, y0), (21.0, red), (30.0, s1)])
    assert _found(mon) == {("yellow", (k,)) for k in _greens(s0)}
    assert all("yellow for 1 s < 3 s" in v.detail for v in mon.violations)
    assert {v.time_s for v in mon.violations} == {21.0}


def test_green_shorter_than_minimum(network: RoadNetwork, sig: Signal) -> None:
    s0, y0, *_ = _program_states(sig)
    red = "r" * sig.n_links
    # the program has no minDur: the minimum is min(5 s, phase duration) = 5 s
    mon = _feed(TransitionMonitor(network, [SID]), [(0.0, red), (10.0, s0), (12.0, y0), (15.0, red)])
    assert _found(mon) == {("min-green", (k,)) for k in _greens(s0)}
    assert all("green for 2 s < 5 s" in v.detail for v in mon.violations)
    ok = _feed(TransitionMonitor(network, [SID]), [(0.0, red), (10.0, s0), (15.0, y0), (18.0, red)])
    assert ok.violations == []


def test_foe_green_before_yellow_and_all_red_passed(network: RoadNetwork, sig: Signal) -> None:
    s0, y0, s1, _ = _program_states(sig)
    strict = _strict(sig)
    j = next(k for k in _greens(s1) if any(strict[k, i] for i in _greens(s0)))
    foes = [i for i in _greens(s0) if strict[j, i]]
    early = _with(y0, **{f"k{j}": "G"})  # link j green while its foes still show yellow
    red_j = _with("r" * sig.n_links, **{f"k{j}": "G"})
    mon = _feed(TransitionMonitor(network, [SID]), [(0.0, s0), (20.0, y0), (22.0, early), (23.0, red_j)])
    # required: yellow 3 s + all-red 0 s (the program has none); link j came 2 s after
    assert _found(mon) == {("all-red", (i, j)) for i in foes}
    assert all(v.time_s == 22.0 for v in mon.violations)


# -- rules from the program: minDur, 4 s yellow, 2 s all-red ---------------------------------

@pytest.fixture(scope="module")
def strict_network(network: RoadNetwork, sig: Signal) -> RoadNetwork:
    s0, y0, s1, y1 = _program_states(sig)
    red = "r" * sig.n_links
    prog = Program(id="x", type="static", offset=0.0, phases=(
        Phase(30.0, s0, min_dur=10.0, max_dur=50.0), Phase(4.0, y0), Phase(2.0, red),
        Phase(30.0, s1, min_dur=10.0, max_dur=50.0), Phase(4.0, y1), Phase(2.0, red),
    ))
    signals = dict(network.signals)
    signals[SID] = dataclasses.replace(sig, programs={"x": prog})
    return dataclasses.replace(network, signals=signals)


def test_all_red_of_the_program_is_required(strict_network: RoadNetwork, sig: Signal) -> None:
    s0, y0, s1, _ = _program_states(sig)
    strict = _strict(sig)
    red = "r" * sig.n_links
    expected = {("all-red", (i, j)) for j in _greens(s1) for i in _greens(s0) if strict[j, i]}
    assert expected
    # yellow 3 s (the required yellow is min(3 s, the program's 4 s)), all-red 1 s of 2 s
    short = _feed(TransitionMonitor(strict_network, [SID]), [(0.0, s0), (20.0, y0), (23.0, red), (24.0, s1)])
    assert _found(short) == expected
    assert all("(< 5 s)" in v.detail for v in short.violations)
    full = _feed(TransitionMonitor(strict_network, [SID]), [(0.0, s0), (20.0, y0), (23.0, red), (25.0, s1)])
    assert full.violations == []


def test_min_dur_of_the_program_is_the_minimum_green(strict_network: RoadNetwork, sig: Signal) -> None:
    s0, y0, *_ = _program_states(sig)
    red = "r" * sig.n_links
    mon = _feed(TransitionMonitor(strict_network, [SID]), [(0.0, red), (10.0, s0), (18.0, y0), (22.0, red)])
    assert _found(mon) == {("min-green", (k,)) for k in _greens(s0)}
    assert all("green for 8 s < 10 s" in v.detail for v in mon.violations)
    summary = mon.summary()
    assert summary["by_rule"] == {"min-green": len(_greens(s0))}
    assert len(summary["first"]) == summary["violations"] == len(_greens(s0))


# -- in SUMO ---------------------------------------------------------------------------------

@register
class _UnsafeSwitch(Controller):
    """Test double: at t = 30 s it flips signal A0 straight from its green to the other stage."""

    name = "test-unsafe-switch"
    kind = "greenwave"

    def step(self, sim: SumoSession) -> None:
        conn = sim.conn
        if sim.time_s == 30.0:
            state = conn.trafficlight.getRedYellowGreenState(SID)
            flipped = "".join("r" if c in "Gg" else "G" for c in state)
            conn.trafficlight.setRedYellowGreenState(SID, flipped)


SAFETY = {
    "name": "safety", "duration_s": 300, "seeds": [1],
    "network": GRID, "demand": {"entry_vph": 300, "end_s": 300},
}


@pytest.mark.slow
def test_every_controller_switches_safely_in_sumo(tmp_path: Path) -> None:
    controllers = [c for c in available_controllers() if c != "fixed" and not c.startswith("test")]
    assert {"static", "actuated", "max_pressure", "max_pressure_cyclic", "optimised"} <= set(controllers)
    summary = run_scenario(scenario_from_dict({**SAFETY, "controllers": controllers}), tmp_path,
                           jobs=2, check_safety=True)
    assert sorted(summary.controller) == sorted(controllers)
    on_disk = pd.read_csv(tmp_path / "summary.csv")
    assert "safety_violations" in on_disk.columns
    for row in summary.itertuples():
        checked = json.loads((tmp_path / "runs" / f"{row.controller}_seed1" / "transition_safety.json").read_text())
        assert checked["signals"] == 4 and checked["steps"] == 300
        assert checked["changes"] > 0, row.controller
        assert row.safety_violations == checked["violations"] == 0, (row.controller, checked["first"][:5])
        assert row.vehicles_arrived > 0


@pytest.mark.slow
def test_check_safety_catches_an_unsafe_controller(tmp_path: Path) -> None:
    """The same run with a controller that skips yellow and all-red is reported, on its signal."""
    sc = scenario_from_dict({**SAFETY, "duration_s": 60, "controllers": ["test-unsafe-switch"]})
    summary = run_scenario(sc, tmp_path, executor=InlineExecutor(), check_safety=True)
    row = summary.iloc[0]
    checked = json.loads((tmp_path / "runs" / "test-unsafe-switch_seed1" / "transition_safety.json").read_text())
    assert row.safety_violations == checked["violations"] > 0
    assert {v["signal"] for v in checked["first"]} == {SID}
    assert {"yellow", "all-red"} <= set(checked["by_rule"])
    assert {v["time_s"] for v in checked["first"]} == {30.0}
    # without check_safety the summary has no such column and no file is written
    plain = run_scenario(sc, tmp_path / "plain", executor=InlineExecutor())
    assert "safety_violations" not in plain.columns
    assert not (tmp_path / "plain" / "runs" / "test-unsafe-switch_seed1" / "transition_safety.json").exists()


# -- the yellow each link must show ----------------------------------------------------------

@pytest.fixture(scope="module")
def short_yellow_network(network: RoadNetwork, sig: Signal) -> RoadNetwork:
    """``A0`` on a program whose stage 0 ends with 1 s of yellow and stage 1 with 3 s."""
    s0, y0, s1, y1 = _program_states(sig)
    prog = Program(id="short", type="static", offset=0.0,
                   phases=(Phase(30.0, s0), Phase(1.0, y0), Phase(30.0, s1), Phase(3.0, y1)))
    signals = dict(network.signals)
    signals[SID] = dataclasses.replace(sig, programs={"short": prog})
    return dataclasses.replace(network, signals=signals)


def test_each_link_must_show_its_own_programs_yellow(short_yellow_network: RoadNetwork, sig: Signal) -> None:
    """The required yellow is per link: stage 0's links may show the program's 1 s, stage 1's
    must show 3 s (a signal-wide rule took the shortest phase, 1 s, for every link)."""
    s0, y0, s1, y1 = _program_states(sig)
    red = "r" * sig.n_links
    ok = _feed(TransitionMonitor(short_yellow_network, [SID]), [(0.0, s0), (30.0, y0), (31.0, red), (32.0, s1)])
    assert ok.violations == []
    only1 = [k for k in _greens(s1) if k not in _greens(s0)]
    mon = _feed(TransitionMonitor(short_yellow_network, [SID]), [(0.0, s1), (30.0, y1), (31.0, red), (40.0, s0)])
    assert _found(mon) == {("yellow", (k,)) for k in only1}
    assert all("yellow for 1 s < 3 s" in v.detail for v in mon.violations)


def test_min_yellow_floor_overrides_a_shorter_program_yellow(short_yellow_network: RoadNetwork, sig: Signal) -> None:
    """With ``min_yellow_s`` (a test watching signals greenwave drives: the standards' 3 s) the
    program's 1 s yellow no longer passes, nor does the all-red rule count from it."""
    s0, y0, s1, _ = _program_states(sig)
    red = "r" * sig.n_links
    seq = [(0.0, s0), (30.0, y0), (31.0, red), (32.0, s1)]
    mon = _feed(TransitionMonitor(short_yellow_network, [SID], min_yellow_s=3.0), seq)
    rules = {rule for rule, _ in _found(mon)}
    assert ("yellow", (_greens(s0)[0],)) in _found(mon) and rules <= {"yellow", "all-red"}
    full = _feed(TransitionMonitor(short_yellow_network, [SID], min_yellow_s=3.0),
                 [(0.0, s0), (30.0, y0), (33.0, red), (34.0, s1)])
    assert full.violations == []
