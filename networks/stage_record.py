"""A signal's stage design as a record: stages, intergreens, minimum and default greens, and the
intergreen states shown between two stages. The designs are made in
:mod:`greenwave.networks.stage_design`, which this module serves.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from greenwave.errors import NetworkError
from greenwave.networks.model import Phase, Program, Signal
from greenwave.networks.signal_states import (
    GREEN,
    PERMISSIVE_GREEN,
    PRIORITY_GREEN,
    RED_LETTER,
    RED_YELLOW,
    TRANSITION,
    YELLOW_LETTER,
)

__all__ = ["StageDesign", "derived_transition", "design_transition", "stays_green_over", "trap_pairs"]


@dataclass(frozen=True)
class StageDesign:
    """One signal's phasing: stages, intergreens, minimum and default greens (s), provenance.

    ``stages[k]`` is stage ``k``'s SUMO state (one character per link index); the cycle runs
    them in order. ``yellow_s[i][j]`` / ``allred_s[i][j]`` are the intergreen from stage ``i``'s
    green to stage ``j``'s (0 on the diagonal). ``program_id`` is the program the design runs
    as (the own program's id for ``own``).
    """

    signal_id: str
    name: str
    provenance: str
    stages: tuple[str, ...]
    min_green_s: tuple[float, ...]
    green_s: tuple[float, ...]
    yellow_s: tuple[tuple[float, ...], ...]
    allred_s: tuple[tuple[float, ...], ...]
    program_id: str
    base: Program | None = field(default=None, compare=False, repr=False)

    @property
    def n_stages(self) -> int:
        return len(self.stages)

    @property
    def is_own(self) -> bool:
        """True for the network's own program (nothing to change)."""
        return self.name == "own"

    def cycle_intergreen_s(self) -> float:
        """Yellow + all-red of one cycle in stage order, s."""
        n = self.n_stages
        if n < 2:
            return 0.0
        return float(sum(self.yellow_s[k][(k + 1) % n] + self.allred_s[k][(k + 1) % n] for k in range(n)))

    def program(self) -> Program:
        """The design as a static SUMO program (the own program itself for ``own``)."""
        if self.is_own and self.base is not None:
            return self.base
        phases: list[Phase] = []
        n = self.n_stages
        for k, state in enumerate(self.stages):
            phases.append(Phase(duration=float(self.green_s[k]), state=state,
                                min_dur=float(self.min_green_s[k]), name=f"{self.name} stage {k}"))
            if n < 2:
                continue
            nxt = (k + 1) % n
            for st, d in design_transition(state, self.stages[nxt], yellow_s=self.yellow_s[k][nxt],
                                           all_red_s=self.allred_s[k][nxt]):
                if d > 0:
                    phases.append(Phase(duration=float(d), state=st))
        return Program(id=self.program_id, type="static", offset=0.0, phases=tuple(phases))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see ``docs/plan-format.md``)."""
        return {
            "name": self.name,
            "provenance": self.provenance,
            "program_id": self.program_id,
            "stages": list(self.stages),
            "min_green_s": [float(x) for x in self.min_green_s],
            "green_s": [float(x) for x in self.green_s],
            "yellow_s": [[float(x) for x in row] for row in self.yellow_s],
            "allred_s": [[float(x) for x in row] for row in self.allred_s],
        }

    @classmethod
    def from_dict(cls, signal_id: str, data: Any, *, where: str = "design") -> StageDesign:
        """Read :meth:`to_dict`'s form; :class:`NetworkError` naming the key when it is wrong."""

        def fail(key: str, why: str) -> NetworkError:
            return NetworkError(f"{where}: {key}: {why}")

        if not isinstance(data, dict):
            raise fail("<design>", f"expected an object, got {type(data).__name__}")
        keys = {"name", "provenance", "program_id", "stages", "min_green_s", "green_s", "yellow_s", "allred_s"}
        if set(data) - keys:
            raise fail(sorted(set(data) - keys)[0], "unknown key")
        for k in ("name", "provenance", "program_id"):
            if not isinstance(data.get(k), str):
                raise fail(k, f"missing or not a string ({data.get(k)!r})")
        stages = data.get("stages")
        if not isinstance(stages, list) or not stages or not all(isinstance(s, str) and s for s in stages):
            raise fail("stages", "expected a non-empty list of SUMO state strings")
        n = len(stages)
        if len({len(s) for s in stages}) != 1:
            raise fail("stages", "states of different lengths")

        def vec(key: str) -> tuple[float, ...]:
            v = data.get(key)
            if not isinstance(v, list) or len(v) != n or not all(_finite(x) for x in v):
                raise fail(key, f"expected {n} numbers >= 0")
            return tuple(float(x) for x in v)

        def mat(key: str) -> tuple[tuple[float, ...], ...]:
            v = data.get(key)
            if not isinstance(v, list) or len(v) != n or not all(
                    isinstance(r, list) and len(r) == n and all(_finite(x) for x in r) for r in v):
                raise fail(key, f"expected a {n} x {n} matrix of numbers >= 0")
            return tuple(tuple(float(x) for x in r) for r in v)

        return cls(signal_id, data["name"], data["provenance"], tuple(stages), vec("min_green_s"),
                   vec("green_s"), mat("yellow_s"), mat("allred_s"), data["program_id"])


def _finite(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x) and x >= 0


def derived_transition(
    from_state: str,
    to_state: str,
    *,
    yellow_s: float,
    all_red_s: float,
    red_yellow_s: float = 0.0,
) -> list[tuple[str, float]]:
    """The intergreen states (state, duration s) between two green stages, derived from them.

    Links green in both keep their green (the weaker of ``G``/``g``); links ending their green
    show ``y`` for ``yellow_s``; then all but the kept links show ``r`` for ``all_red_s`` and
    the starting links ``u`` for ``red_yellow_s``. When no link ends its green, no clearance is
    needed and the list is empty.
    """
    if len(from_state) != len(to_state):
        raise NetworkError(f"states {from_state!r} and {to_state!r} differ in length")
    ending = [a in GREEN and b not in GREEN for a, b in zip(from_state, to_state, strict=True)]
    if not any(ending):
        return []

    def kept(a: str, b: str) -> str | None:
        if a in GREEN and b in GREEN:
            return PERMISSIVE_GREEN if PERMISSIVE_GREEN in (a, b) else PRIORITY_GREEN
        if a == b and a not in GREEN:
            return a if a not in TRANSITION else RED_LETTER
        return None

    yellow, red, red_yellow = [], [], []
    for a, b, end in zip(from_state, to_state, ending, strict=True):
        k = kept(a, b)
        yellow.append(YELLOW_LETTER if end else (k if k is not None else RED_LETTER))
        red.append(k if k is not None else RED_LETTER)
        red_yellow.append(RED_YELLOW if (b in GREEN and a not in GREEN) else (k if k is not None else RED_LETTER))
    out = [("".join(yellow), float(yellow_s))]
    if all_red_s > 0:
        out.append(("".join(red), float(all_red_s)))
    if red_yellow_s > 0:
        out.append(("".join(red_yellow), float(red_yellow_s)))
    return out


def design_transition(
    from_state: str,
    to_state: str,
    *,
    yellow_s: float,
    all_red_s: float,
    keep_through: np.ndarray | None = None,
    red_yellow_s: float = 0.0,
) -> list[tuple[str, float]]:
    """The intergreen of a stage design from one stage to another: :func:`derived_transition`,
    except that with an all-red the links green in both stages end too (yellow, red, green
    again). A phase with some green and no yellow is a stage wherever greenwave reads a
    program, so an all-red phase keeping a link green would read as a stage of its own: the
    programs greenwave writes end them.

    ``keep_through`` (``n_links × n_links`` booleans, True where link ``k`` may stay green while
    link ``c`` clears: :func:`stays_green_over`) keeps a link green in both stages green through
    the all-red as well, unless a link ending its green there must give way to it: that link's
    vehicles may be waiting inside the junction for it and clear only when it stops (else a
    left turner on yellow would be trapped by traffic that keeps its green). The switcher
    shows such transitions (it reads no program back). Without an all-red every link green in
    both stages keeps its green, as :func:`derived_transition` has it; the intergreens give
    every switch where an ending link gives way to a vehicle link green in both an all-red
    (:func:`~greenwave.networks.intergreens.intergreens`), so only crossings run on so.

    ``red_yellow_s``: a red-yellow (``u``) before the green of every link starting, the links
    ended for the all-red included (programs that show one, as :func:`derived_transition`)."""
    target = to_state
    if all_red_s > 0:
        ending = [k for k, (a, b) in enumerate(zip(from_state, to_state, strict=True)) if a in GREEN and b not in GREEN]
        keep = np.zeros((0, 0), dtype=bool) if keep_through is None else keep_through
        n = keep.shape[0]

        def stays(k: int) -> bool:
            return k < n and all(c < n and bool(keep[c, k]) for c in ending)

        to_state = "".join(RED_LETTER if a in GREEN and b in GREEN and not stays(k) else b
                           for k, (a, b) in enumerate(zip(from_state, to_state, strict=True)))
    out = derived_transition(from_state, to_state, yellow_s=yellow_s, all_red_s=all_red_s, red_yellow_s=red_yellow_s)
    if red_yellow_s > 0 and to_state != target and out:  # the ended links start again through red-yellow too
        state, dur = out[-1]
        out[-1] = ("".join(RED_YELLOW if b in GREEN and m not in GREEN else c
                           for c, b, m in zip(state, target, to_state, strict=True)), dur)
    return out


def stays_green_over(signal: Signal) -> np.ndarray:
    """``n_links × n_links`` booleans: True where link ``k`` may keep its green while link ``c``
    ends its own and clears: no connection of ``c`` need give way to ``k`` (SUMO's response
    bits, :attr:`~greenwave.networks.model.Signal.yields_any`, else
    :attr:`~greenwave.networks.model.Signal.yields`) nor wait for it beyond a lane inside the
    junction (:attr:`~greenwave.networks.model.Signal.chain_yields`). Where the yields are not
    known (a network not read from a net file), nothing stays green."""
    n = signal.n_links
    if signal.yields is None:
        return np.zeros((n, n), dtype=bool)
    out = ~signal.yields.astype(bool)
    if signal.yields_any is not None:
        out &= ~signal.yields_any.astype(bool)
    if signal.chain_yields is not None:
        out &= ~signal.chain_yields.astype(bool)
    return out


def trap_pairs(from_state: str, to_state: str, stays: np.ndarray,
               pedestrian: Collection[int]) -> list[tuple[int, int]]:
    """``(c, k)``: vehicle link ``c`` ends its green from ``from_state`` to ``to_state`` and
    gives way to vehicle link ``k``, green in both (``stays``: :func:`stays_green_over`); kept
    green, ``k`` would trap ``c``'s vehicles waiting inside the junction for it (a yellow trap),
    so ``k`` stops with ``c`` and starts again after ``c``'s clearance. Crossings
    (``pedestrian``) are neither."""
    n = min(len(from_state), len(to_state), stays.shape[0])
    ending = [c for c in range(n) if from_state[c] in GREEN and to_state[c] not in GREEN and c not in pedestrian]
    kept = [k for k in range(n) if from_state[k] in GREEN and to_state[k] in GREEN and k not in pedestrian]
    return [(c, k) for c in ending for k in kept if not stays[c, k]]
