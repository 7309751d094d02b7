"""Care calls (关怀电话) over HTTP: a day's list, recording an attempt, the proposed home visits and settling one.

Staff read the elders owed a care call by a day (``date=today`` or ``YYYY-MM-DD``, in the centre's time zone;
overdue ones and retries included) and record each attempt: reached, with the elder's wellbeing and a short
note, or not reached (tried again later; after the set number of misses a home visit is proposed instead).
An elder and their calls and visits lie in the elder's community: outside a person's part of the network, 404
as if they did not exist, asked before anything is written. The rules themselves are dispatch.carecalls'.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from console.deps import Body, CoreDep, Staff

router = APIRouter(prefix="/api", tags=["care calls"])

Day = Annotated[str, Query(pattern=r"^(today|\d{4}-\d{2}-\d{2})$", description="YYYY-MM-DD or today")]


@router.get("/care-calls")
async def list_care_calls(
    core: CoreDep,
    who: Staff,
    date: Day = "today",
    drill: bool = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    """The day's care calls in reach (``calls``: due, ready ones first; ``done``: reached that day)."""
    day = core.views.care_calls(who.reach, day=date, drill=drill, limit=limit)
    elder_ids = {c["elder_id"] for c in (*day["calls"], *day["done"])}
    await core.engine.read("care_calls", len(elder_ids), actor=who.actor, filter=f"date={day['date']}")
    return day


class AttemptIn(Body):
    reached: bool
    wellbeing: Literal["well", "unwell", "needs_help"] | None = Field(
        None, description="how a reached elder is; needs_help is a mark on the list, it opens nothing"
    )
    note: str = Field("", max_length=500)
    drill: bool = False


@router.post("/care-calls/{elder_id}")
async def record_attempt(elder_id: str, body: AttemptIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """One attempt of an elder's care call; the elder's line as today's list now shows it (``null``: off it)."""
    core.views.elder_in_reach(elder_id, who.reach)  # outside their reach: 404 before anything is written
    await core.engine.record_care_call(
        elder_id, reached=body.reached, wellbeing=body.wellbeing, note=body.note, actor=who.actor, drill=body.drill
    )
    visits = [v for v in core.views.care_visits(who.reach) if v["elder_id"] == elder_id and v["drill"] == body.drill]
    return {"call": core.views.care_call(elder_id, who.reach, drill=body.drill), "visit": visits[0] if visits else None}


@router.get("/care-visits")
async def list_care_visits(
    core: CoreDep,
    who: Staff,
    state: Literal["open", "settled", "all"] = "open",
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> dict[str, Any]:
    """Home visits proposed after unanswered care calls, in reach, the longest waiting first."""
    visits = core.views.care_visits(who.reach, state=state, limit=limit)
    await core.engine.read("care_visits", len(visits), actor=who.actor, filter=f"state={state}")
    return {"visits": visits}


class SettleIn(Body):
    note: str = Field(..., max_length=2000, description="what the visit found")


@router.post("/care-visits/{visit_id}/settle")
async def settle_visit(visit_id: str, body: SettleIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Settle a proposed visit with what was found (it counts as a contact); 409 ``care_visit_settled`` twice."""
    core.views.care_visit(visit_id, who.reach)  # outside their reach: 404 before anything is written
    await core.engine.settle_care_visit(visit_id, note=body.note, actor=who.actor)
    return core.views.care_visit(visit_id, who.reach)
