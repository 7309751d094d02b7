"""The backup archive: one plain tar file, its manifest first, written whole or not at all.

What it owns
    The format ``anxin backup`` writes and ``anxin restore`` and ``anxin verify --backup`` read
    (docs/backup.md): a POSIX tar of flat names, ``manifest.json`` first, then each file the manifest lists
    (``anxin.sqlite3`` and any other SQLite database of the data folder, ``chain-key.checkpoints``, and
    ``chain-key`` only when asked for). The manifest says when, from where, the journal's head seq and hash,
    the anchor's last checkpoint, and the size and SHA-256 of every file.

Why a tar and not a folder
    One file is one thing to copy off the machine, to checksum, to rotate (``find -mtime +14 -delete``) and to
    rename into place atomically; a folder can be half copied, half deleted, or taken for a backup while it is
    still being written. The price: the database is staged beside the target before it is packed (twice its
    size for a moment) and unpacked before it can be read.

Rules
    1. Written under a temporary name in the target's folder (mode 0600: the registry holds health data), every
       member's bytes hashed as they are written, fsync'd, read back and checked against the manifest, then
       renamed to its final name and the folder fsync'd. A failure at any step removes the temporary file.
    2. Read by the manifest's names only: a member the manifest does not list is never unpacked, a name with a
       folder in it is refused, and every file unpacked is checked for its size and SHA-256.

Never
    Never leave a file with the final name that is not complete and checked; never overwrite an archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dispatch.errors import ConfigError

FORMAT = "anxin-backup"
VERSION = 1
MANIFEST = "manifest.json"
#: the names the anchor's files carry inside an archive (wherever they live on the server)
KEY = "chain-key"
CHECKPOINTS = "chain-key.checkpoints"
CHUNK = 1024 * 1024
#: bytes written between two syncs of a file being written (:class:`Trickle`)
SYNC_EVERY = 8 * 1024 * 1024


class ArchiveError(ConfigError):
    """An archive that cannot be read as a backup: not a tar, no manifest, a manifest of another format."""


@dataclass(frozen=True, slots=True)
class Member:
    """One file of the archive, as its manifest lists it."""

    name: str
    kind: str  # "sqlite", "checkpoints" or "key"
    size: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "size": self.size, "sha256": self.sha256}


def digest(path: Path) -> Member:
    """Size and SHA-256 of a file (its kind filled in by the caller)."""
    sha, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            sha.update(block)
            size += len(block)
    return Member(path.name, "", size, sha.hexdigest())


def fsync_path(path: Path) -> None:
    """fsync a file or a folder by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(target: Path, manifest: dict[str, Any], folder: Path) -> None:
    """Pack ``manifest`` and the files it lists (from ``folder``) into ``target`` (rule 1)."""
    if target.exists():
        raise ConfigError(f"{target} already exists: a backup is never overwritten; choose another --out")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=Trickle(raw), mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                body = json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n"
                tar.addfile(_info(MANIFEST, len(body), manifest), io.BytesIO(body))
                for entry in manifest["files"]:
                    with (folder / entry["name"]).open("rb") as handle:
                        tar.addfile(_info(entry["name"], entry["size"], manifest), handle)
            raw.flush()
            os.fsync(raw.fileno())
        problems = check(partial)
        if problems:
            raise ConfigError(f"the archive written to {partial} does not read back: {'; '.join(problems)}")
        os.rename(partial, target)
        fsync_path(target.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


class Trickle:
    """A file written to disk as it goes: flushed and fdatasync'd every :data:`SYNC_EVERY` bytes, so that the
    kernel never holds a whole archive of dirty pages to write back at once, in front of the server's own fsyncs
    (docs/backup.md, what the server feels)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._unsynced = 0

    def write(self, data: bytes) -> int:
        written = self._raw.write(data)
        self._unsynced += written
        if self._unsynced >= SYNC_EVERY:
            self.sync()
        return written

    def sync(self) -> None:
        self._raw.flush()
        os.fdatasync(self._raw.fileno())
        self._unsynced = 0

    def tell(self) -> int:
        return self._raw.tell()


def _info(name: str, size: int, manifest: dict[str, Any]) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(manifest["created_ts"])
    return info


def check(path: Path) -> list[str]:
    """What is wrong with every file of the archive against its manifest (empty: all there, sizes and hashes
    right); reads the archive once, without unpacking it."""
    with opened(path) as (tar, manifest):
        problems = []
        for member in members(manifest):
            try:
                handle = _member(tar, member.name)
                if handle is None:
                    problems.append(f"{member.name} is listed in the manifest but not in the archive")
                else:
                    problems += _compare(member, _hash(handle))
            except tarfile.TarError as exc:
                problems.append(_damaged(member.name, exc))
        return problems


@contextmanager
def opened(path: Path) -> Iterator[tuple[tarfile.TarFile, dict[str, Any]]]:
    """The archive (any compression tar reads) and its manifest, checked to be this format."""
    with _tar(path) as tar:
        try:  # the manifest is written first: read there, a damaged rest is the members' finding, not a refusal
            first = tar.next()
            handle = tar.extractfile(first) if first and first.name == MANIFEST else _member(tar, MANIFEST)
            body = b"" if handle is None else handle.read()
        except tarfile.TarError as exc:
            raise ArchiveError(f"{path}: {_damaged(MANIFEST, exc)}") from None
        if handle is None:
            raise ArchiveError(f"{path} is not a backup archive: it has no {MANIFEST}")
        try:
            manifest = json.loads(body)
        except ValueError as exc:
            raise ArchiveError(f"the manifest of {path} is not JSON: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ArchiveError(f"{path} is not an anxin backup (its manifest's format is not {FORMAT!r})")
        if manifest.get("version") != VERSION:
            raise ArchiveError(f"{path} is backup format version {manifest.get('version')}; this anxin reads {VERSION}")
        yield tar, manifest


def _tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:*")
    except OSError as exc:
        raise ArchiveError(f"cannot read the archive {path}: {exc.strerror or exc}") from None
    except tarfile.TarError:  # its message lists every compression tried, over several lines
        raise ArchiveError(f"{path} is not a backup archive: not a tar file (plain or compressed)") from None


def members(manifest: dict[str, Any]) -> list[Member]:
    """The files a manifest lists; a name with a folder in it (or not a name at all) is refused (rule 2)."""
    found = []
    for entry in manifest.get("files", []):
        name = str(entry.get("name", ""))
        if not name or name != Path(name).name or name in (".", "..", MANIFEST):
            raise ArchiveError(f"the manifest lists a file named {name!r}: not a plain file name, refused")
        found.append(Member(name, str(entry.get("kind", "")), int(entry.get("size", -1)), str(entry.get("sha256"))))
    return found


def unpack(path: Path, into: Path) -> tuple[dict[str, Any], list[str]]:
    """Unpack the manifest's files into ``into`` (mode 0600, fsync'd); the manifest and what is wrong."""
    with opened(path) as (tar, manifest):
        problems = []
        for member in members(manifest):
            try:
                problems += _unpack_one(tar, member, into / member.name)
            except tarfile.TarError as exc:
                (into / member.name).unlink(missing_ok=True)  # no half file to be checked as if whole
                problems.append(_damaged(member.name, exc))
        return manifest, problems


def _unpack_one(tar: tarfile.TarFile, member: Member, path: Path) -> list[str]:
    handle = _member(tar, member.name)
    if handle is None:
        return [f"{member.name} is listed in the manifest but not in the archive"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        found = _hash(handle, out)
        out.flush()
        os.fsync(out.fileno())
    return _compare(member, found)


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes] | None:
    """The member's contents (None when absent); ``tarfile.TarError`` when the archive is cut short: looking a
    name up reads every header, up to the end."""
    try:
        info = tar.getmember(name)
    except KeyError:
        return None
    return tar.extractfile(info) if info.isfile() else None


def _damaged(name: str, exc: tarfile.TarError) -> str:
    return f"{name} cannot be read: the archive is damaged or cut short ({exc})"


def _hash(handle: IO[bytes], out: IO[bytes] | None = None) -> tuple[int, str]:
    sha, size = hashlib.sha256(), 0
    while block := handle.read(CHUNK):
        sha.update(block)
        size += len(block)
        if out is not None:
            out.write(block)
    return size, sha.hexdigest()


def _compare(member: Member, found: tuple[int, str]) -> list[str]:
    size, sha = found
    if size != member.size:
        return [f"{member.name} holds {size} bytes, the manifest says {member.size}"]
    if sha != member.sha256:
        return [f"{member.name}'s SHA-256 is {sha[:16]}…, the manifest says {member.sha256[:16]}…: it was changed"]
    return []
