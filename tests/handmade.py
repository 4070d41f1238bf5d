"""Small CompiledNetwork instances built by hand for unit tests of the model and optimisers."""

from __future__ import annotations

import numpy as np

from greenwave.engine.arrays import CompiledNetwork


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def arterial(
    n: int,
    *,
    travel_s: float | list[float] = 30.0,
    main_vph: float = 900.0,
    inbound_vph: float | None = None,
    side_vph: float = 200.0,
    sat_vph: float = 1800.0,
    yellow_s: float = 3.0,
    allred_s: float = 2.0,
    min_green_s: float = 5.0,
) -> CompiledNetwork:
    """``n`` signals in a row, two stages each (main road, side street); per signal three links:
    outbound through (fed by the previous signal's), inbound through (fed by the next one's) and
    the side street (uniform arrivals)."""
    travel = [float(travel_s)] * (n - 1) if np.isscalar(travel_s) else list(travel_s)  # type: ignore[arg-type]
    inbound = main_vph if inbound_vph is None else inbound_vph
    sig_stage_ptr = np.arange(0, 2 * n + 1, 2, dtype=np.int64)
    n_st = 2 * n
    link_signal, stage_ptr, stage_idx, flow, entry, trav, in_ptr, in_src, in_share = ([] for _ in range(9))
    frm, to = [], []
    for i in range(n):
        out_l, in_l, side_l = 3 * i, 3 * i + 1, 3 * i + 2
        for st, q in ((2 * i, main_vph), (2 * i, inbound), (2 * i + 1, side_vph)):
            link_signal.append(i)
            stage_idx.append(st)
            flow.append(q / 3600.0)
        frm += [f"e{i - 1}_{i}", f"e{i + 1}_{i}", f"s{i}"]
        to += [f"e{i}_{i + 1}", f"e{i}_{i - 1}", f"x{i}"]
        # outbound fed by previous outbound
        feeds = []
        feeds.append((3 * (i - 1), 1.0) if i > 0 else None)
        feeds.append((3 * (i + 1) + 1, 1.0) if i < n - 1 else None)
        feeds.append(None)
        for l, f in zip((out_l, in_l, side_l), feeds, strict=True):
            if f is None:
                entry.append(flow[l])
                in_ptr.append(0)
            else:
                entry.append(0.0)
                in_src.append(f[0])
                in_share.append(f[1])
                in_ptr.append(1)
        trav += [travel[i - 1] if i > 0 else 60.0, travel[i] if i < n - 1 else 60.0, 30.0]
    link_in_ptr = np.concatenate([[0], np.cumsum(in_ptr)]).astype(np.int64)
    n_links = 3 * n
    return CompiledNetwork(
        signal_ids=tuple(f"S{i}" for i in range(n)),
        sig_stage_ptr=_ro(sig_stage_ptr),
        stage_min_green_s=_ro(np.full(n_st, min_green_s)),
        stage_max_green_s=_ro(np.full(n_st, 120.0)),
        stage_yellow_s=_ro(np.full(n_st, yellow_s)),
        stage_allred_s=_ro(np.full(n_st, allred_s)),
        stage_intergreen_s=_ro(np.full(n_st, yellow_s + allred_s)),
        stage_phase=_ro(np.tile(np.array([0, 2], dtype=np.int64), n)),
        link_signal=_ro(np.array(link_signal, dtype=np.int64)),
        link_from_edge=tuple(frm),
        link_to_edge=tuple(to),
        link_sat_flow_vps=_ro(np.full(n_links, sat_vph / 3600.0)),
        link_flow_vps=_ro(np.array(flow)),
        link_entry_flow_vps=_ro(np.array(entry)),
        link_travel_s=_ro(np.array(trav)),
        link_stage_ptr=_ro(np.arange(n_links + 1, dtype=np.int64)),
        link_stage_idx=_ro(np.array(stage_idx, dtype=np.int64)),
        link_in_ptr=_ro(link_in_ptr),
        link_in_src=_ro(np.array(in_src, dtype=np.int64)),
        link_in_share=_ro(np.array(in_share, dtype=np.float64)),
    )
