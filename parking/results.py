"""Parking results: the KPIs of a run and the networking-rate sweep.

Parking KPIs from what a run recorded: one row per parking vehicle, occupancy samples.

Columns of the summary row (units in the names; shares are 0..1):

======================================  ===================================================
``parking_policy``                      no_guidance, guidance or pricing
``parking_networking_rate``             networked car parks ÷ all car parks (公共停车场系统联网率)
``parking_networking_rate_spaces``      networked spaces ÷ all spaces
``parking_vehicles``                    parking trips that departed
``parked``                              of them, parked
``mean_search_time_s``                  mean search time per parked vehicle, s: from entering the
                                        destination area (or the edge of the car park it heads
                                        for — a first failed attempt starts there) to parking
``p90_search_time_s``                   90th percentile of the same, s
``mean_cruising_distance_m``            mean distance driven while searching, m
``p90_cruising_distance_m``             90th percentile of the same, m
``first_choice_share``                  parked at the car park chosen before the trip
``mean_walking_distance_m``             straight line car park → destination, m
``gave_up``                             searched longer than the patience and left unparked
``still_searching``                     searching when the run ended
``occupancy_in_band_share``             car-park-hours with occupancy inside the target band
                                        (60–80 %), from the KPI window's samples
``mean_occupancy_share``                time-mean occupancy over all spaces in the KPI window
``turnover_per_space_hour``             parking events ÷ spaces ÷ hours of the KPI window (停车周转率)
``revenue``                             Σ price at arrival × hours parked (up to the run's end), money
``parking_max_overbooking``             guidance/pricing only: worst (occupied + booked − capacity)
                                        after any planning round, vehicles (0 = never over-assigned)
======================================  ===================================================

The networking-rate sweep (every rate × policy × seed as one SUMO run, KPIs against the rate) is run
by :func:`greenwave.scenarios.parking_sweep.parking_sweep`; its table's columns
(:data:`SWEEP_COLUMNS`), the table printed of it and its plot live here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

VEHICLE_COLUMNS = [
    "vehicle", "depart_s", "destination", "first_choice", "search_start_s", "search_start_odometer_m",
    "parked_at", "park_s", "park_odometer_m", "leave_s", "walk_m", "price_per_h_at_park", "gave_up",
    "gave_up_s", "reassignments",
]
OCCUPANCY_COLUMNS = ["time_s", "car_park", "occupancy", "capacity", "occupancy_share", "price_per_h", "networked"]


def search_times(vehicles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Search time (s) and cruising distance (m) of every parked vehicle.

    A vehicle whose search never started (guided straight to a free space outside the
    destination area, say) counts 0 for both.
    """
    parked = vehicles[vehicles["park_s"].notna()]
    started = parked["search_start_s"].notna()
    t = np.where(started, parked["park_s"] - parked["search_start_s"], 0.0)
    d = np.where(started, parked["park_odometer_m"] - parked["search_start_odometer_m"], 0.0)
    return np.maximum(t.astype(float), 0.0), np.maximum(d.astype(float), 0.0)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def _p90(x: np.ndarray) -> float:
    return float(np.percentile(x, 90)) if len(x) else float("nan")


def parking_kpis(
    vehicles: pd.DataFrame,
    occupancy: pd.DataFrame,
    *,
    capacity_total: int,
    kpi_begin_s: float,
    end_s: float,
    target_low: float = 0.6,
    target_high: float = 0.8,
) -> dict[str, Any]:
    """The parking KPIs of one run (see the module's table).

    Parameters
    ----------
    vehicles
        One row per departed parking vehicle, :data:`VEHICLE_COLUMNS`.
    occupancy
        Equally spaced occupancy samples of every car park, :data:`OCCUPANCY_COLUMNS`.
    capacity_total
        Spaces over all car parks.
    kpi_begin_s, end_s
        The KPI window for occupancy, band and turnover, s.
    target_low, target_high
        The occupancy band, shares.
    """
    t, d = search_times(vehicles)
    parked = vehicles[vehicles["park_s"].notna()]
    gave_up = vehicles["gave_up"].astype(bool)
    searching = vehicles["park_s"].isna() & ~gave_up & vehicles["search_start_s"].notna()
    window = occupancy[(occupancy["time_s"] >= kpi_begin_s) & (occupancy["time_s"] <= end_s)]
    share = window["occupancy_share"].to_numpy(dtype=float)
    in_band = (share >= target_low - 1e-9) & (share <= target_high + 1e-9)
    hours = max(end_s - kpi_begin_s, 0.0) / 3600.0
    events = int(((parked["park_s"] >= kpi_begin_s) & (parked["park_s"] <= end_s)).sum())
    stay_h = (np.minimum(parked["leave_s"].fillna(end_s), end_s) - parked["park_s"]) / 3600.0
    occupied = window["occupancy"].to_numpy(dtype=float).sum()
    spaces = window["capacity"].to_numpy(dtype=float).sum()
    return {
        "parking_vehicles": int(len(vehicles)),
        "parked": int(len(parked)),
        "mean_search_time_s": _mean(t),
        "p90_search_time_s": _p90(t),
        "mean_cruising_distance_m": _mean(d),
        "p90_cruising_distance_m": _p90(d),
        "first_choice_share": float((parked["parked_at"] == parked["first_choice"]).mean()) if len(parked)
        else float("nan"),
        "mean_walking_distance_m": _mean(parked["walk_m"].to_numpy(dtype=float)),
        "gave_up": int(gave_up.sum()),
        "still_searching": int(searching.sum()),
        "occupancy_in_band_share": float(in_band.mean()) if len(share) else float("nan"),
        "mean_occupancy_share": float(occupied / spaces) if spaces else float("nan"),
        "turnover_per_space_hour": events / capacity_total / hours if capacity_total and hours else float("nan"),
        "revenue": float((parked["price_per_h_at_park"] * stay_h).sum()),
    }


def car_park_table(
    occupancy: pd.DataFrame, vehicles: pd.DataFrame, *, kpi_begin_s: float, end_s: float,
    target_low: float = 0.6, target_high: float = 0.8,
) -> pd.DataFrame:
    """Per car park: capacity, networked, mean occupancy share and in-band share in the KPI
    window, parking events, final price (money/h) and revenue (money)."""
    window = occupancy[(occupancy["time_s"] >= kpi_begin_s) & (occupancy["time_s"] <= end_s)].copy()
    window["in_band"] = (window["occupancy_share"] >= target_low - 1e-9) & (
        window["occupancy_share"] <= target_high + 1e-9)
    g = window.groupby("car_park")
    table = pd.DataFrame({
        "capacity": g["capacity"].first(),
        "networked": g["networked"].first(),
        "mean_occupancy_share": g["occupancy_share"].mean(),
        "in_band_share": g["in_band"].mean(),
        "final_price_per_h": occupancy.sort_values("time_s").groupby("car_park")["price_per_h"].last(),
    })
    parked = vehicles[vehicles["park_s"].notna()]
    stay_h = (np.minimum(parked["leave_s"].fillna(end_s), end_s) - parked["park_s"]) / 3600.0
    table["parking_events"] = parked.groupby("parked_at").size().reindex(table.index).fillna(0).astype(int)
    table["revenue"] = (parked["price_per_h_at_park"] * stay_h).groupby(parked["parked_at"]).sum().reindex(
        table.index).fillna(0.0)
    return table.reset_index(names="car_park")

# ------------------------------------------------------------------------------------------
# the networking-rate sweep


SWEEP_COLUMNS = [
    "networking_rate", "policy", "seed", "controller",
    "mean_search_time_s", "p90_search_time_s", "mean_cruising_distance_m", "p90_cruising_distance_m",
    "first_choice_share", "mean_walking_distance_m", "occupancy_in_band_share", "mean_occupancy_share",
    "turnover_per_space_hour", "gave_up", "still_searching", "parked", "parking_vehicles", "revenue",
    "parking_networking_rate", "parking_networking_rate_spaces", "mean_time_loss_s", "sim_wall_s",
    "status", "error",
]
PLOTTED = [
    ("mean_search_time_s", "mean search time (s)"),
    ("p90_search_time_s", "p90 search time (s)"),
    ("mean_cruising_distance_m", "mean cruising distance (m)"),
    ("first_choice_share", "parked at first choice (share)"),
    ("occupancy_in_band_share", "car-park-hours in 60-80% band (share)"),
    ("turnover_per_space_hour", "turnover (events / space / h)"),
]


def sweep_table(sweep: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per policy and rate of the main KPIs (for printing)."""
    cols = ["mean_search_time_s", "p90_search_time_s", "mean_cruising_distance_m", "first_choice_share",
            "occupancy_in_band_share", "turnover_per_space_hour", "gave_up"]
    if "status" in sweep:
        sweep = sweep[sweep["status"].fillna("ok") == "ok"]
    table = sweep.groupby(["policy", "networking_rate"])[cols].mean()
    table.insert(0, "seeds", sweep.groupby(["policy", "networking_rate"])["seed"].count())
    return table


def plot_sweep(sweep: pd.DataFrame, path: Path, *, title: str = "") -> Path:
    """Plot the KPIs against the networking rate, one line per policy; write the PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    for ax, (col, label) in zip(axes.flat, PLOTTED, strict=True):
        for policy, part in sweep.groupby("policy"):
            g = part.groupby("networking_rate")[col].agg(["mean", "min", "max"]).sort_index()
            ax.errorbar(g.index, g["mean"], yerr=[g["mean"] - g["min"], g["max"] - g["mean"]],
                        marker="o", capsize=3, label=str(policy))
        ax.set_xlabel("networking rate (share of car parks)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes.flat[0].legend()
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path
