"""What the simulated operators choose to do, without a server: the drill's desk and the demo's bot."""

from __future__ import annotations

import random
from typing import Any

from simulators.bot import DECIDE_S, MANUAL_S, next_action
from simulators.operators import DeskPlan, OperatorDesk
from simulators.scripts import Switchboard, draw_script

ELDER = {"elder_id": "e00042", "name": "林秀英", "phone": "13505960042", "community": "龙文区/蓝田街道/蓝田社区",
         "address": "龙文区蓝田街道蓝田社区12号楼3单元502室"}  # fmt: skip


def desk(board: Switchboard | None = None) -> OperatorDesk:
    plan = DeskPlan(speedup=60.0, settle_after=120.0, callback_after=300.0)
    return OperatorDesk("http://127.0.0.1:1", "t", plan, seed=1, switchboard=board or Switchboard())


def incident(**fields: Any) -> dict[str, Any]:
    base = {"incident_id": "INC-1", "state": "received", "acknowledged_at": None, "needs_manual": False,
            "alarm_type": "sos", "lat": 24.5, "lon": 117.7, "call_id": None, "proposal": None, "open": True,
            "drill": True, "updated_at": 990.0, "actions": ["acknowledge", "dispatch"]}  # fmt: skip
    return {**base, **fields}


def test_operators_do_first_what_the_console_shows_first() -> None:
    d = desk()
    assert d.choose(incident(), 1000.0) == "acknowledge"
    manual = incident(state="dispatching", acknowledged_at=990.0, needs_manual=True)
    assert d.choose(manual, 1000.0) == "manual"
    battery = incident(state="acknowledged", acknowledged_at=999.0, alarm_type="low_battery")
    assert d.choose(battery, 1000.0) is None  # settled 120 drill s (2 wall s) after acknowledging
    assert d.choose(battery, 1001.5) == "settle"


def test_a_caregivers_done_waits_for_the_operators_word() -> None:
    d = desk()
    on_scene = incident(state="on_scene", acknowledged_at=990.0, actions=["escalate", "resolve", "replace"])
    assert d.choose(on_scene, 1000.0) is None, "the caregiver is still there: nothing to decide"
    done = {**on_scene, "proposal": {"text": "疑似骨折，建议送医"}, "actions": ["escalate", "resolve", "dispatch"]}
    assert d.choose(done, 1000.0) == "decide"


def test_an_unknown_callers_incident_is_placed_where_they_said() -> None:
    board = Switchboard()
    script = draw_script(random.Random(2), ELDER, known=False, emergency_share=1.0)
    board.put("call-1", script)
    d = desk(board)
    lost = incident(state="dispatching", acknowledged_at=990.0, needs_manual=True, lat=None, lon=None)
    assert d.choose(lost, 1000.0) == "manual", "no card: nobody here heard the caller"
    assert d.choose({**lost, "call_id": "call-1"}, 1000.0) == "locate"


def test_calls_are_classified_as_heard_and_silent_ones_called_back() -> None:
    board = Switchboard()
    board.put("call-1", draw_script(random.Random(2), ELDER, known=True, emergency_share=0.0))
    d = desk(board)
    call = {"call_id": "call-1", "drill": True, "answered_at": 999.0, "kind": None, "callback": None}
    assert d.choose_call(call, 1000.0) == "classify"
    assert d.choose_call({**call, "call_id": "not-ours"}, 1000.0) is None
    assert d.choose_call({**call, "drill": False}, 1000.0) is None
    silent = {**call, "kind": "silent", "callback": "due"}
    assert d.choose_call(silent, 1000.0) is None, "the desk did not hear this silence itself"
    d._classified_at["call-1"] = 1000.0
    assert d.choose_call(silent, 1004.0) is None and d.choose_call(silent, 1005.5) == "callback"


def test_the_bot_decides_after_done_and_places_before_giving_up() -> None:
    done = incident(state="on_scene", acknowledged_at=1.0, proposal={"text": "已到达，老人情况稳定"},
                    actions=["escalate", "resolve", "dispatch"])  # fmt: skip
    assert next_action(done, DECIDE_S - 1) is None
    assert next_action(done, DECIDE_S) == ("resolve", {"outcome": "护理员已上门处理：已到达，老人情况稳定"})
    hospital = {**done, "proposal": {"text": "疑似骨折，建议送医"}}
    action = next_action(hospital, DECIDE_S)
    assert action is not None and action[0] == "escalate"
    lost = incident(state="dispatching", acknowledged_at=1.0, needs_manual=True, lat=None, lon=None)
    assert next_action(lost, 0.0, placeable=True) == ("locate", None)
    assert next_action(lost, 0.0) is None
    assert next_action(lost, MANUAL_S) == ("resolve", {"outcome": "无可派人员，已电话联系家属上门处理"})
