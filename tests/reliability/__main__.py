"""Run the reliability suite and print one table: ``python -m tests.reliability [--cases ...] [--quick]``.

Exit status 0 when no case failed ("not yet": the feature a case proves has not landed, not a failure of what
is there), 1 otherwise. ``--quick`` runs every case small (a smoke run of the suite itself, not a proof).
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable, Sequence

from tests.reliability import abuse, fuzzing, storm
from tests.reliability.result import Result

Case = Callable[[bool], list[Result]]

CASES: dict[str, Case] = {
    "storm": lambda quick: [storm.run(alarms=500, kills=4) if quick else storm.run()],
    "fuzz": lambda quick: fuzzing.run(inputs=20_000 if quick else 1_000_000),
    "descriptors": lambda quick: [abuse.descriptors(idle=1_500 if quick else 5_000)],
    "unknown": lambda quick: [abuse.unknown_flood(polls=10_000 if quick else 100_000)],
    "disk": lambda quick: [abuse.disk_full()],
    "consoles": lambda quick: [abuse.slow_consoles(quick=quick)],
    "reconnect": lambda quick: [abuse.reconnecting_consoles(quick=quick)],
}


def table(results: Sequence[Result]) -> str:
    lines = [f"{'case':<18} {'status':<8} figures", "-" * 118]
    for r in results:
        figures = ", ".join(f"{k}: {v}" for k, v in r.figures.items())
        lines.append(f"{r.case:<18} {r.status:<8} {figures}")
        if r.note:
            lines.append(f"{'':<27} ({r.note})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the reliability suite (loopback only)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    parser.add_argument("--quick", action="store_true", help="every case small: a smoke run, not a proof")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = [name for name in names if name not in CASES]
    if unknown:
        parser.error(f"no such case: {', '.join(unknown)}")
    results: list[Result] = []
    began = time.monotonic()
    for name in names:
        print(f"== {name} ...", flush=True)
        try:
            results += CASES[name](args.quick)
        except Exception as exc:
            traceback.print_exc()
            results.append(Result(name, "FAIL", note=f"the case crashed: {exc!r}"[:300]))
    print(f"\nreliability suite, {time.strftime('%Y-%m-%d %H:%M')} , {round(time.monotonic() - began)} s")
    print(table(results))
    return 1 if any(r.status == "FAIL" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
