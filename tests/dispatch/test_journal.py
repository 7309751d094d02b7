"""The journal on a real SQLite file: ordering, durability, group commit, the hash chain."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch import journal as journal_module
from dispatch.clock import ManualClock
from dispatch.entries import IncidentOpened, Note, Resolved
from dispatch.errors import ChainBroken, JournalError
from dispatch.journal import Entry, SqliteJournal


async def opened(path: Path, clock: ManualClock) -> SqliteJournal:
    journal = SqliteJournal(path, clock)
    await journal.open()
    return journal


async def test_append_is_ordered_and_durable_after_await(tmp_path: Path, clock: ManualClock) -> None:
    journal = await opened(tmp_path / "j.sqlite3", clock)
    heard: list[int] = []
    journal.listen(lambda entry: heard.append(entry.seq))
    record = IncidentOpened("INC-1", "sos", "api", 2, ("sos: base priority 2",), "home", 1.0, elder_id="王")
    first = journal.append(record, actor="system")
    second = journal.append(Note("x"), actor="operator:o", incident_id="INC-1")
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.hash
    assert heard == []  # nobody hears of an entry before it is committed
    await journal.durable(second.seq)
    assert heard == [1, 2]
    assert journal.durable_seq == 2
    # what is durable is on disk, readable by another connection
    rows = sqlite3.connect(tmp_path / "j.sqlite3").execute("SELECT seq, kind FROM journal").fetchall()
    assert rows == [(1, "incident.opened"), (2, "incident.note")]
    read = await journal.read(0, 10)
    assert read[0].fact == record and read[1].fact == Note("x")  # typed again when read back
    assert read[0].as_dict()["payload"]["elder_id"] == "王"
    await journal.close()


async def test_group_commit_batches_a_burst(tmp_path: Path, clock: ManualClock) -> None:
    journal = await opened(tmp_path / "j.sqlite3", clock)
    entries = [journal.append(Note(f"n{n}"), actor="device:d") for n in range(1000)]
    await asyncio.gather(*(journal.durable(e.seq) for e in entries))
    assert journal.commits <= 2
    assert (await journal.verify()).entries == 1000
    await journal.close()


async def test_a_burst_commits_within_an_older_sqlites_parameter_limit(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch is one INSERT, ten parameters an entry: on a SQLite allowing 999 (before 3.32) the batch is cut to
    99 entries, never refused for good."""
    monkeypatch.setattr(journal_module, "_variable_limit", lambda: 999)
    journal = await opened(tmp_path / "j.sqlite3", clock)
    entries = [journal.append(Note(f"n{i}"), actor="op", incident_id="INC-1") for i in range(250)]
    await journal.durable(entries[-1].seq)
    assert journal.durable_seq == 250 and journal.commits >= 3
    assert (await journal.verify()).entries == 250
    await journal.close()


async def test_reopening_continues_the_chain(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "j.sqlite3"
    journal = await opened(path, clock)
    last = journal.append(Note("a"), actor="system")
    await journal.durable(last.seq)
    await journal.close()
    journal = await opened(path, clock)
    nxt = journal.append(Resolved("b"), actor="system")
    assert (nxt.seq, nxt.prev_hash) == (2, last.hash)
    await journal.durable(nxt.seq)
    assert (await journal.verify()).entries == 2
    replayed: list[Entry] = [e async for e in journal.replay(batch=1)]
    assert [e.fact for e in replayed] == [Note("a"), Resolved("b")]
    await journal.close()


async def test_verify_finds_an_edited_entry(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "j.sqlite3"
    journal = await opened(path, clock)
    for n in range(5):
        journal.append(Note(str(n)), actor="system")
    await journal.durable(5)
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("DELETE FROM journal WHERE seq = 3")
    db.execute("DROP TRIGGER journal_no_update")
    db.execute("""UPDATE journal SET payload = '{"text":"99"}' WHERE seq = 3""")
    db.commit()
    db.close()
    with pytest.raises(ChainBroken) as broken:
        await journal.verify()
    assert broken.value.seq == 3
    await journal.close()


async def test_a_failed_commit_refuses_work_until_it_commits_then_works_again(
    tmp_path: Path, clock: ManualClock
) -> None:
    journal = await opened(tmp_path / "j.sqlite3", clock)
    heard: list[int] = []
    journal.listen(lambda entry: heard.append(entry.seq))
    recovered: list[bool] = []
    journal.on_recovered(lambda: recovered.append(True))
    blocker = sqlite3.connect(tmp_path / "j.sqlite3", timeout=0)
    blocker.execute("PRAGMA busy_timeout = 0")
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the file: the commit cannot happen
    assert journal._writer is not None
    await journal._writer.execute("PRAGMA busy_timeout = 0")
    entry = journal.append(Note("alarm"), actor="device:d")
    with pytest.raises(JournalError):
        await journal.durable(entry.seq)
    with pytest.raises(JournalError):
        journal.append(Note("alarm"), actor="device:d")
    journal.retry()  # still held: the same batch fails again, nothing else is taken in
    await asyncio.sleep(0.1)
    assert journal.failure is not None and journal.durable_seq == 0 and heard == []  # nothing was acknowledged
    blocker.rollback()
    blocker.close()
    journal.retry()  # the file is free again (as when space comes back): the kept batch commits, no restart
    for _ in range(100):
        if journal.failure is None:
            break
        await asyncio.sleep(0.02)
    await journal.durable(entry.seq)
    assert journal.failure is None and recovered == [True] and heard == [entry.seq]
    again = journal.append(Note("after"), actor="device:d")
    await journal.durable(again.seq)
    assert (await journal.verify()).entries == 2
    await journal.close()


@settings(deadline=None)
@given(
    seq=st.integers(min_value=1, max_value=2**53),
    ts=st.floats(allow_nan=True, allow_infinity=True),
    kind=st.text(),
    actor=st.text(),
    incident_id=st.none() | st.text(),
    drill=st.booleans(),
)
def test_an_entry_on_the_wire_is_json_dumps_of_its_envelope_around_the_stored_payload(
    seq: int, ts: float, kind: str, actor: str, incident_id: str | None, drill: bool
) -> None:
    """The envelope is written by hand for speed; it must be the very text json.dumps gives (escapes, non-ASCII
    kept, floats, null), since consoles and tests compare messages byte for byte."""
    entry = Entry(seq, ts, kind, actor, incident_id, drill, '{"text":"王\\n"}', "", "", Note("x"))
    head = json.dumps(
        {
            "type": "entry",
            "seq": seq,
            "ts": ts,
            "kind": kind,
            "actor": actor,
            "incident_id": incident_id,
            "drill": drill,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert entry.wire() == f'{head[:-1]},"payload":{{"text":"王\\n"}}}}'
