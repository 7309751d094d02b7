"""Every node is an edge: people's commands through a follower, their refusals, and what the follower shows."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import websockets

from tests.cluster.nodes import Cluster, import_shared, login

pytestmark = pytest.mark.process


async def test_a_follower_hands_commands_over_and_shows_their_effect_at_once(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    import_shared(tmp_path, pg_url, redis_url, elders=40, caregivers=6, clinics=1)
    cluster = Cluster(tmp_path, pg_url, redis_url, size=2).start()
    try:
        leader, _ = await cluster.wait_leader()
        follower = next(n for n in cluster.nodes if n is not leader)
        async with httpx.AsyncClient(base_url=follower.url, timeout=15) as client:
            token = await login(client)
            client.headers["Authorization"] = f"Bearer {token}"
            async with websockets.connect(f"{follower.ws}/ws/console?token={token}") as console:
                snapshot = json.loads(await console.recv())
                assert snapshot["type"] == "snapshot"
                raised = await client.post("/api/alarms", json={"elder_id": "e00001", "alarm_type": "sos"})
                assert raised.status_code == 201, raised.text
                incident_id = raised.json()["incident_id"]
                # read your own write: the follower answered once its copy had the entries
                shown = await client.get(f"/api/incidents/{incident_id}")
                assert shown.status_code == 200 and shown.json()["state"] == "received", shown.text
                acked = await client.post(f"/api/incidents/{incident_id}/acknowledge")
                assert acked.status_code == 200, acked.text
                assert (await client.get(f"/api/incidents/{incident_id}")).json()["state"] != "received"
                # a refusal comes back as the leader gave it: the same status, code and field
                unknown = await client.post("/api/incidents/INC-999999/acknowledge")
                assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_incident", unknown.text
                blank = await client.post(f"/api/incidents/{incident_id}/notes", json={"text": "   "})
                assert blank.status_code == 422, blank.text
                kinds = []
                while "incident.acknowledged" not in kinds:
                    message = json.loads(await console.recv())
                    if message.get("type") == "entry":
                        kinds.append(message["kind"])
                assert "incident.opened" in kinds
        health = follower.health()
        assert health["ok"] and health["cluster"] == {"node": follower.name, "leading": False, "term": 0}
    finally:
        cluster.stop()
