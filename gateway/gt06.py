"""GT06 / Concox binary tracker protocol (``78 78 LEN PROTO INFO SERIAL CRC 0D 0A``), sans-I/O.

Theory of operation
-------------------
What it owns
    :class:`Gt06Codec` cuts the TCP byte stream of one GT06-family device (watches, pendants, trackers) into
    packets, keeps the connection's session (the IMEI from the login packet), turns each packet into
    :class:`gateway.events.Decoded` results (normalised events and the reply owed) and counts every
    irregularity in ``counters``. :func:`encode_packet` and :func:`crc_itu` build packets the way devices
    do, for tests and simulators.

A packet on the wire (here a GPS packet, protocol 0x12)::

    78 78 1F 12 0B 08 1D 11 2E 10 CC 02 7A C7 EB 0C 46 58 49 00 14 8F 01 CC 00 28 7D 00 1F B8 00 03 80 81 0D 0A
    |     |  |  |                                                                        |     |     |
    |     |  |  INFO (here date-time, GPS block, cell; layouts next to each decoder)     |     |     stop bits
    |     |  |                                                                           |     CRC-ITU (X.25)
    |     |  protocol number                                                             |     of LEN..SERIAL
    |     LEN: bytes from PROTO to CRC (the long form "79 79" has a two-byte LEN)       serial number,
    start bits                                                                           echoed in the reply

Rules
    1. Sans-I/O: no socket, no clock (``now`` is an argument), no storage.
    2. Framing: a packet starts at ``78 78`` or ``79 79`` and ends where LEN says when ``0D 0A`` is there.
       A ``0D 0A`` before that point may be payload, so it ends the packet early only when a CRC vouches
       for it: the CRC up to it is right (the LEN byte was wrong), or a packet with a right CRC starts
       inside (the bytes before that start were a truncated packet: one ``framing`` error); otherwise the
       codec waits for the bytes LEN announces. When those are there and do not end in ``0D 0A`` (real
       devices send wrong LEN bytes), the packet ends at its first ``0D 0A`` (``length_mismatch``) unless
       a start inside it begins a packet that checks out (CRC right or LEN fitting), which makes the bytes
       before it a truncated packet. Bytes outside packets are garbage, skipped and counted; a packet not
       ended after ``max_frame`` bytes is dropped (one ``framing`` error) and the codec hunts for the next
       start. Every decision depends on bytes at fixed places of the packet, never on how much has been
       read, so the result does not depend on how the stream is cut into reads.
    3. Session: the login packet (0x01) carries the IMEI in BCD; the codec remembers it for the connection
       and it is the ``device_id`` of every later event. Any other packet before a login is refused with
       ``"not logged in"`` and no reply (the device logs in again and repeats it).
    3a. Unknown devices: GT06 carries no credential, only the IMEI. When the codec is given a ``known``
       lookup (the server passes the registry's; setting ``gt06_unknown_login``, default "refuse"), a login
       from an IMEI nobody registered is refused with ``"unknown device"``: no login ACK (the protocol has
       no negative answer; a device that gets none retries its login later), no session, so every packet
       after it is ``"not logged in"``; one ``checkin`` event (detail ``refused: login``) lets the core count
       the unregistered device in its interval summary for supervisors. A known device logging in on the same
       connection afterwards is accepted. Without a lookup (tests, simulators, ``gt06_unknown_login =
       "accept"``) every login is accepted.
    4. CRC policy: a packet whose CRC fails is still decoded. If its structure parses and it carries an
       alarm, its alarm events are kept (``detail["crc_ok"] = False``, counted ``checksum_alarm_kept``):
       an SOS is never dropped for a bad checksum. It gets no reply, so the device repeats it and a clean
       copy may follow. Any other packet with a bad CRC, a login included, is refused (``checksum``, no
       reply).
    5. Replies (:func:`ack`, ``78 78 05 PROTO SERIAL CRC 0D 0A``) go to login, heartbeat (0x13, 0x23), GPS,
       status/alarm and LBS-alarm packets, and to the modular packet 0x70; the time request 0x8A gets the
       UTC time from ``now``; the extended AZ735 GPS packet gets the same ack in the long form. The address
       request 0x2A (its fix is kept as a position) gets no answer: Anxin sends no street addresses. Packets
       of other types become "info" events with no reply; refused packets get no reply.
    6. Alarms come from alarm-carrying packets only (0x16, 0x26, 0x27, 0xA4, 0x19, 0xA5, 0x95, 0x70): the
       alarm byte (:data:`gateway.codes.GT06_ALARMS`) and the terminal-information alarm field, bits 3-5
       (:data:`gateway.codes.GT06_TERMINAL_BITS`, keyed by that field's value), one event per alarm type.
       A heartbeat's terminal information is state, repeated every few minutes while it lasts: it is kept
       in ``detail`` and raises nothing, or a handled SOS would come back with every heartbeat.
    7. Positions: latitude and longitude are the 4-byte fields / 1,800,000, negative for south (course
       word bit 10 clear) and west (bit 11 set); bit 12 says "positioned". Without a fix a position report
       still gives its last known coordinates (``detail["fix"] == "last_known"``) unless they are zero; an
       alarm never does (``lat``/``lon`` None, the last known fix in ``detail["last_known"]``), so that the
       core sends a responder to the registered home rather than to a stale fix.
    8. Times are UTC. One more than a day ahead of ``now`` or before 2000 is dropped (``future_time``,
       ``unset_time``: gateway.events.trusted_time).
    9. ``dedup`` stays None: after a restart a device may reuse serial numbers and stale fix times, and
       merging two real alarms is worse than attaching a repeat to the open incident.

What it must never do: reply to a packet it could not verify, act on a packet before login, or let a device's
bytes raise. An exception that is not a protocol error is a bug on our side: logged, reason ``internal``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import fastcrc

from gateway import codes
from gateway.errors import ChecksumError, FramingError, ProtocolError
from gateway.events import Decoded, DeviceEvent, EventKind, trusted_time
from gateway.registry import DEFAULT_POLICY, CodeTable, DevicePolicy, KeyLookup, KnownLookup, ProtocolSpec

__all__ = ["PROTOCOL", "REASONS", "Gt06Codec", "Packet", "ack", "crc_itu", "encode_packet", "parse_packet"]

log = logging.getLogger(__name__)

PROTOCOL: Final = "gt06"

#: Every value ``Decoded.error`` can take; none of them gets a reply.
REASONS: Final = frozenset({"framing", "checksum", "not logged in", "unknown device", "malformed", "internal"})

SHORT: Final = b"\x78\x78"
LONG: Final = b"\x79\x79"
STOP: Final = b"\r\n"

LOGIN: Final = 0x01
HEARTBEAT: Final = 0x13
HEARTBEAT_GK310: Final = 0x23
TIME_REQUEST: Final = 0x8A
ALARM_JC: Final = 0x95
MODULAR: Final = 0x70  # long form only
STRING_INFO: Final = 0x21  # long form only
AZ735_GPS: Final = 0x32  # long form only

#: Packets that start with date-time and a GPS block, by offset of the date-time in INFO.
_GPS_PACKETS: Final[dict[int, int]] = {
    0x10: 0,  # GPS
    0x11: 0,  # GPS + LBS (4-byte cell id)
    0x12: 0,  # GPS + LBS: the classic location packet
    0x1A: 0,  # GPS + phone number
    0x1E: 0,  # GPS + LBS, extended
    0x22: 0,  # GPS + LBS + ACC / upload mode
    0x2A: 0,  # GPS + phone number: address request (answered by SMS-capable servers; here a position)
    0x2D: 0,  # GPS + LBS
    0x31: 0,  # GPS + LBS
    0x34: 4,  # 4 bytes of data and alarm flags, then GPS
    0x37: 0,  # GPS + LBS + module
    0xA0: 0,  # GPS + 4G LBS
}
#: Packets with GPS, LBS (with its own length byte) and a status block: the alarm packets.
_STATUS_PACKETS: Final = frozenset({0x16, 0x26, 0x27, 0xA4})
#: Firmware variants of the status packets, told apart by LEN: (protocol, LEN) -> (LBS has a length byte,
#: size of the cell id). Everything else: a length byte and a 3-byte cell id.
_STATUS_VARIANTS: Final[dict[tuple[int, int], tuple[bool, int]]] = {
    (0x16, 0x24): (False, 3),  # VXT01-style: no LBS length byte
    (0x16, 0x26): (True, 4),  # SeeWorld-style: 4-byte cell id, length byte says 9
}
#: LBS alarm packets: a cell without a length byte, then the status block; value: LAC and cell id sizes.
_LBS_STATUS_PACKETS: Final[dict[int, tuple[int, int]]] = {0x19: (2, 3), 0xA5: (4, 8)}
#: GPS packets that get no ack (rule 5).
_NOT_ACKED_GPS: Final = frozenset({0x2A})

_MAX_RESTARTS: Final = 16  # starts inside a bad packet that are tried as the real start (bounds the work)
_COORD_SCALE: Final = 1_800_000.0  # minutes x 30,000


# -- CRC and packet building ---------------------------------------------------------------------------------


def crc_itu(data: bytes) -> int:
    """CRC-ITU as GT06 uses it: CRC-16/X-25 (poly 0x1021 reflected, init 0xFFFF, final xor 0xFFFF), fastcrc's
    ``ibm_sdlc`` (in Rust, a hundred times a table walk in Python)."""
    return int(fastcrc.crc16.ibm_sdlc(data))


def encode_packet(proto: int, info: bytes, serial: int, *, extended: bool | None = None) -> bytes:
    """A packet as a device sends it. The long form ``79 79`` when ``extended`` or when INFO needs it."""
    body_length = 1 + len(info) + 2 + 2
    long_form = extended if extended is not None else body_length > 0xFF
    if not 0 <= proto <= 0xFF or not 0 <= serial <= 0xFFFF or body_length > 0xFFFF:
        raise ValueError("protocol number, serial or INFO out of range")
    if not long_form and body_length > 0xFF:
        raise ValueError("INFO too long for the short form")
    length = body_length.to_bytes(2, "big") if long_form else bytes([body_length])
    body = length + bytes([proto]) + info + serial.to_bytes(2, "big")
    return (LONG if long_form else SHORT) + body + crc_itu(body).to_bytes(2, "big") + STOP


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet cut from the stream: its parts as sent and whether its CRC checks."""

    extended: bool  # long form 79 79
    proto: int
    info: bytes
    serial: int
    crc_ok: bool


def parse_packet(frame: bytes) -> Packet:
    """Split a whole packet (start to stop bits) into its parts. Raises FramingError when too short."""
    header = 4 if frame[:2] == LONG else 3
    if len(frame) < header + 1 + 2 + 2 + 2:
        raise FramingError("packet too short")
    body = frame[2:-4]
    return Packet(
        extended=header == 4,
        proto=frame[header],
        info=frame[header + 1 : -6],
        serial=int.from_bytes(frame[-6:-4], "big"),
        crc_ok=crc_itu(body) == int.from_bytes(frame[-4:-2], "big"),
    )


def ack(packet: Packet, content: bytes = b"", *, extended: bool = False) -> bytes:
    """The server's answer: ``78 78 05 PROTO SERIAL CRC 0D 0A`` (with content, a longer LEN)."""
    return encode_packet(packet.proto, content, packet.serial, extended=extended)


def _crc_ok(frame: bytes | bytearray) -> bool:
    """Is this candidate packet's CRC right."""
    return len(frame) >= 10 and crc_itu(bytes(frame[2:-4])) == int.from_bytes(frame[-4:-2], "big")


def _fits(frame: bytes | bytearray) -> bool:
    """Does this candidate packet check out: CRC right, or LEN matching its length."""
    if len(frame) < 10:
        return False
    declared = frame[2] + 5 if frame[:2] == SHORT else int.from_bytes(frame[2:4], "big") + 6
    return declared == len(frame) or _crc_ok(frame)


# -- framing ------------------------------------------------------------------------------------------------


def _find_start(buf: bytearray, start: int, end: int | None = None) -> int:
    hits = [i for i in (buf.find(SHORT, start, end), buf.find(LONG, start, end)) if i >= 0]
    return min(hits) if hits else -1


class _Framer:
    """Cuts the stream into packets; see rule 2. Each byte is scanned once however the reads are cut."""

    def __init__(self, max_frame: int, counters: Counter[str]) -> None:
        self.buf = bytearray()
        self._max_frame = max_frame
        self._counters = counters
        self._reset()

    def _reset(self) -> None:
        self._stop_from = 0  # where the search for the head packet's first 0D 0A resumes
        self._stop_end: int | None = None  # end of that first 0D 0A, once found
        self._early: int | None = None  # what a CRC says about it: -1 the packet ends there, k > 0 one starts at k

    def _drop(self, n: int) -> None:
        del self.buf[:n]
        self._reset()

    def _take(self, n: int) -> bytes:
        frame = bytes(self.buf[:n])
        self._drop(n)
        return frame

    def next(self) -> bytes | FramingError | None:
        """The next packet, a FramingError for a truncated or oversized one, or None: need more data."""
        buf = self.buf
        start = _find_start(buf, 0)
        if start < 0:
            keep = 1 if buf and buf[-1] in (0x78, 0x79) else 0
            if len(buf) > keep:
                self._counters["garbage_bytes"] += len(buf) - keep
                self._drop(len(buf) - keep)
            return None
        if start > 0:
            self._counters["garbage_bytes"] += start
            self._drop(start)
        header = 3 if buf[0] == 0x78 else 4
        if len(buf) < header:
            return None
        declared = buf[2] + 5 if header == 3 else int.from_bytes(buf[2:4], "big") + 6
        plausible = declared <= self._max_frame
        end = self._first_stop(header)
        if end is None or end > self._max_frame:
            if end is None and len(buf) <= self._max_frame:
                return None
            self._counters["oversize"] += 1
            self._drop(2)
            return FramingError("packet longer than max_frame")
        if plausible and end < declared:
            # LEN says more is coming: the stop bits end the packet now only if a CRC says so
            if self._early is None:
                self._early = -1 if _crc_ok(buf[:end]) else self._restart(end, _crc_ok)
            if self._early < 0:
                self._counters["length_mismatch"] += 1
                return self._take(end)
            if self._early > 0:
                return self._truncated(self._early)
            if len(buf) < declared:
                return None  # this 0D 0A may be payload: wait for the bytes LEN announces
        if plausible and len(buf) >= declared and buf[declared - 2 : declared] == STOP:
            return self._take(declared)
        restart = self._restart(end, _fits)
        if restart:
            return self._truncated(restart)
        self._counters["length_mismatch"] += 1
        return self._take(end)

    def _truncated(self, restart: int) -> FramingError:
        self._counters["truncated"] += 1
        self._drop(restart)
        return FramingError("truncated packet")

    def _first_stop(self, header: int) -> int | None:
        if self._stop_end is None:
            i = self.buf.find(STOP, max(self._stop_from, header))
            if i < 0:
                self._stop_from = max(header, len(self.buf) - 1)
                return None
            self._stop_end = i + 2
        return self._stop_end

    def _restart(self, end: int, test: Callable[[bytearray], bool]) -> int:
        """Where a packet passing ``test`` starts inside the head packet, before ``end`` (0: nowhere)."""
        if _crc_ok(self.buf[:end]):
            return 0
        k = _find_start(self.buf, 1, end)
        for _ in range(_MAX_RESTARTS):
            if k < 0:
                break
            if test(self.buf[k:end]):
                return k
            k = _find_start(self.buf, k + 1, end)
        return 0


# -- reading INFO -------------------------------------------------------------------------------------------


class _Reader:
    """Bounds-checked big-endian reads from INFO; running off the end is a ProtocolError."""

    __slots__ = ("_data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self._data = data
        self.pos = pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self._data):
            raise ProtocolError("INFO too short for its packet type")
        chunk = self._data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def i16(self) -> int:
        return int.from_bytes(self.take(2), "big", signed=True)


def _datetime(raw: bytes) -> float | None:
    """Six bytes year-2000, month, day, hour, minute, second (UTC) -> epoch seconds, or None."""
    try:
        return datetime(2000 + raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], tzinfo=UTC).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Fix:
    device_time: float | None
    valid: bool
    lat: float | None  # None when out of range
    lon: float | None
    detail: dict[str, Any]

    def coordinates(self, *, alarm: bool) -> tuple[float | None, float | None, str]:
        """(lat, lon, fix) following rule 7 of the module docstring."""
        if self.lat is None or self.lon is None or (self.lat == 0 and self.lon == 0):
            return None, None, "none"
        if self.valid:
            return self.lat, self.lon, "valid"
        return (None, None, "last_known") if alarm else (self.lat, self.lon, "last_known")


_NO_FIX: Final = _Fix(None, False, None, None, {})


def _fix(device_time: float | None, lat_raw: int, lon_raw: int, flags: int, detail: dict[str, Any]) -> _Fix:
    # flags (the course word): bits 0-9 course, 10 north, 11 west, 12 positioned, 13 differential
    lat = lat_raw / _COORD_SCALE * (1 if flags >> 10 & 1 else -1)
    lon = lon_raw / _COORD_SCALE * (-1 if flags >> 11 & 1 else 1)
    in_range = abs(lat) <= 90 and abs(lon) <= 180
    return _Fix(
        device_time=device_time,
        valid=bool(flags >> 12 & 1),
        lat=lat if in_range else None,
        lon=lon if in_range else None,
        detail={**detail, "course": flags & 0x3FF},
    )


# 0B 08 1D 11 2E 10  CC  02 7A C7 EB  0C 46 58 49  00  14 8F
def _read_gps(r: _Reader, *, satellites: bool = True, speed: int = 1, length_byte: bool = False) -> _Fix:
    when = _datetime(r.take(6))  # 0B 08 1D 11 2E 10   2011-08-29 17:46:16 UTC
    if length_byte and r.u8() == 0:  # (AZ735 only) length of the GPS block; 0: no GPS block follows
        return _Fix(when, False, None, None, {})
    detail: dict[str, Any] = {}
    if satellites:
        detail["satellites"] = r.u8() & 0x0F  # CC         GPS info length (high nibble), satellites (low)
    lat_raw = r.u32()  # 02 7A C7 EB                        latitude x 1,800,000
    lon_raw = r.u32()  # 0C 46 58 49                        longitude x 1,800,000
    if speed:
        detail["speed_kmh"] = int.from_bytes(r.take(speed), "big")  # 00
    flags = r.u16()  # 14 8F                                course and status flags
    return _fix(when, lat_raw, lon_raw, flags, detail)


@dataclass(frozen=True, slots=True)
class _Status:
    """The status block: terminal information, voltage level, GSM signal, alarm, language."""

    terminal: int
    battery: int | None
    alarm: int
    detail: dict[str, Any]


_TERMINAL_OTHER: Final[dict[int, str]] = {1: "vibration", 2: "power cut", 6: "geofence"}


def _terminal(value: int) -> dict[str, Any]:
    """Terminal information byte: bit 0 armed, 1 ACC, 2 charging, 3-5 alarm, 6 GPS tracking, 7 cut off."""
    alarm = value >> 3 & 0x7
    meaning = codes.GT06_TERMINAL_BITS.get(alarm)
    label = meaning.label if meaning is not None else _TERMINAL_OTHER.get(alarm)
    detail: dict[str, Any] = {
        "armed": bool(value & 0x01),
        "acc": bool(value & 0x02),
        "charging": bool(value & 0x04),
        "gps_tracking": bool(value & 0x40),
    }
    if alarm:
        detail["alarm"] = label or f"value {alarm}"
    return detail


def _battery(level: int) -> int | None:
    """Voltage level 0-6 (GT06 scale) as a percentage; some firmware sends a percentage directly."""
    if level <= 6:
        return round(level * 100 / 6)
    return level if level <= 100 else None


# 44 06 04 01 02: terminal 0x44, voltage level 6, GSM 4, alarm 0x01 (SOS), language 0x02 (English)
def _read_status(r: _Reader) -> _Status:
    terminal = r.u8()  # 44    terminal information
    level = r.u8()  # 06       voltage level 0-6
    gsm = r.u8()  # 04         GSM signal 0-4
    alarm = r.u8()  # 01       alarm byte
    language = r.u8()  # 02    language
    detail = {"terminal": _terminal(terminal), "voltage_level": level, "gsm": gsm, "language": language}
    return _Status(terminal, _battery(level), alarm, detail)


# 09 | 01 CC | 00 | 28 7D | 00 1F 71: LBS length, MCC (bit 15 set: two-byte MNC), MNC, LAC, cell id, maybe more
def _skip_lbs(r: _Reader, *, length_byte: bool = True, cell_id: int = 3) -> None:
    length = r.u8() if length_byte else 0
    if length_byte and length == 0:
        # no cell: some firmware then sends 45 zero bytes, others nothing
        rest = r.take(min(r.remaining, 45))
        if any(rest[9:]):
            r.pos -= len(rest)
        return
    mcc = r.u16()
    size = (2 if mcc & 0x8000 else 1) + 2 + cell_id
    # firmware disagrees on whether LENGTH counts itself: the cell is at least its fixed size, and a longer
    # LENGTH means more bytes (more cells, 4G fields) to skip
    r.take(max(size, length - 3))


# -- the codec ----------------------------------------------------------------------------------------------

_Result = tuple[list[DeviceEvent], bytes | None]


class Gt06Codec:
    """One GT06 connection: bytes in, :class:`Decoded` results out (see the module docstring)."""

    def __init__(self, *, max_frame: int = 64 * 1024, known: Callable[[str], bool] | None = None) -> None:
        self.counters: Counter[str] = Counter()
        self.imei: str | None = None
        self._known = known  # rule 3a: None accepts every login
        self._framer = _Framer(max_frame, self.counters)
        self._basic: dict[int, Callable[[Packet, float], _Result]] = {
            HEARTBEAT: self._heartbeat,
            HEARTBEAT_GK310: self._heartbeat_gk310,
            TIME_REQUEST: self._time_request,
            ALARM_JC: self._alarm_jc,
        }
        self._extended: dict[int, Callable[[Packet, float], _Result]] = {
            MODULAR: self._modular,
            STRING_INFO: self._string_info,
            AZ735_GPS: self._az735,
        }

    @property
    def buffered(self) -> int:
        """Bytes held back, waiting for the rest of a frame (never more than ``max_frame``)."""
        return len(self._framer.buf)

    def receive_data(self, data: bytes, now: float) -> list[Decoded]:
        """Feed bytes from the connection; return one result per complete packet, in order."""
        self._framer.buf += data
        results: list[Decoded] = []
        while (cut := self._framer.next()) is not None:
            if isinstance(cut, FramingError):
                results.append(self._refuse("framing"))
            else:
                results.append(self._decode_safely(cut, now))
        return results

    # -- one packet -------------------------------------------------------------------------------------

    def _refuse(self, reason: str) -> Decoded:
        self.counters[reason.replace(" ", "_")] += 1
        return Decoded(error=reason)

    def _decode_safely(self, frame: bytes, now: float) -> Decoded:
        self.counters["frames"] += 1
        try:
            packet = parse_packet(frame)
        except ProtocolError:
            return self._refuse("framing")
        try:
            return self._decode(packet, now)
        except ChecksumError:
            return self._refuse("checksum")
        except ProtocolError:
            return self._refuse("malformed" if packet.crc_ok else "checksum")
        except Exception:  # a bug on our side, never the device's fault: no reply, the device repeats
            log.exception("gt06: internal error decoding %s", frame[:200].hex())
            return self._refuse("internal")

    def _decode(self, packet: Packet, now: float) -> Decoded:
        if packet.proto == LOGIN and not packet.extended:
            return self._login(packet)
        if self.imei is None:
            return self._refuse("not logged in")
        events, reply = self._dispatch(packet, now)
        if packet.crc_ok:
            return Decoded(tuple(events), reply)
        alarms = tuple(e for e in events if e.kind == "alarm")
        if not alarms:
            raise ChecksumError("CRC mismatch")
        self.counters["checksum_alarm_kept"] += 1
        return Decoded(alarms)

    def _dispatch(self, packet: Packet, now: float) -> _Result:
        proto = packet.proto
        if packet.extended:
            handler = self._extended.get(proto)
        elif proto in _GPS_PACKETS:
            handler = self._gps
        elif proto in _STATUS_PACKETS:
            handler = self._status
        elif proto in _LBS_STATUS_PACKETS:
            handler = self._lbs_status
        else:
            handler = self._basic.get(proto)
        if handler is None:
            self.counters["unsupported"] += 1
            detail = {"proto": f"0x{proto:02X}", "info_bytes": len(packet.info)}
            return [self._event(packet, "info", detail)], None
        return handler(packet, now)

    def _event(self, packet: Packet, kind: EventKind, detail: dict[str, Any], **values: Any) -> DeviceEvent:
        assert self.imei is not None
        code = values.pop("code", None) or f"GT06:{packet.proto:02X}"
        if not packet.crc_ok:
            detail = {**detail, "crc_ok": False}
        return DeviceEvent(PROTOCOL, self.imei, kind, code, detail={**detail, "serial": packet.serial}, **values)

    # 08 64 71 70 03 28 35 81 | 10 0B | 32 01: IMEI 864717003283581 (BCD), type id, time zone and language
    def _login(self, packet: Packet) -> Decoded:
        if not packet.crc_ok:
            return self._refuse("checksum")
        raw = packet.info[:8].hex()
        if len(raw) != 16 or not raw.isdigit():
            raise ProtocolError("IMEI is not 8 BCD bytes")
        imei = raw[1:] if raw[0] == "0" else raw
        if self._known is not None and not self._known(imei):  # rule 3a: no ACK, no session; counted by the core
            self.counters["unknown_device"] += 1
            event = DeviceEvent(PROTOCOL, imei, "checkin", f"GT06:{packet.proto:02X}", detail={"refused": "login"})
            return Decoded((event,), None, error="unknown device")
        if self.imei is not None and self.imei != imei:
            self.counters["relogin"] += 1
        self.imei = imei
        self.counters["login"] += 1
        detail: dict[str, Any] = {}
        if len(packet.info) >= 10:
            detail["type_id"] = packet.info[8:10].hex()
        return Decoded((self._event(packet, "login", detail),), ack(packet))

    # 40 06 04 00 02: terminal information, voltage level, GSM signal, [alarm, language]
    def _heartbeat(self, packet: Packet, now: float) -> _Result:
        info = packet.info
        detail: dict[str, Any]
        if len(info) == 16:
            # 30 80 2B 00 00 06 42 01 4F 00 08 72 00 00 80 2B: content, satellites(2), alarm, language,
            # battery %, mode, voltage(2), reserved, working times(2), working time(2), temperature(2)
            battery = info[5] if info[5] <= 100 else None
            detail = {"layout": "battery_percent", "alarm_byte": info[3]}
        else:
            r = _Reader(info)
            terminal = r.u8()
            level = r.u8() if r.remaining else None
            battery = _battery(level) if level is not None else None
            detail = {"terminal": _terminal(terminal), "voltage_level": level}
            if r.remaining:
                detail["gsm"] = r.u8()
            if r.remaining:
                detail["alarm_byte"] = r.u8()
        detail = {k: v for k, v in detail.items() if v is not None}
        return [self._event(packet, "checkin", detail, battery=battery)], ack(packet)

    # C0 01 22 04 00 01: status, battery voltage x 100 (2), GSM signal, language (2)
    def _heartbeat_gk310(self, packet: Packet, now: float) -> _Result:
        r = _Reader(packet.info)
        status = r.u8()
        detail: dict[str, Any] = {"terminal": _terminal(status)}
        if r.remaining >= 2:
            detail["battery_v"] = r.u16() / 100
        if r.remaining:
            detail["gsm"] = r.u8()
        return [self._event(packet, "checkin", detail)], ack(packet)

    # (empty INFO): the device asks for the time; the answer carries yy mm dd hh mm ss, UTC
    def _time_request(self, packet: Packet, now: float) -> _Result:
        t = datetime.fromtimestamp(now, UTC)
        content = bytes([t.year - 2000, t.month, t.day, t.hour, t.minute, t.second])
        return [self._event(packet, "info", {"request": "time"})], ack(packet, content)

    def _gps(self, packet: Packet, now: float) -> _Result:
        r = _Reader(packet.info, _GPS_PACKETS[packet.proto])
        fix = _read_gps(r)
        reply = None if packet.proto in _NOT_ACKED_GPS else ack(packet)
        return [self._position_event(packet, fix, now)], reply

    def _position_event(self, packet: Packet, fix: _Fix, now: float, **values: Any) -> DeviceEvent:
        lat, lon, how = fix.coordinates(alarm=False)
        when = trusted_time(fix.device_time, now, self.counters)
        detail = {**fix.detail, "fix": how, **values.pop("detail", {})}
        return self._event(packet, "position", detail, lat=lat, lon=lon, device_time=when, **values)

    # date-time, GPS block | LBS with length | terminal, voltage level, GSM, alarm, language [| more]
    def _status(self, packet: Packet, now: float) -> _Result:
        has_length, cell_id = _STATUS_VARIANTS.get((packet.proto, 1 + len(packet.info) + 4), (True, 3))
        r = _Reader(packet.info)
        fix = _read_gps(r)
        _skip_lbs(r, length_byte=has_length, cell_id=cell_id)
        status = _read_status(r)
        return self._alarms_or(packet, fix, status, now), ack(packet)

    # 01 2E | D0 | 00 00 75 DF | 00 00 00 00 00 98 66 15 | 02 05 04 13 00: MCC, MNC, LAC, cell id, status
    def _lbs_status(self, packet: Packet, now: float) -> _Result:
        lac_size, cell_size = _LBS_STATUS_PACKETS[packet.proto]
        r = _Reader(packet.info)
        mcc = r.u16()  # 01 2E   MCC; bit 15 set: the MNC takes two bytes
        r.take(2 if mcc & 0x8000 else 1)  # D0   MNC
        r.take(lac_size)  # 00 00 75 DF
        r.take(cell_size)  # 00 00 00 00 00 98 66 15
        if not 5 <= r.remaining <= 8:
            # a layout of this packet type not documented here (several cells, a date-time...): no guessing
            self.counters["unsupported"] += 1
            detail: dict[str, Any] = {"proto": f"0x{packet.proto:02X}", "layout": "unknown"}
            return [self._event(packet, "info", detail)], None
        status = _read_status(r)
        return self._alarms_or(packet, _NO_FIX, status, now), ack(packet)

    def _alarms_or(self, packet: Packet, fix: _Fix, status: _Status, now: float) -> list[DeviceEvent]:
        """The alarm events of a status block, or one position (or check-in) event when it raises none."""
        found: dict[str, tuple[str, str]] = {}  # alarm type -> (code, label)
        meaning = codes.GT06_ALARMS.get(status.alarm)
        if meaning is not None and meaning.alarm_type is not None:
            found[meaning.alarm_type] = (f"GT06:{packet.proto:02X}:{status.alarm:02X}", meaning.label)
        value = status.terminal >> 3 & 0x7
        meaning = codes.GT06_TERMINAL_BITS.get(value)
        if meaning is not None and meaning.alarm_type is not None and meaning.alarm_type not in found:
            found[meaning.alarm_type] = (f"GT06:{packet.proto:02X}:T{value}", meaning.label)
        detail = {**status.detail, "alarm_byte": status.alarm}
        if not found:
            if fix is _NO_FIX:
                return [self._event(packet, "checkin", detail, battery=status.battery)]
            return [self._position_event(packet, fix, now, battery=status.battery, detail=detail)]
        return [
            self._alarm_event(packet, fix, now, alarm_type, code, {**detail, "label": label}, status.battery)
            for alarm_type, (code, label) in found.items()
        ]

    def _alarm_event(
        self,
        packet: Packet,
        fix: _Fix,
        now: float,
        alarm_type: str,
        code: str,
        detail: dict[str, Any],
        battery: int | None = None,
    ) -> DeviceEvent:
        lat, lon, how = fix.coordinates(alarm=True)
        detail = {**fix.detail, **detail, "fix": how}
        if how == "last_known":
            detail["last_known"] = [fix.lat, fix.lon]
        return self._event(
            packet, "alarm", detail, code=code, alarm_type=alarm_type, lat=lat, lon=lon, battery=battery,
            device_time=trusted_time(fix.device_time, now, self.counters),
        )  # fmt: skip

    # short:    13 0A 07 12 23 20 | 01                     date-time, event
    # extended: 14 0A 06 0E 22 08 | 05 5D 4A 80 | 02 09 D9 C0 | 14 C5 | 01 | ...   date-time, lat, lon, flags, event
    # JC400:    FF FF | 01 | 17 07 19 15 20 13 | DF | lat | lon | 18 BE | 00 2F | 00 87 | 69 | ...
    def _alarm_jc(self, packet: Packet, now: float) -> _Result:
        info = packet.info
        r = _Reader(info)
        fix: _Fix | None
        if len(info) <= 7:
            fix = None
            when = _datetime(r.take(6))
        elif info[:2] == b"\xff\xff":
            r.take(3)  # FF FF marker, version
            fix = _read_gps(r, satellites=True, speed=2)
            r.take(2)  # power supply voltage x 10
        else:
            fix = _read_gps(r, satellites=False, speed=0)
        event = r.u8()
        meaning = codes.GT06_ALARMS.get(event)
        detail: dict[str, Any] = {"event": event}
        if meaning is None or meaning.alarm_type is None:
            if fix is None:
                info_event = self._event(packet, "info", detail, device_time=trusted_time(when, now, self.counters))
                return [info_event], ack(packet)
            return [self._position_event(packet, fix, now, detail=detail)], ack(packet)
        code = f"GT06:{packet.proto:02X}:{event:02X}"
        if fix is None:
            fix = _Fix(when, False, None, None, {})
        alarm = self._alarm_event(packet, fix, now, meaning.alarm_type, code, {**detail, "label": meaning.label})
        return [alarm], ack(packet)

    # 00 33 | 00 12 | 5D 62 BF 3A | 08 | 00 E8 | 04 B5 99 43 | 08 81 4A 87 | 00 | 1D 5D   (module 0x33: position)
    # 00 2B | 00 01 | 14                                                                 (module 0x2B: event)
    def _modular(self, packet: Packet, now: float) -> _Result:
        r = _Reader(packet.info)
        fix = _NO_FIX
        events: list[int] = []
        while r.remaining >= 4:
            module = r.u16()  # module type
            body = _Reader(r.take(r.u16()))  # module length, module data
            if module == 0x33 and body.remaining >= 18:
                seconds = body.u32()  # 5D 62 BF 3A   UTC epoch seconds (0: no time)
                when = float(seconds) if seconds else None
                satellites = body.u8()  # 08
                altitude = body.i16()  # 00 E8   metres
                lat_raw, lon_raw = body.u32(), body.u32()
                speed = body.u8()
                flags = body.u16()
                about = {"satellites": satellites, "altitude_m": altitude, "speed_kmh": speed}
                fix = _fix(when, lat_raw, lon_raw, flags, dict(about))
            elif module == 0x2B and body.remaining >= 1:
                events.append(body.u8())
        alarms: list[DeviceEvent] = []
        for event in events:
            meaning = codes.GT06_MODULAR_EVENTS.get(event)
            if meaning is not None and meaning.alarm_type is not None:
                code = f"GT06:70:{event:02X}"
                detail = {"event": event, "label": meaning.label}
                alarms.append(self._alarm_event(packet, fix, now, meaning.alarm_type, code, detail))
        reply = ack(packet)  # answered in the short form, as these devices expect
        if alarms:
            return alarms, reply
        return [self._position_event(packet, fix, now, detail={"events": events})], reply

    # 00 00 00 00 | 01 | Current position!Lat:N54.739332,Lon:E25.273270,Course:0.00,Speed:0.00,DateTime:...
    def _string_info(self, packet: Packet, now: float) -> _Result:
        r = _Reader(packet.info)
        r.take(4)  # server flag
        encoding = r.u8()  # 01 ASCII, else UTF-16BE
        raw = r.take(r.remaining)
        text = raw.decode("ascii", "replace") if encoding == 1 else raw.decode("utf-16-be", "replace")
        match = _LOCATION.search(text)
        if match is None:
            return [self._event(packet, "info", {"text": text[:200]})], None
        lat = float(match["lat"]) * (-1 if match["ns"] == "S" else 1)
        lon = float(match["lon"]) * (-1 if match["ew"] == "W" else 1)
        try:
            when: float | None = datetime.strptime(match["time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
        except ValueError:
            when = None
        fix = _Fix(when, True, lat if abs(lat) <= 90 else None, lon if abs(lon) <= 180 else None, {})
        return [self._position_event(packet, fix, now, detail={"source": "text"})], None

    # 11 06 17 0C 1B 18 | 0C | C9 | 00 A8 75 58 | 0B 7A B4 F0 | 00 | 10 35 | ...: date-time, GPS length (0: no
    # GPS block follows), satellites, latitude, longitude, speed, flags, then cells and Wi-Fi (not read)
    def _az735(self, packet: Packet, now: float) -> _Result:
        fix = _read_gps(_Reader(packet.info), length_byte=True)
        return [self._position_event(packet, fix, now)], ack(packet, extended=True)


# Current position!Lat:N54.739332,Lon:E25.273270,Course:0.00,Speed:0.00,DateTime:2017-11-06 09:02:11
_LOCATION: Final = re.compile(
    r"""
    Current\ position!
    Lat:(?P<ns>[NS])(?P<lat>\d+\.\d+),          # Lat:N54.739332
    Lon:(?P<ew>[EW])(?P<lon>\d+\.\d+),          # Lon:E25.273270
    Course:(?P<course>\d+\.\d+),                # Course:0.00
    Speed:(?P<speed>\d+\.\d+),                  # Speed:0.00
    DateTime:(?P<time>\d{4}-\d\d-\d\d\ +\d\d:\d\d:\d\d)
    """,
    re.VERBOSE,
)


def _codec(keys: KeyLookup, /, *, known: KnownLookup | None = None, policy: DevicePolicy = DEFAULT_POLICY) -> Gt06Codec:
    """The registry's factory: trackers carry no keys; unknown logins refused per the policy (rule 3a)."""
    return Gt06Codec(known=known if policy.gt06_unknown_login == "refuse" else None)


SPEC = ProtocolSpec(
    name="gt06",
    option="gt06",
    default_port=9102,
    summary="GPS trackers and SOS pendants speaking the binary GT06 protocol",
    stream=_codec,
    codes=(
        CodeTable("GT06 alarm byte", "byte", {f"0x{k:02X}": v for k, v in codes.GT06_ALARMS.items()}),
        CodeTable(
            "GT06 terminal information (value of bits 3–5)",
            "value",
            {str(k): v for k, v in codes.GT06_TERMINAL_BITS.items()},
        ),
        CodeTable("GT06 event module (0x70)", "event", {f"0x{k:02X}": v for k, v in codes.GT06_MODULAR_EVENTS.items()}),
    ),
)
