"""Click-to-call through the centre's PBX, the call records and the supervisor's calls card, in a real browser,
in Chinese: the 拨打 button beside the phone numbers of the care-call list and the console's hotline list, what
one click sends and says, no double dial, the refusals, a PBX link that drops and comes back, nothing changed
where telephony is not configured; the day's calls beside the alarm figures; and at 360x640 no button runs off
the screen.

Headless Chromium (Debian's ``/usr/bin/chromium``, through Playwright) against a real ``anxin serve`` process
with a generated city. The PBX's side of the HTTP contract (GET /api/telephony, POST /api/calls/dial), the call
records' PBX fields and the day's call figures are answered by the test through Playwright's routing
(:class:`FakePbx`), so the pages are checked against the agreed JSON whatever the server behind them knows; the
page's own clock is Playwright's, moved on by hand past the 30 s re-read of the link's state. Screenshots go
where ``ANXIN_SCREENSHOTS`` says (docs/screenshots by default).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

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
    open_console,
    screenshot,
    ui_text,
    untranslated,
    watch_errors,
)

pytestmark = pytest.mark.process

ZH = catalogue("zh-CN")
READY = {"configured": True, "connected": True, "extension": "8101", "can_dial": True}
LINK_DOWN = {"configured": True, "connected": False, "extension": "8101", "can_dial": False}
NOT_CONFIGURED = {"configured": False, "connected": False, "extension": None, "can_dial": False}
#: what Chromium logs for an answer the test makes the server refuse on purpose
REFUSED = re.compile(r"^Failed to load resource: the server responded with a status of (409|503)")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    out = tmp_path_factory.mktemp("city")
    return City(city_generator.generate(out, seed=29, elders=60, caregivers=6, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    data = tmp_path_factory.mktemp("server") / "data"
    running = Deployment(data, city.files)
    yield running
    running.close()


class FakePbx:
    """The telephony side of the contract, answered in the browser: the link's state, the dials asked for
    (their bodies kept in order), extra fields for call views and the day's call figures."""

    def __init__(self, telephony: dict[str, Any]) -> None:
        self.telephony = dict(telephony)
        self.answer: tuple[int, dict[str, Any]] = (201, {"call_id": "out-1", "state": "dialing"})
        self.dials: list[dict[str, Any]] = []
        self.calls: dict[str, dict[str, Any]] = {}  # call_id -> PBX fields laid over the server's view
        self.calls_today: dict[str, Any] | None = None

    def install(self, context: BrowserContext) -> None:
        # routes run newest first: the dial's own route is registered after the one of the call views
        context.route(re.compile(r"/api/calls/[^?]+$"), self._call_view)
        context.route(re.compile(r"/api/calls/dial$"), self._dial)
        context.route(re.compile(r"/api/telephony$"), self._telephony)
        context.route(re.compile(r"/api/kpis$"), self._kpis)

    def _telephony(self, route: Route) -> None:
        route.fulfill(status=200, json=self.telephony)

    def _dial(self, route: Route) -> None:
        if route.request.method != "POST":
            route.fallback()
            return
        self.dials.append(json.loads(route.request.post_data or "{}"))
        status, body = self.answer
        route.fulfill(status=status, json=body)

    def _call_view(self, route: Route) -> None:
        call_id = route.request.url.rsplit("/", 1)[-1]
        if route.request.method != "GET" or call_id not in self.calls:
            route.fallback()
            return
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), **self.calls[call_id]})

    def _kpis(self, route: Route) -> None:
        if self.calls_today is None:
            route.fallback()
            return
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "calls_today": self.calls_today})


def digits(phone: str) -> str:
    return re.sub(r"[^0-9+]", "", phone)


def page_errors(errors: list[str]) -> list[str]:
    """The page's script errors, without the refusals the test asked the fake PBX for."""
    return [error for error in errors if not REFUSED.match(error)]


def wait_until(page: Page, condition: Any, timeout: float = 5.0) -> None:
    """Polls `condition`, letting Playwright run its route handlers meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        page.wait_for_timeout(50)


def open_care_calls(context: BrowserContext, url: str) -> tuple[Page, list[str]]:
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{url}/care-calls")
    login(page, *OPERATOR)
    expect(page.locator("#care-body tr").first).to_be_visible()
    return page, errors


def test_the_dial_button_calls_through_the_pbx_once_and_says_so(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    pbx = FakePbx(READY)
    contexts.append(context := desk(browser, LAPTOP))
    pbx.install(context)
    context.clock.install()
    page, errors = open_care_calls(context, deployment.url)
    line = page.locator("#care-body tr").first
    elder_id = line.get_attribute("data-elder-id")
    elder = next(e for e in city.elders if e["elder_id"] == elder_id)
    button = line.locator("button.dial")
    expect(button).to_be_visible()
    expect(button).to_have_text(ZH["dial.button"])
    expect(button).to_be_enabled()
    expect(line.locator("a.care-tel")).to_have_attribute("href", f"tel:{digits(elder['phone'])}")  # still there

    button.click()
    wait_until(page, lambda: len(pbx.dials) == 1)
    assert pbx.dials[0] == {
        "number": digits(elder["phone"]),
        "elder_id": elder_id,
        "call_id": None,
        "incident_id": None,
    }
    toast = page.locator("#dial-toast")
    expect(toast).to_have_text(ZH["dial.calling"].format(number=digits(elder["phone"]), extension="8101"))
    expect(toast).to_have_attribute("data-kind", "ok")
    # no double dial: every 拨打 of the page waits while the operator's extension rings
    expect(page.locator("button.dial:enabled")).to_have_count(0)
    screenshot(page, "telephony-dial-laptop-zh")
    page.clock.fast_forward(6_000)
    expect(button).to_be_enabled()
    assert len(pbx.dials) == 1

    # refused (the operator has no extension): the reason in words, and the buttons free at once
    pbx.answer = (409, {"detail": "no extension for op01", "code": "no_extension"})
    button.click()
    wait_until(page, lambda: len(pbx.dials) == 2)
    expect(toast).to_have_attribute("data-kind", "error")
    reason = ZH.get("error.no_extension") or ZH["error.status.409"] + ZH["list.colon"] + "no extension for op01"
    expect(toast).to_have_text(ZH["dial.failed"].format(reason=reason))
    expect(button).to_be_enabled()

    # the PBX link drops: read again within 30 s, the button stays but cannot be used, and says why
    pbx.telephony = dict(LINK_DOWN)
    page.clock.fast_forward(31_000)
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", ZH["dial.down_title"])
    expect(page.locator("#pbx-banner")).to_have_text(ZH["dial.link_down"])  # calls no longer pop: say so loudly
    screenshot(page, "telephony-link-down-zh")
    pbx.telephony = dict(READY)
    page.clock.fast_forward(31_000)
    expect(button).to_be_enabled()
    expect(page.locator("#pbx-banner")).to_be_hidden()
    assert missing_keys(page) == []
    assert page_errors(errors) == []


def test_without_telephony_the_phone_numbers_stay_as_they_were(
    deployment: Deployment, browser: Browser, contexts: list[BrowserContext]
) -> None:
    pbx = FakePbx(NOT_CONFIGURED)
    contexts.append(context := desk(browser, LAPTOP))
    pbx.install(context)
    page, errors = open_care_calls(context, deployment.url)
    expect(page.locator("body")).to_have_attribute("data-telephony", "off")
    expect(page.locator("#care-body a.care-tel").first).to_be_visible()
    expect(page.locator("button.dial:visible")).to_have_count(0)
    assert pbx.dials == []
    assert errors == []


def test_a_call_over_is_shown_with_its_record_and_called_back_from_the_list(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    elder = city.elders[7]
    call_id = "call-pbx-abandoned"
    pbx = FakePbx(READY)
    pbx.calls[call_id] = {
        "direction": "in", "queue": "12349", "queued_at": time.time() - 40, "extension": "", "transfers": [],
        "cause": "Normal Clearing", "outcome": "abandoned", "wait_s": None, "dialed_by": None, "about_call": None,
    }  # fmt: skip
    contexts.append(context := desk(browser, LAPTOP))
    pbx.install(context)
    page, errors = open_console(context, deployment.url)
    deployment.call("ringing", call_id, elder["phone"])
    deployment.call("ended", call_id, elder["phone"])
    item = page.locator(f'#calls li[data-call-id="{call_id}"]')
    expect(item.locator(".call-dir")).to_have_text(ZH["calldir.in"])
    expect(item.locator(".call-outcome")).to_have_text(ZH["calloutcome.abandoned"])
    expect(item.locator(".call-queue")).to_have_text(ZH["callrec.queue"].format(queue="12349"))
    expect(item.locator(".call-cause")).to_have_text(ZH["callrec.cause"].format(cause="Normal Clearing"))
    expect(item.locator("button.dial")).to_be_enabled()
    item.locator("button.dial").click()
    wait_until(page, lambda: len(pbx.dials) == 1)
    assert pbx.dials[0]["call_id"] == call_id and pbx.dials[0]["number"] == digits(elder["phone"])
    assert pbx.dials[0]["elder_id"] == elder["elder_id"]
    expect(page.locator("#dial-toast")).to_have_attribute("data-kind", "ok")
    screenshot(page, "telephony-call-record-laptop-zh")
    assert missing_keys(page) == []
    assert errors == []


def test_the_elders_file_dials_the_elder_and_each_contact_for_that_elder(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    elder = next(e for e in city.elders if e["contacts"])
    contacts = [item.split(":")[1] for item in elder["contacts"].split(";") if item]
    pbx = FakePbx(READY)
    contexts.append(context := desk(browser, LAPTOP))
    pbx.install(context)
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{deployment.url}/elder?id={elder['elder_id']}")
    login(page, *OPERATOR)
    page.check('input[name=why][value="follow_up"]')
    page.click("#why-submit")
    expect(page.locator("#sec-home button.dial")).to_have_count(1)
    buttons = page.locator("#sec-contacts button.dial")
    expect(buttons).to_have_count(len(contacts))
    buttons.last.click()
    wait_until(page, lambda: len(pbx.dials) == 1)
    assert pbx.dials[0] == {
        "number": digits(contacts[-1]),
        "elder_id": elder["elder_id"],
        "call_id": None,
        "incident_id": None,
    }
    expect(page.locator("#dial-toast")).to_have_attribute("data-kind", "ok")
    screenshot(page, "telephony-elder-file-laptop-zh")
    assert missing_keys(page) == []
    assert errors == []


def test_the_phone_layout_keeps_the_dial_buttons_on_the_screen(
    deployment: Deployment, browser: Browser, contexts: list[BrowserContext]
) -> None:
    pbx = FakePbx(READY)
    contexts.append(context := desk(browser, PHONE))
    pbx.install(context)
    page, errors = open_care_calls(context, deployment.url)
    expect(page.locator("#care-body button.dial").first).to_be_visible()
    width = PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    boxes = page.locator("#care-body button.dial").evaluate_all(
        "(buttons) => buttons.map((b) => b.getBoundingClientRect()).map((r) => [r.left, r.right, r.width])"
    )
    assert boxes and all(left >= 0 and right <= width and w > 0 for left, right, w in boxes)
    screenshot(page, "telephony-dial-phone-zh")
    assert errors == []


CALLS_TODAY = {
    "offered": 24, "answered": 21, "answered_within_target": 19, "target_s": 60.0, "answer_median_s": 18.0,
    "answer_p90_s": 52.0, "abandoned": 2, "missed": 1, "transferred": 3, "outbound": 5,
}  # fmt: skip


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_supervisor_sees_the_days_calls_beside_the_alarms(
    deployment: Deployment, browser: Browser, contexts: list[BrowserContext], viewport: Any
) -> None:
    pbx = FakePbx(NOT_CONFIGURED)
    contexts.append(context := desk(browser, viewport))
    pbx.install(context)
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{deployment.url}/supervisor")
    login(page, *SUPERVISOR)
    expect(page.locator("#kpi-open")).not_to_be_empty()
    expect(page.locator("#calls-card")).to_contain_text("今日热线来电")  # the server's own figures: none yet

    pbx.calls_today = CALLS_TODAY
    page.reload()
    card = page.locator("#calls-card")
    expect(card).to_be_visible()
    expect(card.locator("h2")).to_have_text(ZH["kpi.calls_title"])
    expect(page.locator("#kpi-calls-offered")).to_have_text("24")
    expect(page.locator("#kpi-calls-offered-sub")).to_have_text(ZH["kpi.calls_answered_sub"].format(n=21))
    expect(page.locator("#kpi-calls-within-label")).to_have_text(ZH["kpi.calls_within"].format(s=60))
    expect(page.locator("#kpi-calls-within")).to_have_text("19")
    expect(page.locator("#kpi-calls-within-sub")).to_have_text(ZH["kpi.calls_share"].format(pct="79%"))
    expect(page.locator("#kpi-calls-answer_time")).to_have_text(ZH["unit.dur_s"].format(n=18))
    expect(page.locator("#kpi-calls-answer_time-sub")).to_have_text(
        ZH["kpi.calls_p90"].format(s=ZH["unit.dur_s"].format(n=52))
    )
    for name, value in (("abandoned", "2"), ("missed", "1"), ("transferred", "3"), ("outbound", "5")):
        expect(page.locator(f"#kpi-calls-{name}")).to_have_text(value)
    expect(page.locator('.kpi[data-kpi="calls_abandoned"]')).to_have_class(re.compile(r"\balarm\b"))
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    name = "laptop" if viewport == LAPTOP else "phone"
    screenshot(page, f"telephony-supervisor-{name}-zh")
    assert missing_keys(page) == []
    assert errors == []


CALL_FIGURES = {
    "calls_offered": 120, "calls_answered": 104, "calls_answered_within_60s": 97, "call_share_within_60s": 0.8083,
    "call_answer_s": {"median": 21.0, "p90": 75.0}, "calls_abandoned": 9, "calls_missed": 7, "calls_transferred": 6,
    "calls_outbound": 31,
}  # fmt: skip


def test_the_report_lists_the_hotlines_figures(
    deployment: Deployment, browser: Browser, contexts: list[BrowserContext]
) -> None:
    contexts.append(context := desk(browser, LAPTOP))

    def with_calls(route: Route) -> None:
        response = route.fetch()
        report = response.json()
        report["totals"] = {**report["totals"], **CALL_FIGURES}
        route.fulfill(response=response, json=report)

    context.route(re.compile(r"/api/reports\?"), with_calls)
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{deployment.url}/reports")
    login(page, *SUPERVISOR)
    section = page.locator("#report-calls")
    expect(section).to_be_visible()
    expect(section.locator("h3")).to_have_text(ZH["report.call.title"])
    expected = {
        "calls_answered": "104",
        "calls_answered_within_60s": "97",
        "call_answer_s.median": ZH["unit.dur_s"].format(n=21),
        "call_answer_s.p90": ZH["unit.dur_min"].format(n=1),  # 75 s
        "calls_abandoned": "9",
        "calls_missed": "7",
        "calls_transferred": "6",
        "calls_outbound": "31",
    }
    for path, value in expected.items():
        expect(section.locator(f'[data-figure="{path}"] dd')).to_have_text(value)
    expect(section.locator('[data-figure="calls_answered"] dt')).to_have_text(ZH["report.call.answered"])
    # the calls offered and the share within 60 s are the key figures above, not said twice
    expect(section.locator('[data-figure="calls_offered"]')).to_have_count(0)
    expect(section.locator('[data-figure="call_share_within_60s"]')).to_have_count(0)
    screenshot(page, "telephony-report-laptop-zh")
    assert missing_keys(page) == []
    assert errors == []


def test_the_dial_button_and_the_calls_card_speak_english(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    en = catalogue("en")
    pbx = FakePbx(LINK_DOWN)
    pbx.calls_today = CALLS_TODAY
    contexts.append(context := desk(browser, LAPTOP))
    pbx.install(context)
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{deployment.url}/care-calls?lang=en")
    login(page, *OPERATOR)
    button = page.locator("#care-body button.dial").first
    expect(button).to_have_text(en["dial.button"])
    expect(button).to_have_attribute("title", en["dial.down_title"])
    expect(button).to_be_disabled()
    assert untranslated(ui_text(page), "en", city.text()) == []
    assert missing_keys(page) == []
    page = context.new_page()  # a tab of its own: its own login
    supervisor_errors = watch_errors(page)
    page.goto(f"{deployment.url}/supervisor?lang=en")
    login(page, *SUPERVISOR)
    expect(page.locator("#kpi-calls-within-label")).to_have_text(en["kpi.calls_within"].format(s=60))
    expect(page.locator("#calls-card h2")).to_have_text(en["kpi.calls_title"])
    assert untranslated(ui_text(page), "en", city.text()) == []
    assert missing_keys(page) == []
    assert errors == [] and supervisor_errors == []
