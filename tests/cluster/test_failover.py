"""Three nodes, devices of every protocol reporting to all of them, and the leader SIGKILLed mid-storm.

What must hold (issue 14, docs/cluster.md): another node leads within 5 s; every alarm a device saw acknowledged
is in the shared journal exactly once; ``anxin verify --journal`` passes; the consoles connected to the surviving
nodes miss no entry; offers and timers go on under the new leader. Then Redis restarts empty and the cluster
carries on without losing an acknowledged alarm.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import random
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets

from anxin import scratch
from simulators.devices import Behaviour, DeviceFleet, Endpoints, FleetPlan, read_city_devices
from simulators.scorecard import match_alarms
from tests.cluster.nodes import Cluster, Node, import_shared, login
from tests.process import anxin

pytestmark = pytest.mark.process

SPEEDUP = 60.0  # a drill hour is a wall minute: the rates below are per drill hour


class Console:
    """An operator's console on one node: every entry it is sent, resuming from the last one after a drop."""

    def __init__(self, node: Node, token: str) -> None:
        self.node, self.token = node, token
        self.first = 0  # the snapshot's seq: the console sees everything after it
        self.seqs: list[int] = []
        self.drops = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        after: int | None = None
        while True:
            query = f"token={self.token}" + ("" if after is None else f"&after={after}")
            try:
                async with websockets.connect(f"{self.node.ws}/ws/console?{query}", max_size=None) as ws:
                    async for raw in ws:
                        message = json.loads(raw)
                        if message.get("type") == "snapshot" and after is None:
                            after = self.first = int(message["seq"])
                        elif message.get("type") == "entry":
                            self.seqs.append(int(message["seq"]))
                            after = int(message["seq"])
            except (OSError, websockets.WebSocketException):
                pass
            self.drops += 1
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def shown(console: Console, head: int) -> list[int]:
    """The seqs after the console's snapshot, up to ``head``, that its node's journal shows the same reader."""
    seqs: list[int] = []
    async with httpx.AsyncClient(base_url=console.node.url, timeout=20) as client:
        client.headers["Authorization"] = f"Bearer {console.token}"
        after = console.first
        while after < head:
            page = (await client.get("/api/journal", params={"after": after, "limit": 5000})).json()
            seqs += [e["seq"] for e in page["entries"] if e["seq"] <= head]
            if page["next_after"] <= after:
                break
            after = page["next_after"]
    return seqs


async def journal(pg_url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch(
            "SELECT seq, ts, kind, actor, incident_id, drill, payload, term FROM journal ORDER BY seq"
        )
    finally:
        await conn.close()
    return [{**dict(row), "payload": json.loads(row["payload"])} for row in rows]


def fleets(files: dict[str, Path], nodes: list[Node], behaviour: Behaviour, plan: FleetPlan) -> list[DeviceFleet]:
    """The city's devices in three groups, each with one node as its primary and the others as backups."""
    specs = read_city_devices(files["devices"], rng=random.Random(3), udp_share=0.3)
    made = []
    for i, primary in enumerate(nodes):
        backups = tuple(n.devices for n in nodes[i + 1 :] + nodes[:i])
        endpoints = Endpoints("127.0.0.1", primary.devices, backups=backups)
        mine = specs[i :: len(nodes)]
        share = FleetPlan({kind: rate * len(mine) / len(specs) for kind, rate in plan.rates.items()})
        made.append(DeviceFleet(mine, endpoints, behaviour, share, seed=11 + i))
    return made


def _twice(entries: list[dict[str, Any]], alarms: list[Any]) -> list[Any]:
    """Alarms recorded more than once. A DC-09 repeat carries its sequence number and is recognised: one entry
    per alarm. Watches and GT06 trackers number nothing (gateway.watch and gateway.gt06, rule 9): a repeat the
    device sent because an ACK came late is attached to the incident its first send opened, never a second
    incident, and never more entries than the device sent frames."""
    recorded: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in entries:
        if e["kind"] in ("incident.opened", "incident.alarm_attached") and e["actor"].startswith("device:"):
            recorded.setdefault((e["actor"][7:], e["payload"]["alarm_type"]), []).append(e)
    sent: dict[tuple[str, str], list[Any]] = {}
    for a in alarms:
        if a.acked_at is not None:
            sent.setdefault((a.device_id, a.alarm_type), []).append(a)
    wrong = []
    for key, found in recorded.items():
        mine = sent.get(key, [])
        numbered = any(a.protocol == "sia-dc09" for a in mine)
        frames = sum(len(a.sends) for a in mine)
        opened = [e for e in found if e["kind"] == "incident.opened"]
        if len(found) > (len(mine) if numbered else frames) or (not numbered and len(opened) > len(mine)):
            wrong.append((key, [(e["seq"], e["kind"], e["payload"].get("dedup")) for e in found],
                          [(a.key, a.sends, a.acked_at, a.acked_by) for a in mine]))  # fmt: skip
    return wrong


async def on_duty(node: Node, files: dict[str, Path]) -> None:
    """Every caregiver of the city on duty at their base (their offers are left to time out: timers at work)."""
    with files["responders"].open(encoding="utf-8", newline="") as handle:
        roster = [{"responder_id": r["responder_id"], "on": True, "lat": float(r["lat"]), "lon": float(r["lon"])}
                  for r in csv.DictReader(handle) if r["kind"] != "clinic"]  # fmt: skip
    async with httpx.AsyncClient(base_url=node.url, timeout=20) as client:
        client.headers["Authorization"] = f"Bearer {await login(client)}"
        answer = await client.post("/api/responders/duty", json={"roster": roster})
        assert answer.status_code == 200, answer.text


async def test_the_leader_killed_mid_storm_loses_no_acknowledged_alarm(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    files = import_shared(tmp_path, pg_url, redis_url, elders=240, caregivers=24, clinics=2)
    cluster = Cluster(tmp_path, pg_url, redis_url, size=3, ANXIN_OFFER_TIMEOUT_S="3").start()
    consoles: list[Console] = []
    try:
        old, _ = await cluster.wait_leader()
        survivors = [n for n in cluster.nodes if n is not old]
        await on_duty(survivors[0], files)  # handed to the leader by a follower
        for node in survivors:
            async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
                consoles.append(Console(node, await login(client)))
        for console in consoles:
            console.start()

        behaviour = Behaviour(speedup=SPEEDUP, ack_timeout_s=2.0, max_attempts=8, drain_per_hour=0.0)
        plan = FleetPlan({"sos": 900.0, "fall": 300.0, "medical": 150.0})  # ~22 alarms a wall second
        stop = asyncio.Event()
        groups = fleets(files, cluster.nodes, behaviour, plan)
        running = [asyncio.create_task(f.run(stop, duration=12 * SPEEDUP)) for f in groups]
        await asyncio.sleep(4.0)
        old.kill()
        killed_at = time.time()
        new, took_s = await cluster.wait_leader(10, besides=old)
        await asyncio.sleep(7.0)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running), 60)
        await asyncio.sleep(1.0)  # the consoles read the last entries

        entries = await journal(pg_url)
        alarms = [a for f in groups for a in f.tally.alarms]
        acked = [a for a in alarms if a.acked_at is not None]
        matching = match_alarms(alarms, entries, {})
        assert took_s < 5.0, f"take-over took {took_s:.1f} s"
        assert len(acked) >= 120 and not matching.lost, [a.as_dict() for a in matching.lost][:5]
        assert not _twice(entries, alarms), "an alarm was recorded twice"
        after_kill = [a for a in acked if a.sends and a.sends[0] > killed_at + took_s]
        assert after_kill and {a.protocol for a in after_kill} == {"sia-dc09", "watch", "gt06"}
        assert any(a.acked_by != 0 for a in acked), "no device failed over to a backup"

        elected = [e for e in entries if e["kind"] == "cluster.leader"]
        assert elected[-1]["payload"]["node"] == new.name and elected[-1]["payload"]["after"] == old.name
        since = elected[-1]["seq"]
        later = [e["kind"] for e in entries if e["seq"] > since and e["actor"].startswith("system")]
        assert "offer.expired" in later and "offer.made" in later, "offers and timers went on"

        head = entries[-1]["seq"]
        for console in consoles:  # what its node's journal shows the same reader (health data is not streamed)
            wanted = await shown(console, head)
            got = [seq for seq in console.seqs if seq <= head]
            assert got == wanted, (console.node.name, sorted(set(wanted) - set(got))[:10], len(got), len(wanted))
        verified = anxin("verify", "--journal", pg_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        for console in consoles:
            await console.stop()
        cluster.stop()


async def test_redis_restarting_empty_loses_no_acknowledged_alarm(tmp_path: Path, pg_url: str) -> None:
    with scratch.redis(tmp_path / "redis") as redis:
        files = import_shared(tmp_path, pg_url, redis.url, elders=90, caregivers=9, clinics=1)
        cluster = Cluster(tmp_path, pg_url, redis.url, size=2).start()
        try:
            leader, _ = await cluster.wait_leader()
            behaviour = Behaviour(speedup=SPEEDUP, ack_timeout_s=2.0, max_attempts=10, drain_per_hour=0.0)
            plan = FleetPlan({"sos": 600.0, "fall": 200.0})
            stop = asyncio.Event()
            groups = fleets(files, cluster.nodes, behaviour, plan)
            running = [asyncio.create_task(f.run(stop, duration=13 * SPEEDUP)) for f in groups]
            await asyncio.sleep(3.0)
            redis.kill()
            redis.process.wait(5)
            await asyncio.sleep(3.0)
            await asyncio.to_thread(scratch.restart, redis)
            await asyncio.sleep(7.0)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*running), 60)

            entries = await journal(pg_url)
            alarms = [a for f in groups for a in f.tally.alarms]
            matching = match_alarms(alarms, entries, {})
            assert not matching.lost and matching.unused_entries == 0
            late = [a for a in alarms if a.sends and a.sends[0] > time.time() - 5]
            assert late and all(a.acked_at is not None for a in late), "the cluster works again after Redis"
            assert all(node.alive for node in cluster.nodes)
            assert cluster.leader() is leader, "the leader kept its lead across the restart"
            verified = anxin("verify", "--journal", pg_url)
            assert verified.returncode == 0, verified.stdout + verified.stderr
        finally:
            cluster.stop()
