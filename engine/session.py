"""The SUMO session: start, step, subscriptions, fault handling, clean shutdown.

libsumo (SUMO in-process, one simulation per process) is the default; TraCI is used when the
GUI is asked for or a SUMO that is already running elsewhere is to be driven. Both expose the
same module-like API (``conn.simulation``, ``conn.trafficlight`` ...), so controllers never care
which one they talk to.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from greenwave._sumo import sumo_binary, sumo_home
from greenwave.errors import SimulationError

_labels = itertools.count()
_libsumo_lock = threading.Lock()


@dataclass(frozen=True)
class SessionConfig:
    """Everything needed to start one SUMO simulation.

    Times are in seconds of simulated time. ``outputs`` maps SUMO output options (without the
    leading dashes, e.g. ``"tripinfo-output"``) to files.
    """

    net_file: Path
    route_files: tuple[Path, ...] = ()
    additional_files: tuple[Path, ...] = ()
    begin_s: float = 0.0
    end_s: float = 3600.0
    step_length_s: float = 1.0
    seed: int = 0
    time_to_teleport_s: float = 300.0
    outputs: dict[str, Path] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    gui: bool = False
    remote: tuple[str, int] | None = None
    log_file: Path | None = None

    def command(self) -> list[str]:
        """The SUMO command line for this configuration (binary first)."""
        binary = sumo_binary("sumo-gui" if self.gui else "sumo")
        args = [
            binary,
            "--net-file", str(self.net_file),
            "--begin", _fmt(self.begin_s),
            "--end", _fmt(self.end_s),
            "--step-length", _fmt(self.step_length_s),
            "--seed", str(int(self.seed)),
            "--time-to-teleport", _fmt(self.time_to_teleport_s),
            "--no-step-log", "true",
            "--duration-log.disable", "true",
            "--xml-validation", "never",
        ]
        if self.route_files:
            args += ["--route-files", ",".join(str(p) for p in self.route_files)]
        if self.additional_files:
            args += ["--additional-files", ",".join(str(p) for p in self.additional_files)]
        for option, path in self.outputs.items():
            args += [f"--{option}", str(path)]
        if self.log_file is not None:
            args += ["--log", str(self.log_file)]
        if self.gui:
            args += ["--start", "true", "--quit-on-end", "true"]
        args += list(self.extra_args)
        return args


def _fmt(x: float) -> str:
    return f"{x:g}"


class SumoSession:
    """One running SUMO simulation; use as a context manager so SUMO is always shut down.

    Parameters
    ----------
    config
        What to simulate.
    backend
        ``"libsumo"`` (in-process, fastest; default) or ``"traci"`` (a SUMO subprocess, needed
        for the GUI). ``config.remote`` connects TraCI to a SUMO already listening there.
    """

    def __init__(self, config: SessionConfig, *, backend: str | None = None) -> None:
        self.config = config
        if backend is None:
            backend = "traci" if (config.gui or config.remote) else "libsumo"
        if backend not in ("libsumo", "traci"):
            raise ValueError(f"backend must be 'libsumo' or 'traci', not {backend!r}")
        self.backend = backend
        self.conn: Any = None
        self._label = f"greenwave{next(_labels)}"
        self._locked = False
        self.time_s = config.begin_s

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SumoSession:
        """Start SUMO; raise :class:`SimulationError` with SUMO's own message on failure."""
        os.environ.setdefault("SUMO_HOME", str(sumo_home()))
        cmd = self.config.command()
        try:
            if self.backend == "libsumo":
                import libsumo

                if not _libsumo_lock.acquire(blocking=False):
                    raise SimulationError(
                        "libsumo runs one simulation per process and one is already running; "
                        "run simulations in separate worker processes"
                    )
                self._locked = True
                libsumo.start(cmd)
                self.conn = libsumo
            else:
                import traci

                if self.config.remote is not None:
                    host, port = self.config.remote
                    traci.init(port=port, host=host, label=self._label)
                else:
                    # traci prints "Retrying in 1 seconds" while SUMO loads the network, and with
                    # a log file SUMO's messages are in it: neither belongs in greenwave's output
                    quiet = subprocess.DEVNULL if self.config.log_file is not None else None
                    with contextlib.redirect_stdout(io.StringIO()):
                        traci.start(cmd, label=self._label, stdout=quiet)
                self.conn = traci.getConnection(self._label)
        except SimulationError:
            raise
        except Exception as exc:  # libsumo raises TraCIException / FatalTraCIError
            self._release()
            raise SimulationError(
                f"SUMO failed to start: {exc}\n{self._log_tail()}\ncommand: {' '.join(cmd)}"
            ) from exc
        self.time_s = float(self.conn.simulation.getTime())
        return self

    def step(self, until_s: float = 0.0) -> float:
        """Advance one step (or to ``until_s``); return the new simulation time in s."""
        try:
            self.conn.simulationStep(until_s)
            self.time_s = float(self.conn.simulation.getTime())
        except Exception as exc:
            raise SimulationError(
                f"SUMO failed at t={self.time_s:g} s: {exc}\n{self._log_tail()}"
            ) from exc
        return self.time_s

    def steps(self) -> Iterator[float]:
        """Step until the configured end; yields the time after each step."""
        end = self.config.end_s - 1e-9
        while self.time_s < end:
            yield self.step()

    def close(self) -> None:
        """Shut SUMO down (flushes its outputs). Safe to call twice."""
        if self.conn is None:
            self._release()
            return
        conn, self.conn = self.conn, None
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - already broken; shutting down is all that is left
            pass
        finally:
            self._release()

    def _release(self) -> None:
        if self._locked:
            self._locked = False
            _libsumo_lock.release()

    def _log_tail(self) -> str:
        log = self.config.log_file
        if log is not None and Path(log).exists():
            text = Path(log).read_text(errors="replace").strip()
            if text:
                return "SUMO said:\n" + text[-3000:]
        return ""

    def __enter__(self) -> SumoSession:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextlib.contextmanager
def console_to(path: Path | None) -> Iterator[None]:
    """Send this process's C-level stderr (where libsumo, and a SUMO it starts, print their
    errors) to ``path`` for a while; ``None``: leave it."""
    if path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "ab") as fh:
            os.dup2(fh.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
