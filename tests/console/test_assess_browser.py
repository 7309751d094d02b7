"""A needs assessment in a real browser, in Chinese: an assessor on a laptop (1366×768) finds an elder on the list
of those due, fills the MZ/T 039-2013 form, sees the level the server scored, saves; the elder's care level and an
SOS alarm's priority change (the next SOS opens at priority 1), and the assessment is in the elder's history. The
same page on a phone (360×640) fits the screen. Headless Chromium (Debian's ``/usr/bin/chromium``) against a real
``anxin serve``; screenshots go to ``ANXIN_SCREENSHOTS`` (else ``docs/screenshots``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from simulators import city as city_generator
from tests.console.browser import (
    LAPTOP,
    PHONE,
    SEVERE_FORM,
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
ASSESSOR = ("as01", "assessor-pass-1")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return City(city_generator.generate(tmp_path_factory.mktemp("city"), seed=23, elders=40, caregivers=6, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    running = Deployment(tmp_path_factory.mktemp("server") / "data", city.files)
    running.account(*ASSESSOR, role="assessor")
    yield running
    running.close()


def plain_elder(deployment: Deployment, city: City) -> dict[str, str]:
    """An elder nothing raises the priority of yet (no risk flag, under 80, care level under 3): made so."""
    elder = city.elders[0]
    record = deployment.get(f"/api/elders/{elder['elder_id']}")
    record.update(risk_flags=[], care_level=1, birth_date=date(1952, 3, 4).isoformat(), lives_with=None)
    for extra in ("devices", "recent_incidents"):
        record.pop(extra, None)
    response = deployment.http.put(f"/api/elders/{elder['elder_id']}", json=record, headers=deployment.headers())
    assert response.status_code == 200, response.text
    return elder


def fits(page: Page) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert wide <= 0, f"{wide}px wider than the screen"


def complete(page: Page, data: str) -> None:
    assert missing_keys(page) == []
    assert untranslated(ui_text(page), "zh-CN", data) == []


def open_page(context: BrowserContext, url: str) -> tuple[Page, list[str]]:
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{url}/assess")
    login(page, *ASSESSOR)
    page.wait_for_selector("#assess-view:not([hidden])")
    return page, errors


def test_an_assessor_assesses_and_the_care_level_and_triage_change(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    elder = plain_elder(deployment, city)
    elder_id = elder["elder_id"]
    assert deployment.sos_priority(elder_id) == 2

    contexts.append(laptop := desk(browser, LAPTOP))
    page, errors = open_page(laptop, deployment.url)
    # every elder is due a first assessment: the list says so
    due = page.locator("#due li")
    expect(due.first).to_contain_text(ZH["assess.why.initial"])
    page.fill("#find-input", elder["name"])
    page.click("#find-form button[type=submit]")
    page.locator(f'#found button[data-elder-id="{elder_id}"]').click()
    expect(page.locator("#elder-name")).to_have_text(elder["name"])
    expect(page.locator("#reason")).to_have_value("initial")
    expect(page.locator("#left")).to_have_text(ZH["assess.left"].replace("{n}", "22"))

    # saving half a form is refused on the page, naming the first item left
    page.locator('.item[data-item="eating"] input[value="5"]').check()
    page.click("#save")
    expect(page.locator("#assess-error")).to_contain_text(ZH["assess.item.bathing"])

    for item, value in SEVERE_FORM.items():
        page.locator(f'.item[data-item="{item}"] input[value="{value}"]').check()
    page.select_option("#lives-with", "spouse")
    level = ZH["assess.level_is"].replace("{level}", ZH["assess.level.3"])
    expect(page.locator("#summary")).to_contain_text(level)
    expect(page.locator('[data-grade="adl"]')).to_contain_text(ZH["assess.grade.3"])
    expect(page.locator("#left")).to_have_text("")
    screenshot(page, "assess-form-laptop")
    complete(page, city.text())

    page.click("#save")
    result = page.locator("#result")
    expect(result).to_be_visible()
    expect(result).to_contain_text(ZH["assess.care_changed"].replace("{before}", "1").replace("{after}", "3"))
    triage = ZH["assess.triage_changed"].replace("{alarm}", ZH["alarm.sos"]).replace("{before}", "2")
    expect(result).to_contain_text(triage.replace("{after}", "1"))
    expect(page.locator("#history-count")).to_have_text("(1)")
    expect(page.locator("#elder-due")).to_contain_text(ZH["assess.why.routine"])
    expect(page.locator(f'#due button[data-elder-id="{elder_id}"]')).to_have_count(0)  # off the list
    screenshot(page, "assess-result-laptop")
    complete(page, city.text())
    assert errors == []

    record = deployment.get(f"/api/elders/{elder_id}")
    assert (record["care_level"], record["lives_with"]) == (3, "spouse")
    assert deployment.sos_priority(elder_id) == 1
    history = deployment.get(f"/api/elders/{elder_id}/assessments")["assessments"]
    assert [(a["level"], a["assessor"], a["reason"]) for a in history] == [(3, "assessor:as01", "initial")]

    # the same page on a phone: one column, nothing wider than the screen
    handset = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )  # fmt: skip
    contexts.append(handset)
    phone_page, phone_errors = open_page(handset, deployment.url)
    phone_page.locator("#due button").first.click()
    expect(phone_page.locator("#assess-form")).to_be_visible()
    fits(phone_page)
    phone_page.locator('.item[data-item="consciousness"] input[value="3"]').check()  # a coma: the rest set aside
    expect(phone_page.locator('.item[data-item="eating"]')).to_have_class(re.compile(r"\baside\b"))
    expect(phone_page.locator("#summary")).to_contain_text(level)
    fits(phone_page)
    screenshot(phone_page, "assess-form-phone")
    assert phone_errors == []
