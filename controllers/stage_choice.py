"""Which stage design each signal runs: candidates checked by the safety validator, chosen
with the model.

:func:`candidate_designs` generates every signal's designs
(:func:`greenwave.networks.stage_design.stage_designs`, SUMO's rebuilt programs included) and
drops the ones :func:`~greenwave.controllers.plans.safety.validate_plan` rejects, run on the design's
own default plan. :func:`choose_designs` picks one per signal for a controller's
``stage_design`` option:

``"own"``
    The network's own program everywhere (what greenwave did before stage design).
``"best"``
    Per signal, the design whose optimised plan the model predicts the least mean delay for, on
    the run's flows (each signal compiled and optimised alone, with a light search). Another
    design replaces the own one only when it predicts at least ``margin`` (5 %) less delay;
    where the model cannot plan the own program, only for a controller that then proves its
    plan in SUMO (the planners), never for ``max_pressure``. For the planners, an own program
    that cannot be driven safely (a stage greens two foes with priority, as greenwave reads
    fokr's signal-group plan) does not compete: the best complete generated design the model can
    plan replaces it, whatever the own one's figure (their proof keeps the own program when the
    design loses in SUMO). A design must green every link the own program greens, even one no
    movement uses (counting only used links, ``max_pressure`` took A10KW's two_stage and
    lead_left designs and lost: 900 s, 26.0 → 32.4 s/veh).
    ``max_pressure`` leaves such a signal on SUMO's actuated copy of its program: on fokr the
    design that replaced the city's plan lost (see below). ``conflict_graph`` competes only
    where no other generated design is valid (:data:`FALLBACK_DESIGN`).
a design name (``"rebuilt"``, ``"merged"``, ``"two_stage"``, ``"split"``, ``"lead_left"``,
``"conflict_graph"``)
    That design wherever a signal has it (valid), the own program elsewhere.

:func:`apply_choice` gives the network the controllers then work on (the chosen designs as
default programs) and :func:`choice_meta` what the plan file records about it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from greenwave.controllers.plans.layout import complete_plan
from greenwave.controllers.plans.safety import validate_plan
from greenwave.controllers.plans.timing import SignalTiming, StageTiming, TimingPlan
from greenwave.controllers.switching import (
    DEFAULT_MAX_GREEN_S,
    DEFAULT_MIN_GREEN_S,
    signal_stages,
    unsafe_own_programs,
)
from greenwave.engine.arrays import SUMO_PARAMS
from greenwave.engine.optimise import OptimiserSettings, optimise
from greenwave.engine.results import write_text_atomic
from greenwave.errors import NetworkError, PlanError, ScenarioError
from greenwave.networks.compile import SUMO_COMPILE_OPTIONS, compile_network, green_stage_phases
from greenwave.networks.rebuilt_stages import rebuilt_left_out
from greenwave.networks.signal_states import GREEN
from greenwave.networks.stage_design import (
    DESIGN_KINDS,
    StageDesign,
    design_transition,
    rebuilt_programs,
    stage_designs,
    stays_green_over,
    with_designs,
)

if TYPE_CHECKING:
    import pandas as pd

    from greenwave.engine.arrays import ModelParams
    from greenwave.networks.model import RoadNetwork

__all__ = [
    "DEFAULT_STAGE_DESIGN",
    "DesignChoice",
    "apply_choice",
    "candidate_designs",
    "check_stage_design_option",
    "choice_meta",
    "choose_designs",
    "design_plan",
    "design_signal_stages",
    "write_design_programs",
]

#: The ``stage_design`` of every greenwave controller unless told otherwise:
#: measured in SUMO (benchmarks/stage_designs.py, README), "best" lowered their delay on the
#: real junctions where another design won (RiLSA, cross, A10KW) and changed nothing elsewhere.
DEFAULT_STAGE_DESIGN = "best"
#: Relative delay reduction a design needs over the own program to replace it under "best".
MARGIN = 0.05
#: The design "best" considers only where no other generated design is valid: protected
#: phasing with more stages than the others, which the model favoured where SUMO did not
#: (DRT, one hour: max_pressure 19.8 → 24.6 s/veh when two joined clusters took it).
FALLBACK_DESIGN = "conflict_graph"


def check_stage_design_option(value: Any, where: str) -> str:
    """The ``stage_design`` option's value, or :class:`ScenarioError` saying what is valid."""
    valid = ("own", "best", *DESIGN_KINDS[1:])
    if not isinstance(value, str) or value not in valid:
        raise ScenarioError(f"{where}: stage_design must be one of {', '.join(valid)}; got {value!r}")
    return value


def design_plan(design: StageDesign) -> Any:
    """A one-signal :class:`~greenwave.controllers.plans.timing.TimingPlan` running ``design`` with its
    default greens (for the validator); its stages are the design program's green phases."""
    program = design.program()
    idx = green_stage_phases(program)
    n = len(idx)
    stages = []
    for k, p in enumerate(idx):
        nxt = (k + 1) % n
        y = design.yellow_s[k][nxt] if n > 1 else 0.0
        r = design.allred_s[k][nxt] if n > 1 else 0.0
        ending = n > 1 and any(a in GREEN and b not in GREEN for a, b in zip(design.stages[k], design.stages[nxt],
                                                                          strict=True))
        stages.append(StageTiming(phase_index=p, green_s=float(program.phases[p].duration),
                                  yellow_s=y if ending else 0.0, allred_s=r if ending else 0.0,
                                  min_green_s=float(design.min_green_s[k])))
    cycle = float(sum(s.split_s for s in stages))
    return TimingPlan({design.signal_id: SignalTiming(design.signal_id, design.program_id, cycle, 0.0, tuple(stages))},
                      designs={} if design.is_own else {design.signal_id: design})


def candidate_designs(
    network: RoadNetwork, *, workdir: Path | None = None, signals: list[str] | None = None,
) -> tuple[dict[str, list[StageDesign]], dict[str, dict[str, str]]]:
    """Every signal's valid designs (own first), and the rejected ones with why.

    A generated design is rejected when the generator finds a rule broken or the safety
    validator rejects its default plan (the own program is kept whatever the validator says:
    controllers already leave unsafe own programs alone)."""
    key = _net_key(network, signals)
    if key is not None and key in _CANDIDATES:  # the same net in this process: same candidates
        v, r = _CANDIDATES[key]
        return {k: list(x) for k, x in v.items()}, {k: dict(x) for k, x in r.items()}
    try:
        rebuilt = rebuilt_programs(network.path, workdir=workdir)
        rebuilt_why, rebuilt_error = rebuilt_left_out(network.path, workdir=workdir), ""
    except NetworkError as exc:
        rebuilt, rebuilt_why, rebuilt_error = {}, {}, str(exc)
    valid: dict[str, list[StageDesign]] = {}
    rejected: dict[str, dict[str, str]] = {}
    for sid in signals if signals is not None else list(network.signals):
        try:
            designs, why = stage_designs(network, sid, rebuilt=rebuilt.get(sid))
        except NetworkError as exc:  # e.g. geometry that cannot be read: the own program only
            own = network.signals[sid].default_program
            valid[sid] = [] if own is None else [StageDesign(sid, "own", "the network's own program", (), (), (),
                                                             (), (), own.id, base=own)]
            rejected[sid] = {k: f"no designs generated: {exc}" for k in DESIGN_KINDS[1:]}
            continue
        if "rebuilt" in why and (rebuilt_error or sid in rebuilt_why):
            why["rebuilt"] = rebuilt_error or rebuilt_why[sid]
        keep = []
        for d in designs:
            if not d.is_own:
                plan = design_plan(d)
                try:
                    net_d = with_designs(network, {sid: d})
                    found = validate_plan(complete_plan(plan, net_d), net_d)
                except (PlanError, NetworkError) as exc:
                    why[d.name] = f"the validator cannot check it: {exc}"
                    continue
                if found:
                    why[d.name] = f"the validator rejects it: {found[0]}"
                    continue
            keep.append(d)
        valid[sid] = keep
        rejected[sid] = why
    if key is not None:
        _CANDIDATES.clear()
        _CANDIDATES[key] = ({k: list(x) for k, x in valid.items()}, {k: dict(x) for k, x in rejected.items()})
    return valid, rejected


_CANDIDATES: dict[tuple[Any, ...], tuple[dict[str, list[StageDesign]], dict[str, dict[str, str]]]] = {}
_CHOICES: dict[tuple[Any, ...], dict[str, DesignChoice]] = {}


def _net_key(network: RoadNetwork, signals: list[str] | None) -> tuple[Any, ...] | None:
    """What the candidates of ``network`` depend on: its file (and its own programs in it)."""
    try:
        path = Path(network.path)
        return (str(path.resolve()), path.stat().st_mtime, None if signals is None else tuple(signals),
                tuple((sid, sig.default_program) for sid, sig in sorted(network.signals.items())))
    except OSError:
        return None


@dataclass
class DesignChoice:
    """The design chosen for one signal, with the model's mean delay (s/veh) of every candidate."""

    design: StageDesign
    why: str
    delay_s: dict[str, float] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)


def choose_designs(
    network: RoadNetwork,
    flows: pd.DataFrame | None,
    mode: str,
    *,
    workdir: Path | None = None,
    params: ModelParams | None = None,
    compile_options: Mapping[str, Any] | None = None,
    signals: list[str] | None = None,
    seed: int = 0,
    proof_follows: bool = True,
) -> dict[str, DesignChoice]:
    """One design per signal for ``mode`` (``own``, ``best`` or a design name; see module doc).

    ``flows`` (movement flows, veh/h) are needed for ``best``; signals whose candidates cannot
    be compiled or optimised keep their own program, and the choice says why.
    ``proof_follows``: the caller proves its plan in SUMO against the network's programs (the
    planners), so under ``best`` a design may replace an own program the model cannot plan;
    without a proof (``max_pressure``) nothing replaces it: the model has no figure to beat.
    """
    check_stage_design_option(mode, "stage design")
    sids = signals if signals is not None else [s for s, sig in network.signals.items()
                                                if sig.default_program is not None]
    if mode == "own":
        out = {}
        for sid in sids:
            designs, _ = stage_designs(network, sid)
            if designs:
                out[sid] = DesignChoice(designs[0], "stage_design = 'own'")
        return out
    memo = _net_key(network, sids)
    if memo is not None and mode == "best" and flows is not None:
        import pandas as pd

        memo = (*memo, mode, proof_follows, network.saturation_flow_per_lane, repr(params), repr(compile_options), seed,
                int(pd.util.hash_pandas_object(flows, index=False).sum()))
        if memo in _CHOICES:  # another controller of this process, same net and flows
            return dict(_CHOICES[memo])
    valid, rejected = candidate_designs(network, workdir=workdir, signals=signals)
    # each signal's model gets only the flows leaving its approaches (all that compiling it looks
    # up): the whole table per design made the choice grow with the square of the network's size
    # (a 20 × 20 grid: 33.7 → 25.0 s, every choice and figure the same); flows without the column
    # go whole, so that compiling names what is missing
    by_from = None
    if flows is not None and "from_edge" in flows.columns:
        import pandas as pd

        by_from = {str(e): g for e, g in flows.groupby(flows["from_edge"].astype(str), sort=False)}
    # for the planners an own program that cannot be driven safely does not compete (see the module doc)
    unsafe_own = unsafe_own_programs(network) if proof_follows and mode == "best" else {}
    out = {}
    for sid in sids:
        designs = valid.get(sid, [])
        if not designs:
            continue
        own = designs[0]
        if mode != "best":
            named = next((d for d in designs if d.name == mode), None)
            if named is None:
                why = rejected.get(sid, {}).get(mode, "not generated")
                out[sid] = DesignChoice(own, f"no valid {mode!r} design ({why}): own program kept",
                                        rejected=rejected.get(sid, {}))
            else:
                out[sid] = DesignChoice(named, f"stage_design = {mode!r}", rejected=rejected.get(sid, {}))
            continue
        if flows is None:
            raise ScenarioError("stage_design = 'best' needs the run's movement flows")
        if any(not d.is_own and d.name != FALLBACK_DESIGN for d in designs):
            designs = [d for d in designs if d.name != FALLBACK_DESIGN]
        # a design that leaves links red which another design serves cannot win on the model's
        # delay: the links it never serves are not in its figure at all
        served = {d.name: {k for st in d.stages for k, c in enumerate(st) if c in GREEN} for d in designs}
        widest = set().union(*served.values())
        complete = [d for d in designs if served[d.name] >= widest] or designs
        failed: dict[str, str] = {}
        sig_flows = flows
        if by_from is not None:
            edges = dict.fromkeys(x.from_edge for m in network.signals[sid].movements for x in (m, *m.merged))
            mine = [by_from[e] for e in edges if e in by_from]
            sig_flows = pd.concat(mine) if mine else flows.iloc[:0]
        delays = {d.name: (_model_delay(network, d, sig_flows, params, compile_options, seed, failed) if d in complete
                           else math.inf) for d in designs}
        base = delays[own.name]
        finite = {k: v for k, v in delays.items() if math.isfinite(v)}
        best = min(finite, key=lambda k: (finite[k], k != own.name)) if finite else own.name
        unsafe = unsafe_own.get(sid, "")
        safe = {k: v for k, v in finite.items() if k != own.name}
        if unsafe and safe:
            # the own program's figure does not count: greenwave may not plan on it
            best = min(safe, key=lambda k: (safe[k], k))
            why = (f"the own program cannot be driven safely ({unsafe}), so it does not compete; {best!r} predicts "
                   f"{safe[best]:.1f} s/veh (model, optimised plan, signal alone)")
            if not math.isfinite(base):
                why += f"; the model cannot plan the own program ({failed.get(own.name, 'no figure')})"
        elif not finite:
            why = f"own program kept: the model could plan no design ({_reasons(failed)})"
        elif best != own.name and math.isfinite(base) and finite[best] > base * (1.0 - MARGIN):
            why = (f"own program kept: best other design {best!r} predicts {finite[best]:.1f} s/veh, "
                   f"not {MARGIN:.0%} below the own {base:.1f} s/veh")
            best = own.name
        elif best == own.name:
            why = f"the own program predicts the least delay ({base:.1f} s/veh)"
            if unsafe:
                why += f"; it cannot be driven safely ({unsafe}), but no complete safe design could replace it"
        elif not math.isfinite(base) and own not in complete:
            why = (f"the own program never shows green to links {sorted(widest - served[own.name])}, which "
                   f"this design serves; it predicts {finite[best]:.1f} s/veh (model, optimised plan, signal alone)")
        elif not proof_follows and math.isnan(base):
            # measured on Braunschweig's fokr_bs_demo (the city's signal-group plan, which the model
            # reads as 16 stages needing a 235 s cycle): max_pressure on the four-stage "split"
            # design lost to the city's plan under SUMO's actuated control (900 s, the demo's
            # demand, split predicted at 499.5 s/veh: 101.4 against 65.0 s/veh; one hour of the
            # recorded demand, split predicted at 69.8: time loss 46.8 against 33.0 s/veh)
            why = (f"own program kept: the model cannot plan it ({failed.get(own.name, 'no figure')}), so no "
                   f"design can be shown better (best other: {best!r}, {finite[best]:.1f} s/veh), and this "
                   "controller proves nothing in SUMO")
            best = own.name
        elif not math.isfinite(base):
            why = (f"predicts {finite[best]:.1f} s/veh mean delay (model, optimised plan, signal alone); the "
                   f"model cannot plan the own program ({failed.get(own.name, 'no figure')})")
        else:
            why = (f"predicts {finite[best]:.1f} s/veh mean delay against the own program's "
                   f"{base:.1f} s/veh (model, optimised plan, signal alone)")
        chosen = next(d for d in designs if d.name == best)
        out[sid] = DesignChoice(chosen, why, delays, rejected.get(sid, {}))
    if memo is not None and mode == "best" and flows is not None:
        _CHOICES.clear()
        _CHOICES[memo] = dict(out)
    return out


def _model_delay(network: RoadNetwork, design: StageDesign, flows: pd.DataFrame, params: ModelParams | None,
                 compile_options: Mapping[str, Any] | None, seed: int, failed: dict[str, str]) -> float:
    """Mean delay (s/veh) the model predicts for ``design``'s optimised plan, its signal alone;
    NaN when it cannot plan the design (why in ``failed[design.name]``)."""
    net_d = with_designs(network, {design.signal_id: design})
    try:
        compiled = compile_network(net_d, flows, signals=[design.signal_id],
                                   **(SUMO_COMPILE_OPTIONS if compile_options is None else compile_options))
        if compiled.n_signals == 0 or float(compiled.link_flow_vps.sum()) <= 0:
            failed[design.name] = "no demand crosses the signal"
            return math.nan
        res = optimise(compiled, params=params or SUMO_PARAMS,
                       settings=OptimiserSettings(seed=seed, starts=1, global_candidates=4, max_passes=2,
                                                  parallel=False))
    except (NetworkError, PlanError, ValueError) as exc:
        failed[design.name] = str(exc)
        return math.nan
    return float(res.mean_delay_s)


def _reasons(failed: Mapping[str, str]) -> str:
    return "; ".join(f"{name}: {why}" for name, why in failed.items()) or "no design has demand"


def apply_choice(network: RoadNetwork, choice: Mapping[str, DesignChoice]) -> RoadNetwork:
    """``network`` with every chosen design as its signal's default program."""
    return with_designs(network, {sid: c.design for sid, c in choice.items()})


def choice_meta(mode: str, choice: Mapping[str, DesignChoice]) -> dict[str, Any]:
    """What a plan's ``meta["stage_design"]`` records: the mode and, per signal, the design,
    why it won and the model's delay of every candidate (s/veh)."""
    return {
        "mode": mode,
        "signals": {
            sid: {"design": c.design.name, "stages": c.design.n_stages, "why": c.why,
                  "model_delay_s": {k: (round(v, 3) if math.isfinite(v) else None) for k, v in c.delay_s.items()},
                  "rejected": dict(c.rejected)}
            for sid, c in sorted(choice.items())
        },
    }


def own_incomplete(network: RoadNetwork) -> list[str]:
    """Signals whose running program never shows green to a used vehicle link that another of
    their programs serves (SUMO's bs3d game: four one-stage programs switched by the player; the
    one running serves 4 of 20 links, so keeping its stages starves the rest)."""
    out = []
    for sid, sig in network.signals.items():
        own = sig.default_program
        if own is None:
            continue
        vehicle = {m.link_index for m in sig.movements if m.is_used and not m.is_pedestrian}

        def green(programs: Any) -> set[int]:
            return {k for pr in programs for ph in pr.phases for k, c in enumerate(ph.state) if c in GREEN}

        if (green(sig.programs.values()) - green([own])) & vehicle:
            out.append(sid)
    return sorted(out)


def design_signal_stages(network: RoadNetwork, choice: Mapping[str, DesignChoice], *,
                         default_min_green_s: float = DEFAULT_MIN_GREEN_S,
                         default_max_green_s: float = DEFAULT_MAX_GREEN_S) -> dict[str, Any]:
    """:class:`~greenwave.controllers.switching.SignalStages` of every signal running a generated
    design, with the design's intergreen for every pair of stages (not only the cyclic ones).

    A link green in both stages keeps its green through the yellow and the all-red, as an
    overlap does on a street controller, unless a link ending its green must give way to it
    (its vehicles may wait inside the junction for it: a permitted left turner, or one waiting
    in a joined junction's median; :func:`~greenwave.networks.stage_design.stays_green_over`).
    The intergreens give every switch where a link ending gives way to such a vehicle link an
    all-red (:func:`~greenwave.networks.intergreens.intergreens`); a crossing green in both
    runs on where there is none. The programs greenwave writes (fixed plans, exports) still
    end and restart such links, since a phase with some green and no yellow reads as a stage.
    RiLSA example 2 (one hour, seeds 1-3, SUMO's rebuilt two stages, whose westbound through
    lanes are green in both): ``schedule`` 12.03 -> 11.54 s/veh, ``max_pressure`` 13.18 ->
    12.58; with the side road's median turners' 1.3 s clearance (0.9 before; 2 s at the
    network's 1 s steps) 12.20 and 13.30."""
    out = {}
    for sid, c in choice.items():
        d = c.design
        if d.is_own:
            continue
        sig = network.signals[sid]
        st = signal_stages(sig, sig.programs[d.program_id], default_min_green_s=default_min_green_s,
                           default_max_green_s=default_max_green_s)
        if st is None:
            continue
        transitions = {}
        keep = stays_green_over(sig)
        for i in range(d.n_stages):
            for j in range(d.n_stages):
                if i != j:
                    transitions[(i, j)] = tuple(design_transition(d.stages[i], d.stages[j],
                                                                  yellow_s=d.yellow_s[i][j],
                                                                  all_red_s=d.allred_s[i][j], keep_through=keep))
        out[sid] = replace(st, transitions=transitions)
    return out


def write_design_programs(
    network: RoadNetwork, choice: Mapping[str, DesignChoice], path: Path, *, actuated_id: str | None = None,
    max_green_s: float = 50.0, signals: Iterable[str] | None = None,
) -> Path | None:
    """The chosen generated designs as SUMO programs (``programID`` = the design's), for local
    fallback; with ``actuated_id`` also as gap-actuated programs under that id (green phases
    from their minimum green to ``max_green_s``). ``None`` when no signal runs a generated design.

    ``signals``: only these (the ones a controller drives). SUMO activates the program loaded
    last, so a design written for a signal left on its own program would replace that program."""
    only = None if signals is None else set(signals)
    lines = ["<additional>"]
    for sid, c in sorted(choice.items()):
        if c.design.is_own or (only is not None and sid not in only):
            continue
        program = network.signals[sid].programs[c.design.program_id]
        variants = [(program.id, "static")] + ([(actuated_id, "actuated")] if actuated_id else [])
        for pid, kind in variants:
            lines.append(f"    <tlLogic id={quoteattr(sid)} type=\"{kind}\" programID={quoteattr(pid)} offset=\"0\">")
            for ph in program.phases:
                bounds = ""
                if kind == "actuated" and ph.min_dur is not None:
                    bounds = f" minDur=\"{ph.min_dur:g}\" maxDur=\"{max(max_green_s, ph.duration, ph.min_dur):g}\""
                lines.append(f"        <phase duration=\"{ph.duration:g}\" state={quoteattr(ph.state)}{bounds}/>")
            lines.append("    </tlLogic>")
    if len(lines) == 1:
        return None
    lines.append("</additional>")
    write_text_atomic("\n".join(lines) + "\n", path)
    return path
