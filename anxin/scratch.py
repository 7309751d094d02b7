"""Throwaway PostgreSQL and Redis servers in a scratch folder, for ``anxin cluster`` and the tests.

What it owns
    :func:`postgres` and :func:`redis` start a server of the Debian packages (``postgresql``,
    ``redis-server``) on a free loopback port with its files under a given folder, wait until it answers, and
    stop it when the context ends. :func:`missing` says which of the two cannot be started here, so tests can
    skip (or fail in CI) with the reason.

Rules
    1. Loopback only, files only in the folder given; nothing of the machine's own servers is touched.
    2. PostgreSQL refuses to run as root: as root, the data folder is given to the ``postgres`` account (or
       ``nobody``) and the server runs as it; when that account cannot reach the folder given (pytest's folders
       are root's alone), its files go to a folder of their own under the system's temporary folder, removed
       at the end.
    3. Durability as in production: PostgreSQL keeps ``fsync`` and ``synchronous_commit`` on; Redis keeps no
       files (the cluster keeps nothing in Redis that a restart may not lose, docs/cluster.md).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

START_WAIT_S = 30.0


@dataclass
class Scratch:
    """A started server: its process, port and address."""

    process: subprocess.Popen[bytes]
    port: int
    url: str
    folder: Path

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, sig)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (Debian keeps them per version), or None."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


def missing() -> list[str]:
    """The servers this machine cannot start (their Debian packages): empty when both can."""
    absent = []
    if postgres_bin() is None:
        absent.append("postgresql")
    if shutil.which("redis-server") is None:
        absent.append("redis-server")
    return absent


def _account() -> tuple[int, int] | None:
    """Rule 2: the uid and gid PostgreSQL runs as when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and no postgres or nobody account to run PostgreSQL as")


@contextlib.contextmanager
def postgres(folder: Path, port: int | None = None, *, database: str = "anxin") -> Iterator[Scratch]:
    """A PostgreSQL server with one database, ``postgresql://anxin@127.0.0.1:PORT/anxin`` (trust on loopback)."""
    binaries = postgres_bin()
    if binaries is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    port = port or free_port()
    account = _account()
    folder.mkdir(parents=True, exist_ok=True)
    own = folder
    if account is not None and not _reachable(folder, account[0]):
        own = Path(tempfile.mkdtemp(prefix="anxin-pg-"))
    data = own / "pg"
    if account is not None:
        os.chown(own, *account)
    fresh = not (data / "PG_VERSION").exists()
    user = {"user": account[0], "group": account[1]} if account else {}
    if fresh:
        subprocess.run(
            [str(binaries / "initdb"), "-D", str(data), "-U", "anxin", "--auth=trust", "-E", "UTF8", "--no-locale"],
            check=True, capture_output=True, **user,  # type: ignore[call-overload]
        )  # fmt: skip
    log = (folder / "postgres.log").open("ab")
    command = [
        str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(own), "-c",
        "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "shared_buffers=64MB",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, **user)  # type: ignore[call-overload]
    log.close()
    try:
        _wait_for(port, process, "PostgreSQL", folder / "postgres.log")
        if fresh:
            _psql(binaries, port, own, f"CREATE DATABASE {database}", user)
        yield Scratch(process, port, f"postgresql://anxin@127.0.0.1:{port}/{database}", folder)
    finally:
        _stop(process, signal.SIGINT)  # "fast" shutdown
        if own != folder:
            shutil.rmtree(own, ignore_errors=True)


def _reachable(folder: Path, uid: int) -> bool:
    """Whether the account ``uid`` may pass through every folder above ``folder`` (rule 2)."""
    for parent in [folder, *folder.resolve().parents]:
        mode = parent.stat()
        if not (mode.st_mode & stat.S_IXOTH or (mode.st_uid == uid and mode.st_mode & stat.S_IXUSR)):
            return False
    return True


@contextlib.contextmanager
def redis(folder: Path, port: int | None = None) -> Iterator[Scratch]:
    """A Redis server keeping no files (rule 3), ``redis://127.0.0.1:PORT/0``."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
               str(folder), "--logfile", str(folder / "redis.log")]  # fmt: skip
    server = Scratch(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port,
                     f"redis://127.0.0.1:{port}/0", folder)  # fmt: skip
    try:
        _wait_for(port, server.process, "Redis", folder / "redis.log")
        yield server
    finally:
        _stop(server.process, signal.SIGTERM)  # the one running now: restart() may have replaced it


def restart(server: Scratch) -> subprocess.Popen[bytes]:
    """Start a stopped Redis again on the same port (its data gone: rule 3)."""
    command = [str(arg) for arg in server.process.args]  # type: ignore[union-attr]
    server.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(server.port, server.process, "Redis", server.folder / "redis.log")
    return server.process


def _psql(binaries: Path, port: int, folder: Path, sql: str, user: dict[str, int]) -> None:
    psql = binaries / "psql" if (binaries / "psql").exists() else Path(shutil.which("psql") or "psql")
    subprocess.run(
        [str(psql), "-h", str(folder), "-p", str(port), "-U", "anxin", "-d", "postgres", "-c", sql],
        check=True, capture_output=True, **user,  # type: ignore[call-overload]
    )  # fmt: skip


def _wait_for(port: int, process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{name} exited at start (status {process.returncode}):\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            if name != "PostgreSQL" or _pg_ready(port):
                return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer on port {port} within {START_WAIT_S:g} s")


def _pg_ready(port: int) -> bool:
    binaries = postgres_bin()
    ready = binaries / "pg_isready" if binaries else None
    if ready is None or not ready.exists():
        return True
    return subprocess.run([str(ready), "-h", "127.0.0.1", "-p", str(port)], capture_output=True).returncode == 0


def _stop(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
