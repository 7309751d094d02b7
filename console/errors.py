"""The console's exceptions, and how core errors become HTTP answers.

    ConsoleError
    ├── AuthError            missing, unknown, expired or revoked token, a disabled account, a wrong password (401)
    │   ├── Forbidden        the token is fine but the role (or an admin's scope) is not allowed (403)
    │   └── Throttled        too many failed logins for the account or from the address (429, Retry-After);
    │                        an operator dialling again and again (``dial_throttled``)
    └── PbxError             the phone system cannot place a call: not configured or its link down (503
        │                    ``pbx_not_connected``)
        └── PbxRefused       the PBX refused the click-to-call (502 ``pbx_refused``)

Core errors map to status codes here: NotFound → 404, IllegalTransition and Conflict → 409, other
InvalidInput → 422 naming the field, JournalError → 503 (nothing was acknowledged).
"""

from __future__ import annotations

from typing import ClassVar

from dispatch.errors import CODES, AnxinError, Conflict, IllegalTransition, InvalidInput, JournalError, NotFound

#: the codes the HTTP face adds to the core's (see dispatch.errors.CODES); the pages translate them all
CONSOLE_CODES = frozenset(
    {
        "unauthorized",
        "token_expired",
        "login_failed",
        "forbidden",
        "validation",
        "route_not_found",
        "method_not_allowed",
        "http_error",
        "internal",
        "bad_message",
        "body_too_large",  # console.limits: a request body over its route's limit (413)
        "roster_too_long",
        "why_required",  # console.elderfile: an elder's file is opened for a reason, on record
        "pdf_busy",  # console.pdfwork: as many documents (file PDFs, reports) as are made at once are being made (429)
        "report_busy",  # console.reports: as many period reports and exports as fold at once are folding (429)
        "care_level_by_assessment",  # console.api: a care level comes from a needs assessment (admins may correct)
        "entitlement_by_supervisor",  # console.api: who is served free or low-cost is a supervisor's decision
        "pbx_not_connected",  # console.telephony: no PBX configured, or its link is down (503)
        "pbx_refused",  # console.telephony: the PBX refused a click-to-call (502)
        "dial_throttled",  # console.telephony: an operator dialled too often (a stuck button) (429)
        # accounts (console.auth, console.accounts)
        "login_locked",
        "login_throttled",
        "login_busy",
        "hotline_needs_centre",
        "account_disabled",
        "token_revoked",
        "password_wrong",
        "password_required",
        "service_no_password",
        "grants_service_only",
        "responder_required",
        "responder_kind",  # a clinic's account is bound to a clinic, a caregiver's to a caregiver or volunteer
        "contact_not_on_app",
        "account_not_found",
        "account_self",
        "scope_exceeded",
        "not_service",
        "key_not_found",
        # console.metrics: /metrics is a scraper's (the metrics token, or a loopback peer)
        "metrics_token",
        "metrics_scraper",
    }
)
#: every code an answer of the API (or a phone's websocket) carries
ALL_CODES = CODES | CONSOLE_CODES


class ConsoleError(AnxinError):
    """Base of the console package's own errors."""


class AuthError(ConsoleError):
    status = 401
    code: ClassVar[str] = "unauthorized"


class Forbidden(AuthError):
    status = 403
    code: ClassVar[str] = "forbidden"


class Throttled(AuthError):
    """Refused before any password is checked: wait ``retry_after`` seconds (sent as ``Retry-After``)."""

    status = 429
    code: ClassVar[str] = "login_throttled"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, params={"retry_after": retry_after, "minutes": -(-retry_after // 60)})
        self.retry_after = retry_after


class PbxError(ConsoleError):
    """The phone system cannot place the call: none is configured, or the link to it is down."""

    status = 503
    code: ClassVar[str] = "pbx_not_connected"


class PbxRefused(PbxError):
    """The PBX answered a click-to-call with a refusal (or did not answer it in time)."""

    status = 502
    code: ClassVar[str] = "pbx_refused"


def status_for(error: AnxinError) -> int:
    if isinstance(error, AuthError | PbxError):
        return error.status
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, IllegalTransition | Conflict):
        return 409
    if isinstance(error, InvalidInput):
        return 422
    if isinstance(error, JournalError):
        return 503
    return 500
