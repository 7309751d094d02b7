"""The period report over HTTP: ``GET /api/reports`` (JSON) and ``GET /api/reports.csv`` (one flat table).

Supervisors and admins read the figures of their own part of the network over a month (``period=YYYY-MM``) or
any span of local days (``start``, inclusive, to ``end``, exclusive; at most 366 days), by district, street or
community; drills are left out unless ``drill=true``. Nothing out of their reach is shown or counted. A bad
parameter answers 422 with a code (``report_period``, ``report_dates``, ``report_range_long``, ``report_by``).
The figures name no elder, so reading them is no read of personal data on record; responders are staff, named.
The figures themselves are dispatch.periodreport's; their definitions are in docs/reports.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from console.deps import CoreDep, Supervisors
from dispatch.scopes import Reach

router = APIRouter(prefix="/api", tags=["reports"])

Month = Annotated[str | None, Query(description="a month, YYYY-MM (default: the current one)")]
Day = Annotated[str | None, Query(description="a local day, YYYY-MM-DD")]
By = Annotated[str, Query(description="district, street or community")]


def _report(core: CoreDep, reach: Reach, period: str | None, start: str | None, end: str | None, by: str,
            drill: bool) -> dict[str, Any]:  # fmt: skip
    return core.views.period_report(reach, by=by, month=period, start=start, end=end, include_drill=drill)


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
    return _report(core, who.reach, period, start, end, by, drill)


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
    report = _report(core, who.reach, period, start, end, by, drill)
    name = report["period"]["label"].replace("..", "_")
    return Response(
        core.views.period_report_csv(report).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="report-{name}-{by}.csv"'},
    )
