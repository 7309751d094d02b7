"""Accounts, passwords and bearer tokens.

What it owns
    The ``accounts`` and ``tokens`` tables (in the data folder's SQLite file). Passwords are stored as
    scrypt hashes; tokens are random, handed out once, and stored only as their SHA-256, so a copy of the
    database does not hold usable tokens. Tokens survive a restart (a phone need not log in again).

Roles: ``admin`` (everything), ``supervisor`` (the queue, escalations, the journal), ``operator`` (the
queue), ``caregiver`` (their own offers and jobs, bound to one responder).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from typing import Literal

import aiosqlite

from console.errors import AuthError
from dispatch.clock import Clock
from dispatch.errors import Conflict
from dispatch.scopes import EVERYWHERE, Content, Reach

Role = Literal["admin", "supervisor", "operator", "caregiver", "service"]
ROLES: tuple[Role, ...] = ("admin", "supervisor", "operator", "caregiver", "service")
STAFF: tuple[Role, ...] = ("admin", "supervisor", "operator")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    username     TEXT PRIMARY KEY,
    role         TEXT NOT NULL,
    responder_id TEXT,
    pw_hash      TEXT NOT NULL,
    created_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    username   TEXT NOT NULL REFERENCES accounts(username),
    expires_at REAL NOT NULL
);
"""

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


#: what each role reads beyond its scope's dispatch work (see dispatch.scopes)
CONTENTS: dict[str, frozenset[Content]] = {
    "admin": frozenset({"work", "audit", "accounts"}),
    "supervisor": frozenset({"work", "health", "audit"}),
    "operator": frozenset({"work"}),
    "caregiver": frozenset(),  # their own offers and jobs, on the phone channel only
    "service": frozenset({"work"}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: Role
    responder_id: str | None
    expires_at: float = math.inf  # when the token it came from stops being valid
    scopes: tuple[str, ...] = (EVERYWHERE,)
    grants: frozenset[str] = frozenset()  # a service account's permissions ("hotline", "alarms", ...)
    name: str = ""  # the person's name as colleagues know it

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.username}"

    @property
    def reach(self) -> Reach:
        return Reach(self.scopes, CONTENTS.get(self.role, frozenset()))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, db: aiosqlite.Connection, clock: Clock, *, token_ttl_s: float) -> None:
        self._db = db
        self._clock = clock
        self._ttl = token_ttl_s
        self._cache: dict[str, tuple[Principal, float]] = {}

    async def create_schema(self) -> None:
        await self._db.executescript(_SCHEMA)
        await self._db.commit()

    async def exists(self, username: str) -> bool:
        rows = await self._db.execute_fetchall("SELECT 1 FROM accounts WHERE username = ?", (username,))
        return bool(list(rows))

    async def create(
        self, username: str, password: str, role: Role, responder_id: str | None = None, *, replace: bool = False
    ) -> Principal:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        pw_hash = await asyncio.to_thread(hash_password, password)
        try:
            await self._db.execute(
                f"{verb} INTO accounts (username, role, responder_id, pw_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                (username, role, responder_id, pw_hash, self._clock.now()),
            )
            await self._db.commit()
        except aiosqlite.IntegrityError:
            # end the failed statement's transaction at once: left open, it would hold the file's write lock
            # and starve the journal's writer on the same database
            await self._db.rollback()
            raise Conflict(
                f"account {username} exists", field="username", code="account_exists", params={"username": username}
            ) from None
        return Principal(username, role, responder_id)

    async def login(self, username: str, password: str) -> tuple[str, Principal]:
        # execute_fetchall reads and closes in one step: a read left open on this connection would make
        # the next write on it fail at once with "database is locked" (a stale WAL snapshot)
        rows = list(
            await self._db.execute_fetchall(
                "SELECT role, responder_id, pw_hash FROM accounts WHERE username = ?", (username,)
            )
        )
        row = rows[0] if rows else None
        # scrypt is slow on purpose (tens of ms): keep it off the event loop that acknowledges alarms
        if row is None or not await asyncio.to_thread(check_password, password, row[2]):
            raise AuthError("wrong username or password", code="login_failed")
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        expires = now + self._ttl
        principal = Principal(username, row[0], row[1], expires)
        await self._db.execute("DELETE FROM tokens WHERE expires_at <= ?", (now,))  # keep the table small
        await self._db.execute(
            "INSERT INTO tokens (token_hash, username, expires_at) VALUES (?, ?, ?)",
            (_token_hash(token), username, expires),
        )
        await self._db.commit()
        self._cache[_token_hash(token)] = (principal, expires)
        return token, principal

    async def principal(self, token: str | None) -> Principal:
        if not token:
            raise AuthError("a bearer token is required")
        key = _token_hash(token)
        cached = self._cache.get(key)
        if cached is None:
            rows = list(
                await self._db.execute_fetchall(
                    "SELECT a.username, a.role, a.responder_id, t.expires_at FROM tokens t "
                    "JOIN accounts a ON a.username = t.username WHERE t.token_hash = ?",
                    (key,),
                )
            )
            if not rows:
                raise AuthError("unknown token")
            row = rows[0]
            cached = (Principal(row[0], row[1], row[2], float(row[3])), float(row[3]))
            self._cache[key] = cached
        principal, expires = cached
        if expires <= self._clock.now():
            self._cache.pop(key, None)
            raise AuthError("token expired; log in again", code="token_expired")
        return principal

    @property
    def ttl(self) -> float:
        return self._ttl
