"""The push side's queues: a lagging console is cut off cleanly and resumes without a gap."""

from __future__ import annotations

from console.live import Outbox, pump


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
