"""Night duty and handover (值班与交接班) over HTTP: who is on duty for a part of the network, the shift's log, the
handover and its acknowledgment, the past shifts.

Operators and supervisors (staff) ask about a scope: ``scope`` in the query or the body, by default their own
first scope (an operator scoped to a street is that street's duty). A scope outside their reach, or no part of
the registered network, answers 404 as if it did not exist, asked before anything is written. The operator on
duty hands over; a supervisor (or an admin) may hand over for them. Every answer but the history's is the scope's
duty as ``GET /api/duty`` shows it. The rules themselves are dispatch.duty's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from console.deps import Body, CoreDep, Staff

router = APIRouter(prefix="/api/duty", tags=["duty"])

Scope = Annotated[str | None, Query(max_length=200, description="* or district[/street[/community]]; default: yours")]
Kind = Literal["day", "night"]
#: who may hand over a shift for the operator on duty (someone went home without doing so)
FOR_OTHERS = frozenset({"admin", "supervisor"})


@router.get("")
async def duty(core: CoreDep, who: Staff, scope: Scope = None) -> dict[str, Any]:
    """The scope's latest shift (on duty, or handed over and waiting to be taken over) with its log, and the
    live summary: open incidents, open service orders, follow-ups due by now, the alarms and calls since."""
    return core.views.duty(scope, who.reach)


@router.get("/history")
async def history(
    core: CoreDep,
    who: Staff,
    days: Annotated[int, Query(ge=1, le=92)] = 7,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """The shifts of the last ``days`` days whose scope is in reach, newest first, each with its log, the
    summary it was handed over with, and who acknowledged it (or that nobody did)."""
    return {"shifts": core.views.duty_history(who.reach, days=days, limit=limit)}


class StartIn(Body):
    scope: str | None = Field(None, max_length=200)
    kind: Kind | None = Field(None, description="day or night; default: from the local hour")


@router.post("/start", status_code=201)
async def start(body: StartIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Go on duty; 409 ``duty_open`` when someone is, ``duty_handover_pending`` when a shift waits to be taken
    over (take it over instead)."""
    scope = core.views.duty_scope(body.scope, who.reach)
    await core.engine.start_duty(scope, actor=who.actor, kind=body.kind)
    return core.views.duty(scope, who.reach)


class LogIn(Body):
    scope: str | None = Field(None, max_length=200)
    text: str = Field(max_length=2000)
    at: float | None = Field(None, description="when it happened (UTC seconds), within the shift; default: now")


@router.post("/log")
async def log(body: LogIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """A line in the shift's log, by whoever writes it; 409 ``duty_not_started`` when nobody is on duty."""
    scope = core.views.duty_scope(body.scope, who.reach)
    await core.engine.log_duty(scope, body.text, actor=who.actor, at=body.at)
    return core.views.duty(scope, who.reach)


class HandOverIn(Body):
    scope: str | None = Field(None, max_length=200)
    words: str = Field("", max_length=4000, description="what the next operator must know, in your words")


@router.post("/handover")
async def hand_over(body: HandOverIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Hand the shift over with the desk as it stands; 409 ``duty_not_yours`` for an operator not on duty."""
    scope = core.views.duty_scope(body.scope, who.reach)
    await core.engine.hand_over_duty(scope, body.words, actor=who.actor, for_others=who.role in FOR_OTHERS)
    return core.views.duty(scope, who.reach)


class TakeOverIn(Body):
    scope: str | None = Field(None, max_length=200)
    words: str = Field("", max_length=4000, description="what you dispute or could not find, if anything")
    kind: Kind | None = None


@router.post("/take-over")
async def take_over(body: TakeOverIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Acknowledge the handed-over shift and start one's own; 409 ``duty_not_handed_over`` while its operator
    is still on duty, ``duty_nothing_to_take_over`` when no shift waits."""
    scope = core.views.duty_scope(body.scope, who.reach)
    await core.engine.take_over_duty(scope, body.words, actor=who.actor, kind=body.kind)
    return core.views.duty(scope, who.reach)
