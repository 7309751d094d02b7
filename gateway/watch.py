"""3G/4G elderly GPS watch protocol (``[MF*ID*LLLL*TYPE,fields]``), sans-I/O.

Theory of operation
-------------------
What it owns
    :class:`WatchCodec` cuts the TCP byte stream a watch sends into frames, turns each frame into
    :class:`gateway.events.Decoded` results (normalised events and the reply owed), and counts every
    irregularity in ``counters``. One codec per connection; it keeps no state between frames other than the
    bytes of a frame still arriving.

A frame on the wire (ASCII text, binary payloads escaped)::

    [SG*8800000015*0087*UD,220414,134652,A,22.571707,N,113.8613968,E,0.1,0.0,100,7,60,90,1000,50,0000,...]
     |  |          |    |  |
     |  |          |    |  fields, comma separated (positions: the field table below)
     |  |          |    TYPE: LK link, UD/UD2/UD_LTE position, AL/AL_LTE alarm, bphrt/oxygen/... health
     |  |          LLLL: content length in hex, as sent (not trusted: some firmware gets it wrong)
     |  |          (index variant: "[ZJ*014111001332708*0075*0064*AL,...]" puts a 4-hex-digit message
     |  |          index before LLLL; replies then carry the same index)
     |  device ID (the watch's registration code or IMEI): DeviceEvent.device_id
     manufacturer prefix (3G, SG, CS, ZJ ...): echoed in replies

Rules
    1. Sans-I/O: no socket, no clock (``now`` is an argument), no storage.
    2. Framing: a frame is the bytes from ``[`` to the next ``]``. Binary payloads escape ``}`` ``[`` ``]``
       ``,`` ``*`` as 0x7D followed by 0x01..0x05, so ``[`` and ``]`` never occur inside a frame: a ``[``
       before the ``]`` means the bytes before it were a truncated frame (one ``framing`` error, no reply).
       Bytes outside brackets are garbage, skipped and counted. A frame longer than ``max_frame`` bytes,
       or still open after that many, is dropped (one ``framing`` error) and the codec hunts for the next
       ``[``. The result does not depend on how the stream is cut into reads.
    3. LLLL is compared with the content's length on the wire and a mismatch is counted
       (``length_mismatch``), never refused: real watches send wrong lengths.
    4. Nothing the device sends raises out of :meth:`WatchCodec.receive_data`: a frame whose header cannot
       be read becomes ``Decoded(error=reason)`` (a reason in :data:`REASONS`) with no reply. Fields are read
       leniently: a missing or malformed field reads as absent (an alarm is never lost to a bad field, nor
       to a Wi-Fi name in UTF-8 or GBK). An exception escaping a decoder is a bug on our side: logged,
       reason ``internal``, no reply.
    5. Replies (:data:`REPLIES`): ``LK`` -> ``LK``, any ``AL*`` -> ``AL``, ``TKQ``/``TKQ2`` echoed,
       ``INIT`` -> ``INIT,1``, ``JXTK`` (voice chunk) -> ``JXTKR,1``; with the frame's own manufacturer
       prefix, ID and, in the index variant, index. Everything else gets no reply.
    6. Alarms (``AL``, ``AL_LTE`` and any type starting with ``AL``): one "alarm" event per alarm type
       raised by the 32-bit status field (:data:`gateway.codes.WATCH_STATUS_BITS`; two bits of the same
       type make one event). An alarm frame with no such bit, or with an unreadable status, is one "sos"
       (``detail["inferred"]``): a watch sends AL frames when its wearer needs help, and a false SOS costs
       a phone call while a missed one may cost a life. Position reports (``UD*``, ``WT``) carry their
       status bits in ``detail`` but raise no alarm: the watch sends an AL frame for each alarm.
    7. Positions: latitude/longitude are given with a valid fix (``A``). With no fix (``V``) a position
       report still gives the watch's last known coordinates (``detail["fix"] == "last_known"``) unless
       they are zero; an alarm never does (``lat``/``lon`` None, the last known fix in
       ``detail["last_known"]``): an alarm's location sends a responder, and a stale fix must not, so the
       core falls back to the registered home address.
    8. Times are UTC (ddmmyy hhmmss). One more than a day ahead of ``now`` or before 2000 is dropped
       (``future_time``, ``unset_time``: gateway.events.trusted_time).
    9. ``dedup`` stays None: the protocol has no message id, and two identical alarms are two presses.

What it must never do: trust LLLL, reply to a frame it could not read, or let a device's bytes raise.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from gateway import codes
from gateway.errors import FramingError, ProtocolError
from gateway.events import Decoded, DeviceEvent, EventKind, trusted_time
from gateway.registry import CodeTable, ProtocolSpec, keyless

__all__ = ["PROTOCOL", "REASONS", "REPLIES", "WatchCodec", "WatchFrame", "parse_frame", "unescape"]

log = logging.getLogger(__name__)

PROTOCOL: Final = "watch"

#: Every value ``Decoded.error`` can take; none of them gets a reply.
REASONS: Final = frozenset({"framing", "header", "internal"})

#: TYPE (upper case) -> reply content, for the types the watch waits an answer for.
REPLIES: Final[dict[str, str]] = {
    "LK": "LK",
    "INIT": "INIT,1",
    "JXTK": "JXTKR,1",
}

#: Types whose content after the first fields is binary (escaped) data, not ASCII text.
_BINARY_TYPES: Final = frozenset({"JXTK", "TK", "IMG", "RECORD"})

#: Health reading types (upper case).
_HEALTH_TYPES: Final = frozenset({"BPHRT", "BLOOD", "OXYGEN", "BTEMP2", "TEMP", "HEART", "PULSE"})

#: Status bits that are not alarms but worth recording by name.
_OTHER_STATUS_BITS: Final[dict[int, str]] = {
    1: "geofence_exit",
    2: "geofence_enter",
    4: "motion",
    18: "geofence_exit",
    19: "geofence_enter",
}

_ESCAPES: Final[dict[int, int]] = {1: 0x7D, 2: 0x5B, 3: 0x5D, 4: 0x2C, 5: 0x2A}

# -- the frame header, one field per line, next to a sample --------------------------------------------------

# [ZJ*014111001332708*0075*0064*AL,040418,052156,A,22.536207,N,113.938673,E,...]
# [3G*8800000015*0003*TKQ]
_FRAME: Final = re.compile(
    rb"""
    \[                                  # [
    (?P<mf>[0-9A-Za-z]{2,4})            # ZJ                 manufacturer prefix
    \*(?P<id>[0-9A-Za-z]{1,32})         # 014111001332708    device ID
    (?:\*(?P<index>[0-9A-Fa-f]{4}))?    # 0075               message index (index variant only)
    \*(?P<length>[0-9A-Fa-f]{4})        # 0064               content length, hex (not trusted)
    \*(?P<content>.*)                   # AL,040418,...      TYPE[,fields]
    \]                                  # ]
    """,
    re.VERBOSE | re.DOTALL,
)

# AL,040418,052156,...
_TYPE: Final = re.compile(rb"[A-Za-z0-9_]{1,32}")

_NUMBER: Final = re.compile(r"-?\d+(?:\.\d+)?")
_INTEGER: Final = re.compile(r"-?\d{1,9}")
_HEX_STATUS: Final = re.compile(r"[0-9A-Fa-f]{1,8}")


# -- the fields of a position or alarm report ----------------------------------------------------------------

# UD,220414,134652,A,22.571707,N,113.8613968,E,0.1,0.0,100,7,60,90,1000,50,0000,4,1,460,0,9360,4082,131,...
#    0      1      2 3         4 5           6 7   8   9   10 11 12 13  14 15   16...
_DATE, _TIME, _VALIDITY, _LAT, _LAT_HEMI, _LON, _LON_HEMI = 0, 1, 2, 3, 4, 5, 6
_SPEED, _COURSE, _ALTITUDE, _SATELLITES, _GSM, _BATTERY, _STEPS, _TUMBLES, _STATUS = range(7, 16)
_CELLS = 16  # cell count, timing advance, MCC, MNC, then LAC, CI, signal per cell, then Wi-Fi


@dataclass(frozen=True, slots=True)
class WatchFrame:
    """One frame's header and raw content, as sent."""

    manufacturer: str
    device_id: str
    index: str | None
    length: int  # LLLL as sent
    type: str
    body: bytes  # the content after "TYPE," (raw: binary payloads still escaped)
    content_length: int  # bytes of TYPE[,fields] on the wire

    def reply(self, content: str) -> bytes:
        """The reply frame for ``content``, in the frame's own form (prefix, ID, index)."""
        index = f"*{self.index}" if self.index is not None else ""
        return f"[{self.manufacturer}*{self.device_id}{index}*{len(content):04X}*{content}]".encode("ascii")


def parse_frame(frame: bytes) -> WatchFrame:
    """Parse one bracketed frame's header. Raises ProtocolError when it is not a watch frame."""
    match = _FRAME.fullmatch(frame)
    if match is None:
        raise ProtocolError("not a [MF*ID*LLLL*TYPE,...] frame")
    content = match["content"]
    type_raw, _, body = content.partition(b",")
    if _TYPE.fullmatch(type_raw) is None:
        raise ProtocolError("bad TYPE")
    index = match["index"]
    return WatchFrame(
        manufacturer=match["mf"].decode("ascii"),
        device_id=match["id"].decode("ascii"),
        index=index.decode("ascii") if index is not None else None,
        length=int(match["length"], 16),
        type=type_raw.decode("ascii"),
        body=body,
        content_length=len(content),
    )


def unescape(data: bytes) -> bytes:
    """Undo the binary-payload escaping: 0x7D followed by 0x01..0x05 stands for ``}`` ``[`` ``]`` ``,`` ``*``.

    A 0x7D followed by anything else (or at the end) is kept as it is.
    """
    if b"}" not in data:
        return data
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        byte = data[i]
        if byte == 0x7D and i + 1 < n and data[i + 1] in _ESCAPES:
            out.append(_ESCAPES[data[i + 1]])
            i += 2
        else:
            out.append(byte)
            i += 1
    return bytes(out)


# -- small field readers: a malformed field reads as None, never raises --------------------------------------


def _field(fields: list[str], i: int) -> str:
    return fields[i].strip() if i < len(fields) else ""


def _int(fields: list[str], i: int) -> int | None:
    value = _field(fields, i)
    return int(value) if _INTEGER.fullmatch(value) else None


def _float(fields: list[str], i: int) -> float | None:
    value = _field(fields, i)
    return float(value) if _NUMBER.fullmatch(value) else None


def _coordinate(fields: list[str], i: int, hemisphere: int, negative: str) -> float | None:
    """Degrees; a value that carries its own minus sign keeps it, else S / W makes it negative."""
    value = _float(fields, i)
    if value is None:
        return None
    if value > 0 and _field(fields, hemisphere).upper() == negative:
        value = -value
    return value


def _time(date: str, clock: str) -> float | None:
    """ddmmyy + hhmmss (UTC) -> epoch seconds, or None when not a real date."""
    if len(date) != 6 or len(clock) != 6 or not (date + clock).isdigit():
        return None
    try:
        when = datetime(
            2000 + int(date[4:6]), int(date[2:4]), int(date[0:2]),
            int(clock[0:2]), int(clock[2:4]), int(clock[4:6]), tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        return None
    return when.timestamp()


@dataclass(frozen=True, slots=True)
class _Fix:
    """What a UD / AL / WT frame says about where and how the watch is."""

    device_time: float | None
    valid: bool
    lat: float | None  # None when missing or out of range
    lon: float | None
    battery: int | None
    status: int | None
    detail: dict[str, Any]

    def coordinates(self, *, alarm: bool) -> tuple[float | None, float | None, str]:
        """(lat, lon, fix) following rule 7 of the module docstring."""
        if self.lat is None or self.lon is None or (self.lat == 0 and self.lon == 0):
            return None, None, "none"
        if self.valid:
            return self.lat, self.lon, "valid"
        if alarm:
            return None, None, "last_known"
        return self.lat, self.lon, "last_known"


def _read_fix(fields: list[str]) -> _Fix:
    lat = _coordinate(fields, _LAT, _LAT_HEMI, "S")
    lon = _coordinate(fields, _LON, _LON_HEMI, "W")
    if lat is not None and not -90 <= lat <= 90:
        lat = None
    if lon is not None and not -180 <= lon <= 180:
        lon = None
    battery = _int(fields, _BATTERY)
    if battery is not None and not 0 <= battery <= 100:
        battery = None
    status_text = _field(fields, _STATUS)
    status = int(status_text, 16) if _HEX_STATUS.fullmatch(status_text) else None
    detail: dict[str, Any] = {
        "speed_kmh": _float(fields, _SPEED),
        "course": _float(fields, _COURSE),
        "altitude_m": _float(fields, _ALTITUDE),
        "satellites": _int(fields, _SATELLITES),
        "gsm": _int(fields, _GSM),
        "steps": _int(fields, _STEPS),
        "tumbles": _int(fields, _TUMBLES),
        "status": status_text if status is not None else None,
        "cells": _int(fields, _CELLS),
    }
    if status is not None:
        detail["status_bits"] = [bit for bit in range(32) if status >> bit & 1]
        named = {_OTHER_STATUS_BITS[b] for b in detail["status_bits"] if b in _OTHER_STATUS_BITS}
        if named:
            detail["status_flags"] = sorted(named)
    return _Fix(
        device_time=_time(_field(fields, _DATE), _field(fields, _TIME)),
        valid=_field(fields, _VALIDITY).upper() == "A",
        lat=lat,
        lon=lon,
        battery=battery,
        status=status,
        detail={k: v for k, v in detail.items() if v is not None},
    )


# -- framing ------------------------------------------------------------------------------------------------


class _Framer:
    """Cuts the stream into ``[...]`` frames; see rule 2. Scans each byte once however the reads are cut."""

    def __init__(self, max_frame: int, counters: Counter[str]) -> None:
        self.buf = bytearray()
        self._max_frame = max_frame
        self._counters = counters
        self._scan_from = 1  # where the search for "]" resumes, for the frame at the head of the buffer

    def _drop(self, n: int) -> None:
        del self.buf[:n]
        self._scan_from = 1

    def next(self) -> bytes | FramingError | None:
        """The next frame, a FramingError for a truncated or oversized one, or None: need more data."""
        buf = self.buf
        start = buf.find(b"[")
        if start < 0:
            if buf:
                self._counters["garbage_bytes"] += len(buf)
                self._drop(len(buf))
            return None
        if start > 0:
            self._counters["garbage_bytes"] += start
            self._drop(start)
        end = buf.find(b"]", self._scan_from)
        if end < 0:
            if len(buf) > self._max_frame:
                self._counters["oversize"] += 1
                restart = buf.find(b"[", 1)
                self._drop(restart if restart > 0 else len(buf))
                return FramingError("frame longer than max_frame")
            self._scan_from = max(1, len(buf))
            return None
        restart = buf.rfind(b"[", 1, end)
        if restart > 0:
            self._counters["truncated"] += 1
            self._drop(restart)
            return FramingError("truncated frame")
        if end + 1 > self._max_frame:
            self._counters["oversize"] += 1
            self._drop(end + 1)
            return FramingError("frame longer than max_frame")
        frame = bytes(buf[: end + 1])
        self._drop(end + 1)
        return frame


# -- the codec ----------------------------------------------------------------------------------------------


class WatchCodec:
    """One watch connection: bytes in, :class:`Decoded` results out (see the module docstring)."""

    def __init__(self, *, max_frame: int = 64 * 1024) -> None:
        self.counters: Counter[str] = Counter()
        self._framer = _Framer(max_frame, self.counters)

    @property
    def buffered(self) -> int:
        """Bytes held back, waiting for the rest of a frame (never more than ``max_frame``)."""
        return len(self._framer.buf)

    def receive_data(self, data: bytes, now: float) -> list[Decoded]:
        """Feed bytes from the connection; return one result per complete frame, in order."""
        self._framer.buf += data
        results: list[Decoded] = []
        while (cut := self._framer.next()) is not None:
            if isinstance(cut, FramingError):
                results.append(self._refuse("framing"))
            else:
                results.append(self._decode_safely(cut, now))
        return results

    # -- one frame --------------------------------------------------------------------------------------

    def _refuse(self, reason: str) -> Decoded:
        self.counters[reason] += 1
        return Decoded(error=reason)

    def _decode_safely(self, frame: bytes, now: float) -> Decoded:
        self.counters["frames"] += 1
        try:
            parsed = parse_frame(frame)
        except ProtocolError:
            return self._refuse("header")
        if parsed.length != parsed.content_length:
            self.counters["length_mismatch"] += 1
        try:
            return self._decode(parsed, now)
        except Exception:  # a bug on our side, never the device's fault: no reply, the watch repeats
            log.exception("watch: internal error decoding %r", frame[:200])
            return self._refuse("internal")

    def _decode(self, frame: WatchFrame, now: float) -> Decoded:
        kind = frame.type.upper()
        if kind in _BINARY_TYPES:
            return self._binary(frame)
        # Wi-Fi names after the fields read here may be UTF-8 or GBK: never a reason to lose an alarm
        text = frame.body.decode("utf-8", "replace")
        fields = text.split(",") if text else []
        if kind == "LK":
            return self._link(frame, fields)
        if kind.startswith("AL"):
            return self._alarm(frame, fields, now)
        if kind.startswith("UD") or kind == "WT":
            return self._position(frame, fields, now)
        if kind in _HEALTH_TYPES:
            return self._health(frame, kind, fields)
        if kind in ("TKQ", "TKQ2"):
            return Decoded((self._event(frame, "info", {"fields": fields}),), frame.reply(frame.type))
        reply = REPLIES.get(kind)
        self.counters["info"] += 1
        event = self._event(frame, "info", {"fields": fields[:32]})
        return Decoded((event,), frame.reply(reply) if reply is not None else None)

    def _event(
        self,
        frame: WatchFrame,
        kind: EventKind,
        detail: dict[str, Any],
        *,
        code: str | None = None,
        **values: Any,
    ) -> DeviceEvent:
        return DeviceEvent(
            protocol=PROTOCOL,
            device_id=frame.device_id,
            kind=kind,
            code=code or f"WATCH:{frame.type}",
            detail=detail,
            **values,
        )

    # LK,0,10,100: steps, tumbles, battery %
    def _link(self, frame: WatchFrame, fields: list[str]) -> Decoded:
        battery = _int(fields, 2) if len(fields) >= 3 else None
        if battery is not None and not 0 <= battery <= 100:
            battery = None
        detail: dict[str, Any] = {"fields": fields[:8]}
        steps = _int(fields, 0) if len(fields) >= 3 else None
        if steps is not None:
            detail["steps"] = steps
        event = self._event(frame, "checkin", detail, battery=battery)
        return Decoded((event,), frame.reply(REPLIES["LK"]))

    def _position(self, frame: WatchFrame, fields: list[str], now: float) -> Decoded:
        fix = _read_fix(fields)
        lat, lon, how = fix.coordinates(alarm=False)
        detail = {**fix.detail, "fix": how}
        event = self._event(
            frame, "position", detail, lat=lat, lon=lon, battery=fix.battery,
            device_time=trusted_time(fix.device_time, now, self.counters),
        )  # fmt: skip
        return Decoded((event,))

    def _alarm(self, frame: WatchFrame, fields: list[str], now: float) -> Decoded:
        fix = _read_fix(fields)
        lat, lon, how = fix.coordinates(alarm=True)
        base: dict[str, Any] = {**fix.detail, "fix": how}
        if how == "last_known":
            base["last_known"] = [fix.lat, fix.lon]
        raised: dict[str, list[int]] = {}
        labels: dict[str, str] = {}
        for bit, meaning in codes.WATCH_STATUS_BITS.items():
            if fix.status is not None and fix.status >> bit & 1 and meaning.alarm_type is not None:
                raised.setdefault(meaning.alarm_type, []).append(bit)
                labels.setdefault(meaning.alarm_type, meaning.label)
        found = [
            (alarm_type, f"WATCH:{frame.type}:{alarm_type}", {**base, "bits": bits, "label": labels[alarm_type]})
            for alarm_type, bits in raised.items()
        ]
        if not found:
            self.counters["alarm_inferred_sos"] += 1
            label = "alarm frame without an alarm status bit"
            found = [("sos", f"WATCH:{frame.type}:none", {**base, "inferred": True, "label": label})]
        when = trusted_time(fix.device_time, now, self.counters)
        events = tuple(
            self._event(
                frame,
                "alarm",
                detail,
                code=code,
                alarm_type=alarm_type,
                lat=lat,
                lon=lon,
                battery=fix.battery,
                device_time=when,
            )
            for alarm_type, code, detail in found
        )
        return Decoded(events, frame.reply("AL"))

    # bphrt,120,79,73,,,,   BLOOD,109,68   oxygen,0,98   btemp2,1,35.29   TEMP,36.5   heart,71   PULSE,72
    def _health(self, frame: WatchFrame, kind: str, fields: list[str]) -> Decoded:
        readings: dict[str, float] = {}
        if kind in ("BPHRT", "BLOOD"):
            readings["systolic"] = _reading(fields, 0, 40, 300)
            readings["diastolic"] = _reading(fields, 1, 20, 200)
            if kind == "BPHRT":
                readings["heart_rate"] = _reading(fields, 2, 20, 300)
        elif kind == "OXYGEN":
            readings["spo2"] = _reading(fields, len(fields) - 1, 50, 100)
        elif kind == "BTEMP2":
            if (_int(fields, 0) or 0) > 0:
                readings["body_temp_c"] = _reading(fields, 1, 25, 45)
        elif kind == "TEMP":
            readings["body_temp_c"] = _reading(fields, 0, 25, 45)
        else:  # HEART, PULSE
            readings["heart_rate"] = _reading(fields, 0, 20, 300)
        readings = {k: (v if k == "body_temp_c" else int(v)) for k, v in readings.items() if not math.isnan(v)}
        if not readings:
            self.counters["health_without_reading"] += 1
            return Decoded((self._event(frame, "info", {"fields": fields[:8], "note": "no reading"}),))
        return Decoded((self._event(frame, "health", dict(readings)),))

    # JXTK,0,watch_7_20220526093954,1,6,<escaped AMR audio>
    def _binary(self, frame: WatchFrame) -> Decoded:
        head = frame.body.split(b",", 4) if frame.type.upper() == "JXTK" else []
        detail: dict[str, Any] = {}
        payload = frame.body
        if len(head) == 5 and all(part.isascii() for part in head[:4]):
            detail["name"] = head[1].decode("ascii")
            detail["part"] = head[2].decode("ascii")
            detail["parts"] = head[3].decode("ascii")
            payload = head[4]
        detail["payload_bytes"] = len(unescape(payload))
        reply = REPLIES.get(frame.type.upper())
        self.counters["info"] += 1
        return Decoded((self._event(frame, "info", detail),), frame.reply(reply) if reply is not None else None)


def _reading(fields: list[str], i: int, low: float, high: float) -> float:
    """A plausible reading, or NaN (a zero or out-of-range value means "not measured")."""
    value = _float(fields, i) if i >= 0 else None
    if value is None or not low <= value <= high:
        return math.nan
    return value


SPEC = ProtocolSpec(
    name="watch",
    option="watch",
    default_port=9101,
    summary="3G/4G GPS watches and pendants (the `[SG*id*len*...]` text protocol)",
    stream=keyless(WatchCodec),  # watches carry no keys: they are known by their id alone
    codes=(
        CodeTable(
            "3G/4G watch status bits (AL / AL_LTE)", "bit", {str(k): v for k, v in codes.WATCH_STATUS_BITS.items()}
        ),
    ),
)
