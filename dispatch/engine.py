"""The engine: commands in, journal entries out. Intake, triage, matching, offers, timers, escalation.

What it owns
    Every decision about an incident. A command (an alarm, an operator's click, a caregiver's answer, a
    timer firing) is checked against the current :class:`~dispatch.state.Projection`; if it is allowed the
    engine appends the resulting entries to the journal and applies them to the projection, then waits for
    them to be durable before answering. Nothing else writes incident facts.

Rules
    1. Check first, then write. A refused command writes nothing (no half-written incident).
    2. One command at a time changes state (an asyncio lock); waiting for durability happens outside the
       lock, so concurrent commands share one commit (group commit).
    3. Nothing sits unseen: an unacknowledged incident escalates to supervisors at its answer deadline; an
       offer expires at its deadline and the next candidate is offered; after ``max_offers`` declined or
       expired offers, or when no candidate is left, the incident is flagged for manual dispatch.
    4. A responder holds at most one offer or job at a time; the projection's ``assignment_id`` is the claim.
    5. Time comes from the injected clock; :meth:`Engine.tick` fires what is due. It never sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from dispatch.clock import Clock
from dispatch.devices import (
    DEDUP_WINDOW_S,
    POSITION_EVERY_S,
    POSITION_MOVE_M,
    UNKNOWN_EVERY_S,
    DeviceReport,
    DeviceStatus,
)
from dispatch.directory import Directory
from dispatch.errors import AnxinError, Conflict, IllegalTransition, InvalidInput, NotFound
from dispatch.geo import GeoIndex
from dispatch.journal import Entry, Journal
from dispatch.machines import (
    AssignmentEvent,
    AssignmentState,
    IncidentEvent,
    IncidentState,
    assignment_next,
    incident_allows,
)
from dispatch.matching import Matcher, eta_s, geodesic_m
from dispatch.registry import Device, Elder, responder_tags
from dispatch.settings import Settings
from dispatch.state import Assignment, Call, Incident, Projection, person_key
from dispatch.triage import priority, rule


@dataclass(frozen=True, slots=True)
class Alarm:
    """An alarm that passed the checks: who, what, where (if reported), from which source."""

    alarm_type: str
    source: str
    actor: str
    elder: Elder | None
    device_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    note: str | None = None
    drill: bool = False
    call_id: str | None = None
    dedup: str | None = None
    code: str | None = None  # the device protocol's own code and zone, kept for the record
    zone: str | None = None


log = logging.getLogger("anxin.engine")

OUTSIDE_SERVICES = {"120": "medical emergency", "110": "police", "119": "fire"}
CAREGIVER_STATUSES = ("en_route", "on_scene", "done")


class Engine:
    def __init__(
        self,
        *,
        journal: Journal,
        directory: Directory,
        available: GeoIndex,
        clinics: GeoIndex,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.journal = journal
        self.directory = directory
        self.available = available
        self.clinics = clinics
        self.clock = clock
        self.settings = settings
        self.state = Projection(position_stale_s=settings.position_stale_s)
        self.matcher = Matcher(
            available,
            clinics,
            directory.responders,
            radius_m=settings.match_radius_m,
            k=settings.match_k,
            own_caregiver_m=settings.own_caregiver_m,
            clinic_radius_m=settings.clinic_radius_m,
            tz=settings.timezone,
        )
        self.timers_changed = asyncio.Event()
        self.devices: dict[str, DeviceStatus] = {}
        self._unknown_seen: dict[str, float] = {}
        self._lock = asyncio.Lock()

    # -- start ------------------------------------------------------------------------------------

    async def start(self) -> int:
        """Rebuild the projections from the journal, load the indexes, resume stalled dispatches."""
        count = 0
        async for entry in self.journal.replay():
            try:
                self.state.apply(entry)
            except AnxinError as exc:  # never let one bad entry keep the service from starting
                log.error("replay: entry %d (%s) does not apply: %s", entry.seq, entry.kind, exc)
            count += 1
        for responder in self.directory.responders.values():
            if responder.kind == "clinic":
                await self.clinics.upsert(responder.responder_id, responder.lat, responder.lon)
        self.state.dirty.update(self.state.responders)
        now = self.clock.now()
        for device in self.directory.devices.values():  # one full interval of grace after a restart
            self.state.timers.set(("checkin", device.device_id), now + device.checkin_s * self.settings.checkin_grace)
        async with self._txn():
            for incident in list(self.state.incidents.values()):
                if incident.open and rule(incident.alarm_type).dispatch:
                    await self._dispatch_next(incident)
        return count

    @asynccontextmanager
    async def _txn(self) -> AsyncIterator[None]:
        async with self._lock:
            yield
            await self._sync_geo()
            seq = self.journal.head_seq
        self.timers_changed.set()
        await self.journal.durable(seq)

    def _emit(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        actor: str,
        incident: Incident | None = None,
        drill: bool = False,
    ) -> Entry:
        entry = self.journal.append(
            kind,
            payload,
            actor=actor,
            incident_id=incident.incident_id if incident else None,
            drill=incident.drill if incident else drill,
        )
        self.state.apply(entry)
        return entry

    async def _sync_geo(self) -> None:
        now = self.clock.now()
        while self.state.dirty:
            responder_id = self.state.dirty.pop()
            profile = self.directory.responders.get(responder_id)
            status = self.state.responders.get(responder_id)
            if (
                profile is not None
                and profile.kind != "clinic"
                and status is not None
                and status.lat is not None
                and status.lon is not None
                and self.state.available(responder_id, now)
            ):
                await self.available.upsert(
                    responder_id, status.lat, status.lon, responder_tags(profile.skills, profile.travel)
                )
            else:
                await self.available.remove(responder_id)

    # -- lookups ----------------------------------------------------------------------------------

    def incident(self, incident_id: str) -> Incident:
        incident = self.state.incidents.get(incident_id)
        if incident is None:
            raise NotFound(f"no incident {incident_id}", field="incident_id")
        return incident

    def assignment(self, assignment_id: str) -> Assignment:
        assignment = self.state.assignments.get(assignment_id)
        if assignment is None:
            raise NotFound(f"no assignment {assignment_id}", field="assignment_id")
        return assignment

    def elder(self, elder_id: str) -> Elder:
        elder = self.directory.elders.get(elder_id)
        if elder is None:
            raise NotFound(f"no elder {elder_id}", field="elder_id")
        return elder

    # -- intake -----------------------------------------------------------------------------------

    async def raise_alarm(
        self,
        alarm_type: str,
        *,
        actor: str,
        source: str,
        elder_id: str | None = None,
        device_id: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
        note: str | None = None,
        drill: bool = False,
    ) -> tuple[Incident, bool]:
        """Open an incident for an alarm (or attach it to the elder's open one). Returns (incident, attached)."""
        rule(alarm_type)
        if device_id is not None:
            device = self.directory.devices.get(device_id)
            if device is None:
                raise NotFound(f"no device {device_id}", field="device_id")
            if elder_id is not None and elder_id != device.elder_id:
                raise InvalidInput(f"device {device_id} belongs to elder {device.elder_id}", field="elder_id")
            elder_id = device.elder_id
        if elder_id is None:
            raise InvalidInput("an alarm needs elder_id or device_id", field="elder_id")
        elder = self.elder(elder_id)
        if (lat is None) != (lon is None):
            raise InvalidInput("give both lat and lon, or neither", field="lat" if lat is None else "lon")
        alarm = Alarm(alarm_type, source, actor, elder, device_id, lat, lon, note, drill)
        async with self._txn():
            return await self._open(alarm)

    async def _open(self, alarm: Alarm) -> tuple[Incident, bool]:
        """Open (or attach) an incident for a checked alarm. Lock held."""
        now = self.clock.now()
        elder = alarm.elder
        technical = rule(alarm.alarm_type).technical
        level, reasons = priority(alarm.alarm_type, elder, now)
        if technical:
            existing_id = self.state.conditions.get((alarm.device_id or "", alarm.alarm_type, alarm.drill))
            if existing_id is not None:  # the same condition is already open: one incident until it clears
                return self.state.incidents[existing_id], True
        else:
            who = person_key(elder.elder_id if elder else None, alarm.device_id)
            existing_id = self.state.open_by_elder.get((who, alarm.drill)) if who is not None else None
        if existing_id is not None:
            incident = self.state.incidents[existing_id]
            self._emit(
                "incident.alarm_attached",
                {"alarm_type": alarm.alarm_type, "source": alarm.source, "priority": level,
                 "priority_reasons": reasons, "device_id": alarm.device_id, "lat": alarm.lat, "lon": alarm.lon,
                 "dedup": alarm.dedup, "code": alarm.code, "zone": alarm.zone, "call_id": alarm.call_id},
                actor=alarm.actor, incident=incident,
            )  # fmt: skip
            if alarm.note:
                self._emit("incident.note", {"text": alarm.note}, actor=alarm.actor, incident=incident)
            return incident, True
        lat, lon = alarm.lat, alarm.lon
        if lat is not None and lon is not None:
            location = "reported"
        elif elder is not None:
            lat, lon, location = elder.lat, elder.lon, "home"
        else:
            location = "unknown"
        incident_id = f"INC-{self.journal.head_seq + 1}"
        self._emit(
            "incident.opened",
            {
                "incident_id": incident_id,
                "alarm_type": alarm.alarm_type,
                "source": alarm.source,
                "priority": level,
                "priority_reasons": reasons,
                "technical": technical,
                "elder_id": elder.elder_id if elder else None,
                "device_id": alarm.device_id,
                "call_id": alarm.call_id,
                "lat": lat,
                "lon": lon,
                "location": location,
                "answer_deadline": now + self.settings.answer_target_s,
                "dedup": alarm.dedup,
                "code": alarm.code,
                "zone": alarm.zone,
            },
            actor=alarm.actor,
            drill=alarm.drill,
        )
        incident = self.state.incidents[incident_id]
        if alarm.note:
            self._emit("incident.note", {"text": alarm.note}, actor=alarm.actor, incident=incident)
        if rule(alarm.alarm_type).dispatch:
            await self._dispatch_next(incident)
        return incident, False

    async def hotline(
        self,
        event: str,
        *,
        call_id: str,
        caller: str,
        line: str,
        actor: str,
        open_incident: bool = True,
        alarm_type: str = "call",
        drill: bool = False,
    ) -> tuple[Call, Incident | None]:
        """A telephony event. Repeated events for the same call are answered without writing twice."""
        if event not in ("ringing", "answered", "ended"):
            raise InvalidInput("event must be ringing, answered or ended", field="event")
        rule(alarm_type)
        async with self._txn():
            call = self.state.calls.get(call_id)
            if call is None:
                elder = self.directory.elder_for_phone(caller)
                self._emit(
                    "call.ringing",
                    {"call_id": call_id, "caller": caller, "line": line,
                     "elder_id": elder.elder_id if elder else None},
                    actor=actor, drill=drill,
                )  # fmt: skip
                call = self.state.calls[call_id]
            incident = self.state.incidents.get(call.incident_id) if call.incident_id else None
            if event == "answered" and call.state == "ringing":
                self._emit("call.answered", {"call_id": call_id}, actor=actor, drill=drill)
                if open_incident:
                    elder = self.directory.elders.get(call.elder_id) if call.elder_id else None
                    note = f"hotline call from {caller} on line {line}"
                    alarm = Alarm(alarm_type, "hotline", actor, elder, note=note, drill=drill, call_id=call_id)
                    incident, _ = await self._open(alarm)  # applying it links the call to the incident
            elif event == "ended" and call.state != "ended":
                missed = call.state == "ringing"
                self._emit("call.ended", {"call_id": call_id}, actor=actor, drill=drill)
                if missed and open_incident and call.incident_id is None:
                    # nobody picked up: an elder who called for help gets help anyway, and a clock
                    elder = self.directory.elders.get(call.elder_id) if call.elder_id else None
                    note = f"missed hotline call from {caller} on line {line}: call back"
                    alarm = Alarm(alarm_type, "hotline", actor, elder, note=note, drill=drill, call_id=call_id)
                    incident, _ = await self._open(alarm)  # applying it links the call to the incident
            return call, incident

    # -- devices ----------------------------------------------------------------------------------

    async def report_device(self, report: DeviceReport, *, drill: bool = False) -> int:
        """Record what a device said; return the journal seq to await before acknowledging it.

        The caller (the gateway) acknowledges after ``await journal.durable(seq)``. A repeated message is
        recognised by its dedup key and acknowledged again without being recorded twice.
        """
        async with self._lock:
            device = self.directory.devices.get(report.device_id)
            await self._report(report, drill or (device is not None and device.drill))
            await self._sync_geo()
            seq = self.journal.head_seq
        self.timers_changed.set()
        return seq

    def touch_device(self, device_id: str, kind: str, battery: int | None) -> bool:
        """The fast path for a routine check-in that writes nothing: True when it was fully handled.

        A link or heartbeat from a known device whose check-in is not overdue only moves its deadline; the
        gateway then acknowledges at once, without the intake queue or the lock. Anything else (an unknown
        device, a missed check-in to clear, any other kind of report) returns False and takes the full path.
        """
        if kind not in ("checkin", "login"):
            return False
        device = self.directory.devices.get(device_id)
        if device is None or (device_id, "missed_checkin", device.drill) in self.state.conditions:
            return False
        self._seen(device, battery, self.clock.now())
        return True

    def _seen(self, device: Device, battery: int | None, now: float) -> DeviceStatus:
        status = self.devices.get(device.device_id)
        if status is None:
            status = self.devices[device.device_id] = DeviceStatus()
        status.last_seen = now
        if battery is not None:
            status.battery = battery
        self.state.timers.set(("checkin", device.device_id), now + device.checkin_s * self.settings.checkin_grace)
        return status

    async def _report(self, report: DeviceReport, drill: bool) -> None:
        now = self.clock.now()
        actor = f"device:{report.device_id}"
        device = self.directory.devices.get(report.device_id)
        if device is None:
            if report.kind == "alarm" and report.alarm_type is not None and not rule(report.alarm_type).technical:
                await self._unregistered_alarm(report, actor, now, drill)
                return
            key = f"{report.protocol}:{report.device_id}"
            last = self._unknown_seen.get(key)
            if last is None or now - last >= UNKNOWN_EVERY_S:
                self._unknown_seen[key] = now
                self._emit(
                    "device.unknown",
                    {"protocol": report.protocol, "device_id": report.device_id, "code": report.code,
                     "kind": report.kind, "lat": report.lat, "lon": report.lon},
                    actor=actor, drill=drill,
                )  # fmt: skip
            return
        status = self._seen(device, report.battery, now)
        self._clear(device.device_id, "missed_checkin", "device reported again", actor, drill)
        seen = self.state.dedup.get(report.dedup) if report.dedup is not None else None
        if seen is not None and now - seen < DEDUP_WINDOW_S:  # the device repeats what we did not ACK in time
            return
        elder = self.directory.elders.get(device.elder_id)
        if report.lat is not None and report.lon is not None:
            self._device_position(device.device_id, device.elder_id, report, status, now, drill)
        if report.kind == "alarm" and report.alarm_type is not None:
            alarm = Alarm(
                report.alarm_type, "device", actor, elder, device.device_id, report.lat, report.lon,
                note=None, drill=drill, dedup=report.dedup, code=report.code, zone=report.zone,
            )  # fmt: skip
            await self._open(alarm)
        elif report.kind == "restore" and report.alarm_type is not None:
            self._clear(device.device_id, report.alarm_type, f"device reported restore ({report.code})", actor, drill)
        elif report.kind == "health":
            self._emit(
                "elder.health",
                {"elder_id": device.elder_id, "device_id": device.device_id, "readings": report.detail},
                actor=actor, drill=drill,
            )  # fmt: skip

    async def _unregistered_alarm(self, report: DeviceReport, actor: str, now: float, drill: bool) -> None:
        """Someone pressed for help on a device nobody registered: an incident with a clock, no elder, no
        location, so it lands in front of an operator, flagged for manual dispatch."""
        assert report.alarm_type is not None
        seen = self.state.dedup.get(report.dedup) if report.dedup is not None else None
        if seen is not None and now - seen < DEDUP_WINDOW_S:
            return
        note = f"alarm from unregistered {report.protocol} device {report.device_id} ({report.code})"
        alarm = Alarm(
            report.alarm_type, "device", actor, None, report.device_id, report.lat, report.lon,
            note=note, drill=drill, dedup=report.dedup, code=report.code, zone=report.zone,
        )  # fmt: skip
        await self._open(alarm)

    def _device_position(
        self, device_id: str, elder_id: str, report: DeviceReport, status: DeviceStatus, now: float, drill: bool
    ) -> None:
        assert report.lat is not None and report.lon is not None
        status.lat, status.lon, status.pos_at = report.lat, report.lon, now
        last = status.journaled_pos
        if (
            last is None
            or now - last[2] >= POSITION_EVERY_S
            or geodesic_m(last[0], last[1], report.lat, report.lon) >= POSITION_MOVE_M
        ):
            status.journaled_pos = (report.lat, report.lon, now)
            self._emit(
                "elder.position",
                {"elder_id": elder_id, "device_id": device_id, "lat": report.lat, "lon": report.lon},
                actor=f"device:{device_id}", drill=drill,
            )  # fmt: skip

    def _clear(self, device_id: str, alarm_type: str, outcome: str, actor: str, drill: bool = False) -> None:
        """Resolve the open technical incident for this device and condition, if there is one."""
        incident_id = self.state.conditions.get((device_id, alarm_type, drill))
        if incident_id is None:
            return
        incident = self.state.incidents[incident_id]
        if incident_allows(incident.state, IncidentEvent.RESOLVE):
            self._withdraw_all(incident, actor, outcome)
            self._emit("incident.resolved", {"outcome": outcome}, actor=actor, incident=incident)

    async def _missed_checkin(self, device_id: str, now: float) -> None:
        device = self.directory.devices.get(device_id)
        if device is None or (device_id, "missed_checkin", device.drill) in self.state.conditions:
            return
        status = self.devices.get(device_id)
        if status is not None and status.last_seen is not None:
            due = status.last_seen + device.checkin_s * self.settings.checkin_grace
            if due > now:  # its interval was lengthened (PUT /api/devices) since the timer was set
                self.state.timers.set(("checkin", device_id), due)
                return
        note = f"no report from {device.protocol} device {device_id} within {device.checkin_s} s"
        if status is not None and status.last_seen is not None:
            note += f" (last seen {round(now - status.last_seen)} s ago)"
        elder = self.directory.elders.get(device.elder_id)
        alarm = Alarm("missed_checkin", "supervision", "system", elder, device_id, note=note, drill=device.drill)
        await self._open(alarm)

    # -- dispatch ---------------------------------------------------------------------------------

    async def _dispatch_next(self, incident: Incident) -> None:
        """Offer the incident to the next candidate, or flag it for manual dispatch. Lock held."""
        if not incident.open or incident.needs_manual or incident.state is IncidentState.ASSIGNED:
            return
        if incident.state in (IncidentState.ON_SCENE, IncidentState.ESCALATED):
            return
        if self.state.active_assignments(incident):
            return
        if incident.failed_offers >= self.settings.max_offers:
            self._manual(incident, f"{incident.failed_offers} offers declined or expired")
            return
        if incident.lat is None or incident.lon is None:
            self._manual(incident, "location unknown")
            return
        now = self.clock.now()
        tried = {self.state.assignments[a].responder_id for a in incident.assignments}
        candidate = next(
            (
                c
                for c in incident.ranking
                if c["responder_id"] not in tried and self.state.available(c["responder_id"], now)
            ),
            None,
        )
        if candidate is None:
            candidate = await self._rank(incident, tried)
        if candidate is None:
            skill = rule(incident.alarm_type).skill
            km = self.settings.match_radius_m / 1000
            self._manual(incident, f"no free responder with skill {skill} within {km:g} km")
            return
        self._offer(
            incident,
            candidate["responder_id"],
            by="auto",
            distance_m=candidate.get("distance_m"),
            eta_s=candidate.get("eta_s"),
            actor="system",
        )

    async def _rank(self, incident: Incident, tried: set[str]) -> dict[str, Any] | None:
        assert incident.lat is not None and incident.lon is not None
        alarm = rule(incident.alarm_type)
        elder = self.directory.elders.get(incident.elder_id) if incident.elder_id else None
        await self._sync_geo()
        ranking = await self.matcher.rank(
            incident.lat,
            incident.lon,
            skill=alarm.skill,
            own_caregiver_id=elder.caregiver_id if elder else None,
            exclude=tried,
        )
        clinic = incident.clinic
        if alarm.medical and clinic is None:
            proposal = await self.matcher.nearest_clinic(incident.lat, incident.lon, self.clock.now())
            clinic = proposal.as_dict() if proposal else None
        candidates = [c.as_dict() for c in ranking]
        self._emit(
            "incident.ranked",
            {"candidates": candidates, "clinic": clinic, "skill": alarm.skill,
             "radius_m": self.settings.match_radius_m, "excluded": sorted(tried)},
            actor="system", incident=incident,
        )  # fmt: skip
        return candidates[0] if candidates else None

    def _offer(
        self,
        incident: Incident,
        responder_id: str,
        *,
        by: str,
        distance_m: float | None,
        eta_s: float | None,
        actor: str,
    ) -> None:
        self._emit(
            "offer.made",
            {
                "assignment_id": f"A-{self.journal.head_seq + 1}",
                "responder_id": responder_id,
                "deadline": self.clock.now() + self.settings.offer_timeout_s,
                "by": by,
                "distance_m": distance_m,
                "eta_s": eta_s,
            },
            actor=actor,
            incident=incident,
        )

    def _manual(self, incident: Incident, reason: str) -> None:
        self._emit("incident.needs_manual", {"reason": reason}, actor="system", incident=incident)

    def _withdraw_all(self, incident: Incident, actor: str, reason: str) -> None:
        for assignment in self.state.active_assignments(incident):
            self._emit(
                "offer.withdrawn",
                {"assignment_id": assignment.assignment_id, "responder_id": assignment.responder_id,
                 "reason": reason},
                actor=actor, incident=incident,
            )  # fmt: skip

    # -- operator actions -------------------------------------------------------------------------

    async def acknowledge(self, incident_id: str, *, actor: str) -> Incident:
        async with self._txn():
            incident = self.incident(incident_id)
            if incident.acknowledged_at is not None:
                raise Conflict(f"{incident_id} was already acknowledged by {incident.acknowledged_by}")
            self._require(incident, IncidentEvent.ACKNOWLEDGE)
            self._emit("incident.acknowledged", {}, actor=actor, incident=incident)
            return incident

    async def dispatch(self, incident_id: str, responder_id: str, *, actor: str) -> Incident:
        """An operator offers the incident to a chosen responder, withdrawing any pending offer or job.

        Reassigning is allowed after someone accepted or arrived (the caregiver fell ill, the bike broke down):
        withdrawing their job takes the incident back to dispatching, from where the new offer goes out.
        """
        async with self._txn():
            incident = self.incident(incident_id)
            if not incident_allows(incident.state, IncidentEvent.REOPEN_DISPATCH):
                self._require(incident, IncidentEvent.OFFER)
            profile = self.directory.responders.get(responder_id)
            if profile is None:
                raise NotFound(f"no responder {responder_id}", field="responder_id")
            if profile.kind == "clinic":
                raise InvalidInput("a clinic is proposed to the operator, not offered a job", field="responder_id")
            status = self.state.responder(responder_id)
            if status.assignment_id is not None:
                raise Conflict(f"{responder_id} is busy with {status.assignment_id}")
            distance = eta = None
            if status.lat is not None and status.lon is not None and incident.lat is not None:
                assert incident.lon is not None
                distance = round(geodesic_m(status.lat, status.lon, incident.lat, incident.lon), 1)
                eta = round(eta_s(distance, profile.travel), 1)
            self._withdraw_all(incident, actor, f"operator dispatched {responder_id}")
            self._offer(incident, responder_id, by="operator", distance_m=distance, eta_s=eta, actor=actor)
            return incident

    async def cancel(self, incident_id: str, reason: str, *, actor: str) -> Incident:
        if not reason.strip():
            raise InvalidInput("a false alarm needs a reason", field="reason")
        async with self._txn():
            incident = self.incident(incident_id)
            self._require(incident, IncidentEvent.CANCEL)
            self._withdraw_all(incident, actor, "incident cancelled")
            self._emit("incident.cancelled", {"reason": reason}, actor=actor, incident=incident)
            return incident

    async def escalate(self, incident_id: str, service: str, note: str, *, actor: str) -> Incident:
        if service not in OUTSIDE_SERVICES:
            raise InvalidInput(f"service must be one of {', '.join(OUTSIDE_SERVICES)}", field="service")
        async with self._txn():
            incident = self.incident(incident_id)
            self._require(incident, IncidentEvent.ESCALATE)
            self._emit(
                "incident.escalated",
                {"service": service, "name": OUTSIDE_SERVICES[service], "note": note},
                actor=actor, incident=incident,
            )  # fmt: skip
            return incident

    async def note(self, incident_id: str, text: str, *, actor: str) -> Incident:
        if not text.strip():
            raise InvalidInput("a note needs text", field="text")
        async with self._txn():
            incident = self.incident(incident_id)
            self._emit("incident.note", {"text": text}, actor=actor, incident=incident)
            return incident

    async def resolve(self, incident_id: str, outcome: str, *, actor: str) -> Incident:
        if not outcome.strip():
            raise InvalidInput("resolving needs an outcome", field="outcome")
        async with self._txn():
            incident = self.incident(incident_id)
            self._require(incident, IncidentEvent.RESOLVE)
            self._withdraw_all(incident, actor, "incident resolved")
            self._emit("incident.resolved", {"outcome": outcome}, actor=actor, incident=incident)
            return incident

    async def close(self, incident_id: str, *, actor: str) -> Incident:
        async with self._txn():
            incident = self.incident(incident_id)
            self._require(incident, IncidentEvent.CLOSE)
            self._withdraw_all(incident, actor, "incident closed")
            self._emit("incident.closed", {}, actor=actor, incident=incident)
            return incident

    def _require(self, incident: Incident, event: IncidentEvent) -> None:
        if not incident_allows(incident.state, event):
            raise IllegalTransition("incident", incident.state.value, event.value)

    # -- responders -------------------------------------------------------------------------------

    def _responder_profile(self, responder_id: str) -> None:
        profile = self.directory.responders.get(responder_id)
        if profile is None or profile.kind == "clinic":
            raise NotFound(f"no caregiver or volunteer {responder_id}", field="responder_id")

    async def set_duty(
        self, responder_id: str, on: bool, *, actor: str, lat: float | None = None, lon: float | None = None
    ) -> None:
        self._responder_profile(responder_id)
        async with self._txn():
            status = self.state.responder(responder_id)
            if not on and status.assignment_id is not None:
                assignment = self.state.assignments[status.assignment_id]
                if assignment.state is not AssignmentState.OFFERED:
                    raise Conflict(f"{responder_id} is on job {assignment.incident_id}; finish it first")
                incident = self.state.incidents[assignment.incident_id]
                self._emit(
                    "offer.withdrawn",
                    {"assignment_id": assignment.assignment_id, "responder_id": responder_id,
                     "reason": "responder went off duty"},
                    actor=actor, incident=incident,
                )  # fmt: skip
                await self._dispatch_next(incident)
            payload: dict[str, Any] = {"responder_id": responder_id, "on": on}
            if lat is not None and lon is not None:
                payload.update(lat=lat, lon=lon)
            self._emit("responder.duty", payload, actor=actor)

    async def set_roster(self, roster: list[tuple[str, bool, float | None, float | None]], *, actor: str) -> int:
        """A supervisor sets many responders on or off duty at once (a shift roster); one commit for all.

        Returns how many changed. Checked first: an unknown responder, or taking someone off duty in the middle
        of a job, refuses the whole roster and writes nothing.
        """
        for responder_id, on, _, _ in roster:
            self._responder_profile(responder_id)
            status = self.state.responders.get(responder_id)
            if not on and status is not None and status.assignment_id is not None:
                raise Conflict(f"{responder_id} holds {status.assignment_id}; finish or withdraw it first")
        async with self._txn():
            for responder_id, on, lat, lon in roster:
                payload: dict[str, Any] = {"responder_id": responder_id, "on": on}
                if lat is not None and lon is not None:
                    payload.update(lat=lat, lon=lon)
                self._emit("responder.duty", payload, actor=actor)
        return len(roster)

    async def set_position(self, responder_id: str, lat: float, lon: float, *, actor: str) -> None:
        self._responder_profile(responder_id)
        async with self._txn():
            self._emit("responder.position", {"responder_id": responder_id, "lat": lat, "lon": lon}, actor=actor)

    async def reply_offer(self, assignment_id: str, responder_id: str, accept: bool, *, reason: str = "") -> Assignment:
        async with self._txn():
            assignment = self._own(assignment_id, responder_id)
            if assignment.state is not AssignmentState.OFFERED:
                raise Conflict(f"offer {assignment_id} is {assignment.state.value}")
            incident = self.state.incidents[assignment.incident_id]
            if accept:
                self._require(incident, IncidentEvent.ACCEPT)
            actor = f"caregiver:{responder_id}"
            kind = "offer.accepted" if accept else "offer.declined"
            self._emit(
                kind, {"assignment_id": assignment_id, "responder_id": responder_id, "reason": reason},
                actor=actor, incident=incident,
            )  # fmt: skip
            if accept:
                if incident.elder_id is not None:
                    self._emit(
                        "elder.viewed",
                        {"elder_id": incident.elder_id, "why": f"assigned to {incident.incident_id}"},
                        actor=actor, incident=incident,
                    )  # fmt: skip
            else:
                await self._dispatch_next(incident)
            return assignment

    async def report_status(self, assignment_id: str, responder_id: str, status: str, note: str = "") -> Assignment:
        if status not in CAREGIVER_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(CAREGIVER_STATUSES)}", field="status")
        async with self._txn():
            assignment = self._own(assignment_id, responder_id)
            incident = self.state.incidents[assignment.incident_id]
            assignment_next(assignment.state, AssignmentEvent(status))
            if status == "on_scene":
                self._require(incident, IncidentEvent.ARRIVE)
            actor = f"caregiver:{responder_id}"
            self._emit(
                "assignment.status",
                {"assignment_id": assignment_id, "responder_id": responder_id, "status": status, "note": note},
                actor=actor, incident=incident,
            )  # fmt: skip
            finished = status == "done" and not self.state.active_assignments(incident)
            if finished and incident_allows(incident.state, IncidentEvent.RESOLVE):
                outcome = f"caregiver {responder_id} done" + (f": {note}" if note else "")
                self._emit("incident.resolved", {"outcome": outcome}, actor=actor, incident=incident)
            return assignment

    def _own(self, assignment_id: str, responder_id: str) -> Assignment:
        assignment = self.assignment(assignment_id)
        if assignment.responder_id != responder_id:
            raise NotFound(f"no assignment {assignment_id} for {responder_id}", field="assignment_id")
        return assignment

    async def viewed(self, elder_id: str, *, actor: str) -> Elder:
        """Every read of an elder's record is journaled (health data is sensitive)."""
        elder = self.elder(elder_id)
        async with self._txn():
            self._emit("elder.viewed", {"elder_id": elder_id}, actor=actor)
        return elder

    async def record(self, kind: str, payload: dict[str, Any], *, actor: str) -> Entry:
        """Journal a fact that changes no incident (registry edits, accounts, imports)."""
        async with self._txn():
            return self._emit(kind, payload, actor=actor)

    # -- timers -----------------------------------------------------------------------------------

    async def tick(self) -> None:
        """Fire every timer that is due at the clock's now."""
        async with self._txn():
            now = self.clock.now()
            for key in self.state.timers.pop_due(now):
                assert isinstance(key, tuple)
                what, ident = key
                if what == "answer":
                    incident = self.state.incidents[ident]
                    if incident.open and incident.acknowledged_at is None:
                        waited = round(now - incident.opened_at, 1)
                        self._emit("incident.unanswered", {"waited_s": waited}, actor="system", incident=incident)
                elif what == "offer":
                    assignment = self.state.assignments[ident]
                    if assignment.state is AssignmentState.OFFERED:
                        incident = self.state.incidents[assignment.incident_id]
                        self._emit(
                            "offer.expired",
                            {"assignment_id": ident, "responder_id": assignment.responder_id},
                            actor="system", incident=incident,
                        )  # fmt: skip
                        await self._dispatch_next(incident)
                elif what == "stale":
                    self.state.dirty.add(ident)
                elif what == "checkin":
                    await self._missed_checkin(ident, now)

    def next_deadline(self) -> float | None:
        return self.state.timers.next_deadline()

    async def run_timers(self) -> None:
        """The runtime loop: sleep until the next deadline (or until timers change), then tick."""
        while True:
            self.timers_changed.clear()
            deadline = self.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.clock.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.timers_changed.wait(), timeout)
            if deadline is not None and self.clock.now() >= deadline:
                try:
                    await self.tick()
                except Exception:  # one failing timer must not stop every clock in the centre
                    log.exception("timers: a tick failed; the loop goes on")
