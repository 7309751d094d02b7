"""``anxin export``: the government platform's export of one period (dispatch.govexport, docs/government-export.md).

``anxin export --period 2026-11 [--format json|csv] [--out PATH] [--drill]`` writes the document of schema
``anxin.gov-export`` version 1: JSON, or a zip of its three CSV files (``--format csv``), to ``PATH`` (default
``gov-export-<period>.json`` or ``.zip`` here).

Where it reads
    With no server holding the data folder, offline: it takes the folder's lock (no server starts meanwhile),
    folds the journal into a projection as a server does at start, reads the registry, builds the export and
    writes the read on record (``records.read``, what ``export.government``) signed like every entry. When a
    server holds the folder (or ``--server URL`` is given) it asks that server's ``GET /api/export/government``
    with ``ANXIN_API_KEY``: a service account's key granted ``export``, or an admin's token. The two give the
    same bytes for the same journal and the same moment (``generated_at`` aside).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import httpx

from dispatch.anchor import Anchor
from dispatch.clock import SystemClock
from dispatch.core import DataLock, open_registry
from dispatch.directory import Directory
from dispatch.entries import RecordsRead, Unrecognised
from dispatch.errors import AnxinError, ConfigError, InvalidInput
from dispatch.govexport import FORMATS, check_format, parse_period, to_json, to_zip
from dispatch.journal import Entry, SqliteJournal
from dispatch.periodreport import Period
from dispatch.settings import Settings
from dispatch.state import Projection
from dispatch.views import Views
from dispatch.vouchers import VoucherRules

log = logging.getLogger("anxin.export")
#: how long a running server may take to answer (a year of a large centre, folded a slice at a time)
REMOTE_TIMEOUT_S = 600.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "export",
        help="the government platform's export of a period: elders served, incidents, services",
        description="Elders served, incidents and services of a period, for the government platform (schema "
        "anxin.gov-export version 1, docs/government-export.md). Offline on the data folder; through the running "
        "server (ANXIN_API_KEY: a key granted export) when one holds it.",
    )
    parser.add_argument("--data", type=Path, help="data folder (ANXIN_DATA)")
    parser.add_argument("--config", type=Path, help="TOML settings file (ANXIN_CONFIG)")
    parser.add_argument("--period", required=True, help="YYYY-MM (a month) or YYYY-MM-DD..YYYY-MM-DD (local days)")
    parser.add_argument("--format", dest="format", default="json", choices=FORMATS,
                        help="json (one document) or csv (a zip of three files)")  # fmt: skip
    parser.add_argument("--out", type=Path, help="the file to write (default gov-export-<period>.json or .zip)")
    parser.add_argument("--drill", action="store_true", help="drills included, and marked")
    parser.add_argument("--server", metavar="URL",
                        help="ask this running server (default, when a server holds the data folder: the address it "
                        "wrote there); the key is ANXIN_API_KEY")  # fmt: skip
    return parser


def run(settings: Settings, args: argparse.Namespace, *, server: str | None) -> int:
    """Write the export; ``server``: the running server to ask, or None to read the data folder."""
    period, kind = parse_period(args.period, settings.timezone), check_format(args.format)
    if server is not None:
        body = fetch(server.rstrip("/"), os.environ.get("ANXIN_API_KEY"), args.period, kind, drill=args.drill)
        summary = "through the server at " + server
    else:
        if settings.journal_url is not None:
            raise ConfigError("a cluster's export is its API's: give --server with the address of one of its nodes")
        document = asyncio.run(export_offline(settings, period, include_drill=args.drill))
        body = to_zip(document) if kind == "csv" else to_json(document).encode("utf-8")
        counts = document["counts"]
        summary = f"{counts['elders']} elders, {counts['incidents']} incidents, {counts['services']} services"
    out = args.out or Path(f"gov-export-{period.label.replace('..', '_')}.{'zip' if kind == 'csv' else 'json'}")
    try:
        write_private(out, body)
    except OSError as exc:
        raise ConfigError(f"cannot write {out} (--out): {exc.strerror or exc}") from None
    print(f"anxin export: wrote {out} ({summary}; schema anxin.gov-export version 1)")
    return 0


def write_private(path: Path, body: bytes) -> None:
    """The file readable by its owner alone (mode 0600, an existing file's mode made so too): it names the elders
    served, their community, age band, risk flags and care level, and with ``export_names`` their names."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(body)


async def export_offline(settings: Settings, period: Period, *, include_drill: bool) -> dict[str, Any]:
    """The export read from the data folder under its lock, and its read written on record."""
    if not settings.db_path.exists():
        raise ConfigError(f"no journal in the data folder {settings.data} (--data, ANXIN_DATA)")
    lock = DataLock(settings.data)
    lock.acquire()
    try:
        db, registry = await open_registry(settings)
        try:
            directory = await Directory.load(registry)
        finally:
            await db.close()
        clock = SystemClock()
        journal = SqliteJournal(settings.db_path, clock)
        await journal.open()
        anchor = Anchor.for_settings(journal, settings, clock)  # the read is signed like the rest
        await anchor.start()
        try:
            state = Projection(position_stale_s=settings.position_stale_s,
                               vouchers=VoucherRules.from_settings(settings))  # fmt: skip
            async for entry in journal.replay():
                _fold(state, entry)
            document = Views(state, directory, clock, settings).gov_export(period, include_drill=include_drill)
            entry = journal.append(_read_on_record(document), actor=f"admin:{os.environ.get('USER', 'cli')}")
            await journal.durable(entry.seq)
        finally:
            await journal.close()
            await anchor.stop()
        return document
    finally:
        lock.release()


def _fold(state: Projection, entry: Entry) -> None:
    """One stored entry into the projection, as the engine replays it (a bad entry is logged, not fatal)."""
    if isinstance(entry.fact, Unrecognised):
        return
    try:
        state.apply(entry)
    except (AnxinError, KeyError) as exc:
        log.error("entry %d (%s) does not apply: %s", entry.seq, entry.kind, exc)


def _read_on_record(document: dict[str, Any]) -> RecordsRead:
    """What the console's route writes for the same export (console.govexport rule 3)."""
    rows = [row for which in ("elders", "incidents", "services") for row in document[which]]
    held = sorted({row["elder_id"] for row in rows if row["elder_id"]})
    return RecordsRead("export.government", len(rows), tuple(held), str(document["period"]["label"]))


def fetch(url: str, key: str | None, period: str, kind: str, *, drill: bool) -> bytes:
    """The export as the running server answers ``GET /api/export/government``."""
    if not key:
        raise ConfigError(
            f"a server ({url}) holds the data folder: set ANXIN_API_KEY to a key of a service account granted "
            "export (or an admin's token) to export through it, or stop it"
        )
    query = {"period": period, "format": kind, "drill": "true" if drill else "false"}
    try:
        response = httpx.get(f"{url}/api/export/government", params=query, timeout=REMOTE_TIMEOUT_S,
                             headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach the server at {url} (--server, or server.url in the data folder): "
                          f"{exc}") from None  # fmt: skip
    if response.status_code == 200:
        return response.content
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail, code = body.get("detail", response.reason_phrase), body.get("code", "")
    if response.status_code == 422 and code in ("export_period", "export_format"):
        raise InvalidInput(str(detail), code=code)
    raise ConfigError(f"the server at {url} refused the export ({response.status_code} {code}): {detail}")
