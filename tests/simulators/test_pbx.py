"""The simulated Asterisk (simulators.pbx) against an AMI client we did not write: panoramisk from PyPI.

panoramisk logs in, receives the events of a scripted call in order, lists the live channels with
CoreShowChannels, pings, places an Originate and is refused with a wrong secret: the simulator speaks AMI as
a real client expects it, not only as our own codec reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from panoramisk import Manager  # type: ignore[import-untyped]

from simulators.pbx import FLOWS, Pbx
from tests.conftest import eventually

SECRET = "s3cret"


@pytest.fixture
async def pbx() -> AsyncIterator[tuple[Pbx, int]]:
    sim = Pbx(username="anxin", secret=SECRET)
    port = await sim.start()
    yield sim, port
    await sim.close()


@contextlib.asynccontextmanager
async def manager(port: int, secret: str = SECRET) -> AsyncIterator[tuple[Any, list[Any], asyncio.Future[bool]]]:
    loop = asyncio.get_running_loop()
    login: asyncio.Future[bool] = loop.create_future()
    events: list[Any] = []
    client = Manager(
        loop=loop,
        host="127.0.0.1",
        port=port,
        username="anxin",
        secret=secret,
        ping_delay=600,
        ping_interval=600,
        reconnect_timeout=600,
    )
    client.register_event("*", lambda _manager, event: events.append(event))
    connecting = client.connect()
    await connecting

    def logged_in(future: asyncio.Future[Any]) -> None:
        if not login.done():
            login.set_result(bool(future.result().success))

    assert client.authenticated_future is not None
    client.authenticated_future.add_done_callback(logged_in)
    try:
        yield client, events, login
    finally:
        client.close()
        await asyncio.sleep(0)


async def test_panoramisk_follows_a_call_and_lists_channels(pbx: tuple[Pbx, int]) -> None:
    sim, port = pbx
    async with manager(port) as (client, events, login):
        assert await login
        await eventually(lambda: sim.logins == 1)
        play = sim.call("transferred", caller="13800138000", extension="8101", to="8102")
        for _ in range(4):
            play.step()  # arrive, enqueue, ring the operator, answer
        listing = await client.send_action({"Action": "CoreShowChannels"})
        channels = [m for m in listing if m.get("Event") == "CoreShowChannel"]
        assert {c["Channel"].split("-")[0] for c in channels} == {"PJSIP/trunk", "PJSIP/8101"}
        assert {c["Linkedid"] for c in channels} == {play.linkedid}
        caller = next(c for c in channels if c["Uniqueid"] == play.linkedid)
        assert (caller["Application"], caller["CallerIDNum"], caller["BridgeId"]) == (
            "Queue",
            "13800138000",
            play.bridge,
        )
        assert listing[-1]["Event"] == "CoreShowChannelsComplete" and listing[-1]["ListItems"] == "2"
        await play.run()
        await eventually(lambda: any(e.get("Event") == "Hangup" and e["Uniqueid"] == play.linkedid for e in events))
        names = [e["Event"] for e in events if e.get("Linkedid") == play.linkedid or "Transferee" in str(e)]
        for expected in ("Newchannel", "QueueCallerJoin", "AgentConnect", "BridgeEnter", "BlindTransfer", "Hangup"):
            assert expected in names
        assert names.index("Newchannel") < names.index("QueueCallerJoin") < names.index("AgentConnect")
        assert names.index("BlindTransfer") < len(names) - 1 - names[::-1].index("BridgeEnter")
        pong = await client.send_action({"Action": "Ping"})
        assert pong["Ping"] == "Pong"
        after = await client.send_action({"Action": "CoreShowChannels"})
        assert [m.get("Event") for m in after] == [None, "CoreShowChannelsComplete"]  # no channels left


async def test_panoramisk_originate_and_status(pbx: tuple[Pbx, int]) -> None:
    sim, port = pbx
    sim.autoplay = False
    async with manager(port) as (client, events, login):
        assert await login
        # panoramisk, as Asterisk's manual says, takes "Originate successfully queued" for the start of a
        # list that the OriginateResponse event ends: the answer comes once the call is placed
        originating = client.send_action(
            {
                "Action": "Originate",
                "Channel": "PJSIP/8101",
                "Context": "from-internal",
                "Exten": "13900139000",
                "Priority": "1",
                "Async": "true",
                "Variable": "ANXIN_CALL=call-1",
            }
        )
        play = await sim.originated.get()
        for _ in range(6):
            play.step()  # up to the far side answering
        status = await client.send_action({"Action": "Status", "Variables": "ANXIN_CALL"})
        by_channel = {m["Channel"].split("-")[0]: m for m in status if m.get("Event") == "Status"}
        assert by_channel["PJSIP/8101"]["Variable"] == "ANXIN_CALL=call-1"
        assert by_channel["PJSIP/trunk"]["ChannelStateDesc"] == "Up"
        await play.run()
        queued, result = await originating
        assert queued["Message"] == "Originate successfully queued"
        assert (result["Event"], result["Response"], result["ActionID"]) == (
            "OriginateResponse",
            "Success",
            queued["ActionID"],
        )
        assert any(e.get("Event") == "VarSet" and e["Value"] == "call-1" for e in events)


async def test_panoramisk_is_refused_a_wrong_secret(pbx: tuple[Pbx, int]) -> None:
    sim, port = pbx
    async with manager(port, secret="wrong") as (_, _, login):
        assert await login is False
    assert sim.logins == 0


def test_flows_only_use_operations_the_switch_has() -> None:
    from simulators.pbx import Play

    for steps in FLOWS.values():
        for op, *_ in steps:
            assert hasattr(Play, f"_op_{op}"), op
