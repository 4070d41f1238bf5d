"""Export of timing plans to controllers: the common part behind ``greenwave export``.

Every exporter here validates first (:func:`greenwave.controllers.plans.safety.assert_safe`) and
refuses an unsafe plan before anything is written or sent. Controllers work in whole seconds
(NTCIP 1202 and GB/T 20999 time objects are integers; NTCIP's yellow and red clearance are
tenths of seconds), so :func:`quantise_plan` first turns a plan into whole seconds without
ever shortening a yellow, an all-red, a minimum green or a pedestrian time, and the quantised
plan is validated again: what is exported is exactly the plan that was proven safe.

Formats (:data:`FORMATS`): ``json`` (the plan itself, :meth:`TimingPlan.to_json`), ``sumo``
(``tlLogic`` additional file), ``utdf`` (Synchro UTDF combined CSV), ``ntcip`` (NTCIP 1202
objects sent by SNMP, :mod:`greenwave.controllers.export.ntcip`), ``gbt20999`` (GB/T 20999-2017
frames, :mod:`greenwave.controllers.export.gbt20999`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from greenwave.controllers.plans.timing import SignalTiming, TimingPlan
from greenwave.errors import PlanError

if TYPE_CHECKING:
    from greenwave.controllers.plans.safety_rules import SafetyStandards
    from greenwave.networks.model import RoadNetwork

__all__ = [
    "FORMATS",
    "Address",
    "ExportError",
    "check_timeout",
    "export",
    "load_for_export",
    "max_change_s",
    "parse_targets",
    "per_target",
    "quantise_plan",
    "quantise_signal",
    "validated",
    "validation_lines",
]

FORMATS = ("sumo", "utdf", "ntcip", "gbt20999", "json")
T = TypeVar("T")


class ExportError(PlanError):
    """A plan could not be (completely) written or sent to a controller: the message says what
    was applied, what was not, and why (timeouts, refused objects, read-back mismatches)."""


@dataclass(frozen=True)
class Address:
    """A controller address: ``host``, ``port`` and the plan signal it is for (``None``: the
    only signal of the plan, or the one chosen with ``--signal``)."""

    host: str
    port: int
    signal_id: str | None = None

    def __str__(self) -> str:
        who = f"{self.signal_id}=" if self.signal_id else ""
        return f"{who}{self.host}:{self.port}"


def _address(text: str) -> Address:
    sid = None
    raw = text
    if "=" in text:
        sid, text = text.split("=", 1)
        if not sid:
            raise ExportError(f"--to {raw!r}: empty signal id before '='")
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        raise ExportError(f"--to {raw!r}: expected HOST:PORT or SIGNAL=HOST:PORT")
    try:
        p = int(port)
    except ValueError:
        raise ExportError(f"--to {raw!r}: port {port!r} is not an integer") from None
    if not 0 < p < 65536:
        raise ExportError(f"--to {raw!r}: port {p} outside 1..65535")
    return Address(host, p, sid)


def parse_targets(values: list[str], plan: TimingPlan, *, signal: str | None = None) -> list[Address]:
    """Controller addresses of ``--to`` values, each bound to one signal of ``plan``.

    A value is ``SIGNAL=HOST:PORT`` or ``HOST:PORT``; the latter is for ``signal`` (``--signal``)
    or, when the plan has one signal, that one. Raises :class:`ExportError` naming the value.
    """
    out: list[Address] = []
    for v in values:
        a = _address(v)
        sid = a.signal_id or signal
        if sid is None:
            if len(plan.signals) != 1:
                raise ExportError(
                    f"--to {v!r}: the plan has {len(plan.signals)} signals; say which one with "
                    f"SIGNAL=HOST:PORT or --signal (signals: {', '.join(list(plan.signals)[:8])}...)"
                )
            sid = next(iter(plan.signals))
        if sid not in plan.signals:
            raise ExportError(f"--to {v!r}: signal {sid!r} is not in the plan")
        out.append(Address(a.host, a.port, sid))
    seen = [a.signal_id for a in out if a.signal_id is not None]
    dup = {s for s in seen if seen.count(s) > 1}
    if dup:
        raise ExportError(f"--to: signal(s) {sorted(dup)} given more than one address")
    return out


def _ceil(x: float, step: float) -> float:
    return math.ceil(x / step - 1e-9) * step


def quantise_signal(t: SignalTiming, *, step_s: float = 1.0) -> SignalTiming:
    """``t`` in multiples of ``step_s``: never shorter yellow, all-red, minimum green or
    pedestrian times; the cycle rounded to the nearest step (raised where the rounded
    minimum greens and intergreens need more); greens floored, then the leftover steps given
    to the stages with the largest remainders (taken from the largest slack above the minimum
    green when intergreens grew); the offset rounded and re-referenced to the same point.
    Raises :class:`PlanError` for a non-finite or non-positive time that cannot be rounded.
    """
    if not (math.isfinite(step_s) and step_s > 0):
        raise PlanError(f"quantisation step must be > 0, got {step_s!r}")
    for v in (t.cycle_s, t.offset_s, *(x for s in t.stages for x in (s.green_s, s.yellow_s, s.allred_s))):
        if not math.isfinite(v):
            raise PlanError(f"signal {t.signal_id!r}: cannot quantise a non-finite time ({v!r})")
    n = len(t.stages)
    yel = [_ceil(s.yellow_s, step_s) for s in t.stages]
    red = [_ceil(s.allred_s, step_s) for s in t.stages]
    ming = [_ceil(max(s.min_green_s, (s.walk_s or 0.0) + (s.ped_clearance_s or 0.0)), step_s)
            for s in t.stages]
    ming = [max(m, step_s) for m in ming]
    inter = sum(yel) + sum(red)
    cycle = max(round(t.cycle_s / step_s) * step_s, inter + sum(ming))
    free_steps = round((cycle - inter) / step_s)
    raw = [max(s.green_s, m) / step_s for s, m in zip(t.stages, ming, strict=True)]
    steps = [max(math.floor(r + 1e-9), round(m / step_s)) for r, m in zip(raw, ming, strict=True)]
    diff = free_steps - sum(steps)
    order = sorted(range(n), key=lambda k: (-(raw[k] - math.floor(raw[k] + 1e-9)), k))
    i = 0
    while diff > 0:
        steps[order[i % n]] += 1
        diff -= 1
        i += 1
    while diff < 0:
        k = max(range(n), key=lambda k: (steps[k] - ming[k] / step_s, -k))
        steps[k] -= 1
        diff += 1
    stages = tuple(
        replace(
            s,
            green_s=steps[k] * step_s,
            yellow_s=yel[k],
            allred_s=red[k],
            min_green_s=_ceil(s.min_green_s, step_s),
            walk_s=None if s.walk_s is None else _ceil(s.walk_s, step_s),
            ped_clearance_s=None if s.ped_clearance_s is None else _ceil(s.ped_clearance_s, step_s),
        )
        for k, s in enumerate(t.stages)
    )
    start0 = (round(t.stage0_green_start_s / step_s) * step_s) % cycle
    q = replace(t, cycle_s=float(cycle), stages=stages, offset_s=0.0, offset_reference="green_start",
                reference_stage=0)
    q = replace(q, offset_s=float(start0))
    if (t.offset_reference, t.reference_stage) != ("green_start", 0):
        q = q.with_offset_reference(t.offset_reference, t.reference_stage)
    return q


def quantise_plan(plan: TimingPlan, *, step_s: float = 1.0) -> TimingPlan:
    """Every signal of ``plan`` through :func:`quantise_signal` (same meta and network)."""
    return TimingPlan({sid: quantise_signal(t, step_s=step_s) for sid, t in plan.signals.items()},
                      dict(plan.meta), net_file=plan.net_file)


def max_change_s(a: TimingPlan, b: TimingPlan) -> float:
    """Largest change of any green, yellow, all-red, cycle or offset between two plans, s."""
    worst = 0.0
    for sid, ta in a.signals.items():
        tb = b.signals[sid]
        worst = max(worst, abs(ta.cycle_s - tb.cycle_s))
        d = abs(ta.stage0_green_start_s - tb.stage0_green_start_s)
        worst = max(worst, min(d, abs(tb.cycle_s - d)))
        for sa, sb in zip(ta.stages, tb.stages, strict=True):
            worst = max(worst, abs(sa.green_s - sb.green_s), abs(sa.yellow_s - sb.yellow_s),
                        abs(sa.allred_s - sb.allred_s))
    return worst


def check_timeout(timeout_s: float) -> float:
    """``timeout_s`` as a float; :class:`ExportError` unless it is a finite number > 0."""
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not (
        math.isfinite(timeout_s) and timeout_s > 0
    ):
        raise ExportError(f"--timeout: expected a number of seconds > 0, got {timeout_s!r}")
    return float(timeout_s)


def per_target(targets: list[Address], send: Callable[[Address], T], what: str) -> list[T]:
    """``send`` to each target in turn. When one fails, the :class:`ExportError` says which
    controllers already hold the whole new plan (their signals now run it), which one failed
    (with its own report of what it applied) and which were not contacted — so a download to
    several controllers is never left half-applied without saying so."""
    done: list[T] = []
    for n, a in enumerate(targets):
        try:
            done.append(send(a))
        except ExportError as exc:
            if len(targets) == 1:
                raise
            ok = ", ".join(str(t) for t in targets[:n]) or "none"
            rest = ", ".join(str(t) for t in targets[n + 1:]) or "none"
            raise ExportError(
                f"{what} to {len(targets)} controllers stopped at {a}: {exc}\n"
                f"  controllers that received and confirmed the whole plan: {ok}\n"
                f"  controllers not contacted (still on their old plan): {rest}"
                + ("\n  the network now runs a mix of old and new plans — resend to the rest" if n else "")
            ) from exc
    return done


def validated(plan: TimingPlan, network: RoadNetwork, *, min_yellow_s: float | None = None,
              standards: SafetyStandards | None = None, partial: bool = True) -> None:
    """:func:`assert_safe` with the CLI's options (``min_yellow_s``: None = the standards')."""
    from greenwave.controllers.plans.safety import assert_safe

    assert_safe(plan, network, min_yellow_s=min_yellow_s, standards=standards, partial=partial)



# ------------------------------------------------------------------------------------------
# the CLI's work (greenwave export / greenwave validate)


def load_for_export(plan_path: str | os.PathLike[str], network_path: str | os.PathLike[str] | None
                    ) -> tuple[TimingPlan, RoadNetwork]:
    """The plan at ``plan_path`` and its network (``network_path``, else the plan's
    ``net_file``, relative paths from the plan's folder), completed (:func:`complete_plan`)."""
    from greenwave.controllers.plans.layout import complete_plan, plan_network
    from greenwave.networks import load_network

    plan = TimingPlan.from_json(plan_path)
    if network_path is None:
        if not plan.net_file:
            raise PlanError(f"{plan_path}: the plan records no network file (net_file); give --network NET")
        net = Path(plan.net_file)
        if not net.is_absolute() and not net.exists():
            net = Path(plan_path).parent / net
    else:
        net = Path(network_path)
    if not net.exists():
        raise PlanError(f"{plan_path}: network file {net} does not exist")
    network = load_network(net)
    missing = [sid for sid in plan.signals if sid not in network.signals]
    if missing:
        raise PlanError(f"{plan_path}: signal(s) {missing[:5]} are not in the network {net}")
    network = plan_network(plan, network)  # the stage designs the plan carries
    return complete_plan(plan, network), network


def validation_lines(plan: TimingPlan, network: RoadNetwork, *, min_yellow_s: float | None = None,
                     standards: SafetyStandards | None = None, partial: bool = True) -> tuple[bool, list[str]]:
    """(safe?, one line per cause — signal, stage, phase, rule, message, movements; the
    violations of one signal, stage and rule grouped, :func:`~greenwave.controllers.plans.safety.grouped`)."""
    from greenwave.controllers.plans.safety import check_limit, grouped, validate_plan

    check_limit("--min-yellow", min_yellow_s, optional=True)
    found = validate_plan(plan, network, min_yellow_s=min_yellow_s, standards=standards, partial=partial)
    return not found, [f"UNSAFE {line}" for line in grouped(found)]


def export(plan: TimingPlan, network: RoadNetwork, fmt: str, *, output: str | os.PathLike[str] | None = None,
           targets: list[Address] | None = None, protocol: str = "tcp", timeout_s: float = 2.0,
           min_yellow_s: float | None = None, program_id: str = "greenwave",
           standards: SafetyStandards | None = None, partial: bool = True) -> list[str]:
    """Validate ``plan`` and export it as ``fmt`` to ``output`` and/or ``targets``; return the
    lines to report. An unsafe plan raises :class:`PlanError` before anything is written or
    sent; a format that cannot go where it is asked to raises :class:`ExportError`."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    targets = targets or []
    if targets and fmt not in ("ntcip", "gbt20999"):
        raise ExportError(f"--to: format {fmt} is written to a file (--output), only ntcip and gbt20999 are sent")
    if fmt == "ntcip" and not targets:
        raise ExportError("format ntcip is sent by SNMP: give --to HOST:PORT (or SIGNAL=HOST:PORT)")
    if fmt != "ntcip" and not targets and output is None:
        raise ExportError(f"format {fmt}: give --output FILE")
    if fmt == "ntcip" and output is not None:
        raise ExportError("format ntcip is sent, not written: drop --output")
    if targets:
        check_timeout(timeout_s)
    if output is not None and Path(output).is_dir():
        raise ExportError(f"--output {output}: is a folder, expected a file name")
    if not plan.signals:
        raise ExportError("the plan has no signals: nothing to export (the previous export is left as it is)")
    validated(plan, network, min_yellow_s=min_yellow_s, standards=standards, partial=partial)
    lines = [f"validated: {len(plan.signals)} signals safe"]
    if fmt in ("ntcip", "gbt20999"):
        q = quantise_plan(plan)
        lines.append(f"whole seconds: largest change {max_change_s(plan, q):g} s; quantised plan validated again")
    out = None if output is None else Path(output)
    if fmt == "json":
        plan.to_json(out)  # type: ignore[arg-type]
        lines.append(f"wrote {out} (greenwave.timing-plan v2)")
    elif fmt == "sumo":
        from greenwave.controllers.plans.sumo_writer import write_sumo_additional

        write_sumo_additional(plan, network, out, program_id=program_id,  # type: ignore[arg-type]
                              min_yellow_s=min_yellow_s, standards=standards)
        lines.append(f"wrote {out} (SUMO tlLogic programs {program_id!r})")
    elif fmt == "utdf":
        from greenwave.controllers.export.utdf import write_utdf

        write_utdf(plan, network, out, min_yellow_s=min_yellow_s, standards=standards)  # type: ignore[arg-type]
        lines.append(f"wrote {out} (Synchro UTDF 8 combined CSV)")
    elif fmt == "ntcip":
        from greenwave.controllers.export.ntcip import download_plan

        for rep in download_plan(plan, network, targets, min_yellow_s=min_yellow_s, standards=standards,
                                 timeout_s=timeout_s):
            lines.append(rep.table())
            lines.append(f"signal {rep.signal_id}: all {len(rep.rows)} objects read back equal to what was sent")
    else:
        from greenwave.controllers.export import gbt20999

        if out is not None:
            gbt20999.write_frame_file(plan, network, out, min_yellow_s=min_yellow_s, standards=standards)
            n = len(gbt20999.read_frame_file(out))
            lines.append(f"wrote {out} ({n} GB/T 20999 frames: phase, stage, phase safety, pattern per signal)")
        if targets:
            acked = gbt20999.send_plan(plan, network, targets, protocol=protocol, timeout_s=timeout_s,
                                       min_yellow_s=min_yellow_s, standards=standards)
            for a in targets:
                lines.append(f"signal {a.signal_id}: {acked[str(a.signal_id)]} frames acknowledged by "
                             f"{a.host}:{a.port} ({protocol.upper()})")
    return lines
