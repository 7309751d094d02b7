"""The engine: commands in, journal entries out. Incidents, triage, matching, offers, timers, escalation.

What it owns
    Every decision about an incident and every write to the registry while the server runs. A command (an
    alarm, an operator's click, a caregiver's answer, a timer firing, a registry edit) is checked against the
    current :class:`~dispatch.state.Projection`; if it is allowed the engine appends the resulting typed
    entries (:mod:`dispatch.entries`) to the journal and applies them to the projection. Nothing else writes
    incident facts. Device reports are handled by :mod:`dispatch.supervision` on the engine's behalf.

Rules
    1. Check first, then write. A refused command writes nothing (no half-written incident).
    2. One command at a time changes state (an asyncio lock, :meth:`Engine.changing`); waiting for durability
       happens outside the lock, so concurrent commands share one commit (group commit). People's commands
       return once durable; the intake's (alarms, calls, device reports) return at once and the
       :class:`~dispatch.intake.Intake` awaits durability, so its single worker never waits on a disk.
    3. Nothing sits unseen: an unacknowledged incident escalates to supervisors at its answer deadline; an
       offer expires at its deadline and the next candidate is offered; after ``max_offers`` declined or
       expired offers, or when no candidate is left, the incident is flagged for manual dispatch.
    4. A responder holds at most one offer or job at a time; the projection's ``assignment_id`` is the claim.
       Only the centre's own people are matched to alarms: a contracted service organisation's staff deliver
       the services of their organisation's items (dispatch.services rule 4) and are never offered an incident.
    5. Time comes from the injected clock; :meth:`Engine.tick` fires what is due. It never sleeps.
    6. The incidents a device's reports open through the intake (``device_reports(offers_later=True)``) wait
       for their first offers until :meth:`Engine.offer_opened`, which the intake calls once the opening is on
       its way to the disk: the device is acknowledged and the screens show the alarm without waiting for the
       ranking. An incident whose offers were never made (the server stopped in between) is offered at the next
       start, as every stalled one is.

Never
    Never change the projection except by applying an entry just appended (or, for what devices say that is
    not journaled, through the supervision module); never await a disk while holding the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import unicodedata
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

from dispatch.assessment import DISEASES, Flags, check_answers
from dispatch.assessment import REASONS as ASSESSMENT_REASONS
from dispatch.assessment import STANDARD as ASSESSMENT_STANDARD
from dispatch.assessment import score as score_assessment
from dispatch.carecalls import CareDesk
from dispatch.clock import Clock
from dispatch.commands import (
    Alarm,
    AlarmRequest,
    CallEvent,
    CallOutcome,
    Classification,
    Opened,
    RosterLine,
    dial_number,
)
from dispatch.devices import DeviceReport
from dispatch.directory import Directory
from dispatch.duplicates import identity_changed, person_of
from dispatch.duty import DutyDesk
from dispatch.entries import (
    ORIGINATE_FAILED,
    RING_OFFERS,
    TAKEN_BY_ANOTHER,
    TAKEN_OVER,
    AccountChange,
    AccountChanged,
    AccountCreated,
    Acknowledged,
    AlarmAttached,
    AssessmentRecorded,
    AssignmentStatus,
    CallAnswered,
    CallClassified,
    CallDialed,
    CalledBack,
    CallEnded,
    CallerPicked,
    CallQueued,
    CallRinging,
    CallTransferred,
    Cancelled,
    CaregiverStatus,
    Closed,
    ContactNotified,
    DeviceRestored,
    DeviceSaved,
    ElderSaved,
    EldersMerged,
    ElderViewed,
    Escalated,
    Fact,
    IncidentOpened,
    Located,
    Location,
    LoginFailed,
    LoginRefusal,
    NeedsManual,
    Note,
    OfferAccepted,
    OfferDeclined,
    OfferedBy,
    OfferExpired,
    OfferHeld,
    OfferMade,
    OfferWithdrawn,
    OrderSource,
    OutsideService,
    PlacedBy,
    Ranked,
    RankedResponder,
    ReadWhat,
    RecordsRead,
    RegistryImported,
    Resolved,
    ResponderDuty,
    ResponderPosition,
    ResponderSaved,
    Retyped,
    ServiceAssigned,
    ServiceCancelled,
    ServiceConfirmed,
    ServiceDelivered,
    ServiceNoShow,
    ServiceOrdered,
    ServiceRescheduled,
    ServiceScheduled,
    ServiceStarted,
    ShiftKind,
    Unanswered,
    Unrecognised,
    VouchersAllotted,
    VouchersCharged,
)
from dispatch.errors import AnxinError, Conflict, IllegalTransition, InvalidInput, JournalError, NotFound
from dispatch.family import ContactChannel, LogChannel, is_kin, kin_id, message_text
from dispatch.followups import FollowUpDesk
from dispatch.geo import GeoIndex, haversine_m
from dispatch.importer import CsvText, import_files
from dispatch.journal import Entry, Journal
from dispatch.keeping import Changes, KeepingDesk, changes, check_leaving, require_active
from dispatch.machines import (
    AssignmentEvent,
    AssignmentState,
    CallMove,
    CallState,
    IncidentEvent,
    IncidentState,
    OrderEvent,
    assignment_next,
    call_allows,
    incident_allows,
    order_next,
)
from dispatch.matching import DETOUR_FACTOR, TRAVEL_MODES, Matcher, eta_s, geodesic_m, rounded
from dispatch.plans import PlanDesk, PlanState
from dispatch.referrals import ReferralDesk
from dispatch.registry import Device, Elder, Responder, RiskFlag, normalise_phone, responder_tags, street_of
from dispatch.services import CENTRE, ServiceItem, catalogue, mode_for, price_of
from dispatch.settings import Settings
from dispatch.state import Assignment, Call, Incident, Projection, ServiceOrder, person_key
from dispatch.store import RegistryStore
from dispatch.supervision import Supervision
from dispatch.triage import household_priority, priority, rule
from dispatch.views import Views, offered_elders
from dispatch.vouchers import VoucherRules, month_of

log = logging.getLogger("anxin.engine")
R = TypeVar("R", Elder, Device, Responder)

OUTSIDE_SERVICES = {"120": "medical emergency", "110": "police", "119": "fire"}
CAREGIVER_STATUSES = ("en_route", "on_scene", "done")
#: roster lines written per commit, the lock released between commits: about 10 ms of engine work each
ROSTER_CHUNK = 250
#: reads shown while the journal could not commit, kept to be written when it can (the rest only counted)
OWED_READS_MAX = 10_000


class Engine:
    def __init__(
        self,
        *,
        journal: Journal,
        directory: Directory,
        registry: RegistryStore,
        available: GeoIndex,
        clinics: GeoIndex,
        clock: Clock,
        settings: Settings,
        protocols: Collection[str] = (),
        channel: ContactChannel | None = None,
    ) -> None:
        self.journal = journal
        #: how people off the phone page are reached (SMS / voice; dispatch.family): the log unless one is given
        self.channel: ContactChannel = channel or LogChannel()
        self.directory = directory
        self.registry = registry
        self.available = available
        self.clinics = clinics
        self.clock = clock
        self.settings = settings
        self._reads: dict[tuple[str, ...], float] = {}  # (actor, what, subject...) -> when it was journaled
        self._reads_sweep_at = 100_000
        #: reads shown while the journal could not commit (a console must see its incidents on a full disk): they
        #: go on record as soon as it works again (journal rule 6), oldest first; bounded, the overflow is counted
        self._owed_reads: list[tuple[RecordsRead, str]] = []
        self._owed_overflow = 0
        self._background: set[asyncio.Task[None]] = set()
        #: responders put into the available index during this change, and incidents put into the backlog: they
        #: meet as it ends (see _serve_backlog)
        self._freed: set[str] = set()
        self._entered: set[str] = set()
        #: rule 6: set while the intake's device reports are recorded; the incidents they opened, waiting for offers
        self._offers_later = False
        self._to_offer: deque[str] = deque()
        journal.on_recovered(self._pay_owed_reads)
        journal.on_recovered(self._offer_after_recovery)
        #: the device protocols this server speaks (a device of another protocol is refused)
        self.protocols = frozenset(protocols)
        self.state = Projection(position_stale_s=settings.position_stale_s,
                                vouchers=VoucherRules.from_settings(settings))  # fmt: skip
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
        self.supervision = Supervision(self)
        #: follow-ups (回访): created as incidents close and services are delivered (dispatch.followups)
        self.follow_ups = FollowUpDesk(self)
        #: care calls (关怀电话) to elders living alone, empty nest or aged, and the visits they propose
        self.care_calls = CareDesk(self)
        #: 五定 plans: their orders generated ahead, their missed visits raised as tasks (dispatch.plans)
        self.plans = PlanDesk(self)
        #: duty shifts and handovers (dispatch.duty); a handover's summary is read through the views' placement
        self.duty = DutyDesk(self)
        #: referrals to clinics' green channels (dispatch.referrals)
        self.referrals = ReferralDesk(self)
        #: elders leaving care, devices unbound and test-called (dispatch.keeping)
        self.keeping = KeepingDesk(self)
        self.views = Views(
            self.state, directory, clock, settings, unknown=self.supervision.unknown, protocols=self.protocols
        )
        self.timers_changed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._registry_lock = asyncio.Lock()

    # -- start ------------------------------------------------------------------------------------

    async def start(self) -> int:
        """Rebuild the projections from the journal, load the indexes, resume stalled dispatches."""
        count = 0
        async for entry in self.journal.replay():
            self._replay(entry)
            count += 1
        await self.activate()
        return count

    async def fold(self, entry: Entry) -> None:
        """Apply one entry another node wrote (a cluster follower's projection, dispatch.cluster)."""
        self._replay(entry)

    async def activate(self) -> None:
        """Start deciding on the projection as it stands: the clinics' index, the available responders,
        supervision and plans' timers, and every open incident's stalled dispatch."""
        for responder in self.directory.responders.values():
            if responder.kind == "clinic":
                await self.clinics.upsert(responder.responder_id, responder.lat, responder.lon)
        self.state.dirty.update(self.state.responders)
        self.supervision.start(self.clock.now())
        self.plans.start(self.clock.now())
        async with self._txn():
            for incident in list(self.state.incidents.values()):
                if incident.open and rule(incident.alarm_type).dispatch:
                    await self._dispatch_next(incident)

    def _replay(self, entry: Entry) -> None:
        """Apply one stored entry; never let one bad entry keep the service from starting."""
        if isinstance(entry.fact, Unrecognised):
            if entry.fact.error is not None:
                log.error("replay: entry %d (%s) cannot be read: %s", entry.seq, entry.kind, entry.fact.error)
            else:
                what = (entry.seq, entry.kind, entry.version)
                log.warning("replay: entry %d is a %s (v%d) this release does not know", *what)
            return
        try:
            self.state.apply(entry)
        except (AnxinError, KeyError) as exc:
            log.error("replay: entry %d (%s) does not apply: %s", entry.seq, entry.kind, exc)

    def changing(self) -> _Change:
        """Hold the engine's lock for one change; sync the geo index and wake the timers after it.

        Returns without waiting for durability (the intake's commands); :meth:`_txn` waits (people's).
        """
        return _Change(self)

    @asynccontextmanager
    async def _txn(self) -> AsyncIterator[None]:
        async with self.changing():
            yield
            seq = self.journal.head_seq
        await self.journal.durable(seq)

    def emit(self, fact: Fact, *, actor: str, incident: Incident | None = None, drill: bool = False) -> Entry:
        """Append one entry and apply it. The lock is held (rule 2)."""
        entry = self.journal.append(
            fact,
            actor=actor,
            incident_id=incident.incident_id if incident else None,
            drill=incident.drill if incident else drill,
        )
        self.state.apply(entry)
        return entry

    async def _sync_geo(self) -> None:
        now = self.clock.now()
        while self.state.dirty:
            # taken whole, never pop()ed: a set keeps its table when emptied, and each pop() walks it from where
            # the last one stopped, so after a roster of 70,000 every alarm's one dirty responder cost 0.4 ms
            taken, self.state.dirty = list(self.state.dirty), set()
            for index, responder_id in enumerate(taken):
                try:
                    await self._sync_one(responder_id, now)
                except BaseException:  # the index refused (a Redis one gone): they stay dirty for the next change
                    self.state.dirty.update(taken[index:])
                    raise

    async def _sync_one(self, responder_id: str, now: float) -> None:
        found = self._offerable(responder_id, now)
        if found is not None:
            profile, lat, lon = found
            await self.available.upsert(responder_id, lat, lon, responder_tags(profile.skills, profile.travel))
            self._freed.add(responder_id)
        else:
            await self.available.remove(responder_id)

    def _offerable(self, responder_id: str, now: float) -> tuple[Responder, float, float] | None:
        """A caregiver or volunteer of the centre who may be offered an alarm now (on duty, free, a fresh
        position), with where they are; None for anyone else. What the available index holds."""
        profile = self.directory.responders.get(responder_id)
        status = self.state.responders.get(responder_id)
        if (
            profile is None
            or profile.kind == "clinic"
            or profile.provider != CENTRE  # a contracted organisation's staff deliver services, not alarms
            or status is None
            or status.lat is None
            or status.lon is None
            or not self.state.available(responder_id, now)
        ):
            return None
        return profile, status.lat, status.lon

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

    # -- intake (see dispatch.intake: these return before durability) ----------------------------------

    async def alarm(self, request: AlarmRequest) -> Opened:
        """Open an incident for an alarm, or attach it to the elder's open one."""
        rule(request.alarm_type)
        elder_id = request.elder_id
        if request.device_id is not None:
            device = self.directory.devices.get(request.device_id)
            if device is None:
                raise NotFound(f"no device {request.device_id}", field="device_id")
            if elder_id is not None and elder_id != device.elder_id:
                raise InvalidInput(
                    f"device {request.device_id} belongs to elder {device.elder_id}",
                    field="elder_id",
                    code="device_not_elders",
                    params={"device": request.device_id},
                )
            elder_id = device.elder_id
        by_hand = request.source == "operator"
        if elder_id is None and not by_hand:
            raise InvalidInput("an alarm needs elder_id or device_id", field="elder_id", code="alarm_needs_elder")
        elder = self.elder(elder_id) if elder_id is not None else None
        if elder is not None:
            require_active(elder)  # nothing new for an elder who left the centre's care (dispatch.keeping rule 2)
        _pair(request.lat, request.lon)
        notes = [request.note] if request.note else []
        if by_hand and request.caller:
            notes.insert(0, f"caller {request.caller}")
        placed_by = request.placed_by or "map" if request.lat is not None and by_hand else None
        location: Location | None = placed_by
        alarm = Alarm(
            request.alarm_type, request.source, request.actor, elder, request.device_id,
            request.lat, request.lon, "\n".join(notes) or None, request.drill, location=location,
            caller=request.caller if by_hand else None, place=request.address if placed_by else "",
            note_shared=by_hand,  # the caller's words and number, for the caregiver at the door
        )  # fmt: skip
        async with self.changing():
            incident, attached = await self.open_alarm(alarm)
            if by_hand:  # the operator who opens it has answered it
                self._answered(incident, request.actor)
            if attached and placed_by is not None and incident.location in ("unknown", "home"):
                assert request.lat is not None and request.lon is not None
                await self._locate(incident, request.lat, request.lon, placed_by, request.address, request.actor)
            return Opened(incident.incident_id, incident.priority, attached)

    async def device_reports(self, reports: Sequence[DeviceReport], *, offers_later: bool = False) -> None:
        """Record what devices said (one frame or one read of a connection); see dispatch.supervision.
        ``offers_later``: the first offers of the incidents they open wait for :meth:`offer_opened` (rule 6)."""
        async with self.changing():
            self._offers_later = offers_later
            try:
                for report in reports:
                    await self.supervision.report(report)
            finally:
                self._offers_later = False

    async def open_alarm(self, alarm: Alarm) -> tuple[Incident, bool]:
        """Open (or attach) an incident for a checked alarm. Lock held. Returns (incident, attached).

        A person alarm joins the elder's open person incident. A technical one is one incident per device and
        condition until it clears; a grouped type (mains loss, missed check-in: dispatch.triage rule 4) is one
        incident per street, alarm type and drill mark, which every device of the street joins while it is
        open: a group from its first device on, so there is never a conversion at a threshold (no moment when
        fifty incidents must be merged and their clocks and acknowledgements reconciled, nothing for a replay
        to decide differently), and a lone device's mains loss reads the same, "power cut? Lantian street,
        1 device". Each device that joins writes one ``incident.alarm_attached`` (its dedup key, code and
        time stay on record, 600 entries for 600 devices), but the group has one answer timer, so at most one
        escalation, and one acknowledgement for all. A device not placed in a street (no elder) stays alone.
        """
        now = self.clock.now()
        elder = alarm.elder
        technical = rule(alarm.alarm_type).technical
        if elder is None and alarm.household:  # a household's landline, none of them picked (triage rule 5)
            level, reasons = household_priority(alarm.alarm_type, alarm.household, now)
        else:
            level, reasons = priority(alarm.alarm_type, elder, now)
        street = None
        if technical:
            existing_id = self.state.conditions.get((alarm.device_id or "", alarm.alarm_type, alarm.drill))
            if existing_id is not None:  # the same condition is already open: one incident until it clears
                return self.state.incidents[existing_id], True
            if rule(alarm.alarm_type).grouped and alarm.device_id is not None and elder is not None:
                street = street_of(elder.community)
                existing_id = self.state.groups.get((street, alarm.alarm_type, alarm.drill))
                if existing_id is not None and now - self.state.incidents[existing_id].joined_at > (
                    self.settings.group_window_s
                ):  # a device of the street hours after the last one: its own event, a new group, a new clock
                    existing_id = None
        else:
            who = person_key(elder.elder_id if elder else None, alarm.device_id)
            existing_id = self.state.open_by_elder.get((who, alarm.drill)) if who is not None else None
        if existing_id is not None:
            incident = self.state.incidents[existing_id]
            self.emit(
                AlarmAttached(
                    alarm.alarm_type, alarm.source, level, tuple(reasons), device_id=alarm.device_id,
                    lat=alarm.lat, lon=alarm.lon, dedup=alarm.dedup, code=alarm.code, zone=alarm.zone,
                    call_id=alarm.call_id,
                ),
                actor=alarm.actor, incident=incident,
            )  # fmt: skip
            if alarm.note and street is None:  # a group keeps the count, not a note per device
                self.emit(Note(alarm.note, shared=alarm.note_shared), actor=alarm.actor, incident=incident)
            if rule(alarm.alarm_type).dispatch and not technical:
                # the elder alarms again: after a visit (the caregiver reported done, nobody decided yet) someone
                # is sent again; while someone holds an offer or the job, nothing changes
                await self._dispatch_next(incident, again=True)
            return incident, True
        incident = self.opened(alarm, level, reasons, technical, now, street)
        if alarm.note:
            self.emit(Note(alarm.note, shared=alarm.note_shared), actor=alarm.actor, incident=incident)
        if rule(alarm.alarm_type).dispatch:
            if self._offers_later:
                self._to_offer.append(incident.incident_id)
            else:
                await self._dispatch_next(incident)
        return incident, False

    @property
    def waiting_offers(self) -> int:
        """Incidents opened with ``offers_later`` whose first offers are not made yet (rule 6)."""
        return len(self._to_offer)

    async def offer_opened(self) -> None:
        """Make the first offers of the incidents opened with ``offers_later``, oldest first (rule 6). One that a
        person has seen to meanwhile (someone dispatched by hand, cancelled, flagged) is left as it is; one
        whose offers fail is flagged for the operator."""
        if not self._to_offer:
            return
        async with self.changing():
            while self._to_offer:
                incident = self.state.incidents.get(self._to_offer.popleft())
                if incident is None or incident.assignments or incident.needs_manual:
                    continue
                try:
                    await self._dispatch_next(incident)
                except JournalError:  # nothing is written until it works again: this one is offered then
                    self._to_offer.appendleft(incident.incident_id)
                    raise
                except Exception as exc:  # one incident's fault must not keep the next ones' offers back
                    log.exception("first offers of %s failed; flagged for the operator", incident.incident_id)
                    with contextlib.suppress(Exception):
                        self._manual(incident, f"automatic offers failed: {type(exc).__name__}", waiting=True)

    def opened(
        self,
        alarm: Alarm,
        level: int,
        reasons: list[str],
        technical: bool,
        now: float,
        group: str | None = None,
        *,
        test: bool = False,
    ) -> Incident:
        """Write a new incident for a checked alarm (a device's test call's too: dispatch.keeping). Lock held."""
        elder = alarm.elder
        lat, lon = alarm.lat, alarm.lon
        centre = self.directory.street_centre(group) if group is not None else None
        location: Location
        if centre is not None:  # a street's group is shown at the street, not at its first device's home
            (lat, lon), location = centre, "street"
        elif lat is not None and lon is not None:
            location = alarm.location or "reported"
        elif elder is not None:
            lat, lon, location = elder.lat, elder.lon, "home"
        else:
            location = "unknown"
        incident_id = f"INC-{self.journal.head_seq + 1}"
        self.emit(
            IncidentOpened(
                incident_id=incident_id,
                alarm_type=alarm.alarm_type,
                source=alarm.source,
                priority=level,
                priority_reasons=tuple(reasons),
                location=location,
                answer_deadline=now + self.settings.answer_target_s,
                technical=technical,
                elder_id=elder.elder_id if elder and group is None else None,  # a group is the street's, no one's
                device_id=alarm.device_id,
                call_id=alarm.call_id,
                lat=lat,
                lon=lon,
                dedup=alarm.dedup,
                code=alarm.code,
                zone=alarm.zone,
                caller=alarm.caller,
                place=group.rpartition("/")[2] if group is not None else alarm.place,  # a group: the street's name
                group=group,
                test=test,
            ),
            actor=alarm.actor,
            drill=alarm.drill,
        )
        return self.state.incidents[incident_id]

    async def call_event(self, event: CallEvent) -> CallOutcome:
        """A telephony event, moving the call along :data:`~dispatch.machines.CALL_TRANSITIONS`. The PBX's events
        come repeated, late and out of order (after its link dropped): one the call has moved past (queued after
        answered, anything after ended) is answered without writing anything. An inbound call that ends never
        answered (missed, or abandoned in the queue) opens an incident to call back (``open_incident``); an
        outbound call never does."""
        if event.event not in CALL_EVENTS:
            raise InvalidInput("event must be ringing, queued, answered, transferred or ended", field="event",
                               code="unknown_call_event")  # fmt: skip
        rule(event.alarm_type)
        async with self.changing():
            call = self.state.calls.get(event.call_id)
            if call is None:
                # a number several elders share rings with all of them, none chosen: the operator picks
                household = tuple(e.elder_id for e in self.directory.household(event.caller))
                one = household[0] if len(household) == 1 else None
                ringing = CallRinging(event.call_id, event.caller, event.line, one, household if one is None else (),
                                      direction=event.direction, at=event.at)  # fmt: skip
                self.emit(ringing, actor=event.actor, drill=event.drill)
                call = self.state.calls[event.call_id]
            move = CALL_MOVES.get(event.event)
            answered, moved = call.state == CallState.ANSWERED, _moved_on(call, event.extension)
            if move is CallMove.ANSWER and answered and moved:
                move = CallMove.TRANSFER  # answered again at another extension: it was passed on
            elif move is CallMove.TRANSFER and answered and event.extension and not moved:
                move = None  # passed on to where it already is: a repeat (each node of a cluster reports it)
            if move is not None and call_allows(CallState(call.state), move):
                # an inbound call nobody picked up (missed, or abandoned in the queue): an elder who called for help
                # gets help anyway, and a clock
                call_back = call.answered_at is None and call.direction == "in" and event.open_incident
                self.emit(_call_fact(move, event), actor=event.actor, drill=call.drill)
                if move is CallMove.END and call_back and call.incident_id is None:
                    await self._call_incident(event, call, "missed hotline call", "call back")
            return CallOutcome(call.call_id, call.state, call.elder_id, call.incident_id, call.kind)

    async def dial(
        self,
        number: str,
        *,
        actor: str,
        extension: str,
        elder_id: str | None = None,
        about_call: str | None = None,
        incident_id: str | None = None,
    ) -> str:
        """An operator's click-to-call: checks the number and what the call is about, writes
        :class:`~dispatch.entries.CallDialed` (durable before the PBX is asked) and returns the new call's id,
        under which the PBX's events about it arrive (``direction="out"``). Whether the operator may see the elder,
        call or incident named is the console's to check (their reach)."""
        digits = dial_number(number)
        if not extension:
            raise Conflict("an outbound call rings the operator's extension first: they have none", code="no_extension")
        elder = self.elder(elder_id) if elder_id is not None else None
        if elder is not None:
            require_active(elder)
        async with self._txn():
            drill = False
            if about_call is not None:
                about = self.state.calls.get(about_call)
                if about is None:
                    raise NotFound(f"no call {about_call}", field="call_id")
                drill = about.drill
            if incident_id is not None:
                drill = drill or self.incident(incident_id).drill
            call_id = f"DIAL-{self.journal.head_seq + 1}"
            operator = actor.partition(":")[2] or actor
            dialed = CallDialed(call_id, digits, operator, extension, elder_id, about_call, incident_id)
            self.emit(dialed, actor=actor, drill=drill)
            return call_id

    async def dial_failed(self, call_id: str, reason: str, *, actor: str) -> None:
        """The PBX refused an operator's click-to-call: the call ends with outcome failed (an ended call stays as
        it is)."""
        async with self._txn():
            call = self.state.calls.get(call_id)
            if call is None or call.direction != "out":
                raise NotFound(f"no outbound call {call_id}", field="call_id")
            if call_allows(CallState(call.state), CallMove.END):
                cause = f"{ORIGINATE_FAILED}: {reason}"[:200]
                self.emit(CallEnded(call_id, cause=cause), actor=actor, drill=call.drill)

    async def pick_caller(self, call_id: str, elder_id: str | None, *, actor: str) -> CallOutcome:
        """The operator says which of the elders a call offers it is about (a household sharing the landline that
        called, or the elders of the family member calling), or someone else (``None``). Until the call is
        classified a pick can be changed; each one is on record."""
        async with self._txn():
            call = self.state.calls.get(call_id)
            if call is None:
                raise NotFound(f"no call {call_id}", field="call_id")
            if call.kind is not None:
                raise Conflict(f"call {call_id} was already classified as {call.kind}",
                               code="call_already_classified", params={"kind": call.kind})  # fmt: skip
            offered = [e.elder_id for e in offered_elders(call, self.directory)]
            if len(offered) < 2:
                raise Conflict(f"call {call_id} offers no elders to pick from", code="call_nothing_to_pick")
            if elder_id is not None and elder_id not in offered:
                raise InvalidInput(f"{elder_id} is not one of the elders call {call_id} offers", field="elder_id",
                                   code="elder_not_offered")  # fmt: skip
            self.emit(CallerPicked(call_id, elder_id), actor=actor, drill=call.drill)
            return CallOutcome(call.call_id, call.state, call.elder_id, call.incident_id, call.kind)

    async def classify_call(self, c: Classification) -> CallOutcome:
        """The operator's word on an answered call (see :class:`~dispatch.commands.Classification`)."""
        if c.kind == "emergency" and c.incident_id is None:
            if c.alarm_type is None:
                raise InvalidInput(
                    "an emergency needs its alarm type", field="alarm_type", code="call_needs_alarm_type"
                )
            rule(c.alarm_type)
        _pair(c.lat, c.lon)
        elder = self.elder(c.elder_id) if c.elder_id is not None else None
        if elder is not None:
            require_active(elder)
        async with self._txn():
            call = self.state.calls.get(c.call_id)
            if call is None:
                raise NotFound(f"no call {c.call_id}", field="call_id")
            if call.answered_at is None:
                raise Conflict(f"call {c.call_id} was not answered", code="call_not_answered")
            if call.kind is not None:
                raise Conflict(
                    f"call {c.call_id} was already classified as {call.kind}",
                    code="call_already_classified",
                    params={"kind": call.kind},
                )
            drill = self._call_drill(c.call_id)
            incident_id = None
            if c.incident_id is not None:
                incident = self.incident(c.incident_id)
                if not incident.open:
                    raise Conflict(
                        f"{c.incident_id} is {incident.state.value}",
                        code="incident_closed",
                        params={"incident": c.incident_id, "state": incident.state.value},
                    )
                if incident.drill != drill:  # a drill's words never reach a real caregiver, nor the reverse
                    raise Conflict(
                        f"call {c.call_id} and {c.incident_id} are not both drill or both real",
                        code="drill_mismatch",
                        params={"incident": c.incident_id},
                    )
                incident_id = incident.incident_id
                words = f"call from {call.caller}" + (f": {c.text}" if c.text else "")
                shared = bool(c.text) and c.kind == "emergency"  # what the caregiver at the door must know
                self.emit(Note(words, shared=shared), actor=c.actor, incident=incident)
                if c.kind == "emergency":
                    self._answered(incident, c.actor)  # the operator is on the line about it
            elif c.kind == "emergency":
                assert c.alarm_type is not None
                who = elder or (self.directory.elders.get(call.elder_id) if call.elder_id else None)
                lat, lon, address = c.lat, c.lon, c.address if c.lat is not None else ""
                location: Location | None = c.placed_by if c.lat is not None else None
                household = self._household(call) if who is None else ()
                home = _home_of(household) if lat is None else None
                if home is not None:  # a household's landline, nobody of them picked: whoever calls is at their home
                    (lat, lon, address), location = home, "home"
                alarm = Alarm(
                    c.alarm_type, "hotline", c.actor, who, lat=lat, lon=lon, drill=drill, call_id=c.call_id,
                    location=location, note=f"hotline call from {call.caller} on line {call.line}",
                    caller=None if who else call.caller, place=address, household=household,
                )  # fmt: skip
                incident, attached = await self.open_alarm(alarm)
                incident_id = incident.incident_id
                self._answered(incident, c.actor)  # the operator is on the line with the caller
                if c.text:
                    self.emit(Note(c.text, shared=True), actor=c.actor, incident=incident)
                if attached and c.lat is not None and incident.location in ("unknown", "home"):
                    assert c.lon is not None
                    await self._locate(incident, c.lat, c.lon, c.placed_by or "map", c.address, c.actor)
            classified = CallClassified(c.call_id, c.kind, c.text, elder.elder_id if elder else None, incident_id)
            self.emit(classified, actor=c.actor, drill=drill)
            return CallOutcome(call.call_id, call.state, call.elder_id, call.incident_id, call.kind)

    def _answered(self, incident: Incident, actor: str) -> None:
        """An operator who opened (or classified a call into) an incident has answered it. Lock held."""
        if incident.acknowledged_at is None and incident_allows(incident.state, IncidentEvent.ACKNOWLEDGE):
            self.emit(Acknowledged(), actor=actor, incident=incident)

    async def called_back(self, call_id: str, outcome: str, *, actor: str) -> None:
        """The call-back task of a silent call is done."""
        if _blank(outcome):
            raise InvalidInput("a call back needs its outcome", field="outcome", code="outcome_required")
        async with self._txn():
            call = self.state.calls.get(call_id)
            if call is None:
                raise NotFound(f"no call {call_id}", field="call_id")
            if call.callback != "due":
                raise Conflict(f"call {call_id} has no call back due", code="no_callback_due")
            self.emit(CalledBack(call_id, outcome), actor=actor, drill=self._call_drill(call_id))

    def _call_drill(self, call_id: str) -> bool:
        return self.state.calls[call_id].drill

    async def _call_incident(self, event: CallEvent, call: Call, what: str, then: str = "") -> None:
        elder = self.directory.elders.get(call.elder_id) if call.elder_id else None
        note = f"{what} from {event.caller} on line {event.line}" + (f": {then}" if then else "")
        household = self._household(call) if elder is None else ()
        if household:  # nobody said who of the household called: none of them chosen, the household named
            note = f"{note} (household: {', '.join(e.name for e in household)})"
        home = _home_of(household)
        if home is not None:  # a landline is in one home: the landline's incident is there
            lat, lon, address = home
            alarm = Alarm(
                event.alarm_type, "hotline", event.actor, None, lat=lat, lon=lon, drill=event.drill,
                call_id=event.call_id, location="home", caller=event.caller, place=address, note=note,
                household=household,
            )  # fmt: skip
        else:  # one elder, or a household whose homes are apart (placed by hand)
            alarm = Alarm(
                event.alarm_type, "hotline", event.actor, elder, note=note, drill=event.drill, call_id=event.call_id,
                household=household,
            )  # fmt: skip
        await self.open_alarm(alarm)  # applying it links the call to the incident

    def _household(self, call: Call) -> tuple[Elder, ...]:
        """The elders sharing the landline of a call none of them was picked for (empty for any other call)."""
        return tuple(self.directory.elders[i] for i in call.household if i in self.directory.elders)

    def clear_condition(
        self, device_id: str, alarm_type: str, outcome: str, actor: str, drill: bool, *,
        last: str = "all devices restored",
    ) -> None:  # fmt: skip
        """Resolve the open technical incident for this device and condition, if there is one; of a group, the
        device leaves it and the last one resolves it (``last``: the group's outcome). Lock held."""
        incident_id = self.state.conditions.get((device_id, alarm_type, drill))
        if incident_id is None:
            return
        incident = self.state.incidents[incident_id]
        if incident.group is not None:  # one device of a group: it leaves the count; the last one resolves it
            self.emit(DeviceRestored(device_id, outcome), actor=actor, incident=incident)
            if incident.affected:
                return
            if len(incident.devices) > 1:  # a group of one resolves as that device's incident did
                outcome = last
        if incident_allows(incident.state, IncidentEvent.RESOLVE):
            self._withdraw_all(incident, actor, outcome)
            self.emit(Resolved(outcome), actor=actor, incident=incident)

    # -- dispatch ---------------------------------------------------------------------------------

    async def _dispatch_next(self, incident: Incident, *, again: bool = False) -> None:
        """Offer the incident to the next candidates, or put it in the backlog. Lock held.

        The most urgent priorities are offered to several responders at once (``parallel_offers``): the slots
        left empty by a decline or an expiry are filled while nobody has accepted. An incident on scene whose
        caregiver reported done waits for the operator's decision; only a new alarm from the elder (``again``)
        sends someone without it."""
        if not incident.open or incident.needs_manual or incident.state is IncidentState.ASSIGNED:
            return
        active = self.state.active_assignments(incident)
        if any(a.state is not AssignmentState.OFFERED for a in active):
            return  # someone holds the job (on scene included)
        if incident.state is IncidentState.ESCALATED:
            return  # handed to 120/110/119: the engine sends nobody (see _refused)
        if incident.state is IncidentState.ON_SCENE and not again:
            return
        width = self._width(incident)
        if len(active) >= width:
            return
        if incident.lat is None or incident.lon is None:
            self._manual(incident, "location unknown")
            return
        tried = {self.state.assignments[a].responder_id for a in incident.assignments}
        if incident.failed_offers >= self.settings.max_offers * width:
            if not active and not self._last_rings(incident, tried):  # the caregivers said no: the last rings
                self._manual(incident, f"{incident.failed_offers} offers declined or expired", waiting=True)
            return
        now = self.clock.now()
        slots = width - len(active)
        available = self.state.available
        ready = [c for c in incident.ranking if c.responder_id not in tried and available(c.responder_id, now)]
        if not ready:
            ready = list(await self._rank(incident, tried))
        # someone who let an offer lapse a moment ago is probably away from the phone: asked after the others
        ready.sort(key=lambda c: self._away(c.responder_id, now))  # stable: by arrival within each
        picks = ready[:slots]
        if not picks:
            if not active and not self._last_rings(incident, tried):
                self._manual(incident, self._nobody(incident), waiting=True)
            return
        # a second (third ...) responder at once only if they would be at the door about as soon as the best one
        # offered: whoever accepts first goes, and a far one answering first would arrive later
        best = min((a.eta_s for a in active if a.eta_s is not None), default=None)
        if best is None:
            best = picks[0].eta_s
            picks = picks[:1] + [c for c in picks[1:] if c.eta_s <= best + self.settings.parallel_slack_s]
        else:
            picks = [c for c in picks if c.eta_s <= best + self.settings.parallel_slack_s]
        for candidate in picks:
            self._offer(
                incident, candidate.responder_id, by="auto", distance_m=candidate.distance_m, eta_s=candidate.eta_s,
                actor="system",
            )  # fmt: skip

    def _away(self, responder_id: str, now: float) -> bool:
        """They let an offer lapse within the last AWAY_OFFERS offer periods."""
        status = self.state.responders.get(responder_id)
        lapsed = status.lapsed_at if status is not None else None
        return lapsed is not None and now - lapsed < AWAY_OFFERS * self.settings.offer_timeout_s

    def _width(self, incident: Incident) -> int:
        """How many responders are offered this incident at once."""
        return self.settings.parallel_offers.get(incident.priority, 1)

    def _circle(self, skill: str | None) -> list[_Step]:
        """The wider circle, step by step: (skill asked for, radius, the latest arrival it accepts). See
        Settings.wider_radii_m."""
        base = self.settings.match_radius_m
        steps: list[_Step] = [(skill, base, None)]
        wider = sorted(r for r in self.settings.wider_radii_m if r > base)
        steps += [(skill, radius, self.settings.wider_eta_s) for radius in wider]
        if skill is not None and self.settings.unskilled_help:
            steps.append((None, base, None))
        return steps

    def _nobody(self, incident: Incident) -> str:
        skill = rule(incident.alarm_type).skill
        radius = max(r for _, r, _ in self._circle(skill)) / 1000
        if skill is None:
            return f"no free responder within {radius:g} km"
        near = self.settings.match_radius_m / 1000
        nearer = f", nor anyone within {near:g} km" if self.settings.unskilled_help else ""
        return f"no free responder with skill {skill} within {radius:g} km{nearer}"

    async def _refused(self, incident: Incident) -> None:
        """An offer was declined or lapsed: the next candidate. Lock held. For an incident handed to 120/110/119
        the engine sends nobody else, but the operator who sent someone besides must know they are not coming."""
        if incident.state is IncidentState.ESCALATED:
            if not incident.needs_manual and not self.state.active_assignments(incident):
                self._manual(incident, "the responder sent after the hand-over is not coming")
            return
        await self._dispatch_next(incident)

    async def _rank(self, incident: Incident, tried: set[str]) -> tuple[RankedResponder, ...]:
        """Rank the free responders for the incident, step by step through the wider circle (the first step that
        finds anyone is journaled, with the skill and radius it asked for)."""
        assert incident.lat is not None and incident.lon is not None
        alarm = rule(incident.alarm_type)
        ranking, skill, radius = await self._in_circle(incident, tried)
        clinic = incident.clinic
        if alarm.medical and clinic is None:
            proposal = await self.matcher.nearest_clinic(incident.lat, incident.lon, self.clock.now())
            clinic = rounded(proposal) if proposal else None
        candidates = tuple(rounded(c) for c in ranking)
        self.emit(
            Ranked(candidates, clinic, skill, radius, tuple(sorted(tried))),
            actor="system",
            incident=incident,
        )
        return candidates

    async def _in_circle(self, incident: Incident, tried: set[str]) -> tuple[list[RankedResponder], str | None, float]:
        """The free responders of the first step of the wider circle that finds anyone, best first, with the
        step's skill and radius (the last step's when none finds anyone)."""
        assert incident.lat is not None and incident.lon is not None
        alarm = rule(incident.alarm_type)
        elder = self.directory.elders.get(incident.elder_id) if incident.elder_id else None
        await self._sync_geo()
        steps = self._circle(alarm.skill)
        skill, radius, _ = steps[0]
        ranking: list[RankedResponder] = []
        for skill, radius, latest in steps:
            ranking = await self.matcher.rank(
                incident.lat,
                incident.lon,
                skill=skill,
                own_caregiver_id=elder.caregiver_id if elder else None,
                exclude=tried,
                radius_m=radius,
                wanted=alarm.skill,
            )
            if latest is not None:  # best first by arrival: the rest would come later still
                ranking = [c for c in ranking if c.eta_s <= latest]
            if ranking:
                break
        return ranking, skill, radius

    async def _hold(self, assignment: Assignment, incident: Incident) -> bool:
        """An offer's time ran out: keep it ringing (OfferHeld) when nobody in the circle who was not asked yet is
        free, at most RING_AGAIN times, rather than take it away from the one person who can answer and ring them
        again (a caregiver asleep finds the phone in 50 s, not 45). Those who let it lapse before and are free now
        are asked besides, as the backlog would (see _asked). Lock held. Whether it was held."""
        status = self.state.responders.get(assignment.responder_id)
        if (
            assignment.by != "auto" or assignment.held >= RING_AGAIN or not incident.open
            or incident.state is IncidentState.ESCALATED or incident.lat is None or incident.lon is None
            or any(a.state is not AssignmentState.OFFERED for a in self.state.active_assignments(incident))
            or status is None or not status.on_duty
        ):  # fmt: skip
            return False
        tried = {self.state.assignments[a].responder_id for a in incident.assignments}
        others, _, _ = await self._in_circle(incident, tried)
        if others:
            return False
        deadline = self.clock.now() + self.settings.offer_timeout_s
        self.emit(OfferHeld(assignment.assignment_id, assignment.responder_id, deadline), actor="system",
                  incident=incident)  # fmt: skip
        self._entered.add(incident.incident_id)  # who let it lapse before and is free now is asked besides
        if not any(a.by in RING_OFFERS for a in self.state.active_assignments(incident)):
            self._last_rings(incident, tried)  # the volunteer downstairs is asked besides, as after an expiry
        return True

    def _offer(
        self,
        incident: Incident,
        responder_id: str,
        *,
        by: OfferedBy,
        distance_m: float | None,
        eta_s: float | None,
        actor: str,
        timeout_s: float | None = None,
    ) -> None:
        deadline = self.clock.now() + (self.settings.offer_timeout_s if timeout_s is None else timeout_s)
        assignment_id = f"A-{self.journal.head_seq + 1}"
        self.emit(
            OfferMade(assignment_id, responder_id, deadline, by, distance_m, eta_s), actor=actor, incident=incident
        )

    def _last_rings(self, incident: Incident, tried: set[str]) -> bool:
        """The circle found nobody: a volunteer on call, else the elder's next family contact (dispatch.family,
        rules 1-3). Whether someone was offered it (False: everyone was asked or told). Lock held. Never for a
        drill: a drill run against a live server must not page an elder's son or a neighbour off duty."""
        assert incident.lat is not None and incident.lon is not None
        if incident.drill:
            return False
        asked = sum(1 for a in incident.assignments if self.state.assignments[a].by == "on_call")
        best: tuple[float, float, Responder] | None = None
        for profile in self.directory.on_call.values() if asked < self.settings.max_offers else ():
            status = self.state.responders.get(profile.responder_id)
            if (
                profile.kind == "clinic" or profile.provider != CENTRE
                or profile.responder_id in tried or (status is not None and status.assignment_id is not None)
            ):  # fmt: skip
                continue
            distance = geodesic_m(profile.lat, profile.lon, incident.lat, incident.lon)
            if distance <= self.settings.on_call_radius_m:
                eta = eta_s(distance, profile.travel)
                best = (
                    (eta, distance, profile)
                    if best is None or (eta, distance, profile.responder_id) < (*best[:2], best[2].responder_id)
                    else best
                )  # ties by id, not by when a volunteer went on call
        if best is not None:
            eta, distance, profile = best
            self._offer(incident, profile.responder_id, by="on_call", distance_m=round(distance), eta_s=round(eta),
                        actor="system")  # fmt: skip
            if profile.phone:
                self._notify(incident, profile.responder_id, profile.name, profile.phone, offered=True)
            return True
        elder = self.directory.elders.get(incident.elder_id) if incident.elder_id else None
        for position, contact in enumerate(elder.contacts if elder else (), start=1):
            assert elder is not None
            kin = kin_id(elder.elder_id, contact.phone)
            if kin in tried or kin in incident.contacted:
                continue
            status = self.state.responders.get(kin)
            offered = contact.app and (status is None or status.assignment_id is None)
            if offered:
                timeout = self.settings.family_offer_timeout_s
                self._offer(incident, kin, by="family", distance_m=None, eta_s=None, actor="system", timeout_s=timeout)
            self._notify(incident, kin, contact.name, contact.phone, offered=offered, relation=contact.relation,
                         position=position)  # fmt: skip
            if offered:
                return True
        return False

    def _notify(
        self, incident: Incident, responder_id: str, name: str, phone: str, *, offered: bool, relation: str = "",
        position: int = 0,
    ) -> None:  # fmt: skip
        """Journal a message to someone of the last rings; it leaves once durable, never for a drill."""
        kind = self.channel.kind
        notified = ContactNotified(responder_id, name, phone, kind, offered, relation, position)
        entry = self.emit(notified, actor="system", incident=incident)
        if incident.drill:
            return
        elder = self.directory.elders.get(incident.elder_id) if incident.elder_id else None
        text = message_text(elder.name if elder else "", incident.alarm_type, self.settings.centre_phone,
                            offered=offered)  # fmt: skip

        async def send() -> None:
            try:
                await self.journal.durable(entry.seq)
                await self.channel.send(phone, text)
            except Exception:  # a failed SMS must not stop the dispatch: the journal has the attempt
                log.exception("%s to contact %s of %s failed", kind, responder_id, incident.incident_id)

        task = asyncio.create_task(send(), name="contact")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _asked(self, incident: Incident) -> tuple[set[str], Counter[str]]:
        """Whom the backlog does not offer the incident again (they declined or took it, or let it lapse more than
        RING_AGAIN times; an offer withdrawn from them was no answer of theirs), and how often each of the others
        let it lapse: at night the one caregiver around may have been on the stairs, and is asked again when
        nobody else is free."""
        done: set[str] = set()
        lapsed: Counter[str] = Counter()
        for assignment_id in incident.assignments:
            assignment = self.state.assignments[assignment_id]
            lapsed[assignment.responder_id] += assignment.held  # each time it kept ringing unanswered
            if assignment.state is AssignmentState.EXPIRED:
                lapsed[assignment.responder_id] += 1
            elif assignment.state is not AssignmentState.WITHDRAWN:  # withdrawn is no answer of theirs (off duty,
                done.add(assignment.responder_id)  # replaced, placed elsewhere): they may be asked again
        done.update(r for r, n in lapsed.items() if n > RING_AGAIN)
        return done, lapsed

    def _manual(self, incident: Incident, reason: str, *, waiting: bool = False) -> None:
        self.emit(NeedsManual(reason, waiting), actor="system", incident=incident)
        if waiting:
            self._entered.add(incident.incident_id)

    async def _serve_backlog(self, freed: set[str], entered: set[str]) -> None:
        """The backlog meets the responders, as a change ends (lock held): those who just became available (free,
        on duty, moved, position fresh), and, for incidents that just went into the backlog, everyone available
        within their circle. The waiting incidents go most urgent and oldest first, each to the best of them: one
        not yet asked before one who let it lapse (see _asked), then by the circle's step and arrival. Cheap when
        nobody waits: a great-circle distance per (incident, responder) first, the geodesic only within reach."""
        now = self.clock.now()
        pool = set(freed)
        for incident_id in entered:
            incident = self.state.incidents[incident_id]
            if incident.lat is None or incident.lon is None:
                continue
            reach = max(radius for _, radius, _ in self._circle(rule(incident.alarm_type).skill))
            near = await self.available.nearest(incident.lat, incident.lon, k=ENTERED_POOL, radius_m=reach)
            pool.update(responder_id for responder_id, _ in near)
        free = {r: found for r in pool if (found := self._offerable(r, now)) is not None}
        waiting = sorted((self.state.incidents[i] for i in self.state.backlog | self.state.ringing), key=_urgency)
        for incident in waiting:
            if not free:
                return
            if (
                not incident.open or not (incident.waiting or incident.incident_id in self.state.ringing)
                or incident.lat is None or incident.lon is None or incident.state is IncidentState.ESCALATED
                or not all(a.besides for a in self.state.active_assignments(incident))
            ):  # fmt: skip
                continue  # (a last ring's or a held offer does not keep a caregiver away: dispatch.family rule 2)
            steps = self._circle(rule(incident.alarm_type).skill)
            reach = max(radius for _, radius, _ in steps) * (1 + _ROUGH_DISTANCE_ERROR)
            reachable = [
                (r, *f) for r, f in free.items() if haversine_m(f[1], f[2], incident.lat, incident.lon) <= reach
            ]
            if not reachable:
                continue  # the common case while many wait and one phone reports its position: nothing more
            tried, lapsed = self._asked(incident)
            best: tuple[int, bool, int, float, float, str] | None = None
            for responder_id, profile, lat, lon in reachable:
                if responder_id in tried:
                    continue
                distance = geodesic_m(lat, lon, incident.lat, incident.lon)
                arrival = eta_s(distance, profile.travel)
                step = _step(steps, profile, distance, arrival)
                if step is None:
                    continue
                away = self._away(responder_id, now)  # someone not yet asked, and at their phone, first
                key = (lapsed[responder_id], away, step, arrival, distance, responder_id)
                best = key if best is None or key < best else best
            if best is None:
                continue
            *_, eta, distance, responder_id = best
            self._offer(incident, responder_id, by="auto", distance_m=round(distance), eta_s=round(eta), actor="system")
            del free[responder_id]
        if free and self.state.travelling and self.settings.take_over_gain_s > 0:
            self._take_over(free, now)

    def _take_over(self, free: dict[str, tuple[Responder, float, float]], now: float) -> None:
        """Those still free after the backlog meet the responders still on the way (accepted, not at the door),
        most urgent incident first: one who would be at the door ``take_over_gain_s`` sooner than the one on the
        way is arriving is offered the incident besides (a walker 4 km off, and a cyclist 500 m away just came
        free). If they accept, the one on the way is released (OfferWithdrawn, TAKEN_OVER); if not, nothing
        changes. Lock held. Never instead of the operator's own choice, and never someone without the skill
        instead of someone with it. See _still_ahead for the estimate of the one on the way."""
        gain = self.settings.take_over_gain_s
        journeys: list[tuple[Incident, float, bool]] = []
        for assignment_id in self.state.travelling:
            assignment = self.state.assignments[assignment_id]
            incident = self.state.incidents[assignment.incident_id]
            if assignment.by == "operator" or incident.state is not IncidentState.ASSIGNED or incident.lat is None:
                continue
            ahead = self._still_ahead(assignment, now)
            asked = any(a.state is AssignmentState.OFFERED for a in self.state.active_assignments(incident))
            if ahead is not None and ahead > gain and not asked:  # (one take-over offer at a time)
                wanted = rule(incident.alarm_type).skill
                on_way = self.directory.responders.get(assignment.responder_id)
                skilled = wanted is None or (on_way is not None and wanted in on_way.skills)
                journeys.append((incident, ahead, skilled))
        journeys.sort(key=lambda journey: _urgency(journey[0]))
        for incident, ahead, skilled in journeys:
            if not free:
                return
            assert incident.lat is not None and incident.lon is not None
            reach = (ahead - gain) * _FASTEST_M_S  # nobody farther could arrive that much sooner
            near = [(r, *f) for r, f in free.items() if haversine_m(f[1], f[2], incident.lat, incident.lon) <= reach]
            if not near:
                continue
            steps = self._circle(rule(incident.alarm_type).skill)
            if skilled:  # the one on the way has the skill: only someone with it may take over
                steps = [step for step in steps if step[0] is not None]
            tried, lapsed = self._asked(incident)
            best: tuple[int, int, float, float, str] | None = None
            for responder_id, profile, lat, lon in near:
                if responder_id in tried:
                    continue
                distance = geodesic_m(lat, lon, incident.lat, incident.lon)
                arrival = eta_s(distance, profile.travel)
                step = _step(steps, profile, distance, arrival)
                if step is None or arrival + gain > ahead:
                    continue
                key = (lapsed[responder_id], step, arrival, distance, responder_id)
                best = key if best is None or key < best else best
            if best is None:
                continue
            *_, arrival, distance, responder_id = best
            self._offer(incident, responder_id, by="auto", distance_m=round(distance), eta_s=round(arrival),
                        actor="system")  # fmt: skip
            del free[responder_id]

    def _still_ahead(self, assignment: Assignment, now: float) -> float | None:
        """Seconds until a responder on the way is at the door, as far as the engine can tell (None: it cannot,
        a family member's way is unknown): their arrival estimate counted from when they accepted, or, once they
        reported setting off, the travel part of it counted from then. Overdue is 0: nobody is called back from
        the stairs."""
        if assignment.eta_s is None or assignment.accepted_at is None:
            return None
        ahead = assignment.accepted_at + assignment.eta_s - now
        profile = self.directory.responders.get(assignment.responder_id)
        if assignment.state is AssignmentState.EN_ROUTE and profile is not None:
            travel = assignment.eta_s - TRAVEL_MODES[profile.travel].setoff_s
            ahead = min(ahead, assignment.updated_at + travel - now)
        return max(0.0, ahead)

    def _withdraw_all(self, incident: Incident, actor: str, reason: str) -> None:
        for assignment in self.state.active_assignments(incident):
            self.emit(
                OfferWithdrawn(assignment.assignment_id, assignment.responder_id, reason),
                actor=actor,
                incident=incident,
            )

    # -- operator actions -------------------------------------------------------------------------

    async def acknowledge(self, incident_id: str, *, actor: str) -> None:
        async with self._txn():
            incident = self.incident(incident_id)
            if incident.acknowledged_at is not None:
                raise Conflict(
                    f"{incident_id} was already acknowledged by {incident.acknowledged_by}",
                    code="already_acknowledged",
                    params={"by": (incident.acknowledged_by or "").partition(":")[2] or incident.acknowledged_by},
                )
            self._require(incident, IncidentEvent.ACKNOWLEDGE)
            self.emit(Acknowledged(), actor=actor, incident=incident)

    async def dispatch(self, incident_id: str, responder_id: str, *, actor: str, replace: bool = False) -> None:
        """An operator offers the incident to a chosen responder, withdrawing any pending offer.

        Replacing someone who accepted, is on the way or is at the door (the caregiver fell ill, the bike broke
        down) withdraws their job and takes the incident back to dispatching, from where the new offer goes
        out -- but only with ``replace``: without it the command is refused (``replace_needs_confirmation``),
        so a stray click never calls a caregiver away from an elder on the floor.
        """
        async with self._txn():
            incident = self.incident(incident_id)
            if not incident_allows(incident.state, IncidentEvent.REOPEN_DISPATCH):
                self._require(incident, IncidentEvent.OFFER)
            profile = self.directory.responders.get(responder_id)
            if profile is None:
                raise NotFound(f"no responder {responder_id}", field="responder_id")
            if profile.provider != CENTRE:  # rule 4: a contracted organisation's staff are not emergency responders
                raise Conflict(f"{responder_id} works for {profile.provider}", code="responder_contracted",
                               params={"responder": profile.name})  # fmt: skip
            if profile.kind == "clinic":
                raise InvalidInput(
                    "a clinic is proposed to the operator, not offered a job",
                    field="responder_id",
                    code="clinic_not_dispatchable",
                    params={"responder": profile.name},
                )
            status = self.state.responder(responder_id)
            if status.assignment_id is not None:
                busy = self.state.assignments[status.assignment_id]
                raise Conflict(
                    f"{responder_id} is busy with {busy.incident_id}",
                    code="responder_busy",
                    params={"responder": profile.name, "incident": busy.incident_id, "state": busy.state.value},
                )
            working = [a for a in self.state.active_assignments(incident) if a.state is not AssignmentState.OFFERED]
            if working and not replace:
                current = working[0]
                name = self._name(current.responder_id)
                raise Conflict(
                    f"{current.responder_id} is {current.state.value} on {incident_id}; send replace to withdraw them",
                    code="replace_needs_confirmation",
                    params={"responder": name, "state": current.state.value, "incident": incident_id},
                )
            distance = eta = None
            if status.lat is not None and status.lon is not None and incident.lat is not None:
                assert incident.lon is not None
                distance = round(geodesic_m(status.lat, status.lon, incident.lat, incident.lon), 1)
                eta = round(eta_s(distance, profile.travel), 1)
            self._withdraw_all(incident, actor, f"operator dispatched {responder_id}")
            self._offer(incident, responder_id, by="operator", distance_m=distance, eta_s=eta, actor=actor)

    def _name(self, responder_id: str) -> str:
        profile = self.directory.responders.get(responder_id)
        return profile.name if profile else responder_id

    async def locate(
        self, incident_id: str, lat: float, lon: float, *, by: PlacedBy, actor: str, address: str = ""
    ) -> None:
        """Place an open incident where the caller said they are, and try to dispatch from there."""
        async with self._txn():
            incident = self.incident(incident_id)
            if not incident.open:
                raise Conflict(
                    f"{incident_id} is {incident.state.value}",
                    code="incident_closed",
                    params={"incident": incident_id, "state": incident.state.value},
                )
            await self._locate(incident, lat, lon, by, address, actor)

    async def _locate(self, incident: Incident, lat: float, lon: float, by: PlacedBy, address: str, actor: str) -> None:
        """Lock held. A pending offer made from the old place is withdrawn (someone who already accepted keeps
        coming: the operator tells them), then the incident is offered from its new place."""
        self.emit(Located(lat, lon, by, address), actor=actor, incident=incident)
        for assignment in self.state.active_assignments(incident):
            if assignment.state is AssignmentState.OFFERED:
                withdrawn = OfferWithdrawn(
                    assignment.assignment_id, assignment.responder_id, "incident placed elsewhere"
                )
                self.emit(withdrawn, actor=actor, incident=incident)
        if rule(incident.alarm_type).dispatch:
            await self._dispatch_next(incident)

    async def retype(self, incident_id: str, alarm_type: str, *, actor: str) -> None:
        """The operator says what the alarm really is: a new type and the priority it gives. A person alarm
        stays a person alarm (a technical condition is not retyped); if nobody holds the offer or the job, the
        incident is ranked again for the new type's skill and offered."""
        new = rule(alarm_type)
        async with self._txn():
            incident = self.incident(incident_id)
            if not incident.open or incident.technical or new.technical:
                raise Conflict(
                    f"{incident_id} ({incident.alarm_type}, {incident.state.value}) cannot become {alarm_type}",
                    code="cannot_retype",
                    params={"incident": incident_id, "alarm_type": alarm_type},
                )
            if alarm_type == incident.alarm_type:
                return
            elder = self.directory.elders.get(incident.elder_id) if incident.elder_id else None
            level, reasons = priority(alarm_type, elder, self.clock.now())
            self.emit(Retyped(alarm_type, level, tuple(reasons)), actor=actor, incident=incident)
            if new.dispatch:
                await self._dispatch_next(incident)

    async def cancel(self, incident_id: str, reason: str, *, actor: str) -> None:
        if _blank(reason):
            raise InvalidInput("a false alarm needs a reason", field="reason", code="reason_required")
        async with self._txn():
            incident = self.incident(incident_id)
            self._require(incident, IncidentEvent.CANCEL)
            self._withdraw_all(incident, actor, "incident cancelled")
            self.referrals.incident_cancelled(incident, actor)
            self.emit(Cancelled(reason), actor=actor, incident=incident)

    async def escalate(self, incident_id: str, service: str, note: str, *, actor: str) -> None:
        if service not in OUTSIDE_SERVICES:
            raise InvalidInput(
                f"service must be one of {', '.join(OUTSIDE_SERVICES)}", field="service", code="unknown_service"
            )
        async with self._txn():
            incident = self.incident(incident_id)
            self._require(incident, IncidentEvent.ESCALATE)
            name = OUTSIDE_SERVICES[service]
            self.emit(Escalated(cast(OutsideService, service), name, note), actor=actor, incident=incident)

    async def note(self, incident_id: str, text: str, *, actor: str, shared: bool = False) -> None:
        """A note on the incident; ``shared`` notes show on the assigned caregiver's phone."""
        if _blank(text):
            raise InvalidInput("a note needs text", field="text", code="note_required")
        async with self._txn():
            self.emit(Note(text, shared=shared), actor=actor, incident=self.incident(incident_id))

    async def resolve(self, incident_id: str, outcome: str, *, actor: str) -> None:
        if _blank(outcome):
            raise InvalidInput("resolving needs an outcome", field="outcome", code="outcome_required")
        async with self._txn():
            incident = self.incident(incident_id)
            self._require(incident, IncidentEvent.RESOLVE)
            self._withdraw_all(incident, actor, "incident resolved")
            self.emit(Resolved(outcome), actor=actor, incident=incident)

    async def close(self, incident_id: str, *, actor: str) -> None:
        async with self._txn():
            incident = self.incident(incident_id)
            self._require(incident, IncidentEvent.CLOSE)
            self._withdraw_all(incident, actor, "incident closed")
            self.emit(Closed(), actor=actor, incident=incident)
            self.follow_ups.incident_closed(incident)

    def _require(self, incident: Incident, event: IncidentEvent) -> None:
        if not incident_allows(incident.state, event):
            raise IllegalTransition("incident", incident.state.value, event.value)

    # -- responders -------------------------------------------------------------------------------

    def _responder_profile(self, responder_id: str) -> None:
        profile = self.directory.responders.get(responder_id)
        if profile is None or profile.kind == "clinic":
            raise NotFound(f"no caregiver or volunteer {responder_id}", field="responder_id", code="unknown_responder")

    async def set_duty(
        self, responder_id: str, on: bool, *, actor: str, lat: float | None = None, lon: float | None = None
    ) -> None:
        self._responder_profile(responder_id)
        async with self._txn():
            if not on:
                self._refuse_if_on_job(responder_id)
                await self._withdraw_offer(responder_id, actor)
            self.emit(_duty(responder_id, on, lat, lon), actor=actor)

    async def set_roster(self, roster: Sequence[RosterLine], *, actor: str) -> int:
        """A supervisor sets many responders on or off duty at once (a shift roster). Returns how many changed.

        Checked first: an unknown responder, or taking someone off duty in the middle of a job (an accepted or
        started one; an offer they hold is withdrawn, as :meth:`set_duty` does), refuses the whole roster and
        writes nothing. Then it is written in chunks of :data:`ROSTER_CHUNK` lines, each one commit, the lock
        released and the loop yielded between chunks: an alarm arriving mid-roster is handled at once, not after
        the last line (one commit for 200,000 lines held SOS ACKs for 5 s). So a roster is not one commit: a
        crash between chunks leaves the first chunks written (each line is whole, and a roster sent again writes
        the same duties). Someone who accepted a job between the check and their line's chunk stays on duty
        (that line is skipped and not counted).
        """
        for responder_id, on, _, _ in roster:
            self._responder_profile(responder_id)
            if not on:
                self._refuse_if_on_job(responder_id)
        changed = 0
        for start in range(0, len(roster), ROSTER_CHUNK):
            if start:
                await asyncio.sleep(0)  # whatever waits for the lock (an alarm) goes before the next chunk
            async with self._txn():
                for responder_id, on, lat, lon in roster[start : start + ROSTER_CHUNK]:
                    if not on:
                        if self._job_of(responder_id) is not None:
                            continue
                        await self._withdraw_offer(responder_id, actor)
                    self.emit(_duty(responder_id, on, lat, lon), actor=actor)
                    changed += 1
        return changed

    def _job_of(self, responder_id: str) -> Assignment | None:
        """The job someone is on (accepted or started; an offer is not a job), or None."""
        status = self.state.responders.get(responder_id)
        if status is None or status.assignment_id is None:
            return None
        assignment = self.state.assignments[status.assignment_id]
        return None if assignment.state is AssignmentState.OFFERED else assignment

    def _refuse_if_on_job(self, responder_id: str) -> None:
        job = self._job_of(responder_id)
        if job is not None:
            raise Conflict(
                f"{responder_id} is on job {job.incident_id}; finish it first",
                code="responder_on_job",
                params={"responder": self._name(responder_id), "incident": job.incident_id},
            )

    async def _withdraw_offer(self, responder_id: str, actor: str) -> None:
        """Someone going off duty: the offer they hold, if any, is withdrawn and the next candidate offered. The
        lock is held."""
        status = self.state.responders.get(responder_id)
        if status is None or status.assignment_id is None:
            return
        assignment = self.state.assignments[status.assignment_id]
        if assignment.state is not AssignmentState.OFFERED:
            return
        incident = self.state.incidents[assignment.incident_id]
        withdrawn = OfferWithdrawn(assignment.assignment_id, responder_id, "responder went off duty")
        self.emit(withdrawn, actor=actor, incident=incident)
        await self._dispatch_next(incident)

    async def set_position(self, responder_id: str, lat: float, lon: float, *, actor: str) -> None:
        self._responder_profile(responder_id)
        async with self._txn():
            self.emit(ResponderPosition(responder_id, lat, lon), actor=actor)

    async def reply_offer(self, assignment_id: str, responder_id: str, accept: bool, *, reason: str = "") -> None:
        async with self._txn():
            assignment = self._own(assignment_id, responder_id)
            if assignment.state is not AssignmentState.OFFERED:
                raise Conflict(
                    f"offer {assignment_id} is {assignment.state.value}",
                    code="offer_closed",
                    params={"state": assignment.state.value},
                )
            incident = self.state.incidents[assignment.incident_id]
            if accept:
                self._require(incident, IncidentEvent.ACCEPT)
            actor = _phone_actor(responder_id)
            reply = OfferAccepted if accept else OfferDeclined
            self.emit(reply(assignment_id, responder_id, reason), actor=actor, incident=incident)
            if not accept:
                await self._refused(incident)
                return
            for other in self.state.active_assignments(incident):  # offered to several at once: the first wins
                if other.assignment_id == assignment_id or other.state is AssignmentState.ON_SCENE:
                    continue
                # (one still on the way when someone nearer was asked to take over: released, see _take_over)
                why = TAKEN_BY_ANOTHER if other.state is AssignmentState.OFFERED else TAKEN_OVER
                self.emit(OfferWithdrawn(other.assignment_id, other.responder_id, why), actor="system",
                          incident=incident)  # fmt: skip
            if incident.elder_id is not None:
                why = f"assigned to {incident.incident_id}"
                viewed = ElderViewed(incident.elder_id, why, what="job", subject=incident.incident_id)
                self.emit(viewed, actor=actor, incident=incident)

    async def report_status(self, assignment_id: str, responder_id: str, status: str, note: str = "") -> None:
        if status not in CAREGIVER_STATUSES:
            raise InvalidInput(
                f"status must be one of {', '.join(CAREGIVER_STATUSES)}", field="status", code="unknown_status"
            )
        async with self._txn():
            assignment = self._own(assignment_id, responder_id)
            incident = self.state.incidents[assignment.incident_id]
            assignment_next(assignment.state, AssignmentEvent(status))
            if status == "on_scene":
                self._require(incident, IncidentEvent.ARRIVE)
            actor = _phone_actor(responder_id)
            reported = AssignmentStatus(assignment_id, responder_id, cast(CaregiverStatus, status), note)
            # "done" reports and proposes; the operator decides (resolve, hand to 120, another visit)
            self.emit(reported, actor=actor, incident=incident)
            if status == "on_scene":  # someone is at the door: whoever was asked to take over need not go
                for other in self.state.active_assignments(incident):
                    if other.state is AssignmentState.OFFERED:
                        withdrawn = OfferWithdrawn(other.assignment_id, other.responder_id, TAKEN_BY_ANOTHER)
                        self.emit(withdrawn, actor="system", incident=incident)

    def _own(self, assignment_id: str, responder_id: str) -> Assignment:
        assignment = self.assignment(assignment_id)
        if assignment.responder_id != responder_id:
            raise NotFound(f"no assignment {assignment_id} for {responder_id}", field="assignment_id")
        return assignment

    # -- the registry -----------------------------------------------------------------------------

    async def put_elder(self, elder: Elder, *, actor: str, confirm_distinct: bool = False) -> bool:
        """Add or replace an elder's record; journals the changed fields with their old and new values
        (dispatch.keeping rule 1). Returns whether anything changed. ``active`` changes only by deactivating
        (rule 2).

        A new elder who is probably one already registered (dispatch.duplicates), or an edit that makes one so,
        is refused (``possible_duplicate``, naming them all: the console names only those in the person's
        reach) unless ``confirm_distinct``: the person looked and they are two people."""
        if elder.caregiver_id and elder.caregiver_id not in self.directory.responders:
            raise NotFound(f"no caregiver {elder.caregiver_id}", field="caregiver_id", code="unknown_caregiver")
        stored = self.directory.elders.get(elder.elder_id)
        if (stored.active if stored is not None else True) != elder.active:
            raise Conflict(f"elder {elder.elder_id}: deactivate or reactivate them, not by saving the record",
                           code="elder_active_change", params={"elder": elder.name})  # fmt: skip
        check = None if confirm_distinct else self._not_registered_twice
        async with self._saving(
            self.directory.elders.get, elder.elder_id, elder, self.registry.upsert_elders, check
        ) as changed:
            self.directory.put_elder(elder)
            self.emit(ElderSaved(elder.elder_id, bool(changed), changed.fields, changed.old, changed.new), actor=actor)
        return bool(changed)

    async def put_device(self, device: Device, *, actor: str) -> bool:
        elder = self.directory.elders.get(device.elder_id)
        if elder is None:
            raise NotFound(f"no elder {device.elder_id}", field="elder_id")
        require_active(elder)
        if self.protocols and device.protocol not in self.protocols:
            known = ", ".join(sorted(self.protocols))
            raise InvalidInput(
                f"unknown device protocol {device.protocol!r}; one of {known}",
                field="protocol",
                code="unknown_protocol",
            )
        async with self._saving(
            self.directory.devices.get, device.device_id, device, self.registry.upsert_devices
        ) as changed:
            self.directory.put_device(device)
            saved = DeviceSaved(device.device_id, bool(changed), changed.fields, changed.old, changed.new)
            self.emit(saved, actor=actor)
        return bool(changed)

    async def put_responder(self, responder: Responder, *, actor: str) -> bool:
        if responder.provider not in catalogue(self.settings.service_catalogue).providers:
            raise InvalidInput(f"no provider {responder.provider} in the service catalogue", field="provider",
                               code="unknown_provider", params={"provider": responder.provider})  # fmt: skip
        stored = self.directory.responders.get
        async with self._saving(stored, responder.responder_id, responder, self.registry.upsert_responders) as changed:
            self.directory.put_responder(responder)
            if responder.kind == "clinic":
                await self.clinics.upsert(responder.responder_id, responder.lat, responder.lon)
            self.state.dirty.add(responder.responder_id)  # skills, travel or kind may have changed
            saved = ResponderSaved(responder.responder_id, bool(changed), changed.fields, changed.old, changed.new)
            self.emit(saved, actor=actor)
        return bool(changed)

    async def assess(
        self,
        elder_id: str,
        answers: Mapping[str, int],
        *,
        actor: str,
        reason: str,
        diagnosis: bool = False,
        risk_events: int = 0,
        lives_with: str | None = None,
        diseases: Sequence[str] = (),
        note: str = "",
    ) -> dict[str, Any]:
        """Journal a needs assessment of an elder, scored by the code (dispatch.assessment), and set the elder's
        care level (and with whom they live) from it; the registry change is journaled as any other. Returns
        what the code made of it: the id, domain grades, preliminary and final level, changes, care level."""
        flags = Flags(diagnosis, risk_events)
        self.elder(elder_id)
        if reason not in ASSESSMENT_REASONS:
            raise InvalidInput(f"reason must be one of {', '.join(ASSESSMENT_REASONS)}", field="reason",
                               code="assessment_reason")  # fmt: skip
        unknown = sorted(set(diseases) - set(DISEASES))
        if unknown:
            raise InvalidInput(f"no disease {unknown[0]} on the form", field="diseases", code="assessment_item",
                               params={"item": unknown[0]})  # fmt: skip
        checked = check_answers(answers)
        result = score_assessment(checked, flags)
        async with self._registry_lock:  # the record as it stands now: an edit meanwhile is kept, not reverted
            elder = self.elder(elder_id)
            require_active(elder)  # an elder who left is not assessed (dispatch.keeping rule 2)
            kept_with = lives_with if lives_with is not None else elder.lives_with
            flags_now: list[RiskFlag] = [flag for flag in elder.risk_flags if flag != "living_alone"]
            if kept_with == "alone" or (kept_with is None and "living_alone" in elder.risk_flags):
                flags_now.insert(0, "living_alone")
            updated = elder.model_copy(update={"care_level": result.care_level, "lives_with": kept_with,
                                               "risk_flags": flags_now})  # fmt: skip
            updated = Elder.model_validate(updated.model_dump())  # validated as any registry write is
            changed = changes(elder, updated)
            if changed:
                await self.registry.upsert_elders([updated])
            async with self._txn():
                fact = AssessmentRecorded(
                    assessment_id=f"AS-{self.journal.head_seq + 1}",  # the lock held: no other entry meanwhile
                    elder_id=elder_id,
                    standard=ASSESSMENT_STANDARD,
                    reason=reason,
                    answers=checked,
                    grades={domain: grade for domain, grade in result.grades.items()},
                    preliminary=result.preliminary,
                    level=result.level,
                    care_level=result.care_level,
                    changes=result.changes,
                    diagnosis=flags.diagnosis,
                    risk_events=flags.risk_events,
                    lives_with=kept_with,
                    diseases=tuple(diseases),
                    note=note,
                )
                self.emit(fact, actor=actor)
                if changed:
                    self.directory.put_elder(updated)
                    self.emit(ElderSaved(elder_id, True, changed.fields, changed.old, changed.new), actor=actor)
        return {"assessment_id": fact.assessment_id, "grades": fact.grades, "preliminary": fact.preliminary,
                "level": fact.level, "changes": list(fact.changes), "care_level": fact.care_level}  # fmt: skip

    def _not_registered_twice(self, elder: Elder) -> None:
        """Refuse an elder in care who is probably another one registered already (checked for a new record, and
        for an edit of what identity is judged by)."""
        old = self.directory.elders.get(elder.elder_id)
        person = person_of(elder)
        if not elder.active or (old is not None and old.active and not identity_changed(person_of(old), person)):
            return
        matches = self.directory.duplicates.matches(person)
        if not matches:
            return
        named = []
        for match in matches:
            other = self.directory.elders[match.key]
            named.append({"elder_id": other.elder_id, "name": other.name, "community": other.community,
                          "reasons": list(match.reasons)})  # fmt: skip
        raise Conflict(f"{elder.elder_id} is probably already registered ({len(matches)} records)",
                       field="elder_id", code="possible_duplicate", params={"matches": named})  # fmt: skip

    @asynccontextmanager
    async def _saving(
        self,
        stored: Callable[[str], R | None],
        key: str,
        new: R,
        write: Callable[[list[R]], Awaitable[object]],
        check: Callable[[R], None] | None = None,
    ) -> AsyncIterator[Changes]:
        """One registry write, in order and one at a time: ``check`` it against the registry as it stands, compare
        with the stored record, write the store (only when a field changed), then -- the engine's lock held --
        whatever the caller does with the changes (the directory, the journal entry). Two people editing one
        record are applied one after the other."""
        async with self._registry_lock:
            if check is not None:
                check(new)
            changed = changes(stored(key), new)
            if changed:
                await write([new])
            async with self._txn():
                yield changed

    async def deactivate_elder(self, elder_id: str, reason: str, words: str, *, actor: str) -> None:
        """The elder left the centre's care (dispatch.keeping rule 2): kept, inactive, their devices unbound."""
        left = check_leaving(reason, words)
        async with self._registry_lock:
            elder = self.elder(elder_id)
            require_active(elder)
            inactive = elder.model_copy(update={"active": False})
            devices = sorted((d for d in self.directory.devices.values() if d.elder_id == elder_id),
                             key=lambda d: d.device_id)  # fmt: skip
            await self.registry.upsert_elders([inactive])
            if devices:
                await self.registry.delete_devices([d.device_id for d in devices])
            async with self._txn():
                self.directory.put_elder(inactive)
                self.keeping.left_care(inactive, left, words, devices, actor)
                for plan in sorted(self.state.plans.plans.values(), key=lambda p: p.plan_id):
                    if plan.elder_id == elder_id and plan.state is PlanState.ACTIVE:  # no visit planned any more
                        self.plans.end(plan.plan_id, last_day=None, reason="elder left care", actor=actor)

    async def reactivate_elder(self, elder_id: str, words: str, *, actor: str) -> None:
        async with self._registry_lock:
            elder = self.elder(elder_id)
            if elder.active:
                raise Conflict(f"elder {elder_id} is in the centre's care", code="elder_active",
                               params={"elder": elder.name})  # fmt: skip
            merged = self.state.by_elder.merged_into(elder_id)
            if merged is not None:  # one person registered twice was made one: the other record lives on
                raise Conflict(f"elder {elder_id} was merged into {merged}", code="elder_merged",
                               params={"elder": elder.name, "into": merged})  # fmt: skip
            back = elder.model_copy(update={"active": True})
            self._not_registered_twice(back)  # meanwhile registered again under another id?
            await self.registry.upsert_elders([back])
            async with self._txn():
                self.directory.put_elder(back)
                self.keeping.came_back(back, words, actor)

    async def unbind_device(self, device_id: str, *, actor: str, reason: str = "") -> None:
        """Take a device off its elder and out of the registry (dispatch.keeping rule 3)."""
        async with self._registry_lock:
            device = self.directory.devices.get(device_id)
            if device is None:
                raise NotFound(f"no device {device_id}", field="device_id")
            await self.registry.delete_devices([device_id])
            async with self._txn():
                self.keeping.unbound(device, reason.strip(), actor)

    async def test_device(self, device_id: str, *, actor: str) -> None:
        """Open the device's test window (dispatch.keeping rule 4)."""
        async with self._txn():
            device = self.directory.devices.get(device_id)
            if device is None:
                raise NotFound(f"no device {device_id}", field="device_id")
            self.keeping.start(device, actor)

    async def merge_elders(self, keep: str, other: str, *, actor: str) -> dict[str, object]:
        """One person registered twice, made one record: ``other``'s devices move to ``keep``, its contacts not on
        ``keep``'s list are added after them (calling order: ``keep``'s first, no phone twice), ``keep``'s empty
        fields are filled from it, and ``other`` leaves care (``active`` false: no longer matched by phone,
        contact phone, search or duplicates). One ``registry.elders_merged`` entry says what moved and what
        ``keep`` held before. Returns that entry's body."""
        if keep == other:
            raise InvalidInput("an elder is not merged with themself", field="other", code="merge_same")
        async with self._registry_lock:
            kept, gone = self.elder(keep), self.elder(other)
            for elder in (kept, gone):
                if not elder.active:
                    raise Conflict(f"{elder.elder_id} is no longer in care", field="other", code="merge_inactive",
                                   params={"elder": elder.name})  # fmt: skip
            if kept.resident_id and gone.resident_id and kept.resident_id != gone.resident_id:
                raise Conflict(f"{keep} and {other} have different resident identity numbers", field="other",
                               code="merge_distinct", params={"keep": kept.name, "other": gone.name})  # fmt: skip
            merged, fact = _merged(kept, gone)
            moved = [d.model_copy(update={"elder_id": keep}) for d in self.directory.devices.values()
                     if d.elder_id == other]  # fmt: skip
            fact = dataclasses.replace(fact, devices=tuple(sorted(d.device_id for d in moved)))
            left = gone.model_copy(update={"active": False})
            await self.registry.upsert_elders([merged, left])
            if moved:
                await self.registry.upsert_devices(moved)
            async with self._txn():
                self.directory.put_elder(left)  # first: a phone both records give stays the kept one's
                self.directory.put_elder(merged)
                for device in moved:
                    self.directory.put_device(device)
                self.emit(fact, actor=actor)
        return {f.name: getattr(fact, f.name) for f in dataclasses.fields(fact)}

    async def import_registry(
        self, texts: dict[str, str], *, actor: str, names: dict[str, str] | None = None
    ) -> dict[str, object]:
        """The CSV import (dispatch.importer) while the server runs: ``texts`` by kind (``elders``, ``devices``,
        ``responders``), ``names`` what the report calls each file. The same checks and report as ``anxin import``
        offline; duplicates are judged against the directory's index; what was written enters the directory, and
        one ``registry.imported`` entry records it. Returns the report as plain data (ImportReport.as_dict)."""
        unknown = sorted(set(texts) - {"elders", "devices", "responders"})
        if unknown or not texts:
            raise InvalidInput(f"import elders, devices or responders, not {', '.join(unknown) or 'nothing'}",
                               field="files", code="import_refused")  # fmt: skip
        names = names or {}
        sources = {kind: CsvText(names.get(kind, f"{kind}.csv"), text) for kind, text in texts.items()}
        providers = catalogue(self.settings.service_catalogue).providers
        async with self._registry_lock:
            report = await import_files(
                self.registry, elders=sources.get("elders"), devices=sources.get("devices"),
                responders=sources.get("responders"), protocols=self.protocols, providers=providers,
                index=self.directory.duplicates,
            )  # fmt: skip
            counts = {"elders": report.elders, "devices": report.devices, "responders": report.responders}
            if any(c.changed for c in counts.values()):
                async with self._txn():
                    for record in report.records:
                        await self._take(record)
                    self.emit(RegistryImported(
                        files={kind: source.name for kind, source in sources.items()},
                        counts={k: {"added": c.added, "updated": c.updated, "unchanged": c.unchanged}
                                for k, c in counts.items()},
                        errors=len(report.errors),
                    ), actor=actor)  # fmt: skip
        return report.as_dict()

    async def _take(self, record: Elder | Device | Responder) -> None:
        """An imported record into the directory (and a clinic into the clinics' index)."""
        if isinstance(record, Elder):
            self.directory.put_elder(record)
        elif isinstance(record, Device):
            self.directory.put_device(record)
        else:
            self.directory.put_responder(record)
            self.state.dirty.add(record.responder_id)
            if record.kind == "clinic":
                await self.clinics.upsert(record.responder_id, record.lat, record.lon)

    async def viewed(
        self,
        elder_id: str,
        *,
        actor: str,
        what: ReadWhat = "record",
        subject: str | None = None,
        why: str | None = None,
    ) -> None:
        """A read of an elder's personal data, on record before it is shown (health data is sensitive), with the
        reason the reader gave when they were asked (the elder's file). The same person reading the same thing
        for the same reason again within ``read_window_s`` is already on record."""
        self.elder(elder_id)
        key = (actor, what, elder_id, subject or "", why or "")
        if self._already_read(key):
            return
        async with self._txn():
            self.emit(ElderViewed(elder_id, why, what=what, subject=subject), actor=actor)
        self._read_now(key)  # marked once durable: a read whose entry failed is journaled again next time

    async def read(self, what: str, count: int, *, actor: str, elder_ids: Sequence[str] = (), filter: str = "") -> None:
        """A bulk read of personal data (a list, a search, a stream, an export), on record before it is shown.
        The same list asked again by the same person within ``read_window_s`` is already on record (a console
        or an integration polling it)."""
        if count == 0 and what != "console":
            return  # nothing was shown (a stream is a read from now on, whatever it held at first)
        key = (actor, what, filter, *elder_ids)
        if self._already_read(key):
            return
        fact = RecordsRead(what, count, tuple(elder_ids), filter)
        appended = None
        try:
            async with self._txn():
                appended = self.emit(fact, actor=actor)
        except JournalError:  # the disk refuses: the person still sees what they must; the read is owed
            if appended is None:  # appended ones stay in the journal's kept batch and commit with it
                self._owe_read(fact, actor)
        self._read_now(key)

    def _owe_read(self, fact: RecordsRead, actor: str) -> None:
        if not self._owed_reads and not self._owed_overflow:  # the first of a failure, not one line per read
            log.warning("reads of personal records are owed to the record until the journal commits again")
        if len(self._owed_reads) >= OWED_READS_MAX:
            self._owed_overflow += 1
            return
        self._owed_reads.append((fact, actor))

    def _offer_after_recovery(self) -> None:
        """Incidents whose first offers the journal refused (rule 6) are offered as it works again."""
        if not self._to_offer:
            return

        async def offer() -> None:
            with contextlib.suppress(JournalError):  # failed again: the next recovery (or item) tries again
                await self.offer_opened()

        task = asyncio.get_running_loop().create_task(offer(), name="offers-after-recovery")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _pay_owed_reads(self) -> None:
        if not self._owed_reads and not self._owed_overflow:
            return
        owed, overflow = self._owed_reads, self._owed_overflow
        self._owed_reads, self._owed_overflow = [], 0

        async def pay() -> None:
            try:
                async with self._txn():
                    for fact, actor in owed:
                        self.emit(fact, actor=actor)
                    if overflow:
                        self.emit(RecordsRead("owed", overflow, (), "reads lost while the disk was full"),
                                  actor="system:storage")  # fmt: skip
            except JournalError:  # failed again: owed again, still within the bound
                kept = owed + self._owed_reads
                self._owed_reads = kept[:OWED_READS_MAX]
                self._owed_overflow += overflow + len(kept) - len(self._owed_reads)
            else:
                log.warning("%d owed reads of personal records are on record now", len(owed) + overflow)

        task = asyncio.get_running_loop().create_task(pay(), name="owed-reads")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _already_read(self, key: tuple[str, ...]) -> bool:
        """Whether this read is on record within the window already (the same person, the same thing)."""
        last = self._reads.get(key)
        return last is not None and self.clock.now() - last < self.settings.read_window_s

    def _read_now(self, key: tuple[str, ...]) -> None:
        now, window = self.clock.now(), self.settings.read_window_s
        if len(self._reads) >= self._reads_sweep_at:  # forget what is out of the window
            self._reads = {k: t for k, t in self._reads.items() if now - t < window}
            self._reads_sweep_at = max(100_000, 2 * len(self._reads))  # a full map does not sweep at every read
        self._reads[key] = now

    async def account_created(
        self, username: str, role: str, *, actor: str, scopes: Sequence[str] = (), service: bool = False
    ) -> None:
        async with self._txn():
            self.emit(AccountCreated(username, role, tuple(scopes), service), actor=actor)

    async def account_changed(self, username: str, change: AccountChange, *, actor: str, detail: str = "") -> None:
        async with self._txn():
            self.emit(AccountChanged(username, change, detail), actor=actor)

    async def login_failed(self, username: str, address: str, reason: LoginRefusal) -> None:
        async with self._txn():
            self.emit(LoginFailed(username[:64], address, reason), actor="system:login")

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
                        self.emit(Unanswered(round(now - incident.opened_at, 1)), actor="system", incident=incident)
                elif what == "offer":
                    assignment = self.state.assignments[ident]
                    if assignment.state is AssignmentState.OFFERED:
                        incident = self.state.incidents[assignment.incident_id]
                        if await self._hold(assignment, incident):
                            continue
                        self.emit(OfferExpired(ident, assignment.responder_id), actor="system", incident=incident)
                        await self._refused(incident)
                elif what == "stale":
                    self.state.dirty.add(ident)
                elif what == "checkin":
                    await self.supervision.missed_checkin(ident, now)
                elif what == "unknown":  # the unknown devices' interval ends: its one summary
                    self.supervision.unknown_interval(now)
                elif what == "plans":  # a new day for the plans' orders, or a planned visit to check
                    self.plans.fire(ident, now)
                elif what == "referral":  # a clinic did not answer a referral in time
                    self.referrals.expire(ident)
                elif what == "device_test":  # a device's test window elapsed (dispatch.keeping rule 4)
                    self.keeping.expire(ident, now)

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

    # -- clinic referrals (dispatch.referrals; the table is dispatch.machines.REFERRAL_TRANSITIONS) ---------

    async def refer(self, incident_id: str, clinic_id: str, *, actor: str, note: str = "") -> str:
        """Refer the incident's patient to a clinic's green channel; returns the referral's id."""
        async with self._txn():
            return self.referrals.refer(self.incident(incident_id), clinic_id, note, actor)

    async def referral_action(
        self,
        referral_id: str,
        action: str,
        *,
        actor: str,
        clinic_id: str | None = None,
        note: str = "",
        outcome: str | None = None,
    ) -> None:
        """A clinic's answer to its referral (``clinic_id``), or an operator's cancel (see dispatch.referrals)."""
        async with self._txn():
            self.referrals.act(referral_id, action, actor=actor, clinic_id=clinic_id, note=note, outcome=outcome)

    # -- the service desk (dispatch.services; the order table is dispatch.machines.ORDER_TRANSITIONS) ------

    async def order_service(
        self,
        elder_id: str,
        item_id: str,
        start: float,
        end: float,
        *,
        actor: str,
        source: OrderSource = "console",
        place: str = "",
        call_id: str | None = None,
        drill: bool = False,
    ) -> str:
        """Order one catalogue item for an elder in a time window. The price is fixed now, in fen, from the
        elder's entitlement (none recorded: paid, see dispatch.services.mode_for). Returns the order's id."""
        item = catalogue(self.settings.service_catalogue).get(item_id)
        if item is None:
            raise NotFound(f"no service {item_id} in the catalogue", field="item_id", code="unknown_service_item")
        require_active(self.elder(elder_id))  # nothing new for an elder who left the centre's care
        _window(start, end, self.clock.now())
        async with self._txn():
            return self.ordered(elder_id, item, start, end, actor=actor, source=source, place=place, call_id=call_id,
                                drill=drill)  # fmt: skip

    def ordered(
        self,
        elder_id: str,
        item: ServiceItem,
        start: float,
        end: float,
        *,
        actor: str,
        source: OrderSource,
        place: str = "",
        call_id: str | None = None,
        drill: bool = False,
        plan: tuple[str, str] | None = None,
    ) -> str:
        """:meth:`order_service` with the lock held (a 五定 plan orders this way: ``plan`` is its id and the
        planned local day). Returns the order's id."""
        elder = self.elder(elder_id)
        if call_id is not None:
            if call_id not in self.state.calls:
                raise NotFound(f"no call {call_id}", field="call_id")
            if drill and not self._call_drill(call_id):  # a drill's order never rides on a real call
                raise Conflict(f"call {call_id} is real, the order a drill's", code="order_drill_mismatch",
                               params={"call": call_id})  # fmt: skip
            drill = self._call_drill(call_id)  # an order taken on a drill's call is the drill's, whatever was said
        order_id = f"SO-{self.journal.head_seq + 1}"
        mode = mode_for(elder.entitlement)
        plan_id, plan_day = plan if plan is not None else (None, None)
        ordered = ServiceOrdered(
            order_id, elder_id, item.item_id, start, end, mode, price_of(item, mode), source, place, call_id,
            item.provider, plan_id, plan_day,
        )  # fmt: skip
        self.emit(ordered, actor=actor, drill=drill)
        return order_id

    async def order_action(
        self,
        order_id: str,
        action: str,
        *,
        actor: str,
        caregiver: str | None = None,
        responder_id: str | None = None,
        start: float | None = None,
        end: float | None = None,
        lat: float | None = None,
        lon: float | None = None,
        note: str = "",
        reason: str = "",
    ) -> None:
        """One move of a service order: schedule or reschedule (``start``/``end``), assign (``responder_id``),
        start and deliver (the caregiver's check-in and check-out, ``lat``/``lon`` when the phone knows,
        ``note``), confirm, cancel (``reason``), no_show. ``caregiver``: the responder acting for themselves,
        who may act only on an order assigned to them (as if any other did not exist)."""
        try:
            event = OrderEvent(action)
        except ValueError:
            raise InvalidInput(f"no action {action} on a service order", field="action",
                               code="unknown_order_action") from None  # fmt: skip
        _pair(lat, lon)
        if event in (OrderEvent.SCHEDULE, OrderEvent.RESCHEDULE):
            if start is None or end is None:
                raise InvalidInput("scheduling needs a window", field="start" if start is None else "end",
                                   code="service_window")  # fmt: skip
            _window(start, end, self.clock.now())
        if event is OrderEvent.CANCEL and _blank(reason):
            raise InvalidInput("cancelling needs a reason", field="reason", code="reason_required")
        async with self._txn():
            order = self.service_order(order_id)
            if caregiver is not None and order.responder_id != caregiver:
                raise NotFound(f"no service order {order_id} for {caregiver}", field="order_id",
                               code="unknown_service_order")  # fmt: skip
            early = self.clock.now() < order.start - CHECK_IN_EARLY_S
            if caregiver is not None and event is OrderEvent.START and early:
                raise Conflict(f"{order_id} opens at {order.start}", code="service_too_early",
                               params={"start": order.start})  # fmt: skip
            self.move_order(order, event, actor=actor, responder_id=responder_id, start=start, end=end, lat=lat,
                            lon=lon, note=note, reason=reason)  # fmt: skip

    def move_order(
        self,
        order: ServiceOrder,
        event: OrderEvent,
        *,
        actor: str,
        responder_id: str | None = None,
        start: float | None = None,
        end: float | None = None,
        lat: float | None = None,
        lon: float | None = None,
        note: str = "",
        reason: str = "",
        ahead: bool = False,
    ) -> None:
        """One move of an order, checked then written, with the lock held (see :meth:`order_action`). ``ahead``:
        a 五定 plan's caregiver assigned ahead of the visit, who need not be on duty now."""
        order_next(order.state, event)  # refuses an illegal move before anything is written
        fact = self._order_fact(order, event, responder_id, start, end, lat, lon, note, reason, ahead)
        charged = isinstance(fact, ServiceDelivered) and not order.drill
        elder = self.elder(order.elder_id) if charged else None  # checked before the check-out is written
        self.emit(fact, actor=actor, drill=order.drill)
        if elder is not None and isinstance(fact, ServiceDelivered):
            self._charge(order, elder, fact.at)
        if isinstance(fact, ServiceDelivered):
            self.follow_ups.service_delivered(order)
        self.plans.order_moved(order)

    async def settle_complaint(self, complaint_id: str, *, resolution: str, actor: str) -> None:
        """A supervisor settles a complaint heard on a follow-up (see dispatch.followups rule 4)."""
        async with self._txn():
            self.follow_ups.settle_complaint(complaint_id, resolution=resolution, actor=actor)

    async def record_follow_up(
        self,
        follow_up_id: str,
        *,
        reached: bool,
        actor: str,
        satisfaction: int | None = None,
        complaint: str = "",
        note: str = "",
    ) -> None:
        """One attempt of a follow-up call (see dispatch.followups)."""
        async with self._txn():
            self.follow_ups.record(
                follow_up_id, reached=reached, satisfaction=satisfaction, complaint=complaint, note=note, actor=actor
            )

    async def record_care_call(
        self,
        elder_id: str,
        *,
        reached: bool,
        actor: str,
        wellbeing: str | None = None,
        note: str = "",
        drill: bool = False,
    ) -> None:
        """One attempt of a care call (see dispatch.carecalls)."""
        async with self._txn():
            self.care_calls.record(elder_id, reached=reached, wellbeing=wellbeing, note=note, actor=actor, drill=drill)

    async def settle_care_visit(self, visit_id: str, *, note: str, actor: str) -> None:
        """Settle a home visit proposed after unanswered care calls (see dispatch.carecalls)."""
        async with self._txn():
            self.care_calls.settle(visit_id, note=note, actor=actor)

    # -- 五定 plans (dispatch.plans) -------------------------------------------------------------------

    async def create_plan(
        self,
        elder_id: str,
        item_id: str,
        responder_id: str,
        weekdays: Sequence[int],
        at: str,
        *,
        actor: str,
        first_day: str | None = None,
        last_day: str | None = None,
        place: str = "",
        note: str = "",
    ) -> str:
        """A standing plan: ``item_id`` for the elder by ``responder_id`` on ISO ``weekdays`` (1 Monday) at local
        ``at`` (HH:MM), from ``first_day`` (YYYY-MM-DD, today by default) to ``last_day`` (none: until ended).
        Its first orders are generated at once. Returns the plan's id."""
        require_active(self.elder(elder_id))  # nothing new for an elder who left the centre's care
        async with self._txn():
            return self.plans.create(
                elder_id, item_id, responder_id, weekdays, at, first_day=first_day, last_day=last_day, place=place,
                note=note, actor=actor,
            )  # fmt: skip

    async def end_plan(self, plan_id: str, *, actor: str, last_day: str | None = None, reason: str = "") -> None:
        """No visit of the plan after ``last_day`` (today by default); the orders planned after it are cancelled."""
        async with self._txn():
            self.plans.end(plan_id, last_day=last_day, reason=reason, actor=actor)

    async def settle_plan_task(self, task_id: str, *, outcome: str, actor: str, note: str = "") -> None:
        """The operator's word on a missed planned visit (dispatch.entries PlanTaskOutcome)."""
        async with self._txn():
            self.plans.settle(task_id, outcome=outcome, note=note, actor=actor)

    # -- duty shifts and handovers (dispatch.duty) ----------------------------------------------------

    async def start_duty(self, scope: str, *, actor: str, kind: ShiftKind | None = None) -> str:
        """Go on duty for a scope (see dispatch.duty); returns the shift's id."""
        async with self._txn():
            return self.duty.start(scope, actor=actor, kind=kind)

    async def log_duty(self, scope: str, text: str, *, actor: str, at: float | None = None) -> None:
        """A line in the log of the scope's shift."""
        if _blank(text):
            raise InvalidInput("a log line needs words", field="text", code="note_required")
        async with self._txn():
            self.duty.log(scope, text.strip(), actor=actor, at=at)

    async def hand_over_duty(self, scope: str, words: str = "", *, actor: str, for_others: bool = False) -> None:
        """Hand the scope's shift over with the desk as it stands; ``for_others``: a supervisor may do it for
        the operator on duty."""
        async with self._txn():
            self.duty.hand_over(scope, words.strip(), actor=actor, for_others=for_others)

    async def take_over_duty(self, scope: str, words: str = "", *, actor: str, kind: ShiftKind | None = None) -> str:
        """Acknowledge the scope's handed-over shift and start one's own; returns the new shift's id."""
        async with self._txn():
            return self.duty.take_over(scope, words.strip(), actor=actor, kind=kind)

    def service_order(self, order_id: str) -> ServiceOrder:
        order = self.state.service_orders.get(order_id)
        if order is None:
            raise NotFound(f"no service order {order_id}", field="order_id", code="unknown_service_order")
        return order

    def _order_fact(
        self,
        order: ServiceOrder,
        event: OrderEvent,
        responder_id: str | None,
        start: float | None,
        end: float | None,
        lat: float | None,
        lon: float | None,
        note: str,
        reason: str,
        ahead: bool = False,
    ) -> Fact:
        """The entry an order's move writes, checked (the lock is held)."""
        oid, now, who = order.order_id, self.clock.now(), order.responder_id or ""
        if event is OrderEvent.ASSIGN:  # a visit more than an hour away goes to someone off duty now, too
            later = order.start - now > ASSIGN_AHEAD_S
            return ServiceAssigned(oid, self._service_responder(order, responder_id, ahead or later))
        if event is OrderEvent.SCHEDULE:
            return ServiceScheduled(oid, cast(float, start), cast(float, end))
        if event is OrderEvent.RESCHEDULE:
            return ServiceRescheduled(oid, cast(float, start), cast(float, end), reason)
        if event is OrderEvent.START:
            return ServiceStarted(oid, who, now, lat, lon)
        if event is OrderEvent.DELIVER:
            return ServiceDelivered(oid, who, now, lat, lon, note)
        if event is OrderEvent.CONFIRM:
            return ServiceConfirmed(oid)
        if event is OrderEvent.CANCEL:
            return ServiceCancelled(oid, reason)
        return ServiceNoShow(oid, note)

    def _charge(self, order: ServiceOrder, elder: Elder, at: float) -> None:
        """Charge a delivered order, in the transaction of its check-out (the lock is held): the month's
        allotment first when this is the elder's first delivery in the centre's local month, then the split of
        the price between vouchers and the elder's pocket (dispatch.vouchers rule 4). A drill is never charged."""
        month = month_of(at, self.settings.timezone)
        ledger = self.state.ledger
        if (order.elder_id, month) not in self.state.allotted:
            allotment = ledger.rules.allotment(elder.entitlement, elder.care_level)
            self.emit(VouchersAllotted(order.elder_id, month, allotment), actor="system:vouchers")
        balance = ledger.balance(order.elder_id, month).available_fen
        if ledger.rules.roll_over:  # spending now lowers every later month's carry: none may go below zero
            balance = min([balance, *(b.available_fen for b in ledger.balances(order.elder_id) if b.month > month)])
        voucher = min(order.price_fen, max(balance, 0))
        charge = VouchersCharged(
            order.order_id, order.elder_id, month, order.price_fen, voucher, order.price_fen - voucher,
            order.provider, elder.community, order.item_id,
        )  # fmt: skip
        self.emit(charge, actor="system:vouchers")

    def _service_responder(self, order: ServiceOrder, responder_id: str | None, ahead: bool = False) -> str:
        """Whom an order may be assigned to: a caregiver or volunteer on duty (``ahead``: on duty or not, a
        plan's visit being assigned days before) with the item's skill, of the item's provider (the centre's own
        people, or a contracted organisation's staff)."""
        if responder_id is None:
            raise InvalidInput("assigning needs a responder", field="responder_id", code="unknown_responder")
        self._responder_profile(responder_id)
        status = self.state.responders.get(responder_id)
        if not ahead and (status is None or not status.on_duty):
            raise Conflict(f"{responder_id} is not on duty", code="responder_off_duty",
                           params={"responder": self._name(responder_id)})  # fmt: skip
        item = catalogue(self.settings.service_catalogue).get(order.item_id)
        skill = item.skill if item is not None else None
        profile = self.directory.responders[responder_id]
        if profile.provider != order.provider:
            raise Conflict(f"{responder_id} works for {profile.provider}, the order is {order.provider}'s",
                           code="responder_other_provider",
                           params={"responder": self._name(responder_id), "provider": order.provider})  # fmt: skip
        if skill is not None and skill not in profile.skills:
            raise Conflict(f"{responder_id} lacks the skill {skill}", code="responder_lacks_skill",
                           params={"responder": self._name(responder_id), "skill": skill})  # fmt: skip
        return responder_id


#: the longest window a visit may be asked for (a day's work; "10:00 to 09:00" is a slip, not a 23-hour visit)
WINDOW_MAX_S = 12 * 3600.0
#: how early a caregiver may check in before the window opens (on the way, the elder happy to see them early)
CHECK_IN_EARLY_S = 2 * 3600.0
#: a service visit whose window opens more than this far ahead may be assigned to a caregiver off duty now (they
#: will be on duty by then: tomorrow's bath is given to Ms Wang tonight); a sooner one needs someone on duty
ASSIGN_AHEAD_S = 3600.0


#: someone who let an offer lapse within this many offer periods is asked after those who did not
AWAY_OFFERS = 4

#: how many available responders near an incident that just went into the backlog are looked at
ENTERED_POOL = 50

#: how many more times the backlog offers an incident to someone who let its offer lapse (see Engine._asked)
RING_AGAIN = 2

#: one step of the wider circle: the skill asked for (None: anyone), the radius, the latest arrival it accepts
_Step = tuple[str | None, float, float | None]

#: a great-circle distance and the geodesic differ by at most 0.6 % (the backlog's cheap first test)
_ROUGH_DISTANCE_ERROR = 0.007
#: metres a second of the fastest travel mode over the straight line (with its detour, and the great circle's
#: rough error): nobody farther than this times the seconds is worth asking to take over
_FASTEST_M_S = max(mode.speed_m_s for mode in TRAVEL_MODES.values()) / DETOUR_FACTOR * (1 + _ROUGH_DISTANCE_ERROR)


def _step(steps: Sequence[_Step], profile: Responder, distance: float, arrival: float) -> int | None:
    """The first step of the wider circle that takes this responder at this distance and arrival (None: none)."""
    for n, (skill, radius, latest) in enumerate(steps):
        if distance <= radius and (skill is None or skill in profile.skills) and (latest is None or arrival <= latest):
            return n
    return None


def _urgency(incident: Incident) -> tuple[bool, int, float, str]:
    """The backlog's order: real before drill, most urgent priority first, then the longest waiting."""
    return incident.drill, incident.priority, incident.opened_at, incident.incident_id


class _Change:
    """:meth:`Engine.changing` as a plain async context manager (it is on every alarm's path: no generator)."""

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def __aenter__(self) -> None:
        await self._engine._lock.acquire()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> None:
        engine = self._engine
        try:
            if kind is None:
                await engine._sync_geo()
                if engine._freed or engine._entered:
                    freed, engine._freed = engine._freed, set()
                    entered, engine._entered = engine._entered, set()
                    # someone became free: the waiting first, then those still on the way (_take_over)
                    if engine.state.backlog or engine.state.ringing or engine.state.travelling:
                        await engine._serve_backlog(freed, entered)
                        await engine._sync_geo()
                        engine._freed.clear()  # those were offered just now, or nothing waits for them
        finally:
            engine._lock.release()
        engine.timers_changed.set()


def _phone_actor(responder_id: str) -> str:
    """Who answers on the phone page, as the journal names them: a caregiver, or a family member (a kin id)."""
    return f"family:{responder_id}" if is_kin(responder_id) else f"caregiver:{responder_id}"


def _duty(responder_id: str, on: bool, lat: float | None, lon: float | None) -> ResponderDuty:
    if lat is None or lon is None:
        return ResponderDuty(responder_id, on)
    return ResponderDuty(responder_id, on, lat, lon)


def _home_of(household: Sequence[Elder]) -> tuple[float, float, str] | None:
    """The home (lat, lon, address) of the elders sharing a landline, when they share one (a landline is in one
    home); None for no household or homes apart."""
    homes = {(e.lat, e.lon, e.address) for e in household}
    return homes.pop() if len(homes) == 1 else None


#: an elder's fields a merge fills on the kept record where it has nothing (the others are never empty)
MERGE_FILLS = ("phone", "birth_date", "resident_id", "risk_flags", "care_level", "medical_notes", "caregiver_id",
               "entitlement", "access", "lives_with")  # fmt: skip


def _merged(kept: Elder, gone: Elder) -> tuple[Elder, EldersMerged]:
    """The kept record with the other's contacts and empty fields added, and the entry saying so (its devices
    are the engine's to add)."""
    phones = {normalise_phone(contact.phone) for contact in kept.contacts}
    added = []
    for contact in gone.contacts:
        if normalise_phone(contact.phone) not in phones:
            phones.add(normalise_phone(contact.phone))
            added.append(contact)
    filled = {name: getattr(gone, name) for name in MERGE_FILLS
              if getattr(kept, name) in (None, "", []) and getattr(gone, name) not in (None, "", [])}  # fmt: skip
    changes: dict[str, object] = dict(filled)
    if added:
        changes["contacts"] = [*kept.contacts, *added]
    old = kept.model_dump(mode="json", include=set(changes))
    fact = EldersMerged(kept.elder_id, gone.elder_id, contacts=tuple(c.phone for c in added),
                        filled=tuple(filled), old=old, reason=f"merged into {kept.elder_id}")  # fmt: skip
    return kept.model_copy(update=changes), fact


def _pair(lat: float | None, lon: float | None) -> None:
    if (lat is None) != (lon is None):
        field = "lat" if lat is None else "lon"
        raise InvalidInput("give both lat and lon, or neither", field=field, code="lat_lon_pair")


def _window(start: float, end: float, now: float) -> None:
    """A visit's window: it ends after it starts, lasts at most :data:`WINDOW_MAX_S`, and is not over yet."""
    if not end > start:
        raise InvalidInput("the window must end after it starts", field="end", code="service_window")
    if end - start > WINDOW_MAX_S:
        raise InvalidInput("a visit's window is at most 12 hours", field="end", code="service_window_long")
    if end <= now:
        raise InvalidInput("the window is over already", field="end", code="service_window_past")


def _blank(text: str) -> bool:
    """Nothing a person can read: white space, control and invisible format characters only."""
    return not any(ch.isprintable() and not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


#: the telephony's events as moves of the call's table (ringing starts a call: no move)
CALL_EVENTS = ("ringing", "queued", "answered", "transferred", "ended")
CALL_MOVES: dict[str, CallMove] = {
    "queued": CallMove.QUEUE,
    "answered": CallMove.ANSWER,
    "transferred": CallMove.TRANSFER,
    "ended": CallMove.END,
}


def _call_fact(move: CallMove, event: CallEvent) -> Fact:
    """The entry a telephony event's move writes."""
    if move is CallMove.QUEUE:
        return CallQueued(event.call_id, event.queue, event.at)
    if move is CallMove.ANSWER:
        return CallAnswered(event.call_id, event.words, event.operator, event.extension, event.at)
    if move is CallMove.TRANSFER:
        return CallTransferred(event.call_id, event.extension, event.operator, event.at)
    return CallEnded(event.call_id, event.cause, event.at)


def _moved_on(call: Call, extension: str) -> bool:
    """Whether an answered call reported answered at ``extension`` is now at another one than it was."""
    now_at = call.transfers[-1].extension if call.transfers else call.extension
    return bool(extension) and bool(now_at) and extension != now_at
