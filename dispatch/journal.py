"""The journal: the service record (服务记录), append-only and hash-chained. The source of truth.

What it owns
    Every fact Anxin knows about incidents, offers, responders and calls is an :class:`Entry` here: an
    envelope (sequence, time, actor, incident, drill mark, hashes) around one typed body from
    :mod:`dispatch.entries`. The body is encoded to JSON once, at :meth:`Journal.append`, and decoded once,
    when an entry is read back; the stored text is what is hashed. The in-memory projections (open
    incidents, responder status, timers) are a fold over the entries and are rebuilt from them at start.

Rules
    1. Append only. Sequence numbers are assigned at :meth:`Journal.append`, in call order, without a gap;
       the hash of each entry covers the previous entry's hash, so any edit or deletion breaks the chain.
       SQLite triggers refuse UPDATE and DELETE on the table. They are checked at every open, before the
       schema is applied: a trigger missing or altered (someone had the file in hand) is put back and a
       :class:`~dispatch.entries.JournalGuard` entry says so. The chain alone cannot catch a rewrite whose
       hashes were all recomputed; the anchor (:mod:`dispatch.anchor`) signs the durable head outside the file.
    2. Group commit. ``append`` is synchronous and cheap: it queues the entry. One writer task takes every
       queued entry and inserts them in one statement, its own transaction, so a burst costs one fsync.
    3. Durable means committed. ``await journal.durable(seq)`` returns only after the entry is on disk
       (WAL, ``synchronous=FULL``). Nobody is told "done" -- no ACK, no HTTP 201 -- before that.
    4. Listeners (the bus) hear an entry only after it is durable, so a console never shows a fact that a
       crash could take back, and resuming from a sequence number is always consistent.
    5. Checkpoints stay off the commit path: the writer never checkpoints (``wal_autocheckpoint=0``); a
       third connection copies the WAL into the database every ``CHECKPOINT_EVERY_S`` in PASSIVE mode, which
       never blocks a writer. An automatic checkpoint inside a commit would stall every waiting ACK.
    6. A failed commit (a full disk, an I/O error) stops the journal until the same batch commits: every waiter
       and every append meanwhile gets :class:`JournalError`, so intake refuses work instead of acknowledging what
       is not recorded. The writer keeps the batch and tries it again every ``RETRY_S`` (sooner when
       :meth:`SqliteJournal.retry` is called, as the storage watch does when space returns); once it commits, the
       journal works again without a restart. What the batch holds was already applied to the projections, so
       the record and the projections agree again the moment it commits; its submitters were refused, so a device
       repeats its frame (recognised as a repeat, acknowledged once durable) and a person sees 503 for a change
       that the consoles then see recorded.

Never
    Never rewrite an entry, never re-serialise a payload for verification (the stored text is what was
    hashed), never acknowledge before the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import math
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from dispatch.clock import Clock
from dispatch.entries import Fact, JournalGuard, decode, encode
from dispatch.errors import ChainBroken, JournalError

log = logging.getLogger(__name__)

GENESIS = "0" * 64
CHECKPOINT_EVERY_S = 1.0
COMMIT_ATTEMPTS = 5  # on top of the 5 s busy timeout of each attempt
RETRY_S = 2.0  # a failed batch is tried again this often (rule 6)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq         INTEGER PRIMARY KEY,
    ts          REAL    NOT NULL,
    kind        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    incident_id TEXT,
    drill       INTEGER NOT NULL,
    payload     TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS journal_incident ON journal(incident_id) WHERE incident_id IS NOT NULL;
"""

#: the append-only guards, as SQLite keeps them in ``sqlite_master`` (checked at every open, rule 1)
GUARDS = {
    "journal_no_update": """CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END""",
    "journal_no_delete": """CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END""",
}
GUARD_ACTOR = "system:journal"
_GUARD_SCRIPT = "".join(
    sql.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1) + ";\n" for sql in GUARDS.values()
)

_COLUMNS = "seq, ts, kind, actor, incident_id, drill, payload, prev_hash, hash, version"
_COLUMN_COUNT = 10


_json_str = json.encoder.encode_basestring  # a str as json.dumps(ensure_ascii=False) writes it


def _json_float(value: float) -> str:
    """A float as json.dumps writes it."""
    return repr(value) if math.isfinite(value) else json.dumps(value)


@dataclass(frozen=True, slots=True)
class Entry:
    """One journal entry: the envelope and its typed body, ``fact``.

    ``payload_json`` is the exact text that was hashed and stored; ``version`` is the schema version of the
    body's class when it was written.
    """

    seq: int
    ts: float
    kind: str
    actor: str
    incident_id: str | None
    drill: bool
    payload_json: str
    prev_hash: str
    hash: str
    fact: Fact
    version: int = 1

    def wire(self) -> str:
        """The entry as one JSON object, built around the stored payload text (no re-encoding); the envelope's
        text is what ``json.dumps`` of it gives (``ensure_ascii=False``, compact separators)."""
        incident = "null" if self.incident_id is None else _json_str(self.incident_id)
        return (
            f'{{"type":"entry","seq":{self.seq},"ts":{_json_float(self.ts)},"kind":{_json_str(self.kind)},'
            f'"actor":{_json_str(self.actor)},"incident_id":{incident},'
            f'"drill":{"true" if self.drill else "false"},"payload":{self.payload_json}}}'
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind,
            "actor": self.actor,
            "incident_id": self.incident_id,
            "drill": self.drill,
            "payload": json.loads(self.payload_json),
            "hash": self.hash,
        }


def entry_hash(
    prev_hash: str,
    seq: int,
    ts: float,
    kind: str,
    actor: str,
    incident_id: str | None,
    drill: bool,
    payload_json: str,
    version: int = 1,
) -> str:
    """The SHA-256 of an entry. Version 1 bodies hash as release 0.1 wrote them; a later version is hashed too."""
    parts = [prev_hash, str(seq), repr(ts), kind, actor, incident_id or "", "1" if drill else "0", payload_json]
    if version != 1:
        parts.append(str(version))
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class VerifyResult:
    entries: int
    head_hash: str


Listener = Callable[[Entry], None]
#: told of each commit: how long it took (seconds, wall time) and how many entries it made durable
CommitObserver = Callable[[float, int], None]


class Journal(Protocol):
    """The store of the service record. SQLite now; PostgreSQL later behind the same calls."""

    @property
    def head_seq(self) -> int: ...

    @property
    def durable_seq(self) -> int: ...

    @property
    def durable_head(self) -> tuple[int, str]:
        """The last committed entry's sequence and hash (``(0, GENESIS)`` for an empty journal)."""
        ...

    @property
    def failure(self) -> JournalError | None: ...

    @property
    def waiting_since(self) -> float | None:
        """When the oldest entry not yet durable was appended (None: every entry is durable)."""
        ...

    def append(self, fact: Fact, *, actor: str, incident_id: str | None = None, drill: bool = False) -> Entry: ...

    async def durable(self, seq: int) -> None: ...

    def listen(self, listener: Listener) -> None: ...

    def on_recovered(self, callback: Callable[[], None]) -> None: ...

    def on_commit(self, callback: CommitObserver) -> None: ...

    def retry(self) -> None: ...

    async def read(self, after: int, limit: int) -> list[Entry]: ...

    def replay(self, batch: int = 5000) -> AsyncIterator[Entry]: ...

    async def verify(self) -> VerifyResult: ...

    async def close(self) -> None: ...


class ChainedJournal:
    """What every journal backend shares: the chain's head in memory, entries chained at ``append``, the
    waiters of ``durable`` and the listeners, released and told once a batch is durable; ``replay`` and
    ``verify`` over the backend's ``read``. A backend queues the entries (``_pending``, ``_wake``) and commits them
    its own way (SqliteJournal; dispatch.pgjournal.PgJournal)."""

    def _init_chain(self, clock: Clock, max_batch: int) -> None:
        self._clock = clock
        self._pending: list[Entry] = []
        self._waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._listeners: list[Listener] = []
        self._recovered: list[Callable[[], None]] = []
        self._commit_observers: list[CommitObserver] = []
        self._wake = asyncio.Event()
        self._retry = asyncio.Event()
        self._max_batch = max_batch
        self.commits = 0
        self._failure: JournalError | None = None
        self._head_seq = self._durable_seq = 0
        self._head_hash = self._durable_hash = GENESIS

    @property
    def head_seq(self) -> int:
        return self._head_seq

    @property
    def durable_seq(self) -> int:
        return self._durable_seq

    @property
    def durable_head(self) -> tuple[int, str]:
        return self._durable_seq, self._durable_hash

    @property
    def failure(self) -> JournalError | None:
        return self._failure

    @property
    def waiting_since(self) -> float | None:
        return self._pending[0].ts if self._pending else None

    def _chain(self, fact: Fact, actor: str, incident_id: str | None, drill: bool) -> Entry:
        """The next entry after the head, hashed, queued for the writer (rule 1)."""
        if not fact.KIND:
            raise JournalError(f"{type(fact).__name__} is not a registered entry kind")
        seq = self._head_seq + 1
        ts = self._clock.now()
        kind, version, payload_json = fact.KIND, fact.VERSION, encode(fact)
        digest = entry_hash(self._head_hash, seq, ts, kind, actor, incident_id, drill, payload_json, version)
        entry = Entry(seq, ts, kind, actor, incident_id, drill, payload_json, self._head_hash, digest, fact, version)
        self._head_seq, self._head_hash = seq, digest
        self._pending.append(entry)
        self._wake.set()
        return entry

    async def durable(self, seq: int) -> None:
        if seq <= self._durable_seq:
            return
        if self._failure is not None:
            raise self._failure
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(seq, []).append(future)
        await future

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def on_recovered(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time the journal works again after a failed commit (rule 6)."""
        self._recovered.append(callback)

    def on_commit(self, callback: CommitObserver) -> None:
        """Call ``callback(seconds, entries)`` after each commit (the operations' metrics): how long the commit
        took, measured on the performance counter (a measure of the disk, not a time of the domain)."""
        self._commit_observers.append(callback)

    def retry(self) -> None:
        """Try a failed batch again now rather than at the next retry (space may have come back)."""
        self._retry.set()

    async def _write_loop(self) -> None:
        """Rule 2: one writer commits every queued entry, a batch at a time; a failed commit is the backend's
        to retry (``_until_committed``, False: the journal stops for good)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                started = time.perf_counter()
                try:
                    await self._commit(batch)
                except Exception as exc:  # disk full, I/O error, a server gone: stop acknowledging
                    if not await self._until_committed(batch, exc):
                        return
                took = time.perf_counter() - started
                for observe in self._commit_observers:
                    observe(took, len(batch))
                del self._pending[: len(batch)]
                self.commits += 1
                self._durable_seq, self._durable_hash = batch[-1].seq, batch[-1].hash
                self._release(self._durable_seq)
                for entry in batch:
                    for listener in self._listeners:
                        listener(entry)

    async def _commit(self, batch: list[Entry]) -> None:
        raise NotImplementedError

    async def _until_committed(self, batch: list[Entry], first: Exception) -> bool:
        raise NotImplementedError

    def _release(self, upto: int) -> None:
        for seq in [seq for seq in self._waiters if seq <= upto]:
            for future in self._waiters.pop(seq):
                if not future.done():
                    future.set_result(None)

    def _fail(self, error: JournalError) -> None:
        self._failure = error
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.set_exception(error)
        self._waiters.clear()

    async def read(self, after: int, limit: int) -> list[Entry]:
        raise NotImplementedError

    async def replay(self, batch: int = 5000) -> AsyncIterator[Entry]:
        after = 0
        while True:
            entries = await self.read(after, batch)
            if not entries:
                return
            for entry in entries:
                yield entry
            after = entries[-1].seq

    async def verify(self) -> VerifyResult:
        return await verify_chain(self.read)


class SqliteJournal(ChainedJournal):
    """The embedded journal: one SQLite file in WAL mode, a writer connection and a reader connection."""

    def __init__(self, path: Path, clock: Clock, *, max_batch: int = 2000) -> None:
        # a batch is one INSERT with a parameter per column and entry: within what this SQLite allows (32,766 since
        # 3.32; 999 before, as on a distribution's older system SQLite, which would otherwise refuse every batch of
        # a burst over 99 entries, forever)
        self._init_chain(clock, min(max_batch, _variable_limit() // _COLUMN_COUNT))
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoints: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None

    # -- life cycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        self._writer = await connect(self.path, autocommit=True)  # each batch one INSERT, its own transaction
        missing = await _restore_guards(self._writer)  # before the schema: it would put them back silently
        await self._writer.executescript(_SCHEMA + _GUARD_SCRIPT)
        if not await _has_version(self._writer):  # a journal written by release 0.1: every entry is version 1
            await self._writer.execute("ALTER TABLE journal ADD COLUMN version INTEGER NOT NULL DEFAULT 1")
        await self._writer.commit()
        self._reader = await connect(self.path)
        async with self._writer.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1") as cur:
            row = await cur.fetchone()
        if row is not None:
            self._head_seq, self._head_hash = int(row[0]), str(row[1])
        self._durable_seq, self._durable_hash = self._head_seq, self._head_hash
        await self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer = await connect(self.path)
        self._task = asyncio.create_task(self._write_loop(), name="journal-writer")
        self._checkpoints = asyncio.create_task(self._checkpoint_loop(), name="journal-checkpoints")
        if missing:
            log.error(
                "the journal's append-only guard was %s: %s; put back and journaled (run `anxin verify`)",
                "altered" if all("altered" in name for name in missing) else "missing",
                ", ".join(missing),
            )
            entry = self.append(JournalGuard(missing=missing), actor=GUARD_ACTOR)
            await self.durable(entry.seq)

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
            self._checkpoints = None
        if self._task is not None:
            if self._head_seq > self._durable_seq and self._failure is None:  # queued, or taken and committing
                await self.durable(self._head_seq)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for conn in (self._writer, self._reader, self._checkpointer):
            if conn is not None:
                await conn.close()
        self._writer = self._reader = self._checkpointer = None

    # -- writing ----------------------------------------------------------------------------------

    def append(self, fact: Fact, *, actor: str, incident_id: str | None = None, drill: bool = False) -> Entry:
        if self._failure is not None:
            raise self._failure
        if self._task is None:
            raise JournalError("the journal is not open")
        return self._chain(fact, actor, incident_id, drill)

    async def _until_committed(self, batch: list[Entry], first: Exception) -> bool:
        """Rule 6: refuse everything until ``batch`` commits, trying it again; then work again (True)."""
        self._fail(JournalError(f"journal commit failed: {first}"))
        log.error("journal: commit of seq %d..%d failed (%s); refusing work until it commits", batch[0].seq,
                  batch[-1].seq, first)  # fmt: skip
        started, tries = self._clock.now(), 0
        while True:
            await self._rollback()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._retry.wait(), RETRY_S)
            self._retry.clear()
            tries += 1
            try:
                await self._commit(batch)
            except Exception as exc:
                if tries % 30 == 0:  # about once a minute, never once per try
                    log.error("journal: still failing after %d tries (%s)", tries, exc)
                continue
            self._failure = None
            log.warning("journal: recovered after %.0f s and %d tries; seq %d..%d committed",
                        self._clock.now() - started, tries, batch[0].seq, batch[-1].seq)  # fmt: skip
            for callback in self._recovered:
                callback()
            return True

    async def _rollback(self) -> None:
        assert self._writer is not None
        try:
            await self._writer.rollback()
        except sqlite3.Error as exc:  # nothing to roll back, or the disk refuses even that: the next try says
            log.debug("journal: rollback after a failed commit: %s", exc)

    async def _commit(self, batch: list[Entry]) -> None:
        """Insert and commit one batch in one statement (the writer is in autocommit mode: one statement, one
        transaction, one fsync, one trip to the connection's thread instead of an insert and a commit); a busy
        database (another connection's write) is waited out a while."""
        assert self._writer is not None
        values = [value for entry in batch for value in _row(entry)]
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                await self._writer.execute(_insert(len(batch)), values)
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or attempt == COMMIT_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)

    async def _checkpoint_loop(self) -> None:
        assert self._checkpointer is not None
        done, failing = self.commits, False
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            if self.commits != done:
                try:
                    await self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # a full disk: the WAL keeps the entries; try again next time
                    if not failing:
                        log.error("journal: checkpoint failed (%s); the WAL keeps growing until it succeeds", exc)
                    failing = True
                    continue
                if failing:
                    log.warning("journal: checkpoints work again")
                failing, done = False, self.commits

    # -- reading ----------------------------------------------------------------------------------

    async def read(self, after: int, limit: int) -> list[Entry]:
        """Durable entries with ``seq > after``, oldest first, at most ``limit``."""
        if self._reader is None:
            raise JournalError("the journal is not open")
        upto = self._durable_seq
        async with self._reader.execute(
            f"SELECT {_COLUMNS} FROM journal WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            (after, upto, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [_entry(row) for row in rows]


async def verify_chain(read: Callable[[int, int], Any]) -> VerifyResult:
    """Walk the whole chain; raise :class:`ChainBroken` at the first entry that does not follow."""
    prev_hash, expected_seq, count, after = GENESIS, 1, 0, 0
    while True:
        entries: list[Entry] = await read(after, 5000)
        if not entries:
            return VerifyResult(count, prev_hash)
        for entry in entries:
            broken = link_broken(entry, prev_hash, expected_seq)
            if broken is not None:
                raise broken
            prev_hash, expected_seq, count = entry.hash, expected_seq + 1, count + 1
        after = entries[-1].seq


def link_broken(entry: Entry, prev_hash: str, expected_seq: int) -> ChainBroken | None:
    """Why ``entry`` does not follow an entry ``expected_seq - 1`` whose hash is ``prev_hash``; None if it does."""
    if entry.seq != expected_seq:
        return ChainBroken(expected_seq, f"entry {expected_seq} is missing (next is {entry.seq})")
    if entry.prev_hash != prev_hash:
        return ChainBroken(entry.seq, "prev_hash does not match the previous entry's hash")
    recomputed = entry_hash(
        entry.prev_hash,
        entry.seq,
        entry.ts,
        entry.kind,
        entry.actor,
        entry.incident_id,
        entry.drill,
        entry.payload_json,
        entry.version,
    )
    if recomputed != entry.hash:
        return ChainBroken(entry.seq, "content does not match its hash")
    return None


async def read_only(path: Path) -> tuple[aiosqlite.Connection, Callable[[int, int], Any]]:
    """A reader over a journal file that another process may be writing (for ``anxin verify``)."""
    conn = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True)
    columns = _COLUMNS if await _has_version(conn) else _COLUMNS.replace("version", "1")

    async def read(after: int, limit: int) -> list[Entry]:
        async with conn.execute(
            f"SELECT {columns} FROM journal WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
        ) as cur:
            rows = await cur.fetchall()
        return [_entry(row) for row in rows]

    return conn, read


#: each connection's one writer lock (see :func:`connection_lock`)
_WRITERS: weakref.WeakKeyDictionary[aiosqlite.Connection, asyncio.Lock] = weakref.WeakKeyDictionary()


def connection_lock(conn: aiosqlite.Connection) -> asyncio.Lock:
    """The lock every writer on ``conn`` holds for its whole transaction. A connection has one transaction at a
    time: an account's INSERT (which opens one implicitly) awaiting its commit must not meet the registry's
    ``BEGIN IMMEDIATE`` on the same connection ("cannot start a transaction within a transaction")."""
    lock = _WRITERS.get(conn)
    if lock is None:
        lock = _WRITERS[conn] = asyncio.Lock()
    return lock


async def connect(path: Path, *, autocommit: bool = False) -> aiosqlite.Connection:
    """An aiosqlite connection set up as Anxin needs it: WAL, full fsync at commit, a busy timeout; with
    ``autocommit``, each statement is its own transaction (no implicit BEGIN before a write)."""
    conn = await (aiosqlite.connect(path, isolation_level=None) if autocommit else aiosqlite.connect(path))
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=FULL")
    await conn.execute("PRAGMA busy_timeout=5000")
    await conn.execute("PRAGMA foreign_keys=ON")
    return conn


async def _restore_guards(conn: aiosqlite.Connection) -> tuple[str, ...]:
    """The append-only triggers missing (or altered) on an existing journal table; the altered ones are dropped
    so that the schema creates them again. Nothing to say for a new file."""
    tables = await conn.execute_fetchall("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal'")
    if not tables:
        return ()
    found: list[str] = []
    for name, sql in GUARDS.items():
        rows = list(
            await conn.execute_fetchall(
                "SELECT sql, tbl_name FROM sqlite_master WHERE type = 'trigger' AND name = ?", (name,)
            )
        )
        if not rows:
            found.append(name)
        elif rows[0][1] != "journal" or " ".join(str(rows[0][0]).split()) != " ".join(sql.split()):
            await conn.execute(f"DROP TRIGGER {name}")
            found.append(f"{name} (altered)")
    return tuple(found)


async def _has_version(conn: aiosqlite.Connection) -> bool:
    rows = await conn.execute_fetchall("SELECT name FROM pragma_table_info('journal')")
    return any(row[0] == "version" for row in rows)


def _variable_limit() -> int:
    """How many parameters one statement may have in the SQLite this process runs on."""
    probe = sqlite3.connect(":memory:")
    try:
        return probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    finally:
        probe.close()


@functools.lru_cache(maxsize=64)
def _insert(rows: int) -> str:
    """One INSERT of ``rows`` entries (at most the journal's batch, bounded by :func:`_variable_limit`)."""
    one = "(" + ", ".join("?" * _COLUMN_COUNT) + ")"
    return f"INSERT INTO journal ({_COLUMNS}) VALUES " + ", ".join([one] * rows)


def _row(entry: Entry) -> tuple[Any, ...]:
    return (
        entry.seq,
        entry.ts,
        entry.kind,
        entry.actor,
        entry.incident_id,
        1 if entry.drill else 0,
        entry.payload_json,
        entry.prev_hash,
        entry.hash,
        entry.version,
    )


def _entry(row: Any) -> Entry:
    kind, version, payload_json = str(row[2]), int(row[9]), str(row[6])
    return Entry(
        seq=int(row[0]),
        ts=float(row[1]),
        kind=kind,
        actor=str(row[3]),
        incident_id=row[4],
        drill=bool(row[5]),
        payload_json=payload_json,
        prev_hash=str(row[7]),
        hash=str(row[8]),
        fact=decode(kind, version, payload_json),
        version=version,
    )
