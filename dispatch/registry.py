"""The registry: elders, devices, responders and clinics, and the district / street / community tree.

These pydantic models are the one definition of a valid record. The HTTP API and the CSV importer both
validate through them, so a bad latitude is refused with the same words wherever it comes from.

A responder is a caregiver or volunteer (skills, travel mode) or a clinic (opening hours, green channel).
``community`` is always the three-level path ``district/street/community`` (区/街道/社区).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dispatch.identity import ResidentIdError, parse_resident_id

Skill = Literal["life_care", "nursing", "medical", "comfort"]
Travel = Literal["walk", "bike", "car"]
ResponderKind = Literal["caregiver", "volunteer", "clinic"]
#: a device protocol's name in the gateway's registry (which names exist is the gateway's knowledge)
DeviceProtocol = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
RiskFlag = Literal["living_alone", "empty_nest", "three_nos", "low_income", "disabled"]
Entitlement = Literal["free", "low_cost", "paid"]
#: with whom the elder lives (the needs assessment's living situation; "alone" is also the risk flag living_alone)
LivesWith = Literal["alone", "spouse", "children", "relatives", "carer", "others"]

SKILLS: tuple[Skill, ...] = ("life_care", "nursing", "medical", "comfort")
SKILL_BITS: dict[str, int] = {skill: 1 << i for i, skill in enumerate(SKILLS)}

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Latitude = Annotated[float, Field(ge=-90.0, le=90.0)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0)]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9][0-9 -]{2,24}$")]


#: travel modes as tag bits above the skills, so the geo index can ask "nearest cars with nursing"
TRAVEL_BITS: dict[str, int] = {travel: 1 << (8 + i) for i, travel in enumerate(("walk", "bike", "car"))}
TRAVEL_MASK = sum(TRAVEL_BITS.values())


def responder_tags(skills: Sequence[str], travel: str) -> int:
    """The geo index tags of a responder: their skills and their travel mode."""
    return skills_mask(skills) | TRAVEL_BITS[travel]


def skills_mask(skills: Sequence[str]) -> int:
    mask = 0
    for skill in skills:
        mask |= SKILL_BITS[skill]
    return mask


def normalise_phone(phone: str) -> str:
    """Digits only, without a leading +86 country code: the form phone numbers are matched on."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Contact(Record):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    phone: Phone
    relation: Annotated[str, Field(max_length=32)] = ""
    #: they hold a family account and answer alarms on the phone page (/m): when no caregiver or volunteer is
    #: free, they are offered the alarm in calling order; otherwise they are told by SMS (dispatch.family)
    app: bool = False


class Elder(Record):
    elder_id: Ident
    name: Annotated[str, Field(min_length=1, max_length=64)]
    phone: Phone | None = None
    address: Annotated[str, Field(min_length=1, max_length=200)]
    lat: Latitude
    lon: Longitude
    community: str
    birth_date: date | None = None
    risk_flags: list[RiskFlag] = []
    care_level: Annotated[int, Field(ge=0, le=5)] | None = None
    medical_notes: Annotated[str, Field(max_length=2000)] = ""
    contacts: list[Contact] = []
    caregiver_id: Ident | None = None
    entitlement: Entitlement | None = None
    access: Annotated[str, Field(max_length=500)] = ""  # how to get in: door code, who holds a key
    #: the 18-character resident identity number (公民身份号码), optional; kept in its normal written form
    resident_id: str | None = None
    lives_with: LivesWith | None = None
    #: False once the elder left the centre's care (moved away, died, entered a care home): the file is kept and
    #: readable, but nothing is matched to them any more (their phone, their devices, the search)
    active: bool = True

    @field_validator("community")
    @classmethod
    def _community_path(cls, value: str) -> str:
        return check_community(value)

    @field_validator("resident_id")
    @classmethod
    def _resident_id(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            return parse_resident_id(value).number
        except ResidentIdError as error:
            raise ValueError(f"resident_id: {error}") from None


class Device(Record):
    device_id: Ident
    protocol: DeviceProtocol
    elder_id: Ident
    aes_key: str | None = None
    checkin_s: Annotated[int, Field(gt=0, le=7 * 86400)] = 3600
    drill: bool = False  # a simulated device: everything it reports is journaled as drill

    @field_validator("aes_key")
    @classmethod
    def _aes_key(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise ValueError("aes_key must be hex") from None
        if len(raw) not in (16, 24, 32):
            raise ValueError("aes_key must be 128, 192 or 256 bits (32, 48 or 64 hex digits)")
        return value.upper()


class Responder(Record):
    responder_id: Ident
    name: Annotated[str, Field(min_length=1, max_length=64)]
    kind: ResponderKind
    skills: list[Skill] = []
    lat: Latitude
    lon: Longitude
    phone: Phone | None = None
    community: str
    travel: Travel = "walk"
    hours: str | None = None
    green_channel: bool = False
    #: who employs them: the centre ("centre") or a contracted service organisation of the service catalogue
    #: (dispatch.services), whose items only its own staff are assigned
    provider: Ident = "centre"
    #: a volunteer or neighbour who opted in (结对帮扶, 邻里互助): asked, from their registered home, when nobody on
    #: duty is free, even while off duty (dispatch.family)
    on_call: bool = False

    @field_validator("community")
    @classmethod
    def _community_path(cls, value: str) -> str:
        return check_community(value)

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parse_hours(value)
        return value

    @model_validator(mode="after")
    def _kind_rules(self) -> Responder:
        if self.kind != "clinic" and not self.skills:
            raise ValueError("a caregiver or volunteer needs at least one skill")
        return self


def check_community(value: str) -> str:
    parts = [part.strip() for part in value.split("/")]
    if len(parts) != 3 or not all(parts):
        raise ValueError("community must be the path district/street/community")
    return "/".join(parts)


def street_of(community: str) -> str:
    """The street (街道) a community path lies in, as a path: ``district/street``."""
    return community.rpartition("/")[0]


def parse_hours(value: str) -> tuple[int, int]:
    """Opening hours ``24h`` or ``HH:MM-HH:MM`` (may cross midnight) as minutes of the day [start, end)."""
    if value.strip().lower() == "24h":
        return (0, 24 * 60)
    try:
        start, end = value.split("-")
        return (_minutes(start), _minutes(end))
    except ValueError:
        raise ValueError("hours must be 24h or HH:MM-HH:MM") from None


def _minutes(hhmm: str) -> int:
    hh, mm = hhmm.strip().split(":")
    h, m = int(hh), int(mm)
    if not (0 <= h <= 24 and 0 <= m < 60) or h * 60 + m > 24 * 60:
        raise ValueError(hhmm)
    return h * 60 + m


def open_at(hours: str | None, minute_of_day: int) -> bool:
    """Whether a clinic with these hours is open at this local minute of the day. No hours: always open."""
    if hours is None:
        return True
    start, end = parse_hours(hours)
    if start <= end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end
