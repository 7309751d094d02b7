"""The operations' face of a real ``anxin serve`` process: /metrics after a real alarm, /readyz while the journal is
made read-only and after, and the JSON log's lines (console.metrics, anxin.logs, docs/operations.md).

A pendant's SOS goes to the SIA DC-09 listener over TCP as its transmitter sends it; the scrape then shows the
alarm by source and type, its ACK latency and the open incident. For readiness, the journal's files are made
immutable (``chattr +i``, which binds root too on ext4, where a read-only remount is refused while SQLite holds
the files open): the next alarm's commit fails and /readyz answers 503 naming the journal; made writable again,
the journal commits its kept batch by itself and /readyz answers 200.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.dc09 import build_message
from simulators import city
from tests.conftest import free_port, require_program
from tests.process import ServerProcess, import_city

pytestmark = pytest.mark.process

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, **headers: str) -> Samples:
    """Every sample of a /metrics answer, by name and labels."""
    answer = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def pendant(devices: Path) -> tuple[str, bytes | None, str]:
    """A DC-09 pendant of the city: its account, its key and its elder."""
    with devices.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["protocol"] == "sia-dc09" and row.get("drill", "") in ("", "no"):
                key = bytes.fromhex(row["aes_key"]) if row["aes_key"] else None
                return row["device_id"], key, row["elder_id"]
    raise AssertionError("the city has no DC-09 pendant")


def send(port: int, frame: bytes, wait: float = 10.0) -> bytes:
    """One frame on a fresh TCP connection, as a transmitter sends it; the reply (b"" when none came)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as link:
        link.sendall(frame)
        try:
            return link.recv(4096)
        except (TimeoutError, ConnectionError):
            return b""


def until(check: Callable[[], object], within: float = 20.0) -> object:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        seen = check()
        if seen:
            return seen
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServerProcess, int, Path]]:
    files = city.generate(tmp_path / "city", seed=11, elders=20, caregivers=4, clinics=1)
    data = import_city(tmp_path / "data", files)
    port = free_port()
    server = ServerProcess(data, ANXIN_DC09_PORT=str(port), ANXIN_READY_STALL_S="3")
    server.start()
    try:
        yield server, port, files["devices"]
    finally:
        server.stop()


def test_a_scrape_after_a_real_sos_shows_the_alarm_its_ack_latency_and_the_open_incident(
    served: tuple[ServerProcess, int, Path],
) -> None:
    server, port, devices = served
    account, key, elder_id = pendant(devices)
    before = scrape(server.url)
    assert value(before, "anxin_device_listener_up", protocol="sia-dc09") == 1.0
    assert total(before, "anxin_open_incidents") == 0
    assert value(before, "anxin_ready") == 1.0

    sos = build_message("ADM-CID", 7, account, "1101 01 001", key=key, timestamp=time.time())
    assert b"ACK" in send(port, sos)

    after = scrape(server.url)
    assert value(after, "anxin_alarms_total", source="device", type="sos") == 1.0
    assert value(after, "anxin_ack_latency_seconds_count", protocol="sia-dc09", path="recorded") == 1.0
    assert 0 < value(after, "anxin_ack_latency_seconds_sum", protocol="sia-dc09", path="recorded") < 5  # type: ignore[operator]
    assert value(after, "anxin_device_frames_total", protocol="sia-dc09") == 1.0
    assert total(after, "anxin_open_incidents") == 1
    assert value(after, "anxin_incidents_unacknowledged") == 1.0
    assert value(after, "anxin_journal_up") == 1.0
    assert value(after, "anxin_journal_commit_seconds_count")  # the alarm's commit, among others
    assert not any(elder_id in repr(labels) or account in repr(labels) for _, labels in after)  # no ids in labels

    # the log is JSON lines, and the incident's line names the incident, the elder and the device; its writer
    # thread writes what is handed to it every 50 ms (anxin.logs rule 5): the lines are waited for, a while
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in map(_json, server.log.read_text(encoding="utf-8").splitlines()) if line is not None]
        acks = [line for line in lines if line["logger"] == "anxin.gateway" and "acknowledged" in line["message"]]
        if acks or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    opened = [line for line in lines if " opened: " in line["message"]]
    assert len(opened) == 1, opened
    (line,) = opened
    assert line["level"] == "INFO" and line["logger"] == "anxin.record" and line["ts"].endswith("+00:00")
    assert (line["elder_id"], line["device_id"], line["alarm_type"]) == (elder_id, account, "sos")
    assert line["incident_id"].startswith("INC-")
    (acked,) = acks
    assert (acked["device_id"], acked["protocol"], acked["alarm_type"]) == (account, "sia-dc09", "sos")


def _json(text: str) -> dict[str, str] | None:
    """A JSON line of the log (uvicorn's and the server's own), or None for what is not one (a print)."""
    with contextlib.suppress(ValueError):
        loaded = json.loads(text)
        return loaded if isinstance(loaded, dict) else None
    return None


def test_metrics_answer_only_the_loopback_or_the_metrics_token(tmp_path: Path) -> None:
    token = "scraper-token-0123456789"
    server = ServerProcess(tmp_path / "data", ANXIN_METRICS_TOKEN=token, ANXIN_LOG_FORMAT="text")
    server.start()
    try:
        refused = httpx.get(f"{server.url}/metrics", timeout=10)  # the loopback is not enough once a token is set
        assert refused.status_code == 401 and refused.json()["code"] == "metrics_token"
        wrong = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer nobody's"}, timeout=10)
        assert wrong.status_code == 401
        samples = scrape(server.url, Authorization=f"Bearer {token}")
        assert value(samples, "anxin_ready") == 1.0
        assert "anxin ready" in server.log.read_text(encoding="utf-8")  # ANXIN_LOG_FORMAT=text: the text lines
        assert not server.log.read_text(encoding="utf-8").lstrip().startswith("{")
    finally:
        server.stop()


# -- readiness ----------------------------------------------------------------------------------------------


def immutable_binds_root(folder: Path) -> str | None:
    """Why ``chattr +i`` cannot make a file read-only under ``folder`` for an open descriptor of root, or None
    when it can (ext4 checks the flag at every write; tmpfs only at open)."""
    chattr = require_program("chattr")
    probe = folder / ".immutable-probe"
    with probe.open("wb") as handle:
        done = subprocess.run([chattr, "+i", str(probe)], capture_output=True, text=True)
        if done.returncode != 0:
            probe.unlink()
            return f"chattr +i refused here: {done.stderr.strip()}"
        try:
            handle.write(b"x")
            handle.flush()
        except PermissionError:
            return None
        finally:
            subprocess.run([chattr, "-i", str(probe)], check=True)
            with contextlib.suppress(OSError):  # the buffered byte may be flushed at close, or refused again
                handle.close()
            probe.unlink()
    return "an immutable file stays writable through a descriptor opened before (tmpfs?)"


def journal_files(data: Path) -> list[Path]:
    """The journal's database and its write-ahead log. Never the shared-memory index (``-shm``): SQLite maps it, and
    a mapped page made immutable is a SIGBUS, not a refused write."""
    return [path for path in (data / "anxin.sqlite3", data / "anxin.sqlite3-wal") if path.exists()]


def readyz(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=10)


def test_readyz_answers_503_while_the_journal_is_read_only_and_200_once_it_is_writable_again(
    served: tuple[ServerProcess, int, Path],
) -> None:
    server, port, devices = served
    why = immutable_binds_root(server.data)
    if why is not None:
        reason = f"cannot make the journal read-only for root here: {why}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    ready = readyz(server.url)
    assert ready.status_code == 200, ready.text
    assert ready.json()["ready"] is True
    assert set(ready.json()["checks"]) == {"journal", "journal_progress", "storage", "listeners", "intake", "timers"}
    account, key, _ = pendant(devices)
    files = journal_files(server.data)
    subprocess.run(["chattr", "+i", *map(str, files)], check=True)
    try:
        sos = build_message("ADM-CID", 9, account, "1101 01 001", key=key, timestamp=time.time())
        assert send(port, sos, wait=5) == b""  # not recorded, so not acknowledged: the transmitter repeats

        refused = until(lambda: (r := readyz(server.url)).status_code == 503 and r)
        assert isinstance(refused, httpx.Response)
        assert "journal" in refused.json()["failing"], refused.text
        assert refused.json()["checks"]["listeners"]["ok"] is True  # the rest is as it was
        assert value(scrape(server.url), "anxin_ready") == 0.0
        assert value(scrape(server.url), "anxin_journal_up") == 0.0
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], check=True)

    until(lambda: readyz(server.url).status_code == 200)  # no restart: the kept batch commits by itself
    assert b"ACK" in until(lambda: send(port, sos, wait=5))  # the repeat is acknowledged, recorded once
    samples = scrape(server.url)
    assert value(samples, "anxin_alarms_total", source="device", type="sos") == 1.0
    assert value(samples, "anxin_journal_up") == 1.0
