"""The 五定 plans page in a real browser (Debian's Chromium through Playwright) against a real ``anxin serve``:
an operator makes a plan in Chinese, sees it listed, ends it, and the page is complete in both languages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from simulators import city as city_generator
from tests.console.browser import (
    OPERATOR,
    City,
    Deployment,
    desk,
    login,
    missing_keys,
    screenshot,
    ui_text,
    untranslated,
    watch_errors,
)

pytestmark = pytest.mark.process

PLACE = "社区食堂"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return City(city_generator.generate(tmp_path_factory.mktemp("city"), seed=5, elders=30, caregivers=8, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    running = Deployment(tmp_path_factory.mktemp("server") / "data", city.files)
    yield running
    running.close()


def test_an_operator_makes_a_plan_and_ends_it_in_either_language(
    deployment: Deployment, browser: Browser, city: City
) -> None:
    elder = city.elders[0]
    caregiver = next(r for r in city.responders if r["kind"] == "caregiver" and "life_care" in r["skills"])
    context = desk(browser)
    try:
        page = context.new_page()
        errors = watch_errors(page)
        page.goto(f"{deployment.url}/plans")
        login(page, *OPERATOR)
        expect(page.locator("#plans-view")).to_be_visible()
        expect(page.locator("#plans-empty")).to_be_visible()
        expect(page.locator("#tasks-empty")).to_be_visible()

        page.click("#plan-new")
        expect(page.locator("#plan-dialog")).to_be_visible()
        page.fill("#plan-elder", elder["elder_id"])
        page.select_option("#plan-item", "meal_delivery")
        page.select_option("#plan-caregiver", caregiver["responder_id"])
        for day in ("2", "4", "6", "7"):  # every day of the week, with Monday, Wednesday and Friday checked already
            page.check(f'#plan-weekdays input[value="{day}"]')
        page.fill("#plan-at", "23:59")
        page.fill("#plan-place", PLACE)
        data = "\n".join([city.text(), PLACE])
        for language in ("en", "zh-CN"):  # the dialog open: its words too
            check_language(page, language, data)
        screenshot(page, "plans-new-zh")
        page.click("#plan-submit")
        expect(page.locator("#plan-dialog")).to_be_hidden()
        row = page.locator("#plans-body tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text(elder["name"])
        expect(row).to_contain_text(PLACE)
        expect(page.locator("#plans-notice")).to_contain_text("已排近期上门")
        (plan,) = deployment.get("/api/plans")["plans"]
        assert (plan["responder_id"], plan["weekdays"], plan["at"]) == (caregiver["responder_id"], list(range(1, 8)),
                                                                       "23:59")  # fmt: skip
        assert len(deployment.get(f"/api/plans/{plan['plan_id']}")["orders"]) >= 6
        for language in ("en", "zh-CN"):
            check_language(page, language, data)
        screenshot(page, "plans-zh")

        page.click("#plans-body .plan-end")
        expect(page.locator("#end-dialog")).to_be_visible()
        page.fill("#end-reason", "老人住院")
        page.click("#end-submit")
        expect(page.locator("#plans-empty")).to_be_visible()  # no longer among the running plans
        page.select_option("#plans-filter", "")
        expect(page.locator("#plans-body tr")).to_contain_text("已结束")
        assert deployment.get(f"/api/plans/{plan['plan_id']}")["state"] == "ended"
        assert errors == []
    finally:
        context.close()


def check_language(page: Page, language: str, data: str) -> None:
    """Switch the page to ``language`` and check every string is there and translated."""
    page.select_option("#lang-select", language)
    expect(page.locator("html")).to_have_attribute("lang", language)
    page.wait_for_timeout(100)
    assert missing_keys(page) == []
    assert untranslated(ui_text(page), language, data) == [], language
