"""The matcher's ranking against a brute-force geodesic/ETA ranking, the own caregiver, and clinics."""

from __future__ import annotations

import math
import random
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch import matching
from dispatch.entries import Ranked, decode, encode
from dispatch.errors import InvalidInput
from dispatch.geo import EARTH_RADIUS_M, ON_THE_EDGE_M, MemoryGeoIndex, haversine_m
from dispatch.matching import Candidate, Matcher, eta_s, rounded
from dispatch.registry import SKILLS, TRAVEL_MASK, Responder, responder_tags

COMMUNITY = "龙文区/蓝田街道/蓝田社区"
ELDER = (24.5100, 117.6600)
M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0
SHANGHAI = ZoneInfo("Asia/Shanghai")


def offset(dy_m: float, dx_m: float, origin: tuple[float, float] = ELDER) -> tuple[float, float]:
    """The position ``dy_m`` metres north and ``dx_m`` metres east of ``origin`` (near enough)."""
    return (
        origin[0] + dy_m / M_PER_DEG,
        origin[1] + dx_m / (M_PER_DEG * math.cos(math.radians(origin[0]))),
    )


def caregiver(
    responder_id: str,
    position: tuple[float, float],
    skills: list[str],
    travel: str = "walk",
) -> Responder:
    return Responder.model_validate(
        {
            "responder_id": responder_id,
            "name": f"护理员 {responder_id}",
            "kind": "caregiver",
            "skills": skills,
            "lat": position[0],
            "lon": position[1],
            "community": COMMUNITY,
            "travel": travel,
        }
    )


def clinic(clinic_id: str, position: tuple[float, float], *, hours: str | None, green: bool = True) -> Responder:
    return Responder(
        responder_id=clinic_id,
        name=f"卫生服务站 {clinic_id}",
        kind="clinic",
        lat=position[0],
        lon=position[1],
        community=COMMUNITY,
        hours=hours,
        green_channel=green,
    )


class World:
    """Profiles, the available index and the clinics index, filled as a dispatcher would."""

    def __init__(self, partition_mask: int = TRAVEL_MASK) -> None:
        self.profiles: dict[str, Responder] = {}
        self.available = MemoryGeoIndex(partition_mask=partition_mask)
        self.clinics = MemoryGeoIndex()

    async def add(self, responder: Responder, *, free: bool = True) -> None:
        self.profiles[responder.responder_id] = responder
        if responder.kind == "clinic":
            await self.clinics.upsert(responder.responder_id, responder.lat, responder.lon)
        elif free:
            tags = responder_tags(responder.skills, responder.travel)
            await self.available.upsert(responder.responder_id, responder.lat, responder.lon, tags)

    def matcher(self, **options: Any) -> Matcher:
        return Matcher(self.available, self.clinics, self.profiles, **options)


def brute_force(
    world: World, lat: float, lon: float, skill: str | None, k: int, radius_m: float = 5000.0
) -> list[tuple[str, float, float]]:
    """(id, geodesic m, ETA s) of every available responder with the skill within the radius, best first."""
    rows = []
    for responder_id in world.available.members():
        profile = world.profiles[responder_id]
        if skill is not None and skill not in profile.skills:
            continue
        if haversine_m(lat, lon, profile.lat, profile.lon) > radius_m:
            continue
        distance = geodesic((lat, lon), (profile.lat, profile.lon)).meters
        rows.append((responder_id, distance, eta_s(distance, profile.travel)))
    rows.sort(key=lambda row: (row[2], row[1], row[0]))
    return rows[:k]


@pytest.fixture
async def city() -> World:
    """400 caregivers scattered over 16 km × 16 km around the elder; 30 % busy."""
    world = World()
    rng = random.Random(2024)
    for i in range(400):
        position = offset(rng.uniform(-8000.0, 8000.0), rng.uniform(-8000.0, 8000.0))
        skills = rng.sample(SKILLS, rng.randint(1, 3))
        travel = rng.choice(["walk", "bike", "car"])
        await world.add(caregiver(f"c{i:03d}", position, list(skills), travel), free=rng.random() > 0.3)
    return world


@pytest.mark.parametrize("skill", [*SKILLS, None])
async def test_ranking_equals_brute_force(city: World, skill: str | None) -> None:
    matcher = city.matcher()
    rng = random.Random(len(skill or ""))
    for _ in range(15):
        lat, lon = offset(rng.uniform(-7000.0, 7000.0), rng.uniform(-7000.0, 7000.0))
        k = rng.choice([1, 3, 5, 8])
        got = await matcher.rank(lat, lon, skill=skill, k=k)
        expected = brute_force(city, lat, lon, skill, k)
        assert [c.responder_id for c in got] == [row[0] for row in expected]
        for candidate, (_, distance, eta) in zip(got, expected, strict=True):
            assert candidate.distance_m == pytest.approx(distance)
            assert candidate.eta_s == pytest.approx(eta)
            assert not candidate.own
            assert candidate.reasons


async def test_a_far_car_beyond_the_first_batch_still_wins() -> None:
    """Thirty walkers nearer than a car: the car is 31st by distance but first by arrival."""
    world = World()
    for i in range(30):
        await world.add(caregiver(f"w{i:02d}", offset(300.0 + 10.0 * i, 0.0), ["nursing"], "walk"))
    await world.add(caregiver("car", offset(0.0, 650.0), ["nursing"], "car"))
    got = await world.matcher().rank(*ELDER, skill="nursing", k=5)
    assert [c.responder_id for c in got] == ["car", "w00", "w01", "w02", "w03"]
    assert [c.responder_id for c in got] == [row[0] for row in brute_force(world, *ELDER, "nursing", 5)]


async def test_a_car_farther_away_beats_a_walker_nearer() -> None:
    world = World()
    await world.add(caregiver("walker", offset(300.0, 0.0), ["medical"], "walk"))
    await world.add(caregiver("driver", offset(0.0, 1000.0), ["medical"], "car"))
    await world.add(caregiver("slow-driver", offset(0.0, -1500.0), ["medical"], "car"))
    got = await world.matcher().rank(*ELDER, skill="medical")
    assert [c.responder_id for c in got] == ["driver", "walker", "slow-driver"]
    driver, walker, _ = got
    assert driver.distance_m > walker.distance_m
    assert driver.eta_s < walker.eta_s
    assert driver.eta_s == pytest.approx(180.0 + driver.distance_m * 1.3 / 8.0)
    assert walker.eta_s == pytest.approx(60.0 + walker.distance_m * 1.3 / 1.3)


async def test_skill_filter_and_radius() -> None:
    world = World()
    await world.add(caregiver("comforter", offset(100.0, 0.0), ["comfort"]))
    await world.add(caregiver("nurse", offset(200.0, 0.0), ["nursing", "life_care"]))
    await world.add(caregiver("far-nurse", offset(6000.0, 0.0), ["nursing"], "car"))
    matcher = world.matcher()
    assert [c.responder_id for c in await matcher.rank(*ELDER, skill="nursing")] == ["nurse"]
    assert [c.responder_id for c in await matcher.rank(*ELDER, skill=None)] == ["comforter", "nurse"]
    assert await matcher.rank(*ELDER, skill="medical") == []
    assert await matcher.rank(*ELDER, skill="nursing", k=0) == []


async def test_exclude_and_missing_profiles_are_skipped() -> None:
    world = World()
    await world.add(caregiver("a", offset(100.0, 0.0), ["nursing"]))
    await world.add(caregiver("b", offset(200.0, 0.0), ["nursing"]))
    await world.add(caregiver("c", offset(300.0, 0.0), ["nursing"]))
    del world.profiles["b"]
    got = await world.matcher().rank(*ELDER, skill="nursing", exclude=["a"])
    assert [c.responder_id for c in got] == ["c"]


async def test_unknown_skill_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        await World().matcher().rank(*ELDER, skill="cooking")
    assert caught.value.field == "skill"


@pytest.fixture
async def with_own_caregiver() -> World:
    world = World()
    await world.add(caregiver("near-nurse", offset(150.0, 0.0), ["nursing"], "bike"))
    await world.add(caregiver("nurse-2", offset(400.0, 0.0), ["nursing"], "walk"))
    await world.add(caregiver("own", offset(0.0, 1500.0), ["life_care"], "walk"))
    return world


async def test_own_caregiver_first_when_close_even_without_the_skill(with_own_caregiver: World) -> None:
    got = await with_own_caregiver.matcher().rank(*ELDER, skill="nursing", own_caregiver_id="own", k=2)
    assert [c.responder_id for c in got] == ["own", "near-nurse"]
    own = got[0]
    assert own.own
    assert "own caregiver (五定)" in own.reasons
    assert any("lacks skill nursing" in reason for reason in own.reasons)
    assert own.eta_s > got[1].eta_s


async def test_own_caregiver_not_first_when_far(with_own_caregiver: World) -> None:
    matcher = with_own_caregiver.matcher(own_caregiver_m=1000.0)
    got = await matcher.rank(*ELDER, skill="nursing", own_caregiver_id="own")
    assert [c.responder_id for c in got] == ["near-nurse", "nurse-2"]


async def test_own_caregiver_far_but_skilled_is_ranked_by_arrival() -> None:
    world = World()
    await world.add(caregiver("near", offset(150.0, 0.0), ["nursing"], "walk"))
    await world.add(caregiver("own", offset(3000.0, 0.0), ["nursing"], "car"))
    got = await world.matcher().rank(*ELDER, skill="nursing", own_caregiver_id="own")
    assert [c.responder_id for c in got] == ["near", "own"]
    assert got[1].own
    assert "too far to go first, ranked by arrival time" in got[1].reasons


async def test_own_caregiver_not_proposed_when_busy_or_excluded(with_own_caregiver: World) -> None:
    matcher = with_own_caregiver.matcher()
    excluded = await matcher.rank(*ELDER, skill="nursing", own_caregiver_id="own", exclude={"own"})
    assert [c.responder_id for c in excluded] == ["near-nurse", "nurse-2"]
    await with_own_caregiver.available.remove("own")  # offered elsewhere: no longer available
    busy = await matcher.rank(*ELDER, skill="nursing", own_caregiver_id="own")
    assert [c.responder_id for c in busy] == ["near-nurse", "nurse-2"]


async def test_geodesic_only_for_the_few_that_can_rank(city: World, monkeypatch: pytest.MonkeyPatch) -> None:
    geodesics: list[tuple[float, ...]] = []
    fetched: list[str] = []
    exact = matching.geodesic_m
    nearest = city.available.nearest

    def counting_geodesic(*args: float) -> float:
        geodesics.append(args)
        return exact(*args)

    async def counting_nearest(*args: Any, **kwargs: Any) -> list[tuple[str, float]]:
        hits = await nearest(*args, **kwargs)
        fetched.extend(key for key, _ in hits)
        return hits

    monkeypatch.setattr(matching, "geodesic_m", counting_geodesic)
    monkeypatch.setattr(city.available, "nearest", counting_nearest)
    for skill in SKILLS:
        await city.matcher().rank(*ELDER, skill=skill, k=3)
    assert 0 < len(geodesics) < len(fetched) < len(city.available) / 2
    assert len(geodesics) <= 2 * 3 * len(SKILLS)  # the k best and the near-ties, not every fetched one


async def test_reasons_and_json() -> None:
    world = World()
    await world.add(caregiver("b1", offset(1100.0, 0.0), ["nursing", "medical"], "bike"))
    [candidate] = await world.matcher().rank(*ELDER, skill="nursing")
    assert candidate.reasons == ("has skill nursing", "1.1 km by bike, ETA 8 min")
    kept = rounded(candidate)  # as the journal keeps it: whole metres and seconds
    assert decode("incident.ranked", 1, encode(Ranked((kept,), None, "nursing", 5000.0))) == Ranked(
        (kept,), None, "nursing", 5000.0
    )
    assert kept.distance_m == round(candidate.distance_m)
    assert kept.eta_s == round(candidate.eta_s)
    assert isinstance(kept.distance_m, int)
    assert kept.travel == "bike"
    assert kept.own is False


def test_candidate_is_frozen() -> None:
    candidate = Candidate("a", "A", 1.0, 61.0, "walk", False, ("x",))
    with pytest.raises(AttributeError):
        candidate.eta_s = 0.0  # type: ignore[misc]


def local_ts(hour: int, minute: int = 0) -> float:
    return datetime(2026, 5, 1, hour, minute, tzinfo=SHANGHAI).timestamp()


@pytest.fixture
async def clinics() -> World:
    world = World()
    await world.add(clinic("no-green", offset(500.0, 0.0), hours="24h", green=False))
    await world.add(clinic("mornings", offset(1000.0, 0.0), hours="08:00-12:00"))
    await world.add(clinic("nights", offset(0.0, 2000.0), hours="20:00-08:00"))
    await world.add(clinic("always", offset(-5000.0, 0.0), hours=None))
    return world


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [
        (9, 0, "mornings"),
        (11, 59, "mornings"),
        (12, 0, "always"),  # closing time is exclusive
        (14, 0, "always"),  # both the morning and the night clinic are closed
        (20, 0, "nights"),
        (2, 30, "nights"),  # after midnight, still within 20:00-08:00
        (7, 59, "nights"),
        (8, 0, "mornings"),
    ],
)
async def test_nearest_clinic_open_with_green_channel(clinics: World, hour: int, minute: int, expected: str) -> None:
    proposal = await clinics.matcher().nearest_clinic(*ELDER, local_ts(hour, minute))
    assert proposal is not None
    assert proposal.clinic_id == expected
    profile = clinics.profiles[expected]
    assert proposal.distance_m == pytest.approx(geodesic(ELDER, (profile.lat, profile.lon)).meters)
    assert proposal.eta_s == pytest.approx(eta_s(proposal.distance_m, "car"))
    assert "green channel (绿色通道)" in proposal.reasons
    assert any(reason.endswith(" min") and "by car" in reason for reason in proposal.reasons)


async def test_nearest_clinic_uses_the_matchers_time_zone(clinics: World) -> None:
    # 09:00 in Shanghai is 01:00 UTC: a matcher on UTC sees the night clinic open instead.
    utc = clinics.matcher(tz="UTC")
    shanghai = await clinics.matcher().nearest_clinic(*ELDER, local_ts(9))
    assert shanghai is not None
    assert shanghai.clinic_id == "mornings"
    proposal = await utc.nearest_clinic(*ELDER, local_ts(9))
    assert proposal is not None
    assert proposal.clinic_id == "nights"


async def test_no_clinic_within_radius_or_open(clinics: World) -> None:
    assert await clinics.matcher(clinic_radius_m=3000.0).nearest_clinic(*ELDER, local_ts(14)) is None
    del clinics.profiles["always"]
    assert await clinics.matcher().nearest_clinic(*ELDER, local_ts(14)) is None


async def test_many_closed_clinics_before_an_open_one() -> None:
    world = World()
    for i in range(45):
        await world.add(clinic(f"shut{i:02d}", offset(100.0 + 50.0 * i, 0.0), hours="08:00-09:00"))
    await world.add(clinic("open", offset(0.0, 5000.0), hours="24h"))
    proposal = await world.matcher().nearest_clinic(*ELDER, local_ts(15))
    assert proposal is not None
    assert proposal.clinic_id == "open"
    assert rounded(proposal).clinic_id == "open"
    assert encode(Ranked((), rounded(proposal), "nursing", 5000.0))


@pytest.mark.parametrize("crowd", [3, 11, 30])
async def test_a_crowd_at_one_spot_is_ranked_as_the_brute_force_ranks_it(crowd: int) -> None:
    """Caregivers sharing one position (a care station) tie on distance and arrival, so the order is by id; more
    of them than the index is first asked for must not hide the lower ids."""
    world = World()
    spot = offset(250.0, 120.0)
    for i in range(crowd):
        await world.add(caregiver(f"s{(i * 7) % crowd:02d}", spot, ["nursing"], "walk"))
    await world.add(caregiver("bike", offset(900.0, 0.0), ["nursing"], "bike"))
    for k in (1, 3, 5):
        got = await world.matcher().rank(*ELDER, skill="nursing", k=k)
        assert [c.responder_id for c in got] == [row[0] for row in brute_force(world, *ELDER, "nursing", k)]


def lattice() -> st.SearchStrategy[float]:
    """Offsets in metres on a lattice of 150 m, so that caregivers often share a position and tie."""
    return st.integers(min_value=-12, max_value=12).map(lambda n: n * 150.0)


@settings(max_examples=150, deadline=None)
@given(
    placed=st.lists(
        st.tuples(
            lattice(),
            lattice(),
            st.lists(st.sampled_from(SKILLS), min_size=1, max_size=3, unique=True),
            st.sampled_from(["walk", "bike", "car"]),
        ),
        max_size=40,
    ),
    query=st.tuples(lattice(), lattice()),
    skill=st.sampled_from([*SKILLS, None]),
    k=st.integers(min_value=1, max_value=6),
    radius_m=st.sampled_from([300.0, 1000.0, 5000.0]),
)
async def test_one_grid_and_partitions_rank_as_the_brute_force_ranks(
    placed: list[tuple[float, float, list[str], str]],
    query: tuple[float, float],
    skill: str | None,
    k: int,
    radius_m: float,
) -> None:
    """The engine's one grid (one walk that stops by arrival time) and the travel partitions (the 2k nearest of
    each mode, doubled while they could rank) both give the brute-force ranking, ties by id."""
    worlds = [World(partition_mask=0), World()]
    for i, (dy, dx, skills, travel) in enumerate(placed):
        for world in worlds:
            await world.add(caregiver(f"c{(i * 7) % 41:02d}", offset(dy, dx), skills, travel))
    lat, lon = offset(*query)
    for world in worlds:
        got = await world.matcher(radius_m=radius_m).rank(lat, lon, skill=skill, k=k)
        # the index counts a point within ON_THE_EDGE_M past the radius as inside (lattice points land there)
        expected = brute_force(world, lat, lon, skill, k, radius_m + ON_THE_EDGE_M)
        assert [c.responder_id for c in got] == [row[0] for row in expected]
