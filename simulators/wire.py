"""The device side of the three protocols, sans-I/O: what a pendant or watch sends and which reply ACKs it.

What it owns
    One *dialect* per protocol (:class:`Dc09Dialect`, :class:`WatchDialect`, :class:`Gt06Dialect`): it
    builds the frames of one device (check-in, alarm, restore, login) as :class:`Message` values, and one
    :class:`ReplyFramer` per protocol cuts the receiver's replies out of a byte stream. Frames are built
    with the gateway's own encoders (``gateway.dc09.build_message``, ``gateway.gt06.encode_packet``) so
    a simulated device speaks exactly what the receiver checks; nothing here reads a socket or a clock.

Rules
    1. A message is built once and *repeated as it is*: the same DC-09 sequence number and content (only the
       timestamp is renewed, as transmitters restamp their repeats), the same GT06 serial, the same watch
       frame. :meth:`Message.frame` takes the attempt's wall time for that reason.
    2. A reply acknowledges a message only when it says so for *that* message: DC-09 ``ACK`` / ``*ACK``
       echoing the account and sequence number, GT06 the protocol number and serial, the watch the frame
       type (its protocol has no message id: see :class:`WatchDialect`).
    3. What a device can say depends on its protocol (:data:`CAPABILITIES`): a DC-09 dialler has no fall
       code and reports a fall detector as a medical alarm (Contact ID 100); watches and GT06 trackers have
       no medical code and report it as SOS. ``Message.alarm_type`` is the Anxin alarm type the server
       should record, so that the scorecard can find it in the journal.

Never
    Never import the server's core: the gateway's encoders are the protocol's device side, nothing more.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from gateway.dc09 import build_message
from gateway.gt06 import encode_packet

Protocol = str  # "sia-dc09" | "watch" | "gt06", the registry's names

#: scenario alarm kind -> the Anxin alarm type each protocol can report it as (rule 3)
CAPABILITIES: Final[dict[Protocol, dict[str, str]]] = {
    "sia-dc09": {"sos": "sos", "fall": "medical", "medical": "medical", "low_battery": "low_battery",
                 "mains_loss": "mains_loss"},
    "watch": {"sos": "sos", "fall": "fall", "medical": "sos", "low_battery": "low_battery",
              "mains_loss": "mains_loss"},
    "gt06": {"sos": "sos", "fall": "fall", "medical": "sos", "low_battery": "low_battery",
             "mains_loss": "mains_loss"},
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Message:
    """One thing a device sends and waits to have acknowledged (rule 1 and 2)."""

    label: str  # "checkin", "login", "alarm", "restore"
    key: str  # what identifies it on the wire: "seq 0042", "serial 17", "AL"
    frame: Callable[[float], bytes] = field(repr=False)  # the frame for an attempt at this wall time
    acks: Callable[[bytes], bool] = field(repr=False)
    alarm_type: str | None = None  # what the server should record (alarms and restores)


# -- reply framing ----------------------------------------------------------------------------------------


class ReplyFramer:
    """Cuts replies out of the receiver's byte stream: ``feed`` returns the complete ones, keeps the rest."""

    def __init__(self, start: bytes, end: bytes) -> None:
        self._start, self._end = start, end
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        replies: list[bytes] = []
        while True:
            begin = self._buf.find(self._start)
            if begin < 0:
                self._buf.clear()
                return replies
            stop = self._buf.find(self._end, begin + len(self._start))
            if stop < 0:
                del self._buf[:begin]
                return replies
            replies.append(bytes(self._buf[begin : stop + len(self._end)]))
            del self._buf[: stop + len(self._end)]


class Gt06ReplyFramer(ReplyFramer):
    """GT06 replies are ``78 78 LEN ... 0D 0A`` (or ``79 79`` with a two-byte LEN): cut by LEN."""

    def __init__(self) -> None:
        super().__init__(b"", b"")

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        replies: list[bytes] = []
        while len(buf) >= 5:
            if buf[:2] == b"\x78\x78":
                total = 2 + 1 + buf[2] + 2
            elif buf[:2] == b"\x79\x79":
                total = 2 + 2 + int.from_bytes(buf[2:4], "big") + 2
            else:
                del buf[:1]
                continue
            if len(buf) < total:
                break
            replies.append(bytes(buf[:total]))
            del buf[:total]
        return replies


def framer_for(protocol: Protocol) -> ReplyFramer:
    if protocol == "sia-dc09":
        return ReplyFramer(b"\n", b"\r")
    if protocol == "watch":
        return ReplyFramer(b"[", b"]")
    return Gt06ReplyFramer()


# -- SIA DC-09 --------------------------------------------------------------------------------------------

#: kind -> (Contact ID "QEEE GG ZZZ", SIA DC-03 data); Q=1 new event, Q=3 restore
_DC09_CODES: Final[dict[str, tuple[str, str]]] = {
    "sos": ("1101 01 001", "NQA001"),
    "medical": ("1100 01 002", "NMA002"),
    "low_battery": ("1302 01 000", "NYT000"),
    "mains_loss": ("1301 01 000", "NAT000"),
    "restore:mains_loss": ("3301 01 000", "NAR000"),
}
# <LF>8C1A0025"ACK"0042L0#1234[]_14:25:17,06-22-2015<CR>   or   <LF>...."*ACK"0042L0#1234[<hex><CR>
_DC09_REPLY: Final = re.compile(
    rb"""
    \n[0-9A-Fa-f]{8}               # <LF> CRC LEN
    "(?P<token>\*?[A-Z]+)"          # "ACK" or "*ACK" (also "NAK", "DUH": not acknowledgements)
    (?P<seq>[0-9]{4})               # 0042        the sequence number echoed
    (?:R[0-9A-Fa-f]+)?              # R...        receiver, when the message had one
    (?:L[0-9A-Fa-f]+)?              # L0          account prefix
    \#(?P<acct>[0-9A-Za-z]+)        # #1234       the account echoed
    \[                              # [           data (empty, or encrypted)
    """,
    re.VERBOSE,
)


@dataclass(slots=True)
class Dc09Dialect:
    """A DC-09 transmitter: Contact ID (``ADM-CID``) or SIA DC-03 (``SIA-DCS``), plain or AES-encrypted."""

    account: str
    key: bytes | None = None
    sia: bool = False  # SIA-DCS data instead of Contact ID
    protocol: Protocol = "sia-dc09"
    _seq: int = 0

    def _next_seq(self) -> int:
        self._seq = self._seq % 9999 + 1  # 0001..9999, then round again
        return self._seq

    def _message(self, label: str, token: str, data: str, alarm_type: str | None) -> Message:
        seq, account, key = self._next_seq(), self.account, self.key

        def frame(now: float) -> bytes:
            return build_message(token, seq, account, data, key=key, timestamp=now)

        def acks(reply: bytes) -> bool:
            match = _DC09_REPLY.match(reply)
            return (
                match is not None
                and match["token"] in (b"ACK", b"*ACK")
                and int(match["seq"]) == seq
                and match["acct"].decode("ascii") == account
            )

        return Message(label, f"seq {seq:04d}", frame, acks, alarm_type)

    def checkin(self, battery: int) -> Message:
        return self._message("checkin", "NULL", "", None)  # a link test; DC-09 carries no battery level

    def alarm(self, kind: str, *, battery: int = 80, now: float | None = None) -> Message:
        alarm_type = CAPABILITIES[self.protocol][kind]
        contact_id, sia = _DC09_CODES[alarm_type]
        token, data = ("SIA-DCS", sia) if self.sia else ("ADM-CID", contact_id)
        return self._message("alarm", token, data, alarm_type)

    def restore(self, alarm_type: str) -> Message | None:
        codes = _DC09_CODES.get(f"restore:{alarm_type}")
        if codes is None:
            return None
        token, data = ("SIA-DCS", codes[1]) if self.sia else ("ADM-CID", codes[0])
        return self._message("restore", token, data, alarm_type)

    def login(self) -> Message | None:
        return None


# -- the 3G/4G watch ----------------------------------------------------------------------------------------

#: kind -> status bit of the AL frame (gateway.codes.WATCH_STATUS_BITS)
_WATCH_BITS: Final[dict[str, int]] = {"sos": 16, "fall": 21, "low_battery": 0, "mains_loss": 14}


def _watch_time(now: float) -> tuple[str, str]:
    t = time.gmtime(now)
    return time.strftime("%d%m%y", t), time.strftime("%H%M%S", t)


@dataclass(slots=True)
class WatchDialect:
    """A GPS watch: ``LK`` link frames carry the battery; ``AL`` frames carry the alarm bits and the fix.

    The protocol has no message id: an ``AL`` reply acknowledges the alarm frame in flight. The device
    keeps one frame in flight per connection, and reconnects before a repeat, so a late reply cannot be
    taken for the next frame's.
    """

    device_id: str
    home: tuple[float, float]
    manufacturer: str = "3G"
    protocol: Protocol = "watch"
    steps: int = 0

    def _frame(self, content: str) -> bytes:
        return f"[{self.manufacturer}*{self.device_id}*{len(content):04X}*{content}]".encode("ascii")

    def _message(self, label: str, content: str, reply: str, alarm_type: str | None) -> Message:
        frame = self._frame(content)
        expected = self._frame(reply)
        return Message(label, reply, lambda now: frame, lambda answer: answer == expected, alarm_type)

    def checkin(self, battery: int) -> Message:
        self.steps += 37
        return self._message("checkin", f"LK,{self.steps},0,{battery}", "LK", None)

    def alarm(self, kind: str, *, battery: int = 80, now: float | None = None) -> Message:
        alarm_type = CAPABILITIES[self.protocol][kind]
        date, clock = _watch_time(time.time() if now is None else now)
        lat, lon = self.home
        status = 1 << _WATCH_BITS[alarm_type]
        fields = (
            f"AL,{date},{clock},A,{lat:.6f},N,{lon:.6f},E,0.00,0.0,12.0,9,80,{battery},{self.steps},0,"
            f"{status:08X},1,0,460,0,9360,4082,131"
        )
        return self._message("alarm", fields, "AL", alarm_type)

    def restore(self, alarm_type: str) -> Message | None:
        return None  # watches report the condition, never its end

    def login(self) -> Message | None:
        return None


# -- GT06 -------------------------------------------------------------------------------------------------

#: kind -> GT06 alarm byte of a status packet (gateway.codes.GT06_ALARMS)
_GT06_ALARMS: Final[dict[str, int]] = {"sos": 0x01, "fall": 0x23, "low_battery": 0x19, "mains_loss": 0x02}
_GT06_LOGIN, _GT06_HEARTBEAT, _GT06_STATUS = 0x01, 0x13, 0x16


def _gt06_level(battery: int) -> int:
    """Battery percentage as the GT06 voltage level 0..6."""
    return max(0, min(6, round(battery * 6 / 100)))


@dataclass(slots=True)
class Gt06Dialect:
    """A GT06 tracker or watch: login with the IMEI, heartbeats, status packets (0x16) for alarms."""

    imei: str
    home: tuple[float, float]
    protocol: Protocol = "gt06"
    _serial: int = 0

    def _message(self, label: str, proto: int, info: bytes, alarm_type: str | None) -> Message:
        self._serial = self._serial % 0xFFFF + 1
        serial = self._serial
        packet = encode_packet(proto, info, serial)

        def acks(reply: bytes) -> bool:
            return len(reply) >= 10 and reply[:2] == b"\x78\x78" and reply[3] == proto and reply[4:6] == packet[-6:-4]

        return Message(label, f"serial {serial}", lambda now: packet, acks, alarm_type)

    def login(self) -> Message | None:
        bcd = bytes.fromhex("0" + self.imei)
        return self._message("login", _GT06_LOGIN, bcd + b"\x10\x0b\x32\x01", None)

    def checkin(self, battery: int) -> Message:
        # terminal info (GPS tracking on), voltage level, GSM signal, alarm byte (none), language (English)
        info = bytes([0x40, _gt06_level(battery), 0x04, 0x00, 0x02])
        return self._message("checkin", _GT06_HEARTBEAT, info, None)

    def alarm(self, kind: str, *, battery: int = 80, now: float | None = None) -> Message:
        alarm_type = CAPABILITIES[self.protocol][kind]
        t = time.gmtime(time.time() if now is None else now)
        when = bytes([t.tm_year - 2000, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec])
        lat, lon = self.home
        gps = bytes([0xC9]) + round(abs(lat) * 1_800_000).to_bytes(4, "big")
        gps += round(abs(lon) * 1_800_000).to_bytes(4, "big") + b"\x00"
        gps += (0x1000 | (0x0400 if lat >= 0 else 0) | (0x0800 if lon < 0 else 0)).to_bytes(2, "big")
        lbs = bytes([0x09]) + (460).to_bytes(2, "big") + b"\x00" + (0x287D).to_bytes(2, "big") + b"\x00\x1f\x71"
        status = bytes([0x40, _gt06_level(battery), 0x04, _GT06_ALARMS[alarm_type], 0x02])
        return self._message("alarm", _GT06_STATUS, when + gps + lbs + status, alarm_type)

    def restore(self, alarm_type: str) -> Message | None:
        return None


Dialect = Dc09Dialect | WatchDialect | Gt06Dialect
