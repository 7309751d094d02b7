"""Follow-ups through the app (Starlette's TestClient) on a real SQLite data folder: the day's list, recording
calls (409 once done), complaints for supervisors, evaluations, and scope by the elder's community."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from tests.conftest import settings_for
from tests.console.streets import STREET_A, STREET_B, person, seed_two_streets
from tests.console.test_api import auth, token

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data")
    asyncio.run(seed_two_streets(settings))
    with TestClient(app_for(settings)) as test_client:
        yield test_client


def _closed(client: TestClient, who: str, elder_id: str) -> str:
    """An incident of the elder, resolved and closed; its follow-up's id."""
    response = client.post("/api/incidents", json={"elder_id": elder_id, "alarm_type": "fall"}, headers=auth(who))
    assert response.status_code == 201, response.text
    incident_id = response.json()["incident_id"]
    for step, body in (("resolve", {"outcome": "老人无恙"}), ("close", None)):
        assert client.post(f"/api/incidents/{incident_id}/{step}", json=body, headers=auth(who)).status_code == 200
    listed = client.get("/api/follow-ups", headers=auth(who)).json()["follow_ups"]
    follow_up_id: str = next(f["follow_up_id"] for f in listed if f["subject_id"] == incident_id)
    return follow_up_id


def _record(client: TestClient, who: str, follow_up_id: str, **body: Any) -> Any:
    return client.post(f"/api/follow-ups/{follow_up_id}", json=body, headers=auth(who))


def test_the_days_list_and_recording_a_call(client: TestClient) -> None:
    admin = token(client)
    operator = person(client, admin, "op", "operator", ["*"])
    fid = _closed(client, operator, "ea")
    (follow_up,) = client.get("/api/follow-ups", headers=auth(operator)).json()["follow_ups"]
    due = datetime.fromtimestamp(follow_up["due"], SHANGHAI)
    assert (due.hour, due.minute) == (10, 0)
    assert client.get("/api/follow-ups?due=today", headers=auth(operator)).json()["follow_ups"] == []
    day = due.date().isoformat()
    assert len(client.get(f"/api/follow-ups?due={day}", headers=auth(operator)).json()["follow_ups"]) == 1
    before = (due.date() - timedelta(days=1)).isoformat()
    assert client.get(f"/api/follow-ups?due={before}", headers=auth(operator)).json()["follow_ups"] == []
    for bad in ("tomorrow", "2026-02-30"):
        assert client.get(f"/api/follow-ups?due={bad}", headers=auth(operator)).status_code == 422
    missed = _record(client, operator, fid, reached=False, note="无人接听")
    assert (missed.status_code, missed.json()["attempts"], missed.json()["state"]) == (200, 1, "open")
    done = _record(client, operator, fid, reached=True, satisfaction=5, note="老人很满意")
    assert (done.json()["state"], done.json()["satisfaction"], done.json()["recorded_by"]) == ("done", 5,
                                                                                             "operator:op")  # fmt: skip
    again = _record(client, operator, fid, reached=False)
    assert (again.status_code, again.json()["code"]) == (409, "follow_up_done")
    assert client.get("/api/follow-ups", headers=auth(operator)).json()["follow_ups"] == []
    assert len(client.get("/api/follow-ups?state=done", headers=auth(operator)).json()["follow_ups"]) == 1


def test_bad_answers_get_their_codes(client: TestClient) -> None:
    admin = token(client)
    fid = _closed(client, admin, "ea")
    cases = [({"reached": True}, "satisfaction_required"), ({"reached": False, "satisfaction": 3},
             "follow_up_not_reached")]  # fmt: skip
    for body, code in cases:
        refused = _record(client, admin, fid, **body)
        assert (refused.status_code, refused.json()["code"]) == (422, code)
    assert _record(client, admin, fid, reached=True, satisfaction=9).status_code == 422
    missing = _record(client, admin, "FU-0", reached=False)
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_follow_up")


def test_three_unanswered_calls_propose_a_visit(client: TestClient) -> None:
    admin = token(client)
    fid = _closed(client, admin, "ea")
    for _ in range(3):
        last = _record(client, admin, fid, reached=False)
    assert (last.json()["state"], last.json()["visit_proposed"]) == ("unreachable", True)


def test_complaints_are_the_supervisors_and_scoped(client: TestClient) -> None:
    admin = token(client)
    operator = person(client, admin, "op", "operator", ["*"])
    sup_a = person(client, admin, "sup_a", "supervisor", [STREET_A])
    op_a = person(client, admin, "op_a", "operator", [STREET_A])
    op_b = person(client, admin, "op_b", "operator", [STREET_B])
    fa, fb = _closed(client, admin, "ea"), _closed(client, admin, "eb")
    assert _record(client, operator, fa, reached=True, satisfaction=2, complaint="等了太久").status_code == 200
    assert _record(client, operator, fb, reached=True, satisfaction=1, complaint="态度不好").status_code == 200
    assert client.get("/api/complaints", headers=auth(operator)).status_code == 403
    (mine,) = client.get("/api/complaints", headers=auth(sup_a)).json()["complaints"]
    assert (mine["follow_up_id"], mine["text"], mine["elder_id"]) == (fa, "等了太久", "ea")
    assert len(client.get("/api/complaints", headers=auth(admin)).json()["complaints"]) == 2
    # a street's operator sees its own follow-ups only; the other street's is as if it did not exist
    listed = client.get("/api/follow-ups?state=all", headers=auth(op_a)).json()["follow_ups"]
    assert [f["follow_up_id"] for f in listed] == [fa]
    head = client.get("/api/journal?limit=1", headers=auth(admin)).json()["head"]
    assert _record(client, op_a, fb, reached=False).status_code == 404
    assert client.get("/api/journal?limit=1", headers=auth(admin)).json()["head"] == head  # nothing written
    assert _record(client, op_b, fb, reached=False).status_code == 409
    assert client.get("/api/evaluations", headers=auth(sup_a)).json() == {"evaluations": []}
    assert client.get("/api/evaluations", headers=auth(operator)).status_code == 403
    # the supervisor of street A settles street A's complaint, once; street B's is not theirs to see
    every = client.get("/api/complaints", headers=auth(admin)).json()["complaints"]
    other = next(c["complaint_id"] for c in every if c["elder_id"] == "eb")
    settle = {"resolution": "已致歉"}
    assert client.post(f"/api/complaints/{other}/settle", json=settle, headers=auth(sup_a)).status_code == 404
    path = f"/api/complaints/{mine['complaint_id']}/settle"
    assert client.post(path, json=settle, headers=auth(operator)).status_code == 403
    done = client.post(path, json=settle, headers=auth(sup_a))
    assert done.status_code == 200 and (done.json()["open"], done.json()["resolution"]) == (False, "已致歉")
    again = client.post(path, json=settle, headers=auth(sup_a))
    assert (again.status_code, again.json()["code"]) == (409, "complaint_settled")
    listed = client.get("/api/complaints", headers=auth(admin)).json()["complaints"]
    assert [c["open"] for c in listed] == [True, False]  # the open one first
