"""What crosses Redis between a follower and the leader: typed values and refusals, back as they were sent."""

from __future__ import annotations

import json

from dispatch.cluster import pack, pack_error, unpack, unpack_error
from dispatch.commands import AlarmRequest, CallOutcome, Classification, Opened
from dispatch.devices import DeviceReport
from dispatch.errors import Conflict, IllegalTransition, NoLeader, NotFound
from dispatch.registry import Elder


def through(value: object) -> object:
    return unpack(json.loads(json.dumps(pack(value))))


def test_commands_and_results_cross_as_they_were() -> None:
    report = DeviceReport("sia-dc09", "B000001", "alarm", "E101", alarm_type="sos", lat=24.5, lon=117.6,
                          dedup="0042", detail={"zone": "001", "raw": [1, 2]})  # fmt: skip
    assert through([report]) == [report]
    request = AlarmRequest("fall", "operator:li", "operator", elder_id="e00001", placed_by="map", address="蓝田路 3 号")
    assert through(request) == request
    assert through(Classification("c1", "service", "operator:li", text="想请人送午饭")) == Classification(
        "c1", "service", "operator:li", text="想请人送午饭"
    )
    assert through(Opened("INC-7", 1, False)) == Opened("INC-7", 1, False)
    assert through(CallOutcome("c1", "answered", None, None)) == CallOutcome("c1", "answered", None, None)
    elder = Elder(elder_id="e9", name="王秀英", address="蓝田路 3 号", lat=24.51, lon=117.66,
                  community="龙文区/蓝田街道/蓝田社区")  # fmt: skip
    command = {"args": [elder], "kwargs": {"actor": "admin:x"}}
    assert through(command) == command


def test_a_refusal_is_raised_again_with_its_class_code_field_and_params() -> None:
    for error in (
        NotFound("no elder e1", field="elder_id"),
        Conflict("already offered", code="conflict", params={"responder": "王芳"}),
        IllegalTransition("incident", "closed", "acknowledge"),
        NoLeader("no leader answered within 10 s"),
    ):
        again = unpack_error(json.loads(json.dumps(pack_error(error))))
        assert type(again) is type(error)
        assert (str(again), again.code, again.params) == (str(error), error.code, error.params)
        assert getattr(again, "field", None) == getattr(error, "field", None)
