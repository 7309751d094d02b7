"""The HTTP API under ``/api``: auth, intake, incidents, registry, responders and the journal.

Every route but login and the health checks needs a bearer token and one of the roles it names. Bodies are
validated by pydantic (a bad field gets 422 naming it); domain refusals come back as 404 / 409 / 422 with
``{"detail": ..., "code": ..., "params": {...}, "field": ...}`` (the pages translate ``code``, see
console.errors); nothing is written for a refused request.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import Field, TypeAdapter, ValidationError

from console.auth import ROLES, Principal
from console.deps import Admin, AlarmFeed, Body, Caregiver, CoreDep, HotlineFeed, Staff, Supervisors
from console.errors import Forbidden
from console.registryio import named_duplicates
from console.telephony import operator_of
from dispatch.commands import AlarmRequest, CallEvent, Classification
from dispatch.core import Core
from dispatch.entries import CallKind, PlacedBy
from dispatch.errors import Conflict, InvalidInput, NotFound
from dispatch.journal import Entry
from dispatch.registry import Device, Elder, Ident, Latitude, Longitude, Phone, Responder
from dispatch.scopes import Reach
from dispatch.triage import ALARM_TYPES

router = APIRouter(prefix="/api")

AlarmType = Literal[ALARM_TYPES]  # type: ignore[valid-type]


# -- intake -----------------------------------------------------------------------------------------


class AlarmIn(Body):
    elder_id: str | None = None
    device_id: str | None = None
    alarm_type: AlarmType
    lat: Latitude | None = None
    lon: Longitude | None = None
    note: str | None = Field(None, max_length=2000)
    drill: bool = False


@router.post("/alarms", status_code=201, tags=["intake"])
async def raise_alarm(body: AlarmIn, core: CoreDep, who: AlarmFeed) -> dict[str, Any]:
    if body.elder_id is not None:
        core.views.elder_in_reach(body.elder_id, who.reach)
    if body.device_id is not None:
        _device_in_reach(core, body.device_id, who)
    opened = await core.intake.alarm(
        AlarmRequest(
            body.alarm_type,
            actor=who.actor,
            source="api",
            elder_id=body.elder_id,
            device_id=body.device_id,
            lat=body.lat,
            lon=body.lon,
            note=body.note,
            drill=body.drill,
        )
    )
    return {
        "incident_id": opened.incident_id,
        "priority": opened.priority,
        "seq": core.journal.durable_seq,
        "attached": opened.attached,
    }


class HotlineEventIn(Body):
    event: Literal["ringing", "queued", "answered", "transferred", "ended"]
    call_id: str = Field(min_length=1, max_length=128)
    caller: str = Field(min_length=1, max_length=32)
    line: str = Field("", max_length=32)
    open_incident: bool = Field(True, description="a call that ends unanswered opens an incident to call back")
    alarm_type: AlarmType = "call"
    drill: bool = False
    words: str = Field("", max_length=500, description="what the caller said, when the telephony knows it")
    extension: str = Field(
        "",
        max_length=32,
        description="answered: the extension that picked up; transferred: "
        "the one it went to (an operator's, through settings pbx_extensions)",
    )
    queue: str = Field("", max_length=64, description="queued: the PBX queue the caller waits in")
    cause: str = Field("", max_length=200, description="ended: the PBX's hangup cause")


@router.post("/hotline/events", tags=["intake"])
async def hotline_event(body: HotlineEventIn, core: CoreDep, who: HotlineFeed) -> dict[str, Any]:
    """A telephony event. A ringing call pops the caller on the consoles; an answered call waits for the
    operator's word (``POST /api/calls/{call_id}/classify``); a call that ends unanswered opens an incident."""
    if not who.reach.everywhere:
        # the telephony reports every call of the centre (and learns whose number calls): a person or a key
        # limited to part of it may not
        raise Forbidden("telephony events are the whole centre's: the PBX's key, or a person who sees it all",
                        code="out_of_scope", params={"place": "*"})  # fmt: skip
    outcome = await core.intake.call(
        CallEvent(
            body.event,
            call_id=body.call_id,
            caller=body.caller,
            line=body.line,
            actor=who.actor,
            open_incident=body.open_incident,
            alarm_type=body.alarm_type,
            drill=body.drill,
            words=body.words,
            operator=operator_of(core, body.extension),
            extension=body.extension,
            queue=body.queue,
            cause=body.cause,
        )
    )
    return {
        "call_id": outcome.call_id,
        "state": outcome.state,
        "elder_id": outcome.elder_id,
        "incident_id": outcome.incident_id,
        "kind": outcome.kind,
    }


# -- calls ------------------------------------------------------------------------------------------


@router.get("/calls", tags=["calls"])
async def list_calls(
    core: CoreDep, who: Staff, open: bool = False, limit: Annotated[int, Query(ge=1, le=5000)] = 200
) -> dict[str, Any]:
    """Call records, newest first; ``open=true``: those still on an operator's desk (ringing, talking, answered
    and not yet classified, a call back due)."""
    calls = core.views.calls(who.reach, open_only=open, limit=limit)
    await core.engine.read("calls", len(calls), actor=who.actor, filter="open" if open else "")
    return {"calls": calls}


@router.get("/calls/{call_id:path}", tags=["calls"])
async def get_call(call_id: str, core: CoreDep, who: Staff) -> dict[str, Any]:
    """A call record; one from a number several elders share (a household's landline, a family member of
    several) offers them all (``offered``): the operator picks whom it is about (``POST .../pick``)."""
    for elder_id in core.views.call_elders(call_id, who.reach):  # each one shown is a read on record
        await core.engine.viewed(elder_id, actor=who.actor, what="call", subject=call_id)
    return core.views.call(call_id, who.reach)


class PickIn(Body):
    elder_id: str | None = Field(description="the elder the call is about, one of those it offers; null: someone else")


@router.post("/calls/{call_id:path}/pick", tags=["calls"])
async def pick_caller(call_id: str, body: PickIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Which of the elders a call offers it is about (a household sharing the landline that called, or the
    elders of the family member calling), or someone else (``elder_id`` null). On record; can be changed until
    the call is classified."""
    core.views.call(call_id, who.reach)
    if body.elder_id is not None:
        core.views.elder_in_reach(body.elder_id, who.reach)
    await core.engine.pick_caller(call_id, body.elder_id, actor=who.actor)
    return core.views.call(call_id, who.reach)


class ClassifyIn(Body):
    kind: CallKind
    text: str = Field("", max_length=2000, description="the caller's words, as the operator noted them")
    alarm_type: AlarmType | None = Field(None, description="for an emergency: fall, medical, sos, fire, ...")
    elder_id: str | None = Field(None, description="who the call is about, when the operator identified them")
    incident_id: str | None = Field(None, description="link the call to this open incident instead")
    lat: Latitude | None = None
    lon: Longitude | None = None
    address: str | None = Field(None, max_length=200, description="where the caller is, resolved offline")


@router.post("/calls/{call_id:path}/classify", tags=["calls"])
async def classify_call(call_id: str, body: ClassifyIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """The operator's word on an answered call: an emergency opens an incident and starts matching (or joins
    ``incident_id``); a service request, consultation or complaint is recorded with its text; a silent call
    leaves a call-back task; a wrong number is recorded and nothing else."""
    core.views.call(call_id, who.reach)
    if body.elder_id is not None:
        core.views.elder_in_reach(body.elder_id, who.reach)
    if body.incident_id is not None:
        core.views.incident(body.incident_id, who.reach)
    lat, lon, placed_by, address = _place(core, body.lat, body.lon, body.address)
    await core.engine.classify_call(
        Classification(
            call_id, body.kind, who.actor, text=body.text, alarm_type=body.alarm_type, elder_id=body.elder_id,
            incident_id=body.incident_id, lat=lat, lon=lon, placed_by=placed_by, address=address,
        )
    )  # fmt: skip
    return core.views.call(call_id, who.reach)


class CalledBackIn(Body):
    outcome: str = Field(min_length=1, max_length=1000)


@router.post("/calls/{call_id:path}/callback", tags=["calls"])
async def called_back(call_id: str, body: CalledBackIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """The call-back task of a silent call is done."""
    core.views.call(call_id, who.reach)
    await core.engine.called_back(call_id, body.outcome, actor=who.actor)
    return core.views.call(call_id, who.reach)


def _place(
    core: Core, lat: float | None, lon: float | None, address: str | None
) -> tuple[float | None, float | None, PlacedBy | None, str]:
    """Where the caller is: a point on the map, or a typed address resolved by the registry's gazetteer."""
    if lat is not None or lon is not None:
        if lat is None or lon is None:
            raise InvalidInput("give both lat and lon, or neither", field="lat", code="lat_lon_pair")
        return lat, lon, "map", address or ""
    if address:
        found = core.views.geocode(address)
        if found is None:
            raise NotFound(f"no place matches {address!r}", field="address", code="address_not_found",
                           params={"address": address})  # fmt: skip
        return found[0], found[1], "address", found[2]
    return None, None, None, ""


@router.get("/places", tags=["calls"])
async def places(
    core: CoreDep, who: Staff, q: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> dict[str, Any]:  # fmt: skip
    """Places matching a typed address, from the registry's own gazetteer (offline), most specific first."""
    return {"places": core.views.places(q, who.reach, limit=limit)}


# -- incidents --------------------------------------------------------------------------------------


@router.get("/incidents", tags=["incidents"])
async def list_incidents(
    core: CoreDep,
    who: Staff,
    open: bool = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> dict[str, Any]:
    incidents = core.views.incidents(who.reach, open_only=open, limit=limit)
    await core.engine.read("incidents", len(incidents), actor=who.actor, filter="open" if open else "")
    return {"incidents": incidents}


class NewIncidentIn(Body):
    alarm_type: AlarmType
    elder_id: str | None = None
    caller: Phone | None = Field(None, description="the caller's number when they are not registered")
    lat: Latitude | None = None
    lon: Longitude | None = None
    address: str | None = Field(None, max_length=200, description="where the caller is, resolved offline")
    note: str | None = Field(None, max_length=2000)
    drill: bool = False


@router.post("/incidents", status_code=201, tags=["incidents"])
async def open_incident(body: NewIncidentIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """An incident opened by hand: for a registered elder (``elder_id``), or for a caller nobody knows yet
    (``caller``) placed by a point (``lat``/``lon``) or a typed ``address``. Without a place it waits for one
    (``POST /api/incidents/{id}/location``) before anyone can be offered it."""
    if body.elder_id is None and body.caller is None:
        raise InvalidInput("say who: elder_id or caller", field="elder_id", code="incident_needs_place")
    if body.elder_id is not None:
        core.views.elder_in_reach(body.elder_id, who.reach)
    lat, lon, placed_by, address = _place(core, body.lat, body.lon, body.address)
    opened = await core.intake.alarm(
        AlarmRequest(
            body.alarm_type, actor=who.actor, source="operator", elder_id=body.elder_id, lat=lat, lon=lon,
            note=body.note, drill=body.drill, caller=body.caller, placed_by=placed_by, address=address,
        )
    )  # fmt: skip
    return {**_view(core, opened.incident_id, who), "attached": opened.attached}


class LocateIn(Body):
    lat: Latitude | None = None
    lon: Longitude | None = None
    address: str | None = Field(None, max_length=200)


@router.post("/incidents/{incident_id}/location", tags=["incidents"])
async def locate(incident_id: str, body: LocateIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Place the incident where the caller says they are (a point on the map, or a typed address); matching
    starts from there."""
    _view(core, incident_id, who)  # outside their sight: 404 before anything is resolved
    lat, lon, placed_by, address = _place(core, body.lat, body.lon, body.address)
    if lat is None or lon is None or placed_by is None:
        raise InvalidInput("give lat and lon, or an address", field="address", code="incident_needs_place")
    place = core.views.community_at(lat, lon)
    view = _view(core, incident_id, who)
    if view["elder_id"] is None and not who.reach.covers(place) and view["acknowledged_by"] != who.actor:
        # a stranger placed there would leave their sight (an elder's incident stays the elder's community's):
        # the operator who took it on (acknowledged it) may; others ask
        raise Forbidden(f"{place} is outside your part of the network", code="out_of_scope",
                        params={"place": place or "*"})  # fmt: skip
    await core.engine.locate(incident_id, lat, lon, by=placed_by, actor=who.actor, address=address)
    return _view(core, incident_id, who)


@router.get("/incidents/{incident_id}", tags=["incidents"])
async def get_incident(incident_id: str, core: CoreDep, who: Staff) -> dict[str, Any]:
    elder_id = core.views.incident_elder(incident_id, who.reach)
    if elder_id is not None:
        await core.engine.viewed(elder_id, actor=who.actor, what="incident", subject=incident_id)
    return core.views.incident(incident_id, who.reach)


class DispatchIn(Body):
    responder_id: str
    replace: bool = Field(False, description="withdraw a responder who accepted, is en route or on scene")


class ReasonIn(Body):
    reason: str = Field(min_length=1, max_length=1000)


class EscalateIn(Body):
    service: Literal["120", "110", "119"]
    note: str = Field("", max_length=1000)


class NoteIn(Body):
    text: str = Field(min_length=1, max_length=2000)
    shared: bool = Field(False, description="show it on the assigned caregiver's phone")


class OutcomeIn(Body):
    outcome: str = Field(min_length=1, max_length=1000)


def _view(core: Core, incident_id: str, who: Principal) -> dict[str, Any]:
    """The incident as this person sees it; outside their reach, 404 as if it did not exist (asked before a
    command, so nothing is done to an incident they may not see)."""
    return core.views.incident(incident_id, who.reach)


@router.post("/incidents/{incident_id}/acknowledge", tags=["incidents"])
async def acknowledge(incident_id: str, core: CoreDep, who: Staff) -> dict[str, Any]:
    _view(core, incident_id, who)
    await core.engine.acknowledge(incident_id, actor=who.actor)
    return _view(core, incident_id, who)


@router.post("/incidents/{incident_id}/dispatch", tags=["incidents"])
async def dispatch(incident_id: str, body: DispatchIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    _view(core, incident_id, who)
    await core.engine.dispatch(incident_id, body.responder_id, actor=who.actor, replace=body.replace)
    return _view(core, incident_id, who)


class RetypeIn(Body):
    alarm_type: AlarmType


@router.post("/incidents/{incident_id}/type", tags=["incidents"])
async def retype(incident_id: str, body: RetypeIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Say what the alarm really is (a pendant's SOS that is a fall): the type and the priority that follows;
    if nobody holds the offer or the job, it is ranked again for the new type's skill and offered."""
    _view(core, incident_id, who)
    await core.engine.retype(incident_id, body.alarm_type, actor=who.actor)
    return _view(core, incident_id, who)


@router.post("/incidents/{incident_id}/cancel", tags=["incidents"])
async def cancel(incident_id: str, body: ReasonIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    _view(core, incident_id, who)
    await core.engine.cancel(incident_id, body.reason, actor=who.actor)
    return _view(core, incident_id, who)


@router.post("/incidents/{incident_id}/escalate", tags=["incidents"])
async def escalate(incident_id: str, body: EscalateIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    _view(core, incident_id, who)
    await core.engine.escalate(incident_id, body.service, body.note, actor=who.actor)
    return _view(core, incident_id, who)


@router.post("/incidents/{incident_id}/notes", tags=["incidents"])
async def add_note(incident_id: str, body: NoteIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    _view(core, incident_id, who)
    await core.engine.note(incident_id, body.text, actor=who.actor, shared=body.shared)
    return _view(core, incident_id, who)


@router.post("/incidents/{incident_id}/resolve", tags=["incidents"])
async def resolve(incident_id: str, body: OutcomeIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    _view(core, incident_id, who)
    await core.engine.resolve(incident_id, body.outcome, actor=who.actor)
    return _view(core, incident_id, who)


@router.post("/incidents/{incident_id}/close", tags=["incidents"])
async def close(incident_id: str, core: CoreDep, who: Staff) -> dict[str, Any]:
    _view(core, incident_id, who)
    await core.engine.close(incident_id, actor=who.actor)
    return _view(core, incident_id, who)


# -- supervisor -------------------------------------------------------------------------------------


@router.get("/kpis", tags=["supervisor"])
async def get_kpis(core: CoreDep, who: Supervisors, drill: bool = False) -> dict[str, Any]:
    """Live figures of the supervisor's part of the network; drill incidents are left out unless ``drill=true``."""
    return core.views.kpis(who.reach, include_drill=drill)


@router.get("/escalations", tags=["supervisor"])
async def get_escalations(core: CoreDep, who: Supervisors, drill: bool = False) -> dict[str, Any]:
    incidents = core.views.escalations(who.reach, include_drill=drill)
    await core.engine.read("escalations", len(incidents), actor=who.actor)
    # alarms from devices nobody registered: one alert per interval, whole-centre supervisors only (no incident)
    return {"incidents": incidents, "unknown_devices": core.views.unknown_alerts(who.reach)}


@router.get("/coverage", tags=["supervisor"])
async def get_coverage(
    core: CoreDep,
    who: Supervisors,
    hour: Annotated[int | None, Query(description="the hour (0-23) whose uncovered elders are listed")] = None,
    target_min: Annotated[float | None, Query(description="the target in minutes (default coverage_target_s)")] = None,
) -> dict[str, Any]:
    """The 15-minute care circle of the supervisor's part of the network (dispatch.coverage, docs/coverage.md):
    per community, street and district and per hour of the day, how many elders a responder working then would
    reach within the target, and how many two would; the ids of those nobody reaches at ``hour`` (default: the
    worst hour). Responders of elsewhere count (the nearest help may live in the next street) but only those
    in reach are listed."""
    target = core.settings.coverage_target_s if target_min is None else target_min * 60.0
    records = core.views.coverage_records(who.reach)
    answer = await asyncio.to_thread(core.views.coverage, records, who.reach, hour=hour, target_s=target)
    listed = [elder_id for area in answer["areas"] for elder_id in area.get("uncovered", ())]
    await core.engine.read("coverage", len(listed), actor=who.actor, elder_ids=listed,
                           filter=f"hour={answer['hour']} target={target:g}")  # fmt: skip
    return answer


# -- journal ----------------------------------------------------------------------------------------


@router.get("/journal", tags=["journal"])
async def journal(
    core: CoreDep,
    who: Supervisors,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    """The service record from ``after`` on: the entries in the supervisor's reach (their part of the network,
    the contents their role reads). ``next_after`` is where to ask next (entries out of reach are skipped)."""
    shown, last = await _journal_page(core, who.reach, after, limit)
    # one read on record per reader and window, however many pages they follow
    await core.engine.read("journal", len(shown), actor=who.actor)
    return {"entries": [entry.as_dict() for entry in shown], "next_after": last, "head": core.journal.durable_seq}


async def _journal_page(core: Core, reach: Reach, after: int, limit: int) -> tuple[list[Entry], int]:
    """Up to ``limit`` entries in reach after ``after``, reading at most 20 pages of the journal for them."""
    shown: list[Entry] = []
    last = after
    for _ in range(20):
        entries = await core.journal.read(last, 1000)
        if not entries:
            break
        for entry in entries:
            if reach.sees(core.views.entry_scope(entry)):
                shown.append(entry)
            last = entry.seq
            if len(shown) == limit:
                return shown, last
    return shown, last


# -- registry ---------------------------------------------------------------------------------------


@router.get("/elders", tags=["registry"])
async def list_elders(
    core: CoreDep,
    who: Staff,
    q: Annotated[str | None, Query(max_length=100)] = None,
    community: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
    inactive: Annotated[bool, Query(description="also those who left the centre's care")] = False,
) -> dict[str, Any]:
    """The registry list: identity, address and community only; the full record is one read away.

    ``q`` searches instead (name, pinyin initials, phone or its last digits, a contact's phone, address, id):
    the best ``limit`` matches (at most 50), each with what matched. Elders who left the centre's care are
    listed only with ``inactive=true``."""
    if q is not None:
        found = core.views.search_elders(q, who.reach, limit=min(limit, 50), inactive=inactive)
        await core.engine.read("elders.search", len(found), actor=who.actor,
                               elder_ids=[e["elder_id"] for e in found], filter=q)  # fmt: skip
        return {"elders": found, "total": len(found)}
    elders, total = core.views.elders(who.reach, community=community, limit=limit, offset=offset, inactive=inactive)
    # the filter says what the list could hold: the community asked for, or the reader's scopes
    await core.engine.read("elders", len(elders), actor=who.actor, filter=community or ",".join(who.scopes))
    return {"elders": elders, "total": total}


@router.get("/elders/{elder_id}", tags=["registry"])
async def get_elder(elder_id: str, core: CoreDep, who: Staff) -> dict[str, Any]:
    core.views.elder_in_reach(elder_id, who.reach)
    await core.engine.viewed(elder_id, actor=who.actor)
    return core.views.elder_record(elder_id, who.reach)


@router.get("/elders/{elder_id}/reads", tags=["registry"])
async def elder_reads(
    elder_id: str, core: CoreDep, who: Supervisors, limit: Annotated[int, Query(ge=1, le=500)] = 200
) -> dict[str, Any]:
    """Who read this elder's personal data and when (the record, incidents and calls about them, searches
    that listed them, registry lists that could hold them), newest first."""
    return {"elder_id": elder_id, "reads": core.views.reads_of(elder_id, who.reach, limit=limit)}


@router.put("/elders/{elder_id}", tags=["registry"])
async def put_elder(
    elder_id: str, elder: Elder, core: CoreDep, who: Staff, confirm_distinct: bool = False
) -> dict[str, Any]:
    """Add or edit an elder of the caller's part of the network (staff; dispatch.keeping rule 1 journals the old
    and new values; ``active`` is changed by deactivating or reactivating only). A new elder who is probably one
    registered already (the same resident identity number, or name and birth date, or name and phone), or an
    edit of name, birth date, phone or number that makes one so, is refused with 409 ``possible_duplicate``
    naming those in the caller's reach (the others counted), unless ``confirm_distinct=true``: they were looked
    at and are two people."""
    _same_id("elder_id", elder_id, elder.elder_id)
    _place_in_reach(who, elder.community)
    before = None
    if core.views.elder_place(elder_id) is not None:
        before = core.views.elder_in_reach(elder_id, who.reach)  # moving an elder in from outside is outside too
    if elder.care_level != (before.care_level if before else None) and who.role != "admin":
        raise Forbidden("the care level is set by a needs assessment (an admin may correct an imported one)",
                        code="care_level_by_assessment")  # fmt: skip
    if elder.entitlement != (before.entitlement if before else None) and who.role not in ("admin", "supervisor"):
        raise Forbidden("who is served free or low-cost is a supervisor's decision", code="entitlement_by_supervisor")
    try:
        await core.engine.put_elder(elder, actor=who.actor, confirm_distinct=confirm_distinct)
    except Conflict as refused:
        if refused.code != "possible_duplicate":
            raise
        raise named_duplicates(refused, who) from None
    return elder.model_dump(mode="json")


@router.put("/devices/{device_id}", tags=["registry"])
async def put_device(device_id: str, device: Device, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Bind (or edit) a device of an elder in the caller's reach; the key is never answered nor journaled."""
    _same_id("device_id", device_id, device.device_id)
    core.views.elder_in_reach(device.elder_id, who.reach)
    if core.views.device_elder(device_id) is not None:
        _device_in_reach(core, device_id, who)
    await core.engine.put_device(device, actor=who.actor)
    return device.model_dump(mode="json", exclude={"aes_key"})


@router.put("/responders/{responder_id}", tags=["registry"])
async def put_responder(responder_id: str, responder: Responder, core: CoreDep, who: Admin) -> dict[str, Any]:
    _same_id("responder_id", responder_id, responder.responder_id)
    _place_in_reach(who, responder.community)
    if core.views.has_responder(responder_id):
        _responder_in_reach(core, responder_id, who)
    await core.engine.put_responder(responder, actor=who.actor)
    return responder.model_dump(mode="json")


def _place_in_reach(who: Principal, place: str) -> None:
    if not who.reach.covers(place):
        raise Forbidden(f"{place} is outside your part of the network", code="out_of_scope",
                        params={"place": place})  # fmt: skip


def _device_in_reach(core: Core, device_id: str, who: Principal) -> None:
    elder_id = core.views.device_elder(device_id)
    if elder_id is None or not who.reach.covers(core.views.elder_place(elder_id)):
        raise NotFound(f"no device {device_id}", field="device_id")


def _responder_in_reach(core: Core, responder_id: str, who: Principal) -> None:
    if not who.reach.covers(core.views.responder_place(responder_id)):
        raise NotFound(f"no responder {responder_id}", field="responder_id")


def _same_id(field: str, path_id: str, body_id: str) -> None:
    if path_id != body_id:
        raise InvalidInput(f"{field} in the body ({body_id}) differs from the path ({path_id})", field=field)


@router.get("/responders", tags=["registry"])
async def list_responders(core: CoreDep, who: Staff) -> dict[str, Any]:
    """The responders of the caller's part of the network, and those from elsewhere working on its incidents."""
    return {"responders": core.views.responders(who.reach)}


class RosterLine(Body):
    responder_id: Ident
    on: bool
    lat: Latitude | None = None
    lon: Longitude | None = None


class RosterIn(Body):
    roster: list[RosterLine] = Field(min_length=1, description="at most `roster_max_lines` lines (5,000) a call")


#: the bytes one roster line may take, white space included (a line with a position is about 100): a body
#: longer than the line limit times this cannot be a roster within the limit and is not read further
ROSTER_LINE_BYTES = 256
#: roster lines validated at a time, the loop yielded between (5,000 lines at once: about 20 ms)
ROSTER_VALIDATE = 500
_ROSTER_LINES = TypeAdapter(list[RosterLine])


#: the body as the API docs show it (the route reads the body itself, see below)
_ROSTER_SCHEMA = RosterIn.model_json_schema()
_ROSTER_SCHEMA["properties"]["roster"]["items"] = _ROSTER_SCHEMA.pop("$defs")["RosterLine"]


@router.post("/responders/duty", tags=["registry"], openapi_extra={"requestBody": {
    "required": True, "content": {"application/json": {"schema": _ROSTER_SCHEMA}}}})  # fmt: skip
async def set_roster(request: Request, core: CoreDep, who: Supervisors) -> dict[str, Any]:
    """Set many responders on or off duty at once (a shift roster), with their positions: at most
    ``roster_max_lines`` lines a call (a longer roster is sent in parts).

    The limit bites before the lines are validated: a body longer than the limit's lines can be is not read
    further, and a list of more lines is refused before a line of it is looked at (validating 200,000 lines
    was itself a quarter second of the event loop). The lines are validated a few hundred at a time, and
    written in chunks (dispatch.engine ``set_roster``), so an alarm arriving meanwhile is handled at once."""
    most = core.settings.roster_max_lines
    lines = await _roster_lines(request, most)
    roster: list[RosterLine] = []
    for start in range(0, len(lines), ROSTER_VALIDATE):
        if start:
            await asyncio.sleep(0)
        try:
            roster += _ROSTER_LINES.validate_python(lines[start : start + ROSTER_VALIDATE])
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", "roster", start + int(e["loc"][0]), *e["loc"][1:])} for e in exc.errors()]
            ) from None
    for line in roster:
        if core.views.has_responder(line.responder_id):
            _responder_in_reach(core, line.responder_id, who)
    changed = await core.engine.set_roster(
        [(line.responder_id, line.on, line.lat, line.lon) for line in roster], actor=who.actor
    )
    return {"changed": changed}


async def _roster_lines(request: Request, most: int) -> list[Any]:
    """The body's ``roster`` list, unvalidated, refused (``roster_too_long``) as soon as it is known to hold more
    than ``most`` lines: by its size while it is read, by its length once parsed."""
    too_long = InvalidInput(f"a roster takes at most {most} lines a call; send it in parts",
                            field="roster", code="roster_too_long", params={"max": most})  # fmt: skip
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > most * ROSTER_LINE_BYTES:
            raise too_long
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except ValueError:  # not JSON, not UTF-8, NaN or Infinity
        raise _invalid(("body",), "the body is not JSON of finite numbers", "json_invalid") from None
    if not isinstance(data, dict):
        raise _invalid(("body",), "a roster is a JSON object", "model_type")
    for key in data:
        if key != "roster":
            raise _invalid(("body", str(key)[:40]), "Extra inputs are not permitted", "extra_forbidden")
    lines = data.get("roster")
    if not isinstance(lines, list):
        raise _invalid(("body", "roster"), "the roster is a list of lines", "list_type")
    if len(lines) > most:
        raise too_long
    if not lines:
        raise _invalid(("body", "roster"), "a roster has at least one line", "too_short")
    return lines


def _invalid(loc: tuple[str, ...], msg: str, kind: str) -> RequestValidationError:
    """A 422 as FastAPI's own validation answers it (see console.app), of one error."""
    return RequestValidationError([{"loc": loc, "msg": msg, "type": kind}])


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a roster takes")


@router.get("/communities", tags=["registry"])
async def communities(core: CoreDep, who: Staff) -> dict[str, Any]:
    """The district / street / community tree with the number of elders in each community."""
    return {"tree": core.views.communities(who.reach)}


# -- the caregiver's own status (the phone uses the websocket; this is the HTTP equivalent) -----------


class DutyIn(Body):
    on: bool
    lat: Latitude | None = None
    lon: Longitude | None = None


class PositionIn(Body):
    lat: Latitude
    lon: Longitude


@router.post("/me/duty", tags=["caregiver"])
async def my_duty(body: DutyIn, core: CoreDep, who: Caregiver) -> dict[str, Any]:
    assert who.responder_id is not None
    await core.engine.set_duty(who.responder_id, body.on, actor=who.actor, lat=body.lat, lon=body.lon)
    return core.views.responder(who.responder_id)


@router.post("/me/position", tags=["caregiver"])
async def my_position(body: PositionIn, core: CoreDep, who: Caregiver) -> dict[str, Any]:
    assert who.responder_id is not None
    await core.engine.set_position(who.responder_id, body.lat, body.lon, actor=who.actor)
    return core.views.responder(who.responder_id)


__all__ = ["ROLES", "router"]
