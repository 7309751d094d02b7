"""Keeping the registry from the console: elders leaving care, devices unbound, devices test-called (测试呼叫).

What it owns
    The registry's life besides saving a record: an elder leaving the centre's care and coming back, a device
    unbound from its elder, and a device's test call -- the window "test" opens, the test alarm that passes it,
    the window elapsing. The fold of the ``device.test_*`` entries (:class:`DeviceTests`, held by the
    projection), and the old and new values a registry entry keeps (:func:`changes`).

Rules
    1. Old and new. A registry save journals, for every changed field, its value before and after (JSON values;
       nothing before for a new record). A device's key is never written: :data:`KEY_CHANGED` stands for it
       (None when there is none).
    2. Leaving care. A supervisor deactivates an elder with a reason (moved away, died, entered a care home, or
       other, with words). The record is kept and readable, ``active=False``; each of their devices is unbound
       (one entry each); nothing is matched to them any more: not a caller's phone, not a search unless asked
       for, not a new alarm or incident. Reactivating brings the record back; devices are bound again by hand.
       ``active`` changes only this way, never by saving the record.
    3. Unbinding. An unbound device leaves the registry (store and directory) and its check-in clock stops;
       what it sends afterwards is an unknown device's (dispatch.supervision rule 6). A test running on it
       fails ("unbound"). Its open technical conditions (missed check-in, mains loss, low battery ...) are
       cleared as a restore clears them, with the outcome :data:`UNBOUND`: its own incident is resolved; it
       leaves a street's grouped incident (``incident.device_restored``), which the last device still affected
       resolves -- nothing it can no longer say keeps an incident open.
    4. Test call. "Test" opens a window of ``device_test_s`` on a bound device of an active elder (pressed
       again, the window starts again). The test is the elder pressing the button: an SOS (:data:`TEST_TYPES`)
       from the device inside the window, authenticated (an encrypted device's own key), while the elder has no
       open incident, is ACKed and journaled like any alarm but opens an incident of its own marked ``test``:
       offered to nobody, never escalated, resolved and closed at once as "test passed" (no follow-up call), and
       the test passes (``device.test_passed``). Anything else the device raises in the window -- a fire, a
       fall, a medical alarm, an SOS while the elder has an incident open, a frame without the device's key -- is
       a real alarm, handled as any other; it passes the test too (the device was heard, ``real``), and a note
       on the incident says it came in a test window. The window elapsing with nothing heard fails the test
       (``device.test_failed``). A drill device's test is journaled as drill.

Never
    Never write a device's key into the journal; never read a clock in the fold; never delete an elder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from dispatch.commands import Alarm
from dispatch.entries import (
    KEY_CHANGED,
    Closed,
    DeviceTestFailed,
    DeviceTestPassed,
    DeviceTestStarted,
    DeviceUnbound,
    ElderDeactivated,
    ElderReactivated,
    LeftCare,
    Note,
    Resolved,
)
from dispatch.errors import Conflict, InvalidInput
from dispatch.journal import Entry
from dispatch.registry import Device, Elder, Record
from dispatch.timers import Timers
from dispatch.triage import priority, rule

if TYPE_CHECKING:
    from dispatch.engine import Engine
    from dispatch.state import Incident

REASONS: tuple[LeftCare, ...] = get_args(LeftCare)
#: the fields whose values never reach the journal (rule 1)
SECRET_FIELDS = frozenset({"aes_key"})
TEST_PASSED = "test passed"
#: the alarms a test call is (rule 4): the elder pressing the button; anything else is treated as real
TEST_TYPES = frozenset({"sos"})
#: the note on a real alarm heard in a test window (the console words it: reasons.js)
REAL_IN_TEST = "raised during a test call: handled as a real alarm"
#: the outcome of a technical incident left without its device (rule 3)
UNBOUND = "device unbound"
TestState = Literal["running", "passed", "failed"]


def timer_key(device_id: str) -> tuple[str, str]:
    return ("device_test", device_id)


# -- rule 1: old and new ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Changes:
    """What a registry save changes: the fields, and their values before and after."""

    fields: tuple[str, ...] = ()
    old: dict[str, Any] = field(default_factory=dict)
    new: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.fields)


def changes(old: Record | None, new: Record) -> Changes:
    """The fields of ``new`` that differ from ``old`` (every field of a new record), with their JSON values."""
    names = tuple(type(new).model_fields)
    if old is not None:
        names = tuple(name for name in names if getattr(old, name) != getattr(new, name))
    if not names:
        return Changes()
    after = new.model_dump(mode="json", include=set(names))
    before = old.model_dump(mode="json", include=set(names)) if old is not None else {}
    for secret in SECRET_FIELDS.intersection(names):
        after[secret] = KEY_CHANGED if after.get(secret) is not None else None
        if old is not None:
            before[secret] = KEY_CHANGED if before.get(secret) is not None else None
    return Changes(names, before, after)


# -- rule 2: leaving care ----------------------------------------------------------------------------


def check_leaving(reason: str, words: str) -> LeftCare:
    if reason not in REASONS:
        raise InvalidInput(f"reason must be one of {', '.join(REASONS)}", field="reason", code="left_care_reason",
                           params={"reason": reason})  # fmt: skip
    if reason == "other" and not words.strip():
        raise InvalidInput("say why in words", field="words", code="reason_required")
    return reason  # one of REASONS, checked above


def require_active(elder: Elder) -> None:
    """Nothing new is attached to an elder who left the centre's care (rule 2)."""
    if not elder.active:
        raise Conflict(f"elder {elder.elder_id} left the centre's care", code="elder_inactive",
                       params={"elder": elder.name})  # fmt: skip


# -- rule 4: the fold of the tests -------------------------------------------------------------------


@dataclass(slots=True)
class DeviceTest:
    device_id: str
    elder_id: str
    started_at: float
    started_by: str
    until: float
    drill: bool
    state: TestState = "running"
    ended_at: float | None = None
    incident_id: str | None = None
    alarm_type: str | None = None
    reason: str = ""

    def running(self, now: float) -> bool:
        return self.state == "running" and now < self.until


@dataclass(slots=True)
class DeviceTests:
    """The last test of each device as the journal left it; the projection applies its entries here."""

    timers: Timers
    last: dict[str, DeviceTest] = field(default_factory=dict)

    def register(self, on: Callable[[type[Any], Callable[[Entry, Any], None]], None]) -> None:
        on(DeviceTestStarted, self.started)
        on(DeviceTestPassed, self.passed)
        on(DeviceTestFailed, self.failed)

    def started(self, entry: Entry, p: DeviceTestStarted) -> None:
        self.last[p.device_id] = DeviceTest(p.device_id, p.elder_id, entry.ts, entry.actor, p.until, entry.drill)
        self.timers.set(timer_key(p.device_id), p.until)

    def passed(self, entry: Entry, p: DeviceTestPassed) -> None:
        test = self._end(entry, p.device_id, "passed")
        test.incident_id, test.alarm_type = p.incident_id, p.alarm_type

    def failed(self, entry: Entry, p: DeviceTestFailed) -> None:
        self._end(entry, p.device_id, "failed").reason = p.reason

    def _end(self, entry: Entry, device_id: str, state: TestState) -> DeviceTest:
        test = self.last[device_id]
        test.state, test.ended_at = state, entry.ts
        self.timers.cancel(timer_key(device_id))
        return test

    def running(self, device_id: str, now: float) -> DeviceTest | None:
        test = self.last.get(device_id)
        return test if test is not None and test.running(now) else None


def test_view(test: DeviceTest | None) -> dict[str, Any] | None:
    if test is None:
        return None
    return {
        "device_id": test.device_id, "elder_id": test.elder_id, "state": test.state, "started_at": test.started_at,
        "started_by": test.started_by, "until": test.until, "ended_at": test.ended_at,
        "incident_id": test.incident_id, "alarm_type": test.alarm_type, "reason": test.reason, "drill": test.drill,
    }  # fmt: skip


# -- the commands (the engine's lock held) -----------------------------------------------------------


class KeepingDesk:
    """Deactivates and reactivates elders, unbinds devices, runs their tests. Every method: lock held."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def tests(self) -> DeviceTests:
        return self._engine.state.device_tests

    def left_care(self, elder: Elder, reason: LeftCare, words: str, devices: Sequence[Device], actor: str) -> None:
        """Rule 2: the elder (already saved inactive) left; their devices go with them."""
        self._engine.emit(ElderDeactivated(elder.elder_id, reason, words.strip()), actor=actor)
        for device in devices:
            self.unbound(device, "elder deactivated", actor)

    def came_back(self, elder: Elder, words: str, actor: str) -> None:
        self._engine.emit(ElderReactivated(elder.elder_id, words.strip()), actor=actor)

    def unbound(self, device: Device, reason: str, actor: str) -> None:
        """Rule 3 (the store row is deleted already)."""
        engine = self._engine
        engine.directory.drop_device(device.device_id)
        engine.state.timers.cancel(("checkin", device.device_id))
        engine.emit(DeviceUnbound(device.device_id, device.elder_id, device.protocol, reason), actor=actor,
                    drill=device.drill)  # fmt: skip
        if self.tests.running(device.device_id, engine.clock.now()) is not None:
            failed = DeviceTestFailed(device.device_id, "unbound", device.elder_id)
            engine.emit(failed, actor=actor, drill=device.drill)
        open_conditions = [key for key in engine.state.conditions if key[0] == device.device_id]
        for _, alarm_type, drill in open_conditions:
            engine.clear_condition(device.device_id, alarm_type, UNBOUND, actor, drill, last=UNBOUND)

    def start(self, device: Device, actor: str) -> DeviceTest:
        """Rule 4: open (or open again) the device's test window."""
        engine = self._engine
        require_active(engine.elder(device.elder_id))
        until = engine.clock.now() + engine.settings.device_test_s
        engine.emit(DeviceTestStarted(device.device_id, device.elder_id, until), actor=actor, drill=device.drill)
        return self.tests.last[device.device_id]

    def test_alarm(self, alarm: Alarm, *, authenticated: bool = True) -> Incident | None:
        """The test incident of a device under test (rule 4), closed at once; None when the alarm is not the
        test's and must be handled as real (see :meth:`heard`)."""
        engine = self._engine
        now = engine.clock.now()
        if alarm.device_id is None or rule(alarm.alarm_type).technical:
            return None
        if self.tests.running(alarm.device_id, now) is None:
            return None
        elder_id = alarm.elder.elder_id if alarm.elder is not None else None
        key = (elder_id or f"device:{alarm.device_id}", alarm.drill)  # whose incident it would join (state.person_key)
        if alarm.alarm_type not in TEST_TYPES or not authenticated or key in engine.state.open_by_elder:
            return None
        level, reasons = priority(alarm.alarm_type, alarm.elder, now)
        incident = engine.opened(alarm, level, reasons, technical=False, now=now, test=True)
        passed = DeviceTestPassed(alarm.device_id, incident.incident_id, alarm.alarm_type, elder_id or "")
        engine.emit(passed, actor=alarm.actor, drill=alarm.drill)
        engine.emit(Resolved(TEST_PASSED), actor="system", incident=incident)
        engine.emit(Closed(), actor="system", incident=incident)
        return incident

    def heard(self, alarm: Alarm, incident: Incident, *, authenticated: bool = True) -> None:
        """A real alarm from a device under test (rule 4): handled as real; the device was heard with its own
        key, so the test passes too, and the incident says the alarm came in a test window. A frame without
        the device's key passes nothing: the key typed at binding may be wrong."""
        engine = self._engine
        if alarm.device_id is None or rule(alarm.alarm_type).technical or not authenticated:
            return
        if self.tests.running(alarm.device_id, engine.clock.now()) is None:
            return
        elder_id = alarm.elder.elder_id if alarm.elder is not None else ""
        passed = DeviceTestPassed(alarm.device_id, incident.incident_id, alarm.alarm_type, elder_id, real=True)
        engine.emit(passed, actor=alarm.actor, drill=alarm.drill)
        engine.emit(Note(REAL_IN_TEST), actor="system", incident=incident)

    def expire(self, device_id: str, now: float) -> None:
        """The test window's timer fired: nothing was heard."""
        test = self.tests.last.get(device_id)
        if test is not None and test.state == "running" and now >= test.until:
            failed = DeviceTestFailed(device_id, elder_id=test.elder_id)
            self._engine.emit(failed, actor="system", drill=test.drill)
