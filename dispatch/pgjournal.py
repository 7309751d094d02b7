"""The shared journal of a cluster: the same service record on PostgreSQL, written by one node at a time.

What it owns
    :class:`PgJournal`, the :class:`~dispatch.journal.Journal` of cluster mode (docs/cluster.md). Every node opens
    one. A *follower* never writes: it tails the table (``LISTEN`` for the leader's notice, a poll as a safety
    net), hands each new entry to its fold (the node's projection) and then to its listeners (the bus), so its
    consoles see what the leader committed. The *leader* writes as :class:`~dispatch.journal.SqliteJournal`
    does: entries are chained in memory at ``append`` and one writer task inserts each batch in one transaction.

Rules
    1. Same entries, same chain. The columns, the hash (:func:`~dispatch.journal.entry_hash`) and the typed bodies
       are the embedded journal's; ``term`` is added, outside the hash: the leadership term that wrote the row.
    2. Fencing. The ``leadership`` row holds the current term. A leader's every batch first reads it ``FOR
       SHARE`` in the batch's own transaction and inserts only when it is still its own term; a new leader takes
       the term with an ``UPDATE`` (which waits for, or after terminating the old writer's session, aborts, any
       batch in flight). So once :meth:`PgJournal.claim` has returned, no row of an older term can be committed:
       a paused old leader that wakes up finds the term taken (:class:`~dispatch.errors.Fenced`), writes nothing,
       and its node stops. The sequence's primary key and the previous hash would refuse a stale row anyway.
    3. Durable means committed, as in the embedded journal: ``durable(seq)`` on the leader returns after the
       commit; on a follower, after the entry was read back from the table (so after the leader's commit).
    4. Append only: a trigger refuses UPDATE, DELETE and TRUNCATE on ``journal``.
    5. The notice is a hint: a follower reads everything after its last entry whenever it is woken and at least
       every ``POLL_S``, so a lost notice costs a poll, never an entry.
    6. A failed commit refuses work until the same batch commits (the embedded journal's rule 6); the writer
       reconnects between tries, and first asks whether the batch committed after all (a commit whose answer was
       lost: its last row is there with its hash). A commit that takes longer than ``COMMIT_S`` has failed. A
       leader that cannot commit for ``GIVE_UP_S`` stops, so that a node that reaches the server leads. Fencing
       is not a failure to retry: the journal stops for good. A reconnected writer records its new session in
       the ``leadership`` row (in the term's own check), so a take-over can always end it.
    7. A follower that reads an entry that does not follow its last one stops following (``failure`` says why):
       it serves what it has and takes no lead on a broken record.

Never
    Never write on a follower, never write a term older than the one in ``leadership``, never acknowledge before
    the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import asyncpg

from dispatch.clock import Clock
from dispatch.entries import Fact, decode
from dispatch.errors import ChainBroken, Fenced, JournalError
from dispatch.journal import ChainedJournal, Entry, link_broken

log = logging.getLogger(__name__)

CHANNEL = "anxin_journal"
POLL_S = 0.5  # a follower reads the table at least this often (rule 5)
RETRY_S = 1.0
READ_BATCH = 2000
#: the longest a batch's commit, a claim's statements or a read may take before the connection is given up: a
#: hung link must not leave entries waiting for a commit while the lease is renewed (rule 6)
COMMIT_S = 5.0
STATEMENT_S = 10.0
#: a leader whose batch has not committed for this long stops (rule 6): a node that can reach the server leads
GIVE_UP_S = 15.0
#: set on every writer session: a paused leader's open transaction (holding the term's row) is ended by the server
WRITER_SETUP = "SET idle_in_transaction_session_timeout = '5s'; SET lock_timeout = '5s'"
#: a lock key of our own for the one-time schema creation when several nodes start together
SCHEMA_LOCK = 0x616E78696E  # "anxin"

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq         BIGINT PRIMARY KEY,
    ts          DOUBLE PRECISION NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    incident_id TEXT,
    drill       BOOLEAN NOT NULL,
    payload     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1,
    term        BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_incident ON journal(incident_id) WHERE incident_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS leadership (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    term  BIGINT NOT NULL,
    node  TEXT NOT NULL,
    pid   INTEGER,
    since DOUBLE PRECISION NOT NULL
);
INSERT INTO leadership (id, term, node, pid, since) VALUES (1, 0, '', NULL, 0) ON CONFLICT (id) DO NOTHING;
CREATE OR REPLACE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only';
END $$;
DROP TRIGGER IF EXISTS journal_no_change ON journal;
CREATE TRIGGER journal_no_change BEFORE UPDATE OR DELETE ON journal
    FOR EACH ROW EXECUTE FUNCTION journal_append_only();
DROP TRIGGER IF EXISTS journal_no_truncate ON journal;
CREATE TRIGGER journal_no_truncate BEFORE TRUNCATE ON journal
    FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only();
"""

_COLUMNS = "seq, ts, kind, actor, incident_id, drill, payload, prev_hash, hash, version"
_INSERT = f"INSERT INTO journal ({_COLUMNS}, term) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"

#: what a follower does with each entry it reads, before its listeners hear it (the node's projection)
Fold = Callable[[Entry], Awaitable[None]]


async def connect(url: str) -> asyncpg.Connection:
    """One connection to the cluster's PostgreSQL (``postgresql://user@host:port/db``)."""
    try:
        return await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise JournalError(f"cannot reach the journal's PostgreSQL at {_safe(url)}: {exc}") from exc


async def create_schema(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> None:
    """The journal's tables, trigger and leadership row; safe when several nodes start at once."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
        await conn.execute(SCHEMA)


class PgJournal(ChainedJournal):
    """:class:`~dispatch.journal.Journal` on PostgreSQL; see the module docstring."""

    def __init__(self, url: str, clock: Clock, *, node: str, max_batch: int = 2000) -> None:
        self._init_chain(clock, max_batch)
        self.url = url
        self.node = node
        self._writer: asyncpg.Connection | None = None  # the leader's; a follower's claims the term with it
        self._reader: asyncpg.Connection | None = None  # the tail's, which LISTENs
        self._pool: asyncpg.Pool | None = None  # everyone else's reads (pages resuming, the views' history)
        self._fenced: list[Callable[[Fenced], None]] = []
        self._stopped: list[Callable[[str], None]] = []
        self._new_session = False  # the writer reconnected: record its session in the term's row (rule 6)
        self._task: asyncio.Task[None] | None = None
        self._fold: Fold | None = None
        self._read_lock = asyncio.Lock()
        self.term = 0  # the term this node leads in; 0 while it follows
        self.before = ""  # the node that led before this one's claim

    # -- life cycle -------------------------------------------------------------------------------

    async def open(self, fold: Fold | None = None) -> None:
        """Connect, create what is missing, and start following from the first entry; ``fold`` sees every entry
        read (the catch-up is :meth:`catch_up`'s: call it before serving)."""
        self._fold = fold
        self._reader = await connect(self.url)
        await create_schema(self._reader)
        self._writer = await self._connect_writer()
        self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=4, command_timeout=STATEMENT_S)
        await self._reader.add_listener(CHANNEL, self._notified)

    async def close(self) -> None:
        if self._task is not None:
            if self.term and self._head_seq > self._durable_seq and self._failure is None:
                with contextlib.suppress(JournalError):
                    await self.durable(self._head_seq)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for conn in (self._writer, self._reader):
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), 2)
        self._writer = self._reader = self._pool = None

    def follow(self) -> None:
        """Start the tail (rule 5): every new entry is folded, then heard, then its waiters are released."""
        self._task = self._guarded(self._tail_loop(), "journal-tail")

    def on_stopped(self, callback: Callable[[str], None]) -> None:
        """Call ``callback`` with the reason when the tail or the writer stops for good (rules 6 and 7)."""
        self._stopped.append(callback)

    def _guarded(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A loop that ended by an exception (a bug of ours, or a failure nobody foresaw): the node must stop."""
        if task.cancelled() or (error := task.exception()) is None:
            return
        why = f"{task.get_name()} stopped: {error!r}"
        log.critical("journal: %s", why, exc_info=error)
        for callback in self._stopped:
            callback(why)

    async def catch_up(self, conn: asyncpg.Connection | None = None) -> int:
        """Read and fold everything committed after our last entry (on ``conn``, else the tail's connection);
        the number of entries read."""
        conn = conn or self._reader
        assert conn is not None
        read = 0
        async with self._read_lock:
            while True:
                rows = await conn.fetch(
                    f"SELECT {_COLUMNS} FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2", self._durable_seq,
                    READ_BATCH, timeout=STATEMENT_S,
                )  # fmt: skip
                if not rows:
                    return read
                for row in rows:
                    entry = _entry(row)
                    broken = link_broken(entry, self._durable_hash, self._durable_seq + 1)
                    if broken is not None:  # rule 7
                        self._fail(broken)
                        raise broken
                    if self._fold is not None:
                        await self._fold(entry)
                    self._durable_seq, self._durable_hash = entry.seq, entry.hash
                    self._head_seq, self._head_hash = entry.seq, entry.hash
                    self._release(entry.seq)
                    for listener in self._listeners:
                        listener(entry)
                    read += 1

    async def claim(self) -> int:
        """Take the next leadership term (rule 2) and read everything the old leader committed; then this node
        writes. The term taken."""
        assert self._reader is not None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._failure is not None:
            raise self._failure
        if self._writer is not None:  # idle since the start: it may be long dead (a server restart, a firewall)
            self._writer.terminate()
        self._writer = await self._connect_writer()
        old = await self._writer.fetchrow("SELECT node, pid FROM leadership WHERE id = 1", timeout=STATEMENT_S)
        self.before = str(old["node"]) if old is not None else ""
        if old is not None and old["pid"] is not None:
            # the old leader's writer, if it still exists (paused, cut off): its batch in flight is rolled back
            # rather than waited for, and it cannot start another one in the old term
            await self._writer.execute(
                "SELECT pg_terminate_backend($1) WHERE $1 <> pg_backend_pid()", old["pid"], timeout=STATEMENT_S
            )
        term = await self._writer.fetchval(
            "UPDATE leadership SET term = term + 1, node = $1, pid = pg_backend_pid(), since = $2 WHERE id = 1 "
            "RETURNING term",
            self.node,
            self._clock.now(),
            timeout=STATEMENT_S,
        )
        if self._fold is None and self._durable_seq == 0:  # nothing to fold (an import): start from the head
            head = await self._writer.fetchrow("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")
            if head is not None:
                self._durable_seq = self._head_seq = int(head["seq"])
                self._durable_hash = self._head_hash = str(head["hash"])
        await self.catch_up(self._writer)  # the tail's connection may be as dead as the old writer was
        self.term = int(term)
        self._new_session = False
        self._task = self._guarded(self._write_loop(), "journal-writer")
        log.warning("journal: node %s leads in term %d from seq %d", self.node, self.term, self._durable_seq)
        return self.term

    async def _connect_writer(self) -> asyncpg.Connection:
        conn = await connect(self.url)
        await conn.execute(WRITER_SETUP, timeout=STATEMENT_S)
        return conn

    # -- the Journal interface ----------------------------------------------------------------------

    def append(self, fact: Fact, *, actor: str, incident_id: str | None = None, drill: bool = False) -> Entry:
        if self._failure is not None:
            raise self._failure
        if not self.term:
            raise JournalError("this node does not lead: only the leader writes the service record")
        return self._chain(fact, actor, incident_id, drill)

    def on_fenced(self, callback: Callable[[Fenced], None]) -> None:
        """Call ``callback`` once when a newer term refuses this node's batch (rule 2): the node must stop."""
        self._fenced.append(callback)

    async def read(self, after: int, limit: int) -> list[Entry]:
        """Durable entries with ``seq > after`` (as far as this node has read or written), oldest first."""
        rows = await self._reading().fetch(
            f"SELECT {_COLUMNS} FROM journal WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
            after,
            self._durable_seq,
            limit,
        )
        return [_entry(row) for row in rows]

    # -- following --------------------------------------------------------------------------------

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def _tail_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            self._wake.clear()
            try:
                await self.catch_up()
            except ChainBroken as broken:  # rule 7
                log.critical("journal: the shared record does not follow: %s; this node stops following", broken)
                return
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.error("journal: reading the shared record failed (%s); reconnecting", exc)
                await self._reconnect_reader()

    async def _reconnect_reader(self) -> None:
        await asyncio.sleep(RETRY_S)
        with contextlib.suppress(Exception):
            if self._reader is not None:
                await asyncio.wait_for(self._reader.close(), 2)
        try:
            self._reader = await connect(self.url)
            await self._reader.add_listener(CHANNEL, self._notified)
        except JournalError as exc:
            log.error("%s", exc)

    def _reading(self) -> asyncpg.Pool:
        if self._pool is None:
            raise JournalError("the journal is not open")
        return self._pool

    # -- writing (the leader) -----------------------------------------------------------------------

    async def _commit(self, batch: list[Entry]) -> None:
        conn = self._writer
        if conn is None or conn.is_closed():
            raise JournalError("the journal's writer connection is closed")
        try:
            async with asyncio.timeout(COMMIT_S), conn.transaction():
                term = await conn.fetchval("SELECT term FROM leadership WHERE id = 1 FOR SHARE")
                if term != self.term:
                    raise Fenced(f"term {term} has begun; node {self.node} led term {self.term} and writes no more")
                if self._new_session:  # rule 6: a take-over must be able to end this session
                    await conn.execute("UPDATE leadership SET pid = pg_backend_pid() WHERE id = 1")
                await conn.executemany(_INSERT, [_row(entry, self.term) for entry in batch])
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(batch[-1].seq))
        except TimeoutError:
            conn.terminate()  # a hung link: this session is given up; the batch is tried again on a new one
            raise JournalError(f"the commit took longer than {COMMIT_S:g} s") from None
        self._new_session = False

    async def _committed_already(self, batch: list[Entry]) -> bool:
        """Whether ``batch`` committed although its commit failed (the answer lost); Fenced when another node's
        entry holds its place."""
        assert self._writer is not None
        found = await self._writer.fetchval("SELECT hash FROM journal WHERE seq = $1", batch[-1].seq,
                                            timeout=STATEMENT_S)  # fmt: skip
        if found is None:
            return False
        if found != batch[-1].hash:
            raise Fenced(f"seq {batch[-1].seq} was written by another node; node {self.node} writes no more")
        return True

    async def _until_committed(self, batch: list[Entry], first: Exception) -> bool:
        """Rule 6: refuse everything until ``batch`` commits, reconnecting between tries; False when fenced or
        given up (the node stops)."""
        if isinstance(first, Fenced):
            self._stop_fenced(first)
            return False
        self._fail(JournalError(f"journal commit failed: {first}"))
        log.error("journal: commit of seq %d..%d failed (%s); refusing work until it commits", batch[0].seq,
                  batch[-1].seq, first)  # fmt: skip
        started, tries = self._clock.now(), 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._retry.wait(), RETRY_S)
            self._retry.clear()
            tries += 1
            try:
                if self._writer is None or self._writer.is_closed():
                    self._writer = await self._connect_writer()
                    self._new_session = True
                if not await self._committed_already(batch):
                    await self._commit(batch)
            except Fenced as fenced:
                self._stop_fenced(fenced)
                return False
            except Exception as exc:
                if self._clock.now() - started > GIVE_UP_S:
                    self._stop_fenced(Fenced(f"no commit for {GIVE_UP_S:g} s ({exc}); node {self.node} stops"))
                    return False
                if tries % 10 == 0:
                    log.error("journal: still failing after %d tries (%s)", tries, exc)
                continue
            self._failure = None
            log.warning("journal: recovered after %d tries; seq %d..%d committed", tries, batch[0].seq,
                        batch[-1].seq)  # fmt: skip
            for callback in self._recovered:
                callback()
            return True

    def _stop_fenced(self, fenced: Fenced) -> None:
        log.critical("journal: %s", fenced)
        self._pending.clear()
        self._fail(fenced)
        for callback in self._fenced:
            callback(fenced)


async def read_only(url: str) -> tuple[asyncpg.Connection, Callable[[int, int], Any]]:
    """A reader over the shared journal (for ``anxin verify --journal postgresql://...``)."""
    conn = await connect(url)

    async def read(after: int, limit: int) -> list[Entry]:
        rows = await conn.fetch(f"SELECT {_COLUMNS} FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2", after, limit)
        return [_entry(row) for row in rows]

    return conn, read


def _row(entry: Entry, term: int) -> tuple[Any, ...]:
    return (
        entry.seq, entry.ts, entry.kind, entry.actor, entry.incident_id, entry.drill, entry.payload_json,
        entry.prev_hash, entry.hash, entry.version, term,
    )  # fmt: skip


def _entry(row: Any) -> Entry:
    kind, version, payload_json = str(row["kind"]), int(row["version"]), str(row["payload"])
    return Entry(
        seq=int(row["seq"]),
        ts=float(row["ts"]),
        kind=kind,
        actor=str(row["actor"]),
        incident_id=row["incident_id"],
        drill=bool(row["drill"]),
        payload_json=payload_json,
        prev_hash=str(row["prev_hash"]),
        hash=str(row["hash"]),
        fact=decode(kind, version, payload_json),
        version=version,
    )


def _safe(url: str) -> str:
    """The address without a password, for messages."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, user = head.partition("://")
    return f"{scheme}://{user.split(':', 1)[0]}@{tail}"
