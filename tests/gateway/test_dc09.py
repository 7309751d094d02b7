"""SIA DC-09 codec: the captured vectors, framing, replies, encryption, code mapping, and a fuzz property.

Every decoded result goes through the shared checks of tests/fuzz/fuzz_dc09.py (``check_decoded``): a
documented reason, the reply the policy prescribes, and the event invariants (latitude within ±90, longitude
within ±180, device time within the window around ``now``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event as hypothesis_event
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.triage import URGENT_TYPES
from gateway.dc09 import (
    REASONS,
    REPLY_POLICY,
    Dc09Codec,
    build_message,
    crc16_arc,
    decrypt_content,
    encode_frame,
    format_time,
)
from gateway.errors import UsageError
from gateway.events import Decoded
from tests.fuzz import fuzz_dc09
from tests.fuzz.fuzz_dc09 import check_decoded, fixed_pad

VECTORS = [
    json.loads(line) for line in (Path(__file__).parent / "vectors" / "dc09-vectors.jsonl").read_text().splitlines()
]
VECTOR_KEY = bytes.fromhex("ABCDABCDABCDABCDABCDABCDABCDABCD")
NOW = 1_718_000_000.0  # 06:13:20,06-10-2024
NAK_AT_NOW = b'\nDD370025"NAK"0000R0L0A0[]_06:13:20,06-10-2024\r'
KEYS = {"080027E62A64": VECTOR_KEY, "K128": bytes(range(16)), "K192": bytes(range(24)), "K256": bytes(range(32))}


def at(stamp: str) -> float:
    """A DC-09 timestamp (HH:MM:SS,MM-DD-YYYY, UTC) as epoch seconds."""
    return datetime.strptime(stamp, "%H:%M:%S,%m-%d-%Y").replace(tzinfo=UTC).timestamp()


def make_codec(keys: dict[str, bytes] = KEYS, **options: Any) -> Dc09Codec:
    options.setdefault("random_bytes", fixed_pad)
    return Dc09Codec(keys.get, **options)


def feed(codec: Dc09Codec, data: bytes, now: float = NOW) -> list[Decoded]:
    results = codec.receive_data(data, now)
    for decoded in results:
        check_decoded(decoded, now, codec.window)
    return results


def one(data: bytes, now: float = NOW, **options: Any) -> Decoded:
    [decoded] = feed(make_codec(**options), data, now)
    return decoded


def vector_keys(vector: dict[str, Any]) -> dict[str, bytes]:
    """The captured transmitters' keys: the account of an encrypted vector has its key, a plain one has none
    (the library's test suite used one account both ways; here a keyed account speaks encrypted only)."""
    if vector["aes_key_hex"] is None:
        return {}
    return {re.search(r"#(\w+)\[", vector["frame"])[1]: bytes.fromhex(vector["aes_key_hex"])}  # type: ignore[index]


def body_of(frame: bytes) -> bytes:
    assert frame[:1] == b"\n" and frame[-1:] == b"\r"
    return frame[9:-1]


# -- the captured vectors ---------------------------------------------------------------------------------------

# One expectation per line of vectors/dc09-vectors.jsonl, in file order: the receiver's clock for the test,
# the outcome, the events (kind, code, zone), the content (decrypted, without the padding) and the exact reply.
VECTOR_CASES: list[dict[str, Any]] = [
    {
        "now": at("14:25:17,06-22-2015"),
        "error": None,
        "events": [("checkin", "SIA:HB", "0003")],
        "content": "#080027E62A64|NHB0003][E115000]_14:25:17,06-22-2015",
        "reply": b'\nE1720037"ACK"0000RC0FFDL1234#080027E62A64[]_14:25:17,06-22-2015\r',
    },
    {
        "now": at("15:12:40,06-22-2015"),
        "error": None,
        "events": [("checkin", "SIA:HB", "0003")],
        "content": "#080027E62A64|NHB0003][E115000]_15:12:40,06-22-2015",
        # "*ACK" encrypted with the message's key; with fixed_pad the pad is ten "!" characters
        "reply": b'\nA91A0063"*ACK"0000RC0FFDL1234#080027E62A64['
        b"3DC8A145E6D75A2F13604884E818BB6372927E73D171207086112440C6A9D7E6\r",
    },
    # Receiver replies sent to us are not device messages: ignored, no reply (answering a reply with DUH
    # could start an endless exchange between two receivers).
    {"now": NOW, "error": "reply", "events": [], "content": None, "reply": None},
    {"now": NOW, "error": "reply", "events": [], "content": None, "reply": None},
    {"now": NOW, "error": "reply", "events": [], "content": None, "reply": None},
    {
        "now": at("09:17:32,05-18-2016"),
        "error": None,
        "events": [("checkin", "NULL", None)],
        "content": "]_09:17:32,05-18-2016",
        "reply": b'\n9ECB002A"ACK"0001L0#00653210[]_09:17:32,05-18-2016\r',
    },
    {"now": NOW, "error": "reply", "events": [], "content": None, "reply": None},
]


def test_every_vector_has_an_expectation() -> None:
    assert len(VECTORS) == len(VECTOR_CASES) == 7


@pytest.mark.parametrize(
    ("vector", "case"), list(zip(VECTORS, VECTOR_CASES, strict=True)), ids=[f"vector{i}" for i in range(len(VECTORS))]
)
def test_vector(vector: dict[str, Any], case: dict[str, Any]) -> None:
    frame = vector["frame"].encode("latin-1")
    decoded = one(frame, case["now"], keys=vector_keys(vector))
    assert decoded.error == case["error"]
    assert [(e.kind, e.code, e.zone) for e in decoded.events] == case["events"]
    for event in decoded.events:
        assert event.device_id == re.search(r"#(\w+)\[", vector["frame"])[1]  # type: ignore[index]
        assert event.detail["content"] == case["content"]
        assert event.detail["encrypted"] == (vector["aes_key_hex"] is not None)
        assert event.device_time == case["now"]
        assert event.detail["extended"] == ({"E": "115000"} if "[E115000]" in case["content"] else {})
    assert decoded.reply == case["reply"]


def test_encrypted_vector_decrypts_with_its_key() -> None:
    frame = VECTORS[1]["frame"]
    plaintext = decrypt_content(bytes.fromhex(VECTORS[1]["aes_key_hex"]), frame[frame.index("[") + 1 : -1])
    pad, _, content = plaintext.partition(b"|")
    assert len(pad) == 12 and content == b"#080027E62A64|NHB0003][E115000]_15:12:40,06-22-2015"


def test_our_encrypted_ack_has_the_layout_of_a_real_receivers() -> None:
    """The captured "*ACK" decrypts to <pad>|]_<time>; ours to the same layout, with the same key."""
    theirs = VECTORS[2]["frame"]
    plain_theirs = decrypt_content(VECTOR_KEY, theirs[theirs.index("[") + 1 : -1])
    ours = VECTOR_CASES[1]["reply"].decode()
    plain_ours = decrypt_content(VECTOR_KEY, ours[ours.index("[") + 1 : -1])
    assert plain_ours == b"!!!!!!!!!!|]_15:12:40,06-22-2015"
    layout = re.compile(rb"[^|\[\]]{1,16}\|\]_\d\d:\d\d:\d\d,\d\d-\d\d-\d{4}", re.DOTALL)
    assert layout.fullmatch(plain_theirs) and layout.fullmatch(plain_ours)
    assert len(plain_theirs) == len(plain_ours) == 32


def test_our_ack_and_nak_are_byte_for_byte_those_of_real_receivers() -> None:
    """A stale message answered at the captured receivers' times gives exactly their NAKs; a fresh one their ACK."""
    stale = build_message("SIA-DCS", 1, "080027E62A64", "NHB0003", timestamp=at("00:00:00,01-01-2015"))
    for vector in (VECTORS[4], VECTORS[6]):
        receiver_time = at(vector["frame"][-20:-1])
        assert one(stale, receiver_time, keys={}).reply == vector["frame"].encode()
    ack = VECTORS[3]["frame"]  # "ACK"0001L0#080027E62A64[]_16:07:07,04-14-2015, LEN in lower case
    message = build_message("NULL", 1, "080027E62A64", prefix="0")
    reply = one(message, at("16:07:07,04-14-2015"), keys={}).reply
    assert reply is not None and reply.lower() == ack.encode().lower() and body_of(reply) == ack[9:-1].encode()


def test_vectors_at_todays_time_get_a_nak_with_the_receiver_time() -> None:
    for index in (0, 1, 5):
        decoded = one(VECTORS[index]["frame"].encode(), NOW, keys=vector_keys(VECTORS[index]))
        assert decoded == Decoded(reply=NAK_AT_NOW, error="timestamp")


# -- frame checks -----------------------------------------------------------------------------------------------


def test_crc16_arc_check_value_and_the_vectors() -> None:
    assert crc16_arc(b"123456789") == 0xBB3D  # the catalogued CRC-16/ARC check value
    for vector in VECTORS:
        frame = vector["frame"].encode()
        assert crc16_arc(body_of(frame)) == int(frame[1:5], 16)
        assert encode_frame(body_of(frame).decode()) == frame[:5] + frame[5:9].upper() + frame[9:]


def test_bad_crc_gets_no_reply() -> None:
    frame = bytearray(build_message("ADM-CID", 1, "1234", "1101 01 015"))
    frame[-5] ^= 0x01  # a zone digit
    codec = make_codec()
    assert feed(codec, bytes(frame)) == [Decoded(error="crc")]
    assert codec.counters["crc"] == 1


def test_wrong_length_gets_no_reply() -> None:
    frame = build_message("ADM-CID", 1, "1234", "1101 01 015")
    wrong = frame[:5] + b"%04X" % (int(frame[5:9], 16) + 1) + frame[9:]
    codec = make_codec()
    assert feed(codec, wrong) == [Decoded(error="length")]
    assert codec.counters["length"] == 1


def test_lower_case_crc_and_length_are_accepted() -> None:
    frame = b'\nac20002b"ADM-CID"0001L0#123456[#123456|1101 01 000]\r'
    assert one(frame).error is None
    assert one(frame.replace(b"ac20", b"AC20")).error is None


def test_not_a_frame_between_lf_and_cr_gets_no_reply() -> None:
    assert one(b"\nnot a frame\r") == Decoded(error="framing")
    assert one(b'\nZZZZ0010"NULL"0001\r') == Decoded(error="framing")


# -- framing of a TCP stream ------------------------------------------------------------------------------------

STREAM = [
    build_message("ADM-CID", 1, "1234", "1101 01 015"),
    build_message("SIA-DCS", 2, "K128", "Nri1/MA01", key=KEYS["K128"], timestamp=NOW, random_bytes=fixed_pad),
    VECTORS[3]["frame"].encode(),  # a receiver's ACK: ignored, but it must not disturb the framing
    build_message("NULL", 3, "1234"),
]


def test_byte_by_byte_delivery_gives_the_same_outcome() -> None:
    data = b"".join(STREAM)
    whole = feed(make_codec(), data)
    codec = make_codec()
    single = [decoded for i in range(len(data)) for decoded in feed(codec, data[i : i + 1])]
    assert single == whole
    assert [d.error for d in whole] == [None, None, "reply", None]


def test_many_frames_in_one_read_come_out_in_order() -> None:
    results = feed(make_codec(), b"".join(STREAM * 3))
    assert [d.error for d in results] == [None, None, "reply", None] * 3
    assert [e.code for d in results for e in d.events] == ["CID:1101", "SIA:MA", "NULL"] * 3


def test_garbage_between_frames_is_dropped() -> None:
    codec = make_codec()
    data = b"\x00\xffjunk" + STREAM[0] + b"\r\r noise \x7f" + STREAM[3] + b"tail"
    assert [d.error for d in feed(codec, data)] == [None, None]
    # "tail" has no <LF>: dropped at once as well, since a frame only starts at an <LF>
    assert codec.counters["garbage_bytes"] == len(b"\x00\xffjunk" + b"\r\r noise \x7f" + b"tail")


def test_a_new_lf_restarts_a_frame() -> None:
    """A transmitter that dropped a connection mid-frame starts again with <LF>: the fragment is discarded."""
    data = b'\n9B6D0059"SIA-DCS"0000RC0' + STREAM[0]
    assert [d.error for d in feed(make_codec(), data)] == [None]


def test_a_frame_too_long_is_one_error_then_the_stream_resynchronises() -> None:
    too_long = build_message("SIA-DCS", 4, "1234", "NMA01|A" + "x" * 600)
    data = too_long + STREAM[0]
    codec = make_codec(max_frame=256)
    assert [d.error for d in feed(codec, data)] == ["framing", None]
    assert codec.counters["framing"] == 1
    by_byte = make_codec(max_frame=256)
    assert [d for i in range(len(data)) for d in feed(by_byte, data[i : i + 1])] == feed(
        make_codec(max_frame=256), data
    )
    # a frame of exactly max_frame bytes still passes
    exact = build_message("SIA-DCS", 5, "1234", "NMA01|A" + "y" * 100)
    assert one(exact, max_frame=len(exact)).error is None
    assert one(exact, max_frame=len(exact) - 1).error == "framing"


def test_an_endless_line_without_cr_is_one_error_and_is_not_kept() -> None:
    codec = make_codec(max_frame=256)
    errors = [d.error for d in feed(codec, b"\n")]
    errors += [d.error for _ in range(100) for d in feed(codec, b"A" * 99)]
    assert errors == ["framing"]
    assert codec.counters["garbage_bytes"] == 1 + 100 * 99 - 256  # the rest is dropped, not buffered
    assert [d.error for d in feed(codec, STREAM[0])] == [None]


# -- UDP --------------------------------------------------------------------------------------------------------


def test_datagrams_are_not_buffered_across() -> None:
    codec = make_codec()
    frame = STREAM[0]
    assert [d.error for d in codec.datagram(frame, NOW)] == [None]
    assert [d.error for d in codec.datagram(frame[:20], NOW)] == ["framing"]
    assert [d.error for d in codec.datagram(frame[20:], NOW)] == ["framing"]
    assert [d.error for d in codec.datagram(b"".join(STREAM), NOW)] == [None, None, "reply", None]
    assert codec.datagram(b"", NOW) == []


# -- the timestamp window ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(0, True), (20, True), (21, False), (-40, True), (-41, False), (3600, False), (-86400, False)],
)
@pytest.mark.parametrize("key", [None, KEYS["K128"]], ids=["plain", "encrypted"])
def test_timestamp_window(offset: int, accepted: bool, key: bytes | None) -> None:
    account = "K128" if key else "1234"  # a keyed account speaks encrypted only
    frame = build_message("ADM-CID", 9, account, "1101 01 015", key=key, timestamp=NOW + offset)
    decoded = one(frame)
    if accepted:
        assert decoded.error is None and decoded.events[0].device_time == NOW + offset
        assert decoded.reply is not None and f'ACK"0009L0#{account}['.encode() in decoded.reply
    else:
        assert decoded == Decoded(reply=NAK_AT_NOW, error="timestamp")  # never encrypted, no events


def test_nak_carries_the_receiver_time_and_a_custom_window_applies() -> None:
    frame = build_message("NULL", 1, "1234", timestamp=NOW - 100)
    later = NOW + 3661.7
    assert one(frame, later).reply == encode_frame(f'"NAK"0000R0L0A0[]_{format_time(later)}')
    assert format_time(later) == "07:14:21,06-10-2024"
    assert one(frame, window=(-120.0, 5.0)).error is None


def test_encrypted_message_without_timestamp_or_with_a_bad_one_gets_nak() -> None:
    from gateway.dc09 import encrypt_content

    def sealed(content: str) -> bytes:
        plaintext = b"|" + content.encode()
        plaintext = b"P" * (16 - len(plaintext) % 16) + plaintext
        return encode_frame(f'"*NULL"0001L0#K128[{encrypt_content(KEYS["K128"], plaintext)}')

    assert one(sealed("]")) == Decoded(reply=NAK_AT_NOW, error="timestamp")
    assert one(sealed("]_25:00:00,06-10-2024")) == Decoded(reply=NAK_AT_NOW, error="timestamp")
    assert one(sealed(f"]_{format_time(NOW)}")).error is None


def test_plain_message_without_timestamp_is_accepted_without_device_time() -> None:
    decoded = one(build_message("ADM-CID", 1, "1234", "1101 01 015"))
    assert decoded.error is None and decoded.events[0].device_time is None


# -- encryption -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("account", ["K128", "K192", "K256"])
@pytest.mark.parametrize(
    ("token", "data", "code"),
    [("ADM-CID", "1101 01 015", "CID:1101"), ("SIA-DCS", "Nri1/MA01", "SIA:MA"), ("NULL", "", "NULL")],
)
def test_aes_round_trip(account: str, token: str, data: str, code: str) -> None:
    key = KEYS[account]
    frame = build_message(token, 42, account, data, receiver="C0FFD", prefix="1234", key=key, timestamp=NOW)
    assert frame.startswith(b"\n") and b'"*' + token.encode() + b'"0042RC0FFDL1234#' + account.encode() in frame
    decoded = one(frame)
    assert decoded.error is None
    [event] = decoded.events
    assert (event.device_id, event.code, event.detail["encrypted"]) == (account, code, True)
    reply = decoded.reply
    assert reply is not None and body_of(reply).startswith(b'"*ACK"0042RC0FFDL1234#' + account.encode() + b"[")
    plaintext = decrypt_content(key, body_of(reply).split(b"[", 1)[1].decode())
    assert plaintext == b"!" * 10 + b"|]_" + format_time(NOW).encode()


def test_padding_is_random_without_separators_and_whole_blocks() -> None:
    key = KEYS["K256"]
    frames = {build_message("ADM-CID", 1, "K256", "1101 01 015", key=key, timestamp=NOW) for _ in range(20)}
    assert len(frames) > 1  # random padding
    for frame in frames:
        plaintext = decrypt_content(key, body_of(frame).split(b"[", 1)[1].decode())
        pad, bar, _ = plaintext.partition(b"|")
        assert bar and 1 <= len(pad) <= 16 and not set(pad) & set(b"|[]") and len(plaintext) % 16 == 0


def test_undecryptable_messages_get_duh() -> None:
    frame = build_message("ADM-CID", 7, "K128", "1101 01 015", key=KEYS["K256"], timestamp=NOW)  # wrong key
    assert one(frame) == Decoded(reply=encode_frame('"DUH"0007L0#K128[]'), error="decrypt")
    unknown = build_message("ADM-CID", 7, "9999", "1101 01 015", key=KEYS["K128"], timestamp=NOW)  # no key
    assert one(unknown) == Decoded(reply=encode_frame('"DUH"0007L0#9999[]'), error="decrypt")
    not_hex = encode_frame('"*ADM-CID"0007L0#K128[NOTHEX' + "0" * 26)
    assert one(not_hex).error == "decrypt"
    short_key = Dc09Codec(lambda account: b"0123456789")  # a misconfigured key is not an AES key
    assert short_key.receive_data(frame, NOW) == [Decoded(reply=encode_frame('"DUH"0007L0#K128[]'), error="decrypt")]


def test_unknown_token_and_unreadable_data_get_duh() -> None:
    assert one(encode_frame('"ADM-XYZ"0005R1L0#1234[]')) == Decoded(
        reply=encode_frame('"DUH"0005R1L0#1234[]'), error="unsupported"
    )
    assert one(encode_frame('"ADM-CID"0007L0#1234[#1234|9999 01 001]')) == Decoded(
        reply=b'\n3AFF0012"DUH"0007L0#1234[]\r', error="format"
    )
    assert one(encode_frame('"SIA-DCS"0001L0#1234[#1234|garbage]')).error == "format"
    assert one(encode_frame('"SIA-DCS"0001L0#1234[#1234|NMA01x]')).error == "format"  # a block that does not parse
    assert one(encode_frame('"SIA-DCS"0001L0#1234[#1234|Aonly text]')).error == "format"  # no event code
    assert one(encode_frame('"SIA-DCS')).error == "format"  # no closing quote after the token
    # a header that cannot be read: the DUH has no sequence or account to echo
    assert one(encode_frame('"SIA-DCS"12#1234[]')) == Decoded(reply=b'\n66D10011"DUH"0000R0L0A0[]\r', error="format")


def test_counters_name_every_reason() -> None:
    codec = make_codec()
    feed(codec, STREAM[0] + b"\nnonsense\r" + encode_frame('"ADM-XYZ"0005L0#1234[]') + VECTORS[4]["frame"].encode())
    assert (codec.counters["ok"], codec.counters["framing"], codec.counters["unsupported"]) == (1, 1, 1)
    assert codec.counters["reply"] == 1
    assert set(REPLY_POLICY) == REASONS


# -- code mapping -----------------------------------------------------------------------------------------------

# (event code, kind of a new event, kind of its restore, Anxin alarm type), written out here on purpose:
# this is the expectation, gateway/codes.py is the implementation.
CONTACT_ID_CASES = [
    ("100", "alarm", "restore", "medical"),
    ("101", "alarm", "restore", "sos"),
    ("102", "alarm", "restore", "missed_checkin"),
    ("110", "alarm", "restore", "fire"),
    ("120", "alarm", "restore", "sos"),
    ("147", "alarm", "restore", "missed_checkin"),
    ("301", "alarm", "restore", "mains_loss"),
    ("302", "alarm", "restore", "low_battery"),
    ("381", "alarm", "restore", "missed_checkin"),
    ("384", "alarm", "restore", "low_battery"),
    ("602", "checkin", "checkin", None),
    ("641", "alarm", "restore", "inactivity"),
    ("661", "info", "info", None),
]


@pytest.mark.parametrize(("event", "new_kind", "restore_kind", "alarm_type"), CONTACT_ID_CASES)
def test_contact_id_codes(event: str, new_kind: str, restore_kind: str, alarm_type: str | None) -> None:
    for qualifier, kind in (("1", new_kind), ("3", restore_kind), ("6", new_kind)):
        decoded = one(build_message("ADM-CID", 11, "1234", f"{qualifier}{event} 02 017"))
        [e] = decoded.events
        assert (e.kind, e.alarm_type, e.code, e.zone) == (kind, alarm_type, f"CID:{qualifier}{event}", "017")
        assert e.detail["partition"] == "02" and e.detail["qualifier"] == qualifier and e.detail["label"]
        assert urgent(decoded) == (kind == "alarm" and alarm_type in ("sos", "medical", "fire"))


def test_unknown_contact_id_code_is_info_and_acked() -> None:
    decoded = one(build_message("ADM-CID", 1, "1234", "1999 00 000"))
    assert decoded.error is None and decoded.events[0].kind == "info" and decoded.events[0].alarm_type is None


@pytest.mark.parametrize(
    ("code", "kind", "alarm_type"),
    [
        ("MA", "alarm", "medical"),
        ("QA", "alarm", "sos"),
        ("FA", "alarm", "fire"),
        ("YT", "alarm", "low_battery"),
        ("AT", "alarm", "mains_loss"),
        ("RP", "checkin", None),
        ("MH", "restore", "medical"),
        ("ZZ", "info", None),
    ],
)
def test_sia_codes(code: str, kind: str, alarm_type: str | None) -> None:
    [e] = one(build_message("SIA-DCS", 12, "1234", f"Nri3/{code}05")).events
    assert (e.kind, e.alarm_type, e.code, e.zone, e.detail["area"]) == (kind, alarm_type, f"SIA:{code}", "05", "3")


def test_sia_data_with_several_events_and_text() -> None:
    data = "Nri1/MA01^Bedroom^/FA02|Ahelp needed"
    events = one(build_message("SIA-DCS", 13, "1234", data)).events
    assert [(e.code, e.zone, e.detail.get("zone_name")) for e in events] == [
        ("SIA:MA", "01", "Bedroom"),
        ("SIA:FA", "02", None),
    ]
    assert all(e.detail["text"] == "help needed" and e.detail["area"] == "1" for e in events)
    assert len({e.dedup for e in events}) == 2


def test_sia_data_without_account_before_the_bar() -> None:
    body = '"SIA-DCS"0003L0#1234[|NHB0003]'
    [e] = one(encode_frame(body)).events
    assert (e.code, e.zone, e.device_id) == ("SIA:HB", "0003", "1234")


def test_account_in_the_data_that_differs_from_the_header_is_kept() -> None:
    [e] = one(encode_frame('"ADM-CID"0003L0#1234[#5678|1101 01 015]')).events
    assert e.device_id == "1234" and e.detail["data_account"] == "5678"


# -- position -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blocks", "position"),
    [
        (["X117.700000", "Y24.510000"], (24.51, 117.7)),
        (["XE117.7", "YN24.51"], (24.51, 117.7)),
        (["X58.38W", "Y34.6S"], (-34.6, -58.38)),
        (["X-58.38", "Y-34.6"], (-34.6, -58.38)),
        (["X181", "Y24.5"], None),  # out of range
        (["X117.7", "Y91"], None),
        (["X117.7"], None),  # half a position is no position
        (["XN117.7", "Y24.5"], None),  # a latitude hemisphere on a longitude
        (["Xabc", "Ydef"], None),
    ],
)
def test_position_extended_data(blocks: list[str], position: tuple[float, float] | None) -> None:
    [e] = one(build_message("ADM-CID", 14, "1234", "1101 01 015", extended=blocks, timestamp=NOW)).events
    assert ((e.lat, e.lon) if e.lat is not None else None) == position
    assert e.detail["extended"] == {block[0]: block[1:] for block in blocks}


def test_position_with_build_message_and_other_blocks_kept() -> None:
    frame = build_message("SIA-DCS", 15, "K192", "NMA01", key=KEYS["K192"], timestamp=NOW, position=(-33.9, 151.2),
                          extended=["E115000", "Vhttp://cam/1"])  # fmt: skip
    [e] = one(frame).events
    assert (e.lat, e.lon) == (-33.9, 151.2)
    assert e.detail["extended"] == {"X": "151.200000", "Y": "-33.900000", "E": "115000", "V": "http://cam/1"}


# -- dedup --------------------------------------------------------------------------------------------------------


def test_dedup_is_equal_for_a_repeat_and_different_for_a_new_message() -> None:
    key = KEYS["K128"]
    first = one(build_message("ADM-CID", 21, "K128", "1101 01 015", key=key, timestamp=NOW))
    # the transmitter repeats it a few seconds later: new padding, new timestamp, same message
    repeat = one(build_message("ADM-CID", 21, "K128", "1101 01 015", key=key, timestamp=NOW + 5), NOW + 5)
    plain = one(build_message("ADM-CID", 21, "K128", "1101 01 015"), keys={})  # before the account had a key
    new_seq = one(build_message("ADM-CID", 22, "K128", "1101 01 015", key=key, timestamp=NOW))
    other = one(build_message("ADM-CID", 21, "K128", "3101 01 015", key=key, timestamp=NOW))
    other_account = one(build_message("ADM-CID", 21, "K256", "1101 01 015", key=KEYS["K256"], timestamp=NOW))
    key_of = lambda decoded: decoded.events[0].dedup  # noqa: E731
    assert key_of(first) == key_of(repeat) == key_of(plain)
    assert len({key_of(first), key_of(new_seq), key_of(other), key_of(other_account)}) == 4


# -- usage errors ---------------------------------------------------------------------------------------------------


def test_usage_errors_are_ours_not_the_devices() -> None:
    with pytest.raises(UsageError):
        build_message("ADM-CID", 1, "1234", "1101 01 015", key=KEYS["K128"])  # encrypted needs a timestamp
    with pytest.raises(UsageError):
        build_message("ACK", 1, "1234")
    with pytest.raises(UsageError):
        build_message("NULL", 10_000, "1234")
    with pytest.raises(UsageError):
        encode_frame("no quote")
    with pytest.raises(UsageError):
        make_codec().receive_data("text", NOW)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        make_codec().receive_data(b"", float("nan"))
    with pytest.raises(UsageError):
        make_codec(window=(5.0, 20.0))


def test_a_failing_key_lookup_is_internal_and_unanswered() -> None:
    def broken(account: str) -> bytes | None:
        raise RuntimeError("key store down")

    codec = Dc09Codec(broken)
    frame = build_message("NULL", 1, "K128", key=KEYS["K128"], timestamp=NOW)
    assert codec.receive_data(frame, NOW) == [Decoded(error="internal")]
    assert codec.counters["internal"] == 1


# -- fuzzing --------------------------------------------------------------------------------------------------------

_MUTATION = st.tuples(st.integers(0, 6), st.integers(0, 1 << 16), st.integers(0, 1 << 16))
_STREAMS = st.one_of(
    st.binary(max_size=400),
    st.builds(
        fuzz_dc09.mutate,
        st.lists(st.sampled_from(fuzz_dc09.SEEDS), min_size=1, max_size=3),
        st.lists(_MUTATION, max_size=4),
    ),
)


# a few thousand streams here; a million inputs per codec in `make reliability` (tests/reliability/fuzzing.py)
@settings(max_examples=3_000, deadline=None)
@given(data=_STREAMS, cuts=st.lists(st.integers(0, 1 << 16), max_size=8))
def test_fuzz_only_documented_results_come_out(data: bytes, cuts: list[int]) -> None:
    counts: Counter[str] = Counter()
    fuzz_dc09.check(data, cuts, counts)
    for reason in counts:  # shown by --hypothesis-show-statistics: which paths the inputs reached
        hypothesis_event(reason)


def urgent(decoded: Decoded) -> bool:
    """Whether the core's intake puts this frame ahead of routine traffic."""
    return any(e.kind == "alarm" and e.alarm_type in URGENT_TYPES for e in decoded.events)
