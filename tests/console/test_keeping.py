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
    body = elder_a(access="钥匙在邻居李阿姨家").model_dump(mode="json")
    assert client.put("/api/elders/ea", json=body, headers=op).status_code == 200
    saved = entries(client, people["admin"], "registry.elder")[-1]
    assert saved["payload"]["fields"] == ["access"]
    assert saved["payload"]["old"] == {"access": ""} and saved["payload"]["new"] == {"access": "钥匙在邻居李阿姨家"}


def test_the_care_level_and_the_entitlement_are_not_an_operators_to_change(
    city: tuple[TestClient, dict[str, str]],
) -> None:
    """The care level comes from a needs assessment (an admin may correct an imported one); who is served free
    or low-cost is a supervisor's decision."""
    client, people = city
    op, admin = auth(people["op_a"]), auth(people["admin"])
    level = client.put("/api/elders/ea", json=elder_a(care_level=3).model_dump(mode="json"), headers=op)
    assert level.status_code == 403 and level.json()["code"] == "care_level_by_assessment"
    free = client.put("/api/elders/ea", json=elder_a(entitlement="free").model_dump(mode="json"), headers=op)
    assert free.status_code == 403 and free.json()["code"] == "entitlement_by_supervisor"
    both = elder_a(care_level=3, entitlement="free").model_dump(mode="json")
    assert client.put("/api/elders/ea", json=both, headers=admin).status_code == 200
    back = elder_a().model_dump(mode="json")
    assert client.put("/api/elders/ea", json=back, headers=admin).status_code == 200


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


def test_an_admin_reads_a_responders_record_as_saved(city: tuple[TestClient, dict[str, str]]) -> None:
    """The registry page's form reads a responder's record, not the live view: the base position stays the
    registered one while the caregiver is on duty somewhere else, with the phone and on_call the list leaves out."""
    client, people = city
    admin = auth(people["admin"])
    adm_a = auth(person(client, people["admin"], "adm_a", "admin", [STREET_A]))
    body = client.get("/api/responders/ca", headers=admin).json()
    body.update(kind="volunteer", skills=["comfort"], on_call=True, phone="13905960123", travel="bike")
    assert client.put("/api/responders/ca", json=body, headers=adm_a).status_code == 200
    caregiver = person(client, people["admin"], "ca", "caregiver", [STREET_A], responder_id="ca")
    moved = {"on": True, "lat": HOME_A[0] + 0.01, "lon": HOME_A[1] + 0.01}
    assert client.post("/api/me/duty", json=moved, headers=auth(caregiver)).status_code == 200
    record = client.get("/api/responders/ca", headers=adm_a).json()
    assert record == body and record["lat"] == HOME_A[0] + 0.001  # where they are based, not where they are
    listed = {r["responder_id"]: r for r in client.get("/api/responders", headers=adm_a).json()["responders"]}["ca"]
    assert listed["lat"] == moved["lat"] and "phone" not in listed
    # another street's responder is as if it did not exist; operators and supervisors read none
    assert client.get("/api/responders/cb", headers=adm_a).status_code == 404
    assert client.get("/api/responders/nobody", headers=admin).status_code == 404
    for who in ("op_a", "sup_a"):
        assert client.get("/api/responders/ca", headers=auth(people[who])).status_code == 403
