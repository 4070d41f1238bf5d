"""Pictures an engineer reads: the time-space diagram of an arterial with its green bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from greenwave.engine.arrays import CompiledNetwork, ModelParams, PlanArrays
from greenwave.engine.bandwidth import BandwidthResult, green_window


def time_space_diagram(
    net: CompiledNetwork,
    plan: PlanArrays,
    band: BandwidthResult,
    path: Path,
    *,
    cycles: int = 3,
    params: ModelParams | None = None,
    title: str = "",
) -> Path:
    """Draw signals along the arterial (distance up), time across ``cycles`` cycles, the through
    greens of each direction as bars and both green bands; write a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    art = band.arterial
    cyc = float(plan.cycle_s)
    travel = np.concatenate([[0.0], np.cumsum(art.travel_out_s)])
    # distance axis in "seconds of travel" scaled to metres is not known here: use travel time
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.9 * len(art.signals)))
    horizon = cycles * cyc
    total = travel[-1]
    h = max(total, 1.0) * 0.012  # bar half-height
    for i, sig in enumerate(art.signals):
        y = travel[i]
        for links, dy, colour in ((art.out_links, -1.2 * h, "tab:green"), (art.in_links, 1.2 * h, "tab:olive")):
            a, e = green_window(net, plan, links[i], params)
            a += plan.offset_s[sig]
            e += plan.offset_s[sig]
            ax.broken_barh([(0, horizon)], (y + dy - h, 2 * h), facecolors="tab:red", alpha=0.6)
            for k in range(-1, cycles + 1):
                ax.broken_barh([(a + k * cyc, e - a)], (y + dy - h, 2 * h), facecolors=colour)
        ax.text(-0.02 * horizon, y, net.signal_ids[sig], ha="right", va="center", fontsize=8)
    for k in range(-1, cycles + 1):
        t0 = band.theta_out_s + k * cyc
        if band.band_out_s > 0.5:
            ax.fill([t0, t0 + band.band_out_s, t0 + band.band_out_s + total, t0 + total],
                    [0, 0, total, total], color="tab:blue", alpha=0.18, lw=0)
        t1 = band.theta_in_s + k * cyc
        if band.band_in_s > 0.5:
            ax.fill([t1, t1 + band.band_in_s, t1 + band.band_in_s + total, t1 + total],
                    [total, total, 0, 0], color="tab:purple", alpha=0.18, lw=0)
    ax.set_xlim(0, horizon)
    ax.set_ylim(-4 * h, total + 4 * h)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="tab:green", label="outbound through green"),
                       Patch(color="tab:olive", label="inbound through green"),
                       Patch(color="tab:blue", alpha=0.3, label="outbound band"),
                       Patch(color="tab:purple", alpha=0.3, label="inbound band")],
              loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, fontsize=8, frameon=False)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("position along the arterial (s of travel)")
    ax.set_yticks([])
    ax.set_title(title or f"cycle {cyc:g} s, bands {band.band_out_s:.0f} s outbound / {band.band_in_s:.0f} s inbound")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
