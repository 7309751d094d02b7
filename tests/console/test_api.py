"""The HTTP API and the websockets in-process (Starlette's TestClient), on a real SQLite data folder."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from dispatch.devices import DeviceReport
from tests.conftest import elder, responder, seed, settings_for


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data")
    asyncio.run(
        seed(
            settings,
            elders=[elder("e1")],
            responders=[responder("c1", 24.511, 117.70), responder("c2", 24.515, 117.70)],
        )
    )
    with TestClient(app_for(settings)) as test_client:
        yield test_client


def token(client: TestClient, username: str = "admin", password: str = "test-admin-pw") -> str:
    response = client.post("/api/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    value: str = response.json()["access_token"]
    return value


def auth(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def account(client: TestClient, admin: str, username: str, role: str, responder_id: str | None = None) -> str:
    body = {"username": username, "password": "password-123", "role": role, "responder_id": responder_id}
    response = client.post("/api/accounts", json=body, headers=auth(admin))
    assert response.status_code == 201, response.text
    return token(client, username, "password-123")


def journal_head(client: TestClient, admin: str) -> int:
    head: int = client.get("/api/journal?limit=1", headers=auth(admin)).json()["head"]
    return head


def test_login_and_roles(client: TestClient) -> None:
    assert client.get("/healthz").json()["ok"] is True
    bad = client.post("/api/auth/token", data={"username": "admin", "password": "nope"})
    assert bad.status_code == 401
    assert client.get("/api/incidents").status_code == 401
    assert client.get("/api/incidents", headers=auth("forged")).status_code == 401
    admin = token(client)
    operator = account(client, admin, "op", "operator")
    caregiver = account(client, admin, "c1", "caregiver", "c1")
    assert client.get("/api/incidents", headers=auth(operator)).status_code == 200
    assert client.get("/api/journal", headers=auth(operator)).status_code == 403
    refused = client.post("/api/alarms", json={"elder_id": "e1", "alarm_type": "sos"}, headers=auth(caregiver))
    assert refused.status_code == 403
    assert "caregiver" in refused.json()["detail"]
    assert client.post("/api/accounts", json={}, headers=auth(operator)).status_code == 403
    no_such = {"username": "c9", "password": "password-123", "role": "caregiver", "responder_id": "c9"}
    assert client.post("/api/accounts", json=no_such, headers=auth(admin)).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"elder_id": "nobody", "alarm_type": "sos"}, 404, "elder_id"),
        ({"elder_id": "e1", "alarm_type": "sos", "lat": 91, "lon": 117.7}, 422, "lat"),
        ({"elder_id": "e1", "alarm_type": "sos", "lat": 24.5, "lon": -181}, 422, "lon"),
        ({"elder_id": "e1", "alarm_type": "earthquake"}, 422, "alarm_type"),
        ({"elder_id": "e1", "alarm_type": "sos", "lat": 24.5}, 422, "lon"),
        ({"alarm_type": "sos"}, 422, "elder_id"),
        ({"elder_id": "e1", "alarm_type": "sos", "colour": "red"}, 422, "colour"),
    ],
)
def test_bad_alarms_are_refused_and_write_nothing(
    client: TestClient, body: dict[str, Any], status: int, field: str
) -> None:
    admin = token(client)
    head = journal_head(client, admin)
    response = client.post("/api/alarms", json=body, headers=auth(admin))
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert journal_head(client, admin) == head
    assert client.get("/api/incidents", headers=auth(admin)).json()["incidents"] == []


def test_registry_validation_names_the_field(client: TestClient) -> None:
    admin = token(client)
    record = elder("e2", phone="13505960002", birth_date="1951-02-01").model_dump(mode="json")  # not e1 again
    record["lat"] = 123
    response = client.put("/api/elders/e2", json=record, headers=auth(admin))
    assert response.status_code == 422 and response.json()["field"] == "lat"
    record["lat"], record["community"] = 24.5, "龙文区"
    response = client.put("/api/elders/e2", json=record, headers=auth(admin))
    assert response.status_code == 422 and response.json()["field"] == "community"
    record["community"] = "龙文区/蓝田街道/蓝田社区"
    assert client.put("/api/elders/e2", json=record, headers=auth(admin)).status_code == 200
    viewed = client.get("/api/elders/e2", headers=auth(admin)).json()
    assert viewed["name"] == "王秀英"
    kinds = [e["kind"] for e in client.get("/api/journal", headers=auth(admin)).json()["entries"]]
    assert kinds[-2:] == ["registry.elder", "elder.viewed"]  # every read of a record is journaled


def test_incident_lifecycle_over_http_and_websockets(client: TestClient) -> None:
    admin = token(client)
    operator = account(client, admin, "op", "operator")
    phone = account(client, admin, "c1", "caregiver", "c1")
    with client.websocket_connect(f"/ws/caregiver?token={phone}") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["offer"] is None
        ws.send_json({"type": "duty", "on": True, "lat": 24.511, "lon": 117.70, "id": 1})
        assert ws.receive_json() == {"type": "ok", "ref": 1}
        ws.send_json({"type": "dance", "id": 2})
        error = ws.receive_json()
        assert error["type"] == "error" and error["ref"] == 2
        ws.send_text("not json")
        assert ws.receive_json()["type"] == "error"  # and the connection stays up
        with client.websocket_connect(f"/ws/console?token={operator}") as console:
            snap = console.receive_json()
            assert snap["type"] == "snapshot" and snap["incidents"] == []
            created = client.post("/api/alarms", json={"elder_id": "e1", "alarm_type": "sos"}, headers=auth(operator))
            assert created.status_code == 201
            incident_id = created.json()["incident_id"]
            offer = ws.receive_json()
            assert offer["type"] == "offer" and offer["incident_id"] == incident_id
            assert "elder" not in offer and "address" not in offer  # nothing personal before accepting
            ws.send_json({"type": "accept", "assignment_id": offer["assignment_id"], "id": 3})
            replies = [ws.receive_json(), ws.receive_json()]
            job = next(r for r in replies if r["type"] == "job")
            assert job["elder"]["address"].startswith("龙文区")
            seen = [console.receive_json() for _ in range(4)]
            assert [m["kind"] for m in seen] == ["incident.opened", "incident.ranked", "offer.made", "offer.accepted"]
            # the stream's own read-on-record (snap seq + 1) is an audit entry: not an operator's to receive
            assert [m["seq"] for m in seen] == list(range(snap["seq"] + 2, snap["seq"] + 6))
    view = client.get(f"/api/incidents/{incident_id}", headers=auth(operator)).json()
    assert view["state"] == "assigned" and view["assignments"][0]["responder_id"] == "c1"
    assert client.post(f"/api/incidents/{incident_id}/close", headers=auth(operator)).status_code == 409
    assert client.post(f"/api/incidents/{incident_id}/cancel", json={}, headers=auth(operator)).status_code == 422
    done = client.post(f"/api/incidents/{incident_id}/resolve", json={"outcome": "ok"}, headers=auth(operator))
    assert done.json()["state"] == "resolved"


def test_websockets_refuse_missing_and_wrong_tokens(client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    admin = token(client)
    for path, code in (("/ws/console", 4401), ("/ws/console?token=bad", 4401), (f"/ws/caregiver?token={admin}", 4403)):
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(path) as ws:
            ws.receive_json()
        assert closed.value.code == code


def test_console_resumes_from_a_sequence_number(client: TestClient) -> None:
    admin = token(client)
    for _ in range(3):
        client.post("/api/alarms", json={"elder_id": "e1", "alarm_type": "test"}, headers=auth(admin))
    entries = client.get("/api/journal", headers=auth(admin)).json()["entries"]
    middle = entries[len(entries) // 2]["seq"]
    with client.websocket_connect(f"/ws/console?token={admin}&after={middle}") as console:
        got = [console.receive_json()["seq"] for _ in range(len(entries) - len(entries) // 2 - 1)]
    assert got == [e["seq"] for e in entries if e["seq"] > middle]


def test_a_supervisor_sets_a_duty_roster_all_or_nothing(client: TestClient) -> None:
    admin = token(client)
    roster = {
        "roster": [{"responder_id": "c1", "on": True, "lat": 24.511, "lon": 117.7}, {"responder_id": "c2", "on": True}]
    }
    assert client.post("/api/responders/duty", json=roster, headers=auth(admin)).json() == {"changed": 2}
    head = journal_head(client, admin)
    bad = {"roster": [{"responder_id": "c1", "on": False}, {"responder_id": "ghost", "on": True}]}
    refused = client.post("/api/responders/duty", json=bad, headers=auth(admin))
    assert refused.status_code == 404 and refused.json()["field"] == "responder_id"
    assert journal_head(client, admin) == head
    duty = {
        r["responder_id"]: r["on_duty"] for r in client.get("/api/responders", headers=auth(admin)).json()["responders"]
    }
    assert duty == {"c1": True, "c2": True}


def test_a_duplicate_account_is_refused_and_intake_goes_on(client: TestClient) -> None:
    admin = token(client)
    account(client, admin, "op", "operator")
    body = {"username": "op", "password": "password-123", "role": "operator"}
    again = client.post("/api/accounts", json=body, headers=auth(admin))
    assert again.status_code == 409 and again.json()["field"] == "username"
    raised = client.post("/api/alarms", json={"elder_id": "e1", "alarm_type": "sos"}, headers=auth(admin))
    assert raised.status_code == 201  # the failed insert left no lock behind on the shared database file
    assert client.get("/healthz").json()["ok"] is True


def test_a_binary_frame_from_a_phone_gets_an_error_and_the_connection_stays(client: TestClient) -> None:
    admin = token(client)
    phone = account(client, admin, "c1", "caregiver", "c1")
    with client.websocket_connect(f"/ws/caregiver?token={phone}") as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_bytes(b"\x00\x01")
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"type": "duty", "on": True, "lat": 24.511, "lon": 117.70, "id": 7})
        assert ws.receive_json() == {"type": "ok", "ref": 7}


def test_a_console_is_closed_when_its_token_expires(tmp_path: Path) -> None:
    from starlette.websockets import WebSocketDisconnect

    settings = settings_for(tmp_path / "data", token_ttl_s=1.0)
    asyncio.run(seed(settings, elders=[elder("e1")]))
    with TestClient(app_for(settings)) as short:
        admin = token(short)
        with pytest.raises(WebSocketDisconnect) as closed, short.websocket_connect(f"/ws/console?token={admin}") as ws:
            assert ws.receive_json()["type"] == "snapshot"
            while True:  # the stream's own read-on-record comes; the server closes at the token's expiry, 1 s on
                assert ws.receive_json()["kind"] == "records.read"
        assert closed.value.code == 4401


def test_replacing_a_caregiver_on_scene_needs_replace_and_the_phone_hears_shared_notes(client: TestClient) -> None:
    admin = token(client)
    operator = auth(account(client, admin, "op", "operator"))
    phone = account(client, admin, "c1", "caregiver", "c1")
    with client.websocket_connect(f"/ws/caregiver?token={phone}") as ws:
        ws.receive_json()
        ws.send_json({"type": "duty", "on": True, "lat": 24.511, "lon": 117.70, "id": 1})
        assert ws.receive_json()["type"] == "ok"
        incident_id = client.post(
            "/api/alarms", json={"elder_id": "e1", "alarm_type": "fall"}, headers=operator
        ).json()["incident_id"]
        offer = ws.receive_json()
        ws.send_json({"type": "accept", "assignment_id": offer["assignment_id"], "id": 10})
        status = {"type": "status", "assignment_id": offer["assignment_id"], "status": "on_scene", "note": "已到"}
        ws.send_json({**status, "id": 11})
        seen: list[dict[str, Any]] = []
        while not (any(m.get("ref") == 11 for m in seen) and any(m.get("state") == "on_scene" for m in seen)):
            seen.append(ws.receive_json())  # the oks and the jobs, in whichever order they come
        note = {"text": "老人在卫生间，钥匙在邻居家", "shared": True}
        assert client.post(f"/api/incidents/{incident_id}/notes", json=note, headers=operator).status_code == 200
        job = ws.receive_json()
        assert job["type"] == "job" and [n["text"] for n in job["notes"]] == ["已到", note["text"]]
    client.post(
        "/api/me/duty",
        json={"on": True, "lat": 24.515, "lon": 117.70},
        headers=auth(account(client, admin, "c2", "caregiver", "c2")),
    )
    path = f"/api/incidents/{incident_id}/dispatch"
    refused = client.post(path, json={"responder_id": "c2"}, headers=operator)
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["code"] == "replace_needs_confirmation"
    assert body["params"] == {"responder": "护理员c1", "state": "on_scene", "incident": incident_id}
    view = client.get(f"/api/incidents/{incident_id}", headers=operator).json()
    assert [a["state"] for a in view["assignments"]] == ["on_scene"] and "replace" in view["actions"]
    replaced = client.post(path, json={"responder_id": "c2", "replace": True}, headers=operator).json()
    assert [(a["responder_id"], a["state"]) for a in replaced["assignments"]] == [
        ("c1", "withdrawn"),
        ("c2", "offered"),
    ]


def test_elders_are_found_by_phone_digits_initials_and_address(client: TestClient) -> None:
    operator = auth(account(client, token(client), "op", "operator"))
    for q, matched in [("0001", "phone"), ("wxy", "initials"), ("王秀", "name"), ("蓝田社区1号楼", "address")]:
        found = client.get("/api/elders", params={"q": q}, headers=operator).json()
        assert [(e["elder_id"], e["matched"]) for e in found["elders"]] == [("e1", matched)], q
    assert client.get("/api/elders", params={"q": "x" * 101}, headers=operator).status_code == 422
    places = client.get("/api/places", params={"q": "蓝田社区"}, headers=operator).json()["places"]
    assert places and places[0]["kind"] in ("community", "building", "address")


def test_supervisors_see_alarms_from_unregistered_devices_as_one_alert_and_no_incident(client: TestClient) -> None:
    admin = token(client)
    supervisor = account(client, admin, "sup", "supervisor")
    operator = account(client, admin, "op", "operator")
    core = client.app.state.core  # type: ignore[attr-defined]
    sos = [DeviceReport("sia-dc09", f"ghost{n}", "alarm", "CID:1101", alarm_type="sos") for n in range(30)]
    for report in sos:
        client.portal.call(core.intake.devices, [report])  # type: ignore[union-attr]
    seen = client.get("/api/escalations", headers=auth(supervisor)).json()
    assert seen["incidents"] == []  # no incident for a device nobody registered
    [alert] = seen["unknown_devices"]
    assert alert["alarms"] == 30 and alert["urgent"] and alert["alarm_types"] == {"sos": 30}
    assert alert["distinct"] == 30 and "sia-dc09:ghost0" in alert["devices"]
    assert client.get("/api/escalations", headers=auth(operator)).status_code == 403
    assert client.get("/api/incidents?open=true", headers=auth(admin)).json()["incidents"] == []
