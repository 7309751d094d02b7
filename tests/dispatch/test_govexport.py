"""The government platform's export (dispatch.govexport): a known journal, written through the engine on a real
SQLite file and a driven clock, exports exactly the checked-in document of November 2026 (JSON and its three CSV
files), valid against docs/schemas/gov-export-1.schema.json; the period's edges, drills, test calls, names.

To write the expectation again after a deliberate change of the schema: ``ANXIN_REGOLD=1`` (then read the diff).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from dispatch.clock import ManualClock
from dispatch.commands import AlarmRequest, Classification
from dispatch.core import Core, open_core
from dispatch.devices import DeviceReport
from dispatch.errors import InvalidInput
from dispatch.govexport import (
    SETS,
    age_band,
    csv_names,
    file_steps,
    json_steps,
    parse_period,
    to_csv,
    to_json,
    to_zip,
    zip_steps,
)
from dispatch.periodreport import Pace, outcome, run
from dispatch.registry import Device
from dispatch.settings import Settings
from tests.conftest import elder, engine_of, hotline, on_duty, raise_alarm, responder, seed, settings_for

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "gov-export-2026-11.json"
SCHEMA = ROOT / "docs" / "schemas" / "gov-export-1.schema.json"
TZ = ZoneInfo("Asia/Shanghai")
LANTIAN = "龙文区/蓝田街道/蓝田社区"
CHAOYANG = "龙文区/朝阳街道/朝阳社区"
HOUR = 3600.0


def local(text: str) -> float:
    """A Shanghai wall-clock time (``2026-11-03 10:00``) as UTC seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp()


async def open_city(data: Path, clock: ManualClock, **overrides: object) -> tuple[Settings, Core]:
    settings = settings_for(data, centre_name="蓝田社区居家养老服务中心", parallel_offers={}, **overrides)
    await seed(
        settings,
        elders=[
            elder(
                "e1",
                birth_date="1940-05-01",
                risk_flags=["living_alone"],
                care_level=2,
                entitlement="free",
                resident_id="350603194005011236",  # what the export never holds (test_never_a_phone...)
                medical_notes="冠心病，服阿司匹林",
                access="门禁 4321#",
                contacts=[{"name": "王建国", "phone": "13900000001", "relation": "儿子"}],
            ),
            elder(
                "e2",
                name="李桂兰",
                phone="13505960002",
                birth_date="1952-12-15",
                community=CHAOYANG,
                entitlement="low_cost",
                risk_flags=["empty_nest", "low_income"],
                lat=24.52,
                lon=117.71,
            ),
            elder("e3", name="张建国", phone="13505960003", birth_date="1931-01-20", lat=24.512, lon=117.701),
            elder("e4", name='=HYPERLINK("http://x")', phone="13505960004", birth_date=None),
        ],
        responders=[responder("c_near", 24.5110, 117.7000), responder("c_mid", 24.5140, 117.7000)],
        devices=[Device(device_id="1234", protocol="sia-dc09", elder_id="e1", checkin_s=600)],
    )
    core = await open_core(settings, clock, protocols=("sia-dc09",))
    core.intake.start()
    return settings, core


async def sos(core: Core, elder_id: str, alarm_type: str = "sos", **fields: object) -> str:
    """An alarm through the intake, the caregivers' positions fresh (their phones report them)."""
    for responder_id in ("c_near", "c_mid"):
        profile = engine_of(core).directory.responders[responder_id]
        await core.engine.set_position(responder_id, profile.lat, profile.lon, actor=f"caregiver:{responder_id}")
    incident, _ = await raise_alarm(core, alarm_type, actor="device:api", source="api", elder_id=elder_id, **fields)
    return incident.incident_id


async def deliver(core: Core, clock: ManualClock, elder_id: str, *, deliver_after: float = HOUR) -> str:
    engine, now = core.engine, clock.now()
    order_id = await engine.order_service(elder_id, "meal_delivery", now, now + 2 * HOUR, actor="operator:o1")
    await engine.order_action(order_id, "schedule", actor="operator:o1", start=now, end=now + 2 * HOUR)
    await engine.order_action(order_id, "assign", actor="operator:o1", responder_id="c_mid")
    clock.advance(deliver_after)
    await engine.order_action(order_id, "start", actor="caregiver:c_mid", caregiver="c_mid")
    clock.advance(1800)
    await engine.order_action(order_id, "deliver", actor="caregiver:c_mid", caregiver="c_mid", note="送到")
    return order_id


async def attended(core: Core, clock: ManualClock, incident_id: str, *, door_after: float) -> None:
    """Acknowledged after 20 s; the offer to the nearest accepted at 40 s; at the door ``door_after`` s after the
    opening; done and resolved."""
    engine = engine_of(core)
    opened = engine.state.incidents[incident_id].opened_at
    clock.set(opened + 20)
    await core.engine.acknowledge(incident_id, actor="operator:o1")
    (assignment_id,) = engine.state.incidents[incident_id].assignments
    responder_id = engine.state.assignments[assignment_id].responder_id
    clock.set(opened + 40)
    await core.engine.reply_offer(assignment_id, responder_id, True)
    await core.engine.report_status(assignment_id, responder_id, "en_route")
    clock.set(opened + door_after)
    await core.engine.report_status(assignment_id, responder_id, "on_scene")


async def write_november(core: Core, clock: ManualClock) -> None:
    """The known journal: a dozen incidents, calls and orders, some across the period's edges."""
    engine = core.engine
    clock.set(local("2026-10-31 08:00"))
    await on_duty(core, "c_near", "c_mid")
    # before the period: an alarm (not counted) and an order delivered after midnight (counted)
    clock.set(local("2026-10-31 23:30"))
    early = await sos(core, "e1")
    await engine.acknowledge(early, actor="operator:o1")
    await engine.cancel(early, "误按", actor="operator:o1")
    clock.set(local("2026-10-31 23:40"))
    await deliver(core, clock, "e2", deliver_after=HOUR / 2)  # delivered 2026-11-01 00:40
    # an SOS attended: answered, offered, at the door, resolved and closed
    clock.set(local("2026-11-03 10:00"))
    attended_sos = await sos(core, "e1")
    await attended(core, clock, attended_sos, door_after=540)
    clock.advance(1200)
    (assignment_id,) = engine_of(core).state.incidents[attended_sos].assignments
    responder_id = engine_of(core).state.assignments[assignment_id].responder_id
    await engine.report_status(assignment_id, responder_id, "done", "已处理")
    await engine.resolve(attended_sos, "老人摔倒后扶起，无大碍", actor="operator:o1")
    await engine.close(attended_sos, actor="operator:o1")
    # a fall handed to 120 (the caregiver's offer withdrawn with it)
    clock.set(local("2026-11-05 14:00"))
    fall = await sos(core, "e2", "fall")
    clock.advance(45)
    await engine.acknowledge(fall, actor="operator:o1")
    clock.advance(60)
    await engine.escalate(fall, "120", "送漳州市医院", actor="operator:o1")
    await engine.close(fall, actor="operator:o1")
    # a false alarm
    clock.set(local("2026-11-08 09:15"))
    pressed = await sos(core, "e3")
    clock.advance(12)
    await engine.acknowledge(pressed, actor="operator:o1")
    await engine.cancel(pressed, "误按", actor="operator:o1")
    await engine.close(pressed, actor="operator:o1")
    # hotline calls: a question (no incident), then an emergency the operator opens an incident for
    clock.set(local("2026-11-09 10:00"))
    await hotline(core, "ringing", call_id="call-1", caller="13505960001", line="12349", actor="pbx")
    clock.advance(6)
    await hotline(core, "answered", call_id="call-1", caller="13505960001", line="12349", actor="operator:o1")
    await engine.classify_call(Classification("call-1", "consultation", "operator:o1", text="问送餐时间"))
    await hotline(core, "ended", call_id="call-1", caller="13505960001", line="12349", actor="pbx")
    clock.set(local("2026-11-09 16:20"))
    await hotline(core, "ringing", call_id="call-2", caller="13505960002", line="12349", actor="pbx")
    clock.advance(9)
    await hotline(core, "answered", call_id="call-2", caller="13505960002", line="12349", actor="operator:o1")
    clock.advance(30)
    await engine.classify_call(Classification("call-2", "emergency", "operator:o1", alarm_type="medical"))
    call_incident = engine_of(core).state.calls["call-2"].incident_id or ""
    clock.advance(600)
    await engine.resolve(call_incident, "电话指导服药后好转", actor="operator:o1")
    await engine.close(call_incident, actor="operator:o1")
    # a drill and a device's test call: neither is anyone's alarm
    clock.set(local("2026-11-10 15:00"))
    drill = await sos(core, "e1", "fall", drill=True)
    await engine.cancel(drill, "演练结束", actor="operator:o1")
    clock.set(local("2026-11-12 11:00"))
    await engine.test_device("1234", actor="operator:o1")
    clock.advance(30)
    await core.intake.devices([DeviceReport("sia-dc09", "1234", "alarm", "CID:1101", alarm_type="sos", dedup="t1")])
    # a technical incident: the elder is not served by it
    clock.set(local("2026-11-15 03:00"))
    await sos(core, "e4", "low_battery")
    # a caller nobody knows, placed on the map
    clock.set(local("2026-11-20 19:30"))
    opened = await core.intake.alarm(
        AlarmRequest(
            "medical", "operator:o1", "operator", caller="13900000009", lat=24.5105, lon=117.7003, placed_by="map"
        )
    )
    clock.advance(90)  # opened by the operator on the phone with the caller: acknowledged as it opened
    await engine.escalate(opened.incident_id, "120", "", actor="operator:o1")
    await engine.close(opened.incident_id, actor="operator:o1")
    # services: delivered, cancelled, still asked for
    clock.set(local("2026-11-25 11:00"))
    await deliver(core, clock, "e1")
    clock.set(local("2026-11-26 09:00"))
    cancelled = await engine.order_service("e3", "meal_delivery", clock.now() + HOUR, clock.now() + 3 * HOUR,
                                           actor="operator:o1")  # fmt: skip
    await engine.order_action(cancelled, "cancel", actor="operator:o1", reason="老人住院")
    clock.set(local("2026-11-29 16:00"))
    await engine.order_service("e1", "meal_delivery", clock.now() + HOUR, clock.now() + 2 * HOUR,
                               actor="operator:o1")  # fmt: skip
    # the last evening: an order delivered after midnight (December's), an alarm still open at midnight with the
    # caregiver at the door after it (still counted), and December's first alarm
    clock.set(local("2026-11-30 22:00"))
    december = await engine.order_service("e2", "meal_delivery", clock.now(), clock.now() + 3 * HOUR,
                                          actor="operator:o1")  # fmt: skip
    await engine.order_action(december, "schedule", actor="operator:o1", start=clock.now(), end=clock.now() + 3 * HOUR)
    await engine.order_action(december, "assign", actor="operator:o1", responder_id="c_mid")
    clock.set(local("2026-11-30 23:50"))
    late = await sos(core, "e3")
    await attended(core, clock, late, door_after=1200)
    clock.set(local("2026-12-01 00:20"))
    await engine.order_action(december, "start", actor="caregiver:c_mid", caregiver="c_mid")
    await engine.order_action(december, "deliver", actor="caregiver:c_mid", caregiver="c_mid", note="送到")
    clock.set(local("2026-12-01 00:30"))
    await sos(core, "e2")
    clock.set(local("2026-12-02 09:00"))


@pytest.fixture
async def november(tmp_path: Path) -> AsyncIterator[Core]:
    clock = ManualClock()
    _, core = await open_city(tmp_path / "data", clock)
    await write_november(core, clock)
    yield core
    await core.close()


async def export_of(core: Core, period: str = "2026-11", *, drill: bool = False) -> dict[str, Any]:
    return core.views.gov_export(core.views.gov_period(period), include_drill=drill)


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return loaded


def regold(document: dict[str, Any]) -> None:
    if os.environ.get("ANXIN_REGOLD") != "1":
        return
    DATA.mkdir(exist_ok=True)
    GOLDEN.write_text(to_json(document), encoding="utf-8")
    for which, name in csv_names(document).items():
        (DATA / name).write_bytes(to_csv(document, which).encode("utf-8"))


# -- the golden export ----------------------------------------------------------------------------------


async def test_the_export_of_a_known_journal_is_the_checked_in_one(november: Core) -> None:
    document = await export_of(november)
    regold(document)
    assert to_json(document) == GOLDEN.read_text(encoding="utf-8")


async def test_its_csv_files_are_the_checked_in_ones(november: Core) -> None:
    document = await export_of(november)
    for which, name in csv_names(document).items():
        text = to_csv(document, which)
        assert text == (DATA / name).read_bytes().decode("utf-8"), name
        assert text.startswith("\ufeff" + ",".join(SETS[which]) + "\r\n")
    with zipfile.ZipFile(io.BytesIO(to_zip(document))) as archive:
        assert sorted(archive.namelist()) == sorted(csv_names(document).values())
        for which, name in csv_names(document).items():
            assert archive.read(name).decode("utf-8") == to_csv(document, which)
    assert to_zip(document) == to_zip(json.loads(to_json(document)))  # the same export, the same bytes


async def test_the_export_is_valid_against_its_json_schema(november: Core) -> None:
    validator = jsonschema.Draft202012Validator(schema())
    jsonschema.Draft202012Validator.check_schema(schema())
    for document in (await export_of(november), await export_of(november, drill=True)):
        errors = sorted(validator.iter_errors(json.loads(to_json(document))), key=str)
        assert not errors, errors[:3]


async def test_what_the_golden_export_holds(november: Core) -> None:
    """The rules, read off the document (so that a re-golded file that breaks them still fails)."""
    document = await export_of(november)
    incidents = {row["incident_id"]: row for row in document["incidents"]}
    outcomes = sorted(row["outcome"] for row in incidents.values())
    assert outcomes == ["false_alarm", "open", "open", "resolved", "resolved", "to_120", "to_120"]
    assert not any(row["drill"] for row in incidents.values())
    technical = [row for row in incidents.values() if row["technical"]]
    assert [row["elder_id"] for row in technical] == ["e4"]
    attended_row = next(row for row in incidents.values() if row["outcome"] == "resolved" and not row["technical"])
    assert (attended_row["answer_s"], attended_row["first_offer_s"], attended_row["door_s"]) == (20, 0, 540)
    late = document["incidents"][-1]
    assert late["opened"] == "2026-11-30T23:50:00+08:00" and late["door_s"] == 1200  # at the door in December
    stranger = next(row for row in incidents.values() if row["elder_id"] is None)
    assert stranger["community"] == LANTIAN  # the registered community nearest to where it was placed
    elders = {row["elder_id"]: row for row in document["elders"]}
    assert sorted(elders) == ["e1", "e2", "e3"]  # e4's only incident is technical
    assert elders["e1"] == {"elder_id": "e1", "name": None, "community": LANTIAN, "age_band": "80-89",
                            "risk_flags": ["living_alone"], "care_level": 2, "entitlement": "free", "incidents": 1,
                            "services": 1}  # fmt: skip
    # the fall, and the call's incident; the order delivered at 00:40 on the 1st
    assert (elders["e2"]["incidents"], elders["e2"]["services"]) == (2, 1)
    called = next(row for row in incidents.values() if row["source"] == "hotline")
    assert (called["elder_id"], called["alarm_type"], called["outcome"]) == ("e2", "medical", "resolved")
    assert elders["e3"]["age_band"] == "90+"
    services = document["services"]
    assert [row["state"] for row in services] == ["delivered", "delivered", "cancelled", "requested"]
    assert services[0]["delivered"] == "2026-11-01T00:40:00+08:00" and services[0]["ordered"].startswith("2026-10-31")
    assert document["counts"] == {"elders": 3, "incidents": 7, "services": 4}
    assert document["period"] == {"label": "2026-11", "first_day": "2026-11-01", "last_day": "2026-11-30",
                                  "start": "2026-11-01T00:00:00+08:00", "end": "2026-12-01T00:00:00+08:00"}  # fmt: skip
    assert document["centre"] == "蓝田社区居家养老服务中心" and document["names_included"] is False


async def test_never_a_phone_an_address_a_position_or_a_birth_date(november: Core) -> None:
    document = await export_of(november)
    text = to_json(document) + "".join(to_csv(document, which) for which in ("elders", "incidents", "services"))
    for secret in ("13505960001", "13900000009", "蓝田社区1号楼", "1940-05-01", "24.51", "117.70", "王秀英", "李桂兰",
                   "350603194005011236", "冠心病", "4321#", "王建国", "13900000001"):  # fmt: skip
        assert secret not in text, secret


async def test_drills_only_when_asked_and_marked(november: Core) -> None:
    document = await export_of(november, drill=True)
    drills = [row for row in document["incidents"] if row["drill"]]
    assert [(row["alarm_type"], row["outcome"]) for row in drills] == [("fall", "false_alarm")]
    assert document["drill_included"] is True
    assert not any(row["opened"].startswith("2026-11-12") for row in document["incidents"])  # the test call: never


async def test_names_when_configured_and_only_the_elders(tmp_path: Path) -> None:
    clock = ManualClock()
    _, core = await open_city(tmp_path / "data", clock, export_names=True)
    try:
        clock.set(local("2026-11-03 10:00"))
        await sos(core, "e1")
        await sos(core, "e4")
        document = await export_of(core)
    finally:
        await core.close()
    assert [(row["elder_id"], row["name"]) for row in document["elders"]] == [
        ("e1", "王秀英"), ("e4", '=HYPERLINK("http://x")')
    ]  # fmt: skip
    assert document["names_included"] is True
    elders_csv = to_csv(document, "elders")
    assert "'=HYPERLINK" in elders_csv  # a formula is written as text
    assert "13505960001" not in to_json(document) and "龙文区蓝田街道" not in to_json(document)


async def test_a_range_of_days(november: Core) -> None:
    document = await export_of(november, "2026-11-01..2026-11-05")
    assert document["period"]["label"] == "2026-11-01..2026-11-05"
    assert [row["alarm_type"] for row in document["incidents"]] == ["sos", "fall"]
    assert csv_names(document)["elders"] == "gov-export-2026-11-01_2026-11-05-elders.csv"


# -- the pieces ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [("2026-11", "2026-11-01", "2026-11-30"), ("2028-02", "2028-02-01", "2028-02-29"),
     ("2026-12-31..2027-01-02", "2026-12-31", "2027-01-02"), (" 2026-11-05..2026-11-05 ", "2026-11-05", "2026-11-05")],
)  # fmt: skip
def test_periods(text: str, first: str, last: str) -> None:
    period = parse_period(text, "Asia/Shanghai")
    assert (period.start_day.isoformat(), period.last_day.isoformat()) == (first, last)
    assert period.end - period.start == ((period.last_day - period.start_day).days + 1) * 86400


@pytest.mark.parametrize("text", ["2026-13", "2026-11-05..2026-11-01", "2025-01-01..2026-12-31", "november", "",
                                  "2026-02-30..2026-03-01", "2026-11..", "9999-12", "9999-12-31..9999-12-31",
                                  "9999-12-01..9999-12-31", "0000-01", "２０２６-１１",
                                  "２０２６-１１-０１..２０２６-１１-０３"])  # fmt: skip
def test_a_bad_period_is_refused_with_its_code(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_period(text, "Asia/Shanghai")
    assert refused.value.code == "export_period"


def test_age_bands() -> None:
    on = parse_period("2026-11", "Asia/Shanghai").last_day
    born = {"1966-11-30": "60-69", "1966-12-01": "under_60", "1946-11-30": "80-89", "1936-12-01": "80-89",
            "1936-11-30": "90+"}  # fmt: skip
    assert {text: age_band(datetime.fromisoformat(text).date(), on) for text in born} == born
    assert age_band(None, on) is None


# -- folded like the period report ---------------------------------------------------------------------------


async def test_folded_in_slices_it_is_the_same_document(november: Core) -> None:
    """dispatch.govexport rule 9: a slice of one record at a time hands back many times and changes nothing."""
    period = november.views.gov_period("2026-11")
    steps = november.views.gov_fold(period, include_drill=True, pace=Pace(1))
    slices = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            document = done.value
            break
        slices += 1
    assert slices > len(document["incidents"]) + len(document["services"]) + len(document["elders"])
    assert to_json(document) == to_json(november.views.gov_export(period, include_drill=True))


async def test_the_records_are_those_taken_when_it_was_asked(november: Core) -> None:
    """An alarm raised between two slices is the next export's; the one being folded keeps its records."""
    period = november.views.gov_period("2026-11")
    steps = november.views.gov_fold(period, pace=Pace(1))
    next(steps)
    engine_of(november).clock.set(local("2026-11-30 23:58"))  # type: ignore[attr-defined]
    await sos(november, "e1")
    document = run(steps)
    assert to_json(document) == GOLDEN.read_text(encoding="utf-8")
    assert len(november.views.gov_export(period)["incidents"]) == 8


async def test_door_times_and_outcomes_are_the_period_reports(november: Core) -> None:
    """The export's door time and outcome say what the report reads off the projection: the earliest
    ``on_scene_at`` of the incident's assignments, and periodreport.outcome."""
    state = engine_of(november).state
    rows = {row["incident_id"]: row for row in (await export_of(november, drill=True))["incidents"]}
    for incident_id, row in rows.items():
        incident = state.incidents[incident_id]
        doors = [state.assignments[a].on_scene_at for a in incident.assignments]
        door = min((d for d in doors if d is not None), default=None)
        assert row["door_s"] == (None if door is None else round(door - incident.opened_at)), incident_id
        assert row["outcome"] == outcome(incident), incident_id
    cancelled = [i for i in rows if state.incidents[i].cancelled_at is not None]
    assert {state.incidents[i].state.value for i in cancelled} == {"closed", "cancelled"}  # closed after, or not
    assert all(rows[i]["outcome"] == "false_alarm" for i in cancelled)


async def test_its_files_written_in_slices_are_the_same_bytes(november: Core) -> None:
    """Rule 9: the JSON is json.dumps's text and the zip is the one compressed in one piece, however sliced."""
    document = await export_of(november, drill=True)
    assert run(json_steps(document, Pace(1))) == json.dumps(document, ensure_ascii=False, indent=1,
                                                             sort_keys=True) + "\n"  # fmt: skip
    at_once = io.BytesIO()
    with zipfile.ZipFile(at_once, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for which, name in csv_names(document).items():
            member = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(member, to_csv(document, which).encode("utf-8"))
    assert run(zip_steps(document, Pace(1))) == to_zip(document) == at_once.getvalue()
    body, name = run(file_steps(document, "csv", Pace(1)))
    assert (body, name) == (at_once.getvalue(), "gov-export-2026-11.zip")
