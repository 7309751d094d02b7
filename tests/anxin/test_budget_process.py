"""Descriptor exhaustion against a real ``anxin serve`` started under a 1024-descriptor limit (issue 12).

The server process gets ``RLIMIT_NOFILE`` 1024 (soft and hard, so it cannot raise it); the test raises its own
limit and floods the watch port with 5,000 idle connections from 20 loopback addresses and some half-sent
frames. Login and a DC-09 SOS ACK are timed before the flood (the floor) and during it; the server's log must
stay small. A start whose budgets cannot fit the limit is refused with one clear paragraph.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.dc09 import build_message
from simulators import city
from tests.conftest import free_port
from tests.process import ADMIN_PASSWORD, ServerProcess, import_city

pytestmark = pytest.mark.process

NOFILE = 1024
FLOOD = 5000
SOURCES = 20  # 127.0.0.1 .. 127.0.0.20: the per-address cap (256) and the total cap both refuse
HALF_FRAMES = 200
HALF = b"[SG*8800000015*0010*UD,22"


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


class LimitedServer(ServerProcess):
    """``anxin serve`` with its descriptor limit set to :data:`NOFILE` before it starts."""

    nofile = NOFILE


@pytest.fixture(scope="module")
def city_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return city.generate(tmp_path_factory.mktemp("city"), seed=9, elders=40, caregivers=5, clinics=1)


@pytest.fixture
def server(tmp_path: Path, city_files: dict[str, Path]) -> Iterator[LimitedServer]:
    data = import_city(tmp_path / "data", city_files)
    ports = {"ANXIN_DC09_PORT": str(free_port()), "ANXIN_WATCH_PORT": str(free_port()), "ANXIN_GT06_PORT": "off"}
    process = LimitedServer(data, **ports).start()
    yield process
    process.stop()


@pytest.fixture
def own_limit() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FLOOD + HALF_FRAMES + 1000
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"this test needs {wanted} descriptors; the hard limit here is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def dc09_account(files: dict[str, Path]) -> tuple[str, bytes | None]:
    with files["devices"].open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["protocol"] == "sia-dc09"]
    row = next((r for r in rows if r["aes_key"]), rows[0])
    return row["device_id"], bytes.fromhex(row["aes_key"]) if row["aes_key"] else None


async def login_s(url: str) -> float:
    begin = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 200, response.text
    return time.perf_counter() - begin


async def sos_ack_s(port: int, account: str, key: bytes | None, sequence: int) -> float:
    frame = build_message("ADM-CID", sequence, account, "1101 01 015", key=key, timestamp=time.time())
    begin = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame)
        reply = await asyncio.wait_for(reader.readuntil(b"\r"), 30)
    finally:
        writer.close()
    assert b"ACK" in reply and b"NAK" not in reply and b"DUH" not in reply, reply
    return time.perf_counter() - begin


async def flood(port: int) -> tuple[list[asyncio.StreamWriter], int]:
    """5,000 connections that say nothing (some begin a frame and never end it); how many were refused at once."""
    gate = asyncio.Semaphore(200)  # a burst of 5,000 SYNs would overflow the listen backlog, as in simulators/load

    async def one(n: int) -> asyncio.StreamWriter | None:
        async with gate:
            try:
                _, writer = await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=(f"127.0.0.{n % SOURCES + 1}", 0)
                )
            except OSError:
                return None
        if n < HALF_FRAMES:
            writer.write(HALF)
        return writer

    writers = [w for w in await asyncio.gather(*(one(n) for n in range(FLOOD))) if w is not None]
    await asyncio.sleep(1.0)
    refused = sum(1 for w in writers if w.transport.is_closing() or _peer_closed(w))
    return writers, refused


def _peer_closed(writer: asyncio.StreamWriter) -> bool:
    reader = getattr(writer, "_reader", None)  # the stream's reader has seen EOF when the server closed it
    return bool(reader is not None and reader.at_eof())


async def test_five_thousand_idle_connections_leave_login_and_an_sos_ack_working(
    server: LimitedServer, city_files: dict[str, Path], own_limit: None
) -> None:
    dc09 = int(server.env["ANXIN_DC09_PORT"])
    watch = int(server.env["ANXIN_WATCH_PORT"])
    account, key = dc09_account(city_files)
    floor_login = min([await login_s(server.url) for _ in range(3)])
    floor_ack = min([await sos_ack_s(dc09, account, key, n) for n in range(1, 4)])
    begin = time.perf_counter()
    writers, refused = await flood(watch)
    flood_s = time.perf_counter() - begin
    try:
        during_login = max([await login_s(server.url) for _ in range(3)])
        during_ack = max([await sos_ack_s(dc09, account, key, n) for n in range(4, 7)])
        assert (await asyncio.to_thread(httpx.get, f"{server.url}/healthz", timeout=10)).status_code == 200
    finally:
        for writer in writers:
            writer.close()
    log_bytes = server.log.stat().st_size
    figures = {
        "connections_opened": len(writers), "refused_at_once": refused, "flood_s": round(flood_s, 2),
        "login_floor_ms": round(floor_login * 1000, 1), "login_during_ms": round(during_login * 1000, 1),
        "ack_floor_ms": round(floor_ack * 1000, 1), "ack_during_ms": round(during_ack * 1000, 1),
        "log_bytes": log_bytes,
    }  # fmt: skip
    print("budget figures:", json.dumps(figures))
    assert len(writers) > FLOOD * 0.9  # the listener accepted (and refused) them; the kernel did not turn them away
    assert refused >= FLOOD - 400  # at most the listener's share (336 here) stayed open
    assert during_login <= floor_login * 10 + 0.1, figures
    assert during_ack <= floor_ack * 10 + 0.1, figures
    assert log_bytes < 300_000, server.log.read_text()[-3000:]
    assert "Traceback" not in server.log.read_text()


def test_budgets_that_cannot_fit_the_limit_refuse_to_start(tmp_path: Path) -> None:
    env = {
        "ANXIN_DEVICE_BUDGETS": json.dumps({"watch": {"max_connections": 100_000}}),
        "ANXIN_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "ANXIN_DC09_PORT": str(free_port()),
        "ANXIN_WATCH_PORT": str(free_port()),
        "ANXIN_GT06_PORT": "off",
    }
    command = [sys.executable, "-m", "anxin", "serve", "--data", str(tmp_path / "data")]
    command += ["--http-port", str(free_port())]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env={**os.environ, **env}, preexec_fn=limited
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("anxin:")]
    assert "watch 100000" in line and "may open 1024" in line and "ANXIN_DEVICE_BUDGETS" in line
