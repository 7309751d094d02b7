"""The drill's scorecard: what the devices and callers sent, what the journal recorded, how fast help came.

What it owns
    It reads two independent accounts of the same drill, the simulators' own records (every alarm's
    attempts and ACK, every call and its script) and the server's journal entries (``GET /api/journal``),
    and compares them (:func:`match_alarms`, :func:`match_calls`); then it measures each drill incident's
    clock from its journal timestamps (:func:`incident_clocks`).

Rules
    1. An acknowledged alarm is *recorded* when the journal holds an ``incident.opened`` or
       ``incident.alarm_attached`` entry by that device (actor ``device:<id>``), of the alarm type the
       device's protocol reports it as, stamped between the alarm's first attempt and its ACK (the server
       commits before it acknowledges). A technical alarm whose condition was already open (the server
       keeps one incident per device and condition until it clears, and writes nothing more) counts as
       recorded when an incident for that device and condition was open at the time: its own, or the
       street's group it had joined (``incident.alarm_attached``) and not yet left
       (``incident.device_restored``). Anything else
       acknowledged is *lost*, which must never happen. Each journal entry vouches for one alarm only.
    2. Durations are journal timestamp differences, converted to drill time by multiplying by the
       speed-up: ``drill seconds = wall seconds x speedup``. The server's own processing time is multiplied
       too, which can only make a drill look slower than the server is (see docs/drills/README.md).
    3. Percentiles are nearest-rank over the incidents that reached the step *and* those still waiting for
       it when the drill ended (counted as longer than anything); incidents settled otherwise before the
       step (resolved by phone, handed to 120, cancelled) have no such step and are left out. Both counts
       are reported beside the figures, never hidden.
    4. Only entries marked drill count, and every entry of a drill device or call must carry the mark.
    5. A call is judged by the journal: what the operator classified it as and the incident that opened
       (``call.classified``), where that incident was (``incident.opened`` location, ``incident.located``)
       and whether anyone was offered it; the script says what it should have been.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from simulators.callers import CallRecord
from simulators.devices import AlarmRecord

Entry = dict[str, Any]
SLACK_S = 0.25  # clock reading granularity between the simulator's stamps and the journal's (same host)
END_KINDS = ("incident.resolved", "incident.cancelled", "incident.closed")
UNKNOWN: Final = "unknown"  # an incident's location when nobody knows where it is


# -- incidents from the journal ---------------------------------------------------------------------------


@dataclass(slots=True)
class IncidentClock:
    """One drill incident's milestones, in wall-clock seconds (journal timestamps)."""

    incident_id: str
    alarm_type: str
    technical: bool
    source: str
    opened: float
    device_id: str | None = None
    call_id: str | None = None
    location: str = UNKNOWN  # where it was when opened: reported, home, address, map, unknown
    located: float | None = None  # an operator placed it (an unknown caller said where)
    acknowledged: float | None = None
    offer: float | None = None
    accepted: float | None = None
    on_scene: float | None = None
    done: float | None = None
    ended: float | None = None  # resolved, cancelled or closed
    escalated: float | None = None  # handed to an outside service
    unanswered: bool = False  # escalated to supervisors (answer target passed)
    needs_manual: int = 0
    manual_reason: str | None = None  # why it first needed manual dispatch
    waited: int = 0  # of those, times it went into the backlog (offered by the engine to whoever became free)
    operator_offers: int = 0
    attached: int = 0
    #: a grouped technical incident's devices: when each left it (its restore), None while it is in
    members: dict[str, float | None] = field(default_factory=dict)

    @property
    def placed(self) -> bool:
        """Somewhere to send someone: opened with a place, or placed later by an operator."""
        return self.location != UNKNOWN or self.located is not None

    @property
    def decision(self) -> float | None:
        """When an operator decided after the caregiver's "done" (resolved it, or handed it to 120)."""
        if self.done is None:
            return None
        after = [t for t in (self.ended, self.escalated) if t is not None and t >= self.done]
        return min(after) if after else None

    @property
    def decided(self) -> bool:
        """Someone is coming, or someone decided otherwise (resolved, cancelled, handed to 120)."""
        return self.accepted is not None or self.ended is not None or self.escalated is not None


def incident_clocks(entries: Iterable[Entry]) -> dict[str, IncidentClock]:
    clocks: dict[str, IncidentClock] = {}
    for entry in entries:
        kind, ts, payload = entry["kind"], entry["ts"], entry["payload"]
        if not entry["drill"]:
            continue
        if kind == "incident.opened":  # the new incident's id is in the payload, not yet in the column
            clocks[payload["incident_id"]] = IncidentClock(
                payload["incident_id"], payload["alarm_type"], bool(payload.get("technical")), payload["source"], ts,
                device_id=payload.get("device_id"), call_id=payload.get("call_id"),
                location=str(payload.get("location") or UNKNOWN),
            )  # fmt: skip
            continue
        clock = clocks.get(entry["incident_id"] or "")
        if clock is not None:
            _milestone(clock, kind, ts, payload)
    return clocks


def _first(current: float | None, ts: float) -> float:
    return ts if current is None else current


def _milestone(clock: IncidentClock, kind: str, ts: float, payload: dict[str, Any]) -> None:
    if kind == "incident.acknowledged":
        clock.acknowledged = _first(clock.acknowledged, ts)
    elif kind == "offer.made":
        clock.offer = _first(clock.offer, ts)
        clock.operator_offers += payload.get("by") == "operator"
    elif kind == "offer.accepted":
        clock.accepted = _first(clock.accepted, ts)
    elif kind == "assignment.status" and payload.get("status") == "on_scene":
        clock.on_scene = _first(clock.on_scene, ts)
    elif kind == "assignment.status" and payload.get("status") == "done":
        clock.done = _first(clock.done, ts)
    elif kind in END_KINDS:
        clock.ended = _first(clock.ended, ts)
    elif kind == "incident.escalated":
        clock.escalated = _first(clock.escalated, ts)
    elif kind == "incident.unanswered":
        clock.unanswered = True
    elif kind == "incident.needs_manual":
        clock.needs_manual += 1
        clock.waited += bool(payload.get("waiting"))
        clock.manual_reason = clock.manual_reason or str(payload.get("reason", ""))
    elif kind == "incident.alarm_attached":
        clock.attached += 1
        if clock.technical and payload.get("device_id"):  # a device joins its street's group
            clock.members[payload["device_id"]] = None
    elif kind == "incident.device_restored":
        clock.members[payload["device_id"]] = ts
    elif kind == "incident.located":
        clock.located = _first(clock.located, ts)


# -- alarms against the journal ---------------------------------------------------------------------------


@dataclass(slots=True)
class Matching:
    recorded: list[AlarmRecord] = field(default_factory=list)
    already_open: list[AlarmRecord] = field(default_factory=list)
    lost: list[AlarmRecord] = field(default_factory=list)
    unacknowledged: list[AlarmRecord] = field(default_factory=list)
    unused_entries: int = 0  # device alarm entries no record claimed: repeats the server attached
    unmarked: int = 0  # entries of drill devices without the drill mark


def match_alarms(alarms: Sequence[AlarmRecord], entries: Sequence[Entry], clocks: dict[str, IncidentClock]) -> Matching:
    """Rule 1: pair each acknowledged alarm with the journal entry that recorded it."""
    devices = {a.device_id for a in alarms}
    found: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    result = Matching()
    for entry in entries:
        actor = entry["actor"]
        if not actor.startswith("device:") or actor[7:] not in devices:
            continue
        result.unmarked += not entry["drill"]
        if entry["kind"] in ("incident.opened", "incident.alarm_attached"):
            found[(actor[7:], entry["payload"]["alarm_type"])].append(entry)
    used: set[int] = set()
    for alarm in sorted((a for a in alarms if a.kind != "restore"), key=lambda a: a.sends[0] if a.sends else 0.0):
        if alarm.acked_at is None:
            result.unacknowledged.append(alarm)
            continue
        low, high = alarm.sends[0] - SLACK_S, alarm.acked_at + SLACK_S
        candidates = found[(alarm.device_id, alarm.alarm_type)]
        hit = next((e for e in candidates if e["seq"] not in used and low <= e["ts"] <= high), None)
        if hit is not None:
            used.add(hit["seq"])
            result.recorded.append(alarm)
        elif _condition_open(alarm, clocks):
            result.already_open.append(alarm)
        else:
            result.lost.append(alarm)
    result.unused_entries = sum(len(v) for v in found.values()) - len(used)
    return result


def _condition_open(alarm: AlarmRecord, clocks: dict[str, IncidentClock]) -> bool:
    assert alarm.acked_at is not None
    return any(
        c.technical
        and (c.device_id == alarm.device_id or alarm.device_id in c.members)
        and c.alarm_type == alarm.alarm_type
        and c.opened <= alarm.acked_at + SLACK_S
        and (c.ended is None or c.ended >= alarm.sends[0] - SLACK_S)
        and ((left := c.members.get(alarm.device_id)) is None or left >= alarm.sends[0] - SLACK_S)
        for c in clocks.values()
    )


def match_calls(
    calls: Sequence[CallRecord], entries: Sequence[Entry], clocks: dict[str, IncidentClock]
) -> dict[str, Any]:
    """Rule 5: each call the callers placed, against what the journal says became of it."""
    mine = {c.call_id for c in calls}
    answered = {e["payload"]["call_id"] for e in entries if e["kind"] == "call.answered"}
    classified: dict[str, dict[str, Any]] = {}
    for e in entries:
        if e["kind"] == "call.classified" and e["payload"]["call_id"] in mine:
            classified.setdefault(e["payload"]["call_id"], e["payload"])
    called_back = {e["payload"]["call_id"] for e in entries if e["kind"] == "call.called_back"}
    taken = [c for c in calls if c.answered]
    heard = [c for c in taken if c.call_id in classified]

    def clock(call: CallRecord) -> IncidentClock | None:
        return clocks.get(classified.get(call.call_id, {}).get("incident_id") or "")

    emergencies = [c for c in taken if c.script.emergency]
    unknown = [c for c in emergencies if not c.known]
    incidents = {p["incident_id"] for p in classified.values() if p.get("incident_id")}
    return {
        "placed": len(calls),
        "unknown_callers": sum(not c.known for c in calls),
        "answered": len(taken),
        "missed": len(calls) - len(taken),
        "recorded": sum(c.call_id in answered for c in taken),
        "lost": sum(c.call_id not in answered for c in taken),
        "classified": len(heard),
        "unclassified": len(taken) - len(heard),
        "as_scripted": sum(classified[c.call_id]["kind"] == c.script.kind for c in heard),
        "by_kind": dict(sorted(Counter(classified[c.call_id]["kind"] for c in heard).items())),
        "scripted": dict(sorted(Counter(c.script.kind for c in calls).items())),
        "emergencies": len(emergencies),
        "incidents": len(incidents),
        "incidents_not_emergency": sum(
            bool(p.get("incident_id")) for p in classified.values() if p["kind"] != "emergency"
        ),
        "unknown_emergencies": len(unknown),
        "unknown_placed": sum(1 for c in unknown if (k := clock(c)) is not None and k.placed),
        "unknown_offered": sum(1 for c in unknown if (k := clock(c)) is not None and k.offer is not None),
        "unknown_placed_by": dict(sorted(Counter(c.card.placed_by or "not placed" for c in unknown).items())),
        "silent": sum(classified[c.call_id]["kind"] == "silent" for c in heard),
        "called_back": sum(c.call_id in called_back for c in heard),
        "unmarked": sum(
            not e["drill"] for e in entries if e["kind"].startswith("call.") and e["payload"].get("call_id") in mine
        ),
    }


# -- statistics -------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (rule 3); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def timing(durations: Sequence[float], censored: int, of: int, target: float, p: float) -> dict[str, Any]:
    """Drill-second durations of one step, against its target at percentile ``p``.

    ``censored`` incidents were still waiting for the step when the drill ended: they count as longer
    than anything (a percentile that lands on them is ``None`` with ``beyond`` set), never as left out.
    """
    values = sorted(durations) + [math.inf] * censored
    value = percentile(values, p)

    def shown(v: float | None) -> float | None:
        return None if v is None or math.isinf(v) else _round(v)

    return {
        "n": len(durations),
        "waiting": censored,
        "of": of,
        "p50": shown(percentile(values, 50)),
        "p90": shown(percentile(values, 90)),
        "max": shown(max(values) if values else None),
        "value": shown(value),  # at percentile p, judged against the target
        "beyond": value is not None and math.isinf(value),  # the percentile lands on an incident still waiting
        "target": target,
        "within": sum(d <= target for d in durations),
        "met": value is not None and value <= target,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
