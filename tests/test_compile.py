"""compile_network: flat arrays from a RoadNetwork plus movement flows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from greenwave._sumo import sumo_home
from greenwave.engine.arrays import CompiledNetwork
from greenwave.errors import NetworkError
from greenwave.networks import RoadNetwork, load_network
from greenwave.networks.compile import compile_network
from greenwave.networks.generate import grid_network
from greenwave.scenarios.demand import generate_routes, movement_flows
from greenwave.scenarios.spec import scenario_from_dict

F64_FIELDS = (
    "stage_min_green_s", "stage_max_green_s", "stage_yellow_s", "stage_allred_s",
    "stage_intergreen_s", "link_sat_flow_vps", "link_flow_vps", "link_entry_flow_vps",
    "link_travel_s", "link_in_share", "link_sneakers_veh",
)
I64_FIELDS = (
    "sig_stage_ptr", "stage_phase", "link_signal", "link_stage_ptr", "link_stage_idx",
    "link_in_ptr", "link_in_src",
)

DRT = sumo_home() / "tools" / "game" / "DRT" / "osm.net.xml"
INGOLSTADT = sumo_home() / "tools" / "game" / "fkk_in" / "ingolstadt.net.xml.gz"


@dataclass
class Grid:
    net_file: Path
    network: RoadNetwork
    flows: pd.DataFrame
    compiled: CompiledNetwork


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Grid:
    d = tmp_path_factory.mktemp("compile")
    net_file = grid_network(d / "g.net.xml", rows=3, cols=3, lanes=2)
    spec = scenario_from_dict(
        {"duration_s": 1800, "network": {"generator": "grid", "rows": 3, "cols": 3},
         "demand": {"entry_vph": 400}}
    ).demand
    routes = generate_routes(net_file, spec, begin_s=0, end_s=1800, seed=1, out_dir=d)
    flows = movement_flows([routes], begin_s=0, end_s=1800)
    network = load_network(net_file)
    return Grid(net_file, network, flows, compile_network(network, flows))


def check_structure(c: CompiledNetwork) -> None:
    """Shapes, dtypes, contiguity, read-only, pointer consistency."""
    for name in F64_FIELDS + I64_FIELDS:
        a = getattr(c, name)
        assert isinstance(a, np.ndarray), name
        assert a.dtype == (np.float64 if name in F64_FIELDS else np.int64), name
        assert a.ndim == 1 and a.flags.c_contiguous, name
        assert not a.flags.writeable, name
        with pytest.raises(ValueError):
            a[...] = 0
    ns, nst, nl = c.n_signals, c.n_stages, c.n_links
    assert c.sig_stage_ptr.shape == (ns + 1,) and c.sig_stage_ptr[0] == 0 and c.sig_stage_ptr[-1] == nst
    assert np.all(np.diff(c.sig_stage_ptr) >= 1)  # every signal has a stage
    for name in ("stage_min_green_s", "stage_max_green_s", "stage_yellow_s", "stage_allred_s",
                 "stage_intergreen_s", "stage_phase"):
        assert getattr(c, name).shape == (nst,), name
    for name in ("link_signal", "link_sat_flow_vps", "link_flow_vps", "link_entry_flow_vps",
                 "link_travel_s", "link_sneakers_veh"):
        assert getattr(c, name).shape == (nl,), name
    assert len(c.link_from_edge) == len(c.link_to_edge) == nl
    assert len(c.program_ids) == ns and len(set(c.signal_ids)) == ns
    assert c.link_stage_ptr.shape == (nl + 1,) and c.link_stage_ptr[-1] == c.link_stage_idx.shape[0]
    assert c.link_in_ptr.shape == (nl + 1,) and c.link_in_ptr[-1] == c.link_in_src.shape[0]
    assert c.link_in_share.shape == c.link_in_src.shape
    assert np.all(np.diff(c.link_stage_ptr) >= 1), "every vehicle link has a green stage"
    assert np.all(np.diff(c.link_in_ptr) >= 0)
    np.testing.assert_allclose(c.stage_intergreen_s, c.stage_yellow_s + c.stage_allred_s)
    assert np.all(c.stage_min_green_s >= 5.0) and np.all(c.stage_max_green_s >= c.stage_min_green_s)
    assert np.all(c.stage_yellow_s >= 0) and np.all(c.stage_allred_s >= 0)
    assert np.all(c.link_sat_flow_vps > 0) and np.all(np.isfinite(c.link_sat_flow_vps))
    assert np.all(c.link_sat_flow_vps < 3 * 1800 / 3600 * 6)
    assert np.all(c.link_flow_vps >= 0) and np.all(c.link_entry_flow_vps >= 0)
    assert np.all(c.link_entry_flow_vps <= c.link_flow_vps + 1e-12)
    assert np.all(c.link_travel_s > 0) and np.all(np.isfinite(c.link_travel_s))
    assert np.all((c.link_in_share > 0) & (c.link_in_share <= 1.0 + 1e-12))
    if c.n_links:
        assert c.link_signal.min() >= 0 and c.link_signal.max() < ns
    for l in range(nl):
        stages = c.link_stage_idx[c.link_stage_ptr[l]:c.link_stage_ptr[l + 1]]
        s = c.stages_of(int(c.link_signal[l]))
        assert all(s.start <= k < s.stop for k in stages), "a link's stages belong to its signal"
    # flow conservation: flow == entry + Σ share · flow(src)
    inflow = np.zeros(nl)
    for l in range(nl):
        for j in range(c.link_in_ptr[l], c.link_in_ptr[l + 1]):
            src = c.link_in_src[j]
            assert c.link_to_edge[src] == c.link_from_edge[l]
            inflow[l] += c.link_in_share[j] * c.link_flow_vps[src]
    np.testing.assert_allclose(c.link_entry_flow_vps + inflow, c.link_flow_vps, rtol=0, atol=1e-9)


def test_grid_structure(grid: Grid) -> None:
    c = grid.compiled
    check_structure(c)
    assert c.n_signals == 9 and set(c.signal_ids) == set(grid.network.signals)
    assert c.n_stages == 18  # netgenerate: two green phases per signal
    assert c.link_flow_vps.sum() > 0 and len(c.link_in_src) > 0


def test_grid_stages_follow_program(grid: Grid) -> None:
    c, net = grid.compiled, grid.network
    for i, sid in enumerate(c.signal_ids):
        program = net.signals[sid].programs[c.program_ids[i]]
        ks = c.stages_of(i)
        assert c.min_cycle_s(i) <= program.cycle
        total = 0.0
        for k in ks:
            ph = program.phases[c.stage_phase[k]]
            assert ("G" in ph.state or "g" in ph.state) and "y" not in ph.state
            total += ph.duration + c.stage_intergreen_s[k]
        assert total == pytest.approx(program.cycle)  # every phase is a green or an intergreen
        assert c.stage_phase[ks.start] == 0
        assert np.all(c.stage_yellow_s[ks.start:ks.stop] > 0)


def test_grid_feeders_adjacent(grid: Grid) -> None:
    c, net = grid.compiled, grid.network
    for l in range(c.n_links):
        s = c.signal_ids[c.link_signal[l]]
        u, v = net._edge_ends[c.link_from_edge[l]]
        assert v in net.signals[s].junctions
        srcs = c.link_in_src[c.link_in_ptr[l]:c.link_in_ptr[l + 1]]
        for src in srcs:
            up = c.signal_ids[c.link_signal[src]]
            assert u in net.signals[up].junctions  # the approach edge runs from the feeder's signal
            assert up != s
        if len(srcs) == 0:
            assert c.link_entry_flow_vps[l] == c.link_flow_vps[l]
    # internal approaches (both ends signalised) with traffic are fed
    fed = [l for l in range(c.n_links) if c.link_in_ptr[l + 1] > c.link_in_ptr[l]]
    assert len(fed) > 0
    assert np.all(c.link_entry_flow_vps[fed] <= c.link_flow_vps[fed])


def test_grid_flows_and_saturation(grid: Grid) -> None:
    c, flows = grid.compiled, grid.flows
    table = {(f, t): q for f, t, q in flows[["from_edge", "to_edge", "flow_vph"]].itertuples(index=False)}
    for l in range(c.n_links):
        assert c.link_flow_vps[l] == pytest.approx(table.get((c.link_from_edge[l], c.link_to_edge[l]), 0.0) / 3600)
    # per approach: saturation flows of the links share the approach's lanes
    net = grid.network
    by_approach: dict[tuple[int, str], float] = {}
    for l in range(c.n_links):
        k = (int(c.link_signal[l]), c.link_from_edge[l])
        by_approach[k] = by_approach.get(k, 0.0) + c.link_sat_flow_vps[l]
    for (_, e), sat in by_approach.items():
        lanes = net.edge(e)["lanes"]
        assert sat <= lanes * 1800 / 3600 + 1e-9
        assert sat >= 0.05 * lanes * 1800 / 3600 - 1e-9  # permissive links keep ≥ 5 %
    # travel time = length / speed
    e = c.link_from_edge[0]
    attrs = net.edge(e)
    assert c.link_travel_s[0] == pytest.approx(attrs["length_m"] / attrs["speed_mps"])


def test_grid_permissive_factor(grid: Grid) -> None:
    c1 = compile_network(grid.network, grid.flows, permissive_factor=1.0)
    half = compile_network(grid.network, grid.flows, permissive_factor=0.5)
    ratio = half.link_sat_flow_vps / c1.link_sat_flow_vps
    assert set(np.round(ratio, 9)) <= {0.5, 1.0}
    assert (np.round(ratio, 9) == 0.5).any()  # netgenerate's lefts are permissive 'g'
    # default: gap acceptance against the conflicting flow (HCM permitted movement)
    hcm = grid.compiled.link_sat_flow_vps / c1.link_sat_flow_vps
    permissive = np.round(ratio, 9) == 0.5
    assert np.allclose(hcm[~permissive], 1.0)
    assert ((hcm[permissive] > 0.05) & (hcm[permissive] < 1.0)).all()


def test_grid_sneakers_on_permissive_links(grid: Grid) -> None:
    """Permissive-only links clear 2 sneakers per green end by default; protected links none."""
    c1 = compile_network(grid.network, grid.flows, permissive_factor=1.0)
    half = compile_network(grid.network, grid.flows, permissive_factor=0.5)
    permissive = np.round(half.link_sat_flow_vps / c1.link_sat_flow_vps, 9) == 0.5
    assert permissive.any() and (~permissive).any()
    sn = grid.compiled.link_sneakers_veh
    assert sn is not None and sn.shape == (grid.compiled.n_links,)
    assert np.all(sn[permissive] == 2.0) and np.all(sn[~permissive] == 0.0)
    more = compile_network(grid.network, grid.flows, sneakers_per_cycle=3.5)
    assert np.all(more.link_sneakers_veh[permissive] == 3.5) and np.all(more.link_sneakers_veh[~permissive] == 0.0)
    none = compile_network(grid.network, grid.flows, sneakers_per_cycle=0.0)
    assert np.all(none.link_sneakers_veh == 0.0)
    np.testing.assert_array_equal(none.link_sat_flow_vps, grid.compiled.link_sat_flow_vps)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(NetworkError, match="sneakers_per_cycle"):
            compile_network(grid.network, grid.flows, sneakers_per_cycle=bad)


def test_gap_acceptance_follows_hcm(grid: Grid) -> None:
    """The permissive factor of a left turn equals HCM's s_p / s for its opposing G flow."""
    import math

    c = grid.compiled
    c1 = compile_network(grid.network, grid.flows, permissive_factor=1.0)
    half = compile_network(grid.network, grid.flows, permissive_factor=0.5)
    l = next(k for k in range(c.n_links)
             if round(half.link_sat_flow_vps[k] / c1.link_sat_flow_vps[k], 9) == 0.5
             and c.link_flow_vps[k] > 0)
    sig = grid.network.signals[c.signal_ids[int(c.link_signal[l])]]
    stage = int(c.link_stage_idx[c.link_stage_ptr[l]])
    state = grid.network.signals[sig.id].default_program.phases[int(c.stage_phase[stage])].state
    mine = [m.link_index for m in sig.movements if m.is_used and m.from_edge == c.link_from_edge[l]
            and m.to_edge == c.link_to_edge[l]]
    v_o = 0.0
    for k in range(c.n_links):
        if k == l or c.link_signal[k] != c.link_signal[l]:
            continue
        theirs = [m.link_index for m in sig.movements if m.is_used and m.from_edge == c.link_from_edge[k]
                  and m.to_edge == c.link_to_edge[k] and state[m.link_index] == "G"]
        if theirs and sig.conflicts[np.ix_(mine, theirs)].any():
            v_o += c.link_flow_vps[k]
    assert v_o > 0
    s_p = v_o * math.exp(-v_o * 4.5) / (1 - math.exp(-v_o * 2.5))
    assert c.link_sat_flow_vps[l] / c1.link_sat_flow_vps[l] == pytest.approx(min(1.0, s_p / 0.5))


def test_grid_no_flows(grid: Grid) -> None:
    c = compile_network(grid.network, pd.DataFrame())
    check_structure(c)
    assert c.n_links == grid.compiled.n_links
    assert np.all(c.link_flow_vps == 0) and len(c.link_in_src) == 0


def test_restrict_signals_and_options(grid: Grid) -> None:
    c = compile_network(grid.network, grid.flows, signals=["B1", "A1"], min_green_s=10, max_green_s=60)
    check_structure(c)
    assert c.signal_ids == ("B1", "A1")
    assert np.all(c.stage_min_green_s == 10) and np.all(c.stage_max_green_s == 60)
    # A1 → B1 adjacency still gives feeders; other signals' links are not feeders
    assert len(c.link_in_src) > 0
    with pytest.raises(NetworkError, match="nope"):
        compile_network(grid.network, grid.flows, signals=["nope"])
    with pytest.raises(NetworkError, match="program 'xyz'"):
        compile_network(grid.network, grid.flows, signals=["A1"], program_id="xyz")
    # an unknown program id on unrequested signals falls back to the default program
    assert compile_network(grid.network, grid.flows, program_id="xyz").n_signals == 9


def test_unknown_edges_in_flows(grid: Grid) -> None:
    bad = pd.DataFrame({"from_edge": ["A0A1", "ghost1"], "to_edge": ["ghost2", "A1A2"],
                        "vehicles": [1, 1], "flow_vph": [10.0, 10.0]})
    with pytest.raises(NetworkError, match="ghost1.*ghost2"):
        compile_network(grid.network, bad)
    with pytest.raises(NetworkError, match="flow_vph"):
        compile_network(grid.network, pd.DataFrame({"from_edge": ["A0A1"], "to_edge": ["A1A2"]}))


def test_program_without_green_is_error(grid: Grid, tmp_path: Path) -> None:
    from greenwave.networks.model import Phase, Program, Signal

    sig = grid.network.signals["A1"]
    red = Program("red", "static", 0.0, (Phase(10.0, "r" * sig.n_links), Phase(3.0, "y" * sig.n_links)))
    sig2 = Signal(sig.id, sig.junctions, sig.movements, {"red": red}, sig.conflicts, sig.unused_links)
    net = RoadNetwork(grid.network.path, grid.network.graph, {**grid.network.signals, "A1": sig2})
    with pytest.raises(NetworkError, match="A1.*no green phase"):
        compile_network(net, grid.flows, signals=["A1"])
    c = compile_network(net, grid.flows)  # skipped when not requested
    assert "A1" not in c.signal_ids and c.n_signals == 8
    check_structure(c)


def test_conservation_when_feeders_exceed(grid: Grid) -> None:
    """Feeders carrying more than leaves the approach: shares are scaled, entry is 0."""
    c0 = grid.compiled
    feeding = {(c0.link_from_edge[u], c0.link_to_edge[u]) for u in c0.link_in_src}
    f = grid.flows.copy()
    hot = [(a, b) in feeding for a, b in zip(f["from_edge"], f["to_edge"], strict=True)]
    f.loc[hot, "flow_vph"] *= 5  # upstream links send 5× what the approaches carry
    c = compile_network(grid.network, f)
    check_structure(c)
    fed = [l for l in range(c.n_links) if c.link_in_ptr[l + 1] > c.link_in_ptr[l]]
    assert fed and all(c.link_entry_flow_vps[l] == 0 for l in fed)


def _some_flows(network: RoadNetwork, c: CompiledNetwork, k: int = 40) -> pd.DataFrame:
    step = max(1, c.n_links // k)
    rows = [(c.link_from_edge[l], c.link_to_edge[l], 1, 100.0 + 7 * l) for l in range(0, c.n_links, step)]
    # plus some movements into approaches (feeders)
    return pd.DataFrame(rows, columns=["from_edge", "to_edge", "vehicles", "flow_vph"])


@pytest.mark.slow
@pytest.mark.parametrize("path", [DRT, INGOLSTADT], ids=["drt", "ingolstadt"])
def test_real_networks(path: Path) -> None:
    network = load_network(path)
    c0 = compile_network(network, pd.DataFrame())
    check_structure(c0)
    assert c0.n_signals >= 2 and c0.n_links > 0
    timeable = [s for s in network.signals.values() if s.programs]
    assert set(c0.signal_ids) <= {s.id for s in timeable}
    if path == DRT:
        assert network.num_signals == 21 and c0.n_signals == 15  # rail signals have no program
    flows = _some_flows(network, c0)
    c = compile_network(network, flows)
    check_structure(c)
    assert c.link_flow_vps.sum() == pytest.approx(
        sum(q for f, t, q in flows[["from_edge", "to_edge", "flow_vph"]].itertuples(index=False)
            if (f, t) in set(zip(c.link_from_edge, c.link_to_edge, strict=True))) / 3600
    )
    # min green covers the pedestrian minimum somewhere (these nets have crossings)
    assert c.stage_min_green_s.max() > 5.0
    for i in range(c.n_signals):
        ks = c.stages_of(i)
        program = network.signals[c.signal_ids[i]].programs[c.program_ids[i]]
        total = sum(program.phases[c.stage_phase[k]].duration + c.stage_intergreen_s[k] for k in ks)
        assert total == pytest.approx(program.cycle)


def test_lane_blocking_rows(grid: Grid) -> None:
    """Shared-lane blocking: only protected links that share a lane with a permitted turner get
    a blocked part b (≤ their saturation flow); a0 = ((k + 1) / p − 1) · share follows the
    turners' flow share p in the lane; the model then serves such links better at short cycles."""
    from greenwave.engine.arrays import PlanArrays
    from greenwave.engine.model import evaluate
    from greenwave.engine.optimise import webster_splits

    # turners that hardly find gaps (as against heavy opposing traffic)
    off = compile_network(grid.network, grid.flows, permissive_factor=0.05, sneakers_per_cycle=0.5)
    on = compile_network(grid.network, grid.flows, permissive_factor=0.05, sneakers_per_cycle=0.5,
                         lane_blocking=True)
    assert off.link_block is None and on.link_block is not None
    np.testing.assert_array_equal(on.link_sat_flow_vps, off.link_sat_flow_vps)
    b, a0, a1 = on.link_block.T
    permitted = on.link_sneakers_veh > 0
    assert (b[permitted] == 0).all() and (b > 0).any()
    assert (b <= on.link_sat_flow_vps + 1e-12).all()
    assert ((a0 > 0) == (b > 0)).all() and ((a1 > 0) == (b > 0)).all()
    # the effect grows with the cycle: blocked lanes are served once per green
    ratio = []
    for cycle in (30.0, 60.0):
        plan = PlanArrays(cycle, np.zeros(on.n_signals), webster_splits(on, cycle))
        ratio.append(evaluate(on, plan).pi / evaluate(off, plan).pi)
    assert 1.0 <= ratio[0] < ratio[1], ratio


def test_option_errors_name_the_option(grid: Grid) -> None:
    """Lane sharing by equivalents and lane blocking would count a turner's hold-up twice; the
    turning factors must lie in (0, 1]."""
    with pytest.raises(NetworkError, match="equivalents.*lane_blocking.*choose one"):
        compile_network(grid.network, grid.flows, shared_lanes="equivalents", lane_blocking=True)
    for name in ("left_turn_factor", "right_turn_factor"):
        for bad in (0.0, 1.5, float("nan")):
            with pytest.raises(NetworkError, match=f"invalid {name}="):
                compile_network(grid.network, grid.flows, **{name: bad})
