"""The period report against a brute-force recomputation from the raw journal.

A month (November 2026, Asia/Shanghai) and a day either side of it is generated through the real engine on a
real SQLite file, with a manual clock: device and API alarms of several types, hotline calls from elders and
from a stranger on a street's line, answered early, at exactly 60 s, late or never; offers accepted, declined
and left to expire; responders en route, on scene and done; false alarms (some closed afterwards), hand-overs to
120 (some resolved afterwards), incidents left open; low batteries and missed check-ins (grouped by street);
drills; a device's test call; service orders delivered, cancelled or not found at home; follow-ups reached
with a satisfaction, with a complaint, or never reached. Events are placed seconds before and after the
period's local midnights and in four communities of three streets and two districts.

Then every figure is recomputed here from the journal's entries read back as plain dicts (kind, ts, incident
id, drill and the body), with this file's own arithmetic -- not the projection, not the report's helpers -- and
compared with the report for each ``by``, with and without drills, for the whole centre and for a supervisor
of one street. No timing is asserted.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import random
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from dispatch.clock import ManualClock
from dispatch.commands import AlarmRequest, CallEvent, Classification
from dispatch.core import Core, open_core
from dispatch.devices import DeviceReport
from dispatch.engine import Engine
from dispatch.entries import CallKind
from dispatch.errors import InvalidInput
from dispatch.machines import AssignmentState
from dispatch.periodreport import Pace, period_of, run
from dispatch.registry import Device
from dispatch.reportcsv import flat
from dispatch.scopes import Reach
from tests.conftest import elder, engine_of, responder, seed, settings_for

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
START = datetime(2026, 11, 1, tzinfo=ZONE).timestamp()
END = datetime(2026, 12, 1, tzinfo=ZONE).timestamp()
COMMUNITIES = {
    "lt": ("龙文区/蓝田街道/蓝田社区", (24.5100, 117.7000)),
    "hb": ("龙文区/蓝田街道/湖滨社区", (24.5150, 117.7050)),
    "cy": ("龙文区/朝阳街道/朝阳社区", (24.5400, 117.7400)),
    "dp": ("芗城区/东铺头街道/东铺社区", (24.5200, 117.6600)),
}
LINE, LINE_PLACE = "12349", "龙文区/朝阳街道"  # a stranger calling on this line is this street's
ONE_STREET = "龙文区/蓝田街道"
OUTCOMES = ("resolved", "false_alarm", "to_120", "to_110", "to_119", "open")
NAMES = ("王秀英", "李桂兰", "张玉珍", "刘凤英", "陈淑珍", "杨桂英", "赵秀兰", "黄玉兰")


@dataclass
class City:
    elders: dict[str, str] = field(default_factory=dict)  # elder id -> community
    phones: dict[str, str] = field(default_factory=dict)  # elder id -> phone
    devices: dict[str, tuple[str, str]] = field(default_factory=dict)  # elder id -> (device id, protocol)
    responders: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id -> (name, kind, community)


def _city() -> tuple[City, list[Any], list[Any], list[Device]]:
    city, elders, responders, devices = City(), [], [], []
    for n, (key, (community, (lat, lon))) in enumerate(COMMUNITIES.items()):
        for k in range(2):
            eid, phone = f"e_{key}{k}", f"135059{n}{k}0001"
            home = (lat + 0.001 * k, lon + 0.001 * k)
            elders.append(elder(eid, name=NAMES[2 * n + k], phone=phone, lat=home[0], lon=home[1],
                                community=community, address=f"{community}{k + 1}号"))  # fmt: skip
            city.elders[eid], city.phones[eid] = community, phone
            protocol = "sia-dc09" if k == 0 else "watch"
            device_id = f"{4000 + 10 * n + k}" if k == 0 else f"88000000{n}{k}"
            devices.append(Device(device_id=device_id, protocol=protocol, elder_id=eid, checkin_s=7 * 86400))
            city.devices[eid] = (device_id, protocol)
            rid = f"c_{key}{k}"
            responders.append(responder(rid, home[0] + 0.002, home[1], community=community, name=f"护理员{key}{k}"))
            city.responders[rid] = (f"护理员{key}{k}", "caregiver", community)
    return city, elders, responders, devices


@pytest.fixture
async def month(tmp_path: Path) -> AsyncIterator[tuple[Core, City]]:
    city, elders, responders, devices = _city()
    settings = settings_for(tmp_path / "data", lines={LINE: LINE_PLACE}, position_stale_s=60 * 86400.0)
    await seed(settings, elders=elders, responders=responders, devices=devices)
    clock = ManualClock(START - 36 * 3600)
    core = await open_core(settings, clock, protocols=("sia-dc09", "watch"))
    core.intake.start()
    try:
        await Month(core, clock, city, random.Random(17)).run()
        yield core, city
    finally:
        await core.close()


# -- the generator ----------------------------------------------------------------------------------------


class Month:
    """Drives the engine through the month: episodes one after another, each at its time."""

    def __init__(self, core: Core, clock: ManualClock, city: City, rng: random.Random) -> None:
        self.core, self.engine, self.clock, self.city, self.rng = core, engine_of(core), clock, city, rng
        self.serial = itertools.count(1)
        self.tested = False

    async def later(self, seconds: float) -> None:
        self.clock.advance(max(seconds, 0.0))
        await self.engine.tick()

    async def until(self, ts: float) -> None:
        await self.later(ts - self.clock.now())

    async def run(self) -> None:
        for rid, (_, _, _) in self.city.responders.items():
            profile = self.engine.directory.responders[rid]
            await self.engine.set_duty(rid, True, actor=f"caregiver:{rid}", lat=profile.lat, lon=profile.lon)
        for ts, what in self.schedule():
            if ts > self.clock.now():
                await self.until(ts)
            await what()
        await self.later(3600)

    def schedule(self) -> list[tuple[float, Any]]:
        """Episodes at random times, and at the edges: seconds around the period's midnights and two inside."""
        rng = self.rng
        inner = [datetime(2026, 11, d, tzinfo=ZONE).timestamp() for d in (2, 16)]
        edges = [START, END, *inner]
        sharp: list[tuple[float, Any]] = [(edge - 60, lambda edge=edge: self.edge(edge)) for edge in edges]
        sharp += [(START - 3 * 3600, lambda: self.alarm(drill=True)), (END - 3 * 3600, lambda: self.alarm(drill=True))]
        sharp += [(START + 3 * 86400, self.test_call), (END + 3600, self.follow_ups)]
        sharp += [(END - 2 * 86400 + 600 * n, lambda: self.alarm(fate="open")) for n in range(2)]
        kinds = [self.alarm] * 6 + [self.call] * 5 + [self.order] * 3 + [self.technical] + [self.follow_ups] * 3
        spread: list[tuple[float, Any]] = []
        ts = START - 30 * 3600
        while ts < END + 20 * 3600:
            ts += rng.uniform(1.5, 4.5) * 3600
            if not any(edge - 5 * 3600 < ts < edge + 3600 for edge in edges) and abs(ts - START - 3 * 86400) > 5 * 3600:
                spread.append((ts, rng.choice(kinds)))
        return sorted(sharp + spread, key=lambda p: p[0])

    # -- incidents ----------------------------------------------------------------------------------------

    def open_of(self, elder_id: str, drill: bool) -> str | None:
        return self.engine.state.open_by_elder.get((elder_id, drill))

    async def edge(self, edge: float) -> None:
        """Alarms and calls seconds either side of a local midnight, answered at once; then worked as usual."""
        free = [e for e in sorted(self.city.elders) if self.open_of(e, False) is None]  # no open incident to join
        first, second = self.rng.sample(free, 2)
        incidents, calls = [], []

        async def ring(at: float, eid: str) -> None:
            await self.until(at)
            call_id, phone = f"call-{next(self.serial)}", self.city.phones[eid]
            await self.core.intake.call(CallEvent("ringing", call_id, phone, "12345", "service:hotline"))
            await self.later(1)
            await self.core.intake.call(CallEvent("answered", call_id, phone, "12345", "operator:o1"))
            calls.append((call_id, phone))

        await ring(edge - 4, first)
        for at, eid in ((edge - 1, first), (edge, second)):  # the last second of a day, and the next's first
            await self.until(at)
            await self.core.intake.alarm(AlarmRequest(self.rng.choice(["sos", "fall"]), "operator:o1", "api",
                                                      elder_id=eid))  # fmt: skip
            incident_id = self.open_of(eid, False)
            assert incident_id is not None
            incidents.append(incident_id)
        await self.later(1)
        for incident_id in incidents:
            await self.act(self.engine.acknowledge(incident_id, actor="operator:o1"))
        await ring(edge + 2, second)
        for call_id, phone in calls:
            await self.act(self.engine.classify_call(Classification(call_id, "consultation", "operator:o1", "问问")))
            await self.core.intake.call(CallEvent("ended", call_id, phone, "12345", "service:hotline"))
        for incident_id in incidents:
            await self.work(incident_id, quick=True)

    async def alarm(self, *, drill: bool | None = None, fate: str | None = None) -> None:
        rng = self.rng
        eid = rng.choice(sorted(self.city.elders))
        drill = rng.random() < 0.08 if drill is None else drill
        night = rng.random() < 0.15  # nobody on duty when it comes: the first offer waits for the next shift
        if night:
            for rid in self.city.responders:
                await self.act(self.engine.set_duty(rid, False, actor=f"caregiver:{rid}"))
        kind = rng.choice(["sos", "sos", "fall", "medical", "inactivity", "sos"])
        device_id, protocol = self.city.devices[eid]
        n = next(self.serial)
        if not drill and rng.random() < 0.45:
            await self.core.intake.devices([DeviceReport(protocol, device_id, "alarm", "CID:1101", alarm_type=kind,
                                                         dedup=f"{device_id}-{n}")])  # fmt: skip
        else:
            source = rng.choice(["api", "operator", "api"])
            await self.core.intake.alarm(AlarmRequest(kind, "operator:o1", source, elder_id=eid, drill=drill))
        if night:
            await self.later(rng.uniform(40, 400))
            for rid in self.city.responders:
                profile = self.engine.directory.responders[rid]
                await self.engine.set_duty(rid, True, actor=f"caregiver:{rid}", lat=profile.lat, lon=profile.lon)
        incident_id = self.open_of(eid, drill)
        if incident_id is not None:
            await self.work(incident_id, fate=fate)

    async def work(self, incident_id: str, *, quick: bool = False, fate: str | None = None) -> None:
        """Answer (or not), offers replied to, the visit, and the operator's decision."""
        rng = self.rng
        opened = self.engine.state.incidents[incident_id].opened_at
        ack = rng.choices([rng.uniform(2, 59), 60.0, rng.uniform(61, 179), rng.uniform(181, 600), None],
                          [55, 5, 20, 10, 10])[0]  # fmt: skip
        if quick:
            ack = rng.uniform(1, 3)
        fate = fate or rng.choices(["resolved", "false_alarm", "to_120", "open"], [65, 12, 10, 13])[0]
        if fate == "open" and self.clock.now() < END - 3 * 86400:
            fate = "resolved"  # left open only near the end: an open job keeps its responder busy
        if ack is not None and ack < 15:
            await self.until(opened + ack)
            await self.act(self.engine.acknowledge(incident_id, actor="operator:o1"))
        accepted = await self.offers(incident_id, give_up=fate == "open" and rng.random() < 0.5)
        if ack is not None and ack >= 15:
            await self.until(opened + ack)
            await self.act(self.engine.acknowledge(incident_id, actor="operator:o1"))
        if fate == "false_alarm":
            await self.later(rng.uniform(30, 600))
            await self.act(self.engine.cancel(incident_id, "误报：按错了", actor="operator:o1"))
            if rng.random() < 0.6:
                await self.later(rng.uniform(10, 300))
                await self.act(self.engine.close(incident_id, actor="operator:o1"))
            return
        if fate == "to_120" and rng.random() < 0.4:
            await self.later(rng.uniform(20, 200))
            await self.act(self.engine.escalate(incident_id, "120", "老人胸痛", actor="operator:o1"))
        if accepted is not None:
            await self.visit(accepted, fate == "open")
        if fate == "to_120" and self.engine.state.incidents[incident_id].escalated_to is None:
            await self.act(self.engine.escalate(incident_id, "120", "送医", actor="operator:o1"))
        if fate == "open":
            return
        await self.later(rng.uniform(30, 300))
        await self.act(self.engine.resolve(incident_id, "已处理", actor="operator:o1"))
        if rng.random() < 0.8:
            await self.later(rng.uniform(10, 120))
            await self.act(self.engine.close(incident_id, actor="operator:o1"))

    async def offers(self, incident_id: str, *, give_up: bool) -> tuple[str, str] | None:
        """Up to four rounds of replies to the incident's pending offers: accept, decline or let expire."""
        for _ in range(4):
            await self.later(self.rng.uniform(3, 25))
            pending = [a for a in self.engine.state.active_assignments(self.engine.state.incidents[incident_id])
                       if a.state is AssignmentState.OFFERED]  # fmt: skip
            if not pending:
                return None
            offer = pending[0]
            choice = "decline" if give_up else self.rng.choices(["accept", "decline", "expire"], [70, 15, 15])[0]
            if choice == "expire":
                await self.until(offer.deadline + 1)
                continue
            accept = choice == "accept"
            done = await self.act(self.engine.reply_offer(offer.assignment_id, offer.responder_id, accept))
            if accept and done:
                return offer.assignment_id, offer.responder_id
        return None

    async def visit(self, accepted: tuple[str, str], stay: bool) -> None:
        assignment_id, rid = accepted
        steps = [("en_route", 20, 90), ("on_scene", 200, 1500)] + ([] if stay else [("done", 300, 1800)])
        for status, low, high in steps:
            await self.later(self.rng.uniform(low, high))
            if not await self.act(self.engine.report_status(assignment_id, rid, status, f"{status} 备注")):
                return

    async def act(self, command: Any) -> bool:
        """A command the engine may refuse for the state the generator's dice left the incident in."""
        try:
            await command
        except InvalidInput:
            return False
        return True

    async def technical(self) -> None:
        eid = self.rng.choice(sorted(self.city.elders))
        device_id, protocol = self.city.devices[eid]
        n = next(self.serial)
        low = DeviceReport(protocol, device_id, "alarm", "CID:1302", alarm_type="low_battery", dedup=f"lb-{n}")
        await self.core.intake.devices([low])
        if self.rng.random() < 0.5:
            await self.later(600)
            for incident in list(self.engine.state.incidents.values()):
                if incident.technical and incident.open and incident.group is None:
                    await self.act(self.engine.resolve(incident.incident_id, "已换电池", actor="operator:o1"))

    async def test_call(self) -> None:
        """A device's test call: an incident of nobody's (never counted)."""
        eid = next(e for e in sorted(self.city.elders) if self.open_of(e, False) is None)
        device_id, protocol = self.city.devices[eid]
        await self.engine.test_device(device_id, actor="operator:o1")
        await self.later(20)
        await self.core.intake.devices([DeviceReport(protocol, device_id, "alarm", "CID:1101", alarm_type="sos",
                                                     dedup=f"test-{device_id}")])  # fmt: skip
        assert any(i.test for i in self.engine.state.incidents.values())

    # -- calls ------------------------------------------------------------------------------------------

    async def call(self) -> None:
        rng, n = self.rng, next(self.serial)
        stranger = rng.random() < 0.2
        eid = None if stranger else rng.choice(sorted(self.city.elders))
        caller = f"139{n:08d}" if eid is None else self.city.phones[eid]
        line = LINE if stranger or rng.random() < 0.3 else "12345"
        drill = rng.random() < 0.08
        call_id = f"call-{n}"

        def event(kind: str, actor: str) -> CallEvent:
            return CallEvent(kind, call_id, caller, line, actor, drill=drill)  # type: ignore[arg-type]

        await self.core.intake.call(event("ringing", "service:hotline"))
        answer = rng.choices([rng.uniform(1, 59), 60.0, rng.uniform(61, 179), rng.uniform(181, 300), None],
                             [60, 5, 15, 5, 15])[0]  # fmt: skip
        if answer is None:
            await self.later(rng.uniform(20, 90))
            outcome = await self.core.intake.call(event("ended", "service:hotline"))
            if outcome.incident_id is not None:
                await self.work(outcome.incident_id)
            return
        await self.later(answer)
        await self.core.intake.call(event("answered", "operator:o1"))
        await self.later(rng.uniform(30, 400))
        kind = rng.choice(["service", "consultation", "complaint", "wrong_number", "emergency", "service"])
        if kind == "emergency" and eid is None:
            kind = "consultation"  # a stranger's emergency needs the place they say: not generated here
        if kind == "emergency":
            classified = await self.engine.classify_call(Classification(call_id, "emergency", "operator:o1",
                                                                        alarm_type="fall"))  # fmt: skip
            await self.core.intake.call(event("ended", "service:hotline"))
            if classified.incident_id is not None:
                await self.work(classified.incident_id)
            return
        words = "要送餐" if kind == "service" else "问问"
        await self.act(self.engine.classify_call(Classification(call_id, cast(CallKind, kind), "operator:o1", words)))
        await self.core.intake.call(event("ended", "service:hotline"))
        if kind == "service" and eid is not None:
            await self.order(eid, call_id=call_id, drill=drill)

    # -- service orders and follow-ups ----------------------------------------------------------------

    async def order(self, eid: str | None = None, *, call_id: str | None = None, drill: bool | None = None) -> None:
        rng = self.rng
        eid = eid or rng.choice(sorted(self.city.elders))
        drill = rng.random() < 0.06 if drill is None else drill
        now = self.clock.now()
        window = (now + 3600, now + 7200)
        order_id = await self.engine.order_service(eid, "meal_delivery", *window, actor="operator:o1",
                                                   source="call" if call_id else "console", call_id=call_id,
                                                   drill=drill)  # fmt: skip
        fate = rng.choices(["delivered", "cancelled", "no_show", "waiting"], [65, 15, 10, 10])[0]
        if fate == "waiting":
            return
        if fate == "cancelled":
            await self.later(rng.uniform(60, 1800))
            await self.engine.order_action(order_id, "cancel", actor="operator:o1", reason="老人住院")
            return
        rid = "c_" + next(k for k, (c, _) in COMMUNITIES.items() if c == self.city.elders[eid]) + "0"
        await self.engine.order_action(order_id, "schedule", actor="operator:o1", start=window[0], end=window[1])
        await self.engine.order_action(order_id, "assign", actor="operator:o1", responder_id=rid)
        await self.until(window[0] + rng.uniform(0, 600))
        if fate == "no_show":
            await self.engine.order_action(order_id, "no_show", actor="operator:o1", note="无人应门")
            return
        await self.engine.order_action(order_id, "start", actor=f"caregiver:{rid}")
        await self.later(rng.uniform(900, 2400))
        await self.engine.order_action(order_id, "deliver", actor=f"caregiver:{rid}", note="送到")

    async def follow_ups(self) -> None:
        rng = self.rng
        for follow_up in list(self.engine.state.follow_ups.follow_ups.values()):
            if not follow_up.open or rng.random() < 0.3:
                continue
            await self.later(rng.uniform(5, 60))
            reached = rng.random() < 0.6
            score = rng.choices([1, 2, 3, 4, 5], [3, 4, 10, 30, 53])[0] if reached else None
            complaint = "送餐太晚" if reached and rng.random() < 0.1 else ""
            await self.engine.record_follow_up(follow_up.follow_up_id, reached=reached, actor="operator:o1",
                                               satisfaction=score, complaint=complaint)  # fmt: skip


# -- the brute force ------------------------------------------------------------------------------------------


async def raw_entries(engine: Engine) -> list[dict[str, Any]]:
    """Every entry of the journal as plain data: kind, ts, incident id, drill and the body as a dict."""
    rows: list[dict[str, Any]] = []
    after = 0
    while batch := await engine.journal.read(after, 1000):
        for entry in batch:
            raw = entry.as_dict()
            rows.append({k: raw[k] for k in ("kind", "ts", "incident_id", "drill", "payload")})
        after = batch[-1].seq
    return rows


def nearest(values: list[float]) -> dict[str, Any]:
    values = sorted(values)
    if not values:
        return {"n": 0, "median": None, "p90": None, "max": None}
    n = len(values)
    median, p90 = values[math.ceil(0.5 * n) - 1], values[math.ceil(0.9 * n) - 1]  # nearest rank, from 1
    return {"n": n, "median": round(median, 1), "p90": round(p90, 1), "max": round(values[-1], 1)}


def part(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


@dataclass
class Inc:
    id: str
    ts: float
    drill: bool
    test: bool
    technical: bool
    alarm_type: str
    priority: int
    source: str
    elder: str | None
    group: str | None
    call: str | None
    ack: float | None = None
    offers: list[float] = field(default_factory=list)
    accepts: list[float] = field(default_factory=list)
    doors: list[float] = field(default_factory=list)
    cancelled: bool = False
    escalated: str | None = None
    ended: bool = False  # resolved or closed


@dataclass
class Job:
    incident: str
    responder: str
    accepted: float | None = None
    last: str = "offered"
    ended: float | None = None


@dataclass
class Ring:
    ts: float
    drill: bool
    line: str
    elder: str | None
    incident: str | None = None
    answered: float | None = None
    ended: bool = False
    queued: bool = False
    transferred: bool = False
    out: bool = False  # an operator's click-to-call


@dataclass
class Order:
    ts: float
    drill: bool
    elder: str
    last: str = "ordered"


@dataclass
class Fu:
    elder: str
    drill: bool
    last_ts: float | None = None
    reached: bool = False
    satisfaction: int | None = None
    complaint: str = ""
    finished: bool = False


@dataclass
class Raw:
    incidents: dict[str, Inc] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    calls: dict[str, Ring] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    follow_ups: dict[str, Fu] = field(default_factory=dict)


def fold(entries: Iterable[dict[str, Any]]) -> Raw:
    """The entries folded by this file's own reading of each kind (one branch per kind, on purpose)."""
    raw = Raw()
    for e in entries:
        kind, ts, body, iid = e["kind"], e["ts"], e["payload"], e["incident_id"]
        inc = raw.incidents.get(iid or "")
        if kind == "incident.opened":
            raw.incidents[body["incident_id"]] = Inc(
                body["incident_id"], ts, e["drill"], body.get("test", False), body.get("technical", False),
                body["alarm_type"], body["priority"], body["source"], body.get("elder_id"), body.get("group"),
                body.get("call_id"),
            )  # fmt: skip
            if body.get("call_id") in raw.calls and raw.calls[body["call_id"]].incident is None:
                raw.calls[body["call_id"]].incident = body["incident_id"]
        elif kind == "incident.alarm_attached" and inc is not None:
            if inc.group is None and body["priority"] < inc.priority:
                inc.priority, inc.alarm_type = body["priority"], body["alarm_type"]
            if body.get("call_id") in raw.calls and raw.calls[body["call_id"]].incident is None:
                raw.calls[body["call_id"]].incident = iid
        elif kind == "incident.retyped" and inc is not None:
            inc.alarm_type, inc.priority = body["alarm_type"], body["priority"]
        elif kind == "incident.acknowledged" and inc is not None and inc.ack is None:
            inc.ack = ts
        elif kind == "incident.cancelled" and inc is not None:
            inc.cancelled = True
        elif kind == "incident.escalated" and inc is not None:
            inc.escalated = body["service"]
        elif kind in ("incident.resolved", "incident.closed") and inc is not None:
            inc.ended = True
        elif kind == "offer.made":
            raw.jobs[body["assignment_id"]] = Job(iid or "", body["responder_id"])
            raw.incidents[iid or ""].offers.append(ts)
        elif kind.startswith("offer.") or kind == "assignment.status":
            job = raw.jobs[body["assignment_id"]]
            step = body["status"] if kind == "assignment.status" else kind.removeprefix("offer.")
            if step == "held":
                continue
            job.last = step
            if step == "accepted":
                job.accepted = ts
                raw.incidents[job.incident].accepts.append(ts)
            if step == "on_scene":
                raw.incidents[job.incident].doors.append(ts)
            if step in ("declined", "expired", "withdrawn", "done"):
                job.ended = ts
        elif kind == "call.ringing":
            out = body.get("direction", "in") == "out"
            raw.calls[body["call_id"]] = Ring(ts, e["drill"], body["line"], body.get("elder_id"), out=out)
        elif kind == "call.dialed":
            raw.calls[body["call_id"]] = Ring(ts, e["drill"], "", body.get("elder_id"), out=True)
        elif kind == "call.queued":
            raw.calls[body["call_id"]].queued = True
        elif kind == "call.answered":
            raw.calls[body["call_id"]].answered = ts
        elif kind == "call.transferred":
            ring = raw.calls[body["call_id"]]
            ring.transferred, ring.answered = True, ts if ring.answered is None else ring.answered
        elif kind == "call.ended":
            raw.calls[body["call_id"]].ended = True
        elif kind in ("call.caller_picked", "call.classified"):
            ring = raw.calls[body["call_id"]]
            ring.elder = body.get("elder_id") or ring.elder
            ring.incident = body.get("incident_id") or ring.incident
        elif kind == "service.ordered":
            raw.orders[body["order_id"]] = Order(ts, e["drill"], body["elder_id"])
        elif kind.startswith("service."):
            raw.orders[body["order_id"]].last = kind.removeprefix("service.")
        elif kind == "follow_up.created":
            raw.follow_ups[body["follow_up_id"]] = Fu(body["elder_id"], e["drill"])
        elif kind == "follow_up.recorded":
            fu = raw.follow_ups[body["follow_up_id"]]
            fu.last_ts, fu.reached = ts, body["reached"]
            fu.satisfaction, fu.complaint = body.get("satisfaction"), body.get("complaint", "")
            fu.finished = body["reached"]
        elif kind == "follow_up.unreachable":
            raw.follow_ups[body["follow_up_id"]].finished = True
    return raw


class Brute:
    """The report recomputed from the folded raw entries, with this file's own rules written out."""

    def __init__(self, raw: Raw, city: City, by: str, drill: bool, within: str | None) -> None:
        self.raw, self.city, self.drill, self.within = raw, city, drill, within
        self.depth = {"district": 1, "street": 2, "community": 3}[by]

    def area(self, place: str | None) -> str | None:
        """The place cut to the level, or None when the reader's street does not hold it."""
        if self.within is not None and not (place == self.within or (place or "").startswith(self.within + "/")):
            return None
        return "/".join((place or "").split("/")[: self.depth]) if place else ""

    def incident_place(self, inc: Inc) -> str | None:
        if inc.group is not None:
            return inc.group
        if inc.elder is not None:
            return self.city.elders[inc.elder]
        ring = self.raw.calls.get(inc.call or "")
        return {LINE: LINE_PLACE}.get(ring.line) if ring is not None else None

    def call_place(self, ring: Ring) -> str | None:
        if ring.elder is not None:
            return self.city.elders[ring.elder]
        inc = self.raw.incidents.get(ring.incident or "")
        return (self.incident_place(inc) if inc is not None else None) or {LINE: LINE_PLACE}.get(ring.line)

    def kept(self, drill: bool, ts: float) -> bool:
        return START <= ts < END and (self.drill or not drill)

    def report(self) -> dict[str, Any]:
        raw = self.raw
        incs = [(i, a) for i in raw.incidents.values() if not i.test and self.kept(i.drill, i.ts)
                and (a := self.area(self.incident_place(i))) is not None]  # fmt: skip
        rings = [(r, a) for r in raw.calls.values() if self.kept(r.drill, r.ts)
                 and (a := self.area(self.call_place(r))) is not None]  # fmt: skip
        orders = [(o, a) for o in raw.orders.values() if self.kept(o.drill, o.ts)
                  and (a := self.area(self.city.elders[o.elder])) is not None]  # fmt: skip
        done = [f for f in raw.follow_ups.values() if f.finished and f.last_ts is not None]
        fus = [(f, a) for f in done if self.kept(f.drill, f.last_ts or 0.0)
               and (a := self.area(self.city.elders[f.elder])) is not None]  # fmt: skip
        areas = sorted({a for rows in (incs, rings, orders, fus) for _, a in rows})

        def group(pick: Any) -> dict[str, Any]:
            return self.figures([i for i, a in incs if pick(a)], [r for r, a in rings if pick(a)],
                                [o for o, a in orders if pick(a)], [f for f, a in fus if pick(a)])  # fmt: skip

        return {
            "totals": group(lambda a: True),
            "areas": [{"area": area, "figures": group(lambda a, area=area: a == area)} for area in areas],
            "alarm_types": self.by_name([i for i, _ in incs], "alarm_type"),
            "sources": self.by_name([i for i, _ in incs], "source"),
            "days": self.days([i for i, _ in incs], [r for r, _ in rings]),
            "responders": self.responders([i for i, _ in incs]),
        }

    def by_name(self, incs: list[Inc], key: str) -> list[dict[str, Any]]:
        names = sorted({getattr(i, key) for i in incs})
        rows = [{key: n, "figures": self.figures([i for i in incs if getattr(i, key) == n], [], [], [])}
                for n in names]  # fmt: skip
        return sorted(rows, key=lambda r: (-(r["figures"]["alarms"] + r["figures"]["technical"]), r[key]))

    def days(self, incs: list[Inc], rings: list[Ring]) -> list[dict[str, Any]]:
        out = []
        for n in range(30):
            day = date(2026, 11, 1) + timedelta(days=n)
            lo = datetime(day.year, day.month, day.day, tzinfo=ZONE).timestamp()
            hi = lo + 86400  # Shanghai keeps no summer time
            alarms = [i for i in incs if lo <= i.ts < hi and not i.technical]
            quick = sum(1 for i in alarms if i.ack is not None and i.ack - i.ts <= 60)
            calls = sum(1 for r in rings if lo <= r.ts < hi and not r.out)
            out.append({"day": day.isoformat(), "alarms": len(alarms), "answered_within_60s": quick, "calls": calls})
        return out

    def responders(self, incs: list[Inc]) -> list[dict[str, Any]]:
        ids = {i.id for i in incs}
        rows: dict[str, dict[str, Any]] = {}
        for job in self.raw.jobs.values():
            if job.incident not in ids:
                continue
            name, kind, _ = self.city.responders[job.responder]
            row = rows.setdefault(job.responder, {"responder_id": job.responder, "name": name, "kind": kind,
                                                  "offers": 0, "accepted": 0, "declined": 0, "expired": 0,
                                                  "done": 0, "on_job_s": 0.0})  # fmt: skip
            row["offers"] += 1
            row["accepted"] += job.accepted is not None
            row["declined"] += job.last == "declined"
            row["expired"] += job.last == "expired"
            row["done"] += job.last == "done"
            if job.accepted is not None and job.ended is not None:
                row["on_job_s"] += job.ended - job.accepted
        for row in rows.values():
            row["on_job_s"] = round(row["on_job_s"], 1)
        return sorted(rows.values(), key=lambda r: (-r["done"], r["responder_id"]))

    def figures(self, incs: list[Inc], rings: list[Ring], orders: list[Order], fus: list[Fu]) -> dict[str, Any]:
        alarms = [i for i in incs if not i.technical]
        waits = [i.ack - i.ts for i in alarms if i.ack is not None]
        in60, in180 = sum(1 for w in waits if w <= 60), sum(1 for w in waits if w <= 180)
        edges = [0, 15, 30, 60, 120, 180, math.inf]
        outbound = [r for r in rings if r.out]
        rings = [r for r in rings if not r.out]
        unanswered = [r for r in rings if r.answered is None and r.ended]
        answers = [r.answered - r.ts for r in rings if r.answered is not None]
        c60, c180 = sum(1 for w in answers if w <= 60), sum(1 for w in answers if w <= 180)

        def outcome(i: Inc) -> str:
            if i.cancelled:
                return "false_alarm"
            if i.escalated:
                return "to_" + i.escalated
            return "resolved" if i.ended else "open"

        reached = [f for f in fus if f.reached]
        scores = [f.satisfaction for f in reached if f.satisfaction is not None]
        return {
            "alarms": len(alarms),
            "technical": len(incs) - len(alarms),
            "answered": len(waits),
            "answered_within_60s": in60,
            "answered_within_180s": in180,
            "share_within_60s": part(in60, len(alarms)),
            "share_within_180s": part(in180, len(alarms)),
            "answer_s": nearest(waits),
            "answer_buckets": [sum(1 for w in waits if lo <= w < hi) for lo, hi in itertools.pairwise(edges)],
            "first_offer_s": nearest([min(i.offers) - i.ts for i in alarms if i.offers]),
            "accepted_s": nearest([min(i.accepts) - i.ts for i in alarms if i.accepts]),
            "door_s": nearest([min(i.doors) - i.ts for i in alarms if i.doors]),
            "outcomes": {k: sum(1 for i in alarms if outcome(i) == k) for k in OUTCOMES},
            "calls": len(rings),
            "calls_offered": len(rings),
            "calls_answered": len(answers),
            "calls_within_60s": c60,
            "calls_within_180s": c180,
            "calls_answered_within_60s": c60,
            "call_share_within_60s": part(c60, len(rings)),
            "call_answer_s": nearest(answers),
            "calls_abandoned": sum(1 for r in unanswered if r.queued),
            "calls_missed": sum(1 for r in unanswered if not r.queued),
            "calls_transferred": sum(1 for r in rings if r.ended and r.transferred),
            "calls_outbound": len(outbound),
            "services_ordered": len(orders),
            "services_delivered": sum(1 for o in orders if o.last in ("delivered", "confirmed")),
            "services_cancelled": sum(1 for o in orders if o.last == "cancelled"),
            "services_no_show": sum(1 for o in orders if o.last == "no_show"),
            "follow_ups": {
                "done": len(fus),
                "reached": len(reached),
                "satisfaction_mean": round(sum(scores) / len(scores), 2) if scores else None,
                "satisfaction": [scores.count(s) for s in range(1, 6)],
                "complaints": sum(1 for f in reached if f.complaint),
            },
        }


def _report(core: Core, reach: Reach, by: str, drill: bool) -> dict[str, Any]:
    report = core.views.period_report(reach, by=by, month="2026-11", include_drill=drill)
    return {k: report[k] for k in ("totals", "areas", "alarm_types", "sources", "days", "responders")}


async def test_the_report_equals_a_brute_force_recount_of_the_journal(month: tuple[Core, City]) -> None:
    core, city = month
    entries = await raw_entries(engine_of(core))
    raw = fold(entries)
    _enough(raw, entries)
    for by in ("district", "street", "community"):
        for drill in (False, True):
            for reach, within in ((Reach(("*",)), None), (Reach((ONE_STREET,)), ONE_STREET)):
                expected = Brute(raw, city, by, drill, within).report()
                assert _report(core, reach, by, drill) == expected, (by, drill, within)


async def test_the_recount_holds_in_any_slices(month: tuple[Core, City]) -> None:
    """Folded a record or a few at a time (times sorted in short runs, merged over many rounds), on the loop or
    all at once, the report is still the recount (dispatch.periodreport rule 5)."""
    core, city = month
    raw = fold(await raw_entries(engine_of(core)))
    for by, size in (("district", 1), ("community", 3), ("street", 37)):
        expected = Brute(raw, city, by, True, None).report()
        steps = core.views.period_fold(Reach(("*",)), by=by, month="2026-11", include_drill=True, pace=Pace(size))
        assert {k: v for k, v in run(steps).items() if k in expected} == expected, (by, size)
        on_loop = await core.views.period_report_on_loop(Reach(("*",)), by=by, month="2026-11", include_drill=True)
        assert {k: v for k, v in on_loop.items() if k in expected} == expected, by


async def test_the_csv_of_the_month_reads_back_into_its_figures(month: tuple[Core, City]) -> None:
    """Every row of every section, responders included, read back with the csv module equals the JSON."""
    core, _ = month
    report = core.views.period_report(Reach(("*",)), by="community", month="2026-11", include_drill=True)
    text = core.views.period_report_csv(report)
    assert text.startswith("\ufeff")
    rows = {(r["section"], r["group"]): r for r in csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))}
    groups: list[tuple[str, str, dict[str, Any]]] = [("totals", "", report["totals"])]
    for section, key in (("areas", "area"), ("alarm_types", "alarm_type"), ("sources", "source")):
        groups += [(section, row[key], row["figures"]) for row in report[section]]
    groups += [("days", d["day"], {k: v for k, v in d.items() if k != "day"}) for d in report["days"]]
    groups += [("responders", r["responder_id"], {k: v for k, v in r.items() if k != "responder_id"})
               for r in report["responders"]]  # fmt: skip
    assert len(rows) == len(groups)
    for section, group, figures in groups:
        row = rows[(section, group)]
        for column, value in flat(figures):
            cell = row[column]
            back = cell if isinstance(value, str) else None if cell == "" else float(cell)
            assert back == value, (section, group, column)


def _enough(raw: Raw, entries: list[dict[str, Any]]) -> None:
    """The month holds what the recount must get right: not a thin sample that would pass by luck."""
    inside = [i for i in raw.incidents.values() if START <= i.ts < END]
    edges = [i for i in raw.incidents.values() if min(abs(i.ts - START), abs(i.ts - END)) < 10]
    assert 1500 < len(entries) < 20_000, len(entries)
    assert len(edges) >= 4 and any(i.ts < START for i in edges) and any(i.ts == END for i in edges)
    assert any(i.ts == START for i in edges)
    assert sum(1 for i in inside if i.drill) >= 2 and any(i.test for i in inside)
    assert sum(1 for i in inside if i.technical) >= 2 and any(i.group for i in raw.incidents.values())
    assert sum(1 for i in inside if i.cancelled) >= 2 and sum(1 for i in inside if i.escalated) >= 2
    assert sum(1 for i in inside if i.ack is not None and i.ack - i.ts > 180) >= 2
    assert any(i.ack is None and not i.technical for i in inside)
    assert sum(1 for i in inside if not (i.cancelled or i.escalated or i.ended)) >= 2
    assert sum(1 for i in inside if i.offers and min(i.offers) - i.ts > 30) >= 2
    assert any(j.last == "declined" for j in raw.jobs.values()) and any(j.last == "expired" for j in raw.jobs.values())
    assert sum(1 for r in raw.calls.values() if r.answered is None) >= 2
    assert any(r.elder is None for r in raw.calls.values())
    assert {o.last for o in raw.orders.values()} >= {"delivered", "cancelled", "no_show"}
    assert sum(1 for f in raw.follow_ups.values() if f.reached) >= 5
    assert sum(1 for f in raw.follow_ups.values() if f.finished and not f.reached) >= 2
    assert any(f.complaint for f in raw.follow_ups.values())
    assert len({i.source for i in inside}) >= 4 and len({i.alarm_type for i in inside}) >= 4


def test_a_month_in_a_zone_with_summer_time_is_its_local_days() -> None:
    """November 2026 in New York: summer time ends on the 1st, so the month is 30 local days of 721 hours."""
    period = period_of("America/New_York", 0.0, month="2026-11")
    assert (period.end - period.start) / 3600 == 721
    assert len(period.days()) == 30 and period.days()[0] == date(2026, 11, 1)
    spring = period_of("America/New_York", 0.0, start="2026-03-08", end="2026-03-09")
    assert spring.end - spring.start == 23 * 3600


@pytest.mark.parametrize("months", [("2026-12", 31), ("2028-02", 29), ("2027-02", 28)])
def test_a_month_is_its_local_days(months: tuple[str, int]) -> None:
    label, days = months
    period = period_of(TZ, 0.0, month=label)
    assert len(period.days()) == days and period.label == label
    assert datetime.fromtimestamp(period.start, ZONE).strftime("%Y-%m-%d %H:%M") == f"{label}-01 00:00"


def test_the_period_defaults_to_the_current_local_month() -> None:
    late = datetime(2026, 11, 30, 23, 30, tzinfo=ZONE).timestamp()  # already December in Tokyo, not here
    assert period_of(TZ, late).label == "2026-11"
    assert period_of("Asia/Tokyo", late).label == "2026-12"
