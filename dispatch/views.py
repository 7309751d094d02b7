"""Views: the projections as the JSON the console, the phones and the API show.

Caregivers get two different views of the same incident: before accepting, what they need to decide (type,
urgency, distance, community); after accepting, the address, phone and key notes. Nothing here writes.
"""

from __future__ import annotations

from typing import Any

from dispatch.clock import utc
from dispatch.devices import DeviceStatus
from dispatch.directory import Directory
from dispatch.machines import OPEN_STATES
from dispatch.registry import Device, Elder
from dispatch.state import Assignment, Call, Incident, Projection
from dispatch.triage import age_on


def incident_view(incident: Incident, state: Projection, directory: Directory) -> dict[str, Any]:
    elder = directory.elders.get(incident.elder_id) if incident.elder_id else None
    return {
        "incident_id": incident.incident_id,
        "state": incident.state.value,
        "open": incident.open,
        "alarm_type": incident.alarm_type,
        "source": incident.source,
        "priority": incident.priority,
        "priority_reasons": incident.priority_reasons,
        "elder_id": incident.elder_id,
        "elder_name": elder.name if elder else None,
        "address": elder.address if elder else None,
        "community": elder.community if elder else None,
        "device_id": incident.device_id,
        "call_id": incident.call_id,
        "lat": incident.lat,
        "lon": incident.lon,
        "location": incident.location,
        "opened_at": incident.opened_at,
        "answer_deadline": incident.answer_deadline,
        "acknowledged_at": incident.acknowledged_at,
        "acknowledged_by": incident.acknowledged_by,
        "updated_at": incident.updated_at,
        "closed_at": incident.closed_at,
        "supervisor_alerted": incident.supervisor_alerted,
        "needs_manual": incident.needs_manual,
        "manual_reason": incident.manual_reason,
        "drill": incident.drill,
        "alarms": incident.alarms,
        "ranking": incident.ranking,
        "clinic": incident.clinic,
        "notes": incident.notes,
        "outcome": incident.outcome,
        "escalated_to": incident.escalated_to,
        "assignments": [assignment_view(state.assignments[a], directory) for a in incident.assignments],
    }


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
        "distance_m": assignment.distance_m,
        "eta_s": assignment.eta_s,
        "expires_at": assignment.deadline,
    }


def job_view(assignment: Assignment, incident: Incident, directory: Directory, now: float) -> dict[str, Any]:
    """What a caregiver sees once they accepted: where to go and what to know."""
    view = offer_view(assignment, incident, directory)
    elder = directory.elders.get(incident.elder_id) if incident.elder_id else None
    view["elder"] = elder_brief(elder, now) if elder else None
    view["lat"], view["lon"] = incident.lat, incident.lon
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
    view["status"] = status.as_dict() if status is not None else None
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
    elder = directory.elders.get(call.elder_id) if call.elder_id else None
    return {
        "call_id": call.call_id,
        "caller": call.caller,
        "line": call.line,
        "state": call.state,
        "started_at": call.started_at,
        "elder_id": call.elder_id,
        "elder_name": elder.name if elder else None,
        "incident_id": call.incident_id,
    }
