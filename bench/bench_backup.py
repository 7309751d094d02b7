"""How long the server's journal commits wait while ``anxin backup`` copies a large journal.

A journal of ``ENTRIES`` entries (about 1 KB each, written straight into the file with their real hashes) is
opened by a real :class:`dispatch.journal.SqliteJournal` in this process, the way the server opens it; one entry is
appended and awaited until durable every ``EVERY_S`` (a steady stream of alarms), and each wait is timed. The
floor is the same stream with nothing else running, measured in the same run; then the same stream while
``anxin backup`` runs as its own process on the folder, from its start until it exits. The table gives the
median and 99th percentile of the waits, the worst wait in the notes, and the backup's size and duration.

Run: ``python -m bench.bench_backup`` (``ANXIN_BENCH_BACKUP_ENTRIES`` to change the size; a million by default,
about 1 GB of journal).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import report, summarise
from dispatch.clock import SystemClock
from dispatch.entries import Note, encode
from dispatch.journal import GENESIS, SqliteJournal, entry_hash

ENTRIES = int(os.environ.get("ANXIN_BENCH_BACKUP_ENTRIES", "1000000"))
EVERY_S = 0.01
FLOOR_COMMITS = 1000
ROOT = Path(__file__).resolve().parents[1]


def build(db: Path, entries: int) -> None:
    """A journal of ``entries`` notes, chained as the journal chains them, inserted in large transactions."""
    asyncio.run(_schema(db))
    payload = encode(Note(text="护理员已到达，老人情况稳定。" * 12))
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    prev, ts, batch = GENESIS, 1_780_000_000.0, []
    for seq in range(1, entries + 1):
        ts += 0.5
        incident = f"INC-{seq // 20}"
        digest = entry_hash(prev, seq, ts, "incident.note", "operator:op01", incident, False, payload)
        batch.append((seq, ts, "incident.note", "operator:op01", incident, 0, payload, prev, digest, 1))
        prev = digest
        if len(batch) == 50_000 or seq == entries:
            conn.executemany("INSERT INTO journal VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
            conn.commit()
            batch.clear()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


async def _schema(db: Path) -> None:
    journal = SqliteJournal(db, SystemClock())
    await journal.open()
    await journal.close()


async def commit_waits(
    journal: SqliteJournal, *, count: int | None = None, until: asyncio.subprocess.Process | None = None
) -> list[int]:
    """Append one entry every EVERY_S and time its wait until durable: ``count`` times, or while ``until`` runs."""
    waits: list[int] = []
    while (count is not None and len(waits) < count) or (until is not None and until.returncode is None):
        start = time.perf_counter_ns()
        entry = journal.append(Note(text="bench"), actor="operator:op01", incident_id="INC-bench")
        await journal.durable(entry.seq)
        waits.append(time.perf_counter_ns() - start)
        await asyncio.sleep(EVERY_S)
    return waits


async def measure(data: Path, out: Path) -> tuple[list[int], list[int], float, subprocess.CompletedProcess[bytes]]:
    journal = SqliteJournal(data / "anxin.sqlite3", SystemClock())
    await journal.open()
    try:
        floor = await commit_waits(journal, count=FLOOR_COMMITS)
        command = [sys.executable, "-m", "anxin", "backup", "--data", str(data), "--out", str(out)]
        started = time.monotonic()
        backup = await asyncio.create_subprocess_exec(
            *command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
        )  # fmt: skip
        during = await commit_waits(journal, until=backup)
        took = time.monotonic() - started
        stdout, stderr = await backup.communicate()
    finally:
        await journal.close()
    return floor, during, took, subprocess.CompletedProcess(command, backup.returncode or 0, stdout, stderr)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="anxin-bench-backup-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        built = time.monotonic()
        build(data / "anxin.sqlite3", ENTRIES)
        size = (data / "anxin.sqlite3").stat().st_size
        print(f"journal: {ENTRIES} entries, {size / 1e6:.0f} MB, built in {time.monotonic() - built:.0f} s")
        floor, during, took, done = asyncio.run(measure(data, Path(tmp) / "backup.tar"))
        if done.returncode != 0:
            raise SystemExit(f"anxin backup failed ({done.returncode}): {done.stderr.decode()}")
        archive = (Path(tmp) / "backup.tar").stat().st_size
    rows = [summarise("commit, nothing else running", floor), summarise("commit, during anxin backup", during)]
    notes = {
        "entries": ENTRIES,
        "journal_mb": round(size / 1e6),
        "archive_mb": round(archive / 1e6),
        "backup_s": round(took, 1),
        "worst_wait_floor_ms": round(max(floor) / 1e6, 1),
        "worst_wait_during_ms": round(max(during) / 1e6, 1),
        "commits_during": len(during),
    }
    print(f"anxin backup: {took:.1f} s for {size / 1e6:.0f} MB; worst commit wait {notes['worst_wait_during_ms']} ms "
          f"during it, {notes['worst_wait_floor_ms']} ms without")  # fmt: skip
    report("backup", rows, floor=rows[0].name, notes=notes)


if __name__ == "__main__":
    main()
