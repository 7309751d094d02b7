"""Console push: the event loop's CPU per journal entry sent to an operator console, one frame each or batched.

The server side is Anxin's own (``console.live.pump`` through ``console.app``'s sender, starlette's websocket,
uvicorn's sans-I/O websockets as ``anxin serve`` runs it) in this process; the console is a client process that
reads as fast as it can. ``MESSAGES`` entry-sized texts are queued at once (as after a group commit) and the
server thread's CPU time (``time.thread_time``) to send them all is divided by their number. The floor is a bare
``websockets`` server sending the same texts one frame each, in the same run.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as serve_websockets

from anxin.server import AbortableWebSockets
from bench.common import Timing, report
from console.app import _sender
from console.live import Outbox, pump
from tests.conftest import free_port

MESSAGES = 20_000
RUNS = 5
ENTRY = json.dumps(
    {"type": "entry", "seq": 0, "ts": 1_767_225_600.0, "kind": "incident.opened", "actor": "gateway:dc09",
     "incident_id": "INC-20260101-000123", "drill": False,
     "payload": {"elder_id": "e012345", "device_id": "D0123456", "alarm_type": "sos", "lat": 24.51, "lon": 117.65,
                 "priority": 1, "source": "dc09", "code": "1101", "zone": "001"}},
    ensure_ascii=False, separators=(",", ":"),
)  # fmt: skip
CLIENT = """
import sys
from websockets.sync.client import connect
with connect(sys.argv[1], max_size=None) as ws:
    for _ in ws:
        pass
"""
Measure = Callable[[], Coroutine[Any, Any, float]]


def texts() -> list[tuple[int, str]]:
    return [(seq, ENTRY.replace('"seq":0', f'"seq":{seq}', 1)) for seq in range(1, MESSAGES + 1)]


async def anxin_push(websocket: WebSocket) -> None:
    await websocket.accept()
    outbox = Outbox(MESSAGES + 1)
    for seq, text in texts():
        outbox.put(seq, text)
    outbox.queue.put_nowait(None)
    send = _sender(websocket)
    start = time.thread_time()
    await pump(outbox, send, batch=websocket.query_params.get("batch") == "1")
    websocket.app.state.cpu_s = time.thread_time() - start
    await websocket.close()


async def floor_push(connection: ServerConnection) -> None:
    start = time.thread_time()
    for _, text in texts():
        await connection.send(text)
    FLOOR["cpu_s"] = time.thread_time() - start


FLOOR: dict[str, float] = {}


async def client(url: str) -> None:
    reader = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT, url)
    await reader.wait()


async def main_async() -> list[Timing]:
    app = Starlette(routes=[WebSocketRoute("/push", anxin_push)])
    listening = socket.create_server(("127.0.0.1", 0))  # clients wait in its backlog until uvicorn accepts
    port, floor_port = listening.getsockname()[1], free_port()
    config = uvicorn.Config(app, ws=AbortableWebSockets, ws_per_message_deflate=False, log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    rows: dict[str, list[float]] = {"websockets, one frame each (floor)": [], "one frame each": [], "batched": []}
    async with serve_websockets(floor_push, "127.0.0.1", floor_port, compression=None):
        for _ in range(RUNS):
            await client(f"ws://127.0.0.1:{floor_port}/")
            rows["websockets, one frame each (floor)"].append(FLOOR["cpu_s"])
            await client(f"ws://127.0.0.1:{port}/push")
            rows["one frame each"].append(app.state.cpu_s)
            await client(f"ws://127.0.0.1:{port}/push?batch=1")
            rows["batched"].append(app.state.cpu_s)
    server.should_exit = True
    await serving
    timings = []
    for name, runs in rows.items():
        per_message = sorted(1e6 * cpu / MESSAGES for cpu in runs)
        timings.append(Timing(name, MESSAGES, per_message[len(per_message) // 2], per_message[-1]))
    return timings


def main() -> None:
    rows = asyncio.run(main_async())
    print(f"CPU µs of the server's loop per message, {MESSAGES:,} queued messages, median (and worst) of {RUNS} runs")
    report("push", rows, floor="websockets, one frame each (floor)", notes={"messages": MESSAGES, "runs": RUNS})


if __name__ == "__main__":
    main()
