"""Elder search: the operator's "find the caller" box, over every elder held in memory.

Theory of operation
-------------------
An operator types what the caller gives: a name (王秀英), its pinyin initials (``wxy``) or syllables
(``wangxiu``), a phone number or its last digits, a family contact's number, part of the address, the
elder id. :class:`ElderSearch` answers with at most ``limit`` :class:`Hit`, best first, in a few hundred
microseconds for 100 000 elders, because no query walks the elders in Python:

* Each searchable field is a **column** (:class:`TextColumn`, :class:`DigitColumn`): the values of every
  elder joined into one string, ``"\\0v0\\0v1\\0...\\0"``, in *rank order*, the order of ties (name, then
  id). ``str.find`` scans it at C speed; ``bisect`` over the array of value starts turns a position into
  the value, and so the elder, it belongs to. Because the string is in rank order, the first ``limit``
  distinct elders a scan meets are the best ``limit`` of that way of matching, and the scan stops there.
* A text column also keeps its values sorted, so "equals q" and "starts with q" are a ``bisect`` range;
  a small range is read directly, a large one (a common surname) is found by the early-stopping scan.
* ``str.find`` skips little in Chinese text or in digits (about a nanosecond a character: a millisecond or
  more for 100 000 addresses), so the name and address columns also keep the positions of every pair of
  characters, and the phone columns of every run of four digits and of the numbers by their last three
  and four digits: "part of an address", "the last 4 digits" check a few hundred candidates, not megabytes.

A query is compared with the fields in the order of :data:`TIERS`, best score first. Each tier returns its
best ``limit`` elders; an elder keeps the first (best) tier that found it; the search stops as soon as
``limit`` elders scored higher than every tier left. An elder truncated from a tier cannot be in the answer:
``limit`` elders ahead of it in that tier score at least as well and come before it in rank order.

Rules
-----
1. The query is NFKC-normalised (full-width digits and letters become ASCII) and stripped; an empty query
   and a one-character ASCII query (too vague for a box that searches as one types) find nothing.
2. What the query looks like decides the fields it is compared with: ASCII letters → pinyin and ids; three
   or more digits (spaces, dashes and a leading ``+86`` allowed) → phones and ids; any other ASCII → ids;
   anything with Chinese → name and address. Digits are not compared with addresses (``501`` would find
   every flat 501).
3. Phones are compared as :func:`~dispatch.registry.normalise_phone` digits; ids case-insensitively; names
   and addresses NFKC-normalised, without spaces.
4. Pinyin is per character, toneless, the first (most common) reading, ``v`` for ü (``lv`` for 吕). A
   surname with a surname reading (曾 zeng, 单 shan, 解 xie, ...) is indexed under both readings.
5. Order: score (:data:`TIERS`), then name, then id. The same index and query always give the same list.

Updates
-------
``put`` and ``remove`` do not rebuild the columns. A changed elder goes to a small *fresh* set, compared
one by one at query time (behind one C-speed ``in`` test each), and its old rank is skipped by the scans.
When more than ``max_pending`` (:data:`MAX_PENDING`) elders have changed, the next search rebuilds the
columns once, so a stream of puts costs at most one rebuild per search, never one per put. A rebuild of
100 000 elders takes a second or two, so the owner should call ``refresh()`` after loading the registry
rather than leave it to the first search. A put that changes no searchable field (medical notes, a
caregiver) costs a comparison and nothing else.

Never
-----
Never walk every elder at query time; never import pypinyin before it is needed (it loads a 45 MB phrase
dictionary on import), and never ask it twice about the same character.
"""

from __future__ import annotations

import functools
import itertools
import re
import sys
import unicodedata
from array import array
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Literal, NamedTuple

from dispatch.registry import Elder, normalise_phone

MatchKind = Literal["id", "phone", "contact_phone", "name", "initials", "address"]
How = Literal["exact", "prefix", "suffix", "substring"]
Part = Literal["id", "digits", "letters", "text"]

MAX_PENDING = 1024
"""Changed elders compared one by one (about 0.2 µs each) before the next search rebuilds the columns."""
_SPARSE = 256
"""A sorted range up to this size (or four times the limit) is read directly rather than scanned for."""
_SEP = "\x00"
_AFTER = "\U0010ffff"
"""Sorts after every character: ``[bisect_left(q), bisect_left(q + _AFTER))`` is the range starting with q."""


@dataclass(frozen=True, slots=True)
class Hit:
    """An elder found: the score of the best way it matched (:data:`TIERS`) and the field that matched
    (``"initials"`` also for full pinyin syllables, the name's other latin spelling)."""

    elder_id: str
    score: int
    matched: MatchKind


@dataclass(frozen=True, slots=True)
class Tier:
    """One way of matching: the query ``part`` compared ``how`` with an elder's ``field``."""

    score: int
    matched: MatchKind
    field: str
    how: How
    part: Part


TIERS: tuple[Tier, ...] = (
    Tier(100, "id", "id_key", "exact", "id"),
    Tier(100, "phone", "phone", "exact", "digits"),
    Tier(90, "contact_phone", "contacts", "exact", "digits"),
    Tier(85, "name", "name", "exact", "text"),
    Tier(80, "name", "name", "prefix", "text"),
    Tier(78, "initials", "initials", "exact", "letters"),
    Tier(75, "initials", "initials", "prefix", "letters"),
    Tier(70, "initials", "pinyin", "prefix", "letters"),  # full syllables: wangxiu → wangxiuying
    Tier(65, "id", "id_key", "prefix", "id"),
    Tier(60, "phone", "phone", "suffix", "digits"),  # the last digits
    Tier(55, "contact_phone", "contacts", "suffix", "digits"),
    Tier(50, "phone", "phone", "substring", "digits"),
    Tier(45, "contact_phone", "contacts", "substring", "digits"),
    Tier(40, "name", "name", "substring", "text"),
    Tier(35, "initials", "initials", "substring", "letters"),
    Tier(30, "address", "address", "prefix", "text"),
    Tier(25, "address", "address", "substring", "text"),
)
"""Every way a query can match, best first. Exact id and own phone first; then the name as typed or as
pinyin; then the last digits of a phone; then any part of a phone, the name, the address."""

_TESTS: dict[How, Callable[[str, str], bool]] = {
    "exact": str.__eq__,
    "prefix": str.startswith,
    "suffix": str.endswith,
    "substring": lambda value, q: q in value,
}

# -- text and pinyin -------------------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")
_PHONE_QUERY = re.compile(r"\+?[0-9][0-9 -]*")
_LETTERS_QUERY = re.compile(r"[A-Za-z][A-Za-z' ]*")

# Surnames read otherwise than the character's most common reading (pypinyin's first).
_SURNAME_READINGS = {
    "曾": "zeng",
    "单": "shan",
    "解": "xie",
    "仇": "qiu",
    "朴": "piao",
    "区": "ou",
    "查": "zha",
    "盖": "ge",
    "乐": "yue",
    "覃": "qin",
    "缪": "miao",
    "翟": "zhai",
    "召": "shao",
    "秘": "bi",
    "种": "chong",
    "员": "yun",
    "句": "gou",
    "便": "pian",
    "薄": "bo",
    "长": "chang",
}


def normalise_text(text: str) -> str:
    """NFKC (full-width digits and letters to ASCII), without white space, NUL or invisible format characters
    (a pasted right-to-left mark, a byte-order mark, a zero-width joiner): the form text is matched on."""
    text = unicodedata.normalize("NFKC", text)
    if _SEP in text:
        text = text.replace(_SEP, "")
    if _INVISIBLE.search(text):
        text = _INVISIBLE.sub("", text)
    return _SPACE.sub("", text) if _SPACE.search(text) else text


def _phone_digits(phone: str) -> str:
    """:func:`normalise_phone`, without its per-character loop for a number that is digits already."""
    return phone if phone.isdigit() and not phone.startswith("86") else normalise_phone(phone)


@functools.cache
def _reading(char: str) -> str:
    """A character's toneless pinyin (its first reading); an ASCII letter lower-cased; otherwise ``""``."""
    if char.isascii():
        return char.lower() if char.isalpha() else ""
    from pypinyin import Style, lazy_pinyin  # here, not at the top: see "Never"

    reading = lazy_pinyin(char, style=Style.NORMAL)[0]
    return reading if reading.isascii() and reading.isalpha() else ""


def name_pinyin(name: str) -> tuple[list[str], list[str]]:
    """The initials and the full toneless pinyin of a name, each with the surname reading first if it has one.

    >>> name_pinyin("王秀英")
    (['wxy'], ['wangxiuying'])
    >>> name_pinyin("曾国华")
    (['zgh', 'cgh'], ['zengguohua', 'cengguohua'])
    """
    readings = [_reading(char) for char in name]
    variants = [readings]
    surname = _SURNAME_READINGS.get(name[:1])
    if surname is not None and readings and surname != readings[0]:
        variants.insert(0, [surname, *readings[1:]])
    initials = ["".join(reading[:1] for reading in variant) for variant in variants]
    full = ["".join(variant) for variant in variants]
    return [v for v in dict.fromkeys(initials) if v], [v for v in dict.fromkeys(full) if v]


# -- one elder as the index sees it ----------------------------------------------------------------------


class _Doc(NamedTuple):
    """An elder's searchable fields, normalised; a field of several values joins them with NUL."""

    elder_id: str
    id_key: str
    name: str
    phone: str
    contacts: str
    initials: str
    pinyin: str
    address: str

    @classmethod
    def of(cls, elder: Elder) -> _Doc:
        name = normalise_text(elder.name)
        initials, full = name_pinyin(name)
        contacts = dict.fromkeys(_phone_digits(contact.phone) for contact in elder.contacts)
        eid = elder.elder_id
        lowered = eid.lower()
        return cls(
            elder_id=eid,
            id_key=eid if lowered == eid else lowered,  # the same object when already lower case
            name=name,
            phone=_phone_digits(elder.phone) if elder.phone else "",
            contacts=_SEP.join(filter(None, contacts)),
            initials=sys.intern(_SEP.join(initials)),
            pinyin=sys.intern(_SEP.join(full)),
            address=normalise_text(elder.address),
        )

    @property
    def key(self) -> tuple[str, str]:
        """The order of ties: name, then id."""
        return (self.name, self.elder_id)

    def values(self, field: str) -> list[str]:
        joined: str = getattr(self, field)
        return [value for value in joined.split(_SEP) if value] if joined else []

    def blob(self) -> str:
        """Every field in one string: a query part not in it matches no tier (a fast first test)."""
        return _SEP.join((self.id_key, self.phone, self.contacts, self.name, self.initials, self.pinyin, self.address))

    def best(self, plan: Sequence[tuple[Tier, str]]) -> Tier | None:
        """The first tier of the plan this elder matches: the brute-force definition the columns agree with."""
        for tier, q in plan:
            test = _TESTS[tier.how]
            if any(test(value, q) for value in self.values(tier.field)):
                return tier
        return None


# -- columns ---------------------------------------------------------------------------------------------


class _Joined:
    """Values of many owners joined into one NUL-separated string, in owner order, for C-speed scans.

    Value ``i`` belongs to ``owners[i]``; owners are non-decreasing; values are non-empty and free of NUL.
    Value ``i`` starts at ``starts[i]``; ``starts[n]`` is the length of the text (a sentinel).

    With ``gram=n``, the column also keeps the positions of every run of ``n`` characters (in text order,
    so in owner order): a query of ``n`` characters or more is then found by checking the places of its
    rarest run, instead of scanning the text. ``str.find`` skips little in Chinese text or digits (about a
    nanosecond a character), so this is what keeps "part of an address" or "part of a phone" fast.
    """

    __slots__ = ("_gram", "_grams", "owners", "starts", "text")

    def __init__(self, owners: Sequence[int], values: Sequence[str], gram: int = 0) -> None:
        self.owners = array("i", owners)
        self.text = _SEP + _SEP.join(values) + _SEP if values else _SEP
        self.starts = array("i", itertools.accumulate((len(value) + 1 for value in values), initial=1))
        self._gram = gram
        self._grams: dict[str, array[int]] = _runs(values, self.starts, gram) if gram else {}

    def __len__(self) -> int:
        return len(self.owners)

    def value(self, entry: int) -> str:
        return self.text[self.starts[entry] : self.starts[entry + 1] - 1]

    def find(self, how: How, q: str, limit: int, skip: Container[int]) -> list[int]:
        """The best ``limit`` owners (in owner order, none in ``skip``) of the values matching ``q`` so."""
        if how == "substring" and self._gram and len(q) >= self._gram:
            return self._containing(q, limit, skip)
        pattern = {"exact": _SEP + q + _SEP, "prefix": _SEP + q, "suffix": q + _SEP, "substring": q}[how]
        return self.scan(pattern, limit, skip)

    def scan(self, pattern: str, limit: int, skip: Container[int]) -> list[int]:
        """The first ``limit`` distinct owners (not in ``skip``) of the values containing ``pattern``.

        ``pattern`` may start and end with NUL to anchor it at a value's start or end.
        """
        text, starts, owners = self.text, self.starts, self.owners
        lead = 1 if pattern.startswith(_SEP) else 0
        found: list[int] = []
        last = -1
        pos = text.find(pattern)
        while pos != -1:
            entry = bisect_right(starts, pos + lead) - 1
            owner = owners[entry]
            if owner != last and owner not in skip:
                found.append(owner)
                if len(found) >= limit:
                    break
            last = owner
            pos = text.find(pattern, starts[entry + 1] - 1)
        return found

    def _containing(self, q: str, limit: int, skip: Container[int]) -> list[int]:
        """As ``scan(q)``, from the places of q's rarest run of ``gram`` characters."""
        n = self._gram
        rarest: array[int] | None = None
        offset = 0
        for k in range(len(q) - n + 1):
            positions = self._grams.get(q[k : k + n])
            if positions is None:
                return []
            if rarest is None or len(positions) < len(rarest):
                rarest, offset = positions, k
        assert rarest is not None
        text, starts, owners = self.text, self.starts, self.owners
        found: list[int] = []
        last = -1
        for position in rarest:
            start = position - offset
            if start < 1 or not text.startswith(q, start):
                continue
            owner = owners[bisect_right(starts, start) - 1]
            if owner != last and owner not in skip:
                found.append(owner)
                if len(found) >= limit:
                    break
            last = owner
        return found


def _runs(values: Sequence[str], starts: Sequence[int], n: int) -> dict[str, array[int]]:
    """The text positions of every run of ``n`` characters of the values, by run, in text order."""
    runs: defaultdict[str, array[int]] = defaultdict(lambda: array("i"))
    for value, start in zip(values, starts, strict=False):
        for k in range(len(value) - n + 1):
            runs[value[k : k + n]].append(start + k)
    return dict(runs)


class TextColumn(_Joined):
    """A joined column that also keeps its values sorted, so exact and prefix matches are a bisect range."""

    __slots__ = ("_sorted", "_sorted_owners")

    def __init__(self, owners: Sequence[int], values: Sequence[str], gram: int = 0) -> None:
        super().__init__(owners, values, gram)
        order = sorted(range(len(values)), key=values.__getitem__)
        self._sorted = [values[i] for i in order]
        self._sorted_owners = array("i", [self.owners[i] for i in order])

    def find(self, how: How, q: str, limit: int, skip: Container[int]) -> list[int]:
        if how == "exact":
            lo = bisect_left(self._sorted, q)
            return self._range(lo, bisect_right(self._sorted, q, lo), _SEP + q + _SEP, limit, skip)
        if how == "prefix":
            lo = bisect_left(self._sorted, q)
            return self._range(lo, bisect_left(self._sorted, q + _AFTER, lo), _SEP + q, limit, skip)
        return super().find(how, q, limit, skip)

    def _range(self, lo: int, hi: int, pattern: str, limit: int, skip: Container[int]) -> list[int]:
        if hi - lo <= max(_SPARSE, 4 * limit):
            return [owner for owner in sorted(set(self._sorted_owners[lo:hi])) if owner not in skip][:limit]
        return self.scan(pattern, limit, skip)  # many match: the rank-ordered scan finds the best soon


class DigitColumn(_Joined):
    """A joined column of digit strings (phones): runs of four digits, and the numbers by their last digits.

    Digits defeat ``str.find``'s skipping, so a whole number and its last digits are looked up among the
    numbers ending in the same three or four digits, and a run of four or more is found from its rarest run
    of four. Three digits anywhere are scanned for: they occur in about one number in a hundred, so the scan
    meets ``limit`` of them early. A query part of fewer than three digits never reaches this column.
    """

    __slots__ = ("_tails",)

    def __init__(self, owners: Sequence[int], values: Sequence[str]) -> None:
        super().__init__(owners, values, gram=4)
        tails: defaultdict[str, array[int]] = defaultdict(lambda: array("i"))
        for entry, value in enumerate(values):
            if len(value) >= 3:
                tails[value[-3:]].append(entry)
            if len(value) >= 4:
                tails[value[-4:]].append(entry)
        self._tails = dict(tails)

    def find(self, how: How, q: str, limit: int, skip: Container[int]) -> list[int]:
        if len(q) < 3:
            raise ValueError("a digit column is searched with three digits or more")
        if how in ("exact", "suffix"):
            return self._ending(q, how == "exact", limit, skip)
        return super().find(how, q, limit, skip)

    def _ending(self, q: str, exact: bool, limit: int, skip: Container[int]) -> list[int]:
        text, starts, owners = self.text, self.starts, self.owners
        found: list[int] = []
        last = -1
        for entry in self._tails.get(q[-4:], ()):  # the numbers ending in q's last four (or three) digits
            start = starts[entry + 1] - 1 - len(q)
            if start < starts[entry] or (exact and start != starts[entry]) or not text.startswith(q, start):
                continue
            owner = owners[entry]
            if owner != last and owner not in skip:
                found.append(owner)
                if len(found) >= limit:
                    break
            last = owner
        return found


_DIGIT_FIELDS = frozenset({"phone", "contacts"})
_MULTI_FIELDS = frozenset({"contacts", "initials", "pinyin"})
_CHINESE_FIELDS = frozenset({"name", "address"})  # searched for anywhere: with the positions of runs of two
_FIELDS = ("id_key", "phone", "contacts", "name", "initials", "pinyin", "address")


class _Snapshot:
    """The columns of every elder at the last rebuild; rank ``r`` is ``docs[r]``, in (name, id) order."""

    def __init__(self, docs: list[_Doc]) -> None:
        self.docs = docs
        self.rank = {doc.elder_id: rank for rank, doc in enumerate(docs)}
        self.columns: dict[str, _Joined] = {}
        for field in _FIELDS:
            owners, values = _entries(docs, field)
            if field in _DIGIT_FIELDS:
                self.columns[field] = DigitColumn(owners, values)
            else:
                self.columns[field] = TextColumn(owners, values, gram=2 if field in _CHINESE_FIELDS else 0)


def _entries(docs: list[_Doc], field: str) -> tuple[array[int], list[str]]:
    """The rank and the value of every value of this field, in rank order."""
    get = attrgetter(field)
    if field not in _MULTI_FIELDS:
        values = [get(doc) for doc in docs]
        if all(values):
            return array("i", range(len(docs))), values
        return array("i", [rank for rank, value in enumerate(values) if value]), [value for value in values if value]
    owners: array[int] = array("i")
    values = []
    for rank, doc in enumerate(docs):
        joined = get(doc)
        if _SEP in joined:
            split = joined.split(_SEP)
            owners.extend([rank] * len(split))
            values.extend(split)
        elif joined:
            owners.append(rank)
            values.append(joined)
    return owners, values


def _parse(q: str) -> dict[Part, str] | None:
    """The query's parts by what they are compared with (rules 1 and 2), or None for a query too vague."""
    q = unicodedata.normalize("NFKC", q).replace(_SEP, "").strip()
    if not q or (len(q) == 1 and q.isascii()):
        return None
    compact = _SPACE.sub("", q)
    if not compact.isascii():
        return {"text": compact}
    parts: dict[Part, str] = {"id": compact.lower()}
    if _PHONE_QUERY.fullmatch(q):
        digits = normalise_phone(q)
        if len(digits) >= 3:
            parts["digits"] = digits
    elif _LETTERS_QUERY.fullmatch(q):
        letters = "".join(char for char in compact.lower() if char.isalpha())
        if len(letters) >= 2:
            parts["letters"] = letters
    return parts


class ElderSearch:
    """The in-memory search index over elders (see the module's theory of operation)."""

    def __init__(self, *, max_pending: int = MAX_PENDING) -> None:
        self.max_pending = max_pending
        self._docs: dict[str, _Doc] = {}
        self._snapshot = _Snapshot([])
        self._fresh: dict[str, tuple[_Doc, str]] = {}  # elder id → doc and blob, changed since the snapshot
        self._stale: set[int] = set()  # ranks of the snapshot no longer true

    @classmethod
    def of(cls, elders: Iterable[Elder]) -> ElderSearch:
        """An index of these elders, built now."""
        index = cls()
        for elder in elders:
            index.put(elder)
        index.refresh()
        return index

    def __len__(self) -> int:
        return len(self._docs)

    @property
    def pending(self) -> int:
        """Changes not yet in the columns: elders added or replaced (compared one by one until the next
        rebuild), or else removed or replaced (skipped by the scans), whichever are more."""
        return max(len(self._fresh), len(self._stale))

    def put(self, elder: Elder) -> None:
        """Add an elder or replace its record."""
        doc = _Doc.of(elder)
        eid = doc.elder_id
        if self._docs.get(eid) == doc:
            return
        self._docs[eid] = doc
        rank = self._snapshot.rank.get(eid)
        if rank is not None and self._snapshot.docs[rank] == doc:  # back to what the columns hold
            self._stale.discard(rank)
            self._fresh.pop(eid, None)
            return
        if rank is not None:
            self._stale.add(rank)
        self._fresh[eid] = (doc, doc.blob())

    def remove(self, elder_id: str) -> None:
        """Forget an elder (nothing happens for an unknown id)."""
        if self._docs.pop(elder_id, None) is None:
            return
        self._fresh.pop(elder_id, None)
        rank = self._snapshot.rank.get(elder_id)
        if rank is not None:
            self._stale.add(rank)

    def refresh(self) -> None:
        """Rebuild the columns now if anything changed (a search does it past ``max_pending`` changes)."""
        if self._fresh or self._stale:
            self._snapshot = _Snapshot(sorted(self._docs.values(), key=lambda doc: doc.key))
            self._fresh.clear()
            self._stale.clear()

    def search(self, q: str, limit: int = 20, within: Callable[[str], bool] | None = None) -> list[Hit]:
        """At most ``limit`` elders matching ``q``, best first (rules 1 to 5); only those ``within`` says yes to
        (a person's part of the network), skipped while scanning, so a street's search is as full as the
        centre's."""
        parts = _parse(q)
        if parts is None or limit <= 0:
            return []
        plan = [(tier, parts[tier.part]) for tier in TIERS if tier.part in parts]
        if self.pending > self.max_pending:
            self.refresh()
        best: dict[str, tuple[Tier, tuple[str, str]]] = {}
        needles = set(parts.values())
        for doc, blob in self._fresh.values():
            if within is not None and not within(doc.elder_id):
                continue
            if any(needle in blob for needle in needles):
                tier = doc.best(plan)
                if tier is not None:
                    best[doc.elder_id] = (tier, doc.key)
        snapshot = self._snapshot
        skip: Container[int] = self._stale if within is None else _Outside(self._stale, snapshot.docs, within)
        for tier, part in plan:
            if sum(1 for found, _ in best.values() if found.score > tier.score) >= limit:
                break  # nothing this tier or a later one finds can reach the answer
            for rank in snapshot.columns[tier.field].find(tier.how, part, limit, skip):
                doc = snapshot.docs[rank]
                best.setdefault(doc.elder_id, (tier, doc.key))
        ranked = sorted(best.items(), key=lambda item: (-item[1][0].score, item[1][1]))
        return [Hit(elder_id, tier.score, tier.matched) for elder_id, (tier, _) in ranked[:limit]]


class _Outside:
    """The ranks a scan skips: those no longer true, and those outside what ``within`` admits."""

    def __init__(self, stale: set[int], docs: Sequence[_Doc], within: Callable[[str], bool]) -> None:
        self._stale, self._docs, self._within = stale, docs, within

    def __contains__(self, rank: object) -> bool:
        assert isinstance(rank, int)
        return rank in self._stale or not self._within(self._docs[rank].elder_id)
