"""Hotline callers for a drill: calls from known and unknown numbers, marked drill, each one recorded.

What it owns
    :func:`call_stream` places calls at a Poisson rate for a drill's duration through the telephony
    events API (:class:`simulators.traffic.HotlineCall`: ringing, answered, ended, all ``drill: true``) and
    keeps a :class:`CallRecord` of each: when it rang, whether the server took the "answered" event and
    which incident it opened, for the scorecard to find in the journal.

Rules
    1. Rates and durations are in drill time (per drill hour; ringing and talking times), run ``speedup``
       times faster.
    2. Bounded: no call starts after the drill's duration or after ``stop``; calls in progress end (a last
       "ended" event) when ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from simulators.traffic import Elder, HotlineCall, pause


@dataclass(slots=True)
class CallRecord:
    call_id: str
    caller: str
    known: bool
    placed_at: float  # wall clock
    answered: bool = False  # the server took the "answered" event
    incident_id: str | None = None  # the incident it opened (None: an enquiry, or an unknown caller's)

    def as_dict(self) -> dict[str, object]:
        return {
            "call_id": self.call_id, "known": self.known, "placed_at": round(self.placed_at, 4),
            "answered": self.answered, "incident_id": self.incident_id,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class CallPlan:
    per_hour: float
    unknown_share: float
    answer: tuple[float, float]  # drill seconds
    talk: tuple[float, float]
    speedup: float


async def call_stream(
    client: httpx.AsyncClient,
    elders: Sequence[Elder],
    plan: CallPlan,
    *,
    duration: float,
    seed: int,
    stop: asyncio.Event,
    records: list[CallRecord],
) -> None:
    """Place calls for ``duration`` drill seconds; append one record per call to ``records``."""
    if plan.per_hour <= 0 or not elders:
        return
    rng = random.Random(seed)
    phones = {str(e["phone"]) for e in elders if e.get("phone")}
    run = f"drill{seed}-{int(time.time())}"
    calls: set[asyncio.Task[None]] = set()
    begin, at = time.time(), 0.0
    while True:
        at += rng.expovariate(plan.per_hour / 3600.0)
        if at >= duration or await pause(stop, begin + at / plan.speedup - time.time()):
            break
        call = HotlineCall.draw(rng, elders, f"{run}-{len(records) + 1}", drill=True, unknown_share=plan.unknown_share)
        record = CallRecord(call.call_id, call.caller, call.caller in phones, time.time())
        records.append(record)
        task = asyncio.create_task(_play(client, call, record, plan, random.Random(rng.getrandbits(64)), stop))
        calls.add(task)
        task.add_done_callback(calls.discard)
    await asyncio.gather(*calls, return_exceptions=True)


async def _play(
    client: httpx.AsyncClient,
    call: HotlineCall,
    record: CallRecord,
    plan: CallPlan,
    rng: random.Random,
    stop: asyncio.Event,
) -> None:
    scale = 1.0 / plan.speedup
    answer_s = (plan.answer[0] * scale, plan.answer[1] * scale)
    talk_s = (plan.talk[0] * scale, plan.talk[1] * scale)
    answered = await call.play(client, rng, stop, answer_s=answer_s, talk_s=talk_s)
    if answered is not None:
        record.answered = True
        record.incident_id = answered.get("incident_id")
