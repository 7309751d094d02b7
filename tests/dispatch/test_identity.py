"""Identity hygiene (dispatch.identity): the resident identity number's check character and parts, and one
person registered twice found in a generated registry of 100,000 with planted duplicates and planted look-alikes
(couples on one landline, namesakes born the same day with their own numbers); precision and recall printed."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from dispatch.identity import (
    Duplicate,
    Person,
    ResidentIdError,
    check_character,
    find_duplicates,
    households,
    name_key,
    parse_resident_id,
)

# the two numbers GB 11643-1999 itself works through (Beijing Chaoyang, 1949-12-31; Guangdong Jieyang, 1880-01-01)
STANDARD_EXAMPLES = ("11010519491231002X", "440524188001010014")


@pytest.mark.parametrize("number", STANDARD_EXAMPLES)
def test_the_standards_own_examples_check(number: str) -> None:
    assert check_character(number[:17]) == number[17]
    parsed = parse_resident_id(number)
    assert parsed.number == number


def test_the_parts_of_a_number() -> None:
    parsed = parse_resident_id("11010519491231002X")
    assert (parsed.region, parsed.birth_date, parsed.male) == ("110105", date(1949, 12, 31), False)  # 002: even
    assert parse_resident_id("440524188001010014").male  # 001: odd, a man


def test_the_written_forms_people_type_are_forgiven() -> None:
    for typed in ("11010519491231002x", " 110105 19491231 002X ", "１１０１０５１９４９１２３１００２Ｘ"):
        assert parse_resident_id(typed).number == "11010519491231002X"


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("11010519491231002", "length"),
        ("11010519491231002XX", "length"),
        ("1101051949123100AX", "digits"),
        ("11010519491231002Y", "digits"),
        ("110105194902300021", "birth_date"),  # 30 February
        ("110105194913010021", "birth_date"),  # month 13
        ("110105194912310021", "check"),  # the last character of the standard's example, mistyped
        ("110105194912310O2X", "digits"),  # a letter O for a zero
    ],
)
def test_a_wrong_number_says_which_part_is_wrong(typed: str, reason: str) -> None:
    with pytest.raises(ResidentIdError) as wrong:
        parse_resident_id(typed)
    assert wrong.value.reason == reason


def test_a_number_born_after_today_is_refused() -> None:
    body = "35060320300101001"
    with pytest.raises(ResidentIdError) as wrong:
        parse_resident_id(body + check_character(body), today=date(2026, 11, 30))
    assert wrong.value.reason == "birth_date"


def test_every_single_mistyped_digit_is_caught() -> None:
    """MOD 11-2 catches every single wrong digit and every swap of two neighbours (where they differ)."""
    body = "35060319450817003"
    good = body + check_character(body)
    for i in range(17):
        for digit in "0123456789":
            if digit != body[i]:
                typo = body[:i] + digit + body[i + 1 :] + good[17]
                assert check_character(typo[:17]) != typo[17]
        if i < 16 and body[i] != body[i + 1]:
            swapped = body[:i] + body[i + 1] + body[i] + body[i + 2 :]
            assert check_character(swapped) != good[17]


def test_names_compare_without_spaces_middle_dots_or_full_width() -> None:
    assert name_key("王 秀英") == name_key("王秀英")
    assert name_key("阿依古丽·买买提") == name_key("阿依古丽买买提")
    assert name_key("Ｌｉ Ｍｉｎｇ") == name_key("LiMing")


def test_a_couple_on_one_landline_is_a_household_not_a_duplicate() -> None:
    couple = [
        Person("e1", "林国庆", date(1948, 5, 1), "0596-2123456"),
        Person("e2", "陈秀兰", date(1950, 3, 9), "0596 2123456"),
    ]
    assert find_duplicates(couple) == []
    assert households(couple) == {"05962123456": ["e1", "e2"]}


def test_namesakes_with_their_own_numbers_are_two_people() -> None:
    one, other = "35060319450817003", "35060219450817005"
    people = [
        Person("e1", "王秀英", date(1945, 8, 17), "13500000001", one + check_character(one)),
        Person("e2", "王秀英", date(1945, 8, 17), "13500000002", other + check_character(other)),
    ]
    assert find_duplicates(people) == []


def test_each_pair_once_with_every_reason() -> None:
    body = "35060319450817003"
    number = body + check_character(body)
    people = [
        Person("e9", "王秀英", None, "135 0000 0001", number.lower()),
        Person("e1", "王 秀英", date(1945, 8, 17), "+86 13500000001", number),
        Person("e5", "王秀英", None, "13900000009"),
    ]
    assert find_duplicates(people) == [Duplicate("e1", "e9", ("resident_id", "name_birth", "name_phone"))]


# -- a registry of 100,000 with planted duplicates --------------------------------------------------------------

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余于杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = "秀英桂兰玉珍凤芳淑华建国明德福金荣志强文海春梅兰丽云霞红平军伟刚勇峰俊杰宝山林庆祥瑞振成树宗寿永昌"
REGIONS = ("350602", "350603", "350622", "350623", "350681")  # Zhangzhou's districts and counties


def resident_number(rng: random.Random, born: date, male: bool, issued: set[str]) -> str:
    """A number nobody else has (the state issues each once)."""
    while True:
        sequence = rng.randrange(100) * 10 + rng.choice((1, 3, 5, 7, 9) if male else (0, 2, 4, 6, 8))
        body = f"{rng.choice(REGIONS)}{born:%Y%m%d}{sequence:03d}"
        if body not in issued:
            issued.add(body)
            return body + check_character(body)


def registry(seed: int, size: int) -> tuple[list[Person], set[tuple[str, str]]]:
    """``size`` people (about half with a resident number, all with a phone and most with a birth date), then
    planted: 1,500 of them registered again (by number written another way; by name and birth date; by name
    and phone), 3,000 spouses on their partner's landline, and 500 namesakes born the same day, both with
    numbers of their own. Returns the people and the planted true pairs. (A namesake born the same day where
    neither record has a number cannot be told apart: it is proposed, and the operator decides.)"""
    rng = random.Random(seed)
    issued: set[str] = set()
    first = date(1925, 1, 1)
    people: list[Person] = []
    for n in range(size):
        born = first + timedelta(days=rng.randrange(36 * 365))
        male = rng.random() < 0.45
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
        number = resident_number(rng, born, male, issued) if rng.random() < 0.5 else None
        people.append(Person(f"e{n:06d}", name, born if rng.random() < 0.9 else None, f"13{n:09d}", number))
    truth: set[tuple[str, str]] = set()
    extra = size
    for kind, count in (("number", 500), ("birth", 500), ("phone", 500)):
        for original in rng.sample(people[:size], count):
            key = f"e{extra:06d}"
            extra += 1
            if kind == "number":
                born = original.birth_date or date(1940, 1, 1)
                number = original.resident_id or resident_number(rng, born, True, issued)
                if original.resident_id is None:  # give the original its number, and the copy another form of it
                    people[int(original.key[1:])] = original = Person(
                        original.key, original.name, original.birth_date, original.phone, number
                    )
                copy = Person(key, original.name[0] + "某", None, f"15{extra:09d}", " ".join(number.lower()))
            elif kind == "birth":
                born = original.birth_date or (parse_resident_id(original.resident_id).birth_date
                                               if original.resident_id else date(1941, 2, 3))  # fmt: skip
                if original.birth_date is None and original.resident_id is None:
                    people[int(original.key[1:])] = original = Person(original.key, original.name, born,
                                                                      original.phone)  # fmt: skip
                copy = Person(key, " ".join(original.name), born, f"15{extra:09d}")
            else:
                copy = Person(key, original.name, None, "+86 " + (original.phone or ""))
            people.append(copy)
            truth.add((min(original.key, key), max(original.key, key)))
    for partner in rng.sample(people[:size], 3000):  # a spouse on the same landline: another name, another day
        spouse_born = (partner.birth_date or date(1945, 6, 1)) + timedelta(days=rng.randint(200, 3000))
        people.append(Person(f"e{extra:06d}", rng.choice(SURNAMES) + "秀兰", spouse_born, partner.phone))
        extra += 1
    numbered = [p for p in people[:size] if p.resident_id is not None]
    for twin in rng.sample(numbered, 500):  # a namesake born the same day: both numbers tell them apart
        born = parse_resident_id(twin.resident_id or "").birth_date
        mine = resident_number(rng, born, rng.random() < 0.5, issued)
        people.append(Person(f"e{extra:06d}", twin.name, born, f"18{extra:09d}", mine))
        extra += 1
    return people, truth


def test_one_person_registered_twice_is_found_in_a_registry_of_100000() -> None:
    people, truth = registry(seed=11, size=100_000)
    found = {(d.first, d.second) for d in find_duplicates(people)}
    hits = found & truth
    precision, recall = len(hits) / len(found), len(hits) / len(truth)
    print(
        f"\nregistry {len(people):,} records, {len(truth):,} planted duplicates: found {len(found):,}, "
        f"of them planted {len(hits):,}; precision {precision:.4f}, recall {recall:.4f}"
    )
    assert recall == 1.0
    # what else is found: people of the generated city who happen to share a name and a birthday, with no
    # number on one of them to tell them apart (the operator looks); never a couple, never numbered namesakes
    assert precision >= 0.95
    shared = households(people)
    assert len(shared) >= 3000 and all(len(keys) >= 2 for keys in shared.values())
