"""CSV export (dispatch.exporter): the import's columns, cells the importer reads back unchanged, no keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import aiosqlite
import pytest

from dispatch.exporter import BOM, COLUMNS, KINDS, to_csv
from dispatch.importer import import_files
from dispatch.registry import Contact, Device, Elder, Responder
from dispatch.store import SqliteRegistry, UpsertCounts
from simulators import city

C = "龙文区/蓝田街道/湘桥社区"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteRegistry]:
    db = await aiosqlite.connect(tmp_path / "registry.db")
    registry = SqliteRegistry(db)
    await registry.create_schema()
    try:
        yield registry
    finally:
        await db.close()


#: records with every cell the importer reads in more than one way: a contact on the phone page without a
#: relation, commas and quotes in free text, an elder out of care, a drill device with a key, a volunteer on call
ODD_ELDERS = (
    Elder(elder_id="x1", name="欧阳·秀英", phone="+86 135 0596 0001", address='湘桥社区3号楼, "东"单元', lat=24.5,
          lon=117.6999999, community=C, birth_date=date(1940, 2, 29), risk_flags=["living_alone", "three_nos"],
          care_level=0, medical_notes="高血压;\n糖尿病", entitlement="low_cost", access="门卡: 1234",
          contacts=[Contact(name="陈伟", phone="13800000000", app=True), Contact(name="林芳", phone="13900000000",
                    relation="女儿")], resident_id="11010519491231002X", lives_with="spouse"),
    Elder(elder_id="x2", name="李建国", address="湘桥社区4号", lat=24.51, lon=117.69, community=C, active=False),
    # what a spreadsheet would run as formulas: written as text (exporter rule 4), read back as typed
    Elder(elder_id="x3", name='=HYPERLINK("http://x","点")', phone="+86 135 0596 0003", address="=1+1", lat=-24.5,
          lon=117.7, community=C, medical_notes="@SUM(A1)", access="-门卡在邻居家"),
)  # fmt: skip
ODD_DEVICES = (
    Device(device_id="d1", protocol="sia-dc09", elder_id="x1", aes_key="ab" * 16, checkin_s=120, drill=True),
    Device(device_id="d2", protocol="watch", elder_id="x1"),  # none for x2: out of care, nothing is bound to them
)
ODD_RESPONDERS = (
    Responder(responder_id="v1", name="邻居张", kind="volunteer", skills=["comfort"], lat=24.5, lon=117.7,
              community=C, on_call=True, travel="bike"),
    Responder(responder_id="k1", name="卫生院", kind="clinic", lat=24.5, lon=117.7, community=C, hours="08:00-17:30",
              green_channel=True, phone="0596-2000001"),
)  # fmt: skip


def export(records: dict[str, list[Elder] | list[Device] | list[Responder]], folder: Path) -> dict[str, Path]:
    folder.mkdir()
    paths = {}
    for kind in KINDS:
        paths[kind] = folder / f"{kind}.csv"
        paths[kind].write_bytes(to_csv(kind, records[kind]).encode("utf-8"))
    return paths


async def test_an_export_imported_again_changes_nothing(store: SqliteRegistry, tmp_path: Path) -> None:
    files = city.generate(tmp_path / "city", seed=3, elders=300, caregivers=12, clinics=2)
    first = await import_files(store, **files)
    assert first.ok, first.summary()
    await store.upsert_responders(list(ODD_RESPONDERS))
    await store.upsert_elders(list(ODD_ELDERS))
    await store.upsert_devices(list(ODD_DEVICES))
    stored = {"elders": await store.elders(), "devices": await store.devices(), "responders": await store.responders()}
    exported = export(stored, tmp_path / "export")
    again = await import_files(store, **exported)
    assert again.ok, again.summary()
    assert again.elders == UpsertCounts(unchanged=303)
    assert again.devices == UpsertCounts(unchanged=first.devices.added + 2)
    assert again.responders == UpsertCounts(unchanged=first.responders.added + 2)
    assert await store.get_elder("x1") == ODD_ELDERS[0] and await store.get_device("d1") == ODD_DEVICES[0]
    assert await store.get_elder("x3") == ODD_ELDERS[2]  # the would-be formulas read back as typed


def test_a_cell_a_spreadsheet_would_run_is_written_as_text() -> None:
    row = next(line for line in to_csv("elders", ODD_ELDERS).split("\r\n") if line.startswith("x3,"))
    assert row.startswith('x3,"\'=HYPERLINK(""http://x"",""点"")",\'+86 135 0596 0003,\'=1+1,-24.5,117.7,')
    assert "'@SUM(A1)" in row and "'-门卡在邻居家" in row


def test_the_file_opens_in_a_spreadsheet_and_never_holds_a_key() -> None:
    text = to_csv("devices", ODD_DEVICES)
    assert text.startswith(BOM) and text.endswith("\r\n")
    lines = text.removeprefix(BOM).split("\r\n")
    assert lines[0].split(",") == list(COLUMNS["devices"])
    assert lines[1] == "d1,sia-dc09,x1,,120,yes"  # the key's cell is empty
    assert "AB" * 16 not in text
    elders = to_csv("elders", reversed(ODD_ELDERS)).removeprefix(BOM)
    assert elders.split("\r\n")[1].startswith("x1,欧阳·秀英,'+86 135 0596 0001,")  # ordered by id; a + as text
    assert "陈伟:13800000000::app;林芳:13900000000:女儿" in elders
