"""Hotline calls as a PBX reports them: queues, answers at extensions, transfers, hang-up causes, PBX times,
click-to-call; repeated, late and out-of-order events; the records, the supervisor's figures and the period
report. A real SQLite journal and a manual clock (tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.clock import ManualClock
from dispatch.commands import CallEvent
from dispatch.core import Core
from dispatch.entries import CallAnswered, CallDialed, CallEnded, CallQueued, CallRinging, CallTransferred
from dispatch.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from dispatch.journal import Entry
from dispatch.machines import CALL_TRANSITIONS, CallMove, CallState, call_allows, call_next
from dispatch.scopes import ALL
from dispatch.state import Call, pbx_time
from tests.conftest import engine_of

E1_PHONE = "13505960001"  # e1's own number (tests/conftest.py)
PBX = "service:pbx"


async def event(core: Core, kind: str, call_id: str, **fields: Any) -> Call:
    """One PBX event through the intake, as the AMI adapter hands it over; the call as it stands after."""
    fields.setdefault("caller", E1_PHONE)
    fields.setdefault("line", "12349")
    outcome = await core.intake.call(CallEvent(kind, call_id=call_id, actor=PBX, **fields))  # type: ignore[arg-type]
    return engine_of(core).state.calls[outcome.call_id]


async def kinds(core: Core, after: int) -> list[str]:
    return [e.kind for e in await core.journal.read(after, 10_000)]


def view(core: Core, call_id: str) -> dict[str, Any]:
    return core.views.call(call_id, ALL)


# -- the table ------------------------------------------------------------------------------------------------


def test_the_call_table_only_moves_forward() -> None:
    assert call_next(CallState.RINGING, CallMove.QUEUE) is CallState.QUEUED
    assert call_next(CallState.QUEUED, CallMove.ANSWER) is CallState.ANSWERED
    assert call_next(CallState.ANSWERED, CallMove.TRANSFER) is CallState.ANSWERED
    assert not call_allows(CallState.ANSWERED, CallMove.QUEUE)
    assert not call_allows(CallState.QUEUED, CallMove.QUEUE)
    assert not any(source is CallState.ENDED for source, _ in CALL_TRANSITIONS)  # ended is final
    with pytest.raises(IllegalTransition):
        call_next(CallState.ENDED, CallMove.ANSWER)


def test_a_pbx_time_is_taken_only_when_sane() -> None:
    ts = 1_780_000_000.0
    assert pbx_time(None, ts) == ts
    assert pbx_time(ts - 12, ts) == ts - 12  # the PBX saw it 12 s before it reached us
    assert pbx_time(ts + 3, ts) == ts + 3  # clocks a little apart
    assert pbx_time(ts + 60, ts) == ts  # from the future: not believed
    assert pbx_time(ts - 7200, ts) == ts  # two hours old: a clock gone wrong, not a late event


# -- inbound flows --------------------------------------------------------------------------------------------


async def test_answered_through_the_queue_at_an_operators_extension(core: Core, clock: ManualClock) -> None:
    start = core.journal.head_seq
    rang = clock.now()
    await event(core, "ringing", "q-1")
    clock.advance(2)
    await event(core, "queued", "q-1", queue="hotline")
    clock.advance(20)
    call = await event(core, "answered", "q-1", operator="op1", extension="8101")
    assert call.state == "answered" and call.answered_by == "op1" and call.extension == "8101"
    record = view(core, "q-1")
    assert record["outcome"] == "talking" and record["queue"] == "hotline" and record["queued_at"] == rang + 2
    assert record["wait_s"] == 22.0 and record["direction"] == "in"
    clock.advance(90)
    await event(core, "ended", "q-1", cause="16 Normal Clearing")
    record = view(core, "q-1")
    assert record["outcome"] == "answered" and record["cause"] == "16 Normal Clearing"
    assert record["incident_id"] is None  # answered: it waits for the operator's word, no call-back
    assert record["open"]  # answered and not yet classified
    assert await kinds(core, start) == ["call.ringing", "call.queued", "call.answered", "call.ended"]


async def test_abandoned_in_the_queue_opens_the_call_back(core: Core, clock: ManualClock) -> None:
    await event(core, "ringing", "a-1")
    await event(core, "queued", "a-1", queue="hotline")
    assert (await core.journal.read(core.journal.head_seq - 1, 1))[0].fact == CallQueued("a-1", "hotline")
    clock.advance(75)
    call = await event(core, "ended", "a-1", cause="127 Interworking, unspecified")
    assert view(core, "a-1")["outcome"] == "abandoned" and view(core, "a-1")["wait_s"] is None
    incident = engine_of(core).state.incidents[call.incident_id or ""]
    assert incident.elder_id == "e1" and incident.notes[0].text.startswith("missed hotline call")


async def test_missed_ringing_never_queued_opens_the_call_back(core: Core) -> None:
    await event(core, "ringing", "m-1")
    call = await event(core, "ended", "m-1")
    assert view(core, "m-1")["outcome"] == "missed" and call.incident_id is not None
    head = core.journal.head_seq
    await event(core, "ended", "m-1")
    assert core.journal.head_seq == head  # a repeated hang-up writes nothing, opens nothing more


async def test_a_transfer_hands_the_call_to_the_operator_it_went_to(core: Core, clock: ManualClock) -> None:
    await event(core, "ringing", "t-1")
    clock.advance(5)
    await event(core, "answered", "t-1", operator="op1", extension="8101")
    clock.advance(30)
    call = await event(core, "transferred", "t-1", operator="op2", extension="8102")
    assert call.answered_by == "op1" and call.handler == "op2"
    assert core.views.call_placed(call).owner == "operator:op2"  # scopes rule 3: the one who has it now
    record = view(core, "t-1")
    assert record["transfers"] == [{"extension": "8102", "operator": "op2", "at": clock.now()}]
    assert record["extension"] == "8101" and record["wait_s"] == 5.0 and record["outcome"] == "talking"
    # the same transfer reported again changes nothing; answered at yet another extension is a transfer
    head = core.journal.head_seq
    await event(core, "answered", "t-1", operator="op2", extension="8102")
    await event(core, "transferred", "t-1", operator="op2", extension="8102")  # another node's report of it
    assert core.journal.head_seq == head
    await event(core, "answered", "t-1", operator="op3", extension="8103")
    assert [t.extension for t in call.transfers] == ["8102", "8103"] and call.handler == "op3"
    await event(core, "ended", "t-1")
    assert view(core, "t-1")["outcome"] == "transferred" and call.incident_id is None


async def test_an_extension_that_is_nobodys_answers_as_the_pbx(core: Core) -> None:
    await event(core, "ringing", "x-1")
    call = await event(core, "answered", "x-1", extension="8199")
    assert call.answered_by == PBX and view(core, "x-1")["extension"] == "8199"


# -- out of order, repeated and late ------------------------------------------------------------------------


async def test_out_of_order_and_repeated_events_change_nothing(core: Core) -> None:
    await event(core, "ringing", "o-1")
    await event(core, "answered", "o-1", operator="op1", extension="8101")
    head = core.journal.head_seq
    await event(core, "queued", "o-1", queue="hotline")  # late: the caller is past the queue
    await event(core, "ringing", "o-1")
    await event(core, "answered", "o-1", operator="op1", extension="8101")
    assert core.journal.head_seq == head
    await event(core, "ended", "o-1")
    head = core.journal.head_seq
    for late in ("queued", "answered", "transferred", "ended"):
        await event(core, late, "o-1", extension="8102")
    assert core.journal.head_seq == head  # ended is final
    assert view(core, "o-1")["outcome"] == "answered" and view(core, "o-1")["queue"] == ""


async def test_a_first_report_that_is_not_ringing_starts_the_call(core: Core) -> None:
    """After a reconnect the adapter may first hear of a call when it is answered, or transferred."""
    start = core.journal.head_seq
    call = await event(core, "transferred", "r-1", operator="op2", extension="8102", at=core.clock.now() - 20)
    facts = [e.fact for e in await core.journal.read(start, 10)]
    assert [type(f) for f in facts] == [CallRinging, CallTransferred]
    assert facts[1] == CallTransferred("r-1", "8102", "op2", core.clock.now() - 20)
    assert call.state == "answered" and call.answered_by == "op2" and call.elder_id == "e1"


async def test_late_pbx_times_never_make_a_wait_negative_or_huge(core: Core, clock: ManualClock) -> None:
    now = clock.now()
    await event(core, "ringing", "l-1", at=now - 30)  # rebuilt after a reconnect: it rang half a minute ago
    await event(core, "answered", "l-1", operator="op1", extension="8101", at=now - 12)
    assert view(core, "l-1")["started_at"] == now - 30 and view(core, "l-1")["wait_s"] == 18.0
    await event(core, "ringing", "l-2", at=now)
    await event(core, "answered", "l-2", operator="op1", extension="8101", at=now - 50)  # before it rang
    assert view(core, "l-2")["wait_s"] == 0.0
    await event(core, "ringing", "l-3", at=now - 86_400)  # a day old: the PBX's clock is wrong
    clock.advance(4)
    await event(core, "answered", "l-3", operator="op1", extension="8101", at=now + 3600)  # from the future
    assert view(core, "l-3")["started_at"] == now and view(core, "l-3")["wait_s"] == 4.0


async def test_old_call_entries_still_read(core: Core) -> None:
    """Bodies written before the PBX fields decode with their defaults and fold as before."""
    from dispatch.entries import decode

    assert decode("call.ringing", 1, '{"call_id":"c","caller":"1","line":"2"}') == CallRinging("c", "1", "2")
    assert decode("call.answered", 1, '{"call_id":"c"}') == CallAnswered("c")
    assert decode("call.ended", 1, '{"call_id":"c"}') == CallEnded("c")


async def test_the_projection_replayed_from_the_journal_agrees(core: Core, clock: ManualClock) -> None:
    await event(core, "ringing", "p-1")
    await event(core, "queued", "p-1", queue="hotline")
    clock.advance(8)
    await event(core, "answered", "p-1", operator="op1", extension="8101")
    await event(core, "transferred", "p-1", operator="op2", extension="8102")
    await event(core, "ended", "p-1", cause="16 Normal Clearing")
    call_id = await core.engine.dial("13505960002", actor="operator:op1", extension="8101", elder_id="e2")
    await core.engine.dial_failed(call_id, "Originate failed", actor="operator:op1")
    entries: list[Entry] = await core.journal.read(0, 100_000)
    replayed = type(engine_of(core).state)(position_stale_s=core.settings.position_stale_s)
    for entry in entries:
        replayed.apply(entry)
    for cid in ("p-1", call_id):
        assert replayed.calls[cid] == engine_of(core).state.calls[cid]


# -- click-to-call ---------------------------------------------------------------------------------------------


async def test_outbound_answered(core: Core, clock: ManualClock) -> None:
    await event(core, "ringing", "s-1")
    await event(core, "ended", "s-1")  # missed: a call back is due
    start = core.journal.head_seq
    call_id = await core.engine.dial("135 0596-0001", actor="operator:op1", extension="8101", about_call="s-1")
    (dialed,) = [e.fact for e in await core.journal.read(start, 10)]
    assert dialed == CallDialed(call_id, "13505960001", "op1", "8101", None, "s-1", None)
    record = view(core, call_id)
    assert record["direction"] == "out" and record["caller"] == "13505960001" and record["elder_id"] == "e1"
    assert record["outcome"] == "ringing" and record["about_call"] == "s-1" and record["dialed_by"] == "op1"
    assert record["open"]
    await event(core, "ringing", call_id, caller="13505960001", direction="out")  # the far side rings
    clock.advance(9)
    await event(core, "answered", call_id, caller="13505960001", direction="out", operator="op1", extension="8101")
    assert view(core, call_id)["outcome"] == "talking" and view(core, call_id)["wait_s"] is None
    assert core.views.kpis(ALL)["calls_unclassified"] == 0  # an operator's own call waits for no one's word
    call = await event(core, "ended", call_id, caller="13505960001", direction="out", cause="16 Normal Clearing")
    assert view(core, call_id)["outcome"] == "answered" and not view(core, call_id)["open"]
    assert call.incident_id is None  # an outbound call never opens a call back


async def test_outbound_no_answer_opens_nothing(core: Core) -> None:
    call_id = await core.engine.dial("+8613505960002", actor="operator:op1", extension="8101", elder_id="e2")
    await event(core, "ringing", call_id, caller="+8613505960002", direction="out")
    call = await event(core, "ended", call_id, caller="+8613505960002", direction="out", cause="19 No answer")
    assert view(core, call_id)["outcome"] == "no_answer" and call.incident_id is None
    assert not engine_of(core).state.incidents


async def test_outbound_the_pbx_refused(core: Core) -> None:
    call_id = await core.engine.dial("13505960002", actor="supervisor:boss", extension="8109")
    await core.engine.dial_failed(call_id, "Extension 8109 does not exist", actor="supervisor:boss")
    record = view(core, call_id)
    assert record["outcome"] == "failed" and record["cause"] == "originate failed: Extension 8109 does not exist"
    head = core.journal.head_seq
    await core.engine.dial_failed(call_id, "again", actor="supervisor:boss")
    await event(core, "answered", call_id, caller="13505960002", direction="out")
    assert core.journal.head_seq == head  # ended is final
    with pytest.raises(NotFound):
        await core.engine.dial_failed("nope", "x", actor="supervisor:boss")


async def test_an_outbound_call_the_pbx_reports_unannounced_is_recorded_out(core: Core) -> None:
    call = await event(core, "ringing", "desk-1", caller="13505960002", direction="out")
    await event(core, "ended", "desk-1", caller="13505960002", direction="out")
    assert call.direction == "out" and view(core, "desk-1")["outcome"] == "no_answer"
    assert call.incident_id is None


@pytest.mark.parametrize("number", ["12", "1" * 33, "13a05960001", "++8613505960001", "", "+", "1 2"])
async def test_a_bad_number_is_refused_and_writes_nothing(core: Core, number: str) -> None:
    head = core.journal.head_seq
    with pytest.raises(InvalidInput) as refused:
        await core.engine.dial(number, actor="operator:op1", extension="8101")
    assert refused.value.code == "bad_number"
    assert core.journal.head_seq == head


async def test_dial_checks_what_it_is_about(core: Core) -> None:
    head = core.journal.head_seq
    with pytest.raises(Conflict) as none:
        await core.engine.dial("13505960002", actor="operator:op1", extension="")
    assert none.value.code == "no_extension"
    with pytest.raises(NotFound):
        await core.engine.dial("13505960002", actor="operator:op1", extension="8101", elder_id="nobody")
    with pytest.raises(NotFound):
        await core.engine.dial("13505960002", actor="operator:op1", extension="8101", about_call="nope")
    with pytest.raises(NotFound):
        await core.engine.dial("13505960002", actor="operator:op1", extension="8101", incident_id="INC-0")
    assert core.journal.head_seq == head


# -- figures ---------------------------------------------------------------------------------------------------


async def test_the_supervisors_calls_today(core: Core, clock: ManualClock) -> None:
    core.settings.answer_target_s = 30.0
    for call_id, wait in (("f-1", 10.0), ("f-2", 40.0), ("f-3", 20.0)):
        await event(core, "ringing", call_id)
        clock.advance(wait)
        await event(core, "answered", call_id, operator="op1", extension="8101")
    await event(core, "transferred", "f-3", operator="op2", extension="8102")
    await event(core, "ended", "f-3")
    await event(core, "ringing", "f-4")
    await event(core, "queued", "f-4", queue="hotline")
    await event(core, "ended", "f-4")
    await event(core, "ringing", "f-5")
    await event(core, "ended", "f-5")
    await event(core, "ringing", "f-6", drill=True)  # a drill's: not counted
    await core.engine.dial("13505960002", actor="operator:op1", extension="8101")
    figures = core.views.kpis(ALL)["calls_today"]
    assert figures == {
        "offered": 5, "answered": 3, "answered_within_target": 2, "target_s": 30.0, "answer_median_s": 20.0,
        "answer_p90_s": 40.0, "abandoned": 1, "missed": 1, "transferred": 1, "outbound": 1,
    }  # fmt: skip
    assert core.views.kpis(ALL, include_drill=True)["calls_today"]["offered"] == 6
    clock.advance(86_400)  # the next day: nothing yet
    assert core.views.kpis(ALL)["calls_today"]["offered"] == 0


async def test_the_period_report_counts_calls_by_how_they_ended(core: Core, clock: ManualClock) -> None:
    await event(core, "ringing", "r-1")
    clock.advance(70)
    await event(core, "answered", "r-1", operator="op1", extension="8101")
    await event(core, "ringing", "r-2")
    clock.advance(10)
    await event(core, "answered", "r-2", operator="op1", extension="8101")
    await event(core, "transferred", "r-2", operator="op2", extension="8102")
    await event(core, "ended", "r-2")
    await event(core, "ringing", "r-3")
    await event(core, "queued", "r-3", queue="hotline")
    await event(core, "ended", "r-3")
    await event(core, "ringing", "r-4")
    await event(core, "ended", "r-4")
    call_id = await core.engine.dial("13505960002", actor="operator:op1", extension="8101")
    await core.engine.dial_failed(call_id, "busy", actor="operator:op1")
    totals = core.views.period_report(ALL, by="district")["totals"]
    picked = {key: totals[key] for key in (
        "calls", "calls_offered", "calls_answered", "calls_answered_within_60s", "calls_within_60s",
        "calls_abandoned", "calls_missed", "calls_transferred", "calls_outbound",
    )}  # fmt: skip
    assert picked == {
        "calls": 4, "calls_offered": 4, "calls_answered": 2, "calls_answered_within_60s": 1, "calls_within_60s": 1,
        "calls_abandoned": 1, "calls_missed": 1, "calls_transferred": 1, "calls_outbound": 1,
    }  # fmt: skip
    assert totals["call_answer_s"]["n"] == 2
