"""The spatial index: "the nearest K free responders within R metres", without scanning every responder.

Theory of operation
-------------------
The earth is cut into a grid of cells ``cell_m`` metres of latitude tall (500 m by default) and as many
degrees of longitude wide, so a cell is ``cell_m * cos(lat)`` metres wide. Each cell is a dict
``key -> (x, y, z, tags)`` of the points inside it, where ``(x, y, z)`` is the point's unit vector on the
sphere, computed once when the point is stored. A second dict maps each key to ``(lat, lon, tags, cell)``, so
a moved point leaves its old cell in O(1): an upsert costs a few trigonometric calls and two dict writes.

A query walks the grid in rings outward from its own cell. Ring 0 is that cell; ring r is the border of the
box of ``r`` rows and ``r * step`` columns around it, where ``step`` (about ``1 / cos(lat)``) widens the box
in columns so that it grows by about one cell size in metres in every direction, also far north. A point is
filtered on the squared chord between unit vectors: a few multiplications, no trigonometry, and *monotonic*
in the great-circle distance, so filtering and ordering by it is exact rather than approximate. After each
ring the index takes a lower bound on the distance of everything it has not looked at (the distance to the
box's nearest edge: a meridian arc to its north and south rows, the great-circle distance to the meridians
bounding its east and west columns) and stops when

* that bound is beyond ``radius_m`` (nothing unseen can qualify), or
* K points are held and the K-th is no farther than the bound (nothing unseen can be closer).

Within a ring, cells are visited nearest first and skipped when a lower bound on their distance already
exceeds the K-th best; the best K are kept in a heap. Only they are turned into metres, through the haversine
relation (the haversine of the central angle is a quarter of the squared chord, on the sphere of mean radius
6 371 008.8 m), and sorted by distance, then by key, so equal distances come back in a stable order.

A grouped query (``nearest_groups``: the K nearest of each travel mode, say) walks the same rings once with a
heap and a limit per group, skipping a cell or ending the walk only when it is beyond every group's limit. Each
heap sees the points its own ``nearest`` would see, in the same order, so each answer is that of ``nearest``
exactly, ties included, for the cost of one walk.

A query by cost (``soonest_groups``: whoever could arrive among the K first, say) walks the same rings with one
heap of the K lowest costs over all groups, a group's cost being ``setoff + metres × per_metre``. Each time the
K-th cost falls, every group's limit becomes the squared chord at which its cost reaches that K-th cost (times
``1 + slack``), so a slow group's limit shrinks fast and the walk ends once the cheapest group's limit is behind
it, not once every group holds K. The points seen within their group's limit are kept, and those still within
it at the end are the answer.

Rules
-----
* Distances are great-circle distances on the sphere. The exact ellipsoidal distance is the matcher's business,
  for the few candidates it ranks; the index never computes it.
* Tags are a bit mask per point (a responder's skills); ``any_tags`` keeps points sharing at least one bit.
* A query never scans every point: it costs the cells of the rings it needed, which for a city's density of
  responders and K = 5 is the query's cell and its eight neighbours. Only when a ring would probe more cells
  than the index has occupied (a tiny population, a huge radius) does it visit the occupied cells instead.

Limits
------
The grid does not wrap at the antimeridian: a query near longitude ±180 does not see points across it. Near a
pole the cells are very narrow and the rings wide (up to the whole circle of longitude), but the answer stays
correct and the walk ends: rows and columns are clamped to the globe, a side that reaches a pole or covers
every longitude bounds nothing, and a ring wider than the occupied cells ends the walk as above. Both places
are far from any community served, so they are documented here rather than handled.

``GeoIndex`` is the async interface the dispatch core uses, so that a Redis backend (GEOADD / GEOSEARCH) can
stand in for ``MemoryGeoIndex``, the embedded backend, which only wraps a ``GridIndex``. A backend that cannot
answer a grouped query in one pass inherits the protocol's, one ``nearest`` per group.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterator, Sequence, Set
from typing import Protocol

EARTH_RADIUS_M = 6371008.8
"""Mean earth radius (IUGG), the sphere all distances of this module are measured on."""

_M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0
_TWO_R = 2.0 * EARTH_RADIUS_M
_ROW = 1 << 24
"""A cell's id is ``row * _ROW + column``; columns stay within ±_ROW / 2 for cells of 10 m and more."""
_MIN_CELL_M = 10.0
_SLACK = 1e-9
"""Relative slack on the lower bounds (plus a micrometre), so rounding never skips a cell or a ring early."""
_BOUND_SCALE = 4.0 * (1.0 - _SLACK)
_MEMBERSHIPS = 64
"""How many kinds of grouped query (``any_tags`` and groups) a grid remembers the members of."""

Point = tuple[float, float, float, int]
"""A point inside a cell: unit vector x, y, z and tags."""
Box = tuple[int, int, int, int]
"""Rows bottom..top and columns west..east of cells, inclusive."""
Cost = tuple[float, float]
"""What reaching a point of a group costs: ``(setoff, per_metre)``, as ``setoff + metres × per_metre``."""


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS-84 positions, on the mean-radius sphere."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    half_dphi = (phi2 - phi1) * 0.5
    half_dlam = math.radians(lon2 - lon1) * 0.5
    a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlam) ** 2
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


#: a point this little beyond the radius is on it: the chord's distance and a haversine from the coordinates
#: differ in their last bits, and one exactly on the radius must not fall out by one or the other
ON_THE_EDGE_M = 1e-6


def _chord2(distance_m: float) -> float:
    """The squared chord between unit vectors that are ``distance_m`` apart on the sphere."""
    if distance_m >= math.pi * EARTH_RADIUS_M:
        return math.inf if distance_m == math.inf else 4.0
    return (2.0 * math.sin(distance_m / (2.0 * EARTH_RADIUS_M))) ** 2


def _check_position(lat: float, lon: float) -> None:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"position out of range: {lat!r}, {lon!r}")


class GridIndex:
    """Keyed points on a lat/lon grid of cells; synchronous, in memory. See the module docstring."""

    def __init__(self, cell_m: float = 500.0) -> None:
        if not cell_m >= _MIN_CELL_M:
            raise ValueError(f"cell_m must be at least {_MIN_CELL_M} m")
        self.cell_m = cell_m
        self._deg = cell_m / _M_PER_DEG
        self._row_min = math.floor(-90.0 / self._deg)
        self._row_max = math.floor(90.0 / self._deg)
        self._col_min = math.floor(-180.0 / self._deg)
        self._col_max = math.floor(180.0 / self._deg)
        self._cells: dict[int, dict[str, Point]] = {}
        self._points: dict[str, tuple[float, float, int, int]] = {}
        self._memberships: dict[tuple[int, tuple[int, ...]], dict[int, tuple[int, ...]]] = {}

    def __len__(self) -> int:
        return len(self._points)

    def __contains__(self, key: object) -> bool:
        return key in self._points

    def get(self, key: str) -> tuple[float, float, int] | None:
        """``(lat, lon, tags)`` of a key, or None."""
        entry = self._points.get(key)
        if entry is None:
            return None
        return entry[0], entry[1], entry[2]

    def upsert(self, key: str, lat: float, lon: float, tags: int = 0) -> None:
        """Store or move a point; its cell follows its position."""
        _check_position(lat, lon)
        deg = self._deg
        cell_id = math.floor(lat / deg) * _ROW + math.floor(lon / deg)
        point = (*_unit(lat, lon), tags)
        old = self._points.get(key)
        if old is not None and old[3] != cell_id:
            self._drop_from_cell(key, old[3])
        cell = self._cells.get(cell_id)
        if cell is None:
            cell = self._cells[cell_id] = {}
        cell[key] = point
        self._points[key] = (lat, lon, tags, cell_id)

    def remove(self, key: str) -> None:
        """Forget a point; forgetting an unknown key is not an error."""
        old = self._points.pop(key, None)
        if old is not None:
            self._drop_from_cell(key, old[3])

    def _drop_from_cell(self, key: str, cell_id: int) -> None:
        cell = self._cells[cell_id]
        del cell[key]
        if not cell:
            del self._cells[cell_id]

    def nearest(
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
        """Up to ``k`` ``(key, haversine metres)`` within ``radius_m``, nearest first.

        With ``any_tags`` set, only points sharing a bit with it; with ``all_tags``, only points having all
        its bits; never a key in ``exclude``.
        """
        _check_position(lat, lon)
        if k <= 0 or radius_m < 0 or not self._points:
            return []
        skip = exclude if isinstance(exclude, Set) else frozenset(exclude)
        qx, qy, qz = _unit(lat, lon)
        limit = _chord2(radius_m + ON_THE_EDGE_M)
        reach = [limit]
        best: list[tuple[float, str]] = []  # (-chord², key); a max-heap once it holds k
        full = False
        for cell in self._walk(lat, lon, reach):
            for key, (x, y, z, tags) in cell.items():
                if (any_tags and not tags & any_tags) or tags & all_tags != all_tags:
                    continue
                dx = x - qx
                dy = y - qy
                dz = z - qz
                c2 = dx * dx + dy * dy + dz * dz
                if c2 <= limit and (not skip or key not in skip):
                    if full:
                        heapq.heapreplace(best, (-c2, key))
                        limit = -best[0][0]
                    else:
                        best.append((-c2, key))
                        if len(best) == k:
                            heapq.heapify(best)
                            full = True
                            limit = -best[0][0]
            reach[0] = limit
        return _in_metres(best, radius_m)

    def nearest_groups(
        self,
        lat: float,
        lon: float,
        *,
        k: int,
        radius_m: float,
        any_tags: int = 0,
        groups: Sequence[int],
        exclude: Collection[str] = (),
    ) -> list[list[tuple[str, float]]]:
        """For each tag group, what ``nearest(..., all_tags=group)`` returns, from one walk of the cells.

        Each group keeps its own heap and limit; a cell is skipped, and the walk ends, only when it is beyond
        every group's limit. Each group's heap therefore sees the very points, in the very order, that its own
        walk would, so ties are broken alike and the answers are equal, not merely equally near.
        """
        _check_position(lat, lon)
        if k <= 0 or radius_m < 0 or not self._points:
            return [[] for _ in groups]
        skip = exclude if isinstance(exclude, Set) else frozenset(exclude)
        qx, qy, qz = _unit(lat, lon)
        radius_limit = _chord2(radius_m + ON_THE_EDGE_M)
        limits = [radius_limit] * len(groups)
        widest = radius_limit
        reach = [widest]
        heaps: list[list[tuple[float, str]]] = [[] for _ in groups]  # as in nearest, one per group
        members = self._members(any_tags, groups)
        for cell in self._walk(lat, lon, reach):
            for key, (x, y, z, tags) in cell.items():
                among = members.get(tags)
                if among is None:
                    among = members[tags] = _groups_of(tags, any_tags, groups)
                if not among:
                    continue
                dx = x - qx
                dy = y - qy
                dz = z - qz
                c2 = dx * dx + dy * dy + dz * dz
                if c2 > widest or (skip and key in skip):
                    continue
                for g in among:
                    if c2 > limits[g]:
                        continue
                    best = heaps[g]
                    if len(best) == k:
                        heapq.heapreplace(best, (-c2, key))
                    else:
                        best.append((-c2, key))
                        if len(best) < k:
                            continue
                        heapq.heapify(best)
                    limits[g] = -best[0][0]
                    widest = max(limits)
            reach[0] = widest
        return [_in_metres(best, radius_m) for best in heaps]

    def soonest_groups(
        self,
        lat: float,
        lon: float,
        *,
        k: int,
        radius_m: float,
        any_tags: int = 0,
        groups: Sequence[int],
        costs: Sequence[Cost],
        slack: float = 0.0,
        exclude: Collection[str] = (),
    ) -> list[list[tuple[str, float]]]:
        """For each tag group, its points within ``radius_m`` that cost no more than ``1 + slack`` times the
        ``k``-th lowest cost of all groups (every point, if fewer), nearest first, as ``nearest`` gives them.

        A point costs ``setoff + metres × per_metre`` by its group's :data:`Cost` (a travel mode's arrival
        time, say), once for each group it belongs to. The answer may hold a few more points, no farther than a
        micrometre beyond that limit; never fewer. The walk ends once no unseen cell can hold a point within the
        limit of any group, which the cheapest group's rate sets, rather than once each group holds ``k``.
        """
        _check_position(lat, lon)
        if k <= 0 or radius_m < 0 or not self._points:
            return [[] for _ in groups]
        skip = exclude if isinstance(exclude, Set) else frozenset(exclude)
        qx, qy, qz = _unit(lat, lon)
        radius_limit = _chord2(radius_m + ON_THE_EDGE_M)
        within_m = radius_m + ON_THE_EDGE_M
        limits = [radius_limit] * len(groups)
        widest = radius_limit
        reach = [widest]
        found: list[list[tuple[float, str]]] = [[] for _ in groups]  # (chord², key) within the limit when seen
        lowest: list[float] = []  # the k lowest costs, negated: a max-heap once it holds k
        members = self._members(any_tags, groups)
        for cell in self._walk(lat, lon, reach):
            for key, (x, y, z, tags) in cell.items():
                among = members.get(tags)
                if among is None:
                    among = members[tags] = _groups_of(tags, any_tags, groups)
                if not among:
                    continue
                dx = x - qx
                dy = y - qy
                dz = z - qz
                c2 = dx * dx + dy * dy + dz * dz
                if c2 > widest or (skip and key in skip):
                    continue
                distance = -1.0
                for g in among:
                    if c2 > limits[g]:
                        continue
                    found[g].append((c2, key))
                    if distance < 0.0:
                        distance = _TWO_R * math.asin(min(1.0, math.sqrt(c2) * 0.5))
                        if distance > within_m:
                            break
                    setoff, per_metre = costs[g]
                    cost = setoff + distance * per_metre
                    if len(lowest) < k:
                        heapq.heappush(lowest, -cost)
                        if len(lowest) < k:
                            continue
                    elif cost < -lowest[0]:
                        heapq.heapreplace(lowest, -cost)
                    else:
                        continue
                    limits = _cost_limits(-lowest[0] * (1.0 + slack), costs, radius_limit)
                    widest = max(limits)
            reach[0] = widest
        return [
            _in_metres([(-c2, key) for c2, key in hits if c2 <= limit], radius_m)
            for hits, limit in zip(found, limits, strict=True)
        ]

    def _members(self, any_tags: int, groups: Sequence[int]) -> dict[int, tuple[int, ...]]:
        """For a grouped query, tags -> the groups a point with them belongs to; kept across queries, as the
        same few questions come back (forgotten past a few dozen kinds)."""
        question = (any_tags, tuple(groups))
        members = self._memberships.get(question)
        if members is None:
            if len(self._memberships) >= _MEMBERSHIPS:
                self._memberships.clear()
            members = self._memberships[question] = {}
        return members

    def _walk(self, lat: float, lon: float, reach: list[float]) -> Iterator[dict[str, Point]]:
        """The occupied cells that may hold a point within the squared chord ``reach[0]`` of the query, ring by
        ring outward and nearest first within a ring (see the module docstring).

        The caller lowers ``reach[0]`` as its heap fills, between cells; a cell whose bound is beyond it ends
        its ring, and the walk ends once nothing unseen can be within it.
        """
        deg = self._deg
        row0 = math.floor(lat / deg)
        col0 = math.floor(lon / deg)
        cos_phi = math.cos(math.radians(lat))
        n_cols = self._col_max - self._col_min + 1
        step = max(1, min(n_cols, round(1.0 / max(cos_phi, 1e-12))))
        ring = 0
        inner: Box | None = None
        while True:
            box = self._box(row0, col0, ring, step)
            ring_cells, everything = self._ring_cells(lat, lon, cos_phi, box, inner)
            for cell_bound, cell in ring_cells:
                if cell_bound > reach[0]:
                    break
                yield cell
            if everything:
                return
            bound = self._unseen_bound(lat, lon, cos_phi, box)
            if bound == math.inf or _chord2(max(0.0, bound * (1.0 - _SLACK) - 1e-6)) > reach[0]:
                return
            inner = box
            ring += 1

    def _box(self, row0: int, col0: int, ring: int, step: int) -> Box:
        """Rows bottom..top and columns west..east of the box of ``ring``, clamped to the globe."""
        return (
            max(row0 - ring, self._row_min),
            min(row0 + ring, self._row_max),
            max(col0 - ring * step, self._col_min),
            min(col0 + ring * step, self._col_max),
        )

    def _ring_cells(
        self, lat: float, lon: float, cos_phi: float, box: Box, inner: Box | None
    ) -> tuple[list[tuple[float, dict[str, Point]]], bool]:
        """The occupied cells of one ring, nearest first, each with a lower bound on its squared chord.

        A ring is its box minus the previous ring's box. When the ring has more cells than the index has
        occupied cells (a huge radius, or a query near a pole), probing them one by one would cost more than
        walking the occupied cells, so those outside the previous box are returned instead (bound 0) and the
        second value, True, says that the walk is complete.
        """
        cells = self._cells
        bottom, top, west, east = box
        if inner is None:
            own = cells.get(bottom * _ROW + west)
            return ([] if own is None else [(0.0, own)]), False
        spans: list[tuple[int, int, int]] = []
        n_cells = 0
        for row in range(bottom, top + 1):
            if not inner[0] <= row <= inner[1]:
                spans.append((row, west, east))
                n_cells += east - west + 1
                continue
            if west < inner[2]:
                spans.append((row, west, inner[2] - 1))
                n_cells += inner[2] - west
            if inner[3] < east:
                spans.append((row, inner[3] + 1, east))
                n_cells += east - inner[3]
        if n_cells > len(cells):
            outside: list[tuple[float, dict[str, Point]]] = []
            for cell_id, points in cells.items():
                row, col = divmod(cell_id + _ROW // 2, _ROW)
                col -= _ROW // 2
                if not (inner[0] <= row <= inner[1] and inner[2] <= col <= inner[3]):
                    outside.append((0.0, points))
            return outside, True

        # The haversine term sin²(dφ/2) + cos φ1 cos φ2 sin²(dλ/2) is at least each part at its minimum
        # over the cell: the nearest row edge, the nearest column edge, the row edge nearest a pole.
        deg = self._deg
        found: list[tuple[float, dict[str, Point]]] = []
        col_terms: dict[int, float] = {}
        for row, first, last in spans:
            base = row * _ROW
            row_terms: tuple[float, float] | None = None
            for col in range(first, last + 1):
                cell = cells.get(base + col)
                if cell is None:
                    continue
                if row_terms is None:
                    row_terms = _row_terms(lat, cos_phi, row * deg, deg)
                col_term = col_terms.get(col)
                if col_term is None:
                    col_term = col_terms[col] = _col_term(lon, col * deg, deg)
                found.append((_BOUND_SCALE * (row_terms[0] + row_terms[1] * col_term), cell))
        found.sort(key=_first)
        return found, False

    def _unseen_bound(self, lat: float, lon: float, cos_phi: float, box: Box) -> float:
        """A lower bound in metres on the distance from the query to any cell outside ``box``."""
        deg = self._deg
        bottom, top, west, east = box
        bound = math.inf
        if top < self._row_max:
            bound = min(bound, ((top + 1) * deg - lat) * _M_PER_DEG)
        if bottom > self._row_min:
            bound = min(bound, (lat - bottom * deg) * _M_PER_DEG)
        if east < self._col_max:
            bound = min(bound, _meridian_m((east + 1) * deg - lon, cos_phi))
        if west > self._col_min:
            bound = min(bound, _meridian_m(lon - west * deg, cos_phi))
        return max(bound, 0.0)


def _unit(lat: float, lon: float) -> tuple[float, float, float]:
    """The unit vector of a position on the sphere."""
    phi = math.radians(lat)
    lam = math.radians(lon)
    cos_phi = math.cos(phi)
    return cos_phi * math.cos(lam), cos_phi * math.sin(lam), math.sin(phi)


def _groups_of(tags: int, any_tags: int, groups: Sequence[int]) -> tuple[int, ...]:
    """The indexes of the groups a point with these tags belongs to (none without a bit of ``any_tags``)."""
    if any_tags and not tags & any_tags:
        return ()
    return tuple(g for g, group in enumerate(groups) if tags & group == group)


def _cost_limits(most: float, costs: Sequence[Cost], radius_limit: float) -> list[float]:
    """For each group, the squared chord within which a point costs at most ``most`` (and the radius allows),
    widened by the bounds' slack so that rounding never leaves one out; below 0 when none can."""
    limits = []
    for setoff, per_metre in costs:
        if most < setoff:
            limits.append(-1.0)
        elif per_metre <= 0.0:
            limits.append(radius_limit)
        else:
            metres = (most - setoff) / per_metre
            limits.append(min(radius_limit, _chord2(metres * (1.0 + _SLACK) + ON_THE_EDGE_M)))
    return limits


def _in_metres(best: list[tuple[float, str]], radius_m: float) -> list[tuple[str, float]]:
    """A heap of ``(-chord², key)`` as ``(key, haversine metres)`` within the radius, by distance then key."""
    result: list[tuple[str, float]] = []
    for negative_c2, key in best:
        # The haversine of the distance is a quarter of the squared chord: a = c² / 4.
        distance = _TWO_R * math.asin(min(1.0, math.sqrt(-negative_c2) * 0.5))
        if distance <= radius_m + ON_THE_EDGE_M:
            result.append((key, distance))
    result.sort(key=_distance_then_key)
    return result


def _first(item: tuple[float, dict[str, Point]]) -> float:
    return item[0]


def _distance_then_key(hit: tuple[str, float]) -> tuple[float, str]:
    return hit[1], hit[0]


def _row_terms(lat: float, cos_phi: float, south: float, deg: float) -> tuple[float, float]:
    """For the row of cells from latitude ``south``: sin²(dφ/2) at its nearest edge, cos φ1 · min cos φ2."""
    north = south + deg
    dphi = south - lat if south > lat else (lat - north if lat > north else 0.0)
    poleward = north if north + south > 0.0 else south
    cos_min = math.cos(math.radians(poleward)) if -90.0 < poleward < 90.0 else 0.0
    return math.sin(math.radians(dphi) * 0.5) ** 2, cos_phi * cos_min


def _col_term(lon: float, west: float, deg: float) -> float:
    """For the column of cells from longitude ``west``: sin²(dλ/2) at its nearest edge (0 beyond 90°)."""
    east = west + deg
    dlam = west - lon if west > lon else (lon - east if lon > east else 0.0)
    return math.sin(math.radians(dlam) * 0.5) ** 2 if dlam < 90.0 else 0.0


def _meridian_m(dlon_deg: float, cos_phi: float) -> float:
    """Great-circle distance from a point at latitude acos(cos_phi) to a meridian ``dlon_deg`` away."""
    dlam = math.radians(min(max(dlon_deg, 0.0), 90.0))
    return EARTH_RADIUS_M * math.asin(min(1.0, math.sin(dlam) * cos_phi))


class GeoIndex(Protocol):
    """The geo index seen by the dispatch core; async so a networked backend (Redis) can implement it."""

    async def upsert(self, key: str, lat: float, lon: float, tags: int = 0) -> None: ...

    async def remove(self, key: str) -> None: ...

    async def get(self, key: str) -> tuple[float, float, int] | None: ...

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
    ) -> list[tuple[str, float]]: ...

    async def nearest_groups(
        self,
        lat: float,
        lon: float,
        *,
        k: int,
        radius_m: float,
        any_tags: int = 0,
        groups: Sequence[int],
        exclude: Collection[str] = (),
    ) -> list[list[tuple[str, float]]]:
        """For each tag group, what ``nearest(..., all_tags=group)`` returns. This default asks once per group;
        a backend that names ``GeoIndex`` as a base inherits it, one that can answer in one pass overrides it."""
        return [
            await self.nearest(lat, lon, k=k, radius_m=radius_m, any_tags=any_tags, exclude=exclude, all_tags=group)
            for group in groups
        ]

    async def soonest_groups(
        self,
        lat: float,
        lon: float,
        *,
        k: int,
        radius_m: float,
        any_tags: int = 0,
        groups: Sequence[int],
        costs: Sequence[Cost],
        slack: float = 0.0,
        exclude: Collection[str] = (),
    ) -> list[list[tuple[str, float]]]:
        """At least what ``GridIndex.soonest_groups`` returns, each group nearest first. This default asks
        :meth:`nearest_groups` for twice ``k`` of each group, and again for twice as many while a group's last
        could still be within the limit."""
        return await soonest_by_nearest(
            self, lat, lon, k=k, radius_m=radius_m, any_tags=any_tags, groups=groups, costs=costs, slack=slack,
            exclude=exclude,
        )  # fmt: skip

    def __len__(self) -> int: ...


async def soonest_by_nearest(
    index: GeoIndex,
    lat: float,
    lon: float,
    *,
    k: int,
    radius_m: float,
    any_tags: int = 0,
    groups: Sequence[int],
    costs: Sequence[Cost],
    slack: float = 0.0,
    exclude: Collection[str] = (),
) -> list[list[tuple[str, float]]]:
    """``soonest_groups`` from ``nearest_groups`` alone, for a backend that cannot walk by cost: the ``2k``
    nearest of each group, then twice as many while a group's last is within the limit (a crowd at one spot)."""
    each = 2 * k
    while True:
        by_group = await index.nearest_groups(
            lat, lon, k=each, radius_m=radius_m, any_tags=any_tags, groups=groups, exclude=exclude
        )
        spent = sorted(
            setoff + d * per_metre for (setoff, per_metre), hits in zip(costs, by_group, strict=True) for _, d in hits
        )
        if k <= 0 or not spent:
            return by_group
        most = spent[min(k, len(spent)) - 1] * (1.0 + slack) * (1.0 + _SLACK)
        if not any(
            len(hits) == each and setoff + hits[-1][1] * per_metre <= most
            for (setoff, per_metre), hits in zip(costs, by_group, strict=True)
        ):
            return by_group
        each *= 2


class MemoryGeoIndex:
    """The embedded backend: :class:`GridIndex` instances in this process, one per partition.

    ``partition_mask`` names tag bits that split the points into separate grids (the engine passes the
    travel-mode bits), so a query for "nearest cyclists with nursing" scans only cyclists' cells instead of
    skipping walkers and drivers one by one. With a mask of 0 there is one grid.
    """

    def __init__(self, cell_m: float = 500.0, *, partition_mask: int = 0) -> None:
        self._cell_m = cell_m
        self._mask = partition_mask
        self._grids: dict[int, GridIndex] = {}
        self._partition: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._partition)

    def members(self) -> Collection[str]:
        return self._partition.keys()

    def _grid(self, part: int) -> GridIndex:
        grid = self._grids.get(part)
        if grid is None:
            grid = self._grids[part] = GridIndex(self._cell_m)
        return grid

    async def upsert(self, key: str, lat: float, lon: float, tags: int = 0) -> None:
        part = tags & self._mask
        old = self._partition.get(key)
        if old is not None and old != part:
            self._grids[old].remove(key)
        self._grid(part).upsert(key, lat, lon, tags)
        self._partition[key] = part

    async def remove(self, key: str) -> None:
        part = self._partition.pop(key, None)
        if part is not None:
            self._grids[part].remove(key)

    async def get(self, key: str) -> tuple[float, float, int] | None:
        part = self._partition.get(key)
        return None if part is None else self._grids[part].get(key)

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
        wanted = all_tags & self._mask
        grids = [grid for part, grid in self._grids.items() if part & wanted == wanted]
        hits: list[tuple[str, float]] = []
        for grid in grids:
            hits += grid.nearest(
                lat, lon, k=k, radius_m=radius_m, any_tags=any_tags, exclude=exclude, all_tags=all_tags
            )
        if len(grids) > 1:
            hits.sort(key=_distance_then_key)
        return hits[:k]

    async def nearest_groups(
        self,
        lat: float,
        lon: float,
        *,
        k: int,
        radius_m: float,
        any_tags: int = 0,
        groups: Sequence[int],
        exclude: Collection[str] = (),
    ) -> list[list[tuple[str, float]]]:
        """One walk of the grid when it is one; with partitions, each group's :meth:`nearest`, which walks only
        the grids of the group's partitions (the travel partitions give each travel mode its own)."""
        if self._mask:
            return [
                await self.nearest(lat, lon, k=k, radius_m=radius_m, any_tags=any_tags, exclude=exclude, all_tags=group)
                for group in groups
            ]
        grid = self._grids.get(0)
        if grid is None:
            return [[] for _ in groups]
        return grid.nearest_groups(lat, lon, k=k, radius_m=radius_m, any_tags=any_tags, groups=groups, exclude=exclude)

    async def soonest_groups(
        self,
        lat: float,
        lon: float,
        *,
        k: int,
        radius_m: float,
        any_tags: int = 0,
        groups: Sequence[int],
        costs: Sequence[Cost],
        slack: float = 0.0,
        exclude: Collection[str] = (),
    ) -> list[list[tuple[str, float]]]:
        """One walk by cost when the grid is one; with partitions, by :meth:`nearest_groups`."""
        grid = self._grids.get(0)
        if self._mask or grid is None:
            return await soonest_by_nearest(
                self, lat, lon, k=k, radius_m=radius_m, any_tags=any_tags, groups=groups, costs=costs,
                slack=slack, exclude=exclude,
            )  # fmt: skip
        return grid.soonest_groups(
            lat, lon, k=k, radius_m=radius_m, any_tags=any_tags, groups=groups, costs=costs, slack=slack,
            exclude=exclude,
        )  # fmt: skip
