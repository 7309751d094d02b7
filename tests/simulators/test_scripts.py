"""Callers' scripts and the operator's judgement, without a server: what callers say, and what an operator
makes of a caregiver's "done"."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from simulators.answering import decision, may_dispatch, needs_hospital
from simulators.caregivers import DONE_NOTES, HOSPITAL_NOTES, CaregiverSim
from simulators.scripts import KINDS, Switchboard, building_of, community_name, draw_script

ELDER = {
    "elder_id": "e00042", "name": "林秀英", "phone": "13505960042", "community": "龙文区/蓝田街道/蓝田社区",
    "address": "龙文区蓝田街道蓝田社区12号楼3单元502室", "lat": 24.508, "lon": 117.696,
}  # fmt: skip


def test_most_calls_to_an_elderly_hotline_are_not_emergencies() -> None:
    rng = random.Random(3)
    scripts = [draw_script(rng, ELDER, known=rng.random() < 0.75, emergency_share=0.25) for _ in range(2000)]
    kinds = Counter(s.kind for s in scripts)
    assert set(kinds) == set(KINDS)
    assert 0.2 < kinds["emergency"] / len(scripts) < 0.3
    for script in scripts:
        assert (script.alarm_type is not None) == script.emergency
        assert bool(script.text) == (script.kind != "silent"), "everyone says something, but a silent line"
        assert (script.elder_id is not None) == (script.known or script.emergency), "whom it is about"
    assert {s.alarm_type for s in scripts if s.emergency} >= {"fall", "medical", "call"}


def test_an_unknown_caller_says_whom_and_where() -> None:
    rng = random.Random(5)
    strangers = [draw_script(rng, ELDER, known=False, emergency_share=1.0) for _ in range(200)]
    assert all(s.emergency and not s.known and s.elder_id == "e00042" for s in strangers)
    assert all(s.where and s.where[-1] == "蓝田社区" for s in strangers), "the community, at least"
    family = [s for s in strangers if s.name is not None]
    passers_by = [s for s in strangers if s.name is None]
    assert family and passers_by
    assert all(s.name == "林秀英" and s.where[0] == ELDER["address"] and "林秀英" in s.text for s in family)
    assert all(s.where[0] == "蓝田社区12号楼" and s.text.startswith("蓝田社区12号楼") for s in passers_by)
    assert building_of(str(ELDER["address"])) == "龙文区蓝田街道蓝田社区12号楼" and community_name(ELDER) == "蓝田社区"


def test_the_same_seed_writes_the_same_scripts() -> None:
    def scripts(seed: int) -> list[Any]:
        rng = random.Random(seed)
        return [draw_script(rng, ELDER, known=i % 3 > 0, emergency_share=0.3) for i in range(50)]

    assert scripts(8) == scripts(8) != scripts(9)


def test_the_switchboard_keeps_the_latest_cards() -> None:
    board = Switchboard(keep=3)
    rng = random.Random(1)
    for n in range(5):
        board.put(f"c{n}", draw_script(rng, ELDER, known=True, emergency_share=0.5))
    assert len(board) == 3 and board.card("c1") is None and board.card(None) is None
    card = board.card("c4")
    assert card is not None and card.classified is None and card.incident_id is None


def incident(**fields: Any) -> dict[str, Any]:
    base = {"incident_id": "INC-7", "state": "on_scene", "alarm_type": "fall", "proposal": None,
            "actions": ["escalate", "resolve", "dispatch", "locate", "note"]}  # fmt: skip
    return {**base, **fields}


def test_a_caregivers_hospital_note_goes_to_120_and_the_rest_are_resolved() -> None:
    assert all(needs_hospital(note) for note in HOSPITAL_NOTES)
    assert not any(needs_hospital(note) for note in DONE_NOTES)
    hospital = incident(proposal={"text": "疑似骨折，建议送医", "actor": "caregiver:c0003"})
    action, body = decision(hospital) or ("", {})
    assert action == "escalate" and body["service"] == "120" and "疑似骨折" in body["note"]
    fine = incident(proposal={"text": "已协助老人起身，无明显外伤"})
    assert decision(fine) == ("resolve", {"outcome": "护理员已上门处理：已协助老人起身，无明显外伤"})
    assert decision(incident()) is None, "no proposal: the caregiver is still there"
    assert decision(incident(state="escalated", proposal={"text": "疑似骨折，建议送医"})) is None
    assert decision(incident(proposal={"text": "x"}, actions=["note"])) is None


def test_nobody_on_scene_is_replaced() -> None:
    assert may_dispatch(incident(actions=["dispatch"]))
    assert not may_dispatch(incident(actions=["escalate", "resolve", "replace", "note"]))


def test_caregivers_propose_hospital_after_some_falls_only() -> None:
    phone = CaregiverSim("c1", "pw", "http://127.0.0.1:1", rng=random.Random(4), hospital_p=0.5)
    falls = Counter(needs_hospital(phone.done_note({"alarm_type": "fall"})) for _ in range(400))
    assert 150 < falls[True] < 250
    assert not any(needs_hospital(phone.done_note({"alarm_type": "sos"})) for _ in range(200))
