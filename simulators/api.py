"""The simulators' HTTP plumbing: a client with a bearer token, one request retried until it succeeds or is
refused, and a pause that watches the stop event.

Rules
    1. Network only: the HTTP API with a bearer token, exactly as the contract describes it.
    2. Never give up on the server. A transport error, a 5xx or a 429 answer is retried with exponential
       back-off (0.5 s up to 10 s) until it succeeds or ``stop`` is set; the server may restart meanwhile.
       A 4xx answer is the server refusing this request: it is raised as :class:`Refused` with the error's
       ``code`` (``replace_needs_confirmation``, ``address_not_found``, ...), and the caller decides.
    3. Every wait watches ``stop``, so a stream ends within moments of it being set.

Never
    Never import the server's packages: this is a client like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx

log = logging.getLogger("anxin.sim.api")

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0
HTTP_TIMEOUT_S = 10.0


class Refused(Exception):
    """The server answered 4xx: this request will not succeed as it is. ``code`` is the error's code."""

    def __init__(self, status: int, detail: str, code: str = "") -> None:
        super().__init__(f"HTTP {status}: {detail}" + (f" ({code})" if code else ""))
        self.status = status
        self.detail = detail
        self.code = code


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep for ``seconds`` or until ``stop`` is set; return whether it is set."""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


def api_client(base_url: str, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=HTTP_TIMEOUT_S)


async def login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, Any]:
    """``POST /api/auth/token``; the answer holds ``access_token``, ``role`` and ``responder_id``."""
    response = await client.post("/api/auth/token", data={"username": username, "password": password})
    if response.status_code >= 400:
        raise _refused(response)
    answer: dict[str, Any] = response.json()
    return answer


def _refused(response: httpx.Response) -> Refused:
    """The error body ``{detail, code, params, field}`` as a :class:`Refused`."""
    try:
        body = response.json()
    except ValueError:
        return Refused(response.status_code, response.text[:200])
    if not isinstance(body, dict):
        return Refused(response.status_code, str(body)[:200])
    return Refused(response.status_code, str(body.get("detail", "")), str(body.get("code") or ""))


async def call_api(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    stop: asyncio.Event,
    body: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> Any:
    """One API request, retried (rule 2); the decoded JSON answer, or None when ``stop`` came first.

    The request is tried at least once even when ``stop`` is already set, so a last "call ended" still
    goes out while a stream shuts down.
    """
    delay = RETRY_FIRST_S
    while True:
        try:
            response = await client.request(method, path, json=body, params=params)
        except httpx.TransportError as error:
            problem = type(error).__name__
        else:
            if response.status_code < 400:
                try:
                    return response.json()
                except ValueError:
                    raise Refused(response.status_code, "the answer is not JSON") from None
            if response.status_code < 500 and response.status_code != 429:
                raise _refused(response)
            problem = f"HTTP {response.status_code}"
        log.warning("%s %s failed (%s); retrying in %.1f s", method, path, problem, delay)
        if await pause(stop, delay):
            return None
        delay = min(delay * 2, RETRY_MAX_S)
