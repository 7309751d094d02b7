"""A family member answers the alarm on the phone page (/m), in Chinese, at 360×640: the centre's admin makes the
son's account on the accounts page (1366×768); nobody of the centre is on duty, so the son, who opted in, is
offered his mother's SOS; he presses 我去, sets off and reports his
arrival, and the operator's console shows him holding it. Headless Chromium (Debian's ``/usr/bin/chromium``)
against a real ``anxin serve``; screenshots go to ``ANXIN_SCREENSHOTS`` (else ``docs/screenshots``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from dispatch.family import kin_id
from dispatch.registry import Elder
from simulators import city as city_generator
from tests.console.browser import (
    LAPTOP,
    PHONE,
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
from tests.process import ADMIN_PASSWORD

pytestmark = pytest.mark.process

ZH = catalogue("zh-CN")
SON = ("liming", "family-pass-1")
SON_PHONE = "13800138011"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return City(city_generator.generate(tmp_path_factory.mktemp("city"), seed=17, elders=40, caregivers=6, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    running = Deployment(tmp_path_factory.mktemp("server") / "data", city.files)
    yield running
    running.close()


def make_the_sons_account(
    deployment: Deployment, browser: Browser, contexts: list[BrowserContext], elder: Elder
) -> None:
    """The centre's admin makes his account on the accounts page, at 1366x768: the elder found by id, the son
    picked from her contacts (the daughter, not on the phone page, cannot be picked)."""
    contexts.append(admin_context := desk(browser, LAPTOP))
    admin = admin_context.new_page()
    errors = watch_errors(admin)
    admin.goto(f"{deployment.url}/accounts")
    login(admin, "admin", ADMIN_PASSWORD)
    expect(admin.locator('#accounts-body tr[data-username="admin"]')).to_be_visible()
    admin.click("#account-new")
    admin.fill("#account-username", SON[0])
    admin.select_option("#account-role", "family")
    expect(admin.locator("#account-role-hint")).to_have_text(ZH["accounts.role_hint_family"])
    expect(admin.locator("#account-responder-field")).to_be_hidden()
    expect(admin.locator(f'#scope-picker input[data-scope="{elder.community}"]')).to_be_visible()
    admin.fill("#account-elder", elder.elder_id)
    admin.press("#account-elder", "Enter")
    options = admin.locator("#account-contact option")
    expect(options).to_have_count(2)
    expect(options.first).to_be_disabled()
    expect(options.first).to_contain_text(ZH["accounts.contact_no_app"])
    expect(admin.locator("#account-contact")).to_have_value(kin_id(elder.elder_id, SON_PHONE))
    expect(admin.locator("#account-name")).to_have_value("李明")
    expect(admin.locator(f'#scope-picker input[data-scope="{elder.community}"]')).to_be_checked()
    admin.fill("#account-password", SON[1])
    screenshot(admin, "accounts-family-zh")
    admin.click("#account-submit")
    expect(admin.locator(f'#accounts-body tr[data-username="{SON[0]}"]')).to_be_visible()
    account = next(a for a in deployment.get("/api/accounts")["accounts"] if a["username"] == SON[0])
    assert (account["role"], account["name"], account["responder_id"], account["scopes"]) == (
        "family", "李明", kin_id(elder.elder_id, SON_PHONE), [elder.community],
    )  # fmt: skip
    assert errors == []


def test_a_family_member_accepts_on_the_phone_page_and_arrives(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    elder_id = city.elder_in(0)["elder_id"]
    record = deployment.get(f"/api/elders/{elder_id}")
    fields = {name: record[name] for name in Elder.model_fields if name in record}
    daughter = {"name": "李芳", "phone": "13800138012", "relation": "女儿", "app": False}
    son = {"name": "李明", "phone": SON_PHONE, "relation": "儿子", "app": True}
    elder = Elder.model_validate({**fields, "contacts": [daughter, son]})
    saved = deployment.http.put(f"/api/elders/{elder_id}", json=elder.model_dump(mode="json"),
                                headers=deployment.headers())  # fmt: skip
    assert saved.status_code == 200, saved.text
    make_the_sons_account(deployment, browser, contexts, elder)
    data = "\n".join([city.text(), "李明", "儿子", "李芳", "女儿"])

    contexts.append(handset_context := browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN",
        timezone_id="Asia/Shanghai",
    ))  # fmt: skip
    handset = handset_context.new_page()
    errors = watch_errors(handset)
    handset.goto(f"{deployment.url}/m")
    login(handset, *SON)
    expect(handset.locator("#idle-text")).to_contain_text(elder.name)  # whose alarms reach him here
    expect(handset.locator("#duty-panel")).to_be_hidden()  # no duty, no position: he is family, not staff
    expect(handset.locator("#position-state")).to_be_hidden()
    screenshot(handset, "phone-family-idle-zh")

    incident_id, _ = deployment.raise_alarm(elder_id, "sos")
    offer = handset.locator("#offer")
    expect(offer).to_be_visible()
    expect(handset.locator("#offer-title")).to_contain_text(elder.name)
    expect(handset.locator("#offer-community")).to_have_text(elder.address)
    expect(handset.locator("#accept-button")).to_have_text(ZH["phone.family_accept"])
    expect(handset.locator("#decline-button")).to_have_text(ZH["phone.family_decline"])
    expect(handset.locator("#offer-distance")).to_be_hidden()
    assert missing_keys(handset) == [] and untranslated(ui_text(handset), "zh-CN", data) == []
    screenshot(handset, "phone-family-offer-zh")

    contexts.append(laptop := desk(browser))
    console, console_errors = open_console(laptop, deployment.url)
    console.locator(f'#queue-body tr[data-incident-id="{incident_id}"]').click()
    held = console.locator(f'#assignments-body tr[data-responder-id="{kin_id(elder_id, SON_PHONE)}"]')
    expect(held).to_contain_text("李明（儿子）")  # the operator sees who holds the offer
    expect(held).to_contain_text(ZH["offer_by.family"])
    expect(held).to_have_attribute("data-state", "offered")

    handset.click("#accept-button")
    job = handset.locator("#job")
    expect(job).to_be_visible()
    expect(handset.locator("#job-name")).to_have_text(elder.name)
    expect(handset.locator("#job-contacts")).to_be_hidden()  # the other relatives' numbers stay with the centre
    expect(handset.locator("#job-notes")).to_be_hidden()  # and so does the centre's health assessment
    handset.click('#job button[data-status="en_route"]')
    expect(job).to_have_attribute("data-state", "en_route")
    handset.click('#job button[data-status="on_scene"]')
    expect(job).to_have_attribute("data-state", "on_scene")
    screenshot(handset, "phone-family-on-scene-zh")
    expect(held).to_have_attribute("data-state", "on_scene")
    assert deployment.get(f"/api/incidents/{incident_id}")["state"] == "on_scene"
    assert errors == [] and console_errors == []
