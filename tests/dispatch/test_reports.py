"""The supervisor's figures: answer times against 60 s and 180 s, drills left out."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dispatch.clock import ManualClock
from dispatch.core import Core
from dispatch.reports import escalations, kpis
from dispatch.scopes import Reach
from tests.conftest import engine_of, on_duty, raise_alarm


async def test_kpis_count_answers_and_leave_drills_out(core: Core, clock: ManualClock) -> None:
    clock.set(1_780_000_000.0)  # 2026-05-28 12:26 in Asia/Shanghai: one day, no midnight in between
    await on_duty(core, "c_near", "c_mid")
    quick, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    slow, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e2")
    drill, attached = await raise_alarm(core, "fall", actor="drill", source="api", elder_id="e1", drill=True)
    assert not attached and drill is not quick  # a drill never joins a real incident
    clock.advance(30)
    await core.engine.acknowledge(quick.incident_id, actor="operator:o")
    await core.engine.acknowledge(drill.incident_id, actor="operator:o")
    clock.advance(100)
    await engine_of(core).tick()  # the slow one passes its 60 s answer target
    await core.engine.acknowledge(slow.incident_id, actor="operator:o")
    figures = kpis(engine_of(core).state, clock.now(), "Asia/Shanghai")
    assert figures["alarms_today"] == 2
    assert (figures["answered_within_60s"], figures["answered_within_180s"]) == (1, 2)
    assert figures["responders_on_duty"] == 2
    with_drill = kpis(engine_of(core).state, clock.now(), "Asia/Shanghai", include_drill=True)
    assert (with_drill["alarms_today"], with_drill["answered_within_60s"]) == (3, 2)


async def test_escalations_waiting(core: Core, clock: ManualClock) -> None:
    incident, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    clock.advance(61)
    await engine_of(core).tick()
    assert [i.incident_id for i in escalations(engine_of(core).state)] == [incident.incident_id]
    assert kpis(engine_of(core).state, clock.now(), "Asia/Shanghai")["escalations_waiting"] == 1
    await core.engine.acknowledge(incident.incident_id, actor="supervisor:s")
    assert escalations(engine_of(core).state) == []


async def test_the_median_answer_time_is_the_period_reports_for_the_same_day(core: Core, clock: ManualClock) -> None:
    """Two answers, after 10 and 30 s: the supervisor's median is 10 s, the nearest rank (the 1st of 2) that the
    period report takes, not 30 s beside a report of the same day saying 10."""
    clock.set(1_780_000_000.0)  # 2026-05-28 12:26 in Asia/Shanghai
    first, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e1")
    second, _ = await raise_alarm(core, "sos", actor="device:d", source="api", elder_id="e2")
    clock.advance(10)
    await core.engine.acknowledge(first.incident_id, actor="operator:o")
    clock.advance(20)
    await core.engine.acknowledge(second.incident_id, actor="operator:o")
    figures = kpis(engine_of(core).state, clock.now(), "Asia/Shanghai")
    today = datetime.fromtimestamp(clock.now(), ZoneInfo("Asia/Shanghai")).date()
    day = core.views.period_report(
        Reach(("*",)), start=today.isoformat(), end=(today + timedelta(days=1)).isoformat(), by="community"
    )
    assert figures["answer_median_s"] == day["totals"]["answer_s"]["median"] == 10.0
