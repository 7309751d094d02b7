"""The console's exceptions, and how core errors become HTTP answers.

    ConsoleError
    └── AuthError            missing, unknown or expired token, or a role that may not do this
        └── Forbidden        the token is fine but the role is not allowed (403)

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


def status_for(error: AnxinError) -> int:
    if isinstance(error, AuthError):
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
