"""The AMI codec (gateway.ami) on frames written from Asterisk's AMI documentation.

Where the frames come from: the Asterisk project's reference pages for each manager event and action
("Asterisk 18 ManagerEvent_<Name>", "Asterisk 18 ManagerAction_<Name>" in the Asterisk documentation; the
header order is manager.c's, as ``manager show event <Name>`` lists it), filled with values of the shape a
PJSIP hotline produces (channel names "PJSIP/<endpoint>-<8 hex>", Uniqueid "<epoch>.<n>").
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ami import MAX_MESSAGE, AmiCodec, Message, action, encode
from gateway.errors import FramingError, HeaderInjection, NotAnAmiPeer, ProtocolError

BANNER = b"Asterisk Call Manager/7.0.3\r\n"


def frame(*lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode() + b"\r\n"


CHANNEL = (
    "Channel: PJSIP/trunk-00000001",
    "ChannelState: 4",
    "ChannelStateDesc: Ring",
    "CallerIDNum: 13800138000",
    "CallerIDName: <unknown>",
    "ConnectedLineNum: <unknown>",
    "ConnectedLineName: <unknown>",
    "Language: zh",
    "AccountCode: ",
    "Context: from-trunk",
    "Exten: 12349",
    "Priority: 1",
    "Uniqueid: 1700000000.1",
    "Linkedid: 1700000000.1",
)
AGENT = tuple(
    line.replace("trunk-00000001", "8101-0000002a").replace("1700000000.1", "1700000000.2", 1) for line in CHANNEL
)
DEST = tuple("Dest" + line for line in AGENT)

#: name -> (frame, headers checked); one per documented event or response the adapter reads
FRAMES: dict[str, tuple[bytes, dict[str, str]]] = {
    # ManagerEvent_Newchannel: "Raised when a new channel is created."
    "Newchannel": (
        frame("Event: Newchannel", "Privilege: call,all", "Timestamp: 1700000000.123456", *CHANNEL),
        {"Channel": "PJSIP/trunk-00000001", "Exten": "12349", "Linkedid": "1700000000.1"},
    ),
    # ManagerEvent_Newstate: "Raised when a channel's state changes."
    "Newstate": (
        frame("Event: Newstate", "Privilege: call,all", *AGENT).replace(b"ChannelState: 4", b"ChannelState: 5"),
        {"ChannelState": "5", "Uniqueid": "1700000000.2"},
    ),
    # ManagerEvent_DialBegin: "Raised when a dial action has started." (caller block, then Dest block)
    "DialBegin": (
        frame("Event: DialBegin", "Privilege: call,all", *CHANNEL, *DEST, "DialString: 8101"),
        {"DestChannel": "PJSIP/8101-0000002a", "DialString": "8101"},
    ),
    # ManagerEvent_DialEnd: "Raised when a dial action has completed." DialStatus ANSWER, BUSY, NOANSWER...
    "DialEnd": (
        frame("Event: DialEnd", "Privilege: call,all", *CHANNEL, *DEST, "DialStatus: ANSWER"),
        {"DialStatus": "ANSWER"},
    ),
    # ManagerEvent_QueueCallerJoin: "Raised when a caller joins a Queue."
    "QueueCallerJoin": (
        frame("Event: QueueCallerJoin", "Privilege: agent,all", *CHANNEL, "Queue: hotline", "Position: 1", "Count: 1"),
        {"Queue": "hotline", "Position": "1"},
    ),
    # ManagerEvent_QueueCallerAbandon: "Raised when a caller abandons the queue."
    "QueueCallerAbandon": (
        frame(
            "Event: QueueCallerAbandon",
            "Privilege: agent,all",
            *CHANNEL,
            "Queue: hotline",
            "Position: 1",
            "OriginalPosition: 1",
            "HoldTime: 42",
        ),
        {"HoldTime": "42"},
    ),
    # ManagerEvent_AgentCalled: "Raised when an queue member is notified of a caller in the queue."
    "AgentCalled": (
        frame(
            "Event: AgentCalled",
            "Privilege: agent,all",
            *CHANNEL,
            *DEST,
            "Queue: hotline",
            "MemberName: 8101",
            "Interface: PJSIP/8101",
        ),
        {"Interface": "PJSIP/8101"},
    ),
    # ManagerEvent_AgentConnect: "Raised when a queue member answers and is bridged to a caller in the queue."
    "AgentConnect": (
        frame(
            "Event: AgentConnect",
            "Privilege: agent,all",
            *CHANNEL,
            *DEST,
            "Queue: hotline",
            "MemberName: 8101",
            "Interface: PJSIP/8101",
            "RingTime: 3",
            "HoldTime: 12",
        ),
        {"Interface": "PJSIP/8101", "HoldTime": "12", "DestUniqueid": "1700000000.2"},
    ),
    # ManagerEvent_BridgeEnter: "Raised when a channel enters a bridge." (bridge block, then channel block)
    "BridgeEnter": (
        frame(
            "Event: BridgeEnter",
            "Privilege: call,all",
            "BridgeUniqueid: 1b6f3b0c-8f3e-4f6a-9d0e-5c3f2a1b0c9d",
            "BridgeType: basic",
            "BridgeTechnology: simple_bridge",
            "BridgeCreator: <unknown>",
            "BridgeName: <unknown>",
            "BridgeNumChannels: 2",
            "BridgeVideoSourceMode: none",
            *AGENT,
        ),
        {"BridgeNumChannels": "2", "Channel": "PJSIP/8101-0000002a"},
    ),
    # ManagerEvent_BlindTransfer: "Raised when a blind transfer is complete."
    "BlindTransfer": (
        frame(
            "Event: BlindTransfer",
            "Privilege: call,all",
            "Result: Success",
            *("Transferer" + line for line in AGENT),
            *("Transferee" + line for line in CHANNEL),
            "BridgeUniqueid: 1b6f3b0c-8f3e-4f6a-9d0e-5c3f2a1b0c9d",
            "BridgeType: basic",
            "IsExternal: No",
            "Context: from-internal",
            "Extension: 8102",
        ),
        {"Extension": "8102", "TransfereeLinkedid": "1700000000.1"},
    ),
    # ManagerEvent_AttendedTransfer: "Raised when an attended transfer is complete."
    "AttendedTransfer": (
        frame(
            "Event: AttendedTransfer",
            "Privilege: call,all",
            "Result: Success",
            *("OrigTransferer" + line for line in AGENT),
            *("Transferee" + line for line in CHANNEL),
            "TransferTargetChannel: PJSIP/8102-0000002c",
            "TransferTargetUniqueid: 1700000000.4",
            "DestType: Bridge",
            "DestBridgeUniqueid: 1b6f3b0c-8f3e-4f6a-9d0e-5c3f2a1b0c9d",
            "IsExternal: No",
        ),
        {"DestType": "Bridge", "TransferTargetChannel": "PJSIP/8102-0000002c"},
    ),
    # ManagerEvent_Hangup: "Raised when a channel is hung up." Cause is a Q.850 cause code
    "Hangup": (
        frame("Event: Hangup", "Privilege: call,all", *CHANNEL, "Cause: 16", "Cause-txt: Normal Clearing"),
        {"Cause": "16", "Cause-txt": "Normal Clearing"},
    ),
    # ManagerEvent_CoreShowChannel: "Raised in response to a CoreShowChannels command."
    "CoreShowChannel": (
        frame(
            "Event: CoreShowChannel",
            "ActionID: anxin-3",
            *CHANNEL,
            "Application: Queue",
            "ApplicationData: hotline,t",
            "Duration: 00:01:05",
            "BridgeId: ",
        ),
        {"Application": "Queue", "Duration": "00:01:05", "BridgeId": ""},
    ),
    # ManagerEvent_Status: "Raised in response to a Status command." Variables come back as NAME=value
    "Status": (
        frame(
            "Event: Status",
            "Privilege: Call",
            "ActionID: anxin-4",
            *AGENT,
            "Type: PJSIP",
            "DNID: ",
            "TimeToHangup: 0",
            "BridgeID: ",
            "Application: Dial",
            "Data: PJSIP/trunk/13900139000,60",
            "Seconds: 65",
            "Variable: ANXIN_CALL=call-7",
            "Variable: OTHER=",
        ),
        {"Seconds": "65", "Variable": "ANXIN_CALL=call-7"},
    ),
    # ManagerEvent_OriginateResponse: "Raised in response to an Originate command." (an event with Response)
    "OriginateResponse": (
        frame(
            "Event: OriginateResponse",
            "Privilege: call,all",
            "ActionID: anxin-5",
            "Response: Failure",
            "Channel: PJSIP/8101",
            "Context: from-internal",
            "Exten: 13900139000",
            "Application: ",
            "Data: ",
            "Reason: 3",
            "Uniqueid: <null>",
            "CallerIDNum: <unknown>",
            "CallerIDName: <unknown>",
        ),
        {"Response": "Failure", "Reason": "3"},
    ),
    # ManagerEvent_VarSet: "Raised when a variable local to the gateway/dialplan channel is set."
    "VarSet": (
        frame("Event: VarSet", "Privilege: dialplan,all", *AGENT, "Variable: ANXIN_CALL", "Value: call-7"),
        {"Variable": "ANXIN_CALL", "Value": "call-7"},
    ),
    # ManagerAction_Login, the answer to a wrong secret (manager.c: "Authentication failed")
    "LoginRefused": (
        frame("Response: Error", "ActionID: anxin-1", "Message: Authentication failed"),
        {"Response": "Error", "Message": "Authentication failed"},
    ),
    # ManagerAction_Ping: "Response: Success / Ping: Pong / Timestamp"
    "Pong": (
        frame("Response: Success", "ActionID: anxin-2", "Ping: Pong", "Timestamp: 1700000000.500000"),
        {"Ping": "Pong"},
    ),
}


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_documented_frames_decode(name: str) -> None:
    data, expected = FRAMES[name]
    codec = AmiCodec()
    messages = codec.receive_data(BANNER + data)
    assert len(messages) == 1
    message = messages[0]
    assert message.event == (name if "Event" in message else "")
    for key, value in expected.items():
        assert message.get(key) == value
    # every line became one header, in order
    assert len(message.headers) == data.count(b"\r\n") - 1


@pytest.mark.parametrize("cut", [1, 2, 3, 7, 64])
def test_fragments_and_several_messages_per_read(cut: int) -> None:
    stream = BANNER + b"".join(data for data, _ in FRAMES.values())
    whole = AmiCodec().receive_data(stream)
    codec = AmiCodec()
    pieces = [codec.receive_data(stream[i : i + cut]) for i in range(0, len(stream), cut)]
    assert [m for piece in pieces for m in piece] == whole
    assert len(whole) == len(FRAMES)
    assert codec.version == "7.0.3"


def test_need_more_data_returns_nothing_until_the_empty_line() -> None:
    codec = AmiCodec()
    assert codec.receive_data(BANNER + b"Event: Hangup\r\nCause: 16\r\n") == []
    assert codec.receive_data(b"\r") == []
    assert codec.receive_data(b"\n") == [Message((("Event", "Hangup"), ("Cause", "16")))]


def test_repeated_keys_are_kept_in_order() -> None:
    (status,) = AmiCodec().receive_data(BANNER + FRAMES["Status"][0])
    assert status.get_all("Variable") == ["ANXIN_CALL=call-7", "OTHER="]
    assert status.variables() == {"ANXIN_CALL": "call-7", "OTHER": ""}
    assert status.get("variable") == "ANXIN_CALL=call-7"  # keys compare without case


def test_follows_output_lines_are_kept() -> None:
    data = b"Response: Follows\r\nActionID: 9\r\nPrivilege: Command\r\nChannel list\r\n--END COMMAND--\r\n\r\n"
    (message,) = AmiCodec().receive_data(BANNER + data)
    assert message.response == "Follows"
    assert message.get_all("Output") == ["Channel list", "--END COMMAND--"]


def test_bare_lf_is_accepted() -> None:
    (message,) = AmiCodec().receive_data(b"Asterisk Call Manager/5.0.1\nEvent: FullyBooted\nStatus: Fully Booted\n\n")
    assert message.event == "FullyBooted"


@pytest.mark.parametrize(
    "data", [b"HTTP/1.1 400 Bad Request\r\n", b"SSH-2.0-OpenSSH_9.2\r\n", b"\x00\x01\x02garbage", b"A" * 300]
)
def test_not_an_ami_peer(data: bytes) -> None:
    with pytest.raises(NotAnAmiPeer):
        AmiCodec().receive_data(data)


def test_a_message_over_the_bound_is_a_framing_error() -> None:
    codec = AmiCodec()
    codec.receive_data(BANNER + b"Event: Huge\r\n")
    with pytest.raises(FramingError):
        codec.receive_data(b"X-Junk: " + b"y" * MAX_MESSAGE)  # one long line, no newline yet
    codec = AmiCodec()
    with pytest.raises(FramingError):
        codec.receive_data(BANNER + b"Event: Huge\r\n" + b"Line: xxxxxxxxxxxxxxxxxxxxxxxx\r\n" * 3000)


def test_action_encoding() -> None:
    data = action(
        "Originate",
        "anxin-7",
        Channel="PJSIP/8101",
        Exten="13900139000",
        Priority=1,
        Variable=["ANXIN_CALL=call-7", "X=1"],
    )
    assert data == (
        b"Action: Originate\r\nActionID: anxin-7\r\nChannel: PJSIP/8101\r\nExten: 13900139000\r\n"
        b"Priority: 1\r\nVariable: ANXIN_CALL=call-7\r\nVariable: X=1\r\n\r\n"
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Exten": "139\r\nAction: Command\r\nCommand: core stop now"},
        {"Exten": "139\nX"},
        {"Exten": "139\x00\r"},
        {"Exten": "13900139000\x00"},  # C strings on the PBX's side end at a NUL: what follows is lost or worse
        {"CallerID": "Anxin\x1b[2J <8000>"},
        {"Bad\r\nKey": "v"},
        {"Key:Colon": "v"},
    ],
)
def test_header_injection_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(HeaderInjection):
        action("Originate", "anxin-1", headers)
    with pytest.raises(HeaderInjection):
        encode([("Action", "Ping"), ("ActionID", "a\rb")])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.sampled_from([data for data, _ in FRAMES.values()]),
            st.sampled_from([b"\r\n", b"\n", b": ", b"Event: ", b"\r\n\r\n"]),
        ),
        max_size=30,
    ),
    st.booleans(),
)
def test_fuzz_only_protocol_errors_escape(chunks: list[bytes], banner: bool) -> None:
    codec = AmiCodec(max_message=4096)
    stream = (BANNER if banner else b"") + b"".join(chunks)
    try:
        for i in range(0, len(stream), 13):
            for message in codec.receive_data(stream[i : i + 13]):
                assert isinstance(message, Message)
                assert all(isinstance(k, str) and isinstance(v, str) for k, v in message.headers)
    except ProtocolError:
        pass
    # nothing left buffered beyond the bound: the codec never holds more than one message's worth
    assert len(codec._buffer) <= 4096 + 256


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True), st.text(max_size=40), max_size=8))
def test_fuzz_actions_round_trip_or_refuse(headers: dict[str, str]) -> None:
    try:
        data = action("UserEvent", "anxin-1", headers)
    except HeaderInjection:
        assert any(any(ord(c) < 0x20 or c == "\x7f" for c in v) for v in headers.values())
        return
    (message,) = AmiCodec().receive_data(BANNER + data)
    assert message.get("Action") == "UserEvent"
    for key, value in headers.items():
        if key.casefold() not in ("action", "actionid"):
            assert value in message.get_all(key)
