"""A fleet of simulated caregivers' phones, driving Anxin over ``/ws/caregiver`` as the real page does.

What it owns
    One :class:`CaregiverSim` per caregiver account: it logs in, connects, goes on duty near its registered
    position, reports where it is, answers offers, and works the jobs it accepted (en route, on scene, done).
    "Done" carries the caregiver's words: usually all is well; after a fall or a medical alarm now and then
    "疑似骨折，建议送医" (the incident stays on scene with that proposal; an operator decides).

Rules
    1. The server is the truth about offers and jobs. The phone acts on what the server last said: the
       hello after each connect, then ``offer``, ``job`` and ``offer_closed`` messages. A job moves one step
       each time the server confirms the previous step with a ``job`` message, so a refused step ends the
       job on the phone too, and a reconnect resumes from whatever the hello says.
    2. Everything a connection started (answering, working, position reports) is cancelled when it drops;
       the phone reconnects with back-off (0.5 s doubling to 10 s), keeping its token (tokens survive a
       server restart) until the server refuses it. A trip under way survives the reconnect.
    3. Job times (leaving, travelling, caring on scene) are divided by ``speedup``. The answer delay
       (``answer_s``, 2 to 8 s) and the position period (about 15 s) are wall-clock seconds, not scaled:
       the server's offer timers run in real time. A drill, whose server runs its timers ``speedup`` times
       faster, passes them already scaled.
    4. When ``stop`` is set a phone goes off duty (unless it is on a job), closes and returns.
    5. A phone with a ``shift`` (wall-clock start and end) connects at its start and goes off duty at its
       end, after finishing the job in hand (bounded by ``stop``); ``silent_p=1`` is a phone whose owner
       never answers an offer.
    6. An offer not heard (``silent_p``) stays unanswered until it closes, unless the server keeps it ringing
       past its time (the same offer with a later ``expires_at``): each new ring may be heard, as on a real phone.

Never
    Never import the server's packages: simulators drive Anxin from outside, over the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from simulators.api import Refused, api_client, login, pause

log = logging.getLogger("anxin.sim.caregivers")

Message = dict[str, Any]

SPEED_M_S: dict[str, float] = {"walk": 1.3, "bike": 4.0, "car": 8.0}  # door to door, in town
POSITION_EVERY_S = 15.0
HOME_SCATTER_M = 300.0  # how far from the registered position a phone starts its shift
DEFAULT_DISTANCE_M = 800.0  # when neither the offer nor the positions tell the distance
SILENT_P = 0.08  # of rings, not heard (the phone is in a pocket); an offer kept ringing past its time rings anew
LEAVE_S = (30.0, 120.0)  # from accepting to setting off, before speedup
CARE_S = (5 * 60.0, 20 * 60.0)  # time on scene, before speedup
HELLO_TIMEOUT_S = 10.0
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 10.0
ACTIVE_JOB = ("accepted", "en_route", "on_scene")

DECLINE_REASONS = ("正在服务其他老人", "交通不便，无法及时赶到", "身体不适，无法出勤")
DONE_NOTES = (
    "已到达，老人情况稳定",
    "已协助老人起身，无明显外伤",
    "已陪同老人服药，血压平稳",
    "已联系家属，家属已到场",
    "误触报警，老人安好",
)
#: after a fall or a medical alarm, now and then the caregiver proposes hospital (the operator hands it to 120)
HOSPITAL_NOTES = (
    "疑似骨折，建议送医",
    "老人胸闷气短，建议送医院检查",
    "头部磕伤出血，建议送医",
)
HOSPITAL_TYPES = frozenset({"fall", "medical"})
HOSPITAL_P = 0.2

_M_PER_DEG = 111_320.0


# -- geometry, good enough at city scale ----------------------------------------------------------------


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    return lat + north_m / _M_PER_DEG, lon + east_m / (_M_PER_DEG * math.cos(math.radians(lat)))


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    north = (lat2 - lat1) * _M_PER_DEG
    east = (lon2 - lon1) * _M_PER_DEG * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(north, east)


@dataclass(frozen=True, slots=True)
class Trip:
    """A straight-line journey to an incident, for positions along the way."""

    assignment_id: str
    start: tuple[float, float]
    end: tuple[float, float]
    departed: float  # time.monotonic()
    duration_s: float

    def remaining(self, now: float) -> float:
        return max(0.0, self.departed + self.duration_s - now)

    def where(self, now: float) -> tuple[float, float]:
        done = 1.0 if self.duration_s <= 0 else max(0.0, min(1.0, (now - self.departed) / self.duration_s))
        return (
            self.start[0] + (self.end[0] - self.start[0]) * done,
            self.start[1] + (self.end[1] - self.start[1]) * done,
        )


def ws_url(base_url: str, path: str, token: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, urlencode({"token": token}), ""))


# -- one phone ------------------------------------------------------------------------------------------


@dataclass
class CaregiverSim:
    """One caregiver's phone; :meth:`run` keeps it connected until ``stop`` is set."""

    username: str
    password: str
    base_url: str
    rng: random.Random
    accept_p: float = 0.85
    silent_p: float = SILENT_P
    speedup: float = 10.0
    answer_s: tuple[float, float] = (2.0, 8.0)  # wall seconds (rule 3)
    leave_s: tuple[float, float] = LEAVE_S  # before speedup
    care_s: tuple[float, float] = CARE_S  # before speedup
    position_every_s: float = POSITION_EVERY_S  # wall seconds
    hospital_p: float = HOSPITAL_P
    shift: tuple[float, float] | None = None  # wall-clock (time.time()) start and end (rule 5)
    responder_id: str | None = None
    travel: str = "walk"
    lat: float | None = None
    lon: float | None = None
    job: Message | None = None  # the last job message, while the job is active
    trip: Trip | None = None
    decisions: dict[str, bool | None] = field(default_factory=dict)  # offer -> accept, decline, silent
    hellos: int = 0
    _answering: set[str] = field(default_factory=set, init=False, repr=False)
    _rung: dict[str, Any] = field(default_factory=dict, init=False, repr=False)  # offer -> its deadline last heard
    _step: tuple[str, str] | None = field(default=None, init=False, repr=False)
    _step_task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    _sent: int = field(default=0, init=False, repr=False)
    _token: str | None = field(default=None, init=False, repr=False)
    _stop: asyncio.Event | None = field(default=None, init=False, repr=False)
    _leaving: bool = field(default=False, init=False, repr=False)  # the shift is over: no new offers

    async def run(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        """Keep the phone connected until ``stop`` (or the end of its shift)."""
        if self.shift is None:
            if not await pause(stop, self.rng.uniform(0.0, 3.0)):  # phones do not all log in at once
                await self._connect_loop(client, stop, stop)
            return
        start, end = self.shift
        if await pause(stop, start - time.time()):
            return
        until = asyncio.Event()
        ender = asyncio.get_running_loop().call_later(max(0.0, end - time.time()), until.set)
        stopper = asyncio.create_task(self._relay(stop, until))
        try:
            await self._connect_loop(client, until, stop)
        finally:
            ender.cancel()
            stopper.cancel()

    @staticmethod
    async def _relay(stop: asyncio.Event, until: asyncio.Event) -> None:
        await stop.wait()
        until.set()

    async def _connect_loop(self, client: httpx.AsyncClient, until: asyncio.Event, stop: asyncio.Event) -> None:
        """Connect, and reconnect with back-off, until ``until`` is set (``stop`` cuts a job short)."""
        delay = RECONNECT_FIRST_S
        self._stop = stop
        while not until.is_set():
            hellos = self.hellos
            try:
                await self._session(client, until)
            except (OSError, WebSocketException, httpx.HTTPError, Refused, ValueError) as error:
                log.warning("%s: disconnected (%s: %s)", self.username, type(error).__name__, error)
            except (KeyError, TypeError, AttributeError) as error:  # a message not as the contract says
                log.error("%s: unexpected message from the server (%r); reconnecting", self.username, error)
            if self.hellos > hellos:
                delay = RECONNECT_FIRST_S
            if await pause(until, delay * self.rng.uniform(0.8, 1.2)):
                break
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _session(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        """Connect (logging in first when there is no token) and handle messages until the socket closes."""
        if self._token is None:
            answer = await login(client, self.username, self.password)
            if answer.get("role") != "caregiver":
                raise Refused(403, f"{self.username} is a {answer.get('role')} account, not a caregiver")
            self._token = str(answer["access_token"])
        try:
            await self._connected(ws_url(self.base_url, "/ws/caregiver", self._token), stop)
        except InvalidStatus as refused:
            if refused.response.status_code in (401, 403):
                self._token = None  # expired or revoked: log in again next time
            raise

    async def _connected(self, url: str, stop: asyncio.Event) -> None:
        async with connect(url, open_timeout=10.0) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT_S))
            if hello.get("type") != "hello":
                raise ValueError(f"expected hello, got {hello.get('type')!r}")
            self._greet(hello)
            try:
                duty: Message = {"type": "duty", "on": True}
                if self.lat is not None and self.lon is not None:
                    duty.update(lat=self.lat, lon=self.lon)
                await self._send(ws, duty)
                self._spawn(self._report_positions(ws))
                self._spawn(self._hang_up_on(ws, stop))
                self._resume(ws, hello)
                async for raw in ws:
                    self._receive(ws, raw)
            finally:
                await self._drop_tasks()

    def _greet(self, hello: Message) -> None:
        responder = hello["responder"]
        self.responder_id = responder["responder_id"]
        self.travel = responder.get("travel") or "walk"
        home_lat, home_lon = responder.get("lat"), responder.get("lon")
        if self.lat is None and home_lat is not None and home_lon is not None:
            north, east = (self.rng.uniform(-HOME_SCATTER_M, HOME_SCATTER_M) for _ in range(2))
            self.lat, self.lon = offset(home_lat, home_lon, north, east)
        self.hellos += 1
        log.info("%s: connected as %s (%s)", self.username, self.responder_id, self.travel)

    def _resume(self, ws: ClientConnection, hello: Message) -> None:
        if hello.get("offer"):
            self._on_offer(ws, hello["offer"])
        if hello.get("job"):
            self._on_job(ws, hello["job"])
        else:
            self.job, self.trip = None, None

    # -- messages from the server ------------------------------------------------------------------------

    def _receive(self, ws: ClientConnection, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            kind = message.get("type")
        except (ValueError, AttributeError):
            log.warning("%s: not a JSON object: %.80r", self.username, raw)
            return
        if kind == "offer":
            self._on_offer(ws, message)
        elif kind == "job":
            self._on_job(ws, message)
        elif kind == "offer_closed":
            self._on_closed(message)
        elif kind == "error":
            log.warning("%s: refused (ref %s): %s", self.username, message.get("ref"), message.get("detail"))

    def _on_offer(self, ws: ClientConnection, offer: Message) -> None:
        assignment_id = offer["assignment_id"]
        rings_again = self._rung.get(assignment_id) not in (None, offer.get("expires_at"))
        self._rung[assignment_id] = offer.get("expires_at")
        if assignment_id not in self.decisions or (rings_again and self.decisions[assignment_id] is None):
            # a new offer, or one still ringing past its time that went unnoticed: each ring may be heard
            roll = self.rng.random()
            decision = None if roll < self.silent_p else self.rng.random() < self.accept_p
            self.decisions[assignment_id] = False if self._leaving and decision is not None else decision
            log.info(
                "%s: offer %s (%s, P%s, %s m)",
                self.username,
                assignment_id,
                offer.get("alarm_type"),
                offer.get("priority"),
                offer.get("distance_m"),
            )
        decision = self.decisions[assignment_id]
        if decision is None or assignment_id in self._answering:
            return
        self._answering.add(assignment_id)
        self._spawn(self._answer(ws, assignment_id, decision))

    def _on_job(self, ws: ClientConnection, job: Message) -> None:
        assignment_id, state = job["assignment_id"], job["state"]
        self.decisions.pop(assignment_id, None)
        self._rung.pop(assignment_id, None)
        if state not in ACTIVE_JOB:
            self._end_job(f"{state}")
            return
        self.job = job
        if self._step == (assignment_id, state):
            return  # already working on this step (a repeated message, or the hello)
        if self._step_task is not None:
            self._step_task.cancel()
        self._step = (assignment_id, state)
        self._step_task = self._spawn(self._work(ws, job))

    def _on_closed(self, message: Message) -> None:
        assignment_id = message["assignment_id"]
        self.decisions.pop(assignment_id, None)
        self._rung.pop(assignment_id, None)
        if self.job is not None and self.job["assignment_id"] == assignment_id:
            self._end_job(f"closed: {message.get('reason')}")
        else:
            log.info("%s: offer %s closed (%s)", self.username, assignment_id, message.get("reason"))

    def _end_job(self, why: str) -> None:
        if self.trip is not None:  # called back on the way (someone nearer took over): free where they are now
            self.lat, self.lon = self.trip.where(time.monotonic())
        if self.job is not None:
            log.info("%s: job %s over (%s)", self.username, self.job["assignment_id"], why)
        if self._step_task is not None:
            self._step_task.cancel()
        self.job, self.trip, self._step, self._step_task = None, None, None, None

    # -- what the phone does -----------------------------------------------------------------------------

    async def _answer(self, ws: ClientConnection, assignment_id: str, accept: bool) -> None:
        await asyncio.sleep(self.rng.uniform(*self.answer_s))
        if accept:
            await self._send(ws, {"type": "accept", "assignment_id": assignment_id})
        else:
            reason = self.rng.choice(DECLINE_REASONS)
            await self._send(ws, {"type": "decline", "assignment_id": assignment_id, "reason": reason})
        log.info("%s: %s %s", self.username, "accepted" if accept else "declined", assignment_id)

    async def _work(self, ws: ClientConnection, job: Message) -> None:
        """The next step of an accepted job, after the time it takes."""
        assignment_id, state = job["assignment_id"], job["state"]
        if state == "accepted":
            await asyncio.sleep(self._scaled(self.rng.uniform(*self.leave_s)))
            self.trip = self._plan_trip(job)
            await self._status(ws, assignment_id, "en_route")
        elif state == "en_route":
            if self.trip is None or self.trip.assignment_id != assignment_id:
                self.trip = self._plan_trip(job)
            await asyncio.sleep(self.trip.remaining(time.monotonic()))
            self.lat, self.lon = self.trip.end
            await self._status(ws, assignment_id, "on_scene")
        elif state == "on_scene":
            if self.trip is not None:
                self.lat, self.lon = self.trip.end
                self.trip = None
            await asyncio.sleep(self._scaled(self.rng.uniform(*self.care_s)))
            await self._status(ws, assignment_id, "done", note=self.done_note(job))

    def done_note(self, job: Message) -> str:
        """What the caregiver reports with "done": usually all is well; after a fall or a medical alarm,
        ``hospital_p`` of the time they propose hospital."""
        if job.get("alarm_type") in HOSPITAL_TYPES and self.rng.random() < self.hospital_p:
            return self.rng.choice(HOSPITAL_NOTES)
        return self.rng.choice(DONE_NOTES)

    def _plan_trip(self, job: Message) -> Trip:
        here = (self.lat, self.lon) if self.lat is not None and self.lon is not None else None
        there = _destination(job) or here or (0.0, 0.0)
        start = here or there
        metres = job.get("distance_m")
        if metres is None:
            metres = distance_m(*start, *there) if here else DEFAULT_DISTANCE_M
        duration = float(metres) / SPEED_M_S.get(self.travel, SPEED_M_S["walk"]) / self.speedup
        log.info("%s: setting off, %.0f m by %s, %.0f s", self.username, metres, self.travel, duration)
        return Trip(job["assignment_id"], start, there, time.monotonic(), duration)

    async def _status(self, ws: ClientConnection, assignment_id: str, status: str, note: str = "") -> None:
        message: Message = {"type": "status", "assignment_id": assignment_id, "status": status}
        if note:
            message["note"] = note
        await self._send(ws, message)
        log.info("%s: %s %s", self.username, assignment_id, status)

    async def _report_positions(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.position_every_s * self.rng.uniform(0.8, 1.2))
            if self.trip is not None:
                self.lat, self.lon = self.trip.where(time.monotonic())
            if self.lat is not None and self.lon is not None:
                await self._send(ws, {"type": "position", "lat": self.lat, "lon": self.lon})

    async def _hang_up_on(self, ws: ClientConnection, until: asyncio.Event) -> None:
        await until.wait()
        self._leaving = True
        while self.job is not None and self._stop is not None and not self._stop.is_set():
            await pause(self._stop, 0.2)  # the shift is over: finish the job in hand first (rule 5)
        if self.job is None:
            with contextlib.suppress(ConnectionClosed):
                await self._send(ws, {"type": "duty", "on": False})
        await ws.close()

    # -- plumbing ----------------------------------------------------------------------------------------

    def _scaled(self, seconds: float) -> float:
        return seconds / self.speedup

    async def _send(self, ws: ClientConnection, message: Message) -> None:
        self._sent += 1
        message["id"] = f"{self.username}-{self._sent}"
        for key in ("lat", "lon"):
            if isinstance(message.get(key), float):
                message[key] = round(message[key], 6)
        await ws.send(json.dumps(message, ensure_ascii=False))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and not isinstance(error, ConnectionClosed):
            log.error("%s: task failed", self.username, exc_info=error)

    async def _drop_tasks(self) -> None:
        """Cancel everything this connection started (rule 2); the trip and the job are kept."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._answering.clear()
        self._step, self._step_task = None, None


def _destination(job: Message) -> tuple[float, float] | None:
    if job.get("lat") is not None and job.get("lon") is not None:
        return float(job["lat"]), float(job["lon"])
    elder = job.get("elder") or {}
    if elder.get("lat") is not None and elder.get("lon") is not None:
        return float(elder["lat"]), float(elder["lon"])
    return None


# -- the fleet ------------------------------------------------------------------------------------------


async def caregiver_fleet(
    base_url: str,
    accounts: list[tuple[str, str]],
    *,
    seed: int,
    stop: asyncio.Event,
    accept_p: float = 0.85,
    speedup: float = 10.0,
) -> None:
    """Run one simulated phone per (username, password) until ``stop`` is set."""
    if speedup <= 0:
        raise ValueError("speedup must be positive")
    master = random.Random(seed)
    sims = [
        CaregiverSim(
            username,
            password,
            base_url,
            rng=random.Random(master.getrandbits(64)),
            accept_p=accept_p,
            speedup=speedup,
        )
        for username, password in accounts
    ]
    log.info("caregiver fleet: %d phones, accept %.0f %%, speedup %g", len(sims), accept_p * 100, speedup)
    await run_phones(base_url, sims, stop)


async def run_phones(base_url: str, sims: list[CaregiverSim], stop: asyncio.Event) -> None:
    """Run the given phones until ``stop`` is set (and each has hung up)."""
    async with api_client(base_url) as client, asyncio.TaskGroup() as group:
        for sim in sims:
            group.create_task(sim.run(client, stop), name=f"caregiver {sim.username}")
