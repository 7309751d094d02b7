"""Unknown and implausible devices: counted per interval, one alert per interval, jumps flagged and not applied.

The floods go through the real codecs and the core's intake as the gateway hands them over (the quick path
first, the full path when it declines), on a real SQLite journal and the manual clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from dispatch.clock import ManualClock
from dispatch.core import Core
from dispatch.devices import DeviceReport
from dispatch.entries import Note, PositionImplausible, UnknownAlarm, UnknownDevices
from dispatch.scopes import ALL, Reach
from dispatch.views import Views
from gateway.dc09 import Dc09Codec, build_message
from gateway.events import Decoded
from gateway.registry import protocols
from gateway.service import Gateway, Listener
from gateway.watch import WatchCodec
from tests.conftest import engine_of

HOME_FIX = (24.52, 117.71)


async def hand_over(core: Core, results: Sequence[Decoded], now: float) -> list[bytes]:
    """What the gateway does with one read: the quick path, else the intake (returns once durable); the replies."""
    events = tuple(event for decoded in results for event in decoded.events)
    if not core.intake.checkin(events, now):
        await core.intake.devices(events)
    return [decoded.reply for decoded in results if decoded.reply is not None]


async def kinds(core: Core, after: int) -> list[str]:
    return [e.kind for e in await core.journal.read(after, 100_000)]


def supervisors_view(core: Core) -> Views:
    engine = engine_of(core)
    return Views(engine.state, engine.directory, core.clock, engine.settings, unknown=engine.supervision.unknown)


async def test_a_flood_of_unknown_polls_writes_one_summary_per_interval(core: Core, clock: ManualClock) -> None:
    """100,000 NULL polls from distinct unknown accounts: every one ACKed, 5 entries in 5 minutes (was 100,000)."""
    codec = Dc09Codec(lambda account: None)
    head = core.journal.head_seq
    frames = [build_message("NULL", n % 10_000, f"9{n:06d}") for n in range(100_000)]
    started = time.perf_counter()
    acks = 0
    for n, frame in enumerate(frames):
        for reply in await hand_over(core, codec.datagram(frame, clock.now()), clock.now()):
            acks += b'"ACK"' in reply[:16]  # after LF, CRC and length
        if n % 20_000 == 19_999:  # five minutes of polls, a minute at a time
            clock.advance(60)
            await engine_of(core).tick()
    elapsed = time.perf_counter() - started
    assert acks == 100_000
    assert await kinds(core, head) == ["devices.unknown"] * 5
    summaries = [e.fact for e in await core.journal.read(head, 10)]
    assert all(isinstance(s, UnknownDevices) for s in summaries)
    first = summaries[0]
    assert isinstance(first, UnknownDevices)
    assert first.frames == 20_000 and first.alarms == 0 and not first.urgent
    assert [(c.protocol, c.kind, c.count) for c in first.counts] == [("sia-dc09", "checkin", 20_000)]
    assert first.distinct == 1000 and first.more  # the ids kept are capped (unknown_ids_kept); the rest counted
    assert len(first.sample) == 20 and first.sample[0] == "sia-dc09:9000000"
    print(f"100,000 unknown NULL polls through codec and intake: {elapsed:.1f} s ({100_000 / elapsed:,.0f}/s)")
    assert elapsed < 60  # generous: about 5 s on a quiet 2-core machine


async def test_unknown_sos_frames_open_nothing_and_raise_one_alert(core: Core, clock: ManualClock) -> None:
    """300 SOS frames from unknown accounts, and a registered pendant's SOS in the middle of them."""
    codec = Dc09Codec(lambda account: None)
    head = core.journal.head_seq
    unknown = [build_message("ADM-CID", 1, f"7{n:05d}", "1101 01 015") for n in range(300)]
    registered = build_message("ADM-CID", 2, "1234", "1101 01 015")
    now = clock.now()
    frames = [*unknown[:150], registered, *unknown[150:]]
    replies = await asyncio.gather(*(hand_over(core, codec.datagram(f, now), now) for f in frames))
    assert all(len(r) == 1 and b'"ACK"' in r[0] for r in replies)  # every frame acknowledged once recorded
    state = engine_of(core).state
    assert [i.device_id for i in state.incidents.values()] == ["1234"]  # only the registered pendant's
    written = await core.journal.read(head, 1000)
    alerts = [e for e in written if isinstance(e.fact, UnknownAlarm)]
    assert len(alerts) == 1 and alerts[0].fact.urgent and alerts[0].fact.alarm_type == "sos"
    assert alerts[0].seq < next(e.seq for e in written if e.kind == "incident.opened")  # durable before its ACK
    (alert,) = supervisors_view(core).unknown_alerts(ALL)
    assert (alert["alarms"], alert["alarm_types"], alert["urgent"], alert["closed"]) == (300, {"sos": 300}, True, False)
    assert len(alert["devices"]) == 20 and alert["devices"][0] == "sia-dc09:700000"
    assert supervisors_view(core).unknown_alerts(Reach(("*",))) == []  # an operator's reach: work only
    clock.advance(60)
    before = core.journal.head_seq
    await engine_of(core).tick()
    (summary,) = [e.fact for e in await core.journal.read(before, 10) if isinstance(e.fact, UnknownDevices)]
    assert isinstance(summary, UnknownDevices) and (summary.alarms, summary.urgent) == (300, True)
    assert [(c.kind, c.alarm_type, c.count) for c in summary.counts] == [("alarm", "sos", 300)]
    (closed,) = supervisors_view(core).unknown_alerts(ALL)
    assert closed["closed"] and closed["alarms"] == 300
    # the next interval: its own alert (a fire stands out), and still no incident
    for n in range(5):
        frame = build_message("ADM-CID", 3, f"7{n:05d}", "1110 01 015")
        await hand_over(core, codec.datagram(frame, clock.now()), clock.now())
    alerts = [e.fact for e in await core.journal.read(head, 1000) if isinstance(e.fact, UnknownAlarm)]
    assert [(a.alarm_type, a.urgent) for a in alerts] == [("sos", True), ("fire", True)]
    newest, older = supervisors_view(core).unknown_alerts(ALL)
    assert (newest["alarm_types"], newest["closed"], older["alarms"]) == ({"fire": 5}, False, 300)
    assert [i.device_id for i in state.incidents.values()] == ["1234"]


def watch_frame(kind: str, lat: float, lon: float, status: str = "00000000") -> bytes:
    """A 3G watch frame with a valid fix (``A``), as the watch of elder e2 sends it."""
    content = f"{kind},220414,134652,A,{lat:.6f},N,{lon:.6f},E,0.1,0.0,100,7,60,90,1000,50,{status},4,1,460,0"
    return f"[SG*8800000015*{len(content):04X}*{content}]".encode()


async def test_a_jump_of_700_km_is_flagged_not_applied_and_the_sos_is_raised_where_the_watch_was(
    core: Core, clock: ManualClock
) -> None:
    codec = WatchCodec()
    await hand_over(core, codec.receive_data(watch_frame("UD", *HOME_FIX), clock.now()), clock.now())
    status = engine_of(core).state.devices["8800000015"]
    assert (status.lat, status.lon) == HOME_FIX
    clock.advance(60)
    head = core.journal.head_seq
    far = (HOME_FIX[0] + 6.3, HOME_FIX[1])  # ~700 km north, a minute later: 42,000 km/h
    replies = await hand_over(core, codec.receive_data(watch_frame("AL", *far, "00010000"), clock.now()), clock.now())
    assert replies  # acknowledged: the SOS is recorded
    (incident,) = [i for i in engine_of(core).state.incidents.values() if i.device_id == "8800000015"]
    assert incident.alarm_type == "sos"
    assert (incident.lat, incident.lon, incident.location) == (*HOME_FIX, "reported")  # the last plausible fix
    assert (status.lat, status.lon) == HOME_FIX  # the elder's shown whereabouts did not move
    written = await core.journal.read(head, 100)
    assert "elder.position" not in [e.kind for e in written]
    flag = next(e for e in written if isinstance(e.fact, PositionImplausible))
    assert flag.incident_id == incident.incident_id and flag.fact.speed_kmh > 40_000
    assert 690_000 < flag.fact.distance_m < 710_000
    note = next(e.fact for e in written if isinstance(e.fact, Note))
    assert "position not believed" in note.text and "last plausible position" in note.text
    assert any("position not believed" in n.text for n in incident.notes)  # in the operator's detail


async def test_implausible_fixes_are_written_once_per_interval_and_a_plausible_move_is_applied(
    core: Core, clock: ManualClock
) -> None:
    codec = WatchCodec()
    await hand_over(core, codec.receive_data(watch_frame("UD", *HOME_FIX), clock.now()), clock.now())
    head = core.journal.head_seq
    for n in range(10):  # a watch shouting from 700 km away, every 5 s
        clock.advance(5)
        frame = watch_frame("UD", HOME_FIX[0] + 6.3, HOME_FIX[1] + n * 0.01)
        await hand_over(core, codec.receive_data(frame, clock.now()), clock.now())
    flags = [e.fact for e in await core.journal.read(head, 100)]
    assert [f.KIND for f in flags] == ["device.position_implausible"]
    status = engine_of(core).state.devices["8800000015"]
    assert (status.lat, status.lon) == HOME_FIX
    clock.advance(60)  # a minute later, the next one is written, counting those flagged meanwhile
    await hand_over(
        core, codec.receive_data(watch_frame("UD", HOME_FIX[0] + 6.3, HOME_FIX[1]), clock.now()), clock.now()
    )
    last = (await core.journal.read(core.journal.head_seq - 1, 1))[0].fact
    assert isinstance(last, PositionImplausible) and last.count == 10
    clock.advance(60)
    near = (HOME_FIX[0] + 0.009, HOME_FIX[1])  # 1 km in about two minutes: a car, believed
    head = core.journal.head_seq
    await hand_over(core, codec.receive_data(watch_frame("UD", *near), clock.now()), clock.now())
    assert await kinds(core, head) == ["elder.position"]
    assert (status.lat, status.lon) == near


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.replies.append(data)


async def test_over_real_udp_and_tcp_the_unknown_flood_is_acked_and_opens_nothing(core: Core) -> None:
    """End to end through the real gateway on loopback: 300 unknown SOS datagrams and the registered pendant's."""
    gateway = Gateway(
        core.intake, lambda account: None, core.clock, host="127.0.0.1",
        listeners=[Listener(protocols()["sia-dc09"], 0)],
    )  # fmt: skip
    await gateway.start()
    try:
        port = gateway.ports["sia-dc09"]
        head = core.journal.head_seq
        loop = asyncio.get_running_loop()
        transport, receiver = await loop.create_datagram_endpoint(_Receiver, remote_addr=("127.0.0.1", port))
        frames = [build_message("ADM-CID", 1, f"6{n:05d}", "1101 01 015") for n in range(300)]
        frames.insert(150, build_message("ADM-CID", 9, "1234", "1101 01 015"))
        for start in range(0, len(frames), 50):  # in waves, as transmitters send (UDP may drop a burst's tail)
            for frame in frames[start : start + 50]:
                transport.sendto(frame)
            for _ in range(500):  # up to 10 s a wave
                if len(receiver.replies) >= min(start + 50, len(frames)):
                    break
                await asyncio.sleep(0.02)
        transport.close()
        assert len(receiver.replies) == 301 and all(b'"ACK"' in r[:16] for r in receiver.replies)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(build_message("NULL", n, f"5{n:05d}") for n in range(50)))
        acks = b""
        while acks.count(b'"ACK"') < 50:
            acks += await asyncio.wait_for(reader.read(65536), 10)
        writer.close()
        state = engine_of(core).state
        assert [i.device_id for i in state.incidents.values()] == ["1234"]
        assert (await kinds(core, head)).count("devices.unknown_alarm") == 1
        interval = engine_of(core).supervision.unknown.current
        assert interval is not None and (interval.alarms, interval.frames) == (300, 350)
    finally:
        await gateway.stop()


async def test_once_the_interval_is_alerted_unknown_alarms_are_only_counted_on_the_quick_path(core: Core) -> None:
    """A flood of spoofed SOS from unknown accounts must not queue in the urgent rank beside a real SOS."""
    now = core.clock.now()
    ghost = [DeviceReport("sia-dc09", f"ghost{n}", "alarm", "CID:1101", alarm_type="sos") for n in range(3)]
    assert not core.intake.checkin([ghost[0]], now)  # the interval's first: the full path writes the alert
    await core.intake.devices([ghost[0]])
    head = core.journal.head_seq
    assert core.intake.checkin([ghost[1]], now) and core.intake.checkin([ghost[2]], now)  # counted, ACKed at once
    assert core.journal.head_seq == head and core.intake.waiting() == 0
    interval = engine_of(core).supervision.unknown.current
    assert interval is not None and interval.alarms == 3
