"""The operations' face: Prometheus metrics at ``/metrics`` and readiness at ``/readyz`` (docs/operations.md).

What it owns
    One server's metric objects, in a registry of its own (:class:`Telemetry`; never prometheus_client's global
    one, so tests and several servers in one process stay apart), the text ``/metrics`` answers, and the checks
    ``/readyz`` answers. The process composes it (``anxin.server``): it hands the device gateway in as
    :class:`DeviceFacts` and gives the gateway :meth:`Telemetry.observe_ack` as its ACK hook; the console's
    lifespan hands in the core and the hubs (:meth:`Telemetry.watch`).

Rules
    1. Nothing here is on the path of an alarm. What the core, the gateway and the hubs already count is read at
       scrape time (:class:`_Collector`); what they cannot keep -- each ACK's latency, each commit's -- comes
       through the hooks they offer (the gateway's ``on_ack``, ``Journal.on_commit``), one observation each; the
       alarms and escalations are counted from the journal's durable entries as they are told to listeners.
    2. Labels are few and bounded: a protocol, an ACK's path, an alarm's source and type, an incident's state,
       an intake rank, a check's name. Never an elder, a device, an incident or an account.
    3. Drills and devices' test calls stay out of the real figures: drill alarms have a counter of their own,
       test calls are counted nowhere.
    4. Counters count what this process heard since it started. In a cluster every node hears every entry:
       read the alarms of one node (the leader's), not their sum.
    5. ``/metrics`` is for a scraper, not a person: no login, no rate limit; the bearer ``metrics_token`` when it is
       set, else only a peer on the loopback. ``/readyz``, like ``/healthz``, is open: it says nothing of anyone.

Never
    Never a person's data in a metric or a check; never a write; never a metric of the core imported into the
    core or the gateway (they know no prometheus_client).
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from console.deps import accounts_of, oauth2
from console.errors import AuthError, Forbidden
from console.live import CaregiverHub, ConsoleHub
from dispatch.core import Core
from dispatch.entries import AlarmAttached, Escalated, IncidentOpened, Unanswered
from dispatch.journal import Entry

#: an ACK's latency, from the read that completed the frame to the reply's write: a check-in is answered in well
#: under a millisecond, an alarm after its commit (one fsync: a few ms on an SSD, tens on a busy disk)
ACK_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
#: one group commit of the journal (an fsync, and a batch of up to 2,000 entries)
COMMIT_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0)


class DeviceFacts(Protocol):
    """What the device gateway counts, read at scrape time (gateway.service.Gateway, rule 4 there)."""

    @property
    def frames(self) -> Mapping[str, int]: ...

    @property
    def counters(self) -> Mapping[str, int]: ...

    def open(self) -> dict[str, int]: ...

    def bound(self) -> dict[str, bool]: ...


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness check: its name, whether it passes, and what it saw."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class Telemetry:
    """One server's metrics and readiness."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    devices: DeviceFacts | None = None
    core: Core | None = None
    consoles: ConsoleHub | None = None
    phones: CaregiverHub | None = None
    last_commit: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        registry = self.registry
        self.ack = Histogram(
            "anxin_ack_latency_seconds", "A device frame's ACK: from the read that completed the frame to the reply "
            "written (path: checkin answered at once, recorded answered once durable)",
            ["protocol", "path"], buckets=ACK_BUCKETS, registry=registry,
        )  # fmt: skip
        self.commit = Histogram(
            "anxin_journal_commit_seconds", "One group commit of the journal (insert, commit, fsync)",
            buckets=COMMIT_BUCKETS, registry=registry,
        )  # fmt: skip
        self.alarms = Counter(
            "anxin_alarms", "Alarms on record (durable), by source and type; drills and test calls left out",
            ["source", "type"], registry=registry,
        )  # fmt: skip
        self.drill_alarms = Counter(
            "anxin_drill_alarms", "Drill alarms on record, by source and type", ["source", "type"], registry=registry
        )
        self.escalations = Counter(
            "anxin_escalations", "Escalations on record: to the supervisors (nobody acknowledged in time) or to an "
            "outside service", ["to"], registry=registry,
        )  # fmt: skip
        self._acks: dict[tuple[str, str], Histogram] = {}
        registry.register(_Collector(self))

    # -- what the process and the console hand in -----------------------------------------------------

    def observe_ack(self, protocol: str, path: str, seconds: float) -> None:
        """The gateway's ACK hook, called for every heartbeat too: each label pair's child is looked up once."""
        child = self._acks.get((protocol, path))
        if child is None:
            child = self._acks[(protocol, path)] = self.ack.labels(protocol, path)
        child.observe(seconds)

    def watch(self, core: Core, consoles: ConsoleHub, phones: CaregiverHub) -> None:
        """The console's lifespan hands in the core and the hubs once they run."""
        self.core, self.consoles, self.phones = core, consoles, phones
        core.journal.listen(self._heard)
        core.journal.on_commit(self._committed)

    def _committed(self, seconds: float, entries: int) -> None:
        self.commit.observe(seconds)
        self.last_commit = time.time()

    def _heard(self, entry: Entry) -> None:
        """A durable entry: count it if it is an alarm or an escalation (rule 3)."""
        fact = entry.fact
        if isinstance(fact, IncidentOpened | AlarmAttached):
            if isinstance(fact, IncidentOpened) and fact.test:
                return
            (self.drill_alarms if entry.drill else self.alarms).labels(fact.source, fact.alarm_type).inc()
        elif not entry.drill and isinstance(fact, Unanswered | Escalated):
            self.escalations.labels("supervisors" if isinstance(fact, Unanswered) else "outside").inc()

    # -- what /metrics and /readyz answer -------------------------------------------------------------

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def readiness(self) -> list[Check]:
        """The checks of /readyz: the journal commits, it is not stalled, the disk takes it, every configured
        listener is bound, the intake's worker and the timer loop run."""
        core = self.core
        if core is None:
            return [Check("started", False, "the server is starting")]
        return [*_journal_checks(core), *_listener_checks(self.devices), _intake_check(core), _timer_check(core)]


def _journal_checks(core: Core) -> Iterator[Check]:
    journal = core.journal
    failure = journal.failure
    yield Check("journal", failure is None, str(failure) if failure is not None else f"durable {journal.durable_seq}")
    since = journal.waiting_since
    waited = 0.0 if since is None else max(0.0, core.clock.now() - since)
    limit = core.settings.ready_stall_s
    stalled = failure is None and waited > limit
    waited_text = f"the oldest entry not yet durable waited {waited:.1f} s (limit {limit:g})"
    yield Check("journal_progress", not stalled, waited_text)
    if core.storage is not None:
        storage = core.storage.current
        yield Check("storage", storage.state != "full", storage.reason or storage.state)


def _listener_checks(devices: DeviceFacts | None) -> Iterator[Check]:
    bound = devices.bound() if devices is not None else {}
    down = sorted(name for name, up in bound.items() if not up)
    yield Check("listeners", not down, f"not bound: {', '.join(down)}" if down else f"bound: {', '.join(bound)}")


def _intake_check(core: Core) -> Check:
    if core.node is not None and not core.node.leading:
        return Check("intake", True, "a follower: the leader's intake records the alarms handed to it")
    running = core.intake.running
    return Check("intake", running, "running" if running else "the intake's worker is not running: alarms wait")


def _timer_check(core: Core) -> Check:
    running = core.timers_running
    if running is None:
        return Check("timers", True, "a follower: the leader runs the timers")
    return Check("timers", running, "running" if running else "the timer loop is not running")


class _Collector(Collector):
    """What is read at scrape time (rule 1)."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    def describe(self) -> list[Any]:
        return []  # nothing to check at registration: the names are fixed below

    def collect(self) -> Iterator[Any]:
        telemetry = self._telemetry
        yield from _device_metrics(telemetry.devices)
        yield from _hub_metrics(telemetry.consoles, telemetry.phones)
        if telemetry.core is not None:
            yield from _core_metrics(telemetry.core, telemetry.last_commit)
        checks = telemetry.readiness()
        ready = GaugeMetricFamily("anxin_ready", "1 when every readiness check passes (/readyz answers 200)")
        ready.add_metric([], float(all(check.ok for check in checks)))
        yield ready
        each = GaugeMetricFamily("anxin_ready_check", "Each readiness check: 1 passing, 0 failing", labels=["check"])
        for check in checks:
            each.add_metric([check.name], float(check.ok))
        yield each


def _device_metrics(devices: DeviceFacts | None) -> Iterator[Any]:
    bound = devices.bound() if devices is not None else {}
    frames = CounterMetricFamily("anxin_device_frames", "Device frames read, by protocol", labels=["protocol"])
    connections = GaugeMetricFamily("anxin_device_connections", "Device connections open now", labels=["protocol"])
    up = GaugeMetricFamily("anxin_device_listener_up", "1 when the protocol's listener is bound", labels=["protocol"])
    events = CounterMetricFamily(
        "anxin_gateway_events", "What the gateway counted: refusals, drops, codec outcomes",
        labels=["protocol", "event"],
    )  # fmt: skip
    if devices is not None:
        held = devices.open()
        for name in bound:
            frames.add_metric([name], devices.frames.get(name, 0))
            connections.add_metric([name], held.get(name, 0))
            up.add_metric([name], float(bound[name]))
        for key, count in sorted(devices.counters.items()):
            protocol, _, event = key.rpartition(".")
            events.add_metric([protocol, event], count)
    yield from (frames, connections, up, events)


def _hub_metrics(consoles: ConsoleHub | None, phones: CaregiverHub | None) -> Iterator[Any]:
    clients = GaugeMetricFamily("anxin_websocket_clients", "Live websocket clients, by kind", labels=["kind"])
    clients.add_metric(["console"], len(consoles.clients) if consoles is not None else 0)
    clients.add_metric(["phone"], sum(map(len, phones.phones.values())) if phones is not None else 0)
    yield clients


def _core_metrics(core: Core, last_commit: float) -> Iterator[Any]:
    journal, now = core.journal, core.clock.now()
    since = journal.waiting_since
    yield _gauge("anxin_journal_up", "1 while the journal commits; 0 after a failed commit, until it commits again",
                 float(journal.failure is None))  # fmt: skip
    yield _gauge("anxin_journal_durable_seq", "The sequence number of the last durable entry", journal.durable_seq)
    yield _gauge("anxin_journal_pending_entries", "Entries appended, not yet durable",
                 journal.head_seq - journal.durable_seq)  # fmt: skip
    yield _gauge("anxin_journal_oldest_pending_seconds", "How long the oldest entry not yet durable has waited",
                 0.0 if since is None else max(0.0, now - since))  # fmt: skip
    yield _gauge("anxin_journal_last_commit_timestamp_seconds", "When the journal last committed (or the server "
                 "started), UTC seconds", last_commit)  # fmt: skip
    waiting = GaugeMetricFamily("anxin_intake_waiting", "Items waiting for the intake's worker", labels=["rank"])
    taken = CounterMetricFamily("anxin_intake_items", "Items the intake's worker took, by rank", labels=["rank"])
    for rank, count in core.intake.waiting_by_rank().items():
        waiting.add_metric([rank], count)
        taken.add_metric([rank], core.intake.counters.get(rank, 0))
    yield waiting
    yield taken
    yield _gauge("anxin_intake_waiting_offers", "Incidents opened from device alarms, acknowledged, whose first offers "
                 "are not made yet", core.intake.waiting_offers)  # fmt: skip
    yield from _incident_metrics(core)
    configured = bool(core.settings.pbx_host)
    yield _gauge("anxin_pbx_configured", "1 when a PBX is configured (docs/telephony.md)", float(configured))
    up = configured and core.telephony is not None and core.telephony.connected
    yield _gauge("anxin_pbx_up", "1 while the link to the PBX's manager interface is logged in", float(up))
    if core.storage is not None:
        seen = core.storage.current
        yield _gauge("anxin_storage_free_bytes", "Free bytes under the data folder, as last read", seen.free)
        state = GaugeMetricFamily("anxin_storage_state", "The disk's state: 1 for the current one", labels=["state"])
        for name in ("ok", "low", "full"):
            state.add_metric([name], float(seen.state == name))
        yield state


def _incident_metrics(core: Core) -> Iterator[Any]:
    seen = core.views.operational()
    by_state = GaugeMetricFamily("anxin_open_incidents", "Open incidents by state (drills and test calls left out)",
                                 labels=["state"])  # fmt: skip
    for state, count in sorted(seen.open_by_state.items()):
        by_state.add_metric([state], count)
    yield by_state
    yield _gauge("anxin_incidents_unacknowledged", "Open incidents nobody has acknowledged", seen.unacknowledged)
    yield _gauge("anxin_incident_unacknowledged_oldest_seconds", "Age of the oldest open incident nobody has "
                 "acknowledged (0: none)", seen.oldest_unacknowledged_s)  # fmt: skip
    yield _gauge("anxin_incidents_past_answer_target", "Unacknowledged incidents past their answer target",
                 seen.past_answer_target)  # fmt: skip
    yield _gauge("anxin_escalations_waiting", "Incidents escalated to supervisors, still unacknowledged",
                 seen.escalations_waiting)  # fmt: skip
    yield _gauge("anxin_incidents_needs_manual", "Open incidents waiting for an operator's dispatch",
                 seen.needs_manual)  # fmt: skip
    yield _gauge("anxin_drill_open_incidents", "Open incidents of drills", seen.drill_open)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


# -- the routes ---------------------------------------------------------------------------------------------

router = APIRouter(tags=["operations"])


def telemetry_of(request: Request) -> Telemetry:
    telemetry: Telemetry = request.app.state.telemetry
    return telemetry


def loopback(request: Request) -> bool:
    """Whether the peer (behind a believed proxy: the client it names) is on this machine."""
    host = request.client.host if request.client is not None else ""
    try:
        return ipaddress.ip_address(host.partition("%")[0]).is_loopback
    except ValueError:
        return False


async def scraper(request: Request, token: Annotated[str | None, Depends(oauth2)]) -> None:
    """Rule 5: the metrics token when set, else a loopback peer. Anyone else: 401 without a credential (or with
    one that is nobody's), 403 with a person's or a service key's (a login is not a scraper)."""
    expected = request.app.state.core.settings.metrics_token
    if expected is not None:
        if token is not None and hmac.compare_digest(token.encode(), expected.encode()):
            return
    elif loopback(request):
        return
    where = "the bearer metrics_token (ANXIN_METRICS_TOKEN)" if expected else "a loopback peer, or metrics_token set"
    if token is None:
        raise AuthError(f"/metrics needs {where}", code="metrics_token")
    await accounts_of(request).principal(token)  # nobody's: 401 as for any route
    raise Forbidden(f"/metrics is for a scraper: it needs {where}, not a login", code="metrics_scraper")


scraper.roles = ()  # type: ignore[attr-defined]  # read by the access matrix test: no role of a person
scraper.grant = None  # type: ignore[attr-defined]


@router.get("/metrics", dependencies=[Depends(scraper)], include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The Prometheus text format, built on the event loop (the projection is read between two awaits)."""
    return Response(telemetry_of(request).exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when the server can take alarms now, 503 with the failing checks otherwise (liveness: /healthz)."""
    checks = telemetry_of(request).readiness()
    ready = all(check.ok for check in checks)
    body = {"ready": ready, "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks}}
    if not ready:
        body["failing"] = [c.name for c in checks if not c.ok]
    return JSONResponse(body, 200 if ready else 503)
