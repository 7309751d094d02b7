"""The server's phrases in words on the server's side (console.phrases): the same rows as the pages' reasons.js, the
catalogue's Chinese for each, a person's words left alone; and the PDF's timeline saying them in Chinese."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from console.filepdf import label, line_words, render_pdf, words
from console.phrases import PHRASES, explain
from tests.conftest import require_program
from tests.console.streets import elder_a

REASONS_JS = Path(__file__).parents[2] / "console" / "static" / "reasons.js"


def test_every_row_is_a_row_of_reasons_js_character_for_character() -> None:
    script = REASONS_JS.read_text(encoding="utf-8")
    for pattern, _ in PHRASES:
        assert f"[/{pattern}/," in script, pattern


@pytest.mark.parametrize(
    ("phrase", "said"),
    [
        ("hotline call from 13505960001 on line 12349", "热线来电 13505960001，线路 12349"),
        ("missed hotline call from 13505960001 on line 12349: call back", "未接来电 13505960001，线路 12349，需回拨"),
        ("missed hotline call from 0596-2345678 on line 12349: call back (household: 李建国, 王秀英)",
         "未接来电 0596-2345678，线路 12349，需回拨（同户：李建国、王秀英）"),
        ("hotline call from 0596-2345678 on line 12349 (household: 李建国, 王秀英)",
         "热线来电 0596-2345678，线路 12349（同户：李建国、王秀英）"),
        ("call from 13800000011: 她说头晕", "来电 13800000011：她说头晕"),
        ("caller 13800000011\n邻居", "来电号码 13800000011；邻居"),
        ("no report from watch device 8800000001 within 300 s (last seen 420 s ago)",
         f"{label('protocol', 'watch')} 8800000001 超过 300 秒未上报；上次上报于 420 秒前"),
        ("device reported restore (CID:3301)", "设备报告恢复（CID:3301）"),
        ("device reported again", "设备已恢复上报"),
        ("all devices restored", "设备均已恢复"),
        ("device unbound", "设备已解绑"),
        ("test passed", "测试通过"),
        ("扶起，无外伤", "扶起，无外伤"),  # a person's words
        ("test passed, checked by phone", "test passed, checked by phone"),  # typed: not the phrase
    ],
)  # fmt: skip
def test_a_phrase_in_chinese(phrase: str, said: str) -> None:
    assert explain(phrase, words, label) == said


def test_a_timeline_line_says_outcomes_notes_and_reasons_in_words() -> None:
    def line(kind: str, **detail: object) -> dict[str, object]:
        return {"kind": kind, "detail": detail}

    assert line_words(line("incident.resolved", outcome="test passed")) == "处置结果：测试通过"
    assert line_words(line("incident.resolved", outcome="扶起，无外伤")) == "处置结果：扶起，无外伤"
    assert line_words(line("referral.outcome", outcome="admitted", clinic_name="蓝田卫生院")) == "蓝田卫生院：收住院"
    note = line("incident.note", text="missed hotline call from 13505960001 on line 12349: call back")
    assert line_words(note) == "备注：未接来电 13505960001，线路 12349，需回拨"
    assert line_words(line("incident.cancelled", reason="device unbound")) == "警情取消：设备已解绑"


def test_the_pdf_says_a_test_call_and_a_households_missed_call_in_chinese(tmp_path: Path) -> None:
    elder = elder_a().model_dump(mode="json")
    elder.update(sex="female", age=76, devices=[], vouchers={}, caregiver_name=None)
    household = "missed hotline call from 0596-2345678 on line 12349: call back (household: 李建国, 王秀英)"
    timeline = [
        {"ts": 1_800_000_300.0, "kind": "incident.resolved", "actor": "system", "detail": {"outcome": "test passed"}},
        {"ts": 1_800_000_200.0, "kind": "incident.note", "actor": "cti", "detail": {"text": household}},
        {"ts": 1_800_000_100.0, "kind": "incident.resolved", "actor": "device:1234",
         "detail": {"outcome": "device reported restore (CID:3301)"}},
    ]  # fmt: skip
    file = {"elder": elder, "assessments": [], "health": None, "timeline": timeline}
    pdf = tmp_path / "file.pdf"
    pdf.write_bytes(render_pdf(file, printed_at=1_800_000_400.0, timezone="Asia/Shanghai", why="case_conference"))
    text = subprocess.run([require_program("pdftotext"), "-enc", "UTF-8", str(pdf), "-"], capture_output=True,
                          check=True).stdout.decode("utf-8")  # fmt: skip
    flat = re.sub(r"\s+", "", text)
    for expected in ("处置结果：测试通过", "需回拨（同户：李建国、王秀英）", "设备报告恢复（CID:3301）"):
        assert expected in flat, (expected, text[-1500:])
    for english in ("test passed", "hotline call", "household", "device reported"):
        assert english not in text, (english, text[-1500:])
