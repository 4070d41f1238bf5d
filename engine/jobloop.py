"""One job loop for every batch of SUMO runs (scenario runs, parking sweeps), and the local
worker processes it runs them in.

What it guarantees, whatever happens:

- **Every finished job is recorded** (``on_result`` is called for it before anything else
  happens), also when the batch is interrupted: jobs that finished while the interrupt arrived
  are recorded before the loop stops.
- **A job that raises** (any exception, not only greenwave's) becomes a failure with its message
  (``on_failure``); the other jobs go on.
- **A worker that dies** (killed, crashed in C++ code) costs its job one retry on a fresh worker
  process; only a second death makes it a failure. The other jobs go on.
- **SIGINT / SIGTERM stop at once**: no new job starts and the running workers (with their
  in-process SUMO and any tool they started) are killed; the interrupt is raised again after the
  finished jobs are recorded. :func:`interrupt_on_sigterm` turns SIGTERM into such an interrupt.
- **No worker outlives its parent**: each local worker asks the kernel for SIGTERM when the
  parent dies (``PR_SET_PDEATHSIG``; its parent is the fork server, which exits when the process
  that started it is gone: workers close the server's liveness pipe they inherit) and runs in
  its own process group, which is killed as a whole (on that SIGTERM too, so no SUMO it
  started simulates on).

:class:`ProcessExecutor` is a :class:`concurrent.futures.Executor` that runs each submitted call
in a fresh process forked from a fork server with the heavy modules preloaded (libsumo allows
one simulation per process and a fresh process per run keeps runs independent); any other
executor (Dask's, for example) can be given instead.
"""

from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, wait
from typing import Any, TypeVar

from greenwave.errors import GreenwaveError, SimulationError

__all__ = [
    "Interrupted",
    "ProcessExecutor",
    "WorkerDied",
    "error_message",
    "interrupt_on_sigterm",
    "run_jobs",
]

J = TypeVar("J")
R = TypeVar("R")


class WorkerDied(SimulationError):
    """A worker process ended without returning its job's result (killed, crashed)."""


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGINT or SIGTERM); ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def interrupt_on_sigterm() -> None:
    """Make SIGTERM raise :class:`Interrupted` in the main thread, as Ctrl-C raises
    KeyboardInterrupt (call from the main thread, e.g. at the start of a command)."""

    def handler(signum: int, _frame: Any) -> None:
        raise Interrupted(signum)

    signal.signal(signal.SIGTERM, handler)


def error_message(exc: BaseException) -> str:
    """The one-line-or-more message a failed job records: greenwave's own errors as they are,
    anything else with its type name (``TypeError: ...``)."""
    if isinstance(exc, GreenwaveError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# ------------------------------------------------------------------------------------------
# local worker processes


def _set_death_signal() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (no-op elsewhere); the
    worker's handler (:func:`_die_with_group`) then kills it and everything it started."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent's shutdown still kills the group
        pass


def _die_with_group(_signum: int, _frame: Any) -> None:
    """A worker's SIGTERM (its fork server died, or someone asked): kill its process group, the
    worker with every SUMO and tool it started, which would otherwise simulate on as orphans."""
    try:
        os.killpg(0, signal.SIGKILL)
    finally:
        os._exit(1)


def _release_fork_server() -> None:
    """Close the fork server's liveness pipe that multiprocessing hands every forked child.

    The server exits when every write end of that pipe is closed; the parent holds one, and
    each child inherits another (for forking through the same server, which a worker never
    does: its own executors start a server of their own). Held by busy workers, it kept the
    server, and so the workers, alive after the parent was killed: measured, a benchmark killed
    with SIGTERM left its fork server and two workers simulating fokr_bs_demo for minutes."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if server is None or fd is None or getattr(server, "_forkserver_pid", None) is not None:
        return
    try:
        os.close(fd)
    except OSError:
        pass
    server._forkserver_alive_fd = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _worker_main(conn: Any, parent_pid: int, initializer: Callable[[], None] | None,
                 environ: dict[str, str] | None = None) -> None:
    """Body of a worker process: run the calls it is sent, one at a time, answering each with
    ("ok", result) or ("err", exception); ``None`` ends it. ``environ``: the parent's
    environment when it started the worker (the fork server's is that of an earlier moment)."""
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    try:
        os.setpgid(0, 0)  # own group: the parent kills the worker with whatever it started
    except OSError:
        pass
    signal.signal(signal.SIGTERM, _die_with_group if os.getpgid(0) == os.getpid() else signal.SIG_DFL)
    _release_fork_server()
    server = os.getppid()  # the fork server that forked this worker for the parent
    _set_death_signal()  # dies with the fork server, which exits when the parent is gone
    if os.getppid() != server or not _alive(parent_pid):  # gone before the signal was armed
        os._exit(1)
    if initializer is not None:
        initializer()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        fn, args, kwargs = task
        try:
            msg: tuple[str, Any] = ("ok", fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            msg = ("err", exc)
        try:
            conn.send(msg)
        except Exception as exc:  # noqa: BLE001 - unpicklable result or exception: send its text
            what = error_message(msg[1]) if msg[0] == "err" else "the result"
            conn.send(("err", RuntimeError(f"{what} could not be sent back from the worker: {exc}")))


def _kill_group(proc: Any, *, join: bool = True) -> None:
    """Kill a worker and everything it started (its process group), at once."""
    pid = proc.pid
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:  # not (yet) a group leader, or gone
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    if join:
        proc.join(timeout=5)


#: Modules the fork server imports once, before it forks any worker: a fresh worker per run
#: then starts in milliseconds instead of importing numba, pandas and libsumo again (about 3 s
#: per run). Nothing runs a simulation in the server, so every worker's libsumo is as fresh as
#: a newly spawned process's.
PRELOAD = ("numpy", "numba", "pandas", "networkx", "scipy.optimize", "sumolib", "traci", "libsumo")


class _Worker:
    def __init__(self, proc: Any, conn: Any) -> None:
        self.proc = proc
        self.conn = conn
        self.retiring = False  # told to exit: no call is handed to it any more
        self.calls = 0
        self.fut: Future[Any] | None = None


class ProcessExecutor(Executor):
    """Runs submitted calls in worker processes, at most ``max_workers`` at a time.

    Workers are forked from a fork server (one per parent process) that has imported
    :data:`PRELOAD` and ``preload`` (the modules of the calls to come) and never runs a call
    itself: a worker starts in milliseconds with nothing but those imports behind it, in the
    parent's current folder and environment.

    Each call runs in a worker of its own (``calls_per_worker`` 1, the default): SUMO is not
    reproducible across simulations in one process (measured: the same fkk_in run, seed 1,
    1 h, gave 1452 arrivals and 51 teleports as a process's first simulation every time, but
    1638 / 32 as the fourth in one process, and 1748 / 23 as the second in another; the
    order in which reused workers took jobs then decided the benchmark's figures).
    ``calls_per_worker`` > 1 (or None: no limit) reuses workers, for batches of runs that do
    not start SUMO. A worker that finished its call exits while its successor starts (for a
    moment there may be more processes than ``max_workers``, never more running calls). A call
    whose worker dies gets :class:`WorkerDied` and the next call gets a fresh worker.
    ``shutdown(cancel_futures=True)`` cancels the calls not started and kills the running ones
    at once (their futures get :class:`WorkerDied`).
    Workers ignore SIGINT, run in their own process group and die with their parent.
    """

    def __init__(self, max_workers: int = 1, *, initializer: Callable[[], None] | None = None,
                 calls_per_worker: int | None = 1, preload: Sequence[str] = ()) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        if calls_per_worker is not None and calls_per_worker < 1:
            raise ValueError(f"calls_per_worker must be >= 1 or None, got {calls_per_worker}")
        self._calls_per_worker = calls_per_worker
        self._mp = multiprocessing.get_context("forkserver")
        self._mp.set_forkserver_preload(sorted(set(PRELOAD) | set(preload)))
        self._max = int(max_workers)
        self._initializer = initializer
        self._pending: collections.deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...],
                                               dict[str, Any]]] = collections.deque()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = self._mp.Pipe(duplex=False)
        self._closing = False
        self._killing = False
        self._thread: threading.Thread | None = None

    # -- Executor API
    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        with self._lock:
            if self._closing:
                raise RuntimeError("cannot submit to a ProcessExecutor after shutdown")
            fut: Future[R] = Future()
            self._pending.append((fut, fn, args, kwargs))
            if self._thread is None:
                self._thread = threading.Thread(target=self._dispatch, name="greenwave-workers", daemon=True)
                self._thread.start()
        self._wake()
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closing = True
            workers = []
            if cancel_futures:
                while self._pending:
                    self._pending.popleft()[0].cancel()
                self._killing = True
                workers = list(self._workers)
        for w in workers:
            _kill_group(w.proc, join=False)  # the dispatcher reaps them
        self._wake()
        if wait and self._thread is not None:
            self._thread.join()

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live workers."""
        with self._lock:
            return [w.proc.pid for w in self._workers if w.proc.pid is not None]

    # -- internals
    def _wake(self) -> None:
        try:
            self._wake_w.send_bytes(b"x")
        except OSError:
            pass

    def _new_worker(self) -> _Worker | None:
        mine, theirs = self._mp.Pipe(duplex=True)
        proc = self._mp.Process(target=_worker_main, name="greenwave-worker", daemon=False,
                                args=(theirs, os.getpid(), self._initializer, dict(os.environ)))
        try:
            proc.start()
        except OSError:
            mine.close()
            theirs.close()
            return None
        theirs.close()  # the child holds its end: EOF here once it exits
        w = _Worker(proc, mine)
        self._workers.append(w)
        return w

    def _assign(self) -> None:
        """Hand pending calls to idle workers, starting workers up to the limit (lock held)."""
        while not self._killing and self._pending:
            idle = next((w for w in self._workers if w.fut is None and not w.retiring), None)
            if idle is None and sum(not w.retiring for w in self._workers) < self._max:
                idle = self._new_worker()
                if idle is None:
                    fut = self._pending.popleft()[0]
                    if fut.set_running_or_notify_cancel():
                        fut.set_exception(SimulationError("could not start a worker process"))
                    continue
            if idle is None:
                return
            fut, fn, args, kwargs = self._pending.popleft()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                idle.conn.send((fn, args, kwargs))
            except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
                fut.set_exception(SimulationError(f"could not hand the run to a worker: {error_message(exc)}"))
                continue
            idle.fut = fut
            idle.calls += 1

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                self._assign()
                if self._closing and not self._pending:
                    for w in self._workers:
                        if w.fut is None and not w.retiring and w.proc.is_alive():
                            try:
                                w.conn.send(None)  # done: the worker exits
                            except OSError:
                                pass
                if self._closing and not self._pending and not self._workers:
                    break
                waitables: list[Any] = [self._wake_r]
                for w in self._workers:  # a retiring worker delivered its result: wait for its exit
                    waitables += [w.proc.sentinel] if w.retiring else [w.conn, w.proc.sentinel]
            ready = set(multiprocessing.connection.wait(waitables, timeout=1.0))
            if self._wake_r in ready:
                while self._wake_r.poll():
                    self._wake_r.recv_bytes()
            with self._lock:
                workers = list(self._workers)
            for w in workers:
                if w.retiring and w.proc.sentinel not in ready:
                    continue
                if w.conn not in ready and w.proc.sentinel not in ready:
                    continue
                msg = None
                try:
                    if w.conn.poll():
                        msg = w.conn.recv()
                except (EOFError, OSError, pickle.UnpicklingError):
                    msg = None
                if msg is not None:
                    fut, w.fut = w.fut, None
                    if self._calls_per_worker is not None and w.calls >= self._calls_per_worker:
                        w.retiring = True  # a fresh process for the next call
                        try:
                            w.conn.send(None)
                        except OSError:
                            pass
                    if fut is not None:
                        if msg[0] == "ok":
                            fut.set_result(msg[1])
                        else:
                            fut.set_exception(msg[1])
                    continue
                w.proc.join(timeout=5 if not self._killing else 1)
                if w.proc.is_alive():
                    if w.proc.sentinel not in ready and not self._killing:
                        continue
                    _kill_group(w.proc)
                w.conn.close()
                with self._lock:
                    self._workers.remove(w)
                if w.fut is not None:
                    code = w.proc.exitcode
                    how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
                           and -code in signal.Signals._value2member_map_ else f"exit code {code}")
                    w.fut.set_exception(WorkerDied(f"the worker process died ({how}) before its run finished"))
        self._wake_r.close()
        self._wake_w.close()


# ------------------------------------------------------------------------------------------
# the job loop


def run_jobs(
    jobs: Sequence[J],
    fn: Callable[[J], R],
    *,
    on_result: Callable[[J, R], str],
    on_failure: Callable[[J, str], None],
    describe: Callable[[J], str],
    say: Callable[[str], None] | None = None,
    workers: int = 1,
    executor: Executor | None = None,
    inline: bool = False,
    preload: Sequence[str] = (),
) -> list[tuple[J, str]]:
    """Run ``fn(job)`` for every job; return the failures as (job, message).

    ``on_result(job, result)`` records a finished job and returns a short line for the progress
    report; ``on_failure(job, message)`` records a failed one. ``inline`` runs the jobs one after
    another in this process (sumo-gui); otherwise they go to ``executor`` or, by default, a
    :class:`ProcessExecutor` of ``workers`` processes whose fork server imports ``preload``
    (the module of ``fn``, say) once (see the module docstring for what is
    guaranteed). An interrupt (KeyboardInterrupt, :class:`Interrupted`) is raised again after
    the finished jobs are recorded and the workers are stopped.
    """
    tell = say or (lambda _msg: None)
    n = len(jobs)
    failures: list[tuple[J, str]] = []
    count = 0

    def finished(job: J, result: R) -> None:
        nonlocal count
        count += 1
        line = on_result(job, result)
        tell(f"[{count}/{n}] {describe(job)}: {line}")

    def failed(job: J, exc: BaseException) -> None:
        nonlocal count
        count += 1
        msg = error_message(exc)
        failures.append((job, msg))
        on_failure(job, msg)
        tell(f"[{count}/{n}] {describe(job)} FAILED: {msg}")

    if inline:
        for job in jobs:
            try:
                result = fn(job)
            except Exception as exc:  # noqa: BLE001 - any error of a job is that job's failure
                failed(job, exc)
                continue
            finished(job, result)
        return failures

    own = executor is None
    pool: Executor = executor if executor is not None else ProcessExecutor(workers, preload=preload)
    live: dict[Future[R], tuple[J, int]] = {}
    handled: set[Future[R]] = set()

    def handle(fut: Future[R]) -> None:
        job, attempt = live.pop(fut)
        handled.add(fut)
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is None:
            finished(job, fut.result())
            return
        if isinstance(exc, (WorkerDied, BrokenExecutor)) and attempt == 0:
            tell(f"{describe(job)}: {error_message(exc)}; running it again on a fresh worker")
            try:
                live[pool.submit(fn, job)] = (job, 1)
            except Exception as exc2:  # noqa: BLE001 - a broken executor cannot take it again
                failed(job, exc2)
            return
        failed(job, exc)

    try:
        for job in jobs:
            try:
                live[pool.submit(fn, job)] = (job, 0)
            except (BrokenExecutor, RuntimeError) as exc:
                failed(job, exc)
        while live:
            done, _ = wait(list(live), timeout=1.0, return_when=FIRST_COMPLETED)
            for fut in done:
                handle(fut)
    except BaseException:
        # record what finished while the interrupt arrived, then stop the rest at once
        for fut in list(live):
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                job, _ = live.pop(fut)
                try:
                    finished(job, fut.result())
                except Exception:  # noqa: BLE001, S110 - recording must not hide the interrupt
                    pass
        for fut in live:
            fut.cancel()
        if own:
            pool.shutdown(wait=True, cancel_futures=True)
            own = False
        raise
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)
    return failures
