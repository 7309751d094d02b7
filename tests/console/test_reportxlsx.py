"""The period report's workbook (console.reportxlsx), opened with openpyxl: its sheets, headers and values are
the report's."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from console.reportwords import BUCKETS, FIGURES, RESPONDER_COUNTS, area_words, figure, say
from console.reportxlsx import SUMMARY_HEAD_ROW, on_job_hours, render_xlsx
from tests.console.reportfixture import report

SHEETS_ZH = ["汇总", "分区", "类型", "来源", "每日", "人员"]


def _book(language: str = "zh-CN", **changes: Any) -> tuple[dict[str, Any], openpyxl.Workbook]:
    data = {**report(), **changes}
    return data, openpyxl.load_workbook(io.BytesIO(render_xlsx(data, scope="福田区 华富街道", language=language)))


def _rows(sheet: Worksheet, first: int = 1) -> list[list[Any]]:
    return [[cell.value for cell in row] for row in sheet.iter_rows(min_row=first)]


def test_the_sheets_have_chinese_names_in_order() -> None:
    assert _book()[1].sheetnames == SHEETS_ZH


def test_the_sheets_have_english_names_when_asked() -> None:
    assert _book("en")[1].sheetnames == ["Summary", "Areas", "Alarm types", "Sources", "Days", "Responders"]


def test_the_summary_names_the_period_and_scope_and_lists_every_figure() -> None:
    data, book = _book()
    sheet = book["汇总"]
    assert sheet["A1"].value == "安心 报警处置月报"
    assert sheet["A2"].value == "2026-11-01 至 2026-11-30 报警处置统计"
    assert "福田区 华富街道" in sheet["A3"].value and "按社区统计" in sheet["A3"].value
    assert sheet["A4"].value == "不含演练"
    rows = _rows(sheet, SUMMARY_HEAD_ROW)
    assert rows[0] == ["指标", "数值"]
    expected = [[say("zh-CN", key), figure(data["totals"], path)] for path, key, _ in FIGURES]
    buckets = zip(BUCKETS, data["totals"]["answer_buckets"], strict=True)
    expected += [[f"应答时间分布 {say('zh-CN', key)}", n] for key, n in buckets]
    assert rows[1:] == expected
    assert rows[1] == ["报警数", 28]


def test_shares_are_numbers_shown_as_percentages_and_seconds_as_numbers() -> None:
    _, book = _book()
    sheet = book["汇总"]
    by_name = {row[0].value: row[1] for row in sheet.iter_rows(min_row=SUMMARY_HEAD_ROW + 1)}
    share = by_name["60秒应答率"]
    assert share.value == pytest.approx(25 / 28, abs=1e-4) and share.number_format == "0.0%"
    median = by_name["应答时间中位数（秒）"]
    assert median.value == 21.0 and median.data_type == "n"
    assert by_name["报警数"].data_type == "n"


def test_the_area_sheet_is_one_row_per_area_with_every_figure() -> None:
    data, book = _book()
    rows = _rows(book["分区"])
    assert rows[0] == ["区域", *(say("zh-CN", key) for _, key, _ in FIGURES)]
    assert [row[0] for row in rows[1:]] == ["无地址", "福田区 华富街道 田面社区", "福田区 华富街道 新洲社区"]
    for row, area in zip(rows[1:], data["areas"], strict=True):
        assert row[1:] == [figure(area["figures"], path) for path, _, _ in FIGURES]


def test_nothing_measured_is_an_empty_cell_never_zero() -> None:
    empty = {"area": "福田区/华富街道/空社区", "figures": report()["areas"][0]["figures"] | {"alarms": 0}}
    empty["figures"]["answer_s"] = {"n": 0, "median": None, "p90": None, "max": None}
    empty["figures"]["share_within_60s"] = None
    _, book = _book(areas=[empty])
    row = _rows(book["分区"])[1]
    columns = {key: n + 1 for n, (_, key, _) in enumerate(FIGURES)}
    assert row[columns["report.f.alarms"]] == 0
    assert row[columns["report.f.answer_median"]] is None and row[columns["report.f.share_within_60s"]] is None


def test_types_and_sources_are_in_words() -> None:
    _, book = _book()
    assert [row[0] for row in _rows(book["类型"])] == ["报警类型", "紧急呼叫", "跌倒"]
    assert [row[:2] for row in _rows(book["来源"])] == [["来源", "报警数"], ["4G 手表", 20], ["热线", 8]]


def test_the_days_are_every_day_of_the_period() -> None:
    data, book = _book()
    rows = _rows(book["每日"])
    assert rows[0] == ["日期", "报警数", "60秒内应答", "来电数"]
    assert rows[1:] == [[d["day"], d["alarms"], d["answered_within_60s"], d["calls"]] for d in data["days"]]


def test_the_responders_and_their_hours() -> None:
    data, book = _book()
    rows = _rows(book["人员"])
    assert rows[0] == ["编号", "人员", "类别", "派单", "接单", "拒单", "超时未应", "完成", "出勤时长（小时）"]
    for row, person in zip(rows[1:], data["responders"], strict=True):
        counts = [person[key] for key, _ in RESPONDER_COUNTS]
        assert row[:2] == [person["responder_id"], person["name"]] and row[3:8] == counts
        assert row[8] == on_job_hours(person["on_job_s"])
    assert rows[1][2] == "护理员" and rows[1][8] == 4


@pytest.mark.parametrize("text", ["=1+1", "+86 138", "-2", "@SUM(A1)", '=HYPERLINK("http://x")'])
def test_would_be_formulas_are_written_as_text(text: str) -> None:
    data = report()
    data["responders"][0]["name"] = text
    data["areas"][1]["area"] = text
    raw = render_xlsx(data, scope=text)
    book = openpyxl.load_workbook(io.BytesIO(raw))
    for cell, shown in ((book["人员"]["B2"], text), (book["分区"]["A3"], area_words("zh-CN", text))):
        assert cell.value == shown and cell.data_type == "s" and cell.quotePrefix
    with zipfile.ZipFile(io.BytesIO(raw)) as files:  # nothing in the file is a formula
        assert not any(b"<f>" in files.read(name) for name in files.namelist() if name.startswith("xl/worksheets"))
