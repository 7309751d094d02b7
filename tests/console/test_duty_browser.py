"""The duty page (值班与交接班) in a real browser, in Chinese: the night operator goes on duty on a laptop, writes a
line in the log and hands over with an open incident on the desk; the next operator, on a phone, reads the sheet
and acknowledges (接班确认). Headless Chromium (Debian's ``/usr/bin/chromium``) against a real ``anxin serve``;
screenshots go to ``ANXIN_SCREENSHOTS`` (else ``docs/screenshots``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from simulators import city as city_generator
from tests.console.browser import (
    LAPTOP,
    OPERATOR,
    City,
    Deployment,
    catalogue,
    desk,
    login,
    missing_keys,
    phone,
    screenshot,
    ui_text,
    untranslated,
    watch_errors,
)

pytestmark = pytest.mark.process

ZH = catalogue("zh-CN")
NEXT = ("op02", "operator-pass-2")
LOG_LINE = "22:10 巡查设备，一切正常"
WORDS = "跌倒警情仍在处理，请跟进家属回电"
DISPUTE = "未见家属回电记录"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return City(city_generator.generate(tmp_path_factory.mktemp("city"), seed=13, elders=60, caregivers=8, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    running = Deployment(tmp_path_factory.mktemp("server") / "data", city.files)
    running.account(*NEXT, role="operator")
    yield running
    running.close()


def fits(page: Page) -> None:
    """Nothing wider than the screen: no sideways scrolling."""
    wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert wide <= 0, f"{wide}px wider than the screen"


def complete(page: Page, data: str) -> None:
    assert missing_keys(page) == []
    assert untranslated(ui_text(page), "zh-CN", data) == []


def test_a_night_shift_is_handed_over_and_the_next_operator_acknowledges(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    data = "\n".join([city.text(), LOG_LINE, WORDS, DISPUTE])
    elder = city.elder_in(0)
    incident_id, _ = deployment.raise_alarm(elder["elder_id"], "fall")

    contexts.append(laptop := desk(browser, LAPTOP))
    page = laptop.new_page()
    errors = watch_errors(page)
    page.goto(f"{deployment.url}/duty")
    login(page, *OPERATOR)
    expect(page.locator("#duty-who")).to_contain_text("当前无人值班")
    expect(page.locator(f'#sheet-incidents li[data-incident-id="{incident_id}"]')).to_contain_text(ZH["alarm.fall"])
    page.click("#duty-start")
    expect(page.locator("#duty-status")).to_have_attribute("data-state", "on_duty")
    expect(page.locator("#duty-who")).to_contain_text(OPERATOR[0])
    page.fill("#log-text", LOG_LINE)
    page.click("#log-add")
    expect(page.locator("#sheet-log")).to_contain_text(LOG_LINE)
    expect(page.locator("#log-text")).to_have_value("")
    fits(page)
    complete(page, data)
    screenshot(page, "duty-on-duty-zh")

    page.fill("#handover-words", WORDS)
    page.click("#duty-handover")
    expect(page.locator("#duty-status")).to_have_attribute("data-state", "handed_over")
    expect(page.locator("#sheet-title")).to_contain_text("交班单")
    expect(page.locator("#sheet-facts")).to_contain_text(WORDS)
    expect(page.locator("#sheet-facts")).to_contain_text(ZH["duty.not_acknowledged"])
    expect(page.locator(f'#sheet-incidents li[data-incident-id="{incident_id}"]')).to_be_visible()
    expect(page.locator("#log-form")).to_be_hidden()
    complete(page, data)
    page.emulate_media(media="print")  # the printed sheet: the sheet alone
    expect(page.locator("#topbar")).to_be_hidden()
    expect(page.locator("#duty-status")).to_be_hidden()
    expect(page.locator("#sheet-log")).to_contain_text(LOG_LINE)
    screenshot(page, "duty-handover-print-zh")
    page.emulate_media(media="screen")

    contexts.append(handset := phone(browser, float(elder["lat"]), float(elder["lon"])))
    other = handset.new_page()
    other_errors = watch_errors(other)
    other.goto(f"{deployment.url}/duty")
    login(other, *NEXT)
    expect(other.locator("#takeover-form")).to_be_visible()
    expect(other.locator("#sheet-facts")).to_contain_text(WORDS)
    fits(other)
    complete(other, data)
    screenshot(other, "duty-take-over-phone-zh")
    other.fill("#takeover-words", DISPUTE)
    other.click("#duty-take-over")
    expect(other.locator("#duty-status")).to_have_attribute("data-state", "on_duty")
    expect(other.locator("#duty-who")).to_contain_text(NEXT[0])
    handed = other.locator("#history-list li.shift").nth(1)
    expect(handed).to_contain_text(ZH["duty.acknowledged_by"].replace("{name}", NEXT[0]))
    expect(handed).to_contain_text(ZH["duty.disputed_tag"])
    handed.locator("button.shift-open").click()  # the sheet of the shift handed over, as it was handed over
    expect(other.locator("#sheet-facts")).to_contain_text(DISPUTE)
    expect(other.locator("#sheet-back")).to_be_visible()
    fits(other)
    complete(other, data)

    # the first operator's page follows without a reload (the live feed)
    expect(page.locator("#duty-who")).to_contain_text(NEXT[0])
    expect(page.locator("#duty-status")).to_have_attribute("data-state", "on_duty")
    expect(page.locator("#handover-form")).to_be_hidden()  # not theirs any more
    screenshot(page, "duty-zh")
    page.select_option("#lang-select", "en")  # and the page is whole in English too
    expect(page.locator("#duty-who")).to_contain_text(f"{NEXT[0]} on the")
    assert missing_keys(page) == []
    assert untranslated(ui_text(page), "en", data) == []
    screenshot(page, "duty-en")
    assert errors == [] and other_errors == []
