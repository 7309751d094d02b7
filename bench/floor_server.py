"""The floors for the gateway and alarm benchmarks: bare servers that only acknowledge (and relay).

``python -m bench.floor_server --protocol dc09 --port P`` frames DC-09 on CR (or watch frames on ``]``) and
writes back a fixed reply: no decoding, no journal, no core. With ``--http-port H`` it also accepts websocket
clients on ``/ws/console`` and, for each DC-09 frame, broadcasts one small ``incident.opened`` message naming
the frame's account with ``websockets.broadcast`` (the bare push the alarm-to-screen figure is compared with).
It runs on uvloop, as ``anxin serve`` does. Whatever Anxin does beyond that is the cost the benchmarks show as a
ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast
from websockets.asyncio.server import serve as serve_websockets

REPLIES = {
    "dc09": (b"\r", b'\n5D4B0016"ACK"0000L0#0[]\r'),
    "watch": (b"]", b"[3G*0000000000*0002*LK]"),
}


CLIENTS: set[ServerConnection] = set()


class AckOnly(asyncio.Protocol):
    def __init__(self, end: bytes, reply: bytes, relay: bool = False) -> None:
        self._end, self._reply, self._relay = end, reply, relay
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        count = self._buffer.count(self._end)
        if count and self._transport is not None:
            if not self._relay:
                self._buffer = self._buffer[self._buffer.rfind(self._end) + 1 :]
                self._transport.write(self._reply * count)
                return
            frames = self._buffer.split(self._end)
            self._buffer = frames.pop()
            for frame in frames:
                raw = frame[frame.find(b"#") + 1 : frame.find(b"[")]
                self._transport.write(b'\n0000001A"ACK"0000L0#' + raw + b"[]\r")  # the account, for the timing
                account = raw.decode(errors="replace")
                message = {"type": "entry", "kind": "incident.opened", "payload": {"device_id": account}}
                broadcast(CLIENTS, json.dumps(message))


async def consoles(connection: ServerConnection) -> None:
    CLIENTS.add(connection)
    try:
        await connection.wait_closed()
    finally:
        CLIENTS.discard(connection)


async def serve(protocol: str, port: int, http_port: int | None, watch_port: int | None = None) -> None:
    end, reply = REPLIES[protocol]
    relay = http_port is not None
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: AckOnly(end, reply, relay), "127.0.0.1", port, backlog=4096)
    if watch_port is not None:  # the routine links beside the alarms, acknowledged as the product does
        await loop.create_server(lambda: AckOnly(*REPLIES["watch"]), "127.0.0.1", watch_port, backlog=4096)
    if http_port is not None:
        await serve_websockets(consoles, "127.0.0.1", http_port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=sorted(REPLIES), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--http-port", type=int)
    parser.add_argument("--watch-port", type=int, help="also acknowledge watch links here (the routine load)")
    args = parser.parse_args()
    uvloop.run(serve(args.protocol, args.port, args.http_port, args.watch_port))  # the loop the product runs on


if __name__ == "__main__":
    main()
