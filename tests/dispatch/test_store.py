"""The registry store against a real SQLite file in WAL mode."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import aiosqlite
import pytest

from dispatch.errors import InvalidInput
from dispatch.registry import Contact, Device, Elder, Responder
from dispatch.store import RegistryStore, SqliteRegistry, UpsertCounts

COMMUNITY = "龙文区/蓝田街道/湘桥社区"


def elder(elder_id: str = "e1", **changes: object) -> Elder:
    fields: dict[str, object] = {
        "elder_id": elder_id,
        "name": "陈秀英",
        "phone": "+86 135-0596-0001",
        "address": "龙文区蓝田街道湘桥社区3号楼2单元501室",
        "lat": 24.514,
        "lon": 117.689,
        "community": COMMUNITY,
        "birth_date": date(1938, 5, 1),
        "risk_flags": ["living_alone"],
        "care_level": 2,
        "medical_notes": "高血压、糖尿病",
        "contacts": [Contact(name="陈伟", phone="13800000000", relation="儿子")],
    }
    fields.update(changes)
    return Elder.model_validate(fields)


def device(device_id: str = "7DFE7B", elder_id: str = "e1", **changes: object) -> Device:
    fields: dict[str, object] = {"device_id": device_id, "protocol": "sia-dc09", "elder_id": elder_id}
    fields.update(changes)
    return Device.model_validate(fields)


def responder(responder_id: str = "c0001", **changes: object) -> Responder:
    fields: dict[str, object] = {
        "responder_id": responder_id,
        "name": "林丽",
        "kind": "caregiver",
        "skills": ["life_care", "nursing"],
        "lat": 24.51,
        "lon": 117.69,
        "community": COMMUNITY,
    }
    fields.update(changes)
    return Responder.model_validate(fields)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "registry.db"


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    connection = await aiosqlite.connect(db_path)
    await connection.execute("PRAGMA journal_mode=WAL")
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def store(db: aiosqlite.Connection) -> SqliteRegistry:
    registry = SqliteRegistry(db)
    await registry.create_schema()
    return registry


async def dump(db_path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, read through a second connection: what is really committed."""
    async with aiosqlite.connect(db_path) as other:
        return {
            table: list(await other.execute_fetchall(f"SELECT * FROM {table} ORDER BY 1"))
            for table in ("elders", "devices", "responders")
        }


def test_counts_changed() -> None:
    assert not UpsertCounts().changed
    assert not UpsertCounts(unchanged=3).changed
    assert UpsertCounts(added=1).changed
    assert UpsertCounts(updated=1).changed


async def test_sqlite_registry_is_a_registry_store(store: SqliteRegistry) -> None:
    typed: RegistryStore = store
    assert await typed.elders() == []


async def test_schema_is_idempotent_and_indexed(store: SqliteRegistry, db: aiosqlite.Connection) -> None:
    await store.create_schema()
    rows = await db.execute_fetchall("SELECT type, name FROM sqlite_master ORDER BY name")
    names = {(kind, name) for kind, name in rows}
    assert {("table", "elders"), ("table", "devices"), ("table", "responders")} <= names
    assert {("index", "elders_phone"), ("index", "devices_elder")} <= names
    assert (await db.execute_fetchall("PRAGMA journal_mode"))[0][0] == "wal"


async def test_upsert_counts_added_updated_unchanged(store: SqliteRegistry) -> None:
    assert await store.upsert_elders([elder("e1"), elder("e2")]) == UpsertCounts(added=2)
    again = await store.upsert_elders([elder("e1"), elder("e2", care_level=4), elder("e3")])
    assert again == UpsertCounts(added=1, updated=1, unchanged=1)
    stored = await store.get_elder("e2")
    assert stored is not None and stored.care_level == 4


async def test_unchanged_rows_are_not_written(store: SqliteRegistry, db: aiosqlite.Connection) -> None:
    await store.upsert_responders([responder("c0001"), responder("c0002")])
    before = db.total_changes
    counts = await store.upsert_responders([responder("c0001"), responder("c0002")])
    assert counts == UpsertCounts(unchanged=2)
    assert db.total_changes == before


async def test_records_round_trip_with_chinese_text(store: SqliteRegistry, db_path: Path) -> None:
    original = elder("e1", caregiver_id="c0001", entitlement="low_cost")
    await store.upsert_elders([original])
    assert await store.get_elder("e1") == original
    # Read back on a fresh connection: the text is stored as UTF-8, not mangled.
    committed = await dump(db_path)
    elder_id, phone, community, doc = committed["elders"][0]
    assert (elder_id, community) == ("e1", COMMUNITY)
    assert "陈秀英" in str(doc) and "高血压" in str(doc)
    assert phone == "13505960001"  # normalised: no +86, digits only


async def test_elder_without_phone_stores_null(store: SqliteRegistry, db: aiosqlite.Connection) -> None:
    await store.upsert_elders([elder("e9", phone=None)])
    assert await db.execute_fetchall("SELECT phone FROM elders") == [(None,)]


async def test_devices_and_responders_round_trip(store: SqliteRegistry, db: aiosqlite.Connection) -> None:
    pendant = device(aes_key="abcdabcdabcdabcdabcdabcdabcdabcd")
    clinic = responder("k01", name="蓝田社区卫生服务中心", kind="clinic", skills=[], hours="24h")
    assert await store.upsert_devices([pendant]) == UpsertCounts(added=1)
    assert await store.upsert_responders([clinic, responder()]) == UpsertCounts(added=2)
    assert await store.get_device("7DFE7B") == pendant
    assert await store.get_responder("k01") == clinic
    assert await store.responders() == [responder(), clinic]  # ordered by id
    assert await store.devices() == [pendant]
    assert await store.responder_ids() == {"c0001", "k01"}
    assert await db.execute_fetchall("SELECT kind FROM responders ORDER BY 1") == [
        ("caregiver",),
        ("clinic",),
    ]
    assert await db.execute_fetchall("SELECT elder_id FROM devices") == [("e1",)]


async def test_missing_records_are_none(store: SqliteRegistry) -> None:
    assert await store.get_elder("nobody") is None
    assert await store.get_device("nothing") is None
    assert await store.get_responder("no-one") is None
    assert await store.elder_ids() == set()


async def test_many_rows_in_one_batch(store: SqliteRegistry) -> None:
    rows = [elder(f"e{i:05d}") for i in range(1234)]  # more than one chunk of bound parameters
    assert await store.upsert_elders(rows) == UpsertCounts(added=1234)
    assert await store.upsert_elders(rows) == UpsertCounts(unchanged=1234)
    assert len(await store.elder_ids()) == 1234
    assert [e.elder_id for e in await store.elders()] == [e.elder_id for e in rows]


async def test_duplicate_id_in_one_batch_is_refused_before_writing(store: SqliteRegistry, db_path: Path) -> None:
    with pytest.raises(InvalidInput, match="e1 appears twice"):
        await store.upsert_elders([elder("e1"), elder("e2"), elder("e1", care_level=5)])
    assert (await dump(db_path))["elders"] == []


async def test_failed_upsert_rolls_back_the_whole_batch(
    store: SqliteRegistry, db: aiosqlite.Connection, db_path: Path
) -> None:
    await store.upsert_elders([elder("e1")])
    before = await dump(db_path)
    # A trigger makes the database refuse the update of e1, which comes after the new rows are inserted.
    await db.execute(
        "CREATE TRIGGER refuse_e1 BEFORE UPDATE ON elders WHEN NEW.elder_id = 'e1' "
        "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
    )
    await db.commit()
    batch = [elder("e1", care_level=5), elder("e2"), elder("e3")]
    with pytest.raises(sqlite3.IntegrityError, match="refused by test"):
        await store.upsert_elders(batch)
    assert not db.in_transaction
    assert await dump(db_path) == before  # e2 and e3 were inserted, then rolled back
    assert await store.elder_ids() == {"e1"}
    stored = await store.get_elder("e1")
    assert stored is not None and stored.care_level == 2

    # The store is still usable after the failure.
    await db.execute("DROP TRIGGER refuse_e1")
    await db.commit()
    assert await store.upsert_elders(batch) == UpsertCounts(added=2, updated=1)


async def test_concurrent_upserts_do_not_share_a_transaction(
    store: SqliteRegistry, db: aiosqlite.Connection, db_path: Path
) -> None:
    await db.execute(
        "CREATE TRIGGER refuse_bad BEFORE INSERT ON responders WHEN NEW.responder_id = 'bad' "
        "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
    )
    await db.commit()
    results = await asyncio.gather(
        store.upsert_elders([elder(f"e{i}") for i in range(50)]),
        store.upsert_responders([responder("c0001"), responder("bad")]),
        return_exceptions=True,
    )
    assert results[0] == UpsertCounts(added=50)
    assert isinstance(results[1], sqlite3.IntegrityError)
    committed = await dump(db_path)
    assert len(committed["elders"]) == 50  # the other coroutine's rollback did not take these along
    assert committed["responders"] == []
