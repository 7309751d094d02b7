"""The PBX call tracker (gateway.pbx), sans-I/O: AMI events in, call events out.

Events are built with the headers Asterisk documents for them (see tests/gateway/test_ami.py for the
sources); only the headers the tracker reads are filled in.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.commands import CallEvent, Dial
from gateway.ami import AmiCodec, Message
from gateway.pbx import LINK_DOWN_CAUSE, TRANSITIONS, CallTracker, extension_of

NOW = 1_780_000_000.0
L = "1780000000.1"  # the caller's channel's Uniqueid, the call's Linkedid
EXT = {"8101": "op1", "8102": "op2"}


def ev(name: str, **headers: str) -> Message:
    return Message((("Event", name), *((k.replace("_", "-"), v) for k, v in headers.items())))


def caller(**more: str) -> dict[str, str]:
    return {
        "Channel": "PJSIP/trunk-00000001",
        "Uniqueid": L,
        "Linkedid": L,
        "CallerIDNum": "13800138000",
        "Exten": "12349",
        **more,
    }


def agent(ext: str = "8101", uid: str = "1780000000.2") -> dict[str, str]:
    return {"Channel": f"PJSIP/{ext}-0000002a", "Uniqueid": uid, "Linkedid": L}


def kinds(events: list[CallEvent]) -> list[str]:
    return [e.event for e in events]


def feed(tracker: CallTracker, *messages: Message) -> list[CallEvent]:
    return [event for m in messages for event in tracker.handle(m, NOW)]


@pytest.mark.parametrize(
    ("channel", "extension"),
    [
        ("PJSIP/8101-0000002a", "8101"),
        ("PJSIP/8101", "8101"),
        ("SIP/8101-1f2e3d4c", "8101"),
        ("Local/8102@from-queue-00000003;1", "8102"),
        ("PJSIP/front-desk-00000001", "front-desk"),
        ("nothing", ""),
    ],
)
def test_extension_of(channel: str, extension: str) -> None:
    assert extension_of(channel) == extension


def test_answered_through_the_queue() -> None:
    tracker = CallTracker(extensions=EXT)
    events = feed(
        tracker,
        ev("Newchannel", **caller(), Timestamp="1780000000.500000"),
        ev("QueueCallerJoin", **caller(), Queue="hotline"),
        ev("AgentConnect", **caller(), DestChannel="PJSIP/8101-0000002a", Interface="PJSIP/8101", Queue="hotline"),
        ev("BridgeEnter", BridgeUniqueid="b1", **caller()),
        ev("BridgeEnter", BridgeUniqueid="b1", **agent()),
        ev("Hangup", **agent(), Cause="16", Cause_txt="Normal Clearing"),
        ev("Hangup", **caller(), Cause="16", Cause_txt="Normal Clearing"),
    )
    assert kinds(events) == ["ringing", "queued", "answered", "ended"]
    ringing, queued, answered, ended = events
    assert (ringing.call_id, ringing.caller, ringing.line, ringing.actor) == (
        f"pbx-{L}",
        "13800138000",
        "12349",
        "system:pbx",
    )
    assert ringing.at == 1780000000.5  # the event's Timestamp
    assert queued.queue == "hotline" and queued.at is None
    assert (answered.extension, answered.operator) == ("8101", "op1")
    assert ended.cause == "16 Normal Clearing"
    assert tracker.calls == {}


def test_unmapped_extension_still_answers() -> None:
    tracker = CallTracker(extensions=EXT)
    events = feed(
        tracker,
        ev("Newchannel", **caller()),
        ev("DialEnd", **caller(), DestChannel="PJSIP/8199-00000003", DialStatus="ANSWER"),
    )
    assert (events[-1].event, events[-1].extension, events[-1].operator) == ("answered", "8199", None)


def test_out_of_order_never_moves_back_and_ended_is_final() -> None:
    tracker = CallTracker(extensions=EXT)
    events = feed(
        tracker,
        ev("Newchannel", **caller()),
        ev("AgentConnect", **caller(), Interface="PJSIP/8101"),
        ev("QueueCallerJoin", **caller(), Queue="hotline"),  # late: queued after answered
        ev("Hangup", **caller(), Cause="16", Cause_txt="Normal Clearing"),
        ev("AgentConnect", **caller(), Interface="PJSIP/8102"),  # after the end
        ev("Hangup", **caller(), Cause="16", Cause_txt="Normal Clearing"),
    )
    assert kinds(events) == ["ringing", "answered", "ended"]
    assert tracker.counters["out_of_order"] == 1


def test_a_call_never_seen_is_created() -> None:
    tracker = CallTracker(extensions=EXT)
    events = feed(tracker, ev("AgentConnect", **caller(), Interface="PJSIP/8102", Queue="hotline"))
    assert kinds(events) == ["ringing", "answered"]
    assert events[1].operator == "op2" and events[1].caller == "13800138000"


def test_an_operator_phone_is_not_a_hotline_call() -> None:
    tracker = CallTracker(extensions=EXT)
    own = {"Channel": "PJSIP/8101-00000009", "Uniqueid": "9.1", "Linkedid": "9.1", "Exten": "8102"}
    assert feed(tracker, ev("Newchannel", **own)) == []


def test_hotline_queues_filter_and_ring_time() -> None:
    tracker = CallTracker(extensions=EXT, queues=["hotline"])
    other = {**caller(), "Uniqueid": "5.1", "Linkedid": "5.1"}
    events = feed(
        tracker,
        ev("Newchannel", **caller(), Timestamp="1780000000.000000"),
        ev("Newchannel", **other),
        ev("QueueCallerJoin", **other, Queue="sales"),
        ev("QueueCallerJoin", **caller(), Queue="hotline", Timestamp="1780000004.000000"),
    )
    assert kinds(events) == ["ringing", "queued"]
    assert events[0].at == 1780000000.0 and events[1].at == 1780000004.0
    assert all(e.call_id == f"pbx-{L}" for e in events)


def test_blind_transfer_then_answer() -> None:
    tracker = CallTracker(extensions=EXT)
    events = feed(
        tracker,
        ev("Newchannel", **caller()),
        ev("AgentConnect", **caller(), Interface="PJSIP/8101"),
        ev("BlindTransfer", Result="Success", TransfereeLinkedid=L, Extension="8102"),
        ev("Hangup", **agent(), Cause="16", Cause_txt="Normal Clearing"),  # the first operator leaves
        ev("DialEnd", **caller(), DestChannel="PJSIP/8102-0000002c", DialStatus="ANSWER"),
        ev("BridgeEnter", BridgeUniqueid="b2", **agent("8102", "1780000000.4")),
    )
    assert kinds(events) == ["ringing", "answered", "transferred"]
    assert (events[-1].extension, events[-1].operator) == ("8102", "op2")


def test_attended_transfer() -> None:
    tracker = CallTracker(extensions=EXT)
    events = feed(
        tracker,
        ev("Newchannel", **caller()),
        ev("AgentConnect", **caller(), Interface="PJSIP/8101"),
        ev("AttendedTransfer", Result="Success", TransfereeLinkedid=L, TransferTargetChannel="PJSIP/8102-0000002c"),
    )
    assert kinds(events) == ["ringing", "answered", "transferred"]
    assert events[-1].extension == "8102"


def test_transitions_table_is_monotonic() -> None:
    order = ["ringing", "queued", "answered", "transferred", "ended"]
    for (state, _), new in TRANSITIONS.items():
        assert order.index(new) >= order.index(state)
    assert not any(state == "ended" for state, _ in TRANSITIONS)


def test_originate_action_and_the_call_it_makes() -> None:
    tracker = CallTracker(extensions=EXT, channel="PJSIP/{extension}", context="from-internal", caller_id="12349")
    data = tracker.originate(Dial("call-7", "8101", "13900139000", "op1"), "anxin-5")
    (action,) = AmiCodec().receive_data(b"Asterisk Call Manager/7.0.3\r\n" + data)
    assert [(k, action.get(k)) for k in ("Action", "ActionID", "Channel", "Context", "Exten", "Priority")] == [
        ("Action", "Originate"),
        ("ActionID", "anxin-5"),
        ("Channel", "PJSIP/8101"),
        ("Context", "from-internal"),
        ("Exten", "13900139000"),
        ("Priority", "1"),
    ]
    assert action.get("Async") == "true" and action.get("CallerID") == "12349"
    assert action.get_all("Variable") == ["ANXIN_CALL=call-7"]
    leg = {"Channel": "PJSIP/8101-00000010", "Uniqueid": "7.1", "Linkedid": "7.1"}
    far = {"Channel": "PJSIP/trunk-00000011", "Uniqueid": "7.2", "Linkedid": "7.1"}
    events = feed(
        tracker,
        ev("Newchannel", **leg),
        ev("VarSet", **leg, Variable="ANXIN_CALL", Value="call-7"),
        ev("Newstate", **leg, ChannelStateDesc="Ringing"),  # the operator's phone: not the call ringing
        ev("Newstate", **leg, ChannelStateDesc="Up"),
        ev("OriginateResponse", ActionID="anxin-5", Response="Success", Uniqueid="7.1"),
        ev("Newchannel", **far),
        ev("Newstate", **far, ChannelStateDesc="Ringing"),
        ev("DialEnd", **leg, DestChannel=far["Channel"], DialStatus="ANSWER"),
        ev("Newstate", **far, ChannelStateDesc="Up"),
        ev("Hangup", **far, Cause="16", Cause_txt="Normal Clearing"),
        ev("Hangup", **leg, Cause="16", Cause_txt="Normal Clearing"),
    )
    assert kinds(events) == ["ringing", "answered", "ended"]
    assert {e.call_id for e in events} == {"call-7"} and {e.direction for e in events} == {"out"}
    assert events[0].caller == "13900139000"
    assert (events[1].extension, events[1].operator) == ("8101", "op1")


def test_originate_failure_ends_the_call() -> None:
    tracker = CallTracker(extensions=EXT)
    tracker.originate(Dial("call-8", "8101", "13900139000", "op1"), "anxin-6")
    leg = {"Channel": "PJSIP/8101-00000012", "Uniqueid": "8.1", "Linkedid": "8.1"}
    events = feed(
        tracker,
        ev("Newchannel", **leg),
        ev("VarSet", **leg, Variable="ANXIN_CALL", Value="call-8"),
        ev("Hangup", **leg, Cause="19", Cause_txt="No answer"),
        ev("OriginateResponse", ActionID="anxin-6", Response="Failure", Reason="3", Uniqueid="<null>"),
    )
    assert kinds(events) == ["ended"]
    assert events[0].cause == "originate failed: no answer" and events[0].call_id == "call-8"
    assert tracker.calls == {}


def channel_item(**headers: str) -> Message:
    return Message((("Event", "CoreShowChannel"), *headers.items()))


def test_rebuild_reconciles() -> None:
    tracker = CallTracker(extensions=EXT)
    gone = {"Channel": "PJSIP/trunk-00000020", "Uniqueid": "20.1", "Linkedid": "20.1", "CallerIDNum": "1"}
    fresh = {"Channel": "PJSIP/trunk-00000021", "Uniqueid": "21.1", "Linkedid": "21.1", "CallerIDNum": "2"}
    kept = caller()
    feed(tracker, ev("Newchannel", **gone), ev("Newchannel", **kept))
    tracker.connected()  # the link dropped and came back
    live = feed(tracker, ev("Newchannel", **fresh))  # a call that began after the reconnect, before the list
    assert kinds(live) == ["ringing"]
    queued = {
        "Channel": "PJSIP/trunk-00000030",
        "Uniqueid": "30.1",
        "Linkedid": "30.1",
        "CallerIDNum": "3",
        "Exten": "12349",
        "Application": "Queue",
        "ApplicationData": "hotline,t",
        "Duration": "00:01:05",
    }
    talking = {
        "Channel": "PJSIP/trunk-00000040",
        "Uniqueid": "40.1",
        "Linkedid": "40.1",
        "CallerIDNum": "4",
        "Application": "Queue",
        "ApplicationData": "hotline,t",
        "Duration": "00:02:00",
        "BridgeId": "b4",
    }
    talking_agent = {
        "Channel": "PJSIP/8102-00000041",
        "Uniqueid": "40.2",
        "Linkedid": "40.1",
        "Duration": "00:00:30",
        "BridgeId": "b4",
        "ChannelStateDesc": "Up",
    }
    kept_answered = {**kept, "BridgeId": "b1", "Duration": "00:00:50"}
    kept_agent = {**agent(), "BridgeId": "b1", "Duration": "00:00:10"}
    channels = [channel_item(**c) for c in (queued, talking, talking_agent, kept_answered, kept_agent)]
    events = tracker.rebuild(channels, [], NOW)
    by_call = {(e.call_id, e.event): e for e in events}
    assert by_call[("pbx-20.1", "ended")].cause == LINK_DOWN_CAUSE
    assert ("pbx-21.1", "ended") not in by_call  # seen live since the reconnect
    assert by_call[("pbx-30.1", "ringing")].at == NOW - 65
    assert by_call[("pbx-30.1", "queued")].queue == "hotline"
    answered = by_call[("pbx-40.1", "answered")]
    assert (answered.extension, answered.operator, answered.at) == ("8102", "op2", NOW - 30)
    assert by_call[(f"pbx-{L}", "answered")].extension == "8101"
    assert kinds(tracker.rebuild(channels, [], NOW)) == []  # a second listing changes nothing


def test_rebuild_finds_a_click_to_call_through_its_variable() -> None:
    tracker = CallTracker(extensions=EXT)  # e.g. after a restart: the dial is not remembered
    leg = {
        "Channel": "PJSIP/8101-00000050",
        "Uniqueid": "50.1",
        "Linkedid": "50.1",
        "Exten": "13900139000",
        "ChannelStateDesc": "Up",
        "BridgeId": "b5",
        "Duration": "00:01:00",
    }
    far = {
        "Channel": "PJSIP/trunk-00000051",
        "Uniqueid": "50.2",
        "Linkedid": "50.1",
        "ChannelStateDesc": "Up",
        "BridgeId": "b5",
        "Duration": "00:00:40",
    }
    status = Message(
        (
            ("Event", "Status"),
            ("Uniqueid", "50.1"),
            ("Linkedid", "50.1"),
            ("Exten", "13900139000"),
            ("Variable", "ANXIN_CALL=call-9"),
        )
    )
    events = tracker.rebuild([channel_item(**leg), channel_item(**far)], [status], NOW)
    assert kinds(events) == ["ringing", "answered"]
    assert {e.call_id for e in events} == {"call-9"} and events[0].caller == "13900139000"
    assert events[1].direction == "out" and events[1].at == NOW - 40


def test_malformed_events_are_counted_not_raised() -> None:
    tracker = CallTracker(extensions=EXT)
    assert feed(tracker, ev("Newchannel"), ev("Hangup"), ev("BridgeEnter"), ev("AgentConnect")) == []
    assert tracker.calls == {}


def test_originate_matched_by_its_response_without_varset() -> None:
    # a manager user reading only the "call" class never sees VarSet (class "dialplan")
    tracker = CallTracker(extensions=EXT)
    tracker.originate(Dial("call-10", "8102", "13900139000", "op2"), "anxin-9")
    leg = {"Channel": "PJSIP/8102-00000060", "Uniqueid": "60.1", "Linkedid": "60.1"}
    far = {"Channel": "PJSIP/trunk-00000061", "Uniqueid": "60.2", "Linkedid": "60.1"}
    events = feed(
        tracker,
        ev("Newchannel", **leg),
        ev("OriginateResponse", ActionID="anxin-9", Response="Success", Uniqueid="60.1", Exten="13900139000"),
        ev("DialBegin", **leg, DestChannel=far["Channel"]),
        ev("DialEnd", **leg, DestChannel=far["Channel"], DialStatus="ANSWER"),
        ev("Hangup", **leg, Cause="16", Cause_txt="Normal Clearing"),
    )
    assert kinds(events) == ["ringing", "answered", "ended"]
    assert {e.call_id for e in events} == {"call-10"} and events[1].operator == "op2"


ORDER = ["ringing", "queued", "answered", "transferred", "ended"]
POOL = [
    ev("Newchannel", **caller()),
    ev("QueueCallerJoin", **caller(), Queue="hotline"),
    ev("AgentConnect", **caller(), Interface="PJSIP/8101"),
    ev("DialEnd", **caller(), DestChannel="PJSIP/8102-0000002c", DialStatus="ANSWER"),
    ev("BridgeEnter", BridgeUniqueid="b1", **caller()),
    ev("BridgeEnter", BridgeUniqueid="b1", **agent()),
    ev("BlindTransfer", Result="Success", TransfereeLinkedid=L, Extension="8102"),
    ev("AttendedTransfer", Result="Success", TransfereeLinkedid=L, TransferTargetChannel="PJSIP/8102-0000002c"),
    ev("Hangup", **agent(), Cause="16", Cause_txt="Normal Clearing"),
    ev("Hangup", **caller(), Cause="16", Cause_txt="Normal Clearing"),
    ev("QueueCallerAbandon", **caller(), Queue="hotline"),
    ev("Newstate", **caller(), ChannelStateDesc="Up"),
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(POOL), max_size=25), st.booleans())
def test_fuzz_any_order_is_monotonic_and_ends_once(messages: list[Message], rebuild: bool) -> None:
    tracker = CallTracker(extensions=EXT)
    events = feed(tracker, *messages)
    if rebuild:
        tracker.connected()
        events += tracker.rebuild([], [], NOW)
    positions = [ORDER.index(e.event) for e in events]
    assert positions == sorted(positions)  # never backwards (transferred may repeat)
    assert [e.event for e in events].count("ended") <= 1
    if events:
        assert events[0].event == "ringing"
        assert events[-1].event == "ended" or tracker.calls
    assert not (rebuild and tracker.calls)  # nothing is left open when the PBX shows no channel


def test_an_operators_internal_call_is_not_a_hotline_call() -> None:
    tracker = CallTracker(extensions=EXT)
    own = {"Channel": "PJSIP/8101-00000070", "Uniqueid": "70.1", "Linkedid": "70.1"}
    events = feed(
        tracker,
        ev("Newchannel", **own),
        ev("DialEnd", **own, DestChannel="PJSIP/8102-00000071", DialStatus="ANSWER"),
        ev("Hangup", **own, Cause="16", Cause_txt="Normal Clearing"),
    )
    assert events == [] and tracker.calls == {}


def test_rebuild_ends_a_call_whose_caller_left_while_an_operator_leg_lingers() -> None:
    tracker = CallTracker(extensions=EXT)
    feed(tracker, ev("Newchannel", **caller()), ev("AgentConnect", **caller(), Interface="PJSIP/8101"))
    tracker.connected()
    events = tracker.rebuild([channel_item(**agent(), Duration="00:00:09")], [], NOW)
    assert kinds(events) == ["ended"] and events[0].cause == LINK_DOWN_CAUSE


def test_a_click_to_call_that_fails_over_to_a_second_trunk_is_not_ended_by_the_first() -> None:
    """An outbound route with two trunks (FreePBX's usual): the first trunk's channel fails and hangs up, the
    dialplan dials the second, which answers. The call ends when the operator's leg hangs up, with the far
    side's cause when it gave one (busy says more than the operator's own normal clearing)."""
    tracker = CallTracker(extensions=EXT)
    tracker.originate(Dial("call-9", "8101", "13900139000", "op1"), "anxin-9")
    leg = {"Channel": "PJSIP/8101-00000020", "Uniqueid": "9.1", "Linkedid": "9.1"}
    first = {"Channel": "PJSIP/trunk1-00000021", "Uniqueid": "9.2", "Linkedid": "9.1"}
    second = {"Channel": "PJSIP/trunk2-00000022", "Uniqueid": "9.3", "Linkedid": "9.1"}
    events = feed(
        tracker,
        ev("Newchannel", **leg),
        ev("VarSet", **leg, Variable="ANXIN_CALL", Value="call-9"),
        ev("Newstate", **leg, ChannelStateDesc="Up"),
        ev("OriginateResponse", ActionID="anxin-9", Response="Success", Uniqueid="9.1"),
        ev("Newchannel", **first),
        ev("DialBegin", **leg, DestChannel=first["Channel"]),
        ev("DialEnd", **leg, DestChannel=first["Channel"], DialStatus="CONGESTION"),
        ev("Hangup", **first, Cause="34", Cause_txt="Circuit/channel congestion"),
        ev("Newchannel", **second),
        ev("DialBegin", **leg, DestChannel=second["Channel"]),
        ev("DialEnd", **leg, DestChannel=second["Channel"], DialStatus="ANSWER"),
    )
    assert kinds(events) == ["ringing", "answered"]
    events = feed(
        tracker,
        ev("Hangup", **second, Cause="17", Cause_txt="User busy"),
        ev("Hangup", **leg, Cause="16", Cause_txt="Normal Clearing"),
    )
    assert kinds(events) == ["ended"] and events[0].cause == "17 User busy"
    assert tracker.calls == {}
