"""Device authentication inside a real server process, over real TCP and UDP sockets on 127.0.0.1.

A plain DC-09 message for a keyed account is answered DUH and recorded as one tamper condition (never an SOS,
never a restore, however often it is sent or replayed); ``ANXIN_DC09_PLAIN_KEYED=accept-sos`` takes a plain
SOS with the tamper event; an unregistered GT06 IMEI gets no login ACK while a registered one logs in.
"""

from __future__ import annotations

import asyncio
import csv
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.dc09 import PLAIN_KEYED_CODE, build_message
from gateway.gt06 import encode_packet
from simulators import city
from tests.conftest import free_port
from tests.gateway.test_server import exchange, journal
from tests.process import ServerProcess, import_city

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def city_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return city.generate(tmp_path_factory.mktemp("city"), seed=12, elders=60, caregivers=10, clinics=1)


def rows(files: dict[str, Path], protocol: str) -> list[dict[str, str]]:
    with files["devices"].open(encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["protocol"] == protocol]


def keyed(files: dict[str, Path], n: int = 0) -> tuple[str, bytes]:
    row = [r for r in rows(files, "sia-dc09") if r["aes_key"]][n]
    return row["device_id"], bytes.fromhex(row["aes_key"])


def start(tmp_path: Path, files: dict[str, Path], **env: str) -> ServerProcess:
    data = import_city(tmp_path / "data", files)
    ports = {"ANXIN_DC09_PORT": str(free_port()), "ANXIN_GT06_PORT": str(free_port())}
    process = ServerProcess(data, **ports, **env).start()
    process.device_ports = {k: int(v) for k, v in ports.items()}  # type: ignore[attr-defined]
    return process


@pytest.fixture
def server(tmp_path: Path, city_files: dict[str, Path]) -> Iterator[ServerProcess]:
    process = start(tmp_path, city_files)
    yield process
    process.stop()


def about(entries: list[dict[str, Any]], account: str) -> list[tuple[str, str | None, str | None]]:
    """(kind, alarm type, code) of the incident entries a device caused."""
    return [
        (e["kind"], e["payload"].get("alarm_type"), e["payload"].get("code"))
        for e in entries
        if e["kind"].startswith("incident.") and e["payload"].get("device_id") == account
    ]


async def udp_exchange(port: int, frame: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(("127.0.0.1", port))
        await loop.sock_sendall(sock, frame)
        return await asyncio.wait_for(loop.sock_recv(sock, 1024), 5)


async def test_plain_sos_and_plain_restore_for_a_keyed_account_are_refused(
    server: ServerProcess, city_files: dict[str, Path]
) -> None:
    port = server.device_ports["ANXIN_DC09_PORT"]  # type: ignore[attr-defined]
    account, key = keyed(city_files)
    now = time.time()
    # the device's own encrypted mains-loss alarm opens a technical incident
    [ack] = await exchange(port, [build_message("ADM-CID", 1, account, "1301 01 000", key=key, timestamp=now)], 1)
    assert b'"*ACK"0001' in ack
    # an attacker's plain SOS and plain restore: DUH over TCP and UDP, never an ACK
    plain_sos = build_message("ADM-CID", 2, account, "1101 01 015")
    plain_restore = build_message("ADM-CID", 3, account, "3301 01 000")
    replies = await exchange(port, [plain_sos, plain_restore], 2)
    replies.append(await udp_exchange(port, plain_sos))
    replies.append(await udp_exchange(port, build_message("NULL", 4, account)))
    assert all(b'"DUH"' in r and b"ACK" not in r for r in replies), replies
    entries = await journal(server)
    seen = about(entries, account)
    assert ("incident.opened", "mains_loss", "CID:1301") in seen
    assert not [s for s in seen if s[1] == "sos"]  # no SOS incident, not even attached
    assert ("incident.opened", "tamper", PLAIN_KEYED_CODE) in seen  # the tamper condition
    assert not [e for e in entries if e["kind"] == "incident.resolved"]  # the mains loss stays open
    # the device's own encrypted restore still clears it
    restore = build_message("ADM-CID", 5, account, "3301 01 000", key=key, timestamp=time.time())
    [ack] = await exchange(port, [restore], 1)
    assert b'"*ACK"0005' in ack
    assert [e for e in await journal(server) if e["kind"] == "incident.resolved"]


async def test_a_flood_and_replays_of_plain_frames_are_one_tamper_condition(
    server: ServerProcess, city_files: dict[str, Path]
) -> None:
    port = server.device_ports["ANXIN_DC09_PORT"]  # type: ignore[attr-defined]
    account, _key = keyed(city_files, 1)
    flood = [build_message("ADM-CID", n, account, "1101 01 015") for n in range(1, 501)]
    replies = await exchange(port, flood + flood[:50], 550)  # 500 distinct frames, then 50 replayed
    assert len(replies) == 550 and all(b'"DUH"' in r for r in replies)
    for n in range(20):
        assert b'"DUH"' in await udp_exchange(port, flood[n])
    seen = about(await journal(server), account)
    assert seen.count(("incident.opened", "tamper", PLAIN_KEYED_CODE)) == 1
    assert len(seen) <= 3  # one condition, noted at most once per bucket: not 570 entries
    assert not [s for s in seen if s[1] == "sos"]


async def test_accept_sos_takes_a_plain_sos_with_the_tamper_event(tmp_path: Path, city_files: dict[str, Path]) -> None:
    process = start(tmp_path, city_files, ANXIN_DC09_PLAIN_KEYED="accept-sos")
    try:
        port = process.device_ports["ANXIN_DC09_PORT"]  # type: ignore[attr-defined]
        account, key = keyed(city_files, 2)
        [ack] = await exchange(port, [build_message("ADM-CID", 7, account, "1101 01 015")], 1)
        assert b'"ACK"0007' in ack and b"*ACK" not in ack
        now = time.time()
        [ack] = await exchange(port, [build_message("ADM-CID", 8, account, "1301 01 000", key=key, timestamp=now)], 1)
        [duh] = await exchange(port, [build_message("ADM-CID", 9, account, "3301 01 000")], 1)
        assert b'"DUH"0009' in duh  # restores stay refused
        seen = about(await journal(process), account)
        assert ("incident.opened", "sos", "CID:1101") in seen
        assert ("incident.opened", "tamper", PLAIN_KEYED_CODE) in seen
        assert ("incident.opened", "mains_loss", "CID:1301") in seen
        assert not [e for e in await journal(process) if e["kind"] == "incident.resolved"]
    finally:
        process.stop()


async def test_gt06_unknown_imei_gets_no_login_ack_and_a_known_one_logs_in(
    server: ServerProcess, city_files: dict[str, Path]
) -> None:
    port = server.device_ports["ANXIN_GT06_PORT"]  # type: ignore[attr-defined]
    stranger = encode_packet(0x01, bytes.fromhex("0123456789012345"), 1)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(stranger)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(64), 1.0)  # no login ACK: silence
        imei = rows(city_files, "gt06")[0]["device_id"]
        writer.write(encode_packet(0x01, bytes.fromhex(imei.rjust(16, "0")), 2))
        reply = await asyncio.wait_for(reader.readexactly(10), 5)
        assert reply[:4] == b"\x78\x78\x05\x01" and reply[-2:] == b"\r\n"
    finally:
        writer.close()
