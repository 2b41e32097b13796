"""The account view against the aggregates it summarises: figures the view
derives are recomputed here from the aggregates (loaded with ``app.load``) or by
hand from known inputs."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking
from hypothesis import given
from hypothesis import strategies as st

from domain.account import GlobalAccount
from domain.catalog import event_classes, event_type_of
from domain.deal import Deal
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder
from domain.values import Money, PersonalData, Target
from infra.sealed_reads import PersonalOpener
from infra.settings import Settings
from projections.account_view import (
    account_key,
    account_view,
    read_account_view,
    relationship_health,
)
from projections.encoding import format_time
from projections.exchange_rates import PLANNING_RATES, ExchangeRates, InvalidRates, UnknownCurrency, load_rates
from services import handlers as h
from services.app import GamApplication
from services.demo import SeededAccount, demo_id, seed_account
from services.projector import Projector
from services.read_models import ReadModels
from tests.support import meta
from tests.unit.type_names import ACCOUNT_VIEW_EVOLVE as EVOLVE
from tests.unit.type_names import ACCOUNT_VIEW_IGNORED as IGNORED
from tests.unit.world import World, build_world

NOW = datetime(2026, 11, 24, tzinfo=UTC)
CENT = Decimal("0.01")
View = dict[str, Any]


@dataclass
class Seeded:
    app: GamApplication
    account: SeededAccount
    projector: Projector

    def view(self, now: datetime = NOW, rates: ExchangeRates = PLANNING_RATES) -> View:
        """As a reader gets it: people's data opened with their keys."""
        found = ReadModels(self.projector, rates=rates).account_view(self.account.account_id, now=now).data
        assert found is not None
        return found

    def document(self) -> View:
        key = account_key(self.account.account_id)
        return self.projector.view("account_view").documents([key])[key]


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    """The demo account, projected once for the read-only tests of this module."""
    app = GamApplication(Settings(store="memory").eventsourcing_env())
    account = seed_account(app, 0)
    projector = Projector.in_memory(app, ["account_view"])
    projector.catch_up()
    yield Seeded(app, account, projector)
    app.close()


def _nodes(node: dict[str, Any], key: str = "children") -> list[dict[str, Any]]:
    return [node, *(n for child in node[key] for n in _nodes(child, key))]


def _money(value: str) -> Decimal:
    return Decimal(value)


# --- every event type ------------------------------------------------------------------------


def test_every_event_type_is_handled_or_deliberately_ignored() -> None:
    every = {cls.__qualname__ for cls in event_classes()}
    assert set(EVOLVE) | IGNORED == every
    assert not set(EVOLVE) & IGNORED


def exercise_the_rest(app: GamApplication, account: SeededAccount) -> None:
    """Commands the demo does not issue, so that every event type occurs."""
    account_id, hq = account.account_id, demo_id(0, "unit", "HQ")
    people, deals = account.stakeholder_ids, account.deal_ids
    h.rename_unit(app, meta(), account_id=account_id, unit_id=demo_id(0, "unit", "FR", "Lyon plant"), name="Lyon works")
    h.remove_team_member(app, meta(), account_id=account_id, member="cro@vendor.example", unit_id=hq,
                         role="executive_sponsor")  # fmt: skip
    declined = next(
        key for key, d in app.load(AccountPlan, account.plan_id).directives.items() if d.answer == "declined"
    )
    h.ask_to_reconsider(
        app, meta(), plan_id=account.plan_id, objective_id=declined[0], unit_id=declined[1], note="Again"
    )
    h.reopen_plan(app, meta(), plan_id=account.plan_id)
    h.remove_swot_entry(app, meta(), plan_id=account.plan_id, entry_id=demo_id(0, "swot", 0))
    h.correct_personal_data(app, meta(), stakeholder_id=people[0], personal=PersonalData("Anna Schmidt-Berg"))
    h.change_stakeholder_title(app, meta(), stakeholder_id=people[0], title="Group CPO")
    h.change_deal_probability(app, meta(), deal_id=deals[1], probability=35)
    h.move_deal_stage(app, meta(reason="Budget frozen"), deal_id=deals[2], to_stage="prospecting")
    h.detach_buying_influence(app, meta(), deal_id=deals[1], stakeholder_id=people[1], role="economic_buyer")
    h.close_unit(app, meta(), account_id=account_id, unit_id=demo_id(0, "unit", "SG", "Jurong site"))
    h.erase_personal_data(app, meta(), stakeholder_id=people[2], legal_basis="GDPR Art. 17 request")
    h.archive_account(app, meta(), account_id=account_id)


def test_every_handled_event_type_changes_the_document(memory_app: GamApplication) -> None:
    account = seed_account(memory_app, 0)
    exercise_the_rest(memory_app, account)
    projection = Projector.in_memory(memory_app, ["account_view"]).projections["account_view"]
    key = account_key(account.account_id)
    seen: set[str] = set()
    changed: set[str] = set()
    for notification in memory_app.recorder.select_notifications(start=1, limit=10**6):
        event = memory_app.mapper.to_domain_event(notification)
        before = copy.deepcopy(projection.view.documents([key]).get(key, {}))
        projection.process_event(event, Tracking(memory_app.name, notification.id))
        after = projection.view.documents([key])[key]
        seen.add(event_type_of(event))
        if {k: v for k, v in after.items() if k != "position"} != {k: v for k, v in before.items() if k != "position"}:
            changed.add(event_type_of(event))
    assert seen == {cls.__qualname__ for cls in event_classes()}, "the scenario misses an event type"
    assert changed == set(EVOLVE)


def test_events_of_unknown_accounts_record_only_the_owner_index(memory_app: GamApplication) -> None:
    world = build_world(memory_app)
    h.move_deal_stage(memory_app, meta(), deal_id=world.deal, to_stage="qualification")
    events = [memory_app.mapper.to_domain_event(n) for n in memory_app.recorder.select_notifications(1, 10**6)]
    opened = next(e for e in events if event_type_of(e) == "Deal.Opened")
    advanced = next(e for e in events if event_type_of(e) == "Deal.StageAdvanced")
    fresh = Projector.in_memory(memory_app, ["account_view"]).projections["account_view"]
    assert fresh.change_for(opened, 1).documents == {
        f"owner:{world.deal}": {"account_id": str(world.account), "entity_type": "deal"}
    }
    assert fresh.change_for(advanced, 2).documents == {}


# --- the stored document -------------------------------------------------------------------------


def test_the_document_is_json_native_and_keeps_names_apart(seeded: Seeded) -> None:
    document = seeded.document()
    assert json.loads(json.dumps(document)) == document
    assert document["position"] == seeded.app.recorder.max_notification_id()
    person = seeded.app.load(Stakeholder, seeded.account.stakeholder_ids[0])
    stored = document["stakeholders"][str(person.id)]
    assert set(stored["personal"]) == {"sealed"}  # as the event holds it, under the person's key
    assert person.personal.name not in json.dumps(document)
    opener = PersonalOpener(seeded.app.personal_keys, seeded.app.mapper.transcoder)
    assert opener.name(str(person.id), stored["personal"]) == {"name": person.personal.name}


def test_incremental_catch_up_in_chunks_equals_a_rebuild(memory_app: GamApplication) -> None:
    projector = Projector.in_memory(memory_app, ["account_view"])
    first = seed_account(memory_app, 0)
    projector.catch_up()
    exercise_the_rest(memory_app, first)
    projector.catch_up(batch=4)
    seed_account(memory_app, 1)
    projector.catch_up(batch=50)
    incremental = projector.view("account_view").documents_with_prefix("")

    rebuilt = Projector.in_memory(memory_app, ["account_view"])
    rebuilt.rebuild()
    assert rebuilt.view("account_view").documents_with_prefix("") == incremental
    assert len([k for k in incremental if k.startswith("account:")]) == 2
    assert account_view(rebuilt.view("account_view"), uuid4(), now=NOW) is None


# --- units, plan ---------------------------------------------------------------------------------


def test_unit_tree_has_three_regions_six_countries_ten_locals(seeded: Seeded) -> None:
    (root,) = seeded.view()["unit_tree"]
    nodes = _nodes(root)
    assert Counter(n["level"] for n in nodes) == {"hq": 1, "region": 3, "country": 6, "local": 10}
    aggregate = seeded.app.load(GlobalAccount, seeded.account.account_id)
    assert {(m["member"], n["unit_id"], m["role"]) for n in nodes for m in n["team"]} == {
        (a.member, str(a.unit_id), a.role) for a in aggregate.team.values()
    }
    for node in nodes:
        for child in node["children"]:
            assert aggregate.units[UUID(child["unit_id"])].parent_id == UUID(node["unit_id"])


def test_cascade_counts_equal_the_plan_aggregate(seeded: Seeded) -> None:
    plan = seeded.app.load(AccountPlan, seeded.account.plan_id)
    (summary,) = seeded.view()["plans"]
    expected = Counter(d.answer or "awaiting_response" for d in plan.directives.values())
    assert {k: v for k, v in summary["cascade"].items() if v} == dict(expected)
    for group in summary["objectives_by_unit"].values():
        for objective in group["objectives"]:
            per_objective = Counter(
                d.answer or "awaiting_response"
                for (o, _), d in plan.directives.items()
                if str(o) == objective["objective_id"]
            )
            assert {k: v for k, v in objective["cascade"].items() if v} == dict(per_objective)
    assert summary["status"] == plan.status == "approved"
    assert summary["actions_by_status"] == dict(Counter(a.status for a in plan.actions.values()))
    assert len(summary["actions"]) == len(plan.actions)
    assert sum(len(entries) for entries in summary["swot"].values()) == len(plan.swot)


def test_actions_are_overdue_once_past_due_and_not_done(seeded: Seeded) -> None:
    plan = seeded.app.load(AccountPlan, seeded.account.plan_id)
    later = datetime(2027, 4, 1, tzinfo=UTC)  # the demo's actions are due 2027-03-31
    (summary,) = seeded.view(now=later)["plans"]
    assert summary["overdue_actions"] == sum(1 for a in plan.actions.values() if a.status != "done") > 0
    assert seeded.view()["plans"][0]["overdue_actions"] == 0


def test_whitespace_grid_is_offerings_by_units(seeded: Seeded) -> None:
    plan = seeded.app.load(AccountPlan, seeded.account.plan_id)
    grid = seeded.view()["whitespace"]
    assert grid["fiscal_period"] == "FY2027"
    assert {(o, UUID(u)) for o, row in grid["cells"].items() for u in row} == set(plan.whitespace)
    for (offering, unit_id), status in plan.whitespace.items():
        assert grid["cells"][offering][str(unit_id)] == status
    assert len(grid["units"]) == 10
    assert all(u["level"] == "local" for u in grid["units"])


# --- pipeline and money ------------------------------------------------------------------------


def _deals(seeded: Seeded) -> list[Deal]:
    return [seeded.app.load(Deal, d) for d in seeded.account.deal_ids]


def test_open_pipeline_per_currency_equals_the_deal_aggregates(seeded: Seeded) -> None:
    deals = [d for d in _deals(seeded) if d.status == "open"]
    unweighted: dict[str, Decimal] = {}
    weighted: dict[str, Decimal] = {}
    for deal in deals:
        currency = deal.amount.currency
        unweighted[currency] = unweighted.get(currency, Decimal(0)) + deal.amount.amount
        weighted[currency] = weighted.get(currency, Decimal(0)) + deal.amount.amount * deal.probability / 100
    pipeline = seeded.view()["pipeline"]
    got = pipeline["by_deal_currency"]
    assert {c: _money(v["unweighted"]) for c, v in got.items()} == {c: v.quantize(CENT) for c, v in unweighted.items()}
    assert {c: _money(v["weighted"]) for c, v in got.items()} == {c: v.quantize(CENT) for c, v in weighted.items()}

    expected_total = sum((v * PLANNING_RATES.rate(c, "EUR") for c, v in unweighted.items()), Decimal(0))
    assert _money(pipeline["total"]["unweighted"]) == expected_total.quantize(CENT)
    assert pipeline["total"]["deals"] == len(deals)
    assert sum(s["deals"] for s in pipeline["by_stage"].values()) == len(deals)
    assert pipeline["by_stage"]["proposal"]["deals"] == sum(1 for d in deals if d.stage == "proposal")
    assert pipeline["by_level"]["local"]["deals"] == len(deals)  # the demo books every deal at a local unit
    assert all(pipeline["by_level"][level]["deals"] == 0 for level in ("hq", "region", "country"))
    assert sum(u["deals"] for u in pipeline["by_unit"].values()) == len(deals)
    assert pipeline["rates"]["source"] == PLANNING_RATES.source
    assert pipeline["rates"]["as_of"] == "2026-10-01"
    assert pipeline["rates"]["used"]["JPY"] == str(PLANNING_RATES.rate("JPY", "EUR"))


def test_every_converted_deal_figure_records_its_rate(seeded: Seeded) -> None:
    for row in seeded.view()["pipeline"]["deals"]:
        for figure in (row["amount"], row["weighted"]):
            expected = Decimal(figure["amount"]) * Decimal(figure["rate"])
            assert figure["reporting_currency"] == "EUR"
            assert abs(Decimal(figure["reporting_amount"]) - expected) <= CENT


def test_rollups_add_up_the_tree(seeded: Seeded) -> None:
    view = seeded.view()
    units = view["rollups"]["units"]
    (hq,) = [u for u in units.values() if u["level"] == "hq"]
    for measure in ("open", "weighted", "won"):
        regions = sum(_money(u["rolled_up"][measure]) for u in units.values() if u["level"] == "region")
        locals_ = sum(_money(u["own"][measure]) for u in units.values() if u["level"] == "local")
        assert abs(_money(hq["rolled_up"][measure]) - regions) <= 3 * CENT  # each shown to the cent
        assert abs(_money(hq["rolled_up"][measure]) - locals_) <= 10 * CENT
    assert abs(_money(hq["rolled_up"]["open"]) - _money(view["pipeline"]["total"]["unweighted"])) <= CENT


def test_win_rate_by_count_and_value(seeded: Seeded) -> None:
    deals = _deals(seeded)
    won = [d for d in deals if d.status == "won"]
    lost = [d for d in deals if d.status == "lost"]
    rate = seeded.view()["win_rate"]
    assert (rate["won"], rate["lost"]) == (len(won), len(lost)) == (3, 2)
    assert rate["by_count"] == "60.0"
    won_value = sum((_in_eur(d.final_amount or d.amount) for d in won), Decimal(0))
    lost_value = sum((_in_eur(d.amount) for d in lost), Decimal(0))
    assert _money(rate["won_value"]) == won_value.quantize(CENT)
    assert rate["by_value"] == str((100 * won_value / (won_value + lost_value)).quantize(Decimal("0.1"), ROUND_HALF_UP))


def _in_eur(money: Money) -> Decimal:
    return PLANNING_RATES.convert(money.amount, money.currency, "EUR")[0]


# --- stakeholders ------------------------------------------------------------------------------


def test_stakeholder_map_and_coverage(seeded: Seeded) -> None:
    people = [seeded.app.load(Stakeholder, s) for s in seeded.account.stakeholder_ids]
    present = [p for p in people if p.left_on is None]
    stakeholders = seeded.view()["stakeholders"]
    assert len(stakeholders["people"]) == len(present) == 19
    assert [p["stakeholder_id"] for p in stakeholders["left"]] == [str(p.id) for p in people if p.left_on]
    assert set(stakeholders["without_owner"]) == {str(p.id) for p in present if not p.relationship_owner}
    assert stakeholders["coverage"] == {
        "people": 19, "with_owner": sum(1 for p in present if p.relationship_owner), "contacted_recently": 19,
    }  # fmt: skip
    assert stakeholders["not_contacted"] == []  # everyone was contacted within 90 days of NOW
    assert stakeholders["by_buying_role"] == dict(Counter(p.buying_role for p in present))
    assert sum(len(_nodes(n, "reports")) for n in stakeholders["org_chart"]) == 19
    by_id = {p["stakeholder_id"]: p for p in stakeholders["people"]}
    for person in present:
        assert by_id[str(person.id)]["name"] == person.personal.name
        assert by_id[str(person.id)]["reports_to"] == (str(person.reports_to) if person.reports_to else None)
    for unit_id, row in stakeholders["per_unit"].items():
        sentiments = [p.sentiment for p in present if str(p.unit_id) == unit_id and p.sentiment is not None]
        assert Decimal(row["mean_sentiment"]) == (Decimal(sum(sentiments)) / len(sentiments)).quantize(CENT)

    far_future = seeded.view(now=datetime(2030, 1, 1, tzinfo=UTC))["stakeholders"]
    assert len(far_future["not_contacted"]) == 19
    assert far_future["coverage"]["contacted_recently"] == 0


def test_relationship_health_formula() -> None:
    recent = format_time(datetime(2026, 11, 1, tzinfo=UTC))
    old = format_time(datetime(2025, 1, 1, tzinfo=UTC))
    ann = {"relationship_owner": "ann", "last_contact": recent, "influence": 5, "sentiment": 2}  # score 1
    bob = {"relationship_owner": None, "last_contact": old, "influence": 1, "sentiment": -2}  # score 0
    cy = {"relationship_owner": "ann", "last_contact": None, "influence": None, "sentiment": None}  # 0.3 + 0.4 × 1/2
    assert relationship_health([ann, bob], now=NOW, stale_after_days=90) == 83  # 100 × 5 / 6
    assert relationship_health([ann, bob, cy], now=NOW, stale_after_days=90) == 72  # 100 × (5 + 3 × 0.5) / 9
    low = {"relationship_owner": None, "last_contact": None, "influence": 1, "sentiment": -1}  # score 0.1
    nil = {"relationship_owner": None, "last_contact": None, "influence": 3, "sentiment": -2}  # score 0
    assert 100 * Fraction(1, 10) / 4 == Fraction(5, 2)
    assert relationship_health([low, nil], now=NOW, stale_after_days=90) == 3  # 2.5 rounds half up
    assert relationship_health([], now=NOW, stale_after_days=90) is None
    assert relationship_health([ann], now=datetime(2027, 6, 1, tzinfo=UTC), stale_after_days=90) == 70


PEOPLE = st.lists(
    st.fixed_dictionaries({
        "relationship_owner": st.sampled_from([None, "ann"]),
        "last_contact": st.sampled_from([None, format_time(datetime(2025, 1, 1, tzinfo=UTC)),
                                         format_time(datetime(2026, 11, 1, tzinfo=UTC))]),
        "influence": st.sampled_from([None, 1, 2, 3, 4, 5]),
        "sentiment": st.sampled_from([None, -2, -1, 0, 1, 2]),
    }),
    min_size=1, max_size=12,
)  # fmt: skip


@given(PEOPLE)
def test_relationship_health_is_the_formula_in_exact_fractions_rounded_half_up(people: list[dict[str, Any]]) -> None:
    """Worked out in whole numbers (it runs for every unit on every read); the formula's
    exact value in fractions, rounded half up, is the reference."""
    cutoff = NOW - timedelta(days=90)
    weighted, weights = Fraction(0), 0
    for p in people:
        recent = p["last_contact"] is not None and datetime.fromisoformat(p["last_contact"]) >= cutoff
        score = (Fraction(3, 10) * bool(p["relationship_owner"]) + Fraction(3, 10) * recent
                 + Fraction(4, 10) * Fraction((p["sentiment"] or 0) + 2, 4))  # fmt: skip
        weighted += (p["influence"] or 3) * score
        weights += p["influence"] or 3
    assert relationship_health(people, now=NOW, stale_after_days=90) == int(100 * weighted / weights + Fraction(1, 2))


def test_health_per_unit_on_a_hand_built_account(memory_app: GamApplication) -> None:
    world = build_world(memory_app)  # Ada Byron at HQ, nothing rated yet
    bo, cy = uuid4(), uuid4()
    for person, name in ((bo, "Bo"), (cy, "Cy")):
        h.identify_stakeholder(memory_app, meta(), stakeholder_id=person, account_id=world.account,
                               unit_id=world.hq, title="Buyer", personal=PersonalData(name))  # fmt: skip
    h.rate_influence(memory_app, meta(), stakeholder_id=world.person, influence=5)
    h.rate_sentiment(memory_app, meta(), stakeholder_id=world.person, sentiment=2)
    h.assign_relationship_owner(memory_app, meta(), stakeholder_id=world.person, owner="ann")
    contact = meta()
    h.log_interaction(memory_app, contact, stakeholder_id=world.person, interaction_id=uuid4(), occurred_at=contact.at,
                      channel="call", summary="Kick-off")  # fmt: skip
    h.rate_influence(memory_app, meta(), stakeholder_id=bo, influence=1)
    h.rate_sentiment(memory_app, meta(), stakeholder_id=bo, sentiment=-2)
    h.assign_relationship_owner(memory_app, meta(), stakeholder_id=cy, owner="ann")
    view = _view_of(memory_app, world, now=contact.at + timedelta(days=30))
    hq = view["stakeholders"]["per_unit"][str(world.hq)]
    assert (hq["people"], hq["mean_sentiment"], hq["health"]) == (3, "0.00", 72)
    assert view["stakeholders"]["without_owner"] == [str(bo)]
    assert set(view["stakeholders"]["not_contacted"]) == {str(bo), str(cy)}


def _view_of(app: GamApplication, world: World, *, now: datetime, rates: ExchangeRates = PLANNING_RATES) -> View:
    projector = Projector.in_memory(app, ["account_view"])
    projector.catch_up()
    found = ReadModels(projector, rates=rates).account_view(world.account, now=now).data
    assert found is not None
    return found


# --- conversion, roll-ups against targets ---------------------------------------------------


TEST_RATES = ExchangeRates("EUR", date(2026, 10, 1), "test table", {"USD": Decimal("1.25"), "JPY": Decimal(200)})


def test_conversion_with_known_rates() -> None:
    assert TEST_RATES.convert(Decimal(100), "USD", "EUR") == (Decimal(80), Decimal("0.8"))
    assert TEST_RATES.convert(Decimal(100), "EUR", "JPY") == (Decimal(20000), Decimal(200))
    assert TEST_RATES.convert(Decimal(1000), "JPY", "USD") == (Decimal("6.25"), Decimal("0.00625"))
    with pytest.raises(UnknownCurrency, match="XAU"):
        TEST_RATES.convert(Decimal(1), "XAU", "EUR")
    with pytest.raises(UnknownCurrency):
        TEST_RATES.rate("GBP", "GBP")
    for code in ("EUR", "USD", "GBP", "JPY", "BRL", "SGD", "CHF", "CNY", "INR", "CAD", "AUD"):
        assert PLANNING_RATES.rate(code, "EUR") > 0


def test_pipeline_converts_each_currency_at_its_rate(memory_app: GamApplication) -> None:
    world = build_world(memory_app)  # one EUR 1000 deal at prospecting (10 %)
    for amount in (Money(Decimal(100), "USD"), Money(Decimal(10_000), "JPY")):
        h.open_deal(memory_app, meta(), deal_id=uuid4(), account_id=world.account, unit_id=world.paris,
                    title=f"{amount.currency} deal", amount=amount, expected_close=date(2027, 3, 1),
                    owner="bob")  # fmt: skip
    pipeline = _view_of(memory_app, world, now=NOW, rates=TEST_RATES)["pipeline"]
    assert pipeline["total"]["unweighted"] == "1130.00"  # 1000 + 100 × 0.8 + 10000 × 0.005
    assert pipeline["total"]["weighted"] == "113.00"
    assert pipeline["rates"] == {"base": "EUR", "as_of": "2026-10-01", "source": "test table",
                                 "used": {"EUR": "1", "JPY": "0.005", "USD": "0.8"}}  # fmt: skip
    assert pipeline["by_stage"]["prospecting"]["by_currency"]["JPY"] == {
        "unweighted": "10000.00", "weighted": "1000.00", "rate": "0.005",
    }  # fmt: skip
    assert pipeline["by_unit"][str(world.paris)]["deals"] == 3
    (jpy,) = [d for d in pipeline["deals"] if d["amount"]["currency"] == "JPY"]
    assert jpy["amount"]["reporting_amount"] == "50.00"


def test_open_deals_past_their_expected_close_date_are_flagged_overdue(memory_app: GamApplication) -> None:
    world = build_world(memory_app)  # the EUR 1000 deal closes on 2027-06-30
    later = uuid4()
    h.open_deal(memory_app, meta(), deal_id=later, account_id=world.account, unit_id=world.paris, title="Later",
                amount=Money(Decimal(5), "EUR"), expected_close=date(2027, 7, 1), owner="bob")  # fmt: skip

    def overdue(day: date) -> dict[str, bool]:
        moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        rows = _view_of(memory_app, world, now=moment)["pipeline"]["deals"]
        return {row["deal_id"]: row["overdue"] for row in rows}

    assert overdue(date(2027, 6, 30)) == {str(world.deal): False, str(later): False}  # the close date itself
    assert overdue(date(2027, 7, 1)) == {str(world.deal): True, str(later): False}
    assert overdue(date(2027, 7, 2)) == {str(world.deal): True, str(later): True}


def test_objective_roll_up_against_local_targets(memory_app: GamApplication) -> None:
    world = build_world(memory_app)  # HQ objective: revenue 1 000 000 EUR; Paris deal 1000 EUR linked to it
    h.cascade_objective(memory_app, meta(), plan_id=world.plan, objective_id=world.objective, from_unit_id=world.hq,
                        to_unit_ids=(world.emea, world.amer))  # fmt: skip
    emea_target = Target("revenue", Decimal(2000), "EUR")
    h.respond_to_cascade(memory_app, meta(), plan_id=world.plan, objective_id=world.objective, unit_id=world.emea,
                         answer="adapted", local_title="Grow EMEA", local_target=emea_target,
                         rationale="smaller base")  # fmt: skip
    for stage in ("qualification", "solution", "proposal"):
        h.move_deal_stage(memory_app, meta(), deal_id=world.deal, to_stage=stage)
    h.win_deal(memory_app, meta(), deal_id=world.deal, final_amount=Money(Decimal(1000), "EUR"))
    h.report_progress(memory_app, meta(), plan_id=world.plan, objective_id=world.objective, unit_id=world.emea,
                      percent=40)  # fmt: skip
    h.report_progress(memory_app, meta(), plan_id=world.plan, objective_id=world.objective, unit_id=world.hq,
                      percent=10)  # fmt: skip
    (objective,) = _view_of(memory_app, world, now=NOW)["rollups"]["objectives"]
    rows = {row["unit"]: row for row in objective["units"]}
    assert set(rows) == {"Headquarters", "Amer", "Emea", "France", "Paris"}  # not Us: nothing there
    assert objective["attainment_percent"] == "0.1"  # 1000 of 1 000 000
    assert rows["Headquarters"]["holds_as"] == "owner"
    assert rows["Headquarters"]["progress_percent"] == 10
    assert rows["Headquarters"]["progress_below_percent"] == "40.0"
    assert rows["Emea"]["holds_as"] == "adapted"
    assert rows["Emea"]["target"] == {"metric": "revenue", "value": "2000", "currency": "EUR"}
    assert rows["Emea"]["attainment_percent"] == "50.0"
    assert rows["Amer"]["holds_as"] == "awaiting_response"
    assert rows["Amer"]["target"] is None
    assert rows["France"]["linked_deals"]["won"] == rows["Paris"]["linked_deals"]["won"] == "1000.00"


# --- exchange-rate files ------------------------------------------------------------------------


def test_rates_load_from_a_file_and_bad_files_are_refused(tmp_path: Path) -> None:
    good = tmp_path / "rates.json"
    good.write_text(json.dumps({"base": "USD", "as_of": "2026-11-01", "source": "treasury",
                                "rates": {"EUR": "0.8", "JPY": 160}}))  # fmt: skip
    rates = load_rates(good)
    assert rates.describe() == {"base": "USD", "as_of": "2026-11-01", "source": "treasury"}
    assert rates.convert(Decimal(90), "EUR", "JPY") == (Decimal(18000), Decimal(200))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"base": "USD", "rates": {"EUR": "0.9"}}))
    with pytest.raises(InvalidRates, match="as_of"):
        load_rates(bad)
    bad.write_text(json.dumps({"base": "USD", "as_of": "2026-11-01", "source": "x", "rates": {"EUR": "-1"}}))
    with pytest.raises(InvalidRates, match="EUR"):
        load_rates(bad)


def test_a_naive_now_is_refused(seeded: Seeded) -> None:
    with pytest.raises(ValueError, match="timezone"):
        read_account_view(seeded.document(), now=datetime(2026, 11, 24))


def test_an_erased_person_reads_as_erased_in_the_view(memory_app: GamApplication) -> None:
    account = seed_account(memory_app, 0)
    person = account.stakeholder_ids[4]
    h.erase_personal_data(memory_app, meta(), stakeholder_id=person, legal_basis="GDPR Art. 17")
    for projector in (Projector.in_memory(memory_app, ["account_view"]),):
        projector.catch_up()
        live = projector.view("account_view").documents([account_key(account.account_id)])
        assert live[account_key(account.account_id)]["stakeholders"][str(person)]["personal"] == {"name": "[erased]"}
        projector.rebuild()  # rebuilt after the key is gone: the identified event itself reads as erased
        rebuilt = projector.view("account_view").documents([account_key(account.account_id)])
        assert rebuilt[account_key(account.account_id)]["stakeholders"][str(person)]["personal"] == {"name": "[erased]"}


def test_sections_asked_alone_equal_those_of_the_whole_view(seeded: Seeded) -> None:
    whole = seeded.view()
    reads = ReadModels(seeded.projector)
    for sections in (("stakeholders",), ("pipeline", "win_rate"), ("unit_tree", "rollups"), ()):
        part = reads.account_view(seeded.account.account_id, now=NOW, sections=sections).data
        assert part is not None
        assert set(part) == {"account", "position", "as_of", *sections}
        assert part == {key: whole[key] for key in part}
