"""Care calls (关怀电话) in the core: who is due by flag and by age on the centre's local date, how often, a missed
call retried after the delay, the home visit proposed once after the set misses, a reached call starting again,
drills kept apart, and the same lists after a replay (a manual clock throughout)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatch.carecalls import TRANSITIONS, CareEvent, CareState, care_next, every_days
from dispatch.clock import ManualClock
from dispatch.core import Core, open_core
from dispatch.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from dispatch.scopes import ALL, Reach
from dispatch.state import Projection
from dispatch.views import Views
from tests.conftest import COMMUNITY, elder, engine_of, seed, settings_for

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: 09:00 on 2 March 2026 in Shanghai (01:00 UTC): the morning the lists are read
MORNING = datetime(2026, 3, 2, 9, tzinfo=SHANGHAI).timestamp()
HOUR, DAY = 3600.0, 86400.0
ELSEWHERE = "芗城区/南坑街道/南坑社区"


@pytest.fixture
async def care(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Core]:
    """Elders of every kind: flagged, aged, both, neither, turning 80 tomorrow, and one in another community."""
    clock.set(MORNING)
    settings = settings_for(tmp_path / "data")
    await seed(
        settings,
        elders=[
            elder("alone", name="独居甲", risk_flags=["living_alone"]),
            elder("nest", name="空巢乙", risk_flags=["empty_nest"]),
            elder("old", name="高龄丙", birth_date="1940-01-01"),
            elder("both", name="独居高龄丁", risk_flags=["living_alone"], birth_date="1930-06-01"),
            elder("young", name="无标记戊", risk_flags=["low_income"]),
            elder("turning", name="明天八十", birth_date="1946-03-03"),
            elder("far", name="别处独居", risk_flags=["living_alone"], community=ELSEWHERE),
        ],
    )
    opened = await open_core(settings, clock)
    opened.intake.start()
    yield opened
    await opened.close()


def due(core: Core, day: str = "today", reach: Reach = ALL, drill: bool = False) -> list[str]:
    return [c["elder_id"] for c in core.views.care_calls(reach, day=day, drill=drill)["calls"]]


def line(core: Core, elder_id: str, drill: bool = False) -> dict[str, object]:
    found = core.views.care_call(elder_id, ALL, drill=drill)
    assert found is not None
    return found


def test_the_table() -> None:
    assert care_next(CareState.SCHEDULED, CareEvent.MISSED) is CareState.RETRYING
    assert care_next(CareState.RETRYING, CareEvent.GIVE_UP) is CareState.VISIT
    assert care_next(CareState.VISIT, CareEvent.SETTLE) is CareState.SCHEDULED
    for event in (CareEvent.REACHED, CareEvent.MISSED, CareEvent.GIVE_UP):
        assert (CareState.VISIT, event) not in TRANSITIONS
        with pytest.raises(IllegalTransition):
            care_next(CareState.VISIT, event)
    with pytest.raises(IllegalTransition):
        care_next(CareState.SCHEDULED, CareEvent.GIVE_UP)


async def test_who_is_due_by_flag_and_by_age_on_the_local_date(care: Core, clock: ManualClock) -> None:
    assert set(due(care)) == {"alone", "nest", "old", "both", "far"}
    today = care.views.care_calls(ALL)
    assert today["date"] == "2026-03-02"
    why = {c["elder_id"]: c["reasons"] for c in today["calls"]}
    assert why == {"alone": ["living_alone"], "nest": ["empty_nest"], "old": ["aged"],
                   "both": ["living_alone", "aged"], "far": ["living_alone"]}  # fmt: skip
    # born 3 March 1946: 80 on Shanghai's 3 March, which begins at 16:00 UTC on the 2nd
    assert "turning" in due(care, "2026-03-03")
    clock.set(datetime(2026, 3, 2, 23, 59, tzinfo=SHANGHAI).timestamp())
    assert "turning" not in due(care)
    clock.set(datetime(2026, 3, 3, 0, 1, tzinfo=SHANGHAI).timestamp())
    assert "turning" in due(care)
    with pytest.raises(InvalidInput):
        care.views.care_calls(ALL, day="2026-02-30")


async def test_the_shortest_interval_applies_from_the_last_reached_call(care: Core, clock: ManualClock) -> None:
    assert every_days(["empty_nest", "aged"], care.settings) == 7
    assert every_days(["living_alone", "aged"], care.settings) == 2
    for elder_id in ("alone", "nest", "both"):
        await care.engine.record_care_call(elder_id, reached=True, wellbeing="well", note="都好", actor="operator:o")
    reached = care.views.care_calls(ALL)
    assert {c["elder_id"] for c in reached["done"]} == {"alone", "nest", "both"}
    assert set(due(care)) == {"old", "far"}
    assert line(care, "both")["next_due"] == "2026-03-04" and line(care, "nest")["next_due"] == "2026-03-09"
    assert set(due(care, "2026-03-03")) == {"old", "far", "turning"}
    assert set(due(care, "2026-03-04")) == {"old", "far", "turning", "alone", "both"}  # every 2 days, the shortest
    assert "nest" in due(care, "2026-03-09") and "nest" not in due(care, "2026-03-08")


async def test_a_missed_call_is_retried_after_the_delay(care: Core, clock: ManualClock) -> None:
    await care.engine.record_care_call("alone", reached=False, note="无人接听", actor="operator:o")
    missed = line(care, "alone")
    assert missed["state"] == "retrying" and missed["attempts"] == 1 and missed["last_reached"] is False
    assert missed["retry_at"] == MORNING + 60 * 60 and missed["ready"] is False
    calls = care.views.care_calls(ALL)["calls"]
    assert calls[-1]["elder_id"] == "alone"  # on the list, after those who can be called now
    clock.advance(HOUR)
    assert line(care, "alone")["ready"] is True
    assert due(care)[0] == "alone"  # a retry whose time came goes first


async def test_the_third_miss_proposes_a_visit_once(care: Core, clock: ManualClock) -> None:
    for _ in range(3):
        await care.engine.record_care_call("alone", reached=False, actor="operator:o")
        clock.advance(HOUR)
    (visit,) = care.views.care_visits(ALL)
    assert (visit["elder_id"], visit["attempts"], visit["open"]) == ("alone", 3, True)
    assert "alone" not in due(care)  # the visit replaces the calls until it is settled
    with pytest.raises(Conflict) as refused:
        await care.engine.record_care_call("alone", reached=False, actor="operator:o")
    assert refused.value.code == "care_visit_open"
    kinds = [e.kind async for e in care.journal.replay() if e.kind.startswith("care_call.")]
    assert kinds == ["care_call.made"] * 3 + ["care_call.visit_proposed"]
    await care.engine.settle_care_visit(visit["visit_id"], note="上门看过，老人去女儿家了", actor="operator:o")
    with pytest.raises(Conflict):
        await care.engine.settle_care_visit(visit["visit_id"], note="again", actor="operator:o")
    assert care.views.care_visits(ALL) == []
    assert care.views.care_visits(ALL, state="settled")[0]["note"] == "上门看过，老人去女儿家了"
    settled = line(care, "alone")
    assert settled["state"] == "scheduled" and settled["attempts"] == 0  # the visit was a contact
    assert "alone" not in due(care) and "alone" in due(care, "2026-03-04")


async def test_a_reached_call_starts_again(care: Core, clock: ManualClock) -> None:
    for _ in range(2):
        await care.engine.record_care_call("nest", reached=False, actor="operator:o")
    clock.advance(2 * HOUR)
    await care.engine.record_care_call("nest", reached=True, wellbeing="needs_help", note="想要助浴",
                                       actor="operator:o")  # fmt: skip
    reached = line(care, "nest")
    assert (reached["state"], reached["attempts"], reached["retry_at"]) == ("scheduled", 0, None)
    assert (reached["last_wellbeing"], reached["last_note"]) == ("needs_help", "想要助浴")
    assert care.views.care_visits(ALL) == []  # a reached call resets the count: no visit
    for _ in range(2):  # two more misses later are the first two of a new round
        await care.engine.record_care_call("nest", reached=False, actor="operator:o")
    assert line(care, "nest", drill=False)["attempts"] == 2 and care.views.care_visits(ALL) == []


async def test_bad_attempts_are_refused_and_write_nothing(care: Core) -> None:
    head = care.journal.head_seq
    cases: list[tuple[str, bool, str | None, str]] = [
        ("alone", True, None, "wellbeing_required"),
        ("alone", True, "fine", "wellbeing_required"),
        ("alone", False, "well", "care_call_not_reached"),
        ("young", True, "well", "care_call_not_scheduled"),
        ("nobody", True, "well", "unknown_elder"),
    ]
    for elder_id, reached, wellbeing, code in cases:
        with pytest.raises(InvalidInput) as refused:
            await care.engine.record_care_call(elder_id, reached=reached, wellbeing=wellbeing, actor="operator:o")
        assert refused.value.code == code
    with pytest.raises(NotFound):
        await care.engine.settle_care_visit("CV-0", note="x", actor="operator:o")
    assert care.journal.head_seq == head


async def test_a_long_list_says_how_many_are_due_in_all(care: Core) -> None:
    every = care.views.care_calls(ALL)
    some = care.views.care_calls(ALL, limit=1)
    assert every["due_total"] == len(every["calls"]) >= 2
    assert len(some["calls"]) == 1 and some["due_total"] == every["due_total"]


async def test_a_drill_keeps_to_its_own_list(care: Core) -> None:
    for _ in range(3):
        await care.engine.record_care_call("alone", reached=False, actor="operator:o", drill=True)
    assert line(care, "alone")["attempts"] == 0  # the real record is untouched
    assert "alone" not in due(care, drill=True) and "alone" in due(care)
    (visit,) = care.views.care_visits(ALL)
    assert visit["drill"] is True
    drills = [e.drill async for e in care.journal.replay() if e.kind.startswith("care_call.")]
    assert drills == [True] * 4


async def test_the_lists_are_scoped_by_the_elders_community(care: Core) -> None:
    mine = Reach((COMMUNITY,))
    assert "far" not in due(care, reach=mine) and "alone" in due(care, reach=mine)
    assert due(care, reach=Reach((ELSEWHERE,))) == ["far"]
    with pytest.raises(NotFound):
        care.views.care_call("far", mine)
    for _ in range(3):
        await care.engine.record_care_call("far", reached=False, actor="operator:o")
    assert care.views.care_visits(mine) == []
    (visit,) = care.views.care_visits(ALL)
    with pytest.raises(NotFound):
        care.views.care_visit(visit["visit_id"], mine)


async def test_a_replay_gives_the_same_lists(care: Core, clock: ManualClock) -> None:
    await care.engine.record_care_call("alone", reached=True, wellbeing="unwell", note="感冒", actor="operator:o")
    for _ in range(3):
        await care.engine.record_care_call("nest", reached=False, actor="operator:o")
    await care.engine.record_care_call("old", reached=False, actor="operator:o")
    clock.advance(DAY)
    before = engine_of(care).state.care_calls
    replayed = Projection(position_stale_s=care.settings.position_stale_s)
    async for entry in care.journal.replay():
        replayed.apply(entry)
    assert replayed.care_calls == before
    again = Views(replayed, engine_of(care).directory, clock, care.settings)
    assert again.care_calls(ALL) == care.views.care_calls(ALL)
    assert again.care_visits(ALL, state="all") == care.views.care_visits(ALL, state="all")
