"""The incident, assignment, service-order, clinic-referral and hotline-call state machines, as tables.

Rule 1: every legal move of an incident, an assignment, a service order, a referral or a hotline call is one
row in a table below. Code never sets a state directly; it calls :func:`incident_next`, :func:`assignment_next`,
:func:`order_next`, :func:`referral_next` or :func:`call_next`, which raise
:class:`~dispatch.errors.IllegalTransition` for any move not in the table.

Rule 2: an incident's state follows from operator actions and from its assignments: the first accepted
offer makes it ``assigned``, a responder on scene makes it ``on_scene``. Acknowledging is recorded even
when automatic dispatch already moved the incident on (those rows keep the state).

``docs/state-machines.md`` is drawn from these tables by :func:`mermaid`.
"""

from __future__ import annotations

from enum import StrEnum

from dispatch.errors import IllegalTransition


class IncidentState(StrEnum):
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHING = "dispatching"
    ASSIGNED = "assigned"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    ESCALATED = "escalated"


class IncidentEvent(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    OFFER = "offer"
    ACCEPT = "accept"
    ARRIVE = "arrive"
    RESOLVE = "resolve"
    CLOSE = "close"
    CANCEL = "cancel"
    ESCALATE = "escalate"
    REOPEN_DISPATCH = "reopen_dispatch"


class AssignmentState(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    DONE = "done"


class AssignmentEvent(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    EXPIRE = "expire"
    WITHDRAW = "withdraw"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    DONE = "done"


_I = IncidentState
_IE = IncidentEvent

INCIDENT_TRANSITIONS: dict[tuple[IncidentState, IncidentEvent], IncidentState] = {
    (_I.RECEIVED, _IE.ACKNOWLEDGE): _I.ACKNOWLEDGED,
    (_I.DISPATCHING, _IE.ACKNOWLEDGE): _I.DISPATCHING,
    (_I.ASSIGNED, _IE.ACKNOWLEDGE): _I.ASSIGNED,
    (_I.ON_SCENE, _IE.ACKNOWLEDGE): _I.ON_SCENE,
    (_I.ESCALATED, _IE.ACKNOWLEDGE): _I.ESCALATED,
    (_I.RECEIVED, _IE.OFFER): _I.DISPATCHING,
    (_I.ACKNOWLEDGED, _IE.OFFER): _I.DISPATCHING,
    (_I.DISPATCHING, _IE.OFFER): _I.DISPATCHING,
    (_I.ESCALATED, _IE.OFFER): _I.ESCALATED,
    # the caregiver reported done and the operator sends someone for another visit
    (_I.ON_SCENE, _IE.OFFER): _I.DISPATCHING,
    (_I.DISPATCHING, _IE.ACCEPT): _I.ASSIGNED,
    # someone nearer is asked to take over from a responder still on the way, and accepts (Engine._take_over)
    (_I.ASSIGNED, _IE.OFFER): _I.ASSIGNED,
    (_I.ASSIGNED, _IE.ACCEPT): _I.ASSIGNED,
    (_I.ESCALATED, _IE.ACCEPT): _I.ESCALATED,
    (_I.ASSIGNED, _IE.ARRIVE): _I.ON_SCENE,
    (_I.ESCALATED, _IE.ARRIVE): _I.ESCALATED,
    # the accepted responder dropped out (withdrawn by an operator): back to dispatching
    (_I.ASSIGNED, _IE.REOPEN_DISPATCH): _I.DISPATCHING,
    (_I.ON_SCENE, _IE.REOPEN_DISPATCH): _I.DISPATCHING,
    # a technical condition that cleared by itself (the device came back) may resolve before anyone answered
    (_I.RECEIVED, _IE.RESOLVE): _I.RESOLVED,
    (_I.ACKNOWLEDGED, _IE.RESOLVE): _I.RESOLVED,
    (_I.DISPATCHING, _IE.RESOLVE): _I.RESOLVED,
    (_I.ASSIGNED, _IE.RESOLVE): _I.RESOLVED,
    (_I.ON_SCENE, _IE.RESOLVE): _I.RESOLVED,
    (_I.ESCALATED, _IE.RESOLVE): _I.RESOLVED,
    (_I.RESOLVED, _IE.CLOSE): _I.CLOSED,
    (_I.CANCELLED, _IE.CLOSE): _I.CLOSED,
    (_I.ESCALATED, _IE.CLOSE): _I.CLOSED,
    **{
        (state, _IE.CANCEL): _I.CANCELLED
        for state in (_I.RECEIVED, _I.ACKNOWLEDGED, _I.DISPATCHING, _I.ASSIGNED, _I.ON_SCENE)
    },
    **{
        (state, _IE.ESCALATE): _I.ESCALATED
        for state in (_I.RECEIVED, _I.ACKNOWLEDGED, _I.DISPATCHING, _I.ASSIGNED, _I.ON_SCENE)
    },
}

_A = AssignmentState
_AE = AssignmentEvent

ASSIGNMENT_TRANSITIONS: dict[tuple[AssignmentState, AssignmentEvent], AssignmentState] = {
    (_A.OFFERED, _AE.ACCEPT): _A.ACCEPTED,
    (_A.OFFERED, _AE.DECLINE): _A.DECLINED,
    (_A.OFFERED, _AE.EXPIRE): _A.EXPIRED,
    (_A.OFFERED, _AE.WITHDRAW): _A.WITHDRAWN,
    (_A.ACCEPTED, _AE.EN_ROUTE): _A.EN_ROUTE,
    (_A.ACCEPTED, _AE.ON_SCENE): _A.ON_SCENE,
    (_A.EN_ROUTE, _AE.ON_SCENE): _A.ON_SCENE,
    (_A.ON_SCENE, _AE.DONE): _A.DONE,
    (_A.ACCEPTED, _AE.WITHDRAW): _A.WITHDRAWN,
    (_A.EN_ROUTE, _AE.WITHDRAW): _A.WITHDRAWN,
    (_A.ON_SCENE, _AE.WITHDRAW): _A.WITHDRAWN,
}

#: States in which an incident still needs work (and shows in the live queue).
OPEN_STATES = frozenset({_I.RECEIVED, _I.ACKNOWLEDGED, _I.DISPATCHING, _I.ASSIGNED, _I.ON_SCENE, _I.ESCALATED})
#: Assignment states in which the responder is taken (holding an offer or on the job).
ACTIVE_ASSIGNMENT = frozenset({_A.OFFERED, _A.ACCEPTED, _A.EN_ROUTE, _A.ON_SCENE})


def incident_next(state: IncidentState, event: IncidentEvent) -> IncidentState:
    try:
        return INCIDENT_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition("incident", state.value, event.value) from None


def assignment_next(state: AssignmentState, event: AssignmentEvent) -> AssignmentState:
    try:
        return ASSIGNMENT_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition("assignment", state.value, event.value) from None


def incident_allows(state: IncidentState, event: IncidentEvent) -> bool:
    return (state, event) in INCIDENT_TRANSITIONS


# -- service orders (the service desk, dispatch.services) -----------------------------------------------


class OrderState(StrEnum):
    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    ASSIGNED = "assigned"
    STARTED = "started"
    DELIVERED = "delivered"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


class OrderEvent(StrEnum):
    SCHEDULE = "schedule"
    RESCHEDULE = "reschedule"
    ASSIGN = "assign"
    START = "start"
    DELIVER = "deliver"
    CONFIRM = "confirm"
    CANCEL = "cancel"
    NO_SHOW = "no_show"


_O = OrderState
_OE = OrderEvent

ORDER_TRANSITIONS: dict[tuple[OrderState, OrderEvent], OrderState] = {
    (_O.REQUESTED, _OE.SCHEDULE): _O.SCHEDULED,
    (_O.SCHEDULED, _OE.ASSIGN): _O.ASSIGNED,
    # another caregiver takes the visit over before it began (the one assigned fell ill)
    (_O.ASSIGNED, _OE.ASSIGN): _O.ASSIGNED,
    (_O.ASSIGNED, _OE.START): _O.STARTED,  # checked in at the door
    (_O.STARTED, _OE.DELIVER): _O.DELIVERED,  # checked out, with a note of what was done
    (_O.DELIVERED, _OE.CONFIRM): _O.CONFIRMED,
    # a new time window: whoever was assigned is released, the visit is assigned again
    (_O.SCHEDULED, _OE.RESCHEDULE): _O.SCHEDULED,
    (_O.ASSIGNED, _OE.RESCHEDULE): _O.SCHEDULED,
    # the elder was not home (or sent the caregiver away)
    (_O.ASSIGNED, _OE.NO_SHOW): _O.NO_SHOW,
    (_O.STARTED, _OE.NO_SHOW): _O.NO_SHOW,
    **{(state, _OE.CANCEL): _O.CANCELLED for state in (_O.REQUESTED, _O.SCHEDULED, _O.ASSIGNED, _O.STARTED)},
}

#: States in which a service order still needs work (a delivered one waits only for its confirmation).
OPEN_ORDER_STATES = frozenset({_O.REQUESTED, _O.SCHEDULED, _O.ASSIGNED, _O.STARTED})


def order_next(state: OrderState, event: OrderEvent) -> OrderState:
    try:
        return ORDER_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition("service_order", state.value, event.value) from None


# -- clinic referrals (the green channel, dispatch.referrals) ----------------------------------------------


class ReferralState(StrEnum):
    REFERRED = "referred"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    ARRIVED = "arrived"
    CONCLUDED = "concluded"  # the clinic recorded the outcome
    CANCELLED = "cancelled"


class ReferralEvent(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    EXPIRE = "expire"
    ARRIVE = "arrive"
    OUTCOME = "outcome"
    CANCEL = "cancel"


_R = ReferralState
_RE = ReferralEvent

REFERRAL_TRANSITIONS: dict[tuple[ReferralState, ReferralEvent], ReferralState] = {
    (_R.REFERRED, _RE.ACCEPT): _R.ACCEPTED,
    (_R.REFERRED, _RE.DECLINE): _R.DECLINED,
    (_R.REFERRED, _RE.EXPIRE): _R.EXPIRED,
    (_R.ACCEPTED, _RE.ARRIVE): _R.ARRIVED,  # the patient is at the clinic's door
    (_R.ARRIVED, _RE.OUTCOME): _R.CONCLUDED,
    # the operator calls it off (the patient is not coming: a false alarm, taken elsewhere by 120)
    (_R.REFERRED, _RE.CANCEL): _R.CANCELLED,
    (_R.ACCEPTED, _RE.CANCEL): _R.CANCELLED,
}

#: referral states in which the clinic still has something to do (an incident holds at most one such referral)
OPEN_REFERRAL_STATES = frozenset({_R.REFERRED, _R.ACCEPTED, _R.ARRIVED})


def referral_next(state: ReferralState, event: ReferralEvent) -> ReferralState:
    try:
        return REFERRAL_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition("referral", state.value, event.value) from None


# -- hotline calls (dispatch.engine.call_event) -----------------------------------------------------------


class CallState(StrEnum):
    RINGING = "ringing"
    QUEUED = "queued"
    ANSWERED = "answered"  # talking: someone picked up (an outbound call: the far side did)
    ENDED = "ended"


class CallMove(StrEnum):
    QUEUE = "queue"
    ANSWER = "answer"
    TRANSFER = "transfer"
    END = "end"


_C = CallState
_CM = CallMove

#: Calls only move forward: the PBX's events come late and out of order after a reconnect, so a move that is
#: not here (queued after answered, anything after ended) is a stale report the engine records nothing of
#: (:func:`call_allows`); it never raises at the PBX.
CALL_TRANSITIONS: dict[tuple[CallState, CallMove], CallState] = {
    (_C.RINGING, _CM.QUEUE): _C.QUEUED,
    (_C.RINGING, _CM.ANSWER): _C.ANSWERED,
    (_C.QUEUED, _CM.ANSWER): _C.ANSWERED,
    (_C.ANSWERED, _CM.TRANSFER): _C.ANSWERED,
    # a transfer reported before its answer (the answer was lost while the link was down): it was answered
    (_C.RINGING, _CM.TRANSFER): _C.ANSWERED,
    (_C.QUEUED, _CM.TRANSFER): _C.ANSWERED,
    **{(state, _CM.END): _C.ENDED for state in (_C.RINGING, _C.QUEUED, _C.ANSWERED)},
}


def call_next(state: CallState, move: CallMove) -> CallState:
    try:
        return CALL_TRANSITIONS[(state, move)]
    except KeyError:
        raise IllegalTransition("call", state.value, move.value) from None


def call_allows(state: CallState, move: CallMove) -> bool:
    return (state, move) in CALL_TRANSITIONS


def mermaid(table: dict[tuple[StrEnum, StrEnum], StrEnum], initial: StrEnum) -> str:
    """A Mermaid state diagram drawn from a transition table (self-loops left out for legibility)."""
    lines = ["stateDiagram-v2", f"    [*] --> {initial.value}"]
    for (source, event), target in table.items():
        if source != target:
            lines.append(f"    {source.value} --> {target.value}: {event.value}")
    return "\n".join(lines)


def document() -> str:
    """The text of docs/state-machines.md (a test keeps the file equal to this)."""
    return "\n".join(
        [
            "# State machines",
            "",
            "Drawn from the transition tables in `dispatch/machines.py` by `python -m dispatch.machines`;",
            "a test fails when this file and the tables disagree. Self-loops (for example acknowledging an",
            "incident that automatic dispatch already moved on) are in the tables but not drawn.",
            "",
            "## Incident",
            "",
            "```mermaid",
            mermaid(INCIDENT_TRANSITIONS, IncidentState.RECEIVED),  # type: ignore[arg-type]
            "```",
            "",
            "## Assignment (one offer to one responder)",
            "",
            "```mermaid",
            mermaid(ASSIGNMENT_TRANSITIONS, AssignmentState.OFFERED),  # type: ignore[arg-type]
            "```",
            "",
            "## Service order (the service desk)",
            "",
            "```mermaid",
            mermaid(ORDER_TRANSITIONS, OrderState.REQUESTED),  # type: ignore[arg-type]
            "```",
            "",
            "## Clinic referral (the green channel)",
            "",
            "```mermaid",
            mermaid(REFERRAL_TRANSITIONS, ReferralState.REFERRED),  # type: ignore[arg-type]
            "```",
            "",
            "## Hotline call (in or out; late and repeated reports of a move not drawn change nothing)",
            "",
            "```mermaid",
            mermaid(CALL_TRANSITIONS, CallState.RINGING),  # type: ignore[arg-type]
            "```",
            "",
        ]
    )


if __name__ == "__main__":
    print(document(), end="")
