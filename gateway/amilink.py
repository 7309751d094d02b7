"""The link to the PBX's manager interface: a thin asyncio transport around gateway.ami and gateway.pbx.

Theory of operation
-------------------
What it owns
    :class:`PbxLink` holds one TCP connection to an Asterisk manager interface at a time and is the core's
    :class:`dispatch.commands.Telephony` (``connected``, ``originate``). ``run()`` lives until cancelled:

    1. connect (``connect_timeout``), read the banner, ``Login`` (``Events: on``);
    2. list the live channels (``CoreShowChannels``, then ``Status`` with ``Variables: ANXIN_CALL``) and let
       :meth:`gateway.pbx.CallTracker.rebuild` reconcile the calls it followed before;
    3. read: every event goes through the tracker, every call event it makes goes to ``on_event``;
    4. keep alive: a ``Ping`` every ``ping_interval`` seconds; no answer within ``ping_timeout``: the peer is
       dead and the link is dropped;
    5. when the link drops (refused, reset, garbage, timeout), wait and start again at 1. The wait doubles
       from ``backoff_s`` up to ``backoff_max_s``, with jitter (so that several nodes do not knock at once),
       and starts from ``backoff_s`` again after a login that lived ``stable_s``. A refused login waits
       ``backoff_max_s`` at once: a wrong secret does not fix itself, and a PBX that locks out users after
       failures must not be hammered. The error names the user, never the secret.

Rules
    1. One consumer hands call events to ``on_event`` in the order the PBX sent them (an asyncio queue and
       one task, never a task per event). A failing ``on_event`` (the journal refusing) is retried, the same
       event, with backoff and a log line each time, until it is taken: a call event is never dropped for
       want of a journal. An event the core refuses as such (:class:`dispatch.errors.InvalidInput`: it
       would refuse it again) is logged, counted (``refused``) and passed, so that one odd event does not
       stop the hotline's next calls from being followed.
    2. Reads are bounded: the codec refuses a message over 64 KiB, a list action's answer over
       :data:`MAX_LIST` entries is refused too, and the link drops.
    3. Time comes from ``clock`` (the ``at`` of rebuilt calls) and waits from ``sleep``, both injected.
    4. ``status()`` is what metrics and the health page show: connected, since, reconnects, last_error,
       events_in, refused.

What it must never do: block the reader on the core (the consumer does the waiting), log the secret, or
answer an ``originate`` before the PBX did.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from dispatch.clock import Clock
from dispatch.commands import CallEvent, Dial
from dispatch.errors import ConfigError, InvalidInput
from dispatch.settings import Settings
from gateway.ami import AmiCodec, Message, action
from gateway.errors import (
    ActionFailed,
    HeaderInjection,
    LoginRefused,
    OriginateRefused,
    PbxError,
    PbxNotConnected,
    PeerTimeout,
    ProtocolError,
)
from gateway.pbx import ACTOR, VARIABLE, CallTracker

log = logging.getLogger(__name__)

READ_SIZE = 16 * 1024
CLOSE_WAIT_S = 2.0  # the longest a dropped link waits for its socket to close
#: the most entries a list action (CoreShowChannels, Status) may answer with; no PBX carries that many
#: channels, and a list that never completes must not grow until the action times out
MAX_LIST = 50_000
Sleep = Callable[[float], Awaitable[object]]


class PbxLink:
    """The PBX, reached over AMI (see the module's theory of operation)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        secret: str,
        on_event: Callable[[CallEvent], Awaitable[object]],
        clock: Clock,
        extensions: Mapping[str, str] | None = None,
        channel: str = "PJSIP/{extension}",
        context: str = "from-internal",
        caller_id: str = "",
        queues: Iterable[str] = (),
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
        connect_timeout: float = 10.0,
        action_timeout: float = 10.0,
        ping_interval: float = 20.0,
        ping_timeout: float = 10.0,
        stable_s: float = 60.0,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        actor: str = ACTOR,
    ) -> None:
        self.host, self.port = host, port
        self.username = username
        self._secret = secret
        self.on_event = on_event
        self.clock = clock
        self.tracker = CallTracker(
            extensions=extensions or {},
            channel=channel,
            context=context,
            caller_id=caller_id,
            queues=queues,
            actor=actor,
        )
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self.connect_timeout, self.action_timeout = connect_timeout, action_timeout
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.stable_s = stable_s
        self.sleep = sleep
        self.jitter = jitter
        self.since: float | None = None
        self.reconnects = 0
        self.last_error = ""
        self.events_in = 0
        self.delivered = 0
        self.refused = 0  # call events the core refused (InvalidInput), logged and passed
        self._ids = itertools.count(1)
        self._writer: asyncio.StreamWriter | None = None
        self._logged_in = False
        self._waiting: dict[str, asyncio.Future[Message]] = {}
        self._lists: dict[str, list[Message]] = {}
        self._queue: asyncio.Queue[CallEvent] = asyncio.Queue()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, on_event: Callable[[CallEvent], Awaitable[object]], clock: Clock, **options: Any
    ) -> PbxLink:
        """The link the settings describe (``pbx_*``; :func:`pbx_secret` checks them)."""
        secret = pbx_secret(settings)
        return cls(
            host=settings.pbx_host,
            port=settings.pbx_port,
            username=settings.pbx_username,
            secret=secret,
            on_event=on_event,
            clock=clock,
            extensions=settings.pbx_extensions,
            channel=settings.pbx_channel,
            context=settings.pbx_context,
            caller_id=settings.pbx_caller_id,
            queues=settings.pbx_queues,
            backoff_s=settings.pbx_backoff_s,
            backoff_max_s=settings.pbx_backoff_max_s,
            **options,
        )

    # -- the Telephony seam ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._logged_in and self._writer is not None and not self._writer.is_closing()

    async def originate(self, dial: Dial) -> None:
        """Ask the PBX to place ``dial``; returns when it accepted (raises :class:`OriginateRefused` when it
        did not, :class:`PbxNotConnected` without a link, :class:`PeerTimeout` when it does not say)."""
        if not self.connected:
            raise PbxNotConnected(f"the PBX at {self.host}:{self.port} is not connected")
        action_id = self._next_id()
        frame = self.tracker.originate(dial, action_id)
        try:
            await self._request(action_id, frame, "Originate")
        except ActionFailed as exc:
            self.tracker.originate_refused(action_id)
            raise OriginateRefused("Originate", exc.message) from None
        # on a timeout or a drop the PBX may still place the call: the tracker keeps expecting it, so that
        # its events still report under dial.call_id (or the rebuild ends it)

    def status(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "since": self.since if self.connected else None,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
            "events_in": self.events_in,
            "calls": len(self.tracker.calls),
            "undelivered": self._queue.qsize(),
            "refused": self.refused,
        }

    # -- the loop --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, follow, reconnect, until cancelled."""
        consumer = asyncio.create_task(self._consume(), name="pbx-events")
        me = asyncio.current_task()
        delay = self.backoff_s
        try:
            while True:
                started = self.clock.now()
                try:
                    await self._session()
                except LoginRefused as exc:
                    self._failed(exc)
                    log.error("PBX %s:%s refused the manager login of user %r", self.host, self.port, self.username)
                    delay = self.backoff_max_s
                except (OSError, TimeoutError, EOFError, ProtocolError, PbxError) as exc:
                    self._failed(exc)
                    log.warning("PBX link to %s:%s dropped: %s", self.host, self.port, self.last_error)
                except Exception as exc:  # a bug on our side: the hotline must keep being followed
                    self._failed(exc)
                    log.exception("PBX link to %s:%s failed", self.host, self.port)
                finally:
                    lived = self.since is not None and self.since >= started
                    if lived and self.clock.now() - (self.since or 0.0) >= self.stable_s:
                        delay = self.backoff_s
                    self._closed()
                if me is not None and me.cancelling():
                    # asked to stop while an action timed out: Python 3.11's asyncio.timeout can turn that
                    # cancellation into the TimeoutError caught above; the link must stop all the same
                    raise asyncio.CancelledError
                self.reconnects += 1
                wait = min(delay, self.backoff_max_s) * (0.5 + self.jitter() / 2)
                await self.sleep(wait)
                delay = min(delay * 2, self.backoff_max_s)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer

    def _failed(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    async def _session(self) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout=self.connect_timeout
        )
        self._writer = writer
        codec = AmiCodec()
        reading = asyncio.create_task(self._read(reader, codec), name="pbx-read")
        try:
            try:
                await self._login()
                self.since = self.clock.now()
                self._logged_in = True
                self.tracker.connected()
                log.info("PBX link to %s:%s up (%s)", self.host, self.port, codec.banner)
                await self._rebuild()
            except PbxNotConnected:
                if reading.done():
                    reading.result()  # the reader's own error (garbage, EOF) says more
                raise
            keepalive = asyncio.create_task(self._keepalive(), name="pbx-ping")
            done, _ = await asyncio.wait({reading, keepalive}, return_when=asyncio.FIRST_COMPLETED)
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
            for task in done:
                task.result()  # the reader's or the pinger's error ends the session
            raise EOFError("the PBX closed the connection")
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading
            writer.close()
            with contextlib.suppress(Exception):  # a peer that never lets the socket close does not hold us
                await asyncio.wait_for(writer.wait_closed(), CLOSE_WAIT_S)

    def _closed(self) -> None:
        self._logged_in = False
        self._writer = None
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(PbxNotConnected("the PBX link dropped"))
        self._waiting.clear()
        self._lists.clear()

    async def _read(self, reader: asyncio.StreamReader, codec: AmiCodec) -> None:
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    raise EOFError("the PBX closed the connection")
                for message in codec.receive_data(data):
                    self._dispatch(message)
        except BaseException as exc:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(PbxNotConnected(f"the PBX link dropped ({type(exc).__name__})"))
            raise

    def _dispatch(self, message: Message) -> None:
        action_id = message.action_id
        if message.response and not message.event:  # OriginateResponse is an event with a Response header
            future = self._waiting.get(action_id)
            if future is not None and not future.done():
                future.set_result(message)
            return
        self.events_in += 1
        if action_id in self._lists:
            if len(self._lists[action_id]) >= MAX_LIST:
                raise ProtocolError(f"the PBX's list {action_id} passed {MAX_LIST} entries without completing")
            self._lists[action_id].append(message)
            if message.get("EventList") == "Complete" or message.event.endswith("Complete"):
                future = self._waiting.get(action_id + "/complete")
                if future is not None and not future.done():
                    future.set_result(message)
            return
        for event in self.tracker.handle(message, self.clock.now()):
            self._queue.put_nowait(event)

    def _next_id(self) -> str:
        return f"anxin-{next(self._ids)}"

    async def _request(self, action_id: str, frame: bytes, name: str) -> Message:
        """Send an action and wait for its response; ``Response: Error`` raises :class:`ActionFailed`."""
        writer = self._writer
        if writer is None:
            raise PbxNotConnected("the PBX link is down")
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[action_id] = future
        try:
            writer.write(frame)
            await writer.drain()
            async with asyncio.timeout(self.action_timeout):
                response = await future
        except TimeoutError:  # before OSError, of which it is a subclass: a silent PBX is not a dropped link
            raise PeerTimeout(f"no answer from the PBX within {self.action_timeout:g} s") from None
        except OSError as exc:
            raise PbxNotConnected(f"the PBX link dropped ({type(exc).__name__})") from exc
        finally:
            self._waiting.pop(action_id, None)
        if response.response == "Error":
            raise ActionFailed(name, response.get("Message"))
        return response

    async def _login(self) -> None:
        action_id = self._next_id()
        frame = action("Login", action_id, Username=self.username, Secret=self._secret, Events="on")
        try:
            await self._request(action_id, frame, "Login")
        except ActionFailed as exc:
            raise LoginRefused(f"user {self.username!r}: {exc.message}") from None

    async def _list(self, name: str, **headers: str) -> list[Message]:
        """Send a list action (CoreShowChannels, Status) and collect its events until the list completes."""
        action_id = self._next_id()
        self._lists[action_id] = []
        complete: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[action_id + "/complete"] = complete
        try:
            await self._request(action_id, action(name, action_id, headers), name)
            async with asyncio.timeout(self.action_timeout):
                await complete
        except TimeoutError:
            raise PeerTimeout(f"the PBX did not finish its {name} list within {self.action_timeout:g} s") from None
        finally:
            self._waiting.pop(action_id + "/complete", None)
        return [m for m in self._lists.pop(action_id, []) if not m.event.endswith("Complete")]

    async def _rebuild(self) -> None:
        channels = await self._list("CoreShowChannels")
        statuses = await self._list("Status", Variables=VARIABLE) if channels else []
        for event in self.tracker.rebuild(channels, statuses, self.clock.now()):
            self._queue.put_nowait(event)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            action_id = self._next_id()
            try:
                await asyncio.wait_for(self._request(action_id, action("Ping", action_id), "Ping"), self.ping_timeout)
            except TimeoutError:
                raise PeerTimeout(f"no Pong from the PBX within {self.ping_timeout:g} s") from None

    # -- the one consumer ------------------------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            event = await self._queue.get()
            delay = self.backoff_s
            while True:
                try:
                    await self.on_event(event)
                except asyncio.CancelledError:
                    raise
                except InvalidInput as exc:  # the core will refuse it again: waiting would stop every next call
                    self.refused += 1
                    log.error("call event %s of %s refused by the core, passed (%s)", event.event, event.call_id, exc)
                    break
                except Exception as exc:
                    log.error(
                        "call event %s of %s not taken (%s: %s); again in %.1f s",
                        event.event,
                        event.call_id,
                        type(exc).__name__,
                        exc,
                        delay,
                    )
                    await self.sleep(delay)
                    delay = min(delay * 2, self.backoff_max_s)
                    continue
                self.delivered += 1
                break


def pbx_secret(settings: Settings) -> str:
    """The manager user's secret, from ``pbx_secret`` or ``pbx_secret_file``, once the PBX settings are known to
    work: a host and a user, a secret that can be read, and actions that can be written from them. ConfigError
    otherwise (the server refuses to start), naming the setting, never the secret's value."""
    if not settings.pbx_host:
        raise ConfigError("no PBX configured (pbx_host is empty)")
    if not settings.pbx_username:
        raise ConfigError("pbx_host is set but pbx_username is not: the manager user Anxin logs in as")
    secret = settings.pbx_secret
    if not secret and settings.pbx_secret_file is not None:
        try:
            secret = settings.pbx_secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            where = settings.pbx_secret_file
            raise ConfigError(f"pbx_secret_file {where} cannot be read: {exc.strerror}") from None
    _check_frames(settings, secret)
    return secret


def _check_frames(settings: Settings, secret: str) -> None:
    """ConfigError unless the Login and an Originate to every operator's extension can be written from the
    settings: no control character in them (gateway.ami rule 7), and a ``pbx_channel`` that names the extension.
    The message names the setting, never the secret's value."""
    try:
        action("Login", "check", Username=settings.pbx_username, Secret=secret, Events="on")
    except HeaderInjection:
        raise ConfigError("pbx_username or the PBX secret holds a control character (a line break?)") from None
    channel = settings.pbx_channel
    try:
        formatted = channel.format(extension="8101")
    except (KeyError, IndexError, ValueError, AttributeError):
        raise ConfigError(f"pbx_channel {channel!r} may name only {{extension}}") from None
    if "{extension}" not in channel or formatted == channel.format(extension="8102"):
        raise ConfigError(f"pbx_channel {channel!r} must name the operator's {{extension}}")
    tracker = CallTracker(
        extensions=settings.pbx_extensions,
        channel=channel,
        context=settings.pbx_context,
        caller_id=settings.pbx_caller_id,
    )
    for extension in settings.pbx_extensions or {"8101": ""}:
        try:
            tracker.originate(Dial("check", extension, "100", "check"), "check")
        except HeaderInjection:
            raise ConfigError(
                f"pbx_extensions {extension!r}, pbx_channel, pbx_context or pbx_caller_id holds a control character"
            ) from None
