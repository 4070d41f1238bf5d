"""The SUMO program writer: a timing plan as ``<tlLogic>`` programs, fixed-time or actuated by SUMO."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from xml.sax.saxutils import quoteattr

from greenwave.controllers.plans.layout import (
    base_program,
    check_plan,
    plan_network,
    scaled_phase_ms,
    stage_layouts,
    to_ms,
)
from greenwave.controllers.plans.safety import assert_safe, check_limit
from greenwave.controllers.plans.safety_rules import DEFAULT_STANDARDS, stage_floors
from greenwave.controllers.plans.timing import MIN_YELLOW_S, TimingPlan, write_plan_file
from greenwave.errors import PlanError

if TYPE_CHECKING:
    from greenwave.networks.model import RoadNetwork

__all__ = ["ACTUATED_MAX_GREEN_S", "ProgramControl", "write_sumo_additional"]

#: How SUMO runs a written plan: fixed-time, or actuated by SUMO's gap- or delay-based logic.
ProgramControl = Literal["static", "actuated", "delay_based"]
#: An actuated green may run to twice its planned length, at most this long (s), never shorter
#: than planned.
ACTUATED_MAX_GREEN_S = 60.0


def _whole_s(ms: float) -> int:
    """``ms`` rounded up to whole seconds (in ms). Actuated programs are written in whole seconds:
    SUMO switches phases on its steps and carries a phase's fraction into the next one, so with
    1 s steps a 3.4 s yellow showed 3 or 4 s and a green of minDur 9.334 s then ended after 9 s,
    below its floor; rounded up, every phase shows at least its time."""
    return int(math.ceil(ms / 1000.0 - 1e-9)) * 1000 if ms > 0 else 0


def _fmt(ms: int) -> str:
    s = f"{ms / 1000.0:.3f}".rstrip("0").rstrip(".")
    return s or "0"


def write_sumo_additional(
    plan: TimingPlan,
    network: RoadNetwork,
    path: str | os.PathLike[str],
    *,
    program_id: str = "greenwave",
    min_yellow_s: float | None = None,
    standards: Any = None,
    control: ProgramControl = "static",
) -> Path:
    """Write ``plan`` as SUMO ``<tlLogic type="static">`` programs; return ``path``.

    ``control`` ``"actuated"`` or ``"delay_based"`` writes the same phases as a program of that
    SUMO type instead: each stage's green may end at the stage's ``min_green_s`` (never below
    the floors the validator holds the plan to, minimum green and pedestrian time) and run to
    ``max(green, min(2 × green,`` :data:`ACTUATED_MAX_GREEN_S` ``))`` (within the longest green
    allowed); yellows and all-reds keep the plan's durations, every duration rounded up to whole
    seconds (SUMO's steps), and SUMO places its own detectors. The plan's offsets then only set
    where the first cycle starts.

    Each signal's program is its base program's phases, rotated to start with stage 0's green
    phase: each stage's green phase lasts the plan's green, the phases of its intergreen keep
    their states, the yellow ones (showing ``y``) scaled to the plan's yellow and the others to
    its all-red (in proportion to their base durations). Durations are written in ms
    resolution (phases of 0 ms are dropped). ``offset`` = ``offset_s``, so stage 0's green
    starts at sim time ``t ≡ offset_s (mod cycle)`` (SUMO's semantics, see
    :mod:`greenwave.controllers.plans.timing`). The file is written atomically. Loading it with
    the net makes SUMO run these programs.

    Raises :class:`PlanError` (naming signal and rule) when
    :func:`~greenwave.controllers.plans.layout.check_plan` or the safety validator
    (:func:`greenwave.controllers.plans.safety.assert_safe`: conflicting greens, also across
    phase changes, minimum green, yellow, all-red, cycle sum, offset) fails; nothing is written
    then. ``min_yellow_s`` (``None``: 3 s) is the shortest yellow accepted; ``standards`` the
    :class:`~greenwave.controllers.plans.safety_rules.SafetyStandards` (``None``: defaults). A
    file that cannot be written raises :class:`PlanError` naming it.
    """
    if not isinstance(program_id, str) or not program_id:
        raise PlanError(f"program_id must be a non-empty string, got {program_id!r}")
    if control not in ("static", "actuated", "delay_based"):
        raise PlanError(f"control must be static, actuated or delay_based, got {control!r}")

    network = plan_network(plan, network)
    check_limit("min_yellow_s", min_yellow_s, optional=True)
    ym = min_yellow_s if min_yellow_s is not None else (MIN_YELLOW_S if standards is None else standards.min_yellow_s)
    check_plan(plan, network, min_yellow_s=ym)
    assert_safe(plan, network, min_yellow_s=ym, standards=standards)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<!-- written by greenwave -->", "<additional>"]
    for sid, t in plan.signals.items():
        program = base_program(network, sid, t.program_id)
        layout = stage_layouts(program, t)
        phases: list[tuple[int, int]] = []
        bounds: dict[int, tuple[int, int]] = {}  # position in phases → (minDur, maxDur) ms
        actuated = control != "static"
        floors = stage_floors(network, sid, program, standards or DEFAULT_STANDARDS) if actuated else []
        for k, (st, lay) in enumerate(zip(t.stages, layout, strict=True)):
            if actuated:
                fl = floors[k]  # the validator's floors: an actuated green never ends below them
                low = min(max(st.min_green_s, fl.green_s, fl.pedestrian_s), st.green_s)
                high = max(st.green_s, min(2.0 * st.green_s, ACTUATED_MAX_GREEN_S, fl.max_green_s))
                bounds[len(phases)] = (_whole_s(low * 1000.0), _whole_s(high * 1000.0))
            phases.append((lay.green, _whole_s(st.green_s * 1000.0) if actuated else to_ms(st.green_s)))
            inter = dict(scaled_phase_ms(program, lay.yellow, lay.base_yellow_s, st.yellow_s))
            inter.update(scaled_phase_ms(program, lay.allred, lay.base_allred_s, st.allred_s))
            phases.extend((j, _whole_s(inter[j]) if actuated else inter[j]) for j in lay.order)
        lines.append(
            f"    <tlLogic id={quoteattr(sid)} type=\"{control}\" programID={quoteattr(program_id)} "
            f"offset=\"{_fmt(to_ms(t.stage0_green_start_s))}\">"
        )
        lines.append(f"        <!-- base program {t.program_id!r}, cycle {_fmt(to_ms(t.cycle_s))} s -->")
        if sid in plan.designs:
            design = plan.designs[sid]
            about = f"stage design {design.name!r} ({design.n_stages} stages): {design.provenance}".replace("--", "")
            lines.append(f"        <!-- {about} -->")
        for k, (j, d) in enumerate(phases):
            if d <= 0:
                continue
            ph = program.phases[j]
            name = f" name={quoteattr(ph.name)}" if ph.name else ""
            dur = f"minDur=\"{_fmt(bounds[k][0])}\" maxDur=\"{_fmt(bounds[k][1])}\" " if k in bounds else ""
            lines.append(f"        <phase duration=\"{_fmt(d)}\" {dur}state={quoteattr(ph.state)}{name}/>")
        lines.append("    </tlLogic>")
    lines.append("</additional>")
    out = Path(path)
    write_plan_file(out, "\n".join(lines) + "\n", "SUMO additional file")
    return out

