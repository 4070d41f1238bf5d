"""NTCIP 1202 (actuated signal controller) download of a timing plan over SNMP.

A :class:`~greenwave.controllers.plans.timing.SignalTiming` maps to the NTCIP 1202 objects below, under
``asc`` = 1.3.6.1.4.1.1206.4.2.1 (NTCIP 1202 v02 MIB, ``ASC_MIB1``; the OIDs were checked against
a pysmi compilation of 1202ASC.mib and public controller code). Each stage ``k`` is the
controller phase ``p`` = its signal group (:meth:`SignalTiming.group_of`: 2, 4, 6, 8, 1, 3, 5, 7
by default), all phases in ring 1, timed one after the other in stage order.

=========================  ============================  ================================  =========
object                     OID (asc.…)                   value                             unit
=========================  ============================  ================================  =========
phaseWalk.p                1.2.1.2.p                     walk_s (0 where none)             s
phasePedestrianClear.p     1.2.1.3.p                     ped_clearance_s (0 where none)    s
phaseMinimumGreen.p        1.2.1.4.p                     min_green_s                       s
phaseMaximum1.p            1.2.1.6.p                     green_s (fixed time: max = green)  s
phaseYellowChange.p        1.2.1.8.p                     yellow_s                          0.1 s
phaseRedClear.p            1.2.1.9.p                     allred_s                          0.1 s
phaseRing.p                1.2.1.22.p                    1
sequenceData.q.1           7.3.1.3.q.1                   phase numbers in stage order      octets
splitTime.s.p              4.9.1.3.s.p                   green + yellow + all-red          s
splitMode.s.p              4.9.1.4.s.p                   4 = maximumVehicleRecall (fixed)
splitCoordPhase.s.p        4.9.1.5.s.p                   1 for the offset's reference stage
patternCycleTime.n         4.7.1.2.n                     cycle_s                           s
patternOffsetTime.n        4.7.1.3.n                     offset_s                          s
patternSplitNumber.n       4.7.1.4.n                     s
patternSequenceNumber.n    4.7.1.5.n                     q
=========================  ============================  ================================  =========

``n``, ``s`` and ``q`` are the pattern, split and sequence numbers (default 1). All integer
objects of this MIB version range 0..255, so cycles above 255 s are refused (NTCIP 1202 v03
widens some; not implemented). The offset is the plan's, measured to its reference point,
whose stage is the split's coordinated phase; whether the controller counts the offset from
the begin or the end of the coordinated green (v03 ``unitCoordSyncPoint``) is the controller's
setting and must match ``offset_reference`` — this module does not set it.

Download
--------
:func:`download` validates, quantises to whole seconds (:func:`quantise_plan`) and validates
again, then sends the objects in four SNMP SET requests in the order phase table, sequence,
split table, pattern table — the pattern, which makes the controller use the rest, last. An
SNMP SET is all-or-nothing per request (RFC 3416), so after a refusal or a timeout exactly the
earlier tables are applied; the :class:`~greenwave.controllers.export.common.ExportError` says which
tables were applied, which were not, and why (no answer within the timeout; the object the
controller refused and its error status). Finally every object is read back (GET) and compared;
any difference is an error listing each object, the value sent and the value read.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from greenwave.controllers.export.common import (
    Address,
    ExportError,
    check_timeout,
    per_target,
    quantise_plan,
    validated,
)
from greenwave.controllers.plans.timing import SignalTiming, TimingPlan

if TYPE_CHECKING:
    from greenwave.controllers.plans.safety_rules import SafetyStandards
    from greenwave.networks.model import RoadNetwork

__all__ = [
    "ASC",
    "OBJECTS",
    "DownloadReport",
    "NtcipObject",
    "download",
    "download_plan",
    "ntcip_objects",
]

#: NTCIP 1202 ``asc`` node.
ASC = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1)
_PHASE = ASC + (1, 2, 1)
_SPLIT = ASC + (4, 9, 1)
_PATTERN = ASC + (4, 7, 1)
_SEQUENCE = ASC + (7, 3, 1)
#: name → (column OID, table)
OBJECTS: dict[str, tuple[tuple[int, ...], str]] = {
    "phaseWalk": (_PHASE + (2,), "phaseTable"),
    "phasePedestrianClear": (_PHASE + (3,), "phaseTable"),
    "phaseMinimumGreen": (_PHASE + (4,), "phaseTable"),
    "phaseMaximum1": (_PHASE + (6,), "phaseTable"),
    "phaseYellowChange": (_PHASE + (8,), "phaseTable"),
    "phaseRedClear": (_PHASE + (9,), "phaseTable"),
    "phaseRing": (_PHASE + (22,), "phaseTable"),
    "sequenceData": (_SEQUENCE + (3,), "sequenceTable"),
    "splitTime": (_SPLIT + (3,), "splitTable"),
    "splitMode": (_SPLIT + (4,), "splitTable"),
    "splitCoordPhase": (_SPLIT + (5,), "splitTable"),
    "patternCycleTime": (_PATTERN + (2,), "patternTable"),
    "patternOffsetTime": (_PATTERN + (3,), "patternTable"),
    "patternSplitNumber": (_PATTERN + (4,), "patternTable"),
    "patternSequenceNumber": (_PATTERN + (5,), "patternTable"),
}
#: Download order: the pattern (which points at the split and sequence) last.
TABLE_ORDER = ("phaseTable", "sequenceTable", "splitTable", "patternTable")
#: splitMode maximumVehicleRecall: the phase always times its maximum (fixed time).
SPLIT_MODE_MAX_RECALL = 4
_ERR_STATUS = {
    1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr", 6: "noAccess",
    7: "wrongType", 8: "wrongLength", 9: "wrongEncoding", 10: "wrongValue", 11: "noCreation",
    12: "inconsistentValue", 13: "resourceUnavailable", 14: "commitFailed", 15: "undoFailed",
    16: "authorizationError", 17: "notWritable", 18: "inconsistentName",
}


@dataclass(frozen=True)
class NtcipObject:
    """One object instance to set: its name, full OID, value (int, or bytes for an OCTET
    STRING) and table."""

    name: str
    oid: tuple[int, ...]
    value: int | bytes
    table: str

    @property
    def oid_str(self) -> str:
        return ".".join(map(str, self.oid))

    def __str__(self) -> str:
        suffix = ".".join(map(str, self.oid[len(OBJECTS[self.name][0]):]))
        v = list(self.value) if isinstance(self.value, bytes) else self.value
        return f"{self.name}.{suffix} = {v}"


def _whole(sid: str, what: str, x: float, scale: int = 1) -> int:
    v = x * scale
    r = round(v)
    if not math.isfinite(v) or abs(v - r) > 1e-6:
        raise ExportError(
            f"signal {sid!r}: {what} {x!r} s is not a multiple of {1 / scale:g} s; quantise the plan "
            "first (greenwave.controllers.export.common.quantise_plan)"
        )
    if not 0 <= r <= 255:
        raise ExportError(f"signal {sid!r}: {what} {x:g} s is outside NTCIP 1202's 0..{255 / scale:g} s")
    return int(r)


def ntcip_objects(t: SignalTiming, *, pattern: int = 1, split: int = 1, sequence: int = 1) -> list[NtcipObject]:
    """The NTCIP 1202 objects of ``t`` (module docstring), in download order.

    Raises :class:`ExportError` for a time that is not whole (tenths for yellow/red clear) or
    out of range, more than 255 stages, or pattern/split/sequence numbers outside 1..255.
    """
    sid = t.signal_id
    for name, n in (("pattern", pattern), ("split", split), ("sequence", sequence)):
        if not 1 <= n <= 255:
            raise ExportError(f"NTCIP {name} number {n} outside 1..255")
    objs: list[NtcipObject] = []

    def add(name: str, index: tuple[int, ...], value: int | bytes) -> None:
        col, table = OBJECTS[name]
        objs.append(NtcipObject(name, col + index, value, table))

    groups = [t.group_of(k) for k in range(len(t.stages))]
    for k, (st, p) in enumerate(zip(t.stages, groups, strict=True)):
        where = f"stage {k} (phase {p})"
        add("phaseWalk", (p,), _whole(sid, f"{where} walk", st.walk_s or 0.0))
        add("phasePedestrianClear", (p,), _whole(sid, f"{where} pedestrian clearance", st.ped_clearance_s or 0.0))
        add("phaseMinimumGreen", (p,), _whole(sid, f"{where} minimum green", st.min_green_s))
        add("phaseMaximum1", (p,), _whole(sid, f"{where} green", st.green_s))
        add("phaseYellowChange", (p,), _whole(sid, f"{where} yellow", st.yellow_s, 10))
        add("phaseRedClear", (p,), _whole(sid, f"{where} all-red", st.allred_s, 10))
        add("phaseRing", (p,), 1)
    add("sequenceData", (sequence, 1), bytes(groups))
    for k, (st, p) in enumerate(zip(t.stages, groups, strict=True)):
        add("splitTime", (split, p), _whole(sid, f"stage {k} (phase {p}) split", st.split_s))
        add("splitMode", (split, p), SPLIT_MODE_MAX_RECALL)
        add("splitCoordPhase", (split, p), int(k == t.reference_stage))
    add("patternCycleTime", (pattern,), _whole(sid, "cycle", t.cycle_s))
    add("patternOffsetTime", (pattern,), _whole(sid, "offset", t.offset_s))
    add("patternSplitNumber", (pattern,), split)
    add("patternSequenceNumber", (pattern,), sequence)
    return objs


@dataclass(frozen=True)
class DownloadReport:
    """What was sent to one controller and read back: ``rows`` of (object, sent, read)."""

    signal_id: str
    address: str
    rows: tuple[tuple[NtcipObject, int | bytes, int | bytes], ...]

    def table(self) -> str:
        """A plain-text table of every object, the value sent and the value read back."""
        lines = [f"signal {self.signal_id} → {self.address}: {len(self.rows)} objects set and read back",
                 f"  {'object':34s} {'OID':40s} {'sent':>8s} {'read':>8s}"]
        for o, sent, got in self.rows:
            s = list(sent) if isinstance(sent, bytes) else sent
            g = list(got) if isinstance(got, bytes) else got
            name = str(o).split(" = ")[0]
            lines.append(f"  {name:34s} {o.oid_str:40s} {s!s:>8s} {g!s:>8s}{'' if s == g else '  MISMATCH'}")
        return "\n".join(lines)


async def _download(objs: list[NtcipObject], addr: Address, *, write_community: str, read_community: str,
                    timeout_s: float, retries: int) -> list[tuple[NtcipObject, int | bytes, int | bytes]]:
    from pysnmp.hlapi.v3arch.asyncio import (
        CommunityData,
        ContextData,
        Integer32,
        ObjectIdentity,
        ObjectType,
        OctetString,
        SnmpEngine,
        UdpTransportTarget,
        get_cmd,
        set_cmd,
    )

    where = f"controller {addr.host}:{addr.port} (signal {addr.signal_id!r})"
    engine = SnmpEngine()
    applied: list[str] = []
    try:
        try:
            target = await UdpTransportTarget.create((addr.host, addr.port), timeout=timeout_s, retries=retries)
        except Exception as exc:  # pysnmp raises its own error types for bad hosts
            raise ExportError(f"{where}: cannot open an SNMP transport: {exc}") from exc

        def pending(i: int) -> str:
            rest = [t for t in TABLE_ORDER[i:] if any(o.table == t for o in objs)]
            return (f"applied: {', '.join(applied) or 'nothing'}; NOT applied: {', '.join(rest)}"
                    + ("; the controller now holds a partial download — resend the plan"
                       if applied else ""))

        for i, table in enumerate(TABLE_ORDER):
            part = [o for o in objs if o.table == table]
            if not part:
                continue
            binds = [ObjectType(ObjectIdentity(o.oid_str),
                                OctetString(o.value) if isinstance(o.value, bytes) else Integer32(o.value))
                     for o in part]
            err_ind, err_stat, err_idx, _ = await set_cmd(engine, CommunityData(write_community, mpModel=1),
                                                          target, ContextData(), *binds)
            if err_ind:
                raise ExportError(f"{where}: SET {table} ({len(part)} objects): {err_ind} "
                                  f"(timeout {timeout_s:g} s, {retries} retries); {pending(i)}")
            if int(err_stat):
                k = int(err_idx) - 1
                bad = str(part[k]) if 0 <= k < len(part) else "?"
                status = _ERR_STATUS.get(int(err_stat), str(int(err_stat)))
                raise ExportError(f"{where}: SET {table} refused: {status} for {bad} "
                                  f"(OID {part[k].oid_str if 0 <= k < len(part) else '?'}); {pending(i)}")
            applied.append(table)

        rows: list[tuple[NtcipObject, int | bytes, int | bytes]] = []
        for j in range(0, len(objs), 24):
            part = objs[j:j + 24]
            err_ind, err_stat, err_idx, vbs = await get_cmd(
                engine, CommunityData(read_community, mpModel=1), target, ContextData(),
                *(ObjectType(ObjectIdentity(o.oid_str)) for o in part))
            if err_ind or int(err_stat):
                why = err_ind or _ERR_STATUS.get(int(err_stat), str(int(err_stat)))
                raise ExportError(f"{where}: all tables were SET but the read-back GET failed: {why}; "
                                  "the download is applied but unverified")
            for o, vb in zip(part, vbs, strict=True):
                val = vb[1]
                try:
                    got: int | bytes = bytes(val) if isinstance(o.value, bytes) else int(val)
                except (TypeError, ValueError):
                    got = -1  # noSuchInstance / noSuchObject: reported as a mismatch
                rows.append((o, o.value, got))
        bad_rows = [r for r in rows if r[1] != r[2]]
        if bad_rows:
            lines = [f"  {o}: read back {list(g) if isinstance(g, bytes) else g}" for o, _, g in bad_rows[:20]]
            raise ExportError(f"{where}: {len(bad_rows)} object(s) read back differ from what was set "
                              "(the controller holds other values):\n" + "\n".join(lines))
        return rows
    finally:
        engine.close_dispatcher()


def download(t: SignalTiming, addr: Address, *, pattern: int = 1, split: int = 1, sequence: int = 1,
             write_community: str = "private", read_community: str = "public",
             timeout_s: float = 2.0, retries: int = 1) -> DownloadReport:
    """Send one (already validated, whole-second) signal timing to the controller at ``addr``,
    read every object back and compare; see the module docstring. Raises :class:`ExportError`."""
    objs = ntcip_objects(t, pattern=pattern, split=split, sequence=sequence)
    timeout_s = check_timeout(timeout_s)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ExportError(f"SNMP retries must be an integer >= 0, got {retries!r}")
    rows = asyncio.run(_download(objs, addr, write_community=write_community, read_community=read_community,
                                 timeout_s=timeout_s, retries=retries))
    return DownloadReport(t.signal_id, f"{addr.host}:{addr.port}", tuple(rows))


def download_plan(plan: TimingPlan, network: RoadNetwork, targets: list[Address], *,
                  min_yellow_s: float | None = None, standards: SafetyStandards | None = None,
                  **kw: object) -> list[DownloadReport]:
    """Validate ``plan``, quantise it to whole seconds, validate that, check every target's
    objects (ranges) and only then send each target its signal (:func:`download`).

    An unsafe plan raises :class:`~greenwave.errors.PlanError` before anything is sent. With
    several targets a failure names the controllers that already hold the plan and those not
    contacted (:func:`~greenwave.controllers.export.common.per_target`).
    """
    validated(plan, network, min_yellow_s=min_yellow_s, standards=standards)
    q = quantise_plan(plan)
    validated(q, network, min_yellow_s=min_yellow_s, standards=standards)
    numbers = {k: kw[k] for k in ("pattern", "split", "sequence") if k in kw}
    if "timeout_s" in kw:
        check_timeout(kw["timeout_s"])  # type: ignore[arg-type]
    for a in targets:
        ntcip_objects(q.signals[str(a.signal_id)], **numbers)  # type: ignore[arg-type]
    return per_target(targets, lambda a: download(q.signals[str(a.signal_id)], a, **kw),  # type: ignore[arg-type]
                      "NTCIP download")
