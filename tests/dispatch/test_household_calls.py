"""A call from a number several elders share: it rings with all of them, none chosen; the operator picks whom
it is about, on record; a number of one elder pops them at once, as before. On a real SQLite file, with the
injected clock."""

from __future__ import annotations

import pytest

from dispatch.clock import ManualClock
from dispatch.commands import Classification
from dispatch.core import Core
from dispatch.entries import CallerPicked, CallRinging
from dispatch.errors import Conflict, InvalidInput
from dispatch.registry import Contact
from dispatch.scopes import ALL
from tests.conftest import elder, engine_of, hotline

LANDLINE = "0596-2345678"
DAUGHTER = "13900000001"
HOME = "龙文区蓝田街道蓝田社区3号楼201室"


async def couple(core: Core) -> None:
    """李建国 and his wife 王秀英 on one landline; their daughter is both parents' contact."""
    daughter = [Contact(name="李梅", phone=DAUGHTER, relation="女儿")]
    for elder_id, name, born in (("e_wife", "王秀英", "1952-08-15"), ("e_husband", "李建国", "1948-11-02")):
        record = elder(elder_id, name=name, phone=LANDLINE, birth_date=born, address=HOME, lat=24.515, lon=117.705,
                       contacts=daughter)  # fmt: skip
        await core.engine.put_elder(record, actor="admin")


async def entries_of(core: Core, kind: type) -> list[object]:
    return [e for e in await core.journal.read(0, 10_000) if isinstance(e.fact, kind)]


async def test_a_shared_landline_rings_with_the_whole_household_none_chosen(core: Core) -> None:
    await couple(core)
    call, _ = await hotline(core, "ringing", call_id="h-1", caller="+86 0596 2345678", line="12349", actor="cti")
    assert call.elder_id is None and call.household == ("e_husband", "e_wife")
    [ringing] = await entries_of(core, CallRinging)
    assert ringing.fact == CallRinging("h-1", "+86 0596 2345678", "12349", None, ("e_husband", "e_wife"))  # type: ignore[attr-defined]
    view = core.views.call("h-1", ALL)
    assert view["caller_is"] == "household" and view["elder_id"] is None and view["picked"] is None
    assert view["offered"] == [
        {"elder_id": "e_husband", "name": "李建国", "age": 77, "address": HOME, "relation": None},
        {"elder_id": "e_wife", "name": "王秀英", "age": 73, "address": HOME, "relation": None},
    ]
    assert core.views.call_elders("h-1", ALL) == ["e_husband", "e_wife"]  # the card shows both: both reads


async def test_the_operator_picks_the_wife_on_record_and_the_call_is_about_her(core: Core, clock: ManualClock) -> None:
    await couple(core)
    await hotline(core, "ringing", call_id="h-2", caller=LANDLINE, line="12349", actor="cti")
    await hotline(core, "answered", call_id="h-2", caller=LANDLINE, line="12349", actor="cti")
    clock.advance(12)
    await core.engine.pick_caller("h-2", "e_husband", actor="operator:o")  # misheard
    clock.advance(3)
    outcome = await core.engine.pick_caller("h-2", "e_wife", actor="operator:o")
    assert outcome.elder_id == "e_wife"
    picks = await entries_of(core, CallerPicked)
    assert [(e.fact.elder_id, e.actor, e.ts) for e in picks] == [  # type: ignore[attr-defined]
        ("e_husband", "operator:o", clock.now() - 3),
        ("e_wife", "operator:o", clock.now()),
    ]
    view = core.views.call("h-2", ALL)
    assert (view["elder_id"], view["elder_name"], view["caller_is"]) == ("e_wife", "王秀英", "household")
    assert view["picked"] == {"elder_id": "e_wife", "by": "o", "at": clock.now()}  # the operator, as colleagues say
    assert [o["elder_id"] for o in view["offered"]] == ["e_husband", "e_wife"]  # still offered: a pick can change
    assert core.views.call_elders("h-2", ALL) == ["e_wife"]
    await core.engine.classify_call(Classification("h-2", "emergency", "operator:o", alarm_type="fall"))
    incident = engine_of(core).state.incidents[engine_of(core).state.calls["h-2"].incident_id or ""]
    assert (incident.elder_id, incident.location) == ("e_wife", "home")
    with pytest.raises(Conflict) as refused:
        await core.engine.pick_caller("h-2", "e_husband", actor="operator:o")
    assert refused.value.code == "call_already_classified"


async def test_someone_else_on_the_landline_is_a_pick_too(core: Core) -> None:
    await couple(core)
    await hotline(core, "ringing", call_id="h-3", caller=LANDLINE, line="12349", actor="cti")
    await core.engine.pick_caller("h-3", None, actor="operator:o")  # the carer, say
    view = core.views.call("h-3", ALL)
    assert view["elder_id"] is None and view["picked"]["elder_id"] is None and len(view["offered"]) == 2
    await hotline(core, "answered", call_id="h-3", caller=LANDLINE, line="12349", actor="cti")
    await core.engine.classify_call(Classification("h-3", "consultation", "operator:o", elder_id="e1"))
    assert engine_of(core).state.calls["h-3"].elder_id == "e1"  # identified with the search


async def test_a_pick_names_one_of_the_elders_offered(core: Core) -> None:
    await couple(core)
    await hotline(core, "ringing", call_id="h-4", caller=LANDLINE, line="12349", actor="cti")
    head = core.journal.head_seq
    with pytest.raises(InvalidInput) as refused:
        await core.engine.pick_caller("h-4", "e2", actor="operator:o")
    assert refused.value.code == "elder_not_offered"
    assert core.journal.head_seq == head
    await hotline(core, "ringing", call_id="s-1", caller="13505960001", line="12349", actor="cti")  # e1's own
    head = core.journal.head_seq
    with pytest.raises(Conflict) as nothing:
        await core.engine.pick_caller("s-1", "e1", actor="operator:o")
    assert nothing.value.code == "call_nothing_to_pick"
    assert core.journal.head_seq == head  # refused: nothing written


async def test_a_number_of_one_elder_pops_them_at_once_as_before(core: Core) -> None:
    await couple(core)
    call, _ = await hotline(core, "ringing", call_id="o-1", caller="13505960001", line="12349", actor="cti")
    assert (call.elder_id, call.household) == ("e1", ())
    view = core.views.call("o-1", ALL)
    assert (view["caller_is"], view["elder_name"], view["offered"], view["picked"]) == ("elder", "王秀英", [], None)


async def test_an_elder_no_longer_in_care_leaves_the_other_alone_on_the_landline(core: Core) -> None:
    await couple(core)
    await core.engine.deactivate_elder("e_husband", "care_home", "", actor="admin")
    call, _ = await hotline(core, "ringing", call_id="d-1", caller=LANDLINE, line="12349", actor="cti")
    assert (call.elder_id, call.household) == ("e_wife", ())  # one left: her record pops at once


async def test_a_missed_household_call_opens_at_their_home_with_none_chosen(core: Core) -> None:
    await couple(core)
    await hotline(core, "ringing", call_id="m-1", caller=LANDLINE, line="12349", actor="cti")
    _, incident = await hotline(core, "ended", call_id="m-1", caller=LANDLINE, line="12349", actor="cti")
    assert incident is not None and incident.elder_id is None and incident.caller == LANDLINE
    assert (incident.lat, incident.lon, incident.location, incident.place) == (24.515, 117.705, "home", HOME)
    assert "李建国, 王秀英" in incident.notes[0].text


async def test_a_family_member_of_both_parents_is_asked_about_whom(core: Core) -> None:
    await couple(core)
    await hotline(core, "ringing", call_id="f-1", caller=DAUGHTER, line="12349", actor="cti")
    view = core.views.call("f-1", ALL)
    assert view["caller_is"] == "contact" and view["contact"]["name"] == "李梅"
    assert view["contact"]["elder_id"] is None  # none chosen by the server
    assert [(o["elder_id"], o["relation"]) for o in view["offered"]] == [("e_husband", "女儿"), ("e_wife", "女儿")]
    assert core.views.call_elders("f-1", ALL) == ["e_husband", "e_wife"]
    await core.engine.pick_caller("f-1", "e_wife", actor="operator:o")
    view = core.views.call("f-1", ALL)
    assert view["caller_is"] == "contact"  # still the daughter calling, about her mother
    assert (view["contact"]["elder_id"], view["contact"]["elder_name"]) == ("e_wife", "王秀英")
    assert core.views.call_elders("f-1", ALL) == ["e_wife"]


async def test_a_family_member_of_one_elder_is_as_before(core: Core) -> None:
    son = [Contact(name="张强", phone="13900000002", relation="儿子")]
    await core.engine.put_elder(elder("e9", name="张桂芳", phone=None, contacts=son), actor="admin")
    await hotline(core, "ringing", call_id="f-2", caller="13900000002", line="12349", actor="cti")
    view = core.views.call("f-2", ALL)
    assert (view["caller_is"], view["contact"]["elder_id"], view["offered"]) == ("contact", "e9", [])


async def test_an_emergency_before_anyone_is_picked_is_at_the_landlines_home(core: Core) -> None:
    await couple(core)
    await hotline(core, "ringing", call_id="x-1", caller=LANDLINE, line="12349", actor="cti")
    await hotline(core, "answered", call_id="x-1", caller=LANDLINE, line="12349", actor="cti")
    await core.engine.classify_call(Classification("x-1", "emergency", "operator:o", alarm_type="fall"))
    incident = engine_of(core).state.incidents[engine_of(core).state.calls["x-1"].incident_id or ""]
    assert incident.elder_id is None  # none chosen: the operator did not say who fell
    assert (incident.lat, incident.lon, incident.location, incident.place) == (24.515, 117.705, "home", HOME)


async def elderly_couple(core: Core, wife: dict[str, object] | None = None) -> None:
    """The couple at 85 (the clock's day is in 2026): the landline's household is at risk whoever calls."""
    for elder_id, name, born, more in (("e_wife", "王秀英", "1941-03-02", wife or {}),
                                       ("e_husband", "李建国", "1940-12-01", {})):  # fmt: skip
        record = elder(elder_id, name=name, phone=LANDLINE, birth_date=born, address=HOME, lat=24.515, lon=117.705,
                       **more)  # fmt: skip
        await core.engine.put_elder(record, actor="admin")


async def test_a_missed_household_call_is_as_urgent_as_for_the_most_at_risk_of_them(core: Core) -> None:
    await elderly_couple(core)
    await hotline(core, "ringing", call_id="r-1", caller=LANDLINE, line="12349", actor="cti")
    _, incident = await hotline(core, "ended", call_id="r-1", caller=LANDLINE, line="12349", actor="cti")
    assert incident is not None and incident.elder_id is None
    assert (incident.priority, incident.priority_reasons) == (
        1, ("call: base priority 2", "raised one level for 李建国: aged 85"),  # both 85: the first of them
    )  # fmt: skip


async def test_an_emergency_with_nobody_picked_names_whose_risk_raised_it(core: Core, clock: ManualClock) -> None:
    await couple(core)  # 77 and 73: nothing raises it
    await hotline(core, "ringing", call_id="r-2", caller=LANDLINE, line="12349", actor="cti")
    _, incident = await hotline(core, "ended", call_id="r-2", caller=LANDLINE, line="12349", actor="cti")
    assert incident is not None and (incident.priority, incident.priority_reasons) == (2, ("call: base priority 2",))
    await core.engine.put_elder(
        elder("e_wife", name="王秀英", phone=LANDLINE, birth_date="1952-08-15", address=HOME, lat=24.515, lon=117.705,
              risk_flags=["disabled"]),
        actor="admin",
    )  # fmt: skip
    await hotline(core, "ringing", call_id="r-3", caller=LANDLINE, line="12349", actor="cti")
    await hotline(core, "answered", call_id="r-3", caller=LANDLINE, line="12349", actor="cti")
    await core.engine.classify_call(Classification("r-3", "emergency", "operator:o", alarm_type="sos"))
    state = engine_of(core).state
    raised = state.incidents[state.calls["r-3"].incident_id or ""]
    assert raised.elder_id is None and raised.priority == 1
    assert raised.priority_reasons == ("sos: base priority 2", "raised one level for 王秀英: disabled")


async def test_a_picked_elder_is_raised_by_their_own_risk_only(core: Core) -> None:
    await elderly_couple(core)
    await hotline(core, "ringing", call_id="r-4", caller=LANDLINE, line="12349", actor="cti")
    await hotline(core, "answered", call_id="r-4", caller=LANDLINE, line="12349", actor="cti")
    await core.engine.pick_caller("r-4", "e_wife", actor="operator:o")
    await core.engine.classify_call(Classification("r-4", "emergency", "operator:o", alarm_type="sos"))
    state = engine_of(core).state
    incident = state.incidents[state.calls["r-4"].incident_id or ""]
    assert incident.elder_id == "e_wife"
    assert incident.priority_reasons == ("sos: base priority 2", "raised one level: aged 85")  # hers, unnamed
