"""Referrals to a clinic's green channel over HTTP (dispatch.referrals): the operator refers and cancels; the
clinic's desk lists its own referrals and answers them.

Staff refer an incident in their reach (``POST /api/incidents/{id}/refer``) and cancel a referral of one
(``POST /api/referrals/{id}/cancel``). A clinic account (role ``clinic``, bound to the clinic's responder id)
reads ``GET /api/clinic/referrals`` (its page polls it) and accepts, declines, says the patient arrived and
records the outcome. A clinic never names another clinic's referral: any id not its own is 404. Every list a
clinic reads is a read of the elders in it on record (``records.read``), and each referral shown with the
name and medical notes one more (``elder.viewed`` of what ``referral``), before the answer goes out.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field

from console.auth import Principal
from console.deps import Body, Clinic, CoreDep, Staff
from console.errors import Forbidden
from dispatch.core import Core

router = APIRouter(prefix="/api")


class ReferIn(Body):
    clinic_id: str = Field(min_length=1, max_length=64)
    note: str = Field("", max_length=1000, description="what the clinic must know, in the operator's words")


class CancelIn(Body):
    reason: str = Field("", max_length=1000)


class AnswerIn(Body):
    note: str = Field("", max_length=1000)


class OutcomeIn(Body):
    outcome: Literal["admitted", "treated_home", "transferred", "left", "died", "other"]
    note: str = Field("", max_length=1000)


@router.post("/incidents/{incident_id}/refer", tags=["referrals"])
async def refer(incident_id: str, body: ReferIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Refer the incident's patient to a clinic's green channel; the incident as it now stands."""
    core.views.incident(incident_id, who.reach)  # outside the reach: 404 before anything is done
    await core.engine.refer(incident_id, body.clinic_id, actor=who.actor, note=body.note)
    return core.views.incident(incident_id, who.reach)


@router.post("/referrals/{referral_id}/cancel", tags=["referrals"])
async def cancel(referral_id: str, body: CancelIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Call a referral off (the patient is not coming); the incident as it now stands."""
    incident_id = core.views.referral_incident(referral_id, who.reach)
    await core.engine.referral_action(referral_id, "cancel", actor=who.actor, note=body.reason)
    return core.views.incident(incident_id, who.reach)


def _clinic_of(who: Principal) -> str:
    if who.responder_id is None:
        raise Forbidden("this clinic account is bound to no clinic", params={"role": who.role})
    return who.responder_id


async def _listed(core: Core, who: Principal) -> dict[str, Any]:
    """The clinic's referrals; the reads of the elders in them on record first."""
    clinic_id = _clinic_of(who)
    views, elders = core.views.clinic_referrals(clinic_id)
    await core.engine.read("clinic_referrals", len(views), actor=who.actor,
                           elder_ids=sorted(set(elders.values())), filter=clinic_id)  # fmt: skip
    for view in views:
        if view["details"]:
            await core.engine.viewed(elders[view["referral_id"]], actor=who.actor, what="referral",
                                     subject=view["referral_id"])  # fmt: skip
    return {"clinic_id": clinic_id, "clinic_name": core.views.responder_name(clinic_id), "referrals": views}


@router.get("/clinic/referrals", tags=["referrals"])
async def my_referrals(core: CoreDep, who: Clinic) -> dict[str, Any]:
    """The referrals sent to the caller's clinic, open ones first."""
    return await _listed(core, who)


async def _answer(core: Core, who: Principal, referral_id: str, action: str, **fields: Any) -> dict[str, Any]:
    await core.engine.referral_action(referral_id, action, actor=who.actor, clinic_id=_clinic_of(who), **fields)
    return await _listed(core, who)


@router.post("/clinic/referrals/{referral_id}/accept", tags=["referrals"])
async def accept(referral_id: str, body: AnswerIn, core: CoreDep, who: Clinic) -> dict[str, Any]:
    return await _answer(core, who, referral_id, "accept", note=body.note)


@router.post("/clinic/referrals/{referral_id}/decline", tags=["referrals"])
async def decline(referral_id: str, body: AnswerIn, core: CoreDep, who: Clinic) -> dict[str, Any]:
    return await _answer(core, who, referral_id, "decline", note=body.note)


@router.post("/clinic/referrals/{referral_id}/arrived", tags=["referrals"])
async def arrived(referral_id: str, body: AnswerIn, core: CoreDep, who: Clinic) -> dict[str, Any]:
    return await _answer(core, who, referral_id, "arrived", note=body.note)


@router.post("/clinic/referrals/{referral_id}/outcome", tags=["referrals"])
async def outcome(referral_id: str, body: OutcomeIn, core: CoreDep, who: Clinic) -> dict[str, Any]:
    return await _answer(core, who, referral_id, "outcome", note=body.note, outcome=body.outcome)
