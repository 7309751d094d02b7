"""The disk under the service record, watched: devices and people are told the truth before and when it fails.

What it owns
    The storage state of the data folder: ``ok``; ``low`` (free space under the reserve: still working, and
    still time to act); ``full`` (free space under the floor, or the journal cannot commit). :class:`StorageWatch`
    reads the free space every ``every_s`` seconds, folds in the journal's failure, and tells its listeners (the
    consoles' banner) when the state changes.

Rules
    1. A receiver that cannot record must not look healthy. While the state is ``full``, link tests and
       heartbeats are not acknowledged (the intake refuses routine device traffic, :mod:`dispatch.intake`), so
       transmitters switch to their backup path, as DC-09 expects of a receiver that cannot take alarms.
    2. Alarms are always tried: a commit may still fit in the space the WAL already holds, and an alarm recorded
       is worth more than the space. Only what the journal truly committed is acknowledged.
    3. Recovery needs no restart. When free space is back above the floor, the watch asks the journal to try its
       kept batch again at once (:meth:`~dispatch.journal.SqliteJournal.retry`); the journal works again when it
       commits, and the state follows.
    4. A change of state is logged once and announced once; a steady state is logged never (a full disk must
       not fill the log too).

Never
    Never acknowledge a link test while the journal is failing; never write to the disk to find out whether it
    is full (reading the free space costs nothing; the journal's own commits are the write probe).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dispatch.clock import Clock
from dispatch.journal import Journal

log = logging.getLogger(__name__)

State = Literal["ok", "low", "full"]
MB = 1024 * 1024


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the file system holding ``path``."""
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


@dataclass(frozen=True, slots=True)
class Storage:
    """What the watch last saw: the state, the free bytes, and why (for the banner and ``/healthz``)."""

    state: State
    free: int
    reason: str
    since: float  # when the state began

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "free_mb": round(self.free / MB, 1), "reason": self.reason, "since": self.since}


class StorageWatch:
    def __init__(
        self,
        path: Path,
        journal: Journal,
        clock: Clock,
        *,
        reserve_bytes: int,
        floor_bytes: int,
        every_s: float = 2.0,
        free: Callable[[Path], int] = free_bytes,
    ) -> None:
        self._path = path
        self._journal = journal
        self._clock = clock
        self._reserve = reserve_bytes
        self._floor = floor_bytes
        self._every_s = every_s
        self._free = free
        self._listeners: list[Callable[[Storage], None]] = []
        self.current = Storage("ok", 0, "", clock.now())
        journal.on_recovered(self._recheck)

    @property
    def full(self) -> bool:
        """Rule 1: nothing but alarms is taken in (checked on every routine frame: no system call here)."""
        return self.current.state == "full" or self._journal.failure is not None

    def listen(self, listener: Callable[[Storage], None]) -> None:
        self._listeners.append(listener)

    def _recheck(self) -> None:
        self.check()

    def check(self) -> Storage:
        """Read the free space and the journal's health now; announce a change (rule 4)."""
        try:
            free = self._free(self._path)
        except OSError as exc:  # the folder itself is gone or unreadable: as bad as full
            free, unreadable = 0, str(exc)
        else:
            unreadable = ""
        failure = self._journal.failure
        state: State
        if failure is not None:
            state, reason = "full", f"the journal cannot commit: {failure}"
        elif unreadable:
            state, reason = "full", f"the data folder cannot be read: {unreadable}"
        elif free < self._floor:
            state, reason = "full", f"{free / MB:.1f} MB free, under the floor of {self._floor / MB:.0f} MB"
        elif free < self._reserve:
            state, reason = "low", f"{free / MB:.0f} MB free, under the reserve of {self._reserve / MB:.0f} MB"
        else:
            state, reason = "ok", ""
        if failure is not None and free >= self._floor:
            self._journal.retry()  # rule 3: space is back (or never was the trouble): try the kept batch now
        changed = state != self.current.state
        since = self._clock.now() if changed else self.current.since
        seen = self.current = Storage(state, free, reason, since)
        if changed:
            self._announce(seen)
        return seen

    def _announce(self, seen: Storage) -> None:
        if seen.state == "full":
            log.error(
                "storage: FULL (%s): link tests and heartbeats are not acknowledged, alarms still tried", seen.reason
            )
        elif seen.state == "low":
            log.warning("storage: low (%s): free space before the journal stops", seen.reason)
        else:
            log.warning("storage: ok again (%.0f MB free)", seen.free / MB)
        for listener in self._listeners:
            listener(seen)

    async def run(self) -> None:
        while True:
            self.check()
            await asyncio.sleep(self._every_s)
