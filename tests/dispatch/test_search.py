"""ElderSearch: each way of matching, the ranking rules, updates, and agreement with a brute-force ranking."""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.importer import read_elders
from dispatch.registry import Elder, normalise_phone
from dispatch.search import TIERS, ElderSearch, Hit, Tier, name_pinyin
from simulators import city

COMMUNITY = "鼓楼区/华大街道/湖前社区"


def elder(
    elder_id: str,
    name: str,
    phone: str | None = None,
    address: str = "幸福路1号",
    contacts: Sequence[str] = (),
    **fields: object,
) -> Elder:
    return Elder.model_validate(
        {
            "elder_id": elder_id,
            "name": name,
            "phone": phone,
            "address": address,
            "lat": 26.08,
            "lon": 119.30,
            "community": COMMUNITY,
            "contacts": [{"name": "家属", "phone": number} for number in contacts],
            **fields,
        }
    )


@pytest.fixture
def index() -> ElderSearch:
    return ElderSearch.of(
        [
            elder("e1", "王秀英", "13505961234", "幸福路12号3栋2单元501", contacts=["13800001111"]),
            elder("e2", "王晓燕", "13905965678", "幸福路14号"),
            elder("e3", "王秀", "13505960000", "湖前路1号"),
            elder("e4", "曾国华", "+86 137 0596 4321", "湖前路2号", contacts=["13505961234"]),
            elder("e5", "李小王", "0591-87654321", "人民路8号"),
        ]
    )


def ids(hits: list[Hit]) -> list[str]:
    return [hit.elder_id for hit in hits]


# -- each way of matching ------------------------------------------------------------------------------------


def test_pinyin_initials_of_a_name() -> None:
    assert name_pinyin("王秀英") == (["wxy"], ["wangxiuying"])
    assert name_pinyin("吕桂兰") == (["lgl"], ["lvguilan"])
    assert name_pinyin("曾国华") == (["zgh", "cgh"], ["zengguohua", "cengguohua"])  # the surname reading first
    assert name_pinyin("Anna王") == (["annaw"], ["annawang"])
    assert name_pinyin("·") == ([], [])


def test_initials_find_the_name_in_any_case(index: ElderSearch) -> None:
    assert index.search("wxy") == [Hit("e2", 78, "initials"), Hit("e1", 78, "initials")]  # 王晓燕, 王秀英
    assert index.search("WXY") == index.search("wxy")
    assert ids(index.search("zgh")) == ids(index.search("cgh")) == ["e4"]


def test_initials_prefix_ranks_above_initials_substring(index: ElderSearch) -> None:
    # wx: a prefix of 王秀 (wx, exact), 王秀英 (wxy) and 王晓燕 (wxy); xw only inside 李小王 (lxw)
    assert index.search("wx") == [Hit("e3", 78, "initials"), Hit("e2", 75, "initials"), Hit("e1", 75, "initials")]
    assert index.search("xw") == [Hit("e5", 35, "initials")]


def test_full_pinyin_prefix(index: ElderSearch) -> None:
    assert index.search("wangxiu") == [Hit("e3", 70, "initials"), Hit("e1", 70, "initials")]
    assert index.search("wang xiu ying") == [Hit("e1", 70, "initials")]
    assert index.search("xiuying") == []  # syllables match from the start of the name only


def test_last_four_digits_of_the_phone(index: ElderSearch) -> None:
    assert index.search("1234") == [Hit("e1", 60, "phone"), Hit("e4", 55, "contact_phone")]
    assert index.search("4321") == [Hit("e4", 60, "phone"), Hit("e5", 60, "phone")]  # 曾 sorts before 李


def test_whole_phone_in_any_spelling(index: ElderSearch) -> None:
    for spelling in ("13705964321", "+86 137 0596 4321", "86-137-0596-4321", "１３７０５９６４３２１"):
        assert index.search(spelling)[0] == Hit("e4", 100, "phone"), spelling


def test_own_phone_outranks_a_contacts_phone(index: ElderSearch) -> None:
    assert index.search("13505961234") == [Hit("e1", 100, "phone"), Hit("e4", 90, "contact_phone")]


def test_contact_phone(index: ElderSearch) -> None:
    assert index.search("13800001111") == [Hit("e1", 90, "contact_phone")]
    assert index.search("1111") == [Hit("e1", 55, "contact_phone")]
    assert index.search("0000111") == [Hit("e1", 45, "contact_phone")]


def test_digits_anywhere_in_a_number(index: ElderSearch) -> None:
    assert index.search("0596") == [  # by name, by code point: 曾 before 王, 晓 before 秀
        Hit("e4", 50, "phone"),
        Hit("e2", 50, "phone"),
        Hit("e3", 50, "phone"),
        Hit("e1", 50, "phone"),
    ]
    assert index.search("876") == [Hit("e5", 50, "phone")]  # a landline's digits too
    assert index.search("12") == []  # fewer than three digits is no phone query (nor an id here)


def test_name_exact_then_prefix_then_substring(index: ElderSearch) -> None:
    assert index.search("王秀") == [Hit("e3", 85, "name"), Hit("e1", 80, "name")]
    assert index.search("王") == [
        Hit("e2", 80, "name"),
        Hit("e3", 80, "name"),
        Hit("e1", 80, "name"),
        Hit("e5", 40, "name"),
    ]
    assert index.search("秀英") == [Hit("e1", 40, "name")]


def test_address(index: ElderSearch) -> None:
    assert index.search("幸福路12号") == [Hit("e1", 30, "address")]
    assert index.search("幸福路") == [Hit("e2", 30, "address"), Hit("e1", 30, "address")]
    assert index.search("3栋2单元") == [Hit("e1", 25, "address")]
    assert index.search("幸福路 12 号") == index.search("幸福路12号")
    assert index.search("501") == []  # digits are not compared with addresses


def test_id_exact_and_prefix_case_insensitive(index: ElderSearch) -> None:
    assert index.search("e3") == [Hit("e3", 100, "id")]
    assert index.search("E3") == [Hit("e3", 100, "id")]
    big = ElderSearch.of([elder(f"E{n}", "张三") for n in (1, 10, 11, 2)])
    assert big.search("e1") == [Hit("E1", 100, "id"), Hit("E10", 65, "id"), Hit("E11", 65, "id")]


@pytest.mark.parametrize("q", ["", "   ", "w", "W", "1", "+", "\x00", "！"])
def test_empty_and_one_character_latin_queries_find_nothing(index: ElderSearch, q: str) -> None:
    assert index.search(q) == []


def test_one_chinese_character_is_a_query(index: ElderSearch) -> None:
    assert ids(index.search("曾")) == ["e4"]


def test_limit(index: ElderSearch) -> None:
    assert len(index.search("王", limit=2)) == 2
    assert index.search("王", limit=0) == []


def test_ties_by_name_then_id() -> None:
    index = ElderSearch.of([elder("b", "张三"), elder("c", "张丰"), elder("a", "张三")])
    assert ids(index.search("张")) == ["a", "b", "c"]  # 三 (U+4E09) sorts before 丰 (U+4E30)


# -- updates -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_pending", [0, 256])
def test_put_replaces_phone_and_name(max_pending: int) -> None:
    index = ElderSearch(max_pending=max_pending)
    index.put(elder("e1", "王秀英", "13505961234"))
    index.refresh()
    index.put(elder("e1", "李桂兰", "13905960001"))
    assert index.search("1234") == []
    assert index.search("wxy") == []
    assert index.search("0001") == [Hit("e1", 60, "phone")]
    assert index.search("lgl") == [Hit("e1", 78, "initials")]
    index.refresh()
    assert index.pending == 0
    assert index.search("0001") == [Hit("e1", 60, "phone")]
    assert index.search("1234") == []


@pytest.mark.parametrize("max_pending", [0, 256])
def test_remove(max_pending: int) -> None:
    index = ElderSearch(max_pending=max_pending)
    index.put(elder("e1", "王秀英", "13505961234"))
    index.put(elder("e2", "王秀兰", "13505965678"))
    index.refresh()
    index.remove("e1")
    index.remove("nobody")
    assert ids(index.search("王秀")) == ["e2"]
    assert len(index) == 1
    index.put(elder("e3", "王秀芳", "13505960000"))  # new since the build, found one by one
    assert ids(index.search("王秀")) == ["e2", "e3"]
    index.remove("e3")
    assert ids(index.search("王秀")) == ["e2"]


def test_put_changing_nothing_searchable_costs_nothing() -> None:
    index = ElderSearch.of([elder("e1", "王秀英", "13505961234")])
    index.put(elder("e1", "王秀英", "13505961234", medical_notes="高血压"))
    assert index.pending == 0
    index.put(elder("e1", "王秀英", "13505969999"))
    index.put(elder("e1", "王秀英", "13505961234"))  # changed back: the columns are right again
    assert index.pending == 0


def test_many_puts_rebuild_once_at_the_next_search() -> None:
    index = ElderSearch(max_pending=10)
    for n in range(50):
        index.put(elder(f"e{n}", "王秀英", f"135059{n:05d}"))
    assert index.pending == 50  # puts alone never rebuild
    assert len(index.search("王秀英", limit=100)) == 50
    assert index.pending == 0


def test_demo_city(tmp_path: Path) -> None:
    """The seeded demo city: every elder is the first hit for their phone, and among the hits for their name
    and for its initials."""
    elders, refused = read_elders(city.generate(tmp_path, seed=7, elders=400)["elders"])
    assert refused == []
    index = ElderSearch.of(elders)
    for person in elders:
        assert person.phone is not None
        assert index.search(person.phone)[0] == Hit(person.elder_id, 100, "phone")
        assert person.elder_id in ids(index.search(person.name, limit=400))
        assert person.elder_id in ids(index.search(name_pinyin(person.name)[0][0], limit=400))
        assert index.search(person.elder_id)[0] == Hit(person.elder_id, 100, "id")


# -- the index agrees with a brute-force ranking ----------------------------------------------------------------


class BruteForce:
    """The rules written out plainly, elder by elder: an oracle independent of the columns."""

    def __init__(self, elders: Sequence[Elder]) -> None:
        self.records = [(person, fields_of(person)) for person in elders]
        # every way of matching implies "is a substring of some value": a sound first test, for speed
        self.blobs = ["|".join(value for values in fields.values() for value in values) for _, fields in self.records]

    def search(self, q: str, limit: int = 20) -> list[Hit]:
        q = unicodedata.normalize("NFKC", q).replace("\x00", "").strip()
        if not q or (len(q) == 1 and q.isascii()):
            return []
        compact = "".join(q.split())
        parts: dict[str, str] = {}
        if not compact.isascii():
            parts["text"] = compact
        else:
            parts["id"] = compact.lower()
            if re.fullmatch(r"\+?[0-9][0-9 -]*", q):
                if len(normalise_phone(q)) >= 3:
                    parts["digits"] = normalise_phone(q)
            elif re.fullmatch(r"[A-Za-z][A-Za-z' ]*", q):
                letters = "".join(c for c in compact.lower() if c.isalpha())
                if len(letters) >= 2:
                    parts["letters"] = letters
        scored = []
        for (person, fields), blob in zip(self.records, self.blobs, strict=True):
            if not any(part in blob for part in parts.values()):
                continue
            tiers = (tier for tier in TIERS if tier.part in parts and matches(tier, fields, parts[tier.part]))
            best = next(tiers, None)
            if best is not None:
                scored.append((-best.score, fields["name"][0], person.elder_id, best))
        scored.sort(key=lambda row: row[:3])
        return [Hit(eid, tier.score, tier.matched) for _, _, eid, tier in scored[:limit]]


def fields_of(person: Elder) -> dict[str, list[str]]:
    name = "".join(unicodedata.normalize("NFKC", person.name).split())
    initials, full = name_pinyin(name)
    return {
        "id_key": [person.elder_id.lower()],
        "phone": [normalise_phone(person.phone)] if person.phone else [],
        "contacts": [normalise_phone(c.phone) for c in person.contacts],
        "name": [name],
        "initials": initials,
        "pinyin": full,
        "address": ["".join(unicodedata.normalize("NFKC", person.address).split())],
    }


def matches(tier: Tier, fields: dict[str, list[str]], q: str) -> bool:
    values = [value for value in fields[tier.field] if value]
    if tier.how == "exact":
        return q in values
    if tier.how == "prefix":
        return any(value.startswith(q) for value in values)
    if tier.how == "suffix":
        return any(value.endswith(q) for value in values)
    return any(q in value for value in values)


SURNAMES = "王李张刘陈曾单"
GIVEN = "秀英兰华国小"


def random_elder(rng: random.Random, n: int) -> Elder:
    """Few surnames and given characters and short phone blocks, so that many elders collide on each query."""
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(0, 2)))
    return elder(
        f"e{n}",
        name,
        rng.choice([None, f"1350596{rng.randrange(100):04d}", f"+86 139 {rng.randrange(10**8):08d}"]),
        f"{rng.choice('幸福人民')}路{rng.randint(1, 9)}号{rng.randint(1, 3)}栋{rng.randint(1, 2)}0{rng.randint(1, 2)}",
        contacts=[f"138{rng.randrange(100):08d}" for _ in range(rng.randint(0, 2))],
    )


def queries_for(rng: random.Random, elders: list[Elder]) -> list[str]:
    person = rng.choice(elders)
    phone = normalise_phone(person.phone or "13505960000")
    initials = name_pinyin(person.name)[0][0]
    return [
        person.name,
        person.name[:1],
        person.name[1:],
        initials,
        initials[1:],
        name_pinyin(person.name)[1][0][:5],
        phone,
        phone[-4:],
        phone[3:7],
        phone[-3:],
        person.address[:5],
        person.address[3:8],
        person.elder_id,
        person.elder_id[:2],
        "138" + phone[-2:],
    ]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), count=st.integers(1, 60), limit=st.integers(1, 8), max_pending=st.integers(0, 8))
def test_agrees_with_brute_force_through_updates(seed: int, count: int, limit: int, max_pending: int) -> None:
    rng = random.Random(seed)
    elders = {f"e{n}": random_elder(rng, n) for n in range(count)}
    index = ElderSearch(max_pending=max_pending)
    for person in elders.values():
        index.put(person)
    for step in range(12):
        if step % 3 == 0 and rng.random() < 0.5:
            index.refresh()
        roll = rng.random()
        if roll < 0.3 and elders:
            gone = rng.choice(sorted(elders))
            del elders[gone]
            index.remove(gone)
        elif roll < 0.8:
            n = rng.randrange(count + 5)
            elders[f"e{n}"] = random_elder(rng, n)
            index.put(elders[f"e{n}"])
        if elders:
            brute = BruteForce(list(elders.values()))
            for q in queries_for(rng, list(elders.values())):
                assert index.search(q, limit) == brute.search(q, limit), q


def test_agrees_with_brute_force_on_a_crowd() -> None:
    """Two thousand elders of seven surnames: ranges too large to read (the scans that stop early)."""
    rng = random.Random(7)
    elders = [random_elder(rng, n) for n in range(2000)]
    index = ElderSearch.of(elders)
    brute = BruteForce(elders)
    for _ in range(30):
        for q in queries_for(rng, elders):
            assert index.search(q) == brute.search(q), q
    current = {person.elder_id: person for person in elders}
    for person in rng.sample(elders, 100):  # a hundred changes, searched before the rebuild
        current[person.elder_id] = random_elder(rng, int(person.elder_id[1:]))
        index.put(current[person.elder_id])
    for gone in rng.sample(sorted(current), 20):
        del current[gone]
        index.remove(gone)
    assert 0 < index.pending <= 120
    brute = BruteForce(list(current.values()))
    for _ in range(20):
        for q in queries_for(rng, list(current.values())):
            assert index.search(q) == brute.search(q), q


@pytest.mark.parametrize("fresh", [False, True])
def test_a_search_within_part_of_the_network_is_as_full_as_the_centres(fresh: bool) -> None:
    """500 王 elsewhere rank before the 5 王 of one street: a search kept to that street still finds its 5,
    from the built index and from records put since."""
    elsewhere = [elder(f"a{n:03d}", "王秀英") for n in range(500)]
    mine = [elder(f"z{n}", "王秀英") for n in range(5)]
    index = ElderSearch.of(elsewhere) if fresh else ElderSearch.of(elsewhere + mine)
    if fresh:
        for record in mine:
            index.put(record)
    found = index.search("王秀英", 5, within=lambda elder_id: elder_id.startswith("z"))
    assert sorted(ids(found)) == [f"z{n}" for n in range(5)]
    assert ids(index.search("王秀英", 5))[0].startswith("a")  # the centre's own order is unchanged
