"""The device fleet against small receivers built on the gateway's own codecs: ACKs, repeats, give-ups.

Each receiver here is a real protocol peer (the gateway's sans-I/O codec behind a socket) that can be told
to swallow the first ACKs, as a network that loses replies would. The device must repeat the *same*
message (same DC-09 sequence number and content, same GT06 serial, same watch frame) until acknowledged.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from gateway.dc09 import Dc09Codec
from gateway.events import Decoded
from gateway.gt06 import Gt06Codec
from gateway.watch import WatchCodec
from simulators.devices import Behaviour, DeviceSpec, Endpoints, FleetPlan, SimDevice, Tally, plan_events
from simulators.wire import Dc09Dialect, Gt06Dialect, WatchDialect

HOME = (24.5080, 117.6960)
KEY = "00112233445566778899AABBCCDDEEFF"
FAST = Behaviour(ack_timeout_s=0.3, max_attempts=3)


class Receiver:
    """A receiver that decodes with a real codec and drops the replies to the first ``drop`` alarm frames."""

    def __init__(self, codec: Callable[[], Any], drop: int) -> None:
        self.codec, self.drop = codec, drop
        self.alarms: list[Decoded] = []  # every alarm frame received, repeats included
        self.connections = 0

    def outcome(self, decoded: Decoded) -> bytes | None:
        if any(e.kind == "alarm" for e in decoded.events):
            self.alarms.append(decoded)
            if len(self.alarms) <= self.drop:
                return None
        return decoded.reply

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        codec = self.codec()
        while data := await reader.read(4096):
            for decoded in codec.receive_data(data, time.time()):
                reply = self.outcome(decoded)
                if reply is not None:
                    writer.write(reply)
        writer.close()


@asynccontextmanager
async def tcp(receiver: Receiver) -> AsyncIterator[int]:
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def device(spec: DeviceSpec, port: int, behaviour: Behaviour = FAST) -> tuple[SimDevice, Tally]:
    tally = Tally()
    endpoints = Endpoints("127.0.0.1", {spec.protocol: port})
    return SimDevice(spec, endpoints, behaviour, tally, random.Random(1)), tally


def dc09_spec(key: str | None = None, udp: bool = False) -> DeviceSpec:
    return DeviceSpec("1234AB", "sia-dc09", "e1", HOME, 600.0, aes_key=key, udp=udp)


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "aes"])
async def test_dc09_alarm_repeated_with_the_same_sequence_until_acknowledged(key: str | None) -> None:
    # the receiver holds the key the device has (a keyed account speaks encrypted only, gateway.dc09 rule 7)
    receiver = Receiver(lambda: Dc09Codec(lambda account: bytes.fromhex(key) if key else None), drop=1)
    async with tcp(receiver) as port:
        sim, tally = device(dc09_spec(key), port)
        record = await sim.alarm("sos")
        await sim.link.close()
    assert record.acknowledged and len(record.sends) == 2
    assert record.sends[0] <= record.sends[1] <= (record.acked_at or 0)
    first, second = (d.events[0] for d in receiver.alarms)
    assert first.dedup == second.dedup  # same account, sequence number and content: the receiver's dedup key
    assert first.detail["sequence"] == second.detail["sequence"] == record.key.removeprefix("seq ")
    assert first.alarm_type == record.alarm_type == "sos"
    assert receiver.connections == 2  # the device reconnected before repeating
    assert tally.alarms == [record]


async def test_dc09_over_udp_repeats_the_datagram_until_acknowledged() -> None:
    receiver = Receiver(lambda: None, drop=2)
    codec = Dc09Codec(lambda account: None)

    class Endpoint(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
            for decoded in codec.datagram(data, time.time()):
                reply = receiver.outcome(decoded)
                if reply is not None:
                    self.transport.sendto(reply, addr)  # type: ignore[attr-defined]

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Endpoint, local_addr=("127.0.0.1", 0))
    try:
        sim, _ = device(dc09_spec(udp=True), transport.get_extra_info("sockname")[1])
        record = await sim.alarm("fall")
        await sim.link.close()
    finally:
        transport.close()
    assert record.acknowledged and len(record.sends) == 3
    assert record.alarm_type == "medical"  # a DC-09 dialler reports a fall detector as Contact ID 100
    assert len({d.events[0].dedup for d in receiver.alarms}) == 1


async def test_watch_alarm_repeats_the_same_frame() -> None:
    receiver = Receiver(WatchCodec, drop=1)
    async with tcp(receiver) as port:
        sim, _ = device(DeviceSpec("8800000015", "watch", "e1", HOME, 600.0), port)
        record = await sim.alarm("fall")
        await sim.link.close()
    assert record.acknowledged and len(record.sends) == 2
    first, second = (d.events[0] for d in receiver.alarms)
    assert (first.alarm_type, first.lat, first.lon) == (second.alarm_type, second.lat, second.lon) == ("fall", *HOME)


async def test_gt06_logs_in_again_and_repeats_with_the_same_serial() -> None:
    receiver = Receiver(Gt06Codec, drop=1)
    async with tcp(receiver) as port:
        sim, _ = device(DeviceSpec("864717003283581", "gt06", "e1", HOME, 600.0), port)
        record = await sim.alarm("sos")
        await sim.link.close()
    assert record.acknowledged and len(record.sends) == 2
    first, second = (d.events[0] for d in receiver.alarms)
    assert first.detail["serial"] == second.detail["serial"] == int(record.key.removeprefix("serial "))
    assert first.device_id == second.device_id == "864717003283581"  # the login came first each time
    assert receiver.connections == 2


async def test_an_alarm_nobody_acknowledges_is_given_up_after_max_attempts() -> None:
    receiver = Receiver(WatchCodec, drop=99)
    async with tcp(receiver) as port:
        sim, _ = device(DeviceSpec("8800000015", "watch", "e1", HOME, 600.0), port)
        record = await sim.alarm("sos")
        await sim.link.close()
    assert not record.acknowledged and len(record.sends) == FAST.max_attempts == len(receiver.alarms)


async def test_checkins_are_sent_once_and_counted() -> None:
    receiver = Receiver(Gt06Codec, drop=0)
    async with tcp(receiver) as port:
        spec = DeviceSpec("864717003283581", "gt06", "e1", HOME, checkin_s=0.2)
        sim, tally = device(spec, port, Behaviour(ack_timeout_s=0.5))
        stop = asyncio.Event()
        running = asyncio.create_task(sim.run(stop))
        await asyncio.sleep(0.7)
        stop.set()
        sim.wake()
        await running
    assert tally.checkins["sent"] >= 2 and tally.checkins["acknowledged"] == tally.checkins["sent"]


def test_dialects_keep_one_message_per_sequence_number() -> None:
    dc09 = Dc09Dialect("1234")
    keys = {dc09.checkin(50).key, dc09.alarm("sos").key, dc09.alarm("sos").key}
    assert len(keys) == 3
    gt06 = Gt06Dialect("864717003283581", HOME)
    assert gt06.alarm("sos").key != gt06.alarm("sos").key
    watch = WatchDialect("88", HOME)
    alarm = watch.alarm("sos", now=1_700_000_000.0)
    assert alarm.frame(1.0) == alarm.frame(2.0)  # repeats are the same bytes


def test_plans_are_deterministic_and_bursts_hit_their_share() -> None:
    specs = [DeviceSpec(f"d{i}", "watch", f"e{i}", HOME, 600.0) for i in range(200)]
    plan = FleetPlan({"sos": 30.0, "fall": 10.0}, bursts=((600.0, 0.3, 60.0, 900.0),), silent_share=0.05)
    events = plan_events(plan, specs, random.Random(9), 0.0, 3600.0)
    assert events == plan_events(plan, specs, random.Random(9), 0.0, 3600.0)
    mains = [e for e in events if e[2] == "mains_loss"]
    assert len(mains) == 60 and len({e[1] for e in mains}) == 60
    assert all(600.0 <= at < 660.0 for at, _, _ in mains)
    assert sum(e[2] == "restore:mains_loss" for e in events) == 60
    assert sum(e[2].startswith("silent:") for e in events) == 10
    assert events == sorted(events)
