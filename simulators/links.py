"""A simulated device's network link to the gateway: TCP (every protocol) or UDP (DC-09), one frame in flight.

What it owns
    Sockets, for one device. :meth:`Link.exchange` writes one frame and reads replies until one
    acknowledges it (the :class:`~simulators.wire.Message` decides) or the ACK timeout passes; replies that
    acknowledge something else are counted as ``stray`` and skipped.

Rules
    1. One frame in flight: a device waits for the reply (or the timeout) before it sends anything else.
    2. After a timeout a TCP link is closed; the device reconnects before it repeats, as GPRS devices do,
       so a late reply to the first attempt cannot be read as the reply to a later frame.
    3. A GT06 link logs in (and waits for the login's ACK) after every connect, before its first frame.
    4. Loopback only: a link refuses any other host.

Never
    Never raise a network error out of :meth:`Link.exchange`: a refused connection, a reset or a timeout is
    simply "no ACK", which the device answers by repeating.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Final

from simulators.wire import Message, ReplyFramer, framer_for

LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
READ_SIZE: Final = 4096


class Link:
    """TCP to one gateway port; see the module docstring."""

    def __init__(self, protocol: str, host: str, port: int, *, login: Message | None = None) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"simulated devices only talk to this machine, not {host}")
        self.protocol, self.host, self.port = protocol, host, port
        self.login = login
        self.connects = 0
        self.stray = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._framer: ReplyFramer = framer_for(protocol)

    @property
    def is_open(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def open(self, wait_s: float) -> bool:
        if self.is_open:
            return True
        try:
            self._reader, self._writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), wait_s)
        except (OSError, TimeoutError):
            return False
        self.connects += 1
        self._framer = framer_for(self.protocol)
        if self.login is not None and await self.exchange(self.login.frame(time.time()), self.login, wait_s) is None:
            await self.close()
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
                        return reply
                    self.stray += 1
        except (OSError, TimeoutError):
            pass
        await self.close()
        return None

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

    def __init__(self, host: str, port: int) -> None:
        super().__init__("sia-dc09", host, port)
        self._transport: asyncio.DatagramTransport | None = None
        self._inbox = _Inbox()

    @property
    def is_open(self) -> bool:
        return self._transport is not None

    async def open(self, wait_s: float) -> bool:
        if self._transport is None:
            loop = asyncio.get_running_loop()
            try:
                self._transport, _ = await loop.create_datagram_endpoint(
                    lambda: self._inbox, remote_addr=(self.host, self.port)
                )
            except OSError:
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
                        return reply
                    self.stray += 1  # the ACK of an earlier attempt, or of an older message
        except TimeoutError:
            pass
        return None  # a datagram link stays open: the repeat goes out on it

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
