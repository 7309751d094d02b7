"""The pages without a browser: what the server sends, the public config, the two catalogues, no CDN.

The browser tests (test_browser.py) show the pages working; these check what can be checked from the files
and the HTTP answers alone, so they run (fast) even where Chromium is missing.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from anxin.server import app_for
from console.auth import ROLES
from dispatch.engine import OUTSIDE_SERVICES
from dispatch.entries import CallKind, Location, OrderSource, PlanTaskOutcome, Wellbeing
from dispatch.followups import FollowUpEvent, FollowUpState
from dispatch.gazetteer import PlaceKind
from dispatch.machines import AssignmentEvent, AssignmentState, IncidentEvent, IncidentState, OrderEvent, OrderState
from dispatch.registry import SKILLS, Device, Elder, Entitlement, LivesWith, ResponderKind, RiskFlag, Travel
from dispatch.search import MatchKind
from dispatch.settings import Settings
from dispatch.triage import ALARM_TYPES, GROUPED_TYPES
from gateway.registry import protocols
from tests.conftest import elder, responder, seed, settings_for

STATIC = Path(__file__).resolve().parents[2] / "console" / "static"
PAGES = {
    "/console": "console.html",
    "/supervisor": "supervisor.html",
    "/m": "phone.html",
    "/accounts": "accounts.html",
    "/care-calls": "carecalls.html",
    "/plans": "plans.html",
    "/duty": "duty.html",
    "/services": "services.html",
    "/statements": "statements.html",
    "/calls": "calllog.html",
    "/reports": "reports.html",
    "/elder": "elder.html",
}
CJK_FIRST = '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif'
TILES = "https://tiles.example.org/{z}/{x}/{y}.png"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data", map_tiles=TILES)
    asyncio.run(
        seed(
            settings,
            elders=[elder("e1", contacts=[{"name": "王强", "phone": "13800000001", "relation": "儿子"}])],
            responders=[responder("c1", 24.511, 117.70)],
            devices=[Device(device_id="1234", protocol="sia-dc09", elder_id="e1", aes_key="00" * 16)],
        )
    )
    with TestClient(app_for(settings)) as test_client:
        yield test_client


def catalogue(language: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((STATIC / "i18n" / f"{language}.json").read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize(("path", "name"), PAGES.items())
def test_pages_are_served_as_utf8_html(client: TestClient, path: str, name: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<meta charset="utf-8">' in page.text
    assert page.text == (STATIC / name).read_text(encoding="utf-8")
    assert client.get("/", follow_redirects=False).headers["location"] == "/console"


def test_the_public_config_names_the_deployment_and_nothing_personal(client: TestClient) -> None:
    config = client.get("/api/config")  # no token: the login page needs it
    assert config.status_code == 200
    assert config.json() == {
        "timezone": "Asia/Shanghai",
        "answer_target_s": 60.0,
        "offer_timeout_s": 45.0,
        "position_stale_s": 1800.0,
        "map_tiles": TILES,
        "languages": ["zh-CN", "en"],
        "default_language": "zh-CN",
    }


def test_the_map_tiles_setting_needs_a_url_template(tmp_path: Path) -> None:
    assert Settings(data=tmp_path).map_tiles is None
    assert Settings(data=tmp_path, map_tiles="  ").map_tiles is None
    with pytest.raises(ValidationError, match=r"\{y\}"):
        Settings(data=tmp_path, map_tiles="https://tiles.example.org/{z}/{x}.png")


def test_the_elder_record_carries_device_status_and_recent_incidents(client: TestClient) -> None:
    token = client.post("/api/auth/token", data={"username": "admin", "password": "test-admin-pw"}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    raised = client.post("/api/alarms", json={"elder_id": "e1", "alarm_type": "sos"}, headers=headers).json()
    record = client.get("/api/elders/e1", headers=headers).json()
    assert record["devices"] == [
        {"device_id": "1234", "protocol": "sia-dc09", "elder_id": "e1", "checkin_s": 3600, "drill": False,
         "status": None, "keyed": True, "test": None}
    ]  # fmt: skip
    assert [i["incident_id"] for i in record["recent_incidents"]] == [raised["incident_id"]]
    assert record["recent_incidents"][0]["alarm_type"] == "sos"
    assert record["contacts"] == [{"name": "王强", "phone": "13800000001", "relation": "儿子", "app": False}]


def test_both_catalogues_have_the_same_keys_and_placeholders() -> None:
    zh, en = catalogue("zh-CN"), catalogue("en")
    assert sorted(zh) == sorted(en)
    for key in zh:
        assert zh[key].strip() or key.startswith("list."), key
        assert en[key].strip() or key.startswith("list."), key
        assert set(re.findall(r"\{\w+\}", zh[key])) == set(re.findall(r"\{\w+\}", en[key])), key
    assert not any(re.search(r"[\u4e00-\u9fff]", text) for text in en.values())


def keys_in_code() -> set[str]:
    keys: set[str] = set()
    for path in STATIC.glob("*.html"):
        keys.update(re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', path.read_text(encoding="utf-8")))
    for path in STATIC.glob("*.js"):
        text = path.read_text(encoding="utf-8")
        keys.update(re.findall(r'\bt\("([a-z0-9_.-]+)"', text))
        keys.update(re.findall(r'"((?:facts|form|preset|login|phone|record)\.[a-z0-9_]+)"', text))
    return keys


def test_every_key_the_pages_name_is_in_the_catalogue() -> None:
    used = keys_in_code()
    assert len(used) > 200
    assert used - catalogue("zh-CN").keys() == set()


def test_every_code_the_server_sends_has_words() -> None:
    codes = {
        "alarm": ALARM_TYPES,
        "state": [s.value for s in IncidentState],
        "state_short": [s.value for s in IncidentState],  # the queue's state column
        "event": [e.value for e in (*IncidentEvent, *AssignmentEvent)],  # illegal_transition's {event}
        "callkind": get_args(CallKind),
        "matched": get_args(MatchKind),
        "placekind": get_args(PlaceKind),
        "assignment": [s.value for s in AssignmentState],
        "skill": SKILLS,
        "risk": get_args(RiskFlag),
        "travel": get_args(Travel),
        "kind": get_args(ResponderKind),
        "protocol": tuple(protocols()),  # every protocol of the gateway's registry
        "entitlement": get_args(Entitlement),
        "role": ROLES,
        "actor": (*ROLES, "system", "device"),
        "service": tuple(OUTSIDE_SERVICES),
        "source": ("api", "hotline", "device", "supervision", "operator"),
        "location": get_args(Location),
        "call": ("ringing", "answered", "ended"),
        "wellbeing": get_args(Wellbeing),  # a care call's mark (dispatch.carecalls)
        "plan_outcome": get_args(PlanTaskOutcome),  # what became of a missed planned visit
        "weekday": range(1, 8),  # a plan's ISO weekdays
        "orderstate": [s.value for s in OrderState],  # the service desk's orders
        "orderaction": [e.value for e in OrderEvent],
        "ordersource": get_args(OrderSource),
        "followupstate": [s.value for s in FollowUpState],
        "followupevent": [e.value for e in FollowUpEvent],
        "machine": ("incident", "assignment", "service_order", "follow_up"),
        "group": [f"{t}{one}" for t in GROUPED_TYPES for one in ("", "_one")],  # a grouped incident's title
        "file.field": tuple(Elder.model_fields),  # what changed in a record, on the elder's file's timeline
        "file.lives_with": get_args(LivesWith),
    }
    zh = catalogue("zh-CN")
    missing = [f"{group}.{code}" for group, values in codes.items() for code in values if f"{group}.{code}" not in zh]
    assert missing == []


@pytest.mark.parametrize("sheet", ["console.css", "phone.css"])
def test_the_font_stack_names_chinese_fonts_first(sheet: str) -> None:
    blocks = re.findall(r"\nbody \{[^}]*\}", (STATIC / sheet).read_text(encoding="utf-8"))
    assert any(f"font-family: {CJK_FIRST};" in block for block in blocks)


def test_everything_is_served_from_the_app_itself() -> None:
    """No CDN, no third-party script: every script and style sheet is a local file; the only outside
    addresses are the SVG namespace and the map app link a caregiver may follow."""
    allowed = {"http://www.w3.org/2000/svg", "https://uri.amap.com/marker"}
    for path in STATIC.rglob("*"):
        if path.suffix not in (".html", ".js", ".css", ".svg"):
            continue
        text = path.read_text(encoding="utf-8")
        for address in re.findall(r"https?://[^\s\"'`?)]+", text):
            assert address in allowed, f"{path.name}: {address}"
        for local in re.findall(r'(?:src|href)="([^"]+)"', text):
            assert local.startswith("/"), f"{path.name}: {local}"


def test_the_staff_pages_share_one_login_and_the_phone_keeps_its_own() -> None:
    """A link from the supervisor view to the console (and back) needs no second login; a caregiver's phone
    never shares a login with a staff page."""
    common = (STATIC / "common.js").read_text(encoding="utf-8")
    key = re.search(r'export const STAFF_SESSION = "([^"]+)";', common)
    assert key is not None
    for script in ("console.js", "supervisor.js", "plans.js", "duty.js", "carecalls.js", "elder.js"):
        assert "new Session(STAFF_SESSION)" in (STATIC / script).read_text(encoding="utf-8"), script
    phone = re.search(r'new Session\("([^"]+)"\)', (STATIC / "phone.js").read_text(encoding="utf-8"))
    assert phone is not None and phone[1] != key[1]


def test_forms_with_words_to_check_say_so_in_the_pages_language() -> None:
    """The browser's own bubble ("Please fill out this field.") speaks the browser's language, not the page's:
    the console's forms check their fields themselves (novalidate) and say what is missing."""
    page = (STATIC / "console.html").read_text(encoding="utf-8")
    for form in ("action-form", "locate-form", "new-incident-form"):
        tag = re.search(rf'<form id="{form}"[^>]*>', page)
        assert tag is not None and "novalidate" in tag[0], form
    desk = (STATIC / "services.html").read_text(encoding="utf-8")
    for form in ("act-form", "followup-form"):
        tag = re.search(rf'<form id="{form}"[^>]*>', desk)
        assert tag is not None and "novalidate" in tag[0], form
    order = (STATIC / "orderdialog.js").read_text(encoding="utf-8")
    assert 'el("form", { id: "order-form", noValidate: true }' in order
    calls = (STATIC / "calls.js").read_text(encoding="utf-8")
    assert 'el("form", { className: "callback-form", noValidate: true }' in calls
    assert "required: true" not in calls
