"""The elder's file over HTTP (console.elderfile) on a real SQLite data folder: what it holds, who may read it,
the read on record with its reason, drills left out, the timeline paged; and the PDF, read back with pdftotext."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from console.filepdf import font_name, render_pdf
from dispatch.devices import DeviceReport
from dispatch.registry import Contact
from tests.conftest import require_program, settings_for
from tests.console.streets import STREET_A, STREET_B, elder_a, person, seed_two_streets
from tests.console.test_api import auth, token

RESIDENT_ID = "11010519491231002X"  # GB 11643-1999's own example: born 1949-12-31, a woman


@dataclass
class City:
    client: TestClient
    admin: str
    operator: str  # street A's
    other: str  # an operator of street B
    supervisor: str  # street A's

    def get(self, path: str, who: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=auth(who))


@pytest.fixture
def city(tmp_path: Path) -> Iterator[City]:
    settings = settings_for(tmp_path / "data")
    asyncio.run(seed_two_streets(settings))
    with TestClient(app_for(settings)) as client:
        admin = token(client)
        son = Contact(name="李明", phone="13800000011", relation="儿子", app=True)
        daughter = Contact(name="李华", phone="13800000012", relation="女儿")
        record = elder_a(resident_id=RESIDENT_ID, lives_with="alone", caregiver_id="ca", contacts=[son, daughter],
                         medical_notes="高血压", risk_flags=["living_alone"], care_level=2)  # fmt: skip
        saved = client.put("/api/elders/ea", json=record.model_dump(mode="json"), headers=auth(admin))
        assert saved.status_code == 200, saved.text
        yield City(
            client,
            admin,
            person(client, admin, "op_a", "operator", [STREET_A]),
            person(client, admin, "op_b", "operator", [STREET_B]),
            person(client, admin, "sup_a", "supervisor", [STREET_A]),
        )


def _alarm(city: City, *, drill: bool = False, alarm_type: str = "fall") -> str:
    body = {"elder_id": "ea", "alarm_type": alarm_type, "drill": drill}
    created = city.client.post("/api/alarms", json=body, headers=auth(city.operator))
    assert created.status_code == 201, created.text
    incident_id: str = created.json()["incident_id"]
    return incident_id


def _health(city: City, *readings: dict[str, float]) -> None:
    core = city.client.app.state.core  # type: ignore[attr-defined]
    reports = [DeviceReport("watch", "8800000001", "health", "UD", detail=dict(r)) for r in readings]
    city.client.portal.call(core.intake.devices, reports)  # type: ignore[union-attr]


def _views(city: City) -> list[dict[str, Any]]:
    journal = city.get("/api/journal", city.admin, limit=1000).json()["entries"]
    return [e for e in journal if e["kind"] == "elder.viewed"]


def test_the_file_holds_the_record_the_devices_the_contacts_in_order_and_the_timeline(city: City) -> None:
    incident_id = _alarm(city)
    resolved = city.client.post(f"/api/incidents/{incident_id}/resolve", json={"outcome": "扶起，无外伤"},
                                headers=auth(city.operator))  # fmt: skip
    assert resolved.status_code == 200, resolved.text
    answer = city.get("/api/elders/ea/file", city.operator, why="incident")
    assert answer.status_code == 200, answer.text
    file = answer.json()
    elder = file["elder"]
    assert elder["name"] == "王秀英" and elder["sex"] == "female" and elder["birth_date"] == "1949-12-31"
    assert elder["resident_id"] == "110105********002X"  # an operator: the first 6 and the last 4
    assert elder["lives_with"] == "alone" and elder["caregiver_name"] and elder["medical_notes"] == "高血压"
    assert [c["name"] for c in elder["contacts"]] == ["李明", "李华"] and elder["contacts"][0]["app"] is True
    assert [d["device_id"] for d in elder["devices"]] == ["8800000001"]
    assert "current" in elder["vouchers"]
    kinds = [line["kind"] for line in file["timeline"]]
    assert kinds[0] == "incident.resolved" and "incident.opened" in kinds  # newest first
    opened = next(line for line in file["timeline"] if line["kind"] == "incident.opened")
    assert opened["incident_id"] == incident_id and opened["detail"]["alarm_type"] == "fall"
    assert all(line["kind"] != "elder.viewed" for line in file["timeline"])  # reads are audit, not history
    assert file["health"] is None and file["health_shown"] is False  # operators see the alarm, not the chart
    supervisor = city.get("/api/elders/ea/file", city.supervisor, why="case_conference").json()
    assert supervisor["elder"]["resident_id"] == RESIDENT_ID


def test_the_read_is_journaled_with_why_and_a_file_without_why_is_refused(city: City) -> None:
    refused = city.get("/api/elders/ea/file", city.operator)
    assert refused.status_code == 422 and refused.json()["code"] == "why_required"
    vague = city.get("/api/elders/ea/file", city.operator, why="other")
    assert vague.status_code == 422 and vague.json()["field"] == "words"
    assert _views(city) == []  # nothing shown, nothing on record
    shown = city.get("/api/elders/ea/file", city.operator, why="other", words="家属来访")
    assert shown.status_code == 200
    [viewed] = _views(city)
    assert viewed["payload"]["why"] == "other: 家属来访" and viewed["payload"]["what"] == "file"
    assert viewed["actor"].endswith("op_a")
    reads = city.get("/api/elders/ea/reads", city.supervisor).json()["reads"]  # "who read my data" says why
    assert [(r["actor"], r["what"], r["why"]) for r in reads if r["what"] == "file"] == [
        ("operator:op_a", "file", "other: 家属来访")
    ]


def test_an_operator_of_another_street_gets_404_and_nothing_is_written(city: City) -> None:
    head = city.get("/api/journal", city.admin, limit=1).json()["head"]
    for path in ("/api/elders/ea/file", "/api/elders/ea/file.pdf"):
        assert city.get(path, city.other, why="incident").status_code == 404
        assert city.get(path, city.other).status_code == 404  # outside: 404 before the reason is asked
    assert city.get("/api/journal", city.admin, limit=1).json()["head"] == head


def test_drills_are_left_out_unless_asked_and_filters_choose_a_section(city: City) -> None:
    real = _alarm(city)
    drill = _alarm(city, drill=True, alarm_type="sos")
    file = city.get("/api/elders/ea/file", city.operator, why="incident").json()
    assert {line["incident_id"] for line in file["timeline"]} == {real, None}  # None: the record's change
    with_drills = city.get("/api/elders/ea/file", city.operator, why="incident", drills="true").json()
    assert {line["incident_id"] for line in with_drills["timeline"]} == {real, drill, None}
    calls = city.get("/api/elders/ea/file", city.operator, why="incident", section="calls").json()
    assert calls["timeline"] == []
    notes = city.client.post(f"/api/incidents/{real}/notes", json={"text": "邻居有钥匙"}, headers=auth(city.operator))
    assert notes.status_code in (200, 201), notes.text
    only_notes = city.get("/api/elders/ea/file", city.operator, why="incident", section="notes").json()
    assert [line["detail"]["text"] for line in only_notes["timeline"]] == ["邻居有钥匙"]


def test_the_timeline_is_paged_newest_first(city: City) -> None:
    for _ in range(3):
        incident_id = _alarm(city)
        city.client.post(f"/api/incidents/{incident_id}/cancel", json={"reason": "误报"}, headers=auth(city.operator))
    whole = city.get("/api/elders/ea/file", city.operator, why="incident", limit=200).json()["timeline"]
    first = city.get("/api/elders/ea/file", city.operator, why="incident", limit=4).json()
    assert first["timeline"] == whole[:4] and first["next_before"] == whole[3]["seq"]
    rest = city.get("/api/elders/ea/file", city.operator, why="incident", limit=200, before=first["next_before"])
    assert rest.json()["timeline"] == whole[4:] and "elder" not in rest.json()
    assert [line["seq"] for line in whole] == sorted((line["seq"] for line in whole), reverse=True)


def test_health_readings_are_series_for_supervisors(city: City) -> None:
    _health(city, {"heart_rate": 72, "systolic": 135, "diastolic": 85}, {"heart_rate": 80, "spo2": 97})
    file = city.get("/api/elders/ea/file", city.supervisor, why="assessment").json()
    health = file["health"]
    assert [p[1] for p in health["heart_rate"]["points"]] == [72, 80] and health["heart_rate"]["unit"] == "bpm"
    assert health["systolic"]["points"][0][1] == 135 and health["spo2"]["unit"] == "%"
    assert all(line["kind"] != "elder.health" for line in file["timeline"])  # the chart's, not the timeline's


def _test_call(city: City) -> None:
    """A test call of her watch: the window opened, an SOS from the watch passes it ("test passed")."""
    started = city.client.post("/api/devices/8800000001/test", headers=auth(city.operator))
    assert started.status_code == 200, started.text
    core = city.client.app.state.core  # type: ignore[attr-defined]
    sos = DeviceReport("watch", "8800000001", "alarm", "AL", alarm_type="sos", dedup="test-1")
    city.client.portal.call(core.intake.devices, [sos])  # type: ignore[union-attr]


def _missed_call(city: City) -> None:
    """A call from her phone nobody answered: "missed hotline call from ... on line ...: call back"."""
    for event in ("ringing", "ended"):
        body = {"event": event, "call_id": "missed-1", "caller": "13505960001", "line": "12349"}
        assert city.client.post("/api/hotline/events", json=body, headers=auth(city.admin)).status_code == 200


def test_the_pdf_is_chinese_text_with_the_name_and_the_timeline(city: City, tmp_path: Path) -> None:
    _test_call(city)  # first: an SOS while an incident of hers is open is real, never the test
    _alarm(city)
    _health(city, {"heart_rate": 72})
    _missed_call(city)
    answer = city.get("/api/elders/ea/file.pdf", city.supervisor, why="case_conference")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf" and answer.content.startswith(b"%PDF")
    viewed = _views(city)[-1]["payload"]
    assert viewed["why"] == "case_conference" and viewed["subject"] == "pdf"
    pdftotext = require_program("pdftotext")
    pdf = tmp_path / "file.pdf"
    pdf.write_bytes(answer.content)
    text = subprocess.run([pdftotext, "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True).stdout
    words = text.decode("utf-8")
    for expected in ("王秀英", "时间线", "报警：跌倒", "个案讨论", "李明", "心率", "档案修改："):
        assert expected in words, (expected, words[:2000])
    assert "resident_id" not in words  # the record's change names its fields in Chinese
    flat = "".join(words.split())
    for said in ("处置结果：测试通过", "备注：未接来电13505960001，线路12349，需回拨"):  # the server's phrases in words
        assert said in flat, (said, words[-2000:])
    for english in ("test passed", "hotline call", "call back"):
        assert english not in words, (english, words[-2000:])
    assert city.get("/api/elders/ea/file.pdf", city.operator).status_code == 422  # a reason, as for the page


def test_the_pdf_shows_assessments_and_says_when_readings_are_not_the_readers(tmp_path: Path) -> None:
    """render_pdf on its own, with an assessment of the kind the lead's ``assessment.recorded`` carries."""
    elder = elder_a(resident_id=RESIDENT_ID).model_dump(mode="json")
    elder.update(sex="female", age=76, devices=[], vouchers={}, caregiver_name=None)
    assessment = {"ts": 1_800_000_000.0, "level": 2, "grades": {"adl": 2, "mental": 1}, "care_level": 3,
                  "reason": "after_hospital", "assessor": "assessor:ping", "assessor_name": "张评"}  # fmt: skip
    file = {
        "elder": elder,
        "assessments": [assessment],
        "health": None,
        "timeline": [],
        "timeline_scope": {"more": True, "days": 90, "max": 2000},
    }  # a file cut short says so
    pdf = tmp_path / "file.pdf"
    pdf.write_bytes(render_pdf(file, printed_at=1_800_000_000.0, timezone="Asia/Shanghai", why="assessment: 年度"))
    text = subprocess.run([require_program("pdftotext"), "-enc", "UTF-8", str(pdf), "-"], capture_output=True,
                          check=True).stdout.decode("utf-8")  # fmt: skip
    for expected in (
        "能力等级：中度失能",
        "日常生活活动 中度受损",
        "住院后评估",
        "经办：评估员 张评",
        "健康数据仅主管可见",
        "没有记录",
        "能力评估 年度",
        "仅列出最近 90 天内的最新 0 条",
    ):
        assert expected in text, (expected, text[:1500])


def test_without_a_cjk_font_file_the_pdf_uses_the_built_in_cid_font() -> None:
    assert font_name((Path("/nonexistent/font.ttc"),)) == "STSong-Light"


def test_after_a_restart_the_file_is_the_same(tmp_path: Path) -> None:
    """The index is not stored: the replay of the journal at start files every entry again."""
    settings = settings_for(tmp_path / "data")
    asyncio.run(seed_two_streets(settings))
    timelines = []
    for _ in range(2):
        with TestClient(app_for(settings)) as client:
            admin = token(client)
            if not timelines:
                for alarm_type in ("fall", "sos"):
                    opened = client.post("/api/alarms", json={"elder_id": "ea", "alarm_type": alarm_type},
                                         headers=auth(admin))  # fmt: skip
                    incident_id = opened.json()["incident_id"]
                    client.post(f"/api/incidents/{incident_id}/cancel", json={"reason": "误报"}, headers=auth(admin))
            answer = client.get("/api/elders/ea/file", params={"why": "follow_up"}, headers=auth(admin))
            timelines.append(answer.json()["timeline"])
    assert timelines[0] == timelines[1] and len(timelines[0]) >= 4


def test_pdfs_are_made_off_the_event_loop_and_a_third_at_once_is_told_to_wait(city: City) -> None:
    """A PDF is rendered in a worker thread (the event loop answers alarms and devices meanwhile); with as many
    being made as are made at once, another is refused at once with 429 ``pdf_busy`` and Retry-After, never
    queued, and nothing is journaled for it."""
    from console import pdfwork

    portal = city.client.portal  # type: ignore[union-attr]
    for _ in range(pdfwork.PDF_AT_ONCE):
        portal.call(pdfwork.SLOTS.acquire)
    try:
        before = len(_views(city))
        busy = city.client.get("/api/elders/ea/file.pdf", params={"why": "case_conference"},
                               headers=auth(city.supervisor))  # fmt: skip
        assert busy.status_code == 429 and busy.json()["code"] == "pdf_busy" and busy.headers["Retry-After"] == "5"
        assert len(_views(city)) == before
    finally:
        for _ in range(pdfwork.PDF_AT_ONCE):
            pdfwork.SLOTS.release()
    made = city.client.get("/api/elders/ea/file.pdf", params={"why": "case_conference"}, headers=auth(city.supervisor))
    assert made.status_code == 200 and made.content.startswith(b"%PDF")
