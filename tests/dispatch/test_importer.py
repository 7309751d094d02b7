"""CSV import: whole-file refusals, row errors with their line numbers, references, idempotence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import aiosqlite
import pytest

from dispatch.errors import InvalidInput
from dispatch.importer import (
    ImportReport,
    RowError,
    import_files,
    read_devices,
    read_elders,
    read_responders,
)
from dispatch.registry import Contact
from dispatch.store import SqliteRegistry, UpsertCounts

C = "龙文区/蓝田街道/湘桥社区"
ELDER_HEADER = (
    "elder_id,name,phone,address,lat,lon,community,"
    "birth_date,risk_flags,care_level,medical_notes,contacts,caregiver_id,entitlement"
)
DEVICE_HEADER = "device_id,protocol,elder_id,aes_key,checkin_s"
RESPONDER_HEADER = "responder_id,name,kind,skills,lat,lon,phone,community,travel,hours,green_channel"


def write(path: Path, *lines: str, encoding: str = "utf-8", newline: str = "\n") -> Path:
    path.write_bytes(newline.join(lines).encode(encoding) + newline.encode())
    return path


def elders_csv(tmp_path: Path, *rows: str, header: str = ELDER_HEADER) -> Path:
    return write(tmp_path / "elders.csv", header, *rows)


def devices_csv(tmp_path: Path, *rows: str, header: str = DEVICE_HEADER) -> Path:
    return write(tmp_path / "devices.csv", header, *rows)


def responders_csv(tmp_path: Path, *rows: str, header: str = RESPONDER_HEADER) -> Path:
    return write(tmp_path / "responders.csv", header, *rows)


def elder_row(elder_id: str, *, lat: str = "24.514", community: str = C, **optional: str) -> str:
    """A row of an elder of this name at her own phone (the same name at one phone is one person, rule 7)."""
    cells = [
        elder_id,
        "陈秀英",
        f"135059{sum(map(ord, elder_id)) % 100_000:05d}",
        "龙文区蓝田街道湘桥社区3号楼2单元501室",
        lat,
        "117.689",
        community,
    ]
    names = ELDER_HEADER.split(",")[7:]
    cells += [optional.get(name, "") for name in names]
    return ",".join(cells)


GOOD_RESPONDERS = (
    f"c0001,林丽,caregiver,life_care;nursing,24.51,117.69,18759630001,{C},bike,,",
    f"k01,蓝田社区卫生服务中心,clinic,medical,24.508,117.696,0596-2000001,{C},car,24h,yes",
)
GOOD_ELDERS = (
    elder_row(
        "e1",
        birth_date="1938-05-01",
        risk_flags="living_alone;disabled",
        care_level="3",
        medical_notes="高血压、糖尿病",
        contacts="陈伟:13800000000:儿子:app;林芳:13900000000",
        caregiver_id="c0001",
        entitlement="free",
    ),
    elder_row("e2"),
    elder_row("e3", lat="24.52"),
)
GOOD_DEVICES = (
    "7DFE7B,sia-dc09,e1,abcdabcdabcdabcdabcdabcdabcdabcd,3600",
    "6907919734,watch,e2,,600",
    "864717003283581,gt06,e3,,",
)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    connection = await aiosqlite.connect(tmp_path / "registry.db")
    await connection.execute("PRAGMA journal_mode=WAL")
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def store(db: aiosqlite.Connection) -> SqliteRegistry:
    registry = SqliteRegistry(db)
    await registry.create_schema()
    return registry


async def table_rows(db: aiosqlite.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {
        table: list(await db.execute_fetchall(f"SELECT * FROM {table} ORDER BY 1"))
        for table in ("elders", "devices", "responders")
    }


async def import_good(store: SqliteRegistry, tmp_path: Path) -> ImportReport:
    return await import_files(
        store,
        elders=elders_csv(tmp_path, *GOOD_ELDERS),
        devices=devices_csv(tmp_path, *GOOD_DEVICES),
        responders=responders_csv(tmp_path, *GOOD_RESPONDERS),
    )


# -- good files ------------------------------------------------------------------------------------------


async def test_good_import_counts_and_records(store: SqliteRegistry, tmp_path: Path) -> None:
    report = await import_good(store, tmp_path)
    assert report.ok
    assert report.elders == UpsertCounts(added=3)
    assert report.devices == UpsertCounts(added=3)
    assert report.responders == UpsertCounts(added=2)

    e1 = await store.get_elder("e1")
    assert e1 is not None
    assert e1.name == "陈秀英" and e1.address == "龙文区蓝田街道湘桥社区3号楼2单元501室"
    assert e1.community == C
    assert e1.birth_date == date(1938, 5, 1)
    assert e1.risk_flags == ["living_alone", "disabled"]
    assert e1.care_level == 3 and e1.medical_notes == "高血压、糖尿病"
    assert e1.contacts == [
        Contact(name="陈伟", phone="13800000000", relation="儿子", app=True),  # answers on the phone page
        Contact(name="林芳", phone="13900000000"),
    ]
    assert e1.caregiver_id == "c0001" and e1.entitlement == "free"

    e2 = await store.get_elder("e2")
    assert e2 is not None  # empty optional cells take the model defaults
    assert (e2.birth_date, e2.risk_flags, e2.care_level, e2.contacts, e2.caregiver_id) == (
        None,
        [],
        None,
        [],
        None,
    )

    pendant, gt06 = await store.get_device("7DFE7B"), await store.get_device("864717003283581")
    assert pendant is not None and pendant.aes_key == "ABCDABCDABCDABCDABCDABCDABCDABCD"
    assert gt06 is not None and gt06.checkin_s == 3600 and gt06.aes_key is None

    caregiver, clinic = await store.get_responder("c0001"), await store.get_responder("k01")
    assert caregiver is not None and caregiver.skills == ["life_care", "nursing"]
    assert caregiver.green_channel is False and caregiver.hours is None and caregiver.travel == "bike"
    assert clinic is not None and clinic.green_channel is True and clinic.hours == "24h"
    assert clinic.name == "蓝田社区卫生服务中心"


async def test_summary(store: SqliteRegistry, tmp_path: Path) -> None:
    report = await import_good(store, tmp_path)
    assert report.summary().splitlines() == [
        "elders: 3 added, 0 updated, 0 unchanged",
        "devices: 3 added, 0 updated, 0 unchanged",
        "responders: 2 added, 0 updated, 0 unchanged",
    ]
    report.errors.append(RowError("elders.csv", 4, "lat: Input should be less than or equal to 90"))
    assert not report.ok
    assert report.summary().splitlines()[-2:] == [
        "1 rows refused:",
        "elders.csv:4: lat: Input should be less than or equal to 90",
    ]


async def test_import_twice_is_unchanged_and_writes_nothing(
    store: SqliteRegistry, db: aiosqlite.Connection, tmp_path: Path
) -> None:
    await import_good(store, tmp_path)
    before, changes = await table_rows(db), db.total_changes
    report = await import_good(store, tmp_path)
    assert report.ok
    assert report.elders == UpsertCounts(unchanged=3)
    assert report.devices == UpsertCounts(unchanged=3)
    assert report.responders == UpsertCounts(unchanged=2)
    assert await table_rows(db) == before
    assert db.total_changes == changes


async def test_a_changed_row_is_updated(store: SqliteRegistry, tmp_path: Path) -> None:
    await import_good(store, tmp_path)
    moved = elder_row("e3", lat="24.53")
    report = await import_files(
        store, elders=elders_csv(tmp_path, *GOOD_ELDERS[:2], moved), devices=None, responders=None
    )
    assert report.elders == UpsertCounts(updated=1, unchanged=2)
    e3 = await store.get_elder("e3")
    assert e3 is not None and e3.lat == 24.53


async def test_references_may_point_into_the_store(store: SqliteRegistry, tmp_path: Path) -> None:
    await import_files(store, elders=None, devices=None, responders=responders_csv(tmp_path, *GOOD_RESPONDERS))
    report = await import_files(store, elders=elders_csv(tmp_path, *GOOD_ELDERS), devices=None, responders=None)
    assert report.ok and report.elders == UpsertCounts(added=3)
    report = await import_files(store, elders=None, devices=devices_csv(tmp_path, *GOOD_DEVICES), responders=None)
    assert report.ok and report.devices == UpsertCounts(added=3)


async def test_a_contracted_providers_staff_is_imported_and_an_unknown_provider_refused(
    store: SqliteRegistry, tmp_path: Path
) -> None:
    header = RESPONDER_HEADER + ",provider"
    rows = (f"s01,王师傅,caregiver,life_care,24.51,117.69,18759630009,{C},bike,,,kangle",
            f"s02,李师傅,caregiver,life_care,24.51,117.69,18759630008,{C},bike,,,acme",
            f"c0001,林丽,caregiver,life_care;nursing,24.51,117.69,18759630001,{C},bike,,,")  # fmt: skip
    report = await import_files(store, elders=None, devices=None, responders=responders_csv(tmp_path, *rows,
                                header=header), providers=("centre", "kangle"))  # fmt: skip
    assert report.responders.added == 2
    assert [(e.line, e.reason) for e in report.errors] == [
        (3, "provider: unknown provider acme (not in the service catalogue)")
    ]
    stored = {r.responder_id: r.provider for r in await store.responders()}
    assert stored == {"s01": "kangle", "c0001": "centre"}  # an empty cell: the centre's own


def test_bom_crlf_and_multiline_cells(tmp_path: Path) -> None:
    noted = elder_row("e4", medical_notes='"高血压\n青霉素过敏"')
    text = "\r\n".join([ELDER_HEADER, GOOD_ELDERS[1], noted, "", "e5,,,,,,", ""])
    path = tmp_path / "elders.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    elders, errors = read_elders(path)
    assert [e.elder_id for e in elders] == ["e2", "e4"]
    assert elders[1].medical_notes == "高血压\n青霉素过敏"
    # e4 spans lines 3-4, line 5 is blank, so the short row is on line 6.
    assert errors == [RowError(str(path), 6, "expected 14 cells, found 7")]


# -- broken rows -----------------------------------------------------------------------------------------


async def test_broken_rows_are_reported_by_line_and_good_rows_kept(store: SqliteRegistry, tmp_path: Path) -> None:
    elders = elders_csv(
        tmp_path,
        GOOD_ELDERS[0],  # 2
        elder_row("e2", lat="95"),  # 3
        elder_row("e3", community="龙文区/湘桥社区"),  # 4
        elder_row("e4", contacts="陈伟13800000000"),  # 5
        elder_row("e5", caregiver_id="c9999"),  # 6
        elder_row("e1", care_level="1"),  # 7
        elder_row("e6", caregiver_id="k01", birth_date="1940-13-01"),  # 8
        elder_row("e7", caregiver_id="c0001"),  # 9
    )
    devices = devices_csv(
        tmp_path,
        "7DFE7B,sia-dc09,e1,,3600",  # 2
        "D2,contact-id,e7,,3600",  # 3
        "D3,sia-dc09,e7,ABCDEF,3600",  # 4
        "D4,watch,e404,,600",  # 5
        "D5,watch,e5,,600",  # 6
        "D6,gt06,e7,,600",  # 7
    )
    responders = responders_csv(
        tmp_path,
        GOOD_RESPONDERS[0],  # 2
        f"c0002,王强,volunteer,life_care;cooking,24.51,117.69,,{C},walk,,",  # 3
        f"c0003,王强,volunteer,comfort,24.51,117.69,,{C},walk,,maybe",  # 4
        GOOD_RESPONDERS[1],  # 5
    )
    protocols = ("sia-dc09", "watch", "gt06")  # what the gateway's registry speaks
    report = await import_files(store, elders=elders, devices=devices, responders=responders, protocols=protocols)

    got = [(Path(error.file).name, error.line, error.reason) for error in report.errors]
    assert got == [
        ("elders.csv", 3, "lat: Input should be less than or equal to 90"),
        ("elders.csv", 4, "community: community must be the path district/street/community"),
        ("elders.csv", 5, "contacts[0]: '陈伟13800000000' is not name:phone or name:phone:relation"),
        (
            "elders.csv",
            6,
            "caregiver_id: unknown responder c9999 (neither in this import nor in the registry)",
        ),
        ("elders.csv", 7, "duplicate elder_id e1, first on line 2"),
        ("elders.csv", 8, "birth_date: '1940-13-01' is not a date YYYY-MM-DD"),
        ("devices.csv", 3, "protocol: unknown device protocol contact-id (this server does not speak it)"),
        ("devices.csv", 4, "aes_key: aes_key must be 128, 192 or 256 bits (32, 48 or 64 hex digits)"),
        ("devices.csv", 5, "elder_id: unknown elder e404 (neither in this import nor in the registry)"),
        ("devices.csv", 6, "elder_id: unknown elder e5 (neither in this import nor in the registry)"),
        ("responders.csv", 3, "skills[1]: Input should be 'life_care', 'nursing', 'medical' or 'comfort'"),
        ("responders.csv", 4, "green_channel: 'maybe' is not one of yes/no/true/false/1/0"),
    ]
    assert report.elders == UpsertCounts(added=2)
    assert report.devices == UpsertCounts(added=2)
    assert report.responders == UpsertCounts(added=2)
    assert await store.elder_ids() == {"e1", "e7"}
    assert await store.responder_ids() == {"c0001", "k01"}
    assert {d.device_id for d in await store.devices()} == {"7DFE7B", "D6"}
    e1 = await store.get_elder("e1")
    assert e1 is not None and e1.care_level == 3  # the first row won, not the duplicate
    assert "elders.csv:3: lat: Input should be less than or equal to 90" in report.summary()


def test_row_reasons_name_every_field(tmp_path: Path) -> None:
    path = elders_csv(
        tmp_path,
        elder_row("e1", lat="north", care_level="9", risk_flags="living_alone;lonely", contacts="a:b"),
        ",,,,,,,,,,,,,",
        "e2,,,,,,,,,,,,,",
    )
    elders, errors = read_elders(path)
    assert elders == []
    assert errors[0].line == 2
    assert errors[0].reason.split("; ") == [
        "lat: Input should be a valid number, unable to parse string as a number",
        "risk_flags[1]: Input should be 'living_alone', 'empty_nest', 'three_nos', 'low_income' or 'disabled'",
        "care_level: Input should be less than or equal to 5",
        "contacts[0].phone: String should match pattern '^\\+?[0-9][0-9 -]{2,24}$'",
    ]
    # A row of empty cells is a blank line; a row with only an id lacks every required field.
    assert len(errors) == 2 and errors[1].line == 4
    assert errors[1].reason.split("; ")[:2] == ["name: Field required", "address: Field required"]


def test_caregiver_without_skills_is_refused(tmp_path: Path) -> None:
    path = responders_csv(tmp_path, f"c0001,林丽,caregiver,,24.51,117.69,,{C},,,")
    responders, errors = read_responders(path)
    assert responders == []
    assert errors == [RowError(str(path), 2, "a caregiver or volunteer needs at least one skill")]


def test_device_reader_is_pure(tmp_path: Path) -> None:
    devices, errors = read_devices(devices_csv(tmp_path, *GOOD_DEVICES))
    assert errors == []
    assert [(d.device_id, d.protocol, d.checkin_s) for d in devices] == [
        ("7DFE7B", "sia-dc09", 3600),
        ("6907919734", "watch", 600),
        ("864717003283581", "gt06", 3600),
    ]


# -- whole files refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (ELDER_HEADER.replace("lat,lon,", ""), "missing required columns: lat, lon"),
        (ELDER_HEADER.replace("community", "comunity", 1), "missing required columns: community"),
        (ELDER_HEADER + ",notes", "unknown columns: 'notes'"),
        (ELDER_HEADER + ",name", "repeated columns: name"),
        (ELDER_HEADER.replace("name", "Name"), "unknown columns: 'Name'"),
    ],
)
async def test_bad_header_refuses_the_import_whole(
    store: SqliteRegistry, db: aiosqlite.Connection, tmp_path: Path, header: str, message: str
) -> None:
    elders = elders_csv(tmp_path, *GOOD_ELDERS, header=header)
    with pytest.raises(InvalidInput, match=message) as caught:
        await import_files(
            store,
            elders=elders,
            devices=devices_csv(tmp_path, *GOOD_DEVICES),
            responders=responders_csv(tmp_path, *GOOD_RESPONDERS),
        )
    assert str(elders) in str(caught.value)
    assert await table_rows(db) == {"elders": [], "devices": [], "responders": []}


async def test_unknown_device_column_refused(store: SqliteRegistry, tmp_path: Path) -> None:
    devices = devices_csv(tmp_path, "7DFE7B,sia-dc09,e1,,3600,x", header=DEVICE_HEADER + ",imei")
    with pytest.raises(InvalidInput, match=r"devices\.csv: refused, unknown columns: 'imei'"):
        await import_files(store, elders=None, devices=devices, responders=None)


def test_empty_and_non_utf8_files_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInput, match="empty file"):
        read_elders(empty)
    gbk = write(tmp_path / "gbk.csv", ELDER_HEADER, *GOOD_ELDERS, encoding="gbk")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        read_elders(gbk)


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    assert read_responders(responders_csv(tmp_path)) == ([], [])


def test_dates_must_be_iso(tmp_path: Path) -> None:
    _, errors = read_elders(elders_csv(tmp_path, elder_row("e1", birth_date="1/5/1938")))
    assert errors == [RowError(str(tmp_path / "elders.csv"), 2, "birth_date: '1/5/1938' is not a date YYYY-MM-DD")]


def test_unparseable_csv_is_refused(tmp_path: Path) -> None:
    path = elders_csv(tmp_path, elder_row("e1", medical_notes='"' + "x" * 200_000 + '"'))
    with pytest.raises(InvalidInput, match="unreadable CSV: field larger than field limit"):
        read_elders(path)


# -- one person registered twice (rule 7), the identity columns, the keys kept (rule 8) -------------------

ID_HEADER = "elder_id,name,phone,address,lat,lon,community,birth_date,resident_id,lives_with,active"
NUMBER = "11010519491231002X"  # GB 11643-1999's own example


def id_row(elder_id: str, name: str, phone: str, born: str = "", number: str = "", **more: str) -> str:
    cells = (born, number, more.get("lives", ""), more.get("active", ""))
    return f"{elder_id},{name},{phone},龙文区蓝田街道湘桥社区1号,24.514,117.689,{C}," + ",".join(cells)


async def test_a_person_already_registered_or_twice_in_the_file_is_refused_with_who_and_why(
    store: SqliteRegistry, tmp_path: Path
) -> None:
    known = (id_row("e0", "陈淑华", "13800000000", "1936-07-07"), id_row("e1", "王秀英", "13800000001", "1940-03-01"))
    (tmp_path / "before").mkdir()
    first = elders_csv(tmp_path / "before", *known, header=ID_HEADER)
    assert (await import_files(store, elders=first, devices=None, responders=None)).ok
    rows = (
        id_row("e0", "陈淑华", "13800000000", "1936-07-07", lives="alone"),  # herself, updated: not judged
        id_row("e2", "王 秀英", "13900000002", "1940-03-01"),  # line 3: e1 again, by name and birth date
        id_row("e3", "李建国", "0596-2000001", "1938-01-01", NUMBER),  # line 4: a new person
        id_row("e4", "李建国", "05962000001"),  # line 5: line 4 again, by name and phone
        id_row("e5", "张桂兰", "05962000001", "1941-05-05"),  # line 6: his wife on their landline: a household
        id_row("e6", "王秀英", "13900000006", "1940-03-01", "11010519400301002X"),  # line 7: see below
        id_row("e7", "王秀英", "13900000007", "1940-03-01", active="no"),  # line 8: out of care, not judged
    )
    path = elders_csv(tmp_path, *rows, header=ID_HEADER)
    devices = devices_csv(tmp_path, "d2,watch,e2,,600", "d3,watch,e3,,600")
    report = await import_files(store, elders=path, devices=devices, responders=None)
    reasons = {(error.file, error.line): error.reason for error in report.errors}
    said = "possible duplicate: probably the same person as elder e1 王秀英 of 龙文区/蓝田街道/湘桥社区: same name"
    assert reasons[(str(path), 3)].startswith(said + " and birth date")
    assert "resident_id if they are two people" in reasons[(str(path), 3)]
    assert "line 4 (elder e3: same name and phone)" in reasons[(str(path), 5)]
    # e6 carries a number and e1 none: nothing tells them apart, so it is proposed too
    assert "elder e1" in reasons[(str(path), 7)]
    # the refused elder's device has no owner, and is refused for it
    assert "elder_id: unknown elder e2" in reasons[(str(devices), 2)]
    assert set(reasons) == {(str(path), 3), (str(path), 5), (str(path), 7), (str(devices), 2)}
    assert report.elders == UpsertCounts(added=3, updated=1) and report.devices == UpsertCounts(added=1)
    e0, e3, e7 = [await store.get_elder(k) for k in ("e0", "e3", "e7")]
    assert e0 is not None and e0.lives_with == "alone"
    assert e3 is not None and e3.resident_id == NUMBER and e7 is not None and e7.active is False


async def test_namesakes_told_apart_by_their_numbers_are_both_imported(store: SqliteRegistry, tmp_path: Path) -> None:
    rows = (
        id_row("e1", "张伟", "13800000001", "1949-12-31", NUMBER),
        id_row("e2", "张伟", "13800000002", "1949-12-31", "110105194912310038"),
    )
    report = await import_files(store, elders=elders_csv(tmp_path, *rows, header=ID_HEADER), devices=None,
                                responders=None)  # fmt: skip
    assert report.ok and report.elders == UpsertCounts(added=2)


async def test_a_bad_resident_id_or_lives_with_is_a_row_error(tmp_path: Path) -> None:
    rows = (id_row("e1", "王秀英", "13800000001", number="110105194912310021"), id_row("e2", "李", "1", lives="cat"))
    _, errors = read_elders(elders_csv(tmp_path, *rows, header=ID_HEADER))
    assert "resident_id: the check character does not match" in errors[0].reason
    assert errors[1].reason.startswith("phone:") and "lives_with:" in errors[1].reason


async def test_an_empty_key_cell_keeps_the_stored_key(store: SqliteRegistry, tmp_path: Path) -> None:
    await import_good(store, tmp_path)
    again = devices_csv(tmp_path, "7DFE7B,sia-dc09,e1,,3600", header=DEVICE_HEADER)
    report = await import_files(store, elders=None, devices=again, responders=None)
    assert report.devices == UpsertCounts(unchanged=1)
    pendant = await store.get_device("7DFE7B")
    assert pendant is not None and pendant.aes_key == "ABCDABCDABCDABCDABCDABCDABCDABCD"


async def test_an_import_never_changes_whether_a_known_elder_is_in_care(store: SqliteRegistry, tmp_path: Path) -> None:
    """Rule 9: an old spreadsheet does not bring back someone who died, nor take someone out of care unjournaled;
    no device is bound to an elder out of care."""
    (tmp_path / "before").mkdir()
    before = (id_row("e1", "王秀英", "13800000001", "1940-03-01"), id_row("e2", "陈淑华", "13800000002", active="no"))
    assert (await import_files(store, elders=elders_csv(tmp_path / "before", *before, header=ID_HEADER),
                               devices=None, responders=None)).ok  # fmt: skip
    rows = (
        id_row("e1", "王秀英", "13800000001", "1940-03-01", active="no"),  # line 2: out, by a spreadsheet: refused
        id_row("e2", "陈淑华", "13800000002"),  # line 3: back in care, by a spreadsheet: refused
        id_row("e3", "李建国", "13800000003", active="no"),  # line 4: a new record out of care: fine
    )
    path = elders_csv(tmp_path, *rows, header=ID_HEADER)
    devices = devices_csv(tmp_path, "d1,watch,e1,,600", "d2,watch,e2,,600", "d3,watch,e3,,600")
    report = await import_files(store, elders=path, devices=devices, responders=None)
    reasons = {(error.file, error.line): error.reason for error in report.errors}
    assert "e1 is in the centre's care; deactivate or reactivate them on the registry page" in reasons[(str(path), 2)]
    assert "e2 is out of the centre's care" in reasons[(str(path), 3)]
    assert "out of the centre's care; no device is bound to them" in reasons[(str(devices), 3)]
    assert "out of the centre's care; no device is bound to them" in reasons[(str(devices), 4)]
    assert set(reasons) == {(str(path), 2), (str(path), 3), (str(devices), 3), (str(devices), 4)}
    e1, e2 = await store.get_elder("e1"), await store.get_elder("e2")
    assert e1 is not None and e1.active and e2 is not None and not e2.active
    assert report.devices == UpsertCounts(added=1)
