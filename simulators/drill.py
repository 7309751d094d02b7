"""``anxin drill SCENARIO``: placeholder until the drill runner lands (issue: simulators and drills)."""

from __future__ import annotations

import argparse
import sys


def run_drill_command(args: argparse.Namespace) -> int:
    print(f"anxin drill: drills are not built yet (scenario {args.scenario!r})", file=sys.stderr)
    return 2
