"""The operator console, the supervisor view and the caregiver phone page, in a real browser.

Headless Chromium (Debian's ``/usr/bin/chromium``, through Playwright for Python) against a real
``anxin serve`` process with a generated city. The tests save the screenshots kept in ``docs/screenshots/``.
Without Chromium they are skipped loudly; under ``CI=true`` they fail instead.

Each test works on its own elders (one community each) and its own caregivers, so they share one server
and one browser without stepping on each other.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, WebSocketRoute, expect, sync_playwright

from simulators import city as city_generator
from tests.conftest import require_program
from tests.console.browser import (
    CAREGIVER_PASSWORD,
    CHROMIUM,
    LAUNCH_ARGS,
    OPERATOR,
    SUPERVISOR,
    City,
    Deployment,
    catalogue,
    desk,
    has_class,
    login,
    missing_keys,
    offset,
    open_console,
    phone,
    screenshot,
    ui_text,
    untranslated,
    watch_errors,
)

pytestmark = pytest.mark.process

ANSWER_TARGET_S = 4  # short, so that an unanswered alarm escalates within the test
ZH = catalogue("zh-CN")


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_program(CHROMIUM)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    out = tmp_path_factory.mktemp("city")
    return City(city_generator.generate(out, seed=11, elders=240, caregivers=40, clinics=3))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    data = tmp_path_factory.mktemp("server") / "data"
    running = Deployment(data, city.files, ANXIN_ANSWER_TARGET_S=str(ANSWER_TARGET_S))
    yield running
    running.close()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def taken() -> set[str]:
    """Caregivers already used by a test of this module."""
    return set()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def contacts_of(elder: dict[str, str]) -> list[str]:
    return [item.split(":")[1] for item in elder["contacts"].split(";") if item]


def row(page: Page, incident_id: str) -> Any:
    return page.locator(f'#queue-body tr[data-incident-id="{incident_id}"]')


def assignment(page: Page, responder_id: str) -> Any:
    return page.locator(f'#assignments-body tr[data-responder-id="{responder_id}"]').last


def wait_until(page: Page, condition: Any, timeout: float = 5.0) -> None:
    """Polls `condition`, letting Playwright run its handlers meanwhile (a plain sleep would starve them)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        page.wait_for_timeout(50)


def test_an_alarm_from_the_console_to_the_caregivers_door(
    deployment: Deployment, browser: Browser, city: City, taken: set[str], contexts: list[BrowserContext]
) -> None:
    elder = city.elder_in(0)
    home = float(elder["lat"]), float(elder["lon"])
    first, mine, third = city.caregivers("life_care", 3, taken)
    deployment.on_duty(first["responder_id"], *offset(*home, 80))  # nearest: the automatic offer goes here
    deployment.on_duty(third["responder_id"], *offset(*home, -1200))
    deployment.caregiver(mine["responder_id"])

    # the caregiver's phone, 600 m east, its websocket routed through the test so that it can be cut
    contexts.append(phone_context := phone(browser, *offset(*home, 0, 600)))
    handset = phone_context.new_page()
    phone_errors = watch_errors(handset)
    sockets: list[WebSocketRoute] = []

    def through(socket: WebSocketRoute) -> None:
        sockets.append(socket)
        socket.connect_to_server()

    handset.route_web_socket(lambda url: "/ws/caregiver" in url, through)
    handset.goto(f"{deployment.url}/m")
    login(handset, mine["responder_id"], CAREGIVER_PASSWORD)
    expect(handset.locator("#conn")).to_have_attribute("data-state", "online")
    expect(handset.locator("#position-state")).to_contain_text("位置已共享")
    handset.click("#duty-button")
    expect(handset.locator("#duty-button")).to_have_attribute("aria-pressed", "true")

    contexts.append(desk_context := desk(browser))
    console, console_errors = open_console(desk_context, deployment.url)

    # a new alarm appears within a second of the POST returning, with a beep
    incident_id, returned = deployment.raise_alarm(elder["elder_id"], "sos")
    row(console, incident_id).wait_for(timeout=1000)
    appeared_s = time.monotonic() - returned
    assert appeared_s < 1.0, f"the alarm took {appeared_s:.3f} s to appear"
    print(f"the alarm appeared on the console {appeared_s * 1000:.0f} ms after the POST returned")
    assert int(console.locator("html").get_attribute("data-alerts") or 0) >= 1
    expect(row(console, incident_id).locator(".col-assignment")).to_contain_text(first["name"])

    # open it: the record, the map, the ranking
    row(console, incident_id).click()
    record = console.locator("#record")
    expect(record.locator(".record-name")).to_contain_text(elder["name"])
    expect(record.locator("ol.contacts a.tel")).to_have_count(len(contacts_of(elder)))
    hrefs = [link.get_attribute("href") for link in record.locator("ol.contacts a.tel").all()]
    assert hrefs == [f"tel:{phone}" for phone in contacts_of(elder)]  # in calling order
    for flag in filter(None, elder["risk_flags"].split(";")):
        expect(record.locator(".chips")).to_contain_text(ZH[f"risk.{flag}"])
    expect(console.locator("#map .mark.incident")).to_have_count(1)
    mark = console.locator(f'#map .mark[data-id="{first["responder_id"]}"]')
    expect(mark).to_have_attribute("data-status", "offered")
    expect(console.locator("#map .map-scale")).to_have_count(1)
    expect(console.locator(f'#nearby li[data-id="{mine["responder_id"]}"]')).to_contain_text("米")

    console.click("#detail-actions button[data-action=acknowledge]")
    expect(row(console, incident_id)).to_have_class(has_class("acknowledged"))
    expect(console.locator("#detail-facts")).to_contain_text("接警员 op01")

    ranking = console.locator("#ranking-body tr")
    expect(ranking.first).to_have_attribute("data-responder-id", first["responder_id"])
    expect(ranking.nth(1)).to_have_attribute("data-responder-id", mine["responder_id"])
    expect(ranking.nth(1).locator(".reasons")).to_contain_text("具备技能")
    ranking.nth(1).locator("button.dispatch").click()
    expect(assignment(console, mine["responder_id"])).to_have_attribute("data-state", "offered")
    expect(assignment(console, first["responder_id"])).to_have_attribute("data-state", "withdrawn")

    # the phone rings: an offer without name or address, a countdown, accept or decline
    offer = handset.locator("#offer")
    expect(offer).to_be_visible()
    offered = offer.get_attribute("data-assignment-id")
    expect(handset.locator("#offer-countdown")).to_contain_text("剩余")
    assert int(handset.locator("html").get_attribute("data-alerts") or 0) >= 1
    assert elder["address"] not in handset.inner_text("body")
    assert elder["name"] not in handset.inner_text("body")
    screenshot(handset, "phone-offer-zh")

    # the connection drops, then the whole page reloads: the offer is still there
    sockets[-1].close()
    wait_until(handset, lambda: len(sockets) == 2)
    expect(handset.locator("#conn")).to_have_attribute("data-state", "online")
    expect(offer).to_have_attribute("data-assignment-id", offered or "")
    handset.reload()
    expect(offer).to_be_visible()
    expect(offer).to_have_attribute("data-assignment-id", offered or "")

    handset.click("#accept-button")
    job = handset.locator("#job")
    expect(job).to_be_visible()
    expect(handset.locator("#job-address")).to_have_text(elder["address"])
    assert (handset.locator("#nav-geo").get_attribute("href") or "").startswith("geo:")
    assert "coordinate=wgs84" in (handset.locator("#nav-map").get_attribute("href") or "")
    expect(assignment(console, mine["responder_id"])).to_have_attribute("data-state", "accepted")
    expect(console.locator("#detail")).to_have_attribute("data-state", "assigned")
    screenshot(handset, "phone-job-zh")
    expect(console.locator(f'#map .mark[data-id="{mine["responder_id"]}"]')).to_have_attribute("data-status", "busy")
    screenshot(console, "console-zh")

    for status, note, incident_state in (
        ("en_route", "已出发，约五分钟到", "assigned"),
        ("on_scene", "", "on_scene"),
        ("done", "老人起身时头晕，已扶起，无外伤", "resolved"),
    ):
        if note:
            handset.fill("#status-note", note)
        handset.click(f'#job button[data-status="{status}"]')
        expect(assignment(console, mine["responder_id"])).to_have_attribute("data-state", status)
        expect(console.locator("#detail")).to_have_attribute("data-state", incident_state)
    expect(handset.locator("#phone-message")).to_have_text(ZH["phone.job_finished"])
    expect(console.locator("#detail-facts")).to_contain_text("无外伤")
    expect(console.locator(f'#closing-body tr[data-incident-id="{incident_id}"]')).to_have_count(1)

    # close with an outcome
    console.click("#detail-actions button[data-action=close]")
    console.fill("#action-text", "电话回访，老人无恙")
    console.click("#action-confirm")
    expect(console.locator("#detail")).to_have_attribute("data-state", "closed")
    closed = deployment.get(f"/api/incidents/{incident_id}")
    assert closed["state"] == "closed"
    assert closed["notes"][-1]["text"] == "电话回访，老人无恙"
    assert console_errors == [] and phone_errors == []


def test_the_console_catches_up_on_what_it_missed_while_offline(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    contexts.append(context := desk(browser))
    page = context.new_page()
    errors = watch_errors(page)
    live: list[WebSocketRoute] = []
    parked: list[WebSocketRoute] = []
    urls: list[str] = []
    offline = False

    def through(socket: WebSocketRoute) -> None:
        urls.append(socket.url)
        if offline:
            parked.append(socket)  # the network is down: the page's socket reaches nothing
        else:
            socket.connect_to_server()
            live.append(socket)

    page.route_web_socket(lambda url: "/ws/console" in url, through)
    page.goto(f"{deployment.url}/console")
    login(page, *OPERATOR)
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online")

    before_id, _ = deployment.raise_alarm(city.elder_in(1)["elder_id"], "medical")
    row(page, before_id).click()
    expect(page.locator("#detail")).to_have_attribute("data-incident-id", before_id)
    wait_until(page, lambda: page.locator("#conn-status").get_attribute("data-seq") == str(deployment.journal_head()))
    seq = page.locator("#conn-status").get_attribute("data-seq")

    offline = True
    live[-1].close()
    wait_until(page, lambda: len(parked) == 1)
    # what happens while the console is cut off: a new alarm, a note and an acknowledgement
    missed_id, _ = deployment.raise_alarm(city.elder_in(2)["elder_id"], "fall")
    deployment.post(f"/api/incidents/{before_id}/notes", {"text": "家属已赶往现场"})
    deployment.post(f"/api/incidents/{before_id}/acknowledge", {})
    page.wait_for_timeout(300)
    assert row(page, missed_id).count() == 0
    assert page.locator("#conn-status").get_attribute("data-seq") == seq

    offline = False
    parked[-1].close()  # the network is back: the page reconnects with after=SEQ and catches up
    expect(row(page, missed_id)).to_be_visible()
    expect(page.locator("#notes")).to_contain_text("家属已赶往现场")
    expect(row(page, before_id)).to_have_class(has_class("acknowledged"))
    assert urls[-1].endswith(f"&after={seq}")
    wait_until(page, lambda: page.locator("#conn-status").get_attribute("data-seq") == str(deployment.journal_head()))
    assert errors == []
    for incident_id in (before_id, missed_id):
        deployment.post(f"/api/incidents/{incident_id}/cancel", {"reason": "测试结束"})


def test_the_queue_works_from_the_keyboard(
    deployment: Deployment, browser: Browser, city: City, taken: set[str], contexts: list[BrowserContext]
) -> None:
    contexts.append(context := desk(browser))
    page, errors = open_console(context, deployment.url)
    raised = [deployment.raise_alarm(city.elder_in(i)["elder_id"], kind)[0] for i, kind in ((3, "sos"), (4, "fall"))]
    for incident_id in raised:
        expect(row(page, incident_id)).to_be_visible()
    queue = [i["incident_id"] for i in deployment.get("/api/incidents?open=true")["incidents"]]
    unanswered = [i["incident_id"] for i in deployment.get("/api/incidents?open=true")["incidents"]
                  if i["acknowledged_at"] is None]  # fmt: skip
    cursor = page.locator("#queue-body tr.cursor")

    page.keyboard.press("n")  # the most urgent alarm nobody acknowledged
    expect(cursor).to_have_attribute("data-incident-id", unanswered[0])
    page.keyboard.press("Enter")
    expect(page.locator("#detail")).to_have_attribute("data-incident-id", unanswered[0])
    page.keyboard.press("a")
    expect(row(page, unanswered[0])).to_have_class(has_class("acknowledged"))
    page.keyboard.press("n")
    expect(cursor).to_have_attribute("data-incident-id", unanswered[1])
    page.keyboard.press("o")
    expect(page.locator("#detail")).to_have_attribute("data-incident-id", unanswered[1])
    page.keyboard.press("a")
    expect(row(page, unanswered[1])).to_have_class(has_class("acknowledged"))

    page.keyboard.press("k")
    at = queue.index(unanswered[1])
    expect(cursor).to_have_attribute("data-incident-id", queue[max(0, at - 1)])
    page.keyboard.press("j")
    expect(cursor).to_have_attribute("data-incident-id", unanswered[1])

    # override: "/" to search anyone, even off duty and far away, and dispatch to them
    anyone = city.caregivers("comfort", 1, taken)[0]
    page.keyboard.press("/")
    expect(page.locator("#override-search")).to_be_focused()
    page.keyboard.type(anyone["name"])
    choice = page.locator(f'#override-list li[data-responder-id="{anyone["responder_id"]}"]')
    expect(choice).to_be_visible()
    page.keyboard.press("Escape")  # leaves the field
    choice.locator("button.dispatch").click()
    expect(assignment(page, anyone["responder_id"])).to_have_attribute("data-state", "offered")

    # a false alarm: cancelled with a reason, then it waits to be closed
    page.click("#detail-actions button[data-action=cancel]")
    expect(page.locator("#action-text")).to_be_focused()
    page.keyboard.type(ZH["preset.cancel_mistake"])
    page.keyboard.press("Enter")
    expect(page.locator("#detail")).to_have_attribute("data-state", "cancelled")
    expect(page.locator(f'#closing-body tr[data-incident-id="{unanswered[1]}"]')).to_have_count(1)
    page.keyboard.press("Escape")  # closes the panel
    expect(page.locator("#detail")).to_be_hidden()
    assert errors == []
    assert deployment.get(f"/api/incidents/{unanswered[1]}")["outcome"] == ZH["preset.cancel_mistake"]
    deployment.post(f"/api/incidents/{unanswered[0]}/cancel", {"reason": "测试结束"})


def test_a_ringing_hotline_call_pops_the_callers_record(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    elder = city.elder_in(5)
    contexts.append(context := desk(browser))
    page, errors = open_console(context, deployment.url)
    call = {"call_id": "call-browser-1", "caller": elder["phone"], "line": "12349-2"}
    deployment.post("/api/hotline/events", {"event": "ringing", **call})
    pop = page.locator("#call-pop")
    expect(pop).to_be_visible()
    expect(pop.locator(".record-name")).to_contain_text(elder["name"])
    expect(pop.locator("a.tel")).to_have_count(1 + len(contacts_of(elder)))
    expect(pop).to_have_attribute("data-state", "ringing")
    answered = deployment.post("/api/hotline/events", {"event": "answered", **call})
    page.click("#call-pop-open")
    expect(page.locator("#detail")).to_have_attribute("data-incident-id", answered["incident_id"])
    expect(page.locator("#detail-facts")).to_contain_text(elder["phone"])
    entries = deployment.get("/api/journal?limit=5000")["entries"]
    assert any(e["kind"] == "elder.viewed" and e["payload"]["elder_id"] == elder["elder_id"] for e in entries)
    deployment.post("/api/hotline/events", {"event": "ended", **call})

    # the caller has chest pain: hand over to 120, then close
    page.click("#detail-actions button[data-action=escalate]")
    page.select_option("#action-service", "120")
    page.fill("#action-text", "胸痛，已转120急救")
    page.click("#action-confirm")
    expect(page.locator("#detail")).to_have_attribute("data-state", "escalated")
    expect(page.locator("#detail-facts")).to_contain_text(ZH["service.120"])
    page.click("#detail-actions button[data-action=close]")
    page.click("#action-confirm")
    expect(page.locator("#detail")).to_have_attribute("data-state", "closed")
    assert deployment.get(f"/api/incidents/{answered['incident_id']}")["escalated_to"] == "120"
    assert errors == []


def test_the_supervisor_sees_live_figures_and_escalations(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    contexts.append(context := desk(browser))
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{deployment.url}/supervisor")
    login(page, *SUPERVISOR)
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online")
    expect(page.locator("#kpi-open")).not_to_be_empty()
    kpis = deployment.get("/api/kpis")
    expect(page.locator("#kpi-open")).to_have_text(str(kpis["open_incidents"]))
    expect(page.locator("#kpi-on-duty")).to_have_text(str(kpis["responders_on_duty"]))
    expect(page.locator("#kpi-answered-60")).to_have_text(str(kpis["answered_within_60s"]))

    incident_id, _ = deployment.raise_alarm(city.elder_in(6)["elder_id"], "sos")
    expect(page.locator("#kpi-open")).to_have_text(str(kpis["open_incidents"] + 1), timeout=2000)
    escalation = page.locator(f'#escalations-body tr[data-incident-id="{incident_id}"]')
    expect(escalation).to_be_visible(timeout=(ANSWER_TARGET_S + 3) * 1000)
    expect(page.locator('.kpi[data-kpi="escalations"]')).to_have_class(has_class("alarm"))
    screenshot(page, "supervisor-zh")
    deployment.post(f"/api/incidents/{incident_id}/acknowledge", {})
    expect(escalation).to_have_count(0)
    expect(page.locator("#kpi-answered-180")).to_have_text(str(kpis["answered_within_180s"] + 1))
    deployment.post(f"/api/incidents/{incident_id}/cancel", {"reason": "测试结束"})
    assert errors == []


def check_language(page: Page, language: str, data: str) -> None:
    """Switch the page to `language` with its menu and check that every string is there and translated."""
    page.select_option("#lang-select", language)
    expect(page.locator("html")).to_have_attribute("lang", language)
    page.wait_for_timeout(100)  # one frame for the re-render
    assert missing_keys(page) == []
    assert untranslated(ui_text(page), language, data) == [], language


def test_every_page_is_complete_in_both_languages(
    deployment: Deployment, browser: Browser, city: City, taken: set[str], contexts: list[BrowserContext]
) -> None:
    zh, en = catalogue("zh-CN"), catalogue("en")
    assert zh.keys() == en.keys()
    typed = ["测试结束", zh["preset.cancel_mistake"]]  # reasons people typed in earlier tests: data now
    data = "\n".join([city.text(), *typed])
    elder, caller = city.elder_in(7), city.elder_in(8)
    home = float(elder["lat"]), float(elder["lon"])
    mine = city.caregivers("nursing", 1, taken)[0]
    deployment.caregiver(mine["responder_id"])

    contexts.append(phone_context := phone(browser, *offset(*home, 200)))
    handset = phone_context.new_page()
    handset.goto(f"{deployment.url}/m?lang=en")
    expect(handset.locator("html")).to_have_attribute("lang", "en")
    login(handset, mine["responder_id"], CAREGIVER_PASSWORD)
    expect(handset.locator("#position-state")).to_contain_text("Position shared")
    handset.click("#duty-button")
    expect(handset.locator("#duty-button")).to_have_attribute("aria-pressed", "true")
    for language in ("zh-CN", "en"):
        check_language(handset, language, data)

    contexts.append(desk_context := desk(browser))
    console, errors = open_console(desk_context, deployment.url)
    incident_id, _ = deployment.raise_alarm(elder["elder_id"], "fall")
    offers = deployment.get(f"/api/incidents/{incident_id}")["assignments"]
    if not any(a["responder_id"] == mine["responder_id"] for a in offers):  # unless it went there by itself
        deployment.post(f"/api/incidents/{incident_id}/dispatch", {"responder_id": mine["responder_id"]})
    deployment.post("/api/hotline/events", {"event": "ringing", "call_id": "call-lang", "caller": caller["phone"]})
    row(console, incident_id).click()
    expect(console.locator("#record .record-name")).to_contain_text(elder["name"])
    expect(console.locator("#call-pop .record-name")).to_contain_text(caller["name"])
    expect(console.locator("#clinic .clinic")).to_have_count(1)  # a fall proposes a clinic
    console.click("#detail-actions button[data-action=cancel]")  # the form and its suggestions
    expect(console.locator("#action-form")).to_be_visible()
    expect(handset.locator("#offer")).to_be_visible()
    for language in ("en", "zh-CN"):
        check_language(console, language, data)
        check_language(handset, language, data)
    console.click("#action-back")
    console.select_option("#lang-select", "en")
    screenshot(console, "console-en")

    handset.click("#accept-button")
    expect(handset.locator("#job")).to_be_visible()
    for language in ("zh-CN", "en"):
        check_language(handset, language, data)
    screenshot(handset, "phone-job-en")

    contexts.append(supervisor_context := desk(browser))
    supervisor = supervisor_context.new_page()
    supervisor.goto(f"{deployment.url}/supervisor?lang=en")
    login(supervisor, *SUPERVISOR)
    expect(supervisor.locator("#kpi-open")).not_to_be_empty()
    for language in ("zh-CN", "en"):
        check_language(supervisor, language, data)
    screenshot(supervisor, "supervisor-en")
    assert errors == []
    deployment.post("/api/hotline/events", {"event": "ended", "call_id": "call-lang", "caller": caller["phone"]})
    deployment.post(f"/api/incidents/{incident_id}/cancel", {"reason": "测试结束"})


def png(width: int = 4, height: int = 4, rgb: tuple[int, int, int] = (214, 222, 206)) -> bytes:
    """A small valid PNG, the stand-in for a map tile."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_the_map_lays_tiles_from_a_configured_tile_server(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    contexts.append(context := desk(browser))
    page = context.new_page()
    requested: list[str] = []
    tile = png()

    def config(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        assert body["map_tiles"] is None  # the default: a plain background
        route.fulfill(response=response, json={**body, "map_tiles": "http://tiles.test/{z}/{x}/{y}.png"})

    def tiles(route: Route) -> None:
        requested.append(route.request.url)
        route.fulfill(body=tile, content_type="image/png")

    page.route("**/api/config", config)
    page.route("http://tiles.test/**", tiles)
    page.goto(f"{deployment.url}/console")
    login(page, *OPERATOR)
    incident_id, _ = deployment.raise_alarm(city.elder_in(9)["elder_id"], "sos")
    row(page, incident_id).click()
    images = page.locator("#map .map-tiles image")
    expect(images.first).to_be_attached()
    zoom = int(page.locator("#map .map-tiles").get_attribute("data-zoom") or 0)
    assert 11 <= zoom <= 18
    wait_until(page, lambda: len(requested) >= images.count())
    assert all(url.startswith(f"http://tiles.test/{zoom}/") for url in requested)
    deployment.post(f"/api/incidents/{incident_id}/cancel", {"reason": "测试结束"})


def test_the_api_docs_render_with_the_network_cut_off(
    deployment: Deployment, browser: Browser, contexts: list[BrowserContext]
) -> None:
    """/docs (Swagger UI) and /redoc come from assets installed with the project: no CDN, no font service."""
    contexts.append(context := desk(browser))
    page = context.new_page()
    outside: list[str] = []

    def only_this_server(route: Route) -> None:
        if route.request.url.startswith(deployment.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_this_server)
    page.goto(f"{deployment.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Anxin")
    expect(page.locator(".swagger-ui .opblock-summary-path").first).to_be_visible()
    assert page.locator(".opblock-summary-path", has_text="/api/alarms").count() == 1
    assert outside == []
    page.goto(f"{deployment.url}/redoc")
    expect(page.locator("h1", has_text="Anxin")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("/api/alarms").first).to_be_attached()
    # ReDoc's bundle asks for its "powered by" logo on its CDN; offline that picture is missing and nothing else
    assert outside == ["https://cdn.redoc.ly/redoc/logo-mini.svg"]
