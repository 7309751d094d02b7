"""The priority rule of docs/triage.md."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatch.errors import InvalidInput
from dispatch.triage import ALARM_RULES, priority
from tests.conftest import elder

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("alarm_type", "fields", "expected"),
    [
        ("sos", {"birth_date": "1960-01-01"}, 2),  # 66, no risk factor
        ("sos", {"birth_date": "1946-11-26"}, 1),  # 80 today
        ("sos", {"birth_date": "1946-11-27"}, 2),  # 80 tomorrow: not yet
        ("sos", {"risk_flags": ["living_alone"], "birth_date": None}, 1),
        ("sos", {"risk_flags": ["disabled"], "birth_date": None}, 1),
        ("sos", {"risk_flags": ["empty_nest", "low_income"], "birth_date": None}, 2),  # not in the rule
        ("sos", {"care_level": 3, "birth_date": None}, 1),
        ("sos", {"care_level": 2, "birth_date": None}, 2),
        ("fall", {"risk_flags": ["living_alone"]}, 1),  # already the top
        ("missed_checkin", {"risk_flags": ["living_alone"]}, 3),  # technical: never raised
        ("low_battery", {"birth_date": "1930-01-01"}, 4),
        ("call", {"risk_flags": ["living_alone"]}, 1),
        ("inactivity", {"birth_date": "1960-01-01"}, 2),
    ],
)
def test_priority_rule(alarm_type: str, fields: dict[str, object], expected: int) -> None:
    level, reasons = priority(alarm_type, elder("e1", **fields), NOW)
    assert level == expected
    assert reasons[0].startswith(alarm_type)
    assert (len(reasons) == 2) == (expected < ALARM_RULES[alarm_type].priority)


def test_unknown_caller_and_unknown_type() -> None:
    assert priority("call", None, NOW) == (2, ["call: base priority 2"])
    with pytest.raises(InvalidInput) as refused:
        priority("meteor", None, NOW)
    assert refused.value.field == "alarm_type"
