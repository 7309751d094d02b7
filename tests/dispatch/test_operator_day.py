"""The operator's day in the core: calls classified, incidents by hand and placed, actions that cannot hurt."""

from __future__ import annotations

import pytest

from dispatch.clock import ManualClock
from dispatch.commands import Classification
from dispatch.core import Core, open_core
from dispatch.errors import Conflict, InvalidInput, NotFound
from dispatch.machines import AssignmentState, IncidentState
from dispatch.scopes import ALL
from dispatch.state import Incident
from tests.conftest import engine_of, hotline, on_duty, raise_alarm

KNOWN = "13505960001"  # e1's phone
STRANGER = "0596-1234567"


async def answered(core: Core, call_id: str, caller: str = KNOWN, words: str = "") -> None:
    await hotline(core, "ringing", call_id=call_id, caller=caller, line="12349", actor="cti")
    await hotline(core, "answered", call_id=call_id, caller=caller, line="12349", actor="cti", words=words)


def incident_of(core: Core, call_id: str) -> Incident | None:
    call = engine_of(core).state.calls[call_id]
    return engine_of(core).state.incidents.get(call.incident_id or "")


async def test_a_call_classified_as_a_fall_opens_an_incident_and_offers_it(core: Core) -> None:
    await on_duty(core, "c_near")
    await answered(core, "k-1", words="按1：紧急求助")
    assert incident_of(core, "k-1") is None
    assert core.views.call("k-1", ALL)["words"] == "按1：紧急求助"  # what the telephony knew of the caller
    outcome = await core.engine.classify_call(
        Classification("k-1", "emergency", "operator:o", text="在卫生间摔倒，起不来", alarm_type="fall")
    )
    incident = incident_of(core, "k-1")
    assert incident is not None and outcome.incident_id == incident.incident_id and outcome.kind == "emergency"
    assert (incident.elder_id, incident.alarm_type, incident.source) == ("e1", "fall", "hotline")
    assert [a.responder_id for a in engine_of(core).state.active_assignments(incident)] == ["c_near"]
    assert any(n.text == "在卫生间摔倒，起不来" and n.shared for n in incident.notes)
    assert engine_of(core).state.calls["k-1"].open  # still talking
    await hotline(core, "ended", call_id="k-1", caller=KNOWN, line="12349", actor="cti")
    assert not engine_of(core).state.calls["k-1"].open


@pytest.mark.parametrize("kind", ["consultation", "service", "complaint", "wrong_number"])
async def test_a_call_that_is_not_an_emergency_opens_nothing(core: Core, kind: str) -> None:
    await on_duty(core, "c_near")
    await answered(core, "q-1")
    before = len(engine_of(core).state.incidents)
    await core.engine.classify_call(Classification("q-1", kind, "operator:o", text="问助餐点的开放时间"))  # type: ignore[arg-type]
    assert len(engine_of(core).state.incidents) == before
    assert engine_of(core).state.responders["c_near"].assignment_id is None
    call = engine_of(core).state.calls["q-1"]
    assert (call.kind, call.text, call.incident_id) == (kind, "问助餐点的开放时间", None)
    with pytest.raises(Conflict) as refused:
        await core.engine.classify_call(Classification("q-1", "emergency", "operator:o", alarm_type="fall"))
    assert refused.value.code == "call_already_classified"


async def test_a_silent_call_leaves_a_call_back_task(core: Core) -> None:
    await answered(core, "s-1")
    await hotline(core, "ended", call_id="s-1", caller=KNOWN, line="12349", actor="cti")
    await core.engine.classify_call(Classification("s-1", "silent", "operator:o"))
    call = engine_of(core).state.calls["s-1"]
    assert call.callback == "due" and call.open
    with pytest.raises(InvalidInput):
        await core.engine.called_back("s-1", "  ", actor="operator:o")
    await core.engine.called_back("s-1", "回拨无人接听，已通知家属", actor="operator:o")
    assert call.callback == "done" and not call.open
    with pytest.raises(Conflict) as again:
        await core.engine.called_back("s-1", "again", actor="operator:o")
    assert again.value.code == "no_callback_due"


async def test_an_emergency_needs_its_type_and_an_unknown_call_is_refused(core: Core) -> None:
    await answered(core, "t-1")
    head = core.journal.head_seq
    with pytest.raises(InvalidInput) as untyped:
        await core.engine.classify_call(Classification("t-1", "emergency", "operator:o"))
    assert untyped.value.code == "call_needs_alarm_type"
    with pytest.raises(NotFound) as unknown:
        await core.engine.classify_call(Classification("nope", "consultation", "operator:o"))
    assert unknown.value.code == "unknown_call"
    assert core.journal.head_seq == head


async def test_a_call_can_be_linked_to_the_open_incident(core: Core) -> None:
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    await answered(core, "l-1")
    await core.engine.classify_call(
        Classification(
            "l-1", "emergency", "operator:o", text="女儿来电：妈妈按了呼叫器", incident_id=incident.incident_id
        )
    )
    assert incident_of(core, "l-1") is incident
    assert incident.acknowledged_by == "operator:o"  # on the line about it: answered
    assert incident.notes[-1].text.endswith("女儿来电：妈妈按了呼叫器") and incident.notes[-1].shared


async def test_an_unknown_caller_waits_for_a_place_then_is_offered(core: Core) -> None:
    await on_duty(core, "c_near")
    await answered(core, "u-1", STRANGER)
    await core.engine.classify_call(Classification("u-1", "emergency", "operator:o", alarm_type="medical"))
    incident = incident_of(core, "u-1")
    assert incident is not None and incident.elder_id is None
    assert incident.needs_manual and incident.manual_reason == "location unknown"
    since = incident.state_since
    core.clock.advance(30)  # type: ignore[attr-defined]
    await core.engine.locate(incident.incident_id, 24.5101, 117.7001, by="address", actor="operator:o")
    assert (incident.location, incident.needs_manual) == ("address", False)
    assert [a.responder_id for a in engine_of(core).state.active_assignments(incident)] == ["c_near"]
    assert incident.state is IncidentState.DISPATCHING and incident.state_since == since + 30


async def test_a_caller_placed_while_classifying_is_offered_at_once(core: Core) -> None:
    await on_duty(core, "c_near")
    await answered(core, "u-2", STRANGER)
    await core.engine.classify_call(
        Classification(
            "u-2",
            "emergency",
            "operator:o",
            alarm_type="fall",
            lat=24.5101,
            lon=117.7001,
            placed_by="address",
            address="蓝田社区1号楼",
        )
    )
    incident = incident_of(core, "u-2")
    assert incident is not None and incident.location == "address" and not incident.needs_manual
    assert engine_of(core).state.active_assignments(incident)


async def test_an_incident_by_hand_for_an_elder_and_for_a_stranger(core: Core) -> None:
    await on_duty(core, "c_near", "c_mid", "c_far")  # a fall is offered to two at once
    mine, attached = await raise_alarm(core, "fall", actor="operator:o", source="operator", elder_id="e1")
    assert not attached and mine.location == "home" and engine_of(core).state.active_assignments(mine)
    stranger, _ = await raise_alarm(
        core, "medical", actor="operator:o", source="operator", caller=STRANGER, lat=24.512, lon=117.7,
        placed_by="map",
    )  # fmt: skip
    assert stranger.elder_id is None and stranger.location == "map" and stranger.notes[0].text == f"caller {STRANGER}"
    assert engine_of(core).state.active_assignments(stranger)
    nowhere, _ = await raise_alarm(core, "fall", actor="operator:o", source="operator", caller=STRANGER)
    assert nowhere.needs_manual and nowhere.manual_reason == "location unknown"
    with pytest.raises(InvalidInput) as nobody:  # only operators may open an incident for nobody known
        await raise_alarm(core, "fall", actor="operator:o", source="api")
    assert nobody.value.code == "alarm_needs_elder"


async def on_scene(core: Core, responder_id: str = "c_near") -> Incident:
    await on_duty(core, responder_id)
    incident, _ = await raise_alarm(core, "fall", actor="device:d", source="api", elder_id="e1")
    (offer,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(offer.assignment_id, responder_id, True)
    await core.engine.report_status(offer.assignment_id, responder_id, "on_scene")
    return incident


async def test_replacing_a_caregiver_on_scene_needs_confirmation(core: Core) -> None:
    incident = await on_scene(core)
    await on_duty(core, "c_mid")
    head = core.journal.head_seq
    with pytest.raises(Conflict) as refused:
        await core.engine.dispatch(incident.incident_id, "c_mid", actor="operator:o")
    assert refused.value.code == "replace_needs_confirmation"
    assert refused.value.params == {"responder": "护理员c_near", "state": "on_scene", "incident": incident.incident_id}
    assert core.journal.head_seq == head and incident.state is IncidentState.ON_SCENE
    await core.engine.dispatch(incident.incident_id, "c_mid", actor="operator:o", replace=True)
    states = {a.responder_id: a.state for a in map(engine_of(core).state.assignments.get, incident.assignments) if a}
    assert states == {"c_near": AssignmentState.WITHDRAWN, "c_mid": AssignmentState.OFFERED}


async def test_a_busy_responder_is_refused_by_name(core: Core) -> None:
    busy = await on_scene(core)
    other, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e2")
    with pytest.raises(Conflict) as refused:
        await core.engine.dispatch(other.incident_id, "c_near", actor="operator:o")
    assert refused.value.code == "responder_busy"
    assert refused.value.params["responder"] == "护理员c_near"
    assert refused.value.params["incident"] == busy.incident_id


async def test_done_with_a_hospital_note_leaves_120_and_another_visit_open(core: Core) -> None:
    incident = await on_scene(core)
    (job,) = engine_of(core).state.active_assignments(incident)
    await core.engine.report_status(job.assignment_id, "c_near", "done", "疑似骨折，建议送医")
    assert incident.open and incident.proposal is not None and incident.proposal.text == "疑似骨折，建议送医"
    await on_duty(core, "c_mid")
    await core.engine.dispatch(incident.incident_id, "c_mid", actor="operator:o")  # another visit: nobody to replace
    assert incident.state is IncidentState.DISPATCHING
    await core.engine.escalate(incident.incident_id, "120", "疑似骨折", actor="operator:o")
    assert incident.state is IncidentState.ESCALATED and incident.escalated_to == "120"


async def test_shared_notes_reach_the_caregivers_job(core: Core) -> None:
    incident = await on_scene(core)
    await core.engine.note(incident.incident_id, "老人在卫生间，门锁密码 1234#", actor="operator:o", shared=True)
    await core.engine.note(incident.incident_id, "家属说老人易激动", actor="operator:o")
    with pytest.raises(InvalidInput) as empty:
        await core.engine.note(incident.incident_id, "   ", actor="operator:o")
    assert empty.value.code == "note_required"
    (update,) = core.views.job_updates(incident.incident_id)
    responder_id, job = update
    assert responder_id == "c_near" and job["type"] == "job"
    assert [n["text"] for n in job["notes"]] == ["老人在卫生间，门锁密码 1234#"]
    assert job["centre_phone"] == "12349"
    view = core.views.incident(incident.incident_id, ALL)
    assert view["notes"][-1]["actor_name"] == "o"


async def test_the_view_names_what_may_be_done(core: Core) -> None:
    incident = await on_scene(core)
    view = core.views.incident(incident.incident_id, ALL)
    assert "replace" in view["actions"] and "dispatch" not in view["actions"]
    assert {"escalate", "resolve", "cancel", "note", "locate"} <= set(view["actions"])
    assert "close" not in view["actions"]
    await core.engine.resolve(incident.incident_id, "已处理", actor="operator:o")
    assert core.views.incident(incident.incident_id, ALL)["actions"] == ["close"]


async def test_a_call_is_classified_once_answered_and_never_across_drill_and_real(core: Core) -> None:
    await hotline(core, "ringing", call_id="r-1", caller=KNOWN, line="12349", actor="cti")
    with pytest.raises(Conflict) as ringing:
        await core.engine.classify_call(Classification("r-1", "consultation", "operator:o"))
    assert ringing.value.code == "call_not_answered"
    real, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    await hotline(core, "ringing", call_id="d-1", caller=KNOWN, line="12349", actor="cti", drill=True)
    await hotline(core, "answered", call_id="d-1", caller=KNOWN, line="12349", actor="cti", drill=True)
    head = core.journal.head_seq
    with pytest.raises(Conflict) as crossed:
        link = Classification("d-1", "emergency", "operator:o", text="演练", incident_id=real.incident_id)
        await core.engine.classify_call(link)
    assert crossed.value.code == "drill_mismatch" and core.journal.head_seq == head


async def test_a_note_of_invisible_characters_is_no_note(core: Core) -> None:
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    for blank in ("\u200b", "\x00", " \u3000 ", "\u202e\ufeff"):
        with pytest.raises(InvalidInput):
            await core.engine.note(incident.incident_id, blank, actor="operator:o", shared=True)
    await core.engine.note(incident.incident_id, "门没锁", actor="operator:o", shared=True)
    assert [n.text for n in incident.notes] == ["门没锁"]


async def test_an_alarm_after_the_visit_sends_someone_again_and_a_restart_does_not(
    core: Core, clock: ManualClock
) -> None:
    incident = await on_scene(core)
    iid = incident.incident_id
    (job,) = engine_of(core).state.active_assignments(incident)
    await core.engine.report_status(job.assignment_id, "c_near", "done", "老人情况稳定")
    settings = core.settings
    await core.close()
    reopened = await open_core(settings, clock)  # a restart: the decision stays the operator's, nobody is sent
    reopened.intake.start()
    try:
        incident = engine_of(reopened).state.incidents[iid]
        assert not engine_of(reopened).state.active_assignments(incident)
        assert incident.state is IncidentState.ON_SCENE and incident.proposal is not None
        await on_duty(reopened, "c_mid")
        again, attached = await raise_alarm(reopened, "sos", actor="device:d", source="api", elder_id="e1")
        assert attached and again is incident  # the elder pressed again after the visit: someone else is sent
        assert [a.responder_id for a in engine_of(reopened).state.active_assignments(incident)] == ["c_mid"]
    finally:
        await reopened.close()
    await (await open_core(settings, clock)).close()  # the fixture closes whatever it yielded: reopen for it
    core.lock.acquire()  # keep the fixture's close() balanced


async def test_the_callers_words_typed_by_hand_reach_the_caregiver(core: Core) -> None:
    await on_duty(core, "c_near")
    incident, _ = await raise_alarm(
        core, "fall", actor="operator:o", source="operator", caller=STRANGER, lat=24.5101, lon=117.7, placed_by="map",
        note="邻居来电：老人在楼道摔倒",
    )  # fmt: skip
    assert incident.acknowledged_by == "operator:o"  # the operator who opened it answered it
    (offer,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(offer.assignment_id, "c_near", True)
    (update,) = core.views.job_updates(incident.incident_id)
    job = update[1]
    assert job["caller"] == STRANGER and job["notes"][0]["text"] == f"caller {STRANGER}\n邻居来电：老人在楼道摔倒"


async def test_a_call_that_is_a_fall_is_retyped_and_offered_to_a_nurse(core: Core) -> None:
    await on_duty(core, "c_own")  # life care only
    incident, _ = await raise_alarm(core, "call", actor="device:d", source="api", elder_id="e1")
    (offer,) = engine_of(core).state.active_assignments(incident)
    await core.engine.reply_offer(offer.assignment_id, "c_own", False)
    assert incident.needs_manual
    await on_duty(core, "c_near")  # a nurse comes on duty
    await core.engine.retype(incident.incident_id, "fall", actor="operator:o")
    assert (incident.alarm_type, incident.priority, incident.needs_manual) == ("fall", 1, False)
    assert [a.responder_id for a in engine_of(core).state.active_assignments(incident)] == ["c_near"]
    with pytest.raises(Conflict) as technical:
        await core.engine.retype(incident.incident_id, "low_battery", actor="operator:o")
    assert technical.value.code == "cannot_retype"
    assert "retype" in core.views.incident(incident.incident_id, ALL)["actions"]


async def test_a_responder_declining_after_the_hand_over_to_120_is_flagged(core: Core) -> None:
    await on_duty(core, "c_near")
    incident, _ = await raise_alarm(core, "medical", actor="device:d", source="api", elder_id="e1")
    await core.engine.escalate(incident.incident_id, "120", "说话不清", actor="operator:o")
    (offer,) = engine_of(core).state.active_assignments(incident)  # still offered: someone with the key
    await core.engine.reply_offer(offer.assignment_id, "c_near", False)
    assert incident.needs_manual and incident.state is IncidentState.ESCALATED
    await core.engine.close(incident.incident_id, actor="operator:o")
    assert not incident.needs_manual  # a closed incident waits for nobody
