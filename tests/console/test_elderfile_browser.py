"""The elder's file (/elder) in a real browser (Debian's Chromium through Playwright) against a real ``anxin serve``
with its watch port open: an operator opens an elder's file from the console at 1366×768, says why, reads the
sections and the incident on the timeline, filters it; a supervisor on a 360×640 phone reads the readings a
real watch frame reported as charts, prints and exports the PDF. Both languages complete."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from simulators import city as city_generator
from tests.conftest import free_port
from tests.console.browser import (
    LAPTOP,
    PHONE,
    SUPERVISOR,
    City,
    Deployment,
    desk,
    login,
    missing_keys,
    open_console,
    rows,
    screenshot,
    ui_text,
    untranslated,
    watch_errors,
)

pytestmark = pytest.mark.process

#: what a watch says of its wearer (gateway.watch: bphrt is blood pressure and heart rate, oxygen the SpO2)
HEALTH_FRAMES = ("bphrt,128,82,75,,,,", "bphrt,135,88,80,,,,", "oxygen,0,97", "bphrt,122,79,70,,,,")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return City(city_generator.generate(tmp_path_factory.mktemp("city"), seed=8, elders=30, caregivers=6, clinics=1))


@pytest.fixture(scope="module")
def watch_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City, watch_port: int) -> Iterator[Deployment]:
    running = Deployment(tmp_path_factory.mktemp("server") / "data", city.files, ANXIN_WATCH_PORT=str(watch_port))
    yield running
    running.close()


def _watch_wearer(city: City) -> tuple[dict[str, str], str]:
    """An elder wearing a watch, and the watch's id."""
    device = next(d for d in rows(city.files["devices"]) if d["protocol"] == "watch")
    return next(e for e in city.elders if e["elder_id"] == device["elder_id"]), device["device_id"]


def _send_readings(deployment: Deployment, port: int, watch: str) -> None:
    """The watch's frames on its port, then until the journal holds them all (a watch is not answered for
    readings: the journal says when they are recorded)."""
    before = _readings(deployment, watch)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"".join(f"[3G*{watch}*{len(c):04X}*{c}]".encode("ascii") for c in HEALTH_FRAMES))
        deadline = time.monotonic() + 10
        while _readings(deployment, watch) < before + len(HEALTH_FRAMES):
            assert time.monotonic() < deadline, "the watch's readings were not recorded"
            time.sleep(0.05)


def _readings(deployment: Deployment, watch: str) -> int:
    """The watch's readings on record, as a supervisor reads the journal (health data: not an admin's)."""
    supervisor = deployment.headers(deployment.token(*SUPERVISOR))
    entries = deployment.http.get("/api/journal?limit=5000", headers=supervisor).json()["entries"]
    return sum(1 for e in entries if e["kind"] == "elder.health" and e["payload"]["device_id"] == watch)


def check_language(page: Page, language: str, data: str) -> None:
    page.select_option("#lang-select", language)
    expect(page.locator("html")).to_have_attribute("lang", language)  # set, translated and redrawn at once
    assert missing_keys(page) == []
    assert untranslated(ui_text(page), language, data) == [], language


def test_an_operator_opens_the_file_from_the_console_says_why_and_filters_the_timeline(
    deployment: Deployment, browser: Browser, city: City
) -> None:
    elder, _ = _watch_wearer(city)
    incident_id, _ = deployment.raise_alarm(elder["elder_id"], "fall")
    context = desk(browser, LAPTOP)
    try:
        console, errors = open_console(context, deployment.url)
        console.locator(f'#queue-body tr[data-incident-id="{incident_id}"]').click()
        link = console.locator("#record .record-name a.file-link")
        expect(link).to_contain_text(elder["name"])
        with context.expect_page() as opened:
            link.click()
        page = opened.value
        file_errors = watch_errors(page)
        expect(page.locator("#why-view")).to_be_visible()  # the tab kept the login; the reason comes first
        expect(page.locator("#file-view")).to_be_hidden()
        page.check('input[name=why][value="incident"]')
        page.click("#why-submit")
        expect(page.locator("#file-view")).to_be_visible()
        expect(page.locator("#file-name")).to_have_text(elder["name"])
        expect(page.locator("#file-why")).to_contain_text("处置警情")
        for part in ("identity", "home", "care", "contacts", "devices", "vouchers", "assessments", "health"):
            expect(page.locator(f"#sec-{part} .body")).not_to_be_empty()
        expect(page.locator("#sec-home")).to_contain_text(elder["address"])
        expect(page.locator("#sec-health")).to_contain_text("健康数据仅主管可见")  # operators: the alarm, not the chart
        item = page.locator(f'#timeline li[data-incident-id="{incident_id}"][data-kind="incident.opened"]')
        expect(item).to_contain_text("报警：跌倒")
        viewed = [e for e in deployment.get("/api/journal?limit=5000")["entries"] if e["kind"] == "elder.viewed"]
        assert any(e["payload"]["what"] == "file" and e["payload"]["why"] == "incident" for e in viewed)

        page.click('#timeline-filters [data-filter="calls"]')
        expect(page.locator('#timeline-filters [data-filter="calls"]')).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#timeline-empty")).to_be_visible()
        page.click('#timeline-filters [data-filter="alarms"]')
        expect(item).to_be_visible()
        expect(page.locator("#timeline li.section-registry")).to_have_count(0)
        data = city.text()
        for language in ("en", "zh-CN"):
            check_language(page, language, data)
        assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
        screenshot(page, "elder-file-zh")

        console.keyboard.press("Escape")
        console.keyboard.press("i")  # a search hit links to the file too
        console.keyboard.type(elder["phone"][-5:])
        hit_link = console.locator(f'#new-incident a.file-link[data-elder-id="{elder["elder_id"]}"]')
        expect(hit_link).to_have_attribute("href", f"/elder?id={elder['elder_id']}")
        expect(hit_link).to_have_text("档案")

        page.reload()  # the reason is remembered for the tab: the file, not the question
        expect(page.locator("#file-view")).to_be_visible()
        expect(page.locator("#why-view")).to_be_hidden()
        assert errors == [] and file_errors == []
    finally:
        context.close()


def test_a_supervisor_on_a_phone_sees_the_readings_as_charts_prints_and_exports(
    deployment: Deployment, browser: Browser, city: City, watch_port: int
) -> None:
    elder, watch = _watch_wearer(city)
    _send_readings(deployment, watch_port, watch)
    context = desk(browser, PHONE)
    try:
        page = context.new_page()
        errors = watch_errors(page)
        page.goto(f"{deployment.url}/elder?id={elder['elder_id']}")
        login(page, *SUPERVISOR)
        page.check('input[name=why][value="case_conference"]')
        page.click("#why-submit")
        expect(page.locator("#file-view")).to_be_visible()
        pressure = page.locator('figure[data-chart="blood_pressure"]')
        expect(pressure.locator("polyline")).to_have_count(2)  # systolic and diastolic on one chart
        expect(pressure).to_contain_text("mmHg")
        expect(page.locator('figure[data-chart="heart_rate"] circle')).to_have_count(3)
        expect(page.locator('figure[data-chart="spo2"]')).to_contain_text("血氧")
        identity = page.locator("#sec-identity").bounding_box()
        home = page.locator("#sec-home").bounding_box()
        assert identity and home and abs(identity["x"] - home["x"]) < 1 and home["y"] > identity["y"]  # stacked
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        data = city.text()
        for language in ("en", "zh-CN"):
            check_language(page, language, data)
        screenshot(page, "elder-file-phone-zh")
        pressure.scroll_into_view_if_needed()
        screenshot(page, "elder-file-chart-zh")

        page.emulate_media(media="print")
        expect(page.locator("#file-pdf")).to_be_hidden()
        expect(page.locator("#topbar")).to_be_hidden()
        expect(page.locator("#timeline-filters")).to_be_hidden()
        expect(page.locator("#file-printed")).to_be_visible()
        page.emulate_media(media="screen")

        with page.expect_download() as download:
            page.click("#file-pdf")
        assert download.value.suggested_filename == f"elder-{elder['elder_id']}.pdf"
        pdf = download.value.path().read_bytes()
        assert pdf.startswith(b"%PDF")
        assert errors == []
    finally:
        context.close()
