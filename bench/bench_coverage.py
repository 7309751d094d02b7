"""The coverage plan (dispatch.coverage) of a city of 100 000 elders and about 2 000 responders, all 24 hours.

A 50 km × 50 km square around Zhangzhou (24.51 N, 117.66 E) holds 200 communities; elders live around their
community's centre, responders (70 % caregivers, 30 % volunteers; walk, bike or car) too, on five kinds of
shift (none recorded, 08-20, 20-08, 07-15, 15-23). Clinics and a contracted organisation's staff are in the
registry and must be left out.

Rows, each one whole plan (every elder, every hour):

* ``coverage.compute`` — the product: exact (the geodesic decides where the sphere and the plane cannot).
* ``numpy sphere scan (floor)`` — the floor: numpy computes the haversine distance of every elder from each
  responder (200 million pairs) and ORs the responder's hour mask into those within its reach, the same
  bit-mask accumulation vectorised; approximate (the sphere, no geodesic), so a floor, not a rival.
* ``grid index per elder×hour×mode`` — what asking the matcher's grid index would cost: for each elder, hour
  and travel mode, "the 2 nearest working responders within this mode's reach" (``GridIndex.nearest``), timed
  on a 1 % sample of elders and scaled by 100.
* ``brute force geodesic`` — the tests' reference, every pair by geographiclib, on a 0.1 % sample scaled by
  1 000.

The product's masks are checked against the brute force on that sample, and on 100 of the elders some hours
leave uncovered, before anything is printed.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

import numpy as np

from bench.common import Timing, report, summarise
from dispatch.coverage import HOURS, compute, counts, duty_mask, reach_m
from dispatch.geo import EARTH_RADIUS_M, GridIndex
from dispatch.matching import eta_s, geodesic_m
from dispatch.registry import TRAVEL_BITS, Elder, Responder, Travel

CENTRE = (24.51, 117.66)
HALF_SIDE_M = 25_000.0
COMMUNITIES = 200
ELDERS = 100_000
CARE = 2_000
CLINICS = 40
CONTRACTED = 100
TARGET_S = 900.0
RUNS = 3
GRID_SAMPLE = 0.01
BRUTE_SAMPLE = 0.001
SEED = 20261130
SHIFTS = (None, None, "08:00-20:00", "20:00-08:00", "07:00-15:00", "15:00-23:00")

M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0


def make_city(rng: random.Random) -> tuple[list[Elder], list[Responder]]:
    dlat = HALF_SIDE_M / M_PER_DEG
    dlon = dlat / math.cos(math.radians(CENTRE[0]))
    centres = [(CENTRE[0] + rng.uniform(-dlat, dlat), CENTRE[1] + rng.uniform(-dlon, dlon)) for _ in range(COMMUNITIES)]

    def near(k: int, sd_m: float) -> tuple[float, float]:
        lat, lon = centres[k]
        return lat + rng.gauss(0, sd_m) / M_PER_DEG, lon + rng.gauss(0, sd_m) / (
            M_PER_DEG * math.cos(math.radians(lat))
        )

    def path(k: int) -> str:
        return f"芗城区/第{k // 8 + 1}街道/第{k + 1}社区"

    elders = []
    for i in range(ELDERS):
        k = rng.randrange(COMMUNITIES)
        lat, lon = near(k, 700.0)
        elders.append(Elder.model_construct(elder_id=f"e{i:06d}", name="老人", address="-", lat=lat, lon=lon,
                                            community=path(k)))  # fmt: skip
    responders = []
    for i in range(CARE + CLINICS + CONTRACTED):
        k = rng.randrange(COMMUNITIES)
        lat, lon = near(k, 1000.0)
        kind = "clinic" if i >= CARE + CONTRACTED else rng.choices(("caregiver", "volunteer"), weights=(7, 3))[0]
        travel: Travel = rng.choices(("walk", "bike", "car"), weights=(35, 50, 15))[0]
        responders.append(Responder.model_construct(
            responder_id=f"r{i:05d}", name="护理员", kind=kind, skills=["life_care"], lat=lat, lon=lon,
            community=path(k), travel=travel, hours=rng.choice(SHIFTS) if kind != "clinic" else "24h",
            green_channel=False, provider="kangle" if CARE <= i < CARE + CONTRACTED else "centre",
        ))  # fmt: skip
    return elders, responders


def numpy_floor(elders: list[Elder], responders: list[Responder]) -> tuple[np.ndarray, np.ndarray]:
    """The same accumulation of hour masks, vectorised over the elders, on the sphere."""
    phi = np.radians(np.array([e.lat for e in elders]))
    lam = np.radians(np.array([e.lon for e in elders]))
    cos_phi = np.cos(phi)
    once = np.zeros(len(elders), dtype=np.int64)
    twice = np.zeros(len(elders), dtype=np.int64)
    for r in responders:
        if not counts(r) or not duty_mask(r.hours):
            continue
        rphi, rlam = math.radians(r.lat), math.radians(r.lon)
        a = np.sin((phi - rphi) * 0.5) ** 2 + math.cos(rphi) * cos_phi * np.sin((lam - rlam) * 0.5) ** 2
        hit = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0))) <= reach_m(r.travel, TARGET_S)
        mask = duty_mask(r.hours)
        twice[hit] |= once[hit] & mask
        once[hit] |= mask
    return once, twice


def grid_queries(sample: list[Elder], responders: list[Responder]) -> int:
    """Per hour a grid of the working responders; per elder, hour and mode, the 2 nearest within reach."""
    grids = []
    for hour in range(HOURS):
        grid = GridIndex()
        for r in responders:
            if counts(r) and duty_mask(r.hours) >> hour & 1:
                grid.upsert(r.responder_id, r.lat, r.lon, TRAVEL_BITS[r.travel])
        grids.append(grid)
    covered = 0
    for elder in sample:
        for grid in grids:
            found = 0
            for travel, bit in TRAVEL_BITS.items():
                found += len(grid.nearest(elder.lat, elder.lon, k=2, radius_m=reach_m(travel, TARGET_S), all_tags=bit))
                if found >= 2:
                    break
            covered += found > 0
    return covered


def brute_force(sample: list[Elder], responders: list[Responder]) -> list[tuple[int, int]]:
    masks = []
    for elder in sample:
        once = twice = 0
        for r in responders:
            mask = duty_mask(r.hours) if counts(r) else 0
            if mask and eta_s(geodesic_m(elder.lat, elder.lon, r.lat, r.lon), r.travel) <= TARGET_S:
                twice |= once & mask
                once |= mask
        masks.append((once, twice))
    return masks


def timed(name: str, fn: Callable[[], object], runs: int, scale: float = 1.0) -> Timing:
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()
        samples.append(round((time.perf_counter_ns() - start) * scale))
    return summarise(name, samples)


def main() -> None:
    rng = random.Random(SEED)
    elders, responders = make_city(rng)
    computed = compute(elders, responders, target_s=TARGET_S)
    brute_sample = rng.sample(range(ELDERS), round(ELDERS * BRUTE_SAMPLE))
    partial = [i for i, once in enumerate(computed.once) if once != (1 << HOURS) - 1][:100]
    checked = brute_sample + partial  # a random sample and the elders some hours leave alone
    want = brute_force([elders[i] for i in checked], responders)
    got = [(computed.once[i], computed.twice[i]) for i in checked]
    assert got == want, "the plan differs from the brute force"
    floor_once, _ = numpy_floor(elders, responders)
    differ = sum(1 for i in range(ELDERS) if int(floor_once[i]) != computed.once[i])

    grid_sample = [elders[i] for i in rng.sample(range(ELDERS), round(ELDERS * GRID_SAMPLE))]
    rows = [
        timed("coverage.compute (all elders, 24 h)", lambda: compute(elders, responders, target_s=TARGET_S), RUNS),
        timed("numpy sphere scan (floor)", lambda: numpy_floor(elders, responders), RUNS),
        timed(
            "grid index per elder×hour×mode (1 % ×100)",
            lambda: grid_queries(grid_sample, responders),
            1,
            1 / GRID_SAMPLE,
        ),
        timed(
            "brute force geodesic (0.1 % ×1000)",
            lambda: brute_force([elders[i] for i in brute_sample], responders),
            1,
            1 / BRUTE_SAMPLE,
        ),
    ]
    whole = sum(1 for once in computed.once if once == (1 << HOURS) - 1)
    notes = {
        "elders": ELDERS,
        "responders_counted": len(computed.responders),
        "left_out": computed.excluded,
        "target_s": TARGET_S,
        "elders_covered_all_day": whole,
        "floor_differs_from_exact_for": differ,
        "checked_against_brute_force": len(checked),
    }
    print(f"{ELDERS} elders, {len(computed.responders)} responders counted (left out {computed.excluded}), "
          f"24 hours, target {TARGET_S:g} s; {whole} elders covered every hour; the sphere floor differs from "
          f"the exact plan for {differ} elders; {len(checked)} checked against the brute force")  # fmt: skip
    report("coverage", rows, floor="numpy sphere scan (floor)", notes=notes)


if __name__ == "__main__":
    main()
