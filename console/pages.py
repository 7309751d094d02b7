"""The pages the app serves itself: the operator console, the supervisor view and the caregiver phone page.

Static files live in ``console/static`` and are served as they are: no build step, no CDN, no third-party
script. The pages are plain ES modules; every visible string comes from ``static/i18n/<language>.json``.

``GET /api/config`` tells the pages how this deployment is set up (time zone, timers, map tiles). It
needs no login (the login page itself uses it) and so carries no personal data and nothing secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse

from dispatch.settings import Settings

STATIC = Path(__file__).parent / "static"
HTML = "text/html; charset=utf-8"
LANGUAGES = ("zh-CN", "en")

pages = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    # no-cache: the browser revalidates (ETag), so an upgraded server never runs with yesterday's page
    return FileResponse(STATIC / name, media_type=HTML, headers={"Cache-Control": "no-cache"})


@pages.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/console")


@pages.get("/console")
async def console_page() -> FileResponse:
    return _page("console.html")


@pages.get("/supervisor")
async def supervisor_page() -> FileResponse:
    return _page("supervisor.html")


@pages.get("/m")
async def phone_page() -> FileResponse:
    return _page("phone.html")


@pages.get("/api/config")
async def page_config(request: Request) -> dict[str, Any]:
    """What the pages need to know about this deployment; public, so nothing personal and nothing secret."""
    settings: Settings = request.app.state.core.settings
    return {
        "timezone": settings.timezone,
        "answer_target_s": settings.answer_target_s,
        "offer_timeout_s": settings.offer_timeout_s,
        "position_stale_s": settings.position_stale_s,
        "map_tiles": settings.map_tiles,
        "languages": list(LANGUAGES),
        "default_language": LANGUAGES[0],
    }
