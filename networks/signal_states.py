"""The letters of SUMO signal states: the one definition every layer tests phases against.

A SUMO phase ``state`` holds one letter per link of the traffic light (its link index):

====  ==================================================================================
``G``  priority green: the link goes, others yield to it
``g``  permissive (minor) green: the link goes but must yield (e.g. a permissive left turn)
``y``  yellow (amber): the link is about to turn red; ``Y`` is read as yellow too
``r``  red
``s``  green right-turn arrow: stop, then go (treated as red by the safety rules)
``u``  red + yellow: the link is about to turn green
``o``  off, blinking: the link must yield
``O``  off, no signal: the link has the right of way
====  ==================================================================================
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

__all__ = [
    "GREEN",
    "GREEN_OR_TRANSITION",
    "OFF",
    "OFF_BLINKING",
    "PERMISSIVE_GREEN",
    "PRIORITY_GREEN",
    "RED",
    "RED_LETTER",
    "RED_YELLOW",
    "STOP_ARROW",
    "TRANSITION",
    "YELLOW",
    "YELLOW_LETTER",
    "cyclic_runs",
]

#: priority green
PRIORITY_GREEN = "G"
#: permissive (minor) green: goes, but yields
PERMISSIVE_GREEN = "g"
#: yellow (amber), the letter written into programs
YELLOW_LETTER = "y"
#: red, the letter written into programs
RED_LETTER = "r"
#: green right-turn arrow (stop, then go)
STOP_ARROW = "s"
#: red + yellow (about to turn green)
RED_YELLOW = "u"
#: off, blinking (the link must yield)
OFF_BLINKING = "o"
#: off, no signal (also what a link beyond a state's end shows)
OFF = "O"

#: the links shown green (priority or permissive)
GREEN = frozenset({PRIORITY_GREEN, PERMISSIVE_GREEN})
#: the links shown yellow (``Y`` is read as yellow as well)
YELLOW = frozenset({YELLOW_LETTER, "Y"})
#: the links shown red (``s``, the stop-then-go arrow, counts as red)
RED = frozenset({RED_LETTER, STOP_ARROW})
#: the letters of a transition (yellow or red + yellow); phases showing one are intergreen phases
TRANSITION = YELLOW | {RED_YELLOW}
#: the letters of a link that is not (all-)red: green or in transition
GREEN_OR_TRANSITION = GREEN | TRANSITION


def cyclic_runs(values: Sequence[Hashable]) -> list[list[int]]:
    """The indices of a program's phases (or any cycle of ``values``) grouped into maximal runs
    of equal neighbours, the last phase being followed by the first: each run in cycle order
    from its first index, the runs by that index; one run of every index when all are equal,
    none when there are no values."""
    n = len(values)
    starts = [k for k in range(n) if values[k] != values[k - 1]]
    if not starts:
        return [list(range(n))] if n else []
    runs = []
    for k in starts:
        run, j = [k], (k + 1) % n
        while values[j] == values[k]:
            run.append(j)
            j = (j + 1) % n
        runs.append(run)
    return runs
