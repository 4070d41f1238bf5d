"""The road network model: junctions and edges in a networkx graph, signals with their links.

Everything here is plain data. :func:`greenwave.networks.load_network` builds it from a SUMO
``.net.xml``; the generators in :mod:`greenwave.networks.generate` produce such files.

Units: lengths in m, speeds in m/s, durations in s, flows in veh/h.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from greenwave.errors import NetworkError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CLUSTER_LANE_M", "NO_STORAGE_M", "Movement", "Phase", "Program", "RoadNetwork", "Signal"]

#: SUMO's movement directions: straight, left, right, turnaround, partial left, partial right.
DIRECTIONS = frozenset({"s", "l", "r", "t", "L", "R", "invalid"})
#: A lane shorter than this holds no stopped car clear of the junctions at its two ends (SUMO's
#: default passenger car: 5 m long, 2.5 m gap): the inner edges of joined clusters, such as the
#: 3 m median crossings of RiLSA example 2.
NO_STORAGE_M = 7.5
#: A lane between two nodes of one signal shorter than this lies inside a joined cluster (netconvert
#: joins signals closer than 20 m, ``--tls.join-dist``): it holds two cars at most.
CLUSTER_LANE_M = 20.0


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase of a signal program.

    Parameters
    ----------
    duration
        Phase duration in s.
    state
        SUMO signal state string, one character per link index (``G g y r o O s u``).
    min_dur, max_dur
        Minimum and maximum duration in s for actuated programs, ``None`` when not given.
    name
        Optional phase name ("" when absent).
    """

    duration: float
    state: str
    min_dur: float | None = None
    max_dur: float | None = None
    name: str = ""


@dataclass(frozen=True, slots=True)
class Program:
    """A signal program (SUMO ``<tlLogic>``).

    Parameters
    ----------
    id
        Program id (SUMO ``programID``).
    type
        SUMO program type: ``static``, ``actuated``, ``delay_based``, ``NEMA``, ...
    offset
        Cycle offset in s.
    phases
        Phases in cycle order.
    """

    id: str
    type: str
    offset: float
    phases: tuple[Phase, ...]

    @property
    def cycle(self) -> float:
        """Cycle length in s: the sum of the phase durations."""
        return float(sum(p.duration for p in self.phases))


@dataclass(frozen=True, slots=True)
class Movement:
    """One signal link: a lane-to-lane connection controlled by a link index of a signal.

    Parameters
    ----------
    link_index
        The SUMO link index (position in the signal state string).
    from_edge, from_lane, to_edge, to_lane
        Edge and lane ids of the connection ("" for an index no connection uses).
    via
        First internal lane the connection drives through, ``None`` when the net has none.
    direction
        SUMO direction: ``s`` straight, ``l`` left, ``r`` right, ``t`` turnaround,
        ``L`` partially left, ``R`` partially right ("" for an unused index).
    junction
        Id of the junction where the connection lies.
    is_pedestrian
        True for crossing/walking-area links and links between pedestrian-only lanes.
    merged
        Further connections that SUMO drives with the same link index (usually empty).
    """

    link_index: int
    from_edge: str
    from_lane: str
    to_edge: str
    to_lane: str
    via: str | None
    direction: str
    junction: str
    is_pedestrian: bool
    merged: tuple[Movement, ...] = ()

    @property
    def is_used(self) -> bool:
        """False for the placeholder of a link index that no connection uses."""
        return bool(self.from_lane)


@dataclass(frozen=True, eq=False)
class Signal:
    """A traffic light (SUMO ``tl`` id) with its links, programs and conflicts.

    Parameters
    ----------
    id
        The traffic-light id.
    junctions
        Ids of the junctions whose connections it controls (several for joined clusters).
    movements
        One :class:`Movement` per link index; ``movements[k].link_index == k``.
    programs
        Programs by program id, in file order (may be empty, e.g. rail signals).
    conflicts
        Boolean matrix ``n_links × n_links``: True where SUMO marks the two links as foes.
        Symmetric, with a false diagonal.
    unused_links
        Link indices no connection uses (their movements are placeholders).
    primary_conflicts
        Like ``conflicts`` but only between each link's primary connections: signalled second
        stages of indirect (two-stage bicycle) turns, which leave from an internal lane, share
        the link index of a straight movement and always yield (SUMO state ``m``), are left out.
        ``None`` means the same as ``conflicts``. Use ``conflicts`` for safety checks.
    active_program_id
        The program a WAUT of the scenario starts the light on (see
        :mod:`greenwave.networks.program_files`); ``None``: the last one loaded.
    yields
        Boolean matrix ``n_links × n_links``: True where link ``i`` must give way to its foe
        ``j`` (SUMO's ``<request response=...>`` bits, for every pair of their connections that
        are foes), so ``i`` may show permissive ``g`` while ``j`` is green. ``None``: unknown
        (networks not read from a net file).
    yields_any
        Boolean matrix ``n_links × n_links``: True where some connection of link ``i`` must give
        way to a connection of ``j`` (where a link index groups several connections, a lane of
        it may yield while another does not). The yellow-trap rule reads it
        (:func:`~greenwave.networks.stage_record.stays_green_over`): a vehicle of that lane may
        be waiting inside the junction for ``j``. ``None``: as ``yields``.
    chain_yields
        Boolean matrix ``n_links × n_links``: True where link ``i``'s vehicles go on over a lane
        too short to hold one of them clear of both junctions (an inner edge of a joined
        cluster, shorter than :data:`NO_STORAGE_M`) to an
        unsignalled connection that must give way to link ``j``: while ``j`` is green a vehicle
        of ``i`` that has to wait waits there, across the junction it left. Not a safety
        conflict (the second junction's right of way keeps them apart); a generated stage
        design keeps the two apart so that nobody waits inside the junction. ``None``: none
        known.
    chain_links
        Boolean matrix ``n_links × n_links``: True where link ``i``'s vehicles go on over a lane
        shorter than :data:`CLUSTER_LANE_M` onto link ``k`` of the same signal (the next node of a
        joined cluster); a generated stage that greens ``i`` greens every such ``k`` too, or
        leaves ``i`` red. ``None``: none known.
    """

    id: str
    junctions: tuple[str, ...]
    movements: tuple[Movement, ...]
    programs: dict[str, Program]
    conflicts: np.ndarray
    unused_links: frozenset[int] = field(default_factory=frozenset)
    primary_conflicts: np.ndarray | None = None
    active_program_id: str | None = None
    yields: np.ndarray | None = None
    yields_any: np.ndarray | None = None
    chain_yields: np.ndarray | None = None
    chain_links: np.ndarray | None = None

    @property
    def n_links(self) -> int:
        """Number of link indices (length of the movement tuple and of the matrix side)."""
        return len(self.movements)

    @property
    def vehicle_links(self) -> tuple[int, ...]:
        """Link indices used by at least one vehicle connection."""
        return tuple(
            m.link_index
            for m in self.movements
            if m.is_used and not all(x.is_pedestrian for x in (m, *m.merged))
        )

    @property
    def pedestrian_links(self) -> tuple[int, ...]:
        """Link indices used only by pedestrian connections."""
        return tuple(
            m.link_index
            for m in self.movements
            if m.is_used and all(x.is_pedestrian for x in (m, *m.merged))
        )

    def _vehicle_movements(self) -> Iterator[Movement]:
        for m in self.movements:
            for x in (m, *m.merged):
                if x.is_used and not x.is_pedestrian:
                    yield x

    @property
    def incoming_edges(self) -> tuple[str, ...]:
        """Ids of the edges vehicles enter the signal from, in link order, without repeats."""
        return tuple(dict.fromkeys(m.from_edge for m in self._vehicle_movements()))

    @property
    def outgoing_edges(self) -> tuple[str, ...]:
        """Ids of the edges vehicles leave the signal on, in link order, without repeats."""
        return tuple(dict.fromkeys(m.to_edge for m in self._vehicle_movements()))

    @property
    def default_program(self) -> Program | None:
        """The program SUMO runs from the start: the one a WAUT starts the light on, otherwise the
        last one loaded for the light (each program SUMO adds becomes the light's default;
        fkk_in's ``335525545`` has 17), ``None`` if there is none."""
        if self.active_program_id is not None and self.active_program_id in self.programs:
            return self.programs[self.active_program_id]
        return next(reversed(self.programs.values()), None)

    def conflicting(self, link: int) -> tuple[int, ...]:
        """Link indices that conflict with ``link``."""
        return tuple(int(i) for i in np.flatnonzero(self.conflicts[link]))


@dataclass(eq=False)
class RoadNetwork:
    """A road network: the driving graph plus its signals.

    Parameters
    ----------
    path
        The SUMO net file it was read from.
    graph
        ``networkx.MultiDiGraph``. Nodes are junction ids with attributes ``x``, ``y`` (m),
        ``type`` (SUMO junction type) and ``tls`` (controlling traffic-light id or ``None``).
        Edges run from junction to junction keyed by the edge id, with attributes ``id``,
        ``length_m``, ``lanes`` (vehicle lanes), ``speed_mps``, ``saturation_flow_vph``
        (``saturation_flow_per_lane × lanes``), ``priority``, ``type`` and ``lane_ids``
        (vehicle lanes, right to left). Internal, pedestrian-only and bicycle-only edges are
        left out.
    signals
        Signals by traffic-light id.
    saturation_flow_per_lane
        Saturation flow used for every vehicle lane, veh/h/lane.
    """

    path: Path
    graph: nx.MultiDiGraph
    signals: dict[str, Signal]
    saturation_flow_per_lane: float = 1800.0
    _edge_ends: dict[str, tuple[str, str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._edge_ends = {k: (u, v) for u, v, k in self.graph.edges(keys=True)}

    def with_signals(self, signals: dict[str, Signal]) -> RoadNetwork:
        """The same road graph (shared, not copied, with its edge index) carrying ``signals``:
        O(signals) where building a new network indexes every edge again (the stage choice
        makes one per candidate design of every signal)."""
        out = copy.copy(self)
        out.signals = signals
        return out

    def edge(self, edge_id: str) -> dict[str, Any]:
        """Attributes of the driving edge ``edge_id``; :class:`NetworkError` if it is unknown."""
        try:
            u, v = self._edge_ends[edge_id]
        except KeyError:
            raise NetworkError(f"{self.path}: no driving edge {edge_id!r} in the network") from None
        attrs: dict[str, Any] = self.graph.edges[u, v, edge_id]
        return attrs

    @property
    def edge_ends(self) -> Mapping[str, tuple[str, str]]:
        """Driving edge id → its (from node, to node) in the road graph (read-only)."""
        return self._edge_ends

    def has_edge(self, edge_id: str) -> bool:
        """Whether ``edge_id`` is a driving edge of the road graph."""
        return edge_id in self._edge_ends

    def driving_flows(self, flows: pd.DataFrame) -> pd.DataFrame:
        """The rows of a movement-flow table (``from_edge``, ``to_edge``, ...) between driving
        edges: routes of bicycles and pedestrians use edges the road graph leaves out, and signal
        timing here is for motor traffic."""
        keep = flows["from_edge"].isin(self._edge_ends) & flows["to_edge"].isin(self._edge_ends)
        return flows[keep].reset_index(drop=True)

    @property
    def num_signals(self) -> int:
        """Number of traffic lights."""
        return len(self.signals)

    def signalised_junctions(self) -> list[str]:
        """Ids of the graph nodes controlled by a traffic light, in graph order."""
        return [n for n, tls in self.graph.nodes(data="tls") if tls is not None]
