"""``anxin demo``: a seeded demo city, the server, and simulated devices, alarms, calls and caregivers.

The first run generates Longwen district (龙文区, Zhangzhou) into ``DATA/seed/`` and imports it, and creates
the demo accounts; later runs reuse the folder (the journal keeps growing, as in production). The fleets
talk to the server over its network interfaces only, as real devices, phones and telephony would: the
city's own pendants, watches and trackers (their ids and AES keys from ``DATA/seed/devices.csv``) check in
on the gateway ports at their registered intervals and send most of the alarms; hotline calls and the rest
of the alarms come over HTTP. The devices connect lazily, at their first report, so startup stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
from collections.abc import Sequence

import aiosqlite
import httpx

from anxin.cli import ListeningServer, check_data_folder, run_import
from console.auth import Accounts, Role
from dispatch.clock import SystemClock
from dispatch.core import DataLock, open_registry
from dispatch.registry import Responder
from dispatch.settings import Settings
from gateway.registry import protocols
from simulators import city
from simulators.api import api_client
from simulators.caregivers import caregiver_fleet
from simulators.devices import Behaviour, DeviceFleet, Endpoints, FleetPlan, read_city_devices
from simulators.embedded import FLEET_PER_ADDRESS
from simulators.pbx import Pbx
from simulators.pbxcalls import PbxHotline
from simulators.services import DeskPlan, seed_plans, service_desk
from simulators.traffic import HOTLINE_LINE, alarm_stream, operator_bot

DEMO_PASSWORD = "anxin-demo"
BOT = "bot"  # the simulated operator's own account: "operator" is left to the person trying the demo
# What the simulated operator leaves to the person at the console (chosen by id). At the default 6 events a
# minute (about 7.5 new incidents and 0.4 hotline calls a minute) that is an incident every 4 to 5 minutes and a
# call every 5: one a person can work every 2 to 3 minutes; those nobody acknowledges reach the supervisor.
LEFT_FOR_PEOPLE = 0.03  # of the new incidents
CALLS_LEFT_FOR_PEOPLE = 0.5  # of the hotline calls (an emergency a person classifies opens their own incident)
#: the service desk beside the alarms: an order every 5 minutes besides those asked for on calls, a service's
#: minutes passing 10 times faster than the clock (a 30-minute meal delivery is checked out 3 minutes after the
#: check-in), 15 % of the orders and 30 % of the follow-ups left for people (simulators.services)
DESK = DeskPlan(orders_per_hour=12.0, speedup=10.0, care_calls=True)
CONTRACTED_STAFF = 6  # the contracted home-services company's cleaners and repairers (dispatch/catalogue.toml)
#: the demo's clinic desk account, bound to the city's first clinic with a green channel
CLINIC_DESK = "clinic"
DEVICE_SHARE = 2 / 3  # of the demo's alarm rate, sent by devices through the gateway (the rest over HTTP)


def fleet_on_loopback() -> None:
    """The demo's simulated devices all connect from 127.0.0.1, as a fleet behind one carrier NAT does: unless
    the environment says otherwise, one address may hold any number of device connections (the default, 256 per
    listener, would turn most of the demo city's 2,000 devices away and flood the console with missed check-ins)."""
    os.environ.setdefault("ANXIN_DEVICE_MAX_PER_ADDRESS", str(FLEET_PER_ADDRESS))


DEVICE_MIX = {"sos": 0.65, "fall": 0.25, "medical": 0.10}
#: the demo's PBX (docs/telephony.md): a simulated Asterisk the server logs in to over AMI, as it would to a real
#: one; the desks' extensions. The person at the console answers at 8101, the bot at 8109.
PBX_USER = "anxin"
EXTENSIONS = {"8101": "operator", "8102": "lantian", "8103": "supervisor", "8109": BOT}
PERSON_EXTENSION, STREET_EXTENSION, BOT_EXTENSION = "8101", "8102", "8109"
log = logging.getLogger("anxin.demo")
#: the demo's people at the centre: (username, role, name, scopes); one operator sees one street only
STREET = "龙文区/蓝田街道"
STAFF: tuple[tuple[str, Role, str, tuple[str, ...]], ...] = (
    ("operator", "operator", "李娜", ("*",)),
    ("supervisor", "supervisor", "张伟", ("*",)),
    ("lantian", "operator", "陈静", (STREET,)),
    (BOT, "operator", "模拟接线员", ("*",)),
    ("assessor", "assessor", "周敏", ("*",)),
)


async def seed(settings: Settings) -> tuple[list[tuple[str, str]], str]:
    """Seed the demo city once; return the simulated caregivers' (username, password) pairs, and the one
    caregiver left for a person to play on a phone."""
    settings.data.mkdir(parents=True, exist_ok=True)
    db, registry = await open_registry(settings)
    try:
        empty = not await registry.elder_ids()
    finally:
        await db.close()
    if empty:
        files = city.generate(settings.data / "seed", contracted=CONTRACTED_STAFF)
        report = await run_import(settings, **files)
        print(report.summary(), flush=True)
    db, registry = await open_registry(settings)
    try:
        responders = await registry.responders()
    finally:
        await db.close()
    return await demo_accounts(settings, responders)


async def demo_accounts(settings: Settings, responders: Sequence[Responder]) -> tuple[list[tuple[str, str]], str]:
    """The demo's accounts in the data folder, once: :data:`STAFF` and one per caregiver and volunteer. The
    simulated caregivers' (username, password) pairs, and the one caregiver left for a person to play."""
    lock = DataLock(settings.data)
    lock.acquire()
    db, _ = await open_registry(settings)
    try:
        return await make_demo_accounts(db, settings, responders)
    finally:
        await db.close()
        lock.release()


async def make_demo_accounts(
    db: aiosqlite.Connection, settings: Settings, responders: Sequence[Responder]
) -> tuple[list[tuple[str, str]], str]:
    """:func:`demo_accounts` on an open connection (a cluster's: dispatch.pgcompat)."""
    accounts = Accounts(db, SystemClock(), token_ttl_s=settings.token_ttl_s)
    await accounts.create_schema()
    for username, role, name, scopes in STAFF:
        if not await accounts.exists(username):
            await accounts.create(username, DEMO_PASSWORD, role, name=name, scopes=scopes)
    people = sorted((r for r in responders if r.kind != "clinic"), key=lambda r: r.responder_id)
    for responder in people:
        if not await accounts.exists(responder.responder_id):
            await accounts.create(responder.responder_id, DEMO_PASSWORD, "caregiver", responder.responder_id)
    desk = next((r for r in responders if r.kind == "clinic" and r.green_channel), None)
    if desk is not None and not await accounts.exists(CLINIC_DESK):  # the referrals' other end (/clinic)
        await accounts.create(CLINIC_DESK, DEMO_PASSWORD, "clinic", desk.responder_id, name=desk.name)
    person = next(r.responder_id for r in people if r.kind == "caregiver")
    return [(r.responder_id, DEMO_PASSWORD) for r in people if r.responder_id != person], person


async def simulated_pbx(settings: Settings) -> tuple[Pbx, Settings]:
    """A simulated Asterisk on a free loopback port, and the settings that link the server to it (a secret of
    this run's own)."""
    secret = secrets.token_urlsafe(18)
    pbx = Pbx(username=PBX_USER, secret=secret, line=HOTLINE_LINE)
    pbx.step_delay = 3.0  # a call an operator places rings and is answered at a person's pace
    port = await pbx.start("127.0.0.1", 0)
    linked = settings.model_copy(
        update={
            "pbx_host": "127.0.0.1", "pbx_port": port, "pbx_username": PBX_USER, "pbx_secret": secret,
            "pbx_extensions": EXTENSIONS, "pbx_caller_id": HOTLINE_LINE,
        }
    )  # fmt: skip
    return pbx, linked


async def run_demo(settings: Settings, *, alarms_per_min: float) -> int:
    """Seed, serve, drive. A start-up problem (a data folder that cannot be written, a port in use) is raised
    as one ConfigError line before any address is printed. Without a PBX of its own in the settings, the demo
    runs a simulated one and its hotline calls come through it."""
    check_data_folder(settings.data)
    caregivers, person = await seed(settings)
    pbx: Pbx | None = None
    if not settings.pbx_host:
        pbx, settings = await simulated_pbx(settings)
    try:
        return await _serve_demo(settings, caregivers, person, pbx, alarms_per_min=alarms_per_min)
    finally:
        if pbx is not None:
            await pbx.close()


async def _serve_demo(
    settings: Settings, caregivers: list[tuple[str, str]], person: str, pbx: Pbx | None, *, alarms_per_min: float
) -> int:
    listening = asyncio.Event()
    urls: list[str] = []

    def ready(url: str) -> None:
        urls.append(url)
        listening.set()

    server = ListeningServer(settings, ready)
    serving = asyncio.create_task(server.listen())
    waiting = asyncio.create_task(listening.wait())
    await asyncio.wait((serving, waiting), return_when=asyncio.FIRST_COMPLETED)
    if not listening.is_set():
        waiting.cancel()
        await serving  # raises the start-up problem
        return 2
    base = urls[0]
    print(
        f"\nAnxin demo is running.\n"
        f"  operator console  {base}/console     operator / {DEMO_PASSWORD}\n"
        f"  supervisor view   {base}/supervisor  supervisor / {DEMO_PASSWORD}\n"
        f"  service desk      {base}/services    operator / {DEMO_PASSWORD} (orders, follow-ups; /statements)\n"
        f"  street operator   {base}/console     lantian / {DEMO_PASSWORD} (sees {STREET} only)\n"
        f"  caregiver phone   {base}/m           {person} / {DEMO_PASSWORD} (no simulator plays this one)\n"
        f"  administrator     {base}/accounts    admin / {DEMO_PASSWORD} (accounts and keys; the API at /docs)\n"
        f"  clinic desk       {base}/clinic      {CLINIC_DESK} / {DEMO_PASSWORD} (its referrals, green channel)\n"
        f"  needs assessor    {base}/assess      assessor / {DEMO_PASSWORD} (who is due, the MZ/T 039 form)\n"
        f"  registry          {base}/registry    operator / {DEMO_PASSWORD} (enrol, bind, test-call; supervisor:"
        f" leaving care, merging)\n"
        f"  an elder's file   {base}/elder?id=e00001  (from the console's record or a search hit; timeline, PDF)\n"
        f"  period reports    {base}/reports     supervisor / {DEMO_PASSWORD} (the month by community; CSV, Excel,"
        f" PDF)\n"
        f"  engineer on call  {base}/readyz  {base}/metrics (from this machine; docs/operations.md)\n"
        f"{pbx_lines(settings, pbx)}"
        f"  the simulated operator works as '{BOT}' and leaves you {LEFT_FOR_PEOPLE:.0%} of the incidents and\n"
        f"  {CALLS_LEFT_FOR_PEOPLE:.0%} of the calls; it never touches one you opened, acknowledged or worked on;\n"
        f"  the simulated caregivers answer the rest.\n"
        f"  care calls        {base}/care-calls  五定 plans {base}/plans  duty and handover {base}/duty\n"
        f"  the simulated desk orders a service every {60 / DESK.orders_per_hour:.0f} minutes, leaves you"
        f" {DESK.leave_orders:.0%} of them to place,\n"
        f"  {DESK.leave_follow_ups:.0%} of the follow-ups (回访) and {DESK.leave_care_calls:.0%} of today's care calls;"
        f" daily meal plans run, one at noon\n"
        f"  for the phone's caregiver ({person}).\n"
        f"  Stop with Ctrl-C.\n",
        flush=True,
    )
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.post("/api/auth/token", data={"username": BOT, "password": DEMO_PASSWORD})
        response.raise_for_status()
        token = response.json()["access_token"]
    stop = asyncio.Event()
    played = [(username, username, password) for username, password in caregivers]  # the responder's own id
    async with api_client(base, token) as client:  # a few daily 五定 meal plans, once
        await seed_plans(client, [username for username, _ in caregivers], person, stop)
    devices = device_fleet(settings, alarms_per_min * DEVICE_SHARE)
    ring = None
    if pbx is not None:  # the hotline's calls ring on the PBX, which the server follows
        desks = PbxHotline(pbx, PERSON_EXTENSION, BOT_EXTENSION, STREET_EXTENSION, CALLS_LEFT_FOR_PEOPLE)
        ring = desks.ring
    http_rate = alarms_per_min * (1 - DEVICE_SHARE) if devices is not None else alarms_per_min
    fleets = [
        asyncio.create_task(caregiver_fleet(base, caregivers, seed=11, stop=stop)),
        asyncio.create_task(alarm_stream(base, token, rate_per_min=http_rate, seed=5, stop=stop, ring=ring)),
        asyncio.create_task(
            operator_bot(base, token, stop=stop, leave_share=LEFT_FOR_PEOPLE, leave_calls=CALLS_LEFT_FOR_PEOPLE)
        ),
        asyncio.create_task(service_desk(base, token, played, stop=stop, seed=17, plan=DESK)),
    ]
    if devices is not None:
        fleets.append(asyncio.create_task(devices.run(stop)))
    try:
        await serving
    finally:
        stop.set()
        for task in fleets:
            task.cancel()
        for task in fleets:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    return 0


def device_fleet(settings: Settings, alarms_per_min: float) -> DeviceFleet | None:
    """The demo city's own devices on the gateway ports, real time, or None when there is nothing to drive."""
    seed_devices = settings.data / "seed" / "devices.csv"
    ports = {
        spec.name: port
        for spec in protocols().values()
        if (port := settings.device_port(spec.option, spec.default_port))
    }
    if not seed_devices.exists() or not ports:
        log.info("no device fleet: %s", "no seeded devices" if ports else "every device port is off")
        return None
    specs = [s for s in read_city_devices(seed_devices, rng=random.Random(3), udp_share=0.1) if s.protocol in ports]
    per_hour = {kind: share * alarms_per_min * 60 for kind, share in DEVICE_MIX.items()}
    print(f"  {len(specs)} simulated devices report on the gateway ports {sorted(ports.values())}\n", flush=True)
    return DeviceFleet(specs, Endpoints("127.0.0.1", ports), Behaviour(speedup=1.0), FleetPlan(per_hour), seed=13)


def pbx_lines(settings: Settings, pbx: Pbx | None) -> str:
    """What the demo's banner says of the phone system."""
    if pbx is None:
        if settings.pbx_host:
            return f"  hotline PBX       {settings.pbx_host}:{settings.pbx_port} (AMI, docs/telephony.md)\n"
        return ""
    desks = ", ".join(f"{ext} {user}" for ext, user in EXTENSIONS.items())
    return (
        f"  hotline PBX       a simulated Asterisk, AMI on {settings.pbx_host}:{settings.pbx_port}; desks {desks};\n"
        f"  its calls pop on the consoles; 拨打 beside a number calls back through it (docs/telephony.md)\n"
    )
