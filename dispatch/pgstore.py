"""The registry store of a cluster: elders, devices and responders in the shared PostgreSQL.

What it owns
    :class:`PgRegistry`, the :class:`~dispatch.store.RegistryStore` of cluster mode, with the embedded store's
    tables and rules (:mod:`dispatch.store`): one row per record keyed by its id, ``doc`` the model's canonical
    JSON, an upsert of a batch one transaction that reports added / updated / unchanged and writes no unchanged
    row. Every node reads it whole at start; the leader writes it (imports and the administration API, through
    the engine), and a follower reads back the records an entry says changed (dispatch.cluster).

Never
    Never leave a transaction open; never check references across tables (the importer and the API do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import asyncpg
from pydantic import BaseModel

from dispatch.errors import Fenced
from dispatch.store import TableRegistry, UpsertCounts, _refuse_duplicates, _Row, _Table

M = TypeVar("M", bound=BaseModel)

SCHEMA = """
CREATE TABLE IF NOT EXISTS elders (elder_id TEXT PRIMARY KEY, phone TEXT, community TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (device_id TEXT PRIMARY KEY, elder_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS responders (responder_id TEXT PRIMARY KEY, kind TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS elders_phone ON elders(phone);
CREATE INDEX IF NOT EXISTS devices_elder ON devices(elder_id);
"""
SCHEMA_LOCK = 0x616E78696F  # beside dispatch.pgjournal's


class PgRegistry(TableRegistry):
    """:class:`~dispatch.store.RegistryStore` on PostgreSQL, over a pool the caller opens and closes.

    ``term``: the leadership term the writer holds (dispatch.pgjournal rule 2), checked ``FOR SHARE`` in every
    upsert's own transaction, so that a leader fenced out of the journal is fenced out of the registry too."""

    def __init__(self, pool: asyncpg.Pool, term: Callable[[], int] | None = None) -> None:
        self._pool = pool
        self._term = term

    async def create_schema(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
            await conn.execute(SCHEMA)

    async def _upsert(self, table: _Table, rows: list[_Row]) -> UpsertCounts:
        _refuse_duplicates(table, rows)
        counts = UpsertCounts()
        async with self._pool.acquire() as conn, conn.transaction():
            if self._term is not None:
                term = await conn.fetchval("SELECT term FROM leadership WHERE id = 1 FOR SHARE")
                if term != self._term():
                    raise Fenced(f"term {term} has begun: this node writes the registry no more")
            # the rows' keys locked first, in one order, so that the comparison sees what the writes replace
            keys = [key for key, _, _ in rows]
            stored = {
                row[0]: row[1]
                for row in await conn.fetch(
                    f"SELECT {table.key}, doc FROM {table.name} WHERE {table.key} = ANY($1::text[]) "
                    f"ORDER BY {table.key} FOR UPDATE",
                    keys,
                )
            }
            columns = (table.key, *table.columns, "doc")
            changed: list[tuple[str | None, ...]] = []
            for key, values, doc in rows:
                old = stored.get(key)
                if old == doc:
                    counts.unchanged += 1
                    continue
                if old is None:
                    counts.added += 1
                else:
                    counts.updated += 1
                changed.append((key, *values, doc))
            if changed:
                placeholders = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
                updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])
                await conn.executemany(
                    f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders}) "
                    f"ON CONFLICT ({table.key}) DO UPDATE SET {updates}",
                    changed,
                )
        return counts

    async def _delete(self, table: _Table, keys: list[str]) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            if self._term is not None:
                term = await conn.fetchval("SELECT term FROM leadership WHERE id = 1 FOR SHARE")
                if term != self._term():
                    raise Fenced(f"term {term} has begun: this node writes the registry no more")
            status = await conn.execute(f"DELETE FROM {table.name} WHERE {table.key} = ANY($1::text[])", keys)
        return int(str(status).rsplit(" ", 1)[-1])

    async def _get(self, table: _Table, key: str, load: Callable[[str], M]) -> M | None:
        doc = await self._pool.fetchval(f"SELECT doc FROM {table.name} WHERE {table.key} = $1", key)
        return None if doc is None else load(str(doc))

    async def _all(self, table: _Table, load: Callable[[str], M]) -> list[M]:
        return [load(row[0]) for row in await self._pool.fetch(f"SELECT doc FROM {table.name} ORDER BY {table.key}")]

    async def _keys(self, table: _Table) -> set[str]:
        return {row[0] for row in await self._pool.fetch(f"SELECT {table.key} FROM {table.name}")}
