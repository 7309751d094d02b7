"""Three (or more) ``anxin serve`` processes as one cluster on the session's PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from simulators import city
from tests.conftest import free_port
from tests.process import ADMIN_PASSWORD, ServerProcess, anxin

DEVICE_OPTIONS = {"sia-dc09": "ANXIN_DC09_PORT", "watch": "ANXIN_WATCH_PORT", "gt06": "ANXIN_GT06_PORT"}


def import_shared(tmp_path: Path, pg_url: str, redis_url: str, **sizes: int) -> dict[str, Path]:
    """A generated city imported into the cluster's shared registry, as an administrator would."""
    files = city.generate(tmp_path / "city", seed=sizes.pop("seed", 5), **sizes)
    env = {"ANXIN_CLUSTER": redis_url, "ANXIN_JOURNAL_URL": pg_url}
    done = anxin("import", "--data", str(tmp_path / "import"), *(f"--{k}={v}" for k, v in files.items()), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return files


class Node(ServerProcess):
    """One node: its own data folder (accounts), HTTP port and device ports; the cluster's record."""

    def __init__(self, data: Path, name: str, pg_url: str, redis_url: str, **env: str) -> None:
        self.devices = {protocol: free_port() for protocol in DEVICE_OPTIONS}
        ports = {DEVICE_OPTIONS[p]: str(port) for p, port in self.devices.items()}
        super().__init__(data, ANXIN_CLUSTER=redis_url, ANXIN_JOURNAL_URL=pg_url, ANXIN_NODE=name, **ports, **env)
        self.name = name

    def health(self) -> dict[str, Any]:
        try:
            answer = httpx.get(f"{self.url}/healthz", timeout=1)
        except httpx.HTTPError:
            return {}
        body: dict[str, Any] = answer.json()
        return body

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(self, tmp_path: Path, pg_url: str, redis_url: str, size: int = 3, **env: str) -> None:
        self.nodes = [
            Node(tmp_path / f"node{i}", f"node{i}", pg_url, redis_url, **env) for i in range(size)
        ]  # fmt: skip
        self.pg_url, self.redis_url = pg_url, redis_url

    def start(self) -> Cluster:
        for node in self.nodes:
            node.start()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def leader(self) -> Node | None:
        for node in self.nodes:
            if node.alive and node.health().get("cluster", {}).get("leading"):
                return node
        return None

    async def wait_leader(self, within: float = 15.0, *, besides: Node | None = None) -> tuple[Node, float]:
        """The node that leads (not ``besides``), and how long it took to find it."""
        started = time.monotonic()
        while time.monotonic() - started < within:
            found = await asyncio.to_thread(self.leader)
            if found is not None and found is not besides:
                return found, time.monotonic() - started
            await asyncio.sleep(0.05)
        raise AssertionError(f"no node led within {within} s")


async def login(client: httpx.AsyncClient) -> str:
    answer = await client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])
