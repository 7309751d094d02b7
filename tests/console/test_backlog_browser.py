"""The backlog on the operator's console, in Chinese at 1366×768: with nobody on duty a fall and an SOS wait,
numbered in the order they will be offered (the fall first, though it came second); a caregiver coming on duty
on the phone page is offered the fall at once, before anyone clicks anything. Headless Chromium (Debian's
``/usr/bin/chromium``) against a real ``anxin serve``; screenshots go to ``ANXIN_SCREENSHOTS`` (else
``docs/screenshots``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from simulators import city as city_generator
from tests.console.browser import (
    City,
    Deployment,
    catalogue,
    desk,
    offset,
    open_console,
    phone_on_duty,
    screenshot,
)

pytestmark = pytest.mark.process

ZH = catalogue("zh-CN")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return City(city_generator.generate(tmp_path_factory.mktemp("city"), seed=23, elders=40, caregivers=6, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    running = Deployment(tmp_path_factory.mktemp("server") / "data", city.files)
    yield running
    running.close()


def row(page: Page, incident_id: str) -> Any:
    return page.locator(f'#queue-body tr[data-incident-id="{incident_id}"]')


def test_waiting_incidents_are_numbered_and_the_first_goes_to_whoever_comes_on_duty(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    first, second = city.spare_elders(2, set())
    contexts.append(console_context := desk(browser))
    console, console_errors = open_console(console_context, deployment.url)
    sos_id, _ = deployment.raise_alarm(second["elder_id"], "sos")
    fall_id, _ = deployment.raise_alarm(first["elder_id"], "fall")
    waiting = ZH["queue.backlog"]
    expect(row(console, fall_id).locator(".col-assignment")).to_have_text(waiting.replace("{n}", "1"))
    expect(row(console, sos_id).locator(".col-assignment")).to_have_text(waiting.replace("{n}", "2"))
    row(console, fall_id).click()
    flag = console.locator("#detail-flags .flag-manual")
    expect(flag).to_contain_text(ZH["flag.backlog"].split("（")[0])
    expect(flag).to_contain_text("第 1 位")
    expect(flag).to_contain_text("技能")  # the reason, in Chinese: nobody with the skill within reach
    screenshot(console, "console-backlog-zh")

    home = float(first["lat"]), float(first["lon"])
    nurse = next(r for r in city.responders if r["kind"] == "caregiver" and "nursing" in r["skills"].split(";"))
    deployment.caregiver(nurse["responder_id"])
    handset, phone_errors = phone_on_duty(browser, deployment.url, nurse["responder_id"], *offset(*home, 300), contexts)
    expect(handset.locator("#offer")).to_be_visible()  # nobody clicked: coming on duty was enough
    expect(handset.locator("#offer-type")).to_contain_text(ZH["alarm.fall"])
    expect(row(console, fall_id).locator(".col-assignment")).to_contain_text(nurse["name"])
    expect(row(console, sos_id).locator(".col-assignment")).to_have_text(waiting.replace("{n}", "1"))
    expect(flag).to_have_count(0)
    assert deployment.get(f"/api/incidents/{fall_id}")["waiting"] is False
    assert console_errors == [] and phone_errors == []
