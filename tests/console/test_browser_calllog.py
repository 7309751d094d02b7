"""The call log page (/calls) in a real browser, in Chinese, at the operator's 1366x768 and on a 360x640 phone:
the calls the PBX reported (answered at an extension after a queue, transferred, abandoned in the queue, missed)
listed newest first with their record in words, the elder's file and the incident linked, the 拨打 button
calling back with the call's id, the filters (period, direction, outcome, number or name) and the counts, the
links to the page from the console and the supervisor view; no overflow, no missing key, no English word, no
script error.

Headless Chromium (Debian's ``/usr/bin/chromium``, through Playwright) against a real ``anxin serve`` process
with a generated city; the calls are posted to POST /api/hotline/events as the PBX posts them. Two things the
server cannot be made to produce without a PBX are laid over its answers through Playwright's routing: an
outbound call placed three days ago (a call placed through the PBX and a past day), and the PBX link's state
with the dial it accepts (GET /api/telephony, POST /api/calls/dial). Screenshots go where ``ANXIN_SCREENSHOTS``
says (docs/screenshots by default).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, ViewportSize, expect

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
READY = {"configured": True, "connected": True, "extension": "8101", "can_dial": True}
OUTBOUND_ID = "out-three-days-ago"
UNKNOWN = "13912345678"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    out = tmp_path_factory.mktemp("city")
    return City(city_generator.generate(out, seed=31, elders=40, caregivers=4, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    data = tmp_path_factory.mktemp("server") / "data"
    running = Deployment(data, city.files)
    yield running
    running.close()


def event(deployment: Deployment, name: str, call_id: str, caller: str, **fields: str) -> None:
    deployment.post("/api/hotline/events", {"event": name, "call_id": call_id, "caller": caller, **fields})


@pytest.fixture(scope="module")
def calls(deployment: Deployment, city: City) -> dict[str, dict[str, str]]:
    """The morning's calls, oldest first: answered after a queue, transferred, abandoned, missed."""
    text = city.text()
    own = [e for e in city.elders if e["phone"] and text.count(e["phone"]) == 1]  # no household, no contact
    answered, abandoned, missed = own[1], own[3], own[5]
    event(deployment, "ringing", "c-answered", answered["phone"])
    event(deployment, "queued", "c-answered", answered["phone"], queue="12349")
    event(deployment, "answered", "c-answered", answered["phone"], extension="8101")
    event(deployment, "ended", "c-answered", answered["phone"], cause="16")
    event(deployment, "ringing", "c-transferred", UNKNOWN)
    event(deployment, "answered", "c-transferred", UNKNOWN, extension="8101")
    event(deployment, "transferred", "c-transferred", UNKNOWN, extension="8102")
    event(deployment, "ended", "c-transferred", UNKNOWN)
    event(deployment, "ringing", "c-abandoned", abandoned["phone"])
    event(deployment, "queued", "c-abandoned", abandoned["phone"], queue="12349")
    event(deployment, "ended", "c-abandoned", abandoned["phone"])
    event(deployment, "ringing", "c-missed", missed["phone"])
    event(deployment, "ended", "c-missed", missed["phone"])
    return {"c-answered": answered, "c-abandoned": abandoned, "c-missed": missed}


def outbound(elder: dict[str, str]) -> dict[str, Any]:
    """A call an operator placed through the PBX three days ago, as the call view shows it."""
    placed = time.time() - 3 * 86_400
    return {
        "call_id": OUTBOUND_ID, "caller": elder["phone"], "line": "", "state": "ended", "open": False,
        "drill": False, "started_at": placed, "answered_at": placed + 12, "answered_by": None,
        "ended_at": placed + 90, "direction": "out", "queue": "", "queued_at": None, "extension": "8101",
        "transfers": [], "cause": "16", "outcome": "answered", "wait_s": None, "dialed_by": "op01",
        "handler_user": None, "about_call": None, "elder_id": elder["elder_id"], "elder_name": elder["name"],
        "address": elder.get("address"), "caller_is": "elder", "contact": None, "offered": [], "picked": None,
        "incident_id": None, "kind": None, "text": "", "callback": None, "callback_outcome": None, "words": "",
    }  # fmt: skip


class Pbx:
    """The PBX's side of the contract, answered in the browser: the link is up, dials are kept, and the list
    of calls carries one outbound call of three days ago after the server's own."""

    def __init__(self, elder: dict[str, str]) -> None:
        self.dials: list[dict[str, Any]] = []
        self.extra = outbound(elder)

    def install(self, context: BrowserContext) -> None:
        context.route(re.compile(r"/api/calls\?"), self._calls)
        context.route(re.compile(r"/api/calls/dial$"), self._dial)
        context.route(re.compile(r"/api/telephony$"), lambda route: route.fulfill(status=200, json=READY))

    def _calls(self, route: Route) -> None:
        response = route.fetch()
        answer = response.json()
        route.fulfill(response=response, json={**answer, "calls": [*answer["calls"], self.extra]})

    def _dial(self, route: Route) -> None:
        self.dials.append(json.loads(route.request.post_data or "{}"))
        route.fulfill(status=201, json={"call_id": "out-2", "state": "dialing"})


def open_log(context: BrowserContext, url: str, who: tuple[str, str] = OPERATOR) -> tuple[Page, list[str]]:
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{url}/calls")
    login(page, *who)
    expect(page.locator("#calllog-list li").first).to_be_visible()
    return page, errors


def shown_ids(page: Page) -> list[str]:
    ids: list[str] = page.locator("#calllog-list li").evaluate_all("(rows) => rows.map((r) => r.dataset.callId)")
    return ids


def no_overflow(page: Page, viewport: ViewportSize) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    wide = page.evaluate(
        """(width) => [...document.querySelectorAll('#calllog-view *')]
          .filter((n) => n.getClientRects().length && n.getBoundingClientRect().right > width + 1)
          .map((n) => n.id || n.className)""",
        viewport["width"],
    )
    assert wide == []


def test_the_days_calls_are_listed_newest_first_in_words(
    deployment: Deployment, browser: Browser, city: City, calls: dict[str, dict[str, str]],
    contexts: list[BrowserContext],
) -> None:  # fmt: skip
    contexts.append(context := desk(browser, LAPTOP))
    pbx = Pbx(calls["c-answered"])
    pbx.install(context)
    page, errors = open_log(context, deployment.url)
    expect(page.locator("#calllog-list li")).to_have_count(4)
    assert shown_ids(page) == ["c-missed", "c-abandoned", "c-transferred", "c-answered"]
    expect(page.locator("#calllog-count")).to_have_text(ZH["calllog.count"].format(shown=4, total=4))

    answered = page.locator('#calllog-list li[data-call-id="c-answered"]')
    elder = calls["c-answered"]
    expect(answered.locator("a.calllog-elder")).to_have_text(elder["name"])
    expect(answered.locator("a.calllog-elder")).to_have_attribute("href", f"/elder?id={elder['elder_id']}")
    expect(answered.locator(".call-dir")).to_have_text(ZH["calldir.in"])
    expect(answered.locator(".call-outcome")).to_have_text(ZH["calloutcome.answered"])
    expect(answered.locator(".call-queue")).to_have_text(ZH["callrec.queue"].format(queue="12349"))
    expect(answered.locator(".call-answerer")).to_contain_text(ZH["callrec.ext"].format(extension="8101"))
    expect(answered.locator(".chip.calllog-unclassified")).to_have_text(ZH["calls.unclassified"])

    transferred = page.locator('#calllog-list li[data-call-id="c-transferred"]')
    expect(transferred.locator(".call-outcome")).to_have_text(ZH["calloutcome.transferred"])
    expect(transferred.locator(".call-transfer")).to_contain_text(ZH["callrec.ext"].format(extension="8102"))
    expect(transferred.locator(".calllog-who")).to_have_text(ZH["call.unknown_number"])

    abandoned = page.locator('#calllog-list li[data-call-id="c-abandoned"]')
    expect(abandoned.locator(".call-outcome")).to_have_text(ZH["calloutcome.abandoned"])
    missed = page.locator('#calllog-list li[data-call-id="c-missed"]')
    expect(missed.locator(".call-outcome")).to_have_text(ZH["calloutcome.missed"])
    expect(missed).not_to_contain_text(ZH["calls.unclassified"])
    assert missed.inner_text().count(ZH["calloutcome.missed"]) == 1  # said once, in the record
    incident_id = deployment.get("/api/calls/c-missed")["incident_id"]
    assert incident_id
    expect(missed.locator("a.calllog-incident")).to_have_attribute("href", f"/console#incident={incident_id}")

    # the 拨打 button calls the missed caller back, with the call it answers
    button = missed.locator("button.dial")
    expect(button).to_be_enabled()
    button.click()
    expect(page.locator("#dial-toast")).to_have_attribute("data-kind", "ok")
    assert pbx.dials == [{
        "number": re.sub(r"[^0-9+]", "", calls["c-missed"]["phone"]), "elder_id": calls["c-missed"]["elder_id"],
        "call_id": "c-missed", "incident_id": incident_id,
    }]  # fmt: skip

    no_overflow(page, LAPTOP)
    screenshot(page, "calllog-laptop-zh")
    assert missing_keys(page) == []
    assert untranslated(ui_text(page), "zh-CN", city.text()) == []
    assert errors == []


def test_the_filters_choose_the_rows_and_the_counts_follow(
    deployment: Deployment, browser: Browser, calls: dict[str, dict[str, str]], contexts: list[BrowserContext]
) -> None:
    contexts.append(context := desk(browser, LAPTOP))
    Pbx(calls["c-answered"]).install(context)
    page, errors = open_log(context, deployment.url)
    expect(page.locator("#calllog-list li")).to_have_count(4)
    assert OUTBOUND_ID not in shown_ids(page)  # three days ago is not today

    page.select_option("#calllog-period", "week")
    expect(page.locator("#calllog-list li")).to_have_count(5)
    assert shown_ids(page)[-1] == OUTBOUND_ID
    out = page.locator(f'#calllog-list li[data-call-id="{OUTBOUND_ID}"]')
    expect(out.locator(".call-dir")).to_have_text(ZH["calldir.out"])
    expect(out.locator(".call-dialed-by")).to_have_text(ZH["callrec.dialed_by"].format(name="op01"))

    page.select_option("#calllog-direction", "out")
    assert shown_ids(page) == [OUTBOUND_ID]
    expect(page.locator("#calllog-count")).to_have_text(ZH["calllog.count"].format(shown=1, total=5))
    page.select_option("#calllog-direction", "in")
    expect(page.locator("#calllog-list li")).to_have_count(4)

    page.select_option("#calllog-outcome", "missed")
    assert shown_ids(page) == ["c-missed"]
    page.select_option("#calllog-outcome", "abandoned")
    assert shown_ids(page) == ["c-abandoned"]
    page.select_option("#calllog-outcome", "")
    page.select_option("#calllog-direction", "")

    page.fill("#calllog-search", calls["c-abandoned"]["name"])
    assert shown_ids(page) == ["c-abandoned"]
    page.fill("#calllog-search", UNKNOWN[-6:])
    assert shown_ids(page) == ["c-transferred"]
    page.fill("#calllog-search", "没有这个人")
    expect(page.locator("#calllog-list li")).to_have_count(0)
    expect(page.locator("#calllog-empty")).to_be_visible()
    expect(page.locator("#calllog-count")).to_have_text(ZH["calllog.count"].format(shown=0, total=5))
    page.fill("#calllog-search", "")

    # a new call shows on the refresh button, the filters kept
    event(deployment, "ringing", "c-new", UNKNOWN)
    page.click("#calllog-refresh")
    expect(page.locator("#calllog-list li")).to_have_count(6)
    assert shown_ids(page)[0] == "c-new"
    expect(page.locator("#calllog-period")).to_have_value("week")
    event(deployment, "ended", "c-new", UNKNOWN)
    assert missing_keys(page) == []
    assert errors == []


def test_on_a_phone_the_cards_fit_the_screen(
    deployment: Deployment, browser: Browser, city: City, calls: dict[str, dict[str, str]],
    contexts: list[BrowserContext],
) -> None:  # fmt: skip
    contexts.append(context := desk(browser, PHONE))
    Pbx(calls["c-answered"]).install(context)
    page, errors = open_log(context, deployment.url)
    page.select_option("#calllog-period", "week")
    expect(page.locator(f'#calllog-list li[data-call-id="{OUTBOUND_ID}"]')).to_be_visible()
    no_overflow(page, PHONE)
    screenshot(page, "calllog-phone-zh")
    page.locator("#calllog-list li").last.scroll_into_view_if_needed()
    screenshot(page, "calllog-phone-zh-end")
    assert missing_keys(page) == []
    assert untranslated(ui_text(page), "zh-CN", city.text()) == []
    assert errors == []


def test_the_console_and_the_supervisor_view_link_to_the_log(
    deployment: Deployment, browser: Browser, calls: dict[str, dict[str, str]], contexts: list[BrowserContext]
) -> None:
    contexts.append(context := desk(browser, LAPTOP))
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{deployment.url}/supervisor")
    login(page, *SUPERVISOR)
    expect(page.locator("#calllog-link")).to_be_visible()
    expect(page.locator("#calls-card #calls-log-link")).to_have_attribute("href", "/calls")
    page.goto(f"{deployment.url}/console")
    expect(page.locator("#calls-panel #calls-log-link")).to_have_text(ZH["calls.log_link"])
    page.click("#calls-panel #calls-log-link")
    expect(page).to_have_url(re.compile(r"/calls$"))
    expect(page.locator("#calllog-list li").first).to_be_visible()  # the same login: no second one
    assert missing_keys(page) == []
    assert errors == []


def test_the_log_speaks_english(
    deployment: Deployment, browser: Browser, city: City, calls: dict[str, dict[str, str]],
    contexts: list[BrowserContext],
) -> None:  # fmt: skip
    en = catalogue("en")
    contexts.append(context := desk(browser, LAPTOP))
    Pbx(calls["c-answered"]).install(context)
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{deployment.url}/calls?lang=en")
    login(page, *OPERATOR)
    missed = page.locator('#calllog-list li[data-call-id="c-missed"]')
    expect(missed.locator(".call-outcome")).to_have_text(en["calloutcome.missed"])
    expect(page.locator("#calllog-refresh")).to_have_text(en["calllog.refresh"])
    page.select_option("#calllog-period", "week")
    expect(page.locator(f'#calllog-list li[data-call-id="{OUTBOUND_ID}"]')).to_be_visible()
    screenshot(page, "calllog-laptop-en")
    assert untranslated(ui_text(page), "en", city.text()) == []
    assert missing_keys(page) == []
    assert errors == []
