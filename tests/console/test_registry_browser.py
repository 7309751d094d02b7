"""The registry page in a real browser (Debian's Chromium through Playwright) against a real ``anxin serve`` with
its SIA DC-09 listener: an operator enrols a new elder in Chinese, binds an encrypted SIA DC-09 pendant to them,
presses 测试呼叫, and a real DC-09 frame sent to the listener shows up as a passed test on the page and as a test
alarm marked 测试 on the console. The page also fits a 360x640 phone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from simulators import city as city_generator
from tests.conftest import free_port
from tests.console.browser import (
    LAPTOP,
    OPERATOR,
    City,
    Deployment,
    desk,
    login,
    missing_keys,
    open_console,
    phone,
    press_sos,
    screenshot,
    watch_errors,
)

pytestmark = pytest.mark.process

PENDANT = "7A11C0DE"
KEY = "8899AABBCCDDEEFF0011223344556677"
NAME = "林秀珍"


def resident_id(first17: str) -> str:
    """A resident identity number with its check character (GB 11643-1999, ISO 7064 MOD 11-2)."""
    total = sum(int(digit) * (2 ** (17 - i) % 11) for i, digit in enumerate(first17))
    return first17 + "10X98765432"[total % 11]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return City(city_generator.generate(tmp_path_factory.mktemp("city"), seed=7, elders=20, caregivers=4, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    dc09 = free_port()
    running = Deployment(tmp_path_factory.mktemp("server") / "data", city.files, ANXIN_DC09_PORT=str(dc09))
    running.dc09_port = dc09  # type: ignore[attr-defined]
    yield running
    running.close()


def test_an_operator_enrols_an_elder_binds_a_pendant_and_test_calls_it(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    neighbour = city.elders[0]
    contexts.append(context := desk(browser, LAPTOP))
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{deployment.url}/registry")
    login(page, *OPERATOR)
    expect(page.locator("#registry-view")).to_be_visible()

    # enrol: the server proposes the id
    page.click("#new-elder")
    expect(page.locator("#elder-heading")).to_have_text("新建老人档案")
    elder_id = page.input_value("#f-elder-id")
    assert elder_id and elder_id not in {e["elder_id"] for e in city.elders}
    page.fill("#f-name", NAME)
    page.fill("#f-phone", "13905961234")
    page.fill("#f-resident-id", resident_id("35060219420315002")[:-1] + "0")
    expect(page.locator("#f-resident-id-hint")).to_have_text("身份证号校验位不符，请核对")
    page.fill("#f-resident-id", resident_id("35060219420315002"))
    expect(page.locator("#f-resident-id-hint")).to_have_text("身份证号校验通过")
    page.fill("#f-birth-date", "1942-03-15")
    page.select_option("#f-lives-with", "alone")
    page.fill("#f-address", neighbour["address"] + "隔壁")
    page.fill("#f-community", neighbour["community"])
    page.fill("#f-lat", neighbour["lat"])
    page.fill("#f-lon", neighbour["lon"])
    page.check('#f-risk-flags input[value="living_alone"]')
    page.click("#contact-add")
    page.fill("#contacts .contact-name", "林建国")
    page.fill("#contacts .contact-phone", "13905960001")
    page.fill("#contacts .contact-relation", "儿子")
    page.check("#contacts .contact-app")
    page.click("#elder-save")
    expect(page.locator("#registry-notice")).to_contain_text(f"已建档：{NAME}")
    saved = deployment.get(f"/api/elders/{elder_id}")
    assert saved["resident_id"] == resident_id("35060219420315002") and saved["lives_with"] == "alone"
    assert saved["contacts"] == [{"name": "林建国", "phone": "13905960001", "relation": "儿子", "app": True}]

    # bind the pendant, with its key
    expect(page.locator("#devices-panel")).to_be_visible()
    page.select_option("#bind-protocol", "sia-dc09")
    page.fill("#bind-device-id", PENDANT)
    page.fill("#bind-key", KEY)
    page.click("#bind-submit")
    row = page.locator(f'#devices-body tr[data-device-id="{PENDANT}"]')
    expect(row).to_contain_text("已加密")

    # 测试呼叫, then the pendant's real frame on the SIA listener
    row.get_by_role("button", name="测试呼叫").click()
    expect(row.locator(".device-test")).to_contain_text("请老人现在按下求助按钮")
    ack = press_sos(deployment.dc09_port, PENDANT, KEY)  # type: ignore[attr-defined]
    assert b'"*ACK"0001' in ack, ack  # an encrypted ACK: the listener knew the new key
    expect(row.locator(".test-passed")).to_contain_text("测试通过", timeout=10_000)
    expect(row.locator(".test-passed")).to_contain_text("紧急呼叫")
    screenshot(page, "registry-test-passed-zh")
    assert not missing_keys(page), missing_keys(page)

    # the console: the test alarm arrived, marked 测试, on nobody's queue
    console, console_errors = open_console(context, deployment.url)
    closing = console.locator("#closing-body tr").filter(has_text=NAME)
    expect(closing).to_contain_text("测试")
    expect(console.locator("#queue-body tr").filter(has_text=NAME)).to_have_count(0)
    incident_id = [i for i in deployment.get("/api/incidents?limit=50")["incidents"] if i["elder_id"] == elder_id]
    assert len(incident_id) == 1 and incident_id[0]["test"] and incident_id[0]["state"] == "closed"
    assert not errors and not console_errors, errors + console_errors

    # the same page on a phone: nothing wider than the screen
    contexts.append(handset := phone(browser, float(neighbour["lat"]), float(neighbour["lon"])))
    small = handset.new_page()
    small.goto(f"{deployment.url}/registry")
    login(small, *OPERATOR)
    small.fill("#find", NAME)
    small.locator("#found-body tr").filter(has_text=elder_id).get_by_role("button", name="编辑").click()
    expect(small.locator(f'#devices-body tr[data-device-id="{PENDANT}"]')).to_contain_text("测试通过")
    assert small.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(small, "registry-phone-zh")
