"""Which of ``proven``'s proof variants race on over more seeds, and when the network keeps its
own programs: paired Student-t tests over the seeds two variants both ran
(:func:`greenwave.engine.results.paired_t_margin`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from greenwave.controllers.proof import ProofRun
from greenwave.engine.results import paired_t_margin

__all__ = ["KEEP_LEVEL", "OWN", "RACE_LEVEL", "close_rivals", "keep_own", "own_in_race"]


#: One-sided level of the paired Student-t test that keeps a variant in the race: it is raced on
#: while mean(d) < t(0.8, n - 1) · sd(d) / √n, d its per-seed RESCO delay minus the other's. (At
#: 90 % two seeds tell almost nothing apart, and every candidate would run on twice the seeds.)
RACE_LEVEL = 0.8


def _close(a: Mapping[int, float], b: Mapping[int, float]) -> bool:
    """Whether the seeds both ran cannot tell ``a`` from ``b`` (``a`` not clearly worse), paired per seed."""
    mean, margin = paired_t_margin([a[seed] - b[seed] for seed in sorted(a)], RACE_LEVEL)
    return mean < margin


#: The network's own programs (what its signals run today), kept unless the proof shows better.
OWN = "static"
#: One-sided level of the paired Student-t test by which a decision must beat :data:`OWN` on the
#: seeds both ran, or the network keeps its own programs. Measured (fkk_in, one hour, a
#: gridlock): SUMO's programs scatter by ±250 s/veh from seed to seed, and the own ones were
#: the best over 100 seeds (450 s/veh against 461 for ``actuated`` and 509 for ``delay_based``),
#: yet a proof that took the least mean chose another on 34 of 60 seeds (1.10 × the own). Every
#: other real network's decision beat its own programs at this level on the first two seeds
#: but Monaco's (16 and 23 s/veh better: raced on). The level is nominal: the decision is the
#: least mean of many variants on the seeds it is then tested on, and the test is repeated as a
#: race adds seeds, so a decision that is no better passes more often than 5 % of the time.
KEEP_LEVEL = 0.95


def own_in_race(by_seed: Mapping[str, Mapping[int, float]], racers: Sequence[str]) -> bool:
    """Whether the network's own programs race on with ``racers`` (the best so far and its close
    rivals): they ran two or more seeds, are not among them, and those seeds do not show every
    racer better at :data:`KEEP_LEVEL` (a racer that runs the same programs, SUMO's rebuilt
    static program where it is the own, is not better: the own programs race on beside it, so
    the last test is over every seed the decision ran)."""
    own = by_seed.get(OWN)
    if own is None or len(own) < 2 or OWN in racers:  # one seed: no race (:func:`close_rivals`)
        return False
    return any(not _better(by_seed[r], own) for r in racers)


def _better(a: Mapping[int, float], own: Mapping[int, float]) -> bool:
    """Whether the seeds both ran show ``a`` better than ``own`` at the one-sided :data:`KEEP_LEVEL`."""
    seeds = sorted(set(a) & set(own))
    if len(seeds) < 2:
        return False
    mean, margin = paired_t_margin([own[seed] - a[seed] for seed in seeds], KEEP_LEVEL)
    return mean > margin


def keep_own(runs: Mapping[str, list[ProofRun]], decision: str) -> dict[str, Any] | None:
    """Why the network keeps its own programs instead of ``decision`` (the least mean delay), or
    None: it does not when the own programs did not run, are the decision, or the seeds both
    ran (two or more; with one there is no test) show the decision better at :data:`KEEP_LEVEL`.
    Returns the seeds, both means over them and the level."""
    if OWN not in runs or decision == OWN:
        return None
    own = {r.seed: r.resco_delay_s for r in runs[OWN]}
    its = {r.seed: r.resco_delay_s for r in runs[decision]}
    seeds = sorted(set(own) & set(its))
    if len(seeds) < 2 or _better(its, own):
        return None
    return {"instead_of": decision, "seeds": seeds, "level": KEEP_LEVEL,
            "own_mean_resco_delay_s": sum(own[s] for s in seeds) / len(seeds),
            "its_mean_resco_delay_s": sum(its[s] for s in seeds) / len(seeds)}


def close_rivals(runs: Mapping[str, list[ProofRun]], best: str) -> list[str]:
    """The variants that ran on the best one's seeds (two or more) and that those seeds cannot
    tell from it (paired per seed; :data:`RACE_LEVEL`). A variant whose runs measured exactly
    what the best's or a rival's did runs the same programs (SUMO's rebuilt static program
    where it is the network's own): it is not raced again. With one proof seed there is no race.

    Only rivals of the best race, not rivals of rivals: a steady variant clearly worse than the
    best might still beat a scattered rival over more seeds, but racing such chains ran nine of
    A10KW's thirteen variants on six seeds (900 s: 272 s against 165 s for the proof) and chose
    by 0.3 s/veh what the scored seed ranked the other way (``actuated`` 25.8 against
    ``optimised-actuated`` 24.7 s/veh)."""
    by_seed = {v: {r.seed: r.resco_delay_s for r in rs} for v, rs in runs.items()}
    seeds = set(by_seed[best])
    if len(seeds) < 2:
        return []
    same = {tuple(sorted(by_seed[best].items()))}
    out = []
    for v in runs:
        key = tuple(sorted(by_seed[v].items()))
        if v == best or set(by_seed[v]) != seeds or len(runs[v]) != len(seeds) or key in same:
            continue
        if _close(by_seed[v], by_seed[best]):
            out.append(v)
            same.add(key)
    return out
