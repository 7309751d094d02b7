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
    5. Descriptors are budgeted (:class:`DescriptorPlan`): at start the soft RLIMIT_NOFILE is raised to the hard
       limit where allowed, and every device listener's connection cap, the HTTP side's (uvicorn's
       ``limit_concurrency``) and a reserve for the journal, logs and anchor must fit in it together, or the
       server refuses to start with one paragraph naming the numbers and the settings. Full device ports then
       never take the descriptors a login or an ACK needs.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from anxin.logs import FactLog
from anxin.pbx import check_pbx, pbx_running
from console.app import create_app
from console.metrics import Telemetry
from dispatch.clock import Clock
from dispatch.core import Core, open_cluster_core, open_core
from dispatch.errors import ConfigError
from dispatch.settings import Settings
from gateway.registry import DevicePolicy, by_option, protocols
from gateway.service import ACCEPT_BURST, Budget, Gateway, Listener, idle_default

log = logging.getLogger("anxin.server")


def device_ports(settings: Settings) -> dict[str, int]:
    """The port of every device protocol not switched off, by option name (rule 1)."""
    known = by_option()
    for name, named in (("device_ports", settings.device_ports), ("device_budgets", settings.device_budgets)):
        unknown = sorted(set(named) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown device protocol option {', '.join(unknown)} in {name}; known: {', '.join(known)}"
            )
    return {
        option: port for option, spec in known.items() if (port := settings.device_port(option, spec.default_port))
        is not None
    }  # fmt: skip


def listeners(settings: Settings, plan: DescriptorPlan | None = None) -> list[Listener]:
    """The device listeners the settings ask for, one per protocol not switched off, each with its budget."""
    known = by_option()
    ports = device_ports(settings)
    plan = plan or DescriptorPlan.of(settings, list(ports), *descriptor_limit())
    chosen = []
    for option, port in ports.items():
        given = settings.device_budgets.get(option)
        budget = Budget(
            max_connections=plan.devices[option],
            max_per_address=(given and given.max_per_address) or settings.device_max_per_address,
            idle_s=(given and given.idle_s) or idle_default(option),
            partial_s=(given and given.partial_s) or settings.device_partial_s,
            allow=tuple(given.allow) if given else (),
        )
        chosen.append(Listener(known[option], port, budget))
    return chosen


#: a descriptor limit reported as unlimited is taken as this many
UNLIMITED = 1 << 20
#: the fewest connections a listener's share of the descriptors may come to
MIN_SHARE = 16


def descriptor_limit() -> tuple[int, int]:
    """The process's soft and hard limits on open descriptors (unlimited: :data:`UNLIMITED`)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return tuple(UNLIMITED if n == resource.RLIM_INFINITY else n for n in (soft, hard))  # type: ignore[return-value]


def raise_descriptor_limit() -> tuple[int, int]:
    """Raise the soft limit on open descriptors to the hard one where allowed; the limits then in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:  # e.g. a hard limit above what the kernel allows a process
            log.warning("descriptors: the soft limit %d stays (raising it to %d failed: %s)", soft, target, exc)
    return descriptor_limit()


@dataclass(frozen=True, slots=True)
class DescriptorPlan:
    """How the descriptor limit is shared: each device listener's cap, the HTTP side's, and the reserve."""

    limit: int
    hard: int
    devices: dict[str, int]
    http: int
    reserve: int

    @property
    def bursts(self) -> int:
        """Descriptors a flood's accepts hold for a moment beyond the caps (gateway.service.ACCEPT_BURST)."""
        return 2 * ACCEPT_BURST * len(self.devices)

    @property
    def needed(self) -> int:
        return sum(self.devices.values()) + self.http + self.reserve + self.bursts

    @classmethod
    def of(cls, settings: Settings, options: list[str], limit: int, hard: int) -> DescriptorPlan:
        """Share ``limit`` descriptors; a cap left unset gets an equal share of what the set ones leave."""
        reserve = settings.descriptor_reserve
        http = settings.http_max_connections or max(MIN_SHARE, (limit - reserve) // 4)
        budgets = settings.device_budgets
        fixed = {o: n for o in options if (n := budgets[o].max_connections if o in budgets else None) is not None}
        auto = [o for o in options if o not in fixed]
        bursts = 2 * ACCEPT_BURST * len(options)
        share = (limit - reserve - bursts - http - sum(fixed.values())) // len(auto) if auto else 0
        plan = cls(limit, hard, {o: fixed.get(o, share) for o in options}, http, reserve)
        if plan.needed > limit or (auto and share < MIN_SHARE):
            raise ConfigError(plan.refusal(auto))
        return plan

    def refusal(self, auto: list[str]) -> str:
        """The one paragraph that says why these budgets do not fit, with the numbers and the settings."""
        devices = ", ".join(f"{o} {n}" for o, n in self.devices.items()) or "none"
        shared = (
            f"; {', '.join(auto)} would get an equal share of what is left, under the minimum of {MIN_SHARE}"
            if auto
            else ""
        )
        raised = "cannot be raised further by this process" if self.limit >= self.hard else f"is {self.hard}"
        return (
            f"the connection budgets do not fit in the open-descriptor limit: device listeners {devices} "
            f"(device_budgets.<option>.max_connections), HTTP {self.http} (http_max_connections), the reserve "
            f"{self.reserve} (descriptor_reserve) and {self.bursts} for accept bursts need {self.needed} "
            f"descriptors{shared}, but this process may open "
            f"{self.limit} (RLIMIT_NOFILE; its hard limit {raised}). Lower those settings (ANXIN_DEVICE_BUDGETS, "
            "ANXIN_HTTP_MAX_CONNECTIONS, ANXIN_DESCRIPTOR_RESERVE), switch unused device ports off, or raise the "
            "hard limit (ulimit -Hn, LimitNOFILE= in a systemd unit, --ulimit nofile= for a container)"
        )


@dataclass
class Running:
    core: Core
    gateway: Gateway


#: the exit status of a cluster node that stopped leading (dispatch.cluster rule 2): start it again to follow
EXIT_LOST_LEAD = 75


def lost_lead(why: str) -> None:
    """A cluster node lost the lead to another node (or was fenced): stop at once, writing nothing more. What it
    held in memory and had not committed was never acknowledged; its devices repeat to another node."""
    log.critical("anxin: this node no longer leads (%s); exiting with status %d", why, EXIT_LOST_LEAD)
    logging.shutdown()
    os._exit(EXIT_LOST_LEAD)


#: the collector's thresholds once the server runs (see ``running``)
GC_THRESHOLDS = (20_000, 50, 100)


@asynccontextmanager
async def running(
    settings: Settings, clock: Clock | None = None, telemetry: Telemetry | None = None
) -> AsyncIterator[Running]:
    """The whole server but its HTTP face, for as long as the context lasts; ``telemetry`` is told of the device
    gateway (its counts, and each ACK's latency) and of the journal's durable facts (console.metrics)."""
    wanted = listeners(settings)
    if settings.cluster is not None or settings.journal_url is not None:
        core = await open_cluster_core(settings, clock, protocols=protocols(), on_lost=lost_lead)
    else:
        core = await open_core(settings, clock, protocols=protocols())
    try:
        core.run()
        policy = DevicePolicy(settings.dc09_plain_keyed, settings.gt06_unknown_login)
        gateway = Gateway(
            core.intake, core.views.device_key, core.clock, host=settings.gateway_host, listeners=wanted,
            known=core.views.device_known, policy=policy,
        )  # fmt: skip
        if telemetry is not None:
            gateway.on_ack, telemetry.devices = telemetry.observe_ack, gateway
        core.journal.listen(FactLog(core).heard)
        await gateway.start()
        try:
            async with pbx_running(settings, core):
                # The registry and the replayed projections are long-lived: move them out of the collector's way,
                # so a full collection does not walk a city's worth of objects in the middle of acknowledging an alarm.
                gc.collect()
                gc.freeze()
                # An alarm allocates about a thousand short-lived objects: at the default thresholds (700, 10, 10) 700
                # alarms a second meant 35 young collections, 3 middle ones of 3 ms and, every few seconds, a full one
                # of 80 ms over everything made since the start (the roster, the incidents), which a waiting ACK paid.
                # Fewer, larger young collections cost less in all, and a full one comes every hundred million objects.
                gc.set_threshold(*GC_THRESHOLDS)
                log.info("anxin ready: %d journal entries replayed, head seq %d", core.replayed, core.journal.head_seq)
                yield Running(core, gateway)
        finally:
            await gateway.stop()
    finally:
        await core.close()


def app_for(settings: Settings, clock: Clock | None = None) -> FastAPI:
    """The console's ASGI app around a running server, with the server's metrics."""
    telemetry = Telemetry()

    @asynccontextmanager
    async def open_running_core() -> AsyncIterator[Core]:
        async with running(settings, clock, telemetry) as server:
            yield server.core

    return create_app(settings, open_running_core, telemetry)


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


class AbortableWebSockets(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O websockets, lending the app a way to abort a connection (the scope extension
    ``anxin.transport``): a console or phone that stopped reading is cut by console.app, which neither a close
    frame (queued behind what it does not read) nor closing the transport (it waits for the buffer to drain) can do.
    """

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        extensions = self.scope.setdefault("extensions", {})
        if extensions is not None:
            extensions["anxin.transport"] = {"abort": self.transport.abort}


class GuardedHttp(H11Protocol):
    """uvicorn's HTTP/1.1, with a deadline for a new connection's first byte: a socket that is opened and never
    speaks (the cheapest way to hold the HTTP side's descriptors, which consoles' and phones' websockets share under
    ``limit_concurrency``) is closed after ``first_byte_s`` (the setting ``http_first_byte_s``). A client that
    trickles its headers is the reverse proxy's to time out (docs/security.md, TLS and reverse proxies)."""

    first_byte_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(self.first_byte_s, self.timeout_keep_alive_handler)


def make_server(settings: Settings) -> uvicorn.Server:
    """The one uvicorn setup, for ``serve`` and ``demo``."""
    limits = raise_descriptor_limit()  # first: the budgets are checked against the limit in force
    plan = DescriptorPlan.of(settings, list(device_ports(settings)), *limits)  # refused here, before anything starts
    log.info(
        "descriptors: %d may be open: device listeners %s, HTTP %d, reserve %d, accept bursts %d", plan.limit,
        ", ".join(f"{o} {n}" for o, n in plan.devices.items()) or "none", plan.http, plan.reserve, plan.bursts,
    )  # fmt: skip
    tls = tls_files(settings)
    check_pbx(settings)  # PBX settings that cannot work are refused here, before anything starts
    config = uvicorn.Config(
        app_for(settings),
        host=settings.host,
        port=settings.http_port,
        log_level="warning",
        log_config=None,  # uvicorn's lines go through the server's own handler, JSON or text (anxin.logs rule 3)
        http=type("GuardedHttp", (GuardedHttp,), {"first_byte_s": settings.http_first_byte_s}),
        ws=AbortableWebSockets,
        ws_max_size=64 * 1024,  # a phone's command is under 4 KB and consoles send nothing (uvicorn's default: 16 MB)
        ws_per_message_deflate=False,  # one compression per console per message costs more than it saves on a LAN
        lifespan="on",
        # the HTTP side's own budget of descriptors, apart from the devices' (rule 5); consoles' and phones'
        # websockets count in it, so its default is a quarter of the descriptors, not a small number
        limit_concurrency=plan.http,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    return uvicorn.Server(config)
