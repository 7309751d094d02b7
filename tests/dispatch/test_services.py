"""The service desk in the core: the catalogue, the order table, orders through the engine on a real SQLite
journal and a manual clock, and the projection a replay rebuilds."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.clock import ManualClock
from dispatch.core import Core
from dispatch.entries import ServiceOrdered
from dispatch.errors import ConfigError, Conflict, IllegalTransition, InvalidInput, NotFound
from dispatch.machines import OPEN_ORDER_STATES, ORDER_TRANSITIONS, OrderEvent, OrderState, order_next
from dispatch.registry import SKILLS
from dispatch.scopes import ALL, Reach
from dispatch.services import DEFAULT_CATALOGUE, catalogue, load_catalogue, parse_catalogue
from dispatch.settings import Settings
from dispatch.state import Projection
from tests.conftest import elder, engine_of, hotline, on_duty, raise_alarm, responder

HOUR = 3600.0
ITEM = """
[[item]]
item_id = "meal_delivery"
category = "meals"
name_zh = "送餐上门"
name_en = "Meal delivery"
unit = "meal"
minutes = 30
skill = "life_care"
price_fen = { free = 0, low_cost = 800, paid = 1500 }
"""


# -- the catalogue ------------------------------------------------------------------------------------


def test_the_default_catalogue_is_a_sensible_menu() -> None:
    menu = load_catalogue()
    assert 10 <= len(menu) <= 20
    assert {item.category for item in menu.items} >= {"meals", "cleaning", "bathing", "medical", "repair", "comfort"}
    for item in menu.items:
        assert item.skill is None or item.skill in SKILLS
        prices = (item.price_fen.free, item.price_fen.low_cost, item.price_fen.paid)
        assert all(type(p) is int and p >= 0 for p in prices)
        assert prices[0] <= prices[1] <= prices[2], item.item_id  # free ≤ low-cost ≤ paid
    bath = menu.get("bathing")
    assert bath is not None and bath.skill == "nursing" and bath.price_fen.of("low_cost") == 4000
    assert DEFAULT_CATALOGUE.name == "catalogue.toml"


@pytest.mark.parametrize(
    ("replace", "by", "names"),
    [
        ("low_cost = 800", "low_cost = 8.5", ("meal_delivery", "price_fen.low_cost")),  # never a float
        ("low_cost = 800", "low_cost = -1", ("meal_delivery", "price_fen.low_cost")),
        ('skill = "life_care"', 'skill = "cooking"', ("meal_delivery", "skill")),
        ("minutes = 30", "minutes = 0", ("meal_delivery", "minutes")),
        ('unit = "meal"', 'unit = "bowl"', ("meal_delivery", "unit")),
        ("price_fen = { free = 0, low_cost = 800, paid = 1500 }", "price_fen = { free = 0, paid = 1500 }",
         ("meal_delivery", "price_fen.low_cost")),
        ('category = "meals"', 'category = "meals"\ncolour = "red"', ("meal_delivery", "colour")),
    ],
)  # fmt: skip
def test_a_bad_item_is_a_config_error_naming_the_item_and_field(replace: str, by: str, names: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_catalogue(ITEM.replace(replace, by))
    for name in names:
        assert name in str(refused.value)


def test_a_bad_file_is_refused_whole(tmp_path: Path) -> None:
    assert len(parse_catalogue(ITEM)) == 1
    with pytest.raises(ConfigError, match="listed twice"):
        parse_catalogue(ITEM + ITEM)
    with pytest.raises(ConfigError, match="not TOML"):
        parse_catalogue("[[item]\n")
    with pytest.raises(ConfigError, match="no \\[\\[item\\]\\]"):
        parse_catalogue("")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_catalogue(tmp_path / "missing.toml")


PROVIDER = """
[[provider]]
provider_id = "kangle"
name_zh = "康乐家政"
name_en = "Kangle Home Services"
phone = "0596-2661234"
"""


def test_contracted_providers_are_listed_and_items_name_one_of_them() -> None:
    menu = parse_catalogue(PROVIDER + ITEM.replace("minutes = 30", 'minutes = 30\nprovider = "kangle"'))
    assert list(menu.providers) == ["centre", "kangle"]  # the centre always, first
    assert menu.items[0].provider == "kangle" and menu.providers["kangle"].phone == "0596-2661234"
    with pytest.raises(ConfigError, match=r"meal_delivery, field provider: 'acme'"):
        parse_catalogue(ITEM.replace("minutes = 30", 'minutes = 30\nprovider = "acme"'))
    with pytest.raises(ConfigError, match="provider kangle, field provider_id: taken"):
        parse_catalogue(PROVIDER + PROVIDER + ITEM)
    with pytest.raises(ConfigError, match="provider centre, field provider_id: taken"):
        parse_catalogue(PROVIDER.replace('"kangle"', '"centre"') + ITEM)
    with pytest.raises(ConfigError, match="provider kangle, field name_zh"):
        parse_catalogue(PROVIDER.replace('name_zh = "康乐家政"\n', "") + ITEM)
    shipped = load_catalogue()
    assert {item.provider for item in shipped.items} <= set(shipped.providers)
    assert any(item.provider != "centre" for item in shipped.items), "the default menu shows a contracted one"


def test_the_setting_replaces_the_catalogue_and_is_checked_at_start(tmp_path: Path) -> None:
    good = tmp_path / "menu.toml"
    good.write_text(ITEM, encoding="utf-8")
    settings = Settings(data=tmp_path / "data", service_catalogue=good)
    assert [item.item_id for item in catalogue(settings.service_catalogue).items] == ["meal_delivery"]
    bad = tmp_path / "bad.toml"
    bad.write_text(ITEM.replace("paid = 1500", "paid = 15.00"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"meal_delivery.*price_fen\.paid"):
        Settings(data=tmp_path / "data", service_catalogue=bad)


# -- the table -----------------------------------------------------------------------------------------


def test_every_legal_move_and_every_other_raises() -> None:
    for state in OrderState:
        for event in OrderEvent:
            if (state, event) in ORDER_TRANSITIONS:
                assert order_next(state, event) is ORDER_TRANSITIONS[(state, event)]
            else:
                with pytest.raises(IllegalTransition) as refused:
                    order_next(state, event)
                assert refused.value.machine == "service_order"


def test_the_main_line_and_the_branches() -> None:
    state = OrderState.REQUESTED
    for event in ("schedule", "assign", "start", "deliver", "confirm"):
        state = order_next(state, OrderEvent(event))
    assert state is OrderState.CONFIRMED
    for open_state in OPEN_ORDER_STATES:
        assert order_next(open_state, OrderEvent.CANCEL) is OrderState.CANCELLED
    assert order_next(OrderState.ASSIGNED, OrderEvent.NO_SHOW) is OrderState.NO_SHOW
    assert order_next(OrderState.STARTED, OrderEvent.NO_SHOW) is OrderState.NO_SHOW
    assert order_next(OrderState.ASSIGNED, OrderEvent.RESCHEDULE) is OrderState.SCHEDULED
    assert order_next(OrderState.SCHEDULED, OrderEvent.RESCHEDULE) is OrderState.SCHEDULED
    terminal = {OrderState.CONFIRMED, OrderState.CANCELLED, OrderState.NO_SHOW}
    assert not [key for key in ORDER_TRANSITIONS if key[0] in terminal]
    with pytest.raises(IllegalTransition):
        order_next(OrderState.DELIVERED, OrderEvent.CANCEL)  # delivered is done: it can only be confirmed


# -- orders through the engine -------------------------------------------------------------------------


async def _elders(core: Core) -> None:
    for elder_id, mode in (("e_free", "free"), ("e_low", "low_cost"), ("e_paid", "paid")):  # three other people
        await core.engine.put_elder(elder(elder_id, name=f"王{mode}", entitlement=mode), actor="admin:a")


async def test_the_price_is_fixed_from_the_entitlement_at_ordering_in_fen(core: Core) -> None:
    await _elders(core)
    now = core.clock.now()
    prices = {}
    for elder_id in ("e_free", "e_low", "e_paid", "e1"):  # e1 has no entitlement recorded: paid
        order_id = await core.engine.order_service(elder_id, "bathing", now + HOUR, now + 2 * HOUR, actor="operator:o")
        order = engine_of(core).state.service_orders[order_id]
        prices[elder_id] = (order.mode, order.price_fen)
        assert type(order.price_fen) is int
    assert prices == {"e_free": ("free", 0), "e_low": ("low_cost", 4000), "e_paid": ("paid", 8800),
                      "e1": ("paid", 8800)}  # fmt: skip
    (entry,) = await core.journal.read(core.journal.head_seq - 1, 1)
    assert isinstance(entry.fact, ServiceOrdered) and entry.fact.price_fen == 8800 and entry.fact.source == "console"
    # a later change of entitlement does not change an order already taken
    await core.engine.put_elder(elder("e_paid", name="王paid", entitlement="free"), actor="admin:a")
    paid = [o for o in engine_of(core).state.service_orders.values() if o.elder_id == "e_paid"]
    assert [(o.mode, o.price_fen) for o in paid] == [("paid", 8800)]


async def test_an_order_taken_on_a_drills_call_is_the_drills(core: Core) -> None:
    now = core.clock.now()
    for call_id, drill in (("drill-call", True), ("real-call", False)):
        await hotline(core, "ringing", call_id=call_id, caller="13800000001", line="12349", actor="pbx", drill=drill)
    taken = await core.engine.order_service("e1", "meal_delivery", now, now + HOUR, actor="operator:o",
                                            source="call", call_id="drill-call")  # fmt: skip
    assert engine_of(core).state.service_orders[taken].drill  # whatever the dialog said
    with pytest.raises(Conflict) as refused:
        await core.engine.order_service("e1", "meal_delivery", now, now + HOUR, actor="operator:o", source="call",
                                        call_id="real-call", drill=True)  # fmt: skip
    assert refused.value.code == "order_drill_mismatch"


async def test_a_refused_order_writes_nothing(core: Core) -> None:
    now, head = core.clock.now(), core.journal.head_seq
    with pytest.raises(NotFound) as no_elder:
        await core.engine.order_service("nobody", "bathing", now, now + HOUR, actor="operator:o")
    with pytest.raises(NotFound) as no_item:
        await core.engine.order_service("e1", "massage", now, now + HOUR, actor="operator:o")
    with pytest.raises(InvalidInput) as window:
        await core.engine.order_service("e1", "bathing", now + HOUR, now, actor="operator:o")
    with pytest.raises(NotFound) as no_call:
        await core.engine.order_service("e1", "bathing", now, now + HOUR, actor="operator:o", call_id="nope")
    codes = [e.value.code for e in (no_elder, no_item, window, no_call)]
    assert codes == ["unknown_elder", "unknown_service_item", "service_window", "unknown_call"]
    assert core.journal.head_seq == head


async def test_the_whole_line_with_check_in_and_out(core: Core, clock: ManualClock) -> None:
    await on_duty(core, "c_near")
    now = clock.now()
    order_id = await core.engine.order_service("e1", "meal_delivery", now + HOUR, now + 2 * HOUR, actor="operator:o")
    act = core.engine.order_action
    await act(order_id, "schedule", actor="operator:o", start=now + HOUR, end=now + 1.5 * HOUR)
    await act(order_id, "assign", actor="operator:o", responder_id="c_near")
    clock.advance(HOUR)
    await act(order_id, "start", actor="caregiver:c_near", caregiver="c_near", lat=24.511, lon=117.70)
    clock.advance(1200)
    await act(order_id, "deliver", actor="caregiver:c_near", caregiver="c_near", note="午餐已送到，老人已用餐")
    await act(order_id, "confirm", actor="operator:o")
    order = engine_of(core).state.service_orders[order_id]
    assert order.state is OrderState.CONFIRMED and not order.open
    assert (order.started_at, order.delivered_at) == (now + HOUR, now + HOUR + 1200)
    assert order.started_pos == (24.511, 117.70) and order.delivered_pos is None
    assert order.note == "午餐已送到，老人已用餐" and order.responder_id == "c_near"
    kinds = [e.kind for e in await core.journal.read(0, 10_000) if e.kind.startswith("service.")]
    assert kinds == ["service.ordered", "service.scheduled", "service.assigned", "service.started",
                     "service.delivered", "service.confirmed"]  # fmt: skip


async def test_illegal_moves_and_bad_actions_are_refused(core: Core) -> None:
    now = core.clock.now()
    order_id = await core.engine.order_service("e1", "meal_delivery", now, now + HOUR, actor="operator:o")
    head = core.journal.head_seq
    with pytest.raises(IllegalTransition):
        await core.engine.order_action(order_id, "start", actor="operator:o")  # not even scheduled
    with pytest.raises(InvalidInput) as unknown:
        await core.engine.order_action(order_id, "teleport", actor="operator:o")
    assert unknown.value.code == "unknown_order_action"
    with pytest.raises(InvalidInput) as no_reason:
        await core.engine.order_action(order_id, "cancel", actor="operator:o", reason="  ")
    assert no_reason.value.code == "reason_required"
    with pytest.raises(InvalidInput) as no_window:
        await core.engine.order_action(order_id, "schedule", actor="operator:o")
    assert no_window.value.code == "service_window"
    with pytest.raises(NotFound) as gone:
        await core.engine.order_action("SO-404", "confirm", actor="operator:o")
    assert gone.value.code == "unknown_service_order"
    assert core.journal.head_seq == head
    await core.engine.order_action(order_id, "cancel", actor="operator:o", reason="老人住院")
    with pytest.raises(IllegalTransition):
        await core.engine.order_action(order_id, "schedule", actor="operator:o", start=now, end=now + HOUR)


async def test_assign_needs_someone_on_duty_with_the_skill(core: Core) -> None:
    await on_duty(core, "c_near", "c_comfort")
    now = core.clock.now()
    order_id = await core.engine.order_service("e1", "meal_delivery", now, now + HOUR, actor="operator:o")
    await core.engine.order_action(order_id, "schedule", actor="operator:o", start=now, end=now + HOUR)
    head = core.journal.head_seq
    refusals = {}
    for responder_id in ("c_far", "c_comfort", "k1", "nobody"):
        with pytest.raises((Conflict, NotFound)) as refused:
            await core.engine.order_action(order_id, "assign", actor="operator:o", responder_id=responder_id)
        refusals[responder_id] = refused.value.code
    assert refusals == {"c_far": "responder_off_duty", "c_comfort": "responder_lacks_skill",
                        "k1": "unknown_responder", "nobody": "unknown_responder"}  # fmt: skip
    assert core.journal.head_seq == head
    # companionship needs the comfort skill, which c_comfort has
    other = await core.engine.order_service("e1", "companionship", now, now + HOUR, actor="operator:o")
    await core.engine.order_action(other, "schedule", actor="operator:o", start=now, end=now + HOUR)
    await core.engine.order_action(other, "assign", actor="operator:o", responder_id="c_comfort")


async def test_a_contracted_item_goes_only_to_that_providers_staff(core: Core) -> None:
    repairer = responder("k_staff", 24.511, 117.70, skills=["life_care"], provider="kangle")
    await core.engine.put_responder(repairer, actor="admin:a")
    await on_duty(core, "c_near", "k_staff")
    now = core.clock.now()
    repair = await core.engine.order_service("e1", "appliance_repair", now, now + HOUR, actor="operator:o")
    meal = await core.engine.order_service("e1", "meal_delivery", now, now + HOUR, actor="operator:o")
    for order_id in (repair, meal):
        await core.engine.order_action(order_id, "schedule", actor="operator:o", start=now, end=now + HOUR)
    assert engine_of(core).state.service_orders[repair].provider == "kangle"
    for order_id, wrong in ((repair, "c_near"), (meal, "k_staff")):
        with pytest.raises(Conflict) as refused:
            await core.engine.order_action(order_id, "assign", actor="operator:o", responder_id=wrong)
        assert refused.value.code == "responder_other_provider"
    await core.engine.order_action(repair, "assign", actor="operator:o", responder_id="k_staff")
    await core.engine.order_action(meal, "assign", actor="operator:o", responder_id="c_near")
    with pytest.raises(Conflict) as plan:  # a 五定 plan's fixed caregiver too
        await core.engine.create_plan("e1", "appliance_repair", "c_near", (1,), "09:00", actor="operator:o")
    assert plan.value.code == "responder_other_provider"
    await core.engine.create_plan("e1", "appliance_repair", "k_staff", (1,), "09:00", actor="operator:o")
    with pytest.raises(InvalidInput) as unknown:
        await core.engine.put_responder(responder("x1", 24.5, 117.7, provider="acme"), actor="admin:a")
    assert (unknown.value.code, unknown.value.field) == ("unknown_provider", "provider")


async def test_a_contracted_providers_staff_is_never_offered_an_alarm(core: Core) -> None:
    cleaner = responder("k_staff", 24.5141, 117.7011, skills=["life_care", "nursing"], provider="kangle")
    await core.engine.put_responder(cleaner, actor="admin:a")
    await on_duty(core, "k_staff")  # on duty for their company's visits, next door to the elder
    incident, _ = await raise_alarm(core, "sos", actor="operator:o", source="api", elder_id="e1")
    assert incident.needs_manual and not [a for a in engine_of(core).state.assignments.values()]
    with pytest.raises(Conflict) as refused:  # nor by an operator's hand
        await core.engine.dispatch(incident.incident_id, "k_staff", actor="operator:o")
    assert refused.value.code == "responder_contracted"


async def test_a_caregiver_reads_their_done_orders_for_half_a_day(core: Core, clock: ManualClock) -> None:
    await on_duty(core, "c_near")
    now = clock.now()
    order_id = await core.engine.order_service("e1", "meal_delivery", now, now + HOUR, actor="operator:o")
    await core.engine.order_action(order_id, "schedule", actor="operator:o", start=now, end=now + HOUR)
    await core.engine.order_action(order_id, "assign", actor="operator:o", responder_id="c_near")
    for action in ("start", "deliver"):
        await core.engine.order_action(order_id, action, actor="caregiver:c_near", caregiver="c_near")
    mine = Reach((), frozenset())
    assert [o["order_id"] for o in core.views.service_orders(mine, responder="c_near")] == [order_id]
    clock.advance(13 * HOUR)  # the door code and the phone number were theirs while the visit was
    assert core.views.service_orders(mine, responder="c_near") == []
    with pytest.raises(NotFound):
        core.views.service_order(order_id, mine, responder="c_near")
    assert [o["order_id"] for o in core.views.service_orders(ALL)] == [order_id]  # staff still read it


async def test_a_caregiver_acts_only_on_their_own_order(core: Core) -> None:
    await on_duty(core, "c_near", "c_mid")
    now = core.clock.now()
    order_id = await core.engine.order_service("e1", "meal_delivery", now, now + HOUR, actor="operator:o")
    await core.engine.order_action(order_id, "schedule", actor="operator:o", start=now, end=now + HOUR)
    await core.engine.order_action(order_id, "assign", actor="operator:o", responder_id="c_near")
    head = core.journal.head_seq
    with pytest.raises(NotFound) as not_theirs:
        await core.engine.order_action(order_id, "start", actor="caregiver:c_mid", caregiver="c_mid")
    assert not_theirs.value.code == "unknown_service_order"
    assert core.journal.head_seq == head
    # reassigned: now it is c_mid's, and c_near's check-in is refused
    await core.engine.order_action(order_id, "assign", actor="operator:o", responder_id="c_mid")
    with pytest.raises(NotFound):
        await core.engine.order_action(order_id, "start", actor="caregiver:c_near", caregiver="c_near")
    await core.engine.order_action(order_id, "start", actor="caregiver:c_mid", caregiver="c_mid")
    await core.engine.order_action(order_id, "no_show", actor="caregiver:c_mid", caregiver="c_mid", note="敲门无人")
    assert engine_of(core).state.service_orders[order_id].state is OrderState.NO_SHOW


async def test_reschedule_releases_the_caregiver(core: Core) -> None:
    await on_duty(core, "c_near")
    now = core.clock.now()
    order_id = await core.engine.order_service("e1", "home_cleaning", now, now + HOUR, actor="operator:o")
    await core.engine.order_action(order_id, "schedule", actor="operator:o", start=now, end=now + HOUR)
    await core.engine.order_action(order_id, "assign", actor="operator:o", responder_id="c_near")
    later = now + 86400
    await core.engine.order_action(order_id, "reschedule", actor="operator:o", start=later, end=later + HOUR,
                                   reason="老人改约明天")  # fmt: skip
    order = engine_of(core).state.service_orders[order_id]
    assert (order.state, order.responder_id, order.start, order.reason) == (
        OrderState.SCHEDULED, None, later, "老人改约明天"
    )  # fmt: skip


async def test_a_replay_gives_the_same_orders(core: Core, clock: ManualClock) -> None:
    await _elders(core)
    await on_duty(core, "c_near", "c_comfort")
    now = clock.now()
    act = core.engine.order_action
    made = [await core.engine.order_service(e, i, now + HOUR, now + 2 * HOUR, actor="operator:o", place="后门进")
            for e, i in (("e_low", "meal_delivery"), ("e_free", "companionship"), ("e_paid", "bathing"))]  # fmt: skip
    for order_id in made:
        await act(order_id, "schedule", actor="operator:o", start=now + HOUR, end=now + 2 * HOUR)
    await act(made[0], "assign", actor="operator:o", responder_id="c_near")
    await act(made[0], "start", actor="caregiver:c_near", caregiver="c_near", lat=24.51, lon=117.7)
    clock.advance(600)
    await act(made[0], "deliver", actor="caregiver:c_near", caregiver="c_near", note="送餐")
    await act(made[1], "assign", actor="operator:o", responder_id="c_comfort")
    await act(made[2], "cancel", actor="operator:o", reason="家属取消")
    before = engine_of(core).state.service_orders
    replayed = Projection(position_stale_s=core.settings.position_stale_s)
    async for entry in core.journal.replay():
        replayed.apply(entry)
    assert replayed.service_orders == before
    assert replayed.orders_in == engine_of(core).state.orders_in  # the index by state folds the same
    assert {o for ids in replayed.orders_in.values() for o in ids} == set(before)
    assert [o.state for o in replayed.service_orders.values()] == [
        OrderState.DELIVERED, OrderState.ASSIGNED, OrderState.CANCELLED
    ]  # fmt: skip


async def test_views_filter_by_reach_elder_state_and_caregiver(core: Core) -> None:
    await on_duty(core, "c_near")
    await core.engine.put_elder(elder("e_far", name="陈桂兰", community="龙文区/朝阳街道/朝阳社区"), actor="admin:a")
    now = core.clock.now()
    near = await core.engine.order_service("e1", "meal_delivery", now, now + HOUR, actor="operator:o")
    far = await core.engine.order_service("e_far", "meal_delivery", now, now + HOUR, actor="operator:o")
    await core.engine.order_action(near, "schedule", actor="operator:o", start=now, end=now + HOUR)
    await core.engine.order_action(near, "assign", actor="operator:o", responder_id="c_near")
    street = Reach(("龙文区/蓝田街道",), frozenset({"work"}), "operator:a")
    assert [o["order_id"] for o in core.views.service_orders(street)] == [near]
    assert [o["order_id"] for o in core.views.service_orders(ALL)] == [far, near]
    assert [o["order_id"] for o in core.views.service_orders(ALL, elder="e_far")] == [far]
    assert [o["order_id"] for o in core.views.service_orders(ALL, state="assigned")] == [near]
    assert [o["order_id"] for o in core.views.service_orders(ALL, limit=1)] == [far]
    nobody = Reach(("*",), frozenset(), "caregiver:c_near")  # a caregiver's reach: no work contents
    assert [o["order_id"] for o in core.views.service_orders(nobody, responder="c_near")] == [near]
    assert core.views.service_orders(nobody, responder="c_mid") == []
    with pytest.raises(NotFound):
        core.views.service_order(far, street)
    view = core.views.service_order(near, street)
    assert (view["price_fen"], view["mode"], view["responder_name"], view["state"]) == (1500, "paid", "护理员c_near",
                                                                                         "assigned")  # fmt: skip
    # the entries lie in the elder's community
    scopes = {e.fact.order_id: core.views.entry_scope(e).place  # type: ignore[attr-defined]
              for e in await core.journal.read(0, 10_000) if e.kind.startswith("service.")}  # fmt: skip
    assert scopes == {near: "龙文区/蓝田街道/蓝田社区", far: "龙文区/朝阳街道/朝阳社区"}
    assert core.views.services()[0]["item_id"] == "meal_delivery"
