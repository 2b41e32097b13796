"""The strategy flow view against the plan it follows: the demo account, and small
hand-built plans where the timing is chosen."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.catalog import AGGREGATES, event_classes
from domain.metadata import EventMetadata
from domain.plan import AccountPlan, plan_id_for
from domain.values import Money, Target
from projections.exchange_rates import PLANNING_RATES
from projections.ports import ViewChange
from projections.strategy_flow import (
    money_flow,
    plan_key,
    read_strategy_flow,
    strategy_flow,
)
from services import handlers as h
from services.app import GamApplication
from services.demo import seed_account
from services.projector import Projector
from tests.support import meta
from tests.unit.type_names import STRATEGY_FLOW_DEAL_HANDLED as DEAL_HANDLED
from tests.unit.type_names import STRATEGY_FLOW_DEAL_IGNORED as DEAL_IGNORED
from tests.unit.type_names import STRATEGY_FLOW_IGNORED as IGNORED
from tests.unit.type_names import STRATEGY_FLOW_IGNORED_AGGREGATES as IGNORED_AGGREGATES
from tests.unit.type_names import STRATEGY_FLOW_PLAN_EVOLVE as PLAN_EVOLVE
from tests.unit.type_names import STRATEGY_FLOW_STARTED as STARTED
from tests.unit.type_names import STRATEGY_FLOW_UNIT_EVOLVE as UNIT_EVOLVE
from tests.unit.world import World, build_world

T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)


def at(moment: datetime, actor: str = "gam@vendor.example") -> EventMetadata:
    return EventMetadata(actor=actor, at=moment, correlation_id=uuid4())


def caught_up(app: GamApplication) -> Projector:
    projector = Projector.in_memory(app, ["strategy_flow"])
    projector.catch_up()
    return projector


def flow_of(app: GamApplication, plan_id: UUID, now: datetime, days: int = 14) -> dict[str, Any]:
    flow = read_strategy_flow(caught_up(app).view("strategy_flow"), plan_id, now=now, answer_within_days=days)
    assert flow is not None
    return flow


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a cascade tree, depth first."""
    yield node
    for child in node["children"]:
        yield from nodes(child)


def one_decimal(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


# --- coverage of the event catalogue ---------------------------------------------------


def test_every_account_and_plan_event_is_handled_or_explicitly_ignored() -> None:
    names = {c.__qualname__ for c in event_classes()}
    relevant = {n for n in names if n.split(".")[0] in ("GlobalAccount", "AccountPlan")}
    handled = [*UNIT_EVOLVE, *PLAN_EVOLVE, STARTED, *IGNORED]
    assert len(handled) == len(set(handled)), "an event is both handled and ignored, or listed twice"
    assert set(handled) == relevant
    assert {a.__name__ for a in AGGREGATES} == {"GlobalAccount", "AccountPlan", "Deal", *IGNORED_AGGREGATES}
    deals = [*DEAL_HANDLED, *DEAL_IGNORED]
    assert len(deals) == len(set(deals))
    assert set(deals) == {n for n in names if n.split(".")[0] == "Deal"}


def test_stakeholder_events_change_nothing_but_their_position_is_tracked(memory_app: GamApplication) -> None:
    build_world(memory_app)
    projector = caught_up(memory_app)
    projection = projector.projections["strategy_flow"]
    last = memory_app.recorder.max_notification_id() or 0
    ignored = 0
    for notification in memory_app.recorder.select_notifications(start=1, limit=last):
        event = memory_app.mapper.to_domain_event(notification)
        if type(event).__qualname__.split(".")[0] in IGNORED_AGGREGATES:
            assert projection.change_for(event, notification.id) == ViewChange()
            ignored += 1
    assert ignored >= 1  # the world's stakeholder
    assert projector.position("strategy_flow") == last


# --- the demo account -----------------------------------------------------------------


@dataclass
class Demo:
    plan: AccountPlan
    flow: dict[str, Any]


@pytest.fixture
def demo(memory_app: GamApplication) -> Demo:
    seeded = seed_account(memory_app)
    flow = flow_of(memory_app, seeded.plan_id, now=datetime(2026, 12, 1, tzinfo=UTC))
    return Demo(memory_app.load(AccountPlan, seeded.plan_id), flow)


def test_demo_has_ten_hq_objectives_whose_cascade_states_are_the_plans(demo: Demo) -> None:
    assert len(demo.flow["objectives"]) == 10
    for item in demo.flow["objectives"]:
        expected = {
            str(unit): d.answer or "awaiting_response"
            for (objective, unit), d in demo.plan.directives.items()
            if str(objective) == item["objective_id"]
        }
        tree = list(nodes(item["cascade"]))
        assert tree[0]["state"] == "owner"
        assert tree[0]["level"] == "hq"
        assert {n["unit_id"]: n["state"] for n in tree[1:]} == expected
        for node in tree:
            for child in node["children"]:
                assert child["from_unit_id"] == node["unit_id"]
    assert sum(len(list(nodes(o["cascade"]))) - 1 for o in demo.flow["objectives"]) == len(demo.plan.directives)
    countries = [n for o in demo.flow["objectives"] for n in nodes(o["cascade"]) if n["level"] == "country"]
    assert countries, "regions cascade some objectives on to their countries"


def test_demo_roll_ups_equal_those_computed_from_the_plan(demo: Demo) -> None:
    latest: dict[tuple[UUID, UUID], int] = {}
    for report in demo.plan.progress:  # in log order, so the last one wins
        latest[(report.objective_id, report.unit_id)] = report.percent
    for item in demo.flow["objectives"]:
        objective = demo.plan.objectives[UUID(item["objective_id"])]
        directives = [d for (oid, _), d in demo.plan.directives.items() if oid == objective.objective_id]
        answers = Counter(d.answer for d in directives)
        rollup = item["rollup"]
        assert (rollup["addressed_units"], rollup["adopted"], rollup["adapted"], rollup["declined"]) == (
            len(directives), answers["adopted"], answers["adapted"], answers["declined"],
        )  # fmt: skip
        taken_on = answers["adopted"] + answers["adapted"]
        assert rollup["share_taken_on"] == one_decimal(Decimal(100 * taken_on) / len(directives))
        holders = [objective.unit_id, *(d.to_unit_id for d in directives if d.taken_on)]
        percents = [latest.get((objective.objective_id, unit), 0) for unit in holders]
        assert rollup["weighted_progress"] == one_decimal(Decimal(sum(percents)) / len(holders))


def test_demo_declined_directives_are_gaps_with_their_rationale(demo: Demo) -> None:
    declined = {
        (str(d.objective_id), str(d.to_unit_id)): d.rationale
        for d in demo.plan.directives.values()
        if d.answer == "declined"
    }
    assert declined
    gaps = demo.flow["gaps"]["declined"]
    assert {(g["objective_id"], g["unit_id"]): g["rationale"] for g in gaps} == declined
    assert all(g["rationale"].startswith("No budget in ") for g in gaps)
    assert demo.flow["gaps"]["unanswered"] == []  # every demo directive is answered
    assert demo.flow["gaps"]["unlinked_local_objectives"] == []  # the demo sets HQ objectives only


def test_demo_flows_go_down_and_up_in_time_order(demo: Demo) -> None:
    flows = demo.flow["flows"]
    assert {f["direction"] for f in flows} == {"down", "up"}
    assert [f["at"] for f in flows] == sorted(f["at"] for f in flows)
    assert sum(1 for f in flows if f["direction"] == "down") == len(demo.plan.directives)
    for f in flows:
        assert f["unit_id"] == (f["to_unit_id"] if f["direction"] == "down" else f["from_unit_id"])
        assert f["actor"]
    first_answer = next(i for i, f in enumerate(flows) if f["kind"] in ("adopted", "adapted", "declined"))
    assert flows[first_answer - 1]["direction"] == "down"  # a unit answers after it was asked


# --- hand-built plans -----------------------------------------------------------------


@pytest.fixture
def w(memory_app: GamApplication) -> World:
    return build_world(memory_app)


def cascade(w: World, moment: datetime, from_unit: UUID, *to_units: UUID, objective: UUID | None = None) -> None:
    h.cascade_objective(w.app, at(moment), plan_id=w.plan, objective_id=objective or w.objective,
                        from_unit_id=from_unit, to_unit_ids=to_units)  # fmt: skip


def answer(w: World, moment: datetime, unit: UUID, how: str, **details: Any) -> None:
    h.respond_to_cascade(w.app, at(moment, "ram@vendor.example"), plan_id=w.plan, objective_id=w.objective,
                         unit_id=unit, answer=how, **details)  # fmt: skip


def test_an_unanswered_unit_is_listed_at_once_and_overdue_only_after_the_allowed_days(w: World) -> None:
    cascade(w, T0, w.hq, w.emea, w.amer)
    answer(w, T0 + timedelta(hours=3), w.emea, "adopted")
    soon = flow_of(w.app, w.plan, now=T0 + timedelta(days=2))
    assert [(g["unit"], g["from_unit"], g["days_waiting"], g["overdue"]) for g in soon["gaps"]["unanswered"]] == [
        ("Amer", "Headquarters", 2, False)
    ]
    assert soon["gaps"]["overdue"] == []
    (amer,) = [n for n in nodes(soon["objectives"][0]["cascade"]) if n["unit"] == "Amer"]
    assert (amer["state"], amer["overdue"], amer["hours_waiting"]) == ("awaiting_response", False, 48.0)
    later = flow_of(w.app, w.plan, now=T0 + timedelta(days=30))
    assert [(g["unit"], g["days_waiting"]) for g in later["gaps"]["overdue"]] == [("Amer", 30)]
    assert later["gaps"]["unanswered"] == later["gaps"]["overdue"]
    stricter = flow_of(w.app, w.plan, now=T0 + timedelta(days=2), days=1)
    assert [g["unit"] for g in stricter["gaps"]["overdue"]] == ["Amer"]


def test_time_to_respond_is_measured_in_hours(w: World) -> None:
    cascade(w, T0, w.hq, w.emea, w.amer)
    answer(w, T0 + timedelta(hours=30), w.emea, "adopted")
    answer(w, T0 + timedelta(days=2, minutes=45), w.amer, "declined", rationale="No budget")
    flow = flow_of(w.app, w.plan, now=T0 + timedelta(days=3))
    amer, emea = flow["objectives"][0]["cascade"]["children"]  # sorted by unit name
    assert (emea["unit"], emea["state"], emea["hours_to_respond"]) == ("Emea", "adopted", 30.0)
    assert (amer["unit"], amer["state"], amer["hours_to_respond"]) == ("Amer", "declined", 48.75)
    assert emea["hours_waiting"] is None


def test_local_objectives_must_link_up_to_hq(w: World) -> None:
    base: dict[str, Any] = {
        "plan_id": w.plan,
        "description": "",
        "target": Target("n", Decimal(1)),
        "due_date": date(2027, 1, 1),
    }
    region, linked, orphan = uuid4(), uuid4(), uuid4()
    h.set_objective(w.app, meta(), objective_id=region, unit_id=w.emea, title="Regional",
                    linked_objective_id=w.objective, **base)  # fmt: skip
    h.set_objective(w.app, meta(), objective_id=linked, unit_id=w.paris, title="Linked via region",
                    linked_objective_id=region, **base)  # fmt: skip
    h.set_objective(w.app, meta(), objective_id=orphan, unit_id=w.france, title="Orphan", **base)
    flow = flow_of(w.app, w.plan, now=T0)
    assert [(g["objective_id"], g["title"], g["unit"]) for g in flow["gaps"]["unlinked_local_objectives"]] == [
        (str(orphan), "Orphan", "France")
    ]
    (hq_objective,) = flow["objectives"]  # local objectives are not HQ objectives
    assert [s["objective_id"] for s in hq_objective["supporting_objectives"]] == [str(region), str(linked)]


def test_the_cascade_tree_nests_down_to_local_units_and_execution_comes_back(w: World) -> None:
    cascade(w, T0, w.hq, w.emea)
    answer(w, T0 + timedelta(hours=1), w.emea, "adopted")
    cascade(w, T0 + timedelta(hours=2), w.emea, w.france)
    answer(w, T0 + timedelta(hours=3), w.france, "adapted", local_title="Grow in France",
           local_target=Target("revenue", Decimal(250_000), "EUR"), rationale="Smaller market")  # fmt: skip
    cascade(w, T0 + timedelta(hours=4), w.france, w.paris)
    answer(w, T0 + timedelta(hours=5), w.paris, "adopted")
    action = uuid4()
    h.add_action(w.app, at(T0 + timedelta(hours=6), "lam"), plan_id=w.plan, action_id=action,
                 objective_id=w.objective, unit_id=w.paris, title="Visit plant", owner="lam",
                 due_date=date(2027, 3, 1))  # fmt: skip
    h.change_action_status(w.app, at(T0 + timedelta(hours=7), "lam"), plan_id=w.plan, action_id=action,
                           status="in_progress")  # fmt: skip
    h.report_progress(w.app, at(T0 + timedelta(hours=8), "lam"), plan_id=w.plan, objective_id=w.objective,
                      unit_id=w.paris, percent=35, comment="Two visits done")  # fmt: skip
    flow = flow_of(w.app, w.plan, now=T0 + timedelta(days=1))
    (emea,) = flow["objectives"][0]["cascade"]["children"]
    (france,) = emea["children"]
    (paris,) = france["children"]
    assert [(n["unit"], n["level"], n["state"]) for n in (emea, france, paris)] == [
        ("Emea", "region", "adopted"), ("France", "country", "adapted"), ("Paris", "local", "adopted"),
    ]  # fmt: skip
    assert (france["local_title"], france["local_target"], france["rationale"]) == (
        "Grow in France", {"metric": "revenue", "value": "250000", "currency": "EUR"}, "Smaller market",
    )  # fmt: skip
    assert [(a["title"], a["status"]) for a in paris["actions"]] == [("Visit plant", "in_progress")]
    assert paris["progress"] == [
        {"percent": 35, "comment": "Two visits done", "at": "2027-02-01T17:00:00.000000Z", "by": "lam"}
    ]
    assert paris["latest_progress"] == 35
    progress = [f for f in flow["flows"] if f["kind"] == "progress"]
    assert [(f["from_unit_id"], f["to_unit_id"], f["actor"]) for f in progress] == [
        (str(w.paris), str(w.france), "lam")
    ]
    rollup = flow["objectives"][0]["rollup"]
    # holders: HQ (no report: 0), EMEA (0), France (0), Paris (35) → 35 / 4
    assert (rollup["units_holding"], rollup["units_reporting"], rollup["weighted_progress"]) == (4, 1, "8.8")
    assert rollup["share_taken_on"] == "100.0"


def test_blocked_actions_flow_up_as_escalations_and_progress_rolls_up(w: World) -> None:
    cascade(w, T0, w.hq, w.emea, w.amer)
    answer(w, T0 + timedelta(hours=1), w.emea, "adopted")
    action = uuid4()
    h.add_action(w.app, at(T0 + timedelta(hours=2)), plan_id=w.plan, action_id=action, objective_id=w.objective,
                 unit_id=w.emea, title="Workshop", owner="ram", due_date=date(2027, 3, 1))  # fmt: skip
    h.change_action_status(w.app, at(T0 + timedelta(hours=3)), plan_id=w.plan, action_id=action, status="blocked")
    h.report_progress(w.app, at(T0 + timedelta(hours=4)), plan_id=w.plan, objective_id=w.objective,
                      unit_id=w.emea, percent=60)  # fmt: skip
    h.report_progress(w.app, at(T0 + timedelta(hours=5)), plan_id=w.plan, objective_id=w.objective,
                      unit_id=w.hq, percent=20)  # fmt: skip
    flow = flow_of(w.app, w.plan, now=T0 + timedelta(days=1))
    assert [(f["direction"], f["kind"]) for f in flow["flows"]] == [
        ("down", "directive"), ("down", "directive"), ("up", "adopted"), ("up", "action_added"),
        ("up", "escalation"), ("up", "progress"), ("up", "progress"),
    ]  # fmt: skip
    escalation = flow["flows"][4]
    assert (escalation["unit"], escalation["to_unit_id"], escalation["status"]) == ("Emea", str(w.hq), "blocked")
    assert flow["flows"][-1]["to_unit_id"] is None  # the owner's own report goes to no one above it
    rollup = flow["objectives"][0]["rollup"]
    assert rollup["weighted_progress"] == "40.0"  # HQ 20 and EMEA 60; AMER has not taken it on
    assert (rollup["share_taken_on"], rollup["awaiting_response"], rollup["blocked_actions"]) == ("50.0", 1, 1)


def test_unit_changes_reach_every_plan_of_the_account(w: World) -> None:
    cascade(w, T0, w.hq, w.emea, w.amer)
    next_year = plan_id_for(w.account, "FY2028")
    h.start_plan(w.app, meta(), account_id=w.account, fiscal_period="FY2028")
    h.rename_unit(w.app, meta(), account_id=w.account, unit_id=w.emea, name="Europe")
    h.close_unit(w.app, meta(), account_id=w.account, unit_id=w.us)
    view = caught_up(w.app).view("strategy_flow")
    for plan in (w.plan, next_year):
        document = view.documents([plan_key(plan)])[plan_key(plan)]
        assert document["units"][str(w.emea)]["name"] == "Europe"
        assert document["units"][str(w.us)]["closed"] is True
    flow = read_strategy_flow(view, w.plan, now=T0)
    assert flow is not None
    assert [n["unit"] for n in flow["objectives"][0]["cascade"]["children"]] == ["Amer", "Europe"]
    assert read_strategy_flow(view, uuid4(), now=T0) is None


def test_catching_up_in_chunks_equals_a_rebuild(w: World) -> None:
    projector = Projector.in_memory(w.app, ["strategy_flow"])

    def catch_up() -> None:
        projector.catch_up(batch=2)

    catch_up()
    cascade(w, T0, w.hq, w.emea, w.amer)
    catch_up()
    answer(w, T0 + timedelta(hours=1), w.emea, "adopted")
    cascade(w, T0 + timedelta(hours=2), w.emea, w.france)
    h.rename_unit(w.app, meta(), account_id=w.account, unit_id=w.france, name="République française")
    catch_up()
    answer(w, T0 + timedelta(hours=3), w.france, "declined", rationale="Already covered locally")
    h.report_progress(w.app, at(T0 + timedelta(hours=4)), plan_id=w.plan, objective_id=w.objective,
                      unit_id=w.emea, percent=10, comment="Started")  # fmt: skip
    h.start_plan(w.app, meta(), account_id=w.account, fiscal_period="FY2028")
    catch_up()
    h.close_unit(w.app, meta(), account_id=w.account, unit_id=w.us)
    h.submit_plan(w.app, meta(), plan_id=w.plan)
    catch_up()
    view = projector.view("strategy_flow")
    incremental = copy.deepcopy(view.documents_with_prefix(""))
    read = read_strategy_flow(view, w.plan, now=T0 + timedelta(days=20))
    projector.rebuild()
    assert view.documents_with_prefix("") == incremental
    assert read_strategy_flow(view, w.plan, now=T0 + timedelta(days=20)) == read
    assert read is not None
    assert read["status"] == "submitted"
    assert [g["unit"] for g in read["gaps"]["overdue"]] == ["Amer"]
    assert [(g["unit"], g["rationale"]) for g in read["gaps"]["declined"]] == [
        ("République française", "Already covered locally")
    ]


def test_documents_are_json_native_and_read_without_the_view(w: World) -> None:
    cascade(w, T0, w.hq, w.emea)
    answer(w, T0 + timedelta(hours=1), w.emea, "adapted", local_title="Grow EMEA",
           local_target=Target("revenue", Decimal("300000.50"), "EUR"), rationale="Scaled")  # fmt: skip
    view = caught_up(w.app).view("strategy_flow")
    documents = view.documents_with_prefix("")
    assert set(documents) >= {plan_key(w.plan), f"units:{w.account}", f"owner:{w.plan}"}
    assert json.loads(json.dumps(documents)) == documents
    document = documents[plan_key(w.plan)]
    linked = documents[f"deals:{w.account}"]["deals"]
    assert strategy_flow(document, now=T0, deals=linked, reporting="EUR") == read_strategy_flow(view, w.plan, now=T0)


# --- the flow in money --------------------------------------------------------------------


def test_an_hq_money_target_is_covered_by_the_first_level_answers_and_the_linked_open_deals(w: World) -> None:
    cascade(w, T0, w.hq, w.emea, w.amer)
    answer(w, T0 + timedelta(hours=1), w.emea, "adapted", local_title="Grow EMEA",
           local_target=Target("revenue", Decimal("300000.50"), "EUR"), rationale="Scaled")  # fmt: skip
    answer(w, T0 + timedelta(hours=2), w.amer, "adopted")
    usd, lost = uuid4(), uuid4()
    for deal, amount in ((usd, "5000.00"), (lost, "9999.00")):
        h.open_deal(w.app, at(T0), deal_id=deal, account_id=w.account, unit_id=w.paris, title=f"Deal {amount}",
                    amount=Money(Decimal(amount), "USD"), expected_close=date(2027, 6, 30), owner="bob",
                    plan_id=w.plan, linked_objective_ids=(w.objective,))  # fmt: skip
    h.lose_deal(w.app, at(T0), deal_id=lost, loss_reason="No budget")
    money = flow_of(w.app, w.plan, now=T0 + timedelta(days=1))["objectives"][0]["money"]
    rate = Decimal("0.9259259259")  # 1 / 1.08 (the planning rates: 1.08 USD per EUR), ten digits
    weighted = Decimal(100) + Decimal(500) * rate  # the world's 1,000 EUR deal and this one, both at 10 %
    assert money["reporting_currency"] == "EUR"
    assert (money["target"], money["committed"], money["committed_coverage"]) == ("1000000.00", "1300000.50", "130.0")
    assert [(u["unit"], u["answer"], u["in_reporting_currency"]) for u in money["committed_by_unit"]] == [
        ("Amer", "adopted", "1000000.00"),
        ("Emea", "adapted", "300000.50"),
    ]
    assert money["weighted_pipeline"] == str(weighted.quantize(Decimal("0.01")))
    assert money["pipeline"] == str((1000 + 5000 * rate).quantize(Decimal("0.01")))
    assert money["pipeline_coverage"] == "0.1"
    assert sorted((d["title"], d["status"]) for d in money["linked_deals"]) == [
        ("Deal 5000.00", "open"),
        ("Deal 9999.00", "lost"),
        ("Platform", "open"),
    ]
    assert money["rates_used"] == [{"currency": "USD", "rate": str(rate), "reads": f"{rate} EUR per USD"}]


def test_an_objective_without_a_money_target_has_no_money_flow(w: World) -> None:
    other = uuid4()
    h.set_objective(w.app, meta(), plan_id=w.plan, objective_id=other, unit_id=w.hq, title="Be loved", description="",
                    target=Target("nps", Decimal(40)), due_date=date(2027, 12, 31))  # fmt: skip
    flow = flow_of(w.app, w.plan, now=T0)
    assert {o["title"]: o["money"] is None for o in flow["objectives"]} == {"Grow": False, "Be loved": True}


deal_rows = st.lists(
    st.tuples(
        st.decimals(min_value=0, max_value=10**9, places=2),
        st.sampled_from(["EUR", "USD", "GBP"]),
        st.integers(0, 100),
        st.sampled_from(["open", "won", "lost"]),
        st.booleans(),
    ),
    max_size=8,
)


@given(deals=deal_rows)
@settings(max_examples=60, deadline=None)
def test_the_pipeline_is_the_open_linked_deals_converted_and_weighted(deals: list[tuple[Any, ...]]) -> None:
    """Against a sum computed here: every open deal linked to the objective (or to one
    serving it), amount × probability, each converted at the planning rates."""
    hq, region, hq_objective, local_objective = (str(uuid4()) for _ in range(4))
    objectives = {
        hq_objective: {"unit_id": hq, "target": {"metric": "revenue", "value": "1000000", "currency": "EUR"},
                       "directives": {}, "linked_objective_id": None},
        local_objective: {"unit_id": region, "target": {"metric": "revenue", "value": "5", "currency": "EUR"},
                          "directives": {}, "linked_objective_id": hq_objective},
    }  # fmt: skip
    documents = {
        str(uuid4()): {
            "title": f"d{n}", "unit_id": region, "amount": {"amount": str(amount), "currency": currency},
            "stage": "proposal", "probability": probability, "expected_close": "2027-06-30", "owner": "bob",
            "status": status, "linked_objective_ids": [local_objective if local else hq_objective],
        }
        for n, (amount, currency, probability, status, local) in enumerate(deals)
    }  # fmt: skip
    roots = {hq_objective: hq_objective, local_objective: hq_objective}
    money = money_flow(hq_objective, objectives, {}, roots, documents, "EUR", PLANNING_RATES)
    assert money is not None
    expected = sum(
        (amount * PLANNING_RATES.rate(currency, "EUR") * probability / 100
         for amount, currency, probability, status, _ in deals if status == "open"),
        Decimal(0),
    )  # fmt: skip
    assert money["weighted_pipeline"] == str(expected.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    assert len(money["linked_deals"]) == len(deals)
    assert {r["currency"] for r in money["rates_used"]} == {c for _, c, *_ in deals} - {"EUR"}
