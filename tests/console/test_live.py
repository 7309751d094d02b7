"""The push side's queues: a lagging console is cut off cleanly and resumes without a gap; batched frames
(console.live rule 5) carry the same messages; a console that stops reading is cut after STALL_S."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from console import app, live
from console.live import Outbox, pump
from tests.console.test_api import auth, client, journal_head, token

__all__ = ["client"]  # the fixture, shared with test_api


async def test_an_overflowing_outbox_ends_the_stream_without_sending_a_partial_backlog() -> None:
    outbox = Outbox(maxsize=3)
    for seq in (11, 12, 13, 14):
        outbox.put(seq, f"entry {seq}")
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    last = await pump(outbox, send, after=10)
    assert (sent, last) == ([], 10)  # nothing half-sent: the console resumes after 10 and misses nothing
    outbox.put(15, "entry 15")  # a lagging outbox takes no more
    assert outbox.queue.qsize() == 0


async def test_a_batched_pump_sends_what_is_queued_as_one_array_in_order_and_skips_repeats() -> None:
    outbox = Outbox(maxsize=100)
    for seq in (9, 10, 11, 0, 12, 12, 13):  # 9 and 10 were sent before; 0 is a status message; 12 comes twice
        outbox.put(seq, f'{{"seq":{seq}}}')
    outbox.queue.put_nowait(None)
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    last = await pump(outbox, send, after=10, batch=True)
    assert sent == ['[{"seq":11},{"seq":0},{"seq":12},{"seq":13}]']
    assert json.loads(sent[0]) == [{"seq": 11}, {"seq": 0}, {"seq": 12}, {"seq": 13}]
    assert last == 13


async def test_a_frame_is_bounded_and_the_next_takes_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "BATCH_MESSAGES", 3)
    outbox = Outbox(maxsize=100)
    for seq in range(1, 8):
        outbox.put(seq, str(seq))
    outbox.queue.put_nowait(None)
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    assert await pump(outbox, send, batch=True) == 7
    assert sent == ["[1,2,3]", "[4,5,6]", "[7]"]
    monkeypatch.setattr(live, "BATCH_CHARS", 4)
    assert list(live.frames(["1", "22", "333", "4"])) == ["[1,22,333]", "[4]"]


async def test_a_lagging_batched_console_gets_nothing_more_and_resumes_from_its_last_frame() -> None:
    outbox = Outbox(maxsize=3)
    outbox.put(11, "11")
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)
        for seq in (12, 13, 14, 15):  # while the frame goes out the queue overflows
            outbox.put(seq, str(seq))

    assert await pump(outbox, send, after=10, batch=True) == 11
    assert sent == ["[11]"]


async def test_a_console_that_takes_no_frame_for_stall_s_is_cut_and_one_that_reads_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app, "STALL_S", 0.05)
    taken: list[str] = []
    reading = asyncio.Event()
    reading.set()

    class Socket:
        async def send_text(self, text: str) -> None:
            await reading.wait()
            await asyncio.sleep(0.01)
            taken.append(text)

    send = app._sender(Socket())  # type: ignore[arg-type]
    for n in range(10):  # a reader: each frame taken in 10 ms, 100 ms of sends in all, more than STALL_S
        await send(str(n))
    assert len(taken) == 10

    outbox = Outbox(maxsize=100)
    outbox.put(1, "1")
    reading.clear()  # it stops reading
    with pytest.raises(app.Stalled):
        await pump(outbox, send, batch=True)
    assert len(taken) == 10


async def test_a_send_cancelled_from_outside_is_not_a_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "STALL_S", 0.05)

    class Socket:
        async def send_text(self, text: str) -> None:
            await asyncio.Event().wait()

    send = app._sender(Socket())  # type: ignore[arg-type]
    sending = asyncio.create_task(send("1"))
    await asyncio.sleep(0)
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    with pytest.raises(app.Stalled):  # the next send is timed afresh
        await send("2")


def test_a_batched_console_gets_the_same_messages_in_arrays_live_and_on_catch_up(client: TestClient) -> None:
    admin = token(client)
    start = journal_head(client, admin)

    def raise_alarm() -> None:
        assert client.post("/api/alarms", json={"elder_id": "e1", "alarm_type": "test"}, headers=auth(admin)).is_success

    with (
        client.websocket_connect(f"/ws/console?token={admin}&after={start}") as single,
        client.websocket_connect(f"/ws/console?token={admin}&after={start}&batch=1") as batched,
    ):
        raise_alarm()
        head = journal_head(client, admin)
        one_by_one: list[dict[str, Any]] = []
        while not one_by_one or one_by_one[-1]["seq"] < head:
            one_by_one.append(single.receive_json())
        in_arrays: list[dict[str, Any]] = []
        while not in_arrays or in_arrays[-1]["seq"] < head:
            frame = batched.receive_json()
            assert isinstance(frame, list) and frame
            in_arrays.extend(frame)
    assert in_arrays == one_by_one and "incident.opened" in [m["kind"] for m in in_arrays]

    middle = in_arrays[len(in_arrays) // 2]["seq"]
    raise_alarm()  # while nobody is connected
    head = journal_head(client, admin)
    with client.websocket_connect(f"/ws/console?token={admin}&after={middle}&batch=1") as resumed:
        caught = resumed.receive_json()
    assert isinstance(caught, list)  # the catch-up in one frame (perhaps with the resume's own read-on-record)
    assert [m["seq"] for m in caught][: head - middle] == list(range(middle + 1, head + 1))


async def test_a_catch_up_ends_at_the_head_it_started_from_while_entries_keep_coming() -> None:
    """Under a steady flow of alarms every read of the journal finds new entries: a catch-up reading on until a
    read comes back empty would chase the head as long as they came (and read each entry twice). It stops at
    ``upto``, the durable head when the console registered; the rest comes through its outbox."""

    class Growing:
        def __init__(self) -> None:
            self.head, self.reads = 20, 0

        async def read(self, after: int, limit: int) -> list[Any]:
            self.reads += 1
            self.head += 3  # committed meanwhile
            return [_Entry(seq) for seq in range(after + 1, min(self.head, after + limit) + 1)]

    journal = Growing()
    views = SimpleNamespace(entry_scope=lambda entry: None)
    core = SimpleNamespace(journal=journal, views=views, clock=SimpleNamespace(now=lambda: 0.0))
    who = SimpleNamespace(reach=SimpleNamespace(sees=lambda placed: True), expires_at=1e12)
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    last = await app._catch_up(None, send, core, who, 10, 20, None)  # type: ignore[arg-type]
    assert last == 20 and [json.loads(text)["seq"] for text in sent] == list(range(11, 21))
    assert journal.reads == 1


class _Entry:
    def __init__(self, seq: int) -> None:
        self.seq = seq

    def wire(self) -> str:
        return json.dumps({"seq": self.seq})
