"""五定 plans in the core, on a manual clock: a plan's weekly orders over a month (one per planned day, whatever
is replayed or restarted), ending a plan, missed visits raised once as tasks and settled, and the views by reach."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatch.clock import ManualClock
from dispatch.core import Core, open_core
from dispatch.engine import Engine
from dispatch.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from dispatch.machines import OrderState
from dispatch.plans import (
    HORIZON,
    PLAN_TRANSITIONS,
    TASK_TRANSITIONS,
    PlanEvent,
    PlanState,
    TaskEvent,
    TaskState,
    plan_next,
    task_next,
)
from dispatch.scopes import ALL, Reach
from dispatch.state import Projection, ServiceOrder
from tests.conftest import elder, engine_of, responder, seed, settings_for

SHANGHAI = ZoneInfo("Asia/Shanghai")
MINUTE = 60.0
MON_WED_FRI = (1, 3, 5)


def at(day: date, hour: int, minute: int = 0) -> float:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI).timestamp()


def planned(engine: Engine, plan_id: str) -> list[ServiceOrder]:
    return sorted((o for o in engine.state.service_orders.values() if o.plan_id == plan_id), key=lambda o: o.start)


async def run_until(engine: Engine, clock: ManualClock, until: float, *, check_in: bool = False) -> None:
    """Fire every timer due up to ``until`` in order; with ``check_in``, the caregiver checks in and out of each
    planned visit once its start time has come (before any later timer fires)."""
    while True:
        deadline = engine.next_deadline()
        if deadline is None or deadline > until:
            break
        clock.set(max(deadline, clock.now()))
        if check_in:
            await _visit_due(engine, clock.now())
        await engine.tick()
    clock.set(until)


async def _visit_due(engine: Engine, now: float) -> None:
    for order in list(engine.state.service_orders.values()):
        if order.plan_id and order.state is OrderState.ASSIGNED and order.start <= now and order.responder_id:
            who = order.responder_id
            await engine.order_action(order.order_id, "start", actor=f"caregiver:{who}", caregiver=who)
            await engine.order_action(order.order_id, "deliver", actor=f"caregiver:{who}", caregiver=who, note="已送餐")


def test_the_tables() -> None:
    assert plan_next(PlanState.ACTIVE, PlanEvent.END) is PlanState.ENDED
    assert task_next(TaskState.OPEN, TaskEvent.SETTLE) is TaskState.SETTLED
    with pytest.raises(IllegalTransition):
        plan_next(PlanState.ENDED, PlanEvent.END)
    with pytest.raises(IllegalTransition):
        task_next(TaskState.SETTLED, TaskEvent.SETTLE)
    assert len(PLAN_TRANSITIONS) == len(TASK_TRANSITIONS) == 1


async def test_a_plan_generates_its_weekly_orders_for_a_month(core: Core, clock: ManualClock) -> None:
    engine = engine_of(core)
    clock.set(at(date(2026, 6, 14), 12))  # a Sunday noon
    plan_id = await core.engine.create_plan(
        "e1", "meal_delivery", "c_near", MON_WED_FRI, "09:00", actor="operator:o", first_day="2026-06-15",
        last_day="2026-07-14",
    )  # fmt: skip
    first_week = planned(engine, plan_id)
    assert [o.plan_day for o in first_week] == ["2026-06-15", "2026-06-17", "2026-06-19"]  # 7 days, today included
    seen_ahead = []
    end = at(date(2026, 7, 20), 0)
    while clock.now() < end:  # day by day, the horizon never further than 7 local days
        await run_until(engine, clock, min(clock.now() + 86_400, end), check_in=True)
        orders = planned(engine, plan_id)
        seen_ahead.append(max(o.start for o in orders) - clock.now())
    assert max(seen_ahead) < 7 * 86_400
    orders = planned(engine, plan_id)
    days = [date.fromisoformat(o.plan_day or "") for o in orders]
    assert len(orders) == 13  # Mon/Wed/Fri from 15 June to 14 July, across the month's end
    assert days == sorted(set(days)) and all(d.isoweekday() in MON_WED_FRI for d in days)
    assert days[0] == date(2026, 6, 15) and days[-1] == date(2026, 7, 13)
    assert any(d.month == 7 for d in days) and any(d.month == 6 for d in days)
    for order, day in zip(orders, days, strict=True):
        local = datetime.fromtimestamp(order.start, SHANGHAI)
        assert (local.date(), local.hour, local.minute) == (day, 9, 0)
        assert order.end - order.start == 30 * MINUTE  # the item's duration
        assert (order.source, order.responder_id, order.item_id) == ("plan", "c_near", "meal_delivery")
        assert order.state is OrderState.DELIVERED  # checked in and out: none missed
        assert order.ordered_by == "system:plans"
    assert engine.state.plans.tasks == {}
    assert engine.state.ledger.charges()  # each planned visit is an ordinary order: delivered, charged


async def test_generation_is_idempotent_over_a_replay(core: Core, clock: ManualClock) -> None:
    engine = engine_of(core)
    clock.set(at(date(2026, 6, 14), 12))
    plan_id = await core.engine.create_plan("e1", "meal_delivery", "c_near", MON_WED_FRI, "09:00", actor="operator:o")
    count = len(planned(engine, plan_id))
    engine.state.timers.set(HORIZON, clock.now())  # the horizon timer again, as after a retry
    await engine.tick()
    await engine.tick()
    assert len(planned(engine, plan_id)) == count == 3
    replayed = Projection(position_stale_s=core.settings.position_stale_s)
    async for entry in core.journal.replay():
        replayed.apply(entry)
    assert replayed.plans.by_day == engine.state.plans.by_day
    assert replayed.plans.plans.keys() == engine.state.plans.plans.keys()


async def test_a_restart_generates_no_duplicate_and_catches_up(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data")
    await seed(settings, elders=[elder("e1")], responders=[responder("c1", 24.511, 117.7)])
    clock = ManualClock(at(date(2026, 6, 14), 12))
    core = await open_core(settings, clock)
    timers = engine_of(core).state.timers
    assert HORIZON not in timers and len(timers) == 0  # no plan: nothing to wake for
    plan_id = await core.engine.create_plan("e1", "meal_delivery", "c1", (1, 2, 3, 4, 5, 6, 7), "09:00",
                                            actor="operator:o")  # fmt: skip
    assert timers.deadline(HORIZON) == at(date(2026, 6, 15), 0)  # the next local midnight
    assert len(planned(engine_of(core), plan_id)) == 6  # 14 to 20, today included: its 09:00 has passed
    await core.close()
    clock.set(at(date(2026, 6, 17), 8))  # down three days: the 17th's visit was generated before
    core = await open_core(settings, clock)
    try:
        engine = engine_of(core)
        assert engine.state.timers.deadline(HORIZON) == clock.now()  # re-armed at start
        await engine.tick()
        orders = planned(engine, plan_id)
        days = [o.plan_day for o in orders]
        assert len(days) == len(set(days)) == 9  # 15..20 once each, and 21..23 now in the horizon
        assert days[-1] == "2026-06-23"
        missed = engine.state.plans.tasks.values()
        assert sorted(t.order_id for t in missed) == [o.order_id for o in orders[:2]]  # 15 and 16: nobody went
    finally:
        await core.close()


async def test_the_same_visit_twice_and_a_plan_in_the_past_are_refused(core: Core, clock: ManualClock) -> None:
    clock.set(at(date(2026, 6, 14), 12))
    await core.engine.create_plan("e1", "meal_delivery", "c_near", (1, 3), "11:30", actor="operator:o")
    head = core.journal.head_seq
    with pytest.raises(Conflict) as twin:
        await core.engine.create_plan("e1", "meal_delivery", "c_near", (3, 5), "11:30", actor="operator:o")
    with pytest.raises(InvalidInput) as past:
        await core.engine.create_plan("e1", "meal_delivery", "c_near", (2,), "11:30", actor="operator:o",
                                      first_day="2026-06-01")  # fmt: skip
    assert (twin.value.code, past.value.code) == ("plan_duplicate", "plan_dates")
    assert core.journal.head_seq == head
    await core.engine.create_plan("e1", "meal_delivery", "c_near", (3,), "17:30", actor="operator:o")  # supper


async def test_a_missed_visit_rescheduled_is_watched_again(core: Core, clock: ManualClock) -> None:
    engine = engine_of(core)
    clock.set(at(date(2026, 6, 14), 12))
    plan_id = await core.engine.create_plan("e1", "meal_delivery", "c_near", (1,), "09:00", actor="operator:o")
    monday = planned(engine, plan_id)[0]
    await run_until(engine, clock, monday.end + 31 * MINUTE)
    (first,) = engine.state.plans.tasks.values()
    await core.engine.settle_plan_task(first.task_id, outcome="rescheduled", actor="operator:o", note="改到下午")
    later = at(date(2026, 6, 15), 17)
    await core.engine.order_action(monday.order_id, "reschedule", actor="operator:o", start=later, end=later + 1800,
                                   reason="老人上午不在家")  # fmt: skip
    await core.engine.order_action(monday.order_id, "assign", actor="operator:o", responder_id="c_near")
    await run_until(engine, clock, later + 1800 + 29 * MINUTE)
    assert len(engine.state.plans.tasks) == 1  # the new window and its grace are not over
    await run_until(engine, clock, later + 1800 + 31 * MINUTE)
    second = [t for t in engine.state.plans.tasks.values() if t.task_id != first.task_id]
    assert [(t.order_id, t.start) for t in second] == [(monday.order_id, later)]  # nobody came at 17:00 either
    await run_until(engine, clock, at(date(2026, 6, 16), 12))
    assert len(engine.state.plans.tasks) == 2  # once per window


async def test_a_missed_visit_raises_one_task_and_a_checked_in_one_none(core: Core, clock: ManualClock) -> None:
    engine = engine_of(core)
    clock.set(at(date(2026, 6, 14), 12))
    plan_id = await core.engine.create_plan("e1", "meal_delivery", "c_near", (1, 2), "09:00", actor="operator:o")
    monday, tuesday = planned(engine, plan_id)
    assert engine.state.timers.deadline(("plans", monday.order_id)) == monday.end + 30 * MINUTE
    await run_until(engine, clock, monday.end + 29 * MINUTE)
    assert engine.state.plans.tasks == {}  # within the grace: not missed yet
    await run_until(engine, clock, monday.end + 31 * MINUTE)
    (task,) = engine.state.plans.tasks.values()
    assert (task.order_id, task.plan_id, task.elder_id, task.responder_id) == (monday.order_id, plan_id, "e1", "c_near")
    assert (task.start, task.end, task.open) == (monday.start, monday.end, True)
    clock.set(at(date(2026, 6, 16), 9, 5))  # Tuesday: the caregiver checks in
    await core.engine.order_action(tuesday.order_id, "start", actor="caregiver:c_near", caregiver="c_near")
    await run_until(engine, clock, at(date(2026, 6, 17), 12))
    engine.state.timers.set(("plans", monday.order_id), clock.now())  # checked again: still one task
    await engine.tick()
    assert list(engine.state.plans.tasks) == [task.task_id]
    views = core.views.plan_tasks(ALL)
    assert [t["order_id"] for t in views] == [monday.order_id]
    assert views[0]["elder_name"] == "王秀英" and views[0]["responder_name"] == "护理员c_near"
    await core.engine.settle_plan_task(task.task_id, outcome="elder_away", note="老人去女儿家了", actor="operator:o")
    assert core.views.plan_tasks(ALL) == []
    (settled,) = core.views.plan_tasks(ALL, state="settled")
    assert (settled["outcome"], settled["settled_by"]) == ("elder_away", "operator:o")
    assert settled["note"] == "老人去女儿家了"
    with pytest.raises(Conflict) as again:
        await core.engine.settle_plan_task(task.task_id, outcome="other", actor="operator:o")
    assert again.value.code == "plan_task_settled"


async def test_a_rescheduled_visit_is_missed_by_its_new_window(core: Core, clock: ManualClock) -> None:
    engine = engine_of(core)
    clock.set(at(date(2026, 6, 14), 12))
    plan_id = await core.engine.create_plan("e1", "meal_delivery", "c_near", (1,), "09:00", actor="operator:o")
    (monday,) = planned(engine, plan_id)
    later = at(date(2026, 6, 15), 15)
    await core.engine.order_action(monday.order_id, "reschedule", actor="operator:o", start=later,
                                   end=later + 30 * MINUTE, reason="老人上午去医院")  # fmt: skip
    await run_until(engine, clock, at(date(2026, 6, 15), 12))
    assert engine.state.plans.tasks == {}
    await run_until(engine, clock, later + 61 * MINUTE)
    assert [t.order_id for t in engine.state.plans.tasks.values()] == [monday.order_id]


async def test_an_ended_plan_stops_and_cancels_what_it_planned(core: Core, clock: ManualClock) -> None:
    engine = engine_of(core)
    clock.set(at(date(2026, 6, 14), 12))
    plan_id = await core.engine.create_plan("e1", "meal_delivery", "c_near", MON_WED_FRI, "09:00", actor="operator:o")
    with pytest.raises(InvalidInput) as past:
        await core.engine.end_plan(plan_id, actor="operator:o", last_day="2026-06-13")
    assert past.value.code == "plan_end_day"
    await core.engine.end_plan(plan_id, actor="operator:o", last_day="2026-06-16", reason="老人住院")
    orders = planned(engine, plan_id)
    assert [o.state for o in orders] == [OrderState.ASSIGNED, OrderState.CANCELLED, OrderState.CANCELLED]
    await run_until(engine, clock, at(date(2026, 7, 14), 12))
    assert len(planned(engine, plan_id)) == 3  # nothing after its end
    view = core.views.plan(plan_id, ALL)
    assert (view["state"], view["active"], view["last_day"], view["end_reason"]) == ("ended", False, "2026-06-16",
                                                                                     "老人住院")  # fmt: skip
    assert core.views.plans(ALL, active=True) == []
    with pytest.raises(Conflict) as twice:
        await core.engine.end_plan(plan_id, actor="operator:o")
    assert twice.value.code == "plan_ended"


async def test_a_plan_is_checked_whole_before_anything_is_written(core: Core, clock: ManualClock) -> None:
    engine = engine_of(core)
    head = engine.journal.head_seq
    cases = [
        (dict(item_id="no_such"), "unknown_service_item"),
        (dict(elder_id="nobody"), "unknown_elder"),
        (dict(responder_id="k1"), "unknown_responder"),  # a clinic
        (dict(responder_id="c_comfort"), "responder_lacks_skill"),
        (dict(weekdays=()), "plan_weekdays"),
        (dict(weekdays=(0, 8)), "plan_weekdays"),
        (dict(at="9:00"), "plan_time"),
        (dict(at="24:00"), "plan_time"),
        (dict(first_day="2026-02-30"), "plan_dates"),
        (dict(first_day="2026-07-01", last_day="2026-06-30"), "plan_dates"),
    ]
    for change, code in cases:
        fields: dict[str, object] = dict(elder_id="e1", item_id="meal_delivery", responder_id="c_near",
                                         weekdays=(1,), at="09:00")  # fmt: skip
        fields.update(change)
        with pytest.raises((InvalidInput, NotFound)) as refused:
            await core.engine.create_plan(
                str(fields.pop("elder_id")), str(fields.pop("item_id")), str(fields.pop("responder_id")),
                fields.pop("weekdays"), str(fields.pop("at")), actor="operator:o", **fields,  # type: ignore[arg-type]
            )  # fmt: skip
        assert refused.value.code == code, change
    assert engine.journal.head_seq == head


async def test_an_off_duty_caregiver_is_assigned_ahead_and_the_price_is_the_elders(
    core: Core, clock: ManualClock
) -> None:
    engine = engine_of(core)
    clock.set(at(date(2026, 6, 14), 12))
    assert not engine.state.responder("c_own").on_duty
    plan_id = await core.engine.create_plan("e2", "meal_delivery", "c_own", (1,), "11:30", actor="operator:o",
                                            place="社区食堂")  # fmt: skip
    (order,) = planned(engine, plan_id)
    assert (order.state, order.responder_id, order.place) == (OrderState.ASSIGNED, "c_own", "社区食堂")
    assert order.mode == "paid" and order.price_fen == 1500  # e2 has no entitlement recorded: paid
    view = core.views.plan(plan_id, ALL)
    assert [o["order_id"] for o in view["orders"]] == [order.order_id]
    assert (view["weekdays"], view["at"], view["minutes"], view["responder_name"]) == ([1], "11:30", 30,
                                                                                       "护理员c_own")  # fmt: skip


async def test_plans_are_seen_only_in_reach(core: Core, clock: ManualClock) -> None:
    clock.set(at(date(2026, 6, 14), 12))
    plan_id = await core.engine.create_plan("e1", "meal_delivery", "c_near", (1,), "09:00", actor="operator:o")
    elsewhere = Reach(("龙文区/朝阳街道",))
    assert core.views.plans(elsewhere) == []
    with pytest.raises(NotFound) as hidden:
        core.views.plan(plan_id, elsewhere)
    assert hidden.value.code == "unknown_plan"
    assert [p["plan_id"] for p in core.views.plans(ALL, elder="e1", active=True)] == [plan_id]
    entries = await core.journal.read(0, 10_000)
    created = next(e for e in entries if e.kind == "plan.created")
    assert core.views.entry_scope(created).place == "龙文区/蓝田街道/蓝田社区"
