"""The period report as an Excel workbook (XLSX), for a district to send upward.

What it owns
    :func:`render_xlsx`: a report (the dict of ``GET /api/reports``, :mod:`console.reportwords` names its
    columns) in, the workbook's bytes out, written with openpyxl. Six sheets, named and headed in the chosen
    language's catalogue: the summary (汇总: the period, the scope, every figure of the totals, the answer-time
    buckets), the areas (分区), the alarm types (类型), the sources (来源), the days (每日) and the responders
    (人员), one row each, the totals' figures as columns.

Rules
    1. Numbers are numbers: counts as integers, seconds with one decimal, shares as the fraction they are with a
       percentage format (0.9167 shows 91.7%), so a spreadsheet sums and charts them; nothing measured is an
       empty cell, never 0.
    2. Text that a spreadsheet would take for a formula (starting with ``= + - @``) is written as text, with the
       cell's quote prefix: a name or an area typed as ``=HYPERLINK(...)`` stays a name.

Never
    Never write the workbook to disk; never add what the report does not hold (the caller scoped it).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from console.reportwords import (
    BUCKETS,
    DAY_COLUMNS,
    FIGURES,
    RESPONDER_COUNTS,
    Kind,
    alarm_words,
    area_words,
    figure,
    kind_words,
    period_words,
    say,
    source_words,
    title_words,
)

#: the first characters that make a spreadsheet read text as a formula
FORMULA_STARTS = ("=", "+", "-", "@")
FORMATS: dict[Kind, str] = {"n": "0", "share": "0.0%", "s": "0.0", "mean": "0.00"}
HEAD_FONT = Font(bold=True)
HEAD_FILL = PatternFill("solid", fgColor="E8EEF4")
#: the summary sheet's rows before its table: title, period, scope, drills, made
SUMMARY_HEAD_ROW = 7


def render_xlsx(report: Mapping[str, Any], *, scope: str, language: str = "zh-CN") -> bytes:
    """The workbook of a report; ``scope`` is the reader's part of the network in words (the title names it)."""
    book = Workbook()
    _summary(book.active or book.create_sheet(), report, scope, language)
    _by(book, "areas", "report.area", report["areas"], "area", lambda v: area_words(language, v), language)
    _by(book, "types", "report.alarm_type", report["alarm_types"], "alarm_type",
        lambda v: alarm_words(language, v), language)  # fmt: skip
    _by(book, "sources", "report.source", report["sources"], "source", lambda v: source_words(language, v), language)
    _days(book.create_sheet(say(language, "report.sheet.days")), report["days"], language)
    _responders(book.create_sheet(say(language, "report.sheet.responders")), report["responders"], language)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def put(sheet: Worksheet, row: int, column: int, value: object, kind: Kind | None = None) -> Cell:
    """One cell: a number with its format, or text that is never a formula (rule 2)."""
    cell = sheet.cell(row=row, column=column)
    if not isinstance(cell, Cell):  # a merged cell's place: this writer merges none
        raise TypeError(f"cell {row},{column} is merged")
    if isinstance(value, str):
        cell.value = value
        if value.startswith(FORMULA_STARTS):
            cell.data_type = "s"
            cell.quotePrefix = True
        return cell
    cell.value = value  # type: ignore[assignment]  # numbers and None, as the report holds them
    if kind is not None and isinstance(value, int | float):
        cell.number_format = FORMATS[kind]
    return cell


def _header(sheet: Worksheet, row: int, titles: Sequence[str]) -> None:
    for column, title in enumerate(titles, start=1):
        cell = put(sheet, row, column, title)
        cell.font = HEAD_FONT
        cell.fill = HEAD_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = f"B{row + 1}"


def _widths(sheet: Worksheet, widths: Sequence[float]) -> None:
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width


def _summary(sheet: Worksheet, report: Mapping[str, Any], scope: str, language: str) -> None:
    sheet.title = say(language, "report.sheet.summary")
    zone = ZoneInfo(report["period"]["timezone"])
    made = datetime.fromtimestamp(report["generated_at"], zone).strftime("%Y-%m-%d %H:%M")
    drills = "report.drill_included" if report["drill_included"] else "report.drill_excluded"
    by = say(language, "report.level_words", by=say(language, f"report.by.{report['by']}"))
    put(sheet, 1, 1, title_words(language, report["period"])).font = Font(bold=True, size=14)
    put(sheet, 2, 1, say(language, "report.heading", period=period_words(language, report["period"])))
    put(sheet, 3, 1, say(language, "report.scope", scope=scope) + "　" + by)
    put(sheet, 4, 1, say(language, drills))
    put(sheet, 5, 1, say(language, "report.generated", time=made))
    _header(sheet, SUMMARY_HEAD_ROW, [say(language, "report.item"), say(language, "report.value")])
    row = SUMMARY_HEAD_ROW + 1
    for path, key, kind in FIGURES:
        put(sheet, row, 1, say(language, key))
        put(sheet, row, 2, figure(report["totals"], path), kind)
        row += 1
    for key, count in zip(BUCKETS, report["totals"]["answer_buckets"], strict=True):
        put(sheet, row, 1, say(language, "report.chart.buckets") + " " + say(language, key))
        put(sheet, row, 2, count, "n")
        row += 1
    _widths(sheet, [40, 14])


def _by(
    book: Workbook,
    sheet_key: str,
    head_key: str,
    rows: Sequence[Mapping[str, Any]],
    field: str,
    name: Any,
    language: str,
) -> None:
    """A sheet of one row per area, alarm type or source: its name, then the figures as columns."""
    sheet = book.create_sheet(say(language, f"report.sheet.{sheet_key}"))
    _header(sheet, 1, [say(language, head_key), *(say(language, key) for _, key, _ in FIGURES)])
    for row, line in enumerate(rows, start=2):
        put(sheet, row, 1, name(line[field]))
        for column, (path, _, kind) in enumerate(FIGURES, start=2):
            put(sheet, row, column, figure(line["figures"], path), kind)
    _widths(sheet, [30, *([12] * len(FIGURES))])


def _days(sheet: Worksheet, days: Sequence[Mapping[str, Any]], language: str) -> None:
    _header(sheet, 1, [say(language, key) for _, key in DAY_COLUMNS])
    for row, day in enumerate(days, start=2):
        put(sheet, row, 1, day["day"])
        for column, (field, _) in enumerate(DAY_COLUMNS[1:], start=2):
            put(sheet, row, column, day[field], "n")
    _widths(sheet, [14, 12, 14, 12])


def _responders(sheet: Worksheet, responders: Sequence[Mapping[str, Any]], language: str) -> None:
    titles = ["report.responder_id", "report.responder", "report.kind", *(k for _, k in RESPONDER_COUNTS)]
    _header(sheet, 1, [say(language, key) for key in (*titles, "report.r.on_job_h")])
    for row, person in enumerate(responders, start=2):
        put(sheet, row, 1, person["responder_id"])
        put(sheet, row, 2, person["name"])
        put(sheet, row, 3, kind_words(language, person["kind"]))
        for column, (field, _) in enumerate(RESPONDER_COUNTS, start=4):
            put(sheet, row, column, person[field], "n")
        put(sheet, row, 4 + len(RESPONDER_COUNTS), on_job_hours(person["on_job_s"]), "s")
    _widths(sheet, [12, 14, 12, *([10] * len(RESPONDER_COUNTS)), 16])


def on_job_hours(seconds: float | None) -> float | None:
    """Time on the job in hours, to the hundredth."""
    return None if seconds is None else round(seconds / 3600, 2)
