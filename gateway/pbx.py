"""The PBX's calls, followed from its AMI events, sans-I/O: AMI messages in, :class:`CallEvent` out.

Theory of operation
-------------------
What it owns
    :class:`CallTracker` keeps one :class:`Track` per hotline call the PBX is carrying and turns the manager
    interface's events (gateway.ami messages, with ``now`` passed in) into the core's call events: ringing,
    queued, answered, transferred, ended. It builds the Originate action of a click-to-call and follows that
    call too. It never touches a socket or a clock: gateway.amilink feeds it and hands its events on.

What a call is
    A call is the caller's channel and everything Asterisk links to it: every channel of one call carries the
    same ``Linkedid`` (the Uniqueid of the call's first channel), so ``call_id`` = ``"pbx-" + Linkedid``,
    stable across reconnects and restarts. An inbound call starts with a Newchannel whose Uniqueid is its
    Linkedid and whose channel is not one of the operators' extensions. With ``queues`` configured, a call is
    the hotline's only once it joins one of them (its ringing is then reported with its Newchannel's time).

Events read (Asterisk 13+ AMI event documentation; each is matched by the caller's Linkedid)
    ====================  ==================================================================
    Newchannel            inbound caller: ringing (caller = CallerIDNum, line = Exten)
    Newstate              outbound far leg Ringing: ringing; Up: answered
    QueueCallerJoin       queued (queue = Queue)
    AgentConnect          answered (extension from Interface / DestChannel)
    DialEnd ANSWER        answered (extension from DestChannel)
    BridgeEnter           a channel in the caller's bridge: answered by its extension
    BlindTransfer         the next extension to answer is a transfer (Extension)
    AttendedTransfer      transferred to TransferTargetChannel's extension at once
    Hangup                the caller's channel (an outbound call: the operator's leg; a far leg's cause is
                          kept for it, as the dialplan may fail over to another trunk): ended
                          ("<Cause> <Cause-txt>")
    VarSet ANXIN_CALL     the channel belongs to click-to-call ``call_id``
    OriginateResponse     Success: its Uniqueid is the click-to-call's (when VarSet did not say);
                          Failure: that click-to-call ended, cause "originate failed: <Reason>"
    ====================  ==================================================================

Rules
    1. States move along :data:`TRANSITIONS` only. The PBX's order is not ours to trust: a move the table
       does not hold (queued after answered, anything after ended) is an out-of-order event, ignored and
       counted, never an error and never a step backwards.
    2. An event about a call never seen (it began while the link was down) creates it, in the state the
       event shows.
    3. ``CallEvent.at`` is the event's ``Timestamp`` (manager.conf ``timestampevents = yes``) when present.
    4. After every (re)connect the link lists the live channels (CoreShowChannels, Status with
       ``Variables=ANXIN_CALL``) and :meth:`CallTracker.rebuild` reconciles: a call tracked before the link
       dropped, with no channel any more and no event since, ended while the link was down; a call the
       channels show and the tracker does not know is created (Application Queue: queued; bridged with
       another channel: answered by it), with ``at`` = now - its channel's Duration. A channel held back
       for a hotline queue (``queues``) that the channels no longer show is forgotten.
    5. Extensions map to operators through ``extensions`` (settings ``pbx_extensions``); an extension
       nobody is mapped to still answers the call (``operator=None``).
    6. Memory is bounded where the PBX alone decides what is kept: ended calls remembered
       (:data:`ENDED_KEPT`) and channels held back for a queue (:data:`PENDING_KEPT`).

What it must never do: lose a call's end (ended is reported once, and it is final), move a call backwards,
or raise on an event's content: a PBX event that does not fit is ignored and counted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from dispatch.commands import CallEvent, CallEventKind, Dial
from gateway.ami import Message, action

State = Literal["ringing", "queued", "answered", "transferred", "ended"]

#: (state, event) -> new state; a pair not here is an out-of-order event and is ignored
TRANSITIONS: dict[tuple[State, CallEventKind], State] = {
    ("ringing", "queued"): "queued",
    ("ringing", "answered"): "answered",
    ("ringing", "ended"): "ended",
    ("queued", "answered"): "answered",
    ("queued", "ended"): "ended",
    ("answered", "transferred"): "transferred",
    ("answered", "ended"): "ended",
    ("transferred", "transferred"): "transferred",
    ("transferred", "ended"): "ended",
}

ACTOR = "system:pbx"
VARIABLE = "ANXIN_CALL"
LINK_DOWN_CAUSE = "ended while the PBX link was down"
#: OriginateResponse "Reason" codes (Asterisk's enum ast_control_frame_type as the originate reports it)
ORIGINATE_REASONS = {
    "0": "no such channel or extension",
    "1": "hung up",
    "3": "no answer",
    "4": "answered",
    "5": "busy",
    "8": "congestion",
}
#: how many ended calls are remembered, so that a late event about one does not bring it back
ENDED_KEPT = 4096
#: how many channels are held back waiting to join a hotline queue (``queues``); beyond it the oldest is
#: forgotten (counted): should it join a queue after all, it is still the hotline's, rung from then
PENDING_KEPT = 10_000
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]{6,}$")


def extension_of(channel: str) -> str:
    """The extension a channel or queue interface names: "PJSIP/8101-0000002a" and "PJSIP/8101" -> "8101",
    "Local/8102@from-queue-00000003;1" -> "8102", "SIP/8101-1f2e3d4c" -> "8101"; "" when it names none."""
    _, slash, resource = channel.partition("/")
    if not slash:
        return ""
    resource = resource.split(";", 1)[0]
    if "@" in resource:
        return resource.split("@", 1)[0]
    return _CHANNEL_SUFFIX.sub("", resource)


@dataclass(frozen=True, slots=True)
class Track:
    """One call as the tracker follows it."""

    call_id: str
    linkedid: str
    state: State
    caller: str
    line: str
    direction: Literal["in", "out"] = "in"
    caller_uid: str = ""  # the Uniqueid of the caller's channel (outbound: the operator's leg)
    extension: str = ""
    operator: str | None = None
    queue: str = ""
    transfer_to: str | None = None  # a blind transfer's target, until an extension answers
    rung: bool = True  # outbound: the far side was reported ringing (the core hears of the call then)
    far_cause: str = ""  # outbound: the hangup cause of the last far leg that ended (busy, congestion)
    epoch: int = 0  # the link's connection number when an event last touched it


@dataclass(frozen=True, slots=True)
class _Pending:
    """A Newchannel held back until it joins a hotline queue (when ``queues`` is configured)."""

    uid: str
    caller: str
    line: str
    at: float | None


def _duration(text: str) -> float | None:
    """CoreShowChannel's "Duration" ("00:01:05") or Status's "Seconds" ("65") in seconds."""
    try:
        parts = [int(p) for p in text.split(":")]
    except ValueError:
        return None
    if not parts or len(parts) > 3 or any(p < 0 for p in parts):
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + part
    return float(seconds)


def _timestamp(message: Message) -> float | None:
    try:
        value = float(message.get("Timestamp"))
    except ValueError:
        return None
    return value if value > 0 and value == value and value != float("inf") else None


class CallTracker:
    """The calls the PBX carries, as AMI events show them (see the module's rules)."""

    def __init__(
        self,
        *,
        extensions: Mapping[str, str],
        channel: str = "PJSIP/{extension}",
        context: str = "from-internal",
        caller_id: str = "",
        queues: Iterable[str] = (),
        actor: str = ACTOR,
    ) -> None:
        self.extensions = dict(extensions)
        self.channel = channel
        self.context = context
        self.caller_id = caller_id
        self.queues = frozenset(queues)
        self.actor = actor
        self.calls: dict[str, Track] = {}  # by Linkedid, ended calls removed
        self.counters: Counter[str] = Counter()
        self.epoch = 0
        self._pending: dict[str, _Pending] = {}  # Linkedid -> an inbound call waiting for a hotline queue
        self._dials: dict[str, Dial] = {}  # call_id -> a click-to-call not yet seen on a channel
        self._originates: dict[str, str] = {}  # ActionID -> call_id
        self._bridges: dict[str, dict[str, str]] = {}  # BridgeUniqueid -> {Uniqueid: channel name} in it
        self._where: dict[str, str] = {}  # Uniqueid -> its bridge
        self._ended: dict[str, None] = {}  # Linkedids of calls that ended (the latest ENDED_KEPT), in order

    # -- click-to-call ---------------------------------------------------------------------------------

    def originate(self, dial: Dial, action_id: str) -> bytes:
        """The Originate action placing ``dial``: ring the operator's extension, then dial the number."""
        headers: dict[str, str | list[str]] = {
            "Channel": self.channel.format(extension=dial.extension),
            "Context": self.context,
            "Exten": dial.number,
            "Priority": "1",
            "Async": "true",
            "Variable": [f"{VARIABLE}={dial.call_id}"],
        }
        if self.caller_id:
            headers["CallerID"] = self.caller_id
        frame = action("Originate", action_id, headers)  # HeaderInjection before anything is expected
        self._dials[dial.call_id] = dial
        self._originates[action_id] = dial.call_id
        return frame

    def originate_refused(self, action_id: str) -> None:
        """The PBX answered the Originate with an error: forget it (the caller of originate() reports it)."""
        call_id = self._originates.pop(action_id, "")
        self._dials.pop(call_id, None)

    # -- live events -----------------------------------------------------------------------------------

    def handle(self, message: Message, now: float) -> list[CallEvent]:
        """One AMI event received at ``now``; the call events it makes (most make none). Their ``at`` is the
        event's Timestamp, or None (it happened now) when the PBX does not stamp its events."""
        handler = _HANDLERS.get(message.event)
        if handler is None:
            return []
        if message.get("Linkedid") in self._ended and message.event != "BridgeLeave":
            self.counters["after_end"] += 1
            return []
        self.counters["events"] += 1
        try:
            return handler(self, message, _timestamp(message) or None)
        except (KeyError, ValueError) as exc:  # an event shaped unlike the documentation's
            self.counters["malformed"] += 1
            self.counters[f"malformed:{type(exc).__name__}"] += 1
            return []

    def _on_newchannel(self, m: Message, at: float | None) -> list[CallEvent]:
        uid, linkedid, channel = m.get("Uniqueid"), m.get("Linkedid"), m.get("Channel")
        if not uid or uid != linkedid or linkedid in self.calls:
            return []
        if extension_of(channel) in self.extensions:
            return []  # an operator's phone starting a call: only a click-to-call (VarSet) is ours
        caller, line = m.get("CallerIDNum"), m.get("Exten")
        if self.queues:
            self._pending[linkedid] = _Pending(uid, caller, line, at)
            while len(self._pending) > PENDING_KEPT:
                del self._pending[next(iter(self._pending))]
                self.counters["pending_forgotten"] += 1
            return []
        track = Track(f"pbx-{linkedid}", linkedid, "ringing", caller, line, caller_uid=uid, epoch=self.epoch)
        self.calls[linkedid] = track
        return [self._event(track, "ringing", at)]

    def _on_queue_join(self, m: Message, at: float | None) -> list[CallEvent]:
        linkedid, queue = m.get("Linkedid") or m.get("Uniqueid"), m.get("Queue")
        if not linkedid or (self.queues and queue not in self.queues):
            return []
        out: list[CallEvent] = []
        track = self.calls.get(linkedid)
        if track is None:
            pending = self._pending.pop(linkedid, None)
            uid = pending.uid if pending else m.get("Uniqueid")
            caller = pending.caller if pending else m.get("CallerIDNum")
            line = pending.line if pending else m.get("Exten")
            track = Track(f"pbx-{linkedid}", linkedid, "ringing", caller, line, caller_uid=uid, epoch=self.epoch)
            self.calls[linkedid] = track
            out.append(self._event(track, "ringing", pending.at if pending else at))
        return out + self._move(track, "queued", at, queue=queue)

    def _on_agent_connect(self, m: Message, at: float | None) -> list[CallEvent]:
        extension = extension_of(m.get("Interface")) or extension_of(m.get("DestChannel"))
        return self._answered(m.get("Linkedid"), extension, at, m)

    def _on_dial_end(self, m: Message, at: float | None) -> list[CallEvent]:
        if m.get("DialStatus") != "ANSWER":
            return []
        linkedid = m.get("Linkedid") or m.get("DestLinkedid")
        track = self.calls.get(linkedid)
        if track is not None and track.direction == "out":
            return self._move(track, "answered", at)
        return self._answered(linkedid, extension_of(m.get("DestChannel")), at, m)

    def _on_bridge_enter(self, m: Message, at: float | None) -> list[CallEvent]:
        bridge, uid = m.get("BridgeUniqueid"), m.get("Uniqueid")
        members = self._bridges.setdefault(bridge, {})
        members[uid] = m.get("Channel")
        self._where[uid] = bridge
        track = self.calls.get(m.get("Linkedid"))
        if track is None or track.direction == "out" or track.caller_uid not in members:
            return []
        others = [channel for other, channel in members.items() if other != track.caller_uid]
        if not others:
            return []
        entering = m.get("Channel") if uid != track.caller_uid else others[-1]
        return self._answered(track.linkedid, extension_of(entering), at, m)

    def _on_bridge_leave(self, m: Message, at: float | None) -> list[CallEvent]:
        self._leave(m.get("Uniqueid"))
        return []

    def _leave(self, uid: str) -> None:
        bridge = self._where.pop(uid, None)
        members = self._bridges.get(bridge or "")
        if bridge is not None and members is not None:
            members.pop(uid, None)
            if not members:
                del self._bridges[bridge]

    def _on_blind_transfer(self, m: Message, at: float | None) -> list[CallEvent]:
        if m.get("Result", "Success") != "Success":
            return []
        linkedid = m.get("TransfereeLinkedid") or m.get("TransfererLinkedid")
        track = self.calls.get(linkedid)
        if track is None or track.state not in ("answered", "transferred"):
            return []
        self.calls[linkedid] = replace(track, transfer_to=m.get("Extension"), epoch=self.epoch)
        return []

    def _on_attended_transfer(self, m: Message, at: float | None) -> list[CallEvent]:
        if m.get("Result", "Success") != "Success":
            return []
        track = self.calls.get(m.get("TransfereeLinkedid")) or self.calls.get(m.get("OrigTransfererLinkedid"))
        if track is None:
            return []
        extension = extension_of(m.get("TransferTargetChannel"))
        return self._move(replace(track, transfer_to=extension), "transferred", at, extension=extension)

    def _on_newstate(self, m: Message, at: float | None) -> list[CallEvent]:
        track = self.calls.get(m.get("Linkedid"))
        if track is None or track.direction != "out" or m.get("Uniqueid") == track.caller_uid:
            return []
        state = m.get("ChannelStateDesc")
        if state in ("Ringing", "Ring"):
            return self._ring_out(track, at)
        if state == "Up":
            return self._move(track, "answered", at)
        return []

    def _on_dial_begin(self, m: Message, at: float | None) -> list[CallEvent]:
        track = self.calls.get(m.get("Linkedid"))
        if track is None or track.direction != "out":
            return []
        return self._ring_out(track, at)

    def _on_varset(self, m: Message, at: float | None) -> list[CallEvent]:
        if m.get("Variable") != VARIABLE or not m.get("Value"):
            return []
        self._adopt(m.get("Value"), m.get("Linkedid"), m.get("Uniqueid"), m.get("Exten"))
        return []

    def _on_originate_response(self, m: Message, at: float | None) -> list[CallEvent]:
        call_id = self._originates.pop(m.action_id, "")
        if not call_id:
            return []
        if m.response == "Success":
            # the operator's leg answered: its Uniqueid is the call's Linkedid (VarSet, of the "dialplan"
            # class, may not reach a manager user that reads only "call")
            uid = m.get("Uniqueid")
            if uid and uid != "<null>":
                self._adopt(call_id, uid, uid, m.get("Exten"))
            return []
        for track in self.calls.values():
            if track.call_id == call_id:
                break
        else:
            dial = self._dials.get(call_id)
            track = Track(
                call_id,
                call_id,  # no channel: the call is known by its id only
                "ringing",
                dial.number if dial else m.get("Exten"),
                "",
                direction="out",
                extension=dial.extension if dial else "",
                operator=dial.operator if dial else None,
            )
        self._dials.pop(call_id, None)
        reason = m.get("Reason")
        cause = f"originate failed: {ORIGINATE_REASONS.get(reason, 'reason ' + reason)}"
        events = self._move(track, "ended", at, cause=cause)
        self._forget(track.linkedid)
        return events

    def _on_hangup(self, m: Message, at: float | None) -> list[CallEvent]:
        linkedid, uid = m.get("Linkedid"), m.get("Uniqueid")
        if uid == linkedid:
            self._pending.pop(linkedid, None)
        self._leave(uid)
        track = self.calls.get(linkedid)
        if track is None:
            return []
        if track.direction == "in" and uid != track.caller_uid:
            return []  # an operator's leg: the caller may still be talking, or about to be transferred
        cause = " ".join(p for p in (m.get("Cause"), m.get("Cause-txt")) if p)
        if track.direction == "out" and track.caller_uid and uid != track.caller_uid:
            # a far leg: the dialplan may try another trunk; the call ends with the operator's leg
            self.calls[linkedid] = replace(track, far_cause=cause or track.far_cause, epoch=self.epoch)
            return []
        if track.direction == "out" and not track.rung and track.call_id in self._originates.values():
            return []  # the operator's phone never answered: the OriginateResponse that follows says why
        return self._move(track, "ended", at, cause=track.far_cause or cause)

    # -- helpers ---------------------------------------------------------------------------------------

    def _forget(self, linkedid: str) -> None:
        self.calls.pop(linkedid, None)
        self._ended[linkedid] = None
        while len(self._ended) > ENDED_KEPT:
            del self._ended[next(iter(self._ended))]

    def _adopt(self, call_id: str, linkedid: str, uid: str, exten: str) -> Track | None:
        """The channel of ``linkedid`` carries ``ANXIN_CALL=call_id``: that call is click-to-call ``call_id``."""
        if not linkedid or linkedid in self.calls:
            return self.calls.get(linkedid)
        dial = self._dials.pop(call_id, None)
        number = dial.number if dial else exten
        extension = dial.extension if dial else ""
        operator = dial.operator if dial else None
        track = Track(
            call_id,
            linkedid,
            "ringing",
            number,
            "",
            direction="out",
            caller_uid=uid,
            extension=extension,
            operator=operator,
            epoch=self.epoch,
            rung=False,
        )
        self.calls[linkedid] = track  # "ringing" for the core only once the far side rings
        return track

    def _ring_out(self, track: Track, at: float | None) -> list[CallEvent]:
        if track.rung:
            return []
        self.calls[track.linkedid] = replace(track, rung=True, epoch=self.epoch)
        return [self._event(self.calls[track.linkedid], "ringing", at)]

    def _answered(self, linkedid: str, extension: str, at: float | None, m: Message) -> list[CallEvent]:
        if not linkedid or linkedid in self._ended:
            return []
        track = self.calls.get(linkedid)
        if track is None:
            if extension_of(m.get("Channel")) in self.extensions:
                return []  # an operator's own call (to a colleague, or a click-to-call not matched yet)
            pending = self._pending.pop(linkedid, None)
            if self.queues and (pending is None or m.get("Queue") not in self.queues):
                if pending is not None:
                    self._pending[linkedid] = pending
                return []
            caller = pending.caller if pending else m.get("CallerIDNum")
            line = pending.line if pending else m.get("Exten")
            uid = pending.uid if pending else (m.get("Uniqueid") or linkedid)
            track = Track(f"pbx-{linkedid}", linkedid, "ringing", caller, line, caller_uid=uid, epoch=self.epoch)
            self.calls[linkedid] = track
            first = [self._event(track, "ringing", pending.at if pending else at)]
            return first + self._move(track, "answered", at, extension=extension)
        if track.state in ("answered", "transferred"):
            if track.transfer_to is not None and extension and extension != track.extension:
                return self._move(track, "transferred", at, extension=extension)
            return []
        return self._move(track, "answered", at, extension=extension)

    def _move(
        self,
        track: Track,
        event: CallEventKind,
        at: float | None,
        *,
        extension: str | None = None,
        queue: str = "",
        cause: str = "",
    ) -> list[CallEvent]:
        new = TRANSITIONS.get((track.state, event))
        if new is None:
            self.counters["out_of_order"] += 1
            return []
        if track.direction == "out" and event == "answered" and not track.rung:
            # the far side answered before we saw it ring (a late Newstate): ring first, the core counts both
            track = replace(track, rung=True)
            ring = [self._event(track, "ringing", at)]
        else:
            ring = []
        if extension is not None and track.direction == "in":
            track = replace(track, extension=extension, operator=self.extensions.get(extension))
        if event == "transferred":
            track = replace(track, transfer_to=None)
        track = replace(track, state=new, queue=queue or track.queue, epoch=self.epoch)
        if new == "ended":
            self._forget(track.linkedid)
        else:
            self.calls[track.linkedid] = track
        return [*ring, self._event(track, event, at, cause=cause)]

    def _event(self, track: Track, event: CallEventKind, at: float | None, *, cause: str = "") -> CallEvent:
        answering = event in ("answered", "transferred")
        return CallEvent(
            event=event,
            call_id=track.call_id,
            caller=track.caller,
            line=track.line,
            actor=self.actor,
            operator=track.operator if answering else None,
            extension=track.extension if answering else "",
            queue=track.queue if event == "queued" else "",
            cause=cause,
            at=at,
            direction=track.direction,
        )

    # -- rebuilding after a (re)connect ----------------------------------------------------------------

    def connected(self) -> None:
        """A new connection logged in: what happens from here is seen live (rule 4)."""
        self.epoch += 1
        self._bridges.clear()
        self._where.clear()

    def rebuild(self, channels: list[Message], statuses: list[Message], now: float) -> list[CallEvent]:
        """Reconcile the tracked calls with the PBX's live channels (CoreShowChannel events) and their
        ANXIN_CALL variables (Status events); the call events that brings."""
        by_call: dict[str, list[Message]] = {}
        for channel in channels:
            by_call.setdefault(channel.get("Linkedid") or channel.get("Uniqueid"), []).append(channel)
        for status in statuses:
            call_id = status.variables().get(VARIABLE)
            linkedid = status.get("Linkedid") or status.get("Uniqueid")
            if call_id and linkedid in by_call:
                uid = status.get("Uniqueid")
                self._adopt(call_id, linkedid, uid, status.get("Exten"))
        for linkedid in [p for p in self._pending if p not in by_call]:  # its Hangup was lost with the link
            del self._pending[linkedid]
        out: list[CallEvent] = []
        for linkedid, track in list(self.calls.items()):
            group = by_call.get(linkedid, [])
            # alive while the caller's channel is (outbound: the operator's leg, the far legs come and go)
            alive = any(c.get("Uniqueid") == track.caller_uid for c in group) if track.caller_uid else group
            if not alive and track.epoch < self.epoch:
                out += self._move(track, "ended", None, cause=LINK_DOWN_CAUSE)
        for linkedid, group in by_call.items():
            out += self._rebuild_call(linkedid, group, now)
        return out

    def _rebuild_call(self, linkedid: str, group: list[Message], now: float) -> list[CallEvent]:
        first = next((c for c in group if c.get("Uniqueid") == linkedid), None)
        track = self.calls.get(linkedid)
        if (first is None and track is None) or not linkedid or linkedid in self._ended:
            return []
        lead = first or group[0]
        started = _duration(lead.get("Duration"))
        ring_at = now - started if started is not None else None
        bridged = [
            c for c in group if c is not lead and c.get("BridgeId") and c.get("BridgeId") == lead.get("BridgeId")
        ]
        answer_at: float | None = None
        if bridged:
            talked = _duration(bridged[0].get("Duration"))
            answer_at = now - talked if talked is not None else None
        out: list[CallEvent] = []
        if track is None:
            if extension_of(lead.get("Channel")) in self.extensions:
                return []  # an operator's own call, not a click-to-call
            queue = lead.get("ApplicationData").split(",")[0] if lead.get("Application") == "Queue" else ""
            if self.queues and queue not in self.queues:
                return []
            track = Track(
                f"pbx-{linkedid}",
                linkedid,
                "ringing",
                lead.get("CallerIDNum"),
                lead.get("Exten"),
                caller_uid=lead.get("Uniqueid"),
                epoch=self.epoch,
            )
            self.calls[linkedid] = track
            out.append(self._event(track, "ringing", ring_at))
            if queue:
                out += self._move(track, "queued", ring_at, queue=queue)
        track = self.calls[linkedid]
        if track.direction == "out":
            far_up = any(c.get("ChannelStateDesc") == "Up" for c in group if c is not lead)
            far_ringing = any(c.get("ChannelStateDesc") in ("Ring", "Ringing") for c in group if c is not lead)
            if far_up:
                return out + self._move(track, "answered", answer_at)
            if far_ringing:
                return out + self._ring_out(track, ring_at)
            return out
        if bridged:
            extension = extension_of(bridged[0].get("Channel"))
            if track.state in ("answered", "transferred") and extension and extension != track.extension:
                return out + self._move(track, "transferred", answer_at, extension=extension)
            return out + self._move(track, "answered", answer_at, extension=extension)
        return out


_HANDLERS = {
    "Newchannel": CallTracker._on_newchannel,
    "QueueCallerJoin": CallTracker._on_queue_join,
    "AgentConnect": CallTracker._on_agent_connect,
    "DialEnd": CallTracker._on_dial_end,
    "DialBegin": CallTracker._on_dial_begin,
    "BridgeEnter": CallTracker._on_bridge_enter,
    "BridgeLeave": CallTracker._on_bridge_leave,
    "BlindTransfer": CallTracker._on_blind_transfer,
    "AttendedTransfer": CallTracker._on_attended_transfer,
    "Newstate": CallTracker._on_newstate,
    "VarSet": CallTracker._on_varset,
    "OriginateResponse": CallTracker._on_originate_response,
    "Hangup": CallTracker._on_hangup,
}
