"""Follow-ups (回访) over HTTP: the day's list, recording a call, the supervisors' complaints and evaluations.

Staff list the follow-ups due by a day (``due=YYYY-MM-DD`` or ``today``, in the centre's time zone; overdue ones
included) and record each call: reached or not, the elder's satisfaction (1-5) and any complaint. Supervisors
read the complaints those calls raised and each caregiver's mean satisfaction. A follow-up lies in its elder's
community: outside a person's part of the network, 404 as if it did not exist, asked before anything is
written. The rules themselves are dispatch.followups'.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from console.deps import Body, CoreDep, Staff, Supervisors

router = APIRouter(prefix="/api", tags=["follow-ups"])

Day = Annotated[str | None, Query(pattern=r"^(today|\d{4}-\d{2}-\d{2})$", description="YYYY-MM-DD or today")]


@router.get("/follow-ups")
async def list_follow_ups(
    core: CoreDep,
    who: Staff,
    due: Day = None,
    state: Literal["open", "done", "all"] = "open",
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> dict[str, Any]:
    """Follow-ups in reach, soonest due first; with ``due``, those due by the end of that day."""
    due_before = core.views.follow_up_day_end(due) if due is not None else None
    follow_ups = core.views.follow_ups(who.reach, due_before=due_before, state=state, limit=limit)
    what = " ".join(f"{k}={v}" for k, v in (("due", due), ("state", state)) if v)
    await core.engine.read("follow_ups", len(follow_ups), actor=who.actor, filter=what)
    return {"follow_ups": follow_ups}


class AnswerIn(Body):
    reached: bool
    satisfaction: int | None = Field(None, ge=1, le=5, description="1 (very unhappy) to 5 (very satisfied)")
    complaint: str = Field("", max_length=2000, description="in the elder's words; raises a supervisor's task")
    note: str = Field("", max_length=2000)


@router.post("/follow-ups/{follow_up_id}")
async def record(follow_up_id: str, body: AnswerIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """One attempt of the call; 409 ``follow_up_done`` when it is already done or closed as unreachable."""
    core.views.follow_up(follow_up_id, who.reach)  # outside their reach: 404 before anything is written
    await core.engine.record_follow_up(
        follow_up_id, reached=body.reached, satisfaction=body.satisfaction, complaint=body.complaint,
        note=body.note, actor=who.actor,
    )  # fmt: skip
    return core.views.follow_up(follow_up_id, who.reach)


@router.get("/complaints")
async def list_complaints(
    core: CoreDep, who: Supervisors, limit: Annotated[int, Query(ge=1, le=5000)] = 200
) -> dict[str, Any]:
    """Complaints heard on follow-ups in reach, newest first: the supervisors' tasks."""
    complaints = core.views.complaints(who.reach, limit=limit)
    await core.engine.read("complaints", len(complaints), actor=who.actor)
    return {"complaints": complaints}


class SettleIn(Body):
    resolution: str = Field(min_length=1, max_length=2000, description="what was done about it")


@router.post("/complaints/{complaint_id}/settle")
async def settle_complaint(complaint_id: str, body: SettleIn, core: CoreDep, who: Supervisors) -> dict[str, Any]:
    """Settle a complaint, saying what was done; 409 ``complaint_settled`` when it already is."""
    core.views.complaint(complaint_id, who.reach)  # outside their reach: 404 before anything is written
    await core.engine.settle_complaint(complaint_id, resolution=body.resolution, actor=who.actor)
    return core.views.complaint(complaint_id, who.reach)


@router.get("/evaluations")
async def list_evaluations(core: CoreDep, who: Supervisors) -> dict[str, Any]:
    """Each caregiver's mean satisfaction from the follow-ups of their work in reach, and how many answers."""
    return {"evaluations": core.views.evaluations(who.reach)}
