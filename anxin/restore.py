"""``anxin restore`` and ``anxin verify --backup``: an archive of ``anxin backup`` checked, and made a data folder.

What it owns
    Reading an archive back (:mod:`anxin.archive`): every file against the manifest's size and SHA-256, the
    journal's chain and checkpoints as ``anxin verify`` checks them (with a key: ``--key``, the one the settings
    name when it is there, or the archive's own), its head against the manifest's; and putting a checked copy in
    place as a data folder with its chain key and checkpoints beside it, from which ``anxin serve`` starts.

Rules
    1. Checked before placed. The archive is unpacked into a staging folder beside the data folder (holding an
       existing folder's lock meanwhile); only when every check passes is anything moved aside (``--force``) and
       are the files moved in, under the new folder's lock (no server can start on it meanwhile). A tampered
       archive leaves everything as it was, and the first bad entry is named.
       A member listed as a database must be one ``anxin backup`` would take (SQLite by its first bytes, not a
       lock, not ``server.url``, not a WAL): a manifest from elsewhere may call anything a database.
    2. Nothing is overwritten. A folder a server holds is refused, ``--force`` or not: the server would go on
       acknowledging alarms into a file no longer there. A non-empty folder is refused unless ``--force``, which
       moves its contents aside (``<data>.before-restore-<time>``), never deletes them. A chain key or checkpoints
       file already at the place the settings name is moved aside the same way with ``--force``, else refused.
    3. The key goes where the settings say (``chain_key_file``, by default ``<data>.chain-key``), mode 0600, with
       the archive's checkpoints beside it: from ``--key``, else from the archive, else the key already there
       (the same key, checked by its id). With none, the data alone is restored; the server makes a new key at its
       first start and the restored entries are covered by their chain alone (the log says so).

Never
    Never write into a folder a server holds; never delete a data folder, a key or a checkpoints file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anxin import archive
from anxin.backup import JOURNAL_DB, SQLITE_HEADER, check_copy, key_id
from anxin.verdict import print_verdict
from dispatch.anchor import RecordReport, checkpoints_file, key_file
from dispatch.core import DataLock
from dispatch.errors import ConfigError
from dispatch.settings import Settings

#: what a folder may hold and still count as empty: the lock a failed restore (or a stopped server) leaves
LOCK_FILE = "anxin.lock"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "restore",
        help="make a data folder from an archive of anxin backup, checked first",
        description="Unpack an archive of `anxin backup` into a new (or empty) data folder, check every file against "
        "its manifest and the journal's chain and checkpoints, put the chain key and checkpoints where the "
        "settings say, and print how to start the server (docs/backup.md). Exit 0: restored; 1: the archive did "
        "not check (nothing restored); 2: refused (a folder in use or not empty, a key in the way).",
    )
    parser.add_argument("archive", type=Path, help="the archive (anxin-backup-....tar)")
    parser.add_argument("--data", type=Path, required=True, help="the new data folder")
    parser.add_argument("--config", type=Path, help="TOML settings file (ANXIN_CONFIG): where the key goes")
    parser.add_argument("--key", type=Path, help="the chain key, when the archive does not carry it")
    parser.add_argument(
        "--force", action="store_true", help="restore into a non-empty folder: its contents (and a key in the way) "
        "are moved aside, never deleted"
    )  # fmt: skip
    return parser


# -- verify --backup ------------------------------------------------------------------------------------


def verify(path: Path, settings: Settings, key: Path | None) -> int:
    """``anxin verify --backup``: the archive's files, chain, checkpoints and head; the exit code."""
    with tempfile.TemporaryDirectory(prefix="anxin-verify-") as tmp:
        folder = Path(tmp)
        manifest, problems = archive.unpack(path, folder)
        _describe(path, manifest)
        chosen = _verifying_key(folder, manifest, settings, key)
        report, problems = _check(folder, manifest, chosen, problems)
    for problem in problems:
        print(f"backup BROKEN: {problem}")
    if report is None:
        return 1
    code = print_verdict(report)
    if chosen == folder / archive.KEY and report.key_found:
        print(
            "note: checked with the key carried in the archive (none where the settings name one): the backup "
            "agrees with itself; check it with the server's key (--key FILE) to know it is the server's record"
        )
    return 1 if problems else code


def _describe(path: Path, manifest: dict[str, Any]) -> None:
    source, journal = manifest.get("source", {}), manifest.get("journal", {})
    print(f"backup {path}: taken {manifest.get('created')} of {source.get('host')}:{source.get('data')}; journal "
          f"head seq {journal.get('head_seq')}, hash {str(journal.get('head_hash'))[:16]}")  # fmt: skip


def _verifying_key(folder: Path, manifest: dict[str, Any], settings: Settings, key: Path | None) -> Path:
    """``--key``, else the key the settings name when it is there (this server's: an archive carrying another key
    is checked against this one, so a forged archive signed with its own key does not pass), else the archive's
    own key (a machine replaced whole; rule 3)."""
    if key is not None:
        return key
    own = key_file(settings)
    carried = any(entry.get("kind") == "key" for entry in manifest.get("files", []))
    return folder / archive.KEY if carried and not own.is_file() else own


def _check(
    folder: Path, manifest: dict[str, Any], key: Path, problems: list[str]
) -> tuple[RecordReport | None, list[str]]:
    """The unpacked journal's check with ``key`` and the archive's checkpoints, and its head against the
    manifest's; None when there is no journal to check."""
    journal = manifest.get("journal", {})
    problems = [*problems, *_not_databases(folder, manifest)]
    if not (folder / JOURNAL_DB).is_file():
        return None, [*problems, f"the archive holds no {JOURNAL_DB}"]
    try:
        report = asyncio.run(check_copy(folder / JOURNAL_DB, key, folder / archive.CHECKPOINTS))
    except sqlite3.DatabaseError as exc:  # bytes changed inside the database's pages: no entry to name
        return None, [*problems, f"{JOURNAL_DB} cannot be read as a database ({exc})"]
    head = (report.head_seq, report.head_hash)
    if head != (journal.get("head_seq"), journal.get("head_hash")):
        problems = [*problems, f"the journal ends at seq {head[0]} (hash {head[1][:16]}), but the manifest says seq "
                    f"{journal.get('head_seq')} (hash {str(journal.get('head_hash'))[:16]})"]  # fmt: skip
    expected = manifest.get("anchor", {}).get("key_id")
    if report.key_found and expected and key_id(key) != expected:
        report.notes.append(f"the key {key} (id {key_id(key)}) is not the key this backup was checked with "
                            f"(id {expected})")  # fmt: skip
    return report, problems


# -- restore --------------------------------------------------------------------------------------------


#: names a data folder's own files take, never placed from an archive (a lock a server would not see as held, the
#: address ``anxin export`` and ``anxin import`` send their key to, a journal's side files)
RESERVED = (LOCK_FILE, "server.url")
SIDE_FILES = ("-wal", "-shm", "-journal")


def _not_databases(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """The members listed as databases that ``anxin backup`` would not have taken for one (an archive from
    elsewhere): a reserved name, a journal's side file, or a file that is not SQLite."""
    found = []
    for member in archive.members(manifest):
        if member.kind != "sqlite" or not (folder / member.name).is_file():
            continue
        with (folder / member.name).open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
        if member.name in RESERVED or member.name.endswith(SIDE_FILES) or header != SQLITE_HEADER:
            found.append(f"{member.name} is listed as a database, but anxin backup never takes it for one: refused")
    return found


# -- restore --------------------------------------------------------------------------------------------


def restore(path: Path, settings: Settings, *, key: Path | None, force: bool, config: Path | None = None) -> int:
    """``anxin restore``: the exit code."""
    data = settings.data.absolute()
    with archive.opened(path) as (_, manifest):
        carried = any(entry.get("kind") == "key" for entry in manifest.get("files", []))
    target_key = key_file(settings.model_copy(update={"data": data}))
    in_the_way = _data_in_the_way(data, force) + _key_in_the_way(target_key, key, manifest, force)
    held = _hold(data)  # no server starts on the old folder while the archive is checked beside it
    staging = data.with_name(f".{data.name}.restore-{os.getpid()}")
    try:
        staging.mkdir(mode=0o700, parents=True)
        unpacked, problems = archive.unpack(path, staging)
        source = key or (staging / archive.KEY if carried else target_key)
        if source == target_key and target_key in in_the_way:  # another journal's key: moved aside, not used
            source = staging / archive.KEY
        report, problems = _check(staging, unpacked, source, problems)
        if problems or report is None or report.broken:
            _refused(path, problems, report)  # and nothing was moved aside either
            return 1
        for old in in_the_way:
            moved = _aside(old)  # only once the archive checks
            old.rename(moved)
            print(f"anxin restore: moved {old} aside to {moved} (nothing deleted)")
        placed = _place_locked(staging, data, unpacked, source, target_key, report)
    except OSError as exc:
        raise ConfigError(f"cannot restore into {data}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if held is not None:
            held.release()
    _restored(data, unpacked, report, placed, target_key, config)
    return 0


def _hold(data: Path) -> DataLock | None:
    """The lock of an existing data folder (no server holds it: checked), held until the restore ends."""
    if not data.is_dir():
        return None
    lock = DataLock(data)
    lock.acquire()
    return lock


def _place_locked(
    staging: Path, data: Path, manifest: dict[str, Any], source: Path, target_key: Path, report: RecordReport
) -> bool:
    """Under the new folder's lock (no server can start on it meanwhile): the databases, then the key."""
    data.mkdir(parents=True, exist_ok=True)
    lock = DataLock(data)
    lock.acquire()
    try:
        _place(staging, data, manifest)
        return _place_key(staging, source, target_key, report)
    finally:
        lock.release()


def _data_in_the_way(data: Path, force: bool) -> list[Path]:
    """Rule 2 for the data folder: refused, or to be moved aside (``[data]``), or free (``[]``)."""
    if data.exists() and not data.is_dir():
        raise ConfigError(f"{data} is a file, not a data folder")
    if not data.exists() or not [child for child in data.iterdir() if child.name != LOCK_FILE]:
        return []
    if (data / LOCK_FILE).exists():  # a server holds it by this file (no file: no server, and none is made here)
        lock = DataLock(data)
        try:
            lock.acquire()
        except ConfigError:
            raise ConfigError(f"a server is running on {data}: stop it first (a restore never writes under a "
                              "running server, --force or not)") from None  # fmt: skip
        lock.release()
    if not force:
        raise ConfigError(f"the data folder {data} is not empty: restore into a new folder, or pass --force to move "
                          f"its contents aside to {_aside(data)}")  # fmt: skip
    return [data]


def _aside(path: Path) -> Path:
    return path.with_name(f"{path.name}.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")


def _key_in_the_way(target: Path, given: Path | None, manifest: dict[str, Any], force: bool) -> list[Path]:
    """Rule 2 for the key and its checkpoints: a checkpoints file there, or a key other than the backup's, refused
    or to be moved aside."""
    expected = manifest.get("anchor", {}).get("key_id")
    if given is not None and expected and key_id(given) != expected:
        raise ConfigError(f"--key {given} is not the key this backup was made with (id {key_id(given)}, the "
                          f"backup's {expected})")  # fmt: skip
    in_the_way = [path for path in (checkpoints_file(target),) if path.exists()]
    if target.exists() and not (expected and key_id(target) == expected):
        in_the_way.append(target)
    if in_the_way and not force:
        names = " and ".join(str(path) for path in in_the_way)
        raise ConfigError(f"{names} already exist{'s' if len(in_the_way) == 1 else ''}: they record what another "
                          "journal held; move them away (keep them), point chain_key_file elsewhere, or pass "
                          "--force to move them aside")  # fmt: skip
    return in_the_way


def _place(staging: Path, data: Path, manifest: dict[str, Any]) -> None:
    """Move the checked databases into the data folder (rule 1) and make it durable."""
    for member in archive.members(manifest):
        if member.kind == "sqlite":
            os.rename(staging / member.name, data / member.name)
    archive.fsync_path(data)


def _place_key(staging: Path, source: Path, target: Path, report: RecordReport) -> bool:
    """The key and the archive's checkpoints where the settings say (rule 3); whether a key is there now."""
    if not report.key_found:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        _copy_private(source, target)
    copied = staging / archive.CHECKPOINTS
    if copied.is_file():
        _copy_private(copied, checkpoints_file(target))
    archive.fsync_path(target.parent)
    return True


def _copy_private(source: Path, target: Path) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(source.read_bytes())
        out.flush()
        os.fsync(out.fileno())


def _refused(path: Path, problems: list[str], report: RecordReport | None) -> None:
    print(f"anxin restore: {path} does not check; nothing was restored:", file=sys.stderr)
    for problem in problems:
        print(f"backup BROKEN: {problem}", file=sys.stderr)
    for finding in report.broken if report is not None else []:
        print(f"journal BROKEN: {finding}", file=sys.stderr)


def _restored(
    data: Path, manifest: dict[str, Any], report: RecordReport, placed: bool, key: Path, config: Path | None
) -> None:
    journal = manifest["journal"]
    print(f"anxin restore: {data} holds the backup of {manifest['created']}: {report.entries} journal entries, head "
          f"seq {journal['head_seq']} (hash {journal['head_hash'][:16]}); every file matches the manifest")  # fmt: skip
    if placed:
        print(f"chain key and checkpoints: {key} ({report.checkpoints} checkpoints, verified)")
    else:
        print(f"chain key: none (the archive carries none and none was given with --key): the restored chain holds, "
              f"but its checkpoints were not checked; the server makes a new key at {key} at its first start and "
              "anchors from there on")  # fmt: skip
    print(f"start it with: anxin serve --data {data}{f' --config {config}' if config else ''}")
