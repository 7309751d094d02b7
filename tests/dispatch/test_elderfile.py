"""The elder's file index (dispatch.elderfile): the projection's per-elder seqs against a brute-force scan of the
same journal, kinds of later releases filed by name (assessments, merges), and its speed at a million entries."""

from __future__ import annotations

import json
import random
import time
from datetime import date

from dispatch.elderfile import SECTIONS, TIMELINE_SECTIONS, ElderEntries, Section, assessment_view, identity, mask
from dispatch.entries import (
    ElderHealth,
    ElderViewed,
    Fact,
    IncidentOpened,
    Note,
    Resolved,
    ServiceOrdered,
    ServiceScheduled,
    Unrecognised,
    encode,
)
from dispatch.journal import Entry
from dispatch.state import Projection

ELDERS = ("e1", "e2", "e3", "e4")


class Journal:
    """Entries as the journal hands them out, made in order: the projection applies each."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.state = Projection(position_stale_s=300.0)

    def add(self, fact: Fact, *, incident_id: str | None = None, drill: bool = False, kind: str = "") -> Entry:
        seq = len(self.entries) + 1
        text = fact.body if isinstance(fact, Unrecognised) else encode(fact)
        entry = Entry(seq, 1_800_000_000.0 + seq, kind or fact.KIND, "user:op", incident_id, drill, text, "", "", fact)
        self.entries.append(entry)
        self.state.apply(entry)
        return entry

    def later(self, kind: str, body: dict[str, object]) -> Entry:
        """An entry of a kind a later release writes (this one has no class for it)."""
        return self.add(Unrecognised(kind, 1, json.dumps(body, ensure_ascii=False)), kind=kind)


def _opened(incident_id: str, elder_id: str) -> IncidentOpened:
    return IncidentOpened(incident_id, "fall", "api", 1, (), "home", 0.0, elder_id=elder_id)


def _busy_journal(seed: int, n: int = 3000) -> Journal:
    """A random mix of what happens to four elders: alarms (some drills) with notes and outcomes, services
    ordered and delivered, health readings, reads, assessments and a merge of e4 into e3."""
    rng = random.Random(seed)
    journal = Journal()
    incidents: list[tuple[str, bool]] = []
    orders: list[str] = []
    resolved: set[str] = set()
    for step in range(n):
        elder_id = rng.choice(ELDERS)
        roll = rng.random()
        if roll < 0.15 or not incidents:
            incident_id, drill = f"INC-{step}", rng.random() < 0.3
            journal.add(_opened(incident_id, elder_id), drill=drill)
            incidents.append((incident_id, drill))
        elif roll < 0.35:
            incident_id, drill = rng.choice(incidents)
            fact: Fact = Note("看过") if rng.random() < 0.7 or incident_id in resolved else Resolved("ok")
            resolved.update({incident_id} if isinstance(fact, Resolved) else ())
            journal.add(fact, incident_id=incident_id, drill=drill)
        elif roll < 0.45:
            order_id = f"SO-{step}"
            journal.add(ServiceOrdered(order_id, elder_id, "meal", 0.0, 1.0, "paid", 100, "console"))
            orders.append(order_id)
        elif roll < 0.5 and orders:
            journal.add(ServiceScheduled(orders.pop(), 0.0, 1.0))  # once each: requested, then scheduled
        elif roll < 0.7:
            journal.add(ElderHealth(elder_id, "d1", {"heart_rate": rng.randint(50, 120)}))
        elif roll < 0.8:
            journal.add(ElderViewed(elder_id, "incident", what="file"))
        elif roll < 0.83:
            body = {"assessment_id": f"A{step}", "elder_id": elder_id, "level": 1, "grades": {"adl": 1},
                    "care_level": 2, "reason": "年度"}  # fmt: skip
            journal.later("assessment.recorded", body)
        if step == n // 2:
            journal.later("registry.elders_merged", {"keep": "e3", "other": "e4"})
    return journal


def _scan(journal: Journal, elder_id: str, sections: set[str], drill: bool, before: int | None) -> list[int]:
    """The brute force: every entry of the journal, newest first, judged on its own."""
    incident_elder: dict[str, str] = {}
    order_elder: dict[str, str] = {}
    family = {"e3", "e4"} if elder_id == "e3" else {elder_id}
    found = []
    for entry in journal.entries:
        body = json.loads(entry.payload_json)
        if entry.kind == "incident.opened":
            incident_elder[body["incident_id"]] = body["elder_id"]
        if entry.kind == "service.ordered":
            order_elder[body["order_id"]] = body["elder_id"]
        if SECTIONS.get(entry.kind) not in sections or (entry.drill and not drill):
            continue
        if before is not None and entry.seq >= before:
            continue
        whose = {body.get("elder_id"), body.get("keep"), body.get("other")}
        whose |= {incident_elder.get(entry.incident_id or ""), order_elder.get(body.get("order_id", ""))}
        if whose & family:
            found.append(entry.seq)
    return found[::-1]


def test_the_index_finds_what_a_scan_of_the_journal_finds() -> None:
    for seed in range(3):
        journal = _busy_journal(seed)
        index = journal.state.by_elder
        rng = random.Random(seed)
        for elder_id in ELDERS:
            for sections in (TIMELINE_SECTIONS, ("alarms",), ("notes", "services"), ("health",), ("assessments",)):
                for drill in (False, True):
                    before = rng.choice([None, rng.randint(1, len(journal.entries))])
                    expected = _scan(journal, elder_id, set(sections), drill, before)
                    got = index.newest(elder_id, sections, drill=drill, before=before, limit=10**6)
                    assert got == expected, (seed, elder_id, sections, drill, before)
                    assert index.newest(elder_id, sections, drill=drill, before=before, limit=7) == expected[:7]


def test_later_kinds_are_filed_by_name_and_a_merge_joins_the_histories() -> None:
    journal = Journal()
    journal.add(_opened("INC-1", "e4"))
    assessed = journal.later("assessment.recorded", {"assessment_id": "A1", "elder_id": "e3", "level": 2,
                             "grades": {"adl": 2, "mental": 1}, "care_level": 3, "reason": "出院后"})  # fmt: skip
    index = journal.state.by_elder
    assert index.newest("e3", TIMELINE_SECTIONS) == [2] and index.newest("e4", TIMELINE_SECTIONS) == [1]
    journal.later("registry.elders_merged", {"keep": "e3", "other": "e4"})
    assert index.newest("e3", TIMELINE_SECTIONS) == [3, 2, 1]  # the merged elder's alarm is the kept one's now
    assert index.family("e3") == ["e3", "e4"] and index.merged_into("e4") == "e3"
    view = assessment_view(assessed, lambda who: "评估员甲" if who == "user:op" else who)
    assert view["level"] == 2 and view["grades"] == {"adl": 2, "mental": 1} and view["care_level"] == 3
    assert view["assessor_name"] == "评估员甲"
    journal.later("registry.elders_merged", {"keep": "e4", "other": "e3"})  # a loop is not followed
    assert index.family("e3") == ["e3", "e4"]


def test_pages_of_a_million_entries_are_the_newest_then_the_older() -> None:
    """Pages of an index of a million entries (its speed: bench/bench_registry.py)."""
    index = ElderEntries()
    sections: tuple[Section, ...] = ("alarms", "calls", "services", "health")
    for seq in range(1, 1_000_001):
        index.add(f"e{seq % 5000}", seq, sections[seq // 5000 % 4], seq % 7 == 0)
    for n in range(200):
        page = index.newest(f"e{n}", TIMELINE_SECTIONS, limit=50)
        older = index.newest(f"e{n}", ("alarms",), before=page[-1], limit=50)
        mine = [
            seq for seq in range(n or 5000, 1_000_001, 5000) if sections[seq // 5000 % 4] != "health" and seq % 7
        ]  # the health chart's, and drills: not here
        assert page == sorted(mine, reverse=True)[:50]
        assert older and all(s < page[-1] for s in older) and older == sorted(older, reverse=True)


def test_identity_masks_the_resident_id_but_for_those_who_may_see_it() -> None:
    shown = identity("11010519491231002X", None, unmasked=False)
    assert shown == {"resident_id": "110105********002X", "sex": "female", "birth_date": "1949-12-31"}
    assert identity("11010519491231002X", None, unmasked=True)["resident_id"] == "11010519491231002X"
    assert identity(None, date(1950, 3, 1), unmasked=False) == {"resident_id": None, "sex": None,
                                                               "birth_date": "1950-03-01"}  # fmt: skip
    assert mask("1234") == "****"


def test_a_year_of_readings_is_not_walked_through_to_find_the_alarms() -> None:
    """A watch reporting every five minutes for a year, and three alarms among its readings."""
    index = ElderEntries()
    for seq in range(1, 105_121):
        index.add("e1", seq, "alarms" if seq % 30_000 == 0 else "health", False)
    started = time.perf_counter()
    for _ in range(100):
        assert index.newest("e1", TIMELINE_SECTIONS) == [90_000, 60_000, 30_000]
    assert (time.perf_counter() - started) / 100 < 0.001
    assert len(index.newest("e1", ("health",), limit=300)) == 300
