"""The anchor: the journal's durable head, signed with a key that is not in the database, written beside the key.

What it owns
    The chain key and the checkpoints file, and the check of a journal against them (:func:`verify_record`).

    * The key: 32 random bytes, written once as 64 hex digits in a file of mode 0600 at the first start,
      ``Settings.chain_key_file``, by default ``<data>.chain-key`` beside the data folder (never inside it).
    * The checkpoints file: ``<key file>.checkpoints``, in the key's folder (so never in the data folder either),
      one JSON line per checkpoint::

          {"v":1,"seq":1234,"hash":"<64 hex>","ts":1780000000.25,"prev":"<64 hex>","mac":"<64 hex>"}

      ``seq`` and ``hash`` are the journal's durable head when it was written, ``ts`` the time (UTC seconds),
      ``prev`` the ``mac`` of the line before (64 zeros on the first line) and ``mac`` the HMAC-SHA256, with the
      key, of ``anxin-checkpoint-v1``, seq, hash, ``repr(ts)`` and prev joined by ``\\x1f`` (:func:`sign`).

Why
    The hash chain shows an edit only to someone who does not recompute the hashes after it. Whoever can write the
    database file can drop the triggers, edit an entry and rehash everything after it, or cut the tail off, and
    the chain still holds. A checkpoint fixes, outside that file, what the journal held at a moment: a rehashed
    entry no longer has the checkpointed hash, a cut journal ends below the last checkpoint, a line dropped from
    the middle of the checkpoints file breaks the MAC chain, and none of it can be forged without the key.
    What was written since the last checkpoint (at most ``anchor_every_s``) is not covered (docs/security.md).

Rules
    1. Off the commit path. The journal's group commit never waits for the anchor: a background task reads the
       durable head (memory) every ``anchor_every_s`` and, when it moved, appends one line in a worker thread
       (write, flush, fsync). One more at start, one on clean shutdown (after the journal's last commit).
    2. Never stops alarms. A file that cannot be written is logged at ERROR each time, kept in
       :attr:`Anchor.failure` and retried at the next tick; a key that cannot be had leaves the anchor off until
       the next start, said the same way. Nothing is raised to the core.
    3. Append only. The file is opened for appending; a torn last line (a crash mid-write) is closed with a
       newline and left there, never cut. :func:`verify_record` notes such a line and skips it.
    4. A key is made only when there is neither key nor checkpoints file. A lost key is never replaced silently
       (its checkpoints could no longer be checked): the anchor stays off and says so until the key is back.
    5. Verification streams: the journal in batches, the checkpoints file line by line.

Never
    Never checkpoint an entry that is not durable, never rewrite or truncate the checkpoints file, never put the
    key or the checkpoints inside the data folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from dispatch.clock import Clock
from dispatch.errors import ConfigError
from dispatch.journal import GENESIS, Entry, Journal, link_broken
from dispatch.settings import Settings

log = logging.getLogger(__name__)

KEY_BYTES = 32
FORMAT = 1
_CONTEXT = "anxin-checkpoint-v1"
_TAIL_BYTES = 64 * 1024  # the last checkpoint is found in the file's last 64 KiB (a line is about 260 bytes)
MAX_FINDINGS = 20  # verify prints the first failures in full and counts the rest

Read = Callable[[int, int], Awaitable[list[Entry]]]


def key_file(settings: Settings) -> Path:
    """Where the chain key lives: the setting, or ``<data>.chain-key`` beside the data folder."""
    return settings.chain_key_file or Path(str(settings.data) + ".chain-key")


def checkpoints_file(key: Path) -> Path:
    """The checkpoints file that goes with a key file: beside it, ``<key file>.checkpoints``."""
    return key.with_name(key.name + ".checkpoints")


def sign(key: bytes, seq: int, digest: str, ts: float, prev: str) -> str:
    message = "\x1f".join((_CONTEXT, str(seq), digest, repr(ts), prev))
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One line of the checkpoints file."""

    seq: int
    hash: str
    ts: float
    prev: str
    mac: str

    @classmethod
    def signed(cls, key: bytes, seq: int, digest: str, ts: float, prev: str) -> Checkpoint:
        return cls(seq, digest, ts, prev, sign(key, seq, digest, ts, prev))

    def valid(self, key: bytes) -> bool:
        return hmac.compare_digest(self.mac, sign(key, self.seq, self.hash, self.ts, self.prev))

    def line(self) -> bytes:
        body = {"v": FORMAT, "seq": self.seq, "hash": self.hash, "ts": self.ts, "prev": self.prev, "mac": self.mac}
        return (json.dumps(body, separators=(",", ":")) + "\n").encode()

    @classmethod
    def parse(cls, raw: bytes) -> Checkpoint | None:
        """The checkpoint on one line, or None when the line is not one (torn, or not this format)."""
        try:
            body = json.loads(raw)
            point = cls(int(body["seq"]), str(body["hash"]), float(body["ts"]), str(body["prev"]), str(body["mac"]))
        except (ValueError, TypeError, KeyError):
            return None
        return point if body.get("v") == FORMAT else None

    def when(self) -> str:
        return datetime.fromtimestamp(self.ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# -- the key and the file ---------------------------------------------------------------------------------


def read_key(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"the chain key {path} cannot be read: {exc}") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"the chain key {path} is not {KEY_BYTES} bytes in hex")
    if path.stat().st_mode & 0o077:
        log.warning("the chain key %s can be read by other users: chmod 600 it", path)
    return key


def create_key(path: Path) -> bytes:
    """A new key, in a new file of mode 0600 (refused if one appeared meanwhile), and an empty checkpoints file."""
    if not path.parent.is_dir():  # a missing mount point must not get a key of its own
        raise ConfigError(f"the chain key's folder {path.parent} does not exist")
    key = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    checkpoints_file(path).touch(mode=0o600, exist_ok=True)
    _sync_folder(path.parent)
    return key


def last_checkpoint(path: Path) -> Checkpoint | None:
    """The last readable line of a checkpoints file (None for an empty or missing one)."""
    if not path.exists():
        return None
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - _TAIL_BYTES))
        tail = handle.read().split(b"\n")
    for raw in reversed(tail):
        if (point := Checkpoint.parse(raw)) is not None:
            return point
    if size <= _TAIL_BYTES:
        return None
    last = None
    for _, _, point in _lines(path, size):
        last = point or last
    return last


def append_line(path: Path, line: bytes) -> None:
    """Append one line and fsync it; first close a torn last line with a newline (rule 3)."""
    with path.open("a+b") as handle:
        if handle.seek(0, os.SEEK_END) > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = b"\n" + line
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lines(path: Path, size: int) -> Iterator[tuple[int, bytes, Checkpoint | None]]:
    """(line number, text, checkpoint or None) for each line in the first ``size`` bytes (what existed when the
    caller looked; a line being appended meanwhile is not read)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(_bounded(handle, size), start=1):
            yield number, raw.rstrip(b"\n"), Checkpoint.parse(raw) if raw.endswith(b"\n") else None


def _bounded(handle: IO[bytes], size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        raw = handle.readline(left)
        if not raw:
            return
        left -= len(raw)
        yield raw


# -- the anchor at work ------------------------------------------------------------------------------------


class Anchor:
    """Signs the journal's durable head into the checkpoints file, from a background task (rule 1)."""

    def __init__(self, journal: Journal, key: Path, clock: Clock, every_s: float = 1.0) -> None:
        self.key_file = key
        self.path = checkpoints_file(key)
        self._journal = journal
        self._clock = clock
        self._every_s = every_s
        self._key: bytes | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        #: the last checkpoint in the file (written now or found at start)
        self.last: Checkpoint | None = None
        #: why the last attempt to anchor failed; None while anchoring works
        self.failure: str | None = None
        self.written = 0

    @classmethod
    def for_settings(cls, journal: Journal, settings: Settings, clock: Clock) -> Anchor:
        return cls(journal, key_file(settings), clock, settings.anchor_every_s)

    async def start(self) -> None:
        """Find (or make) the key, look at the last checkpoint, write one now, start the background task."""
        try:
            self._key, self.last = await asyncio.to_thread(self._prepare)
        except (OSError, ConfigError) as exc:
            self._fail(f"the journal is not anchored: {exc}")
            return
        await self._compare_last()
        await self.checkpoint()
        self._task = asyncio.create_task(self._loop(), name="journal-anchor")

    async def stop(self) -> None:
        """Stop the task and write the last checkpoint: call it after the journal's last commit."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.checkpoint()

    async def checkpoint(self) -> Checkpoint | None:
        """Append a checkpoint of the durable head if it moved since the last one; None if nothing was written."""
        async with self._lock:
            seq, digest = self._journal.durable_head
            if self._key is None or seq == 0 or (self.last is not None and self.last.seq == seq):
                return None
            prev = self.last.mac if self.last is not None else GENESIS
            point = Checkpoint.signed(self._key, seq, digest, self._clock.now(), prev)
            try:
                await asyncio.to_thread(append_line, self.path, point.line())
            except OSError as exc:
                self._fail(f"checkpoint of seq {seq} not written to {self.path}: {exc}")
                return None
            if self.failure is not None:
                log.warning("anchor: checkpoints are written again (%s)", self.path)
            self.last, self.failure = point, None
            self.written += 1
            return point

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self.checkpoint()
            except Exception as exc:  # rule 2: whatever happens here, the alarms go on
                self._fail(f"checkpoint failed: {exc!r}")

    def _prepare(self) -> tuple[bytes, Checkpoint | None]:
        if self.key_file.exists():
            key = read_key(self.key_file)
            if not self.path.exists() and self._journal.durable_seq > 0:
                # a new chain here would let a rewritten journal verify again: stay off, as for a lost key
                raise ConfigError(
                    f"the checkpoints file {self.path} is gone although the key exists and the journal holds "
                    f"entries (deleted or moved?): no new chain is started; put it back and restart (or, after "
                    f"looking, move the key away: a new key and chain start, and verify says the old ones are gone)"
                )
        elif self.path.exists():
            raise ConfigError(
                f"the chain key {self.key_file} is missing but its checkpoints {self.path} exist; no new key is "
                "made (the old checkpoints could no longer be checked): put the key back and restart"
            )
        else:
            key = create_key(self.key_file)
            log.info("anchor: made a new chain key %s (keep a copy away from this machine)", self.key_file)
        return key, last_checkpoint(self.path)

    async def _compare_last(self) -> None:
        """At start, the last checkpoint against the journal: a cheap look, the full check is ``anxin verify``.

        Entries past the last checkpoint are checkpointed as they are found (they cannot be told from genuine
        ones); a warning says how many, so that an import, a crash or a hand on the file shows in the log."""
        last, key = self.last, self._key
        head, _ = self._journal.durable_head
        if key is None:
            return
        if last is None:
            if head > 0:
                log.warning("anchor: entries 1 to %d were written before this journal had checkpoints", head)
            return
        if not last.valid(key):
            log.error(
                "anchor: the last checkpoint (seq %d) does not carry this key's MAC: run `anxin verify`", last.seq
            )
        if head < last.seq:
            log.error(
                "anchor: the journal ends at seq %d, below its last checkpoint (seq %d at %s): entries were removed; "
                "run `anxin verify`",
                head,
                last.seq,
                last.when(),
            )
            return
        entries = await self._journal.read(last.seq - 1, 1)
        if not entries or entries[0].hash != last.hash:
            log.error(
                "anchor: entry %d is not the one checkpointed at %s: the journal was rewritten; run `anxin verify`",
                last.seq,
                last.when(),
            )
        elif head > last.seq:
            log.warning(
                "anchor: entries %d to %d were written after the last checkpoint (%s) and before this start (an "
                "import, the last moment before a crash, or a hand on the file)",
                last.seq + 1,
                head,
                last.when(),
            )

    def _fail(self, reason: str) -> None:
        self.failure = reason
        log.error("anchor: %s", reason)


# -- verification ------------------------------------------------------------------------------------------


@dataclass
class RecordReport:
    """What :func:`verify_record` found. ``broken`` holds the failures (the first :data:`MAX_FINDINGS`)."""

    key_file: Path
    checkpoints_file: Path
    key_found: bool
    checkpoints_found: bool
    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    checkpoints: int = 0
    last: Checkpoint | None = None
    #: the last checkpoint whose seq the journal holds with the same hash
    last_matching: Checkpoint | None = None
    broken: list[str] = field(default_factory=list)
    more_broken: int = 0
    chain_broken: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing was found wrong (which, without the key, is not the same as checked: see :attr:`anchored`)."""
        return not self.broken

    @property
    def anchored(self) -> bool:
        """The checkpoints were there, and checked with the key."""
        return self.key_found and self.checkpoints_found

    def fail(self, message: str) -> None:
        if len(self.broken) < MAX_FINDINGS:
            self.broken.append(message)
        else:
            self.more_broken += 1

    def unanchored(self) -> int:
        """Entries written after the last checkpoint (the window nothing outside the database covers yet)."""
        return max(0, self.head_seq - (self.last.seq if self.last is not None else 0))


async def verify_record(read: Read, key: Path, checkpoints: Path | None = None) -> RecordReport:
    """Check the journal (through ``read``, as :func:`dispatch.journal.read_only` gives it) against the chain and
    against the checkpoints beside ``key`` (or in ``checkpoints``: a backup's copy, checked with the live key).
    Never raises for what it finds; a key file that is there but unusable raises :class:`ConfigError`."""
    report, points = await asyncio.to_thread(_open_checkpoints, key, checkpoints or checkpoints_file(key))
    pending = points.next()
    prev_hash, expected, after = GENESIS, 1, 0
    while entries := await read(after, 5000):
        for entry in entries:
            broken = link_broken(entry, prev_hash, expected)
            if broken is not None:
                report.chain_broken = True
                report.fail(str(broken))
            report.entries += 1
            prev_hash, expected = entry.hash, entry.seq + 1
            while pending is not None and pending.seq <= entry.seq:
                _compare(report, pending, points.number, entry)
                pending = points.next()
        after = entries[-1].seq
    report.head_seq, report.head_hash = after, prev_hash
    if pending is not None:
        report.fail(
            f"the journal is truncated: it ends at seq {after}, but checkpoint line {points.number} recorded seq "
            f"{pending.seq} at {pending.when()}: entries {after + 1} to {pending.seq} (at least) are gone"
        )
    while points.next() is not None:  # the rest of the file: its MACs and order
        pass
    return report


def _open_checkpoints(key: Path, path: Path) -> tuple[RecordReport, _CheckpointWalk]:
    report = RecordReport(key, path, key.exists(), path.exists())
    secret = read_key(key) if report.key_found else None
    size = path.stat().st_size if report.checkpoints_found else 0  # what is written after this is not read
    if report.key_found and not report.checkpoints_found:
        report.fail(f"the checkpoints file {path} is missing although the key exists: it was deleted or moved")
    return report, _CheckpointWalk(report, secret, _lines(path, size) if report.checkpoints_found else iter(()))


def _compare(report: RecordReport, point: Checkpoint, line: int, entry: Entry) -> None:
    """One checkpoint against the journal's entry at or just after its seq."""
    if point.seq != entry.seq:
        report.fail(f"checkpoint line {line} recorded seq {point.seq}, which the journal does not hold")
    elif point.hash != entry.hash:
        since = report.last_matching.seq if report.last_matching is not None else 0
        report.fail(
            f"entry {entry.seq} is not the entry checkpointed at {point.when()} (checkpoint line {line}): the journal "
            f"has hash {entry.hash[:16]}, the checkpoint {point.hash[:16]}; an entry from {since + 1} to {entry.seq} "
            "was changed and the hashes after it recomputed"
        )
    else:
        report.last_matching = point


class _CheckpointWalk:
    """The checkpoints file, one checkpoint at a time, its MACs, links and order checked as they are read."""

    def __init__(
        self, report: RecordReport, key: bytes | None, lines: Iterator[tuple[int, bytes, Checkpoint | None]]
    ) -> None:
        self._report = report
        self._key = key
        self._lines = lines
        self._prev = GENESIS
        self._prev_line = 0
        self._prev_seq = 0
        self.number = 0

    def next(self) -> Checkpoint | None:
        report = self._report
        for number, raw, point in self._lines:
            if point is None:
                report.notes.append(
                    f"checkpoint line {number} is not a checkpoint (a torn write?), skipped: {raw[:60]!r}"
                )
                continue
            self.number = number
            report.checkpoints += 1
            report.last = point
            if self._key is not None and not point.valid(self._key):
                hint = " (is this the key the server uses?)" if report.checkpoints == 1 else ""
                report.fail(f"checkpoint line {number} (seq {point.seq}) does not carry the key's MAC{hint}")
            if point.prev != self._prev:
                before = f"line {self._prev_line}" if self._prev_line else "the start of the file"
                report.fail(
                    f"checkpoint line {number} (seq {point.seq}) does not follow {before}: a checkpoint between "
                    "them was removed, added or altered"
                )
            if point.seq <= self._prev_seq:
                report.fail(f"checkpoint line {number} goes back from seq {self._prev_seq} to {point.seq}")
            self._prev, self._prev_line, self._prev_seq = point.mac, number, point.seq
            return point
        return None
