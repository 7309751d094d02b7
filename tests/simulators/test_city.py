"""The demo city: deterministic, realistic enough, and importable without a single refused row."""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from pathlib import Path

import aiosqlite
import pytest

from dispatch.importer import import_files, read_elders
from dispatch.store import SqliteRegistry, UpsertCounts
from simulators import city

SMALL = {"elders": 300, "caregivers": 24, "clinics": 5}


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance, precise enough at a few hundred metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


@pytest.fixture(scope="module")
def default_city(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return city.generate(tmp_path_factory.mktemp("city"))


def test_paths_and_counts(default_city: dict[str, Path]) -> None:
    assert sorted(default_city) == ["devices", "elders", "responders"]
    assert [path.name for path in default_city.values()] == ["elders.csv", "devices.csv", "responders.csv"]
    assert len(rows(default_city["elders"])) == 2000
    assert len(rows(default_city["devices"])) == 2000
    responders = rows(default_city["responders"])
    assert Counter(r["kind"] for r in responders) == {"caregiver": 42, "volunteer": 18, "clinic": 5}


def test_same_seed_same_bytes_other_seed_other_city(tmp_path: Path) -> None:
    first = city.generate(tmp_path / "a", seed=11, **SMALL)
    second = city.generate(tmp_path / "b", seed=11, **SMALL)
    third = city.generate(tmp_path / "c", seed=12, **SMALL)
    for kind in first:
        assert first[kind].read_bytes() == second[kind].read_bytes()
        assert first[kind].read_bytes() != third[kind].read_bytes()


def test_elders_live_near_their_community_centre(default_city: dict[str, Path]) -> None:
    centres = {community.path: community for community in city.COMMUNITIES}
    streets = {community.street for community in city.COMMUNITIES}
    assert 3 <= len(streets) <= 4
    for street in streets:
        assert 2 <= sum(c.street == street for c in city.COMMUNITIES) <= 4
    for elder in rows(default_city["elders"]):
        centre = centres[elder["community"]]
        assert metres(float(elder["lat"]), float(elder["lon"]), centre.lat, centre.lon) <= city.RADIUS_M + 1
        district, street, community = elder["community"].split("/")
        assert district == "龙文区"
        assert re.fullmatch(rf"{district}{street}{community}\d+号楼\d单元\d{{3,4}}室", elder["address"])
    # The whole city is in Longwen district, around 24.50 N, 117.71 E.
    for community in city.COMMUNITIES:
        assert metres(community.lat, community.lon, 24.50, 117.71) < 5_000


def test_elders_look_like_the_registry_expects(default_city: dict[str, Path]) -> None:
    elders = rows(default_city["elders"])
    phones = [e["phone"] for e in elders]
    assert len(set(phones)) == len(phones)
    assert all(re.fullmatch(r"1\d{10}", phone) for phone in phones)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,3}", e["name"]) for e in elders)
    assert all("1930-01-01" <= e["birth_date"] <= "1960-12-31" for e in elders)
    alone = sum("living_alone" in e["risk_flags"] for e in elders) / len(elders)
    assert 0.30 <= alone <= 0.40
    flags = Counter(flag for e in elders for flag in e["risk_flags"].split(";") if flag)
    assert flags["empty_nest"] > 0 and flags["disabled"] > 0 and flags["low_income"] > 0
    assert {e["care_level"] for e in elders} == {"0", "1", "2", "3", "4"}
    assert sum(bool(e["medical_notes"]) for e in elders) > len(elders) / 2
    assert len(elders) / 5 < sum(bool(e["access"]) for e in elders) < len(elders) / 2  # door codes, key holders
    contact_counts = Counter(len(e["contacts"].split(";")) for e in elders)
    assert set(contact_counts) == {1, 2, 3}
    assert all(re.fullmatch(r"[^:;]+:\d{11}:[^:;]+", c) for e in elders for c in e["contacts"].split(";"))


def test_fixed_caregivers_are_caregivers_of_the_same_community(default_city: dict[str, Path]) -> None:
    responders = {r["responder_id"]: r for r in rows(default_city["responders"])}
    elders = rows(default_city["elders"])
    with_caregiver = [e for e in elders if e["caregiver_id"]]
    assert 0.35 <= len(with_caregiver) / len(elders) <= 0.45
    for elder in with_caregiver:
        caregiver = responders[elder["caregiver_id"]]
        assert caregiver["kind"] == "caregiver"
        assert caregiver["community"] == elder["community"]


def test_devices(default_city: dict[str, Path]) -> None:
    devices = rows(default_city["devices"])
    assert len({d["device_id"] for d in devices}) == len(devices)
    assert len({d["elder_id"] for d in devices}) == len(devices)  # one per elder
    protocols = Counter(d["protocol"] for d in devices)
    assert set(protocols) == {"sia-dc09", "watch", "gt06"}
    for d in devices:
        if d["protocol"] == "sia-dc09":
            assert re.fullmatch(r"[0-9A-F]{6,10}", d["device_id"])
            assert d["aes_key"] == "" or re.fullmatch(r"[0-9A-F]{32}", d["aes_key"])
            assert d["checkin_s"] == "3600"
        else:
            assert re.fullmatch(r"\d{10}" if d["protocol"] == "watch" else r"\d{15}", d["device_id"])
            assert d["aes_key"] == "" and d["checkin_s"] == "600"
    assert any(d["aes_key"] for d in devices) and not all(d["aes_key"] for d in devices)


def test_imeis_have_a_valid_luhn_digit(default_city: dict[str, Path]) -> None:
    for d in rows(default_city["devices"]):
        if d["protocol"] == "gt06":
            digits = [int(ch) for ch in d["device_id"]]
            doubled = [n * 2 - 9 if n > 4 else n * 2 for n in digits[-2::-2]]
            assert (sum(digits[-1::-2]) + sum(doubled)) % 10 == 0


def test_responders(default_city: dict[str, Path]) -> None:
    responders = rows(default_city["responders"])
    people = [r for r in responders if r["kind"] != "clinic"]
    clinics = [r for r in responders if r["kind"] == "clinic"]
    assert [r["responder_id"] for r in people] == [f"c{i:04d}" for i in range(1, 61)]
    assert all(r["skills"].startswith("life_care") for r in people)
    assert sum("nursing" in r["skills"] for r in people) > len(people) / 3
    assert {r["travel"] for r in people} == {"walk", "bike", "car"}
    communities = {c.path for c in city.COMMUNITIES}
    assert {r["community"] for r in people if r["kind"] == "caregiver"} == communities
    assert [r["responder_id"] for r in clinics] == ["k01", "k02", "k03", "k04", "k05"]
    assert clinics[0]["name"] == "蓝田社区卫生服务中心"
    assert all(r["name"].endswith(("卫生服务中心", "卫生服务站")) for r in clinics)
    assert {r["hours"] for r in clinics} == {"24h", "08:00-20:00"}
    assert sum(r["green_channel"] == "yes" for r in clinics) > len(clinics) / 2


async def test_generated_city_imports_without_errors(tmp_path: Path, default_city: dict[str, Path]) -> None:
    async with aiosqlite.connect(tmp_path / "registry.db") as db:
        await db.execute("PRAGMA journal_mode=WAL")
        store = SqliteRegistry(db)
        await store.create_schema()
        report = await import_files(store, **default_city)
        assert report.errors == []
        assert report.elders == UpsertCounts(added=2000)
        assert report.devices == UpsertCounts(added=2000)
        assert report.responders == UpsertCounts(added=65)
        again = await import_files(store, **default_city)
        assert (again.elders, again.devices, again.responders) == (
            UpsertCounts(unchanged=2000),
            UpsertCounts(unchanged=2000),
            UpsertCounts(unchanged=65),
        )
        elder = (await store.elders())[0]
        assert elder.community.startswith("龙文区/") and elder.contacts


def test_larger_and_smaller_cities_stay_valid(tmp_path: Path) -> None:
    paths = city.generate(tmp_path, seed=3, elders=50, caregivers=3, clinics=20)
    elders, errors = read_elders(paths["elders"])
    assert errors == [] and len(elders) == 50
    names = [r["name"] for r in rows(paths["responders"]) if r["kind"] == "clinic"]
    assert len(set(names)) == 20


def test_main_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    city.main([str(tmp_path / "out"), "--seed", "5", "--elders", "20", "--caregivers", "11", "--clinics", "2"])
    assert len(rows(tmp_path / "out" / "elders.csv")) == 20
    assert len(rows(tmp_path / "out" / "responders.csv")) == 13
    assert "elders.csv" in capsys.readouterr().out


def test_contracted_staff_join_without_changing_the_rest_of_the_city(tmp_path: Path) -> None:
    plain = city.generate(tmp_path / "plain", elders=50, caregivers=5, clinics=1)
    staffed = city.generate(tmp_path / "staffed", elders=50, caregivers=5, clinics=1, contracted=3)
    for kind in ("elders", "devices"):
        assert plain[kind].read_bytes() == staffed[kind].read_bytes()
    before = plain["responders"].read_text(encoding="utf-8").splitlines()
    after = staffed["responders"].read_text(encoding="utf-8").splitlines()
    assert after[: len(before)] == before
    staff = [line.split(",") for line in after[len(before) :]]
    assert [row[0] for row in staff] == ["s001", "s002", "s003"]
    assert all(row[-1] == city.CONTRACTED for row in staff)
