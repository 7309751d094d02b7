"""A referral to a clinic's green channel in a real browser, in Chinese: the operator refers a fall to the
proposed clinic from the console on a laptop (1366×768); the clinic's desk, on a phone (360×640), accepts,
says the patient arrived and records the outcome; the console shows each step. Headless Chromium (Debian's
``/usr/bin/chromium``) against a real ``anxin serve``; screenshots go to ``ANXIN_SCREENSHOTS`` (else
``docs/screenshots``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from simulators import city as city_generator
from tests.console.browser import (
    LAPTOP,
    City,
    Deployment,
    catalogue,
    desk,
    login,
    missing_keys,
    open_console,
    phone,
    screenshot,
    ui_text,
    untranslated,
    watch_errors,
)

pytestmark = pytest.mark.process

ZH = catalogue("zh-CN")
DESK_ACCOUNT = ("k01desk", "clinic-pass-1")
NOTE = "右髋疼痛，无法站立"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return City(city_generator.generate(tmp_path_factory.mktemp("city"), seed=17, elders=60, caregivers=8, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    running = Deployment(tmp_path_factory.mktemp("server") / "data", city.files)
    running.account(*DESK_ACCOUNT, role="clinic", responder_id="k01")
    yield running
    running.close()


def fits(page: Page) -> None:
    """Nothing wider than the screen: no sideways scrolling."""
    wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert wide <= 0, f"{wide}px wider than the screen"


def complete(page: Page, data: str) -> None:
    assert missing_keys(page) == []
    text = re.sub(r"\b[0-9A-F]{8,}\b", "", ui_text(page))  # device ids ("ADD18B3166") are no English words
    assert untranslated(text, "zh-CN", data) == []


def test_an_operator_refers_and_the_clinic_accepts_and_records_arrival_and_outcome(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    data = "\n".join([city.text(), NOTE])
    elder = city.elder_in(0)
    incident_id, _ = deployment.raise_alarm(elder["elder_id"], "fall")
    clinic_name = next(r["name"] for r in city.responders if r["responder_id"] == "k01")

    contexts.append(laptop := desk(browser, LAPTOP))
    console, console_errors = open_console(laptop, deployment.url)
    console.click(f'#queue-body tr[data-incident-id="{incident_id}"]')
    clinic = console.locator("#clinic")
    expect(clinic.locator('p.clinic[data-clinic-id="k01"]')).to_contain_text(clinic_name)
    console.fill("#refer-note", NOTE)
    clinic.locator('button.refer[data-clinic-id="k01"]').click()
    referral = clinic.locator("li.referral")
    expect(referral).to_have_attribute("data-state", "referred")
    expect(referral).to_contain_text(ZH["referral.referred"])
    expect(clinic.locator("button.refer")).to_have_count(0)  # one open referral at a time
    complete(console, data)

    contexts.append(handset := phone(browser, float(elder["lat"]), float(elder["lon"])))
    page = handset.new_page()
    errors = watch_errors(page)
    page.goto(f"{deployment.url}/clinic")
    login(page, *DESK_ACCOUNT)
    card = page.locator("li.referral")
    expect(card).to_have_attribute("data-state", "referred")
    expect(card).to_contain_text(ZH["alarm.fall"])
    expect(card).to_contain_text(NOTE)
    expect(card).not_to_contain_text(elder["name"])  # the name and medical notes come with accepting
    expect(page.locator("#clinic-name")).to_have_text(clinic_name)
    fits(page)
    complete(page, data)
    screenshot(page, "clinic-referred-phone")
    card.locator("button[data-action=accept]").click()
    expect(card).to_have_attribute("data-state", "accepted")
    expect(card.locator("h2")).to_contain_text(elder["name"])
    expect(referral).to_have_attribute("data-state", "accepted")  # the console follows
    card.locator("button[data-action=arrived]").click()
    expect(card).to_have_attribute("data-state", "arrived")
    card.locator("select[name=outcome]").select_option("admitted")
    card.locator("input[name=note]").fill("收住骨科")
    card.locator("button[data-action=outcome]").click()
    expect(card).to_have_attribute("data-state", "concluded")
    expect(card).to_contain_text(ZH["outcome.admitted"])
    fits(page)
    complete(page, data)
    screenshot(page, "clinic-concluded-phone")

    expect(referral).to_have_attribute("data-state", "concluded")
    expect(referral).to_contain_text(ZH["outcome.admitted"])
    expect(referral).to_contain_text("收住骨科")
    referral.scroll_into_view_if_needed()
    screenshot(console, "console-referral")

    page.set_viewport_size(LAPTOP)  # the same desk on a clinic's computer
    fits(page)
    assert errors == [] and console_errors == []
