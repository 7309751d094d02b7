"""``anxin coverage``: the 15-minute care circle of a data folder, as a table, CSV, JSON and a map.

It reads the registry read-only (a running server may hold the folder: SQLite's WAL lets a reader in), computes
with :mod:`dispatch.coverage`, prints per community the share of elders covered at its worst and its best hour,
and writes ``coverage.csv`` (one row per area and hour), ``coverage.json`` (what ``GET /api/coverage`` answers)
and the map, ``coverage.png`` and ``coverage.svg`` (matplotlib): elders green when a responder reaches them at
the map's hour, red when nobody does, responders by kind. Titles are Chinese when a CJK font is installed
(fonts-wqy-microhei, Noto Sans CJK), English otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import aiosqlite
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from dispatch.coverage import (
    HOURS,
    Area,
    Coverage,
    areas,
    check_hour,
    check_target,
    compute,
    duty_mask,
    report,
    uncovered,
)
from dispatch.registry import Elder, Responder
from dispatch.settings import Settings
from dispatch.store import SqliteRegistry

#: fonts with Chinese glyphs, most likely installed first
CJK_FONTS = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Source Han Sans SC", "SimHei")
KIND_MARKS = {"caregiver": ("^", "#1f4e9c", "caregiver 护理员"), "volunteer": ("D", "#8e44ad", "volunteer 志愿者")}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "coverage",
        help="the share of elders a responder reaches within 15 minutes, by hour and community",
        description="Per community (and street, district) and hour of the day: how many elders a centre caregiver "
        "or volunteer working then reaches within the target by the matcher's ETA, and how many two reach. "
        "Reads the registry read-only; writes coverage.csv, coverage.json, coverage.png and coverage.svg "
        "(docs/coverage.md).",
    )
    parser.add_argument("--data", type=Path, help="data folder (ANXIN_DATA)")
    parser.add_argument("--config", type=Path, help="TOML settings file (ANXIN_CONFIG)")
    parser.add_argument("--target-min", type=float, help="the target in minutes (default coverage_target_s: 15)")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the files (default: here)")
    parser.add_argument("--hour", type=int, help="the map's hour, also shown in the table (default: the worst)")
    parser.add_argument("--per-hour", action="store_true", help="print every hour's share per community")
    return parser


def run(settings: Settings, args: argparse.Namespace) -> int:
    if settings.journal_url is not None:
        print("anxin coverage: reads an embedded data folder; a cluster's figures are GET /api/coverage",
              file=sys.stderr)  # fmt: skip
        return 2
    if not settings.db_path.exists():
        print(f"anxin coverage: no registry in {settings.data}", file=sys.stderr)
        return 2
    target = settings.coverage_target_s if args.target_min is None else check_target(args.target_min * 60.0)
    hour = None if args.hour is None else check_hour(args.hour)
    elders, responders = asyncio.run(read_registry(settings.db_path))
    computed = compute(elders, responders, target_s=target)
    answer = report(computed, hour=hour)
    print_table(areas(computed), target, answer["hour"], per_hour=args.per_hour, chosen=hour)
    written = write_files(computed, answer, args.out)
    print(f"{len(computed.responders)} responders counted ({_excluded(computed)}); {answer['assumption']}")
    print("written: " + ", ".join(str(path) for path in written))
    return 0


async def read_registry(db_path: Path) -> tuple[list[Elder], list[Responder]]:
    """The elders and responders of a registry file, opened read-only."""
    db = await aiosqlite.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        registry = SqliteRegistry(db)
        return await registry.elders(), await registry.responders()
    finally:
        await db.close()


def _excluded(computed: Coverage) -> str:
    words = {"clinic": "clinics", "contracted": "contracted staff", "no_whole_hour": "working no whole hour"}
    left = [f"{n} {words[why]}" for why, n in sorted(computed.excluded.items())]
    return "left out: " + (", ".join(left) if left else "none")


def print_table(every: Sequence[Area], target_s: float, map_hour: int, *, per_hour: bool, chosen: int | None) -> None:
    print(f"coverage within {target_s / 60:g} min, hours of the day 0-23 (local); the map shows {map_hour:02d}:00")
    head = f"{'place':<28}  {'elders':>6}  {'worst':>12}  {'best':>12}  {'2+ at worst':>11}"
    if chosen is not None:
        head += f"  {f'at {chosen:02d}:00':>8}"
    if per_hour:
        head += "  " + " ".join(f"{h:>4}" for h in range(HOURS))
    print(head)
    for area in every:
        worst, best = area.worst_hour, area.best_hour
        twice = area.covered_twice[worst] / area.elders if area.elders else 1.0
        line = (
            f"{_pad(_label(area), 28)}  {area.elders:>6}  {worst:02d}:00 {area.share(worst):>6.1%}  "
            f"{best:02d}:00 {area.share(best):>6.1%}  {twice:>11.1%}"
        )
        if chosen is not None:
            line += f"  {area.share(chosen):>8.1%}"
        if per_hour:
            line += "  " + " ".join(f"{area.share(h) * 100:>4.0f}" for h in range(HOURS))
        print(line)


def _pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal columns (a Chinese character takes two)."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - used)


def _label(area: Area) -> str:
    return "all" if area.level == "all" else area.place


def write_files(computed: Coverage, answer: dict[str, object], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "coverage.csv", out / "coverage.json", out / "coverage.png", out / "coverage.svg"]
    write_csv(areas(computed), paths[0])
    paths[1].write_text(json.dumps(answer, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    hour = answer["hour"]
    assert isinstance(hour, int)
    draw_map(computed, hour, paths[2:])
    return paths


def write_csv(every: Sequence[Area], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["level", "place", "elders", "hour", "covered", "covered_share", "covered_twice",
                         "covered_twice_share"])  # fmt: skip
        for area in every:
            for hour in range(HOURS):
                twice = area.covered_twice[hour] / area.elders if area.elders else 1.0
                writer.writerow([area.level, area.place, area.elders, hour, area.covered[hour],
                                 f"{area.share(hour):.4f}", area.covered_twice[hour], f"{twice:.4f}"])  # fmt: skip


def cjk_font() -> str | None:
    """The first installed font of :data:`CJK_FONTS`, or None."""
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def draw_map(computed: Coverage, hour: int, paths: Sequence[Path]) -> None:
    """Elders coloured by whether anyone reaches them at ``hour``, responders working then by kind."""
    font = cjk_font()
    with plt.rc_context({"font.family": [font, "DejaVu Sans"]} if font else None):
        fig, axes = plt.subplots(figsize=(11, 10))
        missing = {elder.elder_id for elder in uncovered(computed, hour)}
        reached = [e for e in computed.elders if e.elder_id not in missing]
        alone = [e for e in computed.elders if e.elder_id in missing]
        axes.scatter([e.lon for e in reached], [e.lat for e in reached], s=6, c="#4caf50", alpha=0.5, linewidths=0)
        axes.scatter([e.lon for e in alone], [e.lat for e in alone], s=12, c="#d62728", linewidths=0)
        working = [r for r in computed.responders if _works(r, hour)]
        for kind, (marker, colour, _) in KIND_MARKS.items():
            these = [r for r in working if r.kind == kind]
            axes.scatter([r.lon for r in these], [r.lat for r in these], marker=marker, s=28, c=colour,
                         edgecolors="white", linewidths=0.5)  # fmt: skip
        _label_communities(axes, computed, chinese=font is not None)
        handles = [
            Line2D([], [], marker="o", linestyle="", color="#4caf50", label=f"covered at {hour:02d}:00"),
            Line2D([], [], marker="o", linestyle="", color="#d62728", label="nobody within the target"),
        ] + [Line2D([], [], marker=m, linestyle="", color=c, label=label) for m, c, label in KIND_MARKS.values()]
        axes.legend(handles=handles, loc="upper left", fontsize=9)
        axes.set_xlabel("longitude (WGS-84)")
        axes.set_ylabel("latitude (WGS-84)")
        axes.set_aspect(1 / max(0.2, _cos_mid(computed)))
        axes.set_title(_title(computed, hour, chinese=font is not None), fontsize=12)
        fig.tight_layout()
        for path in paths:
            fig.savefig(path, dpi=110)
        plt.close(fig)


def _works(responder: Responder, hour: int) -> bool:
    return bool(duty_mask(responder.hours) >> hour & 1)


def _cos_mid(computed: Coverage) -> float:
    lats = [e.lat for e in computed.elders] or [0.0]
    return math.cos(math.radians((min(lats) + max(lats)) / 2))


def _label_communities(axes: Axes, computed: Coverage, *, chinese: bool) -> None:
    points: dict[str, list[tuple[float, float]]] = {}
    for elder in computed.elders:
        points.setdefault(elder.community, []).append((elder.lat, elder.lon))
    share = {area.place: area for area in areas(computed) if area.level == "community"}
    for community, where in sorted(points.items()):
        lat = sum(p[0] for p in where) / len(where)
        lon = sum(p[1] for p in where) / len(where)
        area = share[community]
        worst = f"{area.share(area.worst_hour):.0%}"
        text = f"{community.split('/')[-1]}\n{worst}" if chinese else worst  # no CJK font: the names are boxes
        axes.annotate(text, (lon, lat), ha="center", va="center", fontsize=9,
                      bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.7, "lw": 0})  # fmt: skip


def _title(computed: Coverage, hour: int, *, chinese: bool) -> str:
    whole = areas(computed)[0]
    minutes = f"{computed.target_s / 60:g}"
    if chinese:
        return (
            f"{minutes} 分钟服务圈覆盖图（{hour:02d}:00）：{whole.covered[hour]}/{whole.elders} 位老人可在 {minutes} "
            f"分钟内得到护理员或志愿者上门；最差时段 {whole.worst_hour:02d}:00 覆盖 {whole.share(whole.worst_hour):.1%}"
        )
    return (
        f"{minutes}-minute care circle at {hour:02d}:00: {whole.covered[hour]} of {whole.elders} elders reached; "
        f"worst hour {whole.worst_hour:02d}:00 at {whole.share(whole.worst_hour):.1%}"
    )
