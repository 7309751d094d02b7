"""五定 plans: a standing plan of visits (fixed caregiver, time, place, item and mode) that generates its orders.

What it owns
    The plans and the missed-visit tasks folded from the ``plan.*`` entries (:class:`PlanBook`, held by the
    projection), with the index of the orders each plan generated; the desk's decisions (:class:`PlanDesk`, run
    by the engine with its lock held): making and ending plans, generating their orders ahead on the engine's
    timers, noticing missed visits and settling their tasks; and the views of plans and tasks.

Rules
    1. A plan is one catalogue item for one elder (a second item is a second plan): 定人 the fixed caregiver (a
       caregiver or volunteer with the item's skill), 定时 ISO weekdays and a local start time in the centre's
       time zone (``timezone``) with the item's duration, 定点 the elder's home or a place in words, from a first
       local day to an optional last one. 定价/定式: each order takes the elder's entitlement when it is
       ordered, as every service order does (dispatch.services), so a reassessment applies to the next visit.
    2. Its orders are ordinary service orders (source ``plan``, the plan's id and planned day on them), made,
       scheduled and assigned to the plan's caregiver through the engine's one order path. Assigned ahead: the
       caregiver need not be on duty now, only have the skill. A caregiver the registry no longer allows leaves
       the order scheduled and unassigned (the operators see it, and it is missed if nobody goes).
    3. Each active plan's orders are kept generated for the next ``plan_horizon_days`` local days, today
       included, on the engine's timer ``("plans", "horizon")``: at each local midnight, when a plan is made,
       and at start (so the days of a downtime are caught up). One order per plan and planned day, whatever is
       replayed, retried or restarted: the projection's index of (plan, day) is checked before ordering. A visit
       whose start time has passed is not generated after the fact.
    4. A planned order still requested, scheduled or assigned (nobody checked in) ``plan_grace_minutes`` after
       its window ended is a missed visit: ``plan.visit_missed`` once, a task for the operators of the elder's
       community, checked on the order's own timer ``("plans", order_id)`` set at that moment (moved when the
       visit is rescheduled). A visit checked in (started), delivered, cancelled or reported no-show is never
       missed; a missed visit rescheduled is watched again at its new window.
    5. Lifecycles as tables: a plan is active, then ended (:data:`PLAN_TRANSITIONS`); a task is open, then
       settled with an outcome and a note (:data:`TASK_TRANSITIONS`). Settling records what the operator decided;
       moving the order itself (reschedule, cancel) is the order's own action.
    6. Ending a plan takes effect after a local day (today by default, never a past day): no visit after it, and
       its orders planned after it that nobody started are cancelled in the same transaction.
    7. Plans are real work: never drills. Changing a plan is ending it and making another.

Never
    Never read a clock (``now`` comes in), a registry or a database in the fold; never change a plan or a task
    except by an entry; never write an order except through the engine's order path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, cast, get_args
from zoneinfo import ZoneInfo

from dispatch.entries import PlanCreated, PlanEnded, PlanTaskClosed, PlanTaskOutcome, PlanVisitMissed
from dispatch.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from dispatch.journal import Entry
from dispatch.machines import OrderEvent, OrderState
from dispatch.services import catalogue

if TYPE_CHECKING:
    from dispatch.directory import Directory
    from dispatch.engine import Engine
    from dispatch.state import ServiceOrder

log = logging.getLogger("anxin.plans")

ACTOR = "system:plans"
HORIZON = ("plans", "horizon")
#: a planned order in one of these states has had nobody at the door yet (rule 4)
NOT_STARTED = frozenset({OrderState.REQUESTED, OrderState.SCHEDULED, OrderState.ASSIGNED})
OUTCOMES: tuple[str, ...] = get_args(PlanTaskOutcome)
TaskFilter = Literal["open", "settled", "all"]


class PlanState(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class PlanEvent(StrEnum):
    END = "end"


class TaskState(StrEnum):
    OPEN = "open"
    SETTLED = "settled"


class TaskEvent(StrEnum):
    SETTLE = "settle"


#: rule 5: every legal move of a plan, and of a missed visit's task
PLAN_TRANSITIONS: dict[tuple[PlanState, PlanEvent], PlanState] = {(PlanState.ACTIVE, PlanEvent.END): PlanState.ENDED}
TASK_TRANSITIONS: dict[tuple[TaskState, TaskEvent], TaskState] = {(TaskState.OPEN, TaskEvent.SETTLE): TaskState.SETTLED}


def plan_next(state: PlanState, event: PlanEvent) -> PlanState:
    try:
        return PLAN_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition("plan", state.value, event.value) from None


def task_next(state: TaskState, event: TaskEvent) -> TaskState:
    try:
        return TASK_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition("plan_task", state.value, event.value) from None


# -- times (rule 1) -----------------------------------------------------------------------------------


def local_day(ts: float, tz: str) -> date:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).date()


def parse_day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} must read YYYY-MM-DD, not {text!r}", field=name, code="plan_dates") from None


def parse_time(text: str) -> time:
    hours, colon, minutes = text.partition(":")
    digits = colon and len(hours) == 2 and len(minutes) == 2 and hours.isdigit() and minutes.isdigit()
    if digits and int(hours) < 24 and int(minutes) < 60:
        return time(int(hours), int(minutes))
    raise InvalidInput(f"the time must read HH:MM, not {text!r}", field="at", code="plan_time")


def check_weekdays(weekdays: Sequence[int]) -> tuple[int, ...]:
    days = tuple(sorted(set(weekdays)))
    if not days or any(not 1 <= d <= 7 for d in days):
        raise InvalidInput("weekdays are 1 (Monday) to 7 (Sunday), at least one", field="weekdays",
                           code="plan_weekdays")  # fmt: skip
    return days


# -- the records (folded by the projection) -----------------------------------------------------------


@dataclass(slots=True)
class Plan:
    plan_id: str
    elder_id: str
    item_id: str
    responder_id: str
    weekdays: tuple[int, ...]
    at: time
    minutes: int
    first_day: date
    last_day: date | None
    place: str
    note: str
    created_at: float
    created_by: str
    state: PlanState = PlanState.ACTIVE
    ended_at: float | None = None
    ended_by: str | None = None
    end_reason: str = ""

    def visits_on(self, day: date) -> bool:
        return (
            self.first_day <= day
            and (self.last_day is None or day <= self.last_day)
            and day.isoweekday() in self.weekdays
        )

    def current(self, today: date) -> bool:
        """Whether visits are still to come from today on (an ended plan's until its last day)."""
        return self.last_day is None or self.last_day >= today


@dataclass(slots=True)
class PlanTask:
    task_id: str
    plan_id: str
    order_id: str
    elder_id: str
    responder_id: str | None
    start: float
    end: float
    raised_at: float
    state: TaskState = TaskState.OPEN
    outcome: str | None = None
    note: str = ""
    settled_at: float | None = None
    settled_by: str | None = None

    @property
    def open(self) -> bool:
        return self.state is TaskState.OPEN


@dataclass(slots=True)
class PlanBook:
    """The plans and missed-visit tasks as the journal left them; the projection applies their entries here, and
    tells it of the orders plans generated (:meth:`order_made`) and of each move of one (:meth:`order_moved`)."""

    plans: dict[str, Plan] = field(default_factory=dict)
    tasks: dict[str, PlanTask] = field(default_factory=dict)
    #: rule 3: the order of each (plan, planned local day)
    by_day: dict[tuple[str, str], str] = field(default_factory=dict)
    #: each plan's orders, in the order they were generated
    orders_of: dict[str, list[str]] = field(default_factory=dict)
    #: rule 4: planned orders nobody has started and not yet missed (those the missed-visit check watches)
    waiting: set[str] = field(default_factory=set)
    #: the task of each missed order (once)
    missed: dict[str, str] = field(default_factory=dict)

    def register(self, on: Callable[[type[Any], Callable[[Entry, Any], None]], None]) -> None:
        """Hand the projection a handler for each plan entry (its ``_on``)."""
        on(PlanCreated, self.created)
        on(PlanEnded, self.ended)
        on(PlanVisitMissed, self.visit_missed)
        on(PlanTaskClosed, self.task_closed)

    def created(self, entry: Entry, p: PlanCreated) -> None:
        self.plans[p.plan_id] = Plan(
            p.plan_id, p.elder_id, p.item_id, p.responder_id, p.weekdays, time.fromisoformat(p.at), p.minutes,
            date.fromisoformat(p.first_day), date.fromisoformat(p.last_day) if p.last_day else None, p.place,
            p.note, entry.ts, entry.actor,
        )  # fmt: skip
        self.orders_of[p.plan_id] = []

    def ended(self, entry: Entry, p: PlanEnded) -> None:
        plan = self.plans[p.plan_id]
        plan.state = plan_next(plan.state, PlanEvent.END)
        last = date.fromisoformat(p.last_day)
        plan.last_day = last if plan.last_day is None else min(plan.last_day, last)
        plan.ended_at, plan.ended_by, plan.end_reason = entry.ts, entry.actor, p.reason

    def visit_missed(self, entry: Entry, p: PlanVisitMissed) -> None:
        self.tasks[p.task_id] = PlanTask(
            p.task_id, p.plan_id, p.order_id, p.elder_id, p.responder_id, p.start, p.end, entry.ts
        )
        self.missed[p.order_id] = p.task_id
        self.waiting.discard(p.order_id)

    def task_closed(self, entry: Entry, p: PlanTaskClosed) -> None:
        task = self.tasks[p.task_id]
        task.state = task_next(task.state, TaskEvent.SETTLE)
        task.outcome, task.note, task.settled_at, task.settled_by = p.outcome, p.note, entry.ts, entry.actor

    def order_made(self, order_id: str, plan_id: str, day: str) -> None:
        self.by_day[(plan_id, day)] = order_id
        self.orders_of.setdefault(plan_id, []).append(order_id)
        self.waiting.add(order_id)

    def order_moved(self, order_id: str, state: OrderState, event: OrderEvent) -> None:
        if state not in NOT_STARTED:
            self.waiting.discard(order_id)
        elif event is OrderEvent.RESCHEDULE and order_id in self.missed:  # rule 4: a new window, watched again
            del self.missed[order_id]
            self.waiting.add(order_id)


# -- the desk (run by the engine, its lock held) ------------------------------------------------------


class PlanDesk:
    """Makes and ends plans, keeps their orders generated ahead, raises and settles missed visits."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def book(self) -> PlanBook:
        return self._engine.state.plans

    @property
    def _tz(self) -> str:
        return self._engine.settings.timezone

    def start(self, now: float) -> None:
        """After a (re)start: generate what the downtime left out at once (rule 3), and look for missed visits
        when the first is due (at once for those that fell due while the server was down)."""
        if self.book.plans:
            self._engine.state.timers.set(HORIZON, now)
        orders = self._engine.state.service_orders
        for order_id in self.book.waiting:
            self._watch(orders[order_id], now)

    def fire(self, what: str, now: float) -> None:
        """One of the plans' timers is due."""
        if what == "horizon":
            self._next_day(now)  # first: a failing order below must not stop the days to come
            for plan in list(self.book.plans.values()):
                self._generate(plan, now)
        else:
            self._check_visit(what, now)

    def _next_day(self, now: float) -> None:
        """The horizon moves on at the next local midnight."""
        tomorrow = local_day(now, self._tz) + timedelta(days=1)
        self._engine.state.timers.set(HORIZON, datetime.combine(tomorrow, time(0), ZoneInfo(self._tz)).timestamp())

    def _watch(self, order: ServiceOrder, now: float) -> None:
        """Rule 4: a waiting planned order is checked when its window and the grace have passed (at once when
        that moment went by while the server was down); any other has no timer."""
        key = ("plans", order.order_id)
        if order.order_id in self.book.waiting and order.state in NOT_STARTED:
            grace = self._engine.settings.plan_grace_minutes * 60
            self._engine.state.timers.set(key, max(order.end + grace, now))
        else:
            self._engine.state.timers.cancel(key)

    def create(
        self,
        elder_id: str,
        item_id: str,
        responder_id: str,
        weekdays: Sequence[int],
        at: str,
        *,
        first_day: str | None,
        last_day: str | None,
        place: str,
        note: str,
        actor: str,
    ) -> str:
        """Check a plan whole (rule 1), write it, and generate its first orders (rule 3). Returns its id."""
        engine = self._engine
        now = engine.clock.now()
        item = catalogue(engine.settings.service_catalogue).get(item_id)
        if item is None:
            raise NotFound(f"no service {item_id} in the catalogue", field="item_id", code="unknown_service_item")
        engine.elder(elder_id)
        profile = engine.directory.responders.get(responder_id)
        if profile is None or profile.kind == "clinic":  # a clinic is proposed for emergencies, never sent
            raise NotFound(f"no caregiver or volunteer {responder_id}", field="responder_id", code="unknown_responder")
        if profile.provider != item.provider:  # the item's provider's own staff deliver it (dispatch.services)
            raise Conflict(f"{responder_id} works for {profile.provider}, the item is {item.provider}'s",
                           code="responder_other_provider",
                           params={"responder": profile.name, "provider": item.provider})  # fmt: skip
        if item.skill is not None and item.skill not in profile.skills:
            raise Conflict(f"{responder_id} lacks the skill {item.skill}", code="responder_lacks_skill",
                           params={"responder": profile.name, "skill": item.skill})  # fmt: skip
        days = check_weekdays(weekdays)
        first = parse_day(first_day, "first_day") if first_day else local_day(now, self._tz)
        last = parse_day(last_day, "last_day") if last_day else None
        if last is not None and last < first:
            raise InvalidInput("the last day comes before the first", field="last_day", code="plan_dates")
        if first < local_day(now, self._tz):
            raise InvalidInput("a plan starts today or later", field="first_day", code="plan_dates")
        clock_time = parse_time(at)
        twin = next((p for p in self.book.plans.values() if p.state is PlanState.ACTIVE and p.elder_id == elder_id
                     and p.item_id == item_id and p.at == clock_time and set(p.weekdays) & set(days)),
                    None)  # fmt: skip
        if twin is not None:  # the same visit twice on a day: a slip (an elder who eats twice has two times)
            raise Conflict(f"{twin.plan_id} already brings {item_id} at {at}", code="plan_duplicate",
                           params={"plan": twin.plan_id})  # fmt: skip
        plan_id = f"PL-{engine.journal.head_seq + 1}"
        created = PlanCreated(
            plan_id, elder_id, item_id, responder_id, days, at, item.minutes, first.isoformat(),
            last.isoformat() if last else None, place.strip(), note.strip(),
        )  # fmt: skip
        engine.emit(created, actor=actor)
        self._generate(self.book.plans[plan_id], now)
        if HORIZON not in engine.state.timers:  # the first plan: the horizon starts moving
            self._next_day(now)
        return plan_id

    def end(self, plan_id: str, *, last_day: str | None, reason: str, actor: str) -> None:
        """Rule 6: no visit after ``last_day`` (today by default); the orders planned after it are cancelled."""
        engine = self._engine
        now = engine.clock.now()
        plan = one_plan(self.book, plan_id, lambda _: True)
        if plan.state is not PlanState.ACTIVE:
            raise Conflict(f"{plan_id} is {plan.state.value}", code="plan_ended")
        today = local_day(now, self._tz)
        last = parse_day(last_day, "last_day") if last_day else today
        if last < today:
            raise InvalidInput("a plan ends today or later, not in the past", field="last_day", code="plan_end_day")
        engine.emit(PlanEnded(plan_id, plan.elder_id, last.isoformat(), reason.strip()), actor=actor)
        orders = engine.state.service_orders
        for order_id in self.book.orders_of.get(plan_id, []):
            order = orders[order_id]
            if order.plan_day is not None and order.plan_day > last.isoformat() and order.state in NOT_STARTED:
                engine.move_order(order, OrderEvent.CANCEL, actor=actor, reason=f"plan {plan_id} ended")

    def settle(self, task_id: str, *, outcome: str, note: str, actor: str) -> None:
        """Rule 5: the operator's word on a missed visit, once."""
        task = one_task(self.book, task_id, lambda _: True)
        if not task.open:
            raise Conflict(f"{task_id} is settled", code="plan_task_settled")
        if outcome not in OUTCOMES:
            raise InvalidInput(f"no outcome {outcome!r}", field="outcome", code="plan_task_outcome")
        fact = PlanTaskClosed(task_id, task.plan_id, task.elder_id, cast(PlanTaskOutcome, outcome), note.strip())
        self._engine.emit(fact, actor=actor)

    def order_moved(self, order: ServiceOrder) -> None:
        """A planned order moved (rescheduled, started, ...): its missed-visit moment may have moved too."""
        if order.plan_id is not None:
            self._watch(order, self._engine.clock.now())

    # -- rule 3 and rule 4 --

    def _generate(self, plan: Plan, now: float) -> None:
        zone = ZoneInfo(self._tz)
        today = local_day(now, self._tz)
        for offset in range(self._engine.settings.plan_horizon_days):
            day = today + timedelta(days=offset)
            if not plan.visits_on(day) or (plan.plan_id, day.isoformat()) in self.book.by_day:
                continue
            start = datetime.combine(day, plan.at, zone).timestamp()
            if start > now:
                self._order(plan, day, start)

    def _order(self, plan: Plan, day: date, start: float) -> None:
        engine = self._engine
        item = catalogue(engine.settings.service_catalogue).get(plan.item_id)
        if item is None or plan.elder_id not in engine.directory.elders:
            log.warning("plans: %s has no %s to order for %s", plan.plan_id,
                        "item" if item is None else "elder", day)  # fmt: skip
            return
        order_id = engine.ordered(
            plan.elder_id, item, start, start + plan.minutes * 60, actor=ACTOR, source="plan", place=plan.place,
            plan=(plan.plan_id, day.isoformat()),
        )  # fmt: skip
        order = engine.state.service_orders[order_id]
        engine.move_order(order, OrderEvent.SCHEDULE, actor=ACTOR, start=order.start, end=order.end)
        try:
            engine.move_order(order, OrderEvent.ASSIGN, actor=ACTOR, responder_id=plan.responder_id, ahead=True)
        except (NotFound, Conflict) as exc:  # rule 2: left scheduled for the operators
            log.warning("plans: %s of %s stays unassigned: %s", order_id, plan.plan_id, exc)

    def _check_visit(self, order_id: str, now: float) -> None:
        """An order's timer: still nobody checked in after the window and the grace -- a missed visit, once."""
        engine = self._engine
        order = engine.state.service_orders.get(order_id)
        if order is None or order_id not in self.book.waiting or order_id in self.book.missed:
            return
        grace = engine.settings.plan_grace_minutes * 60
        if order.state not in NOT_STARTED:
            return
        if now < order.end + grace:  # rescheduled later meanwhile: its timer was moved
            self._watch(order, now)
            return
        assert order.plan_id is not None
        missed = PlanVisitMissed(
            f"PT-{engine.journal.head_seq + 1}", order.plan_id, order.order_id, order.elder_id, order.responder_id,
            order.start, order.end,
        )  # fmt: skip
        engine.emit(missed, actor=ACTOR)


# -- views --------------------------------------------------------------------------------------------


def one_plan(book: PlanBook, plan_id: str, visible: Callable[[str], bool]) -> Plan:
    """A plan in reach; otherwise as if it did not exist."""
    plan = book.plans.get(plan_id)
    if plan is None or not visible(plan.elder_id):
        raise NotFound(f"no plan {plan_id}", field="plan_id", code="unknown_plan")
    return plan


def one_task(book: PlanBook, task_id: str, visible: Callable[[str], bool]) -> PlanTask:
    task = book.tasks.get(task_id)
    if task is None or not visible(task.elder_id):
        raise NotFound(f"no plan task {task_id}", field="task_id", code="unknown_plan_task")
    return task


def select_plans(
    book: PlanBook, visible: Callable[[str], bool], *, elder: str | None, active: bool | None, today: date
) -> list[Plan]:
    """Plans in reach, newest first; ``active``: still active with visits to come (or not)."""
    chosen = []
    for plan in reversed(book.plans.values()):
        if elder is not None and plan.elder_id != elder:
            continue
        if active is not None and (plan.state is PlanState.ACTIVE and plan.current(today)) != active:
            continue
        if visible(plan.elder_id):
            chosen.append(plan)
    return chosen


def select_tasks(book: PlanBook, visible: Callable[[str], bool], *, state: TaskFilter, limit: int) -> list[PlanTask]:
    """Missed-visit tasks in reach, the oldest visit first."""
    chosen = [
        t
        for t in book.tasks.values()
        if (state == "all" or (t.open if state == "open" else not t.open)) and visible(t.elder_id)
    ]
    chosen.sort(key=lambda t: (t.start, t.task_id))
    return chosen[:limit]


def _name(directory: Directory, responder_id: str | None) -> str | None:
    profile = directory.responders.get(responder_id) if responder_id else None
    return profile.name if profile is not None else responder_id


def plan_view(plan: Plan, directory: Directory, today: date) -> dict[str, Any]:
    elder = directory.elders.get(plan.elder_id)
    return {
        "plan_id": plan.plan_id,
        "elder_id": plan.elder_id,
        "elder_name": elder.name if elder else None,
        "community": elder.community if elder else None,
        "item_id": plan.item_id,
        "responder_id": plan.responder_id,
        "responder_name": _name(directory, plan.responder_id),
        "weekdays": list(plan.weekdays),
        "at": plan.at.strftime("%H:%M"),
        "minutes": plan.minutes,
        "first_day": plan.first_day.isoformat(),
        "last_day": plan.last_day.isoformat() if plan.last_day else None,
        "place": plan.place,
        "note": plan.note,
        "state": plan.state.value,
        "active": plan.state is PlanState.ACTIVE and plan.current(today),
        "created_at": plan.created_at,
        "created_by": plan.created_by,
        "ended_at": plan.ended_at,
        "ended_by": plan.ended_by,
        "end_reason": plan.end_reason,
    }


def task_view(task: PlanTask, book: PlanBook, directory: Directory) -> dict[str, Any]:
    elder = directory.elders.get(task.elder_id)
    plan = book.plans.get(task.plan_id)
    return {
        "task_id": task.task_id,
        "plan_id": task.plan_id,
        "order_id": task.order_id,
        "item_id": plan.item_id if plan else None,
        "elder_id": task.elder_id,
        "elder_name": elder.name if elder else None,
        "phone": elder.phone if elder else None,
        "community": elder.community if elder else None,
        "responder_id": task.responder_id,
        "responder_name": _name(directory, task.responder_id),
        "start": task.start,
        "end": task.end,
        "raised_at": task.raised_at,
        "state": task.state.value,
        "open": task.open,
        "outcome": task.outcome,
        "note": task.note,
        "settled_at": task.settled_at,
        "settled_by": task.settled_by,
    }


def entry_elder(fact: object) -> str | None:
    """The elder a plan entry is about (whose community it lies in); None for any other entry."""
    if isinstance(fact, PlanCreated | PlanEnded | PlanVisitMissed | PlanTaskClosed):
        return fact.elder_id
    return None
