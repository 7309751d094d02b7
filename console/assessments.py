"""Needs assessments over HTTP (dispatch.assessment): the form, a score before saving, the assessments of an elder,
a new one, and the assessors' list of who is due.

An assessor (role ``assessor``), a supervisor or an admin assesses the elders in their part of the network; staff
read an elder's assessments (the operator sees why an alarm's priority was raised). The code scores the form: the
page sends the item scores, never a level. Reading an elder's assessments is a read of their health data, on record
(``elder.viewed`` of what ``assessment``) before the answer goes out.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field, StrictInt

from console.auth import STAFF, Principal
from console.deps import Body, CoreDep, allow
from dispatch.registry import LivesWith
from dispatch.triage import ALARM_RULES, priority

router = APIRouter(prefix="/api", tags=["assessments"])

#: who assesses: the assessors, and the supervisors and admins over them
Assessors = Annotated[Principal, Depends(allow("assessor", "supervisor", "admin"))]
#: who reads an elder's assessments: staff and the assessors
Readers = Annotated[Principal, Depends(allow(*STAFF, "assessor"))]


class ScoreIn(Body):
    answers: dict[str, StrictInt] = Field(description="item → score, as the form allows (GET /api/assessment/form)")
    diagnosis: bool = Field(False, description="a diagnosed cognitive impairment, dementia or psychiatric disorder")
    risk_events: int = Field(0, ge=0, le=99, description="falls, chokings, suicide attempts, wanderings in 30 days")


class AssessmentIn(ScoreIn):
    reason: str = Field(description="initial, routine, after_fall, after_hospital, change or review")
    lives_with: LivesWith | None = None
    diseases: list[str] = Field([], max_length=20)
    note: str = Field("", max_length=2000)


@router.get("/assessment/form")
async def form(core: CoreDep, who: Readers) -> dict[str, Any]:
    """The form: its items in order with the scores each allows, by domain; the reasons, diseases and levels."""
    return core.views.assessment_form()


@router.post("/assessment/score")
async def preview(body: ScoreIn, core: CoreDep, who: Assessors) -> dict[str, Any]:
    """Score a form without saving it (the page shows the grades and the level as the assessor goes)."""
    return core.views.assessment_score(body.answers, diagnosis=body.diagnosis, risk_events=body.risk_events)


@router.get("/assessment/elders")
async def find(q: Annotated[str, Query(min_length=1, max_length=100)], core: CoreDep, who: Assessors) -> dict[str, Any]:
    """Find an elder to assess in the caller's part of the network (name, pinyin initials, phone, address, id)."""
    found = core.views.search_elders(q, who.reach, limit=20)
    await core.engine.read("elders.search", len(found), actor=who.actor,
                           elder_ids=[e["elder_id"] for e in found], filter=q)  # fmt: skip
    return {"elders": found}


@router.get("/assessments/due")
async def due(
    core: CoreDep,
    who: Assessors,
    within_days: Annotated[int, Query(ge=0, le=366)] = 30,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """The assessors' tasks: elders whose next assessment falls due within ``within_days``, soonest first."""
    listed = core.views.assessments_due(who.reach, within_days=within_days, limit=limit)
    elder_ids = [line["elder_id"] for line in listed["due"]]
    await core.engine.read("assessments.due", len(elder_ids), actor=who.actor, elder_ids=elder_ids,
                           filter=",".join(who.scopes))  # fmt: skip
    return listed


@router.get("/elders/{elder_id}/assessments")
async def assessments(elder_id: str, core: CoreDep, who: Readers) -> dict[str, Any]:
    """An elder's assessments, newest first, their care level and when the next is due."""
    core.views.elder_in_reach(elder_id, who.reach)
    await core.engine.viewed(elder_id, actor=who.actor, what="assessment")
    return core.views.assessments(elder_id, who.reach)


@router.post("/elders/{elder_id}/assessments", status_code=201)
async def assess(elder_id: str, body: AssessmentIn, core: CoreDep, who: Assessors) -> dict[str, Any]:
    """Record an assessment: scored here, journaled, and the elder's care level set from it. The answer says what
    changed for triage: each alarm type whose priority for this elder is now different."""
    before = core.views.elder_in_reach(elder_id, who.reach)
    now = core.clock.now()
    made = await core.engine.assess(
        elder_id, body.answers, actor=who.actor, reason=body.reason, diagnosis=body.diagnosis,
        risk_events=body.risk_events, lives_with=body.lives_with, diseases=body.diseases, note=body.note,
    )  # fmt: skip
    after = core.views.elder_in_reach(elder_id, who.reach)
    triage = []
    for alarm_type, alarm in ALARM_RULES.items():
        if alarm.technical:
            continue
        was, is_now = priority(alarm_type, before, now)[0], priority(alarm_type, after, now)[0]
        if was != is_now:
            triage.append({"alarm_type": alarm_type, "before": was, "after": is_now})
    return {
        **made,
        "care_level": {"before": before.care_level, "after": after.care_level},
        "triage": triage,
        "record": core.views.assessments(elder_id, who.reach),
    }
