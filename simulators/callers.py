"""Hotline callers for a drill: calls from known and unknown numbers, each with a script, marked drill, recorded.

What it owns
    :func:`call_stream` places calls at a Poisson rate for a drill's duration through the telephony
    events API (:class:`simulators.traffic.HotlineCall`: ringing, answered, ended, all ``drill: true``).
    Each call has a script (:mod:`simulators.scripts`: what the caller wants and says, and where an
    unknown caller says they are), put on the drill's switchboard before the phone rings, for the
    simulated operators to hear. A :class:`CallRecord` of each keeps when it rang, whether the server took
    the "answered" event, and the call's card: what the operator classified it as, which incident that
    opened and how an unknown caller was placed, for the scorecard to compare with the journal.

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

from simulators.api import pause
from simulators.scripts import CallScript, Card, Switchboard
from simulators.traffic import Elder, HotlineCall


@dataclass(slots=True)
class CallRecord:
    call_id: str
    caller: str
    placed_at: float  # wall clock
    card: Card  # the script, and what the operator made of it (filled in by the operator)
    answered: bool = False  # the server took the "answered" event

    @property
    def script(self) -> CallScript:
        return self.card.script

    @property
    def known(self) -> bool:
        """The caller's number is the elder's own."""
        return self.card.script.known

    @property
    def incident_id(self) -> str | None:
        """The incident the operator's classification opened or joined (None: not an emergency, or not yet)."""
        return self.card.incident_id

    def as_dict(self) -> dict[str, object]:
        script = self.card.script
        return {
            "call_id": self.call_id, "known": self.known, "placed_at": round(self.placed_at, 4),
            "answered": self.answered, "script": script.kind, "alarm_type": script.alarm_type,
            "classified": self.card.classified, "incident_id": self.incident_id, "placed_by": self.card.placed_by,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class CallPlan:
    per_hour: float
    unknown_share: float
    answer: tuple[float, float]  # drill seconds
    talk: tuple[float, float]
    speedup: float
    emergency_share: float = 0.25


async def call_stream(
    client: httpx.AsyncClient,
    elders: Sequence[Elder],
    plan: CallPlan,
    *,
    duration: float,
    seed: int,
    stop: asyncio.Event,
    records: list[CallRecord],
    switchboard: Switchboard,
) -> None:
    """Place calls for ``duration`` drill seconds; append one record per call to ``records``."""
    if plan.per_hour <= 0 or not elders:
        return
    rng = random.Random(seed)
    run = f"drill{seed}-{int(time.time())}"
    calls: set[asyncio.Task[None]] = set()
    begin, at = time.time(), 0.0
    while True:
        at += rng.expovariate(plan.per_hour / 3600.0)
        if at >= duration or await pause(stop, begin + at / plan.speedup - time.time()):
            break
        call = HotlineCall.draw(
            rng, elders, f"{run}-{len(records) + 1}", drill=True, unknown_share=plan.unknown_share,
            emergency_share=plan.emergency_share,
        )  # fmt: skip
        record = CallRecord(call.call_id, call.caller, time.time(), switchboard.put(call.call_id, call.script))
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
    record.answered = answered is not None
