"""The PBX link (gateway.amilink) over real TCP on 127.0.0.1 against the simulated Asterisk (simulators.pbx)
and against hostile peers: the five hotline flows, a drop mid-call and the rebuild, out-of-order events, a
refused login, garbage, a 1 MB line, a silent peer, a journal that refuses events.

Waits between reconnects go through an injected ``sleep`` (a gate the test opens), never a real wait; the
``eventually`` helper (tests.conftest) only bounds how long a test may hang, it asserts no duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dispatch.clock import ManualClock
from dispatch.commands import CallEvent, Dial
from dispatch.errors import ConfigError, JournalError
from gateway.amilink import PbxLink
from gateway.errors import OriginateRefused, PbxNotConnected
from gateway.pbx import LINK_DOWN_CAUSE
from simulators.pbx import Pbx
from tests.conftest import eventually, settings_for

EXTENSIONS = {"8101": "op1", "8102": "op2"}


@dataclass
class Gate:
    """The link's injected sleep: records each wait, and returns only when the test lets it."""

    waits: list[float] = field(default_factory=list)
    open: asyncio.Event = field(default_factory=asyncio.Event)
    free: bool = False

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if not self.free:
            await self.open.wait()
            self.open.clear()
        await asyncio.sleep(0)


@dataclass
class Rig:
    pbx: Pbx
    port: int
    clock: ManualClock
    events: list[CallEvent] = field(default_factory=list)
    links: list[tuple[PbxLink, asyncio.Task[None]]] = field(default_factory=list)

    def link(self, port: int | None = None, **options: Any) -> PbxLink:
        async def collect(event: CallEvent) -> None:
            self.events.append(event)

        options.setdefault("on_event", collect)
        options.setdefault("sleep", Gate(free=True))
        options.setdefault("jitter", lambda: 1.0)
        link = PbxLink(
            host="127.0.0.1",
            port=self.port if port is None else port,
            username="anxin",
            secret="s3cret",
            clock=self.clock,
            extensions=EXTENSIONS,
            backoff_s=1.0,
            backoff_max_s=30.0,
            **options,
        )
        self.links.append((link, asyncio.create_task(link.run())))
        return link

    def of(self, call_id: str) -> list[str]:
        return [e.event for e in self.events if e.call_id == call_id]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = ManualClock()
    pbx = Pbx(clock=clock.now)
    port = await pbx.start()
    rig = Rig(pbx, port, clock)
    yield rig
    for _, task in rig.links:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await pbx.close()


async def connected(link: PbxLink) -> None:
    await eventually(lambda: link.connected)


@pytest.mark.parametrize(
    ("flow", "expected"),
    [
        ("answered", ["ringing", "queued", "answered", "ended"]),
        ("abandoned", ["ringing", "queued", "ended"]),
        ("transferred", ["ringing", "queued", "answered", "transferred", "ended"]),
        ("missed", ["ringing", "ended"]),
    ],
)
async def test_inbound_flows(rig: Rig, flow: str, expected: list[str]) -> None:
    link = rig.link()
    await connected(link)
    play = rig.pbx.call(flow, caller="13800138000", extension="8101", to="8102")
    await play.run()
    call_id = f"pbx-{play.linkedid}"
    await eventually(lambda: rig.of(call_id)[-1:] == ["ended"])
    assert rig.of(call_id) == expected
    by_kind = {e.event: e for e in rig.events}
    assert by_kind["ringing"].caller == "13800138000" and by_kind["ringing"].line == "12349"
    assert all(e.actor == "system:pbx" and e.direction == "in" for e in rig.events)
    assert all(e.at == rig.clock.now() for e in rig.events)  # the PBX's Timestamp
    if "answered" in by_kind:
        assert (by_kind["answered"].extension, by_kind["answered"].operator) == ("8101", "op1")
    if "transferred" in by_kind:
        assert (by_kind["transferred"].extension, by_kind["transferred"].operator) == ("8102", "op2")
    if "queued" in by_kind:
        assert by_kind["queued"].queue == "hotline"
    assert by_kind["ended"].cause == ("19 No answer" if flow == "missed" else "16 Normal Clearing")
    assert link.status()["events_in"] > len(expected)


async def test_call_back_through_originate(rig: Rig) -> None:
    link = rig.link()
    await connected(link)
    await link.originate(Dial("call-42", "8101", "13900139000", "op1"))
    await eventually(lambda: rig.of("call-42")[-1:] == ["ended"])
    assert rig.of("call-42") == ["ringing", "answered", "ended"]
    assert {e.direction for e in rig.events} == {"out"}
    answered = rig.events[1]
    assert (answered.caller, answered.extension, answered.operator) == ("13900139000", "8101", "op1")
    originate = next(a for a in rig.pbx.actions if ("Action", "Originate") in a)
    assert ("Channel", "PJSIP/8101") in originate and ("Variable", "ANXIN_CALL=call-42") in originate


@pytest.mark.parametrize(("plan", "cause"), [("busy", "17 User busy"), ("fail", "originate failed: no answer")])
async def test_call_back_not_answered(rig: Rig, plan: str, cause: str) -> None:
    rig.pbx.originate_plan = plan
    link = rig.link()
    await connected(link)
    await link.originate(Dial("call-43", "8101", "13900139000", "op1"))
    await eventually(lambda: rig.of("call-43")[-1:] == ["ended"])
    assert rig.events[-1].cause == cause
    assert "answered" not in rig.of("call-43")


async def test_originate_refused_and_not_connected(rig: Rig) -> None:
    rig.pbx.originate_plan = "refuse"
    link = rig.link()
    with pytest.raises(PbxNotConnected):
        await link.originate(Dial("call-1", "8101", "139", "op1"))
    await connected(link)
    with pytest.raises(OriginateRefused, match="Originate failed"):
        await link.originate(Dial("call-44", "8101", "13900139000", "op1"))
    assert link.tracker.calls == {} and rig.events == []


async def test_drop_mid_call_and_rebuild(rig: Rig) -> None:
    gate = Gate()
    link = rig.link(sleep=gate)
    await connected(link)
    talking = rig.pbx.call("answered", caller="13800000001")
    waiting = rig.pbx.call("answered", caller="13800000002", extension="8102")
    for _ in range(2):
        talking.step()
        waiting.step()  # arrive, enqueue
    a, b = f"pbx-{talking.linkedid}", f"pbx-{waiting.linkedid}"
    await eventually(lambda: rig.of(a) == rig.of(b) == ["ringing", "queued"])
    rig.pbx.drop()  # mid-call; while the link is down:
    await eventually(lambda: not link.connected)
    rig.clock.advance(40)
    talking.step()
    talking.step()  # the operator at 8101 rings and answers
    rig.clock.advance(20)
    await waiting.run()  # the second call is answered and ends
    started = rig.pbx.call("answered", caller="13800000003")
    started.step()
    started.step()  # a third call arrives and waits in the queue
    gate.open.set()  # reconnect
    await eventually(lambda: len(rig.of(b)) == 3 and len(rig.of(f"pbx-{started.linkedid}")) == 2)
    assert rig.of(a) == ["ringing", "queued", "answered"]
    answered = [e for e in rig.events if e.call_id == a][-1]
    assert (answered.extension, answered.operator, answered.at) == ("8101", "op1", rig.clock.now() - 20)
    assert [e for e in rig.events if e.call_id == b][-1].cause == LINK_DOWN_CAUSE
    assert rig.of(f"pbx-{started.linkedid}") == ["ringing", "queued"]
    assert link.status()["reconnects"] == 1 and link.status()["connected"]
    await talking.run()
    await eventually(lambda: rig.of(a)[-1:] == ["ended"])
    assert rig.of(a) == ["ringing", "queued", "answered", "ended"]


async def test_out_of_order_events(rig: Rig) -> None:
    link = rig.link()
    await connected(link)
    rig.pbx.hold("QueueCallerJoin")
    play = rig.pbx.call("answered")
    for _ in range(4):
        play.step()  # arrive, enqueue (its QueueCallerJoin held back), ring, answer
    rig.pbx.release()  # queued arrives after answered
    rig.pbx.swap_next()
    play.step()  # hangups, two of them swapped
    call_id = f"pbx-{play.linkedid}"
    await eventually(lambda: rig.of(call_id)[-1:] == ["ended"])
    assert rig.of(call_id) == ["ringing", "answered", "ended"]
    assert link.tracker.counters["out_of_order"] >= 1


async def test_refused_login_backs_off_at_the_max(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.pbx.reject_logins = True
    gate = Gate()
    link = rig.link(sleep=gate)
    for n in range(1, 4):
        await eventually(lambda n=n: len(gate.waits) == n)  # type: ignore[misc]
        gate.open.set()
    assert gate.waits[:3] == [30.0, 30.0, 30.0]
    assert "LoginRefused" in link.status()["last_error"] and "anxin" in link.status()["last_error"]
    assert all("s3cret" not in r.getMessage() for r in caplog.records)
    assert any("anxin" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    rig.pbx.reject_logins = False
    gate.free = True
    gate.open.set()
    await connected(link)


async def test_connection_refused_backs_off_exponentially(rig: Rig) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    gate = Gate()
    link = rig.link(port=free_port, sleep=gate)
    for n in range(7):
        await eventually(lambda n=n: len(gate.waits) == n + 1)  # type: ignore[misc]
        gate.open.set()
    assert gate.waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert not link.connected and "Error" in link.status()["last_error"]


async def hostile_peer(payload: bytes) -> tuple[asyncio.Server, int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
            await reader.read(1 << 20)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "NotAnAmiPeer"),
        (b"\xff\xfe\x00garbage" * 100, "NotAnAmiPeer"),
        (b"Asterisk Call Manager/7.0.3\r\nResponse: Success\r\nJunk: " + b"x" * (1 << 20), "FramingError"),
    ],
)
async def test_garbage_and_a_1mb_line_drop_the_link(rig: Rig, payload: bytes, error: str) -> None:
    server, port = await hostile_peer(payload)
    gate = Gate()
    link = rig.link(port=port, sleep=gate)
    try:
        await eventually(lambda: len(gate.waits) == 1)
        assert error in link.status()["last_error"]
        assert not link.connected
        gate.open.set()
        await eventually(lambda: len(gate.waits) == 2)  # it tries again, with backoff
        assert gate.waits == [1.0, 2.0]
    finally:
        server.close()
        await server.wait_closed()


async def test_a_silent_peer_is_dropped_by_the_keepalive(rig: Rig) -> None:
    gate = Gate()
    link = rig.link(sleep=gate, ping_interval=0.01, ping_timeout=0.05)
    await connected(link)
    rig.pbx.silent = True
    await eventually(lambda: len(gate.waits) == 1)
    assert "Pong" in link.status()["last_error"]
    rig.pbx.silent = False
    gate.open.set()
    await connected(link)
    assert link.status()["reconnects"] == 1


async def test_a_refusing_journal_is_retried_in_order(rig: Rig) -> None:
    taken: list[CallEvent] = []
    refusals = iter([True, True, False] + [False] * 100)

    async def journal(event: CallEvent) -> None:
        if next(refusals):
            raise JournalError("the journal is not writable")
        taken.append(event)

    waits = Gate(free=True)
    link = rig.link(on_event=journal, sleep=waits)
    await connected(link)
    play = rig.pbx.call("answered")
    await play.run()
    await eventually(lambda: len(taken) == 4)
    assert [e.event for e in taken] == ["ringing", "queued", "answered", "ended"]
    assert waits.waits == [1.0, 2.0]  # two refusals, retried with backoff
    assert link.status()["undelivered"] == 0


async def test_originate_when_the_link_drops_before_the_answer(rig: Rig) -> None:
    gate = Gate()
    link = rig.link(sleep=gate)
    await connected(link)
    rig.pbx.silent = True
    dialling = asyncio.create_task(link.originate(Dial("call-45", "8101", "13900139000", "op1")))
    await eventually(lambda: any(("Action", "Originate") in a for a in rig.pbx.actions))
    rig.pbx.drop()
    with pytest.raises(PbxNotConnected):
        await dialling
    await eventually(lambda: len(gate.waits) == 1)
    assert not link.connected and link.status()["connected"] is False


async def test_from_settings(rig: Rig, tmp_path: Path) -> None:
    secret = tmp_path / "pbx.secret"
    secret.write_text("s3cret\n", encoding="utf-8")
    settings = settings_for(
        tmp_path,
        pbx_host="127.0.0.1",
        pbx_port=rig.port,
        pbx_username="anxin",
        pbx_secret_file=secret,
        pbx_extensions=EXTENSIONS,
        pbx_queues=["hotline"],
        pbx_backoff_s=0.5,
    )
    taken: list[CallEvent] = []

    async def collect(event: CallEvent) -> None:
        taken.append(event)

    link = PbxLink.from_settings(settings, on_event=collect, clock=rig.clock)
    assert (link.tracker.queues, link.backoff_s) == (frozenset({"hotline"}), 0.5)
    task = asyncio.create_task(link.run())
    try:
        await connected(link)
        await rig.pbx.call("answered").run()
        await eventually(lambda: len(taken) == 4)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    with pytest.raises(ConfigError):
        PbxLink.from_settings(settings_for(tmp_path), on_event=collect, clock=rig.clock)


@pytest.mark.parametrize(
    "bad",
    [
        {"pbx_extensions": {"8101\r\nAction: Command": "op1"}},
        {"pbx_extensions": {"8101\x00": "op1"}},
        {"pbx_caller_id": "Anxin <8000>\r\nAction: Logoff"},
        {"pbx_context": "from-internal\x00"},
        {"pbx_channel": "PJSIP/{ext}"},  # a placeholder the link cannot fill
        {"pbx_channel": "PJSIP/8101"},  # no {extension}: every call would ring one phone
        {"pbx_channel": "PJSIP/{extension}\r\n"},
        {"pbx_username": "anxin\r\nSecret: x"},
        {"pbx_secret": "s3cret\x00"},
    ],
)
def test_settings_an_originate_or_a_login_cannot_carry_are_refused_at_start(
    tmp_path: Path, bad: dict[str, Any]
) -> None:
    """A setting that would put a control character into the Login or an Originate (or cannot name the operator's
    phone) is refused when the server starts, not found out at 3 a.m. on the first click-to-call."""
    settings = settings_for(tmp_path, **{"pbx_host": "127.0.0.1", "pbx_username": "anxin", "pbx_secret": "s", **bad})

    async def nowhere(event: CallEvent) -> None:
        pass

    with pytest.raises(ConfigError) as refused:
        PbxLink.from_settings(settings, on_event=nowhere, clock=ManualClock())
    assert "s3cret" not in str(refused.value)
