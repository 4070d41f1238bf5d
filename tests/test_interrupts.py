"""Nothing finished is lost: signals sent to a real ``greenwave run``, a real worker killed.

Each test starts the installed command on a tiny generated grid (several short runs, two
workers), waits until it has finished at least one run, then interrupts it or kills a worker,
and reads what it left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

SCENARIO = """
name = "tiny"
duration_s = 1800
seeds = 8
controllers = ["static"]
[network]
generator = "grid"
rows = 2
cols = 2
[demand]
entry_vph = 300
"""


def _children(pid: int) -> set[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.add(int(entry))
    return out


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone
        return b""


def _workers(pid: int) -> set[int]:
    """The worker processes of greenwave ``pid``: the children of its fork server (not the
    server itself, nor multiprocessing's resource tracker)."""
    servers = {c for c in _children(pid) if b"forkserver" in _cmdline(c)}
    return {w for s in servers for w in _children(s)}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def default_sigint() -> None:
    """In the child before exec: Ctrl-C's default disposition. A shell that starts a job in the
    background (``cmd &``, nohup) hands it SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler: greenwave rightly ignores Ctrl-C there, but these tests, which
    send it one, would fail whenever the test run itself was started that way."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    toml = tmp_path / "tiny.toml"
    toml.write_text(SCENARIO)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenwave.scenarios.cli", "run", str(toml), "--jobs", "2", "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint,
    )
    return proc, out


def _wait_for_rows(proc: subprocess.Popen[str], out: Path, n: int, timeout_s: float = 240) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        assert proc.poll() is None, "greenwave run ended before the test could interrupt it"
        csv = out / "summary.csv"
        if csv.exists() and len(pd.read_csv(csv)) >= n:
            return
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("no finished run in time")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_workers_at_once_and_keeps_every_finished_run(tmp_path: Path, sig: signal.Signals) -> None:
    proc, out = _start(tmp_path)
    _wait_for_rows(proc, out, 1)
    workers = _workers(proc.pid)
    assert workers, "no worker processes found"
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    stopped_s = time.monotonic() - t0
    assert proc.returncode == 128 + sig, err
    assert "interrupted" in err and "Traceback" not in err
    # at once: a run takes seconds; the workers were killed, not left to finish their runs
    assert stopped_s < 5, stopped_s
    time.sleep(0.5)
    assert not [p for p in workers if _alive(p)], "a worker outlived greenwave"
    # every run reported finished is in summary.csv, and no run was left out of it
    reported = {int(line.split("static seed ")[1].split(":")[0]) for line in err.splitlines()
                if line.startswith("[") and "static seed" in line}
    summary = pd.read_csv(out / "summary.csv")
    # (a run may finish and be written between its row and its progress line: more rows than
    # lines is nothing lost, fewer would be)
    assert reported <= set(summary.seed), (reported, sorted(summary.seed))
    assert len(summary) < 8  # it really was interrupted
    assert (summary.status == "ok").all()
    # no run started after the signal: only the runs finished or running then have folders
    started = {p.name for p in (out / "runs").iterdir()}
    assert len(started) <= len(summary) + 2


def test_killed_worker_is_retried_once_and_the_batch_goes_on(tmp_path: Path) -> None:
    proc, out = _start(tmp_path)
    _wait_for_rows(proc, out, 1)
    # each run has a worker of its own: one that finished its run may still be exiting
    deadline = time.monotonic() + 60
    workers = sorted(_workers(proc.pid))
    while len(workers) != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        workers = sorted(_workers(proc.pid))
    assert len(workers) == 2
    os.kill(workers[-1], signal.SIGKILL)  # the newer: busy with a run
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "worker process died (killed by SIGKILL)" in err and "running it again on a fresh worker" in err
    summary = pd.read_csv(out / "summary.csv")
    assert sorted(summary.seed) == list(range(1, 9))
    assert (summary.status == "ok").all()


def test_ctrl_c_while_the_workers_start(tmp_path: Path) -> None:
    """Ctrl-C as soon as the runs are handed out (the workers still importing): a clear message,
    exit 130, no traceback, no worker left behind."""
    proc, out = _start(tmp_path)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    while line and "prepared in" not in line:
        line = proc.stderr.readline()
    assert "prepared in" in line
    time.sleep(0.3)
    workers = _workers(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    time.sleep(0.5)
    assert not [p for p in workers if _alive(p)]


def test_workers_die_with_a_killed_greenwave(tmp_path: Path) -> None:
    """Even SIGKILL, which greenwave cannot handle, leaves no worker simulating on."""
    proc, out = _start(tmp_path)
    _wait_for_rows(proc, out, 1)
    workers = _workers(proc.pid)
    assert workers
    proc.kill()
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and [p for p in workers if _alive(p)]:
        time.sleep(0.2)
    assert not [p for p in workers if _alive(p)]


def test_every_call_runs_in_a_fresh_worker() -> None:
    """SUMO is not reproducible across simulations in one process (see ProcessExecutor), so
    each run gets a process of its own; a pool may still reuse workers when asked to."""
    from greenwave.engine.jobloop import ProcessExecutor

    with ProcessExecutor(1) as pool:
        fresh = [pool.submit(os.getpid).result(timeout=120) for _ in range(3)]
    with ProcessExecutor(2) as pool:
        fresh += [f.result(timeout=120) for f in [pool.submit(os.getpid) for _ in range(3)]]
    assert len(set(fresh)) == 6 and os.getpid() not in fresh
    with ProcessExecutor(1, calls_per_worker=None) as pool:
        reused = [pool.submit(os.getpid).result(timeout=120) for _ in range(3)]
    assert len(set(reused)) == 1
    with pytest.raises(ValueError, match="calls_per_worker"):
        ProcessExecutor(1, calls_per_worker=0)


def test_workers_run_in_the_parents_current_folder_and_environment(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers are forked from a server started earlier; they still see the folder and the
    environment the parent has when it hands out the call."""
    from greenwave.engine.jobloop import ProcessExecutor

    with ProcessExecutor(1) as pool:
        pool.submit(os.getpid).result(timeout=120)  # the fork server runs from here on
    monkeypatch.setenv("GREENWAVE_TEST_VAR", "set later")
    monkeypatch.chdir(tmp_path)
    with ProcessExecutor(1) as pool:
        env = pool.submit(os.getenv, "GREENWAVE_TEST_VAR").result(timeout=120)
        cwd = pool.submit(os.getcwd).result(timeout=120)
    assert env == "set later"
    assert Path(cwd) == tmp_path


FOREVER = '''
import time

from greenwave._sumo import run_sumo_command


def sumo_forever(net):
    run_sumo_command(["sumo", "--net-file", net, "--end", "1000000000", "--no-step-log", "true"],
                     what="a SUMO that runs until killed", timeout=None)


def sleep_forever():
    time.sleep(600)
'''

PARENT = '''
import sys, time
sys.path.insert(0, sys.argv[1])
from greenwave.engine.jobloop import ProcessExecutor
import forever
pool = ProcessExecutor(2, preload=["forever"])
pool.submit(forever.sumo_forever, sys.argv[2])
pool.submit(forever.sleep_forever)
print("submitted", flush=True)
time.sleep(600)
'''


def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in _children(todo.pop()):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def test_busy_workers_and_their_sumo_die_with_a_killed_parent(tmp_path: Path) -> None:
    """A parent killed outright (SIGKILL, or a script with no SIGTERM handling) while its
    workers are busy: the fork server exits, the workers get their death signal and take the
    SUMO they started with them. Before, each worker held the fork server's liveness pipe, so
    server, workers and their SUMO ran on (measured: a benchmark killed with SIGTERM left two
    workers simulating fokr_bs_demo for minutes)."""
    from greenwave._sumo import sumo_home

    (tmp_path / "forever.py").write_text(FOREVER)
    net = sumo_home() / "tools" / "game" / "cross" / "cross.net.xml"
    with (tmp_path / "stderr.txt").open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path), str(net)], stdout=subprocess.PIPE,
                                stderr=err, text=True)
    assert proc.stdout is not None
    with proc.stdout:
        assert proc.stdout.readline().strip() == "submitted", (tmp_path / "stderr.txt").read_text()[-2000:]
    deadline = time.monotonic() + 60
    tree: set[int] = set()
    while time.monotonic() < deadline:  # both calls running: a worker's SUMO is up
        tree = _descendants(proc.pid)
        if any(_cmdline(p).split(b"\0")[0].endswith(b"/sumo") for p in tree):
            break
        time.sleep(0.2)
    else:
        proc.kill()
        proc.wait(timeout=60)
        raise AssertionError(f"the workers' SUMO did not start: {(tmp_path / 'stderr.txt').read_text()[-2000:]}")
    assert len(tree) >= 4  # fork server, two workers, a SUMO (and multiprocessing's resource tracker)
    proc.kill()
    proc.wait(timeout=60)  # its pipes stay open while anything it started lives
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and [p for p in tree if _alive(p)]:
        time.sleep(0.2)
    survivors = [(p, _cmdline(p)[:80]) for p in tree if _alive(p)]
    for p, _ in survivors:  # leave nothing running whatever the outcome
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    assert not survivors
