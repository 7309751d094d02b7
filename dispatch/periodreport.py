"""The period report (issue 17): what a district sends upward about a month, a quarter or any span of days.

What it owns
    :func:`period_of`, which turns the reader's ``period=YYYY-MM`` or ``start``/``end`` days into a
    :class:`Period` of local days in the centre's time zone, and :func:`report`, which folds the projection's
    incidents, assignments, calls, service orders and follow-ups of that period into the report's dict (its
    shape is written down in docs/reports.md, every figure defined there in words).

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
       acknowledged, the first offer made, the first offer accepted, the first responder on scene. Medians and
       the 90th percentile are nearest-rank; times are rounded to 0.1 s, shares to 4 places.

Never
    Never read a clock, a registry or the journal here: ``generated_at``, the places and the responders' names
    come in. Never change the projection.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dispatch.errors import InvalidInput
from dispatch.followups import FollowUp, FollowUpBook, FollowUpState
from dispatch.machines import OPEN_STATES, AssignmentState, OrderState
from dispatch.state import Assignment, Call, Incident, Projection, ServiceOrder

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
        return _span(first, after, label, tz)
    if start is None or end is None:
        raise InvalidInput("a span needs both start and end", field="start" if start is None else "end",
                           code="report_dates")  # fmt: skip
    first, after = _day(start, "start"), _day(end, "end")
    if after <= first:
        raise InvalidInput(f"end {end} is not after start {start}", field="end", code="report_dates")
    if (after - first).days > MAX_DAYS:
        raise InvalidInput(f"a report covers at most {MAX_DAYS} days", field="end", code="report_range_long",
                           params={"days": MAX_DAYS})  # fmt: skip
    return _span(first, after, f"{first.isoformat()}..{after.isoformat()}", tz)


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


def _span(first: date, after: date, label: str, tz: str) -> Period:
    zone = ZoneInfo(tz)
    start = datetime.combine(first, time(0), zone).timestamp()
    end = datetime.combine(after, time(0), zone).timestamp()
    return Period(start, end, label, tz, first, after)


def cut(place: str, by: By) -> str:
    """A community path cut to the ``by`` level (``""`` stays ``""``: no place)."""
    return "/".join(place.split("/")[: LEVELS[by]]) if place else ""


# -- what is counted (rule 3) ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Chosen:
    """The things of the period in reach, each with its area."""

    incidents: list[tuple[Incident, str]]
    calls: list[tuple[Call, str]]
    orders: list[tuple[ServiceOrder, str]]
    follow_ups: list[tuple[FollowUp, str]]


def _choose(state: Projection, period: Period, by: By, places: Places, drill: bool) -> _Chosen:
    def keep(is_drill: bool, ts: float) -> bool:
        return (drill or not is_drill) and period.holds(ts)

    def area(place: str | None) -> str | None:
        return None if place is None else cut(place, by)

    incidents = [
        (i, a)
        for i in state.incidents.values()
        if not i.test and keep(i.drill, i.opened_at) and (a := area(places.incident(i))) is not None
    ]
    calls = [
        (c, a) for c in state.calls.values() if keep(c.drill, c.started_at) and (a := area(places.call(c))) is not None
    ]
    orders = [
        (o, a)
        for o in state.service_orders.values()
        if keep(o.drill, o.ordered_at) and (a := area(places.elder(o.elder_id))) is not None
    ]
    follow_ups = [
        (f, a)
        for f in _finished(state.follow_ups)
        if keep(f.drill, f.recorded_at or 0.0) and (a := area(places.elder(f.elder_id))) is not None
    ]
    return _Chosen(incidents, calls, orders, follow_ups)


def _finished(book: FollowUpBook) -> Iterable[FollowUp]:
    """Follow-ups whose last call is recorded: reached, or given up as unreachable."""
    return (f for f in book.follow_ups.values() if f.state is not FollowUpState.OPEN and f.recorded_at is not None)


# -- the figures ----------------------------------------------------------------------------------------------


def stats(values: Sequence[float]) -> dict[str, Any]:
    """n, nearest-rank median and 90th percentile, and the largest, rounded to 0.1 s (None when n is 0)."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return {"n": 0, "median": None, "p90": None, "max": None}

    def rank(q: float) -> float:
        return round(ordered[math.ceil(q * n) - 1], 1)

    return {"n": n, "median": rank(0.5), "p90": rank(0.9), "max": round(ordered[-1], 1)}


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def buckets(waits: Iterable[float]) -> list[int]:
    counts = [0] * (len(BUCKET_EDGES_S) + 1)
    for wait in waits:
        counts[sum(1 for edge in BUCKET_EDGES_S if wait >= edge)] += 1
    return counts


def outcome(incident: Incident) -> str:
    """false_alarm (ever cancelled), to_120/to_110/to_119 (handed over), resolved (resolved or closed), open."""
    if incident.cancelled_at is not None:
        return "false_alarm"
    if incident.escalated_to is not None:
        return f"to_{incident.escalated_to}"
    return "open" if incident.state in OPEN_STATES else "resolved"


def _first(state: Projection, incident: Incident, when: Callable[[Assignment], float | None]) -> float | None:
    times = [t for a in (state.assignments[i] for i in incident.assignments) if (t := when(a)) is not None]
    return min(times) - incident.opened_at if times else None


def figures(state: Projection, incidents: Sequence[Incident], calls: Sequence[Call],
            orders: Sequence[ServiceOrder], follow_ups: Sequence[FollowUp]) -> dict[str, Any]:  # fmt: skip
    """Every figure of one group (see docs/reports.md)."""
    alarms = [i for i in incidents if not i.technical]
    waits = [i.acknowledged_at - i.opened_at for i in alarms if i.acknowledged_at is not None]
    spans: dict[str, list[float]] = {"first_offer_s": [], "accepted_s": [], "door_s": []}
    for incident in alarms:
        for key, when in (("first_offer_s", _offered), ("accepted_s", _accepted), ("door_s", _on_scene)):
            if (span := _first(state, incident, when)) is not None:
                spans[key].append(span)
    ends = Counter(outcome(i) for i in alarms)
    answered = [c.answered_at - c.started_at for c in calls if c.answered_at is not None]
    within = {t: sum(1 for w in waits if w <= t) for t in ANSWER_TARGETS_S}
    calls_within = {t: sum(1 for w in answered if w <= t) for t in ANSWER_TARGETS_S}
    return {
        "alarms": len(alarms),
        "technical": len(incidents) - len(alarms),
        "answered": len(waits),
        **{f"answered_within_{t}s": within[t] for t in ANSWER_TARGETS_S},
        **{f"share_within_{t}s": share(within[t], len(alarms)) for t in ANSWER_TARGETS_S},
        "answer_s": stats(waits),
        "answer_buckets": buckets(waits),
        **{key: stats(values) for key, values in spans.items()},
        "outcomes": {key: ends[key] for key in ("resolved", "false_alarm", "to_120", "to_110", "to_119", "open")},
        "calls": len(calls),
        "calls_answered": len(answered),
        **{f"calls_within_{t}s": calls_within[t] for t in ANSWER_TARGETS_S},
        "call_share_within_60s": share(calls_within[60], len(calls)),
        "call_answer_s": stats(answered),
        "calls_abandoned": sum(1 for c in calls if c.answered_at is None and c.ended_at is not None),
        **_services(orders),
        "follow_ups": _follow_ups(follow_ups),
    }


def _offered(a: Assignment) -> float | None:
    return a.offered_at


def _accepted(a: Assignment) -> float | None:
    return a.accepted_at


def _on_scene(a: Assignment) -> float | None:
    return a.on_scene_at


def _services(orders: Sequence[ServiceOrder]) -> dict[str, int]:
    return {
        "services_ordered": len(orders),
        "services_delivered": sum(1 for o in orders if o.delivered_at is not None),
        "services_cancelled": sum(1 for o in orders if o.state is OrderState.CANCELLED),
        "services_no_show": sum(1 for o in orders if o.state is OrderState.NO_SHOW),
    }


def _follow_ups(follow_ups: Sequence[FollowUp]) -> dict[str, Any]:
    reached = [f for f in follow_ups if f.state is FollowUpState.DONE]
    given = [f.satisfaction for f in reached if f.satisfaction is not None]
    return {
        "done": len(follow_ups),
        "reached": len(reached),
        "satisfaction_mean": round(sum(given) / len(given), 2) if given else None,
        "satisfaction": [given.count(score) for score in range(1, 6)],
        "complaints": sum(1 for f in reached if f.complaint),
    }


# -- the report -----------------------------------------------------------------------------------------------


def report(state: Projection, period: Period, by: By, places: Places, names: Names, *, include_drill: bool,
           generated_at: float) -> dict[str, Any]:  # fmt: skip
    """The report's dict (docs/reports.md): totals, areas, alarm types, sources, days and responders."""
    chosen = _choose(state, period, by, places, include_drill)
    return {
        "schema": SCHEMA,
        "period": period.view(),
        "by": by,
        "drill_included": include_drill,
        "generated_at": generated_at,
        "totals": _group(state, chosen),
        "areas": _areas(state, chosen),
        "alarm_types": _incident_rows(state, chosen, "alarm_type", lambda i: i.alarm_type),
        "sources": _incident_rows(state, chosen, "source", lambda i: i.source),
        "days": _days(chosen, period),
        "responders": _responders(state, chosen, names),
    }


def _group(state: Projection, chosen: _Chosen) -> dict[str, Any]:
    return figures(
        state,
        [i for i, _ in chosen.incidents],
        [c for c, _ in chosen.calls],
        [o for o, _ in chosen.orders],
        [f for f, _ in chosen.follow_ups],
    )


def _areas(state: Projection, chosen: _Chosen) -> list[dict[str, Any]]:
    """Each area's figures; the things are sorted into their areas in one pass (a pass over everything for each
    area took seconds for a year of a city by community, on the event loop)."""
    parts: dict[str, _Chosen] = {}

    def part(area: str) -> _Chosen:
        found = parts.get(area)
        if found is None:
            found = parts[area] = _Chosen([], [], [], [])
        return found

    for incident, area in chosen.incidents:
        part(area).incidents.append((incident, area))
    for call, area in chosen.calls:
        part(area).calls.append((call, area))
    for order, area in chosen.orders:
        part(area).orders.append((order, area))
    for follow_up, area in chosen.follow_ups:
        part(area).follow_ups.append((follow_up, area))
    return [{"area": area, "figures": _group(state, parts[area])} for area in sorted(parts)]


def _incident_rows(state: Projection, chosen: _Chosen, key: str, of: Callable[[Incident], str]) -> list[dict[str, Any]]:
    """Incidents grouped by type or source (calls, orders and follow-ups have neither: zero in these rows)."""
    groups: dict[str, list[Incident]] = defaultdict(list)
    for incident, _ in chosen.incidents:
        groups[of(incident)].append(incident)
    rows = [{key: name, "figures": figures(state, members, [], [], [])} for name, members in groups.items()]
    return sorted(rows, key=lambda r: (-r["figures"]["alarms"] - r["figures"]["technical"], r[key]))


def _days(chosen: _Chosen, period: Period) -> list[dict[str, Any]]:
    zone = ZoneInfo(period.timezone)

    def day(ts: float) -> date:
        return datetime.fromtimestamp(ts, zone).date()

    alarms: Counter[date] = Counter()
    quick: Counter[date] = Counter()
    calls: Counter[date] = Counter()
    for incident, _ in chosen.incidents:
        if incident.technical:
            continue
        alarms[day(incident.opened_at)] += 1
        ack = incident.acknowledged_at
        if ack is not None and ack - incident.opened_at <= ANSWER_TARGETS_S[0]:
            quick[day(incident.opened_at)] += 1
    for call, _ in chosen.calls:
        calls[day(call.started_at)] += 1
    return [{"day": d.isoformat(), "alarms": alarms[d], "answered_within_60s": quick[d], "calls": calls[d]}
            for d in period.days()]  # fmt: skip


def _responders(state: Projection, chosen: _Chosen, names: Names) -> list[dict[str, Any]]:
    """Each responder offered an incident of the report: offers, replies, jobs done and time on the job
    (accepted to done, or to being released from it)."""
    rows: dict[str, dict[str, Any]] = {}
    for incident, _ in chosen.incidents:
        for assignment in (state.assignments[i] for i in incident.assignments):
            rid = assignment.responder_id
            row = rows.get(rid)
            if row is None:
                name, kind = names(rid)
                row = rows[rid] = {"responder_id": rid, "name": name, "kind": kind, "offers": 0, "accepted": 0,
                                   "declined": 0, "expired": 0, "done": 0, "on_job_s": 0.0}  # fmt: skip
            _count(row, assignment)
    for row in rows.values():
        row["on_job_s"] = round(row["on_job_s"], 1)
    return sorted(rows.values(), key=lambda r: (-r["done"], r["responder_id"]))


def _count(row: dict[str, Any], assignment: Assignment) -> None:
    row["offers"] += 1
    row["accepted"] += int(assignment.accepted_at is not None)
    row["declined"] += int(assignment.state is AssignmentState.DECLINED)
    row["expired"] += int(assignment.state is AssignmentState.EXPIRED)
    row["done"] += int(assignment.state is AssignmentState.DONE)
    if assignment.accepted_at is not None and assignment.finished_at is not None:
        row["on_job_s"] += assignment.finished_at - assignment.accepted_at
