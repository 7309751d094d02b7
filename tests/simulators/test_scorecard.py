"""Scoring without a server: matching alarms to journal entries, percentiles with incidents still waiting,
scenario files that say what they mean, and the operators' choice of what to do next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulators import scenario as scenarios
from simulators.callers import CallRecord
from simulators.devices import AlarmRecord
from simulators.report import _decisions, dumps
from simulators.scenario import ScenarioError, load, parse_duration
from simulators.scorecard import incident_clocks, match_alarms, match_calls, percentile, timing
from simulators.scripts import CallScript, Switchboard


def entry(
    seq: int, ts: float, kind: str, payload: dict[str, Any], *, actor: str = "system", **fields: Any
) -> dict[str, Any]:
    return {"seq": seq, "ts": ts, "kind": kind, "actor": actor, "incident_id": fields.get("incident_id"),
            "drill": fields.get("drill", True), "payload": payload}  # fmt: skip


def opened(seq: int, ts: float, device: str, alarm_type: str, *, technical: bool = False) -> dict[str, Any]:
    payload = {"incident_id": f"INC-{seq}", "alarm_type": alarm_type, "source": "device", "technical": technical,
               "device_id": device}  # fmt: skip
    return entry(seq, ts, "incident.opened", payload, actor=f"device:{device}")


def alarm(number: int, device: str, alarm_type: str, sends: list[float], acked: float | None) -> AlarmRecord:
    return AlarmRecord(number, device, "watch", "tcp", alarm_type, alarm_type, "AL", sends, acked)


def test_an_acknowledged_alarm_without_its_entry_is_lost() -> None:
    entries = [opened(1, 10.2, "d1", "sos"), opened(2, 30.1, "d2", "fall")]
    alarms = [
        alarm(1, "d1", "sos", [10.0], 10.3),  # recorded
        alarm(2, "d2", "fall", [20.0], 20.4),  # the only fall entry is 10 s after its ACK: lost
        alarm(3, "d1", "sos", [40.0, 45.0], None),  # never acknowledged: not lost, unacknowledged
    ]
    matching = match_alarms(alarms, entries, incident_clocks(entries))
    assert [a.number for a in matching.recorded] == [1]
    assert [a.number for a in matching.lost] == [2]
    assert [a.number for a in matching.unacknowledged] == [3]
    assert matching.unused_entries == 1


def test_one_entry_vouches_for_one_alarm_and_open_conditions_count() -> None:
    entries = [
        opened(1, 10.1, "d1", "sos"),
        opened(2, 11.1, "d3", "mains_loss", technical=True),
        entry(3, 11.5, "elder.position", {}, actor="device:d3", drill=False),
    ]
    alarms = [
        alarm(1, "d1", "sos", [10.0], 10.2),
        alarm(2, "d1", "sos", [10.05], 10.3),  # a second press in the same instant, no entry of its own
        alarm(3, "d3", "mains_loss", [50.0], 50.1),  # the condition is still open: nothing new is written
    ]
    matching = match_alarms(alarms, entries, incident_clocks(entries))
    assert [a.number for a in matching.recorded] == [1]
    assert [a.number for a in matching.lost] == [2]
    assert [a.number for a in matching.already_open] == [3]
    assert matching.unmarked == 1


def test_a_condition_open_in_its_streets_group_counts_until_the_device_left_it() -> None:
    group = {"device_id": "d4", "alarm_type": "mains_loss", "source": "device", "priority": 4,
             "priority_reasons": []}  # fmt: skip
    entries = [
        opened(1, 11.1, "d3", "mains_loss", technical=True),  # the street's group, opened by d3
        entry(2, 12.0, "incident.alarm_attached", group, actor="device:d4", incident_id="INC-1"),
        entry(3, 30.0, "incident.device_restored", {"device_id": "d4", "outcome": "restore"}, incident_id="INC-1"),
    ]
    alarms = [
        alarm(1, "d4", "mains_loss", [11.9], 12.1),  # recorded by its attachment
        alarm(2, "d4", "mains_loss", [20.0], 20.1),  # still in the group: nothing new is written
        alarm(3, "d4", "mains_loss", [40.0], 40.1),  # it left the group at 30 s: this one needed an entry
    ]
    matching = match_alarms(alarms, entries, incident_clocks(entries))
    assert [a.number for a in matching.recorded] == [1]
    assert [a.number for a in matching.already_open] == [2]
    assert [a.number for a in matching.lost] == [3]


def test_incident_clocks_follow_the_journal() -> None:
    entries = [
        opened(1, 100.0, "d1", "sos"),
        entry(2, 100.5, "offer.made", {"by": "auto"}, incident_id="INC-1"),
        entry(3, 101.0, "incident.acknowledged", {}, incident_id="INC-1"),
        entry(4, 103.0, "offer.accepted", {}, incident_id="INC-1"),
        entry(5, 110.0, "assignment.status", {"status": "on_scene"}, incident_id="INC-1"),
        entry(6, 120.0, "assignment.status", {"status": "on_scene"}, incident_id="INC-1"),
        entry(7, 130.0, "offer.made", {"by": "operator"}, incident_id="INC-9"),  # not a drill incident we saw
    ]
    clock = incident_clocks(entries)["INC-1"]
    assert (clock.offer, clock.acknowledged, clock.accepted, clock.on_scene) == (100.5, 101.0, 103.0, 110.0)
    assert clock.decided and clock.operator_offers == 0


def call(board: Switchboard, call_id: str, script: CallScript, *, answered: bool = True) -> CallRecord:
    return CallRecord(call_id, "13900000000", 0.0, board.put(call_id, script), answered=answered)


def hotline_incident(seq: int, ts: float, call_id: str, location: str) -> dict[str, Any]:
    payload = {"incident_id": f"INC-{seq}", "alarm_type": "fall", "source": "hotline", "location": location,
               "call_id": call_id}  # fmt: skip
    return entry(seq, ts, "incident.opened", payload, actor="operator:admin")


def classified(seq: int, ts: float, call_id: str, kind: str, incident_id: str | None = None) -> dict[str, Any]:
    return entry(seq, ts, "call.classified", {"call_id": call_id, "kind": kind, "incident_id": incident_id})


def test_calls_are_judged_by_what_the_journal_says_became_of_them() -> None:
    board = Switchboard()
    said = ("蓝田社区12号楼",)
    stranger = CallScript("emergency", "蓝田社区12号楼楼下有位老人摔倒了", False, "fall", "e1", None, said)
    lost = CallScript("emergency", "有位老人摔倒了", False, "fall", "e2", None, ("不存在的地方",))
    calls = [
        call(board, "k1", stranger),
        call(board, "k2", CallScript("consultation", "想问一下高龄补贴怎么申请", True, elder_id="e3")),
        call(board, "k3", CallScript("silent", "", True, elder_id="e4")),
        call(board, "k4", lost),
        call(board, "k5", CallScript("service", "想预约助浴", True, elder_id="e5"), answered=False),
    ]
    calls[0].card.placed_by = "address"
    entries = [
        *(entry(n, 10.0 + n, "call.answered", {"call_id": f"k{n}"}) for n in range(1, 5)),
        hotline_incident(5, 20.0, "k1", "address"),
        classified(6, 20.0, "k1", "emergency", "INC-5"),
        entry(7, 20.1, "offer.made", {"by": "auto"}, incident_id="INC-5"),
        classified(8, 21.0, "k2", "consultation"),
        classified(9, 22.0, "k3", "silent"),
        hotline_incident(10, 23.0, "k4", "unknown"),
        classified(11, 23.0, "k4", "emergency", "INC-10"),
        entry(12, 30.0, "call.called_back", {"call_id": "k3", "outcome": "已回拨"}),
    ]
    clocks = incident_clocks(entries)
    assert clocks["INC-5"].placed and not clocks["INC-10"].placed
    figures = match_calls(calls, entries, clocks)
    assert figures["placed"] == 5 and figures["answered"] == 4 and figures["missed"] == 1
    assert figures["recorded"] == 4 and figures["lost"] == 0 and figures["unmarked"] == 0
    assert figures["classified"] == figures["as_scripted"] == 4 and figures["unclassified"] == 0
    assert figures["by_kind"] == {"consultation": 1, "emergency": 2, "silent": 1}
    assert figures["emergencies"] == figures["incidents"] == 2 and figures["incidents_not_emergency"] == 0
    assert figures["unknown_emergencies"] == 2
    assert figures["unknown_placed"] == figures["unknown_offered"] == 1
    assert figures["unknown_placed_by"] == {"address": 1, "not placed": 1}
    assert figures["silent"] == figures["called_back"] == 1


def test_after_done_the_operator_decides() -> None:
    entries = [opened(1, 100.0, "d1", "fall"), opened(2, 100.0, "d2", "sos"), opened(3, 100.0, "d3", "sos")]
    for seq, (incident, status, ts) in enumerate(
        [("INC-1", "done", 200.0), ("INC-2", "done", 210.0), ("INC-3", "on_scene", 150.0)], start=4
    ):
        entries.append(entry(seq, ts, "assignment.status", {"status": status}, incident_id=incident))
    entries.append(entry(10, 205.0, "incident.escalated", {"service": "120"}, incident_id="INC-1"))
    clocks = incident_clocks(entries)
    decisions = _decisions(list(clocks.values()), speedup=10.0)
    assert decisions == {"done": 2, "decided": 1, "to_120": 1, "resolved": 0, "waiting": 1, "p50": 50.0,
                         "p90": 50.0}  # fmt: skip


def test_incidents_still_waiting_count_as_longer_than_anything() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([], 90) is None
    done = timing([10.0] * 8, censored=0, of=8, target=15.0, p=90)
    assert done["met"] and done["p90"] == 10.0
    waiting = timing([10.0] * 8, censored=2, of=10, target=15.0, p=90)
    assert not waiting["met"] and waiting["beyond"] and waiting["p90"] is None and waiting["p50"] == 10.0


def test_the_shipped_scenarios_load() -> None:
    names = scenarios.available()
    assert {"normal-day", "quiet-night", "heatwave", "power-cut", "no-show"} <= set(names)
    for name in names:
        scenario = load(name)
        assert scenario.name == name and scenario.wall(scenario.duration) <= 180
    assert load("quiet-night").caregivers.shifts[0].count == 3
    heat, normal = load("heatwave").alarms, load("normal-day").alarms
    assert heat.sos_per_hour == 10 * normal.sos_per_hour and heat.fall_per_hour == 10 * normal.fall_per_hour
    burst = load("power-cut").mains_loss[0]
    assert (burst.share, burst.within) == (0.3, 60.0)
    assert load("no-show").caregivers.no_show_share == 0.5


def test_a_misspelt_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text('duration = "10m"\n[devices]\ncont = 5\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"devices\.cont"):
        load(str(path))
    with pytest.raises(ScenarioError, match="no scenario"):
        load("no-such-scenario")


@pytest.mark.parametrize(("text", "seconds"), [("90m", 5400), ("45s", 45), ("1h30m", 5400), ("2.5m", 150), (12, 12)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_scorecard_json_keeps_rows_on_one_line() -> None:
    text = dumps({"timeline": {"incidents": [["INC-1", 1.0, None], ["INC-2", 2.0, True]]}, "n": 1})
    assert '  ["INC-1", 1.0, null],\n' in text
