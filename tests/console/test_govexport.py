"""``GET /api/export/government`` (console.govexport) over the known November journal of
tests/dispatch/test_govexport.py: the checked-in document through HTTP, its zip, who may ask, and the read on
record."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from console import reports
from dispatch.clock import ManualClock
from dispatch.govexport import csv_names
from tests.conftest import settings_for
from tests.console.streets import person
from tests.console.test_api import auth, token
from tests.dispatch.test_govexport import DATA, GOLDEN, LANTIAN, local, open_city, write_november

PATH = "/api/export/government"


async def _november(data: Path, clock: ManualClock) -> None:
    _, core = await open_city(data, clock)
    try:
        await write_november(core, clock)
    finally:
        await core.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    data = tmp_path_factory.mktemp("govexport") / "data"
    clock = ManualClock()
    asyncio.run(_november(data, clock))
    settings = settings_for(data, centre_name="蓝田社区居家养老服务中心", read_window_s=0)
    clock.set(local("2026-12-02 09:00"))
    with TestClient(app_for(settings, clock)) as test_client:
        yield test_client, data


def _reads(data: Path) -> list[dict[str, object]]:
    db = sqlite3.connect(data / "anxin.sqlite3")
    try:
        rows = db.execute("SELECT actor, payload FROM journal WHERE kind = 'records.read' ORDER BY seq").fetchall()
    finally:
        db.close()
    return [{"actor": actor, **json.loads(body)} for actor, body in rows if "export.government" in body]


def test_an_admin_gets_the_checked_in_document(client: tuple[TestClient, Path]) -> None:
    http, data = client
    answer = http.get(PATH, params={"period": "2026-11"}, headers=auth(token(http)))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert 'filename="gov-export-2026-11.json"' in answer.headers["content-disposition"]
    assert answer.content.decode("utf-8") == GOLDEN.read_text(encoding="utf-8")
    (read,) = _reads(data)[-1:]
    assert read["actor"] == "admin:admin" and read["filter"] == "2026-11" and read["count"] == 3 + 7 + 4
    assert sorted(read["elder_ids"]) == ["e1", "e2", "e3", "e4"]  # e4: the technical incident names them


def test_the_csv_format_is_a_zip_of_the_checked_in_files(client: tuple[TestClient, Path]) -> None:
    http, _ = client
    answer = http.get(PATH, params={"period": "2026-11", "format": "csv"}, headers=auth(token(http)))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    document = json.loads(GOLDEN.read_text(encoding="utf-8"))
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        for name in csv_names(document).values():
            assert archive.read(name) == (DATA / name).read_bytes(), name


def test_a_key_granted_export_may_ask_and_others_may_not(client: tuple[TestClient, Path]) -> None:
    http, _ = client
    admin = token(http)
    keys = {}
    for grant in ("export", "import"):
        body = {"username": f"platform_{grant}", "name": "平台", "role": "service", "grants": [grant], "scopes": ["*"]}
        assert http.post("/api/accounts", json=body, headers=auth(admin)).status_code == 201
        issued = http.post(f"/api/accounts/platform_{grant}/keys", json={"label": "gov"}, headers=auth(admin))
        keys[grant] = issued.json()["key"]
    assert http.get(PATH, params={"period": "2026-11"}, headers=auth(keys["export"])).status_code == 200
    assert http.get(PATH, params={"period": "2026-11"}, headers=auth(keys["import"])).status_code == 403
    supervisor = person(http, admin, "sup_gov", "supervisor", ["*"])
    assert http.get(PATH, params={"period": "2026-11"}, headers=auth(supervisor)).status_code == 403


def test_an_admin_of_one_street_is_refused_with_a_code(client: tuple[TestClient, Path]) -> None:
    http, data = client
    before = len(_reads(data))
    street_admin = person(http, token(http), "adm_lantian", "admin", [LANTIAN.rsplit("/", 1)[0]])
    refused = http.get(PATH, params={"period": "2026-11"}, headers=auth(street_admin))
    assert refused.status_code == 403 and refused.json()["code"] == "out_of_scope", refused.text
    assert len(_reads(data)) == before  # refused: nothing read, nothing on record


@pytest.mark.parametrize(
    ("query", "code"),
    [({"period": "2026-13"}, "export_period"), ({"period": "2026-11", "format": "xml"}, "export_format"),
     ({"period": "9999-12"}, "export_period")],  # the calendar's last month: was a 500 (OverflowError)
)  # fmt: skip
def test_a_bad_period_or_format_is_422_with_its_code(client: tuple[TestClient, Path], query: dict[str, str],
                                                     code: str) -> None:  # fmt: skip
    http, _ = client
    refused = http.get(PATH, params=query, headers=auth(token(http)))
    assert refused.status_code == 422 and refused.json()["code"] == code, refused.text


def test_an_export_beyond_the_folds_at_once_is_told_to_wait(client: tuple[TestClient, Path]) -> None:
    """The export folds in the period reports' slots (console.reports): two reports or exports at once, then 429
    ``report_busy``, never queued, and nothing on record."""
    http, data = client
    portal = http.portal  # type: ignore[attr-defined]
    before = len(_reads(data))
    for _ in range(reports.FOLDS_AT_ONCE):
        portal.call(reports.FOLDS.acquire)
    try:
        busy = http.get(PATH, params={"period": "2026-11"}, headers=auth(token(http)))
        assert busy.status_code == 429 and busy.json()["code"] == "report_busy" and busy.headers["Retry-After"] == "5"
        assert http.get("/api/reports", headers=auth(token(http))).status_code == 429
    finally:
        for _ in range(reports.FOLDS_AT_ONCE):
            reports.FOLDS.release()
    assert len(_reads(data)) == before
    assert http.get(PATH, params={"period": "2026-11"}, headers=auth(token(http))).status_code == 200
