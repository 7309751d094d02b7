"""What devices say, protocol-neutral, and the tally of what unregistered devices say.

The gateway's codecs decode frames into :class:`DeviceReport` (the same fields whatever the protocol) and hand
them to the core's intake (:mod:`dispatch.intake`); :mod:`dispatch.supervision` turns them into journal entries
and watches each device's check-ins. The constants below are supervision's rules (see that module).

:class:`UnknownTally` counts, in memory, what devices nobody registered said during one interval: frames per
protocol and kind, alarm types, the distinct ids (at most ``ids_kept`` of them; the rest are counted, not
named). Supervision writes it as one journal entry per interval; the supervisors' view reads its alerts. It
holds no clock and writes nothing: the caller passes ``now`` and decides what to journal.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal

ReportKind = Literal["alarm", "restore", "checkin", "position", "health", "login", "info"]

POSITION_EVERY_S = 300.0
POSITION_MOVE_M = 200.0
#: a message with the dedup key of one recorded this long ago is a repeat; older, it is new (sequence numbers
#: wrap at 9999 and restart at power-up)
DEDUP_WINDOW_S = 600.0
#: the shortest time a jump in position is measured over: two fixes a second apart are GPS jitter, not speed
#: (at the default 250 km/h, a fix up to ~2 km from the last one is always believed)
MIN_FIX_GAP_S = 30.0
#: how many ids a summary or an alert names (the counts cover them all)
SAMPLE_IDS = 20
#: how many past intervals with unknown devices' alarms the supervisors' view keeps (newest first)
INTERVALS_KEPT = 24


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
class UnknownInterval:
    """One interval of unregistered devices' traffic (receive times ``since`` .. ``until``)."""

    since: float
    until: float
    frames: int = 0
    alarms: int = 0
    #: (protocol, kind, alarm type or None) -> frames
    counts: Counter[tuple[str, str, str | None]] = field(default_factory=Counter)
    #: ``protocol:device_id`` of the distinct devices seen, in order, at most ``ids_kept``
    ids: dict[str, None] = field(default_factory=dict)
    more: bool = False  # more distinct devices came than were kept
    alarm_devices: dict[str, None] = field(default_factory=dict)  # the first SAMPLE_IDS that sent alarms
    urgent: bool = False  # an SOS, fall, medical or fire alarm among them
    alerted: bool = False  # the interval's alert (its first alarm) is written
    closed: bool = False


class UnknownTally:
    """What unregistered devices said, counted per interval; bounded whatever they send."""

    def __init__(self, ids_kept: int) -> None:
        self.ids_kept = ids_kept
        self.current: UnknownInterval | None = None
        #: closed intervals that held alarms, oldest first (the supervisors' recent alerts)
        self.recent: deque[UnknownInterval] = deque(maxlen=INTERVALS_KEPT)

    def count(self, report: DeviceReport, now: float, *, alarm: bool = False, urgent: bool = False) -> UnknownInterval:
        """Count one report of an unregistered device (``alarm``: one a person would have to see to, ``urgent``:
        an SOS, fall, medical or fire alarm); the interval it fell in (a new one when none was open)."""
        interval = self.current
        if interval is None:
            interval = self.current = UnknownInterval(now, now)
        interval.until = now
        interval.frames += 1
        interval.counts[(report.protocol, report.kind, report.alarm_type if report.kind == "alarm" else None)] += 1
        key = f"{report.protocol}:{report.device_id}"
        if key not in interval.ids:
            if len(interval.ids) < self.ids_kept:
                interval.ids[key] = None
            else:
                interval.more = True
        if alarm:
            interval.alarms += 1
            interval.urgent = interval.urgent or urgent
            if len(interval.alarm_devices) < SAMPLE_IDS:
                interval.alarm_devices[key] = None
        return interval

    def close(self) -> UnknownInterval | None:
        """End the open interval (its summary is due); None when nothing came."""
        interval, self.current = self.current, None
        if interval is not None:
            interval.closed = True
            if interval.alarms:
                self.recent.append(interval)
        return interval

    def alerts(self) -> list[UnknownInterval]:
        """The intervals with alarms, newest first: the open one (counts still growing), then the closed ones."""
        shown = [self.current] if self.current is not None and self.current.alarms else []
        return shown + list(reversed(self.recent))
