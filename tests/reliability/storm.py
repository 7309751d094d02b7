"""Case 1, the SIGKILL storm: alarms keep coming while the server is killed and restarted at random moments.

An independent transmitter process (:mod:`tests.reliability.transmitter`) sends ``alarms`` distinct DC-09
ADM-CID SOS alarms (encrypted for the accounts that have a key) and records every ACK it receives. This
process SIGKILLs the server ``kills`` times, each at a random moment (when a random number of alarms has been
acknowledged, plus a random delay of up to 50 ms, so that kills fall between commit and ACK as often as
anywhere else), and starts it again at once; the transmitter repeats what was not acknowledged.

At the end, from the journal's SQLite file: every acknowledged alarm is recorded (0 missing), none twice
(0 duplicated: alarms are told apart by the dedup key the receiver builds from account and sequence), and
``anxin verify`` passes (the hash chain and its signed checkpoints are intact).
"""

from __future__ import annotations

import json
import random
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.reliability.common import PYTHON, ROOT, DeviceServer, Result, journal_rows, registry, verify

ALARM_KINDS = ("incident.opened", "incident.alarm_attached")


def acked_count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def recorded(data: Path) -> Counter[tuple[str, int]]:
    """(account, sequence) of every DC-09 alarm in the journal, counted."""
    marks = ",".join("?" * len(ALARM_KINDS))
    counts: Counter[tuple[str, int]] = Counter()
    for _, _, payload in journal_rows(data, f"kind IN ({marks})", ALARM_KINDS):
        dedup = json.loads(payload).get("dedup") or ""
        parts = dedup.split(":")
        if len(parts) == 5 and parts[0] == "dc09":
            counts[(parts[1], int(parts[2]))] += 1
    return counts


def run(alarms: int = 5000, kills: int = 20, seed: int | None = None, rate: float = 120.0) -> Result:
    result = Result("sigkill storm")
    seed = seed if seed is not None else time.time_ns() % 1_000_000
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="anxin-storm-"))
    accounts = registry(work, elders=500, dc09=500)
    data = work / "data"
    acks = work / "acks.log"
    server = DeviceServer(data)
    began = time.monotonic()
    server.start()
    transmitter = subprocess.Popen(
        [PYTHON, "-m", "tests.reliability.transmitter", "--port", str(server.dc09_port),
         "--accounts", str(work / "accounts.jsonl"), "--alarms", str(alarms), "--acks", str(acks),
         "--connections", "20", "--timeout", "3", "--rate", str(rate)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    moments = sorted(rng.randrange(1, alarms * 9 // 10) for _ in range(kills))  # not after the last ACK
    restarts: list[float] = []
    done = 0
    try:
        for moment in moments:
            while acked_count(acks) < moment and transmitter.poll() is None:
                time.sleep(0.002)
            if transmitter.poll() is not None:
                break
            time.sleep(rng.uniform(0, 0.05))
            server.kill()
            done += 1
            down = time.monotonic()
            server.start()
            restarts.append(time.monotonic() - down)
        out, _ = transmitter.communicate(timeout=900)
    finally:
        if transmitter.poll() is None:
            transmitter.kill()
        server.stop()
    sent = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    seconds = time.monotonic() - began
    acked = {(a, int(s)) for a, s in (line.split() for line in acks.read_text().splitlines() if line)}
    journal = recorded(data)
    missing = acked - set(journal)
    duplicated = sum(1 for count in journal.values() if count > 1)
    verified = verify(data)
    keyed = sum(1 for a in accounts if a.key)
    result.figures = {
        "alarms": alarms,
        "accounts (keyed)": f"{len(accounts)} ({keyed})",
        "acked": len(acked),
        "in journal": len(journal),
        "missing": len(missing),
        "duplicated": duplicated,
        "sigkills": done,
        "restart s (max)": round(max(restarts, default=0.0), 2),
        "retries": sent.get("retries", "?"),
        "seconds": round(seconds, 1),
        "verify": verified.returncode,
        "seed": seed,
    }
    if len(acked) != alarms:
        result.fail(f"{alarms - len(acked)} alarms never acknowledged")
    if missing:
        result.fail(f"{len(missing)} acknowledged alarms missing, e.g. {sorted(missing)[:3]}")
    if duplicated:
        result.fail(f"{duplicated} alarms recorded twice")
    if done < kills:
        result.fail(f"only {done} of {kills} kills happened before the storm ended")
    if verified.returncode != 0:
        result.fail(f"anxin verify exit {verified.returncode}: {(verified.stdout + verified.stderr)[-300:]}")
    result.note = result.note or f"data kept in {work}"
    return result
