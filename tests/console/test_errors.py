"""Every error of the API carries a code that the pages translate; the operator reads names, not ids.

Three walks: every code the packages can answer with has a sentence in both catalogues; every ``code=``
written in the source (and every class's default code) is a known code; and a tour of real refusals through
the running app answers each with a known code.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from console.errors import ALL_CODES
from tests.console.test_api import account, auth, client, token

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = ROOT / "console" / "static" / "i18n"
PACKAGES = ("dispatch", "console", "gateway", "anxin")

__all__ = ["client"]  # the fixture, shared with test_api


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_every_code_has_a_sentence_in_each_catalogue(language: str) -> None:
    catalogue = json.loads((CATALOGUES / f"{language}.json").read_text(encoding="utf-8"))
    missing = sorted(code for code in ALL_CODES if f"error.{code}" not in catalogue)
    assert not missing, f"{language}.json lacks error.<code> for {missing}"


def _codes_written() -> Iterator[tuple[str, str]]:
    """(where, code) for every ``code="..."`` keyword and every ``code: ClassVar[str] = "..."`` in the packages."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    for keyword in node.keywords:
                        value = keyword.value
                        if keyword.arg == "code" and isinstance(value, ast.Constant) and isinstance(value.value, str):
                            yield f"{path.relative_to(ROOT)}:{node.lineno}", value.value
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    default = node.value
                    is_class_code = node.target.id == "code" and "ClassVar" in ast.unparse(node.annotation)
                    if is_class_code and isinstance(default, ast.Constant) and isinstance(default.value, str):
                        yield f"{path.relative_to(ROOT)}:{node.lineno}", default.value


def test_every_code_written_in_the_source_is_known() -> None:
    written = list(_codes_written())
    assert len(written) > 30  # the walk found the raises
    unknown = [(where, code) for where, code in written if code not in ALL_CODES]
    assert not unknown, f"codes not in dispatch.errors.CODES / console.errors.CONSOLE_CODES: {unknown}"


def test_refusals_answer_with_known_codes_and_names(client: TestClient) -> None:
    admin = token(client)
    operator = account(client, admin, "op", "operator")
    caregiver = account(client, admin, "c1", "caregiver", "c1")
    head = auth(operator)

    def refused(method: str, url: str, expect: int, code: str | None = None, **kwargs: object) -> dict[str, object]:
        response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == expect, response.text
        body: dict[str, object] = response.json()
        assert body["code"] in ALL_CODES, body
        assert isinstance(body["params"], dict)
        if code is not None:
            assert body["code"] == code, body
        return body

    refused("POST", "/api/auth/token", 401, "login_failed", data={"username": "admin", "password": "nope"})
    refused("GET", "/api/incidents", 401, "unauthorized")
    refused("GET", "/api/journal", 403, "forbidden", headers=head)
    refused("GET", "/api/nothing-here", 404, "route_not_found", headers=head)
    refused("DELETE", "/api/incidents", 405, "method_not_allowed", headers=head)
    refused("POST", "/api/alarms", 422, "validation", json={"alarm_type": "sos", "lat": 91}, headers=head)
    refused("POST", "/api/alarms", 404, "unknown_elder", json={"elder_id": "nobody", "alarm_type": "sos"}, headers=head)
    refused("POST", "/api/alarms", 422, "alarm_needs_elder", json={"alarm_type": "sos"}, headers=head)
    refused("GET", "/api/incidents/INC-999", 404, "unknown_incident", headers=head)
    refused("POST", "/api/calls/none/classify", 404, "unknown_call", json={"kind": "silent"}, headers=head)
    refused(
        "POST", "/api/incidents", 404, "address_not_found",
        json={"alarm_type": "fall", "caller": "0596-1", "address": "火星基地"}, headers=head,
    )  # fmt: skip
    nan = '{"alarm_type": "fall", "caller": "13505960009", "lat": NaN, "lon": 117.7}'
    refused(
        "POST", "/api/incidents", 422, "validation", content=nan, headers={**head, "Content-Type": "application/json"}
    )
    huge = {"alarm_type": "sos", "elder_id": "e1", "note": "x" * 100_000}
    too_long = refused("POST", "/api/alarms", 422, "validation", json=huge, headers=head)
    assert len(json.dumps(too_long)) < 2_000  # where and what, never the input echoed back
    body = {"username": "op", "password": "password-123", "role": "operator"}
    refused("POST", "/api/accounts", 409, "account_exists", json=body, headers=auth(admin))

    opened = client.post("/api/alarms", json={"elder_id": "e1", "alarm_type": "fall"}, headers=head).json()
    incident = opened["incident_id"]
    client.post("/api/me/duty", json={"on": True, "lat": 24.511, "lon": 117.70}, headers=auth(caregiver))
    refused("POST", f"/api/incidents/{incident}/notes", 422, "validation", json={"text": ""}, headers=head)
    refused("POST", f"/api/incidents/{incident}/close", 409, "illegal_transition", headers=head)
    client.post(f"/api/incidents/{incident}/acknowledge", headers=head)
    again = refused("POST", f"/api/incidents/{incident}/acknowledge", 409, "already_acknowledged", headers=head)
    assert again["params"] == {"by": "op"}  # a name, not an actor string
    client.post(f"/api/incidents/{incident}/dispatch", json={"responder_id": "c1"}, headers=head)
    busy = client.post("/api/alarms", json={"elder_id": "e1", "alarm_type": "sos", "drill": True}, headers=head)
    drill_incident = busy.json()["incident_id"]
    named = refused(
        "POST", f"/api/incidents/{drill_incident}/dispatch", 409, "responder_busy",
        json={"responder_id": "c1"}, headers=head,
    )  # fmt: skip
    assert named["params"]["responder"] == "护理员c1"  # type: ignore[index]

    sip = "a84b4c76e66710/1@pbx.example"  # a SIP Call-ID may hold a slash
    for event in ("ringing", "answered"):
        client.post(
            "/api/hotline/events", json={"event": event, "call_id": sip, "caller": "0596-7654321"}, headers=head
        )
    classified = client.post(f"/api/calls/{quote(sip, safe='')}/classify", json={"kind": "wrong_number"}, headers=head)
    assert classified.status_code == 200 and classified.json()["kind"] == "wrong_number", classified.text
