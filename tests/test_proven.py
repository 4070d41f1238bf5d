"""The ``proven`` controller: per signal the best of SUMO's and greenwave's control, chosen by
proof in SUMO on the run's demand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenwave._sumo import sumo_home
from greenwave.controllers.base import controller_kind, make_controller
from greenwave.controllers.proof import ProofRun
from greenwave.controllers.proof_race import KEEP_LEVEL, OWN, close_rivals, keep_own, own_in_race
from greenwave.controllers.proven import CANDIDATES, Candidate, choose_per_signal, mixture_programs
from greenwave.controllers.tls_xml import read_programs
from greenwave.errors import ScenarioError


def test_each_signal_gets_the_candidate_whose_approaches_lost_least() -> None:
    losses = {"static": {"a": 100.0, "b": 50.0, "c": 10.0},
              "delay_based": {"a": 60.0, "b": 70.0, "c": 10.0},
              "sumo-rebuilt-delay_based": {"a": 80.0, "c": 9.0},  # b: no rebuilt program
              "optimised": {"b": 40.0, "c": float("nan")}}
    assert choose_per_signal(losses) == {"a": "delay_based", "b": "optimised", "c": "sumo-rebuilt-delay_based"}


def test_a_tie_goes_to_the_simplest_candidate() -> None:
    losses = {"optimised": {"a": 5.0}, "sumo-rebuilt-static": {"a": 5.0}, "actuated": {"a": 5.0}}
    assert choose_per_signal(losses) == {"a": "actuated"}
    assert choose_per_signal({**losses, "static": {"a": 5.0}}) == {"a": "static"}
    assert CANDIDATES[0] == "static"


def test_a_candidate_that_starves_a_signal_does_not_compete_for_it() -> None:
    """A candidate whose approaches of a signal saw fewer than SERVED_SHARE of the most vehicles
    any program candidate brought there is not chosen for it, however little time they lost
    (square's own programs gridlock and starve four signals); a stepping candidate's count does
    not take the choice away from every program."""
    from greenwave.controllers.proven import SERVED_SHARE

    losses = {"static": {"a": 0.0, "b": 10.0}, "optimised": {"a": 200.0, "b": 20.0}}
    entered = {"static": {"a": 10.0, "b": 400.0}, "optimised": {"a": 450.0, "b": 400.0},
               "max_pressure": {"a": 460.0, "b": 410.0}}
    assert choose_per_signal(losses) == {"a": "static", "b": "static"}
    assert choose_per_signal(losses, entered=entered) == {"a": "optimised", "b": "static"}
    assert 10.0 < SERVED_SHARE * 450.0
    # the share is of the most a program candidate brought: one always competes
    assert choose_per_signal(losses, entered={**entered, "max_pressure": {"a": 900.0, "b": 900.0}}) == \
        {"a": "optimised", "b": "static"}


def test_the_left_alone_variant_leaves_signals_where_a_program_beat_max_pressure(tmp_path: Path) -> None:
    """Besides the signals max_pressure cannot drive, the variant leaves alone those whose chosen
    program lost at least LEAVE_ALONE_GAIN less than max_pressure on their approaches."""
    import xml.etree.ElementTree as ET

    from greenwave.controllers.proven import LEAVE_ALONE_GAIN, _left_alone_variant

    (tmp_path / "max_pressure_seed7").mkdir()  # its proof left no signal alone
    own = {s: ET.fromstring(f'<tlLogic id="{s}" programID="0" type="static"><phase duration="9" state="G"/>'
                            '</tlLogic>') for s in "abc"}
    actuated = _programs_file(tmp_path / "a.xml", "gw_actuated", ["a", "b", "c"])
    cands = {"static": Candidate("static", None, frozenset("abc")),
             "actuated": Candidate("actuated", actuated, frozenset("abc"))}
    means = {"max_pressure": 10.0, "static": 12.0, "actuated": 11.0}
    choice = {"a": "actuated", "b": "static", "c": "actuated"}
    gain = 1.0 - LEAVE_ALONE_GAIN
    losses = {"max_pressure": {"a": 100.0, "b": 100.0, "c": 100.0},
              "actuated": {"a": 100.0 * gain - 1.0, "b": 120.0, "c": 100.0 * gain + 1.0},
              "static": {"a": 130.0, "b": 100.0 * gain + 1.0, "c": 130.0}}
    got = _left_alone_variant(means, choice, own, cands, tmp_path, 7, losses)
    assert got is not None
    name, path, picks = got
    assert name == "max_pressure+left-alone" and picks == {"a": "actuated"}  # b and c: their programs within 5 %
    assert {s: el.get("programID") for s, el in read_programs(path).items()} == {"a": "gw_actuated"}
    assert _left_alone_variant(means, choice, own, cands, tmp_path, 7) is None  # without losses: none
    better = {**losses, "static": {**losses["static"], "b": 90.0}}
    got = _left_alone_variant(means, choice, own, cands, tmp_path, 7, better)
    assert got is not None and got[2] == {"a": "actuated", "b": "static"}
    every = {"max_pressure": {s: 200.0 for s in "abc"}}
    assert _left_alone_variant(means, choice, own, cands, tmp_path, 7, {**losses, **every}) is None  # all: the mixture


def _programs_file(path: Path, program_id: str, signals: list[str]) -> Path:
    logics = "".join(f'<tlLogic id="{s}" type="static" programID="{program_id}" offset="0">'
                     f'<phase duration="30" state="Gr"/><phase duration="30" state="rG"/></tlLogic>'
                     for s in signals)
    path.write_text(f"<additional>{logics}</additional>", encoding="utf-8")
    return path


def test_the_mixture_holds_each_signals_chosen_program(tmp_path: Path) -> None:
    delay = _programs_file(tmp_path / "d.xml", "gw_delay_based", ["a", "b", "c"])
    cands = {"static": Candidate("static", None, frozenset("abc")),
             "delay_based": Candidate("delay_based", delay, frozenset("abc")),
             "optimised": Candidate("optimised", _programs_file(tmp_path / "o.xml", "gw_optimised", ["b"]),
                                    frozenset("b"))}
    out = mixture_programs({"a": "delay_based", "b": "optimised", "c": "static"}, cands, tmp_path / "mix.xml")
    assert out is not None
    got = {sid: el.get("programID") for sid, el in read_programs(out).items()}
    assert got == {"a": "gw_delay_based", "b": "gw_optimised"}  # c keeps the network's own: not loaded
    assert mixture_programs({"a": "static"}, cands, tmp_path / "none.xml") is None


def _runs(variant: str, delays: list[float]) -> list[ProofRun]:
    return [ProofRun(variant, 100 + k, d, d, 0, 0, {}) for k, d in enumerate(delays)]


def test_races_only_what_the_seeds_cannot_tell_apart() -> None:
    runs = {"best": _runs("best", [20.0, 30.0]),
            "close": _runs("close", [21.0, 29.5]),  # mean +0.25, the seeds disagree: raced
            "clear": _runs("clear", [25.0, 36.0]),  # worse by 5-6 s on both seeds: not raced
            "same": _runs("same", [20.0, 30.0]),  # the best's programs again: not raced
            "twin": _runs("twin", [21.0, 29.5]),  # what "close" measured: raced once
            "short": _runs("short", [20.5])}  # not on every seed
    assert close_rivals(runs, "best") == ["close"]
    assert close_rivals({"best": runs["best"][:1], "close": runs["close"][:1]}, "best") == []
    # rivals of the best race, not rivals of rivals
    chain = {"best": _runs("best", [20.0, 30.0]), "scattered": _runs("scattered", [40.0, 30.0]),
             "steady": _runs("steady", [27.0, 33.0])}
    assert close_rivals(chain, "best") == ["scattered"]
    # paired by seed: runs on other seeds are no rival, whatever they measured
    other = [ProofRun("other", 200 + k, d, d, 0, 0, {}) for k, d in enumerate([20.5, 29.0])]
    assert close_rivals({"best": runs["best"], "other": other}, "best") == []
    # noisier seeds keep a bigger difference in the race; more seeds settle it
    wide = {"best": _runs("best", [20.0, 60.0]), "worse": _runs("worse", [40.0, 50.0])}
    assert close_rivals(wide, "best") == ["worse"]
    wide = {"best": _runs("best", [20.0, 60.0, 30.0, 45.0]), "worse": _runs("worse", [40.0, 50.0, 41.0, 52.0])}
    assert close_rivals(wide, "best") == []


def test_the_network_keeps_its_own_programs_unless_the_seeds_show_better() -> None:
    """fkk_in's gridlock (one hour, proof seeds of seed 2): delay_based had the least mean, but
    its seeds scatter either side of the own programs: they are kept. A steady gain of a few
    s/veh on two seeds is shown (RiLSA 4: 6.1 and 7.3 s/veh); one seed shows nothing."""
    own = [272.4, 864.3, 783.7, 287.0, 473.1, 538.8]
    delay = [446.7, 325.1, 377.2, 471.6, 352.1, 732.3]
    runs = {OWN: _runs(OWN, own), "delay_based": _runs("delay_based", delay)}
    assert sum(delay) < sum(own)
    kept = keep_own(runs, "delay_based")
    assert kept is not None and kept["instead_of"] == "delay_based" and kept["level"] == KEEP_LEVEL
    assert kept["seeds"] == [100, 101, 102, 103, 104, 105]
    assert kept["own_mean_resco_delay_s"] == pytest.approx(sum(own) / 6)
    steady = {OWN: _runs(OWN, [30.0, 31.3]), "optimised-delay_based": _runs("optimised-delay_based", [23.9, 24.0])}
    assert keep_own(steady, "optimised-delay_based") is None
    assert keep_own(steady, OWN) is None
    assert keep_own({"actuated": steady[OWN]}, "actuated") is None  # no own programs in the proof
    assert keep_own({OWN: _runs(OWN, [40.0]), "x": _runs("x", [10.0])}, "x") is None  # one seed: no test
    # the own programs race on while some racer is not shown better than them
    by_seed = {v: {r.seed: r.resco_delay_s for r in rs} for v, rs in runs.items()}
    assert own_in_race(by_seed, ["delay_based"])
    by_seed = {v: {r.seed: r.resco_delay_s for r in rs} for v, rs in steady.items()}
    assert not own_in_race(by_seed, ["optimised-delay_based"])
    assert not own_in_race(by_seed, [OWN])
    by_seed["monaco"] = {100: 30.0 - 16.4, 101: 31.3 - 23.4}  # better on both, not yet at 95 %
    assert own_in_race(by_seed, ["optimised-delay_based", "monaco"])
    by_seed["twin"] = dict(by_seed[OWN])  # a racer running the own programs (rebuilt static = own): not better
    assert own_in_race(by_seed, ["twin", "optimised-delay_based"])
    assert not own_in_race({OWN: {1: 40.0}, "x": {1: 39.0}}, ["x"])  # one seed: no race


def test_proven_is_a_greenwave_controller_with_checked_options() -> None:
    assert controller_kind("proven") == "greenwave"
    with pytest.raises(ScenarioError, match="proof_seeds"):
        make_controller("proven", {"proof_seeds": 0}).programs(None)  # type: ignore[arg-type]
    with pytest.raises(ScenarioError, match="candidates"):
        make_controller("proven", {"candidates": ["static", "webster"]}).programs(None)  # type: ignore[arg-type]
    with pytest.raises(ScenarioError, match="unknown options"):
        make_controller("proven", {"seeds": 2}).programs(None)  # type: ignore[arg-type]
    with pytest.raises(ScenarioError, match=r"max_proof_seeds must be an integer from proof_seeds \(3\) to 20"):
        make_controller("proven", {"proof_seeds": 3, "max_proof_seeds": 2}).programs(None)  # type: ignore[arg-type]


@pytest.mark.slow
def test_sumo_runs_each_signals_program_from_the_mixture(tmp_path: Path) -> None:
    """SUMO's corridor (three signals): a mixture of SUMO's delay-based copy of one signal's own
    program, SUMO's rebuilt static program of another and the own program of the third is what
    SUMO runs (the last loaded program of a light is active)."""
    from greenwave.controllers.rebuilt_programs import rebuilt_programs
    from greenwave.controllers.sumo_programs import actuated_programs
    from greenwave.engine.session import SessionConfig, SumoSession

    net = sumo_home() / "tools" / "game" / "corridor" / "corridor.net.xml"
    own = read_programs(net)
    a, b, c = sorted(own)
    delay = actuated_programs(net, workdir=tmp_path / "d", kind="delay_based")
    rebuilt = rebuilt_programs(net, workdir=tmp_path / "r", tls_type="static")
    cands = {"static": Candidate("static", None, frozenset(own)),
             "delay_based": Candidate("delay_based", delay, frozenset(own)),
             "sumo-rebuilt-static": Candidate("sumo-rebuilt-static", rebuilt.path, frozenset(rebuilt.rebuilt))}
    assert b in rebuilt.rebuilt
    mix = mixture_programs({a: "delay_based", b: "sumo-rebuilt-static", c: "static"}, cands, tmp_path / "mix.xml")
    assert mix is not None
    with SumoSession(SessionConfig(net_file=net, route_files=(), additional_files=(mix,), end_s=10.0,
                                   log_file=tmp_path / "sumo.log")) as sim:
        ran = {s: sim.conn.trafficlight.getProgram(s) for s in own}
    assert ran == {a: "gw_delay_based", b: "gw_rebuilt_static", c: own[c].get("programID", "0")}


CROSS = {"network": {"file": "sumo:tools/game/cross/cross.net.xml"},
         "demand": {"entry_vph": 600, "turn_left": 0.2, "turn_right": 0.15}}


@pytest.mark.slow
def test_proven_runs_the_best_it_proved_and_records_why(tmp_path: Path) -> None:
    """SUMO's cross junction: proven writes proven.json, SUMO runs the program it chose, and on
    the proof seeds it is no worse than any candidate run uniformly."""
    from greenwave.scenarios.runner import run_scenario
    from greenwave.scenarios.spec import scenario_from_dict

    candidates = ["static", "actuated", "delay_based", "sumo-rebuilt-static", "sumo-rebuilt-delay_based"]
    sc = scenario_from_dict({"name": "cross", "duration_s": 300, "seeds": [1], "controllers": ["proven"],
                             "controller_options": {"proven": {"candidates": candidates}}, **CROSS})
    summary = run_scenario(sc, tmp_path)
    assert summary.loc[0, "status"] == "ok"
    run = tmp_path / "runs" / "proven_seed1"
    record = json.loads((run / "proven.json").read_text())
    means = record["mean_resco_delay_s"]
    assert set(candidates) <= set(means)
    assert record["decision"] == summary.loc[0, "proven_choice"]
    seeds = record["proof_seeds"]
    assert len(seeds) in (2, 4, 6) and 1 not in seeds  # two, and more where a race was close
    by_seed = record["resco_delay_s_by_seed"]
    full = [v for v in means if len(by_seed[v]) == len(seeds)]  # the best and the close rivals
    best = min(full, key=lambda v: means[v])
    if "kept_own" in record:  # the seeds did not show the best better than the own programs
        assert record["decision"] == "static" and record["kept_own"]["instead_of"] == best
    else:
        assert means[record["decision"]] == means[best]
    for race in record["raced"]:  # the own programs race while not shown worse, and may drop out later
        rivals = set(race["rivals"]) - ({"static"} if race.get("own_not_yet_beaten") else set())
        assert race["best_so_far"] in full and rivals <= set(full)
    (sid, per), = record["signals"].items()
    assert set(per["loss_veh_s"]) == set(candidates)
    assert per["chosen"] == min(per["loss_veh_s"], key=lambda c: (per["loss_veh_s"][c], CANDIDATES.index(c)))
    assert per["sumo_program_id"] == per["program_id"]  # what SUMO ran is what proven chose
    text = (run / "proven.txt").read_text()
    assert f"{sid}: runs {per['runs']}" in text


@pytest.mark.slow
@pytest.mark.parametrize("stepping", ["max_pressure", "max_pressure-short-hold", "max_pressure_cyclic", "schedule"])
def test_proven_hands_the_run_to_a_stepping_candidate_it_proved_best(tmp_path: Path, stepping: str,
                                                                     capfd: pytest.CaptureFixture[str]) -> None:
    """SUMO's cross junction, static against a max_pressure candidate: its proof runs step
    libsumo in fresh processes; chosen, it drives the scored run exactly as the max_pressure
    controller with the candidate's options does on the same seed (same delay, same switches),
    and proven.json says so."""
    from greenwave.controllers.proven import STEPPING_CONTROLLERS
    from greenwave.scenarios.runner import run_scenario
    from greenwave.scenarios.spec import scenario_from_dict

    controller, options = STEPPING_CONTROLLERS[stepping]
    sc = scenario_from_dict({"name": "cross", "duration_s": 300, "seeds": [1],
                             "controllers": ["proven", controller],
                             "controller_options": {"proven": {"candidates": ["static", stepping]},
                                                    controller: options}, **CROSS})
    summary = run_scenario(sc, tmp_path).set_index("controller")
    assert (summary["status"] == "ok").all()
    record = json.loads((tmp_path / "runs" / "proven_seed1" / "proven.json").read_text())
    means = record["mean_resco_delay_s"]
    assert set(means) == {"static", stepping}
    assert means[stepping] < means["static"]
    assert record["decision"] == summary.loc["proven", "proven_choice"] == stepping
    (_, per), = record["signals"].items()
    assert per["runs"] == per["program_id"] == stepping
    for col in ("resco_delay_s", "vehicles_arrived", "signal_switches"):
        assert summary.loc["proven", col] == summary.loc[controller, col]
    assert summary.loc["proven", "signal_switches"] > 0
    out = capfd.readouterr().out  # nothing of the proofs' SUMO in the output
    assert "Retrying" not in out and "Loading net-file" not in out, out[-500:]
    proofs = tmp_path / "runs" / "proven_seed1" / "proven"
    # what the stepping proofs' SUMO said, per proof seed (two, four where the own programs raced on)
    assert len(list(proofs.rglob("sumo.console.log"))) == len(record["proof_seeds"])


@pytest.mark.slow
def test_proof_jobs_run_the_same_proofs_at_once(tmp_path: Path) -> None:
    """proof_jobs > 1 runs the program candidates' proofs side by side (SUMO subprocesses) while
    the stepping one steps: every proof measures what it measures one at a time, so the record
    and the decision are the same."""
    from greenwave.scenarios.runner import run_scenario
    from greenwave.scenarios.spec import scenario_from_dict

    records = []
    for jobs in (1, 3):
        options = {"candidates": ["static", "actuated", "sumo-rebuilt-static", "max_pressure"], "proof_jobs": jobs}
        sc = scenario_from_dict({"name": "cross", "duration_s": 300, "seeds": [1], "controllers": ["proven"],
                                 "controller_options": {"proven": options}, **CROSS})
        summary = run_scenario(sc, tmp_path / f"jobs{jobs}")
        assert summary.loc[0, "status"] == "ok"
        records.append(json.loads((tmp_path / f"jobs{jobs}" / "runs" / "proven_seed1" / "proven.json").read_text()))
    one, three = records
    assert one["resco_delay_s_by_seed"] == three["resco_delay_s_by_seed"]
    assert list(one["mean_resco_delay_s"]) == list(three["mean_resco_delay_s"])  # candidates' order kept
    assert one["decision"] == three["decision"] and one["signals"] == three["signals"]
    with pytest.raises(ScenarioError, match="proof_jobs"):
        make_controller("proven", {"proof_jobs": 0}).programs(None)  # type: ignore[arg-type]


@pytest.mark.slow
def test_proven_in_a_daemonic_worker_proves_over_traci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where proven may not start processes (a daemonic worker of another executor), its stepping
    proofs step SUMO over TraCI in its own process instead, and prove the same figures."""
    import types
    from concurrent.futures import ThreadPoolExecutor

    import greenwave.controllers.proven as proven_module
    from greenwave.scenarios.runner import run_scenario
    from greenwave.scenarios.spec import scenario_from_dict

    sc = scenario_from_dict({"name": "cross", "duration_s": 300, "seeds": [1], "controllers": ["proven"],
                             "controller_options": {"proven": {"candidates": ["static", "max_pressure"]}}, **CROSS})
    assert (run_scenario(sc, tmp_path / "fresh")["status"] == "ok").all()
    daemonic = types.SimpleNamespace(daemon=True)
    monkeypatch.setattr(proven_module.multiprocessing, "current_process", lambda: daemonic)
    monkeypatch.setattr(proven_module, "ProcessExecutor", lambda *a, **k: pytest.fail("a daemon started processes"))
    with ThreadPoolExecutor(1) as here:  # the run in this process, where the patch holds
        assert (run_scenario(sc, tmp_path / "daemon", executor=here)["status"] == "ok").all()
    fresh, daemon = (json.loads((tmp_path / d / "runs" / "proven_seed1" / "proven.json").read_text())
                     for d in ("fresh", "daemon"))
    assert daemon["resco_delay_s_by_seed"] == fresh["resco_delay_s_by_seed"]
    assert daemon["decision"] == fresh["decision"]


@pytest.mark.slow
def test_proven_flags_a_sumo_program_greenwaves_checks_find_unsafe(tmp_path: Path) -> None:
    """Braunschweig's fokr junction: the city's plan greens links SUMO marks as foes, and so does
    netconvert's rebuilt program (through an indirect turn's second half). proven may still run
    the program its proof found best, but proven.json and proven.txt say what greenwave's own
    checks find in it; on SUMO's cross junction nothing is flagged."""
    from greenwave.scenarios.runner import run_scenario
    from greenwave.scenarios.spec import scenario_from_dict

    options = {"proven": {"candidates": ["static", "sumo-rebuilt-delay_based"]}}
    sc = scenario_from_dict({"name": "fokr", "duration_s": 120, "seeds": [1], "controllers": ["proven"],
                             "controller_options": options,
                             "demand": {"sumocfg": "sumo:tools/game/fokr_bs_demo.sumocfg"}})
    assert run_scenario(sc, tmp_path / "fokr").loc[0, "status"] == "ok"
    run = tmp_path / "fokr" / "runs" / "proven_seed1"
    per = json.loads((run / "proven.json").read_text())["signals"]["38"]
    assert per["runs"] in options["proven"]["candidates"]
    assert "conflicting priority greens" in per["greenwave_checks"]
    assert "38: greenwave's checks flag the program it runs" in (run / "proven.txt").read_text()
    sc = scenario_from_dict({"name": "cross", "duration_s": 120, "seeds": [1], "controllers": ["proven"],
                             "controller_options": options, **CROSS})
    assert run_scenario(sc, tmp_path / "cross").loc[0, "status"] == "ok"
    signals = json.loads((tmp_path / "cross" / "runs" / "proven_seed1" / "proven.json").read_text())["signals"]
    assert not [s for s, per in signals.items() if "greenwave_checks" in per]


def test_the_left_alone_variant_needs_signals_max_pressure_leaves_on_another_program(tmp_path: Path) -> None:
    """proven proves max_pressure+left-alone only where the better max_pressure candidate left
    signals alone (its proof's excluded_signals.txt, read back as written) and the per-signal
    choice put some of them on something else than SUMO's actuated copy, and not every signal
    (that is the mixture, proved already)."""
    import xml.etree.ElementTree as ET

    from greenwave.controllers.plans.safety import read_excluded, write_excluded
    from greenwave.controllers.proven import _left_alone_variant

    proof = tmp_path / "max_pressure_seed7"
    proof.mkdir()
    write_excluded({"a": "its program greens foes: (1, 2)"}, proof / "excluded_signals.txt", "not safe")
    assert read_excluded(proof / "excluded_signals.txt") == {"a": "its program greens foes: (1, 2)"}
    assert read_excluded(tmp_path / "none.txt") == {}
    own = {s: ET.fromstring(f'<tlLogic id="{s}" programID="0" type="static"><phase duration="9" state="G"/>'
                            '</tlLogic>') for s in "ab"}
    delay = _programs_file(tmp_path / "d.xml", "gw_delay_based", ["a", "b"])
    cands = {"static": Candidate("static", None, frozenset("ab")),
             "delay_based": Candidate("delay_based", delay, frozenset("ab"))}
    means = {"max_pressure": 10.0, "max_pressure-short-hold": 11.0, "static": 12.0}
    got = _left_alone_variant(means, {"a": "delay_based", "b": "static"}, own, cands, tmp_path, 7)
    assert got is not None
    name, path, picks = got
    assert name == "max_pressure+left-alone" and picks == {"a": "delay_based"}
    assert {s: el.get("programID") for s, el in read_programs(path).items()} == {"a": "gw_delay_based"}
    got = _left_alone_variant(means, {"a": "static", "b": "static"}, own, cands, tmp_path, 7)
    assert got is not None and read_programs(got[1])["a"].get("programID") == "proven_own"
    assert _left_alone_variant(means, {"a": "actuated", "b": "static"}, own, cands, tmp_path, 7) is None
    assert _left_alone_variant({"static": 12.0}, {"a": "delay_based"}, own, cands, tmp_path, 7) is None
    write_excluded({"a": "x", "b": "y"}, proof / "excluded_signals.txt", "not safe")
    assert _left_alone_variant(means, {"a": "delay_based", "b": "static"}, own, cands, tmp_path, 7) is None


@pytest.mark.slow
def test_a_gridlock_keeps_the_networks_own_programs_without_proof(tmp_path: Path) -> None:
    """fkk_in (Ingolstadt, the game's one hour, a gridlock): on seed 1's two proof seeds SUMO's
    delay-based copy of the own programs has the least mean delay (526.3 against 528.0 s/veh),
    but its seeds scatter either side of the own programs': not better at one-sided 95 %, so the
    network keeps its own programs, SUMO runs exactly them, and proven.json and proven.txt say why."""
    from greenwave.controllers.proof_race import KEEP_LEVEL
    from greenwave.scenarios.runner import run_scenario
    from greenwave.scenarios.spec import scenario_from_dict
    from greenwave.scenarios.sumocfg import portable_sumocfg

    cfg = portable_sumocfg(sumo_home() / "tools" / "game" / "fkk_in.sumocfg", tmp_path / "inputs" / "game.sumocfg")
    options = {"candidates": ["static", "actuated", "delay_based"], "max_proof_seeds": 2}
    sc = scenario_from_dict({"name": "fkk_in", "duration_s": 3600, "seeds": [1], "controllers": ["proven", "static"],
                             "controller_options": {"proven": options}, "demand": {"sumocfg": str(cfg)}})
    summary = run_scenario(sc, tmp_path).set_index("controller")
    assert (summary["status"] == "ok").all()
    run = tmp_path / "runs" / "proven_seed1"
    record = json.loads((run / "proven.json").read_text())
    means = record["mean_resco_delay_s"]
    kept = record["kept_own"]
    assert kept["instead_of"] == min(means, key=lambda v: means[v]) != "static"
    assert kept["seeds"] == record["proof_seeds"] and kept["level"] == KEEP_LEVEL
    assert kept["own_mean_resco_delay_s"] == pytest.approx(means["static"])
    assert record["decision"] == summary.loc["proven", "proven_choice"] == "static"
    assert summary.loc["proven", "proven_signals_changed"] == 0
    assert all(per["runs"] == "static" and per["sumo_program_id"] == per["program_id"]
               for per in record["signals"].values())
    assert summary.loc["proven", "resco_delay_s"] == summary.loc["static", "resco_delay_s"]  # the same programs ran
    assert "the network's own programs, kept" in (run / "proven.txt").read_text()
