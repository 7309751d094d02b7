"""Night duty and handover (值班与交接班) in the core, on a manual clock: starting a shift, its log, the handover's
summary (open incidents, open orders, follow-ups due, the shift's alarms and calls), taking over, one open shift
per scope, the table, and a replay that gives the same shifts."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from dispatch.clock import ManualClock
from dispatch.core import Core
from dispatch.duty import TRANSITIONS, ShiftEvent, ShiftState, shift_kind, shift_next
from dispatch.entries import DutyHandedOver
from dispatch.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from dispatch.scopes import ALL, Reach
from dispatch.state import Projection
from tests.conftest import COMMUNITY, engine_of, hotline, raise_alarm
from tests.dispatch.test_followups import SHANGHAI, _closed_incident

HOUR = 3600.0
STREET = COMMUNITY.rsplit("/", 1)[0]
NIGHT = datetime(2026, 6, 1, 20, 0, tzinfo=SHANGHAI).timestamp()


@pytest.fixture
def night(clock: ManualClock) -> ManualClock:
    clock.set(NIGHT)
    return clock


def test_the_table_and_the_kind_of_shift() -> None:
    assert shift_next(ShiftState.ON_DUTY, ShiftEvent.LOG) is ShiftState.ON_DUTY
    assert shift_next(ShiftState.ON_DUTY, ShiftEvent.HAND_OVER) is ShiftState.HANDED_OVER
    assert shift_next(ShiftState.HANDED_OVER, ShiftEvent.TAKE_OVER) is ShiftState.TAKEN_OVER
    for event in ShiftEvent:
        assert (ShiftState.TAKEN_OVER, event) not in TRANSITIONS
        with pytest.raises(IllegalTransition):
            shift_next(ShiftState.TAKEN_OVER, event)
    with pytest.raises(IllegalTransition):
        shift_next(ShiftState.HANDED_OVER, ShiftEvent.LOG)
    at = lambda hour: datetime(2026, 6, 1, hour, 30, tzinfo=SHANGHAI).timestamp()  # noqa: E731
    kind = lambda ts, day=8, night=20: shift_kind(ts, day_hour=day, night_hour=night, tz="Asia/Shanghai")  # noqa: E731
    assert [kind(at(h)) for h in (7, 8, 19, 20, 23, 0)] == ["night", "day", "day", "night", "night", "night"]
    # 07:30 in Shanghai is 23:30 UTC the day before: the local hour decides
    assert kind(at(7), 6, 18) == "day"
    assert [kind(at(h), 22, 6) for h in (23, 3, 12)] == ["day", "day", "night"]  # a day that runs past midnight


def test_the_drawing_in_the_docs_is_the_table() -> None:
    """docs/service-desk.md draws the shift's table; self-loops (logging) are in the table, not drawn."""
    text = (Path(__file__).parents[2] / "docs" / "service-desk.md").read_text(encoding="utf-8")
    section = text[text.index("## Night duty and handover") :]
    drawing = section[section.index("```mermaid") : section.index("```", section.index("```mermaid") + 3)]
    drawn = set(re.findall(r"^    (\w+) --> (\w+): (\w+)$", drawing, re.M))
    table = {(a.value, b.value, e.value) for (a, e), b in TRANSITIONS.items() if a is not b}
    assert drawn == table


async def test_a_night_shift_is_logged_handed_over_and_taken_over(core: Core, night: ManualClock) -> None:
    engine = core.engine
    shift_id = await engine.start_duty(STREET, actor="operator:li")
    duty = core.views.duty(STREET, ALL)
    shift = duty["shift"]
    assert (shift["shift_id"], shift["scope"], shift["kind"]) == (shift_id, STREET, "night")
    assert shift["state"] == "on_duty"
    assert (shift["operator"], shift["started_at"]) == ("operator:li", NIGHT)

    night.advance(HOUR)  # 21:00: an SOS, resolved and closed; a fall still open; a call
    await _closed_incident(core)
    open_fall, _ = await raise_alarm(core, "fall", actor="device", source="device", elder_id="e2")
    await hotline(core, "ringing", call_id="c-1", caller="13505960001", line="12349", actor="cti")
    night.advance(HOUR)
    await engine.log_duty(STREET, "  22:00 巡查设备，e2 家属已联系  ", actor="operator:li")
    await engine.log_duty(STREET, "21:10 王秀英按错了按钮", actor="operator:li", at=NIGHT + HOUR + 600)
    summary = core.views.duty(STREET, ALL)["summary"]
    assert (summary["alarms"], summary["calls"], summary["opened"], summary["closed"]) == (2, 1, 2, 1)
    assert summary["open_incidents"] == 1 and summary["log_lines"] == 2

    night.set(datetime(2026, 6, 2, 10, 30, tzinfo=SHANGHAI).timestamp())  # the next morning: the follow-up is due
    await engine.hand_over_duty(STREET, "e2 的跌倒仍在处理，请跟进", actor="operator:li")
    handed = core.views.duty(STREET, ALL)["shift"]
    assert handed["state"] == "handed_over" and not handed["acknowledged"]
    assert [line["text"] for line in handed["log"]] == ["21:10 王秀英按错了按钮", "22:00 巡查设备，e2 家属已联系"]
    snap = handed["summary"]
    assert (snap["since"], snap["until"]) == (NIGHT, night.now())
    assert snap["open_incidents"] == 1
    (line,) = snap["incidents"]
    assert (line["incident_id"], line["alarm_type"]) == (open_fall.incident_id, "fall")
    assert line["age_s"] == round(night.now() - open_fall.opened_at)
    assert snap["follow_ups_due"] == 1 and snap["follow_ups"][0]["elder_id"] == "e1"
    assert (snap["alarms"], snap["calls"], snap["log_lines"]) == (2, 1, 2)
    assert handed["words"] == "e2 的跌倒仍在处理，请跟进"

    night.advance(600)
    next_id = await engine.take_over_duty(STREET, "未见 e2 家属联系记录", actor="operator:zhao", kind="day")
    duty = core.views.duty(STREET, ALL)
    mine = duty["shift"]
    assert (mine["shift_id"], mine["operator"], mine["kind"]) == (next_id, "operator:zhao", "day")
    assert duty["shift"]["after"] == shift_id and duty["shift"]["log"] == []
    (newest, older) = core.views.duty_history(ALL)
    assert newest["shift_id"] == next_id
    assert (older["state"], older["acknowledged"], older["taken_over_by"]) == ("taken_over", True, "operator:zhao")
    assert older["disputed"] and older["next_shift_id"] == next_id
    assert older["summary"] == snap  # the sheet shows what was handed over, not today's desk


async def test_one_shift_per_scope_and_who_may_do_what(core: Core, night: ManualClock) -> None:
    engine = core.engine
    with pytest.raises(Conflict) as nobody:
        await engine.log_duty(STREET, "x", actor="operator:li")
    assert nobody.value.code == "duty_not_started"
    with pytest.raises(Conflict) as nothing:
        await engine.take_over_duty(STREET, actor="operator:zhao")
    assert nothing.value.code == "duty_nothing_to_take_over"
    await engine.start_duty(STREET, actor="operator:li")
    await engine.start_duty(COMMUNITY, actor="operator:wu")  # a community under the street: a scope of its own
    with pytest.raises(Conflict) as taken:
        await engine.start_duty(STREET, actor="operator:zhao")
    assert taken.value.code == "duty_open"
    with pytest.raises(Conflict) as early:
        await engine.take_over_duty(STREET, actor="operator:zhao")
    assert early.value.code == "duty_not_handed_over"
    with pytest.raises(Conflict) as not_yours:
        await engine.hand_over_duty(STREET, actor="operator:zhao")
    assert not_yours.value.code == "duty_not_yours"
    with pytest.raises(InvalidInput) as blank:
        await engine.log_duty(STREET, " \u200b ", actor="operator:li")
    assert blank.value.code == "note_required"
    with pytest.raises(InvalidInput) as before:
        await engine.log_duty(STREET, "x", actor="operator:li", at=NIGHT - 60)
    assert before.value.code == "duty_log_time"
    head = core.journal.head_seq
    with pytest.raises(InvalidInput):
        await engine.log_duty(STREET, "x", actor="operator:li", at=NIGHT + 60)  # the future
    assert core.journal.head_seq == head  # refused: nothing written

    await engine.hand_over_duty(STREET, "", actor="supervisor:chen", for_others=True)  # li went home
    assert core.views.duty(STREET, ALL)["shift"]["handed_over_by"] == "supervisor:chen"
    with pytest.raises(Conflict) as pending:
        await engine.start_duty(STREET, actor="operator:zhao")
    assert pending.value.code == "duty_handover_pending"
    with pytest.raises(Conflict):
        await engine.log_duty(STREET, "x", actor="operator:li")
    await engine.take_over_duty(STREET, actor="operator:zhao")
    assert core.views.duty(COMMUNITY, ALL)["shift"]["operator"] == "operator:wu"  # untouched


async def test_a_summary_holds_only_its_scope_and_reach_decides_what_is_seen(core: Core, night: ManualClock) -> None:
    await core.engine.start_duty(STREET, actor="operator:li")
    await raise_alarm(core, "sos", actor="device", source="device", elder_id="e1")
    other = core.views.duty_summary("龙文区/朝阳街道", NIGHT, night.now())  # nobody of the little city lives there
    assert (other.open_incidents, other.alarms) == (0, 0)
    for scope in ("*", "龙文区", STREET, COMMUNITY):
        mine = core.views.duty(scope, ALL)["summary"]
        assert (mine["open_incidents"], mine["alarms"]) == (1, 1), scope
    street = Reach((STREET,))
    assert core.views.duty(None, street)["scope"] == STREET  # the reader's own scope by default
    assert core.views.duty(COMMUNITY, street)["shift"] is None  # within their reach: a scope of its own
    for outside in ("*", "龙文区"):
        with pytest.raises(NotFound):
            core.views.duty(outside, street)
    for unknown in ("龙文区/朝阳街道", "a//b"):  # not a part of the registered network
        with pytest.raises(NotFound):
            core.views.duty(unknown, ALL)
    assert [s["scope"] for s in core.views.duty_history(street)] == [STREET]
    assert core.views.duty_history(Reach((COMMUNITY,))) == []  # a street's shift is not a community's to see
    assert core.views.duty_history(Reach(("龙文区/朝阳街道",))) == []


async def test_a_replay_gives_the_same_shifts(core: Core, night: ManualClock) -> None:
    engine = core.engine
    await engine.start_duty(STREET, actor="operator:li")
    await raise_alarm(core, "fall", actor="device", source="device", elder_id="e2")
    await engine.log_duty(STREET, "跌倒已派单", actor="operator:li")
    night.advance(8 * HOUR)
    await engine.hand_over_duty(STREET, "跟进 e2", actor="operator:li")
    await engine.take_over_duty(STREET, actor="operator:zhao")
    await engine.log_duty(STREET, "接班", actor="operator:zhao")
    before = engine_of(core).state.duty
    replayed = Projection(position_stale_s=core.settings.position_stale_s)
    async for entry in core.journal.replay():
        replayed.apply(entry)
    assert replayed.duty == before
    assert [s.state for s in replayed.duty.shifts.values()] == [ShiftState.TAKEN_OVER, ShiftState.ON_DUTY]


async def test_a_handover_is_stored_whole(core: Core, night: ManualClock) -> None:
    """The summary nested in ``duty.handed_over`` comes back from the record as it went in."""
    await core.engine.start_duty(STREET, actor="operator:li")
    await raise_alarm(core, "fall", actor="device", source="device", elder_id="e2")
    await core.engine.hand_over_duty(STREET, "交班", actor="operator:li")
    stored = [entry async for entry in core.journal.replay() if entry.kind == "duty.handed_over"]
    (entry,) = stored
    assert isinstance(entry.fact, DutyHandedOver)
    shift = engine_of(core).state.duty.current(STREET)
    assert shift is not None and entry.fact.summary == shift.summary
    assert entry.fact.summary.incidents[0].alarm_type == "fall"
