"""Night duty and handover (值班与交接班): who is on duty for a part of the network, the log of their shift, and
the handover the next operator acknowledges.

What it owns
    The shifts folded from the ``duty.*`` entries (:class:`DutyBook`, held by the projection); the desk's
    decisions (:class:`DutyDesk`, run by the engine with its lock held); the summary of a scope's desk (open
    incidents, open service orders, follow-ups due, the span's alarms and calls: :func:`summarise`); and the
    views of a shift.

Rules
    1. A shift belongs to a scope: ``*`` (the whole centre) or a district, street or community path, the parts
       of the network operators are given (dispatch.scopes). One shift is open per scope at a time; a street's
       shift and its district's are different scopes and may run side by side.
    2. Its life is a table (:data:`TRANSITIONS`): on duty -> handed over -> taken over. Log lines are written
       only while on duty. A scope whose last shift waits for its acknowledgment starts no new shift: the next
       operator takes that one over, which acknowledges it and starts theirs (``duty.taken_over`` then
       ``duty.started``, one transaction). Nobody coming is allowed: the handover stays visible, unacknowledged.
    3. The kind (day or night) is the operator's choice, else read from the local hour of the start: from
       ``duty_day_hour`` until ``duty_night_hour`` in ``timezone`` is day, the rest night.
    4. The operator on duty hands over; a supervisor may hand over for them (someone went home without doing
       so), and the entry names who did. The handover carries the summary as it stood, so the sheet printed
       later shows what was handed over, not today's desk.
    5. Counts are computed, never logged: the alarms and calls of a shift are counted from the record over its
       span when it is summarised, drills left out. The log holds what people write.
    6. A shift and its entries lie in their scope: a reader whose reach covers the scope sees them (a ``*``
       shift only a ``*`` reader); to anyone else they do not exist.

Never
    Never read a clock (``now`` comes in) or a registry in the fold; never change a shift except by an entry;
    never count into a summary what lies outside its scope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import msgspec

from dispatch.entries import (
    DueFollowUpLine,
    DutyHandedOver,
    DutyLogged,
    DutyStarted,
    DutySummary,
    DutyTakenOver,
    OpenIncidentLine,
    OpenOrderLine,
    ShiftKind,
)
from dispatch.errors import Conflict, IllegalTransition, InvalidInput
from dispatch.journal import Entry
from dispatch.machines import OPEN_ORDER_STATES, OPEN_STATES
from dispatch.scopes import EVERYWHERE, Placed

if TYPE_CHECKING:
    from dispatch.engine import Engine
    from dispatch.followups import FollowUp
    from dispatch.state import Call, Incident, Projection, ServiceOrder

#: the most a summary lists of each kind (the counts stay whole): a whole centre's desk at night has tens
LIST_MAX = 100


class ShiftState(StrEnum):
    ON_DUTY = "on_duty"
    HANDED_OVER = "handed_over"
    TAKEN_OVER = "taken_over"


class ShiftEvent(StrEnum):
    LOG = "log"
    HAND_OVER = "hand_over"
    TAKE_OVER = "take_over"


_S, _E = ShiftState, ShiftEvent
#: rule 2: every legal move of a shift
TRANSITIONS: dict[tuple[ShiftState, ShiftEvent], ShiftState] = {
    (_S.ON_DUTY, _E.LOG): _S.ON_DUTY,
    (_S.ON_DUTY, _E.HAND_OVER): _S.HANDED_OVER,
    (_S.HANDED_OVER, _E.TAKE_OVER): _S.TAKEN_OVER,
}


def shift_next(state: ShiftState, event: ShiftEvent) -> ShiftState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition("shift", state.value, event.value) from None


def shift_kind(ts: float, *, day_hour: int, night_hour: int, tz: str) -> ShiftKind:
    """Rule 3: a day shift from ``day_hour`` until ``night_hour`` (local), a night shift the rest."""
    hour = datetime.fromtimestamp(ts, ZoneInfo(tz)).hour
    if day_hour <= night_hour:
        return "day" if day_hour <= hour < night_hour else "night"
    return "day" if hour >= day_hour or hour < night_hour else "night"  # a day that runs past midnight


def scope_place(scope: str) -> str | None:
    """Where a scope lies, as dispatch.scopes places things: ``*`` is the whole centre's (None)."""
    return None if scope == EVERYWHERE else scope


# -- the records (folded by the projection) -----------------------------------------------------------


@dataclass(slots=True)
class LogLine:
    at: float  # when it happened
    ts: float  # when it was written
    actor: str
    text: str


@dataclass(slots=True)
class Shift:
    shift_id: str
    scope: str
    kind: ShiftKind
    operator: str
    started_at: float
    after: str | None = None
    state: ShiftState = ShiftState.ON_DUTY
    log: list[LogLine] = field(default_factory=list)
    handed_over_at: float | None = None
    handed_over_by: str | None = None
    words: str = ""
    summary: DutySummary | None = None
    taken_over_at: float | None = None
    taken_over_by: str | None = None
    take_over_words: str = ""
    next_shift_id: str | None = None

    @property
    def on_duty(self) -> bool:
        return self.state is ShiftState.ON_DUTY


@dataclass(slots=True)
class DutyBook:
    """The shifts as the journal left them; the projection applies their entries here."""

    shifts: dict[str, Shift] = field(default_factory=dict)
    #: each scope's latest shift (rule 1: the open one, or the one waiting to be taken over)
    latest: dict[str, str] = field(default_factory=dict)

    def register(self, on: Callable[[type[Any], Callable[[Entry, Any], None]], None]) -> None:
        """Hand the projection a handler for each duty entry (its ``_on``)."""
        on(DutyStarted, self.started)
        on(DutyLogged, self.logged)
        on(DutyHandedOver, self.handed_over)
        on(DutyTakenOver, self.taken_over)

    def current(self, scope: str) -> Shift | None:
        shift_id = self.latest.get(scope)
        return self.shifts[shift_id] if shift_id is not None else None

    def started(self, entry: Entry, p: DutyStarted) -> None:
        self.shifts[p.shift_id] = Shift(p.shift_id, p.scope, p.kind, entry.actor, entry.ts, p.after)
        self.latest[p.scope] = p.shift_id

    def logged(self, entry: Entry, p: DutyLogged) -> None:
        shift = self.shifts[p.shift_id]
        shift.state = shift_next(shift.state, ShiftEvent.LOG)
        shift.log.append(LogLine(p.at, entry.ts, entry.actor, p.text))
        shift.log.sort(key=lambda line: line.at)  # stable: lines of one moment stay in the order written

    def handed_over(self, entry: Entry, p: DutyHandedOver) -> None:
        shift = self.shifts[p.shift_id]
        shift.state = shift_next(shift.state, ShiftEvent.HAND_OVER)
        shift.handed_over_at, shift.handed_over_by = entry.ts, entry.actor
        shift.words, shift.summary = p.words, p.summary

    def taken_over(self, entry: Entry, p: DutyTakenOver) -> None:
        shift = self.shifts[p.shift_id]
        shift.state = shift_next(shift.state, ShiftEvent.TAKE_OVER)
        shift.taken_over_at, shift.taken_over_by = entry.ts, entry.actor
        shift.take_over_words, shift.next_shift_id = p.words, p.next_shift_id


# -- the summary (rule 5) -----------------------------------------------------------------------------


class Inside(Protocol):
    """Whether a thing lies in one scope (the views answer it with their placement of incidents, calls,
    orders and elders, see dispatch.scopes)."""

    def incident(self, incident: Incident) -> bool: ...
    def call(self, call: Call) -> bool: ...
    def elder(self, elder_id: str) -> bool: ...


def summarise(state: Projection, inside: Inside, since: float, until: float, log_lines: int = 0) -> DutySummary:
    """The desk of one scope: what is open at ``until`` and what the span ``since``-``until`` saw."""
    open_incidents: list[Incident] = []
    alarms = opened = closed = 0
    for incident in state.incidents.values():
        is_open = incident.state in OPEN_STATES
        # what neither is open nor saw the span is passed over before it is placed (a year of closed incidents)
        if (not is_open and (incident.drill or incident.updated_at < since)) or not inside.incident(incident):
            continue
        if is_open:
            open_incidents.append(incident)
        if incident.drill:
            continue
        alarms += sum(1 for line in incident.alarms if since <= line.ts <= until)
        opened += since <= incident.opened_at <= until
        closed += incident.closed_at is not None and since <= incident.closed_at <= until
    calls = sum(1 for c in state.calls.values() if not c.drill and since <= c.started_at <= until and inside.call(c))
    open_incidents.sort(key=lambda i: (i.priority, i.opened_at))
    orders = sorted(  # the open ones through the projection's index by state; a drill's work is not handed over
        (o for st in OPEN_ORDER_STATES for oid in state.orders_in[st]
         if not (o := state.service_orders[oid]).drill and inside.elder(o.elder_id)),
        key=lambda o: o.start,
    )  # fmt: skip
    due = sorted(
        (f for f in state.follow_ups.follow_ups.values()
         if f.open and not f.drill and f.due <= until and inside.elder(f.elder_id)),
        key=lambda f: f.due,
    )  # fmt: skip
    return DutySummary(
        since, until,
        len(open_incidents), tuple(_incident_line(i) for i in open_incidents[:LIST_MAX]),
        len(orders), tuple(_order_line(o) for o in orders[:LIST_MAX]),
        len(due), tuple(_follow_up_line(f) for f in due[:LIST_MAX]),
        alarms, calls, opened, closed, log_lines,
    )  # fmt: skip


def _incident_line(i: Incident) -> OpenIncidentLine:
    return OpenIncidentLine(i.incident_id, i.alarm_type, i.state.value, i.priority, i.opened_at, i.drill)


def _order_line(o: ServiceOrder) -> OpenOrderLine:
    return OpenOrderLine(o.order_id, o.elder_id, o.item_id, o.state.value, o.start, o.drill)


def _follow_up_line(f: FollowUp) -> DueFollowUpLine:
    return DueFollowUpLine(f.follow_up_id, f.elder_id, f.kind, f.subject_id, f.due, f.attempts)


# -- the desk (run by the engine, its lock held) ------------------------------------------------------


class DutyDesk:
    """Starts, logs, hands over and takes over shifts, checking each against the book first."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def book(self) -> DutyBook:
        return self._engine.state.duty

    def start(self, scope: str, *, actor: str, kind: ShiftKind | None) -> str:
        """Rule 1 and 2: a scope with no shift open and none waiting. Returns the new shift's id."""
        current = self.book.current(scope)
        if current is not None and current.state is ShiftState.ON_DUTY:
            raise Conflict(f"{current.operator} is on duty for {scope}", code="duty_open",
                           params={"operator": self._name(current.operator)})  # fmt: skip
        if current is not None and current.state is ShiftState.HANDED_OVER:
            raise Conflict(f"{current.shift_id} waits to be taken over", code="duty_handover_pending",
                           params={"operator": self._name(current.operator)})  # fmt: skip
        return self._start(scope, actor, kind, after=None)

    def log(self, scope: str, text: str, *, actor: str, at: float | None) -> None:
        shift = self._on_duty(scope)
        now = self._engine.clock.now()
        when = now if at is None else at
        if not shift.started_at <= when <= now:
            raise InvalidInput("a log line tells of a moment of the shift", field="at", code="duty_log_time")
        shift_next(shift.state, ShiftEvent.LOG)
        self._engine.emit(DutyLogged(shift.shift_id, scope, text, when), actor=actor)

    def hand_over(self, scope: str, words: str, *, actor: str, for_others: bool) -> None:
        """Rule 4: the operator on duty, or (``for_others``) a supervisor for them; the summary as it stands."""
        shift = self._on_duty(scope)
        if shift.operator != actor and not for_others:
            raise Conflict(f"{shift.operator} is on duty, not {actor}", code="duty_not_yours",
                           params={"operator": self._name(shift.operator)})  # fmt: skip
        shift_next(shift.state, ShiftEvent.HAND_OVER)
        now = self._engine.clock.now()
        summary = self._engine.views.duty_summary(scope, shift.started_at, now, log_lines=len(shift.log))
        self._engine.emit(DutyHandedOver(shift.shift_id, scope, summary, words), actor=actor)

    def take_over(self, scope: str, words: str, *, actor: str, kind: ShiftKind | None) -> str:
        """Rule 2: acknowledge the shift waiting and start one's own. Returns the new shift's id."""
        shift = self.book.current(scope)
        if shift is None or shift.state is ShiftState.TAKEN_OVER:
            raise Conflict(f"nothing waits to be taken over in {scope}", code="duty_nothing_to_take_over")
        if shift.state is ShiftState.ON_DUTY:
            raise Conflict(f"{shift.operator} has not handed over", code="duty_not_handed_over",
                           params={"operator": self._name(shift.operator)})  # fmt: skip
        shift_next(shift.state, ShiftEvent.TAKE_OVER)
        next_id = self._next_id(offset=1)
        self._engine.emit(DutyTakenOver(shift.shift_id, scope, next_id, words), actor=actor)
        return self._start(scope, actor, kind, after=shift.shift_id)

    def _start(self, scope: str, actor: str, kind: ShiftKind | None, *, after: str | None) -> str:
        engine = self._engine
        settings = engine.settings
        if kind is None:
            kind = shift_kind(engine.clock.now(), day_hour=settings.duty_day_hour,
                              night_hour=settings.duty_night_hour, tz=settings.timezone)  # fmt: skip
        shift_id = self._next_id()
        engine.emit(DutyStarted(shift_id, scope, kind, after), actor=actor)
        return shift_id

    def _next_id(self, offset: int = 0) -> str:
        """The id of a shift started by the entry ``offset`` entries after the next one."""
        return f"DS-{self._engine.journal.head_seq + 1 + offset}"

    def _on_duty(self, scope: str) -> Shift:
        shift = self.book.current(scope)
        if shift is None or not shift.on_duty:
            raise Conflict(f"nobody is on duty for {scope}", code="duty_not_started")
        return shift

    def _name(self, actor: str) -> str:
        _, _, who = actor.partition(":")
        return self._engine.directory.staff_names.get(who) or who or actor


# -- views --------------------------------------------------------------------------------------------


def entry_place(fact: object) -> Placed | None:
    """Where a duty entry lies (rule 6): its scope, ordinary work. None for any other entry."""
    if isinstance(fact, DutyStarted | DutyLogged | DutyHandedOver | DutyTakenOver):
        return Placed(scope_place(fact.scope))
    return None


def summary_view(summary: DutySummary) -> dict[str, Any]:
    """A summary as JSON, each open incident with its age at the summary's end."""
    view: dict[str, Any] = msgspec.to_builtins(summary)
    for line in view["incidents"]:
        line["age_s"] = round(summary.until - line["opened_at"])
    return view


def shift_view(shift: Shift, name: Callable[[str | None], str | None]) -> dict[str, Any]:
    """A shift with its log and, once handed over, the summary it was handed over with. ``name``: an actor's
    name as colleagues read it."""
    return {
        "shift_id": shift.shift_id,
        "scope": shift.scope,
        "kind": shift.kind,
        "state": shift.state.value,
        "operator": shift.operator,
        "operator_name": name(shift.operator),
        "started_at": shift.started_at,
        "after": shift.after,
        "log": [
            {"at": line.at, "ts": line.ts, "actor": line.actor, "actor_name": name(line.actor), "text": line.text}
            for line in shift.log
        ],
        "handed_over_at": shift.handed_over_at,
        "handed_over_by": shift.handed_over_by,
        "handed_over_by_name": name(shift.handed_over_by),
        "words": shift.words,
        "summary": summary_view(shift.summary) if shift.summary is not None else None,
        "acknowledged": shift.state is ShiftState.TAKEN_OVER,
        "taken_over_at": shift.taken_over_at,
        "taken_over_by": shift.taken_over_by,
        "taken_over_by_name": name(shift.taken_over_by),
        "take_over_words": shift.take_over_words,
        "disputed": bool(shift.take_over_words),
        "next_shift_id": shift.next_shift_id,
    }


def history(book: DutyBook, covers: Callable[[str | None], bool], since: float, limit: int) -> list[Shift]:
    """The shifts in reach (``covers`` a scope's place) started since ``since``, newest first."""
    chosen = [s for s in reversed(book.shifts.values()) if s.started_at >= since and covers(scope_place(s.scope))]
    return chosen[:limit]
