"""The export for the government platform (与政府平台对接): elders served, incidents and services of one period.

What it owns
    Schema ``anxin.gov-export`` version :data:`VERSION` (docs/government-export.md, and the JSON Schema
    docs/schemas/gov-export-1.schema.json): a header and three record sets, built from the projection, the
    directory and a few marks folded from the journal (:class:`Marks`), as one JSON document or three CSV files
    in one zip. Pure: records in, a document out; no clock (``generated_at`` is given), no store, no file. The
    console's route and ``anxin export`` choose the period, fold the marks and journal the read.

Rules
    1. The period is whole local days of ``Settings.timezone``: a month (``2026-11``) or an inclusive range of
       days (``2026-11-01..2026-11-15``), at most :data:`MAX_DAYS` days. A thing belongs to it by its local time.
    2. Incidents: those opened in the period. A device's test call never; a drill only when asked
       (``include_drill``), and then marked. Technical incidents (battery, mains, check-ins) are listed, marked.
    3. Services: orders delivered in the period, and orders not delivered that were ordered in it (requested,
       scheduled, cancelled, no-show...). Drills as for incidents.
    4. Elders served: those with an incident of rule 2 that is not technical, or a service delivered in the
       period (rule 3). Their counts are of exactly those.
    5. Outcome of an incident: handed to an outside service (``to_120``, ``to_110``, ``to_119``) whatever came
       after, else ``false_alarm`` when it was cancelled, else ``resolved`` once resolved or closed, else ``open``.
    6. Durations are whole seconds from the opening: answered (acknowledged), first offer made, first responder
       at the door (an assignment's ``on_scene``, folded from the journal by :class:`Marks`).
    7. Rows come ordered by id (elders), by opening then id (incidents), by order then id (services); the JSON
       is written with sorted keys, so an export of the same journal is the same bytes.
    8. CSV: UTF-8 with a byte order mark, a header row, CRLF, lists ``;``-separated, nothing for "none", a cell
       a spreadsheet would run as a formula written after an apostrophe (dispatch.exporter rule 4). The zip's
       members carry a fixed date, so the same export is the same zip.

Never
    Never a phone, a resident id, an address, a position, a birth date (an age band instead), medical notes,
    contacts or a responder's name. An elder's name only when ``Settings.export_names`` is on, and then only in
    the elders' records.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.entries import AssignmentStatus, Cancelled
from dispatch.errors import InvalidInput
from dispatch.exporter import BOM, as_text
from dispatch.journal import Entry
from dispatch.machines import IncidentState
from dispatch.registry import Elder
from dispatch.state import Incident, Projection, ServiceOrder

SCHEMA = "anxin.gov-export"
VERSION = 1
MAX_DAYS = 366
FORMATS = ("json", "csv")
#: the age bands of the elders' records, by their lower bound in years (the last is open-ended)
AGE_BANDS = ((90, "90+"), (80, "80-89"), (70, "70-79"), (60, "60-69"), (0, "under_60"))

ELDER_FIELDS = (
    "elder_id", "name", "community", "age_band", "risk_flags", "care_level", "entitlement", "incidents", "services",
)  # fmt: skip
INCIDENT_FIELDS = (
    "incident_id", "elder_id", "community", "alarm_type", "source", "priority", "technical", "drill", "opened",
    "answer_s", "first_offer_s", "door_s", "outcome",
)  # fmt: skip
SERVICE_FIELDS = (
    "order_id", "elder_id", "community", "item", "provider", "mode", "ordered", "delivered", "state", "price_fen",
    "voucher_fen", "drill",
)  # fmt: skip
SETS = {"elders": ELDER_FIELDS, "incidents": INCIDENT_FIELDS, "services": SERVICE_FIELDS}
_OUTSIDE = {"120": "to_120", "110": "to_110", "119": "to_119"}
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")
#: the date written on the zip's members (rule 8): the earliest a zip can say
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


# -- the period -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """Whole local days, ``first`` to ``last`` inclusive, in the time zone ``tz``."""

    first: date
    last: date
    tz: str

    @property
    def start(self) -> float:
        return datetime.combine(self.first, time(), ZoneInfo(self.tz)).timestamp()

    @property
    def end(self) -> float:
        """The first instant after the period (exclusive)."""
        return datetime.combine(self.last + timedelta(days=1), time(), ZoneInfo(self.tz)).timestamp()

    def holds(self, ts: float) -> bool:
        return self.start <= ts < self.end

    @property
    def label(self) -> str:
        """How it was asked for: ``2026-11`` for a whole month, else ``first..last``."""
        month_end = (self.first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        if self.first.day == 1 and self.last == month_end:
            return self.first.strftime("%Y-%m")
        return f"{self.first.isoformat()}..{self.last.isoformat()}"


def parse_period(text: str, tz: str) -> Period:
    """``YYYY-MM`` (a month) or ``YYYY-MM-DD..YYYY-MM-DD`` (days, inclusive), in the centre's time zone."""
    text = text.strip()
    refused = InvalidInput(f"a period reads YYYY-MM or YYYY-MM-DD..YYYY-MM-DD, not {text!r}", field="period",
                           code="export_period", params={"period": text})  # fmt: skip
    try:
        if (month := _MONTH.match(text)) is not None:
            first = date(int(month[1]), int(month[2]), 1)
            last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        elif (days := _RANGE.match(text)) is not None:
            first, last = date.fromisoformat(days[1]), date.fromisoformat(days[2])
        else:
            raise refused
    except ValueError:
        raise refused from None
    if last < first or (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"a period runs forward over 1 to {MAX_DAYS} days, not {text!r}", field="period",
                           code="export_period", params={"period": text})  # fmt: skip
    return Period(first, last, tz)


def check_format(text: str) -> str:
    if text not in FORMATS:
        raise InvalidInput(f"the export's format is json or csv, not {text!r}", field="format", code="export_format",
                           params={"format": text})  # fmt: skip
    return text


# -- what the projection does not keep ---------------------------------------------------------------------


@dataclass(slots=True)
class Marks:
    """Folded from the journal (rule 5, rule 6): when each incident first had someone at the door, and which
    incidents were cancelled (the projection keeps neither once an incident moved on). A fold may begin anywhere
    before the period (an incident's entries all follow its opening); only the earliest door counts."""

    door: dict[str, float] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)

    def fold(self, entry: Entry) -> None:
        fact, incident_id = entry.fact, entry.incident_id
        if incident_id is None:
            return
        if isinstance(fact, AssignmentStatus) and fact.status == "on_scene":
            known = self.door.get(incident_id)
            if known is None or entry.ts < known:
                self.door[incident_id] = entry.ts
        elif isinstance(fact, Cancelled):
            self.cancelled.add(incident_id)

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> Marks:
        marks = cls()
        for entry in entries:
            marks.fold(entry)
        return marks


# -- the document -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sources:
    """What the export reads: the projection, the registry's elders, where an incident lies (dispatch.views
    ``incident_place``) and the marks."""

    state: Projection
    elders: Mapping[str, Elder]
    place: Callable[[Incident], str | None]
    marks: Marks


def build(
    sources: Sources,
    period: Period,
    *,
    generated_at: float,
    centre: str | None = None,
    names: bool = False,
    include_drill: bool = False,
) -> dict[str, Any]:
    """The export of ``period`` as one JSON-ready document (schema :data:`SCHEMA`, version :data:`VERSION`)."""
    incidents = chosen_incidents(sources.state.incidents.values(), period, include_drill=include_drill)
    orders = chosen_orders(sources.state.service_orders.values(), period, include_drill=include_drill)
    served = _served(incidents, orders, period)
    elders = [_elder_row(sources.elders.get(eid), eid, counts, period, names) for eid, counts in sorted(served.items())]
    incident_rows = [_incident_row(i, sources, period.tz) for i in incidents]
    service_rows = [_service_row(o, sources, period.tz) for o in orders]
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "centre": centre or None,
        "timezone": period.tz,
        "period": {
            "label": period.label,
            "first_day": period.first.isoformat(),
            "last_day": period.last.isoformat(),
            "start": iso(period.start, period.tz),
            "end": iso(period.end, period.tz),
        },
        "generated_at": iso(generated_at, period.tz),
        "drill_included": include_drill,
        "names_included": names,
        "counts": {"elders": len(elders), "incidents": len(incident_rows), "services": len(service_rows)},
        "elders": elders,
        "incidents": incident_rows,
        "services": service_rows,
    }


def chosen_incidents(incidents: Iterable[Incident], period: Period, *, include_drill: bool) -> list[Incident]:
    """Rule 2, in the order of rule 7."""
    chosen = [
        i for i in incidents if period.holds(i.opened_at) and not i.test and (include_drill or not i.drill)
    ]  # fmt: skip
    return sorted(chosen, key=lambda i: (i.opened_at, i.incident_id))


def chosen_orders(orders: Iterable[ServiceOrder], period: Period, *, include_drill: bool) -> list[ServiceOrder]:
    """Rule 3, in the order of rule 7."""
    chosen = [
        o for o in orders
        if (include_drill or not o.drill)
        and (period.holds(o.delivered_at) if o.delivered_at is not None else period.holds(o.ordered_at))
    ]  # fmt: skip
    return sorted(chosen, key=lambda o: (o.ordered_at, o.order_id))


def _served(incidents: Iterable[Incident], orders: Iterable[ServiceOrder], period: Period) -> dict[str, list[int]]:
    """Rule 4: each elder served, with their incidents and services counted."""
    served: dict[str, list[int]] = {}
    for incident in incidents:
        if incident.elder_id is not None and not incident.technical:
            served.setdefault(incident.elder_id, [0, 0])[0] += 1
    for order in orders:
        if order.delivered_at is not None and period.holds(order.delivered_at):
            served.setdefault(order.elder_id, [0, 0])[1] += 1
    return served


def _elder_row(elder: Elder | None, elder_id: str, counts: list[int], period: Period, names: bool) -> dict[str, Any]:
    return {
        "elder_id": elder_id,
        "name": elder.name if names and elder is not None else None,
        "community": elder.community if elder is not None else None,
        "age_band": age_band(elder.birth_date, period.last) if elder is not None else None,
        "risk_flags": sorted(elder.risk_flags) if elder is not None else [],
        "care_level": elder.care_level if elder is not None else None,
        "entitlement": elder.entitlement if elder is not None else None,
        "incidents": counts[0],
        "services": counts[1],
    }


def age_band(birth: date | None, on: date) -> str | None:
    """The band of the age reached on ``on`` (the period's last day); None without a birth date."""
    if birth is None:
        return None
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return next(label for floor, label in AGE_BANDS if years >= floor)


def _incident_row(incident: Incident, sources: Sources, tz: str) -> dict[str, Any]:
    state, opened = sources.state, incident.opened_at
    first = state.assignments.get(incident.assignments[0]) if incident.assignments else None
    door = sources.marks.door.get(incident.incident_id)
    return {
        "incident_id": incident.incident_id,
        "elder_id": incident.elder_id,
        "community": sources.place(incident),
        "alarm_type": incident.alarm_type,
        "source": incident.source,
        "priority": incident.priority,
        "technical": incident.technical,
        "drill": incident.drill,
        "opened": iso(opened, tz),
        "answer_s": _seconds(opened, incident.acknowledged_at),
        "first_offer_s": _seconds(opened, first.offered_at if first is not None else None),
        "door_s": _seconds(opened, door),
        "outcome": outcome(incident, sources.marks),
    }


def outcome(incident: Incident, marks: Marks) -> str:
    """Rule 5."""
    if incident.escalated_to is not None:
        return _OUTSIDE[incident.escalated_to]
    if incident.incident_id in marks.cancelled or incident.state is IncidentState.CANCELLED:
        return "false_alarm"
    if incident.state in (IncidentState.RESOLVED, IncidentState.CLOSED):
        return "resolved"
    return "open"


def _service_row(order: ServiceOrder, sources: Sources, tz: str) -> dict[str, Any]:
    charge = sources.state.ledger.charge(order.order_id)
    counted = charge is not None and not charge.voided
    elder = sources.elders.get(order.elder_id)
    community = charge.delivery.community if charge is not None else (elder.community if elder else None)
    return {
        "order_id": order.order_id,
        "elder_id": order.elder_id,
        "community": community,
        "item": order.item_id,
        "provider": order.provider,
        "mode": order.mode,
        "ordered": iso(order.ordered_at, tz),
        "delivered": iso(order.delivered_at, tz) if order.delivered_at is not None else None,
        "state": order.state.value,
        "price_fen": order.price_fen,
        "voucher_fen": charge.voucher_fen if counted and charge is not None else 0,
        "drill": order.drill,
    }


def _seconds(start: float, then: float | None) -> int | None:
    return None if then is None else round(then - start)


def iso(ts: float, tz: str) -> str:
    """An instant as ISO 8601 in the centre's time zone, to the second, with its offset."""
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).isoformat(timespec="seconds")


# -- the formats ------------------------------------------------------------------------------------------


def to_json(document: Mapping[str, Any]) -> str:
    """Rule 7: sorted keys, Chinese as written, one line per field."""
    return json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def to_csv(document: Mapping[str, Any], which: str) -> str:
    """One record set of the document as CSV text (rule 8)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    columns = SETS[which]
    writer.writerow(columns)
    for row in document[which]:
        writer.writerow([as_text(cell(row[column])) for column in columns])
    return out.getvalue()


def cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


def csv_names(document: Mapping[str, Any]) -> dict[str, str]:
    """Each record set's file name in the zip: ``gov-export-<period>-<set>.csv``."""
    label = str(document["period"]["label"]).replace("..", "_")
    return {which: f"gov-export-{label}-{which}.csv" for which in SETS}


def to_zip(document: Mapping[str, Any]) -> bytes:
    """The three CSV files in one zip (rule 8)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for which, name in csv_names(document).items():
            member = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            member.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(member, to_csv(document, which).encode("utf-8"))
    return out.getvalue()
