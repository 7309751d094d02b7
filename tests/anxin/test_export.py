"""``anxin export`` offline on a real data folder (the known November journal of tests/dispatch/test_govexport.py),
as a real process: the checked-in document and CSV files, the read on record, and what it says when a server holds
the folder and no key is given."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import zipfile
from pathlib import Path

import httpx
import pytest

from dispatch.clock import ManualClock
from dispatch.core import DataLock
from dispatch.govexport import csv_names
from tests.dispatch.test_govexport import DATA, GOLDEN, open_city, write_november
from tests.process import ADMIN_PASSWORD, ServerProcess, anxin

ROOT = Path(__file__).resolve().parents[2]
ENV = {"ANXIN_CENTRE_NAME": "蓝田社区居家养老服务中心", "ANXIN_API_KEY": "", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export") / "data"

    async def november() -> None:
        clock = ManualClock()
        _, core = await open_city(folder, clock)
        try:
            await write_november(core, clock)
        finally:
            await core.close()

    asyncio.run(november())
    return folder


def _without_time(document: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in document.items() if key != "generated_at"}


def test_the_json_export_of_a_data_folder_is_the_checked_in_one(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "nov.json"
    done = anxin("export", "--data", str(data), "--period", "2026-11", "--out", str(out), env=ENV)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out} (3 elders, 7 incidents, 4 services" in done.stdout
    assert out.stat().st_mode & 0o777 == 0o600  # it names the elders served: their owner's alone, as a backup is
    written = json.loads(out.read_text(encoding="utf-8"))
    assert _without_time(written) == _without_time(json.loads(GOLDEN.read_text(encoding="utf-8")))
    db = sqlite3.connect(data / "anxin.sqlite3")
    try:
        (actor, payload), *_ = db.execute(
            "SELECT actor, payload FROM journal WHERE kind = 'records.read' ORDER BY seq DESC"
        ).fetchall()
    finally:
        db.close()
    read = json.loads(payload)
    assert actor.startswith("admin:") and read["what"] == "export.government" and read["filter"] == "2026-11"


def test_the_csv_export_is_a_zip_of_the_checked_in_files(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "gov-export-2026-11.zip"
    out.write_bytes(b"an older file, readable by all")
    out.chmod(0o644)
    done = anxin("export", "--data", str(data), "--period", "2026-11", "--format", "csv", "--out", str(out), env=ENV)
    assert done.returncode == 0, done.stderr
    document = json.loads(GOLDEN.read_text(encoding="utf-8"))
    with zipfile.ZipFile(io.BytesIO((tmp_path / "gov-export-2026-11.zip").read_bytes())) as archive:
        for name in csv_names(document).values():
            assert archive.read(name) == (DATA / name).read_bytes(), name
    assert out.stat().st_mode & 0o777 == 0o600  # a file written over is made private too


def test_a_bad_period_is_one_line_and_exit_2(data: Path, tmp_path: Path) -> None:
    done = anxin("export", "--data", str(data), "--period", "2026-13", "--out", str(tmp_path / "x.json"), env=ENV)
    assert done.returncode == 2 and done.stderr.startswith("anxin: a period reads YYYY-MM"), done.stderr
    assert not (tmp_path / "x.json").exists()


def test_a_folder_a_server_holds_needs_a_key(data: Path, tmp_path: Path) -> None:
    lock = DataLock(data)  # as a running server holds it
    lock.acquire()
    try:
        done = anxin("export", "--data", str(data), "--period", "2026-11", "--out", str(tmp_path / "x.json"), env=ENV)
    finally:
        lock.release()
    assert done.returncode == 2 and "set ANXIN_API_KEY to a key of a service account granted export" in done.stderr


def test_through_the_running_server_with_an_export_key(data: Path, tmp_path: Path) -> None:
    """A server holds the folder: ``anxin export`` asks its API with the key, and writes what it answers."""
    server = ServerProcess(data, ANXIN_CENTRE_NAME=ENV["ANXIN_CENTRE_NAME"], PYTHONPATH=str(ROOT)).start()
    try:
        login = httpx.post(f"{server.url}/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        body = {"username": "platform", "name": "民政平台", "role": "service", "grants": ["export"], "scopes": ["*"]}
        assert httpx.post(f"{server.url}/api/accounts", json=body, headers=admin).status_code == 201
        issued = httpx.post(f"{server.url}/api/accounts/platform/keys", json={"label": "gov"}, headers=admin)
        key = issued.json()["key"]
        out = tmp_path / "nov.json"
        done = anxin("export", "--data", str(data), "--period", "2026-11", "--out", str(out),
                     env={**ENV, "ANXIN_API_KEY": key})  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"through the server at {server.url}" in done.stdout
        written = json.loads(out.read_text(encoding="utf-8"))
        assert _without_time(written) == _without_time(json.loads(GOLDEN.read_text(encoding="utf-8")))
        bare = anxin("export", "--data", str(data), "--period", "2026-11", "--out", str(out),
                     env={**ENV, "ANXIN_API_KEY": "axk_not-a-key"})  # fmt: skip
        assert bare.returncode == 2 and "refused the export (401" in bare.stderr, bare.stderr
    finally:
        server.stop()
