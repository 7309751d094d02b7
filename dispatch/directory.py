"""The directory: the registry held in memory for the hot path.

The registry store (SQLite) is the durable copy; the directory is what the engine reads while deciding:
elders by id and by phone number (to pop a caller's record), devices by id, responders by id. It is loaded
once at start and kept in step by the engine, the only writer while the server runs.
"""

from __future__ import annotations

from dispatch.registry import Device, Elder, Responder, normalise_phone
from dispatch.store import RegistryStore


class Directory:
    def __init__(self) -> None:
        self.elders: dict[str, Elder] = {}
        self.devices: dict[str, Device] = {}
        self.responders: dict[str, Responder] = {}
        self.elder_by_phone: dict[str, str] = {}

    @classmethod
    async def load(cls, store: RegistryStore) -> Directory:
        directory = cls()
        for responder in await store.responders():
            directory.put_responder(responder)
        for elder in await store.elders():
            directory.put_elder(elder)
        for device in await store.devices():
            directory.put_device(device)
        return directory

    def put_elder(self, elder: Elder) -> None:
        old = self.elders.get(elder.elder_id)
        if old is not None and old.phone:
            self.elder_by_phone.pop(normalise_phone(old.phone), None)
        self.elders[elder.elder_id] = elder
        if elder.phone:
            self.elder_by_phone[normalise_phone(elder.phone)] = elder.elder_id

    def put_device(self, device: Device) -> None:
        self.devices[device.device_id] = device

    def put_responder(self, responder: Responder) -> None:
        self.responders[responder.responder_id] = responder

    def elder_for_phone(self, phone: str) -> Elder | None:
        elder_id = self.elder_by_phone.get(normalise_phone(phone))
        return self.elders.get(elder_id) if elder_id else None
