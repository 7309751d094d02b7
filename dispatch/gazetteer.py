"""The gazetteer: an offline geocoder over the registry's own places.

Theory of operation
-------------------
Where a caller says they are ("幸福路12号3栋", "湖前社区") is turned into a point without asking anyone: the
registry already knows where its elders live, so every place it names has a point, the centroid of the
elders there. :class:`Gazetteer` keeps these places and answers through geopy's geocoder interface
(``geocode(query, exactly_one=True)`` returning :class:`geopy.location.Location`), so an online geocoder
(geopy's Nominatim, Baidu, ...) can be configured in its place without touching the callers.

The places, from each elder (most specific first):

    ===========  =====================================  ==========================================
    kind         name                                   example
    ===========  =====================================  ==========================================
    address      the elder's address                    幸福路12号3栋2单元501
    building     the address up to its building         幸福路12号3栋 (…号楼, …栋, …幢, …座)
    road_number  the address up to its first number     幸福路12号 (not …号楼, which is a building)
    community    the community path                     鼓楼区/华大街道/湖前社区
    street       the street (街道) path                 鼓楼区/华大街道
    district     the district (区)                      鼓楼区
    ===========  =====================================  ==========================================

A community is also found by "华大街道湖前社区" and "湖前社区", a street by "华大街道" (its *aliases*).

Rules
-----
1. Text is compared NFKC-normalised (full-width digits to ASCII) without white space or ``/``, so the
   path "鼓楼区/华大街道/湖前社区" and "鼓楼区 华大街道 湖前社区" are the same query.
2. Order: an exact match, then a name that starts with the query, then one that contains it; then the
   closest name (fewest characters beyond the query: "蓝田社区12号楼" is the building, not one of its
   flats); then the most specific kind; then the name.
3. ``Location.raw`` is ``{"kind": ..., "elders": n, "match": "exact" | "prefix" | "substring"}``; the point
   is the mean latitude and longitude of the place's ``n`` elders (fine over a few kilometres).
4. ``geocode`` returns ``None`` when nothing matches, also with ``exactly_one=False`` (then at most
   ``limit`` places, 50 by default), as geopy's geocoders do.

The aliases are a :class:`~dispatch.search.TextColumn` in rule-2 order (with the positions of every pair
of characters), so the first places a lookup meets are the best and it stops there: about 10 µs for an
exact or prefix match among the 230 000 places of 100 000 elders, under a millisecond for a part of a name.

Updates work as in :mod:`dispatch.search`: ``put`` updates the places' points and counts at once; a place
new since the last build is compared one by one, a place left without elders is skipped, and past
``max_pending`` (:data:`~dispatch.search.MAX_PENDING`) of those the next ``geocode`` rebuilds the index.

Never
-----
Never do network I/O: the geopy adapter is one that refuses to (:class:`OfflineAdapter`), so even a call of
geopy's HTTP helpers fails at once instead of reaching out. ``geocode`` is synchronous and returns values.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable
from typing import Any, Literal, overload

from geopy.adapters import BaseSyncAdapter
from geopy.exc import GeocoderServiceError
from geopy.geocoders.base import Geocoder
from geopy.location import Location

from dispatch.registry import Elder
from dispatch.search import MAX_PENDING, How, TextColumn, normalise_text

PlaceKind = Literal["address", "building", "road_number", "community", "street", "district"]
KINDS: tuple[PlaceKind, ...] = ("address", "building", "road_number", "community", "street", "district")
"""Most specific first."""
_SPECIFIC = {kind: rank for rank, kind in enumerate(KINDS)}
_MATCHES: tuple[How, ...] = ("exact", "prefix", "substring")
_MAX_ALIASES = 3

# The address up to its last building: one or more digits or letters, then 号楼 / 栋 / 幢 / 座.
_BUILDING = re.compile(r".*[0-9A-Za-z]+(?:号楼|栋|幢|座)")
# The address up to its first house number: digits then 号, unless 楼 follows (12号楼 is a building).
_ROAD_NUMBER = re.compile(r".*?[0-9]+号(?!楼)")

PlaceKey = tuple[PlaceKind, str]


def normalise_place(text: str) -> str:
    """Rule 1: the form names and queries are compared in."""
    return normalise_text(text).replace("/", "")


def places_of(elder: Elder) -> list[PlaceKey]:
    """The places an elder belongs to, most specific first, each once."""
    address = normalise_place(elder.address)
    places: list[PlaceKey] = [("address", address)]
    building = _BUILDING.match(address)
    if building is not None and building.group() != address:
        places.append(("building", building.group()))
    road = _ROAD_NUMBER.match(address)
    if road is not None and road.group() not in (address, building.group() if building else None):
        places.append(("road_number", road.group()))
    district, street, _ = elder.community.split("/")
    places.append(("community", elder.community))
    places.append(("street", f"{district}/{street}"))
    places.append(("district", district))
    return places


def aliases_of(kind: PlaceKind, label: str) -> tuple[str, ...]:
    """The names a place is found by: its label, and for a community or street the shorter paths too."""
    if kind == "community":
        district, street, community = label.split("/")
        names: tuple[str, ...] = (district + street + community, street + community, community)
    elif kind == "street":
        district, street = label.split("/")
        names = (district + street, street)
    else:
        return (normalise_place(label),) if kind == "district" else (label,)  # an address is normalised already
    return tuple(dict.fromkeys(normalise_place(name) for name in names))


def _order(alias: str, key: PlaceKey) -> str:
    """Rule 2 after the match, as one string: the alias's length, the kind's specificity, the alias, the label."""
    return f"{len(alias):04d}{_SPECIFIC[key[0]]}{alias}\x00{key[1]}"


class OfflineAdapter(BaseSyncAdapter):  # type: ignore[misc]
    """A geopy adapter that makes no request: the gazetteer must never reach the network."""

    def get_json(self, url: str, *, timeout: float | None, headers: dict[str, str]) -> Any:
        raise GeocoderServiceError(f"the gazetteer is offline; refused to fetch {url}")

    def get_text(self, url: str, *, timeout: float | None, headers: dict[str, str]) -> str:
        raise GeocoderServiceError(f"the gazetteer is offline; refused to fetch {url}")


class _Index:
    """Every alias of the places at the last build, as a column in rank order (rule 2 after the match);
    ``place_of[rank]`` is the alias's place id (ids ``0 .. len(keys) - 1`` are the index's places)."""

    def __init__(self, keys: list[PlaceKey]) -> None:
        rows = sorted((_order(alias, key), alias, pid) for pid, key in enumerate(keys) for alias in aliases_of(*key))
        self.place_of = array("i", [pid for _, _, pid in rows])
        self.column = TextColumn(range(len(rows)), [alias for _, alias, _ in rows], gram=2)


class _Dead:
    """The aliases (ranks) of the index whose place has no elder now, for the column to skip."""

    __slots__ = ("place_of", "places")

    def __init__(self, place_of: array[int]) -> None:
        self.place_of = place_of
        self.places: set[int] = set()

    def __contains__(self, rank: object) -> bool:
        return isinstance(rank, int) and self.place_of[rank] in self.places


class Gazetteer(Geocoder):  # type: ignore[misc]
    """An offline geocoder over the places of the registered elders (see the module's theory of operation).

    A place is an id into arrays of the sums of its elders' latitudes and longitudes and of their number,
    so 100 000 elders' places cost no Python object each beyond their key.
    """

    def __init__(self, *, max_pending: int = MAX_PENDING) -> None:
        super().__init__(adapter_factory=OfflineAdapter)
        self.max_pending = max_pending
        self._ids: dict[PlaceKey, int] = {}  # the places with elders, and the index's places without
        self._keys: list[PlaceKey] = []  # place id → key
        self._lat = array("d")  # place id → sum of its elders' latitudes
        self._lon = array("d")
        self._elders = array("i")  # place id → number of elders
        self._homes: dict[str, Elder] = {}  # elder id → the record its places were counted from
        self._index = _Index([])
        self._indexed = 0  # place ids below this are the index's
        self._dead = _Dead(self._index.place_of)
        self._fresh: dict[int, tuple[str, ...]] = {}  # places with elders not in the index → their aliases

    @classmethod
    def of(cls, elders: Iterable[Elder]) -> Gazetteer:
        """A gazetteer of these elders' places, built now."""
        gazetteer = cls()
        for elder in elders:
            gazetteer.put(elder)
        gazetteer.refresh()
        return gazetteer

    def __len__(self) -> int:
        """The number of places that have elders."""
        return sum(1 for pid in self._ids.values() if self._elders[pid])

    def put(self, elder: Elder) -> None:
        """Add an elder or replace its record: its old places lose it, its new ones gain it."""
        old = self._homes.get(elder.elder_id)
        self._homes[elder.elder_id] = elder
        if old is not None:
            if _home(old) == _home(elder):
                return
            self._move(old, -1)
        self._move(elder, +1)

    def remove(self, elder_id: str) -> None:
        """Forget an elder (nothing happens for an unknown id)."""
        old = self._homes.pop(elder_id, None)
        if old is not None:
            self._move(old, -1)

    def _move(self, elder: Elder, sign: int) -> None:
        indexed = self._indexed
        for key in places_of(elder):
            pid = self._ids.get(key)
            if pid is None:
                pid = self._ids[key] = len(self._keys)
                self._keys.append(key)
                self._lat.append(0.0)
                self._lon.append(0.0)
                self._elders.append(0)
            count = self._elders[pid] = self._elders[pid] + sign
            if count:
                self._lat[pid] += sign * elder.lat
                self._lon[pid] += sign * elder.lon
                if count == 1 and sign > 0:  # a place that had no elder
                    if pid < indexed:
                        self._dead.places.discard(pid)
                    else:
                        self._fresh[pid] = aliases_of(*key)
            else:
                self._lat[pid] = self._lon[pid] = 0.0
                if pid < indexed:
                    self._dead.places.add(pid)
                else:  # gone before it was ever indexed: its id is left unused until the next build
                    del self._ids[key]
                    del self._fresh[pid]

    def refresh(self) -> None:
        """Rebuild the index now if places came or went (``geocode`` does it past ``max_pending`` of them)."""
        if not (self._fresh or self._dead.places):
            return
        live = [(key, pid) for key, pid in self._ids.items() if self._elders[pid]]
        self._keys = [key for key, _ in live]
        self._ids = {key: pid for pid, key in enumerate(self._keys)}
        self._lat = array("d", [self._lat[pid] for _, pid in live])
        self._lon = array("d", [self._lon[pid] for _, pid in live])
        self._elders = array("i", [self._elders[pid] for _, pid in live])
        self._index = _Index(self._keys)
        self._indexed = len(self._keys)
        self._dead = _Dead(self._index.place_of)
        self._fresh.clear()

    @overload
    def geocode(
        self, query: str, *, exactly_one: Literal[True] = ..., timeout: float | None = ..., limit: int = ...
    ) -> Location | None: ...

    @overload
    def geocode(
        self, query: str, *, exactly_one: Literal[False], timeout: float | None = ..., limit: int = ...
    ) -> list[Location] | None: ...

    def geocode(
        self, query: str, *, exactly_one: bool = True, timeout: float | None = None, limit: int = 50
    ) -> Location | list[Location] | None:
        """The place best matching ``query`` (rule 2), or up to ``limit`` of them best first with
        ``exactly_one=False``; ``None`` when nothing matches. ``timeout`` is accepted for geopy's interface
        and has nothing to bound: no request is made."""
        q = normalise_place(query)
        want = 1 if exactly_one else limit
        if not q or want <= 0:
            return None
        if max(len(self._fresh), len(self._dead.places)) > self.max_pending:
            self.refresh()
        found = self._fresh_matches(q)
        column, place_of = self._index.column, self._index.place_of
        skip = self._dead if self._dead.places else ()
        for match, how in enumerate(_MATCHES):
            if sum(1 for best in found.values() if best[0] < match) >= want:
                break  # rule 2: no weaker match can overtake these
            for rank in column.find(how, q, want * _MAX_ALIASES, skip):
                pid = place_of[rank]
                order = (match, _order(column.value(rank), self._keys[pid]))
                if pid not in found or order < found[pid]:
                    found[pid] = order
        best = sorted(found, key=found.__getitem__)[:want]
        locations = [self._location(pid, _MATCHES[found[pid][0]]) for pid in best]
        if not locations:
            return None
        return locations[0] if exactly_one else locations

    def _fresh_matches(self, q: str) -> dict[int, tuple[int, str]]:
        found: dict[int, tuple[int, str]] = {}
        for pid, aliases in self._fresh.items():
            for alias in aliases:
                if q in alias:
                    order = (0 if alias == q else 1 if alias.startswith(q) else 2, _order(alias, self._keys[pid]))
                    if pid not in found or order < found[pid]:
                        found[pid] = order
        return found

    def _location(self, pid: int, match: How) -> Location:
        kind, label = self._keys[pid]
        count = self._elders[pid]
        point = (self._lat[pid] / count, self._lon[pid] / count)
        return Location(label, point, {"kind": kind, "elders": count, "match": match})


def _home(elder: Elder) -> tuple[str, str, float, float]:
    """What of an elder's record its places depend on."""
    return (elder.address, elder.community, elder.lat, elder.lon)
