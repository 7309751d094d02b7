"""The gateway's transports: one TCP listener per protocol (and UDP where its spec says), feeding codecs.

What it owns
    Sockets, and what they may cost. A connection gets its own codec from its protocol's spec
    (:mod:`gateway.registry`); each read is decoded into frames; every frame's events go through the core's
    intake (:mod:`dispatch.intake`), and the replies (ACKs) are written, in frame order, only after the intake
    says those events are durable. A ProtocolError never reaches this module: codecs turn bad frames into
    negative answers, so a malformed frame never kills a connection.

    Each listener has a :class:`Budget`: the source networks it admits, the connections it holds at once in
    total and per source address, how long a connection may stay silent and how long a frame may take from its
    first byte to its last. One sweeper task per gateway drops what outlived its deadline.

What it gets of the core
    An object with the intake's two device calls (``checkin`` for the quick path, ``devices`` for the rest)
    and a key lookup callable. Nothing else: no engine, no journal, no projection.

Rules
    1. Admission is decided in ``connection_made``, before the codec sees a byte: a source outside the
       allow-list, or a connection over the listener's total or its address's cap, is closed at once, with no
       reply, and counted.
    2. Deadlines run on the injected clock. A listener keeps its connections in two insertion-ordered dicts,
       by last byte and by the start of the frame in progress; every deadline of a listener is the same length,
       so the oldest is first and a sweep touches only what it drops (100,000 connections cost nothing while
       they keep talking).
    3. Errors are counted and logged once per interval (:attr:`Gateway.log_every_s`), never once per event;
       asyncio's own "socket.accept() out of system resource" lines are folded into that summary too.
    4. What the operations' metrics read is counted here and read by them (``frames``, :meth:`Gateway.open`,
       :meth:`Gateway.bound`); the one thing pushed out is each ACK's latency, from the read that completed its
       frame to the write of its reply, to the ``on_ack(protocol, path, seconds)`` hook the process gives
       (``path``: ``checkin``, answered at once, or ``recorded``, answered once durable). An alarm acknowledged
       is logged once, with its device, protocol and type.

Never
    Never reply before durability; never buffer without bound (a connection waits for its frames to be
    recorded before it reads more); never let one connection's failure touch another; never a timer per
    connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

from dispatch.clock import Clock
from dispatch.errors import JournalError
from dispatch.intake import DeviceIntake
from gateway.events import Decoded, DeviceEvent
from gateway.registry import DEFAULT_POLICY, DatagramCodec, DevicePolicy, KeyLookup, KnownLookup, ProtocolSpec

log = logging.getLogger("anxin.gateway")

#: datagrams of one listener being recorded at once; more are dropped unanswered and counted (a spoofed flood must
#: not grow tasks without bound; a real transmitter repeats an unanswered message)
MAX_DATAGRAMS_IN_FLIGHT = 1000
#: the listen backlog of a device port, which is also how many connections asyncio accepts in one go before any of
#: them is admitted or refused: a flood briefly holds up to about twice this many descriptors per listener beyond
#: its cap (the descriptor plan counts them, anxin.server); reconnecting devices beyond it retry their SYN
ACCEPT_BURST = 64

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: the period of the link test each built-in protocol's devices send while they have nothing else to say, by
#: option name: DC-09 ``NULL`` polls of connected IP transmitters run from 90 s (SP5) to hourly (a social alarm's
#: link test; the demo city's pendants check in every 3600 s), watches send ``LK`` every 5 min by default, GT06
#: trackers a heartbeat (0x13) every 3-5 min (their ``HBT`` setting)
HEARTBEAT_S: Final[dict[str, float]] = {"dc09": 3600.0, "watch": 300.0, "gt06": 300.0}
#: a protocol not named above (a plug-in's)
OTHER_HEARTBEAT_S: Final = 600.0
#: heartbeats a connection may miss (one lost, one late) before its silence drops it
IDLE_MARGIN: Final = 3.0
#: asyncio's message when accept() fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM)
ACCEPT_ERROR: Final = "socket.accept() out of system resource"

#: told of each ACK written: the protocol, the path (``checkin`` or ``recorded``) and the seconds since the read
AckObserver = Callable[[str, str, float], None]


def _no_ack_observer(protocol: str, path: str, seconds: float) -> None:
    return None


def idle_default(option: str) -> float:
    """A listener's idle timeout when its budget names none: its protocol's heartbeat × :data:`IDLE_MARGIN`."""
    return HEARTBEAT_S.get(option, OTHER_HEARTBEAT_S) * IDLE_MARGIN


@dataclass(frozen=True, slots=True)
class Budget:
    """What one listener may hold, and for how long (settings ``device_budgets``; docs/security.md)."""

    max_connections: int = 10_000
    max_per_address: int = 256
    idle_s: float = 900.0
    partial_s: float = 30.0
    allow: tuple[Network, ...] = ()  # empty: every source

    def allows(self, host: str) -> bool:
        if not self.allow:
            return True
        try:
            address = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.allow)


@dataclass(frozen=True, slots=True)
class Listener:
    """One protocol on one port (0: any free port, for tests), with its budget."""

    spec: ProtocolSpec
    port: int
    budget: Budget = Budget()


@dataclass(eq=False, slots=True)
class _Pool:
    """One listener's live connections: counts per address, and the two deadline orders (rule 2)."""

    name: str
    budget: Budget
    by_address: Counter[str] = field(default_factory=Counter)
    by_last_byte: dict[_DeviceConnection, None] = field(default_factory=dict)
    by_frame_start: dict[_DeviceConnection, None] = field(default_factory=dict)

    def refusal(self, host: str) -> str | None:
        """Why a new connection from ``host`` is refused, or None to admit it."""
        if not self.budget.allows(host):
            return "not_allowed"
        if len(self.by_last_byte) >= self.budget.max_connections:
            return "over_total"
        if self.by_address[host] >= self.budget.max_per_address:
            return "over_address"
        return None


class Gateway:
    #: seconds between two sweeps (wall time; the deadlines themselves are read on the injected clock)
    sweep_every_s: float = 1.0

    def __init__(
        self,
        intake: DeviceIntake,
        keys: KeyLookup,
        clock: Clock,
        *,
        host: str,
        listeners: Sequence[Listener],
        log_every_s: float = 60.0,
        known: KnownLookup | None = None,
        policy: DevicePolicy = DEFAULT_POLICY,
        on_ack: AckObserver = _no_ack_observer,
    ) -> None:
        self._intake = intake
        self.on_ack = on_ack
        #: frames read, per protocol (rule 4)
        self.frames: Counter[str] = Counter()
        self._keys = keys
        self._known = known  # registered or not, for the codecs' policy (gateway.registry)
        self._policy = policy
        self._clock = clock
        self._host = host
        self._listeners = tuple(listeners)
        self.log_every_s = log_every_s
        self.counters: Counter[str] = Counter()
        self._servers: list[asyncio.Server] = []
        self._udp: list[asyncio.DatagramTransport] = []
        self.connections: set[_DeviceConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.ports: dict[str, int] = {}
        self._pools: dict[str, _Pool] = {}
        self._interval: Counter[str] = Counter()  # what happened since the last summary
        self._last_error = ""  # the last unexpected error of the interval, for the summary
        self._traced = False  # a bug's traceback was logged this interval
        self._summary_at = clock.now()
        self._accept_filter = _AcceptErrors(self.count)
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        logging.getLogger("asyncio").addFilter(self._accept_filter)
        for listener in self._listeners:
            spec = listener.spec
            pool = self._pools[spec.name] = _Pool(spec.name, listener.budget)
            server = await loop.create_server(
                functools.partial(_DeviceConnection, self, spec, pool), self._host, listener.port, backlog=ACCEPT_BURST
            )
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1]
            self.ports[spec.name] = port
            if spec.datagram is not None:
                codec = spec.datagram(self._keys, known=self._known, policy=self._policy)
                datagrams = functools.partial(_Datagrams, self, codec)
                transport, _ = await loop.create_datagram_endpoint(datagrams, local_addr=(self._host, port))
                cast(_Datagrams, transport.get_protocol()).pool = pool
                self._udp.append(transport)
            log.info(
                "gateway: %s listening on %s:%d (%s), at most %d connections, %d per address%s",
                spec.name, self._host, port, "/".join(spec.transports), listener.budget.max_connections,
                listener.budget.max_per_address, ", from " + ", ".join(map(str, listener.budget.allow))
                if listener.budget.allow else "",
            )  # fmt: skip
        self._summary_at = self._clock.now()
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
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
        self.summarise(force=True)
        logging.getLogger("asyncio").removeFilter(self._accept_filter)

    def open(self) -> dict[str, int]:
        """Connections held now, per protocol (rule 4)."""
        return {name: len(pool.by_last_byte) for name, pool in self._pools.items()}

    def bound(self) -> dict[str, bool]:
        """Whether each configured listener is bound and accepting, per protocol (for readiness)."""
        serving = {listener.spec.name: False for listener in self._listeners}
        for name, server in zip(self.ports, self._servers, strict=False):
            serving[name] = server.is_serving()
        return serving

    # -- budgets ------------------------------------------------------------------------------------------

    def count(self, what: str, protocol: str = "") -> None:
        """Count one event, in the totals (``counters``) and in this interval's summary."""
        key = f"{protocol}.{what}" if protocol else what
        self.counters[key] += 1
        self._interval[key] += 1

    def sweep(self) -> int:
        """Drop every connection past its idle or partial-frame deadline; how many were dropped."""
        now = self._clock.now()
        dropped = 0
        for pool in self._pools.values():
            silent = _oldest(pool.by_last_byte, "last_byte", now - pool.budget.idle_s)
            stuck = _oldest(pool.by_frame_start, "frame_start", now - pool.budget.partial_s)
            dropped += sum(connection.drop("idle_dropped") for connection in silent)
            dropped += sum(connection.drop("partial_dropped") for connection in stuck)
        return dropped

    def summarise(self, *, force: bool = False) -> None:
        """Log what was counted since the last summary, once per interval (and only if anything was)."""
        now = self._clock.now()
        if not force and now - self._summary_at < self.log_every_s:
            return
        counts, self._interval = self._interval, Counter()
        since, self._summary_at = now - self._summary_at, now
        self._traced = False
        error, self._last_error = self._last_error, ""
        if counts:
            what = ", ".join(f"{key} {n}" for key, n in sorted(counts.items()))
            open_now = ", ".join(f"{name} {len(pool.by_last_byte)}" for name, pool in self._pools.items())
            log.warning(
                "gateway: in the last %.0f s: %s (open now: %s)%s", since, what, open_now,
                f"; last error: {error}" if error else "",
            )  # fmt: skip

    def error(self, protocol: str, what: str, exc: BaseException, *, bug: bool = False) -> None:
        """An error of a connection or datagram, counted; its text goes into the next summary. A ``bug`` (not a
        refusal) is also logged with its traceback, the first of each interval, for the engineer on call."""
        self.count(what, protocol)
        self._last_error = f"{protocol}: {type(exc).__name__}: {exc}"[:500]
        if bug and not self._traced:
            self._traced = True
            log.error("gateway: %s: %s (a bug; the next ones this interval are only counted)", protocol, what,
                      exc_info=exc, extra={"protocol": protocol})  # fmt: skip

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_every_s)
            try:
                self.sweep()
                self.summarise()
            except Exception:  # a bug of ours: say it once and go on sweeping
                log.exception("gateway: sweep failed")

    # -- intake -------------------------------------------------------------------------------------------

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


def _oldest(order: dict[_DeviceConnection, None], since: str, before: float) -> list[_DeviceConnection]:
    """The head of a deadline order whose ``since`` time is at or before ``before`` (the order is sorted: rule 2)."""
    out = []
    for connection in order:
        if getattr(connection, since) > before:
            break
        out.append(connection)
    return out


class _AcceptErrors(logging.Filter):
    """Folds asyncio's per-event accept errors (EMFILE and kin) into the gateway's counted summary.

    asyncio logs each failed ``accept()`` of every server on the loop (the HTTP one too) with a traceback; under
    a flood that is megabytes a second. The filter counts them and lets everything else through.
    """

    def __init__(self, count: Callable[[str], None]) -> None:
        super().__init__("asyncio")
        self._count = count

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(ACCEPT_ERROR):
            self._count("accept_errors")
            return False
        return True


class _DeviceConnection(asyncio.Protocol):
    """One device's TCP connection: a codec, and replies written in frame order after durability.

    Routine check-ins are answered at once (nothing to record). Anything to record pauses reading until
    it is durable and answered: the device's next frames wait in the kernel's buffer, not in ours.
    """

    def __init__(self, gateway: Gateway, spec: ProtocolSpec, pool: _Pool) -> None:
        self._gateway = gateway
        self._protocol = spec.name
        self._codec = spec.stream(gateway._keys, known=gateway._known, policy=gateway._policy)
        self._transport: asyncio.Transport | None = None
        self._pool = pool
        self._address: str | None = None  # set once admitted
        self.last_byte = 0.0
        self.frame_start = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        gateway, pool = self._gateway, self._pool
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        refused = pool.refusal(host)
        if refused is not None:  # rule 1: closed at once, no reply
            gateway.count(refused, self._protocol)
            cast(asyncio.Transport, transport).abort()
            return
        self._transport = cast(asyncio.Transport, transport)
        self._address = host
        pool.by_address[host] += 1
        self.last_byte = gateway._clock.now()
        pool.by_last_byte[self] = None
        gateway.connections.add(self)
        gateway.counters[f"{self._protocol}.connections"] += 1

    def data_received(self, data: bytes) -> None:
        gateway, pool = self._gateway, self._pool
        now = gateway._clock.now()
        self.last_byte = now
        pool.by_last_byte.pop(self, None)  # to the end: the most recent
        pool.by_last_byte[self] = None
        read = time.perf_counter()
        results = self._codec.receive_data(data, now)
        self._track_frame(now)
        if not results:
            return
        gateway.frames[self._protocol] += len(results)
        quick = gateway.quick_replies(results, now)
        if quick is not None:
            self._write(quick, read, "checkin")
            return
        assert self._transport is not None
        self._transport.pause_reading()
        gateway.spawn(self._record(results, read))

    def _track_frame(self, now: float) -> None:
        """Start or end the partial-frame clock: bytes held by the codec are a frame in progress."""
        pending = self._codec.buffered > 0
        frames = self._pool.by_frame_start
        if pending and self not in frames:
            self.frame_start = now
            frames[self] = None
        elif not pending and self in frames:
            del frames[self]

    async def _record(self, results: list[Decoded], read: float) -> None:
        try:
            replies = await self._gateway.answer(results)
        except JournalError as exc:  # nothing recorded, so nothing acknowledged: the device will repeat
            self._gateway.error(self._protocol, "unacknowledged", exc)
            self.abort()
            return
        except Exception as exc:  # a bug of ours: drop the connection (the device reconnects and repeats)
            self._gateway.error(self._protocol, "failed", exc, bug=True)
            self.abort()
            return
        if self._write(replies, read, "recorded"):
            _alarms_acknowledged(results, read)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def _write(self, replies: list[bytes], read: float, path: str) -> bool:
        """Write the replies; True when written (their latency is told to the gateway's ``on_ack``)."""
        if replies and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(replies))
            self._gateway.on_ack(self._protocol, path, time.perf_counter() - read)
            return True
        return False

    def drop(self, why: str) -> int:
        """Close a connection past a deadline (the sweeper's); 1 if it was open."""
        self._pool.by_last_byte.pop(self, None)
        self._pool.by_frame_start.pop(self, None)
        if self._transport is None or self._transport.is_closing():
            return 0
        self._gateway.count(why, self._protocol)
        self._transport.abort()
        return 1

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._address is None:  # refused at the door: never counted in
            return
        pool = self._pool
        pool.by_last_byte.pop(self, None)
        pool.by_frame_start.pop(self, None)
        left = pool.by_address[self._address] - 1
        if left > 0:
            pool.by_address[self._address] = left
        else:
            del pool.by_address[self._address]
        self._address = None
        self._gateway.connections.discard(self)
        counters = self._gateway.counters
        counters.update({f"{self._protocol}.{k}": v for k, v in self._codec.counters.items()})
        self._transport = None


class _Datagrams(asyncio.DatagramProtocol):
    """A protocol over UDP (DC-09): one datagram, one message; the reply goes back to the sender's address.

    The listener's allow-list applies to datagrams too (a spoofed sender outside it is dropped, counted).
    """

    def __init__(self, gateway: Gateway, codec: DatagramCodec) -> None:
        self._gateway = gateway
        self._codec = codec
        self._transport: asyncio.DatagramTransport | None = None
        self.pool: _Pool | None = None
        self.in_flight = 0  # datagrams being recorded, each a task: bounded (MAX_DATAGRAMS_IN_FLIGHT)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        gateway, name = self._gateway, self.pool.name if self.pool is not None else "udp"
        if self.pool is not None and not self.pool.budget.allows(str(addr[0])):
            gateway.count("not_allowed_datagrams", name)
            return
        now, read = gateway._clock.now(), time.perf_counter()
        results = self._codec.datagram(data, now)
        gateway.frames[name] += len(results)
        quick = gateway.quick_replies(results, now)  # a link test needs nothing written: answered at once
        if quick is not None:
            self._send(quick, addr, read, "checkin")
            return
        if self.in_flight >= MAX_DATAGRAMS_IN_FLIGHT:  # a flood: dropped unanswered (a real device repeats)
            gateway.count("datagrams_dropped", name)
            return
        self.in_flight += 1
        gateway.spawn(self._reply(results, addr, name, read))

    async def _reply(self, results: list[Decoded], addr: tuple[str | int, ...], name: str, read: float) -> None:
        try:
            replies = await self._gateway.answer(results)
        except JournalError as exc:
            self._gateway.error(name, "unacknowledged_datagrams", exc)
            return
        except Exception as exc:  # a bug of ours: unanswered (the transmitter repeats), counted, traced once
            self._gateway.error(name, "failed_datagrams", exc, bug=True)
            return
        finally:
            self.in_flight -= 1
        if self._send(replies, addr, read, "recorded"):
            _alarms_acknowledged(results, read)

    def _send(self, replies: list[bytes], addr: tuple[str | int, ...], read: float, path: str) -> bool:
        if self._transport is None or not replies:
            return False
        for reply in replies:
            self._transport.sendto(reply, addr)
        name = self.pool.name if self.pool is not None else "udp"
        self._gateway.on_ack(name, path, time.perf_counter() - read)
        return True


def _alarms_acknowledged(results: list[Decoded], read: float) -> None:
    """Log each alarm of the frames just acknowledged, once, with its ids (the structured log's fields)."""
    for event in _events(results):
        if event.kind == "alarm":
            log.info(
                "gateway: %s alarm %s from device %s acknowledged after %.1f ms", event.protocol, event.alarm_type,
                event.device_id, (time.perf_counter() - read) * 1000,
                extra={"device_id": event.device_id, "protocol": event.protocol, "alarm_type": event.alarm_type},
            )  # fmt: skip
