"""The one mapping table: every code maps to a known alarm type, and the docs are drawn from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.triage import ALARM_RULES
from gateway.codes import (
    CONTACT_ID,
    GT06_ALARMS,
    GT06_MODULAR_EVENTS,
    GT06_TERMINAL_BITS,
    SIA,
    WATCH_STATUS_BITS,
    CodeMeaning,
    contact_id,
    sia,
)
from gateway.registry import document

ALL: list[CodeMeaning] = [
    *CONTACT_ID.values(),
    *SIA.values(),
    *WATCH_STATUS_BITS.values(),
    *GT06_ALARMS.values(),
    *GT06_TERMINAL_BITS.values(),
    *GT06_MODULAR_EVENTS.values(),
]


def test_every_alarm_type_is_one_triage_knows() -> None:
    for meaning in ALL:
        assert meaning.kind in ("alarm", "restore", "checkin", "info")
        assert (meaning.alarm_type is None) == (meaning.kind in ("checkin", "info"))
        if meaning.alarm_type is not None:
            assert meaning.alarm_type in ALARM_RULES


@pytest.mark.parametrize(
    ("qualifier", "event", "expected"),
    [
        ("1", "101", ("alarm", "sos")),
        ("3", "101", ("restore", "sos")),
        ("1", "100", ("alarm", "medical")),
        ("1", "301", ("alarm", "mains_loss")),
        ("3", "301", ("restore", "mains_loss")),
        ("1", "602", ("checkin", None)),
        ("1", "661", ("info", None)),
        ("1", "999", ("info", None)),
    ],
)
def test_contact_id(qualifier: str, event: str, expected: tuple[str, str | None]) -> None:
    assert contact_id(qualifier, event)[:2] == expected


def test_sia() -> None:
    assert sia("MA")[:2] == ("alarm", "medical")
    assert sia("QA")[:2] == ("alarm", "sos")
    assert sia("RP")[:2] == ("checkin", None)
    assert sia("ZZ")[:2] == ("info", None)


def test_docs_are_drawn_from_the_tables() -> None:
    path = Path(__file__).parents[2] / "docs" / "device-codes.md"
    assert path.read_text(encoding="utf-8") == document(), "run: python -m gateway.registry > docs/device-codes.md"
