"""The gateway's transports: one TCP listener per protocol (and UDP where its spec says), feeding codecs.

What it owns
    Sockets. A connection gets its own codec from its protocol's spec (:mod:`gateway.registry`); each read is
    decoded into frames; every frame's events go through the core's intake (:mod:`dispatch.intake`), and the
    replies (ACKs) are written, in frame order, only after the intake says those events are durable. A
    ProtocolError never reaches this module: codecs turn bad frames into negative answers, so a malformed
    frame never kills a connection.

What it gets of the core
    An object with the intake's two device calls (``checkin`` for the quick path, ``devices`` for the rest)
    and a key lookup callable. Nothing else: no engine, no journal, no projection.

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
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, cast

from dispatch.clock import Clock
from dispatch.errors import JournalError
from dispatch.intake import DeviceIntake
from gateway.events import Decoded, DeviceEvent
from gateway.registry import DatagramCodec, KeyLookup, ProtocolSpec

log = logging.getLogger("anxin.gateway")


@dataclass(frozen=True, slots=True)
class Listener:
    """One protocol on one port (0: any free port, for tests)."""

    spec: ProtocolSpec
    port: int


class Gateway:
    def __init__(
        self, intake: DeviceIntake, keys: KeyLookup, clock: Clock, *, host: str, listeners: Sequence[Listener]
    ) -> None:
        self._intake = intake
        self._keys = keys
        self._clock = clock
        self._host = host
        self._listeners = tuple(listeners)
        self.counters: Counter[str] = Counter()
        self._servers: list[asyncio.Server] = []
        self._udp: list[asyncio.DatagramTransport] = []
        self.connections: set[_DeviceConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            spec = listener.spec
            server = await loop.create_server(
                functools.partial(_DeviceConnection, self, spec), self._host, listener.port, backlog=4096
            )
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1]
            self.ports[spec.name] = port
            if spec.datagram is not None:
                datagrams = functools.partial(_Datagrams, self, spec.datagram(self._keys))
                transport, _ = await loop.create_datagram_endpoint(datagrams, local_addr=(self._host, port))
                self._udp.append(transport)
            log.info("gateway: %s listening on %s:%d (%s)", spec.name, self._host, port, "/".join(spec.transports))

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

    def quick_replies(self, results: list[Decoded], now: float) -> list[bytes] | None:
        """The replies, when every frame is a routine check-in that needs nothing written; else None.

        This runs for every heartbeat of every device: one read is nearly always one frame, handed over as it is.
        """
        events = results[0].events if len(results) == 1 else _events(results)
        if not self._intake.checkin(events, now):
            return None
        return [decoded.reply for decoded in results if decoded.reply is not None]

    async def answer(self, results: list[Decoded]) -> list[bytes]:
        """Record every frame's events, wait until durable, then hand back the replies in frame order."""
        await self._intake.devices(_events(results))
        return [decoded.reply for decoded in results if decoded.reply is not None]

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _events(results: list[Decoded]) -> tuple[DeviceEvent, ...]:
    return tuple(event for decoded in results for event in decoded.events)


class _DeviceConnection(asyncio.Protocol):
    """One device's TCP connection: a codec, and replies written in frame order after durability.

    Routine check-ins are answered at once (nothing to record). Anything to record pauses reading until
    it is durable and answered: the device's next frames wait in the kernel's buffer, not in ours.
    """

    def __init__(self, gateway: Gateway, spec: ProtocolSpec) -> None:
        self._gateway = gateway
        self._protocol = spec.name
        self._codec = spec.stream(gateway._keys)
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._gateway.connections.add(self)
        self._gateway.counters[f"{self._protocol}.connections"] += 1

    def data_received(self, data: bytes) -> None:
        gateway = self._gateway
        now = gateway._clock.now()
        results = self._codec.receive_data(data, now)
        quick = gateway.quick_replies(results, now)
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
            log.error("gateway: %s frame left unacknowledged: %s", self._protocol, exc)
            self.abort()
            return
        except Exception:  # a bug of ours: drop the connection (the device reconnects and repeats), never hang it
            log.exception("gateway: %s connection dropped", self._protocol)
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
        counters.update({f"{self._protocol}.{k}": v for k, v in self._codec.counters.items()})
        self._transport = None


class _Datagrams(asyncio.DatagramProtocol):
    """A protocol over UDP (DC-09): one datagram, one message; the reply goes back to the sender's address."""

    def __init__(self, gateway: Gateway, codec: DatagramCodec) -> None:
        self._gateway = gateway
        self._codec = codec
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
            log.error("gateway: datagram unacknowledged: %s", exc)
            return
        if self._transport is not None:
            for reply in replies:
                self._transport.sendto(reply, addr)
