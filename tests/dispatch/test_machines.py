"""The transition tables: legal moves, illegal ones raising, and the docs drawn from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.errors import IllegalTransition
from dispatch.machines import (
    ASSIGNMENT_TRANSITIONS,
    INCIDENT_TRANSITIONS,
    OPEN_STATES,
    AssignmentEvent,
    AssignmentState,
    IncidentEvent,
    IncidentState,
    assignment_next,
    document,
    incident_next,
)


def test_every_pair_not_in_the_tables_raises() -> None:
    for state in IncidentState:
        for event in IncidentEvent:
            if (state, event) in INCIDENT_TRANSITIONS:
                assert incident_next(state, event) is INCIDENT_TRANSITIONS[(state, event)]
            else:
                with pytest.raises(IllegalTransition):
                    incident_next(state, event)
    for a_state in AssignmentState:
        for a_event in AssignmentEvent:
            if (a_state, a_event) not in ASSIGNMENT_TRANSITIONS:
                with pytest.raises(IllegalTransition):
                    assignment_next(a_state, a_event)


def test_the_main_line_and_the_exits() -> None:
    path = [IncidentEvent.ACKNOWLEDGE, IncidentEvent.OFFER, IncidentEvent.ACCEPT, IncidentEvent.ARRIVE,
            IncidentEvent.RESOLVE, IncidentEvent.CLOSE]  # fmt: skip
    state = IncidentState.RECEIVED
    for event in path:
        state = incident_next(state, event)
    assert state is IncidentState.CLOSED
    for open_state in OPEN_STATES - {IncidentState.ESCALATED}:
        assert incident_next(open_state, IncidentEvent.CANCEL) is IncidentState.CANCELLED
        assert incident_next(open_state, IncidentEvent.ESCALATE) is IncidentState.ESCALATED
    with pytest.raises(IllegalTransition):
        incident_next(IncidentState.CLOSED, IncidentEvent.ACKNOWLEDGE)
    with pytest.raises(IllegalTransition):
        assignment_next(AssignmentState.EXPIRED, AssignmentEvent.ACCEPT)  # too late


def test_terminal_assignment_states_have_no_way_out() -> None:
    terminal = {AssignmentState.DECLINED, AssignmentState.EXPIRED, AssignmentState.WITHDRAWN, AssignmentState.DONE}
    assert not [key for key in ASSIGNMENT_TRANSITIONS if key[0] in terminal]


def test_docs_are_drawn_from_the_tables() -> None:
    path = Path(__file__).parents[2] / "docs" / "state-machines.md"
    assert path.read_text(encoding="utf-8") == document(), "run: python -m dispatch.machines > docs/state-machines.md"
