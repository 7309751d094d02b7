"""What the watch and GT06 fuzz targets and tests share: the event invariants, vectors, stream cutting.

:func:`check_event` is the shared invariant every decoded watch or GT06 event keeps, whatever the bytes were:
latitude within ±90 and longitude within ±180 (both or neither), battery 0-100, a device time not more than a
day ahead of the receiver's clock (nor before 2000), an alarm type Anxin's triage knows, and no dedup key.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from dispatch.triage import ALARM_TYPES
from gateway.events import Decoded, DeviceEvent, EventKind

VECTORS = Path(__file__).resolve().parents[1] / "gateway" / "vectors"
DAY_S = 86_400.0
Y2000 = 946_684_800.0
_EVENT_KINDS = frozenset(get_args(EventKind))


@dataclass(frozen=True, slots=True)
class Vector:
    """One captured frame and what Traccar's own test asserts about it."""

    index: int  # line number in the .jsonl file, from 0
    frame: bytes
    check: str
    expectation: str


def load_vectors(name: str) -> list[Vector]:
    vectors = []
    for index, line in enumerate((VECTORS / name).read_text().splitlines()):
        record = json.loads(line)
        raw = record["frame"]
        frame = bytes.fromhex(raw) if record["encoding"] == "hex" else raw.encode("ascii")
        vectors.append(Vector(index, frame, record["traccar_check"], record["traccar_expectation"]))
    return vectors


def check_event(event: DeviceEvent, protocol: str, now: float) -> None:
    """The invariants every decoded watch or GT06 event keeps."""
    assert isinstance(event, DeviceEvent)
    assert event.protocol == protocol
    assert event.kind in _EVENT_KINDS
    assert event.device_id and event.device_id.isascii()
    assert event.code
    assert (event.lat is None) == (event.lon is None)
    if event.lat is not None and event.lon is not None:
        assert -90.0 <= event.lat <= 90.0, event
        assert -180.0 <= event.lon <= 180.0, event
        assert (event.lat, event.lon) != (0.0, 0.0)
    if event.battery is not None:
        assert 0 <= event.battery <= 100, event
    if event.device_time is not None:
        assert Y2000 <= event.device_time <= now + DAY_S, event
    if event.kind == "alarm":
        assert event.alarm_type in ALARM_TYPES, event
    else:
        assert event.alarm_type is None
    assert event.dedup is None


def chunks(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``data`` cut at the positions ``cuts`` (taken modulo its length, in any order)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


# Hypothesis draws plain bytes (cheap to generate and to shrink) and these helpers turn them into structure.


def ops_from(raw: bytes, kinds: int = 7) -> list[tuple[int, int, int]]:
    """Mutation operations (operation, position, value) from 5 bytes each."""
    return [
        (raw[i] % kinds, int.from_bytes(raw[i + 1 : i + 3], "big"), int.from_bytes(raw[i + 3 : i + 5], "big"))
        for i in range(0, len(raw) - 4, 5)
    ]


def cuts_from(raw: bytes) -> list[int]:
    """Cut positions from 2 bytes each."""
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw) - 1, 2)]


def sprinkle(raw: bytes, alphabet: bytes) -> bytes:
    """``raw`` with its highest byte values turned into the protocol's delimiters, so that noise hits them."""
    top = 256 - len(alphabet)
    return bytes(alphabet[b - top] if b >= top else b for b in raw)


def events(results: Sequence[Decoded]) -> list[DeviceEvent]:
    return [event for decoded in results for event in decoded.events]


def position(results: Sequence[Decoded]) -> tuple[float, float] | None:
    """The one place the frames' events put the device, rounded to about a metre, or None."""
    places = {(round(e.lat, 5), round(e.lon, 5)) for e in events(results) if e.lat is not None and e.lon is not None}
    assert len(places) <= 1
    return places.pop() if places else None
