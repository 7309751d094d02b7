"""Gateway: routine frames per second and ACK latency with 1,000 and 10,000 device connections.

Anxin (``anxin serve`` with 10,000 DC-09 accounts and 10,000 watches registered) and the floor (a bare
asyncio server that only acknowledges, ``bench/floor_server.py``) are driven by the same load generator
(``simulators/load.py``), each in its own process, in the same run. The frames are DC-09 ``NULL`` polls and
watch ``LK`` links: each is decoded, checked against the registry and acknowledged; supervision re-arms the
device's check-in deadline. Nothing is written to the journal for them (see docs/dispatch.md).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.common import RESULTS, machine
from tests.conftest import free_port

DEVICES = 10_000
CONNECTIONS = (1_000, 10_000)
SECONDS = float(os.environ.get("ANXIN_BENCH_SECONDS", "6"))
PYTHON = sys.executable


def registry(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    elders = folder / "elders.csv"
    with elders.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["elder_id", "name", "phone", "address", "lat", "lon", "community"])
        for i in range(1000):
            out.writerow(
                [f"e{i}", f"老人{i}", f"1350000{i:04d}", f"地址{i}", 24.5 + i * 1e-4, 117.7, "龙文区/蓝田街道/蓝田社区"]
            )
    devices = folder / "devices.csv"
    with devices.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["device_id", "protocol", "elder_id", "aes_key", "checkin_s"])
        for i in range(DEVICES):
            out.writerow([f"A{i:07d}", "sia-dc09", f"e{i % 1000}", "", 3600])
            out.writerow([f"{8_000_000_000 + i}", "watch", f"e{i % 1000}", "", 3600])
    (folder / "dc09.ids").write_text("\n".join(f"A{i:07d}" for i in range(DEVICES)) + "\n")
    (folder / "watch.ids").write_text("\n".join(str(8_000_000_000 + i) for i in range(DEVICES)) + "\n")
    return {"elders": elders, "devices": devices}


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path | None = None) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            said = log.read_text(errors="replace")[-2000:] if log is not None else ""
            raise RuntimeError(f"the server exited: {said}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not start")


def load(port: int, protocol: str, ids: Path, connections: int) -> dict[str, Any]:
    command = [PYTHON, "-m", "simulators.load", "--port", str(port), "--protocol", protocol]
    command += ["--ids", str(ids), "--connections", str(connections), "--seconds", str(SECONDS)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def idle_memory(pid: int, port: int, connections: int = 10_000) -> float:
    """KiB of server memory per idle device connection: RSS with them open, minus before, over their count."""
    before = rss_kib(pid)
    command = [PYTHON, "-m", "simulators.load", "--port", str(port), "--protocol", "watch", "--ids", "-"]
    command += ["--idle", "--connections", str(connections), "--seconds", "3"]
    holder = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        connected: int = json.loads(holder.stdout.readline())["connected"]
        time.sleep(1.0)
        after = rss_kib(pid)
    finally:
        holder.wait(30)
    return (after - before) / connected


def floor_memory() -> float:
    port = free_port()
    server = subprocess.Popen(
        [PYTHON, "-m", "bench.floor_server", "--protocol", "watch", "--port", str(port)], stdout=subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()
        return idle_memory(server.pid, port)
    finally:
        server.terminate()
        server.wait(10)


def floor(protocol: str, ids: Path, connections: int) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen(
        [PYTHON, "-m", "bench.floor_server", "--protocol", protocol, "--port", str(port)], stdout=subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "ready"
        return load(port, protocol, ids, connections)
    finally:
        server.terminate()
        server.wait(10)


@contextlib.contextmanager
def serving(data: Path, protocol: str) -> Iterator[tuple[int, int]]:
    """The server with one device listener (its pid and port): 10,000 connections from one loopback address need
    that listener's budget raised (a centre behind a private APN), and two such budgets do not fit the usual
    20,000-descriptor limit beside HTTP (the server checks that its budgets fit, docs/security.md). A free port
    taken meanwhile by one of the load's own connections is met by other free ports."""
    for attempt in range(3):
        http, port = free_port(), free_port()
        budget = {"max_connections": 12_000, "max_per_address": 12_000}
        env = {
            **os.environ,
            "ANXIN_ADMIN_PASSWORD": "bench-admin-pw",
            "ANXIN_DEVICE_BUDGETS": json.dumps({protocol: budget}),
            "ANXIN_HTTP_MAX_CONNECTIONS": "256",
        }
        command = [PYTHON, "-m", "anxin", "serve", "--data", str(data), "--http-port", str(http)]
        for option in ("dc09", "watch", "gt06"):
            command += [f"--{option}-port", str(port) if option == protocol else "off"]
        log = data.parent / f"server-{protocol}.log"  # a file, not a pipe nobody reads while the bench runs
        with log.open("wb") as sink:
            server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=sink)
        try:
            wait_ready(f"http://127.0.0.1:{http}/healthz", server, log)
        except RuntimeError:
            if attempt == 2 or "in use" not in log.read_text(errors="replace"):
                raise
            continue
        try:
            yield server.pid, port
        finally:
            server.terminate()
            server.wait(30)
        return


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="anxin-bench-"))
    files = registry(work / "csv")
    data = work / "data"
    subprocess.run(
        [PYTHON, "-m", "anxin", "import", "--data", str(data), "--elders", str(files["elders"]),
         "--devices", str(files["devices"])],
        check=True, capture_output=True,
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    memory: dict[str, float] = {}
    for protocol in ("dc09", "watch"):
        ids = work / "csv" / f"{protocol}.ids"
        with serving(data, protocol) as (pid, port):
            if protocol == "watch":
                memory["anxin_kib_per_idle_connection"] = round(idle_memory(pid, port), 2)
                memory["floor_kib_per_idle_connection"] = round(floor_memory(), 2)
            for connections in CONNECTIONS:
                bare = floor(protocol, ids, connections)
                ours = load(port, protocol, ids, connections)
                rows.append(
                    {"name": f"anxin {protocol}", **ours, "ratio_to_floor": ours["frames_per_s"] / bare["frames_per_s"]}
                )
                rows.append({"name": f"floor {protocol}", **bare, "ratio_to_floor": 1.0})
    print(f"{'name':<12} {'conns':>6} {'frames/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'ratio':>6}")
    for row in rows:
        print(
            f"{row['name']:<12} {row['connections']:>6} {row['frames_per_s']:>10.0f} {row['p50_ms']:>8.2f}"
            f" {row['p99_ms']:>8.2f} {row['errors']:>6} {row['ratio_to_floor']:>6.2f}"
        )
    print(
        f"memory per idle connection (10,000 open): anxin {memory['anxin_kib_per_idle_connection']} KiB, "
        f"bare asyncio {memory['floor_kib_per_idle_connection']} KiB (target ≤ 10 KiB)"
    )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "gateway.json"
    document = {
        "bench": "gateway",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "floor": "bare asyncio ACK-only server, same load generator",
        "seconds": SECONDS,
        **memory,
        "rows": rows,
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
