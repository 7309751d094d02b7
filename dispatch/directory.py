"""The directory: the registry held in memory for the hot path.

The registry store (SQLite) is the durable copy; the directory is what the engine reads while deciding:
elders by id and by phone number (to pop a caller's record), family contacts by phone number (a daughter
calling about her mother), devices by id, responders by id. It is loaded
once at start and kept in step by the engine, the only writer while the server runs.

Phones
    A phone number belongs to a set of elders, not to one: a couple, or a mother and her sister, share one
    landline (dispatch.identity rule 3: a household, not a duplicate), and a daughter is the family contact
    of both her parents. :meth:`Directory.household` and :meth:`Directory.contact_elders` give every elder a
    number reaches, in id order, and the hotline offers them all (the operator picks whom the call is about).
    Only elders still in the centre's care (``Elder.active``) are reached by phone. Each index is kept right
    by :meth:`Directory.put_elder` alone: the record's old numbers leave it before its new ones enter, so an
    edit, a move to another phone, a deactivation or the same record put again leaves every other elder of
    the number where they were.
"""

from __future__ import annotations

import asyncio
import math

from dispatch.duplicates import DuplicateIndex, person_of
from dispatch.gazetteer import Gazetteer
from dispatch.registry import Device, Elder, Responder, normalise_phone
from dispatch.search import ElderSearch
from dispatch.store import RegistryStore


class Directory:
    def __init__(self) -> None:
        self.elders: dict[str, Elder] = {}
        self.devices: dict[str, Device] = {}
        self.responders: dict[str, Responder] = {}
        #: the volunteers on call (``on_call``), asked when the circle finds nobody: a city's 100,000 responders
        #: walked for a handful of them cost each such alarm 70 ms
        self.on_call: dict[str, Responder] = {}
        #: a phone → the active elders whose own phone it is (several: a household on one landline)
        self.elders_by_phone: dict[str, set[str]] = {}
        #: a contact's phone → the active elders whose contact list holds it
        self.elders_by_contact_phone: dict[str, set[str]] = {}
        #: the operator's "find the caller" index and the offline gazetteer, both kept in step with the elders
        self.search = ElderSearch()
        self.places = Gazetteer()
        #: the elders in care by what identity is judged by: who a new record is probably already (dispatch.duplicates)
        self.duplicates = DuplicateIndex()
        #: each community's registered points (elders' homes, responders' bases): sum of lat, sum of lon, count;
        #: their mean places a caller nobody knows in the nearest community (see dispatch.scopes)
        self._community_points: dict[str, list[float]] = {}
        #: the names of the centre's staff by account (the console's accounts tell them): who acknowledged, who
        #: wrote a note, as colleagues know them
        self.staff_names: dict[str, str] = {}

    @classmethod
    async def load(cls, store: RegistryStore) -> Directory:
        directory = cls()
        for responder in await store.responders():
            directory.put_responder(responder)
        for elder in await store.elders():
            directory.put_elder(elder)
        for device in await store.devices():
            directory.put_device(device)
        # build the search index and the gazetteer now (seconds for 100k elders), off the event loop: nothing
        # else uses them before load returns
        await asyncio.to_thread(directory.search.refresh)
        await asyncio.to_thread(directory.places.refresh)
        return directory

    def put_elder(self, elder: Elder) -> None:
        old = self.elders.get(elder.elder_id)
        if old is not None:
            self._index_phones(old, remove=True)
            self._count_point(old.community, old.lat, old.lon, -1)
        self._count_point(elder.community, elder.lat, elder.lon, 1)
        self.elders[elder.elder_id] = elder
        self._index_phones(elder, remove=False)
        self.search.put(elder)
        self.places.put(elder)
        self._identity(elder)

    def _identity(self, elder: Elder) -> None:
        """The identity index holds the elders in care; one who left (or was merged into another) is not judged a
        duplicate of anyone (the phone indexes leave them out too; the search keeps them, for the registry page's
        "who left" list, and the views leave them out by default)."""
        if elder.active:
            self.duplicates.put(person_of(elder))
        else:
            self.duplicates.remove(elder.elder_id)

    def _index_phones(self, elder: Elder, *, remove: bool) -> None:
        """Put an elder's own phone and their contacts' phones in the phone indexes, or take them out. An elder
        no longer in the centre's care is in neither."""
        if not elder.active:
            return
        own = [(self.elders_by_phone, elder.phone)] if elder.phone else []
        for index, phone in [*own, *((self.elders_by_contact_phone, c.phone) for c in elder.contacts)]:
            digits = normalise_phone(phone)
            if not remove:
                index.setdefault(digits, set()).add(elder.elder_id)
            elif (known := index.get(digits)) is not None:
                known.discard(elder.elder_id)
                if not known:
                    del index[digits]

    def put_device(self, device: Device) -> None:
        self.devices[device.device_id] = device

    def drop_device(self, device_id: str) -> Device | None:
        """A device unbound from its elder leaves the registry (dispatch.keeping); what it was, or None."""
        return self.devices.pop(device_id, None)

    def put_responder(self, responder: Responder) -> None:
        old = self.responders.get(responder.responder_id)
        if old is not None:
            self._count_point(old.community, old.lat, old.lon, -1)
        self._count_point(responder.community, responder.lat, responder.lon, 1)
        self.responders[responder.responder_id] = responder
        if responder.on_call:
            self.on_call[responder.responder_id] = responder
        else:
            self.on_call.pop(responder.responder_id, None)

    def _count_point(self, community: str, lat: float, lon: float, sign: int) -> None:
        sums = self._community_points.setdefault(community, [0.0, 0.0, 0])
        sums[0] += sign * lat
        sums[1] += sign * lon
        sums[2] += sign
        if sums[2] <= 0:
            del self._community_points[community]

    def street_centre(self, street: str) -> tuple[float, float] | None:
        """The mean of a street's registered points (``district/street``): where a street-wide incident is shown."""
        inside = f"{street}/"
        points = [sums for community, sums in self._community_points.items() if community.startswith(inside)]
        n = sum(p[2] for p in points)
        return (sum(p[0] for p in points) / n, sum(p[1] for p in points) / n) if n else None

    def community_at(self, lat: float, lon: float) -> str | None:
        """The registered community whose points lie nearest on average (None: nothing is registered)."""
        best, best_d = None, math.inf
        scale = math.cos(math.radians(lat))
        for community, (sum_lat, sum_lon, n) in self._community_points.items():
            d = (sum_lat / n - lat) ** 2 + ((sum_lon / n - lon) * scale) ** 2
            if d < best_d:
                best, best_d = community, d
        return best

    def household(self, phone: str) -> list[Elder]:
        """The active elders whose own phone this is, by id: one, or a household on a shared landline."""
        return [self.elders[i] for i in sorted(self.elders_by_phone.get(normalise_phone(phone), ()))]

    def contact_elders(self, phone: str) -> list[Elder]:
        """The active elders whose family contact has this phone, by id (a daughter of both her parents)."""
        return [self.elders[i] for i in sorted(self.elders_by_contact_phone.get(normalise_phone(phone), ()))]

    def elder_for_phone(self, phone: str) -> Elder | None:
        """One elder whose phone this is (the first by id of a household), for a caller that needs one; the
        hotline offers the whole :meth:`household`."""
        household = self.household(phone)
        return household[0] if household else None

    def elder_for_contact(self, phone: str) -> Elder | None:
        """The elder a family contact calling from this phone is about (the first by id when several)."""
        elders = self.contact_elders(phone)
        return elders[0] if elders else None

    def contact_for_phone(self, phone: str) -> dict[str, str] | None:
        """A family contact calling: their name and relation, and the elder they are a contact of (the first by
        id when they are several elders' contact)."""
        digits = normalise_phone(phone)
        elder = self.elder_for_contact(digits)
        if elder is None:
            return None
        contact = next(c for c in elder.contacts if normalise_phone(c.phone) == digits)
        return {
            "name": contact.name,
            "relation": contact.relation,
            "elder_id": elder.elder_id,
            "elder_name": elder.name,
            "address": elder.address,
        }
