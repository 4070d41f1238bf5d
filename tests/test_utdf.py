"""Synchro UTDF export/import of timing plans (greenwave.controllers.export.utdf)."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from greenwave.controllers.export.utdf import NEMA_PHASES, read_utdf, stage_phase_numbers, write_utdf
from greenwave.controllers.plans.arrays import plan_from_network
from greenwave.controllers.plans.safety import assert_safe
from greenwave.controllers.plans.timing import SignalTiming, StageTiming, TimingPlan
from greenwave.errors import PlanError
from greenwave.networks import RoadNetwork, load_network
from greenwave.networks.compile import compile_network
from greenwave.networks.generate import grid_network

_NO_FLOWS = pd.DataFrame(columns=["from_edge", "to_edge", "vehicles", "flow_vph"])


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[RoadNetwork, TimingPlan]:
    path = grid_network(tmp_path_factory.mktemp("utdf") / "g.net.xml", rows=2, cols=2, lanes=2)
    network = load_network(path)
    return network, plan_from_network(network, compile_network(network, _NO_FLOWS))


def _retimed(plan: TimingPlan) -> TimingPlan:
    """``plan`` with other offsets and greens (1.3 s moved between stages 0 and 1), still valid."""
    signals = {}
    for n, (sid, t) in enumerate(plan.signals.items()):
        stages = list(t.stages)
        shift = 1.3 if n % 2 == 0 else -0.7
        stages[0] = dataclasses.replace(stages[0], green_s=stages[0].green_s + shift)
        stages[1] = dataclasses.replace(stages[1], green_s=stages[1].green_s - shift)
        offset = (t.offset_s + 7.25 * (n + 1)) % t.cycle_s
        signals[sid] = dataclasses.replace(t, offset_s=offset, stages=tuple(stages))
    return TimingPlan(signals, {"source": "test", "n": 1}, net_file=plan.net_file)


def _assert_same(a: TimingPlan, b: TimingPlan) -> None:
    assert list(a.signals) == list(b.signals)
    for sid, ta in a.signals.items():
        tb = b.signals[sid]
        assert (ta.signal_id, ta.program_id) == (tb.signal_id, tb.program_id)
        assert ta.cycle_s == pytest.approx(tb.cycle_s, abs=1e-9)
        assert ta.offset_s == pytest.approx(tb.offset_s, abs=1e-9)
        assert len(ta.stages) == len(tb.stages)
        for sa, sb in zip(ta.stages, tb.stages, strict=True):
            assert sa.phase_index == sb.phase_index
            for f in ("green_s", "yellow_s", "allred_s", "min_green_s"):
                assert getattr(sa, f) == pytest.approx(getattr(sb, f), abs=1e-9)
    assert a.meta == b.meta


def test_round_trip(grid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    network, own = grid
    plan = _retimed(own)
    assert plan != own
    assert_safe(plan, network)
    out = write_utdf(plan, network, tmp_path / "plan.csv")
    assert out == tmp_path / "plan.csv"
    back = read_utdf(out, own)
    _assert_same(plan, dataclasses.replace(back, meta=plan.meta))
    assert back.meta == own.meta  # meta comes from the template
    # shortest-repr floats: the round trip is exact
    assert dataclasses.replace(back, meta=plan.meta) == plan
    # no temporary files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.csv"]


def test_file_layout(grid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    network, own = grid
    plan = _retimed(own)
    out = write_utdf(plan, network, tmp_path / "plan.csv")
    text = out.read_text(encoding="utf-8")
    lines = text.splitlines()
    for name, header in (
        ("[Network]", "RECORDNAME,DATA"),
        ("[Timeplans]", "RECORDNAME,INTID,DATA"),
        ("[Phases]", "RECORDNAME,INTID,D1,D2,D3,D4,D5,D6,D7,D8"),
    ):
        i = lines.index(name)
        assert lines[i + 1] == header
    assert "UTDF VERSION,8" in lines
    rows = list(csv.reader(text.splitlines()))
    mapping = {r[0]: r[1] for r in rows if r and r[0].startswith("INTID ")}
    assert mapping == {f"INTID {n}": sid for n, sid in enumerate(plan.signals, start=1)}
    data = {(r[0], r[1]): r[2:] for r in rows if len(r) >= 3}
    for n, (_sid, t) in enumerate(plan.signals.items(), start=1):
        nid = str(n)
        assert data[("Control Type", nid)] == ["Pretimed"]
        assert data[("Referenced To", nid)] == ["Begin of Green"]
        assert data[("Reference Phase", nid)] == ["2"]
        assert float(data[("Cycle Length", nid)][0]) == t.cycle_s
        assert float(data[("Offset", nid)][0]) == t.offset_s
        nums = stage_phase_numbers(t)
        assert nums == NEMA_PHASES[: len(t.stages)] and nums[0] == 2
        for st, ph in zip(t.stages, nums, strict=True):
            assert float(data[("Split", nid)][ph - 1]) == pytest.approx(st.green_s + st.yellow_s + st.allred_s)
            assert float(data[("MaxGreen", nid)][ph - 1]) == st.green_s
            assert float(data[("Yellow", nid)][ph - 1]) == st.yellow_s
            assert float(data[("AllRed", nid)][ph - 1]) == st.allred_s
            assert float(data[("MinGreen", nid)][ph - 1]) == st.min_green_s
        unused = [p for p in range(1, 9) if p not in nums]
        assert all(data[("Split", nid)][p - 1] == "" for p in unused)


def test_unsafe_plan_is_never_written(grid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    network, own = grid
    sid, timing = next(iter(own.signals.items()))
    stages = list(timing.stages)
    cut = stages[0].yellow_s - 1.0
    stages[0] = dataclasses.replace(stages[0], yellow_s=1.0, green_s=stages[0].green_s + cut)
    bad = dataclasses.replace(own, signals={**own.signals, sid: dataclasses.replace(timing, stages=tuple(stages))})
    out = tmp_path / "bad.csv"
    with pytest.raises(PlanError, match="yellow"):
        write_utdf(bad, network, out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_more_than_eight_stages_names_the_signal() -> None:
    st = StageTiming(0, 10.0, 3.0, 0.0, 5.0)
    t = SignalTiming("big", "0", 117.0, 0.0, tuple(dataclasses.replace(st, phase_index=i) for i in range(9)))
    with pytest.raises(PlanError, match="'big'.*9 stages"):
        stage_phase_numbers(t)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda s: s.replace("[Phases]", "[Phasez]"), r"section \[Phases\]: missing"),
        (lambda s: s.replace("Cycle Length,1,", "Cycle Length,1,abc"), r"\[Timeplans\]: record 'Cycle Length'"),
        (lambda s: s.replace("UTDF VERSION,8", "UTDF VERSION,7"), r"\[Network\]: record 'UTDF VERSION'"),
        (lambda s: s.replace("Offset,2,", "Offset,99,"), r"\[Timeplans\]: record 'Offset'.*INTID 99"),
        (lambda s: s.replace("INTID 1,", "INTID 1,nosuch"), r"\[Network\]: record 'INTID 1'.*template"),
        (lambda s: s.replace("\nSplit,1,,", "\nSplit,1,,1"), r"\[Phases\]: record 'Split'"),
        (lambda s: "junk\n" + s, r"record 'junk' before any \[Section\]"),
        (lambda s: "", r"section \[Network\]: missing"),
    ],
)
def test_malformed_file_names_file_section_record(grid, tmp_path: Path, mutate, match) -> None:  # type: ignore[no-untyped-def]
    network, own = grid
    good = write_utdf(own, network, tmp_path / "good.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text(mutate(good.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(PlanError, match=match) as info:
        read_utdf(bad, own)
    assert str(bad) in str(info.value)


def test_missing_file_names_file(tmp_path: Path, grid) -> None:  # type: ignore[no-untyped-def]
    _, own = grid
    missing = tmp_path / "nope.csv"
    with pytest.raises(PlanError, match="nope.csv"):
        read_utdf(missing, own)


def test_round_trip_reference_and_pedestrians(grid, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Offset referenced to the begin of yellow of stage 1, walk/clearance: all read back."""
    from greenwave.controllers.plans.layout import complete_plan

    network, own = grid
    plan = complete_plan(_retimed(own), network)
    signals = {}
    for sid, t in plan.signals.items():
        st0 = dataclasses.replace(t.stages[0], walk_s=4.0, ped_clearance_s=round(t.stages[0].green_s - 4.0 - 1, 1))
        signals[sid] = dataclasses.replace(t, stages=(st0, *t.stages[1:])).with_offset_reference("green_end", 1)
    plan = TimingPlan(signals, dict(plan.meta), net_file=plan.net_file)
    assert_safe(plan, network)
    out = write_utdf(plan, network, tmp_path / "ref.csv")
    rows = {(r[0], r[1]): r[2:] for r in csv.reader(out.read_text().splitlines()) if len(r) > 2}
    assert rows[("Referenced To", "1")] == ["Begin of Yellow"] and rows[("Reference Phase", "1")] == ["4"]
    assert rows[("Walk", "1")][1] == "4"
    back = read_utdf(out, plan)
    assert back == plan
