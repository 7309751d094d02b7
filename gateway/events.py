"""What the codecs produce: normalised device events and the replies owed to devices.

Small frozen dataclasses, protocol-neutral. ``alarm_type`` uses Anxin's alarm types (dispatch.triage);
``code`` keeps the protocol's own code for the record ("CID:1101", "SIA:MA", "WATCH:AL:sos", "GT06:16:01").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal["alarm", "restore", "checkin", "position", "health", "login", "info"]


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    protocol: str
    device_id: str
    kind: EventKind
    code: str
    alarm_type: str | None = None
    lat: float | None = None
    lon: float | None = None
    battery: int | None = None
    device_time: float | None = None
    zone: str | None = None
    dedup: str | None = None
    detail: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Decoded:
    """One frame's outcome: events to record, then ``reply`` to send once they are durable.

    ``error`` names why a frame was refused (the reply is then the protocol's negative answer, or None when
    the protocol says to stay silent). ``urgent`` is true when an event is an SOS, fall, medical or fire
    alarm: the transport lets it overtake routine work.
    """

    events: tuple[DeviceEvent, ...] = ()
    reply: bytes | None = None
    error: str | None = None

    @property
    def urgent(self) -> bool:
        return any(e.kind == "alarm" and e.alarm_type in URGENT for e in self.events)


URGENT = frozenset({"sos", "fall", "medical", "fire"})
