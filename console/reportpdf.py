"""The period report as a printable PDF in Chinese (the monthly report a district sends upward), with its charts.

What it owns
    :func:`render_report_pdf`: a report (the dict of ``GET /api/reports``) in, A4 pages out, laid out with
    reportlab: the title with the period and the reader's scope, the key figures, four charts drawn with
    reportlab.graphics (alarms per day with those answered within 60 s; the answer-time distribution; the
    outcomes; alarms by area) and the tables of areas, alarm types, sources and responders. Every word comes
    from the Chinese catalogue (:mod:`console.reportwords`), the font is the elder's file's
    (:func:`console.filepdf.font_name`: an embedded CJK TrueType font, so the text can be extracted).

Rules
    1. Pure: a dict in, bytes out; no clock (the report says when it was made), no journal. It runs in a worker
       process (:mod:`console.pdfwork`), so it takes and returns only what pickles.
    2. Nothing measured is a dash, never 0; a chart with nothing to draw says so.
    3. The charts are drawn from the report's own figures: the PDF and the page show the same numbers.

Never
    Never write the file to disk; never show what the report does not hold (the caller scoped it).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.graphics.shapes import Drawing, Line, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from console.filepdf import font_name
from console.reportwords import (
    BUCKETS,
    OUTCOMES,
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
from console.reportxlsx import on_job_hours

LANGUAGE = "zh-CN"
WIDTH = A4[0] - 36 * mm
#: the key figures on the first page: (path, catalogue key, kind)
KEY_FIGURES: tuple[tuple[tuple[str, ...], str, Kind], ...] = (
    (("alarms",), "report.f.alarms", "n"),
    (("share_within_60s",), "report.f.share_within_60s", "share"),
    (("share_within_180s",), "report.f.share_within_180s", "share"),
    (("answer_s", "median"), "report.f.answer_median", "s"),
    (("door_s", "median"), "report.f.door_median", "s"),
    (("technical",), "report.f.technical", "n"),
    (("calls",), "report.f.calls", "n"),
    (("call_share_within_60s",), "report.f.call_share_within_60s", "share"),
    (("services_delivered",), "report.f.services_delivered", "n"),
    (("follow_ups", "satisfaction_mean"), "report.f.satisfaction_mean", "mean"),
    (("call_answer_s", "median"), "report.f.call_answer_median", "s"),
    (("calls_abandoned",), "report.f.calls_abandoned", "n"),
    (("calls_missed",), "report.f.calls_missed", "n"),
    (("calls_transferred",), "report.f.calls_transferred", "n"),
    (("calls_outbound",), "report.f.calls_outbound", "n"),
)
#: the columns of the area, type and source tables
TABLE_FIGURES: tuple[tuple[tuple[str, ...], str, Kind], ...] = (
    (("alarms",), "report.f.alarms", "n"),
    (("share_within_60s",), "report.f.share_within_60s", "share"),
    (("answer_s", "median"), "report.f.answer_median", "s"),
    (("door_s", "median"), "report.f.door_median", "s"),
    (("outcomes", "resolved"), "report.outcome.resolved", "n"),
    (("outcomes", "false_alarm"), "report.outcome.false_alarm", "n"),
    (("outcomes", "open"), "report.outcome.open", "n"),
    (("calls",), "report.f.calls", "n"),
)
#: the chart of areas shows the ones with the most alarms
CHART_AREAS = 12
BLUE, GREEN, GREY = colors.HexColor("#2b6cb0"), colors.HexColor("#2f855a"), colors.HexColor("#718096")
OUTCOME_COLOURS = ("#2f855a", "#a0aec0", "#c53030", "#2b6cb0", "#dd6b20", "#d69e2e")


def value_words(value: Any, kind: Kind) -> str:
    """A figure as printed: a share as a percentage, seconds and means to a decimal; nothing measured a dash."""
    if value is None:
        return "—"
    if kind == "share":
        return f"{value * 100:.1f}%"
    if kind == "s":
        return f"{value:.1f}"
    if kind == "mean":
        return f"{value:.2f}"
    return str(value)


class _Styles:
    def __init__(self, font: str) -> None:
        self.title = ParagraphStyle("title", fontName=font, fontSize=18, leading=24, spaceAfter=2 * mm)
        self.heading = ParagraphStyle("heading", fontName=font, fontSize=12.5, leading=17, spaceBefore=4 * mm,
                                      spaceAfter=2 * mm, keepWithNext=1)  # fmt: skip  # never alone at a page's foot
        self.body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12)
        self.cell = ParagraphStyle("cell", fontName=font, fontSize=8, leading=10)
        self.number = ParagraphStyle("number", parent=self.cell, alignment=2)
        self.small = ParagraphStyle("small", fontName=font, fontSize=8.5, leading=11, textColor=colors.grey)
        self.big = ParagraphStyle("big", fontName=font, fontSize=15, leading=18)


def _p(text: object, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape("" if text is None else str(text)), style)


def render_report_pdf(report: Mapping[str, Any], *, scope: str) -> bytes:
    """The monthly report's PDF; ``scope`` is the reader's part of the network in words."""
    font = font_name()
    style = _Styles(font)
    totals = report["totals"]
    period = period_words(LANGUAGE, report["period"])
    made = datetime.fromtimestamp(report["generated_at"], ZoneInfo(report["period"]["timezone"]))
    by = say(LANGUAGE, f"report.by.{report['by']}")
    drills = say(LANGUAGE, "report.drill_included" if report["drill_included"] else "report.drill_excluded")
    made_words = say(LANGUAGE, "report.generated", time=made.strftime("%Y-%m-%d %H:%M"))
    about = (say(LANGUAGE, "report.scope", scope=scope), say(LANGUAGE, "report.level_words", by=by), drills, made_words)
    title = title_words(LANGUAGE, report["period"])
    story: list[Flowable] = [
        _p(title, style.title),
        _p(say(LANGUAGE, "report.heading", period=period), style.heading),
        _p("　".join(about), style.small),
        _p(say(LANGUAGE, "report.key_figures"), style.heading),
        _key_figures(totals, style),
        _chart(say(LANGUAGE, "report.chart.daily"), daily_chart(report["days"], font), style),
        _chart(say(LANGUAGE, "report.chart.buckets"), buckets_chart(totals["answer_buckets"], font), style),
        _chart(say(LANGUAGE, "report.chart.outcomes"), outcomes_chart(totals["outcomes"], font), style),
        _chart(say(LANGUAGE, "report.chart.areas"), areas_chart(report["areas"], font), style),
    ]
    story += _by_table("report.areas", "report.area", report["areas"], "area", area_words, style)
    story += _by_table("report.types", "report.alarm_type", report["alarm_types"], "alarm_type", alarm_words, style)
    story += _by_table("report.sources", "report.source", report["sources"], "source", source_words, style)
    story += _responder_table(report["responders"], style)
    footer = f"{title} · {period} · {scope}"

    def on_page(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(font, 8)
        canvas.drawString(18 * mm, 10 * mm, footer)
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, str(doc.page))
        canvas.restoreState()

    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=18 * mm, title=f"{title} {period}",
                            author="Anxin")  # fmt: skip
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return out.getvalue()


def _key_figures(totals: Mapping[str, Any], style: _Styles) -> Table:
    """The key figures as a grid of five columns: the figure big, its name under it."""
    cells = [
        [_p(value_words(figure(totals, path), kind), style.big), _p(say(LANGUAGE, key), style.cell)]
        for path, key, kind in KEY_FIGURES
    ]
    rows = [cells[start : start + 5] for start in range(0, len(cells), 5)]
    table = Table(rows, colWidths=[WIDTH / 5] * 5)
    table.setStyle(TableStyle([
        ("BOX", (0, 0), (-1, -1), 0.4, colors.lightgrey),
        ("INNERGRID", (0, 0), (-1, -1), 0.3, colors.lightgrey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#f7fafc")),
    ]))  # fmt: skip
    return table


def _chart(title: str, drawing: Drawing, style: _Styles) -> Flowable:
    return KeepTogether([_p(title, style.heading), drawing])


def _axis(drawing: Drawing, x0: float, y0: float, width: float, height: float, top: int, font: str) -> None:
    """The value axis: a base line, and a grid line with its number at the top and halfway."""
    drawing.add(Line(x0, y0, x0 + width, y0, strokeColor=GREY, strokeWidth=0.6))
    for value in sorted({top, top // 2}):
        if value <= 0:
            continue
        y = y0 + height * value / top
        drawing.add(Line(x0, y, x0 + width, y, strokeColor=colors.HexColor("#e2e8f0"), strokeWidth=0.4))
        drawing.add(String(x0 - 3, y - 3, str(value), fontName=font, fontSize=7, textAnchor="end"))


def _empty(drawing: Drawing, font: str) -> Drawing:
    drawing.add(String(drawing.width / 2, drawing.height / 2, say(LANGUAGE, "report.chart.empty"), fontName=font,
                       fontSize=10, textAnchor="middle", fillColor=GREY))  # fmt: skip
    return drawing


def daily_chart(days: Sequence[Mapping[str, Any]], font: str) -> Drawing:
    """Alarms per day as bars, those answered within 60 s as a line over them, a day's number every few bars."""
    drawing = Drawing(WIDTH, 62 * mm)
    top = max((int(d["alarms"]) for d in days), default=0)
    if not days or top == 0:
        return _empty(drawing, font)
    x0, y0, width, height = 10 * mm, 12 * mm, WIDTH - 12 * mm, 44 * mm
    _axis(drawing, x0, y0, width, height, top, font)
    step = width / len(days)
    every = max(1, round(len(days) / 15))
    points: list[float] = []
    for n, day in enumerate(days):
        x = x0 + n * step
        drawing.add(_bar(x + step * 0.15, y0, step * 0.7, height * day["alarms"] / top, BLUE))
        points += [x + step / 2, y0 + height * day["answered_within_60s"] / top]
        if n % every == 0:
            drawing.add(String(x + step / 2, y0 - 9, day["day"][5:], fontName=font, fontSize=6.5, textAnchor="middle"))
    drawing.add(PolyLine(points, strokeColor=GREEN, strokeWidth=1.4))
    _legend(drawing, [(BLUE, say(LANGUAGE, "report.f.alarms")), (GREEN, say(LANGUAGE, "report.f.answered_within_60s"))],
            x0, 62 * mm - 5 * mm, font)  # fmt: skip
    return drawing


def _bar(x: float, y: float, width: float, height: float, colour: Any) -> Rect:
    """A filled rectangle without an outline (set as attributes: the stubs type Rect's keywords wrongly)."""
    rect = Rect(x, y, width, height)
    rect.fillColor = colour
    rect.strokeColor = None
    return rect


def _legend(drawing: Drawing, items: Sequence[tuple[Any, str]], x: float, y: float, font: str) -> None:
    for colour, text in items:
        drawing.add(_bar(x, y, 8, 8, colour))
        drawing.add(String(x + 11, y + 1, text, fontName=font, fontSize=8))
        x += 20 + 8.5 * len(text)


def buckets_chart(buckets: Sequence[int], font: str) -> Drawing:
    """The answer times in their six buckets, each bar with its count; the ones past the 60 s target in grey."""
    drawing = Drawing(WIDTH, 48 * mm)
    top = max(buckets, default=0)
    if top == 0:
        return _empty(drawing, font)
    x0, y0, width, height = 10 * mm, 10 * mm, WIDTH - 12 * mm, 32 * mm
    _axis(drawing, x0, y0, width, height, top, font)
    step = width / len(buckets)
    for n, (key, count) in enumerate(zip(BUCKETS, buckets, strict=True)):
        x = x0 + n * step
        bar = height * count / top
        drawing.add(_bar(x + step * 0.2, y0, step * 0.6, bar, BLUE if n < 3 else GREY))
        drawing.add(String(x + step / 2, y0 + bar + 2, str(count), fontName=font, fontSize=7.5, textAnchor="middle"))
        drawing.add(String(x + step / 2, y0 - 10, say(LANGUAGE, key), fontName=font, fontSize=8, textAnchor="middle"))
    return drawing


def _hbars(rows: Sequence[tuple[str, int, Any]], font: str, name_w: float) -> Drawing:
    """Horizontal bars, one a row: its name, the bar and its count."""
    line = 6.5 * mm
    drawing = Drawing(WIDTH, line * max(len(rows), 1) + 4 * mm)
    top = max((count for _, count, _ in rows), default=0)
    if top == 0:
        return _empty(drawing, font)
    width = WIDTH - name_w - 14 * mm
    for n, (name, count, colour) in enumerate(rows):
        y = drawing.height - (n + 1) * line
        drawing.add(String(name_w - 3, y + 2, name, fontName=font, fontSize=8, textAnchor="end"))
        bar = width * count / top
        drawing.add(_bar(name_w, y, bar, line * 0.65, colour))
        drawing.add(String(name_w + bar + 3, y + 2, str(count), fontName=font, fontSize=8))
    return drawing


def outcomes_chart(outcomes: Mapping[str, int], font: str) -> Drawing:
    rows = [
        (say(LANGUAGE, f"report.outcome.{key}"), int(outcomes.get(key) or 0), colors.HexColor(colour))
        for key, colour in zip(OUTCOMES, OUTCOME_COLOURS, strict=True)
    ]
    return _hbars(rows, font, 28 * mm)


def areas_chart(areas: Sequence[Mapping[str, Any]], font: str) -> Drawing:
    """Alarms by area, the most first, at most :data:`CHART_AREAS` (the table lists them all)."""
    ranked = sorted(areas, key=lambda a: (-a["figures"]["alarms"], a["area"]))[:CHART_AREAS]
    rows = [(area_words(LANGUAGE, a["area"]), int(a["figures"]["alarms"]), BLUE) for a in ranked]
    return _hbars(rows, font, 62 * mm)


def _table(rows: list[list[Paragraph]], widths: Sequence[float]) -> Table:
    table = Table(rows, colWidths=list(widths), repeatRows=1)
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.3, colors.lightgrey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#edf2f7")),
    ]))  # fmt: skip
    return table


def _by_table(
    title: str, head: str, lines: Sequence[Mapping[str, Any]], field: str, name: Any, style: _Styles
) -> list[Flowable]:
    if not lines:
        return []
    name_w = 46 * mm
    widths = [name_w, *([(WIDTH - name_w) / len(TABLE_FIGURES)] * len(TABLE_FIGURES))]
    header = [_p(say(LANGUAGE, head), style.cell), *(_p(say(LANGUAGE, k), style.cell) for _, k, _ in TABLE_FIGURES)]
    rows = [header] + [
        [_p(name(LANGUAGE, line[field]), style.cell)]
        + [_p(value_words(figure(line["figures"], path), kind), style.number) for path, _, kind in TABLE_FIGURES]
        for line in lines
    ]
    return [_p(say(LANGUAGE, title), style.heading), _table(rows, widths)]


def _responder_table(responders: Sequence[Mapping[str, Any]], style: _Styles) -> list[Flowable]:
    if not responders:
        return []
    keys = ["report.responder", "report.kind", *(k for _, k in RESPONDER_COUNTS), "report.r.on_job_h"]
    rest = (WIDTH - 60 * mm) / (len(keys) - 2)
    rows = [[_p(say(LANGUAGE, key), style.cell) for key in keys]]
    for person in responders:
        counts = [_p(person[field], style.number) for field, _ in RESPONDER_COUNTS]
        hours = _p(value_words(on_job_hours(person["on_job_s"]), "mean"), style.number)
        rows.append([_p(f"{person['name']}（{person['responder_id']}）", style.cell),
                     _p(kind_words(LANGUAGE, person["kind"]), style.cell), *counts, hours])  # fmt: skip
    return [_p(say(LANGUAGE, "report.responders"), style.heading), _table(rows, [40 * mm, 20 * mm, *[rest] * 6]),
            Spacer(1, 4 * mm)]  # fmt: skip
