"""The care-call page (关怀电话) in a real browser, in Chinese: today's list holds exactly the elders living alone,
empty-nest or aged 80 and over; an operator marks one 未接通 and it shows as retried later (last on the list,
"HH:MM再拨"), marks another 接通 with how the elder is, and the third miss of a third proposes a home visit that
the operator settles. At the operator's laptop (1366x768) and on a phone (360x640).

Headless Chromium (Debian's ``/usr/bin/chromium``, through Playwright) against a real ``anxin serve`` process
with a generated city; screenshots go where ``ANXIN_SCREENSHOTS`` says (docs/screenshots by default).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from simulators import city as city_generator
from tests.console.browser import (
    LAPTOP,
    OPERATOR,
    PHONE,
    City,
    Deployment,
    catalogue,
    desk,
    login,
    missing_keys,
    screenshot,
    ui_text,
    untranslated,
    watch_errors,
)

pytestmark = pytest.mark.process

ZH = catalogue("zh-CN")
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    out = tmp_path_factory.mktemp("city")
    return City(city_generator.generate(out, seed=23, elders=60, caregivers=6, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    data = tmp_path_factory.mktemp("server") / "data"
    # retried five minutes later, not sixty: a retry that falls on tomorrow is off today's list, so the hour
    # before midnight in Shanghai (15:00-16:00 UTC) would fail this test; now only its last five minutes can
    running = Deployment(data, city.files, ANXIN_CARE_CALL_RETRY_MINUTES="5")
    yield running
    running.close()


def called(elder: dict[str, str], today: date) -> bool:
    """Rule 1 of dispatch.carecalls, from the registry's CSV: living alone, empty nest, or 80 on today."""
    flags = set(elder["risk_flags"].split(";"))
    born = date.fromisoformat(elder["birth_date"]) if elder["birth_date"] else None
    aged = born is not None and today.year - born.year - ((today.month, today.day) < (born.month, born.day)) >= 80
    return bool(flags & {"living_alone", "empty_nest"}) or aged


def open_care_calls(context: BrowserContext, url: str) -> tuple[Page, list[str]]:
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{url}/care-calls")
    login(page, *OPERATOR)
    expect(page.locator("#care-body tr").first).to_be_visible()
    return page, errors


def row(page: Page, elder_id: str) -> object:
    return page.locator(f'#care-body tr[data-elder-id="{elder_id}"]')


def record(page: Page, elder_id: str, action: str, *, wellbeing: str | None = None, note: str = "") -> None:
    page.locator(f'#care-body tr[data-elder-id="{elder_id}"] button[data-action="{action}"]').click()
    expect(page.locator("#call-dialog")).to_be_visible()
    if wellbeing:
        page.check(f'#call-wellbeing input[value="{wellbeing}"]')
    if note:
        page.fill("#call-note", note)
    page.click("#call-submit")
    expect(page.locator("#call-dialog")).to_be_hidden()


def test_todays_list_and_a_missed_call_retried_later(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    today = datetime.now(SHANGHAI).date()
    expected = {e["elder_id"] for e in city.elders if called(e, today)}
    assert 5 <= len(expected) < len(city.elders)
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_care_calls(context, deployment.url)
    expect(page.locator("#care-heading")).to_have_text(ZH["care.heading_today"])
    expect(page.locator("#care-body tr")).to_have_count(len(expected))
    shown = set(page.locator("#care-body tr").evaluate_all("(rows) => rows.map((r) => r.dataset.elderId)"))
    assert shown == expected
    first, second, third = page.locator("#care-body tr").evaluate_all(
        "(rows) => rows.slice(0, 3).map((r) => r.dataset.elderId)"
    )
    elder = next(e for e in city.elders if e["elder_id"] == first)
    line = page.locator(f'#care-body tr[data-elder-id="{first}"]')
    expect(line.locator(".care-tel")).to_have_attribute(
        "href", "tel:" + "".join(c for c in elder["phone"] if c.isdigit())
    )
    expect(line.locator(".care-last")).to_have_text(ZH["care.never_called"])
    screenshot(page, "care-calls-laptop-zh")

    # 未接通: the call is tried again later (five minutes here), at the end of the list until then
    record(page, first, "missed", note="无人接听")
    retry_at = deployment.get("/api/care-calls")["calls"][-1]
    assert retry_at["elder_id"] == first and retry_at["attempts"] == 1
    hhmm = datetime.fromtimestamp(retry_at["retry_at"], SHANGHAI).strftime("%H:%M")
    expect(page.locator("#care-notice")).to_have_text(ZH["care.missed_done"].format(name=elder["name"], time=hhmm))
    expect(line.locator(".care-status")).to_have_text(ZH["care.retry_at"].format(time=hhmm))
    expect(line.locator(".care-attempts")).to_have_text(ZH["care.attempts_n"].format(n=1))
    expect(page.locator("#care-body tr").last).to_have_attribute("data-elder-id", first)
    expect(line).to_have_attribute("data-state", "retrying")

    # 接通, needs help: off today's list, on the reached list with the mark
    record(page, second, "reached", wellbeing="needs_help", note="想要助浴")
    expect(page.locator(f'#care-body tr[data-elder-id="{second}"]')).to_have_count(0)
    done = page.locator(f'#done-list li[data-elder-id="{second}"]')
    expect(done).to_contain_text(ZH["wellbeing.needs_help"])
    expect(done).to_contain_text("想要助浴")

    # three misses in a row: a home visit is proposed, then settled
    third_name = next(e["name"] for e in city.elders if e["elder_id"] == third)
    for _ in range(3):
        record(page, third, "missed")
    expect(page.locator("#care-notice")).to_have_text(ZH["care.visit_proposed_done"].format(name=third_name, n=3))
    visit = page.locator(f'#visits-body tr[data-elder-id="{third}"]')
    expect(visit).to_be_visible()
    expect(page.locator(f'#care-body tr[data-elder-id="{third}"]')).to_have_count(0)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "care-calls-visit-laptop-zh")
    visit.locator('button[data-action="settle"]').click()
    page.fill("#settle-note", "社工上门，老人在邻居家打牌")
    page.click("#settle-submit")
    expect(page.locator("#visits-body tr")).to_have_count(0)
    expect(page.locator("#visits-empty")).to_be_visible()

    assert missing_keys(page) == []
    assert untranslated(ui_text(page), "zh-CN", city.text()) == []
    assert errors == []


def test_the_list_on_a_phone_in_both_languages(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    handset = {"device_scale_factor": 2, "is_mobile": True, "has_touch": True}
    contexts.append(context := browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai",
                                                   **handset))  # fmt: skip
    page, errors = open_care_calls(context, deployment.url)
    first = page.locator("#care-body tr").first
    button = first.locator('button[data-action="missed"]')
    expect(button).to_be_visible()
    box = button.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width}px"
    screenshot(page, "care-calls-phone-zh")
    button.click()
    expect(page.locator("#call-dialog")).to_be_visible()
    expect(page.locator("#call-wellbeing")).to_be_hidden()  # not reached: no mark to give
    page.click("#call-cancel")
    assert untranslated(ui_text(page), "zh-CN", city.text()) == []
    page.select_option("#lang-select", "en")
    expect(page.locator("#care-heading")).to_have_text(catalogue("en")["care.heading_today"])
    screenshot(page, "care-calls-phone-en")
    day = deployment.get("/api/care-calls")
    notes = [c["last_note"] for c in (*day["calls"], *day["done"])]  # what operators wrote, in their words
    assert untranslated(ui_text(page), "en", "\n".join([city.text(), *notes])) == []
    assert missing_keys(page) == []
    assert errors == []
