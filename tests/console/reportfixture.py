"""A period report of the shape ``GET /api/reports`` answers (the issue's schema), for the tests of its exports
and its page that do not need a city of alarms: two communities of one street, the incidents with no place,
a caregiver whose name a spreadsheet would read as a formula."""

from __future__ import annotations

from typing import Any

EMPTY_TIMES = {"n": 0, "median": None, "p90": None, "max": None}


def figures(alarms: int, within_60: int, *, median: float | None = 21.0, calls: int = 0) -> dict[str, Any]:
    """A FIGURES dict: every key there, the shares and times None when nothing was measured."""
    answered = alarms
    times = {"n": answered, "median": median, "p90": 55.0, "max": 400.0} if alarms else dict(EMPTY_TIMES)
    return {
        "alarms": alarms,
        "technical": 2,
        "answered": answered,
        "answered_within_60s": within_60,
        "answered_within_180s": alarms,
        "share_within_60s": round(within_60 / alarms, 4) if alarms else None,
        "share_within_180s": 1.0 if alarms else None,
        "answer_s": times,
        "answer_buckets": [within_60 // 2, within_60 - within_60 // 2, 0, alarms - within_60, 0, 0],
        "first_offer_s": {"n": alarms, "median": 30.0, "p90": 80.0, "max": 200.0} if alarms else dict(EMPTY_TIMES),
        "accepted_s": {"n": alarms, "median": 60.0, "p90": 150.0, "max": 600.0} if alarms else dict(EMPTY_TIMES),
        "door_s": {"n": alarms, "median": 900.0, "p90": 1500.0, "max": 3000.0} if alarms else dict(EMPTY_TIMES),
        "outcomes": {"resolved": alarms - 2 if alarms > 2 else alarms, "false_alarm": 1 if alarms > 2 else 0,
                     "to_120": 1 if alarms > 2 else 0, "to_110": 0, "to_119": 0, "open": 0},
        "calls": calls,
        "calls_answered": calls,
        "calls_within_60s": calls,
        "calls_within_180s": calls,
        "call_share_within_60s": 1.0 if calls else None,
        "call_answer_s": {"n": calls, "median": 8.0, "p90": 30.0, "max": 200.0} if calls else dict(EMPTY_TIMES),
        "calls_abandoned": 0,
        "calls_offered": calls,
        "calls_answered_within_60s": calls,
        "calls_missed": 0,
        "calls_transferred": 0,
        "calls_outbound": 0,
        "services_ordered": 5,
        "services_delivered": 4,
        "services_cancelled": 1,
        "services_no_show": 0,
        "follow_ups": {"done": 3, "reached": 3, "satisfaction_mean": 4.67, "satisfaction": [0, 0, 0, 1, 2],
                       "complaints": 0},
    }  # fmt: skip


def report(by: str = "community") -> dict[str, Any]:
    """November 2026 in Asia/Shanghai: 20 alarms in 田面社区, 7 in 新洲社区, 1 with no place."""
    days = [{"day": f"2026-11-{d:02d}", "alarms": d % 3, "answered_within_60s": d % 3 - (d % 5 == 0 and d % 3 > 0),
             "calls": d % 4} for d in range(1, 31)]  # fmt: skip
    return {
        "schema": 1,
        "period": {"start": 1793462400.0, "end": 1796054400.0, "label": "2026-11", "timezone": "Asia/Shanghai",
                   "start_day": "2026-11-01", "end_day": "2026-12-01"},
        "by": by,
        "drill_included": False,
        "generated_at": 1796054500.0,
        "totals": figures(28, 25, calls=40),
        "areas": [
            {"area": "", "figures": figures(1, 1, median=12.0)},
            {"area": "福田区/华富街道/田面社区", "figures": figures(20, 18, calls=30)},
            {"area": "福田区/华富街道/新洲社区", "figures": figures(7, 6, median=40.5, calls=10)},
        ],
        "alarm_types": [{"alarm_type": "sos", "figures": figures(18, 16)},
                        {"alarm_type": "fall", "figures": figures(10, 9)}],
        "sources": [{"source": "watch", "figures": figures(20, 18)}, {"source": "hotline", "figures": figures(8, 7)}],
        "days": days,
        "responders": [
            {"responder_id": "r001", "name": "王芳", "kind": "caregiver", "offers": 9, "accepted": 7,
             "declined": 1, "expired": 1, "done": 7, "on_job_s": 14400.0},
            {"responder_id": "r002", "name": "=HYPERLINK(\"http://x\")", "kind": "volunteer", "offers": 2,
             "accepted": 1, "declined": 0, "expired": 1, "done": 1, "on_job_s": 1800.0},
        ],
    }  # fmt: skip
