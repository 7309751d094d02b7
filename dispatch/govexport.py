"""The export for the government platform (与政府平台对接): elders served, incidents and services of one period.

What it owns
    Schema ``anxin.gov-export`` version :data:`VERSION` (docs/government-export.md, and the JSON Schema
    docs/schemas/gov-export-1.schema.json): a header and three record sets, built from the projection and the
    directory alone (no journal read: the projection keeps each assignment's ``on_scene_at`` and each incident's
    ``cancelled_at``), as one JSON document or three CSV files in one zip. Pure: records in, a document out; no
    clock (``generated_at`` is given), no store, no file. The console's route and ``anxin export`` choose the
    period and journal the read.

Rules
    1. The period is whole local days of ``Settings.timezone``: a month (``2026-11``) or an inclusive range of
       days (``2026-11-01..2026-11-15``), at most :data:`MAX_DAYS` days. A thing belongs to it by its local time.
       It is parsed into the period report's :class:`~dispatch.periodreport.Period` (start inclusive, end the
       first instant after the last day), labelled ``2026-11`` for a whole month, else ``first..last``.
    2. Incidents: those opened in the period. A device's test call never; a drill only when asked
       (``include_drill``), and then marked. Technical incidents (battery, mains, check-ins) are listed, marked.
    3. Services: orders delivered in the period, and orders not delivered that were ordered in it (requested,
       scheduled, cancelled, no-show...). Drills as for incidents.
    4. Elders served: those with an incident of rule 2 that is not technical, or a service delivered in the
       period (rule 3). Their counts are of exactly those.
    5. Outcome of an incident: the period report's (dispatch.periodreport ``outcome``): handed to an outside
       service (``to_120``, ``to_110``, ``to_119``) whatever came after, else ``false_alarm`` when it was
       cancelled (``cancelled_at``, kept after it is closed), else ``resolved`` once resolved or closed, else
       ``open``. Escalating and cancelling exclude each other (dispatch.machines), so the order of the two
       questions does not matter.
    6. Durations are whole seconds from the opening: answered (acknowledged), first offer made, first responder
       at the door (the earliest ``on_scene_at`` of its assignments, even after the period's end).
    7. Rows come ordered by id (elders), by opening then id (incidents), by order then id (services); the JSON
       is written with sorted keys, so an export of the same journal is the same bytes.
    8. CSV: UTF-8 with a byte order mark, a header row, CRLF, lists ``;``-separated, nothing for "none", a cell
       a spreadsheet would run as a formula written after an apostrophe (dispatch.exporter rule 4). The zip's
       members carry a fixed date, so the same export is the same zip.
    9. The document is folded in slices like the period report (dispatch.periodreport rule 5, its
       :class:`~dispatch.periodreport.Pace` and ``run_on_loop``): a yield every 250 records looked at, the rows
       put in order by ``ordered``. Each record is written into its row at its turn, from lists of the
       projection's records taken when :func:`fold` is called. Its file is written in slices too
       (:func:`file_steps`: JSON pieces, CSV rows, the zip's compression a chunk at a time), the same bytes as
       written at once (:func:`to_json`, :func:`to_zip`).

Never
    Never a phone, a resident id, an address, a position, a birth date (an age band instead), medical notes,
    contacts or a responder's name. An elder's name only when ``Settings.export_names`` is on, and then only in
    the elders' records. Never read the journal, and never pass over every record in one slice.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.errors import InvalidInput
from dispatch.exporter import BOM, as_text
from dispatch.periodreport import Pace, Period, Steps, ordered, outcome, run, span
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
#: ASCII digits, matched whole (``\d`` takes "２０２６", as the period report's patterns say)
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_RANGE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})\.\.([0-9]{4}-[0-9]{2}-[0-9]{2})")
#: the date written on the zip's members (rule 8): the earliest a zip can say
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


# -- the period -------------------------------------------------------------------------------------------


def parse_period(text: str, tz: str) -> Period:
    """``YYYY-MM`` (a month) or ``YYYY-MM-DD..YYYY-MM-DD`` (days, inclusive), in the centre's time zone: the
    period report's :class:`Period` (its end the first instant after the last day), labelled as rule 1 says."""
    text = text.strip()
    refused = InvalidInput(f"a period reads YYYY-MM or YYYY-MM-DD..YYYY-MM-DD, not {text!r}", field="period",
                           code="export_period", params={"period": text})  # fmt: skip
    try:
        if (month := _MONTH.fullmatch(text)) is not None:
            first = date(int(month[1]), int(month[2]), 1)
            last = _month_end(first)
        elif (days := _RANGE.fullmatch(text)) is not None:
            first, last = date.fromisoformat(days[1]), date.fromisoformat(days[2])
        else:
            raise refused
    except (OverflowError, ValueError):  # a day that is none
        raise refused from None
    if last < first or (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"a period runs forward over 1 to {MAX_DAYS} days, not {text!r}", field="period",
                           code="export_period", params={"period": text})  # fmt: skip
    try:
        return span(first, last + timedelta(days=1), _label(first, last), tz)
    except (OverflowError, ValueError):  # a day a date or a time cannot follow or hold (9999-12)
        raise refused from None


def _month_end(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _label(first: date, last: date) -> str:
    """``2026-11`` for a whole month, however it was asked for, else ``first..last``."""
    if first.day == 1 and last == _month_end(first):
        return first.strftime("%Y-%m")
    return f"{first.isoformat()}..{last.isoformat()}"


def check_format(text: str) -> str:
    if text not in FORMATS:
        raise InvalidInput(f"the export's format is json or csv, not {text!r}", field="format", code="export_format",
                           params={"format": text})  # fmt: skip
    return text


# -- the document -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sources:
    """What the export reads: the projection, the registry's elders and where an incident lies (dispatch.views
    ``incident_place``)."""

    state: Projection
    elders: Mapping[str, Elder]
    place: Callable[[Incident], str | None]


def build(
    sources: Sources,
    period: Period,
    *,
    generated_at: float,
    centre: str | None = None,
    names: bool = False,
    include_drill: bool = False,
) -> dict[str, Any]:
    """The export of ``period`` as one JSON-ready document (schema :data:`SCHEMA`, version :data:`VERSION`), all
    at once: :func:`fold` run through (the command, a script, the tests)."""
    return run(fold(sources, period, generated_at=generated_at, centre=centre, names=names,
                    include_drill=include_drill))  # fmt: skip


def fold(
    sources: Sources,
    period: Period,
    *,
    generated_at: float,
    centre: str | None = None,
    names: bool = False,
    include_drill: bool = False,
    pace: Pace | None = None,
) -> Steps[dict[str, Any]]:
    """The export's work in slices (rule 9), to run through (:func:`build`) or on the loop
    (dispatch.periodreport ``run_on_loop``): the records the projection holds now, taken here, at the call."""
    taken = _Taken(list(sources.state.incidents.values()), list(sources.state.service_orders.values()))
    header = {
        "schema": SCHEMA,
        "version": VERSION,
        "centre": centre or None,
        "timezone": period.timezone,
        "period": {
            "label": period.label,
            "first_day": period.start_day.isoformat(),
            "last_day": period.last_day.isoformat(),
            "start": iso(period.start, period.timezone),
            "end": iso(period.end, period.timezone),
        },
        "generated_at": iso(generated_at, period.timezone),
        "drill_included": include_drill,
        "names_included": names,
    }
    return _Folding(sources, period, names, include_drill, pace or Pace()).steps(taken, header)


@dataclass(frozen=True, slots=True)
class _Taken:
    """The projection's records as they were when the export was asked for (its dicts change between slices)."""

    incidents: list[Incident]
    orders: list[ServiceOrder]


class _Folding:
    """One export being folded: each record chosen and written into its row at its turn (rules 2 and 3), the
    elders served counted as they come (rule 4), the rows put in order at the end (rule 7)."""

    def __init__(self, sources: Sources, period: Period, names: bool, drill: bool, pace: Pace) -> None:
        self.sources, self.period, self.names, self.drill, self.pace = sources, period, names, drill, pace
        self.served: dict[str, list[int]] = {}  # elder id → [incidents, services] (rule 4)

    def steps(self, taken: _Taken, header: dict[str, Any]) -> Steps[dict[str, Any]]:
        incidents = yield from self._incidents(taken.incidents)
        services = yield from self._orders(taken.orders)
        elders = yield from self._elders()
        counts = {"elders": len(elders), "incidents": len(incidents), "services": len(services)}
        return {**header, "counts": counts, "elders": elders, "incidents": incidents, "services": services}

    def _incidents(self, incidents: list[Incident]) -> Steps[list[dict[str, Any]]]:
        """Rule 2, in the order of rule 7."""
        rows: list[dict[str, Any]] = []
        keys: list[tuple[float, str, int]] = []
        for incident in incidents:
            if self.pace.full():
                yield
            if incident.test or (incident.drill and not self.drill) or not self.period.holds(incident.opened_at):
                continue
            keys.append((incident.opened_at, incident.incident_id, len(rows)))
            rows.append(_incident_row(incident, self.sources, self.period.timezone))
            if incident.elder_id is not None and not incident.technical:
                self.served.setdefault(incident.elder_id, [0, 0])[0] += 1
        return [rows[key[2]] for key in (yield from ordered(keys, self.pace))]

    def _orders(self, orders: list[ServiceOrder]) -> Steps[list[dict[str, Any]]]:
        """Rule 3, in the order of rule 7."""
        rows: list[dict[str, Any]] = []
        keys: list[tuple[float, str, int]] = []
        holds = self.period.holds
        for order in orders:
            if self.pace.full():
                yield
            delivered = order.delivered_at is not None and holds(order.delivered_at)
            asked = order.delivered_at is None and holds(order.ordered_at)  # never delivered: by its ordering
            if (order.drill and not self.drill) or not (delivered or asked):
                continue
            keys.append((order.ordered_at, order.order_id, len(rows)))
            rows.append(_service_row(order, self.sources, self.period.timezone))
            if delivered:
                self.served.setdefault(order.elder_id, [0, 0])[1] += 1
        return [rows[key[2]] for key in (yield from ordered(keys, self.pace))]

    def _elders(self) -> Steps[list[dict[str, Any]]]:
        """Rule 4, by id (rule 7)."""
        rows: list[dict[str, Any]] = []
        elders, last_day = self.sources.elders, self.period.last_day
        for elder_id in (yield from ordered(list(self.served), self.pace)):
            if self.pace.full():
                yield
            rows.append(_elder_row(elders.get(elder_id), elder_id, self.served[elder_id], last_day, self.names))
        return rows


def _elder_row(elder: Elder | None, elder_id: str, counts: list[int], last_day: date, names: bool) -> dict[str, Any]:
    return {
        "elder_id": elder_id,
        "name": elder.name if names and elder is not None else None,
        "community": elder.community if elder is not None else None,
        "age_band": age_band(elder.birth_date, last_day) if elder is not None else None,
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
    """Rule 6: the first offer is the first assignment's; the door the earliest ``on_scene_at`` of them all."""
    state, opened = sources.state, incident.opened_at
    assignments = [state.assignments[a] for a in incident.assignments if a in state.assignments]
    first = assignments[0] if assignments else None
    doors = [a.on_scene_at for a in assignments if a.on_scene_at is not None]
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
        "door_s": _seconds(opened, min(doors) if doors else None),
        "outcome": outcome(incident),
    }


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


#: pieces of JSON text (a key, a value, a separator) written that count as one record (rule 9)
PIECES_PER_RECORD = 64
#: bytes of a CSV file compressed into the zip at a time, and as how many records that counts (rule 9)
ZIP_CHUNK = 1 << 16
ZIP_CHUNK_RECORDS = 64


def to_json(document: Mapping[str, Any]) -> str:
    """Rule 7: sorted keys, Chinese as written, one line per field (:func:`json_steps` run through)."""
    return run(json_steps(document, Pace()))


def json_steps(document: Mapping[str, Any], pace: Pace) -> Steps[str]:
    """The JSON text in slices (rule 9): ``json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True)``,
    the same text (with an indent the encoder writes in pieces, in Python, either way), then a newline."""
    return "".join((yield from _json_pieces(document, pace)))


def _json_pieces(document: Mapping[str, Any], pace: Pace) -> Steps[list[str]]:
    """The JSON text as a piece per slice (one join of the encoder's millions of pieces held the loop)."""
    encoder = json.JSONEncoder(ensure_ascii=False, indent=1, sort_keys=True)
    written: list[str] = []
    parts: list[str] = []
    for part in encoder.iterencode(document):
        parts.append(part)
        if len(parts) == PIECES_PER_RECORD:
            written.append("".join(parts))
            parts.clear()
            if pace.full():
                yield
    written.append("".join(parts) + "\n")
    return written


def _json_bytes(document: Mapping[str, Any], pace: Pace) -> Steps[bytes]:
    """The JSON file: its text encoded a slice at a time (a year's tens of megabytes at once held the loop)."""
    encoded: list[bytes] = []
    for piece in (yield from _json_pieces(document, pace)):
        encoded.append(piece.encode("utf-8"))
        if pace.full():
            yield
    return b"".join(encoded)


def to_csv(document: Mapping[str, Any], which: str) -> str:
    """One record set of the document as CSV text (rule 8; :func:`csv_steps` run through)."""
    return run(csv_steps(document, which, Pace()))


def csv_steps(document: Mapping[str, Any], which: str, pace: Pace) -> Steps[str]:
    """One record set as CSV text, a slice of rows at a time (rule 9)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    columns = SETS[which]
    writer.writerow(columns)
    for row in document[which]:
        if pace.full():
            yield
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
    """The three CSV files in one zip (rule 8; :func:`zip_steps` run through)."""
    return run(zip_steps(document, Pace()))


def zip_steps(document: Mapping[str, Any], pace: Pace) -> Steps[bytes]:
    """The zip in slices (rule 9): each file written, then compressed :data:`ZIP_CHUNK` bytes at a time (the
    same bytes as compressing it in one piece)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for which, name in csv_names(document).items():
            data = (yield from csv_steps(document, which, pace)).encode("utf-8")
            member = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w") as written:
                for start in range(0, len(data), ZIP_CHUNK):
                    written.write(data[start : start + ZIP_CHUNK])
                    if pace.full(ZIP_CHUNK_RECORDS):
                        yield
    return out.getvalue()


def file_steps(document: Mapping[str, Any], fmt: str, pace: Pace) -> Steps[tuple[bytes, str]]:
    """The export as a file, in slices: JSON, or the zip of its three CSV files (``csv``); and the file's name
    (``gov-export-<label>.json`` or ``.zip``)."""
    stem = csv_names(document)["elders"].removesuffix("-elders.csv")
    if check_format(fmt) == "csv":
        return (yield from zip_steps(document, pace)), f"{stem}.zip"
    return (yield from _json_bytes(document, pace)), f"{stem}.json"
