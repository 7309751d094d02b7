"""Demo traffic: alarms and hotline calls raised against a running Anxin server.

What it owns
    :func:`alarm_stream` raises alarms for registered elders at a Poisson rate with the mix a community
    service centre sees (mostly SOS presses, then falls), now and then a hotline call that rings, is
    answered and ends (:class:`HotlineCall`). Each call has a script (:mod:`simulators.scripts`): most
    callers want a service or have a question, a few are emergencies; the script goes on the switchboard
    before the phone rings, for the simulated operator (:mod:`simulators.bot` in the demo,
    :mod:`simulators.operators` in a drill) to hear and classify. When the server's hotline events take the
    caller's words (an optional ``words`` field, :func:`takes_words`), the "answered" event carries them,
    so that a person at the console reads what the simulated caller says.

Rules
    1. Network only: the HTTP API with a bearer token (:mod:`simulators.api`: retried, never given up on).
    2. Every wait watches ``stop``, so a stream ends within moments of it being set.
    3. One ``random.Random`` per stream (alarms, calls), from the seed, draws every choice, so a seed gives
       the same sequence of elders, alarm types and call scripts (not the same timing, which depends on the
       server).

Never
    Never import the server's packages: this is a client like any other.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from simulators.api import RETRY_MAX_S, Refused, api_client, call_api, pause
from simulators.bot import SETTLED_OUTCOMES, TECHNICAL_TYPES, operator_bot
from simulators.scripts import SWITCHBOARD, CallScript, Elder, Switchboard, draw_script

__all__ = [
    "SETTLED_OUTCOMES", "TECHNICAL_TYPES", "Elder", "HotlineCall", "alarm_stream", "fetch_elders", "operator_bot",
]  # fmt: skip

log = logging.getLogger("anxin.sim.traffic")


ALARM_MIX: tuple[tuple[str, float], ...] = (
    ("sos", 45.0),
    ("fall", 20.0),
    ("medical", 10.0),
    ("inactivity", 10.0),
    ("low_battery", 10.0),
    ("test", 5.0),
)
CALL_SHARE = 0.2  # of the stream's events, hotline calls (the demo: 0.4 a minute) instead of device alarms
UNKNOWN_CALLER_SHARE = 0.25  # of calls, from a number not in the registry
EMERGENCY_SHARE = 0.25  # of calls, an emergency (the rest: services, questions, wrong numbers, silence)
HOTLINE_LINE = "12349"  # the national elderly service hotline number
WORDS_FIELD = "words"  # the hotline event's optional field for what the caller says, when the server has it
AWAY_FROM_HOME_SHARE = 0.3  # of device alarms, sent with a GPS fix away from home

# -- alarms and calls ---------------------------------------------------------------------------------

#: places the calls of a stream elsewhere (on a PBX): (rng, elders, calls a minute, stop)
Ringer = Callable[[random.Random, list[Elder], float, asyncio.Event], Coroutine[Any, Any, None]]


async def alarm_stream(
    base_url: str,
    token: str,
    *,
    rate_per_min: float,
    seed: int,
    stop: asyncio.Event,
    drill: bool = False,
    switchboard: Switchboard = SWITCHBOARD,
    ring: Ringer | None = None,
) -> None:
    """Raise alarms and hotline calls at ``rate_per_min`` on average until ``stop`` is set: ``CALL_SHARE`` of
    it calls, the rest alarms, two independent streams (so that calls come from the start, not whenever one
    seeded draw happens to make one); each call's script goes on ``switchboard`` (by default the one the
    demo's operator bot listens to). ``ring``: the calls are placed on a PBX instead (simulators.pbxcalls),
    which the server follows; else their events are posted (``POST /api/hotline/events``)."""
    if rate_per_min <= 0:
        raise ValueError("rate_per_min must be positive")
    run = f"sim{seed}-{int(time.time())}"  # call ids must not repeat across runs
    async with api_client(base_url, token) as client:
        elders = await fetch_elders(client, stop)
        if not elders:
            log.error("no elders registered (or stopped before the list came); no traffic")
            return
        words = await takes_words(client)
        log.info("alarm stream: %d elders, %.1f events/min (%.2f calls), drill=%s, callers' words sent: %s",
                 len(elders), rate_per_min, rate_per_min * CALL_SHARE, drill, words)  # fmt: skip
        alarms_rng, calls_rng = random.Random(seed), random.Random(f"{seed}/calls")
        async with asyncio.TaskGroup() as streams:
            streams.create_task(_alarms(client, alarms_rng, elders, rate_per_min * (1 - CALL_SHARE), stop, drill))
            if ring is not None:
                streams.create_task(ring(calls_rng, elders, rate_per_min * CALL_SHARE, stop))
            else:
                calls = _Hotline(run, calls_rng, elders, drill, words, switchboard)
                streams.create_task(calls.ring(client, rate_per_min * CALL_SHARE, stop))


async def _alarms(
    client: httpx.AsyncClient, rng: random.Random, elders: list[Elder], per_min: float, stop: asyncio.Event, drill: bool
) -> None:
    while not await pause(stop, rng.expovariate(per_min / 60.0)):
        await raise_alarm(client, rng, elders, stop=stop, drill=drill)


@dataclass(slots=True)
class _Hotline:
    run: str
    rng: random.Random
    elders: list[Elder]
    drill: bool
    words: bool
    switchboard: Switchboard

    async def ring(self, client: httpx.AsyncClient, per_min: float, stop: asyncio.Event) -> None:
        calls: set[asyncio.Task[dict[str, Any] | None]] = set()
        count = 0
        while not await pause(stop, self.rng.expovariate(per_min / 60.0)):
            count += 1
            call = HotlineCall.draw(self.rng, self.elders, f"{self.run}-{count}", drill=self.drill, words=self.words)
            self.switchboard.put(call.call_id, call.script)
            task = asyncio.create_task(call.play(client, self.rng, stop))
            calls.add(task)
            task.add_done_callback(calls.discard)
        await asyncio.gather(*calls, return_exceptions=True)


async def fetch_elders(client: httpx.AsyncClient, stop: asyncio.Event) -> list[Elder]:
    while True:
        try:
            answer = await call_api(client, "GET", "/api/elders", stop=stop, params={"limit": 5000})
        except Refused as refused:
            log.error("cannot list elders: %s; trying again", refused)
            if await pause(stop, RETRY_MAX_S):
                return []
            continue
        if answer is None:
            return []
        elders: list[Elder] = answer["elders"]
        return elders


async def takes_words(client: httpx.AsyncClient) -> bool:
    """Whether the server's hotline events take the caller's words (``words`` in its published schema);
    False when it does not say (the events refuse fields they do not know)."""
    try:
        response = await client.get("/openapi.json")
        schema = response.json()["components"]["schemas"]["HotlineEventIn"]["properties"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return False
    return WORDS_FIELD in schema


def pick_alarm_type(rng: random.Random) -> str:
    kinds = [kind for kind, _ in ALARM_MIX]
    weights = [weight for _, weight in ALARM_MIX]
    return rng.choices(kinds, weights=weights)[0]


def alarm_body(rng: random.Random, elder: Elder, *, drill: bool) -> dict[str, Any]:
    """An alarm for ``elder``; some come with a GPS fix a few hundred metres from home (a walk)."""
    alarm_type = pick_alarm_type(rng)
    body: dict[str, Any] = {"elder_id": elder["elder_id"], "alarm_type": alarm_type, "drill": drill}
    near_home = elder.get("lat") is not None and elder.get("lon") is not None
    if near_home and alarm_type in ("sos", "fall") and rng.random() < AWAY_FROM_HOME_SHARE:
        body["lat"] = round(elder["lat"] + rng.uniform(-0.003, 0.003), 6)
        body["lon"] = round(elder["lon"] + rng.uniform(-0.003, 0.003), 6)
    if alarm_type == "test":
        body["note"] = "routine device test"
    return body


async def raise_alarm(
    client: httpx.AsyncClient,
    rng: random.Random,
    elders: Sequence[Elder],
    *,
    stop: asyncio.Event,
    drill: bool,
) -> None:
    elder = rng.choice(elders)
    body = alarm_body(rng, elder, drill=drill)
    try:
        answer = await call_api(client, "POST", "/api/alarms", stop=stop, body=body)
    except Refused as refused:
        log.warning("alarm %s for %s refused: %s", body["alarm_type"], elder["elder_id"], refused)
        return
    if answer is not None:
        verb = "attached to" if answer.get("attached") else "opened"
        log.info(
            "%s alarm for %s %s %s (P%s)",
            body["alarm_type"],
            elder["elder_id"],
            verb,
            answer["incident_id"],
            answer["priority"],
        )


@dataclass(frozen=True, slots=True)
class HotlineCall:
    """One call to the hotline: it rings, is answered a few seconds later, and ends after a talk.

    The telephony says whether a call that ends unanswered should open an incident (``open_incident``, on
    for the hotline: an elder who called gets called back); what an answered call is about, only the
    operator who listens to the ``script`` can say. With ``words`` the "answered" event carries what the
    caller says (the script's words), for a person at the console to read.
    """

    call_id: str
    caller: str
    script: CallScript
    drill: bool
    open_incident: bool = True
    words: bool = False

    @classmethod
    def draw(
        cls,
        rng: random.Random,
        elders: Sequence[Elder],
        call_id: str,
        *,
        drill: bool,
        unknown_share: float = UNKNOWN_CALLER_SHARE,
        emergency_share: float = EMERGENCY_SHARE,
        words: bool = False,
    ) -> HotlineCall:
        elder = rng.choice(elders)
        known = rng.random() >= unknown_share and bool(elder.get("phone"))
        caller = str(elder["phone"]) if known else unknown_number(rng)
        script = draw_script(rng, elder, known=known, emergency_share=emergency_share)
        return cls(call_id, caller, script, drill, words=words)

    async def play(
        self,
        client: httpx.AsyncClient,
        rng: random.Random,
        stop: asyncio.Event,
        *,
        answer_s: tuple[float, float] = (2.0, 8.0),
        talk_s: tuple[float, float] = (20.0, 120.0),
    ) -> dict[str, Any] | None:
        """Ring, answer after ``answer_s``, talk for ``talk_s`` (wall seconds), hang up.

        Returns the server's answer to "answered", or None when it was not answered.
        """
        log.info("call %s from %s ringing", self.call_id, self.caller)
        if await self._event(client, "ringing", stop) is None:
            return None
        if await pause(stop, rng.uniform(*answer_s)):
            await self._event(client, "ended", stop)
            return None
        answered = await self._event(client, "answered", stop)
        await pause(stop, rng.uniform(*talk_s))
        await self._event(client, "ended", stop)
        return answered

    def event_body(self, event: str) -> dict[str, Any]:
        """The telephony's event; "answered" carries the caller's words when the server takes them."""
        body: dict[str, Any] = {
            "event": event,
            "call_id": self.call_id,
            "caller": self.caller,
            "line": HOTLINE_LINE,
            "open_incident": self.open_incident,
            "drill": self.drill,
        }
        if self.words and event == "answered" and self.script.text:
            body[WORDS_FIELD] = self.script.text
        return body

    async def _event(self, client: httpx.AsyncClient, event: str, stop: asyncio.Event) -> dict[str, Any] | None:
        body = self.event_body(event)
        try:
            answer = await call_api(client, "POST", "/api/hotline/events", stop=stop, body=body)
        except Refused as refused:
            log.warning("call %s %s refused: %s", self.call_id, event, refused)
            return None
        if answer is not None and event == "answered":
            log.info("call %s answered (%s, %s)", self.call_id, self.script.kind, self.script.alarm_type or "-")
        result: dict[str, Any] | None = answer
        return result


def unknown_number(rng: random.Random) -> str:
    """A mobile or a Zhangzhou landline (area code 0596) that is nobody's in the registry, probably."""
    if rng.random() < 0.7:
        return "1" + rng.choice("3578") + f"{rng.randrange(10**9):09d}"
    return f"0596{rng.randrange(2_000_000, 9_000_000)}"
