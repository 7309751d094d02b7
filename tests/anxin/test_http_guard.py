"""The HTTP side's own guards in a real server: a connection that never speaks is closed, a real client is served."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.process import ServerProcess

pytestmark = pytest.mark.process


def test_a_silent_http_connection_is_closed_and_a_speaking_one_is_served(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", ANXIN_HTTP_FIRST_BYTE_S="1").start()
    try:
        silent = socket.create_connection(("127.0.0.1", server.port))
        silent.settimeout(10)
        began = time.monotonic()
        assert silent.recv(1024) == b""  # closed by the server, with nothing said
        took = time.monotonic() - began
        silent.close()
        assert 0.5 < took < 5, took
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    finally:
        server.stop()
