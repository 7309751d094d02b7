"""Care calls through the app (Starlette's TestClient) on a real SQLite data folder: the day's list, recording
attempts (a retry later, a home visit after the third miss, settled once), refusals by code, reads on record,
and scope by the elder's community."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from dispatch.clock import ManualClock
from tests.conftest import elder, seed, settings_for
from tests.console.streets import STREET_A, STREET_B, elder_a, elder_b, person
from tests.console.test_api import auth, token


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data", care_call_retry_minutes=30)
    elders = [
        elder_a(risk_flags=["living_alone"]),
        elder_b(risk_flags=["empty_nest"]),
        elder("ey", name="年轻人", phone="13505960077", community=f"{STREET_A}/蓝田社区", birth_date="1960-01-01"),
    ]
    asyncio.run(seed(settings, elders=elders))
    # noon in the centre's time zone: a retry 30 minutes after a call stays on the same day's list (on the wall
    # clock, the last half hour before midnight in Shanghai moved it to tomorrow's and failed the test)
    noon = datetime.now(ZoneInfo(settings.timezone)).replace(hour=12, minute=0, second=0, microsecond=0)
    with TestClient(app_for(settings, ManualClock(noon.timestamp()))) as test_client:
        yield test_client


def _attempt(client: TestClient, who: str, elder_id: str, **body: Any) -> Any:
    return client.post(f"/api/care-calls/{elder_id}", json=body, headers=auth(who))


def _today(client: TestClient, who: str, query: str = "") -> dict[str, Any]:
    response = client.get(f"/api/care-calls{query}", headers=auth(who))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_the_days_list_and_a_missed_call_retried(client: TestClient) -> None:
    admin = token(client)
    operator = person(client, admin, "op", "operator", ["*"])
    today = _today(client, operator)
    assert [c["elder_id"] for c in today["calls"]] == ["eb", "ea"]  # by name; ey is 66 and not flagged
    ea = today["calls"][1]
    assert (ea["reasons"], ea["phone"], ea["attempts"], ea["retry_at"]) == (["living_alone"], "13505960001", 0, None)
    assert _today(client, operator, f"?date={today['date']}") == today
    assert today["aged_from"] == 80
    for bad in ("tomorrow", "2026-02-30"):
        assert client.get(f"/api/care-calls?date={bad}", headers=auth(operator)).status_code == 422
    missed = _attempt(client, operator, "ea", reached=False, note="无人接听")
    assert missed.status_code == 200, missed.text
    call = missed.json()["call"]
    assert (call["state"], call["attempts"], call["ready"], call["last_by"]) == ("retrying", 1, False, "operator:op")
    assert call["retry_at"] == pytest.approx(call["last_call_at"] + 30 * 60)
    assert missed.json()["visit"] is None
    after = _today(client, operator)
    assert [c["elder_id"] for c in after["calls"]] == ["eb", "ea"]  # waiting for its retry: last
    reached = _attempt(client, operator, "eb", reached=True, wellbeing="needs_help", note="想要助浴")
    assert reached.json()["call"]["last_wellbeing"] == "needs_help"
    later = _today(client, operator)
    assert [c["elder_id"] for c in later["calls"]] == ["ea"]
    assert [c["elder_id"] for c in later["done"]] == ["eb"]
    next_week = (date.fromisoformat(today["date"]) + timedelta(days=7)).isoformat()
    assert "eb" in [c["elder_id"] for c in _today(client, operator, f"?date={next_week}")["calls"]]


def test_three_misses_propose_a_visit_settled_once(client: TestClient) -> None:
    admin = token(client)
    operator = person(client, admin, "op", "operator", ["*"])
    answers = [_attempt(client, operator, "ea", reached=False).json() for _ in range(3)]
    assert [a["visit"] is not None for a in answers] == [False, False, True]
    visit = answers[-1]["visit"]
    assert (visit["elder_id"], visit["attempts"], visit["open"], visit["drill"]) == ("ea", 3, True, False)
    assert "ea" not in [c["elder_id"] for c in _today(client, operator)["calls"]]
    refused = _attempt(client, operator, "ea", reached=False)
    assert (refused.status_code, refused.json()["code"]) == (409, "care_visit_open")
    (listed,) = client.get("/api/care-visits", headers=auth(operator)).json()["visits"]
    assert listed["visit_id"] == visit["visit_id"]
    blank = client.post(f"/api/care-visits/{visit['visit_id']}/settle", json={"note": "  "}, headers=auth(operator))
    assert (blank.status_code, blank.json()["code"]) == (422, "note_required")
    settled = client.post(f"/api/care-visits/{visit['visit_id']}/settle", json={"note": "社工上门，老人在家午睡"},
                          headers=auth(operator))  # fmt: skip
    assert settled.status_code == 200, settled.text
    assert (settled.json()["open"], settled.json()["settled_by"]) == (False, "operator:op")
    again = client.post(f"/api/care-visits/{visit['visit_id']}/settle", json={"note": "x"}, headers=auth(operator))
    assert (again.status_code, again.json()["code"]) == (409, "care_visit_settled")
    assert client.get("/api/care-visits", headers=auth(operator)).json()["visits"] == []
    assert len(client.get("/api/care-visits?state=settled", headers=auth(operator)).json()["visits"]) == 1


def test_refusals_by_code(client: TestClient) -> None:
    admin = token(client)
    for body, status, code in (
        ({"reached": True}, 422, "wellbeing_required"),
        ({"reached": False, "wellbeing": "well"}, 422, "care_call_not_reached"),
    ):
        response = _attempt(client, admin, "ea", **body)
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert _attempt(client, admin, "ea", reached=True, wellbeing="fine").status_code == 422
    young = _attempt(client, admin, "ey", reached=True, wellbeing="well")
    assert (young.status_code, young.json()["code"]) == (422, "care_call_not_scheduled")
    nobody = _attempt(client, admin, "nobody", reached=False)
    assert (nobody.status_code, nobody.json()["code"]) == (404, "unknown_elder")
    unknown = client.post("/api/care-visits/CV-1/settle", json={"note": "x"}, headers=auth(admin))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_care_visit")


def test_a_drill_call_keeps_to_the_drill_list(client: TestClient) -> None:
    admin = token(client)
    for _ in range(3):
        assert _attempt(client, admin, "ea", reached=False, drill=True).status_code == 200
    real = _today(client, admin)
    assert [(c["elder_id"], c["attempts"]) for c in real["calls"]] == [("eb", 0), ("ea", 0)]
    assert "ea" not in [c["elder_id"] for c in _today(client, admin, "?drill=true")["calls"]]
    (visit,) = client.get("/api/care-visits", headers=auth(admin)).json()["visits"]
    assert visit["drill"] is True


def test_scope_by_the_elders_community_and_reads_on_record(client: TestClient) -> None:
    admin = token(client)
    mine = person(client, admin, "op_a", "operator", [STREET_A])
    theirs = person(client, admin, "op_b", "operator", [STREET_B])
    assert [c["elder_id"] for c in _today(client, mine)["calls"]] == ["ea"]
    assert "朝阳" not in client.get("/api/care-calls", headers=auth(mine)).text
    head = client.get("/api/journal?limit=1", headers=auth(admin)).json()["head"]
    outside = _attempt(client, mine, "eb", reached=False)
    assert outside.status_code == 404
    assert client.get("/api/journal?limit=1", headers=auth(admin)).json()["head"] == head  # nothing written
    for _ in range(3):
        _attempt(client, theirs, "eb", reached=False)
    (visit,) = client.get("/api/care-visits", headers=auth(theirs)).json()["visits"]
    assert client.get("/api/care-visits", headers=auth(mine)).json()["visits"] == []
    refused = client.post(f"/api/care-visits/{visit['visit_id']}/settle", json={"note": "x"}, headers=auth(mine))
    assert refused.status_code == 404
    journal = client.get("/api/journal?limit=200", headers=auth(admin)).json()["entries"]
    reads = [e for e in journal if e["kind"] == "records.read" and e["actor"] == "operator:op_a"]
    assert {r["payload"]["what"] for r in reads} >= {"care_calls"}
    made = [e for e in journal if e["kind"] == "care_call.made"]
    assert {e["actor"] for e in made} == {"operator:op_b"}
