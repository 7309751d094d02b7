"""The reports page in a real browser, in Chinese: a supervisor on a laptop (1366×768) opens /reports on a real
``anxin serve`` with alarms of this month in several communities, sees the key figures the API answers, the
charts drawn (a bar a day with the line of those answered within 60 s, the answer-time buckets, the outcomes),
the areas table, sorts it, changes the level to streets, downloads the workbook (its sheets read back with
openpyxl) and the PDF; the same page on a phone (360×640) fits the screen; an operator is told the page is not
for them. Headless Chromium (Debian's ``/usr/bin/chromium``); screenshots go to ``ANXIN_SCREENSHOTS`` (else
``docs/screenshots``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
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
    screenshot,
    ui_text,
    untranslated,
    watch_errors,
)

pytestmark = pytest.mark.process

ZH = catalogue("zh-CN")
#: alarms raised in turn: the first in a community of its own, the rest for elders anywhere in the city
ALARMS = (3, 2, 1)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return City(city_generator.generate(tmp_path_factory.mktemp("city"), seed=29, elders=40, caregivers=6, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    """A server whose month holds alarms in three communities: some answered, one a false alarm, one resolved."""
    running = Deployment(tmp_path_factory.mktemp("server") / "data", city.files)
    taken: set[str] = set()
    for index, count in enumerate(ALARMS):
        elders = [city.elder_in(index), *city.spare_elders(count - 1, taken)]
        for number, elder in enumerate(elders):
            incident_id, _ = running.raise_alarm(elder["elder_id"], "fall" if number else "sos")
            if number < 2:
                running.post(f"/api/incidents/{incident_id}/acknowledge", {})
            if number == 1:
                running.post(f"/api/incidents/{incident_id}/cancel", {"reason": "误按"})
    yield running
    running.close()


def fits(page: Page) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert wide <= 0, f"{wide}px wider than the screen"


def complete(page: Page, data: str) -> None:
    assert missing_keys(page) == []
    assert untranslated(ui_text(page), "zh-CN", data) == []


def open_reports(context: BrowserContext, url: str, who: tuple[str, str] = SUPERVISOR) -> tuple[Page, list[str]]:
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{url}/reports")
    login(page, *who)
    return page, errors


def _report(deployment: Deployment, by: str) -> dict[str, Any]:
    return deployment.get(f"/api/reports?by={by}")


def test_a_supervisor_reads_the_month_changes_the_level_and_downloads_the_workbook(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    report = _report(deployment, "community")
    assert report["totals"]["alarms"] == sum(ALARMS)
    contexts.append(laptop := desk(browser, LAPTOP))
    page, errors = open_reports(laptop, deployment.url)
    expect(page.locator("#reports-view")).to_be_visible()
    expect(page.locator('[data-figure="alarms"] dd')).to_have_text(str(sum(ALARMS)))
    expect(page.locator('[data-figure="outcomes.false_alarm"] dd')).to_have_text(
        str(report["totals"]["outcomes"]["false_alarm"])
    )
    expect(page.locator("#report-heading")).to_contain_text(ZH["report.heading"].split("}")[-1].strip())
    expect(page.locator("#report-about")).to_contain_text("按社区统计")
    # the charts: a bar a day of the month, the 60 s line over them; six buckets; six outcomes
    expect(page.locator("#chart-daily rect.bar")).to_have_count(len(report["days"]))
    expect(page.locator("#chart-daily polyline.line")).to_have_count(1)
    today = next(day for day in report["days"] if day["alarms"])
    begun = [day for day in report["days"] if day["day"] <= today["day"]]  # the line stops at today
    expect(page.locator("#chart-daily circle.dot")).to_have_count(len(begun))
    expect(page.locator(f'#chart-daily rect[data-day="{today["day"]}"]')).to_have_attribute(
        "data-alarms", str(sum(ALARMS))
    )
    expect(page.locator("#chart-buckets rect.bar")).to_have_count(6)
    expect(page.locator("#chart-outcomes rect.bar")).to_have_count(6)
    # the areas: one row per community, then sorted by alarms, the most first
    rows = page.locator("#areas-body tr")
    expect(rows).to_have_count(len(report["areas"]))
    page.click('button[data-sort="alarms"]')
    expect(page.locator('#areas-head th[aria-sort="descending"]')).to_contain_text(ZH["report.f.alarms"])
    most = sorted((a["figures"]["alarms"] for a in report["areas"]), reverse=True)
    expect(rows.first.locator("td").first).to_have_text(str(most[0]))
    assert [int(text) for text in rows.locator("td:nth-of-type(1)").all_inner_texts()] == most
    screenshot(page, "reports-laptop")
    page.screenshot(
        path=str(Path(screenshot(page, "reports-laptop")).with_name("reports-laptop-full.png")), full_page=True
    )
    complete(page, city.text())

    # by street: fewer rows, the level named
    streets = _report(deployment, "street")
    page.select_option("#report-by", "street")
    expect(page.locator("#report-about")).to_contain_text("按街道统计")
    expect(rows).to_have_count(len(streets["areas"]))
    assert "by=street" in page.url
    screenshot(page, "reports-streets-laptop")

    # the workbook, as the page downloads it
    with page.expect_download() as started:
        page.click("#download-xlsx")
    download = started.value
    assert download.suggested_filename == f"anxin-report-{report['period']['label']}-street.xlsx"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    book = openpyxl.load_workbook(saved)
    assert book.sheetnames == ["汇总", "分区", "类型", "来源", "每日", "人员"]
    areas = [row[:2] for row in book["分区"].iter_rows(min_row=2, values_only=True)]
    assert areas == [(" ".join(a["area"].split("/")) or "无地址", a["figures"]["alarms"]) for a in streets["areas"]]
    with page.expect_download() as started_pdf:
        page.click("#download-pdf")
    assert started_pdf.value.suggested_filename.endswith("-street.pdf")
    assert Path(started_pdf.value.path()).read_bytes().startswith(b"%PDF")
    expect(page.locator("#report-error")).to_have_text("")
    assert errors == []


def test_the_page_fits_a_phone(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    handset = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )  # fmt: skip
    contexts.append(handset)
    page, errors = open_reports(handset, deployment.url)
    expect(page.locator('[data-figure="alarms"] dd')).to_have_text(str(sum(ALARMS)))
    expect(page.locator("#chart-daily rect.bar").first).to_be_attached()
    fits(page)
    screenshot(page, "reports-phone")
    page.screenshot(
        path=str(Path(screenshot(page, "reports-phone")).with_name("reports-phone-full.png")), full_page=True
    )
    page.select_option("#report-mode", "range")
    expect(page.locator("#report-start")).to_be_visible()
    expect(page.locator("#report-month")).to_be_hidden()
    fits(page)
    # a span of days: today alone holds every alarm; a last day before the first is refused on the page
    today = next(day["day"] for day in _report(deployment, "community")["days"] if day["alarms"])
    page.fill("#report-start", today)
    page.fill("#report-end", today)
    page.locator("#report-end").dispatch_event("change")
    expect(page.locator("#report-heading")).to_contain_text(f"{today} 至 {today}")
    expect(page.locator('[data-figure="alarms"] dd')).to_have_text(str(sum(ALARMS)))
    assert f"start={today}" in page.url
    page.fill("#report-start", "2030-01-02")
    page.locator("#report-start").dispatch_event("change")
    expect(page.locator("#report-error")).to_have_text(ZH["report.range_wrong"])
    complete(page, city.text())
    assert errors == []


def test_the_page_is_whole_in_english(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    contexts.append(laptop := desk(browser, LAPTOP))
    page, errors = open_reports(laptop, deployment.url)
    expect(page.locator('[data-figure="alarms"] dd')).to_have_text(str(sum(ALARMS)))
    page.select_option("#lang-select", "en")
    expect(page.locator("#report-about")).to_contain_text("Community level")
    expect(page.locator("#chart-buckets text.tick").last).to_have_text("Over 3 min")
    names = page.locator("#chart-outcomes text.name")  # every outcome's name inside the chart
    chart = page.locator("#chart-outcomes svg").bounding_box()
    boxes = [names.nth(n).bounding_box() for n in range(6)]
    assert chart and all(box and box["x"] >= chart["x"] for box in boxes), (chart, boxes)
    assert missing_keys(page) == []
    assert untranslated(ui_text(page), "en", city.text()) == []
    screenshot(page, "reports-en-laptop")
    assert errors == []


def test_an_operator_is_told_the_reports_are_not_for_them(
    deployment: Deployment, browser: Browser, contexts: list[BrowserContext]
) -> None:
    contexts.append(laptop := desk(browser, LAPTOP))
    page, errors = open_reports(laptop, deployment.url, OPERATOR)
    expect(page.locator("#reports-denied")).to_be_visible()
    expect(page.locator("#reports-denied")).to_contain_text(ZH["report.denied_title"])
    expect(page.locator("#reports-view")).to_be_hidden()
    expect(page.locator("#reports-link")).to_be_hidden()
    assert errors == []
