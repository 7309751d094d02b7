"""Accounts are the cluster's, not a node's: made through one node, logged in on another; disabled through one,
shut out everywhere at once (their open phone channel on another node too)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import websockets

from tests.cluster.nodes import Cluster, import_shared, login

pytestmark = pytest.mark.process


async def test_an_account_made_on_one_node_works_on_another_and_is_shut_out_everywhere(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    import_shared(tmp_path, pg_url, redis_url, elders=30, caregivers=4, clinics=1)
    cluster = Cluster(tmp_path, pg_url, redis_url, size=2).start()
    try:
        one, other = cluster.nodes
        async with httpx.AsyncClient(base_url=one.url, timeout=15) as admin:
            admin.headers["Authorization"] = f"Bearer {await login(admin)}"
            made = await admin.post("/api/accounts", json={"username": "wangfang", "password": "caregiver-pw-7",
                                                          "role": "caregiver", "responder_id": "c0001"})  # fmt: skip
            assert made.status_code == 201, made.text
            async with httpx.AsyncClient(base_url=other.url, timeout=15) as phone:
                answer = await phone.post(
                    "/api/auth/token", data={"username": "wangfang", "password": "caregiver-pw-7"}
                )
                assert answer.status_code == 200, answer.text
                token = answer.json()["access_token"]
                assert (await phone.get("/api/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200
                async with httpx.AsyncClient(base_url=one.url, timeout=15) as same:  # the token, on the first node
                    assert (await same.get("/api/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200
                async with websockets.connect(f"{other.ws}/ws/caregiver?token={token}") as channel:
                    await channel.recv()  # hello
                    disabled = await admin.post("/api/accounts/wangfang/disable")
                    assert disabled.status_code == 200, disabled.text
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        while True:
                            await channel.recv()
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
                refused = await phone.get("/api/me", headers={"Authorization": f"Bearer {token}"})
                assert refused.status_code == 401, refused.text
    finally:
        cluster.stop()
