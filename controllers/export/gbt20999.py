"""GB/T 20999-2017 (交通信号控制机与上位机间的数据通信协议) frames for timing plans.

Encodes a :class:`~greenwave.controllers.plans.timing.SignalTiming` as SET frames of four data classes —
phase (相位), phase stage (相位阶段), phase safety (相位安全: conflict and green-interval
matrices) and pattern (方案) — decodes them back, writes them to a file or sends them over
TCP/UDP to a controller and checks each reply.

What is implemented, and what is not verified
----------------------------------------------
The public material on GB/T 20999-2017 is thin (the standard text is not freely available);
this layout follows the frame handling of the open OpenATC controller (start byte 0x7E, end
byte 0x7D, big-endian 2-byte length first, CRC-16/CCITT polynomial 0x1021 with initial value
0, header field order: version, host id, controller id, road id, sequence, frame type, count,
then data values of index, length, class, object, attribute, element, value) and its parameter
structures (a phase holds up to 64 light groups as an 8-byte bitmap and its lose/gain-right-of
-way lamp sequences; a stage holds phases as an 8-byte bitmap; a conflict row is an 8-byte
bitmap; a green-interval row is 64 bytes; a pattern holds cycle and offset as 2-byte values
and a chain of 16 stages with 2-byte stage times). **Unverified against the standard**: the
escaping rule (here: inside a frame, each 0x7E, 0x7D or 0x5C byte is sent as 0x5C followed by
the byte XOR 0x20 — 5C 5E, 5C 5D, 5C 7C — so that start and end bytes never occur inside a
frame), which bytes the length counts (here: version through the last data value), which
bytes the CRC covers (here: length through the last data value, before escaping), the data
class ids (4 phase, 6 stage, 7 phase safety, 9 pattern), the object and attribute numbers
within each class (tables below), the lamp type codes (1 yellow, 2 red) and the frame type codes
(0x30 set, 0x40 set reply, 0x41 set error reply). They are constants of this module, so a
controller's documentation can correct them in one place.

Data values (element = phase, stage or pattern number; sizes in bytes, big-endian)::

    class 4 phase,   object 2, attribute 1  number (1)        2  light groups bitmap (8)
                                         3  lose right: 3 × (lamp type, s) (6)
                                         4  gain right: 3 × (lamp type, s) (6)
                                         5  min green s (2)   6  max green 1 s (2)
                                         7  walk s (1)        8  pedestrian clearance s (1)
    class 6 stage,   object 2, attribute 1  number (1)        2  phases bitmap (8)
    class 7 safety,  object 1, attribute 1  conflicting phases bitmap (8)
                     object 2, attribute 1  green interval to phases 1..64, s (64)
    class 9 pattern, object 2, attribute 1  number (1)        2  road id (1)
                                         3  cycle s (2)       4  offset s (2)
                                         5  coordinated stage (1)
                                         6  stage chain (16)  7  stage times s (32)

Bitmaps: bit ``i - 1`` of the big-endian 64-bit value is item ``i`` (light group = SUMO link
index + 1; phase = signal group). A stage's time is its split (green + yellow + all-red); the
phase's lose-right sequence holds the yellow (type 1) and all-red (type 2) times. The offset is
to the plan's reference point; the coordinated stage is its reference stage (1-based).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from greenwave.controllers.export.common import (
    Address,
    ExportError,
    check_timeout,
    per_target,
    quantise_plan,
    validated,
)
from greenwave.controllers.plans.timing import SignalTiming, StageTiming, TimingPlan, write_plan_file
from greenwave.errors import PlanError

if TYPE_CHECKING:
    from greenwave.controllers.plans.safety_rules import SafetyStandards
    from greenwave.networks.model import RoadNetwork

__all__ = [
    "DataValue",
    "Frame",
    "crc16",
    "decode_frame",
    "decode_stream",
    "encode_frame",
    "plan_from_frames",
    "read_frame_file",
    "send_frames",
    "send_plan",
    "signal_frames",
    "write_frame_file",
]

START, END, ESC = 0x7E, 0x7D, 0x5C
VERSION = 0x0101
SET, SET_REPLY, SET_ERROR = 0x30, 0x40, 0x41
CLASS_PHASE, CLASS_STAGE, CLASS_SAFETY, CLASS_PATTERN = 4, 6, 7, 9
LAMP_YELLOW, LAMP_RED = 1, 2
_FLIP = 0x20  # escaped byte = 0x5C, byte XOR 0x20 (0x7E → 5C 5E, 0x7D → 5C 5D, 0x5C → 5C 7C)
_HEADER = struct.Struct(">HBIBBBB")  # version, host, controller, road, sequence, type, count


def crc16(data: bytes) -> int:
    """CRC-16/CCITT (polynomial 0x1021, initial value 0, no reflection) of ``data``."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


@dataclass(frozen=True)
class DataValue:
    """One data value: index in the frame, data class, object, attribute, element and value."""

    index: int
    cls: int
    obj: int
    attr: int
    element: int
    value: bytes


@dataclass(frozen=True)
class Frame:
    """One frame (header fields and data values)."""

    controller_id: int
    road_id: int
    sequence: int
    frame_type: int
    values: tuple[DataValue, ...]
    host_id: int = 1
    version: int = VERSION


def _escape(raw: bytes) -> bytes:
    out = bytearray()
    for b in raw:
        if b in (START, END, ESC):
            out += bytes([ESC, b ^ _FLIP])
        else:
            out.append(b)
    return bytes(out)


def encode_frame(frame: Frame) -> bytes:
    """The bytes of ``frame`` (start, escaped length..CRC, end); :class:`PlanError` for a field
    out of range."""
    body = bytearray()
    try:
        body += _HEADER.pack(frame.version, frame.host_id, frame.controller_id, frame.road_id,
                             frame.sequence, frame.frame_type, len(frame.values))
        for v in frame.values:
            body += struct.pack(">BBBBBB", v.index, 4 + len(v.value), v.cls, v.obj, v.attr, v.element)
            body += v.value
    except struct.error as exc:
        raise PlanError(f"GB/T 20999 frame: a header or data value field is out of range: {exc}") from exc
    if len(body) > 0xFFFF:
        raise PlanError(f"GB/T 20999 frame: {len(body)} bytes, more than a frame holds")
    raw = struct.pack(">H", len(body)) + bytes(body)
    raw += struct.pack(">H", crc16(raw))
    return bytes([START]) + _escape(raw) + bytes([END])


def decode_frame(data: bytes, *, where: str = "frame") -> Frame:
    """Decode one frame (start byte to end byte); :class:`PlanError` naming the problem (missing
    start/end byte, bad escape, length mismatch, CRC error, truncated data value)."""
    if len(data) < 2 or data[0] != START or data[-1] != END:
        raise PlanError(f"{where}: a GB/T 20999 frame starts with 0x7E and ends with 0x7D")
    raw = bytearray()
    i, inner = 0, data[1:-1]
    while i < len(inner):
        b = inner[i]
        if b == ESC:
            if i + 1 >= len(inner) or inner[i + 1] ^ _FLIP not in (START, END, ESC):
                raise PlanError(f"{where}: byte {i + 1}: escape 0x5C not followed by 0x5E, 0x5D or 0x7C")
            raw.append(inner[i + 1] ^ _FLIP)
            i += 2
            continue
        if b in (START, END):
            raise PlanError(f"{where}: byte {i + 1}: unescaped 0x{b:02X} inside the frame")
        raw.append(b)
        i += 1
    if len(raw) < 2 + _HEADER.size + 2:
        raise PlanError(f"{where}: {len(raw)} bytes, too short for a GB/T 20999 frame")
    (length,) = struct.unpack_from(">H", raw, 0)
    if length != len(raw) - 4:
        raise PlanError(f"{where}: length field says {length} bytes, the frame holds {len(raw) - 4}")
    (crc,) = struct.unpack_from(">H", raw, len(raw) - 2)
    calc = crc16(bytes(raw[:-2]))
    if crc != calc:
        raise PlanError(f"{where}: CRC error: frame says 0x{crc:04X}, data gives 0x{calc:04X}")
    version, host, ctrl, road, seq, ftype, count = _HEADER.unpack_from(raw, 2)
    pos, end = 2 + _HEADER.size, len(raw) - 2
    values = []
    for n in range(count):
        if pos + 6 > end:
            raise PlanError(f"{where}: data value {n + 1} of {count} is truncated")
        idx, ln, cls, obj, attr, el = struct.unpack_from(">BBBBBB", raw, pos)
        if ln < 4 or pos + 2 + ln > end:
            raise PlanError(f"{where}: data value {n + 1}: length {ln} does not fit the frame")
        values.append(DataValue(idx, cls, obj, attr, el, bytes(raw[pos + 6:pos + 2 + ln])))
        pos += 2 + ln
    if pos != end:
        raise PlanError(f"{where}: {end - pos} bytes after the last data value")
    return Frame(ctrl, road, seq, ftype, tuple(values), host, version)


def decode_stream(data: bytes, *, where: str = "stream") -> list[Frame]:
    """Every frame of a byte stream of concatenated frames."""
    frames: list[Frame] = []
    i = 0
    while i < len(data):
        if data[i] != START:
            raise PlanError(f"{where}: byte {i}: expected a frame start 0x7E, got 0x{data[i]:02X}")
        j = data.find(bytes([END]), i + 1)
        if j < 0:
            raise PlanError(f"{where}: frame at byte {i} has no end byte 0x7D")
        frames.append(decode_frame(data[i:j + 1], where=f"{where}: frame {len(frames) + 1}"))
        i = j + 1
    return frames


# ------------------------------------------------------------------------------------------
# plan <-> data values


def _bitmap(items: Iterable[int], what: str) -> bytes:
    v = 0
    for i in items:
        if not 1 <= i <= 64:
            raise ExportError(f"{what} {i} outside 1..64 (GB/T 20999 bitmaps hold 64)")
        v |= 1 << (i - 1)
    return v.to_bytes(8, "big")


def _items(b: bytes) -> tuple[int, ...]:
    v = int.from_bytes(b, "big")
    return tuple(i + 1 for i in range(64) if v >> i & 1)


def _whole(sid: str, what: str, x: float, hi: int) -> int:
    r = round(x)
    if abs(x - r) > 1e-6:
        raise ExportError(f"signal {sid!r}: {what} {x!r} s is not whole; quantise the plan first")
    if not 0 <= r <= hi:
        raise ExportError(f"signal {sid!r}: {what} {x:g} s outside 0..{hi} s")
    return int(r)


def safety_matrices(t: SignalTiming, network: RoadNetwork) -> tuple[np.ndarray, np.ndarray]:
    """Conflict matrix (bool) and green-interval matrix (s) between the stages' phases.

    Phases ``a`` and ``b`` conflict when a link green in ``a`` is a SUMO foe of a link green in
    ``b`` (merges excepted, as the safety validator does). The green interval from ``a`` to a
    conflicting ``b`` is the time from the end of ``a``'s green to the start of ``b``'s green
    in the plan's cycle (the intergreen when ``b`` follows ``a``)."""
    from greenwave.controllers.plans.safety import LinkFacts

    foes = LinkFacts(network.signals[t.signal_id]).foes
    links = [st.links or () for st in t.stages]
    n = len(t.stages)
    conflict = np.zeros((n, n), dtype=bool)
    gap = np.zeros((n, n), dtype=np.float64)
    for a in range(n):
        end_a = t.stage_green_start_s(a) + t.stages[a].green_s
        for b in range(n):
            if a == b or not links[a] or not links[b]:
                continue
            if foes[np.ix_(list(links[a]), list(links[b]))].any():
                conflict[a, b] = True
                gap[a, b] = (t.stage_green_start_s(b) - end_a) % t.cycle_s
    return conflict, gap


def signal_frames(t: SignalTiming, network: RoadNetwork, *, controller_id: int = 1, road_id: int = 1,
                  pattern: int = 1, first_sequence: int = 1) -> list[Frame]:
    """The four SET frames (phase, stage, phase safety, pattern — pattern last) of one
    whole-second signal timing whose stages record their links (:func:`complete_plan`)."""
    sid = t.signal_id
    if any(st.links is None for st in t.stages):
        raise ExportError(f"signal {sid!r}: stages without SUMO links; complete the plan first (complete_plan)")
    if len(t.stages) > 16:
        raise ExportError(f"signal {sid!r}: {len(t.stages)} stages, a GB/T 20999 pattern chains at most 16")
    groups = [t.group_of(k) for k in range(len(t.stages))]
    conflict, gap = safety_matrices(t, network)
    phase, stage, safety, pat = [], [], [], []
    for k, (st, p) in enumerate(zip(t.stages, groups, strict=True)):
        lose = struct.pack(">BBBBBB", LAMP_YELLOW, _whole(sid, "yellow", st.yellow_s, 255),
                           LAMP_RED, _whole(sid, "all-red", st.allred_s, 255), 0, 0)
        for attr, val in (
            (1, bytes([p])),
            (2, _bitmap((j + 1 for j in st.links or ()), f"signal {sid!r}: light group (link + 1)")),
            (3, lose),
            (4, bytes(6)),
            (5, struct.pack(">H", _whole(sid, "min green", st.min_green_s, 0xFFFF))),
            (6, struct.pack(">H", _whole(sid, "green", st.green_s, 0xFFFF))),
            (7, bytes([_whole(sid, "walk", st.walk_s or 0.0, 255)])),
            (8, bytes([_whole(sid, "pedestrian clearance", st.ped_clearance_s or 0.0, 255)])),
        ):
            phase.append((CLASS_PHASE, 2, attr, p, val))
        stage.append((CLASS_STAGE, 2, 1, k + 1, bytes([k + 1])))
        stage.append((CLASS_STAGE, 2, 2, k + 1, _bitmap([p], f"signal {sid!r}: phase")))
        safety.append((CLASS_SAFETY, 1, 1, p, _bitmap((groups[b] for b in np.flatnonzero(conflict[k])),
                                                      f"signal {sid!r}: phase")))
        row = bytearray(64)
        for b in np.flatnonzero(conflict[k]):
            row[groups[b] - 1] = _whole(sid, f"green interval {p}→{groups[b]}", float(gap[k, b]), 255)
        safety.append((CLASS_SAFETY, 2, 1, p, bytes(row)))
    chain = bytes([k + 1 for k in range(len(t.stages))]).ljust(16, b"\0")
    times = b"".join(struct.pack(">H", _whole(sid, f"stage {k} split", st.split_s, 0xFFFF))
                     for k, st in enumerate(t.stages)).ljust(32, b"\0")
    for attr, val in (
        (1, bytes([pattern])), (2, bytes([road_id])),
        (3, struct.pack(">H", _whole(sid, "cycle", t.cycle_s, 0xFFFF))),
        (4, struct.pack(">H", _whole(sid, "offset", t.offset_s, 0xFFFF))),
        (5, bytes([t.reference_stage + 1])), (6, chain), (7, times),
    ):
        pat.append((CLASS_PATTERN, 2, attr, pattern, val))
    frames = []
    for n, items in enumerate((phase, stage, safety, pat)):
        values = tuple(DataValue(i + 1, *it) for i, it in enumerate(items))
        frames.append(Frame(controller_id, road_id, (first_sequence + n) & 0xFF, SET, values))
    return frames


def plan_from_frames(frames: list[Frame], template: TimingPlan, *, where: str = "frames") -> TimingPlan:
    """Rebuild the signal timings of ``frames`` (road id = 1-based position of the signal in
    ``template``, which gives program ids, phase indices and the network file).

    A missing or malformed data value raises :class:`PlanError` naming ``where`` (the file),
    the road, the data value (class, object, attribute, element) and what was expected; so does
    a stream without frames (it holds no plan)."""
    if not frames:
        raise PlanError(f"{where}: no GB/T 20999 frames (an empty stream holds no plan)")
    ids = list(template.signals)
    names = {CLASS_PHASE: "phase", CLASS_STAGE: "stage", CLASS_SAFETY: "phase safety", CLASS_PATTERN: "pattern"}
    by_road: dict[int, dict[tuple[int, int, int, int], bytes]] = {}
    for f in frames:
        d = by_road.setdefault(f.road_id, {})
        for v in f.values:
            d[(v.cls, v.obj, v.attr, v.element)] = v.value
    signals: dict[str, SignalTiming] = {}
    for road, d in sorted(by_road.items()):
        if not 1 <= road <= len(ids):
            raise PlanError(f"{where}: road id {road} has no signal in the template plan "
                            f"(expected 1..{len(ids)})")
        tmpl = template.signals[ids[road - 1]]

        def name(key: tuple[int, int, int, int], *, road: int = road) -> str:
            return (f"{where}: road {road}: {names.get(key[0], 'class')} data value (class {key[0]} object "
                    f"{key[1]} attribute {key[2]} element {key[3]})")

        def get(key: tuple[int, int, int, int], size: int, *, d: dict = d) -> bytes:
            if key not in d:
                raise PlanError(f"{name(key)}: missing")
            if len(d[key]) != size:
                raise PlanError(f"{name(key)}: {len(d[key])} bytes, expected {size}")
            return d[key]

        def u16(key: tuple[int, int, int, int]) -> int:
            return int(struct.unpack(">H", get(key, 2))[0])

        def one(key: tuple[int, int, int, int], what: str) -> int:
            items = _items(get(key, 8))
            if len(items) != 1:
                raise PlanError(f"{name(key)}: bitmap holds {what} {list(items)}, expected exactly one")
            return items[0]

        pattern = next((k[3] for k in d if k[0] == CLASS_PATTERN), None)
        if pattern is None:
            raise PlanError(f"{where}: road {road}: no pattern data values (class {CLASS_PATTERN})")
        chain = [s for s in get((CLASS_PATTERN, 2, 6, pattern), 16) if s]
        times = struct.unpack(">16H", get((CLASS_PATTERN, 2, 7, pattern), 32))
        if len(chain) != len(tmpl.stages):
            raise PlanError(f"{name((CLASS_PATTERN, 2, 6, pattern))}: stage chain {chain} has {len(chain)} "
                            f"stages, the template's signal {tmpl.signal_id!r} has {len(tmpl.stages)}")
        stages = []
        for k, (s_no, st) in enumerate(zip(chain, tmpl.stages, strict=True)):
            p = one((CLASS_STAGE, 2, 2, s_no), "phases")
            lose = get((CLASS_PHASE, 2, 3, p), 6)
            yellow = float(lose[1]) if lose[0] == LAMP_YELLOW else 0.0
            red = float(lose[3]) if lose[2] == LAMP_RED else 0.0
            green = float(times[k]) - yellow - red
            max1 = u16((CLASS_PHASE, 2, 6, p))
            if max1 != green:
                raise PlanError(f"{name((CLASS_PHASE, 2, 6, p))}: phase {p}: max green {max1} s != stage "
                                f"{s_no} time {times[k]} s − yellow {yellow:g} s − red {red:g} s")
            walk = get((CLASS_PHASE, 2, 7, p), 1)[0]
            clear = get((CLASS_PHASE, 2, 8, p), 1)[0]
            stages.append(StageTiming(
                st.phase_index, green, yellow, red, float(u16((CLASS_PHASE, 2, 5, p))),
                signal_group=p, links=tuple(i - 1 for i in _items(get((CLASS_PHASE, 2, 2, p), 8))),
                walk_s=float(walk) if walk or clear else None, ped_clearance_s=float(clear) if walk or clear else None,
            ))
        cycle = u16((CLASS_PATTERN, 2, 3, pattern))
        offset = u16((CLASS_PATTERN, 2, 4, pattern))
        ref = get((CLASS_PATTERN, 2, 5, pattern), 1)[0] - 1
        if not 0 <= ref < len(stages):
            raise PlanError(f"{name((CLASS_PATTERN, 2, 5, pattern))}: coordinated stage {ref + 1}, expected "
                            f"1..{len(stages)}")
        signals[tmpl.signal_id] = replace(tmpl, cycle_s=float(cycle), offset_s=float(offset), stages=tuple(stages),
                                          reference_stage=ref)
    return TimingPlan(signals, dict(template.meta), net_file=template.net_file)


def _checked(plan: TimingPlan, network: RoadNetwork, min_yellow_s: float | None,
             standards: SafetyStandards | None = None) -> TimingPlan:
    from greenwave.controllers.plans.layout import complete_plan

    validated(plan, network, min_yellow_s=min_yellow_s, standards=standards)
    q = complete_plan(quantise_plan(plan), network)
    validated(q, network, min_yellow_s=min_yellow_s, standards=standards)
    return q


def plan_frames(plan: TimingPlan, network: RoadNetwork, *, min_yellow_s: float | None = None,
                standards: SafetyStandards | None = None) -> list[Frame]:
    """Validate, quantise to whole seconds, validate again; the frames of every signal (road id
    = 1-based position in the plan, controller id 1)."""
    q = _checked(plan, network, min_yellow_s, standards)
    frames: list[Frame] = []
    for n, t in enumerate(q.signals.values(), start=1):
        frames += signal_frames(t, network, road_id=n, first_sequence=len(frames) + 1)
    return frames


def write_frame_file(plan: TimingPlan, network: RoadNetwork, path: str | os.PathLike[str], *,
                     min_yellow_s: float | None = None, standards: SafetyStandards | None = None) -> Path:
    """Write the frames of every signal of ``plan`` to ``path`` (binary, atomically); an unsafe
    plan raises :class:`PlanError` and nothing is written."""
    data = b"".join(encode_frame(f) for f in plan_frames(plan, network, min_yellow_s=min_yellow_s,
                                                         standards=standards))
    return write_plan_file(Path(path), data, "GB/T 20999 frame file")


def read_frame_file(path: str | os.PathLike[str]) -> list[Frame]:
    """The frames of a file written by :func:`write_frame_file`."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise PlanError(f"{p}: cannot read GB/T 20999 frame file: {exc}") from exc
    if not data:
        raise PlanError(f"{p}: empty file: no GB/T 20999 frames")
    return decode_stream(data, where=str(p))


def send_frames(frames: list[Frame], addr: Address, *, protocol: str = "tcp", timeout_s: float = 2.0) -> int:
    """Send ``frames`` one by one to ``addr`` and wait for each reply; return how many were
    acknowledged. A set-error reply, a reply to another frame, no reply within ``timeout_s``
    or a refused connection raise :class:`ExportError` saying which frames (data classes) were
    acknowledged and which were not."""
    names = {CLASS_PHASE: "phase", CLASS_STAGE: "stage", CLASS_SAFETY: "phase safety", CLASS_PATTERN: "pattern"}

    def label(f: Frame) -> str:
        return f"{names.get(f.values[0].cls, f.values[0].cls) if f.values else '?'} (seq {f.sequence})"

    done: list[Frame] = []

    def fail(why: str) -> ExportError:
        rest = frames[len(done):]
        partial = "; the controller holds a partial plan — resend it" if done else ""
        return ExportError(f"GB/T 20999 {protocol.upper()} {addr.host}:{addr.port}: {why}; acknowledged: "
                           f"{', '.join(map(label, done)) or 'nothing'}; NOT acknowledged: "
                           f"{', '.join(map(label, rest))}{partial}")

    if protocol not in ("tcp", "udp"):
        raise ExportError(f"GB/T 20999: protocol must be tcp or udp, got {protocol!r}")
    timeout_s = check_timeout(timeout_s)
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    try:
        sock = socket.create_connection((addr.host, addr.port), timeout=timeout_s) if protocol == "tcp" \
            else socket.socket(socket.AF_INET, kind)
    except OSError as exc:
        raise fail(f"cannot connect: {exc}") from exc
    with sock:
        sock.settimeout(timeout_s)
        buf = b""
        for f in frames:
            try:
                if protocol == "tcp":
                    sock.sendall(encode_frame(f))
                    while bytes([END]) not in buf:
                        chunk = sock.recv(4096)
                        if not chunk:
                            raise fail("connection closed by the controller")
                        buf += chunk
                    j = buf.index(bytes([END]))
                    reply_bytes, buf = buf[:j + 1], buf[j + 1:]
                else:
                    sock.sendto(encode_frame(f), (addr.host, addr.port))
                    reply_bytes, _ = sock.recvfrom(65536)
            except TimeoutError as exc:
                raise fail(f"no reply to {label(f)} within {timeout_s:g} s") from exc
            except OSError as exc:
                raise fail(f"{label(f)}: {exc}") from exc
            try:
                reply = decode_frame(reply_bytes, where="reply")
            except PlanError as exc:
                raise fail(f"bad reply to {label(f)}: {exc}") from exc
            if reply.sequence != f.sequence:
                raise fail(f"reply sequence {reply.sequence} to {label(f)}")
            if reply.frame_type == SET_ERROR:
                bad = ", ".join(f"class {v.cls} object {v.obj} attribute {v.attr} element {v.element}"
                                for v in reply.values) or "no data value named"
                raise fail(f"controller refused {label(f)} ({bad})")
            if reply.frame_type != SET_REPLY:
                raise fail(f"reply type 0x{reply.frame_type:02X} to {label(f)}, expected 0x{SET_REPLY:02X}")
            done.append(f)
    return len(done)


def send_plan(plan: TimingPlan, network: RoadNetwork, targets: list[Address], *, protocol: str = "tcp",
              timeout_s: float = 2.0, min_yellow_s: float | None = None,
              standards: SafetyStandards | None = None) -> dict[str, int]:
    """Validate and quantise ``plan``; send each target the frames of its signal (road id 1).
    An unsafe plan raises :class:`PlanError` before anything is sent; with several targets a
    failure names the controllers that already hold the plan and those not contacted."""
    q = _checked(plan, network, min_yellow_s, standards)
    check_timeout(timeout_s)
    per = {str(a.signal_id): signal_frames(q.signals[str(a.signal_id)], network) for a in targets}
    acked = per_target(targets, lambda a: send_frames(per[str(a.signal_id)], a, protocol=protocol,
                                                      timeout_s=timeout_s), f"GB/T 20999 {protocol.upper()} send")
    return {str(a.signal_id): n for a, n in zip(targets, acked, strict=True)}
