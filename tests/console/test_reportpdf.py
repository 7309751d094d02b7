"""The monthly report's PDF (console.reportpdf): it renders, its text is extractable (pdftotext, poppler-utils)
and in Chinese: the title, the period, an area's name and a figure, every chart's and table's heading."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from console.reportpdf import render_report_pdf, value_words
from tests.conftest import require_program
from tests.console.reportfixture import report


def _text(pdf: bytes, tmp_path: Path) -> str:
    program = require_program("pdftotext")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run([program, "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def test_the_pdf_says_in_chinese_what_the_report_holds(tmp_path: Path) -> None:
    pdf = render_report_pdf(report(), scope="福田区 华富街道")
    assert pdf.startswith(b"%PDF")
    text = _text(pdf, tmp_path)
    assert "安心 报警处置月报" in text
    assert "2026-11-01 至 2026-11-30 报警处置统计" in text
    assert "范围：福田区 华富街道" in text and "不含演练" in text
    assert "福田区 华富街道 田面社区" in text and "无地址" in text  # an area, and the alarms with no place
    assert "89.3%" in text  # the share answered within 60 s, 25 of 28
    for heading in ("主要指标", "每日报警数与60秒内应答数", "应答时间分布", "处置结果", "各区域报警数",
                    "分区统计", "报警类型", "报警来源", "人员统计", "紧急呼叫", "4G 手表", "王芳"):  # fmt: skip
        assert heading in text, heading


def test_nothing_measured_is_a_dash_and_an_empty_chart_says_so(tmp_path: Path) -> None:
    data = report()
    data["days"] = [{**day, "alarms": 0, "answered_within_60s": 0} for day in data["days"]]
    data["totals"]["answer_buckets"] = [0] * 6
    data["totals"]["share_within_60s"] = None
    text = _text(render_report_pdf(data, scope="全部辖区"), tmp_path)
    assert text.count("无数据") == 2
    assert value_words(None, "share") == "—" and value_words(0.91666, "share") == "91.7%"


def test_drills_included_are_named(tmp_path: Path) -> None:
    text = _text(render_report_pdf({**report(), "drill_included": True}, scope="全部辖区"), tmp_path)
    assert "含演练数据" in text


@pytest.mark.parametrize("by", ["district", "street"])
def test_the_level_is_named(tmp_path: Path, by: str) -> None:
    text = _text(render_report_pdf(report(by), scope="全部辖区"), tmp_path)
    assert {"district": "按区统计", "street": "按街道统计"}[by] in text


def test_a_span_of_days_is_a_report_not_a_monthly_one(tmp_path: Path) -> None:
    data = report()
    data["period"] = {**data["period"], "label": "2026-11-03..2026-11-10", "end_day": "2026-11-10"}
    text = _text(render_report_pdf(data, scope="全部辖区"), tmp_path)
    assert "安心 报警处置报表" in text and "月报" not in text
