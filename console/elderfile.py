"""The elder's file (老人档案) over HTTP: everything about one elder on one page, and as a PDF for a case conference.

What it owns
    ``GET /api/elders/{id}/file`` (the record's parts, the assessments, the health series for those who read
    health, and one page of the timeline, newest first) and ``GET /api/elders/{id}/file.pdf`` (the same, and
    the timeline of the last :data:`PDF_DAYS` days, rendered by :mod:`console.filepdf`). The timeline is found
    through the projection's per-elder index (:mod:`dispatch.elderfile`) and read from the journal by seq.

Rules
    1. Staff in reach only; outside it, as if the elder did not exist (404), before anything else is checked.
    2. A file is opened for a reason: ``why`` is one of :data:`WHY` (``other`` needs ``words``), and the read is
       journaled as ``elder.viewed`` with ``what="file"`` and that reason before anything is shown.
    3. The resident identity number is whole only for supervisors and admins; health readings only for those
       who read health (dispatch.scopes rule 2); complaints only for those who audit.

Never
    Never scan the journal for an elder's entries; never show a file whose read is not on record.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from console.deps import CoreDep, Staff
from console.filepdf import render_pdf
from console.pdfwork import in_worker, pdf_slot
from dispatch.core import Core
from dispatch.errors import InvalidInput
from dispatch.journal import Entry, Journal

router = APIRouter(prefix="/api", tags=["registry"])

#: the reasons a file is opened for, as the page offers them
WHY = ("incident", "follow_up", "care_planning", "case_conference", "assessment", "other")
Filter = Literal["all", "alarms", "calls", "services", "visits", "assessments", "notes"]
PAGE = 50
HEALTH_READINGS = 300  # the newest readings on the chart
ASSESSMENTS = 100
PDF_DAYS = 90
PDF_LINES = 2000

DAY_S = 86400.0


def _why(why: str, words: str) -> str:
    if why not in WHY:
        raise InvalidInput("say why the file is opened", field="why", code="why_required")
    words = words.strip()
    if why == "other" and not words:
        raise InvalidInput("say in words why the file is opened", field="words", code="why_required")
    return f"{why}: {words}" if words else why


async def _opened(core: Core, elder_id: str, who: Staff, why: str, words: str, *, pdf: bool) -> str:
    """Rule 1, then rule 2: the reach, the reason, the read on record."""
    core.views.elder_in_reach(elder_id, who.reach)
    reason = _why(why, words)
    await core.engine.viewed(elder_id, actor=who.actor, what="file", subject="pdf" if pdf else None, why=reason)
    return reason


async def read_entries(journal: Journal, seqs: list[int]) -> list[Entry]:
    """The entries of these seqs, each run of consecutive seqs in one read."""
    found: list[Entry] = []
    ordered = sorted(set(seqs))
    start = 0
    while start < len(ordered):
        end = start + 1
        while end < len(ordered) and ordered[end] == ordered[end - 1] + 1:
            end += 1
        found.extend(await journal.read(ordered[start] - 1, end - start))
        start = end
    return found


async def _timeline(
    core: Core, elder_id: str, who: Staff, section: Filter, *, drill: bool, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    seqs = core.views.file_seqs(elder_id, who.reach, section, drill=drill, before=before, limit=limit)
    lines = core.views.file_lines(await read_entries(core.journal, seqs), who.reach)
    return lines, (seqs[-1] if len(seqs) == limit else None)


async def _file(core: Core, elder_id: str, who: Staff) -> dict[str, Any]:
    """The record's parts, the assessments and the health series (rule 3)."""
    record = core.views.elder_file(elder_id, who.reach, unmasked=who.role in ("admin", "supervisor"))
    assessed = core.views.file_seqs(elder_id, who.reach, "assessments", limit=ASSESSMENTS)
    health: dict[str, Any] | None = None
    if "health" in who.reach.contents:
        seqs = core.views.file_seqs(elder_id, who.reach, "health", limit=HEALTH_READINGS)
        health = core.views.file_health(await read_entries(core.journal, seqs))
    return {
        "elder": record,
        "assessments": core.views.file_assessments(await read_entries(core.journal, assessed)),
        "health": health,
        "health_shown": health is not None,
    }


@router.get("/elders/{elder_id}/file")
async def elder_file(
    elder_id: str,
    core: CoreDep,
    who: Staff,
    why: Annotated[str, Query(max_length=32)] = "",
    words: Annotated[str, Query(max_length=200)] = "",
    section: Filter = "all",
    drills: bool = False,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = PAGE,
) -> dict[str, Any]:
    """The elder's file, opened for a reason (journaled). With ``before`` (the ``next_before`` of the page
    before), only the next page of the timeline."""
    reason = await _opened(core, elder_id, who, why, words, pdf=False)
    lines, next_before = await _timeline(core, elder_id, who, section, drill=drills, before=before, limit=limit)
    page = {"timeline": lines, "next_before": next_before, "section": section, "why": reason}
    if before is not None:
        return page
    return {**await _file(core, elder_id, who), **page}


@router.get("/elders/{elder_id}/file.pdf", response_class=Response)
async def elder_file_pdf(
    elder_id: str,
    core: CoreDep,
    who: Staff,
    why: Annotated[str, Query(max_length=32)] = "",
    words: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """The file as a PDF for a case conference (in Chinese): the same parts and the timeline of the last
    90 days, drills left out."""
    async with pdf_slot("case-conference files"):  # the whole of it, reading the journal too (console.pdfwork)
        reason = await _opened(core, elder_id, who, why, words, pdf=True)
        since = core.clock.now() - PDF_DAYS * DAY_S
        seqs = core.views.file_seqs(elder_id, who.reach, "all", limit=PDF_LINES + 1)
        read = await read_entries(core.journal, seqs[:PDF_LINES])
        entries = [e for e in read if e.ts >= since]
        scope = {"days": PDF_DAYS, "max": PDF_LINES, "more": len(seqs) > PDF_LINES or len(entries) < len(read)}
        file = {**await _file(core, elder_id, who), "timeline": core.views.file_lines(entries, who.reach),
                "timeline_scope": scope}  # fmt: skip
        render = functools.partial(render_pdf, file, printed_at=core.clock.now(), timezone=core.settings.timezone,
                                   why=reason)  # fmt: skip
        pdf = await in_worker(render)
    name = f"elder-{elder_id}.pdf"
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'})
