"""Stage designs from SUMO's conflict matrix (networks.stage_design, controllers.stage_choice).

The fast tests read real junctions shipped with eclipse-sumo (the game's ``cross`` and the RiLSA
guideline junction: four stages, two of them short protected left turns); the slow ones check
every generated design of every shipped real network with the safety validator and in SUMO
with the transition monitor, and run the controllers on chosen designs.
"""

from __future__ import annotations

import json
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from greenwave._sumo import sumo_home
from greenwave.controllers.plans.layout import complete_plan
from greenwave.controllers.plans.safety import validate_plan
from greenwave.controllers.plans.sumo_writer import write_sumo_additional
from greenwave.controllers.plans.timing import TimingPlan
from greenwave.controllers.stage_choice import (
    DesignChoice,
    candidate_designs,
    check_stage_design_option,
    choose_designs,
    design_plan,
    design_signal_stages,
    write_design_programs,
)
from greenwave.errors import NetworkError, PlanError, ScenarioError
from greenwave.networks import load_network
from greenwave.networks.intergreens import DesignParams, intergreens, merge_pairs, own_link_yellow
from greenwave.networks.model import Phase, Program
from greenwave.networks.stage_design import (
    DESIGN_KINDS,
    StageDesign,
    design_transition,
    rebuilt_programs,
    stage_designs,
    stage_problems,
    stays_green_over,
    with_designs,
)
from greenwave.scenarios.runner import run_scenario
from greenwave.scenarios.spec import scenario_from_dict

GAME = sumo_home() / "tools" / "game"
RILSA = sumo_home() / "tools" / "sumolib" / "scenario" / "scenarios" / "RealWorld"
CROSS = GAME / "cross" / "cross.net.xml"

#: Every shipped real network with signals (the game's and the RiLSA guideline examples), with
#: demand for a SUMO run: its own where it has one that drives this net, else entry flows.
REAL = {
    "cross": (CROSS, {"sumocfg": "sumo:tools/game/cross.sumocfg"}),
    "corridor": (GAME / "corridor" / "corridor.net.xml", {"sumocfg": "sumo:tools/game/corridor.sumocfg"}),
    "square": (GAME / "square" / "square.net.xml", {"sumocfg": "sumo:tools/game/square.sumocfg"}),
    "grid6": (GAME / "grid6" / "grid6.net.xml", {"sumocfg": "sumo:tools/game/grid6.sumocfg"}),
    "fkk_in": (GAME / "fkk_in" / "ingolstadt.net.xml.gz", {"sumocfg": "sumo:tools/game/fkk_in.sumocfg"}),
    "A10KW": (GAME / "A10KW" / "osm.net.xml", {"sumocfg": "sumo:tools/game/A10KW.sumocfg"}),
    "kuehne": (GAME / "kuehne" / "kuehne.net.xml", {"entry_vph": 200}),
    "DRT": (GAME / "DRT" / "osm.net.xml", {"entry_vph": 60}),
    "bs3d": (GAME / "bs3d" / "bs.net.xml", {"entry_vph": 100}),
    **{f"rilsa{k}": (RILSA / f"RiLSA_example{k}" / "net.net.xml", {"entry_vph": 300}) for k in (1, 2, 3, 4)},
}
#: Ingolstadt's hand-edited gneJ21 shows conflicting greens in its own program (see
#: test_real_networks); of the generated designs only ``conflict_graph`` passes there.
KNOWN_UNSAFE_PROGRAMS = {"gneJ21"}


@pytest.fixture(scope="module")
def cross():  # type: ignore[no-untyped-def]
    net = load_network(CROSS)
    designs, rejected = stage_designs(net, "0", rebuilt=rebuilt_programs(CROSS).get("0"))
    return net, {d.name: d for d in designs}, rejected


def _green(state: str) -> set[int]:
    return {k for k, c in enumerate(state) if c in "Gg"}


def _flows(net, sid: str, vph: float):  # type: ignore[no-untyped-def]
    """``vph`` on every vehicle movement of signal ``sid`` between driving edges (one row per edge pair)."""
    import pandas as pd

    sig = net.signals[sid]
    return pd.DataFrame([{"from_edge": m.from_edge, "to_edge": m.to_edge, "flow_vph": vph}
                         for m in sig.movements if m.is_used and not m.is_pedestrian
                         and {m.from_edge, m.to_edge} <= set(net.edge_ends)]).drop_duplicates(["from_edge", "to_edge"])


def test_yields_come_from_sumo_response_bits(cross) -> None:  # type: ignore[no-untyped-def]
    net, _, _ = cross
    sig = net.signals["0"]
    assert sig.yields is not None and sig.yields.shape == sig.conflicts.shape
    # a link yields only to its foes
    assert not (sig.yields & ~sig.conflicts).any()
    lefts = [m.link_index for m in sig.movements if m.direction == "l"]
    assert lefts
    for k in lefts:  # every left turn gives way to the opposing through movement
        m = sig.movements[k]
        opposing = [j for j in sig.conflicting(k) if sig.movements[j].direction == "s"
                    and sig.movements[j].to_edge != m.to_edge and sig.yields[k, j]]
        assert opposing, k


def test_no_generated_design_makes_vehicles_wait_inside_a_joined_junction(tmp_path: Path) -> None:
    """RiLSA example 2 is a dual carriageway with a side road: one signal over two nodes joined by
    3 m median lanes. The east approach's left turners (link 2) cross the median and then give way,
    unsignalled, to the west approach's traffic (links 5-7: its right turn and the eastbound through
    lanes); the side road's left turners (link 4) cross it the other way and give way to the east
    approach's (links 0-2: the westbound through lanes and its left turn). The median holds
    no car, so a turner that must wait there waits across the junction: ``schedule`` on the
    ``two_stage`` design, which greened link 2 beside links 5-7, locked the junction on benchmark
    seeds 3 and 5 (31.1 and 34.4 s/veh, SUMO teleporting the stuck turners) where SUMO's rebuilt
    design, which keeps them apart, measured 11.8 and 12.0 (seeds 1-9: 16.8 against 12.0)."""
    net_file = RILSA / "RiLSA_example2" / "rilsa2.net.xml"
    net = load_network(net_file)
    sig = net.signals["0"]
    assert sig.chain_yields is not None
    assert {tuple(x) for x in np.argwhere(sig.chain_yields)} == {(2, 5), (2, 6), (2, 7), (4, 0), (4, 1), (4, 2)}
    # not SUMO conflicts: the second node's right of way keeps them apart
    assert not sig.conflicts[2, [5, 6, 7]].any() and not sig.conflicts[4, [0, 1, 2]].any()
    designs, rejected = stage_designs(net, "0", rebuilt=rebuilt_programs(net_file, workdir=tmp_path).get("0"))
    names = {d.name: d for d in designs}
    assert "would wait inside the junction for link 5" in rejected["two_stage"], rejected
    assert "rebuilt" in names, rejected  # SUMO's own design stays a candidate as SUMO makes it
    assert "split" in names, rejected  # a generated design is left to check
    for d in designs:
        if d.name in ("own", "rebuilt"):
            continue
        for st in d.stages:
            assert not stage_problems(sig, st)
            green = _green(st)
            assert not any(sig.chain_yields[a, b] for a in green for b in green), (d.name, st)
    # a signal whose lanes between its nodes hold cars has none
    assert not load_network(CROSS).signals["0"].chain_yields.any()


def test_a_generated_stage_greens_the_links_a_joined_cluster_leads_onto(tmp_path: Path) -> None:
    """DRT's joined clusters ``joinedS_2``, ``joinedS_1`` and ``joinedS_0`` pass some links over
    lanes inside the cluster (4.3 m; 0.2 m tram lanes; up to 20 m) onto links of the same signal at
    the cluster's next node. A
    stage that greens the first but not the second stops its vehicles inside the junction:
    ``conflict_graph`` did so for 12 such pairs in 5 of its stages, and ``schedule`` and
    ``max_pressure`` on it measured 91.6 and 121.2 s/veh (one hour, seeds 1-2) against 30.4 and
    53.4 since. Every generated stage now greens the onward links too, or leaves the first red;
    ``conflict_graph`` places a link together with them and still greens no two vehicle links
    that cross."""
    net_file = GAME / "DRT" / "osm.net.xml"
    net = load_network(net_file)
    rebuilt = rebuilt_programs(net_file, workdir=tmp_path)
    pairs = {sid: [tuple(int(x) for x in p) for p in np.argwhere(sig.chain_links)]
             for sid, sig in net.signals.items() if sig.chain_links is not None and sig.chain_links.any()}
    assert set(pairs) == {"joinedS_2", "joinedS_1", "joinedS_0"}
    assert sorted(pairs["joinedS_1"]) == [(0, 7), (1, 2)]
    for sid, links in pairs.items():
        sig = net.signals[sid]
        crossing = sig.conflicts & ~merge_pairs(sig)
        vehicle = set(sig.vehicle_links)
        designs, _ = stage_designs(net, sid, rebuilt=rebuilt.get(sid))
        assert "conflict_graph" in {d.name for d in designs}
        for d in designs:
            for st in d.stages:
                assert not [(i, k) for i, k in links if st[i] in "Gg" and st[k] not in "Gg"], (sid, d.name, st)
                if d.name == "conflict_graph":  # protected: no two green vehicle links cross
                    on = sorted(_green(st) & vehicle)
                    assert not [(a, b) for a in on for b in on if a < b and crossing[a, b]], (sid, st)
    # where every lane between the nodes holds a car there is nothing to keep together
    assert not load_network(CROSS).signals["0"].chain_links.any()


def test_a_link_green_in_both_stages_keeps_its_green_through_the_all_red(cross, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An overlap (a link green in the stage ending and the next) stays green through the yellow
    and the all-red, as on a street controller, unless a link ending its green gives way to it:
    that link's vehicles may be waiting inside the junction for it (a permitted left turner,
    one in a joined junction's median) and clear only when it stops. Before, with an all-red
    every such link stopped and started again (a phase with some green and no yellow reads as a
    stage in a program), and the programs greenwave writes still do."""
    net, designs, _ = cross
    sig = net.signals["0"]
    keep = stays_green_over(sig)
    d = designs["conflict_graph"]
    a, b = d.stages[0], d.stages[1]
    assert (a, b) == ("GGgGrrGrrgrr", "GrrGggGrrGrr")
    # the right turns 0, 3 and 9 run on; link 2, a left turner ending, gives way to the opposite
    # right turn 6 (both enter the same lane), so 6 stops with it
    assert sig.yields[2, 6] and not keep[2, 6]
    assert design_transition(a, b, yellow_s=3.0, all_red_s=1.3, keep_through=keep) == [
        ("GyyGrryrrgrr", 3.0), ("GrrGrrrrrgrr", 1.3)]
    assert design_transition(a, b, yellow_s=3.0, all_red_s=1.3) == [("yyyyrryrryrr", 3.0), ("rrrrrrrrrrrr", 1.3)]
    switched = design_signal_stages(with_designs(net, {"0": d}), {"0": DesignChoice(d, "test")})["0"]
    assert switched.transitions[(0, 1)] == (("GyyGrryrrgrr", 3.0), ("GrrGrrrrrgrr", d.allred_s[0][1]))
    # RiLSA example 2, SUMO's rebuilt design: the westbound through lanes (links 0, 1) are green
    # in both stages. When the west approach's stage ends they run on; when the side road's ends
    # they stop, since its left turners (link 4) wait in the median for them
    net_file = RILSA / "RiLSA_example2" / "rilsa2.net.xml"
    net2 = load_network(net_file)
    keep2 = stays_green_over(net2.signals["0"])
    candidates, _ = stage_designs(net2, "0", rebuilt=rebuilt_programs(net_file, workdir=tmp_path).get("0"))
    rebuilt = next(x for x in candidates if x.name == "rebuilt")
    s0, s1 = rebuilt.stages
    assert (s0, s1) == ("GGGGGrrr", "GGrrrGGG")
    assert design_transition(s1, s0, yellow_s=4.0, all_red_s=1.5, keep_through=keep2) == [
        ("GGrrryyy", 4.0), ("GGrrrrrr", 1.5)]
    assert design_transition(s0, s1, yellow_s=4.0, all_red_s=0.9, keep_through=keep2) == [
        ("yyyyyrrr", 4.0), ("rrrrrrrr", 0.9)]


def test_a_link_that_turners_wait_for_stops_with_them_even_without_a_foe_starting(tmp_path: Path) -> None:
    """No yellow trap where no foe starts either. DRT's ``cluster_1560223404_2335739502_3273797701``,
    SUMO's rebuilt design, stage 0 -> 2: links 5 and 6 end their green, giving way to link 15,
    which is green in both stages; no foe of theirs starts, so no all-red was derived and 15 ran
    on while their last vehicles might be waiting inside the junction for it. Now 15 stops with
    them and starts again after their clearance."""
    net_file = GAME / "DRT" / "osm.net.xml"
    net = load_network(net_file)
    sid = "cluster_1560223404_2335739502_3273797701"
    sig = net.signals[sid]
    designs, _ = stage_designs(net, sid, rebuilt=rebuilt_programs(net_file, workdir=tmp_path).get(sid))
    d = next(x for x in designs if x.name == "rebuilt")
    a, b = d.stages[0], d.stages[2]
    ending = [k for k in sig.vehicle_links if a[k] in "Gg" and b[k] not in "Gg"]
    assert ending == [4, 5, 6, 17, 18, 19] and a[15] in "Gg" and b[15] in "Gg"
    assert sig.yields[5, 15] and sig.yields[6, 15]
    assert d.allred_s[0][2] > 0  # before: 0.0
    steps = design_transition(a, b, yellow_s=d.yellow_s[0][2], all_red_s=d.allred_s[0][2],
                               keep_through=stays_green_over(sig))
    assert [st[15] for st, _ in steps] == ["y", "r"]
    # the links nobody ending gives way to run on (7, 8, 13, 14, 16, 20 and 21)
    assert all(st[k] in "Gg" for st, _ in steps for k in (7, 8, 13, 14, 16, 20, 21))


def test_a_link_that_some_lane_of_an_ending_link_gives_way_to_does_not_run_on() -> None:
    """Where one link index groups several connections (Ingolstadt's ``gneJ21``: car and
    bicycle lanes under one signal), one lane of it may give way to a link while another does
    not: SUMO's bits for links 0 (a right turn from lane 2) and 13 (bicycles and a crossing) have
    some pair where 0 yields, not every pair, so ``yields`` says no. A link that ends its green
    beside 13 may still have vehicles waiting for it inside the junction: 13 stops with it
    (``stays_green_over`` reads ``yields_any``); before, it ran on. The 34 such pairs of
    ``gneJ21`` are the only ones on the benchmark's 19 networks, and no design of their 141
    signals changed."""
    net = load_network(GAME / "fkk_in" / "ingolstadt.net.xml.gz")
    sig = net.signals["gneJ21"]
    assert sig.yields is not None and sig.yields_any is not None
    assert not sig.yields[0, 13] and sig.yields_any[0, 13]
    assert int((sig.yields_any & ~sig.yields).sum()) == 34
    assert not stays_green_over(sig)[0, 13]
    assert stays_green_over(replace(sig, yields_any=None))[0, 13]  # all pairs only: it ran on
    # every link that yields on every pair yields on some
    assert not (sig.yields & ~sig.yields_any).any()


@pytest.mark.slow
def test_controllers_on_a_design_that_keeps_joined_clusters_together(pool: Executor, tmp_path: Path) -> None:
    """In SUMO: ``schedule`` on DRT's ``conflict_graph`` design (every signal; 15 minutes, entry
    flows of 60 veh/h, seed 1), whose stages now green the links a joined cluster leads onto,
    beats SUMO's actuated control of the own programs: 66.7 against 70.9 s/veh (79.4 before,
    the cluster's vehicles stopping inside it)."""
    sc = scenario_from_dict({
        "name": "drt_conflict_graph", "duration_s": 900, "seeds": [1], "controllers": ["schedule", "actuated"],
        "network": {"file": str(GAME / "DRT" / "osm.net.xml")}, "demand": {"entry_vph": 60},
        "controller_options": {"schedule": {"stage_design": "conflict_graph"}},
    })
    rows = run_scenario(sc, tmp_path, executor=pool, check_safety=True).set_index("controller")
    assert (rows.safety_violations == 0).all()
    assert rows.loc["schedule", "resco_delay_s"] < rows.loc["actuated", "resco_delay_s"], rows.resco_delay_s


def test_designs_of_a_four_stage_junction(cross) -> None:  # type: ignore[no-untyped-def]
    net, designs, rejected = cross
    sig = net.signals["0"]
    own = designs["own"]
    assert own.n_stages == 4 and own.program() is sig.default_program
    merged = designs["merged"]
    assert merged.n_stages == 2  # the two 6 s protected-left stages dropped
    assert set(designs) | set(rejected) == set(DESIGN_KINDS)
    served = {k for m in sig.movements if m.is_used for k in [m.link_index]}
    for d in designs.values():
        assert len({len(s) for s in d.stages}) == 1
        assert set().union(*(_green(s) for s in d.stages)) == served, d.name
        for s in d.stages:
            assert stage_problems(sig, s) == [], (d.name, s)
    # permitted lefts show g beside the opposing through, which shows G
    s0 = merged.stages[0]
    assert "g" in s0 and "G" in s0
    for k in (i for i, c in enumerate(s0) if c == "g"):
        assert any(sig.yields[k, j] and s0[j] in "Gg" for j in range(sig.n_links)), k


def test_conflict_graph_designs_a_junction_with_hand_made_link_indices(tmp_path: Path) -> None:
    """Ingolstadt's gneJ21 (fkk_in) gives one link index to movements of several approaches (a
    crossing with the second half of an indirect left): every design built from its stages,
    approaches or axes greens two foes that do not give way, and its own program shows foes both
    with priority. The protected conflict_graph design serves every link it serves, never two
    vehicle foes together, and passes the validator."""

    net = load_network(GAME / "fkk_in" / "ingolstadt.net.xml.gz")
    sig = net.signals["gneJ21"]
    designs, rejected = stage_designs(net, "gneJ21")
    assert [d.name for d in designs] == ["own", "conflict_graph"]
    assert all("foes and neither gives way" in rejected[k] for k in ("merged", "axes", "split", "lead_left"))
    d = designs[1]
    used = {m.link_index for m in sig.movements if m.is_used}
    own_green = {k for ph in sig.default_program.phases for k, c in enumerate(ph.state) if c in "Gg"} & used
    assert set().union(*(_green(s) for s in d.stages)) == own_green
    vehicle = set(sig.vehicle_links) - set(sig.pedestrian_links)
    foes = sig.conflicts & ~merge_pairs(sig)
    merges = merge_pairs(sig)
    for s in d.stages:
        assert stage_problems(sig, s) == []
        on = sorted(_green(s) & vehicle)
        assert not any(foes[a, b] for a in on for b in on), s
        priority = [k for k in on if s[k] == "G"]  # SUMO calls two G links into one lane unsafe
        assert not any(merges[a, b] for a in priority for b in priority), s
    net_d = with_designs(net, {"gneJ21": d})
    assert validate_plan(complete_plan(design_plan(d), net_d), net_d) == []
    flows = _flows(net, "gneJ21", 200.0)
    # the own program greens link 2, which no movement uses and no generated design serves, so
    # under "best" no design is complete there and the own program stays (its figure is the only
    # finite one); named, the planners take the design
    best = choose_designs(net, flows, "best", workdir=tmp_path, signals=["gneJ21"])["gneJ21"]
    assert best.design.name == "own" and best.delay_s["conflict_graph"] == float("inf")
    named = choose_designs(net, flows, "conflict_graph", workdir=tmp_path, signals=["gneJ21"])["gneJ21"]
    assert named.design == d


def test_design_programs_only_for_the_signals_driven(tmp_path: Path) -> None:
    """SUMO activates the program loaded last: a signal a controller leaves on its own program must
    not get its design's program in the file (it would run that program's fixed greens instead).
    SUMO's corridor, three signals on the split design: the file holds exactly the signals
    named, and SUMO runs the design only there."""
    import pandas as pd

    from greenwave.controllers.tls_xml import read_programs
    from greenwave.engine.session import SessionConfig, SumoSession

    corridor = GAME / "corridor" / "corridor.net.xml"
    net = load_network(corridor)
    a, b, c = sorted(net.signals)
    flows = pd.concat([_flows(net, s, 150.0) for s in (a, b, c)]).drop_duplicates(["from_edge", "to_edge"])
    choice = choose_designs(net, flows, "split", workdir=tmp_path)
    assert {s for s, ch in choice.items() if not ch.design.is_own} == {a, b, c}
    network = with_designs(net, {s: ch.design for s, ch in choice.items()})
    assert write_design_programs(network, choice, tmp_path / "none.add.xml", signals=[]) is None
    path = write_design_programs(network, choice, tmp_path / "two.add.xml", signals=[a, c],
                                 actuated_id="gw_local")
    assert path is not None
    written = read_programs(path)
    assert set(written) == {a, c} and {e.get("programID") for e in written.values()} == {"gw_local"}
    assert path.read_text().count("<tlLogic") == 4  # the design and its actuated copy, per signal
    with SumoSession(SessionConfig(net_file=corridor, route_files=(), additional_files=(path,), end_s=5.0,
                                   log_file=tmp_path / "sumo.log")) as sim:
        ran = {s: sim.conn.trafficlight.getProgram(s) for s in (a, b, c)}
    assert ran[a] == ran[c] == "gw_local" and ran[b] == read_programs(corridor)[b].get("programID", "0")
    assert set(read_programs(write_design_programs(network, choice, tmp_path / "all.add.xml"))) == {a, b, c}


def test_a_link_that_gives_way_to_one_it_merges_with_shows_g(cross) -> None:  # type: ignore[no-untyped-def]
    """SUMO calls two G links into one lane unsafe: in cross, link 1 merges into link 5's lane and
    gives way to it. Both G is a problem; every generated design shows g on the one that gives way."""
    net, designs, _ = cross
    sig = net.signals["0"]
    merges = merge_pairs(sig)
    assert merges[1, 5] and sig.yields[1, 5]
    state = ["r"] * sig.n_links
    state[1] = state[5] = "G"
    assert "merge into one lane" in stage_problems(sig, "".join(state))[0]
    state[1] = "g"
    assert stage_problems(sig, "".join(state)) == []
    for d in designs.values():
        if d.is_own:
            continue
        for st in d.stages:
            assert not any(st[a] == "G" and st[b] == "G" and merges[a, b] and (sig.yields[a, b] or sig.yields[b, a])
                           for a in range(sig.n_links) for b in range(sig.n_links)), (d.name, st)


def test_stage_problems_catch_conflicts(cross) -> None:  # type: ignore[no-untyped-def]
    net, designs, _ = cross
    sig = net.signals["0"]
    s0 = designs["merged"].stages[0]
    g = s0.index("g")
    assert "both show 'G'" in stage_problems(sig, s0[:g] + "G" + s0[g + 1:])[0]
    # the g on the wrong side: b shows g beside a foe it does not give way to, a shows G
    merge = merge_pairs(sig)
    a, b = next((i, j) for i in range(sig.n_links) for j in range(sig.n_links)
                if sig.conflicts[i, j] and not merge[i, j] and sig.yields[i, j] and not sig.yields[j, i])
    state = ["r"] * sig.n_links
    state[a], state[b] = "G", "g"
    assert "neither gives way" in stage_problems(sig, "".join(state))[0]


def test_intergreens_from_geometry(cross) -> None:  # type: ignore[no-untyped-def]
    net, designs, _ = cross
    sig = net.signals["0"]
    d = designs["merged"]
    y, r = intergreens(sig, d.stages, CROSS)
    assert (y, r) == (d.yellow_s, d.allred_s)
    speed = max(net.edge(e)["speed_mps"] for e in sig.incoming_edges)
    own = own_link_yellow(sig.default_program, sig.n_links)
    assert own and set(own.values()) == {3.0}  # the game's program: 3 s yellow at 50 km/h
    y_ite, _ = intergreens(sig, d.stages, CROSS, params=DesignParams(yellow="ite"))
    for i in range(2):
        assert y[i][1 - i] == 3.0  # the network's own yellow (>= the 3 s standard)
        assert y_ite[i][1 - i] >= max(3.0, 1.0 + speed / 6.0) - 1e-9  # ITE's kinematic yellow
        assert r[i][1 - i] > 0  # conflicting movements hand over: an all-red
    # a longer clearing vehicle needs a longer all-red; a faster clearance a shorter one
    _, r_long = intergreens(sig, d.stages, CROSS, params=DesignParams(vehicle_length_m=20.0))
    assert all(r_long[i][1 - i] > r[i][1 - i] for i in range(2))
    y_slow, _ = intergreens(sig, d.stages, CROSS, params=DesignParams(yellow="ite", decel_mps2=1.0))
    assert all(y_slow[i][1 - i] > y_ite[i][1 - i] for i in range(2))
    with pytest.raises(NetworkError, match="yellow rule"):
        intergreens(sig, d.stages, CROSS, params=DesignParams(yellow="rilsa"))
    # a program showing a 5 s yellow is the network's standard; one showing 20 s is not
    own_prog = sig.default_program
    for shown, expect in ((5.0, 5.0), (20.0, y_ite[0][1])):
        long = replace(own_prog, phases=tuple(replace(ph, duration=shown) if any(c in "yY" for c in ph.state) else ph
                                              for ph in own_prog.phases))
        sig_long = replace(sig, programs={**sig.programs, own_prog.id: long})
        y_long, _ = intergreens(sig_long, d.stages, CROSS)
        assert y_long[0][1] == expect and y_long[1][0] == expect


def test_own_link_yellow_follows_each_link() -> None:
    prog = Program("p", "static", 0.0, (
        Phase(30, "GGrr"), Phase(1, "Gyrr"), Phase(3, "yyrr"), Phase(2, "rrrr"),
        Phase(20, "rrGg"), Phase(4, "rryo"),
    ))
    # link 0 shows 3 s, link 1 1 + 3 s, link 2 4 s; link 3 leaves its green without a yellow
    assert own_link_yellow(prog, 4) == {0: 3.0, 1: 4.0, 2: 4.0}
    assert own_link_yellow(None, 4) == {}
    # a link ending two greens with different yellows: the longest, or the shortest
    two = Program("q", "static", 0.0, (Phase(30, "Gr"), Phase(3, "yr"), Phase(30, "rG"), Phase(4, "ry"),
                                       Phase(30, "Gr"), Phase(2, "yr")))
    assert own_link_yellow(two, 2) == {0: 3.0, 1: 4.0}
    assert own_link_yellow(two, 2, shortest=True) == {0: 2.0, 1: 4.0}


def test_design_program_and_json(cross, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    net, designs, _ = cross
    d = designs["merged"]
    back = StageDesign.from_dict("0", json.loads(json.dumps(d.to_dict())))
    assert back == d and back.program() == d.program()
    prog = d.program()
    greens = [ph for ph in prog.phases if any(c in "Gg" for c in ph.state) and "y" not in ph.state]
    assert [ph.state for ph in greens] == list(d.stages)  # an all-red phase is never a stage
    assert [ph.min_dur for ph in greens] == list(d.min_green_s)
    # the design's network shares the road graph and its edge index; the own network is untouched
    net_d = with_designs(net, {"0": d})
    assert net_d.graph is net.graph and net_d.edge_ends == net.edge_ends
    assert net_d.signals["0"].default_program == prog and d.program_id not in net.signals["0"].programs
    # the plan carries the design: the validator and SUMO export work from the file alone
    plan = complete_plan(design_plan(d), net_d)
    plan.to_json(tmp_path / "p.json")
    again = TimingPlan.from_json(tmp_path / "p.json")
    assert again.designs == {"0": d} and validate_plan(again, net) == []
    xml = write_sumo_additional(again, net, tmp_path / "p.add.xml").read_text()
    assert "stage design 'merged'" in xml and xml.count("<phase") == len(prog.phases)
    # the own network does not know the design's program: without the design the plan is refused
    bare = replace(again, designs={})
    assert validate_plan(bare, net)[0].rule == "stage-mismatch"
    data = json.loads((tmp_path / "p.json").read_text())
    data["designs"]["0"]["stages"] = ["GG"]
    with pytest.raises(PlanError, match="designs.0"):
        TimingPlan.from_dict(data)
    data["designs"]["0"] = {**d.to_dict(), "yellow_s": [[0, "x"], [0, 0]]}
    with pytest.raises(PlanError, match="yellow_s"):
        TimingPlan.from_dict(data)


def test_bad_inputs(cross) -> None:  # type: ignore[no-untyped-def]
    net, designs, _ = cross
    with pytest.raises(ScenarioError, match="stage_design must be one of own, best, rebuilt"):
        check_stage_design_option("fancy", "controller 'optimised'")
    with pytest.raises(NetworkError, match="not in the network"):
        stage_designs(net, "nope")
    with pytest.raises(NetworkError, match="not in the network"):
        with_designs(net, {"nope": designs["merged"]})
    with pytest.raises(NetworkError, match="stages: expected"):
        StageDesign.from_dict("0", {**designs["merged"].to_dict(), "stages": []})


def test_best_choice_and_switching(cross, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The model picks per signal; the switcher gets the design's intergreen for every pair."""

    net, designs, _ = cross
    flows = _flows(net, "0", 150.0)
    choice = choose_designs(net, flows, "best", workdir=tmp_path)
    c = choice["0"]
    # conflict_graph is a fallback: it competes only where no other generated design is valid
    assert set(c.delay_s) == set(designs) - {"conflict_graph"} and c.design.name in designs
    assert c.delay_s[c.design.name] == min(c.delay_s.values()) or c.design.name == "own"
    named = choose_designs(net, flows, "split", workdir=tmp_path)["0"]
    assert named.design.name == "split" and named.design == designs["split"]
    stages = design_signal_stages(with_designs(net, {"0": named.design}), {"0": named})["0"]
    d = named.design
    for (i, j), seq in stages.transitions.items():
        assert sum(t for _, t in seq) == pytest.approx(d.yellow_s[i][j] + d.allred_s[i][j])


def test_best_keeps_an_own_program_the_model_cannot_plan_where_no_proof_follows(tmp_path: Path) -> None:
    """Braunschweig's fokr_bs_demo junction runs the city's signal-group plan, which the model
    reads as 16 stages needing a 235 s cycle: it cannot plan it (NaN), so it has no figure a
    design must beat. A controller that proves nothing in SUMO (max_pressure) keeps the own
    program; the planners, whose proof keeps the city's plan when it loses, may try the best
    design. The choice says why in words, never "nan"."""

    fokr = GAME / "fokr_bs_demo"
    net = load_network(fokr / "fokr_bs.net.xml.gz", program_files=[fokr / "signalPlan.add.xml"])
    sig = net.signals["38"]
    assert sig.default_program is not None and sig.default_program.id == "DLR_UT_v1-0-0"
    flows = _flows(net, "38", 60.0)
    kept = choose_designs(net, flows, "best", workdir=tmp_path, proof_follows=False)["38"]
    tried = choose_designs(net, flows, "best", workdir=tmp_path, proof_follows=True)["38"]
    for c in (kept, tried):
        assert np.isnan(c.delay_s["own"]) and "nan" not in c.why
        assert "model cannot plan" in c.why and "no feasible common cycle" in c.why
        assert any(np.isfinite(v) for v in c.delay_s.values())  # a design it could plan
    assert kept.design.name == "own" and "proves nothing in SUMO" in kept.why
    assert tried.design.name != "own" and np.isfinite(tried.delay_s[tried.design.name])
    # the city's plan greens foes both with priority (as greenwave reads it): for the planners it
    # does not compete on the model's figure at all
    assert "cannot be driven safely" in tried.why and "cannot be driven safely" not in kept.why


# ------------------------------------------------------------------------------------------
# point 7: every design of every shipped real network


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REAL))
def test_every_generated_design_passes_the_validator(name: str, tmp_path: Path) -> None:
    net_file, _ = REAL[name]
    net = load_network(net_file)
    rebuilt = rebuilt_programs(net_file, workdir=tmp_path)
    generated = 0
    for sid in net.signals:
        designs, rejected = stage_designs(net, sid, rebuilt=rebuilt.get(sid))
        for d in designs:
            if d.is_own:
                continue
            generated += 1
            net_d = with_designs(net, {sid: d})
            found = validate_plan(complete_plan(design_plan(d), net_d), net_d)
            assert found == [], (name, sid, d.name, [str(v) for v in found[:3]])
            sig = net_d.signals[sid]
            for s in d.stages:
                assert stage_problems(sig, s) == []
            assert all(d.yellow_s[i][j] >= 3.0 or d.yellow_s[i][j] == 0.0
                       for i in range(d.n_stages) for j in range(d.n_stages))
        assert not any("validator" in why for why in rejected.values())
    valid, _ = candidate_designs(net, workdir=tmp_path)
    assert sum(len(v) - 1 for v in valid.values() if v) == generated
    if name not in ("bs3d",):  # bs3d's one signal is a one-stage pedestrian light
        assert generated > 0



@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REAL))
def test_every_generated_design_runs_safely_in_sumo(name: str, pool: Executor, tmp_path: Path) -> None:
    """Each design kind, on every signal that has it, as a fixed-time plan with its intergreens:
    the transition monitor sees no violation (but on signals whose own program is unsafe)."""
    net_file, demand = REAL[name]
    net = load_network(net_file)
    if "sumocfg" in demand:  # the programs SUMO runs (e.g. cross's manual program: 3 s all-red)
        from greenwave.scenarios.sumocfg import read_sumocfg

        cfg = read_sumocfg(sumo_home() / demand["sumocfg"].removeprefix("sumo:"))
        net = load_network(net_file, program_files=cfg.additional_files, begin_s=cfg.begin_s)
    valid, _ = candidate_designs(net, workdir=tmp_path)
    ran = 0
    for kind in DESIGN_KINDS[1:]:
        chosen = {sid: next(d for d in ds if d.name == kind) for sid, ds in valid.items()
                  if any(d.name == kind for d in ds)}
        if not chosen:
            continue
        plan = TimingPlan({}, designs={})
        for d in chosen.values():
            one = design_plan(d)
            plan.signals.update(one.signals)
            plan.designs.update(one.designs)
        plan = complete_plan(plan, with_designs(net, chosen))
        path = tmp_path / f"{kind}.json"
        plan.to_json(path)
        sc = scenario_from_dict({
            "name": f"{name}_{kind}", "duration_s": 240, "seeds": [1], "controllers": ["fixed"],
            "network": {"file": str(net_file)}, "demand": dict(demand),
            "controller_options": {"fixed": {"plan": str(path)}},
        })
        out = tmp_path / kind
        summary = run_scenario(sc, out, executor=pool, check_safety=True)
        checked = json.loads((out / "runs" / "fixed_seed1" / "transition_safety.json").read_text())
        assert checked["steps"] > 0 and summary.vehicles_inserted.iloc[0] > 0
        where = {v["signal"] for v in checked["first"]}
        # a known unsafe program may show its violations where it still runs, never where a design replaced it
        assert where <= KNOWN_UNSAFE_PROGRAMS - set(chosen), (name, kind, checked["by_rule"], checked["first"][:3])
        ran += 1
    if name != "bs3d":
        assert ran > 0


@pytest.mark.slow
def test_controllers_run_on_chosen_designs(pool: Executor, tmp_path: Path) -> None:
    """optimised, adaptive and max_pressure on the RiLSA junction with stage_design = best and
    merged: the runs are safe and record which design each signal ran and why."""
    for mode in ("best", "merged"):
        controllers = ["optimised", "adaptive", "max_pressure"]
        sc = scenario_from_dict({
            "name": f"rilsa_{mode}", "duration_s": 600, "seeds": [1], "controllers": controllers,
            "network": {"file": str(RILSA / "RiLSA_example1" / "net.net.xml")},
            "demand": {"major_entry_vph": 500, "minor_entry_vph": 300, "turn_left": 0.2},
            "controller_options": {c: {"stage_design": mode} for c in controllers},
            # the centre's local fallback runs the design too (SUMO loads its programs). (With
            # fallback = "actuated" the hand-over to SUMO's actuated program cuts a green below
            # 5 s, with the own stages as well: not a matter of stage design.)
            **({"communication": {"fallback": "fixed", "outages": [{"share": 1.0, "start_s": 200,
                                                                    "duration_s": 200}]}}
               if mode == "merged" else {}),
        })
        out = tmp_path / mode
        summary = run_scenario(sc, out, executor=pool, check_safety=True)
        assert (summary.safety_violations == 0).all(), summary[["controller", "safety_violations"]]
        assert (summary.vehicles_arrived > 0).all()
        if mode == "merged":
            rate = summary.set_index("controller").coordinated_control_rate_mean["adaptive"]
            assert 0 < rate < 1  # the link was down for a while: the local design program ran
        for c in controllers:
            run = out / "runs" / f"{c}_seed1"
            if c == "max_pressure":
                meta = json.loads((run / "stage_designs.json").read_text())
            else:
                plan = TimingPlan.from_json(run / "plan.json")
                meta = plan.meta["stage_design"]
                if meta["signals"]["0"]["design"] != "own":
                    assert plan.designs["0"].name == meta["signals"]["0"]["design"]
            rec = meta["signals"]["0"]
            assert meta["mode"] == mode and rec["why"]
            if mode == "merged":
                assert rec["design"] == "merged"
            else:
                delays = {k: v for k, v in rec["model_delay_s"].items() if v is not None}
                assert set(delays) >= {"own", "merged"}
                assert rec["design"] == "own" or delays[rec["design"]] == min(delays.values())


@pytest.mark.slow
def test_stage_design_benchmark_reports_each_mode_against_own(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/stage_designs.py on the game's cross junction (its own four-stage program):
    per mode the delays of the seed, the design the signal ran, no transition violation, and
    the ratio to ``own``; an unknown network is refused before anything runs."""
    from tests.bench_modules import load_benchmark

    bench = load_benchmark("stage_designs.py", "stage_designs_benchmark")

    with pytest.raises(SystemExit):
        bench.main(["--networks", "cross,nowhere", "--json", str(tmp_path / "x.json")])
    assert "unknown nowhere" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()

    out = tmp_path / "designs.json"
    assert bench.main(["--networks", "cross", "--controllers", "adaptive", "--modes", "own,merged",
                       "--seeds", "1", "--duration", "600", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["modes"] == ["own", "merged"] and res["seeds"] == [1]
    cross_res = res["networks"]["cross"]
    own, merged = cross_res["own"]["adaptive"], cross_res["merged"]["adaptive"]
    assert own["designs"] == {} and merged["designs"] == {"merged": 1}  # own: no choice recorded
    for r in (own, merged):
        assert r["safety_violations"] == 0 and len(r["resco_delay_s"]) == 1
        assert 0 < r["mean_resco_delay_s"] == r["resco_delay_s"][0]
    assert "ratio_to_own" not in own
    assert merged["ratio_to_own"] == round(merged["mean_resco_delay_s"] / own["mean_resco_delay_s"], 3)


def test_own_mode_changes_nothing(cross) -> None:  # type: ignore[no-untyped-def]
    net, _, _ = cross
    choice = choose_designs(net, None, "own")
    assert choice["0"].design.is_own
    assert with_designs(net, {s: c.design for s, c in choice.items()}) is net
    assert np.array_equal(net.signals["0"].conflicts, load_network(CROSS).signals["0"].conflicts)


def test_exports_carry_the_design(cross, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from greenwave.controllers.export.utdf import read_utdf
    from greenwave.scenarios.cli import main

    net, designs, _ = cross
    d = designs["merged"]
    plan = complete_plan(design_plan(d), with_designs(net, {"0": d}))
    path = tmp_path / "plan.json"
    plan.to_json(path)
    assert main(["validate", str(path)]) == 0
    assert "SAFE" in capsys.readouterr().out
    for fmt, name in (("json", "p.json"), ("sumo", "p.add.xml"), ("utdf", "p.csv"), ("gbt20999", "p.gbt")):
        assert main(["export", str(path), "--format", fmt, "--output", str(tmp_path / name)]) == 0, fmt
    assert TimingPlan.from_json(tmp_path / "p.json").designs == {"0": d}
    xml = (tmp_path / "p.add.xml").read_text()
    assert all(f'state="{s}"' in xml for s in d.stages)
    back = read_utdf(tmp_path / "p.csv", plan)
    assert [st.yellow_s for st in back.signals["0"].stages] == [st.yellow_s for st in plan.signals["0"].stages]
    assert len(back.signals["0"].stages) == d.n_stages
