"""The incremental identity index (dispatch.duplicates) against the batch search of dispatch.identity."""

from __future__ import annotations

from datetime import date

from dispatch.duplicates import DuplicateIndex, Match, identity_changed
from dispatch.identity import Duplicate, Person, find_duplicates
from tests.dispatch.test_identity import registry

NUMBER = "11010519491231002X"  # GB 11643-1999's own example


def test_it_agrees_with_the_batch_search_on_a_registry_of_100000() -> None:
    people, _ = registry(seed=11, size=100_000)
    index = DuplicateIndex.of(people)
    pairs: set[Duplicate] = set()
    for person in people:
        for match in index.matches(person):
            pairs.add(Duplicate(min(person.key, match.key), max(person.key, match.key), match.reasons))
    assert pairs == set(find_duplicates(people))  # its speed: bench/bench_registry.py


def test_a_record_is_found_as_it_is_put_and_forgotten_as_it_is_removed() -> None:
    index = DuplicateIndex()
    index.put(Person("e1", "王秀英", date(1940, 3, 1), "13800000001"))
    newcomer = Person("new", "王 秀英", date(1940, 3, 1), "13900000009")
    assert index.matches(newcomer) == [Match("e1", ("name_birth",))]
    index.put(Person("e1", "王秀英", date(1941, 3, 1), "13800000001"))  # her birth date corrected
    assert index.matches(newcomer) == []
    assert index.matches(Person("new", "王秀英", None, "+86 138 0000 0001")) == [Match("e1", ("name_phone",))]
    index.remove("e1")
    assert index.matches(Person("new", "王秀英", None, "13800000001")) == [] and len(index) == 0


def test_a_record_never_matches_itself_and_a_household_is_no_match() -> None:
    index = DuplicateIndex.of([Person("e1", "王秀英", date(1940, 3, 1), "05962000001", NUMBER)])
    assert index.matches(Person("e1", "王秀英", date(1940, 3, 1), "05962000001", NUMBER)) == []
    assert index.matches(Person("e2", "李建国", date(1938, 1, 1), "05962000001")) == []  # her husband
    by_number = index.matches(Person("e3", "王某", None, None, NUMBER.lower()))
    assert by_number == [Match("e1", ("resident_id",))]


def test_namesakes_with_their_own_numbers_are_no_match() -> None:
    index = DuplicateIndex.of([Person("e1", "张伟", date(1949, 12, 31), "13800000001", NUMBER)])
    other = "110105194912310038"  # another man born that day in that district: his own valid number
    assert index.matches(Person("e2", "张伟", date(1949, 12, 31), "13800000001", other)) == []
    assert index.matches(Person("e2", "张伟", date(1949, 12, 31))) == [Match("e1", ("name_birth",))]


def test_what_identity_is_judged_by() -> None:
    before = Person("e1", "王秀英", date(1940, 3, 1), "13800000001")
    assert not identity_changed(before, Person("e1", "王 秀英", date(1940, 3, 1), "+86 13800000001"))
    assert identity_changed(before, Person("e1", "王秀英", date(1940, 3, 2), "13800000001"))
    assert identity_changed(before, Person("e1", "王秀英", date(1940, 3, 1), "13800000001", NUMBER))
