"""The rest of the registry page in a real browser (Debian's Chromium through Playwright) against a real
``anxin serve``, in Chinese at 1366x768: an admin adds a clinic and a volunteer on the second tab and edits the
volunteer's skills (the form's and the server's refusals in words); a supervisor merges one person registered
twice, found from the form and offered by a refused save, and the journal holds ``registry.elders_merged``; an
operator exports the elders of their area as a CSV with a byte order mark, and sees no responders' tab. The
admin's tab also fits a 360x640 phone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from simulators import city as city_generator
from tests.console.browser import (
    LAPTOP,
    OPERATOR,
    SUPERVISOR,
    City,
    Deployment,
    desk,
    login,
    missing_keys,
    phone,
    rows,
    screenshot,
    ui_text,
    untranslated,
    watch_errors,
)
from tests.process import ADMIN_PASSWORD

pytestmark = pytest.mark.process

ADMIN = ("admin", ADMIN_PASSWORD)
#: the browser's own note of a refusal the test provokes on purpose
REFUSED_422 = "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
REFUSED_409 = "Failed to load resource: the server responded with a status of 409 (Conflict)"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return City(city_generator.generate(tmp_path_factory.mktemp("city"), seed=11, elders=12, caregivers=3, clinics=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, city: City) -> Iterator[Deployment]:
    running = Deployment(tmp_path_factory.mktemp("server") / "data", city.files)
    yield running
    running.close()


def registry(browser: Browser, contexts: list[BrowserContext], url: str, who: tuple[str, str]) -> Page:
    contexts.append(context := desk(browser, LAPTOP))
    page = context.new_page()
    page.goto(f"{url}/registry")
    login(page, *who)
    expect(page.locator("#registry-view")).to_be_visible()
    return page


def merged_entries(deployment: Deployment) -> list[dict[str, Any]]:
    entries = deployment.get("/api/journal?limit=5000")["entries"]
    return [e for e in entries if e["kind"] == "registry.elders_merged"]


def test_an_admin_adds_a_clinic_and_a_volunteer_and_edits_the_volunteers_skills(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    base = city.elders[0]
    page = registry(browser, contexts, deployment.url, ADMIN)
    errors = watch_errors(page)
    page.click("#tab-responders")
    expect(page.locator("#responders-body tr")).to_have_count(len(city.responders))
    page.select_option("#r-kind-filter", "clinic")
    expect(page.locator("#responders-body tr")).to_have_count(sum(r["kind"] == "clinic" for r in city.responders))

    # a clinic: hours refused by the form until they read as hours, then saved with its green channel
    page.click("#new-responder")
    expect(page.locator("#responder-heading")).to_have_text("新增护理员或机构")
    page.fill("#r-id", "K0901")
    page.fill("#r-name", "檀林社区卫生服务站")
    page.select_option("#r-kind", "clinic")
    expect(page.locator("#r-skills")).to_be_hidden()
    page.fill("#r-phone", "0596-2123456")
    page.fill("#r-community", base["community"])
    page.fill("#r-lat", base["lat"])
    page.fill("#r-lon", base["lon"])
    page.fill("#r-hours", "早八点到晚五点")
    page.click("#responder-save")
    expect(page.locator("#responder-error")).to_have_text("营业时间应为 24h 或 HH:MM-HH:MM，如 08:00-17:30")
    page.fill("#r-hours", "08:00-17:30")
    page.check("#r-green-channel")
    page.click("#responder-save")
    expect(page.locator("#registry-notice")).to_have_text("已添加：檀林社区卫生服务站（K0901）")
    clinic = deployment.get("/api/responders/K0901")
    assert clinic["kind"] == "clinic" and clinic["hours"] == "08:00-17:30" and clinic["green_channel"] is True
    assert clinic["skills"] == [] and clinic["phone"] == "0596-2123456"

    # a volunteer: no skill is refused by the form, a bad phone by the server (its code, in words)
    page.click("#new-responder")
    page.fill("#r-id", "V0901")
    page.fill("#r-name", "黄志强")
    page.select_option("#r-kind", "volunteer")
    expect(page.locator("#r-hours")).to_be_hidden()
    page.fill("#r-community", base["community"])
    page.fill("#r-lat", base["lat"])
    page.fill("#r-lon", base["lon"])
    page.click("#responder-save")
    expect(page.locator("#responder-error")).to_have_text("护理员和志愿者至少要有一项技能")
    page.check('#r-skills input[value="life_care"]')
    page.fill("#r-phone", "电话号码")
    page.click("#responder-save")
    expect(page.locator("#responder-error")).to_have_text("输入有误：电话")
    page.fill("#r-phone", "13905961111")
    page.select_option("#r-travel", "bike")
    page.check("#r-on-call")
    # the saved record is read back slowly and the admin starts the next one meanwhile: the form stays new
    held: list[Route] = []
    page.route(
        "**/api/responders/V0901",
        lambda route: (held if route.request.method == "GET" else [route.continue_()]).append(route),
    )
    page.click("#responder-save")
    while not held:
        page.wait_for_timeout(20)
    page.click("#new-responder")
    with page.expect_response(lambda r: r.request.method == "GET" and r.url.endswith("/api/responders/V0901")):
        held[0].continue_()
    page.unroute("**/api/responders/V0901")
    expect(page.locator("#registry-notice")).to_have_text("已添加：黄志强（V0901）")
    page.evaluate("() => new Promise((done) => setTimeout(done, 50))")
    expect(page.locator("#responder-heading")).to_have_text("新增护理员或机构")
    expect(page.locator("#r-id")).to_be_editable()
    expect(page.locator("#r-id")).to_have_value("")
    # the same id again is someone's already
    page.click("#new-responder")
    page.fill("#r-id", "V0901")
    page.fill("#r-name", "另一个人")
    page.check('#r-skills input[value="comfort"]')
    page.fill("#r-community", base["community"])
    page.fill("#r-lat", base["lat"])
    page.fill("#r-lon", base["lon"])
    page.click("#responder-save")
    expect(page.locator("#responder-error")).to_have_text("编号 V0901 已被使用，请换一个")
    page.click("#responder-close")

    # edit the volunteer's skills: found by name among the volunteers
    page.select_option("#r-kind-filter", "volunteer")
    page.fill("#r-find", "黄志")
    row = page.locator('#responders-body tr[data-responder-id="V0901"]')
    expect(row).to_contain_text("生活照料")
    row.get_by_role("button", name="编辑").click()
    expect(page.locator("#responder-heading")).to_have_text("黄志强（V0901）")
    expect(page.locator("#r-on-call")).to_be_checked()
    page.check('#r-skills input[value="comfort"]')
    page.check('#r-skills input[value="nursing"]')
    page.click("#responder-save")
    expect(page.locator("#registry-notice")).to_have_text("已保存：黄志强（V0901）")
    expect(row).to_contain_text("生活照料、护理、精神慰藉")
    volunteer = deployment.get("/api/responders/V0901")
    assert volunteer["skills"] == ["life_care", "nursing", "comfort"] and volunteer["kind"] == "volunteer"
    assert volunteer["on_call"] is True and volunteer["travel"] == "bike" and volunteer["phone"] == "13905961111"
    saved = [e for e in deployment.get("/api/journal?limit=5000")["entries"] if e["kind"] == "registry.responder"]
    assert saved[-1]["payload"]["responder_id"] == "V0901" and saved[-1]["actor"] == "admin:admin"
    screenshot(page, "registry-responders-zh")
    assert not missing_keys(page), missing_keys(page)
    assert untranslated(ui_text(page), "zh-CN", city.text()) == []
    assert errors == [REFUSED_422], errors  # the bad phone, and nothing else
    # the same tab in English: the list, the form and the notice relabelled, no Chinese but the registry's data
    page.select_option("#lang-select", "en")
    expect(page.locator("#tab-responders")).to_have_text("Caregivers and clinics")
    expect(row).to_contain_text("life care")
    data = "\n".join([city.text(), "檀林社区卫生服务站", "黄志强"])
    assert untranslated(ui_text(page), "en", data) == []
    page.select_option("#lang-select", "zh-CN")

    # the admin's tab on a phone: nothing wider than the screen
    contexts.append(handset := phone(browser, float(base["lat"]), float(base["lon"])))
    small = handset.new_page()
    small.goto(f"{deployment.url}/registry")
    login(small, *ADMIN)
    small.click("#tab-responders")
    small.locator('#responders-body tr[data-responder-id="K0901"]').get_by_role("button", name="编辑").click()
    expect(small.locator("#r-hours")).to_have_value("08:00-17:30")
    assert small.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(small, "registry-responders-phone-zh")


def test_a_supervisor_merges_one_person_registered_twice(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    kept, twice = city.elders[1], city.elders[2]
    # the same person enrolled again elsewhere in the registry, with a watch and a son the first record lacks
    again = {**deployment.get(f"/api/elders/{kept['elder_id']}"), "elder_id": "dup-1", "phone": None,
             "address": kept["address"] + "（旧址）", "contacts": [{"name": "王小军", "phone": "13905969999",
             "relation": "儿子", "app": False}], "medical_notes": ""}  # fmt: skip
    for key in ("devices", "recent_incidents"):
        again.pop(key)
    response = deployment.http.put("/api/elders/dup-1?confirm_distinct=true", json=again, headers=deployment.headers())
    assert response.status_code == 200, response.text
    watch = {"device_id": "8611223344", "protocol": "watch", "elder_id": "dup-1"}
    assert deployment.http.put("/api/devices/8611223344", json=watch, headers=deployment.headers()).status_code == 200

    page = registry(browser, contexts, deployment.url, SUPERVISOR)
    errors = watch_errors(page)
    expect(page.locator("#tab-responders")).to_be_hidden()
    page.fill("#find", kept["elder_id"])
    page.locator(f'#found-body tr[data-elder-id="{kept["elder_id"]}"]').get_by_role("button", name="编辑").click()
    expect(page.locator("#merge-panel")).to_be_visible()
    expect(page.locator("#leave-reason")).to_have_value("moved_away")  # a select's first choice, never a blank
    page.fill("#merge-find", "dup-1")
    page.locator('#merge-found li[data-elder-id="dup-1"]').get_by_role("button", name="比较").click()
    expect(page.locator("#merge-keep-head")).to_have_text(f"保留：{kept['name']}（{kept['elder_id']}）")
    expect(page.locator("#merge-other-head")).to_have_text(f"并入后停用：{kept['name']}（dup-1）")
    expect(page.locator('#merge-rows tr[data-row="address"]')).to_have_class("merge-differs")
    expect(page.locator('#merge-rows tr[data-row="devices"] td').nth(1)).to_have_text("8611223344")
    moves = page.locator("#merge-moves")
    expect(moves).to_contain_text("把设备 8611223344 转到保留的档案")
    expect(moves).to_contain_text("把联系人 王小军 13905969999 加在保留档案的联系人之后")
    expect(moves).to_contain_text(f"随后停用 {kept['name']}（dup-1）的档案")
    screenshot(page, "registry-merge-zh")
    assert untranslated(ui_text(page), "zh-CN", city.text() + again["address"]) == []
    page.click("#merge-confirm")
    expect(page.locator("#registry-notice")).to_contain_text(f"已将 {kept['name']}（dup-1）并入 {kept['name']}")
    expect(page.locator("#registry-notice")).to_contain_text("转入设备 1 台，新增联系人 1 位")
    expect(page.locator('#devices-body tr[data-device-id="8611223344"]')).to_be_visible()
    assert "13905969999" in [c.input_value() for c in page.locator("#contacts .contact-phone").all()]
    assert deployment.get("/api/elders/dup-1")["active"] is False
    first = merged_entries(deployment)
    assert [(e["payload"]["keep"], e["payload"]["other"]) for e in first] == [(kept["elder_id"], "dup-1")]
    assert first[0]["payload"]["devices"] == ["8611223344"] and first[0]["actor"] == "supervisor:sup01"

    # a new elder refused as probably registered already: 合并 saves what was typed and merges it at once
    page.click("#new-elder")
    expect(page.locator("#elder-heading")).to_have_text("新建老人档案")
    expect(page.locator("#f-elder-id")).not_to_have_value("")
    new_id = page.input_value("#f-elder-id")
    page.fill("#f-name", twice["name"])
    page.fill("#f-birth-date", twice["birth_date"])
    page.fill("#f-phone", "13905968888")
    page.fill("#f-address", twice["address"])
    page.fill("#f-community", twice["community"])
    page.fill("#f-lat", twice["lat"])
    page.fill("#f-lon", twice["lon"])
    page.fill("#f-access", "钥匙在邻居302家")
    page.click("#elder-save")
    match = page.locator(f'#duplicates-list li[data-elder-id="{twice["elder_id"]}"]')
    expect(match).to_contain_text("姓名和出生日期相同")
    expect(match.get_by_role("button", name="打开该档案")).to_be_visible()
    match.get_by_role("button", name="合并").click()
    expect(page.locator("#merge-other-head")).to_have_text(f"新录入：{twice['name']}（{new_id}，尚未保存）")
    expect(page.locator("#merge-swap")).to_be_hidden()
    expect(page.locator("#merge-moves")).to_contain_text("进门方式")
    page.click("#merge-confirm")
    expect(page.locator("#elder-heading")).to_have_text(f"{twice['name']}（{twice['elder_id']}）")
    expect(page.locator("#f-access")).to_have_value("钥匙在邻居302家")
    assert [e["payload"]["other"] for e in merged_entries(deployment)] == ["dup-1", new_id]
    assert deployment.get(f"/api/elders/{new_id}")["active"] is False
    assert not missing_keys(page), missing_keys(page)
    assert errors == [REFUSED_409], errors  # the save refused as a probable duplicate, and nothing else


def test_a_supervisor_exports_the_elders_of_their_area_and_an_operator_cannot(
    deployment: Deployment, browser: Browser, city: City, contexts: list[BrowserContext]
) -> None:
    operator = registry(browser, contexts, deployment.url, OPERATOR)
    expect(operator.locator("#tab-responders")).to_be_hidden()
    for kind in ("elders", "devices", "responders"):  # a file of everyone's medical notes: not an operator's
        expect(operator.locator(f"#export-{kind}")).to_be_hidden()
    page = registry(browser, contexts, deployment.url, SUPERVISOR)
    errors = watch_errors(page)
    expect(page.locator("#tab-responders")).to_be_hidden()
    expect(page.locator("#export-responders")).to_be_hidden()
    with page.expect_download() as download:
        page.click("#export-elders")
    assert download.value.suggested_filename == "elders.csv"
    data = Path(download.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # a byte order mark, for spreadsheets
    text = data.decode("utf-8-sig")
    assert text.startswith("elder_id,") and city.elders[0]["name"] in text and city.elders[0]["elder_id"] in text
    with page.expect_download() as devices:
        page.click("#export-devices")
    assert devices.value.suggested_filename == "devices.csv"
    listed = Path(devices.value.path()).read_bytes().decode("utf-8-sig")
    keys = [d["aes_key"] for d in rows(city.files["devices"]) if d["aes_key"]]
    assert "aes_key" in listed.splitlines()[0] and not [k for k in keys if k in listed]  # never a device's key
    reads = [e for e in deployment.get("/api/journal?limit=5000")["entries"] if e["kind"] == "records.read"]
    assert {e["payload"]["what"] for e in reads if e["actor"] == "supervisor:sup01"} >= {
        "export.elders",
        "export.devices",
    }
    assert not missing_keys(page), missing_keys(page)
    assert not errors, errors
