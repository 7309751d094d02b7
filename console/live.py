"""Live push: journal entries to operator consoles, offers and jobs to caregivers' phones.

What it owns
    One bus subscription for all consoles (:class:`ConsoleHub`): each entry is encoded to JSON once and the
    same text goes to every console's queue. One for all phones (:class:`CaregiverHub`): an entry about an
    offer or job becomes a message for that one responder only.

Rules
    0. A console receives only the entries its person may see (their scopes, their role's contents); the
       rest never leave the server. A skipped entry leaves a gap in the sequence numbers it sees, nothing else.
    1. No event is ever missed. A console that connects with ``after=SEQ`` gets every durable entry after
       SEQ from the journal, then the live stream, with no gap and no repeat: it is registered with the hub
       before reading the journal, and live entries at or below the last one sent are skipped.
    2. A console that falls behind is disconnected (close code 4000) instead of buffered without bound;
       it reconnects with the last sequence number it saw and catches up from the journal.
    3. A phone gets its current offer or job in the first message after every (re)connect, so a dropped
       connection never loses an offer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from dispatch.bus import Bus, SubscriptionLost
from dispatch.entries import AssignmentFact, Located, Note
from dispatch.journal import Entry
from dispatch.scopes import ALL, Reach
from dispatch.views import Views

log = logging.getLogger("anxin.live")

LAGGING = 4000


class Outbox:
    """One connected client's queue of (seq, text) messages, and what its person may receive."""

    def __init__(self, maxsize: int, reach: Reach = ALL) -> None:
        self.queue: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue(maxsize)
        self.lagging = False
        self.reach = reach

    def put(self, seq: int, text: str) -> None:
        if self.lagging:
            return
        try:
            self.queue.put_nowait((seq, text))
        except asyncio.QueueFull:
            self.close()

    def close(self) -> None:
        """Drop everything queued and end the stream: the client resumes from the last entry it received."""
        self.lagging = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class Hub:
    """Reads the bus in one task and hands each entry to :meth:`route`."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=type(self).__name__)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            subscription = self._bus.subscribe(maxsize=100_000)
            try:
                while True:
                    self.route(await subscription.get())
            except SubscriptionLost as lost:  # pragma: no cover - needs 100k entries unread
                log.error("%s fell behind at seq %d; clients will resume", type(self).__name__, lost.last_seq)
                self.lost()

    def route(self, entry: Entry) -> None:
        raise NotImplementedError

    def lost(self) -> None:
        raise NotImplementedError


class ConsoleHub(Hub):
    """Each entry goes to the consoles whose person may see it: their part of the network, the contents their
    role reads (see dispatch.scopes). Where an entry lies is worked out once per entry, not per console."""

    def __init__(self, bus: Bus, views: Views, *, client_queue: int = 20_000) -> None:
        super().__init__(bus)
        self._views = views
        self.clients: set[Outbox] = set()
        self._client_queue = client_queue

    def connect(self, reach: Reach) -> Outbox:
        outbox = Outbox(self._client_queue, reach)
        self.clients.add(outbox)
        return outbox

    def disconnect(self, outbox: Outbox) -> None:
        self.clients.discard(outbox)

    def route(self, entry: Entry) -> None:
        if not self.clients:
            return
        placed = self._views.entry_scope(entry)
        text = None
        for outbox in list(self.clients):
            if outbox.reach.sees(placed):
                text = text or entry.wire()
                outbox.put(entry.seq, text)

    def lost(self) -> None:
        for outbox in self.clients:
            outbox.close()


class CaregiverHub(Hub):
    def __init__(self, bus: Bus, views: Views) -> None:
        super().__init__(bus)
        self._views = views
        self.phones: dict[str, set[Outbox]] = {}

    def connect(self, responder_id: str) -> Outbox:
        outbox = Outbox(1000)
        self.phones.setdefault(responder_id, set()).add(outbox)
        return outbox

    def disconnect(self, responder_id: str, outbox: Outbox) -> None:
        self.phones.get(responder_id, set()).discard(outbox)

    def route(self, entry: Entry) -> None:
        fact = entry.fact
        if isinstance(fact, Note | Located) and entry.incident_id is not None:
            if isinstance(fact, Note) and not fact.shared:
                return
            for responder_id, job in self._views.job_updates(entry.incident_id):  # what they must know now
                self._send(responder_id, entry.seq, job)
            return
        if not isinstance(fact, AssignmentFact):  # the facts about one offer or job, each naming its responder
            return
        if fact.responder_id not in self.phones:
            return
        message = self._views.phone_message(fact)
        if message is not None:
            self._send(fact.responder_id, entry.seq, message)

    def _send(self, responder_id: str, seq: int, message: dict[str, object]) -> None:
        outboxes = self.phones.get(responder_id)
        if not outboxes:
            return
        text = json.dumps(message, ensure_ascii=False)
        for outbox in list(outboxes):
            outbox.put(seq, text)

    def lost(self) -> None:
        for outboxes in self.phones.values():
            for outbox in outboxes:
                outbox.close()


async def pump(outbox: Outbox, send: Callable[[str], Awaitable[None]], *, after: int = 0) -> int:
    """Send queued messages until the client lags; returns the last seq sent (the resume point)."""
    last = after
    while True:
        item = await outbox.queue.get()
        if item is None:
            return last
        seq, text = item
        if seq and seq <= last:
            continue
        await send(text)
        last = max(last, seq)
