"""The accounts API: logging in and out, one's own account, and the admin's accounts and service keys.

Routes under ``/api``
    ``POST /auth/token`` (the OAuth2 password form), ``POST /auth/logout``, ``GET /me``,
    ``POST /me/password`` for whoever is logged in; ``/accounts`` and ``/accounts/{username}/...`` (create,
    change, disable, enable, reset a password, issue and revoke service keys) for admins.

Rules
    1. A scoped admin (scopes other than ``*``) sees and manages only accounts whose every scope lies inside
       one of theirs, and gives none a scope beyond theirs (403 ``scope_exceeded``).
    2. An admin cannot disable themself or change their own role or scopes (409 ``account_self``): the
       centre is never left without the admin who made the change.
    3. Every change is journaled with the admin (or the person) as actor, never a password or a key; what
       revokes tokens is said in console.auth. Failed logins are journaled by console.auth itself.
    4. A refusal names the username at most, never a password.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import AfterValidator, Field, StringConstraints

from console.auth import PEOPLE, ROLES, Account, Accounts, Key, Principal, Role
from console.deps import Admin, Body, CoreDep, accounts_of, allow, oauth2
from console.errors import Forbidden
from dispatch.core import Core
from dispatch.errors import Conflict, InvalidInput, NotFound
from dispatch.scopes import EVERYWHERE, check_scope

router = APIRouter(prefix="/api")

#: any account that is logged in: people, and a service key asking who it is
Anyone = Annotated[Principal, Depends(allow(*ROLES))]
#: a person logged in with a password (a service key does not log out or change a password)
Person = Annotated[Principal, Depends(allow(*PEOPLE))]
Token = Annotated[str | None, Depends(oauth2)]

Scope = Annotated[str, AfterValidator(check_scope)]
#: a password as typed: the bodies strip whitespace from strings, but the login form does not
Password = Annotated[str, StringConstraints(strip_whitespace=False), Field(max_length=200)]
Grant = Literal["hotline", "alarms", "import", "export"]
USERNAME = r"^[A-Za-z0-9_.-]{1,64}$"


def address_of(request: Request) -> str:
    """The client's address (behind a proxy, uvicorn's proxy headers handling has set it)."""
    return request.client.host if request.client is not None else "unknown"


# -- logging in, and oneself -------------------------------------------------------------------------


@router.post("/auth/token", tags=["auth"])
async def login(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, Any]:
    accounts = accounts_of(request)
    token, principal = await accounts.login(form.username, form.password, address_of(request))
    return {
        "access_token": token,
        "token_type": "bearer",
        "role": principal.role,
        "responder_id": principal.responder_id,
        "expires_in": int(accounts.ttl),
        "name": principal.name,
        "scopes": list(principal.scopes),
    }


@router.post("/auth/logout", status_code=204, tags=["auth"])
async def logout(request: Request, core: CoreDep, who: Person, token: Token, everywhere: bool = False) -> Response:
    """Revoke the token used (``everywhere``: every token of the account, on every device)."""
    assert token is not None  # the rule above admitted it
    await accounts_of(request).logout(token, everywhere=everywhere)
    detail = "everywhere" if everywhere else ""
    await core.engine.account_changed(who.username, "logout", actor=who.actor, detail=detail)
    return Response(status_code=204)


@router.get("/me", tags=["auth"])
async def me(who: Anyone) -> dict[str, Any]:
    return {
        "username": who.username,
        "name": who.name,
        "role": who.role,
        "scopes": list(who.scopes),
        "responder_id": who.responder_id,
        "grants": sorted(who.grants),
    }


class PasswordChange(Body):
    old_password: Password
    new_password: Annotated[Password, Field(min_length=8)]


@router.post("/me/password", status_code=204, tags=["auth"])
async def change_password(body: PasswordChange, request: Request, core: CoreDep, who: Person, token: Token) -> Response:
    """A new password for oneself; every other token of the account is revoked, this one kept."""
    assert token is not None
    accounts = accounts_of(request)
    await accounts.change_password(who, body.old_password, body.new_password, token=token,
                                   address=address_of(request))  # fmt: skip
    await core.engine.account_changed(who.username, "password_changed", actor=who.actor)
    return Response(status_code=204)


# -- the admin's accounts ----------------------------------------------------------------------------


def _view(account: Account, accounts: Accounts) -> dict[str, Any]:
    return {
        "username": account.username,
        "name": account.name,
        "role": account.role,
        "scopes": list(account.scopes),
        "grants": sorted(account.grants),
        "responder_id": account.responder_id,
        "disabled": account.disabled,
        "service": account.service,
        "created_at": account.created_at,
        "last_login_at": account.last_login_at,
        "locked_until": accounts.locked_until(account.username),
    }


def _key_view(key: Key) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "label": key.label,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


def _outside(who: Principal, scopes: Iterable[str]) -> list[str]:
    """The scopes not inside one of ``who``'s (a scope ``*`` is inside only ``*``)."""
    reach = who.reach
    return [] if reach.everywhere else [scope for scope in scopes if not reach.covers(scope)]


def _within(who: Principal, scopes: Iterable[str]) -> None:
    if outside := _outside(who, scopes):
        raise Forbidden(f"scopes {', '.join(outside)} are beyond yours", code="scope_exceeded",
                        params={"scopes": outside})  # fmt: skip


async def _target(request: Request, who: Principal, username: str) -> Account:
    """An account the admin may manage: it exists (404) and lies within their scopes (403)."""
    account = await accounts_of(request).get(username)
    _within(who, account.scopes)
    return account


def _responder_for(core: Core, who: Principal, role: str, responder_id: str | None) -> None:
    """A caregiver's account is bound to a responder the admin can see (else 404, as for anything out of reach):
    bound to another street's responder, it would receive that street's offers and jobs. A clinic's account is
    bound the same way to a clinic (and a caregiver's never to one). A family member's is bound to one elder's
    contact by its kin id (dispatch.family), a contact marked ``app``."""
    if role == "family":
        _family_for(core, who, responder_id)
        return
    if role not in ("caregiver", "clinic"):
        return
    if not responder_id:
        raise InvalidInput(f"a {role}'s account names their responder", field="responder_id",
                           code="responder_required")  # fmt: skip
    if not core.views.has_responder(responder_id) or not who.reach.covers(core.views.responder_place(responder_id)):
        raise NotFound(f"no responder {responder_id}", field="responder_id")
    if (role == "clinic") != core.views.is_clinic(responder_id):  # a clinic's desk is bound to a clinic, only
        raise InvalidInput(f"a {role}'s account cannot be bound to {responder_id}", field="responder_id",
                           code="responder_kind")  # fmt: skip


def _family_for(core: Core, who: Principal, responder_id: str | None) -> None:
    if not responder_id:
        raise InvalidInput("a family account names the elder's contact (kin:ELDER:PHONE)", field="responder_id",
                           code="responder_required")  # fmt: skip
    found = core.views.kin(responder_id)
    if found is None or not who.reach.covers(found[0]):
        raise NotFound(f"no contact {responder_id}", field="responder_id")
    if not found[2]:
        raise InvalidInput(f"{found[1]} does not answer on the phone page (contact app is off)",
                           field="responder_id", code="contact_not_on_app", params={"name": found[1]})  # fmt: skip


def _hotline_sees_all(grants: Iterable[str], scopes: Iterable[str]) -> None:
    """The telephony reports every call of the centre and learns whose number calls: its key is the whole
    centre's (so an admin of one street cannot mint one)."""
    if "hotline" in grants and EVERYWHERE not in scopes:
        raise InvalidInput("a key with the hotline grant sees the whole centre: scopes must be *", field="scopes",
                           code="hotline_needs_centre")  # fmt: skip


@router.get("/accounts", tags=["accounts"])
async def list_accounts(request: Request, who: Admin) -> dict[str, Any]:
    accounts = accounts_of(request)
    mine = [account for account in await accounts.all() if not _outside(who, account.scopes)]
    return {"accounts": [_view(account, accounts) for account in mine]}


class AccountIn(Body):
    username: str = Field(pattern=USERNAME)
    name: str = Field("", max_length=100)
    password: Annotated[Password, Field(min_length=8)] | None = None
    role: Role
    scopes: list[Scope] = Field(default_factory=lambda: ["*"], min_length=1, max_length=50)
    grants: list[Grant] = Field(default_factory=list)
    responder_id: str | None = None


@router.post("/accounts", status_code=201, tags=["accounts"])
async def create_account(body: AccountIn, request: Request, core: CoreDep, who: Admin) -> dict[str, Any]:
    _within(who, body.scopes)
    _responder_for(core, who, body.role, body.responder_id)
    _hotline_sees_all(body.grants, body.scopes)
    accounts = accounts_of(request)
    created = await accounts.create(
        body.username, body.password, body.role, body.responder_id,
        name=body.name, scopes=body.scopes, grants=body.grants,
    )  # fmt: skip
    await core.engine.account_created(
        body.username, body.role, actor=who.actor, scopes=created.scopes, service=body.role == "service"
    )
    core.views.name_staff({body.username: body.name})
    return _view(await accounts.get(body.username), accounts)


class AccountPatch(Body):
    name: str | None = Field(None, max_length=100)
    role: Role | None = None
    scopes: list[Scope] | None = Field(None, min_length=1, max_length=50)
    grants: list[Grant] | None = None
    responder_id: str | None = None


@router.patch("/accounts/{username}", tags=["accounts"])
async def change_account(
    username: str, body: AccountPatch, request: Request, core: CoreDep, who: Admin
) -> dict[str, Any]:
    """Change an account; a new role, scopes or responder revokes its tokens (console.auth)."""
    before = await _target(request, who, username)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k == "responder_id"}
    if username == who.username and {"role", "scopes"} & changes.keys():
        raise Conflict("you cannot change your own role or scopes", code="account_self", params={"username": username})
    _within(who, changes.get("scopes", ()))
    _responder_for(core, who, changes.get("role", before.role), changes.get("responder_id", before.responder_id))
    _hotline_sees_all(changes.get("grants", before.grants), changes.get("scopes", before.scopes))
    accounts = accounts_of(request)
    after, changed = await accounts.update(username, changes)
    core.views.name_staff({username: after.name})
    if "role" in changed:
        await core.engine.account_changed(username, "role", actor=who.actor, detail=f"{before.role} -> {after.role}")
    if "scopes" in changed:
        await core.engine.account_changed(username, "scopes", actor=who.actor, detail=", ".join(after.scopes))
    # the journal has no change of its own for these: they are part of what the role lets the account do
    if "responder_id" in changed:
        detail = f"responder {before.responder_id or '-'} -> {after.responder_id or '-'}"
        await core.engine.account_changed(username, "role", actor=who.actor, detail=detail)
    if "grants" in changed:
        detail = f"grants {', '.join(sorted(after.grants)) or '-'}"
        await core.engine.account_changed(username, "role", actor=who.actor, detail=detail)
    return _view(after, accounts)


@router.post("/accounts/{username}/disable", tags=["accounts"])
async def disable_account(username: str, request: Request, core: CoreDep, who: Admin) -> dict[str, Any]:
    """Disable an account: its tokens are refused at once, its keys while it stays disabled."""
    before = await _target(request, who, username)
    if username == who.username:
        raise Conflict("you cannot disable yourself", code="account_self", params={"username": username})
    accounts = accounts_of(request)
    after = await accounts.set_disabled(username, True)
    if not before.disabled:
        await core.engine.account_changed(username, "disabled", actor=who.actor)
    return _view(after, accounts)


@router.post("/accounts/{username}/enable", tags=["accounts"])
async def enable_account(username: str, request: Request, core: CoreDep, who: Admin) -> dict[str, Any]:
    """Enable an account again (tokens revoked when it was disabled stay revoked: its people log in again)."""
    before = await _target(request, who, username)
    accounts = accounts_of(request)
    after = await accounts.set_disabled(username, False)
    if before.disabled:
        await core.engine.account_changed(username, "enabled", actor=who.actor)
    return _view(after, accounts)


class PasswordReset(Body):
    password: Annotated[Password, Field(min_length=8)]


@router.post("/accounts/{username}/password", tags=["accounts"])
async def reset_password(
    username: str, body: PasswordReset, request: Request, core: CoreDep, who: Admin
) -> dict[str, Any]:
    """A new password set by an admin (a forgotten one); every token of the account is revoked."""
    account = await _target(request, who, username)
    if account.service:
        raise InvalidInput("a service account has no password; issue it a key", field="password",
                           code="service_no_password")  # fmt: skip
    accounts = accounts_of(request)
    await accounts.set_password(username, body.password)
    await core.engine.account_changed(username, "password_reset", actor=who.actor)
    return _view(await accounts.get(username), accounts)


# -- service keys ------------------------------------------------------------------------------------


@router.get("/accounts/{username}/keys", tags=["accounts"])
async def list_keys(username: str, request: Request, who: Admin) -> dict[str, Any]:
    await _target(request, who, username)
    return {"keys": [_key_view(key) for key in await accounts_of(request).keys(username)]}


class KeyIn(Body):
    label: str = Field(min_length=1, max_length=100)


@router.post("/accounts/{username}/keys", status_code=201, tags=["accounts"])
async def issue_key(username: str, body: KeyIn, request: Request, core: CoreDep, who: Admin) -> dict[str, Any]:
    """A new API key for a service account, shown this once (only its SHA-256 is kept)."""
    await _target(request, who, username)
    key, secret = await accounts_of(request).issue_key(username, body.label)
    await core.engine.account_changed(username, "key_issued", actor=who.actor, detail=f"{key.key_id} {key.label}")
    return {"key_id": key.key_id, "label": key.label, "key": secret}


@router.delete("/accounts/{username}/keys/{key_id}", status_code=204, tags=["accounts"])
async def revoke_key(username: str, key_id: str, request: Request, core: CoreDep, who: Admin) -> Response:
    await _target(request, who, username)
    if await accounts_of(request).revoke_key(username, key_id):
        await core.engine.account_changed(username, "key_revoked", actor=who.actor, detail=key_id)
    return Response(status_code=204)
