"""CSV import of the registry: elders, devices and responders (``anxin import``; ``POST /api/registry/import``
while the server runs, through the engine).

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
    7. A row that is probably a person already registered under another id (dispatch.duplicates: the same
       resident identity number, or name and birth date, or name and phone), or a person of an earlier row of
       the file, is refused, naming the record it matches and why: registering one person twice splits their
       history and their alarms. It is checked for a new elder, and for a known one whose name, birth date,
       phone or number the row changes; an elder out of care (``active`` no) is not. Two people who only look
       alike are told apart by giving each their resident identity number; one person is merged on the page.
    8. An empty ``aes_key`` keeps the key already stored for that device: an export never carries keys, and
       importing it changes nothing.
    9. Whether a known elder is in the centre's care changes on the page only, journaled with its reason
       (dispatch.keeping rule 2): a row whose ``active`` differs from the stored record is refused, so an old
       spreadsheet never brings back someone who died. A new elder may come in out of care. A device is not
       bound to an elder out of care.
    10. A cell ``'=…``, ``'+…``, ``'-…`` or ``'@…`` is read without its apostrophe: how the export writes text
        a spreadsheet would otherwise run as a formula (dispatch.exporter rule 4).

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
        access (how to get in: door code, key holder), resident_id (the 18-character resident identity number,
        checked), lives_with (alone, spouse, children, relatives, carer, others), active (still in the
        centre's care: yes/no, empty = yes)
    devices.csv
        device_id* protocol* (one the gateway speaks: sia-dc09, watch, gt06 built in) elder_id*
        aes_key* (32, 48 or 64 hex digits; empty keeps the stored key) checkin_s*, drill (a simulated device:
        yes/no, empty = no)
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
import dataclasses
import io
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from dispatch.duplicates import DuplicateIndex, Match, identity_changed, person_of
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
    "resident_id",
    "lives_with",
    "active",
)
DEVICE_REQUIRED = ("device_id", "protocol", "elder_id", "aes_key", "checkin_s")
DEVICE_OPTIONAL = ("drill",)
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
    #: the records of the rows taken (written, or found unchanged), for the running server's directory
    records: list[Elder | Device | Responder] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        """No row was refused."""
        return not self.errors

    def as_dict(self) -> dict[str, object]:
        """The report as plain data (an API answer), read back by :meth:`from_dict`."""
        counts = {kind: dataclasses.asdict(getattr(self, kind)) for kind in ("elders", "devices", "responders")}
        errors = [{"file": e.file, "line": e.line, "reason": e.reason} for e in self.errors]
        return {**counts, "errors": errors}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportReport:
        return cls(
            elders=UpsertCounts(**data["elders"]),
            devices=UpsertCounts(**data["devices"]),
            responders=UpsertCounts(**data["responders"]),
            errors=[RowError(e["file"], int(e["line"]), e["reason"]) for e in data["errors"]],
        )

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
class CsvText:
    """A file's text sent rather than a path to read (``POST /api/registry/import``, decoded from UTF-8 there);
    ``name`` is what the report calls it."""

    name: str
    text: str


Source = Path | CsvText


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


def _open(source: Source) -> IO[str]:
    if isinstance(source, CsvText):
        return io.StringIO(source.text.removeprefix("\ufeff"), newline="")
    return source.open(encoding="utf-8-sig", newline="")


def _name(source: Source) -> str:
    return source.name if isinstance(source, CsvText) else str(source)


#: how a text cell a spreadsheet would run as a formula begins (dispatch.exporter writes it after an apostrophe)
FORMULA_STARTS = ("=", "+", "-", "@")


def _cell(cell: str) -> str:
    """A cell stripped, and rule 10: the apostrophe before a would-be formula taken off."""
    text = cell.strip()
    return text[1:] if text[:1] == "'" and text[1:2] in FORMULA_STARTS and text[1:2] else text


def _read_rows(source: Source, required: tuple[str, ...], optional: tuple[str, ...]) -> Iterator[_Row | RowError]:
    """The data rows of a CSV file as stripped cells by column, after checking its header."""
    name = _name(source)
    try:
        with _open(source) as handle:
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
                yield _Row(line, {column: _cell(cell) for column, cell in zip(header, cells, strict=True)})
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
    path: Source | str,
    model: type[M],
    key: str,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    convert: Callable[[dict[str, str], list[str]], dict[str, Any]],
) -> tuple[list[_Good[M]], list[RowError]]:
    """Validate every row of one file; ``convert`` turns cells into model input and notes format errors."""
    path = path if isinstance(path, CsvText) else Path(path)
    name = _name(path)
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


def _yes_no(cells: dict[str, str], column: str, data: dict[str, Any], problems: list[str]) -> None:
    """A yes/no cell into ``data`` (an empty one is left out: the model's default)."""
    value = cells.get(column, "").lower()
    if value in _TRUE or value in _FALSE:
        data[column] = value in _TRUE
    elif value:
        problems.append(f"{column}: {value!r} is not one of yes/no/true/false/1/0")


def _elder_data(cells: dict[str, str], problems: list[str]) -> dict[str, Any]:
    plain = ("care_level", "medical_notes", "caregiver_id", "entitlement", "access", "resident_id", "lives_with")
    data = _given(cells, (*ELDER_REQUIRED, *plain))
    _yes_no(cells, "active", data, problems)
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
    data = _given(cells, DEVICE_REQUIRED)
    _yes_no(cells, "drill", data, problems)
    return data


def _responder_data(cells: dict[str, str], problems: list[str]) -> dict[str, Any]:
    plain = ("responder_id", "name", "kind", "lat", "lon", "phone", "community", "travel", "hours", "provider")
    data = _given(cells, plain)
    if skills := cells.get("skills"):
        data["skills"] = _split(skills)
    _yes_no(cells, "green_channel", data, problems)
    _yes_no(cells, "on_call", data, problems)
    return data


def _read_elders(path: Source | str) -> tuple[list[_Good[Elder]], list[RowError]]:
    return _read_file(path, Elder, "elder_id", ELDER_REQUIRED, ELDER_OPTIONAL, _elder_data)


def _read_devices(path: Source | str) -> tuple[list[_Good[Device]], list[RowError]]:
    return _read_file(path, Device, "device_id", DEVICE_REQUIRED, DEVICE_OPTIONAL, _device_data)


def _read_responders(path: Source | str) -> tuple[list[_Good[Responder]], list[RowError]]:
    return _read_file(path, Responder, "responder_id", RESPONDER_REQUIRED, RESPONDER_OPTIONAL, _responder_data)


def read_elders(path: Source | str) -> tuple[list[Elder], list[RowError]]:
    """The valid elders of a file and the refused rows. InvalidInput when the file is refused whole."""
    good, errors = _read_elders(path)
    return [item.record for item in good], errors


def read_devices(path: Source | str) -> tuple[list[Device], list[RowError]]:
    """The valid devices of a file and the refused rows. InvalidInput when the file is refused whole."""
    good, errors = _read_devices(path)
    return [item.record for item in good], errors


def read_responders(path: Source | str) -> tuple[list[Responder], list[RowError]]:
    """The valid responders of a file and the refused rows. InvalidInput when the file is refused whole."""
    good, errors = _read_responders(path)
    return [item.record for item in good], errors


# -- the import ------------------------------------------------------------------------------------------


async def import_files(
    store: RegistryStore,
    *,
    elders: Source | None,
    devices: Source | None,
    responders: Source | None,
    protocols: Collection[str] = (),
    providers: Collection[str] = (),
    index: DuplicateIndex | None = None,
) -> ImportReport:
    """Read the given files, check references, then upsert the good rows. See the module rules.

    ``protocols``: the device protocols the server speaks; a device of another is refused (empty: any).
    ``providers``: the service catalogue's providers; a responder employed by another is refused (empty: any).
    ``index``: the registry's elders in care by identity (the running server's directory holds one); without
    it one is built from the store.
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

    stored: dict[str, Elder] = {e.elder_id: e for e in await store.elders()} if new_elders or new_devices else {}
    if new_elders:
        new_elders = _care_kept(new_elders, stored, report.errors)
        if index is None:
            index = DuplicateIndex.of(person_of(e) for e in stored.values() if e.active)
        new_elders = _not_registered_twice(new_elders, index, await _names(store, new_elders, index), report.errors)
    if any(item.record.caregiver_id for item in new_elders):
        known = {item.record.responder_id for item in new_responders} | await store.responder_ids()
        new_elders = _keep_known(new_elders, "caregiver_id", known, "responder", report.errors)
    if new_devices and protocols:
        new_devices = _keep_known(new_devices, "protocol", set(protocols), "device protocol", report.errors)
    if new_devices:
        owners = {item.record.elder_id for item in new_elders} | set(stored)
        new_devices = _keep_known(new_devices, "elder_id", owners, "elder", report.errors)
        out = {e.elder_id for e in stored.values() if not e.active}
        out = (out - {item.record.elder_id for item in new_elders}) | {
            item.record.elder_id for item in new_elders if not item.record.active
        }
        new_devices = _not_out_of_care(new_devices, out, report.errors)
        new_devices = await _keep_keys(store, new_devices)
    order = [_name(path) for path in (elders, devices, responders) if path is not None]
    report.errors.sort(key=lambda error: (order.index(error.file), error.line))

    if new_responders:
        report.responders = await store.upsert_responders([item.record for item in new_responders])
    if new_elders:
        report.elders = await store.upsert_elders([item.record for item in new_elders])
    if new_devices:
        report.devices = await store.upsert_devices([item.record for item in new_devices])
    report.records = [item.record for good in (new_responders, new_elders, new_devices) for item in good]
    return report


async def _names(store: RegistryStore, good: list[_Good[Elder]], index: DuplicateIndex) -> dict[str, Elder]:
    """The registry's records a row of the file may be matched with (to name them in the report)."""
    wanted = {m.key for item in good for m in index.matches(person_of(item.record))}
    found = {}
    for key in sorted(wanted):
        elder = await store.get_elder(key)
        if elder is not None:
            found[key] = elder
    return found


def _not_registered_twice(
    good: list[_Good[Elder]], index: DuplicateIndex, registered: dict[str, Elder], errors: list[RowError]
) -> list[_Good[Elder]]:
    """The rows that are not a person registered already, nor one of an earlier row (rule 7)."""
    in_file = {item.record.elder_id for item in good}
    earlier = DuplicateIndex()
    lines: dict[str, int] = {}
    kept: list[_Good[Elder]] = []
    for item in good:
        elder = item.record
        person = person_of(elder)
        held = index.get(elder.elder_id)
        if elder.active and (held is None or identity_changed(held, person)):
            # a record this file also rewrites is judged by its row (below), not by what is stored
            stored = [m for m in index.matches(person) if m.key not in in_file]
            same = [_said(m, registered.get(m.key)) for m in stored]
            same += [f"line {lines[m.key]} ({_said(m, None)})" for m in earlier.matches(person)]
            if same:
                reason = f"possible duplicate: probably the same person as {'; '.join(same)}; give each their "
                errors.append(RowError(item.file, item.line, reason + "resident_id if they are two people"))
                continue
        if elder.active:
            earlier.put(person)
            lines[elder.elder_id] = item.line
        kept.append(item)
    return kept


_REASON_WORDS = {"resident_id": "same resident_id", "name_birth": "same name and birth date",
                 "name_phone": "same name and phone"}  # fmt: skip


def _said(match: Match, elder: Elder | None) -> str:
    why = ", ".join(_REASON_WORDS[reason] for reason in match.reasons)
    if elder is None:
        return f"elder {match.key}: {why}"
    return f"elder {match.key} {elder.name} of {elder.community}: {why}"


async def _keep_keys(store: RegistryStore, good: list[_Good[Device]]) -> list[_Good[Device]]:
    """Devices whose ``aes_key`` cell was empty keep the key stored for them (rule 8)."""
    if all(item.record.aes_key is not None for item in good):
        return good
    keys = {device.device_id: device.aes_key for device in await store.devices() if device.aes_key is not None}
    return [
        _Good(item.file, item.line, item.record.model_copy(update={"aes_key": keys[item.record.device_id]}))
        if item.record.aes_key is None and item.record.device_id in keys
        else item
        for item in good
    ]


async def _load(
    read: Callable[[Source], tuple[list[_Good[M]], list[RowError]]], path: Source | None
) -> tuple[list[_Good[M]], list[RowError]]:
    if path is None:
        return [], []
    return await asyncio.to_thread(read, path)


def _care_kept(good: list[_Good[Elder]], stored: dict[str, Elder], errors: list[RowError]) -> list[_Good[Elder]]:
    """Rule 9: the rows that leave a known elder's ``active`` as it is."""
    kept: list[_Good[Elder]] = []
    for item in good:
        held = stored.get(item.record.elder_id)
        if held is not None and held.active != item.record.active:
            now = "in the centre's care" if held.active else "out of the centre's care"
            reason = f"active: {item.record.elder_id} is {now}; deactivate or reactivate them on the registry page"
            errors.append(RowError(item.file, item.line, reason))
        else:
            kept.append(item)
    return kept


def _not_out_of_care(good: list[_Good[Device]], out: set[str], errors: list[RowError]) -> list[_Good[Device]]:
    """Rule 9: no device is bound to an elder out of the centre's care."""
    kept: list[_Good[Device]] = []
    for item in good:
        if item.record.elder_id in out:
            reason = f"elder_id: {item.record.elder_id} is out of the centre's care; no device is bound to them"
            errors.append(RowError(item.file, item.line, reason))
        else:
            kept.append(item)
    return kept


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
