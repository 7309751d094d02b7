"""What devices say, protocol-neutral, and what the core remembers about each device.

The gateway decodes frames into :class:`DeviceReport` (the same fields whatever the protocol) and hands
them to :meth:`dispatch.engine.Engine.report_device`. Supervision lives here as data: each device's last
report, battery and position (:class:`DeviceStatus`). The check-in deadline itself is an engine timer.

Rules
    1. A device that reports clears its own "missed check-in" condition and re-arms its deadline.
    2. Check-ins and links are not journaled one by one (a city's heartbeats would drown the record);
       positions are journaled at most every ``POSITION_EVERY_S`` or when the wearer moved
       ``POSITION_MOVE_M``; alarms, restores, health readings and unknown devices always are.
    3. After a restart every device is given one full interval (plus grace) before it can be reported
       missing: the last-seen times are not in the journal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ReportKind = Literal["alarm", "restore", "checkin", "position", "health", "login", "info"]

POSITION_EVERY_S = 300.0
POSITION_MOVE_M = 200.0
UNKNOWN_EVERY_S = 3600.0
#: a message with the dedup key of one recorded this long ago is a repeat; older, it is new (sequence numbers
#: wrap at 9999 and restart at power-up)
DEDUP_WINDOW_S = 600.0


@dataclass(frozen=True, slots=True)
class DeviceReport:
    """What a device said, whatever its protocol; the gateway's codecs produce these (as ``DeviceEvent``)."""

    protocol: str
    device_id: str
    kind: ReportKind
    code: str
    alarm_type: str | None = None
    lat: float | None = None
    lon: float | None = None
    battery: int | None = None
    device_time: float | None = None
    zone: str | None = None
    dedup: str | None = None
    detail: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(slots=True)
class DeviceStatus:
    last_seen: float | None = None
    battery: int | None = None
    lat: float | None = None
    lon: float | None = None
    pos_at: float | None = None
    journaled_pos: tuple[float, float, float] | None = None  # lat, lon, ts of the last journaled position

    def as_dict(self) -> dict[str, Any]:
        return {
            "last_seen": self.last_seen,
            "battery": self.battery,
            "lat": self.lat,
            "lon": self.lon,
            "pos_at": self.pos_at,
        }
