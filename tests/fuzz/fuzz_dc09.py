"""Fuzz target for the SIA DC-09 codec (gateway/dc09.py).

    python -m tests.fuzz.fuzz_dc09 --seconds 60 [--seed N]

The property, shared with the hypothesis test in tests/gateway/test_dc09.py:

1. ``receive_data`` and ``datagram`` return lists of ``Decoded`` and raise nothing, whatever the bytes;
2. every ``error`` is a documented reason (never "internal", which would be a bug of ours), and every reply
   is a well-formed DC-09 frame of the kind the reply policy prescribes for that reason;
3. every event passes the shared invariants (:func:`check_event`);
4. the outcome of a TCP stream does not depend on how it is cut into reads.

Inputs are arbitrary bytes and valid frames (the captured vectors and frames from ``build_message``) mutated by
bit flips, truncation, splicing, deletion, insertion and duplication (with the CRC and length
sometimes made right again, so that the damage reaches the decoder), then cut at random places.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from gateway.dc09 import PLAIN_KEYED_CODE, REASONS, REPLY_POLICY, Dc09Codec, build_message, crc16_arc
from gateway.events import Decoded, DeviceEvent, EventKind
from tests.fuzz.runner import fuzz
from tests.fuzz.runner import mutate as shared_mutate

VECTORS = Path(__file__).resolve().parents[1] / "gateway" / "vectors" / "dc09-vectors.jsonl"
NOW = 1_718_000_000.0  # 2024-06-10 06:13:20 UTC: the receiver's clock for every fuzz run
KEYS: dict[str, bytes] = {
    "080027E62A64": bytes.fromhex("ABCDABCDABCDABCDABCDABCDABCDABCD"),
    "A128": bytes(range(16)),
    "B192": bytes(range(24)),
    "C256": bytes(range(32)),
}


def fixed_pad(count: int) -> bytes:
    """Deterministic padding so that encrypted ACKs compare equal between runs."""
    return bytes(count)


def codec() -> Dc09Codec:
    return Dc09Codec(KEYS.get, max_frame=512, random_bytes=fixed_pad)


def seed_frames() -> list[bytes]:
    """Valid frames to mutate: the captured vectors and one of each kind built at ``NOW``."""
    frames = [json.loads(line)["frame"].encode("latin-1") for line in VECTORS.read_text().splitlines() if line]
    for account in ("A128", "B192", "C256", None):
        key = KEYS[account] if account else None
        acct = account or "1234"
        frames += [
            build_message("ADM-CID", 1, acct, "1101 01 015", key=key, timestamp=NOW, random_bytes=fixed_pad),
            build_message("SIA-DCS", 2, acct, "Nri1/MA01", key=key, timestamp=NOW, position=(24.51, 117.7)),
            build_message("NULL", 3, acct, key=key, timestamp=NOW + 15, receiver="C0FFD"),
        ]
    frames.append(build_message("SIA-DCS", 4, "1234", "Nri2/QA03/FA04|Ahelp", timestamp=NOW - 39))
    return frames


SEEDS = seed_frames()


_FRAME = re.compile(rb'\n[0-9A-Fa-f]{8}("[^\n\r]*)\r')


def _reseal(match: re.Match[bytes]) -> bytes:
    body = match[1]
    return b"\n%04X%04X%s\r" % (crc16_arc(body), len(body), body)


def mutate(frames: Sequence[bytes], ops: Sequence[tuple[int, int, int]]) -> bytes:
    return shared_mutate(
        frames,
        ops,
        seeds=SEEDS,
        special=b'\n\r"[]|#_*',
        reseal=lambda data, at: bytearray(_FRAME.sub(_reseal, bytes(data))),
    )


def chunks(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


_EVENT_KINDS = frozenset(get_args(EventKind))
_REPLY = re.compile(rb'\n([0-9A-F]{4})([0-9A-F]{4})("(\*?)(ACK|NAK|DUH)"[^\r\n]*)\r')


def check_event(event: DeviceEvent, now: float, window: tuple[float, float] = (-40.0, 20.0)) -> None:
    """The invariants every decoded DC-09 event keeps."""
    assert event.protocol == "sia-dc09"
    assert event.kind in _EVENT_KINDS
    assert event.device_id and event.dedup
    assert event.code in ("NULL", PLAIN_KEYED_CODE) or event.code.startswith(("CID:", "SIA:"))
    assert (event.lat is None) == (event.lon is None)
    if event.lat is not None and event.lon is not None:
        assert -90.0 <= event.lat <= 90.0
        assert -180.0 <= event.lon <= 180.0
    if event.battery is not None:
        assert 0 <= event.battery <= 100
    if event.device_time is not None:
        assert now + window[0] <= event.device_time <= now + window[1]  # never far in the future or the past
        assert 946_684_800 <= event.device_time < 4_102_444_800  # 2000..2100: not absurd
    if event.kind in ("alarm", "restore"):
        assert event.alarm_type is not None


def check_decoded(decoded: Decoded, now: float, window: tuple[float, float] = (-40.0, 20.0)) -> None:
    """A frame's outcome: a documented reason, and the reply the policy prescribes for it."""
    assert isinstance(decoded, Decoded)
    assert decoded.error is None or decoded.error in REASONS
    assert decoded.error != "internal", "an exception escaped the decoder"
    for event in decoded.events:
        check_event(event, now, window)
    expected = "ack" if decoded.error is None else REPLY_POLICY[decoded.error]
    if expected in ("none", "ignore"):
        assert decoded.reply is None
        assert not decoded.events
        return
    assert decoded.reply is not None
    match = _REPLY.fullmatch(decoded.reply)
    assert match is not None, decoded.reply
    crc, length, body, star, token = match.groups()
    assert int(crc, 16) == crc16_arc(body) and int(length, 16) == len(body)
    assert token.decode().lower() == expected
    assert not star or token == b"ACK"  # only an ACK is ever encrypted
    if decoded.error == "plain_keyed":  # a plain message for a keyed account: DUH, and its tamper event only
        assert [(e.kind, e.code) for e in decoded.events] == [("alarm", PLAIN_KEYED_CODE)]
    elif decoded.error is not None:
        assert not decoded.events


def check(data: bytes, cuts: Sequence[int], counts: Counter[str] | None = None) -> None:
    """The whole property for one input: as a TCP stream, cut and uncut, and as a datagram."""
    whole = codec().receive_data(data, NOW)
    tcp = codec()
    cut = [decoded for piece in chunks(data, cuts) for decoded in tcp.receive_data(piece, NOW)]
    assert cut == whole, "the outcome depends on how the stream is cut"
    udp = codec().datagram(data, NOW)
    for decoded in (*whole, *udp):
        check_decoded(decoded, NOW)
        if counts is not None:
            counts[decoded.error or "ok"] += 1
    assert len([d for d in whole if d.error != "framing"]) <= data.count(b"\r")


def random_input(rng: random.Random) -> tuple[bytes, list[int]]:
    if rng.random() < 0.2:
        data = rng.randbytes(rng.randrange(0, 600))
    else:
        frames = [rng.choice(SEEDS) for _ in range(rng.randrange(1, 4))]
        ops = [(rng.randrange(7), rng.randrange(1 << 16), rng.randrange(1 << 16)) for _ in range(rng.randrange(5))]
        data = mutate(frames, ops)
    return data, [rng.randrange(1 << 16) for _ in range(rng.randrange(10))]


def main(argv: Sequence[str] | None = None) -> int:
    return fuzz("dc09", __doc__ or "", random_input, check, argv)


if __name__ == "__main__":
    raise SystemExit(main())
