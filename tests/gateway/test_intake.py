"""The intake's priority: under a backlog of routine frames, an SOS is journaled first."""

from __future__ import annotations

import asyncio

from dispatch.core import Core
from gateway.events import Decoded, DeviceEvent
from gateway.intake import Intake


def health(n: int) -> Decoded:
    event = DeviceEvent("watch", "8800000015", "health", "WATCH:bphrt", detail={"heart_rate": 60 + n})
    return Decoded(events=(event,))


SOS = Decoded(events=(DeviceEvent("sia-dc09", "1234", "alarm", "CID:1101", alarm_type="sos", dedup="1234:1"),))


async def test_sos_overtakes_a_backlog_of_routine_frames(core: Core) -> None:
    intake = Intake(core.engine)
    head = core.journal.head_seq
    routine = [asyncio.create_task(intake.process(health(n))) for n in range(200)]
    await asyncio.sleep(0)  # the backlog is queued before the alarm arrives
    urgent = asyncio.create_task(intake.process(SOS))
    await asyncio.sleep(0)
    assert intake.waiting() == 201
    intake.start()
    seqs = await asyncio.gather(urgent, *routine)
    await core.journal.durable(max(seqs))
    kinds = [e.kind for e in await core.journal.read(head, 1000)]
    assert kinds[0] == "incident.opened"  # first in the record, though it came last
    assert kinds.count("elder.health") == 200
    assert intake.counters == {"urgent": 1, "routine": 200}
    await intake.stop()


async def test_a_bounded_queue_makes_senders_wait(core: Core) -> None:
    intake = Intake(core.engine, maxsize=5)
    senders = [asyncio.create_task(intake.process(health(n))) for n in range(8)]
    await asyncio.sleep(0)
    assert intake.waiting() == 5  # three senders are held back (a TCP transport stops reading)
    intake.start()
    await asyncio.gather(*senders)
    await intake.stop()
