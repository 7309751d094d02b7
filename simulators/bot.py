"""The demo's simulated operator: a calm bot that keeps the queue from growing without end.

What it owns
    :func:`operator_bot` polls the queue and the calls waiting on an operator, and, each after a moment's
    reaction: classifies an answered call as its caller's script says (heard on the switchboard, placing an
    unknown caller by the name or address they give: :mod:`simulators.answering`), orders what a service
    call asked for (:func:`simulators.services.order_from_call`), calls back a silent call, acknowledges a
    new incident, places an incident waiting for a place, settles a technical one by phone, decides on a
    caregiver's "done" (resolve, or hand to 120 when the note says hospital), resolves an incident nobody can be
    sent to or one handed to 120 a while ago, and closes finished ones.

Rules
    1. It leaves a share of the new incidents and of the calls alone (chosen by id, so the choice holds
       across restarts) for the people at the console; nobody acknowledges those unless a person does, and
       they reach the supervisor's late list.
    2. It never touches what a person touched (:func:`touched_by_people`): an incident a person opened,
       acknowledged (classifying a call into an incident acknowledges it), noted, dispatched, placed on the
       map, cancelled, escalated or resolved stays theirs to the end, closing included. Its own incidents
       are the ones it acknowledged itself; it tells a person's traces from its own by the actor the views
       show (``operator:bot``; "system", devices and caregivers are nobody's hand).
    3. It classifies only calls it answered (the telephony posts "answered" with the bot's account in the
       demo) and has a script for, and calls back only a silent call it classified itself; a call without
       a script (a person's own test call, another process's) is left to the people.
    4. It never dispatches, so it never withdraws a caregiver who accepted or is on scene.

Never
    Never import the server's packages: this is a client like any other.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import zlib
from dataclasses import dataclass
from typing import Any

import httpx

from simulators import answering
from simulators.api import Refused, api_client, call_api, pause
from simulators.scripts import SWITCHBOARD, Card, Switchboard
from simulators.services import order_from_call

log = logging.getLogger("anxin.sim.bot")

POLL_S = 2.0
REACTION_S = (2.0, 6.0)  # the bot reacts to a new situation after this long (uniform)
TECHNICAL_TYPES = frozenset({"missed_checkin", "low_battery", "mains_loss", "watch_removed", "tamper", "test"})
SETTLE_S = 20.0  # a technical incident is settled this long after it was acknowledged
MANUAL_S = 30.0  # an incident needing manual dispatch is handled by phone after this long
DECIDE_S = 8.0  # a caregiver's "done" is decided on this long after it came
ESCALATED_S = 120.0  # an incident handed to an outside service is resolved after this long
CLOSE_S = 10.0  # a resolved or cancelled incident is closed after this long
CALLBACK_S = 30.0  # a silent call is called back this long after it was classified
BOT_ACTOR = "operator:bot"  # the journal's actor for the demo's bot account (anxin.demo.BOT)
PEOPLE_ROLES = frozenset({"operator", "supervisor", "admin"})  # an actor "role:name" of these is a person's hand

SETTLED_OUTCOMES = {
    "low_battery": "已电话提醒老人及家属充电",
    "test": "测试报警，设备正常",
    "missed_checkin": "已电话联系老人，设备已恢复在线",
    "mains_loss": "已电话确认，停电已恢复",
    "watch_removed": "已电话提醒老人佩戴手表",
    "tamper": "已通知值班工程师核查设备密钥与来源",
}
SETTLED_OTHER = "已电话确认，无需上门"
MANUAL_OUTCOME = "无可派人员，已电话联系家属上门处理"
ESCALATED_OUTCOME = "已移交外部急救/警务，结案"
DEVICE_OUTCOME = "device reported "  # the server resolves a technical condition the device cleared itself

Action = tuple[str, dict[str, Any] | None]


@dataclass(slots=True)
class _Seen:
    """Since when the bot has seen an incident or a call in its current situation, and how quickly it reacts."""

    situation: str
    since: float
    patience: float
    unplaceable: bool = False  # the caller's words matched no place: handled by phone instead


async def operator_bot(
    base_url: str,
    token: str,
    *,
    stop: asyncio.Event,
    seed: int = 0,
    leave_share: float = 0.0,
    leave_calls: float | None = None,
    actor: str = BOT_ACTOR,
    switchboard: Switchboard = SWITCHBOARD,
) -> None:
    """Poll every 2 s and act on the queue and the calls like a calm operator until ``stop`` is set.

    ``leave_share`` of the new incidents and ``leave_calls`` of the calls (by default the same share) are left
    to the people (rule 1); ``actor`` is the bot's own account as the journal names it (rule 2)."""
    rng = random.Random(seed)
    seen: dict[str, _Seen] = {}
    call_share = leave_share if leave_calls is None else leave_calls
    async with api_client(base_url, token) as client:
        name = await _own_name(client, stop)
        while not stop.is_set():
            calls = await _read(client, "/api/calls", {"open": "true", "limit": 200}, "calls", stop)
            mine_calls = [c for c in calls if may_classify(c, actor, call_share, name)]
            await _tend_calls(client, mine_calls, seen, rng, switchboard, stop)
            incidents = await _read(client, "/api/incidents", {"limit": 400}, "incidents", stop)
            mine = [i for i in incidents if is_mine(i, actor, leave_share, switchboard.card(i.get("call_id")))]
            await _tend(client, mine, seen, rng, switchboard, stop, actor)
            _forget(seen, {c["call_id"] for c in calls} | {i["incident_id"] for i in incidents})
            if await pause(stop, POLL_S):
                break


async def _own_name(client: httpx.AsyncClient, stop: asyncio.Event) -> str | None:
    """The bot account's display name, as call records show who answered."""
    try:
        me = await call_api(client, "GET", "/api/me", stop=stop)
    except Refused as refused:
        log.error("operator bot cannot read its own account: %s", refused)
        return None
    return None if me is None else me.get("name") or None


async def _read(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], key: str, stop: asyncio.Event
) -> list[dict[str, Any]]:
    try:
        answer = await call_api(client, "GET", path, stop=stop, params=params)
    except Refused as refused:
        log.error("operator bot cannot read %s: %s", path, refused)
        return []
    items: list[dict[str, Any]] = [] if answer is None else answer[key]
    return items


def _forget(seen: dict[str, _Seen], listed: set[str]) -> None:
    for gone in set(seen) - listed:
        del seen[gone]


def _situation(seen: dict[str, _Seen], key: str, situation: str, now: float, rng: random.Random) -> _Seen:
    record = seen.get(key)
    if record is None or record.situation != situation:
        record = _Seen(situation, now, rng.uniform(*REACTION_S))
        seen[key] = record
    return record


async def _tend_calls(
    client: httpx.AsyncClient,
    calls: list[dict[str, Any]],
    seen: dict[str, _Seen],
    rng: random.Random,
    switchboard: Switchboard,
    stop: asyncio.Event,
) -> None:
    now = time.monotonic()
    for call in calls:
        card = switchboard.card(call["call_id"])
        if card is None or stop.is_set():
            continue  # rule 3
        record = _situation(seen, call["call_id"], f"{call['state']}/{call['kind']}/{call['callback']}", now, rng)
        overdue = now - record.since - record.patience
        if call["answered_at"] is not None and call["kind"] is None and overdue >= 0:
            answer = await answering.classify(client, card, stop)
            log.info("operator bot: call %s -> %s %s", card.call_id, card.classified, card.incident_id or "")
            if answer is None:
                record.since = now + 30.0  # refused: look again later
            elif card.classified == "service":  # what the caller asked for becomes an order (simulators.services)
                await order_from_call(client, card.call_id, answer.get("elder_id"), card.script.text, stop, rng)
        elif call["callback"] == "due" and card.classified == "silent" and overdue >= CALLBACK_S:  # rule 3
            await answering.call_back(client, card, rng.choice(answering.CALLED_BACK), stop)


async def _tend(
    client: httpx.AsyncClient,
    incidents: list[dict[str, Any]],
    seen: dict[str, _Seen],
    rng: random.Random,
    switchboard: Switchboard,
    stop: asyncio.Event,
    me: str = BOT_ACTOR,
) -> None:
    now = time.monotonic()
    for incident in incidents:
        if incident["state"] == "closed" or stop.is_set():
            continue
        situation = f"{incident['state']}/{incident['needs_manual']}/{incident.get('proposal') is not None}"
        record = _situation(seen, incident["incident_id"], situation, now, rng)
        card = switchboard.card(incident.get("call_id"))
        heard = card is not None and card.classified is not None  # the bot took this call: it heard the caller
        placeable = heard and bool(card and card.script.where) and not record.unplaceable
        action = next_action(incident, now - record.since - record.patience, placeable=placeable)
        if action is None:
            continue
        if action[0] != "acknowledge" and not await _still_mine(client, incident["incident_id"], me, card, stop):
            continue  # a person took it since the list was read
        if action[0] == "locate":
            assert card is not None
            record.unplaceable = not await answering.locate(client, incident["incident_id"], card, stop)
        else:
            await _act(client, incident["incident_id"], *action, stop=stop)


async def _still_mine(
    client: httpx.AsyncClient, incident_id: str, me: str, card: Card | None, stop: asyncio.Event
) -> bool:
    """Read the incident again just before a step a person could not undo (rule 2)."""
    try:
        fresh = await call_api(client, "GET", f"/api/incidents/{incident_id}", stop=stop)
    except Refused:
        return False
    return fresh is not None and not touched_by_people(fresh, me, card)


def left_for_people(key: str, share: float) -> bool:
    """Whether the bot leaves this incident or call to the people at the console (a stable choice by id)."""
    return share > 0 and zlib.crc32(key.encode()) % 1000 < share * 1000


def by_people(actor: str | None, me: str = BOT_ACTOR) -> bool:
    """Whether ``actor`` (``role:name``) is a person's hand: a staff account other than the bot's own."""
    return actor is not None and actor != me and actor.partition(":")[0] in PEOPLE_ROLES


def bots_outcome(outcome: str | None) -> bool:
    """Whether an incident was resolved with words the bot writes (or by the device clearing its condition)."""
    text = outcome or ""
    own = {*SETTLED_OUTCOMES.values(), SETTLED_OTHER, MANUAL_OUTCOME, ESCALATED_OUTCOME}
    return text in own or text.startswith((answering.RESOLVED_PREFIX, DEVICE_OUTCOME))


def touched_by_people(incident: dict[str, Any], me: str = BOT_ACTOR, card: Card | None = None) -> bool:
    """Whether a person's hand shows on the incident (rule 2), from what its view shows.

    ``card`` is the switchboard's card of the incident's call, when the bot heard it: a place given by
    address is the bot's own when the card says it placed the caller so."""
    if incident.get("source") == "operator" or any(a.get("source") == "operator" for a in incident.get("alarms", ())):
        return True  # opened by hand (or a hand-opened incident joined this one)
    if by_people(incident.get("acknowledged_by"), me):
        return True  # a person acknowledged it, opened it by hand or classified a call into it
    if any(by_people(n.get("actor"), me) for n in incident.get("notes", ())):
        return True
    if any(a.get("by") == "operator" for a in incident.get("assignments", ())):
        return True  # dispatched by hand: the bot never dispatches
    location = incident.get("location")
    if location == "map" or (location == "address" and (card is None or card.placed_by is None)):
        return True  # placed by a person: the bot places only by what a caller it heard said
    state = incident["state"]
    if state == "cancelled":
        return True  # the bot never cancels
    if incident.get("escalated_to") and not any(
        n.get("actor") == me and str(n.get("text", "")).startswith(answering.ESCALATED_PREFIX)
        for n in incident.get("notes", ())
    ):
        return True  # handed to an outside service by someone else (a person may escalate without a note)
    return state in ("resolved", "closed") and not bots_outcome(incident.get("outcome"))


def is_mine(incident: dict[str, Any], me: str = BOT_ACTOR, share: float = 0.0, card: Card | None = None) -> bool:
    """Whether the bot works on this incident: nobody's hand but its own shows, and it acknowledged it
    itself, or (nobody acknowledged it yet) it is not one of the share left to the people (rule 1)."""
    if touched_by_people(incident, me, card):
        return False
    if incident.get("acknowledged_by") == me:
        return True
    return not left_for_people(incident["incident_id"], share)


def may_classify(call: dict[str, Any], me: str = BOT_ACTOR, share: float = 0.0, name: str | None = None) -> bool:
    """Whether the bot may work on this open call: it answered it itself and it is not left to the people
    (rule 3; ``answered_by`` shows the account's display ``name`` when it has one, else its user name)."""
    answered_by = call.get("answered_by")
    if answered_by is not None and answered_by not in (me.partition(":")[2], name):
        return False
    return not left_for_people(call["call_id"], share)


def next_action(incident: dict[str, Any], overdue: float, *, placeable: bool = False) -> Action | None:
    """What the bot does to this incident now, if anything: (action, body).

    ``overdue`` is how long past the bot's reaction time the incident has been in its current situation;
    ``placeable``: it waits for a place, and the caller said where they are ("locate", from the call's card).
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
        return "resolve", {"outcome": SETTLED_OUTCOMES.get(alarm_type, SETTLED_OTHER)}
    decided = answering.decision(incident)
    if decided is not None:
        return decided if overdue >= DECIDE_S else None
    if incident["needs_manual"] and incident["lat"] is None and placeable:
        return "locate", None
    if incident["needs_manual"] and state != "escalated" and overdue >= MANUAL_S:
        return "resolve", {"outcome": MANUAL_OUTCOME}
    if state == "escalated" and overdue >= ESCALATED_S:
        return "resolve", {"outcome": ESCALATED_OUTCOME}
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
