"""Follow-ups (回访): the return call owed after every closed incident and every delivered service.

What it owns
    Which closed incidents and delivered services are followed up and when the call falls due; the follow-up
    and complaint records folded from the ``follow_up.*`` entries (:class:`FollowUpBook`, held by the
    projection); the desk's decisions (:class:`FollowUpDesk`, run by the engine with its lock held); and the
    views: the follow-up list, one follow-up, the supervisors' complaints and the caregivers' evaluation.

Rules
    1. Which. Every closed person incident of a registered elder is followed up, however it ended: resolved,
       handed to 120/110/119, or cancelled as a false alarm -- a pendant pressed by mistake still deserves a
       call, to check the elder understands the device, wears it, and was not too shy to say what happened.
       A technical incident (low battery, mains loss, a missed check-in) is about a device, not someone's care:
       none; an incident of a caller nobody knows has nobody to call: none. Every delivered service order is
       followed up. One follow-up per incident or order, whatever is replayed or retried.
    2. When. On the centre's local date of the closing (or the check-out) plus ``follow_up_after_days``, at
       ``follow_up_hour`` o'clock in the centre's time zone (``timezone``), stored as UTC seconds.
    3. Attempts, as a table (:data:`TRANSITIONS`). Reached: done, with the elder's satisfaction (1-5, required)
       and any complaint. Not reached: the follow-up stays open, its attempts counted; the
       ``follow_up_attempts``-th unanswered attempt closes it as unreachable and proposes a home visit
       (``follow_up.unreachable``). A done or unreachable follow-up takes no more attempts.
    4. A complaint (any words in it) is a supervisor's task: ``follow_up.complaint``, in the elder's community,
       shown to supervisors (content ``audit``: operators record it, supervisors read the list). A supervisor
       settles it once, saying what was done (``follow_up.complaint_settled``); open ones come first.
    5. A caregiver's evaluation is read from the follow-ups of their work: the responders named at creation
       (the service order's caregiver; the incident's responders whose job reached "done"), the mean and count
       of the satisfactions given. Drills are kept out of it.
    6. Drill marks carry over from the incident or the order to its follow-up and complaint.

Never
    Never read a clock (``now`` comes in), a registry or a database in the fold; never change a follow-up except
    by an entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from dispatch.entries import (
    ComplaintRaised,
    ComplaintSettled,
    FollowUpCreated,
    FollowUpRecorded,
    FollowUpUnreachable,
)
from dispatch.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from dispatch.journal import Entry
from dispatch.machines import AssignmentState
from dispatch.triage import rule

if TYPE_CHECKING:
    from dispatch.directory import Directory
    from dispatch.engine import Engine
    from dispatch.state import Incident, ServiceOrder

ACTOR = "system:follow_ups"
StateFilter = Literal["open", "done", "all"]


class FollowUpState(StrEnum):
    OPEN = "open"
    DONE = "done"
    UNREACHABLE = "unreachable"


class FollowUpEvent(StrEnum):
    REACHED = "reached"
    NOT_REACHED = "not_reached"
    GIVE_UP = "give_up"


_S, _E = FollowUpState, FollowUpEvent
#: rule 3: every legal move of a follow-up
TRANSITIONS: dict[tuple[FollowUpState, FollowUpEvent], FollowUpState] = {
    (_S.OPEN, _E.REACHED): _S.DONE,
    (_S.OPEN, _E.NOT_REACHED): _S.OPEN,
    (_S.OPEN, _E.GIVE_UP): _S.UNREACHABLE,
}


def follow_up_next(state: FollowUpState, event: FollowUpEvent) -> FollowUpState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition("follow_up", state.value, event.value) from None


# -- when (rule 2) ------------------------------------------------------------------------------------


def due_at(ts: float, *, after_days: int, hour: int, tz: str) -> float:
    """The follow-up of something that ended at ``ts``: ``after_days`` local days later at ``hour`` o'clock."""
    zone = ZoneInfo(tz)
    day = datetime.fromtimestamp(ts, zone).date() + timedelta(days=after_days)
    return datetime.combine(day, time(hour), zone).timestamp()


def end_of_day(day: str, now: float, tz: str) -> float:
    """The first instant after the local ``day`` (``YYYY-MM-DD`` or ``today``): what is due by then is due that
    day (overdue ones included)."""
    zone = ZoneInfo(tz)
    if day == "today":
        local = datetime.fromtimestamp(now, zone).date()
    else:
        try:
            local = date.fromisoformat(day)
        except ValueError:
            raise InvalidInput(f"{day} is not a date (YYYY-MM-DD or today)", field="due") from None
    return datetime.combine(local + timedelta(days=1), time(0), zone).timestamp()


# -- the records (folded by the projection) -----------------------------------------------------------


@dataclass(slots=True)
class FollowUp:
    follow_up_id: str
    kind: str
    subject_id: str
    elder_id: str
    due: float
    responders: tuple[str, ...]
    drill: bool
    created_at: float
    state: FollowUpState = FollowUpState.OPEN
    attempts: int = 0  # unanswered attempts
    satisfaction: int | None = None
    complaint: str = ""
    complaint_id: str | None = None
    note: str = ""
    recorded_at: float | None = None
    recorded_by: str | None = None
    visit_proposed: bool = False

    @property
    def open(self) -> bool:
        return self.state is FollowUpState.OPEN


@dataclass(slots=True)
class Complaint:
    complaint_id: str
    follow_up_id: str
    elder_id: str
    text: str
    raised_at: float
    raised_by: str
    drill: bool
    resolution: str | None = None  # what the supervisor did about it; None while it is open
    settled_at: float | None = None
    settled_by: str | None = None


@dataclass(slots=True)
class FollowUpBook:
    """The follow-ups and complaints as the journal left them; the projection applies their entries here."""

    follow_ups: dict[str, FollowUp] = field(default_factory=dict)
    complaints: dict[str, Complaint] = field(default_factory=dict)
    #: the follow-up of each incident or order (rule 1: one each)
    by_subject: dict[str, str] = field(default_factory=dict)

    def register(self, on: Callable[[type[Any], Callable[[Entry, Any], None]], None]) -> None:
        """Hand the projection a handler for each follow-up entry (its ``_on``)."""
        on(FollowUpCreated, self.created)
        on(FollowUpRecorded, self.recorded)
        on(FollowUpUnreachable, self.unreachable)
        on(ComplaintRaised, self.complaint)
        on(ComplaintSettled, self.settled)

    def created(self, entry: Entry, p: FollowUpCreated) -> None:
        self.follow_ups[p.follow_up_id] = FollowUp(
            p.follow_up_id, p.kind, p.subject_id, p.elder_id, p.due, p.responders, entry.drill, entry.ts
        )
        self.by_subject[p.subject_id] = p.follow_up_id

    def recorded(self, entry: Entry, p: FollowUpRecorded) -> None:
        follow_up = self.follow_ups[p.follow_up_id]
        event = FollowUpEvent.REACHED if p.reached else FollowUpEvent.NOT_REACHED
        follow_up.state = follow_up_next(follow_up.state, event)
        if not p.reached:
            follow_up.attempts += 1
        follow_up.satisfaction, follow_up.complaint = p.satisfaction, p.complaint
        follow_up.note = p.note or follow_up.note
        follow_up.recorded_at, follow_up.recorded_by = entry.ts, entry.actor

    def unreachable(self, entry: Entry, p: FollowUpUnreachable) -> None:
        follow_up = self.follow_ups[p.follow_up_id]
        follow_up.state = follow_up_next(follow_up.state, FollowUpEvent.GIVE_UP)
        follow_up.visit_proposed = True

    def complaint(self, entry: Entry, p: ComplaintRaised) -> None:
        self.complaints[p.complaint_id] = Complaint(
            p.complaint_id, p.follow_up_id, p.elder_id, p.text, entry.ts, entry.actor, entry.drill
        )
        self.follow_ups[p.follow_up_id].complaint_id = p.complaint_id

    def settled(self, entry: Entry, p: ComplaintSettled) -> None:
        complaint = self.complaints[p.complaint_id]
        complaint.resolution, complaint.settled_at, complaint.settled_by = p.resolution, entry.ts, entry.actor


# -- the desk (run by the engine, its lock held) ------------------------------------------------------


class FollowUpDesk:
    """Creates follow-ups when incidents close and services are delivered, and records the calls."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def book(self) -> FollowUpBook:
        return self._engine.state.follow_ups

    def incident_closed(self, incident: Incident) -> None:
        """Rule 1: a closed person incident of a registered elder, however it ended."""
        if incident.elder_id is None or incident.technical or rule(incident.alarm_type).technical:
            return
        done = [
            a.responder_id
            for a in (self._engine.state.assignments[i] for i in incident.assignments)
            if a.state is AssignmentState.DONE
        ]
        self._create("incident", incident.incident_id, incident.elder_id, tuple(dict.fromkeys(done)), incident.drill)

    def service_delivered(self, order: ServiceOrder) -> None:
        responders = (order.responder_id,) if order.responder_id else ()
        self._create("service", order.order_id, order.elder_id, responders, order.drill)

    def _create(self, kind: Literal["incident", "service"], subject: str, elder: str, who: tuple[str, ...],
                drill: bool) -> None:  # fmt: skip
        if subject in self.book.by_subject:
            return
        engine = self._engine
        settings = engine.settings
        due = due_at(engine.clock.now(), after_days=settings.follow_up_after_days, hour=settings.follow_up_hour,
                     tz=settings.timezone)  # fmt: skip
        follow_up_id = f"FU-{engine.journal.head_seq + 1}"
        engine.emit(FollowUpCreated(follow_up_id, kind, subject, elder, due, who), actor=ACTOR, drill=drill)

    def record(
        self, follow_up_id: str, *, reached: bool, satisfaction: int | None, complaint: str, note: str, actor: str
    ) -> None:
        """One attempt of the call (rule 3); a complaint raises a supervisor's task (rule 4). Checked first."""
        follow_up = self.book.follow_ups.get(follow_up_id)
        if follow_up is None:
            raise NotFound(f"no follow-up {follow_up_id}", field="follow_up_id", code="unknown_follow_up")
        if not follow_up.open:
            raise Conflict(f"{follow_up_id} is {follow_up.state.value}", code="follow_up_done",
                           params={"state": follow_up.state.value})  # fmt: skip
        check_answer(reached, satisfaction, complaint)
        engine, drill, elder = self._engine, follow_up.drill, follow_up.elder_id
        engine.emit(FollowUpRecorded(follow_up_id, elder, reached, satisfaction, complaint.strip(), note.strip()),
                    actor=actor, drill=drill)  # fmt: skip
        if reached and complaint.strip():
            complaint_id = f"CP-{engine.journal.head_seq + 1}"
            engine.emit(ComplaintRaised(complaint_id, follow_up_id, elder, complaint.strip()), actor=actor, drill=drill)
        if not reached and follow_up.attempts >= engine.settings.follow_up_attempts:
            engine.emit(FollowUpUnreachable(follow_up_id, elder, follow_up.attempts), actor=ACTOR, drill=drill)

    def settle_complaint(self, complaint_id: str, *, resolution: str, actor: str) -> None:
        """Rule 4: a supervisor's word on what was done about a complaint, once. Checked first."""
        complaint = self.book.complaints.get(complaint_id)
        if complaint is None:
            raise NotFound(f"no complaint {complaint_id}", field="complaint_id", code="unknown_complaint")
        if complaint.resolution is not None:
            raise Conflict(f"{complaint_id} is settled", code="complaint_settled")
        if not resolution.strip():
            raise InvalidInput("settling a complaint needs what was done", field="resolution",
                               code="resolution_required")  # fmt: skip
        self._engine.emit(ComplaintSettled(complaint_id, complaint.elder_id, resolution.strip()), actor=actor,
                          drill=complaint.drill)  # fmt: skip


def check_answer(reached: bool, satisfaction: int | None, complaint: str) -> None:
    """Reached: a satisfaction of 1 to 5. Not reached: nobody answered, so neither satisfaction nor complaint."""
    if reached:
        if satisfaction is None:
            raise InvalidInput("a reached elder's satisfaction (1-5) is needed", field="satisfaction",
                               code="satisfaction_required")  # fmt: skip
        if not 1 <= satisfaction <= 5:
            raise InvalidInput("satisfaction is 1 to 5", field="satisfaction", code="satisfaction_required")
    elif satisfaction is not None or complaint.strip():
        raise InvalidInput("nobody answered: no satisfaction or complaint", field="reached",
                           code="follow_up_not_reached")  # fmt: skip


# -- views --------------------------------------------------------------------------------------------


def follow_up_view(follow_up: FollowUp, directory: Directory) -> dict[str, Any]:
    elder = directory.elders.get(follow_up.elder_id)
    return {
        "follow_up_id": follow_up.follow_up_id,
        "kind": follow_up.kind,
        "subject_id": follow_up.subject_id,
        "elder_id": follow_up.elder_id,
        "elder_name": elder.name if elder else None,
        "phone": elder.phone if elder else None,
        "community": elder.community if elder else None,
        "due": follow_up.due,
        "state": follow_up.state.value,
        "open": follow_up.open,
        "attempts": follow_up.attempts,
        "satisfaction": follow_up.satisfaction,
        "complaint": follow_up.complaint,
        "complaint_id": follow_up.complaint_id,
        "note": follow_up.note,
        "recorded_at": follow_up.recorded_at,
        "recorded_by": follow_up.recorded_by,
        "visit_proposed": follow_up.visit_proposed,
        "responders": list(follow_up.responders),
        "drill": follow_up.drill,
        "created_at": follow_up.created_at,
    }


def complaint_view(complaint: Complaint, follow_up: FollowUp, directory: Directory) -> dict[str, Any]:
    elder = directory.elders.get(complaint.elder_id)
    names = [directory.responders[r].name if r in directory.responders else r for r in follow_up.responders]
    return {
        "complaint_id": complaint.complaint_id,
        "follow_up_id": complaint.follow_up_id,
        "kind": follow_up.kind,
        "subject_id": follow_up.subject_id,
        "elder_id": complaint.elder_id,
        "elder_name": elder.name if elder else None,
        "community": elder.community if elder else None,
        "text": complaint.text,
        "satisfaction": follow_up.satisfaction,
        "responders": list(follow_up.responders),
        "responder_names": names,
        "raised_at": complaint.raised_at,
        "raised_by": complaint.raised_by,
        "drill": complaint.drill,
        "open": complaint.resolution is None,
        "resolution": complaint.resolution,
        "settled_at": complaint.settled_at,
        "settled_by": complaint.settled_by,
    }


def select(
    book: FollowUpBook, visible: Callable[[str], bool], *, due_before: float | None, state: StateFilter, limit: int
) -> list[FollowUp]:
    """Follow-ups seen by ``visible`` (a predicate on the elder id), soonest due first."""
    chosen = [
        f
        for f in book.follow_ups.values()
        if (due_before is None or f.due < due_before)
        and (state == "all" or (f.open if state == "open" else not f.open))
        and visible(f.elder_id)
    ]
    chosen.sort(key=lambda f: f.due)  # stable: created first among those due at once
    return chosen[:limit]


def evaluations(book: FollowUpBook, visible: Callable[[str], bool], directory: Directory) -> list[dict[str, Any]]:
    """Rule 5: each responder's mean satisfaction and how many answers it is from, best first."""
    scores: dict[str, list[int]] = {}
    for f in book.follow_ups.values():
        if f.satisfaction is None or f.drill or not visible(f.elder_id):
            continue
        for responder_id in f.responders:
            scores.setdefault(responder_id, []).append(f.satisfaction)
    ranked = sorted(scores.items(), key=lambda kv: (-sum(kv[1]) / len(kv[1]), -len(kv[1]), kv[0]))
    rows = []
    for responder_id, given in ranked:
        profile = directory.responders.get(responder_id)
        rows.append({
            "responder_id": responder_id,
            "name": profile.name if profile else responder_id,
            "mean": round(sum(given) / len(given), 2),
            "count": len(given),
        })  # fmt: skip
    return rows


def entry_place(fact: object) -> tuple[str, Literal["work", "audit"]] | None:
    """Where a follow-up entry lies (its elder, whose community it is) and what it holds: a complaint is the
    supervisors' (rule 4), the rest ordinary work. None for any other entry."""
    if isinstance(fact, ComplaintRaised | ComplaintSettled):
        return fact.elder_id, "audit"
    if isinstance(fact, FollowUpCreated | FollowUpRecorded | FollowUpUnreachable):
        return fact.elder_id, "work"
    return None


def one(book: FollowUpBook, follow_up_id: str, visible: Callable[[str], bool]) -> FollowUp:
    """A follow-up in reach; otherwise as if it did not exist."""
    follow_up = book.follow_ups.get(follow_up_id)
    if follow_up is None or not visible(follow_up.elder_id):
        raise NotFound(f"no follow-up {follow_up_id}", field="follow_up_id", code="unknown_follow_up")
    return follow_up


def complaints(book: FollowUpBook, visible: Callable[[str], bool], directory: Directory, limit: int) -> list[
        dict[str, Any]]:  # fmt: skip
    """The complaints in reach: the open ones first, newest first within each."""
    newest = [c for c in reversed(book.complaints.values()) if visible(c.elder_id)]
    chosen = sorted(newest, key=lambda c: c.resolution is not None)[:limit]  # stable: newest first kept
    return [complaint_view(c, book.follow_ups[c.follow_up_id], directory) for c in chosen]
