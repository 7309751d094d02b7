"""Accounts, passwords, bearer tokens, service keys, and the throttle on guessing.

What it owns
    The ``accounts``, ``tokens`` and ``keys`` tables (in the data folder's SQLite file, migrated in place
    from earlier releases), and an in-memory cache of the principals that live tokens and keys stand for.
    Tokens survive a restart (a phone need not log in again); so does their revocation.

Rules
    1. Secrets are stored only as their one-way image: passwords as argon2id hashes (an scrypt hash of an
       earlier release still verifies, and is replaced by argon2id at that login), tokens and keys as
       SHA-256. A copy of the database holds nothing that logs in.
    2. Hashing runs in a thread, never on the event loop that acknowledges alarms. An unknown username costs
       the same hash work as a wrong password (a dummy hash is verified), so timing does not tell which.
    3. Guessing is throttled (:class:`LoginThrottle`): too many failures for one username lock it, even
       against the right password; too many from one address throttle that address. While locked or
       throttled nothing is hashed and nothing more is journaled: each refused attempt is journaled until
       the lock, then the lock once.
    4. Revocation is immediate: whatever revokes (a logout, disabling, a password reset or change, a new
       role, scopes or responder, a key revoked) drops the cached principals and sets the events handed out
       by :meth:`Accounts.watch` before the answer goes out. A revoked token stays in the table, marked,
       until it expires, so its use is answered with why (``token_revoked``, ``account_disabled``).
    5. Every write takes one lock, and so does loading a principal the cache misses: a login issuing a
       token cannot interleave with the disabling of its account.
    6. It journals only failed logins itself (the ``journal`` callback it is given); the routes journal
       the rest, with the actor.

Roles: ``admin`` (everything, within their scopes), ``supervisor`` (the queue, escalations, the journal),
``operator`` (the queue), ``caregiver`` (their own offers and jobs, bound to one responder), ``family`` (an
elder's family member who opted in: the alarms of that one elder offered to them on the phone page, bound to
their kin id, dispatch.family), ``clinic`` (the desk of a clinic's green channel: the referrals to that clinic,
bound to the clinic's responder id), ``service`` (an integration, authenticating with an API key; what it may
do is its grants).

Errors: :class:`~console.errors.AuthError` (401: ``login_failed``, ``unauthorized``, ``token_expired``,
``token_revoked``, ``account_disabled``), :class:`~console.errors.Throttled` (429: ``login_locked``,
``login_throttled``), and the core's NotFound / Conflict / InvalidInput for what an admin asks wrongly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import aiosqlite
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from console.errors import AuthError, Throttled
from dispatch.clock import Clock
from dispatch.entries import AccountChanged, LoginRefusal
from dispatch.errors import Conflict, InvalidInput, NotFound
from dispatch.journal import Entry, connection_lock
from dispatch.scopes import EVERYWHERE, Content, Reach, check_scope

Role = Literal["admin", "supervisor", "operator", "caregiver", "service", "family", "clinic", "assessor"]
ROLES: tuple[Role, ...] = ("admin", "supervisor", "operator", "caregiver", "service", "family", "clinic", "assessor")
STAFF: tuple[Role, ...] = ("admin", "supervisor", "operator")
#: the roles people hold (they log in with a password); ``service`` is an integration's key
PEOPLE: tuple[Role, ...] = ("admin", "supervisor", "operator", "caregiver", "family", "clinic", "assessor")
#: who answers offers on the phone page (/ws/caregiver), each bound to one responder id
PHONES: tuple[Role, ...] = ("caregiver", "family")
#: what a service account may be granted (see console.deps: HotlineFeed, AlarmFeed)
GRANTS = frozenset({"hotline", "alarms", "import", "export"})
#: how a service key begins, so that it is recognised in a log or a leaked file (tokens have no prefix)
KEY_PREFIX = "axk_"
#: a service key's last use is written at most this often (seconds)
KEY_USE_WRITE_S = 60.0

#: what each role reads beyond its scope's dispatch work (see dispatch.scopes)
CONTENTS: dict[str, frozenset[Content]] = {
    "admin": frozenset({"work", "audit"}),
    "supervisor": frozenset({"work", "health", "audit"}),
    "operator": frozenset({"work"}),
    "caregiver": frozenset(),  # their own offers and jobs, on the phone channel only
    "family": frozenset(),  # their own elder's alarms offered to them, on the phone channel only
    "clinic": frozenset(),  # the referrals to their own clinic, on the clinic page only (dispatch.referrals)
    #: the needs assessments of the elders in their scope, on the assessment page only (dispatch.assessment)
    "assessor": frozenset({"health"}),
    "service": frozenset({"work"}),
}

#: records a refused login (the engine's ``login_failed``): username as typed, client address, reason
LoginJournal = Callable[[str, str, LoginRefusal], Awaitable[None]]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    username      TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    responder_id  TEXT,
    pw_hash       TEXT NOT NULL,
    created_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    username   TEXT NOT NULL REFERENCES accounts(username),
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
    key_id       TEXT PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES accounts(username),
    label        TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   REAL NOT NULL,
    last_used_at REAL,
    revoked_at   REAL
);
"""
#: columns added since the first release, added in place to an existing data folder (table, column, DDL)
_ADDED = (
    ("accounts", "name", "TEXT NOT NULL DEFAULT ''"),
    ("accounts", "scopes", """TEXT NOT NULL DEFAULT '["*"]'"""),
    ("accounts", "grants", "TEXT NOT NULL DEFAULT '[]'"),
    ("accounts", "disabled", "INTEGER NOT NULL DEFAULT 0"),
    ("accounts", "last_login_at", "REAL"),
    ("tokens", "revoked_at", "REAL"),
)
_INDEXES = """
CREATE INDEX IF NOT EXISTS tokens_by_username ON tokens(username);
CREATE INDEX IF NOT EXISTS keys_by_username ON keys(username);
"""
_COLUMNS = "a.username, a.role, a.responder_id, a.name, a.scopes, a.grants, a.disabled, a.created_at, a.last_login_at"

# -- passwords ------------------------------------------------------------------------------------

#: argon2id at OWASP's floor (19 MiB, 2 passes): ~30 ms a hash here, in a thread
_ARGON2 = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
#: passwords are hashed on this one thread (about 35 ms each), with at most HASH_QUEUE logins waiting for it
_HASH_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anxin-password")
HASH_QUEUE = 64
_T = TypeVar("_T")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # the first release's parameters, for verifying its hashes


def hash_password(password: str) -> str:
    """An argon2id hash. Slow on purpose: call it in a thread."""
    return _ARGON2.hash(password)


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (argon2id, or an earlier release's scrypt). Slow: in a thread."""
    if stored.startswith("scrypt$"):
        return _verify_scrypt(password, stored)
    try:
        return _ARGON2.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a hash that just verified should be replaced (scrypt, or argon2 with other parameters)."""
    return not stored.startswith("$argon2") or _ARGON2.check_needs_rehash(stored)


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        _, salt_hex, digest_hex = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# -- what an account is ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: Role
    responder_id: str | None
    expires_at: float = math.inf  # when the token it came from stops being valid (a key: never)
    scopes: tuple[str, ...] = (EVERYWHERE,)
    grants: frozenset[str] = frozenset()  # a service account's permissions ("hotline", "alarms", ...)
    name: str = ""  # the person's name as colleagues know it

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.username}"

    @property
    def reach(self) -> Reach:
        return Reach(self.scopes, CONTENTS.get(self.role, frozenset()), self.actor)


@dataclass(frozen=True, slots=True)
class Account:
    """An account as stored (never its password hash)."""

    username: str
    role: Role
    responder_id: str | None
    name: str
    scopes: tuple[str, ...]
    grants: frozenset[str]
    disabled: bool
    created_at: float
    last_login_at: float | None

    @property
    def service(self) -> bool:
        return self.role == "service"

    def principal(self, expires_at: float = math.inf) -> Principal:
        return Principal(self.username, self.role, self.responder_id, expires_at, self.scopes, self.grants, self.name)


@dataclass(frozen=True, slots=True)
class Key:
    """A service account's API key as listed (the key itself is shown once, when issued)."""

    key_id: str
    username: str
    label: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


def _account(row: Sequence[Any]) -> Account:
    return Account(
        username=row[0],
        role=row[1],
        responder_id=row[2],
        name=row[3] or "",
        scopes=tuple(json.loads(row[4] or '["*"]')),
        grants=frozenset(json.loads(row[5] or "[]")),
        disabled=bool(row[6]),
        created_at=float(row[7]),
        last_login_at=None if row[8] is None else float(row[8]),
    )


# -- the throttle ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Strike:
    """What one counted failure did: whether it filled the account's window (locked it) or the address's."""

    locked: bool = False
    throttled: bool = False


class LoginThrottle:
    """Failed logins counted in moving windows, per username and per client address, in memory.

    ``per_account`` failures for one username within ``window_s`` lock it: every login to it is refused,
    the right password too, until the oldest of those failures is ``window_s`` old. ``per_address``
    failures from one address within the window throttle that address in the same way. A window never
    holds more than its limit, so a lock lifts for one attempt at a time: at most ``per_account`` guesses
    per window, whatever the pace. A successful login clears its username's window, not its address's.
    Counts live in this process only: a restart forgets them.

    The windows are our own (:class:`Windows`), on the app's clock: the ``limits`` package's in-memory store
    starts a timer thread from the event loop at nearly every hit (the loop was caught waiting in it during a
    login flood) and sweeps every key on that thread (docs/security.md).
    """

    def __init__(
        self, *, per_account: int = 20, per_address: int = 100, window_s: float = 900.0, clock: Clock | None = None
    ) -> None:
        now = clock.now if clock is not None else time.time
        self._account = Windows(per_account, window_s, now)
        self._address = Windows(per_address, window_s, now)
        self._in_flight: dict[str, int] = {}  # username or address -> passwords being checked now

    def locked(self, username: str) -> int | None:
        """Seconds until ``username`` may try again, or None when it is not locked."""
        return self._account.left_s(username[:64])  # no account has a longer name

    def throttled(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or None when it is not throttled."""
        return self._address.left_s(address)

    def fail(self, username: str | None, address: str) -> Strike:
        """Count one failure against the username (None: the address only) and the address."""
        locked = username is not None and self._account.hit(username[:64])
        return Strike(locked=locked, throttled=self._address.hit(address))

    def succeeded(self, username: str) -> None:
        self._account.clear(username[:64])

    @contextlib.contextmanager
    def attempt(self, username: str, address: str) -> Iterator[None]:
        """Hold one of the window's remaining tries for the username and the address while a password is
        checked, so guesses sent in parallel count before they are hashed: however many arrive at once, no more
        are checked than the window has left (Throttled when none is left)."""
        user = username[:64]
        keys = (f"address:{address}", f"account:{user}")  # a username may look like an address
        if self._in_flight.get(keys[0], 0) >= self._address.remaining(address):
            left = self.throttled(address) or 1
            raise Throttled("too many failed logins from this address", code="login_throttled", retry_after=left)
        if self._in_flight.get(keys[1], 0) >= self._account.remaining(user):
            left = self.locked(user) or 1
            raise Throttled(f"account {user} is locked after failed logins", code="login_locked", retry_after=left)
        for key in keys:
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            yield
        finally:
            for key in keys:
                left = self._in_flight[key] - 1
                if left:
                    self._in_flight[key] = left
                else:
                    del self._in_flight[key]


class Windows:
    """Moving windows of hits by key (failed logins; dials, console.telephony): the times of the last ``limit``
    hits within ``seconds``.

    A key's window drops what has aged out whenever it is read; keys whose window emptied are forgotten then,
    and all of them once the map holds ``SWEEP_AT`` keys (so many guessed names or addresses cannot grow it
    without bound)."""

    SWEEP_AT = 10_000

    def __init__(self, limit: int, seconds: float, now: Callable[[], float]) -> None:
        self.limit, self.seconds, self._now = limit, seconds, now
        self._hits: dict[str, deque[float]] = {}

    def remaining(self, key: str) -> int:
        return self.limit - len(self._live(key))

    def hit(self, key: str) -> bool:
        """Count one failure (not when the window is full already); whether it was the one that filled it."""
        hits = self._live(key)
        if len(hits) >= self.limit:
            return False
        if not hits:
            if len(self._hits) >= self.SWEEP_AT:
                for other in list(self._hits):
                    self._live(other)
            self._hits[key] = hits
        hits.append(self._now())
        return len(hits) == self.limit

    def left_s(self, key: str) -> int | None:
        """Seconds until the full window of ``key`` lets one more try through, or None when it is not full."""
        hits = self._live(key)
        if len(hits) < self.limit:
            return None
        return max(1, math.ceil(hits[0] + self.seconds - self._now()))

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)

    def _live(self, key: str) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        cutoff = self._now() - self.seconds
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if not hits:
            del self._hits[key]
        return hits


# -- the accounts ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Cached:
    principal: Principal
    key_id: str | None = None  # a service key's id (None: a login token)
    use_written: float = -math.inf  # when this key's last use was last written


@dataclass(slots=True)
class _Watch:
    username: str
    events: set[asyncio.Event] = field(default_factory=set)
    key: bool = False  # a service key's watch (else a login token's)


class Accounts:
    def __init__(
        self,
        db: aiosqlite.Connection,
        clock: Clock,
        *,
        token_ttl_s: float,
        throttle: LoginThrottle | None = None,
        journal: LoginJournal | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._ttl = token_ttl_s
        self._throttle = throttle or LoginThrottle()
        self._journal = journal
        self._lock = connection_lock(db)  # the registry writes on the same connection: one transaction at a time
        self._cache: dict[str, _Cached] = {}  # token or key hash -> principal
        self._held: dict[str, set[str]] = {}  # username -> the hashes cached for it
        self._watches: dict[str, _Watch] = {}  # token or key hash -> who watches it
        self._dummy: str | None = None
        self._hash_waiting = 0
        self._rechecks: set[asyncio.Task[None]] = set()

    @property
    def ttl(self) -> float:
        return self._ttl

    async def create_schema(self) -> None:
        """Create the tables, or bring an earlier release's up to date in place."""
        await self._db.executescript(_SCHEMA)
        for table, column, ddl in _ADDED:
            present = {row[1] for row in await self._db.execute_fetchall(f"PRAGMA table_info({table})")}
            if column not in present:
                await self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")
        await self._db.executescript(_INDEXES)
        await self._db.commit()
        await self._dummy_hash()

    # -- reading ----------------------------------------------------------------------------------

    async def exists(self, username: str) -> bool:
        rows = await self._db.execute_fetchall("SELECT 1 FROM accounts WHERE username = ?", (username,))
        return bool(list(rows))

    async def get(self, username: str) -> Account:
        # execute_fetchall reads and closes in one step: a read left open on this connection would make
        # the next write on it fail at once with "database is locked" (a stale WAL snapshot)
        rows = list(
            await self._db.execute_fetchall(f"SELECT {_COLUMNS} FROM accounts a WHERE username = ?", (username,))
        )
        if not rows:
            raise NotFound(f"no account {username}", field="username", code="account_not_found",
                           params={"username": username})  # fmt: skip
        return _account(rows[0])

    async def all(self) -> list[Account]:
        rows = await self._db.execute_fetchall(f"SELECT {_COLUMNS} FROM accounts a ORDER BY a.username")
        return [_account(row) for row in rows]

    def locked_until(self, username: str) -> float | None:
        """When ``username`` may log in again (on the app's clock), or None when it is not locked."""
        left = self._throttle.locked(username)
        return None if left is None else self._clock.now() + left

    # -- creating and changing --------------------------------------------------------------------

    async def create(
        self,
        username: str,
        password: str | None,
        role: Role,
        responder_id: str | None = None,
        *,
        name: str = "",
        scopes: Iterable[str] = (EVERYWHERE,),
        grants: Iterable[str] = (),
        replace: bool = False,
    ) -> Principal:
        """A new account. People need a password; a service account has none (it gets keys)."""
        scopes, grants = _checked_scopes(scopes), frozenset(grants)
        if role == "service" and password is not None:
            raise InvalidInput("a service account has no password; issue it a key", field="password",
                               code="service_no_password")  # fmt: skip
        if role != "service" and not password:
            raise InvalidInput("a password is required", field="password", code="password_required")
        if grants and role != "service":
            raise InvalidInput("only a service account holds grants", field="grants", code="grants_service_only")
        pw_hash = "" if password is None else await self._hashing(hash_password, password)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        async with self._lock:
            try:
                await self._db.execute(
                    f"{verb} INTO accounts (username, role, responder_id, pw_hash, created_at, name, scopes, grants)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (username, role, responder_id, pw_hash, self._clock.now(), name, json.dumps(scopes),
                     json.dumps(sorted(grants))),
                )  # fmt: skip
                await self._db.commit()
            except aiosqlite.IntegrityError:
                # end the failed statement's transaction at once: left open, it would hold the file's write lock
                # and starve the journal's writer on the same database
                await self._db.rollback()
                raise Conflict(
                    f"account {username} exists", field="username", code="account_exists",
                    params={"username": username},
                ) from None  # fmt: skip
            if replace:
                await self._revoke_tokens(username)
        return Principal(username, role, responder_id, scopes=scopes, grants=grants, name=name)

    async def update(self, username: str, changes: Mapping[str, Any]) -> tuple[Account, tuple[str, ...]]:
        """Change ``name``, ``role``, ``scopes``, ``grants`` or ``responder_id``; the account and what changed.

        A new role, scopes or responder revokes the account's tokens (their principal no longer holds). A
        service account that stops being one loses its keys and grants (and has no password until an admin
        sets one); an account that becomes one loses its password. Any change drops the cached principals."""
        allowed = {"name", "role", "scopes", "grants", "responder_id"}
        if unknown := set(changes) - allowed:
            raise InvalidInput(f"cannot change {sorted(unknown)}", field=sorted(unknown)[0])
        async with self._lock:
            before = await self.get(username)
            values: dict[str, Any] = {
                "name": before.name, "role": before.role, "scopes": before.scopes,
                "grants": before.grants, "responder_id": before.responder_id,
            }  # fmt: skip
            values.update(changes)
            if values["role"] != "service" and "grants" not in changes:
                values["grants"] = ()
            values["scopes"], values["grants"] = _checked_scopes(values["scopes"]), frozenset(values["grants"])
            if values["grants"] and values["role"] != "service":
                raise InvalidInput("only a service account holds grants", field="grants", code="grants_service_only")
            changed = tuple(name for name in sorted(allowed) if values[name] != getattr(before, name))
            if not changed:
                return before, ()
            await self._db.execute(
                "UPDATE accounts SET name = ?, role = ?, scopes = ?, grants = ?, responder_id = ? WHERE username = ?",
                (values["name"], values["role"], json.dumps(values["scopes"]), json.dumps(sorted(values["grants"])),
                 values["responder_id"], username),
            )  # fmt: skip
            if values["role"] == "service" and not before.service:
                await self._db.execute("UPDATE accounts SET pw_hash = '' WHERE username = ?", (username,))
            if before.service and values["role"] != "service":
                await self._db.execute(
                    "UPDATE keys SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL",
                    (self._clock.now(), username),
                )
            await self._db.commit()
            if {"role", "scopes", "responder_id"} & set(changed):
                await self._revoke_tokens(username)
            else:
                self._forget(username, notify=changed != ("name",))
            return await self.get(username), changed

    async def set_disabled(self, username: str, disabled: bool) -> Account:
        """Disable (every token revoked at once, keys refused while disabled) or enable an account."""
        async with self._lock:
            await self.get(username)
            await self._db.execute("UPDATE accounts SET disabled = ? WHERE username = ?", (int(disabled), username))
            await self._db.commit()
            if disabled:
                await self._revoke_tokens(username)
            return await self.get(username)

    async def set_password(self, username: str, password: str, *, keep: str | None = None) -> None:
        """A new password; every token of the account is revoked but ``keep`` (the one that asked)."""
        pw_hash = await self._hashing(hash_password, password)
        async with self._lock:
            await self.get(username)
            await self._db.execute("UPDATE accounts SET pw_hash = ? WHERE username = ?", (pw_hash, username))
            await self._db.commit()
            await self._revoke_tokens(username, keep=None if keep is None else _sha256(keep))

    async def change_password(self, who: Principal, old: str, new: str, *, token: str, address: str) -> None:
        """A person changes their own password, proving the old one (throttled and journaled like a login)."""
        await self._verify(who.username, old, address, wrong=InvalidInput(
            "the current password is wrong", field="old_password", code="password_wrong"
        ))  # fmt: skip
        await self.set_password(who.username, new, keep=token)

    # -- logging in -------------------------------------------------------------------------------

    async def login(self, username: str, password: str, address: str = "") -> tuple[str, Principal]:
        """A new bearer token for the right password, or AuthError / Throttled (and the refusal journaled)."""
        pw_hash = await self._verify(username, password, address,
                                     wrong=AuthError("wrong username or password", code="login_failed"))  # fmt: skip
        fresh = await self._hashing(hash_password, password) if needs_rehash(pw_hash) else None
        token = _new_token()
        now = self._clock.now()
        async with self._lock:
            rows = list(await self._db.execute_fetchall(
                f"SELECT {_COLUMNS}, a.pw_hash FROM accounts a WHERE username = ?", (username,)
            ))  # fmt: skip
            if not rows or rows[0][-1] != pw_hash:  # its password was changed while this one was checked
                raise AuthError("wrong username or password", code="login_failed")
            account = _account(rows[0])
            principal = account.principal(now + self._ttl)
            if not account.disabled:
                await self._issue(token, principal, now, fresh, pw_hash)
        if account.disabled:
            await self._refuse(username, address, "disabled", count_account=False)
            raise AuthError(f"account {username} is disabled", code="account_disabled", params={"username": username})
        self._throttle.succeeded(username)
        return token, principal

    async def _issue(self, token: str, principal: Principal, now: float, fresh: str | None, old: str) -> None:
        self._sweep(now)
        await self._db.execute("DELETE FROM tokens WHERE expires_at <= ?", (now,))  # keep the table small
        await self._db.execute(
            "INSERT INTO tokens (token_hash, username, expires_at) VALUES (?, ?, ?)",
            (_sha256(token), principal.username, principal.expires_at),
        )
        await self._db.execute("UPDATE accounts SET last_login_at = ? WHERE username = ?", (now, principal.username))
        if fresh is not None:  # an scrypt hash (or weaker argon2) replaced now that the password is known
            await self._db.execute(
                "UPDATE accounts SET pw_hash = ? WHERE username = ? AND pw_hash = ?", (fresh, principal.username, old)
            )
        await self._db.commit()
        self._remember(_sha256(token), _Cached(principal))

    async def _verify(self, username: str, password: str, address: str, *, wrong: Exception) -> str:
        """Check a password under the throttle; the stored hash it matched, or ``wrong`` raised (journaled).

        Nothing is hashed while the address is throttled or the username locked. An unknown username and an
        account without a password (a service) verify against the dummy hash: the same work as a wrong one."""
        if (left := self._throttle.throttled(address)) is not None:
            raise Throttled("too many failed logins from this address", code="login_throttled", retry_after=left)
        if (left := self._throttle.locked(username)) is not None:
            await self._refuse(username, address, None, count_account=False)
            raise Throttled(f"account {username} is locked after failed logins", code="login_locked",
                            retry_after=left)  # fmt: skip
        rows = list(await self._db.execute_fetchall("SELECT pw_hash FROM accounts WHERE username = ?", (username,)))
        stored = str(rows[0][0]) if rows else ""
        with self._throttle.attempt(username, address):
            matched = await self._hashing(verify_password, password, stored or await self._dummy_hash())
            if matched and stored:
                return stored
            await self._refuse(username, address, "wrong_password" if rows else "unknown_account", count_account=True)
        raise wrong

    async def _hashing(self, work: Callable[..., _T], *args: str) -> _T:
        """Password hashing on its own thread, one at a time, with at most ``HASH_QUEUE`` waiting: a flood of
        logins is answered 429 at once instead of queueing for minutes, and never takes the threads the
        journal and the anchor use, nor the second core the alarms need."""
        if self._hash_waiting >= HASH_QUEUE:
            raise Throttled("too many logins at once; try again in a moment", code="login_busy", retry_after=1)
        self._hash_waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(_HASH_POOL, work, *args)
        finally:
            self._hash_waiting -= 1

    async def _refuse(self, username: str, address: str, reason: LoginRefusal | None, *, count_account: bool) -> None:
        """Count a refused attempt; journal it (when it has a reason) and any lock it set off, once each; raise
        Throttled if it locked the username or throttled the address."""
        strike = self._throttle.fail(username if count_account else None, address)
        reasons: list[LoginRefusal] = [reason] if reason is not None else []
        if strike.locked:
            reasons.append("locked")
        if strike.throttled:
            reasons.append("address_throttled")
        if self._journal is not None:
            for each in reasons:
                await self._journal(username, address, each)
        if strike.locked:
            left = self._throttle.locked(username) or 1
            raise Throttled(f"account {username} is locked after failed logins", code="login_locked",
                            retry_after=left)  # fmt: skip
        if strike.throttled:
            left = self._throttle.throttled(address) or 1
            raise Throttled("too many failed logins from this address", code="login_throttled", retry_after=left)

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = await self._hashing(hash_password, secrets.token_urlsafe(16))
        return self._dummy

    # -- tokens and keys --------------------------------------------------------------------------

    async def principal(self, token: str | None) -> Principal:
        """Who a bearer token or service key stands for; AuthError when it is unknown, expired or revoked."""
        if not token:
            raise AuthError("a bearer token is required")
        digest = _sha256(token)
        cached = self._cache.get(digest) or await self._load(digest, key=token.startswith(KEY_PREFIX))
        now = self._clock.now()
        if cached.principal.expires_at <= now:
            self._drop(digest)
            raise AuthError("token expired; log in again", code="token_expired")
        if cached.key_id is not None and now - cached.use_written >= KEY_USE_WRITE_S:
            cached.use_written = now
            async with self._lock:
                await self._db.execute("UPDATE keys SET last_used_at = ? WHERE key_id = ?", (now, cached.key_id))
                await self._db.commit()
        return cached.principal

    async def _load(self, digest: str, *, key: bool) -> _Cached:
        async with self._lock:
            if (cached := self._cache.get(digest)) is not None:
                return cached  # loaded while this one waited
            if key:
                sql = (f"SELECT {_COLUMNS}, k.revoked_at, k.key_id FROM keys k "
                       "JOIN accounts a ON a.username = k.username WHERE k.key_hash = ?")  # fmt: skip
            else:
                sql = (f"SELECT {_COLUMNS}, t.revoked_at, t.expires_at FROM tokens t "
                       "JOIN accounts a ON a.username = t.username WHERE t.token_hash = ?")  # fmt: skip
            rows = list(await self._db.execute_fetchall(sql, (digest,)))
            if not rows:
                raise AuthError("unknown key" if key else "unknown token")
            account, revoked_at, last = _account(rows[0]), rows[0][-2], rows[0][-1]
            if account.disabled:
                raise AuthError(f"account {account.username} is disabled", code="account_disabled",
                                params={"username": account.username})  # fmt: skip
            if revoked_at is not None or (key and not account.service):
                what = "key" if key else "token"
                raise AuthError(f"this {what} was revoked; log in again", code="token_revoked")
            cached = _Cached(account.principal(), key_id=last) if key else _Cached(account.principal(float(last)))
            self._remember(digest, cached)
            return cached

    async def logout(self, token: str, *, everywhere: bool = False) -> None:
        """Revoke the token used (or, ``everywhere``, every token of its account)."""
        who = await self.principal(token)
        async with self._lock:
            if everywhere:
                await self._revoke_tokens(who.username)
                return
            digest = _sha256(token)
            await self._db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
                (self._clock.now(), digest),
            )
            await self._db.commit()
            self._drop(digest, notify=True)

    async def issue_key(self, username: str, label: str) -> tuple[Key, str]:
        """A new API key for a service account: its listing and the key itself (shown this once)."""
        async with self._lock:
            account = await self.get(username)
            if not account.service:
                raise Conflict(f"account {username} is not a service account", code="not_service",
                               params={"username": username})  # fmt: skip
            key, key_id, now = KEY_PREFIX + secrets.token_urlsafe(32), secrets.token_hex(6), self._clock.now()
            await self._db.execute(
                "INSERT INTO keys (key_id, username, label, key_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                (key_id, username, label, _sha256(key), now),
            )
            await self._db.commit()
        return Key(key_id, username, label, now, None, None), key

    async def keys(self, username: str) -> list[Key]:
        await self.get(username)
        rows = await self._db.execute_fetchall(
            "SELECT key_id, username, label, created_at, last_used_at, revoked_at FROM keys WHERE username = ? "
            "ORDER BY created_at, key_id",
            (username,),
        )
        return [Key(*row) for row in rows]

    async def revoke_key(self, username: str, key_id: str) -> bool:
        """Revoke one key at once (its next use is refused, its watchers told); whether it was live."""
        async with self._lock:
            rows = list(await self._db.execute_fetchall(
                "SELECT key_hash, revoked_at FROM keys WHERE key_id = ? AND username = ?", (key_id, username)
            ))  # fmt: skip
            if not rows:
                await self.get(username)
                raise NotFound(f"no key {key_id} for {username}", field="key_id", code="key_not_found",
                               params={"key_id": key_id, "username": username})  # fmt: skip
            live = rows[0][1] is None
            if live:
                await self._db.execute("UPDATE keys SET revoked_at = ? WHERE key_id = ?", (self._clock.now(), key_id))
                await self._db.commit()
            self._drop(rows[0][0], notify=True)
        return live

    # -- revocation and its watchers --------------------------------------------------------------

    @contextlib.contextmanager
    def watch(self, token: str) -> Iterator[asyncio.Event]:
        """An event set the moment ``token`` (a bearer token or a service key) stops standing for the principal
        it authenticated: revoked by a logout (this token, or everywhere), its account disabled, its password
        reset or changed (but for the token that changed it), its role, scopes, responder or grants changed,
        or the key revoked. Not set when the token merely expires (``Principal.expires_at`` says when).

        Use it around a websocket's life, after ``principal(token)`` admitted it; when the event is set,
        close with 4401 (the client logs in again, or reconnects with its key)::

            who = await accounts.principal(token)
            with accounts.watch(token) as revoked:
                ...  # run until revoked.wait() returns, among the connection's other tasks

        A token that is not valid any more when the watch begins gets an event already set. The watch is
        dropped on leaving the block."""
        digest = _sha256(token)
        event = asyncio.Event()
        cached = self._cache.get(digest)
        if cached is None:
            event.set()
        username = cached.principal.username if cached else ""
        watch = self._watches.setdefault(digest, _Watch(username, key=token.startswith(KEY_PREFIX)))
        watch.events.add(event)
        try:
            yield event
        finally:
            watch.events.discard(event)
            if not watch.events and self._watches.get(digest) is watch:
                del self._watches[digest]

    def heard(self, entry: Entry) -> None:
        """A change to an account on record (the journal's listener): in a cluster it may have been made through
        another node, which revoked tokens there. Forget what is cached for the account here and check again each
        token watched here (:meth:`recheck`)."""
        if isinstance(entry.fact, AccountChanged):
            task = asyncio.create_task(self.recheck(entry.fact.username))
            self._rechecks.add(task)
            task.add_done_callback(self._rechecks.discard)

    async def recheck(self, username: str) -> None:
        """Drop the cached principals of ``username`` (their next use reads the store again) and set the watch of
        every token of theirs that the store no longer admits."""
        self._forget(username, notify=False)
        for digest, watch in list(self._watches.items()):
            if watch.username != username:
                continue
            try:
                await self._load(digest, key=watch.key)
            except AuthError:
                for event in watch.events:
                    event.set()

    async def _revoke_tokens(self, username: str, *, keep: str | None = None) -> None:
        """Mark every live token of ``username`` revoked (but the hash ``keep``) and forget its principals.
        The caller holds the lock."""
        await self._db.execute(
            "UPDATE tokens SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL AND token_hash != ?",
            (self._clock.now(), username, keep or ""),
        )
        await self._db.commit()
        self._forget(username, notify=True, keep=keep)

    def _forget(self, username: str, *, notify: bool, keep: str | None = None) -> None:
        """Drop the cached principals of ``username`` (they reload, or are refused, on their next use) and,
        ``notify``, set their watchers' events."""
        for digest in list(self._held.get(username, ())):
            if digest != keep:
                self._drop(digest)
        if notify:
            for digest, watch in self._watches.items():
                if watch.username == username and digest != keep:
                    for event in watch.events:
                        event.set()

    def _remember(self, digest: str, cached: _Cached) -> None:
        self._cache[digest] = cached
        self._held.setdefault(cached.principal.username, set()).add(digest)
        if (watch := self._watches.get(digest)) is not None:
            watch.username = cached.principal.username

    def _drop(self, digest: str, *, notify: bool = False) -> None:
        cached = self._cache.pop(digest, None)
        if cached is not None:
            held = self._held.get(cached.principal.username, set())
            held.discard(digest)
            if not held:
                self._held.pop(cached.principal.username, None)
        if notify and (watch := self._watches.get(digest)) is not None:
            for event in watch.events:
                event.set()

    def _sweep(self, now: float) -> None:
        """Forget expired tokens' principals (the cache holds only live ones)."""
        for digest in [d for d, cached in self._cache.items() if cached.principal.expires_at <= now]:
            self._drop(digest)


def _new_token() -> str:
    while (token := secrets.token_urlsafe(32)).startswith(KEY_PREFIX):
        pass  # one in 16 million: a login token never looks like a key
    return token


def _checked_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    try:
        checked = tuple(dict.fromkeys(check_scope(scope) for scope in scopes))
    except ValueError as exc:
        raise InvalidInput(str(exc), field="scopes") from None
    if not checked:
        raise InvalidInput("an account needs at least one scope (* for the whole centre)", field="scopes")
    return (EVERYWHERE,) if EVERYWHERE in checked else checked
