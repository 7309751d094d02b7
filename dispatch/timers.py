"""Timers on an injected clock: a deadline per key, and "which are due now?".

What it owns
    The deadlines of the things that must not sit unseen: an alarm's answer target, an offer's expiry, a
    responder's position going stale. It does not sleep and does not read a clock: the caller passes
    ``now``. The runtime loop sleeps until :meth:`Timers.next_deadline`; tests move a ManualClock and call
    the engine's ``tick`` instead, so a 45 s expiry is tested in microseconds.

Rules
    Setting a key again replaces its deadline; cancelling an absent key is fine. A heap with lazy deletion
    keeps both O(log n).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable


class Timers:
    def __init__(self) -> None:
        self._deadlines: dict[Hashable, float] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._order = itertools.count()

    def set(self, key: Hashable, deadline: float) -> bool:
        """Set (or move) a key's deadline; True when the key had none."""
        old = self._deadlines.get(key)
        self._deadlines[key] = deadline
        if old is None or deadline < old:
            heapq.heappush(self._heap, (deadline, next(self._order), key))
        return old is None
        # a later deadline reuses the heap entry already there: it is re-queued when it surfaces, so a
        # device checking in every few seconds keeps one entry in the heap, not one per check-in

    def cancel(self, key: Hashable) -> None:
        self._deadlines.pop(key, None)

    def deadline(self, key: Hashable) -> float | None:
        return self._deadlines.get(key)

    def pop_due(self, now: float) -> list[Hashable]:
        """Keys whose deadline is at or before ``now``, earliest first; they are removed."""
        due: list[Hashable] = []
        while self._heap and self._heap[0][0] <= now:
            queued, _, key = heapq.heappop(self._heap)
            current = self._deadlines.get(key)
            if current is None or current < queued:
                continue  # cancelled, or an earlier entry for it is (or was) in the heap
            if current > queued:
                heapq.heappush(self._heap, (current, next(self._order), key))  # moved later meanwhile
                continue
            del self._deadlines[key]
            due.append(key)
        return due

    def next_deadline(self) -> float | None:
        while self._heap:
            queued, _, key = self._heap[0]
            current = self._deadlines.get(key)
            if current == queued:
                return queued
            heapq.heappop(self._heap)
            if current is not None and current > queued:
                heapq.heappush(self._heap, (current, next(self._order), key))
        return None

    def __len__(self) -> int:
        return len(self._deadlines)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._deadlines
