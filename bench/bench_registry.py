"""Keeping the registry at 100 000 elders: "is this person registered already?" on a save, and a page of an elder's
file from a journal of a million entries.

Duplicates (dispatch.duplicates): the generated registry of ``tests/dispatch/test_identity.py`` (105 000 records,
1 500 planted duplicates, couples on one landline, namesakes with their own numbers) in a ``DuplicateIndex``; each
record asked for its matches, as a save asks. Answers are checked against the batch search (``find_duplicates``)
before anything is timed. The floor is one dict lookup of a record's id in a dict of all ids, measured in the same
run: the cheapest question the registry can be asked.

The file (dispatch.elderfile): a per-elder index of a million entries over 5 000 elders (200 entries each, in four
sections); a page is the newest 50 of the timeline's sections, and the next page 50 older alarms. The same floor.
"""

from __future__ import annotations

import random
import time

from bench.common import Timing, report, time_each
from dispatch.duplicates import DuplicateIndex
from dispatch.elderfile import TIMELINE_SECTIONS, ElderEntries, Section
from dispatch.identity import Duplicate, find_duplicates
from tests.dispatch.test_identity import registry

SEED = 20261130
ENTRIES = 1_000_000
FILE_ELDERS = 5_000
QUERIES = 5_000


def main() -> None:
    people, _ = registry(seed=11, size=100_000)
    index = DuplicateIndex.of(people)
    pairs = {
        Duplicate(min(p.key, m.key), max(p.key, m.key), m.reasons) for p in people for m in index.matches(p)
    }  # fmt: skip
    assert pairs == set(find_duplicates(people)), "the index and the batch search disagree"
    rng = random.Random(SEED)
    asked = rng.sample(people, QUERIES)
    ids = {p.key: p for p in people}

    file = ElderEntries()
    sections: tuple[Section, ...] = ("alarms", "calls", "services", "health")
    started = time.perf_counter()
    for seq in range(1, ENTRIES + 1):
        file.add(f"e{seq % FILE_ELDERS}", seq, sections[seq // FILE_ELDERS % 4], seq % 7 == 0)
    built = time.perf_counter() - started
    elders = [f"e{rng.randrange(FILE_ELDERS)}" for _ in range(QUERIES)]

    def two_pages(elder_id: str) -> None:
        page = file.newest(elder_id, TIMELINE_SECTIONS, limit=50)
        file.newest(elder_id, ("alarms",), before=page[-1], limit=50)

    rows: list[Timing] = [
        time_each("floor: dict lookup of an id", lambda p: ids.get(p.key), asked),
        time_each("duplicates of a record (105k registry)", index.matches, asked),
        time_each("file: newest 50 + 50 older alarms (1M entries)", two_pages, elders),
    ]
    report("registry", rows, floor="floor: dict lookup of an id",
           notes={"registry": len(people), "file_entries": ENTRIES, "file_index_built_s": round(built, 2)})  # fmt: skip


if __name__ == "__main__":
    main()
