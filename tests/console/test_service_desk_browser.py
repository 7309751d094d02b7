"""The service desk in a real browser, in Chinese: from a caller's request for a meal to the follow-up call.

A caller asks the hotline for a meal delivery; the operator, on the console, classifies the call as a service
request and places the order from it; on the service desk page she schedules it and assigns a caregiver; the
caregiver's phone (360 × 640) lists it, checks in at the door and checks out with a note; the elder's vouchers
drop by the meal's price for their entitlement; the next day (the server's clock moved by tests/clocked.py, no
hook in the server) the follow-up is on the desk's list and the operator records the elder's satisfaction.

Headless Chromium (Debian's ``/usr/bin/chromium``) against a real server process with a generated city, as in
test_browser.py; the screenshots go to ``ANXIN_SCREENSHOTS`` (docs/img/service-desk-*.png are chosen from them).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from simulators import city as city_generator
from tests.console.browser import (
    LAPTOP,
    OPERATOR,
    PHONE,
    SUPERVISOR,
    City,
    Deployment,
    catalogue,
    desk,
    login,
    missing_keys,
    offset,
    open_console,
    phone_on_duty,
    screenshot,
    ui_text,
    untranslated,
    watch_errors,
)
from tests.process import ADMIN_PASSWORD, ClockedServer

pytestmark = pytest.mark.process

ZH = catalogue("zh-CN")
DAY_S = 24 * 3600
MEAL = "meal_delivery"
#: what the browser logs when yesterday's token is refused (a request's 401, the stream's handshake)
EXPIRED = re.compile(r"status of 401|WebSocket connection")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    out = tmp_path_factory.mktemp("city")
    return City(city_generator.generate(out, seed=13, elders=80, caregivers=16, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    data = tmp_path_factory.mktemp("server") / "data"
    running = Deployment(data, city.files, server=ClockedServer)
    yield running
    running.close()


def low_cost_elder(city: City) -> dict[str, str]:
    """An elder on the low-cost entitlement (a meal costs them something, and they have vouchers)."""
    return next(e for e in city.elders if e["entitlement"] == "low_cost" and not e["caregiver_id"])


def check_chinese(page: Page, data: str) -> None:
    assert missing_keys(page) == []
    assert untranslated(ui_text(page), "zh-CN", data) == []


def open_desk(context: BrowserContext, url: str, who: tuple[str, str] = OPERATOR) -> tuple[Page, list[str]]:
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{url}/services")
    login(page, *who)
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online")
    return page, errors


def order_card(page: Page, order_id: str) -> object:
    return page.locator(f'#orders li[data-order-id="{order_id}"]')


def test_a_meal_from_the_call_to_the_follow_up(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    elder = low_cost_elder(city)
    home = float(elder["lat"]), float(elder["lon"])
    caregiver = next(r for r in city.responders if r["kind"] == "caregiver" and "life_care" in r["skills"].split(";"))
    meal = next(i for i in deployment.get("/api/services")["services"] if i["item_id"] == MEAL)
    price = meal["price_fen"]["low_cost"]
    deployment.caregiver(caregiver["responder_id"])
    data = "\n".join([city.text(), meal["name_zh"], "要一份午餐送上门", "午餐已送到，老人已用餐"])

    # the caller asks for lunch; the operator says it is a service request, and the order form follows
    contexts.append(console_context := desk(browser, LAPTOP))
    console, console_errors = open_console(console_context, deployment.url)
    call = {"call_id": "call-meal-1", "caller": elder["phone"], "line": "12349-1"}
    deployment.call("ringing", **call)
    deployment.call("answered", **call)
    expect(console.locator("#classify")).to_be_visible()
    console.fill("#classify-text", "要一份午餐送上门")
    console.click("#classify button[data-kind=service]")
    dialog = console.locator("#order-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#order-elder")).to_have_text(elder["name"])
    expect(dialog.locator("#order-call")).to_have_text(ZH["order.from_call"])
    expect(dialog.locator("#order-vouchers")).to_contain_text(ZH["entitlement.low_cost"])
    before = int(dialog.locator("#order-vouchers").get_attribute("data-available-fen") or "-1")
    assert before == deployment.get(f"/api/elders/{elder['elder_id']}/vouchers")["current"]["available_fen"] > 0
    dialog.locator("#order-item").select_option(MEAL)
    expect(dialog.locator("#order-price")).to_have_attribute("data-price-fen", str(price))
    expect(dialog.locator("#order-price")).to_contain_text(f"¥{price // 100}.{price % 100:02d}")
    check_chinese(console, data)
    screenshot(console, "service-desk-call-order-zh")
    dialog.locator("#order-submit").click()
    expect(dialog).to_be_hidden()
    placed = console.locator("#call-pop-result .call-order")
    expect(placed).to_contain_text(ZH["call.order_placed"].split("{")[0])
    orders = deployment.get(f"/api/service-orders?elder={elder['elder_id']}")["orders"]
    assert len(orders) == 1
    order = orders[0]
    assert (order["source"], order["call_id"], order["item_id"], order["price_fen"], order["mode"]) == (
        "call", call["call_id"], MEAL, price, "low_cost",
    )  # fmt: skip
    order_id = order["order_id"]
    deployment.call("ended", **call)
    assert console_errors == []

    # the caregiver's phone, on duty at the elder's street corner
    handset, phone_errors = phone_on_duty(
        browser, deployment.url, caregiver["responder_id"], *offset(*home, 150), contexts
    )

    # the service desk: schedule it, assign the caregiver
    contexts.append(desk_context := desk(browser, LAPTOP))
    page, desk_errors = open_desk(desk_context, deployment.url)
    card = order_card(page, order_id)
    expect(card).to_have_attribute("data-state", "requested")
    expect(card).to_contain_text(meal["name_zh"])
    expect(card).to_contain_text(ZH["ordersource.call"])
    card.locator("button[data-action=schedule]").click()
    expect(page.locator("#act-dialog")).to_be_visible()
    page.click("#act-submit")
    expect(card).to_have_attribute("data-state", "scheduled")
    card.locator("button[data-action=assign]").click()
    expect(page.locator(f'#act-responder option[value="{caregiver["responder_id"]}"]')).to_be_enabled()
    page.select_option("#act-responder", caregiver["responder_id"])
    page.click("#act-submit")
    expect(card).to_have_attribute("data-state", "assigned")
    expect(card).to_contain_text(caregiver["name"])
    check_chinese(page, data)
    screenshot(page, "service-desk-orders-zh")

    # the phone lists the order at once (the server tells it), and the caregiver works it at the door
    mine = handset.locator(f'#orders-list li[data-order-id="{order_id}"]')
    expect(mine).to_be_visible()
    expect(mine).to_contain_text(elder["name"])
    expect(mine).to_contain_text(meal["name_zh"])
    expect(mine).to_contain_text(elder["address"])
    check_chinese(handset, data)
    screenshot(handset, "service-desk-phone-order-zh")
    handset.select_option("#lang-select", "en")
    expect(mine).to_contain_text(meal["name_en"])
    assert missing_keys(handset) == []
    assert untranslated(ui_text(handset), "en", data) == []
    handset.select_option("#lang-select", "zh-CN")

    # an alarm nearby meanwhile: the offer takes the screen above the order (alarms first), and gives it back
    neighbour = next(
        e for e in city.elders if e["community"] == elder["community"] and e["elder_id"] != elder["elder_id"]
    )
    deployment.raise_alarm(neighbour["elder_id"], "sos")
    expect(handset.locator("#offer")).to_be_visible()
    expect(handset.locator("#orders")).to_be_hidden()
    handset.click("#decline-button")
    handset.click("#decline-yes")
    expect(handset.locator("#offer")).to_be_hidden()
    expect(mine).to_be_visible()
    deployment.settle()  # nobody else is on duty: the operator would take it from here
    mine.locator("button[data-action=start]").click()
    expect(mine).to_have_attribute("data-state", "started")
    mine.locator("textarea").fill("午餐已送到，老人已用餐")
    screenshot(handset, "service-desk-phone-started-zh")
    mine.locator("button[data-action=deliver]").click()
    expect(mine).to_have_count(0)
    expect(handset.locator("#phone-message")).to_have_text(ZH["phone.order_deliver_done"])
    delivered = deployment.get(f"/api/service-orders/{order_id}")
    assert delivered["state"] == "delivered" and delivered["note"] == "午餐已送到，老人已用餐"
    assert delivered["started_pos"] is not None and delivered["delivered_pos"] is not None  # the phone's position
    expect(card).to_have_attribute("data-state", "delivered")  # the desk follows the stream
    assert phone_errors == []

    # the voucher balance dropped by the meal's low-cost price, as the desk's order form shows it
    page.click("#new-order-button")
    page.fill("#order-elder", elder["phone"])
    page.locator(f'#order-who button.elder-hit[data-elder-id="{elder["elder_id"]}"]').click()
    expect(page.locator("#order-vouchers")).to_have_attribute("data-available-fen", str(before - price))
    page.click("#order-cancel")
    charges = deployment.get(f"/api/elders/{elder['elder_id']}/vouchers")["charges"]
    assert [(c["order_id"], c["price_fen"], c["voucher_fen"]) for c in charges] == [(order_id, price, price)]

    # today nothing is due; the next day the follow-up of the meal is on the desk's list
    assert not page.locator(f'#followups li[data-kind=service]:has-text("{order_id}")').count()
    deployment.server.shift(DAY_S)
    deployment.admin = deployment.token("admin", ADMIN_PASSWORD)  # yesterday's tokens have expired
    page.reload()
    expect(page.locator("#login-view")).to_be_visible()  # so has the operator's: she logs in again
    login(page, *OPERATOR)
    follow_up = page.locator("#followups li.followup", has_text=order_id)
    expect(follow_up).to_be_visible()
    expect(follow_up).to_contain_text(elder["name"])
    follow_up.locator("button.followup-record").click()
    expect(page.locator("#followup-dialog")).to_be_visible()
    page.click("#followup-submit")  # reached, and no satisfaction yet: our words, not the browser's
    expect(page.locator("#followup-error")).to_have_text(ZH["error.satisfaction_required"])
    page.click('#followup-stars button[data-n="5"]')
    page.fill("#followup-note", "老人说饭菜可口")
    check_chinese(page, data + "\n老人说饭菜可口")
    screenshot(page, "service-desk-follow-up-zh")
    page.click("#followup-submit")
    expect(page.locator("#followup-dialog")).to_be_hidden()
    expect(follow_up).to_have_count(0)
    done = deployment.get("/api/follow-ups?state=done")["follow_ups"]
    recorded = next(f for f in done if f["subject_id"] == order_id)
    assert (recorded["kind"], recorded["satisfaction"], recorded["state"]) == ("service", 5, "done")
    assert [e for e in desk_errors if not EXPIRED.search(e)] == []  # the browser notes the expired token's refusals


def test_a_supervisor_reads_the_desk_in_both_languages_and_prints_a_months_statement(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    delivered = deployment.get("/api/service-orders?state=delivered")["orders"]
    at = delivered[0]["delivered_at"] if delivered else time.time()
    month = datetime.fromtimestamp(at, ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    data = "\n".join([city.text(), *(o["note"] for o in delivered), "老人说饭菜可口"])
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_desk(context, deployment.url, SUPERVISOR)
    expect(page.locator("#evaluations-panel")).to_be_visible()
    expect(page.locator("#complaints-panel")).to_be_visible()
    page.select_option("#orders-state", "")
    for language in ("en", "zh-CN"):
        page.select_option("#lang-select", language)
        expect(page.locator("html")).to_have_attribute("lang", language)
        page.wait_for_timeout(100)
        assert missing_keys(page) == []
        assert untranslated(ui_text(page), language, data) == [], language
    if delivered:
        expect(page.locator("#evaluations-body tr")).not_to_have_count(0)
    screenshot(page, "service-desk-supervisor-zh")

    # an order the elder no longer wants: cancelled with a reason, which the dialog asks for in our words
    spare = next(e for e in city.elders if e["entitlement"] == "paid")
    start = time.time() + DAY_S + 3600
    wanted = {"elder_id": spare["elder_id"], "item_id": "home_cleaning", "start": start, "end": start + 3600}
    unwanted = deployment.post("/api/service-orders", wanted)["order_id"]
    card = page.locator(f'#orders li[data-order-id="{unwanted}"]')
    card.locator("button[data-action=cancel]").click()
    page.click("#act-submit")
    expect(page.locator("#act-error")).to_have_text(ZH["order.need_reason"])
    page.fill("#act-text", "老人家属已自行安排")
    page.click("#act-submit")
    expect(card).to_have_attribute("data-state", "cancelled")
    assert deployment.get(f"/api/service-orders/{unwanted}")["reason"] == "老人家属已自行安排"

    # a complaint heard on a follow-up is the supervisor's task: settled once, saying what was done
    opened = deployment.post("/api/incidents", {"elder_id": spare["elder_id"], "alarm_type": "fall"})["incident_id"]
    for step, body in (("resolve", {"outcome": "平安"}), ("close", {})):
        deployment.post(f"/api/incidents/{opened}/{step}", body)
    listed = deployment.get("/api/follow-ups?state=open&limit=5000")["follow_ups"]
    heard = next(f["follow_up_id"] for f in listed if f["subject_id"] == opened)
    answer = {"reached": True, "satisfaction": 2, "complaint": "护理员来得太晚了"}
    complaint_id = deployment.post(f"/api/follow-ups/{heard}", answer)["complaint_id"]
    item = page.locator(f'#complaints li[data-complaint-id="{complaint_id}"]')
    expect(item).to_contain_text("护理员来得太晚了")  # the stream brought it
    item.locator("button.complaint-settle").click()
    page.click("#complaint-submit")
    expect(page.locator("#complaint-error")).to_have_text(ZH["error.resolution_required"])
    page.fill("#complaint-resolution", "已向老人致歉，调整了排班")
    page.click("#complaint-submit")
    expect(item).to_contain_text("已向老人致歉，调整了排班")
    expect(item.locator("button.complaint-settle")).to_have_count(0)
    settled = next(c for c in deployment.get("/api/complaints")["complaints"] if c["complaint_id"] == complaint_id)
    assert (settled["open"], settled["settled_by"]) == (False, f"supervisor:{SUPERVISOR[0]}")

    page.click("#statements-link")
    expect(page.locator("#statements-view")).to_be_visible()
    page.select_option("#statement-month", month)
    statement = deployment.get(f"/api/statements?month={month}&by=elder")
    expect(page.locator("#statement-total")).to_have_attribute("data-total-fen", str(statement["total"]["total_fen"]))
    expect(page.locator("#statement-body tr")).to_have_count(len(statement["rows"]))
    assert missing_keys(page) == []
    assert untranslated(ui_text(page), "zh-CN", data) == []
    screenshot(page, "service-desk-statement-zh")
    page.select_option("#lang-select", "en")
    expect(page.locator("#statement-heading")).to_contain_text(f"Statement for {month}")
    assert missing_keys(page) == []
    assert untranslated(ui_text(page), "en", data) == []
    page.select_option("#lang-select", "zh-CN")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    with page.expect_download() as download:
        page.click("#statement-csv")
    assert download.value.suggested_filename == f"statement-{month}-elder.csv"
    text = Path(download.value.path()).read_bytes().decode("utf-8")
    assert text.startswith("\ufeff") and "合计" in text  # a BOM for spreadsheets, Chinese headers, the total
    page.emulate_media(media="print")
    expect(page.locator("#topbar")).to_be_hidden()
    expect(page.locator("#statement-table")).to_be_visible()
    assert errors == []

    # on a phone-sized screen the desk is one column, nothing wider than the screen
    contexts.append(small := browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai"))
    handheld, _ = open_desk(small, deployment.url)
    expect(handheld.locator("#orders-panel")).to_be_visible()
    if delivered:  # delivered and not yet confirmed: still on the desk's to-do list
        expect(handheld.locator("#orders li").first).to_be_visible()
    assert handheld.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(handheld, "service-desk-orders-phone-zh")
