"""The government platform's export over HTTP (与政府平台对接): ``GET /api/export/government``.

``?period=2026-11`` (or ``2026-11-01..2026-11-15``) ``&format=json|csv`` ``&drill=false``: the document of
dispatch.govexport (schema ``anxin.gov-export`` version 1, docs/government-export.md), as JSON, or as a zip of
its three CSV files. What ``anxin export`` fetches when a server holds the data folder.

Rules
    1. The whole centre's only: an admin who sees it all, or a service account's key granted ``export`` (the
       platform's pull, or ``anxin export`` on the server's host). A person or a key limited to part of the
       network gets 403 ``out_of_scope``: the platform's figures are the centre's, never a street's share.
    2. The document is folded from the projection on the event loop a slice at a time
       (``Views.gov_export_on_loop``, dispatch.govexport rule 9), holding one of the period reports' fold slots
       (console.reports ``fold_slot``): at most two reports and exports fold at once, together; another is refused
       at once with 429 ``report_busy``. The slot is held for all of the export's work: its file is written a
       slice at a time too (``Views.gov_file_on_loop``). Nothing is read from the journal.
    3. Each export is a bulk read on record (``records.read``, what ``export.government``, the period as its
       filter, the elders it holds named) before it is answered.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from console.auth import Principal
from console.deps import CoreDep, allow
from console.errors import Forbidden
from console.reports import fold_slot

router = APIRouter(prefix="/api", tags=["export"])

#: an admin of the whole centre, or an integration's key granted ``export`` (rule 1)
Exporter = Annotated[Principal, Depends(allow("admin", grant="export"))]


@router.get("/export/government", response_class=Response)
async def government_export(
    core: CoreDep,
    who: Exporter,
    period: Annotated[str, Query(max_length=32, description="YYYY-MM, or YYYY-MM-DD..YYYY-MM-DD (local days)")],
    fmt: Annotated[str, Query(alias="format", max_length=8, description="json or csv (a zip of three)")] = "json",
    drill: Annotated[bool, Query(description="drills included, and marked")] = False,
) -> Response:
    """Elders served, incidents and services of the period, for the government platform (schema
    ``anxin.gov-export`` version 1): JSON, or a zip of three CSV files with ``format=csv``."""
    if not who.reach.everywhere:
        raise Forbidden("the government platform's export is the whole centre's: an admin who sees it all, or an "
                        "export key", code="out_of_scope", params={"place": "*"})  # fmt: skip
    chosen, kind = core.views.gov_period(period), core.views.gov_format(fmt)
    async with fold_slot():  # for all of its work: the fold, the read on record, the file (rule 2)
        document = await core.views.gov_export_on_loop(chosen, include_drill=drill)
        held = {row["elder_id"] for row in document["elders"]}
        held |= {row["elder_id"] for row in (*document["incidents"], *document["services"]) if row["elder_id"]}
        counts = document["counts"]
        await core.engine.read("export.government", counts["elders"] + counts["incidents"] + counts["services"],
                               actor=who.actor, elder_ids=sorted(held), filter=document["period"]["label"])  # fmt: skip
        body, name = await core.views.gov_file_on_loop(document, kind)
    media = "application/zip" if kind == "csv" else "application/json"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
