"""The messages a caregiver's phone may send on ``/ws/caregiver``, validated by pydantic."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from dispatch.registry import Latitude, Longitude


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: int | str | None = None


class Reply(_Message):
    type: Literal["accept", "decline"]
    assignment_id: str
    reason: str = Field("", max_length=500)


class Status(_Message):
    type: Literal["status"]
    assignment_id: str
    status: Literal["en_route", "on_scene", "done"]
    note: str = Field("", max_length=1000)


class Position(_Message):
    type: Literal["position"]
    lat: Latitude
    lon: Longitude


class Duty(_Message):
    type: Literal["duty"]
    on: bool
    lat: Latitude | None = None
    lon: Longitude | None = None


class PhoneCommand(BaseModel):
    message: Annotated[Reply | Status | Position | Duty, Field(discriminator="type")]
