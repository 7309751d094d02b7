"""Shared fixtures: a real SQLite data folder, a manual clock, a small city to dispatch in."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from dispatch.clock import ManualClock
from dispatch.commands import AlarmRequest, CallEvent
from dispatch.core import Core, open_core, open_registry
from dispatch.devices import DeviceReport
from dispatch.engine import Engine
from dispatch.registry import Device, Elder, Responder
from dispatch.settings import Settings
from dispatch.state import Call, Incident

COMMUNITY = "龙文区/蓝田街道/蓝田社区"
CENTRE = (24.5100, 117.7000)


def elder(elder_id: str = "e1", **fields: object) -> Elder:
    base: dict[str, object] = {
        "elder_id": elder_id,
        "name": "王秀英",
        "phone": "13505960001",
        "address": "龙文区蓝田街道蓝田社区1号楼101室",
        "lat": CENTRE[0],
        "lon": CENTRE[1],
        "community": COMMUNITY,
        "birth_date": "1950-03-01",
    }
    base.update(fields)
    return Elder.model_validate(base)


def responder(responder_id: str, lat: float, lon: float, **fields: object) -> Responder:
    base: dict[str, object] = {
        "responder_id": responder_id,
        "name": f"护理员{responder_id}",
        "kind": "caregiver",
        "skills": ["life_care", "nursing"],
        "lat": lat,
        "lon": lon,
        "phone": "13800000000",
        "community": COMMUNITY,
        "travel": "walk",
    }
    base.update(fields)
    return Responder.model_validate(base)


NO_DEVICE_PORTS = {"dc09": None, "watch": None, "gt06": None}


def settings_for(data: Path, **overrides: object) -> Settings:
    fields: dict[str, object] = {"device_ports": NO_DEVICE_PORTS}
    fields.update(overrides)
    return Settings(data=data, admin_password="test-admin-pw", **fields)  # type: ignore[arg-type]


async def seed(
    settings: Settings,
    *,
    elders: list[Elder] = (),  # type: ignore[assignment]
    responders: list[Responder] = (),  # type: ignore[assignment]
    devices: list[Device] = (),  # type: ignore[assignment]
) -> None:
    settings.data.mkdir(parents=True, exist_ok=True)
    db, registry = await open_registry(settings)
    try:
        await registry.upsert_responders(list(responders))
        await registry.upsert_elders(list(elders))
        await registry.upsert_devices(list(devices))
    finally:
        await db.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def core(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Core]:
    """A core on a real SQLite file, a manual clock and a little city: one elder, four caregivers."""
    settings = settings_for(tmp_path / "data")
    await seed(
        settings,
        elders=[
            elder("e1"),
            elder("e2", name="李桂兰", phone="13505960002", caregiver_id="c_own", lat=24.52, lon=117.71),
        ],
        responders=[
            responder("c_near", 24.5110, 117.7000),  # ~110 m
            responder("c_mid", 24.5140, 117.7000),  # ~440 m
            responder("c_far", 24.5200, 117.7000),  # ~1.1 km
            responder("c_own", 24.5300, 117.7100, skills=["life_care"]),  # 1.1 km from e2
            responder("c_comfort", 24.5101, 117.7000, skills=["comfort"]),  # nearest, wrong skill
            responder("k1", 24.5000, 117.7000, kind="clinic", skills=[], hours="24h", green_channel=True),
        ],
        devices=[
            Device(device_id="1234", protocol="sia-dc09", elder_id="e1", checkin_s=600),
            Device(device_id="8800000015", protocol="watch", elder_id="e2", checkin_s=300),
        ],
    )
    opened = await open_core(settings, clock, protocols=("sia-dc09", "watch", "gt06"))
    opened.intake.start()  # the timers stay in the test's hands: it calls engine.tick() on its manual clock
    yield opened
    await opened.close()


def engine_of(core: Core) -> Engine:
    """The engine itself: the core's tests look inside (the outer packages see only its commands)."""
    return core._engine


async def on_duty(core: Core, *responder_ids: str) -> None:
    for rid in responder_ids:
        profile = engine_of(core).directory.responders[rid]
        await core.engine.set_duty(rid, True, actor=f"caregiver:{rid}", lat=profile.lat, lon=profile.lon)


async def raise_alarm(
    core: Core, alarm_type: str, *, actor: str, source: str, **fields: object
) -> tuple[Incident, bool]:
    """An alarm through the intake, as the API raises it; the incident it opened or joined, and whether it joined."""
    opened = await core.intake.alarm(AlarmRequest(alarm_type, actor, source, **fields))  # type: ignore[arg-type]
    await settled(core)
    return engine_of(core).state.incidents[opened.incident_id], opened.attached


async def settled(core: Core) -> None:
    """Until what the intake's last item set going is durable: the first offers of an incident it opened follow the
    opening's acknowledgement (dispatch.intake rule 6)."""
    await eventually(lambda: not engine_of(core).waiting_offers, "the first offers of the incidents just opened")
    await core.journal.durable(core.journal.head_seq)


async def hotline(core: Core, event: str, **fields: object) -> tuple[Call, Incident | None]:
    """A call event through the intake; the call and the incident it is linked to (if any)."""
    outcome = await core.intake.call(CallEvent(event, **fields))  # type: ignore[arg-type]
    state = engine_of(core).state
    return state.calls[outcome.call_id], state.incidents.get(outcome.incident_id or "")


async def report(core: Core, *reports: DeviceReport) -> None:
    """Device reports through the intake, as a transport hands them over; returns once durable, with the first
    offers of an incident they opened."""
    await core.intake.devices(reports)
    await settled(core)


async def eventually(check: Callable[[], bool], what: str = "", within: float = 15.0) -> None:
    """Wait, on the event loop, for what a part under test must come to: a hang guard of ``within`` seconds, not
    a timing assertion."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not within {within:g} s: {what}"
        await asyncio.sleep(0.005)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_program(name: str) -> str:
    """The path of an external program; skip loudly when missing, but fail under CI=true."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed: this test needs the real program"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
