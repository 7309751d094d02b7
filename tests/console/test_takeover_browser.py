"""Two things the phone and the console say when the engine keeps someone coming sooner, in Chinese: an offer
nobody else can take keeps ringing past its time (the console says so, the phone still shows it and its
accept works); a caregiver walking across the district is called back when a colleague near the elder comes
on duty and takes the job over (the phone says turn back; the console names the new one). Headless Chromium
(Debian's ``/usr/bin/chromium``) against a real ``anxin serve`` whose offers last 6 s; screenshots go to
``ANXIN_SCREENSHOTS`` (else ``docs/screenshots``)."""

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
OFFER_S = 6


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return City(city_generator.generate(tmp_path_factory.mktemp("city"), seed=29, elders=40, caregivers=8, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    running = Deployment(tmp_path_factory.mktemp("server") / "data", city.files, ANXIN_OFFER_TIMEOUT_S=str(OFFER_S))
    yield running
    running.close()


def row(page: Page, incident_id: str) -> Any:
    return page.locator(f'#queue-body tr[data-incident-id="{incident_id}"]')


def off_duty(handset: Page) -> None:
    handset.click("#duty-button")
    expect(handset.locator("#duty-button")).to_have_attribute("aria-pressed", "false")


def test_an_offer_keeps_ringing_then_a_nearer_colleague_takes_over(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    (first,) = city.spare_elders(1, set())
    home = float(first["lat"]), float(first["lon"])
    caregivers = sorted((r for r in city.responders if r["kind"] == "caregiver"), key=lambda r: r["travel"] != "walk")
    walker, near = caregivers[:2]  # the first on foot when the city has one
    contexts.append(console_context := desk(browser, {"width": 1366, "height": 768}))
    console, console_errors = open_console(console_context, deployment.url)

    # one caregiver on duty, 2.5 km away: nobody else to ask, so the offer keeps ringing
    deployment.caregiver(walker["responder_id"])
    far_phone, far_errors = phone_on_duty(browser, deployment.url, walker["responder_id"], *offset(*home, 2500),
                                          contexts)  # fmt: skip
    incident_id, _ = deployment.raise_alarm(first["elder_id"], "sos")
    expect(far_phone.locator("#offer")).to_be_visible()
    ringing = ZH["assignment.held"].replace("{n}", "1")
    expect(row(console, incident_id).locator(".col-assignment")).to_contain_text(ringing, timeout=3_000 * OFFER_S)
    expect(far_phone.locator("#offer")).to_be_visible()  # still there, with time to answer again
    expect(far_phone.locator("#accept-button")).to_be_enabled()
    screenshot(console, "console-offer-held-zh")
    far_phone.click("#accept-button")
    expect(far_phone.locator("#job")).to_be_visible()

    # a colleague 150 m from the elder comes on duty: asked to take over, accepts; the walker is called back
    deployment.caregiver(near["responder_id"])
    near_phone, near_errors = phone_on_duty(browser, deployment.url, near["responder_id"], *offset(*home, 150),
                                            contexts)  # fmt: skip
    expect(near_phone.locator("#offer")).to_be_visible()
    near_phone.click("#accept-button")
    expect(near_phone.locator("#job")).to_be_visible()
    expect(far_phone.locator("#phone-message")).to_have_text(ZH["phone.closed_taken_over"])
    expect(far_phone.locator("#job")).to_be_hidden()
    expect(row(console, incident_id).locator(".col-assignment")).to_contain_text(near["name"])
    expect(row(console, incident_id).locator(".col-assignment")).not_to_contain_text(walker["name"])
    screenshot(far_phone, "phone-taken-over-zh")
    view = deployment.get(f"/api/incidents/{incident_id}")
    states = {a["responder_id"]: a["state"] for a in view["assignments"]}
    assert states == {walker["responder_id"]: "withdrawn", near["responder_id"]: "accepted"}
    assert console_errors == far_errors == near_errors == []
    off_duty(far_phone)
