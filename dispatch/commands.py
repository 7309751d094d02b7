"""What the outer packages may ask of the core, and what they get back.

The console, the gateway and the process package talk to the core through three seams only:

* :class:`~dispatch.intake.Intake` for everything that raises alarms (device reports, alarms over HTTP,
  hotline call events), with the request and result types below;
* :class:`Commands` for everything people do (operators, supervisors, caregivers, administrators);
* :class:`~dispatch.views.Views` for everything they read.

:class:`Commands` is a Protocol so that the outer packages see the engine's commands and nothing else of it:
no projection, no directory, no index. Every command checks first and writes nothing when it refuses
(:class:`~dispatch.errors.InvalidInput` and below); it returns once what it wrote is durable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from dispatch.entries import (
    AccountChange,
    CallKind,
    Location,
    LoginRefusal,
    OrderSource,
    PlacedBy,
    ReadWhat,
    ShiftKind,
)
from dispatch.errors import InvalidInput
from dispatch.registry import Device, Elder, Responder

CallEventKind = Literal["ringing", "queued", "answered", "transferred", "ended"]
CallDirection = Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class AlarmRequest:
    """An alarm raised by a person or a system over HTTP (a device's alarms come as device reports).

    ``source="operator"`` is an incident opened by hand: it may name no elder (a caller nobody knows yet),
    with the caller's number and, when the caller said where they are, a place (``placed_by`` says how the
    operator found it: a typed address or a point on the map)."""

    alarm_type: str
    actor: str
    source: str
    elder_id: str | None = None
    device_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    note: str | None = None
    drill: bool = False
    caller: str | None = None
    placed_by: PlacedBy | None = None
    address: str = ""


@dataclass(frozen=True, slots=True)
class Opened:
    """What became of an alarm: the incident it opened, or the open one it joined (``attached``)."""

    incident_id: str
    priority: int
    attached: bool


@dataclass(frozen=True, slots=True)
class CallEvent:
    """A telephony event about one hotline call. Repeated events for a call are answered, not written twice.

    An answered call waits for the operator's word (:meth:`Commands.classify_call`); a call nobody answered
    opens an incident with a call-back note when ``open_incident`` (an elder who called for help gets help)."""

    event: CallEventKind
    call_id: str
    caller: str
    line: str
    actor: str
    open_incident: bool = True
    alarm_type: str = "call"
    drill: bool = False
    words: str = ""  # what the caller said, when the telephony knows it
    #: answered / transferred: the operator the PBX extension belongs to (settings ``pbx_extensions``); None when
    #: the extension is nobody's (the call is still answered, by that extension)
    operator: str | None = None
    extension: str = ""  # answered: the extension that picked up; transferred: the one it went to
    queue: str = ""  # queued: the PBX queue the caller waits in
    cause: str = ""  # ended: the PBX's hangup cause ("16 Normal Clearing"), for the record
    #: when it happened by the PBX's clock, when that differs from when it reached us (a late event, or a state
    #: rebuilt after the link to the PBX dropped); None: now
    at: float | None = None
    #: "out": a call an operator placed through the PBX (:class:`Dial`); its ``caller`` is the number called
    direction: CallDirection = "in"


#: a number to dial: digits with an optional leading +, once spaces and dashes are taken out
_DIALLABLE = re.compile(r"\+?[0-9]{3,32}")


def dial_number(number: str) -> str:
    """The number as the PBX dials it (spaces and dashes taken out); InvalidInput ``bad_number`` unless it is 3
    to 32 digits with an optional leading +."""
    digits = number.replace(" ", "").replace("-", "")
    if _DIALLABLE.fullmatch(digits) is None:
        raise InvalidInput("a number to dial is 3 to 32 digits, with an optional leading +", field="number",
                           code="bad_number")  # fmt: skip
    return digits


@dataclass(frozen=True, slots=True)
class Dial:
    """A call an operator asks the PBX to place (click-to-call): the PBX rings the operator's ``extension``,
    then dials ``number`` (an elder, a contact, a caller to call back). ``call_id`` names the call record the
    PBX's events about it will report under."""

    call_id: str
    extension: str
    number: str
    operator: str


class Telephony(Protocol):
    """The PBX, as the console sees it: whether it is reachable, and click-to-call. The process package hands
    one to the core when a PBX is configured (gateway.ami); without one, dialling is refused."""

    @property
    def connected(self) -> bool: ...

    async def originate(self, dial: Dial) -> None:
        """Ask the PBX to place the call; returns once the PBX accepted the request (its events follow)."""


@dataclass(frozen=True, slots=True)
class CallOutcome:
    call_id: str
    state: str
    elder_id: str | None
    incident_id: str | None
    kind: str | None = None  # the operator's classification, once given


@dataclass(frozen=True, slots=True)
class Alarm:
    """An alarm that passed the intake's checks (inside the core): who, what, where if reported, from where."""

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
    location: Location | None = None  # how lat/lon were found when not reported by a device
    caller: str | None = None  # an unregistered caller's number
    place: str = ""  # the place an operator typed
    note_shared: bool = False  # the note is the caller's words: the caregiver sees it
    household: tuple[Elder, ...] = ()  # a shared landline's elders, when none of them is ``elder`` (triage rule 5)


@dataclass(frozen=True, slots=True)
class Classification:
    """An operator's word on an answered call.

    ``emergency`` opens an incident of ``alarm_type`` for the caller (or the elder the operator identified,
    ``elder_id``), placed where the caller said (``lat``/``lon``, ``placed_by``) or at the elder's home; or,
    with ``incident_id``, links the call to that open incident instead. The other kinds are recorded with the
    caller's words; a silent call leaves a call-back task."""

    call_id: str
    kind: CallKind
    actor: str
    text: str = ""
    alarm_type: str | None = None
    elder_id: str | None = None
    incident_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    placed_by: PlacedBy | None = None
    address: str = ""


#: one line of a shift roster: responder, on duty, and where they start (lat, lon) if known
RosterLine = tuple[str, bool, float | None, float | None]


class Commands(Protocol):
    """The engine as the outer packages see it: commands only."""

    # operators and supervisors
    async def acknowledge(self, incident_id: str, *, actor: str) -> None: ...

    async def dispatch(self, incident_id: str, responder_id: str, *, actor: str, replace: bool = False) -> None: ...

    async def locate(
        self, incident_id: str, lat: float, lon: float, *, by: PlacedBy, actor: str, address: str = ""
    ) -> None: ...

    async def classify_call(self, classification: Classification) -> CallOutcome: ...

    async def pick_caller(self, call_id: str, elder_id: str | None, *, actor: str) -> CallOutcome: ...

    async def called_back(self, call_id: str, outcome: str, *, actor: str) -> None: ...

    # click-to-call (the console asks the PBX, core.telephony, in between)
    async def dial(
        self,
        number: str,
        *,
        actor: str,
        extension: str,
        elder_id: str | None = None,
        about_call: str | None = None,
        incident_id: str | None = None,
    ) -> str: ...

    async def dial_failed(self, call_id: str, reason: str, *, actor: str) -> None: ...

    async def retype(self, incident_id: str, alarm_type: str, *, actor: str) -> None: ...

    async def cancel(self, incident_id: str, reason: str, *, actor: str) -> None: ...

    async def escalate(self, incident_id: str, service: str, note: str, *, actor: str) -> None: ...

    async def note(self, incident_id: str, text: str, *, actor: str, shared: bool = False) -> None: ...

    async def resolve(self, incident_id: str, outcome: str, *, actor: str) -> None: ...

    async def close(self, incident_id: str, *, actor: str) -> None: ...

    # clinic referrals (dispatch.referrals)
    async def refer(self, incident_id: str, clinic_id: str, *, actor: str, note: str = "") -> str: ...

    async def referral_action(
        self,
        referral_id: str,
        action: str,
        *,
        actor: str,
        clinic_id: str | None = None,
        note: str = "",
        outcome: str | None = None,
    ) -> None: ...

    # caregivers
    async def set_duty(
        self, responder_id: str, on: bool, *, actor: str, lat: float | None = None, lon: float | None = None
    ) -> None: ...

    async def set_roster(self, roster: Sequence[RosterLine], *, actor: str) -> int: ...

    async def set_position(self, responder_id: str, lat: float, lon: float, *, actor: str) -> None: ...

    async def reply_offer(self, assignment_id: str, responder_id: str, accept: bool, *, reason: str = "") -> None: ...

    async def report_status(self, assignment_id: str, responder_id: str, status: str, note: str = "") -> None: ...

    # the registry and its readers
    async def put_elder(self, elder: Elder, *, actor: str, confirm_distinct: bool = False) -> bool: ...

    async def merge_elders(self, keep: str, other: str, *, actor: str) -> dict[str, object]: ...

    async def import_registry(
        self, texts: dict[str, str], *, actor: str, names: dict[str, str] | None = None
    ) -> dict[str, object]: ...

    async def put_device(self, device: Device, *, actor: str) -> bool: ...

    async def put_responder(self, responder: Responder, *, actor: str) -> bool: ...

    async def deactivate_elder(self, elder_id: str, reason: str, words: str, *, actor: str) -> None: ...

    async def reactivate_elder(self, elder_id: str, words: str, *, actor: str) -> None: ...

    async def unbind_device(self, device_id: str, *, actor: str, reason: str = "") -> None: ...

    async def test_device(self, device_id: str, *, actor: str) -> None: ...

    async def viewed(
        self,
        elder_id: str,
        *,
        actor: str,
        what: ReadWhat = "record",
        subject: str | None = None,
        why: str | None = None,
    ) -> None: ...

    async def read(
        self, what: str, count: int, *, actor: str, elder_ids: Sequence[str] = (), filter: str = ""
    ) -> None: ...

    async def account_created(
        self, username: str, role: str, *, actor: str, scopes: Sequence[str] = (), service: bool = False
    ) -> None: ...

    async def account_changed(self, username: str, change: AccountChange, *, actor: str, detail: str = "") -> None: ...

    async def login_failed(self, username: str, address: str, reason: LoginRefusal) -> None: ...

    # the service desk (dispatch.services)
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
    ) -> str: ...

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
    ) -> None: ...

    # follow-ups (dispatch.followups)
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
    ) -> str: ...

    async def end_plan(self, plan_id: str, *, actor: str, last_day: str | None = None, reason: str = "") -> None: ...

    async def settle_plan_task(self, task_id: str, *, outcome: str, actor: str, note: str = "") -> None: ...

    async def record_follow_up(
        self,
        follow_up_id: str,
        *,
        reached: bool,
        actor: str,
        satisfaction: int | None = None,
        complaint: str = "",
        note: str = "",
    ) -> None: ...

    async def settle_complaint(self, complaint_id: str, *, resolution: str, actor: str) -> None: ...

    # needs assessments (dispatch.assessment)
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
    ) -> dict[str, Any]: ...

    # care calls (dispatch.carecalls)
    async def record_care_call(
        self,
        elder_id: str,
        *,
        reached: bool,
        actor: str,
        wellbeing: str | None = None,
        note: str = "",
        drill: bool = False,
    ) -> None: ...

    async def settle_care_visit(self, visit_id: str, *, note: str, actor: str) -> None: ...
    # duty shifts and handovers (dispatch.duty)
    async def start_duty(self, scope: str, *, actor: str, kind: ShiftKind | None = None) -> str: ...

    async def log_duty(self, scope: str, text: str, *, actor: str, at: float | None = None) -> None: ...

    async def hand_over_duty(self, scope: str, words: str = "", *, actor: str, for_others: bool = False) -> None: ...

    async def take_over_duty(
        self, scope: str, words: str = "", *, actor: str, kind: ShiftKind | None = None
    ) -> str: ...
