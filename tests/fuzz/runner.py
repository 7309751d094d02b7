"""The time-budgeted loop every standalone fuzz target shares: random inputs, one property, a seed to replay."""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence

RandomInput = Callable[[random.Random], tuple[bytes, list[int]]]
Check = Callable[[bytes, list[int], Counter[str]], None]


def fuzz(name: str, doc: str, random_input: RandomInput, check: Check, argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random inputs (default: time)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else time.time_ns()
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    runs = 0
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        data, cuts = random_input(rng)
        try:
            check(data, cuts, counts)
        except AssertionError:
            print(f"FAILED after {runs} inputs (seed {seed}): data={data.hex()} cuts={cuts!r}")
            raise
        runs += 1
    print(f"{name} fuzz: {runs} inputs in {args.seconds:g} s, seed {seed}, no failure")
    for reason, count in counts.most_common():
        print(f"  {reason:<14} {count}")
    return 0
