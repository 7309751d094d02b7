"""The hotline on a PBX, end to end: a real ``anxin serve`` process logs in to the simulated Asterisk
(simulators.pbx) over TCP, and the five call flows of a queue-based hotline come through as call records, screen
pops on a console's websocket and the supervisor's answer-time figures; the link survives the PBX dropping it
mid-call and rebuilds the calls from its channel list.

The simulated PBX runs in the test's event loop, the server in its own process; nothing in between is faked.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import websockets
from playwright.async_api import async_playwright, expect

from simulators import city
from simulators.pbx import Pbx, Play
from tests.conftest import require_program
from tests.console.browser import CHROMIUM, LAUNCH_ARGS, SCREENSHOTS
from tests.process import ADMIN_PASSWORD, ServerProcess, import_city

PASSWORD = "telephony-pw-1"
OPERATORS = {"8101": ("li", "李娜"), "8102": ("chen", "陈静")}
T = TypeVar("T")


@dataclass
class Centre:
    server: ServerProcess
    pbx: Pbx
    client: httpx.AsyncClient
    tokens: dict[str, str]
    elder_id: str
    elder_phone: str

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def call(self, call_id: str, who: str = "li") -> dict[str, Any]:
        answer = await self.client.get(f"/api/calls/{call_id}", headers=self.auth(who))
        assert answer.status_code == 200, answer.text
        record: dict[str, Any] = answer.json()
        return record

    async def kpis(self) -> dict[str, Any]:
        answer = await self.client.get("/api/kpis", headers=self.auth("supervisor"))
        assert answer.status_code == 200, answer.text
        figures: dict[str, Any] = answer.json()["calls_today"]
        return figures


async def until(check: Callable[[], Awaitable[T | None]], within: float = 20.0) -> T:
    """``check()`` once it answers something true, polled; fails after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        seen = await check()
        if seen:
            return seen
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


def pbx_call_id(play: Play) -> str:
    """The call record's id of a call the PBX plays: its caller channel's Linkedid (docs/telephony.md)."""
    return f"pbx-{play.linkedid}"


@pytest.fixture
async def centre(tmp_path: Path) -> AsyncIterator[Centre]:
    files = city.generate(tmp_path / "city", seed=11, elders=6, caregivers=3, clinics=1)
    with files["elders"].open(encoding="utf-8") as rows:
        elder = next(csv.DictReader(rows))
    data = import_city(tmp_path / "data", files)
    pbx = Pbx(username="anxin", secret="pbx-secret-for-tests")
    port = await pbx.start()
    (tmp_path / "pbx-secret").write_text("pbx-secret-for-tests\n", encoding="utf-8")
    server = ServerProcess(
        data,
        ANXIN_PBX_HOST="127.0.0.1",
        ANXIN_PBX_PORT=str(port),
        ANXIN_PBX_USERNAME="anxin",
        ANXIN_PBX_SECRET_FILE=str(tmp_path / "pbx-secret"),
        ANXIN_PBX_EXTENSIONS=json.dumps({ext: user for ext, (user, _) in OPERATORS.items()}),
        ANXIN_PBX_BACKOFF_S="0.2",
        ANXIN_PBX_BACKOFF_MAX_S="1",
    )
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            tokens = {"admin": await _token(client, "admin", ADMIN_PASSWORD)}
            people = [*OPERATORS.values(), ("supervisor", "张伟")]
            admin = {"Authorization": f"Bearer {tokens['admin']}"}
            for username, name in people:
                role = "supervisor" if username == "supervisor" else "operator"
                body = {"username": username, "role": role, "password": PASSWORD, "name": name, "scopes": ["*"]}
                made = await client.post("/api/accounts", json=body, headers=admin)
                assert made.status_code == 201, made.text
                tokens[username] = await _token(client, username, PASSWORD)
            found = Centre(server, pbx, client, tokens, elder["elder_id"], elder["phone"])

            async def linked() -> bool:
                seen = (await client.get("/api/telephony", headers=found.auth("li"))).json()
                return bool(seen["connected"])

            await until(linked)
            yield found
    finally:
        await asyncio.to_thread(server.stop)
        await pbx.close()


async def _token(client: httpx.AsyncClient, username: str, password: str) -> str:
    answer = await client.post("/api/auth/token", data={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


async def play_through(play: Play, centre: Centre, call_id: str, until_outcome: str) -> dict[str, Any]:
    """Play the rest of the call's steps and wait until its record shows ``until_outcome``."""
    await play.run(0.05)

    async def ended() -> dict[str, Any] | None:
        record = await centre.call(call_id)
        return record if record["outcome"] == until_outcome and record["state"] == "ended" else None

    return await until(ended)


async def console_entries(centre: Centre, who: str, live: asyncio.Event) -> AsyncIterator[dict[str, Any]]:
    """The journal entries a console receives, one by one; ``live`` is set once its snapshot came."""
    async with websockets.connect(f"{centre.server.ws}/ws/console?token={centre.tokens[who]}") as ws:
        assert json.loads(await ws.recv())["type"] == "snapshot"
        live.set()
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") == "entry":
                yield message


async def test_an_answered_call_pops_the_elder_and_counts_as_answered_within_the_target(centre: Centre) -> None:
    pops: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    live = asyncio.Event()

    async def watch() -> None:
        async for entry in console_entries(centre, "li", live):
            if entry["kind"] == "call.ringing":
                await pops.put(entry)

    watching = asyncio.create_task(watch())
    try:
        await asyncio.wait_for(live.wait(), 20)  # the console has its snapshot: what comes next is live
        play = centre.pbx.call("answered", caller=centre.elder_phone, extension="8101")
        play.step()  # the caller arrives: Newchannel
        call_id = pbx_call_id(play)
        pop = await asyncio.wait_for(pops.get(), 20)
        assert pop["payload"]["call_id"] == call_id and pop["payload"]["elder_id"] == centre.elder_id
        record = await centre.call(call_id)
        assert record["elder_id"] == centre.elder_id and record["elder_name"] and record["outcome"] == "ringing"

        play.step()  # QueueCallerJoin
        await until(lambda: _outcome(centre, call_id, "queued"))
        record = await play_through(play, centre, call_id, "answered")
    finally:
        watching.cancel()
    assert record["direction"] == "in" and record["queue"] == "hotline" and record["extension"] == "8101"
    assert record["answered_by"] == "李娜" and record["cause"].startswith("16")
    assert record["wait_s"] is not None and 0 <= record["wait_s"] < 60
    figures = await centre.kpis()
    assert figures["offered"] == 1 and figures["answered"] == 1 and figures["answered_within_target"] == 1
    assert figures["answer_median_s"] is not None and figures["abandoned"] == figures["missed"] == 0
    # the operator classifies it as ever: the PBX's answer is the operator's
    classified = await centre.client.post(
        f"/api/calls/{call_id}/classify", json={"kind": "consultation", "text": "问补贴政策"}, headers=centre.auth("li")
    )
    assert classified.status_code == 200, classified.text


async def _outcome(centre: Centre, call_id: str, outcome: str) -> bool:
    return bool((await centre.call(call_id))["outcome"] == outcome)


async def test_a_caller_who_hangs_up_in_the_queue_is_abandoned_and_gets_a_call_back_incident(centre: Centre) -> None:
    play = centre.pbx.call("abandoned", caller=centre.elder_phone, extension="8101")
    play.step()
    call_id = pbx_call_id(play)
    record = await play_through(play, centre, call_id, "abandoned")
    assert record["queue"] == "hotline" and record["answered_at"] is None and record["wait_s"] is None
    assert record["incident_id"] is not None  # an elder who called for help gets help: someone calls back
    figures = await centre.kpis()
    assert figures["offered"] == 1 and figures["answered"] == 0 and figures["abandoned"] == 1


async def test_a_transferred_call_names_both_operators(centre: Centre) -> None:
    play = centre.pbx.call("transferred", caller=centre.elder_phone, extension="8101", to="8102")
    play.step()
    call_id = pbx_call_id(play)
    record = await play_through(play, centre, call_id, "transferred")
    assert record["answered_by"] == "李娜" and record["extension"] == "8101"
    assert [(t["extension"], t["operator"]) for t in record["transfers"]] == [("8102", "陈静")]
    figures = await centre.kpis()
    assert figures["answered"] == 1 and figures["transferred"] == 1


async def test_a_call_nobody_answers_is_missed(centre: Centre) -> None:
    play = centre.pbx.call("missed", caller="13000000001", extension="8101")
    play.step()
    call_id = pbx_call_id(play)
    record = await play_through(play, centre, call_id, "missed")
    assert record["caller_is"] == "unknown" and record["answered_at"] is None
    assert record["incident_id"] is not None
    figures = await centre.kpis()
    assert figures["offered"] == 1 and figures["missed"] == 1 and figures["answered_within_target"] == 0


async def test_an_operator_calls_an_elder_back_through_the_pbx(centre: Centre) -> None:
    missed = centre.pbx.call("missed", caller=centre.elder_phone, extension="8101")
    missed.step()
    missed_id = pbx_call_id(missed)
    await play_through(missed, centre, missed_id, "missed")

    centre.pbx.autoplay = False
    dialled = await centre.client.post(
        "/api/calls/dial",
        json={"number": centre.elder_phone, "elder_id": centre.elder_id, "call_id": missed_id},
        headers=centre.auth("li"),
    )
    assert dialled.status_code == 201, dialled.text
    call_id = dialled.json()["call_id"]
    originate = next(a for a in centre.pbx.actions if dict(a).get("Action") == "Originate")
    fields = dict(originate)
    assert fields["Channel"] == "PJSIP/8101" and fields["Exten"] == centre.elder_phone
    play = await asyncio.wait_for(centre.pbx.originated.get(), 10)
    record = await play_through(play, centre, call_id, "answered")
    assert record["direction"] == "out" and record["caller"] == centre.elder_phone
    assert record["about_call"] == missed_id and record["dialed_by"] == "李娜"
    figures = await centre.kpis()
    assert figures["outbound"] == 1 and figures["offered"] == 1  # a call placed is not a call offered

    # a PBX that refuses: the click says so, and the record ends as failed
    centre.pbx.originate_plan = "refuse"
    refused = await centre.client.post("/api/calls/dial", json={"number": "13000000002"}, headers=centre.auth("chen"))
    assert refused.status_code == 502 and refused.json()["code"] == "pbx_refused"


async def test_the_link_survives_a_drop_mid_call_and_rebuilds_the_calls_from_the_channel_list(
    centre: Centre,
) -> None:
    talking = centre.pbx.call("answered", caller=centre.elder_phone, extension="8101")
    for _ in range(4):  # arrive, queue, ring the operator, answered
        talking.step()
    talking_id = pbx_call_id(talking)
    await until(lambda: _outcome(centre, talking_id, "talking"))
    gone = centre.pbx.call("answered", caller="13000000003", extension="8102")
    gone.step()
    gone_id = pbx_call_id(gone)
    await until(lambda: _outcome(centre, gone_id, "ringing"))
    logins = centre.pbx.logins

    centre.pbx.drop()  # the cable is cut; meanwhile one call ends and a new one is answered
    for _ in range(4):
        gone.step()  # ... it ends while nobody listens
    fresh = centre.pbx.call("answered", caller="13000000004", extension="8102")
    for _ in range(4):
        fresh.step()
    fresh_id = pbx_call_id(fresh)

    await until(lambda: _logged_in_again(centre, logins))
    record = await until(lambda: _state(centre, gone_id, "ended"))
    assert record["cause"] == "ended while the PBX link was down"
    await until(lambda: _outcome(centre, fresh_id, "talking"))
    fresh_record = await centre.call(fresh_id)
    assert fresh_record["extension"] == "8102" and fresh_record["answered_by"] == "陈静"
    assert (await centre.call(talking_id))["outcome"] == "talking"  # still on the line, not ended nor doubled

    await talking.run(0.05)
    record = await until(lambda: _state(centre, talking_id, "ended"))
    assert record["outcome"] == "answered"


async def _logged_in_again(centre: Centre, before: int) -> bool:
    seen = (await centre.client.get("/api/telephony", headers=centre.auth("li"))).json()
    return centre.pbx.logins > before and bool(seen["connected"])


async def _state(centre: Centre, call_id: str, state: str) -> dict[str, Any] | None:
    record = await centre.call(call_id)
    return record if record["state"] == state else None


async def test_an_operators_console_takes_the_calls_of_its_desk_and_leaves_a_colleagues_to_them(
    centre: Centre,
) -> None:
    """In Chromium, in Chinese: a queued call counts as waiting and pops; answered at a colleague's desk it is
    theirs (no classify form here); answered at this operator's desk it asks for their word; a call the operator
    places is listed as outbound and never counts as a call waiting."""
    chromium = require_program(CHROMIUM)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 1366, "height": 768}, locale="zh-CN", timezone_id="Asia/Shanghai"
            )
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{centre.server.url}/console")
            await page.fill("#login-username", "li")
            await page.fill("#login-password", PASSWORD)
            await page.click("#login-submit")
            await page.wait_for_selector("#conn-status[data-state=online]")

            theirs = centre.pbx.call("answered", caller=centre.elder_phone, extension="8102")
            theirs.step(), theirs.step()  # the caller arrives and waits in the queue
            await expect(page.locator("#calls-jump-count")).to_have_text("1")
            await expect(page.locator("#call-pop")).to_be_visible()
            await expect(page.locator("#call-pop-state")).to_have_text("排队中")
            await expect(page.locator("#call-pop .call-outcome")).to_have_count(0)  # the state says it: not twice
            theirs.step(), theirs.step()  # 8102 rings and answers: 陈静's call
            await until(lambda: _outcome(centre, pbx_call_id(theirs), "talking"))
            await expect(page.locator("#calls-jump-count")).to_have_text("")
            await expect(page.locator("#classify")).to_be_hidden()

            mine = centre.pbx.call("answered", caller="13000000005", extension="8101")
            for _ in range(4):
                mine.step()
            await expect(page.locator("#classify")).to_be_visible()
            await expect(page.locator("#calls-jump-count")).to_have_text("1")
            await page.screenshot(path=str(SCREENSHOTS / "telephony-console-own-desk-zh.png"))
            await theirs.run(0.01)
            await mine.run(0.01)

            centre.pbx.autoplay = False  # the call-back rings and stays ringing
            await page.locator("button.dial:enabled").first.click()
            await expect(page.locator("#dial-toast")).to_have_attribute("data-kind", "ok")
            play = await asyncio.wait_for(centre.pbx.originated.get(), 10)
            for _ in range(5):  # the operator's leg rings and answers; the far side is dialled
                play.step()
            out = page.locator("#calls li", has=page.locator(".call-dir-out")).first
            await expect(out).to_be_visible()
            await expect(out.locator(".call-take")).to_have_count(0)
            # still 1: the own call waiting for its word; the outbound one does not count
            await expect(page.locator("#calls-jump-count")).to_have_text("1")
            assert errors == []
        finally:
            await browser.close()
