"""Connection budgets of the device listeners: caps, allow-lists, idle and partial-frame deadlines, counted logs.

A real server core on a real SQLite file, real sockets on loopback (127.0.0.1 and 127.0.0.2 as two source
addresses), and a manual clock: the deadlines are the clock's, the sweep is called when the test says.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import pytest

from anxin.server import DescriptorPlan, Running, listeners, running
from dispatch.clock import ManualClock
from dispatch.errors import ConfigError
from dispatch.settings import Settings
from gateway.dc09 import build_message
from gateway.service import ACCEPT_BURST, ACCEPT_ERROR, MAX_DATAGRAMS_IN_FLIGHT, Budget, idle_default
from tests.conftest import NO_DEVICE_PORTS, settings_for

LK = b"[SG*8800000015*0002*LK]"  # a watch's link test, from an unregistered watch (answered or not: activity)
HALF = b"[SG*8800000015*0010*UD,22"  # the start of a position report that never ends


def with_budgets(tmp_path: Path, **budgets: dict[str, object]) -> Settings:
    ports = {**NO_DEVICE_PORTS, **dict.fromkeys(budgets, 0)}
    return settings_for(tmp_path / "data", device_ports=ports, device_budgets=budgets)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@asynccontextmanager
async def served(settings: Settings, clock: ManualClock) -> AsyncIterator[Running]:
    async with running(settings, clock) as server:
        server.gateway.sweep_every_s = 3600.0  # the test sweeps itself
        yield server


_writers: list[asyncio.StreamWriter] = []


async def connect(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    _writers.append(writer)
    return reader, writer


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _writers:
        _writers.pop().close()
    await asyncio.sleep(0)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for what the listener must come to (a wait, not a figure: two busy shared cores once took 5 s)."""
    deadline = time.monotonic() + 15
    while not condition():
        assert time.monotonic() < deadline, f"not within 15 s: {what}"
        await asyncio.sleep(0.01)


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server has closed the connection (what it wrote before, an ACK, is read past)."""
    with suppress(ConnectionResetError):
        await asyncio.wait_for(reader.read(), 5)
    return reader.at_eof() or reader.exception() is not None


async def test_caps_per_address_and_in_total_close_at_once_without_a_reply(tmp_path: Path, clock: ManualClock) -> None:
    settings = with_budgets(tmp_path, watch={"max_connections": 6, "max_per_address": 4})
    async with served(settings, clock) as server:
        gateway, port = server.gateway, server.gateway.ports["watch"]
        first = [await connect(port) for _ in range(4)]
        await until(lambda: len(gateway.connections) == 4, "four admitted")
        reader, _ = await connect(port)  # a fifth from the same address
        assert await closed_by_server(reader)
        assert gateway.counters["watch.over_address"] == 1
        others = [await connect(port, "127.0.0.2") for _ in range(2)]
        await until(lambda: len(gateway.connections) == 6, "six admitted")
        reader, _ = await connect(port, "127.0.0.2")  # a seventh: over the total
        assert await closed_by_server(reader)
        assert gateway.counters["watch.over_total"] == 1
        first[0][1].close()  # one leaves: its slot is free again
        await until(lambda: len(gateway.connections) == 5, "one gone")
        reader, writer = await connect(port, "127.0.0.2")
        writer.write(LK)
        await until(lambda: len(gateway.connections) == 6, "the freed slot taken")
        assert gateway.counters["watch.over_total"] == 1
        for _, w in [*first[1:], *others, (reader, writer)]:
            w.close()


async def test_the_allow_list_admits_its_networks_only_over_tcp_and_udp(tmp_path: Path, clock: ManualClock) -> None:
    allow = {"allow": ["127.0.0.2/32", "10.0.0.0/8"]}
    settings = with_budgets(tmp_path, watch=allow, dc09=allow)
    async with served(settings, clock) as server:
        gateway = server.gateway
        reader, _ = await connect(gateway.ports["watch"])
        assert await closed_by_server(reader)
        assert gateway.counters["watch.not_allowed"] == 1
        _, writer = await connect(gateway.ports["watch"], "127.0.0.2")
        await until(lambda: len(gateway.connections) == 1, "the listed address admitted")
        writer.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.sendto(
                build_message("NULL", 1, "1234", timestamp=time.time()), ("127.0.0.1", gateway.ports["sia-dc09"])
            )
            await until(lambda: gateway.counters["sia-dc09.not_allowed_datagrams"] == 1, "the datagram dropped")
    assert Budget(allow=()).allows("192.0.2.7")  # empty: everyone
    listed = listeners(settings)[0].budget
    assert listed.allows("::ffff:10.1.2.3") and not listed.allows("::1") and not listed.allows("not an address")


async def test_a_silent_connection_is_dropped_after_its_idle_time_on_the_clock(
    tmp_path: Path, clock: ManualClock
) -> None:
    settings = with_budgets(tmp_path, watch={"idle_s": 100})
    async with served(settings, clock) as server:
        gateway = server.gateway
        quiet_reader, _ = await connect(gateway.ports["watch"])
        talking_reader, talking = await connect(gateway.ports["watch"])
        await until(lambda: len(gateway.connections) == 2, "both admitted")
        clock.advance(60)
        talking.write(LK)  # a byte resets its idle clock
        await until(lambda: any(c.last_byte == clock.now() for c in gateway.connections), "the byte read")
        assert gateway.sweep() == 0
        clock.advance(40)  # the quiet one: 100 s without a byte
        assert gateway.sweep() == 1
        assert await closed_by_server(quiet_reader)
        clock.advance(59)
        assert gateway.sweep() == 0  # the talking one: 99 s since its last byte
        clock.advance(1)
        assert gateway.sweep() == 1
        assert await closed_by_server(talking_reader)
        assert gateway.counters["watch.idle_dropped"] == 2
        await until(lambda: not gateway.connections, "both gone")


async def test_a_frame_begun_and_not_finished_in_time_drops_the_connection(tmp_path: Path, clock: ManualClock) -> None:
    settings = with_budgets(tmp_path, watch={"partial_s": 30, "idle_s": 1000})
    async with served(settings, clock) as server:
        gateway, port = server.gateway, server.gateway.ports["watch"]
        drip_reader, drip = await connect(port)
        done_reader, done = await connect(port)
        drip.write(HALF)
        done.write(HALF)
        pool = gateway._pools["watch"]
        await until(lambda: len(pool.by_frame_start) == 2, "two frames begun")
        clock.advance(20)
        drip.write(b",0")  # a slow drip keeps the connection from being idle, not its frame from being late
        done.write(b"]")  # the frame is complete (a bad one: answered as the protocol says, connection kept)
        await until(lambda: len(pool.by_frame_start) == 1, "one frame completed")
        clock.advance(9)
        assert gateway.sweep() == 0
        clock.advance(1)
        assert gateway.sweep() == 1
        assert await closed_by_server(drip_reader)
        clock.advance(100)
        assert gateway.sweep() == 0  # the other one is idle for 110 s of 1000: kept
        assert gateway.counters["watch.partial_dropped"] == 1
        assert len(gateway.connections) == 1 and not done_reader.at_eof()
        done.close()


async def test_errors_are_logged_once_per_interval_with_counts(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = with_budgets(tmp_path, watch={"max_per_address": 2})
    caplog.set_level(logging.INFO)
    async with served(settings, clock) as server:
        gateway, port = server.gateway, server.gateway.ports["watch"]
        kept = [await connect(port) for _ in range(2)]
        caplog.clear()
        refused = [await connect(port) for _ in range(300)]
        loop = asyncio.get_running_loop()
        flood = OSError(errno.EMFILE, "Too many open files")
        for _ in range(10_000):  # what asyncio's accept loop says at every failed accept() (with a traceback)
            loop.call_exception_handler({"message": ACCEPT_ERROR, "exception": flood})
        await until(lambda: gateway.counters["watch.over_address"] == 300, "300 refused")
        gateway.summarise()
        assert not caplog.records  # nothing before the interval is over
        clock.advance(gateway.log_every_s)
        gateway.summarise()
        (summary,) = caplog.records
        assert "watch.over_address 300" in summary.getMessage() and "accept_errors 10000" in summary.getMessage()
        assert "open now: watch 2" in summary.getMessage()
        assert len(caplog.text) < 2000
        clock.advance(gateway.log_every_s)
        gateway.summarise()
        assert len(caplog.records) == 1  # a quiet interval says nothing
        for _, writer in [*kept, *refused]:
            writer.close()
    logging.getLogger("asyncio").error("%s after the gateway stopped", ACCEPT_ERROR)
    assert "after the gateway stopped" in caplog.text  # the filter leaves with the gateway


def test_descriptors_are_shared_and_budgets_that_cannot_fit_are_refused(tmp_path: Path) -> None:
    options = ["dc09", "watch", "gt06"]
    plan = DescriptorPlan.of(settings_for(tmp_path), options, 1024, 4096)
    assert (plan.http, plan.reserve, plan.bursts) == (224, 128, 3 * 2 * ACCEPT_BURST)  # HTTP: a quarter
    assert plan.devices == dict.fromkeys(options, (1024 - 128 - 224 - plan.bursts) // 3) and plan.needed <= 1024
    big = settings_for(tmp_path, device_budgets={"watch": {"max_connections": 100_000}})
    with pytest.raises(ConfigError) as refused:
        DescriptorPlan.of(big, options, 1024, 1024)
    message = str(refused.value)
    assert "watch 100000" in message and "may open 1024" in message and "cannot be raised" in message
    assert "device_budgets.<option>.max_connections" in message and "http_max_connections" in message
    assert "\n" not in message
    fixed = settings_for(tmp_path, http_max_connections=100, device_budgets={"dc09": {"max_connections": 50}})
    plan = DescriptorPlan.of(fixed, options, 1000, 1000)
    share = (1000 - 128 - 100 - plan.bursts - 50) // 2
    assert plan.devices == {"dc09": 50, "watch": share, "gt06": share}


def test_defaults_are_the_protocols_heartbeats_times_three(tmp_path: Path) -> None:
    assert (idle_default("dc09"), idle_default("watch"), idle_default("gt06")) == (10800.0, 900.0, 900.0)
    settings = settings_for(tmp_path, device_ports={"dc09": 0, "watch": 0, "gt06": None})
    budgets = {listener.spec.option: listener.budget for listener in listeners(settings)}
    assert budgets["watch"].max_per_address == 256 and budgets["watch"].partial_s == 30.0
    assert budgets["dc09"].idle_s == 10800.0 and budgets["dc09"].allow == ()
    assert Settings.model_fields["gateway_host"].default == "127.0.0.1"
    with pytest.raises(ConfigError, match="unknown device protocol option nope in device_budgets"):
        listeners(settings_for(tmp_path, device_budgets={"nope": {}}))


async def test_a_real_descriptor_shortage_is_counted_not_logged_per_accept(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = with_budgets(tmp_path, watch={})
    async with served(settings, clock) as server:
        gateway, port = server.gateway, server.gateway.ports["watch"]
        clients = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(30)]  # their descriptors first
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        fillers: list[int] = []
        caplog.clear()
        try:
            for client in clients:
                client.setblocking(False)
            top = max(int(fd) for fd in os.listdir("/proc/self/fd"))
            resource.setrlimit(resource.RLIMIT_NOFILE, (top + 1, hard))
            with suppress(OSError):
                while True:  # fill every hole below the limit: no descriptor is left for accept()
                    fillers.append(os.dup(2))
            for client in clients:
                client.connect_ex(("127.0.0.1", port))
            await asyncio.sleep(0.3)
        finally:
            for fd in fillers:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        try:
            assert gateway.counters["accept_errors"] >= 1  # asyncio's accept() met EMFILE ...
            assert not [r for r in caplog.records if r.name == "asyncio"]  # ... and said nothing of its own
        finally:
            for client in clients:
                client.close()


async def test_datagrams_being_recorded_are_bounded_a_flood_is_dropped_and_counted(
    tmp_path: Path, clock: ManualClock
) -> None:
    """While the core is busy (here: its intake stopped), a UDP flood does not grow tasks without bound."""
    async with served(with_budgets(tmp_path, dc09={}), clock) as server:
        gateway, port = server.gateway, server.gateway.ports["sia-dc09"]
        await server.core.intake.stop()
        flood = 2 * MAX_DATAGRAMS_IN_FLIGHT  # some are lost in the kernel's buffer: UDP
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                # the kernel drops what a busy machine does not read in time: flood again until the gateway has
                # dropped its share (a few rounds at most), rather than hoping one round gets through
                for _ in range(10):
                    for n in range(flood):  # unknown accounts' SOS: the full path while no alert was raised yet
                        frame = build_message("ADM-CID", n % 9999 + 1, f"F{n:06d}", "1101 01 001")
                        sock.sendto(frame, ("127.0.0.1", port))
                        if n % 20 == 0:
                            await asyncio.sleep(0.001)
                    await asyncio.sleep(0.2)
                    if gateway.counters["sia-dc09.datagrams_dropped"] >= 100:
                        break
                await until(lambda: gateway.counters["sia-dc09.datagrams_dropped"] >= 100, "the excess dropped")
            assert len(gateway._tasks) <= MAX_DATAGRAMS_IN_FLIGHT
        finally:
            server.core.intake.start()  # the core catches up: what was taken in is answered, nothing hangs
        await until(lambda: not gateway._tasks, "the taken datagrams answered")
