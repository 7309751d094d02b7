"""The service desk's routes through the app (Starlette's TestClient) on a real SQLite data folder: the catalogue,
ordering, the order's moves by staff and by the assigned caregiver, and scope."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from tests.conftest import elder, seed, settings_for
from tests.console.streets import STREET_A, STREET_B, person, seed_two_streets
from tests.console.test_api import auth, token

START = 1_900_000_000.0
WINDOW = {"start": START, "end": START + 3600}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data")
    asyncio.run(seed_two_streets(settings))
    low = elder("el", entitlement="low_cost", community=f"{STREET_A}/蓝田社区")
    asyncio.run(seed(settings, elders=[low]))
    with TestClient(app_for(settings)) as test_client:
        yield test_client


def _order(client: TestClient, who: str, elder_id: str = "ea", item_id: str = "meal_delivery") -> dict[str, Any]:
    response = client.post("/api/service-orders", json={"elder_id": elder_id, "item_id": item_id, **WINDOW},
                           headers=auth(who))  # fmt: skip
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


def _act(client: TestClient, who: str, order_id: str, action: str, body: Any = None) -> Any:
    return client.post(f"/api/service-orders/{order_id}/{action}", json=body or {}, headers=auth(who))


def test_the_catalogue_is_read_by_staff_and_caregivers(client: TestClient) -> None:
    admin = token(client)
    caregiver = person(client, admin, "ca", "caregiver", ["*"], responder_id="ca")
    for who in (admin, caregiver):
        services = client.get("/api/services", headers=auth(who)).json()["services"]
        meal = next(s for s in services if s["item_id"] == "meal_delivery")
        assert meal["price_fen"] == {"free": 0, "low_cost": 800, "paid": 1500}
        assert (meal["category_zh"], meal["unit_zh"], meal["skill"]) == ("助餐", "份", "life_care")
    assert client.get("/api/services").status_code == 401


def test_an_order_from_the_console_to_confirmation(client: TestClient) -> None:
    admin = token(client)
    operator = person(client, admin, "op", "operator", ["*"])
    caregiver = person(client, admin, "ca", "caregiver", ["*"], responder_id="ca")
    order = _order(client, operator, "el")
    assert (order["state"], order["mode"], order["price_fen"], order["source"]) == ("requested", "low_cost", 800,
                                                                                   "console")  # fmt: skip
    oid = order["order_id"]
    assert _act(client, operator, oid, "schedule", WINDOW).json()["state"] == "scheduled"
    # a visit years ahead goes to a caregiver off duty now
    assert _act(client, operator, oid, "assign", {"responder_id": "ca"}).json()["responder_id"] == "ca"
    # the caregiver sees it among their own, checks in and out
    mine = client.get("/api/service-orders", headers=auth(caregiver)).json()["orders"]
    assert [o["order_id"] for o in mine] == [oid]
    refused = _act(client, caregiver, oid, "confirm")
    assert refused.status_code == 403
    early = _act(client, caregiver, oid, "start", {"lat": 24.511, "lon": 117.7})  # years before the visit
    assert (early.status_code, early.json()["code"]) == (409, "service_too_early")
    now = time.time()  # the elder asks for it today instead: rescheduled, given to her again
    assert _act(client, operator, oid, "reschedule", {"start": now + 3700, "end": now + 7300}).status_code == 200
    assert _act(client, operator, oid, "assign", {"responder_id": "ca"}).status_code == 200
    started = _act(client, caregiver, oid, "start", {"lat": 24.511, "lon": 117.7})  # an hour early: fine
    assert started.status_code == 200 and started.json()["started_pos"] == [24.511, 117.7]
    delivered = _act(client, caregiver, oid, "deliver", {"note": "午餐已送到"})
    assert (delivered.json()["state"], delivered.json()["note"]) == ("delivered", "午餐已送到")
    assert _act(client, operator, oid, "confirm").json()["state"] == "confirmed"
    illegal = _act(client, operator, oid, "cancel", {"reason": "x"})
    assert (illegal.status_code, illegal.json()["code"]) == (409, "illegal_transition")
    now = time.time()  # a visit starting within the hour needs someone on duty
    soon = _order(client, operator, "el")["order_id"]
    assert _act(client, operator, soon, "schedule", {"start": now + 600, "end": now + 4200}).status_code == 200
    off_duty = _act(client, operator, soon, "assign", {"responder_id": "ca"})
    assert (off_duty.status_code, off_duty.json()["code"]) == (409, "responder_off_duty")
    assert client.post("/api/me/duty", json={"on": True}, headers=auth(caregiver)).status_code == 200
    assert _act(client, operator, soon, "assign", {"responder_id": "ca"}).json()["responder_id"] == "ca"
    assert _act(client, operator, soon, "cancel", {"reason": "老人改约"}).json()["state"] == "cancelled"


def test_bad_requests_get_their_codes(client: TestClient) -> None:
    admin = token(client)
    bad_item = client.post("/api/service-orders", json={"elder_id": "ea", "item_id": "massage", **WINDOW},
                           headers=auth(admin))  # fmt: skip
    assert (bad_item.status_code, bad_item.json()["code"]) == (404, "unknown_service_item")
    no_elder = client.post("/api/service-orders", json={"elder_id": "nobody", "item_id": "bathing", **WINDOW},
                           headers=auth(admin))  # fmt: skip
    assert (no_elder.status_code, no_elder.json()["code"]) == (404, "unknown_elder")
    backwards = {"elder_id": "ea", "item_id": "bathing", "start": START, "end": START - 1}
    refused = client.post("/api/service-orders", json=backwards, headers=auth(admin))
    assert (refused.status_code, refused.json()["code"]) == (422, "service_window")
    now = time.time()
    for window, code in (({"start": now - 7200, "end": now - 3600}, "service_window_past"),
                         ({"start": now + 3600, "end": now + 3600 + 23 * 3600}, "service_window_long")):  # fmt: skip
        refused = client.post("/api/service-orders", json={"elder_id": "ea", "item_id": "bathing", **window},
                              headers=auth(admin))  # fmt: skip
        assert (refused.status_code, refused.json()["code"]) == (422, code)
    floats = client.post("/api/service-orders", json={"elder_id": "ea", "item_id": "bathing", "start": 1.0,
                                                       "end": 2.0}, headers=auth(admin))  # fmt: skip
    assert floats.status_code == 422
    oid = _order(client, admin)["order_id"]
    assert _act(client, admin, oid, "assign", {"responder_id": "ca"}).status_code == 409  # not scheduled yet
    assert client.get("/api/service-orders?state=lost", headers=auth(admin)).status_code == 422


def test_a_street_scoped_operator_sees_only_its_street(client: TestClient) -> None:
    admin = token(client)
    op_a = person(client, admin, "op_a", "operator", [STREET_A])
    op_b = person(client, admin, "op_b", "operator", [STREET_B])
    a = _order(client, admin, "ea")["order_id"]
    b = _order(client, admin, "eb", "home_repair")["order_id"]
    listed = client.get("/api/service-orders", headers=auth(op_a)).json()["orders"]
    assert [o["order_id"] for o in listed] == [a]
    assert "朝阳" not in str(listed)
    everything = client.get("/api/service-orders?limit=10", headers=auth(admin)).json()["orders"]
    assert [o["order_id"] for o in everything] == [b, a]
    by_elder = client.get("/api/service-orders?elder=eb", headers=auth(admin)).json()["orders"]
    assert [o["order_id"] for o in by_elder] == [b]
    assert client.get(f"/api/service-orders/{b}", headers=auth(op_a)).status_code == 404
    assert client.get(f"/api/service-orders/{b}", headers=auth(op_b)).status_code == 200
    head = client.get("/api/journal?limit=1", headers=auth(admin)).json()["head"]
    assert _act(client, op_a, b, "cancel", {"reason": "x"}).status_code == 404
    ordered = client.post("/api/service-orders", json={"elder_id": "eb", "item_id": "bathing", **WINDOW},
                          headers=auth(op_a))  # fmt: skip
    assert ordered.status_code == 404
    journal = client.get(f"/api/journal?after={head}", headers=auth(admin)).json()["entries"]
    assert not [e for e in journal if e["kind"].startswith("service.")], "a refused request wrote an order"


def test_a_caregiver_sees_and_acts_on_their_own_orders_only(client: TestClient) -> None:
    admin = token(client)
    ca = person(client, admin, "ca", "caregiver", ["*"], responder_id="ca")
    cb = person(client, admin, "cb", "caregiver", ["*"], responder_id="cb")
    for who in (ca, cb):
        assert client.post("/api/me/duty", json={"on": True}, headers=auth(who)).status_code == 200
    oid = _order(client, admin)["order_id"]
    _act(client, admin, oid, "schedule", WINDOW)
    assert _act(client, admin, oid, "assign", {"responder_id": "ca"}).status_code == 200
    assert client.get(f"/api/service-orders/{oid}", headers=auth(cb)).status_code == 404
    assert client.get("/api/service-orders", headers=auth(cb)).json()["orders"] == []
    assert _act(client, cb, oid, "start").status_code == 404
    assert client.get(f"/api/service-orders/{oid}", headers=auth(ca)).json()["elder_name"]
    assert _act(client, ca, oid, "no_show", {"note": "敲门无人应答"}).json()["state"] == "no_show"
    # reading an order is on the elder's record
    reads = client.get("/api/elders/ea/reads", headers=auth(admin)).json()["reads"]
    assert any(r.get("what") == "order" for r in reads), reads


def test_a_caregivers_phone_is_told_when_their_orders_change(client: TestClient) -> None:
    """{"type": "orders"} on /ws/caregiver to the caregiver an order is with, and to the one it was taken from;
    the message names the order and nothing about the elder (the phone reads its list over HTTP)."""
    admin = token(client)
    ca = person(client, admin, "ca", "caregiver", ["*"], responder_id="ca")
    cb = person(client, admin, "cb", "caregiver", ["*"], responder_id="cb")
    for who in (ca, cb):
        assert client.post("/api/me/duty", json={"on": True}, headers=auth(who)).status_code == 200
    oid = _order(client, admin, "el")["order_id"]
    now = time.time()  # today's visit: the caregiver may check in
    assert _act(client, admin, oid, "schedule", {"start": now + 600, "end": now + 4200}).status_code == 200
    with (
        client.websocket_connect(f"/ws/caregiver?token={ca}") as phone_a,
        client.websocket_connect(f"/ws/caregiver?token={cb}") as phone_b,
    ):
        assert phone_a.receive_json()["type"] == phone_b.receive_json()["type"] == "hello"
        assert _act(client, admin, oid, "assign", {"responder_id": "ca"}).status_code == 200
        assert phone_a.receive_json() == {"type": "orders", "order_id": oid}
        assert _act(client, admin, oid, "assign", {"responder_id": "cb"}).status_code == 200  # taken over
        assert phone_a.receive_json() == {"type": "orders", "order_id": oid}
        assert phone_b.receive_json() == {"type": "orders", "order_id": oid}
        order = _act(client, cb, oid, "start", {}).json()
        assert phone_b.receive_json() == {"type": "orders", "order_id": oid}
        assert {"access", "phone", "address"} <= order.keys()  # how to get in and whom to call, at the door
        _act(client, cb, oid, "deliver", {"note": "午餐已送到"})
        assert phone_b.receive_json() == {"type": "orders", "order_id": oid}  # off their list
