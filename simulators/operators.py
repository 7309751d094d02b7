"""A drill's operator desk: a few simulated operators working the live queue, top down, one job each.

What it owns
    :class:`OperatorDesk` polls ``GET /api/incidents?open=true`` (the queue as the console shows it: most
    urgent first, then oldest) and gives each free operator the first incident that needs something:
    acknowledge a new alarm; find someone by phone for an incident that needs manual dispatch (dispatch
    the nearest free caregiver, or, when nobody is left, hand a fall or medical alarm to 120 and settle the
    rest with the family); settle a technical alarm with a phone call some time after acknowledging it;
    resolve an incident handed to 120 after a while.

Rules
    1. Capacity is the point: an operator does one thing at a time and each thing takes time (drawn in
       drill time, run ``speedup`` times faster). A power cut's hundreds of technical alarms therefore
       compete with SOS alarms for the same few people, as they would on the night.
    2. ``drill_only``: incidents not marked drill are never touched, so a drill can run against a live
       centre without its bot answering real alarms.
    3. Nobody is dispatched twice by the desk for the same incident more than ``MANUAL_TRIES`` times; then
       the operator decides (120 or the family), so no incident waits for a bot forever.
    4. Bounded: after ``stop`` the desk finishes the actions in hand (one request each) and returns.

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

from simulators.traffic import SETTLED_OUTCOMES, TECHNICAL_TYPES, Refused, api_client, call_api, pause

log = logging.getLogger("anxin.sim.operators")

Incident = dict[str, Any]
MANUAL_TRIES = 2
MEDICAL_TYPES = frozenset({"fall", "medical"})
QUEUE_LIMIT = 80  # the top of the queue is what an operator looks at


@dataclass(frozen=True, slots=True)
class DeskPlan:
    """Durations in drill seconds; ``(low, high)`` ranges are drawn uniformly."""

    count: int = 3
    acknowledge: tuple[float, float] = (5.0, 20.0)
    settle: tuple[float, float] = (30.0, 90.0)
    settle_after: float = 120.0
    manual: tuple[float, float] = (30.0, 90.0)
    escalated_for: float = 900.0
    speedup: float = 1.0
    drill_only: bool = True


class OperatorDesk:
    def __init__(self, base_url: str, token: str, plan: DeskPlan, *, seed: int) -> None:
        self.base_url, self.token, self.plan = base_url, token, plan
        self.rng = random.Random(seed)
        self.done: Counter[str] = Counter()
        self._free = plan.count
        self._in_hand: set[str] = set()
        self._tries: Counter[str] = Counter()
        self._work: set[asyncio.Task[None]] = set()

    @property
    def poll_s(self) -> float:
        """An operator glances at the queue every 5 drill seconds (at most 10 times a wall second)."""
        return max(0.1, 5.0 / self.plan.speedup)

    async def run(self, stop: asyncio.Event) -> None:
        if self.plan.count <= 0:
            return
        async with api_client(self.base_url, self.token) as client:
            while not stop.is_set():
                params = {"open": "true", "limit": QUEUE_LIMIT}
                try:
                    answer = await call_api(client, "GET", "/api/incidents", stop=stop, params=params)
                except Refused as refused:
                    log.error("operator desk cannot read the queue: %s", refused)
                    answer = None
                if answer is not None:
                    self._assign(client, answer["incidents"], stop)
                if await pause(stop, self.poll_s):
                    break
            await asyncio.gather(*self._work, return_exceptions=True)

    def _assign(self, client: httpx.AsyncClient, queue: list[Incident], stop: asyncio.Event) -> None:
        now = time.time()
        for incident in queue:
            if self._free <= 0:
                return
            if incident["incident_id"] in self._in_hand or (self.plan.drill_only and not incident["drill"]):
                continue
            action = self.choose(incident, now)
            if action is None:
                continue
            self._free -= 1
            self._in_hand.add(incident["incident_id"])
            task = asyncio.create_task(self._handle(client, incident, action, stop))
            self._work.add(task)
            task.add_done_callback(self._work.discard)

    def choose(self, incident: Incident, now: float) -> str | None:
        """What an operator does with this incident now (see the module docstring), or None."""
        state = incident["state"]
        if incident["acknowledged_at"] is None:
            return "acknowledge"
        if incident["needs_manual"] and state != "escalated":
            return "manual"
        technical = incident["alarm_type"] in TECHNICAL_TYPES
        settled_at = incident["acknowledged_at"] + self._wall(self.plan.settle_after)
        if technical and state == "acknowledged" and now >= settled_at:
            return "settle"
        if state == "escalated" and now - incident["updated_at"] >= self._wall(self.plan.escalated_for):
            return "close_escalated"
        return None

    def _wall(self, drill_seconds: float) -> float:
        return drill_seconds / self.plan.speedup

    def _takes(self, span: tuple[float, float]) -> float:
        return self._wall(self.rng.uniform(*span))

    async def _handle(self, client: httpx.AsyncClient, incident: Incident, action: str, stop: asyncio.Event) -> None:
        incident_id = incident["incident_id"]
        try:
            spans = {"acknowledge": self.plan.acknowledge, "manual": self.plan.manual, "settle": self.plan.settle}
            await pause(stop, self._takes(spans.get(action, self.plan.acknowledge)))
            if action == "acknowledge":
                await self._post(client, incident_id, "acknowledge", None, stop)
            elif action == "manual":
                await self._manual(client, incident, stop)
            elif action == "settle":
                outcome = SETTLED_OUTCOMES.get(incident["alarm_type"], "已电话确认，无需上门")
                await self._post(client, incident_id, "resolve", {"outcome": outcome}, stop)
            else:
                await self._post(client, incident_id, "resolve", {"outcome": "已移交外部急救/警务，结案"}, stop)
            self.done[action] += 1
        finally:
            self._free += 1
            self._in_hand.discard(incident_id)

    async def _manual(self, client: httpx.AsyncClient, incident: Incident, stop: asyncio.Event) -> None:
        incident_id = incident["incident_id"]
        self._tries[incident_id] += 1
        if self._tries[incident_id] <= MANUAL_TRIES and incident["lat"] is not None:
            responder = await self._nearest_free(client, incident, stop)
            if responder is not None:
                body = {"responder_id": responder}
                if await self._post(client, incident_id, "dispatch", body, stop):
                    return
        if incident["alarm_type"] in MEDICAL_TYPES:
            note = "无可派护理员，已转120急救"
            await self._post(client, incident_id, "escalate", {"service": "120", "note": note}, stop)
        else:
            await self._post(client, incident_id, "resolve", {"outcome": "无可派人员，已电话联系家属上门处理"}, stop)

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
