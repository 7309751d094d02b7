"""Identity hygiene for the registry: the resident identity number, and finding one person registered twice.

What it owns
    The 18-character resident identity number (公民身份号码, GB 11643-1999): its parts (region, birth date,
    sequence, check character), its ISO 7064 MOD 11-2 check character, and a written form to compare by. And
    the search for registry records that are probably one person (:func:`find_duplicates`), with the evidence
    for each pair, for an operator to confirm and merge; and the households behind shared landlines
    (:func:`households`). Sans-I/O: plain values in, plain values out; the registry and the pages call it.

Rules
    1. A resident identity number is 17 digits and a check character (a digit or X); the 17 digits carry the
       region (6), the birth date (8, a real date, not after today) and a sequence (3, odd for men); the check
       character is ISO 7064 MOD 11-2 of the 17. Spaces and a lower-case x are forgiven; full-width digits too.
    2. Two records are the same person when they carry the same resident identity number, or (neither number
       known to differ) the same name and birth date, or the same name and phone. Names compare after NFKC
       (full-width to half-width), without spaces and middle dots. A birth date missing on a record is taken
       from its identity number.
    3. A shared phone alone is a household, not a duplicate: a couple on one landline are two people.
    4. Every pair is reported once, with every reason that holds, lower key first.

Never
    Never merge anything here: a duplicate is a proposal; merging is the registry's, journaled.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from itertools import combinations
from typing import Literal

#: ISO 7064 MOD 11-2 weights of the 17 digits (2^(17-i) mod 11), and the check character of each remainder
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"

Reason = Literal["resident_id", "name_birth", "name_phone"]
#: the reasons in the order they are reported
REASONS: tuple[Reason, ...] = ("resident_id", "name_birth", "name_phone")


class ResidentIdError(ValueError):
    """Not a valid resident identity number; ``reason`` says which part is wrong (for the page's words)."""

    def __init__(self, reason: Literal["length", "digits", "birth_date", "check"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ResidentId:
    number: str  # the normal written form: 17 digits and the check character, X upper case
    region: str
    birth_date: date
    male: bool


def check_character(first17: str) -> str:
    """The check character of the first 17 digits (ISO 7064 MOD 11-2)."""
    if len(first17) != 17 or not first17.isdigit() or not first17.isascii():
        raise ResidentIdError("digits", "the check character is computed from 17 digits")
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def normal_id(text: str) -> str:
    """The written form numbers are compared by: half-width, no spaces, X upper case (not checked)."""
    return "".join(unicodedata.normalize("NFKC", text).split()).upper()


def parse_resident_id(text: str, *, today: date | None = None) -> ResidentId:
    """Check a resident identity number (rule 1) and return its parts; raises :class:`ResidentIdError`."""
    number = normal_id(text)
    if len(number) != 18:
        raise ResidentIdError("length", f"a resident identity number has 18 characters, not {len(number)}")
    body, check = number[:17], number[17]
    if not (body.isascii() and body.isdigit()) or not (check == "X" or (check.isascii() and check.isdigit())):
        raise ResidentIdError("digits", "a resident identity number is 17 digits and a digit or X")
    try:
        born = date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        raise ResidentIdError("birth_date", f"{body[6:14]} is not a date") from None
    if today is not None and born > today:
        raise ResidentIdError("birth_date", f"born {born.isoformat()}, after today")
    if check_character(body) != check:
        raise ResidentIdError("check", "the check character does not match: a digit is mistyped")
    return ResidentId(number, body[:6], born, int(body[16]) % 2 == 1)


@dataclass(frozen=True, slots=True)
class Person:
    """What identity hygiene reads of a registry record."""

    key: str  # the elder's id
    name: str
    birth_date: date | None = None
    phone: str | None = None
    resident_id: str | None = None


@dataclass(frozen=True, slots=True)
class Duplicate:
    first: str
    second: str
    reasons: tuple[Reason, ...]


def name_key(name: str) -> str:
    """A name as names are compared (rule 2): NFKC, no spaces, no middle dots."""
    folded = unicodedata.normalize("NFKC", name)
    return "".join(ch for ch in folded if not ch.isspace() and ch not in "·•・.")


def _digits(phone: str | None) -> str:
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", phone or "") if ch.isdigit())
    return digits[2:] if digits.startswith("86") and len(digits) == 13 else digits


def _number(person: Person) -> ResidentId | None:
    if not person.resident_id:
        return None
    try:
        return parse_resident_id(person.resident_id)
    except ResidentIdError:
        return None  # a mistyped number proves nothing either way


#: a group of records that agree on one reason: (reason, name or number, birth date or phone)
GroupKey = tuple[Reason, str, str]


def identity_keys(person: Person) -> tuple[str | None, tuple[GroupKey, ...]]:
    """A record's valid resident identity number (normal form, or None) and the groups it belongs to (rule 2):
    by number, by name and birth date, by name and phone. Two records sharing a group are one person unless
    both carry valid numbers that differ."""
    number = _number(person)
    name = name_key(person.name)
    born = person.birth_date or (number.birth_date if number else None)
    phone = _digits(person.phone)
    keys: list[GroupKey] = []
    if number is not None:
        keys.append(("resident_id", number.number, ""))
    if name and born is not None:
        keys.append(("name_birth", name, born.isoformat()))
    if name and phone:
        keys.append(("name_phone", name, phone))
    return (number.number if number else None), tuple(keys)


def find_duplicates(people: Iterable[Person]) -> list[Duplicate]:
    """Pairs of records that are probably one person (rules 2-4), ordered by their keys. Linear in the records
    plus the pairs inside each group: records are grouped by number, by name and birth date, by name and phone."""
    groups: dict[GroupKey, list[str]] = defaultdict(list)
    numbers: dict[str, str] = {}
    for person in people:
        number, groups_of = identity_keys(person)
        if number is not None:
            numbers[person.key] = number
        for group in groups_of:
            groups[group].append(person.key)
    found: dict[tuple[str, str], set[Reason]] = defaultdict(set)
    for (reason, _, _), keys in groups.items():
        for a, b in combinations(sorted(set(keys)), 2):
            if reason != "resident_id" and a in numbers and b in numbers and numbers[a] != numbers[b]:
                continue  # two different valid numbers: two people who share a name (and a day, or a phone)
            found[(a, b)].add(reason)
    return [Duplicate(a, b, tuple(r for r in REASONS if r in reasons)) for (a, b), reasons in sorted(found.items())]


def households(people: Iterable[Person]) -> dict[str, list[str]]:
    """Phones (digits) shared by more than one record, with the records' keys in order: a landline rings for
    every elder of the household, and the operator picks who is calling (rule 3)."""
    by_phone: dict[str, list[str]] = defaultdict(list)
    for person in people:
        if phone := _digits(person.phone):
            by_phone[phone].append(person.key)
    return {phone: sorted(keys) for phone, keys in by_phone.items() if len(set(keys)) > 1}
