"""A short drill end to end, checked against the journal itself; and drills kept out of the real KPIs.

The first test runs ``anxin drill`` as an operator would (its own embedded server, a few seconds of wall
time) and then reads the server's SQLite journal directly, not through the drill's own code: every alarm the
devices saw acknowledged must be there, the counts must agree, and every entry the drill caused must carry
the drill mark. The second runs a drill with ``--url`` against a separately started server that also has
one real alarm, and compares ``GET /api/kpis`` with ``GET /api/kpis?drill=true``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators import city
from simulators.drill import Options, Target, run_drill
from simulators.scenario import ServicePlan, load, span
from tests.conftest import free_port
from tests.process import ADMIN_PASSWORD, ServerProcess, anxin

pytestmark = pytest.mark.process

TINY = """
name = "tiny"
title = "a few seconds of drill, for the tests"
duration = "4m"
speedup = 60
drain = "5m"
seed = 11

[city]
elders = 80
caregivers = 10
clinics = 2

[devices]
count = 80
ack_timeout = "2s"
udp_share = 0.5
checkin_every = "1m"
silent_share = 0.05
silent_at = "20s"
silent_for = "3m"
battery_drain_per_hour = 40

[alarms]
sos_per_hour = 90
fall_per_hour = 30
medical_per_hour = 15

[[mains_loss]]
at = "1m"
share = 0.2
within = "30s"
restore_after = "1m"

[hotline]
calls_per_hour = 40

[caregivers]
shifts = [{ count = 8 }]

[operators]
count = 2
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY, encoding="utf-8")
    return path


def journal(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT seq, ts, kind, actor, incident_id, drill, payload FROM journal ORDER BY seq")
        keys = ("seq", "ts", "kind", "actor", "incident_id", "drill", "payload")
        return [dict(zip(keys, (*row[:6], json.loads(row[6])), strict=True)) for row in rows]


def test_a_short_drill_agrees_with_the_journal(tiny: Path, tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    done = anxin("drill", str(tiny), "--data", str(data), "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "alarms lost (acknowledged, not recorded)" in done.stdout
    card = json.loads((out / "scorecard.json").read_text(encoding="utf-8"))
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    until = card["run"]["journal_until"]  # the server wrote on until it was stopped: missed check-ins
    entries = [e for e in journal(data / "anxin.sqlite3") if e["seq"] <= until]

    alarms = card["alarms"]
    assert alarms["sent"] >= 5
    assert alarms["acknowledged"] == alarms["sent"] == alarms["recorded"]
    assert alarms["lost"] == alarms["unacknowledged"] == 0
    by_devices = [e for e in entries if e["actor"].startswith("device:")]
    recorded = [e for e in by_devices if e["kind"] in ("incident.opened", "incident.alarm_attached")]
    assert len(recorded) == alarms["recorded_new"] + alarms["repeats_recorded_again"]
    assert all(e["drill"] for e in by_devices), "every entry a drill device caused carries the drill mark"

    opened = [e for e in entries if e["kind"] == "incident.opened"]
    assert all(e["drill"] for e in opened), "nothing but the drill happened on the drill's server"
    assert len(opened) == card["incidents"]["person"] + card["incidents"]["technical"]
    drill_incidents = {e["payload"]["incident_id"] for e in opened}
    assert all(e["drill"] for e in entries if e["incident_id"] in drill_incidents)
    assert any(e["payload"]["alarm_type"] == "missed_checkin" for e in opened), "silent devices were noticed"
    assert any(e["payload"]["alarm_type"] == "mains_loss" for e in opened)

    answered = [e for e in entries if e["kind"] == "call.answered"]
    assert all(e["drill"] for e in answered)
    assert len(answered) == card["calls"]["answered"] == card["calls"]["recorded"]
    assert card["drill_marks"]["missing"] == card["calls"]["unmarked"] == 0
    assert anxin("verify", "--data", str(data)).returncode == 0


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[ServerProcess, dict[str, int]]]:
    """A running server with a city but no devices, device ports on, timers at the drill's ×60."""
    files = city.generate(tmp_path / "city", seed=5, elders=80, caregivers=10, clinics=2)
    data = tmp_path / "live"
    registry = ("--elders", str(files["elders"]), "--responders", str(files["responders"]))
    done = anxin("import", "--data", str(data), *registry)
    assert done.returncode == 0, done.stdout + done.stderr
    ports = {"sia-dc09": free_port(), "watch": free_port(), "gt06": free_port()}
    env = {
        "ANXIN_DC09_PORT": str(ports["sia-dc09"]), "ANXIN_WATCH_PORT": str(ports["watch"]),
        "ANXIN_GT06_PORT": str(ports["gt06"]), "ANXIN_GATEWAY_HOST": "127.0.0.1",
        "ANXIN_ANSWER_TARGET_S": "1", "ANXIN_OFFER_TIMEOUT_S": "0.75",  # the drill's ×60
    }  # fmt: skip
    server = ServerProcess(data, **env).start()
    yield server, ports
    server.stop()


Live = tuple[ServerProcess, dict[str, int]]


async def test_drill_incidents_stay_out_of_the_real_kpis(tiny: Path, live: Live) -> None:
    server, ports = live
    services = ServicePlan(orders_per_hour=300, lead=span(10, 30))  # checked in within a wall second
    scenario = load(str(tiny)).model_copy(update={"duration": 150.0, "drain": 120.0, "services": services})
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        token = (await client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})).json()
        client.headers["Authorization"] = f"Bearer {token['access_token']}"
        real = await client.post("/api/alarms", json={"elder_id": "e00001", "alarm_type": "sos"})
        assert real.status_code == 201, real.text
        now = time.time()
        order = {"elder_id": "e00002", "item_id": "meal_delivery", "start": now, "end": now + 3600}
        real_order = await client.post("/api/service-orders", json=order)
        assert real_order.status_code == 201, real_order.text

        target = Target(server.url, "admin", ADMIN_PASSWORD, ports, embedded=False)
        card = await run_drill(scenario, target, Options(progress=False))
        assert card["incidents"]["person"] >= 3 and card["alarms"]["lost"] == 0

        await asyncio.sleep(2.5)  # twice the drill devices' check-in deadline (1 s x 1.2): they are silent now
        after = (await client.get("/api/journal", params={"after": card["run"]["journal_until"]})).json()
        plain = (await client.get("/api/kpis")).json()
        with_drill = (await client.get("/api/kpis", params={"drill": "true"})).json()
        escalations = (await client.get("/api/escalations")).json()["incidents"]
        real_after = (await client.get(f"/api/service-orders/{real_order.json()['order_id']}")).json()
        drill_part = (await client.get("/api/journal", params={"after": card["run"]["journal_after"]})).json()
    assert card["services"]["ordered"] >= 3 and card["services"]["started"] >= 1, card["services"]
    assert real_after["state"] == "requested", "the drill's desk never touches a real order"
    service_entries = [e for e in drill_part["entries"] if e["kind"].startswith("service.")]
    assert service_entries and all(e["drill"] for e in service_entries)
    assert plain["drill_included"] is False and with_drill["drill_included"] is True
    assert plain["alarms_today"] == 1, "only the real alarm counts"
    assert with_drill["alarms_today"] == 1 + card["incidents"]["person"]
    assert with_drill["open_incidents"] >= plain["open_incidents"]
    assert all(not incident["drill"] for incident in escalations)
    late = [e for e in after["entries"] if e["kind"] == "incident.opened"]
    assert late == [], "the drill's devices were retired before they fell silent: no missed check-ins after it"
