"""The real server under a clock the test moves: ``python -m tests.clocked --data D --http-port P --offset-file F``.

Test-only. The clock is the system's plus an offset in seconds read from ``F`` (re-read whenever the file
changes; no file: no offset), so a test writes ``86400`` and the server lives "the next day" from then on, while
its timers keep running in real time. It is the whole server of ``anxin serve`` (``anxin.server.make_server``:
the same app, settings, descriptor budget and uvicorn setup) with the clock handed to ``app_for``; production
code knows nothing of it. The HTTP ``Date`` header comes from the same clock, so the pages (which set their
clocks by it, console/static/common.js) see the same day as the server.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable, MutableMapping
from email.utils import formatdate
from pathlib import Path
from typing import Any

from anxin.cli import check_data_folder, settings_from
from anxin.server import app_for, make_server
from dispatch.clock import Clock

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class OffsetClock:
    """System time plus the offset written in a file (seconds, a float), read again when the file changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: tuple[int, int] | None = None
        self._offset = 0.0

    def now(self) -> float:
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            return time.time() + self._offset
        if (stat.st_mtime_ns, stat.st_size) != self._seen:
            self._seen = (stat.st_mtime_ns, stat.st_size)
            text = self._path.read_text(encoding="utf-8").strip()
            self._offset = float(text) if text else 0.0
        return time.time() + self._offset


class ClockDate:
    """An ASGI wrapper that writes each HTTP response's ``Date`` from the clock (uvicorn's own is turned off)."""

    def __init__(self, app: App, clock: Clock) -> None:
        self._app = app
        self._clock = clock

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                headers.append((b"date", formatdate(self._clock.now(), usegmt=True).encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, dated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--offset-file", type=Path, required=True)
    args = parser.parse_args()
    settings = settings_from(argparse.Namespace(data=args.data, http_port=args.http_port, host=None, config=None))
    check_data_folder(settings.data)
    clock = OffsetClock(args.offset_file)
    server = make_server(settings)
    server.config.app = ClockDate(app_for(settings, clock), clock)
    server.config.date_header = False
    server.run()


if __name__ == "__main__":
    main()
