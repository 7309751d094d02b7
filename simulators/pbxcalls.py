"""The demo's hotline calls placed on the simulated PBX (simulators.pbx), which the server follows over AMI.

A caller (an elder from their own phone, or someone else about them: simulators.scripts) dials the hotline; the
PBX puts the call in the queue and an operator's phone answers it, or nobody does. The server learns of all of
it from the PBX, as it would from a real Asterisk: nothing here posts to the server.

    1. Whose phone answers is chosen once the call has arrived, by its call id (``pbx-<Linkedid>``, the id the
       server's PBX link gives it), with the bot's rule (simulators.bot.left_for_people): a call left for the
       people rings the person's extension, the others the bot's, so the bot classifies exactly the calls it
       answered.
    2. The script goes on the switchboard under that call id before any phone rings, so the bot can listen.
    3. Most calls are answered; some callers give up in the queue, some calls are transferred from the person to
       the street's operator, and a few ring an extension directly and nobody answers: the supervisor's figures
       have something to show.
    4. A desk phone takes one call at a time, as a queue rings only a free agent: a caller whose desk is on a
       call waits in the queue until it is free (so the person's desk is free between calls, and their 拨打
       is not refused as busy all the time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from simulators.api import pause
from simulators.bot import left_for_people
from simulators.pbx import Pbx
from simulators.scripts import SWITCHBOARD, Elder, Switchboard
from simulators.traffic import HotlineCall

log = logging.getLogger(__name__)

#: flow -> share of the calls
FLOWS = {"answered": 0.80, "abandoned": 0.08, "transferred": 0.08, "missed": 0.04}
#: seconds a step takes: a caller waiting in the queue, the phone ringing; a conversation
STEP_S = (1.5, 6.0)
TALK_S = (20.0, 90.0)
UNCHOSEN = "{unchosen}"  # the extension a call rings before rule 1 chose it
#: the steps of a flow that ring an extension (the extension is the step's argument)
RINGS_A_DESK = frozenset({"ring_agent", "ring_extension"})


@dataclass(slots=True)
class PbxHotline:
    """Rings the hotline on ``pbx``: the person's extension (``person``), the bot's (``bot``), and the street
    operator's, whom the person transfers some calls to (``street``)."""

    pbx: Pbx
    person: str
    bot: str
    street: str
    leave_calls: float
    switchboard: Switchboard = field(default_factory=lambda: SWITCHBOARD)  # the bot's, in the same process
    step_s: tuple[float, float] = STEP_S
    talk_s: tuple[float, float] = TALK_S
    _desks: dict[str, asyncio.Lock] = field(default_factory=dict)  # an extension's phone: one call at a time

    async def ring(self, rng: random.Random, elders: Sequence[Elder], per_min: float, stop: asyncio.Event) -> None:
        calls: set[asyncio.Task[str]] = set()
        while not await pause(stop, rng.expovariate(per_min / 60.0)):
            task = asyncio.create_task(self.call(rng, elders, stop))
            calls.add(task)
            task.add_done_callback(calls.discard)
        for task in calls:
            task.cancel()
        await asyncio.gather(*calls, return_exceptions=True)

    async def call(self, rng: random.Random, elders: Sequence[Elder], stop: asyncio.Event) -> str:
        """Place one call and play it to its end (or until ``stop``); its call id."""
        drawn = HotlineCall.draw(rng, elders, "", drill=False)
        flow = rng.choices(list(FLOWS), weights=list(FLOWS.values()))[0]
        play = self.pbx.call(flow, caller=drawn.caller, extension=UNCHOSEN, to=self.street)
        play.step()  # the caller arrives: the server pops the caller
        call_id = f"pbx-{play.linkedid}"
        self.switchboard.put(call_id, drawn.script)  # rule 2
        mine = flow == "transferred" or left_for_people(call_id, self.leave_calls)
        play.reassign(UNCHOSEN, self.person if mine else self.bot)  # rule 1
        log.info("pbx call %s from %s: %s, rings %s", call_id, drawn.caller, flow, self.person if mine else self.bot)
        async with contextlib.AsyncExitStack() as desks:
            while not play.done:
                talking = play.next_op == "caller_hangs_up" and flow != "missed" and flow != "abandoned"
                if await pause(stop, rng.uniform(*(self.talk_s if talking else self.step_s))):
                    break
                step = play.steps[play.position]
                if step[0] in RINGS_A_DESK:  # rule 4: the caller waits in the queue while that desk is on a call
                    await desks.enter_async_context(self._desks.setdefault(step[1], asyncio.Lock()))
                play.step()
        return call_id
