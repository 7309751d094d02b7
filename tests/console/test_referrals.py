"""Referrals over HTTP (console.referrals): an operator refers, the clinic's desk answers; every refusal is a 4xx
with a code the pages translate; what the clinic reads of an elder goes on record before it is shown."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from dispatch.entries import ElderViewed, RecordsRead, ReferralMade
from dispatch.journal import Entry
from tests.conftest import elder, responder, seed, settings_for
from tests.console.test_api import account, auth, token


def _closed_hours() -> str:
    """Opening hours that do not hold now in the centre's time zone (two to three hours from now)."""
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    start, end = now + timedelta(hours=2), now + timedelta(hours=3)
    return f"{start:%H}:00-{end:%H}:00"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data")
    clinic = {"kind": "clinic", "skills": [], "green_channel": True, "hours": "24h"}
    asyncio.run(
        seed(
            settings,
            elders=[elder("e1", medical_notes="房颤，服用华法林", care_level=3)],
            responders=[
                responder("c1", 24.511, 117.70),
                responder("k1", 24.500, 117.70, name="蓝田卫生院", **clinic),
                responder("k2", 24.530, 117.70, name="朝阳卫生院", **clinic),
                responder("k_shut", 24.505, 117.70, name="夜诊", **{**clinic, "hours": _closed_hours()}),
                responder("k_plain", 24.506, 117.70, name="普通诊所", **{**clinic, "green_channel": False}),
            ],
        )
    )
    with TestClient(app_for(settings)) as test_client:
        yield test_client


def entries(client: TestClient) -> list[Entry]:
    core = client.app.state.core  # type: ignore[attr-defined]  # the app's state is untyped
    found: list[Entry] = client.portal.call(core.journal.read, 0, 100_000)  # type: ignore[union-attr]
    return found


def test_an_operator_refers_and_the_clinic_answers_with_its_reads_on_record(client: TestClient) -> None:
    admin = token(client)
    operator = account(client, admin, "op", "operator")
    desk = account(client, admin, "k1desk", "clinic", "k1")
    incident = client.post("/api/alarms", json={"elder_id": "e1", "alarm_type": "fall"}, headers=auth(admin)).json()
    incident_id = incident["incident_id"]
    view = client.get(f"/api/incidents/{incident_id}", headers=auth(operator)).json()
    assert view["clinic"]["clinic_id"] == "k1" and "refer" in view["actions"] and view["referrals"] == []
    referred = client.post(f"/api/incidents/{incident_id}/refer", json={"clinic_id": "k1", "note": "胸闷"},
                           headers=auth(operator))  # fmt: skip
    assert referred.status_code == 200, referred.text
    (made,) = referred.json()["referrals"]
    assert (made["clinic_name"], made["state"], made["proposed"], made["note"]) == (
        "蓝田卫生院",
        "referred",
        True,
        "胸闷",
    )
    before = client.get("/api/clinic/referrals", headers=auth(desk)).json()
    (line,) = before["referrals"]
    assert line["elder_name"] is None and line["medical_notes"] is None and line["alarm_type"] == "fall"
    assert line["note"] == "胸闷" and line["age"] is not None
    accepted = client.post(f"/api/clinic/referrals/{made['referral_id']}/accept", json={"note": "已备床"},
                           headers=auth(desk))  # fmt: skip
    assert accepted.status_code == 200, accepted.text
    (line,) = accepted.json()["referrals"]
    assert (line["elder_name"], line["medical_notes"], line["care_level"]) == ("王秀英", "房颤，服用华法林", 3)
    reads = [e for e in entries(client) if e.actor == "clinic:k1desk"]
    viewed = [e.fact for e in reads if isinstance(e.fact, ElderViewed)]
    assert [(v.elder_id, v.what, v.subject) for v in viewed] == [("e1", "referral", made["referral_id"])]
    assert any(isinstance(e.fact, RecordsRead) and e.fact.elder_ids == ("e1",) for e in reads)
    for action, body in (("arrived", {}), ("outcome", {"outcome": "admitted", "note": "收住心内科"})):
        done = client.post(f"/api/clinic/referrals/{made['referral_id']}/{action}", json=body, headers=auth(desk))
        assert done.status_code == 200, done.text
    shown = client.get(f"/api/incidents/{incident_id}", headers=auth(operator)).json()["referrals"][0]
    assert (shown["state"], shown["outcome"], shown["words"]) == ("concluded", "admitted", "收住心内科")
    assert [e.actor for e in entries(client) if isinstance(e.fact, ReferralMade)] == ["operator:op"]


@pytest.mark.parametrize(
    ("clinic_id", "status", "code"),
    [
        ("k_shut", 409, "clinic_closed"),
        ("k_plain", 409, "clinic_no_green_channel"),
        ("c1", 404, "unknown_clinic"),
        ("nowhere", 404, "unknown_clinic"),
    ],
)
def test_a_referral_the_clinic_cannot_take_is_refused_with_a_code(
    client: TestClient, clinic_id: str, status: int, code: str
) -> None:
    admin = token(client)
    incident_id = client.post("/api/alarms", json={"elder_id": "e1", "alarm_type": "medical"},
                              headers=auth(admin)).json()["incident_id"]  # fmt: skip
    head = len(entries(client))
    refused = client.post(f"/api/incidents/{incident_id}/refer", json={"clinic_id": clinic_id}, headers=auth(admin))
    assert (refused.status_code, refused.json()["code"]) == (status, code), refused.text
    assert len(entries(client)) == head


def test_closed_incidents_and_wrong_moves_are_refused(client: TestClient) -> None:
    admin = token(client)
    desk = account(client, admin, "k2desk", "clinic", "k2")
    incident_id = client.post("/api/alarms", json={"elder_id": "e1", "alarm_type": "fall"},
                              headers=auth(admin)).json()["incident_id"]  # fmt: skip
    referral = client.post(f"/api/incidents/{incident_id}/refer", json={"clinic_id": "k2"}, headers=auth(admin))
    referral_id = referral.json()["referrals"][0]["referral_id"]
    again = client.post(f"/api/incidents/{incident_id}/refer", json={"clinic_id": "k1"}, headers=auth(admin))
    assert (again.status_code, again.json()["code"], again.json()["params"]["clinic"]) == (
        409,
        "referral_open",
        "朝阳卫生院",
    )
    early = client.post(f"/api/clinic/referrals/{referral_id}/arrived", json={}, headers=auth(desk))
    assert (early.status_code, early.json()["code"]) == (409, "referral_closed")
    bad = client.post(f"/api/clinic/referrals/{referral_id}/outcome", json={"outcome": "cured"}, headers=auth(desk))
    assert bad.status_code == 422
    cancelled = client.post(
        f"/api/referrals/{referral_id}/cancel", json={"reason": "家属自行送医"}, headers=auth(admin)
    )
    assert cancelled.status_code == 200 and cancelled.json()["referrals"][0]["state"] == "cancelled"
    late = client.post(f"/api/clinic/referrals/{referral_id}/accept", json={}, headers=auth(desk))
    assert (late.status_code, late.json()["code"], late.json()["params"]) == (
        409,
        "referral_closed",
        {"state": "cancelled"},
    )
    for step, body in (("resolve", {"outcome": "平安"}), ("close", None)):
        assert client.post(f"/api/incidents/{incident_id}/{step}", json=body, headers=auth(admin)).status_code == 200
    closed = client.post(f"/api/incidents/{incident_id}/refer", json={"clinic_id": "k1"}, headers=auth(admin))
    assert (closed.status_code, closed.json()["code"]) == (409, "incident_closed")


def test_a_clinic_account_is_bound_to_a_clinic(client: TestClient) -> None:
    admin = token(client)
    body = {"username": "wrong", "password": "password-123", "role": "clinic", "responder_id": "c1"}
    refused = client.post("/api/accounts", json=body, headers=auth(admin))
    assert (refused.status_code, refused.json()["code"]) == (422, "responder_kind")
    caregiver = {**body, "role": "caregiver", "responder_id": "k1"}
    assert client.post("/api/accounts", json=caregiver, headers=auth(admin)).json()["code"] == "responder_kind"
    unbound = {**body, "responder_id": None}
    assert client.post("/api/accounts", json=unbound, headers=auth(admin)).json()["code"] == "responder_required"
