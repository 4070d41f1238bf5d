"""SUMO's own program of every signal (``netconvert --tls.rebuild``), re-indexed to a network's
link indices: the ``rebuilt`` stage design's source (:mod:`greenwave.networks.stage_design`)."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from greenwave._sumo import sumo_binary, tool_env
from greenwave.errors import NetworkError
from greenwave.networks.model import Program
from greenwave.networks.signal_states import RED_LETTER
from greenwave.networks.sumo_net import load_network

__all__ = ["rebuilt_programs"]


def rebuilt_programs(net_file: Path | str, *, workdir: Path | str | None = None,
                     timeout_s: float = 300.0) -> dict[str, Program]:
    """SUMO's own program of every signal of ``net_file`` (``netconvert --tls.rebuild``), its
    states re-indexed to ``net_file``'s link indices by lane pair (signals whose links do not
    all match are left out). :class:`NetworkError` when netconvert fails."""
    net = Path(net_file)
    try:
        key = (str(net.resolve()), net.stat().st_mtime)
    except OSError as exc:
        raise NetworkError(f"{net}: cannot read the net file ({exc})") from None
    if key in _REBUILT:  # one netconvert per net file and process
        return dict(_REBUILT[key])
    if workdir is not None:
        try:
            Path(workdir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NetworkError(f"{workdir}: cannot make the work folder for netconvert ({exc})") from None
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        out = Path(tmp) / "rebuilt.net.xml"
        cmd = [sumo_binary("netconvert"), "-s", str(net), "--tls.rebuild", "-o", str(out),
               "--no-warnings"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=tool_env(), timeout=timeout_s,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NetworkError(f"{net}: netconvert --tls.rebuild failed: {exc}") from None
        if proc.returncode != 0 or not out.exists():
            raise NetworkError(f"{net}: netconvert --tls.rebuild failed: {proc.stderr.strip()[-500:]}")
        original = load_network(net)
        rebuilt = load_network(out)
    result: dict[str, Program] = {}
    for sid, sig in original.signals.items():
        other = rebuilt.signals.get(sid)
        if other is None or other.default_program is None:
            continue
        where: dict[tuple[str, str], int] = {}
        for m in other.movements:
            for x in (m, *m.merged):
                if x.is_used:
                    where[(x.from_lane, x.to_lane)] = m.link_index
        index = []
        for m in sig.movements:
            lane_pair = (m.from_lane, m.to_lane)
            index.append(where.get(lane_pair, -1) if m.is_used else -1)
        if any(i < 0 for m, i in zip(sig.movements, index, strict=True) if m.is_used):
            continue
        prog = other.default_program
        phases = tuple(
            replace(ph, state="".join(ph.state[i] if 0 <= i < len(ph.state) else RED_LETTER for i in index))
            for ph in prog.phases
        )
        result[sid] = replace(prog, phases=phases)
    _REBUILT.clear()
    _REBUILT[key] = result
    return dict(result)


_REBUILT: dict[tuple[str, float], dict[str, Program]] = {}
