"""The registry in and out over HTTP (console.registryio): a person registered twice refused and merged, the CSV
export in reach, the import under the running engine. A real data folder, two streets (tests/console/streets)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from dispatch.exporter import BOM
from tests.conftest import elder, settings_for
from tests.console.streets import STREET_A, STREET_B, person, seed_two_streets
from tests.console.test_api import auth, token

A = f"{STREET_A}/蓝田社区"
B = f"{STREET_B}/朝阳社区"
NUMBER = "11010519491231002X"


@pytest.fixture
def city(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path / "data", read_window_s=0)
    asyncio.run(seed_two_streets(settings))
    with TestClient(app_for(settings)) as client:
        yield client


def head(client: TestClient) -> int:
    seq: int = client.app.state.core.journal.durable_seq  # type: ignore[attr-defined]
    return seq


def kinds(client: TestClient, after: int) -> list[tuple[str, dict[str, Any]]]:
    """The journal's entries after ``after``, read from the core (asking the API would be a read on record)."""
    entries = client.portal.call(client.app.state.core.journal.read, after, 1000)  # type: ignore[attr-defined, union-attr]
    return [(entry.kind, entry.as_dict()["payload"]) for entry in entries]


def put(client: TestClient, who: str, body: dict[str, Any], query: str = "") -> Any:
    return client.put(f"/api/elders/{body['elder_id']}{query}", json=body, headers=auth(who))


def record(elder_id: str, **fields: Any) -> dict[str, Any]:
    return elder(elder_id, **{"community": A, **fields}).model_dump(mode="json")


# -- a new elder who is probably one registered already ---------------------------------------------------


def test_a_new_elder_registered_already_is_refused_naming_only_those_in_reach(city: TestClient) -> None:
    admin = token(city)
    scoped = person(city, admin, "adm_a", "admin", [STREET_A])
    before = head(city)
    # ea (王秀英, born 1950-03-01) again, her name typed with a space
    again = put(city, admin, record("ea2", name="王 秀英", phone="13900000001"))
    assert again.status_code == 409, again.text
    answer = again.json()
    assert answer["code"] == "possible_duplicate" and answer["params"]["count"] == 1
    assert answer["params"]["matches"] == [{"elder_id": "ea", "name": "王秀英", "community": A,
                                            "reasons": ["name_birth"]}]  # fmt: skip
    # street B's 朝阳老人 at her phone, registered by an admin of street A: counted, not named
    theirs = put(city, scoped, record("ea3", name="朝阳老人", phone="13505960099", birth_date=None))
    assert theirs.status_code == 409, theirs.text
    params = theirs.json()["params"]
    assert params["matches"] == [] and params["count"] == 1 and params["hidden"] == 1
    assert "eb" not in theirs.text and "朝阳社区" not in theirs.text
    assert head(city) == before  # nothing written
    # looked at, and two people: saved
    distinct = put(city, scoped, record("ea3", name="朝阳老人", phone="13505960099", birth_date=None),
                   "?confirm_distinct=true")  # fmt: skip
    assert distinct.status_code == 200, distinct.text
    # an edit that leaves name, birth date, phone and number alone is not judged again
    moved = put(city, scoped, record("ea3", name="朝阳老人", phone="13505960099", birth_date=None, address="新地址1号"))
    assert moved.status_code == 200, moved.text
    # one that makes her ea is
    renamed = put(city, scoped, record("ea3", name="王秀英", phone="13505960099", birth_date="1950-03-01"))
    assert renamed.status_code == 409 and renamed.json()["params"]["matches"][0]["elder_id"] == "ea"


# -- merging one person registered twice ------------------------------------------------------------------


def test_a_merge_moves_devices_unites_contacts_fills_the_gaps_and_retires_the_other(city: TestClient) -> None:
    admin = token(city)
    supervisor = person(city, admin, "sup_a", "supervisor", [STREET_A])
    son, daughter = (
        {"name": "李明", "phone": "13800000011", "relation": "儿子"},
        {"name": "李芳", "phone": "13900000022"},
    )
    assert put(city, admin, record("ea", contacts=[son])).status_code == 200
    copy = record("ea_dup", name="王秀英", phone="13600000009", birth_date=None, resident_id=NUMBER, care_level=2,
                  contacts=[{**son, "phone": "+86 138 0000 0011"}, daughter])  # fmt: skip
    assert put(city, admin, copy, "?confirm_distinct=true").status_code == 200
    watch = {"device_id": "8800000009", "protocol": "watch", "elder_id": "ea_dup"}
    assert city.put("/api/devices/8800000009", json=watch, headers=auth(admin)).status_code == 200
    before = head(city)

    merged = city.post("/api/elders/ea/merge", json={"other": "ea_dup"}, headers=auth(supervisor))
    assert merged.status_code == 200, merged.text
    kept = merged.json()["elder"]
    assert [c["phone"] for c in kept["contacts"]] == ["13800000011", "13900000022"]  # kept's first, no phone twice
    assert kept["resident_id"] == NUMBER and kept["care_level"] == 2  # her gaps filled
    assert kept["phone"] == "13505960001" and kept["birth_date"] == "1950-03-01"  # what she had stays
    assert [d["device_id"] for d in kept["devices"]] == ["8800000001", "8800000009"]
    [(kind, fact)] = [(k, f) for k, f in kinds(city, before) if k.startswith("registry.")]
    assert kind == "registry.elders_merged"
    assert fact["keep"] == "ea" and fact["other"] == "ea_dup" and fact["devices"] == ["8800000009"]
    assert fact["contacts"] == ["13900000022"] and set(fact["filled"]) == {"resident_id", "care_level"}
    assert fact["old"] == {"resident_id": None, "care_level": None, "contacts": [{**son, "app": False}]}
    assert fact["reason"] == "merged into ea"
    viewed = [(f["elder_id"], f["what"]) for k, f in kinds(city, before) if k == "elder.viewed"]
    assert viewed == [("ea", "record")]  # the kept record, shown whole in the answer: a read on record

    other = city.get("/api/elders/ea_dup", headers=auth(admin)).json()
    assert other["active"] is False and other["devices"] == []  # kept, readable
    assert city.get("/api/elders?q=13600000009", headers=auth(admin)).json()["elders"] == []
    ringing = {"event": "ringing", "call_id": "after-merge", "caller": "13600000009"}
    assert city.post("/api/hotline/events", json=ringing, headers=auth(admin)).json()["elder_id"] is None
    retired = city.post("/api/elders/ea/merge", json={"other": "ea_dup"}, headers=auth(supervisor))
    assert retired.status_code == 409 and retired.json()["code"] == "merge_inactive"


def test_a_merge_is_refused_out_of_reach_with_itself_and_between_two_numbers(city: TestClient) -> None:
    admin = token(city)
    supervisor = person(city, admin, "sup_a", "supervisor", [STREET_A])
    operator = person(city, admin, "op_a", "operator", [STREET_A])
    before = head(city)
    outside = city.post("/api/elders/ea/merge", json={"other": "eb"}, headers=auth(supervisor))
    assert outside.status_code == 404
    assert city.post("/api/elders/ea/merge", json={"other": "ea"}, headers=auth(supervisor)).json()["code"] == (
        "merge_same"
    )
    assert city.post("/api/elders/ea/merge", json={"other": "eb"}, headers=auth(operator)).status_code == 403
    assert head(city) == before
    assert put(city, admin, record("ea", resident_id=NUMBER)).status_code == 200
    twin = record("ea_twin", phone="13600000008", resident_id="110105194912310038")
    assert put(city, admin, twin).status_code == 200  # a namesake born the same day, with her own number
    two = city.post("/api/elders/ea/merge", json={"other": "ea_twin"}, headers=auth(admin))
    assert two.status_code == 409 and two.json()["code"] == "merge_distinct"


# -- export and import ------------------------------------------------------------------------------------


def test_an_export_holds_the_callers_part_and_is_a_read_on_record(city: TestClient) -> None:
    admin = token(city)
    operator = person(city, admin, "op_a", "operator", [STREET_A])
    assert city.get("/api/registry/export/elders.csv", headers=auth(operator)).status_code == 403  # supervisors'
    supervisor = person(city, admin, "sup_a", "supervisor", [STREET_A])
    before = head(city)
    elders = city.get("/api/registry/export/elders.csv", headers=auth(supervisor))
    assert elders.status_code == 200 and elders.headers["content-type"].startswith("text/csv")
    assert elders.content.startswith(BOM.encode("utf-8"))
    lines = elders.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("elder_id,name,phone,address,lat,lon,community,") and len(lines) == 2
    assert lines[1].startswith("ea,王秀英,")
    devices = city.get("/api/registry/export/devices.csv", headers=auth(supervisor)).text
    assert "8800000001" in devices and "8800000002" not in devices
    assert city.get("/api/registry/export/responders.csv", headers=auth(supervisor)).status_code == 403
    reads = [fact for kind, fact in kinds(city, before) if kind == "records.read"]
    assert [(r["what"], r["count"], r["filter"]) for r in reads] == [
        ("export.elders", 1, STREET_A), ("export.devices", 1, STREET_A)
    ]  # fmt: skip
    reads = city.get("/api/elders/ea/reads", headers=auth(admin)).json()["reads"]
    assert {(r["actor"], r["what"]) for r in reads} >= {("supervisor:sup_a", "export.elders")}


def test_what_is_exported_imported_again_changes_nothing(city: TestClient) -> None:
    admin = token(city)
    files = {}
    for kind in ("elders", "devices", "responders"):
        exported = city.get(f"/api/registry/export/{kind}.csv", headers=auth(admin))
        assert exported.status_code == 200
        files[kind] = (f"{kind}.csv", exported.content, "text/csv")
    before = head(city)
    report = city.post("/api/registry/import", files=files, headers=auth(admin))
    assert report.status_code == 200, report.text
    assert report.json() == {
        "elders": {"added": 0, "updated": 0, "unchanged": 2},
        "devices": {"added": 0, "updated": 0, "unchanged": 2},
        "responders": {"added": 0, "updated": 0, "unchanged": 2},
        "errors": [],
    }
    assert head(city) == before  # nothing changed: nothing journaled


def test_an_import_runs_under_the_engine_and_is_journaled(city: TestClient, tmp_path: Path) -> None:
    admin = token(city)
    header = "elder_id,name,phone,address,lat,lon,community,resident_id,lives_with"
    rows = [
        f"en1,陈桂兰,13700000001,蓝田社区8号,24.511,117.701,{A},{NUMBER},alone",
        f"en2,王秀英,13505960001,蓝田社区1号楼101室,24.51,117.7,{A},,",  # ea by name and phone
    ]
    elders = "\n".join([header, *rows]).encode("utf-8")
    devices = b"device_id,protocol,elder_id,aes_key,checkin_s\n8800000010,watch,en1,,600\n"
    scoped = person(city, admin, "adm_a", "admin", [STREET_A])
    files = {"elders": ("新登记.csv", elders, "text/csv"), "devices": ("devices.csv", devices, "text/csv")}
    refused = city.post("/api/registry/import", files=files, headers=auth(scoped))
    assert refused.status_code == 403 and refused.json()["code"] == "out_of_scope"
    key = _import_key(city, admin)
    before = head(city)
    report = city.post("/api/registry/import", files=files, headers=auth(key))
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["elders"]["added"] == 1 and body["devices"]["added"] == 1
    [error] = body["errors"]
    assert (error["file"], error["line"]) == ("新登记.csv", 3)
    assert "possible duplicate: probably the same person as elder ea 王秀英" in error["reason"]
    [(kind, fact)] = kinds(city, before)
    assert kind == "registry.imported" and fact["counts"]["elders"]["added"] == 1 and fact["errors"] == 1
    assert fact["files"] == {"elders": "新登记.csv", "devices": "devices.csv"}
    seen = city.get("/api/elders/en1", headers=auth(admin)).json()  # in the directory at once
    assert seen["lives_with"] == "alone" and [d["device_id"] for d in seen["devices"]] == ["8800000010"]
    bad = city.post("/api/registry/import", files={"elders": ("x.csv", b"\xff\xfe", "text/csv")}, headers=auth(key))
    assert bad.status_code == 422 and bad.json()["code"] == "import_refused"
    wrong = city.post("/api/registry/import", files={"people": ("x.csv", b"a\n", "text/csv")}, headers=auth(key))
    assert wrong.status_code == 422 and wrong.json()["code"] == "import_refused"


def _import_key(client: TestClient, admin: str) -> str:
    body = {"username": "registrar", "name": "registrar", "role": "service", "grants": ["import"], "scopes": ["*"]}
    assert client.post("/api/accounts", json=body, headers=auth(admin)).status_code == 201
    issued = client.post("/api/accounts/registrar/keys", json={"label": "anxin import"}, headers=auth(admin))
    assert issued.status_code == 201, issued.text
    key: str = issued.json()["key"]
    return key


def test_the_import_journal_entry_is_in_the_sqlite_file(city: TestClient, tmp_path: Path) -> None:
    """The route's entry is durable in the data folder's journal (what ``anxin verify`` reads)."""
    admin = token(city)
    elders = f"elder_id,name,phone,address,lat,lon,community\nen9,陈桂兰,13700000009,蓝田社区9号,24.51,117.7,{A}\n"
    done = city.post("/api/registry/import", files={"elders": ("e.csv", elders.encode(), "text/csv")},
                     headers=auth(admin))  # fmt: skip
    assert done.status_code == 200 and done.json()["elders"]["added"] == 1
    db = sqlite3.connect(tmp_path / "data" / "anxin.sqlite3")
    try:
        count = db.execute("SELECT count(*) FROM journal WHERE kind = 'registry.imported'").fetchone()[0]
    finally:
        db.close()
    assert count == 1
