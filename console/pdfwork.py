"""Where the console's documents are made: a few worker processes, and the slots that admit a request to them.

What it owns
    :func:`pdf_slot`, the admission of one document (an elder's file for a case conference, a period report's
    PDF or workbook): at most :data:`PDF_AT_ONCE` at once, the rest refused at once with 429 ``pdf_busy``; and
    :func:`in_worker`, which runs a pure renderer (a dict in, bytes out) in one of the worker processes.

Rules
    1. Neither the event loop, which answers alarms and devices, nor a thread holding the interpreter's lock
       beside it renders a document (a thread did: 30 PDFs held SOS answers ~1 s); a worker process does.
    2. Refused, never queued: a queue of PDFs would only grow while people press again. A request holds its
       slot for all of its work, reading the journal too (30 files read at once also held alarms).
    3. The workers start at the first PDF, with forkserver: never a fork of the server's threads.
    4. A worker leaves on its own once the server is gone. A server killed with SIGKILL shuts no pool down, and a
       worker is the forkserver's child, not the server's: it waited for work for ever (about 160 MB each, and
       the forkserver with it), one more set for every restart after a kill.

Never
    Never a second pool: every PDF and workbook of the console is made here.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager

from console.errors import Throttled

PDF_AT_ONCE = 2
RETRY_AFTER_S = 5
#: how often a worker looks whether the server that started it still runs (rule 4)
WATCH_S = 1.0
SLOTS = asyncio.Semaphore(PDF_AT_ONCE)
_workers: ProcessPoolExecutor | None = None


def _pool() -> ProcessPoolExecutor:
    global _workers
    if _workers is None:
        _workers = ProcessPoolExecutor(PDF_AT_ONCE, mp_context=multiprocessing.get_context("forkserver"),
                                       initializer=leave_with, initargs=(os.getpid(),))  # fmt: skip
    return _workers


def leave_with(server: int) -> None:
    """A worker's initializer (rule 4): a thread that ends the worker once the process ``server`` is gone."""
    threading.Thread(target=_watch, args=(server,), name="anxin-document-watch", daemon=True).start()


def _watch(server: int) -> None:
    while True:
        time.sleep(WATCH_S)
        try:
            os.kill(server, 0)  # no signal: only whether it still exists
        except (ProcessLookupError, PermissionError):  # gone (or its number taken by another user's process)
            os.kill(os.getpid(), signal.SIGTERM)  # nothing of the worker's is worth keeping: its asker is gone
            return


@asynccontextmanager
async def pdf_slot(what: str) -> AsyncIterator[None]:
    """One of the slots for the whole of a PDF's work, or 429 ``pdf_busy`` at once (``what`` is being made)."""
    if SLOTS.locked():
        raise Throttled(f"other {what} are being made; try again in a few seconds", retry_after=RETRY_AFTER_S,
                        code="pdf_busy")  # fmt: skip
    async with SLOTS:
        yield


async def in_worker(render: Callable[[], bytes]) -> bytes:
    """The bytes ``render`` makes (a picklable callable: a module's function with its arguments bound)."""
    return await asyncio.get_running_loop().run_in_executor(_pool(), render)
