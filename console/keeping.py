"""Keeping the registry from the console (dispatch.keeping): elders leaving care and coming back, devices
unbound and test-called, a free id for a new elder, and a responder's record for the admin's form.

Staff (operators, supervisors, admins) save elders and devices of their part of the network
(``PUT /api/elders/{id}``, ``PUT /api/devices/{id}`` in console.api), unbind a device and test-call it here;
only supervisors and admins deactivate or reactivate an elder; only admins read a responder's whole record (and
save it: ``PUT /api/responders/{id}``). An elder, device or responder outside the caller's reach is as if it did
not exist (404). The registry page (``/registry``) is built on these routes.
"""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter
from pydantic import Field

from console.deps import Admin, Body, CoreDep, Staff, Supervisors
from dispatch.core import Core
from dispatch.entries import LeftCare
from dispatch.errors import NotFound
from dispatch.scopes import Reach

router = APIRouter(prefix="/api")


class LeftCareIn(Body):
    reason: LeftCare
    words: str = Field("", max_length=500, description="the supervisor's words; required for other")


class WordsIn(Body):
    words: str = Field("", max_length=500)


class UnbindIn(Body):
    reason: str = Field("", max_length=500)


@router.post("/elders/{elder_id}/deactivate", tags=["registry"])
async def deactivate(elder_id: str, body: LeftCareIn, core: CoreDep, who: Supervisors) -> dict[str, Any]:
    """The elder left the centre's care: kept and readable, ``active`` false, their devices unbound; no longer
    matched by phone, listed by a search only when asked (``inactive=true``), no new alarm for them."""
    core.views.elder_in_reach(elder_id, who.reach)
    await core.engine.deactivate_elder(elder_id, body.reason, body.words, actor=who.actor)
    await core.engine.viewed(elder_id, actor=who.actor)  # the whole record is shown: a read on record
    return core.views.elder_record(elder_id, who.reach)


@router.post("/elders/{elder_id}/reactivate", tags=["registry"])
async def reactivate(elder_id: str, body: WordsIn, core: CoreDep, who: Supervisors) -> dict[str, Any]:
    """The elder is in the centre's care again (their devices are bound again by hand)."""
    core.views.elder_in_reach(elder_id, who.reach)
    await core.engine.reactivate_elder(elder_id, body.words, actor=who.actor)
    await core.engine.viewed(elder_id, actor=who.actor)  # the whole record is shown: a read on record
    return core.views.elder_record(elder_id, who.reach)


@router.post("/devices/{device_id}/unbind", tags=["registry"])
async def unbind(device_id: str, body: UnbindIn, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Take the device off its elder and out of the registry; what it sends next is an unknown device's."""
    elder_id = _device_elder(core, device_id, who.reach)
    await core.engine.unbind_device(device_id, actor=who.actor, reason=body.reason)
    return {"device_id": device_id, "elder_id": elder_id, "unbound": True}


@router.post("/devices/{device_id}/test", tags=["registry"])
async def test_call(device_id: str, core: CoreDep, who: Staff) -> dict[str, Any]:
    """Open the device's test window (``device_test_s``): its next alarm is a test, closed at once as "test
    passed"; nothing heard within the window, the test failed. Poll ``GET`` for the result."""
    _device_elder(core, device_id, who.reach)
    await core.engine.test_device(device_id, actor=who.actor)
    return core.views.device_test(device_id, who.reach)


@router.get("/devices/{device_id}/test", tags=["registry"])
async def test_result(device_id: str, core: CoreDep, who: Staff) -> dict[str, Any]:
    """The device's last test call: running, passed (with its test incident) or failed."""
    return core.views.device_test(device_id, who.reach)


@router.get("/responders/{responder_id}", tags=["registry"])
async def responder_record(responder_id: str, core: CoreDep, who: Admin) -> dict[str, Any]:
    """A responder's or clinic's registry record as saved (its base position, not where they last were), for
    the registry page's form; an admin's, as ``PUT /api/responders/{id}`` is."""
    return core.views.responder_record(responder_id, who.reach)


@router.get("/registry/form", tags=["registry"])
async def registry_form(core: CoreDep, who: Staff) -> dict[str, Any]:
    """What the registry page's forms need: a free id for a new elder in the registry's own pattern (the form
    may take another), the device protocols this server speaks, the reasons an elder leaves care."""
    return {"next_elder_id": core.views.next_elder_id(), "protocols": list(core.views.protocols),
            "left_care_reasons": list(get_args(LeftCare)), "device_test_s": core.settings.device_test_s}  # fmt: skip


def _device_elder(core: Core, device_id: str, reach: Reach) -> str:
    elder_id = core.views.device_elder(device_id)
    if elder_id is None or not reach.covers(core.views.elder_place(elder_id)):
        raise NotFound(f"no device {device_id}", field="device_id")
    return elder_id
