"""The exceptions of the dispatch core, one tree.

    AnxinError
    ├── InvalidInput              the caller sent something the domain cannot accept (maps to HTTP 4xx)
    │   ├── NotFound              an elder, device, responder, incident or assignment that does not exist
    │   ├── IllegalTransition     a state machine was asked for a move its table does not allow
    │   └── Conflict              the request is valid but clashes with current state (already offered, ...)
    ├── JournalError              the service record cannot be written or read
    │   └── ChainBroken           verification found an entry whose hash does not follow from the previous one
    └── ConfigError               a setting or data folder is unusable

"The caller was wrong" (InvalidInput and below) is kept apart from "we are broken" (JournalError): the first
gets a clear answer and nothing is written; the second stops intake rather than acknowledge what is not durable.
"""

from __future__ import annotations


class AnxinError(Exception):
    """Base of every error raised on purpose by the dispatch core."""


class InvalidInput(AnxinError):
    """The request cannot be accepted. ``field`` names the offending input when there is one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(InvalidInput):
    """A referenced entity does not exist."""


class IllegalTransition(InvalidInput):
    """A state machine was asked for a transition its table does not allow."""

    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(f"{machine}: cannot {event} when {state}")
        self.machine = machine
        self.state = state
        self.event = event


class Conflict(InvalidInput):
    """The request clashes with the current state."""


class JournalError(AnxinError):
    """The journal cannot be written or read."""


class ChainBroken(JournalError):
    """An entry's hash does not follow from the previous entry."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"journal chain broken at seq {seq}: {reason}")
        self.seq = seq


class ConfigError(AnxinError):
    """A setting or the data folder is unusable."""
