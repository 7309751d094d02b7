"""The account lifecycle end to end: passwords, the throttle, revocation, service keys, the admin's routes.

Real app (Starlette's TestClient), real SQLite data folder, a manual clock for the app (the throttle's windows
run on it too: a lock lifts when the test moves the clock on). Every client of the TestClient comes from the
address ``testclient``; other addresses are tried by calling ``Accounts.login`` in the app's own loop
(``client.portal``).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import console.auth
from anxin.server import app_for
from console.auth import Accounts
from console.errors import Throttled
from dispatch.clock import ManualClock
from dispatch.core import Core
from dispatch.errors import AnxinError
from dispatch.settings import Settings
from tests.conftest import COMMUNITY, elder, responder, seed, settings_for
from tests.console.test_api import auth, token

STREET = COMMUNITY.rsplit("/", 1)[0]  # 龙文区/蓝田街道
PASSWORD = "password-123"

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(time.time())


@pytest.fixture
def make_client(tmp_path: Path, clock: ManualClock) -> Iterator[ClientFactory]:
    """Start the app on a seeded data folder with these settings; ``prepare`` may touch the database first."""
    opened: list[TestClient] = []

    def make(prepare: Callable[[Settings], None] | None = None, **overrides: object) -> TestClient:
        settings = settings_for(tmp_path / "data", **overrides)
        asyncio.run(seed(settings, elders=[elder("e1")], responders=[responder("c1", 24.511, 117.70)]))
        if prepare is not None:
            prepare(settings)
        client = TestClient(app_for(settings, clock))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    return make_client()


def accounts_of(client: TestClient) -> Accounts:
    accounts: Accounts = client.app.state.accounts  # type: ignore[attr-defined]
    return accounts


def core_of(client: TestClient) -> Core:
    core: Core = client.app.state.core  # type: ignore[attr-defined]
    return core


def create(client: TestClient, admin: str, username: str, role: str = "operator", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"username": username, "role": role, **fields}
    if role != "service":
        body.setdefault("password", PASSWORD)
    response = client.post("/api/accounts", json=body, headers=auth(admin))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/api/auth/token", data={"username": username, "password": password})


def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def journal(client: TestClient, kind: str) -> list[dict[str, Any]]:
    """The payloads of the journal's entries of one kind, read from the core (no scope in the way)."""
    entries = client.portal.call(core_of(client).journal.read, 0, 100_000)  # type: ignore[union-attr]
    return [entry.as_dict()["payload"] for entry in entries if entry.kind == kind]


def db_rows(settings_path: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings_path) as db:
        return list(db.execute(sql, args))


def db_path(client: TestClient) -> Path:
    path: Path = core_of(client).settings.db_path
    return path


# -- passwords ---------------------------------------------------------------------------------------


OLD_SCHEMA = """
CREATE TABLE accounts (username TEXT PRIMARY KEY, role TEXT NOT NULL, responder_id TEXT, pw_hash TEXT NOT NULL,
                       created_at REAL NOT NULL);
CREATE TABLE tokens (token_hash TEXT PRIMARY KEY, username TEXT NOT NULL REFERENCES accounts(username),
                     expires_at REAL NOT NULL);
"""


def old_release_data(settings: Settings) -> None:
    """The accounts of the first release: scrypt hashes, no names, scopes or keys, and a live token."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(b"old-password-1", salt=salt, n=2**14, r=8, p=1)
    with sqlite3.connect(settings.db_path) as db:
        db.executescript(OLD_SCHEMA)
        db.execute(
            "INSERT INTO accounts VALUES (?, ?, ?, ?, ?)",
            ("veteran", "supervisor", None, f"scrypt${salt.hex()}${digest.hex()}", 1_700_000_000.0),
        )
        db.execute(
            "INSERT INTO tokens VALUES (?, ?, ?)",
            (hashlib.sha256(b"a-token-of-the-old-release").hexdigest(), "veteran", time.time() + 3600),
        )


def test_an_earlier_release_s_accounts_migrate_and_scrypt_becomes_argon2(make_client: ClientFactory) -> None:
    client = make_client(prepare=old_release_data)
    path = db_path(client)
    columns = {row[1] for row in db_rows(path, "PRAGMA table_info(accounts)")}
    assert {"name", "scopes", "grants", "disabled", "last_login_at"} <= columns
    # the token handed out before the upgrade still works, with the defaults of the new columns
    me = client.get("/api/me", headers=auth("a-token-of-the-old-release"))
    assert me.status_code == 200, me.text
    assert me.json() == {
        "username": "veteran", "name": "", "role": "supervisor", "scopes": ["*"], "responder_id": None, "grants": [],
    }  # fmt: skip
    refused(login(client, "veteran", "wrong-password"), 401, "login_failed")
    assert db_rows(path, "SELECT pw_hash FROM accounts WHERE username = 'veteran'")[0][0].startswith("scrypt$")
    assert login(client, "veteran", "old-password-1").status_code == 200
    rehashed = db_rows(path, "SELECT pw_hash FROM accounts WHERE username = 'veteran'")[0][0]
    assert rehashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert login(client, "veteran", "old-password-1").status_code == 200  # and it verifies as argon2
    assert db_rows(path, "SELECT pw_hash FROM accounts WHERE username = 'veteran'")[0][0] == rehashed


def test_passwords_are_argon2_and_tokens_are_kept_only_as_sha256(client: TestClient) -> None:
    admin = token(client)
    create(client, admin, "op", name="李娜")
    answer = login(client, "op")
    assert answer.status_code == 200
    body = answer.json()
    assert body["role"] == "operator" and body["name"] == "李娜" and body["scopes"] == ["*"]
    path = db_path(client)
    stored = db_rows(path, "SELECT pw_hash, last_login_at FROM accounts WHERE username = 'op'")[0]
    assert stored[0].startswith("$argon2id$") and PASSWORD not in stored[0]
    assert stored[1] == core_of(client).clock.now()
    hashes = {row[0] for row in db_rows(path, "SELECT token_hash FROM tokens")}
    assert hashlib.sha256(body["access_token"].encode()).hexdigest() in hashes
    assert body["access_token"] not in hashes


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every password check the server makes, as (password, stored hash): the real check, counted."""
    made: list[tuple[str, str]] = []
    real = console.auth.verify_password

    def counted(password: str, stored: str) -> bool:
        made.append((password, stored))
        return real(password, stored)

    monkeypatch.setattr(console.auth, "verify_password", counted)
    return made


def test_an_unknown_username_costs_the_same_verify_as_a_wrong_password(
    client: TestClient, checks: list[tuple[str, str]]
) -> None:
    admin = token(client)
    create(client, admin, "op")
    checks.clear()  # the admin's own login is not counted
    stored = db_rows(db_path(client), "SELECT pw_hash FROM accounts WHERE username = 'op'")[0][0]
    wrong = refused(login(client, "op", "not-the-password"), 401, "login_failed")
    verified = [stored for _, stored in checks]
    assert verified == [stored]
    unknown = refused(login(client, "nobody-here", "not-the-password"), 401, "login_failed")
    verified = [stored for _, stored in checks]
    assert len(verified) == 2 and verified[1].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verified[1] not in {row[0] for row in db_rows(db_path(client), "SELECT pw_hash FROM accounts")}
    assert wrong == unknown  # the same answer, word for word
    reasons = [(entry["username"], entry["reason"]) for entry in journal(client, "login.failed")]
    assert reasons == [("op", "wrong_password"), ("nobody-here", "unknown_account")]


# -- the throttle -------------------------------------------------------------------------------------


def test_twenty_wrong_passwords_lock_the_account_and_the_lock_is_journaled_once(client: TestClient) -> None:
    admin = token(client)
    create(client, admin, "op")
    create(client, admin, "op2")
    for _ in range(19):
        refused(login(client, "op", "guess-guess"), 401, "login_failed")
    locked = login(client, "op", "guess-guess")  # the twentieth sets the lock off
    body = refused(locked, 429, "login_locked")
    assert 890 <= body["params"]["retry_after"] <= 900 and body["params"]["minutes"] == 15
    assert locked.headers["Retry-After"] == str(body["params"]["retry_after"])
    assert "guess" not in locked.text
    again = refused(login(client, "op"), 429, "login_locked")  # the right password too, while locked
    assert int(again.get("params", {})["retry_after"]) <= 900
    for _ in range(5):
        refused(login(client, "op", "guess-guess"), 429, "login_locked")
    assert login(client, "op2").status_code == 200  # another account is not touched
    failed = [entry for entry in journal(client, "login.failed") if entry["username"] == "op"]
    assert [entry["reason"] for entry in failed] == ["wrong_password"] * 20 + ["locked"]
    assert {entry["address"] for entry in failed} == {"testclient"}
    listed = {a["username"]: a for a in client.get("/api/accounts", headers=auth(admin)).json()["accounts"]}
    assert listed["op"]["locked_until"] > core_of(client).clock.now() + 800
    assert listed["op2"]["locked_until"] is None


def test_a_lock_lifts_when_its_window_has_passed(make_client: ClientFactory, clock: ManualClock) -> None:
    client = make_client(login_fail_account=3, login_lock_s=60)
    admin = token(client)
    create(client, admin, "op")
    for _ in range(2):
        refused(login(client, "op", "guess-guess"), 401, "login_failed")
    refused(login(client, "op", "guess-guess"), 429, "login_locked")
    locked = refused(login(client, "op"), 429, "login_locked")
    assert 0 < locked["params"]["retry_after"] <= 60
    clock.advance(61)
    assert login(client, "op").status_code == 200
    # a successful login starts the count again: two more wrong passwords do not lock it
    for _ in range(2):
        refused(login(client, "op", "guess-guess"), 401, "login_failed")
    assert login(client, "op").status_code == 200


def test_an_address_with_too_many_failures_is_throttled_and_others_are_not(make_client: ClientFactory) -> None:
    client = make_client(login_fail_address=5)
    accounts = accounts_of(client)
    for n in range(4):
        refused(login(client, f"guess{n}", "guess-guess"), 401, "login_failed")
    throttled = refused(login(client, "guess4", "guess-guess"), 429, "login_throttled")
    assert throttled["params"]["retry_after"] > 0
    refused(login(client, "admin", "test-admin-pw"), 429, "login_throttled")  # nothing passes from here now
    for n in range(3):
        refused(login(client, f"more{n}", "guess-guess"), 429, "login_throttled")
    # another address logs in as usual, and its own failures count on their own
    portal = client.portal
    assert portal is not None
    issued, who = portal.call(accounts.login, "admin", "test-admin-pw", "10.0.0.7")
    assert who.role == "admin" and issued
    with pytest.raises(Throttled) as raised:
        portal.call(accounts.login, "admin", "test-admin-pw", "testclient")
    assert raised.value.code == "login_throttled"
    failed = journal(client, "login.failed")
    assert [entry["reason"] for entry in failed] == ["unknown_account"] * 5 + ["address_throttled"]
    assert failed[-1] == {"username": "guess4", "address": "testclient", "reason": "address_throttled"}


def test_logins_and_registry_writes_at_once_share_their_connection(client: TestClient) -> None:
    """The accounts and the registry write on one SQLite connection: a login's token insert awaiting its commit
    and an elder's save (BEGIN IMMEDIATE) at the same moment once failed with "cannot start a transaction within
    a transaction" (a 500 in a drill that logged its phones in while registering its devices)."""
    admin = token(client)
    create(client, admin, "op")
    core, accounts, portal = core_of(client), accounts_of(client), client.portal
    assert portal is not None

    async def together() -> None:
        logins = [accounts.login("op", PASSWORD, "testclient") for _ in range(8)]
        saves = [core.engine.put_elder(elder(f"busy{n}", name=f"忙{n}"), actor="admin:admin") for n in range(8)]
        await asyncio.gather(*logins, *saves)

    portal.call(together)
    listed = client.get("/api/elders", params={"q": "忙"}, headers=auth(admin)).json()["elders"]
    assert len(listed) == 8


# -- revocation ---------------------------------------------------------------------------------------


def test_a_disabled_account_is_refused_at_once_and_its_watchers_told(client: TestClient) -> None:
    admin = token(client)
    create(client, admin, "op")
    op = token(client, "op", PASSWORD)
    assert client.get("/api/incidents", headers=auth(op)).status_code == 200  # its principal is cached now
    accounts, portal = accounts_of(client), client.portal
    assert portal is not None
    watch = accounts.watch(op)
    revoked = portal.call(_enter, watch)
    assert not revoked.is_set()
    disabled = client.post("/api/accounts/op/disable", headers=auth(admin))
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert revoked.is_set()
    portal.call(_leave, watch)
    refused(client.get("/api/incidents", headers=auth(op)), 401, "account_disabled")
    body = refused(login(client, "op"), 401, "account_disabled")
    assert body["params"] == {"username": "op"}
    refused(login(client, "op", "wrong-password"), 401, "login_failed")  # a guesser learns nothing
    refused(client.post("/api/accounts/admin/disable", headers=auth(admin)), 409, "account_self")
    assert client.post("/api/accounts/op/enable", headers=auth(admin)).json()["disabled"] is False
    refused(client.get("/api/incidents", headers=auth(op)), 401, "token_revoked")  # its old tokens stay revoked
    assert login(client, "op").status_code == 200
    changes = [(e["username"], e["change"]) for e in journal(client, "account.changed")]
    assert changes == [("op", "disabled"), ("op", "enabled")]
    reasons = [e["reason"] for e in journal(client, "login.failed")]
    assert reasons == ["disabled", "wrong_password"]


async def _enter(watch: Any) -> Any:
    return watch.__enter__()


async def _leave(watch: Any) -> None:
    watch.__exit__(None, None, None)


def test_logout_revokes_only_that_token_and_everywhere_revokes_all(client: TestClient) -> None:
    admin = token(client)
    create(client, admin, "op")
    first, second = token(client, "op", PASSWORD), token(client, "op", PASSWORD)
    accounts, portal = accounts_of(client), client.portal
    assert portal is not None
    watches = [accounts.watch(first), accounts.watch(second)]
    events = [portal.call(_enter, watch) for watch in watches]
    assert client.post("/api/auth/logout", headers=auth(first)).status_code == 204
    assert [event.is_set() for event in events] == [True, False]
    refused(client.get("/api/me", headers=auth(first)), 401, "token_revoked")
    assert client.get("/api/me", headers=auth(second)).json()["username"] == "op"
    third = token(client, "op", PASSWORD)
    assert client.post("/api/auth/logout?everywhere=true", headers=auth(second)).status_code == 204
    assert events[1].is_set()
    for each in (second, third):
        refused(client.get("/api/me", headers=auth(each)), 401, "token_revoked")
    for watch in watches:
        portal.call(_leave, watch)
    assert client.get("/api/me", headers=auth(admin)).status_code == 200  # other accounts keep theirs
    logouts = [(e["username"], e["detail"]) for e in journal(client, "account.changed") if e["change"] == "logout"]
    assert logouts == [("op", ""), ("op", "everywhere")]


def test_a_person_changes_their_password(client: TestClient) -> None:
    admin = token(client)
    create(client, admin, "c1", "caregiver", responder_id="c1")
    phone, desk = token(client, "c1", PASSWORD), token(client, "c1", PASSWORD)
    wrong = {"old_password": "not-it-at-all", "new_password": "a-new-password"}
    body = refused(client.post("/api/me/password", json=wrong, headers=auth(phone)), 422, "password_wrong")
    assert body["field"] == "old_password" and "not-it" not in str(body)
    short = {"old_password": PASSWORD, "new_password": "short"}
    refused(client.post("/api/me/password", json=short, headers=auth(phone)), 422, "validation")
    right = {"old_password": PASSWORD, "new_password": "a-new-password"}
    assert client.post("/api/me/password", json=right, headers=auth(phone)).status_code == 204
    assert client.get("/api/me", headers=auth(phone)).json()["responder_id"] == "c1"  # the one that asked
    refused(client.get("/api/me", headers=auth(desk)), 401, "token_revoked")  # every other one
    refused(login(client, "c1"), 401, "login_failed")
    assert login(client, "c1", "a-new-password").status_code == 200
    changes = [(e["username"], e["change"]) for e in journal(client, "account.changed")]
    assert changes == [("c1", "password_changed")]
    assert [e["reason"] for e in journal(client, "login.failed")] == ["wrong_password", "wrong_password"]


def test_an_admin_resets_a_password_and_changes_a_role(client: TestClient) -> None:
    admin = token(client)
    create(client, admin, "op")
    op = token(client, "op", PASSWORD)
    reset = client.post("/api/accounts/op/password", json={"password": " given by admin "}, headers=auth(admin))
    assert reset.status_code == 200 and reset.json()["username"] == "op"
    refused(client.get("/api/me", headers=auth(op)), 401, "token_revoked")
    op = token(client, "op", " given by admin ")
    patched = client.patch("/api/accounts/op", json={"role": "supervisor", "name": "王芳"}, headers=auth(admin))
    assert patched.status_code == 200 and patched.json()["role"] == "supervisor"
    refused(client.get("/api/me", headers=auth(op)), 401, "token_revoked")
    answer = login(client, "op", " given by admin ").json()
    assert (answer["role"], answer["name"]) == ("supervisor", "王芳")
    renamed = client.patch("/api/accounts/op", json={"name": "王芳芳"}, headers=auth(admin))
    assert renamed.status_code == 200
    me = client.get("/api/me", headers=auth(answer["access_token"]))
    assert me.json()["name"] == "王芳芳"  # a new name does not log anyone out; it shows at once
    refused(client.patch("/api/accounts/ghost", json={"name": "x"}, headers=auth(admin)), 404, "account_not_found")
    refused(client.post("/api/accounts/ghost/disable", headers=auth(admin)), 404, "account_not_found")
    refused(client.patch("/api/accounts/admin", json={"role": "operator"}, headers=auth(admin)), 409, "account_self")
    no_responder = {"username": "c9", "password": PASSWORD, "role": "caregiver"}
    refused(client.post("/api/accounts", json=no_responder, headers=auth(admin)), 422, "responder_required")
    changes = [(e["username"], e["change"], e["detail"]) for e in journal(client, "account.changed")]
    assert changes == [("op", "password_reset", ""), ("op", "role", "operator -> supervisor")]
    assert " given by admin " not in str(journal(client, "account.changed"))


def test_a_scoped_admin_manages_only_accounts_within_their_scopes(client: TestClient) -> None:
    admin = token(client)
    create(client, admin, "west", "admin", scopes=[STREET])
    create(client, admin, "everywhere-op")
    west = token(client, "west", PASSWORD)
    inside = create(client, west, "local-op", scopes=[COMMUNITY])
    assert inside["scopes"] == [COMMUNITY]
    for scopes in (["*"], ["芗城区"], [COMMUNITY, "龙文区"]):
        body = {"username": "too-wide", "password": PASSWORD, "role": "operator", "scopes": scopes}
        refused(client.post("/api/accounts", json=body, headers=auth(west)), 403, "scope_exceeded")
    bad = {"username": "bad-scope", "password": PASSWORD, "role": "operator", "scopes": ["龙文区//x"]}
    refused(client.post("/api/accounts", json=bad, headers=auth(admin)), 422, "validation")
    listed = {a["username"] for a in client.get("/api/accounts", headers=auth(west)).json()["accounts"]}
    assert listed == {"west", "local-op"}
    refused(client.post("/api/accounts/everywhere-op/disable", headers=auth(west)), 403, "scope_exceeded")
    widen = client.patch("/api/accounts/local-op", json={"scopes": ["*"]}, headers=auth(west))
    refused(widen, 403, "scope_exceeded")
    refused(client.patch("/api/accounts/west", json={"scopes": ["*"]}, headers=auth(west)), 409, "account_self")
    narrow = client.patch("/api/accounts/local-op", json={"scopes": [COMMUNITY]}, headers=auth(west))
    assert narrow.status_code == 200
    assert client.post("/api/accounts/local-op/disable", headers=auth(west)).status_code == 200
    created = journal(client, "account.created")
    assert created[-1] == {"username": "local-op", "role": "operator", "scopes": [COMMUNITY], "service": False}


# -- service accounts and keys ------------------------------------------------------------------------


def test_a_service_key_feeds_the_hotline_and_nothing_else(client: TestClient, clock: ManualClock) -> None:
    admin = token(client)
    with_password = {"username": "pbx", "role": "service", "password": PASSWORD, "grants": ["hotline"]}
    refused(client.post("/api/accounts", json=with_password, headers=auth(admin)), 422, "service_no_password")
    granted = {"username": "op-with-grant", "password": PASSWORD, "role": "operator", "grants": ["hotline"]}
    refused(client.post("/api/accounts", json=granted, headers=auth(admin)), 422, "grants_service_only")
    service = create(client, admin, "pbx", "service", grants=["hotline"], name="呼叫中心交换机")
    assert service["service"] is True and service["grants"] == ["hotline"]
    create(client, admin, "op")
    refused(client.post("/api/accounts/op/keys", json={"label": "x"}, headers=auth(admin)), 409, "not_service")
    issued = client.post("/api/accounts/pbx/keys", json={"label": "Asterisk"}, headers=auth(admin))
    assert issued.status_code == 201
    key = issued.json()["key"]
    assert key.startswith("axk_") and issued.json()["label"] == "Asterisk"
    path = db_path(client)
    assert db_rows(path, "SELECT key_hash FROM keys") == [(hashlib.sha256(key.encode()).hexdigest(),)]

    ring = {"event": "ringing", "call_id": "call-1", "caller": "0596-7654321"}
    assert client.post("/api/hotline/events", json=ring, headers=auth(key)).status_code == 200
    refused(client.get("/api/incidents", headers=auth(key)), 403, "forbidden")
    me = client.get("/api/me", headers=auth(key)).json()
    assert (me["role"], me["grants"], me["name"]) == ("service", ["hotline"], "呼叫中心交换机")
    refused(client.post("/api/auth/logout", headers=auth(key)), 403, "forbidden")
    refused(login(client, "pbx", "anything-at-all"), 401, "login_failed")  # a service never logs in

    first_use = clock.now()
    keys = client.get("/api/accounts/pbx/keys", headers=auth(admin)).json()["keys"]
    assert keys[0]["last_used_at"] == first_use and keys[0]["revoked_at"] is None and "key" not in keys[0]
    clock.advance(30)
    client.get("/api/me", headers=auth(key))
    assert client.get("/api/accounts/pbx/keys", headers=auth(admin)).json()["keys"][0]["last_used_at"] == first_use
    clock.advance(31)
    client.get("/api/me", headers=auth(key))
    assert client.get("/api/accounts/pbx/keys", headers=auth(admin)).json()["keys"][0]["last_used_at"] == clock.now()

    clock.advance(30 * 24 * 3600)  # a key does not expire
    assert client.get("/api/me", headers=auth(key)).status_code == 200
    admin = token(client)  # the admin's own token did
    key_id = issued.json()["key_id"]
    assert client.delete(f"/api/accounts/pbx/keys/{key_id}", headers=auth(admin)).status_code == 204
    refused(client.post("/api/hotline/events", json=ring, headers=auth(key)), 401, "token_revoked")
    refused(client.delete("/api/accounts/pbx/keys/nope", headers=auth(admin)), 404, "key_not_found")
    changes = [(e["change"], e["detail"]) for e in journal(client, "account.changed")]
    assert changes == [("key_issued", f"{key_id} Asterisk"), ("key_revoked", key_id)]
    assert key not in str(journal(client, "account.changed"))


def test_a_disabled_service_s_key_is_refused_until_it_is_enabled(client: TestClient) -> None:
    admin = token(client)
    create(client, admin, "partner", "service", grants=["alarms"])
    key = client.post("/api/accounts/partner/keys", json={"label": "平台"}, headers=auth(admin)).json()["key"]
    alarm = {"elder_id": "e1", "alarm_type": "sos", "drill": True}
    assert client.post("/api/alarms", json=alarm, headers=auth(key)).status_code == 201
    client.post("/api/accounts/partner/disable", headers=auth(admin))
    refused(client.post("/api/alarms", json=alarm, headers=auth(key)), 401, "account_disabled")
    client.post("/api/accounts/partner/enable", headers=auth(admin))
    assert client.get("/api/me", headers=auth(key)).status_code == 200
    patched = client.patch("/api/accounts/partner", json={"grants": ["hotline"]}, headers=auth(admin))
    assert patched.json()["grants"] == ["hotline"]
    refused(client.post("/api/alarms", json=alarm, headers=auth(key)), 403, "forbidden")  # the new grants, at once


def test_an_expired_token_is_refused(client: TestClient, clock: ManualClock) -> None:
    admin = token(client)
    clock.advance(core_of(client).settings.token_ttl_s + 1)
    refused(client.get("/api/me", headers=auth(admin)), 401, "token_expired")


def test_a_role_across_the_service_line_drops_the_other_kind_of_credential(client: TestClient) -> None:
    admin = token(client)
    create(client, admin, "pbx", "service", grants=["hotline"])
    key = client.post("/api/accounts/pbx/keys", json={"label": "PBX"}, headers=auth(admin)).json()["key"]
    person = client.patch("/api/accounts/pbx", json={"role": "operator"}, headers=auth(admin))
    assert person.status_code == 200 and person.json()["grants"] == []
    refused(client.get("/api/me", headers=auth(key)), 401, "token_revoked")  # its keys went with the role
    assert client.get("/api/accounts/pbx/keys", headers=auth(admin)).json()["keys"][0]["revoked_at"] is not None
    refused(login(client, "pbx", "anything-at-all"), 401, "login_failed")  # no password until one is set
    create(client, admin, "op")
    client.patch("/api/accounts/op", json={"role": "service", "grants": ["alarms"]}, headers=auth(admin))
    refused(login(client, "op"), 401, "login_failed")  # a service never logs in with a password


def test_guesses_sent_in_parallel_count_before_they_are_hashed(
    client: TestClient, checks: list[tuple[str, str]]
) -> None:
    """200 logins at once, the right password among them (the 151st): no more than the lock allows are
    hashed, and the right one is refused like the rest once the account's tries are used up."""
    admin = token(client)
    create(client, admin, "victim")
    checks.clear()  # the admin's own login is not counted
    accounts = accounts_of(client)

    async def storm() -> list[str]:
        async def one(n: int) -> str:
            password = PASSWORD if n == 150 else f"guess-{n}"
            try:
                await accounts.login("victim", password, f"10.0.{n // 250}.{n % 250}")
            except AnxinError as refused:  # the outcome is what is counted
                return refused.code
            return "ok"

        return list(await asyncio.gather(*(one(n) for n in range(200))))

    outcomes = client.portal.call(storm)  # type: ignore[union-attr]
    assert len(checks) <= 20, f"{len(checks)} passwords checked in parallel"
    assert outcomes[150] != "ok"
    assert set(outcomes) <= {"login_failed", "login_locked", "login_busy"}
