"""The running server: the core, the device listeners, the timers and the HTTP face, started and stopped in order.

What it owns
    Composition. :func:`running` opens the core on the data folder (replaying the journal), starts the intake's
    worker and the timer loop, then one listener per configured device protocol (from the gateway's registry),
    and stops them in the reverse order. :func:`make_server` puts the console's ASGI app around it, in uvicorn.

Rules
    1. Device ports come from the settings, keyed by each protocol's option name; a name the registry does not
       know is a configuration error at start, not a silently missing listener.
    2. The listeners start after the core is ready (an ACK needs a journal) and stop before it closes.
    3. TLS is both files or neither: a certificate without its key (or one that does not load) is a
       configuration error at start, never a server that quietly speaks plain HTTP. The device ports are not
       HTTP and are never behind TLS here.
    4. The client's address is the proxy's ``X-Forwarded-For`` only when the peer is one of
       ``forwarded_allow_ips``; from anyone else the header is ignored (login throttling counts addresses).
"""

from __future__ import annotations

import gc
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from console.app import create_app
from dispatch.clock import Clock
from dispatch.core import Core, open_core
from dispatch.errors import ConfigError
from dispatch.settings import Settings
from gateway.registry import by_option, protocols
from gateway.service import Gateway, Listener

log = logging.getLogger("anxin.server")


def listeners(settings: Settings) -> list[Listener]:
    """The device listeners the settings ask for, one per protocol not switched off."""
    known = by_option()
    unknown = sorted(set(settings.device_ports) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown device protocol option {', '.join(unknown)} in device_ports; known: {', '.join(known)}"
        )
    chosen = []
    for option, spec in known.items():
        port = settings.device_port(option, spec.default_port)
        if port is not None:
            chosen.append(Listener(spec, port))
    return chosen


@dataclass
class Running:
    core: Core
    gateway: Gateway


@asynccontextmanager
async def running(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Running]:
    """The whole server but its HTTP face, for as long as the context lasts."""
    wanted = listeners(settings)
    core = await open_core(settings, clock, protocols=protocols())
    try:
        core.run()
        gateway = Gateway(core.intake, core.views.device_key, core.clock, host=settings.gateway_host, listeners=wanted)
        await gateway.start()
        try:
            # The registry and the replayed projections are long-lived: move them out of the collector's way,
            # so a full collection does not walk a city's worth of objects in the middle of acknowledging an alarm.
            gc.collect()
            gc.freeze()
            log.info("anxin ready: %d journal entries replayed, head seq %d", core.replayed, core.journal.head_seq)
            yield Running(core, gateway)
        finally:
            await gateway.stop()
    finally:
        await core.close()


def app_for(settings: Settings, clock: Clock | None = None) -> FastAPI:
    """The console's ASGI app around a running server."""

    @asynccontextmanager
    async def open_running_core() -> AsyncIterator[Core]:
        async with running(settings, clock) as server:
            yield server.core

    return create_app(settings, open_running_core)


def tls_files(settings: Settings) -> tuple[Path, Path] | None:
    """The certificate and key HTTPS and WSS are served with, checked to load; None for plain HTTP."""
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing = ("tls_cert", "tls_key") if key is None else ("tls_key", "tls_cert")
        raise ConfigError(
            f"{given} is set but {missing} is not: TLS needs both the certificate and its private key "
            "(ANXIN_TLS_CERT and ANXIN_TLS_KEY), or neither for plain HTTP"
        )
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        if not path.is_file():
            raise ConfigError(f"{name} {path} is not a readable file")
    try:
        # A key that asks for a pass phrase gets an empty one and fails here, rather than prompting at start.
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key, password=lambda: b"")
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"tls_cert {cert} and tls_key {key} do not load together ({exc}); both must be PEM, the key "
            "unencrypted and the certificate's own"
        ) from exc
    return cert, key


def console_url(settings: Settings) -> str:
    """The console's address as this server serves it (https when TLS is on)."""
    scheme = "https" if settings.tls_cert is not None and settings.tls_key is not None else "http"
    return f"{scheme}://{settings.host}:{settings.http_port}"


def make_server(settings: Settings) -> uvicorn.Server:
    """The one uvicorn setup, for ``serve`` and ``demo``."""
    listeners(settings)  # refuse a bad device port setting before anything starts
    tls = tls_files(settings)
    config = uvicorn.Config(
        app_for(settings),
        host=settings.host,
        port=settings.http_port,
        log_level="warning",
        ws="websockets-sansio",
        ws_per_message_deflate=False,  # one compression per console per message costs more than it saves on a LAN
        lifespan="on",
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    return uvicorn.Server(config)
