"""The wider circle's last rings (dispatch.family): volunteers on call, then the elder's family in calling order.
On a real SQLite journal and a manual clock. The city: e1 at the centre, whose contacts are 李明 (son, with an
account), 李红 (daughter, none) and 李强 (son, with an account); a nurse 7.8 km away (only the wider circle
reaches her); volunteers on call 220 m and 1.1 km from e1, and one 4.4 km away (beyond on_call_radius_m)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dispatch.clock import ManualClock
from dispatch.core import Core, open_core
from dispatch.entries import ContactNotified, ElderViewed, OfferMade
from dispatch.family import LogChannel, is_kin, kin_contact, kin_id
from dispatch.machines import AssignmentState, IncidentState
from dispatch.scopes import ALL
from dispatch.state import Incident
from tests.conftest import elder, engine_of, on_duty, raise_alarm, responder, seed, settings_for

SON, DAUGHTER, YOUNGER = "13800000001", "13800000002", "13800000003"
KIN_SON, KIN_DAUGHTER, KIN_YOUNGER = (kin_id("e1", p) for p in (SON, DAUGHTER, YOUNGER))


def contacts() -> list[dict[str, object]]:
    return [
        {"name": "李明", "phone": SON, "relation": "儿子", "app": True},
        {"name": "李红", "phone": DAUGHTER, "relation": "女儿"},
        {"name": "李强", "phone": YOUNGER, "relation": "儿子", "app": True},
    ]


async def city(tmp_path: Path, clock: ManualClock, **settings: object) -> Core:
    config = settings_for(tmp_path / "data", **settings)
    await seed(
        config,
        elders=[
            elder("e1", medical_notes="高血压，服用氨氯地平", risk_flags=["living_alone"], contacts=contacts()),
            elder(
                "e2",
                phone="13505960002",
                lat=24.52,
                lon=117.71,
                contacts=[{"name": "张伟", "phone": "13900000009", "relation": "儿子", "app": True}],
            ),
        ],
        responders=[
            responder("far_nurse", 24.5640, 117.7000, travel="car"),  # 6 km, 19 min by car
            responder(
                "v_near", 24.5120, 117.7000, kind="volunteer", skills=["comfort"], on_call=True, phone="13700000001"
            ),
            responder("v_mid", 24.5200, 117.7000, kind="volunteer", skills=["comfort"], on_call=True),
            responder("v_away", 24.5500, 117.7000, kind="volunteer", skills=["comfort"], on_call=True),
            responder("v_not", 24.5105, 117.7000, kind="volunteer", skills=["comfort"]),  # did not opt in
        ],
    )
    core = await open_core(config, clock, protocols=())
    core.intake.start()  # the timers stay in the test's hands
    return core


@pytest.fixture
async def core(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Core]:
    opened = await city(tmp_path, clock)
    yield opened
    await opened.close()


def offers(core: Core, incident: Incident) -> list[tuple[str, str]]:
    """Every offer made for the incident, in order: (responder, by)."""
    state = engine_of(core).state
    return [(state.assignments[a].responder_id, state.assignments[a].by) for a in incident.assignments]


def pending(core: Core, incident: Incident) -> str:
    """The one offer the incident holds now."""
    state = engine_of(core).state
    (offer,) = [a for a in state.active_assignments(incident) if a.state is AssignmentState.OFFERED]
    return offer.assignment_id


async def decline(core: Core, incident: Incident) -> None:
    assignment = engine_of(core).state.assignments[pending(core, incident)]
    await core.engine.reply_offer(assignment.assignment_id, assignment.responder_id, False, reason="走不开")


async def notified(core: Core) -> list[ContactNotified]:
    return [e.fact for e in await core.journal.read(0, 10_000) if isinstance(e.fact, ContactNotified)]


async def settle() -> None:
    """Let the messages scheduled after the commit go out."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_caregivers_then_wider_then_volunteers_on_call_then_family_in_calling_order(core: Core) -> None:
    await on_duty(core, "far_nurse")
    incident, _ = await raise_alarm(core, "fall", actor="device:d", source="api", elder_id="e1")
    assert offers(core, incident) == [("far_nurse", "auto")]  # the wider circle's nurse first
    await decline(core, incident)
    assert offers(core, incident)[-1] == ("v_near", "on_call")  # nearest of those who opted in, though off duty
    await decline(core, incident)
    assert offers(core, incident)[-1] == ("v_mid", "on_call")  # v_away is beyond on_call_radius_m; v_not never
    await decline(core, incident)
    assert offers(core, incident)[-1] == (KIN_SON, "family")  # then the family, the first in calling order
    await decline(core, incident)
    # the daughter has no account: told by SMS, and the next son is offered it at once (nobody waits on an SMS)
    assert offers(core, incident)[-1] == (KIN_YOUNGER, "family")
    told = [(n.responder_id, n.offered, n.position) for n in await notified(core)]
    assert told == [
        ("v_near", True, 0), ("v_mid", True, 0), (KIN_SON, True, 1), (KIN_DAUGHTER, False, 2), (KIN_YOUNGER, True, 3),
    ]  # fmt: skip
    await decline(core, incident)
    assert incident.needs_manual and incident.waiting  # everyone asked: back to the operators, in the backlog
    assert offers(core, incident) == [
        ("far_nurse", "auto"), ("v_near", "on_call"), ("v_mid", "on_call"), (KIN_SON, "family"),
        (KIN_YOUNGER, "family"),
    ]  # fmt: skip
    assert incident.failed_offers == 1  # the rings do not use up max_offers


async def test_a_family_offer_waits_its_own_time_and_then_moves_on(tmp_path: Path, clock: ManualClock) -> None:
    core = await city(tmp_path, clock, family_offer_timeout_s=120.0)
    try:
        for volunteer in ("v_near", "v_mid", "v_away"):  # nobody else: the family first
            await core.engine.put_responder(
                engine_of(core).directory.responders[volunteer].model_copy(update={"on_call": False}), actor="admin:a"
            )
        incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
        son = engine_of(core).state.assignments[pending(core, incident)]
        assert (son.responder_id, son.deadline - son.offered_at) == (KIN_SON, 120.0)
        clock.advance(45)  # a caregiver's offer would have lapsed here
        await engine_of(core).tick()
        assert son.state is AssignmentState.OFFERED
        clock.advance(75)
        await engine_of(core).tick()
        assert son.state is AssignmentState.EXPIRED
        assert offers(core, incident)[-1] == (KIN_YOUNGER, "family")
    finally:
        await core.close()


async def test_a_family_member_accepts_and_arrives_like_a_caregiver(core: Core) -> None:
    incident, _ = await raise_alarm(core, "fall", actor="device:d", source="api", elder_id="e1")
    for _ in range(2):  # the two volunteers on call cannot go
        await decline(core, incident)
    assignment_id = pending(core, incident)
    views = engine_of(core).views
    offer = views.hello(KIN_SON)["offer"]
    assert offer["elder_name"] == "王秀英" and offer["centre_phone"] == "12349" and offer["family"]
    await core.engine.reply_offer(assignment_id, KIN_SON, True)
    assert incident.state is IncidentState.ASSIGNED
    entries = await core.journal.read(0, 10_000)
    (viewed,) = [e for e in entries if isinstance(e.fact, ElderViewed)]
    assert isinstance(viewed.fact, ElderViewed) and viewed.fact.what == "job"
    assert viewed.actor == f"family:{KIN_SON}"
    job = views.hello(KIN_SON)["job"]
    assert job["elder"]["address"] and job["elder"]["phone"] == "13505960001" and job["centre_phone"] == "12349"
    # the centre's assessment and the other relatives' numbers stay with the centre
    assert (job["elder"]["medical_notes"], job["elder"]["risk_flags"], job["elder"]["contacts"]) == ("", [], [])
    for status in ("en_route", "on_scene"):
        await core.engine.report_status(assignment_id, KIN_SON, status, note="到了" if status == "on_scene" else "")
    assert incident.state is IncidentState.ON_SCENE
    await core.engine.report_status(assignment_id, KIN_SON, "done", note="妈妈没事，已扶起")
    assert engine_of(core).state.assignments[assignment_id].state is AssignmentState.DONE
    assert incident.proposal is not None and incident.proposal.actor == f"family:{KIN_SON}"
    (made,) = [e.fact for e in entries if isinstance(e.fact, OfferMade) and e.fact.responder_id == KIN_SON]
    assert made.by == "family"
    # the console names who held it
    detail = [a for a in views.incident(incident.incident_id, ALL)["assignments"] if a["responder_id"] == KIN_SON]
    assert detail[0]["responder_name"] == "李明（儿子）"


async def test_the_messages_leave_after_the_commit_and_never_for_a_drill(core: Core) -> None:
    channel = LogChannel()
    engine_of(core).channel = channel
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1", drill=True)
    while any(a.state is AssignmentState.OFFERED for a in engine_of(core).state.active_assignments(incident)):
        await decline(core, incident)
    await settle()
    # a drill never reaches the last rings: no neighbour off duty, no son, is paged for an exercise
    assert await notified(core) == [] and list(channel.sent) == [] and incident.waiting
    assert {by for _, by in offers(core, incident)} <= {"auto"}
    real, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e2")
    while offers(core, real)[-1][1] != "family":  # the volunteers on call near e2 cannot go
        await decline(core, real)
    await settle()
    assert len(channel.sent) == len(offers(core, real)) and channel.sent[-1][0] == "13900000009"  # one each
    text = channel.sent[-1][1]  # e2's son, offered it on the page
    assert "安心手机页" in text and "12349" in text and "王秀英" in text
    assert offers(core, real)[-1] == (kin_id("e2", "13900000009"), "family")


async def test_the_rings_resume_from_the_journal_without_asking_twice(
    core: Core, tmp_path: Path, clock: ManualClock
) -> None:
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    for _ in range(3):
        await decline(core, incident)
    before = await notified(core)
    assert offers(core, incident)[-1] == (KIN_YOUNGER, "family")
    await core.close()
    reopened = await open_core(core.settings, clock, protocols=())
    reopened.intake.start()
    try:
        again = engine_of(reopened).state.incidents[incident.incident_id]
        assert again.contacted == incident.contacted and again.failed_offers == incident.failed_offers
        assert engine_of(reopened).state.ringing == {incident.incident_id}  # the son's offer, pending
        assert await notified(reopened) == before  # nobody is told twice after a restart
        await decline(reopened, again)
        assert again.needs_manual and again.waiting
        await on_duty(reopened, "far_nurse")  # a caregiver free again: the backlog offers it
        assert offers(reopened, again)[-1] == ("far_nurse", "auto")
    finally:
        await reopened.close()
        core.lock.acquire()


def test_a_kin_id_names_one_elder_and_one_contact() -> None:
    e1 = elder("e1", contacts=contacts())
    found = kin_contact({"e1": e1}, kin_id("e1", "+86 138-0000-0002"))
    assert found is not None and found[1].name == "李红" and found[2] == 2
    assert kin_contact({"e1": e1}, kin_id("e1", "13999999999")) is None
    assert kin_contact({"e1": e1}, "c_near") is None and not is_kin("c_near")


async def test_a_caregiver_coming_free_is_offered_it_beside_the_family(core: Core) -> None:
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    for _ in range(2):  # the volunteers on call cannot go: the son holds it
        await decline(core, incident)
    son = pending(core, incident)
    assert engine_of(core).state.ringing == {incident.incident_id}
    await on_duty(core, "far_nurse")  # in the wider circle: offered at once, the son's offer stands
    state = engine_of(core).state
    active = {a.responder_id: a for a in state.active_assignments(incident)}
    assert set(active) == {KIN_SON, "far_nurse"}
    await core.engine.reply_offer(active["far_nurse"].assignment_id, "far_nurse", True)
    assert state.assignments[son].state is AssignmentState.WITHDRAWN  # the nurse took it: the son need not go
    assert not state.ringing and incident.state is IncidentState.ASSIGNED
