"""Drill scenarios: a TOML file says what happens, for how long and how fast (docs/drills/README.md).

What it owns
    Reading and checking a scenario file into a frozen :class:`Scenario`. Every table and key is checked
    (a misspelt key is an error naming it, not a silently ignored default), durations are written as
    ``"90m"``, ``"45s"``, ``"1h30m"`` or plain seconds, and each value is range-checked.

The two clocks
    A scenario is written in *drill time*: the time of the exercise as the people in it live it (an SOS
    rate per hour, a caregiver's 10 minutes on scene, a check-in every 600 s). The drill runs ``speedup``
    times faster than that on the wall clock: a drill-time duration ``d`` lasts ``d / speedup`` wall seconds.
    :meth:`Scenario.wall` does that conversion; nothing else in the simulators should divide by the speed-up
    by hand.

Never
    Never import the server's packages: a scenario describes the world outside the server.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

SCENARIOS_DIR = Path(__file__).parent / "scenarios"

_DURATION = re.compile(r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?")


class ScenarioError(Exception):
    """The scenario file is missing, is not TOML, or says something that cannot be run."""


def parse_duration(value: object) -> float:
    """Seconds from ``"1h30m"``, ``"90m"``, ``"45s"``, ``"2.5m"`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '90m'")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError("a duration is a number of seconds or text like '90m'")
    text = value.strip().replace(" ", "")
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"{value!r} is not a duration like '90m', '45s' or '1h30m'")
    return sum(float(match[unit] or 0) * factor for unit, factor in (("h", 3600), ("m", 60), ("s", 1)))


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Rate = Annotated[float, Field(ge=0.0)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Span(_Table):
    """A range of drill-time durations a value is drawn from uniformly."""

    low: Duration
    high: Duration

    @model_validator(mode="before")
    @classmethod
    def _pair(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            if len(value) != 2:
                raise ValueError("a range is [low, high]")
            return {"low": value[0], "high": value[1]}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Span:
        if self.high < self.low:
            raise ValueError("a range is [low, high] with low <= high")
        return self


def span(low: float, high: float) -> Span:
    return Span(low=low, high=high)


class CityPlan(_Table):
    """The embedded server's seeded city (simulators.city); ignored against a running server."""

    elders: int = Field(2000, ge=1, le=40_000)
    caregivers: int = Field(60, ge=1, le=20_000)
    clinics: int = Field(5, ge=0, le=100)
    seed: int = 7


class DevicePlan(_Table):
    count: int = Field(2000, ge=0, le=40_000)
    udp_share: Share = 0.2  # of DC-09 pendants, reporting over UDP instead of TCP
    encrypted_share: Share = 0.3  # of DC-09 pendants with an AES key (against a running server)
    ack_timeout: Duration = 5.0  # WALL seconds a device waits for its ACK before repeating
    max_attempts: int = Field(5, ge=1, le=50)
    checkin_every: Duration | None = None  # every device checks in at this interval, not its registered one
    silent_share: Share = 0.0  # devices that stop reporting for a while (missed check-ins)
    silent_at: Duration = 600.0
    silent_for: Duration = 1800.0
    battery_drain_per_hour: Rate = 1.0  # percentage points per drill hour
    low_battery_at: int = Field(15, ge=1, le=99)


class AlarmPlan(_Table):
    """Person alarms for the whole fleet, per drill hour (a Poisson process each)."""

    sos_per_hour: Rate = 12.0
    fall_per_hour: Rate = 4.0
    medical_per_hour: Rate = 2.0


class Burst(_Table):
    """A share of the devices report mains loss within a window (a power cut), restored later."""

    at: Duration
    share: Share
    within: Duration = 60.0
    restore_after: Duration | None = None


class HotlinePlan(_Table):
    calls_per_hour: Rate = 6.0
    unknown_share: Share = 0.25  # of calls, from a number that is nobody's in the registry
    emergency_share: Share = 0.25  # of calls, an emergency (the rest: services, questions, wrong numbers, silence)
    answer: Span = span(3, 20)  # ringing until an operator answers
    talk: Span = span(60, 240)


class Shift(_Table):
    """``count`` caregivers on duty from ``start`` to ``end`` (drill time; no end: to the drill's end)."""

    start: Duration = 0.0
    end: Duration | None = None
    count: int = Field(ge=0)


class CaregiverPlan(_Table):
    shifts: tuple[Shift, ...] = (Shift(count=40),)
    accept_p: Share = 0.85  # of offers answered, the share accepted (the rest declined)
    pocket_p: Share = 0.05  # of offers, missed (the phone is in a pocket): the offer expires
    no_show_share: Share = 0.0  # of caregivers on duty, those who never answer any offer
    answer: Span = span(10, 40)  # from offer to answer
    leave: Span = span(30, 120)  # from accepting to setting off
    care: Span = span(300, 1200)  # time on scene
    position_every: Duration = 120.0


class OperatorPlan(_Table):
    count: int = Field(3, ge=0, le=100)  # 0: nobody at the console (or, with --url, the real operators)
    acknowledge: Span = span(5, 20)  # reading a new alarm and acknowledging it
    settle: Span = span(30, 90)  # a phone call that settles a technical alarm
    settle_after: Duration = 120.0  # a technical alarm is settled this long after it was acknowledged
    manual: Span = span(30, 90)  # finding someone by phone for an incident that needs manual dispatch
    escalated_for: Duration = 900.0  # an incident handed to 120 is resolved after this
    classify: Span = span(15, 45)  # hearing an answered caller out and classifying the call (placing them)
    decide: Span = span(10, 40)  # reading a caregiver's "done" and deciding: resolve, or hand to 120
    callback: Span = span(30, 90)  # calling back a silent call
    callback_after: Duration = 300.0  # a silent call is called back this long after it was classified


class ServicePlan(_Table):
    """The service desk beside the alarms (simulators.services): off unless a rate is given. The drill's desk
    orders catalogue items for the drill's elders, assigns them to caregivers on shift, and those check in when
    the window opens and out when the item's minutes have passed."""

    orders_per_hour: Rate = 0.0
    lead: Span = span(600, 3600)  # from the order to the opening of its window
    reached: Share = 0.85  # of follow-up calls that fall due during the drill, the elder answers


class Targets(_Table):
    """Durations are met when the chosen percentile of the drill-time durations is within them."""

    percentile: float = Field(90.0, gt=0, le=100)
    acknowledged: Duration = 60.0  # the answer target: an operator has seen it
    offer: Duration = 10.0
    accepted: Duration = 180.0
    on_scene: Duration = 900.0  # the 15-minute care circle
    escalations: int = Field(0, ge=0)  # person alarms nobody acknowledged within the answer target
    manual_share: Share = 0.1  # of person incidents, those that needed manual dispatch
    undecided: int = Field(0, ge=0)  # person incidents with nobody coming and no decision at the end
    unoffered: int = Field(0, ge=0)  # person incidents never offered to anyone (unknown callers included)


class Scenario(_Table):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    title: str = ""
    description: str = ""
    duration: Duration = Field(gt=0)
    speedup: float = Field(40.0, gt=0, le=1000)
    drain: Duration = 1200.0  # after the traffic: time for jobs in hand to reach the door
    seed: int = 1
    city: CityPlan = CityPlan()
    devices: DevicePlan = DevicePlan()
    alarms: AlarmPlan = AlarmPlan()
    mains_loss: tuple[Burst, ...] = ()
    hotline: HotlinePlan = HotlinePlan()
    caregivers: CaregiverPlan = CaregiverPlan()
    operators: OperatorPlan = OperatorPlan()
    services: ServicePlan = ServicePlan()
    targets: Targets = Targets()

    def wall(self, drill_seconds: float) -> float:
        """How long a drill-time duration lasts on the wall clock."""
        return drill_seconds / self.speedup

    def with_speedup(self, speedup: float) -> Scenario:
        if not 0 < speedup <= 1000:
            raise ScenarioError("the speed-up is a number in (0, 1000]")
        return self.model_copy(update={"speedup": speedup})

    def with_seed(self, seed: int) -> Scenario:
        return self.model_copy(update={"seed": seed})


def scenario_path(name_or_path: str) -> Path:
    """A scenario file: the path itself when it exists, else ``simulators/scenarios/NAME.toml``."""
    given = Path(name_or_path)
    if given.suffix == ".toml" or given.exists():
        return given
    return SCENARIOS_DIR / f"{name_or_path}.toml"


def available() -> list[str]:
    return sorted(path.stem for path in SCENARIOS_DIR.glob("*.toml"))


def load(name_or_path: str) -> Scenario:
    path = scenario_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        names = ", ".join(available()) or "none"
        raise ScenarioError(f"no scenario {name_or_path!r} (known: {names})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not TOML: {exc}") from None
    raw.setdefault("name", path.stem)
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors())
        raise ScenarioError(f"{path}: {problems}") from None
