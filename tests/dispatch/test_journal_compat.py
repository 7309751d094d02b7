"""A data folder written by release 0.1 (before typed entries) replays, verifies and gives the same projection.

The fixture (``fixtures/journal-0.1/``, see its README) is the SQLite file that release wrote, with every one of
its 31 entry kinds, and the projection that release folded from it, shown through its views.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from dispatch.clock import ManualClock
from dispatch.core import open_core
from dispatch.directory import Directory
from dispatch.entries import FACTS, Note, Unrecognised
from dispatch.journal import SqliteJournal, connect, entry_hash, read_only, verify_chain
from dispatch.scopes import ALL
from dispatch.state import Projection
from dispatch.store import SqliteRegistry
from dispatch.views import call_view, incident_view, responder_view
from tests.conftest import settings_for

FIXTURE = Path(__file__).parent / "fixtures" / "journal-0.1"
SEEN_AT = 1_780_010_000.0  # the "now" at which the fixture's responders were shown


def copy_of_fixture(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(FIXTURE / "anxin.sqlite3", data / "anxin.sqlite3")
    return data


def dump(projection: Projection, directory: Directory) -> dict[str, Any]:
    """The projection as the fixture's ``projection.json`` shows it (the same views, the same order)."""
    incidents = sorted(projection.incidents.values(), key=lambda i: i.incident_id)
    return {
        "incidents": [incident_view(i, projection, directory) for i in incidents],
        "responders": [responder_view(r, projection, directory, SEEN_AT) for r in sorted(directory.responders)],
        "calls": [call_view(c, directory, SEEN_AT) for c in sorted(projection.calls.values(), key=lambda c: c.call_id)],
        "open_by_elder": sorted([[*k, v] for k, v in projection.open_by_elder.items()]),
        "conditions": sorted([[*k, v] for k, v in projection.conditions.items()]),
        "dedup": sorted([k, v] for k, v in projection.dedup.items()),
        "timers": sorted([[list(key), deadline] for key, deadline in projection.timers._deadlines.items()]),  # type: ignore[arg-type]
    }


def normalised(value: Any) -> Any:
    """JSON's view of a value: tuples are lists, and 1100 equals 1100.0 as it did on the wire."""
    return json.loads(json.dumps(value, ensure_ascii=False))


async def test_the_old_journal_verifies_read_only(tmp_path: Path) -> None:
    """``anxin verify`` on a folder nobody has opened since release 0.1 (no schema-version column yet)."""
    data = copy_of_fixture(tmp_path)
    conn, read = await read_only(data / "anxin.sqlite3")
    try:
        result = await verify_chain(read)
    finally:
        await conn.close()
    assert result.entries == 100


async def test_every_old_entry_decodes_to_its_typed_fact(tmp_path: Path) -> None:
    data = copy_of_fixture(tmp_path)
    journal = SqliteJournal(data / "anxin.sqlite3", ManualClock())
    await journal.open()
    entries = [entry async for entry in journal.replay()]
    await journal.close()
    assert len(entries) == 100
    assert not [e for e in entries if isinstance(e.fact, Unrecognised)]
    # all 31 kinds of that release, each a registered class; the kinds added since are the only others
    added = {
        "incident.located", "incident.retyped", "call.classified", "call.called_back",
        "records.read", "account.changed", "login.failed", "journal.guard",
        "devices.unknown", "devices.unknown_alarm", "device.position_implausible",
        "service.ordered", "service.scheduled", "service.rescheduled", "service.assigned", "service.started",
        "service.delivered", "service.confirmed", "service.cancelled", "service.no_show",
        "vouchers.allotted", "vouchers.charged",
        "follow_up.created", "follow_up.recorded", "follow_up.unreachable", "follow_up.complaint",
        "follow_up.complaint_settled",
        "care_call.made", "care_call.visit_proposed", "care_call.visit_settled",
        "plan.created", "plan.ended", "plan.visit_missed", "plan.task_closed",
        "duty.started", "duty.logged", "duty.handed_over", "duty.taken_over",
        "cluster.leader", "incident.device_restored", "contact.notified",
        "referral.made", "referral.accepted", "referral.declined", "referral.expired", "referral.arrived",
        "referral.outcome", "referral.cancelled", "offer.held", "call.caller_picked",
        "assessment.recorded",
        "registry.elder_deactivated", "registry.elder_reactivated", "registry.device_unbound",
        "device.test_started", "device.test_passed", "device.test_failed",
        "registry.elders_merged",
        "call.queued", "call.transferred", "call.dialed",
    }  # fmt: skip
    assert set(FACTS) - {e.kind for e in entries} == added
    assert all(type(e.fact) is FACTS[e.kind] and e.version == 1 for e in entries)


async def test_the_old_journal_replays_to_the_same_projection(tmp_path: Path) -> None:
    data = copy_of_fixture(tmp_path)
    settings = settings_for(data)
    journal = SqliteJournal(settings.db_path, ManualClock())
    await journal.open()
    projection = Projection(position_stale_s=settings.position_stale_s)
    async for entry in journal.replay():
        projection.apply(entry)
    assert (await journal.verify()).entries == 100
    await journal.close()

    db = await connect(settings.db_path)
    directory = await Directory.load(SqliteRegistry(db))
    await db.close()
    expected = json.loads((FIXTURE / "projection.json").read_text(encoding="utf-8"))
    assert_shows(normalised(dump(projection, directory)), expected)


def assert_shows(now: Any, then: Any, where: str = "") -> None:
    """``now`` shows everything ``then`` showed, with the same values; views may have gained fields since, and an
    incident's notes now hold the caregivers' notes too (they were kept only on the assignment, overwritten)."""
    if where.endswith(".notes"):
        remaining = iter(now)
        for index, old in enumerate(then):
            assert any(_shows(new, old) for new in remaining), f"{where}[{index}] is gone"
        return
    if isinstance(then, dict):
        assert isinstance(now, dict), where
        for key, value in then.items():
            assert key in now, f"{where}.{key} is gone"
            assert_shows(now[key], value, f"{where}.{key}")
    elif isinstance(then, list):
        assert isinstance(now, list) and len(now) == len(then), where
        for index, (new, old) in enumerate(zip(now, then, strict=True)):
            assert_shows(new, old, f"{where}[{index}]")
    else:
        assert now == then, f"{where}: {now!r} != {then!r}"


def _shows(now: Any, then: Any) -> bool:
    try:
        assert_shows(now, then)
    except AssertionError:
        return False
    return True


async def test_the_new_release_carries_the_old_chain_on(tmp_path: Path) -> None:
    """Opened by this release, the old folder serves: the chain goes on from the old head and verifies."""
    data = copy_of_fixture(tmp_path)
    core = await open_core(settings_for(data), ManualClock(1_780_010_000.0), protocols=("sia-dc09", "watch", "gt06"))
    try:
        assert core.replayed == 100
        incident = next(i for i in core.views.incidents(ALL, open_only=True) if i["alarm_type"] == "medical")
        await core.engine.note(incident["incident_id"], "家属已到", actor="operator:op1")
        (entry,) = await core.journal.read(core.journal.head_seq - 1, 1)
        assert entry.fact == Note("家属已到")
        assert (await core.journal.verify()).entries == core.journal.head_seq
    finally:
        await core.close()


async def test_an_entry_a_newer_release_wrote_is_kept_and_skipped(tmp_path: Path) -> None:
    """A kind this release does not know (or a newer version of one it knows) does not stop the service."""
    data = copy_of_fixture(tmp_path)
    journal = SqliteJournal(data / "anxin.sqlite3", ManualClock())
    await journal.open()
    head = (await journal.read(99, 1))[0]
    await journal.close()
    rows = []
    prev = head.hash
    for seq, kind, version, body in (
        (101, "service.ordered", 1, '{"order_id":"S-1"}'),
        (102, "incident.note", 2, "{}"),
    ):
        digest = entry_hash(prev, seq, 1_780_005_000.0, kind, "system", None, False, body, version)
        rows.append((seq, 1_780_005_000.0, kind, "system", None, 0, body, prev, digest, version))
        prev = digest
    with sqlite3.connect(data / "anxin.sqlite3") as db:
        db.executemany("INSERT INTO journal VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    core = await open_core(settings_for(data), ManualClock(1_780_010_000.0))
    try:
        assert core.replayed == 102
        assert (await core.journal.verify()).entries == 102
        entries = await core.journal.read(100, 2)
        assert [type(e.fact) for e in entries] == [Unrecognised, Unrecognised]
    finally:
        await core.close()
