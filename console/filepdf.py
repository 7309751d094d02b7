"""The elder's file as a PDF, in Chinese, for a case conference (个案讨论): the file's sections and the timeline.

What it owns
    :func:`render_pdf`, the file (as :mod:`console.elderfile` assembles it) laid out on A4 with reportlab, every
    word from the pages' Chinese catalogue (``static/i18n/zh-CN.json``), so the PDF and the page say the same.
    The font: the first CJK TrueType font found on the machine (:data:`FONT_FILES`; Debian's
    ``fonts-wqy-microhei``), embedded so the text can be extracted and searched; without one, reportlab's
    built-in ``STSong-Light`` CID font (the reader's own font draws it).

Rules
    1. Pure: a dict in, bytes out; no clock (the print time is passed), no journal, no registry.
    2. Every page names the elder and when it was printed and why (a printed file leaves the system; the
       reason on it is the one on record).

Never
    Never write the file to disk; never print what the reader was not shown (the caller gives only that).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from console.phrases import explain

CATALOGUE = Path(__file__).parent / "static" / "i18n" / "zh-CN.json"
#: CJK fonts that embed (TrueType outlines), in order of preference
FONT_FILES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
)
FALLBACK_FONT = "STSong-Light"
FONT = "AnxinCJK"

Words = Callable[..., str]


@cache
def font_name(files: tuple[Path, ...] = FONT_FILES) -> str:
    """The registered font's name: an embedded TrueType one when a file is found, else the CID fallback."""
    for path in files:
        if path.is_file():
            pdfmetrics.registerFont(TTFont(FONT, str(path), subfontIndex=0))
            return FONT
    pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_FONT))
    return FALLBACK_FONT


@cache
def _catalogue() -> Mapping[str, str]:
    loaded: dict[str, str] = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    return loaded


def words(key: str, **params: object) -> str:
    """The catalogue's words for ``key`` with its ``{params}`` filled (a missing one left empty)."""
    text = _catalogue().get(key, key)
    for name, value in params.items():
        text = text.replace("{" + name + "}", "" if value is None else str(value))
    return text


def label(group: str, code: object) -> str:
    """A code in words when the catalogue has it, else the code itself."""
    if code is None or code == "":
        return ""
    return _catalogue().get(f"{group}.{code}", str(code))


def line_words(line: Mapping[str, Any], say: Words = words, name: Callable[[str, object], str] = label) -> str:
    """A timeline line in words (what the page's elder.js says for it too): the server's own phrases among its
    notes, outcomes and reasons said in words too (console.phrases)."""
    detail: Mapping[str, Any] = line.get("detail") or {}
    params: dict[str, object] = {key: value for key, value in detail.items() if not isinstance(value, list)}
    for key in ("text", "note", "reason"):
        if isinstance(params.get(key), str):
            params[key] = explain(str(params[key]), say, name)
    params.update(
        alarm=name("alarm", detail.get("alarm_type")),
        status=name("assignment", detail.get("status")),
        kind=name("callkind", detail.get("kind")),
        wellbeing=name("wellbeing", detail.get("wellbeing")),
        outcome=_outcome(detail.get("outcome"), say, name),
        responder=detail.get("responder_name") or detail.get("responder_id") or "",
        clinic=detail.get("clinic_name") or detail.get("clinic_id") or "",
        item=detail.get("item_zh") or detail.get("item_id") or "",
        fields="、".join(name("file.field", field) for field in detail.get("fields") or ()),
        level=name("assess.level", detail.get("level")),
        left=name("left_care", detail.get("reason")),
        test=say("flag.test") if detail.get("test") else "",
    )
    return say(f"file.kind.{line['kind']}", **params).strip()


def _outcome(outcome: object, say: Words, name: Callable[[str, object], str]) -> str:
    """A referral's outcome is a code of the catalogue; an incident's, words: a person's, or a server phrase."""
    coded = name("outcome", outcome)
    return explain(outcome, say, name) if isinstance(outcome, str) and coded == outcome else coded


class _Styles:
    def __init__(self, font: str) -> None:
        self.title = ParagraphStyle("title", fontName=font, fontSize=18, leading=24, spaceAfter=4 * mm)
        self.heading = ParagraphStyle("heading", fontName=font, fontSize=13, leading=18, spaceBefore=3 * mm,
                                      spaceAfter=2 * mm)  # fmt: skip
        self.body = ParagraphStyle("body", fontName=font, fontSize=10, leading=14)
        self.small = ParagraphStyle("small", fontName=font, fontSize=8.5, leading=11, textColor=colors.grey)


def _p(text: object, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape("" if text is None else str(text)).replace("\n", "<br/>"), style)


def _table(rows: Sequence[Sequence[object]], style: _Styles, widths: list[float]) -> Table:
    table = Table([[_p(cell, style.body) for cell in row] for row in rows], colWidths=widths, repeatRows=0)
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.3, colors.lightgrey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
    ]))  # fmt: skip
    return table


def _when(ts: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M")


def render_pdf(file: Mapping[str, Any], *, printed_at: float, timezone: str, why: str) -> bytes:
    """The PDF of a file: identity, home, care, contacts, devices, vouchers, assessments, health readings in
    figures, and the timeline given (the last 90 days, newest first)."""
    zone = ZoneInfo(timezone)
    style = _Styles(font_name())
    elder: Mapping[str, Any] = file["elder"]
    half = (A4[0] - 36 * mm) / 2
    label_w, value_w = 38 * mm, A4[0] - 36 * mm - 38 * mm
    reason = words(f"file.why.{why.partition(':')[0]}") + why.partition(":")[2]
    story: list[Flowable] = [
        _p(f"{words('file.title')}　{elder['name']}", style.title),
        _p(
            words("file.opened_for", why=reason) + "　" + words("file.printed", time=_when(printed_at, zone)),
            style.small,
        ),
        _p(words("file.identity"), style.heading),
        _table(_identity_rows(elder), style, [label_w, value_w]),
        _p(words("file.care"), style.heading),
        _table(_care_rows(elder), style, [label_w, value_w]),
        _p(words("file.contacts"), style.heading),
        _table(_contact_rows(elder) or [[words("record.no_contacts"), ""]], style, [half, half]),
        _p(words("file.devices"), style.heading),
        _table(_device_rows(elder, zone) or [[words("record.no_devices"), ""]], style, [half, half]),
        _p(words("file.vouchers"), style.heading),
        _p(_voucher_words(elder), style.body),
        PageBreak(),
        _p(words("file.assessments"), style.heading),
    ]
    assessments = file.get("assessments") or []
    story.append(
        _table([_assessment_row(a, zone) for a in assessments], style, [label_w, value_w])
        if assessments
        else _p(words("file.no_assessments"), style.body)
    )
    story += [_p(words("file.health"), style.heading), _p(_health_words(file), style.body), PageBreak()]
    story.append(_p(words("file.timeline"), style.heading))
    lines = file.get("timeline") or []
    scope = file.get("timeline_scope") or {}
    if scope.get("more"):  # a file cut short says so: what is left out is on the page, /elder
        story.append(_p(words("file.pdf_scope", n=len(lines), days=scope.get("days"), max=scope.get("max")),
                        style.small))  # fmt: skip
    rows = [[_when(line["ts"], zone), line_words(line) + _by(line)] for line in lines]
    story.append(_table(rows, style, [label_w, value_w]) if rows else _p(words("file.no_lines"), style.body))
    story.append(Spacer(1, 4 * mm))

    footer = f"{words('file.title')} · {elder['name']} · {words('file.printed', time=_when(printed_at, zone))}"

    def on_page(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(style.small.fontName, 8)
        canvas.drawString(18 * mm, 10 * mm, footer)
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, str(doc.page))
        canvas.restoreState()

    out = io.BytesIO()
    title = f"{words('file.title')} {elder['name']}"
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=18 * mm, title=title, author="Anxin")  # fmt: skip
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return out.getvalue()


def actor_words(actor: str | None, name: str | None) -> str:
    """An actor of the journal in words ("接警员 王芳", "系统"), as the pages' actorWords says it."""
    if not actor:
        return ""
    role, _, who = actor.partition(":")
    key = f"actor.{role}"
    return words(key, name=name if name and name != actor else who) if key in _catalogue() else (name or actor)


def _by(line: Mapping[str, Any]) -> str:
    who = actor_words(line.get("actor"), line.get("actor_name"))
    return f"（{who}）" if who else ""


def _identity_rows(elder: Mapping[str, Any]) -> list[list[object]]:
    lives = elder.get("lives_with")
    return [
        [words("file.name"), elder["name"]],
        [words("file.sex"), words(f"file.sex.{elder['sex']}") if elder.get("sex") else "—"],
        [words("file.birth"), elder.get("birth_date") or "—"],
        [words("file.age"), words("record.age", n=elder["age"]) if elder.get("age") is not None else "—"],
        [words("file.resident_id"), elder.get("resident_id") or "—"],
        [words("file.lives_with"), words(f"file.lives_with.{lives}") if lives else "—"],
        [words("record.phone"), elder.get("phone") or "—"],
        [words("record.address"), elder["address"]],
        [words("record.community"), " / ".join(str(elder["community"]).split("/"))],
        [words("file.position"), f"{elder['lat']:.5f}, {elder['lon']:.5f}"],
    ]


def _care_rows(elder: Mapping[str, Any]) -> list[list[object]]:
    level = elder.get("care_level")
    return [
        [words("record.flags"), "、".join(label("risk", f) for f in elder.get("risk_flags") or []) or "—"],
        [words("record.care_level"), words("record.care_level_value", n=level) if level is not None else "—"],
        [words("record.medical_notes"), elder.get("medical_notes") or "—"],
        [words("record.access"), elder.get("access") or "—"],
        [words("record.caregiver"), elder.get("caregiver_name") or "—"],
        [words("record.entitlement"), label("entitlement", elder.get("entitlement")) or "—"],
    ]


def _contact_rows(elder: Mapping[str, Any]) -> list[list[object]]:
    return [
        [
            f"{n}. {c['name']} {c.get('relation') or ''}",
            c["phone"] + (f"（{words('file.app')}）" if c.get("app") else ""),
        ]
        for n, c in enumerate(elder.get("contacts") or [], start=1)
    ]


def _device_rows(elder: Mapping[str, Any], zone: ZoneInfo) -> list[list[object]]:
    rows: list[list[object]] = []
    for device in elder.get("devices") or []:
        status = device.get("status") or {}
        seen = status.get("last_seen")
        battery = status.get("battery")
        rows.append([
            f"{label('protocol', device['protocol'])} {device['device_id']}",
            "　".join([
                words("record.last_seen", time=_when(seen, zone)) if seen else words("record.never_seen"),
                words("record.battery", n=battery) if battery is not None else words("record.battery_unknown"),
            ]),
        ])  # fmt: skip
    return rows


def _voucher_words(elder: Mapping[str, Any]) -> str:
    vouchers = elder.get("vouchers") or {}
    current = vouchers.get("current") or {}
    if not current:
        return "—"
    return words("file.balance", month=vouchers.get("month", ""), yuan=f"{current.get('available_fen', 0) / 100:.2f}",
                 allotted=f"{current.get('allotted_fen', 0) / 100:.2f}")  # fmt: skip


def _assessment_row(assessment: Mapping[str, Any], zone: ZoneInfo) -> list[object]:
    grades = "　".join(
        f"{words('file.grades.' + k)} {label('assess.grade', v)}" for k, v in (assessment.get("grades") or {}).items()
    )
    level = words("file.assessment_level", level=label("assess.level", assessment.get("level")))
    who = words("file.assessor", name=actor_words(assessment.get("assessor"), assessment.get("assessor_name")))
    text = "\n".join(x for x in (level, grades, label("assess.why", assessment.get("reason")), who) if x)
    return [_when(assessment["ts"], zone), text]


def _health_words(file: Mapping[str, Any]) -> str:
    health = file.get("health")
    if health is None:
        return words("file.health_hidden")
    if not health:
        return words("file.no_health")
    parts = []
    for key, series in health.items():
        values = [p[1] for p in series["points"]]
        parts.append(f"{words('file.reading.' + key)}：{min(values)}–{max(values)} {series['unit']}（{len(values)}）")
    return "\n".join(parts)
