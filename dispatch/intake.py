"""The one way in for everything that raises alarms: device reports, alarms over HTTP, hotline call events.

What it owns
    Ordering, backpressure and durability between the sources and the engine. Every source -- the gateway's
    transports, ``POST /api/alarms``, the hotline's call events -- makes one awaitable call here, and that call
    returns only when what it caused is durable in the journal: the gateway then ACKs, the API answers 201.
    Routine device check-ins that need nothing written take a quick path that answers at once.

Rules
    1. Alarms beat routine traffic, whatever their source. One worker takes the most urgent waiting item
       first: SOS, fall, medical and fire alarms (``URGENT``), then the other alarms a person needs to see
       to -- an inactivity alarm, a hotline call (``PEOPLE``) -- then device routine: positions, health
       readings, technical conditions, restores (``ROUTINE``). Within a rank, first come, first served.
    2. Bounded, rank by rank. When ``maxsize`` items of one rank wait, submitting one more of that rank waits
       too; a TCP transport awaiting it stops reading its socket, which is the backpressure devices feel (they
       wait for their ACK), and an HTTP client waits for its answer. A full rank never holds up another: an
       SOS does not queue behind ten thousand mains-loss reports waiting for room.
    3. The worker never waits for a disk. It runs one item against the engine (which appends and applies
       under its lock) and moves on; the submitter awaits durability of what the item wrote, so a burst of
       items shares one commit.
    4. A refused item (an unknown elder, a bad alarm type) raises to its submitter and writes nothing; a
       journal that cannot commit raises :class:`~dispatch.errors.JournalError` to every submitter, so nothing
       is acknowledged that is not recorded.
    5. While the storage is full or the journal cannot commit (:mod:`dispatch.storage`), device traffic without an
       alarm -- link tests, heartbeats, positions, readings, restores -- is refused with
       :class:`~dispatch.errors.JournalError`, even when it would write nothing: a receiver that cannot record an
       alarm must not look healthy to a transmitter, which then uses its backup path. Alarms of every kind (a
       technical one and a tamper alarm too) are still tried: only what truly commits is acknowledged.
    6. A device's alarm is acknowledged once its incident is durable, not its offers: the worker opens the
       incidents of device reports with their first offers held back (engine rule 6), lets the journal's writer
       take the openings to the disk, and ranks and offers while the disk works. Alarms waiting behind it are
       opened first (up to ``OPEN_AHEAD`` items), so a burst is acknowledged in one commit and ranked after;
       anything else (a call, routine traffic, an alarm over HTTP) finds every incident offered before it. An
       alarm over HTTP and a call's incident return with their offers made and durable, as before: their
       senders are people and programs that read the incident next, not a transmitter waiting for its ACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from dispatch.clock import Clock
from dispatch.commands import AlarmRequest, CallEvent, CallOutcome, Opened
from dispatch.devices import DeviceReport
from dispatch.engine import Engine
from dispatch.errors import JournalError
from dispatch.journal import Journal
from dispatch.triage import ALARM_RULES, URGENT_TYPES

URGENT, PEOPLE, ROUTINE = 0, 1, 2
RANK_NAMES = ("urgent", "people", "routine")
#: rule 6: incidents opened ahead of their first offers while urgent alarms wait behind them
OPEN_AHEAD = 32

T = TypeVar("T")
_Work = Callable[[], Awaitable[Any]]
_Item = tuple[int, int, bool, _Work, "asyncio.Future[Any]"]  # rank, order, a device's (rule 6), work, its answer
log = logging.getLogger("anxin.intake")


class StorageHealth(Protocol):
    @property
    def full(self) -> bool: ...


class _Healthy:
    full = False


class DeviceIntake(Protocol):
    """What a device transport may ask of the core (with a key lookup, all it gets)."""

    def checkin(self, reports: Sequence[DeviceReport], now: float) -> bool: ...

    async def devices(self, reports: Sequence[DeviceReport]) -> None: ...


class Intake:
    def __init__(
        self,
        engine: Engine,
        journal: Journal,
        clock: Clock,
        *,
        maxsize: int = 10_000,
        storage: StorageHealth | None = None,
    ) -> None:
        self._engine = engine
        self._journal = journal
        self._storage: StorageHealth = storage or _Healthy()
        self._clock = clock
        self._queue: asyncio.PriorityQueue[_Item] = asyncio.PriorityQueue()
        self._room = [asyncio.Semaphore(maxsize) for _ in RANK_NAMES]  # places left in each rank (rule 2)
        self._order = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self.counters: Counter[str] = Counter()
        self._ranked = [0 for _ in RANK_NAMES]  # items waiting in each rank, for the operations' metrics
        self._urgent_devices = 0  # urgent device items waiting: incidents are opened ahead of offers for them

    def start(self) -> None:
        self._task = asyncio.create_task(self._work(), name="intake")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def running(self) -> bool:
        """Whether the worker that records the queued alarms runs (for readiness)."""
        return self._task is not None and not self._task.done()

    def waiting(self) -> int:
        return self._queue.qsize()

    def waiting_by_rank(self) -> dict[str, int]:
        """Items waiting for the worker, by rank name (``urgent``, ``people``, ``routine``)."""
        return dict(zip(RANK_NAMES, self._ranked, strict=True))

    # -- the sources ------------------------------------------------------------------------------

    def checkin(self, reports: Sequence[DeviceReport], now: float) -> bool:
        """The quick path: True when every report, received at ``now``, is a routine check-in that needs nothing
        written (then it is noted, and the transport answers at once)."""
        if self._journal.failure is not None or self._storage.full:
            return False  # a receiver that cannot record anything must not look healthy (rule 5)
        return self._engine.supervision.checkin(reports, now)

    async def devices(self, reports: Sequence[DeviceReport]) -> None:
        """Record what devices said (one frame, or every frame of one read); returns once durable."""
        if not reports:
            return
        rank = _device_rank(reports)
        if self._storage.full and not any(r.kind == "alarm" for r in reports):  # rule 5: the device tries its backup
            self.counters["refused_storage"] += 1
            raise self._journal.failure or JournalError("storage full: routine device traffic is not taken in")
        await self._submit(rank, lambda: self._engine.device_reports(reports, offers_later=True), later=True)

    async def alarm(self, request: AlarmRequest) -> Opened:
        """An alarm raised over HTTP; returns once the incident (or the attachment) is durable."""
        rank = URGENT if request.alarm_type in URGENT_TYPES else PEOPLE
        opened: Opened = await self._submit(rank, lambda: self._engine.alarm(request))
        return opened

    async def call(self, event: CallEvent) -> CallOutcome:
        """A hotline call event; returns once what it caused is durable."""
        rank = URGENT if event.alarm_type in URGENT_TYPES else PEOPLE
        outcome: CallOutcome = await self._submit(rank, lambda: self._engine.call_event(event))
        return outcome

    # -- the queue --------------------------------------------------------------------------------

    @property
    def waiting_offers(self) -> int:
        """Incidents opened from device reports whose first offers are not made yet (rule 6)."""
        return self._engine.waiting_offers

    async def _submit(self, rank: int, work: Callable[[], Awaitable[T]], *, later: bool = False) -> T:
        """Queue ``work`` at ``rank`` and return its result once durable; ``later``: a device's reports, whose
        incidents' first offers may follow the acknowledgement (rule 6)."""
        if self._journal.failure is not None:  # even an item that writes nothing must not be acknowledged
            raise self._journal.failure
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._room[rank].acquire()  # released by the worker when it takes the item
        self._queue.put_nowait((rank, next(self._order), later, work, future))
        self._ranked[rank] += 1
        if later and rank == URGENT:
            self._urgent_devices += 1
        result, seq = await future
        await self._journal.durable(seq)
        return result  # type: ignore[no-any-return]

    async def _work(self) -> None:
        engine = self._engine
        held = 0  # items taken since the first of the incidents waiting for their offers was opened
        while True:
            rank, _, later, work, future = await self._queue.get()
            self._room[rank].release()
            self._ranked[rank] -= 1
            if later and rank == URGENT:
                self._urgent_devices -= 1
            if engine.waiting_offers and not later:  # an alarm over HTTP, a call: every incident is offered first
                await self._offer_opened()
                held = 0
            if not future.done():  # else the submitter went away (its client hung up): nothing to do
                try:
                    result = await work()
                except Exception as exc:  # refused, or the journal failed: the submitter must not acknowledge
                    if not future.done():
                        future.set_exception(exc)
                else:
                    self.counters[RANK_NAMES[rank]] += 1
                    if not future.done():
                        future.set_result((result, self._journal.head_seq))
            if engine.waiting_offers:
                held += 1
                if held >= OPEN_AHEAD or not self._urgent_devices:
                    await self._offer_opened()
                    held = 0

    async def _offer_opened(self) -> None:
        """Rule 6: the openings go to the journal's writer (one turn of the loop), then the offers are made. Never
        raises: the worker serves every next item whatever happens to one incident's offers."""
        await asyncio.sleep(0)
        try:
            await self._engine.offer_opened()
        except JournalError:
            pass  # nothing is written until it works again: offered then (Engine._offer_after_recovery)
        except Exception:
            log.exception("intake: the first offers of incidents just opened failed")


def _device_rank(reports: Sequence[DeviceReport]) -> int:
    """URGENT for an SOS, fall, medical or fire alarm; PEOPLE for another alarm a person must see to; else ROUTINE."""
    rank = ROUTINE
    for report in reports:
        if report.kind == "alarm" and report.alarm_type is not None:
            if report.alarm_type in URGENT_TYPES:
                return URGENT
            if report.alarm_type in ALARM_RULES and not ALARM_RULES[report.alarm_type].technical:
                rank = PEOPLE
    return rank
