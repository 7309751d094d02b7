"""The PBX link in the running server: built from the settings, run while this process takes calls, stopped last.

1. No ``pbx_host``: no link, and the console refuses click-to-call (``pbx_not_connected``); call events may
   still come over HTTP. Settings that cannot work (no manager user, a secret file that cannot be read) are
   a configuration error at start (:func:`check_pbx`), not a link that silently never logs in.
2. The link hands each call event to the core's intake (``Intake.call``), in order, as the gateway hands
   device reports: the intake records it and the consoles pop the caller.
3. In a cluster every node holds a link of its own, as every node is an edge for devices and pages: an
   operator's click-to-call goes out through the node they are logged in to, and a leader that dies leaves the
   others linked, with nothing to rebuild. Each node hands its call events to the leader (the intake); the core
   applies a call's move once and answers the same move reported again by another node without writing
   (dispatch.engine ``call_event``), so N links make one record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dispatch.core import Core
from dispatch.settings import Settings
from gateway.amilink import PbxLink, pbx_secret

log = logging.getLogger("anxin.pbx")


def check_pbx(settings: Settings) -> None:
    """Refuse PBX settings that cannot work, before anything starts (rule 1)."""
    if settings.pbx_host:
        pbx_secret(settings)


@asynccontextmanager
async def pbx_running(settings: Settings, core: Core) -> AsyncIterator[PbxLink | None]:
    """The PBX link for as long as the context lasts (None when no PBX is configured), as ``core.telephony``."""
    if not settings.pbx_host:
        yield None
        return
    link = PbxLink.from_settings(settings, on_event=core.intake.call, clock=core.clock)
    core.telephony = link
    log.info("pbx: linking to %s:%d as %s", link.host, link.port, link.username)
    task = asyncio.create_task(link.run(), name="pbx-link")
    try:
        yield link
    finally:
        core.telephony = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
