"""The PBX link in the running server: built from the settings, run while this process takes calls, stopped last.

1. No ``pbx_host``: no link, and the console refuses click-to-call (``pbx_not_connected``); call events may
   still come over HTTP. A secret file that cannot be read is a configuration error at start, not a link that
   silently never logs in.
2. The link hands each call event to the core's intake (``Intake.call``), in order, as the gateway hands device
   reports: the intake records it and the consoles pop the caller.
3. In a cluster the link runs on the leader only: one manager session per PBX, so each event is applied once
   (a follower that takes the lead starts it; one that loses the lead exits). Until then the follower's
   console says the PBX is not connected here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dispatch.core import Core
from dispatch.errors import ConfigError
from dispatch.settings import Settings
from gateway.amilink import PbxLink

log = logging.getLogger("anxin.pbx")

#: how often a cluster follower looks whether it leads now, to start the link
LEAD_POLL_S = 0.5


def pbx_secret(settings: Settings) -> str:
    """The manager user's secret: ``pbx_secret``, or what ``pbx_secret_file`` holds (rule 1)."""
    if settings.pbx_host and not settings.pbx_username:
        raise ConfigError("pbx_host is set but pbx_username is not: the manager user Anxin logs in as")
    if settings.pbx_secret_file is None:
        return settings.pbx_secret
    try:
        return settings.pbx_secret_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"pbx_secret_file {settings.pbx_secret_file}: {exc.strerror or exc}") from None


def pbx_link(settings: Settings, core: Core) -> PbxLink:
    """The link the settings describe, handing call events to the core's intake."""
    return PbxLink(
        host=settings.pbx_host,
        port=settings.pbx_port,
        username=settings.pbx_username,
        secret=pbx_secret(settings),
        on_event=core.intake.call,
        clock=core.clock,
        extensions=dict(settings.pbx_extensions),
        channel=settings.pbx_channel,
        context=settings.pbx_context,
        caller_id=settings.pbx_caller_id,
        queues=tuple(settings.pbx_queues),
        backoff_s=settings.pbx_backoff_s,
        backoff_max_s=settings.pbx_backoff_max_s,
    )


@asynccontextmanager
async def pbx_running(settings: Settings, core: Core) -> AsyncIterator[PbxLink | None]:
    """The PBX link for as long as the context lasts (None when no PBX is configured), as ``core.telephony``."""
    if not settings.pbx_host:
        yield None
        return
    link = pbx_link(settings, core)
    core.telephony = link
    task = asyncio.create_task(_lead_then_run(link, core), name="pbx-link")
    try:
        yield link
    finally:
        core.telephony = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _lead_then_run(link: PbxLink, core: Core) -> None:
    node = core.node
    while node is not None and not node.leading:  # noqa: ASYNC110 - the node's lead is a flag, not an event
        await asyncio.sleep(LEAD_POLL_S)
    log.info("pbx: linking to %s:%d as %s", link.host, link.port, link.username)
    await link.run()
