"""Coverage: the share of elders a responder can reach within the target (15 minutes), hour by hour.

Theory of operation
-------------------
This module owns the planning view "where are elders beyond 15 minutes of help, and when": for every elder
and every hour of the day (0-23, the centre's local time), whether at least one responder, and whether two or
more, would arrive within ``target_s`` by the matcher's own travel model (:func:`dispatch.matching.eta_s` over
the exact WGS-84 geodesic, :func:`dispatch.matching.geodesic_m`). It is pure computation: records in, figures
out; no clock, no store, no file.

Rules
-----
1. Who counts: the centre's caregivers and volunteers (``provider == "centre"``, not clinics, not a contracted
   organisation's staff), each from their registered position (their home base), by their travel mode.
2. When: a responder counts at hour ``h`` when their working hours (``Responder.hours``, read by
   :func:`dispatch.registry.open_at`; none recorded: all day) cover the whole hour, ``h:00`` to ``h:59``.
   Live duty (rosters, the phone's on/off duty) is the present, not a plan, and is not read.
3. Reached: ``eta_s(geodesic_m(elder, responder), travel) <= target_s``, the brute-force definition; the fast
   path below decides only where it is sure and falls back to exactly that expression where it is not.
4. An elder is covered at ``h`` when one responder counting at ``h`` reaches them, covered twice (resilience:
   one may be busy) when two do.

The fast path
-------------
Hours are bits: a responder's 24 hours are a mask, and each elder keeps two masks, the hours they are reached
at least once (``once``) and at least twice (``twice``); a responder reaching them adds its mask with
``twice |= once & mask; once |= mask``. So all 24 hours cost one pass over the responders.

Elders are bucketed in cells of ``cell_m`` (200 m of latitude, as many degrees of longitude). Each responder
has a reach in metres (the distance its ETA meets the target) and walks the cells of its box:

* a cell whose farthest point is surely within reach (on the sphere, with the sphere-versus-ellipsoid factor,
  0.9944-1.0045 anywhere, taken as 0.99-1.01) takes the mask as a whole, with no elder looked at;
* a cell surely beyond reach is skipped;
* in a cell astride the edge each elder is filtered by the squared chord between unit vectors (no
  trigonometry); those in the sphere's band of doubt are measured on a local ellipsoidal plane (radii of
  curvature at the mid latitude; within 12 km and 70° of latitude it is within 1.3e-6 of the geodesic, so a
  band of 1e-5 is safe) and only those in that narrow band get the exact geodesic.

Cell masks are folded into their elders at the end. For 100 000 elders, 2 000 responders and 24 hours this is
a few seconds of Python (bench/bench_coverage.py), where asking a grid index per elder and hour would be
millions of queries.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dispatch.errors import InvalidInput
from dispatch.geo import EARTH_RADIUS_M
from dispatch.matching import DETOUR_FACTOR, TRAVEL_MODES, eta_s, geodesic_m
from dispatch.registry import Elder, Responder, open_at

HOURS = 24
ALL_HOURS = (1 << HOURS) - 1
DEFAULT_TARGET_S = 900.0
#: said with every answer: what the figures assume (docs/coverage.md)
ASSUMPTION = (
    "centre caregivers and volunteers (no clinics, no contracted staff) start from their registered position and "
    "count at an hour when their registered working hours cover all of it (none recorded: all day); live duty "
    "is not read; reached means the matcher's ETA (travel mode, 1.3 detour, set-off time) within the target"
)

_M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0
_CELL_M = 200.0
#: the geodesic over the sphere's great circle, anywhere on earth (0.9944 to 1.0045), with room
_SPHERE_LOW, _SPHERE_HIGH = 0.99, 1.01
#: the local ellipsoidal plane against the geodesic: within 1.3e-6 below 12 km and 70° of latitude
_PLANE_BAND = 1e-5
_PLANE_MAX_M = 12_000.0
_PLANE_MAX_LAT = 70.0
_WGS84_A = 6378137.0
_WGS84_E2 = (1 / 298.257223563) * (2 - 1 / 298.257223563)


def check_hour(hour: int) -> int:
    if not 0 <= hour < HOURS:
        raise InvalidInput(f"hour must be 0 to 23, not {hour}", field="hour", code="coverage_hour")
    return hour


def check_target(target_s: float) -> float:
    if not 60.0 <= target_s <= 4 * 3600.0:
        raise InvalidInput(f"the target must be 1 to 240 minutes, not {target_s} s", field="target",
                           code="coverage_target")  # fmt: skip
    return target_s


def counts(responder: Responder) -> bool:
    """Rule 1: the centre's own caregivers and volunteers."""
    return responder.kind != "clinic" and responder.provider == "centre"


@lru_cache(maxsize=256)
def duty_mask(hours: str | None) -> int:
    """Rule 2: the hours of the day (bits 0-23) that working hours ``hours`` cover whole."""
    if hours is None:
        return ALL_HOURS
    mask = 0
    for hour in range(HOURS):
        if all(open_at(hours, minute) for minute in range(hour * 60, hour * 60 + 60)):
            mask |= 1 << hour
    return mask


def reach_m(travel: str, target_s: float) -> float:
    """The geodesic distance whose ETA by this travel mode is exactly the target (negative: none)."""
    mode = TRAVEL_MODES[travel]
    return (target_s - mode.setoff_s) * mode.speed_m_s / DETOUR_FACTOR


@dataclass(frozen=True, slots=True)
class Coverage:
    """Per elder (in the order given), the hours reached once and twice; and the responders that counted."""

    target_s: float
    elders: tuple[Elder, ...]
    once: tuple[int, ...]
    twice: tuple[int, ...]
    responders: tuple[Responder, ...]
    excluded: dict[str, int]  # why a responder did not count -> how many


def compute(
    elders: Iterable[Elder], responders: Iterable[Responder], *, target_s: float = DEFAULT_TARGET_S
) -> Coverage:
    """Who is reached at which hours (see the module docstring)."""
    check_target(target_s)
    people = tuple(elders)
    counted: list[Responder] = []
    excluded: Counter[str] = Counter()
    for responder in responders:
        if responder.kind == "clinic":
            excluded["clinic"] += 1
        elif responder.provider != "centre":
            excluded["contracted"] += 1
        elif not duty_mask(responder.hours):
            excluded["no_whole_hour"] += 1
        else:
            counted.append(responder)
    once, twice = _Sweep(people, target_s).run(counted)
    return Coverage(target_s, people, tuple(once), tuple(twice), tuple(counted), dict(excluded))


class _Cell:
    __slots__ = ("centre", "half_m", "members", "once", "twice")

    def __init__(self, centre: tuple[float, float, float], half_m: float) -> None:
        self.centre = centre
        self.half_m = half_m
        self.members: list[int] = []
        self.once = 0
        self.twice = 0


def _unit(lat: float, lon: float) -> tuple[float, float, float]:
    phi, lam = math.radians(lat), math.radians(lon)
    return math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)


def _chord2(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    dx, dy, dz = a[0] - b[0], a[1] - b[1], a[2] - b[2]
    return dx * dx + dy * dy + dz * dz


def _sphere_m(chord2: float) -> float:
    return 2.0 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(chord2) * 0.5))


def _chord2_of(distance_m: float) -> float:
    return (2.0 * math.sin(min(distance_m, math.pi * EARTH_RADIUS_M) / (2.0 * EARTH_RADIUS_M))) ** 2


def _plane_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance on the ellipsoid's tangent plane at the mid latitude (meridional and prime-vertical radii)."""
    mid = math.radians((lat1 + lat2) * 0.5)
    w = 1.0 - _WGS84_E2 * math.sin(mid) ** 2
    north = _WGS84_A * (1.0 - _WGS84_E2) / (w * math.sqrt(w)) * math.radians(lat2 - lat1)
    east = _WGS84_A / math.sqrt(w) * math.cos(mid) * math.radians(lon2 - lon1)
    return math.hypot(north, east)


class _Sweep:
    """One pass of the responders over the elders' cells."""

    def __init__(self, elders: Sequence[Elder], target_s: float) -> None:
        self.elders = elders
        self.target_s = target_s
        self.deg = _CELL_M / _M_PER_DEG
        self.units = [_unit(e.lat, e.lon) for e in elders]
        self.once = [0] * len(elders)
        self.twice = [0] * len(elders)
        self.cells: dict[tuple[int, int], _Cell] = {}
        for index, elder in enumerate(elders):
            key = (math.floor(elder.lat / self.deg), math.floor(elder.lon / self.deg))
            cell = self.cells.get(key)
            if cell is None:
                cell = self.cells[key] = self._cell(*key)
            cell.members.append(index)

    def _cell(self, row: int, col: int) -> _Cell:
        deg = self.deg
        lat, lon = (row + 0.5) * deg, (col + 0.5) * deg
        centre = _unit(lat, lon)
        corners = [_unit(lat + a * deg / 2, lon + b * deg / 2) for a in (-1, 1) for b in (-1, 1)]
        half = max(_sphere_m(_chord2(centre, corner)) for corner in corners) * 1.01
        return _Cell(centre, half)

    def run(self, responders: Sequence[Responder]) -> tuple[list[int], list[int]]:
        for responder in responders:
            self._responder(responder)
        once, twice = self.once, self.twice
        for cell in self.cells.values():
            if cell.once:
                for i in cell.members:
                    twice[i] |= cell.twice | (once[i] & cell.once)
                    once[i] |= cell.once
        return once, twice

    def _responder(self, responder: Responder) -> None:
        reach = reach_m(responder.travel, self.target_s)
        if reach < 0:
            return
        mask = duty_mask(responder.hours)
        far = reach / _SPHERE_LOW  # beyond this on the sphere: surely beyond reach
        near = reach / _SPHERE_HIGH  # within this on the sphere: surely within reach
        here = _unit(responder.lat, responder.lon)
        deg = self.deg
        rows = math.ceil((far + _CELL_M) / _CELL_M)
        row0 = math.floor(responder.lat / deg)
        edge_lat = min(89.9, abs(responder.lat) + (rows + 1) * deg)
        cols = math.ceil((far / _M_PER_DEG) / math.cos(math.radians(edge_lat)) / deg) + 1
        col0 = math.floor(responder.lon / deg)
        cells = self.cells
        for row in range(row0 - rows, row0 + rows + 1):
            for col in range(col0 - cols, col0 + cols + 1):
                cell = cells.get((row, col))
                if cell is None:
                    continue
                centre_m = _sphere_m(_chord2(here, cell.centre))
                if centre_m - cell.half_m > far:
                    continue
                if centre_m + cell.half_m <= near:
                    cell.twice |= cell.once & mask
                    cell.once |= mask
                    continue
                self._edge_cell(responder, here, cell, reach, mask, (_chord2_of(far), _chord2_of(near)))

    def _edge_cell(
        self,
        responder: Responder,
        here: tuple[float, float, float],
        cell: _Cell,
        reach: float,
        mask: int,
        chords: tuple[float, float],
    ) -> None:
        """A cell astride the edge of the responder's reach, elder by elder."""
        far2, near2 = chords
        plane = reach * 1.02 <= _PLANE_MAX_M and abs(responder.lat) <= _PLANE_MAX_LAT
        units, once, twice = self.units, self.once, self.twice
        hx, hy, hz = here
        for i in cell.members:
            x, y, z = units[i]
            c2 = (x - hx) ** 2 + (y - hy) ** 2 + (z - hz) ** 2
            if c2 > far2:
                continue
            if c2 > near2 and not self._reached(responder, self.elders[i], reach, plane):
                continue
            twice[i] |= once[i] & mask
            once[i] |= mask

    def _reached(self, responder: Responder, elder: Elder, reach: float, plane: bool) -> bool:
        """In the sphere's band of doubt: the plane decides when sure, the geodesic (rule 3) when not."""
        if plane:
            distance = _plane_m(responder.lat, responder.lon, elder.lat, elder.lon)
            if distance <= reach * (1.0 - _PLANE_BAND):
                return True
            if distance > reach * (1.0 + _PLANE_BAND):
                return False
        exact = geodesic_m(elder.lat, elder.lon, responder.lat, responder.lon)
        return eta_s(exact, responder.travel) <= self.target_s


# -- figures -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Area:
    """A community, street or district (or the whole, ``*``): its elders and, per hour, how many are covered
    once and twice."""

    place: str
    level: str  # "community", "street", "district" or "all"
    elders: int
    covered: tuple[int, ...]
    covered_twice: tuple[int, ...]

    def share(self, hour: int) -> float:
        return self.covered[hour] / self.elders if self.elders else 1.0

    @property
    def worst_hour(self) -> int:
        return min(range(HOURS), key=lambda h: (self.covered[h], h))

    @property
    def best_hour(self) -> int:
        return max(range(HOURS), key=lambda h: (self.covered[h], -h))


def areas(coverage: Coverage) -> list[Area]:
    """The whole first, then districts, streets and communities, each level by path."""
    tallies: Counter[tuple[str, int, int]] = Counter(
        (elder.community, once, twice)
        for elder, once, twice in zip(coverage.elders, coverage.once, coverage.twice, strict=True)
    )
    sums: dict[tuple[str, str], list[list[int]]] = {}
    for (community, once, twice), n in tallies.items():
        district, street, _ = community.split("/")
        for key in (("all", "*"), ("district", district), ("street", f"{district}/{street}"), ("community", community)):
            total = sums.setdefault(key, [[0], [0] * HOURS, [0] * HOURS])
            total[0][0] += n
            for hour in range(HOURS):
                if once >> hour & 1:
                    total[1][hour] += n
                if twice >> hour & 1:
                    total[2][hour] += n
    if not sums:
        sums[("all", "*")] = [[0], [0] * HOURS, [0] * HOURS]
    order = {"all": 0, "district": 1, "street": 2, "community": 3}
    return [
        Area(place, level, total[0][0], tuple(total[1]), tuple(total[2]))
        for (level, place), total in sorted(sums.items(), key=lambda item: (order[item[0][0]], item[0][1]))
    ]


def uncovered(coverage: Coverage, hour: int) -> list[Elder]:
    """The elders no responder reaches at this hour, by id."""
    bit = 1 << check_hour(hour)
    found = [elder for elder, once in zip(coverage.elders, coverage.once, strict=True) if not once & bit]
    return sorted(found, key=lambda e: e.elder_id)


def report(
    coverage: Coverage, *, hour: int | None = None, responders_shown: Sequence[Responder] | None = None
) -> dict[str, Any]:
    """The figures as JSON: per area and hour, and the uncovered elders' ids at ``hour`` (default: the whole's
    worst hour). ``responders_shown``: the counted responders listed by id and position and counted on duty per
    hour (a reader's own part of the network; None: all)."""
    shown = coverage.responders if responders_shown is None else responders_shown
    every = areas(coverage)
    whole = every[0]
    map_hour = whole.worst_hour if hour is None else check_hour(hour)
    missing: dict[str, list[str]] = {}
    for elder in uncovered(coverage, map_hour):
        missing.setdefault(elder.community, []).append(elder.elder_id)
    on_duty = [Counter(r.kind for r in shown if duty_mask(r.hours) >> h & 1) for h in range(HOURS)]
    return {
        "target_s": coverage.target_s,
        "hour": map_hour,
        "assumption": ASSUMPTION,
        "responders": {
            "counted": len(coverage.responders),
            "excluded": dict(sorted(coverage.excluded.items())),
            "on_duty": [{"caregiver": c["caregiver"], "volunteer": c["volunteer"]} for c in on_duty],
            "shown": [_responder_json(r) for r in sorted(shown, key=lambda r: r.responder_id)],
        },
        "areas": [_area_json(area, map_hour, missing) for area in every],
    }


def _responder_json(r: Responder) -> dict[str, Any]:
    return {"responder_id": r.responder_id, "kind": r.kind, "travel": r.travel, "lat": r.lat, "lon": r.lon,
            "community": r.community, "hours": r.hours}  # fmt: skip


def _area_json(area: Area, hour: int, missing: dict[str, list[str]]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "place": area.place,
        "level": area.level,
        "elders": area.elders,
        "covered": list(area.covered),
        "covered_twice": list(area.covered_twice),
        "worst_hour": area.worst_hour,
        "worst_share": round(area.share(area.worst_hour), 4),
        "best_hour": area.best_hour,
        "best_share": round(area.share(area.best_hour), 4),
        "share_at_hour": round(area.share(hour), 4),
    }
    if area.level == "community":
        view["uncovered"] = missing.get(area.place, [])
    return view
