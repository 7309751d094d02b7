"""Reports: the supervisor's live figures, read from the projections. Drills are left out unless asked.

Every figure here is derived from incidents, which are derived from the journal; nothing is counted twice
and nothing is stored. "Today" is the centre's local day (``Settings.timezone``), not UTC's. Calls are counted
from the calls' records (dispatch.state.Call): an inbound call by when it rang, its wait from ringing to pick-up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.machines import OPEN_STATES
from dispatch.periodreport import stats
from dispatch.state import Call, Incident, Projection, ResponderState

ANSWER_TARGETS_S = (60, 180)


def start_of_day(now: float, tz: str) -> float:
    local = datetime.fromtimestamp(now, ZoneInfo(tz))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def kpis(
    state: Projection,
    now: float,
    tz: str,
    *,
    include_drill: bool = False,
    incidents: Iterable[Incident] | None = None,
    calls: Iterable[Call] | None = None,
    responders: Iterable[ResponderState] | None = None,
    target_s: float = 60.0,
) -> dict[str, Any]:
    """Answers today within 60 s and 180 s, open incidents, responders on duty, escalations waiting, and the
    hotline's calls today (:func:`calls_today`, against the answer target ``target_s``): over the
    ``incidents``, ``calls`` and ``responders`` given (a scope's), or all of them."""
    day = start_of_day(now, tz)
    chosen_calls = list(state.calls.values() if calls is None else calls)
    staff = list(state.responders.values() if responders is None else responders)
    incidents = [  # a device's test call (dispatch.keeping) is no alarm of anyone's: never counted
        i
        for i in (state.incidents.values() if incidents is None else incidents)
        if (include_drill or not i.drill) and not i.test
    ]
    today = [i for i in incidents if i.opened_at >= day and not i.technical]
    answered = [i for i in today if i.acknowledged_at is not None]
    waits = sorted(_wait(i) for i in answered)
    open_ = [i for i in incidents if i.state in OPEN_STATES]
    return {
        "day_start": day,
        "drill_included": include_drill,
        "alarms_today": len(today),
        "answered_today": len(answered),
        **{f"answered_within_{t}s": sum(1 for w in waits if w <= t) for t in ANSWER_TARGETS_S},
        "answer_median_s": stats(waits)["median"],  # nearest rank, as the period report counts it
        "open_incidents": len(open_),
        "open_urgent": sum(1 for i in open_ if i.priority == 1),
        "needs_manual": sum(1 for i in open_ if i.needs_manual),
        "escalations_waiting": sum(1 for i in open_ if i.supervisor_alerted and i.acknowledged_at is None),
        "responders_on_duty": sum(1 for r in staff if r.on_duty),
        "responders_busy": sum(1 for r in staff if r.on_duty and r.assignment_id is not None),
        # caregivers reported done and the operator has not decided yet
        "awaiting_decision": sum(1 for i in open_ if i.proposal is not None and not state.active_assignments(i)),
        "calls_unclassified": sum(
            1
            for c in chosen_calls
            if c.answered_at is not None and c.kind is None and c.direction == "in" and (include_drill or not c.drill)
        ),
        "callbacks_due": sum(1 for c in chosen_calls if c.callback == "due" and (include_drill or not c.drill)),
        "calls_today": calls_today([c for c in chosen_calls if include_drill or not c.drill], day, target_s),
    }


def calls_today(calls: Iterable[Call], day: float, target_s: float) -> dict[str, Any]:
    """The hotline since ``day`` began: inbound calls offered (rung), answered (within the answer target, and
    the median and 90th percentile of ringing to pick-up, nearest rank), and how the unanswered and passed-on
    ones ended; outbound calls (operators' click-to-call) apart. A call counts by when it rang."""
    inbound: list[Call] = []
    outbound = 0
    for call in calls:
        if call.started_at < day:
            continue
        if call.direction == "in":
            inbound.append(call)
        else:
            outbound += 1
    waits = sorted(c.wait for c in inbound if c.wait is not None)
    figures = stats(waits)
    outcomes = Counter(c.outcome for c in inbound)
    return {
        "offered": len(inbound),
        "answered": len(waits),
        "answered_within_target": sum(1 for w in waits if w <= target_s),
        "target_s": target_s,
        "answer_median_s": figures["median"],
        "answer_p90_s": figures["p90"],
        "abandoned": outcomes["abandoned"],
        "missed": outcomes["missed"],
        "transferred": outcomes["transferred"],
        "outbound": outbound,
    }


@dataclass(frozen=True, slots=True)
class Operational:
    """The open incidents as the operations' metrics count them: numbers only, no one's name or id. Drills and
    devices' test calls are left out (``drill_open`` counts the drills' on their own)."""

    open_by_state: dict[str, int]
    unacknowledged: int
    oldest_unacknowledged_s: float  # 0 when every open incident is acknowledged
    past_answer_target: int
    escalations_waiting: int
    needs_manual: int
    drill_open: int


def operational(state: Projection, now: float) -> Operational:
    """One pass over the incidents (what a scrape every 15 s costs: the snapshot of a console)."""
    by_state: Counter[str] = Counter()
    waiting, drills, past, escalated, manual = [], 0, 0, 0, 0
    for incident in state.incidents.values():
        if incident.state not in OPEN_STATES or incident.test:
            continue
        if incident.drill:
            drills += 1
            continue
        by_state[incident.state.value] += 1
        manual += incident.needs_manual
        if incident.acknowledged_at is None:
            waiting.append(incident.opened_at)
            past += incident.answer_deadline <= now
            escalated += incident.supervisor_alerted
    return Operational(
        open_by_state=dict(by_state), unacknowledged=len(waiting),
        oldest_unacknowledged_s=max(0.0, now - min(waiting)) if waiting else 0.0, past_answer_target=past,
        escalations_waiting=escalated, needs_manual=manual, drill_open=drills,
    )  # fmt: skip


def escalations(state: Projection, *, include_drill: bool = False) -> list[Incident]:
    """Incidents escalated to supervisors that nobody has acknowledged yet, oldest first."""
    waiting = [
        i
        for i in state.incidents.values()
        if i.state in OPEN_STATES
        and i.supervisor_alerted
        and i.acknowledged_at is None
        and (include_drill or not i.drill)
    ]
    return sorted(waiting, key=lambda i: i.opened_at)


def _wait(incident: Incident) -> float:
    assert incident.acknowledged_at is not None
    return incident.acknowledged_at - incident.opened_at
