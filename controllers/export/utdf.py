"""Synchro UTDF (version 8, combined CSV) export and import of timing plans.

:func:`write_utdf` writes a :class:`~greenwave.controllers.plans.timing.TimingPlan` as a UTDF combined
file; :func:`read_utdf` reads such a file back into a plan, taking from a template plan what
UTDF does not hold (SUMO program ids, the stages' phase indices in the base program, ``meta``).

Layout
------
Sections start with a ``[Name]`` line followed by a header row and one row per record
(read and written with the :mod:`csv` module; blank lines are ignored)::

    [Network]
    RECORDNAME,DATA
    UTDF VERSION,8
    INTID 1,A1                      <- greenwave's own record (see below)
    ...
    [Timeplans]
    RECORDNAME,INTID,DATA
    Control Type,1,Pretimed
    Cycle Length,1,90
    Lock Timings,1,0
    Referenced To,1,Begin of Green
    Reference Phase,1,2
    Offset,1,12
    ...
    [Phases]
    RECORDNAME,INTID,D1,D2,D3,D4,D5,D6,D7,D8
    BRP,1,,111,,112,,,,
    MinGreen,1,,5,,5,,,,
    MaxGreen,1,,40,,38,,,,
    Yellow,1,,3,,3,,,,
    AllRed,1,,2,,2,,,,
    Split,1,,45,,43,,,,
    ...

Intersections get integer INTIDs 1, 2, ... in the plan's signal order. The mapping to SUMO
signal ids is written in the ``[Network]`` section as records ``INTID <n>,<sumo id>``: this is
greenwave's own record, not part of the UTDF standard; Synchro ignores records it does not know.

Phase numbering
---------------
A signal's stages, in order, map to NEMA-style phase numbers 2, 4, 6, 8, 1, 3, 5, 7: stage 0 →
phase 2 (the usual coordinated phase), stage 1 → phase 4, ... A signal with more than 8 stages
raises :class:`~greenwave.errors.PlanError`. Phase 2 (stage 0) is the reference phase and the
offset is referenced to the begin of its green (``Referenced To`` = ``Begin of Green``), which
is exactly the plan's ``offset_s``. The stages run one after the other, so ``BRP`` (barrier,
ring, position) is written as one ring in one barrier with the stage's position in the sequence
(``11k`` for stage ``k-1``); it is informative only and not read back.

Times
-----
Per phase: ``MinGreen`` = ``min_green_s``, ``MaxGreen`` = ``green_s`` (pretimed: the green
shown), ``Yellow``, ``AllRed``, ``Split`` = green + yellow + all-red; per intersection
``Cycle Length`` = ``cycle_s`` and ``Offset`` = ``offset_s``. All in seconds, written with
Python's shortest round-trip float representation (no rounding), so an export read back gives
the same floats. (Synchro itself usually works in whole or tenth seconds.) On import the green
is ``MaxGreen``; ``Split`` must equal green + yellow + all-red within 1e-6 s.

``Control Type`` and ``Referenced To`` are written as the words ``Pretimed`` and ``Begin of Green``
(``Begin of Yellow`` for an offset referenced to the end of the reference stage's green); the
reader also accepts the numeric code 0 for both. The Synchro UTDF documentation could not be
consulted (no public copy found), so whether Synchro's importer wants words or codes there is
unverified. Stages map to phases by their signal groups (:meth:`SignalTiming.group_of`, default
below); the ``Reference Phase`` is the phase of the offset's reference stage. Pedestrian times
are written as ``Walk`` and ``DontWalk`` (clearance) where the plan has them.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from greenwave.controllers.plans.timing import SignalTiming, StageTiming, TimingPlan, write_plan_file
from greenwave.errors import PlanError

if TYPE_CHECKING:
    from greenwave.controllers.plans.safety_rules import SafetyStandards
    from greenwave.networks.model import RoadNetwork

__all__ = ["NEMA_PHASES", "UTDF_VERSION", "read_utdf", "stage_phase_numbers", "write_utdf"]

UTDF_VERSION = "8"
#: NEMA-style phase number of stage k (k = 0..7).
NEMA_PHASES = (2, 4, 6, 8, 1, 3, 5, 7)
_PHASE_COLS = tuple(f"D{n}" for n in range(1, 9))
_PHASE_RECORDS = ("BRP", "MinGreen", "MaxGreen", "Yellow", "AllRed", "Split", "Walk", "DontWalk")
_REFERENCED_TO = {"green_start": "Begin of Green", "green_end": "Begin of Yellow"}
_PLAN_RECORDS = ("Control Type", "Cycle Length", "Lock Timings", "Referenced To", "Reference Phase", "Offset")
_INTID_PREFIX = "INTID "
_TOL = 1e-6


def stage_phase_numbers(timing: SignalTiming) -> tuple[int, ...]:
    """The NEMA phase number of each of ``timing``'s stages: its signal group
    (:meth:`SignalTiming.group_of`, by default 2, 4, 6, 8, 1, 3, 5, 7); PlanError for more than
    8 stages or a number outside 1..8."""
    n = len(timing.stages)
    if n > len(NEMA_PHASES):
        raise PlanError(
            f"signal {timing.signal_id!r}: has {n} stages, UTDF export supports at most {len(NEMA_PHASES)}"
        )
    nums = tuple(timing.group_of(k) for k in range(n))
    if any(not 1 <= p <= 8 for p in nums) or len(set(nums)) != n:
        raise PlanError(
            f"signal {timing.signal_id!r}: signal groups {list(nums)} must be distinct phases 1..8 for UTDF"
        )
    return nums


def _num(x: float) -> str:
    x = float(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def write_utdf(plan: TimingPlan, network: RoadNetwork, path: str | os.PathLike[str], *,
               min_yellow_s: float | None = None, standards: SafetyStandards | None = None) -> Path:
    """Write ``plan`` as a Synchro UTDF 8 combined CSV file (atomically); return its path.

    The plan is first checked with :func:`greenwave.controllers.plans.safety.assert_safe`
    (``min_yellow_s``: ``None`` = 3 s; ``standards``: the safety standards); an unsafe plan
    raises :class:`PlanError` and nothing is written. A signal with more than 8 stages raises
    :class:`PlanError` naming it.
    """
    from greenwave.controllers.plans.safety import assert_safe

    assert_safe(plan, network, min_yellow_s=min_yellow_s, standards=standards)
    out = Path(path)
    numbers = {sid: stage_phase_numbers(t) for sid, t in plan.signals.items()}
    intids = {sid: n for n, sid in enumerate(plan.signals, start=1)}

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["[Network]"])
    w.writerow(["RECORDNAME", "DATA"])
    w.writerow(["UTDF VERSION", UTDF_VERSION])
    for sid, n in intids.items():
        w.writerow([f"{_INTID_PREFIX}{n}", sid])
    w.writerow([])

    w.writerow(["[Timeplans]"])
    w.writerow(["RECORDNAME", "INTID", "DATA"])
    for sid, t in plan.signals.items():
        n = intids[sid]
        for rec, val in (
            ("Control Type", "Pretimed"),
            ("Cycle Length", _num(t.cycle_s)),
            ("Lock Timings", "0"),
            ("Referenced To", _REFERENCED_TO[t.offset_reference]),
            ("Reference Phase", str(numbers[sid][t.reference_stage])),
            ("Offset", _num(t.offset_s)),
        ):
            w.writerow([rec, n, val])
    w.writerow([])

    w.writerow(["[Phases]"])
    w.writerow(["RECORDNAME", "INTID", *_PHASE_COLS])
    for sid, t in plan.signals.items():
        n = intids[sid]
        cols: dict[str, dict[int, str]] = {rec: {} for rec in _PHASE_RECORDS}
        for k, (st, ph) in enumerate(zip(t.stages, numbers[sid], strict=True)):
            cols["BRP"][ph] = str(110 + k + 1)
            cols["MinGreen"][ph] = _num(st.min_green_s)
            cols["MaxGreen"][ph] = _num(st.green_s)
            cols["Yellow"][ph] = _num(st.yellow_s)
            cols["AllRed"][ph] = _num(st.allred_s)
            cols["Split"][ph] = _num(st.green_s + st.yellow_s + st.allred_s)
            if st.walk_s is not None or st.ped_clearance_s is not None:
                cols["Walk"][ph] = _num(st.walk_s or 0.0)
                cols["DontWalk"][ph] = _num(st.ped_clearance_s or 0.0)
        for rec in _PHASE_RECORDS:
            w.writerow([rec, n, *(cols[rec].get(p, "") for p in range(1, 9))])

    return write_plan_file(out, buf.getvalue(), "UTDF file")


def _sections(p: Path, text: str) -> dict[str, list[list[str]]]:
    """Rows of each ``[Section]`` (header row included), blank rows dropped."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise PlanError(f"{p}: not a valid CSV file: {exc}") from exc
    for lineno, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        head = cells[0]
        if head.startswith("[") and head.endswith("]") and len(cells) == 1:
            name = head[1:-1].strip()
            if name in sections:
                raise PlanError(f"{p}: section [{name}]: appears twice (line {lineno})")
            current = sections[name] = []
            continue
        if current is None:
            raise PlanError(f"{p}: line {lineno}: record {head!r} before any [Section] line")
        current.append(cells)
    return sections


def read_utdf(path: str | os.PathLike[str], template: TimingPlan) -> TimingPlan:
    """Read a UTDF file written by :func:`write_utdf` back into a :class:`TimingPlan`.

    INTIDs map to SUMO signals through the ``INTID <n>`` records of ``[Network]``, phases to
    stages through the phase numbering (module docstring). Program ids, phase indices and
    ``meta`` come from ``template``, which must hold every signal of the file with the same
    number of stages. Signals come in the file's INTID order. A bad file raises
    :class:`PlanError` naming the file, the section and the record.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"{p}: cannot read UTDF file: {exc}") from exc
    sections = _sections(p, text)

    def fail(section: str, record: str, why: str) -> PlanError:
        return PlanError(f"{p}: section [{section}]: record {record!r}: {why}")

    def rows_of(section: str, header: tuple[str, ...]) -> list[list[str]]:
        rows = sections.get(section)
        if rows is None:
            raise PlanError(f"{p}: section [{section}]: missing")
        if not rows or tuple(c.upper() for c in rows[0]) != tuple(h.upper() for h in header):
            got = ",".join(rows[0]) if rows else "nothing"
            raise PlanError(f"{p}: section [{section}]: header must be {','.join(header)}, got {got}")
        return rows[1:]

    def number(section: str, record: str, cell: str) -> float:
        try:
            v = float(cell)
        except ValueError:
            raise fail(section, record, f"{cell!r} is not a number") from None
        if not math.isfinite(v):
            raise fail(section, record, f"{cell!r} is not a finite number")
        return v

    def intid(section: str, record: str, cell: str) -> int:
        try:
            return int(cell)
        except ValueError:
            raise fail(section, record, f"INTID {cell!r} is not an integer") from None

    # [Network]: version and INTID -> signal id
    version: str | None = None
    sid_of: dict[int, str] = {}
    for row in rows_of("Network", ("RECORDNAME", "DATA")):
        rec = row[0]
        if len(row) != 2:
            raise fail("Network", rec, f"expected 2 fields, got {len(row)}")
        if rec.upper() == "UTDF VERSION":
            version = row[1]
        elif rec.upper().startswith(_INTID_PREFIX):
            n = intid("Network", rec, rec[len(_INTID_PREFIX):].strip())
            if n in sid_of:
                raise fail("Network", rec, "INTID mapped twice")
            if row[1] in sid_of.values():
                raise fail("Network", rec, f"signal {row[1]!r} mapped twice")
            if row[1] not in template.signals:
                raise fail("Network", rec, f"signal {row[1]!r} is not in the template plan")
            sid_of[n] = row[1]
    if version is None:
        raise PlanError(f"{p}: section [Network]: record 'UTDF VERSION': missing")
    if version != UTDF_VERSION:
        raise fail("Network", "UTDF VERSION", f"expected {UTDF_VERSION}, got {version!r}")
    if not sid_of:
        raise PlanError(f"{p}: section [Network]: no 'INTID <n>' records (greenwave's signal id mapping)")

    # [Timeplans]
    plans: dict[int, dict[str, str]] = {}
    for row in rows_of("Timeplans", ("RECORDNAME", "INTID", "DATA")):
        rec = row[0]
        if len(row) != 3:
            raise fail("Timeplans", rec, f"expected 3 fields, got {len(row)}")
        n = intid("Timeplans", rec, row[1])
        if n not in sid_of:
            raise fail("Timeplans", rec, f"INTID {n} has no 'INTID {n}' record in [Network]")
        recs = plans.setdefault(n, {})
        if rec in recs:
            raise fail("Timeplans", rec, f"appears twice for INTID {n}")
        recs[rec] = row[2]

    # [Phases]
    phases: dict[int, dict[str, list[str]]] = {}
    for row in rows_of("Phases", ("RECORDNAME", "INTID", *_PHASE_COLS)):
        rec = row[0]
        if len(row) < 2 or len(row) > 2 + len(_PHASE_COLS):
            raise fail("Phases", rec, f"expected 2 to {2 + len(_PHASE_COLS)} fields, got {len(row)}")
        n = intid("Phases", rec, row[1])
        if n not in sid_of:
            raise fail("Phases", rec, f"INTID {n} has no 'INTID {n}' record in [Network]")
        phase_recs = phases.setdefault(n, {})
        if rec in phase_recs:
            raise fail("Phases", rec, f"appears twice for INTID {n}")
        phase_recs[rec] = row[2:] + [""] * (2 + len(_PHASE_COLS) - len(row))

    signals: dict[str, SignalTiming] = {}
    for n in sorted(sid_of):
        sid = sid_of[n]
        tmpl = template.signals[sid]
        where = f"INTID {n} (signal {sid!r})"
        tp = plans.get(n, {})
        for rec in ("Cycle Length", "Offset"):
            if rec not in tp:
                raise fail("Timeplans", rec, f"missing for {where}")
        ctrl = tp.get("Control Type", "Pretimed")
        if ctrl.lower() not in ("pretimed", "0"):
            raise fail("Timeplans", "Control Type", f"{where}: only Pretimed is supported, got {ctrl!r}")
        ref_to = tp.get("Referenced To", "Begin of Green").lower()
        points = {"begin of green": "green_start", "0": "green_start", "begin of yellow": "green_end"}
        if ref_to not in points:
            raise fail("Timeplans", "Referenced To",
                       f"{where}: only Begin of Green and Begin of Yellow are supported, got {ref_to!r}")
        nums = stage_phase_numbers(tmpl)
        ref_ph = tp.get("Reference Phase", str(nums[0]))
        if ref_ph not in {str(p) for p in nums}:
            raise fail("Timeplans", "Reference Phase", f"{where}: expected one of {list(nums)}, got {ref_ph!r}")
        ref_stage = [str(p) for p in nums].index(ref_ph)
        cycle = number("Timeplans", "Cycle Length", tp["Cycle Length"])
        offset = number("Timeplans", "Offset", tp["Offset"])

        ph = phases.get(n, {})
        for rec in ("MaxGreen", "Yellow", "AllRed"):
            if rec not in ph:
                raise fail("Phases", rec, f"missing for {where}")
        used = {k + 1 for k in range(8) if ph["MaxGreen"][k]}
        if used != set(nums):
            raise fail(
                "Phases", "MaxGreen",
                f"{where}: has phases {sorted(used)}, the template's {len(tmpl.stages)} stages "
                f"need phases {sorted(nums)}",
            )

        def cell(rec: str, phase: int, *, ph: dict[str, list[str]] = ph, where: str = where) -> float:
            c = ph[rec][phase - 1]
            if not c:
                raise fail("Phases", rec, f"{where}: phase {phase} has no value")
            return number("Phases", rec, c)

        stages = []
        for st, phase in zip(tmpl.stages, nums, strict=True):
            green = cell("MaxGreen", phase)
            yellow = cell("Yellow", phase)
            allred = cell("AllRed", phase)
            min_green = cell("MinGreen", phase) if "MinGreen" in ph else st.min_green_s
            if "Split" in ph and ph["Split"][phase - 1]:
                split = cell("Split", phase)
                if abs(split - (green + yellow + allred)) > _TOL:
                    raise fail(
                        "Phases", "Split",
                        f"{where}: phase {phase} split {split:g} s != MaxGreen + Yellow + AllRed "
                        f"= {green + yellow + allred:g} s",
                    )
            walk = clear = None
            if "Walk" in ph and ph["Walk"][phase - 1]:
                walk = cell("Walk", phase)
                clear = cell("DontWalk", phase) if "DontWalk" in ph else None
            stages.append(StageTiming(st.phase_index, green, yellow, allred, min_green, signal_group=st.signal_group,
                                      links=st.links, walk_s=walk, ped_clearance_s=clear))
        total = sum(s.split_s for s in stages)
        if abs(total - cycle) > _TOL:
            raise fail("Timeplans", "Cycle Length",
                       f"{where}: cycle {cycle:g} s but the phases' splits (MaxGreen + Yellow + AllRed of "
                       f"phases {', '.join(map(str, nums))}) sum to {total:g} s")
        signals[sid] = SignalTiming(sid, tmpl.program_id, cycle, offset, tuple(stages),
                                    offset_reference=points[ref_to], reference_stage=ref_stage)
    return TimingPlan(signals, dict(template.meta), net_file=template.net_file)
