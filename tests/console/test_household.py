"""A call from a couple's landline over HTTP: the call card offers both, the reads are on record, the operator's
pick is journaled with who and when, a pick outside the household is refused, people of another street see
nothing of it. In-process (Starlette's TestClient), on a real SQLite data folder."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from tests.conftest import elder, seed, settings_for
from tests.console.streets import STREET_A, STREET_B, elder_b, person
from tests.console.test_api import auth, token

LANDLINE = "0596-2345678"
HOME = "龙文区蓝田街道蓝田社区3号楼201室"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data")
    couple = [
        elder(elder_id, name=name, phone=LANDLINE, birth_date=born, address=HOME, community=f"{STREET_A}/蓝田社区")
        for elder_id, name, born in (("e_wife", "王秀英", "1952-08-15"), ("e_husband", "李建国", "1948-11-02"))
    ]
    asyncio.run(seed(settings, elders=[*couple, elder_b()]))
    with TestClient(app_for(settings)) as test_client:
        yield test_client


def entries(client: TestClient, admin: str, kind: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = client.get("/api/journal?limit=5000", headers=auth(admin)).json()["entries"]
    return [e for e in listed if e["kind"] == kind]


def test_the_operator_picks_the_wife_from_the_landlines_household(client: TestClient) -> None:
    admin = token(client)
    operator = person(client, admin, "op_a", "operator", [STREET_A])
    for event in ("ringing", "answered"):
        body = {"event": event, "call_id": "h-1", "caller": LANDLINE, "line": "12349"}
        rang = client.post("/api/hotline/events", json=body, headers=auth(admin))
        assert rang.status_code == 200 and rang.json()["elder_id"] is None, rang.text  # none chosen
    card = client.get("/api/calls/h-1", headers=auth(operator)).json()
    assert card["caller_is"] == "household" and card["picked"] is None
    assert [(o["elder_id"], o["name"], o["address"]) for o in card["offered"]] == [
        ("e_husband", "李建国", HOME), ("e_wife", "王秀英", HOME)
    ]  # fmt: skip
    viewed = {e["payload"]["elder_id"] for e in entries(client, admin, "elder.viewed") if e["actor"] == "operator:op_a"}
    assert viewed == {"e_husband", "e_wife"}  # both shown on the card: both reads on record

    picked = client.post("/api/calls/h-1/pick", json={"elder_id": "e_wife"}, headers=auth(operator))
    assert picked.status_code == 200, picked.text
    assert (picked.json()["elder_id"], picked.json()["elder_name"]) == ("e_wife", "王秀英")
    assert picked.json()["picked"]["by"] == "op_a"
    [pick] = entries(client, admin, "call.caller_picked")
    assert (pick["actor"], pick["payload"]) == ("operator:op_a", {"call_id": "h-1", "elder_id": "e_wife"})
    assert pick["ts"] == picked.json()["picked"]["at"]

    stranger = client.post("/api/calls/h-1/pick", json={"elder_id": "eb"}, headers=auth(operator))
    assert stranger.status_code == 404  # another street's elder: as if they did not exist
    outside = client.post("/api/calls/h-1/pick", json={"elder_id": "e_nobody"}, headers=auth(admin))
    assert outside.status_code == 404
    classified = client.post("/api/calls/h-1/classify", json={"kind": "consultation"}, headers=auth(operator))
    assert classified.status_code == 200 and classified.json()["elder_id"] == "e_wife"
    late = client.post("/api/calls/h-1/pick", json={"elder_id": "e_husband"}, headers=auth(operator))
    assert (late.status_code, late.json()["code"]) == (409, "call_already_classified")


def test_a_pick_names_an_elder_of_the_household(client: TestClient) -> None:
    admin = token(client)
    for call_id, caller in (("h-2", LANDLINE), ("b-1", "13505960099")):
        body = {"event": "ringing", "call_id": call_id, "caller": caller, "line": "12349"}
        assert client.post("/api/hotline/events", json=body, headers=auth(admin)).status_code == 200
    head = client.get("/api/journal?limit=1", headers=auth(admin)).json()["head"]
    wrong = client.post("/api/calls/h-2/pick", json={"elder_id": "eb"}, headers=auth(admin))
    assert (wrong.status_code, wrong.json()["code"]) == (422, "elder_not_offered")
    alone = client.post("/api/calls/b-1/pick", json={"elder_id": "eb"}, headers=auth(admin))
    assert (alone.status_code, alone.json()["code"]) == (409, "call_nothing_to_pick")
    missing = client.post("/api/calls/h-2/pick", json={}, headers=auth(admin))
    assert missing.status_code == 422  # the pick is said: an elder, or null for someone else
    assert client.get("/api/journal?limit=1", headers=auth(admin)).json()["head"] == head


def test_another_streets_operator_sees_nothing_of_the_household_call(client: TestClient) -> None:
    admin = token(client)
    other = person(client, admin, "op_b", "operator", [STREET_B])
    body = {"event": "ringing", "call_id": "h-3", "caller": LANDLINE, "line": "12349"}
    assert client.post("/api/hotline/events", json=body, headers=auth(admin)).status_code == 200
    assert client.get("/api/calls/h-3", headers=auth(other)).status_code == 404
    assert client.post("/api/calls/h-3/pick", json={"elder_id": "e_wife"}, headers=auth(other)).status_code == 404
    assert "h-3" not in client.get("/api/calls", headers=auth(other)).text
