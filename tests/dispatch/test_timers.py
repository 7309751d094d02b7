"""Timers: deadlines per key on a caller's clock, moved, cancelled, popped in order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dispatch.timers import Timers


def test_set_move_cancel_pop() -> None:
    timers = Timers()
    timers.set("a", 10)
    timers.set("b", 5)
    timers.set("c", 7)
    timers.set("a", 3)  # earlier
    timers.set("b", 20)  # later
    timers.cancel("c")
    assert timers.next_deadline() == 3
    assert timers.pop_due(9) == ["a"]
    assert timers.next_deadline() == 20
    assert timers.pop_due(19) == []
    assert timers.pop_due(20) == ["b"]
    assert len(timers) == 0 and timers.next_deadline() is None


def test_a_key_pushed_later_again_and_again_keeps_one_heap_entry() -> None:
    timers = Timers()
    for n in range(10_000):
        timers.set("device", 100.0 + n)
    assert len(timers._heap) == 1
    assert timers.pop_due(10_098) == []
    assert timers.pop_due(10_099) == ["device"]


@given(
    st.lists(st.tuples(st.sampled_from("abcde"), st.integers(0, 50), st.booleans()), max_size=60), st.integers(0, 60)
)
def test_pop_due_matches_a_plain_dict(ops: list[tuple[str, int, bool]], now: int) -> None:
    timers, model = Timers(), {}
    for key, deadline, cancel in ops:
        if cancel:
            timers.cancel(key)
            model.pop(key, None)
        else:
            timers.set(key, deadline)
            model[key] = deadline
    due = timers.pop_due(now)
    expected = sorted((d, k) for k, d in model.items() if d <= now)
    assert sorted(due) == sorted(k for _, k in expected)
    assert [model[k] for k in due] == sorted(model[k] for k in due)  # earliest first
    remaining = {k: d for k, d in model.items() if d > now}
    assert timers.next_deadline() == (min(remaining.values()) if remaining else None)
