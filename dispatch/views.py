"""Views: the projections as the JSON the console, the phones and the API show. Nothing here writes.

:class:`Views` is how the outer packages read the core: every read of incidents, responders, calls, elders
and the supervisor's figures goes through one of its methods, never through the projection or the directory
themselves. The functions below it build each view from the projection and the directory.

Caregivers get two different views of the same incident: before accepting, what they need to decide (type,
urgency, distance, community); after accepting, the address, phone and key notes.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from dispatch.assessment import DISEASES, LEVEL_NAMES, Flags, assessment_view, check_answers, due_list, due_view
from dispatch.assessment import DOMAINS as ASSESSMENT_DOMAINS
from dispatch.assessment import ITEMS as ASSESSMENT_ITEMS
from dispatch.assessment import REASONS as ASSESSMENT_REASONS
from dispatch.assessment import STANDARD as ASSESSMENT_STANDARD
from dispatch.assessment import score as score_assessment
from dispatch.carecalls import VisitFilter, day_list, day_of, elder_line, one_visit, visit_view
from dispatch.carecalls import entry_elder as care_call_elder
from dispatch.carecalls import visits as care_visit_list
from dispatch.clock import Clock, utc
from dispatch.coverage import check_hour
from dispatch.coverage import compute as compute_coverage
from dispatch.coverage import report as coverage_report
from dispatch.devices import UnknownInterval, UnknownTally
from dispatch.directory import Directory
from dispatch.duty import entry_place as duty_place
from dispatch.duty import history as duty_history
from dispatch.duty import scope_place, shift_view, summarise, summary_view
from dispatch.elderfile import (
    AUDIT_KINDS,
    TIMELINE_SECTIONS,
    Section,
    health_series,
    identity,
    line_view,
)
from dispatch.elderfile import assessment_view as file_assessment_view
from dispatch.entries import (
    TAKEN_BY_ANOTHER,
    TAKEN_OVER,
    AccountChanged,
    AccountCreated,
    AssessmentRecorded,
    AssignmentFact,
    AssignmentStatus,
    CallFact,
    DeviceSaved,
    DeviceTestFailed,
    DeviceTestPassed,
    DeviceTestStarted,
    DeviceUnbound,
    DutySummary,
    ElderDeactivated,
    ElderHealth,
    ElderPosition,
    ElderReactivated,
    ElderSaved,
    EldersMerged,
    ElderViewed,
    Fact,
    IncidentOpened,
    JournalGuard,
    LoginFailed,
    OfferAccepted,
    OfferDeclined,
    OfferExpired,
    OfferHeld,
    OfferMade,
    OfferWithdrawn,
    PositionImplausible,
    RecordsRead,
    ResponderDuty,
    ResponderPosition,
    ResponderSaved,
    ServiceFact,
    ServiceOrdered,
    UnknownAlarm,
    UnknownDevices,
    VouchersAllotted,
    VouchersCharged,
)
from dispatch.errors import InvalidInput, NotFound
from dispatch.exporter import Kind as ExportKind
from dispatch.exporter import to_csv
from dispatch.family import family_job, family_offer, is_kin, kin_contact, kin_name, kin_view
from dispatch.followups import (
    FollowUpBook,
    StateFilter,
    complaint_view,
    end_of_day,
    entry_place,
    evaluations,
    follow_up_view,
    select,
)
from dispatch.followups import complaints as complaint_list
from dispatch.followups import one as one_follow_up
from dispatch.govexport import Sources, check_format, parse_period
from dispatch.govexport import file_steps as gov_file_steps
from dispatch.govexport import fold as fold_gov_export
from dispatch.journal import Entry
from dispatch.keeping import test_view
from dispatch.machines import OPEN_STATES, AssignmentState, IncidentEvent, OrderState, incident_allows
from dispatch.periodreport import Pace, Period, Places, Steps, check_by, fold, period_of, run, run_on_loop
from dispatch.plans import (
    PlanBook,
    TaskFilter,
    local_day,
    one_plan,
    one_task,
    plan_view,
    select_plans,
    select_tasks,
    task_view,
)
from dispatch.plans import entry_elder as plan_elder
from dispatch.referrals import clinic_view, referral_view
from dispatch.registry import Device, Elder, Responder, normalise_phone
from dispatch.reportcsv import to_csv as report_csv
from dispatch.reports import Operational, escalations, kpis, operational
from dispatch.scopes import EVERYWHERE, Content, Placed, Reach, check_scope
from dispatch.services import CATEGORIES, UNITS, ServiceItem, catalogue
from dispatch.settings import Settings
from dispatch.state import Assignment, Call, DeviceStatus, Incident, NoteLine, Projection, ServiceOrder
from dispatch.triage import age_on
from dispatch.vouchers import (
    STATEMENT_BY,
    Balance,
    Charge,
    StatementBy,
    StatementRow,
    check_month,
    month_of,
    statement,
    statement_csv,
    total,
)

#: what a phone is told about each fact of its offer or job: the offer, the job as it now stands, or why the
#: offer closed
_PHONE_NEWS: dict[type[Fact], str] = {
    OfferMade: "offer",
    OfferAccepted: "job",
    AssignmentStatus: "job",
    OfferDeclined: "declined",
    OfferExpired: "expired",
    OfferHeld: "offer",  # the same offer, a new deadline: it keeps ringing
    OfferWithdrawn: "withdrawn",
}

#: gazetteer places that can point at one home (see dispatch.gazetteer): shown only in the person's reach
PRIVATE_PLACES = frozenset({"address", "building"})

#: the most a console's snapshot holds of each list (see Views.snapshot): a snapshot is built and encoded on the
#: event loop, and 500 consoles reconnecting to 6 MB each held SOS ACKs for 15 s; a centre's desk has tens of
#: open incidents and calls, a district a few thousand caregivers
SNAPSHOT_LIMITS = {"incidents": 1000, "responders": 5000, "calls": 500}
#: the longest a call on a desk phone is looked for (Views.desk_busy): older calls left open are the PBX's loss;
#: and the longest a call an operator placed may ring unanswered and still hold their desk (a PBX gives up sooner;
#: a record whose end never came must not keep the operator from dialling)
DESK_CALL_MAX_S = 4 * 3600.0
DESK_RING_MAX_S = 120.0

ELDER_LIST_FIELDS = {"elder_id", "name", "phone", "address", "lat", "lon", "community", "caregiver_id", "active"}


class Views:
    """The core's read side, for the console, the phones and the gateway's key lookup."""

    def __init__(
        self,
        state: Projection,
        directory: Directory,
        clock: Clock,
        settings: Settings,
        *,
        unknown: UnknownTally | None = None,
        protocols: Collection[str] = (),
    ) -> None:
        #: the device protocols this server speaks, for the registry page's bind form
        self.protocols = tuple(sorted(protocols))
        self._state = state
        self._directory = directory
        self._clock = clock
        self._settings = settings
        #: what unregistered devices said, interval by interval (the engine's supervision counts it)
        self._unknown = unknown
        #: where each stranger's incident was placed: (lat, lon, community)
        self._stranger_places: dict[str, tuple[float, float, str | None]] = {}

    # -- where things are in the network (see dispatch.scopes) ---------------------------------

    def incident_place(self, incident: Incident) -> str | None:
        """The elder's community; for a caller nobody knows, the registered community nearest to where the
        incident was placed, else the hotline line's part of the network; else None (the whole centre's).
        A grouped technical incident lies in its street (``district/street``): those who hold the street, its
        district or the centre see it."""
        if incident.group is not None:
            return incident.group
        if incident.elder_id is not None:
            elder = self._directory.elders.get(incident.elder_id)
            if elder is not None:
                return elder.community
        if incident.lat is not None and incident.lon is not None:
            # worked out once per point (a scan of the communities), not at every read of every list
            known = self._stranger_places.get(incident.incident_id)
            if known is None or known[:2] != (incident.lat, incident.lon):
                known = (incident.lat, incident.lon, self._directory.community_at(incident.lat, incident.lon))
                self._stranger_places[incident.incident_id] = known
            return known[2]
        call = self._state.calls.get(incident.call_id) if incident.call_id else None
        return self._settings.lines.get(call.line) if call is not None else None

    def call_place(self, call: Call) -> str | None:
        """The calling elder's community (the one picked, or the first of a household or of a family member's
        elders while nobody is picked), or the community of the elder a known family member calls about, or
        the incident's place, or the line's part of the network; else None (the whole centre's)."""
        elder = self._directory.elders.get(call.elder_id) if call.elder_id else None
        if elder is None:  # nobody picked yet: the household's first (one landline, one home), or a contact's
            offered = offered_elders(call, self._directory)
            elder = offered[0] if offered else None
        if elder is not None:
            return elder.community
        incident = self._state.incidents.get(call.incident_id) if call.incident_id else None
        place = self.incident_place(incident) if incident is not None else None
        return place or self._settings.lines.get(call.line)

    def elder_place(self, elder_id: str) -> str | None:
        elder = self._directory.elders.get(elder_id)
        return elder.community if elder is not None else None

    def community_at(self, lat: float, lon: float) -> str | None:
        """The registered community nearest to a point (where a stranger placed there belongs)."""
        return self._directory.community_at(lat, lon)

    def device_elder(self, device_id: str) -> str | None:
        device = self._directory.devices.get(device_id)
        return device.elder_id if device is not None else None

    def responder_place(self, responder_id: str) -> str | None:
        profile = self._directory.responders.get(responder_id)
        return profile.community if profile is not None else None

    def incident_placed(self, incident: Incident) -> Placed:
        shared = incident.group is not None  # a street's group: each of its communities sees it (scopes rule 4)
        return Placed(self.incident_place(incident), "work", incident.acknowledged_by, shared)

    def call_placed(self, call: Call) -> Placed:
        return Placed(self.call_place(call), "work", call_owner(call))

    def entry_scope(self, entry: Entry) -> Placed:
        """Where a journal entry lies in the network, what it holds, and who took on what it is about: who may
        receive it on a stream or read it in the journal."""
        fact = entry.fact
        if isinstance(fact, ElderHealth | ElderPosition):
            return Placed(self.elder_place(fact.elder_id), "health")
        if isinstance(fact, ElderViewed):
            return Placed(self.elder_place(fact.elder_id), "audit")
        if isinstance(fact, RecordsRead | LoginFailed | AccountCreated | AccountChanged | JournalGuard):
            return Placed(None, "audit")
        if isinstance(fact, UnknownDevices | UnknownAlarm):  # devices nobody registered: the supervisors'
            return Placed(None, "audit")
        if isinstance(fact, PositionImplausible) and entry.incident_id is None:  # whereabouts, like a position
            return Placed(self.elder_place(fact.elder_id), "health")
        incident_id = fact.incident_id if isinstance(fact, IncidentOpened) else entry.incident_id
        if incident_id is not None:  # an incident's opening names it in its body only (the envelope has none)
            incident = self._state.incidents.get(incident_id)
            return self.incident_placed(incident) if incident is not None else Placed(None)
        if isinstance(fact, CallFact):
            call = self._state.calls.get(fact.call_id)
            return self.call_placed(call) if call is not None else Placed(None)
        if (follow_up := entry_place(fact)) is not None:  # a follow-up lies in its elder's community
            return Placed(self.elder_place(follow_up[0]), follow_up[1])
        if (care_elder := care_call_elder(fact)) is not None:  # a care call lies in its elder's community
            return Placed(self.elder_place(care_elder))
        if (planned_for := plan_elder(fact)) is not None:  # so do a plan and its missed visits
            return Placed(self.elder_place(planned_for))
        if (shift := duty_place(fact)) is not None:  # a duty shift lies in its scope
            return shift
        if isinstance(fact, ServiceFact):  # a service order lies in its elder's community
            return self._order_scope(fact)
        if isinstance(fact, VouchersAllotted | VouchersCharged):  # an elder's money: their community's
            return Placed(fact.community if isinstance(fact, VouchersCharged) else self.elder_place(fact.elder_id))
        if isinstance(fact, ResponderDuty | ResponderPosition | ResponderSaved):
            return Placed(self.responder_place(fact.responder_id))
        if isinstance(fact, ElderSaved):
            return Placed(self.elder_place(fact.elder_id))
        if isinstance(fact, EldersMerged):  # both records lay in the merging person's reach
            return Placed(self.elder_place(fact.keep))
        if isinstance(fact, DeviceSaved):
            device = self._directory.devices.get(fact.device_id)
            return Placed(self.elder_place(device.elder_id) if device is not None else None)
        if isinstance(fact, ElderDeactivated | ElderReactivated | DeviceUnbound | DeviceTestStarted):
            return Placed(self.elder_place(fact.elder_id))  # dispatch.keeping: the elder's community
        if isinstance(fact, DeviceTestPassed | DeviceTestFailed):
            test = self._state.device_tests.last.get(fact.device_id)
            elder_id = fact.elder_id or (test.elder_id if test is not None else None)
            return Placed(self.elder_place(elder_id) if elder_id else None)
        if isinstance(fact, AssessmentRecorded):  # the needs assessment: health data, in the elder's community
            return Placed(self.elder_place(fact.elder_id), "health")
        return Placed(None)  # imports, unknown devices: the whole centre's

    def _incident(self, incident_id: str, reach: Reach) -> Incident:
        incident = self._state.incidents.get(incident_id)
        if incident is None or not reach.sees(self.incident_placed(incident)):
            raise NotFound(f"no incident {incident_id}", field="incident_id")  # outside: as if it did not exist
        return incident

    # -- incidents and the console --------------------------------------------------------------

    def incident(self, incident_id: str, reach: Reach) -> dict[str, Any]:
        return incident_view(self._incident(incident_id, reach), self._state, self._directory)

    def clinic_referrals(self, clinic_id: str, *, limit: int = 100) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The referrals sent to one clinic, open ones first then the newest (dispatch.referrals rule 4), and the
        elder each is about, by referral id (the list is a read of them; ``details`` in a view: with the name and
        the medical notes)."""
        book = self._state.referrals
        mine = [book.referrals[r] for r in book.by_clinic.get(clinic_id, ())]
        mine.sort(key=lambda r: (not r.open, -r.referred_at))
        views, shown = [], {}
        for referral in mine[:limit]:
            incident = self._state.incidents[referral.incident_id]
            views.append(clinic_view(referral, incident, self._directory, self._settings.timezone))
            if incident.elder_id is not None:
                shown[referral.referral_id] = incident.elder_id
        return views, shown

    def referral_incident(self, referral_id: str, reach: Reach) -> str:
        """The incident a referral is about, when the incident is in reach (else as if neither existed)."""
        referral = self._state.referrals.referrals.get(referral_id)
        if referral is None:
            raise NotFound(f"no referral {referral_id}", field="referral_id", code="unknown_referral")
        try:
            self._incident(referral.incident_id, reach)
        except NotFound:
            raise NotFound(f"no referral {referral_id}", field="referral_id", code="unknown_referral") from None
        return referral.incident_id

    def incident_elder(self, incident_id: str, reach: Reach) -> str | None:
        """The elder an incident in reach is about (whose data a read of it shows), or None."""
        return self._incident(incident_id, reach).elder_id

    def incidents(self, reach: Reach, *, open_only: bool = False, limit: int = 200) -> list[dict[str, Any]]:
        if reach.everywhere:
            chosen = sorted_incidents(self._state, open_only=open_only, limit=limit)
        else:
            within = lambda i: reach.sees(self.incident_placed(i))  # noqa: E731
            chosen = sorted_incidents(self._state, open_only=open_only, limit=limit, within=within)
        return [incident_view(i, self._state, self._directory) for i in chosen]

    def snapshot(self, seq: int, reach: Reach) -> dict[str, Any]:
        """What a console in this reach starts from, as of journal entry ``seq``, bounded (see SNAPSHOT_LIMITS):
        the open incidents, most urgent then oldest; the open calls, newest first; the responders, those on duty
        or working on one of its incidents first. ``truncated`` names the lists cut at their bound: the console
        pages the rest in with the API (``GET /api/incidents?open=true``, ``/api/calls?open=true``,
        ``/api/responders``)."""
        most = SNAPSHOT_LIMITS
        lists = {
            "incidents": self.incidents(reach, open_only=True, limit=most["incidents"] + 1),
            "responders": self._responders(reach, limit=most["responders"] + 1),
            "calls": self.calls(reach, open_only=True, limit=most["calls"] + 1),
        }
        truncated = [name for name, items in lists.items() if len(items) > most[name]]
        bounded = {name: items[: most[name]] for name, items in lists.items()}
        return {"type": "snapshot", "seq": seq, **bounded, "truncated": truncated}

    def calls(self, reach: Reach, *, open_only: bool = False, limit: int = 200) -> list[dict[str, Any]]:
        """Hotline calls, newest first: with ``open_only``, those still on an operator's desk (ringing, talking,
        answered and not yet classified, or to be called back)."""
        chosen: list[Call] = []
        for call in reversed(self._state.calls.values()):
            if len(chosen) >= limit:
                break
            if (call.open or not open_only) and (reach.everywhere or reach.sees(self.call_placed(call))):
                chosen.append(call)
        now = self._clock.now()
        return [call_view(c, self._directory, now, reach.covers) for c in chosen]

    def desk_busy(self, username: str, extension: str) -> str | None:
        """The call that holds ``username``'s desk phone now, if any: one they placed through the PBX that has not
        ended (and, unanswered, rang for less than :data:`DESK_RING_MAX_S`), or one answered at their
        ``extension`` (or handed to them) still going. A call is looked for among those that rang in the last
        :data:`DESK_CALL_MAX_S` seconds only (a desk call lasts less)."""
        since = self._clock.now() - DESK_CALL_MAX_S
        for call in reversed(self._state.calls.values()):
            if call.started_at < since:
                break
            if call.state == "ended":
                continue
            ringing_long = call.answered_at is None and call.started_at < self._clock.now() - DESK_RING_MAX_S
            dialled = call.direction == "out" and _user_of(call.dialed_by) == username and not ringing_long
            talking = call.answered_at is not None and (
                _user_of(call.handler) == username or (bool(extension) and call.extension == extension)
            )
            if dialled or talking:
                return call.call_id
        return None

    def _call(self, call_id: str, reach: Reach) -> Call:
        call = self._state.calls.get(call_id)
        if call is None or not reach.sees(self.call_placed(call)):
            raise NotFound(f"no call {call_id}", field="call_id")  # outside: as if it did not exist
        return call

    def call_in_reach(self, call_id: str, reach: Reach) -> None:
        """NotFound unless the call exists and the reader may see it."""
        self._call(call_id, reach)

    def incident_in_reach(self, incident_id: str, reach: Reach) -> None:
        """NotFound unless the incident exists and the reader may see it."""
        self._incident(incident_id, reach)

    def call(self, call_id: str, reach: Reach) -> dict[str, Any]:
        return call_view(self._call(call_id, reach), self._directory, self._clock.now(), reach.covers)

    def call_elders(self, call_id: str, reach: Reach) -> list[str]:
        """The elders whose data a call in reach shows: the one it is about (the caller, the one picked, or whom
        a family member calls about), or every elder it offers while nobody is picked (a household's landline,
        a family member of several elders)."""
        call = self._call(call_id, reach)
        if call.elder_id is not None:
            return [call.elder_id]
        return [e.elder_id for e in offered_elders(call, self._directory) if reach.covers(e.community)]

    def kpis(self, reach: Reach, *, include_drill: bool = False) -> dict[str, Any]:
        state, now, tz = self._state, self._clock.now(), self._settings.timezone
        target = self._settings.answer_target_s
        if reach.everywhere:
            return kpis(state, now, tz, include_drill=include_drill, target_s=target)
        return kpis(
            state,
            now,
            tz,
            include_drill=include_drill,
            target_s=target,
            incidents=[i for i in state.incidents.values() if reach.sees(self.incident_placed(i))],
            calls=[c for c in state.calls.values() if reach.sees(self.call_placed(c))],
            responders=[r for r in state.responders.values() if reach.covers(self.responder_place(r.responder_id))],
        )

    def period_report(
        self,
        reach: Reach,
        *,
        by: str = "community",
        month: str | None = None,
        start: str | None = None,
        end: str | None = None,
        include_drill: bool = False,
    ) -> dict[str, Any]:
        """The period report of :meth:`period_fold`, all at once (a script, the tests: never on the event loop
        with a year of a city)."""
        return run(self.period_fold(reach, by=by, month=month, start=start, end=end, include_drill=include_drill))

    async def period_report_on_loop(
        self,
        reach: Reach,
        *,
        by: str = "community",
        month: str | None = None,
        start: str | None = None,
        end: str | None = None,
        include_drill: bool = False,
    ) -> dict[str, Any]:
        """The period report of :meth:`period_fold`, a slice at a time, the event loop answering devices and
        pages between the slices (the console's routes)."""
        steps = self.period_fold(reach, by=by, month=month, start=start, end=end, include_drill=include_drill)
        return await run_on_loop(steps)

    def period_fold(
        self,
        reach: Reach,
        *,
        by: str = "community",
        month: str | None = None,
        start: str | None = None,
        end: str | None = None,
        include_drill: bool = False,
        pace: Pace | None = None,
    ) -> Steps[dict[str, Any]]:
        """The period report (dispatch.periodreport) of the reader's part of the network, as work in slices: a
        month or local days ``start`` to ``end``; by district, street or community. Whatever lies outside their
        reach is left out, from the areas and from the totals alike (an area is in reach when its place is,
        whoever took it on). The parameters are checked here, at the call (InvalidInput), before any slice."""
        tz, now = self._settings.timezone, self._clock.now()
        period = period_of(tz, now, month=month, start=start, end=end)
        level = check_by(by)

        def within(place: str | None) -> str | None:
            return (place or "") if reach.covers(place) else None

        places = Places(
            incident=lambda i: within(self.incident_place(i)),
            call=lambda c: within(self.call_place(c)),
            elder=lambda e: within(self.elder_place(e)),
        )
        return fold(self._state, period, level, places, self._responder_name, include_drill=include_drill,
                    generated_at=now, pace=pace)  # fmt: skip

    def period_report_csv(self, report: dict[str, Any]) -> str:
        """A period report as one flat CSV table (dispatch.reportcsv), byte-order mark first."""
        return report_csv(report)

    def _responder_name(self, responder_id: str) -> tuple[str, str]:
        profile = self._directory.responders.get(responder_id)
        if profile is None:  # a family member or a volunteer of the circle's last rings, not in the registry
            return "", "other"
        return profile.name, profile.kind

    def operational(self) -> Operational:
        """The whole centre's open incidents as numbers, for the operations' metrics (no scope: no person's data)."""
        return operational(self._state, self._clock.now())

    def escalations(self, reach: Reach, *, include_drill: bool = False) -> list[dict[str, Any]]:
        waiting = escalations(self._state, include_drill=include_drill)
        return [incident_view(i, self._state, self._directory) for i in waiting if reach.sees(self.incident_placed(i))]

    def unknown_alerts(self, reach: Reach) -> list[dict[str, Any]]:
        """Alarms from devices nobody registered, one alert per interval (newest first; the open interval's
        counts still grow): the whole centre's, for supervisors (see dispatch.supervision, rule 6)."""
        if self._unknown is None or not reach.sees(Placed(None, "audit")):
            return []
        return [unknown_alert_view(interval) for interval in self._unknown.alerts()]

    # -- responders and phones ------------------------------------------------------------------

    def kin(self, responder_id: str) -> tuple[str, str, bool] | None:
        """A family member's kin id (dispatch.family): the elder's community, the contact's name, whether they
        answer on the phone page; None when no elder has that contact."""
        found = kin_contact(self._directory.elders, responder_id)
        return (found[0].community, found[1].name, found[1].app) if found else None

    def has_responder(self, responder_id: str) -> bool:
        return responder_id in self._directory.responders

    def responder_name(self, responder_id: str) -> str:
        profile = self._directory.responders.get(responder_id)
        return profile.name if profile is not None else responder_id

    def is_clinic(self, responder_id: str) -> bool:
        profile = self._directory.responders.get(responder_id)
        return profile is not None and profile.kind == "clinic"

    def responders(self, reach: Reach) -> list[dict[str, Any]]:
        """The responders of this reach, and those of elsewhere now working on one of its incidents."""
        return self._responders(reach)

    def _responders(self, reach: Reach, *, limit: int | None = None) -> list[dict[str, Any]]:
        """:meth:`responders`; with a ``limit``, those on duty or working first, and no more views built."""
        now = self._clock.now()
        helping = set()
        if not reach.everywhere:
            for assignment in self._state.assignments.values():
                if assignment.active:
                    incident = self._state.incidents.get(assignment.incident_id)
                    if incident is not None and reach.sees(self.incident_placed(incident)):
                        helping.add(assignment.responder_id)
        chosen = [
            r for r, profile in self._directory.responders.items() if r in helping or reach.covers(profile.community)
        ]
        if limit is not None and len(chosen) > limit:
            statuses = self._state.responders
            busy = [r for r in chosen if (s := statuses.get(r)) is not None and (s.on_duty or s.assignment_id)]
            taken = set(busy)
            chosen = (busy + [r for r in chosen if r not in taken])[:limit]
        return [responder_view(r, self._state, self._directory, now) for r in chosen]

    def responder(self, responder_id: str) -> dict[str, Any]:
        if responder_id not in self._directory.responders:
            raise NotFound(f"no responder {responder_id}", field="responder_id")
        return responder_view(responder_id, self._state, self._directory, self._clock.now())

    def responder_record(self, responder_id: str, reach: Reach) -> dict[str, Any]:
        """A responder's registry record as it was saved (base position, phone, on_call), for the admin's form;
        one based outside the reach is as if it did not exist."""
        profile = self._directory.responders.get(responder_id)
        if profile is None or not reach.covers(profile.community):
            raise NotFound(f"no responder {responder_id}", field="responder_id")
        record: dict[str, Any] = profile.model_dump(mode="json")
        return record

    def hello(self, responder_id: str) -> dict[str, Any]:
        """A phone's first message after every (re)connect: who they are and their current offer or job."""
        status = self._state.responders.get(responder_id)
        offer = job = None
        if status is not None and status.assignment_id is not None:
            assignment = self._state.assignments[status.assignment_id]
            incident = self._state.incidents[assignment.incident_id]
            if assignment.state is AssignmentState.OFFERED:
                offer = offer_view(assignment, incident, self._directory, self._settings.centre_phone)
            else:
                job = job_view(assignment, incident, self._directory, self._clock.now(), self._settings.centre_phone)
        if is_kin(responder_id):  # a family member (dispatch.family)
            me = kin_view(self._directory.elders, responder_id, status.assignment_id if status else None)
            return {"type": "hello", "responder": me, "offer": offer, "job": job}
        return {"type": "hello", "responder": self.responder(responder_id), "offer": offer, "job": job}

    def phone_message(self, fact: AssignmentFact) -> dict[str, Any] | None:
        """What the responder's phone is told about a fact of their offer or job (None: nothing)."""
        assignment = self._state.assignments.get(fact.assignment_id)
        if assignment is None:
            return None
        incident = self._state.incidents[assignment.incident_id]
        news = _PHONE_NEWS[type(fact)]
        if news == "offer":
            return {"type": "offer", **offer_view(assignment, incident, self._directory, self._settings.centre_phone)}
        if news == "job":
            now = self._clock.now()
            return {"type": "job", **job_view(assignment, incident, self._directory, now, self._settings.centre_phone)}
        if isinstance(fact, OfferWithdrawn) and fact.reason == TAKEN_BY_ANOTHER:
            news = "taken"  # offered to several at once: another took it, nobody needs to go
        elif isinstance(fact, OfferWithdrawn) and fact.reason == TAKEN_OVER:
            news = "taken_over"  # on the way, and someone nearer took over: turn back
        return {"type": "offer_closed", "assignment_id": assignment.assignment_id, "reason": news}

    def job_updates(self, incident_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The job as it now stands, for each responder working on this incident (after a shared note, a new
        place): (responder id, message)."""
        incident = self._state.incidents.get(incident_id)
        if incident is None:
            return []
        now = self._clock.now()
        return [
            (
                a.responder_id,
                {"type": "job", **job_view(a, incident, self._directory, now, self._settings.centre_phone)},
            )
            for a in (self._state.assignments[i] for i in incident.assignments)
            if a.active and a.state is not AssignmentState.OFFERED
        ]

    # -- the registry ---------------------------------------------------------------------------

    def elders(
        self, reach: Reach, *, community: str | None, limit: int, offset: int, inactive: bool = False
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the registry list in reach (identity, address and community only) and the total; those who
        left the centre's care only when asked for (``inactive``, dispatch.keeping rule 2)."""
        elders = [
            e
            for e in self._directory.elders.values()
            if (community is None or e.community == community or e.community.startswith(community + "/"))
            and reach.covers(e.community)
            and (e.active or inactive)
        ]
        page = elders[offset : offset + limit]
        return [e.model_dump(mode="json", include=ELDER_LIST_FIELDS) for e in page], len(elders)

    def registry_export(self, kind: ExportKind, reach: Reach) -> tuple[str, int]:
        """Every record of one kind in reach as the import's CSV text (dispatch.exporter), and how many: elders of
        its communities, their devices, responders based there (journal the read first)."""
        directory = self._directory
        records: list[Elder] | list[Device] | list[Responder]
        if kind == "elders":
            records = [e for e in directory.elders.values() if reach.covers(e.community)]
        elif kind == "devices":
            records = [d for d in directory.devices.values() if reach.covers(self.elder_place(d.elder_id))]
        else:
            records = [r for r in directory.responders.values() if reach.covers(r.community)]
        return to_csv(kind, records), len(records)

    def gov_period(self, text: str) -> Period:
        """A period of the government platform's export (dispatch.govexport rule 1), in the centre's time zone."""
        return parse_period(text, self._settings.timezone)

    def gov_export(self, period: Period, *, include_drill: bool = False) -> dict[str, Any]:
        """The government platform's export of :meth:`gov_fold`, all at once (the command, the tests)."""
        return run(self.gov_fold(period, include_drill=include_drill))

    async def gov_export_on_loop(self, period: Period, *, include_drill: bool = False) -> dict[str, Any]:
        """The government platform's export of :meth:`gov_fold`, a slice at a time, the event loop answering
        devices and pages between the slices (the console's route)."""
        return await run_on_loop(self.gov_fold(period, include_drill=include_drill))

    def gov_fold(
        self, period: Period, *, include_drill: bool = False, pace: Pace | None = None
    ) -> Steps[dict[str, Any]]:
        """The government platform's export of the whole centre (dispatch.govexport; journal the read first), as
        work in slices like the period report's, read from the projection alone."""
        settings = self._settings
        sources = Sources(self._state, self._directory.elders, self.incident_place)
        return fold_gov_export(sources, period, generated_at=self._clock.now(), centre=settings.centre_name,
                               names=settings.export_names, include_drill=include_drill, pace=pace)  # fmt: skip

    def gov_format(self, text: str) -> str:
        return check_format(text)

    def gov_file(self, document: dict[str, Any], fmt: str) -> tuple[bytes, str]:
        """The export as a file: JSON, or the zip of its three CSV files (``csv``); and the file's name."""
        return run(gov_file_steps(document, fmt, Pace()))

    async def gov_file_on_loop(self, document: dict[str, Any], fmt: str) -> tuple[bytes, str]:
        """:meth:`gov_file` written a slice at a time, the event loop answering devices between the slices."""
        return await run_on_loop(gov_file_steps(document, fmt, Pace()))

    def search_elders(self, q: str, reach: Reach, *, limit: int = 20, inactive: bool = False) -> list[dict[str, Any]]:
        """Elders in reach matching what an operator typed (name, pinyin initials, a phone or its last digits,
        a contact's phone, the address, the id), best first, each with what matched; those who left the centre's
        care only when asked for (``inactive``, dispatch.keeping rule 2)."""
        elders = self._directory.elders

        def shown(elder_id: str) -> bool:
            elder = elders.get(elder_id)
            return elder is not None and (elder.active or inactive) and reach.covers(elder.community)

        within = None if reach.everywhere and inactive else shown
        found = []
        for hit in self._directory.search.search(q, limit, within):
            elder = elders.get(hit.elder_id)
            if elder is not None:
                found.append({**elder.model_dump(mode="json", include=ELDER_LIST_FIELDS), "matched": hit.matched})
        return found

    def places(self, q: str, reach: Reach, *, limit: int = 10) -> list[dict[str, Any]]:
        """Places of the registry's gazetteer matching a typed address, most specific first. Districts, streets,
        communities and roads are anyone's; a building or a flat (where an elder lives) only in reach."""
        wanted = limit if reach.everywhere else 50
        found = self._directory.places.geocode(q, exactly_one=False, limit=wanted) or []
        shown = [
            {"label": place.address, "lat": place.latitude, "lon": place.longitude, "kind": place.raw.get("kind")}
            for place in found
            if place.raw.get("kind") not in PRIVATE_PLACES
            or reach.covers(self._directory.community_at(place.latitude, place.longitude))
        ]
        return shown[:limit]

    def geocode(self, address: str) -> tuple[float, float, str] | None:
        """The best place for a typed address: (lat, lon, the place's name), or None when nothing matches."""
        place = self._directory.places.geocode(address, exactly_one=True)
        return (place.latitude, place.longitude, place.address) if place is not None else None

    def elder_in_reach(self, elder_id: str, reach: Reach) -> Elder:
        elder = self._directory.elders.get(elder_id)
        if elder is None or not reach.covers(elder.community):
            raise NotFound(f"no elder {elder_id}", field="elder_id")
        return elder

    def elder_record(self, elder_id: str, reach: Reach) -> dict[str, Any]:
        """The whole record, with the elder's devices and recent incidents (journal the read first)."""
        elder = self.elder_in_reach(elder_id, reach)
        record: dict[str, Any] = elder.model_dump(mode="json")
        tests = self._state.device_tests.last
        record["devices"] = [
            {**device_view(d, self._state.devices.get(d.device_id), whereabouts="health" in reach.contents),
             "keyed": d.aes_key is not None, "test": test_view(tests.get(d.device_id))}
            for d in self._directory.devices.values()
            if d.elder_id == elder_id
        ]  # fmt: skip
        record["recent_incidents"] = elder_incidents(self._state, elder_id)
        return record

    def reads_of(self, elder_id: str, reach: Reach, *, limit: int = 200) -> list[dict[str, Any]]:
        """Who read this elder's personal data, newest first: their record, an incident or call about them, a
        search that listed them, and the registry lists that could hold them (the community a list asked for, or
        its reader's scopes, covers theirs; "" from before scopes existed: the whole centre)."""
        elder = self.elder_in_reach(elder_id, reach)
        lists = [
            line
            for line in self._state.list_reads
            if Reach(tuple((line.subject or EVERYWHERE).split(","))).covers(elder.community)
        ]
        lines = sorted([*self._state.reads.get(elder_id, ()), *lists], key=lambda line: -line.ts)
        return [
            {"ts": line.ts, "actor": line.actor, "actor_name": actor_name(line.actor, self._directory),
             "what": line.what, "subject": line.subject, "count": line.count, "why": line.why}
            for line in lines[:limit]
        ]  # fmt: skip

    def coverage_records(self, reach: Reach) -> tuple[list[Elder], list[Responder]]:
        """What the coverage plan (dispatch.coverage) is computed from: the elders in reach, and every responder,
        since one from the next street may be the nearest help. A copy, for :meth:`coverage` off the event loop."""
        elders = [elder for elder in self._directory.elders.values() if reach.covers(elder.community)]
        return elders, list(self._directory.responders.values())

    def coverage(
        self, records: tuple[list[Elder], list[Responder]], reach: Reach, *, hour: int | None, target_s: float
    ) -> dict[str, Any]:
        """The coverage plan of :meth:`coverage_records` as JSON (dispatch.coverage ``report``): the responders
        counted from anywhere, those in reach listed. It reads only ``records``, so it may run in a thread."""
        if hour is not None:
            check_hour(hour)
        elders, responders = records
        computed = compute_coverage(elders, responders, target_s=target_s)
        shown = [r for r in computed.responders if reach.covers(r.community)]
        return coverage_report(computed, hour=hour, responders_shown=shown)

    def communities(self, reach: Reach) -> dict[str, dict[str, dict[str, int]]]:
        """The district / street / community tree in reach, with the number of elders in each community."""
        tree: dict[str, dict[str, dict[str, int]]] = {}
        for elder in self._directory.elders.values():
            if reach.covers(elder.community):
                district, street, community = elder.community.split("/")
                streets = tree.setdefault(district, {}).setdefault(street, {})
                streets[community] = streets.get(community, 0) + 1
        for responder in self._directory.responders.values():
            if reach.covers(responder.community):
                district, street, community = responder.community.split("/")
                tree.setdefault(district, {}).setdefault(street, {}).setdefault(community, 0)
        return tree

    def name_staff(self, names: Mapping[str, str]) -> None:
        """Learn (or correct) the names of staff accounts, by username (an empty name: the username shows)."""
        for username, name in names.items():
            if name:
                self._directory.staff_names[username] = name
            else:
                self._directory.staff_names.pop(username, None)

    def device_key(self, device_id: str) -> bytes | None:
        """A device's AES key, for the gateway's codecs (None: no key, or no such device)."""
        device = self._directory.devices.get(device_id)
        if device is None or device.aes_key is None:
            return None
        return bytes.fromhex(device.aes_key)

    # -- the service desk (dispatch.services) --------------------------------------------------------

    def _order_scope(self, fact: ServiceFact) -> Placed:
        if isinstance(fact, ServiceOrdered):
            return Placed(self.elder_place(fact.elder_id))
        order = self._state.service_orders.get(fact.order_id)
        return Placed(self.elder_place(order.elder_id)) if order is not None else Placed(None)

    def order_placed(self, order: ServiceOrder) -> Placed:
        """A service order lies in its elder's community; it is ordinary work (rule 1 of dispatch.scopes)."""
        return Placed(self.elder_place(order.elder_id))

    def services(self) -> list[dict[str, Any]]:
        """The catalogue in force, in its order: the menu anyone logged in may read (no personal data)."""
        return [service_item_view(item) for item in catalogue(self._settings.service_catalogue).items]

    def providers(self) -> list[dict[str, Any]]:
        """Who delivers the services: the centre first, then the contracted organisations, with whom to call."""
        return [p.model_dump(mode="json") for p in catalogue(self._settings.service_catalogue).providers.values()]

    def _order(self, order_id: str, reach: Reach, responder: str | None) -> ServiceOrder:
        order = self._state.service_orders.get(order_id)
        if order is None or not self._order_visible(order, reach, responder):
            raise NotFound(f"no service order {order_id}", field="order_id", code="unknown_service_order")
        return order

    def _order_visible(self, order: ServiceOrder, reach: Reach, responder: str | None) -> bool:
        """In reach; or, for a caregiver (``responder``: who they are), assigned to them and still to do, or done
        within :data:`CAREGIVER_KEEPS_S` (a door code or a phone number is theirs while the visit is)."""
        if responder is not None:
            recent = order.open or self._clock.now() - order.updated_at < CAREGIVER_KEEPS_S
            return order.responder_id == responder and recent
        return reach.everywhere or reach.sees(self.order_placed(order))

    def service_order(self, order_id: str, reach: Reach, *, responder: str | None = None) -> dict[str, Any]:
        """One order in reach (a caregiver: one assigned to them); otherwise as if it did not exist."""
        return service_order_view(self._order(order_id, reach, responder), self._directory)

    def service_order_elder(self, order_id: str, reach: Reach, *, responder: str | None = None) -> str:
        """The elder an order in reach is for (whose data a read of it shows)."""
        return self._order(order_id, reach, responder).elder_id

    def order_holder(self, order_id: str) -> str | None:
        """The caregiver an open order is assigned to (whose phone lists it); None when nobody or it is over."""
        order = self._state.service_orders.get(order_id)
        return order.responder_id if order is not None and order.open else None

    def service_orders(
        self,
        reach: Reach,
        *,
        elder: str | None = None,
        state: str | None = None,
        limit: int = 200,
        responder: str | None = None,
    ) -> list[dict[str, Any]]:
        """Service orders in reach, newest first (in one state: the latest to reach it first), of one elder and
        in one state when asked; a caregiver (``responder``) gets the orders assigned to them."""
        chosen: list[ServiceOrder] = []
        orders = self._state.service_orders
        if state is not None:  # only the orders in that state (an index), not the whole history
            try:
                ids = self._state.orders_in[OrderState(state)]
            except ValueError:
                return []
            candidates: Iterable[ServiceOrder] = (orders[o] for o in reversed(ids))
        else:
            candidates = reversed(orders.values())
        for order in candidates:
            if len(chosen) >= limit:
                break
            if elder is not None and order.elder_id != elder:
                continue
            if self._order_visible(order, reach, responder):
                chosen.append(order)
        return [service_order_view(o, self._directory) for o in chosen]

    # -- vouchers and statements (dispatch.vouchers; charged by the engine at delivery) -------------------

    def vouchers(self, elder_id: str, reach: Reach) -> dict[str, Any]:
        """An elder's vouchers (journal the read first): this month's balance (before the month's first delivery,
        what the rules will allot: ``allotted`` false), the earlier months' newest first, and every charge of
        theirs, newest first. Outside the reader's reach: as if the elder did not exist."""
        elder = self.elder_in_reach(elder_id, reach)
        ledger = self._state.ledger
        month = month_of(self._clock.now(), self._settings.timezone)
        current = balance_view(ledger.balance(elder_id, month), (elder_id, month) in self._state.allotted)
        if not current["allotted"]:
            allotment = ledger.rules.allotment(elder.entitlement, elder.care_level)
            current["allotted_fen"] = current["available_fen"] = allotment
        earlier = [b for b in ledger.balances(elder_id) if b.month < month]
        charges = [c for c in ledger.charges(include_voided=True) if c.delivery.elder == elder_id]
        return {
            "elder_id": elder_id,
            "name": elder.name,
            "entitlement": elder.entitlement,
            "month": month,
            "current": current,
            "months": [balance_view(b, (elder_id, b.month) in self._state.allotted) for b in reversed(earlier)],
            "charges": [charge_view(c) for c in reversed(charges)],
        }

    def statement(self, month: str, by: str, reach: Reach) -> dict[str, Any]:
        """A month's statement by elder, provider or community: one row per key (elders named), sums exact in
        fen, and the total. Only the deliveries made in the reader's reach (the elder's community at delivery)
        are in it, so a street's supervisor gets their street's statement."""
        rows, labels = self._statement(month, by, reach)
        every = total(rows)
        return {
            "month": month,
            "by": by,
            "rows": [{**statement_row_view(row), "name": labels.get(row.key, row.key)} for row in rows],
            "total": statement_row_view(every),
        }

    def statement_csv(self, month: str, by: str, reach: Reach, *, chinese: bool = False) -> str:
        """The same statement as CSV text (dispatch.vouchers.statement_csv): yuan, a header, the total last."""
        rows, labels = self._statement(month, by, reach)
        by_ = _statement_by(by)
        return statement_csv(rows, by_, chinese=chinese, labels=labels if by_ != "community" else None)

    def statement_elders(self, month: str, by: str, reach: Reach) -> list[str]:
        """The elders a statement by elder names (whose data a read of it shows); none for the other kinds."""
        if _statement_by(by) != "elder":
            return []
        return [row.key for row in self._statement(month, by, reach)[0]]

    def _statement(self, month: str, by: str, reach: Reach) -> tuple[list[StatementRow], dict[str, str]]:
        try:
            check_month(month)
        except InvalidInput:
            raise InvalidInput(f"month must read YYYY-MM, not {month!r}", field="month",
                               code="statement_month") from None  # fmt: skip
        by_ = _statement_by(by)
        charges = [c for c in self._state.ledger.charges(month) if reach.covers(c.delivery.community)]
        rows = statement(charges, month, by_)
        labels: dict[str, str] = {}
        if by_ == "elder":
            for row in rows:
                elder = self._directory.elders.get(row.key)
                labels[row.key] = elder.name if elder is not None else ""
        elif by_ == "provider":
            providers = catalogue(self._settings.service_catalogue).providers
            for row in rows:
                provider = providers.get(row.key)
                labels[row.key] = provider.name_zh if provider is not None else ""
        return rows, labels

    # -- follow-ups (dispatch.followups) -------------------------------------------------------------

    def _elder_seen(self, reach: Reach, content: Content = "work") -> Callable[[str], bool]:
        """Whether a thing about this elder is in reach (it lies in the elder's community)."""
        return lambda elder_id: reach.sees(Placed(self.elder_place(elder_id), content))

    @property
    def _follow_ups(self) -> FollowUpBook:
        return self._state.follow_ups

    def follow_ups(
        self, reach: Reach, *, due_before: float | None = None, state: StateFilter = "open", limit: int = 200
    ) -> list[dict[str, Any]]:
        """Follow-ups in reach, soonest due first: open, done (or unreachable) or all; due before a time."""
        chosen = select(self._follow_ups, self._elder_seen(reach), due_before=due_before, state=state, limit=limit)
        return [follow_up_view(f, self._directory) for f in chosen]

    def follow_up(self, follow_up_id: str, reach: Reach) -> dict[str, Any]:
        """One follow-up in reach; otherwise as if it did not exist."""
        return follow_up_view(one_follow_up(self._follow_ups, follow_up_id, self._elder_seen(reach)), self._directory)

    def follow_up_day_end(self, day: str) -> float:
        """The end of a local day (``YYYY-MM-DD`` or ``today``): what is due by then is that day's list."""
        return end_of_day(day, self._clock.now(), self._settings.timezone)

    def complaints(self, reach: Reach, *, limit: int = 200) -> list[dict[str, Any]]:
        """Complaints heard on follow-ups, open ones first, newest first: the supervisors' tasks in their reach."""
        return complaint_list(self._follow_ups, self._elder_seen(reach, "audit"), self._directory, limit)

    def complaint(self, complaint_id: str, reach: Reach) -> dict[str, Any]:
        """One complaint in reach; otherwise as if it did not exist."""
        complaint = self._follow_ups.complaints.get(complaint_id)
        if complaint is None or not self._elder_seen(reach, "audit")(complaint.elder_id):
            raise NotFound(f"no complaint {complaint_id}", field="complaint_id", code="unknown_complaint")
        return complaint_view(complaint, self._follow_ups.follow_ups[complaint.follow_up_id], self._directory)

    def evaluations(self, reach: Reach) -> list[dict[str, Any]]:
        """Each responder's mean satisfaction from the follow-ups of their work in reach, and its count."""
        return evaluations(self._follow_ups, self._elder_seen(reach), self._directory)

    # -- needs assessments (dispatch.assessment) -----------------------------------------------------

    def assessments(self, elder_id: str, reach: Reach) -> dict[str, Any]:
        """An elder's assessments, newest first, their care level and when the next assessment is due."""
        elder = self.elder_in_reach(elder_id, reach)
        book = self._state.assessments
        history = [assessment_view(line, self._actor_name) for line in reversed(book.by_elder.get(elder_id, []))]
        due = book.due(elder_id, self._settings.reassess_after_days * 86400.0) if elder.active else None
        now = self._clock.now()
        month_ago = now - 30 * 86400.0
        falls = sum(  # the falls the centre attended (not a drill, a test call, nor a false alarm cancelled)
            1
            for i in self._state.incidents.values()
            if i.elder_id == elder_id
            and not (i.drill or i.test)
            and (i.open or i.outcome is not None)  # a false alarm, cancelled, is no fall
            and i.opened_at >= month_ago
            and i.alarm_type == "fall"
        )
        return {"elder_id": elder_id, "name": elder.name, "birth_date": elder.birth_date, "community": elder.community,
                "care_level": elder.care_level, "lives_with": elder.lives_with, "active": elder.active,
                "recent_falls": falls, "due": due_view(due, now), "assessments": history}  # fmt: skip

    def assessment_form(self) -> dict[str, Any]:
        """The assessment form: its items in order with the scores each allows, by domain; the reasons, diseases
        and the standard's names of the levels."""
        return {
            "standard": ASSESSMENT_STANDARD,
            "domains": list(ASSESSMENT_DOMAINS),
            "items": [
                {"item": item, "domain": domain, "scores": list(scores)}
                for item, (domain, scores) in ASSESSMENT_ITEMS.items()
            ],
            "reasons": list(ASSESSMENT_REASONS),
            "diseases": list(DISEASES),
            "levels": list(LEVEL_NAMES),
        }

    def assessment_score(self, answers: Mapping[str, int], *, diagnosis: bool, risk_events: int) -> dict[str, Any]:
        """A form scored without saving it (dispatch.assessment): totals, grades, preliminary and final level."""
        result = score_assessment(check_answers(answers), Flags(diagnosis, risk_events))
        return {"totals": result.totals, "grades": result.grades, "preliminary": result.preliminary,
                "level": result.level, "changes": list(result.changes), "care_level": result.care_level}  # fmt: skip

    def assessments_due(self, reach: Reach, *, within_days: int = 30, limit: int = 200) -> dict[str, Any]:
        """The assessors' tasks: active elders in reach whose next assessment falls due within ``within_days``,
        soonest first, never assessed first of all."""
        now = self._clock.now()
        elders = (
            (e.elder_id, e.name, e.community, e.care_level)
            for e in self._directory.elders.values()
            if e.active and reach.covers(e.community)
        )
        lines, total = due_list(self._state.assessments, elders, until=now + within_days * 86400.0, limit=limit,
                                reassess_after_s=self._settings.reassess_after_days * 86400.0)  # fmt: skip
        return {
            "total": total,
            "due": [{"elder_id": elder_id, "name": name, "community": community, "care_level": care_level,
                     "due": due, "reason": why, "overdue": due <= now}
                    for due, why, elder_id, name, community, care_level in lines],
        }  # fmt: skip

    # -- care calls (dispatch.carecalls) ------------------------------------------------------------

    def care_calls(self, reach: Reach, *, day: str = "today", drill: bool = False, limit: int = 500) -> dict[str, Any]:
        """A local day's care-call list in reach (``today`` or ``YYYY-MM-DD``): the calls due by then, ready ones
        first, and the elders reached that day; ``drill``: the drill's own list."""
        now = self._clock.now()
        local = day_of(day, now, self._settings.timezone)
        lists = day_list(self._state.care_calls, self._directory, self._settings, self._elder_seen(reach),
                         day=local, now=now, drill=drill, limit=limit)  # fmt: skip
        return {"date": local.isoformat(), "drill": drill, "aged_from": self._settings.care_call_age, **lists}

    def care_call(self, elder_id: str, reach: Reach, *, drill: bool = False) -> dict[str, Any] | None:
        """One elder's line as of today, on the list or not (None: not an elder who is called)."""
        elder = self.elder_in_reach(elder_id, reach)
        now = self._clock.now()
        today = day_of("today", now, self._settings.timezone)
        return elder_line(self._state.care_calls, elder, self._settings, day=today, now=now, drill=drill)

    def care_visits(self, reach: Reach, *, state: VisitFilter = "open", limit: int = 200) -> list[dict[str, Any]]:
        """Home visits proposed after unanswered care calls, in reach, the longest waiting first."""
        return care_visit_list(self._state.care_calls, self._elder_seen(reach), self._directory, state=state,
                               limit=limit)  # fmt: skip

    def care_visit(self, visit_id: str, reach: Reach) -> dict[str, Any]:
        """One proposed visit in reach; otherwise as if it did not exist."""
        return visit_view(one_visit(self._state.care_calls, visit_id, self._elder_seen(reach)), self._directory)

    # -- 五定 plans (dispatch.plans) -------------------------------------------------------------------

    @property
    def _plans(self) -> PlanBook:
        return self._state.plans

    def _today(self) -> date:
        return local_day(self._clock.now(), self._settings.timezone)

    def plans(self, reach: Reach, *, elder: str | None = None, active: bool | None = None) -> list[dict[str, Any]]:
        """Plans in reach, newest first: of one elder; active (with visits to come) or not."""
        today = self._today()
        chosen = select_plans(self._plans, self._elder_seen(reach), elder=elder, active=active, today=today)
        return [plan_view(p, self._directory, today) for p in chosen]

    def plan(self, plan_id: str, reach: Reach) -> dict[str, Any]:
        """One plan in reach with its orders from today on (and any older one still open), soonest first."""
        plan = one_plan(self._plans, plan_id, self._elder_seen(reach))
        orders = self._state.service_orders
        since = self._today().isoformat()
        mine = [orders[o] for o in self._plans.orders_of.get(plan_id, [])]
        upcoming = sorted((o for o in mine if (o.plan_day or "") >= since or o.open), key=lambda o: o.start)
        return {
            **plan_view(plan, self._directory, self._today()),
            "orders": [service_order_view(o, self._directory) for o in upcoming],
        }

    def plan_elder(self, plan_id: str, reach: Reach) -> str:
        """The elder a plan in reach is for (whose data a read of it shows)."""
        return one_plan(self._plans, plan_id, self._elder_seen(reach)).elder_id

    def plan_tasks(self, reach: Reach, *, state: TaskFilter = "open", limit: int = 200) -> list[dict[str, Any]]:
        """Missed planned visits in reach, the oldest visit first: the operators' tasks."""
        chosen = select_tasks(self._plans, self._elder_seen(reach), state=state, limit=limit)
        return [task_view(t, self._plans, self._directory) for t in chosen]

    def plan_task(self, task_id: str, reach: Reach) -> dict[str, Any]:
        """One missed visit's task in reach; otherwise as if it did not exist."""
        return task_view(one_task(self._plans, task_id, self._elder_seen(reach)), self._plans, self._directory)

    # -- duty shifts and handovers (dispatch.duty) -----------------------------------------------------

    def duty_scope(self, scope: str | None, reach: Reach) -> str:
        """The scope a duty request is about: the one asked, else the reader's first. It must be ``*`` or a
        part of the registered network, and in the reader's reach; otherwise as if it did not exist."""
        if scope is None:
            scope = reach.scopes[0] if reach.scopes else EVERYWHERE
        try:
            scope = check_scope(scope)
        except ValueError:
            raise NotFound(f"no part of the network {scope!r}", field="scope", code="unknown_duty_scope") from None
        if not reach.covers(scope_place(scope)) or not self._known_scope(scope):
            raise NotFound(f"no part of the network {scope!r}", field="scope", code="unknown_duty_scope")
        return scope

    def _known_scope(self, scope: str) -> bool:
        if scope == EVERYWHERE:
            return True
        within = Reach((scope,))
        places = self._directory
        return any(within.covers(e.community) for e in places.elders.values()) or any(
            within.covers(r.community) for r in places.responders.values()
        )

    def duty_summary(self, scope: str, since: float, until: float, *, log_lines: int = 0) -> DutySummary:
        """The desk of a scope (dispatch.duty.summarise): what lies in it, as its incidents, calls and elders are
        placed (dispatch.scopes), open at ``until``, and the span's counts."""
        return summarise(self._state, _ScopeInside(self, scope), since, until, log_lines)

    def duty(self, scope: str | None, reach: Reach) -> dict[str, Any]:
        """The duty of a scope in reach (see :meth:`duty_scope`): its latest shift (on duty, or handed over and
        waiting for the next operator) and the live summary since that shift began (on duty), since its
        handover (waiting), or since the local day began (no shift yet)."""
        scope = self.duty_scope(scope, reach)
        now = self._clock.now()
        shift = self._state.duty.current(scope)
        if shift is not None and shift.on_duty:
            since = shift.started_at
        elif shift is not None and shift.handed_over_at is not None:
            since = shift.handed_over_at
        else:
            zone = ZoneInfo(self._settings.timezone)
            since = datetime.combine(datetime.fromtimestamp(now, zone).date(), time(0), zone).timestamp()
        log_lines = len(shift.log) if shift is not None and shift.on_duty else 0
        return {
            "scope": scope,
            "scopes": list(reach.scopes),
            "now": now,
            "shift": shift_view(shift, self._actor_name) if shift is not None else None,
            "summary": summary_view(self.duty_summary(scope, since, now, log_lines=log_lines)),
        }

    def duty_history(self, reach: Reach, *, days: int = 7, limit: int = 200) -> list[dict[str, Any]]:
        """The shifts of the last ``days`` days in reach, newest first, each with its log and handover."""
        since = self._clock.now() - timedelta(days=days).total_seconds()
        chosen = duty_history(self._state.duty, reach.covers, since, limit)
        return [shift_view(s, self._actor_name) for s in chosen]

    def _actor_name(self, actor: str | None) -> str | None:
        return actor_name(actor, self._directory)

    def device_test(self, device_id: str, reach: Reach) -> dict[str, Any]:
        """The last test call of a device (bound or since unbound) of an elder in reach."""
        test = self._state.device_tests.last.get(device_id)
        if test is None or not reach.covers(self.elder_place(test.elder_id)):
            raise NotFound(f"no test of device {device_id}", field="device_id")
        view = test_view(test)
        assert view is not None
        return view

    def next_elder_id(self) -> str:
        """A free elder id in the registry's most common pattern (a prefix and zero-padded digits): the highest
        number of that prefix, plus one."""
        numbered: Counter[tuple[str, int]] = Counter()
        highest: dict[tuple[str, int], int] = {}
        for elder_id in self._directory.elders:
            head = elder_id.rstrip("0123456789")
            digits = elder_id[len(head) :]
            if digits:
                key = (head, len(digits))
                numbered[key] += 1
                highest[key] = max(highest.get(key, 0), int(digits))
        (head, width), _ = numbered.most_common(1)[0] if numbered else (("E", 6), 0)
        n = highest.get((head, width), 0) + 1
        while f"{head}{n:0{width}d}" in self._directory.elders:
            n += 1
        return f"{head}{n:0{width}d}"

    def device_known(self, device_id: str) -> bool:
        """Whether a device is registered, for the gateway's codecs (a GT06 login from an unknown IMEI is refused)."""
        return device_id in self._directory.devices

    # -- the elder's file (dispatch.elderfile) -----------------------------------------------------

    def elder_file(self, elder_id: str, reach: Reach, *, unmasked: bool) -> dict[str, Any]:
        """Everything the registry and the projections know of one elder (journal the read first): identity
        (the resident id masked unless ``unmasked``), phones, address, community, household, risk, care,
        contacts in calling order, their caregiver, devices, vouchers, and whom they were merged into or with.
        The timeline, assessments and health readings are read from the journal by the caller
        (:meth:`file_seqs`)."""
        elder = self.elder_in_reach(elder_id, reach)
        record: dict[str, Any] = elder.model_dump(mode="json", exclude={"resident_id"})
        now = self._clock.now()
        record.update(identity(elder.resident_id, elder.birth_date, unmasked=unmasked))
        record["age"] = elder_brief(elder, now)["age"]
        caregiver = self._directory.responders.get(elder.caregiver_id) if elder.caregiver_id else None
        record["caregiver_name"] = caregiver.name if caregiver else None
        record["devices"] = [
            device_view(d, self._state.devices.get(d.device_id), whereabouts="health" in reach.contents)
            for d in self._directory.devices.values()
            if d.elder_id == elder_id
        ]
        record["vouchers"] = self.vouchers(elder_id, reach)
        record["vouchers"]["charges"] = record["vouchers"]["charges"][:10]
        index = self._state.by_elder
        record["merged_into"] = index.merged_into(elder_id)
        record["merged"] = [
            {"elder_id": one, "name": known.name if (known := self._directory.elders.get(one)) else None}
            for one in index.family(elder_id)[1:]
        ]
        return record

    def file_seqs(
        self,
        elder_id: str,
        reach: Reach,
        section: Section | Literal["all"],
        *,
        drill: bool = False,
        before: int | None = None,
        limit: int = 50,
    ) -> list[int]:
        """The seqs of the elder's entries (and of those merged into them) in one section of their file, or in
        the whole timeline (``all``), newest first."""
        self.elder_in_reach(elder_id, reach)
        sections = TIMELINE_SECTIONS if section == "all" else (section,)
        return self._state.by_elder.newest(elder_id, sections, drill=drill, before=before, limit=limit)

    def file_health(self, entries: Iterable[Entry]) -> dict[str, dict[str, Any]]:
        """The readings of ``elder.health`` entries read by :meth:`file_seqs`, one series per reading."""
        return health_series(entries)

    def file_lines(self, entries: Iterable[Entry], reach: Reach) -> list[dict[str, Any]]:
        """The timeline's lines of entries read by :meth:`file_seqs`, newest first; complaints only to those who
        audit (dispatch.followups rule 4)."""
        shown = [e for e in entries if e.kind not in AUDIT_KINDS or "audit" in reach.contents]
        lines = [line_view(e, self._file_name) for e in sorted(shown, key=lambda e: -e.seq)]
        items = catalogue(self._settings.service_catalogue)
        for line in lines:  # a service's name in both languages, as the catalogue has it
            item = items.get(line["detail"].get("item_id", ""))
            if item is not None:
                line["detail"]["item_zh"], line["detail"]["item_en"] = item.name_zh, item.name_en
        return lines

    def file_assessments(self, entries: Iterable[Entry]) -> list[dict[str, Any]]:
        return [file_assessment_view(e, self._file_name) for e in sorted(entries, key=lambda e: -e.seq)]

    def _file_name(self, who: str | None) -> str | None:
        """A person named in an entry: an actor (``role:id``) or a bare responder or clinic id."""
        if who is None or ":" in who:
            return self._actor_name(who)
        profile = self._directory.responders.get(who)
        return profile.name if profile else who


class _ScopeInside:
    """Whether a thing lies in one scope, as the views place it (dispatch.duty.Inside)."""

    def __init__(self, views: Views, scope: str) -> None:
        self._views = views
        self._within = Reach((scope,))

    def incident(self, incident: Incident) -> bool:
        return self._within.covers(self._views.incident_place(incident))

    def call(self, call: Call) -> bool:
        return self._within.covers(self._views.call_place(call))

    def elder(self, elder_id: str) -> bool:
        return self._within.covers(self._views.elder_place(elder_id))


def _statement_by(by: str) -> StatementBy:
    for known in STATEMENT_BY:
        if by == known:
            return known
    raise InvalidInput(f"a statement is by elder, provider or community, not {by!r}", field="by",
                       code="statement_by")  # fmt: skip


def balance_view(balance: Balance, allotted: bool) -> dict[str, Any]:
    """One month of an elder's vouchers, in fen: ``available = allotted + carried_in - spent``."""
    return {
        "month": balance.month,
        "allotted": allotted,
        "allotted_fen": balance.allotted_fen,
        "carried_in_fen": balance.carried_in_fen,
        "spent_fen": balance.spent_fen,
        "available_fen": balance.available_fen,
    }


def charge_view(charge: Charge) -> dict[str, Any]:
    delivery = charge.delivery
    return {
        "order_id": delivery.order_id,
        "month": delivery.month,
        "item_id": delivery.item,
        "provider": delivery.provider,
        "price_fen": delivery.price_fen,
        "voucher_fen": charge.voucher_fen,
        "cash_fen": charge.cash_fen,
        "voided": charge.voided,
    }


def statement_row_view(row: StatementRow) -> dict[str, Any]:
    return {
        "key": row.key,
        "deliveries": row.deliveries,
        "total_fen": row.total_fen,
        "voucher_fen": row.voucher_fen,
        "cash_fen": row.cash_fen,
    }


def service_item_view(item: ServiceItem) -> dict[str, Any]:
    zh, en = CATEGORIES[item.category]
    unit_zh, unit_en = UNITS[item.unit]
    return {
        **item.model_dump(mode="json"),
        "category_zh": zh,
        "category_en": en,
        "unit_zh": unit_zh,
        "unit_en": unit_en,
    }


#: how long a caregiver still reads an order assigned to them once it is done (delivered, cancelled, no-show)
CAREGIVER_KEEPS_S = 12 * 3600.0


def service_order_view(order: ServiceOrder, directory: Directory) -> dict[str, Any]:
    """An order as the console and the assigned caregiver see it: what, for whom, where and how to get in, when,
    at what price (fen), who goes, and the check-in and check-out."""
    elder = directory.elders.get(order.elder_id)
    responder = directory.responders.get(order.responder_id) if order.responder_id else None
    return {
        "order_id": order.order_id,
        "state": order.state.value,
        "state_since": order.state_since,
        "open": order.open,
        "elder_id": order.elder_id,
        "elder_name": elder.name if elder else None,
        "address": elder.address if elder else None,
        "access": elder.access if elder else None,
        "phone": elder.phone if elder else None,
        "community": elder.community if elder else None,
        "item_id": order.item_id,
        "start": order.start,
        "end": order.end,
        "place": order.place,
        "mode": order.mode,
        "price_fen": order.price_fen,
        "source": order.source,
        "call_id": order.call_id,
        "provider": order.provider,
        "drill": order.drill,
        "ordered_at": order.ordered_at,
        "ordered_by": order.ordered_by,
        "ordered_by_name": actor_name(order.ordered_by, directory),
        "updated_at": order.updated_at,
        "responder_id": order.responder_id,
        "responder_name": responder.name if responder else None,
        "started_at": order.started_at,
        "started_pos": list(order.started_pos) if order.started_pos else None,
        "delivered_at": order.delivered_at,
        "delivered_pos": list(order.delivered_pos) if order.delivered_pos else None,
        "note": order.note,
        "reason": order.reason,
        "confirmed_at": order.confirmed_at,
        "plan_id": order.plan_id,
        "plan_day": order.plan_day,
    }


def unknown_alert_view(interval: UnknownInterval) -> dict[str, Any]:
    """One interval's alarms from unregistered devices, as a supervisor sees them: which accounts, which alarm
    types how often (``urgent``: an SOS, fall, medical or fire among them), and the interval's other traffic."""
    alarm_types: dict[str, int] = {}
    routine = 0
    for (_, kind, alarm_type), count in interval.counts.items():
        if kind == "alarm" and alarm_type is not None:
            alarm_types[alarm_type] = alarm_types.get(alarm_type, 0) + count
        else:
            routine += count
    return {
        "kind": "unknown_devices",
        "since": interval.since,
        "until": interval.until,
        "closed": interval.closed,
        "urgent": interval.urgent,
        "alarms": interval.alarms,
        "alarm_types": dict(sorted(alarm_types.items(), key=lambda t: -t[1])),
        "devices": list(interval.alarm_devices),
        "distinct": len(interval.ids),
        "more": interval.more,
        "routine": routine,
    }


def incident_view(incident: Incident, state: Projection, directory: Directory) -> dict[str, Any]:
    elder = directory.elders.get(incident.elder_id) if incident.elder_id else None
    working = [state.assignments[a] for a in incident.assignments if state.assignments[a].active]
    return {
        "incident_id": incident.incident_id,
        "state": incident.state.value,
        "state_since": incident.state_since,
        "actions": actions(incident, working),
        "open": incident.open,
        "alarm_type": incident.alarm_type,
        "source": incident.source,
        "priority": incident.priority,
        "priority_reasons": list(incident.priority_reasons),
        "elder_id": incident.elder_id,
        "elder_name": elder.name if elder else None,
        "address": elder.address if elder else None,
        "community": elder.community if elder else None,
        "device_id": incident.device_id,
        "call_id": incident.call_id,
        "caller": incident.caller or (call.caller if (call := state.calls.get(incident.call_id or "")) else None),
        "place": incident.place,
        "lat": incident.lat,
        "lon": incident.lon,
        "location": incident.location,
        "opened_at": incident.opened_at,
        "answer_deadline": incident.answer_deadline,
        "acknowledged_at": incident.acknowledged_at,
        "acknowledged_by": incident.acknowledged_by,
        "acknowledged_by_name": actor_name(incident.acknowledged_by, directory),
        "updated_at": incident.updated_at,
        "closed_at": incident.closed_at,
        "supervisor_alerted": incident.supervisor_alerted,
        "needs_manual": incident.needs_manual,
        "manual_reason": incident.manual_reason,
        "waiting": incident.waiting,  # in the backlog: offered to the next responder who becomes free
        "drill": incident.drill,
        "test": incident.test,  # a device's test call (dispatch.keeping rule 4)
        "alarms": msgspec.to_builtins(incident.alarms),
        "ranking": msgspec.to_builtins(incident.ranking),
        "clinic": msgspec.to_builtins(incident.clinic),
        "notes": [note_view(n, directory) for n in incident.notes],
        "proposal": note_view(incident.proposal, directory) if incident.proposal and not working else None,
        "outcome": incident.outcome,
        "escalated_to": incident.escalated_to,
        "assignments": [assignment_view(state.assignments[a], directory) for a in incident.assignments],
        "group": group_view(incident),
        "referrals": [referral_view(r, directory) for r in state.referrals.of_incident(incident.incident_id)],
    }


#: the devices a grouped incident's view names (the journal names every one)
GROUP_SAMPLE = 50


def group_view(incident: Incident) -> dict[str, Any] | None:
    """A grouped technical incident's street and counts, and the first still-affected devices; else None."""
    if incident.group is None:
        return None
    return {
        "street": incident.group,
        "street_name": incident.group.rpartition("/")[2],
        "devices": len(incident.devices),
        "affected": len(incident.affected),
        "sample": list(incident.affected)[:GROUP_SAMPLE],
    }


def actions(incident: Incident, working: list[Assignment]) -> list[str]:
    """What an operator may do to the incident now (the console enables exactly these buttons)."""
    allowed = [
        name
        for name, event in (
            ("cancel", IncidentEvent.CANCEL),
            ("escalate", IncidentEvent.ESCALATE),
            ("resolve", IncidentEvent.RESOLVE),
            ("close", IncidentEvent.CLOSE),
        )
        if incident_allows(incident.state, event)
    ]
    if incident.acknowledged_at is None and incident_allows(incident.state, IncidentEvent.ACKNOWLEDGE):
        allowed.insert(0, "acknowledge")
    if incident_allows(incident.state, IncidentEvent.OFFER) or incident_allows(
        incident.state, IncidentEvent.REOPEN_DISPATCH
    ):
        # replacing someone who accepted or is on scene is allowed, with a confirmation (``replace``)
        on_job = any(a.state is not AssignmentState.OFFERED for a in working)
        allowed.append("replace" if on_job else "dispatch")
    if incident.open:
        allowed += ["locate", "note"]
        if not incident.technical:
            allowed += ["retype", "refer"]  # refer: to a clinic's green channel (dispatch.referrals)
    return allowed


def note_view(note: NoteLine, directory: Directory) -> dict[str, Any]:
    return {
        "ts": note.ts,
        "actor": note.actor,
        "actor_name": actor_name(note.actor, directory),
        "text": note.text,
        "shared": note.shared,
    }


def _user_of(who: str | None) -> str | None:
    """The user name of an actor (``role:name``) or of a bare user name (a PBX operator)."""
    return None if who is None else who.partition(":")[2] or who


def actor_name(actor: str | None, directory: Directory) -> str | None:
    """Who did it, as a person reads it: a caregiver's name, an account's user name, or ``system``."""
    if actor is None:
        return None
    role, _, who = actor.partition(":")
    if not who:
        return actor
    if role == "family":
        return kin_name(directory.elders, who) or who
    profile = directory.responders.get(who) if role == "caregiver" else None
    return profile.name if profile else directory.staff_names.get(who) or who


def person_name(who: str | None, directory: Directory) -> str | None:
    """An actor (``role:name``) or a bare user name (the operator a PBX extension belongs to), as a person reads
    it: the account's display name when the directory knows it."""
    if who is None or ":" in who:
        return actor_name(who, directory)
    return directory.staff_names.get(who) or who


def call_owner(call: Call) -> str | None:
    """The actor who has a call now (scopes rule 3): who answered it, or the operator it was passed on to; a
    PBX names operators by user name (an extension rings an operator's desk)."""
    who = call.handler or call.answered_by
    return who if who is None or ":" in who else f"operator:{who}"


def assignment_view(assignment: Assignment, directory: Directory) -> dict[str, Any]:
    profile = directory.responders.get(assignment.responder_id)
    return {
        "assignment_id": assignment.assignment_id,
        "incident_id": assignment.incident_id,
        "responder_id": assignment.responder_id,
        "responder_name": profile.name if profile else kin_name(directory.elders, assignment.responder_id),
        "state": assignment.state.value,
        "by": assignment.by,
        "offered_at": assignment.offered_at,
        "deadline": assignment.deadline,
        "held": assignment.held,
        "distance_m": assignment.distance_m,
        "eta_s": assignment.eta_s,
        "updated_at": assignment.updated_at,
        "note": assignment.note,
    }


def sorted_incidents(
    state: Projection,
    *,
    open_only: bool = False,
    limit: int = 200,
    within: Callable[[Incident], bool] = lambda _: True,
) -> list[Incident]:
    """Open incidents first (most urgent, then oldest), then the rest, newest first (those ``within`` only)."""
    open_ = sorted(
        (i for i in state.incidents.values() if i.state in OPEN_STATES and within(i)),
        key=lambda i: (i.priority, i.opened_at),
    )
    if open_only or len(open_) >= limit:
        return open_[:limit]
    done = heapq.nsmallest(
        limit - len(open_),
        (i for i in state.incidents.values() if i.state not in OPEN_STATES and within(i)),
        key=lambda i: -i.opened_at,
    )
    return open_ + done


def offer_view(
    assignment: Assignment, incident: Incident, directory: Directory, centre_phone: str = ""
) -> dict[str, Any]:
    """What a caregiver sees before accepting: no name, no address (a family member: dispatch.family rule 6)."""
    elder = directory.elders.get(incident.elder_id) if incident.elder_id else None
    view = {
        "assignment_id": assignment.assignment_id,
        "incident_id": incident.incident_id,
        "state": assignment.state.value,
        "alarm_type": incident.alarm_type,
        "priority": incident.priority,
        "community": elder.community if elder else None,
        "place": incident.place,  # where an operator placed an unknown caller (a building, not a person)
        "distance_m": assignment.distance_m,
        "eta_s": assignment.eta_s,
        "expires_at": assignment.deadline,
    }
    return family_offer(view, elder, centre_phone) if is_kin(assignment.responder_id) else view


def job_view(
    assignment: Assignment, incident: Incident, directory: Directory, now: float, centre_phone: str = ""
) -> dict[str, Any]:
    """What a caregiver sees once they accepted: where to go, how to get in, what the caller and the operator
    said (the notes shared with them, and their own), and whom to call."""
    view = offer_view(assignment, incident, directory)
    elder = directory.elders.get(incident.elder_id) if incident.elder_id else None
    view["elder"] = elder_brief(elder, now) if elder else None
    view["lat"], view["lon"] = incident.lat, incident.lon
    view["location"] = incident.location
    view["place"] = incident.place
    view["caller"] = incident.caller  # an unregistered caller's number: the caregiver can call them back
    view["notes"] = [note_view(n, directory) for n in incident.notes if n.shared]
    view["access"] = elder.access if elder else ""
    view["centre_phone"] = centre_phone
    return family_job(view) if is_kin(assignment.responder_id) else view


def elder_brief(elder: Elder, now: float) -> dict[str, Any]:
    return {
        "elder_id": elder.elder_id,
        "name": elder.name,
        "age": age_on(elder.birth_date, utc(now).date()) if elder.birth_date else None,
        "phone": elder.phone,
        "address": elder.address,
        "lat": elder.lat,
        "lon": elder.lon,
        "risk_flags": elder.risk_flags,
        "care_level": elder.care_level,
        "medical_notes": elder.medical_notes,
        "contacts": [c.model_dump() for c in elder.contacts],
        "access": elder.access,
    }


def responder_view(responder_id: str, state: Projection, directory: Directory, now: float) -> dict[str, Any]:
    profile = directory.responders[responder_id]
    status = state.responders.get(responder_id)
    return {
        "responder_id": responder_id,
        "name": profile.name,
        "kind": profile.kind,
        "skills": profile.skills,
        "travel": profile.travel,
        "community": profile.community,
        "provider": profile.provider,
        "on_duty": bool(status and status.on_duty),
        "available": state.available(responder_id, now),
        "assignment_id": status.assignment_id if status else None,
        "lat": status.lat if status and status.lat is not None else profile.lat,
        "lon": status.lon if status and status.lon is not None else profile.lon,
        "pos_at": status.pos_at if status else None,
        "green_channel": profile.green_channel,  # a clinic's: referrals go to its green channel (dispatch.referrals)
        "hours": profile.hours,
    }


def device_view(device: Device, status: DeviceStatus | None, *, whereabouts: bool) -> dict[str, Any]:
    """A device as the console shows it: the registry record (never its key) and what it last reported; where
    a watch last was only to those who read whereabouts (supervisors, dispatch.scopes rule 2)."""
    view = device.model_dump(mode="json", exclude={"aes_key"})
    view["status"] = None
    if status is not None:
        view["status"] = {
            "last_seen": status.last_seen,
            "battery": status.battery,
            "lat": status.lat if whereabouts else None,
            "lon": status.lon if whereabouts else None,
            "pos_at": status.pos_at if whereabouts else None,
        }
    return view


def elder_incidents(state: Projection, elder_id: str, *, limit: int = 5) -> list[dict[str, Any]]:
    """The elder's most recent incidents, newest first, in brief (for the operator's record panel)."""
    mine = sorted(
        (i for i in state.incidents.values() if i.elder_id == elder_id),
        key=lambda i: -i.opened_at,
    )
    return [
        {
            "incident_id": i.incident_id,
            "alarm_type": i.alarm_type,
            "state": i.state.value,
            "priority": i.priority,
            "opened_at": i.opened_at,
            "outcome": i.outcome,
            "escalated_to": i.escalated_to,
            "drill": i.drill,
            "test": i.test,
        }
        for i in mine[:limit]
    ]


def offered_elders(call: Call, directory: Directory) -> list[Elder]:
    """The elders a call offers the operator, by id: the household sharing the number that called, or (a number
    no elder owns) every elder whose family contact called. One or none: nothing to pick."""
    if call.household:
        return [directory.elders[i] for i in call.household if i in directory.elders]
    if call.elder_id is not None and call.picked_by is None:
        return []  # the caller's own elder, or the one the operator identified when classifying
    return directory.contact_elders(call.caller)


def call_view(
    call: Call, directory: Directory, now: float, covers: Callable[[str], bool] = lambda _: True
) -> dict[str, Any]:
    """A call record: who called (the elder, a household sharing the number, a family contact, or unknown), when
    it rang, was answered and ended, and what the operator made of it. ``offered``: the elders the operator
    picks from (several: a household's landline, a family member of several elders; those whose community the
    reader ``covers``), with who picked whom."""
    elder = directory.elders.get(call.elder_id) if call.elder_id else None
    offered = [e for e in offered_elders(call, directory) if covers(e.community)]
    contact = _contact_view(call, elder, len(offered), directory)
    caller_is = "household" if call.household else "contact" if contact else "elder" if elder else "unknown"
    today = utc(now).date()
    return {
        "call_id": call.call_id,
        "caller": call.caller,
        "line": call.line,
        "state": call.state,
        "open": call.open,
        "drill": call.drill,
        "started_at": call.started_at,
        "answered_at": call.answered_at,
        "answered_by": person_name(call.answered_by, directory),
        "ended_at": call.ended_at,
        "direction": call.direction,
        "queue": call.queue,
        "queued_at": call.queued_at,
        "extension": call.extension,
        "transfers": [
            {"extension": t.extension, "operator": person_name(t.operator, directory), "at": t.at}
            for t in call.transfers
        ],
        "cause": call.cause,
        "outcome": call.outcome,
        "wait_s": None if call.wait is None else round(call.wait, 1),
        "dialed_by": person_name(call.dialed_by, directory),
        #: the user name of the operator who has the call now, when the PBX named them (answered at their
        #: extension, or transferred to it): their console takes it, the others only list it
        "handler_user": call.handler if call.handler and ":" not in call.handler else None,
        "about_call": call.about_call,
        "elder_id": call.elder_id,
        "elder_name": elder.name if elder else None,
        "address": elder.address if elder else None,
        "caller_is": caller_is,
        "contact": contact,
        "offered": [_offered_view(e, today, call.caller) for e in offered] if len(offered) > 1 else [],
        "picked": {"elder_id": call.elder_id, "by": actor_name(call.picked_by, directory), "at": call.picked_at}
        if call.picked_by is not None
        else None,
        "incident_id": call.incident_id,
        "kind": call.kind,
        "text": call.text,
        "callback": call.callback,
        "callback_outcome": call.callback_outcome,
        "words": call.words,
    }


def _offered_view(elder: Elder, today: date, caller: str) -> dict[str, Any]:
    """One elder a call offers: enough to tell them apart on the phone (name, age, address), and what the
    caller is to them when a family contact calls."""
    digits = normalise_phone(caller)
    relation = next((c.relation for c in elder.contacts if normalise_phone(c.phone) == digits), None)
    return {
        "elder_id": elder.elder_id,
        "name": elder.name,
        "age": age_on(elder.birth_date, today) if elder.birth_date else None,
        "address": elder.address,
        "relation": relation,
    }


def _contact_view(call: Call, elder: Elder | None, offered: int, directory: Directory) -> dict[str, str | None] | None:
    """The family contact calling: their name and relation, and the elder they call about. A contact of several
    elders calls about the one picked (none while nobody is: ``elder_id`` None)."""
    if call.household or (elder is not None and call.picked_by is None):
        return None  # an elder's own number, or a number the operator identified when classifying
    contact: dict[str, str | None] | None = dict(directory.contact_for_phone(call.caller) or {}) or None
    if contact is None or offered < 2:
        return contact
    if elder is None:
        return {**contact, "relation": "", "elder_id": None, "elder_name": None, "address": None}
    digits = normalise_phone(call.caller)
    relation = next((c.relation for c in elder.contacts if normalise_phone(c.phone) == digits), "")
    return {**contact, "relation": relation, "elder_id": elder.elder_id, "elder_name": elder.name,
            "address": elder.address}  # fmt: skip
