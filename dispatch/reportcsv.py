"""The period report as one flat CSV table (dispatch.periodreport's dict, written out for a spreadsheet).

What it owns
    :func:`columns` and :func:`to_csv`: one row per section and group -- ``totals``, each area, each alarm
    type, each source, each day, each responder -- under one header row. A figure's nested keys are joined
    with a dot (``answer_s.median``, ``outcomes.to_120``), a list's items numbered from 0
    (``answer_buckets.0``) or, for the satisfaction scores, by score (``follow_ups.satisfaction.1`` to ``.5``).

Rules
    1. Numbers are written as numbers, nothing measured (None) as an empty cell; a day's and a responder's
       row fill only their own columns. Reading a cell back with ``float`` gives the JSON's figure.
    2. UTF-8 with a byte-order mark first and CRLF line ends, so a spreadsheet in Chinese opens it right;
       text that a spreadsheet would take for a formula is written as text (dispatch.exporter rule 4).

Never
    Never compute a figure here: everything comes from the report's dict.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

from dispatch.exporter import BOM, as_text

#: the first columns of every row: which section, which group in it
KEYS = ("section", "group")
#: a responder's columns besides the figures'
RESPONDER = ("name", "kind", "offers", "accepted", "declined", "expired", "done", "on_job_s")
#: the sections grouped by a name, and the name's key in the report
SECTIONS = (("areas", "area"), ("alarm_types", "alarm_type"), ("sources", "source"))


def flat(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """A figure's leaves as (dotted column, value)."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from flat(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        first = 1 if prefix.endswith("satisfaction") else 0
        for number, inner in enumerate(value, start=first):
            yield from flat(inner, f"{prefix}.{number}")
    else:
        yield prefix, value


def columns(report: Mapping[str, Any]) -> list[str]:
    figure_columns = [column for column, _ in flat(report["totals"])]
    extra = [c for c in RESPONDER if c not in figure_columns]  # a day's columns are among the figures'
    return [*KEYS, *figure_columns, *extra]


def rows(report: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    yield {"section": "totals", "group": "", **dict(flat(report["totals"]))}
    for section, key in SECTIONS:
        for row in report[section]:
            yield {"section": section, "group": row[key], **dict(flat(row["figures"]))}
    for day in report["days"]:
        yield {"section": "days", "group": day["day"], **{k: v for k, v in day.items() if k != "day"}}
    for person in report["responders"]:
        yield {"section": "responders", "group": person["responder_id"],
               **{k: v for k, v in person.items() if k != "responder_id"}}  # fmt: skip


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return as_text(value)
    return value


def to_csv(report: Mapping[str, Any]) -> str:
    """The report as CSV text, BOM first (rules 1 and 2)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    header = columns(report)
    writer.writerow(header)
    for row in rows(report):
        writer.writerow([_cell(row.get(column)) for column in header])
    return out.getvalue()
