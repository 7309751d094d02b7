"""The engine on a real SQLite journal and a manual clock: intake, offers, timers, operator actions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dispatch.clock import ManualClock
from dispatch.core import Core, open_core
from dispatch.entries import NeedsManual, Ranked
from dispatch.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from dispatch.machines import AssignmentState, IncidentState
from tests.conftest import engine_of, hotline, on_duty, raise_alarm


async def kinds(core: Core, after: int = 0) -> list[str]:
    return [e.kind for e in await core.journal.read(after, 10_000)]


async def test_alarm_opens_incident_and_offers_nearest_with_skill(core: Core) -> None:
    await on_duty(core, "c_near", "c_mid", "c_far", "c_comfort")
    start = core.journal.head_seq
    incident, attached = await raise_alarm(core, "sos", actor="operator:o", source="api", elder_id="e1")
    assert not attached
    assert incident.state is IncidentState.DISPATCHING
    assert await kinds(core, start) == ["incident.opened", "incident.ranked", "offer.made"]
    ranking = [c.responder_id for c in incident.ranking]
    assert ranking[:3] == ["c_near", "c_mid", "c_far"]
    assert "c_comfort" not in ranking  # nearest of all, but without the skill
    (offer,) = engine_of(core).state.active_assignments(incident)
    assert offer.responder_id == "c_near"
    assert offer.deadline == core.clock.now() + 45


async def test_offer_expiry_moves_on_then_flags_manual_dispatch(core: Core, clock: ManualClock) -> None:
    core.settings.max_offers = 2
    await on_duty(core, "c_near", "c_mid", "c_far")
    incident, _ = await raise_alarm(core, "sos", actor="operator:o", source="api", elder_id="e1")
    offered = []
    for _ in range(2):
        (offer,) = engine_of(core).state.active_assignments(incident)
        offered.append(offer.responder_id)
        clock.advance(44.9)
        await engine_of(core).tick()
        assert offer.state is AssignmentState.OFFERED  # not yet
        clock.advance(0.1)
        await engine_of(core).tick()
        assert offer.state is AssignmentState.EXPIRED
    assert offered == ["c_near", "c_mid"]
    flagged = [e.fact for e in await core.journal.read(0, 1000) if isinstance(e.fact, NeedsManual)]
    assert flagged == [NeedsManual("2 offers declined or expired", waiting=True)]
    # in front of the operators and in the backlog: c_far was never asked and is offered it at once
    # (tests/dispatch/test_backlog.py)
    (again,) = engine_of(core).state.active_assignments(incident)
    assert again.responder_id == "c_far" and not incident.needs_manual
    assert all(engine_of(core).state.available(r, clock.now()) for r in ("c_near", "c_mid"))


async def test_no_candidate_flags_manual_dispatch_at_once(core: Core) -> None:
    incident, _ = await raise_alarm(core, "fall", actor="operator:o", source="api", elder_id="e1")
    assert incident.needs_manual
    assert "no free responder with skill nursing" in (incident.manual_reason or "")


async def test_decline_offers_the_next_candidate(core: Core) -> None:
    await on_duty(core, "c_near", "c_mid")
    incident, _ = await raise_alarm(core, "sos", actor="operator:o", source="api", elder_id="e1")
    (first,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(first.assignment_id, "c_near", False, reason="on another call")
    (second,) = engine_of(core).state.active_assignments(incident)
    assert (first.state, second.responder_id) == (AssignmentState.DECLINED, "c_mid")


async def test_a_roster_taking_someone_off_duty_withdraws_their_offer_but_never_ends_a_job(core: Core) -> None:
    await on_duty(core, "c_near", "c_mid", "c_far")
    incident, _ = await raise_alarm(core, "sos", actor="operator:o", source="api", elder_id="e1")
    (offer,) = engine_of(core).state.active_assignments(incident)
    assert offer.responder_id == "c_near"
    changed = await core.engine.set_roster([("c_near", False, None, None)], actor="supervisor:s")
    (moved,) = engine_of(core).state.active_assignments(incident)
    assert changed == 1 and offer.state is AssignmentState.WITHDRAWN and moved.responder_id == "c_mid"
    await core.engine.reply_offer(moved.assignment_id, "c_mid", True)
    with pytest.raises(Conflict) as on_job:  # the whole roster is refused, nothing written
        await core.engine.set_roster([("c_far", False, None, None), ("c_mid", False, None, None)], actor="s")
    assert on_job.value.code == "responder_on_job"
    assert engine_of(core).state.responders["c_far"].on_duty


async def test_unacknowledged_alarm_escalates_to_supervisors_once(core: Core, clock: ManualClock) -> None:
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    clock.advance(59)
    await engine_of(core).tick()
    assert not incident.supervisor_alerted
    clock.advance(1)
    await engine_of(core).tick()
    assert incident.supervisor_alerted
    clock.advance(600)
    await engine_of(core).tick()
    assert (await kinds(core)).count("incident.unanswered") == 1


async def test_acknowledged_alarm_does_not_escalate(core: Core, clock: ManualClock) -> None:
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    await core.engine.acknowledge(incident.incident_id, actor="operator:o")
    clock.advance(120)
    await engine_of(core).tick()
    assert not incident.supervisor_alerted
    with pytest.raises(Conflict):
        await core.engine.acknowledge(incident.incident_id, actor="operator:p")


async def test_accept_then_done_proposes_frees_and_the_operator_resolves(core: Core) -> None:
    await on_duty(core, "c_near")
    incident, _ = await raise_alarm(core, "sos", actor="operator:o", source="api", elder_id="e1")
    (offer,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(offer.assignment_id, "c_near", True)
    assert incident.state is IncidentState.ASSIGNED
    await core.engine.report_status(offer.assignment_id, "c_near", "en_route")
    await core.engine.report_status(offer.assignment_id, "c_near", "on_scene", "已到门口")
    assert incident.state is IncidentState.ON_SCENE
    await core.engine.report_status(offer.assignment_id, "c_near", "done", "老人情况稳定")
    assert incident.state is IncidentState.ON_SCENE  # the caregiver proposes, the operator decides
    assert incident.proposal is not None and incident.proposal.text == "老人情况稳定"
    assert [n.text for n in incident.notes if n.actor == "caregiver:c_near"] == ["已到门口", "老人情况稳定"]
    assert engine_of(core).state.available("c_near", core.clock.now())
    await core.engine.resolve(incident.incident_id, "老人情况稳定", actor="operator:o")
    await core.engine.close(incident.incident_id, actor="operator:o")
    assert incident.state is IncidentState.CLOSED
    with pytest.raises(IllegalTransition):
        await core.engine.report_status(offer.assignment_id, "c_near", "done")


async def test_responder_never_holds_two_offers(core: Core) -> None:
    await on_duty(core, "c_near")
    first, _ = await raise_alarm(core, "sos", actor="operator:o", source="api", elder_id="e1")
    second, _ = await raise_alarm(core, "sos", actor="operator:o", source="api", elder_id="e2")
    assert [a.responder_id for a in engine_of(core).state.active_assignments(first)] == ["c_near"]
    assert not engine_of(core).state.active_assignments(second)
    assert second.needs_manual
    with pytest.raises(Conflict):
        await core.engine.dispatch(second.incident_id, "c_near", actor="operator:o")


async def test_own_caregiver_is_offered_first_when_close(core: Core) -> None:
    await on_duty(core, "c_own", "c_far")
    incident, _ = await raise_alarm(core, "sos", actor="operator:o", source="api", elder_id="e2")
    assert incident.ranking[0].responder_id == "c_own"
    assert incident.ranking[0].own
    (offer,) = engine_of(core).state.active_assignments(incident)
    assert offer.responder_id == "c_own"


async def test_medical_alarm_proposes_a_green_channel_clinic(core: Core) -> None:
    await on_duty(core, "c_near")
    incident, _ = await raise_alarm(core, "medical", actor="operator:o", source="api", elder_id="e1")
    assert incident.clinic is not None
    assert incident.clinic is not None and incident.clinic.clinic_id == "k1"
    assert incident.priority == 1


async def test_a_second_alarm_from_the_same_elder_joins_the_open_incident(core: Core) -> None:
    first, _ = await raise_alarm(core, "inactivity", actor="device:d", source="api", elder_id="e1")
    assert first.priority == 2
    second, attached = await raise_alarm(core, "fall", actor="device:d", source="api", elder_id="e1")
    assert attached and second is first
    assert (first.priority, first.alarm_type, len(first.alarms)) == (1, "fall", 2)


async def test_technical_alarms_stay_apart_from_the_person_incident(core: Core) -> None:
    person, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    technical, attached = await raise_alarm(core, "low_battery", actor="device:d", source="api", elder_id="e1")
    assert not attached and technical is not person
    assert technical.technical and technical.priority == 4 and not technical.ranking


async def test_operator_actions(core: Core) -> None:
    await on_duty(core, "c_near", "c_mid")
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    iid = incident.incident_id
    await core.engine.note(iid, "老人说按错了", actor="operator:o")
    await core.engine.dispatch(iid, "c_mid", actor="operator:o")  # override the automatic offer
    offers = {a.responder_id: a.state for a in map(engine_of(core).state.assignments.get, incident.assignments) if a}
    assert offers == {"c_near": AssignmentState.WITHDRAWN, "c_mid": AssignmentState.OFFERED}
    with pytest.raises(InvalidInput):
        await core.engine.cancel(iid, "  ", actor="operator:o")
    await core.engine.cancel(iid, "pressed by mistake", actor="operator:o")
    assert incident.state is IncidentState.CANCELLED
    assert not engine_of(core).state.active_assignments(incident)
    with pytest.raises(IllegalTransition):
        await core.engine.escalate(iid, "120", "", actor="operator:o")
    other, _ = await raise_alarm(core, "fire", actor="device:d", source="api", elder_id="e2")
    with pytest.raises(InvalidInput):
        await core.engine.escalate(other.incident_id, "999", "", actor="operator:o")
    await core.engine.escalate(other.incident_id, "119", "smoke reported", actor="operator:o")
    assert other.state is IncidentState.ESCALATED
    with pytest.raises(IllegalTransition):
        await core.engine.resolve(iid, "already cancelled", actor="operator:o")
    await core.engine.resolve(other.incident_id, "fire brigade handled it", actor="operator:o")
    await core.engine.close(other.incident_id, actor="operator:o")
    assert other.state is IncidentState.CLOSED


async def test_refused_commands_write_nothing(core: Core) -> None:
    head = core.journal.head_seq
    with pytest.raises(NotFound) as unknown:
        await raise_alarm(core, "sos", actor="operator:o", source="api", elder_id="nobody")
    assert unknown.value.field == "elder_id"
    with pytest.raises(InvalidInput) as bad_type:
        await raise_alarm(core, "earthquake", actor="operator:o", source="api", elder_id="e1")
    assert bad_type.value.field == "alarm_type"
    with pytest.raises(NotFound):
        await raise_alarm(core, "sos", actor="operator:o", source="api", device_id="no-such-device")
    with pytest.raises(InvalidInput):
        await raise_alarm(core, "sos", actor="operator:o", source="api", elder_id="e1", lat=24.5)
    with pytest.raises(NotFound):
        await core.engine.acknowledge("INC-999", actor="operator:o")
    assert core.journal.head_seq == head


async def test_hotline_known_and_unknown_callers(core: Core) -> None:
    call, incident = await hotline(
        core, "ringing", call_id="c-1", caller="+86 135 0596 0001", line="12349", actor="operator:o"
    )
    assert call.elder_id == "e1" and incident is None
    again, _ = await hotline(core, "ringing", call_id="c-1", caller="13505960001", line="12349", actor="x")
    assert again is call
    _, incident = await hotline(core, "answered", call_id="c-1", caller="13505960001", line="1", actor="x")
    assert incident is None and call.state == "answered" and call.open  # waits for the operator's word
    head = core.journal.head_seq
    await hotline(core, "answered", call_id="c-1", caller="13505960001", line="1", actor="x")
    assert core.journal.head_seq == head  # a repeated webhook writes nothing
    unknown, stranger = await hotline(
        core, "answered", call_id="c-2", caller="0596-1234567", line="12349", actor="operator:o"
    )
    assert unknown.elder_id is None and stranger is None
    await hotline(core, "ended", call_id="c-2", caller="0596-1234567", line="12349", actor="operator:o")
    assert engine_of(core).state.calls["c-2"].state == "ended"
    assert engine_of(core).state.calls["c-2"].open  # ended, but not yet classified


async def test_a_burst_of_alarms_costs_few_commits(core: Core) -> None:
    before = core.journal.commits
    await asyncio.gather(
        *(raise_alarm(core, "test", actor="device:d", source="api", elder_id=eid) for eid in ["e1", "e2"] * 100)
    )
    assert core.journal.commits - before <= 5
    assert (await core.journal.verify()).entries == core.journal.head_seq


async def test_restart_rebuilds_state_and_resumes_timers(tmp_path: Path, core: Core, clock: ManualClock) -> None:
    await on_duty(core, "c_near", "c_mid")
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    iid = incident.incident_id
    (offer,) = engine_of(core).state.active_assignments(incident)
    settings = core.settings
    await core.close()
    clock.advance(50)  # the offer's deadline passed while the server was down
    reopened = await open_core(settings, clock)
    try:
        again = reopened.engine.incident(iid)
        assert again.state is IncidentState.DISPATCHING
        assert reopened.engine.state.assignments[offer.assignment_id].state is AssignmentState.OFFERED
        await reopened.engine.tick()
        assert reopened.engine.state.assignments[offer.assignment_id].state is AssignmentState.EXPIRED
        (nxt,) = reopened.engine.state.active_assignments(again)
        assert nxt.responder_id == "c_mid"
        clock.advance(10)
        await reopened.engine.tick()
        assert again.supervisor_alerted  # the 60 s answer timer also survived the restart
    finally:
        await reopened.close()
    core_again = await open_core(settings, clock)  # the fixture closes whatever it yielded; reopen for it
    await core_again.close()
    core.lock.acquire()  # keep the fixture's close() balanced


async def test_an_operator_can_reassign_after_acceptance(core: Core) -> None:
    await on_duty(core, "c_near", "c_mid")
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    (first,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(first.assignment_id, "c_near", True)
    await core.engine.report_status(first.assignment_id, "c_near", "en_route")
    assert incident.state is IncidentState.ASSIGNED
    await core.engine.dispatch(incident.incident_id, "c_mid", actor="operator:o", replace=True)  # the bike broke down
    assert first.state is AssignmentState.WITHDRAWN
    assert incident.state is IncidentState.DISPATCHING
    (second,) = engine_of(core).state.active_assignments(incident)
    assert second.responder_id == "c_mid"
    assert engine_of(core).state.available("c_near", core.clock.now())  # free for the next job


async def test_a_late_accept_on_a_closed_incident_is_refused_and_restart_is_safe(core: Core) -> None:
    await on_duty(core, "c_near")
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    (offer,) = engine_of(core).state.active_assignments(incident)
    await core.engine.escalate(incident.incident_id, "120", "ambulance called", actor="operator:o")
    await core.engine.close(incident.incident_id, actor="operator:o")
    assert offer.state is AssignmentState.WITHDRAWN  # closing withdrew the pending offer
    assert engine_of(core).state.available("c_near", core.clock.now())
    with pytest.raises(Conflict):
        await core.engine.reply_offer(offer.assignment_id, "c_near", True)  # the phone was a second late
    settings, clock = core.settings, core.clock
    await core.close()
    reopened = await open_core(settings, clock)  # every entry written still applies on replay
    assert reopened.engine.incident(incident.incident_id).state is IncidentState.CLOSED
    await reopened.close()
    core.lock.acquire()  # the fixture closes the core it yielded


async def test_an_escalation_to_supervisors_is_not_repeated_after_a_restart(core: Core, clock: ManualClock) -> None:
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    clock.advance(61)
    await engine_of(core).tick()
    settings = core.settings
    await core.close()
    reopened = await open_core(settings, clock)
    await reopened.engine.tick()
    kinds = [e.kind for e in await reopened.journal.read(0, 1000) if e.incident_id == incident.incident_id]
    assert kinds.count("incident.unanswered") == 1
    await reopened.close()
    core.lock.acquire()


async def test_a_more_urgent_alarm_of_another_kind_is_ranked_again(core: Core) -> None:
    engine_of(core).settings.parallel_slack_s = 3600.0  # the second offer at once, however far behind
    await on_duty(core, "c_near", "c_mid", "c_far")
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    assert incident.ranking
    (first,) = engine_of(core).state.active_assignments(incident)
    await raise_alarm(core, "medical", actor="device:d", source="api", elder_id="e1")
    assert (incident.alarm_type, incident.priority) == ("medical", 1)
    # the old ranking (no skill asked) is dropped; priority 1 is offered to two at once, so the second offer
    # goes out at once, from a ranking for the new type's skill, with a clinic
    (_, second) = engine_of(core).state.active_assignments(incident)
    assert first.responder_id != second.responder_id and second.responder_id in {
        c.responder_id for c in incident.ranking
    }
    ranked = [e for e in await core.journal.read(0, 1000) if e.kind == "incident.ranked"]
    last = ranked[-1].fact
    assert isinstance(last, Ranked) and last.skill == "nursing" and last.clinic is not None


async def test_a_missed_hotline_call_still_opens_an_incident(core: Core) -> None:
    await hotline(core, "ringing", call_id="m-1", caller="13505960001", line="12349", actor="cti")
    call, incident = await hotline(core, "ended", call_id="m-1", caller="13505960001", line="12349", actor="cti")
    assert incident is not None and incident.elder_id == "e1" and incident.call_id == "m-1"
    assert call.incident_id == incident.incident_id
    assert incident.notes[0].text.startswith("missed hotline call")
    head = core.journal.head_seq
    await hotline(core, "ended", call_id="m-1", caller="13505960001", line="12349", actor="cti")
    assert core.journal.head_seq == head  # a repeated webhook writes nothing


async def test_two_admins_editing_one_record_are_applied_one_after_the_other(core: Core) -> None:
    """Each edit is compared with what the one before it left: the store, the directory and the record agree."""
    original = engine_of(core).directory.devices["1234"]
    longer = original.model_copy(update={"checkin_s": 900})
    await asyncio.gather(
        core.engine.put_device(longer, actor="admin:a"), core.engine.put_device(original, actor="admin:b")
    )
    stored = await engine_of(core).registry.get_device("1234")
    assert stored == engine_of(core).directory.devices["1234"] == original
    saved = [e.fact for e in await core.journal.read(0, 1000) if e.kind == "registry.device"]
    assert [(f.changed, f.fields) for f in saved] == [(True, ("checkin_s",)), (True, ("checkin_s",))]  # type: ignore[attr-defined]
