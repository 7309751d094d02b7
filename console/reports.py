"""The period report over HTTP: ``GET /api/reports`` (JSON), ``GET /api/reports.csv`` (one flat table),
``GET /api/reports.xlsx`` (a workbook of six sheets, console.reportxlsx) and ``GET /api/reports.pdf`` (the
printable monthly report in Chinese with its charts, console.reportpdf); both files are made in the console's
document workers (console.pdfwork), never on the event loop.

The figures are folded on the event loop a slice at a time (``Views.period_report_on_loop``, dispatch.periodreport
rule 5): devices' alarms are answered between the slices. At most :data:`FOLDS_AT_ONCE` reports fold at once,
whatever their format, the government platform's export (console.govexport) counted among them; another is
refused at once with 429 ``report_busy`` (never queued: twenty reloads of the page would only make twenty folds,
each slower than the last). A file holds its document slot too (429
``pdf_busy``), for its fold and its rendering.

Supervisors and admins read the figures of their own part of the network over a month (``period=YYYY-MM``) or
any span of local days (``start``, inclusive, to ``end``, exclusive; at most 366 days), by district, street or
community; drills are left out unless ``drill=true``. Nothing out of their reach is shown or counted. A bad
parameter answers 422 with a code (``report_period``, ``report_dates``, ``report_range_long``, ``report_by``).
The figures name no elder, so reading them is no read of personal data on record; responders are staff, named.
The figures themselves are dispatch.periodreport's; their definitions are in docs/reports.md.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from console.auth import Principal
from console.deps import CoreDep, Supervisors
from console.errors import Throttled
from console.pdfwork import RETRY_AFTER_S, in_worker, pdf_slot
from console.reportpdf import render_report_pdf
from console.reportwords import scope_words
from console.reportxlsx import render_xlsx
from dispatch.scopes import Reach

router = APIRouter(prefix="/api", tags=["reports"])

Month = Annotated[str | None, Query(description="a month, YYYY-MM (default: the current one)")]
Day = Annotated[str | None, Query(description="a local day, YYYY-MM-DD")]
By = Annotated[str, Query(description="district, street or community")]
Language = Annotated[Literal["zh-CN", "en"], Query(description="the workbook's language (sheets, headers)")]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FOLDS_AT_ONCE = 2
FOLDS = asyncio.Semaphore(FOLDS_AT_ONCE)


@asynccontextmanager
async def fold_slot() -> AsyncIterator[None]:
    """One of the slots for a report's or an export's fold, or 429 ``report_busy`` at once."""
    if FOLDS.locked():
        raise Throttled("other reports or exports are being worked out; try again in a few seconds",
                        retry_after=RETRY_AFTER_S, code="report_busy")  # fmt: skip
    async with FOLDS:
        yield


async def _report(core: CoreDep, reach: Reach, period: str | None, start: str | None, end: str | None, by: str,
                  drill: bool) -> dict[str, Any]:  # fmt: skip
    async with fold_slot():
        return await core.views.period_report_on_loop(reach, by=by, month=period, start=start, end=end,
                                                       include_drill=drill)  # fmt: skip


@router.get("/reports")
async def get_report(
    core: CoreDep,
    who: Supervisors,
    period: Month = None,
    start: Day = None,
    end: Day = None,
    by: By = "community",
    drill: bool = False,
) -> dict[str, Any]:
    """The period report: totals, each area, each alarm type and source, each day, each responder."""
    return await _report(core, who.reach, period, start, end, by, drill)


@router.get("/reports.csv")
async def get_report_csv(
    core: CoreDep,
    who: Supervisors,
    period: Month = None,
    start: Day = None,
    end: Day = None,
    by: By = "community",
    drill: bool = False,
) -> Response:
    """The same report as one CSV table (UTF-8 with a byte-order mark): a row per section and group."""
    report = await _report(core, who.reach, period, start, end, by, drill)
    csv = core.views.period_report_csv(report).encode("utf-8")
    return _download(csv, "text/csv; charset=utf-8", report, "csv")


def _download(content: bytes, media_type: str, report: dict[str, Any], suffix: str) -> Response:
    """A file to save: ``anxin-report-2026-11-community.xlsx``; a span of days by its first and last day, as the
    page and the PDF's title name it (``start=2026-11-03&end=2026-11-10``: ``anxin-report-2026-11-03_2026-11-09``),
    not by the API's end, the day after."""
    period = report["period"]
    stem = period["label"]
    if ".." in stem:
        last = date.fromisoformat(period["end_day"]) - timedelta(days=1)
        stem = f"{period['start_day']}_{last.isoformat()}"
    name = f"anxin-report-{stem}-{report['by']}.{suffix}"
    return Response(content, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _scope(who: Principal, language: str) -> str:
    return scope_words(language, who.scopes)


@router.get("/reports.xlsx", response_class=Response)
async def get_report_xlsx(
    core: CoreDep,
    who: Supervisors,
    period: Month = None,
    start: Day = None,
    end: Day = None,
    by: By = "community",
    drill: bool = False,
    lang: Language = "zh-CN",
) -> Response:
    """The same report as an Excel workbook: summary, areas, alarm types, sources, days and responders; made in
    a worker like the PDF, so 429 ``pdf_busy`` too while the workers are taken (and ``report_busy`` while as many
    reports as fold at once are folding)."""
    async with pdf_slot("report files"):  # a year by community takes a fifth of a second: never on the loop
        report = await _report(core, who.reach, period, start, end, by, drill)
        xlsx = await in_worker(functools.partial(render_xlsx, report, scope=_scope(who, lang), language=lang))
    return _download(xlsx, XLSX, report, "xlsx")


@router.get("/reports.pdf", response_class=Response)
async def get_report_pdf(
    core: CoreDep,
    who: Supervisors,
    period: Month = None,
    start: Day = None,
    end: Day = None,
    by: By = "community",
    drill: bool = False,
) -> Response:
    """The same report as a printable PDF in Chinese with its charts; 429 ``pdf_busy`` while as many PDFs as
    are made at once are being made (``report_busy`` while as many reports as fold at once are folding)."""
    async with pdf_slot("PDFs"):
        report = await _report(core, who.reach, period, start, end, by, drill)
        pdf = await in_worker(functools.partial(render_report_pdf, report, scope=_scope(who, "zh-CN")))
    return _download(pdf, "application/pdf", report, "pdf")
