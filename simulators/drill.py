"""``anxin drill SCENARIO``: run a scenario against a server, then score it from the journal.

Theory of operation
-------------------
A drill is four fleets driving a real server over its network interfaces, for the scenario's duration of
drill time run ``speedup`` times faster (docs/drills/README.md):

    devices (DC-09 TCP/UDP, watch, GT06)  ──► gateway ports     check-ins, SOS, falls, batteries, power cuts
    hotline callers                       ──► /api/hotline      known and unknown numbers, each with a script
    caregivers' phones                    ◄─► /ws/caregiver     shifts, offers accepted or not, visits, "done"
    operators                             ──► /api/calls        classify what the caller says, call back
                                          ──► /api/incidents    acknowledge, place, manual dispatch, decide,
                                                                settle

The callers and the operators share the drill's switchboard (:class:`simulators.scripts.Switchboard`):
a call's script is put on it before the phone rings, and the operator who classifies the call hears it
there (and writes down what came of it, for the scorecard).

Without ``--url`` the drill starts its own server (:mod:`simulators.embedded`: fresh data folder, seeded
city, timers at the drill's speed) and stops it afterwards. Every device it drives is registered as a drill
device and every call it places says ``drill: true``, so everything the drill causes is journaled with the
drill mark and left out of real statistics.

After the traffic the drill *drains*: it waits (up to ``drain`` of drill time) until every answered call
is classified and every person incident has someone at the door or a decision, then stops the fleets,
reads the journal from the point where the drill began, and scores it (:mod:`simulators.report`): a table
on stdout, ``scorecard.json`` and ``timeline.png`` in the output folder.

Exit status: 0 when the drill ran and nothing was lost (targets missed are results, not failures), 1 when
an acknowledged alarm or call is missing from the journal or a drill mark is missing, 2 when the drill
could not run.

Never
    Never import the server's packages; never send traffic anywhere but this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from simulators import cast, services
from simulators.api import Refused, api_client, call_api, login, pause
from simulators.bot import TECHNICAL_TYPES
from simulators.callers import CallPlan, CallRecord, call_stream
from simulators.caregivers import CaregiverSim, run_phones
from simulators.devices import Behaviour, DeviceFleet, DeviceSpec, Endpoints, FleetPlan
from simulators.embedded import EmbeddedServer, EmbeddedServerError
from simulators.operators import DeskPlan, OperatorDesk
from simulators.progress import ProgressBar
from simulators.report import build, table, write_json
from simulators.scenario import Scenario, ScenarioError, Shift, load
from simulators.scripts import Switchboard
from simulators.timeline import draw
from simulators.traffic import fetch_elders

log = logging.getLogger("anxin.sim.drill")

PENDING = frozenset({"received", "acknowledged", "dispatching", "assigned"})
SETTLE_WAIT_S = 60.0  # after the stop: the longest the fleets get to finish what they hold
ROUND_TICK_DRILL_S = 30.0  # the service round looks at the orders this often in drill time
ROUND_TICK_FLOOR_S = 0.25  # and never more often than this on the wall clock
INTEGRITY = ("alarms lost (acknowledged, not recorded)", "calls lost", "drill marks missing")


@dataclass(frozen=True, slots=True)
class Target:
    """The server a drill runs against."""

    url: str
    user: str
    password: str
    ports: dict[str, int]  # protocol -> gateway port (a protocol without a port gets no devices)
    embedded: bool
    devices_csv: Path | None = None  # the seeded city's devices (embedded only)


@dataclass(frozen=True, slots=True)
class Options:
    sim_caregivers: bool = True
    operators: bool = True
    progress: bool = True


@dataclass(slots=True)
class Crew:
    """Everything the drill drives, and what it keeps."""

    specs: list[DeviceSpec]
    phones: list[CaregiverSim]
    elders: list[dict[str, Any]]
    calls: list[CallRecord] = field(default_factory=list)
    switchboard: Switchboard = field(default_factory=Switchboard)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def run_drill(scenario: Scenario, target: Target, options: Options) -> dict[str, Any]:
    """Run ``scenario`` against ``target`` and return its scorecard."""
    rng = random.Random(scenario.seed)
    began = time.time()
    async with api_client(target.url) as anonymous:
        token = (await login(anonymous, target.user, target.password))["access_token"]
    async with api_client(target.url, token) as client:
        head = (await call_api(client, "GET", "/api/journal", stop=asyncio.Event(), params={"limit": 1}))["head"]
        crew = await _cast(client, scenario, target, rng)
        phones = await _phones(client, target, scenario, options, rng, crew.stop)
        t0 = time.time() + 2.0 + 0.1 * len(phones)  # the first shift's phones log in before the traffic
        crew.phones = cast.on_shift(phones, scenario, t0)
        fleet = DeviceFleet(
            crew.specs, Endpoints(urlsplit(target.url).hostname or "127.0.0.1", target.ports),
            _behaviour(scenario), _fleet_plan(scenario), seed=rng.getrandbits(32),
        )  # fmt: skip
        await _run(client, scenario, target, options, crew, fleet, token, t0)
        entries = await read_journal(client, head)
    until = entries[-1]["seq"] if entries else head
    run = {"server": "embedded" if target.embedded else target.url, "server_timers_scaled": target.embedded,
           "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)), "wall_s": round(time.time() - t0, 1),
           "setup_s": round(t0 - began, 1), "journal_after": head, "journal_until": until,
           "journal_entries": len(entries)}  # fmt: skip
    return build(scenario, alarms=fleet.tally.alarms, calls=crew.calls, entries=entries,
                 checkins=dict(fleet.tally.checkins), t0=t0, run=run)  # fmt: skip


async def _cast(client: httpx.AsyncClient, scenario: Scenario, target: Target, rng: random.Random) -> Crew:
    elders = await fetch_elders(client, asyncio.Event())
    if not elders:
        raise ScenarioError("the server has no elders registered: nothing to drill with")
    if target.devices_csv is not None:
        specs = cast.city_devices(target.devices_csv, scenario, rng)
    else:
        specs = cast.drill_devices(elders, scenario, rng)
    specs = [s for s in specs if s.protocol in target.ports]
    await cast.register_devices(client, specs, scenario.speedup, asyncio.Event())
    return Crew(specs=specs, phones=[], elders=elders)


async def _phones(
    client: httpx.AsyncClient,
    target: Target,
    scenario: Scenario,
    options: Options,
    rng: random.Random,
    stop: asyncio.Event,
) -> list[tuple[CaregiverSim, Shift]]:
    if not options.sim_caregivers:
        return []
    responders = (await call_api(client, "GET", "/api/responders", stop=stop))["responders"]
    plan = cast.shift_plan(responders, scenario, rng)
    return await cast.make_phones(client, target.url, plan, scenario, rng=rng, stop=stop)


def _behaviour(scenario: Scenario) -> Behaviour:
    d = scenario.devices
    return Behaviour(
        speedup=scenario.speedup, ack_timeout_s=d.ack_timeout, max_attempts=d.max_attempts,
        drain_per_hour=d.battery_drain_per_hour, low_battery_at=d.low_battery_at,
    )  # fmt: skip


def _fleet_plan(scenario: Scenario) -> FleetPlan:
    a, d = scenario.alarms, scenario.devices
    return FleetPlan(
        rates={"sos": a.sos_per_hour, "fall": a.fall_per_hour, "medical": a.medical_per_hour},
        bursts=tuple((b.at, b.share, b.within, b.restore_after) for b in scenario.mains_loss),
        silent_share=d.silent_share, silent_at=d.silent_at, silent_for=d.silent_for,
    )  # fmt: skip


async def _run(
    client: httpx.AsyncClient,
    scenario: Scenario,
    target: Target,
    options: Options,
    crew: Crew,
    fleet: DeviceFleet,
    token: str,
    t0: float,
) -> None:
    """Run every fleet from ``t0`` until the drill has drained, then stop them all (bounded)."""
    stop, s = crew.stop, scenario.speedup
    h = scenario.hotline
    calls = CallPlan(
        h.calls_per_hour, h.unknown_share, (h.answer.low, h.answer.high), (h.talk.low, h.talk.high), s,
        emergency_share=h.emergency_share,
    )  # fmt: skip
    tasks = [asyncio.create_task(run_phones(target.url, crew.phones, stop))] if crew.phones else []
    await pause(stop, t0 - time.time())
    tasks.append(asyncio.create_task(fleet.run(stop, duration=scenario.duration)))
    tasks.append(asyncio.create_task(
        call_stream(client, crew.elders, calls, duration=scenario.duration, seed=scenario.seed, stop=stop,
                    records=crew.calls, switchboard=crew.switchboard)))  # fmt: skip
    if scenario.services.orders_per_hour > 0 and crew.phones:
        played = [(p.responder_id or p.username, p.username, p.password) for p in crew.phones]
        tasks.append(asyncio.create_task(services.service_desk(
            target.url, token, played, stop=stop, seed=scenario.seed, plan=_service_plan(scenario))))  # fmt: skip
    if options.operators:
        plan = _desk_plan(scenario, drill_only=True)
        desk = OperatorDesk(target.url, token, plan, seed=scenario.seed, switchboard=crew.switchboard)
        tasks.append(asyncio.create_task(desk.run(stop)))
    bar = ProgressBar(f"drill {scenario.name}", (scenario.duration + scenario.drain) / s) if options.progress else None
    try:
        await _conduct(client, scenario, fleet, crew, t0, bar)
        if not target.embedded:  # while they still report, so that each is re-armed with the long interval
            await cast.retire_devices(client, crew.specs, stop)
    finally:
        stop.set()
        _done, late = await asyncio.wait(tasks, timeout=SETTLE_WAIT_S)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _service_plan(scenario: Scenario) -> services.DeskPlan:
    """The service desk of the scenario, on the wall clock: nothing is left for people in a drill, and the round
    looks at the orders every half minute of drill time (a 5-second wall tick is five minutes at 60x, longer
    than a short drill)."""
    v, s = scenario.services, scenario.speedup
    return services.DeskPlan(
        orders_per_hour=v.orders_per_hour * s, lead_s=(v.lead.low / s, v.lead.high / s), speedup=s,
        reached=v.reached, leave_orders=0.0, leave_follow_ups=0.0, drill=True,
        tick_s=min(services.TICK_S, max(ROUND_TICK_FLOOR_S, ROUND_TICK_DRILL_S / s)),
    )  # fmt: skip


def _desk_plan(scenario: Scenario, *, drill_only: bool) -> DeskPlan:
    o = scenario.operators
    return DeskPlan(
        count=o.count, acknowledge=(o.acknowledge.low, o.acknowledge.high), settle=(o.settle.low, o.settle.high),
        settle_after=o.settle_after, manual=(o.manual.low, o.manual.high), escalated_for=o.escalated_for,
        classify=(o.classify.low, o.classify.high), decide=(o.decide.low, o.decide.high),
        callback=(o.callback.low, o.callback.high), callback_after=o.callback_after,
        speedup=scenario.speedup, drill_only=drill_only,
    )  # fmt: skip


async def _conduct(
    client: httpx.AsyncClient, scenario: Scenario, fleet: DeviceFleet, crew: Crew, t0: float, bar: ProgressBar | None
) -> None:
    """Show progress through the traffic, then drain until nothing is pending or the drain time is up."""
    s = scenario.speedup
    traffic_end, drain_end = t0 + scenario.duration / s, t0 + (scenario.duration + scenario.drain) / s
    pending: int | None = None
    while (now := time.time()) < drain_end:
        if now >= traffic_end:
            pending = await _pending(client, crew.stop)
            if pending == 0:
                break
        if bar is not None:
            bar.update(now - t0, _note(scenario, fleet, crew, (now - t0) * s, pending))
        await asyncio.sleep(0.5)
    if bar is not None:
        bar.finish(_note(scenario, fleet, crew, (time.time() - t0) * s, pending))


def _note(scenario: Scenario, fleet: DeviceFleet, crew: Crew, drill_s: float, pending: int | None) -> str:
    alarms = [a for a in fleet.tally.alarms if a.kind != "restore"]
    acked = sum(a.acknowledged for a in alarms)
    phase = "traffic" if drill_s < scenario.duration else f"draining, {pending} pending"
    return (
        f"{_mmss(drill_s)}/{_mmss(scenario.duration)} drill time ({phase}) | alarms {acked}/{len(alarms)} acked"
        f" | calls {len(crew.calls)}"
    )


def _mmss(seconds: float) -> str:
    return f"{int(seconds // 60):d}:{int(seconds % 60):02d}"


async def _pending(client: httpx.AsyncClient, stop: asyncio.Event) -> int:
    """Drill calls answered and not yet classified (an emergency among them has no incident yet), and drill
    person incidents still waiting for someone to reach the door or for a decision."""
    try:
        answer = await call_api(client, "GET", "/api/incidents", stop=stop, params={"open": "true", "limit": 5000})
        calls = await call_api(client, "GET", "/api/calls", stop=stop, params={"open": "true", "limit": 5000})
    except Refused:
        return -1
    if answer is None or calls is None:
        return 0
    unheard = sum(1 for c in calls["calls"] if c["drill"] and c["answered_at"] is not None and c["kind"] is None)
    return unheard + sum(
        1
        for i in answer["incidents"]
        if i["drill"] and i["alarm_type"] not in TECHNICAL_TYPES and i["state"] in PENDING
    )


async def read_journal(client: httpx.AsyncClient, after: int) -> list[dict[str, Any]]:
    """Every journal entry after ``after``, page by page."""
    entries: list[dict[str, Any]] = []
    while True:
        page = await call_api(
            client, "GET", "/api/journal", stop=asyncio.Event(), params={"after": after, "limit": 5000}
        )
        entries += page["entries"]
        if not page["entries"]:
            return entries
        after = page["next_after"]


# -- the command --------------------------------------------------------------------------------------------


def run_drill_command(args: argparse.Namespace) -> int:
    """``anxin drill SCENARIO [--url URL] [--data DIR] [--out DIR] [--speedup X] [--seed N] ...``."""
    if not getattr(args, "verbose", False):
        for name in ("anxin.sim", "websockets", "httpx"):
            logging.getLogger(name).setLevel(logging.ERROR)  # the scorecard says what went wrong
    try:
        scenario = load(args.scenario)
        if args.speedup is not None:
            scenario = scenario.with_speedup(args.speedup)
        if args.seed is not None:
            scenario = scenario.with_seed(args.seed)
        options = Options(sim_caregivers=args.url is None or args.sim_caregivers, operators=not args.no_operators,
                          progress=not args.quiet)  # fmt: skip
        if args.url is None:
            card = run_embedded(scenario, args.data, options)
        else:
            card = asyncio.run(run_drill(scenario, _remote(args, scenario), options))
    except (ScenarioError, EmbeddedServerError, Refused, httpx.HTTPError, OSError) as exc:
        print(f"anxin drill: {exc}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else default_out(scenario.name)
    write_json(card, out / "scorecard.json")
    draw(card, out / "timeline.png")
    print(table(card))
    print(f"\nscorecard: {out / 'scorecard.json'}\ntimeline:  {out / 'timeline.png'}")
    broken = [row for row in card["verdict"] if row["figure"] in INTEGRITY and not row["met"]]
    return 1 if broken else 0


def default_out(name: str) -> Path:
    """``docs/drills/NAME`` when run from the repository, else ``drill-out/NAME``."""
    repo = Path("docs/drills").is_dir() and Path("simulators/scenarios").is_dir()
    return Path("docs/drills" if repo else "drill-out") / name


def run_embedded(scenario: Scenario, data: Path | None, options: Options) -> dict[str, Any]:
    """Seed a fresh data folder, start ``anxin serve`` on free ports, run the drill, stop the server."""
    # without a data folder: a scratch one, a level down so the chain's key and checkpoints beside it go with it
    scratch = Path(tempfile.mkdtemp(prefix="anxin-drill-")) if data is None else None
    folder = scratch / "data" if scratch is not None else data
    assert folder is not None
    server = EmbeddedServer(folder, scenario)
    try:
        if options.progress:
            print(f"drill {scenario.name}: seeding a city and starting a server in {folder}", file=sys.stderr)
        server.prepare()
        server.start()
        target = Target(server.url, "admin", server.admin_password, server.ports, True, server.files["devices"])
        return asyncio.run(run_drill(scenario, target, options))
    finally:
        server.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _remote(args: argparse.Namespace, scenario: Scenario) -> Target:
    url = args.url.rstrip("/")
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ScenarioError(f"drills only run against this machine (loopback), not {host}")
    password = args.password or os.environ.get("ANXIN_DRILL_PASSWORD") or os.environ.get("ANXIN_ADMIN_PASSWORD")
    if not password:
        raise ScenarioError("give --password (or ANXIN_DRILL_PASSWORD) for the drill's admin account")
    ports: dict[str, int] = {}
    for protocol, name, default in (("sia-dc09", "dc09", 9100), ("watch", "watch", 9101), ("gt06", "gt06", 9102)):
        value = getattr(args, f"{name}_port", None) or os.environ.get(f"ANXIN_{name.upper()}_PORT") or str(default)
        if value.strip().lower() not in ("off", "none", ""):
            ports[protocol] = int(value)
    if scenario.speedup != 1 and not args.quiet:
        print(
            f"anxin drill: the server's own timers (answer target, offer expiry) run in real time; at ×"
            f"{scenario.speedup:g} they last {scenario.speedup:g} times longer in drill time (use --speedup 1 for a"
            " faithful drill)",
            file=sys.stderr,
        )
    user = args.user or os.environ.get("ANXIN_DRILL_USER") or "admin"
    return Target(url, user, password, ports, embedded=False)
