"""The core, assembled: one data folder, one journal, one registry, one engine, one intake, one bus.

:func:`open_core` is the only place that picks the backends (the embedded default: SQLite, in-process bus,
in-memory grid index). It takes the data folder's lock so that two processes never write one journal, opens
the journal and its anchor (:mod:`dispatch.anchor`), replays it into the projections and starts the journal
writer. The timer loop and the intake's worker are started by whoever runs the core (the server,
:meth:`Core.run`), so tests can drive ``engine.tick()`` on a manual clock instead.

The outer packages see :class:`Core` only: its fields are the seams (``intake`` to raise alarms, ``engine``
typed as :class:`~dispatch.commands.Commands` for people's commands, ``views`` to read, ``journal`` and
``bus`` for the record and its stream), each typed as the interface, not the backend behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import aiosqlite
import asyncpg
import redis.asyncio as aioredis

from dispatch.anchor import Anchor
from dispatch.bus import Bus, MemoryBus
from dispatch.clock import Clock, SystemClock
from dispatch.cluster import ClusterCommands, ClusterIntake, Node
from dispatch.commands import Commands, Telephony
from dispatch.directory import Directory
from dispatch.engine import Engine
from dispatch.errors import ConfigError
from dispatch.geo import MemoryGeoIndex
from dispatch.intake import Intake
from dispatch.journal import Journal, SqliteJournal, connect
from dispatch.pgcompat import PgCompat
from dispatch.pgjournal import PgJournal
from dispatch.pgjournal import create_schema as create_journal_schema
from dispatch.pgstore import PgRegistry
from dispatch.settings import Settings
from dispatch.storage import MB, StorageWatch
from dispatch.store import RegistryStore, SqliteRegistry
from dispatch.views import Views


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
    journal: Journal
    bus: Bus
    registry: RegistryStore
    engine: Commands
    intake: Intake
    views: Views
    #: where the console keeps its accounts: the embedded backend's registry connection, or in a cluster the shared
    #: PostgreSQL through dispatch.pgcompat (until accounts have a store interface of their own)
    db: aiosqlite.Connection
    lock: DataLock
    #: the engine itself, for the core's own use (its timer loop) and the core's tests; outside, ``engine``
    _engine: Engine = field(repr=False)
    replayed: int = 0
    _running: list[asyncio.Task[None]] = field(default_factory=list, repr=False)
    #: signs the journal's durable head outside the database (dispatch.anchor); its own task, started at open
    anchor: Anchor | None = field(default=None, repr=False)
    #: the disk under the data folder (dispatch.storage); its watch runs with the timers
    storage: StorageWatch | None = field(default=None, repr=False)
    #: cluster mode: this node of the cluster (dispatch.cluster), which starts the intake's worker and the timers
    #: only while it leads; and what it holds open besides the journal
    node: Node | None = field(default=None, repr=False)
    _closing: list[Callable[[], Awaitable[object]]] = field(default_factory=list, repr=False)
    #: the PBX's click-to-call (gateway.ami), set by the process package when a PBX is configured
    telephony: Telephony | None = field(default=None, repr=False)

    def run(self) -> None:
        """Start the live parts: the intake's worker and the timer loop (tests may drive both by hand); in a
        cluster, the node, which starts them when it leads."""
        if self.node is not None:
            self.node.start()
        else:
            self.intake.start()
            self._running.append(asyncio.create_task(self._engine.run_timers(), name="timers"))
        if self.storage is not None:
            self._running.append(asyncio.create_task(self.storage.run(), name="storage"))

    @property
    def timers_running(self) -> bool | None:
        """Whether the timer loop runs (for readiness); None on a cluster node that does not lead, whose timers are
        the leader's to run."""
        if self.node is not None:
            return self.node.timers_running if self.node.leading else None
        return any(task.get_name() == "timers" and not task.done() for task in self._running)

    async def close(self) -> None:
        for task in self._running:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._running.clear()
        if self.node is not None:
            await self.node.stop()
        await self.intake.stop()
        await self.journal.close()
        for close in self._closing:
            await close()
        if self.anchor is not None:
            await self.anchor.stop()  # after the journal's last commit: the final checkpoint covers it
        await self.db.close()
        self.lock.release()


async def open_registry(settings: Settings) -> tuple[aiosqlite.Connection, SqliteRegistry]:
    db = await connect(settings.db_path)
    registry = SqliteRegistry(db)
    await registry.create_schema()
    return db, registry


async def open_core(settings: Settings, clock: Clock | None = None, *, protocols: Collection[str] = ()) -> Core:
    """Open the data folder and rebuild the core from its journal. ``protocols``: the device protocols this
    server speaks (the gateway's registry), which the registry checks devices against."""
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
    anchor = Anchor.for_settings(journal, settings, clock)
    await anchor.start()  # never raises for the anchor's own troubles: they are logged (dispatch.anchor)
    bus = MemoryBus()
    journal.listen(bus.publish)
    directory = await Directory.load(registry)
    engine = Engine(
        journal=journal,
        directory=directory,
        registry=registry,
        available=MemoryGeoIndex(),
        clinics=MemoryGeoIndex(),
        clock=clock,
        settings=settings,
        protocols=protocols,
    )
    replayed = await engine.start()
    storage = StorageWatch(
        settings.data,
        journal,
        clock,
        reserve_bytes=int(settings.storage_reserve_mb * MB),
        floor_bytes=int(settings.storage_floor_mb * MB),
        every_s=settings.storage_check_s,
    )
    storage.check()
    intake = Intake(engine, journal, clock, storage=storage)
    views = engine.views
    return Core(
        settings, clock, journal, bus, registry, engine, intake, views, db, lock, engine, replayed, anchor=anchor,
        storage=storage,
    )  # fmt: skip


async def open_cluster_core(
    settings: Settings,
    clock: Clock | None = None,
    *,
    protocols: Collection[str] = (),
    on_lost: Callable[[str], None],
) -> Core:
    """One node of a cluster (docs/cluster.md): the shared journal, registry and accounts on PostgreSQL, the lease
    and the commands on Redis; the node's data folder holds its lock. The node follows the record from here; it
    decides once :meth:`Core.run` has started it and it wins the lease. ``on_lost``: what to do when it stops
    leading (the process exits: what it held in memory was never acknowledged)."""
    if settings.cluster is None or settings.journal_url is None:
        raise ConfigError("cluster mode needs both cluster (a redis:// address) and journal_url (postgresql://)")
    clock = clock or SystemClock()
    name = settings.node or f"{os.uname().nodename}:{settings.http_port}"
    lock = DataLock(settings.data)
    lock.acquire()
    closing: list[Callable[[], Awaitable[object]]] = []
    try:
        # the accounts and their tokens, shared by every node (dispatch.pgcompat)
        db = cast(aiosqlite.Connection, PgCompat(await asyncpg.connect(settings.journal_url, timeout=10)))
        closing.append(db.close)
        pool = await asyncpg.create_pool(settings.journal_url, min_size=1, max_size=4)
        closing.append(pool.close)
        journal = PgJournal(settings.journal_url, clock, node=name)
        registry = PgRegistry(pool, term=lambda: journal.term)
        await registry.create_schema()
        redis = aioredis.Redis.from_url(settings.cluster, decode_responses=True, socket_timeout=5,
                                        socket_connect_timeout=5, health_check_interval=10)  # fmt: skip
        closing.append(redis.aclose)
        await redis.ping()  # type: ignore[misc]  # redis-py types ping for both its clients
        async with pool.acquire() as conn:  # the record's head before the directory is read (Node.loaded_at)
            await create_journal_schema(conn)
            loaded_at = int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM journal"))
        directory = await Directory.load(registry)
        engine = Engine(
            journal=journal, directory=directory, registry=registry,
            available=MemoryGeoIndex(), clinics=MemoryGeoIndex(), clock=clock,
            settings=settings, protocols=protocols,
        )  # fmt: skip
        node = Node(
            name, redis, journal, engine, registry, directory, lease_s=settings.lease_s,
            hand_timeout_s=settings.hand_timeout_s, on_lost=on_lost, redis_url=settings.cluster,
        )  # fmt: skip
        node.loaded_at = loaded_at
        await journal.open(node.fold)
        closing.insert(0, journal.close)
        replayed = await journal.catch_up()
    except BaseException:
        for close in reversed(closing):
            with contextlib.suppress(Exception):
                await close()
        lock.release()
        raise
    bus = MemoryBus()
    journal.listen(bus.publish)
    storage = StorageWatch(
        settings.data, journal, clock, reserve_bytes=int(settings.storage_reserve_mb * MB),
        floor_bytes=int(settings.storage_floor_mb * MB), every_s=settings.storage_check_s,
    )  # fmt: skip
    intake = ClusterIntake(node, engine, journal, clock, storage=storage)
    node.intake = intake
    commands = ClusterCommands(node, engine)
    core = Core(
        settings, clock, journal, bus, registry, cast(Commands, commands), intake, engine.views, db, lock, engine,
        replayed, storage=storage, node=node,
    )  # fmt: skip
    core._closing.extend(c for c in closing if c is not journal.close and c is not db.close)
    return core
