"""What ``anxin verify`` says about a record it checked (:class:`dispatch.anchor.RecordReport`), and its exit code.

Rules
    1. Failures first, each on its own line with its seq (the first :data:`dispatch.anchor.MAX_FINDINGS`, then a
       count); then notes; then what holds.
    2. Exit 0: everything checked and sound; 1: something is wrong; 2: not everything could be checked (no key).
       A data folder, a backup's copy and a restored folder are told the same way.
"""

from __future__ import annotations

import sys
from typing import TextIO

from dispatch.anchor import RecordReport


def print_findings(report: RecordReport, file: TextIO | None = None) -> None:
    """The failures and notes of a report (rule 1)."""
    out = file or sys.stdout
    for finding in report.broken:
        print(f"journal BROKEN: {finding}", file=out)
    if report.more_broken:
        print(f"journal BROKEN: ... and {report.more_broken} more findings", file=out)
    for note in report.notes:
        print(f"note: {note}", file=out)


def print_verdict(report: RecordReport) -> int:
    """Print what ``anxin verify`` found, failures first; the exit code (rule 2)."""
    print_findings(report)
    if report.ok:
        print(f"journal ok: {report.entries} entries, head {report.head_hash[:16]} (the hash chain holds)")
    elif not report.chain_broken:
        print(
            f"hash chain: {report.entries} entries link up, head {report.head_hash[:16]} (a rewrite whose hashes "
            "were recomputed links up too; the checkpoints tell)"
        )
    if not report.key_found:
        there = "" if report.checkpoints_found else f" nor checkpoints at {report.checkpoints_file}"
        print(
            f"anchor NOT CHECKED: no chain key at {report.key_file}{there}. Without the key a rewritten journal "
            "whose hashes were recomputed cannot be told apart; point chain_key_file (--config, "
            "ANXIN_CHAIN_KEY_FILE) at the server's key, or pass --chain-only to accept the chain alone"
        )
        return 1 if report.broken else 2
    if report.ok:
        last = report.last
        where = f"the last at seq {last.seq}, {last.when()}" if last is not None else "none yet"
        print(
            f"anchor ok: {report.checkpoints} checkpoints signed with {report.key_file} ({where}); "
            f"{report.unanchored()} entries written after the last checkpoint are covered by the chain alone"
        )
        return 0
    return 1
