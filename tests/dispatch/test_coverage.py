"""The coverage plan against a brute force: every elder against every responder, every hour, by the exact
geodesic and the matcher's ETA; the figures must be equal, not close."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from geographiclib.geodesic import Geodesic

from dispatch.coverage import (
    ALL_HOURS,
    HOURS,
    areas,
    check_hour,
    check_target,
    compute,
    counts,
    duty_mask,
    reach_m,
    report,
    uncovered,
)
from dispatch.errors import InvalidInput
from dispatch.matching import eta_s, geodesic_m
from dispatch.registry import Elder, Responder
from simulators import city
from tests.conftest import elder, responder

#: shifts drawn for the generated city's responders (None: no hours recorded, all day)
SHIFTS = (None, "24h", "08:00-20:00", "20:00-08:00", "07:30-15:30", "15:00-23:00", "22:00-06:00", "09:00-09:30")


def generated_city(tmp_path: Path, *, seed: int) -> tuple[list[Elder], list[Responder]]:
    """The demo generator's city (contracted staff and clinics included), responders given random shifts."""
    files = city.generate(tmp_path / "city", seed=seed, elders=600, caregivers=40, clinics=4, contracted=5)
    rng = random.Random(seed)
    with files["elders"].open(encoding="utf-8") as handle:
        elders = [
            Elder(
                elder_id=row["elder_id"],
                name=row["name"],
                address=row["address"],
                lat=float(row["lat"]),
                lon=float(row["lon"]),
                community=row["community"],
            )
            for row in csv.DictReader(handle)
        ]
    with files["responders"].open(encoding="utf-8") as handle:
        responders = [
            Responder.model_validate(
                {
                    **{k: row[k] for k in ("responder_id", "name", "kind", "lat", "lon", "community", "travel")},
                    "skills": row["skills"].split(";"),
                    "provider": row.get("provider") or "centre",
                    "hours": rng.choice(SHIFTS) if row["kind"] != "clinic" else row["hours"],
                }
            )
            for row in csv.DictReader(handle)
        ]
    return elders, responders


def brute_force(elders: list[Elder], responders: list[Responder], target_s: float) -> list[list[int]]:
    """For every elder and hour, how many responders working that whole hour arrive within the target."""
    reached = [[0] * HOURS for _ in elders]
    for one in responders:
        if one.kind == "clinic" or one.provider != "centre":
            continue
        working = [hour for hour in range(HOURS) if one.hours is None or _open_all_hour(one.hours, hour)]
        for i, person in enumerate(elders):
            eta = eta_s(geodesic_m(person.lat, person.lon, one.lat, one.lon), one.travel)
            if eta <= target_s:
                for hour in working:
                    reached[i][hour] += 1
    return reached


def _open_all_hour(hours: str, hour: int) -> bool:
    """Minute by minute, written apart from the module's mask (the reference for rule 2)."""
    start, end = (int(t[:2]) * 60 + int(t[3:]) for t in hours.split("-")) if hours != "24h" else (0, 1440)
    for minute in range(hour * 60, hour * 60 + 60):
        inside = start <= minute < end if start <= end else minute >= start or minute < end
        if not inside:
            return False
    return True


@pytest.mark.parametrize(("seed", "target_s"), [(1, 900.0), (2, 300.0), (3, 180.0), (4, 420.0)])
def test_the_figures_equal_a_brute_force(tmp_path: Path, seed: int, target_s: float) -> None:
    elders, responders = generated_city(tmp_path, seed=seed)
    computed = compute(elders, responders, target_s=target_s)
    want = brute_force(elders, responders, target_s)
    for i, person in enumerate(elders):
        once = sum(1 << h for h in range(HOURS) if want[i][h] >= 1)
        twice = sum(1 << h for h in range(HOURS) if want[i][h] >= 2)
        assert (computed.once[i], computed.twice[i]) == (once, twice), person.elder_id
    for area in areas(computed):
        members = [
            i for i, e in enumerate(elders) if area.place == "*" or f"{e.community}/".startswith(f"{area.place}/")
        ]
        assert area.elders == len(members)
        assert area.covered == tuple(sum(1 for i in members if want[i][h] >= 1) for h in range(HOURS))
        assert area.covered_twice == tuple(sum(1 for i in members if want[i][h] >= 2) for h in range(HOURS))
    if target_s < 900.0:  # the dense demo city is covered whole at 15 minutes; tighter targets leave gaps
        assert any(not computed.once[i] & 1 for i in range(len(elders)))


def test_hours_count_only_when_worked_whole() -> None:
    assert duty_mask(None) == duty_mask("24h") == ALL_HOURS
    assert duty_mask("08:00-20:00") == sum(1 << h for h in range(8, 20))
    assert duty_mask("08:30-17:00") == sum(1 << h for h in range(9, 17))  # 08:00-08:59 is not worked whole
    assert duty_mask("20:00-08:00") == sum(1 << h for h in (*range(20, 24), *range(0, 8)))
    assert duty_mask("10:30-10:20") == ALL_HOURS & ~(1 << 10)  # the ten minutes off fall in 10:00-10:59
    assert duty_mask("09:00-09:30") == 0


def test_no_responders_covers_nobody_and_no_elders_is_no_error() -> None:
    people = [elder("e1"), elder("e2", lat=24.52)]
    computed = compute(people, [])
    assert computed.once == (0, 0) and computed.twice == (0, 0)
    whole = areas(computed)[0]
    assert (whole.place, whole.elders, whole.covered) == ("*", 2, (0,) * HOURS)
    answer = report(computed)
    assert answer["hour"] == 0 and answer["responders"]["counted"] == 0
    assert [a["uncovered"] for a in answer["areas"] if a["level"] == "community"] == [["e1", "e2"]]
    empty = report(compute([], [responder("c1", 24.5, 117.7)]))
    assert empty["areas"][0]["elders"] == 0 and empty["areas"][0]["worst_share"] == 1.0


@pytest.mark.parametrize("travel", ["walk", "bike", "car"])
@pytest.mark.parametrize("lat", [0.0, 24.5, 45.0, 68.0])
def test_an_elder_at_the_boundary_is_decided_as_the_brute_force_decides(travel: str, lat: float) -> None:
    here = responder("c1", lat, 117.7, travel=travel)
    reach = reach_m(travel, 900.0)
    rng = random.Random(int(lat) * 7 + len(travel))
    people = []
    for i, offset in enumerate((0.0, 1e-12, -1e-12, 1e-9, -1e-9, 1e-6, -1e-6, 1e-5, -1e-5, 2e-3, -2e-3) * 4):
        where = Geodesic.WGS84.Direct(lat, 117.7, rng.uniform(0.0, 360.0), reach * (1.0 + offset))
        people.append(elder(f"e{i}", lat=where["lat2"], lon=where["lon2"]))
    computed = compute(people, [here])
    for person, once in zip(people, computed.once, strict=True):
        want = eta_s(geodesic_m(person.lat, person.lon, lat, 117.7), travel) <= 900.0
        assert bool(once) == want, person.elder_id
    inside = [once for person, once in zip(people, computed.once, strict=True) if person.elder_id in ("e8", "e10")]
    outside = [once for person, once in zip(people, computed.once, strict=True) if person.elder_id in ("e7", "e9")]
    assert inside == [ALL_HOURS, ALL_HOURS] and outside == [0, 0]  # 1e-5 and 2e-3 short of the reach, and beyond it


def test_clinics_and_contracted_staff_do_not_count() -> None:
    people = [elder("e1")]
    at = (people[0].lat + 0.0005, people[0].lon)
    clinic = responder("k1", *at, kind="clinic", skills=["medical"], travel="car")
    contracted = responder("s1", *at, provider="kangle", hours="08:00-18:00")
    volunteer = responder("v1", *at, kind="volunteer", hours="08:00-12:00")
    computed = compute(people, [clinic, contracted, volunteer])
    assert not counts(clinic) and not counts(contracted) and counts(volunteer)
    assert computed.excluded == {"clinic": 1, "contracted": 1}
    assert [r.responder_id for r in computed.responders] == ["v1"]
    assert computed.once == (sum(1 << h for h in range(8, 12)),) and computed.twice == (0,)
    assert uncovered(computed, 12) == people and uncovered(computed, 9) == []


def test_two_responders_make_an_elder_covered_twice() -> None:
    people = [elder("e1")]
    near = (people[0].lat + 0.001, people[0].lon)
    day = responder("c1", *near, hours="08:00-20:00")
    always = responder("c2", *near, travel="bike")
    computed = compute(people, [day, always])
    assert computed.once == (ALL_HOURS,)
    assert computed.twice == (sum(1 << h for h in range(8, 20)),)
    whole = areas(computed)[0]
    assert whole.covered_twice[8] == 1 and whole.covered_twice[7] == 0
    assert report(computed, hour=7)["areas"][-1]["uncovered"] == []


def test_refusals_carry_their_codes() -> None:
    for bad in (-1, 24):
        with pytest.raises(InvalidInput) as refused:
            check_hour(bad)
        assert refused.value.code == "coverage_hour"
    with pytest.raises(InvalidInput) as refused:
        check_target(30.0)
    assert refused.value.code == "coverage_target"
    with pytest.raises(InvalidInput):
        compute([], [], target_s=10 * 3600.0)
