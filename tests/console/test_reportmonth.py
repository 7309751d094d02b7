"""The report's files from a real month: the month tests/dispatch/test_periodreport.py drives through the engine
(alarms, calls, offers, visits, false alarms, hand-overs, drills, orders, follow-ups) reported by each level,
written as a workbook and as the PDF: every figure of every area in the workbook is the report's, and the PDF
names the areas and the month's alarms (pdftotext)."""

from __future__ import annotations

import io
import random
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from console.reportpdf import render_report_pdf
from console.reportwords import FIGURES, area_words, figure
from console.reportxlsx import render_xlsx
from dispatch.clock import ManualClock
from dispatch.core import open_core
from dispatch.scopes import Reach
from tests.conftest import require_program, seed, settings_for
from tests.dispatch import test_periodreport as generated

LEVELS = ("district", "street", "community")


@pytest.fixture
async def reports(tmp_path: Path) -> AsyncIterator[dict[str, dict[str, Any]]]:
    """November 2026 as the period report's own test generates it (the same seed), reported by each level."""
    city, elders, responders, devices = generated._city()
    settings = settings_for(tmp_path / "data", lines={generated.LINE: generated.LINE_PLACE},
                            position_stale_s=60 * 86400.0)  # fmt: skip
    await seed(settings, elders=elders, responders=responders, devices=devices)
    clock = ManualClock(generated.START - 36 * 3600)
    opened = await open_core(settings, clock, protocols=("sia-dc09", "watch"))
    opened.intake.start()
    try:
        await generated.Month(opened, clock, city, random.Random(17)).run()
        yield {by: opened.views.period_report(Reach(("*",)), by=by, month="2026-11", include_drill=False)
               for by in LEVELS}  # fmt: skip
    finally:
        await opened.close()


def test_a_generated_month_is_written_whole_at_every_level(reports: dict[str, dict[str, Any]]) -> None:
    pdftotext = require_program("pdftotext")
    for by, report in reports.items():
        assert report["totals"]["alarms"] > 0 and len(report["areas"]) > 1
        book = openpyxl.load_workbook(io.BytesIO(render_xlsx(report, scope="全部辖区")))
        rows = list(book["分区"].iter_rows(min_row=2, values_only=True))
        assert [row[0] for row in rows] == [area_words("zh-CN", a["area"]) for a in report["areas"]]
        for row, area in zip(rows, report["areas"], strict=True):
            assert list(row[1:]) == [figure(area["figures"], path) for path, _, _ in FIGURES], area["area"]
        assert len(list(book["人员"].iter_rows(min_row=2))) == len(report["responders"])
        pdf = render_report_pdf(report, scope="全部辖区")
        text = subprocess.run([pdftotext, "-layout", "-", "-"], input=pdf, capture_output=True, check=True).stdout
        words = text.decode()
        assert "2026-11-01 至 2026-11-30 报警处置统计" in words
        assert all(area_words("zh-CN", a["area"]) in words for a in report["areas"]), by
