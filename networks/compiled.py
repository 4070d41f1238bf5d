"""The compiled network: the flat, read-only arrays the timing model and optimisers work on.

A :class:`CompiledNetwork` is made once per run from a ``RoadNetwork`` plus movement flows
(:func:`greenwave.networks.compile.compile_network`); kernels never see networkx or pandas. It
lives here, beside the compiler that makes it, so that networks/ needs nothing from the layers
above; :mod:`greenwave.engine.arrays` re-exports it and documents what the model makes of every
array. Units: seconds, vehicles per second (flows and saturation flows), metres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["CompiledNetwork"]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class CompiledNetwork:
    """Flat arrays of a network with its demand (see :mod:`greenwave.engine.arrays`)."""

    signal_ids: tuple[str, ...]
    sig_stage_ptr: I64  # (n_signals+1,)
    stage_min_green_s: F64  # (n_stages,)  minimum green, incl. pedestrian minimums
    stage_max_green_s: F64  # (n_stages,)  upper bound used by optimisers
    stage_yellow_s: F64  # (n_stages,)
    stage_allred_s: F64  # (n_stages,)
    stage_intergreen_s: F64  # (n_stages,)  yellow + all-red after the stage
    stage_phase: I64  # (n_stages,)  index of the stage's green phase in the SUMO program
    link_signal: I64  # (n_links,)
    link_from_edge: tuple[str, ...]
    link_to_edge: tuple[str, ...]
    link_sat_flow_vps: F64  # (n_links,)  veh/s while effectively green
    link_flow_vps: F64  # (n_links,)  total demand, veh/s
    link_entry_flow_vps: F64  # (n_links,)  uniform arrivals, veh/s
    link_travel_s: F64  # (n_links,)  cruise time from upstream stop line to this one, s
    link_stage_ptr: I64  # (n_links+1,)
    link_stage_idx: I64  # (nnz,) stage indices (global) showing the link green
    link_in_ptr: I64  # (n_links+1,)
    link_in_src: I64  # (n_feeders,) upstream link index
    link_in_share: F64  # (n_feeders,) share of the upstream link's departures
    program_ids: tuple[str, ...] = field(default=())  # SUMO program the stages came from
    link_sneakers_veh: F64 | None = None  # (n_links,) veh cleared at each green end; None = zeros
    link_block: F64 | None = None  # (n_links, 3) shared-lane blocking b, a0, a1; None = none

    @property
    def n_signals(self) -> int:
        return len(self.signal_ids)

    @property
    def n_stages(self) -> int:
        return int(self.stage_min_green_s.shape[0])

    @property
    def n_links(self) -> int:
        return int(self.link_signal.shape[0])

    def stages_of(self, signal: int) -> range:
        """Global stage indices of signal ``signal``."""
        return range(int(self.sig_stage_ptr[signal]), int(self.sig_stage_ptr[signal + 1]))

    def min_cycle_s(self, signal: int) -> float:
        """Shortest feasible cycle of a signal: Σ (minimum green + intergreen)."""
        s = self.stages_of(signal)
        return float(np.sum(self.stage_min_green_s[s.start:s.stop] + self.stage_intergreen_s[s.start:s.stop]))
