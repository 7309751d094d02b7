"""The way into the core for device events: a priority queue, so SOS beats routine traffic.

What it owns
    Ordering and backpressure between the transports and the engine. Transports :meth:`Intake.process`
    decoded events and get back the journal sequence number to await before acknowledging. One worker takes
    the most urgent waiting item first (SOS, fall, medical, fire before heartbeats, positions and mains-loss
    reports), so under a storm of routine frames an alarm is journaled and pushed before the backlog.

Rules
    1. Bounded. When ``maxsize`` items wait, :meth:`process` waits too; a TCP transport awaiting it stops
       reading its socket, which is the backpressure the devices feel (they wait for their ACK).
    2. Nothing is acknowledged here: the transport awaits durability of the returned seq, then replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter

from dispatch.engine import Engine
from gateway.events import Decoded, DeviceEvent

URGENT, ROUTINE = 0, 1


_Item = tuple[int, int, tuple[DeviceEvent, ...], "asyncio.Future[int]"]


class Intake:
    def __init__(self, engine: Engine, *, maxsize: int = 10_000) -> None:
        self._engine = engine
        self._queue: asyncio.PriorityQueue[_Item] = asyncio.PriorityQueue(maxsize)
        self._order = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self.counters: Counter[str] = Counter()

    def start(self) -> None:
        self._task = asyncio.create_task(self._work(), name="gateway-intake")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def process(self, decoded: Decoded) -> int:
        """Queue one frame's events by urgency; return the seq to await before replying."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        rank = URGENT if decoded.urgent else ROUTINE
        await self._queue.put((rank, next(self._order), decoded.events, future))
        return await future

    def waiting(self) -> int:
        return self._queue.qsize()

    async def _work(self) -> None:
        while True:
            rank, _, events, future = await self._queue.get()
            try:
                seq = 0
                for event in events:
                    seq = await self._engine.report_device(event)
                self.counters["urgent" if rank == URGENT else "routine"] += 1
            except Exception as exc:  # the journal failed: the transport must not acknowledge
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(seq)
