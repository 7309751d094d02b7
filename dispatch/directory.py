"""The directory: the registry held in memory for the hot path.

The registry store (SQLite) is the durable copy; the directory is what the engine reads while deciding:
elders by id and by phone number (to pop a caller's record), family contacts by phone number (a daughter
calling about her mother), devices by id, responders by id. It is loaded
once at start and kept in step by the engine, the only writer while the server runs.
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
        self.elder_by_phone: dict[str, str] = {}
        #: a contact's phone → the elders whose contact list holds it
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
            if old.phone:
                self.elder_by_phone.pop(normalise_phone(old.phone), None)
            for contact in old.contacts:
                known = self.elders_by_contact_phone.get(normalise_phone(contact.phone))
                if known is not None:
                    known.discard(elder.elder_id)
                    if not known:
                        del self.elders_by_contact_phone[normalise_phone(contact.phone)]
        if old is not None:
            self._count_point(old.community, old.lat, old.lon, -1)
        self._count_point(elder.community, elder.lat, elder.lon, 1)
        self.elders[elder.elder_id] = elder
        if elder.phone:
            self.elder_by_phone[normalise_phone(elder.phone)] = elder.elder_id
        for contact in elder.contacts:
            self.elders_by_contact_phone.setdefault(normalise_phone(contact.phone), set()).add(elder.elder_id)
        self.search.put(elder)
        self.places.put(elder)
        self._identity(elder)

    def _identity(self, elder: Elder) -> None:
        """The identity index holds the elders in care; one who left (or was merged into another) is no longer
        matched by phone, contact phone or search either."""
        if elder.active:
            self.duplicates.put(person_of(elder))
            return
        self.duplicates.remove(elder.elder_id)
        if elder.phone and self.elder_by_phone.get(normalise_phone(elder.phone)) == elder.elder_id:
            del self.elder_by_phone[normalise_phone(elder.phone)]
        for contact in elder.contacts:
            known = self.elders_by_contact_phone.get(normalise_phone(contact.phone))
            if known is not None:
                known.discard(elder.elder_id)
                if not known:
                    del self.elders_by_contact_phone[normalise_phone(contact.phone)]
        self.search.remove(elder.elder_id)

    def put_device(self, device: Device) -> None:
        self.devices[device.device_id] = device

    def put_responder(self, responder: Responder) -> None:
        old = self.responders.get(responder.responder_id)
        if old is not None:
            self._count_point(old.community, old.lat, old.lon, -1)
        self._count_point(responder.community, responder.lat, responder.lon, 1)
        self.responders[responder.responder_id] = responder

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

    def elder_for_phone(self, phone: str) -> Elder | None:
        elder_id = self.elder_by_phone.get(normalise_phone(phone))
        return self.elders.get(elder_id) if elder_id else None

    def elder_for_contact(self, phone: str) -> Elder | None:
        """The elder a family contact calling from this phone is about (the first by id when several)."""
        elder_ids = self.elders_by_contact_phone.get(normalise_phone(phone))
        return self.elders[min(elder_ids)] if elder_ids else None

    def contact_for_phone(self, phone: str) -> dict[str, str] | None:
        """A family contact calling: their name and relation, and the elder they are a contact of (the first by
        id when they are several elders' contact)."""
        digits = normalise_phone(phone)
        elder_ids = self.elders_by_contact_phone.get(digits)
        if not elder_ids:
            return None
        elder = self.elders[min(elder_ids)]
        contact = next(c for c in elder.contacts if normalise_phone(c.phone) == digits)
        return {
            "name": contact.name,
            "relation": contact.relation,
            "elder_id": elder.elder_id,
            "elder_name": elder.name,
            "address": elder.address,
        }
