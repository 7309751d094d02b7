"""Night duty and handover through the app (Starlette's TestClient) on a real SQLite data folder: going on duty,
the log, the handover and its summary, the next operator's take-over, the history, the codes of each refusal,
and the reach: a shift lies in its scope (a street's operator sees their street's duty, never the other's)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from tests.conftest import settings_for
from tests.console.streets import STREET_A, STREET_B, person, seed_two_streets
from tests.console.test_api import auth, token


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data")
    asyncio.run(seed_two_streets(settings))
    with TestClient(app_for(settings)) as test_client:
        yield test_client


def _post(client: TestClient, who: str, step: str, **body: Any) -> Any:
    return client.post(f"/api/duty/{step}", json=body, headers=auth(who))


def _duty(client: TestClient, who: str, query: str = "") -> Any:
    return client.get(f"/api/duty{query}", headers=auth(who))


def test_a_street_operator_goes_on_duty_logs_hands_over_and_the_next_takes_over(client: TestClient) -> None:
    admin = token(client)
    li = person(client, admin, "li", "operator", [STREET_A], name="李敏")
    zhao = person(client, admin, "zhao", "operator", [STREET_A], name="赵强")
    empty = _duty(client, li).json()
    assert (empty["scope"], empty["scopes"], empty["shift"]) == (STREET_A, [STREET_A], None)

    started = _post(client, li, "start", kind="night")
    assert started.status_code == 201, started.text
    shift = started.json()["shift"]
    assert (shift["scope"], shift["kind"]) == (STREET_A, "night")
    assert (shift["operator"], shift["operator_name"]) == ("operator:li", "李敏")
    again = _post(client, zhao, "start")
    assert (again.status_code, again.json()["code"], again.json()["params"]) == (409, "duty_open",
                                                                                 {"operator": "李敏"})  # fmt: skip

    incident = client.post("/api/incidents", json={"elder_id": "ea", "alarm_type": "fall"}, headers=auth(li))
    assert incident.status_code == 201
    client.post("/api/incidents", json={"elder_id": "eb", "alarm_type": "sos"}, headers=auth(admin))  # street B
    order = {"elder_id": "ea", "item_id": "meal_delivery", "start": 1_900_000_000.0, "end": 1_900_003_600.0}
    assert client.post("/api/service-orders", json=order, headers=auth(li)).status_code == 201
    logged = _post(client, li, "log", text="跌倒老人家属已通知")
    assert logged.status_code == 200, logged.text
    assert [line["text"] for line in logged.json()["shift"]["log"]] == ["跌倒老人家属已通知"]
    live = logged.json()["summary"]
    assert (live["open_incidents"], live["open_orders"], live["alarms"], live["log_lines"]) == (1, 1, 1, 1)
    assert live["incidents"][0]["incident_id"] == incident.json()["incident_id"]

    not_his = _post(client, zhao, "handover", words="?")
    assert (not_his.status_code, not_his.json()["code"]) == (409, "duty_not_yours")
    early = _post(client, zhao, "take-over")
    assert (early.status_code, early.json()["code"]) == (409, "duty_not_handed_over")
    handed = _post(client, li, "handover", words="跌倒警情仍在处理")
    assert handed.status_code == 200, handed.text
    sheet = handed.json()["shift"]
    assert (sheet["state"], sheet["words"], sheet["acknowledged"]) == ("handed_over", "跌倒警情仍在处理", False)
    assert sheet["summary"]["open_incidents"] == 1 and sheet["summary"]["open_orders"] == 1
    assert "eb" not in handed.text  # street B's incident is not on street A's desk
    pending = _post(client, zhao, "start")
    assert (pending.status_code, pending.json()["code"]) == (409, "duty_handover_pending")

    taken = _post(client, zhao, "take-over", words="未见服务单的派人记录", kind="day")
    assert taken.status_code == 200, taken.text
    assert (taken.json()["shift"]["operator"], taken.json()["shift"]["after"]) == ("operator:zhao", sheet["shift_id"])
    shifts = client.get("/api/duty/history", headers=auth(li)).json()["shifts"]
    assert [s["operator"] for s in shifts] == ["operator:zhao", "operator:li"]
    assert (shifts[1]["acknowledged"], shifts[1]["taken_over_by_name"], shifts[1]["disputed"]) == (True, "赵强", True)


def test_reach_decides_which_duty_a_person_sees_and_may_touch(client: TestClient) -> None:
    admin = token(client)
    li = person(client, admin, "li", "operator", [STREET_A])
    wide = person(client, admin, "both", "operator", [STREET_B, STREET_A])
    assert _post(client, admin, "start", scope=STREET_B).status_code == 201
    assert _post(client, admin, "start").json()["scope"] == "*"  # an admin of the whole centre: the centre's
    head = client.app.state.core.journal.durable_seq  # type: ignore[attr-defined]
    for step, body in (("start", {}), ("log", {"text": "x"}), ("handover", {}), ("take-over", {})):
        refused = _post(client, li, step, scope=STREET_B, **body)
        assert (refused.status_code, refused.json()["code"]) == (404, "unknown_duty_scope"), step
    assert client.app.state.core.journal.durable_seq == head  # type: ignore[attr-defined]  # nothing written
    for query in (f"?scope={STREET_B}", "?scope=*", "?scope=龙文区", "?scope=龙文区/无此街道"):
        assert _duty(client, li, query).status_code == 404, query
    assert _duty(client, li, f"?scope={STREET_A}/蓝田社区").json()["shift"] is None  # a community of their street
    assert client.get("/api/duty/history", headers=auth(li)).json()["shifts"] == []
    both = _duty(client, wide).json()
    assert (both["scope"], both["scopes"], both["shift"]["scope"]) == (STREET_B, [STREET_B, STREET_A], STREET_B)
    assert [s["scope"] for s in client.get("/api/duty/history", headers=auth(wide)).json()["shifts"]] == [STREET_B]
    assert {s["scope"] for s in client.get("/api/duty/history", headers=auth(admin)).json()["shifts"]} == {
        "*", STREET_B,
    }  # fmt: skip


def test_a_supervisor_hands_over_for_an_operator_who_went_home(client: TestClient) -> None:
    admin = token(client)
    li = person(client, admin, "li", "operator", [STREET_A])
    chen = person(client, admin, "chen", "supervisor", [STREET_A], name="陈主管")
    assert _post(client, li, "start").status_code == 201
    handed = _post(client, chen, "handover", words="李敏未交班，由主管代交")
    assert handed.status_code == 200, handed.text
    shift = handed.json()["shift"]
    assert shift["operator"] == "operator:li"
    assert (shift["handed_over_by"], shift["handed_over_by_name"]) == ("supervisor:chen", "陈主管")


def test_bad_requests_get_their_codes(client: TestClient) -> None:
    admin = token(client)
    nobody = _post(client, admin, "log", text="x")
    assert (nobody.status_code, nobody.json()["code"]) == (409, "duty_not_started")
    assert _post(client, admin, "take-over").json()["code"] == "duty_nothing_to_take_over"
    assert _post(client, admin, "start", kind="evening").status_code == 422
    assert _post(client, admin, "start").status_code == 201
    blank = _post(client, admin, "log", text="   ")
    assert (blank.status_code, blank.json()["code"]) == (422, "note_required")
    future = _post(client, admin, "log", text="x", at=4_000_000_000.0)
    assert (future.status_code, future.json()["code"]) == (422, "duty_log_time")
    assert _post(client, admin, "log", text="x", extra=1).status_code == 422
    assert client.get("/api/duty/history?days=0", headers=auth(admin)).status_code == 422
    assert client.get("/api/duty/history?days=93", headers=auth(admin)).status_code == 422
