"""What a simulated operator does with a call and with a caregiver's report, over the HTTP API.

What it owns
    The steps both simulated operators take (the drill's desk, :mod:`simulators.operators`, and the demo's
    bot, :mod:`simulators.traffic`): :func:`classify` an answered call as its caller's script says, placing
    an unknown caller (the elder found by the name the caller gives, else the address they say, most
    precise first); :func:`locate` an incident that waits for a place; :func:`decision` on a caregiver's
    "done" (resolve, or hand to 120 when their words say hospital); :func:`call_back` a silent call.

Rules
    1. An operator hears the caller, not the registry: the script's words, name and addresses are all
       they go by (simulators.scripts, rule 2).
    2. Nothing is forced: a refused step (an address the gazetteer does not know, an incident that moved
       on, a replacement that needs confirmation) is answered by the next try or by leaving it.
    3. An emergency's incident is acknowledged by the operator who classified it: they are on the phone.

Never
    Never import the server's packages; never send ``replace``: an on-scene caregiver stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

import httpx

from simulators.api import Refused, call_api
from simulators.scripts import Card

log = logging.getLogger("anxin.sim.answering")

Incident = dict[str, Any]

#: words in a caregiver's note that mean the elder should go to hospital
HOSPITAL_WORDS: Final = ("送医", "医院", "120", "急救", "骨折")
RESOLVED_PREFIX: Final = "护理员已上门处理："
RESOLVED_DONE: Final = RESOLVED_PREFIX + "{text}"
ESCALATED_PREFIX: Final = "护理员建议送医："
HANDED_TO_120: Final = ESCALATED_PREFIX + "{text}；已转120急救"
CALLED_BACK: Final = ("已回拨，老人误拨，一切正常", "已回拨，老人说按错了键，身体无恙", "已回拨，家属接听，老人安好")


def needs_hospital(text: str) -> bool:
    return any(word in text for word in HOSPITAL_WORDS)


def decision(incident: Incident) -> tuple[str, dict[str, Any]] | None:
    """What an operator does about a caregiver's "done": ``(action, body)``, or None when there is nothing to
    decide (no proposal, someone still on the job, or the incident is no longer on scene: handed to 120,
    resolved)."""
    proposal = incident.get("proposal")
    if not proposal or incident["state"] != "on_scene" or "resolve" not in incident.get("actions", ()):
        return None
    text = str(proposal.get("text") or "").strip() or "已完成"
    if needs_hospital(text) and "escalate" in incident["actions"]:
        return "escalate", {"service": "120", "note": HANDED_TO_120.format(text=text)}
    return "resolve", {"outcome": RESOLVED_DONE.format(text=text)}


def may_dispatch(incident: Incident) -> bool:
    """Whether offering the incident to someone now withdraws nobody who accepted or is on scene."""
    return "dispatch" in incident.get("actions", ("dispatch",))


async def classify(client: httpx.AsyncClient, card: Card, stop: asyncio.Event) -> dict[str, Any] | None:
    """Classify the answered call as its script says (rule 1); the call view, or None when refused or stopped.

    Fills ``card`` with the kind the server recorded, the incident it opened and how an unknown caller was
    placed."""
    script = card.script
    body: dict[str, Any] = {"kind": script.kind, "text": script.text}
    if script.emergency:
        body["alarm_type"] = script.alarm_type
    tries: list[tuple[str | None, dict[str, Any]]] = []
    if script.emergency and not script.known:
        elder_id = await find_elder(client, script.name, script.where, stop) if script.name else None
        if elder_id is not None:
            tries.append(("search", {"elder_id": elder_id}))
        tries += [("address", {"address": where}) for where in script.where]
    tries.append((None, {}))
    path = f"/api/calls/{card.call_id}/classify"
    for placed_by, extra in tries:
        try:
            answer: dict[str, Any] | None = await call_api(client, "POST", path, stop=stop, body={**body, **extra})
        except Refused as refused:
            if refused.code == "address_not_found":
                continue
            log.info("classify %s refused: %s", card.call_id, refused)
            return None
        if answer is None:
            return None
        card.classified, card.incident_id = answer.get("kind"), answer.get("incident_id")
        card.placed_by = placed_by
        if script.emergency and card.incident_id:
            await _acknowledge(client, card.incident_id, stop)
        return answer
    return None


async def find_elder(
    client: httpx.AsyncClient, name: str | None, where: tuple[str, ...], stop: asyncio.Event
) -> str | None:
    """``GET /api/elders?q=<name>``: the one elder of that name whose address is what the caller said."""
    if not name:
        return None
    try:
        answer = await call_api(client, "GET", "/api/elders", stop=stop, params={"q": name, "limit": 20})
    except Refused as refused:
        log.info("elder search %r refused: %s", name, refused)
        return None
    if answer is None:
        return None
    named = [e for e in answer["elders"] if e.get("name") == name]
    said = where[0] if where else ""
    matching = [e for e in named if said and e.get("address") == said] or named
    return str(matching[0]["elder_id"]) if len(matching) == 1 else None


async def locate(client: httpx.AsyncClient, incident_id: str, card: Card, stop: asyncio.Event) -> bool:
    """Place an incident where the caller says it is (after calling them back); whether it was placed."""
    for where in card.script.where:
        path = f"/api/incidents/{incident_id}/location"
        try:
            answer = await call_api(client, "POST", path, stop=stop, body={"address": where})
        except Refused as refused:
            if refused.code == "address_not_found":
                continue
            log.info("locate %s refused: %s", incident_id, refused)
            return False
        if answer is not None:
            card.placed_by = card.placed_by or "address"
        return answer is not None
    return False


async def call_back(client: httpx.AsyncClient, card: Card, outcome: str, stop: asyncio.Event) -> bool:
    path = f"/api/calls/{card.call_id}/callback"
    try:
        answer = await call_api(client, "POST", path, stop=stop, body={"outcome": outcome})
    except Refused as refused:  # someone else called back meanwhile
        log.info("call back %s refused: %s", card.call_id, refused)
        return False
    card.called_back = answer is not None
    return card.called_back


async def _acknowledge(client: httpx.AsyncClient, incident_id: str, stop: asyncio.Event) -> None:
    with contextlib.suppress(Refused):  # already acknowledged (the call joined an incident someone had seen)
        await call_api(client, "POST", f"/api/incidents/{incident_id}/acknowledge", stop=stop)
