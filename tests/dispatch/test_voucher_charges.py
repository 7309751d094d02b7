"""Vouchers charged at delivery, through the engine on a real SQLite journal and a manual clock: the month's
allotment on record once, the split between vouchers and the elder's pocket, never a negative balance, the
centre's local month (Asia/Shanghai) at the boundary, and a replay that rebuilds the same ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatch.clock import ManualClock
from dispatch.core import Core, open_core
from dispatch.entries import ServiceDelivered, VouchersAllotted, VouchersCharged
from dispatch.scopes import ALL, Reach
from dispatch.state import Projection
from dispatch.vouchers import VoucherRules
from tests.conftest import elder, engine_of, on_duty, responder, seed, settings_for

HOUR = 3600.0
#: 2026-03-31 23:30 in Shanghai is 15:30 UTC: still March there; an hour later it is April 1st
MARCH_LAST_EVENING = datetime(2026, 3, 31, 15, 30, tzinfo=UTC).timestamp()


@pytest.fixture
async def core(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Core]:
    """A core whose low-cost elders get 20 yuan of vouchers a month (a meal is 8 yuan for them)."""
    settings = settings_for(tmp_path / "data", voucher_low_cost_fen=2000)
    await seed(
        settings,
        elders=[
            elder("e_low", entitlement="low_cost"),
            elder("e_free", entitlement="free", phone="13505960002"),
            elder("e_paid", entitlement="paid", phone="13505960003", community="龙文区/朝阳街道/朝阳社区"),
        ],
        responders=[responder("c_near", 24.5110, 117.7000)],
    )
    opened = await open_core(settings, clock, protocols=())
    opened.intake.start()
    await on_duty(opened, "c_near")
    yield opened
    await opened.close()


async def deliver(core: Core, elder_id: str, item_id: str = "meal_delivery", *, drill: bool = False) -> str:
    """Order, schedule, assign, check in and out: the order's id."""
    now = core.clock.now()
    engine = core.engine
    order_id = await engine.order_service(elder_id, item_id, now, now + HOUR, actor="operator:o", drill=drill)
    await engine.order_action(order_id, "schedule", actor="operator:o", start=now, end=now + HOUR)
    await engine.order_action(order_id, "assign", actor="operator:o", responder_id="c_near")
    await engine.order_action(order_id, "start", actor="caregiver:c_near", caregiver="c_near")
    await engine.order_action(order_id, "deliver", actor="caregiver:c_near", caregiver="c_near", note="送到")
    return order_id


async def facts(core: Core) -> list[object]:
    return [entry.fact async for entry in core.journal.replay()]


async def test_a_delivery_charges_the_split_after_the_months_allotment(core: Core, clock: ManualClock) -> None:
    clock.set(MARCH_LAST_EVENING - 10 * 24 * HOUR)
    order_id = await deliver(core, "e_low")
    written = await facts(core)
    kinds = [type(f) for f in written]
    at = kinds.index(ServiceDelivered)
    assert kinds[at : at + 3] == [ServiceDelivered, VouchersAllotted, VouchersCharged]  # one transaction, in order
    assert written[at + 1] == VouchersAllotted("e_low", "2026-03", 2000)
    assert written[at + 2] == VouchersCharged(order_id, "e_low", "2026-03", 800, 800, 0, "centre",
                                              "龙文区/蓝田街道/蓝田社区", "meal_delivery")  # fmt: skip
    view = core.views.vouchers("e_low", ALL)
    assert view["current"] == {"month": "2026-03", "allotted": True, "allotted_fen": 2000, "carried_in_fen": 0,
                               "spent_fen": 800, "available_fen": 1200}  # fmt: skip
    assert [(c["order_id"], c["voucher_fen"], c["cash_fen"]) for c in view["charges"]] == [(order_id, 800, 0)]


async def test_the_months_first_delivery_allots_once_and_a_balance_never_goes_negative(
    core: Core, clock: ManualClock
) -> None:
    clock.set(MARCH_LAST_EVENING - 10 * 24 * HOUR)
    splits = []
    for _ in range(4):
        order_id = await deliver(core, "e_low")
        charge = engine_of(core).state.ledger.charge(order_id)
        assert charge is not None
        splits.append((charge.voucher_fen, charge.cash_fen))
        balance = engine_of(core).state.ledger.balance("e_low", "2026-03")
        assert balance.available_fen >= 0
        clock.advance(HOUR)
    assert splits == [(800, 0), (800, 0), (400, 400), (0, 800)]  # 20 yuan of vouchers, then out of pocket
    allotments = [f for f in await facts(core) if isinstance(f, VouchersAllotted)]
    assert allotments == [VouchersAllotted("e_low", "2026-03", 2000)]
    # the paid elder's month is on record too, at 0 fen: everything out of pocket
    paid = await deliver(core, "e_paid")
    assert engine_of(core).state.ledger.charge(paid).cash_fen == 1500  # type: ignore[union-attr]
    assert ("e_paid", "2026-03") in engine_of(core).state.allotted


async def test_the_month_is_the_centres_local_month(core: Core, clock: ManualClock) -> None:
    clock.set(MARCH_LAST_EVENING)  # 23:30 in Shanghai, 31 March
    march = await deliver(core, "e_low")
    clock.set(MARCH_LAST_EVENING + HOUR)  # 00:30 on 1 April in Shanghai; UTC still says 31 March
    april = await deliver(core, "e_low")
    ledger = engine_of(core).state.ledger
    assert (ledger.charge(march).delivery.month, ledger.charge(april).delivery.month) == (  # type: ignore[union-attr]
        "2026-03", "2026-04"
    )  # fmt: skip
    allotted = [(f.month, f.fen) for f in await facts(core) if isinstance(f, VouchersAllotted)]
    assert allotted == [("2026-03", 2000), ("2026-04", 2000)]  # April's first delivery allots April
    view = core.views.vouchers("e_low", ALL)
    assert view["month"] == "2026-04" and view["current"]["available_fen"] == 1200
    assert [m["month"] for m in view["months"]] == ["2026-03"]


async def test_before_the_first_delivery_the_view_shows_what_the_rules_allot(core: Core) -> None:
    view = core.views.vouchers("e_free", ALL)
    assert view["current"]["allotted"] is False
    assert view["current"]["available_fen"] == 30_000 and view["charges"] == []
    street = Reach(("龙文区/蓝田街道",))
    with pytest.raises(Exception, match="no elder e_paid"):
        core.views.vouchers("e_paid", street)  # outside the reader's reach: as if the elder did not exist


async def test_a_drill_is_never_charged(core: Core) -> None:
    order_id = await deliver(core, "e_low", drill=True)
    assert engine_of(core).state.ledger.charge(order_id) is None
    assert not [f for f in await facts(core) if isinstance(f, VouchersAllotted | VouchersCharged)]


async def test_a_replay_gives_the_same_balances_and_charges(core: Core, clock: ManualClock) -> None:
    clock.set(MARCH_LAST_EVENING - 2 * HOUR)
    for elder_id in ("e_low", "e_free", "e_paid", "e_low", "e_low"):
        await deliver(core, elder_id, "bathing" if elder_id == "e_free" else "meal_delivery")
        clock.advance(HOUR)  # the last two fall in April, Shanghai time
    live = engine_of(core).state
    replayed = Projection(position_stale_s=core.settings.position_stale_s,
                          vouchers=VoucherRules.from_settings(core.settings))  # fmt: skip
    async for entry in core.journal.replay():
        replayed.apply(entry)
    for elder_id in ("e_low", "e_free", "e_paid"):
        assert replayed.ledger.balances(elder_id) == live.ledger.balances(elder_id)
        assert replayed.ledger.balances(elder_id)  # something to compare
    assert replayed.ledger.charges() == live.ledger.charges()
    assert replayed.allotted == live.allotted
