"""CSV import of the registry: elders, devices and responders (``anxin import``).

What it owns
    Turning the administrators' spreadsheets into registry records, and telling them exactly which rows were
    refused and why, by file and physical line number (the header is line 1).

Rules
    1. A file is refused whole (:class:`~dispatch.errors.InvalidInput`, nothing written) when it cannot be
       read as UTF-8 (a BOM is accepted), has no header, lacks a required column, repeats a column, or has a
       column nobody asked for: a misspelt header must not silently drop a column of data.
    2. Rows are judged one by one. A bad row becomes a :class:`RowError` naming the field and the reason, in
       the same words the pydantic models use everywhere else; the good rows are imported regardless.
    3. An empty cell means "not given": the model's default applies (or "Field required" when there is none).
       Lists are ``;``-separated; ``contacts`` entries are ``name:phone:relation`` with the relation optional.
    4. An id seen twice in one file: the later row is refused ("duplicate elder_id X, first on line N").
    5. References are checked before anything is written: a device's ``elder_id`` must be an elder of this
       import or of the store, an elder's ``caregiver_id`` a responder of this import or of the store.
    6. Writes go responders, elders, devices (referenced before referencing), each kind in one store
       transaction. Import is idempotent: the same files again report every row unchanged and write nothing.

Never
    Never write before every given file has been read and checked; never guess at a row that does not parse.

CSV formats. Header names are matched exactly; ``*`` marks a required column (its cell may still be empty
when the model has a default). Lists are ``;``-separated.

    elders.csv
        elder_id* name* phone* address* lat* lon* community* (district/street/community)
        birth_date (YYYY-MM-DD), care_level (0-5), medical_notes, caregiver_id,
        risk_flags (living_alone, empty_nest, three_nos, low_income, disabled),
        contacts (ordered, ``name:phone`` or ``name:phone:relation``; ``name:phone:relation:app`` for one who
        answers alarms on the phone page), entitlement (free, low_cost, paid),
        access (how to get in: door code, key holder)
    devices.csv
        device_id* protocol* (one the gateway speaks: sia-dc09, watch, gt06 built in) elder_id*
        aes_key* (32, 48 or 64 hex digits) checkin_s*
    responders.csv
        responder_id* name* kind* (caregiver, volunteer, clinic) skills* (life_care, nursing, medical,
        comfort) lat* lon* phone* community* travel* (walk, bike, car),
        hours (24h or HH:MM-HH:MM), green_channel (yes/no/true/false/1/0, empty = no), provider (who employs
        them: empty = the centre; else a contracted organisation of the service catalogue), on_call (a
        volunteer asked from home when nobody on duty is free: yes/no, empty = no)
"""

from __future__ import annotations

import asyncio
import csv
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from dispatch.errors import InvalidInput
from dispatch.registry import Device, Elder, Responder
from dispatch.store import RegistryStore, UpsertCounts

M = TypeVar("M", bound=BaseModel)

ELDER_REQUIRED = ("elder_id", "name", "phone", "address", "lat", "lon", "community")
ELDER_OPTIONAL = (
    "birth_date",
    "risk_flags",
    "care_level",
    "medical_notes",
    "contacts",
    "caregiver_id",
    "entitlement",
    "access",
)
DEVICE_REQUIRED = ("device_id", "protocol", "elder_id", "aes_key", "checkin_s")
DEVICE_OPTIONAL: tuple[str, ...] = ()
RESPONDER_REQUIRED = (
    "responder_id",
    "name",
    "kind",
    "skills",
    "lat",
    "lon",
    "phone",
    "community",
    "travel",
)
RESPONDER_OPTIONAL = ("hours", "green_channel", "provider", "on_call")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRUE = frozenset({"yes", "true", "1"})
_FALSE = frozenset({"no", "false", "0"})


@dataclass(frozen=True, slots=True)
class RowError:
    """One refused row: the file, its physical line (header = 1) and why, field by field."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(slots=True)
class ImportReport:
    """What an import did: counts per kind and every refused row."""

    elders: UpsertCounts = field(default_factory=UpsertCounts)
    devices: UpsertCounts = field(default_factory=UpsertCounts)
    responders: UpsertCounts = field(default_factory=UpsertCounts)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No row was refused."""
        return not self.errors

    def summary(self) -> str:
        lines = [
            f"{kind}: {counts.added} added, {counts.updated} updated, {counts.unchanged} unchanged"
            for kind, counts in (
                ("elders", self.elders),
                ("devices", self.devices),
                ("responders", self.responders),
            )
        ]
        if self.errors:
            lines.append(f"{len(self.errors)} rows refused:")
            lines.extend(str(error) for error in self.errors)
        return "\n".join(lines)


# -- reading one file ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    cells: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Good(Generic[M]):
    """A valid record and where it came from, so a failed reference check can still name its line."""

    file: str
    line: int
    record: M


def _read_rows(path: Path, required: tuple[str, ...], optional: tuple[str, ...]) -> Iterator[_Row | RowError]:
    """The data rows of a CSV file as stripped cells by column, after checking its header."""
    name = str(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise InvalidInput(f"{name}: empty file, expected a header line", field=name, code="import_refused")
            _check_header(name, header, required, optional)
            end = reader.line_num
            for cells in reader:
                line, end = end + 1, reader.line_num
                if not any(cell.strip() for cell in cells):
                    continue  # a blank line, or one of empty cells as spreadsheets leave at the end
                if len(cells) != len(header):
                    yield RowError(name, line, f"expected {len(header)} cells, found {len(cells)}")
                    continue
                yield _Row(line, {column: cell.strip() for column, cell in zip(header, cells, strict=True)})
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})", field=name, code="import_refused"
        ) from None
    except csv.Error as exc:
        raise InvalidInput(f"{name}: unreadable CSV: {exc}", field=name, code="import_refused") from None


def _check_header(name: str, header: list[str], required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    problems: list[str] = []
    missing = [column for column in required if column not in header]
    if missing:
        problems.append(f"missing required columns: {', '.join(missing)}")
    known = set(required) | set(optional)
    unknown = [column for column in header if column not in known]
    if unknown:
        problems.append(f"unknown columns: {', '.join(repr(column) for column in unknown)}")
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        problems.append(f"repeated columns: {', '.join(repeated)}")
    if problems:
        raise InvalidInput(f"{name}: refused, {'; '.join(problems)}", field=name, code="import_refused")


def _read_file(
    path: Path | str,
    model: type[M],
    key: str,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    convert: Callable[[dict[str, str], list[str]], dict[str, Any]],
) -> tuple[list[_Good[M]], list[RowError]]:
    """Validate every row of one file; ``convert`` turns cells into model input and notes format errors."""
    path = Path(path)
    name = str(path)
    good: list[_Good[M]] = []
    errors: list[RowError] = []
    first_line: dict[str, int] = {}
    for row in _read_rows(path, required, optional):
        if isinstance(row, RowError):
            errors.append(row)
            continue
        ident = row.cells[key]
        if ident and ident in first_line:
            errors.append(RowError(name, row.line, f"duplicate {key} {ident}, first on line {first_line[ident]}"))
            continue
        if ident:
            first_line[ident] = row.line
        problems: list[str] = []
        data = convert(row.cells, problems)
        try:
            record = model.model_validate(data)
        except ValidationError as exc:
            problems.extend(_describe(exc))
        else:
            if not problems:
                good.append(_Good(name, row.line, record))
        if problems:
            errors.append(RowError(name, row.line, "; ".join(problems)))
    return good, errors


def _describe(exc: ValidationError) -> list[str]:
    """Short "field: message" texts, e.g. ``contacts[1].phone: String should match pattern ...``."""
    texts = []
    for error in exc.errors(include_url=False):
        where = ""
        for part in error["loc"]:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        message = error["msg"].removeprefix("Value error, ")
        texts.append(f"{where}: {message}" if where else message)
    return texts


# -- cells to model input --------------------------------------------------------------------------------


def _given(cells: dict[str, str], columns: tuple[str, ...]) -> dict[str, Any]:
    """The non-empty cells among these columns; an empty cell is left out so the model default applies."""
    return {column: cells[column] for column in columns if cells.get(column)}


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


def _elder_data(cells: dict[str, str], problems: list[str]) -> dict[str, Any]:
    data = _given(cells, (*ELDER_REQUIRED, "care_level", "medical_notes", "caregiver_id", "entitlement", "access"))
    if birth := cells.get("birth_date"):
        try:
            if not _DATE.match(birth):
                raise ValueError
            data["birth_date"] = date.fromisoformat(birth)
        except ValueError:
            problems.append(f"birth_date: {birth!r} is not a date YYYY-MM-DD")
    if flags := cells.get("risk_flags"):
        data["risk_flags"] = _split(flags)
    if contacts := cells.get("contacts"):
        data["contacts"] = _contacts(contacts, problems)
    return data


def _contacts(value: str, problems: list[str]) -> list[dict[str, str | bool]]:
    """Ordered ``name:phone[:relation[:app]]`` entries. On a malformed entry none are kept, so the model's
    messages about the others cannot point at a shifted index."""
    contacts: list[dict[str, str | bool]] = []
    malformed = False
    for index, entry in enumerate(_split(value)):
        parts = [part.strip() for part in entry.split(":")]
        if len(parts) not in (2, 3, 4) or (len(parts) == 4 and parts[3] != "app"):
            problems.append(f"contacts[{index}]: {entry!r} is not name:phone or name:phone:relation")
            malformed = True
            continue
        contact: dict[str, str | bool] = {"name": parts[0], "phone": parts[1]}
        if len(parts) >= 3:
            contact["relation"] = parts[2]
        if len(parts) == 4:
            contact["app"] = True  # answers alarms on the phone page (dispatch.family)
        contacts.append(contact)
    return [] if malformed else contacts


def _device_data(cells: dict[str, str], problems: list[str]) -> dict[str, Any]:
    return _given(cells, DEVICE_REQUIRED)


def _responder_data(cells: dict[str, str], problems: list[str]) -> dict[str, Any]:
    plain = ("responder_id", "name", "kind", "lat", "lon", "phone", "community", "travel", "hours", "provider")
    data = _given(cells, plain)
    if skills := cells.get("skills"):
        data["skills"] = _split(skills)
    green = cells.get("green_channel", "").lower()
    if green in _TRUE:
        data["green_channel"] = True
    elif green in _FALSE:
        data["green_channel"] = False
    elif green:
        problems.append(f"green_channel: {green!r} is not one of yes/no/true/false/1/0")
    on_call = cells.get("on_call", "").lower()
    if on_call in _TRUE or on_call in _FALSE:
        data["on_call"] = on_call in _TRUE
    elif on_call:
        problems.append(f"on_call: {on_call!r} is not one of yes/no/true/false/1/0")
    return data


def _read_elders(path: Path | str) -> tuple[list[_Good[Elder]], list[RowError]]:
    return _read_file(path, Elder, "elder_id", ELDER_REQUIRED, ELDER_OPTIONAL, _elder_data)


def _read_devices(path: Path | str) -> tuple[list[_Good[Device]], list[RowError]]:
    return _read_file(path, Device, "device_id", DEVICE_REQUIRED, DEVICE_OPTIONAL, _device_data)


def _read_responders(path: Path | str) -> tuple[list[_Good[Responder]], list[RowError]]:
    return _read_file(path, Responder, "responder_id", RESPONDER_REQUIRED, RESPONDER_OPTIONAL, _responder_data)


def read_elders(path: Path | str) -> tuple[list[Elder], list[RowError]]:
    """The valid elders of a file and the refused rows. InvalidInput when the file is refused whole."""
    good, errors = _read_elders(path)
    return [item.record for item in good], errors


def read_devices(path: Path | str) -> tuple[list[Device], list[RowError]]:
    """The valid devices of a file and the refused rows. InvalidInput when the file is refused whole."""
    good, errors = _read_devices(path)
    return [item.record for item in good], errors


def read_responders(path: Path | str) -> tuple[list[Responder], list[RowError]]:
    """The valid responders of a file and the refused rows. InvalidInput when the file is refused whole."""
    good, errors = _read_responders(path)
    return [item.record for item in good], errors


# -- the import ------------------------------------------------------------------------------------------


async def import_files(
    store: RegistryStore,
    *,
    elders: Path | None,
    devices: Path | None,
    responders: Path | None,
    protocols: Collection[str] = (),
    providers: Collection[str] = (),
) -> ImportReport:
    """Read the given files, check references, then upsert the good rows. See the module rules.

    ``protocols``: the device protocols the server speaks; a device of another is refused (empty: any).
    ``providers``: the service catalogue's providers; a responder employed by another is refused (empty: any).
    """
    report = ImportReport()
    new_responders, errors = await _load(_read_responders, responders)
    report.errors += errors
    if new_responders and providers:
        new_responders = _keep_known(new_responders, "provider", set(providers), "provider", report.errors)
    new_elders, errors = await _load(_read_elders, elders)
    report.errors += errors
    new_devices, errors = await _load(_read_devices, devices)
    report.errors += errors

    if any(item.record.caregiver_id for item in new_elders):
        known = {item.record.responder_id for item in new_responders} | await store.responder_ids()
        new_elders = _keep_known(new_elders, "caregiver_id", known, "responder", report.errors)
    if new_devices and protocols:
        new_devices = _keep_known(new_devices, "protocol", set(protocols), "device protocol", report.errors)
    if new_devices:
        owners = {item.record.elder_id for item in new_elders} | await store.elder_ids()
        new_devices = _keep_known(new_devices, "elder_id", owners, "elder", report.errors)
    order = [str(Path(path)) for path in (elders, devices, responders) if path is not None]
    report.errors.sort(key=lambda error: (order.index(error.file), error.line))

    if new_responders:
        report.responders = await store.upsert_responders([item.record for item in new_responders])
    if new_elders:
        report.elders = await store.upsert_elders([item.record for item in new_elders])
    if new_devices:
        report.devices = await store.upsert_devices([item.record for item in new_devices])
    return report


async def _load(
    read: Callable[[Path], tuple[list[_Good[M]], list[RowError]]], path: Path | None
) -> tuple[list[_Good[M]], list[RowError]]:
    if path is None:
        return [], []
    return await asyncio.to_thread(read, path)


def _keep_known(
    good: list[_Good[M]], attribute: str, known: set[str], what: str, errors: list[RowError]
) -> list[_Good[M]]:
    """The records whose reference is empty or known; each other one becomes an error on its own line."""
    kept: list[_Good[M]] = []
    for item in good:
        reference = getattr(item.record, attribute)
        if reference is None or reference in known:
            kept.append(item)
        else:
            where = {
                "device protocol": "this server does not speak it",
                "provider": "not in the service catalogue",
            }.get(what, "neither in this import nor in the registry")
            reason = f"{attribute}: unknown {what} {reference} ({where})"
            errors.append(RowError(item.file, item.line, reason))
    return kept
