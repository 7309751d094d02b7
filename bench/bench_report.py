"""The period report and the event loop: how long a report holds the loop that answers devices' alarms.

A synthetic city (``tests/dispatch/reportcity.py``): 100,000 incidents over a local year with their offers
(about 150,000), 50,000 calls, 25,000 service orders and 10,000 follow-ups, 12,000 elders in 240 communities,
300 responders. A ticker task on the same loop goes round as fast as the loop lets it (``asyncio.sleep(0)``)
and records the gap between two of its turns: while a report folds, the gap is how long the report held the
loop in one piece (an alarm's ACK waits as long). The floor is the same ticker with nothing else running,
measured in the same run. Each report is asked as the console asks it (``Views.period_report_on_loop``), for
the whole centre; the last row folds the year in one piece (``Views.period_report`` called on the loop), as
the console did before the fold was sliced. The report's own time is in the second table. The government
platform's export of the same year (``Views.gov_export_on_loop``, sliced like the report; ``Views.gov_export``, in
one piece) is measured the same way, and the writing of its files (``Views.gov_file_on_loop``, sliced;
``Views.gov_file``, in one piece).
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.common import Timing, report, summarise
from dispatch.periodreport import SLICE
from dispatch.scopes import Reach
from dispatch.views import Views
from tests.dispatch.reportcity import city

INCIDENTS = 100_000
FLOOR_S = 1.0
YEAR = {"start": "2026-01-01", "end": "2027-01-01"}
EVERYWHERE = Reach(("*",))
EXPORT_YEAR = "2026-01-01..2026-12-31"


async def gaps_while(work: Callable[[], Awaitable[object]]) -> tuple[list[int], list[int], float]:
    """The gaps between the ticker's turns while ``work`` runs on the same loop: wall-clock (ns) and the CPU
    time the thread spent in each (ns: the same gap less the time another process had the core), and how long
    the work ran (s)."""
    walls: list[int] = []
    cpus: list[int] = []
    done = False

    async def tick() -> None:
        last, last_cpu = time.perf_counter_ns(), time.thread_time_ns()
        while not done:
            await asyncio.sleep(0)
            now, now_cpu = time.perf_counter_ns(), time.thread_time_ns()
            walls.append(now - last)
            cpus.append(now_cpu - last_cpu)
            last, last_cpu = now, now_cpu

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    started = time.perf_counter()
    await work()
    took = time.perf_counter() - started
    done = True
    await ticker
    return walls, cpus, took


def cases(views: Views) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    async def alone() -> None:
        await asyncio.sleep(FLOOR_S)

    def sliced(by: str, **period: str) -> Callable[[], Awaitable[object]]:
        return lambda: views.period_report_on_loop(EVERYWHERE, by=by, **period)

    async def two_at_once() -> None:
        await asyncio.gather(sliced("community", **YEAR)(), sliced("district", **YEAR)())

    async def in_one_piece() -> None:
        views.period_report(EVERYWHERE, by="community", **YEAR)

    year = views.gov_period(EXPORT_YEAR)

    async def export_sliced() -> None:
        await views.gov_export_on_loop(year)

    async def export_in_one_piece() -> None:
        views.gov_export(year)

    async def json_sliced() -> None:
        await views.gov_file_on_loop(document, "json")

    async def zip_sliced() -> None:
        await views.gov_file_on_loop(document, "csv")

    async def json_in_one_piece() -> None:
        views.gov_file(document, "json")

    document = views.gov_export(year)

    return [
        ("floor: the ticker alone", alone),
        ("a year by community, sliced", sliced("community", **YEAR)),
        ("a year by district, sliced", sliced("district", **YEAR)),
        ("a month by community, sliced", sliced("community", month="2026-06")),
        ("two years at once, sliced", two_at_once),
        ("a year by community in one piece (before)", in_one_piece),
        ("a year's government export, sliced", export_sliced),
        ("a year's export in one piece (before)", export_in_one_piece),
        ("its JSON written, sliced", json_sliced),
        ("its zip of CSV files written, sliced", zip_sliced),
        ("its JSON written in one piece (before)", json_in_one_piece),
    ]


async def measure(views: Views) -> tuple[list[Timing], dict[str, object]]:
    rows: list[Timing] = []
    notes: dict[str, object] = {"incidents": INCIDENTS, "slice_records": SLICE}
    print(f"{'case':<44}  {'worst gap ms':>12}  {'its CPU ms':>10}  {'worst CPU ms':>12}  {'report s':>9}")
    for name, work in cases(views):
        walls, cpus, took = await gaps_while(work)
        rows.append(summarise(name, walls))
        worst = max(range(len(walls)), key=walls.__getitem__)
        notes[name] = {"worst_gap_ms": round(walls[worst] / 1e6, 2), "its_cpu_ms": round(cpus[worst] / 1e6, 2),
                       "worst_cpu_ms": round(max(cpus) / 1e6, 2), "report_s": round(took, 3)}  # fmt: skip
        print(f"{name:<44}  {walls[worst] / 1e6:>12.2f}  {cpus[worst] / 1e6:>10.2f}  {max(cpus) / 1e6:>12.2f}  "
              f"{took:>9.3f}")  # fmt: skip
    return rows, notes


def main() -> None:
    built = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        town = city(Path(tmp), incidents=INCIDENTS)
        gc.collect()
        gc.freeze()  # as anxin serve does once the registry and the projection are loaded (anxin/server.py)
        print(f"city: {INCIDENTS} incidents, {len(town.state.assignments)} offers, {len(town.state.calls)} calls, "
              f"{len(town.communities)} communities, built in {time.perf_counter() - built:.1f} s")  # fmt: skip
        rows, notes = asyncio.run(measure(town.views))
    report("report", rows, floor=rows[0].name, notes=notes)


if __name__ == "__main__":
    main()
