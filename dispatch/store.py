"""The registry store: elders, devices and responders on disk.

What it owns
    The durable copy of the registry (:mod:`dispatch.registry` records). The running server loads every row
    into memory at start (:meth:`RegistryStore.elders` and friends) and looks records up there; this store is
    written by imports and by the administration API, and read back whole at the next start.

Rules
    1. One row per record, keyed by its id. ``doc`` holds the model's canonical JSON
       (``model_dump_json()``); the other columns are copies kept only for indexed look-ups
       (``elders.phone`` holds the *normalised* phone, see :func:`dispatch.registry.normalise_phone`, so a
       hotline caller's number can be matched).
    2. An upsert of a batch is one transaction: every row of the batch is written, or none is. It reports how
       many rows were added, updated, and left unchanged; "unchanged" means the stored ``doc`` is the same
       string, and an unchanged row is not written at all.
    3. Records leave the store the way they came in: a ``doc`` is read back through the same pydantic model,
       so what is loaded is always a valid record.
    4. The store checks nothing across tables (a device's elder, an elder's caregiver): the importer and
       the API check references before they write.
    5. Only devices are ever deleted (a device unbound from its elder leaves the registry; the journal keeps
       what it was). Elders and responders are kept: an elder who left the centre's care is ``active=False``.

Never
    Never leave a transaction open: every upsert ends in COMMIT or ROLLBACK before it returns or raises.
    The store commits on the connection it is given, so that connection must belong to the registry alone
    (not be shared with the journal's writer, whose group commit would interleave with ours).

:class:`RegistryStore` is the interface the rest of the core sees; :class:`SqliteRegistry` is the embedded
backend on a caller-opened ``aiosqlite`` connection (the caller also chooses WAL and ``synchronous``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import aiosqlite
from pydantic import BaseModel

from dispatch.errors import InvalidInput
from dispatch.journal import connection_lock
from dispatch.registry import Device, Elder, Responder, normalise_phone

M = TypeVar("M", bound=BaseModel)

# SQLite's default limit on bound parameters is 999 on old builds; stay well below it.
_CHUNK = 500

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS elders (
        elder_id  TEXT PRIMARY KEY,
        phone     TEXT,
        community TEXT,
        doc       TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS devices (
        device_id TEXT PRIMARY KEY,
        elder_id  TEXT NOT NULL,
        doc       TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS responders (
        responder_id TEXT PRIMARY KEY,
        kind         TEXT NOT NULL,
        doc          TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS elders_phone ON elders(phone)",
    "CREATE INDEX IF NOT EXISTS devices_elder ON devices(elder_id)",
)


@dataclass(slots=True)
class UpsertCounts:
    """What one upsert did to its table."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        """Whether any row was written."""
        return self.added + self.updated > 0


class RegistryStore(Protocol):
    """The registry's durable storage, one implementation per backend."""

    async def create_schema(self) -> None: ...

    async def upsert_elders(self, rows: Sequence[Elder]) -> UpsertCounts: ...

    async def upsert_devices(self, rows: Sequence[Device]) -> UpsertCounts: ...

    async def upsert_responders(self, rows: Sequence[Responder]) -> UpsertCounts: ...

    async def get_elder(self, elder_id: str) -> Elder | None: ...

    async def get_device(self, device_id: str) -> Device | None: ...

    async def get_responder(self, responder_id: str) -> Responder | None: ...

    async def elders(self) -> list[Elder]: ...

    async def devices(self) -> list[Device]: ...

    async def responders(self) -> list[Responder]: ...

    async def elder_ids(self) -> set[str]: ...

    async def responder_ids(self) -> set[str]: ...

    async def delete_devices(self, device_ids: Sequence[str]) -> int: ...


@dataclass(frozen=True, slots=True)
class _Table:
    """How one model maps onto its table: the key column and the indexed copies besides ``doc``."""

    name: str
    key: str
    columns: tuple[str, ...]


_ELDERS = _Table("elders", "elder_id", ("phone", "community"))
_DEVICES = _Table("devices", "device_id", ("elder_id",))
_RESPONDERS = _Table("responders", "responder_id", ("kind",))

# One prepared row: (key, values of the indexed columns, canonical JSON).
_Row = tuple[str, tuple[str | None, ...], str]


def _elder_row(elder: Elder) -> _Row:
    phone = normalise_phone(elder.phone) if elder.phone else None
    return (elder.elder_id, (phone, elder.community), elder.model_dump_json())


def _device_row(device: Device) -> _Row:
    return (device.device_id, (device.elder_id,), device.model_dump_json())


def _responder_row(responder: Responder) -> _Row:
    return (responder.responder_id, (responder.kind,), responder.model_dump_json())


class TableRegistry:
    """The :class:`RegistryStore` calls over the three tables (:data:`_ELDERS`, :data:`_DEVICES`,
    :data:`_RESPONDERS`); a backend supplies ``_upsert``, ``_get``, ``_all`` and ``_keys``."""

    async def upsert_elders(self, rows: Sequence[Elder]) -> UpsertCounts:
        return await self._upsert(_ELDERS, [_elder_row(row) for row in rows])

    async def upsert_devices(self, rows: Sequence[Device]) -> UpsertCounts:
        return await self._upsert(_DEVICES, [_device_row(row) for row in rows])

    async def upsert_responders(self, rows: Sequence[Responder]) -> UpsertCounts:
        return await self._upsert(_RESPONDERS, [_responder_row(row) for row in rows])

    async def get_elder(self, elder_id: str) -> Elder | None:
        return await self._get(_ELDERS, elder_id, Elder.model_validate_json)

    async def get_device(self, device_id: str) -> Device | None:
        return await self._get(_DEVICES, device_id, Device.model_validate_json)

    async def get_responder(self, responder_id: str) -> Responder | None:
        return await self._get(_RESPONDERS, responder_id, Responder.model_validate_json)

    async def elders(self) -> list[Elder]:
        return await self._all(_ELDERS, Elder.model_validate_json)

    async def devices(self) -> list[Device]:
        return await self._all(_DEVICES, Device.model_validate_json)

    async def responders(self) -> list[Responder]:
        return await self._all(_RESPONDERS, Responder.model_validate_json)

    async def elder_ids(self) -> set[str]:
        return await self._keys(_ELDERS)

    async def responder_ids(self) -> set[str]:
        return await self._keys(_RESPONDERS)

    async def delete_devices(self, device_ids: Sequence[str]) -> int:
        """Delete these devices (rule 5), in one transaction; how many were stored."""
        return await self._delete(_DEVICES, list(device_ids))

    async def _upsert(self, table: _Table, rows: list[_Row]) -> UpsertCounts:
        raise NotImplementedError

    async def _delete(self, table: _Table, keys: list[str]) -> int:
        raise NotImplementedError

    async def _get(self, table: _Table, key: str, load: Callable[[str], M]) -> M | None:
        raise NotImplementedError

    async def _all(self, table: _Table, load: Callable[[str], M]) -> list[M]:
        raise NotImplementedError

    async def _keys(self, table: _Table) -> set[str]:
        raise NotImplementedError


class SqliteRegistry(TableRegistry):
    """:class:`RegistryStore` on SQLite. The connection is opened (and closed) by the caller."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # aiosqlite serialises single calls, not transactions: one upsert at a time on this connection.
        self._write_lock = connection_lock(db)  # shared with the accounts, which write on the same connection

    async def create_schema(self) -> None:
        """Create the tables and indexes that are missing. Safe to call at every start."""
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA:
                    await self._db.execute(statement)
            except BaseException:
                await self._db.rollback()
                raise
            await self._db.commit()

    # -- writes ------------------------------------------------------------------------------------------

    async def _upsert(self, table: _Table, rows: list[_Row]) -> UpsertCounts:
        """Write a batch in one transaction; rows whose ``doc`` is already stored are skipped."""
        _refuse_duplicates(table, rows)
        async with self._write_lock:
            # IMMEDIATE takes the write lock now, so the comparison below sees what the writes will replace.
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                counts = await self._write_batch(table, rows)
            except BaseException:
                await self._db.rollback()
                raise
            await self._db.commit()
        return counts

    async def _write_batch(self, table: _Table, rows: list[_Row]) -> UpsertCounts:
        stored = await self._stored_docs(table, [key for key, _, _ in rows])
        inserts: list[tuple[str | None, ...]] = []
        updates: list[tuple[str | None, ...]] = []
        counts = UpsertCounts()
        for key, values, doc in rows:
            old = stored.get(key)
            if old is None:
                inserts.append((key, *values, doc))
                counts.added += 1
            elif old != doc:
                updates.append((*values, doc, key))
                counts.updated += 1
            else:
                counts.unchanged += 1
        columns = (table.key, *table.columns, "doc")
        if inserts:
            placeholders = ", ".join("?" for _ in columns)
            sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})"
            await self._db.executemany(sql, inserts)
        if updates:
            assignments = ", ".join(f"{column} = ?" for column in (*table.columns, "doc"))
            sql = f"UPDATE {table.name} SET {assignments} WHERE {table.key} = ?"
            await self._db.executemany(sql, updates)
        return counts

    async def _delete(self, table: _Table, keys: list[str]) -> int:
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                deleted = 0
                for start in range(0, len(keys), _CHUNK):
                    chunk = keys[start : start + _CHUNK]
                    placeholders = ", ".join("?" for _ in chunk)
                    cursor = await self._db.execute(
                        f"DELETE FROM {table.name} WHERE {table.key} IN ({placeholders})", chunk
                    )
                    deleted += cursor.rowcount
            except BaseException:
                await self._db.rollback()
                raise
            await self._db.commit()
        return deleted

    async def _stored_docs(self, table: _Table, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            placeholders = ", ".join("?" for _ in chunk)
            sql = f"SELECT {table.key}, doc FROM {table.name} WHERE {table.key} IN ({placeholders})"
            for key, doc in await self._db.execute_fetchall(sql, chunk):
                found[key] = doc
        return found

    # -- reads -------------------------------------------------------------------------------------------

    async def _get(self, table: _Table, key: str, load: Callable[[str], M]) -> M | None:
        sql = f"SELECT doc FROM {table.name} WHERE {table.key} = ?"
        rows = list(await self._db.execute_fetchall(sql, (key,)))  # read and close in one step
        return load(rows[0][0]) if rows else None

    async def _all(self, table: _Table, load: Callable[[str], M]) -> list[M]:
        sql = f"SELECT doc FROM {table.name} ORDER BY {table.key}"
        return [load(row[0]) for row in await self._db.execute_fetchall(sql)]

    async def _keys(self, table: _Table) -> set[str]:
        sql = f"SELECT {table.key} FROM {table.name}"
        return {row[0] for row in await self._db.execute_fetchall(sql)}


def _refuse_duplicates(table: _Table, rows: list[_Row]) -> None:
    """A batch naming one id twice is a caller's mistake: which row should win is not ours to guess."""
    seen: set[str] = set()
    for key, _, _ in rows:
        if key in seen:
            raise InvalidInput(f"{table.key} {key} appears twice in one upsert", field=table.key, code="duplicate_key")
        seen.add(key)
