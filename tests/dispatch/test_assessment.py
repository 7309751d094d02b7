"""The needs assessment (MZ/T 039-2013) scored: each domain's grade at the edges of the standard's tables, the
result card's sentences on worked cases, every combination of grades against the card read literally, the changes
of C.3, the form's checks; then in the core: an assessment journaled sets the care level and moves triage, and the
next one falls due a year on, or at once after a fall the centre attended or a hospital stay."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dispatch.assessment import (
    ITEMS,
    Flags,
    adl_grade,
    check_answers,
    mental_grade,
    preliminary_level,
    score,
    sensory_grade,
    social_grade,
)
from dispatch.clock import ManualClock
from dispatch.commands import AlarmRequest
from dispatch.core import Core, open_core
from dispatch.entries import AssessmentRecorded, ElderSaved
from dispatch.errors import InvalidInput, NotFound
from dispatch.scopes import ALL
from dispatch.triage import priority
from tests.conftest import elder, seed, settings_for

DAY = 86400.0

#: ALL able: every Barthel item at its best, no impairment anywhere
ABLE: dict[str, int] = {item: max(scores) if domain == "adl" else 0 for item, (domain, scores) in ITEMS.items()}


def form(**scores: int) -> dict[str, int]:
    return {**ABLE, **scores}


# -- the domains ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "grade"), [(100, 0), (95, 1), (65, 1), (60, 2), (45, 2), (40, 3), (0, 3)]
)  # fmt: skip
def test_daily_living_grades_at_the_edges_of_table_2(total: int, grade: int) -> None:
    assert adl_grade(total) == grade


def test_the_barthel_items_add_up_to_100_and_one_lost_bath_is_mild() -> None:
    assert score(ABLE).totals["adl"] == 100
    assert score(ABLE).grades["adl"] == 0
    bath = score(form(bathing=0))
    assert (bath.totals["adl"], bath.grades["adl"]) == (95, 1)
    # a worked case: eats and grooms alone, needs help to dress, walk, transfer and climb, continent
    case = score(form(dressing=5, transfer=10, walking=10, stairs=5, bathing=0, toilet=5))
    assert case.totals["adl"] == 10 + 0 + 5 + 5 + 10 + 10 + 5 + 10 + 10 + 5 == 70
    assert case.grades["adl"] == 1


@pytest.mark.parametrize(("total", "grade"), [(0, 0), (1, 1), (2, 2), (3, 2), (4, 3), (6, 3)])
def test_mental_state_grades_follow_table_3(total: int, grade: int) -> None:
    assert mental_grade(total) == grade


def test_mental_state_sums_its_three_items() -> None:
    result = score(form(cognition=1, aggression=1, depression=1))
    assert (result.totals["mental"], result.grades["mental"]) == (3, 2)


@pytest.mark.parametrize(
    ("consciousness", "vision", "hearing", "communication", "grade"),
    [
        (0, 0, 0, 0, 0), (0, 1, 1, 0, 0),  # awake, sees large print, hears at 2 m: intact
        (0, 2, 0, 0, 1), (0, 0, 2, 0, 1), (0, 1, 1, 1, 1),  # one sense at 2, or communication 1
        (0, 3, 0, 0, 2), (0, 0, 3, 1, 2), (0, 0, 0, 2, 2),  # a sense at 3, or communication 2
        (1, 0, 0, 0, 2), (1, 3, 3, 2, 2),  # drowsy, senses at most 3, communication at most 2
        (0, 4, 0, 0, 3), (1, 0, 4, 0, 3), (0, 0, 0, 3, 3), (1, 0, 0, 3, 3),  # blind, deaf or no communication
        (2, 0, 0, 0, 3), (3, 0, 0, 0, 3),  # stupor, coma
    ],
)  # fmt: skip
def test_sensory_grades_follow_table_4(
    consciousness: int, vision: int, hearing: int, communication: int, grade: int
) -> None:
    assert sensory_grade(consciousness, vision, hearing, communication) == grade


@pytest.mark.parametrize(("total", "grade"), [(0, 0), (2, 0), (3, 1), (7, 1), (8, 2), (13, 2), (14, 3), (20, 3)])
def test_social_participation_grades_follow_table_5(total: int, grade: int) -> None:
    assert social_grade(total) == grade


# -- the result card ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grades", "level"),
    [
        # 0 能力完好: daily living, mental state, senses 0; social participation 0 or 1
        ((0, 0, 0, 0), 0), ((0, 0, 0, 1), 0),
        # 1 轻度失能: daily living 0 but mental state or senses 1 or more, or social participation 2;
        # or daily living 1 with one of the other three at 0 or 1
        ((0, 1, 0, 0), 1), ((0, 0, 2, 0), 1), ((0, 0, 0, 2), 1), ((1, 0, 0, 0), 1), ((1, 2, 2, 1), 1),
        # 2 中度失能: daily living 1 and the other three all 2, or one of them 3;
        # or daily living 2 with one or two of the other three at 1 or 2
        ((1, 2, 2, 2), 2), ((1, 3, 0, 0), 2), ((2, 1, 0, 0), 2), ((2, 2, 1, 0), 2),
        # 3 重度失能: daily living 3; or all four 2; or daily living 2 and one of the other three 3
        ((3, 0, 0, 0), 3), ((2, 2, 2, 2), 3), ((2, 0, 0, 3), 3), ((2, 3, 1, 0), 3),
    ],
)  # fmt: skip
def test_the_result_card_on_its_own_sentences(grades: tuple[int, int, int, int], level: int) -> None:
    assert preliminary_level(*grades) == level


def card(adl: int, mental: int, sensory: int, social: int) -> set[int]:
    """The levels whose sentence in the standard holds for these grades, read literally (overlaps and gaps kept)."""
    others = (mental, sensory, social)
    levels = set()
    if adl == 0 and mental == 0 and sensory == 0 and social in (0, 1):
        levels.add(0)
    if (adl == 0 and (mental >= 1 or sensory >= 1 or social == 2)) or (adl == 1 and any(g <= 1 for g in others)):
        levels.add(1)
    if (adl == 1 and (all(g == 2 for g in others) or 3 in others)) or (
        adl == 2 and 1 <= sum(1 for g in others if g in (1, 2)) <= 2
    ):
        levels.add(2)
    if adl == 3 or (adl == 2 and all(g == 2 for g in others)) or (adl == 2 and 3 in others):
        levels.add(3)
    return levels


def test_every_combination_of_grades_against_the_card() -> None:
    """Where the card's sentences name one level, that level; where they overlap, the most severe; where they
    name none (a gap), the level of daily living's own grade, or mild for an able elder whose social
    participation is 3 -- and raising any grade never lowers the level."""
    gaps = []
    for grades in itertools.product(range(4), repeat=4):
        level = preliminary_level(*grades)
        named = card(*grades)
        if named:
            assert level == max(named), grades
        else:
            gaps.append(grades)
            assert level == (1 if grades[0] == 0 else grades[0]), grades
        for i in range(4):
            if grades[i] < 3:
                higher = (*grades[:i], grades[i] + 1, *grades[i + 1 :])
                assert preliminary_level(*higher) >= level, (grades, higher)
    # the gaps are the cases the standard's sentences leave out: daily living 2 with the others all 0 or with
    # all three at 1 or 2 (one not 2), and the able elder whose social participation alone is 3
    assert (2, 0, 0, 0) in gaps and (0, 0, 0, 3) in gaps and (2, 1, 1, 1) in gaps
    assert all(g[0] == 2 or g == (0, 0, 0, 3) for g in gaps)


# -- the changes of C.3 -------------------------------------------------------------------------------------


def test_a_coma_is_severe_whatever_else_and_needs_no_other_item() -> None:
    result = score(check_answers({"consciousness": 3}))
    assert (result.level, result.changes) == (3, ("coma",))


def test_a_diagnosis_or_two_risk_events_raise_the_level_once() -> None:
    mild = form(bathing=0)  # daily living 95: mild
    assert score(mild).level == 1
    assert score(mild, Flags(diagnosis=True)).level == 2
    assert score(mild, Flags(risk_events=2)).level == 2
    assert score(mild, Flags(risk_events=1)).level == 1
    both = score(mild, Flags(diagnosis=True, risk_events=3))
    assert (both.preliminary, both.level, both.changes) == (1, 2, ("diagnosis", "risk_events"))


def test_cognition_scored_2_is_a_diagnosis() -> None:
    result = score(form(cognition=2))  # mental state 2: moderate impairment; daily living intact: mild
    assert (result.grades["mental"], result.preliminary, result.level, result.changes) == (2, 1, 2, ("diagnosis",))


def test_severe_is_not_raised() -> None:
    severe = form(eating=0, dressing=0, bowels=0, bladder=0, toilet=0, transfer=0, walking=0)
    result = score(severe, Flags(diagnosis=True, risk_events=5))
    assert (result.grades["adl"], result.level, result.changes) == (3, 3, ())


# -- the form's checks --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "code", "item"),
    [
        ({k: v for k, v in ABLE.items() if k != "stairs"}, "assessment_score", "stairs"),
        (form(transfer=12), "assessment_score", "transfer"),
        (form(bathing=10), "assessment_score", "bathing"),
        (form(vision=5), "assessment_score", "vision"),
        ({**ABLE, "eating": True}, "assessment_score", "eating"),
        ({**ABLE, "mood": 1}, "assessment_item", "mood"),
    ],
)  # fmt: skip
def test_a_bad_form_is_refused_naming_the_item(answers: dict[str, int], code: str, item: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_answers(answers)
    assert (refused.value.code, refused.value.field) == (code, item)


# -- in the core ---------------------------------------------------------------------------------------------------

MODERATE = form(bathing=0, dressing=5, toilet=5, transfer=5, walking=5, stairs=0, vision=2)  # 55: moderate


@pytest.fixture
async def core(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Core]:
    clock.set(1_780_000_000.0)
    settings = settings_for(tmp_path / "data")
    await seed(
        settings,
        elders=[elder("e1", name="王秀英", birth_date="1950-05-01"), elder("e2", name="李桂兰", phone="13505960002")],
    )
    opened = await open_core(settings, clock)
    opened.intake.start()
    yield opened
    await opened.close()


async def test_an_assessment_sets_the_care_level_and_moves_triage(core: Core, clock: ManualClock) -> None:
    before = core.views.elder_in_reach("e1", ALL)
    assert priority("sos", before, clock.now())[0] == 2
    made = await core.engine.assess("e1", form(transfer=0, walking=0, stairs=0, bathing=0, toilet=0, eating=5),
                                    actor="assessor1", reason="initial", lives_with="alone")  # fmt: skip
    assert (made["grades"]["adl"], made["level"], made["care_level"]) == (3, 3, 3)
    after = core.views.elder_in_reach("e1", ALL)
    assert (after.care_level, after.lives_with, after.risk_flags) == (3, "alone", ["living_alone"])
    assert priority("sos", after, clock.now())[0] == 1
    entries = await core.journal.read(0, 10_000)
    recorded = [e for e in entries if isinstance(e.fact, AssessmentRecorded)]
    assert len(recorded) == 1 and recorded[0].actor == "assessor1" and recorded[0].fact.standard == "MZ/T 039-2013"
    saved = [e.fact for e in entries if isinstance(e.fact, ElderSaved) and e.fact.elder_id == "e1"]
    assert saved and {"care_level", "lives_with", "risk_flags"} <= set(saved[-1].fields)
    view = core.views.assessments("e1", ALL)
    assert view["care_level"] == 3 and view["assessments"][0]["assessor"] == "assessor1"


async def test_the_same_assessment_again_changes_no_record(core: Core) -> None:
    await core.engine.assess("e1", MODERATE, actor="a", reason="initial")
    again = await core.engine.assess("e1", MODERATE, actor="a", reason="review")
    assert again["level"] == 2
    entries = await core.journal.read(0, 10_000)
    assert len([e for e in entries if isinstance(e.fact, AssessmentRecorded)]) == 2
    assert len([e for e in entries if isinstance(e.fact, ElderSaved) and e.fact.elder_id == "e1"]) == 1


async def test_a_refused_assessment_writes_nothing(core: Core) -> None:
    head = core.journal.head_seq
    with pytest.raises(InvalidInput):
        await core.engine.assess("e1", form(stairs=7), actor="a", reason="initial")
    with pytest.raises(InvalidInput):
        await core.engine.assess("e1", MODERATE, actor="a", reason="whim")
    with pytest.raises(InvalidInput):
        await core.engine.assess("e1", MODERATE, actor="a", reason="initial", diseases=["gout"])
    with pytest.raises(NotFound):
        await core.engine.assess("nobody", MODERATE, actor="a", reason="initial")
    assert core.journal.head_seq == head


async def test_due_a_year_on_and_at_once_after_a_fall_or_a_hospital_stay(core: Core, clock: ManualClock) -> None:
    due = core.views.assessments_due(ALL, within_days=0)
    assert [(d["elder_id"], d["reason"]) for d in due["due"]] == [("e1", "initial"), ("e2", "initial")]
    await core.engine.assess("e1", MODERATE, actor="a", reason="initial")
    assessed_at = clock.now()
    assert [d["elder_id"] for d in core.views.assessments_due(ALL, within_days=0)["due"]] == ["e2"]
    year = core.views.assessments("e1", ALL)["due"]
    assert (year["due"], year["reason"], year["overdue"]) == (assessed_at + 365 * DAY, "routine", False)
    assert [d["elder_id"] for d in core.views.assessments_due(ALL, within_days=366)["due"]] == ["e2", "e1"]

    # a fall the centre attended: due at once
    clock.advance(10 * DAY)
    opened = await core.intake.alarm(alarm_request("e1", "fall"))
    await core.engine.acknowledge(opened.incident_id, actor="op")
    await core.engine.resolve(opened.incident_id, "helped up, no injury", actor="op")
    fall = core.views.assessments("e1", ALL)["due"]
    assert (fall["reason"], fall["overdue"]) == ("after_fall", True)
    await core.engine.assess("e1", MODERATE, actor="a", reason="after_fall")
    assert core.views.assessments("e1", ALL)["due"]["reason"] == "routine"

    # a false alarm is no fall
    clock.advance(DAY)
    opened = await core.intake.alarm(alarm_request("e1", "fall"))
    await core.engine.cancel(opened.incident_id, "pressed by mistake", actor="op")
    assert core.views.assessments("e1", ALL)["due"]["reason"] == "routine"


def alarm_request(elder_id: str, alarm_type: str) -> AlarmRequest:
    return AlarmRequest(alarm_type=alarm_type, actor="op", source="api", elder_id=elder_id)


async def test_the_care_level_sets_the_disability_supplement(tmp_path: Path, clock: ManualClock) -> None:
    clock.set(1_780_000_000.0)
    settings = settings_for(tmp_path / "data", voucher_care_fen=[0, 2_000, 5_000, 10_000])
    await seed(settings, elders=[elder("e1", entitlement="low_cost", care_level=None)])
    core = await open_core(settings, clock)
    try:
        assert core.views.vouchers("e1", ALL)["current"]["allotted_fen"] == 15_000
        await core.engine.assess("e1", MODERATE, actor="a", reason="initial")
        assert core.views.vouchers("e1", ALL)["current"]["allotted_fen"] == 15_000 + 5_000
    finally:
        await core.close()
