"""Triage: what an alarm type means, and how urgent this alarm is for this person.

The rule (documented in docs/triage.md and tested in tests/dispatch/test_triage.py):

1. Each alarm type has a base priority, 1 (most urgent) to 5, the skill a responder needs, whether it is
   dispatched to a responder at all, and whether a clinic with a green channel is proposed too.
2. A person-related alarm of base priority 2 or 3 is raised one level when the elder has at least one
   risk factor: living alone (独居), disabled (失能), aged 80 or more at the time of the alarm, or care
   level 3 or above from the needs assessment. Priority 1 cannot go higher; technical alarms (device
   trouble) are never raised: a flat battery is not more urgent because the owner is old.
3. The reasons are returned with the priority and shown to the operator.
4. Some technical alarms say more about a place than about a device: a power cut or a failed cell tower
   makes every device of a street report mains loss or fall silent at once. Those types (``grouped``, listed
   in :data:`GROUPED_TYPES`) join one incident per street while it is open (see
   :meth:`dispatch.engine.Engine.open_alarm`). Low battery, a removed watch or a tamper stay per device:
   they are about that device, and do not come in waves.
5. A call from a landline a household shares, nobody of them picked, is as urgent as it would be for the
   most at risk of them (:func:`household_priority`); the raise names whose risk it is
   ("raised one level for 李建国: aged 85"). The first of them wins a tie.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from dispatch.clock import utc
from dispatch.errors import InvalidInput
from dispatch.registry import Elder


@dataclass(frozen=True, slots=True)
class AlarmRule:
    priority: int
    skill: str | None
    dispatch: bool
    medical: bool = False
    technical: bool = False
    grouped: bool = False  # rule 4: one incident per street, not per device


ALARM_RULES: dict[str, AlarmRule] = {
    "fire": AlarmRule(1, "life_care", dispatch=True),
    "medical": AlarmRule(1, "nursing", dispatch=True, medical=True),
    "fall": AlarmRule(1, "nursing", dispatch=True, medical=True),
    "sos": AlarmRule(2, "life_care", dispatch=True),
    "call": AlarmRule(2, "life_care", dispatch=True),
    "inactivity": AlarmRule(2, "life_care", dispatch=True),
    "missed_checkin": AlarmRule(3, "life_care", dispatch=False, technical=True, grouped=True),
    "low_battery": AlarmRule(4, None, dispatch=False, technical=True),
    "mains_loss": AlarmRule(4, None, dispatch=False, technical=True, grouped=True),
    "watch_removed": AlarmRule(4, None, dispatch=False, technical=True),
    # someone speaking for a device without its key (a plain DC-09 frame for an encrypted account): a security
    # event a person looks into before the device's next alarm, not a visit
    "tamper": AlarmRule(3, None, dispatch=False, technical=True),
    "test": AlarmRule(5, None, dispatch=False, technical=True),
}

ALARM_TYPES = tuple(ALARM_RULES)
#: the technical alarms grouped by street (rule 4)
GROUPED_TYPES = frozenset(alarm_type for alarm_type, r in ALARM_RULES.items() if r.grouped)

#: the alarms that overtake everything else on the way in (dispatch.intake), whatever their source
URGENT_TYPES = frozenset({"sos", "fall", "medical", "fire"})

AGE_RISK = 80
CARE_LEVEL_RISK = 3


def rule(alarm_type: str) -> AlarmRule:
    try:
        return ALARM_RULES[alarm_type]
    except KeyError:
        raise InvalidInput(
            f"unknown alarm type {alarm_type!r}; one of {', '.join(ALARM_TYPES)}",
            field="alarm_type",
            code="unknown_alarm_type",
        ) from None


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def risk_factors(elder: Elder | None, now_ts: float) -> list[str]:
    if elder is None:
        return []
    factors: list[str] = []
    if "living_alone" in elder.risk_flags:
        factors.append("lives alone")
    if "disabled" in elder.risk_flags:
        factors.append("disabled")
    if elder.birth_date is not None:
        age = age_on(elder.birth_date, utc(now_ts).date())
        if age >= AGE_RISK:
            factors.append(f"aged {age}")
    if elder.care_level is not None and elder.care_level >= CARE_LEVEL_RISK:
        factors.append(f"care level {elder.care_level}")
    return factors


def priority(alarm_type: str, elder: Elder | None, now_ts: float, *, named: bool = False) -> tuple[int, list[str]]:
    """The alarm's priority (1 most urgent) and the reasons for it; ``named``: the raise says whose (rule 5)."""
    alarm = rule(alarm_type)
    reasons = [f"{alarm_type}: base priority {alarm.priority}"]
    if alarm.technical or alarm.priority not in (2, 3):
        return alarm.priority, reasons
    factors = risk_factors(elder, now_ts)
    if factors:
        whose = f" for {elder.name}" if named and elder is not None else ""
        reasons.append(f"raised one level{whose}: " + ", ".join(factors))
        return alarm.priority - 1, reasons
    return alarm.priority, reasons


def household_priority(alarm_type: str, household: Sequence[Elder], now_ts: float) -> tuple[int, list[str]]:
    """Rule 5: the priority of an alarm from a household's shared landline, none of them picked."""
    level, reasons = priority(alarm_type, None, now_ts)
    for elder in household:
        theirs, why = priority(alarm_type, elder, now_ts, named=True)
        if theirs < level:
            level, reasons = theirs, why
    return level, reasons
