"""Follow-ups (回访) in the core: created as incidents close and services are delivered, due on the centre's next
day at the set hour (a manual clock), attempts and the unreachable close, complaints, the projection a replay
rebuilds and the views by reach."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatch.clock import ManualClock
from dispatch.core import Core
from dispatch.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from dispatch.followups import (
    TRANSITIONS,
    FollowUpEvent,
    FollowUpState,
    due_at,
    end_of_day,
    follow_up_next,
)
from dispatch.scopes import ALL, Reach
from dispatch.state import Projection
from tests.conftest import elder, engine_of, on_duty, raise_alarm

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOUR = 3600.0


def tomorrow_at_ten(now: float) -> float:
    day = datetime.fromtimestamp(now, SHANGHAI).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, 10, tzinfo=SHANGHAI).timestamp()


async def _closed_incident(core: Core, alarm_type: str = "sos", elder_id: str = "e1", cancel: bool = False) -> str:
    incident, _ = await raise_alarm(core, alarm_type, actor="operator:o", source="api", elder_id=elder_id)
    if cancel:
        await core.engine.cancel(incident.incident_id, "按错了", actor="operator:o")
    else:
        await core.engine.resolve(incident.incident_id, "老人无恙", actor="operator:o")
    await core.engine.close(incident.incident_id, actor="operator:o")
    return incident.incident_id


async def _delivered(core: Core, clock: ManualClock, elder_id: str = "e1") -> str:
    await on_duty(core, "c_near")
    now = clock.now()
    order_id = await core.engine.order_service(elder_id, "meal_delivery", now + HOUR, now + 2 * HOUR,
                                               actor="operator:o")  # fmt: skip
    act = core.engine.order_action
    await act(order_id, "schedule", actor="operator:o", start=now + HOUR, end=now + 2 * HOUR)
    await act(order_id, "assign", actor="operator:o", responder_id="c_near")
    await act(order_id, "start", actor="caregiver:c_near", caregiver="c_near")
    await act(order_id, "deliver", actor="caregiver:c_near", caregiver="c_near", note="午餐已送到")
    return order_id


def test_the_table_and_the_due_time() -> None:
    assert follow_up_next(FollowUpState.OPEN, FollowUpEvent.NOT_REACHED) is FollowUpState.OPEN
    for state in (FollowUpState.DONE, FollowUpState.UNREACHABLE):
        for event in FollowUpEvent:
            assert (state, event) not in TRANSITIONS
            with pytest.raises(IllegalTransition):
                follow_up_next(state, event)
    # 23:30 in Shanghai is 15:30 UTC: the next day is Shanghai's, not UTC's
    late = datetime(2026, 3, 1, 23, 30, tzinfo=SHANGHAI).timestamp()
    at = lambda *when: datetime(*when, tzinfo=SHANGHAI).timestamp()  # noqa: E731
    assert due_at(late, after_days=1, hour=10, tz="Asia/Shanghai") == at(2026, 3, 2, 10)
    assert due_at(late, after_days=0, hour=18, tz="Asia/Shanghai") == at(2026, 3, 1, 18)
    assert end_of_day("2026-03-01", late, "Asia/Shanghai") == datetime(2026, 3, 2, tzinfo=SHANGHAI).timestamp()
    assert end_of_day("today", late, "Asia/Shanghai") == datetime(2026, 3, 2, tzinfo=SHANGHAI).timestamp()
    with pytest.raises(InvalidInput):
        end_of_day("2026-02-30", late, "Asia/Shanghai")


async def test_a_closed_incident_is_followed_up_the_next_day_at_ten(core: Core, clock: ManualClock) -> None:
    incident_id = await _closed_incident(core)
    (follow_up,) = core.views.follow_ups(ALL)
    assert (follow_up["kind"], follow_up["subject_id"], follow_up["elder_id"]) == ("incident", incident_id, "e1")
    assert follow_up["due"] == tomorrow_at_ten(clock.now())
    assert datetime.fromtimestamp(follow_up["due"], SHANGHAI).hour == 10
    assert follow_up["state"] == "open" and follow_up["attempts"] == 0
    # due tomorrow: not on today's list, on tomorrow's
    assert core.views.follow_ups(ALL, due_before=core.views.follow_up_day_end("today")) == []
    clock.set(follow_up["due"])
    assert len(core.views.follow_ups(ALL, due_before=core.views.follow_up_day_end("today"))) == 1


async def test_which_incidents_are_followed_up(core: Core) -> None:
    """A false alarm from a pendant is followed up (does the elder understand the device?); a technical
    condition is not (it is about a device); an incident of a caller nobody knows has nobody to call."""
    cancelled = await _closed_incident(core, cancel=True)
    technical = await _closed_incident(core, "low_battery")
    stranger, _ = await raise_alarm(core, "fall", actor="operator:o", source="operator", lat=24.51, lon=117.70,
                                    caller="02100000000")  # fmt: skip
    await core.engine.resolve(stranger.incident_id, "ok", actor="operator:o")
    await core.engine.close(stranger.incident_id, actor="operator:o")
    subjects = [f["subject_id"] for f in core.views.follow_ups(ALL, state="all")]
    assert subjects == [cancelled]
    assert technical not in subjects


async def test_a_delivered_service_is_followed_up_for_its_caregiver(core: Core, clock: ManualClock) -> None:
    order_id = await _delivered(core, clock)
    (follow_up,) = core.views.follow_ups(ALL)
    assert (follow_up["kind"], follow_up["subject_id"], follow_up["responders"]) == ("service", order_id,
                                                                                       ["c_near"])  # fmt: skip
    assert follow_up["due"] == tomorrow_at_ten(clock.now())
    await core.engine.order_action(order_id, "confirm", actor="operator:o")
    assert len(core.views.follow_ups(ALL, state="all")) == 1  # one per order


async def test_not_reached_three_times_closes_it_unreachable_with_a_visit(core: Core) -> None:
    await _closed_incident(core)
    (follow_up,) = core.views.follow_ups(ALL)
    fid = follow_up["follow_up_id"]
    for attempt in (1, 2):
        await core.engine.record_follow_up(fid, reached=False, actor="operator:o", note=f"无人接听 {attempt}")
        view = core.views.follow_up(fid, ALL)
        assert (view["state"], view["attempts"], view["visit_proposed"]) == ("open", attempt, False)
    await core.engine.record_follow_up(fid, reached=False, actor="operator:o")
    view = core.views.follow_up(fid, ALL)
    assert (view["state"], view["attempts"], view["visit_proposed"]) == ("unreachable", 3, True)
    assert core.views.follow_ups(ALL) == [] and len(core.views.follow_ups(ALL, state="done")) == 1
    head = core.journal.head_seq
    with pytest.raises(Conflict) as done:
        await core.engine.record_follow_up(fid, reached=True, satisfaction=5, actor="operator:o")
    assert done.value.code == "follow_up_done" and core.journal.head_seq == head
    kinds = [e.kind for e in await core.journal.read(0, 10_000) if e.kind.startswith("follow_up.")]
    assert kinds == ["follow_up.created", *["follow_up.recorded"] * 3, "follow_up.unreachable"]


async def test_a_complaint_is_a_supervisors_task(core: Core, clock: ManualClock) -> None:
    order_id = await _delivered(core, clock)
    fid = core.views.follow_ups(ALL)[0]["follow_up_id"]
    await core.engine.record_follow_up(fid, reached=True, satisfaction=2, complaint="饭菜是凉的", actor="operator:o")
    (complaint,) = core.views.complaints(ALL)
    assert (complaint["follow_up_id"], complaint["subject_id"], complaint["text"]) == (fid, order_id, "饭菜是凉的")
    assert complaint["responders"] == ["c_near"] and complaint["raised_by"] == "operator:o"
    # supervisors (audit) see it in their community; an operator's reach does not
    community = engine_of(core).directory.elders["e1"].community
    supervisor = Reach((community,), frozenset({"work", "health", "audit"}))
    operator = Reach((community,), frozenset({"work"}))
    elsewhere = Reach(("别处区",), frozenset({"work", "health", "audit"}))
    assert len(core.views.complaints(supervisor)) == 1
    assert core.views.complaints(operator) == core.views.complaints(elsewhere) == []
    entries = await core.journal.read(0, 10_000)
    raised = next(e for e in entries if e.kind == "follow_up.complaint")
    assert core.views.entry_scope(raised).content == "audit"
    assert core.views.evaluations(ALL) == [{"responder_id": "c_near", "name": "护理员c_near", "mean": 2.0, "count": 1}]


async def test_a_supervisor_settles_a_complaint_once(core: Core, clock: ManualClock) -> None:
    await _delivered(core, clock)
    fid = core.views.follow_ups(ALL)[0]["follow_up_id"]
    await core.engine.record_follow_up(fid, reached=True, satisfaction=2, complaint="饭菜是凉的", actor="operator:o")
    (complaint,) = core.views.complaints(ALL)
    cid = complaint["complaint_id"]
    assert complaint["open"] and complaint["resolution"] is None
    head = core.journal.head_seq
    for resolution, error, code in (("  ", InvalidInput, "resolution_required"), ("x", NotFound, "unknown_complaint")):
        with pytest.raises(error) as refused:
            await core.engine.settle_complaint(cid if code != "unknown_complaint" else "CP-0", resolution=resolution,
                                               actor="supervisor:s")  # fmt: skip
        assert refused.value.code == code
    assert core.journal.head_seq == head
    await core.engine.settle_complaint(cid, resolution="换了送餐路线，已向老人道歉", actor="supervisor:s")
    settled = core.views.complaint(cid, ALL)
    assert (settled["open"], settled["resolution"], settled["settled_by"]) == (False, "换了送餐路线，已向老人道歉",
                                                                               "supervisor:s")  # fmt: skip
    with pytest.raises(Conflict) as again:
        await core.engine.settle_complaint(cid, resolution="再次", actor="supervisor:s")
    assert again.value.code == "complaint_settled"
    entries = await core.journal.read(0, 10_000)
    done = next(e for e in entries if e.kind == "follow_up.complaint_settled")
    assert core.views.entry_scope(done).content == "audit"
    replayed = Projection(position_stale_s=core.settings.position_stale_s)
    for entry in entries:
        replayed.apply(entry)
    assert replayed.follow_ups.complaints[cid].resolution == "换了送餐路线，已向老人道歉"


async def test_bad_answers_are_refused_and_write_nothing(core: Core) -> None:
    await _closed_incident(core)
    fid = core.views.follow_ups(ALL)[0]["follow_up_id"]
    head = core.journal.head_seq
    cases = [
        ({"reached": True}, "satisfaction_required"),
        ({"reached": True, "satisfaction": 6}, "satisfaction_required"),
        ({"reached": False, "satisfaction": 3}, "follow_up_not_reached"),
        ({"reached": False, "complaint": "x"}, "follow_up_not_reached"),
    ]
    for details, code in cases:
        with pytest.raises(InvalidInput) as refused:
            await core.engine.record_follow_up(fid, actor="operator:o", **details)  # type: ignore[arg-type]
        assert refused.value.code == code
    with pytest.raises(NotFound) as missing:
        await core.engine.record_follow_up("FU-0", reached=False, actor="operator:o")
    assert missing.value.code == "unknown_follow_up"
    assert core.journal.head_seq == head


async def test_views_are_scoped_by_the_elders_community(core: Core) -> None:
    await core.engine.put_elder(elder("e_far", name="陈桂兰", community="别处区/别处街道/别处社区"), actor="admin:a")
    await _closed_incident(core)
    await _closed_incident(core, elder_id="e_far")
    community = engine_of(core).directory.elders["e1"].community
    mine = Reach((community,))
    listed = core.views.follow_ups(mine)
    assert [f["elder_id"] for f in listed] == ["e1"]
    far = next(f for f in core.views.follow_ups(ALL) if f["elder_id"] == "e_far")
    with pytest.raises(NotFound):
        core.views.follow_up(far["follow_up_id"], mine)


async def test_a_replay_gives_the_same_follow_ups(core: Core, clock: ManualClock) -> None:
    await _closed_incident(core)
    await _delivered(core, clock)
    first, second = (f["follow_up_id"] for f in core.views.follow_ups(ALL))
    await core.engine.record_follow_up(first, reached=False, actor="operator:o")
    await core.engine.record_follow_up(second, reached=True, satisfaction=4, complaint="来晚了", actor="operator:o")
    before = engine_of(core).state.follow_ups
    replayed = Projection(position_stale_s=core.settings.position_stale_s)
    async for entry in core.journal.replay():
        replayed.apply(entry)
    assert replayed.follow_ups == before
    assert [f.state for f in replayed.follow_ups.follow_ups.values()] == [FollowUpState.OPEN, FollowUpState.DONE]
    assert len(replayed.follow_ups.complaints) == 1
