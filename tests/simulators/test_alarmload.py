"""The alarm load generator: the consoles' string search finds what JSON parsing finds, and a run against the
floor server reports screens, closes and stalled consoles."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch.entries import Unrecognised
from dispatch.journal import Entry
from simulators import alarmload
from simulators.alarmload import opened_devices, parsed_devices
from tests.conftest import free_port


def wire(seq: int, kind: str, payload: dict[str, object]) -> str:
    """An entry as a console receives it (dispatch.journal ``Entry.wire``)."""
    body = json.dumps(payload, separators=(",", ":"))
    fact = Unrecognised(kind=kind, version=1, body=body)
    return Entry(seq, 1.0, kind, "gateway", "INC-1", False, body, "", "", fact).wire()


BATCH = [
    wire(1, "incident.opened", {"device_id": "D1", "alarm_type": "sos"}),
    wire(2, "incident.ranked", {"device_id": "D9"}),
    wire(3, "incident.opened", {"alarm_type": "fall", "device_id": "D2"}),
]


@pytest.mark.parametrize(
    "frame",
    [
        "[" + ",".join(BATCH) + "]",
        json.dumps({"type": "entry", "kind": "incident.opened", "payload": {"device_id": "D3"}}),  # the floor's
        wire(4, "note.added", {"text": "incident.opened", "device_id": "D4"}),
        '[{"type": "status", "storage": {"state": "full"}}]',
    ],
)
def test_the_string_search_finds_the_devices_json_finds(frame: str) -> None:
    assert opened_devices(frame) == list(parsed_devices(frame))


def test_an_opened_entry_without_a_device_is_left_to_json() -> None:
    frame = "[" + ",".join([wire(1, "incident.opened", {"device_id": None}), wire(2, "x", {"device_id": "D9"})]) + "]"
    assert opened_devices(frame) is None
    assert list(parsed_devices(frame)) == []


@pytest.fixture
def floor() -> Iterator[dict[str, int]]:
    ports = {"dc09": free_port(), "http": free_port()}
    command = [sys.executable, "-m", "bench.floor_server", "--protocol", "dc09", "--port", str(ports["dc09"]),
               "--http-port", str(ports["http"])]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        server.stdout.readline()
        yield ports
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(10)
        assert server.stdout is not None
        server.stdout.close()


def test_a_run_counts_every_alarm_on_every_screen_and_the_stalled_console_apart(
    floor: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("\n".join(f"{n:06d}" for n in range(100)) + "\n")
    alarmload.main(["--url", f"http://127.0.0.1:{floor['http']}", "--dc09-port", str(floor["dc09"]),
                    "--accounts", str(accounts), "--rate", "50", "--seconds", "1", "--connections", "2",
                    "--consoles", "2", "--stalled-consoles", "1"])  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["alarms_sent"] == result["alarms_acked"] == result["alarms_on_every_screen"] > 0
    assert result["on_every_screen_share"] == 1.0
    assert (result["consoles_cut_lagging"], result["consoles_cut_other"], result["console_close_codes"]) == (0, 0, [])
    assert result["stalled_consoles"] == 1 and result["stalled_cut"] == [False]  # the floor cuts nobody


def test_the_first_console_times_each_alarms_first_offer_once() -> None:
    timings = alarmload.Timings(sent_at={"D1": 1_000, "D2": 2_000})
    opened = [
        json.loads(wire(1, "incident.opened", {"incident_id": "INC-1", "device_id": "D1"})),
        json.loads(wire(2, "incident.opened", {"incident_id": "INC-2", "device_id": "D2"})),
    ]
    for entry in opened:
        entry["incident_id"] = None  # an opening names its incident in the payload only
    offer = json.loads(wire(3, "offer.made", {"responder_id": "c1"}))  # of INC-1 (the envelope's incident)
    alarmload.first_offers(json.dumps([*opened, offer]), timings, 5_000)
    alarmload.first_offers(json.dumps(offer), timings, 9_000)  # its second offer: the first is what is timed
    assert timings.offer_ns == [4_000] and timings.opened_for == {"INC-2": "D2"}
