"""The spatial index and the matcher on a city of 100 000 responders, against brute-force scans.

A 40 km × 40 km square around Zhangzhou (24.51 N, 117.66 E) holds 100 000 responders with one to three of the
four skills; 30 % are busy and so not in the index. Each query asks for the nearest 5 free responders with
one skill within 5 km. The floor is a numpy scan of all 100 000 computing every haversine distance with the
same filter; a pure-Python scan (200 queries only) shows what the index saves in the language it is written
in. The index's answers are checked against the numpy scan before anything is printed. The matcher's own
former question, the 2k nearest of each travel mode, is timed as one grouped walk and as one walk per mode (the
two answers are checked equal first), and its question now, everyone whose great-circle ETA could rank among
the k first, as one walk by cost.
"""

from __future__ import annotations

import asyncio
import math
import random
import time

import numpy as np

from bench.common import Timing, report, summarise, time_each
from bench.redis_server import redis_server
from dispatch.geo import EARTH_RADIUS_M, GridIndex, MemoryGeoIndex, haversine_m
from dispatch.matching import ROUGH_ETA_ERROR, TRAVEL_COSTS, Matcher
from dispatch.registry import SKILL_BITS, SKILLS, TRAVEL_BITS, Responder, Travel

CENTRE = (24.51, 117.66)
HALF_SIDE_M = 20_000.0
RESPONDERS = 100_000
BUSY = 0.30
QUERIES = 2_000
PYTHON_QUERIES = 200
MATCHER_QUERIES = 300
MOVES = 20_000
K = 5
RADIUS_M = 5_000.0
SEED = 20260601

M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0
DLAT = HALF_SIDE_M / M_PER_DEG
DLON = DLAT / math.cos(math.radians(CENTRE[0]))

Query = tuple[float, float, int]


class City:
    """The responders as plain lists (for the index and the Python scan) and numpy arrays (for the floor)."""

    def __init__(self, rng: random.Random) -> None:
        self.keys = [f"r{i:06d}" for i in range(RESPONDERS)]
        self.lat = [CENTRE[0] + rng.uniform(-DLAT, DLAT) for _ in self.keys]
        self.lon = [CENTRE[1] + rng.uniform(-DLON, DLON) for _ in self.keys]
        self.skills = [rng.sample(SKILLS, rng.randint(1, 3)) for _ in self.keys]
        self.tags = [sum(SKILL_BITS[skill] for skill in skills) for skills in self.skills]
        self.free = [rng.random() >= BUSY for _ in self.keys]
        modes: list[Travel] = ["walk", "bike", "car"]
        self.travel = [rng.choice(modes) for _ in self.keys]
        self.tags = [tags | TRAVEL_BITS[travel] for tags, travel in zip(self.tags, self.travel, strict=True)]
        self.np_phi = np.radians(np.array(self.lat))
        self.np_lam = np.radians(np.array(self.lon))
        self.np_cos = np.cos(self.np_phi)
        self.np_tags = np.array(self.tags, dtype=np.int64)
        self.np_free = np.array(self.free)

    def index(self) -> GridIndex:
        grid = GridIndex()
        for i, key in enumerate(self.keys):
            if self.free[i]:
                grid.upsert(key, self.lat[i], self.lon[i], self.tags[i])
        return grid

    def numpy_nearest(self, query: Query) -> list[tuple[str, float]]:
        lat, lon, bit = query
        phi = math.radians(lat)
        half_dphi = (self.np_phi - phi) * 0.5
        half_dlam = (self.np_lam - math.radians(lon)) * 0.5
        a = np.sin(half_dphi) ** 2 + math.cos(phi) * self.np_cos * np.sin(half_dlam) ** 2
        distance = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
        ok = np.flatnonzero(self.np_free & ((self.np_tags & bit) != 0) & (distance <= RADIUS_M))
        if len(ok) > K:
            ok = ok[np.argpartition(distance[ok], K - 1)[:K]]
        ok = ok[np.argsort(distance[ok], kind="stable")]
        return [(self.keys[i], float(distance[i])) for i in ok]

    def python_nearest(self, query: Query) -> list[tuple[str, float]]:
        lat, lon, bit = query
        hits = []
        for key, plat, plon, tags, free in zip(self.keys, self.lat, self.lon, self.tags, self.free, strict=True):
            if free and tags & bit:
                distance = haversine_m(lat, lon, plat, plon)
                if distance <= RADIUS_M:
                    hits.append((distance, key))
        hits.sort()
        return [(key, distance) for distance, key in hits[:K]]

    def profiles(self) -> dict[str, Responder]:
        return {
            key: Responder.model_construct(
                responder_id=key,
                name=key,
                kind="caregiver",
                skills=self.skills[i],
                lat=self.lat[i],
                lon=self.lon[i],
                community="芗城区/南坑街道/南坑社区",
                travel=self.travel[i],
                hours=None,
                green_channel=False,
            )
            for i, key in enumerate(self.keys)
        }


def check_agree(grid: GridIndex, city: City, queries: list[Query]) -> None:
    for query in queries:
        lat, lon, bit = query
        got = grid.nearest(lat, lon, k=K, radius_m=RADIUS_M, any_tags=bit)
        want = city.numpy_nearest(query)
        assert len(got) == len(want), (query, got, want)
        for (key, distance), (want_key, want_distance) in zip(got, want, strict=True):
            position = grid.get(key)
            assert position is not None
            assert abs(distance - want_distance) < 1e-6, (query, got, want)
            assert key == want_key or abs(haversine_m(lat, lon, position[0], position[1]) - want_distance) < 1e-6


def time_moves(grid: GridIndex, city: City, rng: random.Random) -> Timing:
    """Free responders walk up to 50 m in each direction; some cross into the next cell."""
    free = [i for i, is_free in enumerate(city.free) if is_free]
    moves = []
    for _ in range(MOVES):
        i = rng.choice(free)
        city.lat[i] += rng.uniform(-50.0, 50.0) / M_PER_DEG
        city.lon[i] += rng.uniform(-50.0, 50.0) / M_PER_DEG
        moves.append((city.keys[i], city.lat[i], city.lon[i], city.tags[i]))
    return time_each("GridIndex.upsert (move)", lambda move: grid.upsert(*move), moves)


def time_status_changes(grid: GridIndex, city: City, rng: random.Random) -> Timing:
    """A free responder takes a job (leaves the index) and comes back free (re-enters it)."""
    free = [i for i, is_free in enumerate(city.free) if is_free]

    def busy_then_free(i: int) -> None:
        key = city.keys[i]
        grid.remove(key)
        grid.upsert(key, city.lat[i], city.lon[i], city.tags[i])

    return time_each("status free→busy→free", busy_then_free, [rng.choice(free) for _ in range(MOVES)])


def time_groups(grid: GridIndex, queries: list[Query]) -> list[Timing]:
    """The matcher's questions to the index: the 2k nearest with the skill of each travel mode, as it asked, and
    everyone whose great-circle ETA could rank among the k first, as it asks now."""
    modes = list(TRAVEL_BITS.values())

    def grouped(query: Query) -> list[list[tuple[str, float]]]:
        return grid.nearest_groups(query[0], query[1], k=2 * K, radius_m=RADIUS_M, any_tags=query[2], groups=modes)

    def per_mode(query: Query) -> list[list[tuple[str, float]]]:
        return [
            grid.nearest(query[0], query[1], k=2 * K, radius_m=RADIUS_M, any_tags=query[2], all_tags=mode)
            for mode in modes
        ]

    def soonest(query: Query) -> list[list[tuple[str, float]]]:
        return grid.soonest_groups(
            query[0], query[1], k=K, radius_m=RADIUS_M, any_tags=query[2], groups=modes, costs=TRAVEL_COSTS,
            slack=ROUGH_ETA_ERROR,
        )  # fmt: skip

    for query in queries:
        assert grouped(query) == per_mode(query), query
    return [
        time_each("GridIndex.nearest_groups k=10 × 3 travel modes", grouped, queries),
        time_each("3 × GridIndex.nearest k=10, one per travel mode", per_mode, queries),
        time_each("GridIndex.soonest_groups k=5 by ETA × 3 modes", soonest, queries),
    ]


def time_matcher(grid: GridIndex, city: City, queries: list[Query]) -> Timing:
    """Matcher.rank as the engine builds it: one grouped walk, exact geodesic for the few, the top 5."""
    available = MemoryGeoIndex()  # as the engine builds it
    for i, key in enumerate(city.keys):
        if key in grid:
            asyncio.run(available.upsert(key, city.lat[i], city.lon[i], city.tags[i]))
    matcher = Matcher(available, MemoryGeoIndex(), city.profiles(), radius_m=RADIUS_M, k=K)
    skill_of = {bit: skill for skill, bit in SKILL_BITS.items()}

    async def run() -> list[int]:
        samples = []
        for lat, lon, bit in queries:
            start = time.perf_counter_ns()
            await matcher.rank(lat, lon, skill=skill_of[bit])
            samples.append(time.perf_counter_ns() - start)
        return samples

    return summarise("Matcher.rank k=5 (exact geodesic on the few)", asyncio.run(run()))


def redis_floor(city: City, queries: list[Query], rng: random.Random) -> list[Timing]:
    """The same question asked of Redis: one GEO key of free responders per skill, GEOSEARCH from Python."""
    bits = {bit: skill for skill, bit in SKILL_BITS.items()}
    with redis_server() as client:
        pipe = client.pipeline(transaction=False)
        for i, key in enumerate(city.keys):
            if city.free[i]:
                for skill in city.skills[i]:
                    pipe.geoadd(f"free:{skill}", (city.lon[i], city.lat[i], key))
        pipe.execute()

        def search(query: Query) -> object:
            return client.geosearch(
                f"free:{bits[query[2]]}", longitude=query[1], latitude=query[0], radius=RADIUS_M / 1000,
                unit="km", sort="ASC", count=K, withdist=True,
            )  # fmt: skip

        moves = [(rng.randrange(RESPONDERS), rng.uniform(-DLAT, DLAT)) for _ in range(MOVES // 4)]

        def move(item: tuple[int, float]) -> object:
            i, dlat = item
            return client.geoadd(f"free:{city.skills[i][0]}", (city.lon[i], CENTRE[0] + dlat, city.keys[i]))

        return [time_each(REDIS_FLOOR, search, queries), time_each("Redis GEOADD (a position move)", move, moves)]


REDIS_FLOOR = "Redis GEOSEARCH 5 km COUNT 5"


def main() -> None:
    rng = random.Random(SEED)
    city = City(rng)
    started = time.perf_counter()
    grid = city.index()
    build_s = time.perf_counter() - started
    queries = [
        (
            CENTRE[0] + rng.uniform(-DLAT, DLAT),
            CENTRE[1] + rng.uniform(-DLON, DLON),
            SKILL_BITS[rng.choice(SKILLS)],
        )
        for _ in range(QUERIES)
    ]
    check_agree(grid, city, queries)

    def grid_nearest(query: Query) -> object:
        return grid.nearest(query[0], query[1], k=K, radius_m=RADIUS_M, any_tags=query[2])

    floor = "numpy brute force, 100k"
    rows = [
        time_each("GridIndex.nearest k=5 r=5km skill", grid_nearest, queries),
        time_each(floor, city.numpy_nearest, queries),
        time_each("pure-Python brute force, 100k", city.python_nearest, queries[:PYTHON_QUERIES]),
        *time_groups(grid, queries),
        time_matcher(grid, city, queries[:MATCHER_QUERIES]),
        time_moves(grid, city, rng),
        time_status_changes(grid, city, rng),
        *redis_floor(city, queries, rng),
    ]
    print(
        f"{RESPONDERS} responders over {2 * HALF_SIDE_M / 1000:.0f} km square, {len(grid)} free in the index "
        f"(built in {build_s:.2f} s); answers agree with the numpy scan on {QUERIES} queries"
    )
    ours = rows[0]
    geosearch = next(row for row in rows if row.name == REDIS_FLOOR)
    target = ours.p99_us <= geosearch.p99_us / 3
    print(
        f"p99 of GridIndex.nearest / p99 of Redis GEOSEARCH = {ours.p99_us / geosearch.p99_us:.3f} "
        f"(target ≤ 0.333: {'met' if target else 'MISSED'})"
    )
    report(
        "matching",
        rows,
        floor,
        notes={
            "responders": RESPONDERS,
            "free": len(grid),
            "area_km": 2 * HALF_SIDE_M / 1000,
            "k": K,
            "radius_m": RADIUS_M,
            "cell_m": grid.cell_m,
            "index_build_s": round(build_s, 3),
            "p99_vs_geosearch_p99": round(ours.p99_us / geosearch.p99_us, 4),
            "target_p99_third_of_geosearch": target,
        },
    )


if __name__ == "__main__":
    main()
