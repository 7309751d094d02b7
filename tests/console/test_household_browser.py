"""A call from a couple's landline on the operator's console, in Chinese at 1366×768: the call card shows both
elders (name, age, address) and nobody's record until the operator asks who is speaking and picks the wife; her
record pops, and the journal holds the pick with who made it. Then their daughter, the contact of both, calls:
the card asks which parent, the father is picked, his record pops (also on a phone-sized console). Headless
Chromium (Debian's ``/usr/bin/chromium``) against a real ``anxin serve``; screenshots go to ``ANXIN_SCREENSHOTS`` (else
``docs/screenshots``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from dispatch.triage import age_on
from simulators import city as city_generator
from tests.console.browser import (
    LAPTOP,
    PHONE,
    City,
    Deployment,
    catalogue,
    desk,
    missing_keys,
    open_console,
    screenshot,
    ui_text,
    untranslated,
)

pytestmark = pytest.mark.process

ZH = catalogue("zh-CN")
LANDLINE = "0596-2345678"
DAUGHTER = "13900000001"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return City(city_generator.generate(tmp_path_factory.mktemp("city"), seed=29, elders=12, caregivers=2, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    running = Deployment(tmp_path_factory.mktemp("server") / "data", city.files)
    yield running
    running.close()


def move_in_together(deployment: Deployment, city: City) -> tuple[dict[str, str], dict[str, str]]:
    """Two elders of the city registered as a couple on one landline at the husband's home: (husband, wife)."""
    husband_row, wife_row = city.spare_elders(2, set())
    husband = deployment.get(f"/api/elders/{husband_row['elder_id']}")
    wife = deployment.get(f"/api/elders/{wife_row['elder_id']}")
    home = {key: husband[key] for key in ("address", "lat", "lon", "community")}
    for record, name, born in ((husband, "李建国", "1948-11-02"), (wife, "王秀英", "1952-08-15")):
        fields = {key: record[key] for key in ("elder_id", "medical_notes", "risk_flags")}
        contacts = [{"name": "李梅", "phone": DAUGHTER, "relation": "女儿"}, *record["contacts"]]  # both parents'
        body = {**fields, **home, "name": name, "phone": LANDLINE, "birth_date": born, "lives_with": "spouse",
                "contacts": contacts}  # fmt: skip
        response = deployment.http.put(f"/api/elders/{record['elder_id']}", json=body, headers=deployment.headers())
        assert response.status_code == 200, response.text
    return ({"elder_id": husband["elder_id"], "name": "李建国", "address": home["address"]},
            {"elder_id": wife["elder_id"], "name": "王秀英", "address": home["address"]})  # fmt: skip


def test_a_call_from_a_couples_landline_offers_both_and_the_operator_picks_the_wife(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    husband, wife = move_in_together(deployment, city)
    contexts.append(context := desk(browser, LAPTOP))
    page, errors = open_console(context, deployment.url)
    call = {"call_id": "landline-1", "caller": LANDLINE, "line": "12349-1"}
    rang = deployment.call("ringing", **call)
    assert rang["elder_id"] is None  # none chosen by the server
    pop = page.locator("#call-pop")
    expect(pop).to_be_visible()
    expect(pop.locator("#call-pop-who")).to_have_text(ZH["call.who_household"].replace("{n}", "2"))
    household = pop.locator("#call-pop-household")
    expect(household.locator("button.household-pick")).to_have_count(3)  # the two of them and "someone else"
    for person in (husband, wife):
        button = household.locator(f'button[data-elder-id="{person["elder_id"]}"]')
        expect(button).to_contain_text(person["name"])
        expect(button).to_contain_text(person["address"])
    age = age_on(date(1952, 8, 15), datetime.now(UTC).date())  # her age on the server's day
    expect(household.locator(f'button[data-elder-id="{wife["elder_id"]}"]')).to_contain_text(f"{age}岁")
    expect(household.locator('button[data-elder-id=""]')).to_have_text(ZH["call.household_other"])
    expect(pop.locator("#call-pop-record")).to_contain_text(ZH["call.household_pick_first"])
    expect(pop.locator(".record-name")).to_have_count(0)  # nobody's record before the pick
    deployment.call("answered", **call)
    expect(page.locator("#classify")).to_be_visible()
    expect(page.locator("#classify-unknown")).to_be_hidden()  # the search waits for the pick ("someone else")
    assert "null" not in (household.text_content() or "")
    box = household.bounding_box()
    assert box is not None and box["x"] + box["width"] <= LAPTOP["width"]  # the card fits the operator's screen
    screenshot(page, "console-household-call-zh")

    household.locator(f'button[data-elder-id="{wife["elder_id"]}"]').click()  # "我是王秀英"
    expect(pop.locator(".record-name")).to_contain_text(wife["name"])
    expect(pop.locator("#call-pop-who")).to_have_text(ZH["call.who_elder"].replace("{name}", wife["name"]))
    picked = household.locator(f'button[data-elder-id="{wife["elder_id"]}"]')
    expect(picked).to_have_attribute("aria-pressed", "true")
    expect(household.locator(".household-by")).to_contain_text("op01")
    screenshot(page, "console-household-picked-zh")

    entries = deployment.get("/api/journal?limit=5000")["entries"]
    picks = [e for e in entries if e["kind"] == "call.caller_picked"]
    assert [(e["actor"], e["payload"]) for e in picks] == [
        ("operator:op01", {"call_id": "landline-1", "elder_id": wife["elder_id"]})
    ]
    assert any(e["kind"] == "elder.viewed" and e["payload"]["elder_id"] == wife["elder_id"]
               and e["payload"]["what"] == "record" for e in entries)  # fmt: skip
    view = deployment.get("/api/calls/landline-1")
    assert (view["elder_id"], view["picked"]["elder_id"]) == (wife["elder_id"], wife["elder_id"])
    # their daughter calls next, the contact of both: which parent is it about? (the first call is done first)
    page.click("#classify button[data-kind=consultation]")
    deployment.call("ringing", call_id="daughter-1", caller=DAUGHTER)
    expect(pop).to_have_attribute("data-call-id", "daughter-1")
    expect(pop.locator("#call-pop-who")).to_have_text(
        ZH["call.who_contact_several"].replace("{name}", "李梅").replace("{n}", "2"))  # fmt: skip
    expect(household).to_contain_text(ZH["call.contact_pick"])
    expect(pop.locator(".record-name")).to_have_count(0)
    household.locator(f'button[data-elder-id="{husband["elder_id"]}"]').click()
    expect(pop.locator(".record-name")).to_contain_text(husband["name"])
    about_father = ZH["call.who_contact"].replace("{name}", "李梅").replace("{relation}", "女儿")
    expect(pop.locator("#call-pop-who")).to_have_text(about_father.replace("{elder}", "李建国"))
    contexts.append(small := desk(browser, PHONE))  # an operator on a phone: the card wraps, never sideways
    handset, handset_errors = open_console(small, deployment.url)
    expect(handset.locator("#call-pop-household .household-pick")).to_have_count(3)
    expect(handset.locator("#call-pop .record-name")).to_contain_text(husband["name"])
    assert handset.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(handset, "console-household-phone-zh")
    assert handset_errors == []
    assert missing_keys(page) == []
    assert untranslated(ui_text(page), "zh-CN", city.text() + LANDLINE + "李建国王秀英李梅") == []
    assert errors == []
