"""The service desk's HTTP API: the catalogue and service orders (dispatch.services, dispatch.machines).

Staff order services and move orders along (schedule, reschedule, assign, confirm, cancel); the caregiver an
order is assigned to checks in and out at the door (start, deliver) or reports that nobody was home (no_show),
and staff may record those for them. A caregiver sees only the orders assigned to them; staff see the orders of
the elders in their part of the network (an order lies in its elder's community); outside it, 404 as if it did
not exist, asked before any command so nothing is done to an order they may not see. Times are UTC seconds,
money is integer fen.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from console.auth import STAFF, Principal
from console.deps import Body, CoreDep, Staff, Supervisors, allow
from dispatch.core import Core
from dispatch.registry import Ident, Latitude, Longitude

router = APIRouter(prefix="/api", tags=["services"])

#: staff, and caregivers for what is theirs (the catalogue; the orders assigned to them)
StaffOrCaregiver = Annotated[Principal, Depends(allow(*STAFF, "caregiver"))]
#: an order's state as a query asks for it (dispatch.machines.OrderState; a test keeps the two equal)
StateName = Literal["requested", "scheduled", "assigned", "started", "delivered", "confirmed", "cancelled", "no_show"]
#: a time in UTC seconds: from 2020 to 2100
Time = Annotated[float, Field(ge=1_577_836_800, le=4_102_444_800)]


@router.get("/services")
async def list_services(core: CoreDep, who: StaffOrCaregiver) -> dict[str, Any]:
    """The service catalogue in force: items, categories, units, skills and prices per mode in fen; and the
    providers (the centre, the contracted service organisations)."""
    return {"services": core.views.services(), "providers": core.views.providers()}


class OrderIn(Body):
    elder_id: Ident
    item_id: Ident
    start: Time
    end: Time
    place: str = Field("", max_length=200, description="where, when not at home, or how to get in")
    source: Literal["call", "console"] = "console"
    call_id: str | None = Field(None, min_length=1, max_length=128, description="the call it was asked for on")
    drill: bool = False


@router.post("/service-orders", status_code=201)
async def order_service(body: OrderIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Order a catalogue item for an elder; the price is fixed now from the elder's entitlement."""
    core.views.elder_in_reach(body.elder_id, who.reach)
    if body.call_id is not None:
        core.views.call(body.call_id, who.reach)
    order_id = await core.engine.order_service(
        body.elder_id, body.item_id, body.start, body.end, actor=who.actor, source=body.source,
        place=body.place, call_id=body.call_id, drill=body.drill,
    )  # fmt: skip
    return core.views.service_order(order_id, who.reach)


@router.get("/service-orders")
async def list_orders(
    core: CoreDep,
    who: StaffOrCaregiver,
    elder: Annotated[str | None, Query(max_length=64)] = None,
    state: StateName | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> dict[str, Any]:
    """Service orders, newest first; a caregiver gets the orders assigned to them."""
    orders = core.views.service_orders(who.reach, elder=elder, state=state, limit=limit, responder=_mine(who))
    what = " ".join(f"{k}={v}" for k, v in (("elder", elder), ("state", state)) if v)
    await core.engine.read("service_orders", len(orders), actor=who.actor, filter=what)
    return {"orders": orders}


@router.get("/service-orders/{order_id}")
async def get_order(order_id: str, core: CoreDep, who: StaffOrCaregiver) -> dict[str, Any]:
    elder_id = core.views.service_order_elder(order_id, who.reach, responder=_mine(who))
    await core.engine.viewed(elder_id, actor=who.actor, what="order", subject=order_id)
    return _view(core, order_id, who)


class WindowIn(Body):
    start: Time
    end: Time


class RescheduleIn(WindowIn):
    reason: str = Field("", max_length=1000)


class AssignIn(Body):
    responder_id: Ident


class CheckInIn(Body):
    lat: Latitude | None = None
    lon: Longitude | None = None


class CheckOutIn(CheckInIn):
    note: str = Field("", max_length=2000, description="what was done")


class ReasonIn(Body):
    reason: str = Field(min_length=1, max_length=1000)


class NoShowIn(Body):
    note: str = Field("", max_length=1000)


@router.post("/service-orders/{order_id}/schedule")
async def schedule(order_id: str, body: WindowIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    return await _act(core, who, order_id, "schedule", start=body.start, end=body.end)


@router.post("/service-orders/{order_id}/reschedule")
async def reschedule(order_id: str, body: RescheduleIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    return await _act(core, who, order_id, "reschedule", start=body.start, end=body.end, reason=body.reason)


@router.post("/service-orders/{order_id}/assign")
async def assign(order_id: str, body: AssignIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    return await _act(core, who, order_id, "assign", responder_id=body.responder_id)


@router.post("/service-orders/{order_id}/start")
async def start(order_id: str, body: CheckInIn, core: CoreDep, who: StaffOrCaregiver) -> dict[str, Any]:
    """Check in at the door (the assigned caregiver, or staff recording it for them)."""
    return await _act(core, who, order_id, "start", lat=body.lat, lon=body.lon)


@router.post("/service-orders/{order_id}/deliver")
async def deliver(order_id: str, body: CheckOutIn, core: CoreDep, who: StaffOrCaregiver) -> dict[str, Any]:
    """Check out, with a note of what was done."""
    return await _act(core, who, order_id, "deliver", lat=body.lat, lon=body.lon, note=body.note)


@router.post("/service-orders/{order_id}/no_show")
async def no_show(order_id: str, body: NoShowIn, core: CoreDep, who: StaffOrCaregiver) -> dict[str, Any]:
    """Nobody was home (or the elder sent the caregiver away)."""
    return await _act(core, who, order_id, "no_show", note=body.note)


@router.post("/service-orders/{order_id}/confirm")
async def confirm(order_id: str, core: CoreDep, who: Staff) -> dict[str, Any]:
    return await _act(core, who, order_id, "confirm")


@router.post("/service-orders/{order_id}/cancel")
async def cancel(order_id: str, body: ReasonIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    return await _act(core, who, order_id, "cancel", reason=body.reason)


def _mine(who: Principal) -> str | None:
    """A caregiver's own responder id (they see and act on the orders assigned to them); None for staff."""
    return who.responder_id if who.role == "caregiver" else None


def _view(core: Core, order_id: str, who: Principal) -> dict[str, Any]:
    return core.views.service_order(order_id, who.reach, responder=_mine(who))


async def _act(core: Core, who: Principal, order_id: str, action: str, **details: Any) -> dict[str, Any]:
    _view(core, order_id, who)  # outside their reach (or not theirs): 404 before anything is done
    await core.engine.order_action(order_id, action, actor=who.actor, caregiver=_mine(who), **details)
    return _view(core, order_id, who)


# -- vouchers and monthly statements (dispatch.vouchers; charged at delivery) -----------------------------


@router.get("/elders/{elder_id}/vouchers")
async def elder_vouchers(elder_id: str, core: CoreDep, who: Staff) -> dict[str, Any]:
    """The elder's vouchers: this month's balance, the earlier months' and every charge, money in fen."""
    core.views.elder_in_reach(elder_id, who.reach)
    await core.engine.read("vouchers", 1, actor=who.actor, elder_ids=[elder_id], filter=elder_id)
    return core.views.vouchers(elder_id, who.reach)


@router.get("/statements", response_model=None)
async def statements(
    request: Request,
    core: CoreDep,
    who: Supervisors,
    month: Annotated[str, Query(max_length=16, description="the centre's local month, YYYY-MM")],
    by: Annotated[str, Query(max_length=16, description="elder, provider or community")] = "elder",
) -> dict[str, Any] | Response:
    """A month's statement of delivered services in the reader's part of the network: JSON, or CSV with
    ``Accept: text/csv`` (UTF-8 with a BOM so spreadsheets read Chinese; headers in Chinese when the
    ``Accept-Language`` asks for it), money in yuan there and in fen in JSON."""
    elders = core.views.statement_elders(month, by, who.reach)  # a bad month or by: 422 before any read
    answer = core.views.statement(month, by, who.reach)
    await core.engine.read("statements", len(answer["rows"]), actor=who.actor, elder_ids=elders,
                           filter=f"month={month} by={by}")  # fmt: skip
    if "text/csv" not in request.headers.get("accept", ""):
        return answer
    chinese = request.headers.get("accept-language", "").lower().startswith("zh")
    text = core.views.statement_csv(month, by, who.reach, chinese=chinese)
    return Response(
        ("\ufeff" + text).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="statement-{month}-{by}.csv"'},
    )
