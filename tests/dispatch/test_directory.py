"""The directory's phone indexes: a number reaches the set of active elders whose phone (or whose family contact's
phone) it is, kept right by every put (add, edit, move to another number, deactivation, the same record again).

The randomised test puts records in any order and checks the indexes against a recomputation from scratch, and
the households it finds against dispatch.identity's."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.directory import Directory
from dispatch.identity import Person, households
from dispatch.registry import Contact, Elder, normalise_phone
from tests.conftest import elder, responder

LANDLINE = "0596-2345678"
DAUGHTER = "13900000001"


def test_a_couple_on_one_landline_are_both_reached() -> None:
    directory = Directory()
    directory.put_elder(elder("e_wife", name="王秀英", phone=LANDLINE))
    directory.put_elder(elder("e_husband", name="李建国", phone="+86 0596 2345678"))  # the same number, written apart
    assert [e.elder_id for e in directory.household("05962345678")] == ["e_husband", "e_wife"]
    assert directory.elder_for_phone(LANDLINE) is not None  # one, for a caller that needs one: the first by id
    assert directory.elder_for_phone(LANDLINE).elder_id == "e_husband"  # type: ignore[union-attr]


def test_editing_one_of_the_household_keeps_the_other() -> None:
    directory = Directory()
    directory.put_elder(elder("e1", phone=LANDLINE))
    directory.put_elder(elder("e2", phone=LANDLINE))
    directory.put_elder(elder("e1", phone=LANDLINE, address="龙文区蓝田街道蓝田社区1号楼102室"))  # an edit, same phone
    assert [e.elder_id for e in directory.household(LANDLINE)] == ["e1", "e2"]
    directory.put_elder(elder("e1", phone="13505960077"))  # e1 moves to a mobile: e2 keeps the landline
    assert [e.elder_id for e in directory.household(LANDLINE)] == ["e2"]
    assert [e.elder_id for e in directory.household("13505960077")] == ["e1"]


def test_an_elder_no_longer_in_care_is_not_reached_by_phone() -> None:
    directory = Directory()
    contacts = [Contact(name="李梅", phone=DAUGHTER, relation="女儿")]
    directory.put_elder(elder("e1", phone=LANDLINE, contacts=contacts))
    directory.put_elder(elder("e2", phone=LANDLINE, contacts=contacts))
    directory.put_elder(elder("e1", phone=LANDLINE, contacts=contacts, active=False))
    assert [e.elder_id for e in directory.household(LANDLINE)] == ["e2"]
    assert [e.elder_id for e in directory.contact_elders(DAUGHTER)] == ["e2"]
    directory.put_elder(elder("e2", phone=LANDLINE, contacts=contacts, active=False))
    assert directory.household(LANDLINE) == [] and directory.elder_for_phone(LANDLINE) is None
    assert directory.contact_for_phone(DAUGHTER) is None
    assert "e1" in directory.elders  # the file is kept and readable
    directory.put_elder(elder("e1", phone=LANDLINE, contacts=contacts))  # back in care
    assert [e.elder_id for e in directory.household(LANDLINE)] == ["e1"]


def test_a_daughter_of_both_parents_reaches_both() -> None:
    directory = Directory()
    daughter = Contact(name="李梅", phone=DAUGHTER, relation="女儿")
    directory.put_elder(elder("e_mother", contacts=[daughter]))
    directory.put_elder(elder("e_father", phone="13505960002", contacts=[daughter]))
    assert [e.elder_id for e in directory.contact_elders(DAUGHTER)] == ["e_father", "e_mother"]


# -- randomised: any sequence of puts leaves the indexes as a recomputation from scratch ------------------------

PHONES = ("0596-2345678", "0596 2345679", "13505960001", "+86 135 0596 0001", "13900000001")
IDS = ("e1", "e2", "e3", "e4", "e5")

records = st.builds(
    lambda elder_id, phone, contacts, active: elder(
        elder_id, phone=phone, active=active,
        contacts=[Contact(name=f"联系人{i}", phone=p) for i, p in enumerate(contacts)],
    ),
    st.sampled_from(IDS),
    st.none() | st.sampled_from(PHONES),
    st.lists(st.sampled_from(PHONES), max_size=3),
    st.booleans(),
)  # fmt: skip


def recomputed(elders: dict[str, Elder]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    own: dict[str, set[str]] = defaultdict(set)
    contact: dict[str, set[str]] = defaultdict(set)
    for e in elders.values():
        if not e.active:
            continue
        if e.phone:
            own[normalise_phone(e.phone)].add(e.elder_id)
        for c in e.contacts:
            contact[normalise_phone(c.phone)].add(e.elder_id)
    return dict(own), dict(contact)


@settings(max_examples=300, deadline=None)
@given(st.lists(records, max_size=25))
def test_any_sequence_of_puts_keeps_the_phone_indexes_right(puts: list[Elder]) -> None:
    directory = Directory()
    for record in puts:
        directory.put_elder(record)
        own, contact = recomputed(directory.elders)
        assert directory.elders_by_phone == own
        assert directory.elders_by_contact_phone == contact
    own, contact = recomputed(directory.elders)
    for phone in PHONES:
        expected = sorted(own.get(normalise_phone(phone), ()))
        assert [e.elder_id for e in directory.household(phone)] == expected
        assert [e.elder_id for e in directory.contact_elders(phone)] == sorted(contact.get(normalise_phone(phone), ()))
    # the households the hotline offers are the ones identity hygiene finds among the elders still in care
    active = [Person(e.elder_id, e.name, phone=e.phone) for e in directory.elders.values() if e.active]
    shared = {phone: sorted(ids) for phone, ids in directory.elders_by_phone.items() if len(ids) > 1}
    assert shared == households(active)


def test_the_volunteers_on_call_follow_the_registry() -> None:
    """The circle's last ring asks the volunteers on call: the directory keeps them apart as they come and go, so
    an alarm nobody near can take does not walk every responder of the city."""
    directory = Directory()
    directory.put_responder(responder("v1", 24.51, 117.70, kind="volunteer", skills=["comfort"], on_call=True))
    directory.put_responder(responder("c1", 24.51, 117.70))
    assert set(directory.on_call) == {"v1"}
    directory.put_responder(responder("v1", 24.51, 117.70, kind="volunteer", skills=["comfort"], on_call=False))
    directory.put_responder(responder("c1", 24.51, 117.70, kind="volunteer", skills=["comfort"], on_call=True))
    assert set(directory.on_call) == {"c1"} and directory.on_call["c1"].kind == "volunteer"
