"""Demo traffic: alarms and hotline calls raised against a running Anxin server, and a bot operator.

What it owns
    :func:`alarm_stream` raises alarms for registered elders at a Poisson rate with the mix a community
    service centre sees (mostly SOS presses, then falls), now and then a hotline call that rings, is
    answered and ends. :func:`operator_bot` plays a tireless operator who acknowledges new incidents,
    settles technical ones and closes finished ones, so a demo queue does not grow without end; it can leave
    a share of the incidents untouched, for the people at the console (and the supervisor's late list).

Rules
    1. Network only: the HTTP API with a bearer token, exactly as the contract describes it.
    2. Never give up on the server. A transport error, a 5xx or a 429 answer is retried with exponential
       back-off (0.5 s up to 10 s) until it succeeds or ``stop`` is set; the server may restart meanwhile.
       A 4xx answer is the server refusing this request: it is logged and raised as :class:`Refused`, and
       the caller goes on with the next one.
    3. Every wait watches ``stop``, so a stream ends within moments of it being set.
    4. One ``random.Random(seed)`` per stream draws every choice, so a seed gives the same sequence of
       elders and alarm types (not the same timing, which depends on the server).

Never
    Never import the server's packages: this is a client like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("anxin.sim.traffic")

Elder = dict[str, Any]

ALARM_MIX: tuple[tuple[str, float], ...] = (
    ("sos", 45.0),
    ("fall", 20.0),
    ("medical", 10.0),
    ("inactivity", 10.0),
    ("low_battery", 10.0),
    ("test", 5.0),
)
CALL_SHARE = 0.12  # of all events, a hotline call instead of a device alarm
UNKNOWN_CALLER_SHARE = 0.25  # of calls, from a number not in the registry
HOTLINE_LINE = "12349"  # the national elderly service hotline number
AWAY_FROM_HOME_SHARE = 0.3  # of device alarms, sent with a GPS fix away from home

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0
HTTP_TIMEOUT_S = 10.0


class Refused(Exception):
    """The server answered 4xx: this request will not succeed as it is."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


# -- plumbing shared with the other simulators -------------------------------------------------------


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep for ``seconds`` or until ``stop`` is set; return whether it is set."""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


def api_client(base_url: str, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=HTTP_TIMEOUT_S)


async def login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, Any]:
    """``POST /api/auth/token``; the answer holds ``access_token``, ``role`` and ``responder_id``."""
    response = await client.post("/api/auth/token", data={"username": username, "password": password})
    if response.status_code >= 400:
        raise Refused(response.status_code, _detail(response))
    answer: dict[str, Any] = response.json()
    return answer


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:200]


async def call_api(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    stop: asyncio.Event,
    body: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> Any:
    """One API request, retried (rule 2); the decoded JSON answer, or None when ``stop`` came first.

    The request is tried at least once even when ``stop`` is already set, so a last "call ended" still
    goes out while a stream shuts down.
    """
    delay = RETRY_FIRST_S
    while True:
        try:
            response = await client.request(method, path, json=body, params=params)
        except httpx.TransportError as error:
            problem = type(error).__name__
        else:
            if response.status_code < 400:
                try:
                    return response.json()
                except ValueError:
                    raise Refused(response.status_code, "the answer is not JSON") from None
            if response.status_code < 500 and response.status_code != 429:
                raise Refused(response.status_code, _detail(response))
            problem = f"HTTP {response.status_code}"
        log.warning("%s %s failed (%s); retrying in %.1f s", method, path, problem, delay)
        if await pause(stop, delay):
            return None
        delay = min(delay * 2, RETRY_MAX_S)


# -- alarms and calls ---------------------------------------------------------------------------------


async def alarm_stream(
    base_url: str, token: str, *, rate_per_min: float, seed: int, stop: asyncio.Event, drill: bool = False
) -> None:
    """Raise alarms and hotline calls at ``rate_per_min`` on average until ``stop`` is set."""
    if rate_per_min <= 0:
        raise ValueError("rate_per_min must be positive")
    rng = random.Random(seed)
    run = f"sim{seed}-{int(time.time())}"  # call ids must not repeat across runs
    calls: set[asyncio.Task[dict[str, Any] | None]] = set()
    async with api_client(base_url, token) as client:
        elders = await fetch_elders(client, stop)
        if not elders:
            log.error("no elders registered (or stopped before the list came); no traffic")
            return
        log.info("alarm stream: %d elders, %.1f events/min, drill=%s", len(elders), rate_per_min, drill)
        count = 0
        while not await pause(stop, rng.expovariate(rate_per_min / 60.0)):
            count += 1
            if rng.random() < CALL_SHARE:
                call = HotlineCall.draw(rng, elders, f"{run}-{count}", drill=drill)
                task = asyncio.create_task(call.play(client, rng, stop))
                calls.add(task)
                task.add_done_callback(calls.discard)
            else:
                await raise_alarm(client, rng, elders, stop=stop, drill=drill)
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
    """One call to the hotline: it rings, is answered a few seconds later, and ends after a talk."""

    call_id: str
    caller: str
    open_incident: bool
    drill: bool

    @classmethod
    def draw(
        cls,
        rng: random.Random,
        elders: Sequence[Elder],
        call_id: str,
        *,
        drill: bool,
        unknown_share: float = UNKNOWN_CALLER_SHARE,
    ) -> HotlineCall:
        elder = rng.choice(elders)
        known = rng.random() >= unknown_share and bool(elder.get("phone"))
        caller = str(elder["phone"]) if known else unknown_number(rng)
        # Most calls are about an emergency; some are enquiries that need no incident.
        return cls(call_id, caller, open_incident=rng.random() < 0.8, drill=drill)

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

        Returns the server's answer to "answered" (with ``incident_id``), or None when it was not answered.
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

    async def _event(self, client: httpx.AsyncClient, event: str, stop: asyncio.Event) -> dict[str, Any] | None:
        body = {
            "event": event,
            "call_id": self.call_id,
            "caller": self.caller,
            "line": HOTLINE_LINE,
            "open_incident": self.open_incident,
            "drill": self.drill,
        }
        try:
            answer = await call_api(client, "POST", "/api/hotline/events", stop=stop, body=body)
        except Refused as refused:
            log.warning("call %s %s refused: %s", self.call_id, event, refused)
            return None
        if answer is not None and event == "answered" and answer.get("incident_id"):
            log.info("call %s answered: incident %s", self.call_id, answer["incident_id"])
        result: dict[str, Any] | None = answer
        return result


def unknown_number(rng: random.Random) -> str:
    """A mobile or a Zhangzhou landline (area code 0596) that is nobody's in the registry, probably."""
    if rng.random() < 0.7:
        return "1" + rng.choice("3578") + f"{rng.randrange(10**9):09d}"
    return f"0596{rng.randrange(2_000_000, 9_000_000)}"


# -- the bot operator ---------------------------------------------------------------------------------

POLL_S = 2.0
TECHNICAL_TYPES = frozenset({"missed_checkin", "low_battery", "mains_loss", "watch_removed", "test"})
SETTLE_S = 20.0  # a technical incident is settled this long after it was acknowledged
MANUAL_S = 30.0  # an incident needing manual dispatch is handled by phone after this long
ESCALATED_S = 120.0  # an incident handed to an outside service is resolved after this long
CLOSE_S = 10.0  # a resolved or cancelled incident is closed after this long

SETTLED_OUTCOMES = {
    "low_battery": "已电话提醒老人及家属充电",
    "test": "测试报警，设备正常",
    "missed_checkin": "已电话联系老人，设备已恢复在线",
    "mains_loss": "已电话确认，停电已恢复",
    "watch_removed": "已电话提醒老人佩戴手表",
}


@dataclass(slots=True)
class _Seen:
    """Since when the bot has seen an incident in its current situation, and how quickly it reacts."""

    situation: str
    since: float
    patience: float


async def operator_bot(
    base_url: str, token: str, *, stop: asyncio.Event, seed: int = 0, leave_share: float = 0.0
) -> None:
    """Poll the queue every 2 s and act on it like a calm operator until ``stop`` is set.

    ``leave_share`` of the incidents (chosen by their id, so the choice holds across restarts) are left
    alone: nobody acknowledges them unless a person does, and they reach the supervisor's late list.
    """
    rng = random.Random(seed)
    seen: dict[str, _Seen] = {}
    left = leave_share
    async with api_client(base_url, token) as client:
        while not stop.is_set():
            try:
                answer = await call_api(client, "GET", "/api/incidents", stop=stop, params={"limit": 400})
            except Refused as refused:
                log.error("operator bot cannot read the queue: %s", refused)
                answer = None
            if answer is not None:
                mine = [i for i in answer["incidents"] if not _left_for_people(i["incident_id"], left)]
                await _tend(client, mine, seen, rng, stop)
            if await pause(stop, POLL_S):
                break


async def _tend(
    client: httpx.AsyncClient,
    incidents: list[dict[str, Any]],
    seen: dict[str, _Seen],
    rng: random.Random,
    stop: asyncio.Event,
) -> None:
    now = time.monotonic()
    listed = {incident["incident_id"] for incident in incidents}
    for gone in set(seen) - listed:
        del seen[gone]
    for incident in incidents:
        if incident["state"] == "closed" or stop.is_set():
            continue
        situation = f"{incident['state']}/{incident['needs_manual']}"
        record = seen.get(incident["incident_id"])
        if record is None or record.situation != situation:
            record = _Seen(situation, now, rng.uniform(2.0, 6.0))
            seen[incident["incident_id"]] = record
        action = next_action(incident, now - record.since - record.patience)
        if action is not None:
            await _act(client, incident["incident_id"], *action, stop=stop)


def _left_for_people(incident_id: str, share: float) -> bool:
    """Whether the bot leaves this incident to the people at the console (a stable choice by id)."""
    return share > 0 and zlib.crc32(incident_id.encode()) % 1000 < share * 1000


def next_action(incident: dict[str, Any], overdue: float) -> tuple[str, dict[str, Any] | None] | None:
    """What the bot does to this incident now, if anything: (action, body).

    ``overdue`` is how long past the bot's reaction time the incident has been in its current situation.
    """
    state, alarm_type = incident["state"], incident["alarm_type"]
    if overdue < 0:
        return None
    if incident["open"] and incident["acknowledged_at"] is None:
        return "acknowledge", None
    if state in ("resolved", "cancelled") and overdue >= CLOSE_S:
        return "close", {}
    if not incident["open"]:
        return None
    if alarm_type in TECHNICAL_TYPES and state == "acknowledged" and overdue >= SETTLE_S:
        return "resolve", {"outcome": SETTLED_OUTCOMES.get(alarm_type, "已电话确认，无需上门")}
    if incident["needs_manual"] and state != "escalated" and overdue >= MANUAL_S:
        return "resolve", {"outcome": "无可派人员，已电话联系家属上门处理"}
    if state == "escalated" and overdue >= ESCALATED_S:
        return "resolve", {"outcome": "已移交外部急救/警务，结案"}
    return None


async def _act(
    client: httpx.AsyncClient,
    incident_id: str,
    action: str,
    body: dict[str, Any] | None,
    *,
    stop: asyncio.Event,
) -> None:
    path = f"/api/incidents/{incident_id}/{action}"
    try:
        answer = await call_api(client, "POST", path, stop=stop, body=body)
    except Refused as refused:  # someone else got there first, usually
        log.info("operator bot: %s %s refused: %s", action, incident_id, refused)
        return
    if answer is not None:
        log.info("operator bot: %s %s -> %s", action, incident_id, answer["state"])
