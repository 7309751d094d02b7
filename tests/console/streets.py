"""A city of two streets for the access tests: an elder, a caregiver and a watch in each, 5 km apart."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from dispatch.registry import Device, Elder
from dispatch.settings import Settings
from tests.conftest import elder, responder, seed
from tests.console.test_api import auth, token

STREET_A, STREET_B = "龙文区/蓝田街道", "龙文区/朝阳街道"
HOME_A, HOME_B = (24.5100, 117.7000), (24.5400, 117.7400)


def elder_a(**fields: Any) -> Elder:
    return elder("ea", lat=HOME_A[0], lon=HOME_A[1], community=f"{STREET_A}/蓝田社区", **fields)


def elder_b(**fields: Any) -> Elder:
    return elder("eb", name="朝阳老人", phone="13505960099", lat=HOME_B[0], lon=HOME_B[1],
                 address="龙文区朝阳街道朝阳社区9号", community=f"{STREET_B}/朝阳社区", **fields)  # fmt: skip


async def seed_two_streets(settings: Settings) -> None:
    await seed(
        settings,
        elders=[elder_a(), elder_b()],
        responders=[
            responder("ca", HOME_A[0] + 0.001, HOME_A[1], community=f"{STREET_A}/蓝田社区"),
            responder("cb", HOME_B[0] + 0.001, HOME_B[1], community=f"{STREET_B}/朝阳社区"),
        ],
        devices=[
            Device(device_id="8800000001", protocol="watch", elder_id="ea"),
            Device(device_id="8800000002", protocol="watch", elder_id="eb"),
        ],
    )


def person(client: TestClient, admin: str, username: str, role: str, scopes: list[str], **more: Any) -> str:
    """A person's account made by the admin, logged in: their token."""
    body = {"username": username, "name": username, "password": "password-123", "role": role, "scopes": scopes}
    response = client.post("/api/accounts", json={**body, **more}, headers=auth(admin))
    assert response.status_code == 201, response.text
    return token(client, username, "password-123")
