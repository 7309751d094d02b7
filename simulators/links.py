"""A simulated device's network link to the gateway: TCP (every protocol) or UDP (DC-09), one frame in flight.

What it owns
    Sockets, for one device, and which of its receivers (a primary and its backups, :class:`Receivers`) it
    talks to. :meth:`Link.exchange` writes one frame and reads replies until one acknowledges it (the
    :class:`~simulators.wire.Message` decides) or the ACK timeout passes; replies that acknowledge something
    else are counted as ``stray`` and skipped.

Rules
    1. One frame in flight: a device waits for the reply (or the timeout) before it sends anything else.
    2. After a timeout a TCP link is closed; the device reconnects before it repeats, as GPRS devices do,
       so a late reply to the first attempt cannot be read as the reply to a later frame.
    3. A GT06 link logs in (and waits for the login's ACK) after every connect, before its first frame.
    4. Loopback only: a link refuses any other host.
    5. Failover, as DC-09 transmitters and 3G/4G watches do it: after ``switch_after`` attempts in a row
       without an ACK from the current receiver (refused, reset, timed out), the link moves to the next one,
       round robin over the primary and its backups, and stays on whichever answers (a GT06 login's ACK
       is not an answer: a receiver that takes logins but drops alarms is left too). Whatever goes out
       next (a repeat of the same alarm, a check-in, a GT06 login) goes there.

Never
    Never raise a network error out of :meth:`Link.exchange`: a refused connection, a reset or a timeout is
    simply "no ACK", which the device answers by repeating.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from simulators.wire import Message, ReplyFramer, framer_for

log = logging.getLogger("anxin.sim.links")

LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
READ_SIZE: Final = 4096


@dataclass(slots=True)
class Receivers:
    """The receivers' ports, primary first, and which one the device is on (rule 5); no sockets, no clock."""

    ports: tuple[int, ...]
    switch_after: int = 2
    current: int = 0  # index into ports: 0 the primary, 1.. the backups
    misses: int = 0  # attempts in a row without an ACK from the current receiver

    def __post_init__(self) -> None:
        if not self.ports or self.switch_after < 1:
            raise ValueError("a device needs at least one receiver, and switches after one miss or more")

    @property
    def port(self) -> int:
        return self.ports[self.current]

    def answered(self) -> None:
        self.misses = 0

    def missed(self) -> bool:
        """One attempt went unacknowledged; True when that moved the device on to the next receiver."""
        self.misses += 1
        if self.misses < self.switch_after or len(self.ports) == 1:
            return False
        self.current, self.misses = (self.current + 1) % len(self.ports), 0
        return True


class Link:
    """TCP to one gateway port, or to the next of its backups (rule 5); see the module docstring."""

    def __init__(
        self,
        protocol: str,
        host: str,
        port: int,
        *,
        login: Message | None = None,
        backups: Sequence[int] = (),
        switch_after: int = 2,
    ) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"simulated devices only talk to this machine, not {host}")
        self.protocol, self.host = protocol, host
        self.receivers = Receivers((port, *backups), switch_after)
        self.login = login
        self.connects = 0
        self.stray = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._framer: ReplyFramer = framer_for(protocol)

    @property
    def port(self) -> int:
        """The port of the receiver the link talks to now."""
        return self.receivers.port

    @property
    def receiver(self) -> int:
        """Which receiver the link talks to now: 0 the primary, 1.. the backups in their order."""
        return self.receivers.current

    @property
    def is_open(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def open(self, wait_s: float) -> bool:
        if self.is_open:
            return True
        try:
            self._reader, self._writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), wait_s)
        except (OSError, TimeoutError):
            await self._missed()
            return False
        self.connects += 1
        self._framer = framer_for(self.protocol)
        if self.login is not None and await self.exchange(self.login.frame(time.time()), self.login, wait_s) is None:
            await self.close()  # the login's exchange counted the miss
            return False
        return True

    async def exchange(self, frame: bytes, message: Message, wait_s: float) -> bytes | None:
        """Send ``frame`` and return the reply that acknowledges ``message``, or None after ``wait_s`` seconds."""
        if self._writer is None or self._reader is None:
            return None
        deadline = time.monotonic() + wait_s
        try:
            self._writer.write(frame)
            await self._writer.drain()
            while (left := deadline - time.monotonic()) > 0:
                data = await asyncio.wait_for(self._reader.read(READ_SIZE), left)
                if not data:
                    break  # the receiver closed the connection
                for reply in self._framer.feed(data):
                    if message.acks(reply):
                        if message is not self.login:  # a receiver that takes logins only is not answering
                            self.receivers.answered()
                        return reply
                    self.stray += 1
        except (OSError, TimeoutError):
            pass
        await self.close()
        await self._missed()
        return None

    async def _missed(self) -> None:
        """Rule 5: count an attempt without an ACK; on a switch, drop the way to the old receiver."""
        was = self.port
        if self.receivers.missed():
            await self.close()
            log.info("%s link: no ACK from port %d, on to port %d", self.protocol, was, self.port)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(1000)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(data)


class UdpLink(Link):
    """DC-09 over UDP: one datagram per message, the ACK back from the receiver's port."""

    def __init__(self, host: str, port: int, *, backups: Sequence[int] = (), switch_after: int = 2) -> None:
        super().__init__("sia-dc09", host, port, backups=backups, switch_after=switch_after)
        self._transport: asyncio.DatagramTransport | None = None
        self._inbox = _Inbox()

    @property
    def is_open(self) -> bool:
        return self._transport is not None

    async def open(self, wait_s: float) -> bool:
        if self._transport is None:
            loop = asyncio.get_running_loop()
            self._inbox = _Inbox()  # nothing a former receiver sent is read as this one's ACK
            try:
                self._transport, _ = await loop.create_datagram_endpoint(
                    lambda: self._inbox, remote_addr=(self.host, self.port)
                )
            except OSError:
                await self._missed()
                return False
            self.connects += 1
        return True

    async def exchange(self, frame: bytes, message: Message, wait_s: float) -> bytes | None:
        if self._transport is None:
            return None
        deadline = time.monotonic() + wait_s
        self._transport.sendto(frame)
        try:
            while (left := deadline - time.monotonic()) > 0:
                datagram = await asyncio.wait_for(self._inbox.queue.get(), left)
                for reply in framer_for("sia-dc09").feed(datagram):
                    if message.acks(reply):
                        self.receivers.answered()
                        return reply
                    self.stray += 1  # the ACK of an earlier attempt, or of an older message
        except TimeoutError:
            pass
        await self._missed()  # a datagram link stays open (the repeat goes out on it) unless it switched
        return None

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
