"""Reports: the supervisor's live figures, read from the projections. Drills are left out unless asked.

Every figure here is derived from incidents, which are derived from the journal; nothing is counted twice
and nothing is stored. "Today" is the centre's local day (``Settings.timezone``), not UTC's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.machines import OPEN_STATES
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
) -> dict[str, Any]:
    """Answers today within 60 s and 180 s, open incidents, responders on duty, escalations waiting: over the
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
        "answer_median_s": round(waits[len(waits) // 2], 1) if waits else None,
        "open_incidents": len(open_),
        "open_urgent": sum(1 for i in open_ if i.priority == 1),
        "needs_manual": sum(1 for i in open_ if i.needs_manual),
        "escalations_waiting": sum(1 for i in open_ if i.supervisor_alerted and i.acknowledged_at is None),
        "responders_on_duty": sum(1 for r in staff if r.on_duty),
        "responders_busy": sum(1 for r in staff if r.on_duty and r.assignment_id is not None),
        # caregivers reported done and the operator has not decided yet
        "awaiting_decision": sum(1 for i in open_ if i.proposal is not None and not state.active_assignments(i)),
        "calls_unclassified": sum(
            1 for c in chosen_calls if c.answered_at is not None and c.kind is None and (include_drill or not c.drill)
        ),
        "callbacks_due": sum(1 for c in chosen_calls if c.callback == "due" and (include_drill or not c.drill)),
    }


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
