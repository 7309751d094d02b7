"""The needs assessment: the elder ability assessment of MZ/T 039-2013 (老年人能力评估), scored.

What it owns
    The assessment form: its items, the scores each item allows, the four first-level domains and their grades,
    the preliminary ability level from the four grades (the standard's result card), the changes the standard
    makes to it, the care level an assessment sets, and when the next assessment falls due. Also the record of
    every assessment as the journal left it (:class:`AssessmentBook`, held by the projection). Sans-I/O: the
    engine journals an assessment (``assessment.recorded``) and sets the elder's care level from it.

Rules
    1. Daily living activities (日常生活活动, the Barthel items of B.1): ten items, each scored as its table allows
       (:data:`ITEMS`), summed to 0-100. Grade 0 at 100, 1 at 65-95, 2 at 45-60, 3 at 40 or less.
    2. Mental state (精神状态, B.2): cognition, aggression, depression, each 0-2, summed. Grade 0 at 0, 1 at 1,
       2 at 2-3, 3 at 4-6.
    3. Sensory perception and communication (感知觉与沟通, B.3): consciousness 0-3, vision 0-4, hearing 0-4,
       communication 0-3. Grade 3: drowsy or awake with vision or hearing 4 or communication 3; or stupor or coma.
       Grade 2: awake with vision or hearing 3 or communication 2; or drowsy (anything less). Grade 1: awake with
       vision or hearing 2 or communication 1. Grade 0: awake, vision and hearing 0-1, communication 0.
    4. Social participation (社会参与, B.4): five items, each 0-4, summed. Grade 0 at 0-2, 1 at 3-7, 2 at 8-13,
       3 at 14-20.
    5. The preliminary ability level (0 能力完好, 1 轻度失能, 2 中度失能, 3 重度失能) from the grades (A daily
       living, and the other three), read from the most severe down:
       3 when A is 3; or all four are 2; or A is 2 and another is 3.
       2 when A is 2; or A is 1 and the other three are all 2 or one of them is 3.
       1 when A is 1; or A is 0 and mental state or sensory grade is 1 or more, or social participation 2 or more.
       0 otherwise (all 0, social participation 0 or 1).
       The standard's sentences overlap (A 1 with one grade 3 and one 0 fits both "mild" and "moderate") and leave
       gaps (A 2 with the other three 0; A 0 with social participation 3). Reading from the most severe settles
       the overlaps on the more severe level; the gaps fall to the level of A's own grade, or to "mild" for a
       social grade above 2, never lower than a neighbouring case that is less impaired (tested: raising any
       grade never lowers the level).
    6. Changes to the level (the standard's C.3): in a coma, the level is 3 whatever else; a diagnosed cognitive
       impairment or dementia or a psychiatric disorder, or two or more falls, chokings, suicide attempts or
       wanderings in the last 30 days, raise the level by one (once, whichever holds); level 3 is not raised.
       Cognition scored 2 means a diagnosis ("已确诊为认知障碍"), so it counts as one.
    7. The care level an assessment sets is its final ability level (0-3). Triage reads the care level
       (dispatch.triage: 3, severe disability, raises an alarm's priority one level).
    8. Due: the next assessment falls due ``reassess_after_days`` after the last (a setting, a year by default),
       and at once after a fall the centre attended (a fall incident resolved, not a false alarm) or a hospital
       stay (a clinic referral ended "admitted"), when those came after the last assessment. An elder never
       assessed is due for a first one.

Never
    Never read a clock or a database here; never change a level except by journaling a new assessment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from dispatch.entries import AssessmentRecorded
from dispatch.errors import InvalidInput
from dispatch.journal import Entry

Domain = Literal["adl", "mental", "sensory", "social"]
DOMAINS: tuple[Domain, ...] = get_args(Domain)
Reason = Literal["initial", "routine", "after_fall", "after_hospital", "change", "review"]
#: what calls for an assessment at once (rule 8)
Happening = Literal["after_fall", "after_hospital"]
REASONS: tuple[Reason, ...] = get_args(Reason)
STANDARD = "MZ/T 039-2013"

#: each item of the form: its domain and the scores it allows (B.1-B.4 of the standard), in the form's order
ITEMS: dict[str, tuple[Domain, tuple[int, ...]]] = {
    # B.1 daily living activities (Barthel)
    "eating": ("adl", (10, 5, 0)),
    "bathing": ("adl", (5, 0)),
    "grooming": ("adl", (5, 0)),
    "dressing": ("adl", (10, 5, 0)),
    "bowels": ("adl", (10, 5, 0)),
    "bladder": ("adl", (10, 5, 0)),
    "toilet": ("adl", (10, 5, 0)),
    "transfer": ("adl", (15, 10, 5, 0)),
    "walking": ("adl", (15, 10, 5, 0)),
    "stairs": ("adl", (10, 5, 0)),
    # B.2 mental state
    "cognition": ("mental", (0, 1, 2)),
    "aggression": ("mental", (0, 1, 2)),
    "depression": ("mental", (0, 1, 2)),
    # B.3 sensory perception and communication
    "consciousness": ("sensory", (0, 1, 2, 3)),
    "vision": ("sensory", (0, 1, 2, 3, 4)),
    "hearing": ("sensory", (0, 1, 2, 3, 4)),
    "communication": ("sensory", (0, 1, 2, 3)),
    # B.4 social participation
    "living": ("social", (0, 1, 2, 3, 4)),
    "work": ("social", (0, 1, 2, 3, 4)),
    "orientation": ("social", (0, 1, 2, 3, 4)),
    "people": ("social", (0, 1, 2, 3, 4)),
    "social": ("social", (0, 1, 2, 3, 4)),
}

#: consciousness scores (B.3.1)
AWAKE, DROWSY, STUPOR, COMA = 0, 1, 2, 3

#: the major diseases the living-situation part of the form records (the care policies name them)
Disease = Literal[
    "hypertension", "diabetes", "heart", "stroke", "copd", "cancer", "dementia", "parkinson", "fracture", "psychiatric",
]  # fmt: skip
DISEASES: tuple[Disease, ...] = get_args(Disease)

#: the standard's names of the levels (for documents; the pages translate the level number)
LEVEL_NAMES = ("能力完好", "轻度失能", "中度失能", "重度失能")


@dataclass(frozen=True, slots=True)
class Flags:
    """What the standard's changes (rule 6) read besides the items."""

    diagnosis: bool = False  # a diagnosed cognitive impairment / dementia or psychiatric disorder
    risk_events: int = 0  # falls, chokings, suicide attempts, wanderings in the last 30 days


NO_FLAGS = Flags()


@dataclass(frozen=True, slots=True)
class Result:
    totals: dict[Domain, int]
    grades: dict[Domain, int]
    preliminary: int
    level: int
    changes: tuple[str, ...]  # which of rule 6's changes applied: "coma", "diagnosis", "risk_events"

    @property
    def care_level(self) -> int:
        return self.level


def check_answers(answers: Mapping[str, int]) -> dict[str, int]:
    """Every item answered with a score its table allows, nothing else; raises InvalidInput naming the item."""
    unknown = sorted(set(answers) - set(ITEMS))
    if unknown:
        raise InvalidInput(f"no item {unknown[0]} in the assessment form", field=unknown[0],
                           code="assessment_item", params={"item": unknown[0]})  # fmt: skip
    checked: dict[str, int] = {}
    for item, (_, allowed) in ITEMS.items():
        score = answers.get(item)
        if score is None and item != "consciousness" and answers.get("consciousness") == COMA:
            continue  # the standard: in a coma, the items after consciousness need not be assessed
        if score is None:
            raise InvalidInput(f"{item} is not assessed yet", field=item, code="assessment_score",
                               params={"item": item})  # fmt: skip
        if isinstance(score, bool) or not isinstance(score, int) or score not in allowed:
            raise InvalidInput(f"{item} must be one of {', '.join(map(str, allowed))}", field=item,
                               code="assessment_score", params={"item": item})  # fmt: skip
        checked[item] = score
    return checked


def adl_grade(total: int) -> int:
    if total == 100:
        return 0
    if total >= 65:
        return 1
    if total >= 45:
        return 2
    return 3


def mental_grade(total: int) -> int:
    return 0 if total == 0 else 1 if total == 1 else 2 if total <= 3 else 3


def sensory_grade(consciousness: int, vision: int, hearing: int, communication: int) -> int:
    worst_sense = max(vision, hearing)
    if consciousness >= STUPOR or worst_sense == 4 or communication == 3:
        return 3
    if consciousness == DROWSY or worst_sense == 3 or communication == 2:
        return 2
    if worst_sense == 2 or communication == 1:
        return 1
    return 0


def social_grade(total: int) -> int:
    return 0 if total <= 2 else 1 if total <= 7 else 2 if total <= 13 else 3


def preliminary_level(adl: int, mental: int, sensory: int, social: int) -> int:
    """Rule 5: the result card, read from the most severe level down."""
    others = (mental, sensory, social)
    if adl == 3 or (adl == 2 and (3 in others or all(g == 2 for g in others))):
        return 3
    if adl == 2 or (adl == 1 and (3 in others or all(g == 2 for g in others))):
        return 2
    if adl == 1 or mental >= 1 or sensory >= 1 or social >= 2:
        return 1
    return 0


def score(answers: Mapping[str, int], flags: Flags = NO_FLAGS) -> Result:
    """Score a whole form (rules 1-6). ``answers`` must have passed :func:`check_answers`."""
    if answers.get("consciousness") == COMA:
        return Result({}, {"sensory": 3}, 3, 3, ("coma",))  # the other items need not be assessed
    totals: dict[Domain, int] = {domain: 0 for domain in DOMAINS}
    for item, value in answers.items():
        totals[ITEMS[item][0]] += value
    grades: dict[Domain, int] = {
        "adl": adl_grade(totals["adl"]),
        "mental": mental_grade(totals["mental"]),
        "sensory": sensory_grade(
            answers["consciousness"], answers["vision"], answers["hearing"], answers["communication"]
        ),
        "social": social_grade(totals["social"]),
    }
    first = preliminary_level(grades["adl"], grades["mental"], grades["sensory"], grades["social"])
    changes: list[str] = []
    if flags.diagnosis or answers["cognition"] == 2:
        changes.append("diagnosis")
    if flags.risk_events >= 2:
        changes.append("risk_events")
    level = min(3, first + 1) if changes and first < 3 else first
    if first == 3:
        changes = []
    return Result(totals, grades, first, level, tuple(changes))


# -- the record of assessments (folded from the journal) ----------------------------------------------------------


@dataclass(slots=True)
class Assessment:
    assessment_id: str
    elder_id: str
    ts: float
    assessor: str
    reason: str
    level: int
    preliminary: int
    grades: dict[str, int]
    answers: dict[str, int]
    changes: tuple[str, ...]
    lives_with: str | None
    diseases: tuple[str, ...]
    note: str


@dataclass(slots=True)
class AssessmentBook:
    """Every elder's assessments as the journal left them, and what happened since that calls for another."""

    #: each elder's assessments, oldest first
    by_elder: dict[str, list[Assessment]] = field(default_factory=dict)
    #: the latest event after which an elder is due again at once (rule 8): (ts, "after_fall" | "after_hospital")
    events: dict[str, tuple[float, Happening]] = field(default_factory=dict)

    def register(self, on: Callable[[type[Any], Callable[[Entry, Any], None]], None]) -> None:
        on(AssessmentRecorded, self.recorded)

    def recorded(self, entry: Entry, p: AssessmentRecorded) -> None:
        if entry.drill:
            return  # a drill's assessment is the drill's, never the elder's file
        line = Assessment(p.assessment_id, p.elder_id, entry.ts, entry.actor, p.reason, p.level, p.preliminary,
                          dict(p.grades), dict(p.answers), p.changes, p.lives_with, p.diseases, p.note)  # fmt: skip
        self.by_elder.setdefault(p.elder_id, []).append(line)

    def happened(self, elder_id: str, ts: float, why: Happening) -> None:
        """A fall the centre attended, or a hospital stay, of this elder (rule 8)."""
        self.events[elder_id] = (ts, why)

    def latest(self, elder_id: str) -> Assessment | None:
        history = self.by_elder.get(elder_id)
        return history[-1] if history else None

    def due(self, elder_id: str, reassess_after_s: float) -> tuple[float, Reason]:
        """When this elder's next assessment is due and why; ``(0, "initial")`` for one never assessed."""
        last = self.latest(elder_id)
        event = self.events.get(elder_id)
        if event is not None and (last is None or event[0] > last.ts):
            return event
        return (0.0, "initial") if last is None else (last.ts + reassess_after_s, "routine")


# -- views ---------------------------------------------------------------------------------------------------------


def assessment_view(line: Assessment, name_of: Callable[[str], str | None]) -> dict[str, Any]:
    return {
        "assessment_id": line.assessment_id,
        "ts": line.ts,
        "assessor": line.assessor,
        "assessor_name": name_of(line.assessor),
        "reason": line.reason,
        "level": line.level,
        "preliminary": line.preliminary,
        "grades": line.grades,
        "answers": line.answers,
        "changes": list(line.changes),
        "lives_with": line.lives_with,
        "diseases": list(line.diseases),
        "note": line.note,
    }


def due_view(due: tuple[float, Reason] | None, now: float) -> dict[str, Any] | None:
    if due is None:
        return None
    return {"due": due[0], "reason": due[1], "overdue": due[0] <= now}


def due_list(
    book: AssessmentBook,
    elders: Iterable[tuple[str, str, str, int | None]],
    *,
    reassess_after_s: float,
    until: float,
    limit: int,
) -> tuple[list[tuple[float, Reason, str, str, str, int | None]], int]:
    """The elders whose next assessment falls due by ``until``, soonest first (never assessed first of all), at
    most ``limit``, and how many in all. ``elders``: (id, name, community, care level) of the elders to consider."""
    found: list[tuple[float, Reason, str, str, str, int | None]] = []
    for elder_id, name, community, care_level in elders:
        due = book.due(elder_id, reassess_after_s)
        if due[0] <= until:
            found.append((due[0], due[1], elder_id, name, community, care_level))
    found.sort(key=lambda line: (line[0], line[2]))
    return found[:limit], len(found)
