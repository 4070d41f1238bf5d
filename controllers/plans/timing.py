"""Timing plans: the :class:`TimingPlan` type and its JSON form.

A plan gives, per signal, a cycle, an offset and per stage a green, yellow and all-red time
(seconds). Stages are the green phases of the signal's *base program* (the SUMO program the
network has, ``SignalTiming.program_id``), as :func:`greenwave.networks.compile.compile_network`
defines them; ``StageTiming.phase_index`` is the index of the stage's green phase in that
program.

Offset semantics
----------------
``offset_s`` is the time within the cycle at which stage 0's green starts: stage 0 turns green
at every simulation time ``t`` with ``t ≡ offset_s (mod cycle_s)``, measured from sim time 0
(not from the simulation's begin). This matches the arrays' convention
(:class:`greenwave.engine.arrays.PlanArrays`). SUMO's ``<tlLogic offset="o">`` does exactly
this for the program's phase 0 (checked with libsumo in ``tests/test_plan.py``: with offset o
phase 0 starts at ``t ≡ o (mod C)``, for any ``--begin``), so the exported program starts
with stage 0's green phase and carries ``offset = offset_s``.

JSON
----
The format (``"greenwave.timing-plan"``, version 2) is documented in ``docs/plan-format.md``;
version 1 files (no offset reference, signal groups, links, pedestrian times or network file)
are still read, the missing fields taking their defaults. In short::

    {"format": "greenwave.timing-plan", "version": 2, "net_file": "grid.net.xml", "meta": {...},
     "signals": [{"id": "A1", "program_id": "0", "cycle_s": 90.0, "offset_s": 12.0,
                  "offset_reference": {"stage": 0, "point": "green_start"},
                  "stages": [{"phase_index": 0, "signal_group": 2, "links": [0, 1, 2],
                              "green_s": 40.0, "yellow_s": 3.0, "allred_s": 2.0,
                              "min_green_s": 5.0, "walk_s": null, "ped_clearance_s": null},
                             ...]}, ...]}

Offset reference
----------------
``offset_s`` is measured to a reference point: the start of the green (``"green_start"``) or
the end of the green (``"green_end"``, the start of the yellow) of stage
``reference_stage`` (default: the start of stage 0's green, as above).
:attr:`SignalTiming.stage0_green_start_s` converts any reference to stage 0's green start,
which is what SUMO export and the flat arrays use.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from greenwave.engine.results import write_bytes_atomic, write_text_atomic
from greenwave.errors import NetworkError, PlanError
from greenwave.networks.compile import MIN_YELLOW_S  # the shortest yellow accepted after a stage (--min-yellow)
from greenwave.networks.stage_design import StageDesign

__all__ = [
    "DEFAULT_GROUPS",
    "FORMAT",
    "MIN_YELLOW_S",
    "OFFSET_POINTS",
    "READABLE_VERSIONS",
    "TOLERANCE_S",
    "VERSION",
    "SignalTiming",
    "StageTiming",
    "TimingPlan",
    "default_signal_group",
    "write_plan_file",
]

FORMAT = "greenwave.timing-plan"
VERSION = 2
#: JSON versions :meth:`TimingPlan.from_dict` reads.
READABLE_VERSIONS = (1, 2)
#: Offset reference points: start or end of the reference stage's green.
OFFSET_POINTS = ("green_start", "green_end")
#: Default controller phase (signal group) number of stage k: NEMA-style 2, 4, 6, 8, 1, 3, 5, 7,
#: then 9, 10, ... (the mapping the UTDF, NTCIP and GB/T 20999 exporters use).
DEFAULT_GROUPS = (2, 4, 6, 8, 1, 3, 5, 7)
#: Tolerance of the time checks (cycle sum, minimum green, yellow, arrays), s.
TOLERANCE_S = 1e-6


@dataclass(frozen=True)
class StageTiming:
    """One stage: its green phase in the base program and its times (s).

    Parameters
    ----------
    phase_index
        Index of the stage's green phase in the signal's base SUMO program.
    green_s, yellow_s, allred_s, min_green_s
        Green, yellow (change), all-red (red clearance) and minimum green, s.
    signal_group
        Controller phase / signal group number of the stage (``None``: the default mapping,
        :func:`default_signal_group`).
    links
        SUMO link indices shown green (``G``/``g``) in the stage (``None``: not recorded).
    walk_s, ped_clearance_s
        Pedestrian walk and clearance (flashing don't-walk) time, s, for a stage that serves a
        crossing; ``None`` where no crossing is served or its length is unknown.
    """

    phase_index: int
    green_s: float
    yellow_s: float
    allred_s: float
    min_green_s: float
    signal_group: int | None = None
    links: tuple[int, ...] | None = None
    walk_s: float | None = None
    ped_clearance_s: float | None = None

    @property
    def intergreen_s(self) -> float:
        return self.yellow_s + self.allred_s

    @property
    def split_s(self) -> float:
        """Green + yellow + all-red, s."""
        return self.green_s + self.yellow_s + self.allred_s


def default_signal_group(k: int) -> int:
    """Default controller phase number of stage ``k`` (2, 4, 6, 8, 1, 3, 5, 7, 9, 10, ...)."""
    return DEFAULT_GROUPS[k] if k < len(DEFAULT_GROUPS) else k + 1


@dataclass(frozen=True)
class SignalTiming:
    """One signal's timing: base program, cycle, offset and its reference point, stages (s).

    ``offset_s`` is measured to ``offset_reference`` (``"green_start"`` or ``"green_end"``) of
    stage ``reference_stage``; see the module docstring.
    """

    signal_id: str
    program_id: str
    cycle_s: float
    offset_s: float
    stages: tuple[StageTiming, ...]
    offset_reference: str = "green_start"
    reference_stage: int = 0

    @property
    def stage_sum_s(self) -> float:
        """Σ (green + yellow + all-red) over the stages; equals ``cycle_s`` in a valid plan."""
        return float(sum(s.green_s + s.yellow_s + s.allred_s for s in self.stages))

    def stage_green_start_s(self, k: int) -> float:
        """Time from stage 0's green start to stage ``k``'s green start, s."""
        return float(sum(s.split_s for s in self.stages[:k]))

    @property
    def reference_point_s(self) -> float:
        """Time from stage 0's green start to the offset reference point, s."""
        k = self.reference_stage
        if not (0 <= k < len(self.stages)) or self.offset_reference not in OFFSET_POINTS:
            raise PlanError(
                f"signal {self.signal_id!r}: rule offset-reference: reference stage {k} / point "
                f"{self.offset_reference!r} invalid (stages 0..{len(self.stages) - 1}, points "
                f"{', '.join(OFFSET_POINTS)})"
            )
        t = self.stage_green_start_s(k)
        if self.offset_reference == "green_end":
            t += self.stages[k].green_s
        return t

    @property
    def stage0_green_start_s(self) -> float:
        """When stage 0's green starts in the cycle (offset converted from its reference), s."""
        if not self.reference_stage and self.offset_reference == "green_start":
            return self.offset_s
        if not (math.isfinite(self.cycle_s) and self.cycle_s > 0):
            return self.offset_s
        return (self.offset_s - self.reference_point_s) % self.cycle_s

    def with_offset_reference(self, point: str, stage: int = 0) -> SignalTiming:
        """The same timing with its offset measured to ``point`` of stage ``stage``."""
        start0 = self.stage0_green_start_s
        probe = replace(self, offset_reference=point, reference_stage=stage)
        off = (start0 + probe.reference_point_s) % self.cycle_s
        return replace(probe, offset_s=off)

    def group_of(self, k: int) -> int:
        """Controller phase / signal group number of stage ``k``."""
        g = self.stages[k].signal_group
        return default_signal_group(k) if g is None else g


@dataclass
class TimingPlan:
    """A timing plan for a set of signals, with free-form JSON-serialisable ``meta``.

    ``net_file`` is the SUMO network the plan was made for (``None``: not recorded); the CLI's
    ``export`` and ``validate`` default ``--network`` to it.
    """

    signals: dict[str, SignalTiming]
    meta: dict[str, Any] = field(default_factory=dict)
    net_file: str | None = None
    #: stage designs the plan's signals run (signal id → design; see
    #: :mod:`greenwave.networks.stage_design`): their programs are not in the net file, so the
    #: plan carries them, and :func:`~greenwave.controllers.plans.layout.plan_network` adds them to
    #: the network it is checked on
    designs: dict[str, StageDesign] = field(default_factory=dict)

    # ---- JSON
    def to_dict(self) -> dict[str, Any]:
        def opt(x: float | None) -> float | None:
            return None if x is None else float(x)

        return {
            "format": FORMAT,
            "version": VERSION,
            "net_file": self.net_file,
            "meta": dict(self.meta),
            "signals": [
                {
                    "id": t.signal_id,
                    "program_id": t.program_id,
                    "cycle_s": float(t.cycle_s),
                    "offset_s": float(t.offset_s),
                    "offset_reference": {"stage": int(t.reference_stage), "point": t.offset_reference},
                    "stages": [
                        {
                            "phase_index": int(s.phase_index),
                            "signal_group": s.signal_group,
                            "links": None if s.links is None else [int(x) for x in s.links],
                            "green_s": float(s.green_s),
                            "yellow_s": float(s.yellow_s),
                            "allred_s": float(s.allred_s),
                            "min_green_s": float(s.min_green_s),
                            "walk_s": opt(s.walk_s),
                            "ped_clearance_s": opt(s.ped_clearance_s),
                        }
                        for s in t.stages
                    ],
                }
                for t in self.signals.values()
            ],
            **({"designs": {sid: d.to_dict() for sid, d in sorted(self.designs.items())}} if self.designs else {}),
        }

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the plan as JSON, atomically (temporary file + ``os.replace``)."""
        out = Path(path)
        try:
            text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise PlanError(f"{out}: plan is not JSON-serialisable (meta or a NaN time?): {exc}") from exc
        return write_plan_file(out, text + "\n", "timing plan")

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "plan") -> TimingPlan:
        """Read the JSON object of a plan (versions 1 and 2); :class:`PlanError` names the key."""

        def fail(key: str, why: str) -> PlanError:
            return PlanError(f"{where}: {key}: {why}")

        if not isinstance(data, dict):
            raise fail("<root>", f"expected a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise fail("format", f"expected {FORMAT!r}, got {data.get('format')!r}")
        version = data.get("version")
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise fail("version", f"expected one of {list(READABLE_VERSIONS)}, got {version!r}")
        meta = data.get("meta", {})
        if not isinstance(meta, dict):
            raise fail("meta", f"expected an object, got {type(meta).__name__}")
        top = {"format", "version", "meta", "signals"} | ({"net_file", "designs"} if version >= 2 else set())
        unknown = set(data) - top
        if unknown:
            raise fail(", ".join(sorted(unknown)), "unknown key(s)")
        net_file = data.get("net_file")
        if net_file is not None and not isinstance(net_file, str):
            raise fail("net_file", f"expected a string or null, got {net_file!r}")
        raw_signals = data.get("signals")
        if not isinstance(raw_signals, list):
            raise fail("signals", "missing or not a list")

        def num(obj: dict[str, Any], key: str, ctx: str) -> float:
            if key not in obj:
                raise fail(f"{ctx}.{key}", "missing")
            v = obj[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise fail(f"{ctx}.{key}", f"expected a finite number, got {v!r}")
            return float(v)

        def opt_num(obj: dict[str, Any], key: str, ctx: str) -> float | None:
            if obj.get(key) is None:
                return None
            v = num(obj, key, ctx)
            if v < 0:
                raise fail(f"{ctx}.{key}", f"expected a number >= 0 or null, got {v!r}")
            return v

        def integer(v: Any, key: str, lo: int = 0) -> int:
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise fail(key, f"expected an integer >= {lo}, got {v!r}")
            return v

        def string(obj: dict[str, Any], key: str, ctx: str) -> str:
            v = obj.get(key)
            if not isinstance(v, str):
                raise fail(f"{ctx}.{key}", f"missing or not a string ({v!r})")
            return v

        sig_keys = {"id", "program_id", "cycle_s", "offset_s", "stages"}
        stage_keys = {"phase_index", "green_s", "yellow_s", "allred_s", "min_green_s"}
        if version >= 2:
            sig_keys |= {"offset_reference"}
            stage_keys |= {"signal_group", "links", "walk_s", "ped_clearance_s"}
        signals: dict[str, SignalTiming] = {}
        for i, rs in enumerate(raw_signals):
            ctx = f"signals[{i}]"
            if not isinstance(rs, dict):
                raise fail(ctx, "expected an object")
            extra = set(rs) - sig_keys
            if extra:
                raise fail(f"{ctx}.{sorted(extra)[0]}", "unknown key")
            sid = string(rs, "id", ctx)
            if sid in signals:
                raise fail(f"{ctx}.id", f"signal {sid!r} appears twice")
            raw_stages = rs.get("stages")
            if not isinstance(raw_stages, list) or not raw_stages:
                raise fail(f"{ctx}.stages", "missing, empty or not a list")
            stages = []
            for k, st in enumerate(raw_stages):
                sctx = f"{ctx}.stages[{k}]"
                if not isinstance(st, dict):
                    raise fail(sctx, "expected an object")
                extra = set(st) - stage_keys
                if extra:
                    raise fail(f"{sctx}.{sorted(extra)[0]}", "unknown key")
                pi = integer(st.get("phase_index"), f"{sctx}.phase_index")
                group = st.get("signal_group")
                if group is not None:
                    group = integer(group, f"{sctx}.signal_group", 1)
                links = st.get("links")
                if links is not None:
                    if not isinstance(links, list):
                        raise fail(f"{sctx}.links", f"expected a list of link indices or null, got {links!r}")
                    links = tuple(integer(x, f"{sctx}.links") for x in links)
                stages.append(
                    StageTiming(
                        phase_index=pi,
                        green_s=num(st, "green_s", sctx),
                        yellow_s=num(st, "yellow_s", sctx),
                        allred_s=num(st, "allred_s", sctx),
                        min_green_s=num(st, "min_green_s", sctx),
                        signal_group=group,
                        links=links,
                        walk_s=opt_num(st, "walk_s", sctx),
                        ped_clearance_s=opt_num(st, "ped_clearance_s", sctx),
                    )
                )
            ref = rs.get("offset_reference", {"stage": 0, "point": "green_start"})
            if not isinstance(ref, dict) or set(ref) - {"stage", "point"}:
                raise fail(f"{ctx}.offset_reference", f"expected {{'stage': k, 'point': ...}}, got {ref!r}")
            point = ref.get("point", "green_start")
            if point not in OFFSET_POINTS:
                raise fail(f"{ctx}.offset_reference.point", f"expected one of {list(OFFSET_POINTS)}, got {point!r}")
            ref_stage = integer(ref.get("stage", 0), f"{ctx}.offset_reference.stage")
            if ref_stage >= len(stages):
                raise fail(f"{ctx}.offset_reference.stage", f"{ref_stage} but the signal has {len(stages)} stages")
            signals[sid] = SignalTiming(
                signal_id=sid,
                program_id=string(rs, "program_id", ctx),
                cycle_s=num(rs, "cycle_s", ctx),
                offset_s=num(rs, "offset_s", ctx),
                stages=tuple(stages),
                offset_reference=point,
                reference_stage=ref_stage,
            )
        raw_designs = data.get("designs", {})
        if not isinstance(raw_designs, dict):
            raise fail("designs", f"expected an object (signal id → stage design), got {type(raw_designs).__name__}")
        designs = {}
        for sid, raw in raw_designs.items():
            if sid not in signals:
                raise fail(f"designs.{sid}", "a design for a signal the plan does not time")
            try:
                designs[sid] = StageDesign.from_dict(sid, raw, where=f"{where}: designs.{sid}")
            except NetworkError as exc:
                raise PlanError(str(exc)) from None
            if designs[sid].program_id != signals[sid].program_id:
                raise fail(f"designs.{sid}.program_id", f"{designs[sid].program_id!r} but the signal's "
                           f"program_id is {signals[sid].program_id!r}")
        return cls(signals=signals, meta=dict(meta), net_file=net_file, designs=designs)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> TimingPlan:
        """Read a plan written by :meth:`to_json`; :class:`PlanError` names file and key."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PlanError(f"{p}: cannot read timing plan: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanError(f"{p}: not valid JSON: {exc}") from exc
        return cls.from_dict(data, where=str(p))




def write_plan_file(path: Path, data: str | bytes, what: str) -> Path:
    """Write ``data`` to ``path`` atomically; :class:`PlanError` naming the file when it cannot
    be written (a folder, no permission, disk full) — never a bare ``OSError``."""

    if path.is_dir():
        raise PlanError(f"{path}: cannot write the {what}: it is a folder, expected a file name")
    try:
        if isinstance(data, bytes):
            write_bytes_atomic(data, path)
        else:
            write_text_atomic(data, path)
    except OSError as exc:
        raise PlanError(f"{path}: cannot write the {what}: {exc}") from exc
    return path
