"""Turn SUMO's outputs into KPIs, and write result tables atomically.

Units: seconds, metres, vehicles. Vehicles still on the road at the end (SUMO's
``--tripinfo-output.write-unfinished``) and vehicles that were due but never inserted
(``--tripinfo-output.write-undeparted``) are counted, so a controller that gridlocks cannot look
good by keeping vehicles out of the statistics.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from greenwave.errors import SimulationError


def trip_kpis(tripinfo: Path, *, end_s: float) -> dict[str, float | int]:
    """Network KPIs from a tripinfo file written with unfinished and undeparted vehicles.

    Returns
    -------
    dict
        ``vehicles_loaded`` (due to depart before the end), ``vehicles_inserted``,
        ``vehicles_arrived``, ``vehicles_unfinished`` (on the road at the end + never inserted),
        ``vehicles_not_inserted``, ``mean_travel_time_s``, ``mean_time_loss_s`` and
        ``mean_waiting_time_s`` (over inserted vehicles; unfinished ones counted up to the end),
        ``mean_depart_delay_s`` (over all due vehicles; a vehicle never inserted counts
        end − scheduled depart), ``resco_delay_s`` = (Σ time loss + Σ depart delay) / due
        vehicles, as the RESCO benchmark defines delay.
    """
    inserted = arrived = not_inserted = 0
    travel = loss = waiting = depart_delay = 0.0
    try:
        for _, el in ET.iterparse(str(tripinfo), events=("end",)):
            if el.tag != "tripinfo":
                continue
            a = el.attrib
            depart = float(a.get("depart", "-1"))
            if depart < 0:  # never inserted: SUMO reports its waiting as departDelay
                not_inserted += 1
                delay = float(a.get("departDelay", "nan"))
                if delay != delay:  # absent: end − scheduled departure
                    delay = end_s - float(a.get("desiredDepart", end_s))
                depart_delay += max(delay, 0.0)
            else:
                inserted += 1
                if float(a.get("arrival", "-1")) >= 0:
                    arrived += 1
                travel += float(a["duration"])
                loss += float(a["timeLoss"])
                waiting += float(a["waitingTime"])
                depart_delay += float(a.get("departDelay", "0"))
            el.clear()
    except (ET.ParseError, OSError, KeyError) as exc:
        raise SimulationError(f"{tripinfo}: SUMO's tripinfo output cannot be read: {exc}") from exc
    due = inserted + not_inserted
    return {
        "vehicles_loaded": due,
        "vehicles_inserted": inserted,
        "vehicles_arrived": arrived,
        "vehicles_unfinished": due - arrived,
        "vehicles_not_inserted": not_inserted,
        "mean_travel_time_s": travel / inserted if inserted else float("nan"),
        "mean_time_loss_s": loss / inserted if inserted else float("nan"),
        "mean_waiting_time_s": waiting / inserted if inserted else float("nan"),
        "mean_depart_delay_s": depart_delay / due if due else float("nan"),
        "resco_delay_s": (loss + depart_delay) / due if due else float("nan"),
    }


def statistic_kpis(statistics: Path) -> dict[str, int]:
    """Teleports and collisions from SUMO's ``--statistic-output``."""
    try:
        root = ET.parse(str(statistics)).getroot()
    except (ET.ParseError, OSError) as exc:
        raise SimulationError(f"{statistics}: SUMO's statistic output cannot be read: {exc}") from exc
    tele = root.find("teleports")
    safety = root.find("safety")
    return {
        "teleports": int(tele.get("total", "0")) if tele is not None else 0,
        "collisions": int(safety.get("collisions", "0")) if safety is not None else 0,
    }


def edge_data(path: Path) -> dict[str, dict[str, float]]:
    """Edge id → summed attributes over all intervals of an ``edgeData`` output."""
    out: dict[str, dict[str, float]] = {}
    try:
        for _, el in ET.iterparse(str(path), events=("end",)):
            if el.tag == "edge":
                acc = out.setdefault(el.get("id", ""), {})
                for key in ("sampledSeconds", "waitingTime", "timeLoss", "entered", "departed", "left"):
                    acc[key] = acc.get(key, 0.0) + float(el.get(key, "0"))
                el.clear()
    except (ET.ParseError, OSError) as exc:
        raise SimulationError(f"{path}: SUMO's edgeData output cannot be read: {exc}") from exc
    return out


def paired_t_margin(differences: Sequence[float], quantile: float) -> tuple[float, float]:
    """The mean of paired per-seed differences and its Student-t margin at ``quantile``:
    t(quantile, n − 1) · sd / √n (sd with n − 1). Two or more differences. Serves the race of
    ``proven``'s candidates and the interval of each ratio in the comparison table."""
    import math

    from scipy import stats

    n = len(differences)
    mean = sum(differences) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in differences) / (n - 1))
    return mean, float(stats.t.ppf(quantile, n - 1)) * sd / math.sqrt(n)


def _file_mode() -> int:
    """The mode a newly created file gets under the current umask (mkstemp would give 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` to write; on success it is fsynced, given normal file
    permissions and moved onto ``path`` in one step, so readers never see half a file and an
    interrupted write leaves the old file (or none) behind. On error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_table_atomic(df: pd.DataFrame, path: Path) -> Path:
    """Write a DataFrame as CSV (or Parquet for ``.parquet``) atomically; return ``path``."""
    with atomic_path(path, suffix=Path(path).suffix) as tmp:
        if Path(path).suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False, float_format="%.4f")
    return Path(path)


def write_text_atomic(text: str, path: Path) -> Path:
    """Write a UTF-8 text file atomically (see :func:`atomic_path`); return ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes_atomic(data: bytes, path: Path) -> Path:
    """Write a binary file atomically (see :func:`atomic_path`); return ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def rows_frame(rows: Sequence[Mapping[str, Any]], columns: list[str]) -> pd.DataFrame:
    """A DataFrame with the documented columns first, in order."""
    df = pd.DataFrame(list(rows))
    for c in columns:
        if c not in df.columns:
            df[c] = pd.Series(dtype="float64")
    extra = [c for c in df.columns if c not in columns]
    return df[columns + extra]


class ResultTables:
    """Result tables rewritten atomically after every finished run, never losing a row.

    :meth:`write` rewrites a table; when that fails (the path became a folder, the disk is
    full, permissions changed) the rows are kept and the failure remembered, and the run goes
    on. :meth:`rescue` then writes every table that could not be written to a file beside it
    (or, failing that, to the temporary folder) and returns one line per table saying where
    it went and why, so nothing computed is lost.
    """

    def __init__(self) -> None:
        self.failed: dict[Path, OSError] = {}
        self.latest: dict[Path, pd.DataFrame] = {}

    def write(self, df: pd.DataFrame, path: Path) -> None:
        path = Path(path)
        self.latest[path] = df
        try:
            write_table_atomic(df, path)
        except OSError as exc:
            self.failed[path] = exc
        else:
            self.failed.pop(path, None)

    def rescue(self) -> list[str]:
        lines = []
        for path, exc in self.failed.items():
            df = self.latest[path]
            name = f"{path.stem}.rescued-{os.getpid()}{path.suffix}"
            for folder in (path.parent, Path(tempfile.gettempdir())):
                try:
                    saved = write_table_atomic(df, folder / name)
                except OSError:
                    continue
                lines.append(f"{path}: cannot be written ({exc.strerror or exc}); its {len(df)} row(s) "
                             f"were saved to {saved}")
                break
            else:
                lines.append(f"{path}: cannot be written ({exc.strerror or exc}), nor a copy beside it "
                             "or in the temporary folder")
        return lines
