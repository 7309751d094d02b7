"""The period report (issue 17): what a district sends upward about a month, a quarter or any span of days.

What it owns
    :func:`period_of`, which turns the reader's ``period=YYYY-MM`` or ``start``/``end`` days into a
    :class:`Period` of local days in the centre's time zone, and :func:`fold`, which folds the projection's
    incidents, assignments, calls, service orders and follow-ups of that period into the report's dict (its
    shape is written down in docs/reports.md, every figure defined there in words), a slice at a time: a
    generator in the sans-I/O style, driven through by :func:`run` (:func:`report`: the dict at once) or on the
    event loop by :func:`run_on_loop`.

Rules
    1. Something belongs to the period by when it began: an incident by when it opened, a call by when it rang,
       a service order by when it was ordered, a follow-up by when its last call was recorded. Start inclusive,
       end exclusive, both local midnights (a DST day is 23 or 25 hours; the zone decides, not 86400 s).
    2. It belongs to an area by its place as the caller's :class:`Places` says (an incident or a call by the
       views' place, an order and a follow-up by the elder's community), cut to the ``by`` level; ``""`` is "no
       place". ``Places`` answers None for what lies outside the reader's reach: it is left out everywhere,
       totals included.
    3. Drills are left out unless asked; a device's test call is never anyone's alarm; technical incidents (low
       battery, mains loss, a missed check-in) are counted apart and in no answer time nor outcome.
    4. Times are taken from the opening of the incident (or the ringing of the call): answered when it was
       acknowledged, the first offer made, the first offer accepted, the first responder on scene. Calls are
       the hotline's inbound calls; those operators placed (click-to-call) are counted apart
       (``calls_outbound``) and in no answer time. A call's times are the PBX's when it gave sane ones. Medians and
       the 90th percentile are nearest-rank; times are rounded to 0.1 s, shares to 4 places.
    5. The report is folded in slices, because the loop it runs on answers devices' alarms (an ACK is owed
       within milliseconds; a year of a city took the loop for over a second in one piece, a thread beside it
       holds the interpreter's lock just the same: console.pdfwork rule 1). The fold yields after every
       :data:`SLICE` records (counted, not timed, so the same report always takes the same slices): incidents,
       calls, orders and follow-ups looked at, times put in order (:func:`ordered`: runs sorted, then merged).
       It reads lists of the projection's records taken when :func:`fold` is called: the projection's dicts grow
       between slices, and a new record is for the next report. Each incident is worked out once, at its turn
       (its area, type, source, times and outcome: a row), and that row is counted in every group it belongs to,
       so the totals, areas, types and sources agree even when the incident changes between two slices.

Never
    Never read a clock, a registry or the journal here: ``generated_at``, the places and the responders' names
    come in. Never change the projection. Never iterate the projection's dicts across a slice, nor pass over
    every record or sort every time of the period in one slice (a merge of :func:`ordered` is the one linear
    piece of work: two halves of a group's times). Never keep a year's times in lists: arrays of doubles
    (the collector walks a list at every collection, holding the loop).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import re
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast
from zoneinfo import ZoneInfo

from dispatch.errors import InvalidInput
from dispatch.followups import FollowUp, FollowUpState
from dispatch.machines import OPEN_STATES, AssignmentState, OrderState
from dispatch.state import Assignment, Call, Incident, Projection, ServiceOrder

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparisonT as S

SCHEMA = 1
By = Literal["district", "street", "community"]
LEVELS: dict[str, int] = {"district": 1, "street": 2, "community": 3}
#: the longest span a report covers, in local days (a leap year)
MAX_DAYS = 366
ANSWER_TARGETS_S = (60, 180)
#: the answer-time distribution's bucket edges, in seconds: [0,15) [15,30) [30,60) [60,120) [120,180) [180,∞)
BUCKET_EDGES_S = (15, 30, 60, 120, 180)
OUTSIDE = ("120", "110", "119")
#: ASCII digits only, the whole text (``\d`` would take "２０２６" and ``$`` a trailing newline, both then
#: written into a file's name)
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class Period:
    start: float
    end: float
    label: str
    timezone: str
    start_day: date
    end_day: date  # the first day after the period

    @property
    def last_day(self) -> date:
        """The period's last local day (the government export names its days inclusively)."""
        return self.end_day - timedelta(days=1)

    def view(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "label": self.label, "timezone": self.timezone,
                "start_day": self.start_day.isoformat(), "end_day": self.end_day.isoformat()}  # fmt: skip

    def holds(self, ts: float) -> bool:
        return self.start <= ts < self.end

    def days(self) -> list[date]:
        count = (self.end_day - self.start_day).days
        return [self.start_day + timedelta(days=n) for n in range(count)]


@dataclass(frozen=True, slots=True)
class Places:
    """Where things lie (rule 2): a community path, ``""`` for no place, None for out of the reader's reach."""

    incident: Callable[[Incident], str | None]
    call: Callable[[Call], str | None]
    elder: Callable[[str], str | None]


#: a responder's name and kind (caregiver, clinic, volunteer...), from the registry
Names = Callable[[str], tuple[str, str]]


# -- the period (rule 1) --------------------------------------------------------------------------------------


def period_of(tz: str, now: float, *, month: str | None = None, start: str | None = None,
              end: str | None = None) -> Period:  # fmt: skip
    """The period asked for: a month (``YYYY-MM``), or local days ``start`` (inclusive) to ``end`` (exclusive);
    nothing asked: the current local month. InvalidInput for a bad month, a bad day, an end not after the start,
    or more than :data:`MAX_DAYS` days."""
    zone = ZoneInfo(tz)
    if month is not None and (start is not None or end is not None):
        raise InvalidInput("ask for a period or for start and end, not both", field="period", code="report_period")
    if start is None and end is None:
        label = month if month is not None else datetime.fromtimestamp(now, zone).strftime("%Y-%m")
        first, after = _month(label)
        return span(first, after, label, tz)
    if start is None or end is None:
        raise InvalidInput("a span needs both start and end", field="start" if start is None else "end",
                           code="report_dates")  # fmt: skip
    first, after = _day(start, "start"), _day(end, "end")
    if after <= first:
        raise InvalidInput(f"end {end} is not after start {start}", field="end", code="report_dates")
    if (after - first).days > MAX_DAYS:
        raise InvalidInput(f"a report covers at most {MAX_DAYS} days", field="end", code="report_range_long",
                           params={"days": MAX_DAYS})  # fmt: skip
    return span(first, after, f"{first.isoformat()}..{after.isoformat()}", tz)


def check_by(by: str) -> By:
    if by not in LEVELS:
        raise InvalidInput(f"by must be district, street or community, not {by!r}", field="by", code="report_by")
    return by  # type: ignore[return-value]


def _month(label: str) -> tuple[date, date]:
    """The first day of the month ``label`` and the first day after it; InvalidInput for a label that does not
    read YYYY-MM or a month whose days a date cannot hold (0000-01, 9999-12)."""
    matched = _MONTH.fullmatch(label)
    if matched is None:
        raise InvalidInput(f"period must read YYYY-MM, not {label!r}", field="period", code="report_period")
    year, month = int(matched[1]), int(matched[2])
    try:
        return date(year, month, 1), date(year + month // 12, month % 12 + 1, 1)
    except ValueError:
        raise InvalidInput(f"no report can cover {label}", field="period", code="report_period") from None


def _day(text: str, field: str) -> date:
    try:
        if _DAY.fullmatch(text) is None:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field} must read YYYY-MM-DD, not {text!r}", field=field, code="report_dates") from None


def span(first: date, after: date, label: str, tz: str) -> Period:
    """The local days ``first`` (inclusive) to ``after`` (exclusive) in the zone ``tz``, named ``label``."""
    zone = ZoneInfo(tz)
    start = datetime.combine(first, time(0), zone).timestamp()
    end = datetime.combine(after, time(0), zone).timestamp()
    return Period(start, end, label, tz, first, after)


def cut(place: str, by: By) -> str:
    """A community path cut to the ``by`` level (``""`` stays ``""``: no place)."""
    return "/".join(place.split("/")[: LEVELS[by]]) if place else ""


# -- working in slices (rule 5) -------------------------------------------------------------------------------

#: records handled between two turns of the event loop: incidents, calls, orders and follow-ups looked at (a
#: few milliseconds of work for a year of a city: bench/bench_report.py)
SLICE = 250
#: times put in order that count as one record (sorting a time costs a small part of looking at an incident)
TIMES_PER_RECORD = 16
#: the longest run merged in one piece, in sorted runs' worth (one run: a slice's worth of times)
MERGED_RUNS = 4
T = TypeVar("T")
#: work done in slices: each ``next`` does one slice; the result is the generator's return value
Steps = Generator[None, None, T]


class Pace:
    """Counts the records handled since the loop last had a turn and says when a slice is full."""

    __slots__ = ("_count", "size")

    def __init__(self, size: int = SLICE) -> None:
        if size < 1:
            raise ValueError(f"a slice holds at least one record, not {size}")
        self.size = size
        self._count = 0

    def full(self, records: int = 1) -> bool:
        self._count += records
        if self._count < self.size:
            return False
        self._count = 0
        return True


def run(steps: Steps[T]) -> T:
    """All the slices at once (a script, the tests): the result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return cast(T, done.value)


async def run_on_loop(steps: Steps[T]) -> T:
    """The slices one by one, the event loop having a turn after each (``asyncio.sleep(0)``): the result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return cast(T, done.value)
        await asyncio.sleep(0)


def ordered(values: Sequence[S], pace: Pace) -> Steps[list[S]]:
    """``sorted(values)`` in slices: runs of a slice's worth sorted, merged two by two while a merge stays small
    (:data:`MERGED_RUNS` runs' worth, a few ms), then the runs left merged lazily (``heapq.merge``), a slice's worth
    of values at a time, so no merge of a whole year is one piece. Times, or anything comparable (the government
    export puts its records in order by ``(opened, id)``)."""
    length = pace.size * TIMES_PER_RECORD
    runs: list[list[S]] = []
    for start in range(0, len(values), length):
        runs.append(sorted(values[start : start + length]))
        if pace.full(len(runs[-1]) // TIMES_PER_RECORD + 1):
            yield
    while len(runs) > 2 and len(runs[0]) + len(runs[1]) <= MERGED_RUNS * length:
        merged: list[list[S]] = []
        for left, right in zip(runs[0::2], runs[1::2], strict=False):
            both = left + right
            both.sort()  # two ascending runs: the sort merges them in one pass
            merged.append(both)
            if pace.full(len(both) // TIMES_PER_RECORD + 1):
                yield
        runs = merged + runs[2 * len(merged) :]
    if len(runs) <= 1:
        return runs[0] if runs else []
    whole: list[S] = []
    for value in heapq.merge(*runs):
        whole.append(value)
        if len(whole) % length == 0 and pace.full(length // TIMES_PER_RECORD + 1):
            yield
    return whole


# -- the figures of one group ---------------------------------------------------------------------------------


def stats(ordered_values: Sequence[float]) -> dict[str, Any]:
    """n, nearest-rank median and 90th percentile, and the largest of times in order, rounded to 0.1 s (None
    when n is 0)."""
    n = len(ordered_values)
    if n == 0:
        return {"n": 0, "median": None, "p90": None, "max": None}

    def rank(q: float) -> float:
        return round(ordered_values[math.ceil(q * n) - 1], 1)

    return {"n": n, "median": rank(0.5), "p90": rank(0.9), "max": round(ordered_values[-1], 1)}


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def outcome(incident: Incident) -> str:
    """false_alarm (ever cancelled), to_120/to_110/to_119 (handed over), resolved (resolved or closed), open; the
    government export's outcome too (dispatch.govexport rule 5: cancelling and escalating exclude each other)."""
    if incident.cancelled_at is not None:
        return "false_alarm"
    if incident.escalated_to is not None:
        return f"to_{incident.escalated_to}"
    return "open" if incident.state in OPEN_STATES else "resolved"


OUTCOMES = ("resolved", "false_alarm", "to_120", "to_110", "to_119", "open")
SPANS = ("first_offer_s", "accepted_s", "door_s")
SERVICES = ("services_ordered", "services_delivered", "services_cancelled", "services_no_show")


@dataclass(frozen=True, slots=True)
class _Row:
    """One incident of the report, worked out once: its groups, how it ended, and its times from its opening
    (rule 4; None: it never came to that)."""

    area: str
    alarm_type: str
    source: str
    technical: bool
    wait: float | None  # to acknowledged
    first_offer: float | None
    accepted: float | None
    door: float | None
    outcome: str
    day: date


def _row(state: Projection, incident: Incident, area: str, zone: ZoneInfo) -> _Row:
    offered: float | None = None
    accepted: float | None = None
    door: float | None = None
    for assignment in (state.assignments[i] for i in incident.assignments):
        offered = _earliest(offered, assignment.offered_at)
        accepted = _earliest(accepted, assignment.accepted_at)
        door = _earliest(door, assignment.on_scene_at)
    opened, ack = incident.opened_at, incident.acknowledged_at
    return _Row(area, incident.alarm_type, incident.source, incident.technical,
                None if ack is None else ack - opened, _since(offered, opened), _since(accepted, opened),
                _since(door, opened), outcome(incident), datetime.fromtimestamp(opened, zone).date())  # fmt: skip


def _earliest(found: float | None, ts: float | None) -> float | None:
    return ts if found is None or (ts is not None and ts < found) else found


def _since(ts: float | None, opened: float) -> float | None:
    return None if ts is None else ts - opened


@dataclass(slots=True)
class _Tally:
    """One group's counts and times as its records come (the totals, an area, an alarm type, a source). The
    times are kept in arrays of doubles: a list of a year's times is a container the collector walks at every
    collection, each walk holding the loop for milliseconds."""

    alarms: int = 0
    technical: int = 0
    waits: array[float] = field(default_factory=lambda: array("d"))
    within: dict[int, int] = field(default_factory=lambda: dict.fromkeys(ANSWER_TARGETS_S, 0))
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKET_EDGES_S) + 1))
    spans: tuple[array[float], ...] = field(default_factory=lambda: tuple(array("d") for _ in SPANS))
    outcomes: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    call_waits: array[float] = field(default_factory=lambda: array("d"))
    calls_within: dict[int, int] = field(default_factory=lambda: dict.fromkeys(ANSWER_TARGETS_S, 0))
    call_outcomes: Counter[str] = field(default_factory=Counter)  # the ended inbound calls' (dispatch.state.Call)
    outbound: int = 0
    services: Counter[str] = field(default_factory=Counter)
    follow_ups: int = 0
    scores: list[int] = field(default_factory=list)  # the reached elders' satisfaction, as given
    reached: int = 0
    complaints: int = 0

    def incident(self, row: _Row) -> None:
        if row.technical:  # rule 3: counted apart, in no time nor outcome
            self.technical += 1
            return
        self.alarms += 1
        self.outcomes[row.outcome] += 1
        for values, span in zip(self.spans, (row.first_offer, row.accepted, row.door), strict=True):
            if span is not None:
                values.append(span)
        if row.wait is not None:
            self.waits.append(row.wait)
            self.buckets[bisect_right(BUCKET_EDGES_S, row.wait)] += 1  # at exactly an edge: the bucket above
            for target in ANSWER_TARGETS_S:
                self.within[target] += int(row.wait <= target)

    def call(self, call: Call) -> None:
        if call.direction != "in":  # an operator's click-to-call: counted apart, in no answer time
            self.outbound += 1
            return
        self.calls += 1
        self.call_outcomes[call.outcome] += 1
        if (wait := call.wait) is not None:
            self.call_waits.append(wait)
            for target in ANSWER_TARGETS_S:
                self.calls_within[target] += int(wait <= target)

    def order(self, order: ServiceOrder) -> None:
        self.services["services_ordered"] += 1
        self.services["services_delivered"] += int(order.delivered_at is not None)
        self.services["services_cancelled"] += int(order.state is OrderState.CANCELLED)
        self.services["services_no_show"] += int(order.state is OrderState.NO_SHOW)

    def follow_up(self, follow_up: FollowUp) -> None:
        self.follow_ups += 1
        if follow_up.state is FollowUpState.DONE:
            self.reached += 1
            self.complaints += int(bool(follow_up.complaint))
            if follow_up.satisfaction is not None:
                self.scores.append(follow_up.satisfaction)

    def figures(self, pace: Pace) -> Steps[dict[str, Any]]:
        """Every figure of the group (see docs/reports.md), its times put in order a slice at a time."""
        waits = yield from ordered(self.waits, pace)
        spans: dict[str, dict[str, Any]] = {}
        for key, values in zip(SPANS, self.spans, strict=True):
            spans[key] = stats((yield from ordered(values, pace)))
        answered = yield from ordered(self.call_waits, pace)
        return {
            "alarms": self.alarms,
            "technical": self.technical,
            "answered": len(waits),
            **{f"answered_within_{t}s": self.within[t] for t in ANSWER_TARGETS_S},
            **{f"share_within_{t}s": share(self.within[t], self.alarms) for t in ANSWER_TARGETS_S},
            "answer_s": stats(waits),
            "answer_buckets": list(self.buckets),
            **spans,
            "outcomes": {key: self.outcomes[key] for key in OUTCOMES},
            "calls": self.calls,
            "calls_offered": self.calls,
            "calls_answered": len(answered),
            **{f"calls_within_{t}s": self.calls_within[t] for t in ANSWER_TARGETS_S},
            "calls_answered_within_60s": self.calls_within[60],
            "call_share_within_60s": share(self.calls_within[60], self.calls),
            "call_answer_s": stats(answered),
            "calls_abandoned": self.call_outcomes["abandoned"],
            "calls_missed": self.call_outcomes["missed"],
            "calls_transferred": self.call_outcomes["transferred"],
            "calls_outbound": self.outbound,
            **{key: self.services[key] for key in SERVICES},
            "follow_ups": self._follow_ups(),
        }

    def _follow_ups(self) -> dict[str, Any]:
        given = self.scores
        return {
            "done": self.follow_ups,
            "reached": self.reached,
            "satisfaction_mean": round(sum(given) / len(given), 2) if given else None,
            "satisfaction": [given.count(score) for score in range(1, 6)],
            "complaints": self.complaints,
        }


def _tally(groups: dict[str, _Tally], name: str) -> _Tally:
    found = groups.get(name)
    if found is None:
        found = groups[name] = _Tally()
    return found


# -- the report -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Taken:
    """The projection's records as they were when the report was asked for (its dicts change between slices)."""

    incidents: list[Incident]
    calls: list[Call]
    orders: list[ServiceOrder]
    follow_ups: list[FollowUp]

    @classmethod
    def of(cls, state: Projection) -> _Taken:
        return cls(list(state.incidents.values()), list(state.calls.values()),
                   list(state.service_orders.values()), list(state.follow_ups.follow_ups.values()))  # fmt: skip


def report(state: Projection, period: Period, by: By, places: Places, names: Names, *, include_drill: bool,
           generated_at: float) -> dict[str, Any]:  # fmt: skip
    """The report's dict (docs/reports.md), all at once: :func:`fold` run through."""
    return run(fold(state, period, by, places, names, include_drill=include_drill, generated_at=generated_at))


def fold(state: Projection, period: Period, by: By, places: Places, names: Names, *, include_drill: bool,
         generated_at: float, pace: Pace | None = None) -> Steps[dict[str, Any]]:  # fmt: skip
    """The report's work in slices (rule 5), to :func:`run` through or :func:`run_on_loop`: totals, areas, alarm
    types, sources, days and responders of the records the projection holds now (taken here, at the call)."""
    folding = _Folding(state, period, by, places, names, include_drill, pace or Pace())
    return folding.steps(_Taken.of(state), generated_at)


class _Folding:
    """One report being folded: what is asked, and its groups as the records come."""

    def __init__(self, state: Projection, period: Period, by: By, places: Places, names: Names, drill: bool,
                 pace: Pace) -> None:  # fmt: skip
        self.state, self.period, self.by, self.places, self.names = state, period, by, places, names
        self.drill, self.pace, self.zone = drill, pace, ZoneInfo(period.timezone)
        self.totals = _Tally()
        self.areas: dict[str, _Tally] = {}
        self.alarm_types: dict[str, _Tally] = {}
        self.sources: dict[str, _Tally] = {}
        self.alarms_by_day: Counter[date] = Counter()
        self.quick_by_day: Counter[date] = Counter()
        self.calls_by_day: Counter[date] = Counter()
        self.responders: dict[str, dict[str, Any]] = {}

    def steps(self, taken: _Taken, generated_at: float) -> Steps[dict[str, Any]]:
        yield from self._incidents(taken.incidents)
        yield from self._calls(taken.calls)
        yield from self._orders(taken.orders)
        yield from self._follow_ups(taken.follow_ups)
        totals = yield from self.totals.figures(self.pace)
        areas = yield from self._rows(dict(sorted(self.areas.items())), "area")
        alarm_types = yield from self._rows(self.alarm_types, "alarm_type")
        sources = yield from self._rows(self.sources, "source")
        return {
            "schema": SCHEMA,
            "period": self.period.view(),
            "by": self.by,
            "drill_included": self.drill,
            "generated_at": generated_at,
            "totals": totals,
            "areas": areas,
            "alarm_types": _by_size(alarm_types, "alarm_type"),
            "sources": _by_size(sources, "source"),
            "days": self._days(),
            "responders": self._responders(),
        }

    def _keep(self, is_drill: bool, ts: float) -> bool:
        return (self.drill or not is_drill) and self.period.holds(ts)

    def _area(self, place: str | None) -> str | None:
        return None if place is None else cut(place, self.by)

    def _incidents(self, incidents: list[Incident]) -> Steps[None]:
        for incident in incidents:
            if self.pace.full():
                yield
            if incident.test or not self._keep(incident.drill, incident.opened_at):
                continue
            if (area := self._area(self.places.incident(incident))) is None:
                continue
            row = _row(self.state, incident, area, self.zone)
            for tally in (self.totals, _tally(self.areas, area), _tally(self.alarm_types, row.alarm_type),
                          _tally(self.sources, row.source)):  # fmt: skip
                tally.incident(row)
            if not row.technical:
                self.alarms_by_day[row.day] += 1
                self.quick_by_day[row.day] += int(row.wait is not None and row.wait <= ANSWER_TARGETS_S[0])
            self._offers(incident)

    def _offers(self, incident: Incident) -> None:
        """Each offer of the incident in its responder's row: offers, replies, jobs done and time on the job
        (accepted to done, or to being released from it)."""
        for assignment in (self.state.assignments[i] for i in incident.assignments):
            rid = assignment.responder_id
            row = self.responders.get(rid)
            if row is None:
                name, kind = self.names(rid)
                row = self.responders[rid] = {"responder_id": rid, "name": name, "kind": kind, "offers": 0,
                                              "accepted": 0, "declined": 0, "expired": 0, "done": 0,
                                              "on_job_s": 0.0}  # fmt: skip
            _count(row, assignment)

    def _calls(self, calls: list[Call]) -> Steps[None]:
        for call in calls:
            if self.pace.full():
                yield
            if not self._keep(call.drill, call.started_at) or (area := self._area(self.places.call(call))) is None:
                continue
            self.totals.call(call)
            _tally(self.areas, area).call(call)
            if call.direction == "in":
                self.calls_by_day[datetime.fromtimestamp(call.started_at, self.zone).date()] += 1

    def _orders(self, orders: list[ServiceOrder]) -> Steps[None]:
        for order in orders:
            if self.pace.full():
                yield
            if not self._keep(order.drill, order.ordered_at):
                continue
            if (area := self._area(self.places.elder(order.elder_id))) is not None:
                self.totals.order(order)
                _tally(self.areas, area).order(order)

    def _follow_ups(self, follow_ups: list[FollowUp]) -> Steps[None]:
        """Follow-ups whose last call is recorded: reached, or given up as unreachable."""
        for follow_up in follow_ups:
            if self.pace.full():
                yield
            if follow_up.state is FollowUpState.OPEN or follow_up.recorded_at is None:
                continue
            if not self._keep(follow_up.drill, follow_up.recorded_at):
                continue
            if (area := self._area(self.places.elder(follow_up.elder_id))) is not None:
                self.totals.follow_up(follow_up)
                _tally(self.areas, area).follow_up(follow_up)

    def _rows(self, groups: dict[str, _Tally], key: str) -> Steps[list[dict[str, Any]]]:
        rows: list[dict[str, Any]] = []
        for name, tally in groups.items():
            rows.append({key: name, "figures": (yield from tally.figures(self.pace))})
        return rows

    def _days(self) -> list[dict[str, Any]]:
        return [{"day": d.isoformat(), "alarms": self.alarms_by_day[d], "answered_within_60s": self.quick_by_day[d],
                 "calls": self.calls_by_day[d]} for d in self.period.days()]  # fmt: skip

    def _responders(self) -> list[dict[str, Any]]:
        for row in self.responders.values():
            row["on_job_s"] = round(row["on_job_s"], 1)
        return sorted(self.responders.values(), key=lambda r: (-r["done"], r["responder_id"]))


def _by_size(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Alarm types and sources, most incidents first (calls, orders and follow-ups have neither: zero there)."""
    return sorted(rows, key=lambda r: (-r["figures"]["alarms"] - r["figures"]["technical"], r[key]))


def _count(row: dict[str, Any], assignment: Assignment) -> None:
    row["offers"] += 1
    row["accepted"] += int(assignment.accepted_at is not None)
    row["declined"] += int(assignment.state is AssignmentState.DECLINED)
    row["expired"] += int(assignment.state is AssignmentState.EXPIRED)
    row["done"] += int(assignment.state is AssignmentState.DONE)
    if assignment.accepted_at is not None and assignment.finished_at is not None:
        row["on_job_s"] += assignment.finished_at - assignment.accepted_at
