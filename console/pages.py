"""The pages the app serves itself: the operator console, the supervisor view, the caregiver phone page, the
admins' accounts page, the service desk (orders, follow-ups, complaints), the monthly statements, the period
reports (统计报表), the call log (通话记录), the care-call list (关怀电话), the 五定 plans, the duty page
(值班与交接班), a clinic's referrals (绿色通道) and the registry page (elders and their devices).

Static files live in ``console/static`` and are served as they are: no build step, no CDN, no third-party
script. The pages are plain ES modules; every visible string comes from ``static/i18n/<language>.json``.

``GET /api/config`` tells the pages how this deployment is set up (time zone, timers, map tiles). It
needs no login (the login page itself uses it) and so carries no personal data and nothing secret.

The API's documentation (``/docs``, Swagger UI, and ``/redoc``) is served from assets installed with the
project (the ``fastapi-offline`` package's copies of Swagger UI and ReDoc), never from a CDN: a care centre's
network may have no internet, and a CDN is one more thing that can fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from dispatch.settings import Settings

STATIC = Path(__file__).parent / "static"
#: Swagger UI and ReDoc, as installed with the project; mounted at ``DOCS_ASSETS``
DOCS_STATIC = Path(fastapi_offline.__file__).parent / "static"
DOCS_ASSETS = "/docs-assets"
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


@pages.get("/accounts")
async def accounts_page() -> FileResponse:
    return _page("accounts.html")


@pages.get("/calls")
async def call_log_page() -> FileResponse:
    """The call log: the hotline's calls of today or the last week, filtered in the page (staff; the data
    needs a token)."""
    return _page("calllog.html")


@pages.get("/care-calls")
async def care_calls_page() -> FileResponse:
    return _page("carecalls.html")


@pages.get("/plans")
async def plans_page() -> FileResponse:
    """五定 plans and their missed visits (staff; the data needs a token)."""
    return _page("plans.html")


@pages.get("/elder")
async def elder_page() -> FileResponse:
    """One elder's file (staff; the data needs a token and a reason, journaled)."""
    return _page("elder.html")


@pages.get("/duty")
async def duty_page() -> FileResponse:
    return _page("duty.html")


@pages.get("/clinic")
async def clinic_page() -> FileResponse:
    """A clinic's desk: the referrals to its green channel (a clinic account; the data needs a token)."""
    return _page("clinic.html")


@pages.get("/assess")
async def assess_page() -> FileResponse:
    """The needs assessment page: an assessor's list of who is due and the form (the data needs a token)."""
    return _page("assess.html")


@pages.get("/registry")
async def registry_page() -> FileResponse:
    """Keeping the registry: find, enrol and edit elders, bind, unbind and test-call devices (staff)."""
    return _page("registry.html")


@pages.get("/services")
async def services_page() -> FileResponse:
    return _page("services.html")


@pages.get("/statements")
async def statements_page() -> FileResponse:
    return _page("statements.html")


@pages.get("/reports")
async def reports_page() -> FileResponse:
    """The period report: figures, charts, areas, downloads (supervisors and admins; the data needs a token)."""
    return _page("reports.html")


@pages.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url="/static/icon.svg",
    )


@pages.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} API",
        redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
        redoc_favicon_url="/static/icon.svg",
        with_google_fonts=False,
    )


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
