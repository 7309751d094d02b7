"""A real ``anxin serve`` process for the tests: started on a free port, waited for, killed for real."""

from __future__ import annotations

import os
import resource
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx

from tests.conftest import free_port

ADMIN_PASSWORD = "test-admin-pw"
ROOT = Path(__file__).resolve().parents[1]


class ServerExited(RuntimeError):
    """The server process ended while it was being started (its log's tail is the message)."""

    def __init__(self, code: int, tail: str) -> None:
        super().__init__(f"server exited with {code}:\n{tail}")
        self.code = code
        self.tail = tail


class ServerProcess:
    #: the descriptor limit (soft and hard) the server is started under; None: the test process's own
    nofile: int | None = None

    def __init__(self, data: Path, **env: str) -> None:
        self.data = data
        self.port = free_port()
        devices_off = {"ANXIN_DC09_PORT": "off", "ANXIN_WATCH_PORT": "off", "ANXIN_GT06_PORT": "off"}
        self.env = {**os.environ, "ANXIN_ADMIN_PASSWORD": ADMIN_PASSWORD, **devices_off, **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / f"server-{self.port}.log"

    #: how the server's own health check is reached: plain HTTP (a TLS server: HTTPS, with its certificate)
    scheme = "http"
    trust: ssl.SSLContext | bool = True

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"{self.scheme.replace('http', 'ws')}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Self:
        """Start and wait for ``/healthz``. A free port taken meanwhile (thousands of test connections share the
        ephemeral range free ports come from) is met by another free port, twice at most."""
        for attempt in range(3):
            try:
                return self._start(timeout)
            except ServerExited as exited:
                if attempt == 2 or f":{self.port} " not in exited.tail or "in use" not in exited.tail:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "anxin", "serve", "--data", str(self.data), "--http-port", str(self.port)]

    def _start(self, timeout: float) -> Self:
        command = self.command()
        limit = self.nofile
        lower = None if limit is None else (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT, preexec_fn=lower
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerExited(self.proc.returncode, self.log.read_text(errors="replace")[-4000:])
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1, verify=self.trust).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is flushed on the way out."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class ClockedServer(ServerProcess):
    """The same server under a clock the test moves (tests/clocked.py): the system's plus ``shift`` seconds."""

    def __init__(self, data: Path, **env: str) -> None:
        super().__init__(data, **env)
        self.offset_file = data.parent / "clock-offset"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "tests.clocked", "--data", str(self.data), "--http-port", str(self.port),
                "--offset-file", str(self.offset_file)]  # fmt: skip

    def shift(self, seconds: float) -> None:
        """From now on the server's clock (and its Date header) is the system's plus ``seconds``."""
        self.offset_file.write_text(f"{seconds}\n", encoding="utf-8")


def anxin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anxin", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def import_city(data: Path, files: dict[str, Path]) -> Path:
    """``anxin import`` of a generated city's files (elders, devices, responders) into ``data``, as an admin
    would; the data folder."""
    done = anxin("import", "--data", str(data), *(f"--{kind}={path}" for kind, path in files.items()))
    assert done.returncode == 0, done.stdout + done.stderr
    return data
