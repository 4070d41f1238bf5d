"""The SUMO session: starts, steps, always shuts down, reports SUMO's own words on failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenwave.engine.session import SessionConfig, SumoSession
from greenwave.errors import SimulationError


@pytest.fixture(scope="module")
def small_grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from greenwave.networks.generate import grid_network
    from greenwave.scenarios.demand import generate_routes
    from greenwave.scenarios.spec import scenario_from_dict

    d = tmp_path_factory.mktemp("session")
    net = grid_network(d / "g.net.xml", rows=2, cols=2)
    spec = scenario_from_dict({
        "duration_s": 300, "network": {"generator": "grid", "rows": 2, "cols": 2},
        "demand": {"entry_vph": 300},
    }).demand
    routes = generate_routes(net, spec, begin_s=0, end_s=300, seed=1, out_dir=d)
    return net, routes


def _positions(cfg: SessionConfig) -> list[tuple[str, tuple[float, float]]]:
    out = []
    with SumoSession(cfg) as sim:
        for _ in sim.steps():
            pass
        out = sorted((v, sim.conn.vehicle.getPosition(v)) for v in sim.conn.vehicle.getIDList())
    return out


@pytest.mark.slow
def test_runs_to_end_and_is_reproducible(small_grid: tuple[Path, Path]) -> None:
    net, routes = small_grid
    cfg = SessionConfig(net_file=net, route_files=(routes,), end_s=200, seed=5)
    first = _positions(cfg)
    assert first, "vehicles should be on the road at t=200"
    assert _positions(cfg) == first
    other = _positions(SessionConfig(net_file=net, route_files=(routes,), end_s=200, seed=6))
    assert other != first


def test_session_closes_on_error_and_can_start_again(small_grid: tuple[Path, Path]) -> None:
    net, routes = small_grid
    cfg = SessionConfig(net_file=net, route_files=(routes,), end_s=100, seed=1)
    with pytest.raises(RuntimeError, match="boom"):
        with SumoSession(cfg) as sim:
            sim.step()
            raise RuntimeError("boom")
    with SumoSession(cfg) as sim:  # libsumo was released: a new simulation starts
        assert sim.step() == 1.0


def test_sumo_failure_carries_sumo_message(tmp_path: Path, small_grid: tuple[Path, Path]) -> None:
    net, _ = small_grid
    bad_routes = tmp_path / "bad.rou.xml"
    bad_routes.write_text('<routes><vehicle id="v" depart="0"><route edges="no_such_edge"/></vehicle></routes>')
    cfg = SessionConfig(net_file=net, route_files=(bad_routes,), end_s=10, log_file=tmp_path / "sumo.log")
    with pytest.raises(SimulationError) as info:
        with SumoSession(cfg) as sim:
            sim.step()
    assert "no_such_edge" in str(info.value)
    # and the session is free again
    with SumoSession(SessionConfig(net_file=net, end_s=5)) as sim:
        sim.step()


@pytest.mark.slow
def test_traci_backend_gives_same_result(small_grid: tuple[Path, Path]) -> None:
    net, routes = small_grid
    cfg = SessionConfig(net_file=net, route_files=(routes,), end_s=120, seed=2)
    with SumoSession(cfg, backend="traci") as sim:
        for _ in sim.steps():
            pass
        via_traci = sorted(sim.conn.vehicle.getIDList())
    with SumoSession(cfg) as sim:
        for _ in sim.steps():
            pass
        via_libsumo = sorted(sim.conn.vehicle.getIDList())
    assert via_traci == via_libsumo and via_traci


@pytest.mark.slow
def test_traci_session_with_a_log_file_prints_nothing(tmp_path: Path, small_grid: tuple[Path, Path],
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    """traci's "Retrying in 1 seconds" while SUMO loads and SUMO's own messages (in the log file)
    stay out of greenwave's output."""
    net, routes = small_grid
    cfg = SessionConfig(net_file=net, route_files=(routes,), end_s=30, seed=2, log_file=tmp_path / "sumo.log")
    with SumoSession(cfg, backend="traci") as sim:
        for _ in sim.steps():
            pass
    out = capfd.readouterr().out
    assert "Retrying" not in out and "Loading net-file" not in out, out
    assert "Loading net-file" in (tmp_path / "sumo.log").read_text()


def test_console_to_takes_what_libsumo_and_a_sumo_it_starts_print(tmp_path: Path,
                                                                 capfd: pytest.CaptureFixture[str]) -> None:
    """libsumo prints its errors (a vehicle that cannot depart...) on the process's C-level
    stderr, and a SUMO started meanwhile inherits it: ``console_to`` sends both to a file (the
    run's ``sumo.console.log``), not to greenwave's console, and gives stderr back after."""
    import os
    import subprocess

    from greenwave._sumo import sumo_binary
    from greenwave.engine.session import console_to

    bad = tmp_path / "bad.rou.xml"
    bad.write_text('<routes><vehicle id="v" depart="0"><route edges="nowhere"/></vehicle></routes>\n')
    log = tmp_path / "sumo.console.log"
    with console_to(log):
        os.write(2, b"written at C level\n")
        subprocess.run([sumo_binary("sumo"), "-r", str(bad), "--end", "1"], check=False)
    os.write(2, b"after\n")
    said = log.read_text()
    assert "written at C level" in said and "Error:" in said
    err = capfd.readouterr().err
    assert "written at C level" not in err and "Error:" not in err and "after" in err
