"""Keeping the registry (dispatch.keeping), on the little city of tests/conftest.py: a real SQLite file, a manual
clock, device reports through the real intake. Device 1234 (SIA DC-09) is e1's, 8800000015 (watch) e2's."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.clock import ManualClock
from dispatch.core import Core, open_core
from dispatch.devices import DeviceReport
from dispatch.entries import (
    DeviceRestored,
    DeviceSaved,
    DeviceTestFailed,
    DeviceTestPassed,
    DeviceTestStarted,
    DeviceUnbound,
    ElderDeactivated,
    ElderReactivated,
    ElderSaved,
    Resolved,
    ResponderSaved,
)
from dispatch.errors import Conflict, InvalidInput, NotFound
from dispatch.keeping import UNBOUND
from dispatch.machines import IncidentState
from dispatch.registry import Device
from dispatch.scopes import ALL
from tests.conftest import elder, engine_of, hotline, on_duty, raise_alarm, report, responder

KEY = "00112233445566778899AABBCCDDEEFF"


async def facts(core: Core, kind: type[Any]) -> list[Any]:
    return [e.fact for e in await core.journal.read(0, 10_000) if isinstance(e.fact, kind)]


def sos(device_id: str = "1234", n: int = 1) -> DeviceReport:
    return DeviceReport("sia-dc09", device_id, "alarm", "CID:1101", alarm_type="sos", dedup=f"{device_id}-{n}")


# -- rule 1: old and new ------------------------------------------------------------------------------


async def test_a_saved_elder_journals_the_old_and_new_values_of_what_changed(core: Core) -> None:
    await core.engine.put_elder(elder("e1", phone="13505960009", care_level=3), actor="operator:o1")
    saved = (await facts(core, ElderSaved))[-1]
    assert saved.fields == ("phone", "care_level")
    assert saved.old == {"phone": "13505960001", "care_level": None}
    assert saved.new == {"phone": "13505960009", "care_level": 3}


async def test_a_new_record_journals_every_value_and_nothing_before(core: Core) -> None:
    await core.engine.put_elder(elder("e9", name="新老人", phone="13505960099"), actor="operator:o1")
    saved = (await facts(core, ElderSaved))[-1]
    assert saved.old == {} and saved.new["name"] == "新老人" and saved.new["active"] is True


async def test_a_device_key_is_never_journaled(core: Core) -> None:
    await core.engine.put_device(Device(device_id="d7", protocol="sia-dc09", elder_id="e1", aes_key=KEY), actor="a")
    await core.engine.put_device(Device(device_id="d7", protocol="sia-dc09", elder_id="e1", aes_key=KEY[::-1]),
                                 actor="a")  # fmt: skip
    await core.engine.put_device(Device(device_id="d7", protocol="sia-dc09", elder_id="e1"), actor="a")
    first, second, third = (await facts(core, DeviceSaved))[-3:]
    assert first.new["aes_key"] == "changed" and first.old == {}
    assert second.fields == ("aes_key",) and second.old == second.new == {"aes_key": "changed"}
    assert third.old == {"aes_key": "changed"} and third.new == {"aes_key": None}
    text = " ".join(e.payload_json for e in await core.journal.read(0, 10_000))
    assert KEY not in text and KEY[::-1] not in text


async def test_a_responder_journals_old_and_new_too(core: Core) -> None:
    await core.engine.put_responder(responder("c_near", 24.5110, 117.7000, travel="bike"), actor="admin")
    saved = (await facts(core, ResponderSaved))[-1]
    assert saved.old == {"travel": "walk"} and saved.new == {"travel": "bike"}


# -- rule 2: leaving care -----------------------------------------------------------------------------


async def test_an_elder_who_left_is_kept_unmatched_and_their_devices_unbound(core: Core) -> None:
    await core.engine.deactivate_elder("e1", "moved_away", "", actor="supervisor:s1")
    engine = engine_of(core)
    assert engine.directory.elders["e1"].active is False
    assert (await core.registry.get_elder("e1")).active is False  # type: ignore[union-attr]
    assert "1234" not in engine.directory.devices and await core.registry.get_device("1234") is None
    left = await facts(core, ElderDeactivated)
    assert left == [ElderDeactivated("e1", "moved_away", "")]
    assert await facts(core, DeviceUnbound) == [DeviceUnbound("1234", "e1", "sia-dc09", "elder deactivated")]
    # the file stays readable
    assert core.views.elder_record("e1", ALL)["active"] is False
    # not matched: a call from her phone is a stranger's, the search skips her unless asked, no new alarm
    call, _ = await hotline(core, "ringing", call_id="c1", caller="13505960001", line="12349", actor="pbx")
    assert call.elder_id is None
    assert all(e["elder_id"] != "e1" for e in core.views.search_elders("王秀英", ALL))
    assert any(e["elder_id"] == "e1" for e in core.views.search_elders("王秀英", ALL, inactive=True))
    assert all(e["elder_id"] != "e1" for e in core.views.elders(ALL, community=None, limit=100, offset=0)[0])
    with pytest.raises(Conflict) as refused:
        await raise_alarm(core, "sos", actor="operator:o1", source="operator", elder_id="e1")
    assert refused.value.code == "elder_inactive"
    with pytest.raises(Conflict):
        await core.engine.put_device(Device(device_id="d8", protocol="watch", elder_id="e1"), actor="o")
    # her pendant is an unknown device now: its alarm opens nothing
    before = len(engine.state.incidents)
    await report(core, sos())
    assert len(engine.state.incidents) == before and engine.supervision.unknown.current is not None


async def test_leaving_needs_a_known_reason_and_words_for_other(core: Core) -> None:
    with pytest.raises(InvalidInput) as bad:
        await core.engine.deactivate_elder("e1", "bored", "", actor="s")
    assert bad.value.code == "left_care_reason"
    with pytest.raises(InvalidInput) as wordless:
        await core.engine.deactivate_elder("e1", "other", "  ", actor="s")
    assert wordless.value.code == "reason_required"
    assert engine_of(core).directory.elders["e1"].active


async def test_active_changes_only_by_deactivating_and_reactivating(core: Core) -> None:
    with pytest.raises(Conflict) as refused:
        await core.engine.put_elder(elder("e1", active=False), actor="operator:o1")
    assert refused.value.code == "elder_active_change"
    with pytest.raises(Conflict):  # nor is a new elder saved as gone
        await core.engine.put_elder(elder("e9", phone=None, active=False), actor="operator:o1")
    with pytest.raises(Conflict):
        await core.engine.reactivate_elder("e1", "", actor="s")
    await core.engine.deactivate_elder("e1", "other", "随子女去外地", actor="s")
    with pytest.raises(Conflict):
        await core.engine.deactivate_elder("e1", "died", "", actor="s")
    await core.engine.reactivate_elder("e1", "回来了", actor="s")
    assert engine_of(core).directory.elders["e1"].active
    assert await facts(core, ElderReactivated) == [ElderReactivated("e1", "回来了")]
    call, _ = await hotline(core, "ringing", call_id="c2", caller="13505960001", line="12349", actor="pbx")
    assert call.elder_id == "e1"


# -- rule 3: unbinding --------------------------------------------------------------------------------


async def test_an_unbound_device_is_an_unknown_one(core: Core) -> None:
    await core.engine.unbind_device("1234", actor="operator:o1", reason="换新设备")
    engine = engine_of(core)
    assert "1234" not in engine.directory.devices and ("checkin", "1234") not in engine.state.timers
    assert not core.views.device_known("1234")
    assert await facts(core, DeviceUnbound) == [DeviceUnbound("1234", "e1", "sia-dc09", "换新设备")]
    with pytest.raises(NotFound):
        await core.engine.unbind_device("1234", actor="operator:o1")
    await report(core, sos())
    assert not engine.state.incidents


def technical(device_id: str, alarm_type: str, kind: str = "alarm") -> DeviceReport:
    code = {"mains_loss": "CID:1301", "low_battery": "CID:1302"}[alarm_type]
    if kind == "restore":
        code = "CID:3" + code[5:]
    return DeviceReport("sia-dc09", device_id, kind, code, alarm_type=alarm_type, dedup=f"{device_id}-{kind}-{code}")  # type: ignore[arg-type]


async def test_unbinding_takes_the_device_out_of_its_open_technical_incidents(core: Core, clock: ManualClock) -> None:
    """The street's power cut (both devices of the little city) loses the unbound device, and the other's restore
    resolves it; the unbound device's own conditions are resolved with it."""
    engine = engine_of(core)
    await report(core, technical("1234", "mains_loss"), technical("8800000015", "mains_loss"))
    await report(core, technical("1234", "low_battery"))
    (group,) = [i for i in engine.state.incidents.values() if i.group is not None]
    (battery,) = [i for i in engine.state.incidents.values() if i.alarm_type == "low_battery"]
    assert list(group.affected) == ["1234", "8800000015"] and battery.open
    clock.advance(30)
    await core.engine.unbind_device("1234", actor="operator:o1", reason="换新设备")
    assert list(group.affected) == ["8800000015"] and group.open  # the unbound one no longer holds it open
    assert battery.state is IncidentState.RESOLVED and battery.outcome == UNBOUND
    assert [k for k in engine.state.conditions if k[0] == "1234"] == []
    await report(core, technical("8800000015", "mains_loss", kind="restore"))
    assert group.state is IncidentState.RESOLVED and group.outcome == "all devices restored"
    assert not engine.state.conditions and not engine.state.groups
    assert await facts(core, DeviceRestored) == [
        DeviceRestored("1234", UNBOUND), DeviceRestored("8800000015", "device reported restore (CID:3301)"),
    ]  # fmt: skip
    unbinding = [e for e in await core.journal.read(0, 10_000) if e.incident_id == battery.incident_id][-1]
    assert (unbinding.fact, unbinding.actor, unbinding.ts) == (Resolved(UNBOUND), "operator:o1", clock.now())


async def test_a_device_silent_and_then_unbound_leaves_no_missed_check_in_open(core: Core, clock: ManualClock) -> None:
    engine = engine_of(core)
    clock.advance(300 * core.settings.checkin_grace)  # the watch (a 300 s interval) falls silent
    await engine.tick()
    (missed,) = [i for i in engine.state.incidents.values() if i.alarm_type == "missed_checkin"]
    assert missed.open and list(missed.affected) == ["8800000015"]
    await core.engine.unbind_device("8800000015", actor="operator:o1")
    assert missed.state is IncidentState.RESOLVED and missed.outcome == UNBOUND and not engine.state.conditions
    clock.advance(3600)
    await engine.tick()
    assert [i for i in engine.state.incidents.values() if i.open and "8800000015" in i.devices] == []  # nothing new
    await core.close()
    again = await open_core(core.settings, clock, protocols=("sia-dc09", "watch"))
    try:
        replayed = engine_of(again).state  # (1234, still bound, missed its check-ins meanwhile)
        assert [k for k in replayed.conditions if k[0] == "8800000015"] == []
        assert not replayed.incidents[missed.incident_id].open
    finally:
        await again.close()


async def test_unbinding_survives_a_restart(core: Core, clock: ManualClock) -> None:
    await core.engine.unbind_device("1234", actor="operator:o1")
    await core.close()
    again = await open_core(core.settings, clock, protocols=("sia-dc09",))
    try:
        assert not again.views.device_known("1234") and again.views.device_known("8800000015")
    finally:
        await again.close()


# -- rule 4: the test call ----------------------------------------------------------------------------


async def test_an_alarm_in_the_window_passes_the_test_with_a_test_incident_nobody_is_sent_to(
    core: Core, clock: ManualClock
) -> None:
    await on_duty(core, "c_near")
    await core.engine.test_device("1234", actor="operator:o1")
    started = (await facts(core, DeviceTestStarted))[-1]
    assert started == DeviceTestStarted("1234", "e1", clock.now() + 300)
    clock.advance(30)
    await report(core, sos())
    engine = engine_of(core)
    (incident,) = engine.state.incidents.values()
    assert incident.test and incident.state is IncidentState.CLOSED and incident.outcome == "test passed"
    assert not incident.assignments and ("answer", incident.incident_id) not in engine.state.timers
    assert await facts(core, DeviceTestPassed) == [DeviceTestPassed("1234", incident.incident_id, "sos", "e1")]
    assert core.views.device_test("1234", ALL)["state"] == "passed"
    assert core.views.incident(incident.incident_id, ALL)["test"] is True
    assert not engine.state.follow_ups.follow_ups  # a test is not followed up
    # the window is over: the next alarm is real
    await report(core, sos(n=2))
    real = [i for i in engine.state.incidents.values() if not i.test]
    assert len(real) == 1 and real[0].open


async def test_the_window_elapsing_fails_the_test(core: Core, clock: ManualClock) -> None:
    await core.engine.test_device("1234", actor="operator:o1")
    clock.advance(299)
    await engine_of(core).tick()
    assert core.views.device_test("1234", ALL)["state"] == "running"
    clock.advance(1)
    await engine_of(core).tick()
    assert await facts(core, DeviceTestFailed) == [DeviceTestFailed("1234", "nothing heard", "e1")]
    assert core.views.device_test("1234", ALL)["state"] == "failed"
    await report(core, sos())
    assert not any(i.test for i in engine_of(core).state.incidents.values())


async def test_a_technical_alarm_is_not_the_test(core: Core) -> None:
    await core.engine.test_device("1234", actor="operator:o1")
    low = DeviceReport("sia-dc09", "1234", "alarm", "CID:1302", alarm_type="low_battery", dedup="lb")
    await report(core, low)
    assert core.views.device_test("1234", ALL)["state"] == "running"
    assert not any(i.test for i in engine_of(core).state.incidents.values())


async def test_unbinding_a_device_under_test_fails_its_test(core: Core) -> None:
    await core.engine.test_device("1234", actor="operator:o1")
    await core.engine.unbind_device("1234", actor="operator:o1")
    assert core.views.device_test("1234", ALL) | {"state": "failed", "reason": "unbound"} == core.views.device_test(
        "1234", ALL
    )


async def test_a_test_survives_a_restart(core: Core, clock: ManualClock) -> None:
    await core.engine.test_device("1234", actor="operator:o1")
    await core.close()
    again = await open_core(core.settings, clock, protocols=("sia-dc09",))
    again.intake.start()
    try:
        await report(again, sos())
        assert again.views.device_test("1234", ALL)["state"] == "passed"
    finally:
        await again.close()


async def test_the_next_elder_id_follows_the_registry(core: Core) -> None:
    assert core.views.next_elder_id() == "e3"
    for elder_id, name in (("E000041", "林玉兰"), ("E000007", "陈金山"), ("E000008", "吴梅")):
        await core.engine.put_elder(elder(elder_id, name=name, phone=None), actor="a")
    assert core.views.next_elder_id() == "E000042"


async def test_an_sos_while_the_elder_has_an_incident_open_is_real_and_joins_it(core: Core) -> None:
    real, _ = await raise_alarm(core, "fall", actor="operator:o1", source="operator", elder_id="e1")
    await core.engine.test_device("1234", actor="operator:o1")
    await report(core, sos())
    engine = engine_of(core)
    assert not any(i.test for i in engine.state.incidents.values())
    assert [a.alarm_type for a in engine.state.incidents[real.incident_id].alarms] == ["fall", "sos"]
    passed = (await facts(core, DeviceTestPassed))[-1]
    assert (passed.incident_id, passed.real) == (real.incident_id, True)  # the device was heard all the same


@pytest.mark.parametrize("alarm_type", ["fire", "fall", "medical"])
async def test_any_other_alarm_in_the_window_is_real(core: Core, alarm_type: str) -> None:
    """A fire or a fall a minute after 测试 was pressed is a fire or a fall: dispatched, never a closed test."""
    await on_duty(core, "c_near")
    await core.engine.test_device("1234", actor="operator:o1")
    code = {"fire": "CID:1110", "fall": "CID:1140", "medical": "CID:1100"}[alarm_type]
    await report(core, DeviceReport("sia-dc09", "1234", "alarm", code, alarm_type=alarm_type, dedup="x1"))
    engine = engine_of(core)
    (incident,) = engine.state.incidents.values()
    assert not incident.test and incident.open and incident.alarm_type == alarm_type
    assert any("test call" in note.text for note in incident.notes)
    assert core.views.device_test("1234", ALL)["state"] == "passed"


async def test_a_frame_without_the_devices_key_is_not_the_test(core: Core) -> None:
    await core.engine.test_device("1234", actor="operator:o1")
    forged = DeviceReport("sia-dc09", "1234", "alarm", "CID:1101", alarm_type="sos", dedup="p1",
                          detail={"authenticated": False})  # fmt: skip
    await report(core, forged)
    (incident,) = engine_of(core).state.incidents.values()
    assert not incident.test and incident.open  # raised as real (dispatch.supervision rule 8), never a passed test
    assert core.views.device_test("1234", ALL)["state"] == "running"  # the key typed at binding may be wrong
