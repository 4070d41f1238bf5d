"""GB/T 20999-2017 frames: encode/decode, escaping, CRC, plan round trip, TCP/UDP loopback."""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenwave.controllers.export.common import Address, ExportError, quantise_plan
from greenwave.controllers.export.gbt20999 import (
    CLASS_PATTERN,
    CLASS_SAFETY,
    SET,
    SET_ERROR,
    SET_REPLY,
    DataValue,
    Frame,
    crc16,
    decode_frame,
    decode_stream,
    encode_frame,
    plan_frames,
    plan_from_frames,
    read_frame_file,
    safety_matrices,
    send_frames,
    send_plan,
    write_frame_file,
)
from greenwave.controllers.plans.arrays import plan_from_arrays
from greenwave.controllers.plans.layout import complete_plan
from greenwave.controllers.plans.timing import TimingPlan
from greenwave.engine.arrays import PlanArrays
from greenwave.errors import PlanError
from greenwave.networks import RoadNetwork, load_network
from greenwave.networks.compile import compile_network
from greenwave.networks.generate import grid_network

_NO_FLOWS = pd.DataFrame(columns=["from_edge", "to_edge", "vehicles", "flow_vph"])


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[RoadNetwork, TimingPlan]:
    path = grid_network(tmp_path_factory.mktemp("gbt") / "g.net.xml", rows=2, cols=2, lanes=1)
    network = load_network(path)
    compiled = compile_network(network, _NO_FLOWS)
    green = np.zeros(compiled.n_stages)
    for i in range(compiled.n_signals):
        ks = compiled.stages_of(i)
        free = 94.0 - compiled.stage_intergreen_s[ks.start:ks.stop].sum()
        green[ks.start:ks.stop] = [free * 0.55 + 0.4, free * 0.45 - 0.4]
    plan = plan_from_arrays(compiled, PlanArrays(94.0, np.array([0.0, 126.0 % 94, 60.2, 93.4]), green))
    return network, complete_plan(plan, network)


def test_crc16_reference_value() -> None:
    # CRC-16/XMODEM check value (polynomial 0x1021, init 0) of "123456789"
    assert crc16(b"123456789") == 0x31C3


@pytest.mark.slow
@settings(max_examples=200, deadline=None, derandomize=True)
@given(values=st.lists(st.tuples(st.integers(1, 255), st.integers(0, 255), st.integers(0, 255),
                                 st.binary(max_size=40)), max_size=8),
       ctrl=st.integers(0, 2**32 - 1), seq=st.integers(0, 255))
def test_frame_round_trip(values: list, ctrl: int, seq: int) -> None:
    """Any frame, special bytes included, decodes to itself; no 0x7E/0x7D inside the frame."""
    dv = tuple(DataValue(i + 1, c, o, 1, e, b) for i, (c, o, e, b) in enumerate(values))
    frame = Frame(ctrl, 0x7E, seq, SET, dv)
    data = encode_frame(frame)
    assert data[0] == 0x7E and data[-1] == 0x7D
    assert 0x7E not in data[1:-1] and 0x7D not in data[1:-1]
    assert decode_frame(data) == frame


def test_escaping_of_special_bytes() -> None:
    frame = Frame(1, 1, 0x7D, SET, (DataValue(1, 4, 2, 1, 0x5C, bytes([0x7E, 0x7D, 0x5C, 0x00])),))
    data = encode_frame(frame)
    inner = data[1:-1]
    assert 0x7E not in inner and 0x7D not in inner
    for pair in ((0x5C, 0x5E), (0x5C, 0x5D), (0x5C, 0x7C)):
        assert bytes(pair) in inner
    assert decode_frame(data) == frame
    with pytest.raises(PlanError, match="escape 0x5C not followed"):
        decode_frame(data[:-1] + bytes([0x5C, 0x01, 0x7D]))
    with pytest.raises(PlanError, match="unescaped 0x7E"):
        decode_frame(data[:3] + bytes([0x7E]) + data[3:])


@settings(max_examples=100, deadline=None, derandomize=True)
@given(pos=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_corruption_is_detected(pos: int, flip: int) -> None:
    frame = Frame(7, 1, 3, SET, (DataValue(1, 9, 2, 3, 1, struct.pack(">H", 90)),
                                 DataValue(2, 9, 2, 4, 1, struct.pack(">H", 17))))
    raw = bytearray(encode_frame(frame))
    k = 1 + pos % (len(raw) - 2)
    raw[k] ^= flip
    with pytest.raises(PlanError):
        decode_frame(bytes(raw))


def test_crc_error_named() -> None:
    frame = Frame(7, 1, 3, SET, (DataValue(1, 9, 2, 3, 1, b"\x00\x5a"),))
    raw = bytearray(encode_frame(frame))
    raw[-3] ^= 0x01  # the CRC's low byte (no special bytes here)
    with pytest.raises(PlanError, match="CRC error"):
        decode_frame(bytes(raw))
    with pytest.raises(PlanError, match="starts with 0x7E"):
        decode_frame(bytes(raw[1:]))
    with pytest.raises(PlanError, match="no end byte"):
        decode_stream(encode_frame(frame)[:-1])


def test_plan_file_round_trip(grid: tuple[RoadNetwork, TimingPlan], tmp_path: Path) -> None:
    network, plan = grid
    path = write_frame_file(plan, network, tmp_path / "plan.gbt")
    frames = read_frame_file(path)
    assert len(frames) == 4 * len(plan.signals)
    assert [f.values[0].cls for f in frames[:4]] == [4, 6, 7, 9]  # the pattern last
    back = plan_from_frames(frames, plan)
    q = complete_plan(quantise_plan(plan), network)
    assert back == q
    assert all(float(x).is_integer() for t in back.signals.values() for x in (t.cycle_s, t.offset_s))


def test_safety_matrices(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = grid
    t = quantise_plan(plan).signals["A0"]
    conflict, gap = safety_matrices(t, network)
    assert conflict[0, 1] and conflict[1, 0]  # the two stages of a grid junction conflict
    assert gap[0, 1] == t.stages[0].intergreen_s and gap[1, 0] == t.stages[1].intergreen_s
    frames = plan_frames(plan, network)
    safety = {(v.obj, v.element): v.value for v in frames[2].values if v.cls == CLASS_SAFETY}
    p0, p1 = t.group_of(0), t.group_of(1)
    assert int.from_bytes(safety[(1, p0)], "big") == 1 << (p1 - 1)
    assert safety[(2, p0)][p1 - 1] == t.stages[0].intergreen_s


def test_unsafe_plan_not_written(grid: tuple[RoadNetwork, TimingPlan], tmp_path: Path) -> None:
    network, plan = grid
    t = plan.signals["B0"]
    bad = TimingPlan({**plan.signals, "B0": replace(t, offset_s=t.cycle_s + 1)})
    with pytest.raises(PlanError, match="(?s)unsafe.*B0.*offset"):
        write_frame_file(bad, network, tmp_path / "bad.gbt")
    assert not (tmp_path / "bad.gbt").exists()


class _Controller:
    """A loopback GB/T 20999 controller (TCP and UDP servers in threads): decodes each frame,
    stores its data values per road and answers a set reply (or a set error for a refused
    data class)."""

    def __init__(self, protocol: str) -> None:
        self.values: dict[tuple[int, int, int, int, int], bytes] = {}
        self.refuse_class: int | None = None
        self.frames: list[Frame] = []
        ctrl = self

        def answer(data: bytes) -> bytes:
            f = decode_frame(data)
            ctrl.frames.append(f)
            if ctrl.refuse_class is not None and any(v.cls == ctrl.refuse_class for v in f.values):
                bad = tuple(v for v in f.values if v.cls == ctrl.refuse_class)[:1]
                return encode_frame(Frame(f.controller_id, f.road_id, f.sequence, SET_ERROR, bad))
            for v in f.values:
                ctrl.values[(f.road_id, v.cls, v.obj, v.attr, v.element)] = v.value
            return encode_frame(Frame(f.controller_id, f.road_id, f.sequence, SET_REPLY, ()))

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                buf = b""
                while True:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                    while b"\x7d" in buf:
                        j = buf.index(b"\x7d")
                        self.request.sendall(answer(buf[:j + 1]))
                        buf = buf[j + 1:]

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(answer(data), self.client_address)

        server_cls = socketserver.ThreadingTCPServer if protocol == "tcp" else socketserver.ThreadingUDPServer
        server_cls.daemon_threads = True
        self.server = server_cls(("127.0.0.1", 0), Tcp if protocol == "tcp" else Udp)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture(params=["tcp", "udp"])
def controller(request: pytest.FixtureRequest) -> Iterator[_Controller]:
    c = _Controller(request.param)
    c.protocol = request.param  # type: ignore[attr-defined]
    yield c
    c.close()


def test_send_plan_loopback(grid: tuple[RoadNetwork, TimingPlan], controller: _Controller) -> None:
    network, plan = grid
    proto = controller.protocol  # type: ignore[attr-defined]
    acked = send_plan(plan, network, [Address("127.0.0.1", controller.port, "B1")], protocol=proto, timeout_s=2.0)
    assert acked == {"B1": 4}
    # what the controller decoded is exactly the plan's signal
    template = TimingPlan({"B1": plan.signals["B1"]}, net_file=plan.net_file)
    back = plan_from_frames(controller.frames, template)
    assert back.signals["B1"] == complete_plan(quantise_plan(plan), network).signals["B1"]
    q = quantise_plan(plan).signals["B1"]
    assert struct.unpack(">H", controller.values[(1, CLASS_PATTERN, 2, 3, 1)])[0] == q.cycle_s


def test_refused_class_is_reported(grid: tuple[RoadNetwork, TimingPlan], controller: _Controller) -> None:
    network, plan = grid
    controller.refuse_class = CLASS_SAFETY
    proto = controller.protocol  # type: ignore[attr-defined]
    with pytest.raises(ExportError, match=r"refused phase safety.*acknowledged: phase \(seq 1\), stage \(seq 2\); "
                                          r"NOT acknowledged: phase safety \(seq 3\), pattern \(seq 4\).*partial"):
        send_plan(plan, network, [Address("127.0.0.1", controller.port, "A0")], protocol=proto, timeout_s=2.0)
    assert not any(k[1] == CLASS_PATTERN for k in controller.values)


def test_nobody_listening(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = grid
    frames = plan_frames(plan, network)[:4]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ExportError, match=rf"TCP 127\.0\.0\.1:{port}: cannot connect.*acknowledged: nothing"):
        send_frames(frames, Address("127.0.0.1", port, "A0"), protocol="tcp", timeout_s=0.5)
    with pytest.raises(ExportError, match=r"UDP .*(no reply to phase \(seq 1\) within 0.3 s|refused)"):
        send_frames(frames, Address("127.0.0.1", port, "A0"), protocol="udp", timeout_s=0.3)


def test_several_controllers_partial_send_is_reported(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = grid
    ok = _Controller("tcp")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        targets = [Address("127.0.0.1", ok.port, "A0"), Address("127.0.0.1", dead, "B0")]
        with pytest.raises(ExportError) as err:
            send_plan(plan, network, targets, protocol="tcp", timeout_s=0.5)
        msg = str(err.value)
        assert f"stopped at B0=127.0.0.1:{dead}" in msg and "cannot connect" in msg
        assert f"received and confirmed the whole plan: A0=127.0.0.1:{ok.port}" in msg
        assert "not contacted (still on their old plan): none" in msg
        assert len(ok.frames) == 4
    finally:
        ok.close()


def _values(frames: list[Frame]) -> dict[tuple[int, int, int, int], bytes]:
    return {(v.cls, v.obj, v.attr, v.element): v.value for f in frames for v in f.values}


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.pop((CLASS_PATTERN, 2, 3, 1)),
         r"pattern data value \(class 9 object 2 attribute 3 element 1\): missing"),
        (lambda d: d.__setitem__((CLASS_PATTERN, 2, 7, 1), b"\0" * 5),
         r"attribute 7 element 1\): 5 bytes, expected 32"),
        (lambda d: d.__setitem__((6, 2, 2, 1), bytes(8)),
         r"stage data value .*bitmap holds phases \[\], expected exactly one"),
        (lambda d: d.__setitem__((CLASS_PATTERN, 2, 5, 1), b"\x09"), r"coordinated stage 9, expected 1..2"),
        (lambda d: d.__setitem__((CLASS_PATTERN, 2, 6, 1), bytes([1, 2, 3]).ljust(16, b"\0")),
         r"stage chain \[1, 2, 3\] has 3 stages, the template's signal 'A0' has 2"),
    ],
)
def test_malformed_frames_name_the_data_value(grid: tuple[RoadNetwork, TimingPlan], edit, match) -> None:  # type: ignore[no-untyped-def]
    network, plan = grid
    template = TimingPlan({"A0": plan.signals["A0"]}, net_file=plan.net_file)
    d = _values(plan_frames(template, network))
    edit(d)
    frame = Frame(1, 1, 1, SET, tuple(DataValue(i + 1, *k, v) for i, (k, v) in enumerate(d.items())))
    with pytest.raises(PlanError, match=rf"plan.gbt: road 1: .*{match}"):
        plan_from_frames([frame], template, where="plan.gbt")


def test_frame_file_to_a_folder_is_a_clear_error(grid: tuple[RoadNetwork, TimingPlan], tmp_path: Path) -> None:
    network, plan = grid
    with pytest.raises(PlanError, match=rf"{tmp_path}: cannot write the GB/T 20999 frame file: it is a folder"):
        write_frame_file(plan, network, tmp_path)
