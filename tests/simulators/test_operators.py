"""What the simulated operators choose to do, without a server: the drill's desk and the demo's bot, which
keeps off whatever a person touched."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx

from anxin.server import app_for
from simulators.answering import HANDED_TO_120, RESOLVED_DONE
from simulators.bot import DECIDE_S, MANUAL_S, is_mine, left_for_people, may_classify, next_action, touched_by_people
from simulators.operators import DeskPlan, OperatorDesk
from simulators.scripts import Card, Switchboard, draw_script
from simulators.traffic import HotlineCall, takes_words
from tests.conftest import settings_for

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


def test_the_bot_keeps_off_what_a_person_touched() -> None:
    mine = incident(state="acknowledged", acknowledged_at=1.0, acknowledged_by="operator:bot", source="api",
                    notes=[{"actor": "operator:bot", "text": "routine device test"},
                           {"actor": "caregiver:c001", "text": "已到达"}, {"actor": "system", "text": "x"}],
                    assignments=[{"by": "auto"}], alarms=[{"source": "api"}, {"source": "device"}],
                    location="home", escalated_to=None, outcome=None)  # fmt: skip
    assert not touched_by_people(mine) and is_mine(mine)
    assert touched_by_people({**mine, "source": "operator"}), "opened by hand"
    assert touched_by_people({**mine, "alarms": [{"source": "operator"}]}), "a hand-opened incident joined it"
    assert touched_by_people({**mine, "acknowledged_by": "operator:operator"}), "acknowledged or classified by a person"
    assert touched_by_people({**mine, "notes": [{"actor": "supervisor:supervisor", "text": "盯一下"}]})
    assert touched_by_people({**mine, "assignments": [{"by": "operator"}]}), "dispatched by hand"
    assert touched_by_people({**mine, "location": "map"})
    assert touched_by_people({**mine, "location": "address"}), "placed by an address the bot never heard"
    card = Card("call-1", draw_script(random.Random(2), ELDER, known=False, emergency_share=1.0), placed_by="address")
    assert not touched_by_people({**mine, "location": "address"}, card=card)
    assert touched_by_people({**mine, "state": "cancelled"}), "the bot never cancels"
    escalated = {**mine, "state": "escalated", "escalated_to": "120"}
    assert touched_by_people(escalated), "escalated by someone else, without a note"
    own_note = {"actor": "operator:bot", "text": HANDED_TO_120.format(text="疑似骨折")}
    assert not touched_by_people({**escalated, "notes": [own_note]})
    assert touched_by_people({**mine, "state": "resolved", "outcome": "已联系家属"}), "resolved by a person"
    assert not touched_by_people({**mine, "state": "resolved", "outcome": RESOLVED_DONE.format(text="已完成")})
    assert not touched_by_people({**mine, "state": "resolved", "outcome": "device reported restore (E301)"})
    another = {**mine, "acknowledged_by": "operator:bot2", "notes": []}
    assert not touched_by_people(another, "operator:bot2") and touched_by_people(mine, "operator:bot2")


def test_the_share_left_to_people_is_chosen_before_anyone_acknowledges() -> None:
    left = next(f"INC-{n}" for n in range(100) if left_for_people(f"INC-{n}", 0.5))
    new = incident(incident_id=left, acknowledged_by=None, source="device", notes=[], assignments=[], alarms=[])
    assert not is_mine(new, share=0.5), "left to the people: the bot does not acknowledge it"
    assert is_mine({**new, "acknowledged_by": "operator:bot"}, share=0.5), "the bot classified a call into it"
    assert not is_mine({**new, "acknowledged_by": "operator:operator"}, share=0.0)


def test_the_bot_classifies_only_calls_it_answered_and_were_not_left() -> None:
    call = {"call_id": "call-1", "answered_by": "bot", "answered_at": 1.0, "kind": None}
    assert may_classify(call) and may_classify({**call, "answered_by": None})
    assert not may_classify({**call, "answered_by": "operator"}), "a person took this call"
    named = {**call, "answered_by": "模拟接线员"}  # a call record names an account by its display name
    assert may_classify(named, name="模拟接线员") and not may_classify(named)
    assert not may_classify({**call, "answered_by": "李娜"}, name="模拟接线员")
    left = next(f"call-{n}" for n in range(100) if left_for_people(f"call-{n}", 0.5))
    assert not may_classify({**call, "call_id": left}, share=0.5)


def test_a_callers_words_go_with_the_answered_event_when_the_server_takes_them(tmp_path: Path) -> None:
    script = draw_script(random.Random(2), ELDER, known=True, emergency_share=1.0)
    assert script.text
    plain = HotlineCall("call-1", "13505960042", script, drill=False)
    assert all("words" not in plain.event_body(e) for e in ("ringing", "answered", "ended"))
    told = HotlineCall("call-1", "13505960042", script, drill=False, words=True)
    assert told.event_body("answered")["words"] == script.text
    assert "words" not in told.event_body("ringing") and "words" not in told.event_body("ended")

    def older_server(fields: dict[str, Any]) -> httpx.MockTransport:
        """A server of an earlier release, whose schema this one no longer has (it cannot be run here)."""
        body = {"components": {"schemas": {"HotlineEventIn": {"properties": fields}}}}
        return httpx.MockTransport(lambda request: httpx.Response(200, json=body))

    async def ask(transport: httpx.AsyncBaseTransport) -> bool:
        async with httpx.AsyncClient(transport=transport, base_url="http://anxin") as client:
            return await takes_words(client)

    this_release = httpx.ASGITransport(app=app_for(settings_for(tmp_path / "data")))  # its schema, no core needed
    assert asyncio.run(ask(this_release))
    assert not asyncio.run(ask(older_server({"event": {}})))
    assert not asyncio.run(ask(httpx.MockTransport(lambda request: httpx.Response(404, text="no"))))  # no schema
