"""A tiny progress bar on stderr: redrawn in place on a terminal, a line every tenth otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, total: float, *, stream: TextIO | None = None, width: int = 28) -> None:
        self.label, self.total, self.width = label, max(total, 1e-9), width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self._last_draw = 0.0
        self._last_tenth = -1

    def update(self, done: float, note: str = "") -> None:
        fraction = min(1.0, max(0.0, done / self.total))
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw < 0.2 and fraction < 1.0:
                return
            self._last_draw = now
            self.stream.write(f"\r{self._line(fraction, note)}\x1b[K")
        else:
            tenth = int(fraction * 10)
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.stream.write(self._line(fraction, note) + "\n")
        self.stream.flush()

    def _line(self, fraction: float, note: str) -> str:
        filled = round(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        return f"{self.label} [{bar}] {fraction:4.0%} {note}"

    def finish(self, note: str = "") -> None:
        self._last_draw, self._last_tenth = 0.0, -1
        self.update(self.total, note)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
