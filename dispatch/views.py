"""Views: the projections as the JSON the console, the phones and the API show. Nothing here writes.

:class:`Views` is how the outer packages read the core: every read of incidents, responders, calls, elders
and the supervisor's figures goes through one of its methods, never through the projection or the directory
themselves. The functions below it build each view from the projection and the directory.

Caregivers get two different views of the same incident: before accepting, what they need to decide (type,
urgency, distance, community); after accepting, the address, phone and key notes.
"""

from __future__ import annotations

from typing import Any

import msgspec

from dispatch.clock import Clock, utc
from dispatch.directory import Directory
from dispatch.entries import (
    AssignmentFact,
    AssignmentStatus,
    Fact,
    OfferAccepted,
    OfferDeclined,
    OfferExpired,
    OfferMade,
    OfferWithdrawn,
)
from dispatch.errors import NotFound
from dispatch.machines import OPEN_STATES, AssignmentState, IncidentEvent, incident_allows
from dispatch.registry import Device, Elder
from dispatch.reports import escalations, kpis
from dispatch.settings import Settings
from dispatch.state import Assignment, Call, DeviceStatus, Incident, NoteLine, Projection
from dispatch.triage import age_on

#: what a phone is told about each fact of its offer or job: the offer, the job as it now stands, or why the
#: offer closed
_PHONE_NEWS: dict[type[Fact], str] = {
    OfferMade: "offer",
    OfferAccepted: "job",
    AssignmentStatus: "job",
    OfferDeclined: "declined",
    OfferExpired: "expired",
    OfferWithdrawn: "withdrawn",
}

ELDER_LIST_FIELDS = {"elder_id", "name", "phone", "address", "lat", "lon", "community", "caregiver_id"}


class Views:
    """The core's read side, for the console, the phones and the gateway's key lookup."""

    def __init__(self, state: Projection, directory: Directory, clock: Clock, settings: Settings) -> None:
        self._state = state
        self._directory = directory
        self._clock = clock
        self._settings = settings

    # -- incidents and the console --------------------------------------------------------------

    def incident(self, incident_id: str) -> dict[str, Any]:
        incident = self._state.incidents.get(incident_id)
        if incident is None:
            raise NotFound(f"no incident {incident_id}", field="incident_id")
        return incident_view(incident, self._state, self._directory)

    def incidents(self, *, open_only: bool = False, limit: int = 200) -> list[dict[str, Any]]:
        chosen = sorted_incidents(self._state, open_only=open_only, limit=limit)
        return [incident_view(i, self._state, self._directory) for i in chosen]

    def snapshot(self, seq: int) -> dict[str, Any]:
        """Everything a console shows, as of journal entry ``seq``."""
        return {
            "type": "snapshot",
            "seq": seq,
            "incidents": self.incidents(open_only=True),
            "responders": self.responders(),
            "calls": self.calls(open_only=True),
        }

    def calls(self, *, open_only: bool = False, limit: int = 200) -> list[dict[str, Any]]:
        """Hotline calls, newest first: with ``open_only``, those still on an operator's desk (ringing, talking,
        answered and not yet classified, or to be called back)."""
        chosen = [c for c in reversed(self._state.calls.values()) if c.open or not open_only]
        return [call_view(c, self._directory) for c in chosen[:limit]]

    def call(self, call_id: str) -> dict[str, Any]:
        call = self._state.calls.get(call_id)
        if call is None:
            raise NotFound(f"no call {call_id}", field="call_id")
        return call_view(call, self._directory)

    def kpis(self, *, include_drill: bool = False) -> dict[str, Any]:
        return kpis(self._state, self._clock.now(), self._settings.timezone, include_drill=include_drill)

    def escalations(self, *, include_drill: bool = False) -> list[dict[str, Any]]:
        waiting = escalations(self._state, include_drill=include_drill)
        return [incident_view(i, self._state, self._directory) for i in waiting]

    # -- responders and phones ------------------------------------------------------------------

    def has_responder(self, responder_id: str) -> bool:
        return responder_id in self._directory.responders

    def responders(self) -> list[dict[str, Any]]:
        now = self._clock.now()
        return [responder_view(r, self._state, self._directory, now) for r in self._directory.responders]

    def responder(self, responder_id: str) -> dict[str, Any]:
        if responder_id not in self._directory.responders:
            raise NotFound(f"no responder {responder_id}", field="responder_id")
        return responder_view(responder_id, self._state, self._directory, self._clock.now())

    def hello(self, responder_id: str) -> dict[str, Any]:
        """A phone's first message after every (re)connect: who they are and their current offer or job."""
        status = self._state.responders.get(responder_id)
        offer = job = None
        if status is not None and status.assignment_id is not None:
            assignment = self._state.assignments[status.assignment_id]
            incident = self._state.incidents[assignment.incident_id]
            if assignment.state is AssignmentState.OFFERED:
                offer = offer_view(assignment, incident, self._directory)
            else:
                job = job_view(assignment, incident, self._directory, self._clock.now(), self._settings.centre_phone)
        return {"type": "hello", "responder": self.responder(responder_id), "offer": offer, "job": job}

    def phone_message(self, fact: AssignmentFact) -> dict[str, Any] | None:
        """What the responder's phone is told about a fact of their offer or job (None: nothing)."""
        assignment = self._state.assignments.get(fact.assignment_id)
        if assignment is None:
            return None
        incident = self._state.incidents[assignment.incident_id]
        news = _PHONE_NEWS[type(fact)]
        if news == "offer":
            return {"type": "offer", **offer_view(assignment, incident, self._directory)}
        if news == "job":
            now = self._clock.now()
            return {"type": "job", **job_view(assignment, incident, self._directory, now, self._settings.centre_phone)}
        return {"type": "offer_closed", "assignment_id": assignment.assignment_id, "reason": news}

    def job_updates(self, incident_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The job as it now stands, for each responder working on this incident (after a shared note, a new
        place): (responder id, message)."""
        incident = self._state.incidents.get(incident_id)
        if incident is None:
            return []
        now = self._clock.now()
        return [
            (
                a.responder_id,
                {"type": "job", **job_view(a, incident, self._directory, now, self._settings.centre_phone)},
            )
            for a in (self._state.assignments[i] for i in incident.assignments)
            if a.active and a.state is not AssignmentState.OFFERED
        ]

    # -- the registry ---------------------------------------------------------------------------

    def elders(self, *, community: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """A page of the registry list (identity, address and community only) and the total that matched."""
        elders = [e for e in self._directory.elders.values() if community is None or e.community.startswith(community)]
        page = elders[offset : offset + limit]
        return [e.model_dump(mode="json", include=ELDER_LIST_FIELDS) for e in page], len(elders)

    def search_elders(self, q: str, *, limit: int = 20) -> list[dict[str, Any]]:
        """Elders matching what an operator typed (name, pinyin initials, a phone or its last digits, a
        contact's phone, the address, the id), best first, each with what matched."""
        found = []
        for hit in self._directory.search.search(q, limit):
            elder = self._directory.elders.get(hit.elder_id)
            if elder is not None:
                found.append({**elder.model_dump(mode="json", include=ELDER_LIST_FIELDS), "matched": hit.matched})
        return found

    def places(self, q: str, *, limit: int = 10) -> list[dict[str, Any]]:
        """Places of the registry's gazetteer matching a typed address, most specific first."""
        found = self._directory.places.geocode(q, exactly_one=False, limit=limit) or []
        return [
            {"label": place.address, "lat": place.latitude, "lon": place.longitude, "kind": place.raw.get("kind")}
            for place in found
        ]

    def geocode(self, address: str) -> tuple[float, float, str] | None:
        """The best place for a typed address: (lat, lon, the place's name), or None when nothing matches."""
        place = self._directory.places.geocode(address, exactly_one=True)
        return (place.latitude, place.longitude, place.address) if place is not None else None

    def elder_record(self, elder_id: str) -> dict[str, Any]:
        """The whole record, with the elder's devices and recent incidents (journal the read first)."""
        elder = self._directory.elders.get(elder_id)
        if elder is None:
            raise NotFound(f"no elder {elder_id}", field="elder_id")
        record: dict[str, Any] = elder.model_dump(mode="json")
        record["devices"] = [
            device_view(d, self._state.devices.get(d.device_id))
            for d in self._directory.devices.values()
            if d.elder_id == elder_id
        ]
        record["recent_incidents"] = elder_incidents(self._state, elder_id)
        return record

    def communities(self) -> dict[str, dict[str, dict[str, int]]]:
        """The district / street / community tree with the number of elders in each community."""
        tree: dict[str, dict[str, dict[str, int]]] = {}
        for elder in self._directory.elders.values():
            district, street, community = elder.community.split("/")
            streets = tree.setdefault(district, {}).setdefault(street, {})
            streets[community] = streets.get(community, 0) + 1
        for responder in self._directory.responders.values():
            district, street, community = responder.community.split("/")
            tree.setdefault(district, {}).setdefault(street, {}).setdefault(community, 0)
        return tree

    def device_key(self, device_id: str) -> bytes | None:
        """A device's AES key, for the gateway's codecs (None: no key, or no such device)."""
        device = self._directory.devices.get(device_id)
        if device is None or device.aes_key is None:
            return None
        return bytes.fromhex(device.aes_key)


def incident_view(incident: Incident, state: Projection, directory: Directory) -> dict[str, Any]:
    elder = directory.elders.get(incident.elder_id) if incident.elder_id else None
    working = [state.assignments[a] for a in incident.assignments if state.assignments[a].active]
    return {
        "incident_id": incident.incident_id,
        "state": incident.state.value,
        "state_since": incident.state_since,
        "actions": actions(incident, working),
        "open": incident.open,
        "alarm_type": incident.alarm_type,
        "source": incident.source,
        "priority": incident.priority,
        "priority_reasons": list(incident.priority_reasons),
        "elder_id": incident.elder_id,
        "elder_name": elder.name if elder else None,
        "address": elder.address if elder else None,
        "community": elder.community if elder else None,
        "device_id": incident.device_id,
        "call_id": incident.call_id,
        "caller": incident.caller or (call.caller if (call := state.calls.get(incident.call_id or "")) else None),
        "place": incident.place,
        "lat": incident.lat,
        "lon": incident.lon,
        "location": incident.location,
        "opened_at": incident.opened_at,
        "answer_deadline": incident.answer_deadline,
        "acknowledged_at": incident.acknowledged_at,
        "acknowledged_by": incident.acknowledged_by,
        "acknowledged_by_name": actor_name(incident.acknowledged_by, directory),
        "updated_at": incident.updated_at,
        "closed_at": incident.closed_at,
        "supervisor_alerted": incident.supervisor_alerted,
        "needs_manual": incident.needs_manual,
        "manual_reason": incident.manual_reason,
        "drill": incident.drill,
        "alarms": msgspec.to_builtins(incident.alarms),
        "ranking": msgspec.to_builtins(incident.ranking),
        "clinic": msgspec.to_builtins(incident.clinic),
        "notes": [note_view(n, directory) for n in incident.notes],
        "proposal": note_view(incident.proposal, directory) if incident.proposal and not working else None,
        "outcome": incident.outcome,
        "escalated_to": incident.escalated_to,
        "assignments": [assignment_view(state.assignments[a], directory) for a in incident.assignments],
    }


def actions(incident: Incident, working: list[Assignment]) -> list[str]:
    """What an operator may do to the incident now (the console enables exactly these buttons)."""
    allowed = [
        name
        for name, event in (
            ("cancel", IncidentEvent.CANCEL),
            ("escalate", IncidentEvent.ESCALATE),
            ("resolve", IncidentEvent.RESOLVE),
            ("close", IncidentEvent.CLOSE),
        )
        if incident_allows(incident.state, event)
    ]
    if incident.acknowledged_at is None and incident_allows(incident.state, IncidentEvent.ACKNOWLEDGE):
        allowed.insert(0, "acknowledge")
    if incident_allows(incident.state, IncidentEvent.OFFER) or incident_allows(
        incident.state, IncidentEvent.REOPEN_DISPATCH
    ):
        # replacing someone who accepted or is on scene is allowed, with a confirmation (``replace``)
        on_job = any(a.state is not AssignmentState.OFFERED for a in working)
        allowed.append("replace" if on_job else "dispatch")
    if incident.open:
        allowed += ["locate", "note"]
        if not incident.technical:
            allowed.append("retype")
    return allowed


def note_view(note: NoteLine, directory: Directory) -> dict[str, Any]:
    return {
        "ts": note.ts,
        "actor": note.actor,
        "actor_name": actor_name(note.actor, directory),
        "text": note.text,
        "shared": note.shared,
    }


def actor_name(actor: str | None, directory: Directory) -> str | None:
    """Who did it, as a person reads it: a caregiver's name, an account's user name, or ``system``."""
    if actor is None:
        return None
    role, _, who = actor.partition(":")
    if not who:
        return actor
    profile = directory.responders.get(who) if role == "caregiver" else None
    return profile.name if profile else who


def assignment_view(assignment: Assignment, directory: Directory) -> dict[str, Any]:
    profile = directory.responders.get(assignment.responder_id)
    return {
        "assignment_id": assignment.assignment_id,
        "incident_id": assignment.incident_id,
        "responder_id": assignment.responder_id,
        "responder_name": profile.name if profile else None,
        "state": assignment.state.value,
        "by": assignment.by,
        "offered_at": assignment.offered_at,
        "deadline": assignment.deadline,
        "distance_m": assignment.distance_m,
        "eta_s": assignment.eta_s,
        "updated_at": assignment.updated_at,
        "note": assignment.note,
    }


def sorted_incidents(state: Projection, *, open_only: bool = False, limit: int = 200) -> list[Incident]:
    """Open incidents first (most urgent, then oldest), then the rest, newest first."""
    open_ = sorted(
        (i for i in state.incidents.values() if i.state in OPEN_STATES),
        key=lambda i: (i.priority, i.opened_at),
    )
    if open_only:
        return open_[:limit]
    done = sorted(
        (i for i in state.incidents.values() if i.state not in OPEN_STATES),
        key=lambda i: -i.opened_at,
    )
    return (open_ + done)[:limit]


def offer_view(assignment: Assignment, incident: Incident, directory: Directory) -> dict[str, Any]:
    """What a caregiver sees before accepting: no name, no address."""
    elder = directory.elders.get(incident.elder_id) if incident.elder_id else None
    return {
        "assignment_id": assignment.assignment_id,
        "incident_id": incident.incident_id,
        "state": assignment.state.value,
        "alarm_type": incident.alarm_type,
        "priority": incident.priority,
        "community": elder.community if elder else None,
        "place": incident.place,  # where an operator placed an unknown caller (a building, not a person)
        "distance_m": assignment.distance_m,
        "eta_s": assignment.eta_s,
        "expires_at": assignment.deadline,
    }


def job_view(
    assignment: Assignment, incident: Incident, directory: Directory, now: float, centre_phone: str = ""
) -> dict[str, Any]:
    """What a caregiver sees once they accepted: where to go, how to get in, what the caller and the operator
    said (the notes shared with them, and their own), and whom to call."""
    view = offer_view(assignment, incident, directory)
    elder = directory.elders.get(incident.elder_id) if incident.elder_id else None
    view["elder"] = elder_brief(elder, now) if elder else None
    view["lat"], view["lon"] = incident.lat, incident.lon
    view["location"] = incident.location
    view["place"] = incident.place
    view["caller"] = incident.caller  # an unregistered caller's number: the caregiver can call them back
    view["notes"] = [note_view(n, directory) for n in incident.notes if n.shared]
    view["access"] = elder.access if elder else ""
    view["centre_phone"] = centre_phone
    return view


def elder_brief(elder: Elder, now: float) -> dict[str, Any]:
    return {
        "elder_id": elder.elder_id,
        "name": elder.name,
        "age": age_on(elder.birth_date, utc(now).date()) if elder.birth_date else None,
        "phone": elder.phone,
        "address": elder.address,
        "lat": elder.lat,
        "lon": elder.lon,
        "risk_flags": elder.risk_flags,
        "care_level": elder.care_level,
        "medical_notes": elder.medical_notes,
        "contacts": [c.model_dump() for c in elder.contacts],
        "access": elder.access,
    }


def responder_view(responder_id: str, state: Projection, directory: Directory, now: float) -> dict[str, Any]:
    profile = directory.responders[responder_id]
    status = state.responders.get(responder_id)
    return {
        "responder_id": responder_id,
        "name": profile.name,
        "kind": profile.kind,
        "skills": profile.skills,
        "travel": profile.travel,
        "community": profile.community,
        "on_duty": bool(status and status.on_duty),
        "available": state.available(responder_id, now),
        "assignment_id": status.assignment_id if status else None,
        "lat": status.lat if status and status.lat is not None else profile.lat,
        "lon": status.lon if status and status.lon is not None else profile.lon,
        "pos_at": status.pos_at if status else None,
    }


def device_view(device: Device, status: DeviceStatus | None) -> dict[str, Any]:
    """A device as the console shows it: the registry record (never its key) and what it last reported."""
    view = device.model_dump(mode="json", exclude={"aes_key"})
    view["status"] = None
    if status is not None:
        view["status"] = {
            "last_seen": status.last_seen,
            "battery": status.battery,
            "lat": status.lat,
            "lon": status.lon,
            "pos_at": status.pos_at,
        }
    return view


def elder_incidents(state: Projection, elder_id: str, *, limit: int = 5) -> list[dict[str, Any]]:
    """The elder's most recent incidents, newest first, in brief (for the operator's record panel)."""
    mine = sorted(
        (i for i in state.incidents.values() if i.elder_id == elder_id),
        key=lambda i: -i.opened_at,
    )
    return [
        {
            "incident_id": i.incident_id,
            "alarm_type": i.alarm_type,
            "state": i.state.value,
            "priority": i.priority,
            "opened_at": i.opened_at,
            "outcome": i.outcome,
            "escalated_to": i.escalated_to,
            "drill": i.drill,
        }
        for i in mine[:limit]
    ]


def call_view(call: Call, directory: Directory) -> dict[str, Any]:
    """A call record: who called (the elder, a family contact, or unknown), when it rang, was answered and
    ended, and what the operator made of it."""
    elder = directory.elders.get(call.elder_id) if call.elder_id else None
    contact = None if elder else directory.contact_for_phone(call.caller)
    return {
        "call_id": call.call_id,
        "caller": call.caller,
        "line": call.line,
        "state": call.state,
        "open": call.open,
        "drill": call.drill,
        "started_at": call.started_at,
        "answered_at": call.answered_at,
        "answered_by": actor_name(call.answered_by, directory),
        "ended_at": call.ended_at,
        "elder_id": call.elder_id,
        "elder_name": elder.name if elder else None,
        "address": elder.address if elder else None,
        "caller_is": "elder" if elder else ("contact" if contact else "unknown"),
        "contact": contact,
        "incident_id": call.incident_id,
        "kind": call.kind,
        "text": call.text,
        "callback": call.callback,
        "callback_outcome": call.callback_outcome,
        "words": call.words,
    }
