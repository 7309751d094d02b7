"""Scopes: which part of the network a person may see, and what of it.

What it owns
    :class:`Reach`, the read side's question "may this person see this?". The network is the three-level
    path ``district/street/community`` (区/街道/社区) of the registry; a scope is a prefix of it (a district, a
    street, a community) or ``*``, the whole centre. Everything personal has a *place* (a community path) and
    a *kind of content*:

    - an elder's record, their incidents, calls, positions and health readings are the elder's community's;
    - an incident of a caller nobody knows is placed where the operator placed it (the nearest registered
      community) or, before that, by the hotline line it came in on (``Settings.lines``); with neither it is
      the whole centre's;
    - a responder's duty and position are their home community's; their offers and jobs are the incident's
      (the elder's scope owns an incident; the responder sees only their job, on their phone);
    - accounts, logins and imports are the whole centre's.

Rules
    1. No place means the whole centre's: only a ``*`` scope sees it. An unknown place is never shown.
    2. Health readings go only to those who read health (supervisors); reads-on-record (audit) only to those who
       audit (supervisors and admins). Operators see the alarm, not the chart.
    3. What a person took on stays theirs: an incident they acknowledged (opened by hand, or answered as a
       call) and a call they answered stay in their sight wherever the caller turns out to be, so placing a
       stranger in the next street never takes the incident out of the hands of the operator on the phone.
    4. What concerns a whole part of the network is seen by those who hold any part of it too (``shared``): a
       grouped technical incident (a power cut) lies in its street, and each community's operator sees it, as
       they saw each of their devices' incidents before it was grouped. It names no person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EVERYWHERE = "*"

#: what an entry or a record holds, beyond its place: ordinary dispatch work, health readings, audit records
Content = Literal["work", "health", "audit"]


def check_scope(value: str) -> str:
    """A scope as stored: ``*`` or a district, street or community path (1 to 3 parts, none empty)."""
    value = value.strip()
    if value == EVERYWHERE:
        return value
    parts = [part.strip() for part in value.split("/")]
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise ValueError("a scope is * or a path district[/street[/community]]")
    return "/".join(parts)


@dataclass(frozen=True, slots=True)
class Placed:
    """Where something lies and what it holds: its community path (None: the whole centre's), its content,
    and who took it on (the actor who acknowledged the incident or answered the call; rule 3)."""

    place: str | None
    content: Content = "work"
    owner: str | None = None
    shared: bool = False  # rule 4: those who hold a part of the place see it too


@dataclass(frozen=True, slots=True)
class Reach:
    """What one person may see: the scopes they hold, the kinds of content their role reads, and who they are
    (the actor the journal names them by)."""

    scopes: tuple[str, ...]
    contents: frozenset[Content] = frozenset({"work"})
    actor: str = ""

    @property
    def everywhere(self) -> bool:
        return EVERYWHERE in self.scopes

    def covers(self, place: str | None) -> bool:
        """Whether a thing placed at ``place`` (a community path; None: the whole centre's) is in reach."""
        if self.everywhere:
            return True
        if not place:
            return False
        return any(place == scope or place.startswith(scope + "/") for scope in self.scopes)

    def sees(self, placed: Placed) -> bool:
        """Whether this person may see a thing: its content is theirs to read, and its place is in reach or they
        took it on (rule 3)."""
        if placed.content not in self.contents:
            return False
        if self.covers(placed.place) or (bool(self.actor) and placed.owner == self.actor):
            return True
        inside = f"{placed.place}/"
        return placed.shared and bool(placed.place) and any(scope.startswith(inside) for scope in self.scopes)


#: the whole centre, everything: for the process itself (the demo bot, importers), never a person's default
ALL = Reach((EVERYWHERE,), frozenset({"work", "health", "audit"}))
