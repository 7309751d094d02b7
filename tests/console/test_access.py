"""The access matrix, generated from the app's own route table: every route × every kind of caller, in scope
and out of scope.

:data:`RULES` is the specification: who may call each route, and what in the network it touches. The tests
walk the *app's* routes (HTTP and websocket), so a route added without a rule here fails
:func:`test_every_route_has_a_rule`, and a rule whose route is gone fails too. Then, for every route:

- each kind of caller is admitted or refused as the rule says (refused: 401 without a token, 403 with one),
  and the role the route itself declares (console.deps) equals the rule;
- a person scoped to street A asking about something of street B gets 404 (or 403 ``out_of_scope`` for a
  registry write) and nothing is written; about something of street A they are served;
- a read that is not about one thing holds nothing of street B in its answer.

Callers are probed with ids that do not exist and bodies that cannot validate, so an admitted call fails at
404 / 422 after the access check and changes nothing; the scope cases use real things and valid bodies.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount
from starlette.websockets import WebSocketDisconnect

from anxin.server import app_for
from dispatch.engine import Engine
from dispatch.family import kin_id
from dispatch.registry import Device
from tests.conftest import engine_of, require_program, responder, settings_for
from tests.console.streets import HOME_A, HOME_B, STREET_A, STREET_B, elder_a, elder_b, person, seed_two_streets
from tests.console.test_api import auth, token

#: what only street B's things carry: none of it may appear in an answer to a person scoped to street A
B_MARKS = ('"eb"', '"cb"', '"8800000002"', "朝阳", "13505960099", '"svc_b', '"op_b"')

ANON, ADMIN, SUPERVISOR, OPERATOR, CAREGIVER = "anon", "admin", "supervisor", "operator", "caregiver"
FAMILY = "family"  # ea's son, who answers her alarms on the phone page (dispatch.family)
CLINIC = "clinic"  # the desk of clinic kA's green channel (dispatch.referrals)
ASSESSOR = "assessor"  # a needs assessor of the whole centre (dispatch.assessment)
HOTLINE_KEY, ALARMS_KEY, BARE_KEY = "service:hotline", "service:alarms", "service:none"
IMPORT_KEY = "service:import"  # `anxin import` sending files to the running server
EXPORT_KEY = "service:export"  # the government platform's pull, or `anxin export` through the running server
CALLERS = (
    ANON, ADMIN, SUPERVISOR, OPERATOR, CAREGIVER, FAMILY, CLINIC, ASSESSOR,
    HOTLINE_KEY, ALARMS_KEY, BARE_KEY, IMPORT_KEY, EXPORT_KEY,
)  # fmt: skip
EVERYONE = frozenset(CALLERS)
LOGGED_IN = EVERYONE - {ANON}
PEOPLE = frozenset({ADMIN, SUPERVISOR, OPERATOR, CAREGIVER, FAMILY, CLINIC, ASSESSOR})
STAFF = frozenset({ADMIN, SUPERVISOR, OPERATOR})
SUPERVISORS = frozenset({ADMIN, SUPERVISOR})
ADMINS = frozenset({ADMIN})
CAREGIVERS = frozenset({CAREGIVER})
CLINICS = frozenset({CLINIC})
ASSESSORS = frozenset({ASSESSOR, SUPERVISOR, ADMIN})
#: a whole assessment form, everyone able (dispatch.assessment)
ABLE_FORM = {
    "eating": 10, "bathing": 5, "grooming": 5, "dressing": 10, "bowels": 10, "bladder": 10, "toilet": 10,
    "transfer": 15, "walking": 15, "stairs": 10, "cognition": 0, "aggression": 0, "depression": 0,
    "consciousness": 0, "vision": 0, "hearing": 0, "communication": 0,
    "living": 0, "work": 0, "orientation": 0, "people": 0, "social": 0,
}  # fmt: skip
#: a service order's window: tomorrow of the probe city's clock, an hour long (UTC seconds)
WINDOW = {"start": 1_900_000_000.0, "end": 1_900_003_600.0}


@dataclass(frozen=True)
class Rule:
    """Who may call a route, and what in the network it is about.

    ``subject``: the thing it names (``incident``, ``call``, ``elder``, ``device``, ``responder``,
    ``account``), in the path or, for ``body:...``, in the body; ``list`` for a read of many things (its answer
    must hold nothing out of scope); ``None`` with ``why`` for a route that is not about the network."""

    who: frozenset[str]
    subject: str | None = None
    why: str = ""
    body: Callable[[str], dict[str, Any]] | None = None  # a valid body, given the subject's id
    query: str = ""  # a query string the route needs to answer


#: ea's son, with a family account
SON_A = "13800000011"


def _elder_body(elder_id: str) -> dict[str, Any]:
    """The street's elder as seeded, flagged living alone (so both are on the care-call lists); ea's son answers
    her alarms on the phone page."""
    if elder_id == "ea":
        son = {"name": "李明", "phone": SON_A, "relation": "儿子", "app": True}
        return elder_a(risk_flags=["living_alone"], contacts=[son], care_level=0).model_dump(mode="json")
    # care level 0: what the probe's assessment (everyone able) sets, so that a later save changes none
    return elder_b(risk_flags=["living_alone"], care_level=0).model_dump(mode="json")


def _device_body(device_id: str) -> dict[str, Any]:
    elder_id = "ea" if device_id == "8800000001" else "eb"
    return Device(device_id=device_id, protocol="watch", elder_id=elder_id).model_dump(mode="json")


def _responder_body(responder_id: str) -> dict[str, Any]:
    street, (lat, lon) = (STREET_A, HOME_A) if responder_id == "ca" else (STREET_B, HOME_B)
    return responder(responder_id, lat, lon, community=f"{street}/社区").model_dump(mode="json")


_PLAN_MINUTES = itertools.count()


def _plan_body(elder_id: str) -> dict[str, Any]:
    """A plan of a daily visit for the elder by their street's caregiver, each at a minute of its own (the same
    visit twice is refused)."""
    caregiver = "ca" if elder_id == "ea" else "cb"
    minute = next(_PLAN_MINUTES) % (24 * 60)
    return {"elder_id": elder_id, "item_id": "meal_delivery", "responder_id": caregiver,
            "weekdays": [1, 2, 3, 4, 5, 6, 7], "at": f"{minute // 60:02d}:{minute % 60:02d}"}  # fmt: skip


async def _missed(engine: Engine, order_id: str, end: float) -> None:
    """The planned order's missed-visit check run as if the clock stood past ``end`` and its grace (the probe
    city runs on the real clock)."""
    async with engine.changing():
        engine.plans.fire(order_id, end + engine.settings.plan_grace_minutes * 60 + 1)


RULES: dict[tuple[str, str], Rule] = {
    # pages and public answers
    ("GET", "/"): Rule(EVERYONE, why="a redirect to the console page"),
    ("GET", "/console"): Rule(EVERYONE, why="the page itself; its data needs a token"),
    ("GET", "/supervisor"): Rule(EVERYONE, why="the page itself"),
    ("GET", "/elder"): Rule(EVERYONE, why="the page itself; the file needs a token and a reason"),
    ("GET", "/accounts"): Rule(EVERYONE, why="the page itself"),
    ("GET", "/plans"): Rule(EVERYONE, why="the page itself"),
    ("GET", "/services"): Rule(EVERYONE, why="the page itself"),
    ("GET", "/statements"): Rule(EVERYONE, why="the page itself"),
    ("GET", "/reports"): Rule(EVERYONE, why="the page itself; its data needs a supervisor's token"),
    ("GET", "/m"): Rule(EVERYONE, why="the phone page itself"),
    ("GET", "/care-calls"): Rule(EVERYONE, why="the page itself; its data needs a token"),
    ("GET", "/calls"): Rule(EVERYONE, why="the call log page itself; its data needs a staff token"),
    ("GET", "/duty"): Rule(EVERYONE, why="the duty page itself"),
    ("GET", "/clinic"): Rule(EVERYONE, why="the clinic desk's page itself; its data needs a token"),
    ("GET", "/assess"): Rule(EVERYONE, why="the needs assessment page itself; its data needs a token"),
    ("GET", "/registry"): Rule(EVERYONE, why="the registry page itself; its data needs a token"),
    ("GET", "/docs"): Rule(EVERYONE, why="the API's documentation"),
    ("GET", "/redoc"): Rule(EVERYONE, why="the API's documentation"),
    ("GET", "/openapi.json"): Rule(EVERYONE, why="the API's schema"),
    ("GET", "/api/config"): Rule(EVERYONE, why="the pages' settings: tiles, timers, the centre's phone"),
    ("GET", "/healthz"): Rule(EVERYONE, why="for the engineer on call and load balancers"),
    ("GET", "/readyz"): Rule(EVERYONE, why="readiness, for load balancers: checks, nobody's data"),
    ("GET", "/metrics"): Rule(frozenset(), why="a scraper's: the metrics token, or a loopback peer; no login"),
    ("POST", "/api/auth/token"): Rule(EVERYONE, why="logging in"),
    # the logged-in person's own account
    ("POST", "/api/auth/logout"): Rule(PEOPLE, why="their own token (a service key is revoked by an admin)"),
    ("GET", "/api/me"): Rule(LOGGED_IN, why="their own account"),
    ("POST", "/api/me/password"): Rule(PEOPLE, why="their own password"),
    ("POST", "/api/me/duty"): Rule(CAREGIVERS, why="their own duty"),
    ("POST", "/api/me/position"): Rule(CAREGIVERS, why="their own position"),
    # accounts
    ("GET", "/api/accounts"): Rule(ADMINS, "list"),
    ("POST", "/api/accounts"): Rule(ADMINS, "body:account"),
    ("PATCH", "/api/accounts/{username}"): Rule(ADMINS, "account", body=lambda _: {"name": "改名"}),
    ("POST", "/api/accounts/{username}/disable"): Rule(ADMINS, "account"),
    ("POST", "/api/accounts/{username}/enable"): Rule(ADMINS, "account"),
    ("POST", "/api/accounts/{username}/password"): Rule(
        ADMINS, "account", body=lambda _: {"password": "another-password-1"}
    ),
    ("GET", "/api/accounts/{username}/keys"): Rule(ADMINS, "account"),
    ("POST", "/api/accounts/{username}/keys"): Rule(ADMINS, "account", body=lambda _: {"label": "PBX"}),
    ("DELETE", "/api/accounts/{username}/keys/{key_id}"): Rule(ADMINS, "account"),
    # intake
    ("POST", "/api/alarms"): Rule(
        STAFF | {ALARMS_KEY}, "body:elder", body=lambda e: {"elder_id": e, "alarm_type": "sos"}
    ),
    ("POST", "/api/hotline/events"): Rule(
        STAFF | {HOTLINE_KEY}, why="the telephony reports every call; who sees a call is decided when it is read"
    ),
    # calls
    ("GET", "/api/calls"): Rule(STAFF, "list"),
    ("GET", "/api/calls/{call_id:path}"): Rule(STAFF, "call"),
    ("POST", "/api/calls/{call_id:path}/classify"): Rule(STAFF, "call", body=lambda _: {"kind": "wrong_number"}),
    ("POST", "/api/calls/{call_id:path}/callback"): Rule(STAFF, "call", body=lambda _: {"outcome": "已回拨"}),
    # which elder of a shared number the call is about (the probe's calls reach one elder: 409, never 404)
    ("POST", "/api/calls/{call_id:path}/pick"): Rule(STAFF, "call", body=lambda _: {"elder_id": None}),
    # click-to-call (console.telephony): those who answer the hotline; the elder called must be in reach (the
    # probe city has no PBX: served means 409 no_extension or 503, never 404)
    ("GET", "/api/telephony"): Rule(STAFF, why="whether the PBX is up, and the reader's own extension"),
    ("POST", "/api/calls/dial"): Rule(
        frozenset({OPERATOR, SUPERVISOR}), "body:elder", body=lambda e: {"number": "13800000000", "elder_id": e}
    ),
    ("GET", "/api/places"): Rule(
        STAFF, why="the gazetteer's streets and buildings: places, not people", query="q=蓝田"
    ),
    # incidents
    ("GET", "/api/incidents"): Rule(STAFF, "list"),
    ("POST", "/api/incidents"): Rule(STAFF, "body:elder", body=lambda e: {"elder_id": e, "alarm_type": "fall"}),
    ("GET", "/api/incidents/{incident_id}"): Rule(STAFF, "incident"),
    ("POST", "/api/incidents/{incident_id}/location"): Rule(
        STAFF, "incident", body=lambda _: {"lat": HOME_A[0], "lon": HOME_A[1]}
    ),
    ("POST", "/api/incidents/{incident_id}/acknowledge"): Rule(STAFF, "incident"),
    ("POST", "/api/incidents/{incident_id}/dispatch"): Rule(STAFF, "incident", body=lambda _: {"responder_id": "ca"}),
    ("POST", "/api/incidents/{incident_id}/type"): Rule(STAFF, "incident", body=lambda _: {"alarm_type": "fall"}),
    ("POST", "/api/incidents/{incident_id}/cancel"): Rule(STAFF, "incident", body=lambda _: {"reason": "误报"}),
    ("POST", "/api/incidents/{incident_id}/escalate"): Rule(STAFF, "incident", body=lambda _: {"service": "120"}),
    ("POST", "/api/incidents/{incident_id}/notes"): Rule(STAFF, "incident", body=lambda _: {"text": "已联系"}),
    ("POST", "/api/incidents/{incident_id}/resolve"): Rule(STAFF, "incident", body=lambda _: {"outcome": "平安"}),
    ("POST", "/api/incidents/{incident_id}/close"): Rule(STAFF, "incident"),
    # referrals to a clinic's green channel (console.referrals): staff refer and cancel; a clinic answers its own
    ("POST", "/api/incidents/{incident_id}/refer"): Rule(STAFF, "incident", body=lambda _: {"clinic_id": "kA"}),
    ("POST", "/api/referrals/{referral_id}/cancel"): Rule(STAFF, "referral", body=lambda _: {"reason": "家属送医"}),
    ("GET", "/api/clinic/referrals"): Rule(
        CLINICS, why="the referrals to the caller's own clinic, never another's (test_a_clinic_sees_only_its_own)"
    ),
    ("POST", "/api/clinic/referrals/{referral_id}/accept"): Rule(CLINICS, why="a referral to their own clinic"),
    ("POST", "/api/clinic/referrals/{referral_id}/decline"): Rule(CLINICS, why="a referral to their own clinic"),
    ("POST", "/api/clinic/referrals/{referral_id}/arrived"): Rule(CLINICS, why="a referral to their own clinic"),
    ("POST", "/api/clinic/referrals/{referral_id}/outcome"): Rule(CLINICS, why="a referral to their own clinic"),
    # needs assessments (console.assessments): assessors, supervisors and admins assess; staff read them too
    ("GET", "/api/assessment/form"): Rule(STAFF | {ASSESSOR}, why="the form's items and scores: nobody's data"),
    ("POST", "/api/assessment/score"): Rule(ASSESSORS, why="scores the form sent; stores nothing, names nobody"),
    ("GET", "/api/assessment/elders"): Rule(ASSESSORS, "list", query="q=13505960"),
    ("GET", "/api/assessments/due"): Rule(ASSESSORS, "list"),
    ("GET", "/api/elders/{elder_id}/assessments"): Rule(STAFF | {ASSESSOR}, "elder"),
    ("POST", "/api/elders/{elder_id}/assessments"): Rule(
        ASSESSORS, "elder", body=lambda _: {"reason": "initial", "answers": ABLE_FORM}
    ),
    # supervisors
    ("GET", "/api/kpis"): Rule(SUPERVISORS, "list"),
    ("GET", "/api/escalations"): Rule(SUPERVISORS, "list"),
    ("GET", "/api/journal"): Rule(SUPERVISORS, "list", query="limit=5000"),
    ("GET", "/api/coverage"): Rule(SUPERVISORS, "list"),
    # the period report (console.reports): the current month (the probe city runs on the real clock), by area
    ("GET", "/api/reports"): Rule(SUPERVISORS, "list", query="by=community"),
    ("GET", "/api/reports.csv"): Rule(SUPERVISORS, "list", query="by=street"),
    ("GET", "/api/reports.xlsx"): Rule(SUPERVISORS, "list", query="by=community"),
    ("GET", "/api/reports.pdf"): Rule(SUPERVISORS, "list", query="by=community"),
    # registry
    ("GET", "/api/elders"): Rule(STAFF, "list", query="limit=10000"),
    ("GET", "/api/elders/{elder_id}"): Rule(STAFF, "elder"),
    ("GET", "/api/elders/{elder_id}/reads"): Rule(SUPERVISORS, "elder"),
    # staff keep the registry's elders and devices of their part of the network (console.keeping); supervisors
    # deactivate and reactivate elders; responders and clinics stay the admins'
    ("PUT", "/api/elders/{elder_id}"): Rule(STAFF, "elder", body=_elder_body),
    ("PUT", "/api/devices/{device_id}"): Rule(STAFF, "device", body=_device_body),
    ("POST", "/api/elders/{elder_id}/deactivate"): Rule(
        SUPERVISORS, "spare_elder", body=lambda _: {"reason": "moved_away"}
    ),
    ("POST", "/api/elders/{elder_id}/reactivate"): Rule(SUPERVISORS, "left_elder", body=lambda _: {"words": "回来了"}),
    ("POST", "/api/devices/{device_id}/unbind"): Rule(STAFF, "spare_device", body=lambda _: {"reason": "换新"}),
    ("POST", "/api/devices/{device_id}/test"): Rule(STAFF, "spare_device"),
    ("GET", "/api/devices/{device_id}/test"): Rule(STAFF, "tested_device"),
    ("GET", "/api/registry/form"): Rule(
        STAFF, why="a free elder id, the protocols, the reasons for leaving care: the form's words, nobody's data"
    ),
    # the elder's file (console.elderfile): staff in reach, opened for a reason (journaled)
    ("GET", "/api/elders/{elder_id}/file"): Rule(STAFF, "elder", query="why=incident"),
    ("GET", "/api/elders/{elder_id}/file.pdf"): Rule(STAFF, "elder", query="why=case_conference"),
    ("PUT", "/api/responders/{responder_id}"): Rule(ADMINS, "responder", body=_responder_body),
    ("GET", "/api/responders"): Rule(STAFF, "list"),
    ("GET", "/api/responders/{responder_id}"): Rule(ADMINS, "responder"),  # the record for the registry page's form
    ("POST", "/api/responders/duty"): Rule(
        SUPERVISORS, "body:responder", body=lambda r: {"roster": [{"responder_id": r, "on": False}]}
    ),
    ("GET", "/api/communities"): Rule(STAFF, "list"),
    # the registry in and out (console.registryio)
    ("POST", "/api/elders/{keep}/merge"): Rule(SUPERVISORS, "elder", body=lambda e: {"other": e}),  # itself: 422
    ("GET", "/api/registry/export/elders.csv"): Rule(SUPERVISORS, "list"),
    ("GET", "/api/registry/export/devices.csv"): Rule(SUPERVISORS, "list"),
    ("GET", "/api/registry/export/responders.csv"): Rule(ADMINS, "list"),
    ("POST", "/api/registry/import"): Rule(
        ADMINS | {IMPORT_KEY}, why="CSV files of the whole centre: an admin who sees it all (else 403) or an import key"
    ),
    ("GET", "/api/export/government"): Rule(
        ADMINS | {EXPORT_KEY},
        query="period=2026-11",
        why="the government platform's figures of the whole centre: an admin seeing it all (else 403), an export key",
    ),
    # the service desk (console.services): caregivers read the menu and the orders assigned to them
    ("GET", "/api/services"): Rule(STAFF | CAREGIVERS, why="the service catalogue: items and prices, no people"),
    ("POST", "/api/service-orders"): Rule(
        STAFF, "body:elder", body=lambda e: {"elder_id": e, "item_id": "meal_delivery", **WINDOW}
    ),
    ("GET", "/api/service-orders"): Rule(STAFF | CAREGIVERS, "list"),
    ("GET", "/api/service-orders/{order_id}"): Rule(STAFF | CAREGIVERS, "order"),
    ("POST", "/api/service-orders/{order_id}/schedule"): Rule(STAFF, "order", body=lambda _: WINDOW),
    ("POST", "/api/service-orders/{order_id}/reschedule"): Rule(STAFF, "order", body=lambda _: WINDOW),
    ("POST", "/api/service-orders/{order_id}/assign"): Rule(STAFF, "order", body=lambda _: {"responder_id": "ca"}),
    ("POST", "/api/service-orders/{order_id}/start"): Rule(STAFF | CAREGIVERS, "order", body=lambda _: {}),
    ("POST", "/api/service-orders/{order_id}/deliver"): Rule(STAFF | CAREGIVERS, "order", body=lambda _: {}),
    ("POST", "/api/service-orders/{order_id}/no_show"): Rule(STAFF | CAREGIVERS, "order", body=lambda _: {}),
    ("POST", "/api/service-orders/{order_id}/confirm"): Rule(STAFF, "order"),
    ("POST", "/api/service-orders/{order_id}/cancel"): Rule(STAFF, "order", body=lambda _: {"reason": "家属取消"}),
    # follow-ups (console.followups): staff call back; complaints and evaluations are the supervisors'
    ("GET", "/api/follow-ups"): Rule(STAFF, "list", query="state=all"),
    ("POST", "/api/follow-ups/{follow_up_id}"): Rule(STAFF, "follow_up", body=lambda _: {"reached": False}),
    ("GET", "/api/complaints"): Rule(SUPERVISORS, "list"),
    ("POST", "/api/complaints/{complaint_id}/settle"): Rule(
        SUPERVISORS, "complaint_task", body=lambda _: {"resolution": "已向老人道歉，调整了送餐时间"}
    ),
    ("GET", "/api/evaluations"): Rule(SUPERVISORS, why="figures per caregiver from the follow-ups in reach"),
    # care calls (console.carecalls): staff call elders living alone, empty nest or aged, and settle the visits
    ("GET", "/api/care-calls"): Rule(STAFF, "list"),
    ("POST", "/api/care-calls/{elder_id}"): Rule(STAFF, "elder", body=lambda _: {"reached": False}),
    ("GET", "/api/care-visits"): Rule(STAFF, "list", query="state=all"),
    ("POST", "/api/care-visits/{visit_id}/settle"): Rule(
        STAFF, "care_visit", body=lambda _: {"note": "上门看过，平安"}
    ),
    # 五定 plans (console.plans): staff's; a caregiver's planned visits reach them as service orders
    ("POST", "/api/plans"): Rule(STAFF, "body:elder", body=lambda e: _plan_body(e)),
    ("GET", "/api/plans"): Rule(STAFF, "list"),
    ("GET", "/api/plans/{plan_id}"): Rule(STAFF, "plan"),
    ("POST", "/api/plans/{plan_id}/end"): Rule(STAFF, "plan", body=lambda _: {"reason": "老人住院"}),
    ("GET", "/api/plan-tasks"): Rule(STAFF, "list", query="state=all&limit=5000"),
    ("POST", "/api/plan-tasks/{task_id}"): Rule(STAFF, "plan_task", body=lambda _: {"outcome": "other"}),
    # vouchers and statements (console.services): an elder's balance is staff's; the month's money supervisors'
    ("GET", "/api/elders/{elder_id}/vouchers"): Rule(STAFF, "elder"),
    ("GET", "/api/statements"): Rule(SUPERVISORS, "list", query="month=2030-03&by=elder"),
    # night duty and handover (console.duty): a shift lies in its scope, a part of the network
    ("GET", "/api/duty"): Rule(STAFF, "list"),
    ("GET", "/api/duty/history"): Rule(STAFF, "list", query="days=92"),
    ("POST", "/api/duty/start"): Rule(STAFF, "body:scope", body=lambda s: {"scope": s}),
    ("POST", "/api/duty/log"): Rule(STAFF, "body:scope", body=lambda s: {"scope": s, "text": "巡查"}),
    ("POST", "/api/duty/handover"): Rule(STAFF, "body:scope", body=lambda s: {"scope": s, "words": "交班"}),
    ("POST", "/api/duty/take-over"): Rule(STAFF, "body:scope", body=lambda s: {"scope": s}),
    # websockets
    ("WS", "/ws/console"): Rule(STAFF, "list"),
    ("WS", "/ws/caregiver"): Rule(CAREGIVERS | {FAMILY}, why="a caregiver's own offers and jobs; a family member's"),
}


def http_routes(app: FastAPI) -> Iterator[tuple[str, str, BaseRoute]]:
    """(method, path, route) of every HTTP and websocket route the app answers, through included routers."""

    def walk(routes: list[BaseRoute]) -> Iterator[tuple[str, str, BaseRoute]]:
        for route in routes:
            original = getattr(route, "original_router", None)
            if original is not None:  # an included router (FastAPI keeps it whole)
                yield from walk(original.routes)
            elif isinstance(route, APIWebSocketRoute):
                yield "WS", route.path, route
            elif isinstance(route, APIRoute | Mount) or hasattr(route, "methods"):
                if isinstance(route, Mount):
                    continue  # static files: the pages' own scripts and styles, public
                for method in sorted(getattr(route, "methods", None) or ()):
                    if method != "HEAD":
                        yield method, route.path, route  # type: ignore[attr-defined]

    return walk(app.routes)


def declared(route: BaseRoute) -> tuple[frozenset[str], str | None] | None:
    """The roles (and service grant) the route's own dependency admits (console.deps.allow), or None."""
    dependant = getattr(route, "dependant", None)
    stack = list(dependant.dependencies) if dependant is not None else []
    while stack:
        dependency = stack.pop()
        call = dependency.call
        if hasattr(call, "roles"):
            return frozenset(call.roles), call.grant
        stack.extend(dependency.dependencies)
    return None


# -- the city ------------------------------------------------------------------------------------------


@dataclass
class City:
    client: TestClient
    tokens: dict[str, str | None] = field(default_factory=dict)
    scoped: dict[str, str] = field(default_factory=dict)  # role -> a token of that role scoped to street A
    b_ids: set[str] = field(default_factory=set)  # every thing made in street B: no answer to A may name one
    serial: Iterator[int] = field(default_factory=itertools.count)

    def head(self) -> int:
        """The journal's head, read from the core itself (asking the API would be a read on record)."""
        head: int = self.client.app.state.core.journal.durable_seq  # type: ignore[attr-defined]
        return head

    def fresh(self, subject: str, street: str) -> str:
        """A thing of this kind in this street that no other case has touched."""
        admin = self.tokens[ADMIN]
        assert admin is not None
        a = street == "A"
        n = next(self.serial)
        made = self._make(subject, a, n, admin)
        if not a:
            self.b_ids.add(f'"{made}"')  # quoted, as an answer names it (not a piece of a hash)
        return made

    def _make(self, subject: str, a: bool, n: int, admin: str) -> str:
        if subject == "incident":
            body = {"alarm_type": "fall", "caller": f"0210000{n:04d}", "lat": (HOME_A if a else HOME_B)[0],
                    "lon": (HOME_A if a else HOME_B)[1], "note": "probe"}  # fmt: skip
            response = self.client.post("/api/incidents", json=body, headers=auth(admin))
            assert response.status_code == 201, response.text
            incident_id: str = response.json()["incident_id"]
            return incident_id
        if subject == "referral":  # a fresh incident of the street referred to clinic kA
            incident_id = self._make("incident", a, n, admin)
            body = {"clinic_id": "kA", "note": "probe"}
            response = self.client.post(f"/api/incidents/{incident_id}/refer", json=body, headers=auth(admin))
            assert response.status_code == 200, response.text
            referral_id: str = response.json()["referrals"][-1]["referral_id"]
            return referral_id
        if subject == "call":
            call_id = f"probe-{n}-{'A' if a else 'B'}"
            caller = "13505960001" if a else "13505960099"
            for event in ("ringing", "answered"):
                body = {"event": event, "call_id": call_id, "caller": caller}
                assert self.client.post("/api/hotline/events", json=body, headers=auth(admin)).status_code == 200
            return call_id
        if subject == "order":
            body = {"elder_id": "ea" if a else "eb", "item_id": "meal_delivery", **WINDOW}
            response = self.client.post("/api/service-orders", json=body, headers=auth(admin))
            assert response.status_code == 201, response.text
            order_id: str = response.json()["order_id"]
            return order_id
        if subject in ("follow_up", "complaint", "complaint_task"):  # an incident closed, then answered with one
            body = {"elder_id": "ea" if a else "eb", "alarm_type": "fall"}
            response = self.client.post("/api/incidents", json=body, headers=auth(admin))
            assert response.status_code == 201, response.text
            incident_id = response.json()["incident_id"]
            for step, step_body in (("resolve", {"outcome": "平安"}), ("close", None)):
                done = self.client.post(f"/api/incidents/{incident_id}/{step}", json=step_body, headers=auth(admin))
                assert done.status_code == 200, done.text
            listed = self.client.get("/api/follow-ups?limit=5000", headers=auth(admin)).json()["follow_ups"]
            follow_up_id: str = next(f["follow_up_id"] for f in listed if f["subject_id"] == incident_id)
            if subject in ("complaint", "complaint_task"):
                answer = {"reached": True, "satisfaction": 1, "complaint": "probe"}
                answered = self.client.post(f"/api/follow-ups/{follow_up_id}", json=answer, headers=auth(admin))
                assert answered.status_code == 200, answered.text
            if subject == "complaint_task":
                complaint_id: str = answered.json()["complaint_id"]
                return complaint_id
            return follow_up_id
        if subject == "care_visit":  # a drill's three unanswered care calls (the real list keeps the elder)
            return self._care_visit("ea" if a else "eb", admin)
        if subject in ("plan", "plan_task"):  # a plan; its first visit missed, for a task
            response = self.client.post("/api/plans", json=_plan_body("ea" if a else "eb"), headers=auth(admin))
            assert response.status_code == 201, response.text
            plan = response.json()
            if subject == "plan":
                plan_id: str = plan["plan_id"]
                return plan_id
            first = plan["orders"][0]
            core = self.client.app.state.core  # type: ignore[attr-defined]  # the app's state is untyped
            self.client.portal.call(_missed, engine_of(core), first["order_id"], first["end"])  # type: ignore[union-attr]  # entered
            listed = self.client.get("/api/plan-tasks?state=all&limit=5000", headers=auth(admin)).json()["tasks"]
            task_id: str = next(t["task_id"] for t in listed if t["order_id"] == first["order_id"])
            return task_id
        if subject == "account":
            username = f"svc_{'a' if a else 'b'}{n}"
            body = {"username": username, "name": username, "role": "service", "grants": ["alarms"],
                    "scopes": [STREET_A if a else STREET_B]}  # fmt: skip
            assert self.client.post("/api/accounts", json=body, headers=auth(admin)).status_code == 201
            return username
        if subject in ("spare_elder", "left_elder"):  # an elder of its own, to deactivate (or reactivate)
            body = (elder_a() if a else elder_b()).model_dump(mode="json")
            body.update(elder_id=f"spare{n}{'a' if a else 'b'}", name=f"备用{n}", phone=None)
            made = self.client.put(f"/api/elders/{body['elder_id']}", json=body, headers=auth(admin))
            assert made.status_code == 200, made.text
            if subject == "left_elder":
                left = self.client.post(f"/api/elders/{body['elder_id']}/deactivate", json={"reason": "died"},
                                        headers=auth(admin))  # fmt: skip
                assert left.status_code == 200, left.text
            spare_id: str = body["elder_id"]
            return spare_id
        if subject in ("spare_device", "tested_device"):  # a device of its own bound to the street's elder
            device = Device(device_id=f"77{n:08d}", protocol="watch", elder_id="ea" if a else "eb")
            made = self.client.put(f"/api/devices/{device.device_id}", json=device.model_dump(mode="json"),
                                   headers=auth(admin))  # fmt: skip
            assert made.status_code == 200, made.text
            if subject == "tested_device":
                tested = self.client.post(f"/api/devices/{device.device_id}/test", headers=auth(admin))
                assert tested.status_code == 200, tested.text
            return device.device_id
        return {"elder": ("ea", "eb"), "device": ("8800000001", "8800000002"), "responder": ("ca", "cb"),
                "scope": (STREET_A, STREET_B)}[subject][0 if a else 1]  # fmt: skip

    def _care_visit(self, elder_id: str, admin: str) -> str:
        listed = self.client.get("/api/care-visits", headers=auth(admin)).json()["visits"]
        for visit in (v for v in listed if v["elder_id"] == elder_id and v["drill"]):  # one open visit at a time
            settled = self.client.post(f"/api/care-visits/{visit['visit_id']}/settle", json={"note": "平安"},
                                       headers=auth(admin))  # fmt: skip
            assert settled.status_code == 200, settled.text
        while True:
            answer = self.client.post(f"/api/care-calls/{elder_id}", json={"reached": False, "drill": True},
                                      headers=auth(admin))  # fmt: skip
            assert answer.status_code == 200, answer.text
            if answer.json()["visit"] is not None:
                visit_id: str = answer.json()["visit"]["visit_id"]
                return visit_id


def _service(client: TestClient, admin: str, username: str, grants: list[str]) -> str:
    body = {"username": username, "name": username, "role": "service", "grants": grants, "scopes": ["*"]}
    assert client.post("/api/accounts", json=body, headers=auth(admin)).status_code == 201
    response = client.post(f"/api/accounts/{username}/keys", json={"label": "probe"}, headers=auth(admin))
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    data: Path = tmp_path_factory.mktemp("access") / "data"
    settings = settings_for(data, read_window_s=0)
    asyncio.run(seed_two_streets(settings))
    with TestClient(app_for(settings)) as client:
        admin = token(client)
        city = City(client)
        for clinic_id, street, (lat, lon) in (("kA", STREET_A, HOME_A), ("kB", STREET_B, HOME_B)):
            made = responder(clinic_id, lat - 0.002, lon, kind="clinic", skills=[], hours="24h", green_channel=True,
                             name=f"卫生院{clinic_id}", community=f"{street}/社区")  # fmt: skip
            put = client.put(f"/api/responders/{clinic_id}", json=made.model_dump(mode="json"), headers=auth(admin))
            assert put.status_code == 200, put.text
        city.tokens = {
            ANON: None,
            ADMIN: admin,
            SUPERVISOR: person(client, admin, "sup_all", "supervisor", ["*"]),
            OPERATOR: person(client, admin, "op_all", "operator", ["*"]),
            CAREGIVER: person(client, admin, "ca", "caregiver", ["*"], responder_id="ca"),
            CLINIC: person(client, admin, "kdesk", "clinic", ["*"], responder_id="kA"),
            ASSESSOR: person(client, admin, "as_all", "assessor", ["*"]),
            HOTLINE_KEY: _service(client, admin, "pbx", ["hotline"]),
            ALARMS_KEY: _service(client, admin, "partner", ["alarms"]),
            BARE_KEY: _service(client, admin, "bare", []),
            IMPORT_KEY: _service(client, admin, "registrar", ["import"]),
            EXPORT_KEY: _service(client, admin, "platform", ["export"]),
        }
        city.scoped = {
            ADMIN: person(client, admin, "adm_a", "admin", [STREET_A]),
            SUPERVISOR: person(client, admin, "sup_a", "supervisor", [STREET_A]),
            OPERATOR: person(client, admin, "op_a", "operator", [STREET_A]),
        }
        person(client, admin, "op_b", "operator", [STREET_B])
        for elder_id in ("ea", "eb"):  # both on the care-call lists
            flagged = client.put(f"/api/elders/{elder_id}", json=_elder_body(elder_id), headers=auth(admin))
            assert flagged.status_code == 200, flagged.text
        city.tokens[FAMILY] = person(client, admin, "fam_a", "family", ["*"], responder_id=kin_id("ea", SON_A))
        for street in ("A", "B"):  # something of each street in every list
            city.fresh("incident", street)
            city.fresh("call", street)
            city.fresh("order", street)
            city.fresh("complaint", street)
            city.fresh("care_visit", street)
            city.fresh("plan_task", street)
        for scope in ("*", STREET_B):  # shifts handed over with everything (and street B's things) on the desk
            for step, body in (("start", {}), ("handover", {"words": "交班"})):
                done = client.post(f"/api/duty/{step}", json={"scope": scope, **body}, headers=auth(admin))
                assert done.status_code in (200, 201), done.text
        yield city


def _path(template: str, values: dict[str, str]) -> str:
    parts = template.split("/")
    return "/".join(values[_name(part)] if part.startswith("{") else part for part in parts)


def _params(template: str) -> list[str]:
    return [_name(part) for part in template.split("/") if part.startswith("{")]


def _name(part: str) -> str:
    return part[1:-1].partition(":")[0]  # "{call_id:path}" -> "call_id"


def _request(city: City, method: str, path: str, who: str | None, body: Any = None) -> Any:
    headers = auth(who) if who else {}
    if method == "GET" or method == "DELETE":
        return city.client.request(method, path, headers=headers)
    return city.client.request(method, path, headers=headers, json=body)


# -- the tests -----------------------------------------------------------------------------------------


def test_every_route_has_a_rule(city: City) -> None:
    answered = {(method, path) for method, path, _ in http_routes(city.client.app)}  # type: ignore[arg-type]
    without_rule = sorted(answered - set(RULES))
    assert not without_rule, f"routes without an access rule (add them to RULES): {without_rule}"
    stale = sorted(set(RULES) - answered)
    assert not stale, f"rules for routes the app does not have: {stale}"


def test_a_route_without_a_rule_is_caught(tmp_path: Path) -> None:
    app = app_for(settings_for(tmp_path / "data"))

    @app.get("/api/secret")
    async def secret() -> dict[str, str]:
        return {"all": "the records"}

    missing = {(m, p) for m, p, _ in http_routes(app)} - set(RULES)
    assert missing == {("GET", "/api/secret")}


def _cases() -> list[tuple[str, str, str]]:
    return [(method, path, caller) for (method, path) in RULES for caller in CALLERS if method != "WS"]


@pytest.mark.parametrize(("method", "path", "caller"), _cases())
def test_each_caller_is_admitted_or_refused_as_the_rule_says(city: City, method: str, path: str, caller: str) -> None:
    rule = RULES[(method, path)]
    target = _path(path, dict.fromkeys(_params(path), "no-such-thing"))
    if rule.query:
        target += "?" + rule.query
    who = city.tokens[caller]
    if (method, path) == ("POST", "/api/auth/logout") and who is not None and caller in (
        ADMIN, SUPERVISOR, OPERATOR, CAREGIVER, FAMILY, CLINIC, ASSESSOR
    ):  # fmt: skip
        who = token(city.client, *_credentials(caller))  # a token of its own: logging out revokes it
    response = _request(city, method, target, who, body={"__probe__": True})
    if caller in rule.who:
        assert response.status_code not in (401, 403), (caller, response.status_code, response.text)
    else:
        expected = 401 if caller == ANON else 403
        assert response.status_code == expected, (caller, response.status_code, response.text)


def _credentials(caller: str) -> tuple[str, str]:
    return {
        ADMIN: ("admin", "test-admin-pw"),
        SUPERVISOR: ("sup_all", "password-123"),
        OPERATOR: ("op_all", "password-123"),
        CAREGIVER: ("ca", "password-123"),
        FAMILY: ("fam_a", "password-123"),
        CLINIC: ("kdesk", "password-123"),
        ASSESSOR: ("as_all", "password-123"),
    }[caller]


@pytest.mark.parametrize(("method", "path"), [key for key in RULES if key[0] != "WS"])
def test_the_route_declares_the_rule(city: City, method: str, path: str) -> None:
    """The callers the route's own dependency admits (console.deps.allow) are the rule's; a public route
    declares none."""
    rule = RULES[(method, path)]
    route = next(r for m, p, r in http_routes(city.client.app) if (m, p) == (method, path))  # type: ignore[arg-type]
    found = declared(route)
    if found is None:
        assert rule.who == EVERYONE, f"{path} admits {sorted(rule.who)} but declares no rule"
        return
    roles, grant = found
    callers = set(roles & {ADMIN, SUPERVISOR, OPERATOR, CAREGIVER, FAMILY, CLINIC, ASSESSOR})
    if "service" in roles:
        callers |= {HOTLINE_KEY, ALARMS_KEY, BARE_KEY, IMPORT_KEY, EXPORT_KEY}
    elif grant is not None:
        callers.add(f"service:{grant}")
    assert callers == rule.who, (path, sorted(callers))


def _scoped_caller(rule: Rule) -> str:
    for role in (OPERATOR, SUPERVISOR, ADMIN):
        if role in rule.who:
            return role
    raise AssertionError("no scoped person may call this route")


SCOPED = [key for key, rule in RULES.items() if rule.subject and rule.subject != "list" and key[0] != "WS"]


def _about(city: City, method: str, path: str, street: str) -> tuple[str, str, Any]:
    """A request about a fresh thing of ``street`` (A: the scoped person's, B: the other) by the scoped person
    the route admits: (their token, the path, a valid body)."""
    rule = RULES[(method, path)]
    assert rule.subject is not None
    subject = rule.subject.removeprefix("body:")
    thing = city.fresh(subject, street)
    who = city.scoped[_scoped_caller(rule)]
    values = dict.fromkeys(_params(path), thing)
    if "key_id" in values:
        values["username"] = thing
        values["key_id"] = "k-none"
        if street == "A":  # a key of one's own street to revoke; the other street's is never reached
            created = city.client.post(f"/api/accounts/{thing}/keys", json={"label": "x"}, headers=auth(who))
            assert created.status_code == 201, created.text
            values["key_id"] = created.json()["key_id"]
    body = rule.body(thing) if rule.body else None
    if (method, path) == ("POST", "/api/accounts"):
        scope = STREET_A + "/蓝田社区" if street == "A" else STREET_B
        body = {"username": f"svc_new_{street.lower()}{next(city.serial)}", "name": "x", "role": "service",
                "grants": [], "scopes": [scope]}  # fmt: skip
    return who, _path(path, values), body


@pytest.mark.parametrize(("method", "path"), SCOPED)
def test_out_of_scope_is_as_if_it_did_not_exist_and_writes_nothing(city: City, method: str, path: str) -> None:
    who, target, body = _about(city, method, path, "B")
    before = city.head()
    response = _request(city, method, target, who, body)
    assert response.status_code in (403, 404), (response.status_code, response.text)
    if response.status_code == 403:
        assert response.json()["code"] in ("out_of_scope", "scope_exceeded"), response.text
    assert city.head() == before, "a refused request wrote to the record"


@pytest.mark.parametrize(("method", "path"), SCOPED)
def test_in_scope_is_served(city: City, method: str, path: str) -> None:
    who, target, body = _about(city, method, path, "A")
    response = _request(city, method, target, who, body)
    # served: done, or refused for the thing's state (409) or the body's content (422), never for access
    assert response.status_code not in (401, 403, 404), (response.status_code, response.text)


LISTS = [key for key, rule in RULES.items() if rule.subject == "list" and key[0] != "WS"]


@pytest.mark.parametrize(("method", "path"), LISTS)
def test_a_list_holds_nothing_out_of_scope(city: City, method: str, path: str) -> None:
    rule = RULES[(method, path)]
    role = _scoped_caller(rule)
    target = path + ("?" + rule.query if rule.query else "")
    response = _request(city, method, target, city.scoped[role])
    assert response.status_code == 200, response.text
    text = _as_json(path, response.text, response.content)
    leaked = [mark for mark in (*B_MARKS, *city.b_ids) if mark in text]
    where = [line for line in text.split("},{") if any(mark in line for mark in leaked)][:3]
    assert not leaked, f"{path} shows {leaked} to a person of street A: {where}"
    centre = _request(city, method, target, city.tokens[ADMIN])
    everywhere = _as_json(path, centre.text, centre.content)
    # figures name nothing; nothing of the city escalated yet, nor delivered (tests/console/test_statements.py)
    if path not in ("/api/kpis", "/api/escalations", "/api/statements"):
        marks = (*B_MARKS, *city.b_ids)
        assert any(mark in everywhere for mark in marks), f"{path}: the probe city has nothing of B in it"


def _as_json(path: str, text: str, content: bytes = b"") -> str:
    """A CSV export's cells written as JSON strings, so the marks (quoted ids) find them as in any other answer;
    a workbook's cells likewise, sheet by sheet; a PDF's text as pdftotext extracts it."""
    if path.endswith(".xlsx"):
        book = openpyxl.load_workbook(io.BytesIO(content))
        cells = [[[cell for cell in row] for row in sheet.iter_rows(values_only=True)] for sheet in book]
        return json.dumps(cells, ensure_ascii=False, default=str)
    if path.endswith(".pdf"):
        pdftotext = require_program("pdftotext")
        return subprocess.run([pdftotext, "-", "-"], input=content, capture_output=True, check=True).stdout.decode()
    if not path.endswith(".csv"):
        return text
    return json.dumps(list(csv.reader(io.StringIO(text.removeprefix("\ufeff")))), ensure_ascii=False)


@pytest.mark.parametrize(("path", "first"), [("/ws/console", "snapshot"), ("/ws/caregiver", "hello")])
@pytest.mark.parametrize("caller", CALLERS)
def test_each_caller_is_admitted_to_a_websocket_or_refused_as_the_rule_says(
    city: City, path: str, first: str, caller: str
) -> None:
    who = city.tokens[caller]
    url = path + (f"?token={who}" if who else "")
    if caller in RULES[("WS", path)].who:
        with city.client.websocket_connect(url) as ws:
            assert ws.receive_json()["type"] == first
        return
    with pytest.raises(WebSocketDisconnect) as refused, city.client.websocket_connect(url) as ws:
        ws.receive_json()
    assert refused.value.code == (4401 if caller == ANON else 4403)


@pytest.mark.parametrize("role", [OPERATOR, SUPERVISOR, ADMIN])
def test_the_console_stream_from_zero_holds_nothing_out_of_scope(city: City, role: str) -> None:
    marker = city.fresh("incident", "A")
    note = {"text": f"end-{marker}"}
    assert (
        city.client.post(f"/api/incidents/{marker}/notes", json=note, headers=auth(city.scoped[role])).status_code
        == 200
    )
    seen = []
    with city.client.websocket_connect(f"/ws/console?token={city.scoped[role]}&after=0") as ws:
        while True:
            message = ws.receive_text()
            seen.append(message)
            if f"end-{marker}" in message:
                break
    leaked = [mark for mark in (*B_MARKS, *city.b_ids) if any(mark in message for message in seen)]
    assert not leaked, f"the {role}'s stream shows {leaked}"


def test_a_clinic_sees_only_its_own_referrals_and_no_elder(city: City) -> None:
    """The desk of clinic kA lists and answers only referrals to kA; another clinic's referral is as if it did not
    exist (404, nothing written); no elder list, incident or record is open to it (403)."""
    admin = city.tokens[ADMIN]
    assert admin is not None
    incident = city.fresh("incident", "A")
    to_b = city.client.post(f"/api/incidents/{incident}/refer", json={"clinic_id": "kB"}, headers=auth(admin))
    assert to_b.status_code == 200, to_b.text
    theirs = to_b.json()["referrals"][-1]["referral_id"]
    mine = city.fresh("referral", "A")
    desk = city.tokens[CLINIC]
    listed = city.client.get("/api/clinic/referrals", headers=auth(desk)).json()
    ids = {r["referral_id"] for r in listed["referrals"]}
    assert mine in ids and theirs not in ids and listed["clinic_id"] == "kA"
    assert not any("address" in r or "phone" in r for r in listed["referrals"])
    before = city.head()
    for action in ("accept", "decline"):
        answer = city.client.post(f"/api/clinic/referrals/{theirs}/{action}", json={}, headers=auth(desk))
        assert answer.status_code == 404 and answer.json()["code"] == "unknown_referral", answer.text
    assert city.head() == before
    for path in ("/api/elders", "/api/incidents", f"/api/incidents/{incident}", "/api/elders/ea", "/api/responders"):
        assert city.client.get(path, headers=auth(desk)).status_code == 403, path
    accepted = city.client.post(f"/api/clinic/referrals/{mine}/accept", json={}, headers=auth(desk))
    assert accepted.status_code == 200, accepted.text
    shown = next(r for r in accepted.json()["referrals"] if r["referral_id"] == mine)
    assert shown["state"] == "accepted" and shown["details"] is False  # a caller nobody knew: no elder to show
