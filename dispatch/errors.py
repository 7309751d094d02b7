"""The exceptions of the dispatch core, one tree.

    AnxinError
    ├── InvalidInput              the caller sent something the domain cannot accept (maps to HTTP 4xx)
    │   ├── NotFound              an elder, device, responder, incident or assignment that does not exist
    │   ├── IllegalTransition     a state machine was asked for a move its table does not allow
    │   └── Conflict              the request is valid but clashes with current state (already offered, ...)
    ├── JournalError              the service record cannot be written or read
    │   ├── ChainBroken           verification found an entry whose hash does not follow from the previous one
    │   ├── Fenced                a newer leadership term began: this node writes no more (cluster mode)
    │   └── NoLeader              no node leads the cluster now, or it did not answer in time (cluster mode)
    └── ConfigError               a setting or data folder is unusable

"The caller was wrong" (InvalidInput and below) is kept apart from "we are broken" (JournalError): the first
gets a clear answer and nothing is written; the second stops intake rather than acknowledge what is not durable.

Every error carries a ``code`` from :data:`CODES` and ``params`` (names, not ids, where a person reads them):
the English message is for logs and the API's readers, the code is what the console's pages translate. A
test walks every code through the page catalogues and every ``code=`` written in the packages through
:data:`CODES`.
"""

from __future__ import annotations

from typing import ClassVar

#: every error code the core and the console answer with (the console adds its own in console.errors)
CODES = frozenset(
    {
        # generic, one per class
        "invalid_input",
        "not_found",
        "illegal_transition",
        "conflict",
        "journal_unavailable",
        "no_leader",
        "config",
        # not found, by what
        "unknown_incident",
        "unknown_assignment",
        "unknown_elder",
        "unknown_device",
        "unknown_responder",
        "unknown_caregiver",
        "unknown_call",
        "unknown_alarm_type",
        "unknown_skill",
        "unknown_protocol",
        "address_not_found",
        "unknown_service_item",
        "unknown_provider",
        "assessment_item",
        "assessment_score",
        "assessment_reason",
        "elder_merged",
        "unknown_service_order",
        "unknown_order_action",
        "unknown_follow_up",
        "unknown_complaint",
        "unknown_care_visit",
        "unknown_plan",
        "unknown_plan_task",
        "unknown_clinic",  # dispatch.referrals: no clinic of that id in the registry
        "unknown_referral",
        "unknown_duty_scope",  # dispatch.duty: a part of the network that is not, or not the reader's
        # refused input
        "alarm_needs_elder",
        "device_not_elders",
        "lat_lon_pair",
        "incident_needs_place",
        "clinic_not_dispatchable",
        "unknown_referral_action",  # dispatch.referrals: a clinic accepts, declines, says arrived, records an outcome
        "referral_outcome",  # an outcome of the known list
        "reason_required",
        "resolution_required",
        "note_required",
        "outcome_required",
        "unknown_service",
        "unknown_status",
        "unknown_call_event",
        "bad_number",  # a number to dial is 3 to 32 digits with an optional leading +
        "no_extension",  # click-to-call: the operator has no PBX extension (settings pbx_extensions)
        "extension_busy",  # click-to-call: the operator's desk phone is on a call already
        "call_needs_alarm_type",
        "elder_not_offered",  # a pick names an elder the call does not offer
        "import_refused",
        "duplicate_key",
        "merge_same",  # a merge of an elder with themself
        "service_window",
        "service_window_long",
        "service_window_past",
        "satisfaction_required",
        "follow_up_not_reached",
        "care_call_not_scheduled",  # dispatch.carecalls: the elder is not living alone, empty nest or aged
        "wellbeing_required",
        "care_call_not_reached",
        "duty_log_time",  # a duty log line tells of a moment of its shift
        "statement_month",  # dispatch.views statements: a month that does not read YYYY-MM
        "export_period",  # dispatch.govexport: a period that is neither YYYY-MM nor YYYY-MM-DD..YYYY-MM-DD
        "export_format",  # dispatch.govexport: a format that is neither json nor csv
        "statement_by",  # a statement is by elder, provider or community
        "plan_weekdays",  # dispatch.plans: weekdays 1 (Monday) to 7, at least one
        "plan_time",  # a plan's local start time reads HH:MM
        "plan_dates",  # a plan's days read YYYY-MM-DD, the last not before the first
        "plan_end_day",  # a plan ends today or later
        "plan_task_outcome",  # a missed visit is settled with one of the known outcomes
        "coverage_hour",  # dispatch.coverage: an hour of the day is 0 to 23
        "coverage_target",  # the coverage target is 1 to 240 minutes
        "report_period",  # dispatch.periodreport: a period reads YYYY-MM (and is not asked with start/end)
        "report_dates",  # a report's start and end read YYYY-MM-DD, the end after the start
        "report_range_long",  # a report covers at most 366 days
        "report_by",  # a report is by district, street or community
        "left_care_reason",  # dispatch.keeping: why an elder left care, one of the known reasons
        # conflicts with the current state
        "possible_duplicate",  # dispatch.duplicates: a new elder is probably one already registered
        "merge_distinct",  # two records with different resident identity numbers are two people
        "merge_inactive",  # an elder no longer in care is not merged
        "already_acknowledged",
        "responder_busy",
        "replace_needs_confirmation",
        "responder_on_job",
        "offer_closed",
        "call_already_classified",
        "call_not_answered",
        "call_nothing_to_pick",  # a pick on a call that offers one elder or none
        "drill_mismatch",
        "order_drill_mismatch",
        "no_callback_due",
        "incident_closed",
        "cannot_retype",
        "account_exists",
        "responder_off_duty",
        "responder_lacks_skill",
        "responder_other_provider",
        "responder_contracted",
        "service_too_early",
        "follow_up_done",
        "complaint_settled",
        "care_visit_open",
        "care_visit_settled",
        "plan_ended",
        "plan_duplicate",
        "plan_task_settled",
        "duty_open",  # dispatch.duty: someone is on duty for the scope already
        "duty_handover_pending",  # the last shift waits to be taken over
        "duty_not_started",  # nobody is on duty for the scope
        "duty_not_yours",  # only the operator on duty (or a supervisor) hands over
        "duty_not_handed_over",  # the shift on duty was not handed over
        "duty_nothing_to_take_over",
        "clinic_closed",  # dispatch.referrals: a referral to a clinic closed now, or without a green channel
        "clinic_no_green_channel",
        "referral_open",  # the incident's patient is referred already (referred, accepted or arrived)
        "referral_technical",  # a technical condition has no patient to refer
        "referral_closed",  # the referral was answered, expired or cancelled already
        "elder_inactive",  # dispatch.keeping: the elder left the centre's care; nothing new is attached to them
        "elder_active",  # reactivating an elder who is in the centre's care
        "elder_active_change",  # active changes by deactivating or reactivating, not by saving the record
        # outside the person's part of the network (dispatch.scopes)
        "out_of_scope",
    }
)


class AnxinError(Exception):
    """Base of every error raised on purpose by the dispatch core."""

    code: ClassVar[str] = "invalid_input"

    def __init__(self, message: str, *, code: str | None = None, params: dict[str, object] | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.params: dict[str, object] = params or {}


class InvalidInput(AnxinError):
    """The request cannot be accepted. ``field`` names the offending input when there is one."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        params: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message, code=code, params=params)
        self.field = field


class NotFound(InvalidInput):
    """A referenced entity does not exist (its code names what: ``unknown_incident``, ``unknown_elder``, ...)."""

    code: ClassVar[str] = "not_found"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        params: dict[str, object] | None = None,
    ) -> None:
        if code is None and field is not None and f"unknown_{field.removesuffix('_id')}" in CODES:
            code = f"unknown_{field.removesuffix('_id')}"
        super().__init__(message, field=field, code=code, params=params)


class IllegalTransition(InvalidInput):
    """A state machine was asked for a transition its table does not allow."""

    code: ClassVar[str] = "illegal_transition"

    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(
            f"{machine}: cannot {event} when {state}", params={"machine": machine, "state": state, "event": event}
        )
        self.machine = machine
        self.state = state
        self.event = event


class Conflict(InvalidInput):
    """The request clashes with the current state."""

    code: ClassVar[str] = "conflict"


class JournalError(AnxinError):
    """The journal cannot be written or read."""

    code: ClassVar[str] = "journal_unavailable"


class ChainBroken(JournalError):
    """An entry's hash does not follow from the previous entry."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"journal chain broken at seq {seq}: {reason}")
        self.seq = seq


class Fenced(JournalError):
    """A cluster node's batch met a newer leadership term (dispatch.pgjournal, rule 2): the node must stop."""


class NoLeader(JournalError):
    """A cluster node handed a command to the leader and got no answer in time (dispatch.cluster)."""

    code: ClassVar[str] = "no_leader"


class ConfigError(AnxinError):
    """A setting or the data folder is unusable."""

    code: ClassVar[str] = "config"
