"""The alarm-path load generator: DC-09 alarms in, ACKs and operator consoles' screens timed.

Runs in its own process (``python -m simulators.alarmload ...``) against a running server, and prints one
JSON object. In one process, on one clock, it:

- opens ``--consoles`` operator websockets (``/ws/console``, resuming from the current head, so no
  snapshot, in batched frames) and notes when each receives the ``incident.opened`` entry of each alarm, and
  whether the server closed it (4000: it lagged) and with which code; the first console also notes when each
  alarm's first ``offer.made`` arrives (a caregiver's phone rings: the offer follows the ACK, dispatch.intake
  rule 6);
- opens ``--stalled-consoles`` more that never read after their handshake, and says whether the server cut
  each (they are no screens);
- sends ADM-CID alarms (Contact ID ``--code``) at ``--rate`` per second over ``--connections`` DC-09
  connections, one account per alarm (so each alarm is a new incident: journaled, matched, offered, pushed),
  and times each ACK from the write of its frame;
- sends routine watch links (``LK``) at ``--routine-rate`` per second over 100 connections.

Alarm-to-screen latency is measured from the write of the alarm frame to its arrival on each console. A console
finds the ``incident.opened`` entries of a frame and their ``device_id`` by string search (:func:`opened_devices`),
so that one process keeps up with ten consoles at the rated load; a frame it is unsure of is parsed as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from gateway.dc09 import build_message

ROUTINE_CONNECTIONS = 100
LAGGING = 4000
OPENED = '"incident.opened"'
OFFERED = '"offer.made"'


@dataclass
class Timings:
    sent_at: dict[str, int] = field(default_factory=dict)
    ack_ns: list[int] = field(default_factory=list)
    screen_ns: list[int] = field(default_factory=list)
    screens: dict[str, int] = field(default_factory=dict)
    offer_ns: list[int] = field(default_factory=list)  # to the first offer on the first console
    opened_for: dict[str, str] = field(default_factory=dict)  # incident_id -> device_id, until its first offer
    routine_sent: int = 0
    routine_acked: int = 0
    errors: int = 0
    closes: list[int | None] = field(default_factory=list)  # per console: the code it was closed with


def percentile(samples: list[int], p: float) -> float:
    ordered = sorted(samples)
    return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)] / 1e6, 3) if ordered else float("nan")


def opened_devices(text: str) -> list[str] | None:
    """The ``device_id`` of each ``incident.opened`` entry in a frame (one message or an array of them), by string
    search; None when a frame is not as expected (the caller parses it as JSON)."""
    devices: list[str] = []
    at = text.find(OPENED)
    while at != -1:
        after = at + len(OPENED)
        following = text.find(OPENED, after)
        head = text[max(0, at - 8) : at]
        if head.endswith(('"kind":', '"kind": ')):
            entry_end = text.find('{"type"', after, len(text) if following == -1 else following)
            key = text.find('"device_id"', after, following if entry_end == -1 else entry_end)
            if key == -1:
                return None
            value = key + len('"device_id"')
            while text.startswith((":", " "), value):
                value += 1
            end = text.find('"', value + 1)
            if not text.startswith('"', value) or end == -1 or "\\" in text[value:end]:
                return None
            devices.append(text[value + 1 : end])
        at = following
    return devices


def parsed_devices(text: str) -> Iterator[str]:
    """What :func:`opened_devices` finds, from the frame parsed as JSON."""
    message = json.loads(text)
    for each in message if isinstance(message, list) else [message]:
        if isinstance(each, dict) and each.get("kind") == "incident.opened":
            device = (each.get("payload") or {}).get("device_id")
            if isinstance(device, str):
                yield device


def first_offers(text: str, timings: Timings, now: int) -> None:
    """Times each alarm's first ``offer.made`` (a caregiver's phone rings), from the frame parsed as JSON: on one
    console only, as it costs more than the string search."""
    message = json.loads(text)
    for each in message if isinstance(message, list) else [message]:
        if not isinstance(each, dict):
            continue
        payload = each.get("payload") or {}
        if each.get("kind") == "incident.opened":  # its id is in the payload: the envelope's is null
            incident, device = payload.get("incident_id"), payload.get("device_id")
            if isinstance(incident, str) and isinstance(device, str):
                timings.opened_for[incident] = device
        elif (
            each.get("kind") == "offer.made"
            and (device := timings.opened_for.pop(str(each.get("incident_id")), None)) is not None
        ):
            sent = timings.sent_at.get(device)
            if sent is not None:
                timings.offer_ns.append(now - sent)


async def console(url: str, token: str, after: int, timings: Timings, ready: asyncio.Event) -> None:
    index = len(timings.closes)
    timings.closes.append(None)
    async with websockets.connect(f"{url}/ws/console?token={token}&after={after}&batch=1", max_size=None) as ws:
        ready.set()
        try:
            async for text in ws:
                if index == 0 and OFFERED in text:
                    first_offers(str(text), timings, time.perf_counter_ns())
                if OPENED not in text:
                    continue
                now = time.perf_counter_ns()
                devices = opened_devices(str(text))
                for device in parsed_devices(str(text)) if devices is None else devices:
                    sent = timings.sent_at.get(device)
                    if sent is not None:
                        timings.screen_ns.append(now - sent)
                        timings.screens[device] = timings.screens.get(device, 0) + 1
        except websockets.ConnectionClosed:
            pass
        timings.closes[index] = ws.close_code


async def stalled_console(url: str, token: str, after: int) -> websockets.ClientConnection:
    """A console that completes its handshake and then never reads: its transport reads no more."""
    url = f"{url}/ws/console?token={token}&after={after}&batch=1"
    ws = await websockets.connect(url, max_size=None, ping_interval=None)  # no pings: it would close on no pong
    ws.transport.pause_reading()
    return ws


def cut_by_server(ws: websockets.ClientConnection) -> bool:
    """Whether the server no longer holds its end of the connection ESTABLISHED (from /proc/net/tcp): a stalled
    console reads nothing, so it would never see the close itself."""
    local, server = ws.transport.get_extra_info("sockname")[1], ws.transport.get_extra_info("peername")[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        here, there = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        if here == server and there == local:
            return fields[3] != "01"
    return True


async def alarm_connection(host: str, port: int, queue: asyncio.Queue[str], code: str, timings: Timings) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    sequence = itertools.count(1)

    async def acks() -> None:
        while line := await reader.readuntil(b"\r"):
            account = line[line.index(b"#") + 1 : line.index(b"[")].decode()
            sent = timings.sent_at.get(account)
            if sent is not None:
                timings.ack_ns.append(time.perf_counter_ns() - sent)

    reading = asyncio.create_task(acks())
    try:
        while (account := await queue.get()) != "":
            frame = build_message("ADM-CID", next(sequence) % 10_000, account, f"1{code} 01 001")
            timings.sent_at[account] = time.perf_counter_ns()
            writer.write(frame)
    finally:
        await asyncio.sleep(1.0)  # the last ACKs
        reading.cancel()
        writer.close()


async def routine(host: str, port: int, ids: Sequence[str], rate: float, until: float, timings: Timings) -> None:
    """``rate`` link frames a second over ROUTINE_CONNECTIONS connections, each on a fixed schedule (a frame every
    ``ROUTINE_CONNECTIONS / rate`` seconds from its own start, not a pause after each ACK, which would send fewer)."""
    if rate <= 0 or not ids:
        return
    interval = ROUTINE_CONNECTIONS / rate

    async def link(index: int, watch_id: str) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        frame = f"[3G*{watch_id}*0009*LK,0,0,90]".encode()
        due = time.monotonic() + interval * index / ROUTINE_CONNECTIONS  # spread over the first interval
        try:
            while due < until:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(frame)
                timings.routine_sent += 1
                await reader.readuntil(b"]")
                timings.routine_acked += 1
                due += interval
        except (OSError, asyncio.IncompleteReadError):
            timings.errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(link(i, ids[i % len(ids)]) for i in range(ROUTINE_CONNECTIONS)))


async def pace(accounts: Sequence[str], rate: float, seconds: float, queues: list[asyncio.Queue[str]]) -> int:
    """Hand accounts to the connections at ``rate`` per second, in small even batches: exactly ``rate × seconds``
    of them (or all there are), the last batch at the end of the period."""
    total = min(len(accounts), round(rate * seconds))
    start, sent, tick = time.monotonic(), 0, 0.005
    while sent < total:
        elapsed = time.monotonic() - start
        due = total if elapsed >= seconds else min(total, int(elapsed * rate) + 1)
        while sent < due:
            queues[sent % len(queues)].put_nowait(accounts[sent])
            sent += 1
        if sent < total:
            await asyncio.sleep(tick)
    for queue in queues:
        queue.put_nowait("")
    return sent


async def run(args: argparse.Namespace, accounts: Sequence[str], watches: Sequence[str]) -> dict[str, Any]:
    token, head = "", 0
    if args.password:
        async with httpx.AsyncClient(base_url=args.url) as client:
            login = await client.post("/api/auth/token", data={"username": args.user, "password": args.password})
            token = login.json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            head = (await client.get("/api/journal?limit=1", headers=headers)).json()["head"]
    timings = Timings()
    ws_url = args.url.replace("http://", "ws://")
    readies = [asyncio.Event() for _ in range(args.consoles)]
    consoles = [asyncio.create_task(console(ws_url, token, head, timings, ready)) for ready in readies]
    await asyncio.gather(*(ready.wait() for ready in readies))
    stalled = [await stalled_console(ws_url, token, head) for _ in range(args.stalled_consoles)]
    queues: list[asyncio.Queue[str]] = [asyncio.Queue() for _ in range(args.connections)]
    senders = [asyncio.create_task(alarm_connection(args.host, args.dc09_port, q, args.code, timings)) for q in queues]
    until = time.monotonic() + args.seconds
    background = asyncio.create_task(routine(args.host, args.watch_port, watches, args.routine_rate, until, timings))
    sent = await pace(accounts, args.rate, args.seconds, queues)
    await asyncio.gather(*senders)
    await background
    for _ in range(100):  # up to 5 s for the consoles to drain
        if sum(timings.screens.values()) >= sent * args.consoles:
            break
        await asyncio.sleep(0.05)
    stalled_cut = [cut_by_server(ws) for ws in stalled]
    for task in consoles:
        task.cancel()
    await asyncio.gather(*consoles, return_exceptions=True)
    for ws in stalled:
        ws.transport.abort()
    on_every_screen = sum(1 for n in timings.screens.values() if n >= args.consoles)
    cut = [code for code in timings.closes if code is not None]
    return {
        "rate": args.rate,
        "seconds": args.seconds,
        "alarms_sent": sent,
        "alarms_acked": len(timings.ack_ns),
        "alarms_on_every_screen": on_every_screen,
        "on_every_screen_share": round(on_every_screen / sent, 4) if sent else float("nan"),
        "consoles": args.consoles,
        "consoles_cut_lagging": sum(1 for code in cut if code == LAGGING),
        "consoles_cut_other": sum(1 for code in cut if code != LAGGING),
        "console_close_codes": cut,
        "stalled_consoles": args.stalled_consoles,
        "stalled_cut": stalled_cut,
        "ack_p50_ms": percentile(timings.ack_ns, 0.50),
        "ack_p99_ms": percentile(timings.ack_ns, 0.99),
        "screen_p50_ms": percentile(timings.screen_ns, 0.50),
        "screen_p99_ms": percentile(timings.screen_ns, 0.99),
        "screen_max_ms": percentile(timings.screen_ns, 1.0),
        "alarms_offered": len(timings.offer_ns),
        "offer_p50_ms": percentile(timings.offer_ns, 0.50),
        "offer_p99_ms": percentile(timings.offer_ns, 0.99),
        "routine_sent": timings.routine_sent,
        "routine_acked": timings.routine_acked,
        "errors": timings.errors,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="alarm-path load generator (loopback only)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--dc09-port", type=int, required=True)
    parser.add_argument("--watch-port", type=int, default=0)
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="", help="none: a floor server without accounts")
    parser.add_argument("--accounts", required=True, help="file of DC-09 accounts, one per alarm")
    parser.add_argument("--offset", type=int, default=0, help="skip this many accounts (already used)")
    parser.add_argument("--watches", help="file of watch ids for routine traffic")
    parser.add_argument("--code", default="101", help="Contact ID event code of the alarms")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--routine-rate", type=float, default=0.0)
    parser.add_argument("--consoles", type=int, default=10)
    parser.add_argument("--stalled-consoles", type=int, default=0, help="more consoles that never read")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1") or "127.0.0.1" not in args.url:
        parser.error("load is only ever sent to this machine (loopback)")
    accounts = Path(args.accounts).read_text(encoding="utf-8").split()[args.offset :]
    watches = Path(args.watches).read_text(encoding="utf-8").split() if args.watches else []
    print(json.dumps(asyncio.run(run(args, accounts, watches))))


if __name__ == "__main__":
    main()
