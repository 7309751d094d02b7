"""Care calls (关怀电话): the regular calls to elders living alone, empty-nest elders and elders aged 80 and over.

What it owns
    Who is owed a care call and when (:func:`reasons`, :func:`every_days`, :func:`next_due`); each elder's
    calling record and the proposed home visits folded from the ``care_call.*`` entries (:class:`CareBook`,
    held by the projection); the desk's decisions (:class:`CareDesk`, run by the engine with its lock held);
    and the views: a day's list, one elder's line, the proposed visits.

Rules
    1. Who. An elder flagged ``living_alone`` (独居) or ``empty_nest`` (空巢) in the registry, or aged
       ``care_call_age`` (80) or more on the centre's local date (``timezone``; from ``birth_date``; none
       recorded: not by age). Flags and birth dates are read as they stand now: an elder whose flag is taken
       off leaves the list at once.
    2. How often. Every ``care_call_every_days_alone`` (2) days for living alone, ``..._empty_nest`` (7) for
       empty nest, ``..._aged`` (7) for age; when several apply, the shortest. Counted in local dates from the
       last *contact*: a reached care call, or a settled home visit (someone was at the door). Other calls
       (a follow-up, an alarm) are about a service or an emergency, not a chat about how the elder is, and do
       not move the schedule. Never reached: due from the first day on the list.
    3. A day's list: the elders of rule 1 in the reader's reach whose next call date is that day or earlier
       (overdue ones included), each with the last call's outcome; elders whose home visit is proposed are on
       the visits list instead.
    4. Attempts, as a table (:data:`TRANSITIONS`). Reached: the elder's wellbeing (well / unwell /
       needs_help, required) and a short note; the misses start again from zero. Not reached: the call is
       retried ``care_call_retry_minutes`` (60) later (``retry_at`` is written in the entry, so a change of
       the setting never moves a retry already promised); the ``care_call_attempts``-th (3) unanswered
       attempt in a row proposes a home visit (``care_call.visit_proposed``) instead of a retry, once.
       While the visit is open the elder takes no call; settling it (a note of what was found) is a contact.
    5. "Needs help" is a mark and a note on the call, shown on the list: it opens nothing by itself. The
       operator orders the service or opens the incident the words call for.
    6. Drills. A call made in a drill is journaled as drill and kept on its own record (the drill list), so
       an exercise never resets, retries or proposes a visit for a real elder.

Never
    Never read a clock (``now`` comes in), a registry or a database in the fold; never change a record except
    by an entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from dispatch.entries import CareCallMade, CareVisitProposed, CareVisitSettled, Wellbeing
from dispatch.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from dispatch.journal import Entry
from dispatch.triage import age_on

if TYPE_CHECKING:
    from dispatch.directory import Directory
    from dispatch.engine import Engine
    from dispatch.registry import Elder
    from dispatch.settings import Settings

ACTOR = "system:care_calls"
Reason = Literal["living_alone", "empty_nest", "aged"]
REASONS: tuple[Reason, ...] = ("living_alone", "empty_nest", "aged")
WELLBEING: tuple[Wellbeing, ...] = ("well", "unwell", "needs_help")
VisitFilter = Literal["open", "settled", "all"]


class CareState(StrEnum):
    SCHEDULED = "scheduled"  # calls come by the date (rule 2)
    RETRYING = "retrying"  # unanswered, tried again at ``retry_at``
    VISIT = "visit"  # a home visit is proposed and not yet settled


class CareEvent(StrEnum):
    REACHED = "reached"
    MISSED = "missed"
    GIVE_UP = "give_up"
    SETTLE = "settle"


_S, _E = CareState, CareEvent
#: rule 4: every legal move of an elder's calling record
TRANSITIONS: dict[tuple[CareState, CareEvent], CareState] = {
    (_S.SCHEDULED, _E.REACHED): _S.SCHEDULED,
    (_S.SCHEDULED, _E.MISSED): _S.RETRYING,
    (_S.RETRYING, _E.MISSED): _S.RETRYING,
    (_S.RETRYING, _E.REACHED): _S.SCHEDULED,
    (_S.RETRYING, _E.GIVE_UP): _S.VISIT,
    (_S.VISIT, _E.SETTLE): _S.SCHEDULED,
}


def care_next(state: CareState, event: CareEvent) -> CareState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition("care_call", state.value, event.value) from None


# -- who and when (rules 1 and 2) ---------------------------------------------------------------------


def local_date(ts: float, tz: str) -> date:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).date()


def day_of(day: str, now: float, tz: str) -> date:
    """The local date a list is for: ``today`` or ``YYYY-MM-DD``."""
    if day == "today":
        return local_date(now, tz)
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise InvalidInput(f"{day} is not a date (YYYY-MM-DD or today)", field="date") from None


def reasons(elder: Elder, day: date, age: int) -> tuple[Reason, ...]:
    """Why this elder is called (rule 1), on this local date; empty: not called."""
    why: list[Reason] = [flag for flag in ("living_alone", "empty_nest") if flag in elder.risk_flags]
    if elder.birth_date is not None and age_on(elder.birth_date, day) >= age:
        why.append("aged")
    return tuple(why)


def every_days(why: Iterable[Reason], settings: Settings) -> int:
    """Rule 2: the shortest interval of the reasons that apply."""
    intervals = {
        "living_alone": settings.care_call_every_days_alone,
        "empty_nest": settings.care_call_every_days_empty_nest,
        "aged": settings.care_call_every_days_aged,
    }
    return min(intervals[reason] for reason in why)


def next_due(record: CareRecord | None, every: int, tz: str, today: date) -> date:
    """The date of the next call: ``every`` local days after the last contact; never contacted, today."""
    if record is None or record.last_contact_at is None:
        return today
    return local_date(record.last_contact_at, tz) + timedelta(days=every)


# -- the records (folded by the projection) -----------------------------------------------------------


@dataclass(slots=True)
class CareRecord:
    """One elder's care calls (a drill's on a record of its own, rule 6)."""

    elder_id: str
    drill: bool
    state: CareState = CareState.SCHEDULED
    misses: int = 0  # unanswered attempts in a row
    retry_at: float | None = None
    last_contact_at: float | None = None  # a reached call or a settled visit (rule 2)
    last_call_at: float | None = None
    last_reached: bool | None = None
    last_wellbeing: Wellbeing | None = None
    last_note: str = ""
    last_by: str | None = None
    visit_id: str | None = None  # the open proposed visit


@dataclass(slots=True)
class CareVisit:
    visit_id: str
    elder_id: str
    attempts: int
    proposed_at: float
    drill: bool
    settled_at: float | None = None
    settled_by: str | None = None
    note: str = ""

    @property
    def open(self) -> bool:
        return self.settled_at is None


@dataclass(slots=True)
class CareBook:
    """The care calls and proposed visits as the journal left them; the projection applies their entries here."""

    records: dict[tuple[str, bool], CareRecord] = field(default_factory=dict)
    visits: dict[str, CareVisit] = field(default_factory=dict)

    def register(self, on: Callable[[type[Any], Callable[[Entry, Any], None]], None]) -> None:
        """Hand the projection a handler for each care-call entry (its ``_on``)."""
        on(CareCallMade, self.made)
        on(CareVisitProposed, self.proposed)
        on(CareVisitSettled, self.settled)

    def record(self, elder_id: str, drill: bool) -> CareRecord:
        key = (elder_id, drill)
        found = self.records.get(key)
        if found is None:
            found = self.records[key] = CareRecord(elder_id, drill)
        return found

    def made(self, entry: Entry, p: CareCallMade) -> None:
        record = self.record(p.elder_id, entry.drill)
        record.state = care_next(record.state, CareEvent.REACHED if p.reached else CareEvent.MISSED)
        record.misses = 0 if p.reached else record.misses + 1
        record.retry_at = p.retry_at
        if p.reached:
            record.last_contact_at = entry.ts
        record.last_call_at, record.last_reached, record.last_by = entry.ts, p.reached, entry.actor
        record.last_wellbeing, record.last_note = p.wellbeing, p.note

    def proposed(self, entry: Entry, p: CareVisitProposed) -> None:
        record = self.record(p.elder_id, entry.drill)
        record.state = care_next(record.state, CareEvent.GIVE_UP)
        record.retry_at, record.visit_id = None, p.visit_id
        self.visits[p.visit_id] = CareVisit(p.visit_id, p.elder_id, p.attempts, entry.ts, entry.drill)

    def settled(self, entry: Entry, p: CareVisitSettled) -> None:
        visit = self.visits[p.visit_id]
        record = self.record(p.elder_id, entry.drill)
        record.state = care_next(record.state, CareEvent.SETTLE)
        record.misses, record.visit_id, record.last_contact_at = 0, None, entry.ts
        visit.settled_at, visit.settled_by, visit.note = entry.ts, entry.actor, p.note


# -- the desk (run by the engine, its lock held) ------------------------------------------------------


class CareDesk:
    """Records care calls, proposes home visits after repeated misses and settles them."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def book(self) -> CareBook:
        return self._engine.state.care_calls

    def record(
        self, elder_id: str, *, reached: bool, wellbeing: str | None, note: str, actor: str, drill: bool
    ) -> None:
        """One attempt (rule 4), checked first: an elder of rule 1, a complete answer, no visit open."""
        engine = self._engine
        settings, now = engine.settings, engine.clock.now()
        elder = engine.elder(elder_id)
        if not reasons(elder, local_date(now, settings.timezone), settings.care_call_age):
            raise InvalidInput(f"{elder_id} is not called (not living alone, empty nest or aged)",
                               field="elder_id", code="care_call_not_scheduled")  # fmt: skip
        mark = check_answer(reached, wellbeing)
        record = self.book.records.get((elder_id, drill))
        state = record.state if record is not None else CareState.SCHEDULED
        if state is CareState.VISIT:
            raise Conflict(f"a home visit to {elder_id} is proposed: settle it first", code="care_visit_open",
                           params={"elder": elder.name})  # fmt: skip
        care_next(state, CareEvent.REACHED if reached else CareEvent.MISSED)
        attempt = (record.misses if record is not None else 0) + 1
        give_up = not reached and attempt >= settings.care_call_attempts
        retry_at = None if reached or give_up else now + settings.care_call_retry_minutes * 60
        engine.emit(CareCallMade(elder_id, reached, attempt, mark, note.strip(), retry_at), actor=actor, drill=drill)
        if give_up:
            visit_id = f"CV-{engine.journal.head_seq + 1}"
            engine.emit(CareVisitProposed(visit_id, elder_id, attempt), actor=ACTOR, drill=drill)

    def settle(self, visit_id: str, *, note: str, actor: str) -> None:
        """Settle a proposed home visit with what was found; it counts as a contact (rule 2)."""
        visit = self.book.visits.get(visit_id)
        if visit is None:
            raise NotFound(f"no care visit {visit_id}", field="visit_id", code="unknown_care_visit")
        if not visit.open:
            raise Conflict(f"{visit_id} is settled", code="care_visit_settled")
        if not note.strip():
            raise InvalidInput("say what the visit found", field="note", code="note_required")
        self._engine.emit(CareVisitSettled(visit_id, visit.elder_id, note.strip()), actor=actor, drill=visit.drill)


def check_answer(reached: bool, wellbeing: str | None) -> Wellbeing | None:
    """Reached: a wellbeing mark is required. Not reached: nobody answered, so no mark."""
    if reached:
        for known in WELLBEING:
            if wellbeing == known:
                return known
        raise InvalidInput("a reached elder's wellbeing (well, unwell or needs_help) is needed", field="wellbeing",
                           code="wellbeing_required")  # fmt: skip
    if wellbeing is not None:
        raise InvalidInput("nobody answered: no wellbeing mark", field="reached", code="care_call_not_reached")
    return None


# -- views --------------------------------------------------------------------------------------------


def line_view(
    elder: Elder, why: tuple[Reason, ...], record: CareRecord | None, due: date, every: int, now: float
) -> dict[str, Any]:
    """One elder's line on a day's list."""
    retry_at = record.retry_at if record is not None else None
    return {
        "elder_id": elder.elder_id,
        "elder_name": elder.name,
        "phone": elder.phone,
        "address": elder.address,
        "community": elder.community,
        "reasons": list(why),
        "every_days": every,
        "next_due": due.isoformat(),
        "state": record.state.value if record is not None else CareState.SCHEDULED.value,
        "attempts": record.misses if record is not None else 0,
        "retry_at": retry_at,
        "ready": retry_at is None or retry_at <= now,
        "last_call_at": record.last_call_at if record is not None else None,
        "last_reached": record.last_reached if record is not None else None,
        "last_wellbeing": record.last_wellbeing if record is not None else None,
        "last_note": record.last_note if record is not None else "",
        "last_by": record.last_by if record is not None else None,
        "last_contact_at": record.last_contact_at if record is not None else None,
        "visit_id": record.visit_id if record is not None else None,
    }


def elder_line(
    book: CareBook, elder: Elder, settings: Settings, *, day: date, now: float, drill: bool
) -> dict[str, Any] | None:
    """One elder's line as of a local day (None: not an elder of rule 1 that day)."""
    why = reasons(elder, day, settings.care_call_age)
    if not why:
        return None
    record = book.records.get((elder.elder_id, drill))
    every = every_days(why, settings)
    return line_view(elder, why, record, next_due(record, every, settings.timezone, day), every, now)


def day_list(
    book: CareBook,
    directory: Directory,
    settings: Settings,
    visible: Callable[[str], bool],
    *,
    day: date,
    now: float,
    drill: bool,
    limit: int,
) -> dict[str, Any]:
    """Rule 3: the calls due by ``day`` -- retries whose time came first, then the others that can be called now
    (the most overdue first), then retries still waiting, by their time -- and the elders reached that day; at
    most ``limit`` of each, with how many there are in all (``due_total``, ``done_total``)."""
    tz = settings.timezone
    due: list[dict[str, Any]] = []
    done: list[dict[str, Any]] = []
    for elder in directory.elders.values():
        if not elder.active:
            continue  # left the centre's care: nobody to call (dispatch.keeping rule 2)
        line = elder_line(book, elder, settings, day=day, now=now, drill=drill)
        if line is None or not visible(elder.elder_id):
            continue
        if line["last_reached"] and local_date(line["last_call_at"], tz) == day:
            done.append(line)
        if line["state"] == CareState.RETRYING:
            if local_date(line["retry_at"], tz) <= day:
                due.append(line)
        elif line["state"] == CareState.SCHEDULED and date.fromisoformat(line["next_due"]) <= day:
            due.append(line)
    due.sort(key=lambda c: (not c["ready"], c["retry_at"] is None, c["retry_at"] or 0.0, c["next_due"],
                            c["elder_name"], c["elder_id"]))  # fmt: skip
    done.sort(key=lambda c: c["last_call_at"], reverse=True)
    return {"calls": due[:limit], "done": done[:limit], "due_total": len(due), "done_total": len(done)}


def visit_view(visit: CareVisit, directory: Directory) -> dict[str, Any]:
    elder = directory.elders.get(visit.elder_id)
    return {
        "visit_id": visit.visit_id,
        "elder_id": visit.elder_id,
        "elder_name": elder.name if elder else None,
        "phone": elder.phone if elder else None,
        "address": elder.address if elder else None,
        "community": elder.community if elder else None,
        "attempts": visit.attempts,
        "proposed_at": visit.proposed_at,
        "open": visit.open,
        "settled_at": visit.settled_at,
        "settled_by": visit.settled_by,
        "note": visit.note,
        "drill": visit.drill,
    }


def visits(
    book: CareBook, visible: Callable[[str], bool], directory: Directory, *, state: VisitFilter, limit: int
) -> list[dict[str, Any]]:
    """Proposed home visits in reach, oldest first (the longest waiting on top)."""
    chosen = [
        v for v in book.visits.values() if (state == "all" or v.open == (state == "open")) and visible(v.elder_id)
    ]
    return [visit_view(v, directory) for v in chosen[:limit]]


def one_visit(book: CareBook, visit_id: str, visible: Callable[[str], bool]) -> CareVisit:
    """A visit in reach; otherwise as if it did not exist."""
    visit = book.visits.get(visit_id)
    if visit is None or not visible(visit.elder_id):
        raise NotFound(f"no care visit {visit_id}", field="visit_id", code="unknown_care_visit")
    return visit


def entry_elder(fact: object) -> str | None:
    """The elder a care-call entry is about (it lies in their community); None for any other entry."""
    if isinstance(fact, CareCallMade | CareVisitProposed | CareVisitSettled):
        return fact.elder_id
    return None
