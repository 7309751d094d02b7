"""Timing helpers shared by the benchmarks.

A benchmark times each call on its own with ``time.perf_counter_ns`` and keeps the median and the 99th
percentile, prints them as a table against a floor measured in the same run (never a number written down),
and writes the figures with the date and the machine to ``bench/results/<name>.json``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

RESULTS = Path(__file__).parent / "results"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Timing:
    name: str
    n: int
    median_us: float
    p99_us: float


def summarise(name: str, samples_ns: Sequence[int]) -> Timing:
    """Median and 99th percentile (nearest rank) of per-call times, in microseconds."""
    ordered = sorted(samples_ns)
    n = len(ordered)
    median = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2.0
    p99 = ordered[max(0, math.ceil(0.99 * n) - 1)]
    return Timing(name=name, n=n, median_us=median / 1000.0, p99_us=p99 / 1000.0)


def time_each(name: str, fn: Callable[[T], object], args: Iterable[T]) -> Timing:
    """Time ``fn(arg)`` once per argument."""
    clock = time.perf_counter_ns
    samples: list[int] = []
    for arg in args:
        start = clock()
        fn(arg)
        samples.append(clock() - start)
    return summarise(name, samples)


def time_calls(name: str, fn: Callable[[], object], n: int) -> Timing:
    """Time ``fn()`` ``n`` times."""
    return time_each(name, lambda _: fn(), range(n))


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }


def report(bench: str, rows: Sequence[Timing], floor: str, notes: Mapping[str, object] | None = None) -> Path:
    """Print the table, each row's median against the floor row's median, and write the JSON results."""
    base = next(row for row in rows if row.name == floor).median_us
    width = max(len(row.name) for row in rows)
    print(f"{'name':<{width}}  {'n':>6}  {'median µs':>11}  {'p99 µs':>11}  {'ratio to floor':>14}")
    for row in rows:
        ratio = row.median_us / base
        print(f"{row.name:<{width}}  {row.n:>6}  {row.median_us:>11.2f}  {row.p99_us:>11.2f}  {ratio:>14.4f}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{bench}.json"
    document = {
        "bench": bench,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "floor": floor,
        "notes": dict(notes or {}),
        "rows": [{**asdict(row), "ratio_to_floor": row.median_us / base} for row in rows],
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written to {path}")
    return path
