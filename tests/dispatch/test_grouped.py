"""Grouped technical incidents (dispatch.triage rule 4) on the manual clock: a power cut in one street is one
incident and at most one escalation, whatever the number of devices; person alarms stay their own."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dispatch.clock import ManualClock
from dispatch.core import Core, open_core
from dispatch.devices import DeviceReport
from dispatch.machines import IncidentState
from dispatch.registry import Device
from dispatch.scopes import ALL, Reach
from dispatch.state import Incident, Projection
from dispatch.views import incident_view
from tests.conftest import CENTRE, elder, engine_of, seed, settings_for

LANTIAN = "龙文区/蓝田街道"
CHAOYANG = "龙文区/朝阳街道"
STORM = 500


def registry() -> tuple[list[Any], list[Device]]:
    """500 homes in Lantian street (two communities), 20 in Chaoyang, 10 drill devices in Lantian."""
    elders, devices = [], []
    homes = [(f"L{n}", f"{LANTIAN}/{('蓝田社区', '湖滨社区')[n % 2]}") for n in range(STORM)]
    homes += [(f"C{n}", f"{CHAOYANG}/朝阳社区") for n in range(20)]
    homes += [(f"X{n}", f"{LANTIAN}/蓝田社区") for n in range(10)]
    for n, (ident, community) in enumerate(homes):
        elders.append(elder(f"e{ident}", phone=f"135{n:08d}", community=community))
        devices.append(Device(device_id=ident, protocol="sia-dc09", elder_id=f"e{ident}", checkin_s=86400,
                              drill=ident.startswith("X")))  # fmt: skip
    return elders, devices


@pytest.fixture
async def street(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Core]:
    settings = settings_for(tmp_path / "data")
    elders, devices = registry()
    await seed(settings, elders=elders, devices=devices)
    opened = await open_core(settings, clock, protocols=("sia-dc09",))
    opened.intake.start()
    yield opened
    await opened.close()


def mains(device_id: str, kind: str = "alarm", alarm_type: str = "mains_loss", seq: int = 1) -> DeviceReport:
    code = {"alarm": "CID:1301", "restore": "CID:3301"}.get(kind, "CID:1101")
    return DeviceReport(
        protocol="sia-dc09", device_id=device_id, kind=kind, alarm_type=alarm_type, code=code,  # type: ignore[arg-type]
        dedup=f"{device_id}:{kind}:{alarm_type}:{seq}",
    )  # fmt: skip


async def storm(core: Core, clock: ManualClock, device_ids: list[str], within_s: float = 60.0, seq: int = 1) -> None:
    """The devices report mains loss within ``within_s``, ten to a read as a busy receiver gets them."""
    step = within_s / max(1, len(device_ids))
    for start in range(0, len(device_ids), 10):
        batch = device_ids[start : start + 10]
        await core.intake.devices([mains(d, seq=seq) for d in batch])
        clock.advance(step * len(batch))


async def kinds(core: Core, incident_id: str | None = None) -> Counter[str]:
    entries = await core.journal.read(0, 100_000)
    return Counter(e.kind for e in entries if incident_id is None or e.incident_id == incident_id)


def groups(core: Core) -> list[Incident]:
    return [i for i in engine_of(core).state.incidents.values() if i.group is not None]


LANTIAN_DEVICES = [f"L{n}" for n in range(STORM)]


async def test_a_storm_in_one_street_is_one_incident_and_one_escalation(street: Core, clock: ManualClock) -> None:
    await storm(street, clock, LANTIAN_DEVICES)
    (group,) = engine_of(street).state.incidents.values()
    assert (group.group, group.alarm_type, group.technical, group.priority) == (LANTIAN, "mains_loss", True, 4)
    assert len(group.devices) == len(group.affected) == STORM and group.device_id == "L0"
    assert (await kinds(street))["incident.alarm_attached"] == STORM - 1  # every device on record
    for _ in range(10):  # ten minutes nobody acknowledges it: supervisors hear of it once
        clock.advance(60)
        await engine_of(street).tick()
    assert (await kinds(street))["incident.unanswered"] == 1 and group.supervisor_alerted
    view = street.views.incident(group.incident_id, ALL)
    assert view["group"] == {
        "street": LANTIAN, "street_name": "蓝田街道", "devices": STORM, "affected": STORM,
        "sample": LANTIAN_DEVICES[:50],
    }  # fmt: skip
    assert view["place"] == "蓝田街道" and view["elder_id"] is None
    assert view["location"] == "street"  # at the mean of the street's homes, nobody's own (they are all at CENTRE)
    assert (view["lat"], view["lon"]) == pytest.approx(CENTRE)
    assert len(view["alarms"]) == 1  # the counts, not 500 lines (the journal has them)


async def test_repeats_and_a_device_reporting_again_write_nothing_new(street: Core, clock: ManualClock) -> None:
    await storm(street, clock, LANTIAN_DEVICES[:3])
    head = street.journal.head_seq
    await street.intake.devices([mains("L1")])  # the same frame again: a repeat
    await street.intake.devices([mains("L1", seq=2)])  # a new frame, the condition still open
    assert street.journal.head_seq == head
    (group,) = groups(street)
    assert len(group.devices) == 3


async def test_acknowledging_the_group_acknowledges_every_device(street: Core, clock: ManualClock) -> None:
    await storm(street, clock, LANTIAN_DEVICES[:100])
    (group,) = groups(street)
    await street.engine.acknowledge(group.incident_id, actor="operator:o1")
    await storm(street, clock, LANTIAN_DEVICES[100:200])  # more of the street goes dark after the acknowledgement
    clock.advance(600)
    await engine_of(street).tick()
    assert groups(street) == [group] and len(group.affected) == 200
    assert group.state is IncidentState.ACKNOWLEDGED and not group.supervisor_alerted
    assert (await kinds(street))["incident.unanswered"] == 0


async def test_a_device_going_dark_hours_later_opens_a_new_group(street: Core, clock: ManualClock) -> None:
    await storm(street, clock, LANTIAN_DEVICES[:20])
    (first,) = groups(street)
    await street.engine.acknowledge(first.incident_id, actor="operator:o1")
    clock.advance(6 * 3600)  # the first group is still open (its devices never came back); another home goes dark
    await storm(street, clock, LANTIAN_DEVICES[20:21])
    later = next(g for g in groups(street) if g is not first)
    assert (len(first.affected), list(later.devices)) == (20, ["L20"])  # not absorbed into the acknowledged group
    assert later.acknowledged_at is None  # a new clock: it is answered, or escalated, on its own
    clock.advance(9 * 60)
    await storm(street, clock, LANTIAN_DEVICES[21:22])  # within ten minutes of the last: the same event
    assert list(later.devices) == ["L20", "L21"] and len(groups(street)) == 2


async def test_an_sos_from_a_device_in_the_group_keeps_its_own_incident(street: Core, clock: ManualClock) -> None:
    await storm(street, clock, LANTIAN_DEVICES[:50])
    (group,) = groups(street)
    await street.intake.devices([mains("L7", alarm_type="sos")])
    (sos,) = [i for i in engine_of(street).state.incidents.values() if i.alarm_type == "sos"]
    assert sos is not group and not sos.technical and sos.priority <= 2 and sos.elder_id == "eL7"
    assert len(group.devices) == 50 and group.priority == 4  # untouched
    await street.intake.devices([mains("L8", alarm_type="fall")])  # another elder's fall: also alone
    assert len([i for i in engine_of(street).state.incidents.values() if not i.technical]) == 2
    await street.intake.devices([mains("L7", kind="restore")])  # L7's power is back: its SOS stays
    assert sos.open and "L7" not in group.affected


async def test_restores_shrink_the_group_and_the_last_one_resolves_it(street: Core, clock: ManualClock) -> None:
    devices = LANTIAN_DEVICES[:40]
    await storm(street, clock, devices)
    (group,) = groups(street)
    for n, device_id in enumerate(devices[:-1], start=1):
        await street.intake.devices([mains(device_id, kind="restore")])
        assert len(group.affected) == 40 - n and group.open
    assert list(group.affected) == [devices[-1]] and len(group.devices) == 40
    await street.intake.devices([mains(devices[-1], kind="restore")])
    assert group.state is IncidentState.RESOLVED and group.outcome == "all devices restored"
    state = engine_of(street).state
    assert not state.groups and not state.conditions
    assert (await kinds(street, group.incident_id))["incident.device_restored"] == 40
    await street.intake.devices([mains("L3", seq=2)])  # the power goes again: a new group
    (_, again) = groups(street)
    assert again.open and list(again.devices) == ["L3"]


async def test_a_group_of_one_resolves_as_its_device_did(street: Core, clock: ManualClock) -> None:
    await storm(street, clock, ["L0"])
    await street.intake.devices([mains("L0", kind="restore")])
    (group,) = groups(street)
    assert group.outcome == "device reported restore (CID:3301)"


async def test_an_operator_resolving_the_group_frees_its_devices(street: Core, clock: ManualClock) -> None:
    await storm(street, clock, LANTIAN_DEVICES[:5])
    (group,) = groups(street)
    await street.engine.resolve(group.incident_id, "power company on it", actor="operator:o1")
    assert not engine_of(street).state.conditions and not engine_of(street).state.groups
    head = street.journal.head_seq
    await street.intake.devices([mains("L1", kind="restore")])  # restores of a resolved group change nothing
    assert street.journal.head_seq == head
    await street.intake.devices([mains("L1", seq=2)])
    assert len(groups(street)) == 2


async def test_two_streets_make_two_groups_and_drill_stays_apart(street: Core, clock: ManualClock) -> None:
    await storm(street, clock, LANTIAN_DEVICES[:30] + [f"C{n}" for n in range(20)] + [f"X{n}" for n in range(10)])
    by = {(i.group, i.drill): len(i.devices) for i in groups(street)}
    assert by == {(LANTIAN, False): 30, (CHAOYANG, False): 20, (LANTIAN, True): 10}
    assert len(engine_of(street).state.incidents) == 3
    clock.advance(61)
    await engine_of(street).tick()
    assert (await kinds(street))["incident.unanswered"] == 3  # one per group


async def test_low_battery_stays_one_incident_per_device(street: Core, clock: ManualClock) -> None:
    for device_id in LANTIAN_DEVICES[:3]:
        await street.intake.devices([mains(device_id, alarm_type="low_battery")])
    incidents = list(engine_of(street).state.incidents.values())
    assert len(incidents) == 3 and not groups(street)


async def test_missed_check_ins_of_a_street_are_one_group(tmp_path: Path, clock: ManualClock) -> None:
    settings = settings_for(tmp_path / "data")
    elders = [elder(f"e{n}", phone=f"1350000{n:04d}", community=f"{LANTIAN}/蓝田社区") for n in range(30)]
    devices = [Device(device_id=f"M{n}", protocol="sia-dc09", elder_id=f"e{n}", checkin_s=600) for n in range(30)]
    await seed(settings, elders=elders, devices=devices)
    core = await open_core(settings, clock, protocols=("sia-dc09",))
    core.intake.start()
    try:
        clock.advance(600 * core.settings.checkin_grace)  # the cell tower is down: nobody checks in
        await engine_of(core).tick()
        (group,) = engine_of(core).state.incidents.values()
        assert (group.group, group.alarm_type, len(group.affected)) == (LANTIAN, "missed_checkin", 30)
        assert len(group.notes) == 1  # the first device's note, not thirty
        await core.intake.devices([mains(f"M{n}", kind="checkin", alarm_type=None) for n in range(30)])  # type: ignore[arg-type]
        assert group.state is IncidentState.RESOLVED and group.outcome == "all devices restored"
    finally:
        await core.close()


async def test_the_group_lies_in_its_street(street: Core, clock: ManualClock) -> None:
    await storm(street, clock, LANTIAN_DEVICES[:4])
    (group,) = groups(street)
    assert street.views.incident_place(group) == LANTIAN
    seen = [v["incident_id"] for v in street.views.incidents(Reach((LANTIAN,)))]
    assert seen == [group.incident_id]
    community = [v["incident_id"] for v in street.views.incidents(Reach((f"{LANTIAN}/湖滨社区",)))]
    assert community == [group.incident_id]  # each community of the street sees it (scopes rule 4)
    assert not street.views.incidents(Reach((CHAOYANG,)))
    assert not street.views.incidents(Reach(("龙文区/蓝田街道二",)))  # a prefix of the name is not the street


def dump(projection: Projection, core: Core) -> dict[str, Any]:
    directory = engine_of(core).directory
    incidents = sorted(projection.incidents.values(), key=lambda i: i.incident_id)
    return {
        "incidents": [incident_view(i, projection, directory) for i in incidents],
        "conditions": sorted([[*k, v] for k, v in projection.conditions.items()]),
        "groups": sorted([[*k, v] for k, v in projection.groups.items()]),
        "members": {i.incident_id: (list(i.devices), list(i.affected)) for i in incidents if i.group is not None},
        "answer_timers": sorted(  # (the check-in deadlines are supervision's, armed at start, not journaled)
            [[list(key), at] for key, at in projection.timers._deadlines.items() if key[0] == "answer"]  # type: ignore[index]
        ),
    }


async def test_the_journal_replays_to_the_same_groups(street: Core, clock: ManualClock) -> None:
    await storm(street, clock, LANTIAN_DEVICES[:120] + [f"C{n}" for n in range(20)] + [f"X{n}" for n in range(10)])
    await street.intake.devices([mains("L5", alarm_type="sos")])
    for device_id in LANTIAN_DEVICES[:30] + [f"C{n}" for n in range(20)]:  # Chaoyang's group resolves
        await street.intake.devices([mains(device_id, kind="restore")])
    lantian = next(i for i in groups(street) if i.group == LANTIAN and not i.drill)
    await street.engine.acknowledge(lantian.incident_id, actor="operator:o1")
    clock.advance(61)
    await engine_of(street).tick()  # the drill group escalates
    assert [i.drill for i in groups(street) if i.supervisor_alerted] == [True]
    await storm(street, clock, ["C3"], seq=2)  # a new group in Chaoyang
    live = engine_of(street).state
    replayed = Projection(position_stale_s=street.settings.position_stale_s)
    for entry in await street.journal.read(0, 100_000):
        replayed.apply(entry)
    assert dump(replayed, street) == dump(live, street)
    assert sorted((i.group, i.drill, i.state.value, len(i.affected)) for i in groups(street)) == sorted([
        (LANTIAN, False, "acknowledged", 90), (LANTIAN, True, "received", 10), (CHAOYANG, False, "resolved", 0),
        (CHAOYANG, False, "received", 1),
    ])  # fmt: skip
