"""The service record's vocabulary: one frozen dataclass per kind of journal entry.

What it owns
    What each kind of entry says, field by field, and how an entry's body goes to and from the JSON text that
    the journal stores and hashes. The envelope (sequence, time, actor, incident, drill mark, hashes) is the
    journal's :class:`~dispatch.journal.Entry`; the body is one of the :class:`Fact` classes below, reached as
    ``entry.fact``. mypy checks every field name and type, wherever an entry is written or read.

Rules
    1. One class per kind, registered under its kind name with :func:`fact`; the name is what the journal
       stores in its ``kind`` column, so a registered name never changes meaning.
    2. Bodies are encoded and decoded only at the journal's edge (:func:`encode`, :func:`decode`). Everything
       inside the process reads the typed fact.
    3. Old entries stay readable. Each class has a ``VERSION``; the journal stores it beside the body. A field
       added later has a default, so bodies written before it decode unchanged; a change that cannot be
       expressed that way raises ``VERSION`` and gives the class an :meth:`Fact.upgrade` from the older
       shapes. Unknown fields in a stored body are ignored; an unknown kind decodes to :class:`Unrecognised`
       (a newer release wrote it) and is skipped by the projections.
    4. Facts hold data only: strings, numbers, booleans, tuples, nested frozen dataclasses and, where a
       device reports free-form readings, a dict. No behaviour, no references to live objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

import msgspec

from dispatch.errors import JournalError

#: where an incident's lat/lon came from ("street": the centre of a grouped incident's street, dispatch.triage rule 4)
Location = Literal["reported", "home", "unknown", "address", "map", "street"]
#: where an operator placed an incident: a typed address resolved by the gazetteer, or a point on the map
PlacedBy = Literal["address", "map"]
#: what an operator made of an answered hotline call
CallKind = Literal["emergency", "service", "consultation", "complaint", "wrong_number", "silent"]
#: who made an offer: the engine (``auto``), an operator, or the circle's last rings (dispatch.family): a volunteer
#: on call asked from home (``on_call``), one of the elder's family contacts in calling order (``family``)
OfferedBy = Literal["auto", "operator", "on_call", "family"]
#: the offers of the circle's last rings: not counted against ``max_offers`` (each ring is bounded by itself)
RING_OFFERS: tuple[OfferedBy, ...] = ("on_call", "family")
#: how a person outside the phone page is reached (dispatch.family.ContactChannel)
ChannelKind = Literal["sms", "voice"]
CaregiverStatus = Literal["en_route", "on_scene", "done"]
OutsideService = Literal["120", "110", "119"]
ReadWhat = Literal["record", "incident", "call", "job", "order", "plan", "referral", "assessment", "file"]
#: where a service order came from: an operator's classified call, the console, a standing 五定 plan
OrderSource = Literal["call", "console", "plan"]
ServiceMode = Literal["free", "low_cost", "paid"]  # the registry's Entitlement, fixed on the order
AccountChange = Literal[
    "disabled", "enabled", "password_reset", "password_changed", "role", "scopes", "key_issued", "key_revoked",
    "logout",
]  # fmt: skip
LoginRefusal = Literal["wrong_password", "unknown_account", "disabled", "locked", "address_throttled"]
#: an inbound hotline call, or an outbound one an operator placed through the PBX (click-to-call)
CallDirection = Literal["in", "out"]
#: how the cause of a click-to-call the PBX refused begins (:class:`CallEnded`; its outcome is "failed")
ORIGINATE_FAILED = "originate failed"


@dataclass(frozen=True, slots=True)
class Fact:
    """The body of one journal entry. Subclasses are registered with :func:`fact`."""

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    @classmethod
    def upgrade(cls, version: int, body: dict[str, Any]) -> dict[str, Any]:
        """Bring a body stored at an older ``version`` to the current shape (no older shapes exist yet)."""
        raise JournalError(f"{cls.KIND}: no upgrade from version {version} to {cls.VERSION}")


F = TypeVar("F", bound=type[Fact])

FACTS: dict[str, type[Fact]] = {}


def fact(kind: str) -> Callable[[F], F]:
    """Register a fact class under its kind name (once; a name is never reused)."""

    def register(cls: F) -> F:
        if kind in FACTS:
            raise ValueError(f"entry kind {kind} is registered twice")
        cls.KIND = kind
        FACTS[kind] = cls
        return cls

    return register


# -- incidents ----------------------------------------------------------------------------------------


@fact("incident.opened")
@dataclass(frozen=True, slots=True)
class IncidentOpened(Fact):
    incident_id: str
    alarm_type: str
    source: str  # device, api, hotline, supervision
    priority: int
    priority_reasons: tuple[str, ...]
    location: Location  # where lat/lon came from
    answer_deadline: float
    technical: bool = False
    elder_id: str | None = None
    device_id: str | None = None
    call_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    dedup: str | None = None  # the device message's dedup key: a repeat is recognised
    code: str | None = None  # the device protocol's own code and zone, kept for the record
    zone: str | None = None
    caller: str | None = None  # the number of a caller nobody knew (incidents opened by an operator)
    place: str = ""  # the place an operator typed, as the gazetteer named it
    #: a grouped technical incident (dispatch.triage rule 4): the street path ``district/street`` whose devices
    #: it gathers, ``device_id`` the first of them; the others join it by ``incident.alarm_attached``
    group: str | None = None
    #: a device's test call (``device.test_started``): offered to nobody, never escalated, closed at once as
    #: "test passed" (dispatch.keeping)
    test: bool = False


@fact("incident.alarm_attached")
@dataclass(frozen=True, slots=True)
class AlarmAttached(Fact):
    """Another alarm for a person (or condition) whose incident is open joined that incident."""

    alarm_type: str
    source: str
    priority: int
    priority_reasons: tuple[str, ...]
    device_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    dedup: str | None = None
    code: str | None = None
    zone: str | None = None
    call_id: str | None = None


@fact("incident.device_restored")
@dataclass(frozen=True, slots=True)
class DeviceRestored(Fact):
    """One device of a grouped technical incident is well again (its restore code, or it reported again)."""

    device_id: str
    outcome: str


@fact("incident.acknowledged")
@dataclass(frozen=True, slots=True)
class Acknowledged(Fact):
    pass


@fact("incident.unanswered")
@dataclass(frozen=True, slots=True)
class Unanswered(Fact):
    """Nobody acknowledged within the answer target: supervisors are alerted."""

    waited_s: float


@dataclass(frozen=True, slots=True)
class RankedResponder:
    """One candidate of a ranking, as the operator sees it and the journal keeps it."""

    responder_id: str
    name: str
    distance_m: float
    eta_s: float
    travel: str
    own: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProposedClinic:
    clinic_id: str
    name: str
    distance_m: float
    eta_s: float
    reasons: tuple[str, ...]


@fact("incident.ranked")
@dataclass(frozen=True, slots=True)
class Ranked(Fact):
    candidates: tuple[RankedResponder, ...]
    clinic: ProposedClinic | None
    skill: str | None
    radius_m: float
    excluded: tuple[str, ...] = ()


@fact("incident.needs_manual")
@dataclass(frozen=True, slots=True)
class NeedsManual(Fact):
    reason: str
    #: the incident waits in the backlog for a responder: whoever becomes free, comes on duty or moves into range
    #: and may go is offered it at once (False: only an operator can move it on, e.g. its place is unknown)
    waiting: bool = False


@fact("incident.note")
@dataclass(frozen=True, slots=True)
class Note(Fact):
    text: str
    shared: bool = False  # shown on the assigned caregiver's phone (what they need to know at the door)


@fact("incident.retyped")
@dataclass(frozen=True, slots=True)
class Retyped(Fact):
    """An operator said what the alarm really is (a pendant's SOS that is a fall): its type, and the priority
    that follows from it."""

    alarm_type: str
    priority: int
    priority_reasons: tuple[str, ...]


@fact("incident.located")
@dataclass(frozen=True, slots=True)
class Located(Fact):
    """An operator placed an incident whose location was unknown or wrong (the caller said where they are)."""

    lat: float
    lon: float
    by: PlacedBy
    address: str = ""


@fact("incident.cancelled")
@dataclass(frozen=True, slots=True)
class Cancelled(Fact):
    reason: str


@fact("incident.escalated")
@dataclass(frozen=True, slots=True)
class Escalated(Fact):
    service: OutsideService
    name: str
    note: str = ""


@fact("incident.resolved")
@dataclass(frozen=True, slots=True)
class Resolved(Fact):
    outcome: str


@fact("incident.closed")
@dataclass(frozen=True, slots=True)
class Closed(Fact):
    pass


# -- offers and assignments ---------------------------------------------------------------------------


@fact("offer.made")
@dataclass(frozen=True, slots=True)
class OfferMade(Fact):
    assignment_id: str
    responder_id: str
    deadline: float
    by: OfferedBy
    distance_m: float | None = None
    eta_s: float | None = None


@fact("offer.accepted")
@dataclass(frozen=True, slots=True)
class OfferAccepted(Fact):
    assignment_id: str
    responder_id: str
    reason: str = ""


@fact("offer.declined")
@dataclass(frozen=True, slots=True)
class OfferDeclined(Fact):
    assignment_id: str
    responder_id: str
    reason: str = ""


@fact("offer.expired")
@dataclass(frozen=True, slots=True)
class OfferExpired(Fact):
    assignment_id: str
    responder_id: str


@fact("offer.held")
@dataclass(frozen=True, slots=True)
class OfferHeld(Fact):
    """The offer's time ran out and nobody else could be asked: it keeps ringing until ``deadline`` rather than
    being taken away from the one person who can answer it (a caregiver fumbling for the phone at night). Anyone
    who becomes free meanwhile is offered the incident besides; the first to accept takes it."""

    assignment_id: str
    responder_id: str
    deadline: float


@fact("offer.withdrawn")
@dataclass(frozen=True, slots=True)
class OfferWithdrawn(Fact):
    assignment_id: str
    responder_id: str
    reason: str = ""


#: the reason of an offer withdrawn because another responder offered the same incident at once accepted first
TAKEN_BY_ANOTHER = "accepted by another responder"
#: the reason of a job withdrawn from a responder still on the way because someone nearer took it over
TAKEN_OVER = "someone nearer took over"


@fact("assignment.status")
@dataclass(frozen=True, slots=True)
class AssignmentStatus(Fact):
    """A caregiver's report on a job they accepted: en route, on scene, done."""

    assignment_id: str
    responder_id: str
    status: CaregiverStatus
    note: str = ""


@fact("contact.notified")
@dataclass(frozen=True, slots=True)
class ContactNotified(Fact):
    """A person of the circle's last rings was sent a message (SMS or voice) about the incident: a family
    contact without an account (call the centre), or one offered the alarm on the phone page, or a volunteer on
    call (open the page). Written before the message leaves (dispatch.family); a drill's is never sent."""

    responder_id: str  # the volunteer's id, or the contact's kin id (dispatch.family.kin_id)
    name: str
    phone: str
    channel: ChannelKind
    offered: bool  # they were offered the alarm too (they answer on the phone page)
    relation: str = ""
    position: int = 0  # the contact's place in the elder's calling order (1 the first; 0 a volunteer)


#: the facts about one offer or job, each naming its assignment and responder
AssignmentFact = (
    OfferMade | OfferAccepted | OfferDeclined | OfferExpired | OfferHeld | OfferWithdrawn | AssignmentStatus
)


# -- responders ---------------------------------------------------------------------------------------


@fact("responder.duty")
@dataclass(frozen=True, slots=True)
class ResponderDuty(Fact):
    responder_id: str
    on: bool
    lat: float | None = None
    lon: float | None = None


@fact("responder.position")
@dataclass(frozen=True, slots=True)
class ResponderPosition(Fact):
    responder_id: str
    lat: float
    lon: float


# -- hotline calls ------------------------------------------------------------------------------------


@fact("call.ringing")
@dataclass(frozen=True, slots=True)
class CallRinging(Fact):
    """A hotline call rang. A number registered to one elder names them (their record pops at once); a number
    several elders share (a household's landline) names them all in ``household`` and none in ``elder_id``:
    the operator picks whom the call is about (:class:`CallerPicked`).

    An outbound call (``direction`` "out", an operator's click-to-call: :class:`CallDialed` came first) rings
    at the far side; ``caller`` is then the number called. ``at``: when it rang by the PBX's clock, when the
    PBX said (None: when it reached us, the entry's time)."""

    call_id: str
    caller: str
    line: str
    elder_id: str | None = None  # the elder whose phone number called, when registered to one elder
    household: tuple[str, ...] = ()  # the elders sharing the number that called, by id, when several
    direction: CallDirection = "in"
    at: float | None = None


@fact("call.queued")
@dataclass(frozen=True, slots=True)
class CallQueued(Fact):
    """The caller waits in one of the PBX's queues (the hotline's) for a free operator. A caller who hangs up
    while queued abandoned the call; one who ends while still ringing, never queued, was missed."""

    call_id: str
    queue: str
    at: float | None = None  # by the PBX's clock (None: the entry's time)


@fact("call.answered")
@dataclass(frozen=True, slots=True)
class CallAnswered(Fact):
    """Someone picked up: the PBX ``extension`` that did, and the operator account it belongs to (settings
    ``pbx_extensions``; None: the extension is nobody's, or the telephony did not say: the entry's actor
    answered). An outbound call is answered when the far side picks up."""

    call_id: str
    words: str = ""  # what the caller said, when the telephony knows it (an IVR menu, a transcript)
    operator: str | None = None  # the operator's user name
    extension: str = ""
    at: float | None = None  # by the PBX's clock (None: the entry's time)


@fact("call.transferred")
@dataclass(frozen=True, slots=True)
class CallTransferred(Fact):
    """An answered call was passed on to another ``extension`` (and the operator it belongs to, when it is
    someone's): from now on they are the one handling it."""

    call_id: str
    extension: str
    operator: str | None = None  # the operator's user name
    at: float | None = None  # by the PBX's clock (None: the entry's time)


@fact("call.ended")
@dataclass(frozen=True, slots=True)
class CallEnded(Fact):
    """The call is over (final). ``cause``: the PBX's hangup cause ("16 Normal Clearing"; for a click-to-call
    the PBX refused, "originate failed: ..."), ``""`` when unknown."""

    call_id: str
    cause: str = ""
    at: float | None = None  # by the PBX's clock (None: the entry's time)


@fact("call.dialed")
@dataclass(frozen=True, slots=True)
class CallDialed(Fact):
    """An operator asked the PBX to place a call (click-to-call): it rings their ``extension``, then dials
    ``number``. Written before the PBX is asked, so that a call placed is on record whatever the PBX answers;
    the call's own events (ringing at the far side, answered, ended) follow under ``call_id``. What it is
    about, when the operator dialled from one: an elder, the call it calls back (``about_call``), an
    incident."""

    call_id: str
    number: str
    operator: str  # the operator's user name
    extension: str
    elder_id: str | None = None
    about_call: str | None = None
    incident_id: str | None = None


@fact("call.classified")
@dataclass(frozen=True, slots=True)
class CallClassified(Fact):
    """The operator's word on an answered call: what it was, in the caller's words; an emergency opened (or was
    linked to) the incident named here; a silent call leaves a call-back task."""

    call_id: str
    kind: CallKind
    text: str = ""
    elder_id: str | None = None  # who the call was about, when the operator identified them
    incident_id: str | None = None


@fact("call.caller_picked")
@dataclass(frozen=True, slots=True)
class CallerPicked(Fact):
    """The operator said which of the elders a call offered it is about: one of a household sharing the landline
    that called, or one of the elders whose family contact called. None: someone else (the elder search finds
    them, or nobody registered). A later pick, before the call is classified, replaces it."""

    call_id: str
    elder_id: str | None


@fact("call.called_back")
@dataclass(frozen=True, slots=True)
class CalledBack(Fact):
    """The call-back task of a silent call is done."""

    call_id: str
    outcome: str


#: the facts about one hotline call, each naming it
CallFact = (
    CallRinging | CallQueued | CallAnswered | CallTransferred | CallEnded | CallDialed | CallClassified
    | CallerPicked | CalledBack
)  # fmt: skip


# -- devices and elders -------------------------------------------------------------------------------


@fact("device.unknown")
@dataclass(frozen=True, slots=True)
class DeviceUnknown(Fact):
    """An unregistered device reported (recorded at most once an hour per device). Written by releases before
    ``devices.unknown`` summaries replaced it; kept readable."""

    protocol: str
    device_id: str
    code: str
    kind: str
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class UnknownCount:
    """How many frames of one protocol and kind (and, for alarms, one alarm type) unregistered devices sent."""

    protocol: str
    kind: str
    count: int
    alarm_type: str | None = None


@fact("devices.unknown")
@dataclass(frozen=True, slots=True)
class UnknownDevices(Fact):
    """What unregistered devices said over one interval (``unknown_interval_s``): one entry per interval, not one
    per frame (see dispatch.supervision). ``distinct`` counts the ids kept (at most ``unknown_ids_kept``;
    ``more`` says others came); ``sample`` names the first few (``protocol:device_id``), ``alarm_devices`` the
    first few that sent alarms; ``urgent`` says an SOS, fall, medical or fire alarm was among them."""

    since: float  # the first frame of the interval (receive time)
    until: float  # the last one
    frames: int
    counts: tuple[UnknownCount, ...]
    distinct: int
    more: bool = False
    sample: tuple[str, ...] = ()
    alarms: int = 0
    alarm_devices: tuple[str, ...] = ()
    urgent: bool = False


@fact("devices.unknown_alarm")
@dataclass(frozen=True, slots=True)
class UnknownAlarm(Fact):
    """The first alarm of an interval from an unregistered device: the supervisors' alert, durable before that
    frame is acknowledged. Later alarms of the interval are counted into its ``devices.unknown`` summary."""

    protocol: str
    device_id: str
    alarm_type: str
    code: str
    urgent: bool
    zone: str | None = None
    lat: float | None = None
    lon: float | None = None


@fact("device.position_implausible")
@dataclass(frozen=True, slots=True)
class PositionImplausible(Fact):
    """A registered device reported a fix implying a move faster than ``max_speed_kmh`` from its last accepted
    one: flagged, not applied (the elder's shown whereabouts stay). At most one entry per device per
    ``unknown_interval_s``; ``count`` is how many such fixes it sent since its last entry, this one included.
    Written into the incident when the fix came with an alarm."""

    elder_id: str
    device_id: str
    lat: float
    lon: float
    from_lat: float
    from_lon: float
    distance_m: float
    seconds: float
    speed_kmh: float
    count: int = 1


@fact("elder.health")
@dataclass(frozen=True, slots=True)
class ElderHealth(Fact):
    elder_id: str
    device_id: str
    readings: dict[str, Any] = field(default_factory=dict)  # as the device reported them


@fact("elder.position")
@dataclass(frozen=True, slots=True)
class ElderPosition(Fact):
    elder_id: str
    device_id: str
    lat: float
    lon: float


@fact("elder.viewed")
@dataclass(frozen=True, slots=True)
class ElderViewed(Fact):
    """Someone read an elder's personal data (health data is sensitive: every read is on record): their
    record, or an incident or call about them (``what``)."""

    elder_id: str
    why: str | None = None
    what: ReadWhat = "record"
    subject: str | None = None  # the incident or call read, when it was not the record itself


@fact("records.read")
@dataclass(frozen=True, slots=True)
class RecordsRead(Fact):
    """A bulk read of personal data: a list or search of elders, the incident or call list, the console's
    stream or snapshot, the journal, an export. ``count`` is how many records it held; a search names them."""

    what: str
    count: int
    elder_ids: tuple[str, ...] = ()
    filter: str = ""  # the community or query the list was asked for


# -- registry and accounts ----------------------------------------------------------------------------


@fact("account.created")
@dataclass(frozen=True, slots=True)
class AccountCreated(Fact):
    username: str
    role: str
    scopes: tuple[str, ...] = ()  # the parts of the network it sees ("*": the whole centre)
    service: bool = False  # a service account (an integration's API key), not a person


@fact("account.changed")
@dataclass(frozen=True, slots=True)
class AccountChanged(Fact):
    """An account's life after creation: disabled, enabled, its password reset by an admin or changed by its
    owner, its role or scopes changed, an API key issued or revoked, a logout (tokens revoked)."""

    username: str
    change: AccountChange
    detail: str = ""


@fact("login.failed")
@dataclass(frozen=True, slots=True)
class LoginFailed(Fact):
    """A refused login: wrong password, no such account, a disabled or locked account, a throttled address."""

    username: str  # as typed (cut to 64 characters)
    address: str
    reason: LoginRefusal


@fact("journal.guard")
@dataclass(frozen=True, slots=True)
class JournalGuard(Fact):
    """At start the journal found its protection missing (append-only triggers dropped) and put it back:
    someone with the file in hand may have rewritten it; ``anxin verify`` judges."""

    missing: tuple[str, ...]


@fact("cluster.leader")
@dataclass(frozen=True, slots=True)
class LeaderElected(Fact):
    """A cluster node took the lead (dispatch.cluster): from this entry on, ``node`` decides, in ``term``;
    ``after`` is the node that led before (empty for the first term)."""

    node: str
    term: int
    after: str = ""


#: what a registry entry writes instead of a device's key (its value never reaches the journal)
KEY_CHANGED = "changed"


@fact("registry.elder")
@dataclass(frozen=True, slots=True)
class ElderSaved(Fact):
    elder_id: str
    changed: bool
    fields: tuple[str, ...] = ()  # the fields that changed (all of them for a new record)
    #: the changed fields' values before and after (JSON values; ``old`` is empty for a new record). Entries
    #: written before these existed read with both empty
    old: dict[str, Any] = field(default_factory=dict)
    new: dict[str, Any] = field(default_factory=dict)


@fact("registry.device")
@dataclass(frozen=True, slots=True)
class DeviceSaved(Fact):
    device_id: str
    changed: bool
    fields: tuple[str, ...] = ()
    old: dict[str, Any] = field(default_factory=dict)  # ``aes_key``: KEY_CHANGED or None, never the key
    new: dict[str, Any] = field(default_factory=dict)


@fact("registry.responder")
@dataclass(frozen=True, slots=True)
class ResponderSaved(Fact):
    responder_id: str
    changed: bool
    fields: tuple[str, ...] = ()
    old: dict[str, Any] = field(default_factory=dict)
    new: dict[str, Any] = field(default_factory=dict)


#: why an elder left the centre's care
LeftCare = Literal["moved_away", "died", "care_home", "other"]


@fact("registry.elder_deactivated")
@dataclass(frozen=True, slots=True)
class ElderDeactivated(Fact):
    """The elder left the centre's care: the file is kept, nothing is matched to them any more; their devices are
    unbound by ``registry.device_unbound`` entries that follow."""

    elder_id: str
    reason: LeftCare
    words: str = ""  # the supervisor's words (required for "other")


@fact("registry.elder_reactivated")
@dataclass(frozen=True, slots=True)
class ElderReactivated(Fact):
    elder_id: str
    words: str = ""


@fact("registry.device_unbound")
@dataclass(frozen=True, slots=True)
class DeviceUnbound(Fact):
    """A device taken off its elder and out of the registry: what it sends is from an unknown device now."""

    device_id: str
    elder_id: str
    protocol: str
    reason: str = ""  # "elder deactivated" when it went with its elder


@fact("device.test_started")
@dataclass(frozen=True, slots=True)
class DeviceTestStarted(Fact):
    """Someone pressed "test call": an alarm from the device before ``until`` is a test (IncidentOpened.test)."""

    device_id: str
    elder_id: str
    until: float


@fact("device.test_passed")
@dataclass(frozen=True, slots=True)
class DeviceTestPassed(Fact):
    device_id: str
    incident_id: str  # the test incident its alarm opened (closed at once), or the real one (``real``)
    alarm_type: str
    elder_id: str = ""  # whose device (the elder's file files it)
    #: the device was heard with a real alarm in its test window (a fire, a fall, an SOS while an incident of
    #: the elder was open, a frame without its key): handled as real, not as the test (dispatch.keeping rule 4)
    real: bool = False


@fact("device.test_failed")
@dataclass(frozen=True, slots=True)
class DeviceTestFailed(Fact):
    """The test window elapsed with nothing heard from the device (or it was unbound meanwhile)."""

    device_id: str
    reason: str = "nothing heard"
    elder_id: str = ""  # whose device (the elder's file files it)


@fact("registry.imported")
@dataclass(frozen=True, slots=True)
class RegistryImported(Fact):
    files: dict[str, str]
    counts: dict[str, dict[str, int]]  # {"elders": {"added": n, "updated": n, "unchanged": n}, ...}
    errors: int


# -- needs assessments (dispatch.assessment) -------------------------------------------------------------------------


@fact("assessment.recorded")
@dataclass(frozen=True, slots=True)
class AssessmentRecorded(Fact):
    """An assessor (the entry's actor) assessed an elder by the ability assessment standard (``standard``): every
    item's score as given, the living situation and major diseases, and what the code made of them: the domain
    grades, the preliminary and final ability level (0 能力完好 - 3 重度失能), the changes applied, and the care
    level it sets."""

    assessment_id: str
    elder_id: str
    standard: str
    reason: str  # initial, routine, after_fall, after_hospital, change, review
    answers: dict[str, int]
    grades: dict[str, int]
    preliminary: int
    level: int
    care_level: int
    changes: tuple[str, ...] = ()
    diagnosis: bool = False
    risk_events: int = 0
    lives_with: str | None = None
    diseases: tuple[str, ...] = ()
    note: str = ""


@fact("registry.elders_merged")
@dataclass(frozen=True, slots=True)
class EldersMerged(Fact):
    """One person registered twice, merged: ``other``'s devices moved to ``keep``, its contacts not already on
    ``keep``'s list added after them, ``keep``'s empty fields filled from it, and ``other`` taken out of care
    (``reason``). ``old`` holds ``keep``'s values before the merge of every field it changed, so that the merge
    can be read back (and undone by hand)."""

    keep: str
    other: str
    devices: tuple[str, ...] = ()  # moved from other to keep
    contacts: tuple[str, ...] = ()  # the phones of other's contacts added to keep's list
    filled: tuple[str, ...] = ()  # keep's fields that were empty, filled from other
    old: dict[str, object] = field(default_factory=dict)
    reason: str = ""


# -- service orders (the service desk: dispatch.services, dispatch.machines ORDER_TRANSITIONS) ---------------


@fact("service.ordered")
@dataclass(frozen=True, slots=True)
class ServiceOrdered(Fact):
    """A service ordered for an elder: one catalogue item in a time window. The mode and the price are fixed
    here, from the elder's entitlement and the catalogue at ordering (integer fen); later changes of either do
    not change this order. ``provider`` is the centre's own responders ("centre") until contracted
    organisations are registered."""

    order_id: str
    elder_id: str
    item_id: str
    start: float  # the window the elder asked for (UTC seconds)
    end: float
    mode: ServiceMode
    price_fen: int
    source: OrderSource
    place: str = ""  # where, when not at home, or how to get in
    call_id: str | None = None
    provider: str = "centre"
    plan_id: str | None = None  # the 五定 plan that generated it (source "plan"), and its planned local day
    plan_day: str | None = None  # YYYY-MM-DD: one order per plan and day (dispatch.plans rule 3)


@fact("service.scheduled")
@dataclass(frozen=True, slots=True)
class ServiceScheduled(Fact):
    order_id: str
    start: float
    end: float


@fact("service.rescheduled")
@dataclass(frozen=True, slots=True)
class ServiceRescheduled(Fact):
    """A new window; whoever was assigned is released and the visit is assigned again."""

    order_id: str
    start: float
    end: float
    reason: str = ""


@fact("service.assigned")
@dataclass(frozen=True, slots=True)
class ServiceAssigned(Fact):
    order_id: str
    responder_id: str


@fact("service.started")
@dataclass(frozen=True, slots=True)
class ServiceStarted(Fact):
    """The caregiver checked in at the door: when (the server's clock) and, when the phone knew, where."""

    order_id: str
    responder_id: str
    at: float
    lat: float | None = None
    lon: float | None = None


@fact("service.delivered")
@dataclass(frozen=True, slots=True)
class ServiceDelivered(Fact):
    """The caregiver checked out: when, where, and a note of what was done."""

    order_id: str
    responder_id: str
    at: float
    lat: float | None = None
    lon: float | None = None
    note: str = ""


@fact("service.confirmed")
@dataclass(frozen=True, slots=True)
class ServiceConfirmed(Fact):
    order_id: str


@fact("service.cancelled")
@dataclass(frozen=True, slots=True)
class ServiceCancelled(Fact):
    order_id: str
    reason: str


@fact("service.no_show")
@dataclass(frozen=True, slots=True)
class ServiceNoShow(Fact):
    """The elder was not home (or sent the caregiver away)."""

    order_id: str
    note: str = ""


#: the facts about one service order, each naming it
ServiceFact = (
    ServiceOrdered | ServiceScheduled | ServiceRescheduled | ServiceAssigned | ServiceStarted | ServiceDelivered
    | ServiceConfirmed | ServiceCancelled | ServiceNoShow
)  # fmt: skip


# -- vouchers (服务券: dispatch.vouchers, charged by the engine when a service order is delivered) -----------


@fact("vouchers.allotted")
@dataclass(frozen=True, slots=True)
class VouchersAllotted(Fact):
    """An elder's vouchers for a month (the centre's local month, ``YYYY-MM``), in fen, from the entitlement
    rules (``voucher_*`` settings) as they stood at the month's first delivery: one per elder and month, written
    just before that delivery's charge. An elder with no vouchers is allotted 0, on record all the same."""

    elder_id: str
    month: str
    fen: int


@fact("vouchers.charged")
@dataclass(frozen=True, slots=True)
class VouchersCharged(Fact):
    """What a delivered service order cost and who paid: ``voucher_fen + cash_fen == price_fen``, in the local
    month of the check-out, written in the same engine transaction as its ``service.delivered``.

    A fact of its own rather than a second version of ``service.delivered``: the check-out is the caregiver's
    word (what was done, where), the charge is the centre's bookkeeping (written by ``system:vouchers``, never
    for a drill). Keeping them apart leaves every stored check-out readable as it was (no upgrade), lets the
    money be read without the visit, and carries what a statement is keyed by as it stood at delivery: the
    provider and the elder's community then, not wherever the elder lives now."""

    order_id: str
    elder_id: str
    month: str
    price_fen: int
    voucher_fen: int
    cash_fen: int
    provider: str
    community: str
    item_id: str


# -- follow-ups (回访: dispatch.followups) --------------------------------------------------------------------

FollowUpKind = Literal["incident", "service"]


@fact("follow_up.created")
@dataclass(frozen=True, slots=True)
class FollowUpCreated(Fact):
    """A return call is owed: an incident of this elder closed, or a service was delivered to them. ``due`` is
    when (UTC seconds); ``responders`` are those whose work it follows (their evaluation comes from it)."""

    follow_up_id: str
    kind: FollowUpKind
    subject_id: str  # the incident or the service order
    elder_id: str
    due: float
    responders: tuple[str, ...] = ()


@fact("follow_up.recorded")
@dataclass(frozen=True, slots=True)
class FollowUpRecorded(Fact):
    """One attempt of the return call, by the entry's actor: reached or not; when reached, the elder's
    satisfaction (1-5) and any complaint in their words."""

    follow_up_id: str
    elder_id: str
    reached: bool
    satisfaction: int | None = None
    complaint: str = ""
    note: str = ""


@fact("follow_up.unreachable")
@dataclass(frozen=True, slots=True)
class FollowUpUnreachable(Fact):
    """Nobody answered ``attempts`` times: the follow-up is closed and a home visit is proposed."""

    follow_up_id: str
    elder_id: str
    attempts: int


@fact("follow_up.complaint")
@dataclass(frozen=True, slots=True)
class ComplaintRaised(Fact):
    """A complaint heard on a follow-up: a task for the supervisors of the elder's community."""

    complaint_id: str
    follow_up_id: str
    elder_id: str
    text: str


@fact("follow_up.complaint_settled")
@dataclass(frozen=True, slots=True)
class ComplaintSettled(Fact):
    """A supervisor settled a complaint: what was done about it (the entry's actor is who settled it)."""

    complaint_id: str
    elder_id: str
    resolution: str


#: the facts about follow-ups, each naming the elder (whose community they lie in)
FollowUpFact = FollowUpCreated | FollowUpRecorded | FollowUpUnreachable | ComplaintRaised | ComplaintSettled


# -- care calls (关怀电话: dispatch.carecalls) ---------------------------------------------------------------

#: how a reached elder is, in the operator's judgement: "needs_help" is a mark for the list, it opens nothing
Wellbeing = Literal["well", "unwell", "needs_help"]


@fact("care_call.made")
@dataclass(frozen=True, slots=True)
class CareCallMade(Fact):
    """One attempt of a care call by the entry's actor: reached (with the elder's wellbeing and a short note) or
    not. ``attempt`` counts the attempts in a row since the last reached call (1 is the first); ``retry_at``
    (UTC seconds) is when an unanswered call is tried again, None when reached or when a visit is proposed
    instead."""

    elder_id: str
    reached: bool
    attempt: int
    wellbeing: Wellbeing | None = None
    note: str = ""
    retry_at: float | None = None


@fact("care_call.visit_proposed")
@dataclass(frozen=True, slots=True)
class CareVisitProposed(Fact):
    """Nobody answered ``attempts`` care calls in a row: a home visit is proposed, a task for the operators."""

    visit_id: str
    elder_id: str
    attempts: int


@fact("care_call.visit_settled")
@dataclass(frozen=True, slots=True)
class CareVisitSettled(Fact):
    """A proposed home visit is settled by the entry's actor, with what was found; it counts as a contact."""

    visit_id: str
    elder_id: str
    note: str


# -- 五定 plans (fixed caregiver, time, place, item and mode: dispatch.plans) --------------------------------

#: what the operator made of a missed planned visit
PlanTaskOutcome = Literal["rescheduled", "cancelled", "elder_away", "visited", "other"]


@fact("plan.created")
@dataclass(frozen=True, slots=True)
class PlanCreated(Fact):
    """A standing plan: one catalogue item for an elder, by a fixed caregiver (定人), on fixed weekdays at a fixed
    local time (定时), at a fixed place (定点: the elder's home when blank). The mode and price (定价) are not
    fixed here: each generated order takes the elder's entitlement when it is ordered, as every order does."""

    plan_id: str
    elder_id: str
    item_id: str
    responder_id: str
    weekdays: tuple[int, ...]  # ISO weekdays: 1 Monday .. 7 Sunday
    at: str  # HH:MM, the centre's local time (``timezone`` setting)
    minutes: int  # the visit's length: the item's duration when the plan was made
    first_day: str  # YYYY-MM-DD, local
    last_day: str | None = None  # YYYY-MM-DD, local; None: until ended
    place: str = ""
    note: str = ""


@fact("plan.ended")
@dataclass(frozen=True, slots=True)
class PlanEnded(Fact):
    """The plan ends: no visit after ``last_day`` (local); its orders planned after it are cancelled."""

    plan_id: str
    elder_id: str
    last_day: str
    reason: str = ""


@fact("plan.visit_missed")
@dataclass(frozen=True, slots=True)
class PlanVisitMissed(Fact):
    """A planned visit's window ended (plus the grace) with nobody checked in: a task for the operators."""

    task_id: str
    plan_id: str
    order_id: str
    elder_id: str
    responder_id: str | None
    start: float
    end: float


@fact("plan.task_closed")
@dataclass(frozen=True, slots=True)
class PlanTaskClosed(Fact):
    """An operator settled a missed visit's task: what was done about it, in a word and a note."""

    task_id: str
    plan_id: str
    elder_id: str
    outcome: PlanTaskOutcome
    note: str = ""


#: the facts about plans, each naming the elder (whose community they lie in)
PlanFact = PlanCreated | PlanEnded | PlanVisitMissed | PlanTaskClosed
# -- night duty and handover (值班与交接班: dispatch.duty) ------------------------------------------------------

ShiftKind = Literal["day", "night"]


@fact("duty.started")
@dataclass(frozen=True, slots=True)
class DutyStarted(Fact):
    """The entry's actor is on duty for a part of the network (``scope``: ``*`` or a district, street or
    community path) from now on; ``after`` names the shift they took over, when they began by taking one over."""

    shift_id: str
    scope: str
    kind: ShiftKind
    after: str | None = None


@fact("duty.logged")
@dataclass(frozen=True, slots=True)
class DutyLogged(Fact):
    """One line of a shift's log, in the writer's words (the entry's actor); ``at`` is when what it tells of
    happened (the time of writing unless the writer said otherwise)."""

    shift_id: str
    scope: str
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class OpenIncidentLine:
    incident_id: str
    alarm_type: str
    state: str
    priority: int
    opened_at: float
    drill: bool = False


@dataclass(frozen=True, slots=True)
class OpenOrderLine:
    order_id: str
    elder_id: str
    item_id: str
    state: str
    start: float
    drill: bool = False


@dataclass(frozen=True, slots=True)
class DueFollowUpLine:
    follow_up_id: str
    elder_id: str
    kind: str
    subject_id: str
    due: float
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class DutySummary:
    """What a scope's desk holds, computed from the record between ``since`` and ``until`` (UTC seconds): the
    open incidents, open service orders and follow-ups due by ``until`` (each count whole, each list at most
    dispatch.duty.LIST_MAX long), and how many alarms, calls, opened and closed incidents the span saw (drills
    not counted); ``log_lines``: how many lines the shift's log held."""

    since: float
    until: float
    open_incidents: int
    incidents: tuple[OpenIncidentLine, ...]
    open_orders: int
    orders: tuple[OpenOrderLine, ...]
    follow_ups_due: int
    follow_ups: tuple[DueFollowUpLine, ...]
    alarms: int
    calls: int
    opened: int
    closed: int
    log_lines: int = 0


@fact("duty.handed_over")
@dataclass(frozen=True, slots=True)
class DutyHandedOver(Fact):
    """The shift ends: the entry's actor (the operator on duty, or a supervisor for them) hands it over with the
    desk as it stands (``summary``) and their own words. It waits for the next operator's acknowledgment."""

    shift_id: str
    scope: str
    summary: DutySummary
    words: str = ""


@fact("duty.taken_over")
@dataclass(frozen=True, slots=True)
class DutyTakenOver(Fact):
    """The entry's actor acknowledges a handed-over shift and starts ``next_shift_id`` (its ``duty.started``
    follows); ``words`` say what they dispute or could not find, when anything."""

    shift_id: str
    scope: str
    next_shift_id: str
    words: str = ""


#: the facts about duty shifts, each naming the scope they lie in
DutyFact = DutyStarted | DutyLogged | DutyHandedOver | DutyTakenOver


# -- clinic referrals (the green channel: dispatch.referrals) -----------------------------------------------

#: what became of a referred patient at the clinic
ReferralOutcome = Literal["admitted", "treated_home", "transferred", "left", "died", "other"]


@fact("referral.made")
@dataclass(frozen=True, slots=True)
class ReferralMade(Fact):
    """An operator referred the incident's patient to a clinic's green channel; the clinic answers by
    ``deadline`` (UTC seconds) or the referral expires. ``proposed``: the clinic the matcher proposed."""

    referral_id: str
    clinic_id: str
    deadline: float
    note: str = ""
    proposed: bool = False


@fact("referral.accepted")
@dataclass(frozen=True, slots=True)
class ReferralAccepted(Fact):
    referral_id: str
    clinic_id: str
    note: str = ""


@fact("referral.declined")
@dataclass(frozen=True, slots=True)
class ReferralDeclined(Fact):
    referral_id: str
    clinic_id: str
    reason: str = ""


@fact("referral.expired")
@dataclass(frozen=True, slots=True)
class ReferralExpired(Fact):
    referral_id: str
    clinic_id: str


@fact("referral.arrived")
@dataclass(frozen=True, slots=True)
class ReferralArrived(Fact):
    """The clinic says the patient is at its door."""

    referral_id: str
    clinic_id: str
    note: str = ""


@fact("referral.outcome")
@dataclass(frozen=True, slots=True)
class ReferralConcluded(Fact):
    """The clinic recorded what became of the patient."""

    referral_id: str
    clinic_id: str
    outcome: ReferralOutcome
    note: str = ""


@fact("referral.cancelled")
@dataclass(frozen=True, slots=True)
class ReferralCancelled(Fact):
    referral_id: str
    clinic_id: str
    reason: str = ""


#: the facts about one referral, each naming it and its clinic
ReferralFact = (
    ReferralMade | ReferralAccepted | ReferralDeclined | ReferralExpired | ReferralArrived | ReferralConcluded
    | ReferralCancelled
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Unrecognised(Fact):
    """A stored body this release cannot read: a kind or version a newer release wrote (``error`` None), or a
    body that does not fit its class (``error`` says how). Kept in the record, never applied."""

    kind: str
    version: int
    body: str
    error: str | None = None


# -- the journal's edge -------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
_decoders: dict[type[Fact], msgspec.json.Decoder[Any]] = {}


def encode(body: Fact) -> str:
    """The JSON text of a fact's fields (the text the journal stores and hashes)."""
    return _encoder.encode(body).decode()


def decode(kind: str, version: int, text: str) -> Fact:
    """The fact stored under ``kind`` at schema ``version``, or :class:`Unrecognised` when it cannot be read.

    Never raises on stored data: the hash chain, not the decoder, judges whether an entry was tampered with,
    and one unreadable entry must not keep the service from starting.
    """
    cls = FACTS.get(kind)
    if cls is None or version > cls.VERSION:
        return Unrecognised(kind, version, text)
    try:
        if version == cls.VERSION:
            decoded: Fact = _decoder(cls).decode(text)
            return decoded
        return msgspec.convert(cls.upgrade(version, msgspec.json.decode(text)), cls)
    except (msgspec.DecodeError, JournalError) as exc:
        return Unrecognised(kind, version, text, error=str(exc))


def _decoder(cls: type[Fact]) -> msgspec.json.Decoder[Any]:
    decoder = _decoders.get(cls)
    if decoder is None:
        decoder = _decoders[cls] = msgspec.json.Decoder(cls)
    return decoder
