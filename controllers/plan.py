"""Timing plans: the :class:`TimingPlan` type, its JSON form, and running it in SUMO.

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
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

import numpy as np

from greenwave.controllers.base import ProgramController, RunContext, register
from greenwave.engine.arrays import CompiledNetwork, PlanArrays
from greenwave.engine.results import write_text_atomic
from greenwave.errors import NetworkError, PlanError, ScenarioError
from greenwave.networks.stage_design import StageDesign, with_designs

if TYPE_CHECKING:
    from greenwave.networks.model import Program, RoadNetwork

__all__ = [
    "FORMAT",
    "VERSION",
    "OFFSET_POINTS",
    "FixedPlanController",
    "SignalTiming",
    "StageTiming",
    "TimingPlan",
    "arrays_from_plan",
    "check_plan",
    "complete_plan",
    "plan_from_arrays",
    "plan_from_network",
    "plan_network",
    "write_sumo_additional",
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
#: Shortest yellow accepted after a stage whose base program has a yellow phase, s (the
#: default of ``min_yellow_s`` / ``--min-yellow``).
MIN_YELLOW_S = 3.0
_TOL = 1e-6


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
    #: plan carries them, and :func:`plan_network` adds them to the network it is checked on
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


# ------------------------------------------------------------------------------------------
# arrays <-> plan


def plan_from_arrays(
    compiled: CompiledNetwork, plan: PlanArrays, *, meta: Mapping[str, Any] | None = None
) -> TimingPlan:
    """The :class:`TimingPlan` of flat plan arrays (yellow, all-red, minimum green from
    ``compiled``; offsets taken modulo the cycle)."""
    _check_arrays(compiled, plan)
    cycle = float(plan.cycle_s)
    signals: dict[str, SignalTiming] = {}
    for i, sid in enumerate(compiled.signal_ids):
        stages = tuple(
            StageTiming(
                phase_index=int(compiled.stage_phase[k]),
                green_s=float(plan.green_s[k]),
                yellow_s=float(compiled.stage_yellow_s[k]),
                allred_s=float(compiled.stage_allred_s[k]),
                min_green_s=float(compiled.stage_min_green_s[k]),
            )
            for k in compiled.stages_of(i)
        )
        off = float(plan.offset_s[i]) % cycle if cycle > 0 else float(plan.offset_s[i])
        signals[sid] = SignalTiming(sid, _program_id(compiled, i), cycle, off, stages)
    return TimingPlan(signals, dict(meta or {"source": "arrays"}))


def _program_id(compiled: CompiledNetwork, i: int) -> str:
    return compiled.program_ids[i] if i < len(compiled.program_ids) else ""


def _check_arrays(compiled: CompiledNetwork, plan: PlanArrays) -> None:
    if np.shape(plan.offset_s) != (compiled.n_signals,):
        raise PlanError(f"plan arrays: offset_s has shape {np.shape(plan.offset_s)}, expected ({compiled.n_signals},)")
    if np.shape(plan.green_s) != (compiled.n_stages,):
        raise PlanError(f"plan arrays: green_s has shape {np.shape(plan.green_s)}, expected ({compiled.n_stages},)")
    if not (math.isfinite(plan.cycle_s) and plan.cycle_s > 0):
        raise PlanError(f"plan arrays: cycle_s must be a positive number, got {plan.cycle_s!r}")
    if not (np.all(np.isfinite(plan.offset_s)) and np.all(np.isfinite(plan.green_s))):
        raise PlanError("plan arrays: offsets and greens must be finite")


def arrays_from_plan(compiled: CompiledNetwork, plan: TimingPlan) -> PlanArrays:
    """Flat arrays of ``plan`` for ``compiled`` (inverse of :func:`plan_from_arrays`).

    Raises :class:`PlanError` when a compiled signal is missing from the plan, its stages are
    not the compiled ones (phase indices, yellow, all-red), or the cycles differ (PlanArrays
    has one common cycle).
    """
    offsets = np.zeros(compiled.n_signals, dtype=np.float64)
    green = np.zeros(compiled.n_stages, dtype=np.float64)
    cycle: float | None = None
    first = ""
    for i, sid in enumerate(compiled.signal_ids):
        t = plan.signals.get(sid)
        if t is None:
            raise PlanError(f"signal {sid!r}: not in the plan (the compiled network has it)")
        ks = compiled.stages_of(i)
        if len(t.stages) != len(ks):
            raise PlanError(f"signal {sid!r}: plan has {len(t.stages)} stages, the compiled network {len(ks)}")
        for st, k in zip(t.stages, ks, strict=True):
            if st.phase_index != int(compiled.stage_phase[k]):
                raise PlanError(
                    f"signal {sid!r}: stage {k - ks.start} is phase {st.phase_index} in the plan but "
                    f"phase {int(compiled.stage_phase[k])} in the compiled network"
                )
            for name, a, b in (
                ("yellow", st.yellow_s, compiled.stage_yellow_s[k]),
                ("all-red", st.allred_s, compiled.stage_allred_s[k]),
            ):
                if abs(a - float(b)) > _TOL:
                    raise PlanError(
                        f"signal {sid!r}: stage {k - ks.start} {name} is {a:g} s in the plan but "
                        f"{float(b):g} s in the compiled network; flat arrays cannot hold it"
                    )
            green[k] = st.green_s
        if cycle is None:
            cycle, first = float(t.cycle_s), sid
        elif abs(t.cycle_s - cycle) > _TOL:
            raise PlanError(
                f"signal {sid!r}: cycle {t.cycle_s:g} s differs from signal {first!r}'s {cycle:g} s; "
                "flat plan arrays need one common cycle"
            )
        offsets[i] = t.stage0_green_start_s
    if cycle is None:
        cycles = {float(t.cycle_s) for t in plan.signals.values()}
        cycle = cycles.pop() if len(cycles) == 1 else 0.0
    return PlanArrays(cycle_s=float(cycle), offset_s=offsets, green_s=green)


def plan_from_network(network: RoadNetwork, compiled: CompiledNetwork) -> TimingPlan:
    """The network's own programs (those ``compiled`` was made from) as a :class:`TimingPlan`.

    Greens are the green phases' durations, yellow/all-red the compiled intergreens, the cycle
    the program's own (it may differ between signals), the offset when stage 0's green starts
    (``program offset + durations of the phases before it``, modulo the cycle). Where the
    program's green is shorter than the compiled minimum green the stage's ``min_green_s`` is
    lowered to it, so the network's own program stays a valid plan.
    """
    signals: dict[str, SignalTiming] = {}
    for i, sid in enumerate(compiled.signal_ids):
        program = _base_program(network, sid, _program_id(compiled, i))
        ks = compiled.stages_of(i)
        stages = []
        for k in ks:
            p = int(compiled.stage_phase[k])
            g = float(program.phases[p].duration)
            stages.append(
                StageTiming(
                    phase_index=p,
                    green_s=g,
                    yellow_s=float(compiled.stage_yellow_s[k]),
                    allred_s=float(compiled.stage_allred_s[k]),
                    min_green_s=min(float(compiled.stage_min_green_s[k]), g),
                )
            )
        cycle = program.cycle
        p0 = int(compiled.stage_phase[ks.start])
        start0 = float(program.offset) + sum(ph.duration for ph in program.phases[:p0])
        offset = start0 % cycle if cycle > 0 else 0.0
        signals[sid] = SignalTiming(sid, program.id, float(cycle), float(offset), tuple(stages))
    return TimingPlan(signals, {"source": "network", "net_file": str(network.path)},
                      net_file=str(Path(network.path).resolve()))


def plan_network(plan: TimingPlan, network: RoadNetwork) -> RoadNetwork:
    """``network`` with the stage designs ``plan`` carries added as its signals' programs (the
    network itself when the plan has none or it has them already)."""
    need = {sid: d for sid, d in plan.designs.items()
            if sid not in network.signals or d.program_id not in network.signals[sid].programs
            or network.signals[sid].programs[d.program_id] != d.program()}
    if not need:
        return network
    try:
        return with_designs(network, need)
    except NetworkError as exc:
        raise PlanError(str(exc)) from None


def _base_program(network: RoadNetwork, sid: str, program_id: str) -> Program:
    sig = network.signals.get(sid)
    if sig is None:
        raise PlanError(f"signal {sid!r}: not in the network {network.path}")
    if program_id:
        program = sig.programs.get(program_id)
        if program is None:
            raise PlanError(
                f"signal {sid!r}: base program {program_id!r} not in the network "
                f"(it has {', '.join(sig.programs) or 'none'})"
            )
        return program
    program = sig.default_program
    if program is None:
        raise PlanError(f"signal {sid!r}: has no signal program in the network")
    return program


def complete_plan(
    plan: TimingPlan,
    network: RoadNetwork,
    *,
    pedestrian_walk_s: float = 4.0,
    pedestrian_speed_mps: float = 1.2,
) -> TimingPlan:
    """``plan`` with what the network tells filled in where the plan leaves it open.

    - ``net_file``: the network's file;
    - per stage ``signal_group``: :func:`default_signal_group` (2, 4, 6, 8, 1, 3, 5, 7, ...);
    - per stage ``links``: the SUMO link indices green (``G``/``g``) in its base phase;
    - per stage ``walk_s`` / ``ped_clearance_s`` (where both are ``None``): for each
      pedestrian crossing link green in the stage, walk = ``pedestrian_walk_s`` and clearance =
      crossing length / ``pedestrian_speed_mps`` (the largest over its crossings), put — as
      :func:`greenwave.networks.compile.compile_network` puts the pedestrian minimum green — on
      the stage with the longest base green of each run of stages the crossing stays green in.

    Values the plan already has are kept. Raises :class:`PlanError` when a signal or its base
    program is not in the network, or a stage's phase index is not in the program.
    """
    from greenwave.networks.pedestrians import stage_pedestrian_times

    if not (pedestrian_walk_s >= 0 and pedestrian_speed_mps > 0):
        raise PlanError(
            f"pedestrian_walk_s must be >= 0 and pedestrian_speed_mps > 0, got "
            f"{pedestrian_walk_s!r} and {pedestrian_speed_mps!r}"
        )
    network = plan_network(plan, network)
    signals: dict[str, SignalTiming] = {}
    for sid, t in plan.signals.items():
        program = _base_program(network, sid, t.program_id)
        sig = network.signals[sid]
        for k, st in enumerate(t.stages):
            if not 0 <= st.phase_index < len(program.phases):
                raise PlanError(
                    f"signal {sid!r}: stage {k}: phase {st.phase_index} is not in base program "
                    f"{program.id!r} ({len(program.phases)} phases)"
                )
        phases = [program.phases[st.phase_index] for st in t.stages]
        times = stage_pedestrian_times(network, sig, phases, walk_s=pedestrian_walk_s, speed_mps=pedestrian_speed_mps)
        walk = [None if x is None else x.walk_s for x in times]
        clear = [None if x is None else x.clearance_s for x in times]
        stages = []
        for k, (st, ph) in enumerate(zip(t.stages, phases, strict=True)):
            upd: dict[str, Any] = {}
            if st.signal_group is None:
                upd["signal_group"] = default_signal_group(k)
            if st.links is None:
                upd["links"] = tuple(j for j, c in enumerate(ph.state) if c in "Gg")
            if st.walk_s is None and st.ped_clearance_s is None and walk[k] is not None:
                upd["walk_s"], upd["ped_clearance_s"] = walk[k], clear[k]
            stages.append(replace(st, **upd) if upd else st)
        signals[sid] = replace(t, stages=tuple(stages))
    return TimingPlan(signals, dict(plan.meta), net_file=plan.net_file or str(Path(network.path).resolve()),
                      designs=dict(plan.designs))


# ------------------------------------------------------------------------------------------
# checks and SUMO export


@dataclass(frozen=True)
class _Layout:
    """A stage's phases in the base program: green phase, yellow and all-red phases."""

    green: int
    order: tuple[int, ...]
    yellow: tuple[int, ...]
    allred: tuple[int, ...]
    base_yellow_s: float
    base_allred_s: float


def _layout(program: Program, timing: SignalTiming) -> list[_Layout]:
    from greenwave.networks.compile import green_stage_phases, intergreen_phases

    stages = green_stage_phases(program)
    got = [s.phase_index for s in timing.stages]
    if got != stages:
        raise PlanError(
            f"signal {timing.signal_id!r}: rule stages: plan stages are phases {got}, but the green "
            f"phases of base program {program.id!r} are {stages}"
        )
    out = []
    for k, p in enumerate(stages):
        inter = intergreen_phases(program, stages, k)
        yel = tuple(j for j in inter if "y" in program.phases[j].state or "Y" in program.phases[j].state)
        red = tuple(j for j in inter if j not in yel)
        out.append(
            _Layout(
                p, tuple(inter), yel, red,
                float(sum(program.phases[j].duration for j in yel)),
                float(sum(program.phases[j].duration for j in red)),
            )
        )
    return out


def check_plan(plan: TimingPlan, network: RoadNetwork, *, min_yellow_s: float = MIN_YELLOW_S) -> None:
    """The basic checks :func:`write_sumo_additional` makes; :class:`PlanError` naming the
    signal and the rule on the first failure.

    Rules: stages match the base program's green phases; cycle > 0 and
    Σ (green + yellow + all-red) == cycle (±1e-6 s); 0 ≤ offset < cycle; green ≥ min green;
    yellow ≥ ``min_yellow_s`` (3 s) where the base program has a yellow after the stage;
    yellow / all-red > 0 only where the base program has such phases; all times ≥ 0.
    (Conflicting greens, all-red shorter than the network's, etc. are the full safety
    validator's job.)
    """
    network = plan_network(plan, network)
    for sid, t in plan.signals.items():
        if t.signal_id != sid:
            raise PlanError(f"signal {sid!r}: rule id: its timing names signal {t.signal_id!r}")
        program = _base_program(network, sid, t.program_id)
        layout = _layout(program, t)
        if not (math.isfinite(t.cycle_s) and t.cycle_s > 0):
            raise PlanError(f"signal {sid!r}: rule cycle: cycle {t.cycle_s!r} s must be > 0")
        total = t.stage_sum_s
        if abs(total - t.cycle_s) > _TOL:
            raise PlanError(
                f"signal {sid!r}: rule cycle sum: Σ(green + yellow + all-red) = {total:g} s "
                f"but cycle = {t.cycle_s:g} s"
            )
        if not (0.0 <= t.offset_s < t.cycle_s):
            raise PlanError(
                f"signal {sid!r}: rule offset: offset {t.offset_s:g} s must satisfy "
                f"0 <= offset < cycle ({t.cycle_s:g} s)"
            )
        for k, (st, lay) in enumerate(zip(t.stages, layout, strict=True)):
            where = f"signal {sid!r}: stage {k} (phase {st.phase_index})"
            for name, v in (("green", st.green_s), ("yellow", st.yellow_s), ("all-red", st.allred_s),
                            ("min green", st.min_green_s)):
                if not (math.isfinite(v) and v >= 0):
                    raise PlanError(f"{where}: rule times: {name} {v!r} s must be >= 0")
            if st.green_s <= 0:
                raise PlanError(f"{where}: rule min green: green {st.green_s:g} s must be > 0")
            if st.green_s < st.min_green_s - _TOL:
                raise PlanError(
                    f"{where}: rule min green: green {st.green_s:g} s < minimum green {st.min_green_s:g} s"
                )
            need_y = min_yellow_s if lay.base_yellow_s > _TOL else 0.0
            if st.yellow_s < need_y - _TOL:
                raise PlanError(
                    f"{where}: rule yellow: yellow {st.yellow_s:g} s < {need_y:g} s "
                    f"(base program has {lay.base_yellow_s:g} s)"
                )
            if st.yellow_s > _TOL and lay.base_yellow_s <= 0:
                raise PlanError(
                    f"{where}: rule yellow: plan has {st.yellow_s:g} s yellow but the base program "
                    "has no yellow phase after this stage"
                )
            if st.allred_s > _TOL and lay.base_allred_s <= 0:
                raise PlanError(
                    f"{where}: rule all-red: plan has {st.allred_s:g} s all-red but the base program "
                    "has no all-red phase after this stage"
                )


def _ms(x: float) -> int:
    return int(round(x * 1000.0))


def _fmt(ms: int) -> str:
    s = f"{ms / 1000.0:.3f}".rstrip("0").rstrip(".")
    return s or "0"


def _scaled(program: Program, phases: tuple[int, ...], base_s: float, total_s: float) -> list[tuple[int, int]]:
    """Durations (ms) of ``phases`` scaled from their base sum to ``total_s``; residue last."""
    if not phases:
        return []
    total = _ms(total_s)
    out, used = [], 0
    for n, j in enumerate(phases):
        if n == len(phases) - 1:
            d = total - used
        else:
            d = int(total * program.phases[j].duration / base_s) if base_s > 0 else 0
        used += d
        out.append((j, d))
    return out


def write_sumo_additional(
    plan: TimingPlan,
    network: RoadNetwork,
    path: str | os.PathLike[str],
    *,
    program_id: str = "greenwave",
    min_yellow_s: float | None = None,
    standards: Any = None,
) -> Path:
    """Write ``plan`` as SUMO ``<tlLogic type="static">`` programs; return ``path``.

    Each signal's program is its base program's phases, rotated to start with stage 0's green
    phase: each stage's green phase lasts the plan's green, the phases of its intergreen keep
    their states, the yellow ones (showing ``y``) scaled to the plan's yellow and the others to
    its all-red (in proportion to their base durations). Durations are written in ms
    resolution (phases of 0 ms are dropped). ``offset`` = ``offset_s``, so stage 0's green
    starts at sim time ``t ≡ offset_s (mod cycle)`` (SUMO's semantics, see the module docstring).
    The file is written atomically. Loading it with the net makes SUMO run these programs.

    Raises :class:`PlanError` (naming signal and rule) when :func:`check_plan` or the safety
    validator (:func:`greenwave.controllers.safety.assert_safe`: conflicting greens, also
    across phase changes, minimum green, yellow, all-red, cycle sum, offset) fails; nothing is
    written then. ``min_yellow_s`` (``None``: 3 s) is the shortest yellow accepted; ``standards``
    the :class:`~greenwave.controllers.safety_rules.SafetyStandards` (``None``: defaults). A file that
    cannot be written raises :class:`PlanError` naming it.
    """
    if not isinstance(program_id, str) or not program_id:
        raise PlanError(f"program_id must be a non-empty string, got {program_id!r}")
    from greenwave.controllers.safety import assert_safe, check_limit

    network = plan_network(plan, network)
    check_limit("min_yellow_s", min_yellow_s, optional=True)
    ym = min_yellow_s if min_yellow_s is not None else (MIN_YELLOW_S if standards is None else standards.min_yellow_s)
    check_plan(plan, network, min_yellow_s=ym)
    assert_safe(plan, network, min_yellow_s=ym, standards=standards)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<!-- written by greenwave -->", "<additional>"]
    for sid, t in plan.signals.items():
        program = _base_program(network, sid, t.program_id)
        layout = _layout(program, t)
        phases: list[tuple[int, int]] = []
        for st, lay in zip(t.stages, layout, strict=True):
            phases.append((lay.green, _ms(st.green_s)))
            inter = dict(_scaled(program, lay.yellow, lay.base_yellow_s, st.yellow_s))
            inter.update(_scaled(program, lay.allred, lay.base_allred_s, st.allred_s))
            phases.extend((j, inter[j]) for j in lay.order)
        lines.append(
            f"    <tlLogic id={quoteattr(sid)} type=\"static\" programID={quoteattr(program_id)} "
            f"offset=\"{_fmt(_ms(t.stage0_green_start_s))}\">"
        )
        lines.append(f"        <!-- base program {t.program_id!r}, cycle {_fmt(_ms(t.cycle_s))} s -->")
        if sid in plan.designs:
            design = plan.designs[sid]
            about = f"stage design {design.name!r} ({design.n_stages} stages): {design.provenance}".replace("--", "")
            lines.append(f"        <!-- {about} -->")
        for j, d in phases:
            if d <= 0:
                continue
            ph = program.phases[j]
            name = f" name={quoteattr(ph.name)}" if ph.name else ""
            lines.append(f"        <phase duration=\"{_fmt(d)}\" state={quoteattr(ph.state)}{name}/>")
        lines.append("    </tlLogic>")
    lines.append("</additional>")
    out = Path(path)
    write_plan_file(out, "\n".join(lines) + "\n", "SUMO additional file")
    return out


def write_plan_file(path: Path, data: str | bytes, what: str) -> Path:
    """Write ``data`` to ``path`` atomically; :class:`PlanError` naming the file when it cannot
    be written (a folder, no permission, disk full) — never a bare ``OSError``."""
    from greenwave.engine.results import write_bytes_atomic

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


# ------------------------------------------------------------------------------------------
# controller


@register
class FixedPlanController(ProgramController):
    """Runs a timing plan from a JSON file as fixed-time SUMO programs.

    Options: ``plan`` (path of a plan JSON, required; relative paths from the current folder),
    ``program_id`` (SUMO program id to write, default ``"greenwave"``).
    """

    name = "fixed"
    kind = "greenwave"

    @classmethod
    def declared_options(cls) -> frozenset[str]:
        return frozenset({"plan", "program_id"})

    def programs(self, ctx: RunContext) -> Path | None:

        unknown = set(self.options) - {"plan", "program_id"}
        if unknown:
            raise ScenarioError(
                f"controller 'fixed': unknown options {sorted(unknown)}; valid: plan, program_id"
            )
        raw = self.options.get("plan")
        if not isinstance(raw, (str, os.PathLike)) or not str(raw):
            raise ScenarioError("controller 'fixed': option 'plan' (path of a timing-plan JSON) is required")
        plan = TimingPlan.from_json(Path(raw))
        network = ctx.network()
        pid = self.options.get("program_id", "greenwave")
        return write_sumo_additional(plan, network, Path(ctx.workdir) / "fixed_plan.add.xml", program_id=str(pid))
