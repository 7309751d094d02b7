"""Time, injected.

Everything in the core that needs "now" receives a :class:`Clock`. Production uses :class:`SystemClock`;
tests use :class:`ManualClock` and move time forward themselves, so "an offer expires after 45 s" is tested
in milliseconds. Times are UTC seconds since the epoch (floats); they are shown in the centre's time zone
only at the edges.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """UTC seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds

    def set(self, when: float) -> None:
        self._now = when


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
