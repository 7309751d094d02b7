"""The hotline on a PBX, with two nodes: each holds a link of its own to the (simulated) Asterisk, each hands
its call events to the leader, and a call is still one record; an operator dials through the node they use,
a follower included."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.pbx import Pbx
from tests.anxin.test_telephony import pbx_call_id, until
from tests.cluster.nodes import Cluster, import_shared, login

pytestmark = pytest.mark.process

PASSWORD = "telephony-pw-1"


async def test_two_nodes_linked_to_one_pbx_make_one_record_and_either_places_a_call(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    files = import_shared(tmp_path, pg_url, redis_url, elders=6, caregivers=2, clinics=1)
    elder_phone = files["elders"].read_text(encoding="utf-8").splitlines()[1].split(",")[2]
    pbx = Pbx(username="anxin", secret="pbx-secret-for-tests")
    port = await pbx.start()
    env = {
        "ANXIN_PBX_HOST": "127.0.0.1", "ANXIN_PBX_PORT": str(port), "ANXIN_PBX_USERNAME": "anxin",
        "ANXIN_PBX_SECRET": "pbx-secret-for-tests", "ANXIN_PBX_EXTENSIONS": json.dumps({"8101": "li", "8102": "chen"}),
        "ANXIN_PBX_BACKOFF_S": "0.2", "ANXIN_PBX_BACKOFF_MAX_S": "1",
    }  # fmt: skip
    cluster = Cluster(tmp_path, pg_url, redis_url, size=2, **env)
    await asyncio.to_thread(cluster.start)
    try:
        leader, _ = await cluster.wait_leader()
        follower = next(n for n in cluster.nodes if n is not leader)
        await until(lambda: _logins(pbx, 2))  # both nodes logged in to the PBX
        async with httpx.AsyncClient(base_url=follower.url, timeout=15) as client:
            admin = {"Authorization": f"Bearer {await login(client)}"}
            for username in ("li", "chen"):
                body = {"username": username, "role": "operator", "password": PASSWORD, "scopes": ["*"]}
                made = await client.post("/api/accounts", json=body, headers=admin)
                assert made.status_code == 201, made.text
            answer = await client.post("/api/auth/token", data={"username": "li", "password": PASSWORD})
            li = {"Authorization": f"Bearer {answer.json()['access_token']}"}

            async def record(call_id: str, state: str) -> dict[str, Any] | None:
                seen = await client.get(f"/api/calls/{call_id}", headers=li)
                found: dict[str, Any] = seen.json()
                return found if seen.status_code == 200 and found["state"] == state else None

            play = pbx.call("transferred", caller=elder_phone, extension="8101", to="8102")
            await play.run(0.05)
            ended = await until(lambda: record(pbx_call_id(play), "ended"))
            assert ended["outcome"] == "transferred" and ended["extension"] == "8101"
            assert [t["extension"] for t in ended["transfers"]] == ["8102"], "each node reported it: one record"
            journal = (await client.get("/api/journal?limit=500", headers=admin)).json()["entries"]
            kinds = [e["kind"] for e in journal if e["payload"].get("call_id") == pbx_call_id(play)]
            assert sorted(kinds) == ["call.answered", "call.ended", "call.queued", "call.ringing", "call.transferred"]

            # the follower's console dials through the follower's own link
            linked = (await client.get("/api/telephony", headers=li)).json()
            assert linked["connected"] and linked["can_dial"]
            dialled = await client.post("/api/calls/dial", json={"number": "13000000007"}, headers=li)
            assert dialled.status_code == 201, dialled.text
            call_id = dialled.json()["call_id"]
            placed = await until(lambda: record(call_id, "ended"))
            assert placed["direction"] == "out" and placed["outcome"] == "answered"
    finally:
        await asyncio.to_thread(cluster.stop)
        await pbx.close()


async def _logins(pbx: Pbx, count: int) -> bool:
    return pbx.logins >= count and len(pbx.sessions) >= count
