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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from dispatch.clock import Clock
from dispatch.core import Core
from dispatch.errors import JournalError
from gateway.dc09 import Dc09Codec
from gateway.events import Decoded
from gateway.gt06 import Gt06Codec
from gateway.intake import Intake
from gateway.watch import WatchCodec

log = logging.getLogger("anxin.gateway")
READ_SIZE = 4096


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
        self._connections: set[asyncio.Task[None]] = set()
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
        for listener in self.listeners():
            server = await asyncio.start_server(
                functools.partial(self._connection, listener), host, listener.port, limit=READ_SIZE * 4
            )
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1]
            self.ports[listener.protocol] = port
            if listener.protocol == "sia-dc09":
                transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: _Dc09Datagrams(self), local_addr=(host, port)
                )
                self._udp.append(transport)
            log.info("gateway: %s listening on %s:%d", listener.protocol, host, port)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for transport in self._udp:
            transport.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        await self.intake.stop()

    async def _connection(self, listener: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        codec = listener.codec()
        self.counters[f"{listener.protocol}.connections"] += 1
        try:
            while data := await reader.read(READ_SIZE):
                results = codec.receive_data(data, self._clock.now())
                for reply in await self.answer(results):
                    writer.write(reply)
                await writer.drain()
        except (ConnectionError, TimeoutError):
            pass
        except JournalError as exc:  # nothing recorded, so nothing acknowledged: the device will repeat
            log.error("gateway: %s connection closed unacknowledged: %s", listener.protocol, exc)
        finally:
            self.counters.update({f"{listener.protocol}.{k}": v for k, v in codec.counters.items()})
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def answer(self, results: list[Decoded]) -> list[bytes]:
        """Record every frame's events, wait until durable, then hand back the replies in frame order."""
        last = 0
        for decoded in results:
            if decoded.events:
                last = max(last, await self.intake.process(decoded))
        if last:
            await self._core.journal.durable(last)
        return [decoded.reply for decoded in results if decoded.reply is not None]


class _Dc09Datagrams(asyncio.DatagramProtocol):
    """DC-09 over UDP: one datagram, one message; the ACK goes back to the sender's address."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._codec = Dc09Codec(gateway._dc09_keys)
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        results = self._codec.datagram(data, self._gateway._clock.now())
        task = asyncio.create_task(self._reply(results, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reply(self, results: list[Decoded], addr: tuple[str | int, ...]) -> None:
        try:
            replies = await self._gateway.answer(results)
        except JournalError as exc:
            log.error("gateway: DC-09 datagram unacknowledged: %s", exc)
            return
        if self._transport is not None:
            for reply in replies:
                self._transport.sendto(reply, addr)
