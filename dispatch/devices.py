"""What devices say, protocol-neutral.

The gateway's codecs decode frames into :class:`DeviceReport` (the same fields whatever the protocol) and hand
them to the core's intake (:mod:`dispatch.intake`); :mod:`dispatch.supervision` turns them into journal entries
and watches each device's check-ins. The constants below are supervision's rules (see that module).
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
