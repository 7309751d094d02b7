"""Service vouchers (服务券) and monthly statements: a pure fold over small typed events, money in integer fen.

What it owns: the entitlement rules (each entitlement's monthly voucher allotment, the price of an item for an
elder's service mode), the :class:`Ledger` that folds :class:`Allotted`, :class:`Delivered` and
:class:`Voided` into each elder's balance per month and each delivery's split between vouchers and the
elder's own pocket, and the monthly statements by elder, provider or community with their CSV form.
The service orders (dispatch/services.py) feed it the events they journal; it never reads the journal itself.

Rule 1: money is an ``int`` of fen (分), everywhere. Every amount that enters is checked to be an exact
``int`` (a ``float``, a ``bool`` or a negative number is refused with
:class:`~dispatch.errors.InvalidInput`); yuan appear only as text in the CSV, formatted from fen by
``divmod``.

Rule 2: the service mode is the elder's entitlement (无偿 ``free`` / 低偿 ``low_cost`` / 有偿 ``paid``);
an elder with no assessed entitlement is served ``paid``. The price of an item is the caller's price table
(mode → fen), read at delivery and carried in :class:`Delivered`: a later change of prices or entitlement
never rewrites a past month.

Rule 3: a month is the centre's local calendar month, ``"YYYY-MM"`` (:func:`month_of`). A month's balance
is its allotment, plus (only when :attr:`VoucherRules.roll_over` is set; off by default, as most district
rules let an unspent month lapse) what the elder's previous month left, minus the vouchers spent by that
month's deliveries. One allotment per elder and month: the same one again is a repeat, another amount is a
:class:`~dispatch.errors.Conflict` (a correction is a policy question, not a second allotment).

Rule 4: vouchers cover a delivery as far as its month's balance allows and the elder pays the rest:
``voucher_fen + cash_fen == price_fen`` for every delivery. With roll-over, spending in a month also
lowers every later month's carry, so a late delivery for an earlier month spends at most the smallest
balance of that month and the months after it. A balance is never below zero.

Rule 5: a delivery voided later (:class:`Voided`: recorded in error, found not done on the 回访) comes off
the statement of the month it was delivered in, and its voucher spend goes back to that month's balance
(and, with roll-over, to the months after it). The cash the elder paid is refunded by the centre outside
this module; other deliveries' splits are never recomputed: what was charged at the door stays charged.

Rule 6: the fold is deterministic and idempotent: the same event again is a no-op (an allotment or a
delivery repeated, a void of an already voided order), a different event reusing an order id is a
:class:`~dispatch.errors.Conflict`, a void of an unknown order is :class:`~dispatch.errors.NotFound`.
Folding a journal in one pass, or a snapshot (:meth:`Ledger.copy`) plus the tail, gives the same ledger.

Rule 7: a statement sums the month's delivered, not voided, charges: its rows (and their total) add up
exactly to the delivered services of that month. Scoping is the caller's: pass only the charges a person
may see.

Never: a float amount, I/O, a clock read, an import of the service catalogue or of another package.
The errors raised are the core's tree (dispatch.errors): InvalidInput for a wrong amount, month or price
table, Conflict for a clashing repeat, NotFound for a void of an order never delivered.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from dispatch.errors import Conflict, InvalidInput, NotFound
from dispatch.registry import Entitlement

if TYPE_CHECKING:
    from dispatch.settings import Settings

#: an elder with no assessed entitlement is served in this mode
DEFAULT_MODE: Entitlement = "paid"
MODES: tuple[Entitlement, ...] = ("free", "low_cost", "paid")

StatementBy = Literal["elder", "provider", "community"]
STATEMENT_BY: tuple[StatementBy, ...] = ("elder", "provider", "community")

#: "2026-03", ASCII digits, the whole text (``\d`` takes "２０２６", ``$`` a trailing newline: then in a file's name)
_MONTH = re.compile(r"(?P<year>[0-9]{4})-(?P<month>0[1-9]|1[0-2])")


def fen(value: object, field: str = "fen") -> int:
    """``value`` if it is an exact, non-negative ``int`` of fen; InvalidInput otherwise (floats included)."""
    if type(value) is not int or value < 0:
        raise InvalidInput(
            f"{field} must be a non-negative whole number of fen, not {value!r}",
            field=field,
            params={"field": field},
        )
    return value


def check_month(month: object, field: str = "month") -> str:
    """``month`` if it reads ``YYYY-MM`` with a real month; InvalidInput otherwise."""
    if not isinstance(month, str) or _MONTH.fullmatch(month) is None:
        raise InvalidInput(f"{field} must read YYYY-MM, not {month!r}", field=field, params={"field": field})
    return month


def next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def month_of(ts: float, tz: str) -> str:
    """The centre's local month of a UTC timestamp (a delivery at 23:30 on 31 March in Shanghai is March's)."""
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y-%m")


@dataclass(frozen=True, slots=True)
class VoucherRules:
    """The monthly allotment of each entitlement, in fen, and whether an unspent balance rolls over."""

    free_fen: int = 30_000  # 无偿: 300 yuan a month
    low_cost_fen: int = 15_000  # 低偿: 150 yuan a month
    paid_fen: int = 0  # 有偿: no vouchers
    roll_over: bool = False
    #: a disability supplement (失能补贴) added to any entitlement's allotment, by care level 0-3 (the ability
    #: level of the needs assessment, dispatch.assessment; an imported level above 3 counts as 3)
    care_fen: tuple[int, int, int, int] = (0, 0, 0, 0)

    def __post_init__(self) -> None:
        for mode in MODES:
            fen(getattr(self, f"{mode}_fen"), f"{mode}_fen")
        if len(self.care_fen) != 4:
            raise InvalidInput("care_fen holds one amount for each care level 0-3", field="care_fen")
        for level, amount in enumerate(self.care_fen):
            fen(amount, f"care_fen[{level}]")

    @classmethod
    def from_settings(cls, settings: Settings) -> VoucherRules:
        """The rules of ``voucher_*`` settings."""
        return cls(
            free_fen=settings.voucher_free_fen,
            low_cost_fen=settings.voucher_low_cost_fen,
            paid_fen=settings.voucher_paid_fen,
            roll_over=settings.voucher_roll_over,
            care_fen=care_amounts(settings.voucher_care_fen),
        )

    def allotment(self, entitlement: Entitlement | None, care_level: int | None = None) -> int:
        """The monthly allotment for an entitlement (no entitlement: the default mode's), and the disability
        supplement of the care level (none recorded: none)."""
        amount: int = getattr(self, f"{entitlement or DEFAULT_MODE}_fen")
        if care_level is not None:
            amount += self.care_fen[min(care_level, 3)]
        return amount


def care_amounts(amounts: Iterable[int]) -> tuple[int, int, int, int]:
    """The four disability supplements of care levels 0-3, from a setting's list."""
    first, second, third, fourth = amounts
    return (first, second, third, fourth)


def price_for(prices: Mapping[str, int], entitlement: Entitlement | None) -> int:
    """The price in fen of an item for an elder's entitlement, from the item's price table (mode → fen)."""
    mode = entitlement or DEFAULT_MODE
    if mode not in prices:
        raise InvalidInput(f"the item has no price for the mode {mode}", field="prices", params={"mode": mode})
    return fen(prices[mode], f"prices.{mode}")


def _named(event: object, field: str) -> None:
    """An event's id or name must be a non-empty string (an empty key would read as a statement's total)."""
    value = getattr(event, field)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{field} must be a non-empty string, not {value!r}", field=field, params={"field": field})


# -- events ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Allotted:
    """An elder's vouchers for a month (one per elder and month)."""

    elder: str
    month: str
    fen: int

    def __post_init__(self) -> None:
        _named(self, "elder")
        check_month(self.month)
        fen(self.fen)


@dataclass(frozen=True, slots=True)
class Delivered:
    """A service order delivered: its price for the elder's mode, in the local month it was delivered."""

    order_id: str
    elder: str
    provider: str
    community: str
    month: str
    item: str
    price_fen: int

    def __post_init__(self) -> None:
        for field in ("order_id", "elder", "provider", "community", "item"):
            _named(self, field)
        check_month(self.month)
        fen(self.price_fen, "price_fen")


@dataclass(frozen=True, slots=True)
class Voided:
    """A delivered order struck off afterwards (an order cancelled before delivery never reaches the ledger)."""

    order_id: str

    def __post_init__(self) -> None:
        _named(self, "order_id")


VoucherEvent = Allotted | Delivered | Voided


# -- results -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Charge:
    """What one delivery cost and who paid: ``voucher_fen + cash_fen == price_fen``."""

    delivery: Delivered
    voucher_fen: int
    cash_fen: int
    voided: bool = False


@dataclass(frozen=True, slots=True)
class Balance:
    """An elder's vouchers in one month: ``available = allotted + carried_in - spent``, never below zero."""

    elder: str
    month: str
    allotted_fen: int
    carried_in_fen: int
    spent_fen: int

    @property
    def available_fen(self) -> int:
        return self.allotted_fen + self.carried_in_fen - self.spent_fen


@dataclass(frozen=True, slots=True)
class StatementRow:
    """One line of a monthly statement: an elder, a provider or a community (``key``), or the total (``""``)."""

    key: str
    deliveries: int
    total_fen: int
    voucher_fen: int
    cash_fen: int


# -- the fold ----------------------------------------------------------------------------------------------


class Ledger:
    """Balances and charges folded from voucher events. Mutable like every projection; :meth:`copy` snapshots."""

    def __init__(self, rules: VoucherRules | None = None) -> None:
        self.rules = rules or VoucherRules()
        self._allotted: dict[tuple[str, str], int] = {}
        self._spent: dict[tuple[str, str], int] = {}
        self._months: dict[str, set[str]] = {}  # elder -> every month with an allotment or a delivery
        self._charges: dict[str, Charge] = {}  # order id -> charge, in delivery order

    def copy(self) -> Ledger:
        other = Ledger(self.rules)
        other._allotted = dict(self._allotted)
        other._spent = dict(self._spent)
        other._months = {elder: set(months) for elder, months in self._months.items()}
        other._charges = dict(self._charges)
        return other

    def apply(self, event: VoucherEvent) -> Charge | None:
        """Fold one event; a delivery or a void answers with the order's charge."""
        if isinstance(event, Allotted):
            self._allot(event)
            return None
        if isinstance(event, Delivered):
            return self._deliver(event)
        return self._void(event)

    def _allot(self, event: Allotted) -> None:
        key = (event.elder, event.month)
        known = self._allotted.get(key)
        if known is not None and known != event.fen:
            raise Conflict(
                f"{event.elder} already has {known} fen of vouchers for {event.month}",
                params={"elder": event.elder, "month": event.month},
            )
        self._allotted[key] = event.fen
        self._months.setdefault(event.elder, set()).add(event.month)

    def _deliver(self, event: Delivered) -> Charge:
        known = self._charges.get(event.order_id)
        if known is not None:
            if known.delivery != event:
                raise Conflict(f"order {event.order_id} was delivered otherwise", params={"order": event.order_id})
            return known
        self._months.setdefault(event.elder, set()).add(event.month)
        voucher = min(event.price_fen, self._spendable(event.elder, event.month))
        charge = Charge(event, voucher_fen=voucher, cash_fen=event.price_fen - voucher)
        self._charges[event.order_id] = charge
        key = (event.elder, event.month)
        self._spent[key] = self._spent.get(key, 0) + voucher
        return charge

    def _void(self, event: Voided) -> Charge:
        known = self._charges.get(event.order_id)
        if known is None:
            raise NotFound(f"no delivered order {event.order_id}", field="order_id", params={"order": event.order_id})
        if known.voided:
            return known
        charge = replace(known, voided=True)
        self._charges[event.order_id] = charge
        key = (known.delivery.elder, known.delivery.month)
        self._spent[key] -= known.voucher_fen
        return charge

    def _spendable(self, elder: str, month: str) -> int:
        """What a delivery in ``month`` may take from vouchers without any month going below zero."""
        if not self.rules.roll_over:
            return self.balance(elder, month).available_fen
        later = [self.balance(elder, m).available_fen for m in self._months.get(elder, ()) if m >= month]
        return min([self.balance(elder, month).available_fen, *later])

    # -- reading --

    def balance(self, elder: str, month: str) -> Balance:
        """The elder's vouchers in ``month`` (any month: one without events has its carry, or nothing)."""
        check_month(month)
        carried = 0
        if self.rules.roll_over:
            for earlier in sorted(m for m in self._months.get(elder, ()) if m < month):
                carried += self._allotted.get((elder, earlier), 0) - self._spent.get((elder, earlier), 0)
        return Balance(
            elder,
            month,
            allotted_fen=self._allotted.get((elder, month), 0),
            carried_in_fen=carried,
            spent_fen=self._spent.get((elder, month), 0),
        )

    def balances(self, elder: str) -> list[Balance]:
        """The elder's balance in every month that has an allotment or a delivery, oldest first."""
        return [self.balance(elder, month) for month in sorted(self._months.get(elder, ()))]

    def elders(self) -> list[str]:
        return sorted(self._months)

    def charge(self, order_id: str) -> Charge | None:
        return self._charges.get(order_id)

    def charges(self, month: str | None = None, *, include_voided: bool = False) -> list[Charge]:
        """Charges in delivery order, of one month or all; voided ones only when asked."""
        return [
            c
            for c in self._charges.values()
            if (month is None or c.delivery.month == month) and (include_voided or not c.voided)
        ]


def fold(events: Iterable[VoucherEvent], ledger: Ledger | None = None, rules: VoucherRules | None = None) -> Ledger:
    """Fold ``events`` into ``ledger`` (a snapshot to continue from, changed in place) or into a new one."""
    if ledger is None:
        ledger = Ledger(rules)
    for event in events:
        ledger.apply(event)
    return ledger


# -- statements --------------------------------------------------------------------------------------------


def statement(charges: Iterable[Charge], month: str, by: StatementBy) -> list[StatementRow]:
    """One row per elder, provider or community of the month's delivered, not voided charges, sorted by key."""
    check_month(month)
    if by not in STATEMENT_BY:
        raise InvalidInput(f"a statement is by elder, provider or community, not {by!r}", field="by")
    rows: dict[str, StatementRow] = {}
    for charge in charges:
        delivery = charge.delivery
        if charge.voided or delivery.month != month:
            continue
        key: str = getattr(delivery, by)
        row = rows.get(key, StatementRow(key, 0, 0, 0, 0))
        rows[key] = StatementRow(
            key,
            row.deliveries + 1,
            row.total_fen + delivery.price_fen,
            row.voucher_fen + charge.voucher_fen,
            row.cash_fen + charge.cash_fen,
        )
    return [rows[key] for key in sorted(rows)]


def total(rows: Iterable[StatementRow]) -> StatementRow:
    """The sum of a statement's rows, keyed ``""``."""
    result = StatementRow("", 0, 0, 0, 0)
    for row in rows:
        result = StatementRow(
            "",
            result.deliveries + row.deliveries,
            result.total_fen + row.total_fen,
            result.voucher_fen + row.voucher_fen,
            result.cash_fen + row.cash_fen,
        )
    return result


def yuan(amount: int) -> str:
    """Fen as yuan text with two decimals, exactly: 12345 → ``"123.45"``."""
    whole, cents = divmod(fen(amount), 100)
    return f"{whole}.{cents:02d}"


_HEADERS: dict[bool, dict[str, str]] = {
    False: {
        "elder": "elder",
        "provider": "provider",
        "community": "community",
        "name": "name",
        "deliveries": "deliveries",
        "total": "total (yuan)",
        "voucher": "vouchers (yuan)",
        "cash": "out of pocket (yuan)",
        "sum": "total",
    },
    True: {
        "elder": "老人",
        "provider": "服务商",
        "community": "社区",
        "name": "名称",
        "deliveries": "服务次数",
        "total": "服务金额(元)",
        "voucher": "服务券支付(元)",
        "cash": "自付(元)",
        "sum": "合计",
    },
}


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (a name beginning with ``=``, ``+``, ``-`` or ``@``)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def statement_header(by: StatementBy, *, chinese: bool = False, labels: bool = False) -> list[str]:
    words = _HEADERS[chinese]
    names = [words["name"]] if labels else []
    return [words[by], *names, words["deliveries"], words["total"], words["voucher"], words["cash"]]


def statement_rows(
    rows: Iterable[StatementRow], *, chinese: bool = False, labels: Mapping[str, str] | None = None
) -> list[list[str]]:
    """A statement's rows as CSV cells, money in yuan, ending with the total row; ``labels`` (key → a name
    people read, such as an elder's name) adds a name column."""
    rows = list(rows)
    out = []
    for row in [*rows, total(rows)]:
        key = row.key if row.key else _HEADERS[chinese]["sum"]
        names = [_cell(labels.get(row.key, "")) if row.key else ""] if labels is not None else []
        out.append(
            [_cell(key), *names, str(row.deliveries), yuan(row.total_fen), yuan(row.voucher_fen), yuan(row.cash_fen)]
        )
    return out


def statement_csv(
    rows: Iterable[StatementRow],
    by: StatementBy,
    *,
    chinese: bool = False,
    labels: Mapping[str, str] | None = None,
) -> str:
    """The statement as CSV text (RFC 4180, CRLF), a header first and the total last. A caller serving it to
    spreadsheets in Chinese may prefix a UTF-8 BOM."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(statement_header(by, chinese=chinese, labels=labels is not None))
    writer.writerows(statement_rows(rows, chinese=chinese, labels=labels))
    return buffer.getvalue()
