"""The period report's files over HTTP (console.reports): ``/api/reports.xlsx`` and ``/api/reports.pdf`` on a
real SQLite data folder hold what ``/api/reports`` answers, for the reader's scope; they are named after the
period; a bad parameter is refused as the JSON's is; a PDF beyond those made at once is told to wait."""

from __future__ import annotations

import asyncio
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from console import pdfwork, reports
from tests.conftest import require_program, settings_for
from tests.console.streets import STREET_A, person, seed_two_streets
from tests.console.test_api import auth, token


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data")
    asyncio.run(seed_two_streets(settings))
    with TestClient(app_for(settings)) as test_client:
        admin = token(test_client)
        for elder_id in ("ea", "eb"):
            raised = test_client.post("/api/alarms", json={"elder_id": elder_id, "alarm_type": "sos"},
                                      headers=auth(admin))  # fmt: skip
            assert raised.status_code == 201, raised.text
        yield test_client


def _xlsx(client: TestClient, who: str, query: str = "by=street") -> openpyxl.Workbook:
    response = client.get(f"/api/reports.xlsx?{query}", headers=auth(who))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    return openpyxl.load_workbook(io.BytesIO(response.content))


def test_the_workbook_holds_what_the_json_answers(client: TestClient) -> None:
    admin = token(client)
    report = client.get("/api/reports?by=street", headers=auth(admin)).json()
    book = _xlsx(client, admin)
    assert book.sheetnames == ["汇总", "分区", "类型", "来源", "每日", "人员"]
    areas = [[cell for cell in row[:2]] for row in book["分区"].iter_rows(min_row=2, values_only=True)]
    assert areas == [[" ".join(a["area"].split("/")), a["figures"]["alarms"]] for a in report["areas"]]
    assert areas == [["龙文区 朝阳街道", 1], ["龙文区 蓝田街道", 1]]
    assert book["汇总"]["A3"].value.startswith("范围：全部辖区")
    assert len(list(book["每日"].iter_rows(min_row=2))) == len(report["days"])


def test_the_workbook_speaks_english_when_asked(client: TestClient) -> None:
    assert _xlsx(client, token(client), "by=street&lang=en").sheetnames[0] == "Summary"


def test_a_street_supervisor_gets_only_their_street(client: TestClient) -> None:
    supervisor = person(client, token(client), "sup_a", "supervisor", [STREET_A])
    book = _xlsx(client, supervisor)
    assert [row[:2] for row in book["分区"].iter_rows(min_row=2, values_only=True)] == [("龙文区 蓝田街道", 1)]
    assert book["汇总"]["B8"].value == 1  # the totals count street A's alarm only
    assert "蓝田街道" in book["汇总"]["A3"].value


def test_the_files_are_named_after_the_period(client: TestClient) -> None:
    admin = token(client)
    month = client.get("/api/reports.xlsx?period=2026-11", headers=auth(admin))
    assert month.headers["content-disposition"] == 'attachment; filename="anxin-report-2026-11-community.xlsx"'
    days = client.get("/api/reports.pdf?start=2026-11-03&end=2026-11-10&by=street", headers=auth(admin))
    assert days.headers["content-disposition"] == (  # its last day, as its title says "2026-11-03 至 2026-11-09"
        'attachment; filename="anxin-report-2026-11-03_2026-11-09-street.pdf"'
    )
    table = client.get("/api/reports.csv?start=2026-11-03&end=2026-11-10&by=street", headers=auth(admin))
    assert table.headers["content-disposition"] == (
        'attachment; filename="anxin-report-2026-11-03_2026-11-09-street.csv"'
    )


@pytest.mark.parametrize("path", ["/api/reports.xlsx", "/api/reports.pdf"])
def test_a_bad_parameter_is_refused_with_its_code(client: TestClient, path: str) -> None:
    refused = client.get(f"{path}?period=2026-13", headers=auth(token(client)))
    assert refused.status_code == 422 and refused.json()["code"] == "report_period"


def test_the_pdf_is_in_chinese_with_the_areas(client: TestClient, tmp_path: Path) -> None:
    pdftotext = require_program("pdftotext")
    response = client.get("/api/reports.pdf?by=street", headers=auth(token(client)))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert response.headers["content-type"] == "application/pdf"
    text = subprocess.run([pdftotext, "-layout", "-", "-"], input=response.content, capture_output=True,
                          check=True).stdout.decode()  # fmt: skip
    assert "安心 报警处置月报" in text and "龙文区 朝阳街道" in text and "范围：全部辖区" in text


@pytest.mark.parametrize("path", ["/api/reports.xlsx", "/api/reports.pdf"])
def test_a_file_beyond_those_made_at_once_is_told_to_wait(client: TestClient, path: str) -> None:
    """Made in the document workers (console.pdfwork), never on the event loop: beyond the slots, 429."""
    portal = client.portal  # type: ignore[attr-defined]
    for _ in range(pdfwork.PDF_AT_ONCE):
        portal.call(pdfwork.SLOTS.acquire)
    try:
        busy = client.get(path, headers=auth(token(client)))
        assert busy.status_code == 429 and busy.json()["code"] == "pdf_busy" and busy.headers["Retry-After"] == "5"
    finally:
        for _ in range(pdfwork.PDF_AT_ONCE):
            pdfwork.SLOTS.release()


@pytest.mark.parametrize("path", ["/api/reports", "/api/reports.csv", "/api/reports.xlsx", "/api/reports.pdf"])
def test_a_report_beyond_those_folding_at_once_is_told_to_wait(client: TestClient, path: str) -> None:
    """Folded on the loop a slice at a time (console.reports): beyond the folds at once, 429, never queued."""
    portal = client.portal  # type: ignore[attr-defined]
    for _ in range(reports.FOLDS_AT_ONCE):
        portal.call(reports.FOLDS.acquire)
    try:
        busy = client.get(path, headers=auth(token(client)))
        assert busy.status_code == 429 and busy.json()["code"] == "report_busy" and busy.headers["Retry-After"] == "5"
    finally:
        for _ in range(reports.FOLDS_AT_ONCE):
            reports.FOLDS.release()
    assert client.get(path, headers=auth(token(client))).status_code == 200
