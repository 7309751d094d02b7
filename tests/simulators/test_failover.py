"""Devices fail over to a backup receiver: the switching rule, and a real primary killed with SIGKILL.

The first tests put two small receivers on loopback (the gateway's own codecs behind sockets, as in
test_devices): a primary that swallows every alarm's ACK (a GT06 one still takes the logins), refuses
connections, or lets datagrams fall on a closed port, and a backup that answers. The device must take the
same message to the backup after ``switch_after`` misses, and stay there. The last test runs a small fleet
(DC-09 over TCP and UDP, a watch, a GT06 tracker) against two real ``anxin serve`` processes holding the same
city, kills the primary mid-run, and reads the backup's journal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.dc09 import Dc09Codec
from gateway.gt06 import Gt06Codec
from simulators import city
from simulators.devices import (
    Behaviour,
    DeviceFleet,
    DeviceSpec,
    Endpoints,
    FleetPlan,
    SimDevice,
    Tally,
    read_city_devices,
)
from simulators.links import Receivers
from tests.conftest import free_port
from tests.process import ServerProcess, import_city
from tests.simulators.test_devices import HOME, Receiver, dc09_spec, tcp

FAILOVER = Behaviour(ack_timeout_s=0.3, max_attempts=4, switch_after=2)


def device(spec: DeviceSpec, primary: int, backup: int, behaviour: Behaviour = FAILOVER) -> tuple[SimDevice, Tally]:
    """A device whose receivers are ``primary`` and one backup, for its protocol."""
    tally = Tally()
    endpoints = Endpoints("127.0.0.1", {spec.protocol: primary}, backups=({spec.protocol: backup},))
    return SimDevice(spec, endpoints, behaviour, tally, random.Random(1)), tally


def test_receivers_switch_after_misses_in_a_row_round_robin_and_stay_on_the_one_that_answers() -> None:
    receivers = Receivers((5000, 5001, 5002), switch_after=2)
    assert not receivers.missed() and receivers.port == 5000
    receivers.answered()  # an ACK in between: the misses were not in a row
    assert not receivers.missed() and receivers.port == 5000
    assert receivers.missed() and (receivers.current, receivers.port) == (1, 5001)
    receivers.answered()
    assert not receivers.missed() and receivers.current == 1  # it stays where it was answered
    assert receivers.missed() and receivers.current == 2
    assert not receivers.missed() and receivers.missed() and receivers.current == 0  # round robin
    alone = Receivers((5000,))
    assert not any(alone.missed() for _ in range(5)) and alone.port == 5000


def test_endpoints_without_backups_are_what_they_were() -> None:
    plain = Endpoints("127.0.0.1", {"watch": 5013})
    assert plain.backups == () and plain.receivers("watch") == (5013,)
    both = Endpoints("127.0.0.1", {"watch": 5013}, backups=({"watch": 6013},))
    assert both.receivers("watch") == (5013, 6013)


async def test_an_alarm_the_primary_never_acks_goes_unchanged_to_the_backup_and_the_device_stays() -> None:
    primary = Receiver(lambda: Dc09Codec(lambda account: None), drop=99)  # receives, never ACKs an alarm
    backup = Receiver(lambda: Dc09Codec(lambda account: None), drop=0)
    async with tcp(primary) as primary_port, tcp(backup) as backup_port:
        sim, _ = device(dc09_spec(), primary_port, backup_port)
        first = await sim.alarm("sos")
        second = await sim.alarm("sos")
        await sim.link.close()
    assert first.acknowledged and first.acked_by == 1 and len(first.sends) == 3
    assert len(primary.alarms) == 2 and len(backup.alarms) == 2
    repeats = [d.events[0] for d in (*primary.alarms, backup.alarms[0])]
    assert len({event.dedup for event in repeats}) == 1  # the same sequence number and content, all three times
    assert repeats[0].detail["sequence"] == first.key.removeprefix("seq ")
    assert second.acked_by == 1 and len(second.sends) == 1  # no hop back to the primary
    assert first.as_dict()["acked_by"] == 1


async def test_a_refused_primary_sends_a_gt06_tracker_to_the_backup_where_it_logs_in_and_checks_in() -> None:
    backup = Receiver(Gt06Codec, drop=0)
    refused = free_port()  # nobody listens there
    async with tcp(backup) as backup_port:
        spec = DeviceSpec("864717003283581", "gt06", "e1", HOME, checkin_s=0.2)
        behaviour = dataclasses.replace(FAILOVER, ack_timeout_s=0.2)
        sim, tally = device(spec, refused, backup_port, behaviour)
        record = await sim.alarm("sos")
        stop = asyncio.Event()
        running = asyncio.create_task(sim.run(stop))
        await asyncio.sleep(0.7)
        stop.set()
        sim.wake()
        await running
    assert record.acked_by == 1 and len(record.sends) == 1  # the refused attempts never went out
    assert backup.alarms[0].events[0].device_id == spec.device_id  # it logged in on the backup first
    assert tally.checkins["sent"] >= 2 and tally.checkins["acknowledged"] == tally.checkins["sent"]


async def test_a_gt06_primary_that_takes_the_login_but_never_acks_the_alarm_is_left_for_the_backup() -> None:
    primary, backup = Receiver(Gt06Codec, drop=99), Receiver(Gt06Codec, drop=0)
    async with tcp(primary) as primary_port, tcp(backup) as backup_port:
        sim, _ = device(DeviceSpec("864717003283581", "gt06", "e1", HOME, 600.0), primary_port, backup_port)
        record = await sim.alarm("sos")
        await sim.link.close()
    assert record.acked_by == 1 and len(record.sends) == 3  # the logins' ACKs did not reset the misses
    serials = {d.events[0].detail["serial"] for d in (*primary.alarms, *backup.alarms)}
    assert serials == {int(record.key.removeprefix("serial "))} and len(primary.alarms) == 2


async def test_dc09_over_udp_switches_to_the_backup_port() -> None:
    codec = Dc09Codec(lambda account: None)
    heard: list[str | None] = []

    class Backup(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
            for decoded in codec.datagram(data, time.time()):
                heard.extend(event.dedup for event in decoded.events)
                if decoded.reply is not None:
                    self.transport.sendto(decoded.reply, addr)  # type: ignore[attr-defined]

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Backup, local_addr=("127.0.0.1", 0))
    silent = free_port()  # no UDP receiver there: the datagrams go nowhere
    try:
        sim, _ = device(dc09_spec(udp=True), silent, transport.get_extra_info("sockname")[1])
        record = await sim.alarm("sos")
        await sim.link.close()
    finally:
        transport.close()
    assert record.acked_by == 1 and len(record.sends) == 3  # two datagrams lost, the third acknowledged
    assert len(heard) == 1 and heard[0] is not None and f":{record.key.removeprefix('seq ')}:" in heard[0]


# -- two real servers, the primary killed ---------------------------------------------------------------


def serve(tmp_path: Path, name: str, files: dict[str, Path]) -> tuple[ServerProcess, dict[str, int]]:
    """``anxin serve`` on its own data folder holding the city, with its three device ports on loopback."""
    data = import_city(tmp_path / name / "data", files)
    ports = {"sia-dc09": free_port(), "watch": free_port(), "gt06": free_port()}
    env = {
        "ANXIN_DC09_PORT": str(ports["sia-dc09"]), "ANXIN_WATCH_PORT": str(ports["watch"]),
        "ANXIN_GT06_PORT": str(ports["gt06"]), "ANXIN_GATEWAY_HOST": "127.0.0.1",
    }  # fmt: skip
    return ServerProcess(data, **env).start(), ports


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[dict[str, Path], list[tuple[ServerProcess, dict[str, int]]]]]:
    files = city.generate(tmp_path / "city", seed=5, elders=40, caregivers=5, clinics=1)
    servers: list[tuple[ServerProcess, dict[str, int]]] = []
    try:
        servers.append(serve(tmp_path, "primary", files))
        servers.append(serve(tmp_path, "backup", files))
        yield files, servers
    finally:
        for server, _ in servers:
            server.stop()


def fleet_specs(devices_csv: Path) -> list[DeviceSpec]:
    """One device of each kind: DC-09 over TCP, DC-09 over UDP, a watch, a GT06; a check-in every 5 s of wall."""
    specs = read_city_devices(devices_csv, rng=random.Random(1))
    dc09 = [s for s in specs if s.protocol == "sia-dc09"]
    chosen = [
        dc09[0], dataclasses.replace(dc09[1], udp=True),
        next(s for s in specs if s.protocol == "watch"), next(s for s in specs if s.protocol == "gt06"),
    ]  # fmt: skip
    return [dataclasses.replace(spec, checkin_s=300.0) for spec in chosen]


def recorded_alarms(db: Path) -> list[dict[str, Any]]:
    """The alarms a server recorded (opened an incident or joined one), read from its SQLite journal."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT payload FROM journal WHERE kind IN ('incident.opened', 'incident.alarm_attached') ORDER BY seq"
        )
        return [json.loads(row[0]) for row in rows]


@pytest.mark.process
async def test_when_the_primary_is_killed_every_later_alarm_is_acknowledged_by_the_backup(
    pair: tuple[dict[str, Path], list[tuple[ServerProcess, dict[str, int]]]],
) -> None:
    files, [(primary, primary_ports), (backup, backup_ports)] = pair
    specs = fleet_specs(files["devices"])
    endpoints = Endpoints("127.0.0.1", primary_ports, backups=(backup_ports,))
    behaviour = Behaviour(speedup=60.0, ack_timeout_s=1.5, max_attempts=6)
    fleet = DeviceFleet(specs, endpoints, behaviour, FleetPlan({"sos": 60.0, "fall": 30.0}), seed=3)
    stop = asyncio.Event()
    running = asyncio.create_task(fleet.run(stop))
    await asyncio.sleep(4.0)
    for device in fleet.devices:  # one alarm each on the primary, whatever the plan drew
        device.schedule(time.time(), "sos")
    await asyncio.sleep(2.0)
    await asyncio.to_thread(primary.kill)
    killed = time.time()
    for device in fleet.devices:  # and one each right after the kill
        device.schedule(killed + 0.2, "sos")
    await asyncio.sleep(10.0)
    stop.set()
    await running
    backup.stop()

    alarms = fleet.tally.alarms
    assert alarms and all(a.acknowledged for a in alarms), [a.as_dict() for a in alarms if not a.acknowledged]
    before = [a for a in alarms if a.acked_at is not None and a.acked_at < killed]
    assert {a.device_id for a in before} == {s.device_id for s in specs} and {a.acked_by for a in before} == {0}
    after = [a for a in alarms if a.sends[0] >= killed]
    assert {a.device_id for a in after} == {s.device_id for s in specs}, "every kind of device sent after the kill"
    assert all(a.acked_by == 1 for a in after), [a.as_dict() for a in after if a.acked_by != 1]
    udp_first = next(a for a in alarms if a.transport == "udp" and a.acked_by == 1)
    assert len(udp_first.sends) >= 2, "the datagram lost on the dead primary went out again, to the backup"

    recorded = recorded_alarms(backup.data / "anxin.sqlite3")
    dedups = [r["dedup"] for r in recorded if r.get("dedup")]
    for alarm in (a for a in alarms if a.acked_by == 1):
        if alarm.protocol == "sia-dc09":  # the backup recorded the very message the device built: same sequence
            sequence = alarm.key.removeprefix("seq ")
            assert sum(f"dc09:{alarm.device_id}:{sequence}:" in d for d in dedups) == 1, alarm.as_dict()
    for spec in specs:
        acked = sum(a.device_id == spec.device_id and a.acked_by == 1 for a in alarms)
        assert sum(r.get("device_id") == spec.device_id for r in recorded) >= acked, spec
