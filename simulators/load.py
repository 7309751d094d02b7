"""A device load generator: many concurrent TCP connections sending frames and timing their replies.

It runs in its own process (``python -m simulators.load ...``) so that the server under test and the load
do not share an event loop, and prints one JSON object: frames sent and answered, frames per second, and
the reply latency (p50, p99, max) measured from the write of a frame to the end of its reply.

Each connection is a closed loop (send, wait for the reply, send the next), like a device that waits for
its ACK; ``--interval`` adds a pause between frames for a steady rate instead of the maximum.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.dc09 import build_message

REPLY_END = {"dc09": b"\r", "watch": b"]"}


def dc09_frames(account: str) -> Callable[[int], bytes]:
    return lambda n: build_message("NULL", n % 10_000, account)


def watch_frames(watch_id: str) -> Callable[[int], bytes]:
    frame = f"[3G*{watch_id}*0009*LK,0,0,95]".encode()
    return lambda n: frame


@dataclass
class Tally:
    latencies_ns: list[int] = field(default_factory=list)
    sent: int = 0
    errors: int = 0
    connected: int = 0


@dataclass
class Clock:
    stop_at: float = math.inf


async def connection(
    host: str,
    port: int,
    frames: Callable[[int], bytes],
    end: bytes,
    clock: Clock,
    gates: tuple[asyncio.Semaphore, asyncio.Event],
    interval: float,
    tally: Tally,
) -> None:
    connecting, start = gates
    try:
        async with connecting:  # a burst of 10,000 SYNs would overflow the listen backlog
            reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        tally.errors += 1
        return
    tally.connected += 1
    await start.wait()
    n = 0
    try:
        while time.monotonic() < clock.stop_at:
            frame = frames(n)
            begin = time.perf_counter_ns()
            writer.write(frame)
            tally.sent += 1
            await reader.readuntil(end)
            tally.latencies_ns.append(time.perf_counter_ns() - begin)
            n += 1
            if interval:
                await asyncio.sleep(interval)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        tally.errors += 1
    finally:
        writer.close()


async def run(
    host: str, port: int, protocol: str, ids: Sequence[str], connections: int, seconds: float, interval: float
) -> dict[str, object]:
    make = dc09_frames if protocol == "dc09" else watch_frames
    tally, clock = Tally(), Clock()
    gates = (asyncio.Semaphore(256), asyncio.Event())
    devices = [
        asyncio.create_task(
            connection(host, port, make(ids[i % len(ids)]), REPLY_END[protocol], clock, gates, interval, tally)
        )
        for i in range(connections)
    ]
    while tally.connected + tally.errors < connections:  # noqa: ASYNC110 - polling a counter, not a condition
        await asyncio.sleep(0.05)
    begin = time.monotonic()
    clock.stop_at = begin + seconds
    gates[1].set()
    await asyncio.gather(*devices)
    elapsed = time.monotonic() - begin
    ordered = sorted(tally.latencies_ns)

    def pct(p: float) -> float:
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)] / 1e6 if ordered else float("nan")

    return {
        "protocol": protocol,
        "connections": connections,
        "connected": tally.connected,
        "seconds": round(elapsed, 2),
        "sent": tally.sent,
        "answered": len(ordered),
        "errors": tally.errors,
        "frames_per_s": round(len(ordered) / elapsed, 1),
        "p50_ms": round(pct(0.50), 3),
        "p99_ms": round(pct(0.99), 3),
        "max_ms": round(pct(1.0), 3),
    }


async def hold_idle(host: str, port: int, connections: int, seconds: float) -> None:
    """Open ``connections`` idle connections, say so on stdout, keep them ``seconds``, close them."""
    gate = asyncio.Semaphore(256)

    async def one() -> asyncio.StreamWriter | None:
        async with gate:
            try:
                return (await asyncio.open_connection(host, port))[1]
            except OSError:
                return None

    writers = [w for w in await asyncio.gather(*(one() for _ in range(connections))) if w is not None]
    print(json.dumps({"connected": len(writers)}), flush=True)
    await asyncio.sleep(seconds)
    for writer in writers:
        writer.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="device load generator (loopback only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protocol", choices=sorted(REPLY_END), required=True)
    parser.add_argument("--ids", required=True, help="file with one device id per line")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--idle", action="store_true", help="only hold the connections open (memory figure)")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("load is only ever sent to this machine (loopback)")
    if args.idle:
        asyncio.run(hold_idle(args.host, args.port, args.connections, args.seconds))
        return
    with open(args.ids, encoding="utf-8") as handle:
        ids = [line.strip() for line in handle if line.strip()]
    result = asyncio.run(run(args.host, args.port, args.protocol, ids, args.connections, args.seconds, args.interval))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
