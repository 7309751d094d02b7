"""The period report's columns and words, shared by its XLSX (:mod:`console.reportxlsx`) and its PDF
(:mod:`console.reportpdf`); the page (static/reports.js) names the same catalogue keys.

What it owns
    :data:`FIGURES`, the figures of a report (the FIGURES dict of ``GET /api/reports``) that a table shows, in
    order, each with its catalogue key and its kind (a count, a share, seconds, a mean); :func:`figure`, one of
    them read from a figures dict; :func:`say`, the words of a key in a language's catalogue (the pages' own,
    ``static/i18n/<language>.json``); and the words of the report's codes: areas, alarm types, sources, kinds
    of responder, the period and the reader's scope.

Rules
    1. Pure: dicts in, words out; a key the catalogue lacks is said as the key (a test finds it).
    2. A figure that is not there (None: nothing to measure) stays None; the writers leave its cell empty.

Never
    Never compute a figure here: the report core (``Views.period_report``) did.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

CATALOGUES = Path(__file__).parent / "static" / "i18n"
LANGUAGES = ("zh-CN", "en")
Kind = Literal["n", "share", "s", "mean"]

#: (path in the figures dict, catalogue key, kind): what the summary sheet lists and the area sheets show
FIGURES: tuple[tuple[tuple[str, ...], str, Kind], ...] = (
    (("alarms",), "report.f.alarms", "n"),
    (("technical",), "report.f.technical", "n"),
    (("answered",), "report.f.answered", "n"),
    (("answered_within_60s",), "report.f.answered_within_60s", "n"),
    (("answered_within_180s",), "report.f.answered_within_180s", "n"),
    (("share_within_60s",), "report.f.share_within_60s", "share"),
    (("share_within_180s",), "report.f.share_within_180s", "share"),
    (("answer_s", "median"), "report.f.answer_median", "s"),
    (("answer_s", "p90"), "report.f.answer_p90", "s"),
    (("answer_s", "max"), "report.f.answer_max", "s"),
    (("first_offer_s", "median"), "report.f.first_offer_median", "s"),
    (("accepted_s", "median"), "report.f.accepted_median", "s"),
    (("door_s", "median"), "report.f.door_median", "s"),
    (("door_s", "p90"), "report.f.door_p90", "s"),
    (("outcomes", "resolved"), "report.outcome.resolved", "n"),
    (("outcomes", "false_alarm"), "report.outcome.false_alarm", "n"),
    (("outcomes", "to_120"), "report.outcome.to_120", "n"),
    (("outcomes", "to_110"), "report.outcome.to_110", "n"),
    (("outcomes", "to_119"), "report.outcome.to_119", "n"),
    (("outcomes", "open"), "report.outcome.open", "n"),
    (("calls",), "report.f.calls", "n"),
    (("calls_answered",), "report.f.calls_answered", "n"),
    (("calls_within_60s",), "report.f.calls_within_60s", "n"),
    (("call_share_within_60s",), "report.f.call_share_within_60s", "share"),
    (("call_answer_s", "median"), "report.f.call_answer_median", "s"),
    (("calls_abandoned",), "report.f.calls_abandoned", "n"),
    (("calls_missed",), "report.f.calls_missed", "n"),
    (("calls_transferred",), "report.f.calls_transferred", "n"),
    (("calls_outbound",), "report.f.calls_outbound", "n"),
    (("services_ordered",), "report.f.services_ordered", "n"),
    (("services_delivered",), "report.f.services_delivered", "n"),
    (("services_cancelled",), "report.f.services_cancelled", "n"),
    (("services_no_show",), "report.f.services_no_show", "n"),
    (("follow_ups", "done"), "report.f.follow_ups", "n"),
    (("follow_ups", "reached"), "report.f.follow_ups_reached", "n"),
    (("follow_ups", "satisfaction_mean"), "report.f.satisfaction_mean", "mean"),
    (("follow_ups", "complaints"), "report.f.complaints", "n"),
)
#: the outcomes, in the order the charts stack them
OUTCOMES = ("resolved", "false_alarm", "to_120", "to_110", "to_119", "open")
#: the answer-time buckets' catalogue keys, as ``answer_buckets`` counts them
BUCKETS = tuple(f"report.bucket.{n}" for n in range(6))
#: the day sheet's columns: (key in a day's dict, catalogue key)
DAY_COLUMNS = (
    ("day", "report.day"),
    ("alarms", "report.f.alarms"),
    ("answered_within_60s", "report.f.answered_within_60s"),
    ("calls", "report.f.calls"),
)
#: the responder sheet's counts: (key, catalogue key)
RESPONDER_COUNTS = (
    ("offers", "report.r.offers"),
    ("accepted", "report.r.accepted"),
    ("declined", "report.r.declined"),
    ("expired", "report.r.expired"),
    ("done", "report.r.done"),
)


@cache
def catalogue(language: str) -> Mapping[str, str]:
    """A language's catalogue (one of :data:`LANGUAGES`; anything else is Chinese, the pages' default)."""
    name = language if language in LANGUAGES else LANGUAGES[0]
    loaded: dict[str, str] = json.loads((CATALOGUES / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def say(language: str, key: str, **params: object) -> str:
    """The words of ``key`` with its ``{params}`` filled (a None one left empty)."""
    text = catalogue(language).get(key, key)
    for name, value in params.items():
        text = text.replace("{" + name + "}", "" if value is None else str(value))
    return text


def figure(figures: Mapping[str, Any], path: Sequence[str]) -> Any:
    """One figure by its path (``("answer_s", "median")``); None when it is not there."""
    value: Any = figures
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def area_words(language: str, area: str) -> str:
    """An area path in words ("福田区 华富街道"); the incidents with no place as such."""
    return " ".join(area.split("/")) if area else say(language, "report.no_place")


def _coded(language: str, groups: Sequence[str], code: str) -> str:
    words = catalogue(language)
    return next((words[f"{group}.{code}"] for group in groups if f"{group}.{code}" in words), code)


def alarm_words(language: str, alarm_type: str) -> str:
    return _coded(language, ("alarm",), alarm_type)


def source_words(language: str, source: str) -> str:
    """A source as incidents name it: the pages' words for it, or its protocol's, else the code."""
    return _coded(language, ("source", "protocol"), source)


def kind_words(language: str, kind: str) -> str:
    return _coded(language, ("kind",), kind)


def title_words(language: str, period: Mapping[str, Any]) -> str:
    """The report's title: a month's is its monthly report (月报), any other span of days a report (报表)."""
    month = re.fullmatch(r"\d{4}-\d{2}", period["label"]) is not None
    return say(language, "report.pdf_title" if month else "report.pdf_title_span")


def period_words(language: str, period: Mapping[str, Any]) -> str:
    """The period as days: "2026-11-01 至 2026-11-30" (the end day is the last one in it, not the first out)."""
    last = date.fromisoformat(period["end_day"]) - timedelta(days=1)
    return say(language, "report.period_range", start=period["start_day"], end=last.isoformat())


def scope_words(language: str, scopes: Sequence[str]) -> str:
    """Where the reader may look, as the pages' scopeWords says it."""
    if "*" in scopes:
        return say(language, "scope.all")
    if not scopes:
        return say(language, "scope.none")
    return say(language, "list.and").join(area_words(language, path) for path in scopes)
