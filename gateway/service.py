"""The gateway's transports: one TCP listener per protocol (and UDP for DC-09), feeding sans-I/O codecs.

What it owns
    Sockets. A connection gets its own codec; each read is decoded into frames; every frame's events go
    through the :class:`~gateway.intake.Intake` into the core; the replies (ACKs) are written, in frame
    order, only after the journal says those events are durable. A ProtocolError never reaches this
    module: codecs turn bad frames into negative answers, so a malformed frame never kills a connection.

Never
    Never reply before durability; never buffer without bound (a connection waits for its frames to be
    recorded before it reads more); never let one connection's failure touch another.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, cast

from dispatch.clock import Clock
from dispatch.core import Core
from dispatch.errors import JournalError
from gateway.dc09 import Dc09Codec
from gateway.events import Decoded
from gateway.gt06 import Gt06Codec
from gateway.intake import Intake
from gateway.watch import WatchCodec

log = logging.getLogger("anxin.gateway")


class StreamCodec(Protocol):
    counters: Counter[str]

    def receive_data(self, data: bytes, now: float) -> list[Decoded]: ...


@dataclass(frozen=True, slots=True)
class Listener:
    protocol: str
    port: int
    codec: Callable[[], StreamCodec]


class Gateway:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._clock: Clock = core.clock
        self.intake = Intake(core.engine)
        self.counters: Counter[str] = Counter()
        self._servers: list[asyncio.Server] = []
        self._udp: list[asyncio.DatagramTransport] = []
        self.connections: set[_DeviceConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.ports: dict[str, int] = {}

    def _dc09_keys(self, account: str) -> bytes | None:
        device = self._core.engine.directory.devices.get(account)
        if device is None or device.aes_key is None:
            return None
        return bytes.fromhex(device.aes_key)

    def listeners(self) -> list[Listener]:
        settings = self._core.settings
        wanted: list[tuple[str, int | None, Callable[[], StreamCodec]]] = [
            ("sia-dc09", settings.dc09_port, self._dc09_codec),
            ("watch", settings.watch_port, WatchCodec),
            ("gt06", settings.gt06_port, Gt06Codec),
        ]
        return [Listener(name, port, factory) for name, port, factory in wanted if port is not None]

    def _dc09_codec(self) -> Dc09Codec:
        return Dc09Codec(self._dc09_keys)

    async def start(self) -> None:
        self.intake.start()
        host = self._core.settings.gateway_host
        loop = asyncio.get_running_loop()
        for listener in self.listeners():
            server = await loop.create_server(
                functools.partial(_DeviceConnection, self, listener), host, listener.port, backlog=4096
            )
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1]
            self.ports[listener.protocol] = port
            if listener.protocol == "sia-dc09":
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Dc09Datagrams(self), local_addr=(host, port)
                )
                self._udp.append(transport)
            log.info("gateway: %s listening on %s:%d", listener.protocol, host, port)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for transport in self._udp:
            transport.close()
        for connection in list(self.connections):
            connection.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        await self.intake.stop()

    def quick_replies(self, results: list[Decoded]) -> list[bytes] | None:
        """The replies, when every frame is a routine check-in that needs nothing written; else None."""
        touch = self._core.engine.touch_device
        for decoded in results:
            for event in decoded.events:
                if not touch(event.device_id, event.kind, event.battery):
                    return None
        return [decoded.reply for decoded in results if decoded.reply is not None]

    async def answer(self, results: list[Decoded]) -> list[bytes]:
        """Record every frame's events, wait until durable, then hand back the replies in frame order."""
        last = 0
        for decoded in results:
            if decoded.events:
                last = max(last, await self.intake.process(decoded))
        if last:
            await self._core.journal.durable(last)
        return [decoded.reply for decoded in results if decoded.reply is not None]

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _DeviceConnection(asyncio.Protocol):
    """One device's TCP connection: a codec, and replies written in frame order after durability.

    Routine check-ins are answered at once (nothing to record). Anything to record pauses reading until
    it is durable and answered: the device's next frames wait in the kernel's buffer, not in ours.
    """

    def __init__(self, gateway: Gateway, listener: Listener) -> None:
        self._gateway = gateway
        self._listener = listener
        self._codec = listener.codec()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._gateway.connections.add(self)
        self._gateway.counters[f"{self._listener.protocol}.connections"] += 1

    def data_received(self, data: bytes) -> None:
        gateway = self._gateway
        results = self._codec.receive_data(data, gateway._clock.now())
        quick = gateway.quick_replies(results)
        if quick is not None:
            self._write(quick)
            return
        assert self._transport is not None
        self._transport.pause_reading()
        gateway.spawn(self._record(results))

    async def _record(self, results: list[Decoded]) -> None:
        try:
            replies = await self._gateway.answer(results)
        except JournalError as exc:  # nothing recorded, so nothing acknowledged: the device will repeat
            log.error("gateway: %s frame left unacknowledged: %s", self._listener.protocol, exc)
            self.abort()
            return
        except Exception:  # a bug of ours: drop the connection (the device reconnects and repeats), never hang it
            log.exception("gateway: %s connection dropped", self._listener.protocol)
            self.abort()
            return
        self._write(replies)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def _write(self, replies: list[bytes]) -> None:
        if replies and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(replies))

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gateway.connections.discard(self)
        counters = self._gateway.counters
        counters.update({f"{self._listener.protocol}.{k}": v for k, v in self._codec.counters.items()})
        self._transport = None


class _Dc09Datagrams(asyncio.DatagramProtocol):
    """DC-09 over UDP: one datagram, one message; the ACK goes back to the sender's address."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._codec = Dc09Codec(gateway._dc09_keys)
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        results = self._codec.datagram(data, self._gateway._clock.now())
        self._gateway.spawn(self._reply(results, addr))

    async def _reply(self, results: list[Decoded], addr: tuple[str | int, ...]) -> None:
        try:
            replies = await self._gateway.answer(results)
        except JournalError as exc:
            log.error("gateway: DC-09 datagram unacknowledged: %s", exc)
            return
        if self._transport is not None:
            for reply in replies:
                self._transport.sendto(reply, addr)
