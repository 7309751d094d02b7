"""The elder's file (老人档案): everything about one elder, its timeline read from the journal, and the index of
each elder's entries that makes it quick.

What it owns
    :data:`SECTIONS`, the table of which entry kinds belong in an elder's file and in which part of it (the
    filters the page offers: alarms, calls, services, visits, assessments, notes; registry changes in "all"
    only; health readings for the chart, not the timeline). :class:`ElderEntries`, the per-elder index of entry
    sequence numbers the projection keeps (one int per entry, the seq and its drill mark, in one array per section),
    and the elders merged into another (``registry.elders_merged``), whose entries are the kept one's too.
    :func:`entry_elders`, which elder(s) an entry is about, and the views of the file's parts: a timeline line,
    the health series, an assessment, a masked resident id.

Rules
    1. Sans-I/O: nothing here reads the journal, a clock or the registry. The projection feeds the index as it
       applies each entry (:meth:`ElderEntries.add`); the caller reads the entries the index names.
    2. Kinds are named by their journal name, not their class, so kinds added by later releases
       (``assessment.recorded``, ``registry.elders_merged``) are filed from their stored body whether or not
       this release has a class for them.
    3. Entries are appended in sequence order, so each elder's index is sorted and a page "older than seq N"
       is a binary search and a walk backwards, never a scan of the journal.
    4. Drills are left out unless asked for; reads on record (``elder.viewed``) and positions never enter the
       file: they are audit and whereabouts, not what happened to the elder.

Never
    Never keep an entry's body in memory (the journal holds a million of them); never import a fact class that
    a later release adds.
"""

from __future__ import annotations

import heapq
import json
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any, Literal

from dispatch.identity import ResidentIdError, parse_resident_id
from dispatch.journal import Entry

Section = Literal["alarms", "calls", "services", "visits", "assessments", "notes", "registry", "health"]

#: the parts of the timeline, in the order the page offers them as filters; "health" feeds the chart only
TIMELINE_SECTIONS: tuple[Section, ...] = ("alarms", "calls", "services", "visits", "assessments", "notes", "registry")

#: the kinds that belong in an elder's file, and where (rule 2: by journal name). Offers made, declined and
#: expired, rankings and positions are the dispatcher's work, not the elder's history: who came is told by
#: ``offer.accepted`` and ``assignment.status``.
SECTIONS: dict[str, Section] = {
    "incident.opened": "alarms",
    "incident.alarm_attached": "alarms",
    "incident.acknowledged": "alarms",
    "incident.retyped": "alarms",
    "incident.located": "alarms",
    "incident.escalated": "alarms",
    "incident.resolved": "alarms",
    "incident.cancelled": "alarms",
    "incident.closed": "alarms",
    "offer.accepted": "alarms",
    "assignment.status": "alarms",
    "contact.notified": "alarms",
    "referral.made": "alarms",
    "referral.accepted": "alarms",
    "referral.declined": "alarms",
    "referral.arrived": "alarms",
    "referral.outcome": "alarms",
    "referral.cancelled": "alarms",
    "incident.note": "notes",
    "call.answered": "calls",
    "call.ended": "calls",
    "call.classified": "calls",
    "call.called_back": "calls",
    "follow_up.created": "calls",
    "follow_up.recorded": "calls",
    "follow_up.unreachable": "calls",
    "care_call.made": "calls",
    "follow_up.complaint": "notes",
    "follow_up.complaint_settled": "notes",
    "service.ordered": "services",
    "service.scheduled": "services",
    "service.rescheduled": "services",
    "service.assigned": "services",
    "service.started": "services",
    "service.delivered": "services",
    "service.confirmed": "services",
    "service.cancelled": "services",
    "service.no_show": "services",
    "plan.created": "services",
    "plan.ended": "services",
    "care_call.visit_proposed": "visits",
    "care_call.visit_settled": "visits",
    "plan.visit_missed": "visits",
    "plan.task_closed": "visits",
    "assessment.recorded": "assessments",
    "registry.elder": "registry",
    "registry.elders_merged": "registry",
    "registry.elder_deactivated": "registry",
    "registry.elder_reactivated": "registry",
    "registry.device_unbound": "registry",
    "device.test_started": "alarms",
    "device.test_passed": "alarms",
    "call.caller_picked": "calls",
    "call.dialed": "calls",
    "call.transferred": "calls",
    "elder.health": "health",
}

#: kinds whose entries only supervisors read (complaints: dispatch.followups rule 4)
AUDIT_KINDS = frozenset({"follow_up.complaint", "follow_up.complaint_settled"})
MERGED = "registry.elders_merged"

#: the fields of an entry's body a timeline line shows (short words and codes; never positions or keys)
DETAIL_FIELDS = (
    "alarm_type", "source", "outcome", "reason", "text", "status", "note", "item_id", "service", "name",
    "level", "care_level", "fields", "kind", "words", "result", "answer", "callback_outcome", "contact",
    "responder_id", "clinic_id", "by", "address", "month", "plan_id", "keep", "other", "changed", "wellbeing",
    "reached", "satisfaction", "resolution", "attempts", "relation", "channel", "test", "device_id", "protocol",
)  # fmt: skip
_TEXT_MAX = 300

#: the readings a watch reports (gateway.watch) and their units; others are shown as they came
UNITS = {"heart_rate": "bpm", "systolic": "mmHg", "diastolic": "mmHg", "spo2": "%", "body_temp_c": "°C", "steps": ""}


class ElderEntries:
    """Each elder's journal entries, by sequence number, one array per section of their file: 8 bytes an entry
    (rule 3). A section apart from the others, so that a year of health readings every few minutes is never
    walked through to find the few assessments or alarms between them."""

    def __init__(self) -> None:
        #: elder -> section -> seq << 1 | drill, ascending
        self._seqs: dict[str, dict[Section, array[int]]] = {}
        #: kept elder -> the elders merged into it; merged elder -> the one it was merged into
        self._merged: dict[str, list[str]] = {}
        self._into: dict[str, str] = {}

    def add(self, elder_id: str, seq: int, section: Section, drill: bool) -> None:
        sections = self._seqs.get(elder_id)
        if sections is None:
            sections = self._seqs[elder_id] = {}
        seqs = sections.get(section)
        if seqs is None:
            seqs = sections[section] = array("q")
        seqs.append(seq << 1 | int(drill))

    def merge(self, kept: str, merged: str) -> None:
        """``merged`` was the same person as ``kept``: the kept elder's file holds both histories."""
        if kept == merged or merged in self.family(kept):
            return
        self._merged.setdefault(kept, []).append(merged)
        self._into[merged] = kept

    def merged_into(self, elder_id: str) -> str | None:
        return self._into.get(elder_id)

    def family(self, elder_id: str) -> list[str]:
        """The elder and every elder merged into them, however deep."""
        found, todo = [], [elder_id]
        while todo:
            one = todo.pop()
            if one not in found:
                found.append(one)
                todo.extend(self._merged.get(one, ()))
        return found

    def newest(
        self,
        elder_id: str,
        sections: Iterable[Section],
        *,
        drill: bool = False,
        before: int | None = None,
        limit: int = 50,
    ) -> list[int]:
        """The sequence numbers of the elder's entries (theirs and those merged into them) in ``sections``,
        newest first, older than ``before`` when given, at most ``limit``; drills only when asked."""
        wanted = set(sections)
        streams = [
            self._backwards(seqs, before)
            for one in self.family(elder_id)
            for section, seqs in self._seqs.get(one, {}).items()
            if section in wanted
        ]
        found: list[int] = []
        for packed in heapq.merge(*streams, key=lambda p: -p):
            seq = packed >> 1
            if (drill or not packed & 1) and (not found or found[-1] != seq):
                found.append(seq)  # a merge is filed under both elders: once in the family's file
                if len(found) >= limit:
                    break
        return found

    @staticmethod
    def _backwards(seqs: array[int], before: int | None) -> Iterator[int]:
        end = len(seqs) if before is None else bisect_left(seqs, before << 1)
        for index in range(end - 1, -1, -1):
            yield seqs[index]


def body(entry: Entry) -> dict[str, Any]:
    """The stored body as JSON (what any release can read, rule 2)."""
    decoded = json.loads(entry.payload_json)
    return decoded if isinstance(decoded, dict) else {}


def entry_elders(
    entry: Entry,
    *,
    incident_elder: Callable[[str], str | None],
    call_elder: Callable[[str], str | None],
    order_elder: Callable[[str], str | None],
) -> tuple[str, ...]:
    """The elders an entry of the file is about: named in its body, or by its incident, call or order. A merge
    is about both elders. Nothing for an entry outside the file (:data:`SECTIONS`)."""
    if entry.kind not in SECTIONS:
        return ()
    fact = entry.fact
    if entry.kind == MERGED:
        merged = body(entry)
        return tuple(str(merged[k]) for k in ("keep", "other") if merged.get(k))
    named = getattr(fact, "elder_id", None)
    if named is None and entry.kind == "assessment.recorded":
        named = body(entry).get("elder_id")
    if isinstance(named, str) and named:
        return (named,)
    if entry.incident_id is not None:
        found = incident_elder(entry.incident_id)
        return (found,) if found else ()
    call_id = getattr(fact, "call_id", None)
    if isinstance(call_id, str):
        found = call_elder(call_id)
        return (found,) if found else ()
    order_id = getattr(fact, "order_id", None)
    if isinstance(order_id, str):
        found = order_elder(order_id)
        return (found,) if found else ()
    return ()


def line_view(entry: Entry, name: Callable[[str | None], str | None]) -> dict[str, Any]:
    """One line of the timeline: when, what (the kind: the page words it), who, and the body's short fields."""
    payload = body(entry)
    detail: dict[str, Any] = {}
    for key in DETAIL_FIELDS:
        value = payload.get(key)
        if isinstance(value, str):
            detail[key] = value[:_TEXT_MAX]
        elif isinstance(value, bool | int | float):
            detail[key] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            detail[key] = value[:20]
    if isinstance(detail.get("responder_id"), str):
        detail["responder_name"] = name(detail["responder_id"])
    if isinstance(detail.get("clinic_id"), str):
        detail["clinic_name"] = name(detail["clinic_id"])
    return {
        "seq": entry.seq,
        "ts": entry.ts,
        "kind": entry.kind,
        "section": SECTIONS.get(entry.kind),
        "drill": entry.drill,
        "actor": entry.actor,
        "actor_name": name(entry.actor),
        "incident_id": entry.incident_id or payload.get("incident_id"),  # an opening names it in its body
        "detail": detail,
    }


def health_series(entries: Iterable[Entry]) -> dict[str, dict[str, Any]]:
    """The readings of ``elder.health`` entries as one series per reading, oldest first: ``{"heart_rate":
    {"unit": "bpm", "points": [[ts, value], ...]}}``. Readings that are not numbers are left out."""
    series: dict[str, dict[str, Any]] = {}
    for entry in sorted(entries, key=lambda e: e.seq):
        readings = body(entry).get("readings")
        if not isinstance(readings, dict):
            continue
        for key, value in readings.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            line = series.setdefault(str(key), {"unit": UNITS.get(str(key), ""), "points": []})
            line["points"].append([entry.ts, value])
    return series


def assessment_view(entry: Entry, name: Callable[[str | None], str | None]) -> dict[str, Any]:
    """An ``assessment.recorded`` entry as the file shows it: the level (0-3), the grades, the care level it
    set, why, and the assessor (the entry's actor)."""
    payload = body(entry)
    grades = payload.get("grades")
    return {
        "seq": entry.seq,
        "ts": entry.ts,
        "assessment_id": payload.get("assessment_id"),
        "level": payload.get("level"),
        "grades": grades if isinstance(grades, dict) else {},
        "care_level": payload.get("care_level"),
        "reason": payload.get("reason", ""),
        "assessor": entry.actor,
        "assessor_name": name(entry.actor),
    }


def identity(resident_id: str | None, birth_date: date | None, *, unmasked: bool) -> dict[str, Any]:
    """Sex and birth as the resident identity number says (else the registry's birth date), and the number
    itself: whole for supervisors and admins, else the first 6 and last 4 only."""
    born = birth_date.isoformat() if birth_date else None
    shown: dict[str, Any] = {"resident_id": None, "sex": None, "birth_date": born}
    if not resident_id:
        return shown
    try:
        parsed = parse_resident_id(resident_id)
    except ResidentIdError:
        parsed = None
    if parsed is not None:
        shown["sex"] = "male" if parsed.male else "female"
        shown["birth_date"] = parsed.birth_date.isoformat()
    shown["resident_id"] = resident_id if unmasked else mask(resident_id)
    return shown


def mask(resident_id: str) -> str:
    """The first 6 (the region) and the last 4 characters; the birth date and sequence hidden."""
    if len(resident_id) <= 10:
        return "*" * len(resident_id)
    return resident_id[:6] + "*" * (len(resident_id) - 10) + resident_id[-4:]
