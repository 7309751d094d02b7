"""A drill's operator desk: a few simulated operators working the calls and the live queue, one job each.

What it owns
    :class:`OperatorDesk` polls ``GET /api/calls?open=true`` and ``GET /api/incidents?open=true`` (the queue
    as the console shows it: most urgent first, then oldest) and gives each free operator the first thing
    that needs someone, in this order:

    1. an answered call waiting for the operator's word: hear the caller (the call's script, on the
       drill's switchboard) and classify it; an emergency opens an incident, placed where an unknown
       caller says they are (the elder found by name, else the address), and the operator acknowledges it;
    2. the queue, top down: acknowledge a new alarm; place an incident that waits for a place (call the
       caller back and ask); find someone by phone for an incident that needs manual dispatch (dispatch
       the nearest free caregiver, or, when nobody is left, hand a fall or medical alarm to 120 and settle
       the rest with the family); decide on a caregiver's "done" (resolve, or hand to 120 when their
       words say hospital); settle a technical alarm by phone some time after acknowledging it; resolve
       an incident handed to 120 after a while;
    3. call back a silent call some time after it was classified.

Rules
    1. Capacity is the point: an operator does one thing at a time and each thing takes time (drawn in
       drill time, run ``speedup`` times faster). A power cut's hundreds of technical alarms therefore
       compete with SOS alarms and callers on the line for the same few people, as they would on the night.
    2. ``drill_only``: incidents and calls not marked drill are never touched, so a drill can run against a
       live centre without its bot answering real alarms. A call without a script on the switchboard
       (nobody here heard it) is left alone.
    3. Nobody is dispatched twice by the desk for the same incident more than ``MANUAL_TRIES`` times; then
       the operator decides (120 or the family), so no incident waits for a bot forever.
    4. Never replace: the desk dispatches only when the incident's ``actions`` offer "dispatch" (nobody has
       accepted or is on scene), and a refusal (``replace_needs_confirmation``) is left at that.
    5. Bounded: after ``stop`` the desk finishes the actions in hand (one request each) and returns.

Never
    Never import the server's packages: this is a client of the HTTP API like any other.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from simulators import answering
from simulators.api import Refused, api_client, call_api, pause
from simulators.bot import SETTLED_OUTCOMES, TECHNICAL_TYPES
from simulators.scripts import Card, Switchboard

log = logging.getLogger("anxin.sim.operators")

Incident = dict[str, Any]
Call = dict[str, Any]
MANUAL_TRIES = 2
LOCATE_TRIES = 1
MEDICAL_TYPES = frozenset({"fall", "medical"})
QUEUE_LIMIT = 80  # the top of the queue is what an operator looks at
CALLS_LIMIT = 200


@dataclass(frozen=True, slots=True)
class DeskPlan:
    """Durations in drill seconds; ``(low, high)`` ranges are drawn uniformly."""

    count: int = 3
    acknowledge: tuple[float, float] = (5.0, 20.0)
    settle: tuple[float, float] = (30.0, 90.0)
    settle_after: float = 120.0
    manual: tuple[float, float] = (30.0, 90.0)
    escalated_for: float = 900.0
    classify: tuple[float, float] = (15.0, 45.0)
    decide: tuple[float, float] = (10.0, 40.0)
    callback: tuple[float, float] = (30.0, 90.0)
    callback_after: float = 300.0
    speedup: float = 1.0
    drill_only: bool = True


class OperatorDesk:
    def __init__(self, base_url: str, token: str, plan: DeskPlan, *, seed: int, switchboard: Switchboard) -> None:
        self.base_url, self.token, self.plan = base_url, token, plan
        self.switchboard = switchboard
        self.rng = random.Random(seed)
        self.done: Counter[str] = Counter()
        self._free = plan.count
        self._in_hand: set[str] = set()
        self._tries: Counter[str] = Counter()
        self._work: set[asyncio.Task[None]] = set()
        self._classified_at: dict[str, float] = {}  # silent calls: when the desk heard the silence

    @property
    def poll_s(self) -> float:
        """An operator glances at the queue every 5 drill seconds (at most 10 times a wall second)."""
        return max(0.1, 5.0 / self.plan.speedup)

    async def run(self, stop: asyncio.Event) -> None:
        if self.plan.count <= 0:
            return
        async with api_client(self.base_url, self.token) as client:
            while not stop.is_set():
                calls = await self._read(client, "/api/calls", {"open": "true", "limit": CALLS_LIMIT}, "calls", stop)
                queue = await self._read(client, "/api/incidents", {"open": "true", "limit": QUEUE_LIMIT},
                                         "incidents", stop)  # fmt: skip
                if calls is not None and queue is not None:
                    self._assign(client, calls, queue, stop)
                if await pause(stop, self.poll_s):
                    break
            await asyncio.gather(*self._work, return_exceptions=True)

    async def _read(
        self, client: httpx.AsyncClient, path: str, params: dict[str, Any], key: str, stop: asyncio.Event
    ) -> list[dict[str, Any]] | None:
        try:
            answer = await call_api(client, "GET", path, stop=stop, params=params)
        except Refused as refused:
            log.error("operator desk cannot read %s: %s", path, refused)
            return None
        return None if answer is None else list(answer[key])

    def _assign(self, client: httpx.AsyncClient, calls: list[Call], queue: list[Incident], stop: asyncio.Event) -> None:
        """Hand out work in the order of the module docstring while operators are free."""
        now = time.time()
        work: list[tuple[str, str, Any]] = []
        for call in sorted(calls, key=lambda c: c["answered_at"] or math.inf):
            action = self.choose_call(call, now)
            if action == "classify":
                work.append((f"call:{call['call_id']}", action, call))
        for incident in queue:
            if self.plan.drill_only and not incident["drill"]:
                continue
            action = self.choose(incident, now)
            if action is not None:
                work.append((incident["incident_id"], action, incident))
        for call in calls:
            if self.choose_call(call, now) == "callback":
                work.append((f"call:{call['call_id']}", "callback", call))
        for key, action, item in work:
            if self._free <= 0:
                return
            if key in self._in_hand:
                continue
            self._free -= 1
            self._in_hand.add(key)
            task = asyncio.create_task(self._handle(client, key, action, item, stop))
            self._work.add(task)
            task.add_done_callback(self._work.discard)

    def choose_call(self, call: Call, now: float) -> str | None:
        """What an operator does with this call now: "classify", "callback", or None."""
        if self.plan.drill_only and not call["drill"]:
            return None
        if self.switchboard.card(call["call_id"]) is None:
            return None  # rule 2: nobody here heard this caller
        if call["answered_at"] is not None and call["kind"] is None:
            return "classify"
        heard = self._classified_at.get(call["call_id"])
        if call["callback"] == "due" and heard is not None and now >= heard + self._wall(self.plan.callback_after):
            return "callback"
        return None

    def choose(self, incident: Incident, now: float) -> str | None:
        """What an operator does with this incident now (see the module docstring), or None."""
        state = incident["state"]
        if incident["acknowledged_at"] is None:
            return "acknowledge"
        if incident["needs_manual"] and incident["lat"] is None and self._placeable(incident):
            return "locate"
        if incident["needs_manual"] and state != "escalated":
            return "manual"
        if answering.decision(incident) is not None:
            return "decide"
        technical = incident["alarm_type"] in TECHNICAL_TYPES
        settled_at = incident["acknowledged_at"] + self._wall(self.plan.settle_after)
        if technical and state == "acknowledged" and now >= settled_at:
            return "settle"
        if state == "escalated" and now - incident["updated_at"] >= self._wall(self.plan.escalated_for):
            return "close_escalated"
        return None

    def _placeable(self, incident: Incident) -> bool:
        card = self.switchboard.card(incident.get("call_id"))
        tries = self._tries[f"locate:{incident['incident_id']}"]
        return card is not None and bool(card.script.where) and tries < LOCATE_TRIES

    def _wall(self, drill_seconds: float) -> float:
        return drill_seconds / self.plan.speedup

    def _takes(self, span: tuple[float, float]) -> float:
        return self._wall(self.rng.uniform(*span))

    async def _handle(self, client: httpx.AsyncClient, key: str, action: str, item: Any, stop: asyncio.Event) -> None:
        p = self.plan
        spans = {"acknowledge": p.acknowledge, "manual": p.manual, "locate": p.manual, "settle": p.settle,
                 "classify": p.classify, "decide": p.decide, "callback": p.callback}  # fmt: skip
        try:
            await pause(stop, self._takes(spans.get(action, p.acknowledge)))
            if await self._do(client, action, item, stop):
                self.done[action] += 1
        finally:
            self._free += 1
            self._in_hand.discard(key)

    async def _do(self, client: httpx.AsyncClient, action: str, item: Any, stop: asyncio.Event) -> bool:
        if action in ("classify", "callback"):
            card = self.switchboard.card(item["call_id"])
            return card is not None and await self._on_call(client, action, card, stop)
        incident_id = item["incident_id"]
        if action == "acknowledge":
            return await self._post(client, incident_id, "acknowledge", None, stop)
        if action == "locate":
            self._tries[f"locate:{incident_id}"] += 1
            card = self.switchboard.card(item.get("call_id"))
            return card is not None and await answering.locate(client, incident_id, card, stop)
        if action == "manual":
            return await self._manual(client, item, stop)
        if action == "decide":
            decided = answering.decision(item)
            return decided is not None and await self._post(client, incident_id, *decided, stop)
        if action == "settle":
            outcome = SETTLED_OUTCOMES.get(item["alarm_type"], "已电话确认，无需上门")
            return await self._post(client, incident_id, "resolve", {"outcome": outcome}, stop)
        return await self._post(client, incident_id, "resolve", {"outcome": "已移交外部急救/警务，结案"}, stop)

    async def _on_call(self, client: httpx.AsyncClient, action: str, card: Card, stop: asyncio.Event) -> bool:
        if action == "callback":
            return await answering.call_back(client, card, self.rng.choice(answering.CALLED_BACK), stop)
        answer = await answering.classify(client, card, stop)
        if answer is not None and answer.get("callback") == "due":
            self._classified_at[card.call_id] = time.time()
        return answer is not None

    async def _manual(self, client: httpx.AsyncClient, incident: Incident, stop: asyncio.Event) -> bool:
        incident_id = incident["incident_id"]
        if not answering.may_dispatch(incident):
            return False  # rule 4: someone accepted meanwhile; they stay
        self._tries[incident_id] += 1
        if self._tries[incident_id] <= MANUAL_TRIES and incident["lat"] is not None:
            responder = await self._nearest_free(client, incident, stop)
            if responder is not None:
                body = {"responder_id": responder}
                try:
                    answer = await call_api(
                        client, "POST", f"/api/incidents/{incident_id}/dispatch", stop=stop, body=body
                    )
                except Refused as refused:
                    if refused.code == "replace_needs_confirmation":
                        self.done["replace_refused"] += 1
                        return False  # rule 4: never forced
                    log.info("operator desk: dispatch %s refused: %s", incident_id, refused)
                else:
                    return answer is not None
        if incident["alarm_type"] in MEDICAL_TYPES:
            note = "无可派护理员，已转120急救"
            return await self._post(client, incident_id, "escalate", {"service": "120", "note": note}, stop)
        outcome = "无可派人员，已电话联系家属上门处理"
        return await self._post(client, incident_id, "resolve", {"outcome": outcome}, stop)

    async def _nearest_free(self, client: httpx.AsyncClient, incident: Incident, stop: asyncio.Event) -> str | None:
        try:
            answer = await call_api(client, "GET", "/api/responders", stop=stop)
        except Refused:
            return None
        if answer is None:
            return None
        free = [r for r in answer["responders"] if r["available"] and r["kind"] != "clinic"]
        if not free:
            return None
        lat, lon = incident["lat"], incident["lon"]
        nearest = min(free, key=lambda r: math.hypot(r["lat"] - lat, (r["lon"] - lon) * math.cos(math.radians(lat))))
        return str(nearest["responder_id"])

    async def _post(
        self, client: httpx.AsyncClient, incident_id: str, action: str, body: dict[str, Any] | None, stop: asyncio.Event
    ) -> bool:
        try:
            answer = await call_api(client, "POST", f"/api/incidents/{incident_id}/{action}", stop=stop, body=body)
        except Refused as refused:  # the incident moved on meanwhile (a caregiver accepted, a device restored)
            log.info("operator desk: %s %s refused: %s", action, incident_id, refused)
            return False
        return answer is not None
