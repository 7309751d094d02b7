"""What simulated callers say: a script per hotline call, and the switchboard the simulated operators hear it on.

What it owns
    :func:`draw_script` writes one call's :class:`CallScript`: what the caller wants (on an elderly hotline most
    calls are not emergencies: service requests, questions, a lonely caller, a wrong number, a silent line;
    some are a fall, an illness, a fire), the words they say (Chinese), and, for a caller whose number is
    nobody's in the registry, whom they call about and where they say they are (a registered elder's
    address or building, or the community), so that an operator can place them.

    :class:`Switchboard` keeps each call's :class:`Card` by call id: the script, for the simulated operator
    who "hears" it (callers and operators run in the same process), and what the operator made of it (the
    kind the server recorded, the incident the classification opened, how an unknown caller was placed),
    for the scorecard.

Rules
    1. Pure: no network, no clock; one ``random.Random`` draws every choice, in a fixed order.
    2. The script is what the caller says, never what the server knows: an unknown caller's ``elder_id`` is
       kept for the scorecard only; an operator finds the elder by name or places the caller by address.
    3. The switchboard is bounded (the oldest cards are forgotten), so a demo can run for days.

Never
    Never import the server's packages: callers are people on the phone.
"""

from __future__ import annotations

import random
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

Elder = dict[str, Any]

#: the classifications an operator gives an answered call (the server's ``CallKind``)
KINDS: Final = ("emergency", "service", "consultation", "complaint", "wrong_number", "silent")

#: of the calls that are not emergencies, what the callers want, for a caller who is the elder and for anyone
#: else (a lonely caller is heard and recorded as a consultation)
OTHER_KINDS: Final[dict[str, tuple[tuple[str, float], ...]]] = {
    "elder": (("service", 35.0), ("consultation", 25.0), ("lonely", 12.0), ("complaint", 6.0),
              ("wrong_number", 8.0), ("silent", 14.0)),
    "stranger": (("service", 35.0), ("consultation", 30.0), ("complaint", 8.0), ("wrong_number", 17.0),
                 ("silent", 10.0)),
}  # fmt: skip
EMERGENCY_TYPES: Final = (("fall", 40.0), ("medical", 35.0), ("call", 22.0), ("fire", 3.0))

_OWN_WORDS: Final[dict[str, tuple[str, ...]]] = {
    "fall": ("我在卫生间摔倒了，起不来", "刚才在厨房滑了一跤，腿很疼，站不起来", "下床的时候摔了，腰动不了"),
    "medical": ("我胸口闷得厉害，喘不上气", "头晕得厉害，血压好像很高", "心脏不舒服，药吃完了，浑身冒冷汗"),
    "call": ("家里就我一个，浑身没力气，你们能派人来看看吗", "我发烧两天了，没人照顾，想请人来看看"),
    "fire": ("厨房冒烟了，煤气关不上", "屋里有烧焦的味道，插座冒火花了"),
}
_FAMILY_WORDS: Final[dict[str, str]] = {
    "fall": "在家摔倒了，起不来",
    "medical": "说胸口疼、喘不上气",
    "call": "电话里说浑身没力气，一直没人去看",
    "fire": "说家里冒烟了",
}
_PASSER_BY_WORDS: Final[dict[str, str]] = {
    "fall": "楼下有位老人摔倒了，叫不起来",
    "medical": "有位老人坐在楼道里，脸色发白，说心口疼",
    "call": "有位老人在楼下坐了很久，说走不动了",
    "fire": "有户独居老人家里冒烟了",
}
_RELATIONS: Final = ("女儿", "儿子", "儿媳", "侄女", "邻居")
_OTHER_WORDS: Final[dict[str, tuple[str, ...]]] = {
    "service": ("想预约明天上午的助浴服务", "帮我订一份明天的午饭送餐", "家里水管漏水，想请师傅上门修一下",
                "想请家政阿姨来打扫一下卫生", "想请人帮忙代买点药和米"),
    "consultation": ("想问一下高龄补贴怎么申请", "你们上门服务怎么收费", "这个呼叫器怎么充电",
                     "居家养老服务都有哪些项目", "体检是哪天，在哪里做"),
    "lonely": ("一个人在家，想找人说说话", "孩子在外地，好久没人聊天了"),
    "complaint": ("上周预约的助餐没有送到", "护理员上门迟到了一个小时", "上次修的水龙头又坏了"),
    "wrong_number": ("打错了，我找小王的", "不好意思，我想打的是出租车电话"),
    "silent": ("",),
}  # fmt: skip
_FOR_PARENT: Final = "帮我{who}{what}"

_BUILDING = re.compile(r"^(?P<building>.*?\d+号楼)")


@dataclass(frozen=True, slots=True)
class CallScript:
    """One caller's part: what they want and say, and (not known by number) whom and where they speak of."""

    kind: str  # one of KINDS: what an operator who listens should classify it as
    text: str  # the caller's words, as the operator notes them
    known: bool  # the caller's number is the elder's own (the server pops their record)
    alarm_type: str | None = None  # for an emergency: fall, medical, call, fire
    elder_id: str | None = None  # whom the call is about (rule 2: the scorecard's, not the operator's)
    name: str | None = None  # the elder's name, when an unknown caller gives it
    where: tuple[str, ...] = ()  # where an unknown caller says it is, most precise first

    @property
    def emergency(self) -> bool:
        return self.kind == "emergency"


@dataclass(slots=True)
class Card:
    """One call on the switchboard: the script, and what the operator made of it."""

    call_id: str
    script: CallScript
    classified: str | None = None  # the kind the server recorded
    incident_id: str | None = None  # the incident the classification opened (or joined)
    placed_by: str | None = None  # an unknown caller: "search" (the elder found by name), "address", or None
    called_back: bool = False


@dataclass
class Switchboard:
    """Cards by call id (rule 3): callers ``put`` one before the phone rings, operators ``card`` it."""

    keep: int = 5000
    _cards: OrderedDict[str, Card] = field(default_factory=OrderedDict, repr=False)

    def put(self, call_id: str, script: CallScript) -> Card:
        card = Card(call_id, script)
        self._cards[call_id] = card
        while len(self._cards) > self.keep:
            self._cards.popitem(last=False)
        return card

    def card(self, call_id: str | None) -> Card | None:
        return self._cards.get(call_id) if call_id else None

    def __len__(self) -> int:
        return len(self._cards)


#: the demo's callers and its operator bot share this one (they run in the same process)
SWITCHBOARD = Switchboard()


def draw_script(rng: random.Random, elder: Elder, *, known: bool, emergency_share: float) -> CallScript:
    """A script for a call from ``elder``'s own phone (``known``) or from someone else about them."""
    if rng.random() < emergency_share:
        alarm_type = _weighted(rng, EMERGENCY_TYPES)
        return _own_emergency(rng, elder, alarm_type) if known else _stranger_emergency(rng, elder, alarm_type)
    want = _weighted(rng, OTHER_KINDS["elder" if known else "stranger"])
    text = rng.choice(_OTHER_WORDS[want])
    if not known and want in ("service", "complaint"):
        text = _FOR_PARENT.format(who="母亲" if rng.random() < 0.6 else "父亲", what=text)
    kind = "consultation" if want == "lonely" else want
    return CallScript(kind, text, known, elder_id=str(elder["elder_id"]) if known else None)


def _own_emergency(rng: random.Random, elder: Elder, alarm_type: str) -> CallScript:
    text = rng.choice(_OWN_WORDS[alarm_type])
    return CallScript("emergency", text, True, alarm_type=alarm_type, elder_id=str(elder["elder_id"]))


def _stranger_emergency(rng: random.Random, elder: Elder, alarm_type: str) -> CallScript:
    """Family, who give the elder's name and home address; or a passer-by, who gives the building only."""
    address, community = str(elder.get("address") or ""), community_name(elder)
    building = building_of(address)
    if rng.random() < 0.6:
        relation, name = rng.choice(_RELATIONS), str(elder["name"])
        text = f"我是{name}的{relation}，{name}{_FAMILY_WORDS[alarm_type]}，地址是{address}"
        where = tuple(dict.fromkeys(w for w in (address, building, community) if w))
        return CallScript("emergency", text, False, alarm_type, str(elder["elder_id"]), name, where)
    short = building.removeprefix(address_head(elder)) if building else ""
    said = short or community
    text = f"{said}{_PASSER_BY_WORDS[alarm_type]}"
    where = tuple(dict.fromkeys(w for w in (said, building, community) if w))
    return CallScript("emergency", text, False, alarm_type, str(elder["elder_id"]), None, where)


def community_name(elder: Elder) -> str:
    """``龙文区/蓝田街道/蓝田社区`` -> ``蓝田社区``."""
    return str(elder.get("community") or "").rsplit("/", 1)[-1]


def address_head(elder: Elder) -> str:
    """The district and street before the community in an address: ``龙文区蓝田街道``."""
    parts = str(elder.get("community") or "").split("/")
    return "".join(parts[:-1])


def building_of(address: str) -> str:
    """``龙文区蓝田街道蓝田社区12号楼3单元502室`` -> ``龙文区蓝田街道蓝田社区12号楼`` ("" when there is none)."""
    match = _BUILDING.match(address)
    return match["building"] if match else ""


def _weighted(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([name for name, _ in table], weights=[weight for _, weight in table])[0]
