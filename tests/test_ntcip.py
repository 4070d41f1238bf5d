"""NTCIP 1202 download over SNMP to a loopback agent standing in for a signal controller."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from greenwave.controllers.export.common import Address, ExportError, quantise_plan
from greenwave.controllers.export.ntcip import ASC, OBJECTS, download, download_plan, ntcip_objects
from greenwave.controllers.plans.arrays import plan_from_arrays
from greenwave.controllers.plans.layout import complete_plan
from greenwave.controllers.plans.timing import TimingPlan
from greenwave.engine.arrays import PlanArrays
from greenwave.errors import PlanError
from greenwave.networks import RoadNetwork, load_network
from greenwave.networks.compile import compile_network
from greenwave.networks.generate import grid_network

_NO_FLOWS = pd.DataFrame(columns=["from_edge", "to_edge", "vehicles", "flow_vph"])


class LoopbackAgent:
    """An SNMP v2c command responder on 127.0.0.1 (pysnmp's protocol layer, asyncio, own thread)
    with a writable MIB for the NTCIP 1202 ``asc`` subtree, standing in for a controller.

    SET requests are all-or-nothing, as RFC 3416 asks: an OID outside ``asc``, one listed in
    ``refuse`` (notWritable) or a value outside 0..255 (wrongValue) rejects the whole request.
    With ``silent`` it answers nothing (a controller that does not respond). ``sets`` counts
    the SET requests that were applied.
    """

    def __init__(self) -> None:
        self.store: dict[tuple[int, ...], int | bytes] = {}
        self.refuse: set[tuple[int, ...]] = set()
        self.silent = False
        self.sets = 0
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        agent = self

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                reply = agent._answer(data)
                if reply is not None:
                    self.transport.sendto(reply, addr)  # type: ignore[attr-defined]

        self._transport, _ = self._loop.run_until_complete(
            self._loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0)))
        self.port = self._transport.get_extra_info("sockname")[1]
        ready.set()
        self._loop.run_forever()

    def _answer(self, data: bytes) -> bytes | None:
        if self.silent:
            return None
        pmod = api.PROTOCOL_MODULES[int(api.decodeMessageVersion(data))]
        req, _ = decoder.decode(data, asn1Spec=pmod.Message())
        pdu = pmod.apiMessage.get_pdu(req)
        rsp = pmod.apiMessage.get_response(req)
        rpdu = pmod.apiMessage.get_pdu(rsp)
        binds = pmod.apiPDU.get_varbinds(pdu)
        if pdu.isSameTypeWith(pmod.SetRequestPDU()):
            for i, (oid, val) in enumerate(binds, start=1):
                key = tuple(oid)
                status = 0
                if key[:len(ASC)] != ASC or key in self.refuse:
                    status = 17  # notWritable
                elif not val.isSameTypeWith(pmod.OctetString()) and not 0 <= int(val) <= 255:
                    status = 10  # wrongValue
                if status:
                    pmod.apiPDU.set_error_status(rpdu, status)
                    pmod.apiPDU.set_error_index(rpdu, i)
                    pmod.apiPDU.set_varbinds(rpdu, binds)
                    return encoder.encode(rsp)
            for oid, val in binds:
                self.store[tuple(oid)] = bytes(val) if val.isSameTypeWith(pmod.OctetString()) else int(val)
            self.sets += 1
            pmod.apiPDU.set_varbinds(rpdu, binds)
        else:
            out = []
            for oid, _ in binds:
                v = self.store.get(tuple(oid))
                if v is None:
                    out.append((oid, pmod.Null()))
                else:
                    out.append((oid, pmod.OctetString(v) if isinstance(v, bytes) else pmod.Integer(v)))
            pmod.apiPDU.set_varbinds(rpdu, out)
        return encoder.encode(rsp)

    async def _shutdown(self) -> None:
        self._transport.close()
        await asyncio.sleep(0.01)  # let the transport finish closing before the loop stops

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def value(self, name: str, *index: int) -> int | bytes | None:
        return self.store.get(OBJECTS[name][0] + index)


@pytest.fixture
def agent() -> Iterator[LoopbackAgent]:
    a = LoopbackAgent()
    yield a
    a.close()


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[RoadNetwork, TimingPlan]:
    path = grid_network(tmp_path_factory.mktemp("ntcip") / "g.net.xml", rows=2, cols=2, lanes=1)
    network = load_network(path)
    compiled = compile_network(network, _NO_FLOWS)
    green = np.zeros(compiled.n_stages)
    for i in range(compiled.n_signals):
        ks = compiled.stages_of(i)
        free = 87.0 - compiled.stage_intergreen_s[ks.start:ks.stop].sum()
        green[ks.start:ks.stop] = [free * 0.6 + 0.3, free * 0.4 - 0.3]  # fractional greens
    plan = plan_from_arrays(compiled, PlanArrays(87.0, np.array([0.0, 10.4, 33.7, 86.6]), green))
    return network, complete_plan(plan, network)


def test_objects_of_a_signal(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = grid
    t = quantise_plan(plan).signals["B1"]
    objs = {str(o).split(" = ")[0]: o.value for o in ntcip_objects(t, pattern=3, split=2)}
    p0, p1 = t.group_of(0), t.group_of(1)
    assert objs[f"phaseMinimumGreen.{p0}"] == t.stages[0].min_green_s
    assert objs[f"phaseYellowChange.{p1}"] == round(t.stages[1].yellow_s * 10)
    assert objs[f"phaseRedClear.{p0}"] == round(t.stages[0].allred_s * 10)
    assert objs[f"splitTime.2.{p0}"] + objs[f"splitTime.2.{p1}"] == t.cycle_s
    assert objs[f"splitCoordPhase.2.{p0}"] == 1 and objs[f"splitCoordPhase.2.{p1}"] == 0
    assert objs["patternCycleTime.3"] == 87 and objs["patternOffsetTime.3"] == t.offset_s
    assert objs["patternSplitNumber.3"] == 2 and objs["sequenceData.1.1"] == bytes([p0, p1])
    # the OIDs are NTCIP 1202's
    assert next(o for o in ntcip_objects(t) if o.name == "phaseMinimumGreen").oid_str == \
        f"1.3.6.1.4.1.1206.4.2.1.1.2.1.4.{p0}"
    assert next(o for o in ntcip_objects(t) if o.name == "patternOffsetTime").oid_str == \
        "1.3.6.1.4.1.1206.4.2.1.4.7.1.3.1"
    with pytest.raises(ExportError, match="multiple of 1 s"):
        ntcip_objects(plan.signals["B1"])  # not quantised
    with pytest.raises(ExportError, match="green 262 s is outside NTCIP 1202.s 0..255 s"):
        long = replace(t, cycle_s=300.0, stages=(replace(t.stages[0], green_s=t.stages[0].green_s + 213),
                                                 t.stages[1]))
        ntcip_objects(long)


def test_download_and_read_back(grid: tuple[RoadNetwork, TimingPlan], agent: LoopbackAgent) -> None:
    network, plan = grid
    targets = [Address("127.0.0.1", agent.port, sid) for sid in ("A0", "B1")]
    reports = download_plan(plan, network, targets[1:], timeout_s=2.0, retries=0)
    (rep,) = reports
    q = quantise_plan(plan).signals["B1"]
    objs = ntcip_objects(q)
    assert len(rep.rows) == len(objs) and all(sent == got for _, sent, got in rep.rows)
    # the agent holds every value that was set, independently of the client's read-back
    for o in objs:
        assert agent.store[o.oid] == o.value, str(o)
    assert agent.value("patternCycleTime", 1) == 87
    assert agent.value("phaseMaximum1", q.group_of(0)) == q.stages[0].green_s
    assert agent.sets == 4  # phase, sequence, split, pattern tables
    assert "MISMATCH" not in rep.table() and "patternOffsetTime.1" in rep.table()


def test_unsafe_plan_is_not_sent(grid: tuple[RoadNetwork, TimingPlan], agent: LoopbackAgent) -> None:
    network, plan = grid
    t = plan.signals["B1"]
    bad = TimingPlan({**plan.signals, "B1": replace(t, stages=(replace(t.stages[0], yellow_s=1.0,
                                                                         green_s=t.stages[0].green_s + 2.0),
                                                                 t.stages[1]))})
    with pytest.raises(PlanError, match="(?s)unsafe.*B1.*yellow"):
        download_plan(bad, network, [Address("127.0.0.1", agent.port, "B1")], timeout_s=1.0, retries=0)
    assert agent.sets == 0 and not agent.store


def test_refused_object_reports_partial_download(grid: tuple[RoadNetwork, TimingPlan], agent: LoopbackAgent) -> None:
    network, plan = grid
    q = quantise_plan(plan).signals["A0"]
    agent.refuse.add(OBJECTS["patternOffsetTime"][0] + (1,))
    with pytest.raises(ExportError) as err:
        download(q, Address("127.0.0.1", agent.port, "A0"), timeout_s=2.0, retries=0)
    msg = str(err.value)
    assert "notWritable" in msg and "patternOffsetTime.1" in msg
    assert "applied: phaseTable, sequenceTable, splitTable" in msg and "NOT applied: patternTable" in msg
    assert "partial download" in msg
    assert agent.value("patternCycleTime", 1) is None  # the refused SET applied nothing
    assert agent.value("splitTime", 1, q.group_of(0)) == q.stages[0].split_s


def test_refused_first_table_applies_nothing(grid: tuple[RoadNetwork, TimingPlan], agent: LoopbackAgent) -> None:
    network, plan = grid
    q = quantise_plan(plan).signals["A0"]
    agent.refuse.add(OBJECTS["phaseMinimumGreen"][0] + (q.group_of(1),))
    with pytest.raises(ExportError, match=r"applied: nothing; NOT applied: phaseTable, sequenceTable"):
        download(q, Address("127.0.0.1", agent.port, "A0"), timeout_s=2.0, retries=0)
    assert not agent.store


@pytest.mark.slow
def test_silent_controller_times_out(grid: tuple[RoadNetwork, TimingPlan], agent: LoopbackAgent) -> None:
    network, plan = grid
    agent.silent = True
    q = quantise_plan(plan).signals["A0"]
    with pytest.raises(ExportError, match=r"127\.0\.0\.1.*SET phaseTable.*(?i:time).*applied: nothing"):
        download(q, Address("127.0.0.1", agent.port, "A0"), timeout_s=0.3, retries=0)


@pytest.mark.slow
def test_nobody_listening(grid: tuple[RoadNetwork, TimingPlan]) -> None:
    network, plan = grid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    q = quantise_plan(plan).signals["A0"]
    with pytest.raises(ExportError, match=rf"127\.0\.0\.1:{port}.*SET phaseTable.*applied: nothing"):
        download(q, Address("127.0.0.1", port, "A0"), timeout_s=0.3, retries=0)


def test_read_back_mismatch_is_reported(grid: tuple[RoadNetwork, TimingPlan], agent: LoopbackAgent,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A controller that stores another value than it acknowledged is caught by the read-back."""
    network, plan = grid
    q = quantise_plan(plan).signals["A0"]
    real = agent._answer
    key = OBJECTS["patternCycleTime"][0] + (1,)

    def clamping(data: bytes) -> bytes | None:
        out = real(data)
        if key in agent.store:
            agent.store[key] = 80  # the controller clamps the cycle
        return out

    monkeypatch.setattr(agent, "_answer", clamping)
    msg = r"(?s)1 object\(s\) read back differ.*patternCycleTime\.1 = 87: read back 80"
    with pytest.raises(ExportError, match=msg):
        download(q, Address("127.0.0.1", agent.port, "A0"), timeout_s=2.0, retries=0)


def test_report_table(grid: tuple[RoadNetwork, TimingPlan], agent: LoopbackAgent, tmp_path: Path) -> None:
    network, plan = grid
    (rep,) = download_plan(plan, network, [Address("127.0.0.1", agent.port, "A1")], timeout_s=2.0, retries=0)
    text = rep.table()
    assert text.count("\n") == len(rep.rows) + 1
    assert "1.3.6.1.4.1.1206.4.2.1.4.7.1.2.1" in text


@pytest.mark.slow
def test_several_controllers_partial_download_is_reported(grid: tuple[RoadNetwork, TimingPlan],
                                                          agent: LoopbackAgent) -> None:
    """The second of three controllers does not answer: the error says the first holds the
    whole plan, the second holds nothing, the third was not contacted."""
    network, plan = grid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    targets = [Address("127.0.0.1", agent.port, "A0"), Address("127.0.0.1", dead, "B1"),
               Address("127.0.0.1", agent.port, "A1")]
    with pytest.raises(ExportError) as err:
        download_plan(plan, network, targets, timeout_s=0.3, retries=0)
    msg = str(err.value)
    assert f"NTCIP download to 3 controllers stopped at B1=127.0.0.1:{dead}" in msg
    assert "SET phaseTable" in msg and "applied: nothing" in msg
    assert f"received and confirmed the whole plan: A0=127.0.0.1:{agent.port}" in msg
    assert f"not contacted (still on their old plan): A1=127.0.0.1:{agent.port}" in msg
    assert "mix of old and new plans" in msg
    assert agent.sets == 4  # A0's four tables only


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_timeout_is_a_clear_error(grid: tuple[RoadNetwork, TimingPlan], timeout: float) -> None:
    network, plan = grid
    with pytest.raises(ExportError, match="--timeout: expected a number of seconds > 0"):
        download_plan(plan, network, [Address("127.0.0.1", 161, "A0")], timeout_s=timeout)
