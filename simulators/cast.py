"""A drill's cast: which devices report (registered as drill devices) and which caregivers are on which shift.

What it owns
    Turning a scenario and what the server holds (elders, responders) into :class:`DeviceSpec` values and
    :class:`CaregiverSim` phones, and registering them over the API: ``PUT /api/devices/{id}`` with
    ``"drill": true`` (so everything a drill device reports is journaled with the drill mark) and a
    caregiver account per phone (``POST /api/accounts``).

Rules
    1. Against the embedded server the devices are the seeded city's own (their ids and AES keys from
       ``devices.csv``), re-registered as drill devices. Against a running server the drill registers
       devices of its own, bound to registered elders, with ids no real device has the shape of
       (``DRL…`` DC-09 accounts, ``DRW…`` watches, ``990…`` IMEIs), the same ids on every run.
    2. A device's check-in interval is registered in wall seconds (drill interval / speed-up, rounded
       up), because the server supervises check-ins on the wall clock.
    3. One ``random.Random(seed)`` draws the cast, in a fixed order.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from simulators.api import Refused, call_api
from simulators.caregivers import CaregiverSim
from simulators.devices import DeviceSpec, read_city_devices
from simulators.scenario import Scenario, Shift
from simulators.scripts import Elder

PROTOCOLS = ("sia-dc09", "watch", "gt06")
PROTOCOL_WEIGHTS = (50.0, 30.0, 20.0)
CHECKIN_S = {"sia-dc09": 3600.0, "watch": 600.0, "gt06": 600.0}
REGISTER_CONCURRENCY = 16


def city_devices(devices_csv: Path, scenario: Scenario, rng: random.Random) -> list[DeviceSpec]:
    """The seeded city's devices (rule 1), the first ``devices.count`` of them."""
    d = scenario.devices
    specs = read_city_devices(devices_csv, rng=rng, limit=d.count, udp_share=d.udp_share)
    if d.checkin_every is not None:
        specs = [replace(spec, checkin_s=d.checkin_every) for spec in specs]
    return specs


def drill_devices(elders: Sequence[Elder], scenario: Scenario, rng: random.Random) -> list[DeviceSpec]:
    """Devices of the drill's own for registered elders (rule 1)."""
    chosen = rng.sample(list(elders), min(len(elders), scenario.devices.count))
    specs = []
    for index, elder in enumerate(chosen):
        protocol = rng.choices(PROTOCOLS, weights=PROTOCOL_WEIGHTS)[0]
        device_id = {"sia-dc09": f"DRL{index:06d}", "watch": f"DRW{index:07d}", "gt06": f"990{index:012d}"}[protocol]
        key = (
            f"{rng.getrandbits(128):032X}"
            if protocol == "sia-dc09" and rng.random() < scenario.devices.encrypted_share
            else None
        )
        specs.append(_spec(device_id, protocol, elder, CHECKIN_S[protocol], key, scenario, rng))
    return specs


def _spec(
    device_id: str,
    protocol: str,
    elder: Elder,
    checkin_s: float,
    key: str | None,
    scenario: Scenario,
    rng: random.Random,
) -> DeviceSpec:
    dc09 = protocol == "sia-dc09"
    return DeviceSpec(
        device_id=device_id,
        protocol=protocol,
        elder_id=str(elder["elder_id"]),
        home=(float(elder["lat"]), float(elder["lon"])),
        checkin_s=scenario.devices.checkin_every or checkin_s,
        aes_key=key,
        udp=dc09 and rng.random() < scenario.devices.udp_share,
        sia=dc09 and rng.random() < 0.5,
    )


async def register_devices(
    client: httpx.AsyncClient, specs: Sequence[DeviceSpec], speedup: float, stop: asyncio.Event
) -> None:
    """``PUT /api/devices/{id}`` each device as a drill device (rule 2), a few at a time."""
    gate = asyncio.Semaphore(REGISTER_CONCURRENCY)

    async def one(spec: DeviceSpec) -> None:
        body = {
            "device_id": spec.device_id, "protocol": spec.protocol, "elder_id": spec.elder_id,
            "aes_key": spec.aes_key or "", "checkin_s": max(1, math.ceil(spec.checkin_s / speedup)), "drill": True,
        }  # fmt: skip
        async with gate:
            await call_api(client, "PUT", f"/api/devices/{spec.device_id}", stop=stop, body=body)

    await asyncio.gather(*(one(spec) for spec in specs))


async def retire_devices(client: httpx.AsyncClient, specs: Sequence[DeviceSpec], stop: asyncio.Event) -> None:
    """Before a drill against a running server ends: a week's check-in interval, so its silence raises nothing.

    Called while the devices still report, so that the server re-arms each one's check-in deadline with it.
    """
    gate = asyncio.Semaphore(REGISTER_CONCURRENCY)

    async def one(spec: DeviceSpec) -> None:
        body = {"device_id": spec.device_id, "protocol": spec.protocol, "elder_id": spec.elder_id,
                "aes_key": spec.aes_key or "", "checkin_s": 7 * 86400, "drill": True}  # fmt: skip
        async with gate:
            with contextlib.suppress(Refused):
                await call_api(client, "PUT", f"/api/devices/{spec.device_id}", stop=stop, body=body)

    await asyncio.gather(*(one(spec) for spec in specs))


# -- caregivers -------------------------------------------------------------------------------------------


def shift_plan(responders: Sequence[dict[str, Any]], scenario: Scenario, rng: random.Random) -> list[dict[str, Any]]:
    """Who works which shift: distinct people per shift, drawn from the caregivers and volunteers."""
    people = sorted((r for r in responders if r["kind"] != "clinic"), key=lambda r: str(r["responder_id"]))
    rng.shuffle(people)
    plan, taken = [], 0
    for shift in scenario.caregivers.shifts:
        members = people[taken : taken + shift.count]
        taken += len(members)
        no_shows = set(rng.sample(range(len(members)), round(scenario.caregivers.no_show_share * len(members))))
        plan += [{"responder": m, "shift": shift, "no_show": i in no_shows} for i, m in enumerate(members)]
    return plan


async def make_phones(
    client: httpx.AsyncClient,
    base_url: str,
    plan: Sequence[dict[str, Any]],
    scenario: Scenario,
    *,
    rng: random.Random,
    stop: asyncio.Event,
) -> list[tuple[CaregiverSim, Shift]]:
    """A caregiver account (this run's own) and a simulated phone for everyone on a shift (see :func:`on_shift`)."""
    suffix = secrets.token_hex(2)
    cg, s = scenario.caregivers, scenario.speedup
    phones = []
    for item in plan:
        rid = str(item["responder"]["responder_id"])
        username, password = f"drill-{rid}-{suffix}", secrets.token_urlsafe(12)
        body = {"username": username, "password": password, "role": "caregiver", "responder_id": rid}
        await call_api(client, "POST", "/api/accounts", stop=stop, body=body)
        phone = CaregiverSim(
            username, password, base_url, rng=random.Random(rng.getrandbits(64)),
            accept_p=cg.accept_p, silent_p=1.0 if item["no_show"] else cg.pocket_p, speedup=s,
            answer_s=(cg.answer.low / s, cg.answer.high / s), leave_s=(cg.leave.low, cg.leave.high),
            care_s=(cg.care.low, cg.care.high), position_every_s=cg.position_every / s,
        )  # fmt: skip
        phones.append((phone, item["shift"]))
    return phones


def on_shift(phones: Sequence[tuple[CaregiverSim, Shift]], scenario: Scenario, t0: float) -> list[CaregiverSim]:
    """Put each phone on its shift, in wall-clock time from the drill's start ``t0``.

    A shift that starts with the drill begins now, so that its phones are on duty when the traffic starts.
    """
    s = scenario.speedup
    end_of_drill = t0 + (scenario.duration + scenario.drain) / s
    for phone, shift in phones:
        start = t0 + shift.start / s if shift.start > 0 else time.time()
        end = t0 + shift.end / s if shift.end is not None else end_of_drill + 3600.0
        phone.shift = (start, end)
    return [phone for phone, _ in phones]
