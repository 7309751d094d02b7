"""Asterisk Manager Interface (AMI) wire format, sans-I/O.

Theory of operation
-------------------
What it owns
    :class:`AmiCodec` cuts the byte stream a PBX sends on its manager port into :class:`Message` objects, and
    :func:`action` encodes the actions Anxin sends. It knows nothing of calls (gateway.pbx does) nor of
    sockets (gateway.amilink does).

The stream, as Asterisk writes it (manager.c; "AMI" in the Asterisk documentation)::

    Asterisk Call Manager/7.0.3\\r\\n          <- the banner: one line, once, before anything else
    Response: Success\\r\\n                    <- a message: "Key: Value" lines ...
    ActionID: anxin-1\\r\\n
    Message: Authentication accepted\\r\\n
    \\r\\n                                     <- ... ended by an empty line
    Event: Newchannel\\r\\n
    Privilege: call,all\\r\\n
    Channel: PJSIP/trunk-00000001\\r\\n
    ...
    \\r\\n

Rules
    1. Sans-I/O: bytes in (:meth:`AmiCodec.receive_data`), messages out; no socket, no clock.
    2. Framing knows "need more data": a read may hold half a line, or several messages; what is not yet
       ended by an empty line waits in the buffer. The result never depends on how the stream was cut.
    3. The first line must be the banner ``Asterisk Call Manager/<version>`` (:class:`NotAnAmiPeer`
       otherwise). Asterisk ends lines with CRLF; a bare LF is accepted too (some proxies rewrite).
    4. Keys repeat (``Variable:``, ``ChanVariable:``), so a message keeps its headers in order as a
       multi-map; :meth:`Message.get` is the first value of a key (keys compare without case, as Asterisk's
       ``astman_get_header`` does), :meth:`Message.get_all` every value.
    5. A line without ``": "`` (the text of an old ``Response: Follows`` command) is kept under ``Output``.
    6. A message longer than ``max_message`` bytes (64 KiB; Asterisk's own longest are a few KiB) is a
       :class:`FramingError`: the peer is not speaking AMI and the link is dropped, never buffered for ever.
    7. Encoding refuses CR and LF in a header name or value (:class:`HeaderInjection`): a caller number
       holding ``\\r\\nAction: Command`` must not become a second action. NUL and every other control
       character are refused too (a NUL cuts a value short in the PBX's C strings).

What it must never do: raise anything but :class:`gateway.errors.ProtocolError` on the peer's bytes, or
wait for bytes that cannot come (a complete message is always handed out at once).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.errors import FramingError, HeaderInjection, NotAnAmiPeer

BANNER_PREFIX = b"Asterisk Call Manager/"
MAX_MESSAGE = 64 * 1024
#: the banner is one short line; a peer that sends a kilobyte without a newline is not an AMI server
MAX_BANNER = 256


@dataclass(frozen=True, slots=True)
class Message:
    """One AMI message: a response, an event or an action, its headers in wire order (keys may repeat)."""

    headers: tuple[tuple[str, str], ...]

    def get(self, key: str, default: str = "") -> str:
        """The first value of ``key`` (case-insensitive), or ``default``."""
        folded = key.casefold()
        for name, value in self.headers:
            if name.casefold() == folded:
                return value
        return default

    def get_all(self, key: str) -> list[str]:
        folded = key.casefold()
        return [value for name, value in self.headers if name.casefold() == folded]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and any(name.casefold() == key.casefold() for name, _ in self.headers)

    @property
    def event(self) -> str:
        """The event's name ("Newchannel"), "" for a response."""
        return self.get("Event")

    @property
    def response(self) -> str:
        """ "Success", "Error", "Goodbye", "Follows" for a response, "" for an event."""
        return self.get("Response")

    @property
    def action_id(self) -> str:
        return self.get("ActionID")

    def variables(self) -> dict[str, str]:
        """The ``Variable: NAME=value`` (and ``ChanVariable``) headers as a dict; the first value wins."""
        found: dict[str, str] = {}
        for key in ("Variable", "ChanVariable"):
            for item in self.get_all(key):
                name, sep, value = item.partition("=")
                if sep and name not in found:
                    found[name] = value
        return found


class AmiCodec:
    """One AMI connection's incoming stream: banner first, then messages (see the module's rules)."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self.max_message = max_message
        self.banner: str | None = None  # "Asterisk Call Manager/7.0.3" once read
        self._buffer = bytearray()
        self._lines: list[tuple[str, str]] = []
        self._size = 0  # bytes of the message being read, its finished lines included

    @property
    def version(self) -> str:
        """The manager interface's version from the banner ("7.0.3"), "" before it."""
        return self.banner.partition("/")[2] if self.banner else ""

    def receive_data(self, data: bytes) -> list[Message]:
        """Take bytes as read from the peer; return every message they complete, in order."""
        self._buffer += data
        messages: list[Message] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                self._check_pending()
                return messages
            line = bytes(self._buffer[:end]).removesuffix(b"\r")
            del self._buffer[: end + 1]
            if self.banner is None:
                self._read_banner(line)
                continue
            message = self._read_line(line, end + 1)
            if message is not None:
                messages.append(message)

    def _check_pending(self) -> None:
        if self.banner is None:
            if len(self._buffer) > MAX_BANNER or not BANNER_PREFIX.startswith(bytes(self._buffer[:22])):
                raise NotAnAmiPeer(f"no AMI banner: {bytes(self._buffer[:40])!r}")
        elif self._size + len(self._buffer) > self.max_message:
            raise FramingError(f"an AMI message longer than {self.max_message} bytes")

    def _read_banner(self, line: bytes) -> None:
        if not line.startswith(BANNER_PREFIX) or len(line) > MAX_BANNER:
            raise NotAnAmiPeer(f"no AMI banner: {line[:40]!r}")
        self.banner = line.decode("utf-8", "replace")

    def _read_line(self, line: bytes, size: int) -> Message | None:
        if not line:
            if not self._lines:
                return None  # blank lines between messages
            message = Message(tuple(self._lines))
            self._lines = []
            self._size = 0
            return message
        self._size += size
        if self._size > self.max_message:
            raise FramingError(f"an AMI message longer than {self.max_message} bytes")
        text = line.decode("utf-8", "replace")
        key, sep, value = text.partition(":")
        if not sep or not key or " " in key.strip():
            self._lines.append(("Output", text))
        else:
            self._lines.append((key.strip(), value.removeprefix(" ")))
        return None


HeaderValue = str | int | float | Iterable[str]
#: what no header of an action may hold: CR and LF would start a new header (or action), a NUL ends the value
#: early in the PBX's C strings, and no other control character belongs in a number, a channel or a caller id
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def action(name: str, action_id: str, headers: Mapping[str, HeaderValue] | None = None, **more: HeaderValue) -> bytes:
    """Encode an action: ``Action: name``, ``ActionID``, then each header (an iterable value repeats the key,
    as ``Variable`` does). Raises :class:`HeaderInjection` on CR or LF anywhere."""
    lines = [("Action", name), ("ActionID", action_id)]
    for key, value in {**(headers or {}), **more}.items():
        if isinstance(value, str | int | float):
            lines.append((key, str(value)))
        else:
            lines.extend((key, str(item)) for item in value)
    return encode(lines)


def encode(lines: Iterable[tuple[str, str]]) -> bytes:
    """Encode one message of ``(key, value)`` lines, ended by the empty line."""
    out = bytearray()
    for key, value in lines:
        if not key or ":" in key or _CONTROL.search(key) or _CONTROL.search(value):
            raise HeaderInjection(f"AMI header {key!r} holds a control character, or a colon in its name")
        out += f"{key}: {value}\r\n".encode()
    out += b"\r\n"
    return bytes(out)
