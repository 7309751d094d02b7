"""The scorecard as data (JSON), as a table for the terminal, and the verdict: each figure against its target.

What it owns
    :func:`build` assembles the scorecard from the matched records and the incident clocks
    (:mod:`simulators.scorecard`); :func:`table` renders it; :func:`write_json` stores it. The layout of
    the JSON is documented in docs/drills/README.md; ``timeline`` holds the raw drill-time milestones the
    plot is drawn from, so the PNG can be redrawn from the JSON alone.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulators.callers import CallRecord
from simulators.devices import AlarmRecord
from simulators.scenario import Scenario
from simulators.scorecard import (
    IncidentClock,
    Matching,
    incident_clocks,
    match_alarms,
    match_calls,
    percentile,
    timing,
)

Entry = dict[str, Any]
STEPS = ("acknowledged", "offer", "accepted", "on_scene")
LOCATION_UNKNOWN = "location unknown"  # an unknown caller: no address to send anyone to
STEP_NAMES = {"acknowledged": "acknowledged", "offer": "first offer", "accepted": "accepted", "on_scene": "on scene"}


def build(
    scenario: Scenario,
    *,
    alarms: Sequence[AlarmRecord],
    calls: Sequence[CallRecord],
    entries: Sequence[Entry],
    checkins: dict[str, int],
    t0: float,
    run: dict[str, Any],
) -> dict[str, Any]:
    clocks = incident_clocks(entries)
    matching = match_alarms(alarms, entries, clocks)
    person = [c for c in clocks.values() if not c.technical]
    technical = [c for c in clocks.values() if c.technical]
    card: dict[str, Any] = {
        "scenario": _scenario(scenario),
        "run": run,
        "alarms": _alarms(alarms, matching),
        "restores": _restores(alarms),
        "checkins": dict(checkins),
        "calls": match_calls(calls, entries, clocks),
        "drill_marks": {"entries": sum(bool(e["drill"]) for e in entries), "missing": matching.unmarked},
        "incidents": {
            "person": len(person),
            "technical": len(technical),
            "by_type": dict(sorted(Counter(c.alarm_type for c in clocks.values()).items())),
            "offered": sum(c.offer is not None for c in person),
            "never_offered": sorted(c.incident_id for c in person if c.offer is None),
        },
        "times": _times(person, scenario),
        "decisions": _decisions(person, scenario.speedup),
        "escalations": {
            "person": sum(c.unanswered for c in person),
            "technical": sum(c.unanswered for c in technical),
            "to_outside": sum(c.escalated is not None for c in person),
        },
        "manual": {
            "incidents": sum(c.needs_manual > 0 for c in person),
            "backlog": sum(c.waited > 0 for c in person),  # of those, waited in the backlog for someone free
            "location_unknown": sum(c.manual_reason == LOCATION_UNKNOWN for c in person),
            "located": sum(c.located is not None for c in person),
            "operator_offers": sum(c.operator_offers for c in person),
            "reasons": dict(sorted(Counter(_reason(c.manual_reason) for c in person if c.needs_manual).items())),
        },
        "undecided": sorted(c.incident_id for c in person if not c.decided),
        "timeline": _timeline(clocks.values(), alarms, calls, t0, scenario.speedup),
    }
    card["timeline"]["duty"] = _duty(entries, t0, scenario.speedup)
    if scenario.services.orders_per_hour > 0:
        card["services"] = services_card(entries, scenario.speedup)
    card["verdict"] = verdict(card, scenario)
    return card


def _reason(reason: str | None) -> str:
    """The engine's reason without its numbers: "no free responder with skill nursing within 5 km" stays."""
    text = reason or "unknown"
    return "offers declined or expired" if text.endswith("offers declined or expired") else text


def _scenario(scenario: Scenario) -> dict[str, Any]:
    shifts = [s.model_dump() for s in scenario.caregivers.shifts]
    return {
        "name": scenario.name, "title": scenario.title, "duration_s": scenario.duration,
        "drain_s": scenario.drain, "speedup": scenario.speedup, "seed": scenario.seed,
        "devices": scenario.devices.count, "operators": scenario.operators.count, "shifts": shifts,
        "no_show_share": scenario.caregivers.no_show_share,
    }  # fmt: skip


def _alarms(alarms: Sequence[AlarmRecord], matching: Matching) -> dict[str, Any]:
    sent = [a for a in alarms if a.kind != "restore" and a.sends]
    attempts = sum(len(a.sends) for a in sent)
    return {
        "sent": len(sent),
        "acknowledged": sum(a.acknowledged for a in sent),
        "recorded": len(matching.recorded) + len(matching.already_open),
        "recorded_new": len(matching.recorded),
        "recorded_condition_open": len(matching.already_open),
        "lost": len(matching.lost),
        "lost_alarms": [a.as_dict() for a in matching.lost],
        "unacknowledged": len(matching.unacknowledged),
        "attempts": attempts,
        "repeats": attempts - len(sent),
        "repeats_recorded_again": matching.unused_entries,
        "by_kind": dict(sorted(Counter(a.kind for a in sent).items())),
        "by_protocol": dict(sorted(Counter(f"{a.protocol}/{a.transport}" for a in sent).items())),
    }


def _restores(alarms: Sequence[AlarmRecord]) -> dict[str, int]:
    restores = [a for a in alarms if a.kind == "restore"]
    return {"sent": len(restores), "acknowledged": sum(a.acknowledged for a in restores)}


def _times(person: Sequence[IncidentClock], scenario: Scenario) -> dict[str, Any]:
    targets, speedup = scenario.targets, scenario.speedup
    result: dict[str, Any] = {}
    for step in STEPS:
        reached = [c for c in person if getattr(c, step) is not None]
        waiting = sum(1 for c in person if getattr(c, step) is None and c.ended is None and c.escalated is None)
        durations = [(getattr(c, step) - c.opened) * speedup for c in reached]
        result[step] = timing(durations, waiting, len(person), getattr(targets, step), targets.percentile)
    return result


def _decisions(person: Sequence[IncidentClock], speedup: float) -> dict[str, Any]:
    """After a caregiver's "done" the operator decides: resolve it, or hand it to 120 (drill seconds)."""
    done = [c for c in person if c.done is not None]
    waits = [(c.decision - c.done) * speedup for c in done if c.decision is not None and c.done is not None]
    to_120 = sum(1 for c in done if c.escalated is not None and c.done is not None and c.escalated >= c.done)
    return {
        "done": len(done),
        "decided": len(waits),
        "to_120": to_120,
        "resolved": len(waits) - to_120,
        "waiting": len(done) - len(waits),
        "p50": _round(percentile(waits, 50)),
        "p90": _round(percentile(waits, 90)),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _timeline(
    clocks: Sequence[IncidentClock] | Any,
    alarms: Sequence[AlarmRecord],
    calls: Sequence[CallRecord],
    t0: float,
    speedup: float,
) -> dict[str, Any]:
    def drill(ts: float | None) -> float | None:
        return None if ts is None else round((ts - t0) * speedup, 1)

    columns = ["incident", "type", "technical", "opened", "acknowledged", "offer", "accepted", "on_scene", "done",
               "ended", "escalated", "unanswered", "needs_manual"]  # fmt: skip
    rows = [
        [c.incident_id, c.alarm_type, c.technical, drill(c.opened), drill(c.acknowledged), drill(c.offer),
         drill(c.accepted), drill(c.on_scene), drill(c.done), drill(c.ended), drill(c.escalated), c.unanswered,
         c.needs_manual]
        for c in sorted(clocks, key=lambda c: c.opened)
    ]  # fmt: skip
    sent = [[drill(a.sends[0]), a.kind, a.acknowledged, len(a.sends)] for a in alarms if a.sends]
    sent += [[drill(c.placed_at), "call", c.answered, 1] for c in calls]
    sent.sort(key=lambda row: row[0] or 0.0)
    return {"columns": columns, "incidents": rows, "sent_columns": ["at", "kind", "acknowledged", "attempts"],
            "sent": sent}  # fmt: skip


def services_card(entries: Sequence[Entry], speedup: float) -> dict[str, Any]:
    """The drill's service orders: how many were ordered, and how each ended; how late the caregivers checked in
    after the window opened (drill seconds, p50 and p90)."""
    window: dict[str, float] = {}
    ended: dict[str, str] = {}
    late: list[float] = []
    started: set[str] = set()
    for entry in entries:
        kind, payload = entry["kind"], entry["payload"]
        if not entry["drill"] or not kind.startswith("service."):
            continue
        order = payload["order_id"]
        if kind in ("service.ordered", "service.scheduled", "service.rescheduled"):
            window[order] = payload["start"]
        elif kind == "service.started" and order in window:
            started.add(order)
            late.append(max(0.0, payload["at"] - window[order]) * speedup)
        elif kind in ("service.delivered", "service.no_show", "service.cancelled"):
            ended[order] = kind.removeprefix("service.")
    p50, p90 = percentile(late, 50), percentile(late, 90)
    return {
        "ordered": len(window),
        "started": len(started),
        "delivered": sum(v == "delivered" for v in ended.values()),
        "no_show": sum(v == "no_show" for v in ended.values()),
        "cancelled": sum(v == "cancelled" for v in ended.values()),
        "open": len(window) - len(ended),
        "check_in_late_s": {"p50": None if p50 is None else round(p50), "p90": None if p90 is None else round(p90)},
    }


def _duty(entries: Sequence[Entry], t0: float, speedup: float) -> list[list[float]]:
    """Caregivers on duty over drill time: [drill second, count] at every change."""
    on: set[str] = set()
    series: list[list[float]] = []
    for entry in entries:
        if entry["kind"] != "responder.duty":
            continue
        payload = entry["payload"]
        (on.add if payload["on"] else on.discard)(payload["responder_id"])
        series.append([round(max(0.0, entry["ts"] - t0) * speedup, 1), len(on)])
    return series


# -- the verdict ------------------------------------------------------------------------------------------


def verdict(card: dict[str, Any], scenario: Scenario) -> list[dict[str, Any]]:
    """One row per figure with a target: (figure, value, target, met)."""
    targets = scenario.targets
    p = f"p{targets.percentile:g}"
    located = card["incidents"]["person"] - card["manual"]["location_unknown"]
    manual = card["manual"]["incidents"] - card["manual"]["location_unknown"]
    zeros = {
        "alarms lost (acknowledged, not recorded)": card["alarms"]["lost"],
        "alarms never acknowledged": card["alarms"]["unacknowledged"],
        "calls lost": card["calls"]["lost"],
        "drill marks missing": card["drill_marks"]["missing"] + card["calls"]["unmarked"],
    }
    rows = [_row(figure, value, "= 0", value == 0) for figure, value in zeros.items()]
    for step in STEPS:
        t = card["times"][step]
        shown = "—" if t["n"] + t["waiting"] == 0 else f"{p} {'never' if t['beyond'] else _clock(t['value'])}"
        figure = f"time to {STEP_NAMES[step]} ({t['n']} reached, {t['waiting']} still waiting)"
        rows.append(_row(figure, shown, f"≤ {_clock(t['target'])}", t["met"] or t["n"] + t["waiting"] == 0))
    escalations = card["escalations"]["person"]
    rows.append(_row("person alarms escalated to supervisors", escalations, f"≤ {targets.escalations}",
                     escalations <= targets.escalations))  # fmt: skip
    share = manual / located if located else 0.0
    rows.append(_row("located person incidents needing manual dispatch", f"{manual} ({share:.0%})",
                     f"≤ {targets.manual_share:.0%}", share <= targets.manual_share))  # fmt: skip
    undecided = len(card["undecided"])
    rows.append(_row("incidents left without a decision", undecided, f"≤ {targets.undecided}",
                     undecided <= targets.undecided))  # fmt: skip
    unoffered = len(card["incidents"]["never_offered"])
    rows.append(_row("person incidents never offered (unknown callers included)", unoffered,
                     f"≤ {targets.unoffered}", unoffered <= targets.unoffered))  # fmt: skip
    return rows


def _row(figure: str, value: Any, target: str, met: bool) -> dict[str, Any]:
    return {"figure": figure, "value": value, "target": target, "met": bool(met)}


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


# -- output -----------------------------------------------------------------------------------------------


def table(card: dict[str, Any]) -> str:
    s, a, c = card["scenario"], card["alarms"], card["calls"]
    i, d = card["incidents"], card["decisions"]
    lines = [
        f"drill {s['name']}: {_clock(s['duration_s'])} of drill time at ×{s['speedup']:g} "
        f"({card['run']['wall_s']:.0f} s wall), {s['devices']} devices",
        f"  alarms   sent {a['sent']}  acknowledged {a['acknowledged']}  recorded {a['recorded']}"
        f" ({a['recorded_condition_open']} on an open condition)  lost {a['lost']}  repeats {a['repeats']}",
        f"  calls    placed {c['placed']}  answered {c['answered']}  recorded {c['recorded']}  lost {c['lost']}"
        f"  classified {c['classified']} ({c['as_scripted']} as the caller meant)  {_kinds(c['by_kind'])}",
        f"  callers  emergencies {c['emergencies']} -> {c['incidents']} incidents  unknown callers' emergencies"
        f" {c['unknown_emergencies']}: placed {c['unknown_placed']}, offered {c['unknown_offered']}"
        f"  silent {c['silent']} (called back {c['called_back']})",
        f"  incidents {i['person']} person ({i['offered']} offered), {i['technical']} technical",
        f"  after done {d['done']}: decided {d['decided']} (resolved {d['resolved']}, to 120 {d['to_120']}),"
        f" waiting {d['waiting']}; p50 {_clock(d['p50'])}  p90 {_clock(d['p90'])}",
    ]
    if "services" in card:
        v = card["services"]
        late = v["check_in_late_s"]
        lines.append(
            f"  services ordered {v['ordered']}  checked in {v['started']}  delivered {v['delivered']}"
            f"  no-show {v['no_show']}  cancelled {v['cancelled']}  open {v['open']}; checked in after the window"
            f" opened p50 {_clock(late['p50'])}  p90 {_clock(late['p90'])}"
        )
    lines.append("")
    for step in STEPS:
        t = card["times"][step]
        p50, p90, top = (_step_clock(t, key) for key in ("p50", "p90", "max"))
        lines.append(
            f"  {STEP_NAMES[step]:<13} reached {t['n']:>4} waiting {t['waiting']:>3} of {t['of']:<4} "
            f"p50 {p50:>12}  p90 {p90:>12}  max {top:>12}  target {_clock(t['target'])}"
        )
    lines.append("")
    width = max(len(r["figure"]) for r in card["verdict"])
    for row in card["verdict"]:
        mark = "ok  " if row["met"] else "MISS"
        lines.append(f"  {mark} {row['figure']:<{width}}  {row['value']!s:>14}  target {row['target']}")
    return "\n".join(lines)


def _kinds(counts: dict[str, int]) -> str:
    return " ".join(f"{kind} {n}" for kind, n in counts.items())


def _step_clock(step: dict[str, Any], key: str) -> str:
    """A duration of the table, or "(waiting)" when it lands on an incident still waiting at the end."""
    return "(waiting)" if step[key] is None and step["waiting"] else _clock(step[key])


def write_json(card: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(card) + "\n", encoding="utf-8")


def dumps(value: Any, indent: str = "") -> str:
    """JSON, indented, but with every list of plain values (a timeline row) on one line: diffable and short."""
    inner = indent + " "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {dumps(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return "[\n" + ",\n".join(inner + dumps(v, inner) for v in value) + f"\n{indent}]"
    return json.dumps(value, ensure_ascii=False)
