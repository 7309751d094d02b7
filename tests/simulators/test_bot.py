"""The demo's operator bot against a real server: it works its own incidents and calls to the end, and never
touches one a person opened, acknowledged, noted, escalated or classified, nor a call a person classified.

The bot runs in this process with its reactions and timers shortened; nobody is on duty, so nothing is offered.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators import bot, city
from simulators.api import api_client, call_api, login
from simulators.scripts import CallScript, Switchboard, draw_script
from simulators.traffic import HotlineCall, fetch_elders
from tests.process import ADMIN_PASSWORD, ServerProcess, anxin

pytestmark = pytest.mark.process
PASSWORD = "bot-test-password"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    files = city.generate(tmp_path / "city", seed=5, elders=30, caregivers=4, clinics=1)
    data = tmp_path / "data"
    done = anxin("import", "--data", str(data), "--elders", str(files["elders"]), "--responders",
                 str(files["responders"]))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    process = ServerProcess(data).start()
    yield process
    process.stop()


async def until(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


def script(kind: str, elder: dict[str, Any], seed: int) -> CallScript:
    rng = random.Random(seed)
    drawn = draw_script(rng, elder, known=True, emergency_share=1.0 if kind == "emergency" else 0.0)
    while drawn.kind != kind:
        drawn = draw_script(rng, elder, known=True, emergency_share=1.0 if kind == "emergency" else 0.0)
    return drawn


async def test_the_bot_never_touches_what_a_person_touched(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("POLL_S", 0.2), ("REACTION_S", (0.1, 0.3)), ("SETTLE_S", 0.3), ("CLOSE_S", 0.3),
                        ("ESCALATED_S", 0.3), ("CALLBACK_S", 0.3), ("MANUAL_S", 600.0)):  # fmt: skip
        monkeypatch.setattr(bot, name, value)
    stop = asyncio.Event()
    async with api_client(server.url) as anonymous:
        admin = (await login(anonymous, "admin", ADMIN_PASSWORD))["access_token"]
    async with api_client(server.url, admin) as client:
        for username in ("bot", "operator"):
            body = {"username": username, "password": PASSWORD, "role": "operator"}
            await call_api(client, "POST", "/api/accounts", stop=stop, body=body)
    async with api_client(server.url) as anonymous:
        tokens = {u: (await login(anonymous, u, PASSWORD))["access_token"] for u in ("bot", "operator")}
    board = Switchboard()
    async with (
        api_client(server.url, tokens["bot"]) as pbx,  # the demo's telephony and alarms post as the bot
        api_client(server.url, tokens["operator"]) as person,
        api_client(server.url, admin) as auditor,
    ):
        elders = [e for e in await fetch_elders(pbx, stop) if e.get("phone")]

        async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any] | None = None) -> Any:
            return await call_api(client, "POST", path, stop=stop, body=body)

        async def get(path: str) -> Any:
            return await call_api(auditor, "GET", path, stop=stop)

        async def ring(call_id: str, elder: dict[str, Any], said: CallScript) -> None:
            call = HotlineCall(call_id, str(elder["phone"]), said, drill=False)
            board.put(call_id, said)
            for event in ("ringing", "answered"):
                await post(pbx, "/api/hotline/events", call.event_body(event))

        async def alarm(elder: dict[str, Any], alarm_type: str) -> str:
            body = {"elder_id": elder["elder_id"], "alarm_type": alarm_type}
            return str((await post(pbx, "/api/alarms", body))["incident_id"])

        # what a person does before the bot starts: all of it stays theirs
        by_hand = await post(person, "/api/incidents", {"alarm_type": "fall", "elder_id": elders[0]["elder_id"]})
        await ring("call-person", elders[1], script("emergency", elders[1], 1))
        classified = await post(person, "/api/calls/call-person/classify", {"kind": "emergency", "alarm_type": "fall"})
        await ring("call-person-silent", elders[2], script("silent", elders[2], 2))
        await post(person, "/api/calls/call-person-silent/classify", {"kind": "silent"})
        noted = await alarm(elders[3], "low_battery")
        await post(person, f"/api/incidents/{noted}/notes", {"text": "我来打电话"})
        # what is the bot's
        await ring("call-bot", elders[4], script("emergency", elders[4], 3))
        settled = await alarm(elders[5], "test")
        escalated = await alarm(elders[6], "sos")

        running = asyncio.create_task(
            bot.operator_bot(server.url, tokens["bot"], stop=stop, switchboard=board, leave_share=0.0)
        )
        try:

            async def acknowledged() -> bool:
                return bool((await get(f"/api/incidents/{escalated}"))["acknowledged_by"] == "operator:bot")

            await until(acknowledged)
            await post(person, f"/api/incidents/{escalated}/escalate", {"service": "120"})  # without a note

            async def bots_work_done() -> bool:
                call = await get("/api/calls/call-bot")
                return bool((await get(f"/api/incidents/{settled}"))["state"] == "closed" and call["kind"])

            await until(bots_work_done)
            await asyncio.sleep(3.0)  # many more of the bot's rounds, its timers long past
        finally:
            stop.set()
            await running

        entries = (await call_api(auditor, "GET", "/api/journal", stop=stop, params={"limit": 5000}))["entries"]

    def bot_steps_after_the_person(incident_id: str) -> list[str]:
        mine = [e for e in entries if e["incident_id"] == incident_id]
        first = min(e["seq"] for e in mine if e["actor"] == "operator:operator")
        return [e["kind"] for e in mine if e["actor"] == "operator:bot" and e["seq"] > first]

    for incident_id in (by_hand["incident_id"], classified["incident_id"], noted, escalated):
        assert bot_steps_after_the_person(incident_id) == [], incident_id
    acknowledged_noted = [e for e in entries if e["kind"] == "incident.acknowledged" and e["incident_id"] == noted]
    assert acknowledged_noted == [], "a person's note before anyone acknowledged: nobody but a person takes it"
    called_back = [e for e in entries if e["kind"] == "call.called_back"]
    assert called_back == [], "a silent call a person classified is theirs to call back"
    view = {e["incident_id"]: e for e in entries if e["kind"] == "incident.closed"}
    assert view[settled]["actor"] == "operator:bot", "the bot's own incident, worked to the end"
    bots_call = [e for e in entries if e["kind"] == "call.classified" and e["actor"] == "operator:bot"]
    assert [e["payload"]["call_id"] for e in bots_call] == ["call-bot"]
