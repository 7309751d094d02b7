"""Case 3, abuse: descriptor exhaustion, an unknown-account flood, a full disk, consoles that stop reading.

Each function starts its own real ``anxin serve`` (loopback only), abuses it from this process over real
sockets, prints nothing, and returns a :class:`Result` with its figures. A case whose feature has not landed
(its settings are not in :class:`dispatch.settings.Settings`) reports "not yet" where it falls short, rather
than failing; where the feature is there, falling short is a failure.

Latencies are judged against a floor taken in the same run, on the same server, before the abuse.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import httpx
import websockets

from gateway.dc09 import build_message
from tests.console.test_bulk import RESPONDERS, consoles_reconnect, seed, start
from tests.process import ADMIN_PASSWORD
from tests.reliability.accounts import Account
from tests.reliability.common import DeviceServer, Result, has_setting, journal_head, open_fds, registry, rss_kib

# -- small clients -------------------------------------------------------------------------------------------


class Sos:
    """Plain DC-09 SOS alarms from registered accounts, each a new (account, sequence); ACK latency in ms."""

    def __init__(self, accounts: Sequence[Account], port: int) -> None:
        self.accounts = [a for a in accounts if a.key is None]
        self.port = port
        self.n = 0

    async def once(self, wait: float = 5.0) -> float | None:
        account = self.accounts[self.n % len(self.accounts)]
        sequence = 5000 + self.n // len(self.accounts)
        self.n += 1
        frame = build_message("ADM-CID", sequence, account.account, "1101 01 001")
        return await exchange(self.port, frame, wait)


async def exchange(port: int, frame: bytes, wait: float, source: str = "127.0.0.1") -> float | None:
    """ms from writing ``frame`` to an ACK on a new connection; None when refused, cut, negative or silent."""
    begin = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(wait):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
            writer.write(frame)
            reply = await reader.readuntil(b"\r")
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None
    finally:
        if writer is not None:
            writer.close()
    return (time.perf_counter() - begin) * 1000 if b'ACK"' in reply else None


async def login_ms(url: str, wait: float = 10.0) -> float | None:
    begin = time.perf_counter()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=wait) as client:
            response = await client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
    except httpx.HTTPError:
        return None
    return (time.perf_counter() - begin) * 1000 if response.status_code == 200 else None


async def healthz(url: str) -> int | None:
    with contextlib.suppress(httpx.HTTPError):
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            return (await client.get("/healthz")).status_code
    return None


def median(samples: Sequence[float | None]) -> float | None:
    values = [s for s in samples if s is not None]
    return round(statistics.median(values), 1) if values else None


def p99(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1) if ordered else 0.0


def normal(now: float | None, floor: float | None) -> bool:
    """Generous: within 5× the floor plus 50 ms (the machine is shared; the point is "not seconds")."""
    return now is not None and floor is not None and now <= 5 * floor + 50


# -- descriptor exhaustion -----------------------------------------------------------------------------------


async def _hold(port: int, count: int, sources: int) -> tuple[list[socket.socket], Counter[str]]:
    """Open ``count`` idle connections to ``port`` from ``sources`` loopback addresses; keep what stays open."""
    held: list[socket.socket] = []
    outcome: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    for i in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.bind((f"127.0.1.{1 + i % sources}", 0))
            async with asyncio.timeout(2):
                await loop.sock_connect(sock, ("127.0.0.1", port))
            held.append(sock)
            outcome["connected"] += 1
        except (OSError, TimeoutError):
            outcome["refused"] += 1
            sock.close()
        if i % 200 == 199:
            await asyncio.sleep(0)
    await asyncio.sleep(1.0)
    alive = []
    for sock in held:  # a connection the server closed at once (over budget) reads EOF or a reset
        try:
            data = sock.recv(1)
            gone = data == b""
        except BlockingIOError:
            gone = False
        except OSError:
            gone = True
        if gone:
            outcome["closed by server"] += 1
            sock.close()
        else:
            alive.append(sock)
    outcome["held open"] = len(alive)
    return alive, outcome


async def _descriptors(server: DeviceServer, sos: Sos, idle: int) -> dict[str, object]:
    floor_login = [await login_ms(server.url) for _ in range(5)]
    floor_sos = [await sos.once() for _ in range(20)]
    log_before = server.log.stat().st_size
    held, outcome = await _hold(server.watch_port, idle, sources=50)
    try:
        fds = open_fds(server.pid)
        under_login = [await login_ms(server.url) for _ in range(5)]
        under_sos = [await sos.once() for _ in range(20)]
        health = await healthz(server.url)
    finally:
        for sock in held:
            sock.close()
    return {
        "floor_login": median(floor_login),
        "floor_sos": median(floor_sos),
        "login": median(under_login),
        "sos": median(under_sos),
        "logins_ok": sum(1 for s in under_login if s is not None),
        "sos_acked": sum(1 for s in under_sos if s is not None),
        "outcome": outcome,
        "fds": fds,
        "healthz": health,
        "log_growth": server.log.stat().st_size - log_before,
    }


def descriptors(idle: int = 5_000, nofile: int = 1024) -> Result:
    result = Result("descriptors")
    landed = has_setting("device_budgets", "http_max_connections")
    work = Path(tempfile.mkdtemp(prefix="anxin-fd-"))
    accounts = registry(work, elders=50, dc09=50, keyed=0.0)
    server = DeviceServer(work / "data", nofile=nofile)
    try:
        server.start()
    except RuntimeError as exc:
        result.fail(f"server did not start with {nofile} descriptors: {str(exc)[-300:]}")
        return result
    try:
        figures = asyncio.run(_descriptors(server, Sos(accounts, server.dc09_port), idle))
        alive = server.proc is not None and server.proc.poll() is None
    finally:
        server.stop()
    outcome: Counter[str] = figures["outcome"]  # type: ignore[assignment]
    result.figures = {
        "nofile": nofile,
        "idle tried": idle,
        "held/refused/closed": f"{outcome['held open']}/{outcome['refused']}/{outcome['closed by server']}",
        "server fds": figures["fds"],
        "login ms floor→under": f"{figures['floor_login']}→{figures['login']}",
        "SOS ACK ms floor→under": f"{figures['floor_sos']}→{figures['sos']}",
        "SOS acked": f"{figures['sos_acked']}/20",
        "log growth B": figures["log_growth"],
        "healthz under": figures["healthz"],
    }
    problems = []
    if not alive:
        problems.append("the server died")
    if figures["logins_ok"] != 5 or not normal(figures["login"], figures["floor_login"]):  # type: ignore[arg-type]
        problems.append("login failed or slow under the idle connections")
    if figures["sos_acked"] != 20 or not normal(figures["sos"], figures["floor_sos"]):  # type: ignore[arg-type]
        problems.append("DC-09 SOS not ACKed or slow under the idle connections")
    if int(figures["log_growth"]) > 1_000_000:  # type: ignore[call-overload]
        problems.append(f"the log grew {figures['log_growth']} bytes")
    for problem in problems:
        (result.fail if landed else result.not_yet)(problem)
    return result


# -- unknown-account flood -----------------------------------------------------------------------------------


async def _poller(port: int, frames: list[bytes], batch: int, replies: Counter[str]) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        replies["refused"] += len(frames)
        return
    try:
        for start in range(0, len(frames), batch):
            chunk = frames[start : start + batch]
            writer.write(b"".join(chunk))
            got = 0
            while got < len(chunk):
                try:
                    async with asyncio.timeout(0.5):
                        reply = await reader.readuntil(b"\r")
                except TimeoutError:
                    break
                got += 1
                token = reply[reply.find(b'"') + 1 : reply.find(b'"', reply.find(b'"') + 1)].decode(errors="replace")
                replies[token] += 1
            replies["no reply"] += len(chunk) - got
    except (OSError, asyncio.IncompleteReadError):
        replies["cut"] += 1
    finally:
        writer.close()


def unknown_flood(polls: int = 100_000, connections: int = 50) -> Result:
    result = Result("unknown flood")
    landed = has_setting("unknown_interval_s")
    interval = 10.0
    env = {"ANXIN_UNKNOWN_INTERVAL_S": str(interval)} if landed else {}
    work = Path(tempfile.mkdtemp(prefix="anxin-unknown-"))
    registry(work, elders=10, dc09=10, keyed=0.0)
    server = DeviceServer(work / "data", **env).start()
    replies: Counter[str] = Counter()
    try:
        head = journal_head(server.data)
        rss = rss_kib(server.pid)
        frames = [build_message("NULL", i % 10_000, f"U{i:07d}") for i in range(polls)]
        share = [frames[i::connections] for i in range(connections)]
        began = time.monotonic()

        async def flood() -> None:
            await asyncio.gather(*(_poller(server.dc09_port, part, 50, replies) for part in share))

        asyncio.run(flood())
        seconds = time.monotonic() - began
        time.sleep(interval + 1 if landed else 1)  # the interval's summary is written at its end
        written = journal_head(server.data) - head
        grown = rss_kib(server.pid) - rss
    finally:
        server.stop()
    intervals = max(1.0, (seconds + interval + 1) / interval)
    result.figures = {
        "polls": polls,
        "seconds": round(seconds, 1),
        "polls/s": round(polls / seconds),
        "replies": dict(replies.most_common()),
        "entries written": written,
        "per interval": round(written / intervals, 1) if landed else "-",
        "RSS growth KiB": grown,
    }
    if written > 10 * intervals + 10:
        (result.fail if landed else result.not_yet)(f"{written} journal entries for {polls} unknown polls")
    return result


# -- disk full -----------------------------------------------------------------------------------------------


def _mount_small(folder: Path, megabytes: int = 20) -> tuple[str, Path | None]:
    """A small filesystem at ``folder``: tmpfs, or a loop-mounted ext4 image when tmpfs cannot be mounted."""
    folder.mkdir(parents=True, exist_ok=True)
    tmpfs = ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)]
    if subprocess.run(tmpfs, capture_output=True, check=False).returncode == 0:
        return "tmpfs", None
    image = folder.with_suffix(".img")
    with image.open("wb") as handle:
        handle.truncate(megabytes << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, check=True)
    loop = ["mount", "-o", "loop", str(image), str(folder)]
    done = subprocess.run(loop, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"neither tmpfs nor a loop device could be mounted: {done.stderr.strip()}")
    return "loop ext4", image


def _fill(folder: Path) -> int:
    """Write a file until the filesystem refuses (ENOSPC); returns its size."""
    size = 0
    with (folder / "filler").open("wb", buffering=0) as handle:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9):
            block = b"\0" * chunk
            while True:
                try:
                    handle.write(block)
                except OSError:
                    break
                size += chunk
    return size


async def _until(attempt: object, seconds: float) -> float | None:
    """Seconds until ``attempt()`` (a coroutine function returning ms or None) succeeds, or None."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if await attempt() is not None:  # type: ignore[operator]
            return round(time.monotonic() - began, 2)
        await asyncio.sleep(0.25)
    return None


def disk_full(megabytes: int = 20) -> Result:
    result = Result("disk full")
    if os.geteuid() != 0:
        result.status, result.note = "skipped", "needs root to mount a small filesystem"
        return result
    landed = has_setting("storage_floor_mb", "storage_check_s")
    env = {"ANXIN_STORAGE_FLOOR_MB": "2", "ANXIN_STORAGE_RESERVE_MB": "6", "ANXIN_STORAGE_CHECK_S": "0.5"}
    work = Path(tempfile.mkdtemp(prefix="anxin-disk-"))
    mount = work / "small"
    kind, image = _mount_small(mount, megabytes)
    server: DeviceServer | None = None
    try:
        accounts = registry(mount, elders=20, dc09=20, keyed=0.0)
        server = DeviceServer(mount / "data", **(env if landed else {}))
        server.log = work / "server.log"
        server.start()
        pid = server.pid
        plain = [a for a in accounts if a.key is None]
        null = build_message("NULL", 1, plain[0].account)
        sos = build_message("ADM-CID", 77, plain[1].account, "1101 01 009")
        figures: dict[str, object] = {"filesystem": f"{kind} {megabytes} MB"}

        async def scenario() -> None:
            figures["NULL ACK before"] = await exchange(server.dc09_port, null, 5) is not None
            figures["filled MB"] = round(_fill(mount) / (1 << 20), 1)
            await asyncio.sleep(1.5)  # the storage watch looks every 0.5 s
            figures["NULL ACKed when full"] = await exchange(server.dc09_port, null, 3) is not None
            figures["SOS ACKed when full"] = await exchange(server.dc09_port, sos, 5) is not None
            figures["healthz when full"] = await healthz(server.url)
            (mount / "filler").unlink()
            figures["NULL ACK again after s"] = await _until(lambda: exchange(server.dc09_port, null, 2), 60)
            figures["SOS ACK again after s"] = await _until(lambda: exchange(server.dc09_port, sos, 2), 60)

        asyncio.run(scenario())
        figures["same process"] = server.proc is not None and server.proc.poll() is None and server.pid == pid
        server.stop()
        recorded = journal_sos(mount / "data", plain[1].account)
        figures["SOS in journal"] = recorded
        result.figures = figures
        problems = []
        if figures["NULL ACKed when full"]:
            problems.append("a NULL poll was ACKed on a full disk")
        if figures["NULL ACK again after s"] is None or figures["SOS ACK again after s"] is None:
            problems.append("no ACK within 60 s after space was freed")
        if not figures["same process"]:
            problems.append("the server did not survive")
        if recorded != 1:
            problems.append(f"the SOS is recorded {recorded} times (ACKed: must be once)")
        for problem in problems:
            (result.fail if landed else result.not_yet)(problem)
    finally:
        if server is not None:
            server.stop()
        subprocess.run(["umount", str(mount)], capture_output=True, check=False)
        if image is not None:
            image.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    return result


def journal_sos(data: Path, account: str) -> int:
    from tests.reliability.storm import recorded

    return sum(count for (acct, _), count in recorded(data).items() if acct == account)


# -- slow consoles ------------------------------------------------------------------------------------------


def _stalled(port: int, token: str) -> socket.socket:
    """A websocket console that completes its handshake and then never reads again (a 4 KiB receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws/console?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1024)
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"the console handshake was refused: {head[:100]!r}")
    return sock


def _server_side_open(server_port: int, client: socket.socket) -> bool:
    """Whether the server still holds its end of ``client``'s connection ESTABLISHED (from /proc/net/tcp)."""
    local = client.getsockname()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        here, there, state = fields[1], fields[2], fields[3]
        if int(here.split(":")[1], 16) == server_port and int(there.split(":")[1], 16) == local:
            return state == "01"
    return False


async def _reader(url: str, token: str, seen: dict[str, int]) -> None:
    async with websockets.connect(f"{url}/ws/console?token={token}", max_size=None) as ws:
        async for _ in ws:
            seen["messages"] += 1
    seen["closed"] += 1


async def _slow_consoles(server: DeviceServer, sos: Sos, max_alarms: int) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        response = await client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
        token = response.json()["access_token"]
    seen = {"messages": 0, "closed": 0}
    readers = [asyncio.create_task(_reader(server.ws, token, seen)) for _ in range(3)]
    await asyncio.sleep(1.0)
    floor = [s for s in [await sos.once() for _ in range(100)] if s is not None]
    stalled = [_stalled(server.port, token) for _ in range(2)]
    latencies: list[float] = []
    unacked = 0
    began = time.monotonic()
    cut_after: int | None = None

    async def pump(lane: int) -> None:
        nonlocal unacked
        while sos.n < max_alarms and cut_after is None:
            ms = await sos.once()
            if ms is None:
                unacked += 1
            else:
                latencies.append(ms)

    async def watch() -> None:
        nonlocal cut_after
        while sos.n < max_alarms:
            if not any(_server_side_open(server.port, s) for s in stalled):
                cut_after = sos.n
                return
            await asyncio.sleep(0.2)

    await asyncio.gather(*(pump(i) for i in range(8)), watch())
    seconds = time.monotonic() - began
    await asyncio.sleep(2.0)
    still_open = sum(1 for s in stalled if _server_side_open(server.port, s))
    for s in stalled:
        s.close()
    for task in readers:
        task.cancel()
    return {
        "floor_p50": median(floor),
        "floor_p99": p99(floor),
        "p50": median(latencies),
        "p99": p99(latencies),
        "alarms": len(latencies) + unacked,
        "unacked": unacked,
        "cut_after": cut_after,
        "stalled_open": still_open,
        "readers_closed": seen["closed"],
        "reader_messages": seen["messages"],
        "seconds": round(seconds, 1),
    }


def slow_consoles(quick: bool = False) -> Result:
    result = Result("slow consoles")
    work = Path(tempfile.mkdtemp(prefix="anxin-consoles-"))
    accounts = registry(work, elders=3000, dc09=3000, keyed=0.0)  # a new incident each: ~4 entries an alarm
    server = DeviceServer(work / "data").start()
    try:
        f = asyncio.run(_slow_consoles(server, Sos(accounts, server.dc09_port), 10_000 if quick else 30_000))
    finally:
        server.stop()
    result.figures = {
        "alarms": f["alarms"],
        "ACK p50/p99 ms floor": f"{f['floor_p50']}/{f['floor_p99']}",
        "ACK p50/p99 ms during": f"{f['p50']}/{f['p99']}",
        "stalled cut after alarms": f["cut_after"] if f["cut_after"] is not None else "not cut",
        "readers closed": f"{f['readers_closed']}/3",
        "reader messages": f["reader_messages"],
        "seconds": f["seconds"],
    }
    if f["unacked"]:
        result.fail(f"{f['unacked']} alarms not ACKed")
    if f["stalled_open"]:
        result.fail(f"{f['stalled_open']} stalled consoles still held after {f['alarms']} alarms")
    if f["readers_closed"]:
        result.fail("a reading console was cut")
    floor_p99, during_p99 = float(f["floor_p99"]), float(f["p99"])  # type: ignore[arg-type]
    if during_p99 > max(10 * floor_p99, 250.0):
        result.fail("ACK latency suffered while consoles stalled")
    return result


# -- consoles reconnecting ----------------------------------------------------------------------------------


def reconnecting_consoles(quick: bool = False) -> Result:
    """Hundreds of consoles reconnecting at once to a multi-MB snapshot (after a network blip at the centre) while a
    pendant sends SOS after SOS: its ACKs stay fast, every console gets its whole snapshot."""
    result = Result("consoles reconnect")
    consoles = 60 if quick else 500
    server = start(seed(Path(tempfile.mkdtemp(prefix="anxin-reconnect-")), elders=401, responders=RESPONDERS))
    try:
        f = asyncio.run(consoles_reconnect(server, consoles, seed_incidents=400))
    finally:
        server.stop()
    floor, during = [1000 * s for s in f["floor"]], [1000 * s for s in f["during"]]
    result.figures = {
        "consoles": f"{f['consoles']}/{consoles}",
        "snapshot MB": round(f["snapshot_bytes"] / 1e6, 1),
        "took s": round(f["took_s"], 1),
        "ACK p50/p99/max ms floor": f"{median(floor)}/{p99(floor)}/{round(max(floor), 1)}",
        "ACK p50/p99/max ms during": f"{median(during)}/{p99(during)}/{round(max(during), 1)}",
    }
    if f["consoles"] != consoles:
        result.fail(f"{consoles - f['consoles']} consoles did not get their whole snapshot")
    if max(during) > max(250.0, 10 * max(floor)):
        result.fail("an SOS ACK waited for the consoles")
    return result
