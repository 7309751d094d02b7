"""A seeded demo city: the registry CSV files of a plausible Longwen district (龙文区), Zhangzhou, Fujian.

What it owns
    Writing ``elders.csv``, ``devices.csv`` and ``responders.csv`` in the formats ``anxin import`` reads
    (see :mod:`dispatch.importer`), for demos, drills and benchmarks.

Rules
    1. Deterministic: one ``random.Random(seed)`` draws everything, in a fixed order, and nothing iterates a
       set or a hash-ordered container, so a seed gives byte-identical files on every machine.
    2. Real geography, invented people: four streets (街道) of Longwen district with two or three communities
       (社区) each. Community centres are approximate WGS-84 points; every elder and caregiver lives within
       :data:`RADIUS_M` of their community's centre. The names, phones, addresses and keys are made up.
    3. Every community has at least one caregiver (when there are enough caregivers), so an elder's fixed
       caregiver (``caregiver_id``) can always be someone of the same community.
    4. The output is valid: importing it reports no refused row.

Never
    Never import the server's packages: simulators drive Anxin from outside, through its files and network
    interfaces, like any other client.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

DISTRICT = "龙文区"
RADIUS_M = 600.0
_METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True, slots=True)
class Community:
    street: str
    name: str
    lat: float
    lon: float

    @property
    def path(self) -> str:
        """The registry's three-level path district/street/community."""
        return f"{DISTRICT}/{self.street}/{self.name}"

    @property
    def address_prefix(self) -> str:
        return f"{DISTRICT}{self.street}{self.name}"


# Streets of Longwen district around 24.50 N, 117.71 E; centres are approximate.
COMMUNITIES: tuple[Community, ...] = (
    Community("蓝田街道", "蓝田社区", 24.5080, 117.6960),
    Community("蓝田街道", "湘桥社区", 24.5140, 117.6890),
    Community("蓝田街道", "梧浦社区", 24.5200, 117.6990),
    Community("步文街道", "步文社区", 24.4920, 117.7230),
    Community("步文街道", "东山社区", 24.4990, 117.7320),
    Community("步文街道", "龙江社区", 24.4860, 117.7140),
    Community("景山街道", "景山社区", 24.5270, 117.7390),
    Community("景山街道", "檀林社区", 24.5190, 117.7300),
    Community("碧湖街道", "碧湖社区", 24.5030, 117.7060),
    Community("碧湖街道", "湖滨社区", 24.4970, 117.6990),
    Community("碧湖街道", "龙腾社区", 24.5090, 117.7140),
)

ELDER_COLUMNS = (
    "elder_id",
    "name",
    "phone",
    "address",
    "lat",
    "lon",
    "community",
    "birth_date",
    "risk_flags",
    "care_level",
    "medical_notes",
    "contacts",
    "caregiver_id",
    "entitlement",
    "access",
)
DEVICE_COLUMNS = ("device_id", "protocol", "elder_id", "aes_key", "checkin_s")
RESPONDER_COLUMNS = (
    "responder_id",
    "name",
    "kind",
    "skills",
    "lat",
    "lon",
    "phone",
    "community",
    "travel",
    "hours",
    "green_channel",
    "provider",
)
#: the contracted service organisation of the default service catalogue (dispatch/catalogue.toml), whose staff a
#: city may include (``generate(contracted=...)``)
CONTRACTED = "kangle"

# Common surnames of southern Fujian, most frequent first, with rough weights.
_SURNAMES = "陈林黄郑吴王李张杨蔡许刘周谢洪曾苏庄郭叶"
_SURNAME_WEIGHTS = (14, 12, 8, 6, 6, 5, 5, 5, 4, 4, 4, 4, 3, 3, 3, 3, 3, 2, 2, 2)
_OLD_MALE = "国建文德春荣振福水清火明华生财源海山忠义成志平金"
_OLD_FEMALE = "秀桂玉美淑金丽月春兰英珍芬凤梅霞琴花娥珠莲"
_YOUNG_MALE = "伟强磊军勇杰涛斌鹏辉晖峰"
_YOUNG_FEMALE = "丽静敏燕红芳婷娟琳颖洁慧"
_CAREGIVER_GIVEN = "丽娟红梅芳燕霞琴萍艳华玲秀惠"

_NOTES = (
    "高血压",
    "糖尿病",
    "冠心病",
    "阿尔茨海默病",
    "慢阻肺",
    "脑卒中后遗症",
    "骨质疏松",
    "帕金森病",
    "慢性肾病",
    "关节炎",
    "白内障",
)
_EXTRA_NOTES = ("青霉素过敏", "装有心脏起搏器", "长期服用华法林", "听力差，需大声说话")
# Relation, and whether that relative is a man (None: either).
_CHILD_RELATIONS: tuple[tuple[str, bool | None], ...] = (
    ("儿子", True),
    ("女儿", False),
    ("儿子", True),
    ("女儿", False),
    ("侄子", True),
    ("侄女", False),
)
_OTHER_RELATIONS: tuple[tuple[str, bool | None], ...] = (("儿媳", False), ("女婿", True), ("邻居", None))
_MOBILE_PREFIXES = ("138", "139", "159", "186", "188", "137", "150", "189")

_ELDER_PHONE_BLOCKS = ("1350596", "1395965", "1385962", "1590596")
_RESPONDER_PHONE_BLOCKS = ("1875963", "1865962")


def generate(
    out_dir: Path, *, seed: int = 7, elders: int = 2000, caregivers: int = 60, clinics: int = 5, contracted: int = 0
) -> dict[str, Path]:
    """Write the three registry files into ``out_dir`` (created if missing); return their paths by kind.
    ``contracted``: staff of the contracted service organisation (:data:`CONTRACTED`), drawn from a generator
    of their own so that the rest of the city is the same with or without them."""
    if elders > len(_ELDER_PHONE_BLOCKS) * 10_000 or caregivers > len(_RESPONDER_PHONE_BLOCKS) * 10_000:
        raise ValueError("too many people for the demo phone number blocks")
    rng = random.Random(seed)
    people = _caregivers(rng, caregivers)
    places = _clinics(rng, clinics)
    elder_rows = _elders(rng, elders, people)
    device_rows = _devices(rng, elder_rows)
    _access(rng, elder_rows)  # drawn last: the rest of the city is what it was before elders had door notes

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "elders": out_dir / "elders.csv",
        "devices": out_dir / "devices.csv",
        "responders": out_dir / "responders.csv",
    }
    _write(paths["elders"], ELDER_COLUMNS, elder_rows)
    _write(paths["devices"], DEVICE_COLUMNS, device_rows)
    staff = _staff(random.Random(seed + 1), contracted)
    _write(paths["responders"], RESPONDER_COLUMNS, [*people, *places, *staff])
    return paths


Row = dict[str, str]


def _write(path: Path, columns: Sequence[str], rows: list[Row]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


# -- places and people -----------------------------------------------------------------------------------


def _scatter(rng: random.Random, centre: Community, radius_m: float = RADIUS_M) -> tuple[str, str]:
    """A point uniformly distributed in the disc of ``radius_m`` around the community centre."""
    distance = radius_m * math.sqrt(rng.random())
    bearing = rng.uniform(0.0, 2 * math.pi)
    lat = centre.lat + distance * math.cos(bearing) / _METRES_PER_DEGREE
    lon = centre.lon + distance * math.sin(bearing) / (_METRES_PER_DEGREE * math.cos(math.radians(centre.lat)))
    return f"{lat:.6f}", f"{lon:.6f}"


def _surname(rng: random.Random) -> str:
    return rng.choices(_SURNAMES, weights=_SURNAME_WEIGHTS)[0]


def _given_name(rng: random.Random, pool: str) -> str:
    return "".join(rng.choice(pool) for _ in range(rng.choices((1, 2), weights=(1, 4))[0]))


def _unique_phones(rng: random.Random, blocks: Sequence[str], count: int) -> list[str]:
    picks = rng.sample(range(len(blocks) * 10_000), count)
    return [f"{blocks[pick // 10_000]}{pick % 10_000:04d}" for pick in picks]


def _mobile(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"


def _pick_skills(rng: random.Random, odds: dict[str, float]) -> str:
    """Always life care, other skills by their odds, in the registry's order."""
    chosen = ["life_care"] + [skill for skill, p in odds.items() if rng.random() < p]
    return ";".join(chosen)


def _caregivers(rng: random.Random, count: int) -> list[Row]:
    """Caregivers (about 70 %) and volunteers, spread over the communities, each in its community."""
    caregiver_count = round(count * 0.7)
    # The first responder of each community is a caregiver, so every community has one (rule 3).
    sure = min(caregiver_count, len(COMMUNITIES), count)
    rest = ["caregiver"] * (caregiver_count - sure) + ["volunteer"] * (count - caregiver_count)
    rng.shuffle(rest)
    kinds = ["caregiver"] * sure + rest
    phones = _unique_phones(rng, _RESPONDER_PHONE_BLOCKS, count)
    rows: list[Row] = []
    for index, kind in enumerate(kinds):
        community = COMMUNITIES[index % len(COMMUNITIES)]
        lat, lon = _scatter(rng, community)
        if kind == "caregiver":
            name = _surname(rng) + _given_name(rng, _CAREGIVER_GIVEN)
            skills = _pick_skills(rng, {"nursing": 0.7, "medical": 0.08, "comfort": 0.25})
            travel = rng.choices(("walk", "bike", "car"), weights=(30, 55, 15))[0]
        else:
            name = _surname(rng) + _given_name(rng, _YOUNG_MALE + _YOUNG_FEMALE + _OLD_MALE)
            skills = _pick_skills(rng, {"nursing": 0.2, "medical": 0.03, "comfort": 0.5})
            travel = rng.choices(("walk", "bike", "car"), weights=(50, 40, 10))[0]
        rows.append(
            {
                "responder_id": f"c{index + 1:04d}",
                "name": name,
                "kind": kind,
                "skills": skills,
                "lat": lat,
                "lon": lon,
                "phone": phones[index],
                "community": community.path,
                "travel": travel,
                "hours": "",
                "green_channel": "",
            }
        )
    return rows


def _staff(rng: random.Random, count: int) -> list[Row]:
    """The contracted organisation's staff: cleaners and repairers spread over the communities, on bikes."""
    rows: list[Row] = []
    for index in range(count):
        community = COMMUNITIES[index % len(COMMUNITIES)]
        lat, lon = _scatter(rng, community, radius_m=400.0)
        rows.append(
            {
                "responder_id": f"s{index + 1:03d}",
                "name": _surname(rng) + _given_name(rng, _YOUNG_MALE + _YOUNG_FEMALE),
                "kind": "caregiver",
                "skills": "life_care",
                "lat": lat,
                "lon": lon,
                "phone": f"1775966{index:04d}",  # the organisation's own block: no caregiver's or elder's number
                "community": community.path,
                "travel": "bike",
                "hours": "08:00-18:00",
                "green_channel": "",
                "provider": CONTRACTED,
            }
        )
    return rows


def _clinic_names() -> list[tuple[str, Community]]:
    """A health service centre in each street's first community, then a station in each other community."""
    centres: list[tuple[str, Community]] = []
    stations: list[tuple[str, Community]] = []
    streets: list[str] = []
    for community in COMMUNITIES:
        if community.street not in streets:
            streets.append(community.street)
            centres.append((f"{community.street.removesuffix('街道')}社区卫生服务中心", community))
        else:
            stations.append((f"{community.name}卫生服务站", community))
    return centres + stations


def _clinics(rng: random.Random, count: int) -> list[Row]:
    named = _clinic_names()
    rows: list[Row] = []
    for index in range(count):
        name, community = named[index % len(named)]
        if index >= len(named):
            name = f"{name}（{index // len(named) + 1}）"
        lat, lon = _scatter(rng, community, radius_m=300.0)
        rows.append(
            {
                "responder_id": f"k{index + 1:02d}",
                "name": name,
                "kind": "clinic",
                "skills": "medical;nursing",
                "lat": lat,
                "lon": lon,
                "phone": f"0596-2{rng.randrange(1_000_000):06d}",
                "community": community.path,
                "travel": "car",
                "hours": "24h" if index % 2 == 0 else "08:00-20:00",
                "green_channel": "no" if index % 4 == 3 else "yes",
            }
        )
    return rows


# -- elders ----------------------------------------------------------------------------------------------


def _elders(rng: random.Random, count: int, responders: list[Row]) -> list[Row]:
    by_community: dict[str, list[str]] = {}
    for person in responders:
        if person["kind"] == "caregiver":
            by_community.setdefault(person["community"], []).append(person["responder_id"])
    phones = _unique_phones(rng, _ELDER_PHONE_BLOCKS, count)
    rows: list[Row] = []
    for index in range(count):
        community = rng.choice(COMMUNITIES)
        lat, lon = _scatter(rng, community)
        female = rng.random() < 0.56
        surname = _surname(rng)
        flags = _risk_flags(rng)
        local_caregivers = by_community.get(community.path, [])
        caregiver = rng.choice(local_caregivers) if local_caregivers and rng.random() < 0.4 else ""
        rows.append(
            {
                "elder_id": f"e{index + 1:05d}",
                "name": surname + _given_name(rng, _OLD_FEMALE if female else _OLD_MALE),
                "phone": phones[index],
                "address": community.address_prefix + _flat(rng),
                "lat": lat,
                "lon": lon,
                "community": community.path,
                "birth_date": _birth_date(rng).isoformat(),
                "risk_flags": ";".join(flags),
                "care_level": str(_care_level(rng, flags)),
                "medical_notes": _medical_notes(rng),
                "contacts": _contacts(rng, surname, female, flags),
                "caregiver_id": caregiver,
                "entitlement": _entitlement(rng, flags),
            }
        )
    return rows


_KEY_HOLDERS = ("邻居", "楼下邻居", "社区网格员", "女儿", "儿子", "物业")


def _access(rng: random.Random, rows: list[Row]) -> None:
    """How a caregiver gets in, for about a third of the elders: a door code, or who holds a key."""
    for row in rows:
        draw = rng.random()
        if draw < 0.15:
            row["access"] = f"门锁密码 {rng.randint(1000, 999999)}#"
        elif draw < 0.35:
            row["access"] = f"钥匙在{rng.choice(_KEY_HOLDERS)}处，电话 {_mobile(rng)}"
        else:
            row["access"] = ""


def _flat(rng: random.Random) -> str:
    floor = rng.randint(1, 7) if rng.random() < 0.7 else rng.randint(8, 18)
    return f"{rng.randint(1, 30)}号楼{rng.randint(1, 4)}单元{floor}{rng.randint(1, 4):02d}室"


def _birth_date(rng: random.Random) -> date:
    first, last = date(1930, 1, 1), date(1960, 12, 31)
    span = (last - first).days
    # More people in their sixties and seventies than in their nineties.
    return first + timedelta(days=round(rng.triangular(0, span, span * 0.85)))


def _risk_flags(rng: random.Random) -> list[str]:
    alone = rng.random() < 0.35
    flags = {
        "living_alone": alone,
        "empty_nest": rng.random() < (0.45 if alone else 0.2),
        "three_nos": rng.random() < 0.01,
        "low_income": rng.random() < 0.1,
        "disabled": rng.random() < 0.08,
    }
    return [flag for flag, present in flags.items() if present]


def _care_level(rng: random.Random, flags: list[str]) -> int:
    if "disabled" in flags:
        return rng.choice((3, 4))
    return rng.choices((0, 1, 2, 3, 4), weights=(35, 30, 20, 10, 5))[0]


def _medical_notes(rng: random.Random) -> str:
    count = rng.choices((0, 1, 2, 3), weights=(20, 40, 30, 10))[0]
    notes = rng.sample(_NOTES, count)
    if rng.random() < 0.08:
        notes.append(rng.choice(_EXTRA_NOTES))
    return "、".join(notes)


def _contacts(rng: random.Random, surname: str, female: bool, flags: list[str]) -> str:
    """One to three ordered emergency contacts, ``name:phone:relation``; usually a child first."""
    if "three_nos" in flags:  # no family to call: the community grid worker is the contact
        return f"{_surname(rng)}{_given_name(rng, _YOUNG_FEMALE)}:{_mobile(rng)}:社区网格员"
    others = _OTHER_RELATIONS
    if "living_alone" not in flags:
        others = (*others, ("老伴", female))  # a spouse is of the other sex, in this generation
    entries = []
    for position in range(rng.choices((1, 2, 3), weights=(30, 45, 25))[0]):
        if position == 0 or rng.random() < 0.5:
            relation, male = rng.choice(_CHILD_RELATIONS)
            family = surname
        else:
            relation, male = rng.choice(others)
            family = _surname(rng)
        if male is None:
            male = rng.random() < 0.5
        pool = (_OLD_MALE if male else _OLD_FEMALE) if relation == "老伴" else _YOUNG_MALE if male else _YOUNG_FEMALE
        entries.append(f"{family}{_given_name(rng, pool)}:{_mobile(rng)}:{relation}")
    return ";".join(entries)


def _entitlement(rng: random.Random, flags: list[str]) -> str:
    if "three_nos" in flags or "low_income" in flags:
        return "free"
    if "disabled" in flags:
        return "low_cost"
    return rng.choices(("free", "low_cost", "paid"), weights=(20, 30, 50))[0]


# -- devices ---------------------------------------------------------------------------------------------


def _devices(rng: random.Random, elders: list[Row]) -> list[Row]:
    """One device per elder: DC-09 pendants (half), GPS watches, GT06 trackers."""
    taken: set[str] = set()
    rows: list[Row] = []
    for elder in elders:
        protocol = rng.choices(("sia-dc09", "watch", "gt06"), weights=(50, 30, 20))[0]
        aes_key = ""
        while True:
            if protocol == "sia-dc09":
                device_id = f"{rng.getrandbits(40):010X}"[-rng.randint(6, 10) :]
            elif protocol == "watch":
                device_id = str(rng.randrange(1_000_000_000, 10_000_000_000))
            else:
                device_id = _imei(rng)
            if device_id not in taken:
                taken.add(device_id)
                break
        if protocol == "sia-dc09" and rng.random() < 0.3:
            aes_key = f"{rng.getrandbits(128):032X}"  # a demo key, not a secret
        rows.append(
            {
                "device_id": device_id,
                "protocol": protocol,
                "elder_id": elder["elder_id"],
                "aes_key": aes_key,
                "checkin_s": "3600" if protocol == "sia-dc09" else "600",
            }
        )
    return rows


def _imei(rng: random.Random) -> str:
    """A 15-digit IMEI: a type allocation code starting 86, a serial, and the Luhn check digit."""
    body = "86" + "".join(str(rng.randrange(10)) for _ in range(12))
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:  # every second digit from the right of the body is doubled
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return body + str((10 - total % 10) % 10)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.city", description="Write a seeded demo city's registry CSV files."
    )
    parser.add_argument("out_dir", type=Path, help="folder for elders.csv, devices.csv, responders.csv")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--elders", type=int, default=2000)
    parser.add_argument("--caregivers", type=int, default=60)
    parser.add_argument("--clinics", type=int, default=5)
    args = parser.parse_args(argv)
    paths = generate(args.out_dir, seed=args.seed, elders=args.elders, caregivers=args.caregivers, clinics=args.clinics)
    for kind, path in paths.items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
