"""Projections: the live state of incidents, assignments, responders, calls and service orders, folded from the
journal.

What it owns
    :class:`Projection` holds what the engine decides on and what the console shows. It changes only in
    :meth:`Projection.apply`, one journal entry at a time, so the state after a restart (replaying every
    entry) is the state before the crash. The timers are part of it: applying ``incident.opened`` arms the
    answer timer, applying ``offer.made`` arms the expiry, so replay re-arms every open timer by itself.

Rules
    1. ``apply`` never fails on an entry that the engine wrote: the engine checked the transition before
       appending. It is keyed by the entry's typed body (:mod:`dispatch.entries`); a body it has no handler
       for changes nothing (registry and audit facts, kinds a newer release wrote).
    2. ``apply`` reads no clock, no registry and no database; everything it needs is in the entry.
    3. Responders whose availability may have changed are put in ``dirty``; the engine syncs them into the
       geo index after applying (the index is a backend behind an async interface, apply is not).
    4. Devices: what the journal says about each device (its journaled positions, unknown devices seen, the
       dedup keys of its messages, its open conditions) is folded in like everything else. When a device was
       last heard from, and its battery, are not: routine check-ins are deliberately not journaled, so the
       journal cannot say; :mod:`dispatch.supervision` writes them into ``devices`` as the device speaks, and
       after a restart they are unknown until it speaks again (see that module).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dispatch.assessment import AssessmentBook
from dispatch.carecalls import CareBook
from dispatch.duty import DutyBook
from dispatch.elderfile import MERGED, SECTIONS, ElderEntries, entry_elders
from dispatch.entries import (
    ORIGINATE_FAILED,
    RING_OFFERS,
    Acknowledged,
    AlarmAttached,
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
    Closed,
    ContactNotified,
    DeviceRestored,
    DeviceUnknown,
    ElderPosition,
    ElderViewed,
    Escalated,
    Fact,
    IncidentOpened,
    Located,
    NeedsManual,
    Note,
    OfferAccepted,
    OfferDeclined,
    OfferExpired,
    OfferHeld,
    OfferMade,
    OfferWithdrawn,
    ProposedClinic,
    Ranked,
    RankedResponder,
    RecordsRead,
    ReferralConcluded,
    Resolved,
    ResponderDuty,
    ResponderPosition,
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
    Unanswered,
    VouchersAllotted,
    VouchersCharged,
)
from dispatch.followups import FollowUpBook
from dispatch.journal import Entry
from dispatch.keeping import DeviceTests
from dispatch.machines import (
    ACTIVE_ASSIGNMENT,
    OPEN_ORDER_STATES,
    OPEN_STATES,
    AssignmentEvent,
    AssignmentState,
    CallMove,
    CallState,
    IncidentEvent,
    IncidentState,
    OrderEvent,
    OrderState,
    assignment_next,
    call_next,
    incident_allows,
    incident_next,
    order_next,
)
from dispatch.plans import PlanBook
from dispatch.referrals import ReferralBook
from dispatch.timers import Timers
from dispatch.vouchers import Allotted, Delivered, Ledger, VoucherRules

DEDUP_KEEP = 200_000
log = logging.getLogger("anxin.state")


def person_key(elder_id: str | None, device_id: str | None) -> str | None:
    """Whose alarms join one open incident: the elder's, or an unregistered device's until someone knows whose."""
    if elder_id is not None:
        return elder_id
    return f"device:{device_id}" if device_id is not None else None


#: accepted and not yet at the door
_ON_THE_WAY = (AssignmentState.ACCEPTED, AssignmentState.EN_ROUTE)


#: the bulk reads that could hold any elder of the reader's scopes (the registry list, the CSV exports): an
#: elder's "who read my data" lists them by the scopes they were asked with
LIST_READS = frozenset({"elders", "export.elders", "export.devices"})


@dataclass(slots=True)
class Assignment:
    assignment_id: str
    incident_id: str
    responder_id: str
    state: AssignmentState
    offered_at: float
    deadline: float
    by: str
    distance_m: float | None
    eta_s: float | None
    updated_at: float
    note: str = ""
    held: int = 0  # how often its time ran out and it kept ringing, nobody else to ask (OfferHeld)
    accepted_at: float | None = None
    on_scene_at: float | None = None  # when the responder said they were at the door (the report's door time)
    finished_at: float | None = None  # when it left the active states: declined, expired, withdrawn or done

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_ASSIGNMENT

    @property
    def besides(self) -> bool:
        """A pending offer that does not keep others from being offered the incident: a last ring's, or one
        kept ringing past its time (the first to accept takes it)."""
        return self.state is AssignmentState.OFFERED and (self.by in RING_OFFERS or self.held > 0)


@dataclass(frozen=True, slots=True)
class NoteLine:
    ts: float
    actor: str
    text: str
    shared: bool = False  # the assigned caregiver's phone shows it


@dataclass(frozen=True, slots=True)
class AlarmLine:
    ts: float
    alarm_type: str
    source: str


@dataclass(frozen=True, slots=True)
class ReadLine:
    """One read of personal data on record: when, by whom, what (record, incident, call, search, a list) and
    of which incident or call, or with which search or filter; a list's size; why, when the reader was asked
    (the elder's file)."""

    ts: float
    actor: str
    what: str
    subject: str = ""
    count: int = 1
    why: str = ""


READS_KEPT = 500


@dataclass(slots=True)
class Incident:
    incident_id: str
    state: IncidentState
    alarm_type: str
    source: str
    priority: int
    priority_reasons: tuple[str, ...]
    elder_id: str | None
    device_id: str | None
    call_id: str | None
    lat: float | None
    lon: float | None
    location: str
    opened_at: float
    answer_deadline: float
    drill: bool
    updated_at: float
    state_since: float  # when it entered its current state (the queue shows "on scene 23 min")
    technical: bool = False
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    supervisor_alerted: bool = False
    needs_manual: bool = False
    manual_reason: str | None = None
    waiting: bool = False  # in the backlog: offered to the next responder who becomes free (see NeedsManual)
    assignments: list[str] = field(default_factory=list)
    ranking: tuple[RankedResponder, ...] = ()
    clinic: ProposedClinic | None = None
    failed_offers: int = 0
    notes: list[NoteLine] = field(default_factory=list)
    alarms: list[AlarmLine] = field(default_factory=list)
    outcome: str | None = None
    escalated_to: str | None = None
    closed_at: float | None = None
    cancelled_at: float | None = None  # confirmed a false alarm (it stays one after it is closed)
    #: the last caregiver's "done" and their words: what they propose, until the operator decides
    proposal: NoteLine | None = None
    caller: str | None = None  # an unregistered caller's number
    place: str = ""  # where an operator placed it, as the gazetteer named the place
    #: a grouped technical incident's street (``district/street``), every device that joined it (in order) and
    #: those still affected (dispatch.triage rule 4); None and empty for every other incident
    group: str | None = None
    devices: dict[str, None] = field(default_factory=dict)
    affected: dict[str, None] = field(default_factory=dict)
    joined_at: float = 0.0  # when the last device joined the group (or it opened): later ones join within a window
    #: the people of the circle's last rings sent a message about it (volunteer ids, kin ids; dispatch.family)
    contacted: list[str] = field(default_factory=list)
    test: bool = False  # a device's test call (dispatch.keeping rule 4): closed at once, offered to nobody

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass(slots=True)
class ResponderState:
    responder_id: str
    on_duty: bool = False
    lat: float | None = None
    lon: float | None = None
    pos_at: float | None = None
    assignment_id: str | None = None
    lapsed_at: float | None = None  # when they last let an offer lapse (away from the phone?)


#: a PBX's time is believed when it lies between an hour before the entry and this far after it (clocks drift a
#: little; a report after a reconnect is late, never much early): otherwise the entry's own time is taken
PBX_AHEAD_S = 5.0
PBX_LATE_S = 3600.0


def pbx_time(at: float | None, ts: float) -> float:
    """When a call event happened: the PBX's ``at`` when given and sane, else the entry's time ``ts``."""
    if at is None or not ts - PBX_LATE_S <= at <= ts + PBX_AHEAD_S:
        return ts
    return at


@dataclass(frozen=True, slots=True)
class Transfer:
    """An answered call passed on: to which extension, the operator it belongs to (user name), and when."""

    extension: str
    operator: str | None
    at: float


@dataclass(slots=True)
class Call:
    """One hotline call, inbound or placed by an operator (``direction`` "out": ``caller`` is the number called).

    ``state`` follows :data:`dispatch.machines.CALL_TRANSITIONS` (ringing, queued, answered, ended); times are
    the PBX's when it gave sane ones (:func:`pbx_time`), never before the call rang. ``answered_by`` is who
    picked up: an operator's user name when the PBX named one, else the actor who reported it; ``handler`` who
    has it now (the operator a transfer went to)."""

    call_id: str
    caller: str
    line: str
    elder_id: str | None
    state: str
    started_at: float
    drill: bool = False
    incident_id: str | None = None
    answered_at: float | None = None
    answered_by: str | None = None
    ended_at: float | None = None
    kind: str | None = None  # the operator's classification (None: not yet classified)
    text: str = ""
    callback: str | None = None  # "due" for a silent call until someone called back, then "done"
    callback_outcome: str = ""
    words: str = ""  # what the caller said, when the telephony knew it
    household: tuple[str, ...] = ()  # the elders sharing the number that called, when several (none chosen)
    picked_by: str | None = None  # who said which of the elders offered the call is about, and when
    picked_at: float | None = None
    direction: str = "in"
    queue: str = ""  # the PBX queue the caller waited in ("" never queued)
    queued_at: float | None = None
    extension: str = ""  # the extension that answered
    transfers: list[Transfer] = field(default_factory=list)
    cause: str = ""  # the PBX's hangup cause
    handler: str | None = None  # who has the call now: who answered, or the operator it was transferred to
    dialed_by: str | None = None  # an outbound call: the actor who placed it
    about_call: str | None = None  # an outbound call: the call it calls back

    @property
    def open(self) -> bool:
        """Still on an operator's desk: ringing or talking, answered and not yet classified, or to be called back
        (an operator's own outbound call is on it until it ends)."""
        unclassified = self.answered_at is not None and self.kind is None and self.direction == "in"
        return self.state != "ended" or unclassified or self.callback == "due"

    @property
    def outcome(self) -> str:
        """ringing, queued or talking while it lasts; then answered, transferred, abandoned (hung up queued) or
        missed (ended ringing) for an inbound call; answered, no_answer or failed for an outbound one."""
        if self.state != "ended":
            return "talking" if self.state == "answered" else self.state
        if self.direction == "out":
            if self.cause.startswith(ORIGINATE_FAILED):
                return "failed"
            return "answered" if self.answered_at is not None else "no_answer"
        if self.answered_at is not None:
            return "transferred" if self.transfers else "answered"
        return "abandoned" if self.queued_at is not None else "missed"

    @property
    def wait(self) -> float | None:
        """An inbound call's time from ringing to pick-up (None: not answered, or outbound)."""
        if self.direction != "in" or self.answered_at is None:
            return None
        return self.answered_at - self.started_at


@dataclass(slots=True)
class DeviceStatus:
    """What the core knows of one device's life: when it last spoke, its battery, where it last was."""

    last_seen: float | None = None
    battery: int | None = None
    lat: float | None = None
    lon: float | None = None
    pos_at: float | None = None
    journaled_pos: tuple[float, float, float] | None = None  # lat, lon, ts of the last journaled position


@dataclass(slots=True)
class ServiceOrder:
    """One service order of the service desk, as its entries left it (see dispatch.services)."""

    order_id: str
    elder_id: str
    item_id: str
    state: OrderState
    start: float
    end: float
    mode: str
    price_fen: int
    source: str
    place: str
    call_id: str | None
    provider: str
    drill: bool
    ordered_at: float
    ordered_by: str
    updated_at: float
    state_since: float
    responder_id: str | None = None
    started_at: float | None = None
    started_pos: tuple[float, float] | None = None
    delivered_at: float | None = None
    delivered_pos: tuple[float, float] | None = None
    note: str = ""  # what the caregiver did (check-out), or what they found (no show)
    reason: str = ""  # why it was cancelled or rescheduled
    confirmed_at: float | None = None
    plan_id: str | None = None  # the 五定 plan that generated it, and the local day it was planned for
    plan_day: str | None = None

    @property
    def open(self) -> bool:
        return self.state in OPEN_ORDER_STATES


H = TypeVar("H", bound=Fact)
_Handler = Callable[[Entry, Any], None]


class Projection:
    def __init__(self, *, position_stale_s: float, vouchers: VoucherRules | None = None) -> None:
        self.position_stale_s = position_stale_s
        self.incidents: dict[str, Incident] = {}
        self.assignments: dict[str, Assignment] = {}
        self.responders: dict[str, ResponderState] = {}
        self.calls: dict[str, Call] = {}
        self.devices: dict[str, DeviceStatus] = {}
        #: the open person incident of each elder (or unregistered device), real and drill apart
        self.open_by_elder: dict[tuple[str, bool], str] = {}
        #: open technical incidents per (device, alarm type): one until the condition clears
        self.conditions: dict[tuple[str, str, bool], str] = {}
        #: open grouped technical incidents per (street, alarm type, drill) (dispatch.triage rule 4)
        self.groups: dict[tuple[str, str, bool], str] = {}
        #: the backlog: open incidents waiting for a responder (incident.needs_manual with ``waiting``), offered by
        #: the engine to whoever becomes free, most urgent first (see Engine._serve_backlog)
        self.backlog: set[str] = set()
        #: open incidents whose pending offers are a last ring's (dispatch.family) or kept ringing past their time
        #: (OfferHeld): a caregiver who becomes free meanwhile is offered them too, as the backlog is (the first to
        #: accept takes it)
        self.ringing: set[str] = set()
        #: assignments accepted and not yet at the door (accepted, en route): someone nearer who comes free may be
        #: asked to take over (Engine._take_over)
        self.travelling: set[str] = set()
        #: dedup keys of recorded device messages (a repeat is acknowledged again, not recorded twice)
        self.dedup: dict[str, float] = {}
        self.timers = Timers()
        self.dirty: set[str] = set()
        #: who read each elder's personal data (newest last, the last READS_KEPT), and the recent bulk lists of
        #: elders (a supervisor asks "who read her record?")
        self.reads: dict[str, deque[ReadLine]] = {}
        self.list_reads: deque[ReadLine] = deque(maxlen=READS_KEPT)
        self._handlers: dict[type[Fact], _Handler] = {}
        self._on(IncidentOpened, self._opened)
        self._on(AlarmAttached, self._alarm_attached)
        self._on(DeviceRestored, self._device_restored)
        self._on(Acknowledged, self._acknowledged)
        self._on(Unanswered, self._unanswered)
        self._on(Ranked, self._ranked)
        self._on(NeedsManual, self._needs_manual)
        self._on(Located, self._located)
        self._on(Retyped, self._retyped)
        self._on(Note, self._note)
        self._on(Cancelled, self._cancelled)
        self._on(Escalated, self._escalated)
        self._on(Resolved, self._resolved)
        self._on(Closed, self._closed)
        self._on(OfferMade, self._offer_made)
        self._on(OfferAccepted, self._assignment(AssignmentEvent.ACCEPT))
        self._on(OfferDeclined, self._assignment(AssignmentEvent.DECLINE))
        self._on(OfferExpired, self._assignment(AssignmentEvent.EXPIRE))
        self._on(OfferHeld, self._offer_held)
        self._on(OfferWithdrawn, self._assignment(AssignmentEvent.WITHDRAW))
        self._on(AssignmentStatus, self._assignment_status)
        self._on(ContactNotified, self._contact_notified)
        self._on(ResponderDuty, self._duty)
        self._on(ResponderPosition, self._position)
        self._on(CallRinging, self._call_ringing)
        self._on(CallAnswered, self._call_answered)
        self._on(CallEnded, self._call_ended)
        self._on(CallQueued, self._call_queued)
        self._on(CallTransferred, self._call_transferred)
        self._on(CallDialed, self._call_dialed)
        self._on(CallerPicked, self._caller_picked)
        self._on(CallClassified, self._call_classified)
        self._on(CalledBack, self._called_back)
        self._on(ElderPosition, self._elder_position)
        self._on(ElderViewed, self._viewed)
        self._on(RecordsRead, self._records_read)
        self._on(DeviceUnknown, self._device_unknown)
        #: the service desk's orders, in the order they were made
        self.service_orders: dict[str, ServiceOrder] = {}
        #: the orders in each state, in the order they came to it (an ordered set): the desk and the phones ask by
        #: state, and must not walk years of delivered orders to find today's few started ones
        self.orders_in: dict[OrderState, dict[str, None]] = {state: {} for state in OrderState}
        self._on(ServiceOrdered, self._service_ordered)
        self._on(ServiceScheduled, self._service_scheduled)
        self._on(ServiceRescheduled, self._service_rescheduled)
        self._on(ServiceAssigned, self._service_assigned)
        self._on(ServiceStarted, self._service_started)
        self._on(ServiceDelivered, self._service_delivered)
        self._on(ServiceConfirmed, self._service_confirmed)
        self._on(ServiceCancelled, self._service_cancelled)
        self._on(ServiceNoShow, self._service_no_show)
        #: the vouchers (dispatch.vouchers): balances and charges folded from vouchers.* entries, and the
        #: elder-months with an allotment on record (an allotment of 0 fen included)
        self.ledger = Ledger(vouchers)
        self.allotted: set[tuple[str, str]] = set()
        self._on(VouchersAllotted, self._vouchers_allotted)
        self._on(VouchersCharged, self._vouchers_charged)
        #: follow-ups (回访) and the complaints they raised (dispatch.followups)
        self.follow_ups = FollowUpBook()
        self.follow_ups.register(self._on)
        #: care calls (关怀电话) and the home visits they proposed (dispatch.carecalls)
        self.care_calls = CareBook()
        self.care_calls.register(self._on)
        #: 五定 plans, their orders and their missed visits (dispatch.plans)
        self.plans = PlanBook()
        self.plans.register(self._on)
        #: duty shifts (值班), their logs and handovers (dispatch.duty)
        self.duty = DutyBook()
        self.duty.register(self._on)
        #: referrals of incidents to clinics' green channels (dispatch.referrals)
        self.referrals = ReferralBook(self.timers)
        self.referrals.register(self._on)
        #: needs assessments, and the falls and hospital stays that call for another (dispatch.assessment)
        self.assessments = AssessmentBook()
        self.assessments.register(self._on)
        referral_outcome = self._handlers[ReferralConcluded]

        def concluded(entry: Entry, p: ReferralConcluded) -> None:
            referral_outcome(entry, p)
            incident = self.incidents.get(entry.incident_id or "")
            if p.outcome == "admitted" and incident is not None and incident.elder_id and not entry.drill:
                self.assessments.happened(incident.elder_id, entry.ts, "after_hospital")

        self._on(ReferralConcluded, concluded)
        #: the last test call of each device (dispatch.keeping)
        self.device_tests = DeviceTests(self.timers)
        self.device_tests.register(self._on)
        #: each elder's entries, by seq (dispatch.elderfile): their file's timeline without a scan of the journal
        self.by_elder = ElderEntries()

    def _on(self, kind: type[H], handler: Callable[[Entry, H], None]) -> None:
        self._handlers[kind] = handler

    def apply(self, entry: Entry) -> None:
        handler = self._handlers.get(type(entry.fact))
        if handler is not None:
            handler(entry, entry.fact)
        if entry.kind in SECTIONS:
            self._file(entry)

    def responder(self, responder_id: str) -> ResponderState:
        state = self.responders.get(responder_id)
        if state is None:
            state = self.responders[responder_id] = ResponderState(responder_id)
        return state

    def device(self, device_id: str) -> DeviceStatus:
        status = self.devices.get(device_id)
        if status is None:
            status = self.devices[device_id] = DeviceStatus()
        return status

    def available(self, responder_id: str, now: float) -> bool:
        state = self.responders.get(responder_id)
        return (
            state is not None
            and state.on_duty
            and state.assignment_id is None
            and state.pos_at is not None
            and now - state.pos_at < self.position_stale_s
        )

    def active_assignments(self, incident: Incident) -> list[Assignment]:
        return [a for a in (self.assignments[i] for i in incident.assignments) if a.active]

    def _incident(self, entry: Entry) -> Incident:
        return self.incidents[entry.incident_id or ""]

    # -- incidents --------------------------------------------------------------------------------

    def _opened(self, entry: Entry, p: IncidentOpened) -> None:
        incident = Incident(
            incident_id=p.incident_id,
            state=IncidentState.RECEIVED,
            alarm_type=p.alarm_type,
            source=p.source,
            priority=p.priority,
            priority_reasons=p.priority_reasons,
            elder_id=p.elder_id,
            device_id=p.device_id,
            call_id=p.call_id,
            lat=p.lat,
            lon=p.lon,
            location=p.location,
            opened_at=entry.ts,
            answer_deadline=p.answer_deadline,
            drill=entry.drill,
            updated_at=entry.ts,
            state_since=entry.ts,
            technical=p.technical,
            caller=p.caller,
            place=p.place,
            alarms=[AlarmLine(entry.ts, p.alarm_type, p.source)],
            group=p.group,
            test=p.test,
        )
        self.incidents[incident.incident_id] = incident
        if incident.technical:
            if incident.device_id is not None:
                self.conditions[(incident.device_id, incident.alarm_type, incident.drill)] = incident.incident_id
            if incident.group is not None:
                incident.joined_at = entry.ts
                self.groups[(incident.group, incident.alarm_type, incident.drill)] = incident.incident_id
                if incident.device_id is not None:
                    incident.devices[incident.device_id] = incident.affected[incident.device_id] = None
        elif not incident.test and (who := person_key(incident.elder_id, incident.device_id)) is not None:
            # a test call's incident (closed at once) never stands for the elder's open one
            self.open_by_elder[(who, incident.drill)] = incident.incident_id
        self._remember(p.dedup, entry.ts)
        if incident.call_id is not None and incident.call_id in self.calls:
            self.calls[incident.call_id].incident_id = incident.incident_id
        self.timers.set(("answer", incident.incident_id), incident.answer_deadline)

    def _remember(self, dedup: str | None, ts: float) -> None:
        if dedup is None:
            return
        self.dedup[dedup] = ts
        if len(self.dedup) > DEDUP_KEEP:  # forget the oldest half; devices repeat within minutes, not days
            for key in list(self.dedup)[: DEDUP_KEEP // 2]:
                del self.dedup[key]

    def _alarm_attached(self, entry: Entry, p: AlarmAttached) -> None:
        incident = self._incident(entry)
        self._remember(p.dedup, entry.ts)
        call = self.calls.get(p.call_id or "")
        if call is not None and call.incident_id is None:
            call.incident_id = incident.incident_id
        if incident.group is not None and p.device_id is not None:  # one more device of the street
            incident.devices[p.device_id] = incident.affected[p.device_id] = None
            self.conditions[(p.device_id, p.alarm_type, incident.drill)] = incident.incident_id
            incident.updated_at = incident.joined_at = entry.ts
            return  # the journal keeps each device's alarm; the incident keeps the count, not 600 lines
        incident.alarms.append(AlarmLine(entry.ts, p.alarm_type, p.source))
        if p.priority < incident.priority:
            incident.priority = p.priority
            incident.priority_reasons = p.priority_reasons
            if p.alarm_type != incident.alarm_type:
                incident.alarm_type = p.alarm_type
                incident.ranking = ()  # another kind of alarm may need another skill: rank again when offering
        incident.updated_at = entry.ts

    def _device_restored(self, entry: Entry, p: DeviceRestored) -> None:
        incident = self._incident(entry)
        incident.affected.pop(p.device_id, None)
        condition = (p.device_id, incident.alarm_type, incident.drill)
        if self.conditions.get(condition) == incident.incident_id:
            del self.conditions[condition]
        incident.updated_at = entry.ts

    def _acknowledged(self, entry: Entry, p: Acknowledged) -> None:
        incident = self._move(entry, IncidentEvent.ACKNOWLEDGE)
        incident.acknowledged_at = entry.ts
        incident.acknowledged_by = entry.actor
        self.timers.cancel(("answer", incident.incident_id))

    def _unanswered(self, entry: Entry, p: Unanswered) -> None:
        incident = self._incident(entry)
        incident.supervisor_alerted = True
        self.timers.cancel(("answer", incident.incident_id))  # escalated once, not again after a restart
        incident.updated_at = entry.ts

    def _ranked(self, entry: Entry, p: Ranked) -> None:
        incident = self._incident(entry)
        incident.ranking = p.candidates
        incident.clinic = p.clinic
        incident.updated_at = entry.ts

    def _needs_manual(self, entry: Entry, p: NeedsManual) -> None:
        incident = self._incident(entry)
        incident.needs_manual = True
        incident.manual_reason = p.reason
        incident.waiting = p.waiting
        if p.waiting:
            self.backlog.add(incident.incident_id)
        else:
            self.backlog.discard(incident.incident_id)
        incident.updated_at = entry.ts

    def _located(self, entry: Entry, p: Located) -> None:
        incident = self._incident(entry)
        incident.lat, incident.lon, incident.location, incident.place = p.lat, p.lon, p.by, p.address
        self._fresh_chance(incident, entry.ts)  # ranked from the old place

    def _retyped(self, entry: Entry, p: Retyped) -> None:
        incident = self._incident(entry)
        incident.alarm_type, incident.priority, incident.priority_reasons = p.alarm_type, p.priority, p.priority_reasons
        self._fresh_chance(incident, entry.ts)  # another type may need another skill

    def _fresh_chance(self, incident: Incident, ts: float) -> None:
        """A new place or a new type: rank again when offering, and an incident that went to the operators for
        want of a responder gets a new chance (the engine tries to dispatch it again)."""
        incident.ranking = ()
        incident.clinic = None
        if incident.needs_manual:
            self._unflag(incident)
            incident.failed_offers = 0
        incident.updated_at = ts

    def _unflag(self, incident: Incident) -> None:
        """Off the operators' list and out of the backlog."""
        incident.needs_manual, incident.manual_reason, incident.waiting = False, None, False
        self.backlog.discard(incident.incident_id)

    def _note(self, entry: Entry, p: Note) -> None:
        incident = self._incident(entry)
        incident.notes.append(NoteLine(entry.ts, entry.actor, p.text, p.shared))
        incident.updated_at = entry.ts

    def _cancelled(self, entry: Entry, p: Cancelled) -> None:
        incident = self._move(entry, IncidentEvent.CANCEL)
        incident.cancelled_at = entry.ts
        if p.reason:
            incident.outcome = p.reason

    def _escalated(self, entry: Entry, p: Escalated) -> None:
        incident = self._move(entry, IncidentEvent.ESCALATE)
        incident.escalated_to = p.service
        if p.note:
            incident.notes.append(NoteLine(entry.ts, entry.actor, p.note))

    def _resolved(self, entry: Entry, p: Resolved) -> None:
        incident = self._move(entry, IncidentEvent.RESOLVE)
        incident.outcome = p.outcome
        fell = incident.alarm_type == "fall" or any(a.alarm_type == "fall" for a in incident.alarms)
        if fell and incident.elder_id and not incident.drill and not incident.test:
            self.assessments.happened(incident.elder_id, entry.ts, "after_fall")

    def _closed(self, entry: Entry, p: Closed) -> None:
        incident = self._move(entry, IncidentEvent.CLOSE)
        incident.closed_at = entry.ts

    def _move(self, entry: Entry, event: IncidentEvent) -> Incident:
        incident = self._incident(entry)
        if event is not IncidentEvent.ACKNOWLEDGE:
            incident.proposal = None  # the operator decided (resolve, hand over, another visit, close)
        self._set_state(incident, incident_next(incident.state, event), entry.ts)
        incident.updated_at = entry.ts
        if not incident.open or event is IncidentEvent.ESCALATE:
            self._unflag(incident)  # nothing left to dispatch (after a hand-over to 120, only by an operator)
        if not incident.open:
            self.timers.cancel(("answer", incident.incident_id))
            key = (person_key(incident.elder_id, incident.device_id) or "", incident.drill)
            if self.open_by_elder.get(key) == incident.incident_id:
                del self.open_by_elder[key]
            condition = (incident.device_id or "", incident.alarm_type, incident.drill)
            if self.conditions.get(condition) == incident.incident_id:
                del self.conditions[condition]
            if incident.group is not None:
                self._group_ended(incident)
        return incident

    def _group_ended(self, incident: Incident) -> None:
        """A grouped incident is no longer open: its street and its devices' conditions are free again (a device
        still without power reports anew into a new group)."""
        group = (incident.group or "", incident.alarm_type, incident.drill)
        if self.groups.get(group) == incident.incident_id:
            del self.groups[group]
        for device_id in incident.affected:
            condition = (device_id, incident.alarm_type, incident.drill)
            if self.conditions.get(condition) == incident.incident_id:
                del self.conditions[condition]

    @staticmethod
    def _set_state(incident: Incident, state: IncidentState, ts: float) -> None:
        if state is not incident.state:
            incident.state = state
            incident.state_since = ts

    # -- assignments ------------------------------------------------------------------------------

    def _offer_made(self, entry: Entry, p: OfferMade) -> None:
        incident = self._move(entry, IncidentEvent.OFFER)
        self._unflag(incident)
        assignment = Assignment(
            assignment_id=p.assignment_id,
            incident_id=incident.incident_id,
            responder_id=p.responder_id,
            state=AssignmentState.OFFERED,
            offered_at=entry.ts,
            deadline=p.deadline,
            by=p.by,
            distance_m=p.distance_m,
            eta_s=p.eta_s,
            updated_at=entry.ts,
        )
        self.assignments[assignment.assignment_id] = assignment
        incident.assignments.append(assignment.assignment_id)
        self.responder(assignment.responder_id).assignment_id = assignment.assignment_id
        self.dirty.add(assignment.responder_id)
        self.timers.set(("offer", assignment.assignment_id), assignment.deadline)
        if p.by in RING_OFFERS:
            self.ringing.add(incident.incident_id)

    def _offer_held(self, entry: Entry, p: OfferHeld) -> None:
        assignment = self.assignments[p.assignment_id]
        assignment.deadline = p.deadline
        assignment.held += 1
        assignment.updated_at = entry.ts
        self.timers.set(("offer", assignment.assignment_id), assignment.deadline)
        self.ringing.add(assignment.incident_id)
        self.dirty.add(assignment.responder_id)

    def _assignment(
        self, event: AssignmentEvent
    ) -> Callable[[Entry, OfferAccepted | OfferDeclined | OfferExpired | OfferWithdrawn], None]:
        def handler(entry: Entry, p: OfferAccepted | OfferDeclined | OfferExpired | OfferWithdrawn) -> None:
            self._assignment_move(entry, p.assignment_id, event, getattr(p, "reason", ""))

        return handler

    def _assignment_status(self, entry: Entry, p: AssignmentStatus) -> None:
        self._assignment_move(entry, p.assignment_id, AssignmentEvent(p.status), p.note)
        incident = self.incidents[self.assignments[p.assignment_id].incident_id]
        line = NoteLine(entry.ts, entry.actor, p.note, shared=True)
        if p.note:  # every caregiver note is kept, none overwritten
            incident.notes.append(line)
        if p.status == "done":
            incident.proposal = line

    def _assignment_move(self, entry: Entry, assignment_id: str, event: AssignmentEvent, note: str) -> None:
        assignment = self.assignments[assignment_id]
        was_accepted = assignment.state not in (AssignmentState.OFFERED,)
        assignment.state = assignment_next(assignment.state, event)
        assignment.updated_at = entry.ts
        if note:
            assignment.note = note
        self.timers.cancel(("offer", assignment_id))
        incident = self.incidents[assignment.incident_id]
        incident.updated_at = entry.ts
        if (
            event in (AssignmentEvent.DECLINE, AssignmentEvent.EXPIRE) and assignment.by not in RING_OFFERS
            and not any(a.state in _ON_THE_WAY for a in self.active_assignments(incident))
        ):  # fmt: skip
            incident.failed_offers += 1  # (a take-over refused is no failed offer: someone is still coming)
        if not any(a.besides for a in self.active_assignments(incident)):  # no ring's or held offer pending
            self.ringing.discard(incident.incident_id)
        if assignment.state in _ON_THE_WAY:
            self.travelling.add(assignment_id)
        else:
            self.travelling.discard(assignment_id)
        if event is AssignmentEvent.ACCEPT:
            assignment.accepted_at = entry.ts
            self._set_state(incident, incident_next(incident.state, IncidentEvent.ACCEPT), entry.ts)
        elif event is AssignmentEvent.ON_SCENE:
            assignment.on_scene_at = entry.ts
            self._set_state(incident, incident_next(incident.state, IncidentEvent.ARRIVE), entry.ts)
        elif (
            event is AssignmentEvent.WITHDRAW
            and was_accepted
            and incident_allows(incident.state, IncidentEvent.REOPEN_DISPATCH)
            and not any(a.state is not AssignmentState.OFFERED for a in self.active_assignments(incident))
        ):
            self._set_state(incident, incident_next(incident.state, IncidentEvent.REOPEN_DISPATCH), entry.ts)
        if not assignment.active:
            assignment.finished_at = entry.ts
            responder = self.responder(assignment.responder_id)
            if responder.assignment_id == assignment_id:
                responder.assignment_id = None
            if event is AssignmentEvent.EXPIRE:
                responder.lapsed_at = entry.ts
            self.dirty.add(assignment.responder_id)

    def _contact_notified(self, entry: Entry, p: ContactNotified) -> None:
        self._incident(entry).contacted.append(p.responder_id)

    # -- responders -------------------------------------------------------------------------------

    def _duty(self, entry: Entry, p: ResponderDuty) -> None:
        responder = self.responder(p.responder_id)
        responder.on_duty = p.on
        if p.lat is not None and p.lon is not None:
            self._place(responder, p.lat, p.lon, entry.ts)
        self.dirty.add(responder.responder_id)

    def _position(self, entry: Entry, p: ResponderPosition) -> None:
        responder = self.responder(p.responder_id)
        self._place(responder, p.lat, p.lon, entry.ts)
        self.dirty.add(responder.responder_id)

    def _place(self, responder: ResponderState, lat: float, lon: float, ts: float) -> None:
        responder.lat, responder.lon, responder.pos_at = lat, lon, ts
        self.timers.set(("stale", responder.responder_id), ts + self.position_stale_s)

    # -- calls ------------------------------------------------------------------------------------

    def _call_ringing(self, entry: Entry, p: CallRinging) -> None:
        self.calls[p.call_id] = Call(
            call_id=p.call_id,
            caller=p.caller,
            line=p.line,
            elder_id=p.elder_id,
            state=CallState.RINGING,
            started_at=pbx_time(p.at, entry.ts),
            drill=entry.drill,
            household=p.household,
            direction=p.direction,
        )

    def _call_dialed(self, entry: Entry, p: CallDialed) -> None:
        about = self.calls.get(p.about_call or "")
        self.calls[p.call_id] = Call(
            call_id=p.call_id,
            caller=p.number,
            line="",
            elder_id=p.elder_id if p.elder_id is not None else about.elder_id if about is not None else None,
            state=CallState.RINGING,
            started_at=entry.ts,
            drill=entry.drill,
            incident_id=p.incident_id,
            direction="out",
            handler=entry.actor,
            dialed_by=entry.actor,
            about_call=p.about_call,
        )

    def _call_queued(self, entry: Entry, p: CallQueued) -> None:
        call = self.calls[p.call_id]
        call.state = call_next(CallState(call.state), CallMove.QUEUE)
        call.queue, call.queued_at = p.queue, max(call.started_at, pbx_time(p.at, entry.ts))

    def _call_answered(self, entry: Entry, p: CallAnswered) -> None:
        call = self.calls[p.call_id]
        call.state = call_next(CallState(call.state), CallMove.ANSWER)
        call.answered_at = max(call.started_at, pbx_time(p.at, entry.ts))
        call.answered_by = p.operator or entry.actor
        if call.direction == "in" or call.handler is None:  # an outbound call stays its dialler's
            call.handler = call.answered_by
        call.extension, call.words = p.extension, p.words

    def _call_transferred(self, entry: Entry, p: CallTransferred) -> None:
        call = self.calls[p.call_id]
        at = max(call.started_at, pbx_time(p.at, entry.ts))
        if call.answered_at is None:  # its answer was never reported (lost while the link was down)
            call.answered_at, call.answered_by = at, p.operator or entry.actor
        call.state = call_next(CallState(call.state), CallMove.TRANSFER)
        call.transfers.append(Transfer(p.extension, p.operator, at))
        call.handler = p.operator or call.handler

    def _call_ended(self, entry: Entry, p: CallEnded) -> None:
        call = self.calls[p.call_id]
        call.state = call_next(CallState(call.state), CallMove.END)
        call.ended_at, call.cause = max(call.started_at, pbx_time(p.at, entry.ts)), p.cause

    def _caller_picked(self, entry: Entry, p: CallerPicked) -> None:
        call = self.calls[p.call_id]
        call.elder_id, call.picked_by, call.picked_at = p.elder_id, entry.actor, entry.ts

    def _call_classified(self, entry: Entry, p: CallClassified) -> None:
        call = self.calls[p.call_id]
        call.kind, call.text = p.kind, p.text
        if p.elder_id is not None:
            call.elder_id = p.elder_id
        if p.incident_id is not None:
            call.incident_id = p.incident_id
        if p.kind == "silent":
            call.callback = "due"

    def _called_back(self, entry: Entry, p: CalledBack) -> None:
        call = self.calls[p.call_id]
        call.callback, call.callback_outcome = "done", p.outcome

    # -- devices ----------------------------------------------------------------------------------

    def _elder_position(self, entry: Entry, p: ElderPosition) -> None:
        status = self.device(p.device_id)
        status.lat, status.lon, status.pos_at = p.lat, p.lon, entry.ts
        status.journaled_pos = (p.lat, p.lon, entry.ts)

    def _device_unknown(self, entry: Entry, p: DeviceUnknown) -> None:
        """One frame of an unregistered device, as written before the interval summaries (dispatch.supervision,
        rule 6): on record, and nothing in the projections depends on it."""

    # -- the elders' files (dispatch.elderfile) --------------------------------------------------

    def _file(self, entry: Entry) -> None:
        """Files the entry under the elder(s) it is about, after its handler ran (an incident's opening has made
        the incident whose later entries name it)."""
        elders = entry_elders(
            entry, incident_elder=self._incident_elder, call_elder=self._call_elder, order_elder=self._order_elder
        )
        section = SECTIONS[entry.kind]
        for elder_id in elders:
            self.by_elder.add(elder_id, entry.seq, section, entry.drill)
        if entry.kind == MERGED and len(elders) == 2:
            self.by_elder.merge(elders[0], elders[1])

    def _incident_elder(self, incident_id: str) -> str | None:
        incident = self.incidents.get(incident_id)
        return incident.elder_id if incident is not None else None

    def _call_elder(self, call_id: str) -> str | None:
        call = self.calls.get(call_id)
        if call is None:
            return None
        if call.elder_id is None and call.incident_id is not None:
            return self._incident_elder(call.incident_id)
        return call.elder_id

    def _order_elder(self, order_id: str) -> str | None:
        order = self.service_orders.get(order_id)
        return order.elder_id if order is not None else None

    # -- reads on record --------------------------------------------------------------------------

    def _viewed(self, entry: Entry, p: ElderViewed) -> None:
        self._read(p.elder_id, ReadLine(entry.ts, entry.actor, p.what, p.subject or "", why=p.why or ""))

    def _records_read(self, entry: Entry, p: RecordsRead) -> None:
        for elder_id in p.elder_ids:
            self._read(elder_id, ReadLine(entry.ts, entry.actor, p.what, p.filter))
        if p.what in LIST_READS:
            self.list_reads.append(ReadLine(entry.ts, entry.actor, p.what, p.filter, p.count))

    def _read(self, elder_id: str, line: ReadLine) -> None:
        reads = self.reads.get(elder_id)
        if reads is None:
            reads = self.reads[elder_id] = deque(maxlen=READS_KEPT)
        reads.append(line)

    # -- service orders ---------------------------------------------------------------------------

    def _service_ordered(self, entry: Entry, p: ServiceOrdered) -> None:
        self.orders_in[OrderState.REQUESTED][p.order_id] = None
        self.service_orders[p.order_id] = ServiceOrder(
            order_id=p.order_id,
            elder_id=p.elder_id,
            item_id=p.item_id,
            state=OrderState.REQUESTED,
            start=p.start,
            end=p.end,
            mode=p.mode,
            price_fen=p.price_fen,
            source=p.source,
            place=p.place,
            call_id=p.call_id,
            provider=p.provider,
            drill=entry.drill,
            ordered_at=entry.ts,
            ordered_by=entry.actor,
            updated_at=entry.ts,
            state_since=entry.ts,
            plan_id=p.plan_id,
            plan_day=p.plan_day,
        )
        if p.plan_id is not None and p.plan_day is not None:
            self.plans.order_made(p.order_id, p.plan_id, p.plan_day)

    def _order_move(self, entry: Entry, order_id: str, event: OrderEvent) -> ServiceOrder:
        order = self.service_orders[order_id]
        state = order_next(order.state, event)
        if state is not order.state:
            del self.orders_in[order.state][order_id]
            self.orders_in[state][order_id] = None
            order.state, order.state_since = state, entry.ts
        order.updated_at = entry.ts
        if order.plan_id is not None:
            self.plans.order_moved(order_id, state, event)
        return order

    def _service_scheduled(self, entry: Entry, p: ServiceScheduled) -> None:
        order = self._order_move(entry, p.order_id, OrderEvent.SCHEDULE)
        order.start, order.end = p.start, p.end

    def _service_rescheduled(self, entry: Entry, p: ServiceRescheduled) -> None:
        order = self._order_move(entry, p.order_id, OrderEvent.RESCHEDULE)
        order.start, order.end, order.reason = p.start, p.end, p.reason
        order.responder_id = None

    def _service_assigned(self, entry: Entry, p: ServiceAssigned) -> None:
        self._order_move(entry, p.order_id, OrderEvent.ASSIGN).responder_id = p.responder_id

    def _service_started(self, entry: Entry, p: ServiceStarted) -> None:
        order = self._order_move(entry, p.order_id, OrderEvent.START)
        order.started_at = p.at
        order.started_pos = (p.lat, p.lon) if p.lat is not None and p.lon is not None else None

    def _service_delivered(self, entry: Entry, p: ServiceDelivered) -> None:
        order = self._order_move(entry, p.order_id, OrderEvent.DELIVER)
        order.delivered_at, order.note = p.at, p.note
        order.delivered_pos = (p.lat, p.lon) if p.lat is not None and p.lon is not None else None

    def _service_confirmed(self, entry: Entry, p: ServiceConfirmed) -> None:
        self._order_move(entry, p.order_id, OrderEvent.CONFIRM).confirmed_at = entry.ts

    def _service_cancelled(self, entry: Entry, p: ServiceCancelled) -> None:
        self._order_move(entry, p.order_id, OrderEvent.CANCEL).reason = p.reason

    def _service_no_show(self, entry: Entry, p: ServiceNoShow) -> None:
        self._order_move(entry, p.order_id, OrderEvent.NO_SHOW).note = p.note

    # -- vouchers -----------------------------------------------------------------------------------

    def _vouchers_allotted(self, entry: Entry, p: VouchersAllotted) -> None:
        self.ledger.apply(Allotted(p.elder_id, p.month, p.fen))
        self.allotted.add((p.elder_id, p.month))

    def _vouchers_charged(self, entry: Entry, p: VouchersCharged) -> None:
        """Fold the delivery into the ledger. The ledger splits it as the engine did when it wrote the entry
        (the same fold in the same order); a split that differs (the roll-over setting changed since) is
        logged, and the ledger's is what balances and statements then show."""
        delivery = Delivered(p.order_id, p.elder_id, p.provider, p.community, p.month, p.item_id, p.price_fen)
        charge = self.ledger.apply(delivery)
        if charge is not None and (charge.voucher_fen, charge.cash_fen) != (p.voucher_fen, p.cash_fen):
            log.warning("vouchers: order %s was charged %d + %d fen, the ledger now splits it %d + %d",
                        p.order_id, p.voucher_fen, p.cash_fen, charge.voucher_fen, charge.cash_fen)  # fmt: skip
