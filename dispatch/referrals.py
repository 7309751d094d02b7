"""Clinic referrals: the green channel (绿色通道) as a real target of dispatch.

What it owns
    The referral of an incident's patient to a clinic with a green channel: the operator's command that makes
    one, the clinic's answers (accept, decline, the patient arrived, the outcome), its expiry, and the fold of
    the ``referral.*`` entries (:class:`ReferralBook`, held by the projection). The table of its states is
    :data:`dispatch.machines.REFERRAL_TRANSITIONS`. It also builds the two views of a referral: the operator's
    (on the incident) and the clinic's (what a clinic's desk needs, and no more).

Rules
    1. Who. An operator refers an open person incident (not a technical condition) to a clinic of the registry
       that has a green channel and is open now (its hours, in the centre's time zone): the one the matcher
       proposed, or any other. A closed clinic, one without a green channel, a closed incident are refused and
       nothing is written.
    2. Beside, not instead. A referral changes neither the incident's state nor its assignments: the caregiver
       at the door stays on the job (they may be the one who takes the elder to the clinic). An incident holds
       at most one open referral (referred, accepted or arrived); a declined, expired or cancelled one leaves
       room for the next clinic.
    3. Timeout. The clinic answers within ``referral_timeout_s`` (180 s) or the referral expires (the deadline
       is in ``referral.made``, so a restart re-arms it and a change of the setting never moves a promise).
       An expired or declined referral is shown to the operators, who refer elsewhere or hand over to 120.
    4. The clinic acts only on its own referrals (any other is as if it did not exist). It sees, before
       accepting, what it needs to decide: the alarm, the urgency, the age, how far, the operator's note; after
       accepting, also the name and the medical notes (what the doctor at the green channel must know). Never
       the address, the door code, the phones or the contacts: the patient comes to them, the operator is on
       the line. Every list that shows a name and medical notes is a read on record (``elder.viewed``).
    5. A false alarm (the incident cancelled) cancels a referral still referred or accepted; resolving or closing
       the incident does not: the patient may be on the way, and the clinic records the arrival and the outcome.

Never
    Never read a clock in the fold; never change a referral except by an entry; never show a clinic another
    clinic's referral.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast, get_args
from zoneinfo import ZoneInfo

from dispatch.entries import (
    Fact,
    ReferralAccepted,
    ReferralArrived,
    ReferralCancelled,
    ReferralConcluded,
    ReferralDeclined,
    ReferralExpired,
    ReferralMade,
    ReferralOutcome,
)
from dispatch.errors import Conflict, InvalidInput, NotFound
from dispatch.journal import Entry
from dispatch.machines import (
    OPEN_REFERRAL_STATES,
    REFERRAL_TRANSITIONS,
    ReferralEvent,
    ReferralState,
    referral_next,
)
from dispatch.matching import CLINIC_TRAVEL, eta_s, geodesic_m
from dispatch.registry import open_at
from dispatch.timers import Timers
from dispatch.triage import age_on, rule

if TYPE_CHECKING:
    from dispatch.directory import Directory
    from dispatch.engine import Engine
    from dispatch.registry import Responder
    from dispatch.state import Incident

ACTOR = "system"
OUTCOMES: tuple[ReferralOutcome, ...] = get_args(ReferralOutcome)
#: what a clinic may do with a referral sent to it (the operator's only move is cancel)
CLINIC_ACTIONS = {
    "accept": ReferralEvent.ACCEPT,
    "decline": ReferralEvent.DECLINE,
    "arrived": ReferralEvent.ARRIVE,
    "outcome": ReferralEvent.OUTCOME,
}


@dataclass(slots=True)
class Referral:
    referral_id: str
    incident_id: str
    clinic_id: str
    state: ReferralState
    referred_at: float
    referred_by: str
    deadline: float
    note: str
    proposed: bool
    drill: bool
    updated_at: float
    answered_at: float | None = None
    arrived_at: float | None = None
    concluded_at: float | None = None
    outcome: ReferralOutcome | None = None
    words: str = ""  # the clinic's last words (accepting, declining, at arrival, with the outcome) or the cancel reason

    @property
    def open(self) -> bool:
        return self.state in OPEN_REFERRAL_STATES


@dataclass(slots=True)
class ReferralBook:
    """The referrals as the journal left them; the projection applies their entries here and arms the expiry."""

    timers: Timers
    referrals: dict[str, Referral] = field(default_factory=dict)
    by_incident: dict[str, list[str]] = field(default_factory=dict)
    by_clinic: dict[str, list[str]] = field(default_factory=dict)

    def register(self, on: Callable[[type[Any], Callable[[Entry, Any], None]], None]) -> None:
        on(ReferralMade, self.made)
        on(ReferralAccepted, self._move(ReferralEvent.ACCEPT))
        on(ReferralDeclined, self._move(ReferralEvent.DECLINE))
        on(ReferralExpired, self._move(ReferralEvent.EXPIRE))
        on(ReferralArrived, self._move(ReferralEvent.ARRIVE))
        on(ReferralConcluded, self._move(ReferralEvent.OUTCOME))
        on(ReferralCancelled, self._move(ReferralEvent.CANCEL))

    def made(self, entry: Entry, p: ReferralMade) -> None:
        referral = Referral(
            p.referral_id, entry.incident_id or "", p.clinic_id, ReferralState.REFERRED, entry.ts, entry.actor,
            p.deadline, p.note, p.proposed, entry.drill, entry.ts,
        )  # fmt: skip
        self.referrals[p.referral_id] = referral
        self.by_incident.setdefault(referral.incident_id, []).append(p.referral_id)
        self.by_clinic.setdefault(p.clinic_id, []).append(p.referral_id)
        self.timers.set(("referral", p.referral_id), p.deadline)

    def _move(self, event: ReferralEvent) -> Callable[[Entry, Any], None]:
        def handle(entry: Entry, p: Any) -> None:
            referral = self.referrals[p.referral_id]
            referral.state = referral_next(referral.state, event)
            referral.updated_at = entry.ts
            if event is not ReferralEvent.EXPIRE:
                referral.words = getattr(p, "note", "") or getattr(p, "reason", "") or referral.words
            if event in (ReferralEvent.ACCEPT, ReferralEvent.DECLINE):
                referral.answered_at = entry.ts
            if referral.state is not ReferralState.REFERRED:
                self.timers.cancel(("referral", referral.referral_id))
            if event is ReferralEvent.ARRIVE:
                referral.arrived_at = entry.ts
            if event is ReferralEvent.OUTCOME:
                referral.concluded_at, referral.outcome = entry.ts, p.outcome

        return handle

    def of_incident(self, incident_id: str) -> list[Referral]:
        return [self.referrals[r] for r in self.by_incident.get(incident_id, ())]

    def open_of(self, incident_id: str) -> Referral | None:
        return next((r for r in self.of_incident(incident_id) if r.open), None)


# -- the desk (run by the engine, its lock held) ------------------------------------------------------


class ReferralDesk:
    """Makes referrals, takes the clinics' answers, expires the unanswered ones."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def book(self) -> ReferralBook:
        return self._engine.state.referrals

    def refer(self, incident: Incident, clinic_id: str, note: str, actor: str) -> str:
        """Rule 1 and 2, checked first; returns the new referral's id."""
        engine = self._engine
        if not incident.open:
            raise Conflict(f"{incident.incident_id} is {incident.state.value}", code="incident_closed",
                           params={"incident": incident.incident_id, "state": incident.state.value})  # fmt: skip
        if incident.technical or rule(incident.alarm_type).technical:
            raise Conflict(f"{incident.incident_id} is a technical condition, nobody to refer",
                           code="referral_technical", params={"incident": incident.incident_id})  # fmt: skip
        clinic = self.clinic(clinic_id)
        if not clinic.green_channel:
            raise Conflict(f"{clinic_id} has no green channel", code="clinic_no_green_channel",
                           params={"clinic": clinic.name})  # fmt: skip
        local = datetime.fromtimestamp(engine.clock.now(), ZoneInfo(engine.settings.timezone))
        if not open_at(clinic.hours, local.hour * 60 + local.minute):
            raise Conflict(f"{clinic_id} is closed now ({clinic.hours})", code="clinic_closed",
                           params={"clinic": clinic.name, "hours": clinic.hours or ""})  # fmt: skip
        current = self.book.open_of(incident.incident_id)
        if current is not None:
            raise Conflict(f"{incident.incident_id} is {current.state.value} at {current.clinic_id}",
                           code="referral_open",
                           params={"clinic": self._name(current.clinic_id), "state": current.state.value})  # fmt: skip
        referral_id = f"RF-{engine.journal.head_seq + 1}"
        deadline = engine.clock.now() + engine.settings.referral_timeout_s
        proposed = incident.clinic is not None and incident.clinic.clinic_id == clinic_id
        engine.emit(ReferralMade(referral_id, clinic_id, deadline, note.strip(), proposed), actor=actor,
                    incident=incident)  # fmt: skip
        return referral_id

    def clinic(self, clinic_id: str) -> Responder:
        profile = self._engine.directory.responders.get(clinic_id)
        if profile is None or profile.kind != "clinic":
            raise NotFound(f"no clinic {clinic_id}", field="clinic_id", code="unknown_clinic")
        return profile

    def referral(self, referral_id: str, clinic_id: str | None = None) -> Referral:
        """The referral; a clinic asking (``clinic_id``) finds only its own (rule 4)."""
        referral = self.book.referrals.get(referral_id)
        if referral is None or (clinic_id is not None and referral.clinic_id != clinic_id):
            raise NotFound(f"no referral {referral_id}", field="referral_id", code="unknown_referral")
        return referral

    def act(
        self,
        referral_id: str,
        action: str,
        *,
        actor: str,
        clinic_id: str | None,
        note: str = "",
        outcome: str | None = None,
    ) -> None:
        """One move of a referral: the clinic's (``clinic_id``: accept, decline, arrived, outcome) or an
        operator's (``cancel``). Checked first."""
        if clinic_id is not None:
            event = CLINIC_ACTIONS.get(action)
        else:
            event = ReferralEvent.CANCEL if action == "cancel" else None
        if event is None:
            raise InvalidInput(f"no action {action} on a referral here", field="action", code="unknown_referral_action")
        referral = self.referral(referral_id, clinic_id)
        if (referral.state, event) not in REFERRAL_TRANSITIONS:
            raise Conflict(f"referral {referral_id} is {referral.state.value}", code="referral_closed",
                           params={"state": referral.state.value})  # fmt: skip
        if event is ReferralEvent.OUTCOME and outcome not in OUTCOMES:
            raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}", field="outcome",
                               code="referral_outcome")  # fmt: skip
        self._emit(referral, event, actor, note.strip(), outcome)

    def expire(self, referral_id: str) -> None:
        """The referral's deadline passed (a timer): expired, if the clinic did not answer meanwhile."""
        referral = self.book.referrals.get(referral_id)
        if referral is not None and referral.state is ReferralState.REFERRED:
            self._emit(referral, ReferralEvent.EXPIRE, ACTOR, "", None)

    def incident_cancelled(self, incident: Incident, actor: str) -> None:
        """Rule 5: a false alarm calls off what the clinic was told to expect."""
        for referral in self.book.of_incident(incident.incident_id):
            if (referral.state, ReferralEvent.CANCEL) in REFERRAL_TRANSITIONS:
                self._emit(referral, ReferralEvent.CANCEL, actor, "incident cancelled", None)

    def _emit(self, referral: Referral, event: ReferralEvent, actor: str, note: str, outcome: str | None) -> None:
        rid, cid = referral.referral_id, referral.clinic_id
        facts: dict[ReferralEvent, Callable[[], Fact]] = {
            ReferralEvent.ACCEPT: lambda: ReferralAccepted(rid, cid, note),
            ReferralEvent.DECLINE: lambda: ReferralDeclined(rid, cid, note),
            ReferralEvent.EXPIRE: lambda: ReferralExpired(rid, cid),
            ReferralEvent.ARRIVE: lambda: ReferralArrived(rid, cid, note),
            ReferralEvent.OUTCOME: lambda: ReferralConcluded(rid, cid, cast(ReferralOutcome, outcome), note),
            ReferralEvent.CANCEL: lambda: ReferralCancelled(rid, cid, note),
        }
        incident = self._engine.state.incidents[referral.incident_id]
        self._engine.emit(facts[event](), actor=actor, incident=incident)

    def _name(self, clinic_id: str) -> str:
        profile = self._engine.directory.responders.get(clinic_id)
        return profile.name if profile else clinic_id


# -- views --------------------------------------------------------------------------------------------


def referral_view(referral: Referral, directory: Directory) -> dict[str, Any]:
    """A referral as the operators see it on the incident."""
    clinic = directory.responders.get(referral.clinic_id)
    return {
        "referral_id": referral.referral_id,
        "incident_id": referral.incident_id,
        "clinic_id": referral.clinic_id,
        "clinic_name": clinic.name if clinic else referral.clinic_id,
        "clinic_phone": clinic.phone if clinic else None,
        "state": referral.state.value,
        "open": referral.open,
        "referred_at": referral.referred_at,
        "referred_by": referral.referred_by,
        "deadline": referral.deadline,
        "note": referral.note,
        "proposed": referral.proposed,
        "answered_at": referral.answered_at,
        "arrived_at": referral.arrived_at,
        "concluded_at": referral.concluded_at,
        "outcome": referral.outcome,
        "words": referral.words,
        "drill": referral.drill,
    }


def clinic_view(referral: Referral, incident: Incident, directory: Directory, tz: str) -> dict[str, Any]:
    """A referral as its clinic sees it (rule 4): before accepting, what it needs to decide; after, the name and
    the medical notes too. ``details`` says whether the elder's name and notes are in it (a read on record)."""
    elder = directory.elders.get(incident.elder_id) if incident.elder_id else None
    clinic = directory.responders.get(referral.clinic_id)
    # accepted at some point: a referral cancelled before its clinic answered shows no more than before (a cancelled
    # one with an answer was accepted, since a declined one cannot be cancelled)
    accepted = (ReferralState.ACCEPTED, ReferralState.ARRIVED, ReferralState.CONCLUDED)
    details = referral.state in accepted or (
        referral.state is ReferralState.CANCELLED and referral.answered_at is not None
    )
    age = None
    if elder is not None and elder.birth_date is not None:
        age = age_on(elder.birth_date, datetime.fromtimestamp(referral.referred_at, ZoneInfo(tz)).date())
    distance = eta = None
    if clinic is not None and incident.lat is not None and incident.lon is not None:
        distance = round(geodesic_m(incident.lat, incident.lon, clinic.lat, clinic.lon))
        eta = round(eta_s(distance, CLINIC_TRAVEL))
    return {
        "referral_id": referral.referral_id,
        "state": referral.state.value,
        "open": referral.open,
        "referred_at": referral.referred_at,
        "deadline": referral.deadline,
        "answered_at": referral.answered_at,
        "arrived_at": referral.arrived_at,
        "concluded_at": referral.concluded_at,
        "outcome": referral.outcome,
        "words": referral.words,
        "note": referral.note,
        "drill": referral.drill,
        "alarm_type": incident.alarm_type,
        "priority": incident.priority,
        "opened_at": incident.opened_at,
        "age": age,
        "distance_m": distance,
        "eta_s": eta,
        "details": details and elder is not None,
        "elder_name": elder.name if details and elder else None,
        "care_level": elder.care_level if details and elder else None,
        "medical_notes": elder.medical_notes if details and elder else None,
    }
