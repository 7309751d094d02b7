"""Device supervision: what devices say, and noticing when one falls silent.

What it owns
    Turning a protocol-neutral :class:`~dispatch.devices.DeviceReport` into journal entries (alarms,
    restores, positions, health readings, unknown devices) on the engine's behalf, and the check-in deadline of
    every registered device. Its state lives in the projection (``devices``, ``unknown_seen``, ``dedup``,
    ``conditions`` and the ``("checkin", device_id)`` timers), so a replay rebuilds what the journal says.

Rules
    1. A device that reports clears its own "missed check-in" condition; its deadline is then its last report
       plus its interval times the grace factor.
    2. Check-ins and links are not journaled one by one (a city's heartbeats would drown the record);
       positions are journaled at most every ``POSITION_EVERY_S`` or when the wearer moved
       ``POSITION_MOVE_M``; alarms, restores, health readings and unknown devices always are (an unknown
       device at most once per ``UNKNOWN_EVERY_S``).
    3. The quick path (:meth:`Supervision.checkin`) notes the time and battery of a routine check-in from a
       known device in good standing and moves its deadline: a synchronous dict write (the timer heap keeps its
       entry and re-queues it when it surfaces), so nothing can interleave with it and the timer loop sleeps
       until a device is really overdue. A tick that already took a deadline as due while a check-in came in
       re-checks the last report before raising anything (:meth:`Supervision.missed_checkin`). So the quick
       path needs no lock and cannot race a tick.
    4. A repeated message (its dedup key recorded within ``DEDUP_WINDOW_S``) is acknowledged again and not
       recorded twice.
    5. After a restart every device is given one full interval (plus grace) before it can be reported
       missing: routine check-ins are not in the journal, so the last one is not known.

Everything here except :meth:`Supervision.checkin` runs with the engine's lock held.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dispatch.commands import Alarm
from dispatch.devices import DEDUP_WINDOW_S, POSITION_EVERY_S, POSITION_MOVE_M, UNKNOWN_EVERY_S, DeviceReport
from dispatch.entries import DeviceUnknown, ElderHealth, ElderPosition
from dispatch.matching import geodesic_m
from dispatch.registry import Device, Elder
from dispatch.state import DeviceStatus
from dispatch.triage import rule

if TYPE_CHECKING:
    from dispatch.engine import Engine

QUICK_KINDS = frozenset({"checkin", "login"})


class Supervision:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._state = engine.state
        self._directory = engine.directory
        self._grace = engine.settings.checkin_grace

    def start(self, now: float) -> None:
        """Arm every registered device's check-in deadline one full interval from now (rule 5)."""
        for device in self._directory.devices.values():
            self._state.timers.set(("checkin", device.device_id), now + device.checkin_s * self._grace)

    # -- the quick path ---------------------------------------------------------------------------

    def checkin(self, reports: Sequence[DeviceReport], now: float) -> bool:
        """Note routine check-ins that need nothing written; False when any report needs the full path.

        A link or heartbeat from a known device without an open "missed check-in" condition only updates
        its last-seen time and battery (rule 3). Anything else -- an unknown device, a condition to clear, any
        other kind of report -- returns False before anything is noted, and the caller takes the full path.
        This runs for every heartbeat of a city's devices: two passes over the reports, no allocation.
        """
        devices, conditions = self._directory.devices, self._state.conditions
        for report in reports:
            device = devices.get(report.device_id)
            if (
                report.kind not in QUICK_KINDS
                or device is None
                or (report.device_id, "missed_checkin", device.drill) in conditions
            ):
                return False
        statuses, timers, grace = self._state.devices, self._state.timers, self._grace
        for report in reports:
            device_id = report.device_id
            status = statuses.get(device_id)
            if status is None:
                status = self._state.device(device_id)
            status.last_seen = now
            if report.battery is not None:
                status.battery = report.battery
            if timers.set(("checkin", device_id), now + devices[device_id].checkin_s * grace):
                self._engine.timers_changed.set()  # its first report since it was registered: a new deadline
        return True

    def _seen(self, device: Device, battery: int | None, now: float) -> DeviceStatus:
        status = self._state.device(device.device_id)
        status.last_seen = now
        if battery is not None:
            status.battery = battery
        return status

    # -- the full path ----------------------------------------------------------------------------

    async def report(self, report: DeviceReport) -> None:
        engine = self._engine
        now = engine.clock.now()
        actor = f"device:{report.device_id}"
        device = self._directory.devices.get(report.device_id)
        if device is None:
            await self._unknown(report, actor, now)
            return
        drill = device.drill
        status = self._seen(device, report.battery, now)
        self._state.timers.set(("checkin", device.device_id), now + device.checkin_s * self._grace)
        engine.clear_condition(device.device_id, "missed_checkin", "device reported again", actor, drill)
        if self._repeated(report, now):
            return
        if report.lat is not None and report.lon is not None:
            self._position(device, report.lat, report.lon, status, now)
        if report.kind == "alarm" and report.alarm_type is not None:
            elder = self._directory.elders.get(device.elder_id)
            await engine.open_alarm(_alarm(report, actor, elder, drill))
        elif report.kind == "restore" and report.alarm_type is not None:
            outcome = f"device reported restore ({report.code})"
            engine.clear_condition(device.device_id, report.alarm_type, outcome, actor, drill)
        elif report.kind == "health":
            engine.emit(ElderHealth(device.elder_id, device.device_id, dict(report.detail)), actor=actor, drill=drill)

    def _repeated(self, report: DeviceReport, now: float) -> bool:
        """The device repeats a message we recorded but whose ACK it did not see in time (rule 4)."""
        seen = self._state.dedup.get(report.dedup) if report.dedup is not None else None
        return seen is not None and now - seen < DEDUP_WINDOW_S

    async def _unknown(self, report: DeviceReport, actor: str, now: float) -> None:
        """A device nobody registered. Its alarms open an incident with a clock and no elder or location, so it
        lands in front of an operator, flagged for manual dispatch; anything else is noted once an hour."""
        if report.kind == "alarm" and report.alarm_type is not None and not rule(report.alarm_type).technical:
            if not self._repeated(report, now):
                note = f"alarm from unregistered {report.protocol} device {report.device_id} ({report.code})"
                await self._engine.open_alarm(_alarm(report, actor, None, False, note))
            return
        last = self._state.unknown_seen.get(f"{report.protocol}:{report.device_id}")
        if last is None or now - last >= UNKNOWN_EVERY_S:
            self._engine.emit(
                DeviceUnknown(report.protocol, report.device_id, report.code, report.kind, report.lat, report.lon),
                actor=actor,
            )

    def _position(self, device: Device, lat: float, lon: float, status: DeviceStatus, now: float) -> None:
        status.lat, status.lon, status.pos_at = lat, lon, now
        last = status.journaled_pos
        if (
            last is None
            or now - last[2] >= POSITION_EVERY_S
            or geodesic_m(last[0], last[1], lat, lon) >= POSITION_MOVE_M
        ):
            self._engine.emit(
                ElderPosition(device.elder_id, device.device_id, lat, lon),
                actor=f"device:{device.device_id}",
                drill=device.drill,
            )

    async def missed_checkin(self, device_id: str, now: float) -> None:
        """A device's check-in deadline passed: re-arm it if the device was heard from since, else raise."""
        device = self._directory.devices.get(device_id)
        if device is None or (device_id, "missed_checkin", device.drill) in self._state.conditions:
            return
        status = self._state.devices.get(device_id)
        last_seen = status.last_seen if status is not None else None
        if last_seen is not None:
            due = last_seen + device.checkin_s * self._grace
            if due > now:  # heard from as the timer fired (rule 3), or its interval was lengthened
                self._state.timers.set(("checkin", device_id), due)
                return
        note = f"no report from {device.protocol} device {device_id} within {device.checkin_s} s"
        if last_seen is not None:
            note += f" (last seen {round(now - last_seen)} s ago)"
        elder = self._directory.elders.get(device.elder_id)
        alarm = Alarm("missed_checkin", "supervision", "system", elder, device_id, note=note, drill=device.drill)
        await self._engine.open_alarm(alarm)


def _alarm(report: DeviceReport, actor: str, elder: Elder | None, drill: bool, note: str | None = None) -> Alarm:
    assert report.alarm_type is not None
    return Alarm(
        report.alarm_type, "device", actor, elder, report.device_id, report.lat, report.lon, note=note, drill=drill,
        dedup=report.dedup, code=report.code, zone=report.zone,
    )  # fmt: skip
