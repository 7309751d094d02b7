"""The server's metrics and readiness (console.metrics) on a real core and a real gateway, on a manual clock.

The scrape a running process answers is tests/anxin/test_metrics.py's; here the figures are checked one by one:
alarms by source and type with drills apart, escalations, the oldest unacknowledged alarm's age on the clock, the
journal's commits, and readiness naming a timer loop that does not run and a listener that stopped.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from anxin.server import running
from console.live import CaregiverHub, ConsoleHub
from console.metrics import Telemetry
from dispatch.clock import ManualClock
from dispatch.core import Core
from tests.conftest import elder as make_elder
from tests.conftest import engine_of, raise_alarm, seed, settings_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(telemetry: Telemetry) -> Samples:
    text = telemetry.exposition().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def watched(core: Core) -> Telemetry:
    telemetry = Telemetry()
    telemetry.watch(core, ConsoleHub(core.bus, core.views, core.clock), CaregiverHub(core.bus, core.views))
    return telemetry


async def test_alarms_are_counted_by_source_and_type_with_drills_apart(core: Core, clock: ManualClock) -> None:
    telemetry = watched(core)
    first, _ = await raise_alarm(core, "sos", actor="partner", source="api", elder_id="e1")
    await raise_alarm(core, "sos", actor="partner", source="api", elder_id="e1")  # joins the open incident
    await raise_alarm(core, "fall", actor="drill", source="api", elder_id="e2", drill=True)
    clock.advance(45)
    seen = samples(telemetry)
    assert seen[("anxin_alarms_total", frozenset({("source", "api"), ("type", "sos")}))] == 2
    assert seen[("anxin_drill_alarms_total", frozenset({("source", "api"), ("type", "fall")}))] == 1
    assert ("anxin_alarms_total", frozenset({("source", "api"), ("type", "fall")})) not in seen
    open_now = {dict(labels)["state"]: v for (name, labels), v in seen.items() if name == "anxin_open_incidents"}
    assert sum(open_now.values()) == 1 and open_now[first.state.value] == 1  # the drill's is counted apart
    assert seen[("anxin_drill_open_incidents", frozenset())] == 1
    assert seen[("anxin_incident_unacknowledged_oldest_seconds", frozenset())] == 45.0
    assert seen[("anxin_incidents_past_answer_target", frozenset())] == 0
    assert seen[("anxin_journal_commit_seconds_count", frozenset())] >= 3
    assert seen[("anxin_journal_pending_entries", frozenset())] == 0
    assert seen[("anxin_intake_items_total", frozenset({("rank", "urgent")}))] == 3
    assert seen[("anxin_intake_waiting_offers", frozenset())] == 0

    clock.advance(20)  # past the 60 s answer target: the supervisors are alerted
    await engine_of(core).tick()
    await core.journal.durable(core.journal.head_seq)
    seen = samples(telemetry)
    assert seen[("anxin_escalations_total", frozenset({("to", "supervisors")}))] == 1
    assert seen[("anxin_escalations_waiting", frozenset())] == 1
    assert seen[("anxin_incidents_past_answer_target", frozenset())] == 1
    await core.engine.acknowledge(first.incident_id, actor="operator:o")
    seen = samples(telemetry)
    assert seen[("anxin_incidents_unacknowledged", frozenset())] == 0
    assert seen[("anxin_incident_unacknowledged_oldest_seconds", frozenset())] == 0


async def test_two_servers_in_one_process_keep_their_figures_apart(core: Core) -> None:
    one, other = watched(core), Telemetry()
    await raise_alarm(core, "sos", actor="partner", source="api", elder_id="e1")
    assert ("anxin_alarms_total", frozenset({("source", "api"), ("type", "sos")})) in samples(one)
    assert not any(name == "anxin_alarms_total" for name, _ in samples(other))


async def test_readiness_names_a_timer_loop_that_does_not_run(core: Core) -> None:
    """The core fixture leaves the timers to the test (engine.tick): a server like that is not ready."""
    checks = {check.name: check for check in watched(core).readiness()}
    assert checks["journal"].ok and checks["journal_progress"].ok and checks["storage"].ok
    assert not checks["timers"].ok and checks["timers"].detail == "the timer loop is not running"
    assert Telemetry().readiness()[0].name == "started"  # before the lifespan hands the core in: not ready


async def test_readiness_follows_the_listeners_and_the_timers_of_a_running_server(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data", device_ports={"dc09": 0, "watch": None, "gt06": None})
    await seed(settings, elders=[make_elder("e1")])
    telemetry = Telemetry()
    async with running(settings, ManualClock(), telemetry) as server:
        telemetry.watch(server.core, ConsoleHub(server.core.bus, server.core.views, server.core.clock),
                        CaregiverHub(server.core.bus, server.core.views))  # fmt: skip
        checks = {check.name: check for check in telemetry.readiness()}
        assert all(check.ok for check in checks.values()), checks
        assert checks["listeners"].detail == "bound: sia-dc09"
        seen = samples(telemetry)
        assert seen[("anxin_device_listener_up", frozenset({("protocol", "sia-dc09")}))] == 1
        assert seen[("anxin_ready", frozenset())] == 1

        await server.gateway.stop()  # the listener is gone: devices of that protocol cannot reach this server
        checks = {check.name: check for check in telemetry.readiness()}
        assert not checks["listeners"].ok and checks["listeners"].detail == "not bound: sia-dc09"
        assert samples(telemetry)[("anxin_ready_check", frozenset({("check", "listeners")}))] == 0

        await server.core.intake.stop()  # the worker that records queued alarms is gone: alarms would wait
        checks = {check.name: check for check in telemetry.readiness()}
        assert not checks["intake"].ok and checks["intake"].detail.startswith("the intake's worker is not running")
