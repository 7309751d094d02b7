"""The shared journal on a real PostgreSQL: the same chain as the embedded one, a follower that reads what the
leader commits, and fencing: once a newer term is claimed, the old leader commits nothing."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from dispatch.clock import ManualClock
from dispatch.entries import Note
from dispatch.errors import Fenced, JournalError
from dispatch.journal import Entry, entry_hash, verify_chain
from dispatch.pgjournal import PgJournal, read_only


def note(text: str) -> Note:
    return Note(text=text)


async def test_the_leader_writes_a_chain_the_follower_folds_and_verify_accepts(pg_url: str) -> None:
    clock = ManualClock(1_700_000_000.0)
    leader, follower = PgJournal(pg_url, clock, node="a"), PgJournal(pg_url, clock, node="b")
    folded: list[Entry] = []
    heard: list[int] = []

    async def fold(entry: Entry) -> None:
        folded.append(entry)

    await leader.open()
    await follower.open(fold)
    follower.listen(lambda entry: heard.append(entry.seq))
    follower.follow()
    try:
        assert await leader.claim() == 1
        with pytest.raises(JournalError):
            follower.append(note("a follower never writes"), actor="operator:x")
        entries = [leader.append(note(f"n{i}"), actor="operator:li", incident_id="INC-1") for i in range(50)]
        await leader.durable(entries[-1].seq)
        await asyncio.wait_for(follower.durable(entries[-1].seq), 5)
        assert [e.seq for e in folded] == [e.seq for e in entries] == heard
        assert [e.hash for e in folded] == [e.hash for e in entries]
        first = folded[0]
        assert first.hash == entry_hash(first.prev_hash, first.seq, first.ts, first.kind, first.actor,
                                        first.incident_id, first.drill, first.payload_json, first.version)  # fmt: skip
        assert (await follower.verify()).entries == 50
        conn, read = await read_only(pg_url)
        try:
            assert (await verify_chain(read)).head_hash == entries[-1].hash
        finally:
            await conn.close()
    finally:
        await follower.close()
        await leader.close()


async def test_a_newer_term_fences_the_old_leader_out(pg_url: str) -> None:
    clock = ManualClock(1_700_000_000.0)
    old, new = PgJournal(pg_url, clock, node="old"), PgJournal(pg_url, clock, node="new")
    fenced: list[Fenced] = []
    await old.open()
    await new.open()
    old.on_fenced(fenced.append)
    try:
        await old.claim()
        kept = old.append(note("before the take-over"), actor="operator:li")
        await old.durable(kept.seq)
        assert await new.claim() == 2  # terminates the old writer's session and takes the term
        late = old.append(note("after the take-over"), actor="operator:li")
        with pytest.raises(JournalError):  # its session was cut; it reconnects, tries again, and is fenced
            await asyncio.wait_for(old.durable(late.seq), 10)
        for _ in range(100):
            if fenced:
                break
            await asyncio.sleep(0.05)
        assert fenced and isinstance(old.failure, Fenced)
        with pytest.raises(Fenced):
            old.append(note("and never again"), actor="operator:li")
        mine = new.append(note("the new leader's"), actor="operator:wang")
        await new.durable(mine.seq)
        conn = await asyncpg.connect(pg_url)
        try:
            rows = await conn.fetch("SELECT seq, term, payload FROM journal ORDER BY seq")
        finally:
            await conn.close()
        assert [(r["seq"], r["term"]) for r in rows] == [(1, 1), (2, 2)]
        assert "the new leader" in rows[1]["payload"]
        assert (await new.verify()).entries == 2
    finally:
        await new.close()
        await old.close()


async def test_the_journal_refuses_to_be_rewritten(pg_url: str) -> None:
    journal = PgJournal(pg_url, ManualClock(1_700_000_000.0), node="a")
    await journal.open()
    try:
        await journal.claim()
        entry = journal.append(note("kept"), actor="operator:li")
        await journal.durable(entry.seq)
        conn = await asyncpg.connect(pg_url)
        try:
            for sql in ("UPDATE journal SET actor = 'x'", "DELETE FROM journal", "TRUNCATE journal"):
                with pytest.raises(asyncpg.RaiseError, match="append-only"):
                    await conn.execute(sql)
        finally:
            await conn.close()
    finally:
        await journal.close()


async def test_a_follower_claims_after_its_idle_connections_were_cut(pg_url: str) -> None:
    """A server restart or a firewall cuts a follower's idle writer: its claim opens a fresh one."""
    clock = ManualClock(1_700_000_000.0)
    follower = PgJournal(pg_url, clock, node="b")
    await follower.open()
    follower.follow()
    try:
        admin = await asyncpg.connect(pg_url)
        try:
            cut = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert cut >= 2
        assert await asyncio.wait_for(follower.claim(), 15) == 1
        entry = follower.append(note("after the cut"), actor="operator:li")
        await asyncio.wait_for(follower.durable(entry.seq), 10)
    finally:
        await follower.close()


async def test_a_commit_whose_answer_was_lost_is_recognised_and_a_foreign_row_fences(pg_url: str) -> None:
    journal = PgJournal(pg_url, ManualClock(1_700_000_000.0), node="a")
    await journal.open()
    try:
        await journal.claim()
        entry = journal.append(note("committed"), actor="operator:li")
        await journal.durable(entry.seq)
        assert await journal._committed_already([entry])  # retried after a lost answer: not written twice
        other = Entry(entry.seq, entry.ts, entry.kind, entry.actor, None, False, entry.payload_json, entry.prev_hash,
                      "f" * 64, entry.fact)  # fmt: skip
        with pytest.raises(Fenced):
            await journal._committed_already([other])
        later = journal.append(note("not yet"), actor="operator:li")
        assert not await journal._committed_already([Entry(later.seq + 5, *later_fields(later))])
    finally:
        await journal.close()


def later_fields(entry: Entry) -> tuple[object, ...]:
    return (entry.ts, entry.kind, entry.actor, None, False, entry.payload_json, entry.prev_hash, entry.hash,
            entry.fact)  # fmt: skip
