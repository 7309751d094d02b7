"""The demo: the seeded city's own devices, driven on the ports the settings give."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from anxin.demo import device_fleet
from dispatch.settings import Settings
from simulators import city


def test_the_demo_drives_the_seeded_citys_own_devices(tmp_path: Path) -> None:
    city.generate(tmp_path / "seed", seed=2, elders=40, caregivers=6, clinics=1)
    settings = Settings(data=tmp_path, device_ports={"dc09": 19100, "watch": 19101, "gt06": None})
    fleet = device_fleet(settings, alarms_per_min=4.0)  # the devices' share of the demo's rate
    assert fleet is not None
    with (tmp_path / "seed" / "devices.csv").open(encoding="utf-8") as handle:
        seeded = {row["device_id"]: row for row in csv.DictReader(handle) if row["protocol"] != "gt06"}
    specs = {d.spec.device_id: d.spec for d in fleet.devices}
    assert specs.keys() == seeded.keys()  # GT06 is off: its devices stay quiet
    assert all(
        (s.aes_key or "") == seeded[i]["aes_key"] and s.checkin_s == float(seeded[i]["checkin_s"])
        for i, s in specs.items()
    )
    assert fleet.behaviour.speedup == 1.0 and sum(fleet.plan.rates.values()) == pytest.approx(4.0 * 60)
    off = Settings(data=tmp_path, device_ports={"dc09": None, "watch": None, "gt06": None})
    assert device_fleet(off, alarms_per_min=6.0) is None


def test_the_simulated_operator_leaves_a_stable_manageable_share_to_the_people() -> None:
    from anxin.demo import CALLS_LEFT_FOR_PEOPLE, LEFT_FOR_PEOPLE
    from simulators.bot import left_for_people

    ids = [f"INC-{n}" for n in range(3000)]
    left = [i for i in ids if left_for_people(i, LEFT_FOR_PEOPLE)]
    assert 0.02 < len(left) / len(ids) < 0.05  # at ~7.5 incidents a minute: one every 4 to 5 minutes
    assert left == [i for i in ids if left_for_people(i, LEFT_FOR_PEOPLE)]  # the same ones after a restart
    assert not any(left_for_people(i, 0.0) for i in ids)
    calls = [f"sim5-1700000000-{n}" for n in range(3000)]
    assert 0.4 < sum(left_for_people(c, CALLS_LEFT_FOR_PEOPLE) for c in calls) / len(calls) < 0.6
