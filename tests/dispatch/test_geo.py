"""GridIndex against a brute-force haversine scan, and the MemoryGeoIndex backend."""

from __future__ import annotations

import math
import random
from collections.abc import Collection

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.geo import EARTH_RADIUS_M, ON_THE_EDGE_M, GeoIndex, GridIndex, MemoryGeoIndex, haversine_m

ZHANGZHOU = (24.51, 117.66)
TROMSO = (69.65, 18.96)
M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0
TIE_M = 1e-6

Points = dict[str, tuple[float, float, int]]


def scatter(seed: int, n: int, centre: tuple[float, float], half_m: float) -> Points:
    """``n`` points in a square of ``2 * half_m`` metres around ``centre``, with random 4-bit tags."""
    rng = random.Random(seed)
    dlat = half_m / M_PER_DEG
    dlon = dlat / math.cos(math.radians(centre[0]))
    return {
        f"p{i}": (
            centre[0] + rng.uniform(-dlat, dlat),
            centre[1] + rng.uniform(-dlon, dlon),
            rng.randrange(16),
        )
        for i in range(n)
    }


def build(points: Points, cell_m: float = 500.0) -> GridIndex:
    index = GridIndex(cell_m)
    for key, (lat, lon, tags) in points.items():
        index.upsert(key, lat, lon, tags)
    return index


def brute_force(
    points: Points,
    lat: float,
    lon: float,
    *,
    k: int,
    radius_m: float,
    any_tags: int = 0,
    exclude: Collection[str] = (),
) -> list[tuple[str, float]]:
    hits = [
        (key, haversine_m(lat, lon, plat, plon))
        for key, (plat, plon, tags) in points.items()
        if key not in exclude and (any_tags == 0 or tags & any_tags)
    ]
    hits = [hit for hit in hits if hit[1] <= radius_m + ON_THE_EDGE_M]
    hits.sort(key=lambda hit: (hit[1], hit[0]))
    return hits[:k]


def assert_same(
    got: list[tuple[str, float]], expected: list[tuple[str, float]], points: Points, lat: float, lon: float
) -> None:
    """Same distances in the same order, each true for its key; so keys differ only where distances tie."""
    assert len(got) == len(expected), (got, expected)
    assert len({key for key, _ in got}) == len(got)
    assert [d for _, d in got] == sorted(d for _, d in got)
    for (key, distance), (_, want_distance) in zip(got, expected, strict=True):
        plat, plon, _ = points[key]
        assert distance == pytest.approx(haversine_m(lat, lon, plat, plon), abs=TIE_M)
        assert distance == pytest.approx(want_distance, abs=TIE_M)


CITY = scatter(seed=20240601, n=3000, centre=ZHANGZHOU, half_m=6000.0)
CITY_INDEX = build(CITY)
CITY_KEYS = sorted(CITY)

lat_offsets = st.floats(min_value=-7000.0, max_value=7000.0)


@settings(max_examples=150, deadline=None)
@given(
    dy=lat_offsets,
    dx=lat_offsets,
    k=st.integers(min_value=1, max_value=40),
    radius_m=st.floats(min_value=0.0, max_value=9000.0),
    any_tags=st.integers(min_value=0, max_value=15),
    excluded=st.lists(st.sampled_from(CITY_KEYS), max_size=30),
)
def test_city_matches_brute_force(
    dy: float, dx: float, k: int, radius_m: float, any_tags: int, excluded: list[str]
) -> None:
    lat = ZHANGZHOU[0] + dy / M_PER_DEG
    lon = ZHANGZHOU[1] + dx / (M_PER_DEG * math.cos(math.radians(ZHANGZHOU[0])))
    got = CITY_INDEX.nearest(lat, lon, k=k, radius_m=radius_m, any_tags=any_tags, exclude=excluded)
    expected = brute_force(CITY, lat, lon, k=k, radius_m=radius_m, any_tags=any_tags, exclude=set(excluded))
    assert_same(got, expected, CITY, lat, lon)
    assert all(distance <= radius_m + ON_THE_EDGE_M for _, distance in got)
    assert not {key for key, _ in got} & set(excluded)
    if any_tags:
        assert all(CITY[key][2] & any_tags for key, _ in got)


def on_grid(cell_m: float) -> st.SearchStrategy[float]:
    """Offsets in metres, often exactly on a cell border, to put points on the edges of cells."""
    return st.one_of(
        st.integers(min_value=-6, max_value=6).map(lambda n: n * cell_m),
        st.floats(min_value=-3000.0, max_value=3000.0),
    )


@settings(max_examples=150, deadline=None)
@given(
    offsets=st.lists(st.tuples(on_grid(500.0), on_grid(500.0), st.integers(0, 15)), max_size=60),
    query=st.tuples(on_grid(500.0), on_grid(500.0)),
    k=st.integers(min_value=1, max_value=70),
    radius_m=st.floats(min_value=0.0, max_value=5000.0),
    any_tags=st.integers(min_value=0, max_value=15),
    high=st.booleans(),
)
def test_small_sets_on_cell_borders(
    offsets: list[tuple[float, float, int]],
    query: tuple[float, float],
    k: int,
    radius_m: float,
    any_tags: int,
    high: bool,
) -> None:
    """Few points, many of them exactly on cell borders, at Zhangzhou and at 69 N."""
    index = GridIndex(500.0)
    deg = 500.0 / M_PER_DEG
    # Snap the centre to a cell corner so the grid offsets land exactly on cell borders.
    centre = TROMSO if high else ZHANGZHOU
    base_lat = round(centre[0] / deg) * deg
    base_lon = round(centre[1] / deg) * deg

    def position(dy: float, dx: float) -> tuple[float, float]:
        return base_lat + dy / M_PER_DEG, base_lon + dx / M_PER_DEG

    points = {f"p{i}": (*position(dy, dx), tags) for i, (dy, dx, tags) in enumerate(offsets)}
    for key, (lat, lon, tags) in points.items():
        index.upsert(key, lat, lon, tags)
    lat, lon = position(*query)
    got = index.nearest(lat, lon, k=k, radius_m=radius_m, any_tags=any_tags)
    expected = brute_force(points, lat, lon, k=k, radius_m=radius_m, any_tags=any_tags)
    assert_same(got, expected, points, lat, lon)


@settings(max_examples=100, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["upsert", "remove"]),
            st.integers(min_value=0, max_value=15),
            st.floats(min_value=-2000.0, max_value=2000.0),
            st.floats(min_value=-2000.0, max_value=2000.0),
            st.integers(min_value=0, max_value=3),
        ),
        max_size=80,
    )
)
def test_moves_and_removals_keep_the_index_consistent(ops: list[tuple[str, int, float, float, int]]) -> None:
    index = GridIndex(300.0)
    model: Points = {}
    for op, n, dy, dx, tags in ops:
        key = f"k{n}"
        if op == "upsert":
            model[key] = (ZHANGZHOU[0] + dy / M_PER_DEG, ZHANGZHOU[1] + dx / M_PER_DEG, tags)
            index.upsert(key, *model[key])
        else:
            model.pop(key, None)
            index.remove(key)
    assert len(index) == len(model)
    for key, value in model.items():
        assert key in index
        assert index.get(key) == value
    got = index.nearest(*ZHANGZHOU, k=100, radius_m=10_000.0)
    assert_same(got, brute_force(model, *ZHANGZHOU, k=100, radius_m=10_000.0), model, *ZHANGZHOU)


def lattice(cell_m: float) -> st.SearchStrategy[float]:
    """Offsets in metres on a lattice of half a cell, so that points often share positions and distances tie."""
    return st.integers(min_value=-5, max_value=5).map(lambda n: n * cell_m / 2)


@settings(max_examples=200, deadline=None)
@given(
    sites=st.lists(st.tuples(lattice(300.0), lattice(300.0)), min_size=1, max_size=12),
    placed=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 15)), max_size=60),
    query=st.tuples(lattice(300.0), lattice(300.0)),
    k=st.integers(min_value=1, max_value=8),
    radius_m=st.sampled_from([0.0, 75.0, 300.0, 1000.0, 5000.0]),
    any_tags=st.integers(min_value=0, max_value=15),
    groups=st.lists(st.sampled_from([0, 1, 2, 4, 8, 3, 12, 16]), max_size=4),
    excluded=st.sets(st.integers(min_value=0, max_value=59), max_size=10),
    high=st.booleans(),
)
def test_grouped_query_equals_one_nearest_per_group(
    sites: list[tuple[float, float]],
    placed: list[tuple[int, int]],
    query: tuple[float, float],
    k: int,
    radius_m: float,
    any_tags: int,
    groups: list[int],
    excluded: set[int],
    high: bool,
) -> None:
    """Equal lists, key for key: several points share each site, so distances tie at the k-th place and which
    key stays is decided by the order of the walk. Groups repeat, take all (0) or nobody (16)."""
    index = GridIndex(300.0)
    centre = TROMSO if high else ZHANGZHOU
    scale = math.cos(math.radians(centre[0]))
    for i, (site, tags) in enumerate(placed):
        dy, dx = sites[site % len(sites)]
        index.upsert(f"p{i}", centre[0] + dy / M_PER_DEG, centre[1] + dx / (M_PER_DEG * scale), tags)
    lat = centre[0] + query[0] / M_PER_DEG
    lon = centre[1] + query[1] / (M_PER_DEG * scale)
    exclude = {f"p{i}" for i in excluded}
    got = index.nearest_groups(lat, lon, k=k, radius_m=radius_m, any_tags=any_tags, groups=groups, exclude=exclude)
    assert got == [
        index.nearest(lat, lon, k=k, radius_m=radius_m, any_tags=any_tags, all_tags=group, exclude=exclude)
        for group in groups
    ]


def test_grouped_query_in_the_city() -> None:
    rng = random.Random(11)
    groups = [1, 2, 4, 8]
    for _ in range(200):
        lat = ZHANGZHOU[0] + rng.uniform(-0.06, 0.06)
        lon = ZHANGZHOU[1] + rng.uniform(-0.06, 0.06)
        k = rng.choice([1, 5, 10, 40])
        exclude = set(rng.sample(CITY_KEYS, 20))
        any_tags = rng.choice([0, 3, 12])
        got = CITY_INDEX.nearest_groups(
            lat, lon, k=k, radius_m=5000.0, any_tags=any_tags, groups=groups, exclude=exclude
        )
        for group, hits in zip(groups, got, strict=True):
            assert hits == CITY_INDEX.nearest(
                lat, lon, k=k, radius_m=5000.0, any_tags=any_tags, all_tags=group, exclude=exclude
            )
    assert CITY_INDEX.nearest_groups(*ZHANGZHOU, k=0, radius_m=5000.0, groups=groups) == [[], [], [], []]
    assert CITY_INDEX.nearest_groups(*ZHANGZHOU, k=5, radius_m=5000.0, groups=[]) == []
    assert GridIndex().nearest_groups(*ZHANGZHOU, k=5, radius_m=5000.0, groups=[1]) == [[]]


def test_high_latitude_city_matches_brute_force() -> None:
    """At 69 N a cell is a third as wide as it is tall; the rings widen in longitude to make up for it."""
    points = scatter(seed=7, n=2000, centre=TROMSO, half_m=5000.0)
    index = build(points)
    rng = random.Random(8)
    for _ in range(200):
        lat = TROMSO[0] + rng.uniform(-0.06, 0.06)
        lon = TROMSO[1] + rng.uniform(-0.16, 0.16)
        k = rng.choice([1, 5, 25])
        radius = rng.choice([300.0, 2000.0, 8000.0])
        tags = rng.choice([0, 1, 6])
        got = index.nearest(lat, lon, k=k, radius_m=radius, any_tags=tags)
        assert_same(got, brute_force(points, lat, lon, k=k, radius_m=radius, any_tags=tags), points, lat, lon)


def test_upsert_moves_a_point_across_cells() -> None:
    index = GridIndex(500.0)
    index.upsert("a", 24.5100, 117.6600, 1)
    index.upsert("a", 24.5400, 117.7000, 2)  # about 5 km away, many cells over
    assert len(index) == 1
    assert index.get("a") == (24.5400, 117.7000, 2)
    assert index.nearest(24.5100, 117.6600, k=5, radius_m=1000.0) == []
    [(key, distance)] = index.nearest(24.5400, 117.7000, k=5, radius_m=1.0, any_tags=2)
    assert key == "a"
    assert distance == pytest.approx(0.0, abs=1e-6)
    assert index.nearest(24.5400, 117.7000, k=5, radius_m=1.0, any_tags=1) == []


def test_upsert_within_a_cell_updates_position_and_tags() -> None:
    index = GridIndex(500.0)
    index.upsert("a", 24.51000, 117.66000, 1)
    index.upsert("a", 24.51001, 117.66001, 4)
    assert index.get("a") == (24.51001, 117.66001, 4)
    [(key, distance)] = index.nearest(24.51001, 117.66001, k=1, radius_m=10.0, any_tags=4)
    assert key == "a"
    assert distance == pytest.approx(0.0, abs=1e-6)


def test_remove_and_remove_missing() -> None:
    index = GridIndex()
    index.upsert("a", *ZHANGZHOU)
    index.upsert("b", ZHANGZHOU[0] + 0.001, ZHANGZHOU[1])
    index.remove("a")
    index.remove("a")
    index.remove("never-there")
    assert "a" not in index
    assert index.get("a") is None
    assert len(index) == 1
    assert [key for key, _ in index.nearest(*ZHANGZHOU, k=5, radius_m=1000.0)] == ["b"]


def test_empty_index_and_degenerate_queries() -> None:
    index = GridIndex()
    assert len(index) == 0
    assert index.nearest(*ZHANGZHOU, k=5, radius_m=5000.0) == []
    index.upsert("a", *ZHANGZHOU)
    assert index.nearest(*ZHANGZHOU, k=0, radius_m=5000.0) == []
    assert index.nearest(*ZHANGZHOU, k=5, radius_m=-1.0) == []
    assert index.nearest(*ZHANGZHOU, k=5, radius_m=0.0) == [("a", 0.0)]


def test_k_larger_than_population() -> None:
    points = scatter(seed=3, n=12, centre=ZHANGZHOU, half_m=2000.0)
    index = build(points)
    got = index.nearest(*ZHANGZHOU, k=1000, radius_m=10_000.0)
    assert_same(got, brute_force(points, *ZHANGZHOU, k=1000, radius_m=10_000.0), points, *ZHANGZHOU)
    assert len(got) == 12


def test_point_exactly_on_a_cell_border() -> None:
    index = GridIndex(500.0)
    deg = 500.0 / M_PER_DEG
    border_lat = 5446 * deg  # about 24.49 N, a row border
    border_lon = 26149 * deg  # about 117.63 E, a column border
    index.upsert("corner", border_lat, border_lon)
    index.upsert("far", border_lat + 20 * deg, border_lon)
    one_metre = 1.0 / M_PER_DEG
    for dlat in (-one_metre, 0.0, one_metre):
        for dlon in (-one_metre, 0.0, one_metre):
            [(key, distance)] = index.nearest(border_lat + dlat, border_lon + dlon, k=1, radius_m=5.0)
            assert key == "corner"
            assert distance == pytest.approx(haversine_m(border_lat + dlat, border_lon + dlon, border_lat, border_lon))


def test_ties_come_back_in_key_order() -> None:
    index = GridIndex()
    for key in ("c", "a", "b"):
        index.upsert(key, *ZHANGZHOU)
    assert [key for key, _ in index.nearest(*ZHANGZHOU, k=3, radius_m=1.0)] == ["a", "b", "c"]


def test_a_query_in_a_dense_city_visits_few_points(monkeypatch: pytest.MonkeyPatch) -> None:
    visited: list[int] = []
    original = CITY_INDEX._ring_cells

    def counting(*args: object) -> object:
        cells, everything = original(*args)  # type: ignore[arg-type]
        visited.append(sum(len(cell) for _, cell in cells))
        return cells, everything

    monkeypatch.setattr(CITY_INDEX, "_ring_cells", counting)
    got = CITY_INDEX.nearest(*ZHANGZHOU, k=5, radius_m=5000.0, any_tags=2)
    assert len(got) == 5
    assert sum(visited) < len(CITY) / 10


def test_poles_and_antimeridian_do_not_crash() -> None:
    index = GridIndex(500.0)
    index.upsert("north", 89.999, 10.0)
    index.upsert("across", 89.999, -170.0)
    index.upsert("east", 0.0, 179.9999)
    got = index.nearest(90.0, 0.0, k=5, radius_m=1000.0)
    assert sorted(key for key, _ in got) == ["across", "north"]
    assert index.nearest(0.0, 180.0, k=5, radius_m=100.0)[0][0] == "east"
    assert index.nearest(-90.0, -180.0, k=5, radius_m=1000.0) == []


@pytest.mark.parametrize(("lat", "lon"), [(91.0, 0.0), (0.0, 180.5), (math.nan, 0.0)])
def test_positions_out_of_range_are_refused(lat: float, lon: float) -> None:
    index = GridIndex()
    with pytest.raises(ValueError, match="out of range"):
        index.upsert("a", lat, lon)
    with pytest.raises(ValueError, match="out of range"):
        index.nearest(lat, lon, k=1, radius_m=1.0)


def test_haversine_known_distance() -> None:
    # One degree of latitude on the mean sphere, and a symmetric pair.
    assert haversine_m(24.0, 117.0, 25.0, 117.0) == pytest.approx(M_PER_DEG)
    assert haversine_m(24.51, 117.66, 24.52, 117.67) == pytest.approx(haversine_m(24.52, 117.67, 24.51, 117.66))
    assert haversine_m(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * EARTH_RADIUS_M)


async def test_memory_backend_delegates_to_the_grid() -> None:
    index: GeoIndex = MemoryGeoIndex()
    await index.upsert("a", *ZHANGZHOU, tags=1)
    await index.upsert("b", ZHANGZHOU[0] + 0.002, ZHANGZHOU[1], tags=2)
    assert len(index) == 2
    assert await index.get("a") == (*ZHANGZHOU, 1)
    hits = await index.nearest(*ZHANGZHOU, k=5, radius_m=1000.0)
    assert [key for key, _ in hits] == ["a", "b"]
    assert [key for key, _ in await index.nearest(*ZHANGZHOU, k=5, radius_m=1000.0, any_tags=2)] == ["b"]
    assert await index.nearest(*ZHANGZHOU, k=5, radius_m=1000.0, exclude={"a", "b"}) == []
    await index.remove("a")
    await index.remove("a")
    assert await index.get("a") is None
    assert len(index) == 1


async def test_partitions_split_the_grid_and_follow_a_moving_tag() -> None:
    index = MemoryGeoIndex(partition_mask=0b110)
    await index.upsert("walker", 24.51, 117.66, 0b011)  # partition 0b010
    await index.upsert("driver", 24.511, 117.66, 0b101)  # partition 0b100
    assert [k for k, _ in await index.nearest(24.51, 117.66, k=5, radius_m=1000, all_tags=0b010)] == ["walker"]
    assert [k for k, _ in await index.nearest(24.51, 117.66, k=5, radius_m=1000)] == ["walker", "driver"]
    await index.upsert("walker", 24.51, 117.66, 0b101)  # now drives
    assert [k for k, _ in await index.nearest(24.51, 117.66, k=5, radius_m=1000, all_tags=0b100)] == [
        "walker",
        "driver",
    ]
    assert await index.nearest(24.51, 117.66, k=5, radius_m=1000, all_tags=0b010) == []
    await index.remove("walker")
    assert (len(index), await index.get("walker")) == (1, None)


class PerGroup(GeoIndex):
    """A backend with no grouped walk of its own: it inherits the protocol's, one nearest per group."""

    def __init__(self) -> None:
        self.grid = GridIndex()

    def __len__(self) -> int:
        return len(self.grid)

    async def upsert(self, key: str, lat: float, lon: float, tags: int = 0) -> None:
        self.grid.upsert(key, lat, lon, tags)

    async def remove(self, key: str) -> None:
        self.grid.remove(key)

    async def get(self, key: str) -> tuple[float, float, int] | None:
        return self.grid.get(key)

    async def nearest(
        self,
        lat: float,
        lon: float,
        *,
        k: int,
        radius_m: float,
        any_tags: int = 0,
        exclude: Collection[str] = (),
        all_tags: int = 0,
    ) -> list[tuple[str, float]]:
        return self.grid.nearest(
            lat, lon, k=k, radius_m=radius_m, any_tags=any_tags, exclude=exclude, all_tags=all_tags
        )


@pytest.mark.parametrize("backend", ["one grid", "partitioned", "per group"])
async def test_every_backend_answers_grouped_queries_as_nearest_does(backend: str) -> None:
    index: GeoIndex = {
        "one grid": MemoryGeoIndex(),
        "partitioned": MemoryGeoIndex(partition_mask=0b1100),
        "per group": PerGroup(),
    }[backend]
    assert await index.nearest_groups(*ZHANGZHOU, k=5, radius_m=5000.0, groups=[4, 8]) == [[], []]
    for key, (lat, lon, tags) in scatter(seed=5, n=400, centre=ZHANGZHOU, half_m=3000.0).items():
        await index.upsert(key, lat, lon, tags)
    groups = [4, 8, 0, 12, 5]
    for k in (1, 6, 30):
        got = await index.nearest_groups(
            *ZHANGZHOU, k=k, radius_m=2500.0, any_tags=3, groups=groups, exclude={"p1", "p2"}
        )
        assert got == [
            await index.nearest(*ZHANGZHOU, k=k, radius_m=2500.0, any_tags=3, all_tags=group, exclude={"p1", "p2"})
            for group in groups
        ]
        assert all(len(hits) == k for hits in got[:3])


COSTS = [(60.0, 1.0), (90.0, 0.325), (180.0, 0.1625), (0.0, 0.0)]


def cost_limit(got_costs: list[float], k: int, slack: float) -> float:
    ranked = sorted(got_costs)
    return math.inf if len(ranked) < k else ranked[k - 1] * (1.0 + slack)


@settings(max_examples=300, deadline=None)
@given(
    sites=st.lists(st.tuples(lattice(300.0), lattice(300.0)), min_size=1, max_size=12),
    placed=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 15)), max_size=60),
    query=st.tuples(lattice(300.0), lattice(300.0)),
    k=st.integers(min_value=1, max_value=8),
    radius_m=st.sampled_from([0.0, 75.0, 300.0, 1000.0, 5000.0]),
    any_tags=st.integers(min_value=0, max_value=15),
    groups=st.lists(st.sampled_from([0, 1, 2, 4, 8, 3, 12, 16]), max_size=4),
    costs=st.lists(st.sampled_from(COSTS), min_size=4, max_size=4),
    slack=st.sampled_from([0.0, 0.012, 1.0]),
    excluded=st.sets(st.integers(min_value=0, max_value=59), max_size=10),
    high=st.booleans(),
)
def test_soonest_groups_hold_everyone_within_the_kth_cost(
    sites: list[tuple[float, float]],
    placed: list[tuple[int, int]],
    query: tuple[float, float],
    k: int,
    radius_m: float,
    any_tags: int,
    groups: list[int],
    costs: list[tuple[float, float]],
    slack: float,
    excluded: set[int],
    high: bool,
) -> None:
    """Against every group's full nearest list: each answer is a prefix of it (nearest first, ties by key),
    holds everyone within (1 + slack) × the k-th lowest cost of all groups, and nobody a micrometre beyond."""
    index = GridIndex(300.0)
    centre = TROMSO if high else ZHANGZHOU
    scale = math.cos(math.radians(centre[0]))
    for i, (site, tags) in enumerate(placed):
        dy, dx = sites[site % len(sites)]
        index.upsert(f"p{i}", centre[0] + dy / M_PER_DEG, centre[1] + dx / (M_PER_DEG * scale), tags)
    lat = centre[0] + query[0] / M_PER_DEG
    lon = centre[1] + query[1] / (M_PER_DEG * scale)
    exclude = {f"p{i}" for i in excluded}
    costs = costs[: len(groups)]
    got = index.soonest_groups(
        lat, lon, k=k, radius_m=radius_m, any_tags=any_tags, groups=groups, costs=costs, slack=slack, exclude=exclude
    )
    everyone = [
        index.nearest(lat, lon, k=len(placed) + 1, radius_m=radius_m, any_tags=any_tags, all_tags=g, exclude=exclude)
        for g in groups
    ]
    limit = cost_limit([s + d * m for (s, m), hits in zip(costs, everyone, strict=True) for _, d in hits], k, slack)
    for (setoff, per_metre), hits, full in zip(costs, got, everyone, strict=True):
        assert hits == full[: len(hits)]
        wanted = [hit for hit in full if setoff + hit[1] * per_metre <= limit]
        assert hits[: len(wanted)] == wanted
        assert all(setoff + (d - 2e-6) * per_metre <= limit * (1 + 1e-9) for _, d in hits)


def test_soonest_groups_in_the_city() -> None:
    rng = random.Random(12)
    groups = [1, 2, 4, 8]
    for _ in range(100):
        lat = ZHANGZHOU[0] + rng.uniform(-0.06, 0.06)
        lon = ZHANGZHOU[1] + rng.uniform(-0.06, 0.06)
        k = rng.choice([1, 5, 10, 40])
        any_tags = rng.choice([0, 3, 12])
        got = CITY_INDEX.soonest_groups(
            lat, lon, k=k, radius_m=5000.0, any_tags=any_tags, groups=groups, costs=COSTS, slack=0.012
        )
        everyone = [
            CITY_INDEX.nearest(lat, lon, k=len(CITY), radius_m=5000.0, any_tags=any_tags, all_tags=group)
            for group in groups
        ]
        limit = cost_limit([s + d * m for (s, m), hits in zip(COSTS, everyone, strict=True) for _, d in hits], k, 0.012)
        for (setoff, per_metre), hits, full in zip(COSTS, got, everyone, strict=True):
            assert hits == [hit for hit in full if setoff + hit[1] * per_metre <= limit]
    assert CITY_INDEX.soonest_groups(*ZHANGZHOU, k=0, radius_m=5000.0, groups=[1], costs=COSTS[:1]) == [[]]
    assert GridIndex().soonest_groups(*ZHANGZHOU, k=5, radius_m=5000.0, groups=[1], costs=COSTS[:1]) == [[]]


@pytest.mark.parametrize("backend", ["one grid", "partitioned", "per group"])
async def test_every_backend_answers_soonest_groups_with_everyone_within_the_limit(backend: str) -> None:
    index: GeoIndex = {
        "one grid": MemoryGeoIndex(),
        "partitioned": MemoryGeoIndex(partition_mask=0b1100),
        "per group": PerGroup(),
    }[backend]
    groups = [4, 8, 12]
    costs = COSTS[:3]
    assert await index.soonest_groups(*ZHANGZHOU, k=5, radius_m=5000.0, groups=groups, costs=costs) == [[], [], []]
    for key, (lat, lon, tags) in scatter(seed=6, n=400, centre=ZHANGZHOU, half_m=3000.0).items():
        await index.upsert(key, lat, lon, tags)
    for k in (1, 6, 30):
        got = await index.soonest_groups(
            *ZHANGZHOU, k=k, radius_m=2500.0, any_tags=3, groups=groups, costs=costs, slack=0.012, exclude={"p1"}
        )
        everyone = [
            await index.nearest(*ZHANGZHOU, k=400, radius_m=2500.0, any_tags=3, all_tags=group, exclude={"p1"})
            for group in groups
        ]
        limit = cost_limit([s + d * m for (s, m), hits in zip(costs, everyone, strict=True) for _, d in hits], k, 0.012)
        for (setoff, per_metre), hits, full in zip(costs, got, everyone, strict=True):
            wanted = [hit for hit in full if setoff + hit[1] * per_metre <= limit]
            assert hits[: len(wanted)] == wanted
            assert hits == full[: len(hits)]


def test_soonest_groups_keep_everyone_within_the_slack() -> None:
    """Walkers every 100 m north and drivers every 100 m east: the 2nd lowest cost is 160 (a walker 100 m away),
    so with a slack of 1 everyone costing up to 320 comes back, walkers to 260 m and drivers to 862 m."""
    index = GridIndex(300.0)
    for i in range(12):
        index.upsert(f"w{i:02d}", ZHANGZHOU[0] + i * 100.0 / M_PER_DEG, ZHANGZHOU[1], 1)
        index.upsert(f"d{i:02d}", ZHANGZHOU[0], ZHANGZHOU[1] + (i + 1) * 100.0 / (M_PER_DEG * 0.91), 2)
    walkers, drivers = index.soonest_groups(
        *ZHANGZHOU, k=2, radius_m=5000.0, groups=[1, 2], costs=[(60.0, 1.0), (180.0, 0.1625)], slack=1.0
    )
    assert [key for key, _ in walkers] == ["w00", "w01", "w02"]
    assert [key for key, _ in drivers] == [f"d{i:02d}" for i in range(8)]
