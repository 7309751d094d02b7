"""The gazetteer: places of a small city and of the demo city, geopy's interface, updates, no network."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pytest
from geopy.exc import GeocoderServiceError
from geopy.geocoders.base import Geocoder
from geopy.location import Location
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.gazetteer import KINDS, Gazetteer, aliases_of, normalise_place, places_of
from dispatch.importer import read_elders
from dispatch.registry import Elder
from simulators import city

HUQIAN = "鼓楼区/华大街道/湖前社区"
HUALIN = "鼓楼区/华大街道/华林社区"
PINGDONG = "鼓楼区/东街街道/屏东社区"


def elder(elder_id: str, address: str, community: str, lat: float, lon: float) -> Elder:
    return Elder.model_validate(
        {"elder_id": elder_id, "name": "王秀英", "address": address, "lat": lat, "lon": lon, "community": community}
    )


SMALL_CITY = [
    elder("e1", "幸福路12号3栋2单元501", HUQIAN, 26.100, 119.300),
    elder("e2", "幸福路12号3栋1单元302", HUQIAN, 26.102, 119.302),
    elder("e3", "幸福路12号5栋101", HUQIAN, 26.104, 119.304),
    elder("e4", "幸福路14号", HUQIAN, 26.106, 119.306),
    elder("e5", "湖前小区8号楼2单元601室", HUALIN, 26.200, 119.400),
    elder("e6", "东街1号A座1201", PINGDONG, 26.300, 119.500),
]


@pytest.fixture
def small() -> Gazetteer:
    return Gazetteer.of(SMALL_CITY)


def best(gazetteer: Gazetteer, query: str) -> tuple[str, str, int, str]:
    location = gazetteer.geocode(query)
    assert location is not None, query
    return (location.address, location.raw["kind"], location.raw["elders"], location.raw["match"])


def test_the_places_of_an_elder() -> None:
    assert places_of(SMALL_CITY[0]) == [
        ("address", "幸福路12号3栋2单元501"),
        ("building", "幸福路12号3栋"),
        ("road_number", "幸福路12号"),
        ("community", HUQIAN),
        ("street", "鼓楼区/华大街道"),
        ("district", "鼓楼区"),
    ]
    assert places_of(SMALL_CITY[3])[:2] == [("address", "幸福路14号"), ("community", HUQIAN)]  # a house: no more
    assert [key for key in places_of(SMALL_CITY[4]) if key[0] == "building"] == [("building", "湖前小区8号楼")]
    assert [key for key in places_of(SMALL_CITY[4]) if key[0] == "road_number"] == []  # 8号楼 is no road number
    assert [key for key in places_of(SMALL_CITY[5]) if key[0] == "building"] == [("building", "东街1号A座")]
    assert aliases_of("community", HUQIAN) == ("鼓楼区华大街道湖前社区", "华大街道湖前社区", "湖前社区")


def test_a_gazetteer_is_a_geopy_geocoder_that_never_reaches_the_network(small: Gazetteer) -> None:
    assert isinstance(small, Geocoder)
    assert isinstance(small.geocode("幸福路12号"), Location)  # a value, not a coroutine: the adapter is sync
    for is_json in (True, False):
        with pytest.raises(GeocoderServiceError, match="offline"):
            small._call_geocoder("https://nominatim.openstreetmap.org/search?q=x", lambda raw: raw, is_json=is_json)


def test_each_kind_of_place(small: Gazetteer) -> None:
    assert best(small, "幸福路12号3栋2单元501") == ("幸福路12号3栋2单元501", "address", 1, "exact")
    assert best(small, "幸福路12号3栋") == ("幸福路12号3栋", "building", 2, "exact")
    assert best(small, "幸福路12号") == ("幸福路12号", "road_number", 3, "exact")
    assert best(small, "湖前社区") == (HUQIAN, "community", 4, "exact")
    assert best(small, "华大街道") == ("鼓楼区/华大街道", "street", 5, "exact")
    assert best(small, "鼓楼区") == ("鼓楼区", "district", 6, "exact")


def test_a_point_is_the_centroid_of_the_places_elders(small: Gazetteer) -> None:
    location = small.geocode("幸福路12号")
    assert location is not None
    assert location.latitude == pytest.approx(26.102)
    assert location.longitude == pytest.approx(119.302)
    only = small.geocode("东街1号A座1201")
    assert only is not None
    assert (only.latitude, only.longitude) == (26.300, 119.500)


@pytest.mark.parametrize(
    "query",
    [
        "鼓楼区/华大街道/湖前社区",
        "鼓楼区华大街道湖前社区",
        "华大街道/湖前社区",
        "华大街道湖前社区",
        "鼓楼区 华大街道 湖前社区",
    ],
)
def test_community_path_forms(small: Gazetteer, query: str) -> None:
    assert best(small, query) == (HUQIAN, "community", 4, "exact")


def test_exact_before_prefix_before_substring(small: Gazetteer) -> None:
    assert best(small, "湖前") == (HUQIAN, "community", 4, "prefix")  # before 湖前小区8号楼 (prefix, longer)
    assert best(small, "幸福路12") == ("幸福路12号", "road_number", 3, "prefix")
    assert best(small, "12号3栋") == ("幸福路12号3栋", "building", 2, "substring")
    everything = small.geocode("湖前", exactly_one=False)
    assert everything is not None
    assert [(place.address, place.raw["match"]) for place in everything] == [
        (HUQIAN, "prefix"),  # its alias 湖前社区, the shortest name starting so
        ("湖前小区8号楼", "prefix"),
        ("湖前小区8号楼2单元601室", "prefix"),
    ]


def test_the_closest_name_wins_among_substrings(small: Gazetteer) -> None:
    """The building, not one of its flats, for a query that names the building inside a longer address."""
    assert best(small, "小区8号楼") == ("湖前小区8号楼", "building", 1, "substring")
    listed = small.geocode("3栋", exactly_one=False)
    assert listed is not None
    assert [place.address for place in listed] == ["幸福路12号3栋", "幸福路12号3栋1单元302", "幸福路12号3栋2单元501"]


def test_a_place_found_by_several_aliases_counts_once() -> None:
    """丙社's aliases 丙社 and 乙街丙社 rank first and second for 社: the second place must still be found."""
    gazetteer = Gazetteer.of(
        [
            elder("a", "幸福路1号", "甲区/乙街/丙社", 26.0, 119.0),
            elder("b", "幸福路2号", "甲区/乙街/戊己庚社", 26.0, 119.0),
        ]
    )
    listed = gazetteer.geocode("社", exactly_one=False, limit=2)
    assert listed is not None
    assert [place.address for place in listed] == ["甲区/乙街/丙社", "甲区/乙街/戊己庚社"]


def test_full_width_digits_and_spaces(small: Gazetteer) -> None:
    assert best(small, "幸福路１２号 ３栋") == ("幸福路12号3栋", "building", 2, "exact")


@pytest.mark.parametrize("query", ["", "   ", "火星路1号", "/"])
def test_nothing_matches(small: Gazetteer, query: str) -> None:
    assert small.geocode(query) is None
    assert small.geocode(query, exactly_one=False) is None


def test_limit(small: Gazetteer) -> None:
    listed = small.geocode("幸福路", exactly_one=False, limit=2)
    assert listed is not None
    assert len(listed) == 2


@pytest.mark.parametrize("max_pending", [0, 256])
def test_updates_move_points_and_counts(max_pending: int) -> None:
    gazetteer = Gazetteer(max_pending=max_pending)
    for person in SMALL_CITY:
        gazetteer.put(person)
    assert best(gazetteer, "幸福路12号") == ("幸福路12号", "road_number", 3, "exact")  # before any refresh
    gazetteer.refresh()
    moved = elder("e3", "东街1号A座808", PINGDONG, 26.302, 119.502)
    gazetteer.put(moved)
    assert best(gazetteer, "幸福路12号") == ("幸福路12号", "road_number", 2, "exact")
    assert gazetteer.geocode("幸福路12号5栋") is None  # its only elder moved out
    place = gazetteer.geocode("东街1号A座")
    assert place is not None
    assert (place.raw["elders"], place.latitude) == (2, pytest.approx(26.301))
    assert best(gazetteer, "东街1号A座808") == ("东街1号A座808", "address", 1, "exact")  # new since the build
    gazetteer.remove("e4")
    gazetteer.remove("nobody")
    assert gazetteer.geocode("幸福路14号") is None
    assert best(gazetteer, "湖前社区") == (HUQIAN, "community", 2, "exact")
    gazetteer.put(elder("e4", "幸福路14号", HUQIAN, 26.106, 119.306))  # back again
    assert best(gazetteer, "幸福路14号") == ("幸福路14号", "address", 1, "exact")
    gazetteer.refresh()
    assert best(gazetteer, "幸福路14号") == ("幸福路14号", "address", 1, "exact")
    assert gazetteer.geocode("幸福路12号5栋") is None


def test_a_new_place_that_loses_its_elder_before_a_rebuild_is_gone() -> None:
    gazetteer = Gazetteer.of(SMALL_CITY)
    places = len(gazetteer)
    gazetteer.put(elder("e7", "解放路3号2栋101", HUQIAN, 26.1, 119.3))
    assert len(gazetteer) == places + 3  # its address, building and road number
    assert best(gazetteer, "解放路3号") == ("解放路3号", "road_number", 1, "exact")
    gazetteer.remove("e7")
    assert len(gazetteer) == places
    assert gazetteer.geocode("解放路") is None
    assert best(gazetteer, "湖前社区") == (HUQIAN, "community", 4, "exact")


def test_same_record_again_changes_nothing(small: Gazetteer) -> None:
    before = small.geocode("湖前社区")
    small.put(SMALL_CITY[0])
    assert small.geocode("湖前社区") == before


# -- agreement with a brute-force ranking ------------------------------------------------------------------


def brute_force(elders: list[Elder], query: str, limit: int) -> list[tuple[str, str, int, str]]:
    """Rule 2 written out: every place of the current elders, every alias, sorted."""
    members: dict[tuple[str, str], list[Elder]] = {}
    for person in elders:
        for key in places_of(person):
            members.setdefault(key, []).append(person)
    q = normalise_place(query)
    if not q:
        return []
    ranked = []
    for (kind, label), people in members.items():
        matches = [
            (0 if alias == q else 1 if alias.startswith(q) else 2, len(alias), KINDS.index(kind), alias, label)
            for alias in aliases_of(kind, label)  # type: ignore[arg-type]
            if q in alias
        ]
        if matches:
            ranked.append((min(matches), (label, kind, len(people), ("exact", "prefix", "substring")[min(matches)[0]])))
    ranked.sort()
    return [row for _, row in ranked[:limit]]


ROADS = ("幸福路", "幸福东路", "湖前路")


def random_elder(rng: random.Random, n: int) -> Elder:
    community = rng.choice((HUQIAN, HUALIN, PINGDONG))
    number = f"{rng.choice(ROADS)}{rng.randint(1, 3)}号"
    address = rng.choice(
        [number, f"{number}{rng.randint(1, 2)}栋{rng.randint(1, 3)}01", f"湖前小区{rng.randint(1, 3)}号楼"]
    )
    return elder(f"e{n}", address, community, 26.0 + rng.random() / 10, 119.0 + rng.random() / 10)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), count=st.integers(1, 40), limit=st.integers(1, 6), max_pending=st.integers(0, 6))
def test_agrees_with_brute_force_through_updates(seed: int, count: int, limit: int, max_pending: int) -> None:
    rng = random.Random(seed)
    elders = {f"e{n}": random_elder(rng, n) for n in range(count)}
    gazetteer = Gazetteer(max_pending=max_pending)
    for person in elders.values():
        gazetteer.put(person)
    queries = [
        "湖前",
        "幸福",
        "路1号",
        "1号",
        "幸福东路2号",
        "1栋",
        "华大街道",
        "鼓楼区",
        "小区2号楼",
        "101",
        "屏东社区",
    ]
    for step in range(8):
        if step % 3 == 0 and rng.random() < 0.5:
            gazetteer.refresh()
        roll = rng.random()
        if roll < 0.3 and elders:
            gone = rng.choice(sorted(elders))
            del elders[gone]
            gazetteer.remove(gone)
        elif roll < 0.8:
            n = rng.randrange(count + 5)
            elders[f"e{n}"] = random_elder(rng, n)
            gazetteer.put(elders[f"e{n}"])
        for query in rng.sample(queries, 4):
            found = gazetteer.geocode(query, exactly_one=False, limit=limit) or []
            got = [(place.address, place.raw["kind"], place.raw["elders"], place.raw["match"]) for place in found]
            assert got == brute_force(list(elders.values()), query, limit), query


# -- the demo city ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_elders(tmp_path_factory: pytest.TempPathFactory) -> list[Elder]:
    files = city.generate(Path(tmp_path_factory.mktemp("city")), seed=7, elders=600)
    elders, refused = read_elders(files["elders"])
    assert refused == []
    return elders


def test_demo_city_communities_streets_and_district(demo_elders: list[Elder]) -> None:
    gazetteer = Gazetteer.of(demo_elders)
    for community in city.COMMUNITIES:
        members = [person for person in demo_elders if person.community == community.path]
        for query in (community.name, community.path, community.address_prefix):
            found = gazetteer.geocode(query)
            assert found is not None, query
            assert (found.address, found.raw["kind"], found.raw["elders"]) == (
                community.path,
                "community",
                len(members),
            )
            assert found.latitude == pytest.approx(statistics.fmean(person.lat for person in members))
            # the centroid of elders scattered within 600 m lies near the community's centre
            assert abs(found.latitude - community.lat) < 0.003
            assert abs(found.longitude - community.lon) < 0.003
    street = gazetteer.geocode("蓝田街道")
    assert street is not None
    assert (street.address, street.raw["kind"]) == (f"{city.DISTRICT}/蓝田街道", "street")
    district = gazetteer.geocode(city.DISTRICT)
    assert district is not None
    assert (district.raw["kind"], district.raw["elders"]) == ("district", len(demo_elders))


def test_demo_city_addresses_and_buildings(demo_elders: list[Elder]) -> None:
    gazetteer = Gazetteer.of(demo_elders)
    for person in random.Random(3).sample(demo_elders, 60):
        found = gazetteer.geocode(person.address)
        assert found is not None
        assert (found.address, found.raw["kind"], found.raw["match"]) == (person.address, "address", "exact")
        building = person.address[: person.address.index("号楼") + 2]  # 龙文区蓝田街道蓝田社区12号楼
        at = [other for other in demo_elders if other.address.startswith(building)]
        short = building.removeprefix(city.DISTRICT)  # "蓝田街道蓝田社区12号楼", as a caller might say it
        for query in (building, short):
            found = gazetteer.geocode(query)
            assert found is not None
            assert (found.address, found.raw["kind"], found.raw["elders"]) == (building, "building", len(at)), query
            assert found.latitude == pytest.approx(statistics.fmean(other.lat for other in at))
