"""Case 2, fuzzing: a million fuzzed inputs per codec (DC-09, watch, GT06), each codec in its own process.

The worker (``python -m tests.reliability.fuzzing --codec dc09 --inputs 1000000``) reuses the standalone fuzz
targets of tests/fuzz/ (their ``random_input`` and their whole property ``check``: cut and uncut streams agree,
only documented reasons, well-formed replies, the shared event invariants) and adds what a time-budgeted run
does not measure: a bound on each input's time (an input that takes longer than ``--bound`` seconds is
interrupted by a timer signal and counted as a hang), every exception counted (any exception is undocumented:
the codecs turn every bad frame into a reason and never raise), and the process's memory (RSS after the
seed frames are built, and at the end). It prints one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from tests.reliability.result import Result

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parents[2]
CODECS = ("dc09", "watch", "gt06")
#: memory the fuzz process may gain over a million inputs (the dedup and codec state is per input)
RSS_GROWTH_KIB = 20 * 1024


class Hang(Exception):
    pass


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def work(codec: str, inputs: int, seed: int, bound: float) -> dict[str, Any]:
    target = importlib.import_module(f"tests.fuzz.fuzz_{codec}")
    rng = random.Random(seed)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Hang

    signal.signal(signal.SIGALRM, interrupt)
    counts: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    first: dict[str, str] = {}
    slowest = 0.0
    for _ in range(200):  # warm up: the interpreter's caches, the codecs' tables
        data, cuts = target.random_input(rng)
        target.check(data, cuts, Counter())
    rss_before = _rss_kib()
    began = time.perf_counter()
    for _ in range(inputs):
        data, cuts = target.random_input(rng)
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, bound)
        try:
            target.check(data, cuts, counts)
        except Hang:
            failures["hang"] += 1
            first.setdefault("hang", data.hex())
        except AssertionError as exc:
            failures["property"] += 1
            first.setdefault("property", f"{exc!r} data={data.hex()} cuts={cuts!r}")
        except Exception as exc:
            failures[type(exc).__name__] += 1
            first.setdefault(type(exc).__name__, f"{exc!r} data={data.hex()}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        slowest = max(slowest, time.perf_counter() - start)
    seconds = time.perf_counter() - began
    return {
        "codec": codec,
        "seed": seed,
        "inputs": inputs,
        "frames": sum(counts.values()),
        "seconds": round(seconds, 1),
        "inputs_per_s": round(inputs / seconds),
        "frames_per_s": round(sum(counts.values()) / seconds),
        "slowest_ms": round(slowest * 1000, 2),
        "failures": dict(failures),
        "first": first,
        "reasons": dict(counts.most_common()),
        "rss_before_kib": rss_before,
        "rss_after_kib": _rss_kib(),
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def run(inputs: int = 1_000_000, parallel: int = 1, bound: float = 2.0) -> list[Result]:
    """One worker process per codec, ``parallel`` at a time; one result per codec."""
    seed = time.time_ns() % 1_000_000
    pending = list(CODECS)
    running: list[tuple[str, subprocess.Popen[str]]] = []
    outputs: dict[str, tuple[int, str, str]] = {}
    while pending or running:
        while pending and len(running) < parallel:
            codec = pending.pop(0)
            command = [PYTHON, "-m", "tests.reliability.fuzzing", "--codec", codec, "--inputs", str(inputs)]
            command += ["--seed", str(seed), "--bound", str(bound)]
            running.append(
                (codec, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT))
            )
        codec, proc = running.pop(0)
        out, err = proc.communicate()
        outputs[codec] = (proc.returncode, out, err)
    return [_result(codec, *outputs[codec]) for codec in CODECS]


def _result(codec: str, code: int, out: str, err: str) -> Result:
    result = Result(f"fuzz {codec}")
    if code != 0 or not out.strip():
        result.fail(f"worker exit {code}: {err[-300:]}")
        return result
    report = json.loads(out)
    growth = report["rss_after_kib"] - report["rss_before_kib"]
    result.figures = {
        "inputs": report["inputs"],
        "frames decoded": report["frames"],
        "inputs/s": report["inputs_per_s"],
        "frames/s": report["frames_per_s"],
        "slowest input ms": report["slowest_ms"],
        "exceptions": sum(v for k, v in report["failures"].items() if k != "hang"),
        "hangs": report["failures"].get("hang", 0),
        "rss KiB before→after": f"{report['rss_before_kib']}→{report['rss_after_kib']}",
        "seed": report["seed"],
    }
    for kind, example in report["first"].items():
        result.fail(f"{report['failures'][kind]} × {kind}, first: {example[:200]}")
    if growth > RSS_GROWTH_KIB:
        result.fail(f"memory grew {growth} KiB over the run")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="fuzz one codec for a number of inputs")
    parser.add_argument("--codec", choices=CODECS, required=True)
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bound", type=float, default=2.0, help="seconds one input may take")
    args = parser.parse_args(argv)
    print(json.dumps(work(args.codec, args.inputs, args.seed, args.bound)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
