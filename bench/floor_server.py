"""The floor for the gateway benchmarks: a bare asyncio server that only acknowledges.

It frames DC-09 on CR (or watch frames on ``]``) and writes back a fixed reply: no decoding, no journal,
no core. Whatever Anxin does beyond that is the cost the benchmark shows as a ratio.
``python -m bench.floor_server --protocol dc09 --port P``
"""

from __future__ import annotations

import argparse
import asyncio

REPLIES = {
    "dc09": (b"\r", b'\n5D4B0016"ACK"0000L0#0[]\r'),
    "watch": (b"]", b"[3G*0000000000*0002*LK]"),
}


class AckOnly(asyncio.Protocol):
    def __init__(self, end: bytes, reply: bytes) -> None:
        self._end, self._reply = end, reply
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        count = self._buffer.count(self._end)
        if count and self._transport is not None:
            self._buffer = self._buffer[self._buffer.rfind(self._end) + 1 :]
            self._transport.write(self._reply * count)


async def serve(protocol: str, port: int) -> None:
    end, reply = REPLIES[protocol]
    server = await asyncio.get_running_loop().create_server(
        lambda: AckOnly(end, reply), "127.0.0.1", port, backlog=4096
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=sorted(REPLIES), required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.protocol, args.port))


if __name__ == "__main__":
    main()
