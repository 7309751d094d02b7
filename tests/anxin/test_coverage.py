"""``anxin coverage`` on a data folder, as a district's planner runs it: the table, the files, the refusals."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from simulators import city
from tests.process import anxin, import_city

#: a table line: place, elders, worst hour and share, best hour and share, 2+ at worst, the asked hour's share
ROW = re.compile(
    r"^(?P<place>\S+)\s+(?P<elders>\d+)\s+(?P<worst>\d\d):00\s+(?P<worst_share>[\d.]+)%\s+"
    r"(?P<best>\d\d):00\s+(?P<best_share>[\d.]+)%\s+(?P<twice>[\d.]+)%\s+(?P<at>[\d.]+)%$"
)


def test_the_command_prints_a_table_and_writes_the_files(tmp_path: Path) -> None:
    files = city.generate(tmp_path / "city", seed=3, elders=120, caregivers=8, clinics=2, contracted=2)
    data = import_city(tmp_path / "data", files)
    out = tmp_path / "out"

    done = anxin("coverage", "--data", str(data), "--out", str(out), "--target-min", "5", "--hour", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {m["place"]: m for m in map(ROW.match, done.stdout.splitlines()) if m is not None}
    with files["elders"].open(encoding="utf-8") as handle:
        communities = {row["community"] for row in csv.DictReader(handle)}
    assert communities <= set(rows) and "all" in rows
    assert int(rows["all"]["elders"]) == 120
    assert sum(int(rows[c]["elders"]) for c in communities) == 120
    for row in rows.values():
        assert 0.0 <= float(row["worst_share"]) <= float(row["best_share"]) <= 100.0
    assert "8 responders counted (left out: 2 clinics, 2 contracted staff)" in done.stdout

    for name in ("coverage.csv", "coverage.json", "coverage.png", "coverage.svg"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    answer = json.loads((out / "coverage.json").read_text(encoding="utf-8"))
    assert answer["hour"] == 3 and answer["target_s"] == 300.0
    whole = answer["areas"][0]
    assert whole["place"] == "*" and f"{whole['covered'][3] / whole['elders']:.1%}" == rows["all"]["at"] + "%"
    listed = sum(len(a["uncovered"]) for a in answer["areas"] if a["level"] == "community")
    assert listed == whole["elders"] - whole["covered"][3]
    with (out / "coverage.csv").open(encoding="utf-8") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == 24 * len(answer["areas"])


def test_the_command_refuses_a_bad_hour_and_a_missing_registry(tmp_path: Path) -> None:
    missing = anxin("coverage", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "out"))
    assert missing.returncode == 2 and "no registry" in missing.stderr
    files = city.generate(tmp_path / "city", seed=3, elders=5, caregivers=2, clinics=1)
    data = import_city(tmp_path / "data", files)
    bad = anxin("coverage", "--data", str(data), "--out", str(tmp_path / "out"), "--hour", "24")
    assert bad.returncode == 2 and "hour must be 0 to 23" in bad.stderr
    assert not (tmp_path / "out").exists()
