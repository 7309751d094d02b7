"""A reliability case's verdict and figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pass", "FAIL", "not yet", "skipped"]


@dataclass
class Result:
    """One case: its verdict, its figures (printed in order), and a line saying why when it is not a pass."""

    case: str
    status: Status = "pass"
    figures: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def fail(self, why: str) -> None:
        self.status = "FAIL"
        self.note = f"{self.note}; {why}" if self.note else why

    def not_yet(self, why: str) -> None:
        if self.status != "FAIL":
            self.status = "not yet"
        self.note = f"{self.note}; {why}" if self.note else why
