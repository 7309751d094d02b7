"""``anxin cluster`` as a newcomer runs it: it prints every address and pid, a killed leader is replaced within
seconds and started again as a follower, and Ctrl-C stops everything it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.process import ROOT

pytestmark = pytest.mark.process


def leaders(urls: list[str]) -> list[str]:
    found = []
    for url in urls:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).json().get("cluster", {}).get("leading"):
                found.append(url)
        except (httpx.HTTPError, ValueError):
            pass
    return found


def test_anxin_cluster_starts_a_cluster_that_survives_its_leader(tmp_path: Path, pg_server: object) -> None:
    base = free_port()
    while any(_taken(base + i) for i in range(2)):
        base = free_port()
    devices = free_port()  # never the default 9100: a demo may be running on this machine
    while any(_taken(devices + i) for i in range(13)):
        devices = free_port()
    command = [sys.executable, "-m", "anxin", "cluster", "--data", str(tmp_path / "cluster"), "--nodes", "2",
               "--http-port", str(base), "--device-port", str(devices), "--alarms-per-min", "30"]  # fmt: skip
    out = tmp_path / "cluster.out"
    with out.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "ANXIN_ADMIN_PASSWORD": "anxin-demo"})  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "is running" not in out.read_text(errors="replace"):
            assert process.poll() is None, out.read_text(errors="replace")
            assert time.monotonic() < deadline, out.read_text(errors="replace")
            time.sleep(0.2)
        banner = out.read_text(errors="replace")
        pids = {int(url.rsplit(":", 1)[1]): int(pid) for url, pid in
                re.findall(r"(http://127\.0\.0\.1:\d+)/console .*? pid (\d+)", banner)}  # fmt: skip
        urls = [f"http://127.0.0.1:{port}" for port in sorted(pids)]
        assert len(urls) == 2 and "postgresql://" in banner and "redis://" in banner
        while not leaders(urls):
            time.sleep(0.1)
        leader = leaders(urls)[0]
        answer = httpx.post(f"{urls[1]}/api/auth/token", data={"username": "operator", "password": "anxin-demo"})
        assert answer.status_code == 200, answer.text  # the demo's accounts, on every node

        os.kill(pids[int(leader.rsplit(":", 1)[1])], signal.SIGKILL)
        killed = time.monotonic()
        while not [url for url in leaders(urls) if url != leader]:
            assert time.monotonic() - killed < 10, "no other node led within 10 s"
            time.sleep(0.05)
        while "starting it again as a follower" not in out.read_text(errors="replace"):
            assert time.monotonic() - killed < 20
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(60)
    assert code == 0, out.read_text(errors="replace")[-3000:]
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "cluster")], capture_output=True, text=True, check=False)
    assert not left.stdout.strip(), f"left running: {left.stdout}"


def _taken(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
