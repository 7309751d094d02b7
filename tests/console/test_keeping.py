"""Keeping the registry over HTTP (console.keeping and the registry routes of console.api), in-process, on the
two streets of tests/console/streets.py: an operator of street A enrols, binds, test-calls in street A only; a
supervisor deactivates; what the journal keeps."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from dispatch.devices import DeviceReport
from tests.conftest import settings_for
from tests.console.streets import HOME_A, STREET_A, STREET_B, elder_a, person, seed_two_streets
from tests.console.test_api import auth, token

KEY = "000102030405060708090A0B0C0D0E0F"


@pytest.fixture
def city(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = settings_for(tmp_path / "data", read_window_s=0)
    asyncio.run(seed_two_streets(settings))
    with TestClient(app_for(settings)) as client:
        admin = token(client)
        people = {
            "admin": admin,
            "op_a": person(client, admin, "op_a", "operator", [STREET_A]),
            "sup_a": person(client, admin, "sup_a", "supervisor", [STREET_A]),
        }
        yield client, people


def new_elder(elder_id: str, **fields: Any) -> dict[str, Any]:
    body = elder_a().model_dump(mode="json")
    body.update(elder_id=elder_id, name="陈桂兰", phone="13505960777", lat=HOME_A[0] + 0.001, lon=HOME_A[1], **fields)
    return body


def entries(client: TestClient, admin: str, kind: str) -> list[dict[str, Any]]:
    listed = client.get("/api/journal?limit=5000", headers=auth(admin)).json()["entries"]
    return [e for e in listed if e["kind"] == kind]


def test_an_operator_enrols_an_elder_binds_a_pendant_and_test_calls_it(city: tuple[TestClient, dict[str, str]]) -> None:
    client, people = city
    op = auth(people["op_a"])
    form = client.get("/api/registry/form", headers=op).json()
    assert "sia-dc09" in form["protocols"] and form["left_care_reasons"] == ["moved_away", "died", "care_home", "other"]
    elder_id = form["next_elder_id"]
    made = client.put(f"/api/elders/{elder_id}", json=new_elder(elder_id), headers=op)
    assert made.status_code == 200, made.text
    device = {"device_id": "C0FFEE01", "protocol": "sia-dc09", "elder_id": elder_id, "aes_key": KEY}
    bound = client.put("/api/devices/C0FFEE01", json=device, headers=op)
    assert bound.status_code == 200 and "aes_key" not in bound.json()
    started = client.post("/api/devices/C0FFEE01/test", headers=op)
    assert started.status_code == 200 and started.json()["state"] == "running"
    core = client.app.state.core  # type: ignore[attr-defined]
    pendant = DeviceReport("sia-dc09", "C0FFEE01", "alarm", "CID:1101", alarm_type="sos", dedup="t1")
    client.portal.call(core.intake.devices, [pendant])  # type: ignore[union-attr]  # entered
    result = client.get("/api/devices/C0FFEE01/test", headers=op).json()
    assert result["state"] == "passed" and result["alarm_type"] == "sos"
    incident = client.get(f"/api/incidents/{result['incident_id']}", headers=op).json()
    assert incident["test"] is True and incident["state"] == "closed" and incident["outcome"] == "test passed"
    record = client.get(f"/api/elders/{elder_id}", headers=op).json()
    assert record["devices"][0]["keyed"] and record["devices"][0]["test"]["state"] == "passed"
    saved = entries(client, people["admin"], "registry.device")[-1]
    assert saved["actor"] == "operator:op_a" and saved["payload"]["new"]["aes_key"] == "changed"
    assert KEY not in client.get("/api/journal?limit=5000", headers=auth(people["admin"])).text


def test_an_edit_journals_old_and_new_values(city: tuple[TestClient, dict[str, str]]) -> None:
    client, people = city
    op = auth(people["op_a"])
    body = elder_a(care_level=2).model_dump(mode="json")
    assert client.put("/api/elders/ea", json=body, headers=op).status_code == 200
    saved = entries(client, people["admin"], "registry.elder")[-1]
    assert saved["payload"]["fields"] == ["care_level"]
    assert saved["payload"]["old"] == {"care_level": None} and saved["payload"]["new"] == {"care_level": 2}


def test_an_operator_keeps_only_their_street(city: tuple[TestClient, dict[str, str]]) -> None:
    client, people = city
    op = auth(people["op_a"])
    elsewhere = new_elder("x1", community=f"{STREET_B}/朝阳社区")
    refused = client.put("/api/elders/x1", json=elsewhere, headers=op)
    assert refused.status_code == 403 and refused.json()["code"] == "out_of_scope"
    for path in ("/api/devices/8800000002/test", "/api/devices/8800000002/unbind"):
        assert client.post(path, json={}, headers=op).status_code == 404
    assert client.get("/api/devices/8800000002/test", headers=op).status_code == 404
    # responders stay the admins'
    assert client.put("/api/responders/ca", json={}, headers=op).status_code == 403


def test_operators_may_not_deactivate_supervisors_may(city: tuple[TestClient, dict[str, str]]) -> None:
    client, people = city
    op, sup = auth(people["op_a"]), auth(people["sup_a"])
    assert client.post("/api/elders/ea/deactivate", json={"reason": "died"}, headers=op).status_code == 403
    wordless = client.post("/api/elders/ea/deactivate", json={"reason": "other"}, headers=sup)
    assert wordless.status_code == 422 and wordless.json()["code"] == "reason_required"
    left = client.post("/api/elders/ea/deactivate", json={"reason": "care_home", "words": "入住福利院"}, headers=sup)
    assert left.status_code == 200, left.text
    assert left.json()["active"] is False and left.json()["devices"] == []
    read = entries(client, people["admin"], "elder.viewed")[-1]  # the answer is the whole record: a read on record
    assert (read["actor"], read["payload"]["elder_id"], read["payload"]["what"]) == ("supervisor:sup_a", "ea", "record")
    assert [e["payload"]["device_id"] for e in entries(client, people["admin"], "registry.device_unbound")] == [
        "8800000001"
    ]
    # out of the search and the list by default, still readable
    assert client.get("/api/elders?q=ea", headers=op).json()["elders"] == []
    assert [e["elder_id"] for e in client.get("/api/elders?q=ea&inactive=true", headers=op).json()["elders"]] == ["ea"]
    assert client.get("/api/elders/ea", headers=op).json()["active"] is False
    alarm = client.post("/api/alarms", json={"elder_id": "ea", "alarm_type": "sos"}, headers=op)
    assert alarm.status_code == 409 and alarm.json()["code"] == "elder_inactive"
    # the form cannot bring her back; reactivating does
    body = elder_a().model_dump(mode="json")
    assert client.put("/api/elders/ea", json=body, headers=op).json()["code"] == "elder_active_change"
    back = client.post("/api/elders/ea/reactivate", json={"words": "退院回家"}, headers=sup)
    assert back.status_code == 200 and back.json()["active"] is True
    reads = [e["seq"] for e in entries(client, people["admin"], "elder.viewed") if e["actor"] == "supervisor:sup_a"]
    assert len(reads) == 2 and reads[-1] > read["seq"]
