"""A family member's account (dispatch.family): bound to one elder's contact, offered that elder's alarms on the
phone channel when nobody else is free, and nothing else. Real app, real SQLite data folder, the two streets of
tests/console/streets.py (no caregiver on duty: every alarm reaches the family)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from dispatch.family import kin_id
from tests.conftest import settings_for
from tests.console.streets import STREET_B, elder_a, elder_b, person, seed_two_streets
from tests.console.test_api import auth, token
from tests.console.test_scopes import alarm

SON, DAUGHTER, B_SON = "13800000011", "13800000012", "13800000021"


@pytest.fixture
def city(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data")
    asyncio.run(seed_two_streets(settings))
    with TestClient(app_for(settings)) as client:
        admin = token(client)
        son = {"name": "李明", "phone": SON, "relation": "儿子", "app": True}
        daughter = {"name": "李红", "phone": DAUGHTER, "relation": "女儿"}
        b_son = {"name": "赵刚", "phone": B_SON, "relation": "儿子", "app": True}
        for made in (elder_a(contacts=[son, daughter]), elder_b(contacts=[b_son])):
            body = made.model_dump(mode="json")
            assert client.put(f"/api/elders/{made.elder_id}", json=body, headers=auth(admin)).status_code == 200
        yield client


def test_a_family_account_is_bound_to_a_contact_who_answers_on_the_phone_page(city: TestClient) -> None:
    admin = token(city)
    body = {"username": "fam", "password": "password-123", "role": "family", "name": "李明"}
    refused = city.post("/api/accounts", json=body, headers=auth(admin))
    assert refused.status_code == 422 and refused.json()["code"] == "responder_required"
    nobody = city.post("/api/accounts", json={**body, "responder_id": kin_id("ea", "13999999999")}, headers=auth(admin))
    assert nobody.status_code == 404
    off = city.post("/api/accounts", json={**body, "responder_id": kin_id("ea", DAUGHTER)}, headers=auth(admin))
    assert off.status_code == 422 and off.json()["code"] == "contact_not_on_app"
    assert off.json()["params"] == {"name": "李红"}
    admin_b = person(city, admin, "adm_b", "admin", [STREET_B])  # another street's admin cannot bind ea's son
    mine = {**body, "responder_id": kin_id("ea", SON), "scopes": [STREET_B]}
    other = city.post("/api/accounts", json=mine, headers=auth(admin_b))
    assert other.status_code == 404
    made = city.post("/api/accounts", json={**body, "responder_id": kin_id("ea", SON)}, headers=auth(admin))
    assert made.status_code == 201, made.text


def test_a_family_member_sees_only_their_own_elder_and_answers_like_a_caregiver(city: TestClient) -> None:
    admin = token(city)
    phone = person(city, admin, "fam", "family", ["*"], responder_id=kin_id("ea", SON))
    for path in ("/api/elders/ea", "/api/elders/eb", "/api/incidents", "/api/elders", "/api/calls",
                 "/api/responders", "/api/service-orders", "/api/journal"):  # fmt: skip
        assert city.get(path, headers=auth(phone)).status_code == 403, path
    with city.websocket_connect(f"/ws/caregiver?token={phone}") as ws:
        hello = ws.receive_json()
        assert hello["responder"]["kind"] == "family" and hello["responder"]["elder_name"] == "王秀英"
        ws.send_json({"type": "duty", "on": True, "id": 1})
        assert ws.receive_json() == {"type": "error", "ref": 1, "detail": "a family member has no duty and shares "
                                     "no position", "code": "forbidden", "params": {}, "field": None}  # fmt: skip
        alarm(city, admin, "eb")  # the other elder's alarm goes to her own family, never here
        ia = alarm(city, admin, "ea")
        offer = ws.receive_json()
        assert offer["type"] == "offer" and offer["incident_id"] == ia and offer["family"]
        assert (offer["elder_name"], offer["address"], offer["centre_phone"]) == ("王秀英", elder_a().address, "12349")
        ws.send_json({"type": "accept", "assignment_id": offer["assignment_id"], "id": 2})
        replies = [ws.receive_json(), ws.receive_json()]
        (job,) = [r for r in replies if r["type"] == "job"]
        assert {"medical_notes": "", "contacts": [], "risk_flags": []}.items() <= job["elder"].items()
        assert job["elder"]["phone"] == "13505960001" and job["centre_phone"] == "12349"
        for ref, status in enumerate(("en_route", "on_scene"), start=3):
            ws.send_json({"type": "status", "assignment_id": offer["assignment_id"], "status": status, "id": ref})
            seen = [ws.receive_json(), ws.receive_json()]
            assert {"type": "ok", "ref": ref} in seen
    detail = city.get(f"/api/incidents/{ia}", headers=auth(admin)).json()
    assert detail["state"] == "on_scene"
    (held,) = [a for a in detail["assignments"] if a["by"] == "family"]
    assert (held["responder_name"], held["state"]) == ("李明（儿子）", "on_scene")
