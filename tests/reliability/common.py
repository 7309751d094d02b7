"""What the reliability cases share: a case's result, a seeded registry, a server with its device ports.

What it owns
    :class:`Result` (a case's verdict and figures), :func:`registry` (elders and DC-09 / watch accounts written
    as CSV and imported with ``anxin import``, as an administrator would), :class:`DeviceServer` (a real
    ``anxin serve`` process with device listeners on free loopback ports), and small readers of the journal's
    SQLite file and of a process's memory.

Rules
    Loopback only. Real processes, real sockets, real SQLite files. A case whose feature has not landed says
    "not yet" instead of failing or crashing.
"""

from __future__ import annotations

import csv
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Self

from dispatch.settings import Settings
from tests.conftest import free_port
from tests.process import ServerProcess
from tests.reliability.accounts import Account, write_accounts
from tests.reliability.result import Result

__all__ = ["PYTHON", "ROOT", "Result"]

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parents[2]


def has_setting(*names: str) -> bool:
    """Whether the settings know all these fields (a feature with settings has landed)."""
    return all(name in Settings.model_fields for name in names)


def registry(
    folder: Path, *, elders: int = 500, dc09: int = 500, keyed: float = 0.3, watches: int = 0
) -> list[Account]:
    """Write elders and devices as CSV, import them into ``folder / "data"``; return the DC-09 accounts."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(12)
    elders_csv, devices_csv = folder / "elders.csv", folder / "devices.csv"
    with elders_csv.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["elder_id", "name", "phone", "address", "lat", "lon", "community"])
        for i in range(elders):
            lat, lon = 24.5 + (i % 100) * 1e-3, 117.6 + (i // 100) * 1e-3
            out.writerow([f"e{i}", f"老人{i}", f"1350000{i:04d}", f"地址{i}", lat, lon, "龙文区/蓝田街道/蓝田社区"])
    accounts: list[Account] = []
    with devices_csv.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["device_id", "protocol", "elder_id", "aes_key", "checkin_s"])
        for i in range(dc09):
            key = rng.randbytes(16) if rng.random() < keyed else None
            accounts.append(Account(f"R{i:06d}", key))
            out.writerow([f"R{i:06d}", "sia-dc09", f"e{i % elders}", key.hex().upper() if key else "", 86400])
        for i in range(watches):
            out.writerow([f"{7_000_000_000 + i}", "watch", f"e{i % elders}", "", 86400])
    done = subprocess.run(
        [PYTHON, "-m", "anxin", "import", "--data", str(folder / "data"), "--elders", str(elders_csv),
         "--devices", str(devices_csv)],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"anxin import failed:\n{done.stdout}{done.stderr}")
    write_accounts(folder / "accounts.jsonl", accounts)
    return accounts


class DeviceServer(ServerProcess):
    """``anxin serve`` with DC-09 and watch listeners on fixed free loopback ports (kept across restarts)."""

    def __init__(self, data: Path, *, nofile: int | None = None, **env: str) -> None:
        self.dc09_port, self.watch_port = free_port(), free_port()
        ports = {"ANXIN_DC09_PORT": str(self.dc09_port), "ANXIN_WATCH_PORT": str(self.watch_port)}
        super().__init__(data, ANXIN_GATEWAY_HOST="127.0.0.1", **ports, **env)
        self.nofile = nofile

    def start(self, timeout: float = 60.0) -> Self:
        return super().start(timeout)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def journal_rows(data: Path, where: str = "1", params: tuple[Any, ...] = ()) -> list[tuple[int, str, str]]:
    """(seq, kind, payload) of the journal entries matching ``where``, read from the SQLite file itself."""
    connection = sqlite3.connect(f"file:{data / 'anxin.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        query = f"SELECT seq, kind, payload FROM journal WHERE {where} ORDER BY seq"
        return [(int(s), str(k), str(p)) for s, k, p in connection.execute(query, params)]
    finally:
        connection.close()


def journal_head(data: Path) -> int:
    connection = sqlite3.connect(f"file:{data / 'anxin.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        row = connection.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()
        return int(row[0])
    finally:
        connection.close()


def verify(data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "anxin", "verify", "--data", str(data)],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
