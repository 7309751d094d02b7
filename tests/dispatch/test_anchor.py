"""The anchor on a real data folder: a real core, a real SQLite file, the key and checkpoints beside the folder.

Each attack is done the way an intruder with the database file in hand would do it: drop the append-only
triggers with sqlite3, change rows, recompute the hashes with the journal's own :func:`entry_hash`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from dispatch.anchor import (
    Checkpoint,
    RecordReport,
    checkpoints_file,
    key_file,
    last_checkpoint,
    verify_record,
)
from dispatch.clock import ManualClock
from dispatch.core import Core, open_core
from dispatch.entries import JournalGuard, LoginFailed
from dispatch.journal import GUARD_ACTOR, entry_hash, read_only, verify_chain
from dispatch.settings import Settings
from tests.conftest import settings_for
from tests.process import anxin

QUIET = 3600.0  # the background task stays out of the way: the tests write their checkpoints themselves


def attempt(n: int) -> LoginFailed:
    """Something to journal that needs nothing else in the record: a refused login."""
    return LoginFailed(f"user{n}", "10.0.0.7", "wrong_password")


async def written(settings: Settings, clock: ManualClock, entries: int, every: int) -> Core:
    """A core on ``settings`` with ``entries`` notes journaled, a checkpoint after every ``every``."""
    core = await open_core(settings, clock)
    assert core.anchor is not None
    for start in range(0, entries, every):
        last = [
            core.journal.append(attempt(n), actor="system:login") for n in range(start, min(start + every, entries))
        ]
        await core.journal.durable(last[-1].seq)
        clock.advance(1.0)
        assert await core.anchor.checkpoint() is not None
    return core


async def folder(tmp_path: Path, clock: ManualClock, entries: int = 300, every: int = 50) -> Settings:
    settings = settings_for(tmp_path / "data", anchor_every_s=QUIET)
    core = await written(settings, clock, entries, every)
    await core.close()
    return settings


async def verify(settings: Settings) -> RecordReport:
    conn, read = await read_only(settings.db_path)
    try:
        return await verify_record(read, key_file(settings))
    finally:
        await conn.close()


async def chain_alone(settings: Settings) -> int:
    """What ``anxin verify`` checked before the anchor: the hash chain (the attacks below all pass it)."""
    conn, read = await read_only(settings.db_path)
    try:
        return (await verify_chain(read)).entries
    finally:
        await conn.close()


def rows(settings: Settings, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(settings.db_path) as db:
        return db.execute(sql, args).fetchall()


def rehash_from(settings: Settings, seq: int, payload: str) -> None:
    """Change entry ``seq``'s payload and recompute every hash from there on, as an intruder would."""
    db = sqlite3.connect(settings.db_path)
    try:
        db.execute("DROP TRIGGER journal_no_update")
        (prev,) = db.execute("SELECT hash FROM journal WHERE seq = ?", (seq - 1,)).fetchone()
        db.execute("UPDATE journal SET payload = ? WHERE seq = ?", (payload, seq))
        columns = "seq, ts, kind, actor, incident_id, drill, payload, version"
        for row in db.execute(f"SELECT {columns} FROM journal WHERE seq >= ? ORDER BY seq", (seq,)).fetchall():
            n, ts, kind, actor, incident_id, drill, body, version = row
            digest = entry_hash(prev, n, ts, kind, actor, incident_id, bool(drill), body, version)
            db.execute("UPDATE journal SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, n))
            prev = digest
        db.commit()
    finally:
        db.close()


def truncate_after(settings: Settings, seq: int) -> None:
    db = sqlite3.connect(settings.db_path)
    try:
        db.execute("DROP TRIGGER journal_no_delete")
        db.execute("DELETE FROM journal WHERE seq > ?", (seq,))
        db.commit()
    finally:
        db.close()


# -- the record as written ----------------------------------------------------------------------------------


async def test_an_untouched_journal_verifies(tmp_path: Path, clock: ManualClock) -> None:
    settings = await folder(tmp_path, clock, entries=12_000, every=1000)  # more than one read batch of 5000
    report = await verify(settings)
    assert report.ok and report.anchored, report.broken
    assert (report.entries, report.head_seq, report.checkpoints) == (12_000, 12_000, 12)
    assert report.last is not None and report.last.seq == 12_000 and report.unanchored() == 0
    assert report.last_matching == report.last


async def test_the_key_is_made_once_outside_the_data_folder_and_private(tmp_path: Path, clock: ManualClock) -> None:
    settings = await folder(tmp_path, clock, entries=10, every=10)
    key = key_file(settings)
    assert key == tmp_path / "data.chain-key" and settings.data not in key.parents
    assert checkpoints_file(key) == tmp_path / "data.chain-key.checkpoints"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(bytes.fromhex(key.read_text())) == 32
    made = key.read_text()
    core = await open_core(settings, clock)  # a restart keeps it
    await core.close()
    assert key.read_text() == made


async def test_the_setting_puts_the_key_and_its_checkpoints_elsewhere(tmp_path: Path, clock: ManualClock) -> None:
    (tmp_path / "keys").mkdir()
    settings = settings_for(tmp_path / "data", chain_key_file=tmp_path / "keys" / "anxin.key", anchor_every_s=QUIET)
    core = await written(settings, clock, entries=5, every=5)
    await core.close()
    assert (tmp_path / "keys" / "anxin.key.checkpoints").read_bytes().count(b"\n") == 1
    assert (await verify(settings)).anchored


async def test_each_checkpoint_line_is_signed_and_chained(tmp_path: Path, clock: ManualClock) -> None:
    settings = await folder(tmp_path, clock, entries=100, every=50)
    lines = checkpoints_file(key_file(settings)).read_text().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert set(first) == {"v", "seq", "hash", "ts", "prev", "mac"}
    (hash50,) = rows(settings, "SELECT hash FROM journal WHERE seq = 50")[0]
    assert (first["seq"], first["hash"], first["prev"]) == (50, hash50, "0" * 64)
    assert second["prev"] == first["mac"] and second["seq"] == 100
    key = bytes.fromhex(key_file(settings).read_text())
    assert all(Checkpoint.parse(line.encode()).valid(key) for line in lines)  # type: ignore[union-attr]


# -- the attacks --------------------------------------------------------------------------------------------


async def test_a_rewritten_and_rehashed_entry_fails_naming_the_seq(tmp_path: Path, clock: ManualClock) -> None:
    settings = await folder(tmp_path, clock, entries=300, every=10)
    rehash_from(settings, 123, '{"username":"admin","address":"10.0.0.7","reason":"locked"}')
    assert await chain_alone(settings) == 300  # the chain alone is fooled

    report = await verify(settings)
    assert not report.ok and not report.chain_broken
    assert report.broken[0].startswith("entry 130 is not the entry checkpointed at")
    assert "an entry from 121 to 130 was changed" in report.broken[0]
    assert len(report.broken) + report.more_broken == 18  # every checkpoint from 130 to 300


async def test_a_truncated_journal_fails(tmp_path: Path, clock: ManualClock) -> None:
    settings = await folder(tmp_path, clock, entries=300, every=50)
    truncate_after(settings, 100)
    assert await chain_alone(settings) == 100  # what is left still chains

    report = await verify(settings)
    assert report.head_seq == 100
    assert report.broken == [
        "the journal is truncated: it ends at seq 100, but checkpoint line 3 recorded seq 150 at "
        f"{Checkpoint.parse(checkpoints_file(key_file(settings)).read_bytes().splitlines()[2]).when()}: "  # type: ignore[union-attr]
        "entries 101 to 150 (at least) are gone"
    ]


async def test_a_wrong_key_fails(tmp_path: Path, clock: ManualClock) -> None:
    settings = await folder(tmp_path, clock, entries=100, every=10)
    key_file(settings).write_text(os.urandom(32).hex() + "\n")
    report = await verify(settings)
    assert (
        report.broken[0] == "checkpoint line 1 (seq 10) does not carry the key's MAC (is this the key the server uses?)"
    )
    assert len(report.broken) == 10


async def test_forged_checkpoints_fail_without_the_key(tmp_path: Path, clock: ManualClock) -> None:
    """Rehash the journal and rewrite the checkpoints to match, with a key of one's own: the MACs give it away."""
    settings = await folder(tmp_path, clock, entries=100, every=50)
    rehash_from(settings, 70, '{"username":"root","address":"10.0.0.7","reason":"locked"}')
    path = checkpoints_file(key_file(settings))
    mine, prev, lines = os.urandom(32), "0" * 64, []
    for seq in (50, 100):
        (digest,) = rows(settings, "SELECT hash FROM journal WHERE seq = ?", seq)[0]
        point = Checkpoint.signed(mine, seq, str(digest), 1_780_000_000.0, prev)
        lines.append(point.line())
        prev = point.mac
    path.write_bytes(b"".join(lines))
    report = await verify(settings)
    assert report.broken == [
        "checkpoint line 1 (seq 50) does not carry the key's MAC (is this the key the server uses?)",
        "checkpoint line 2 (seq 100) does not carry the key's MAC",
    ]


async def test_a_checkpoint_removed_from_the_middle_fails(tmp_path: Path, clock: ManualClock) -> None:
    settings = await folder(tmp_path, clock, entries=300, every=50)
    path = checkpoints_file(key_file(settings))
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + lines[3:]))
    report = await verify(settings)
    assert report.broken == [
        "checkpoint line 3 (seq 200) does not follow line 2: a checkpoint between them was removed, added or altered"
    ]


async def test_dropped_triggers_come_back_and_are_journaled(tmp_path: Path, clock: ManualClock) -> None:
    settings = await folder(tmp_path, clock, entries=3, every=3)
    with sqlite3.connect(settings.db_path) as db:
        db.execute("DROP TRIGGER journal_no_update")
        db.execute("DROP TRIGGER journal_no_delete")
    core = await open_core(settings, clock)
    try:
        (guard,) = await core.journal.read(3, 10)
        assert guard.fact == JournalGuard(missing=("journal_no_update", "journal_no_delete"))
        assert guard.actor == GUARD_ACTOR == "system:journal"
    finally:
        await core.close()
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), sqlite3.connect(settings.db_path) as db:
        db.execute("DELETE FROM journal WHERE seq = 1")
    core = await open_core(settings, clock)  # intact now: nothing more to say
    try:
        assert core.journal.head_seq == 4
    finally:
        await core.close()
    assert (await verify(settings)).ok


async def test_an_altered_trigger_is_put_back_and_journaled(tmp_path: Path, clock: ManualClock) -> None:
    settings = await folder(tmp_path, clock, entries=3, every=3)
    with sqlite3.connect(settings.db_path) as db:  # the same name, doing nothing
        db.execute("DROP TRIGGER journal_no_update")
        db.execute("CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal WHEN 0 BEGIN SELECT 1; END")
    core = await open_core(settings, clock)
    try:
        (guard,) = await core.journal.read(3, 10)
        assert guard.fact == JournalGuard(missing=("journal_no_update (altered)",))
    finally:
        await core.close()
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), sqlite3.connect(settings.db_path) as db:
        db.execute("UPDATE journal SET actor = 'x' WHERE seq = 1")


async def test_a_start_says_when_the_journal_left_its_last_checkpoint(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = await folder(tmp_path, clock, entries=300, every=50)
    rehash_from(settings, 290, '{"username":"admin","address":"10.0.0.7","reason":"locked"}')
    with caplog.at_level(logging.WARNING, logger="dispatch.anchor"):
        await (await open_core(settings, clock)).close()
    assert "entry 300 is not the one checkpointed at" in caplog.text

    caplog.clear()
    truncate_after(settings, 250)
    with caplog.at_level(logging.WARNING, logger="dispatch.anchor"):
        await (await open_core(settings, clock)).close()
    # each start journaled the trigger it found dropped (seq 301, then 251) before the anchor looked
    assert "the journal ends at seq 251, below its last checkpoint (seq 301" in caplog.text


async def test_a_start_says_what_was_added_while_it_was_stopped(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry added to the file by hand cannot be told from a real one; the next start at least says so."""
    settings = await folder(tmp_path, clock, entries=10, every=10)
    (prev,) = rows(settings, "SELECT hash FROM journal WHERE seq = 10")[0]
    body, ts = '{"username":"x","address":"10.0.0.7","reason":"locked"}', 1_780_000_100.0
    digest = entry_hash(str(prev), 11, ts, "login.failed", "system:login", None, False, body)
    with sqlite3.connect(settings.db_path) as db:
        db.execute(
            "INSERT INTO journal VALUES (11, ?, 'login.failed', 'system:login', NULL, 0, ?, ?, ?, 1)",
            (ts, body, prev, digest),
        )
    with caplog.at_level(logging.WARNING, logger="dispatch.anchor"):
        await (await open_core(settings, clock)).close()
    assert "entries 11 to 11 were written after the last checkpoint" in caplog.text
    assert (await verify(settings)).ok  # and from now on they are checkpointed like the rest


# -- at work ------------------------------------------------------------------------------------------------


async def test_the_background_task_checkpoints_when_the_head_moves(tmp_path: Path, clock: ManualClock) -> None:
    settings = settings_for(tmp_path / "data", anchor_every_s=0.02)
    core = await open_core(settings, clock)
    assert core.anchor is not None
    try:
        entry = core.journal.append(attempt(0), actor="system:login")
        await core.journal.durable(entry.seq)
        for _ in range(200):
            if core.anchor.last is not None and core.anchor.last.seq == entry.seq:
                break
            await asyncio.sleep(0.01)
        assert core.anchor.last is not None and core.anchor.last.seq == entry.seq
        written = core.anchor.written
        await asyncio.sleep(0.1)
        assert core.anchor.written == written  # the head did not move: nothing more
    finally:
        await core.close()


async def test_a_clean_shutdown_checkpoints_the_last_entries(tmp_path: Path, clock: ManualClock) -> None:
    settings = settings_for(tmp_path / "data", anchor_every_s=QUIET)
    core = await open_core(settings, clock)
    for n in range(7):
        core.journal.append(attempt(n), actor="system:login")  # not awaited: the close commits them
    await core.close()
    point = last_checkpoint(checkpoints_file(key_file(settings)))
    assert point is not None and point.seq == 7
    assert (await verify(settings)).unanchored() == 0


async def test_alarms_go_on_when_checkpoints_cannot_be_written(tmp_path: Path, clock: ManualClock) -> None:
    settings = settings_for(tmp_path / "data", anchor_every_s=QUIET)
    core = await open_core(settings, clock)
    assert core.anchor is not None
    path = checkpoints_file(key_file(settings))
    try:
        path.unlink()
        path.mkdir()  # not a file any more: every append fails
        entry = core.journal.append(attempt(1), actor="system:login")
        await core.journal.durable(entry.seq)  # the commit does not wait for the anchor
        assert await core.anchor.checkpoint() is None
        assert core.anchor.failure is not None and "seq 1 not written" in core.anchor.failure
        path.rmdir()
        assert await core.anchor.checkpoint() is not None  # the next tick writes again
        assert core.anchor.failure is None
    finally:
        await core.close()


async def start_unanchored(settings: Settings, clock: ManualClock, why: str) -> None:
    """Start a core that must run unanchored for ``why``, and show that the service goes on."""
    core = await open_core(settings, clock)
    assert core.anchor is not None
    try:
        assert core.anchor.failure is not None and why in core.anchor.failure
        entry = core.journal.append(attempt(1), actor="system:login")
        await core.journal.durable(entry.seq)
    finally:
        await core.close()


async def test_a_lost_key_is_not_replaced(tmp_path: Path, clock: ManualClock) -> None:
    settings = await folder(tmp_path, clock, entries=5, every=5)
    key_file(settings).unlink()
    await start_unanchored(settings, clock, "is missing but its checkpoints")
    assert not key_file(settings).exists()
    report = await verify(settings)
    assert report.ok and not report.anchored  # what can be checked without the key holds; the MACs were not


async def test_lost_checkpoints_beside_the_key_start_no_new_chain(tmp_path: Path, clock: ManualClock) -> None:
    """Delete the checkpoints (to hide a rewrite) and restart: a fresh chain would make the rewrite verify; none
    is started, alarms go on, and verify keeps failing."""
    settings = await folder(tmp_path, clock, entries=200, every=50)
    rehash_from(settings, 120, '{"username":"forged","address":"","reason":"wrong_password"}')
    checkpoints_file(key_file(settings)).unlink()
    await start_unanchored(settings, clock, "no new chain is started")
    assert not checkpoints_file(key_file(settings)).exists()
    assert not (await verify(settings)).ok


async def test_a_torn_last_line_is_closed_and_skipped(tmp_path: Path, clock: ManualClock) -> None:
    settings = await folder(tmp_path, clock, entries=10, every=5)
    path = checkpoints_file(key_file(settings))
    with path.open("ab") as handle:
        handle.write(b'{"v":1,"seq":1')  # a crash in the middle of a write
    core = await written(settings, clock, entries=5, every=5)
    await core.close()
    report = await verify(settings)
    assert report.ok and report.checkpoints == 3, report.broken
    assert report.notes == ['checkpoint line 3 is not a checkpoint (a torn write?), skipped: b\'{"v":1,"seq":1\'']


async def test_a_journal_started_afresh_beside_old_checkpoints_fails(tmp_path: Path, clock: ManualClock) -> None:
    """A new data folder with the old key and checkpoints looks exactly like a wiped journal, and is told so."""
    settings = await folder(tmp_path, clock, entries=20, every=10)
    shutil.rmtree(settings.data)
    core = await written(settings, clock, entries=15, every=5)
    await core.close()
    report = await verify(settings)
    assert report.broken[0].startswith("entry 10 is not the entry checkpointed at")
    assert "checkpoint line 3 goes back from seq 20 to 5" in report.broken


# -- the command --------------------------------------------------------------------------------------------


async def test_anxin_verify_exits_non_zero_and_says_what_failed(tmp_path: Path, clock: ManualClock) -> None:
    settings = await folder(tmp_path, clock, entries=300, every=50)
    ok = anxin("verify", "--data", str(settings.data))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "journal ok: 300 entries" in ok.stdout and "anchor ok: 6 checkpoints" in ok.stdout

    truncate_after(settings, 100)
    cut = anxin("verify", "--data", str(settings.data))
    assert cut.returncode == 1
    assert "journal BROKEN: the journal is truncated: it ends at seq 100" in cut.stdout
    assert "entries 101 to 150 (at least) are gone" in cut.stdout

    key_file(settings).rename(tmp_path / "elsewhere")
    keyless = anxin("verify", "--data", str(settings.data))
    assert keyless.returncode == 1  # still broken: what can be checked without the key is checked
    assert "anchor NOT CHECKED: no chain key at" in keyless.stdout


async def test_anxin_verify_without_a_key_says_so(tmp_path: Path, clock: ManualClock) -> None:
    settings = await folder(tmp_path, clock, entries=10, every=10)
    key_file(settings).unlink()
    checkpoints_file(key_file(settings)).unlink()
    keyless = anxin("verify", "--data", str(settings.data))
    assert keyless.returncode == 2
    assert "anchor NOT CHECKED: no chain key at" in keyless.stdout and "nor checkpoints at" in keyless.stdout
    chain = anxin("verify", "--data", str(settings.data), "--chain-only")
    assert chain.returncode == 0 and "journal ok: 10 entries" in chain.stdout
