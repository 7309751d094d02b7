"""The service traffic against a real server: the desk orders, schedules and assigns; each simulated caregiver
checks in and out with their own account; the orders a person placed and those left for people stay as they are.

The desk runs in this process with its ticks shortened and the services' minutes passing very fast.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators import city, services
from simulators.api import api_client, call_api, login
from simulators.services import DeskPlan, item_for, left_for_people
from tests.process import ADMIN_PASSWORD, ServerProcess, anxin

PASSWORD = "desk-test-password"


def test_the_words_of_a_service_call_name_the_item() -> None:
    assert item_for("帮我订一份明天的午饭送餐") == "meal_delivery"
    assert item_for("想预约明天上午的助浴服务") == "bathing"
    assert item_for("家里水管漏水，想请师傅上门修一下") == "home_repair"
    assert item_for("想请人帮忙代买点药和米") == "medicine_pickup"
    assert item_for("想问一下高龄补贴怎么申请") is None


def test_what_is_left_for_people_is_the_same_every_time() -> None:
    ids = [f"SO-{n}" for n in range(2000)]
    left = [i for i in ids if left_for_people(i, 0.3)]
    assert left == [i for i in ids if left_for_people(i, 0.3)]
    assert 0.25 < len(left) / len(ids) < 0.35
    assert not any(left_for_people(i, 0.0) for i in ids)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    files = city.generate(tmp_path / "city", seed=7, elders=20, caregivers=6, clinics=0)
    data = tmp_path / "data"
    done = anxin("import", "--data", str(data), "--elders", str(files["elders"]), "--responders",
                 str(files["responders"]))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    process = ServerProcess(data).start()
    yield process
    process.stop()


async def until(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


@pytest.mark.process
async def test_the_desk_and_the_round_deliver_and_leave_peoples_orders_alone(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "TICK_S", 0.2)
    monkeypatch.setattr(services, "CARE_CALL_TICK_S", 0.2)
    stop = asyncio.Event()
    async with api_client(server.url) as anonymous:
        admin = (await login(anonymous, "admin", ADMIN_PASSWORD))["access_token"]
    async with api_client(server.url, admin) as client:
        await call_api(client, "POST", "/api/accounts", stop=stop,
                       body={"username": "bot", "password": PASSWORD, "role": "operator"})  # fmt: skip
        responders = (await call_api(client, "GET", "/api/responders", stop=stop))["responders"]
        caregivers = [r["responder_id"] for r in responders if r["kind"] == "caregiver"]
        for responder_id in caregivers:
            body = {"username": responder_id, "password": PASSWORD, "role": "caregiver", "responder_id": responder_id}
            await call_api(client, "POST", "/api/accounts", stop=stop, body=body)
        for r in responders:
            if r["kind"] == "caregiver":  # on duty at home: orders go to people on duty
                async with api_client(server.url) as anonymous:
                    token = (await login(anonymous, r["responder_id"], PASSWORD))["access_token"]
                async with api_client(server.url, token) as phone:
                    body = {"on": True, "lat": r["lat"], "lon": r["lon"]}
                    await call_api(phone, "POST", "/api/me/duty", stop=stop, body=body)
        elders = (await call_api(client, "GET", "/api/elders", stop=stop))["elders"]
        # a person's order, before the desk starts: it stays "requested"
        now = time.time()
        body = {"elder_id": elders[0]["elder_id"], "item_id": "meal_delivery", "start": now, "end": now + 3600}
        persons = await call_api(client, "POST", "/api/service-orders", stop=stop, body=body)
        async with api_client(server.url) as anonymous:
            bot = (await login(anonymous, "bot", PASSWORD))["access_token"]
        async with api_client(server.url, bot) as desk_client:
            plans = await services.seed_plans(desk_client, caregivers, None, stop)
            again = await services.seed_plans(desk_client, caregivers, None, stop)
        owners = {e["caregiver_id"] for e in elders if e.get("caregiver_id")}
        assert plans == min(len(services.PLAN_TIMES), len(owners & set(caregivers))) and plans > 0 and again == 0
        plan = DeskPlan(orders_per_hour=3600.0, lead_s=(0.0, 0.2), speedup=3000.0, leave_orders=0.2,
                        care_calls=True, leave_care_calls=0.0)  # fmt: skip
        desk = asyncio.create_task(
            services.service_desk(server.url, bot, [(c, c, PASSWORD) for c in caregivers], stop=stop, seed=3, plan=plan)
        )

        async def orders() -> list[dict[str, Any]]:
            answer = await call_api(client, "GET", "/api/service-orders", stop=stop, params={"limit": 1000})
            return list(answer["orders"])

        async def care_calls_made() -> int:
            answer = await call_api(client, "GET", "/api/care-calls", stop=stop, params={"date": "today"})
            return len(answer["done"]) + sum(c["attempts"] > 0 for c in answer["calls"])

        async def delivered_several() -> bool:
            return sum(o["state"] == "delivered" for o in await orders()) >= 5 and await care_calls_made() >= 2

        try:
            await until(delivered_several)
        finally:
            stop.set()
            await desk
        everything = await orders()
        delivered = [o for o in everything if o["state"] == "delivered"]
        for order in delivered:
            assert order["responder_id"] in caregivers
            assert order["started_pos"] is not None and order["delivered_pos"] is not None
            assert order["note"] == services.DONE_NOTES[order["item_id"]]
        mine = next(o for o in everything if o["order_id"] == persons["order_id"])
        assert mine["state"] == "requested" and mine["responder_id"] is None
        for order in everything:
            if order["ordered_by"] == "operator:bot" and left_for_people(order["order_id"], plan.leave_orders):
                assert order["state"] == "requested", order
        journal = await call_api(client, "GET", "/api/journal", stop=stop, params={"limit": 5000})
        actors = {e["actor"] for e in journal["entries"] if e["kind"] == "service.started"}
        assert actors and actors <= {f"caregiver:{c}" for c in caregivers}  # each with their own account
