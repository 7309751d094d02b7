"""The event bus: durable journal entries fanned out to whoever listens in this process.

What it owns
    Delivery of each entry, after it is durable, to every subscriber (the operator consoles' hub, the
    caregiver channel, reports). The journal calls :meth:`MemoryBus.publish`; subscribers read at their pace.

Rules
    1. Publishing never blocks and never awaits: the journal's writer must not wait for a slow reader.
    2. A subscriber that falls ``maxsize`` entries behind is dropped, not buffered without bound. It learns
       so from :class:`SubscriptionLost` with the last sequence number it got, and resumes from the
       journal, which holds everything. Nothing is lost; a slow console only reconnects.

The Redis backend (Streams with consumer groups) will implement the same two calls.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from dispatch.errors import AnxinError
from dispatch.journal import Entry


class SubscriptionLost(AnxinError):
    """The subscriber fell too far behind and was dropped; resume from ``last_seq`` via the journal."""

    def __init__(self, last_seq: int) -> None:
        super().__init__(f"subscriber dropped after seq {last_seq}; resume from the journal")
        self.last_seq = last_seq


class Subscription:
    def __init__(self, bus: MemoryBus, maxsize: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Entry | None] = asyncio.Queue(maxsize)
        self.last_seq = 0
        self.lost = False

    def _offer(self, entry: Entry) -> None:
        if self.lost:
            return
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            self.lost = True
            self._bus._drop(self)
            self._queue.get_nowait()  # make room for the end-of-stream marker
            self._queue.put_nowait(None)

    async def get(self) -> Entry:
        entry = await self._queue.get()
        if entry is None:
            raise SubscriptionLost(self.last_seq)
        self.last_seq = entry.seq
        return entry

    def get_nowait(self) -> Entry | None:
        """The next queued entry, or None when nothing is waiting."""
        try:
            entry = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if entry is None:
            raise SubscriptionLost(self.last_seq)
        self.last_seq = entry.seq
        return entry

    def close(self) -> None:
        self._bus._drop(self)


class Bus(Protocol):
    def publish(self, entry: Entry) -> None: ...

    def subscribe(self, maxsize: int = 10_000) -> Subscription: ...


class MemoryBus:
    """The embedded bus: one bounded queue per subscriber."""

    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []

    def publish(self, entry: Entry) -> None:
        for subscription in list(self._subscribers):
            subscription._offer(entry)

    def subscribe(self, maxsize: int = 10_000) -> Subscription:
        subscription = Subscription(self, maxsize)
        self._subscribers.append(subscription)
        return subscription

    def _drop(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

    def __len__(self) -> int:
        return len(self._subscribers)
