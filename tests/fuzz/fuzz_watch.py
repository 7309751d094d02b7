"""Fuzz target for the 3G/4G watch codec (gateway/watch.py).

    python -m tests.fuzz.fuzz_watch --seconds 60 [--seed N]

The property, shared with the hypothesis tests in tests/gateway/test_watch.py:

1. ``receive_data`` returns a list of ``Decoded`` and raises nothing, whatever the bytes, and terminates;
2. every ``error`` is a documented reason (never "internal", which would be a bug of ours) with no reply and no
   events; every reply is a well-formed watch frame of a type the reply table allows, for the frame's device;
3. every event passes the shared invariants (:func:`tests.fuzz.tracker_common.check_event`);
4. the outcome of a stream does not depend on how it is cut into reads (with the default ``max_frame``);
   with a small ``max_frame`` properties 1-3 still hold.

Inputs are arbitrary bytes and valid frames (the captured vectors and a few built here) mutated by bit flips,
truncation, splicing, deletion, insertion of delimiters and escapes, and duplication (with LLLL sometimes made
right again), then cut at random places.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence

from gateway.events import Decoded
from gateway.watch import PROTOCOL, REASONS, REPLIES, WatchCodec, parse_frame
from tests.fuzz.runner import fuzz
from tests.fuzz.runner import mutate as shared_mutate
from tests.fuzz.tracker_common import check_event, chunks, load_vectors

NOW = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC: the receiver's clock for every fuzz run
SMALL_FRAME = 96

#: Reply contents a frame may get: the reply table, "AL" for alarms, and the TKQ echoes.
ALLOWED_REPLIES = frozenset({*REPLIES.values(), "AL", "TKQ", "TKQ2"})


def seed_frames() -> list[bytes]:
    frames = [vector.frame for vector in load_vectors("watch-traccar.jsonl")]
    frames += [
        b"[3G*1234567890*000A*LK,12,3,87]",
        b"[ZJ*357653059860416*0007*0002*LK]",
        b"[3G*1234567890*0010*INIT,13800000000,1,0]",
        b"[CS*1234567890*0000*AL,010126,000000,A,-33.9,S,18.4,E,0,0,0,5,90,50,0,0,00610001,0]",
        b"[SG*1234567890*0009*TKQ2]",
        b"[SG*1234567890*0012*TK,\x7d\x01\x7d\x02\x7d\x03\x7d\x04\x7d\x05\xff\x00]",
        b"[3G*1234567890*0008*heart,250]",
    ]
    return frames


SEEDS = seed_frames()
_DELIMITERS = b"[]*,}\x01\x02\x03\x04\x05AV"
_HEADER = re.compile(rb"\[([0-9A-Za-z]{2,4}\*[0-9A-Za-z]{1,32}(?:\*[0-9A-Fa-f]{4})?)\*[0-9A-Fa-f]{4}\*([^\[\]]*)\]")


def _reseal(match: re.Match[bytes]) -> bytes:
    return b"[%s*%04X*%s]" % (match[1], len(match[2]), match[2])


def mutate(frames: Sequence[bytes], ops: Sequence[tuple[int, int, int]]) -> bytes:
    return shared_mutate(
        frames,
        ops,
        seeds=SEEDS,
        special=bytes(_DELIMITERS),
        reseal=lambda data, at: bytearray(_HEADER.sub(_reseal, bytes(data))),
    )


def check_decoded(decoded: Decoded, now: float) -> None:
    """A frame's outcome: a documented reason without reply or events, or events and an allowed reply."""
    assert isinstance(decoded, Decoded)
    assert decoded.error is None or decoded.error in REASONS
    assert decoded.error != "internal", "an exception escaped the decoder"
    if decoded.error is not None:
        assert decoded.reply is None and not decoded.events
        return
    assert decoded.events
    for event in decoded.events:
        check_event(event, PROTOCOL, now)
    if decoded.reply is not None:
        reply = parse_frame(decoded.reply)
        content = reply.type + ("," + reply.body.decode("ascii") if reply.body else "")
        assert content.upper() in ALLOWED_REPLIES, decoded.reply  # TKQ is echoed as the watch spelled it
        assert reply.length == reply.content_length
        assert {event.device_id for event in decoded.events} == {reply.device_id}


def check(data: bytes, cuts: Sequence[int], counts: Counter[str] | None = None) -> None:
    """The whole property for one input: uncut, cut, and cut with a small ``max_frame``."""
    whole = WatchCodec().receive_data(data, NOW)
    codec = WatchCodec()
    cut = [decoded for piece in chunks(data, cuts) for decoded in codec.receive_data(piece, NOW)]
    assert cut == whole, "the outcome depends on how the stream is cut"
    small = WatchCodec(max_frame=SMALL_FRAME)
    tight = [decoded for piece in chunks(data, cuts) for decoded in small.receive_data(piece, NOW)]
    for decoded in (*whole, *tight):
        check_decoded(decoded, NOW)
        if counts is not None:
            counts[decoded.error or "ok"] += 1
    assert len(whole) <= data.count(b"[")
    assert small.buffered <= SMALL_FRAME, "a partial frame outgrew max_frame"


def random_input(rng: random.Random) -> tuple[bytes, list[int]]:
    if rng.random() < 0.2:
        data = rng.randbytes(rng.randrange(0, 600))
    else:
        frames = [rng.choice(SEEDS) for _ in range(rng.randrange(1, 4))]
        ops = [(rng.randrange(7), rng.randrange(1 << 16), rng.randrange(1 << 16)) for _ in range(rng.randrange(5))]
        data = mutate(frames, ops)
    return data, [rng.randrange(1 << 16) for _ in range(rng.randrange(12))]


def main(argv: Sequence[str] | None = None) -> int:
    return fuzz("watch", __doc__ or "", random_input, check, argv)


if __name__ == "__main__":
    raise SystemExit(main())
