"""Typed journal entries: one class per kind, checked by mypy, encoded and decoded at the journal's edge only."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.entries import (
    FACTS,
    AssignmentStatus,
    DeviceSaved,
    ElderSaved,
    Fact,
    IncidentOpened,
    ProposedClinic,
    Ranked,
    RankedResponder,
    Unrecognised,
    decode,
    encode,
    fact,
)

ROOT = Path(__file__).parents[2]

WRONG = """
from dispatch.entries import IncidentOpened, Resolved, Note
from dispatch.journal import Entry
from dispatch.state import Projection

opened = IncidentOpened(
    incident_idd="INC-1", alarm_type="sos", source="api", priority=2, priority_reasons=(),
    location="home", answer_deadline=0.0,
)
print(opened.incident_idd)
IncidentOpened("INC-1", "sos", "api", 2, (), "on the moon", 0.0)

def on_resolved(entry: Entry, fact: Resolved) -> None:
    print(fact.outcome)

Projection(position_stale_s=1.0)._on(Note, on_resolved)
"""


def test_a_wrong_field_name_is_a_type_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mypy --strict catches a misspelt field where an entry is written and where it is read, a value outside
    its Literal, and a projection handler registered for the wrong kind."""
    api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "wrong_entries.py"
    snippet.write_text(WRONG, encoding="utf-8")
    monkeypatch.setenv("MYPYPATH", str(ROOT))
    out, _, status = api.run(
        [str(snippet), "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(ROOT / ".mypy_cache")]
    )
    assert status == 1, out
    assert 'Unexpected keyword argument "incident_idd" for "IncidentOpened"' in out
    assert '"IncidentOpened" has no attribute "incident_idd"' in out
    assert 'Argument 6 to "IncidentOpened" has incompatible type "Literal[\'on the moon\']"' in out
    assert 'Argument 2 to "_on" of "Projection" has incompatible type' in out


def test_every_kind_is_one_frozen_class_with_its_name() -> None:
    # + vouchers.allotted, vouchers.charged; the five follow_up.*; the three care_call.*; four plan.*; four duty.*;
    # cluster.leader; incident.device_restored; contact.notified; seven referral.*; offer.held; call.caller_picked;
    # assessment.recorded; keeping the registry (dispatch.keeping): registry.elder_deactivated,
    # registry.elder_reactivated, registry.device_unbound and the three device.test_*; registry.elders_merged; the
    # PBX's call.queued, call.transferred and click-to-call's call.dialed
    assert len(FACTS) == 51 + 2 + 5 + 3 + 4 + 4 + 1 + 1 + 1 + 7 + 1 + 1 + 1 + 6 + 1 + 3
    for kind, cls in FACTS.items():
        assert kind == cls.KIND and cls.VERSION >= 1
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen and hasattr(cls, "__slots__")


def test_a_kind_is_never_registered_twice() -> None:
    with pytest.raises(ValueError, match="registered twice"):

        @fact("incident.opened")
        class Again(Fact):
            pass


def test_nested_facts_round_trip() -> None:
    ranked = Ranked(
        candidates=(RankedResponder("c1", "李", 120, 150, "walk", True, ("own caregiver (五定)",)),),
        clinic=ProposedClinic("k1", "卫生站", 900, 300, ("green channel (绿色通道)",)),
        skill="nursing",
        radius_m=5000.0,
        excluded=("c0",),
    )
    assert decode("incident.ranked", 1, encode(ranked)) == ranked
    assert '"李"' in encode(ranked)  # stored as UTF-8 text, not escaped


def test_unknown_kinds_newer_versions_and_bad_bodies_are_kept_unread() -> None:
    assert decode("future.kind", 1, '{"x":1}') == Unrecognised("future.kind", 1, '{"x":1}')
    assert decode("incident.note", 9, '{"text":"x"}') == Unrecognised("incident.note", 9, '{"text":"x"}')
    bad = decode("assignment.status", 1, '{"assignment_id":"A-1","responder_id":"c","status":"asleep"}')
    assert isinstance(bad, Unrecognised) and bad.error is not None


def test_bodies_from_before_a_field_existed_still_decode() -> None:
    """Release 0.1 left ``technical`` out of some bodies and had no ``fields`` on registry entries."""
    opened = decode(
        "incident.opened",
        1,
        '{"incident_id":"INC-1","alarm_type":"sos","source":"api","priority":2,'
        '"priority_reasons":["sos: base priority 2"],"location":"home","answer_deadline":5}',
    )
    assert isinstance(opened, IncidentOpened) and opened.technical is False and opened.answer_deadline == 5.0
    assert decode("registry.elder", 1, '{"elder_id":"e1","changed":true}') == FACTS["registry.elder"]("e1", True)
    # and none of the old and new values a registry entry keeps since issue 16 (dispatch.keeping rule 1)
    saved = decode("registry.device", 1, '{"device_id":"d1","changed":true,"fields":["checkin_s"]}')
    assert isinstance(saved, DeviceSaved) and saved.old == {} and saved.new == {}
    opened = decode("incident.opened", 1, encode(IncidentOpened("INC-1", "sos", "device", 2, (), "home", 5.0)))
    assert isinstance(opened, IncidentOpened) and opened.test is False


def test_registry_entries_round_trip_their_old_and_new_values() -> None:
    saved = ElderSaved("e1", True, ("phone", "care_level"), {"phone": None, "care_level": 2},
                       {"phone": "13800000000", "care_level": 3})  # fmt: skip
    assert decode(saved.KIND, saved.VERSION, encode(saved)) == saved


@given(st.text(max_size=200), st.sampled_from(["en_route", "on_scene", "done"]))
def test_any_text_round_trips(note: str, status: str) -> None:
    body = AssignmentStatus("A-1", "c1", status, note)  # type: ignore[arg-type]
    assert decode(body.KIND, body.VERSION, encode(body)) == body


def test_a_merge_round_trips_with_its_old_values() -> None:
    merged = FACTS["registry.elders_merged"](
        "e1", "e2", devices=("8800000002",), contacts=("13800000002",), filled=("birth_date",),
        old={"birth_date": None, "contacts": [{"name": "李明", "phone": "13800000001", "relation": "儿子"}]},
        reason="merged into e1",
    )  # fmt: skip
    assert decode("registry.elders_merged", 1, encode(merged)) == merged
