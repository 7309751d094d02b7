"""The server's log: JSON lines for machines, or text for people, and the facts of the record worth a line.

What it owns
    How log records are written (:func:`configure`): ``json``, one object per line with ``ts`` (UTC, ISO 8601),
    ``level``, ``logger``, ``message`` and the ids the record carries (:data:`FIELDS`, given as ``extra=`` at the
    call); or ``text``, one line as before. And :class:`FactLog`, which logs the record's facts an engineer on call
    looks for -- an incident opened, an alarm joining one, an escalation -- once each, when they are durable.

Rules
    1. ``anxin serve`` writes JSON unless told otherwise (``log_format``, ``ANXIN_LOG_FORMAT``): a server runs
       under a service manager or in a container, whose log goes to a collector that searches by field (every line
       of one incident: ``incident_id``); ``jq`` reads it on a terminal. The demo and the other commands write text:
       a person watches them.
    2. A line names ids (incident, device, elder, protocol), never a person's name, phone, address or health.
    3. Uvicorn's own loggers go through the same handler (the server passes it no logging config of its own).
    4. A fact is logged after it is durable, by the node that decides (a cluster's followers hear the same facts
       and stay quiet), so a line means "on record".
    5. The event loop never waits for the log's reader: a record is formatted where it is logged and handed to
       a queue; one thread writes the lines out, a batch every 50 ms (a warning or an error at once). A reader
       that stops reading (a stalled collector, a full pipe) fills the queue, and the lines beyond
       :data:`QUEUE_LINES` are dropped and counted (:func:`dropped`), so answering alarms never waits on standard
       error.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import sys
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Final, Literal, TextIO

import msgspec

from dispatch.core import Core
from dispatch.entries import AlarmAttached, Escalated, IncidentOpened, NeedsManual, Unanswered
from dispatch.journal import Entry

Format = Literal["json", "text"]

#: the extras a JSON line carries when the record has them
FIELDS: Final = (
    "incident_id", "device_id", "elder_id", "protocol", "alarm_type", "source", "priority", "drill", "seq",
)  # fmt: skip
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: the lines waiting for the writer thread before new ones are dropped (rule 5)
QUEUE_LINES: Final = 10_000
#: how long a flush (a process going down) waits for the writer
FLUSH_WAIT_S: Final = 2.0
#: how often the writer writes what was handed to it (at once for a warning or an error)
WRITE_EVERY_S: Final = 0.05

_encoder = msgspec.json.Encoder(enc_hook=str)  # what JSON does not know (a Path, a datetime) as its text


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (rule 1)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = record.stack_info
        try:
            return _encoder.encode(line).decode()
        except UnicodeEncodeError:  # a lone surrogate (from a client's JSON, say): escaped, never a lost line
            return json.dumps(line, default=str)


class _Writer:
    """One daemon thread that writes the lines handed to it, every :data:`WRITE_EVERY_S` or when woken (rule 5).

    Handing a line over is an append to a deque: no lock, no thread woken per line, so the event loop never trades
    the interpreter with the writer line by line. A line at WARNING or above wakes the writer at once.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines: deque[str] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self.handed = self.written = self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="anxin-log", daemon=True)
        self._thread.start()

    def hand(self, line: str, *, urgent: bool) -> None:
        """Queue one line (the handler's lock is held: one caller at a time); dropped when the queue is full."""
        if self.handed - self.written >= QUEUE_LINES:
            self.dropped += 1
            return
        self._lines.append(line)
        self.handed += 1
        if urgent:
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(WRITE_EVERY_S)
            self._wake.clear()
            lines = self._lines
            batch = [lines.popleft() for _ in range(len(lines))]
            if batch:
                with contextlib.suppress(OSError, ValueError):  # a closed or broken standard error loses them
                    self._stream.write("\n".join(batch) + "\n")
                    self._stream.flush()
                self.written += len(batch)
            if self._stopping and not lines:
                return

    def flush(self) -> bool:
        """Wait until every line handed over is written, for at most :data:`FLUSH_WAIT_S` (a stalled reader must
        not keep a process that is going down -- ``logging.shutdown`` -- from going); whether they all were."""
        deadline = time.monotonic() + FLUSH_WAIT_S
        while self.written < self.handed and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.005)
        return self.written >= self.handed

    def stop(self) -> None:
        """Write what is waiting and end the thread; a thread stuck on a reader that stopped reading is left behind."""
        if self.flush():
            self._stopping = True
            self._wake.set()
            self._thread.join(FLUSH_WAIT_S)


class _Handing(logging.Handler):
    """Formats a record where it is logged and hands the line to the writer (rule 5)."""

    def __init__(self, writer: _Writer) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a bad format string or argument: logging's own report, never the caller's failure
            self.handleError(record)
            return
        self.writer.hand(line, urgent=record.levelno >= logging.WARNING)

    def flush(self) -> None:
        self.writer.flush()


_handing: _Handing | None = None


def configure(fmt: Format) -> None:
    """Send every logger's records to standard error in ``fmt``, replacing what was set before, through the
    writer thread (rule 5)."""
    global _handing
    stop()
    _handing = _Handing(_Writer(sys.stderr))
    _handing.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[_handing], force=True)
    # neither format names a source line, thread or process: not looking them up halves a line's cost (the logging
    # HOWTO's "Optimization")
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per simulated request is noise


def flush() -> None:
    """Wait until every line handed to the writer is written (at most :data:`FLUSH_WAIT_S`)."""
    if _handing is not None:
        _handing.writer.flush()


def stop() -> None:
    """Write what is waiting and stop the writer thread (at exit, or before configuring anew). A writer stuck on
    a reader that stopped reading is left behind (a daemon thread): the process goes without it."""
    global _handing
    if _handing is not None:
        _handing.writer.stop()
        _handing = None


def dropped() -> int:
    """Lines dropped since the log was configured because nobody read them fast enough."""
    return _handing.writer.dropped if _handing is not None else 0


atexit.register(stop)


log = logging.getLogger("anxin.record")


class FactLog:
    """Logs the durable facts an engineer on call looks for, with their ids (rule 4)."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def heard(self, entry: Entry) -> None:
        fact = entry.fact
        if not isinstance(fact, IncidentOpened | AlarmAttached | Unanswered | Escalated | NeedsManual):
            return
        node = self._core.node
        if node is not None and not node.leading:
            return
        incident_id = fact.incident_id if isinstance(fact, IncidentOpened) else entry.incident_id
        ids: dict[str, object] = {"incident_id": incident_id, "seq": entry.seq, "drill": entry.drill or None}
        if isinstance(fact, IncidentOpened):
            ids |= {"elder_id": fact.elder_id, "device_id": fact.device_id, "alarm_type": fact.alarm_type,
                    "source": fact.source, "priority": fact.priority}  # fmt: skip
            what = "a test call" if fact.test else f"priority {fact.priority}"
            log.info("incident %s opened: %s %s from %s (%s)", incident_id, fact.alarm_type,
                     "drill" if entry.drill else "alarm", fact.source, what, extra=ids)  # fmt: skip
        elif isinstance(fact, AlarmAttached):
            ids |= {"device_id": fact.device_id, "alarm_type": fact.alarm_type, "source": fact.source}
            log.info("incident %s: another %s alarm from %s joined it", entry.incident_id, fact.alarm_type,
                     fact.source, extra=ids)  # fmt: skip
        elif isinstance(fact, Unanswered):
            log.warning("incident %s escalated to supervisors: unacknowledged after %.0f s", entry.incident_id,
                        fact.waited_s, extra=ids)  # fmt: skip
        elif isinstance(fact, Escalated):
            log.warning("incident %s handed to an outside service (%s)", entry.incident_id, fact.service, extra=ids)
        else:
            log.warning("incident %s needs an operator's dispatch (%s)", entry.incident_id, fact.reason, extra=ids)
