"""The document workers (console.pdfwork): a server killed with SIGKILL leaves none of them behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: a server in miniature: the document pool started as a PDF starts it, its worker's number printed, then waiting
SERVER = """
import asyncio, os
from console import pdfwork

async def main() -> None:
    worker = await asyncio.get_running_loop().run_in_executor(pdfwork._pool(), os.getpid)
    print(worker, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""
#: far longer than a worker's look (WATCH_S) takes on a loaded machine; a worker still there after it is left over
LEAVE_WITHIN_S = 60


def gone(pid: int) -> bool:
    """No such process, or only its exit status left for its parent to collect."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


def test_the_workers_leave_when_the_server_is_killed() -> None:
    with subprocess.Popen([sys.executable, "-c", SERVER], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}) as server:  # fmt: skip
        try:
            assert server.stdout is not None
            worker = int(server.stdout.readline())
            assert not gone(worker)
        finally:
            server.send_signal(signal.SIGKILL)  # no shutdown of the pool: nobody tells the workers
    deadline = time.monotonic() + LEAVE_WITHIN_S
    while not gone(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(worker), f"document worker {worker} outlived its server"
