"""CSV export of the registry: elders, devices and responders, in the import's own columns.

What it owns
    Turning registry records into the spreadsheets :mod:`dispatch.importer` reads: the same header names in the
    same order, each cell written the way the importer parses it, so that a file exported and imported again
    reports every row unchanged. Sans-I/O: records in, text out; the console's route chooses the records (the
    person's reach) and journals the read.

Rules
    1. The columns are the importer's, required then optional; cells as it reads them: lists ``;``-separated,
       contacts ``name:phone[:relation[:app]]``, dates ``YYYY-MM-DD``, yes/no for flags, nothing for "not given".
    2. The text starts with a UTF-8 byte order mark, so that a spreadsheet opened by double-click reads Chinese
       as Chinese; lines end CRLF, as spreadsheets write them.
    3. Rows come ordered by id.
    4. A cell a spreadsheet would run as a formula (text beginning ``=``, ``+``, ``-``, ``@``; a name typed as
       ``=HYPERLINK(...)``) is written after an apostrophe, which spreadsheets show as text; the importer takes
       that apostrophe off again (dispatch.importer rule 10). A number (a negative longitude) is left alone.

Never
    Never write a device's ``aes_key``: a key leaves the server only to the device it is for. (An empty cell
    keeps the stored key on import, dispatch.importer rule 8.)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Literal

from dispatch.importer import (
    DEVICE_OPTIONAL,
    DEVICE_REQUIRED,
    ELDER_OPTIONAL,
    ELDER_REQUIRED,
    FORMULA_STARTS,
    RESPONDER_OPTIONAL,
    RESPONDER_REQUIRED,
)
from dispatch.registry import Contact, Device, Elder, Responder
from dispatch.services import CENTRE

Kind = Literal["elders", "devices", "responders"]
KINDS: tuple[Kind, ...] = ("elders", "devices", "responders")
COLUMNS: dict[Kind, tuple[str, ...]] = {
    "elders": (*ELDER_REQUIRED, *ELDER_OPTIONAL),
    "devices": (*DEVICE_REQUIRED, *DEVICE_OPTIONAL),
    "responders": (*RESPONDER_REQUIRED, *RESPONDER_OPTIONAL),
}
BOM = "\ufeff"


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _contact(contact: Contact) -> str:
    parts = [contact.name, contact.phone]
    if contact.relation or contact.app:
        parts.append(contact.relation)
    if contact.app:
        parts.append("app")
    return ":".join(parts)


def elder_cells(elder: Elder) -> dict[str, str]:
    return {
        "elder_id": elder.elder_id,
        "name": elder.name,
        "phone": _text(elder.phone),
        "address": elder.address,
        "lat": repr(elder.lat),
        "lon": repr(elder.lon),
        "community": elder.community,
        "birth_date": elder.birth_date.isoformat() if elder.birth_date else "",
        "risk_flags": ";".join(elder.risk_flags),
        "care_level": _text(elder.care_level),
        "medical_notes": elder.medical_notes,
        "contacts": ";".join(_contact(c) for c in elder.contacts),
        "caregiver_id": _text(elder.caregiver_id),
        "entitlement": _text(elder.entitlement),
        "access": elder.access,
        "resident_id": _text(elder.resident_id),
        "lives_with": _text(elder.lives_with),
        "active": _yes_no(elder.active),
    }


def device_cells(device: Device) -> dict[str, str]:
    return {
        "device_id": device.device_id,
        "protocol": device.protocol,
        "elder_id": device.elder_id,
        "aes_key": "",  # never exported (Never)
        "checkin_s": str(device.checkin_s),
        "drill": _yes_no(device.drill),
    }


def responder_cells(responder: Responder) -> dict[str, str]:
    return {
        "responder_id": responder.responder_id,
        "name": responder.name,
        "kind": responder.kind,
        "skills": ";".join(responder.skills),
        "lat": repr(responder.lat),
        "lon": repr(responder.lon),
        "phone": _text(responder.phone),
        "community": responder.community,
        "travel": responder.travel,
        "hours": _text(responder.hours),
        "green_channel": _yes_no(responder.green_channel),
        "provider": "" if responder.provider == CENTRE else responder.provider,
        "on_call": _yes_no(responder.on_call),
    }


def to_csv(kind: Kind, records: Iterable[Elder | Device | Responder]) -> str:
    """The records of one kind as the importer's CSV text, BOM first (rules 1-3)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    columns = COLUMNS[kind]
    writer.writerow(columns)
    for record in sorted(records, key=_key):
        row = _cells(record)
        writer.writerow([as_text(row[column]) for column in columns])
    return out.getvalue()


def as_text(cell: str) -> str:
    """Rule 4: a cell that would start a formula, written so that a spreadsheet shows it as text."""
    if cell[:1] in FORMULA_STARTS:
        try:
            float(cell)
        except ValueError:
            return "'" + cell
    return cell


def _cells(record: Elder | Device | Responder) -> dict[str, str]:
    if isinstance(record, Elder):
        return elder_cells(record)
    if isinstance(record, Device):
        return device_cells(record)
    return responder_cells(record)


def _key(record: Elder | Device | Responder) -> str:
    if isinstance(record, Elder):
        return record.elder_id
    if isinstance(record, Device):
        return record.device_id
    return record.responder_id
