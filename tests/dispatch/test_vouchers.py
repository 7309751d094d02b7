"""Vouchers and statements (dispatch.vouchers): examples to check by hand, then properties over any sequence of
allotments, deliveries and voids across month (and year) boundaries, with and without roll-over."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.errors import Conflict, InvalidInput, NotFound
from dispatch.settings import Settings
from dispatch.vouchers import (
    STATEMENT_BY,
    Allotted,
    Charge,
    Delivered,
    Ledger,
    StatementRow,
    Voided,
    VoucherEvent,
    VoucherRules,
    check_month,
    fold,
    month_of,
    next_month,
    price_for,
    statement,
    statement_csv,
    statement_rows,
    total,
    yuan,
)

MEAL = {"free": 1500, "low_cost": 1500, "paid": 2000}  # a price table: mode -> fen


def delivered(order: str, price: int, month: str = "2026-03", elder: str = "e1", **kw: str) -> Delivered:
    fields = {"provider": "p1", "community": "c1", "item": "meal"} | kw
    return Delivered(order, elder, fields["provider"], fields["community"], month, fields["item"], price)


# -- examples ----------------------------------------------------------------------------------------------


def test_vouchers_cover_what_the_balance_allows_and_the_elder_pays_the_rest() -> None:
    ledger = Ledger()
    ledger.apply(Allotted("e1", "2026-03", VoucherRules().allotment("free")))  # 30000 fen, 300 yuan
    charges = [ledger.apply(delivered(f"o{i}", 12_000)) for i in (1, 2, 3)]
    assert [(c.voucher_fen, c.cash_fen) for c in charges if c] == [(12_000, 0), (12_000, 0), (6_000, 6_000)]
    march = ledger.balance("e1", "2026-03")
    assert (march.allotted_fen, march.spent_fen, march.available_fen) == (30_000, 30_000, 0)
    # no roll-over by default: April starts from nothing but its own allotment
    assert ledger.balance("e1", "2026-04").available_fen == 0


def test_a_void_comes_off_its_months_statement_and_refunds_its_vouchers() -> None:
    ledger = fold(
        [
            Allotted("e1", "2026-03", 30_000),
            delivered("o1", 12_000),
            delivered("o2", 12_000),
            delivered("o3", 12_000),
            Allotted("e1", "2026-04", 30_000),
            delivered("o4", 5_000, month="2026-04"),
            Voided("o2"),  # recorded in April, about a March delivery
        ]
    )
    assert ledger.balance("e1", "2026-03").available_fen == 12_000  # o2's vouchers are back in March
    assert ledger.balance("e1", "2026-04").available_fen == 25_000  # April untouched by the void
    march = statement(ledger.charges("2026-03"), "2026-03", "elder")
    assert march == [StatementRow("e1", 2, 24_000, 18_000, 6_000)]
    assert total(statement(ledger.charges("2026-04"), "2026-04", "provider")).total_fen == 5_000
    assert ledger.charge("o3") == Charge(delivered("o3", 12_000), voucher_fen=6_000, cash_fen=6_000)


def test_roll_over_carries_the_rest_and_a_late_delivery_never_empties_a_later_month_below_zero() -> None:
    rules = VoucherRules(roll_over=True)
    ledger = fold([Allotted("e1", "2026-03", 10_000), delivered("o1", 4_000)], rules=rules)
    assert ledger.balance("e1", "2026-05").carried_in_fen == 6_000  # through an empty April
    ledger.apply(Allotted("e1", "2026-04", 0))
    ledger.apply(delivered("o2", 6_000, month="2026-04"))  # paid from March's carry
    late = ledger.apply(delivered("o3", 5_000, month="2026-03"))  # entered late, for March
    assert late is not None and (late.voucher_fen, late.cash_fen) == (0, 5_000)
    assert [b.available_fen for b in ledger.balances("e1")] == [6_000, 0]
    ledger.apply(Voided("o1"))  # 4000 back to March, and so to April's carry
    assert [b.available_fen for b in ledger.balances("e1")] == [10_000, 4_000]


def test_the_price_follows_the_entitlement_and_no_entitlement_pays_full() -> None:
    assert price_for(MEAL, "free") == 1500
    assert price_for(MEAL, None) == 2000
    assert VoucherRules().allotment(None) == 0
    with pytest.raises(InvalidInput):
        price_for({"free": 0}, "paid")


def test_a_disability_supplement_follows_the_care_level() -> None:
    rules = VoucherRules(care_fen=(0, 2_000, 5_000, 10_000))
    assert [rules.allotment("free", level) for level in (None, 0, 1, 2, 3)] == [30_000, 30_000, 32_000, 35_000, 40_000]
    assert rules.allotment(None, 3) == 10_000  # paid, no vouchers of its own: the supplement only
    assert rules.allotment("low_cost", 5) == 25_000  # an imported level above 3 counts as 3
    assert VoucherRules().allotment("free", 3) == 30_000  # no supplement unless the centre sets one


@pytest.mark.parametrize(
    "make",
    [
        lambda: VoucherRules(care_fen=(0, 0, 0)),  # type: ignore[arg-type]
        lambda: VoucherRules(care_fen=(0, 0, 0, 1.5)),  # type: ignore[arg-type]
        lambda: Allotted("e1", "2026-03", 300.0),  # type: ignore[arg-type]
        lambda: Allotted("e1", "2026-03", True),
        lambda: Allotted("e1", "2026-03", -1),
        lambda: delivered("o1", 1500.0),  # type: ignore[arg-type]
        lambda: delivered("o1", 1500, month="2026-13"),
        lambda: delivered("", 1500),
        lambda: VoucherRules(free_fen=300.5),  # type: ignore[arg-type]
        lambda: price_for({"paid": 20.0}, "paid"),  # type: ignore[dict-item]
        lambda: yuan(1.5),  # type: ignore[arg-type]
        lambda: check_month("2026-3"),
    ],
)
def test_a_float_or_a_malformed_amount_is_refused(make: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        make()  # type: ignore[operator]
    assert caught.value.code == "invalid_input"


def test_repeats_are_no_ops_and_clashes_are_refused() -> None:
    ledger = fold([Allotted("e1", "2026-03", 100), delivered("o1", 80), Voided("o1"), Voided("o1")])
    ledger.apply(Allotted("e1", "2026-03", 100))
    assert ledger.apply(delivered("o1", 80)) == Charge(delivered("o1", 80), 80, 0, voided=True)
    with pytest.raises(Conflict):
        ledger.apply(Allotted("e1", "2026-03", 200))
    with pytest.raises(Conflict):
        ledger.apply(delivered("o1", 90))
    with pytest.raises(NotFound) as caught:
        ledger.apply(Voided("nope"))
    assert caught.value.code == "not_found"
    assert ledger.balance("e1", "2026-03").available_fen == 100


def test_months_are_the_centres_local_months() -> None:
    assert month_of(datetime(2026, 3, 31, 15, 30, tzinfo=UTC).timestamp(), "Asia/Shanghai") == "2026-03"
    assert month_of(datetime(2026, 3, 31, 16, 30, tzinfo=UTC).timestamp(), "Asia/Shanghai") == "2026-04"
    assert next_month("2025-12") == "2026-01" and next_month("2026-01") == "2026-02"


def test_the_rules_come_from_the_settings() -> None:
    rules = VoucherRules.from_settings(Settings(voucher_free_fen=20_000, voucher_roll_over=True))
    assert rules == VoucherRules(free_fen=20_000, low_cost_fen=15_000, paid_fen=0, roll_over=True)


def test_statement_csv_in_english_and_chinese() -> None:
    ledger = fold(
        [
            Allotted("e1", "2026-03", 2_000),
            delivered("o1", 1_500, provider="=HYPERLINK()", community="德胜"),
            delivered("o2", 1_505, provider="p2", community="德胜"),
        ]
    )
    rows = statement(ledger.charges("2026-03"), "2026-03", "provider")
    assert statement_csv(rows, "provider") == (
        "provider,deliveries,total (yuan),vouchers (yuan),out of pocket (yuan)\r\n"
        "'=HYPERLINK(),1,15.00,15.00,0.00\r\n"
        "p2,1,15.05,5.00,10.05\r\n"
        "total,2,30.05,20.00,10.05\r\n"
    )
    assert statement_rows(rows, chinese=True)[-1] == ["合计", "2", "30.05", "20.00", "10.05"]
    rows = statement(ledger.charges("2026-03"), "2026-03", "community")
    assert statement_csv(rows, "community", chinese=True, labels={"德胜": "德胜街道"}) == (
        "社区,名称,服务次数,服务金额(元),服务券支付(元),自付(元)\r\n德胜,德胜街道,2,30.05,20.00,10.05\r\n合计,,2,30.05,20.00,10.05\r\n"
    )


# -- properties --------------------------------------------------------------------------------------------

MONTHS = ["2025-11", "2025-12", "2026-01", "2026-02"]  # across a year's end
ELDERS = ["e1", "e2", "e3"]


@st.composite
def histories(draw: st.DrawFn) -> list[VoucherEvent]:
    """Allotments (one per elder and month, in any order), deliveries in any month, voids of earlier deliveries."""
    events: list[VoucherEvent] = []
    allotted: set[tuple[str, str]] = set()
    orders: list[str] = []
    for n in range(draw(st.integers(0, 40))):
        kind = draw(st.sampled_from(["allot", "deliver", "deliver", "void"]))
        if kind == "allot":
            key = (draw(st.sampled_from(ELDERS)), draw(st.sampled_from(MONTHS)))
            if key not in allotted:
                allotted.add(key)
                events.append(Allotted(*key, draw(st.integers(0, 30_000))))
        elif kind == "deliver" or not orders:
            orders.append(f"o{n}")
            events.append(
                Delivered(
                    f"o{n}",
                    draw(st.sampled_from(ELDERS)),
                    draw(st.sampled_from(["p1", "p2"])),
                    draw(st.sampled_from(["c1", "c2"])),
                    draw(st.sampled_from(MONTHS)),
                    "meal",
                    draw(st.integers(0, 20_000)),
                )
            )
        else:
            events.append(Voided(draw(st.sampled_from(orders))))  # a repeated void included
    return events


rules_ = st.builds(VoucherRules, roll_over=st.booleans())


def picture(ledger: Ledger) -> tuple[object, ...]:
    """Everything a ledger answers, to compare two ledgers."""
    balances = [ledger.balance(elder, month) for elder in ELDERS for month in [*MONTHS, "2026-03"]]
    return tuple(balances), tuple(ledger.charges(include_voided=True))


@settings(max_examples=300, deadline=None)
@given(histories(), rules_)
def test_statements_add_up_to_the_delivered_services_of_each_month(
    events: list[VoucherEvent], rules: VoucherRules
) -> None:
    ledger = fold(events, rules=rules)
    voided = {e.order_id for e in events if isinstance(e, Voided)}
    for month in MONTHS:
        expected = sum(
            e.price_fen for e in events if isinstance(e, Delivered) and e.month == month and e.order_id not in voided
        )
        count = sum(1 for e in events if isinstance(e, Delivered) and e.month == month and e.order_id not in voided)
        for by in STATEMENT_BY:
            rows = statement(ledger.charges(), month, by)
            whole = total(rows)
            assert (whole.total_fen, whole.deliveries) == (expected, count)
            assert whole.voucher_fen + whole.cash_fen == expected
            assert all(type(v) is int for r in rows for v in (r.total_fen, r.voucher_fen, r.cash_fen))
            assert len({r.key for r in rows}) == len(rows)


@settings(max_examples=300, deadline=None)
@given(histories(), rules_)
def test_every_delivery_splits_exactly_and_no_balance_goes_below_zero(
    events: list[VoucherEvent], rules: VoucherRules
) -> None:
    ledger = Ledger(rules)
    for event in events:
        ledger.apply(event)
        for elder in ELDERS:
            for month in [*MONTHS, "2026-03"]:
                balance = ledger.balance(elder, month)
                assert balance.available_fen >= 0
                assert type(balance.available_fen) is int
    for charge in ledger.charges(include_voided=True):
        assert charge.voucher_fen + charge.cash_fen == charge.delivery.price_fen
        assert charge.voucher_fen >= 0 and charge.cash_fen >= 0
        assert type(charge.voucher_fen) is int and type(charge.cash_fen) is int
    # vouchers never pay more than was allotted: per month, or over all months with roll-over
    for elder in ELDERS:
        spent = {b.month: b.spent_fen for b in ledger.balances(elder)}
        allotted = {e.month: e.fen for e in events if isinstance(e, Allotted) and e.elder == elder}
        if rules.roll_over:
            assert sum(spent.values()) <= sum(allotted.values())
        else:
            assert all(spent[m] <= allotted.get(m, 0) for m in spent)


@settings(max_examples=300, deadline=None)
@given(histories(), rules_, st.data())
def test_a_replay_gives_the_same_balances(events: list[VoucherEvent], rules: VoucherRules, data: st.DataObject) -> None:
    once = fold(events, rules=rules)
    assert picture(fold(events, rules=rules)) == picture(once)  # the same events folded again
    assert picture(fold(events, fold(events, rules=rules))) == picture(once)  # the same events twice: repeats
    cut = data.draw(st.integers(0, len(events)))
    snapshot = fold(events[:cut], rules=rules)
    before = picture(snapshot)
    resumed = fold(events[cut:], snapshot.copy())  # a snapshot plus the journal's tail
    assert picture(resumed) == picture(once)
    assert picture(snapshot) == before  # the snapshot is not changed by what follows it
