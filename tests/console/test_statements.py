"""Vouchers and monthly statements through the app (Starlette's TestClient) on a real SQLite data folder: an
elder's balance after deliveries, statements in JSON and in CSV (bytes parsed back with the csv module) that add
up to the delivered prices, bad months and kinds, and scope (a street's supervisor sees its street only)."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from tests.conftest import elder, seed, settings_for
from tests.console.streets import STREET_A, STREET_B, person, seed_two_streets
from tests.console.test_api import auth, token

START = 1_900_000_000.0
WINDOW = {"start": START, "end": START + 3600}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data", voucher_low_cost_fen=2000)
    asyncio.run(seed_two_streets(settings))
    low = elder("el", name="李低偿", entitlement="low_cost", community=f"{STREET_A}/蓝田社区")
    asyncio.run(seed(settings, elders=[low]))
    with TestClient(app_for(settings)) as test_client:
        admin = token(test_client)
        roster = {"roster": [{"responder_id": "ca", "on": True}, {"responder_id": "cb", "on": True}]}
        assert test_client.post("/api/responders/duty", json=roster, headers=auth(admin)).status_code == 200
        yield test_client


def _deliver(client: TestClient, who: str, elder_id: str, responder_id: str, item_id: str = "meal_delivery") -> str:
    """An order delivered by staff on the caregiver's behalf: its id."""
    made = client.post("/api/service-orders", json={"elder_id": elder_id, "item_id": item_id, **WINDOW},
                       headers=auth(who))  # fmt: skip
    assert made.status_code == 201, made.text
    oid: str = made.json()["order_id"]
    for action, body in (("schedule", WINDOW), ("assign", {"responder_id": responder_id}), ("start", {}),
                         ("deliver", {"note": "送到"})):  # fmt: skip
        moved = client.post(f"/api/service-orders/{oid}/{action}", json=body, headers=auth(who))
        assert moved.status_code == 200, moved.text
    return oid


def _city(client: TestClient) -> tuple[str, str, list[int]]:
    """Deliveries in both streets: the admin's token, the month, and every delivered price in fen."""
    admin = token(client)
    prices = []
    for elder_id, responder_id, item in (("el", "ca", "meal_delivery"), ("el", "ca", "meal_delivery"),
                                         ("el", "ca", "meal_delivery"), ("ea", "ca", "bathing"),
                                         ("eb", "cb", "meal_delivery")):  # fmt: skip
        oid = _deliver(client, admin, elder_id, responder_id, item)
        prices.append(client.get(f"/api/service-orders/{oid}", headers=auth(admin)).json()["price_fen"])
    month: str = client.get("/api/elders/el/vouchers", headers=auth(admin)).json()["month"]
    return admin, month, prices


def test_an_elders_vouchers_drop_by_the_price_and_never_below_zero(client: TestClient) -> None:
    admin, _, _ = _city(client)
    operator = person(client, admin, "op", "operator", ["*"])
    answer = client.get("/api/elders/el/vouchers", headers=auth(operator))
    assert answer.status_code == 200, answer.text
    vouchers = answer.json()
    assert vouchers["current"]["allotted_fen"] == 2000 and vouchers["current"]["spent_fen"] == 2000
    assert vouchers["current"]["available_fen"] == 0  # three meals at 8 yuan on 20 yuan of vouchers
    splits = [(c["price_fen"], c["voucher_fen"], c["cash_fen"]) for c in reversed(vouchers["charges"])]
    assert splits == [(800, 800, 0), (800, 800, 0), (800, 400, 400)]
    assert client.get("/api/elders/nobody/vouchers", headers=auth(operator)).status_code == 404


def test_statements_in_json_and_csv_add_up_to_the_delivered_prices(client: TestClient) -> None:
    admin, month, prices = _city(client)
    for by in ("elder", "provider", "community"):
        answer = client.get(f"/api/statements?month={month}&by={by}", headers=auth(admin))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert sum(row["total_fen"] for row in body["rows"]) == body["total"]["total_fen"] == sum(prices)
        assert body["total"]["voucher_fen"] + body["total"]["cash_fen"] == sum(prices)
        assert body["total"]["deliveries"] == len(prices)
    by_elder = {row["key"]: row for row in client.get(f"/api/statements?month={month}&by=elder",
                                                      headers=auth(admin)).json()["rows"]}  # fmt: skip
    assert by_elder["el"]["name"] == "李低偿" and by_elder["el"]["cash_fen"] == 400
    by_provider = client.get(f"/api/statements?month={month}&by=provider", headers=auth(admin)).json()["rows"]
    assert [(row["key"], row["name"]) for row in by_provider] == [("centre", "本中心")]
    providers = client.get("/api/services", headers=auth(admin)).json()["providers"]
    assert [p["provider_id"] for p in providers] == ["centre", "kangle"]
    # CSV: UTF-8 with a BOM, a file name, Chinese headers when asked, yuan that add up to the prices
    sheet = client.get(f"/api/statements?month={month}&by=elder",
                       headers={**auth(admin), "Accept": "text/csv", "Accept-Language": "zh-CN"})  # fmt: skip
    assert sheet.status_code == 200
    assert sheet.headers["content-type"].startswith("text/csv")
    assert f'filename="statement-{month}-elder.csv"' in sheet.headers["content-disposition"]
    assert sheet.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"), newline="")))
    assert rows[0][:2] == ["老人", "名称"]
    body_rows, last = rows[1:-1], rows[-1]
    assert last[0] == "合计"
    fen = [int(row[3].replace(".", "")) for row in body_rows]
    assert sum(fen) == int(last[3].replace(".", "")) == sum(prices)
    assert ["el", "李低偿"] in [row[:2] for row in body_rows]


def test_bad_month_or_by_is_422_with_its_code(client: TestClient) -> None:
    admin = token(client)
    for query, code in (("month=2026-13&by=elder", "statement_month"), ("month=March&by=elder", "statement_month"),
                        ("month=2026-03&by=street", "statement_by")):  # fmt: skip
        answer = client.get(f"/api/statements?{query}", headers=auth(admin))
        assert (answer.status_code, answer.json()["code"]) == (422, code), answer.text


def test_a_month_in_other_digits_or_with_a_newline_is_422_not_a_broken_file_name(client: TestClient) -> None:
    """The month goes into the CSV's file name: full-width digits or a trailing newline made that header fail."""
    admin = token(client)
    for month in ("%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-03", "2026-03%0A"):
        answer = client.get(f"/api/statements?month={month}&by=elder", headers={**auth(admin), "Accept": "text/csv"})
        assert (answer.status_code, answer.json()["code"]) == (422, "statement_month"), answer.text


def test_a_street_supervisor_sees_its_streets_rows_only(client: TestClient) -> None:
    admin, month, prices = _city(client)
    sup_a = person(client, admin, "sup_a", "supervisor", [STREET_A])
    op_a = person(client, admin, "op_a", "operator", [STREET_A])
    for by in ("elder", "community"):
        answer = client.get(f"/api/statements?month={month}&by={by}", headers=auth(sup_a)).json()
        assert all(not row["key"].startswith(STREET_B) and row["key"] != "eb" for row in answer["rows"])
        assert answer["total"]["total_fen"] == sum(prices) - 1500  # eb's meal (paid, 15 yuan) is street B's
        assert "朝阳" not in str(answer)
    sheet = client.get(f"/api/statements?month={month}&by=elder", headers={**auth(sup_a), "Accept": "text/csv"})
    assert "eb" not in sheet.content.decode("utf-8-sig")
    assert client.get("/api/elders/eb/vouchers", headers=auth(op_a)).status_code == 404  # outside: as if none
    assert client.get("/api/elders/ea/vouchers", headers=auth(op_a)).status_code == 200
    assert client.get(f"/api/statements?month={month}&by=elder", headers=auth(op_a)).status_code == 403


def test_reads_of_vouchers_and_statements_are_on_record(client: TestClient) -> None:
    admin, month, _ = _city(client)
    client.get("/api/elders/el/vouchers", headers=auth(admin))
    client.get(f"/api/statements?month={month}&by=elder", headers=auth(admin))
    reads: list[dict[str, Any]] = client.get("/api/elders/el/reads", headers=auth(admin)).json()["reads"]
    assert {"vouchers", "statements"} <= {line["what"] for line in reads}
