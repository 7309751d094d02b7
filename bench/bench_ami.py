"""The PBX link: the cost of following the hotline's calls over AMI, per event, against a bare parse.

The stream is what the simulated Asterisk (simulators.pbx) emits for ``CALLS`` hotline calls of the demo's mix
(answered through the queue, abandoned, transferred, missed): about 16 events a call, each with its headers. Rows:

- ``floor: split lines`` -- the bytes cut into lines and ``Key: Value`` pairs with ``bytes.split``, nothing else: the
  least any AMI reader does;
- ``codec`` -- gateway.ami's framing into messages (per event);
- ``codec + tracker`` -- and gateway.pbx's call tracker, which makes the call events (per event);
- ``link over TCP`` -- the whole link (gateway.amilink): a server on loopback writes the stream after the login and
  the channel list, the link reads, tracks and hands each call event to a consumer that takes it at once; the
  event loop's time per AMI event, from the first byte to the last call event taken (a mean: one run).

A centre's PBX makes a few events a second; the link's budget is the event loop's, which the alarms share.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

from bench.common import Timing, report, time_each
from dispatch.clock import SystemClock
from dispatch.commands import CallEvent
from gateway.ami import AmiCodec
from gateway.amilink import PbxLink
from gateway.pbx import CallTracker
from simulators.pbx import Pbx

CALLS = 2_000
FLOWS = ("answered",) * 6 + ("abandoned", "transferred", "missed")
EXTENSIONS = {"8101": "li", "8102": "chen"}
BANNER = b"Asterisk Call Manager/7.0.3\r\n"


class Recorder(Pbx):
    """The simulated PBX, keeping what it would send to a logged-in manager session."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[bytes] = []

    def _broadcast(self, block: bytes) -> None:
        self.blocks.append(block)


def stream() -> list[bytes]:
    """The events of ``CALLS`` calls, one block each, calls played one after another."""
    pbx, rng = Recorder(), random.Random(7)
    for n in range(CALLS):
        play = pbx.call(rng.choice(FLOWS), caller=f"139{n:08d}", extension="8101", to="8102")
        while not play.done:
            play.step()
    return pbx.blocks


def floor_split(data: bytes) -> object:
    return [line.split(b": ", 1) for line in data.split(b"\r\n") if line]


def block(**fields: str) -> bytes:
    """One AMI message."""
    return "".join(f"{key}: {value}\r\n" for key, value in fields.items()).encode() + b"\r\n"


def measure_link(blocks: list[bytes]) -> float:
    """Seconds of the link's run from the stream's first byte to the last call event taken."""
    payload = b"".join(blocks)
    taken: list[CallEvent] = []
    done = asyncio.Event()
    expected: list[int] = []

    async def take(event: CallEvent) -> None:
        taken.append(event)
        if expected and len(taken) == expected[0]:
            done.set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A PBX that logs the link in, lists no channels, then sends the whole stream at once."""
        writer.write(BANNER)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the link closed: the run is over
                writer.close()
                return
            fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n") if ": " in line)
            action, action_id = fields.get("Action", ""), fields.get("ActionID", "")
            if action in ("CoreShowChannels", "Status"):
                complete = f"{action}Complete"
                writer.write(block(Response="Success", ActionID=action_id, EventList="start"))
                writer.write(block(Event=complete, ActionID=action_id, EventList="Complete", ListItems="0"))
                if action == "CoreShowChannels":  # the link has rebuilt (nothing to rebuild): the day's events
                    started.set()
                    writer.write(payload)
            else:  # Login, Ping
                writer.write(block(Response="Success", ActionID=action_id, Message="Authentication accepted"))
            await writer.drain()

    started = asyncio.Event()

    async def run() -> float:
        tracker = CallTracker(extensions=EXTENSIONS)
        expected.append(sum(len(tracker.handle(m, 0.0)) for m in AmiCodec().receive_data(BANNER + payload)))
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = PbxLink(host="127.0.0.1", port=port, username="bench", secret="bench", on_event=take,
                       clock=SystemClock(), extensions=EXTENSIONS)  # fmt: skip
        task = asyncio.create_task(link.run())
        await started.wait()
        start = time.perf_counter()
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - start
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()
        await server.wait_closed()
        return elapsed

    return asyncio.run(run())


def main() -> None:
    blocks = stream()
    codec = AmiCodec()
    codec.receive_data(BANNER)
    tracker_codec = AmiCodec()
    tracker_codec.receive_data(BANNER)
    tracker = CallTracker(extensions=EXTENSIONS)

    def tracked(block: bytes) -> object:
        return [tracker.handle(m, 0.0) for m in tracker_codec.receive_data(block)]

    rows = [
        time_each("floor: split lines", floor_split, blocks),
        time_each("codec", codec.receive_data, blocks),
        time_each("codec + tracker", tracked, blocks),
    ]
    seconds = measure_link(blocks)
    per_event = seconds / len(blocks) * 1e6
    rows.append(Timing("link over TCP (mean)", len(blocks), per_event, per_event))
    report("ami", rows, "floor: split lines", {"calls": CALLS, "events": len(blocks),
                                               "link_events_per_s": round(len(blocks) / seconds)})  # fmt: skip
    print(f"{len(blocks)} AMI events of {CALLS} calls; the link took {len(blocks) / seconds:,.0f} events/s")


if __name__ == "__main__":
    main()
