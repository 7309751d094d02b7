"""A fleet of simulated pendants, watches and trackers reporting to the real gateway ports.

What it owns
    One :class:`SimDevice` per registered device: it checks in at its interval, sends the alarms it is
    given, drains its battery (and says so when it runs low), goes silent when told, and keeps a
    :class:`AlarmRecord` of every alarm: when each attempt went out and when the ACK came back. The
    :class:`DeviceFleet` plans what happens to whom (:func:`plan_events`) and runs the devices.

Rules
    1. Network only: frames are built by :mod:`simulators.wire` and carried by :mod:`simulators.links`.
    2. An alarm is repeated, unchanged (same sequence number / serial / content), until it is acknowledged
       or ``max_attempts`` went out, ``ack_timeout_s`` apart, as real devices do. A check-in is sent once:
       a device that misses a check-in ACK simply checks in again at its next interval.
    3. Every duration the plan gives is in drill time; the device runs them ``speedup`` times faster. The
       ACK timeout is not scaled: it is about the network and the server, which the speed-up does not touch.
    4. Bounded: after ``stop`` a device finishes the alarm in flight (at most ``max_attempts`` attempts),
       closes its connection and returns.
    5. Deterministic plans: one ``random.Random(seed)`` draws every planned event, in a fixed order.
    6. Failover: a device with backup receivers (:attr:`Endpoints.backups`) moves on to the next receiver
       after ``switch_after`` attempts in a row without an ACK, and stays there (:mod:`simulators.links`
       rule 5). An alarm's repeats keep counting against the same ``max_attempts``, whichever receiver each
       goes to; its record says which receiver acknowledged it (``acked_by``).

Never
    Never import the server's packages; never connect anywhere but this machine (links refuse it).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import heapq
import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from simulators.links import Link, UdpLink
from simulators.wire import Dc09Dialect, Dialect, Gt06Dialect, Message, WatchDialect

log = logging.getLogger("anxin.sim.devices")

PERSON_KINDS = ("sos", "fall", "medical")


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A registered device, as the simulator needs to know it."""

    device_id: str
    protocol: str  # "sia-dc09" | "watch" | "gt06"
    elder_id: str
    home: tuple[float, float]
    checkin_s: float  # drill-time interval between check-ins
    aes_key: str | None = None  # hex, DC-09 only
    udp: bool = False  # DC-09 over UDP
    sia: bool = False  # DC-09 SIA-DCS data instead of Contact ID


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where devices report: the primary gateway's ports and, for failover, backup gateways on the same host."""

    host: str
    ports: dict[str, int]  # protocol -> gateway port
    backups: tuple[dict[str, int], ...] = ()  # one dict per backup gateway, in the order devices try them

    def receivers(self, protocol: str) -> tuple[int, ...]:
        """The ports a device of ``protocol`` reports to, primary first (index = ``AlarmRecord.acked_by``)."""
        return tuple(gateway[protocol] for gateway in (self.ports, *self.backups))


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How every device of a fleet behaves (rule 3: durations in drill time, except the ACK timeout)."""

    speedup: float = 1.0
    ack_timeout_s: float = 5.0
    max_attempts: int = 5
    switch_after: int = 2  # attempts in a row without an ACK before a device tries its next receiver
    drain_per_hour: float = 1.0
    low_battery_at: int = 15


@dataclass(slots=True)
class AlarmRecord:
    """One alarm (or restore) a device sent: the attempts and the ACK, in wall-clock seconds."""

    number: int
    device_id: str
    protocol: str
    transport: str  # "tcp" | "udp"
    kind: str  # what happened: sos, fall, medical, low_battery, mains_loss, restore
    alarm_type: str  # what the server should record
    key: str  # sequence number / serial as sent
    sends: list[float] = field(default_factory=list)
    acked_at: float | None = None
    acked_by: int | None = None  # the receiver that acknowledged it: 0 the primary, 1.. the backups

    @property
    def acknowledged(self) -> bool:
        return self.acked_at is not None

    def as_dict(self) -> dict[str, object]:
        return {
            "number": self.number, "device_id": self.device_id, "protocol": self.protocol,
            "transport": self.transport, "kind": self.kind, "alarm_type": self.alarm_type, "key": self.key,
            "sends": [round(t, 4) for t in self.sends],
            "acked_at": round(self.acked_at, 4) if self.acked_at is not None else None,
            "acked_by": self.acked_by,
        }  # fmt: skip


@dataclass(slots=True)
class Tally:
    """What the whole fleet did."""

    alarms: list[AlarmRecord] = field(default_factory=list)
    checkins: Counter[str] = field(default_factory=Counter)  # sent, acknowledged, skipped_silent

    def record(self, spec: DeviceSpec, kind: str, message: Message) -> AlarmRecord:
        assert message.alarm_type is not None
        record = AlarmRecord(
            len(self.alarms) + 1, spec.device_id, spec.protocol, "udp" if spec.udp else "tcp",
            kind, message.alarm_type, message.key,
        )  # fmt: skip
        self.alarms.append(record)
        return record


def read_city_devices(
    devices_csv: Path, *, rng: random.Random, limit: int | None = None, udp_share: float = 0.0
) -> list[DeviceSpec]:
    """The devices of a generated city (:mod:`simulators.city`): ids, keys, intervals, homes from elders.csv.

    DC-09 pendants speak Contact ID or SIA DC-03 at random (half each), a ``udp_share`` of them over UDP.
    """
    with devices_csv.with_name("elders.csv").open(encoding="utf-8", newline="") as handle:
        homes = {row["elder_id"]: (float(row["lat"]), float(row["lon"])) for row in csv.DictReader(handle)}
    with devices_csv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))[:limit]
    specs = []
    for row in rows:
        dc09 = row["protocol"] == "sia-dc09"
        specs.append(
            DeviceSpec(
                row["device_id"], row["protocol"], row["elder_id"], homes[row["elder_id"]], float(row["checkin_s"]),
                aes_key=row["aes_key"] or None, udp=dc09 and rng.random() < udp_share, sia=dc09 and rng.random() < 0.5,
            )
        )  # fmt: skip
    return specs


def dialect_for(spec: DeviceSpec) -> Dialect:
    if spec.protocol == "sia-dc09":
        key = bytes.fromhex(spec.aes_key) if spec.aes_key else None
        return Dc09Dialect(spec.device_id, key=key, sia=spec.sia)
    if spec.protocol == "watch":
        return WatchDialect(spec.device_id, spec.home)
    if spec.protocol == "gt06":
        return Gt06Dialect(spec.device_id, spec.home)
    raise ValueError(f"no simulated {spec.protocol} device")


def link_for(spec: DeviceSpec, dialect: Dialect, endpoints: Endpoints, *, switch_after: int = 2) -> Link:
    port, *backups = endpoints.receivers(spec.protocol)
    if spec.udp:
        return UdpLink(endpoints.host, port, backups=backups, switch_after=switch_after)
    return Link(spec.protocol, endpoints.host, port, login=dialect.login(), backups=backups, switch_after=switch_after)


class SimDevice:
    """One device's life: check-ins, scheduled events, battery. See the module docstring."""

    def __init__(
        self, spec: DeviceSpec, endpoints: Endpoints, behaviour: Behaviour, tally: Tally, rng: random.Random
    ) -> None:
        self.spec, self.behaviour, self.tally = spec, behaviour, tally
        self.dialect = dialect_for(spec)
        self.link = link_for(spec, self.dialect, endpoints, switch_after=behaviour.switch_after)
        self.interval = spec.checkin_s / behaviour.speedup  # wall seconds between check-ins
        self.battery0 = rng.uniform(behaviour.low_battery_at + 1.0, 100.0)
        self.phase = rng.uniform(0.0, self.interval)
        self.silent_until = 0.0
        self.battery_reported = False
        self._events: list[tuple[float, int, str]] = []  # heap of (wall due, order, what)
        self._order = 0
        self._wake = asyncio.Event()
        self._started = time.time()

    def schedule(self, at: float, what: str) -> None:
        """Do ``what`` at wall time ``at``: an alarm kind, ``restore:<type>`` or ``silent:<seconds>``."""
        self._order += 1
        heapq.heappush(self._events, (at, self._order, what))
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def battery(self, now: float) -> int:
        drained = self.behaviour.drain_per_hour * (now - self._started) * self.behaviour.speedup / 3600.0
        return max(0, min(100, round(self.battery0 - drained)))

    async def run(self, stop: asyncio.Event) -> None:
        self._started = time.time()
        next_checkin = self._started + self.phase
        try:
            while not stop.is_set():
                now = time.time()
                due = min(next_checkin, self._events[0][0]) if self._events else next_checkin
                if due > now:
                    await self._sleep(due - now)
                elif self._events and self._events[0][0] <= now:
                    await self._event(heapq.heappop(self._events)[2])
                else:
                    next_checkin = max(next_checkin + self.interval, now)
                    await self._checkin(now)
        finally:
            await self.link.close()

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _event(self, what: str) -> None:
        verb, _, detail = what.partition(":")
        if verb == "silent":
            self.silent_until = time.time() + float(detail)
            await self.link.close()
        elif verb == "restore":
            message = self.dialect.restore(detail)
            if message is not None:
                await self.deliver(self.tally.record(self.spec, "restore", message), message)
        else:
            await self.alarm(verb)

    async def alarm(self, kind: str) -> AlarmRecord:
        now = time.time()
        message = self.dialect.alarm(kind, battery=self.battery(now), now=now)
        record = self.tally.record(self.spec, kind, message)
        await self.deliver(record, message)
        return record

    async def _checkin(self, now: float) -> None:
        if now < self.silent_until:
            self.tally.checkins["skipped_silent"] += 1
            return
        battery = self.battery(now)
        self.tally.checkins["sent"] += 1
        if await self._attempt(self.dialect.checkin(battery), None) is not None:
            self.tally.checkins["acknowledged"] += 1
        if battery < self.behaviour.low_battery_at and not self.battery_reported:
            self.battery_reported = True
            await self.alarm("low_battery")

    async def deliver(self, record: AlarmRecord, message: Message) -> None:
        """Rule 2: repeat the same message until it is acknowledged or the attempts run out (rule 6: on
        whichever receiver the link is on for each attempt)."""
        for _ in range(self.behaviour.max_attempts):
            acked = await self._attempt(message, record)
            if acked is not None:
                record.acked_at, record.acked_by = acked, self.link.receiver
                return
        log.warning("%s %s: %s %s never acknowledged", self.spec.protocol, self.spec.device_id, record.kind, record.key)

    async def _attempt(self, message: Message, record: AlarmRecord | None) -> float | None:
        timeout = self.behaviour.ack_timeout_s
        if not await self.link.open(timeout):
            await asyncio.sleep(timeout)  # the gateway is unreachable: wait as long as for an ACK
            return None
        now = time.time()
        if record is not None:
            record.sends.append(now)
        reply = await self.link.exchange(message.frame(now), message, timeout)
        return time.time() if reply is not None else None


# -- the plan -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FleetPlan:
    """What happens to the fleet, in drill time (rates per drill hour)."""

    rates: dict[str, float]  # alarm kind -> per drill hour, for the whole fleet
    bursts: tuple[tuple[float, float, float, float | None], ...] = ()  # (at, share, within, restore_after)
    silent_share: float = 0.0
    silent_at: float = 600.0
    silent_for: float = 1800.0


def plan_events(
    plan: FleetPlan, specs: Sequence[DeviceSpec], rng: random.Random, start: float, end: float
) -> list[tuple[float, int, str]]:
    """Events in the drill-time window [start, end): (drill second, device index, what), in time order."""
    events: list[tuple[float, int, str]] = []
    if not specs:
        return events
    for kind, per_hour in plan.rates.items():
        at = start
        while per_hour > 0:
            at += rng.expovariate(per_hour / 3600.0)
            if at >= end:
                break
            events.append((at, rng.randrange(len(specs)), kind))
    for at, share, within, restore_after in plan.bursts:
        if not start <= at < end:
            continue
        for index in rng.sample(range(len(specs)), round(share * len(specs))):
            when = at + rng.uniform(0.0, within)
            events.append((when, index, "mains_loss"))
            if restore_after is not None:
                events.append((when + restore_after, index, "restore:mains_loss"))
    if plan.silent_share and start <= plan.silent_at < end:
        # only devices whose silence outlasts their check-in interval (and the grace) can be noticed
        able = [i for i, spec in enumerate(specs) if spec.checkin_s * 1.3 < plan.silent_for]
        for index in rng.sample(able, min(len(able), round(plan.silent_share * len(specs)))):
            events.append((plan.silent_at + rng.uniform(0.0, 60.0), index, f"silent:{plan.silent_for}"))
    return sorted(events)


class DeviceFleet:
    """Runs one :class:`SimDevice` per spec, and hands them the planned events."""

    def __init__(
        self,
        specs: Sequence[DeviceSpec],
        endpoints: Endpoints,
        behaviour: Behaviour,
        plan: FleetPlan,
        *,
        seed: int,
    ) -> None:
        self.plan, self.behaviour = plan, behaviour
        self.tally = Tally()
        self._rng = random.Random(seed)
        self.devices = [
            SimDevice(spec, endpoints, behaviour, self.tally, random.Random(self._rng.getrandbits(64)))
            for spec in specs
        ]
        self.planned: list[tuple[float, int, str]] = []

    async def run(self, stop: asyncio.Event, *, duration: float | None = None, window: float = 3600.0) -> None:
        """Run until ``stop`` is set; plan events for ``duration`` drill seconds (None: until stopped)."""
        log.info("device fleet: %d devices, speed-up %g", len(self.devices), self.behaviour.speedup)
        tasks = [asyncio.create_task(d.run(stop), name=f"device {d.spec.device_id}") for d in self.devices]
        try:
            await self._direct(stop, duration, window)
        finally:
            for device in self.devices:
                device.wake()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _direct(self, stop: asyncio.Event, duration: float | None, window: float) -> None:
        """Plan one window of drill time at a time, scheduling each event on its device (rule 5)."""
        t0 = time.time()
        planned_to = 0.0
        specs = [device.spec for device in self.devices]
        while not stop.is_set() and (duration is None or planned_to < duration):
            end = planned_to + window if duration is None else min(duration, planned_to + window)
            for at, index, what in plan_events(self.plan, specs, self._rng, planned_to, end):
                self.planned.append((at, index, what))
                self.devices[index].schedule(t0 + at / self.behaviour.speedup, what)
            planned_to = end
            wake_at = t0 + (planned_to - window / 10) / self.behaviour.speedup
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, wake_at - time.time()))
        await stop.wait()
