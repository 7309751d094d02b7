"""The wider circle's last rings: volunteers on call, then the elder's family, and how they are reached.

What it owns
    Who the last rings are and in which order, the identity a family member answers the phone page under (a
    *kin id*), what a family member may see of the elder, and the :class:`ContactChannel` that sends an SMS or
    makes a voice call to someone who is not on the phone page. The engine decides when the rings are reached
    (:meth:`dispatch.engine.Engine._last_rings`) and journals every offer and every message.

Rules
    1. The rings come after the whole circle of the centre's people found nobody free (the skill within
       ``match_radius_m``, the wider radii, anyone on duty): first the volunteers and neighbours who opted in
       (``Responder.on_call``), nearest by arrival from their registered home within ``on_call_radius_m``, at
       most ``max_offers`` of them; then the elder's contacts in calling order, each once.
    2. One at a time: the rings offer the incident to one person at a time. A decline or an expiry moves to the
       next person at once; ring offers do not count against ``max_offers``. A caregiver who becomes free while
       a ring's offer is pending is offered the incident besides (the projection's ``ringing``, served like the
       backlog): the first to accept takes it, the other offer is withdrawn.
    3. A contact with an account (``Contact.app``) is offered the alarm on the phone page under their kin id
       (``family`` offers, ``family_offer_timeout_s`` to answer) and also sent a message to open the page; one
       without is sent a message (call the centre) and the next contact follows at once: nobody waits on an SMS.
    4. A family member's accept, en route, on scene and done are the assignment state machine's, as for a
       caregiver; the incident's record and its read journal are the same.
    5. A message is journaled (``contact.notified``) before it is handed to the channel, and sent only once that
       entry is durable; a drill's messages are journaled and never sent. The channel is an adapter: the default
       one (:class:`LogChannel`) writes to the log, no network.
    6. A family member sees the alarm, where, the elder's name, phone and address, how to get in, what the
       operator shared and the centre's number; never the medical notes, care level, risk flags or the other
       contacts' numbers (those are the centre's assessment and the other relatives' own).

Never
    Never send a message from inside the engine's lock (the engine schedules it after the commit), and never
    offer a family member another elder's alarm.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Protocol

from dispatch.entries import ChannelKind
from dispatch.registry import Contact, Elder, normalise_phone

log = logging.getLogger("anxin.family")

#: how a family member's responder id begins: ``kin:<elder_id>:<phone digits>``
KIN_PREFIX = "kin:"

#: the alarm types as a family member reads them in a message (others by their code)
_ALARM_WORDS = {"sos": "紧急呼叫", "fall": "跌倒", "medical": "身体不适", "fire": "火警", "inactivity": "长时间未活动"}


def kin_id(elder_id: str, phone: str) -> str:
    """The responder id a family contact answers the phone page under: one per elder and contact phone."""
    return f"{KIN_PREFIX}{elder_id}:{normalise_phone(phone)}"


def is_kin(responder_id: str) -> bool:
    return responder_id.startswith(KIN_PREFIX)


def kin_elder_id(responder_id: str) -> str | None:
    """The elder whose contact a kin id is (None: not a kin id)."""
    if not is_kin(responder_id):
        return None
    elder_id, sep, digits = responder_id[len(KIN_PREFIX) :].rpartition(":")
    return elder_id if sep and elder_id and digits else None


def kin_contact(elders: dict[str, Elder], responder_id: str) -> tuple[Elder, Contact, int] | None:
    """The elder, the contact and its place in the calling order (1 first) a kin id stands for, or None."""
    elder_id = kin_elder_id(responder_id)
    elder = elders.get(elder_id) if elder_id is not None else None
    if elder is None:
        return None
    for position, contact in enumerate(elder.contacts, start=1):
        if kin_id(elder.elder_id, contact.phone) == responder_id:
            return elder, contact, position
    return None


def masked(phone: str) -> str:
    """A phone number as a log may show it: 138****0001."""
    digits = normalise_phone(phone)
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 8 else "****"


def message_text(elder_name: str, alarm_type: str, centre_phone: str, *, offered: bool) -> str:
    """What the message says: the alarm, and either "answer on the page" or "call the centre"."""
    alarm = _ALARM_WORDS.get(alarm_type, alarm_type)
    then = "请打开安心手机页，回复“我去”或“去不了”" if offered else "如能前往请致电服务中心"
    return f"【安心】{elder_name}发出{alarm}警报，附近暂无护理员。{then}。服务中心电话 {centre_phone}"


class ContactChannel(Protocol):
    """How someone off the phone page is reached: an SMS gateway, a voice-call service. ``send`` may fail (it
    raises); the engine logs the failure, the journal keeps the attempt."""

    @property
    def kind(self) -> ChannelKind: ...

    async def send(self, phone: str, text: str) -> None: ...


class LogChannel:
    """The default channel: the message goes to the log ("SMS to 138****0001: ..."), nowhere else."""

    def __init__(self, kind: ChannelKind = "sms") -> None:
        self._kind: ChannelKind = kind
        self.sent: deque[tuple[str, str]] = deque(maxlen=100)  # the last (phone, text) sent, for tests and the demo

    @property
    def kind(self) -> ChannelKind:
        return self._kind

    async def send(self, phone: str, text: str) -> None:
        self.sent.append((phone, text))
        log.info("%s to %s: %s", self._kind.upper(), masked(phone), text)


# -- what a family member sees (rule 6) ------------------------------------------------------------------------

#: the elder's fields a family member's job card leaves out, and what they read instead
WITHHELD: dict[str, object] = {"medical_notes": "", "care_level": None, "risk_flags": [], "contacts": []}


def family_offer(view: dict[str, Any], elder: Elder | None, centre_phone: str) -> dict[str, Any]:
    """A family member's offer: the caregiver's (the alarm, its priority, the deadline) plus whom it is about and
    where (their own relative: they know the name and the home already) and the centre's number."""
    view = {**view, "family": True, "centre_phone": centre_phone}
    if elder is not None:
        view["elder_name"], view["address"] = elder.name, elder.address
    return view


def family_job(view: dict[str, Any]) -> dict[str, Any]:
    """A family member's job card: the caregiver's, without the centre's assessment and the other relatives."""
    elder = view.get("elder")
    if elder is not None:
        view["elder"] = {**elder, **WITHHELD}
    view["family"] = True
    return view


def kin_view(elders: dict[str, Elder], responder_id: str, assignment_id: str | None) -> dict[str, Any]:
    """Who a family member is on their phone page (the ``hello``): their name, relation and whose contact."""
    found = kin_contact(elders, responder_id)
    elder, contact = (found[0], found[1]) if found else (None, None)
    return {
        "responder_id": responder_id,
        "name": contact.name if contact else responder_id,
        "kind": "family",
        "relation": contact.relation if contact else "",
        "elder_name": elder.name if elder else None,
        "on_duty": False,
        "available": False,
        "assignment_id": assignment_id,
    }


def kin_name(elders: dict[str, Elder], responder_id: str) -> str | None:
    """A family member's name as the console shows who holds an offer: 李明（儿子）."""
    found = kin_contact(elders, responder_id)
    if found is None:
        return None
    contact = found[1]
    return f"{contact.name}（{contact.relation}）" if contact.relation else contact.name
