"""Device supervision: what devices say, noticing when one falls silent, and devices nobody registered.

What it owns
    Turning a protocol-neutral :class:`~dispatch.devices.DeviceReport` into journal entries (alarms,
    restores, positions, health readings, summaries of unknown devices) on the engine's behalf, and the
    check-in deadline of every registered device. Its state lives in the projection (``devices``, ``dedup``,
    ``conditions`` and the ``("checkin", device_id)`` timers), so a replay rebuilds what the journal says;
    except the tally of the current interval's unknown devices (:class:`~dispatch.devices.UnknownTally`) and
    when each device's last implausible fix was written, which are in memory.

Rules
    1. A device that reports clears its own "missed check-in" condition; its deadline is then its last report
       plus its interval times the grace factor.
       A report its codec marks ``authenticated: False`` (a plain DC-09 frame for an account that has a key)
       is recorded as what it is, a tamper alarm, and is no sign of life: it neither resets the deadline nor
       clears the condition, so a forger cannot hide a dead unit.
    2. Check-ins and links are not journaled one by one (a city's heartbeats would drown the record);
       positions are journaled at most every ``POSITION_EVERY_S`` or when the wearer moved
       ``POSITION_MOVE_M``; alarms, restores and health readings always are.
    3. The quick path (:meth:`Supervision.checkin`) notes the time and battery of a routine check-in from a
       known device in good standing and moves its deadline: a synchronous dict write (the timer heap keeps its
       entry and re-queues it when it surfaces), so nothing can interleave with it and the timer loop sleeps
       until a device is really overdue. A tick that already took a deadline as due while a check-in came in
       re-checks the last report before raising anything (:meth:`Supervision.missed_checkin`). So the quick
       path needs no lock and cannot race a tick. Routine traffic of unknown devices is counted there too, and
       so are their alarms once the interval's alert is written (rule 6): a spoofed flood never queues beside
       a real SOS.
    4. A repeated message (its dedup key recorded within ``DEDUP_WINDOW_S``) is acknowledged again and not
       recorded twice.
    5. After a restart every device is given one full interval (plus grace) before it can be reported
       missing: routine check-ins are not in the journal, so the last one is not known.
    6. Unknown devices (an id not in the registry, any protocol) are not registered elders: a flood of them --
       a misconfigured batch of transmitters, a scanner, spoofed UDP -- must fill neither the disk nor the
       operators' screens. What they say is counted in memory and written as ONE ``devices.unknown`` entry per
       ``unknown_interval_s`` (counts per protocol, kind and alarm type, distinct ids -- at most
       ``unknown_ids_kept`` named in memory, the rest counted -- a sample, first and last seen). They open no
       incident. Their alarms (SOS, fall, medical, fire, inactivity ...) raise at most one alert per interval
       for supervisors: the interval's first alarm is written as ``devices.unknown_alarm`` and is durable
       before that frame is acknowledged; the later ones of the interval are only counted (acknowledged at
       once) and appear in the interval's summary and, live, in the supervisors' view
       (:meth:`dispatch.views.Views.unknown_alerts`). The trade-off: a crash loses at most one interval of
       counts, never the first alarm, and never anything of a registered device.
    7. Unknown devices' frames are acknowledged. SIA DC-09 has a transmitter repeat an unacknowledged message
       and then fail over to its backup path: refusing a flood of spoofed or misconfigured accounts would only
       multiply it (every refused frame comes back), and would tell a spoofer which accounts are registered.
       The cost: a real but unregistered device's SOS is not handed to a backup receiver; the supervisors'
       alert (account, alarm type, counts; an SOS or fire marked urgent) is what brings it to a person, who
       registers the device or calls the account's owner. A centre that wants refusal instead needs the
       gateway to answer DUH for a refusal the core raises; this module does not refuse.
    8. A registered device's fix that implies a speed above ``max_speed_kmh`` from its last accepted fix
       (measured over at least ``MIN_FIX_GAP_S``) is flagged, not applied: the elder's whereabouts and the
       matching do not move; ``device.position_implausible`` is written at most once per device per
       ``unknown_interval_s`` (counting the fixes flagged meanwhile). An alarm carrying such a fix is raised
       all the same (an SOS is never dropped), placed at the last accepted fix, or at home without one; the
       flag and a note go into its incident for the operator. The speed falls as time passes, so a wearer who
       really travelled (a flight) is believed once the time since the last accepted fix makes it plausible.

Everything here except :meth:`Supervision.checkin` runs with the engine's lock held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from dispatch.commands import Alarm
from dispatch.devices import (
    DEDUP_WINDOW_S,
    MIN_FIX_GAP_S,
    POSITION_EVERY_S,
    POSITION_MOVE_M,
    SAMPLE_IDS,
    DeviceReport,
    UnknownInterval,
    UnknownTally,
)
from dispatch.entries import (
    ElderHealth,
    ElderPosition,
    Note,
    PositionImplausible,
    UnknownAlarm,
    UnknownCount,
    UnknownDevices,
)
from dispatch.matching import geodesic_m
from dispatch.registry import Device, Elder
from dispatch.state import DeviceStatus
from dispatch.triage import ALARM_RULES, URGENT_TYPES

if TYPE_CHECKING:
    from dispatch.engine import Engine

QUICK_KINDS = frozenset({"checkin", "login"})
#: the timer that closes the unknown devices' interval (its summary is due)
UNKNOWN_TIMER = ("unknown", "interval")


class Supervision:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._state = engine.state
        self._directory = engine.directory
        self._grace = engine.settings.checkin_grace
        self._every = engine.settings.unknown_interval_s
        self._max_speed_kmh = engine.settings.max_speed_kmh
        #: what unregistered devices said this interval (rule 6)
        self.unknown = UnknownTally(engine.settings.unknown_ids_kept)
        #: device id -> (when its last implausible fix was written, fixes flagged since) (rule 8)
        self._flagged: dict[str, tuple[float, int]] = {}

    def start(self, now: float) -> None:
        """Arm every registered device's check-in deadline one full interval from now (rule 5)."""
        for device in self._directory.devices.values():
            self._state.timers.set(("checkin", device.device_id), now + device.checkin_s * self._grace)

    # -- the quick path ---------------------------------------------------------------------------

    def checkin(self, reports: Sequence[DeviceReport], now: float) -> bool:
        """Note routine check-ins that need nothing written; False when any report needs the full path.

        A link or heartbeat from a known device without an open "missed check-in" condition only updates
        its last-seen time and battery (rule 3); a report of an unknown device is counted (rule 6), but the
        interval's first alarm, which writes the supervisors' alert. Anything else -- a condition to clear, an
        alarm, any other kind of report of a known device -- returns False before anything is noted, and the
        caller takes the full path.
        This runs for every heartbeat of a city's devices: two passes over the reports, no allocation.
        """
        devices, conditions = self._directory.devices, self._state.conditions
        current = self.unknown.current
        alerted = current is not None and current.alerted  # this interval's alert is written: alarms only count
        for report in reports:
            device = devices.get(report.device_id)
            if device is None:
                if report.kind == "alarm" and not alerted:
                    return False
            elif report.kind not in QUICK_KINDS or (report.device_id, "missed_checkin", device.drill) in conditions:
                return False
        statuses, timers, grace = self._state.devices, self._state.timers, self._grace
        for report in reports:
            device_id = report.device_id
            device = devices.get(device_id)
            if device is None:
                self._count_unknown(report, now)
                continue
            status = statuses.get(device_id)
            if status is None:
                status = self._state.device(device_id)
            status.last_seen = now
            if report.battery is not None:
                status.battery = report.battery
            if timers.set(("checkin", device_id), now + device.checkin_s * grace):
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
            self._unknown(report, actor, now)
            return
        drill = device.drill
        authenticated = report.detail.get("authenticated", True) is not False
        if authenticated:  # a frame that failed the device's key is no sign of life, and its position is not believed
            status = self._seen(device, report.battery, now)
            self._state.timers.set(("checkin", device.device_id), now + device.checkin_s * self._grace)
            engine.clear_condition(device.device_id, "missed_checkin", "device reported again", actor, drill)
        else:
            status = self._state.device(device.device_id)
        if self._repeated(report, now):
            return
        flag = None
        if report.lat is not None and report.lon is not None and authenticated:
            flag = self._implausible(device, report.lat, report.lon, status, now)
            if flag is None:
                self._position(device, report.lat, report.lon, status, now)
        if report.kind == "alarm" and report.alarm_type is not None:
            elder = self._directory.elders.get(device.elder_id)
            alarm = _alarm(report, actor, elder, drill)
            if flag is not None or not authenticated:  # raised all the same, where the device last plausibly was
                alarm = replace(alarm, lat=status.lat, lon=status.lon)  # (rule 8), or was before a forger spoke
            incident = engine.keeping.test_alarm(alarm, authenticated=authenticated)  # a test call's own incident
            if incident is None:
                incident, _ = await engine.open_alarm(alarm)
                # in a test window: real all the same, and the device heard (with its key: the test passes)
                engine.keeping.heard(alarm, incident, authenticated=authenticated)
            if flag is not None:
                self._flagged[device.device_id] = (now, 0)
                engine.emit(flag, actor=actor, incident=incident)
                engine.emit(Note(_flag_note(flag, self._max_speed_kmh)), actor="system", incident=incident)
        elif flag is not None:
            self._flag(device, flag, actor, now)
        if report.kind == "restore" and report.alarm_type is not None:
            outcome = f"device reported restore ({report.code})"
            engine.clear_condition(device.device_id, report.alarm_type, outcome, actor, drill)
        elif report.kind == "health":
            engine.emit(ElderHealth(device.elder_id, device.device_id, dict(report.detail)), actor=actor, drill=drill)

    def _repeated(self, report: DeviceReport, now: float) -> bool:
        """The device repeats a message we recorded but whose ACK it did not see in time (rule 4)."""
        seen = self._state.dedup.get(report.dedup) if report.dedup is not None else None
        return seen is not None and now - seen < DEDUP_WINDOW_S

    # -- unknown devices (rules 6 and 7) ----------------------------------------------------------

    def _count_unknown(self, report: DeviceReport, now: float) -> UnknownInterval:
        """Count a report of an unregistered device; the first of an interval arms the interval's timer."""
        alarm_rule = ALARM_RULES.get(report.alarm_type or "") if report.kind == "alarm" else None
        alarm = alarm_rule is not None and not alarm_rule.technical
        urgent = alarm and report.alarm_type in URGENT_TYPES
        interval = self.unknown.count(report, now, alarm=alarm, urgent=urgent)
        if interval.frames == 1:
            self._state.timers.set(UNKNOWN_TIMER, now + self._every)
            self._engine.timers_changed.set()
        return interval

    def _unknown(self, report: DeviceReport, actor: str, now: float) -> None:
        """A device nobody registered: counted; the first alarm of an interval is the supervisors' alert."""
        interval = self._count_unknown(report, now)
        if interval.alarms and not interval.alerted and report.kind == "alarm" and report.alarm_type is not None:
            interval.alerted = True
            urgent = report.alarm_type in URGENT_TYPES
            self._engine.emit(
                UnknownAlarm(
                    report.protocol, report.device_id, report.alarm_type, report.code, urgent, report.zone,
                    report.lat, report.lon,
                ),
                actor=actor,
            )  # fmt: skip

    def unknown_interval(self, now: float) -> None:
        """The interval's timer fired: write its summary (one entry, whatever came). Lock held."""
        interval = self.unknown.close()
        if interval is None or not interval.frames:
            return
        self._engine.emit(_summary(interval), actor="system")

    # -- positions (rule 8) -----------------------------------------------------------------------

    def _implausible(
        self, device: Device, lat: float, lon: float, status: DeviceStatus, now: float
    ) -> PositionImplausible | None:
        """The flag for a fix too far from the last accepted one for the time between them, or None."""
        if status.lat is None or status.lon is None or status.pos_at is None:
            return None  # nothing to measure against
        distance = geodesic_m(status.lat, status.lon, lat, lon)
        seconds = max(0.0, now - status.pos_at)
        speed_kmh = distance / max(seconds, MIN_FIX_GAP_S) * 3.6
        if speed_kmh <= self._max_speed_kmh:
            return None
        count = self._flagged.get(device.device_id, (0.0, 0))[1] + 1
        return PositionImplausible(
            device.elder_id, device.device_id, lat, lon, status.lat, status.lon, round(distance, 1),
            round(seconds, 1), round(speed_kmh, 1), count,
        )  # fmt: skip

    def _flag(self, device: Device, flag: PositionImplausible, actor: str, now: float) -> None:
        """Write the flag at most once per device per interval; count the others."""
        last = self._flagged.get(device.device_id)
        if last is not None and now - last[0] < self._every:
            self._flagged[device.device_id] = (last[0], flag.count)
            return
        self._flagged[device.device_id] = (now, 0)
        self._engine.emit(flag, actor=actor, drill=device.drill)

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


def _summary(interval: UnknownInterval) -> UnknownDevices:
    counts = tuple(
        UnknownCount(protocol, kind, count, alarm_type)
        for (protocol, kind, alarm_type), count in sorted(interval.counts.items(), key=lambda c: (-c[1], c[0][:2]))
    )
    return UnknownDevices(
        since=interval.since, until=interval.until, frames=interval.frames, counts=counts,
        distinct=len(interval.ids), more=interval.more, sample=tuple(list(interval.ids)[:SAMPLE_IDS]),
        alarms=interval.alarms, alarm_devices=tuple(interval.alarm_devices), urgent=interval.urgent,
    )  # fmt: skip


def _flag_note(flag: PositionImplausible, max_speed_kmh: float) -> str:
    return (
        f"position not believed: the device reported {flag.lat:.5f}, {flag.lon:.5f}, {flag.distance_m / 1000:.1f} km"
        f" from its last fix {flag.seconds:.0f} s earlier ({flag.speed_kmh:.0f} km/h, above {max_speed_kmh:.0f});"
        " placed at its last plausible position"
    )
