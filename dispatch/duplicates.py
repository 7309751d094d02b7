"""The registry's identity index: which records already held are probably the person being saved.

What it owns
    An in-memory index of the registry's people by the groups of :func:`dispatch.identity.identity_keys` (by
    resident identity number, by name and birth date, by name and phone), kept in step record by record
    (:meth:`DuplicateIndex.put`, :meth:`DuplicateIndex.remove`), and the question asked before a record is
    saved: :meth:`DuplicateIndex.matches`. Sans-I/O: the directory holds one for the running server, the
    importer builds one from the store when it runs alone.

Rules
    1. The same rules as :func:`dispatch.identity.find_duplicates`: one person when the same resident identity
       number, or the same name and birth date, or the same name and phone, unless both records carry valid
       numbers that differ. A shared phone alone is a household, never a match.
    2. A lookup costs the size of the groups it falls in, not the registry's: a dict lookup per group.
    3. A record never matches itself (its own key): an edit is compared with the others only.
    4. Matches come ordered by key, each with every reason that holds, in :data:`~dispatch.identity.REASONS`
       order.

Never
    Never decide anything: a match is a proposal for a person (to confirm as distinct, or to merge).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dispatch.identity import REASONS, GroupKey, Person, Reason, identity_keys
from dispatch.registry import Elder


@dataclass(frozen=True, slots=True)
class Match:
    """A record held that is probably the person asked about, and why."""

    key: str
    reasons: tuple[Reason, ...]


def person_of(elder: Elder) -> Person:
    """What identity hygiene reads of an elder's record."""
    return Person(elder.elder_id, elder.name, elder.birth_date, elder.phone, elder.resident_id)


class DuplicateIndex:
    def __init__(self) -> None:
        self._people: dict[str, Person] = {}
        self._numbers: dict[str, str] = {}  # key -> its valid resident identity number
        self._keys: dict[str, tuple[GroupKey, ...]] = {}
        self._groups: dict[GroupKey, set[str]] = {}

    @classmethod
    def of(cls, people: Iterable[Person]) -> DuplicateIndex:
        index = cls()
        for person in people:
            index.put(person)
        return index

    def __len__(self) -> int:
        return len(self._people)

    def __contains__(self, key: object) -> bool:
        return key in self._people

    def get(self, key: str) -> Person | None:
        return self._people.get(key)

    def put(self, person: Person) -> None:
        """Hold this record (replacing what was held under its key)."""
        self.remove(person.key)
        number, keys = identity_keys(person)
        self._people[person.key] = person
        self._keys[person.key] = keys
        if number is not None:
            self._numbers[person.key] = number
        for group in keys:
            self._groups.setdefault(group, set()).add(person.key)

    def remove(self, key: str) -> None:
        """Forget a record (a no-op for one not held)."""
        if self._people.pop(key, None) is None:
            return
        self._numbers.pop(key, None)
        for group in self._keys.pop(key):
            members = self._groups[group]
            members.discard(key)
            if not members:
                del self._groups[group]

    def matches(self, person: Person) -> list[Match]:
        """The records held, other than ``person.key``, that are probably this person (rules 1, 3, 4)."""
        number, keys = identity_keys(person)
        found: dict[str, set[Reason]] = {}
        for group in keys:
            reason = group[0]
            for other in self._groups.get(group, ()):
                if other == person.key:
                    continue
                theirs = self._numbers.get(other)
                if reason != "resident_id" and number is not None and theirs is not None and theirs != number:
                    continue  # two different valid numbers: namesakes
                found.setdefault(other, set()).add(reason)
        return [Match(key, tuple(r for r in REASONS if r in found[key])) for key in sorted(found)]


def identity_changed(old: Person, new: Person) -> bool:
    """Whether an edit changes what identity is judged by (name, birth date, phone, resident identity number)."""
    return identity_keys(old) != identity_keys(new)
