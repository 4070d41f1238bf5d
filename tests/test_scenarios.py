"""Scenario loading and validation; demand generation and movement flows (real SUMO tools)."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenwave._sumo import sumo_home
from greenwave.errors import ScenarioError
from greenwave.scenarios.spec import bundled_scenarios, load_scenario, scenario_from_dict

MINIMAL = {
    "duration_s": 600,
    "network": {"generator": "grid", "rows": 2, "cols": 2},
    "demand": {"entry_vph": 300},
}


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sc.toml"
    p.write_text(text)
    return p


def test_bundled_scenarios_load_and_default_exists() -> None:
    names = bundled_scenarios()
    assert {"grid4_moderate", "grid4_saturated", "arterial6"} <= set(names)
    for name in names:
        sc = load_scenario(name)
        assert sc.duration_s > 0 and sc.seeds and sc.controllers
    assert load_scenario("default").name == "grid4_moderate"


def test_minimal_scenario_defaults() -> None:
    sc = scenario_from_dict(MINIMAL)
    assert sc.network.kind == "grid" and sc.network.params == {"rows": 2, "cols": 2}
    assert sc.seeds == (1,) and sc.step_length_s == 1.0 and sc.end_s == 600
    assert sc.demand.uses_flows and sc.demand.entry_vph == 300


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"durration_s": 1}, "unknown key 'durration_s'"),
        ({"duration_s": "long"}, "duration_s must be a number"),
        ({"duration_s": -5}, "duration_s must be > 0"),
        ({"seeds": []}, "'seeds' must be a non-empty list"),
        ({"controllers": ["static", "magic"]}, "unknown controller 'magic'"),
        ({"network": {"generator": "hexagon"}}, "network.generator 'hexagon' is not known"),
        ({"network": {"generator": "grid", "rows": 2, "cols": 2, "rowz": 3}}, "unknown key 'network.rowz'"),
        ({"network": {"generator": "grid", "rows": 2.5, "cols": 2}}, "network.rows must be an integer"),
        ({"network": {"generator": "grid", "cols": 2}}, "needs 'rows'"),
        ({"network": {"file": "nowhere.net.xml"}}, "does not exist"),
        ({"network": {"file": "a.net.xml", "generator": "grid"}}, "exactly one of"),
        ({"demand": {}}, "either route files"),
        ({"demand": {"entry_vph": 100, "route_files": ["x.rou.xml"]}}, "not both"),
        ({"demand": {"route_files": ["missing.rou.xml"]}}, "missing.rou.xml does not exist"),
        ({"demand": {"entry_vph": 100, "turn_left": 0.7, "turn_right": 0.5}}, "must be ≤ 1"),
        ({"demand": {"entry_vph": -1}}, "entry_vph must be ≥ 0"),
    ],
)
def test_invalid_scenarios_name_the_problem(patch: dict, message: str) -> None:
    data = {**MINIMAL, **patch}
    with pytest.raises(ScenarioError, match=None) as info:
        scenario_from_dict(data)
    assert message in str(info.value)


def test_unknown_key_lists_valid_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, 'duration_s = 60\nspeed = 3\n[network]\ngenerator="grid"\nrows=2\ncols=2\n'
                  "[demand]\nentry_vph=10\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    text = str(info.value)
    assert str(path) in text and "'speed'" in text and "duration_s (float)" in text


def test_bad_toml_and_missing_file_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(_write(tmp_path, "duration_s = = 3"))
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(tmp_path / "absent.toml")
    with pytest.raises(ScenarioError, match="unknown scenario 'nosuch'"):
        load_scenario("nosuch")


def test_sumocfg_demand_from_the_sumo_package(tmp_path: Path) -> None:
    """A real shipped configuration: files resolve relative to the .sumocfg."""
    path = _write(
        tmp_path,
        'duration_s = 200\n[network]\nfile = "sumo:tools/game/grid6/grid6.net.xml"\n'
        '[demand]\nsumocfg = "sumo:tools/game/grid6.sumocfg"\n',
    )
    sc = load_scenario(path)
    assert sc.network.path == sumo_home() / "tools/game/grid6/grid6.net.xml"
    assert [p.name for p in sc.demand.route_files] == ["grid6.rou.xml"]
    assert "grid6.tll.xml" in [p.name for p in sc.demand.additional_files]


# ------------------------------------------------------------------------------------------
# demand


@pytest.fixture(scope="module")
def grid_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from greenwave.networks.generate import grid_network

    return grid_network(tmp_path_factory.mktemp("grid") / "g.net.xml", rows=2, cols=2, lanes=1)


@pytest.mark.slow
def test_generated_routes_are_seeded_and_follow_turning_shares(grid_net: Path, tmp_path: Path) -> None:
    from greenwave.scenarios.demand import generate_routes, iter_vehicle_routes, movement_flows

    spec = scenario_from_dict({**MINIMAL, "demand": {"entry_vph": 600, "turn_left": 0.0,
                                                     "turn_right": 0.0}}).demand
    a = generate_routes(grid_net, spec, begin_s=0, end_s=3600, seed=3, out_dir=tmp_path / "a")
    b = generate_routes(grid_net, spec, begin_s=0, end_s=3600, seed=3, out_dir=tmp_path / "b")
    c = generate_routes(grid_net, spec, begin_s=0, end_s=3600, seed=4, out_dir=tmp_path / "c")
    ra, rb, rc = (list(iter_vehicle_routes([p])) for p in (a, b, c))
    assert ra == rb and ra != rc
    # 8 entries (2x2 grid) × 600 veh/h for an hour, departure times randomised
    assert abs(len(ra) - 8 * 600) < 0.1 * 8 * 600
    # no turning: every route is a straight line through the grid (entry, 2 inner edges, exit)
    assert all(len(edges) == 3 for _, edges in ra)
    flows = movement_flows([a], begin_s=0, end_s=3600)
    assert set(flows.columns) == {"from_edge", "to_edge", "vehicles", "flow_vph"}
    assert flows["vehicles"].sum() == 2 * len(ra)
    assert flows["flow_vph"].between(400, 800).all()


@pytest.mark.slow
def test_turning_shares_honoured(grid_net: Path, tmp_path: Path) -> None:
    import sumolib

    from greenwave.scenarios.demand import generate_routes, movement_flows, turning_shares

    spec = scenario_from_dict({**MINIMAL, "demand": {"entry_vph": 900, "turn_left": 0.25,
                                                     "turn_right": 0.25}}).demand
    routes = generate_routes(grid_net, spec, begin_s=0, end_s=3600, seed=1, out_dir=tmp_path)
    shares = turning_shares(sumolib.net.readNet(str(grid_net)), left=0.25, right=0.25)
    flows = movement_flows([routes], begin_s=0, end_s=3600)
    total = flows.groupby("from_edge")["vehicles"].sum()
    checked = 0
    for row in flows.itertuples():
        if total[row.from_edge] >= 400:
            expected = shares[row.from_edge][row.to_edge]
            assert abs(row.vehicles / total[row.from_edge] - expected) < 0.06
            checked += 1
    assert checked >= 8


@pytest.mark.parametrize("left_turn_lanes", [False, True])
def test_entry_edges_of_a_grid(left_turn_lanes: bool, tmp_path: Path) -> None:
    """A 2×3 grid has 10 fringe entries, also when turn lanes split every approach in two
    (the first piece of each is the entry; before, such grids had none)."""
    import sumolib

    from greenwave.networks.generate import grid_network
    from greenwave.scenarios.demand import entry_edges, generate_routes

    path = grid_network(tmp_path / "g.net.xml", rows=2, cols=3, lanes=2, left_turn_lanes=left_turn_lanes)
    net = sumolib.net.readNet(str(path))
    entries = entry_edges(net)
    assert len(entries) == 2 * (2 + 3)
    assert all(e.getFromNode().getID().startswith(("left", "right", "top", "bottom")) for e in entries)
    spec = scenario_from_dict({**MINIMAL, "demand": {"entry_vph": 300}}).demand
    routes = generate_routes(path, spec, begin_s=0, end_s=600, seed=1, out_dir=tmp_path / "r")
    assert routes.stat().st_size > 0
