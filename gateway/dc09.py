"""SIA DC-09 receiver codec (ANSI/SIA DC-09-2013): alarm transmitters reporting over TCP or UDP.

Theory of operation
-------------------
What it owns
    :class:`Dc09Codec` turns the bytes a transmitter sends into :class:`gateway.events.Decoded` results: the
    normalised events of each frame and the reply frame owed for it (``ACK``, ``*ACK``, ``NAK``, ``DUH``, or
    nothing). It also owns the device side of the wire format (:func:`build_message`, :func:`encode_frame`)
    so that tests and simulators build frames with the same rules the receiver checks.

A frame on the wire (``<LF>`` and ``<CR>`` are the bytes 0x0A and 0x0D)::

    <LF>9B6D0059"SIA-DCS"0000RC0FFDL1234#080027E62A64[#080027E62A64|NHB0003][E115000]_14:25:17,06-22-2015<CR>
        |   |   |        |   |     |    |            |                      |        |
        |   |   |        |   |     |    |            |                      |        timestamp, UTC (optional
        |   |   |        |   |     |    |            |                      |        when plain, required when
        |   |   |        |   |     |    |            |                      |        encrypted)
        |   |   |        |   |     |    |            |                      extended data: [X..] longitude,
        |   |   |        |   |     |    |            |                      [Y..] latitude, others kept
        |   |   |        |   |     |    |            data: "#acct|QEEE GG ZZZ" (ADM-CID), "#acct|N..." (SIA-DCS)
        |   |   |        |   |     |    account
        |   |   |        |   |     account prefix (L)
        |   |   |        |   receiver number (R, optional)
        |   |   |        sequence number 0000-9999, echoed in the reply
        |   |   ID token; "*SIA-DCS" means everything after "[" is AES-CBC ciphertext in hex
        |   LEN: length of the body (from the first quote to CR, exclusive), 4 hex digits
        CRC-16/ARC of the body, 4 hex digits (both accepted in lower case)

An encrypted message (``*SIA-DCS``, ``*ADM-CID``, ``*NULL``) carries, after ``[``, the hex of
AES-CBC(key, IV = 16 zero bytes) over ``<pad>|<data>]<extended>_<timestamp>``: the pad is random bytes
without ``|``, ``[`` or ``]`` that make the plaintext a multiple of 16 bytes. Keys are 128, 192 or 256 bits,
looked up per account through the ``keys`` callable.

Rules
    1. Sans-I/O: no socket, no clock (``now`` is an argument), no storage. The transport feeds bytes, stores
       the events, and sends ``Decoded.reply`` only after the events are durable.
    2. Framing is "need more data" aware: bytes before an ``<LF>`` are garbage and dropped; a new ``<LF>``
       before the ``<CR>`` restarts the frame; a frame may be at most ``max_frame`` bytes, ``<LF>`` and
       ``<CR>`` included; past that the codec reports one ``framing`` error (no reply) and hunts for the
       next ``<LF>``. The result is the same however the stream is cut into reads.
    3. Nothing the device sends raises out of :meth:`Dc09Codec.receive_data` or :meth:`Dc09Codec.datagram`:
       every refusal is a ``Decoded`` with ``error`` set to a reason in :data:`REASONS`, counted in
       ``counters``, with the reply :data:`REPLY_POLICY` prescribes.
    4. The reply policy follows the standard. A frame that was not correctly received (no frame, bad CRC,
       bad length) gets no reply: the transmitter repeats it. A correctly received message that cannot be
       processed (unknown token, no key or a key that does not open it, data that does not parse, a plain
       message for an account that has a key) gets ``DUH``, never encrypted. A message whose timestamp is
       outside the window, cannot be read, or is missing from an encrypted message gets ``NAK``
       (``"NAK"0000R0L0A0[]_<receiver time>``, never encrypted, no events) so that the transmitter can set
       its clock and resend. Receiver replies (``ACK``, ``NAK``, ``DUH``, ``RSP``) arriving here are not
       device messages: they are ignored without a reply, since answering them could start an endless
       exchange between two receivers.
    5. Every accepted message is acknowledged with an ``ACK`` echoing sequence, receiver, prefix and account
       and carrying the receiver's time; the ACK to an encrypted message is ``*ACK`` encrypted with the same
       key, padded and timestamped like the messages.
    6. Each event carries a ``dedup`` key from the account, the sequence number and the content without the
       random padding and without the timestamp (a transmitter restamps its repeats), so that the core
       recognises a repeated message and acknowledges it again without recording it twice.
    7. Encryption policy: an account with a key speaks encrypted messages only. A plain message (alarm,
       restore or ``NULL`` poll) for an account whose key the ``keys`` lookup finds is a downgrade (plain
       frames carry no proof of origin and, needing no timestamp, replay forever): it gets ``DUH`` (reason
       ``plain_keyed``, never an ACK) and yields one tamper event for that account (kind "alarm", alarm type
       ``watch_removed``, the technical "tampering" condition; code ``DC09:PLAIN``, detail "plain frame for
       an encrypted account" and the token). The tamper event's ``dedup`` key is the account and the
       ``now`` bucket of :data:`PLAIN_KEYED_BUCKET_S` seconds, so a flood of plain frames is recorded at
       most about once per bucket and is one open technical condition in the core, never one incident per
       frame. With ``plain_keyed="accept-sos"`` (setting ``dc09_plain_keyed``) a plain message carrying an
       urgent alarm (:data:`dispatch.triage.URGENT_TYPES`: SOS/panic, fall, medical, fire) is ACKed (plain
       ``ACK``) and its urgent alarms are recorded together with the tamper event; its other readings are
       dropped, and plain restores, polls and everything else stay refused as above. The timestamp rules
       of rule 4 apply to an accepted plain alarm like to any message.

What it must never do: trust a field before the CRC and length have been checked, reply to a frame that was
not correctly received, or let a device's garbage raise. An exception that is not a protocol error is a bug
on our side: it is logged and turned into the ``internal`` reason, without a reply, so the transmitter
repeats the message.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast, get_args

import fastcrc
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from dispatch.triage import URGENT_TYPES
from gateway import codes
from gateway.errors import (
    ChecksumError,
    DecryptError,
    FramingError,
    LengthError,
    ProtocolError,
    UnsupportedMessage,
    UsageError,
)
from gateway.events import Decoded, DeviceEvent, EventKind
from gateway.registry import (
    DEFAULT_POLICY,
    CodeTable,
    DevicePolicy,
    KeyLookup,
    KnownLookup,
    PlainKeyed,
    ProtocolSpec,
)

__all__ = [
    "MESSAGE_TOKENS",
    "PLAIN_KEYED_BUCKET_S",
    "PROTOCOL",
    "REASONS",
    "REPLY_POLICY",
    "Dc09Codec",
    "build_message",
    "crc16_arc",
    "decrypt_content",
    "encode_frame",
    "encrypt_content",
    "format_time",
]

log = logging.getLogger(__name__)

PROTOCOL: Final = "sia-dc09"

#: ID tokens of device messages; a leading "*" marks the encrypted form.
MESSAGE_TOKENS: Final = frozenset({"SIA-DCS", "ADM-CID", "NULL"})
#: ID tokens of receiver replies: not device messages, ignored when they arrive here.
REPLY_TOKENS: Final = frozenset({"ACK", "NAK", "DUH", "RSP"})

Reply = Literal["none", "duh", "nak", "ignore"]

#: What each refusal answers. "none": no reply, the transmitter repeats the frame; "duh": DUH echoing the
#: header; "nak": NAK with the receiver's time; "ignore": no reply, the frame was a receiver reply.
REPLY_POLICY: Final[dict[str, Reply]] = {
    "framing": "none",  # no <LF>..<CR> frame, or one longer than max_frame
    "crc": "none",  # CRC mismatch: not correctly received
    "length": "none",  # LEN mismatch: not correctly received
    "format": "duh",  # CRC fine, but the header or the data does not parse
    "unsupported": "duh",  # an ID token this receiver does not know
    "decrypt": "duh",  # encrypted, and no key for the account or the key does not open it
    "timestamp": "nak",  # outside the window, unreadable, or missing from an encrypted message
    "plain_keyed": "duh",  # a plain message for an account that has a key (rule 7): with a tamper event
    "reply": "ignore",  # ACK / NAK / DUH / RSP sent to a receiver
    "internal": "none",  # a bug on our side: logged; the transmitter repeats the message
}
#: Every value ``Decoded.error`` can take.
REASONS: Final = frozenset(REPLY_POLICY)

_REASON_OF: Final[dict[type[ProtocolError], str]] = {
    FramingError: "framing",
    ChecksumError: "crc",
    LengthError: "length",
    ProtocolError: "format",
    UnsupportedMessage: "unsupported",
    DecryptError: "decrypt",
}

#: the tamper events of one account's plain frames share one dedup key per this many seconds (rule 7); the
#: core records a repeated key once within its dedup window (dispatch.devices.DEDUP_WINDOW_S, 600 s)
PLAIN_KEYED_BUCKET_S: Final = 600
PLAIN_KEYED_CODE: Final = "DC09:PLAIN"
PLAIN_KEYED_LABEL: Final = "plain frame for an encrypted account"

_ZERO_IV: Final = bytes(16)
_KEY_SIZES: Final = (16, 24, 32)
_TIME_FORMAT: Final = "%H:%M:%S,%m-%d-%Y"
_EVENT_KINDS: Final = frozenset(get_args(EventKind))
_NAK_ACCOUNT: Final = "0000R0L0A0"  # the NAK's fixed header fields; also a DUH's when the header is unreadable
_last_time: tuple[int, str] = (-1, "")  # format_time's last second and its text
#: Pad characters for the replies we encrypt: printable ASCII without "|", "[" and "]".
_PAD_ALPHABET: Final = bytes(c for c in range(0x21, 0x7F) if c not in b"|[]")

# -- regular expressions, one field per line, next to a sample ------------------------------------------------

# <LF>9B6D0059"SIA-DCS"0000RC0FFDL1234#080027E62A64[#080027E62A64|NHB0003][E115000]_14:25:17,06-22-2015<CR>
_FRAME: Final = re.compile(
    rb"""
    \n                              # <LF>           start of the frame
    (?P<crc>[0-9A-Fa-f]{4})         # 9B6D           CRC-16/ARC of the body
    (?P<length>[0-9A-Fa-f]{4})      # 0059           length of the body ("0LLL")
    (?P<body>"[^\n\r]*)             # "SIA-DCS"...   the body: from the first quote up to CR
    \r                              # <CR>           end of the frame
    """,
    re.VERBOSE,
)

# "SIA-DCS"0000RC0FFDL1234#080027E62A64[#080027E62A64|NHB0003][E115000]_14:25:17,06-22-2015
_TOKEN: Final = re.compile(
    r"""
    "                               # "
    (?P<star>\*?)                   #               "*" when the content is encrypted
    (?P<name>[^"]*)                 # SIA-DCS       ID token
    "                               # "
    """,
    re.VERBOSE,
)
_HEADER: Final = re.compile(
    r"""
    "(?P<token>[^"]*)"                      # "SIA-DCS"        ID token (with its "*" when encrypted)
    (?P<sequence>[0-9]{4})                  # 0000             sequence number
    (?:R(?P<receiver>[0-9A-Fa-f]{1,6}))?    # RC0FFD           receiver number, optional
    (?:L(?P<prefix>[0-9A-Fa-f]{1,6}))?      # L1234            account prefix (the standard requires it)
    \#(?P<account>[0-9A-Za-z]{3,16})        # #080027E62A64    account
    \[                                      # [                start of the data: encrypted from here on
    (?P<rest>.*)                            # #0800...|NHB0003][E115000]_14:25:17,06-22-2015
    """,
    re.VERBOSE | re.ASCII | re.DOTALL,
)

# #080027E62A64|NHB0003][E115000]_14:25:17,06-22-2015   (plain, or decrypted after "<pad>|")
_CONTENT: Final = re.compile(
    r"""
    (?P<data>[^\[\]]*)                      # #080027E62A64|NHB0003   message data (empty for NULL)
    \]                                      # ]                       end of the data
    (?P<extended>(?:\[[^\[\]]*\])*)         # [E115000]               extended data blocks
    (?:_(?P<timestamp>                      # _                       timestamp, UTC
        [0-9]{2}:[0-9]{2}:[0-9]{2}          #  14:25:17               HH:MM:SS
        ,[0-9]{2}-[0-9]{2}-[0-9]{4}         #  ,06-22-2015            ,MM-DD-YYYY
    ))?
    """,
    re.VERBOSE | re.ASCII,
)
_EXTENDED_BLOCK: Final = re.compile(r"\[([^\[\]]*)\]")  # [X117.700000] -> X117.700000

# #1234|1101 01 015   (Contact ID)
_CONTACT_ID: Final = re.compile(
    r"""
    (?:\#(?P<account>[0-9A-Za-z]{3,16}))?   # #1234   account, optional
    \|?                                     # |
    (?P<qualifier>[136])                    # 1       1 new event, 3 restore, 6 previously reported
    (?P<event>[0-9]{3})                     # 101     event code
    \x20?(?P<partition>[0-9]{2})            #  01     partition (group)
    \x20?(?P<zone>[0-9]{3})                 #  015    zone or user number
    """,
    re.VERBOSE | re.ASCII,
)

# #1234|Nri1/MA01   or   |NHB0003   (SIA DC-03 data, then an optional |A text segment)
_SIA_ACCOUNT: Final = re.compile(
    r"""
    (?:\#(?P<account>[0-9A-Za-z]{3,16}))?   # #1234   account, optional
    \|                                      # |       start of the event data
    """,
    re.VERBOSE | re.ASCII,
)
_SIA_BLOCK: Final = re.compile(
    r"""
    (?P<modifiers>(?:[a-z]{2}[0-9:]*)*)     # ri1     area (ri), user (id), time (ti)...: apply onwards
    (?P<code>[A-Z]{2})?                     # MA      event code
    (?P<address>[0-9]*)                     # 01      zone, user or area number
    (?:\^(?P<name>[^^]*)\^)?                # ^Hall^  optional name of that zone
    """,
    re.VERBOSE | re.ASCII,
)
_SIA_MODIFIER: Final = re.compile(r"([a-z]{2})([0-9:]*)", re.ASCII)  # ri1 -> ("ri", "1")

# E117.700000 / 117.700000E / -33.9 (longitude after X, latitude after Y; decimal degrees)
_COORDINATE: Final = re.compile(
    r"""
    (?P<before>[NSEW])?                     # E        hemisphere in front, optional
    (?P<value>[+-]?[0-9]{1,3}(?:\.[0-9]{1,12})?)  # 117.7000  decimal degrees
    (?P<after>[NSEW])?                      # or behind
    """,
    re.VERBOSE | re.ASCII,
)
_HEX: Final = re.compile(r"(?:[0-9A-Fa-f]{2})*", re.ASCII)
_PRINTABLE: Final = re.compile(r"[\x20-\x7e\xa0-\xff]*")
_DELIMITER: Final = re.compile(rb"[\n\r]")


# -- pure functions -----------------------------------------------------------------------------------------


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC (polynomial 0x8005 reflected as 0xA001, initial value 0), as DC-09 uses it (fastcrc, in Rust: a
    frame checked and its ACK built cost 0.3 µs instead of 32 in Python)."""
    return int(fastcrc.crc16.arc(data))


def encode_frame(body: str) -> bytes:
    """``<LF>`` CRC LEN body ``<CR>`` for a body that starts with the ID token's quote."""
    if not body.startswith('"'):
        raise UsageError("a DC-09 body starts with the quoted ID token")
    try:
        raw = body.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise UsageError("a DC-09 body is single-byte text") from exc
    if b"\n" in raw or b"\r" in raw or len(raw) > 0xFFFF:
        raise UsageError("a DC-09 body has no LF or CR and is at most 0xFFFF bytes")
    return _frame(raw)


def _frame(raw: bytes) -> bytes:
    """The frame of a body known to be valid (our replies, built from fields the header regex checked)."""
    return b"\n%04X%04X%s\r" % (crc16_arc(raw), len(raw), raw)


def encrypt_content(key: bytes, plaintext: bytes) -> str:
    """AES-CBC with a zero IV, as upper-case hex; ``plaintext`` is already padded to 16 bytes."""
    if len(key) not in _KEY_SIZES:
        raise UsageError("AES keys are 16, 24 or 32 bytes")
    if not plaintext or len(plaintext) % 16:
        raise UsageError("DC-09 pads the plaintext to a multiple of 16 bytes")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(_ZERO_IV)).encryptor()
    return (encryptor.update(plaintext) + encryptor.finalize()).hex().upper()


def decrypt_content(key: bytes, hex_text: str) -> bytes:
    """The plaintext behind the hex after ``[``; :class:`DecryptError` when it cannot be decrypted."""
    if len(key) not in _KEY_SIZES:
        raise DecryptError(f"a {len(key)}-byte key is not an AES key")
    if not hex_text or len(hex_text) % 32 or not _HEX.fullmatch(hex_text):
        raise DecryptError("the encrypted content is not whole AES blocks in hex")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(_ZERO_IV)).decryptor()
    return decryptor.update(bytes.fromhex(hex_text)) + decryptor.finalize()


def format_time(when: float) -> str:
    """``HH:MM:SS,MM-DD-YYYY`` in UTC, the DC-09 timestamp without its ``_``; the last second's text is kept,
    since every ACK of that second carries it."""
    global _last_time
    second, last = math.floor(when), _last_time  # read once: another thread's codec may replace it meanwhile
    if last[0] == second:
        return last[1]
    text = time.strftime(_TIME_FORMAT, time.gmtime(second))
    _last_time = (second, text)
    return text


def _parse_time(text: str) -> float | None:
    try:
        return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _pad(content: str, random_bytes: Callable[[int], bytes]) -> bytes:
    """``<pad>|content``, padded to a multiple of 16 bytes with 1 to 16 pad characters."""
    tail = b"|" + content.encode("latin-1")
    count = 16 - len(tail) % 16
    noise = random_bytes(count)
    if len(noise) != count:
        raise UsageError(f"random_bytes({count}) returned {len(noise)} bytes")
    return bytes(_PAD_ALPHABET[b % len(_PAD_ALPHABET)] for b in noise) + tail


def build_message(
    token: str,
    sequence: int,
    account: str,
    data: str = "",
    *,
    receiver: str | None = None,
    prefix: str | None = "0",
    key: bytes | None = None,
    timestamp: float | None = None,
    position: tuple[float, float] | None = None,
    extended: Sequence[str] = (),
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """A transmitter's frame: the device side of the codec, for tests and simulators.

    ``token`` is "ADM-CID", "SIA-DCS" or "NULL"; ``data`` is sent as ``#account|data``: Contact ID
    ``"QEEE GG ZZZ"`` (e.g. ``"1101 01 015"``), SIA DC-03 events (e.g. ``"Nri1/MA01"``); NULL has none.
    ``position`` is (latitude, longitude), sent as ``[X<lon>][Y<lat>]`` before the other ``extended`` blocks.
    With a ``key`` the message is encrypted (``"*ADM-CID"``), which requires a ``timestamp`` (UTC seconds).
    """
    if token not in MESSAGE_TOKENS:
        raise UsageError(f"unknown DC-09 message token {token!r}")
    if not 0 <= sequence <= 9999:
        raise UsageError("the sequence number is 0..9999")
    if not re.fullmatch(r"[0-9A-Za-z]{3,16}", account, re.ASCII):
        raise UsageError("an account is 3 to 16 letters or digits")
    if token == "NULL" and data:
        raise UsageError("a NULL message has no data")
    if key is not None and timestamp is None:
        raise UsageError("an encrypted message needs a timestamp")
    content = "]" if token == "NULL" else f"#{account}|{data}]"
    blocks = list(extended)
    if position is not None:
        blocks[:0] = [f"X{position[1]:.6f}", f"Y{position[0]:.6f}"]
    content += "".join(f"[{block}]" for block in blocks)
    if timestamp is not None:
        content += "_" + format_time(timestamp)
    header = f'"{"*" if key else ""}{token}"{sequence:04d}'
    header += (f"R{receiver}" if receiver is not None else "") + (f"L{prefix}" if prefix is not None else "")
    header += f"#{account}["
    if key is None:
        return encode_frame(header + content)
    return encode_frame(header + encrypt_content(key, _pad(content, random_bytes)))


# -- the codec ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Header:
    token: str  # without the "*"
    encrypted: bool
    sequence: str
    receiver: str | None
    prefix: str | None
    account: str
    rest: str  # after "[": the content, or its ciphertext in hex

    def echo(self) -> str:
        """Sequence, receiver, prefix and account as the message gave them, for the reply."""
        receiver = f"R{self.receiver}" if self.receiver is not None else ""
        prefix = f"L{self.prefix}" if self.prefix is not None else ""
        return f"{self.sequence}{receiver}{prefix}#{self.account}"


@dataclass(frozen=True, slots=True)
class _Reading:
    """One event read from the data, before the fields common to the message are added."""

    kind: str
    alarm_type: str | None
    label: str
    code: str
    zone: str | None
    detail: dict[str, Any] = field(default_factory=dict)


class _Framer:
    """Cuts ``<LF>...<CR>`` frames out of a byte stream (rule 2 of the module docstring).

    ``feed`` returns complete frames as bytes and a :class:`FramingError` for each frame that outgrew
    ``max_frame``; a partial frame stays buffered. Equivalent to reading one byte at a time.
    """

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self.garbage = 0  # bytes dropped outside frames
        self._buf = bytearray()
        self._in_frame = False  # the buffer starts with the <LF> of a frame
        self._scanned = 0  # bytes of the buffer known to hold no <LF> or <CR> after the first

    @property
    def pending(self) -> bool:
        return self._in_frame

    def feed(self, data: bytes) -> list[bytes | FramingError]:
        buf = self._buf
        buf += data
        out: list[bytes | FramingError] = []
        while buf:
            if not self._in_frame:
                start = buf.find(b"\n")
                if start < 0:
                    self.garbage += len(buf)
                    buf.clear()
                    break
                self.garbage += start
                del buf[:start]
                self._in_frame, self._scanned = True, 1
            found = _DELIMITER.search(buf, self._scanned, min(len(buf), self.max_frame))
            if found is None:
                if len(buf) < self.max_frame:
                    self._scanned = len(buf)
                    break
                out.append(FramingError(f"no <CR> within {self.max_frame} bytes"))
                del buf[: self.max_frame]
                self._in_frame = False
                continue
            at = found.start()
            if buf[at] == 0x0A:  # a new <LF>: what came before it was a fragment
                self.garbage += at
                del buf[:at]
                self._scanned = 1
                continue
            out.append(bytes(buf[: at + 1]))
            del buf[: at + 1]
            self._in_frame = False
        return out


class Dc09Codec:
    """A DC-09 receiver for one TCP connection (``receive_data``) or for UDP datagrams (``datagram``).

    ``keys(account)`` gives the AES key (16, 24 or 32 bytes) of an account, or None. ``window`` is the
    accepted (earliest, latest) offset of a message's timestamp from ``now``, in seconds. ``random_bytes``
    feeds the padding of encrypted ACKs (tests pass a fixed one to get exact bytes). ``plain_keyed`` is the
    policy for plain messages of keyed accounts (rule 7). ``counters`` counts "ok", each refusal by its
    reason (:data:`REASONS`), "plain_keyed_accepted" (rule 7) and "garbage_bytes" dropped outside frames.
    """

    def __init__(
        self,
        keys: Callable[[str], bytes | None],
        *,
        max_frame: int = 2048,
        window: tuple[float, float] = (-40.0, 20.0),
        random_bytes: Callable[[int], bytes] = os.urandom,
        plain_keyed: PlainKeyed = "refuse",
    ) -> None:
        if max_frame < 32:
            raise UsageError("max_frame below 32 bytes cannot hold a DC-09 frame")
        if not window[0] <= 0.0 <= window[1]:
            raise UsageError("the timestamp window must contain 0")
        if plain_keyed not in ("refuse", "accept-sos"):
            raise UsageError(f"plain_keyed is 'refuse' or 'accept-sos', not {plain_keyed!r}")
        self.keys = keys
        self.plain_keyed = plain_keyed
        self.max_frame = max_frame
        self.window = window
        self.counters: Counter[str] = Counter()
        self._random_bytes = random_bytes
        self._framer = _Framer(max_frame)

    # -- entry points ---------------------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes of a frame begun and not yet ended, held back for its rest (never more than ``max_frame``)."""
        return len(self._framer._buf) if self._framer.pending else 0

    def receive_data(self, data: bytes, now: float) -> list[Decoded]:
        """Feed bytes read from a TCP connection; the outcome of every frame they complete, in order."""
        _check_call(data, now)
        results = [self._outcome(item, now) for item in self._framer.feed(bytes(data))]
        self.counters["garbage_bytes"] = self._framer.garbage
        return results

    def datagram(self, data: bytes, now: float) -> list[Decoded]:
        """Decode one UDP datagram: its frames, and a ``framing`` error if it holds none or ends in a fragment."""
        _check_call(data, now)
        framer = _Framer(self.max_frame)
        items = framer.feed(bytes(data))
        self.counters["garbage_bytes"] += framer.garbage
        results = [self._outcome(item, now) for item in items]
        if framer.pending or (data and not items):
            results.append(self._refuse(FramingError("a datagram without a complete frame"), None))
        return results

    # -- one frame ------------------------------------------------------------------------------------------

    def _outcome(self, item: bytes | FramingError, now: float) -> Decoded:
        if isinstance(item, FramingError):
            return self._refuse(item, None)
        header: _Header | None = None
        try:
            body = _check_frame(item)
            token = _TOKEN.match(body)
            if token is None:
                raise ProtocolError("no closing quote after the ID token")
            if token["name"] in REPLY_TOKENS:
                self.counters["reply"] += 1
                return Decoded(error="reply")
            header = _parse_header(body)
            if token["name"] not in MESSAGE_TOKENS:
                raise UnsupportedMessage(f"unknown ID token {token['name']!r}")
            if header is None:
                raise ProtocolError("the header does not parse")
            return self._message(header, now)
        except ProtocolError as exc:
            return self._refuse(exc, header)
        except Exception:  # a bug on our side, or a failing key lookup: never a dead connection
            log.exception("DC-09 frame %r could not be handled", item[:200])
            self.counters["internal"] += 1
            return Decoded(error="internal")

    def _message(self, header: _Header, now: float) -> Decoded:
        if not header.encrypted and self.keys(header.account) is not None:
            return self._plain_for_keyed(header, now)
        text, key = self._open(header)
        content = _CONTENT.fullmatch(text)
        if content is None:
            if header.encrypted:
                raise DecryptError("the decrypted content does not parse")
            raise ProtocolError("the content does not parse")
        stamp = content["timestamp"]
        device_time = _parse_time(stamp) if stamp is not None else None
        if not self._in_window(stamp, device_time, header.encrypted, now):
            return self._nak(now)
        events = _events(header, content["data"], content["extended"], text, device_time)
        self.counters["ok"] += 1
        return Decoded(events=events, reply=self._ack(header, key, now))

    def _in_window(self, stamp: str | None, device_time: float | None, encrypted: bool, now: float) -> bool:
        late, early = self.window
        return not (
            (stamp is not None and device_time is None)
            or (encrypted and stamp is None)
            or (device_time is not None and not late <= device_time - now <= early)
        )

    def _nak(self, now: float) -> Decoded:
        self.counters["timestamp"] += 1
        return Decoded(reply=encode_frame(f'"NAK"{_NAK_ACCOUNT}[]_{format_time(now)}'), error="timestamp")

    def _plain_for_keyed(self, header: _Header, now: float) -> Decoded:
        """A plain message for an account that has a key (rule 7): DUH and a tamper event, or an urgent alarm
        accepted with the tamper event under "accept-sos"."""
        tamper = _tamper_event(header, now)
        content = _CONTENT.fullmatch(header.rest) if self.plain_keyed == "accept-sos" else None
        if content is not None and header.token != "NULL":
            stamp = content["timestamp"]
            device_time = _parse_time(stamp) if stamp is not None else None
            if not self._in_window(stamp, device_time, False, now):
                return self._nak(now)
            try:
                events = _events(header, content["data"], content["extended"], header.rest, device_time)
            except ProtocolError:
                events = ()
            urgent = tuple(
                replace(e, detail={**e.detail, "authenticated": False})
                for e in events
                if e.kind == "alarm" and e.alarm_type in URGENT_TYPES
            )
            if urgent:
                self.counters["plain_keyed_accepted"] += 1
                return Decoded(events=(*urgent, tamper), reply=self._ack(header, None, now))
        self.counters["plain_keyed"] += 1
        return Decoded(events=(tamper,), reply=encode_frame(f'"DUH"{header.echo()}[]'), error="plain_keyed")

    def _open(self, header: _Header) -> tuple[str, bytes | None]:
        """The content after ``[`` (decrypted, without the padding) and the key that opened it."""
        if not header.encrypted:
            return header.rest, None
        key = self.keys(header.account)
        if key is None:
            raise DecryptError(f"no key for account {header.account}")
        _pad_bytes, bar, tail = decrypt_content(key, header.rest).partition(b"|")
        text = tail.decode("latin-1")
        if not bar or not _PRINTABLE.fullmatch(text):
            raise DecryptError("the key does not open the message")
        return text, key

    def _ack(self, header: _Header, key: bytes | None, now: float) -> bytes:
        stamp = f"_{format_time(now)}"
        if key is None:
            return _frame(f'"ACK"{header.echo()}[]{stamp}'.encode("latin-1"))
        sealed = encrypt_content(key, _pad(f"]{stamp}", self._random_bytes))
        return encode_frame(f'"*ACK"{header.echo()}[{sealed}')

    def _refuse(self, exc: ProtocolError, header: _Header | None) -> Decoded:
        reason = _REASON_OF[type(exc)]
        self.counters[reason] += 1
        reply = None
        if REPLY_POLICY[reason] == "duh":
            echo = header.echo() if header is not None else _NAK_ACCOUNT
            reply = encode_frame(f'"DUH"{echo}[]')
        return Decoded(reply=reply, error=reason)


# -- decoding helpers ---------------------------------------------------------------------------------------


def _check_call(data: bytes, now: float) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise UsageError("the codec is fed bytes")
    if not (isinstance(now, (int, float)) and math.isfinite(now) and 0 <= now < 253402300800):
        raise UsageError("now is a UTC timestamp in seconds")


def _check_frame(frame: bytes) -> str:
    """The body of a frame whose CRC and length are right."""
    match = _FRAME.fullmatch(frame)
    if match is None:
        raise FramingError('not <LF> CRC LEN "body <CR>')
    body = match["body"]
    if crc16_arc(body) != int(match["crc"], 16):
        raise ChecksumError(f"CRC {match['crc']!r} does not match the body")
    if len(body) != int(match["length"], 16):
        raise LengthError(f"LEN {match['length']!r} but the body has {len(body)} bytes")
    return body.decode("latin-1")


def _parse_header(body: str) -> _Header | None:
    match = _HEADER.fullmatch(body)
    if match is None:
        return None
    token = match["token"]
    return _Header(
        token=token.removeprefix("*"),
        encrypted=token.startswith("*"),
        sequence=match["sequence"],
        receiver=match["receiver"],
        prefix=match["prefix"],
        account=match["account"],
        rest=match["rest"],
    )


def _events(
    header: _Header, data: str, extended_raw: str, content: str, device_time: float | None
) -> tuple[DeviceEvent, ...]:
    if header.token == "ADM-CID":
        readings = [_contact_id_reading(data, header.account)]
    elif header.token == "SIA-DCS":
        readings = _sia_readings(data, header.account)
    else:
        readings = [_Reading("checkin", None, "link test", "NULL", None)]
    extended = (
        {block[:1]: block[1:] for block in _EXTENDED_BLOCK.findall(extended_raw) if block} if extended_raw else {}
    )
    position = _position(extended) if extended else None
    digest = hashlib.sha256(f"{header.token}\x1f{data}\x1f{extended_raw}".encode("latin-1")).hexdigest()[:16]
    common = {
        "sequence": header.sequence,
        "receiver": header.receiver,
        "prefix": header.prefix,
        "encrypted": header.encrypted,
        "token": header.token,
        "content": content,
        "extended": extended,
    }
    return tuple(
        DeviceEvent(
            protocol=PROTOCOL,
            device_id=header.account,
            kind=_kind(reading.kind),
            code=reading.code,
            alarm_type=reading.alarm_type,
            lat=position[0] if position else None,
            lon=position[1] if position else None,
            device_time=device_time,
            zone=reading.zone,
            dedup=f"dc09:{header.account}:{header.sequence}:{digest}:{index}",
            detail={**common, "label": reading.label, **reading.detail},
        )
        for index, reading in enumerate(readings)
    )


def _tamper_event(header: _Header, now: float) -> DeviceEvent:
    """The tamper event of a plain message for a keyed account (rule 7): one dedup key per account and bucket."""
    meaning = codes.DC09_PLAIN_KEYED
    assert meaning.alarm_type is not None
    return DeviceEvent(
        protocol=PROTOCOL,
        device_id=header.account,
        kind=_kind(meaning.kind),
        code=PLAIN_KEYED_CODE,
        alarm_type=meaning.alarm_type,
        dedup=f"dc09:{header.account}:plain:{int(now // PLAIN_KEYED_BUCKET_S)}",
        detail={
            "label": meaning.label,
            "token": header.token,
            "sequence": header.sequence,
            "receiver": header.receiver,
            "prefix": header.prefix,
            "encrypted": False,
            "authenticated": False,  # not a sign of life: it does not reset the device's check-in (rule 7)
        },
    )


def _kind(name: str) -> EventKind:
    return cast(EventKind, name) if name in _EVENT_KINDS else "info"


def _data_account(account: str | None, header_account: str) -> dict[str, Any]:
    """The account written in the data, kept when it differs from the header's (the device is the header's)."""
    return {"data_account": account} if account is not None and account != header_account else {}


def _contact_id_reading(data: str, header_account: str) -> _Reading:
    match = _CONTACT_ID.fullmatch(data)
    if match is None:
        raise ProtocolError("Contact ID data is not QEEE GG ZZZ")
    qualifier, event = match["qualifier"], match["event"]
    kind, alarm_type, label = codes.contact_id(qualifier, event)
    detail = {"qualifier": qualifier, "event": event, "partition": match["partition"]}
    detail.update(_data_account(match["account"], header_account))
    return _Reading(kind, alarm_type, label, f"CID:{qualifier}{event}", match["zone"], detail)


def _sia_readings(data: str, header_account: str) -> list[_Reading]:
    """One reading per event code of SIA DC-03 data (``N`` segments), with the ``A`` text attached."""
    start = _SIA_ACCOUNT.match(data)
    body = data[start.end() :] if start else data
    context: dict[str, str] = {}
    found: list[tuple[str, str, str | None, dict[str, str]]] = []
    texts: list[str] = []
    for segment in body.split("|"):
        if segment.startswith("A"):
            texts.append(segment[1:])
            continue
        if not segment.startswith("N"):
            raise ProtocolError(f"SIA data segment {segment[:20]!r} is neither N (events) nor A (text)")
        for block in segment[1:].split("/"):
            match = _SIA_BLOCK.fullmatch(block)
            if match is None or (match["code"] is None and (match["address"] or match["name"])):
                raise ProtocolError(f"SIA block {block[:20]!r} does not parse")
            context.update(_SIA_MODIFIER.findall(match["modifiers"]))
            if match["code"] is not None:
                found.append((match["code"], match["address"], match["name"], dict(context)))
    if not found:
        raise ProtocolError("SIA data without an event code")
    extra = _data_account(start["account"] if start else None, header_account)
    if texts:
        extra["text"] = "|".join(texts)
    readings = []
    for code, address, name, modifiers in found:
        kind, alarm_type, label = codes.sia(code)
        detail: dict[str, Any] = {"modifiers": modifiers, **extra}
        for short, long in (("ri", "area"), ("id", "user"), ("ti", "time")):
            if short in modifiers:
                detail[long] = modifiers[short]
        if name is not None:
            detail["zone_name"] = name
        readings.append(_Reading(kind, alarm_type, label, f"SIA:{code}", address or None, detail))
    return readings


def _position(extended: dict[str, str]) -> tuple[float, float] | None:
    """(latitude, longitude) from the ``[Y..]`` and ``[X..]`` blocks, when both are there and sane."""
    lat = _coordinate(extended.get("Y"), "NS", 90.0)
    lon = _coordinate(extended.get("X"), "EW", 180.0)
    if lat is None or lon is None:
        return None
    return lat, lon


def _coordinate(text: str | None, hemispheres: str, limit: float) -> float | None:
    match = _COORDINATE.fullmatch(text) if text is not None else None
    if match is None or (match["before"] and match["after"]):
        return None
    hemisphere = match["before"] or match["after"]
    if hemisphere and hemisphere not in hemispheres:
        return None
    value = float(match["value"])
    if hemisphere in ("S", "W"):
        value = -abs(value)
    return value if -limit <= value <= limit else None


def _codec(keys: KeyLookup, /, *, known: KnownLookup | None = None, policy: DevicePolicy = DEFAULT_POLICY) -> Dc09Codec:
    """The registry's factory: a codec applying the deployment's encryption policy (rule 7)."""
    return Dc09Codec(keys, plain_keyed=policy.dc09_plain_keyed)


SPEC = ProtocolSpec(
    name="sia-dc09",
    option="dc09",
    default_port=9100,
    summary="alarm transmitters and social-alarm units: SIA DC-09 with Contact ID or SIA DC-03, plain or AES",
    stream=_codec,
    datagram=_codec,
    codes=(
        CodeTable("Contact ID (ADM-CID)", "event code", codes.CONTACT_ID),
        CodeTable("SIA DC-03 (SIA-DCS)", "code", codes.SIA),
    ),
)
