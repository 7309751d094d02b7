"""Service traffic: the service desk's day beside the alarms, against a running Anxin server.

What it owns
    :func:`service_desk`, the simulated desk and the caregivers who go, over the HTTP API only:

    - *orders*: the desk orders catalogue items for registered elders at a Poisson rate (a family member's
      request, a standing need), and :func:`order_from_call` orders what a caller asked for on a service call the
      simulated operator classified (the words say the item: 送餐 a meal, 助浴 a bath, 水管 a repair);
    - *scheduling*: the order's window starts a few minutes ahead; the desk schedules it and assigns it to a
      caregiver on duty with the item's skill: the elder's own, else the nearest of the community, the street,
      anywhere (a share is left "requested" for the person at the console to place);
    - *the round*: a simulated caregiver, with their own account, checks in at the elder's door when the
      window opens (with a position a few metres from the home) and checks out when the work is done, with a
      note of what was done; the item's duration passes ``speedup`` times faster than the wall clock;
    - *follow-ups*: the desk makes the return calls (回访) that fall due, mostly reaching the elder, who gives a
      satisfaction of 3 to 5 and now and then a complaint; a share is left for people;
    - *care calls*: the desk works down today's care-call list (关怀电话) at a steady pace, now and then finding
      nobody home (the call comes back as a retry), leaving a share for people;
    - *plans*: :func:`seed_plans` makes a handful of daily 五定 meal plans once (their visits are ordinary orders,
      assigned ahead, that the round checks in and out like the rest).

Rules
    1. Network only, with the accounts a real desk and real phones would use: the desk's staff token for
       orders and follow-ups, each caregiver's own token for their check-in and check-out.
    2. Left alone: an order or a follow-up that a person touched (ordered, scheduled or assigned by someone
       else, or assigned to a caregiver no simulator plays) is never moved by the simulation; neither is the
       share chosen for people, by a stable hash of its id. A drill's desk (``DeskPlan.drill``) touches only
       drill orders and follow-ups, the demo's only real ones.
    3. Every wait watches ``stop``; a refused step (someone moved the order first) is left, not forced.
    4. One ``random.Random`` from the seed draws elders, items and answers.

Never
    Never import the server's packages: this is a client like any other.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from simulators.api import Refused, api_client, call_api, login, pause
from simulators.scripts import Elder

log = logging.getLogger("anxin.sim.services")

#: the items a desk orders without a call, with their weights (the default catalogue's ids)
ORDER_MIX: Final[tuple[tuple[str, float], ...]] = (
    ("meal_delivery", 30.0),
    ("home_cleaning", 14.0),
    ("personal_care", 10.0),
    ("companionship", 10.0),
    ("medicine_pickup", 8.0),
    ("bathing", 8.0),
    ("home_repair", 6.0),
    ("clinic_escort", 5.0),
    ("haircut", 4.0),
    ("health_check", 5.0),
    ("deep_cleaning", 4.0),  # the contracted company's
    ("appliance_repair", 3.0),
)
#: what a caller's words ask for (simulators.scripts' service words), first match wins
CALL_WORDS: Final[tuple[tuple[str, str], ...]] = (
    ("助浴", "bathing"),
    ("送餐", "meal_delivery"),
    ("午饭", "meal_delivery"),
    ("水管", "home_repair"),
    ("修", "home_repair"),
    ("打扫", "home_cleaning"),
    ("卫生", "home_cleaning"),
    ("代买", "medicine_pickup"),
)
DONE_NOTES: Final[dict[str, str]] = {
    "meal_delivery": "午餐已送到，老人当面签收",
    "canteen_meal": "老人在助餐点用餐，饭量正常",
    "home_cleaning": "厨房和卫生间已打扫，垃圾带走",
    "laundry": "衣物已洗净晾好",
    "bathing": "协助洗浴完成，皮肤无破损",
    "personal_care": "协助洗漱、更衣，整理床铺",
    "haircut": "理发完成",
    "clinic_escort": "已陪同到社区卫生服务中心复诊，已送回家",
    "medicine_pickup": "药已代取送到，已核对用法",
    "health_check": "血压 132/84，血糖正常",
    "home_repair": "水龙头已更换，试用正常",
    "companionship": "陪老人聊天、读报一小时，情绪不错",
    "legal_advice": "已解答赡养问题，留了法律援助电话",
    "deep_cleaning": "厨房油污、卫生间水垢已清洗，窗户擦净",
    "appliance_repair": "洗衣机排水泵已更换，试机正常",
}
COMPLAINTS: Final = ("送餐晚到了半小时，饭有点凉", "护理员来得比约定晚", "打扫得不够仔细")
TICK_S = 5.0  # how often the round and the desk look at the orders
FOLLOW_UP_TICK_S = 30.0
CARE_CALL_TICK_S = 45.0  # one care call at a time, this often
#: the demo's daily 五定 plans: the local start times of their visits, one elder each
PLAN_TIMES: Final = ("08:30", "10:00", "11:30", "13:30", "15:00", "16:30", "18:00", "19:30")
WELLBEING: Final = (("well", 0.8), ("unwell", 0.15), ("needs_help", 0.05))
CARE_NOTES: Final[dict[str, str]] = {
    "well": "身体还好，吃过饭了", "unwell": "说有点头晕，提醒按时吃药", "needs_help": "说家里没米了，想请人代买",
}  # fmt: skip


@dataclass(frozen=True)
class DeskPlan:
    """How busy the service desk is and how much of it the simulation leaves to people."""

    orders_per_hour: float = 12.0  # ordered by the desk, besides those asked for on calls
    lead_s: tuple[float, float] = (120.0, 900.0)  # a window opens this long after the order (wall seconds)
    speedup: float = 10.0  # the item's minutes pass this much faster than the wall clock
    reached: float = 0.85  # of follow-up calls, the elder answers
    complaint: float = 0.05  # of reached follow-ups, a complaint
    leave_orders: float = 0.15  # of the desk's orders, left "requested" for the person at the console
    leave_follow_ups: float = 0.3  # of follow-ups, left for people
    care_calls: bool = False  # work today's care-call list too (the demo; a drill's elders are not on it)
    care_reached: float = 0.8  # of care calls, the elder answers
    leave_care_calls: float = 0.3  # of the elders on today's list, left for people
    drill: bool = False
    tick_s: float = TICK_S  # how often the round looks at the orders (a fast drill looks more often)


def item_for(words: str) -> str | None:
    """The catalogue item a caller's words ask for, or None when they name none the desk knows."""
    return next((item for word, item in CALL_WORDS if word in words), None)


def left_for_people(ident: str, share: float) -> bool:
    """Rule 2: the same id is always left (or always taken), whichever process asks."""
    return zlib.crc32(ident.encode()) % 1000 < share * 1000


async def order_from_call(
    client: httpx.AsyncClient, call_id: str, elder_id: str | None, words: str, stop: asyncio.Event, rng: random.Random
) -> str | None:
    """Order what the caller asked for on a service call, for the elder the call is from: the order's id, or
    None when the words name no item, the caller is nobody the registry knows, or the order was refused."""
    item = item_for(words)
    if item is None or elder_id is None:
        return None
    start = time.time() + rng.uniform(*DeskPlan().lead_s)
    body = {"elder_id": elder_id, "item_id": item, "start": start, "end": start + 3600, "source": "call",
            "call_id": call_id}  # fmt: skip
    try:
        answer = await call_api(client, "POST", "/api/service-orders", stop=stop, body=body)
    except Refused as refused:
        log.info("order for call %s refused: %s", call_id, refused)
        return None
    return None if answer is None else str(answer["order_id"])


@dataclass
class _Job:
    order_id: str
    responder_id: str
    item_id: str
    lat: float
    lon: float
    done_at: float | None = None  # wall time of the check-out, once checked in


@dataclass
class _Desk:
    client: httpx.AsyncClient
    base_url: str
    accounts: dict[str, tuple[str, str]]  # responder -> (username, password) of the caregivers played
    plan: DeskPlan
    rng: random.Random
    stop: asyncio.Event
    elders: dict[str, Elder] = field(default_factory=dict)
    minutes: dict[str, int] = field(default_factory=dict)  # item -> minutes
    skills: dict[str, str | None] = field(default_factory=dict)  # item -> skill
    tokens: dict[str, str] = field(default_factory=dict)  # caregiver -> bearer token
    me: str = ""  # the desk's journal actor: the orders it placed are its own to move (rule 2)
    tried: set[str] = field(default_factory=set)  # orders the desk tried to place (once each)
    jobs: dict[str, _Job] = field(default_factory=dict)

    async def order(self, elder: Elder, item: str) -> None:
        start = time.time() + self.rng.uniform(*self.plan.lead_s)
        end = start + (60 * self.minutes.get(item, 60) + 1800) / self.plan.speedup  # the visit, half an hour spare
        body = {"elder_id": elder["elder_id"], "item_id": item, "start": start, "end": end,
                "drill": self.plan.drill}  # fmt: skip
        try:
            answer = await call_api(self.client, "POST", "/api/service-orders", stop=self.stop, body=body)
        except Refused as refused:
            log.info("service order for %s refused: %s", elder["elder_id"], refused)
            return
        if answer is None:
            return
        await self.place(answer)

    async def place(self, order: dict[str, Any]) -> None:
        """Schedule an order the desk took (on a call or not) in its window and assign it to the nearest fitting
        caregiver the simulation plays; once per order, and never one left for people (rule 2)."""
        order_id = order["order_id"]
        if order_id in self.tried or order["ordered_by"] != self.me or order["drill"] != self.plan.drill:
            return
        if left_for_people(order_id, self.plan.leave_orders):
            return
        self.tried.add(order_id)
        elder = self.elders.get(order["elder_id"])
        if elder is None:
            return
        who = await self.nearest(elder, self.skills.get(order["item_id"]), order["provider"])
        if who is None:
            log.info("no caregiver for %s: left requested", order_id)
            return
        try:
            if order["state"] == "requested":
                window = {"start": order["start"], "end": order["end"]}
                await self._act(order_id, "schedule", window)
            await self._act(order_id, "assign", {"responder_id": who})
        except Refused as refused:
            log.info("service order %s not placed: %s", order_id, refused)

    async def nearest(self, elder: Elder, skill: str | None, provider: str) -> str | None:
        """The elder's own caregiver when the simulation plays them, is on duty, works for the item's provider
        and has the skill; else the nearest such responder of the elder's community, else of the street, else
        of anywhere."""
        answer = await call_api(self.client, "GET", "/api/responders", stop=self.stop)
        if answer is None:
            return None
        fit = [
            r for r in answer["responders"]
            if r["responder_id"] in self.accounts and r["kind"] != "clinic" and r["on_duty"]
            and r.get("provider", "centre") == provider and (skill is None or skill in r["skills"])
        ]  # fmt: skip
        own = [r for r in fit if r["responder_id"] == elder.get("caregiver_id")]
        street = elder["community"].rsplit("/", 1)[0] + "/"
        for group in (own, [r for r in fit if r["community"] == elder["community"]],
                      [r for r in fit if r["community"].startswith(street)], fit):  # fmt: skip
            if group:
                best = min(group, key=lambda r: math.hypot(r["lat"] - elder["lat"], r["lon"] - elder["lon"]))
                return str(best["responder_id"])
        return None

    async def _act(self, order_id: str, action: str, body: dict[str, Any], token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        path = f"/api/service-orders/{order_id}/{action}"
        if headers is None:
            await call_api(self.client, "POST", path, stop=self.stop, body=body)
            return
        response = await self.client.post(path, json=body, headers=headers)
        if response.status_code >= 400:
            raise Refused(response.status_code, response.text[:200])

    async def token(self, responder_id: str) -> str:
        if responder_id not in self.tokens:
            async with api_client(self.base_url) as client:
                answer = await login(client, *self.accounts[responder_id])
            self.tokens[responder_id] = str(answer["access_token"])
        return self.tokens[responder_id]

    async def round(self) -> None:
        """Place the desk's orders taken on calls; each caregiver checks in and out with their own account
        (rule 1)."""
        waiting = await call_api(
            self.client, "GET", "/api/service-orders", stop=self.stop, params={"state": "requested", "limit": 200}
        )
        for order in waiting["orders"] if waiting else ():
            await self.place(order)
        answer = await call_api(
            self.client, "GET", "/api/service-orders", stop=self.stop, params={"state": "assigned", "limit": 1000}
        )
        now = time.time()
        for order in answer["orders"] if answer else ():
            who = order["responder_id"]
            if order["order_id"] in self.jobs or who not in self.accounts or order["start"] > now:
                continue
            if order["drill"] != self.plan.drill:  # a drill's caregivers never touch real work, nor the reverse
                continue
            elder = self.elders.get(order["elder_id"])
            if elder is None:
                continue
            lat, lon = elder["lat"] + self.rng.uniform(-5e-5, 5e-5), elder["lon"] + self.rng.uniform(-5e-5, 5e-5)
            job = _Job(order["order_id"], who, order["item_id"], lat, lon)
            try:
                await self._act(job.order_id, "start", {"lat": lat, "lon": lon}, await self.token(who))
            except (Refused, httpx.HTTPError) as problem:
                log.info("check-in of %s refused: %s", job.order_id, problem)
                self.tokens.pop(who, None)  # an expired token is fetched again next time
                continue
            job.done_at = now + 60 * self.minutes.get(job.item_id, 60) / self.plan.speedup
            self.jobs[job.order_id] = job
        for job in [j for j in self.jobs.values() if j.done_at is not None and j.done_at <= now]:
            note = DONE_NOTES.get(job.item_id, "服务已完成")
            try:
                body = {"lat": job.lat, "lon": job.lon, "note": note}
                await self._act(job.order_id, "deliver", body, await self.token(job.responder_id))
            except (Refused, httpx.HTTPError) as problem:
                log.info("check-out of %s refused: %s", job.order_id, problem)
            del self.jobs[job.order_id]

    async def care_call(self) -> None:
        """The next elder on today's list whose call is ready, not left for people: one call."""
        answer = await call_api(self.client, "GET", "/api/care-calls", stop=self.stop, params={"date": "today"})
        ready = [c for c in answer["calls"] if c["ready"]] if answer else []
        line = next((c for c in ready if not left_for_people(c["elder_id"], self.plan.leave_care_calls)), None)
        if line is None:
            return
        body: dict[str, Any] = {"reached": self.rng.random() < self.plan.care_reached}
        if body["reached"]:
            body["wellbeing"] = self.rng.choices([w for w, _ in WELLBEING], [p for _, p in WELLBEING])[0]
            body["note"] = CARE_NOTES[body["wellbeing"]]
        try:
            await call_api(self.client, "POST", f"/api/care-calls/{line['elder_id']}", stop=self.stop, body=body)
        except Refused as refused:  # a person called first, or a visit was proposed meanwhile
            log.info("care call to %s not recorded: %s", line["elder_id"], refused)

    async def follow_ups(self) -> None:
        answer = await call_api(
            self.client, "GET", "/api/follow-ups", stop=self.stop, params={"due": "today", "state": "open"}
        )
        now = time.time()
        for follow_up in answer["follow_ups"] if answer else ():
            ident = str(follow_up["follow_up_id"])
            if follow_up["due"] > now or follow_up["drill"] != self.plan.drill:
                continue
            if left_for_people(ident, self.plan.leave_follow_ups):
                continue
            body: dict[str, Any] = {"reached": self.rng.random() < self.plan.reached}
            if body["reached"]:
                body["satisfaction"] = self.rng.choices((3, 4, 5), (1, 3, 6))[0]
                if self.rng.random() < self.plan.complaint:
                    body["complaint"] = self.rng.choice(COMPLAINTS)
                    body["satisfaction"] = 2
            try:
                await call_api(self.client, "POST", f"/api/follow-ups/{ident}", stop=self.stop, body=body)
            except Refused as refused:  # a person made the call first
                log.info("follow-up %s not recorded: %s", ident, refused)


async def seed_plans(client: httpx.AsyncClient, played: Sequence[str], person: str | None, stop: asyncio.Event) -> int:
    """Once (when no plan is active): a daily meal plan (助餐, Monday to Sunday) for an elder of each of a few
    caregivers the simulation plays, at :data:`PLAN_TIMES`, and one at noon for the caregiver left to a person
    (their visits are theirs to check in; one they miss becomes a task on the plans page). The plans made."""
    active = await call_api(client, "GET", "/api/plans", stop=stop, params={"active": "true"})
    if active is None or active["plans"]:
        return 0
    elders = await call_api(client, "GET", "/api/elders", stop=stop, params={"limit": 5000})
    if elders is None:
        return 0
    own: dict[str, str] = {}  # caregiver -> one of their elders
    for elder in elders["elders"]:
        if elder.get("caregiver_id") and elder["caregiver_id"] not in own:
            own[elder["caregiver_id"]] = elder["elder_id"]
    chosen = [(c, own[c], at) for c, at in zip([c for c in played if c in own], PLAN_TIMES, strict=False)]
    if person is not None and person in own:
        chosen.append((person, own[person], "12:00"))
    made = 0
    for caregiver, elder_id, at in chosen:
        body = {"elder_id": elder_id, "item_id": "meal_delivery", "responder_id": caregiver,
                "weekdays": [1, 2, 3, 4, 5, 6, 7], "at": at, "note": "每日助餐（五定）"}  # fmt: skip
        try:
            await call_api(client, "POST", "/api/plans", stop=stop, body=body)
            made += 1
        except Refused as refused:
            log.info("plan for %s refused: %s", elder_id, refused)
    return made


async def service_desk(
    base_url: str,
    token: str,
    caregivers: Sequence[tuple[str, str, str]],
    *,
    stop: asyncio.Event,
    seed: int,
    plan: DeskPlan | None = None,
) -> None:
    """Run the desk, the round and the follow-up calls until ``stop`` (see the module's rules). ``caregivers``:
    the responder id, username and password of each caregiver the simulation plays."""
    plan = plan or DeskPlan()
    async with api_client(base_url, token) as client:
        accounts = {responder: (username, password) for responder, username, password in caregivers}
        desk = _Desk(client, base_url, accounts, plan, random.Random(seed), stop)
        me = await call_api(client, "GET", "/api/me", stop=stop)
        if me is None:
            return
        desk.me = f"{me['role']}:{me['username']}"
        listing = await call_api(client, "GET", "/api/elders", stop=stop, params={"limit": 5000})
        services = await call_api(client, "GET", "/api/services", stop=stop)
        if listing is None or services is None:
            return
        desk.elders = {e["elder_id"]: e for e in listing["elders"]}
        for item in services["services"]:
            desk.minutes[item["item_id"]], desk.skills[item["item_id"]] = item["minutes"], item.get("skill")
        known = [item for item, _ in ORDER_MIX if item in desk.minutes]
        weights = [w for item, w in ORDER_MIX if item in desk.minutes]
        elders = list(desk.elders.values())
        tasks = [asyncio.create_task(_loop(desk.round, plan.tick_s, stop)),
                 asyncio.create_task(_loop(desk.follow_ups, FOLLOW_UP_TICK_S, stop))]  # fmt: skip
        if plan.care_calls:
            tasks.append(asyncio.create_task(_loop(desk.care_call, CARE_CALL_TICK_S, stop)))
        try:
            while elders and known and plan.orders_per_hour > 0:
                if await pause(stop, desk.rng.expovariate(plan.orders_per_hour / 3600)):
                    break
                await desk.order(desk.rng.choice(elders), desk.rng.choices(known, weights)[0])
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _loop(step: Any, every_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await step()
        except (Refused, httpx.HTTPError) as problem:
            log.warning("service desk: %s; going on", problem)
        if await pause(stop, every_s):
            return
