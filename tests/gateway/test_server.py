"""The gateway inside a real server process: frames over TCP and UDP, ACKs only for what is recorded."""

from __future__ import annotations

import asyncio
import csv
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.dc09 import build_message
from gateway.gt06 import encode_packet
from simulators import city
from tests.conftest import free_port
from tests.process import ADMIN_PASSWORD, ServerProcess, import_city

pytestmark = pytest.mark.process

GT06_SOS = bytes.fromhex("787826161709130f3a2dcc02c55f2a089f9af9005c210901360481fe066d9b03413e420102035f92fe0d0a")


def devices(files: dict[str, Path], protocol: str) -> list[dict[str, str]]:
    with files["devices"].open(encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["protocol"] == protocol]


@pytest.fixture(scope="module")
def city_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return city.generate(tmp_path_factory.mktemp("city"), seed=9, elders=60, caregivers=10, clinics=1)


@pytest.fixture
def server(tmp_path: Path, city_files: dict[str, Path]) -> Iterator[ServerProcess]:
    data = import_city(tmp_path / "data", city_files)
    ports = {"ANXIN_DC09_PORT": str(free_port()), "ANXIN_WATCH_PORT": str(free_port())}
    ports["ANXIN_GT06_PORT"] = str(free_port())
    process = ServerProcess(data, **ports).start()
    process.device_ports = {k: int(v) for k, v in ports.items()}  # type: ignore[attr-defined]
    yield process
    process.stop()


async def journal(server: ServerProcess) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        response = await client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        entries: list[dict[str, Any]] = (await client.get("/api/journal?limit=5000", headers=headers)).json()["entries"]
        return entries


async def exchange(port: int, frames: list[bytes], replies: int) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for frame in frames:
            writer.write(frame)
        await writer.drain()
        got = []
        buffer = b""
        while len(got) < replies:
            chunk = await asyncio.wait_for(reader.read(4096), 5)
            assert chunk, "the server closed the connection"
            buffer += chunk
            for end in (b"\r", b"]", b"\r\n"):
                while end in buffer and len(got) < replies:
                    head, _, buffer = buffer.partition(end)
                    got.append(head + end)
        return got
    finally:
        writer.close()


async def test_dc09_alarm_is_acked_after_it_is_recorded_and_recorded_once(
    server: ServerProcess, city_files: dict[str, Path]
) -> None:
    port = server.device_ports["ANXIN_DC09_PORT"]  # type: ignore[attr-defined]
    account = next(d for d in devices(city_files, "sia-dc09") if not d["aes_key"])["device_id"]
    now = time.time()
    alarm = build_message("ADM-CID", 7, account, "1101 01 015", timestamp=now)
    garbage = b'\n0000001A"ADM-CID"0001L0#1234[#1234|1101 01 015]\r'  # bad CRC: answered, connection kept
    replies = await exchange(port, [alarm, garbage, alarm], 2)
    assert all(b'"ACK"0007' in r and f"#{account}[]".encode() in r for r in replies)
    entries = await journal(server)
    opened = [e for e in entries if e["kind"] == "incident.opened" and e["payload"]["device_id"] == account]
    assert len(opened) == 1  # the repeat was acknowledged again, not recorded twice
    assert opened[0]["payload"]["alarm_type"] == "sos" and opened[0]["actor"] == f"device:{account}"


async def test_dc09_over_udp_and_an_unregistered_account(server: ServerProcess) -> None:
    port = server.device_ports["ANXIN_DC09_PORT"]  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(("127.0.0.1", port))
        await loop.sock_sendall(sock, build_message("ADM-CID", 1, "ABCDEF99", "1101 01 001", timestamp=time.time()))
        reply = await asyncio.wait_for(loop.sock_recv(sock, 1024), 5)
    assert b'"ACK"0001' in reply and b"#ABCDEF99[]" in reply
    entries = await journal(server)
    assert [e for e in entries if e["kind"] == "incident.opened"] == []  # nobody registered it: no incident...
    [alert] = [e for e in entries if e["kind"] == "devices.unknown_alarm"]  # ...but one alert for supervisors
    assert "ABCDEF99" in json.dumps(alert["payload"])


async def test_watch_link_and_sos_without_a_fix(server: ServerProcess, city_files: dict[str, Path]) -> None:
    port = server.device_ports["ANXIN_WATCH_PORT"]  # type: ignore[attr-defined]
    watch = devices(city_files, "watch")[0]["device_id"]
    link = f"[3G*{watch}*0002*LK]".encode()
    sos = f"[3G*{watch}*003e*AL_LTE,170525,214118,V,0,N,0,E,0,0,0,0,0,22,0,0,00010000,0,0,0]".encode()
    replies = await exchange(port, [link, sos], 2)
    assert replies == [f"[3G*{watch}*0002*LK]".encode(), f"[3G*{watch}*0002*AL]".encode()]
    opened = [e for e in await journal(server) if e["kind"] == "incident.opened"]
    assert [(e["payload"]["device_id"], e["payload"]["alarm_type"]) for e in opened] == [(watch, "sos")]
    assert opened[0]["payload"]["location"] == "home"  # no GPS fix: the elder's home address


async def test_gt06_login_then_sos(server: ServerProcess, city_files: dict[str, Path]) -> None:
    port = server.device_ports["ANXIN_GT06_PORT"]  # type: ignore[attr-defined]
    imei = devices(city_files, "gt06")[0]["device_id"]
    login = encode_packet(0x01, bytes.fromhex(imei.rjust(16, "0")), 1)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(login)
        assert (await asyncio.wait_for(reader.readexactly(10), 5))[3] == 0x01
        writer.write(GT06_SOS)
        reply = await asyncio.wait_for(reader.readexactly(10), 5)
        assert reply[:4] == b"\x78\x78\x05\x16" and reply[-2:] == b"\r\n"
    finally:
        writer.close()
    opened = [e for e in await journal(server) if e["kind"] == "incident.opened"]
    assert [(e["payload"]["device_id"], e["payload"]["alarm_type"]) for e in opened] == [(imei, "sos")]
