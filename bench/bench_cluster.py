"""The alarm path on one embedded node and on a 3-node cluster, in one run; and take-over time over 10 kills.

The same registry (20,000 responders, 14,000 on duty; 20,000 elders with a DC-09 pendant each) and the same
load generator (``simulators/alarmload.py``: DC-09 alarms, each a new incident, ACK timed from the frame's write,
10 operator consoles timed to the ``incident.opened`` entry) run against:

- the *embedded* node (SQLite, the default): the floor of this comparison;
- the cluster's *leader*: alarms to the node that decides, consoles on it;
- a cluster *follower*: alarms to a node that hands them to the leader over Redis Streams and ACKs once its own
  copy of the record (read back from PostgreSQL) has them; consoles on that follower, fed from its copy.

Then the leader is SIGKILLed 10 times: the take-over time is from the kill to another node's ``/healthz``
saying ``"leading": true`` (polled every 20 ms); the killed node is started again as a follower between kills.
Everything runs on this machine (PostgreSQL and Redis are scratch servers of anxin.scratch).
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from anxin import scratch
from bench.bench_alarms import alarmload, build_registry, roster
from bench.bench_gateway import wait_ready
from bench.common import RESULTS, machine
from tests.conftest import free_port

PYTHON = sys.executable
PASSWORD = "bench-admin-pw"
SIZES = {"responders": 20_000, "on_duty": 14_000, "elders": 20_000, "watches": 1_000}
LIGHT = {"rate": 100, "seconds": 8}
CAPACITY_RATES = (200, 400, 700, 1000)
STEP_S = 3.0
KILLS = 10
ENV = {"ANXIN_ADMIN_PASSWORD": PASSWORD, "ANXIN_ANSWER_TARGET_S": "3600", "ANXIN_OFFER_TIMEOUT_S": "3600"}


class Server:
    def __init__(self, data: Path, log: Path, **env: str) -> None:
        self.ports = {"http": free_port(), "dc09": free_port(), "watch": free_port()}
        self.data, self.log, self.env = data, log, {**os.environ, **ENV, **env}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    def start(self) -> Server:
        command = [PYTHON, "-m", "anxin", "serve", "--data", str(self.data), "--http-port", str(self.ports["http"]),
                   "--dc09-port", str(self.ports["dc09"]), "--watch-port", str(self.ports["watch"]),
                   "--gt06-port", "off"]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_ready(f"{self.url}/healthz", self.process, self.log)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(60)

    def leading(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            return False
        try:
            return bool(httpx.get(f"{self.url}/healthz", timeout=0.5).json().get("cluster", {}).get("leading"))
        except (httpx.HTTPError, ValueError):
            return False


def measure(server: Server, files: Path, offset: int) -> tuple[dict[str, Any], int]:
    """ACK and alarm-to-screen at a light rate, then the capacity steps; the next unused account."""
    ports = {"http": server.ports["http"], "dc09": server.ports["dc09"]}
    results: dict[str, Any] = {"light": alarmload(ports, files, password=PASSWORD, offset=offset, **LIGHT)}
    offset += int(LIGHT["rate"] * LIGHT["seconds"]) + 100
    results["capacity"] = []
    for rate in CAPACITY_RATES:
        step = alarmload(ports, files, password=PASSWORD, offset=offset, rate=rate, seconds=STEP_S)
        results["capacity"].append(step)
        offset += int(rate * STEP_S) + 100
    return results, offset


def takeovers(nodes: list[Server]) -> list[float]:
    times = []
    for _ in range(KILLS):
        for node in nodes:  # a node that stopped (it lost the lead under load) is started again, as in production
            if node.process is None or node.process.poll() is not None:
                node.start()
        while not any(n.leading() for n in nodes):
            time.sleep(0.05)
        leader = next(n for n in nodes if n.leading())
        leader.kill()
        killed = time.monotonic()
        while not any(n.leading() for n in nodes if n is not leader):
            time.sleep(0.02)
            if time.monotonic() - killed > 30:
                raise RuntimeError("no node led within 30 s of the kill")
        times.append(time.monotonic() - killed)
        leader.start()  # a follower again
    return times


def main() -> None:
    rng = random.Random(20261130)
    work = Path(tempfile.mkdtemp(prefix="anxin-cluster-bench-"))
    files = work / "csv"
    paths = build_registry(files, rng, **{k: v for k, v in SIZES.items() if k != "on_duty"})
    results: dict[str, Any] = {}

    embedded = Server(work / "embedded", work / "embedded.log")
    registry = [f"--{kind}={path}" for kind, path in paths.items()]
    done = subprocess.run([PYTHON, "-m", "anxin", "import", "--data", str(embedded.data), *registry],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    embedded.start()
    try:
        roster(embedded.url, random.Random(1), on_duty=SIZES["on_duty"], responders=SIZES["responders"])
        results["embedded"], _ = measure(embedded, files, 0)
    finally:
        embedded.stop()

    with scratch.postgres(work / "postgres") as pg, scratch.redis(work / "redis") as redis:
        shared = {"ANXIN_CLUSTER": redis.url, "ANXIN_JOURNAL_URL": pg.url}
        done = subprocess.run([PYTHON, "-m", "anxin", "import", "--data", str(work / "import"), *registry],
                              capture_output=True, text=True, env={**os.environ, **shared}, check=False)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
        nodes = [Server(work / f"node{i}", work / f"node{i}.log", ANXIN_NODE=f"node{i}", **shared) for i in range(3)]
        for node in nodes:
            node.start()
        try:
            while not any(n.leading() for n in nodes):
                time.sleep(0.05)
            leader = next(n for n in nodes if n.leading())
            follower = next(n for n in nodes if n is not leader)
            roster(leader.url, random.Random(1), on_duty=SIZES["on_duty"], responders=SIZES["responders"])
            results["leader"], offset = measure(leader, files, 0)
            results["follower"], _ = measure(follower, files, offset)
            results["leader_changes_under_load"] = sum(
                1 for n in nodes if n.process is not None and n.process.poll() is not None
            )  # fmt: skip
            results["takeover_s"] = takeovers(nodes)
        finally:
            for node in nodes:
                node.stop()

    print_table(results)
    RESULTS.mkdir(exist_ok=True)
    document = {"bench": "cluster", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
                "floor": "the embedded node (SQLite), same registry and load generator", "sizes": SIZES,
                **results}  # fmt: skip
    (RESULTS / "cluster.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"written to {RESULTS / 'cluster.json'}")


def capacity(steps: list[dict[str, Any]]) -> str:
    able = [s["rate"] for s in steps if s["screen_p99_ms"] <= 15.0 and s["alarms_acked"] == s["alarms_sent"]]
    return f"{max(able):.0f}/s" if able else "none"


def print_table(results: dict[str, Any]) -> None:
    floor = results["embedded"]["light"]
    print(f"{'alarm path, 100 alarms/s':<34} {'ACK p50':>8} {'ACK p99':>8} {'ratio':>6} {'screen p50':>10} "
          f"{'screen p99':>10} {'ratio':>6} {'capacity':>9}")  # fmt: skip
    for name in ("embedded", "leader", "follower"):
        light = results[name]["light"]
        print(
            f"{name:<34} {light['ack_p50_ms']:>8.2f} {light['ack_p99_ms']:>8.2f} "
            f"{light['ack_p99_ms'] / floor['ack_p99_ms']:>6.1f} {light['screen_p50_ms']:>10.2f} "
            f"{light['screen_p99_ms']:>10.2f} {light['screen_p99_ms'] / floor['screen_p99_ms']:>6.1f} "
            f"{capacity(results[name]['capacity']):>9}"
        )
    for name in ("embedded", "leader", "follower"):
        for step in results[name]["capacity"]:
            print(f"  {name:<9} {step['rate']:>6.0f}/s: acked {step['alarms_acked']}/{step['alarms_sent']}, on every "
                  f"screen {step['alarms_on_every_screen']}, ACK p99 {step['ack_p99_ms']} ms, screen p99 "
                  f"{step['screen_p99_ms']} ms")  # fmt: skip
    print(f"nodes that lost the lead during the load steps: {results['leader_changes_under_load']}")
    times = results["takeover_s"]
    print(f"take-over over {len(times)} kills of the leader: median {statistics.median(times):.2f} s, "
          f"max {max(times):.2f} s (target: within 5 s)")  # fmt: skip


if __name__ == "__main__":
    main()
