"""The phone system as the console sees it: whether it is there, and click-to-call (``/api/telephony``,
``/api/calls/dial``).

Theory of operation
    An operator's extension is the key of ``Settings.pbx_extensions`` whose value is their user name: the PBX
    rings it first, then dials the number (``dispatch.commands.Dial``). A dial is checked in this order, so that
    a refusal tells the operator what to do and a thing out of their reach stays as if it did not exist:

    1. the number (3 to 32 digits, an optional leading +, spaces and dashes taken out): 422 ``bad_number``;
    2. the elder, the call being called back and the incident named must be in the reader's reach: 404;
    3. the operator has an extension: 409 ``no_extension``;
    4. the PBX is configured and its link is up (``Core.telephony``): 503 ``pbx_not_connected``;
    5. the operator has not dialled too often (:class:`DialPace`): 429 ``dial_throttled`` with Retry-After; and
       their desk phone is not on a call (one they placed that has not ended, or one answered at their extension
       still going: :meth:`~dispatch.views.Views.desk_busy`): 409 ``extension_busy``;
    6. the call is put on record (``call.dialed``, durable) before the PBX is asked, so a call placed is never
       missing from the record whatever the PBX does; then ``originate``. A refusal (any error, or no answer
       within :data:`ORIGINATE_TIMEOUT_S`) ends the call as failed and answers 502 ``pbx_refused``.

    The PBX's events about the call then come under the call id answered here (direction "out").

Rules
    A stuck button must not dial fifty times: one person places at most :data:`DIAL_BURST` calls in
    :data:`DIAL_WINDOW_S` seconds, and never the same number twice within :data:`REDIAL_S` seconds. The pace is
    kept per app, in memory (a restart forgets it, which is harmless), on the core's clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from console.auth import Principal, Windows
from console.deps import Body, CoreDep, Staff, allow
from console.errors import PbxError, PbxRefused, Throttled
from dispatch.commands import Dial, dial_number
from dispatch.core import Core
from dispatch.errors import Conflict

router = APIRouter(prefix="/api", tags=["calls"])

#: who may place a call through the PBX: those who answer the hotline
Dialler = Annotated[Principal, Depends(allow("operator", "supervisor"))]

DIAL_BURST = 3
DIAL_WINDOW_S = 10.0
REDIAL_S = 5.0
#: the longest a click waits for the PBX to accept the originate (its own refusals come sooner)
ORIGINATE_TIMEOUT_S = 15.0


class DialPace:
    """How often each person dialled lately: at most :data:`DIAL_BURST` in :data:`DIAL_WINDOW_S` seconds, the
    same number not again within :data:`REDIAL_S` seconds (two moving windows, as failed logins are counted)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._burst = Windows(DIAL_BURST, DIAL_WINDOW_S, now)
        self._redial = Windows(1, REDIAL_S, now)

    def wait_s(self, who: str, number: str) -> int:
        """Whole seconds until ``who`` may dial ``number``; 0 when they may now."""
        waits = (self._burst.left_s(who), self._redial.left_s(f"{who} {number}"))
        return max(wait or 0 for wait in waits)

    def dialled(self, who: str, number: str) -> None:
        self._burst.hit(who)
        self._redial.hit(f"{who} {number}")


def extension_of(core: Core, username: str) -> str | None:
    """The PBX extension that rings ``username``'s desk (the first, when several do), or None."""
    return next((ext for ext, user in core.settings.pbx_extensions.items() if user == username), None)


def operator_of(core: Core, extension: str) -> str | None:
    """The operator's user name a PBX extension belongs to, or None."""
    return core.settings.pbx_extensions.get(extension) if extension else None


def _pace(request: Request, core: Core) -> DialPace:
    pace: DialPace | None = getattr(request.app.state, "dial_pace", None)
    if pace is None:
        pace = request.app.state.dial_pace = DialPace(core.clock.now)
    return pace


@router.get("/telephony")
async def telephony(core: CoreDep, who: Staff) -> dict[str, Any]:
    """Whether a PBX is configured and connected, the reader's own extension, and whether they may dial now."""
    configured = bool(core.settings.pbx_host) or core.telephony is not None
    connected = core.telephony is not None and core.telephony.connected
    extension = extension_of(core, who.username)
    can_dial = connected and extension is not None and who.role in ("operator", "supervisor")
    return {"configured": configured, "connected": connected, "extension": extension, "can_dial": can_dial}


class DialIn(Body):
    number: str = Field(min_length=1, max_length=64, description="digits, an optional leading +; spaces and dashes")
    elder_id: str | None = Field(None, max_length=128, description="the elder called, or whose contact is called")
    call_id: str | None = Field(None, max_length=128, description="the call being called back")
    incident_id: str | None = Field(None, max_length=128)


@router.post("/calls/dial", status_code=201)
async def dial(body: DialIn, request: Request, core: CoreDep, who: Dialler) -> dict[str, Any]:
    """Click-to-call: the PBX rings the operator's extension, then dials the number (see the module's order of
    checks). The call is on record as dialled before the PBX is asked; its events follow under ``call_id``."""
    number = dial_number(body.number)
    if body.elder_id is not None:
        core.views.elder_in_reach(body.elder_id, who.reach)
    if body.call_id is not None:
        core.views.call_in_reach(body.call_id, who.reach)
    if body.incident_id is not None:
        core.views.incident_in_reach(body.incident_id, who.reach)
    extension = extension_of(core, who.username)
    if extension is None:
        raise Conflict(f"{who.username} has no extension in pbx_extensions", code="no_extension")
    telephony = core.telephony
    if telephony is None or not telephony.connected:
        raise PbxError("no phone system is connected: dial from the desk phone")
    pace = _pace(request, core)
    if (wait := pace.wait_s(who.username, number)) > 0:
        raise Throttled("dialling too often: wait a moment", code="dial_throttled", retry_after=wait)
    if (holding := core.views.desk_busy(who.username, extension)) is not None:
        raise Conflict(f"extension {extension} is on call {holding}: finish it first", code="extension_busy",
                       params={"call": holding})  # fmt: skip
    pace.dialled(who.username, number)
    call_id = await core.engine.dial(number, actor=who.actor, extension=extension, elder_id=body.elder_id,
                                     about_call=body.call_id, incident_id=body.incident_id)  # fmt: skip
    try:
        async with asyncio.timeout(ORIGINATE_TIMEOUT_S):
            await telephony.originate(Dial(call_id, extension, number, who.username))
    except Exception as exc:  # whatever the PBX or its link said: the call failed, and says why on record
        reason = str(exc) or type(exc).__name__
        await core.engine.dial_failed(call_id, reason, actor=who.actor)
        raise PbxRefused(f"the phone system refused the call: {reason}", params={"reason": reason}) from exc
    return {"call_id": call_id, "state": "dialing"}
