"""Matching: who is offered an incident, in what order, and why.

Theory of operation
-------------------
This module owns the ranking of responders for an alarm and the choice of a clinic to propose. It reads two
geo indexes and the registry's responder records; it writes nothing, sends no offer and keeps no state between
calls, so the same inputs always give the same ranking.

* ``available`` holds exactly the responders who may be offered work now: on duty, free, with a fresh
  position. Keeping it so (removing a responder on an offer, putting them back when free) is the caller's job;
  a responder absent from it is never proposed. Each point is tagged with the responder's skills mask
  and travel mode (``registry.responder_tags``), so the index filters by both.
* ``clinics`` holds clinics, untagged. Opening hours and the green channel (绿色通道) come from the records.

Rules
-----
1. A candidate has the skill asked for and is within the radius asked for (great-circle distance, as measured
   by the index; by default ``radius_m``). The engine's wider circle asks again farther, then for anyone
   (no skill): the reasons then say who lacks the skill the alarm needs.
2. Candidates are ranked by estimated time of arrival, then exact distance, then id, so a car farther away
   may beat a walker nearer. The ETA comes from the travel table below and the exact geodesic distance on the
   WGS-84 ellipsoid (:func:`geodesic_m`), which is computed only for the responders fetched from the index.
3. The elder's own caregiver (五定: fixed caregiver for a fixed elder) goes first when available, not
   excluded and within ``own_caregiver_m``, even without the skill; the reasons say so.
4. Every candidate carries its reasons, short English phrases the operator reads and the journal keeps.

The index returns the nearest responders, but the ranking is by arrival time, so a car farther away can beat a
walker nearer. Within one travel mode, though, nearer means sooner; so the k best overall are among the k
nearest of each mode. The index tags every responder with its skills and its travel mode, and the matcher asks
it one question by arrival time ("the walkers, cyclists and drivers with this skill whose great-circle ETA is
within the sphere-versus-ellipsoid error of the k-th best", ``soonest_groups``: one walk of the grid, which
ends once no unseen cell can hold anyone arriving that soon), never a growing scan. Those are ranked on the
index's great-circle distance, which is cheap; the exact geodesic (about 2 µs a pair) is computed only for the
k best and for any other whose great-circle ETA lies within that error (0.6 % each way) of the k-th, since
only those can change places. The final order is by exact ETA, so it equals a brute-force geodesic ranking, at
the cost of a handful of geodesics per alarm. A backend that cannot walk by arrival time answers from the 2k
nearest of each mode, asked again for twice as many while a mode's last could still rank (a crowd at one
spot, all tied). A responder in the index without a profile is never proposed: the question is asked again
without them. The reasons, text for
the operator, are written for the k kept only.

Travel model
------------
``eta_s = set-off + distance × detour / speed``, with the geodesic distance and a detour factor of 1.3 for
streets that do not run straight:

    ======  ===========  ============
    travel  speed (m/s)  set-off (s)
    ======  ===========  ============
    walk    1.3          60
    bike    4.0          90
    car     8.0          180
    ======  ===========  ============
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from pyproj import Geod

from dispatch.entries import ProposedClinic, RankedResponder
from dispatch.errors import InvalidInput
from dispatch.geo import GeoIndex
from dispatch.registry import SKILL_BITS, TRAVEL_BITS, Responder, open_at

R = TypeVar("R", RankedResponder, ProposedClinic)


@dataclass(frozen=True, slots=True)
class TravelMode:
    speed_m_s: float
    setoff_s: float


TRAVEL_MODES: dict[str, TravelMode] = {
    "walk": TravelMode(speed_m_s=1.3, setoff_s=60.0),
    "bike": TravelMode(speed_m_s=4.0, setoff_s=90.0),
    "car": TravelMode(speed_m_s=8.0, setoff_s=180.0),
}
DETOUR_FACTOR = 1.3
CLINIC_TRAVEL = "car"

_WGS84 = Geod(ellps="WGS84")
_CLINIC_BATCH = 20
_TRAVEL_GROUPS = tuple(TRAVEL_BITS.values())
#: how far apart a great-circle ETA and the exact one can be, both ways (the geodesic is 99.4-100.6 % of it)
ROUGH_ETA_ERROR = 0.012
#: each travel mode's ETA as the index's cost of reaching a point of its group
TRAVEL_COSTS = tuple((TRAVEL_MODES[t].setoff_s, DETOUR_FACTOR / TRAVEL_MODES[t].speed_m_s) for t in TRAVEL_BITS)


def eta_s(distance_m: float, travel: str) -> float:
    """Estimated seconds to arrive over ``distance_m`` of geodesic distance by this travel mode."""
    mode = TRAVEL_MODES[travel]
    return mode.setoff_s + distance_m * DETOUR_FACTOR / mode.speed_m_s


def geodesic_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Exact distance in metres on the WGS-84 ellipsoid.

    Karney's algorithm, as geopy's ``geodesic`` computes it through geographiclib, here in PROJ's C
    implementation (pyproj): about 2 µs a pair instead of 40-90 µs in pure Python, and the same metres to within
    a few nanometres. pyproj takes longitude first.
    """
    return float(_WGS84.inv(lon1, lat1, lon2, lat2)[2])


#: a responder proposed for an incident, with the figures and reasons shown to the operator (exact metres
#: and seconds here; the journal keeps them rounded, see :func:`rounded`)
Candidate = RankedResponder
#: the clinic proposed for a medical alarm, reached by car
ClinicProposal = ProposedClinic


def rounded(proposal: R) -> R:
    """A candidate or clinic as the journal keeps it: whole metres and seconds."""
    return replace(proposal, distance_m=round(proposal.distance_m), eta_s=round(proposal.eta_s))


class Matcher:
    """Ranks available responders and proposes clinics. See the module docstring for the rules."""

    def __init__(
        self,
        available: GeoIndex,
        clinics: GeoIndex,
        profiles: Mapping[str, Responder],
        *,
        radius_m: float = 5000.0,
        k: int = 5,
        own_caregiver_m: float = 2000.0,
        clinic_radius_m: float = 20000.0,
        tz: str = "Asia/Shanghai",
    ) -> None:
        self.available = available
        self.clinics = clinics
        self.profiles = profiles
        self.radius_m = radius_m
        self.k = k
        self.own_caregiver_m = own_caregiver_m
        self.clinic_radius_m = clinic_radius_m
        self.zone = ZoneInfo(tz)

    async def rank(
        self,
        lat: float,
        lon: float,
        *,
        skill: str | None,
        own_caregiver_id: str | None = None,
        exclude: Collection[str] = (),
        k: int | None = None,
        radius_m: float | None = None,
        wanted: str | None = None,
    ) -> list[Candidate]:
        """Up to ``k`` candidates for an alarm at (lat, lon), best first, within ``radius_m`` (default: the
        matcher's). ``wanted``: the skill the alarm needs when this is the wider circle's call for anyone
        (``skill`` None), so that the reasons say who lacks it."""
        want = self.k if k is None else k
        for needed in (skill, wanted):
            if needed is not None and needed not in SKILL_BITS:
                raise InvalidInput(f"unknown skill {needed!r}", field="skill", code="unknown_skill")
        if want <= 0:
            return []
        radius = self.radius_m if radius_m is None else radius_m
        named = skill if skill is not None else wanted
        own = None
        if own_caregiver_id is not None and own_caregiver_id not in exclude:
            own = await self._own_caregiver(lat, lon, own_caregiver_id, named)
        if own is None:
            return await self._by_eta(lat, lon, skill, named, radius, own_caregiver_id, exclude, want)
        skip = {*exclude, own.responder_id}
        return [own, *await self._by_eta(lat, lon, skill, named, radius, own_caregiver_id, skip, want - 1)]

    async def _own_caregiver(self, lat: float, lon: float, responder_id: str, skill: str | None) -> Candidate | None:
        """The elder's own caregiver as the first candidate, if available and close enough."""
        profile = self.profiles.get(responder_id)
        if profile is None:
            return None
        position = await self.available.get(responder_id)
        if position is None:  # off duty, busy or position stale
            return None
        distance = geodesic_m(lat, lon, position[0], position[1])
        if distance > self.own_caregiver_m:
            return None
        return _candidate(profile, distance, skill, own=True, preferred=True)

    async def _by_eta(
        self,
        lat: float,
        lon: float,
        skill: str | None,
        named: str | None,
        radius_m: float,
        own_caregiver_id: str | None,
        skip: Collection[str],
        want: int,
    ) -> list[Candidate]:
        """The ``want`` best candidates by arrival time (see the module docstring for why this is exact); with
        ``skill``, only those who have it; ``named``, the skill their reasons speak of."""
        if want <= 0:
            return []
        any_tags = SKILL_BITS[skill] if skill is not None else 0
        profiles = self.profiles
        while True:
            by_travel = await self.available.soonest_groups(
                lat, lon, k=want, radius_m=radius_m, any_tags=any_tags, groups=_TRAVEL_GROUPS, costs=TRAVEL_COSTS,
                slack=ROUGH_ETA_ERROR, exclude=skip,
            )  # fmt: skip
            unknown = {rid for hits in by_travel for rid, _ in hits if rid not in profiles}
            if not unknown:
                break
            skip = {*skip, *unknown}  # no profile, never proposed: asked again as if absent
        rough = [  # in one travel mode, nearer is sooner
            (eta_s(distance, travel), distance, rid)
            for travel, hits in zip(TRAVEL_BITS, by_travel, strict=True)
            for rid, distance in hits
        ]
        if not rough:
            return []
        rough.sort()
        bound = rough[min(want, len(rough)) - 1][0] * (1 + ROUGH_ETA_ERROR)
        exact: list[tuple[float, float, str]] = []
        for rough_eta, _, responder_id in rough:
            if len(exact) >= want and rough_eta > bound:
                break
            position = await self.available.get(responder_id)
            if position is None:
                continue
            distance = geodesic_m(lat, lon, position[0], position[1])
            exact.append((eta_s(distance, profiles[responder_id].travel), distance, responder_id))
        exact.sort()  # by arrival, then distance, then id
        return [
            _candidate(profiles[rid], distance, named, own=rid == own_caregiver_id, preferred=False)
            for _, distance, rid in exact[:want]
        ]

    async def nearest_clinic(self, lat: float, lon: float, now_ts: float) -> ClinicProposal | None:
        """The nearest clinic with a green channel, open at ``now_ts`` local time, within ``clinic_radius_m``."""
        local = datetime.fromtimestamp(now_ts, self.zone)
        minute_of_day = local.hour * 60 + local.minute
        seen: set[str] = set()
        while True:
            hits = await self.clinics.nearest(lat, lon, k=_CLINIC_BATCH, radius_m=self.clinic_radius_m, exclude=seen)
            for clinic_id, _ in hits:
                seen.add(clinic_id)
                profile = self.profiles.get(clinic_id)
                if profile is None or not profile.green_channel or not open_at(profile.hours, minute_of_day):
                    continue
                position = await self.clinics.get(clinic_id)
                if position is None:
                    continue
                distance = geodesic_m(lat, lon, position[0], position[1])
                return _clinic_proposal(profile, distance)
            if len(hits) < _CLINIC_BATCH:
                return None


def _candidate(profile: Responder, distance: float, skill: str | None, *, own: bool, preferred: bool) -> Candidate:
    eta = eta_s(distance, profile.travel)
    reasons: list[str] = []
    if own:
        reasons.append("own caregiver (五定)")
        if not preferred:
            reasons.append("too far to go first, ranked by arrival time")
    if skill is not None:
        if skill in profile.skills:
            reasons.append(f"has skill {skill}")
        elif own and preferred:
            reasons.append(f"lacks skill {skill}, first as the elder's own caregiver")
        else:
            reasons.append(f"lacks skill {skill}: nobody with it is free nearer")
    reasons.append(f"{_distance_text(distance)} by {profile.travel}, ETA {_eta_text(eta)}")
    return Candidate(
        responder_id=profile.responder_id,
        name=profile.name,
        distance_m=distance,
        eta_s=eta,
        travel=profile.travel,
        own=own,
        reasons=tuple(reasons),
    )


def _clinic_proposal(profile: Responder, distance: float) -> ClinicProposal:
    eta = eta_s(distance, CLINIC_TRAVEL)
    hours = "no opening hours recorded" if profile.hours is None else f"open now ({profile.hours})"
    return ClinicProposal(
        clinic_id=profile.responder_id,
        name=profile.name,
        distance_m=distance,
        eta_s=eta,
        reasons=(
            "green channel (绿色通道)",
            hours,
            f"{_distance_text(distance)} by {CLINIC_TRAVEL}, ETA {_eta_text(eta)}",
        ),
    )


def _distance_text(distance_m: float) -> str:
    if distance_m < 1000.0:
        return f"{round(distance_m)} m"
    return f"{distance_m / 1000.0:.1f} km"


def _eta_text(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds / 60.0))} min"
