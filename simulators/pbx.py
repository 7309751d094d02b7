"""A simulated Asterisk PBX speaking the manager interface (AMI) on TCP, with scripted hotline calls.

What it owns
    :class:`Pbx` is a small switch: channels, bridges and queues in memory, and a manager port that speaks
    AMI as Asterisk 13-22 does (banner ``Asterisk Call Manager/7.0.3``; Login, Ping, Logoff,
    CoreShowChannels, Status, Originate; events to every logged-in session that asked for them). It has its
    own encoder and parser: a simulator may not lean on the gateway's codec, so that the two check each other.

Calls are scripted as data (:data:`FLOWS`): each step is an operation of the switch (a caller arrives, joins
a queue, an agent's phone rings, answers, a blind transfer, a hangup), and each operation emits the events
Asterisk documents for it, with the same headers (Asterisk's AMI event reference: Newchannel, Newstate,
DialBegin, DialEnd, QueueCallerJoin, QueueCallerLeave, QueueCallerAbandon, AgentCalled, AgentConnect,
AgentRingNoAnswer, BridgeEnter, BridgeLeave, BlindTransfer, VarSet, OriginateResponse, Hangup).

Hooks for tests
    :meth:`Pbx.call` returns a :class:`Play` to run step by step (:meth:`Play.step`) or whole
    (:meth:`Play.run`); :meth:`Pbx.drop` closes every manager connection (a PBX restart, a cut cable);
    :meth:`Pbx.swap_next` delivers the next two events in the wrong order, :meth:`Pbx.hold` keeps one event
    back until :meth:`Pbx.release`; ``silent`` stops all answers (a hung PBX); ``reject_logins`` answers every
    Login "Authentication failed"; ``originate_plan`` says how a click-to-call goes (answer, no_answer,
    busy, fail: the operator's phone never answers, refuse: the Originate itself is refused); with
    ``autoplay`` off an originated call waits in ``originated`` for the test to play it.

Timestamps (``Timestamp:``, manager.conf ``timestampevents = yes``) and channel durations come from the
simulator's own clock. The CLI plays random inbound calls for the demo::

    python -m simulators.pbx --port 5038 --username anxin --secret s3cret --extensions 8101,8102 \\
        --numbers 13800138000,13900139000 --calls-per-minute 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

BANNER = b"Asterisk Call Manager/7.0.3\r\n"
MAX_ACTION = 64 * 1024
Lines = list[tuple[str, str]]

#: ChannelState numbers (Asterisk's enum ast_channel_state) and their descriptions
STATES = {"Down": "0", "Ring": "4", "Ringing": "5", "Up": "6", "Busy": "7"}

#: The scripted calls. A step is (operation, argument...); "{extension}", "{to}" and "{queue}" are filled
#: from :meth:`Pbx.call`. Each operation is a method ``_op_<name>`` of :class:`Play`.
FLOWS: dict[str, tuple[tuple[str, ...], ...]] = {
    # a caller joins the hotline queue, an operator's phone rings and answers, they talk, the caller hangs up
    "answered": (
        ("arrive",),
        ("enqueue", "{queue}"),
        ("ring_agent", "{extension}"),
        ("agent_answers", "{extension}"),
        ("caller_hangs_up", "16", "Normal Clearing"),
    ),
    # the caller waits in the queue, the operator's phone rings unanswered, the caller gives up
    "abandoned": (
        ("arrive",),
        ("enqueue", "{queue}"),
        ("ring_agent", "{extension}"),
        ("agent_no_answer", "{extension}"),
        ("abandon",),
        ("caller_hangs_up", "16", "Normal Clearing"),
    ),
    # answered through the queue, then blind-transferred to another extension that answers
    "transferred": (
        ("arrive",),
        ("enqueue", "{queue}"),
        ("ring_agent", "{extension}"),
        ("agent_answers", "{extension}"),
        ("blind_transfer", "{extension}", "{to}"),
        ("ring_extension", "{to}"),
        ("extension_answers", "{to}"),
        ("caller_hangs_up", "16", "Normal Clearing"),
    ),
    # a call to the hotline line rings an extension directly; nobody answers; the caller hangs up
    "missed": (
        ("arrive",),
        ("ring_extension", "{extension}"),
        ("extension_no_answer", "{extension}"),
        ("caller_hangs_up", "19", "No answer"),
    ),
    # click-to-call (Originate): the operator's phone rings and answers, the far side rings and answers
    "callback": (
        ("leg_created",),
        ("leg_rings",),
        ("leg_answers",),
        ("originate_done", "Success", "4"),
        ("dial_far",),
        ("far_answers",),
        ("far_hangs_up", "16", "Normal Clearing"),
    ),
    "callback_no_answer": (
        ("leg_created",),
        ("leg_rings",),
        ("leg_answers",),
        ("originate_done", "Success", "4"),
        ("dial_far",),
        ("far_no_answer", "NOANSWER", "19", "No answer"),
    ),
    "callback_busy": (
        ("leg_created",),
        ("leg_rings",),
        ("leg_answers",),
        ("originate_done", "Success", "4"),
        ("dial_far",),
        ("far_no_answer", "BUSY", "17", "User busy"),
    ),
    # the operator's own phone never answers: the originate fails
    "callback_fail": (
        ("leg_created",),
        ("leg_rings",),
        ("leg_hangs_up", "19", "No answer"),
        ("originate_done", "Failure", "3"),
    ),
}
PLANS = {"answer": "callback", "no_answer": "callback_no_answer", "busy": "callback_busy", "fail": "callback_fail"}


def encode(lines: Iterable[tuple[str, str]]) -> bytes:
    """One AMI message: ``Key: Value`` lines and the empty line."""
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in lines) + b"\r\n"


def parse(block: bytes) -> Lines:
    out: Lines = []
    for raw in block.decode("utf-8", "replace").splitlines():
        key, sep, value = raw.partition(":")
        if sep:
            out.append((key.strip(), value.strip()))
    return out


def first(lines: Lines, key: str) -> str:
    return next((v for k, v in lines if k.lower() == key.lower()), "")


@dataclass(slots=True)
class Channel:
    name: str
    uid: str
    linkedid: str
    created: float
    cid_num: str = ""
    cid_name: str = ""
    context: str = "from-trunk"
    exten: str = "s"
    state: str = "Down"
    application: str = ""
    appdata: str = ""
    bridge: str = ""
    connected_num: str = ""
    variables: dict[str, str] = field(default_factory=dict)

    def headers(self, prefix: str = "") -> Lines:
        """The channel block every channel event carries (Dest-prefixed for the far channel)."""
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", STATES[self.state]),
            (f"{prefix}ChannelStateDesc", self.state),
            (f"{prefix}CallerIDNum", self.cid_num or "<unknown>"),
            (f"{prefix}CallerIDName", self.cid_name or "<unknown>"),
            (f"{prefix}ConnectedLineNum", self.connected_num or "<unknown>"),
            (f"{prefix}ConnectedLineName", "<unknown>"),
            (f"{prefix}Language", "zh"),
            (f"{prefix}AccountCode", ""),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", "1"),
            (f"{prefix}Uniqueid", self.uid),
            (f"{prefix}Linkedid", self.linkedid),
        ]


@dataclass(slots=True)
class Session:
    """One manager connection."""

    writer: asyncio.StreamWriter
    authenticated: bool = False
    events: bool = True


class Pbx:
    """The simulated switch and its manager port (see the module's docstring)."""

    def __init__(
        self,
        *,
        username: str = "anxin",
        secret: str = "s3cret",
        clock: Callable[[], float] = time.time,
        line: str = "12349",
        trunk: str = "PJSIP/trunk",
    ) -> None:
        self.username, self.secret = username, secret
        self.clock = clock
        self.line, self.trunk = line, trunk
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, list[str]] = {}  # bridge id -> Uniqueids in it
        self.sessions: list[Session] = []
        self.reject_logins = False
        self.originate_plan = "answer"
        self.autoplay = True
        self.step_delay = 0.0
        self.originated: asyncio.Queue[Play] = asyncio.Queue()
        self.logins = 0
        self.actions: list[Lines] = []
        self._ids = itertools.count(1)
        self._swap = False
        self._hold_name = ""
        self._hold: bytes | None = None
        self.silent = False  # read actions and answer none (a hung PBX; the link's pings go unanswered)
        self._held: bytes | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._epoch = int(clock())

    # -- the switch ------------------------------------------------------------------------------------

    def new_channel(self, tech: str, linkedid: str = "", **fields: Any) -> Channel:
        n = next(self._ids)
        uid = f"{self._epoch}.{n}"
        channel = Channel(f"{tech}-{n:08x}", uid, linkedid or uid, self.clock(), **fields)
        self.channels[uid] = channel
        return channel

    def call(
        self,
        flow: str,
        *,
        caller: str = "13800138000",
        extension: str = "8101",
        to: str = "8102",
        queue: str = "hotline",
        line: str = "",
    ) -> Play:
        """A scripted inbound call (one of :data:`FLOWS`), ready to play."""
        values = {"{extension}": extension, "{to}": to, "{queue}": queue}
        steps = [tuple(values.get(arg, arg) for arg in step) for step in FLOWS[flow]]
        return Play(self, steps, caller=caller, line=line or self.line)

    def emit(self, name: str, lines: Lines, privilege: str = "call,all") -> None:
        """Send an event to every session that asked for events."""
        block = encode([("Event", name), ("Privilege", privilege), ("Timestamp", f"{self.clock():.6f}"), *lines])
        if self._hold_name == name and self._hold is None:
            self._hold = block
            return
        if self._swap:
            if self._held is None:
                self._held = block
                return
            held, self._held, self._swap = self._held, None, False
            self._broadcast(block)
            self._broadcast(held)
            return
        self._broadcast(block)

    def _broadcast(self, block: bytes) -> None:
        for session in self.sessions:
            if session.authenticated and session.events and not session.writer.is_closing():
                session.writer.write(block)

    def hold(self, name: str) -> None:
        """Keep back the next event called ``name`` until :meth:`release`: it arrives late, out of order."""
        self._hold_name, self._hold = name, None

    def release(self) -> None:
        held, self._hold, self._hold_name = self._hold, None, ""
        if held is not None:
            self._broadcast(held)

    def swap_next(self) -> None:
        """The next two events go out in the wrong order (the second first)."""
        self._swap = True

    def drop(self) -> None:
        """Close every manager connection at once (the transport, no Goodbye), as a PBX restart does."""
        for session in self.sessions:
            session.writer.transport.abort()
        self.sessions.clear()

    # -- the manager port ------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening, close every connection and wait for their handlers; stop calls being played."""
        if self._server is not None:
            self._server.close()
        self.drop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks) + list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), 5.0)
        for task in list(self._handlers):  # a connection that came in meanwhile: cut, not waited for
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(writer)
        self.sessions.append(session)
        handler = asyncio.current_task()
        if handler is not None:  # waited for (never cancelled) by close()
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)
        writer.write(BANNER)
        buffer = b""
        try:
            while not writer.is_closing():
                data = await reader.read(4096)
                if not data:
                    break
                buffer = (buffer + data).replace(b"\r\n", b"\n")
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    if block.strip():
                        self._answer(session, parse(block))
                if len(buffer) > MAX_ACTION:
                    break
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if session in self.sessions:
                self.sessions.remove(session)
            writer.close()

    def _answer(self, session: Session, lines: Lines) -> None:
        self.actions.append(lines)
        if self.silent:
            return
        name, action_id = first(lines, "Action").lower(), first(lines, "ActionID")

        def reply(response: str, *more: tuple[str, str]) -> None:
            session.writer.write(encode([("Response", response), ("ActionID", action_id), *more]))

        if name == "login":
            ok = first(lines, "Username") == self.username and first(lines, "Secret") == self.secret
            if self.reject_logins or not ok:
                reply("Error", ("Message", "Authentication failed"))
                return
            session.authenticated = True
            session.events = first(lines, "Events").lower() not in ("off", "no", "false", "0")
            self.logins += 1
            reply("Success", ("Message", "Authentication accepted"))
            session.writer.write(
                encode([("Event", "FullyBooted"), ("Privilege", "system,all"), ("Status", "Fully Booted")])
            )
            return
        if name == "logoff":
            reply("Goodbye", ("Message", "Thanks for all the fish."))
            session.writer.close()
            return
        if not session.authenticated:
            reply("Error", ("Message", "Missing action in request") if not name else ("Message", "Permission denied"))
            return
        if name == "ping":
            reply("Success", ("Ping", "Pong"), ("Timestamp", f"{self.clock():.6f}"))
        elif name == "events":
            session.events = first(lines, "EventMask").lower() not in ("off", "no", "false", "0")
            reply("Success", ("Events", "On" if session.events else "Off"))
        elif name == "coreshowchannels":
            self._core_show_channels(session, action_id)
        elif name == "status":
            self._status(session, action_id, [v for k, v in lines if k.lower() == "variables"])
        elif name == "originate":
            self._originate(session, action_id, lines)
        else:
            reply("Error", ("Message", "Invalid/unknown command"))

    def _core_show_channels(self, session: Session, action_id: str) -> None:
        write = session.writer.write
        write(
            encode(
                [
                    ("Response", "Success"),
                    ("ActionID", action_id),
                    ("EventList", "start"),
                    ("Message", "Channels will follow"),
                ]
            )
        )
        now = self.clock()
        for channel in self.channels.values():
            seconds = int(now - channel.created)
            duration = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
            write(
                encode(
                    [
                        ("Event", "CoreShowChannel"),
                        ("ActionID", action_id),
                        *channel.headers(),
                        ("Application", channel.application),
                        ("ApplicationData", channel.appdata),
                        ("Duration", duration),
                        ("BridgeId", channel.bridge),
                    ]
                )
            )
        write(
            encode(
                [
                    ("Event", "CoreShowChannelsComplete"),
                    ("ActionID", action_id),
                    ("EventList", "Complete"),
                    ("ListItems", str(len(self.channels))),
                ]
            )
        )

    def _status(self, session: Session, action_id: str, wanted: list[str]) -> None:
        write = session.writer.write
        write(
            encode(
                [
                    ("Response", "Success"),
                    ("ActionID", action_id),
                    ("EventList", "start"),
                    ("Message", "Channel status will follow"),
                ]
            )
        )
        names = [n.strip() for item in wanted for n in item.split(",") if n.strip()]
        now = self.clock()
        for channel in self.channels.values():
            variables = [("Variable", f"{n}={channel.variables.get(n, '')}") for n in names]
            write(
                encode(
                    [
                        ("Event", "Status"),
                        ("ActionID", action_id),
                        *channel.headers(),
                        ("Type", channel.name.split("/")[0]),
                        ("Application", channel.application),
                        ("Data", channel.appdata),
                        ("BridgeID", channel.bridge),
                        ("Seconds", str(int(now - channel.created))),
                        *variables,
                    ]
                )
            )
        write(
            encode(
                [
                    ("Event", "StatusComplete"),
                    ("ActionID", action_id),
                    ("EventList", "Complete"),
                    ("ListItems", str(len(self.channels))),
                    ("Items", str(len(self.channels))),
                ]
            )
        )

    def _originate(self, session: Session, action_id: str, lines: Lines) -> None:
        def reply(*more: tuple[str, str]) -> None:
            session.writer.write(encode([("ActionID", action_id), *more]))

        if self.originate_plan == "refuse":
            reply(("Response", "Error"), ("Message", "Originate failed"))
            return
        target = first(lines, "Channel")
        if "/" not in target or not first(lines, "Exten"):
            reply(("Response", "Error"), ("Message", "Channel not specified" if "/" not in target else "Exten missing"))
            return
        reply(("Response", "Success"), ("Message", "Originate successfully queued"))
        variables = dict(v.partition("=")[::2] for k, v in lines if k.lower() == "variable")
        play = Play(
            self,
            [tuple(s) for s in FLOWS[PLANS.get(self.originate_plan, "callback")]],
            caller=first(lines, "CallerID"),
            line="",
            number=first(lines, "Exten"),
            leg=target,
            context=first(lines, "Context"),
            action_id=action_id,
            variables=variables,
        )
        if self.autoplay:
            task = asyncio.get_running_loop().create_task(play.run(self.step_delay))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self.originated.put_nowait(play)


class Play:
    """One scripted call being played on the switch: :meth:`step` plays the next step, :meth:`run` the rest."""

    def __init__(
        self,
        pbx: Pbx,
        steps: Sequence[tuple[str, ...]],
        *,
        caller: str,
        line: str,
        number: str = "",
        leg: str = "",
        context: str = "",
        action_id: str = "",
        variables: dict[str, str] | None = None,
    ) -> None:
        self.pbx = pbx
        self.steps = list(steps)
        self.caller, self.line = caller, line
        self.number, self.leg_name, self.context = number, leg, context
        self.action_id = action_id
        self.variables = variables or {}
        self.position = 0
        self.caller_channel: Channel | None = None
        self.agents: dict[str, Channel] = {}
        self.far: Channel | None = None
        self.bridge = ""
        self.queue = ""

    @property
    def done(self) -> bool:
        return self.position >= len(self.steps)

    @property
    def linkedid(self) -> str:
        return self.caller_channel.linkedid if self.caller_channel else ""

    @property
    def next_op(self) -> str:
        """The operation the next step plays ("" when the call is over)."""
        return "" if self.done else self.steps[self.position][0]

    def reassign(self, extension: str, to: str) -> None:
        """The steps not yet played ring ``to`` wherever they would have rung ``extension`` (a caller picked by
        whoever is free once the call arrived)."""
        ahead = self.steps[self.position :]
        self.steps[self.position :] = [tuple(to if arg == extension else arg for arg in step) for step in ahead]

    def step(self) -> str:
        """Play the next step; its operation's name."""
        op, *args = self.steps[self.position]
        self.position += 1
        getattr(self, f"_op_{op}")(*args)
        return op

    async def run(self, delay: float = 0.0) -> None:
        while not self.done:
            self.step()
            await asyncio.sleep(delay)

    # -- inbound ---------------------------------------------------------------------------------------

    def _op_arrive(self) -> None:
        pbx = self.pbx
        channel = pbx.new_channel(pbx.trunk, cid_num=self.caller, exten=self.line, context="from-trunk")
        self.caller_channel = channel
        pbx.emit("Newchannel", channel.headers())
        channel.state = "Ring"
        pbx.emit("Newstate", channel.headers())

    def _caller(self) -> Channel:
        assert self.caller_channel is not None, "the caller has not arrived"
        return self.caller_channel

    def _op_enqueue(self, queue: str) -> None:
        caller = self._caller()
        caller.state, caller.application, caller.appdata = "Up", "Queue", f"{queue},t"
        self.pbx.emit("Newstate", caller.headers())
        self.pbx.emit(
            "QueueCallerJoin", [*caller.headers(), ("Queue", queue), ("Position", "1"), ("Count", "1")], "agent,all"
        )
        self.queue = queue

    def _agent_leg(self, extension: str) -> Channel:
        caller = self._caller()
        agent = self.pbx.new_channel(
            f"PJSIP/{extension}",
            caller.linkedid,
            cid_num=extension,
            context="from-internal",
            exten=extension,
            connected_num=caller.cid_num,
        )
        self.agents[extension] = agent
        self.pbx.emit("Newchannel", agent.headers())
        return agent

    def _op_ring_agent(self, extension: str) -> None:
        caller, agent = self._caller(), self._agent_leg(extension)
        queue = self.queue
        self.pbx.emit(
            "AgentCalled",
            [
                *caller.headers(),
                *agent.headers("Dest"),
                ("Queue", queue),
                ("Interface", f"PJSIP/{extension}"),
                ("MemberName", extension),
            ],
            "agent,all",
        )
        self.pbx.emit("DialBegin", [*caller.headers(), *agent.headers("Dest"), ("DialString", extension)])
        agent.state = "Ringing"
        self.pbx.emit("Newstate", agent.headers())

    def _answer_leg(self, extension: str, *, queue: bool) -> None:
        pbx, caller, agent = self.pbx, self._caller(), self.agents[extension]
        agent.state = "Up"
        pbx.emit("Newstate", agent.headers())
        pbx.emit("DialEnd", [*caller.headers(), *agent.headers("Dest"), ("DialStatus", "ANSWER")])
        if queue:
            q = self.queue
            pbx.emit(
                "QueueCallerLeave", [*caller.headers(), ("Queue", q), ("Position", "1"), ("Count", "0")], "agent,all"
            )
            pbx.emit(
                "AgentConnect",
                [
                    *caller.headers(),
                    *agent.headers("Dest"),
                    ("Queue", q),
                    ("Interface", f"PJSIP/{extension}"),
                    ("MemberName", extension),
                    ("HoldTime", str(int(pbx.clock() - caller.created))),
                    ("RingTime", "3"),
                ],
                "agent,all",
            )
        caller.state = "Up"
        self._bridge(caller, agent)

    def _bridge(self, *channels: Channel) -> None:
        pbx = self.pbx
        if not self.bridge:
            self.bridge = f"b{next(pbx._ids):08x}-0000-4000-8000-000000000000"
            pbx.bridges[self.bridge] = []
        for channel in channels:
            if channel.uid in pbx.bridges[self.bridge]:
                continue
            pbx.bridges[self.bridge].append(channel.uid)
            channel.bridge = self.bridge
            pbx.emit(
                "BridgeEnter",
                [
                    ("BridgeUniqueid", self.bridge),
                    ("BridgeType", "basic"),
                    ("BridgeTechnology", "simple_bridge"),
                    ("BridgeCreator", "<unknown>"),
                    ("BridgeName", "<unknown>"),
                    ("BridgeNumChannels", str(len(pbx.bridges[self.bridge]))),
                    ("BridgeVideoSourceMode", "none"),
                    *channel.headers(),
                ],
            )

    def _unbridge(self, channel: Channel) -> None:
        pbx = self.pbx
        members = pbx.bridges.get(channel.bridge, [])
        if channel.uid in members:
            members.remove(channel.uid)
            pbx.emit(
                "BridgeLeave",
                [
                    ("BridgeUniqueid", channel.bridge),
                    ("BridgeType", "basic"),
                    ("BridgeNumChannels", str(len(members))),
                    *channel.headers(),
                ],
            )
        channel.bridge = ""

    def _hangup(self, channel: Channel, cause: str, text: str) -> None:
        pbx = self.pbx
        self._unbridge(channel)
        pbx.channels.pop(channel.uid, None)
        pbx.emit("Hangup", [*channel.headers(), ("Cause", cause), ("Cause-txt", text)])

    def _op_agent_answers(self, extension: str) -> None:
        self._answer_leg(extension, queue=True)

    def _op_agent_no_answer(self, extension: str) -> None:
        caller, agent = self._caller(), self.agents.pop(extension)
        self.pbx.emit("DialEnd", [*caller.headers(), *agent.headers("Dest"), ("DialStatus", "NOANSWER")])
        self.pbx.emit(
            "AgentRingNoAnswer",
            [
                *caller.headers(),
                *agent.headers("Dest"),
                ("Queue", self.queue),
                ("Interface", f"PJSIP/{extension}"),
                ("RingTime", "15000"),
            ],
            "agent,all",
        )
        self._hangup(agent, "19", "No answer")

    def _op_abandon(self) -> None:
        caller = self._caller()
        self.pbx.emit(
            "QueueCallerAbandon",
            [
                *caller.headers(),
                ("Queue", self.queue),
                ("Position", "1"),
                ("OriginalPosition", "1"),
                ("HoldTime", str(int(self.pbx.clock() - caller.created))),
            ],
            "agent,all",
        )
        self.pbx.emit(
            "QueueCallerLeave",
            [*caller.headers(), ("Queue", self.queue), ("Position", "1"), ("Count", "0")],
            "agent,all",
        )

    def _op_blind_transfer(self, extension: str, to: str) -> None:
        caller, agent = self._caller(), self.agents.pop(extension)
        self.pbx.emit(
            "BlindTransfer",
            [
                ("Result", "Success"),
                *agent.headers("Transferer"),
                *caller.headers("Transferee"),
                ("BridgeUniqueid", self.bridge),
                ("BridgeType", "basic"),
                ("IsExternal", "No"),
                ("Context", "from-internal"),
                ("Extension", to),
            ],
        )
        self._unbridge(caller)
        self._hangup(agent, "16", "Normal Clearing")
        self.bridge = ""
        caller.application, caller.appdata, caller.exten, caller.context = "Dial", f"PJSIP/{to}", to, "from-internal"

    def _op_ring_extension(self, extension: str) -> None:
        caller, agent = self._caller(), self._agent_leg(extension)
        caller.application, caller.appdata = "Dial", f"PJSIP/{extension},30"
        self.pbx.emit("DialBegin", [*caller.headers(), *agent.headers("Dest"), ("DialString", extension)])
        agent.state = "Ringing"
        self.pbx.emit("Newstate", agent.headers())

    def _op_extension_answers(self, extension: str) -> None:
        self._answer_leg(extension, queue=False)

    def _op_extension_no_answer(self, extension: str) -> None:
        caller, agent = self._caller(), self.agents.pop(extension)
        self.pbx.emit("DialEnd", [*caller.headers(), *agent.headers("Dest"), ("DialStatus", "NOANSWER")])
        self._hangup(agent, "19", "No answer")

    def _op_caller_hangs_up(self, cause: str, text: str) -> None:
        caller = self._caller()
        for extension in list(self.agents):
            self._hangup(self.agents.pop(extension), "16", "Normal Clearing")
        self._hangup(caller, cause, text)

    # -- outbound (Originate) --------------------------------------------------------------------------

    def _op_leg_created(self) -> None:
        pbx = self.pbx
        tech = self.leg_name
        leg = pbx.new_channel(tech, cid_num=tech.partition("/")[2], context=self.context or "from-internal", exten="s")
        self.caller_channel = leg
        pbx.emit("Newchannel", leg.headers())
        for name, value in self.variables.items():
            leg.variables[name] = value
            pbx.emit("VarSet", [*leg.headers(), ("Variable", name), ("Value", value)], "dialplan,all")

    def _op_leg_rings(self) -> None:
        leg = self._caller()
        leg.state = "Ringing"
        self.pbx.emit("Newstate", leg.headers())

    def _op_leg_answers(self) -> None:
        leg = self._caller()
        leg.state, leg.exten, leg.connected_num = "Up", self.number, self.number
        self.pbx.emit("Newstate", leg.headers())

    def _op_leg_hangs_up(self, cause: str, text: str) -> None:
        self._hangup(self._caller(), cause, text)

    def _op_originate_done(self, result: str, reason: str) -> None:
        leg = self._caller()
        self.pbx.emit(
            "OriginateResponse",
            [
                ("ActionID", self.action_id),
                ("Response", result),
                ("Channel", self.leg_name),
                ("Context", self.context),
                ("Exten", self.number),
                ("Application", ""),
                ("Data", ""),
                ("Reason", reason),
                ("Uniqueid", leg.uid if result == "Success" else "<null>"),
                ("CallerIDNum", self.caller or "<unknown>"),
                ("CallerIDName", "<unknown>"),
            ],
        )

    def _op_dial_far(self) -> None:
        pbx, leg = self.pbx, self._caller()
        far = pbx.new_channel(pbx.trunk, leg.linkedid, cid_num=self.number, context="from-trunk", exten=self.number)
        self.far = far
        leg.application, leg.appdata = "Dial", f"{pbx.trunk}/{self.number},60"
        pbx.emit("Newchannel", far.headers())
        pbx.emit("DialBegin", [*leg.headers(), *far.headers("Dest"), ("DialString", f"trunk/{self.number}")])
        far.state = "Ringing"
        pbx.emit("Newstate", far.headers())

    def _op_far_answers(self) -> None:
        pbx, leg, far = self.pbx, self._caller(), self._far()
        far.state = "Up"
        pbx.emit("Newstate", far.headers())
        pbx.emit("DialEnd", [*leg.headers(), *far.headers("Dest"), ("DialStatus", "ANSWER")])
        self._bridge(leg, far)

    def _far(self) -> Channel:
        assert self.far is not None, "the far side was not dialled"
        return self.far

    def _op_far_no_answer(self, status: str, cause: str, text: str) -> None:
        pbx, leg, far = self.pbx, self._caller(), self._far()
        pbx.emit("DialEnd", [*leg.headers(), *far.headers("Dest"), ("DialStatus", status)])
        self._hangup(far, cause, text)
        self._hangup(leg, "16", "Normal Clearing")

    def _op_far_hangs_up(self, cause: str, text: str) -> None:
        self._hangup(self._far(), cause, text)
        self._hangup(self._caller(), "16", "Normal Clearing")


# -- the demo CLI ----------------------------------------------------------------------------------------


async def _random_calls(pbx: Pbx, extensions: Sequence[str], numbers: Sequence[str], per_minute: float) -> None:
    rng = random.Random()
    flows = ["answered"] * 6 + ["abandoned", "transferred", "missed"]
    tasks: set[asyncio.Task[None]] = set()
    while True:
        await asyncio.sleep(rng.expovariate(per_minute / 60.0))
        ext = rng.choice(extensions)
        others = [e for e in extensions if e != ext] or [ext]
        play = pbx.call(rng.choice(flows), caller=rng.choice(numbers), extension=ext, to=rng.choice(others))
        task = asyncio.create_task(play.run(rng.uniform(2.0, 8.0)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def serve(args: argparse.Namespace) -> None:
    pbx = Pbx(username=args.username, secret=args.secret, line=args.line)
    pbx.step_delay = 3.0
    port = await pbx.start(args.host, args.port)
    log.info("simulated PBX: AMI on %s:%s", args.host, port)
    print(f"simulated PBX listening on {args.host}:{port}", flush=True)
    extensions = [e for e in args.extensions.split(",") if e]
    numbers = [n for n in args.numbers.split(",") if n]
    try:
        if args.calls_per_minute > 0 and extensions and numbers:
            await _random_calls(pbx, extensions, numbers, args.calls_per_minute)
        else:
            await asyncio.Event().wait()
    finally:
        await pbx.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a simulated Asterisk PBX speaking AMI, with random hotline calls")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5038)
    parser.add_argument("--username", default="anxin")
    parser.add_argument("--secret", default="s3cret")
    parser.add_argument("--line", default="12349", help="the hotline number callers dial")
    parser.add_argument("--extensions", default="8101,8102")
    parser.add_argument("--numbers", default="13800138000,13900139000")
    parser.add_argument("--calls-per-minute", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
