"""A synthetic city for the period report's slicing test and its benchmark (bench/bench_report.py): a year of
incidents with their offers, calls, service orders and follow-ups, put straight into a projection (no engine, no
journal: the report reads only the projection), with a registry of elders in 240 communities and the views over
them, as the console asks ``Views.period_report``.

The mix is plausible, not measured: most alarms answered within a minute, a few late or never, one to three
offers each, some declined or left to expire, false alarms, hand-overs to 120, technical incidents, drills and
test calls; calls mostly answered; orders delivered, cancelled or nobody home; follow-ups reached or not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from dispatch.clock import ManualClock
from dispatch.directory import Directory
from dispatch.followups import FollowUp, FollowUpState
from dispatch.machines import AssignmentState, IncidentState, OrderState
from dispatch.state import Assignment, Call, Incident, Projection, ServiceOrder
from dispatch.views import Views
from tests.conftest import elder, responder, settings_for

YEAR = 2026
ZONE = ZoneInfo("Asia/Shanghai")
ALARMS = ("sos", "sos", "sos", "fall", "fall", "medical", "inactivity", "low_battery", "mains_loss")
TECHNICAL = frozenset({"low_battery", "mains_loss"})
SOURCES = ("device", "device", "device", "api", "operator", "hotline")


@dataclass(frozen=True, slots=True)
class City:
    views: Views
    state: Projection
    communities: tuple[str, ...]


def communities(count: int) -> tuple[str, ...]:
    """``count`` community paths in four districts of six streets each."""
    return tuple(f"区{n % 4}/街道{n % 24}/社区{n}" for n in range(count))


def city(tmp: Path, *, incidents: int, communities_n: int = 240, elders_per: int = 20, seed: int = 17) -> City:
    """The city: ``incidents`` over the local year, half as many calls, a quarter as many orders, a tenth as many
    follow-ups; ``communities_n`` communities of ``elders_per`` elders; 300 responders."""
    rng = random.Random(seed)
    places = communities(communities_n)
    directory = Directory()
    elder_ids: list[str] = []
    for n, community in enumerate(places):
        for k in range(elders_per):
            elder_id = f"e{n}-{k}"
            directory.put_elder(elder(elder_id, community=community, phone=None))
            elder_ids.append(elder_id)
    responders = [f"r{n}" for n in range(300)]
    for n, rid in enumerate(responders):
        directory.put_responder(responder(rid, 24.5 + n / 10_000, 117.7, community=places[n % len(places)]))
    start = datetime.combine(datetime(YEAR, 1, 1).date(), time(0), ZONE).timestamp()
    end = datetime.combine(datetime(YEAR + 1, 1, 1).date(), time(0), ZONE).timestamp()
    state = Projection(position_stale_s=1800.0)
    for n in range(incidents):
        _incident(state, rng, n, rng.uniform(start, end), rng.choice(elder_ids), responders)
    for n in range(incidents // 2):
        _call(state, rng, n, rng.uniform(start, end), rng.choice(elder_ids))
    for n in range(incidents // 4):
        _order(state, rng, n, rng.uniform(start, end), rng.choice(elder_ids))
    for n in range(incidents // 10):
        _follow_up(state, rng, n, rng.uniform(start, end), rng.choice(elder_ids))
    settings = settings_for(tmp, timezone="Asia/Shanghai")
    return City(Views(state, directory, ManualClock(end + 3600.0), settings), state, places)


def _incident(state: Projection, rng: random.Random, n: int, opened: float, elder_id: str,
              responders: list[str]) -> None:  # fmt: skip
    alarm_type = rng.choice(ALARMS)
    incident = Incident(
        incident_id=f"i{n}", state=IncidentState.CLOSED, alarm_type=alarm_type, source=rng.choice(SOURCES),
        priority=1, priority_reasons=(), elder_id=elder_id, device_id=None, call_id=None, lat=None, lon=None,
        location="", opened_at=opened, answer_deadline=opened + 60.0, drill=rng.random() < 0.02,
        updated_at=opened, state_since=opened, technical=alarm_type in TECHNICAL, test=rng.random() < 0.005,
    )  # fmt: skip
    if rng.random() < 0.97:
        incident.acknowledged_at = opened + rng.expovariate(1 / 35.0)
    fate = rng.random()
    if fate < 0.05:
        incident.cancelled_at, incident.state = opened + 300.0, IncidentState.CLOSED
    elif fate < 0.08:
        incident.escalated_to, incident.state = "120", IncidentState.ESCALATED
    elif fate < 0.085:
        incident.state = IncidentState.DISPATCHING
    if not incident.technical:
        _offers(state, rng, incident, responders)
    state.incidents[incident.incident_id] = incident


def _offers(state: Projection, rng: random.Random, incident: Incident, responders: list[str]) -> None:
    """One to three offers, one after the other; the last is accepted and done most of the time."""
    at = (incident.acknowledged_at or incident.opened_at) + rng.uniform(5.0, 60.0)
    count = rng.randint(1, 3)
    for k in range(count):
        offer = Assignment(
            assignment_id=f"{incident.incident_id}-a{k}", incident_id=incident.incident_id,
            responder_id=rng.choice(responders), state=AssignmentState.DECLINED, offered_at=at, deadline=at + 45.0,
            by="engine", distance_m=800.0, eta_s=600.0, updated_at=at,
        )  # fmt: skip
        if k < count - 1:
            offer.state = rng.choice((AssignmentState.DECLINED, AssignmentState.EXPIRED))
            offer.finished_at = at + rng.uniform(3.0, 45.0)
        elif rng.random() < 0.9:
            offer.accepted_at = at + rng.uniform(3.0, 40.0)
            offer.on_scene_at = offer.accepted_at + rng.uniform(300.0, 1500.0)
            offer.finished_at = offer.on_scene_at + rng.uniform(600.0, 3600.0)
            offer.state = AssignmentState.DONE
        state.assignments[offer.assignment_id] = offer
        incident.assignments.append(offer.assignment_id)
        at = (offer.finished_at or at) + 2.0


def _call(state: Projection, rng: random.Random, n: int, rang: float, elder_id: str) -> None:
    call = Call(call_id=f"c{n}", caller="13500000000", line="hotline", elder_id=elder_id, state="ended",
                started_at=rang, drill=rng.random() < 0.02)  # fmt: skip
    if rng.random() < 0.95:
        call.answered_at = rang + rng.expovariate(1 / 12.0)
    call.ended_at = rang + 240.0
    state.calls[call.call_id] = call


def _order(state: Projection, rng: random.Random, n: int, ordered: float, elder_id: str) -> None:
    fate = rng.choice((OrderState.DELIVERED, OrderState.DELIVERED, OrderState.CANCELLED, OrderState.NO_SHOW))
    order = ServiceOrder(
        order_id=f"o{n}", elder_id=elder_id, item_id="meal", state=fate, start=ordered + 86_400.0,
        end=ordered + 90_000.0, mode="free", price_fen=0, source="hotline", place="", call_id=None,
        provider="centre", drill=rng.random() < 0.02, ordered_at=ordered, ordered_by="op", updated_at=ordered,
        state_since=ordered,
    )  # fmt: skip
    if fate is OrderState.DELIVERED:
        order.delivered_at = ordered + 88_000.0
    state.service_orders[order.order_id] = order


def _follow_up(state: Projection, rng: random.Random, n: int, recorded: float, elder_id: str) -> None:
    reached = rng.random() < 0.85
    follow_up = FollowUp(
        follow_up_id=f"f{n}", kind="incident", subject_id=f"i{n}", elder_id=elder_id, due=recorded, responders=(),
        drill=False, created_at=recorded - 86_400.0,
        state=FollowUpState.DONE if reached else FollowUpState.UNREACHABLE,
        satisfaction=rng.randint(1, 5) if reached else None, complaint="slow" if rng.random() < 0.03 else "",
        recorded_at=recorded,
    )  # fmt: skip
    state.follow_ups.follow_ups[follow_up.follow_up_id] = follow_up
