"""``GET /api/coverage``: the supervisors' planning view over HTTP (the figures: tests/dispatch/test_coverage.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.console.test_api import account, auth, client, token

__all__ = ["client"]  # the fixture, shared with test_api


def test_supervisors_get_the_figures_and_bad_asks_get_their_codes(client: TestClient) -> None:
    admin = token(client)
    supervisor = account(client, admin, "sup", "supervisor")
    answer = client.get("/api/coverage?hour=3", headers=auth(supervisor))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["hour"] == 3 and body["target_s"] == 900.0
    whole = body["areas"][0]
    assert (whole["place"], whole["elders"], whole["covered"][3], whole["covered_twice"][3]) == ("*", 1, 1, 1)
    assert [r["responder_id"] for r in body["responders"]["shown"]] == ["c1", "c2"]

    tight = client.get("/api/coverage?target_min=1", headers=auth(supervisor)).json()
    assert tight["target_s"] == 60.0 and tight["areas"][0]["covered"] == [0] * 24
    assert tight["areas"][-1]["uncovered"] == ["e1"]

    for query, code in (("hour=24", "coverage_hour"), ("target_min=0.5", "coverage_target")):
        refused = client.get(f"/api/coverage?{query}", headers=auth(supervisor))
        assert refused.status_code == 422 and refused.json()["code"] == code, refused.text
    operator = account(client, admin, "op", "operator")
    assert client.get("/api/coverage", headers=auth(operator)).status_code == 403
