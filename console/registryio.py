"""The registry in and out over HTTP: CSV export, CSV import while the server runs, merging one person registered
twice.

Export (``GET /api/registry/export/{elders,devices,responders}.csv``): supervisors and admins export the elders
and devices of their part of the network (a file of everyone's medical notes and door codes leaves the screen:
not an operator's), an admin the responders; the import's own columns (dispatch.exporter), UTF-8 with a
byte order mark, never a device's key; a bulk read on record (``records.read``, what ``export.<kind>``).

Import (``POST /api/registry/import``, multipart: one part per file, named ``elders``, ``devices``,
``responders``): what ``anxin import`` sends when the server holds the data folder. The same importer runs
under the engine (dispatch.engine ``import_registry``) and answers the same report; an admin of the whole
centre, or a service account's key granted ``import``.

Merge (``POST /api/elders/{keep}/merge`` ``{"other": id}``): a supervisor or an admin who sees both records.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field
from starlette.datastructures import UploadFile

from console.auth import Principal
from console.deps import Admin, Body, CoreDep, Supervisors, allow
from console.errors import Forbidden
from dispatch.errors import Conflict, InvalidInput
from dispatch.registry import Ident

router = APIRouter(prefix="/api", tags=["registry"])

#: an admin of the whole centre, or an integration's key granted ``import`` (``anxin import`` on the server's host)
Importer = Annotated[Principal, Depends(allow("admin", grant="import"))]
CSV = "text/csv; charset=utf-8"


# -- export -------------------------------------------------------------------------------------------


async def _export(kind: Literal["elders", "devices", "responders"], core: CoreDep, who: Principal) -> Response:
    text, count = core.views.registry_export(kind, who.reach)
    # like the registry list: the scopes say which elders it could hold (GET /api/elders/{id}/reads finds it)
    await core.engine.read(f"export.{kind}", count, actor=who.actor, filter=",".join(who.scopes))
    headers = {"Content-Disposition": f'attachment; filename="{kind}.csv"'}
    return Response(text.encode("utf-8"), media_type=CSV, headers=headers)


@router.get("/registry/export/elders.csv", response_class=Response)
async def export_elders(core: CoreDep, who: Supervisors) -> Response:
    """The elders in the caller's reach as ``elders.csv`` (the import's columns)."""
    return await _export("elders", core, who)


@router.get("/registry/export/devices.csv", response_class=Response)
async def export_devices(core: CoreDep, who: Supervisors) -> Response:
    """The devices of the elders in the caller's reach as ``devices.csv``, without their keys."""
    return await _export("devices", core, who)


@router.get("/registry/export/responders.csv", response_class=Response)
async def export_responders(core: CoreDep, who: Admin) -> Response:
    """The responders based in the admin's reach as ``responders.csv``."""
    return await _export("responders", core, who)


# -- import -------------------------------------------------------------------------------------------

FILES: tuple[Literal["elders", "devices", "responders"], ...] = ("elders", "devices", "responders")


@router.post("/registry/import", openapi_extra={"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        kind: {"type": "string", "format": "binary"} for kind in FILES}}}}}})  # fmt: skip
async def import_registry(request: Request, core: CoreDep, who: Importer) -> dict[str, Any]:
    """Import CSV files (dispatch.importer) into the running server: a multipart body of up to three files named
    ``elders``, ``devices``, ``responders``. Answers the import's report: counts per kind and every refused row
    (``errors``: file, line, reason). A file refused whole (not UTF-8, a wrong header) is a 422 and nothing is
    written. Recorded as one ``registry.imported`` entry when anything changed."""
    if not who.reach.everywhere:
        # an import writes wherever its rows lie: a person or a key limited to part of the network may not
        raise Forbidden("an import is the whole centre's: an admin who sees it all, or an import key",
                        code="out_of_scope", params={"place": "*"})  # fmt: skip
    texts: dict[str, str] = {}
    names: dict[str, str] = {}
    async with request.form() as form:
        for kind, part in form.multi_items():
            if kind not in FILES or not isinstance(part, UploadFile) or kind in texts:
                raise InvalidInput(f"send files named elders, devices or responders, each once; not {kind!r}",
                                   field="files", code="import_refused")  # fmt: skip
            name = part.filename or f"{kind}.csv"
            data = await part.read()
            try:
                texts[kind] = data.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})", field=name,
                                   code="import_refused") from None  # fmt: skip
            names[kind] = name
    if not texts:
        raise InvalidInput("send at least one file: elders, devices or responders", field="files",
                           code="import_refused")  # fmt: skip
    return await core.engine.import_registry(texts, names=names, actor=who.actor)


# -- merge --------------------------------------------------------------------------------------------


class MergeIn(Body):
    other: Ident = Field(description="the record of the same person to merge into this one, then take out of care")


@router.post("/elders/{keep}/merge")
async def merge_elders(keep: str, body: MergeIn, core: CoreDep, who: Supervisors) -> dict[str, Any]:
    """One person registered twice: ``other``'s devices move to ``keep``, its contacts are added after
    ``keep``'s (no phone twice), ``keep``'s empty fields are filled from it, and ``other`` leaves care (kept,
    readable, no longer matched by phone or search). Both must be in the caller's reach."""
    core.views.elder_in_reach(keep, who.reach)
    core.views.elder_in_reach(body.other, who.reach)
    merged = await core.engine.merge_elders(keep, body.other, actor=who.actor)
    await core.engine.viewed(keep, actor=who.actor)  # the kept record is shown whole: a read on record
    return {"merged": merged, "elder": core.views.elder_record(keep, who.reach)}


# -- saving an elder: who they probably are already ---------------------------------------------------


def named_duplicates(error: Conflict, who: Principal) -> Conflict:
    """The engine's ``possible_duplicate`` refusal as this person may read it: the records in their reach named
    (id, name, community, reasons), the others only counted."""
    given = error.params.get("matches")
    matches = [m for m in given if isinstance(m, dict)] if isinstance(given, list) else []
    shown = [m for m in matches if who.reach.covers(m["community"])]
    names = "、".join(f"{m['name']} ({m['elder_id']})" for m in shown) or "—"
    refused = Conflict(f"probably already registered: {names} ({len(matches)} in all)", field="elder_id",
                       code="possible_duplicate", params={"matches": shown, "names": names, "count": len(matches),
                                                          "hidden": len(matches) - len(shown)})  # fmt: skip
    return refused
