"""The period report over HTTP (console.reports) on a real SQLite data folder: the JSON's shape, the CSV read
back with the csv module into the JSON's figures, a street's supervisor seeing only their street (in the areas
and in the totals), drills left out unless asked, and every bad parameter answered 422 with its code."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from dispatch.reportcsv import flat
from tests.conftest import settings_for
from tests.console.streets import STREET_A, STREET_B, person, seed_two_streets
from tests.console.test_api import auth, token

ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data")
    asyncio.run(seed_two_streets(settings))
    with TestClient(app_for(settings)) as test_client:
        admin = token(test_client)
        for elder_id, drill in (("ea", False), ("eb", False), ("eb", True)):
            body = {"elder_id": elder_id, "alarm_type": "sos", "drill": drill}
            raised = test_client.post("/api/alarms", json=body, headers=auth(admin))
            assert raised.status_code == 201, raised.text
            if elder_id == "ea":
                done = test_client.post(f"/api/incidents/{raised.json()['incident_id']}/acknowledge",
                                        headers=auth(admin))  # fmt: skip
                assert done.status_code == 200, done.text
        yield test_client


def _today() -> tuple[str, str]:
    day = datetime.now(ZONE).date()
    return day.isoformat(), (day + timedelta(days=1)).isoformat()


def _get(client: TestClient, who: str, query: str, path: str = "/api/reports") -> Any:
    response = client.get(f"{path}?{query}", headers=auth(who))
    assert response.status_code == 200, response.text
    return response.json() if path == "/api/reports" else response


def test_the_report_counts_both_streets_for_the_centre_and_leaves_the_drill_out(client: TestClient) -> None:
    start, end = _today()
    report = _get(client, token(client), f"start={start}&end={end}&by=street")
    assert report["schema"] == 1 and report["by"] == "street" and report["drill_included"] is False
    assert report["period"]["start_day"] == start and report["period"]["timezone"] == "Asia/Shanghai"
    assert [a["area"] for a in report["areas"]] == sorted([STREET_A, STREET_B])
    totals = report["totals"]
    assert (totals["alarms"], totals["answered"], totals["share_within_60s"]) == (2, 1, 0.5)
    assert totals["outcomes"]["open"] == 2
    assert report["alarm_types"][0]["alarm_type"] == "sos" and report["sources"][0]["source"] == "api"
    assert report["days"] == [{"day": start, "alarms": 2, "answered_within_60s": 1, "calls": 0}]
    with_drill = _get(client, token(client), f"start={start}&end={end}&by=street&drill=true")
    assert with_drill["totals"]["alarms"] == 3 and with_drill["drill_included"] is True


def test_a_street_supervisor_sees_their_street_only(client: TestClient) -> None:
    admin = token(client)
    boss_a = person(client, admin, "boss_a", "supervisor", [STREET_A])
    start, end = _today()
    report = _get(client, boss_a, f"start={start}&end={end}&by=community")
    assert [a["area"] for a in report["areas"]] == [f"{STREET_A}/蓝田社区"]
    assert report["totals"]["alarms"] == 1 and report["totals"]["answered"] == 1
    assert STREET_B not in str(report)
    operator = person(client, admin, "op_a", "operator", [STREET_A])
    assert client.get("/api/reports", headers=auth(operator)).status_code == 403


def test_the_csv_reads_back_into_the_json(client: TestClient) -> None:
    admin = token(client)
    start, end = _today()
    query = f"start={start}&end={end}&by=community"
    report = _get(client, admin, query)
    response = _get(client, admin, query, "/api/reports.csv")
    assert response.headers["content-type"].startswith("text/csv")
    last = date.fromisoformat(end) - timedelta(days=1)  # named by the last day in it, as the workbook and the PDF
    named = f'attachment; filename="anxin-report-{start}_{last.isoformat()}-community.csv"'
    assert response.headers["content-disposition"] == named
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8").removeprefix("\ufeff"))))
    by_key = {(r["section"], r["group"]): r for r in rows}

    def same(row: dict[str, str], figures: dict[str, Any]) -> None:
        for column, value in flat(figures):
            cell = row[column]
            assert (None if cell == "" else float(cell)) == value, column

    same(by_key[("totals", "")], report["totals"])
    for section, key in (("areas", "area"), ("alarm_types", "alarm_type"), ("sources", "source")):
        for group in report[section]:
            same(by_key[(section, group[key])], group["figures"])
    for day in report["days"]:
        same(by_key[("days", day["day"])], {k: v for k, v in day.items() if k != "day"})
    assert len(rows) == 1 + len(report["areas"]) + 2 + len(report["days"]) + len(report["responders"])


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("period=2026-13", "report_period"),
        ("period=November", "report_period"),
        ("period=0000-01", "report_period"),  # no year 0: not a 500
        ("period=9999-12", "report_period"),  # its end would be in the year 10000
        ("period=2026-11&start=2026-11-01&end=2026-11-02", "report_period"),
        ("start=2026-11-05&end=2026-11-01", "report_dates"),
        ("start=2026-11-05&end=2026-11-05", "report_dates"),
        ("start=2026-11-05", "report_dates"),
        ("start=2026-02-30&end=2026-03-02", "report_dates"),
        ("start=2025-01-01&end=2026-01-03", "report_range_long"),
        ("period=2026-11&by=province", "report_by"),
        ("period=0000-01", "report_period"),  # no year 0, and no day after 9999-12: a date holds neither
        ("period=9999-12", "report_period"),
        ("period=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-11", "report_period"),  # full-width digits
        ("period=2026-11%0A", "report_period"),  # a newline after the month
        ("start=2026-11-01%0A&end=2026-11-03", "report_dates"),
    ],
)
def test_bad_parameters_answer_422_with_a_code(client: TestClient, query: str, code: str) -> None:
    for path in ("/api/reports", "/api/reports.csv"):
        response = client.get(f"{path}?{query}", headers=auth(token(client)))
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code
