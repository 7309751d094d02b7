"""Start-up problems are one line on stderr naming the problem and the setting, exit code 2, no traceback, and no
console address printed (the address is printed only once the server listens).

The tests run as root, where a folder's mode does not stop writes: the read-only folder is a read-only bind
mount (skipped where mounting is not allowed), and a data path under a file fails for root too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.process import anxin

DEVICES_OFF = ("--dc09-port", "off", "--watch-port", "off", "--gt06-port", "off")


def refused(*args: str, naming: str) -> str:
    """Run ``anxin serve ARGS``: exit 2, one ``anxin:`` line naming ``naming``, no traceback, no address."""
    done = anxin("serve", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("anxin:")]
    assert len(lines) == 1, done.stderr
    assert naming in lines[0], lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert "console at" not in done.stdout
    return lines[0]


def test_a_data_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    refused("--data", str(tmp_path / "data"), "--http-port", "0", *DEVICES_OFF, naming="setting data")


def test_a_data_path_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    line = refused("--data", str(tmp_path / "file" / "data"), "--http-port", "0", *DEVICES_OFF, naming="--data")
    assert "Not a directory" in line


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    source, mount = tmp_path / "source", tmp_path / "ro"
    source.mkdir()
    mount.mkdir()
    if subprocess.run(["mount", "--bind", str(source), str(mount)], capture_output=True).returncode != 0:
        pytest.skip("bind mounts are not allowed here")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], capture_output=True).returncode != 0:
            pytest.skip("a bind mount cannot be made read-only here")
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_read_only_data_folder(read_only: Path) -> None:
    with pytest.raises(OSError):  # root cannot write here either: the folder is truly read-only
        (read_only / "probe").write_text("x")
    line = refused("--data", str(read_only), "--http-port", "0", *DEVICES_OFF, naming="setting data")
    assert "Read-only file system" in line
    refused("--data", str(read_only / "data"), "--http-port", "0", *DEVICES_OFF, naming="setting data")


@pytest.fixture
def taken_port() -> Iterator[int]:
    port = free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    yield port
    holder.close()


def test_the_http_port_in_use(tmp_path: Path, taken_port: int) -> None:
    line = refused("--data", str(tmp_path / "d"), "--http-port", str(taken_port), *DEVICES_OFF, naming="http_port")
    assert "already in use" in line


def test_a_device_port_in_use(tmp_path: Path, taken_port: int) -> None:
    ports = ("--dc09-port", str(taken_port), "--watch-port", "off", "--gt06-port", "off")
    refused("--data", str(tmp_path / "d"), "--http-port", "0", *ports, naming="device port is already in use")


@pytest.mark.parametrize(
    ("text", "naming"),
    [
        ("http_port = 99999\n", "bad setting http_port"),
        ("no_such_setting = 1\n", "bad setting no_such_setting"),
        ("http_port = \n", "not valid TOML"),
    ],
)
def test_a_bad_settings_file(tmp_path: Path, text: str, naming: str) -> None:
    config = tmp_path / "anxin.toml"
    config.write_text(text)
    refused("--data", str(tmp_path / "d"), "--config", str(config), *DEVICES_OFF, naming=naming)


def test_a_missing_settings_file(tmp_path: Path) -> None:
    refused("--data", str(tmp_path / "d"), "--config", str(tmp_path / "none.toml"), naming="--config")


def test_the_address_is_printed_once_the_server_listens(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "anxin", "serve", "--data", str(tmp_path / "d"), "--http-port", str(port)]
    env = {**os.environ, "ANXIN_ADMIN_PASSWORD": "test-admin-pw"}
    proc = subprocess.Popen([*command, *DEVICES_OFF], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:  # the server ends only when stopped: the line comes, or the test times out
            if b"console at" in raw:
                assert raw.decode().strip() == f"anxin: console at http://127.0.0.1:{port}/console"
                break
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200  # at once, no retry
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
