"""``greenwave validate`` and ``greenwave export`` end to end on a plan greenwave optimised.

The plan comes from ``greenwave optimise`` on a generated 2×2 grid; it is validated and exported
to every format, sent by SNMP to a loopback NTCIP agent (every value read back) and by TCP/UDP
to a loopback GB/T 20999 controller. Unsafe plans (hand-made and Hypothesis mutations) are
refused by every exporter: exit code 1, nothing written, nothing sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from greenwave.controllers.export.common import quantise_plan
from greenwave.controllers.export.gbt20999 import plan_from_frames, read_frame_file
from greenwave.controllers.export.ntcip import ntcip_objects
from greenwave.controllers.export.utdf import read_utdf
from greenwave.controllers.plans.safety import validate_plan
from greenwave.controllers.plans.timing import TimingPlan
from greenwave.networks import RoadNetwork, load_network
from greenwave.scenarios.cli import main
from tests.test_gbt20999 import _Controller
from tests.test_ntcip import LoopbackAgent

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def optimised(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TimingPlan, RoadNetwork]:
    d = tmp_path_factory.mktemp("export_cli")
    toml = d / "grid.toml"
    toml.write_text('duration_s = 600\n[network]\ngenerator = "grid"\nrows = 2\ncols = 2\n[demand]\nentry_vph = 300\n')
    assert main(["optimise", str(toml), "--output", str(d / "opt")]) == 0
    path = d / "opt" / "plan.json"
    plan = TimingPlan.from_json(path)
    assert plan.net_file and Path(plan.net_file).exists()
    return path, plan, load_network(plan.net_file)


@pytest.fixture(scope="module")
def agent() -> Iterator[LoopbackAgent]:
    a = LoopbackAgent()
    yield a
    a.close()


def _unsafe(plan: TimingPlan, tmp: Path) -> Path:
    """The plan with stage 0 of its first signal given a 1 s yellow (green + 2 s)."""
    data = plan.to_dict()
    st0 = data["signals"][0]["stages"][0]
    st0["yellow_s"], st0["green_s"] = 1.0, st0["green_s"] + 2.0
    path = tmp / "unsafe.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.slow
def test_validate(optimised, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path, plan, network = optimised
    assert main(["validate", str(path)]) == 0
    assert "SAFE: 4 signals" in capsys.readouterr().out
    assert main(["validate", str(_unsafe(plan, tmp_path)), "--network", plan.net_file]) == 1
    out = capsys.readouterr().out
    sid = next(iter(plan.signals))
    assert f"UNSAFE signal {sid} stage 0 (SUMO phase 0): rule yellow" in out
    assert "rule conflicting-greens-transition" in out and "movements: link" in out
    # the yellow rule is configurable: 2.5 s yellows are unsafe by default, accepted with 2 s
    data = plan.to_dict()
    for sig in data["signals"]:
        for stage in sig["stages"]:
            stage["yellow_s"], stage["green_s"] = 2.5, stage["green_s"] + 0.5
    short = tmp_path / "short.json"
    short.write_text(json.dumps(data))
    assert main(["validate", str(short)]) == 1
    assert "yellow 2.5 s < 3 s" in capsys.readouterr().out
    assert main(["validate", str(short), "--min-yellow", "2"]) == 0
    assert main(["export", str(short), "--format", "sumo", "--output", str(tmp_path / "s.xml")]) == 1
    assert not (tmp_path / "s.xml").exists()
    # --min-yellow applies to every exporter alike (the writers validate with it again)
    for fmt, name in (("sumo", "s.xml"), ("utdf", "s.csv"), ("gbt20999", "s.gbt"), ("json", "s.json")):
        assert main(["export", str(short), "--format", fmt, "--output", str(tmp_path / name),
                     "--min-yellow", "2"]) == 0, fmt
        assert (tmp_path / name).exists(), fmt
    assert "yellow" not in capsys.readouterr().err
    assert main(["validate", str(short), "--min-yellow", "nan"]) == 1
    assert "--min-yellow must be a finite number of seconds >= 0, got nan" in capsys.readouterr().err


@pytest.mark.slow
def test_export_files(optimised, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path, plan, network = optimised
    for fmt, name in (("json", "p.json"), ("sumo", "p.add.xml"), ("utdf", "p.csv"), ("gbt20999", "p.gbt")):
        assert main(["export", str(path), "--format", fmt, "--output", str(tmp_path / name)]) == 0, fmt
        assert f"wrote {tmp_path / name}" in capsys.readouterr().out
    back = TimingPlan.from_json(tmp_path / "p.json")
    assert back == plan and validate_plan(back, network) == []
    assert (tmp_path / "p.add.xml").read_text().count("<tlLogic") == 4
    assert read_utdf(tmp_path / "p.csv", plan) == plan
    frames = read_frame_file(tmp_path / "p.gbt")
    assert plan_from_frames(frames, plan) == quantise_plan(plan)
    assert validate_plan(plan_from_frames(frames, plan), network) == []


def test_export_refuses_unsafe_plan(optimised, tmp_path: Path, agent: LoopbackAgent, capsys) -> None:  # type: ignore[no-untyped-def]
    path, plan, network = optimised
    bad = _unsafe(plan, tmp_path)
    sid = next(iter(plan.signals))
    sets = agent.sets
    for fmt in ("json", "sumo", "utdf", "gbt20999"):
        out = tmp_path / f"x.{fmt}"
        assert main(["export", str(bad), "--format", fmt, "--network", plan.net_file, "--output", str(out)]) == 1
        assert not out.exists(), fmt
        captured = capsys.readouterr()
        assert "plan is unsafe" in captured.err and "nothing written or sent" in captured.err
        assert f"UNSAFE signal {sid}" in captured.out
    assert main(["export", str(bad), "--format", "ntcip", "--to", f"{sid}=127.0.0.1:{agent.port}"]) == 1
    assert agent.sets == sets  # nothing sent


@pytest.mark.slow
def test_export_ntcip_read_back(optimised, agent: LoopbackAgent, capsys) -> None:  # type: ignore[no-untyped-def]
    path, plan, network = optimised
    a, b = list(plan.signals)[:2]
    assert main(["export", str(path), "--format", "ntcip", "--to", f"{a}=127.0.0.1:{agent.port}",
                 "--to", f"127.0.0.1:{agent.port}", "--signal", a]) == 1  # one address per signal
    assert "more than one address" in capsys.readouterr().err
    assert main(["export", str(path), "--format", "ntcip", "--to", f"127.0.0.1:{agent.port}", "--signal", b]) == 0
    out = capsys.readouterr().out
    q = quantise_plan(plan).signals[b]
    objs = ntcip_objects(q)
    assert f"signal {b}: all {len(objs)} objects read back equal to what was sent" in out
    for o in objs:
        assert agent.store[o.oid] == o.value, str(o)
        assert o.oid_str in out


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_export_gbt20999_send(optimised, tmp_path: Path, protocol: str, capsys) -> None:  # type: ignore[no-untyped-def]
    path, plan, network = optimised
    ctrl = _Controller(protocol)
    try:
        sid = list(plan.signals)[2]
        assert main(["export", str(path), "--format", "gbt20999", "--to", f"{sid}=127.0.0.1:{ctrl.port}",
                     "--protocol", protocol, "--output", str(tmp_path / "p.gbt")]) == 0
        assert f"signal {sid}: 4 frames acknowledged" in capsys.readouterr().out
        template = TimingPlan({sid: plan.signals[sid]}, net_file=plan.net_file)
        assert plan_from_frames(ctrl.frames, template).signals[sid] == quantise_plan(plan).signals[sid]
    finally:
        ctrl.close()


def test_export_errors(optimised, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path, plan, network = optimised
    assert main(["export", str(path), "--format", "utdf"]) == 1
    assert "give --output" in capsys.readouterr().err
    assert main(["export", str(path), "--format", "sumo", "--to", "127.0.0.1:1", "--signal", "A0"]) == 1
    assert "only ntcip and gbt20999 are sent" in capsys.readouterr().err
    data = plan.to_dict()
    data["net_file"] = None
    (tmp_path / "nonet.json").write_text(json.dumps(data))
    assert main(["validate", str(tmp_path / "nonet.json")]) == 1
    assert "give --network" in capsys.readouterr().err
    assert main(["export", str(path), "--format", "ntcip", "--to", "nohost"]) == 1
    assert "HOST:PORT" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# Hypothesis: no exporter writes or sends a plan that fails validation


@pytest.mark.slow
@SETTINGS
@given(data=st.data())
def test_no_exporter_emits_an_unsafe_plan(optimised, agent: LoopbackAgent, tmp_path_factory,  # type: ignore[no-untyped-def]
                                          data: st.DataObject) -> None:
    path, plan, network = optimised
    tmp = tmp_path_factory.mktemp("hyp")
    d = plan.to_dict()
    sig = data.draw(st.integers(0, len(d["signals"]) - 1))
    s = d["signals"][sig]
    k = data.draw(st.integers(0, len(s["stages"]) - 1))
    field = data.draw(st.sampled_from(["green_s", "yellow_s", "allred_s", "min_green_s", "offset_s", "cycle_s",
                                       "swap", "walk_s"]))
    delta = data.draw(st.floats(-6.0, 6.0, allow_nan=False).filter(lambda x: abs(x) > 1e-3))
    st_k = s["stages"][k]
    if field == "offset_s" or field == "cycle_s":
        s[field] += delta
    elif field == "swap":  # move time between green and yellow (cycle kept)
        st_k["yellow_s"] = max(0.0, st_k["yellow_s"] + delta)
        st_k["green_s"] -= st_k["yellow_s"] - plan.to_dict()["signals"][sig]["stages"][k]["yellow_s"]
    elif field == "walk_s":
        st_k["walk_s"], st_k["ped_clearance_s"] = 4.0, max(0.0, st_k["green_s"] - 4.0 + delta)
    else:
        st_k[field] = max(0.0, st_k[field] + delta)
        if field != "min_green_s" and data.draw(st.booleans()):  # keep the cycle sum
            other = s["stages"][(k + 1) % len(s["stages"])]
            other["green_s"] -= delta
    mutated = tmp / "m.json"
    mutated.write_text(json.dumps(d))
    candidate = TimingPlan.from_dict(d)
    safe = not validate_plan(candidate, network)
    event(f"mutated plan safe: {safe}")
    sets = agent.sets
    for fmt, name in (("json", "o.json"), ("sumo", "o.add.xml"), ("utdf", "o.csv"), ("gbt20999", "o.gbt")):
        out = tmp / name
        rc = main(["export", str(mutated), "--format", fmt, "--output", str(out)])
        if not safe:
            assert rc == 1 and not out.exists(), (fmt, field)
        elif rc == 0:
            # what was written validates
            if fmt == "json":
                assert validate_plan(TimingPlan.from_json(out), network) == []
            elif fmt == "utdf":
                assert validate_plan(read_utdf(out, candidate), network) == []
            elif fmt == "gbt20999":
                assert validate_plan(plan_from_frames(read_frame_file(out), candidate), network) == []
        else:  # a safe plan may only fail for a format limit (e.g. a cycle too long)
            assert not out.exists()
    sid = d["signals"][sig]["id"]
    rc = main(["export", str(mutated), "--format", "ntcip", "--to", f"{sid}=127.0.0.1:{agent.port}"])
    if not safe:
        assert rc == 1 and agent.sets == sets
    elif rc == 0:
        q = quantise_plan(candidate)
        assert validate_plan(q, network) == []
        assert all(agent.store[o.oid] == o.value for o in ntcip_objects(q.signals[sid]))


def test_export_bad_output_and_timeout(optimised, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Bad arguments give one clear line (file or option named), exit 1, never a traceback."""
    path, plan, network = optimised
    for fmt in ("json", "sumo", "utdf", "gbt20999"):
        assert main(["export", str(path), "--format", fmt, "--output", str(tmp_path)]) == 1, fmt
        err = capsys.readouterr().err
        assert f"--output {tmp_path}: is a folder, expected a file name" in err and "Traceback" not in err
    for bad in ("0", "-1", "nan"):
        assert main(["export", str(path), "--format", "ntcip", "--to", "A0=127.0.0.1:161", "--timeout", bad]) == 1
        assert "--timeout: expected a number of seconds > 0" in capsys.readouterr().err


def test_conflicting_movements_in_the_json_are_refused(optimised, tmp_path: Path, agent: LoopbackAgent,  # type: ignore[no-untyped-def]
                                                      capsys) -> None:
    """A plan edited so that a stage's signal group also drives a conflicting movement."""
    path, plan, network = optimised
    data = plan.to_dict()
    s = data["signals"][0]
    sid = s["id"]
    sig = network.signals[sid]
    lanes = [{x.to_lane for x in (m, *m.merged)} for m in sig.movements]
    extra = next(b for b in s["stages"][1]["links"]
                 if any(sig.conflicts[a, b] and not lanes[a] & lanes[b] for a in s["stages"][0]["links"]))
    s["stages"][0]["links"].append(extra)
    bad = tmp_path / "conflict.json"
    bad.write_text(json.dumps(data))
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"UNSAFE signal {sid} stage 0 (SUMO phase 0): rule conflicting-greens" in out
    sets = agent.sets
    for fmt in ("json", "sumo", "utdf", "gbt20999"):
        assert main(["export", str(bad), "--format", fmt, "--output", str(tmp_path / f"c.{fmt}")]) == 1, fmt
        assert not (tmp_path / f"c.{fmt}").exists()
    assert main(["export", str(bad), "--format", "ntcip", "--to", f"{sid}=127.0.0.1:{agent.port}"]) == 1
    assert agent.sets == sets
    assert "nothing written or sent" in capsys.readouterr().err
