"""The pages the app serves itself: the operator console, the supervisor view and the caregiver phone page.

Static files live in ``console/static`` and are served as they are: no build step, no CDN.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

STATIC = Path(__file__).parent / "static"
HTML = "text/html; charset=utf-8"

pages = APIRouter(include_in_schema=False)


@pages.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/console")


@pages.get("/console")
async def console_page() -> FileResponse:
    return FileResponse(STATIC / "console.html", media_type=HTML)
