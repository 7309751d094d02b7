"""The 3G/4G watch codec (gateway/watch.py) against real frames, its documented policies, and fuzzing.

Every frame of ``vectors/watch-traccar.jsonl`` (Traccar's WatchProtocolDecoderTest, see vectors/README.md) is a
test case with an explicit expectation (:data:`EXPECTED`: event kinds, alarm types, position, exact reply), and
is also checked against what Traccar's own test asserts about it (``traccar_check``), except where the table
notes why Anxin decides otherwise. Every decoded event passes the shared invariants
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
from gateway.watch import PROTOCOL, REASONS, WatchCodec, parse_frame, unescape
from tests.fuzz.fuzz_watch import NOW, SEEDS, check, check_decoded, mutate
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

VECTORS = load_vectors("watch-traccar.jsonl")


@dataclass(frozen=True)
class E:
    """What one vector must decode to (all results of the bytes together)."""

    kinds: str  # the events' kinds, in order, space-separated
    alarms: str = ""  # the alarm events' types, in order
    at: tuple[float, float] | None = None  # (lat, lon) of the events to 5 decimals; None: no position
    reply: bytes | None = None  # every reply, concatenated; None: no reply
    error: str | None = None
    battery: int | None = None  # checked when given
    detail: dict[str, Any] | None = None  # a subset of the first event's detail, checked when given
    note: str = ""  # why this differs from what Traccar's test asserts, when it does


NO_FIX_ALARM = "an alarm without a fix (V, zero coordinates): no location; the core uses the home address"
STALE_ALARM = "an alarm without a fix (V): the last known fix goes to detail, not to lat/lon (rule 7)"
NO_FIX = "V with zero coordinates: no position"

EXPECTED: dict[int, E] = {
    0: E("alarm", "sos", reply=b"[3G*6907919734*0002*AL]", detail={"bits": [16], "fix": "none"}),
    1: E("health", detail={"spo2": 98}),
    2: E("position", battery=67, detail={"fix": "none"}, note=NO_FIX),
    3: E("alarm", "sos", reply=b"[SG*9059011020*0002*AL]", detail={"inferred": True}, note=STALE_ALARM),
    4: E("position", at=(54.42762, -6.40919), battery=88, detail={"fix": "valid", "satellites": 8}),
    5: E("health", detail={"body_temp_c": 36.5}),
    6: E("alarm", "watch_removed", reply=b"[ZJ*689466020014198*0003*0002*AL]", detail={"bits": [20]}),
    7: E(
        "info info info info info info",
        reply=b"".join(b"[ZJ*789468050042692*%04d*0007*JXTKR,1]" % index for index in range(34, 40)),
        detail={"name": "watch_7_20220526093954", "part": "1", "parts": "6", "payload_bytes": 1024},
    ),
    8: E("position", at=(22.76116, 114.36019), battery=64),
    9: E("health", detail={"body_temp_c": 35.29}),
    10: E("position", at=(59.55285, 16.66185), battery=70),
    11: E("position", at=(41.465, -81.53128), battery=70),
    12: E("position", at=(32.16265, 34.88875), battery=83),
    13: E(
        "alarm",
        "watch_removed",
        reply=b"[3G*358839237678820*0002*AL]",
        detail={"bits": [20]},
        note="ALCUSTOMER1, V and zero coordinates: an alarm (bit 20) without a location",
    ),
    14: E("position", battery=92, note=NO_FIX),
    15: E("alarm", "sos", reply=b"[3G*8809008845*0002*AL]", note=NO_FIX_ALARM),
    16: E("position", at=(43.37337, -71.15762), battery=79),
    17: E("alarm", "watch_removed", at=(22.53621, 113.93867), reply=b"[ZJ*014111001332708*0075*0002*AL]"),
    18: E("position", at=(28.43514, -81.35433), battery=100, detail={"fix": "last_known"}),
    19: E("health", detail={"systolic": 120, "diastolic": 79, "heart_rate": 73}),
    20: E("health", detail={"systolic": 109, "diastolic": 68}),
    21: E("alarm", "fall", at=(47.08395, 15.48218), reply=b"[3G*8308373902*0002*AL]", detail={"bits": [21]}),
    22: E("position", at=(28.43514, -81.35433), battery=100),
    23: E("position", at=(18.5122, 73.77503), battery=82, detail={"status_flags": ["motion"]}),
    24: E("position", at=(54.73962, 25.27321), battery=83),
    25: E("alarm", "sos", reply=b"[SG*9051004074*0002*AL]", detail={"inferred": True}, note=STALE_ALARM),
    26: E("position", at=(52.74545, 0.36951), battery=5),
    27: E("position", at=(9.95186, -84.14221), battery=94),  # "-84.1422119,W": the minus sign is kept
    28: E("position", at=(-33.48037, -70.76307), battery=34),  # Traccar: -33.48037, -70.76307
    29: E("position", at=(48.77905, 9.15747), battery=83),
    30: E("position", at=(48.77905, 9.15747), battery=77, detail={"fix": "valid"}),
    31: E("checkin", reply=b"[SG*9081000548*0002*LK]"),  # "LK,0,100": two fields, no battery read
    32: E("position", at=(-16.47906, 68.11907), battery=80),
    33: E("position", at=(38.0, -9.0), battery=86),
    34: E("info", reply=b"[3G*8800000015*0003*TKQ]"),
    35: E("position", at=(45.8531, 14.62249), battery=61),
    36: E("checkin", reply=b"[SG*8800000015*0002*LK]"),
    37: E("checkin", reply=b"[3G*4700186508*0002*LK]", battery=100, detail={"steps": 0}),
    38: E("position", at=(22.57171, 113.8614), battery=90),  # Traccar: 22.57171, 113.86140
    39: E("position", at=(22.57171, 113.8614), battery=90),
    40: E("position", at=(22.57171, 113.8614), battery=90),
    41: E("alarm", "low_battery", at=(22.57171, 113.8614), reply=b"[SG*8800000015*0002*AL]", detail={"bits": [0]}),
    42: E("health", detail={"heart_rate": 72}),
    43: E("info", detail={"note": "no reading"}),  # "heart,0": not measured
    44: E("health", detail={"heart_rate": 71}),
    45: E("position", battery=19, note=NO_FIX),
    46: E("position", battery=19, note=NO_FIX),
    47: E("position", battery=18, note=NO_FIX),
    48: E("position", battery=98, note=NO_FIX),
}

#: Traccar alarm names and the Anxin alarm type each becomes.
TRACCAR_ALARMS = {
    "Position.ALARM_SOS": "sos",
    "Position.ALARM_REMOVING": "watch_removed",
    "Position.ALARM_FALL_DOWN": "fall",
    "Position.ALARM_LOW_BATTERY": "low_battery",
}
#: Traccar attributes and the health reading each becomes.
TRACCAR_READINGS = {'"bloodOxygen"': "spo2", "Position.PREFIX_TEMP + 1": "body_temp_c"}


def decode(frame: bytes) -> list[Decoded]:
    results = WatchCodec().receive_data(frame, NOW)
    for decoded in results:
        check_decoded(decoded, NOW)
    return results


def vector_id(vector: Vector) -> str:
    return f"{vector.index:02d}-{vector.check}"


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
    assert (b"".join(replies) if replies else None) == expected.reply
    assert " ".join(d.error for d in results if d.error) == (expected.error or "")
    if expected.battery is not None:
        assert {e.battery for e in found} == {expected.battery}
    if expected.detail is not None:
        assert found[0].detail.items() >= expected.detail.items(), found[0].detail
    header = parse_frame(vector.frame[: vector.frame.index(b"]") + 1])
    assert {e.device_id for e in found} == {header.device_id}


AGREEING = [vector for vector in VECTORS if not EXPECTED[vector.index].note]


@pytest.mark.parametrize("vector", AGREEING, ids=vector_id)
def test_vector_agrees_with_traccar(vector: Vector) -> None:
    """Traccar's assertion holds for every vector whose expectation carries no note saying otherwise."""
    found = events(decode(vector.frame))
    assert found
    located = [e for e in found if e.lat is not None]
    name, _, value = vector.expectation.partition(", ")
    if vector.check == "verifyPosition":
        assert located
    elif vector.check == "verifyNull":
        assert not located
    elif name == "Position.KEY_ALARM":
        assert [e.alarm_type for e in found if e.kind == "alarm"] == [TRACCAR_ALARMS[value]]
    elif name in TRACCAR_READINGS:
        assert found[0].kind == "health"
        assert found[0].detail[TRACCAR_READINGS[name]] == float(value)


def test_deviations_are_few_and_explained() -> None:
    notes = {index: e.note for index, e in EXPECTED.items() if e.note}
    assert set(notes) == {2, 3, 13, 14, 15, 25, 45, 46, 47, 48}
    assert all(len(note) > 20 for note in notes.values())


def test_length_field_is_not_trusted_but_counted() -> None:
    codec = WatchCodec()
    results = codec.receive_data(b"".join(vector.frame for vector in VECTORS), NOW)
    assert all(decoded.error is None for decoded in results)
    assert codec.counters["length_mismatch"] == 14  # the vectors whose LLLL is wrong, all accepted
    assert codec.counters["frames"] == len(VECTORS) + 5  # vector 7 holds six frames


# -- framing ----------------------------------------------------------------------------------------------


def test_byte_by_byte_equals_one_read() -> None:
    stream = b"".join(vector.frame for vector in VECTORS)
    whole = WatchCodec().receive_data(stream, NOW)
    codec = WatchCodec()
    trickled = [decoded for i in range(len(stream)) for decoded in codec.receive_data(stream[i : i + 1], NOW)]
    assert trickled == whole
    assert len(whole) == len(VECTORS) + 5
    assert codec.buffered == 0


def test_many_frames_in_one_read_with_garbage_between() -> None:
    frames = [b"[3G*1234567890*0002*LK]", b"[SG*1234567890*0003*TKQ]", b"[3G*1234567890*0008*heart,70]"]
    codec = WatchCodec()
    results = codec.receive_data(b"\r\n".join(frames) + b"noise", NOW)
    assert [d.reply for d in results] == [b"[3G*1234567890*0002*LK]", b"[SG*1234567890*0003*TKQ]", None]
    assert codec.counters["garbage_bytes"] == 2 + 2 + 5
    assert codec.buffered == 0


def test_a_frame_split_anywhere_waits_for_its_end() -> None:
    frame = b"[3G*1234567890*000A*LK,50,0,77]"
    for cut in range(1, len(frame)):
        codec = WatchCodec()
        assert codec.receive_data(frame[:cut], NOW) == []
        assert codec.buffered == cut
        (decoded,) = codec.receive_data(frame[cut:], NOW)
        assert decoded.events[0].battery == 77


def test_truncated_frame_is_one_framing_error_then_resync() -> None:
    codec = WatchCodec()
    results = codec.receive_data(b"[3G*1234567890*00C0*UD,0101[3G*1234567890*0002*LK]", NOW)
    assert [d.error for d in results] == ["framing", None]
    assert results[1].reply == b"[3G*1234567890*0002*LK]"
    assert codec.counters["truncated"] == 1


def test_oversized_frame_is_dropped_and_the_codec_resyncs() -> None:
    codec = WatchCodec(max_frame=64)
    assert codec.receive_data(b"[3G*1234567890*FFFF*TK," + bytes(30), NOW) == []
    results = codec.receive_data(bytes(30), NOW)
    assert [d.error for d in results] == ["framing"]
    assert codec.buffered == 0
    results = codec.receive_data(b"...]x[3G*1234567890*0002*LK]", NOW)
    assert [d.reply for d in results] == [b"[3G*1234567890*0002*LK]"]
    assert codec.counters["oversize"] == 1
    too_long = WatchCodec(max_frame=64).receive_data(b"[3G*1234567890*0060*TK," + bytes(60) + b"]", NOW)
    assert [d.error for d in too_long] == ["framing"]


def test_garbage_only_leaves_nothing_behind() -> None:
    codec = WatchCodec()
    assert codec.receive_data(bytes(range(256)).replace(b"[", b""), NOW) == []
    assert codec.buffered == 0


# -- decoding rules -----------------------------------------------------------------------------------------

AL = b"[3G*1234567890*00A0*AL,210926,101500,%s,24.510000,N,117.700000,E,0,0,0,6,80,55,10,0,%s,1,255,460,0]"


def test_alarm_bits_each_raise_one_alarm_of_their_type() -> None:
    (decoded,) = decode(AL % (b"A", b"00610001"))  # bits 0 (low battery), 16 (SOS), 21 and 22 (fall)
    assert [(e.alarm_type, e.detail["bits"]) for e in decoded.events] == [
        ("low_battery", [0]),
        ("sos", [16]),
        ("fall", [21, 22]),
    ]
    assert urgent(decoded)
    assert all((e.lat, e.lon, e.battery) == (24.51, 117.7, 55) for e in decoded.events)
    assert decoded.events[0].device_time == datetime(2026, 9, 21, 10, 15, tzinfo=UTC).timestamp()
    assert decoded.events[0].code == "WATCH:AL:low_battery"
    assert decoded.reply == b"[3G*1234567890*0002*AL]"


def test_alarm_without_alarm_bit_is_an_sos() -> None:
    codec = WatchCodec()
    (decoded,) = codec.receive_data(AL % (b"A", b"00040012"), NOW)  # geofence (1, 18) and motion (4) only
    (event,) = decoded.events
    assert (event.kind, event.alarm_type, event.code) == ("alarm", "sos", "WATCH:AL:none")
    assert event.detail["inferred"] is True
    assert event.detail["status_flags"] == ["geofence_exit", "motion"]
    assert codec.counters["alarm_inferred_sos"] == 1
    (unreadable,) = decode(b"[3G*1234567890*0002*AL]")  # no fields at all: still an SOS, still answered
    assert [e.alarm_type for e in unreadable.events] == ["sos"]
    assert unreadable.reply == b"[3G*1234567890*0002*AL]"


def test_alarm_without_fix_gives_no_location_but_keeps_the_last_known_one() -> None:
    (decoded,) = decode(AL % (b"V", b"00010000"))
    (event,) = decoded.events
    assert (event.alarm_type, event.lat, event.lon) == ("sos", None, None)
    assert event.detail["fix"] == "last_known"
    assert event.detail["last_known"] == [24.51, 117.7]


def test_position_without_fix_keeps_last_known_coordinates_unless_zero() -> None:
    ud = b"[3G*1234567890*0060*UD,210926,101500,V,%s,%s,0,0,0,0,80,55,10,0,00000000]"
    (stale,) = decode(ud % (b"24.51,N", b"117.7,E"))
    assert (stale.events[0].lat, stale.events[0].lon, stale.events[0].detail["fix"]) == (24.51, 117.7, "last_known")
    (zero,) = decode(ud % (b"0.000000,N", b"0.000000,E"))
    assert (zero.events[0].kind, zero.events[0].lat, zero.events[0].detail["fix"]) == ("position", None, "none")
    (south_west,) = decode(ud.replace(b",V,", b",A,") % (b"33.9,S", b"18.4,W"))
    assert (south_west.events[0].lat, south_west.events[0].lon) == (-33.9, -18.4)
    (out_of_range,) = decode(ud.replace(b",V,", b",A,") % (b"95.0,N", b"18.4,E"))
    assert out_of_range.events[0].lat is None
    assert stale.reply is None


def test_time_far_in_the_future_is_dropped() -> None:
    codec = WatchCodec()
    (decoded,) = codec.receive_data(AL.replace(b"210926", b"010130") % (b"A", b"00010000"), NOW)  # 2030
    assert decoded.events[0].device_time is None
    assert codec.counters["future_time"] == 1
    (bad_date,) = decode(AL.replace(b"210926", b"310226") % (b"A", b"00010000"))  # 31 February
    assert bad_date.events[0].device_time is None


def test_link_battery_and_index_variant_reply() -> None:
    (decoded,) = decode(b"[ZJ*357653059860416*00A1*000D*LK,1200,3,42]")
    assert (decoded.events[0].kind, decoded.events[0].battery) == ("checkin", 42)
    assert decoded.reply == b"[ZJ*357653059860416*00A1*0002*LK]"
    (tkq2,) = decode(b"[CS*357653059860416*0004*TKQ2]")
    assert tkq2.reply == b"[CS*357653059860416*0004*TKQ2]"
    (init,) = decode(b"[3G*1234567890*0010*INIT,13800000000,1,0]")
    assert (init.events[0].kind, init.reply) == ("info", b"[3G*1234567890*0006*INIT,1]")


def test_other_types_are_info_without_reply() -> None:
    (decoded,) = decode(b"[3G*1234567890*000B*CONFIG,TY:g]")
    assert (decoded.events[0].kind, decoded.reply) == ("info", None)
    assert decoded.events[0].detail["fields"] == ["TY:g"]


def test_health_readings_out_of_range_are_not_readings() -> None:
    (decoded,) = decode(b"[3G*1234567890*0011*bphrt,400,79,73]")
    assert decoded.events[0].detail == {"diastolic": 79, "heart_rate": 73}
    (cold,) = decode(b"[3G*1234567890*000C*btemp2,0,35.1]")  # flag 0: no measurement
    assert cold.events[0].kind == "info"


def test_unescape_binary_payloads() -> None:
    assert unescape(b"a}\x01b}\x02c}\x03d}\x04e}\x05f") == b"a}b[c]d,e*f"
    assert unescape(b"}\x06}") == b"}\x06}"  # not an escape: kept as sent
    (decoded,) = decode(b"[SG*1234567890*0012*TK,}\x01}\x02}\x03}\x04}\x05\xff\x00]")
    assert decoded.events[0].detail["payload_bytes"] == 7


def test_unreadable_headers_are_refused_without_reply() -> None:
    codec = WatchCodec()
    results = codec.receive_data(b"[not a frame][3G*12*00XY*LK][3G*12*0004*L\xffK]", NOW)
    assert [(d.error, d.reply, d.events) for d in results] == [("header", None, ())] * 3
    assert codec.counters["header"] == 3
    assert {d.error for d in results} <= REASONS


def test_non_ascii_wifi_names_never_cost_an_alarm() -> None:
    gbk_ssid = "中国移动".encode("gbk")
    (decoded,) = decode((AL % (b"A", b"00010000"))[:-1] + b",1," + gbk_ssid + b",00:0c:42:51:cf:cd,-81]")
    (event,) = decoded.events
    assert (event.alarm_type, event.lat) == ("sos", 24.51)
    (utf8,) = decode((AL % (b"A", b"00200000"))[:-1] + b",1," + "家".encode() + b",aa:bb:cc:dd:ee:ff,-50]")
    assert [e.alarm_type for e in utf8.events] == ["fall"]


def test_a_bug_in_a_decoder_is_contained(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object) -> Decoded:
        raise KeyError("bug")

    codec = WatchCodec()
    monkeypatch.setattr(codec, "_link", broken)
    results = codec.receive_data(b"[3G*1234567890*0002*LK][3G*1234567890*0003*TKQ]", NOW)
    assert [d.error for d in results] == ["internal", None]
    assert codec.counters["internal"] == 1
    assert "internal error" in caplog.text


def test_every_event_keeps_the_invariants() -> None:
    for decoded in WatchCodec().receive_data(b"".join(vector.frame for vector in VECTORS), NOW):
        for event in decoded.events:
            check_event(event, PROTOCOL, NOW)


# -- fuzzing ------------------------------------------------------------------------------------------------

#: a few thousand inputs here; a million per codec in `make reliability` (tests/reliability/fuzzing.py)
FUZZ = settings(max_examples=3_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DELIMITERS = b"[]*,}\x01\x02\x03\x04\x05AVLK0"


@FUZZ
@given(noise=st.binary(max_size=300), cuts=st.binary(max_size=24))
def test_fuzz_arbitrary_bytes(noise: bytes, cuts: bytes) -> None:
    check(sprinkle(noise, DELIMITERS), cuts_from(cuts))


@FUZZ
@given(picks=st.binary(min_size=1, max_size=3), ops=st.binary(max_size=30), cuts=st.binary(max_size=24))
def test_fuzz_mutated_frames(picks: bytes, ops: bytes, cuts: bytes) -> None:
    check(mutate([SEEDS[p % len(SEEDS)] for p in picks], ops_from(ops)), cuts_from(cuts))


def urgent(decoded: Decoded) -> bool:
    """Whether the core's intake puts this frame ahead of routine traffic."""
    return any(e.kind == "alarm" and e.alarm_type in URGENT_TYPES for e in decoded.events)
