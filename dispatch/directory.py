"""The directory: the registry held in memory for the hot path.

The registry store (SQLite) is the durable copy; the directory is what the engine reads while deciding:
elders by id and by phone number (to pop a caller's record), family contacts by phone number (a daughter
calling about her mother), devices by id, responders by id. It is loaded
once at start and kept in step by the engine, the only writer while the server runs.
"""

from __future__ import annotations

import asyncio

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
        self.elders[elder.elder_id] = elder
        if elder.phone:
            self.elder_by_phone[normalise_phone(elder.phone)] = elder.elder_id
        for contact in elder.contacts:
            self.elders_by_contact_phone.setdefault(normalise_phone(contact.phone), set()).add(elder.elder_id)
        self.search.put(elder)
        self.places.put(elder)

    def put_device(self, device: Device) -> None:
        self.devices[device.device_id] = device

    def put_responder(self, responder: Responder) -> None:
        self.responders[responder.responder_id] = responder

    def elder_for_phone(self, phone: str) -> Elder | None:
        elder_id = self.elder_by_phone.get(normalise_phone(phone))
        return self.elders.get(elder_id) if elder_id else None

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
