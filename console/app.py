"""The FastAPI application: the API, the two websocket channels and the pages, around one core.

The console is the HTTP and websocket face only. Whoever runs the process (the ``anxin`` package) hands
:func:`create_app` a way to open the running core; the app's lifespan opens it, makes sure the first
``admin`` account exists, starts the journal-to-websocket hubs, and closes everything in order on shutdown.
It reads the core through ``core.views``, commands it through ``core.engine`` (its commands only) and
raises alarms through ``core.intake``; it starts no listener and no timer of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import secrets
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from console.accounts import router as accounts_router
from console.api import router
from console.assessments import router as assessments_router
from console.auth import PHONES, STAFF, Accounts, LoginThrottle, Principal
from console.carecalls import router as care_calls_router
from console.duty import router as duty_router
from console.elderfile import router as elder_file_router
from console.errors import AuthError, Forbidden, Throttled, status_for
from console.followups import router as follow_ups_router
from console.govexport import router as gov_export_router
from console.keeping import router as keeping_router
from console.limits import BodyLimits
from console.live import LAGGING, CaregiverHub, ConsoleHub, frames, pump
from console.metrics import Telemetry
from console.metrics import router as metrics_router
from console.pages import DOCS_ASSETS, DOCS_STATIC, STATIC, pages
from console.phone import PhoneCommand
from console.plans import router as plans_router
from console.referrals import router as referrals_router
from console.registryio import router as registry_io_router
from console.reports import router as reports_router
from console.services import router as services_router
from console.telephony import router as telephony_router
from dispatch.core import Core
from dispatch.errors import AnxinError, Conflict, InvalidInput
from dispatch.settings import Settings
from dispatch.storage import Storage

log = logging.getLogger("anxin.console")

#: opens the running core for the app's lifetime (the process package composes it)
CoreOpener = Callable[[], AbstractAsyncContextManager[Core]]


def create_app(settings: Settings, open_core: CoreOpener, telemetry: Telemetry | None = None) -> FastAPI:
    """The app around the core ``open_core`` opens; ``telemetry``: the server's metrics (console.metrics), which the
    process also hands the device gateway (a new one, without devices, when not given)."""
    telemetry = telemetry or Telemetry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_core() as core:
            throttle = LoginThrottle(
                per_account=settings.login_fail_account,
                per_address=settings.login_fail_address,
                window_s=settings.login_lock_s,
                clock=core.clock,
            )
            accounts = Accounts(
                core.db, core.clock, token_ttl_s=settings.token_ttl_s, throttle=throttle,
                journal=core.engine.login_failed,
            )  # fmt: skip
            await accounts.create_schema()
            await ensure_admin(accounts, settings)
            core.journal.listen(accounts.heard)  # a change made through another node of a cluster
            core.views.name_staff({account.username: account.name for account in await accounts.all()})
            consoles, phones = ConsoleHub(core.bus, core.views, core.clock), CaregiverHub(core.bus, core.views)
            consoles.start()
            phones.start()
            if core.storage is not None:  # the banner of a low or full disk (dispatch.storage)
                core.storage.listen(lambda seen: consoles.announce(storage_message(seen)))
            app.state.core, app.state.accounts = core, accounts
            app.state.consoles, app.state.phones = consoles, phones
            telemetry.watch(core, consoles, phones)
            try:
                yield
            finally:
                await consoles.stop()
                await phones.stop()

    app = FastAPI(title="Anxin", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.telemetry = telemetry
    app.include_router(metrics_router)
    app.include_router(accounts_router)
    app.include_router(telephony_router)  # before the API's /calls/{call_id:path} routes
    app.include_router(router)
    app.include_router(services_router)
    app.include_router(follow_ups_router)
    app.include_router(care_calls_router)
    app.include_router(plans_router)
    app.include_router(duty_router)
    app.include_router(referrals_router)
    app.include_router(assessments_router)
    app.include_router(keeping_router)
    app.include_router(registry_io_router)
    app.include_router(elder_file_router)
    app.include_router(reports_router)
    app.include_router(gov_export_router)
    app.include_router(pages)  # /docs and /redoc among them, from local assets
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount(DOCS_ASSETS, StaticFiles(directory=DOCS_STATIC), name="docs-assets")
    # outermost but for Starlette's error middleware: a body over its limit is refused before anything reads it
    app.add_middleware(BodyLimits, default=settings.http_body_max, bulk=settings.http_bulk_body_max,
                       import_=settings.http_import_body_max)  # fmt: skip

    @app.exception_handler(AnxinError)
    async def domain_error(request: Request, exc: AnxinError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if status_for(exc) == 401 else None
        if isinstance(exc, Throttled):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(error_body(exc), status_for(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        fields = [_field_of(e) for e in errors]
        detail = "; ".join(f"{f or 'body'}: {e['msg']}" for f, e in zip(fields, errors, strict=True))
        field = (fields[0] or None) if fields else None
        body = {"detail": detail, "code": "validation", "params": {"field": field}, "field": field}
        # where and what, never the input itself: echoed, a 3 MB body came back as 49 MB, and a NaN or a lone
        # surrogate in it made the answer itself fail (a bare 500)
        plain = [
            {"loc": [str(part) for part in e["loc"]], "msg": str(e["msg"]), "type": str(e["type"])} for e in errors
        ]
        return JSONResponse({**body, "errors": plain}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "route_not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = {"detail": str(exc.detail), "code": code, "params": {"status": exc.status_code}, "field": None}
        return JSONResponse(body, exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(sqlite3.OperationalError)
    async def storage_error(request: Request, exc: sqlite3.OperationalError) -> JSONResponse:
        # the accounts' tables live beside the journal: a full or read-only disk refuses them as it refuses the
        # journal, and the answer is the journal's (503, nothing was done), not a bare 500; any other SQLite error
        # is a bug of ours (500)
        if not _STORAGE_TROUBLE.search(str(exc)):
            raise exc
        QUIET.warning("storage", "storage refused a request (e.g. %s %s): %s", request.method, request.url.path, exc)
        detail = "the service record cannot be written now"
        return JSONResponse({"detail": detail, "code": "journal_unavailable", "params": {}, "field": None}, 503)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette raises the exception again once this answer is sent: the server logs it once, traceback and all
        body: dict[str, object] = {"detail": "internal server error", "code": "internal", "params": {}, "field": None}
        return JSONResponse(body, 500)

    @app.get("/healthz", tags=["health"])  # liveness; readiness is /readyz (console.metrics)
    async def healthz(request: Request) -> JSONResponse:
        core: Core = request.app.state.core
        failure = core.journal.failure
        body: dict[str, object] = {"ok": failure is None, "journal_head": core.journal.durable_seq}
        if failure is not None:
            body["error"] = str(failure)
        if core.storage is not None:  # low: still ok, but say so; full: only alarms are taken in
            body["storage"] = core.storage.current.as_dict()
            body["ok"] = failure is None and not core.storage.full
        node = core.node
        if node is not None:  # cluster mode: which node this is, whether it decides, in which term
            body["cluster"] = {"node": node.name, "leading": node.leading, "term": node.term}
        anchor = core.anchor
        if anchor is not None:  # the chain's signed checkpoints: failing, they leave alarms alone but not the record
            last = anchor.last
            body["anchor"] = {"checkpoint_seq": last.seq if last is not None else None,
                              "error": anchor.failure}  # fmt: skip
        return JSONResponse(body, 200 if body["ok"] else 503)

    @app.websocket("/ws/console")
    async def ws_console(websocket: WebSocket) -> None:
        principal = await _authenticate(websocket, STAFF)
        if principal is None:
            return
        with websocket.app.state.accounts.watch(websocket.query_params["token"]) as revoked:
            await serve_console(websocket, websocket.app.state.core, websocket.app.state.consoles, principal, revoked)

    @app.websocket("/ws/caregiver")
    async def ws_caregiver(websocket: WebSocket) -> None:
        principal = await _authenticate(websocket, PHONES)
        if principal is None or principal.responder_id is None:
            return
        with websocket.app.state.accounts.watch(websocket.query_params["token"]) as revoked:
            await serve_caregiver(websocket, websocket.app.state.core, websocket.app.state.phones, principal, revoked)

    return app


def storage_message(seen: Storage) -> dict[str, Any]:
    return {"type": "status", "storage": seen.as_dict()}


def _field_of(error: Any) -> str:
    """The dotted place of a validation error, without its section; a body that is no JSON at all is "body"
    (FastAPI puts the character position where a field's name would be)."""
    if error["type"] == "json_invalid":
        return ""
    return ".".join(str(part) for part in error["loc"] if part not in ("body", "query", "path"))


def error_body(exc: AnxinError) -> dict[str, Any]:
    """An error as the API answers it: the English detail, the code the pages translate, its parameters (names,
    not ids, where a person reads them) and the offending field."""
    field = exc.field if isinstance(exc, InvalidInput) else None
    return {"detail": str(exc), "code": exc.code, "params": exc.params, "field": field}


async def ensure_admin(accounts: Accounts, settings: Settings) -> None:
    if await accounts.exists("admin"):
        return
    password = settings.admin_password or secrets.token_urlsafe(12)
    try:
        await accounts.create("admin", password, "admin")
    except Conflict:  # another node of a cluster, starting at the same moment, made it first
        return
    if settings.admin_password is None:
        print(f"anxin: created account 'admin' with password {password} (shown once)", flush=True)


async def _authenticate(websocket: WebSocket, roles: tuple[str, ...]) -> Principal | None:
    accounts: Accounts = websocket.app.state.accounts
    try:
        principal = await accounts.principal(websocket.query_params.get("token"))
    except AuthError as exc:
        await websocket.close(code=4401, reason=str(exc))
        return None
    if principal.role not in roles:
        await websocket.close(code=4403, reason=f"role {principal.role} may not use this channel")
        return None
    await websocket.accept()
    return principal


#: what SQLite says when the disk, not the query, is the trouble
_STORAGE_TROUBLE = re.compile(r"disk|full|readonly|read-only|I/O|locked|unable to open", re.IGNORECASE)


class Quiet:
    """A kind of event logged at most once per ``every_s``, with how many there were since: a flood of failing
    requests or stalled consoles must not fill the log (the monotonic clock: when a log line is written is not a
    decision of the domain)."""

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._since: Counter[str] = Counter()

    def warning(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        self._since[kind] += 1
        if now - self._last.get(kind, -math.inf) >= self.every_s:
            count, self._since[kind] = self._since[kind], 0
            self._last[kind] = now
            log.warning(message + (f" ({count} such since the last line)" if count > 1 else ""), *args)


QUIET = Quiet()

#: a console or phone that takes no message for this long has stopped reading (its socket buffers are full): it
#: is cut, its connection aborted, so that it holds neither a task nor a descriptor nor megabytes of queued frames
STALL_S = 10.0


class Stalled(Exception):
    """A client took no message for :data:`STALL_S` seconds."""


def _sender(websocket: WebSocket) -> Callable[[str], Coroutine[Any, Any, None]]:
    """``websocket.send_text`` that gives up on a client which stopped reading (:class:`Stalled`)."""
    return _Sender(websocket).send


class _Sender:
    """A send that has not completed within :data:`STALL_S` is cancelled and raises :class:`Stalled`, as under
    ``asyncio.timeout`` but with one timer per connection instead of one per send: the timer is armed for the send
    in flight, and when it fires after that send ended it is armed again for the one in flight then, if any. A
    connection's sends come one at a time (its handler's, then its pump's)."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[Any] | None = None  # the task whose send is in flight
        self._since = 0.0
        self._cancelling = 0
        self._expired = False
        self._timer: asyncio.TimerHandle | None = None

    async def send(self, text: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task, self._since, self._cancelling, self._expired = task, self._loop.time(), task.cancelling(), False
        if self._timer is None:
            self._timer = self._loop.call_at(self._since + STALL_S, self._check)
        try:
            await self._websocket.send_text(text)
        except asyncio.CancelledError:
            if self._expired and task.uncancel() <= self._cancelling:
                raise Stalled from None
            raise
        finally:
            self._task = None

    def _check(self) -> None:
        self._timer = None
        if self._task is None:
            return
        due = self._since + STALL_S
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._check)
            return
        self._expired = True
        self._task.cancel()


def _abort(websocket: WebSocket) -> None:
    """Drop a stalled client's connection at once. A close frame would wait behind the frames it does not read, and
    a closed transport keeps its socket until its buffer drains, which for a stalled reader is never; so the
    transport is aborted, through the server's ``anxin.transport`` scope extension (anxin.server). Without it (a
    test client) there is no socket to free."""
    extension = (websocket.scope.get("extensions") or {}).get("anxin.transport") or {}
    abort = extension.get("abort")
    if callable(abort):
        abort()
    QUIET.warning("stalled", "a websocket client stopped reading for %.0f s: connection aborted", STALL_S)


async def serve_console(
    websocket: WebSocket, core: Core, hub: ConsoleHub, who: Principal, revoked: asyncio.Event | None = None
) -> None:
    """Snapshot or catch-up, then the live stream, gap-free (see console.live), of what this person may see.

    The stream is a read of personal data: it is on record (``records.read``, what ``console``) before the
    first message, with the number of incidents and calls of the snapshot, or the sequence it resumes from."""
    reach = who.reach
    outbox = hub.connect(reach)
    upto = core.journal.durable_seq  # every entry durable from now on reaches the outbox: the catch-up ends here
    send = _sender(websocket)
    batch = websocket.query_params.get("batch") == "1"  # rule 5 of console.live
    try:
        after_text = websocket.query_params.get("after")
        digits = after_text is not None and after_text.isascii() and after_text.isdigit()
        if digits and int(str(after_text)) > core.journal.durable_seq:
            after_text = None  # ahead of the record (it saw entries a crash took back): start from a snapshot
        if after_text is None:  # a snapshot, shared with the reach's consoles of this moment, in pages
            snapshot = await hub.snapshots.get(reach, core.journal.head_seq)
            await core.engine.read("console", snapshot.held, actor=who.actor, filter="snapshot")
            for page, text in enumerate(snapshot.pages):
                if page:
                    await asyncio.sleep(0)  # other consoles' pages, and alarms, between this one's
                await send(text)
            last = snapshot.seq
        else:
            try:
                last = max(0, int(after_text))
            except ValueError:
                await websocket.close(code=4422, reason="after must be a journal sequence number")
                return
            await core.engine.read("console", 0, actor=who.actor, filter="resume")
        if last < upto:  # a resume, or a shared snapshot a moment older than this console
            caught = await _catch_up(websocket, send, core, who, last, upto, revoked, batch=batch)
            if caught is None:
                return
            last = caught
        storage = core.storage.current if core.storage is not None else None
        if storage is not None and storage.state != "ok":  # rule 2a of console.live: told on every connect
            text = json.dumps(storage_message(storage), ensure_ascii=False)
            await send(f"[{text}]" if batch else text)
        left = who.expires_at - core.clock.now()
        sending = pump(outbox, send, after=last, batch=batch)
        await _close(websocket, await _until_either(sending, _drain_client(websocket), left, revoked))
    except Stalled:
        _abort(websocket)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.disconnect(outbox)


async def _catch_up(
    websocket: WebSocket,
    send: Callable[[str], Coroutine[Any, Any, None]],
    core: Core,
    who: Principal,
    last: int,
    upto: int,
    revoked: asyncio.Event | None,
    *,
    batch: bool = False,
) -> int | None:
    """Send the durable entries after ``last`` up to ``upto`` this person may see (those after ``upto`` come
    through the outbox, registered before: reading on while alarms keep coming would chase the record's head
    for as long as they come, and read every entry twice); the last seq read, or None when the token was revoked
    or expired meanwhile (the console is closed: a long catch-up stops with the rights it started)."""
    while last < upto:
        entries = [entry for entry in await core.journal.read(last, 1000) if entry.seq <= upto]
        if not entries:
            return last
        if (revoked is not None and revoked.is_set()) or who.expires_at <= core.clock.now():
            await websocket.close(code=4401, reason="token revoked or expired; log in again")
            return None
        texts = (entry.wire() for entry in entries if who.reach.sees(core.views.entry_scope(entry)))
        for text in frames(texts) if batch else texts:
            await send(text)
        last = entries[-1].seq
    return last


async def _until_either(
    sending: Coroutine[Any, Any, int],
    receiving: Coroutine[Any, Any, None],
    seconds_left: float,
    revoked: asyncio.Event | None = None,
) -> str:
    """Run the sender and the receiver until one ends, the token expires or is revoked (a logout, the account
    disabled, its rights changed): "lagging", "stalled" (it stopped reading), "expired", "revoked" or "closed".

    An anyio task group, not bare asyncio tasks: when the server (or a test client) cancels the handler,
    every part is cancelled with it and nothing is left running.
    """
    outcome = "closed"

    async with anyio.create_task_group() as group:

        async def send() -> None:
            nonlocal outcome
            try:
                await sending
            except Stalled:
                outcome = "stalled"
            else:
                outcome = "lagging"
            group.cancel_scope.cancel()

        async def receive() -> None:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await receiving
            group.cancel_scope.cancel()

        async def expire() -> None:
            nonlocal outcome
            await anyio.sleep(max(0.0, seconds_left))
            outcome = "expired"
            group.cancel_scope.cancel()

        async def revoke(event: asyncio.Event) -> None:
            nonlocal outcome
            await event.wait()
            outcome = "revoked"
            group.cancel_scope.cancel()

        group.start_soon(send)
        group.start_soon(receive)
        if revoked is not None:
            group.start_soon(revoke, revoked)
        if seconds_left != math.inf:
            group.start_soon(expire)
    return outcome


async def _close(websocket: WebSocket, outcome: str) -> None:
    """Close with the code the outcome deserves; a client that does not take even the close frame is aborted."""
    code, reason = {
        "lagging": (LAGGING, "lagging; resume from the last seq you received"),
        "expired": (4401, "token expired; log in again"),
        "revoked": (4401, "token revoked; log in again"),
    }.get(outcome, (0, ""))
    if outcome == "stalled":
        _abort(websocket)
    elif code:
        try:
            async with asyncio.timeout(STALL_S):
                await websocket.close(code=code, reason=reason)
        except TimeoutError:
            _abort(websocket)


async def _drain_client(websocket: WebSocket) -> None:
    """Consoles only listen; reading keeps the connection's close handshake working."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))


async def serve_caregiver(
    websocket: WebSocket, core: Core, hub: CaregiverHub, who: Principal, revoked: asyncio.Event | None = None
) -> None:
    assert who.responder_id is not None
    responder_id = who.responder_id
    outbox = hub.connect(responder_id)
    try:
        seq = core.journal.head_seq
        send = _sender(websocket)
        await send(json.dumps(core.views.hello(responder_id), ensure_ascii=False))
        left = who.expires_at - core.clock.now()
        commands = _phone_commands(websocket, core, who)
        sending = pump(outbox, send, after=seq)
        await _close(websocket, await _until_either(sending, commands, left, revoked))
    except Stalled:
        _abort(websocket)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.disconnect(responder_id, outbox)


async def _phone_commands(websocket: WebSocket, core: Core, who: Principal) -> None:
    """Commands from a phone. A bad message gets an error reply; the connection stays up."""
    while True:
        received = await websocket.receive()
        if received["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(received.get("code", 1000))
        text = received.get("text")
        ref: Any = None
        if text is None:  # a binary frame: answer, keep the connection
            binary = {"type": "error", "ref": None, "detail": "send JSON text frames", "code": "bad_message"}
            await websocket.send_text(json.dumps(binary))
            continue
        try:
            message = json.loads(text)
            if not isinstance(message, dict):
                raise InvalidInput("a message is a JSON object", field="type")
            ref = message.get("id")
            if not isinstance(ref, str | int) or isinstance(ref, bool):
                ref = None  # echoed as sent: a NaN or 1e999 would make the reply invalid JSON
            await phone_command(core, who, message)
        except (ValueError, ValidationError) as exc:
            refused: dict[str, Any] = {"type": "error", "ref": ref, "detail": str(exc), "code": "bad_message"}
            await websocket.send_text(json.dumps({**refused, "params": {}, "field": None}))
        except AnxinError as exc:
            await websocket.send_text(json.dumps({"type": "error", "ref": ref, **error_body(exc)}, ensure_ascii=False))
        else:
            await websocket.send_text(json.dumps({"type": "ok", "ref": ref}))


async def phone_command(core: Core, who: Principal, message: dict[str, Any]) -> None:
    command = PhoneCommand.model_validate({"message": message}).message
    engine, responder_id = core.engine, who.responder_id
    assert responder_id is not None
    match command.type:
        case "accept" | "decline":
            await engine.reply_offer(
                command.assignment_id, responder_id, command.type == "accept", reason=command.reason
            )
        case "status":
            await engine.report_status(command.assignment_id, responder_id, command.status, command.note)
        case "position" | "duty" if who.role == "family":
            raise Forbidden("a family member has no duty and shares no position", code="forbidden")
        case "position":
            await engine.set_position(responder_id, command.lat, command.lon, actor=who.actor)
        case "duty":
            await engine.set_duty(responder_id, command.on, actor=who.actor, lat=command.lat, lon=command.lon)
