"""Calibrate the macroscopic model against SUMO: measured constants written as JSON.

    python benchmarks/calibrate.py --json benchmarks/results/calibration.json [--duration 3600]

Every figure comes from real SUMO runs (eclipse-sumo from PyPI, default passenger cars) on
networks made by :func:`greenwave.networks.generate.grid_network` with the bundled grid's
geometry (200 m blocks, 2 lanes, 13.89 m/s), so the constants apply to the bundled scenarios.

Experiments
-----------
``platoon``
    Two signals A0 → B0 one block apart. A0 runs a fixed program (cycle ``C``); B0 shows the
    A0→B0 street green all the time. Heavy through traffic W → E. Instant induction loops at
    A0's stop line (departures) and at B0's stop line (free arrivals) give each vehicle's
    stop-line-to-stop-line travel time, and the cyclic departure and arrival profiles. Robertson's
    model A(t) = F Σ (1−F)^k d(t − L − k) is fitted (least squares over integer lag L and F); with
    the model's cruise time T (edge length / speed, as compiled), β = L / T and
    α = (1/F − 1) / L. Also from SUMO's tripinfo: the time loss of a stop beyond the time spent
    standing (deceleration + acceleration), the right stop penalty for a model whose objective
    is SUMO's time loss.
``discharge``
    One signal with every approach oversaturated (queues never clear), run with two cycles.
    Departures per lane and green at the stop line give each lane's discharge per cycle;
    ``n = s (G − start_lag + end_gain)`` over the two greens gives the saturation flow ``s``
    (veh/h/lane) and the net lost time per green, per lane kind (right+through lane,
    through+left lane).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from greenwave._sumo import run_sumo_command
from greenwave.controllers.detectors import lane_lengths
from greenwave.engine.results import write_text_atomic
from greenwave.networks.generate import grid_network

SPACING_M = 200.0
LANES = 2
SPEED_MPS = 13.89
YELLOW_S = 3


def _tls(tls_id: str, phases: list[tuple[int, str]]) -> str:
    body = "".join(f'<phase duration="{d}" state="{s}"/>' for d, s in phases)
    return f'<tlLogic id="{tls_id}" type="static" programID="cal" offset="0">{body}</tlLogic>'


def _two_stage(green_ns: int, green_ew: int) -> list[tuple[int, str]]:
    """The generated grid's program layout (link indices 0-3 N, 4-7 E, 8-11 S, 12-15 W)."""
    return [(green_ns, "GGGgrrrrGGGgrrrr"), (YELLOW_S, "yyyyrrrryyyyrrrr"),
            (green_ew, "rrrrGGGgrrrrGGGg"), (YELLOW_S, "rrrryyyyrrrryyyy")]


def _loops(lanes: dict[str, float], edges: list[str], out: Path) -> str:
    rows = []
    for e in edges:
        for k in range(LANES):
            lane = f"{e}_{k}"
            pos = lanes[lane] - 0.1
            rows.append(f'<instantInductionLoop id="{lane}" lane="{lane}" pos="{pos:.2f}" file="{out}"/>')
    return "".join(rows)


def _run(d: Path, net: Path, add: str, routes: str, duration: int, seed: int, tag: str) -> tuple[Path, Path]:
    (d / f"{tag}.add.xml").write_text(f"<additional>{add}</additional>")
    (d / f"{tag}.rou.xml").write_text(f'<routes><vType id="car" vClass="passenger"/>{routes}</routes>')
    trip = d / f"{tag}.trip.xml"
    run_sumo_command(
        ["sumo", "-n", net, "-a", d / f"{tag}.add.xml", "-r", d / f"{tag}.rou.xml", "--begin", "0",
         "--end", str(duration), "--seed", str(seed), "--no-step-log", "true", "--no-warnings", "true",
         "--tripinfo-output", trip, "--time-to-teleport", "-1"],
        what=f"calibration run {tag}",
    )
    return d / f"{tag}.loops.xml", trip


def _passings(path: Path) -> dict[str, list[tuple[float, str]]]:
    """Loop id → [(time, vehicle id)] of vehicles entering it."""
    out: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for _ev, el in ET.iterparse(path, events=("end",)):
        if el.tag == "instantOut" and el.get("state") == "enter":
            out[el.get("id", "")].append((float(el.get("time", "nan")), el.get("vehID", "")))
    return out


def _robertson(d: np.ndarray, lag: int, F: float) -> np.ndarray:
    C = len(d)
    k = np.arange(C)
    w = (1.0 - F) ** k
    src = (np.arange(C)[:, None] - lag - k[None, :]) % C
    return F / (1.0 - (1.0 - F) ** C) * (d[src] @ w)


def platoon(d: Path, cycle: int, duration: int, seed: int, flow_vph: float) -> dict:
    net = grid_network(d / "g12.net.xml", rows=1, cols=2, spacing_m=SPACING_M, lanes=LANES, speed_mps=SPEED_MPS)
    lanes = lane_lengths(net)
    g = (cycle - 2 * YELLOW_S) // 2
    tag = f"platoon{cycle}"
    loops_file = d / f"{tag}.loops.xml"
    add = (_tls("A0", _two_stage(cycle - 2 * YELLOW_S - g, g))
           + _tls("B0", [(1000, "rrrrGGGgrrrrGGGg")])
           + _loops(lanes, ["left0A0", "A0B0"], loops_file))
    routes = (f'<flow id="we" type="car" route="we" begin="0" end="{duration}" vehsPerHour="{flow_vph}" '
              'departLane="best" departSpeed="max"/>'
              f'<flow id="ns" type="car" route="ns" begin="0" end="{duration}" vehsPerHour="200" '
              'departLane="best" departSpeed="max"/>')
    routes = ('<route id="we" edges="left0A0 A0B0 B0right0"/><route id="ns" edges="top0A0 A0bottom0"/>'
              + routes)
    _run(d, net, add, routes, duration, seed, tag)
    passing = _passings(loops_file)
    dep = {v: t for k in range(LANES) for t, v in passing[f"left0A0_{k}"]}
    arr = {v: t for k in range(LANES) for t, v in passing[f"A0B0_{k}"]}
    warm = 300.0
    both = [v for v in dep if v in arr and dep[v] > warm and arr[v] < duration - 60]
    travel = np.array([arr[v] - dep[v] for v in both])
    dprof = np.zeros(cycle)
    aprof = np.zeros(cycle)
    for v in both:
        dprof[int(np.floor(dep[v])) % cycle] += 1
        aprof[int(np.floor(arr[v])) % cycle] += 1
    best = (np.inf, 0, 1.0)
    for lag in range(0, cycle):
        for F in np.linspace(0.02, 1.0, 99):
            err = float(np.sum((_robertson(dprof, lag, F) - aprof) ** 2))
            if err < best[0]:
                best = (err, lag, float(F))
    _err, lag, F = best
    cruise = lanes["A0B0_0"] / SPEED_MPS
    # the first vehicles of a green start from a standstill: their travel time separately
    ew_start = cycle - 2 * YELLOW_S - g + YELLOW_S  # A0's W-E green starts here in the cycle
    queued = [arr[v] - dep[v] for v in both if (dep[v] - ew_start) % cycle < 6.0]
    return {
        "cycle_s": cycle, "vehicles": len(both), "edge_length_m": lanes["A0B0_0"],
        "cruise_time_s": cruise,
        "travel_time_mean_s": float(travel.mean()), "travel_time_sd_s": float(travel.std()),
        "travel_time_first_6s_of_green_s": float(np.mean(queued)) if queued else None,
        "fit_lag_s": lag, "fit_F": F,
        "beta": lag / cruise, "alpha": (1.0 / F - 1.0) / lag if lag > 0 else None,
        "fit_rel_error": float(np.sqrt(_err / np.sum(aprof ** 2))),
        "departure_profile": dprof.tolist(), "arrival_profile": aprof.tolist(),
        "stop_loss_s": _stop_loss(d / f"{tag}.trip.xml", warm, duration - 60),
    }


def _stop_loss(trip: Path, lo: float, hi: float) -> dict:
    """Time loss of one stop beyond standing time: mean(timeLoss − waitingTime) of vehicles that
    stopped once minus mean timeLoss of those that never stopped (same route)."""
    stopped, free = [], []
    for _ev, el in ET.iterparse(trip, events=("end",)):
        if el.tag != "tripinfo" or not el.get("id", "").startswith("we"):
            continue
        if not lo <= float(el.get("depart", "0")) <= hi:
            continue
        loss, wait, n = float(el.get("timeLoss")), float(el.get("waitingTime")), int(el.get("waitingCount"))
        if n == 0:
            free.append(loss)
        elif n == 1:
            stopped.append(loss - wait)
    return {"stopped": len(stopped), "free": len(free),
            "per_stop_s": float(np.mean(stopped) - np.mean(free)) if stopped and free else None,
            "free_time_loss_s": float(np.mean(free)) if free else None}


_OPPOSITE = {"left0": "right0", "right0": "left0", "top0": "bottom0", "bottom0": "top0"}


def _straight(in_edge: str, out_edge: str) -> bool:
    return _OPPOSITE[in_edge[:-2]] == out_edge[2:]


def discharge(d: Path, cycles: tuple[int, int], duration: int, seed: int, *, through_only: bool = False) -> dict:
    net = grid_network(d / "g11.net.xml", rows=1, cols=1, spacing_m=SPACING_M, lanes=LANES, speed_mps=SPEED_MPS)
    lanes = lane_lengths(net)
    edges = [e for e in {ln.rsplit("_", 1)[0] for ln in lanes} if not e.startswith(":")]
    ins = sorted(e for e in edges if e.endswith("A0"))
    outs = sorted(e for e in edges if e.startswith("A0"))
    result: dict = {"cycles_s": list(cycles), "per_cycle": []}
    for cycle in cycles:
        g = (cycle - 2 * YELLOW_S) // 2
        tag = f"discharge{cycle}{'t' if through_only else ''}"
        loops_file = d / f"{tag}.loops.xml"
        add = _tls("A0", _two_stage(cycle - 2 * YELLOW_S - g, g)) + _loops(lanes, ins, loops_file)
        routes = []
        for e in ins:
            for o in outs:
                if o[2:] == e[:-2]:
                    continue  # no U-turns
                if through_only and not _straight(e, o):
                    continue
                routes.append(f'<flow id="{e}_{o}" type="car" begin="0" end="{duration}" from="{e}" to="{o}" '
                              f'vehsPerHour="{2400 if through_only else 600}" departLane="best" departSpeed="max"/>')
        _run(d, net, add, "".join(routes), duration, seed, tag)
        passing = _passings(loops_file)
        per_lane: dict[str, float] = {}
        for k in range(LANES):
            counts = []
            for e in ins:
                times = np.array([t for t, _v in passing[f"{e}_{k}"] if 300 < t < duration - 60])
                counts.append(len(times) / ((duration - 360) / cycle))
            per_lane[str(k)] = float(np.mean(counts))
        result["per_cycle"].append({"cycle_s": cycle, "green_s": g, "departures_per_green": per_lane})
    (a, b) = result["per_cycle"]
    for k in map(str, range(LANES)):
        na, nb = a["departures_per_green"][k], b["departures_per_green"][k]
        s = (nb - na) / (b["green_s"] - a["green_s"])  # veh/s
        result[f"lane{k}_sat_flow_vph"] = 3600.0 * s
        result[f"lane{k}_effective_minus_displayed_green_s"] = na / s - a["green_s"]
    return result


def permitted(d: Path, cycles: tuple[int, int], opposing_vph: tuple[float, ...], duration: int, seed: int,
              *, to_edge: str = "A0top0") -> dict:
    """Permitted left turns in SUMO: left turners from W (oversaturated) against through traffic
    from E of ``opposing_vph``; departures per green at two greens give, per opposing flow, the
    left-turn rate during green (slope, veh/s) and the vehicles cleared per green regardless of
    its length (intercept: turners that waited inside the junction, 'sneakers'). With
    ``to_edge="A0bottom0"`` the turners turn right (protected) instead."""
    net = grid_network(d / "g11p.net.xml", rows=1, cols=1, spacing_m=SPACING_M, lanes=LANES, speed_mps=SPEED_MPS)
    lanes = lane_lengths(net)
    rows = []
    for v_o in opposing_vph:
        per_green = []
        for cycle in cycles:
            g = (cycle - 2 * YELLOW_S) // 2
            tag = f"turn{to_edge}{cycle}_{int(v_o)}"
            loops_file = d / f"{tag}.loops.xml"
            add = _tls("A0", _two_stage(cycle - 2 * YELLOW_S - g, g)) + _loops(lanes, ["left0A0"], loops_file)
            routes = (f'<flow id="left" type="car" begin="0" end="{duration}" from="left0A0" to="{to_edge}" '
                      'vehsPerHour="900" departLane="best" departSpeed="max"/>'
                      f'<flow id="side" type="car" begin="0" end="{duration}" from="top0A0" to="A0bottom0" '
                      'vehsPerHour="100" departLane="best" departSpeed="max"/>')
            if v_o > 0:
                routes += (f'<flow id="opp" type="car" begin="0" end="{duration}" from="right0A0" to="A0left0" '
                           f'vehsPerHour="{v_o}" departLane="random" departSpeed="max"/>')
            _run(d, net, add, routes, duration, seed, tag)
            passing = _passings(loops_file)
            n = sum(1 for k in range(LANES) for t, v in passing[f"left0A0_{k}"]
                    if v.startswith("left") and 300 < t < duration - 60)
            per_green.append((g, n / ((duration - 360) / cycle)))
        (ga, na), (gb, nb) = per_green
        rate = (nb - na) / (gb - ga)
        rows.append({"opposing_vph": v_o, "left_per_green": [na, nb], "greens_s": [ga, gb],
                     "rate_during_green_vph": 3600.0 * rate, "per_green_intercept_veh": na - rate * ga})
    return {"cycles_s": list(cycles), "rows": rows}


def fit_gap_acceptance(rows: list[dict], sat_vph: float) -> dict:
    """Critical gap t_c (s) and sneakers per green that best reproduce the measured left turns per
    green, with s_p = v e^(−v t_c) / (1 − e^(−v t_f)) during green (t_f = 2.5 s, capped at the
    unopposed rate) plus a constant number per green."""
    best = (np.inf, 0.0, 0.0)
    unopposed = [r for r in rows if r["opposing_vph"] == 0]
    cap = unopposed[0]["rate_during_green_vph"] / 3600.0 if unopposed else sat_vph / 3600.0
    for t_c in np.arange(3.0, 12.01, 0.1):
        for sneak in np.arange(0.0, 3.01, 0.05):
            err = 0.0
            for r in rows:
                v = r["opposing_vph"] / 3600.0
                s_p = cap if v <= 0 else min(cap, v * np.exp(-v * t_c) / (1 - np.exp(-v * 2.5)))
                for g, n in zip(r["greens_s"], r["left_per_green"], strict=True):
                    err += (min(s_p * g + sneak, cap * g + sneak) - n) ** 2
            if err < best[0]:
                best = (err, float(t_c), float(sneak))
    return {"critical_gap_s": round(best[1], 2), "sneakers_per_green": round(best[2], 2),
            "unopposed_left_vph": 3600.0 * cap, "rms_veh_per_green": float(np.sqrt(best[0] / (2 * len(rows))))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True)
    ap.add_argument("--duration", type=int, default=3600)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    out: dict = {"sumo_vtype": "passenger (SUMO defaults)", "seed": args.seed, "duration_s": args.duration}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        out["platoon"] = [platoon(d, c, args.duration, args.seed, 900.0) for c in (40, 60)]
        out["discharge_mixed"] = discharge(d, (30, 60), args.duration, args.seed)
        out["discharge_through"] = discharge(d, (30, 60), args.duration, args.seed, through_only=True)
        out["permitted_left"] = permitted(d, (40, 60), (0.0, 200.0, 400.0, 600.0, 800.0), args.duration, args.seed)
        out["permitted_left"]["fit"] = fit_gap_acceptance(out["permitted_left"]["rows"], 1900.0)
        out["right_turn"] = permitted(d, (40, 60), (0.0,), args.duration, args.seed, to_edge="A0bottom0")
    plat = out["platoon"]
    thr = out["discharge_through"]
    out["derived"] = {
        "alpha": float(np.mean([p["alpha"] for p in plat])),
        "beta": float(np.mean([p["beta"] for p in plat])),
        "stop_penalty_s": float(np.mean([p["stop_loss_s"]["per_stop_s"] for p in plat])),
        "saturation_flow_per_lane_vph": float(np.mean([thr["lane0_sat_flow_vph"], thr["lane1_sat_flow_vph"]])),
        "effective_minus_displayed_green_s": float(np.mean([thr["lane0_effective_minus_displayed_green_s"],
                                                            thr["lane1_effective_minus_displayed_green_s"]])),
    }
    sat = out["derived"]["saturation_flow_per_lane_vph"]
    fit = out["permitted_left"]["fit"]
    out["derived"].update({
        "left_turn_factor": fit["unopposed_left_vph"] / sat,
        "right_turn_factor": out["right_turn"]["rows"][0]["rate_during_green_vph"] / sat,
        "critical_gap_s": fit["critical_gap_s"],
        "sneakers_per_cycle": fit["sneakers_per_green"],
    })
    out["wall_s"] = time.perf_counter() - t0
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps(out, indent=2), path)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
