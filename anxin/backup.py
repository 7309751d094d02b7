"""``anxin backup``: a consistent copy of a data folder while its server runs, checked before it is called done.

What it owns
    Making the archive (:mod:`anxin.archive`) of an embedded data folder: every SQLite database in it copied with
    SQLite's online backup API, the anchor's checkpoints up to the copy's head, the chain key when asked for, and
    a manifest; then the copy's chain and checkpoints checked as ``anxin verify`` checks a data folder.

Rules
    1. One snapshot per database. The copy holds a read transaction on the source for its whole run: in WAL mode
       a reader never makes the server's writer wait, and the copy is the database at one instant. Without it the
       backup API starts over whenever another connection commits, which on a server taking alarms means never
       finishing (a 100 MB journal under one commit per 10 ms: 17,000 steps in 20 s and still going).
    2. Second to the server. The copy goes in steps of :data:`PAGES` pages with :data:`PAUSE_S` between them,
       each step's writes synced before the next (and the archive written the same way), so that the disk never
       holds a backup's worth of dirty pages in front of the journal's fsyncs; the process runs at nice
       :data:`NICE`, so that its check of the copy takes the CPU the server leaves.
    3. The checkpoints copied are those of seqs the copy holds: the first line of a seq past its head (written
       after the snapshot) and every line after it are left out, so the archive verifies on its own.
    4. Checked before done: the copy's chain and checkpoints are verified with the server's key (``anxin verify``'s
       check); a finding removes everything written and exits 1. With no key at the settings' place the chain and
       the checkpoints' links are still checked, and stderr says that the MACs were not.
    5. The key goes in only with ``--with-key`` (docs/backup.md says why).

Never
    Never write to the source folder; never leave a file under the archive's name that is not complete and
    checked (:mod:`anxin.archive` rule 1).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import hashlib
import importlib.metadata
import os
import shutil
import socket
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anxin import archive
from anxin.verdict import print_findings
from dispatch.anchor import Checkpoint, RecordReport, checkpoints_file, key_file, read_key, verify_record
from dispatch.clock import Clock, SystemClock
from dispatch.errors import ConfigError
from dispatch.journal import GENESIS, read_only
from dispatch.settings import Settings
from dispatch.storage import free_bytes

#: pages copied per step (4 MiB of 4 KiB pages) and the pause after each step
PAGES = 1024
PAUSE_S = 0.01
#: the backup's CPU priority below the server's: its check of a million entries is a CPU's work for seconds
NICE = 10
SQLITE_HEADER = b"SQLite format 3\x00"
JOURNAL_DB = "anxin.sqlite3"

PG_ADVICE = """\
anxin backup: this server's service record, registry and accounts are in PostgreSQL (journal_url), which
anxin backup does not copy. Back it up with PostgreSQL's own tools (docs/backup.md, the cluster):
  pg_dump --format=custom --file=anxin-$(date -u +%Y%m%dT%H%M%SZ).dump "$ANXIN_JOURNAL_URL"
  pg_basebackup --pgdata=/backup/anxin-base --format=tar --gzip --wal-method=stream -d "$ANXIN_JOURNAL_URL"
then check the record of a restored copy with: anxin verify --journal postgresql://.../restored"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "backup",
        help="copy the data folder into one checked archive, while the server runs",
        description="Copy every SQLite database of the data folder with SQLite's online backup API (the server "
        "keeps running), the chain's checkpoints and a manifest into one tar file; verify the copy's chain before "
        "saying it is done (docs/backup.md). Exit 0: written and verified; 1: the copy did not verify (nothing "
        "kept); 2: it could not be made (no journal, a cluster, a target that cannot be written).",
    )
    parser.add_argument("--data", type=Path, help="data folder (ANXIN_DATA)")
    parser.add_argument("--config", type=Path, help="TOML settings file (ANXIN_CONFIG): the server's, for its key")
    parser.add_argument("--out",
                        help="the archive, or a folder for it (default: anxin-backup-<UTC time>.tar here); a name "
                        "ending in / is a folder, which must exist")  # fmt: skip
    parser.add_argument("--with-key", action="store_true",
                        help="put the chain key in the archive too (mode 0600; docs/backup.md)")  # fmt: skip
    parser.add_argument("--journal", dest="journal_url", metavar="postgresql://...", help=argparse.SUPPRESS)
    parser.add_argument("--cluster", help=argparse.SUPPRESS)
    return parser


def run(settings: Settings, args: argparse.Namespace, clock: Clock | None = None) -> int:
    if settings.journal_url is not None or settings.cluster is not None:
        print(PG_ADVICE, file=sys.stderr)
        return 2
    if not settings.db_path.is_file():
        raise ConfigError(f"no journal in the data folder {settings.data} (setting data: --data, ANXIN_DATA)")
    os.nice(NICE)  # rule 2: the server's alarms come first for the CPU too
    clock = clock or SystemClock()
    started = time.monotonic()
    target = target_path(args.out, clock.now())
    if target.exists():
        raise ConfigError(f"{target} already exists: a backup is never overwritten; choose another --out")
    manifest, report = make(settings, target, with_key=args.with_key, clock=clock)
    if report.broken:
        print(f"anxin backup: the copy does not verify, so nothing was kept at {target}:", file=sys.stderr)
        print_findings(report, file=sys.stderr)
        return 1
    journal, anchor = manifest["journal"], manifest["anchor"]
    size = target.stat().st_size
    took, total = manifest["took_s"], time.monotonic() - started
    print(f"anxin backup: {target} ({size / 1e6:.1f} MB, {len(manifest['files'])} files) in {total:.1f} s (copy "
          f"{took['copy']} s, check {took['check']} s, pack {total - took['copy'] - took['check']:.1f} s)")  # fmt: skip
    print(f"journal: head seq {journal['head_seq']}, hash {journal['head_hash'][:16]}; the hash chain holds")
    if anchor["checked"]:
        print(f"anchor: {anchor['checkpoints']} checkpoints verified with {key_file(settings)} (the last at seq "
              f"{anchor['last_seq']})")  # fmt: skip
    else:
        print(f"anxin backup: WARNING: no chain key at {key_file(settings)}: the checkpoints' MACs were not "
              "checked (run with the server's --config, or see docs/backup.md)", file=sys.stderr)  # fmt: skip
    where = "in the archive (mode 0600)" if anchor["key_included"] else "NOT in the archive: keep a copy elsewhere"
    print(f"chain key: {where} (docs/backup.md)")
    return 0


def target_path(out: str | None, now: float) -> Path:
    """The archive's path: ``--out`` as given, or the default name in it (a folder) or here.

    ``--out /backup/anxin/`` names a folder: when it is missing, that is said, never an archive named after it
    (the next night's backup would then find it "already exists")."""
    name = f"anxin-backup-{datetime.fromtimestamp(now, UTC):%Y%m%dT%H%M%SZ}.tar"
    if out is None:
        return Path(name).absolute()
    path = Path(out)
    if path.is_dir():
        return (path / name).absolute()
    if out.endswith(("/", os.sep)):
        raise ConfigError(f"cannot write the backup in {path.absolute()}/: no such folder (make it, or fix --out)")
    return path.absolute()


def make(settings: Settings, target: Path, *, with_key: bool, clock: Clock) -> tuple[dict[str, Any], RecordReport]:
    """Copy, check and pack; the manifest and what the check found (the archive exists only if nothing)."""
    staging = target.with_name(f".{target.name}.staging-{os.getpid()}")
    try:
        _room_for(settings.data, target)
        staging.mkdir(mode=0o700)  # the registry's copy waits here: its owner's alone, as the archive is
        manifest, report = _stage(settings, staging, with_key=with_key, clock=clock)
        if not report.broken:
            archive.write(target, manifest, staging)
        return manifest, report
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot write the backup {target}: {_reason(exc)}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, sqlite3.Error) and exc.sqlite_errorcode == sqlite3.SQLITE_FULL:
        return f"{os.strerror(errno.ENOSPC)} ({exc})"
    return (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)


def _room_for(data: Path, target: Path) -> None:
    """Refuse at once a target without room for the staged copy and the archive (about twice the databases and
    their WALs); a disk that fills up anyway is met when it does."""
    needed = 2 * sum(path.stat().st_size for path in data.iterdir() if path.name.startswith(JOURNAL_DB))
    if target.parent.is_dir() and (free := free_bytes(target.parent)) < needed:
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({free / 1e6:.1f} MB free in {target.parent}; "
                      f"the copy and the archive need about {needed / 1e6:.1f} MB)")  # fmt: skip


def _stage(settings: Settings, staging: Path, *, with_key: bool, clock: Clock) -> tuple[dict[str, Any], RecordReport]:
    """Copy every database and the anchor's files into ``staging``; check the copy; the manifest."""
    created, started = clock.now(), time.monotonic()
    files = []
    for source in databases(settings.data):
        copy_database(source, staging / source.name)
        files.append(_listed(staging / source.name, "sqlite"))
    copied_at = time.monotonic()
    head_seq, head_hash = journal_head(staging / JOURNAL_DB)
    key = key_file(settings)
    live = checkpoints_file(key)
    copied = staging / archive.CHECKPOINTS
    if live.is_file():
        _write_private(copied, checkpoints_upto(live, head_seq))
        files.append(_listed(copied, "checkpoints"))
    if with_key:
        if not key.is_file():
            raise ConfigError(f"--with-key: there is no chain key at {key} (chain_key_file, ANXIN_CHAIN_KEY_FILE)")
        _write_private(staging / archive.KEY, key.read_bytes())
        files.append(_listed(staging / archive.KEY, "key"))
    report = asyncio.run(check_copy(staging / JOURNAL_DB, key, copied))
    took = {"copy": round(copied_at - started, 1), "check": round(time.monotonic() - copied_at, 1)}
    manifest = {
        "format": archive.FORMAT,
        "version": archive.VERSION,
        "created": datetime.fromtimestamp(created, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "created_ts": created,
        "source": {"data": str(settings.data.absolute()), "host": socket.gethostname(), "anxin": _version()},
        "journal": {"file": JOURNAL_DB, "head_seq": head_seq, "head_hash": head_hash, "entries": report.entries},
        "anchor": _anchor(report, key, with_key),
        "files": [member.as_dict() for member in files],
        "took_s": took,
    }
    return manifest, report


def _listed(path: Path, kind: str) -> archive.Member:
    found = archive.digest(path)
    return archive.Member(found.name, kind, found.size, found.sha256)


def _write_private(path: Path, body: bytes) -> None:
    path.touch(mode=0o600)
    with path.open("wb") as handle:
        handle.write(body)
        handle.flush()


def _anchor(report: RecordReport, key: Path, with_key: bool) -> dict[str, Any]:
    last = report.last
    return {
        "checked": report.key_found,
        "key_included": with_key,
        "key_id": key_id(key) if report.key_found else None,
        "checkpoints": report.checkpoints,
        "last_seq": last.seq if last is not None else 0,
        "last_hash": last.hash if last is not None else GENESIS,
        "last_at": last.when() if last is not None else None,
    }


def key_id(path: Path) -> str:
    """A short name of a key that does not give it away: the first 16 hex digits of a hash of it."""
    return hashlib.sha256(b"anxin-key-id\x1f" + read_key(path)).hexdigest()[:16]


def _version() -> str:
    try:
        return importlib.metadata.version("anxin")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def databases(data: Path) -> list[Path]:
    """Every SQLite database at the top of the data folder, the journal's first (found by its header, so that a
    database added later is backed up without a change here; ``-wal`` and ``-shm`` are the backup API's)."""
    found = []
    for path in sorted(data.iterdir()):
        if path.is_file() and not path.name.endswith(("-wal", "-shm", "-journal")):
            with path.open("rb") as handle:
                if handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER:
                    found.append(path)
    return sorted(found, key=lambda path: path.name != JOURNAL_DB)


def copy_database(source: Path, target: Path) -> None:
    """Copy one database as it is at one instant (rules 1 and 2) into a new file with no WAL of its own."""
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # SQLite would make it 0644
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, isolation_level=None)
    dst = sqlite3.connect(target, isolation_level=None)
    written = os.open(target, os.O_RDONLY)  # to sync what each step wrote (archive.Trickle says why)

    def step(status: int, remaining: int, total: int) -> None:
        os.fdatasync(written)
        time.sleep(PAUSE_S)

    try:
        src.execute("PRAGMA busy_timeout=5000")
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the read transaction starts here
        src.backup(dst, pages=PAGES, progress=step)
        src.execute("COMMIT")
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file; the server turns WAL on at start
    finally:
        src.close()
        dst.close()
        os.fsync(written)
        os.close(written)


def journal_head(db: Path) -> tuple[int, str]:
    """The last entry's seq and hash in a copied journal (0 and the genesis hash for an empty one)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:  # no journal table: a folder that never ran a server
        row = None
    finally:
        conn.close()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


def checkpoints_upto(path: Path, head: int) -> bytes:
    """The checkpoints file's complete lines before the first checkpoint of a seq past ``head`` (rule 3)."""
    kept = []
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break  # a line being written now
            point = Checkpoint.parse(raw)
            if point is not None and point.seq > head:
                break
            kept.append(raw)
    return b"".join(kept)


async def check_copy(db: Path, key: Path, checkpoints: Path) -> RecordReport:
    """``anxin verify``'s check of a copied journal, with ``key`` and the copied ``checkpoints``."""
    conn, read = await read_only(db)
    try:
        return await verify_record(read, key, checkpoints)
    finally:
        await conn.close()
