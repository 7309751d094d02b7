"""The storage watch on a real journal: its states, one announcement per change, and what intake takes in."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from dispatch.clock import ManualClock
from dispatch.core import Core
from dispatch.devices import DeviceReport
from dispatch.errors import JournalError
from dispatch.storage import MB, Storage, StorageWatch
from tests.conftest import engine_of


class Disk:
    """The free space a watch reads: set by the test."""

    def __init__(self, free: int) -> None:
        self.free = free

    def __call__(self, path: Path) -> int:
        return self.free


def watch_of(core: Core, disk: Disk) -> tuple[StorageWatch, list[Storage]]:
    assert isinstance(core.clock, ManualClock)
    watch = StorageWatch(
        core.settings.data, core.journal, core.clock, reserve_bytes=100 * MB, floor_bytes=10 * MB, free=disk
    )
    heard: list[Storage] = []
    watch.listen(heard.append)
    core.intake._storage = watch  # the watch the core would have built, reading the test's disk
    return watch, heard


async def test_states_follow_the_free_space_and_each_change_is_announced_once(core: Core) -> None:
    disk = Disk(500 * MB)
    watch, heard = watch_of(core, disk)
    assert watch.check().state == "ok" and heard == []
    disk.free = 50 * MB
    watch.check()
    watch.check()
    assert [s.state for s in heard] == ["low"] and not watch.full
    disk.free = 1 * MB
    watch.check()
    assert watch.full and heard[-1].state == "full" and "under the floor" in heard[-1].reason
    disk.free = 500 * MB
    watch.check()
    assert [s.state for s in heard] == ["low", "full", "ok"]
    assert heard[-1].as_dict()["free_mb"] == 500.0


async def test_a_full_disk_refuses_link_tests_but_still_tries_alarms(core: Core) -> None:
    disk = Disk(1 * MB)
    watch, _ = watch_of(core, disk)
    watch.check()
    link = DeviceReport("sia-dc09", "1234", "checkin", "NULL")
    assert not core.intake.checkin([link], core.clock.now())  # not the quick path...
    with pytest.raises(JournalError, match="storage full"):
        await core.intake.devices([link])  # ...and not acknowledged on the full path either
    sos = DeviceReport("sia-dc09", "1234", "alarm", "CID:1101", alarm_type="sos", dedup="sos-1")
    await core.intake.devices([sos])  # the journal still commits: the alarm is recorded and may be acknowledged
    assert any(i.alarm_type == "sos" for i in engine_of(core).state.incidents.values())
    disk.free = 500 * MB
    watch.check()
    assert core.intake.checkin([link], core.clock.now())


async def test_a_failing_journal_is_full_whatever_the_free_space_and_space_back_asks_for_a_retry(
    core: Core,
) -> None:
    disk = Disk(500 * MB)
    watch, heard = watch_of(core, disk)
    blocker = sqlite3.connect(core.settings.db_path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # the commit fails, as on a full disk
    journal = core.journal
    await journal._writer.execute("PRAGMA busy_timeout = 0")  # type: ignore[attr-defined]
    with pytest.raises(JournalError):
        await core.intake.devices([DeviceReport("sia-dc09", "1234", "alarm", "CID:1101", alarm_type="sos")])
    assert watch.full and watch.check().state == "full" and "cannot commit" in heard[-1].reason
    blocker.rollback()
    blocker.close()
    for _ in range(200):  # every check with space asks the journal to try its kept batch again
        if watch.check().state == "ok":
            break
        await asyncio.sleep(0.02)
    assert [s.state for s in heard] == ["full", "ok"] and journal.failure is None
