"""Fuzz target for the GT06 / Concox codec (gateway/gt06.py).

    python -m tests.fuzz.fuzz_gt06 --seconds 60 [--seed N]

The property, shared with the hypothesis tests in tests/gateway/test_gt06.py:

1. ``receive_data`` returns a list of ``Decoded`` and raises nothing, whatever the bytes, and terminates;
2. every ``error`` is a documented reason (never "internal", which would be a bug of ours) with no reply and no
   events; every reply is a well-formed packet (LEN and CRC right) answering a packet whose CRC checked, and a
   packet kept despite a bad CRC carries only alarms;
3. every event passes the shared invariants (:func:`tests.fuzz.tracker_common.check_event`);
4. the outcome of a stream does not depend on how it is cut into reads (with the default ``max_frame``);
   with a small ``max_frame`` properties 1-3 still hold and the held-back bytes never outgrow it.

Inputs are arbitrary bytes and valid packets (the captured vectors and packets built with ``encode_packet``),
usually after a login, mutated by bit flips, truncation, splicing, deletion, insertion of start and stop
bytes, and duplication (with LEN and CRC sometimes made right again, so that the damage reaches the
decoder), then cut at random places.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from gateway.events import Decoded
from gateway.gt06 import PROTOCOL, REASONS, Gt06Codec, encode_packet, parse_packet
from tests.fuzz.runner import fuzz
from tests.fuzz.runner import mutate as shared_mutate
from tests.fuzz.tracker_common import check_event, chunks, load_vectors

NOW = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC: the receiver's clock for every fuzz run
SMALL_FRAME = 96
LOGIN = bytes.fromhex("78780D01086471700328358100093F040D0A")  # IMEI 864717003283581, serial 9

# date-time 2026-09-21 14:00:00, 0xC9 (12 satellites), 24.51 N, 117.7 E, 0 km/h, course 0 positioned north east
GPS_BLOCK = bytes([26, 9, 21, 14, 0, 0, 0xC9]) + round(24.51 * 1_800_000).to_bytes(4, "big")
GPS_BLOCK += round(117.7 * 1_800_000).to_bytes(4, "big") + b"\x00\x14\x00"
CELL = bytes.fromhex("0901CC00287D001F71")  # LBS length 9, MCC 460, MNC 0, LAC, cell id


def seed_frames() -> list[bytes]:
    frames = [vector.frame for vector in load_vectors("gt06-traccar.jsonl")]
    frames += [
        LOGIN,
        encode_packet(0x01, bytes.fromhex("0123456789012345100B3201"), 1),
        encode_packet(0x13, bytes.fromhex("4406040102"), 2),  # heartbeat with SOS in the terminal field
        encode_packet(0x12, GPS_BLOCK + CELL[1:], 3),
        encode_packet(0x16, GPS_BLOCK + CELL + bytes.fromhex("0406040102"), 4),  # SOS alarm packet
        encode_packet(0x16, GPS_BLOCK + CELL + bytes.fromhex("2406042302"), 5),  # fall, terminal SOS
        encode_packet(0x19, CELL[1:] + bytes.fromhex("2405040002"), 6),  # LBS alarm, terminal SOS
        encode_packet(0x8A, b"", 7),
        encode_packet(0x95, bytes([26, 9, 21, 14, 0, 0, 1]), 8),
        encode_packet(0x32, bytes([26, 9, 21, 14, 0, 0, 12]) + GPS_BLOCK[6:], 9, extended=True),
        encode_packet(0x12, GPS_BLOCK + bytes(300), 10),  # a long-form packet
    ]
    return frames


SEEDS = seed_frames()
_SPECIAL = b"\x78\x79\x0d\x0a\x01\x05\x13\x16\x00\xff"


def _reseal(data: bytearray, at: int) -> bytearray:
    """Make LEN and CRC of the packet starting at or after ``at`` right again."""
    starts = [i for i in (data.find(b"\x78\x78", at), data.find(b"\x79\x79", at)) if i >= 0]
    if not starts:
        return data
    start = min(starts)
    header = 3 if data[start] == 0x78 else 4
    end = data.find(b"\r\n", start + header)
    body = bytes(data[start + header : end - 2]) if end > 0 else b""
    if len(body) < 3 or (header == 3 and len(body) > 250):
        return data
    packet = encode_packet(body[0], body[1:-2], int.from_bytes(body[-2:], "big"), extended=header == 4)
    return data[:start] + packet + data[end + 2 :]


def mutate(frames: Sequence[bytes], ops: Sequence[tuple[int, int, int]]) -> bytes:
    return shared_mutate(frames, ops, seeds=SEEDS, special=bytes(_SPECIAL), reseal=_reseal)


def check_decoded(decoded: Decoded, now: float) -> None:
    """A packet's outcome: a documented reason without reply or events (but a refused unknown login's one
    check-in, counted by the core), or events and a well-formed reply."""
    assert isinstance(decoded, Decoded)
    assert decoded.error is None or decoded.error in REASONS
    assert decoded.error != "internal", "an exception escaped the decoder"
    if decoded.error is not None:
        assert decoded.reply is None
        if decoded.error == "unknown device":
            (event,) = decoded.events
            assert event.kind == "checkin" and event.detail == {"refused": "login"}
            check_event(event, PROTOCOL, now)
        else:
            assert not decoded.events
        return
    assert decoded.events
    for event in decoded.events:
        check_event(event, PROTOCOL, now)
    unchecked = [event for event in decoded.events if event.detail.get("crc_ok") is False]
    if unchecked:
        assert decoded.reply is None and all(event.kind == "alarm" for event in decoded.events)
    if decoded.reply is not None:
        reply = parse_packet(decoded.reply)
        assert reply.crc_ok
        declared = decoded.reply[2] + 5 if not reply.extended else int.from_bytes(decoded.reply[2:4], "big") + 6
        assert declared == len(decoded.reply)


def check(data: bytes, cuts: Sequence[int], counts: Counter[str] | None = None) -> None:
    """The whole property for one input: uncut, cut, and cut with a small ``max_frame``."""
    whole = Gt06Codec().receive_data(data, NOW)
    codec = Gt06Codec()
    cut = [decoded for piece in chunks(data, cuts) for decoded in codec.receive_data(piece, NOW)]
    assert cut == whole, "the outcome depends on how the stream is cut"
    small = Gt06Codec(max_frame=SMALL_FRAME)
    tight = [decoded for piece in chunks(data, cuts) for decoded in small.receive_data(piece, NOW)]
    for decoded in (*whole, *tight):
        check_decoded(decoded, NOW)
        if counts is not None:
            counts[decoded.error or "ok"] += 1
    assert codec.buffered <= 64 * 1024 and small.buffered <= SMALL_FRAME, "a partial packet outgrew max_frame"


def random_input(rng: random.Random) -> tuple[bytes, list[int]]:
    if rng.random() < 0.2:
        data = rng.randbytes(rng.randrange(0, 600))
    else:
        frames = [rng.choice(SEEDS) for _ in range(rng.randrange(1, 4))]
        if rng.random() < 0.8:
            frames.insert(0, LOGIN)
        ops = [(rng.randrange(7), rng.randrange(1 << 16), rng.randrange(1 << 16)) for _ in range(rng.randrange(5))]
        data = mutate(frames, ops)
    return data, [rng.randrange(1 << 16) for _ in range(rng.randrange(12))]


def main(argv: Sequence[str] | None = None) -> int:
    return fuzz("gt06", __doc__ or "", random_input, check, argv)


if __name__ == "__main__":
    raise SystemExit(main())
