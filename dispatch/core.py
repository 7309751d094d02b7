"""The core, assembled: one data folder, one journal, one registry, one engine, one bus.

:func:`open_core` is the only place that picks the backends (the embedded default: SQLite, in-process bus,
in-memory grid index). It takes the data folder's lock so that two processes never write one journal, opens
the journal, replays it into the projections and starts the journal writer. The timer loop is started by
whoever runs the core (the server), so tests can drive ``engine.tick()`` on a manual clock instead.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import aiosqlite

from dispatch.bus import MemoryBus
from dispatch.clock import Clock, SystemClock
from dispatch.directory import Directory
from dispatch.engine import Engine
from dispatch.errors import ConfigError
from dispatch.geo import MemoryGeoIndex
from dispatch.journal import SqliteJournal, connect
from dispatch.registry import TRAVEL_MASK
from dispatch.settings import Settings
from dispatch.store import SqliteRegistry


class DataLock:
    """An exclusive lock on a data folder, held for the life of the process that writes it."""

    def __init__(self, data: Path) -> None:
        self.path = data / "anxin.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ConfigError(
                f"another anxin process is using {self.path.parent}; stop it first or use its HTTP API"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


@dataclass
class Core:
    settings: Settings
    clock: Clock
    journal: SqliteJournal
    bus: MemoryBus
    db: aiosqlite.Connection
    registry: SqliteRegistry
    engine: Engine
    lock: DataLock
    replayed: int = 0

    async def close(self) -> None:
        await self.journal.close()
        await self.db.close()
        self.lock.release()


async def open_registry(settings: Settings) -> tuple[aiosqlite.Connection, SqliteRegistry]:
    db = await connect(settings.db_path)
    registry = SqliteRegistry(db)
    await registry.create_schema()
    return db, registry


async def open_core(settings: Settings, clock: Clock | None = None) -> Core:
    clock = clock or SystemClock()
    lock = DataLock(settings.data)
    lock.acquire()
    try:
        db, registry = await open_registry(settings)
        journal = SqliteJournal(settings.db_path, clock)
        await journal.open()
    except Exception:
        lock.release()
        raise
    bus = MemoryBus()
    journal.listen(bus.publish)
    directory = await Directory.load(registry)
    engine = Engine(
        journal=journal,
        directory=directory,
        available=MemoryGeoIndex(partition_mask=TRAVEL_MASK),
        clinics=MemoryGeoIndex(),
        clock=clock,
        settings=settings,
    )
    replayed = await engine.start()
    return Core(settings, clock, journal, bus, db, registry, engine, lock, replayed)
