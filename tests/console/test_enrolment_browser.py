"""An elder's first day in the registry, in a real browser and in Chinese, end to end: an operator enrols her on the
registry page, binds an encrypted SIA DC-09 pendant, test-calls it, and a real DC-09 frame on the listener shows as a
test alarm marked 测试 on the console; an assessor assesses her on /assess and her care level and an SOS alarm's
priority change; her file (/elder) shows the test alarm and the assessment on its timeline. Laptop screens
(1366×768). Headless Chromium (Debian's ``/usr/bin/chromium``) against a real ``anxin serve``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from simulators import city as city_generator
from tests.conftest import free_port
from tests.console.browser import (
    LAPTOP,
    OPERATOR,
    SEVERE_FORM,
    City,
    Deployment,
    catalogue,
    desk,
    login,
    missing_keys,
    open_console,
    press_sos,
    screenshot,
    watch_errors,
)

pytestmark = pytest.mark.process

ZH = catalogue("zh-CN")
PENDANT = "5E1DA7A0"
KEY = "00112233445566778899AABBCCDDEEFF"
NAME = "郑月娥"
ASSESSOR = ("as02", "assessor-pass-2")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return City(city_generator.generate(tmp_path_factory.mktemp("city"), seed=29, elders=20, caregivers=4, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    dc09 = free_port()
    running = Deployment(tmp_path_factory.mktemp("server") / "data", city.files, ANXIN_DC09_PORT=str(dc09))
    running.dc09_port = dc09  # type: ignore[attr-defined]
    running.account(*ASSESSOR, role="assessor")
    yield running
    running.close()


def enrol(page: Page, neighbour: dict[str, str]) -> str:
    page.click("#new-elder")
    expect(page.locator("#f-elder-id")).not_to_have_value("")  # the server proposes the id
    elder_id = page.input_value("#f-elder-id")
    page.fill("#f-name", NAME)
    page.fill("#f-phone", "13905967788")
    page.fill("#f-birth-date", "1956-09-12")  # 70: age alone raises nothing
    page.select_option("#f-lives-with", "spouse")
    page.fill("#f-address", neighbour["address"] + "对门")
    page.fill("#f-community", neighbour["community"])
    page.fill("#f-lat", neighbour["lat"])
    page.fill("#f-lon", neighbour["lon"])
    page.click("#elder-save")
    expect(page.locator("#registry-notice")).to_contain_text(NAME)
    return elder_id


def test_enrol_bind_test_call_assess_and_read_it_all_on_her_file(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    contexts.append(laptop := desk(browser, LAPTOP))
    page = laptop.new_page()
    errors = watch_errors(page)
    page.goto(f"{deployment.url}/registry")
    login(page, *OPERATOR)
    elder_id = enrol(page, city.elders[0])

    # bind the pendant and test-call it: a real frame on the SIA listener passes the test
    page.select_option("#bind-protocol", "sia-dc09")
    page.fill("#bind-device-id", PENDANT)
    page.fill("#bind-key", KEY)
    page.click("#bind-submit")
    row = page.locator(f'#devices-body tr[data-device-id="{PENDANT}"]')
    row.get_by_role("button", name="测试呼叫").click()
    expect(row.locator(".device-test")).to_contain_text("请老人现在按下求助按钮")
    assert b'"*ACK"0001' in press_sos(deployment.dc09_port, PENDANT, KEY)  # type: ignore[attr-defined]
    expect(row.locator(".test-passed")).to_contain_text("测试通过", timeout=10_000)

    # the console: the test alarm arrived marked 测试, on nobody's queue
    console, console_errors = open_console(laptop, deployment.url)
    closing = console.locator("#closing-body tr").filter(has_text=NAME)
    expect(closing).to_contain_text(ZH["flag.test"])
    expect(closing).to_contain_text(ZH["reason.test_passed"])  # its outcome in words, not "test passed"
    expect(console.locator("#queue-body tr").filter(has_text=NAME)).to_have_count(0)
    assert deployment.sos_priority(elder_id) == 2

    # the assessor: severe disability; her care level and an SOS's priority change
    contexts.append(assessor_screen := desk(browser, LAPTOP))
    assess = assessor_screen.new_page()
    assess_errors = watch_errors(assess)
    assess.goto(f"{deployment.url}/assess")
    login(assess, *ASSESSOR)
    expect(assess.locator("#due li").first).to_be_visible()  # logged in, the form and the list loaded
    assess.fill("#find-input", NAME)
    assess.click("#find-form button[type=submit]")
    assess.locator(f'#found button[data-elder-id="{elder_id}"]').click()
    expect(assess.locator("#reason")).to_have_value("initial")
    for item, value in SEVERE_FORM.items():
        assess.locator(f'.item[data-item="{item}"] input[value="{value}"]').check()
    expect(assess.locator("#summary")).to_contain_text(ZH["assess.level.3"])
    assess.click("#save")
    result = assess.locator("#result")
    sos = ZH["assess.triage_changed"].replace("{alarm}", ZH["alarm.sos"])
    expect(result).to_contain_text(sos.replace("{before}", "2").replace("{after}", "1"))
    assert deployment.get(f"/api/elders/{elder_id}")["care_level"] == 3
    assert deployment.sos_priority(elder_id) == 1

    # her file: the test alarm and the assessment on the timeline
    file = laptop.new_page()
    file_errors = watch_errors(file)
    file.goto(f"{deployment.url}/elder?id={elder_id}")
    login(file, *OPERATOR)  # a tab of its own: its own login (one opened from the console shares it)
    file.check('input[name=why][value="assessment"]')
    file.click("#why-submit")
    expect(file.locator("#file-name")).to_have_text(NAME)
    assessed = file.locator('#timeline li[data-kind="assessment.recorded"]')
    expect(assessed).to_contain_text(ZH["assess.level.3"])
    tested = file.locator('#timeline li[data-kind="incident.opened"]').filter(has_text=ZH["flag.test"])
    expect(tested).to_have_count(1)
    expect(tested).to_contain_text(ZH["alarm.sos"])
    expect(file.locator('#timeline li[data-kind="device.test_started"]')).to_contain_text(PENDANT)
    passed = file.locator('#timeline li[data-kind="incident.resolved"]').filter(has_text=ZH["reason.test_passed"])
    expect(passed).to_have_count(1)
    expect(file.locator("#timeline")).not_to_contain_text("test passed")
    expect(file.locator("#sec-assessments")).to_contain_text("3")
    screenshot(file, "elder-file-after-enrolment-zh")
    assert missing_keys(file) == [] and missing_keys(assess) == []
    assert errors == [] and console_errors == [] and assess_errors == [] and file_errors == []
