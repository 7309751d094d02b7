"""The GT06 / Concox codec (gateway/gt06.py) against real packets, its documented policies, and fuzzing.

Every packet of ``vectors/gt06-traccar.jsonl`` (Traccar's Gt06ProtocolDecoderTest, see vectors/README.md) is a
test case with an explicit expectation (:data:`EXPECTED`: event kinds, alarm types, position, exact reply or
refusal), decoded on a connection that logged in first and followed by a heartbeat (so that a packet whose LEN
promises more bytes than it has is cut when the next packet comes, as on a live connection). Each is also
checked against what Traccar's own test asserts about it (``traccar_check``), except where the table notes why
Anxin decides otherwise. Every decoded event passes the shared invariants
(:func:`tests.fuzz.tracker_common.check_event`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.triage import URGENT_TYPES
from gateway.events import Decoded
from gateway.gt06 import PROTOCOL, REASONS, Gt06Codec, crc_itu, encode_packet, parse_packet
from tests.fuzz.fuzz_gt06 import CELL, GPS_BLOCK, LOGIN, NOW, SEEDS, check, check_decoded, mutate
from tests.fuzz.tracker_common import (
    Vector,
    check_event,
    cuts_from,
    events,
    load_vectors,
    ops_from,
    position,
    sprinkle,
)

VECTORS = load_vectors("gt06-traccar.jsonl")
IMEI = "864717003283581"  # of LOGIN
HEARTBEAT = bytes.fromhex("78780a13c40604000201298f5b0d0a")  # vector 122: serial 0x0129, the packet after each


@dataclass(frozen=True)
class E:
    """What one vector must decode to (all results of the packet together)."""

    kinds: str  # the events' kinds, in order, space-separated ("" when refused)
    alarms: str = ""  # the alarm events' types, in order
    at: tuple[float, float] | None = None  # (lat, lon) of the events to 5 decimals; None: no position
    reply: str | None = None  # every reply, concatenated, in hex; None: no reply
    error: str | None = None
    battery: int | None = None  # checked when given
    detail: dict[str, Any] | None = None  # a subset of the first event's detail, checked when given
    note: str = ""  # why this differs from what Traccar's test asserts, when it does


VARIANT = "a firmware variant whose layout Traccar picks by the device's model: not decoded here, info, no reply"
BAD_CRC = "CRC (and often LEN) wrong and no alarm in it: refused without reply (rule 4)"
WIFI = "a Wi-Fi packet sent without LEN and CRC: refused as a checksum failure (it carries no coordinates)"

EXPECTED: dict[int, E] = {
    0: E("", error="malformed"),  # a GPS packet with no INFO at all
    1: E("login", reply="78780501000955940d0a"),
    2: E("info"),
    3: E("alarm", alarms="watch_removed", at=(53.52817, -113.61012), reply="787805a4000963fe0d0a"),
    4: E("info"),
    5: E("position", reply="787805701ea4fefe0d0a"),
    6: E("info"),
    7: E("info", note=VARIANT),
    8: E("info"),
    9: E("info"),
    10: E("info"),
    11: E("position", at=(-43.89704, 79.27096), reply="78780595003767710d0a"),
    12: E("info", note=VARIANT),
    13: E("info"),
    14: E("info"),
    15: E("info"),
    16: E("checkin", reply="787805130040ba7c0d0a"),
    17: E("info"),
    18: E("info", note=VARIANT),
    19: E("info"),
    20: E("info"),
    21: E("position", at=(-22.89278, -47.09444), reply="78780531000ea7850d0a"),
    22: E("info"),
    23: E("info"),
    24: E("alarm", alarms="watch_removed", reply="787805161ec33ad30d0a", battery=93, detail={"alarm_byte": 0x13}),
    25: E("alarm", alarms="sos", at=(25.82744, -80.37646), reply="78780516035f41df0d0a", battery=62),
    26: E("position", at=(25.82744, -80.37646), reply="7878052203606d640d0a"),
    27: E("position", at=(-12.95536, 38.40756), reply="787805950119b6d50d0a"),
    28: E("position", at=(-12.93668, -38.39642), reply="787805a006edf5650d0a"),
    29: E("position", at=(-12.96135, -38.48291), reply="787805a00146a3b40d0a"),
    30: E("info"),
    31: E("alarm", alarms="sos", at=(18.48206, -69.93713), reply="78780516004b3d120d0a"),  # terminal SOS
    32: E("checkin", reply="7878051300069d4e0d0a", battery=67),
    33: E("info"),
    34: E("position", at=(12.64542, 101.98586), reply="7878051202382cdf0d0a"),
    35: E("alarm", alarms="low_battery", detail={"crc_ok": False}),  # bad CRC, alarm kept, no reply
    36: E("alarm", alarms="low_battery", at=(29.6702, 106.49152)),
    37: E("alarm", alarms="low_battery"),
    38: E("", error="checksum", note=BAD_CRC),
    39: E("alarm", alarms="watch_removed", reply="787805a5001929a30d0a"),
    40: E("checkin", reply="787805130177e6980d0a"),
    41: E("alarm", alarms="watch_removed", reply="78780526000733d40d0a"),
    42: E("info"),
    43: E("alarm", alarms="watch_removed", reply="78780516000487e10d0a"),
    44: E("info", note=VARIANT),
    45: E("info"),
    46: E("position", at=(-5.29294, -44.49186), reply="7878051201ddb6140d0a"),
    47: E("info"),
    48: E("info"),
    49: E("position", at=(43.97048, -79.26396), reply="78780511000628f60d0a"),
    50: E("position", reply="78780570004eb92b0d0a"),
    51: E("info"),
    52: E("", error="checksum", note=BAD_CRC),
    53: E("position", at=(23.11169, 114.4093), reply="787805220008a8420d0a"),
    54: E("position", at=(29.12527, -110.95918), reply="787805120ab866170d0a"),
    55: E("checkin", reply="787805135ee410b50d0a", battery=6),
    56: E("info"),
    57: E("info"),
    58: E("info"),
    59: E("info"),
    60: E("info"),
    61: E("info"),
    62: E("position", at=(-6.13588, 106.79224), reply="78780537002c734c0d0a"),
    63: E("info"),
    64: E("position", at=(22.57583, 113.91565), reply="78780526000d9c8e0d0a"),
    65: E("alarm", alarms="watch_removed", at=(22.99198, 113.38328), reply="78780516004b3d120d0a", battery=100),
    66: E("info"),
    67: E("position", at=(13.82229, 100.42177), reply="787805120017c69a0d0a"),
    68: E("position", reply="78780570000012510d0a"),
    69: E("alarm", alarms="sos", reply="78780595000133c40d0a"),  # Traccar's ALARM_GENERAL
    70: E(
        "", error="framing", note="the packet lacks its final 0A: a truncated packet (framing) once the next one starts"
    ),
    71: E("alarm", alarms="watch_removed", at=(43.89447, -79.27285), reply="78780570000545fc0d0a"),
    72: E("position", at=(43.89451, -79.27275), reply="78780570000677670d0a"),
    73: E("info"),
    74: E("position", at=(11.39191, 77.89064), reply="78780512006a6ef80d0a"),
    75: E("alarm", alarms="watch_removed", at=(23.05838, 113.38055), reply="787805160002e2d70d0a"),
    76: E("", error="checksum", note=WIFI),
    77: E("", error="checksum", note=WIFI),
    78: E("info"),
    79: E("info"),
    80: E("position", at=(29.11323, 48.12319), reply="787805347d9391e80d0a"),
    81: E("info"),
    82: E("alarm", alarms="sos", reply="787805190008074a0d0a", battery=50),  # alarm byte and terminal both SOS
    83: E("info"),
    84: E("info"),
    85: E("position", at=(47.06884, 15.44104), reply="787805220048ea460d0a"),
    86: E("checkin", reply="787805230008f29e0d0a"),
    87: E("position", at=(22.57699, 113.91689), reply="787805a40010eebe0d0a"),
    88: E("info"),
    89: E("alarm", alarms="watch_removed", at=(40.1962, -74.14239), reply="7878052700032f2c0d0a"),
    90: E("position", reply="78780522000573a70d0a"),
    91: E("info"),
    92: E("info"),
    93: E("checkin", reply="787805a50005f34e0d0a"),
    94: E("info"),
    95: E("info"),
    96: E("info"),
    97: E("position", at=(23.11169, 114.4093), reply="787805220008a8420d0a"),
    98: E("info"),
    99: E("", error="checksum", note=WIFI),
    100: E("", error="checksum", note=WIFI),
    101: E("", error="checksum", note=WIFI),
    102: E("", error="checksum", note=WIFI),
    103: E("", error="checksum", note=WIFI),
    104: E("", error="checksum", note=WIFI),
    105: E("", error="checksum", note=BAD_CRC),
    106: E("", error="checksum", note=WIFI),
    107: E("", error="checksum", note=WIFI),
    108: E("info"),
    109: E("info"),
    110: E("info"),
    111: E("position", at=(23.01064, 72.5072), reply="787805220006413c0d0a"),
    112: E("info"),
    113: E("position", reply="79790005320121bb650d0a"),
    114: E("position", reply="7979000532010a24b40d0a"),
    115: E("", error="checksum", note=BAD_CRC),
    116: E("position", at=(-6.13338, 106.99505), reply="797900053200bcedd10d0a"),
    117: E("position", reply="797900053200b204af0d0a"),
    118: E("login", reply="78780501010a7ed70d0a"),
    119: E("info"),
    120: E("position", at=(28.56237, 77.20652), reply="78780534010bd04d0d0a"),
    121: E("position", at=(28.56239, 77.20643), reply="787805341bdc1a9e0d0a"),
    122: E("checkin", reply="7878051301295d630d0a"),
    123: E("position", at=(21.39836, 72.96277), reply="7878051204a605f80d0a"),
    124: E("position", at=(23.01064, 72.5072), reply="787805220006413c0d0a"),
    125: E("info"),
    126: E("info"),
    127: E("info"),
    128: E("position", at=(54.73933, 25.27327), detail={"source": "text"}),
    129: E("info"),
    130: E("info"),
    131: E("info"),
    132: E("info"),
    133: E("info"),
    134: E("info"),
    135: E("alarm", alarms="mains_loss", at=(-19.99159, -43.90412), reply="787805160067d67c0d0a"),
    136: E("info"),
    137: E("info"),
    138: E("info"),
    139: E("login", reply="787805010001d9dc0d0a"),
    140: E("login", reply="787805010003face0d0a"),
    141: E("checkin", reply="7878051301bafb710d0a"),
    142: E("position", at=(23.11168, 114.40925), reply="78780516001c1b280d0a"),
    143: E("position", at=(54.94535, 24.01762), reply="787805120003903f0d0a"),
    144: E("position", at=(16.63471, 80.96708), reply="787805120576caad0d0a"),
    145: E("", error="checksum", note=BAD_CRC),
    146: E("position", at=(23.11168, 114.40921), reply="78780510001ccdf10d0a"),
    147: E("position", at=(23.11175, 114.40923), reply="78780512000f5a530d0a"),
    148: E("position", at=(23.11171, 114.4092), reply="7878051600084d8d0d0a"),
    149: E("position", at=(-34.30438, -58.97528), reply="78780510007247890d0a"),
    150: E("position", at=(-16.544, -68.07428), reply="7878051e01203fdd0d0a"),
    151: E("info info info"),
    152: E("info"),
    153: E("position", at=(-19.59568, -46.93255), reply="78780522021335a00d0a"),
    154: E("login", reply="787805010002eb470d0a"),
    155: E("", error="checksum"),
    156: E("info"),
    157: E("position", at=(27.46371, 76.04256), reply="787805120142da6a0d0a"),
    158: E("position", at=(27.46665, 76.0437), reply="7878051601409a190d0a"),
    159: E("", error="checksum"),
    160: E("", error="checksum", note=WIFI),
    161: E("", error="framing"),
    162: E(
        "position",
        at=(23.11168, 114.40924),
        note="an address request: the fix it carries is kept as a position; no address is sent back",
    ),
    163: E("info", reply="78780b8a1a09150e0d1400065d8f0d0a"),  # the time: 26-09-21 14:13:20
    164: E("info", reply="78780595000133c40d0a"),
    165: E("", error="checksum"),
    166: E("", error="checksum"),
    167: E("alarm", alarms="sos", at=(50.0, 19.0), detail={"crc_ok": False}),  # bad CRC, SOS kept, no reply
    168: E("", error="checksum"),
    169: E("checkin", reply="787805130ccf6f230d0a"),
    170: E(
        "alarm",
        alarms="low_battery",
        at=(43.87483, -79.25817),
        reply="7878051606c361820d0a",
        note="alarm byte 0x19 is low battery on GT06 watches; Traccar reads acceleration only for LW models",
    ),
    171: E("checkin", reply="787805130224acee0d0a"),
    172: E("checkin", reply="7878051316065c0f0d0a"),
    173: E("position", reply="7878052201d68e690d0a"),
    174: E("", error="checksum", note=BAD_CRC),
    175: E("position", reply="7878052201d68e690d0a"),
    176: E("info"),
    177: E("position", at=(-6.85893, 39.21972), reply="7878051604babc740d0a"),
    178: E(
        "position",
        reply="78780512003c594b0d0a",
        note="an IMEI-prefixed variant of 0x12: its date-time does not read, no position",
    ),
    179: E("position", at=(20.02037, 110.36033), reply="7878052202a5e51d0d0a"),
    180: E("position", at=(23.11177, 114.40935), reply="787805a00009009f0d0a"),
    181: E("position", at=(45.80266, 8.88794), reply="787805700ce27fed0d0a"),
    182: E("info", note=VARIANT),
    183: E("info"),
    184: E("info"),
    185: E("position", at=(22.60207, 113.83204), reply="78780516002794780d0a"),
    186: E("position", at=(22.60204, 113.83196), reply="78780516000c0ba90d0a"),
}

#: Traccar alarm names and the Anxin alarm type each becomes (None: a vehicle alarm, no Anxin alarm).
TRACCAR_ALARMS: dict[str, str | None] = {
    "Position.ALARM_SOS": "sos",
    "Position.ALARM_GENERAL": "sos",  # the JC100 short alarm packet: a device alarm of no stated kind
    "Position.ALARM_REMOVING": "watch_removed",
    "Position.ALARM_TAMPERING": "watch_removed",
    "Position.ALARM_LOW_BATTERY": "low_battery",
    "Position.ALARM_ACCELERATION": None,
    "Position.ALARM_BRAKING": None,
    "Position.ALARM_ACCIDENT": None,
}


def logged_in() -> Gt06Codec:
    codec = Gt06Codec()
    (login,) = codec.receive_data(LOGIN, NOW)
    assert login.events[0].kind == "login" and codec.imei == IMEI
    return codec


def decode(frame: bytes) -> list[Decoded]:
    """The results of ``frame`` on a logged-in connection, the heartbeat after it taken off."""
    results = logged_in().receive_data(frame + HEARTBEAT, NOW)
    for decoded in results:
        check_decoded(decoded, NOW)
    *results, last = results
    assert last.events[0].code == "GT06:13" and last.events[0].detail["serial"] == 0x0129
    return results


def vector_id(vector: Vector) -> str:
    return f"{vector.index:03d}-{vector.check}"


def test_every_vector_has_an_expectation() -> None:
    assert sorted(EXPECTED) == [vector.index for vector in VECTORS]


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_vector(vector: Vector) -> None:
    expected = EXPECTED[vector.index]
    results = decode(vector.frame)
    found = events(results)
    assert " ".join(e.kind for e in found) == expected.kinds
    assert " ".join(e.alarm_type or "" for e in found if e.kind == "alarm") == expected.alarms
    assert position(results) == expected.at
    replies = [d.reply for d in results if d.reply is not None]
    assert (b"".join(replies).hex() if replies else None) == expected.reply
    assert " ".join(d.error for d in results if d.error) == (expected.error or "")
    if expected.battery is not None:
        assert {e.battery for e in found} == {expected.battery}
    if expected.detail is not None:
        assert found[0].detail.items() >= expected.detail.items(), found[0].detail
    if vector.frame[3] != 0x01:  # a login names its own device
        assert all(e.device_id == IMEI for e in found)


AGREEING = [vector for vector in VECTORS if not EXPECTED[vector.index].note]


@pytest.mark.parametrize("vector", AGREEING, ids=vector_id)
def test_vector_agrees_with_traccar(vector: Vector) -> None:
    """Traccar's assertion holds for every vector whose expectation carries no note saying otherwise."""
    results = decode(vector.frame)
    found = events(results)
    located = [e for e in found if e.lat is not None]
    name, _, value = vector.expectation.partition(", ")
    if vector.check == "verifyPosition":
        assert located
    elif vector.check == "verifyNull":
        assert not located
    elif name == "Position.KEY_ALARM":
        wanted = TRACCAR_ALARMS[value]
        assert [e.alarm_type for e in found if e.kind == "alarm"] == ([wanted] if wanted else [])
    else:
        assert found


def test_deviations_are_few_and_explained() -> None:
    notes = {index: e.note for index, e in EXPECTED.items() if e.note}
    assert len(notes) == 26
    assert all(len(note) > 20 for note in notes.values())


@pytest.mark.parametrize("vector", [v for v in VECTORS if v.frame[3] != 0x01], ids=vector_id)
def test_nothing_is_accepted_before_login(vector: Vector) -> None:
    codec = Gt06Codec()
    results = codec.receive_data(vector.frame + HEARTBEAT, NOW)
    assert results and all(d.error is not None and d.reply is None and not d.events for d in results)
    assert results[-1].error == "not logged in"
    assert {d.error for d in results} <= {"not logged in", "framing"}
    assert codec.imei is None


# -- CRC, packets, replies ----------------------------------------------------------------------------------


def test_crc_itu_is_crc16_x25() -> None:
    assert crc_itu(b"123456789") == 0x906E  # the catalogue check value of CRC-16/X-25
    # the login answer printed in the GT06 protocol document, serial 1
    assert encode_packet(0x01, b"", 1) == bytes.fromhex("787805010001D9DC0D0A")
    assert parse_packet(bytes.fromhex("78780D01012345678901234500018CDD0D0A")).crc_ok  # its login example


def test_encode_packet_forms_and_limits() -> None:
    short = encode_packet(0x12, GPS_BLOCK, 7)
    assert short[:3] == b"\x78\x78\x17" and parse_packet(short).info == GPS_BLOCK
    long = encode_packet(0x12, GPS_BLOCK + bytes(300), 8)
    assert long[:4] == b"\x79\x79\x01\x43" and parse_packet(long).extended and parse_packet(long).crc_ok
    assert encode_packet(0x12, GPS_BLOCK, 7, extended=True)[:2] == b"\x79\x79"
    for bad in ((0x100, b"", 0), (0x12, b"", 0x10000), (0x12, bytes(0x10000), 0)):
        with pytest.raises(ValueError):
            encode_packet(*bad)
    with pytest.raises(ValueError):
        encode_packet(0x12, bytes(300), 0, extended=False)


def corrupt(packet: bytes) -> bytes:
    """``packet`` with its CRC wrong."""
    return packet[:-4] + bytes([packet[-4] ^ 0xFF]) + packet[-3:]


SOS_PACKET = encode_packet(0x16, GPS_BLOCK + CELL + bytes.fromhex("0406040102"), 0x21)  # alarm byte 0x01: SOS


def test_crc_policy_keeps_alarms_and_refuses_the_rest() -> None:
    codec = logged_in()
    sos, gps, heartbeat = codec.receive_data(
        corrupt(SOS_PACKET) + corrupt(encode_packet(0x12, GPS_BLOCK + CELL[1:], 0x22)) + corrupt(HEARTBEAT), NOW
    )
    (event,) = sos.events
    assert (event.alarm_type, event.lat, event.lon) == ("sos", 24.51, 117.7)
    assert event.detail["crc_ok"] is False
    assert (sos.reply, sos.error) == (None, None)  # kept, not answered: the device repeats it
    assert [(d.error, d.reply, d.events) for d in (gps, heartbeat)] == [("checksum", None, ())] * 2
    assert codec.counters["checksum_alarm_kept"] == 1 and codec.counters["checksum"] == 2
    (clean,) = codec.receive_data(SOS_PACKET, NOW)
    assert clean.reply == encode_packet(0x16, b"", 0x21) and "crc_ok" not in clean.events[0].detail


def test_login_with_bad_crc_does_not_log_in() -> None:
    codec = Gt06Codec()
    (refused,) = codec.receive_data(corrupt(LOGIN), NOW)
    assert (refused.error, refused.reply, codec.imei) == ("checksum", None, None)
    (sos,) = codec.receive_data(SOS_PACKET, NOW)
    assert sos.error == "not logged in" and not sos.events


def test_login_remembers_the_imei_and_a_second_login_replaces_it() -> None:
    codec = logged_in()
    (again,) = codec.receive_data(encode_packet(0x01, bytes.fromhex("0123456789012345100B3201"), 2), NOW)
    assert codec.imei == "123456789012345" and codec.counters["relogin"] == 1
    assert again.events[0].detail["type_id"] == "100b"
    (sos,) = codec.receive_data(SOS_PACKET, NOW)
    assert sos.events[0].device_id == "123456789012345"
    (bad,) = codec.receive_data(encode_packet(0x01, bytes.fromhex("0A23456789012345"), 3), NOW)
    assert bad.error == "malformed" and codec.imei == "123456789012345"


def test_an_unknown_imei_gets_no_login_ack_and_no_session() -> None:
    """Rule 3a: with the registry's lookup, an IMEI nobody registered is refused; a registered one logs in."""
    known = {IMEI}
    codec = Gt06Codec(known=known.__contains__)
    stranger = encode_packet(0x01, bytes.fromhex("0123456789012345100B3201"), 1)
    (refused,) = codec.receive_data(stranger, NOW)
    assert (refused.error, refused.reply, codec.imei) == ("unknown device", None, None)
    (counted,) = refused.events  # for the core's count of unregistered devices, not a session
    assert (counted.device_id, counted.kind, counted.detail) == ("123456789012345", "checkin", {"refused": "login"})
    check_decoded(refused, NOW)
    (sos,) = codec.receive_data(SOS_PACKET, NOW)
    assert sos.error == "not logged in" and sos.reply is None and not sos.events
    (login,) = codec.receive_data(LOGIN, NOW)
    assert login.error is None and login.reply is not None and login.reply[3] == 0x01 and codec.imei == IMEI
    (again,) = codec.receive_data(stranger, NOW)  # a logged-in connection cannot switch to an unknown IMEI
    assert again.error == "unknown device" and codec.imei == IMEI
    assert codec.counters["unknown_device"] == 2 and "unknown device" in REASONS


def test_unknown_logins_follow_the_policy_through_the_registry_factory() -> None:
    from gateway.gt06 import SPEC
    from gateway.registry import DevicePolicy

    stranger = encode_packet(0x01, bytes.fromhex("0123456789012345100B3201"), 1)
    refusing = SPEC.stream(lambda _id: None, known={IMEI}.__contains__)  # the default policy: refuse
    accept = DevicePolicy(gt06_unknown_login="accept")
    accepting = SPEC.stream(lambda _id: None, known={IMEI}.__contains__, policy=accept)
    without_registry = SPEC.stream(lambda _id: None)  # tests and simulators: every login accepted
    assert [d.error for d in refusing.receive_data(stranger, NOW)] == ["unknown device"]
    assert [d.error for d in refusing.receive_data(LOGIN, NOW)] == [None]
    assert [d.error for d in accepting.receive_data(stranger, NOW)] == [None]
    assert [d.error for d in without_registry.receive_data(stranger, NOW)] == [None]


def test_heartbeat_is_a_checkin_and_raises_no_alarm() -> None:
    (decoded,) = logged_in().receive_data(encode_packet(0x13, bytes.fromhex("2404040102"), 5), NOW)
    (event,) = decoded.events
    assert (event.kind, event.battery, event.alarm_type) == ("checkin", 67, None)
    assert event.detail["terminal"]["alarm"] == "SOS"  # recorded, not raised (rule 6)
    assert decoded.reply == encode_packet(0x13, b"", 5)
    assert decoded.reply[:6] == bytes.fromhex("787805130005") and decoded.reply[-2:] == b"\r\n"


def test_alarm_byte_and_terminal_field_raise_one_event_per_type() -> None:
    both_sos = encode_packet(0x16, GPS_BLOCK + CELL + bytes.fromhex("2406040102"), 6)
    fall_and_sos = encode_packet(0x26, GPS_BLOCK + CELL + bytes.fromhex("2406042302"), 7)
    codec = logged_in()
    one, two = codec.receive_data(both_sos + fall_and_sos, NOW)
    assert [(e.alarm_type, e.code) for e in one.events] == [("sos", "GT06:16:01")]
    assert [(e.alarm_type, e.code) for e in two.events] == [("fall", "GT06:26:23"), ("sos", "GT06:26:T4")]
    assert urgent(one) and urgent(two)
    when = datetime(2026, 9, 21, 14, tzinfo=UTC).timestamp()
    assert all((e.lat, e.lon, e.battery, e.device_time) == (24.51, 117.7, 100, when) for e in two.events)


def test_alarm_without_fix_gives_no_location_but_keeps_the_last_known_one() -> None:
    no_fix = GPS_BLOCK[:-2] + b"\x04\x00"  # north, not positioned
    (decoded,) = logged_in().receive_data(encode_packet(0x16, no_fix + CELL + bytes.fromhex("0406040102"), 8), NOW)
    (event,) = decoded.events
    assert (event.alarm_type, event.lat, event.lon) == ("sos", None, None)
    assert event.detail["last_known"] == [24.51, 117.7] and event.detail["fix"] == "last_known"
    (report,) = logged_in().receive_data(encode_packet(0x12, no_fix + CELL[1:], 9), NOW)
    assert (report.events[0].lat, report.events[0].detail["fix"]) == (24.51, "last_known")


def test_south_west_and_out_of_range_coordinates() -> None:
    south_west = GPS_BLOCK[:-2] + b"\x18\x00"  # positioned, west, not north
    (decoded,) = logged_in().receive_data(encode_packet(0x12, south_west, 10), NOW)
    assert (decoded.events[0].lat, decoded.events[0].lon) == (-24.51, -117.7)
    too_far = GPS_BLOCK[:7] + (91 * 1_800_000).to_bytes(4, "big") + GPS_BLOCK[11:]
    (far,) = logged_in().receive_data(encode_packet(0x12, too_far, 11), NOW)
    assert far.events[0].lat is None and far.events[0].detail["fix"] == "none"


def test_lbs_alarm_without_gps() -> None:
    packet = encode_packet(0x19, CELL[1:] + bytes.fromhex("2405040002"), 12)  # terminal SOS, no alarm byte
    (decoded,) = logged_in().receive_data(packet, NOW)
    (event,) = decoded.events
    assert (event.kind, event.alarm_type, event.lat, event.battery) == ("alarm", "sos", None, 83)
    assert decoded.reply == encode_packet(0x19, b"", 12)


def test_time_request_is_answered_with_utc_now() -> None:
    (decoded,) = logged_in().receive_data(encode_packet(0x8A, b"", 13), NOW)
    assert decoded.reply == encode_packet(0x8A, bytes([26, 9, 21, 14, 13, 20]), 13)


def test_future_time_is_dropped() -> None:
    future = bytes([30, 1, 1, 0, 0, 0]) + GPS_BLOCK[6:]
    codec = logged_in()
    (decoded,) = codec.receive_data(encode_packet(0x12, future, 14), NOW)
    assert decoded.events[0].device_time is None and codec.counters["future_time"] == 1


def test_unknown_types_are_info_without_reply() -> None:
    codec = logged_in()
    (decoded,) = codec.receive_data(encode_packet(0x94, b"\x00\x01\x02", 15), NOW)
    assert (decoded.events[0].kind, decoded.reply) == ("info", None)
    assert decoded.events[0].detail["proto"] == "0x94" and codec.counters["unsupported"] == 1


def test_a_bug_in_a_decoder_is_contained(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object) -> object:
        raise KeyError("bug")

    codec = logged_in()
    monkeypatch.setattr(codec, "_status", broken)
    results = codec.receive_data(SOS_PACKET + HEARTBEAT, NOW)
    assert [d.error for d in results] == ["internal", None]
    assert codec.counters["internal"] == 1 and "internal error" in caplog.text


# -- framing ------------------------------------------------------------------------------------------------


def stream() -> bytes:
    return LOGIN + b"".join(vector.frame + HEARTBEAT for vector in VECTORS)


def test_byte_by_byte_equals_one_read() -> None:
    data = stream()
    whole = Gt06Codec().receive_data(data, NOW)
    codec = Gt06Codec()
    trickled = [decoded for i in range(len(data)) for decoded in codec.receive_data(data[i : i + 1], NOW)]
    assert trickled == whole
    assert codec.buffered == 0
    assert len(whole) == 1 + len(VECTORS) * 2 + 2  # vector 151 holds three packets
    for decoded in whole:
        check_decoded(decoded, NOW)


def test_many_packets_in_one_read_with_garbage_between() -> None:
    codec = Gt06Codec()
    results = codec.receive_data(b"\x00\xff" + LOGIN + b"junk" + SOS_PACKET + HEARTBEAT + b"\x0d\x0a", NOW)
    assert [d.events[0].kind for d in results] == ["login", "alarm", "checkin"]
    assert all(d.reply is not None for d in results)
    assert codec.counters["garbage_bytes"] == 2 + 4 + 2 and codec.buffered == 0
    # a stray start byte makes "78 78 78 ...": one framing error, and the packet after it is not held back
    results = codec.receive_data(b"\x78" + HEARTBEAT, NOW)
    assert [(d.error, d.reply is not None) for d in results] == [("framing", False), (None, True)]


def test_a_packet_split_anywhere_waits_for_its_end() -> None:
    payload_stop = bytes.fromhex("7979000E9B0332382E33A1E60D0A0289BE490D0A")  # 0D 0A inside, LEN right
    for packet in (SOS_PACKET, payload_stop):
        for cut in range(1, len(packet)):
            codec = logged_in()
            assert codec.receive_data(packet[:cut], NOW) == []
            (decoded,) = codec.receive_data(packet[cut:], NOW)
            assert decoded.error is None and decoded.events


def test_wrong_length_byte_ends_at_the_stop_bits_and_is_counted() -> None:
    codec = logged_in()
    too_short = bytearray(encode_packet(0x12, GPS_BLOCK + CELL[1:], 16))
    too_short[2] -= 3
    (decoded,) = codec.receive_data(bytes(too_short), NOW)
    assert decoded.error == "checksum" and codec.counters["length_mismatch"] == 1  # LEN is in the CRC
    too_long = bytearray(LOGIN)
    too_long[2] += 4
    assert codec.receive_data(bytes(too_long), NOW) == []  # waits: 0D 0A may be payload
    results = codec.receive_data(HEARTBEAT, NOW)
    assert [d.error for d in results] == ["checksum", None]


def test_truncated_packet_before_a_good_one_is_one_framing_error() -> None:
    codec = logged_in()
    results = codec.receive_data(SOS_PACKET[:20] + HEARTBEAT, NOW)
    assert [d.error for d in results] == ["framing", None]
    assert codec.counters["truncated"] == 1


def test_oversized_packet_is_dropped_and_the_codec_resyncs() -> None:
    codec = Gt06Codec(max_frame=64)
    codec.receive_data(LOGIN, NOW)
    results = codec.receive_data(b"\x79\x79\xff\xff\x12" + bytes(100), NOW)
    assert [d.error for d in results] == ["framing"] and codec.counters["oversize"] == 1
    assert codec.buffered <= 64
    results = codec.receive_data(HEARTBEAT, NOW)
    assert [d.events[0].kind for d in results] == ["checkin"]


def test_every_event_keeps_the_invariants() -> None:
    for decoded in Gt06Codec().receive_data(stream(), NOW):
        assert decoded.error is None or decoded.error in REASONS
        for event in decoded.events:
            check_event(event, PROTOCOL, NOW)


# -- fuzzing ------------------------------------------------------------------------------------------------

#: a few thousand inputs here; a million per codec in `make reliability` (tests/reliability/fuzzing.py)
FUZZ = settings(max_examples=3_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPECIAL = b"\x78\x79\x0d\x0a\x01\x05\x13\x16\x00"


@FUZZ
@given(login=st.booleans(), noise=st.binary(max_size=300), cuts=st.binary(max_size=24))
def test_fuzz_arbitrary_bytes(login: bool, noise: bytes, cuts: bytes) -> None:
    check((LOGIN if login else b"") + sprinkle(noise, SPECIAL), cuts_from(cuts))


@FUZZ
@given(picks=st.binary(min_size=1, max_size=3), ops=st.binary(max_size=30), cuts=st.binary(max_size=24))
def test_fuzz_mutated_packets(picks: bytes, ops: bytes, cuts: bytes) -> None:
    check(mutate([LOGIN, *(SEEDS[p % len(SEEDS)] for p in picks)], ops_from(ops)), cuts_from(cuts))


def urgent(decoded: Decoded) -> bool:
    """Whether the core's intake puts this frame ahead of routine traffic."""
    return any(e.kind == "alarm" and e.alarm_type in URGENT_TYPES for e in decoded.events)


def test_a_device_time_before_2000_is_no_time() -> None:
    """A modular (0x70) position whose clock was never set (121 s after 1970): the fix is kept, its time is not."""
    frame = bytes.fromhex(
        "797900a87000000001020035000100003300125d62bf3a0800e804b5994308814a87001d5d00340006115d62bf2900001100"
        "0a012e02620000000000000001000803537601000129800002000803102608593397620003000a8901260852293397626600"
        "180002017d002b000116002c00045d6278ea0009000108000a00010b002800010b002e00040000f0c1002a00010000290004"
        "000000be0030000a000100b4000a00b402d00006c5490d0a"
    )
    packet = parse_packet(frame)
    info = packet.info.replace(bytes.fromhex("5d62bf3a"), (121).to_bytes(4, "big"), 1)
    unset = encode_packet(0x70, info, packet.serial, extended=True)
    codec = Gt06Codec()
    codec.receive_data(LOGIN, NOW)
    (decoded,) = codec.receive_data(unset, NOW)
    check_decoded(decoded, NOW)
    (position,) = decoded.events
    assert position.lat is not None and position.device_time is None and codec.counters["unset_time"] == 1
