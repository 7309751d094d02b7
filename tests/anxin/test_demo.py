"""The demo: the seeded city's own devices, driven on the ports the settings give."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anxin.demo import device_fleet
from dispatch.settings import Settings
from simulators import city
from tests.conftest import free_port
from tests.process import ROOT, anxin


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


@pytest.mark.process
def test_the_demo_on_its_own_port_is_found_by_the_commands_that_ask_the_server(tmp_path: Path) -> None:
    """``anxin export`` (and ``import``) on a folder a demo holds ask the demo at its address, not the default's."""
    data = tmp_path / "data"
    port = free_port()
    ports = ["--dc09-port", "off", "--watch-port", "off", "--gt06-port", "off"]
    command = [sys.executable, "-m", "anxin", "demo", "--data", str(data), "--http-port", str(port), *ports]
    with (tmp_path / "demo.log").open("wb") as log:
        demo = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        for _ in range(600):
            if (data / "server.url").is_file() or demo.poll() is not None:
                break
            time.sleep(0.1)
        assert (data / "server.url").read_text(encoding="utf-8").strip() == f"http://127.0.0.1:{port}"
        asked = anxin("export", "--period", "2026-11", "--data", str(data), env={"ANXIN_API_KEY": ""})
        assert asked.returncode == 2
        assert f"a server (http://127.0.0.1:{port}) holds the data folder: set ANXIN_API_KEY" in asked.stderr
        for _ in range(600):  # the banner names every page and login, the reports and the engineer's routes too
            if "Stop with Ctrl-C" in (banner := (tmp_path / "demo.log").read_text(encoding="utf-8")):
                break
            time.sleep(0.1)
        assert f"http://127.0.0.1:{port}/reports     supervisor / anxin-demo" in banner
        assert f"http://127.0.0.1:{port}/readyz" in banner and f"http://127.0.0.1:{port}/metrics" in banner
    finally:
        demo.terminate()
        demo.wait(30)
