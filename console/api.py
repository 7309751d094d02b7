"""The HTTP API under ``/api``: auth, intake, incidents, registry, responders and the journal.

Every route but login and the health checks needs a bearer token and one of the roles it names. Bodies are
validated by pydantic (a bad field gets 422 naming it); domain refusals come back as 404 / 409 / 422 with
``{"detail": ..., "field": ...}``; nothing is written for a refused request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field

from console.auth import ROLES, STAFF, Accounts, Principal, Role
from console.errors import Forbidden
from dispatch.commands import AlarmRequest, CallEvent
from dispatch.core import Core
from dispatch.errors import InvalidInput, NotFound
from dispatch.registry import Device, Elder, Latitude, Longitude, Responder
from dispatch.triage import ALARM_TYPES

router = APIRouter(prefix="/api")
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)

AlarmType = Literal[ALARM_TYPES]  # type: ignore[valid-type]


def core_of(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


def accounts_of(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


def allow(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    async def dependency(request: Request, token: Annotated[str | None, Depends(oauth2)]) -> Principal:
        principal = await accounts_of(request).principal(token)
        if principal.role not in roles:
            raise Forbidden(f"role {principal.role} may not do this; needs {' or '.join(roles)}")
        return principal

    return dependency


Staff = Annotated[Principal, Depends(allow(*STAFF))]
Supervisors = Annotated[Principal, Depends(allow("admin", "supervisor"))]
Admin = Annotated[Principal, Depends(allow("admin"))]
Caregiver = Annotated[Principal, Depends(allow("caregiver"))]
CoreDep = Annotated[Core, Depends(core_of)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- auth -------------------------------------------------------------------------------------------


@router.post("/auth/token", tags=["auth"])
async def login(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, Any]:
    accounts = accounts_of(request)
    token, principal = await accounts.login(form.username, form.password)
    return {
        "access_token": token,
        "token_type": "bearer",
        "role": principal.role,
        "responder_id": principal.responder_id,
        "expires_in": int(accounts.ttl),
    }


class AccountIn(Body):
    username: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    password: str = Field(min_length=8, max_length=200)
    role: Role
    responder_id: str | None = None


@router.post("/accounts", status_code=201, tags=["auth"])
async def create_account(body: AccountIn, request: Request, core: CoreDep, who: Admin) -> dict[str, Any]:
    if body.role == "caregiver" and not core.views.has_responder(body.responder_id or ""):
        _missing("responder_id", body.responder_id)
    principal = await accounts_of(request).create(body.username, body.password, body.role, body.responder_id)
    await core.engine.account_created(body.username, body.role, actor=who.actor)
    return {"username": principal.username, "role": principal.role, "responder_id": principal.responder_id}


def _missing(field: str, value: object) -> None:
    raise NotFound(f"no {field.removesuffix('_id')} {value}", field=field)


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
async def raise_alarm(body: AlarmIn, core: CoreDep, who: Staff) -> dict[str, Any]:
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
    event: Literal["ringing", "answered", "ended"]
    call_id: str = Field(min_length=1, max_length=128)
    caller: str = Field(min_length=1, max_length=32)
    line: str = Field("", max_length=32)
    open_incident: bool = True
    alarm_type: AlarmType = "call"
    drill: bool = False


@router.post("/hotline/events", tags=["intake"])
async def hotline_event(body: HotlineEventIn, core: CoreDep, who: Staff) -> dict[str, Any]:
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
        )
    )
    return {
        "call_id": outcome.call_id,
        "state": outcome.state,
        "elder_id": outcome.elder_id,
        "incident_id": outcome.incident_id,
    }


# -- incidents --------------------------------------------------------------------------------------


@router.get("/incidents", tags=["incidents"])
async def list_incidents(
    core: CoreDep,
    who: Staff,
    open: bool = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> dict[str, Any]:
    return {"incidents": core.views.incidents(open_only=open, limit=limit)}


@router.get("/incidents/{incident_id}", tags=["incidents"])
async def get_incident(incident_id: str, core: CoreDep, who: Staff) -> dict[str, Any]:
    return core.views.incident(incident_id)


class DispatchIn(Body):
    responder_id: str


class ReasonIn(Body):
    reason: str = Field(min_length=1, max_length=1000)


class EscalateIn(Body):
    service: Literal["120", "110", "119"]
    note: str = Field("", max_length=1000)


class NoteIn(Body):
    text: str = Field(min_length=1, max_length=2000)


class OutcomeIn(Body):
    outcome: str = Field(min_length=1, max_length=1000)


def _view(core: Core, incident_id: str) -> dict[str, Any]:
    return core.views.incident(incident_id)


@router.post("/incidents/{incident_id}/acknowledge", tags=["incidents"])
async def acknowledge(incident_id: str, core: CoreDep, who: Staff) -> dict[str, Any]:
    await core.engine.acknowledge(incident_id, actor=who.actor)
    return _view(core, incident_id)


@router.post("/incidents/{incident_id}/dispatch", tags=["incidents"])
async def dispatch(incident_id: str, body: DispatchIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    await core.engine.dispatch(incident_id, body.responder_id, actor=who.actor)
    return _view(core, incident_id)


@router.post("/incidents/{incident_id}/cancel", tags=["incidents"])
async def cancel(incident_id: str, body: ReasonIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    await core.engine.cancel(incident_id, body.reason, actor=who.actor)
    return _view(core, incident_id)


@router.post("/incidents/{incident_id}/escalate", tags=["incidents"])
async def escalate(incident_id: str, body: EscalateIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    await core.engine.escalate(incident_id, body.service, body.note, actor=who.actor)
    return _view(core, incident_id)


@router.post("/incidents/{incident_id}/notes", tags=["incidents"])
async def add_note(incident_id: str, body: NoteIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    await core.engine.note(incident_id, body.text, actor=who.actor)
    return _view(core, incident_id)


@router.post("/incidents/{incident_id}/resolve", tags=["incidents"])
async def resolve(incident_id: str, body: OutcomeIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    await core.engine.resolve(incident_id, body.outcome, actor=who.actor)
    return _view(core, incident_id)


@router.post("/incidents/{incident_id}/close", tags=["incidents"])
async def close(incident_id: str, core: CoreDep, who: Staff) -> dict[str, Any]:
    await core.engine.close(incident_id, actor=who.actor)
    return _view(core, incident_id)


# -- supervisor -------------------------------------------------------------------------------------


@router.get("/kpis", tags=["supervisor"])
async def get_kpis(core: CoreDep, who: Staff, drill: bool = False) -> dict[str, Any]:
    """Live figures for the supervisor view; drill incidents are left out unless ``drill=true``."""
    return core.views.kpis(include_drill=drill)


@router.get("/escalations", tags=["supervisor"])
async def get_escalations(core: CoreDep, who: Staff, drill: bool = False) -> dict[str, Any]:
    return {"incidents": core.views.escalations(include_drill=drill)}


# -- journal ----------------------------------------------------------------------------------------


@router.get("/journal", tags=["journal"])
async def journal(
    core: CoreDep,
    who: Supervisors,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    entries = await core.journal.read(after, limit)
    return {
        "entries": [entry.as_dict() for entry in entries],
        "next_after": entries[-1].seq if entries else after,
        "head": core.journal.durable_seq,
    }


# -- registry ---------------------------------------------------------------------------------------


@router.get("/elders", tags=["registry"])
async def list_elders(
    core: CoreDep,
    who: Staff,
    community: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The registry list: identity, address and community only; the full record is one read away."""
    elders, total = core.views.elders(community=community, limit=limit, offset=offset)
    return {"elders": elders, "total": total}


@router.get("/elders/{elder_id}", tags=["registry"])
async def get_elder(elder_id: str, core: CoreDep, who: Staff) -> dict[str, Any]:
    await core.engine.viewed(elder_id, actor=who.actor)
    return core.views.elder_record(elder_id)


@router.put("/elders/{elder_id}", tags=["registry"])
async def put_elder(elder_id: str, elder: Elder, core: CoreDep, who: Admin) -> dict[str, Any]:
    _same_id("elder_id", elder_id, elder.elder_id)
    await core.engine.put_elder(elder, actor=who.actor)
    return elder.model_dump(mode="json")


@router.put("/devices/{device_id}", tags=["registry"])
async def put_device(device_id: str, device: Device, core: CoreDep, who: Admin) -> dict[str, Any]:
    _same_id("device_id", device_id, device.device_id)
    await core.engine.put_device(device, actor=who.actor)
    return device.model_dump(mode="json", exclude={"aes_key"})


@router.put("/responders/{responder_id}", tags=["registry"])
async def put_responder(responder_id: str, responder: Responder, core: CoreDep, who: Admin) -> dict[str, Any]:
    _same_id("responder_id", responder_id, responder.responder_id)
    await core.engine.put_responder(responder, actor=who.actor)
    return responder.model_dump(mode="json")


def _same_id(field: str, path_id: str, body_id: str) -> None:
    if path_id != body_id:
        raise InvalidInput(f"{field} in the body ({body_id}) differs from the path ({path_id})", field=field)


@router.get("/responders", tags=["registry"])
async def list_responders(core: CoreDep, who: Staff) -> dict[str, Any]:
    return {"responders": core.views.responders()}


class RosterLine(Body):
    responder_id: str
    on: bool
    lat: Latitude | None = None
    lon: Longitude | None = None


class RosterIn(Body):
    roster: list[RosterLine] = Field(min_length=1, max_length=200_000)


@router.post("/responders/duty", tags=["registry"])
async def set_roster(body: RosterIn, core: CoreDep, who: Supervisors) -> dict[str, Any]:
    """Set many responders on or off duty at once (a shift roster), with their positions."""
    lines = [(line.responder_id, line.on, line.lat, line.lon) for line in body.roster]
    return {"changed": await core.engine.set_roster(lines, actor=who.actor)}


@router.get("/communities", tags=["registry"])
async def communities(core: CoreDep, who: Staff) -> dict[str, Any]:
    """The district / street / community tree with the number of elders in each community."""
    return {"tree": core.views.communities()}


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
