"""DC-09 encryption policy (gateway/dc09.py rule 7): a keyed account speaks encrypted only.

A plain message for an account that has a key -- alarm, restore or NULL poll -- gets DUH and one tamper event,
never an ACK; under ``plain_keyed="accept-sos"`` a plain urgent alarm is ACKed and recorded with the tamper
event while restores and polls stay refused. Every result also goes through the fuzz target's shared checks.
"""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.triage import ALARM_RULES
from gateway.dc09 import PLAIN_KEYED_BUCKET_S, PLAIN_KEYED_CODE, REPLY_POLICY, SPEC, Dc09Codec, build_message
from gateway.errors import UsageError
from gateway.events import Decoded
from gateway.registry import DevicePolicy
from tests.fuzz.fuzz_dc09 import check_decoded, fixed_pad

NOW = 1_718_000_000.0
KEY = bytes(range(16))
KEYS = {"K128": KEY}
DUH = b'"DUH"'


def feed(frame: bytes, now: float = NOW, **options: Any) -> Decoded:
    codec = Dc09Codec(KEYS.get, random_bytes=fixed_pad, **options)
    [decoded] = codec.receive_data(frame, now)
    check_decoded(decoded, now, codec.window)
    return decoded


def is_tamper(decoded: Decoded) -> bool:
    [tamper] = [e for e in decoded.events if e.code == PLAIN_KEYED_CODE]
    return (
        tamper.kind == "alarm"
        and tamper.alarm_type is not None
        and ALARM_RULES[tamper.alarm_type].technical  # a technical condition: never dispatches anyone
        and tamper.device_id == "K128"
        and tamper.detail["label"] == "plain frame for an encrypted account"
    )


PLAIN_FOR_KEYED = {
    "sos": build_message("ADM-CID", 1, "K128", "1101 01 015"),
    "sia_emergency": build_message("SIA-DCS", 2, "K128", "NQA01"),
    "restore_mains": build_message("ADM-CID", 3, "K128", "3301 01 000"),
    "sia_restore": build_message("SIA-DCS", 4, "K128", "NAR00"),
    "null_poll": build_message("NULL", 5, "K128"),
    "stamped_sos": build_message("ADM-CID", 6, "K128", "1101 01 015", timestamp=NOW),
}


@pytest.mark.parametrize("frame", PLAIN_FOR_KEYED.values(), ids=PLAIN_FOR_KEYED.keys())
def test_plain_message_for_a_keyed_account_gets_duh_and_a_tamper_event(frame: bytes) -> None:
    decoded = feed(frame)
    assert decoded.error == "plain_keyed" and REPLY_POLICY["plain_keyed"] == "duh"
    assert decoded.reply is not None and DUH in decoded.reply and b"#K128[]" in decoded.reply
    assert b"ACK" not in decoded.reply
    assert [e.code for e in decoded.events] == [PLAIN_KEYED_CODE] and is_tamper(decoded)
    assert decoded.events[0].detail["token"] in ("ADM-CID", "SIA-DCS", "NULL")


def test_the_encrypted_message_of_the_same_account_is_still_acked() -> None:
    decoded = feed(build_message("ADM-CID", 7, "K128", "1101 01 015", key=KEY, timestamp=NOW))
    assert decoded.error is None and decoded.reply is not None and b'"*ACK"0007' in decoded.reply
    assert [(e.kind, e.alarm_type) for e in decoded.events] == [("alarm", "sos")]


def test_an_account_without_a_key_still_speaks_plain() -> None:
    decoded = feed(build_message("ADM-CID", 8, "PLAIN1", "1101 01 015"))
    assert decoded.error is None and decoded.reply is not None and b'"ACK"0008' in decoded.reply


def test_a_replayed_plain_frame_is_refused_every_time_and_dedups_to_one_condition() -> None:
    """Plain frames carry no timestamp, so they replay; each replay is DUH, and its tamper events share one key."""
    frame = PLAIN_FOR_KEYED["sos"]
    replays = [feed(frame, NOW + 5 * i) for i in range(20)]
    assert all(d.error == "plain_keyed" and d.reply is not None and DUH in d.reply for d in replays)
    assert len({d.events[0].dedup for d in replays}) == 1  # 100 s: one bucket, one dedup key
    later = feed(frame, NOW + PLAIN_KEYED_BUCKET_S * 3)
    assert later.events[0].dedup != replays[0].events[0].dedup  # a new bucket: the condition is noted again


def test_a_flood_of_distinct_plain_frames_has_one_dedup_key_per_bucket() -> None:
    codec = Dc09Codec(KEYS.get)
    frames = b"".join(build_message("ADM-CID", n % 10_000, "K128", "1101 01 015") for n in range(2000))
    start = NOW - NOW % PLAIN_KEYED_BUCKET_S  # the start of a bucket: all 2,000 fall in it
    results = codec.receive_data(frames, start)
    assert len(results) == 2000 and all(d.error == "plain_keyed" for d in results)
    assert len({e.dedup for d in results for e in d.events}) == 1
    assert codec.counters["plain_keyed"] == 2000


def test_accept_sos_acks_a_plain_urgent_alarm_and_records_the_tamper_event() -> None:
    for frame, alarm_type in (
        (PLAIN_FOR_KEYED["sos"], "sos"),
        (PLAIN_FOR_KEYED["sia_emergency"], "sos"),
        (build_message("ADM-CID", 9, "K128", "1100 01 004"), "medical"),
        (build_message("SIA-DCS", 10, "K128", "NFA01"), "fire"),
    ):
        decoded = feed(frame, plain_keyed="accept-sos")
        assert decoded.error is None and decoded.reply is not None and b'"ACK"' in decoded.reply
        assert b'"*ACK"' not in decoded.reply  # the answer to a plain message is plain
        assert [(e.kind, e.alarm_type) for e in decoded.events if e.code != PLAIN_KEYED_CODE] == [("alarm", alarm_type)]
        assert is_tamper(decoded)


@pytest.mark.parametrize("name", ["restore_mains", "sia_restore", "null_poll"])
def test_accept_sos_still_refuses_plain_restores_and_polls(name: str) -> None:
    decoded = feed(PLAIN_FOR_KEYED[name], plain_keyed="accept-sos")
    assert decoded.error == "plain_keyed" and decoded.reply is not None and DUH in decoded.reply
    assert [e.code for e in decoded.events] == [PLAIN_KEYED_CODE]


def test_accept_sos_refuses_a_plain_technical_alarm_and_keeps_only_urgent_readings() -> None:
    low_battery = feed(build_message("ADM-CID", 11, "K128", "1302 01 000"), plain_keyed="accept-sos")
    assert low_battery.error == "plain_keyed"
    mixed = feed(build_message("SIA-DCS", 12, "K128", "NQA01/AR00"), plain_keyed="accept-sos")
    assert mixed.error is None  # the SOS is taken; the AC restore beside it is dropped, not applied
    assert sorted((e.kind, e.alarm_type) for e in mixed.events) == [("alarm", "sos"), ("alarm", "tamper")]


def test_accept_sos_applies_the_timestamp_window_to_plain_alarms() -> None:
    stale = build_message("ADM-CID", 13, "K128", "1101 01 015", timestamp=NOW - 3600)
    assert feed(stale, plain_keyed="accept-sos").error == "timestamp"
    assert feed(stale).error == "plain_keyed"  # refused outright under the default policy


def test_the_policy_comes_from_the_registry_factory() -> None:
    default = SPEC.stream(KEYS.get, known=KEYS.__contains__)
    accepting = SPEC.stream(KEYS.get, known=KEYS.__contains__, policy=DevicePolicy(dc09_plain_keyed="accept-sos"))
    assert SPEC.datagram is not None
    udp = SPEC.datagram(KEYS.get, policy=DevicePolicy(dc09_plain_keyed="accept-sos"))
    frame = PLAIN_FOR_KEYED["sos"]
    assert [d.error for d in default.receive_data(frame, NOW)] == ["plain_keyed"]
    assert [d.error for d in accepting.receive_data(frame, NOW)] == [None]
    assert [d.error for d in udp.datagram(frame, NOW)] == [None]
    with pytest.raises(UsageError):
        Dc09Codec(KEYS.get, plain_keyed="sometimes")  # type: ignore[arg-type]
