"""The demo's hotline calls on the simulated PBX: the bot answers exactly the calls it will classify."""

from __future__ import annotations

import asyncio
import random

from simulators.bot import left_for_people
from simulators.pbx import Lines, Pbx
from simulators.pbxcalls import PbxHotline
from simulators.scripts import Switchboard

COMMUNITY = "龙文区/蓝田街道/蓝田社区"
ELDERS = [
    {"elder_id": f"e{n:05d}", "name": "张凤花", "phone": f"1590596{n:04d}", "community": COMMUNITY}
    for n in range(1, 30)
]


class Recording(Pbx):
    """The simulated PBX, keeping every event it emits (nobody is logged in to hear them)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, dict[str, str]]] = []

    def emit(self, name: str, lines: Lines, privilege: str = "call,all") -> None:
        self.events.append((name, dict(lines)))
        super().emit(name, lines, privilege)


async def test_each_call_rings_the_desk_its_id_leaves_it_to_and_its_script_waits_on_the_switchboard() -> None:
    pbx, board, stop = Recording(), Switchboard(), asyncio.Event()
    desks = PbxHotline(pbx, "8101", "8109", "8102", 0.5, board, step_s=(0.0, 0.0), talk_s=(0.0, 0.0))
    rng = random.Random(3)
    answered: dict[str, str] = {}
    for _ in range(24):
        call_id = await desks.call(rng, ELDERS, stop)
        connects = [e for name, e in pbx.events if name == "AgentConnect" and f"pbx-{e['Linkedid']}" == call_id]
        if connects:
            answered[call_id] = connects[0]["Interface"].split("/")[1]
        assert board.card(call_id) is not None, "the bot can listen to every call"
    assert answered, "most calls are answered"
    for call_id, extension in answered.items():
        if extension != "8101" or not left_for_people(call_id, 0.5):
            transferred = any(name == "BlindTransfer" and f"pbx-{e['TransfereeLinkedid']}" == call_id
                              for name, e in pbx.events)  # fmt: skip
            assert extension == ("8101" if transferred or left_for_people(call_id, 0.5) else "8109"), call_id
    assert {"8101", "8109"} <= set(answered.values()), "both the person and the bot answer calls"
    assert not pbx.channels, "every call played to its end"


async def test_a_desk_phone_rings_for_one_call_at_a_time_and_the_other_callers_wait_in_the_queue() -> None:
    pbx, stop = Recording(), asyncio.Event()
    desks = PbxHotline(pbx, "8101", "8109", "8102", 1.0, Switchboard(), step_s=(0.0, 0.001), talk_s=(0.0, 0.002))
    rngs = [random.Random(n) for n in range(6)]
    await asyncio.gather(*(desks.call(rng, ELDERS, stop) for rng in rngs))  # six callers at once, all for 8101
    holding: dict[str, str] = {}  # extension -> the Linkedid of the call ringing or talking there
    rung = 0
    for name, event in pbx.events:
        if name == "DialBegin":
            desk = event["DialString"]
            assert desk not in holding, f"{desk} rang for {event['Linkedid']} while on {holding.get(desk)}"
            holding[desk] = event["Linkedid"]
            rung += 1
        elif name == "Hangup" and event["Uniqueid"] == event["Linkedid"]:  # the caller hung up: their desks free
            holding = {desk: call for desk, call in holding.items() if call != event["Linkedid"]}
    assert rung >= 6 and not holding
