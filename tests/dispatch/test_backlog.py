"""Someone at the door sooner: the backlog that dispatches itself, parallel offers for priority 1, the wider
circle. On a real SQLite journal and a manual clock (tests/conftest.py's little city: e1 at the centre, c_near
110 m, c_mid 440 m, c_far 1.1 km away, all with nursing; c_comfort nearest with the comfort skill only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dispatch.clock import ManualClock
from dispatch.core import Core, open_core
from dispatch.engine import RING_AGAIN
from dispatch.entries import TAKEN_BY_ANOTHER, TAKEN_OVER, OfferHeld, OfferWithdrawn, Ranked
from dispatch.errors import Conflict
from dispatch.machines import AssignmentState, IncidentState
from tests.conftest import elder, engine_of, on_duty, raise_alarm, responder, seed, settings_for


def offered(core: Core, incident_id: str) -> list[str]:
    state = engine_of(core).state
    incident = state.incidents[incident_id]
    return [a.responder_id for a in state.active_assignments(incident) if a.state is AssignmentState.OFFERED]


async def test_a_waiting_incident_is_offered_the_moment_a_caregiver_comes_on_duty(core: Core) -> None:
    incident, _ = await raise_alarm(core, "fall", actor="device:d", source="api", elder_id="e1")
    assert incident.needs_manual and incident.waiting
    assert engine_of(core).state.backlog == {incident.incident_id}
    await on_duty(core, "c_mid")  # no tick, no operator: the duty change itself offers it
    assert offered(core, incident.incident_id) == ["c_mid"]
    assert not incident.needs_manual and not engine_of(core).state.backlog


async def test_the_most_urgent_waiting_incident_goes_first(core: Core, clock: ManualClock) -> None:
    sos, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e2")
    clock.advance(30)
    fall, _ = await raise_alarm(core, "fall", actor="device:d", source="api", elder_id="e1")
    assert sos.waiting and fall.waiting
    await on_duty(core, "c_far")  # one caregiver for two elders: the fall (priority 1) before the older SOS
    assert (offered(core, fall.incident_id), offered(core, sos.incident_id)) == (["c_far"], [])
    await on_duty(core, "c_mid")  # the next one takes the SOS, and the fall's second parallel slot stays empty
    assert offered(core, sos.incident_id) == ["c_mid"] and offered(core, fall.incident_id) == ["c_far"]


async def test_a_caregiver_back_from_a_job_is_offered_what_waited(core: Core) -> None:
    await on_duty(core, "c_near")
    first, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    (job,) = engine_of(core).state.active_assignments(first)
    await core.engine.reply_offer(job.assignment_id, "c_near", True)
    second, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e2")
    assert second.waiting
    for status in ("en_route", "on_scene", "done"):
        await core.engine.report_status(job.assignment_id, "c_near", status)
    assert offered(core, second.incident_id) == ["c_near"]


async def test_someone_moving_into_range_is_offered_it(core: Core) -> None:
    await on_duty(core, "c_far")
    await core.engine.set_position("c_far", 24.75, 117.70, actor="caregiver:c_far")  # 27 km away
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    assert incident.waiting and offered(core, incident.incident_id) == []
    await core.engine.set_position("c_far", 24.53, 117.70, actor="caregiver:c_far")  # 2 km away
    assert offered(core, incident.incident_id) == ["c_far"]


async def test_an_offer_keeps_ringing_when_nobody_else_could_be_asked(core: Core, clock: ManualClock) -> None:
    await on_duty(core, "c_near")
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    (offer,) = engine_of(core).state.active_assignments(incident)
    clock.advance(45)
    await engine_of(core).tick()  # the time is up, and there is nobody else: it keeps ringing
    held = [e.fact for e in await core.journal.read(0, 1000) if isinstance(e.fact, OfferHeld)]
    assert held == [OfferHeld(offer.assignment_id, "c_near", clock.now() + 45)]
    assert engine_of(core).views.phone_message(held[0])["expires_at"] == clock.now() + 45  # type: ignore[index]
    assert (offer.state, offer.held, incident.needs_manual) == (AssignmentState.OFFERED, 1, False)
    clock.advance(5)
    await core.engine.reply_offer(offer.assignment_id, "c_near", True)  # found the phone after 50 s
    assert incident.state is IncidentState.ASSIGNED


async def test_an_offer_lapses_when_someone_not_yet_asked_is_free(core: Core, clock: ManualClock) -> None:
    await on_duty(core, "c_near", "c_mid")
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    clock.advance(45)
    await engine_of(core).tick()
    assert offered(core, incident.incident_id) == ["c_mid"]
    clock.advance(45)
    await engine_of(core).tick()  # c_mid keeps ringing; c_near, who let it lapse, is free and asked besides
    assert offered(core, incident.incident_id) == ["c_mid", "c_near"]
    mid, near = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(near.assignment_id, "c_near", True)
    assert (mid.state, near.state) == (AssignmentState.WITHDRAWN, AssignmentState.ACCEPTED)
    assert not engine_of(core).state.ringing


async def test_someone_who_comes_free_while_an_offer_keeps_ringing_is_offered_it_too(
    core: Core, clock: ManualClock
) -> None:
    await on_duty(core, "c_far")
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    clock.advance(45)
    await engine_of(core).tick()
    assert offered(core, incident.incident_id) == ["c_far"] and engine_of(core).state.ringing
    await on_duty(core, "c_near")  # no tick: the duty change offers it besides
    assert offered(core, incident.incident_id) == ["c_far", "c_near"]
    far, near = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(far.assignment_id, "c_far", True)  # the first to accept takes it
    assert near.state is AssignmentState.WITHDRAWN and not engine_of(core).state.ringing


async def test_someone_who_declined_is_not_asked_again(core: Core) -> None:
    await on_duty(core, "c_near")
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    (offer,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(offer.assignment_id, "c_near", False, reason="on another call")
    assert incident.waiting and offered(core, incident.incident_id) == []


async def test_an_unanswered_offer_rings_at_most_three_times(core: Core, clock: ManualClock) -> None:
    await on_duty(core, "c_near")
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    for _ in range(1 + RING_AGAIN):
        assert offered(core, incident.incident_id) == ["c_near"]
        clock.advance(45)
        await engine_of(core).tick()
    assert incident.waiting and offered(core, incident.incident_id) == []
    (offer,) = (engine_of(core).state.assignments[i] for i in incident.assignments)
    assert (offer.responder_id, offer.held, offer.state) == ("c_near", RING_AGAIN, AssignmentState.EXPIRED)
    clock.advance(45)
    await engine_of(core).tick()
    await on_duty(core, "c_near")  # back on duty: not asked a fourth time
    assert offered(core, incident.incident_id) == []


async def test_the_backlog_is_rebuilt_from_the_journal(core: Core, tmp_path: Path, clock: ManualClock) -> None:
    incident, _ = await raise_alarm(core, "fall", actor="device:d", source="api", elder_id="e1")
    nowhere, _ = await raise_alarm(core, "fall", actor="operator:o", source="operator", caller="0596-1234567")
    assert nowhere.needs_manual and not nowhere.waiting  # its place is unknown: an operator must place it
    await core.close()
    reopened = await open_core(core.settings, clock, protocols=())
    reopened.intake.start()
    try:
        assert engine_of(reopened).state.backlog == {incident.incident_id}
        await on_duty(reopened, "c_near")
        assert offered(reopened, incident.incident_id) == ["c_near"]
    finally:
        await reopened.close()
        core.lock.acquire()


async def test_an_escalated_incident_leaves_the_backlog(core: Core) -> None:
    incident, _ = await raise_alarm(core, "fall", actor="device:d", source="api", elder_id="e1")
    await core.engine.escalate(incident.incident_id, "120", "ambulance called", actor="operator:o")
    assert not incident.waiting and not engine_of(core).state.backlog
    await on_duty(core, "c_near")
    assert offered(core, incident.incident_id) == []


# -- parallel offers --------------------------------------------------------------------------------------------


def any_slack(core: Core) -> None:
    """The little city's walkers would arrive minutes apart: let the second be offered at once all the same."""
    engine_of(core).settings.parallel_slack_s = 3600.0


async def test_a_priority_1_alarm_is_offered_to_two_and_the_first_accept_wins(core: Core) -> None:
    any_slack(core)
    await on_duty(core, "c_near", "c_mid", "c_far")
    incident, _ = await raise_alarm(core, "fall", actor="device:d", source="api", elder_id="e1")
    assert offered(core, incident.incident_id) == ["c_near", "c_mid"]
    near, mid = engine_of(core).state.active_assignments(incident)
    start = core.journal.head_seq
    await core.engine.reply_offer(mid.assignment_id, "c_mid", True)
    assert (mid.state, near.state, incident.state) == (
        AssignmentState.ACCEPTED, AssignmentState.WITHDRAWN, IncidentState.ASSIGNED,
    )  # fmt: skip
    withdrawn = [e.fact for e in await core.journal.read(start, 100) if e.kind == "offer.withdrawn"]
    assert withdrawn == [OfferWithdrawn(near.assignment_id, "c_near", TAKEN_BY_ANOTHER)]
    assert engine_of(core).views.phone_message(withdrawn[0]) == {  # type: ignore[arg-type]
        "type": "offer_closed", "assignment_id": near.assignment_id, "reason": "taken",
    }  # fmt: skip
    with pytest.raises(Conflict) as late:  # the second accept, a moment later
        await core.engine.reply_offer(near.assignment_id, "c_near", True)
    assert late.value.code == "offer_closed"
    assert engine_of(core).state.available("c_near", core.clock.now())  # free for the next alarm at once
    assert [a.responder_id for a in engine_of(core).state.active_assignments(incident)] == ["c_mid"]


async def test_a_declined_parallel_offer_is_replaced_while_nobody_has_accepted(core: Core) -> None:
    any_slack(core)
    await on_duty(core, "c_near", "c_mid", "c_far")
    incident, _ = await raise_alarm(core, "fall", actor="device:d", source="api", elder_id="e1")
    near, _ = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(near.assignment_id, "c_near", False, reason="busy")
    assert offered(core, incident.incident_id) == ["c_mid", "c_far"]


async def test_a_second_responder_who_would_arrive_much_later_is_not_offered_at_once(core: Core) -> None:
    await on_duty(core, "c_near", "c_mid")  # on foot: 170 s and 500 s away, more than the 120 s slack apart
    incident, _ = await raise_alarm(core, "fall", actor="device:d", source="api", elder_id="e1")
    assert offered(core, incident.incident_id) == ["c_near"]
    (near,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(near.assignment_id, "c_near", False)
    assert offered(core, incident.incident_id) == ["c_mid"]  # alone, it is the best there is


async def test_a_priority_2_alarm_is_offered_to_one_at_a_time(core: Core) -> None:
    await on_duty(core, "c_near", "c_mid", "c_far")
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    assert offered(core, incident.incident_id) == ["c_near"]


# -- the wider circle -------------------------------------------------------------------------------------------


@pytest.fixture
async def sparse(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Core]:
    """One elder; a nurse 6 km away by car (beyond the 5 km match radius, 19 min), a comfort volunteer next door."""
    settings = settings_for(tmp_path / "data")
    await seed(
        settings,
        elders=[elder("e1")],
        responders=[
            responder("far_nurse", 24.5640, 117.7000, travel="car"),
            responder("neighbour", 24.5102, 117.7000, kind="volunteer", skills=["comfort"]),
        ],
    )
    opened = await open_core(settings, clock, protocols=())
    opened.intake.start()  # the timers stay in the test's hands
    yield opened
    await opened.close()


async def ranked(core: Core) -> list[Ranked]:
    return [e.fact for e in await core.journal.read(0, 1000) if isinstance(e.fact, Ranked)]


async def test_the_circle_widens_for_the_skill_first(sparse: Core) -> None:
    await on_duty(sparse, "far_nurse", "neighbour")
    incident, _ = await raise_alarm(sparse, "fall", actor="device:d", source="api", elder_id="e1")
    assert offered(sparse, incident.incident_id) == ["far_nurse"]
    (last,) = await ranked(sparse)
    assert (last.skill, last.radius_m) == ("nursing", 10_000)


async def test_the_wider_circle_takes_nobody_who_would_arrive_too_late(sparse: Core) -> None:
    await sparse.engine.set_duty("far_nurse", True, actor="caregiver:far_nurse", lat=24.59, lon=117.70)  # 31 min
    incident, _ = await raise_alarm(sparse, "medical", actor="device:d", source="api", elder_id="e1")
    assert incident.waiting and offered(sparse, incident.incident_id) == []


async def test_then_anyone_near_skill_or_not(sparse: Core) -> None:
    await on_duty(sparse, "neighbour")
    incident, _ = await raise_alarm(sparse, "fall", actor="device:d", source="api", elder_id="e1")
    assert offered(sparse, incident.incident_id) == ["neighbour"]
    (last,) = await ranked(sparse)
    assert (last.skill, last.radius_m) == (None, 5000)
    assert "lacks skill nursing: nobody with it is free nearer" in last.candidates[0].reasons


async def test_without_unskilled_help_nobody_unskilled_is_asked(tmp_path: Path, clock: ManualClock) -> None:
    settings = settings_for(tmp_path / "data", unskilled_help=False, wider_radii_m=[])
    await seed(settings, elders=[elder("e1")], responders=[
        responder("neighbour", 24.5102, 117.7000, kind="volunteer", skills=["comfort"]),
    ])  # fmt: skip
    core = await open_core(settings, clock, protocols=())
    core.intake.start()
    try:
        await on_duty(core, "neighbour")
        incident, _ = await raise_alarm(core, "fall", actor="device:d", source="api", elder_id="e1")
        assert incident.waiting and incident.manual_reason == "no free responder with skill nursing within 5 km"
    finally:
        await core.close()


async def test_the_backlog_keeps_to_the_circle(sparse: Core) -> None:
    incident, _ = await raise_alarm(sparse, "fall", actor="device:d", source="api", elder_id="e1")
    assert incident.waiting
    assert incident.manual_reason == "no free responder with skill nursing within 10 km, nor anyone within 5 km"
    # one roster, one change: the nurse (with the skill, within the wider circle) before the neighbour
    roster = [("neighbour", True, 24.5102, 117.7000), ("far_nurse", True, 24.5640, 117.7000)]
    await sparse.engine.set_roster(roster, actor="supervisor:s")
    assert offered(sparse, incident.incident_id) == ["far_nurse"]


async def test_someone_who_just_let_an_offer_lapse_is_asked_after_those_at_their_phone(
    core: Core, clock: ManualClock
) -> None:
    await on_duty(core, "c_near", "c_mid")
    first, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    clock.advance(45)
    await engine_of(core).tick()  # c_near does not answer; c_mid is asked and accepts
    (job,) = engine_of(core).state.active_assignments(first)
    await core.engine.reply_offer(job.assignment_id, "c_mid", True)
    await core.engine.cancel(first.incident_id, "误按", actor="operator:o")  # c_mid free again
    clock.advance(10)
    second, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    assert offered(core, second.incident_id) == ["c_mid"]  # c_near is nearer, but was away from the phone just now
    await core.engine.cancel(second.incident_id, "误按", actor="operator:o")
    clock.advance(4 * 45)  # a while later they are back in the first place
    third, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    assert offered(core, third.incident_id) == ["c_near"]


# -- someone nearer takes over ------------------------------------------------------------------------------------


async def test_someone_nearer_who_comes_free_takes_over_from_one_still_on_the_way(core: Core) -> None:
    await on_duty(core, "c_far")  # on foot, 1.1 km: about 19 minutes
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    (far,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(far.assignment_id, "c_far", True)
    await on_duty(core, "c_near")  # 110 m: three minutes, ten and more sooner
    assert offered(core, incident.incident_id) == ["c_near"] and incident.state is IncidentState.ASSIGNED
    _, near = engine_of(core).state.active_assignments(incident)
    start = core.journal.head_seq
    await core.engine.reply_offer(near.assignment_id, "c_near", True)
    assert (far.state, near.state, incident.state) == (
        AssignmentState.WITHDRAWN, AssignmentState.ACCEPTED, IncidentState.ASSIGNED,
    )  # fmt: skip
    withdrawn = [e.fact for e in await core.journal.read(start, 100) if isinstance(e.fact, OfferWithdrawn)]
    assert withdrawn == [OfferWithdrawn(far.assignment_id, "c_far", TAKEN_OVER)]
    assert engine_of(core).views.phone_message(withdrawn[0]) == {
        "type": "offer_closed", "assignment_id": far.assignment_id, "reason": "taken_over",
    }  # fmt: skip
    assert engine_of(core).state.available("c_far", core.clock.now())  # free for the next alarm


async def test_the_one_on_the_way_goes_on_when_the_nearer_one_says_no(core: Core) -> None:
    await on_duty(core, "c_far")
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    (far,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(far.assignment_id, "c_far", True)
    await core.engine.report_status(far.assignment_id, "c_far", "en_route")
    await on_duty(core, "c_near")
    _, near = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(near.assignment_id, "c_near", False, reason="家里有事")
    assert far.state is AssignmentState.EN_ROUTE and incident.state is IncidentState.ASSIGNED
    await core.engine.set_position("c_near", 24.5111, 117.7001, actor="caregiver:c_near")
    assert offered(core, incident.incident_id) == []  # not asked again


async def test_nobody_takes_over_from_one_almost_there_or_at_the_door(core: Core, clock: ManualClock) -> None:
    await on_duty(core, "c_far")
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    (far,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(far.assignment_id, "c_far", True)
    await core.engine.report_status(far.assignment_id, "c_far", "en_route")
    clock.advance(700)  # about 8 minutes left: the one nearer would save less than ten
    await on_duty(core, "c_near")
    assert offered(core, incident.incident_id) == []
    await core.engine.set_duty("c_near", False, actor="caregiver:c_near")
    await core.engine.report_status(far.assignment_id, "c_far", "on_scene")
    await on_duty(core, "c_near")
    assert offered(core, incident.incident_id) == []


async def test_whoever_was_asked_to_take_over_need_not_go_once_someone_is_at_the_door(
    core: Core, clock: ManualClock
) -> None:
    await on_duty(core, "c_far")
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    (far,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(far.assignment_id, "c_far", True)
    await on_duty(core, "c_near")
    _, near = engine_of(core).state.active_assignments(incident)
    await core.engine.report_status(far.assignment_id, "c_far", "on_scene")
    assert near.state is AssignmentState.WITHDRAWN and engine_of(core).state.available("c_near", clock.now())
    clock.advance(45)
    await engine_of(core).tick()  # nothing left ringing, nobody else paged
    assert [a.responder_id for a in engine_of(core).state.active_assignments(incident)] == ["c_far"]


async def test_the_operators_own_choice_is_not_taken_over(core: Core) -> None:
    await core.engine.dispatch(
        (await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1"))[0].incident_id,
        "c_far", actor="operator:o",
    )  # fmt: skip
    (incident,) = [i for i in engine_of(core).state.incidents.values() if i.open]
    (far,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(far.assignment_id, "c_far", True)
    await on_duty(core, "c_near")
    assert offered(core, incident.incident_id) == []


async def test_nobody_without_the_skill_takes_over_from_someone_with_it(core: Core) -> None:
    await on_duty(core, "c_far")
    incident, _ = await raise_alarm(core, "fall", actor="device:d", source="api", elder_id="e1")  # nursing
    (far,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(far.assignment_id, "c_far", True)
    await on_duty(core, "c_comfort")  # nearest, comfort only: may help at the door, not call the nurse back
    assert offered(core, incident.incident_id) == []


async def test_the_way_is_counted_down_from_the_accept_when_nobody_reported_setting_off(
    core: Core, clock: ManualClock
) -> None:
    await on_duty(core, "c_far")  # about 19 minutes on foot
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    (far,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(far.assignment_id, "c_far", True)
    clock.advance(15 * 60)  # never pressed "en route", and four minutes from the door
    await on_duty(core, "c_near")
    assert offered(core, incident.incident_id) == []
