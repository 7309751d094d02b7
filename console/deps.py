"""What every route depends on: the core, the accounts, the caller's principal and the rule that admits them.

A route names who may call it with one of the aliases below (``Staff``, ``Supervisors``, ``Admin``,
``Caregiver``, ``Clinic``, ``HotlineFeed``, ``AlarmFeed``) or with :func:`allow` itself; the access matrix test
reads the same rules from the route table, so a route without one fails the suite. What a person then *sees* is narrowed
by their scopes (``who.reach``, see dispatch.scopes) inside each route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, ConfigDict

from console.auth import STAFF, Accounts, Principal, Role
from console.errors import Forbidden
from dispatch.core import Core

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def core_of(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


def accounts_of(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


def allow(*roles: Role, grant: str | None = None) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting these roles, and service accounts holding ``grant`` when one is named."""

    async def dependency(request: Request, token: Annotated[str | None, Depends(oauth2)]) -> Principal:
        principal = await accounts_of(request).principal(token)
        if principal.role in roles:
            return principal
        if grant is not None and principal.role == "service" and grant in principal.grants:
            return principal
        needs = " or ".join((*roles, f"a service key with {grant}") if grant else roles)
        raise Forbidden(f"role {principal.role} may not do this; needs {needs}",
                        params={"role": principal.role})  # fmt: skip

    dependency.roles = roles  # type: ignore[attr-defined]  # read by the access matrix test
    dependency.grant = grant  # type: ignore[attr-defined]
    return dependency


Staff = Annotated[Principal, Depends(allow(*STAFF))]
Supervisors = Annotated[Principal, Depends(allow("admin", "supervisor"))]
Admin = Annotated[Principal, Depends(allow("admin"))]
Caregiver = Annotated[Principal, Depends(allow("caregiver"))]
#: a clinic's desk (the green channel), bound to the clinic's responder id
Clinic = Annotated[Principal, Depends(allow("clinic"))]
#: the telephony's events: an operator's console in a demo, the PBX adapter's service key in the field
HotlineFeed = Annotated[Principal, Depends(allow(*STAFF, grant="hotline"))]
#: alarms raised by an integration (a partner's platform) with a service key, or by staff
AlarmFeed = Annotated[Principal, Depends(allow(*STAFF, grant="alarms"))]
CoreDep = Annotated[Core, Depends(core_of)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
