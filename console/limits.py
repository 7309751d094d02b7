"""The HTTP edge: how large a request body may be, and which JSON is JSON, decided before any route runs.

What it owns
    :class:`BodyLimits`, a pure ASGI middleware around the whole app. It answers a body over its route's limit
    with 413 (code ``body_too_large``) *before* the body is read when ``Content-Length`` says so, and as soon as
    a chunked body passes the limit otherwise; it never holds more than the limit. It answers JSON that Python's
    ``json`` accepts but JSON does not (``NaN``, ``Infinity``, ``-Infinity``, a number that overflows to
    infinity such as ``1e999``, a lone UTF-16 surrogate such as ``"\\ud800"``) with 422 ``validation``, naming
    where in the body (``roster.3.lat``), never echoing the input.

Rules
    1. The limit applies before authentication and before FastAPI reads anything: a 50 MB body from anyone
       costs at most the limit in memory, and none at all when its ``Content-Length`` is honest.
    2. Limits are a small table (:data:`ROUTE_LIMITS`): a default for every route, a larger one only where a
       route needs it; all are settings (``http_body_max``, ``http_bulk_body_max``, ``http_import_body_max``).
    3. The JSON check is one regular-expression search over the raw bytes (microseconds on an alarm's body);
       only a body that holds a suspect token is parsed again, strictly, to say where it is.
    4. Answers have the API's one error shape: ``{"detail", "code", "params", "field"}``.

Never
    Echo the input back; buffer a body past its limit; parse an ordinary body twice; read a websocket here
    (uvicorn's ``ws_max_size`` bounds those messages, see ``anxin.server``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: (method, path pattern, which limit): routes whose bodies may be larger than the default. The registry's PUTs
#: (one record: its strings are bounded to a few KB) and the hotline's events (bounded fields) fit the default.
ROUTE_LIMITS: tuple[tuple[str, str, str], ...] = (
    ("POST", r"/api/responders/duty", "bulk"),  # a shift roster: a few thousand lines with positions
    ("POST", r"/api/registry/import", "import"),  # a registry's CSV files (anxin import while the server runs)
)

# A token JSON does not have, or one that may overflow: a bare NaN / Infinity, an exponent of 3+ digits, 309+
# digits in a row, a \u escape of a UTF-16 surrogate, or the UTF-8 bytes of one. A string may hold these too
# ("NaNa", an emoji's escaped pair): then the strict parse below finds nothing and the body passes.
_SUSPECT = re.compile(rb"NaN|Infinity|[0-9][eE]\+?[0-9]{3}|[0-9]{309}|\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_TYPES = re.compile(r"^application/(?:[\w.+-]*\+)?json\s*(?:;|$)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _NotJson:
    """What stood in the body where JSON has no value: the token as written."""

    token: str


def _constant(token: str) -> _NotJson:
    return _NotJson(token)


def _float(token: str) -> float | _NotJson:
    value = float(token)
    return value if math.isfinite(value) else _NotJson(token)


def json_problem(body: bytes) -> tuple[list[str | int], str] | None:
    """Where (a path into the body) and what, for JSON that Python reads but JSON does not allow; else None.

    A body that is no JSON at all is not this check's business (FastAPI answers it with 422 ``json_invalid``)."""
    if _SUSPECT.search(body) is None:
        return None
    try:
        value = json.loads(body, parse_constant=_constant, parse_float=_float)
    except (ValueError, RecursionError):
        return None
    return _find(value, [])


def _find(value: Any, path: list[str | int]) -> tuple[list[str | int], str] | None:
    stack: list[tuple[Any, list[str | int]]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, _NotJson):
            return where, f"{_shown(item.token)} is not a JSON number"
        if isinstance(item, str):
            if _SURROGATE.search(item) is not None:
                return where, "a lone UTF-16 surrogate is not text"
        elif isinstance(item, dict):
            for key, member in item.items():
                if _SURROGATE.search(key) is not None:
                    return where, "a lone UTF-16 surrogate in a member's name is not text"
                stack.append((member, [*where, key]))
        elif isinstance(item, list):
            stack.extend((member, [*where, i]) for i, member in enumerate(item))
    return None


def _shown(token: str) -> str:
    return token if len(token) <= 24 else f"a number of {len(token)} characters"


def error_body(detail: str, code: str, params: dict[str, object], field: str | None) -> dict[str, object]:
    """The API's one error shape (console.app answers its errors the same way)."""
    return {"detail": detail, "code": code, "params": params, "field": field}


async def answer(send: Send, status: int, body: dict[str, object], *, close: bool = False) -> None:
    content = json.dumps(body, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    if close:  # the rest of the body is not read: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def too_large(limit: int) -> dict[str, object]:
    return error_body(f"the request body is larger than {limit} bytes", "body_too_large", {"limit": limit}, None)


def not_json(where: list[str | int], what: str) -> dict[str, object]:
    field = ".".join(str(part) for part in where) or None
    body = error_body(f"{field or 'body'}: {what}", "validation", {"field": field}, field)
    return {**body, "errors": [{"loc": ["body", *map(str, where)], "msg": what, "type": "json_invalid"}]}


class BodyLimits:
    """Pure ASGI middleware: body size limits by route, and JSON that is JSON (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: int,
        bulk: int,
        import_: int | None = None,
        routes: Sequence[tuple[str, str, str]] = ROUTE_LIMITS,
    ):
        self.app = app
        self.default = default
        sizes = {"default": default, "bulk": bulk, "import": bulk if import_ is None else import_}
        self.routes = [(method, re.compile(pattern), sizes[which]) for method, pattern, which in routes]

    def limit_for(self, method: str, path: str) -> int:
        for wanted, pattern, limit in self.routes:
            if wanted == method and pattern.fullmatch(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared, content_type = _headers(scope)
        if declared is not None and declared > limit:
            await answer(send, 413, too_large(limit), close=True)
            return
        if content_type is not None and _JSON_TYPES.match(content_type):
            await self._json(scope, receive, send, limit)
        else:
            await self._counted(scope, receive, send, limit)

    async def _json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Read the whole (bounded) body, check it, hand it on in one message."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it as it would
                await self.app(scope, _replay(chunks, message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                chunks.clear()
                await answer(send, 413, too_large(limit), close=True)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        chunks.clear()
        problem = json_problem(body)
        if problem is not None:
            await answer(send, 422, not_json(*problem))
            return
        await self.app(scope, _replay([body], None, receive), send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Pass the body on as it comes, counting; past the limit, answer 413 and tell the app the client left."""
        size = 0
        started = refused = False

        async def counting() -> Message:
            nonlocal size, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    refused = True
                    if not started:
                        await answer(send, 413, too_large(limit), close=True)
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent: whatever the app answers to the "disconnect" is dropped
            started = True
            await send(message)

        await self.app(scope, counting, guarded)


def _headers(scope: Scope) -> tuple[int | None, str | None]:
    declared: int | None = None
    content_type: str | None = None
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            declared = int(value)
        elif name == b"content-type":
            content_type = value.decode("latin-1")
    return declared, content_type


def _replay(chunks: list[bytes], last: Message | None, receive: Receive) -> Receive:
    """A receive that gives the body read so far (one message), then ``last``, then the real receive."""
    pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": last is not None}]
    if last is not None:
        pending.append(last)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
