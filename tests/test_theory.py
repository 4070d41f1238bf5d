"""Theory checks in real SUMO: a fixed-time signal behaves as traffic flow theory says.

One signalised junction, a single-lane approach W→E crossed by a light side street N→S.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from greenwave._sumo import run_sumo_command
from greenwave.engine.session import SessionConfig, SumoSession
from tests.bench_modules import load_benchmark

CYCLE = 60
GREEN = 27  # main approach, displayed green (s); then 3 s yellow, 2 s all-red


@pytest.fixture(scope="module")
def single_signal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("single_signal")
    (d / "n.nod.xml").write_text(
        "<nodes>"
        '<node id="W" x="-500" y="0"/><node id="C" x="0" y="0" type="traffic_light"/>'
        '<node id="E" x="300" y="0"/><node id="N" x="0" y="300"/><node id="S" x="0" y="-300"/>'
        "</nodes>"
    )
    (d / "n.edg.xml").write_text(
        "<edges>"
        '<edge id="WC" from="W" to="C" numLanes="1" speed="13.89"/>'
        '<edge id="CE" from="C" to="E" numLanes="1" speed="13.89"/>'
        '<edge id="NC" from="N" to="C" numLanes="1" speed="13.89"/>'
        '<edge id="CS" from="C" to="S" numLanes="1" speed="13.89"/>'
        "</edges>"
    )
    run_sumo_command(
        ["netconvert", "-n", d / "n.nod.xml", "-e", d / "n.edg.xml", "-o", d / "n.net.xml",
         "--no-turnarounds", "true"],
        what="building the single-signal test network",
    )
    side = CYCLE - GREEN - 3 - 2 - 3 - 2
    (d / "tl.add.xml").write_text(
        '<additional><tlLogic id="C" type="static" programID="theory" offset="0">'
        f'<phase duration="{GREEN}" state="rrGG"/><phase duration="3" state="rryy"/>'
        '<phase duration="2" state="rrrr"/>'
        f'<phase duration="{side}" state="GGrr"/><phase duration="3" state="yyrr"/>'
        '<phase duration="2" state="rrrr"/>'
        "</tlLogic></additional>"
    )
    return d


def _routes(d: Path, main_vph: float) -> Path:
    path = d / f"r{main_vph:g}.rou.xml"
    path.write_text(
        '<routes><flow id="main" from="WC" to="CE" begin="0" end="1800" '
        f'vehsPerHour="{main_vph:g}" departLane="best" departSpeed="max"/>'
        '<flow id="side" from="NC" to="CS" begin="0" end="1800" vehsPerHour="100" '
        'departLane="best" departSpeed="max"/></routes>'
    )
    return path


def _config(d: Path, routes: Path) -> SessionConfig:
    return SessionConfig(
        net_file=d / "n.net.xml",
        route_files=(routes,),
        additional_files=(d / "tl.add.xml",),
        end_s=1800,
        seed=7,
    )


@pytest.mark.slow
def test_fixed_time_discharge_matches_s_g_over_c(single_signal: Path) -> None:
    """Oversaturated approach: vehicles served per hour = s·g/C within 10 % (s = 1800 veh/h)."""
    from greenwave.networks import load_network

    net = load_network(single_signal / "n.net.xml")
    sat_per_lane = net.saturation_flow_per_lane
    served: dict[int, int] = {}
    seen: set[str] = set()
    with SumoSession(_config(single_signal, _routes(single_signal, 1400))) as sim:
        for t in sim.steps():
            for veh in sim.conn.edge.getLastStepVehicleIDs("CE"):
                if veh.startswith("main") and veh not in seen:
                    seen.add(veh)
                    served[int((t - 1) // CYCLE)] = served.get(int((t - 1) // CYCLE), 0) + 1
    cycles = np.array([served.get(c, 0) for c in range(3, 1800 // CYCLE - 1)])  # skip warm-up
    measured_vph = cycles.mean() * 3600 / CYCLE
    theory_vph = sat_per_lane * GREEN / CYCLE
    assert abs(measured_vph - theory_vph) / theory_vph < 0.10, (measured_vph, theory_vph)


def test_undersaturated_queue_clears_every_cycle(single_signal: Path) -> None:
    """Demand well below capacity: no vehicle is still queued when the green ends, any cycle."""
    residual = []
    with SumoSession(_config(single_signal, _routes(single_signal, 450))) as sim:
        for t in sim.steps():
            if t > CYCLE and t % CYCLE == GREEN:  # last second of the main green
                residual.append(sim.conn.edge.getLastStepHaltingNumber("WC"))
    assert len(residual) >= 25
    assert max(residual) == 0, residual


def _calibrate_module():  # type: ignore[no-untyped-def]
    return load_benchmark("calibrate.py", "greenwave_calibrate")


@pytest.mark.slow
def test_sumo_params_match_a_fresh_platoon_measurement(tmp_path: Path) -> None:
    """SUMO_PARAMS (measured by benchmarks/calibrate.py at cycles 40 and 60, seed 1) agree with
    a new measurement at another cycle and seed: the fitted lag factor β and the time loss of a
    stop, and the model's dispersion with SUMO_PARAMS predicts SUMO's arrival profile one block
    downstream better than TRANSYT's defaults do."""
    from greenwave.engine.arrays import SUMO_PARAMS, ModelParams
    from greenwave.engine.reference import disperse

    cal = _calibrate_module()
    r = cal.platoon(tmp_path, 50, 1800, 3, 900.0)
    assert abs(r["beta"] - SUMO_PARAMS.beta) < 0.2, r["beta"]  # the fitted lag is whole seconds
    assert abs(r["stop_loss_s"]["per_stop_s"] - SUMO_PARAMS.stop_penalty_s) < 1.0, r["stop_loss_s"]
    dep = np.array(r["departure_profile"])
    arr = np.array(r["arrival_profile"])

    def error(params: ModelParams) -> float:
        return float(np.sum((disperse(dep, r["cruise_time_s"], params) - arr) ** 2))

    assert error(SUMO_PARAMS) < 0.6 * error(ModelParams()), (error(SUMO_PARAMS), error(ModelParams()))
