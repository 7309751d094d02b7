"""Scopes and need to know, end to end: two streets, a person scoped to one of them, and what reaches them.

Real app, real SQLite data folder; device reports go through the core's intake as the gateway hands them over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from anxin.server import app_for
from dispatch.core import Core
from dispatch.devices import DeviceReport
from tests.conftest import elder, settings_for
from tests.console.streets import HOME_A, HOME_B, STREET_A, STREET_B, person, seed_two_streets
from tests.console.test_api import auth, token


@pytest.fixture
def city(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data", lines={"8002": STREET_B})
    asyncio.run(seed_two_streets(settings))
    with TestClient(app_for(settings)) as client:
        yield client


def core_of(client: TestClient) -> Core:
    core: Core = client.app.state.core  # type: ignore[attr-defined]
    return core


def watch_reports(client: TestClient) -> None:
    """Both elders' watches send a heart rate and a position, as the gateway hands them to the core."""
    core = core_of(client)
    reports = []
    for device, (lat, lon) in (("8800000001", HOME_A), ("8800000002", HOME_B)):
        reports.append(DeviceReport("watch", device, "health", "WATCH:hrt", detail={"heart_rate": 88}))
        reports.append(DeviceReport("watch", device, "position", "WATCH:UD", lat=lat + 0.002, lon=lon))
    client.portal.call(core.intake.devices, reports)  # type: ignore[union-attr]


def alarm(client: TestClient, admin: str, elder_id: str, alarm_type: str = "fall") -> str:
    response = client.post("/api/alarms", json={"elder_id": elder_id, "alarm_type": alarm_type}, headers=auth(admin))
    assert response.status_code == 201, response.text
    incident_id: str = response.json()["incident_id"]
    return incident_id


def ring(client: TestClient, admin: str, call_id: str, caller: str, line: str = "") -> None:
    body = {"event": "ringing", "call_id": call_id, "caller": caller, "line": line}
    assert client.post("/api/hotline/events", json=body, headers=auth(admin)).status_code == 200


def everything(ws: Any) -> list[dict[str, Any]]:
    """Every message until the server has nothing more for a moment (a ping round trip is not available on
    the test client: read until the stream is drained by closing from our side after the catch-up)."""
    messages = []
    while True:
        message = ws.receive_json()
        messages.append(message)
        if message.get("kind") == "incident.note" and message["payload"]["text"] == "end-marker":
            return messages


def test_a_street_operator_on_the_stream_from_zero_sees_only_their_street_and_no_health(city: TestClient) -> None:
    admin = token(city)
    watch_reports(city)
    ia, ib = alarm(city, admin, "ea"), alarm(city, admin, "eb")
    ring(city, admin, "call-a", "13505960001")  # the elder of street A calls
    ring(city, admin, "call-b", "13505960099")  # the elder of street B calls
    ring(city, admin, "call-line", "02100000000", line="8002")  # an unknown caller on street B's line
    ring(city, admin, "call-nobody", "02100000001", line="9999")  # an unknown caller on the centre's line
    operator = person(city, admin, "op_a", "operator", [STREET_A])
    assert city.post(f"/api/incidents/{ia}/notes", json={"text": "end-marker"}, headers=auth(admin)).status_code == 200

    with city.websocket_connect(f"/ws/console?token={operator}&after=0") as ws:
        seen = everything(ws)
    kinds = {m["kind"] for m in seen}
    assert "elder.health" not in kinds and "elder.position" not in kinds  # health and whereabouts: supervisors
    assert "records.read" not in kinds and "account.created" not in kinds  # audit and accounts: not an operator's
    assert {m["incident_id"] for m in seen if m["incident_id"]} == {ia}
    calls = {m["payload"]["call_id"] for m in seen if m["kind"].startswith("call.")}
    assert calls == {"call-a"}
    assert not any("eb" in str(m["payload"]) or "朝阳" in str(m["payload"]) for m in seen)
    assert not any(m["payload"].get("responder_id") == "cb" for m in seen)

    with city.websocket_connect(f"/ws/console?token={operator}") as ws:
        snapshot = ws.receive_json()
    assert [i["incident_id"] for i in snapshot["incidents"]] == [ia]
    assert [c["call_id"] for c in snapshot["calls"]] == ["call-a"]
    assert {r["responder_id"] for r in snapshot["responders"]} == {"ca"}

    # the same, by HTTP: lists hold only street A, the other street's things do not exist for them
    listed = city.get("/api/incidents", headers=auth(operator)).json()["incidents"]
    assert [i["incident_id"] for i in listed] == [ia]
    assert [c["call_id"] for c in city.get("/api/calls", headers=auth(operator)).json()["calls"]] == ["call-a"]
    assert [e["elder_id"] for e in city.get("/api/elders", headers=auth(operator)).json()["elders"]] == ["ea"]
    assert city.get("/api/elders?q=朝阳", headers=auth(operator)).json()["elders"] == []
    assert list(city.get("/api/communities", headers=auth(operator)).json()["tree"]["龙文区"]) == ["蓝田街道"]
    for path in (f"/api/incidents/{ib}", "/api/calls/call-b", "/api/calls/call-line", "/api/elders/eb"):
        assert city.get(path, headers=auth(operator)).status_code == 404, path
    refused = city.post(f"/api/incidents/{ib}/notes", json={"text": "x"}, headers=auth(operator))
    assert refused.status_code == 404
    assert (
        city.post("/api/alarms", json={"elder_id": "eb", "alarm_type": "sos"}, headers=auth(operator)).status_code
        == 404
    )


def test_street_b_sees_its_line_and_a_centre_operator_sees_every_call(city: TestClient) -> None:
    admin = token(city)
    ring(city, admin, "call-line", "02100000000", line="8002")
    ring(city, admin, "call-nobody", "02100000001", line="9999")
    street_b = person(city, admin, "op_b", "operator", [STREET_B])
    centre = person(city, admin, "op_all", "operator", ["*"])
    assert [c["call_id"] for c in city.get("/api/calls", headers=auth(street_b)).json()["calls"]] == ["call-line"]
    everyone = {c["call_id"] for c in city.get("/api/calls", headers=auth(centre)).json()["calls"]}
    assert everyone == {"call-line", "call-nobody"}


def test_health_readings_reach_a_supervisor_in_scope(city: TestClient) -> None:
    admin = token(city)
    watch_reports(city)
    supervisor = person(city, admin, "sup_a", "supervisor", [STREET_A])
    entries = city.get("/api/journal?limit=5000", headers=auth(supervisor)).json()["entries"]
    health = [e for e in entries if e["kind"] == "elder.health"]
    assert [e["payload"]["elder_id"] for e in health] == ["ea"]


def test_an_unknown_caller_placed_on_the_map_belongs_to_the_street_there(city: TestClient) -> None:
    admin = token(city)
    operator_b = person(city, admin, "op_b", "operator", [STREET_B])
    body = {"alarm_type": "fall", "caller": "02100000005"}
    opened = city.post("/api/incidents", json=body, headers=auth(admin)).json()["incident_id"]
    assert city.get(f"/api/incidents/{opened}", headers=auth(operator_b)).status_code == 404  # nowhere yet
    place = {"lat": HOME_B[0] + 0.003, "lon": HOME_B[1]}
    assert city.post(f"/api/incidents/{opened}/location", json=place, headers=auth(admin)).status_code == 200
    assert city.get(f"/api/incidents/{opened}", headers=auth(operator_b)).status_code == 200


def test_a_caregiver_reads_no_elder_and_no_incident_and_gets_only_their_job(city: TestClient) -> None:
    admin = token(city)
    phone = person(city, admin, "ca", "caregiver", ["*"], responder_id="ca")
    for path in ("/api/elders/ea", "/api/incidents", "/api/elders", "/api/calls", "/api/responders"):
        assert city.get(path, headers=auth(phone)).status_code == 403, path
    with city.websocket_connect(f"/ws/caregiver?token={phone}") as ws:
        ws.receive_json()
        ws.send_json({"type": "duty", "on": True, "lat": HOME_A[0], "lon": HOME_A[1], "id": 1})
        assert ws.receive_json()["type"] == "ok"
        ia = alarm(city, admin, "ea")
        alarm(city, admin, "eb")  # street B's elder: ca holds the offer for ea, so not offered to ca
        offer = ws.receive_json()
        assert offer["type"] == "offer" and offer["incident_id"] == ia
        assert "elder" not in offer and "address" not in offer  # what they need to decide, nothing personal
    with pytest.raises(WebSocketDisconnect) as refused, city.websocket_connect(f"/ws/console?token={phone}") as ws:
        ws.receive_json()
    assert refused.value.code == 4403


def test_reads_of_personal_data_are_on_record_and_a_supervisor_lists_them(city: TestClient) -> None:
    admin = token(city)
    operator = person(city, admin, "op_a", "operator", [STREET_A])
    supervisor = person(city, admin, "sup_a", "supervisor", [STREET_A])
    ia = alarm(city, admin, "ea")
    assert city.get("/api/elders/ea", headers=auth(operator)).status_code == 200
    assert city.get("/api/elders/ea", headers=auth(operator)).status_code == 200  # again: already on record
    assert city.get(f"/api/incidents/{ia}", headers=auth(operator)).status_code == 200
    assert city.get("/api/elders?q=蓝田", headers=auth(operator)).status_code == 200
    assert city.get("/api/elders?limit=10000", headers=auth(operator)).status_code == 200
    reads = city.get("/api/elders/ea/reads", headers=auth(supervisor)).json()["reads"]
    mine = [(r["what"], r["subject"]) for r in reads if r["actor"] == "operator:op_a"]
    assert sorted(mine) == sorted([("record", ""), ("incident", ia), ("elders.search", "蓝田"), ("elders", STREET_A)])
    listed = next(r for r in reads if r["what"] == "elders")
    assert listed["count"] == 1  # a bulk read says how many records it held
    assert city.get("/api/elders/ea/reads", headers=auth(operator)).status_code == 403
    entries = city.get("/api/journal?limit=5000", headers=auth(admin)).json()["entries"]
    viewed = [e for e in entries if e["kind"] == "elder.viewed" and e["actor"] == "operator:op_a"]
    assert len(viewed) == 2  # the record once (the second read within the window is the same read), the incident


def test_a_registry_change_outside_scope_is_refused(city: TestClient) -> None:
    admin = token(city)
    scoped_admin = person(city, admin, "adm_a", "admin", [STREET_A])
    record = elder("ec", name="陈桂兰", community=f"{STREET_B}/朝阳社区").model_dump(mode="json")
    refused = city.put("/api/elders/ec", json=record, headers=auth(scoped_admin))
    assert refused.status_code == 403 and refused.json()["code"] == "out_of_scope"
    record["community"] = f"{STREET_A}/蓝田社区"
    assert city.put("/api/elders/ec", json=record, headers=auth(scoped_admin)).status_code == 200
    moved_in = elder("eb", community=f"{STREET_A}/蓝田社区").model_dump(mode="json")
    assert city.put("/api/elders/eb", json=moved_in, headers=auth(scoped_admin)).status_code == 404


@pytest.mark.parametrize("channel", ["console", "caregiver"])
def test_a_disabled_account_is_cut_off_within_a_second(city: TestClient, channel: str) -> None:
    admin = token(city)
    if channel == "console":
        who, username = person(city, admin, "op_a", "operator", [STREET_A]), "op_a"
    else:
        who, username = person(city, admin, "ca", "caregiver", ["*"], responder_id="ca"), "ca"
    with city.websocket_connect(f"/ws/{channel}?token={who}") as ws:
        assert ws.receive_json()["type"] in ("snapshot", "hello")
        disabled = city.post(f"/api/accounts/{username}/disable", headers=auth(admin))
        assert disabled.status_code == 200, disabled.text
        started = time.monotonic()
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_json()
        assert closed.value.code == 4401
        assert time.monotonic() - started < 1.0
    refused = city.get("/api/me", headers=auth(who))
    assert refused.status_code == 401 and refused.json()["code"] == "account_disabled"


def test_colleagues_read_a_person_by_name(city: TestClient) -> None:
    admin = token(city)
    operator = person(city, admin, "op_a", "operator", [STREET_A])
    assert city.patch("/api/accounts/op_a", json={"name": "李娜"}, headers=auth(admin)).status_code == 200
    incident_id = alarm(city, admin, "ea")
    city.post(f"/api/incidents/{incident_id}/notes", json={"text": "已联系家属"}, headers=auth(operator))
    view = city.post(f"/api/incidents/{incident_id}/acknowledge", headers=auth(operator)).json()
    assert view["acknowledged_by_name"] == "李娜"
    assert view["notes"][-1]["actor_name"] == "李娜"


def test_a_new_alarm_of_the_street_reaches_its_operator_live(city: TestClient) -> None:
    admin = token(city)
    operator = person(city, admin, "op_a", "operator", [STREET_A])
    with city.websocket_connect(f"/ws/console?token={operator}") as ws:
        ws.receive_json()
        alarm(city, admin, "eb")
        incident_id = alarm(city, admin, "ea", "missed_checkin")  # technical: nothing follows it at once
        opened = ws.receive_json()
    assert opened["kind"] == "incident.opened" and opened["payload"]["incident_id"] == incident_id


def test_places_of_another_street_are_roads_and_streets_not_homes(city: TestClient) -> None:
    admin = token(city)
    operator = person(city, admin, "op_a", "operator", [STREET_A])
    mine = city.get("/api/places?q=朝阳&limit=50", headers=auth(operator)).json()["places"]
    everyone = city.get("/api/places?q=朝阳&limit=50", headers=auth(admin)).json()["places"]
    assert {p["kind"] for p in everyone} >= {"address", "street"}
    assert {p["kind"] for p in mine} <= {"road_number", "community", "street", "district"} and mine


def test_the_telephony_is_the_whole_centres(city: TestClient) -> None:
    admin = token(city)
    operator = person(city, admin, "op_a", "operator", [STREET_A])
    body = {"event": "ringing", "call_id": "x-1", "caller": "13505960099"}
    refused = city.post("/api/hotline/events", json=body, headers=auth(operator))
    assert refused.status_code == 403 and refused.json()["code"] == "out_of_scope"


def test_a_stranger_placed_in_the_next_street_stays_with_the_operator_who_took_them_on(city: TestClient) -> None:
    admin = token(city)
    operator_a = person(city, admin, "op_a", "operator", [STREET_A])
    operator_b = person(city, admin, "op_b", "operator", [STREET_B])
    other_a = person(city, admin, "op_a2", "operator", [STREET_A])
    body = {"alarm_type": "fall", "caller": "02100000009", "lat": HOME_B[0] + 0.002, "lon": HOME_B[1]}
    opened = city.post("/api/incidents", json=body, headers=auth(operator_a))
    assert opened.status_code == 201, opened.text  # written and shown: the operator on the phone keeps it
    incident_id = opened.json()["incident_id"]
    assert city.get(f"/api/incidents/{incident_id}", headers=auth(operator_b)).status_code == 200  # B's, too
    assert city.get(f"/api/incidents/{incident_id}", headers=auth(other_a)).status_code == 404
    # a colleague of street A who did not take on a stranger cannot move them out of the street's sight
    unplaced = city.post("/api/incidents", json={"alarm_type": "fall", "caller": "02100000010"}, headers=auth(admin))
    stranger = unplaced.json()["incident_id"]
    assert city.post(f"/api/incidents/{stranger}/location", json={"lat": HOME_A[0], "lon": HOME_A[1]},
                     headers=auth(admin)).status_code == 200  # fmt: skip
    head = core_of(city).journal.durable_seq
    moved = city.post(f"/api/incidents/{stranger}/location", json={"lat": HOME_B[0], "lon": HOME_B[1]},
                      headers=auth(other_a))  # fmt: skip
    assert moved.status_code == 403 and moved.json()["code"] == "out_of_scope"
    assert core_of(city).journal.durable_seq == head


def test_following_the_journal_is_one_read_on_record(city: TestClient) -> None:
    admin = token(city)
    supervisor = person(city, admin, "sup_a", "supervisor", [STREET_A])
    alarm(city, admin, "ea")
    after = 0
    for _ in range(5):
        after = city.get(f"/api/journal?after={after}&limit=3", headers=auth(supervisor)).json()["next_after"]
    entries = city.get("/api/journal?limit=5000", headers=auth(admin)).json()["entries"]
    reads = [e for e in entries if e["kind"] == "records.read" and e["actor"] == "supervisor:sup_a"]
    assert len(reads) == 1


def test_a_street_admin_binds_no_account_beyond_the_street(city: TestClient) -> None:
    admin = token(city)
    street_admin = person(city, admin, "adm_a", "admin", [STREET_A])
    body = {"username": "cb_phone", "name": "x", "password": "password-123", "role": "caregiver",
            "scopes": [STREET_A], "responder_id": "cb"}  # fmt: skip
    assert city.post("/api/accounts", json=body, headers=auth(street_admin)).status_code == 404
    key = {"username": "pbx_a", "name": "x", "role": "service", "grants": ["hotline"], "scopes": [STREET_A]}
    refused = city.post("/api/accounts", json=key, headers=auth(admin))
    assert refused.status_code == 422 and refused.json()["code"] == "hotline_needs_centre"


def test_where_a_watch_was_is_for_supervisors_in_the_record_too(city: TestClient) -> None:
    admin = token(city)
    watch_reports(city)
    operator = person(city, admin, "op_a", "operator", [STREET_A])
    supervisor = person(city, admin, "sup_a", "supervisor", [STREET_A])
    seen = city.get("/api/elders/ea", headers=auth(operator)).json()["devices"][0]["status"]
    assert seen["lat"] is None and seen["pos_at"] is None and seen["last_seen"] is not None
    assert city.get("/api/elders/ea", headers=auth(supervisor)).json()["devices"][0]["status"]["lat"] is not None


def test_an_elders_incident_placed_over_the_border_stays_the_elders_streets(city: TestClient) -> None:
    admin = token(city)
    operator = person(city, admin, "op_a", "operator", [STREET_A])
    incident_id = alarm(city, admin, "ea")
    place = {"lat": HOME_B[0], "lon": HOME_B[1]}
    assert city.post(f"/api/incidents/{incident_id}/location", json=place, headers=auth(operator)).status_code == 200


def test_a_power_cut_is_one_incident_of_its_street_and_one_click_acknowledges_it(city: TestClient) -> None:
    """Mains loss from both streets' watches: one grouped incident per street (dispatch.triage rule 4), placed
    in its street; the street's operators see only theirs and acknowledge it with the ordinary button."""
    admin = token(city)
    operator_a = person(city, admin, "opa", "operator", [STREET_A])
    operator_community = person(city, admin, "opc", "operator", [f"{STREET_A}/蓝田社区"])
    reports = [
        DeviceReport("watch", d, "alarm", "WATCH:AL:14", alarm_type="mains_loss") for d in ("8800000001", "8800000002")
    ]
    city.portal.call(core_of(city).intake.devices, reports)  # type: ignore[union-attr]
    [mine] = city.get("/api/incidents?open=true", headers=auth(operator_a)).json()["incidents"]
    assert mine["group"]["street"] == STREET_A and mine["group"]["affected"] == 1 and mine["elder_id"] is None
    assert "acknowledge" in mine["actions"]
    # the group lies in the street; a community's operator sees it too (scopes rule 4), not the other street's
    [theirs] = city.get("/api/incidents?open=true", headers=auth(operator_community)).json()["incidents"]
    assert theirs["incident_id"] == mine["incident_id"]
    done = city.post(f"/api/incidents/{mine['incident_id']}/acknowledge", headers=auth(operator_a))
    assert done.status_code == 200 and done.json()["state"] == "acknowledged"
    everyone = city.get("/api/incidents?open=true", headers=auth(admin)).json()["incidents"]
    assert sorted(i["group"]["street"] for i in everyone) == [STREET_B, STREET_A]
