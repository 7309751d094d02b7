"""``anxin cluster``: a whole cluster on this machine, to see it work and to break it (docs/cluster.md).

What it owns
    A scratch PostgreSQL and Redis under ``DATA/`` (:mod:`anxin.scratch`), the demo city imported into the
    shared registry once, the demo's accounts (shared, like the registry), ``--nodes`` nodes (``anxin serve
    --cluster --journal``) on consecutive HTTP and device ports, and the city's devices reporting to all of
    them, each with one node as its primary receiver and the others as backups. It prints every address, the
    logins and each node's process id, so that a newcomer can ``kill -9`` the leader and watch another take over.

Rules
    1. Like a service manager's ``Restart=always``: a node that exits (killed, or stopped because it lost the
       lead) is started again after a second, and follows the record again.
    2. Ctrl-C stops the devices, then the nodes, then Redis and PostgreSQL; the PostgreSQL files stay, so the
       next run carries on the same record.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import aiosqlite
import asyncpg
import httpx

from anxin import scratch
from anxin.cli import check_data_folder, run_import
from anxin.demo import DEMO_PASSWORD, DEVICE_MIX, fleet_on_loopback, make_demo_accounts
from dispatch.pgcompat import PgCompat
from dispatch.pgstore import PgRegistry
from dispatch.settings import Settings
from gateway.registry import protocols
from simulators import city
from simulators.devices import Behaviour, DeviceFleet, Endpoints, FleetPlan, read_city_devices

RESTART_AFTER_S = 1.0
DEVICE_PORT_BASE = 9100  # node i: 9100 + 10 i for DC-09, + 1 watch, + 2 GT06


@dataclass
class LocalNode:
    name: str
    data: Path
    http_port: int
    devices: dict[str, int]  # protocol name -> port
    command: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def nodes_for(
    data: Path, count: int, http_port: int, pg_url: str, redis_url: str, device_port: int = DEVICE_PORT_BASE
) -> list[LocalNode]:
    made = []
    for i in range(count):
        name = f"node{i + 1}"
        devices = {spec.name: device_port + 10 * i + n for n, spec in enumerate(protocols().values())}
        flags = [f"--{spec.option}-port={devices[spec.name]}" for spec in protocols().values()]
        command = [sys.executable, "-m", "anxin", "serve", "--cluster", redis_url, "--journal", pg_url, "--node",
                   name, "--data", str(data / name), "--http-port", str(http_port + i), *flags]  # fmt: skip
        made.append(LocalNode(name, data / name, http_port + i, devices, command, data / f"{name}.log"))
    return made


async def run_cluster(
    data: Path, *, count: int, http_port: int, alarms_per_min: float, device_port: int = DEVICE_PORT_BASE
) -> int:
    check_data_folder(data)
    os.environ.setdefault("ANXIN_ADMIN_PASSWORD", DEMO_PASSWORD)
    fleet_on_loopback()
    with scratch.postgres(data / "postgres") as pg, scratch.redis(data / "redis") as redis:
        settings = Settings(data=data / "import", cluster=redis.url, journal_url=pg.url)
        pool = await asyncpg.create_pool(pg.url, min_size=1, max_size=2)
        try:
            registry = PgRegistry(pool)
            await registry.create_schema()
            if not await registry.elder_ids():
                files = city.generate(data / "seed", contracted=6)
                print((await run_import(settings, **files)).summary(), flush=True)
            responders = await registry.responders()
        finally:
            await pool.close()
        accounts = PgCompat(await asyncpg.connect(pg.url))  # shared by every node (dispatch.pgcompat)
        try:
            await make_demo_accounts(cast(aiosqlite.Connection, accounts), settings, responders)
        finally:
            await accounts.close()
        nodes = nodes_for(data, count, http_port, pg.url, redis.url, device_port)
        for node in nodes:
            node.start()
        try:
            await _ready(nodes)
            _banner(nodes, pg, redis)
            return await _supervise(nodes, data, alarms_per_min)
        finally:
            for node in nodes:
                node.stop()


async def _ready(nodes: list[LocalNode], within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(timeout=1) as client:
        for node in nodes:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{node.url}/healthz")).status_code == 200:
                        break
                if node.process is not None and node.process.poll() is not None:
                    raise RuntimeError(f"{node.name} exited at start; see {node.log}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{node.name} did not answer within {within_s:g} s; see {node.log}")
                await asyncio.sleep(0.2)


def _banner(nodes: list[LocalNode], pg: scratch.Scratch, redis: scratch.Scratch) -> None:
    lines = ["", f"Anxin cluster of {len(nodes)} nodes is running (docs/cluster.md)."]
    for node in nodes:
        ports = ", ".join(f"{name} {port}" for name, port in node.devices.items())
        pid = node.process.pid if node.process else "-"
        lines.append(f"  {node.name}  {node.url}/console   devices: {ports}   pid {pid}   log {node.log}")
    lines += [
        f"  PostgreSQL (the shared record)  {pg.url}",
        f"  Redis (lease and commands)      {redis.url}",
        f"  logins as in the demo: operator, supervisor, admin / {DEMO_PASSWORD}; caregivers by their ids",
        '  who leads:  curl -s http://127.0.0.1:PORT/healthz   ("cluster": {"leading": true})',
        "  try it:     kill -9 <the leader's pid>; another node leads within seconds, the devices fail over,",
        "              and the killed node is started again as a follower. Stop with Ctrl-C.",
        "",
    ]
    print("\n".join(lines), flush=True)


async def _supervise(nodes: list[LocalNode], data: Path, alarms_per_min: float) -> int:
    """Rule 1, with the devices reporting to every node until Ctrl-C."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running = [asyncio.create_task(fleet.run(stop)) for fleet in _devices(nodes, data, alarms_per_min)]
    try:
        while not stop.is_set():
            for node in nodes:
                if node.process is not None and (code := node.process.poll()) is not None:
                    node.exits.append(code)
                    print(f"{node.name} exited ({code}); starting it again as a follower", flush=True)
                    await asyncio.sleep(RESTART_AFTER_S)
                    node.start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.gather(*running), 30)
    return 0


def _devices(nodes: list[LocalNode], data: Path, alarms_per_min: float) -> list[DeviceFleet]:
    """The city's devices, a share on each node as primary with the others as backups."""
    seed = data / "seed" / "devices.csv"
    if not seed.exists():
        return []
    specs = read_city_devices(seed, rng=random.Random(3), udp_share=0.1)
    fleets = []
    for i, primary in enumerate(nodes):
        mine = specs[i :: len(nodes)]
        per_hour = {kind: share * alarms_per_min * 60 / len(nodes) for kind, share in DEVICE_MIX.items()}
        backups = tuple(n.devices for n in nodes[i + 1 :] + nodes[:i])
        endpoints = Endpoints("127.0.0.1", primary.devices, backups=backups)
        fleets.append(DeviceFleet(mine, endpoints, Behaviour(speedup=1.0), FleetPlan(per_hour), seed=13 + i))
    return fleets
