"""ElderSearch on 100 000 elders: index build time and memory, and per-query latency by kind of query.

A synthetic registry of 100 000 elders: names drawn from the most common Chinese surnames (weighted by their
share of the population) and the given-name characters of people born 1930-1960; an 11-digit mobile number
each, one to three contacts with mobiles of their own; addresses "幸福路12号3栋2单元501" over 120 roads of
six districts. Queries (2 000 of each kind) are drawn from the registry: the last 4 digits of an elder's
phone, a whole phone, a contact's last 4 digits, pinyin initials, a full name, the first two characters of a
name, a road and number, and an id. Every answer is checked against a brute-force ranking of all elders (the
oracle of ``tests/dispatch/test_search.py``) for a sample of the queries before anything is timed.

The floor is one ``str.find`` of an absent needle over the joined name column (the price of a single C-speed
scan of 100 000 names), measured in the same run; a dict lookup of a whole phone number and a scan of the
joined phone digits are printed beside it. Then 1 000 elders change (under ``MAX_PENDING``: searched one by
one, no rebuild), and the gazetteer of the same registry answers addresses, buildings and communities.
The index's memory is measured with tracemalloc in a separate build, so that tracing does not slow the timed one.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from collections.abc import Callable
from functools import partial

from bench.common import Timing, report, time_each
from dispatch.gazetteer import Gazetteer
from dispatch.registry import Contact, Elder
from dispatch.search import ElderSearch, name_pinyin
from tests.dispatch.test_search import BruteForce

ELDERS = 100_000
QUERIES = 2_000
CHECKED = 200
UPDATES = 1000
SEED = 20260611

# The most common surnames of China with their rough share (per mille) of the population.
SURNAMES = (
    ("王", 71), ("李", 70), ("张", 68), ("刘", 54), ("陈", 45), ("杨", 31), ("黄", 23), ("赵", 22), ("吴", 20),
    ("周", 20), ("徐", 16), ("孙", 15), ("马", 15), ("朱", 14), ("胡", 13), ("郭", 12), ("何", 12), ("高", 11),
    ("林", 11), ("罗", 11), ("郑", 10), ("梁", 10), ("谢", 8), ("宋", 8), ("唐", 8), ("许", 7), ("韩", 7),
    ("冯", 7), ("邓", 7), ("曹", 7), ("彭", 6), ("曾", 6), ("肖", 6), ("田", 6), ("董", 5), ("袁", 5),
    ("潘", 5), ("于", 5), ("蒋", 5), ("蔡", 5), ("余", 5), ("杜", 5), ("叶", 4), ("程", 4), ("苏", 4),
    ("魏", 4), ("吕", 4), ("丁", 4), ("任", 4), ("沈", 4), ("姚", 3), ("卢", 3), ("姜", 3), ("崔", 3),
    ("钟", 3), ("谭", 3), ("陆", 3), ("汪", 3), ("范", 3), ("金", 3), ("石", 3), ("廖", 3), ("贾", 3),
    ("夏", 3), ("韦", 3), ("付", 3), ("方", 3), ("白", 2), ("邹", 2), ("孟", 2), ("熊", 2), ("秦", 2),
    ("邱", 2), ("江", 2), ("尹", 2), ("薛", 2), ("闫", 2), ("段", 2), ("雷", 2), ("侯", 2), ("龙", 2),
    ("史", 2), ("陶", 2), ("黎", 2), ("贺", 2), ("顾", 2), ("毛", 2), ("郝", 2), ("龚", 2), ("邵", 2),
    ("万", 2), ("单", 1), ("欧阳", 1), ("诸葛", 1), ("司马", 1),
)  # fmt: skip
GIVEN = (
    "秀英桂英玉兰凤英秀兰秀珍淑珍玉珍桂兰玉梅素珍凤兰秀芳建华建国建军国华国强志强志明德明德华文华"
    "春花春梅金花金凤丽华美华月英翠花桂芳淑华玉华振华振国永福永生福生海生水生长林长生宝山宝华"
)
ROADS = [f"{a}{b}路" for a in "幸福人民解放建设中山和平胜利光明新华朝阳" for b in "东西南北中"][:60] + [
    f"{a}{b}街" for a in "文化团结民主长江黄河友谊工农红旗前进复兴" for b in "东西南北中"
][:60]
DISTRICTS = ("鼓楼区", "台江区", "仓山区", "晋安区", "马尾区", "长乐区")
MOBILE = ("138", "139", "135", "136", "137", "150", "151", "152", "158", "159", "186", "187", "188", "189")


def elders(rng: random.Random, count: int) -> list[Elder]:
    surnames = [name for name, _ in SURNAMES]
    weights = [weight for _, weight in SURNAMES]
    given = [GIVEN[i : i + 2] for i in range(0, len(GIVEN) - 1, 2)] + list(GIVEN)

    def mobile() -> str:
        return rng.choice(MOBILE) + f"{rng.randrange(100_000_000):08d}"

    people = []
    for i in range(count):
        district = rng.choice(DISTRICTS)
        street = f"{rng.choice('东西南北中')}{rng.choice('街湖江山门桥')}街道"
        address = (
            f"{rng.choice(ROADS)}{rng.randint(1, 300)}号{rng.randint(1, 20)}栋"
            f"{rng.randint(1, 4)}单元{rng.randint(1, 18)}{rng.randint(1, 4):02d}"
        )
        contacts = [
            Contact.model_construct(name=rng.choices(surnames, weights)[0] + rng.choice(given), phone=mobile())
            for _ in range(rng.choices((1, 2, 3), weights=(30, 45, 25))[0])
        ]
        people.append(
            Elder.model_construct(
                elder_id=f"e{i + 1:06d}",
                name=rng.choices(surnames, weights)[0] + rng.choice(given),
                phone=mobile(),
                address=address,
                lat=26.0 + rng.random() * 0.2,
                lon=119.2 + rng.random() * 0.2,
                community=f"{district}/{street}/{rng.choice('湖前华林屏东桂香温泉')}社区",
                contacts=contacts,
            )
        )
    return people


def queries(rng: random.Random, people: list[Elder]) -> dict[str, list[str]]:
    picks = [rng.choice(people) for _ in range(QUERIES)]
    with_contacts = [elder for elder in picks if elder.contacts]
    return {
        "phone, last 4 digits": [elder.phone[-4:] for elder in picks if elder.phone],
        "phone, whole": [elder.phone for elder in picks if elder.phone],
        "contact phone, last 4": [rng.choice(elder.contacts).phone[-4:] for elder in with_contacts],
        "pinyin initials": [name_pinyin(elder.name)[0][0] for elder in picks],
        "name, whole": [elder.name for elder in picks],
        "name, first 2 chars": [elder.name[:2] for elder in picks],
        "address, road + number": [elder.address.split("号")[0] + "号" for elder in picks],
        "id": [elder.elder_id for elder in picks],
    }


def build(people: list[Elder]) -> tuple[ElderSearch, float, float]:
    """The index, the time of the puts, and of the puts and the build of the columns."""
    name_pinyin("王")  # pypinyin's import (its dictionaries) is not the index's cost
    started = time.perf_counter()
    index = ElderSearch()
    for elder in people:
        index.put(elder)
    puts_s = time.perf_counter() - started
    index.refresh()
    return index, puts_s, time.perf_counter() - started


def held_mib(make: Callable[[], object]) -> float:
    """The memory what ``make()`` builds holds once built (tracemalloc, so a second, slower build)."""
    name_pinyin("王")  # pypinyin's dictionaries (about 45 MiB) are not the index's
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    made = make()
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del made
    return held / 2**20


def main() -> None:
    rng = random.Random(SEED)
    people = elders(rng, ELDERS)
    held_mb = held_mib(lambda: ElderSearch.of(people))
    gazetteer_mb = held_mib(lambda: Gazetteer.of(people))
    index, puts_s, build_s = build(people)
    kinds = queries(rng, people)
    brute = BruteForce(people)
    for q in [q for batch in kinds.values() for q in batch[: CHECKED // len(kinds)]]:
        assert index.search(q) == brute.search(q), q

    names = "\x00" + "\x00".join(sorted(elder.name for elder in people)) + "\x00"  # as the index joins them
    phones = "\x00" + "\x00".join(elder.phone for elder in people if elder.phone) + "\x00"
    by_phone = {elder.phone: elder.elder_id for elder in people}
    floor = "floor: one str.find over the joined names"
    rows: list[Timing] = [time_each(floor, lambda q: names.find(q), ["不在"] * QUERIES)]
    rows.append(time_each("dict lookup of a whole phone", by_phone.get, kinds["phone, whole"]))
    rows.append(time_each("str.find of 4 digits over joined phones", phones.find, ["\x00" + "9" * 4] * QUERIES))
    search: Callable[[str], object] = index.search
    for kind, batch in kinds.items():
        rows.append(time_each(f"search: {kind}", search, batch))

    # Updates: a burst of changes under MAX_PENDING is searched without a rebuild (the fresh elders one by one).
    changed = {elder.elder_id: elder for elder in people}
    for elder in rng.sample(people, UPDATES):
        phone = "139" + f"{rng.randrange(10**8):08d}"
        changed[elder.elder_id] = elder.model_copy(update={"phone": phone, "name": elder.name[::-1]})
        index.put(changed[elder.elder_id])
    assert index.pending == UPDATES
    brute = BruteForce(list(changed.values()))
    mixed = [q for batch in kinds.values() for q in batch[:250]]
    for q in mixed[:: len(mixed) // 40]:
        assert index.search(q) == brute.search(q), q
    rows.append(time_each(f"search after {UPDATES} puts (no rebuild)", search, mixed))
    assert index.pending == UPDATES
    started = time.perf_counter()
    index.refresh()
    rebuild_s = time.perf_counter() - started

    started = time.perf_counter()
    places = Gazetteer.of(people)
    gazetteer_s = time.perf_counter() - started
    addresses = [elder.address for elder in rng.sample(people, QUERIES)]
    rows.append(time_each("Gazetteer.geocode: an address", places.geocode, addresses))
    rows.append(time_each("Gazetteer.geocode: a building", places.geocode, [a[: a.index("栋") + 1] for a in addresses]))
    communities = [elder.community.split("/")[2] for elder in rng.sample(people, QUERIES)]
    rows.append(time_each("Gazetteer.geocode: a community", places.geocode, communities))
    roads = [a[: a.index("号") + 1] for a in addresses]
    rows.append(time_each("Gazetteer.geocode: a road number, list", partial(places.geocode, exactly_one=False), roads))

    print(
        f"{ELDERS} elders: puts {puts_s:.2f} s, index built in {build_s:.2f} s (rebuild {rebuild_s:.2f} s), "
        f"holding {held_mb:.0f} MiB; gazetteer of {len(places)} places built in {gazetteer_s:.2f} s, "
        f"holding {gazetteer_mb:.0f} MiB; "
        f"answers agree with a brute-force ranking on {CHECKED} + 40 queries"
    )
    worst = max(row.p99_us for row in rows if row.name.startswith("search"))
    print(f"worst p99 of a search: {worst / 1000:.2f} ms (target: well under 10 ms)")
    report(
        "search",
        rows,
        floor,
        notes={
            "elders": ELDERS,
            "index_puts_s": round(puts_s, 3),
            "index_build_s": round(build_s, 3),
            "rebuild_s": round(rebuild_s, 3),
            "gazetteer_build_s": round(gazetteer_s, 3),
            "gazetteer_mib": round(gazetteer_mb, 1),
            "index_mib": round(held_mb, 1),
            "worst_search_p99_ms": round(worst / 1000, 3),
        },
    )


if __name__ == "__main__":
    main()
