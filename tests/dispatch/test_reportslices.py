"""The period report folds in slices (dispatch.periodreport rule 5): it hands the event loop back as it goes, no
slice looks at more than a slice of records, the slices change no figure, and the projection may grow between
them. Over the synthetic city of tests/dispatch/reportcity.py (a year, 24 communities); the figures themselves
are checked against the journal by test_periodreport.py. No timing is asserted: slices are counted."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.errors import InvalidInput
from dispatch.periodreport import SLICE, TIMES_PER_RECORD, Pace, Places, fold, ordered, period_of, run
from dispatch.scopes import Reach
from dispatch.state import Projection
from tests.dispatch.reportcity import City, city

EVERYWHERE = Reach(("*",))
YEAR = {"start": "2026-01-01", "end": "2027-01-01"}
INCIDENTS = 3000


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> City:
    return city(tmp_path_factory.mktemp("city"), incidents=INCIDENTS, communities_n=24)


def _records(town: City) -> int:
    state = town.state
    return len(state.incidents) + len(state.calls) + len(state.service_orders) + len(state.follow_ups.follow_ups)


def _slices(town: City, by: str = "community", pace: Pace | None = None) -> tuple[int, dict[str, Any]]:
    """How many slices a year's report took, and the report."""
    steps = town.views.period_fold(EVERYWHERE, by=by, pace=pace, **YEAR)
    count = 1
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return count, done.value
        count += 1


def test_a_year_of_records_is_folded_in_many_slices(town: City) -> None:
    slices, report = _slices(town)
    assert slices > _records(town) // SLICE >= 20
    assert report == town.views.period_report(EVERYWHERE, by="community", **YEAR)
    assert report["totals"]["alarms"] > 2000 and len(report["areas"]) == 24


async def test_the_loop_runs_other_tasks_while_a_report_folds(town: City) -> None:
    """A task scheduled meanwhile has its turns before the report is done: the fold hands the loop back."""
    slices, _ = _slices(town)
    done = asyncio.Event()
    turns = 0

    async def other() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    report = await town.views.period_report_on_loop(EVERYWHERE, by="district", **YEAR)
    during = turns
    done.set()
    await task
    assert during >= slices // 2, (during, slices)
    assert report == town.views.period_report(EVERYWHERE, by="district", **YEAR)


def test_no_slice_looks_at_more_than_a_slice_of_records(town: City) -> None:
    """Each record's place is asked once, as it is looked at: between two hand-backs, at most a slice of them."""
    views, asked = town.views, [0]

    def counted(place: str | None) -> str | None:
        asked[0] += 1
        return place or ""

    places = Places(incident=lambda i: counted(views.incident_place(i)), call=lambda c: counted(views.call_place(c)),
                    elder=lambda e: counted(views.elder_place(e)))  # fmt: skip
    period = period_of("Asia/Shanghai", 0.0, **YEAR)
    steps = fold(town.state, period, "community", places, lambda r: ("", "other"), include_drill=True,
                 generated_at=0.0, pace=Pace(40))  # fmt: skip
    most = 0
    while True:
        asked[0] = 0
        try:
            next(steps)
        except StopIteration:
            break
        finally:
            most = max(most, asked[0])
    assert 30 < most <= 40


@pytest.mark.parametrize("size", [1, 7, 64])
@pytest.mark.parametrize("by", ["community", "district"])
def test_the_slices_change_no_figure(town: City, by: str, size: int) -> None:
    """Small slices sort the times in many runs and merge them over many rounds: the same report."""
    slices, report = _slices(town, by, Pace(size))
    assert report == town.views.period_report(EVERYWHERE, by=by, **YEAR)
    assert slices > _records(town) // size


def test_the_projection_may_grow_while_a_report_folds(town: City) -> None:
    """New incidents, offers, calls and orders between two slices: no "dict changed size", and the report is
    of the records there were when it was asked for."""
    before = town.views.period_report(EVERYWHERE, by="street", **YEAR)
    steps = town.views.period_fold(EVERYWHERE, by="street", pace=Pace(50), **YEAR)
    for _ in range(3):
        next(steps)
    added = _copies(town.state)
    try:
        assert run(steps) == before
        assert town.views.period_report(EVERYWHERE, by="street", **YEAR) != before  # the next one counts them
    finally:
        _remove(town.state, added)


def _copies(state: Projection) -> list[str]:
    """Copies of the first 200 incidents (with their offers), 100 calls and 100 orders, as if just recorded."""
    for n, incident in enumerate(list(state.incidents.values())[:200]):
        copy = dataclasses.replace(incident, incident_id=f"late-{n}", assignments=[])
        for k, aid in enumerate(incident.assignments):
            offer = dataclasses.replace(state.assignments[aid], assignment_id=f"{copy.incident_id}-{k}",
                                        incident_id=copy.incident_id)  # fmt: skip
            state.assignments[offer.assignment_id] = offer
            copy.assignments.append(offer.assignment_id)
        state.incidents[copy.incident_id] = copy
    for n, call in enumerate(list(state.calls.values())[:100]):
        state.calls[f"late-{n}"] = dataclasses.replace(call, call_id=f"late-{n}")
    for n, order in enumerate(list(state.service_orders.values())[:100]):
        state.service_orders[f"late-{n}"] = dataclasses.replace(order, order_id=f"late-{n}")
    return [f"late-{n}" for n in range(200)]


def _remove(state: Projection, added: list[str]) -> None:
    """The city as it was, for the other tests of the module."""
    for key in added:
        for aid in state.incidents.pop(key).assignments:
            del state.assignments[aid]
        state.calls.pop(key, None)
        state.service_orders.pop(key, None)


def test_the_parameters_are_checked_when_the_report_is_asked_for(town: City) -> None:
    """A bad parameter is refused at the call, before any slice (the console answers 422 at once)."""
    with pytest.raises(InvalidInput) as refused:
        town.views.period_fold(EVERYWHERE, by="town")
    assert refused.value.code == "report_by"
    with pytest.raises(InvalidInput):
        town.views.period_fold(EVERYWHERE, start="2026-01-01", end="2027-01-03")  # 367 days
    with pytest.raises(ValueError):
        Pace(0)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), max_size=300), st.integers(1, 4))
def test_times_put_in_order_in_slices_are_sorted(values: list[float], size: int) -> None:
    pace, slices = Pace(size), 0
    steps = ordered(values, pace)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            assert done.value == sorted(values)
            break
        slices += 1
    assert slices >= len(values) // (size * TIMES_PER_RECORD) - 1
