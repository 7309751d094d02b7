"""The drill's timeline plot (PNG, matplotlib's Agg backend), drawn from the scorecard's ``timeline`` alone.

Three panels on one drill-time axis (minutes): what the devices and callers sent per minute; every person
incident as a bar from the alarm to the door (waiting for an offer, offered, travelling, on scene), with its
escalations; and the load: open incidents and caregivers on duty and busy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

KIND_COLOURS = {"sos": "#d62728", "fall": "#ff7f0e", "medical": "#e377c2", "low_battery": "#7f7f7f",
                "mains_loss": "#1f77b4", "restore": "#aec7e8", "call": "#2ca02c"}  # fmt: skip
STEP_COLOURS = {"wait": "#bbbbbb", "offered": "#ffbf3f", "travel": "#4c8bd6", "scene": "#4caf50", "none": "#f4a6a6"}


def draw(card: dict[str, Any], path: Path) -> None:
    timeline = card["timeline"]
    rows = [dict(zip(timeline["columns"], row, strict=True)) for row in timeline["incidents"]]
    sent = [dict(zip(timeline["sent_columns"], row, strict=True)) for row in timeline["sent"]]
    scenario = card["scenario"]
    end = max(scenario["duration_s"], card["run"]["wall_s"] * scenario["speedup"]) / 60
    fig, (top, middle, bottom) = plt.subplots(
        3, 1, figsize=(14, 10), sharex=True, gridspec_kw={"height_ratios": [1.2, 3, 1.4]}
    )
    _sent(top, sent, card, end)
    _incidents(middle, [r for r in rows if not r["technical"]], card, end)
    _load(bottom, rows, timeline.get("duty", []), end)
    for axes in (top, middle, bottom):
        axes.axvline(scenario["duration_s"] / 60, color="black", linestyle=":", linewidth=1)
        axes.set_xlim(0, end)
        axes.grid(axis="x", alpha=0.3)
    bottom.set_xlabel("drill time (minutes); dotted line: the traffic stops, the drill drains")
    fig.suptitle(_title(card), fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _title(card: dict[str, Any]) -> str:
    s, t = card["scenario"], card["times"]
    misses = [row["figure"] for row in card["verdict"] if not row["met"]]
    verdict = "all targets met" if not misses else f"{len(misses)} target(s) missed"
    return (
        f"drill {s['name']} — {s['title']} (×{s['speedup']:g}, {card['incidents']['person']} person incidents): "
        f"p90 offer {_short(t['offer'])}, accepted {_short(t['accepted'])}, "
        f"on scene {_short(t['on_scene'])}; {verdict}"
    )


def _short(step: dict[str, Any]) -> str:
    seconds = step["p90"]
    if seconds is None:
        return "not reached" if step["waiting"] else "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _sent(axes: Axes, sent: Sequence[dict[str, Any]], card: dict[str, Any], end: float) -> None:
    kinds = [k for k in KIND_COLOURS if any(s["kind"] == k for s in sent)]
    bins = [i for i in range(int(end) + 2)]
    series = [[s["at"] / 60 for s in sent if s["kind"] == k] for k in kinds]
    if series:
        axes.hist(series, bins=bins, stacked=True, color=[KIND_COLOURS[k] for k in kinds], label=kinds)
        counts = [sum(1 for s in sent if int(s["at"] // 60) == i) for i in bins]
        if max(counts) > 20 * max(1, sorted(counts)[len(counts) * 9 // 10]):
            axes.set_yscale("log")
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    calls = card["calls"]
    axes.set_ylabel("sent per minute")
    axes.set_title(
        f"devices: {card['alarms']['sent']} alarms sent, {card['alarms']['acknowledged']} acknowledged, "
        f"{card['alarms']['lost']} lost; hotline: {calls['placed']} calls",
        fontsize=9,
    )


def _incidents(axes: Axes, rows: Sequence[dict[str, Any]], card: dict[str, Any], end: float) -> None:
    target = card["times"]["on_scene"]["target"]
    for y, row in enumerate(rows):
        _bar(axes, y, row, end, target)
    axes.set_ylim(-1, max(1, len(rows)))
    axes.invert_yaxis()
    axes.set_ylabel("person incidents (in order)")
    handles: list[Patch | Line2D] = [Patch(color=STEP_COLOURS[k], label=label) for k, label in (
        ("wait", "waiting for an offer"), ("offered", "offered, not yet accepted"), ("travel", "accepted, on the way"),
        ("scene", "on scene"), ("none", "nobody accepted"))]  # fmt: skip
    handles += [
        Line2D([], [], color="red", marker="x", linestyle="", label="escalated to supervisors"),
        Line2D([], [], color="purple", marker="D", linestyle="", label="handed to 120"),
        Line2D([], [], color="black", marker="|", linestyle="", label="needed manual dispatch"),
    ]
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    axes.set_title(f"incidents: bars edged red reached the door after {target / 60:.0f} min", fontsize=9)


def _bar(axes: Axes, y: int, row: dict[str, Any], end: float, target: float) -> None:
    def m(value: float | None) -> float | None:
        return None if value is None else value / 60

    opened = m(row["opened"]) or 0.0
    stop = m(row["ended"]) or m(row["escalated"]) or end
    steps = [(row["offer"], "offered"), (row["accepted"], "travel"), (row["on_scene"], "scene")]
    marks: list[tuple[float, str]] = [(opened, "wait")] + [(t / 60, k) for t, k in steps if t is not None]
    finish = m(row["done"]) or stop
    for (start, kind), following in zip(marks, [*marks[1:], (finish, "")], strict=True):
        colour = STEP_COLOURS["none" if kind == "offered" and row["accepted"] is None else kind]
        axes.barh(y, max(following[0] - start, 0.05), left=start, height=0.8, color=colour, linewidth=0)
    late = row["on_scene"] is not None and row["on_scene"] - row["opened"] > target
    if late:
        axes.barh(y, finish - opened, left=opened, height=0.8, fill=False, edgecolor="red", linewidth=0.6)
    if row["unanswered"]:
        axes.plot([opened], [y], marker="x", color="red", markersize=4)
    if row["escalated"] is not None:
        axes.plot([row["escalated"] / 60], [y], marker="D", color="purple", markersize=3)
    if row["needs_manual"]:
        axes.plot([opened], [y], marker="|", color="black", markersize=6)


def _load(axes: Axes, rows: Sequence[dict[str, Any]], duty: Sequence[Sequence[float]], end: float) -> None:
    times = [i / 4 for i in range(int(end * 4) + 1)]

    def open_at(t: float, technical: bool) -> int:
        return sum(
            1
            for r in rows
            if r["technical"] == technical and r["opened"] / 60 <= t and (r["ended"] is None or r["ended"] / 60 > t)
        )

    def busy_at(t: float) -> int:
        return sum(
            1
            for r in rows
            if r["accepted"] is not None and r["accepted"] / 60 <= t and ((r["done"] or r["ended"] or 1e12) / 60) > t
        )

    axes.plot(times, [open_at(t, False) for t in times], color="#d62728", label="open person incidents")
    axes.plot(times, [busy_at(t) for t in times], color="#4caf50", label="caregivers on a job")
    if duty:
        xs, ys = [d[0] / 60 for d in duty] + [end], [d[1] for d in duty] + [duty[-1][1]]
        axes.step(xs, ys, where="post", color="black", linewidth=0.8, label="caregivers on duty")
    axes.set_ylabel("people, person incidents")
    axes.set_ylim(bottom=0)
    if any(r["technical"] for r in rows):
        technical = axes.twinx()  # a power cut's hundreds would flatten everything else
        technical.plot(times, [open_at(t, True) for t in times], color="#1f77b4", linestyle="--", linewidth=1)
        technical.set_ylabel("open technical incidents (dashed)", color="#1f77b4")
        technical.set_ylim(bottom=0)
    axes.legend(loc="upper left", bbox_to_anchor=(1.06, 1.0), fontsize=8)
