"""The time-budgeted loop every standalone fuzz target shares: random inputs, one property, a seed to replay."""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence

RandomInput = Callable[[random.Random], tuple[bytes, list[int]]]
Reseal = Callable[[bytearray, int], bytearray]


def mutate(
    frames: Sequence[bytes],
    ops: Sequence[tuple[int, int, int]],
    *,
    seeds: Sequence[bytes],
    special: bytes,
    reseal: Reseal,
) -> bytes:
    """Join ``frames`` and apply ``ops`` (operation, position, value) in turn.

    The damage a link does: flip a bit, cut, splice in a piece of another real frame, drop or repeat a run,
    insert a byte (often one of the protocol's ``special`` ones); and ``reseal`` makes a frame's own length and
    checksum right again, so that the damage reaches the decoder instead of stopping at the framer.
    """
    data = bytearray(b"".join(frames))
    for op, position, value in ops:
        at = position % (len(data) + 1)
        if op == 0 and data:
            data[at % len(data)] ^= 1 << (value % 8)
        elif op == 1:
            del data[at:]
        elif op == 2:
            other = seeds[value % len(seeds)]
            cut = value % len(other)
            data[at:at] = other[cut:] if value & 1 else other[:cut]
        elif op == 3:
            del data[at : at + 1 + value % 16]
        elif op == 4:
            data[at:at] = bytes([special[value % len(special)] if value & 1 else value % 256])
        elif op == 5:
            data[at:at] = data[at : at + 1 + value % 64]
        else:
            data = reseal(data, at)
    return bytes(data)


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
