"""The PBX link (gateway.amilink) against a hostile or broken manager interface, over real TCP on 127.0.0.1.

Each peer here is a small asyncio server written for the test: it says no banner, or a banner and then
nothing, answers the Login under another ActionID, sends one 10 MB message, floods events, reports calls
by the hundred thousand, or resets every connection. The link must drop what is not AMI, never buffer
without bound, keep the event loop answering others, back off between attempts, and keep following calls
after the core refuses one event.

``eventually`` (tests.conftest) only bounds how long a test may hang; nothing here asserts a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from dispatch.clock import ManualClock
from dispatch.commands import CallEvent
from dispatch.errors import InvalidInput
from gateway.amilink import PbxLink
from tests.conftest import eventually

BANNER = b"Asterisk Call Manager/7.0.3\r\n"
Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def block(*lines: tuple[str, str]) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in lines) + b"\r\n"


async def read_action(reader: asyncio.StreamReader) -> dict[str, str]:
    """One action the link sent (its headers, the last value of a key kept)."""
    raw = await reader.readuntil(b"\r\n\r\n")
    found: dict[str, str] = {}
    for line in raw.decode().split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            found[key] = value
    return found


async def login(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Banner, then accept the Login and answer the link's list actions with empty lists."""
    writer.write(BANNER)
    action = await read_action(reader)
    writer.write(
        block(("Response", "Success"), ("ActionID", action["ActionID"]), ("Message", "Authentication accepted"))
    )
    listing = await read_action(reader)  # CoreShowChannels
    writer.write(block(("Response", "Success"), ("ActionID", listing["ActionID"]), ("EventList", "start")))
    writer.write(
        block(("Event", "CoreShowChannelsComplete"), ("ActionID", listing["ActionID"]), ("EventList", "Complete"))
    )
    await writer.drain()


async def answer_pings(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while True:
            action = await read_action(reader)
            writer.write(block(("Response", "Success"), ("ActionID", action.get("ActionID", "")), ("Ping", "Pong")))
            await writer.drain()


@dataclass
class Peer:
    serve: Serve
    connects: int = 0
    server: asyncio.Server | None = None
    port: int = 0

    async def start(self) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connects += 1
            try:
                await self.serve(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]


@dataclass
class Rig:
    clock: ManualClock = field(default_factory=ManualClock)
    events: list[CallEvent] = field(default_factory=list)
    peers: list[Peer] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def peer(self, serve: Serve) -> Peer:
        peer = Peer(serve)
        await peer.start()
        self.peers.append(peer)
        return peer

    def link(self, peer: Peer, **options: Any) -> PbxLink:
        async def collect(event: CallEvent) -> None:
            self.events.append(event)

        async def no_wait(seconds: float) -> None:
            await asyncio.sleep(0)

        options.setdefault("on_event", collect)
        options.setdefault("sleep", no_wait)
        options.setdefault("jitter", lambda: 1.0)
        link = PbxLink(
            host="127.0.0.1",
            port=peer.port,
            username="anxin",
            secret="s3cret",
            clock=self.clock,
            extensions={"8101": "op1"},
            **options,
        )
        self.tasks.append(asyncio.create_task(link.run()))
        return link


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    rig = Rig()
    yield rig
    for task in rig.tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for peer in rig.peers:
        assert peer.server is not None
        peer.server.close()


async def hold(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(1 << 16):
            pass


async def test_no_banner_and_silence_times_the_login_out(rig: Rig) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await hold(reader)

    peer = await rig.peer(serve)
    link = rig.link(peer, action_timeout=0.05)
    await eventually(lambda: link.reconnects >= 2, "two attempts", within=30)
    assert not link.connected and "PeerTimeout" in link.status()["last_error"]


async def test_a_banner_then_silence_times_the_login_out(rig: Rig) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        await hold(reader)

    peer = await rig.peer(serve)
    link = rig.link(peer, action_timeout=0.05)
    await eventually(lambda: link.reconnects >= 2, "two attempts", within=30)
    assert not link.connected and "PeerTimeout" in link.status()["last_error"]


async def test_a_login_answered_under_another_action_id_is_no_login(rig: Rig) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        await read_action(reader)
        writer.write(
            block(("Response", "Success"), ("ActionID", "someone-else"), ("Message", "Authentication accepted"))
        )
        await hold(reader)

    peer = await rig.peer(serve)
    link = rig.link(peer, action_timeout=0.05)
    await eventually(lambda: link.reconnects >= 1, "an attempt", within=30)
    assert not link.connected and "PeerTimeout" in link.status()["last_error"]


async def test_a_10_mb_message_of_short_lines_drops_the_link(rig: Rig) -> None:
    sent = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await login(reader, writer)
        line = b"Variable: X=" + b"y" * 100 + b"\r\n"
        chunk = b"Event: Newchannel\r\n" + line * 1000
        with contextlib.suppress(ConnectionError):
            for _ in range(100):  # about 10 MB, never ended by an empty line
                writer.write(chunk)
                await writer.drain()
        sent.set()
        await hold(reader)

    async def stay_down(seconds: float) -> None:
        await asyncio.Event().wait()  # one attempt is enough here

    peer = await rig.peer(serve)
    link = rig.link(peer, sleep=stay_down)
    await eventually(lambda: "FramingError" in link.status()["last_error"], "the message refused", within=30)
    assert rig.events == [] and link.tracker.counters["events"] == 0


def newchannel(n: int) -> bytes:
    uid = f"1700000000.{n}"
    return block(
        ("Event", "Newchannel"),
        ("Channel", f"PJSIP/trunk-{n:08x}"),
        ("ChannelState", "4"),
        ("ChannelStateDesc", "Ring"),
        ("CallerIDNum", f"138{n:08d}"),
        ("Exten", "12349"),
        ("Uniqueid", uid),
        ("Linkedid", uid),
    )


def hangup(n: int) -> bytes:
    uid = f"1700000000.{n}"
    return block(
        ("Event", "Hangup"),
        ("Channel", f"PJSIP/trunk-{n:08x}"),
        ("Uniqueid", uid),
        ("Linkedid", uid),
        ("Cause", "16"),
        ("Cause-txt", "Normal Clearing"),
    )


async def test_a_flood_of_50000_events_leaves_the_loop_answering(rig: Rig) -> None:
    """While 50,000 events pour in, another connection on the same loop is still answered (an echo)."""
    calls = 25_000

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await login(reader, writer)
        for start in range(0, calls, 500):
            writer.write(b"".join(newchannel(n) + hangup(n) for n in range(start, start + 500)))
            await writer.drain()
        await answer_pings(reader, writer)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    echo_server = await asyncio.start_server(echo, "127.0.0.1", 0)
    peer = await rig.peer(serve)
    link = rig.link(peer)
    await eventually(lambda: link.events_in > 0, "the flood begins", within=30)
    reader, writer = await asyncio.open_connection(*echo_server.sockets[0].getsockname()[:2])
    writer.write(b"alarm\n")
    assert await reader.readline() == b"alarm\n"
    during = link.events_in
    writer.close()
    echo_server.close()
    await eventually(lambda: len(rig.events) == 2 * calls, "every call rang and ended", within=30)
    assert during < 2 * calls  # answered while the flood was still being read
    assert link.tracker.calls == {} and link.status()["undelivered"] == 0


async def test_100000_calls_that_never_end_stay_bounded_in_the_pending_list(rig: Rig) -> None:
    """With hotline queues configured, a call is held back until it joins one: channels that never join (other
    departments' calls) and never hang up (their Hangup lost) must not pile up without bound."""
    calls = 100_000

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await login(reader, writer)
        for start in range(0, calls, 1000):
            writer.write(b"".join(newchannel(n) for n in range(start, start + 1000)))
            await writer.drain()
        await answer_pings(reader, writer)

    peer = await rig.peer(serve)
    link = rig.link(peer, queues=["hotline"])
    await eventually(lambda: link.events_in >= calls, "every Newchannel read", within=30)
    assert len(link.tracker._pending) <= 10_000
    assert rig.events == []


async def test_pending_calls_whose_channels_are_gone_are_forgotten_at_the_rebuild(rig: Rig) -> None:
    """A Newchannel held back (queues configured) whose Hangup was lost while the link was down is forgotten
    when the rebuild shows no channel for it."""
    first = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await login(reader, writer)
        if not first.is_set():
            writer.write(newchannel(1) + newchannel(2))
            await writer.drain()
            first.set()
            return  # the link drops: the Hangups are lost
        await answer_pings(reader, writer)

    peer = await rig.peer(serve)
    link = rig.link(peer, queues=["hotline"])
    await eventually(lambda: peer.connects >= 2 and link.connected, "connected again", within=30)
    await eventually(lambda: link.tracker._pending == {}, "the lost channels forgotten", within=30)


async def test_a_peer_that_resets_every_connection_is_knocked_at_with_growing_waits(rig: Rig) -> None:
    waits: list[float] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        writer.transport.abort()

    async def sleep(seconds: float) -> None:  # the wait is recorded, not spent
        waits.append(seconds)
        await asyncio.sleep(0)

    peer = await rig.peer(serve)
    link = rig.link(peer, sleep=sleep, backoff_s=0.01, backoff_max_s=0.16, jitter=lambda: 1.0)
    await eventually(lambda: len(waits) >= 8, "eight attempts", within=30)
    assert waits[:6] == [0.01, 0.02, 0.04, 0.08, 0.16, 0.16]
    assert peer.connects <= len(waits) + 1  # one connect per wait: no hot loop
    assert not link.connected


async def test_a_call_event_the_core_refuses_does_not_stop_the_hotline(rig: Rig) -> None:
    """The core refusing one event (InvalidInput: it will refuse it again) is logged and passed; the calls
    after it are still followed. Only a failing journal is worth waiting for."""
    taken: list[CallEvent] = []

    async def core(event: CallEvent) -> None:
        if event.caller == "13800000001":
            raise InvalidInput("a call the core will never take")
        taken.append(event)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await login(reader, writer)
        writer.write(newchannel(1) + hangup(1) + newchannel(2) + hangup(2))
        await writer.drain()
        await answer_pings(reader, writer)

    peer = await rig.peer(serve)
    link = rig.link(peer, on_event=core)
    await eventually(lambda: len(taken) == 2, "the next call followed", within=30)
    assert [(e.caller, e.event) for e in taken] == [("13800000002", "ringing"), ("13800000002", "ended")]
    assert link.status()["refused"] == 2


async def test_a_channel_list_that_never_completes_is_bounded(rig: Rig) -> None:
    """CoreShowChannels answered with channel after channel and never the Complete: the list the link gathers
    is cut at a bound (no PBX carries that many channels) and the link dropped, not grown until the timeout."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        action = await read_action(reader)
        writer.write(block(("Response", "Success"), ("ActionID", action["ActionID"])))
        listing = await read_action(reader)
        writer.write(block(("Response", "Success"), ("ActionID", listing["ActionID"]), ("EventList", "start")))
        item = block(("Event", "CoreShowChannel"), ("ActionID", listing["ActionID"]), ("Channel", "PJSIP/x-1"))
        with contextlib.suppress(ConnectionError):
            for _ in range(200):
                writer.write(item * 1000)
                await writer.drain()
        await hold(reader)

    async def stay_down(seconds: float) -> None:
        await asyncio.Event().wait()

    peer = await rig.peer(serve)
    link = rig.link(peer, action_timeout=60.0, sleep=stay_down)
    await eventually(lambda: "list" in link.status()["last_error"], "the endless list refused", within=30)
    assert not link.connected
