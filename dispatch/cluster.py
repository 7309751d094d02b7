"""Cluster mode: several nodes, one service record, one decider at a time (docs/cluster.md).

What it owns
    The parts that make a node of a cluster out of the core: the leader's :class:`Lease` in Redis, the
    :class:`Hand` that gives a follower's commands to the leader over Redis Streams and brings the answers back,
    the :class:`Executor` that applies them on the leader, and :class:`Node`, which follows the shared journal
    (:mod:`dispatch.pgjournal`) until it wins the lease and then decides. :class:`ClusterIntake` and
    :class:`ClusterCommands` are what the gateway and the console hold: they run a command here when this node
    leads and hand it over when it does not, so every node is an edge for devices, pages and phones.

Rules
    1. One decider. Only the node holding the lease runs the engine's timers, its intake worker and the
       executor; it takes the lease with ``SET NX PX`` (a follower takes a free lease once it has found it free
       twice, :data:`VACANT_CHECKS`) and keeps it by renewing it every third of ``lease_s`` from a thread of its
       own (:class:`LeaseKeeper`): a leader busy beyond its lease keeps it, a hung or dead one loses it. The
       journal's term (dispatch.pgjournal rule 2) is what keeps an old leader from writing, not the lease: a node
       that wins the lease claims a new term before it decides anything.
    2. A node that loses the lease to another node, or whose batch is fenced, stops (``on_lost``): what it had
       in memory and not committed was never acknowledged, and a fresh start follows the record again.
    3. Commands go to the leader in two streams, ``urgent`` (alarms a person must see to) and ``routine``, read
       in one call with the urgent stream first, so an SOS does not queue behind a storm of heartbeats; the
       leader's intake orders them again by rank. A command carries an id: the leader keeps each answer for an
       hour and answers a repeated id from it, and a new leader claims the commands its predecessor read and did
       not acknowledge (``XAUTOCLAIM``), so a command is applied once even across a take-over (a device alarm is
       also recognised as a repeat by the engine itself).
    4. An answer is given to the caller only when this node's own copy of the record has reached the entries
       the command wrote: a page that reads right after its command sees what it did.
    5. A follower folds every entry into its projection as it reads it, so a take-over replays nothing: the new
       leader reads the entries committed since its last read, arms the timers (a deadline passed during the
       gap fires at once) and decides.

Never
    Never decide on a follower, never run a command twice on purpose, never answer before the record has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final

import redis as sync_redis
import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.exceptions import RedisError, ResponseError

from dispatch.clock import Clock
from dispatch.commands import AlarmRequest, CallEvent, CallOutcome, Classification, Commands, Opened
from dispatch.devices import DeviceReport
from dispatch.directory import Directory
from dispatch.engine import Engine
from dispatch.entries import (
    DeviceSaved,
    DeviceUnbound,
    ElderDeactivated,
    ElderReactivated,
    ElderSaved,
    EldersMerged,
    LeaderElected,
    RegistryImported,
    ResponderSaved,
)
from dispatch.errors import AnxinError, Fenced, IllegalTransition, JournalError, NoLeader
from dispatch.intake import URGENT, Intake, _device_rank
from dispatch.journal import Entry
from dispatch.pgjournal import PgJournal
from dispatch.registry import Device, Elder, Responder
from dispatch.store import RegistryStore
from dispatch.triage import URGENT_TYPES

log = logging.getLogger(__name__)

PREFIX: Final = "anxin:"
LEASE_KEY: Final = PREFIX + "leader"
STREAMS: Final = {"urgent": PREFIX + "commands:urgent", "routine": PREFIX + "commands:routine"}
GROUP: Final = "leader"
ANSWERS_KEPT_S: Final = 3600
STREAM_MAX: Final = 200_000  # commands kept per stream (approximate trimming)
REPLIES_MAX: Final = 20_000
READ_COUNT: Final = 512
CLAIM_IDLE_MS: Final = 3000  # a command read by a leader and not acknowledged for this long is taken over
CLAIM_EVERY_S: Final = 1.0  # how often the leader looks for such commands
IN_FLIGHT: Final = 4096  # commands of each stream the leader applies at once (urgent ones have their own room)
#: a follower takes a free lease only once it has found it free this many times in a row (a third of the lease
#: apart): after a Redis restart the leader, renewing on the same beat, takes its lease back first
VACANT_CHECKS: Final = 2
#: a leader whose event loop has not run for this long is hung, not busy: its lease is let go (LeaseKeeper)
LOOP_STALL_S: Final = 10.0

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

# -- the wire: commands and answers as JSON, typed values tagged with their class ---------------------------

_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (AlarmRequest, CallEvent, CallOutcome, Classification, Opened, DeviceReport, Elder, Device, Responder)
}


@functools.cache
def _errors() -> dict[str, type[AnxinError]]:
    found: dict[str, type[AnxinError]] = {}
    todo: list[type[AnxinError]] = [AnxinError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def pack(value: Any) -> Any:
    """``value`` as plain JSON data; dataclasses and records of :data:`_TYPES` are tagged with their class."""
    if isinstance(value, BaseModel):
        return {"__t": type(value).__name__, "v": value.model_dump(mode="json")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: pack(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__t": type(value).__name__, "v": fields}
    if isinstance(value, list | tuple):
        return [pack(item) for item in value]
    if isinstance(value, dict):
        return {str(key): pack(item) for key, item in value.items()}
    return value


def unpack(value: Any) -> Any:
    if isinstance(value, list):
        return [unpack(item) for item in value]
    if isinstance(value, dict):
        if "__t" in value:
            cls = _TYPES.get(value["__t"])
            if cls is None:
                raise JournalError(f"a command carried an unknown type {value['__t']!r}")
            if issubclass(cls, BaseModel):
                return cls.model_validate(value["v"])
            return cls(**{key: unpack(item) for key, item in value["v"].items()})
        return {key: unpack(item) for key, item in value.items()}
    return value


def pack_error(exc: AnxinError) -> dict[str, Any]:
    return {"class": type(exc).__name__, "message": str(exc), "code": exc.code, "params": pack(exc.params),
            "field": getattr(exc, "field", None)}  # fmt: skip


def unpack_error(body: dict[str, Any]) -> AnxinError:
    """The refusal the leader raised, raised again here with its class, code, field and params."""
    cls = _errors().get(str(body.get("class")), JournalError)
    params = unpack(body.get("params") or {})
    if cls is IllegalTransition:
        return IllegalTransition(str(params.get("machine")), str(params.get("state")), str(params.get("event")))
    error = cls.__new__(cls)
    Exception.__init__(error, str(body.get("message", "")))
    error.code = str(body.get("code") or cls.code)  # type: ignore[misc]
    error.params = params
    if "field" in body:
        error.field = body["field"]  # type: ignore[attr-defined]
    return error


# -- the lease ---------------------------------------------------------------------------------------------


class Lease:
    """The leader's lease: a Redis key holding the node's name, expiring ``lease_s`` after the last renewal."""

    def __init__(self, redis: aioredis.Redis, node: str, lease_s: float) -> None:
        self._redis = redis
        self.node = node
        self.lease_ms = int(lease_s * 1000)
        self._renew = redis.register_script(_RENEW)

    async def take(self) -> bool:
        return bool(await self._redis.set(LEASE_KEY, self.node, nx=True, px=self.lease_ms))

    async def renew(self) -> bool:
        return bool(await self._renew(keys=[LEASE_KEY], args=[self.node, self.lease_ms]))

    async def holder(self) -> str | None:
        value = await self._redis.get(LEASE_KEY)
        return None if value is None else str(value)

    async def give_up(self) -> None:
        with contextlib.suppress(RedisError):
            if await self.holder() == self.node:
                await self._redis.delete(LEASE_KEY)


class LeaseKeeper:
    """Renews a lease this node holds from a thread of its own, so that a leader busy beyond its lease (a storm
    keeping its event loop seconds behind) keeps it: the lease says the process lives, not that its loop is
    quick. A loop that has not ticked for ``stall_s`` (hung, not busy) is let go: the lease lapses and another
    node takes over. After a Redis restart the key is taken again. ``lost`` says why the lease is gone (another
    holder), or None while it holds."""

    def __init__(self, url: str, node: str, lease_s: float, *, stall_s: float = LOOP_STALL_S) -> None:
        self._url, self.node, self._lease_s, self._stall_s = url, node, lease_s, stall_s
        self.tick = time.monotonic()  # the event loop's last sign of life (Node._heartbeat)
        self.renewed = time.monotonic()
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{node}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        client = sync_redis.Redis.from_url(self._url, decode_responses=True, socket_timeout=self._lease_s / 2,
                                           socket_connect_timeout=self._lease_s / 2)  # fmt: skip
        renew = client.register_script(_RENEW)
        lease_ms = int(self._lease_s * 1000)
        try:
            while not self._stop.wait(self._lease_s / 3):
                if time.monotonic() - self.tick > self._stall_s:
                    log.critical("cluster: %s's event loop has not run for %.0f s; its lease is let go", self.node,
                                 time.monotonic() - self.tick)  # fmt: skip
                    continue
                try:
                    if renew(keys=[LEASE_KEY], args=[self.node, lease_ms]) or client.set(
                        LEASE_KEY, self.node, nx=True, px=lease_ms
                    ):  # held, or taken again after Redis lost the key
                        self.renewed = time.monotonic()
                    else:
                        self.lost = f"the lease is held by {client.get(LEASE_KEY)}"
                        return
                except RedisError as exc:  # the term fences us out if another node takes the lease meanwhile
                    if time.monotonic() - self.renewed > self._lease_s:
                        log.error("cluster: %s cannot renew its lease (%s); leading on until fenced", self.node, exc)
        finally:
            client.close()


# -- the follower's hand -----------------------------------------------------------------------------------


class Hand:
    """Gives commands to the leader and waits for their answers (rules 3 and 4)."""

    def __init__(self, redis: aioredis.Redis, node: str, journal: PgJournal, timeout_s: float) -> None:
        self._redis = redis
        self.node = node
        self._journal = journal
        self._timeout_s = timeout_s
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.replies = PREFIX + "replies:" + node

    def start(self) -> None:
        self._task = asyncio.create_task(self._read_answers(), name="cluster-answers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def give(self, urgent: bool, kind: str, body: Any) -> Any:
        """Run ``kind`` on the leader with ``body``; its result once this node's record has what it wrote."""
        command_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = future
        deadline = time.time() + self._timeout_s  # a person's command is not applied after it (Executor rule)
        fields = {"id": command_id, "node": self.node, "kind": kind, "body": json.dumps(pack(body)),
                  "deadline": repr(deadline)}  # fmt: skip
        try:
            async with asyncio.timeout(self._timeout_s):
                stream = STREAMS["urgent" if urgent else "routine"]
                await self._redis.xadd(stream, fields, maxlen=STREAM_MAX, approximate=True)  # type: ignore[arg-type]
                answer = await future
                if "error" in answer:
                    raise unpack_error(answer["error"])
                await self._journal.durable(int(answer["seq"]))  # rule 4
        except TimeoutError:
            raise NoLeader(f"no leader answered within {self._timeout_s:g} s") from None
        except RedisError as exc:
            raise NoLeader(f"the cluster's Redis is unreachable: {exc}") from exc
        finally:
            self._waiting.pop(command_id, None)
        return unpack(answer["result"])

    async def _read_answers(self) -> None:
        last = "$"
        while True:
            try:
                found = await self._redis.xread({self.replies: last}, count=1000, block=1000)
            except RedisError as exc:
                log.warning("cluster: reading answers failed (%s); again in a second", exc)
                await asyncio.sleep(1.0)
                continue
            for _stream, messages in found or ():
                for message_id, fields in messages:
                    last = message_id
                    future = self._waiting.get(fields.get("id", ""))
                    if future is not None and not future.done():
                        future.set_result(json.loads(fields["answer"]))


# -- the leader's executor ---------------------------------------------------------------------------------


class Executor:
    """Applies the commands followers hand over, through the leader's own intake and engine (rule 3).

    A person's command that reaches the leader after its deadline (the follower told its caller "no leader" by
    then) is answered "no leader" and not applied; a device's report is applied however late: the device may
    have repeated it elsewhere, and the engine recognises the repeat."""

    def __init__(self, redis: aioredis.Redis, node: str, intake: Intake, engine: Engine, journal: PgJournal) -> None:
        self._redis = redis
        self.node = node
        self._intake = intake
        self._engine = engine
        self._journal = journal
        self._rooms = {stream: asyncio.Semaphore(IN_FLIGHT) for stream in STREAMS.values()}
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: set[str] = set()  # message ids being applied here (a claim must not take them again)

    async def _groups(self) -> None:
        for stream in STREAMS.values():
            with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
                await self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)

    async def run(self) -> None:
        await self._groups()
        loop = asyncio.get_running_loop()
        claimed_at, idle_ms = loop.time(), 0  # at take-over: everything the last leader left, at once
        while True:
            try:
                if idle_ms == 0 or loop.time() - claimed_at > CLAIM_EVERY_S:
                    await self._claim(idle_ms)
                    claimed_at, idle_ms = loop.time(), CLAIM_IDLE_MS
                # a stream whose room is full is not read until room frees: urgent commands are read meanwhile
                wanted: dict[Any, Any] = {stream: ">" for stream, room in self._rooms.items() if not room.locked()}
                if not wanted:
                    await asyncio.sleep(0.01)
                    continue
                found = await self._redis.xreadgroup(GROUP, self.node, wanted, count=READ_COUNT, block=500)
            except ResponseError as exc:  # NOGROUP: Redis restarted empty (docs/cluster.md)
                log.warning("cluster: reading commands failed (%s); making the streams again", exc)
                await asyncio.sleep(0.2)
                with contextlib.suppress(RedisError):
                    await self._groups()
                continue
            except RedisError as exc:
                log.warning("cluster: reading commands failed (%s); again in a second", exc)
                await asyncio.sleep(1.0)
                continue
            for stream, messages in sorted(found or (), key=lambda found: found[0] != STREAMS["urgent"]):
                for message_id, fields in messages:
                    await self._spawn(stream, message_id, fields)

    async def _spawn(self, stream: str, message_id: str, fields: dict[str, str]) -> None:
        await self._rooms[stream].acquire()
        self._in_flight.add(message_id)
        task = asyncio.create_task(self._apply(stream, message_id, fields))
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._done(done, stream, message_id))

    async def _claim(self, idle_ms: int) -> None:
        """Take over what a leader before us read and did not acknowledge (rule 3)."""
        for stream in STREAMS.values():
            start = "0-0"
            while True:
                start, messages, *_ = await self._redis.xautoclaim(
                    stream, GROUP, self.node, min_idle_time=idle_ms, start_id=start, count=READ_COUNT
                )
                for message_id, fields in messages:
                    if fields and message_id not in self._in_flight:  # a message trimmed away comes back empty
                        await self._spawn(stream, message_id, fields)
                if start == "0-0":
                    break

    def _done(self, task: asyncio.Task[None], stream: str, message_id: str) -> None:
        self._tasks.discard(task)
        self._in_flight.discard(message_id)
        self._rooms[stream].release()

    async def _apply(self, stream: str, message_id: str, fields: dict[str, str]) -> None:
        command_id, kind = fields.get("id", ""), fields.get("kind", "")
        kept = PREFIX + "answer:" + command_id
        try:
            answer = await self._redis.get(kept)
            if answer is None:
                answer = json.dumps(await self._answer(kind, fields))
                if kind != "devices":  # a device's repeat is recognised by the engine; a person's is by its id
                    await self._redis.set(kept, answer, ex=ANSWERS_KEPT_S)
            replies = PREFIX + "replies:" + fields.get("node", "")
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(replies, {"id": command_id, "answer": answer}, maxlen=REPLIES_MAX, approximate=True)
                pipe.expire(replies, ANSWERS_KEPT_S)
                pipe.xack(stream, GROUP, message_id)
                await pipe.execute()
        except RedisError as exc:  # the answer is lost; the follower's caller times out and repeats
            log.warning("cluster: answering command %s failed: %s", command_id, exc)
        except Fenced:
            pass  # this node stops (rule 2); the next leader claims the command

    async def _answer(self, kind: str, fields: dict[str, str]) -> dict[str, Any]:
        try:
            if kind != "devices" and time.time() > float(fields.get("deadline", "inf")):
                raise NoLeader("the command came after its caller had stopped waiting; it was not applied")
            result = await self._run(kind, unpack(json.loads(fields.get("body", "null"))))
        except Fenced:
            raise
        except AnxinError as exc:
            return {"error": pack_error(exc)}
        except Exception:  # a bug of ours, or a command this release cannot read: answered, never retried forever
            log.exception("cluster: command %s failed", kind)
            return {"error": pack_error(JournalError("the leader failed to apply the command"))}
        return {"result": pack(result), "seq": self._journal.durable_seq}

    async def _run(self, kind: str, body: Any) -> Any:
        if kind == "devices":
            await self._intake.devices(body)
            return None
        if kind == "alarm":
            return await self._intake.alarm(body)
        if kind == "call":
            return await self._intake.call(body)
        if kind == "command":
            method = ClusterCommands.method(self._engine, body["name"])
            result = await method(*body["args"], **body["kwargs"])
            return result
        raise JournalError(f"unknown command kind {kind!r}")


# -- what the gateway and the console hold -------------------------------------------------------------------


class ClusterIntake(Intake):
    """The intake of a cluster node: its own when the node leads, else the leader's through the hand."""

    def __init__(self, node: Node, engine: Engine, journal: PgJournal, clock: Clock, **options: Any) -> None:
        super().__init__(engine, journal, clock, **options)
        self._node = node

    def checkin(self, reports: Sequence[DeviceReport], now: float) -> bool:
        # a follower's quick path would keep the device's last-seen time where the leader's supervision cannot
        # see it: every check-in goes to the leader
        return self._node.leading and super().checkin(reports, now)

    async def devices(self, reports: Sequence[DeviceReport]) -> None:
        if self._node.leading:
            await super().devices(reports)
        elif reports:
            await self._node.hand.give(_device_rank(reports) == URGENT, "devices", list(reports))

    async def alarm(self, request: AlarmRequest) -> Opened:
        if self._node.leading:
            return await super().alarm(request)
        opened: Opened = await self._node.hand.give(request.alarm_type in URGENT_TYPES, "alarm", request)
        return opened

    async def call(self, event: CallEvent) -> CallOutcome:
        if self._node.leading:
            return await super().call(event)
        outcome: CallOutcome = await self._node.hand.give(event.alarm_type in URGENT_TYPES, "call", event)
        return outcome


class ClusterCommands:
    """People's commands (:class:`~dispatch.commands.Commands`): the engine's own when this node leads, else the
    leader's through the hand. Only the protocol's methods are reachable, here and on the leader."""

    def __init__(self, node: Node, engine: Engine) -> None:
        self._node = node
        self._engine = engine

    @staticmethod
    def method(engine: Engine, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_") or not hasattr(Commands, name):
            raise JournalError(f"{name} is not a command")
        found: Callable[..., Awaitable[Any]] = getattr(engine, name)
        return found

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        local = self.method(self._engine, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self._node.leading:
                return await local(*args, **kwargs)
            return await self._node.hand.give(False, "command", {"name": name, "args": args, "kwargs": kwargs})

        return call


# -- the node ------------------------------------------------------------------------------------------------


class Node:
    """One node of the cluster: follows the record, takes the lead when the lease is free (rules 1, 2, 5)."""

    def __init__(
        self,
        name: str,
        redis: aioredis.Redis,
        journal: PgJournal,
        engine: Engine,
        registry: RegistryStore,
        directory: Directory,
        *,
        lease_s: float,
        hand_timeout_s: float,
        on_lost: Callable[[str], None],
        redis_url: str,
    ) -> None:
        self.name = name
        self._redis_url = redis_url
        self._keeper: LeaseKeeper | None = None
        self.redis = redis
        self.journal = journal
        self.engine = engine
        self.registry = registry
        self.directory = directory
        self.lease = Lease(redis, name, lease_s)
        self.hand = Hand(redis, name, journal, hand_timeout_s)
        self.intake: ClusterIntake | None = None
        self._on_lost = on_lost
        self._lease_s = lease_s
        self._tasks: list[asyncio.Task[None]] = []
        self._leader_tasks: list[asyncio.Task[None]] = []
        self.leading = False
        self.taking = False  # the lease is ours and the term being claimed: renewed meanwhile
        #: entries after this seq changed the registry after the directory was loaded: their records are read back
        #: (the directory is loaded before the catch-up at start, which would otherwise miss changes made meanwhile)
        self.loaded_at = 0
        self.term = 0
        journal.on_fenced(lambda fenced: self._lost(str(fenced)))
        journal.on_stopped(self._lost)

    async def fold(self, entry: Entry) -> None:
        """A follower's projection: the engine's fold, and the registry records an entry says changed."""
        await self.engine.fold(entry)
        if entry.seq <= self.loaded_at:
            return
        fact = entry.fact
        if (isinstance(fact, ElderSaved) and fact.changed) or isinstance(fact, ElderDeactivated | ElderReactivated):
            elder = await self.registry.get_elder(fact.elder_id)
            if elder is not None:
                self.directory.put_elder(elder)
        elif isinstance(fact, DeviceSaved) and fact.changed:
            device = await self.registry.get_device(fact.device_id)
            if device is not None:
                self.directory.put_device(device)
        elif isinstance(fact, DeviceUnbound):
            self.directory.drop_device(fact.device_id)
        elif isinstance(fact, ResponderSaved) and fact.changed:
            responder = await self.registry.get_responder(fact.responder_id)
            if responder is not None:
                self.directory.put_responder(responder)
        elif isinstance(fact, EldersMerged):
            for elder_id in (fact.other, fact.keep):  # the other first: a phone both give stays the kept one's
                elder = await self.registry.get_elder(elder_id)
                if elder is not None:
                    self.directory.put_elder(elder)
            for device_id in fact.devices:
                device = await self.registry.get_device(device_id)
                if device is not None:
                    self.directory.put_device(device)
        elif isinstance(fact, RegistryImported):
            for responder in await self.registry.responders():
                self.directory.put_responder(responder)
            for elder in await self.registry.elders():
                self.directory.put_elder(elder)
            for device in await self.registry.devices():
                self.directory.put_device(device)

    def start(self) -> None:
        self.journal.follow()
        self.hand.start()
        self._watch(self._keep_lease(), "cluster-lease", self._tasks)

    def _watch(self, work: Coroutine[Any, Any, None], name: str, into: list[asyncio.Task[None]]) -> None:
        """A long-lived task of the node: should it ever end by an exception, the node stops (rule 2) rather than
        go on without it (a leader without its executor, a follower without its lease loop)."""
        task = asyncio.create_task(work, name=name)
        into.append(task)

        def ended(done: asyncio.Task[None]) -> None:
            if not done.cancelled() and (error := done.exception()) is not None:
                log.critical("cluster: %s failed", name, exc_info=error)
                self._lost(f"{name} failed: {error!r}")

        task.add_done_callback(ended)

    async def stop(self) -> None:
        for task in [*self._leader_tasks, *self._tasks]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._leader_tasks.clear()
        self._tasks.clear()
        await self.hand.stop()
        if self._keeper is not None:
            await asyncio.to_thread(self._keeper.stop)
            await self.lease.give_up()

    async def _keep_lease(self) -> None:
        """Take the lease when it is free (rule 1); once it is ours a :class:`LeaseKeeper` thread renews it, and
        this loop only tells it that the event loop still runs, and stops the node if the lease went elsewhere."""
        every = self._lease_s / 3
        vacant = 0
        while True:
            keeper = self._keeper
            if keeper is not None:
                keeper.tick = time.monotonic()
                if keeper.lost is not None:
                    self._lost(keeper.lost)
                    return
            else:
                try:
                    if self.journal.failure is not None or await self.lease.holder() is not None:
                        vacant = 0  # held by another; or our record broke (pgjournal rule 7): never lead on it
                    elif (vacant := vacant + 1) >= VACANT_CHECKS and await self.lease.take():
                        self.taking = True
                        self._keeper = LeaseKeeper(self._redis_url, self.name, self._lease_s)
                        self._keeper.start()
                        self._watch(self._lead(), "cluster-lead", self._leader_tasks)
                except RedisError as exc:
                    vacant = 0
                    log.warning("cluster: Redis unreachable (%s)", exc)
            await asyncio.sleep(every)

    @property
    def timers_running(self) -> bool:
        """Whether this node's timer loop runs (it runs only while the node leads)."""
        return any(task.get_name() == "timers" and not task.done() for task in self._leader_tasks)

    async def _lead(self) -> None:
        """Claim the term, then decide (rule 5); the lease is renewed meanwhile. Any failure stops the node."""
        self.term = await self.journal.claim()
        before = self.journal.before
        self.leading, self.taking = True, False
        entry = self.journal.append(LeaderElected(self.name, self.term, before), actor=f"system:{self.name}")
        await self.engine.fold(entry)
        await self.engine.activate()
        assert self.intake is not None
        self.intake.start()
        self._watch(self.engine.run_timers(), "timers", self._leader_tasks)
        executor = Executor(self.redis, self.name, self.intake, self.engine, self.journal)
        self._watch(executor.run(), "cluster-executor", self._leader_tasks)
        await self.journal.durable(entry.seq)
        log.warning("cluster: %s leads (term %d, after %s)", self.name, self.term, before or "nobody")

    def _lost(self, why: str) -> None:
        self.leading = self.taking = False
        log.critical("cluster: %s stops: %s", self.name, why)
        self._on_lost(why)
