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
       a queue; one thread writes the lines out. A reader that stops reading (a stalled collector, a full pipe)
       fills the queue, and the lines beyond :data:`QUEUE_LINES` are dropped and counted (:func:`dropped`), so
       answering alarms never waits on standard error.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import time
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Final, Literal

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
        return _encoder.encode(line).decode()


class _Handing(QueueHandler):
    """Formats a record where it is logged and hands the line to the writer; a full queue drops it (rule 5)."""

    def __init__(self, lines: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(lines)
        self.dropped = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """The record with its finished line as its message. The only handler, so the record is changed in place
        rather than copied (two alarm lines a second each cost the event loop less)."""
        line = self.format(record)
        record.message = record.msg = line
        record.args = record.exc_info = record.exc_text = record.stack_info = None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def flush(self) -> None:
        """Wait until the writer wrote every line handed to it, for at most :data:`FLUSH_WAIT_S` (a stalled
        reader must not keep a process that is going down -- ``logging.shutdown`` -- from going)."""
        lines: queue.Queue[logging.LogRecord] = self.queue  # type: ignore[assignment]
        deadline = time.monotonic() + FLUSH_WAIT_S
        while lines.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)


_writer: QueueListener | None = None
_handing: _Handing | None = None


def configure(fmt: Format) -> None:
    """Send every logger's records to standard error in ``fmt``, replacing what was set before, through the
    queue and its writer thread (rule 5)."""
    global _writer, _handing
    stop()
    lines: queue.Queue[logging.LogRecord] = queue.Queue(QUEUE_LINES)
    _handing = _Handing(lines)
    _handing.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    out = logging.StreamHandler(sys.stderr)  # the record's message is the finished line
    _writer = QueueListener(lines, out)
    _writer.start()
    logging.basicConfig(level=logging.INFO, handlers=[_handing], force=True)
    # neither format names a source line, thread or process: not looking them up halves a line's cost (the logging
    # HOWTO's "Optimization")
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per simulated request is noise


def flush() -> None:
    """Wait until every line handed to the writer is written (at most :data:`FLUSH_WAIT_S`)."""
    if _handing is not None:
        _handing.flush()


def stop() -> None:
    """Write what is waiting and stop the writer thread (at exit, or before configuring anew). A writer stuck on
    a reader that stopped reading is left behind (a daemon thread): the process goes without it."""
    global _writer
    if _writer is not None:
        flush()
        if not _writer.queue.unfinished_tasks:  # type: ignore[attr-defined]
            _writer.stop()
        _writer = None


def dropped() -> int:
    """Lines dropped since the log was configured because nobody read them fast enough."""
    return _handing.dropped if _handing is not None else 0


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
