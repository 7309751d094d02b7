"""What the codecs produce: normalised device events and the replies owed to devices.

Small frozen dataclasses, protocol-neutral; the event type is the core's ``DeviceReport``.
``alarm_type`` uses Anxin's alarm types (dispatch.triage);
``code`` keeps the protocol's own code for the record ("CID:1101", "SIA:MA", "WATCH:AL:sos", "GT06:16:01").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Final

from dispatch.devices import DeviceReport, ReportKind

#: A decoded device event is the core's protocol-neutral report: one type from the codec to the engine,
#: handed over as it is (no field-by-field copy on the intake path).
DeviceEvent = DeviceReport
EventKind = ReportKind


@dataclass(frozen=True, slots=True)
class Decoded:
    """One frame's outcome: events to record, then ``reply`` to send once they are durable.

    ``error`` names why a frame was refused (the reply is then the protocol's negative answer, or None when
    the protocol says to stay silent). How urgent the events are is the core's intake's business.
    """

    events: tuple[DeviceEvent, ...] = ()
    reply: bytes | None = None
    error: str | None = None


#: a device time more than this ahead of the receiver's is a clock gone wrong
FUTURE_SLACK_S: Final = 86_400.0
#: 2000-01-01 UTC: a device time before it is a clock never set (or a counter)
EARLIEST_TIME: Final = 946_684_800.0


def trusted_time(when: float | None, now: float, counters: Counter[str]) -> float | None:
    """A device's own time as the record keeps it: None when it is more than a day ahead of ``now``
    (``future_time``) or before 2000 (``unset_time``), each counted in the codec's ``counters``."""
    if when is None:
        return None
    if when > now + FUTURE_SLACK_S:
        counters["future_time"] += 1
        return None
    if when < EARLIEST_TIME:
        counters["unset_time"] += 1
        return None
    return when
