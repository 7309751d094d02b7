"""五定 plans over HTTP: making, listing and ending standing plans, and the operators' missed-visit tasks.

Staff make a plan for an elder (one catalogue item, the fixed caregiver, ISO weekdays 1-7, a local start time
``HH:MM`` in the centre's time zone, a first and an optional last local day ``YYYY-MM-DD``, a place in words when
not at home), list plans, read one with its orders from today on, and end one. The plan's orders are ordinary
service orders (``/api/service-orders``, source ``plan``). A planned visit nobody checked in to is a task on
``/api/plan-tasks``, settled with an outcome and a note. A plan and its tasks lie in the elder's community:
outside a person's part of the network, 404 as if they did not exist, asked before anything is written.
Caregivers have nothing here: their planned visits come to them as orders. The rules are dispatch.plans'.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from console.deps import Body, CoreDep, Staff
from dispatch.entries import PlanTaskOutcome
from dispatch.registry import Ident

router = APIRouter(prefix="/api", tags=["plans"])

Weekday = Annotated[int, Field(ge=1, le=7)]
Day = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="a local day, YYYY-MM-DD")]


class PlanIn(Body):
    elder_id: Ident
    item_id: Ident
    responder_id: Ident = Field(description="the fixed caregiver (定人)")
    weekdays: list[Weekday] = Field(min_length=1, max_length=7, description="ISO weekdays: 1 Monday .. 7 Sunday")
    at: str = Field(pattern=r"^\d{2}:\d{2}$", description="the local start time, HH:MM (定时)")
    first_day: Day | None = Field(None, description="today when left out")
    last_day: Day | None = None
    place: str = Field("", max_length=200, description="定点: blank for the elder's home")
    note: str = Field("", max_length=1000)


@router.post("/plans", status_code=201)
async def create_plan(body: PlanIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Make a standing plan; its orders for the coming days are generated at once."""
    core.views.elder_in_reach(body.elder_id, who.reach)
    plan_id = await core.engine.create_plan(
        body.elder_id, body.item_id, body.responder_id, body.weekdays, body.at, actor=who.actor,
        first_day=body.first_day, last_day=body.last_day, place=body.place, note=body.note,
    )  # fmt: skip
    return core.views.plan(plan_id, who.reach)


@router.get("/plans")
async def list_plans(
    core: CoreDep,
    who: Staff,
    elder: Annotated[str | None, Query(max_length=64)] = None,
    active: bool | None = None,
) -> dict[str, Any]:
    """Plans in reach, newest first: of one elder; active (visits still to come) or not."""
    plans = core.views.plans(who.reach, elder=elder, active=active)
    what = " ".join(f"{k}={v}" for k, v in (("elder", elder), ("active", active)) if v is not None)
    await core.engine.read("plans", len(plans), actor=who.actor, filter=what)
    return {"plans": plans}


@router.get("/plans/{plan_id}")
async def get_plan(plan_id: str, core: CoreDep, who: Staff) -> dict[str, Any]:
    """One plan with its orders from today on (and any older one still open)."""
    elder_id = core.views.plan_elder(plan_id, who.reach)
    await core.engine.viewed(elder_id, actor=who.actor, what="plan", subject=plan_id)
    return core.views.plan(plan_id, who.reach)


class EndIn(Body):
    last_day: Day | None = Field(None, description="the last day with a visit; today when left out")
    reason: str = Field("", max_length=1000)


@router.post("/plans/{plan_id}/end")
async def end_plan(plan_id: str, body: EndIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """No visit after the last day; the orders planned after it are cancelled. 409 ``plan_ended`` when ended."""
    core.views.plan_elder(plan_id, who.reach)  # outside their reach: 404 before anything is written
    await core.engine.end_plan(plan_id, actor=who.actor, last_day=body.last_day, reason=body.reason)
    return core.views.plan(plan_id, who.reach)


@router.get("/plan-tasks")
async def list_plan_tasks(
    core: CoreDep,
    who: Staff,
    state: Literal["open", "settled", "all"] = "open",
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> dict[str, Any]:
    """Missed planned visits in reach, the oldest visit first: the operators' tasks."""
    tasks = core.views.plan_tasks(who.reach, state=state, limit=limit)
    await core.engine.read("plan_tasks", len(tasks), actor=who.actor, filter=f"state={state}")
    return {"tasks": tasks}


class SettleIn(Body):
    outcome: PlanTaskOutcome
    note: str = Field("", max_length=2000)


@router.post("/plan-tasks/{task_id}")
async def settle_plan_task(task_id: str, body: SettleIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Settle a missed visit: what was done about it. 409 ``plan_task_settled`` when already settled."""
    core.views.plan_task(task_id, who.reach)  # outside their reach: 404 before anything is written
    await core.engine.settle_plan_task(task_id, outcome=body.outcome, note=body.note, actor=who.actor)
    return core.views.plan_task(task_id, who.reach)
