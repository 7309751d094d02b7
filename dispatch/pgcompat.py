"""The accounts' SQLite calls, answered by the cluster's PostgreSQL (docs/cluster.md, what each engine holds).

What it owns
    :class:`PgCompat`: the few calls of an ``aiosqlite`` connection that the console's accounts make
    (``execute``, ``execute_fetchall``, ``executescript``, ``commit``, ``rollback``), on one asyncpg connection,
    so that in cluster mode every node logs people in against the same accounts and tokens. It translates the
    little SQLite the accounts speak into PostgreSQL: ``?`` placeholders, ``INSERT OR REPLACE``, ``REAL``,
    ``PRAGMA table_info`` and ``ADD COLUMN``.

Rules
    1. sqlite3's transactions: an INSERT, UPDATE or DELETE opens a transaction when none is open; ``commit`` and
       ``rollback`` end it; everything else runs on its own.
    2. One call at a time on the connection (asyncpg refuses overlapping queries; aiosqlite queued them).
    3. A unique or foreign-key violation is raised as :class:`sqlite3.IntegrityError`, which the accounts catch.
    4. Schema scripts run under one advisory lock, so nodes starting together do not create a table twice.

Never
    Never used for the journal or the registry: those have real PostgreSQL backends (dispatch.pgjournal,
    dispatch.pgstore).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
from asyncpg.transaction import Transaction

SCHEMA_LOCK = 0x616E786961  # beside dispatch.pgjournal's and dispatch.pgstore's
#: the conflict key of each table an ``INSERT OR REPLACE`` writes
KEYS = {"accounts": "username", "tokens": "token_hash", "keys": "key_id"}
_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
_REPLACE = re.compile(r"^\s*INSERT OR REPLACE INTO (\w+) \(([^)]*)\)(.*)$", re.IGNORECASE | re.DOTALL)
_PRAGMA = re.compile(r"^\s*PRAGMA table_info\((\w+)\)\s*$", re.IGNORECASE)
_ADD_COLUMN = re.compile(r"\bADD COLUMN\b(?! IF NOT EXISTS)", re.IGNORECASE)


class PgCompat:
    """See the module docstring."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._transaction: Transaction | None = None

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        async with self._lock:
            statement = translate(sql)
            if _WRITE.match(sql) and self._transaction is None:
                self._transaction = self._conn.transaction()
                await self._transaction.start()
            try:
                await self._conn.execute(statement, *parameters)
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise sqlite3.IntegrityError(str(exc)) from exc

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> Iterable[Sequence[Any]]:
        async with self._lock:
            pragma = _PRAGMA.match(sql)
            if pragma is not None:  # (cid, name): the column names where the accounts look for them
                rows = await self._conn.fetch(
                    "SELECT ordinal_position, column_name FROM information_schema.columns WHERE table_name = $1",
                    pragma.group(1),
                )
            else:
                rows = await self._conn.fetch(translate(sql), *parameters)
            return [tuple(row) for row in rows]

    async def executescript(self, script: str) -> None:
        async with self._lock, self._conn.transaction():
            await self._conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
            await self._conn.execute(translate(script))

    async def commit(self) -> None:
        async with self._lock:
            if self._transaction is not None:
                transaction, self._transaction = self._transaction, None
                try:
                    await transaction.commit()
                except asyncpg.IntegrityConstraintViolationError as exc:
                    raise sqlite3.IntegrityError(str(exc)) from exc

    async def rollback(self) -> None:
        async with self._lock:
            if self._transaction is not None:
                transaction, self._transaction = self._transaction, None
                await transaction.rollback()

    async def close(self) -> None:
        await self._conn.close()


def translate(sql: str) -> str:
    """The accounts' SQLite as PostgreSQL: ``$n`` for ``?``, ``ON CONFLICT … DO UPDATE`` for ``INSERT OR
    REPLACE``, ``DOUBLE PRECISION`` for ``REAL`` (a timestamp in ``real`` loses its seconds)."""
    replace = _REPLACE.match(sql)
    if replace is not None:
        table, columns = replace.group(1), [c.strip() for c in replace.group(2).split(",")]
        key = KEYS[table]
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != key)
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}){replace.group(3)} ON CONFLICT ({key}) DO UPDATE SET {updates}"
        )
    count = 0

    def number(_: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return f"${count}"

    sql = re.sub(r"\?", number, sql)
    sql = re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql)
    return _ADD_COLUMN.sub("ADD COLUMN IF NOT EXISTS", sql)
