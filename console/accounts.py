"""The accounts API: logging in, and the admin's accounts.

Routes under ``/api``: ``POST /auth/token`` (the OAuth2 password form; answers a bearer token) and the
accounts an admin creates.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import Field

from console.auth import Role
from console.deps import Admin, Body, CoreDep, accounts_of
from dispatch.errors import NotFound

router = APIRouter(prefix="/api")


@router.post("/auth/token", tags=["auth"])
async def login(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, Any]:
    accounts = accounts_of(request)
    token, principal = await accounts.login(form.username, form.password)
    return {
        "access_token": token,
        "token_type": "bearer",
        "role": principal.role,
        "responder_id": principal.responder_id,
        "expires_in": int(accounts.ttl),
    }


class AccountIn(Body):
    username: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    password: str = Field(min_length=8, max_length=200)
    role: Role
    responder_id: str | None = None


@router.post("/accounts", status_code=201, tags=["auth"])
async def create_account(body: AccountIn, request: Request, core: CoreDep, who: Admin) -> dict[str, Any]:
    if body.role == "caregiver" and not core.views.has_responder(body.responder_id or ""):
        raise NotFound(f"no responder {body.responder_id}", field="responder_id")
    principal = await accounts_of(request).create(body.username, body.password, body.role, body.responder_id)
    await core.engine.account_created(body.username, body.role, actor=who.actor)
    return {"username": principal.username, "role": principal.role, "responder_id": principal.responder_id}
