"""Referrals to a clinic's green channel (dispatch.referrals), on a real SQLite journal and a manual clock.

The little city of tests/conftest.py has k1, a clinic open 24 h with a green channel, 1.1 km south of e1; this
module adds k_night (open 20:00-08:00 only), k_plain (no green channel) and k2 (a second green channel)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatch.clock import ManualClock
from dispatch.core import Core, open_core
from dispatch.entries import ReferralCancelled, ReferralExpired, ReferralMade
from dispatch.errors import Conflict, InvalidInput, NotFound
from dispatch.machines import AssignmentState, IncidentState, ReferralState
from dispatch.registry import Responder
from dispatch.scopes import ALL
from dispatch.settings import Settings
from dispatch.state import Projection
from tests.conftest import elder, engine_of, on_duty, raise_alarm, responder, seed, settings_for

#: 10:00 in Zhangzhou: k_night is closed
MORNING = datetime(2030, 3, 4, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


def clinic(clinic_id: str, lat: float, **fields: object) -> Responder:
    made: dict[str, object] = {"kind": "clinic", "skills": [], "hours": "24h", "green_channel": True, **fields}
    return responder(clinic_id, lat, 117.7000, **made)


async def seeded(tmp_path: Path) -> Settings:
    settings = settings_for(tmp_path / "data")
    await seed(
        settings,
        elders=[elder("e1", medical_notes="高血压，服用氨氯地平"), elder("e2", phone="13505960002", lat=24.52)],
        responders=[
            responder("c_near", 24.5110, 117.7000),
            clinic("k1", 24.5000, name="蓝田社区卫生服务中心"),
            clinic("k2", 24.5300, name="朝阳社区卫生服务站"),
            clinic("k_night", 24.5050, name="夜间门诊", hours="20:00-08:00"),
            clinic("k_plain", 24.5060, name="普通诊所", green_channel=False),
        ],
    )
    return settings


@pytest.fixture
async def city(tmp_path: Path) -> AsyncIterator[tuple[Core, ManualClock]]:
    clock = ManualClock(MORNING)
    opened = await open_core(await seeded(tmp_path), clock)
    opened.intake.start()
    yield opened, clock
    await opened.close()


async def fall(core: Core) -> str:
    incident, _ = await raise_alarm(core, "fall", actor="device:d", source="api", elder_id="e1")
    return incident.incident_id


def referral(core: Core, referral_id: str) -> ReferralState:
    return engine_of(core).state.referrals.referrals[referral_id].state


async def test_the_proposed_clinic_is_referred_accepts_and_records_arrival_and_outcome(
    city: tuple[Core, ManualClock],
) -> None:
    core, clock = city
    await on_duty(core, "c_near")
    incident_id = await fall(core)
    assert engine_of(core).state.incidents[incident_id].clinic.clinic_id == "k1"  # type: ignore[union-attr]
    rid = await core.engine.refer(incident_id, "k1", actor="operator:o1", note="髋部疼痛，家属陪同")
    made = [e for e in await core.journal.read(0, 1000) if isinstance(e.fact, ReferralMade)]
    assert len(made) == 1 and made[0].incident_id == incident_id and made[0].actor == "operator:o1"
    assert made[0].fact.proposed and made[0].fact.deadline == MORNING + 180  # type: ignore[attr-defined]
    view = core.views.incident(incident_id, ALL)["referrals"]
    assert [(r["clinic_name"], r["state"], r["note"]) for r in view] == [
        ("蓝田社区卫生服务中心", "referred", "髋部疼痛，家属陪同")
    ]
    (offer,) = engine_of(core).state.active_assignments(engine_of(core).state.incidents[incident_id])
    await core.engine.reply_offer(offer.assignment_id, "c_near", True)  # the caregiver goes to the door too
    clock.advance(30)
    await core.engine.referral_action(rid, "accept", actor="clinic:k1desk", clinic_id="k1", note="绿色通道已准备")
    clock.advance(600)
    await engine_of(core).tick()  # the expiry was cancelled by the answer
    assert referral(core, rid) is ReferralState.ACCEPTED
    await core.engine.referral_action(rid, "arrived", actor="clinic:k1desk", clinic_id="k1")
    await core.engine.referral_action(rid, "outcome", actor="clinic:k1desk", clinic_id="k1", outcome="admitted",
                                      note="收住骨科")  # fmt: skip
    done = engine_of(core).state.referrals.referrals[rid]
    assert (done.state, done.outcome, done.words, done.answered_at) == (
        ReferralState.CONCLUDED,
        "admitted",
        "收住骨科",
        MORNING + 30,
    )
    # beside, not instead: the caregiver's offer is untouched and the incident keeps its own state
    incident = engine_of(core).state.incidents[incident_id]
    assert incident.state is IncidentState.ASSIGNED
    assert [a.state for a in engine_of(core).state.active_assignments(incident)] == [AssignmentState.ACCEPTED]


async def test_an_unanswered_referral_expires_at_its_deadline_and_another_clinic_may_be_referred(
    city: tuple[Core, ManualClock],
) -> None:
    core, clock = city
    incident_id = await fall(core)
    rid = await core.engine.refer(incident_id, "k1", actor="operator:o1")
    with pytest.raises(Conflict) as twice:  # one open referral at a time
        await core.engine.refer(incident_id, "k2", actor="operator:o1")
    assert twice.value.code == "referral_open" and twice.value.params["clinic"] == "蓝田社区卫生服务中心"
    clock.advance(179)
    await engine_of(core).tick()
    assert referral(core, rid) is ReferralState.REFERRED
    clock.advance(1)
    await engine_of(core).tick()
    assert referral(core, rid) is ReferralState.EXPIRED
    expired = [e for e in await core.journal.read(0, 1000) if isinstance(e.fact, ReferralExpired)]
    assert [e.actor for e in expired] == ["system"]
    with pytest.raises(Conflict) as late:
        await core.engine.referral_action(rid, "accept", actor="clinic:k1desk", clinic_id="k1")
    assert late.value.code == "referral_closed" and late.value.params == {"state": "expired"}
    other = await core.engine.refer(incident_id, "k2", actor="operator:o1")
    assert not engine_of(core).state.referrals.referrals[other].proposed
    await core.engine.referral_action(other, "decline", actor="clinic:k2desk", clinic_id="k2", note="无床位")
    assert referral(core, other) is ReferralState.DECLINED


async def test_refusals_write_nothing(city: tuple[Core, ManualClock]) -> None:
    core, _ = city
    incident_id = await fall(core)
    head = core.journal.head_seq
    cases = [("k_night", Conflict, "clinic_closed"), ("k_plain", Conflict, "clinic_no_green_channel"),
             ("c_near", NotFound, "unknown_clinic"), ("nobody", NotFound, "unknown_clinic")]  # fmt: skip
    for clinic_id, kind, code in cases:
        with pytest.raises(kind) as refused:
            await core.engine.refer(incident_id, clinic_id, actor="operator:o1")
        assert refused.value.code == code, clinic_id
    rid = await core.engine.refer(incident_id, "k1", actor="operator:o1")
    head = core.journal.head_seq
    with pytest.raises(NotFound) as other:  # another clinic's referral is as if it did not exist
        await core.engine.referral_action(rid, "accept", actor="clinic:k2desk", clinic_id="k2")
    assert other.value.code == "unknown_referral"
    with pytest.raises(InvalidInput) as early:  # an outcome before the patient arrived: the table says no
        await core.engine.referral_action(rid, "cancel", actor="clinic:k1desk", clinic_id="k1")
    assert early.value.code == "unknown_referral_action"
    with pytest.raises(Conflict):
        await core.engine.referral_action(rid, "outcome", actor="clinic:k1desk", clinic_id="k1", outcome="admitted")
    await core.engine.referral_action(rid, "accept", actor="clinic:k1desk", clinic_id="k1")
    await core.engine.referral_action(rid, "arrived", actor="clinic:k1desk", clinic_id="k1")
    head = core.journal.head_seq
    with pytest.raises(InvalidInput) as unknown:
        await core.engine.referral_action(rid, "outcome", actor="clinic:k1desk", clinic_id="k1", outcome="cured")
    assert unknown.value.code == "referral_outcome"
    assert core.journal.head_seq == head
    await core.engine.resolve(incident_id, "已送医", actor="operator:o1")
    await core.engine.close(incident_id, actor="operator:o1")
    with pytest.raises(Conflict) as closed:
        await core.engine.refer(incident_id, "k2", actor="operator:o1")
    assert closed.value.code == "incident_closed"
    assert core.journal.head_seq == head + 2 + 1  # resolved, closed (and its follow-up): nothing for the refusal
    # the clinic still records what became of the patient after the incident closed (rule 5)
    await core.engine.referral_action(rid, "outcome", actor="clinic:k1desk", clinic_id="k1", outcome="treated_home")
    assert referral(core, rid) is ReferralState.CONCLUDED


async def test_a_false_alarm_cancels_what_the_clinic_was_told_to_expect(city: tuple[Core, ManualClock]) -> None:
    core, _ = city
    incident_id = await fall(core)
    rid = await core.engine.refer(incident_id, "k1", actor="operator:o1")
    await core.engine.referral_action(rid, "accept", actor="clinic:k1desk", clinic_id="k1")
    await core.engine.cancel(incident_id, "误报", actor="operator:o1")
    assert referral(core, rid) is ReferralState.CANCELLED
    cancelled = [e for e in await core.journal.read(0, 1000) if isinstance(e.fact, ReferralCancelled)]
    assert [(e.actor, e.fact.reason) for e in cancelled] == [("operator:o1", "incident cancelled")]  # type: ignore[attr-defined]


async def test_an_operator_cancels_and_the_clinic_sees_only_its_own(city: tuple[Core, ManualClock]) -> None:
    core, _ = city
    incident_id = await fall(core)
    rid = await core.engine.refer(incident_id, "k1", actor="operator:o1")
    mine, shown = core.views.clinic_referrals("k1")
    assert [r["referral_id"] for r in mine] == [rid] and not mine[0]["details"]  # before accepting: no name, no notes
    assert mine[0]["elder_name"] is None and mine[0]["medical_notes"] is None and mine[0]["age"] == 80
    assert "address" not in mine[0] and "phone" not in str(mine[0])
    assert core.views.clinic_referrals("k2") == ([], {})
    await core.engine.referral_action(rid, "accept", actor="clinic:k1desk", clinic_id="k1")
    mine, shown = core.views.clinic_referrals("k1")
    assert (mine[0]["elder_name"], mine[0]["medical_notes"]) == ("王秀英", "高血压，服用氨氯地平")
    assert shown == {rid: "e1"} and mine[0]["details"]
    await core.engine.referral_action(rid, "cancel", actor="operator:o1")
    assert referral(core, rid) is ReferralState.CANCELLED


async def test_a_referral_cancelled_before_the_clinic_answered_shows_it_nothing_more(
    city: tuple[Core, ManualClock],
) -> None:
    core, _ = city
    incident_id = await fall(core)
    rid = await core.engine.refer(incident_id, "k1", actor="operator:o1")
    await core.engine.referral_action(rid, "cancel", actor="operator:o1")
    mine, shown = core.views.clinic_referrals("k1")
    assert mine[0]["state"] == "cancelled" and not mine[0]["details"] and shown == {rid: "e1"}  # the list: a read
    assert mine[0]["elder_name"] is None and mine[0]["medical_notes"] is None


async def test_a_technical_condition_has_nobody_to_refer(city: tuple[Core, ManualClock]) -> None:
    core, _ = city
    incident, _ = await raise_alarm(core, "low_battery", actor="device:d", source="api", elder_id="e1")
    with pytest.raises(Conflict) as refused:
        await core.engine.refer(incident.incident_id, "k1", actor="operator:o1")
    assert refused.value.code == "referral_technical"


async def test_replay_equals_live_and_a_restart_re_arms_the_expiry(tmp_path: Path) -> None:
    clock = ManualClock(MORNING)
    settings = await seeded(tmp_path)
    core = await open_core(settings, clock)
    core.intake.start()
    try:
        first = await fall(core)
        done = await core.engine.refer(first, "k1", actor="operator:o1")
        await core.engine.referral_action(done, "accept", actor="clinic:k1desk", clinic_id="k1")
        await core.engine.referral_action(done, "arrived", actor="clinic:k1desk", clinic_id="k1")
        await core.engine.referral_action(done, "outcome", actor="clinic:k1desk", clinic_id="k1",
                                          outcome="transferred")  # fmt: skip
        incident, _ = await raise_alarm(core, "medical", actor="device:d", source="api", elder_id="e2")
        waiting = await core.engine.refer(incident.incident_id, "k2", actor="operator:o1")
        live = engine_of(core).state
        replayed = Projection(position_stale_s=core.settings.position_stale_s)
        for entry in await core.journal.read(0, 100_000):
            replayed.apply(entry)
        assert replayed.referrals.referrals == live.referrals.referrals
        assert replayed.referrals.by_incident == live.referrals.by_incident
        assert replayed.referrals.by_clinic == live.referrals.by_clinic
        assert replayed.timers.deadline(("referral", waiting)) == MORNING + 180
        assert replayed.timers.deadline(("referral", done)) is None
    finally:
        await core.close()
    clock.advance(500)  # the deadline passed while the server was down: it fires at the first tick
    reopened = await open_core(settings, clock)
    try:
        await engine_of(reopened).tick()
        referrals = engine_of(reopened).state.referrals.referrals
        assert (referrals[waiting].state, referrals[done].state) == (ReferralState.EXPIRED, ReferralState.CONCLUDED)
    finally:
        await reopened.close()
