"""A new device protocol is one module and one test file: this file is both.

``TINY`` below is a whole protocol (a line per message, ``ID,SOS`` or ``ID,PING``, answered ``ACK ID``).
Registered, it is served on its own port by a real server, gets its CLI flag and settings key, its devices
import from CSV, and it appears in the docs, with no other file of the project touched.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from anxin.cli import build_parser, settings_from
from anxin.server import listeners, running
from dispatch.clock import SystemClock
from dispatch.errors import ConfigError
from dispatch.importer import import_files
from dispatch.journal import connect
from dispatch.registry import Device
from dispatch.scopes import ALL
from dispatch.store import SqliteRegistry
from gateway import registry
from gateway.events import Decoded, DeviceEvent
from gateway.registry import CodeTable, ProtocolSpec, keyless
from tests.conftest import elder, seed, settings_for


class TinyCodec:
    """Sans-I/O: bytes in, one result per complete line out; garbage is answered with nothing."""

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self._buffer = b""

    @property
    def buffered(self) -> int:  # a line begun: the gateway's partial-frame deadline runs
        return len(self._buffer)

    def receive_data(self, data: bytes, now: float) -> list[Decoded]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return [self._line(line.decode("ascii", "replace").strip()) for line in lines]

    def _line(self, line: str) -> Decoded:
        device_id, _, what = line.partition(",")
        if what == "SOS":
            event = DeviceEvent("tiny", device_id, "alarm", "TINY:SOS", alarm_type="sos")
        elif what == "PING":
            event = DeviceEvent("tiny", device_id, "checkin", "TINY:PING")
        else:
            self.counters["garbage"] += 1
            return Decoded(error="garbage")
        self.counters["ok"] += 1
        return Decoded(events=(event,), reply=f"ACK {device_id}\n".encode())


TINY = ProtocolSpec(
    name="tiny",
    option="tiny",
    default_port=9199,
    summary="a protocol of the tests",
    stream=keyless(TinyCodec),
    codes=(CodeTable("Tiny", "message", {}),),
)


@pytest.fixture
def tiny() -> Iterator[ProtocolSpec]:
    registry.register(TINY)
    yield TINY
    registry.unregister(TINY.name)


def test_the_built_in_protocols_are_found_without_a_list() -> None:
    specs = registry.protocols()
    assert list(specs)[:3] == ["sia-dc09", "watch", "gt06"]
    assert [s.transports for s in list(specs.values())[:3]] == [("tcp", "udp"), ("tcp",), ("tcp",)]


def test_it_gets_its_flag_setting_and_docs(tiny: ProtocolSpec, tmp_path: Path) -> None:
    args = build_parser().parse_args(["serve", "--data", str(tmp_path), "--tiny-port", "19999", "--dc09-port", "off"])
    settings = settings_from(args)
    assert settings.device_ports == {"tiny": 19999, "dc09": None}
    assert [(item.spec.name, item.port) for item in listeners(settings)] == [
        ("watch", 9101),
        ("gt06", 9102),
        ("tiny", 19999),
    ]
    assert "| `tiny` | `--tiny-port`, `ANXIN_TINY_PORT` | 9199 | TCP | a protocol of the tests |" in registry.document()
    drill = build_parser().parse_args(["drill", "normal-day", "--url", "http://127.0.0.1:8000", "--tiny-port", "7"])
    assert (drill.tiny_port, drill.dc09_port) == ("7", None)  # what the drill's device fleet reads


def test_a_port_for_a_protocol_nobody_knows_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown device protocol option tiny"):
        listeners(settings_for(tmp_path, device_ports={"tiny": 1}))


def test_a_clash_of_options_is_refused() -> None:
    clash = ProtocolSpec("dc09-copy", "dc09", 9100, "a copy", keyless(TinyCodec))
    with pytest.raises(registry.UsageError):
        registry.register(clash)


async def test_its_devices_import_from_csv(tiny: ProtocolSpec, tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data")
    await seed(settings, elders=[elder("e1")])
    csv = tmp_path / "devices.csv"
    csv.write_text("device_id,protocol,elder_id,aes_key,checkin_s\nT1,tiny,e1,,600\nT2,nope,e1,,600\n")
    db = await connect(settings.db_path)
    try:
        report = await import_files(
            SqliteRegistry(db), elders=None, devices=csv, responders=None, protocols=registry.protocols()
        )
    finally:
        await db.close()
    assert report.devices.added == 1
    assert [e.reason for e in report.errors] == [
        "protocol: unknown device protocol nope (this server does not speak it)"
    ]


async def test_a_real_server_serves_it(tiny: ProtocolSpec, tmp_path: Path) -> None:
    off = {"dc09": None, "watch": None, "gt06": None}
    settings = settings_for(tmp_path / "data", device_ports={**off, "tiny": 0}, gateway_host="127.0.0.1")
    await seed(settings, elders=[elder("e1")], devices=[Device(device_id="T1", protocol="tiny", elder_id="e1")])
    async with running(settings, SystemClock()) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.gateway.ports["tiny"])
        writer.write(b"T1,PING\nT1,SO")  # a check-in, and half an alarm
        assert await asyncio.wait_for(reader.readline(), 5) == b"ACK T1\n"
        writer.write(b"S\n")
        assert await asyncio.wait_for(reader.readline(), 5) == b"ACK T1\n"
        writer.close()
        (incident,) = server.core.views.incidents(ALL, open_only=True)
        assert (incident["device_id"], incident["elder_id"], incident["alarm_type"]) == ("T1", "e1", "sos")
        journal = server.core.journal
        (opening,) = [e for e in await journal.read(0, 100) if e.kind == "incident.opened"]
        assert opening.seq <= journal.durable_seq  # acknowledged after durable (its offers follow: intake rule 6)
