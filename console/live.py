"""Live push: journal entries to operator consoles, offers and jobs to caregivers' phones.

What it owns
    One bus subscription for all consoles (:class:`ConsoleHub`): each entry is encoded to JSON once and the
    same text goes to every console's queue. One for all phones (:class:`CaregiverHub`): an entry about an
    offer or job becomes a message for that one responder only.

Rules
    0. A console receives only the entries its person may see (their scopes, their role's contents); the
       rest never leave the server. A skipped entry leaves a gap in the sequence numbers it sees, nothing else.
    1. No event is ever missed. A console that connects with ``after=SEQ`` gets the durable entries after
       SEQ from the journal up to the record's durable head when it connected, then the live stream, with no gap
       and no repeat: it is registered with the hub before that head is read (every entry durable later reaches
       its queue), and live entries at or below the last one sent are skipped. The catch-up never chases the
       head: under a steady flow of alarms it would read on for as long as they came.
    2. A console that falls behind is disconnected (close code 4000) instead of buffered without bound;
       it reconnects with the last sequence number it saw and catches up from the journal.
    2a. Messages about the server itself (``{"type": "status", "storage": ...}``: the disk is low or full, the
       journal cannot commit) go to every console as they change and on every connect while not ok; they carry
       no sequence number and never move a console's resume point.
    2b. A snapshot is bounded (dispatch.views ``SNAPSHOT_LIMITS``), built and encoded once per reach and moment
       (:class:`Snapshots`) and shared by the consoles of that reach connecting within ``SHARE_S``; it goes out
       in pages of at most ``PAGE_ITEMS`` items, the loop yielded between pages. A shared snapshot may be a
       moment older than the console's connection: the console catches up from the journal after it (rule 1).
    3. A phone gets its current offer or job in the first message after every (re)connect, so a dropped
       connection never loses an offer.
    4. A service order's news goes to its caregiver's phone as ``{"type": "orders", "order_id"}``, and to the
       caregiver who held it before (reassigned, rescheduled, delivered): the phone reads its list again over
       HTTP (GET /api/service-orders), as it does after every (re)connect. The message itself carries nothing
       about the elder.
    5. A console that asks for batches (``batch=1``) gets the catch-up and the live stream as frames whose text is
       a JSON array of the same messages, in order: a frame takes everything queued when the pump wakes, up to
       ``BATCH_MESSAGES`` messages or about ``BATCH_CHARS`` characters of text (under 1 MB), built by joining the
       encoded texts. Its resume point moves when the whole frame is sent. Snapshot pages stay single objects.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from dispatch.bus import Bus, SubscriptionLost
from dispatch.clock import Clock
from dispatch.entries import AssignmentFact, Located, Note, ServiceFact
from dispatch.journal import Entry
from dispatch.scopes import ALL, Reach
from dispatch.views import Views

log = logging.getLogger("anxin.live")

LAGGING = 4000
#: a batched frame's bounds (rule 5): the next frame takes the rest. Characters, not bytes: a quarter million
#: are at most about 1 MB of UTF-8 even in Chinese (3 bytes a character), a client's usual message limit
BATCH_MESSAGES = 1000
BATCH_CHARS = 250_000


Message = tuple[int, str] | None  # (seq, text); None ends the stream


class MessageQueue:
    """A bounded queue of messages for one reader, the pump: a deque and the reader's wake-up, without the
    bookkeeping of an ``asyncio.Queue`` (waiting putters, ``task_done``) that nobody here uses.
    ``put_nowait`` raises ``asyncio.QueueFull`` when ``maxsize`` messages are waiting (0: unbounded)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.items: collections.deque[Message] = collections.deque()  # oldest first; the pump may pop them
        self._waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self.items)

    def put_nowait(self, item: Message) -> None:
        if 0 < self.maxsize <= len(self.items):
            raise asyncio.QueueFull
        self.items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Message:
        while not self.items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.items.popleft()


class Outbox:
    """One connected client's queue of (seq, text) messages, and what its person may receive."""

    def __init__(self, maxsize: int, reach: Reach = ALL) -> None:
        self.queue = MessageQueue(maxsize)
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
        self.queue.items.clear()
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

    def __init__(self, bus: Bus, views: Views, clock: Clock, *, client_queue: int = 20_000) -> None:
        super().__init__(bus)
        self._views = views
        self.clients: set[Outbox] = set()
        self._client_queue = client_queue
        self.snapshots = Snapshots(views, clock)

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

    def announce(self, message: dict[str, object]) -> None:
        """A message about the server itself (the storage banner) to every console, outside the sequence."""
        text = json.dumps(message, ensure_ascii=False)
        for outbox in list(self.clients):
            outbox.put(0, text)


#: items (incidents, calls, responders) per snapshot message: about 200 KB, a few ms to encode
PAGE_ITEMS = 250
#: how long a built snapshot is handed to consoles of the same reach that connect after it (seconds)
SHARE_S = 1.0
_LISTS = ("incidents", "calls", "responders")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A console's first messages: ``pages`` of JSON text, as of journal entry ``seq``; ``held`` incidents and calls."""

    seq: int
    pages: tuple[str, ...]
    held: int


class Snapshots:
    """Snapshots built once per reach and moment, encoded page by page with the loop yielded between pages.

    The first page is ``{"type": "snapshot", "seq", "parts", "truncated", "incidents", "calls", "responders"}``;
    each further one ``{"type": "snapshot_part", "seq", "part", "incidents", "calls", "responders"}`` with the
    lists' next items (console/static/feed.js joins them). A reach's snapshot depends on the reach only
    (dispatch.views), so consoles of the same person and scopes share one; concurrent askers await one build.
    """

    def __init__(self, views: Views, clock: Clock, *, share_s: float = SHARE_S) -> None:
        self._views = views
        self._clock = clock
        self._share_s = share_s
        self._built: dict[Reach, tuple[float, asyncio.Task[Snapshot]]] = {}

    async def get(self, reach: Reach, head: int) -> Snapshot:
        """This reach's snapshot: one built within ``SHARE_S``, else a new one as of ``head`` (the journal's)."""
        now = self._clock.now()
        for key in [k for k, (at, _) in self._built.items() if now - at > self._share_s]:
            del self._built[key]
        known = self._built.get(reach)
        if known is None or (known[1].done() and known[1].exception() is not None):
            known = (now, asyncio.create_task(self._build(reach, head), name="snapshot"))
            self._built[reach] = known
        return await asyncio.shield(known[1])

    async def _build(self, reach: Reach, seq: int) -> Snapshot:
        whole = self._views.snapshot(seq, reach)  # one consistent moment: no await while it is built
        items = [(name, item) for name in _LISTS for item in whole[name]]
        parts = max(1, -(-len(items) // PAGE_ITEMS))
        pages = []
        for part in range(parts):
            if part:
                await asyncio.sleep(0)
            page: dict[str, Any] = {"type": "snapshot", "seq": seq, "parts": parts, "truncated": whole["truncated"]}
            if part:
                page = {"type": "snapshot_part", "seq": seq, "part": part + 1}
            chosen = items[part * PAGE_ITEMS : (part + 1) * PAGE_ITEMS]
            for name in _LISTS:
                page[name] = [item for kind, item in chosen if kind == name]
            pages.append(json.dumps(page, ensure_ascii=False))
        return Snapshot(seq, tuple(pages), len(whole["incidents"]) + len(whole["calls"]))


class CaregiverHub(Hub):
    def __init__(self, bus: Bus, views: Views) -> None:
        super().__init__(bus)
        self._views = views
        self.phones: dict[str, set[Outbox]] = {}
        self._holders: dict[str, str] = {}  # open order -> the caregiver whose phone was last told of it

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
        if isinstance(fact, ServiceFact):
            self._order_news(entry.seq, fact.order_id)
            return
        if not isinstance(fact, AssignmentFact):  # the facts about one offer or job, each naming its responder
            return
        if fact.responder_id not in self.phones:
            return
        message = self._views.phone_message(fact)
        if message is not None:
            self._send(fact.responder_id, entry.seq, message)

    def _order_news(self, seq: int, order_id: str) -> None:
        """Rule 4: the order's caregiver now, and the one it was with before, read their lists again."""
        holder = self._views.order_holder(order_id)
        before = self._holders.pop(order_id, None)
        if holder is not None:
            self._holders[order_id] = holder
        for responder_id in dict.fromkeys(r for r in (before, holder) if r is not None):
            self._send(responder_id, seq, {"type": "orders", "order_id": order_id})

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


def frames(texts: Iterable[str]) -> Iterator[str]:
    """Encoded messages joined into batched frames (rule 5): JSON arrays within the bounds, none empty."""
    chosen: list[str] = []
    size = 0
    for text in texts:
        chosen.append(text)
        size += len(text)
        if len(chosen) >= BATCH_MESSAGES or size >= BATCH_CHARS:
            yield "[" + ",".join(chosen) + "]"
            chosen, size = [], 0
    if chosen:
        yield "[" + ",".join(chosen) + "]"


async def pump(outbox: Outbox, send: Callable[[str], Awaitable[None]], *, after: int = 0, batch: bool = False) -> int:
    """Send queued messages until the client lags; returns the last seq sent (the resume point). With ``batch``,
    each frame is everything queued when the pump wakes, within the bounds of rule 5."""
    if batch:
        return await _pump_batches(outbox, send, after)
    last = after
    queue = outbox.queue
    while True:
        item = await queue.get()
        if item is None:
            return last
        seq, text = item
        if seq and seq <= last:
            continue
        await send(text)
        if seq > last:
            last = seq


async def _pump_batches(outbox: Outbox, send: Callable[[str], Awaitable[None]], last: int) -> int:
    queue = outbox.queue
    waiting = queue.items
    while True:
        item: Message = await queue.get()
        chosen: list[str] = []
        size, top = 0, last
        while item is not None:
            seq, text = item
            if not seq or seq > top:
                chosen.append(text)
                size += len(text)
                if seq > top:
                    top = seq
            if len(chosen) >= BATCH_MESSAGES or size >= BATCH_CHARS or not waiting:
                break
            item = waiting.popleft()
        if chosen:
            await send("[" + ",".join(chosen) + "]")
            last = top
        if item is None:
            return last
