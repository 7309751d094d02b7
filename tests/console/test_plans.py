"""五定 plans through the app (Starlette's TestClient) on a real SQLite data folder and a manual clock: making a
plan and reading its orders, refusals with their codes, a missed visit on the task list and the console's stream,
settling it, ending a plan, and scope by the elder's community."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from dispatch.clock import ManualClock
from tests.conftest import engine_of, settings_for
from tests.console.streets import STREET_A, STREET_B, person, seed_two_streets
from tests.console.test_api import auth, token

SHANGHAI = ZoneInfo("Asia/Shanghai")
SUNDAY_NOON = datetime(2026, 6, 14, 12, tzinfo=SHANGHAI).timestamp()
PLAN = {"elder_id": "ea", "item_id": "meal_delivery", "responder_id": "ca", "weekdays": [1, 3, 5], "at": "09:00"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(SUNDAY_NOON)


@pytest.fixture
def client(tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data", token_ttl_s=30 * 86_400.0)
    asyncio.run(seed_two_streets(settings))
    with TestClient(app_for(settings, clock)) as test_client:
        yield test_client


def _tick(client: TestClient, clock: ManualClock, when: float) -> None:
    """Move the clock and fire what is due (the app's timer loop sleeps on real time)."""
    clock.set(when)
    core = client.app.state.core  # type: ignore[attr-defined]  # the app's state is untyped
    client.portal.call(engine_of(core).tick)  # type: ignore[union-attr]  # the client is entered


def _plan(client: TestClient, who: str, **changes: Any) -> Any:
    return client.post("/api/plans", json={**PLAN, **changes}, headers=auth(who))


def test_a_plan_is_made_with_its_orders_and_listed(client: TestClient) -> None:
    admin = token(client)
    operator = person(client, admin, "op", "operator", ["*"])
    made = _plan(client, operator, place="社区食堂", note="少盐")
    assert made.status_code == 201, made.text
    plan = made.json()
    assert (plan["state"], plan["active"], plan["weekdays"]) == ("active", True, [1, 3, 5])
    assert (plan["at"], plan["minutes"]) == ("09:00", 30)
    assert (plan["first_day"], plan["last_day"], plan["created_by"]) == ("2026-06-14", None, "operator:op")
    orders = plan["orders"]
    assert [o["plan_day"] for o in orders] == ["2026-06-15", "2026-06-17", "2026-06-19"]
    assert {(o["state"], o["responder_id"], o["source"], o["place"]) for o in orders} == {
        ("assigned", "ca", "plan", "社区食堂")
    }
    listed = client.get("/api/plans", headers=auth(operator)).json()["plans"]
    assert [p["plan_id"] for p in listed] == [plan["plan_id"]]
    assert client.get("/api/plans?active=false", headers=auth(operator)).json()["plans"] == []
    assert client.get("/api/plans?elder=eb", headers=auth(operator)).json()["plans"] == []
    one = client.get(f"/api/plans/{plan['plan_id']}", headers=auth(operator)).json()
    assert [o["order_id"] for o in one["orders"]] == [o["order_id"] for o in orders]
    desk = client.get("/api/service-orders?elder=ea", headers=auth(operator)).json()["orders"]
    assert {o["plan_id"] for o in desk} == {plan["plan_id"]}  # ordinary orders on the service desk
    mine = person(client, admin, "ca", "caregiver", ["*"], responder_id="ca")
    assert len(client.get("/api/service-orders", headers=auth(mine)).json()["orders"]) == 3  # on their phone


def test_refusals_have_their_codes_and_write_nothing(client: TestClient) -> None:
    admin = token(client)
    head = client.app.state.core.journal.head_seq  # type: ignore[attr-defined]
    for changes in ({"weekdays": []}, {"weekdays": [0]}, {"weekdays": [8]}, {"at": "9:00"}, {"first_day": "14/6"}):
        refused = _plan(client, admin, **changes)
        assert refused.status_code == 422, (changes, refused.text)
    for changes, status, code in [
        ({"responder_id": "nobody"}, 404, "unknown_responder"),
        ({"item_id": "nothing"}, 404, "unknown_service_item"),
        ({"at": "25:00"}, 422, "plan_time"),
        ({"first_day": "2026-07-01", "last_day": "2026-06-30"}, 422, "plan_dates"),
    ]:
        refused = _plan(client, admin, **changes)
        assert (refused.status_code, refused.json()["code"]) == (status, code), changes
    assert client.app.state.core.journal.head_seq == head  # type: ignore[attr-defined]
    assert client.get("/api/plans/PL-1", headers=auth(admin)).json()["code"] == "unknown_plan"
    settle = client.post("/api/plan-tasks/PT-1", json={"outcome": "other"}, headers=auth(admin))
    assert (settle.status_code, settle.json()["code"]) == (404, "unknown_plan_task")
    wrong = client.post("/api/plan-tasks/PT-1", json={"outcome": "forgot"}, headers=auth(admin))
    assert wrong.status_code == 422


def test_a_missed_visit_is_a_task_on_the_list_and_the_stream_until_settled(
    client: TestClient, clock: ManualClock
) -> None:
    admin = token(client)
    operator = person(client, admin, "op_a", "operator", [STREET_A])
    other = person(client, admin, "op_b", "operator", [STREET_B])
    plan = _plan(client, operator).json()
    monday = plan["orders"][0]
    _tick(client, clock, monday["end"] + 29 * 60)
    assert client.get("/api/plan-tasks", headers=auth(operator)).json()["tasks"] == []
    _tick(client, clock, monday["end"] + 31 * 60)
    (task,) = client.get("/api/plan-tasks", headers=auth(operator)).json()["tasks"]
    assert (task["order_id"], task["plan_id"], task["elder_id"], task["responder_id"]) == (
        monday["order_id"], plan["plan_id"], "ea", "ca",
    )  # fmt: skip
    assert (task["item_id"], task["state"], task["start"]) == ("meal_delivery", "open", monday["start"])
    assert client.get("/api/plan-tasks", headers=auth(other)).json()["tasks"] == []  # another street's
    refused = client.post(f"/api/plan-tasks/{task['task_id']}", json={"outcome": "other"}, headers=auth(other))
    assert refused.status_code == 404
    with client.websocket_connect(f"/ws/console?token={operator}&after=0") as ws:
        while "plan.visit_missed" not in (message := ws.receive_text()):
            pass
    assert task["task_id"] in message
    settled = client.post(f"/api/plan-tasks/{task['task_id']}", json={"outcome": "rescheduled", "note": "改到周二"},
                          headers=auth(operator))  # fmt: skip
    assert settled.status_code == 200, settled.text
    assert (settled.json()["state"], settled.json()["outcome"], settled.json()["settled_by"]) == (
        "settled", "rescheduled", "operator:op_a",
    )  # fmt: skip
    again = client.post(f"/api/plan-tasks/{task['task_id']}", json={"outcome": "other"}, headers=auth(operator))
    assert (again.status_code, again.json()["code"]) == (409, "plan_task_settled")
    assert client.get("/api/plan-tasks", headers=auth(operator)).json()["tasks"] == []
    assert len(client.get("/api/plan-tasks?state=settled", headers=auth(operator)).json()["tasks"]) == 1


def test_ending_a_plan_cancels_what_it_booked_after_the_day(client: TestClient, clock: ManualClock) -> None:
    admin = token(client)
    plan = _plan(client, admin).json()
    past = client.post(f"/api/plans/{plan['plan_id']}/end", json={"last_day": "2026-06-13"}, headers=auth(admin))
    assert (past.status_code, past.json()["code"]) == (422, "plan_end_day")
    ended = client.post(f"/api/plans/{plan['plan_id']}/end", json={"last_day": "2026-06-15", "reason": "老人住院"},
                        headers=auth(admin))  # fmt: skip
    assert ended.status_code == 200, ended.text
    view = ended.json()
    assert (view["state"], view["last_day"], view["ended_by"]) == ("ended", "2026-06-15", "admin:admin")
    assert view["end_reason"] == "老人住院"
    assert [o["state"] for o in view["orders"]] == ["assigned", "cancelled", "cancelled"]
    again = client.post(f"/api/plans/{plan['plan_id']}/end", json={}, headers=auth(admin))
    assert (again.status_code, again.json()["code"]) == (409, "plan_ended")
    _tick(client, clock, datetime(2026, 6, 21, 0, tzinfo=SHANGHAI).timestamp())
    after = client.get(f"/api/plans/{plan['plan_id']}", headers=auth(admin)).json()
    assert after["active"] is False
    assert all(date.fromisoformat(o["plan_day"]) <= date(2026, 6, 19) for o in after["orders"])


def test_plans_are_the_staffs_and_in_their_street(client: TestClient) -> None:
    admin = token(client)
    plan = _plan(client, admin).json()
    other = person(client, admin, "op_b", "operator", [STREET_B])
    assert client.get(f"/api/plans/{plan['plan_id']}", headers=auth(other)).status_code == 404
    assert client.get("/api/plans", headers=auth(other)).json()["plans"] == []
    assert client.post(f"/api/plans/{plan['plan_id']}/end", json={}, headers=auth(other)).status_code == 404
    assert _plan(client, other).status_code == 404  # an elder of street A
    caregiver = person(client, admin, "ca", "caregiver", ["*"], responder_id="ca")
    assert client.get("/api/plans", headers=auth(caregiver)).status_code == 403
    assert client.get("/api/plan-tasks", headers=auth(caregiver)).status_code == 403
