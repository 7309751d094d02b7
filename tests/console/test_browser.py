"""The operator console, the supervisor view and the caregiver phone page, in a real browser.

Headless Chromium (Debian's ``/usr/bin/chromium``, through Playwright for Python) against a real
``anxin serve`` process with a generated city. The tests save the screenshots kept in ``docs/screenshots/``.
Without Chromium they are skipped loudly; under ``CI=true`` they fail instead.

Each test works on its own elders (one community each) and its own caregivers, so they share one server
and one browser without stepping on each other.
"""

from __future__ import annotations

import json
import re
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, WebSocketRoute, expect

from dispatch.search import name_pinyin
from simulators import city as city_generator
from tests.console.browser import (
    CAREGIVER_PASSWORD,
    LAPTOP,
    OPERATOR,
    PHONE,
    SUPERVISOR,
    City,
    Deployment,
    catalogue,
    desk,
    distance_m,
    has_class,
    login,
    missing_keys,
    offset,
    open_console,
    phone,
    phone_on_duty,
    rows,
    screenshot,
    ui_text,
    untranslated,
    watch_errors,
)
from tests.process import ADMIN_PASSWORD

pytestmark = pytest.mark.process

ANSWER_TARGET_S = 4  # short, so that an unanswered alarm escalates within the test
ZH = catalogue("zh-CN")


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
def taken() -> set[str]:
    """Caregivers already used by a test of this module."""
    return set()


@pytest.fixture(scope="module")
def elders_taken() -> set[str]:
    """Elders already used by a test of this module (city.spare_elders)."""
    return set()


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
        ("done", "老人起身时头晕，已扶起，无外伤", "on_scene"),  # "done" proposes; the operator decides
    ):
        if note:
            handset.fill("#status-note", note)
        handset.click(f'#job button[data-status="{status}"]')
        expect(assignment(console, mine["responder_id"])).to_have_attribute("data-state", status)
        expect(console.locator("#detail")).to_have_attribute("data-state", incident_state)
    expect(handset.locator("#phone-message")).to_have_text(ZH["phone.job_finished"])
    proposal = console.locator("#proposal")
    expect(proposal).to_contain_text(f"护理员 {mine['name']} 已完成：老人起身时头晕，已扶起，无外伤")
    expect(console.locator("#notes")).to_contain_text("已出发，约五分钟到")  # every caregiver note is kept
    proposal.locator("button[data-proposal=resolve]").click()
    expect(console.locator("#action-text")).to_have_value("老人起身时头晕，已扶起，无外伤")
    console.click("#action-confirm")
    expect(console.locator("#detail")).to_have_attribute("data-state", "resolved")
    expect(console.locator("#detail-facts")).to_contain_text("无外伤")
    expect(console.locator(f'#closing-body tr[data-incident-id="{incident_id}"]')).to_have_count(1)
    expect(row(console, incident_id)).to_have_count(0)  # resolved incidents leave the queue

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


def test_a_full_disk_is_a_banner_on_every_console_until_the_server_says_ok(
    deployment: Deployment, browser: Browser, contexts: list[BrowserContext]
) -> None:
    """The server's status messages (dispatch.storage, console.live rule 2a), injected into a live console's socket:
    loud on a laptop and on a phone, in Chinese, and gone when the disk is back."""
    for viewport, name in ((LAPTOP, "storage-full-laptop-zh"), (PHONE, "storage-full-phone-zh")):
        contexts.append(context := desk(browser, viewport))
        page = context.new_page()
        errors = watch_errors(page)
        live: list[WebSocketRoute] = []

        def through(socket: WebSocketRoute, live: list[WebSocketRoute] = live) -> None:
            socket.connect_to_server()
            live.append(socket)

        page.route_web_socket(lambda url: "/ws/console" in url, through)
        page.goto(f"{deployment.url}/console")
        login(page, *OPERATOR)
        expect(page.locator("#conn-status")).to_have_attribute("data-state", "online")
        banner = page.locator("#storage-banner")
        full = {"state": "full", "free_mb": 0.0, "reason": "the journal cannot commit", "since": time.time()}
        live[-1].send(json.dumps({"type": "status", "storage": full}))
        expect(banner).to_be_visible()
        expect(banner).to_have_text(ZH["storage.full"])
        expect(banner).to_have_attribute("role", "alert")
        box = banner.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 1
        screenshot(page, name)
        seq = page.locator("#conn-status").get_attribute("data-seq")
        live[-1].send(json.dumps({"type": "status", "storage": {**full, "state": "ok", "free_mb": 900.0}}))
        expect(banner).to_be_hidden()
        assert page.locator("#conn-status").get_attribute("data-seq") == seq  # never a resume point
        assert errors == []


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
    page.keyboard.press("Enter")  # no reason yet: the page says so in Chinese, not the browser's bubble
    expect(page.locator("#action-error")).to_have_text(ZH["error.reason_required"])
    assert page.locator("#action-form").evaluate("(form) => form.noValidate")
    page.keyboard.type(ZH["preset.cancel_mistake"])
    page.keyboard.press("Enter")
    expect(page.locator("#detail")).to_have_attribute("data-state", "cancelled")
    expect(page.locator(f'#closing-body tr[data-incident-id="{unanswered[1]}"]')).to_have_count(1)
    page.keyboard.press("Escape")  # closes the panel
    expect(page.locator("#detail")).to_be_hidden()
    assert errors == []
    assert deployment.get(f"/api/incidents/{unanswered[1]}")["outcome"] == ZH["preset.cancel_mistake"]
    deployment.post(f"/api/incidents/{unanswered[0]}/cancel", {"reason": "测试结束"})


def test_a_call_from_a_known_elder_is_answered_classified_as_a_fall_and_dispatched(
    deployment: Deployment, browser: Browser, city: City, taken: set[str], contexts: list[BrowserContext]
) -> None:
    elder = city.elder_in(5)
    home = float(elder["lat"]), float(elder["lon"])
    nurse = city.caregivers("nursing", 1, taken)[0]
    deployment.on_duty(nurse["responder_id"], *offset(*home, 30))
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_console(context, deployment.url)
    call = {"call_id": "call-browser-1", "caller": elder["phone"], "line": "12349-2"}
    deployment.call("ringing", **call)
    pop = page.locator("#call-pop")
    expect(pop).to_be_visible()
    expect(pop.locator(".record-name")).to_contain_text(elder["name"])
    expect(pop.locator("#call-pop-who")).to_contain_text(elder["name"])
    expect(pop.locator("a.tel")).to_have_count(1 + len(contacts_of(elder)))
    expect(pop).to_have_attribute("data-state", "ringing")
    expect(page.locator("#classify")).to_be_hidden()  # nothing to classify before anyone speaks to the caller
    answered = deployment.call("answered", **call)
    assert answered["incident_id"] is None  # an answered call waits for the operator's word
    expect(page.locator("#classify")).to_be_visible()
    expect(page.locator(f'#calls li[data-call-id="{call["call_id"]}"]')).to_have_class(has_class("call-unclassified"))
    entries = deployment.get("/api/journal?limit=5000")["entries"]
    assert any(e["kind"] == "elder.viewed" and e["payload"]["elder_id"] == elder["elder_id"] for e in entries)

    # "I fell in the kitchen and cannot get up": an emergency, a fall
    page.fill("#classify-text", "在厨房摔倒，起不来")
    page.select_option("#classify-alarm", "fall")
    screenshot(page, "console-call-zh")
    page.click("#classify button[data-kind=emergency]")
    expect(pop.locator("#call-pop-result")).to_contain_text(ZH["callkind.emergency"])
    classified = deployment.get(f"/api/calls/{call['call_id']}")
    incident_id = classified["incident_id"]
    assert classified["kind"] == "emergency" and incident_id
    expect(row(page, incident_id)).to_be_visible()
    expect(page.locator("#detail")).to_have_attribute("data-incident-id", incident_id)
    expect(page.locator("#detail-title")).to_contain_text(ZH["alarm.fall"])
    expect(page.locator("#detail-facts")).to_contain_text(elder["phone"])
    expect(page.locator("#notes")).to_contain_text("在厨房摔倒，起不来")
    expect(page.locator("#assignments-body tr[data-state=offered]")).to_have_count(1)  # matching started
    deployment.call("ended", **call)
    expect(page.locator(f'#calls li[data-call-id="{call["call_id"]}"]')).not_to_have_class(
        has_class("call-unclassified")
    )

    # the elder calls again: the call joins the incident already open for them
    again = {"call_id": "call-browser-1b", "caller": elder["phone"]}
    deployment.call("ringing", **again)
    deployment.call("answered", **again)
    link = page.locator(f'#classify-links button[data-incident-id="{incident_id}"]')
    expect(link).to_contain_text(incident_id)
    page.fill("#classify-text", "又打来：能说话，腿很疼")
    link.click()
    expect(pop.locator("#call-pop-result")).to_contain_text(
        ZH["call.joined"].format(id=incident_id, type=ZH["alarm.fall"])
    )
    assert deployment.get(f"/api/calls/{again['call_id']}")["incident_id"] == incident_id
    expect(page.locator("#detail-notice")).to_contain_text(
        ZH["new.attached"].format(id=incident_id, type=ZH["alarm.fall"])
    )
    expect(page.locator("#notes")).to_contain_text("又打来：能说话，腿很疼")
    deployment.call("ended", **again)

    # the caller has chest pain as well: hand over to 120, then close
    page.click("#detail-actions button[data-action=escalate]")
    page.select_option("#action-service", "120")
    page.fill("#action-text", "胸痛，已转120急救")
    page.click("#action-confirm")
    expect(page.locator("#detail")).to_have_attribute("data-state", "escalated")
    expect(page.locator("#detail-facts")).to_contain_text(ZH["service.120"])
    page.click("#detail-actions button[data-action=close]")
    page.click("#action-confirm")
    expect(page.locator("#detail")).to_have_attribute("data-state", "closed")
    assert deployment.get(f"/api/incidents/{incident_id}")["escalated_to"] == "120"
    assert errors == []


def test_a_consultation_call_opens_no_incident_and_dispatches_nobody(
    deployment: Deployment, browser: Browser, city: City, elders_taken: set[str], contexts: list[BrowserContext]
) -> None:
    elder = city.spare_elders(1, elders_taken)[0]
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_console(context, deployment.url)
    before = deployment.journal_head()
    daughter, number, relation = elder["contacts"].split(";")[0].split(":")  # a family contact calls
    call = {"call_id": "call-browser-question", "caller": number}
    deployment.call("ringing", **call)
    expect(page.locator("#call-pop")).to_have_attribute("data-caller-is", "contact")
    expect(page.locator("#call-pop-who")).to_have_text(
        ZH["call.who_contact"].format(name=daughter, relation=relation, elder=elder["name"])
    )
    expect(page.locator("#call-pop .record-name")).to_contain_text(elder["name"])  # the elder's record
    deployment.call("answered", **call, words="按2：咨询服务")
    expect(page.locator("#classify")).to_be_visible()
    expect(page.locator("#call-pop-words")).to_have_text(ZH["call.words"].format(words="按2：咨询服务"))
    expect(page.locator("#classify-who .chosen-name")).to_have_text(elder["name"])
    page.fill("#classify-text", "咨询助餐服务的时间")
    page.click("#classify button[data-kind=consultation]")
    expect(page.locator("#call-pop-result")).to_contain_text(ZH["callkind.consultation"])
    deployment.call("ended", **call)
    record = deployment.get(f"/api/calls/{call['call_id']}")
    assert (record["kind"], record["text"], record["incident_id"]) == ("consultation", "咨询助餐服务的时间", None)
    assert record["elder_id"] == elder["elder_id"]  # who the call was about
    kinds = [e["kind"] for e in deployment.get(f"/api/journal?after={before}&limit=5000")["entries"]]
    assert not any(kind.startswith(("incident.", "offer.")) for kind in kinds), kinds
    assert not any(i["elder_id"] == elder["elder_id"] for i in deployment.get("/api/incidents?open=true")["incidents"])
    expect(page.locator("#detail")).to_be_hidden()

    # a silent call leaves a call back to make, done from the list of calls
    silent = {"call_id": "call-browser-silent", "caller": elder["phone"]}
    deployment.call("ringing", **silent)
    deployment.call("answered", **silent)
    page.click("#classify button[data-kind=silent]")
    deployment.call("ended", **silent)
    item = page.locator(f'#calls li[data-call-id="{silent["call_id"]}"]')
    expect(item).to_have_class(has_class("call-callback"))
    item.locator("button.call-back").click()
    item.locator("input.callback-outcome").press("Enter")  # empty: our words, not the browser's bubble
    expect(item.locator(".callback-form .error")).to_have_text(ZH["error.outcome_required"])
    item.locator("input.callback-outcome").fill("回拨：老人误拨，一切正常")
    item.locator("input.callback-outcome").press("Enter")
    expect(item).not_to_have_class(has_class("call-callback"))
    called = deployment.get(f"/api/calls/{silent['call_id']}")
    assert (called["callback"], called["callback_outcome"]) == ("done", "回拨：老人误拨，一切正常")
    assert errors == []


def visible_rows(page: Page) -> int:
    """Queue rows wholly on the screen (below any pop-up stuck over them)."""
    pop = page.locator("#call-pop")
    bottom = 0.0
    if pop.is_visible():
        box = pop.bounding_box()
        bottom = box["y"] + box["height"] if box else 0.0
    boxes = [r.bounding_box() for r in page.locator("#queue-body tr").all()]
    return len([b for b in boxes if b and b["y"] >= bottom and b["y"] + b["height"] <= LAPTOP["height"]])


def test_a_second_call_while_the_first_is_in_hand_is_seen_at_once_on_a_laptop(
    deployment: Deployment, browser: Browser, city: City, elders_taken: set[str], contexts: list[BrowserContext]
) -> None:
    elder, *fillers = city.spare_elders(13, elders_taken)
    kinds = ["low_battery", "mains_loss", "watch_removed"]  # a full queue (nothing is dispatched for these)
    raised = [deployment.raise_alarm(e["elder_id"], kinds[i % 3])[0] for i, e in enumerate(fillers)]
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_console(context, deployment.url)
    for incident_id in raised:
        expect(row(page, incident_id)).to_be_attached()
    pop = page.locator("#call-pop")
    first = {"call_id": "call-browser-first", "caller": elder["phone"]}
    second = {"call_id": "call-browser-second", "caller": "13912340001"}
    deployment.call("ringing", **first)
    deployment.call("answered", **first)
    expect(page.locator("#classify")).to_be_visible()
    page.fill("#classify-text", "老人问明天助餐几点")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # the operator is down the page
    assert page.evaluate("window.scrollY") > 100  # (the page is long enough to scroll the pop-up away)

    # a second call rings while the first is answered and not classified: the first keeps the pop-up, and a
    # banner on top of it, on screen without scrolling, says who else rings
    deployment.call("ringing", **second)
    banner = page.locator("#call-pop-others .call-other.ringing")
    expect(banner).to_contain_text(ZH["call.other_ringing"])
    expect(banner).to_contain_text(second["caller"])
    expect(pop).to_have_attribute("data-call-id", first["call_id"])
    box = banner.bounding_box()
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= LAPTOP["height"], box
    box = pop.bounding_box()
    assert box and box["y"] >= 0, box  # the pop-up sticks to the top of the screen
    waiting = re.search(r"(\d+)☎\)", page.title())
    assert waiting and int(waiting[1]) >= 2, page.title()  # the window title counts the calls waiting
    screenshot(page, "console-second-call-zh")
    # during a call the queue stays in sight: the pop-up takes at most ~40 % of the screen, at least 8 rows show
    page.evaluate("window.scrollTo(0, 0)")
    assert visible_rows(page) >= 8, visible_rows(page)
    box = pop.bounding_box()
    assert box and box["height"] <= LAPTOP["height"] * 0.42, box

    banner.locator("button.call-switch").click()  # one click: the ringing call in the pop-up
    expect(pop).to_have_attribute("data-call-id", second["call_id"])
    others = page.locator("#call-pop-others .call-other")
    expect(others).to_contain_text(elder["name"])  # the first waits for its word, one click away
    others.locator("button.call-switch").click()
    expect(pop).to_have_attribute("data-call-id", first["call_id"])
    expect(page.locator("#classify-text")).to_have_value("老人问明天助餐几点")  # nothing typed is lost
    page.click("#call-pop-dismiss")  # closing the pop-up brings up the call waiting
    expect(pop).to_have_attribute("data-call-id", second["call_id"])
    others.locator("button.call-switch").click()
    expect(pop).to_have_attribute("data-call-id", first["call_id"])
    page.click("#classify button[data-kind=consultation]")
    expect(pop).to_have_attribute("data-call-id", second["call_id"])  # classified: the ringing call comes up
    deployment.call("ended", **first)
    deployment.call("answered", **second)
    expect(page.locator("#classify")).to_be_visible()
    page.click("#classify button[data-kind=wrong_number]")
    expect(page.locator("#call-pop-result")).to_contain_text(ZH["callkind.wrong_number"])
    deployment.call("ended", **second)
    expect(pop).to_be_hidden(timeout=8000)  # over and classified: the pop-up closes by itself
    kinds = [deployment.get(f"/api/calls/{c['call_id']}")["kind"] for c in (first, second)]
    assert kinds == ["consultation", "wrong_number"]

    # the list of calls is one click from the top of the page, past the whole queue
    page.evaluate("window.scrollTo(0, 0)")
    page.click("#calls-jump")
    expect(page.locator("#calls-panel")).to_be_in_viewport()
    assert errors == []
    for incident_id in raised:
        deployment.post(f"/api/incidents/{incident_id}/cancel", {"reason": "测试结束"})


def unique_initials(city: City, taken: set[str]) -> tuple[dict[str, str], str]:
    """A spare elder whose pinyin initials no other elder of the city shares (the search ranks ties by name)."""
    counts: dict[str, int] = {}
    for elder in city.elders:
        for initials in name_pinyin(elder["name"])[0]:
            counts[initials] = counts.get(initials, 0) + 1
    for elder in city.spare_elders(20, set(taken)):
        initials = name_pinyin(elder["name"])[0][0]
        if counts[initials] == 1:
            taken.add(elder["elder_id"])
            return elder, initials
    raise AssertionError("no elder with initials of their own")


def test_the_operator_finds_an_elder_by_phone_and_initials_and_opens_an_incident_by_hand(
    deployment: Deployment, browser: Browser, city: City, elders_taken: set[str], contexts: list[BrowserContext]
) -> None:
    elder, initials = unique_initials(city, elders_taken)
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_console(context, deployment.url)
    page.keyboard.press("i")  # the new-incident form, from the keyboard
    dialog = page.locator("#new-incident")
    expect(dialog).to_be_visible()
    expect(page.locator("#new-elder")).to_be_focused()
    hit = dialog.locator(f'button.elder-hit[data-elder-id="{elder["elder_id"]}"]')

    page.keyboard.type(elder["phone"][-5:])  # "the last digits of my phone are ..."
    expect(hit).to_contain_text(elder["name"])
    expect(hit.locator(".tag")).to_have_text(ZH["matched.phone"])
    page.fill("#new-elder", "")
    page.keyboard.type(initials)  # the name as pinyin initials
    expect(hit.locator(".tag")).to_have_text(ZH["matched.initials"])
    screenshot(page, "console-new-incident-zh")
    hit.click()
    expect(dialog.locator(".chosen-name")).to_have_text(elder["name"])
    expect(page.locator("#new-unknown")).to_be_hidden()

    page.click("#new-submit")  # no type yet: the form says so
    expect(page.locator("#new-error")).to_have_text(ZH["new.need_type"])
    page.select_option("#new-alarm", "medical")
    page.fill("#new-note", "女儿来电：老人胸闷气短")
    page.click("#new-submit")
    expect(dialog).to_be_hidden()
    expect(page.locator("#detail-title")).to_contain_text(elder["name"])
    incident_id = page.locator("#detail").get_attribute("data-incident-id") or ""
    view = deployment.get(f"/api/incidents/{incident_id}")
    assert (view["elder_id"], view["alarm_type"], view["source"]) == (elder["elder_id"], "medical", "operator")
    expect(row(page, incident_id)).to_be_visible()
    expect(page.locator("#detail-facts")).to_contain_text(ZH["source.operator"])
    expect(page.locator("#notes")).to_contain_text("女儿来电：老人胸闷气短")
    assert errors == []
    deployment.post(f"/api/incidents/{incident_id}/cancel", {"reason": "测试结束"})


def test_a_new_incident_for_an_elder_with_one_open_joins_it_and_says_so(
    deployment: Deployment,
    browser: Browser,
    city: City,
    taken: set[str],
    elders_taken: set[str],
    contexts: list[BrowserContext],
) -> None:
    deployment.settle()
    elder = city.spare_elders(1, elders_taken)[0]
    home = float(elder["lat"]), float(elder["lon"])
    nurse, other = city.caregivers("nursing", 2, taken)
    deployment.on_duty(nurse["responder_id"], *offset(*home, 20))
    reports = [("en_route", ""), ("on_scene", ""), ("done", "已扶老人上床休息")]
    incident_id = on_scene_incident(deployment, elder, nurse, *reports)  # done: the operator has not decided
    deployment.on_duty(other["responder_id"], *offset(*home, 0, 60))
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_console(context, deployment.url)
    expect(row(page, incident_id)).to_be_visible()
    page.click("#new-incident-button")
    page.keyboard.type(elder["phone"])
    page.locator(f'#new-incident button.elder-hit[data-elder-id="{elder["elder_id"]}"]').click()
    existing = page.locator("#new-existing")  # said before: this joins the open incident
    expect(existing).to_contain_text(incident_id)
    page.select_option("#new-alarm", "medical")
    page.fill("#new-note", "女儿来电：老人又说胸口疼")
    page.click("#new-submit")

    # said after: which incident it joined, and that someone was sent again after the caregiver's done
    expect(page.locator("#new-incident")).to_be_hidden()
    expect(page.locator("#detail")).to_have_attribute("data-incident-id", incident_id)
    notice = page.locator("#detail-notice")
    expect(notice).to_contain_text(ZH["new.attached"].format(id=incident_id, type=ZH["alarm.fall"]))
    expect(notice).to_contain_text(ZH["new.sent_again"].split("，")[0])
    expect(page.locator("#notes")).to_contain_text("女儿来电：老人又说胸口疼")
    screenshot(page, "console-merged-zh")
    view = deployment.get(f"/api/incidents/{incident_id}")
    assert view["proposal"] is None
    assert any(a["state"] == "offered" for a in view["assignments"])
    opened = [i for i in deployment.get("/api/incidents?open=true")["incidents"] if i["elder_id"] == elder["elder_id"]]
    assert [i["incident_id"] for i in opened] == [incident_id]  # one incident, not two
    assert errors == []
    deployment.post(f"/api/incidents/{incident_id}/cancel", {"reason": "测试结束"})


def test_an_unknown_caller_is_placed_by_a_typed_address_and_offered(
    deployment: Deployment,
    browser: Browser,
    city: City,
    taken: set[str],
    elders_taken: set[str],
    contexts: list[BrowserContext],
) -> None:
    deployment.settle()
    somewhere = city.spare_elders(1, elders_taken)[0]  # the caller is at this elder's building
    spot = float(somewhere["lat"]), float(somewhere["lon"])
    helper = city.caregivers("life_care", 1, taken)[0]
    deployment.on_duty(helper["responder_id"], *offset(*spot, 30))
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_console(context, deployment.url)
    call = {"call_id": "call-browser-stranger", "caller": "13912345678"}
    deployment.call("ringing", **call)
    pop = page.locator("#call-pop")
    expect(pop).to_have_attribute("data-caller-is", "unknown")
    expect(pop.locator("#call-pop-who")).to_have_text(ZH["call.unknown_number"])
    deployment.call("answered", **call)
    expect(page.locator("#classify-unknown")).to_be_visible()

    page.fill("#classify-text", "路人来电：有位老人在楼下晕倒")
    page.locator("#classify-address").press_sequentially(somewhere["address"])
    suggestion = pop.locator("button.place-hit").first
    expect(suggestion).to_be_visible()
    screenshot(page, "console-call-unknown-zh")
    suggestion.click()
    page.select_option("#classify-alarm", "sos")
    page.click("#classify button[data-kind=emergency]")
    expect(pop.locator("#call-pop-result")).to_contain_text(ZH["callkind.emergency"])
    incident_id = deployment.get(f"/api/calls/{call['call_id']}")["incident_id"]
    assert incident_id
    expect(page.locator("#detail")).to_have_attribute("data-incident-id", incident_id)
    view = deployment.get(f"/api/incidents/{incident_id}")
    assert view["location"] == "address"
    assert distance_m(view["lat"], view["lon"], *spot) < 150
    expect(page.locator("#assignments-body tr[data-state=offered]")).to_have_count(1)
    expect(page.locator("#detail-facts")).to_contain_text(ZH["location.address"])
    deployment.call("ended", **call)
    assert errors == []
    deployment.post(f"/api/incidents/{incident_id}/cancel", {"reason": "测试结束"})


def test_an_incident_of_unknown_location_waits_until_the_operator_places_it(
    deployment: Deployment,
    browser: Browser,
    city: City,
    taken: set[str],
    elders_taken: set[str],
    contexts: list[BrowserContext],
) -> None:
    deployment.settle()
    somewhere = city.spare_elders(1, elders_taken)[0]
    spot = float(somewhere["lat"]), float(somewhere["lon"])
    helper = city.caregivers("life_care", 1, taken)[0]
    deployment.on_duty(helper["responder_id"], *offset(*spot, -30))
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_console(context, deployment.url)
    page.click("#new-incident-button")
    page.fill("#new-caller", "13800138000")  # nobody the registry knows, and no place yet
    page.select_option("#new-alarm", "sos")
    page.click("#new-submit")
    expect(page.locator("#new-incident")).to_be_hidden()
    expect(page.locator("#detail-flags")).to_contain_text(ZH["flag.place_unknown"])
    incident_id = page.locator("#detail").get_attribute("data-incident-id") or ""
    expect(row(page, incident_id).locator(".col-elder")).to_have_text("☎ 138…8000")  # not cut off
    expect(row(page, incident_id).locator(".col-elder")).to_have_attribute("title", re.compile("13800138000"))
    expect(page.locator("#detail-flags .flag")).to_have_count(1)  # one chip says the place is unknown
    assert deployment.get(f"/api/incidents/{incident_id}")["assignments"] == []
    page.reload()  # the caller's number is the incident's own: it survives a reload
    row(page, incident_id).click()
    expect(page.locator("#detail-title")).to_contain_text("13800138000")
    expect(page.locator("#detail-facts a.tel")).to_have_attribute("href", "tel:13800138000")

    # "near building 4": the typed address centres the map, a click on it places the caller
    page.click("#detail-actions button[data-action=locate]")
    page.locator("#locate-address").press_sequentially(somewhere["address"])
    expect(page.locator("#locate-form button.place-hit").first).to_be_visible()
    page.click("#locate-form button.map-pick")
    expect(page.locator("#map-pick")).to_be_visible()
    expect(page.locator("#pick-confirm")).to_be_disabled()
    # without tiles the registered communities and buildings around are drawn as labelled landmarks
    expect(page.locator("#pick-map .map-community").first).to_be_visible()
    expect(page.locator("#pick-map .place-mark").first).to_be_attached()
    page.locator("#pick-map").click()  # the middle: where the address is
    expect(page.locator("#pick-map .mark.pin")).to_have_count(1)
    expect(page.locator("#pick-nearest")).to_contain_text("最近的登记地点")  # the picked point's nearest place
    screenshot(page, "console-pick-zh")
    page.click("#pick-confirm")
    expect(page.locator("#map-pick")).to_be_hidden()
    expect(page.locator("#locate-form .picked-point")).to_be_visible()
    expect(page.locator("#locate-form .picked-place")).to_be_visible()
    page.click("#locate-confirm")
    expect(page.locator("#locate-form")).to_be_hidden()
    expect(page.locator("#assignments-body tr[data-state=offered]")).to_have_count(1)
    view = deployment.get(f"/api/incidents/{incident_id}")
    assert view["location"] == "map" and not view["needs_manual"]
    assert distance_m(view["lat"], view["lon"], *spot) < 100
    # the point carries the name of the registered place nearest it: a building of the city, or its community
    assert view["place"] and view["place"].replace("/", "") in city.text().replace("/", "")
    expect(page.locator("#detail-facts")).to_contain_text(view["place"])
    assert errors == []
    deployment.post(f"/api/incidents/{incident_id}/cancel", {"reason": "测试结束"})


def on_scene_incident(
    deployment: Deployment, elder: dict[str, str], caregiver: dict[str, str], *reports: tuple[str, str]
) -> str:
    """An alarm for `elder` that `caregiver` (on duty next door) accepts and works through `reports`."""
    incident_id, _ = deployment.raise_alarm(elder["elder_id"], "fall")
    offers = deployment.get(f"/api/incidents/{incident_id}")["assignments"]
    if not any(a["responder_id"] == caregiver["responder_id"] for a in offers):  # unless it went there itself
        deployment.post(f"/api/incidents/{incident_id}/dispatch", {"responder_id": caregiver["responder_id"]})
    deployment.work_job(caregiver["responder_id"], *reports)
    return incident_id


def test_d_on_an_on_scene_incident_asks_before_replacing_the_caregiver(
    deployment: Deployment,
    browser: Browser,
    city: City,
    taken: set[str],
    elders_taken: set[str],
    contexts: list[BrowserContext],
) -> None:
    deployment.settle()
    elder = city.spare_elders(1, elders_taken)[0]
    home = float(elder["lat"]), float(elder["lon"])
    there, spare = city.caregivers("nursing", 2, taken)
    deployment.on_duty(there["responder_id"], *offset(*home, 20))
    deployment.on_duty(spare["responder_id"], *offset(*home, 0, 250))
    incident_id = on_scene_incident(deployment, elder, there, ("en_route", ""), ("on_scene", ""))
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_console(context, deployment.url)
    row(page, incident_id).click()
    expect(page.locator("#detail")).to_have_attribute("data-state", "on_scene")
    expect(page.locator("#dispatch-first")).to_have_text(ZH["action.replace_first"])
    busy_button = page.locator(f'#override-list li[data-responder-id="{there["responder_id"]}"] button.dispatch')
    page.fill("#override-search", there["name"])
    expect(busy_button).to_be_disabled()  # someone on a job has no dispatch button
    expect(busy_button).to_have_text(ZH["dispatch.busy"])
    page.fill("#override-search", "")
    page.locator("#queue").click(position={"x": 5, "y": 5})  # out of the field, keys work again

    page.keyboard.press("d")
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text(there["name"])
    expect(page.locator("#confirm-text")).to_contain_text(ZH["assignment.on_scene"])
    screenshot(page, "console-replace-zh")
    page.keyboard.press("Escape")  # no
    expect(dialog).to_be_hidden()
    page.wait_for_timeout(300)
    view = deployment.get(f"/api/incidents/{incident_id}")
    assert [(a["responder_id"], a["state"]) for a in view["assignments"]] == [(there["responder_id"], "on_scene")]
    assert view["state"] == "on_scene"

    page.keyboard.press("d")
    page.click("#confirm-no")  # no, again
    expect(dialog).to_be_hidden()
    page.keyboard.press("d")  # at once: the last dialog's close event must not close this one
    page.click("#confirm-yes")  # yes: withdraw and send someone else
    expect(assignment(page, there["responder_id"])).to_have_attribute("data-state", "withdrawn")
    expect(page.locator("#assignments-body tr[data-state=offered]")).to_have_count(1)
    assert errors == []
    deployment.post(f"/api/incidents/{incident_id}/cancel", {"reason": "测试结束"})


def test_a_caregivers_done_with_a_hospital_note_leaves_120_to_the_operator(
    deployment: Deployment,
    browser: Browser,
    city: City,
    taken: set[str],
    elders_taken: set[str],
    contexts: list[BrowserContext],
) -> None:
    deployment.settle()
    elder = city.spare_elders(1, elders_taken)[0]
    home = float(elder["lat"]), float(elder["lon"])
    nurse = city.caregivers("nursing", 1, taken)[0]
    deployment.on_duty(nurse["responder_id"], *offset(*home, 20))
    reports = [("en_route", ""), ("on_scene", "老人在卫生间，右髋疼痛"), ("done", "疑似骨折，建议送医")]
    incident_id = on_scene_incident(deployment, elder, nurse, *reports)
    assert deployment.get(f"/api/incidents/{incident_id}")["open"]  # "done" did not resolve it
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_console(context, deployment.url)

    # the queue does not hide it: "待决定" with the caregiver's words, highlighted, and a filter of its own
    state = row(page, incident_id).locator(".col-state")
    expect(state).to_contain_text(ZH["queue.awaiting_decision"])
    expect(state).to_have_attribute("title", re.compile("疑似骨折，建议送医"))
    expect(row(page, incident_id)).to_have_class(has_class("awaiting"))
    expect(row(page, incident_id).locator(".col-assignment")).to_contain_text(nurse["name"])
    decide = page.locator('#queue-filters button[data-filter="decide"]')
    expect(decide).to_contain_text(ZH["filter.decide"])
    expect(decide.locator(".n")).to_have_text("1")
    decide.click()
    expect(page.locator("#queue-body tr")).to_have_count(1)
    expect(row(page, incident_id)).to_be_visible()
    screenshot(page, "console-decide-zh")
    row(page, incident_id).click()
    proposal = page.locator("#proposal")
    expect(proposal).to_be_visible()
    expect(proposal).to_contain_text(f"护理员 {nurse['name']} 已完成：疑似骨折，建议送医")
    expect(page.locator("#notes")).to_contain_text("老人在卫生间，右髋疼痛")  # the on-scene note is kept
    expect(page.locator("#detail-actions button[data-action=escalate]")).to_be_enabled()
    screenshot(page, "console-proposal-zh")
    proposal.locator("button[data-proposal=escalate]").click()
    expect(page.locator("#action-service")).to_have_value("120")
    expect(page.locator("#action-text")).to_have_value("疑似骨折，建议送医")
    page.click("#action-confirm")
    expect(page.locator("#detail")).to_have_attribute("data-state", "escalated")
    expect(proposal).to_be_hidden()
    expect(row(page, incident_id)).to_have_count(0)  # decided: no longer in the 待决定 filter
    expect(decide.locator(".n")).to_have_text("")
    assert deployment.get(f"/api/incidents/{incident_id}")["escalated_to"] == "120"
    assert errors == []


def test_the_caregivers_phone_shows_the_operators_shared_note(
    deployment: Deployment,
    browser: Browser,
    city: City,
    taken: set[str],
    elders_taken: set[str],
    contexts: list[BrowserContext],
) -> None:
    deployment.settle()
    elder = city.spare_elders(1, elders_taken)[0]
    home = float(elder["lat"]), float(elder["lon"])
    nurse = city.caregivers("nursing", 1, taken)[0]
    deployment.caregiver(nurse["responder_id"])
    handset, phone_errors = phone_on_duty(browser, deployment.url, nurse["responder_id"], *offset(*home, 40), contexts)
    incident_id, _ = deployment.raise_alarm(elder["elder_id"], "fall")
    if not any(
        a["responder_id"] == nurse["responder_id"]
        for a in deployment.get(f"/api/incidents/{incident_id}")["assignments"]
    ):
        deployment.post(f"/api/incidents/{incident_id}/dispatch", {"responder_id": nurse["responder_id"]})
    handset.click("#accept-button")
    expect(handset.locator("#job")).to_be_visible()
    expect(handset.locator("#call-centre")).to_have_attribute("href", "tel:12349")
    expect(handset.locator("#job-phone")).to_have_attribute("href", f"tel:{elder['phone']}")

    contexts.append(desk_context := desk(browser, LAPTOP))
    console, errors = open_console(desk_context, deployment.url)
    row(console, incident_id).click()
    console.click("#note-form button[type=submit]")  # an empty note is not ignored in silence
    expect(console.locator("#note-error")).to_have_text(ZH["error.note_required"])
    console.fill("#note-text", "内部：家属电话未接通")
    console.uncheck("#note-shared")
    console.click("#note-form button[type=submit]")
    expect(console.locator("#notes")).to_contain_text("内部：家属电话未接通")
    console.fill("#note-text", "老人在卫生间摔倒，起不来，门没锁")
    console.check("#note-shared")
    console.click("#note-form button[type=submit]")
    expect(console.locator("#notes .note.shared")).to_contain_text("老人在卫生间摔倒，起不来，门没锁")

    words = handset.locator("#job-words-list")
    expect(words).to_contain_text("老人在卫生间摔倒，起不来，门没锁")
    expect(words).to_contain_text("接警员 op01")
    assert "家属电话未接通" not in handset.inner_text("body")
    screenshot(handset, "phone-job-zh")
    assert errors == [] and phone_errors == []
    deployment.post(f"/api/incidents/{incident_id}/cancel", {"reason": "测试结束"})


def test_a_caregiver_sent_to_an_unknown_caller_can_call_them_back_from_the_phone(
    deployment: Deployment,
    browser: Browser,
    city: City,
    taken: set[str],
    elders_taken: set[str],
    contexts: list[BrowserContext],
) -> None:
    deployment.settle()
    somewhere = city.spare_elders(1, elders_taken)[0]  # the caller is at this elder's building
    spot = float(somewhere["lat"]), float(somewhere["lon"])
    helper = city.caregivers("life_care", 1, taken)[0]
    deployment.caregiver(helper["responder_id"])
    handset, phone_errors = phone_on_duty(browser, deployment.url, helper["responder_id"], *offset(*spot, 50), contexts)
    caller = "13700001234"
    body = {"alarm_type": "sos", "caller": caller, "address": somewhere["address"], "note": "路人：老人在楼下晕倒"}
    view = deployment.post("/api/incidents", body)
    incident_id = view["incident_id"]
    if not any(a["responder_id"] == helper["responder_id"] for a in view["assignments"]):
        deployment.post(f"/api/incidents/{incident_id}/dispatch", {"responder_id": helper["responder_id"]})

    # the offer: no registered elder, so no community; the place the operator gave instead of "—"
    expect(handset.locator("#offer")).to_be_visible()
    expect(handset.locator("#offer-where-label")).to_have_text(ZH["phone.where"])
    expect(handset.locator("#offer-community")).to_have_text(view["place"])
    handset.click("#decline-button")  # 拒绝 asks once, with quick reasons; 返回 keeps the offer
    expect(handset.locator("#decline-confirm")).to_be_visible()
    expect(handset.locator("#decline-confirm")).to_contain_text(ZH["phone.decline_ask"])
    handset.click("#decline-no")
    expect(handset.locator("#decline-confirm")).to_be_hidden()
    handset.click("#accept-button")

    # the job: the place as the address, one tap to call the caller back, no empty contacts heading
    expect(handset.locator("#job")).to_be_visible()
    expect(handset.locator("#job-name")).to_have_text(ZH["phone.unregistered_call"])
    expect(handset.locator("#job-address")).to_have_text(view["place"])
    call_back = handset.locator("#call-caller")
    expect(call_back).to_be_visible()
    expect(call_back).to_have_text(ZH["phone.call_caller"].format(phone=caller))
    expect(call_back).to_have_attribute("href", f"tel:{caller}")
    expect(handset.locator("#job-phone")).to_be_hidden()
    expect(handset.locator("#job-contacts-title")).to_be_hidden()
    expect(handset.locator("#job-words-list")).to_contain_text("老人在楼下晕倒")
    expect(handset.locator("#job .status-buttons")).to_be_in_viewport()  # in reach on the first screen
    screenshot(handset, "phone-job-unknown-caller-zh")
    assert phone_errors == []
    deployment.post(f"/api/incidents/{incident_id}/cancel", {"reason": "测试结束"})


def test_the_queue_shows_a_shift_of_incidents_one_line_each_on_a_laptop(
    deployment: Deployment, browser: Browser, city: City, elders_taken: set[str], contexts: list[BrowserContext]
) -> None:
    kinds = ["low_battery", "mains_loss", "watch_removed"]  # nothing is dispatched for these
    raised = [deployment.raise_alarm(elder["elder_id"], kinds[i % 3])[0]
              for i, elder in enumerate(city.spare_elders(14, elders_taken))]  # fmt: skip
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_console(context, deployment.url)
    for incident_id in raised:
        expect(row(page, incident_id)).to_be_attached()

    def check(count: int) -> None:
        boxes = [r.bounding_box() for r in page.locator("#queue-body tr").all()]
        heights = {round(b["height"], 1) for b in boxes if b}
        assert len(heights) == 1, heights  # one line each: every row as high as the others
        assert heights.pop() < 32
        visible = [b for b in boxes if b and b["y"] >= 0 and b["y"] + b["height"] <= LAPTOP["height"]]
        assert len(visible) >= count, f"{len(visible)} of {len(boxes)} rows visible"

    check(12)
    clock = row(page, raised[0]).locator(".clock")
    expect(clock).to_have_text(re.compile(r"^0:0[1-9]$"), timeout=3000)  # time since the alarm, running
    expect(row(page, raised[0]).locator(".state-clock")).to_have_text(re.compile(r"^\d+秒$"))
    screenshot(page, "console-queue-zh")
    row(page, raised[0]).click()  # the panel opens beside the queue: still one line each
    expect(page.locator("#detail")).to_be_visible()
    check(12)
    page.click('#queue-filters button[data-filter="waiting"]')
    expect(page.locator('#queue-filters button[data-filter="waiting"]')).to_have_attribute("aria-pressed", "true")
    deployment.post(f"/api/incidents/{raised[1]}/acknowledge", {})
    expect(row(page, raised[1])).to_have_count(0)  # acknowledged: no longer waiting
    page.click('#queue-filters button[data-filter="all"]')
    expect(row(page, raised[1])).to_be_visible()
    assert errors == []
    for incident_id in raised:
        deployment.post(f"/api/incidents/{incident_id}/cancel", {"reason": "测试结束"})


def test_the_console_fits_a_phone_and_an_open_incident_takes_the_screen(
    deployment: Deployment,
    browser: Browser,
    city: City,
    taken: set[str],
    elders_taken: set[str],
    contexts: list[BrowserContext],
) -> None:
    elder, *others = city.spare_elders(3, elders_taken)
    home = float(elder["lat"]), float(elder["lon"])
    first, second = city.caregivers("life_care", 2, taken)
    deployment.on_duty(first["responder_id"], *offset(*home, 100))  # nearest: the automatic offer goes here
    deployment.on_duty(second["responder_id"], *offset(*home, -500))  # someone free to dispatch to
    incident_id, _ = deployment.raise_alarm(elder["elder_id"], "sos")
    kinds = ["low_battery", "mains_loss"]  # nothing is dispatched for these: the caregivers stay free
    rest = [deployment.raise_alarm(e["elder_id"], kind)[0] for e, kind in zip(others, kinds, strict=True)]
    contexts.append(context := phone(browser, *home))
    page, errors = open_console(context, deployment.url)

    def page_width() -> int:
        width: int = page.evaluate("document.documentElement.scrollWidth")
        return width

    expect(row(page, incident_id).locator(".col-assignment")).to_contain_text(first["name"])
    for incident in rest:
        expect(row(page, incident)).to_be_visible()
    assert page_width() <= PHONE["width"]  # the queue collapses to cards: nothing to scroll sideways
    screenshot(page, "console-phone-queue-zh")

    row(page, incident_id).click()  # the incident takes the screen, with the way back on top
    expect(page.locator("#detail")).to_have_attribute("data-incident-id", incident_id)
    expect(page.locator("#queue")).to_be_hidden()
    expect(page.locator("#detail-back")).to_be_in_viewport()
    expect(page.locator("#record .record-name")).to_contain_text(elder["name"])
    assert page_width() <= PHONE["width"]
    assert page.evaluate("scrollX") == 0
    acknowledge = page.locator("#detail-actions button[data-action=acknowledge]")
    expect(acknowledge).to_be_in_viewport()
    acknowledge.click()
    expect(page.locator("#detail-facts")).to_contain_text("接警员 op01")
    dispatch = page.locator("#dispatch-first")  # to the first proposed responder not tried yet
    expect(dispatch).to_be_in_viewport()
    expect(dispatch).to_be_enabled()
    dispatch.click()
    expect(assignment(page, first["responder_id"])).to_have_attribute("data-state", "withdrawn")
    expect(page.locator('#assignments-body tr[data-state="offered"]')).to_have_count(1)
    expect(page.locator("#ranking-body tr").first).to_be_visible()
    assert page_width() <= PHONE["width"]  # the ranking, the offers and the record fit as well
    screenshot(page, "console-phone-incident-zh")

    page.click("#detail-back")
    expect(page.locator("#detail")).to_be_hidden()
    expect(row(page, incident_id)).to_be_in_viewport()
    assert page_width() <= PHONE["width"]
    assert errors == []
    for incident in (incident_id, *rest):
        deployment.post(f"/api/incidents/{incident}/cancel", {"reason": "测试结束"})


def test_only_supervisors_and_admins_are_offered_the_supervisor_view(
    deployment: Deployment, browser: Browser, contexts: list[BrowserContext]
) -> None:
    contexts.append(context := desk(browser))
    page = context.new_page()
    errors = watch_errors(page)
    figures: list[str] = []
    page.on("request", lambda request: figures.append(request.url) if "/api/kpis" in request.url else None)
    link = page.locator('#topbar a[href="/supervisor"]')
    page.goto(f"{deployment.url}/console")
    expect(page.locator("#login-form")).to_be_visible()
    expect(link).to_be_hidden()  # nobody is known yet at the login
    login(page, *OPERATOR)
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online")
    expect(link).to_be_hidden()

    page.goto(f"{deployment.url}/supervisor")  # the operator opens it anyway: told so, nothing read
    denied = page.locator("#supervisor-denied")
    expect(denied).to_be_visible()
    expect(denied).to_contain_text("主管视图仅供主管和管理员使用")
    expect(denied).to_contain_text(ZH["role.operator"])
    expect(page.locator("#supervisor-view")).to_be_hidden()
    expect(page.locator("#conn-status")).to_be_hidden()
    page.wait_for_timeout(300)
    assert figures == []
    screenshot(page, "supervisor-denied-zh")
    page.click("#supervisor-to-console")
    expect(page.locator("#console-view")).to_be_visible()

    page.click("#user-info")
    page.click("#logout-button")
    expect(page.locator("#login-form")).to_be_visible()
    expect(link).to_be_hidden()
    login(page, *SUPERVISOR)
    expect(link).to_be_visible()
    link.click()
    expect(page.locator("#supervisor-view")).to_be_visible()
    expect(page.locator("#supervisor-denied")).to_be_hidden()
    expect(page.locator("#kpi-open")).not_to_be_empty()
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
    # the figure and the list name the same thing: alarms past the answer target no operator acknowledged
    expect(page.locator('.kpi[data-kpi="escalations"] .kpi-label')).to_have_text(ZH["escalations.title"])
    screenshot(page, "supervisor-zh")
    escalation.locator("a").click()  # the staff pages share the login: the console opens the incident at once
    expect(page.locator("#console-view")).to_be_visible()
    expect(page.locator("#login-view")).to_be_hidden()
    expect(page.locator("#detail")).to_have_attribute("data-incident-id", incident_id)
    page.go_back()
    expect(page.locator("#supervisor-view")).to_be_visible()
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


def test_an_operator_changes_an_alarms_type(
    deployment: Deployment,
    browser: Browser,
    city: City,
    elders_taken: set[str],
    contexts: list[BrowserContext],
) -> None:
    elder = city.spare_elders(1, elders_taken)[0]
    incident_id, _ = deployment.raise_alarm(elder["elder_id"], "call")
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_console(context, deployment.url)
    row(page, incident_id).click()
    page.click("#detail-actions button[data-action=retype]")
    expect(page.locator("#action-form-title")).to_have_text(ZH["form.retype_title"])
    page.select_option("#action-alarm-type", "fall")
    page.fill("#action-text", "家属来电说老人是摔倒了")
    page.click("#action-confirm")
    expect(page.locator("#action-form")).to_be_hidden()
    expect(page.locator("#detail-title")).to_contain_text(ZH["alarm.fall"])
    view = deployment.get(f"/api/incidents/{incident_id}")
    assert (view["alarm_type"], view["priority"]) == ("fall", 1)
    assert view["notes"][-1]["text"] == "家属来电说老人是摔倒了"
    assert errors == []
    deployment.post(f"/api/incidents/{incident_id}/cancel", {"reason": "测试结束"})


# -- accounts: the header's person, changing one's password, the admin's accounts page ------------------------

REFUSALS = re.compile(
    r"Failed to load resource: the server responded with a status of 4(01|03|22)|WebSocket connection"
)


def unexpected(errors: list[str]) -> list[str]:
    """Script errors, without the browser's own notes of the refusals a test provokes on purpose."""
    return [error for error in errors if not REFUSALS.search(error)]


def open_accounts(context: BrowserContext, url: str) -> tuple[Page, list[str]]:
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{url}/accounts")
    login(page, "admin", ADMIN_PASSWORD)
    expect(page.locator('#accounts-body tr[data-username="admin"]')).to_be_visible()
    return page, errors


def test_an_operator_kept_to_one_street_changes_her_password_and_is_sent_out_when_disabled(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    community = city.elder_in(3)["community"]
    street = community.rsplit("/", 1)[0]
    contexts.append(admin_context := desk(browser, LAPTOP))
    admin, admin_errors = open_accounts(admin_context, deployment.url)
    expect(admin.locator('#accounts-body tr[data-username="admin"] button[data-action="disable"]')).to_have_count(0)
    admin.click("#account-new")
    admin.fill("#account-username", "lin.ting")
    admin.fill("#account-name", "林婷")
    admin.select_option("#account-role", "operator")
    password = admin.input_value("#account-password")  # the page made one up; the admin reads it out to her
    assert len(password) >= 8
    admin.check(f'#scope-picker input[data-scope="{street}"]')
    covered = admin.locator(f'#scope-picker input[data-scope="{community}"]')
    expect(covered).to_be_checked()
    expect(covered).to_be_disabled()  # the street covers its communities
    expect(admin.locator("#scope-chosen")).to_have_text(
        ZH["accounts.scope_chosen"].format(scope=street.replace("/", " "))
    )
    screenshot(admin, "accounts-new-zh")
    admin.click("#account-submit")
    mine = admin.locator('#accounts-body tr[data-username="lin.ting"]')
    expect(mine.locator(".account-scope")).to_have_text(street.split("/")[-1])
    account = next(a for a in deployment.get("/api/accounts")["accounts"] if a["username"] == "lin.ting")
    assert (account["name"], account["role"], account["scopes"]) == ("林婷", "operator", [street])

    contexts.append(operator_context := desk(browser, LAPTOP))
    operator = operator_context.new_page()
    operator_errors = watch_errors(operator)
    operator.goto(f"{deployment.url}/console")
    login(operator, "lin.ting", password)
    expect(operator.locator("#conn-status")).to_have_attribute("data-state", "online")
    chip = ZH["me.chip"].format(name="林婷", role=ZH["role.operator"], scope=street.split("/")[-1])
    expect(operator.locator("#user-info")).to_have_text(chip)
    expect(operator.locator("#accounts-link")).to_be_hidden()  # not an admin
    operator.click("#user-info")
    expect(operator.locator("#user-scope")).to_have_text(street.replace("/", " "))
    operator.click("#password-button")
    operator.fill("#password-old", password)
    operator.fill("#password-new", "lin-ting-new-1")
    operator.fill("#password-again", "lin-ting-new-2")
    operator.click("#password-submit")
    expect(operator.locator("#password-error")).to_have_text(ZH["me.not_same"])
    operator.fill("#password-old", "not-her-password")
    operator.fill("#password-again", "lin-ting-new-1")
    operator.click("#password-submit")
    expect(operator.locator("#password-error")).to_have_text(ZH["error.password_wrong"])
    operator.fill("#password-old", password)
    operator.click("#password-submit")
    expect(operator.locator("#password-done")).to_be_visible()
    screenshot(operator, "console-password-zh")
    operator.click("#password-ok")
    expect(operator.locator("#password-dialog")).to_be_hidden()
    refused = deployment.http.post("/api/auth/token", data={"username": "lin.ting", "password": password})
    assert refused.status_code == 401
    deployment.token("lin.ting", "lin-ting-new-1")
    expect(operator.locator("#conn-status")).to_have_attribute("data-state", "online")  # her own login stays
    assert unexpected(operator_errors) == []

    mine.locator('button[data-action="disable"]').click()
    who = ZH["accounts.who"].format(name="林婷", username="lin.ting")
    expect(admin.locator("#confirm-title")).to_have_text(ZH["accounts.disable_title"].format(who=who))
    admin.click("#confirm-yes")
    expect(mine).to_have_attribute("data-state", "disabled")
    expect(admin.locator("#accounts-notice")).to_have_text(ZH["accounts.disabled_done"].format(who=who))

    expect(operator.locator("#login-view")).to_be_visible(timeout=5000)  # her console closes at once
    expect(operator.locator("#console-view")).to_be_hidden()
    expect(operator.locator("#login-error")).to_have_text(ZH["login.disabled"])
    expect(operator.locator("#queue-body tr")).to_have_count(0)
    login(operator, "lin.ting", "lin-ting-new-1")
    expect(operator.locator("#login-error")).to_have_text(ZH["error.account_disabled"].format(username="lin.ting"))

    mine.locator('button[data-action="enable"]').click()
    admin.click("#confirm-yes")
    expect(mine).to_have_attribute("data-state", "active")
    login(operator, "lin.ting", "lin-ting-new-1")
    expect(operator.locator("#conn-status")).to_have_attribute("data-state", "online")
    operator.click("#user-info")
    operator.click("#logout-button")  # the server forgets the token, not only the page
    expect(operator.locator("#login-view")).to_be_visible()
    assert unexpected(admin_errors) == [] and unexpected(operator_errors) == []


def test_a_service_key_is_shown_once_copied_and_revoked(
    deployment: Deployment, browser: Browser, contexts: list[BrowserContext]
) -> None:
    contexts.append(context := desk(browser, LAPTOP))
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=deployment.url)
    page, errors = open_accounts(context, deployment.url)
    page.click("#account-new")
    page.check('input[name="account-kind"][value="service"]')
    expect(page.locator("#account-password-field")).to_be_hidden()  # a service has keys, not a password
    expect(page.locator("#account-grants-field")).to_be_visible()
    page.fill("#account-username", "pbx01")
    page.fill("#account-name", "中心热线交换机")
    page.check('input[name="grant"][value="hotline"]')
    page.check('#scope-picker input[data-scope="*"]')
    page.click("#account-submit")
    expect(page.locator("#keys-dialog")).to_be_visible()  # a new service account goes straight to its keys
    expect(page.locator("#keys-empty")).to_be_visible()
    page.fill("#key-label", "一号机房交换机")
    page.click("#key-submit")
    expect(page.locator("#key-issued")).to_be_visible()
    expect(page.locator("#key-issued .key-warning")).to_have_text(ZH["accounts.key_once"])
    key = page.input_value("#key-value")
    assert key
    page.click("#key-copy")
    expect(page.locator("#key-copied")).to_have_text(ZH["accounts.copied"])
    assert page.evaluate("navigator.clipboard.readText()") == key
    screenshot(page, "accounts-key-zh")
    me = deployment.http.get("/api/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200, me.text
    assert (me.json()["role"], me.json()["grants"]) == ("service", ["hotline"])

    page.click("#keys-close")
    expect(page.locator("#keys-dialog")).to_be_hidden()
    assert key not in page.content()  # shown once: gone with its dialog
    page.locator('#accounts-body tr[data-username="pbx01"] button[data-action="keys"]').click()
    issued = page.locator("#keys-body tr")
    expect(issued).to_have_count(1)
    expect(issued).to_contain_text("一号机房交换机")
    expect(page.locator("#key-issued")).to_be_hidden()
    assert key not in page.content()
    issued.locator("button[data-revoke]").click()
    expect(page.locator("#confirm-title")).to_have_text(ZH["accounts.revoke_title"].format(label="一号机房交换机"))
    page.click("#confirm-yes")
    expect(issued).to_have_class(has_class("revoked"))
    refused = deployment.http.get("/api/me", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
    assert unexpected(errors) == []


def test_the_accounts_page_reads_in_both_languages_and_on_a_phone(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    typed = ["lin.ting", "林婷", "pbx01", "中心热线交换机", "一号机房交换机"]  # earlier tests' accounts: data now
    data = "\n".join([city.text(), *typed])
    contexts.append(context := phone(browser, float(city.elders[0]["lat"]), float(city.elders[0]["lon"])))
    page, errors = open_accounts(context, deployment.url)
    for language in ("en", "zh-CN"):
        check_language(page, language, data)
    screenshot(page, "accounts-phone-zh")
    page.click("#account-new")
    expect(page.locator("#scope-picker input[data-scope]").first).to_be_attached()
    page.select_option("#account-role", "caregiver")
    expect(page.locator("#account-responder-field")).to_be_visible()
    for language in ("en", "zh-CN"):
        check_language(page, language, data)
    box = page.locator("#account-dialog").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360  # the dialog fits the phone
    page.click("#account-cancel")
    page.click("#user-info")
    expect(page.locator("#logout-button")).to_be_in_viewport()
    assert unexpected(errors) == []


def test_a_power_cut_is_one_line_in_the_queue_and_one_click_acknowledges_it(
    deployment: Deployment, browser: Browser, city: City, elders_taken: set[str], contexts: list[BrowserContext]
) -> None:
    """Mains loss from the devices of one street: one grouped incident (dispatch.triage rule 4), titled with the
    street and the count, acknowledged with the ordinary button."""
    by_street: dict[str, list[dict[str, str]]] = {}
    for elder in city.spare_elders(40, elders_taken):
        by_street.setdefault(elder["community"].rpartition("/")[0], []).append(elder)
    street, elders = max(by_street.items(), key=lambda item: len(item[1]))
    owners = {e["elder_id"] for e in elders}
    devices = [d["device_id"] for d in rows(city.files["devices"]) if d["elder_id"] in owners]
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_console(context, deployment.url)
    opened = {
        deployment.post("/api/alarms", {"device_id": d, "alarm_type": "mains_loss"})["incident_id"] for d in devices
    }
    assert len(devices) >= 3 and len(opened) == 1
    (incident_id,) = opened
    title = ZH["group.mains_loss"].format(street=street.rpartition("/")[2], count=len(devices))
    expect(row(page, incident_id).locator(".col-elder")).to_have_text(title)
    row(page, incident_id).click()
    expect(page.locator("#detail-title")).to_contain_text(title)
    page.click("#detail-actions button[data-action=acknowledge]")
    expect(row(page, incident_id)).to_have_class(has_class("acknowledged"))
    assert deployment.get(f"/api/incidents/{incident_id}")["state"] == "acknowledged"
    assert unexpected(errors) == []
