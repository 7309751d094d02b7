"""Device reports and supervision on the manual clock: alarms, repeats, conditions, missed check-ins."""

from __future__ import annotations

from dispatch.clock import ManualClock
from dispatch.core import Core
from dispatch.devices import DeviceReport
from dispatch.entries import ElderHealth
from dispatch.machines import IncidentState
from dispatch.registry import Device
from dispatch.state import Incident
from tests.conftest import engine_of


def report(kind: str = "alarm", alarm_type: str | None = "sos", **fields: object) -> DeviceReport:
    base: dict[str, object] = {"protocol": "sia-dc09", "device_id": "1234", "code": "CID:1101"}
    base.update(fields)
    return DeviceReport(kind=kind, alarm_type=alarm_type, **base)  # type: ignore[arg-type]


async def submit(core: Core, device_report: DeviceReport) -> int:
    """As the gateway does: hand the report to the intake, which returns once it is durable."""
    await core.intake.devices([device_report])
    return core.journal.head_seq


async def entries(core: Core, after: int) -> list[str]:
    return [e.kind for e in await core.journal.read(after, 1000)]


async def test_an_alarm_is_recorded_once_however_often_it_is_repeated(core: Core) -> None:
    head = core.journal.head_seq
    seq = await submit(core, report(dedup="1234:0007:abc", lat=24.512, lon=117.701))
    kinds = await entries(core, head)
    assert kinds[:2] == ["elder.position", "incident.opened"]
    incident = next(i for i in engine_of(core).state.incidents.values() if i.device_id == "1234")
    assert (incident.location, incident.lat, incident.source) == ("reported", 24.512, "device")
    again = await submit(core, report(dedup="1234:0007:abc", lat=24.512, lon=117.701))
    assert again == seq  # nothing new written; the transport acknowledges again
    assert len([i for i in engine_of(core).state.incidents.values() if i.device_id == "1234"]) == 1


async def test_an_alarm_without_a_fix_is_located_at_home(core: Core) -> None:
    await submit(core, report(device_id="8800000015", protocol="watch", code="WATCH:AL:16"))
    incident = next(i for i in engine_of(core).state.incidents.values() if i.device_id == "8800000015")
    assert incident.location == "home"
    assert (incident.lat, incident.lon) == (
        engine_of(core).directory.elders["e2"].lat,
        engine_of(core).directory.elders["e2"].lon,
    )


async def test_unknown_devices_are_counted_and_their_alarms_reach_a_supervisor(core: Core, clock: ManualClock) -> None:
    """Devices nobody registered open no incident; see tests/dispatch/test_unknown_devices.py for the floods."""
    head = core.journal.head_seq
    await submit(core, report(kind="checkin", alarm_type=None, device_id="FFFF", code="NULL"))
    await submit(core, report(kind="checkin", alarm_type=None, device_id="FFFF", code="NULL"))
    assert await entries(core, head) == []  # counted for the interval's summary, not once a frame
    await submit(core, report(device_id="FFFF", dedup="FFFF:0001:x"))
    await submit(core, report(device_id="FFFF", dedup="FFFF:0002:y"))  # pressed again: counted
    assert await entries(core, head) == ["devices.unknown_alarm"]  # the interval's one alert
    assert not engine_of(core).state.incidents
    clock.advance(core.settings.unknown_interval_s)
    await engine_of(core).tick()
    assert await entries(core, head) == ["devices.unknown_alarm", "devices.unknown"]


async def test_a_technical_condition_is_one_incident_until_it_clears(core: Core) -> None:
    for _ in range(3):
        await submit(core, report(alarm_type="low_battery", code="CID:1302"))
    (incident,) = engine_of(core).state.incidents.values()
    assert incident.technical and incident.priority == 4
    await submit(core, report(kind="restore", alarm_type="low_battery", code="CID:3302"))
    assert incident.state is IncidentState.RESOLVED
    await submit(core, report(alarm_type="low_battery", code="CID:1302"))
    assert len(engine_of(core).state.incidents) == 2  # a new occurrence after the restore


async def test_a_missed_checkin_raises_exactly_one_alarm_and_clears_on_return(core: Core, clock: ManualClock) -> None:
    await submit(core, report(kind="checkin", alarm_type=None, code="NULL"))
    clock.advance(600 * 1.2 - 1)
    await engine_of(core).tick()
    assert ("1234", "missed_checkin") not in engine_of(core).state.conditions
    clock.advance(1)
    await engine_of(core).tick()
    (missing,) = mine(core, "1234")  # the street's group, which the fixture's silent watch opened
    assert list(missing.affected) == ["8800000015", "1234"] and missing.technical
    for _ in range(10):  # an hour more of silence: still that one alarm
        clock.advance(600)
        await engine_of(core).tick()
    assert len(mine(core, "1234")) == 1 and len(engine_of(core).state.incidents) == 1
    await submit(core, report(kind="checkin", alarm_type=None, code="NULL"))
    assert list(missing.affected) == ["8800000015"] and missing.open  # back: out of the count
    await submit(core, report(kind="checkin", alarm_type=None, device_id="8800000015", protocol="watch"))
    assert missing.state is IncidentState.RESOLVED
    assert missing.outcome == "all devices restored"


async def test_a_frame_that_failed_its_key_is_a_tamper_alarm_and_no_sign_of_life(
    core: Core, clock: ManualClock
) -> None:
    await submit(core, report(kind="checkin", alarm_type=None, code="NULL"))
    clock.advance(600 * 1.2)
    await engine_of(core).tick()  # silent: the missed check-in is raised
    seen = engine_of(core).state.devices["1234"].last_seen
    forged = {"code": "DC09:PLAIN", "detail": {"authenticated": False}, "dedup": "dc09:1234:plain:1"}
    await submit(core, report(alarm_type="tamper", **forged))  # a plain frame for a keyed account
    incidents = mine(core, "1234")
    assert {i.alarm_type for i in incidents} == {"missed_checkin", "tamper"}
    assert all(i.state is not IncidentState.RESOLVED for i in incidents)  # the dead unit stays reported
    assert engine_of(core).state.devices["1234"].last_seen == seen


async def test_an_sos_taken_without_its_key_is_raised_where_the_device_last_was_not_where_it_says(
    core: Core,
) -> None:
    watch = {"device_id": "8800000015", "protocol": "watch", "code": "WATCH:UD"}
    await submit(core, report(kind="position", alarm_type=None, lat=24.52, lon=117.71, **watch))
    forged = {"detail": {"authenticated": False}, "lat": 31.23, "lon": 121.47, "dedup": "plain-sos-1"}  # Shanghai
    await submit(core, report(**{**watch, "code": "CID:1101"}, **forged))  # accepted under "accept-sos"
    (sos,) = [i for i in engine_of(core).state.incidents.values() if i.alarm_type == "sos"]
    assert (sos.lat, sos.lon) == (24.52, 117.71)
    assert engine_of(core).state.devices["8800000015"].lat == 24.52  # the elder was not moved either


async def test_positions_are_journaled_sparingly(core: Core, clock: ManualClock) -> None:
    head = core.journal.head_seq
    watch = {"device_id": "8800000015", "protocol": "watch", "code": "WATCH:UD"}
    await submit(core, report(kind="position", alarm_type=None, lat=24.52, lon=117.71, **watch))
    clock.advance(30)
    await submit(core, report(kind="position", alarm_type=None, lat=24.5201, lon=117.71, **watch))
    clock.advance(30)
    await submit(core, report(kind="position", alarm_type=None, lat=24.53, lon=117.71, **watch))
    assert await entries(core, head) == ["elder.position", "elder.position"]  # the 11 m move is not written
    assert engine_of(core).state.devices["8800000015"].lat == 24.53


async def test_health_readings_go_on_the_record(core: Core) -> None:
    head = core.journal.head_seq
    await submit(
        core, report(kind="health", alarm_type=None, code="WATCH:bphrt", detail={"systolic": 135, "diastolic": 85})
    )
    (entry,) = await core.journal.read(head, 10)
    assert isinstance(entry.fact, ElderHealth) and entry.fact.readings == {"systolic": 135, "diastolic": 85}


async def test_a_dedup_key_seen_long_ago_is_a_new_alarm(core: Core, clock: ManualClock) -> None:
    """Sequence numbers wrap at 9999 and restart at power-up: a week later the same key is a new press."""
    await submit(core, report(dedup="1234:0007:abc"))
    (first,) = engine_of(core).state.incidents.values()
    await core.engine.resolve(first.incident_id, "checked by phone", actor="operator:o")
    clock.advance(599)
    await submit(core, report(dedup="1234:0007:abc"))
    assert len(engine_of(core).state.incidents) == 1  # within the window: a repeat
    clock.advance(7 * 86400)
    await submit(core, report(dedup="1234:0007:abc"))
    assert len(engine_of(core).state.incidents) == 2  # long after: recorded and opened again


async def test_quick_check_ins_keep_a_device_off_the_missing_list(core: Core, clock: ManualClock) -> None:
    """The quick path only notes the time; the deadline re-arms itself from it when it comes due."""
    link = report(kind="checkin", alarm_type=None, code="NULL")
    for _ in range(6):  # every 5 minutes for half an hour, on the quick path only
        assert core.intake.checkin([link], core.clock.now())
        clock.advance(300)
        await engine_of(core).tick()
    assert not mine(core, "1234")  # (the fixture's watch, silent all along, is missing by now)
    clock.advance(600 * 1.2)  # then silence
    await engine_of(core).tick()
    (missing,) = mine(core, "1234")
    assert missing.alarm_type == "missed_checkin"


async def test_a_device_registered_while_running_is_supervised_from_its_first_report(
    core: Core, clock: ManualClock
) -> None:
    device = Device(device_id="N1", protocol="sia-dc09", elder_id="e1", checkin_s=60)
    await core.engine.put_device(device, actor="admin:a")
    clock.advance(600)  # registered, not yet installed at the elder's home: not missing
    await engine_of(core).tick()
    assert not mine(core, "N1")
    assert core.intake.checkin([report(kind="checkin", alarm_type=None, device_id="N1", code="NULL")], core.clock.now())
    clock.advance(71)
    await engine_of(core).tick()
    assert not mine(core, "N1")
    clock.advance(2)
    await engine_of(core).tick()
    (missing,) = mine(core, "N1")
    assert missing.alarm_type == "missed_checkin"


def mine(core: Core, device_id: str) -> list[Incident]:
    """The incidents a device opened or joined (a missed check-in joins its street's group)."""
    return [i for i in engine_of(core).state.incidents.values() if i.device_id == device_id or device_id in i.devices]
