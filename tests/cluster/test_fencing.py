"""A leader paused past its lease (SIGSTOP) and resumed writes not one entry after another node took over."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import asyncpg
import httpx
import pytest

from anxin.server import EXIT_LOST_LEAD
from tests.cluster.nodes import Cluster, import_shared, login
from tests.process import anxin

pytestmark = pytest.mark.process


async def test_a_paused_leader_writes_nothing_after_losing_its_lease(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    import_shared(tmp_path, pg_url, redis_url, elders=60, caregivers=8, clinics=1)
    # timers that fall due while the leader is paused: they fire the moment it wakes, and must not be written
    cluster = Cluster(tmp_path, pg_url, redis_url, size=2, ANXIN_ANSWER_TARGET_S="2").start()
    try:
        old, _ = await cluster.wait_leader()
        other = next(n for n in cluster.nodes if n is not old)
        old_term = old.health()["cluster"]["term"]
        async with httpx.AsyncClient(base_url=old.url, timeout=10) as client:
            client.headers["Authorization"] = f"Bearer {await login(client)}"
            before = await client.post("/api/alarms", json={"elder_id": "e00001", "alarm_type": "sos"})
            assert before.status_code == 201, before.text

        assert old.proc is not None
        os.kill(old.proc.pid, signal.SIGSTOP)
        # a request that reaches the paused leader's socket: the kernel takes it, the process reads it on waking
        waiting = asyncio.create_task(_alarm(old.url, "e00002"))
        new, took_s = await cluster.wait_leader(15, besides=old)
        assert new is other and took_s < 6, took_s
        async with httpx.AsyncClient(base_url=new.url, timeout=10) as client:
            client.headers["Authorization"] = f"Bearer {await login(client)}"
            after = await client.post("/api/alarms", json={"elder_id": "e00003", "alarm_type": "fall"})
            assert after.status_code == 201, after.text

        os.kill(old.proc.pid, signal.SIGCONT)
        assert old.proc.wait(15) == EXIT_LOST_LEAD
        answered = await waiting
        assert answered != 201, "the old leader acknowledged an alarm after losing the lead"

        conn = await asyncpg.connect(pg_url)
        try:
            new_term = await conn.fetchval("SELECT term FROM leadership WHERE id = 1")
            first_of_new = await conn.fetchval("SELECT min(seq) FROM journal WHERE term = $1", new_term)
            late = await conn.fetchval("SELECT count(*) FROM journal WHERE term = $1 AND seq > $2", old_term,
                                       first_of_new)  # fmt: skip
            kinds = [r["kind"] for r in await conn.fetch("SELECT kind FROM journal WHERE seq >= $1", first_of_new)]
        finally:
            await conn.close()
        assert new_term == old_term + 1
        assert late == 0
        assert kinds[0] == "cluster.leader"
        verified = anxin("verify", "--journal", pg_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        log = old.log.read_text(errors="replace")
        assert "no longer leads" in log
    finally:
        if old.proc is not None and old.proc.poll() is None:
            os.kill(old.proc.pid, signal.SIGCONT)
        cluster.stop()


async def _alarm(url: str, elder_id: str) -> int:
    """The status of an alarm raised on ``url`` (0: no answer at all)."""
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token = await login(client)
            answer = await client.post("/api/alarms", json={"elder_id": elder_id, "alarm_type": "sos"},
                                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            return answer.status_code
    except httpx.HTTPError:
        return 0
