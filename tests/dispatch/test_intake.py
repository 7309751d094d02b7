"""The one intake: alarms beat routine traffic whatever their source, bounded, durable before it returns."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable

import pytest

from dispatch.commands import AlarmRequest, CallEvent
from dispatch.core import Core, open_core
from dispatch.devices import DeviceReport
from dispatch.entries import NeedsManual
from dispatch.errors import JournalError, NotFound
from dispatch.intake import Intake
from tests.conftest import engine_of, eventually, on_duty, settled


def health(n: int) -> DeviceReport:
    return DeviceReport("watch", "8800000015", "health", "WATCH:bphrt", detail={"heart_rate": 60 + n})


def device_sos() -> DeviceReport:
    return DeviceReport("sia-dc09", "1234", "alarm", "CID:1101", alarm_type="sos", dedup="1234:1")


def watch_fall() -> DeviceReport:
    return DeviceReport("watch", "8800000015", "alarm", "WATCH:fall", alarm_type="fall", dedup="8800000015:1")


def idle_intake(core: Core, maxsize: int = 10_000) -> Intake:
    """An intake on the core's engine whose worker has not started: what is submitted waits in its queue."""
    return Intake(engine_of(core), core.journal, core.clock, maxsize=maxsize)


async def backlog_then(core: Core, intake: Intake, urgent: Awaitable[object]) -> list[str]:
    """Queue 200 routine health readings, then the urgent item; start the worker; the kinds written, in order."""
    head = core.journal.head_seq
    routine = [asyncio.create_task(intake.devices([health(n)])) for n in range(200)]
    await asyncio.sleep(0)  # the backlog is queued before the alarm arrives
    first = asyncio.ensure_future(urgent)
    await asyncio.sleep(0)
    assert intake.waiting() == 201
    intake.start()
    await asyncio.gather(first, *routine)
    await intake.stop()
    kinds = [e.kind for e in await core.journal.read(head, 1000)]
    assert kinds.count("elder.health") == 200
    return kinds


async def test_a_device_sos_overtakes_a_backlog_of_routine_frames(core: Core) -> None:
    intake = idle_intake(core)
    kinds = await backlog_then(core, intake, intake.devices([device_sos()]))
    assert kinds[0] == "incident.opened"  # first in the record, though it came last
    assert intake.counters == {"urgent": 1, "routine": 200}


async def test_an_sos_over_http_overtakes_them_too(core: Core) -> None:
    intake = idle_intake(core)
    request = AlarmRequest("sos", actor="operator:o", source="api", elder_id="e2")
    kinds = await backlog_then(core, intake, intake.alarm(request))
    assert kinds[0] == "incident.opened"


async def test_a_missed_hotline_sos_overtakes_them_too(core: Core) -> None:
    intake = idle_intake(core)
    event = CallEvent("ended", "call-9", "13505960002", "12349", actor="cti", alarm_type="sos")
    kinds = await backlog_then(core, intake, intake.call(event))
    assert kinds[:3] == ["call.ringing", "call.ended", "incident.opened"]


async def test_people_go_before_routine_and_after_alarms(core: Core) -> None:
    intake = idle_intake(core)
    call = asyncio.ensure_future(intake.call(CallEvent("ringing", "call-1", "13505960001", "12349", actor="cti")))
    routine = asyncio.ensure_future(intake.devices([health(1)]))
    sos = asyncio.ensure_future(intake.devices([device_sos()]))
    await asyncio.sleep(0)
    head = core.journal.head_seq
    intake.start()
    await asyncio.gather(call, routine, sos)
    await intake.stop()
    kinds = [e.kind for e in await core.journal.read(head, 100)]
    assert kinds[0] == "incident.opened" and kinds.index("call.ringing") < kinds.index("elder.health")


async def test_what_it_returns_is_durable(core: Core) -> None:
    await on_duty(core, "c_near")
    opened = await core.intake.alarm(AlarmRequest("fall", actor="operator:o", source="api", elder_id="e1"))
    assert core.journal.durable_seq == core.journal.head_seq  # over HTTP: with the first offers (rule 6)
    assert opened.incident_id in {e.incident_id for e in await core.journal.read(0, 100)}


async def test_a_device_alarm_is_acknowledged_once_opened_and_its_first_offers_follow(core: Core) -> None:
    await on_duty(core, "c_near")
    await core.intake.devices([device_sos()])
    (opening,) = [e for e in await core.journal.read(0, 100) if e.kind == "incident.opened"]
    assert opening.seq <= core.journal.durable_seq  # the ACK is owed now (the offers may or may not be durable yet)
    await settled(core)  # rule 6: ranked and offered while the opening was written, and on record after it
    assert [e.kind for e in await core.journal.read(opening.seq, 100)] == ["incident.ranked", "offer.made"]


async def test_a_refused_alarm_raises_to_its_sender_and_writes_nothing(core: Core) -> None:
    head = core.journal.head_seq
    with pytest.raises(NotFound):
        await core.intake.alarm(AlarmRequest("sos", actor="operator:o", source="api", elder_id="nobody"))
    assert core.journal.head_seq == head
    await core.intake.alarm(AlarmRequest("sos", actor="operator:o", source="api", elder_id="e1"))  # still serving


async def test_a_bounded_queue_makes_senders_wait(core: Core) -> None:
    intake = idle_intake(core, maxsize=5)
    senders = [asyncio.create_task(intake.devices([health(n)])) for n in range(8)]
    await asyncio.sleep(0)
    assert intake.waiting() == 5  # three senders are held back (a TCP transport stops reading)
    intake.start()
    await asyncio.gather(*senders)
    await intake.stop()


async def test_the_quick_path_notes_check_ins_and_writes_nothing(core: Core) -> None:
    head = core.journal.head_seq
    link = DeviceReport("sia-dc09", "1234", "checkin", "NULL", battery=77)
    assert core.intake.checkin([link], core.clock.now())
    assert engine_of(core).state.devices["1234"].battery == 77
    assert core.journal.head_seq == head
    assert core.intake.checkin(
        [DeviceReport("sia-dc09", "FFFF", "checkin", "NULL")], core.clock.now()
    )  # unknown: counted for the interval's summary (tests/dispatch/test_unknown_devices.py)
    assert core.journal.head_seq == head
    assert not core.intake.checkin([DeviceReport("sia-dc09", "FFFF", "alarm", "CID:1101", "sos")], core.clock.now())
    assert not core.intake.checkin([link, device_sos()], core.clock.now())  # anything to record: full path for all


async def test_a_journal_that_cannot_commit_acknowledges_nothing(core: Core) -> None:
    blocker = sqlite3.connect(core.settings.db_path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the file: commits fail
    journal = core.journal
    assert isinstance(journal, type(journal)) and hasattr(journal, "_writer")
    await journal._writer.execute("PRAGMA busy_timeout = 0")
    with pytest.raises(JournalError):
        await core.intake.devices([device_sos()])
    link = DeviceReport("sia-dc09", "1234", "checkin", "NULL")
    assert not core.intake.checkin([link], core.clock.now())  # a receiver that cannot record must not look healthy
    with pytest.raises(JournalError):
        await core.intake.devices([link])
    blocker.rollback()
    blocker.close()


async def test_a_full_routine_rank_never_holds_up_an_alarm(core: Core) -> None:
    """Five routine places, fifty reports waiting for room: an SOS over HTTP goes in and out first."""
    intake = idle_intake(core, maxsize=5)
    head = core.journal.head_seq
    routine = [asyncio.create_task(intake.devices([health(n)])) for n in range(50)]
    await asyncio.sleep(0)
    sos = asyncio.ensure_future(intake.alarm(AlarmRequest("sos", actor="operator:o", source="api", elder_id="e2")))
    await asyncio.sleep(0)
    intake.start()
    await asyncio.gather(sos, *routine)
    await intake.stop()
    kinds = [e.kind for e in await core.journal.read(head, 1000)]
    assert kinds[0] == "incident.opened" and kinds.count("elder.health") == 50


async def test_a_device_alarm_a_person_must_see_to_goes_before_routine(core: Core) -> None:
    intake = idle_intake(core)
    routine = [asyncio.create_task(intake.devices([health(n)])) for n in range(20)]
    inactivity = DeviceReport("sia-dc09", "1234", "alarm", "CID:1641", alarm_type="inactivity", dedup="1234:2")
    still = asyncio.ensure_future(intake.devices([inactivity]))
    await asyncio.sleep(0)
    head = core.journal.head_seq
    intake.start()
    await asyncio.gather(still, *routine)
    await intake.stop()
    (first, *_) = await core.journal.read(head, 1000)
    assert first.kind == "incident.opened"
    assert intake.counters == {"people": 1, "routine": 20}


def offers(core: Core, incident_id: str) -> list[str]:
    state = engine_of(core).state
    return [state.assignments[a].responder_id for a in state.incidents[incident_id].assignments]


async def test_alarms_waiting_together_are_opened_first_then_offered_before_routine(core: Core) -> None:
    """Rule 6: a burst is acknowledged in one commit and ranked after; what waits behind it finds it offered."""
    await on_duty(core, "c_near", "c_mid", "c_far", "c_own")
    intake = idle_intake(core)
    routine = asyncio.ensure_future(intake.devices([health(1)]))
    sos = asyncio.ensure_future(intake.devices([device_sos()]))
    fall = asyncio.ensure_future(intake.devices([watch_fall()]))
    await asyncio.sleep(0)
    head = core.journal.head_seq
    intake.start()
    await asyncio.gather(routine, sos, fall)
    await intake.stop()
    await settled(core)
    kinds = [e.kind for e in await core.journal.read(head, 100)]
    assert kinds[:2] == ["incident.opened", "incident.opened"] and kinds[-1] == "elder.health"
    assert kinds[2:-1].count("incident.ranked") == 2 and set(kinds[2:-1]) == {"incident.ranked", "offer.made"}
    assert offers(core, f"INC-{head + 1}")[0] == "c_near"  # the SOS, first in though it came second
    assert offers(core, f"INC-{head + 2}")[0] == "c_own"  # e2's own caregiver, as without rule 6


async def test_first_offers_the_journal_refused_are_made_when_it_works_again(core: Core) -> None:
    await on_duty(core, "c_near")
    engine, journal = engine_of(core), core.journal
    blocker = sqlite3.connect(core.settings.db_path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the file: the opening's commit fails
    await journal._writer.execute("PRAGMA busy_timeout = 0")  # type: ignore[attr-defined]
    await engine.device_reports([device_sos()], offers_later=True)  # as the intake's worker records them
    (incident_id,) = engine.state.incidents
    await eventually(lambda: journal.failure is not None, "the failed commit")
    with pytest.raises(JournalError):
        await engine.offer_opened()
    assert engine.waiting_offers == 1 and offers(core, incident_id) == []
    blocker.rollback()
    blocker.close()
    journal.retry()
    await eventually(lambda: offers(core, incident_id) == ["c_near"], "offered once the journal works")
    await settled(core)
    assert [e.kind for e in await journal.read(0, 100)][-3:] == ["incident.opened", "incident.ranked", "offer.made"]


async def test_an_incident_opened_but_not_yet_offered_when_the_server_stopped_is_offered_at_the_start(
    core: Core,
) -> None:
    await on_duty(core, "c_near")
    engine = engine_of(core)
    await engine.device_reports([device_sos()], offers_later=True)
    (incident_id,) = engine.state.incidents
    await core.journal.durable(core.journal.head_seq)  # the opening is on record, the device acknowledged
    settings, clock = core.settings, core.clock
    await core.close()  # stopped before the worker made the offers
    reopened = await open_core(settings, clock)
    try:
        assert offers(reopened, incident_id) == ["c_near"]
    finally:
        await reopened.close()
    core_again = await open_core(settings, clock)  # the fixture closes whatever it yielded; reopen for it
    await core_again.close()
    core.lock.acquire()  # keep the fixture's close() balanced


async def test_an_alarm_over_http_waiting_behind_a_device_sos_finds_it_offered_first(core: Core) -> None:
    """Rule 6: only device alarms are opened ahead of their offers; an HTTP alarm or a call is taken after them."""
    await on_duty(core, "c_near", "c_mid")
    intake = idle_intake(core)
    sos = asyncio.ensure_future(intake.devices([device_sos()]))
    http = asyncio.ensure_future(intake.alarm(AlarmRequest("sos", actor="operator:o", source="api", elder_id="e2")))
    await asyncio.sleep(0)
    head = core.journal.head_seq
    intake.start()
    await asyncio.gather(sos, http)
    await intake.stop()
    await settled(core)
    entries = await core.journal.read(head, 100)
    openings = [e.seq for e in entries if e.kind == "incident.opened"]
    first_offer = next(e for e in entries if e.kind == "offer.made")
    assert openings[0] < first_offer.seq < openings[1] and first_offer.incident_id == f"INC-{openings[0]}"
    assert offers(core, f"INC-{openings[0]}")[0] == "c_near"  # the nearest went to the device's, which came first


async def test_a_person_who_saw_to_it_before_the_offers_is_not_second_guessed(core: Core) -> None:
    await on_duty(core, "c_near", "c_mid")
    engine = engine_of(core)
    await engine.device_reports([device_sos()], offers_later=True)
    (incident_id,) = engine.state.incidents
    await engine.dispatch(incident_id, "c_mid", actor="operator:o")  # on the screen at once, sent by hand
    await engine.offer_opened()
    assert offers(core, incident_id) == ["c_mid"] and engine.waiting_offers == 0


async def test_offers_that_fail_flag_the_incident_and_the_worker_goes_on(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    await on_duty(core, "c_near")
    engine = engine_of(core)

    async def broken(incident: object, *, again: bool = False) -> None:
        raise RuntimeError("a bug in the ranking")

    monkeypatch.setattr(engine, "_dispatch_next", broken)
    await core.intake.devices([device_sos()])  # acknowledged: the opening is durable
    await eventually(lambda: not engine.waiting_offers, "the offers tried")
    await settled(core)
    flagged = [e.fact for e in await core.journal.read(0, 100) if isinstance(e.fact, NeedsManual)]
    assert [(f.reason, f.waiting) for f in flagged] == [("automatic offers failed: RuntimeError", True)]
    (incident,) = engine.state.incidents.values()
    assert offers(core, incident.incident_id) == ["c_near"]  # waiting in the backlog, it met the free caregiver

    async def worse() -> None:
        raise RuntimeError("a bug after the offers")

    monkeypatch.setattr(engine, "offer_opened", worse)
    watch = DeviceReport("watch", "8800000015", "alarm", "WATCH:fall", alarm_type="fall", dedup="8800000015:9")
    await core.intake.devices([watch])  # the worker survived the first failure; this one's offers fail too
    await core.intake.devices([health(1)])  # and it still serves the next item
    assert core.intake.running
