"""The server's log lines (anxin.logs): JSON with the ids a record carries, or text; and the record's facts."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from anxin.logs import QUEUE_LINES, JsonFormatter, configure, dropped, flush, stop
from tests.conftest import require_program
from tests.process import ROOT, ServerProcess


def record(message: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("anxin.record", logging.WARNING, __file__, 1, message, args, None)
    made.created = 1_780_000_000.25
    if exc:
        try:
            raise RuntimeError("the disk went away")
        except RuntimeError:
            made.exc_info = sys.exc_info()
    made.__dict__.update(extra)
    return made


def test_a_json_line_carries_the_ids_the_record_has_and_nothing_else() -> None:
    line = JsonFormatter().format(record("incident %s escalated to 蓝田街道", "INC-7", incident_id="INC-7",
                                         elder_id="e00042", protocol=None, secret="not a field"))  # fmt: skip
    assert "\n" not in line
    assert json.loads(line) == {
        "ts": "2026-05-28T20:26:40.250+00:00",
        "level": "WARNING",
        "logger": "anxin.record",
        "message": "incident INC-7 escalated to 蓝田街道",
        "incident_id": "INC-7",
        "elder_id": "e00042",
    }
    assert "蓝田街道" in line  # Chinese stays readable, not \\u escapes


def test_a_lone_surrogate_is_escaped_not_a_lost_line() -> None:
    """Text from a client's JSON may hold half a surrogate pair, which UTF-8 cannot carry: the line is escaped."""
    line = JsonFormatter().format(record("caller said %s", "\ud800", incident_id="INC-7"))
    assert json.loads(line)["message"] == "caller said \ud800" and line.isascii()


def test_an_exception_is_one_field_of_one_line() -> None:
    line = JsonFormatter().format(record("journal: commit failed", exc=True))
    assert line.count("\n") == 0
    assert "RuntimeError: the disk went away" in json.loads(line)["exc"]


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_configure_sends_every_logger_through_one_handler(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        configure(fmt)  # type: ignore[arg-type]
        logging.getLogger("uvicorn.error").warning("port %d taken", 8000, extra={"protocol": "http"})
        flush()
        err = capsys.readouterr().err.strip().splitlines()[-1]
        if fmt == "json":
            assert json.loads(err)["message"] == "port 8000 taken" and json.loads(err)["protocol"] == "http"
        else:
            assert err.endswith("WARNING uvicorn.error: port 8000 taken")
    finally:
        stop()
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)


class _Stalled:
    """Standard error whose reader stopped reading: every write waits until released."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.released.wait()
        self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_a_reader_that_stops_reading_never_holds_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    stalled = _Stalled()
    monkeypatch.setattr(sys, "stderr", stalled)
    configure("json")
    try:
        logger = logging.getLogger("anxin.record")
        done = threading.Event()

        def log_many() -> None:
            for n in range(QUEUE_LINES + 500):
                logger.warning("alarm %d", n, extra={"incident_id": f"INC-{n}"})
            done.set()

        threading.Thread(target=log_many, daemon=True).start()
        assert done.wait(60), "logging waited for a reader that stopped reading"
        assert dropped() >= 499  # the queue held QUEUE_LINES (one may be in the writer's hands); the rest dropped
        stalled.released.set()
        flush()
        assert json.loads("".join(stalled.lines).splitlines()[0])["incident_id"] == "INC-0"
    finally:
        stalled.released.set()
        stop()
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)


def test_a_process_that_exits_at_once_still_writes_its_last_line() -> None:
    """A cluster node that lost the lead logs why, shuts logging down and leaves with os._exit (anxin.server
    lost_lead): the line handed to the writer thread is written before the process goes."""
    program = (
        "import logging, os\n"
        "from anxin.logs import configure\n"
        "configure('json')\n"
        "logging.getLogger('anxin.server').critical('this node no longer leads (fenced)')\n"
        "logging.shutdown()\n"
        "os._exit(75)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 75
    assert json.loads(done.stderr.strip().splitlines()[-1])["message"] == "this node no longer leads (fenced)"


@pytest.mark.process
def test_the_runbooks_jq_lines_read_a_real_servers_output_with_its_plain_lines(tmp_path: Path) -> None:
    """docs/operations.md's ``journalctl ... | jq`` lines, as written, over what a service's journal holds: the
    server's JSON lines and the plain ``anxin: console at`` line of every start (stdout and stderr both)."""
    jq = require_program("jq")
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    filters = re.findall(r"journalctl -u anxin -o cat \| jq (-\w+) '(.+)'$", doc, re.MULTILINE)
    assert len(filters) == 2
    logs = []
    for _ in range(2):  # two starts: a plain line in the middle of the JSON ones
        server = ServerProcess(tmp_path / "data", ANXIN_LOG_FORMAT="json").start()
        server.stop()
        logs.append(server.log.read_text(encoding="utf-8"))
    output = "".join(logs)
    assert output.count("anxin: console at") == 2
    ready = sum(1 for line in output.splitlines() if "anxin ready:" in line)
    wanted = filters[0][1].replace('.incident_id == "INC-7"', '.logger == "anxin.server"')
    found = subprocess.run([jq, filters[0][0], wanted], input=output, capture_output=True, text=True, check=False)
    assert found.returncode == 0, found.stderr
    assert sum(1 for line in found.stdout.splitlines() if "anxin ready:" in line) == ready >= 2
    errors = subprocess.run([jq, *filters[1]], input=output, capture_output=True, text=True, check=False)
    assert errors.returncode == 0 and errors.stderr == "", errors.stderr


def test_stopping_while_the_reader_stalls_leaves_the_writer_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """At exit a writer stuck on a reader that stopped reading is left behind: the process still goes."""
    stalled = _Stalled()
    monkeypatch.setattr(sys, "stderr", stalled)
    configure("json")
    try:
        logging.getLogger("anxin.record").warning("the last line")
        stopped = threading.Event()
        threading.Thread(target=lambda: (stop(), stopped.set()), daemon=True).start()
        assert stopped.wait(60), "stop() waited for a reader that stopped reading"
    finally:
        stalled.released.set()
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)
