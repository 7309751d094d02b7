"""Callers and the operator desk against a real server: every call is classified as its caller meant, calls
that are not emergencies open nothing, and unknown callers are placed where they say and offered.

The scenario has no devices and no alarms, only the hotline: half the callers are unknown to the registry
and half the calls are emergencies, so that the desk has to place strangers (by the elder's name, or by the
building or address they say) for anyone to be offered their incident.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators import city
from simulators.api import api_client, call_api, login
from simulators.drill import Options, Target, run_drill
from simulators.operators import DeskPlan, OperatorDesk
from simulators.scenario import load
from simulators.scripts import Switchboard, draw_script
from simulators.traffic import HotlineCall, fetch_elders, unknown_number
from tests.process import ADMIN_PASSWORD, ServerProcess, anxin

pytestmark = pytest.mark.process

CALLERS = """
name = "callers"
title = "the hotline alone, many strangers, many emergencies"
duration = "5m"
speedup = 60
drain = "5m"
seed = 4

[city]
elders = 80
caregivers = 10
clinics = 2

[devices]
count = 0

[alarms]
sos_per_hour = 0
fall_per_hour = 0
medical_per_hour = 0

[hotline]
calls_per_hour = 150
unknown_share = 0.5
emergency_share = 0.5

[caregivers]
shifts = [{ count = 8 }]

[operators]
count = 2
callback_after = "1m"
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A running server with a city, no device ports, timers at the drill's ×60."""
    files = city.generate(tmp_path / "city", seed=5, elders=80, caregivers=10, clinics=2)
    data = tmp_path / "data"
    done = anxin("import", "--data", str(data), "--elders", str(files["elders"]), "--responders",
                 str(files["responders"]))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    process = ServerProcess(data, ANXIN_ANSWER_TARGET_S="1", ANXIN_OFFER_TIMEOUT_S="0.75").start()
    yield process
    process.stop()


async def test_calls_are_classified_and_strangers_placed_and_offered(tmp_path: Path, server: ServerProcess) -> None:
    path = tmp_path / "callers.toml"
    path.write_text(CALLERS, encoding="utf-8")
    target = Target(server.url, "admin", ADMIN_PASSWORD, {}, embedded=False)
    card = await run_drill(load(str(path)), target, Options(progress=False))

    calls = card["calls"]
    assert calls["placed"] >= 8 and calls["answered"] == calls["placed"] == calls["recorded"]
    assert calls["classified"] == calls["as_scripted"] == calls["answered"], "every call heard as meant"
    assert calls["incidents_not_emergency"] == 0
    assert calls["unknown_emergencies"] >= 1 and calls["emergencies"] > calls["unknown_emergencies"]
    assert calls["unknown_placed"] == calls["unknown_offered"] == calls["unknown_emergencies"]
    assert set(calls["unknown_placed_by"]) == {"search", "address"}, "found by name, and placed by address"
    assert card["incidents"]["person"] >= calls["incidents"] >= 1
    assert card["incidents"]["never_offered"] == [], "every incident offered, strangers' included"
    assert card["manual"]["location_unknown"] == 0

    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        token = (await client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})).json()
        client.headers["Authorization"] = f"Bearer {token['access_token']}"
        views: list[dict[str, Any]] = (await client.get("/api/calls", params={"limit": 500})).json()["calls"]
        incidents = (await client.get("/api/incidents", params={"limit": 500})).json()["incidents"]
    assert len(views) == calls["placed"] and all(v["drill"] for v in views)
    kinds = {v["call_id"]: v for v in views}
    assert {v["kind"] for v in views if v["incident_id"] is None} <= {"service", "consultation", "complaint",
                                                                      "wrong_number", "silent"}  # fmt: skip
    assert all(v["incident_id"] for v in views if v["kind"] == "emergency")
    by_call = {i["call_id"]: i for i in incidents}
    assert set(by_call) <= set(kinds) and all(i["source"] == "hotline" for i in incidents)
    strangers = [v for v in views if v["kind"] == "emergency" and v["caller_is"] == "unknown"]
    assert strangers
    for view in strangers:
        incident = next(i for i in incidents if i["incident_id"] == view["incident_id"])
        assert incident["lat"] is not None and incident["location"] in ("home", "address")


async def test_a_stranger_who_hung_up_is_called_back_placed_and_offered(server: ServerProcess) -> None:
    stop = asyncio.Event()
    async with api_client(server.url) as anonymous:
        token = (await login(anonymous, "admin", ADMIN_PASSWORD))["access_token"]
    async with api_client(server.url, token) as client:
        responders = (await call_api(client, "GET", "/api/responders", stop=stop))["responders"]
        roster = [{"responder_id": r["responder_id"], "on": True, "lat": r["lat"], "lon": r["lon"]}
                  for r in responders if r["kind"] != "clinic"]  # fmt: skip
        await call_api(client, "POST", "/api/responders/duty", stop=stop, body={"roster": roster})
        elder, rng = (await fetch_elders(client, stop))[3], random.Random(1)
        script = draw_script(rng, elder, known=False, emergency_share=1.0)
        while script.name is not None:  # a passer-by, who can only say where
            script = draw_script(rng, elder, known=False, emergency_share=1.0)
        board = Switchboard()
        call = HotlineCall("missed-1", unknown_number(rng), script, drill=True)
        board.put(call.call_id, script)
        hang_up = asyncio.Event()
        ringing = asyncio.create_task(call.play(client, rng, hang_up, answer_s=(30.0, 30.0)))
        await asyncio.sleep(0.3)
        hang_up.set()
        assert await ringing is None, "nobody answered"
        opened = (await call_api(client, "GET", "/api/incidents", stop=stop, params={"open": "true"}))["incidents"]
        incident = next(i for i in opened if i["call_id"] == call.call_id)
        assert incident["location"] == "unknown" and incident["needs_manual"]

        desk = OperatorDesk(server.url, token, DeskPlan(count=1, speedup=600.0), seed=2, switchboard=board)
        working = asyncio.create_task(desk.run(stop))
        for _ in range(100):  # ten seconds at most
            if desk.done["locate"]:
                break
            await asyncio.sleep(0.1)
        stop.set()
        await working
        view = await call_api(client, "GET", f"/api/incidents/{incident['incident_id']}", stop=asyncio.Event())
    assert desk.done["acknowledge"] == desk.done["locate"] == 1
    assert view["location"] == "address" and view["lat"] is not None
    assert view["assignments"], "placed, then offered to someone"
