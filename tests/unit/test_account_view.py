"""The account view against the aggregates it summarises."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from domain.account import GlobalAccount
from domain.catalog import event_classes
from domain.deal import Deal
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder
from projections.account_view import EVOLVE, account_view, relationship_health
from projections.encoding import format_time
from projections.exchange_rates import PLANNING_RATES, ExchangeRates, UnknownCurrency
from services.app import GamApplication
from services.demo import SeededAccount, seed_account
from services.projector import Projector

NOW = datetime(2026, 11, 24, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded() -> tuple[GamApplication, SeededAccount, dict[str, Any]]:
    from infra.settings import Settings

    app = GamApplication(Settings(store="memory").eventsourcing_env())
    account = seed_account(app, 0)
    projector = Projector.in_memory(app, ["account_view"])
    projector.catch_up()
    view = account_view(projector.view("account_view"), account.account_id, now=NOW)
    assert view is not None
    return app, account, view


def test_every_event_type_is_handled() -> None:
    assert {cls.__qualname__ for cls in event_classes()} == set(EVOLVE)


def test_unit_tree_has_the_four_levels(seeded: tuple) -> None:  # type: ignore[type-arg]
    app, account, view = seeded
    levels: Counter[str] = Counter()

    def walk(node: dict[str, Any]) -> None:
        levels[node["level"]] += 1
        for child in node["children"]:
            walk(child)

    (root,) = view["unit_tree"]
    walk(root)
    assert levels == {"hq": 1, "region": 3, "country": 6, "local": 10}
    aggregate = app.load(GlobalAccount, account.account_id)
    assert sum(len(n["team"]) for n in _nodes(root)) == len(aggregate.team)


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node["children"] for n in _nodes(child))]


def test_cascade_state_matches_the_plan(seeded: tuple) -> None:  # type: ignore[type-arg]
    app, account, view = seeded
    plan = app.load(AccountPlan, account.plan_id)
    expected = Counter(d.answer for d in plan.directives.values())
    (summary,) = view["plans"]
    seen: Counter[str] = Counter()
    for objectives in summary["objectives_by_unit"].values():
        for objective in objectives:
            seen.update(objective["cascade"])
    assert seen == expected
    assert summary["status"] == "approved"
    assert summary["actions_by_status"] == dict(Counter(a.status for a in plan.actions.values()))


def test_open_pipeline_per_currency_equals_the_deals(seeded: tuple) -> None:  # type: ignore[type-arg]
    app, account, view = seeded
    deals = [app.load(Deal, d) for d in account.deal_ids]
    expected: dict[str, Decimal] = {}
    for deal in deals:
        if deal.status == "open":
            expected[deal.amount.currency] = expected.get(deal.amount.currency, Decimal(0)) + deal.amount.amount
    got = {c: Decimal(v["unweighted"]) for c, v in view["pipeline"]["by_deal_currency"].items()}
    assert got == expected
    by_stage = view["pipeline"]["by_stage"]
    assert sum(s["deals"] for s in by_stage.values()) == sum(1 for d in deals if d.status == "open")
    converted = sum(PLANNING_RATES.convert(v, c, "EUR")[0] for c, v in expected.items())
    assert abs(sum(Decimal(s["unweighted"]) for s in by_stage.values()) - converted) < Decimal("0.10")
    assert view["pipeline"]["rates"]["used"]["JPY"] == str(PLANNING_RATES.rate("JPY", "EUR"))


def test_rollups_add_up_the_tree(seeded: tuple) -> None:  # type: ignore[type-arg]
    _, _, view = seeded
    units = view["rollups"]["units"]
    hq = units["Headquarters"]
    regions = [u for u in units.values() if u["level"] == "region"]
    assert Decimal(hq["rolled_up_open"]) == sum(Decimal(r["rolled_up_open"]) for r in regions)
    locals_open = sum(Decimal(u["own_open"]) for u in units.values() if u["level"] == "local")
    assert Decimal(hq["rolled_up_open"]) == locals_open  # the demo books every deal at a local unit


def test_win_rate_by_count(seeded: tuple) -> None:  # type: ignore[type-arg]
    app, account, view = seeded
    statuses = Counter(app.load(Deal, d).status for d in account.deal_ids)
    rate = view["win_rate"]
    assert (rate["won"], rate["lost"]) == (statuses["won"], statuses["lost"])
    expected = Decimal(100 * statuses["won"]) / (statuses["won"] + statuses["lost"])
    assert Decimal(rate["by_count"]) == expected.quantize(Decimal("0.1"))


def test_stakeholder_map_and_coverage(seeded: tuple) -> None:  # type: ignore[type-arg]
    app, account, view = seeded
    people = [app.load(Stakeholder, s) for s in account.stakeholder_ids]
    present = [p for p in people if p.left_on is None]
    stakeholders = view["stakeholders"]
    assert len(stakeholders["people"]) == len(present) == 19
    assert len(stakeholders["left"]) == 1
    assert sorted(stakeholders["without_owner"]) == sorted(str(p.id) for p in present if not p.relationship_owner)
    assert stakeholders["not_contacted"] == []  # everyone was contacted within 90 days of NOW
    far_future = account_view_at(app, account, datetime(2030, 1, 1, tzinfo=UTC))
    assert len(far_future["stakeholders"]["not_contacted"]) == 19
    chart_size = sum(len(_people(n)) for n in stakeholders["org_chart"])
    assert chart_size == 19


def _people(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node["reports"] for n in _people(child))]


def account_view_at(app: GamApplication, account: SeededAccount, now: datetime) -> dict[str, Any]:
    projector = Projector.in_memory(app, ["account_view"])
    projector.catch_up()
    view = account_view(projector.view("account_view"), account.account_id, now=now)
    assert view is not None
    return view


def test_relationship_health_formula() -> None:
    recent = format_time(datetime(2026, 11, 1, tzinfo=UTC))
    old = format_time(datetime(2025, 1, 1, tzinfo=UTC))
    people = [
        {"relationship_owner": "ann", "last_contact": recent, "influence": 5, "sentiment": 2},
        {"relationship_owner": None, "last_contact": old, "influence": 1, "sentiment": -2},
    ]
    # coverage 1/2, recency 1/2, weighted sentiment (5 × 1 + 1 × 0) / 6
    expected = round(100 * (0.3 * 0.5 + 0.3 * 0.5 + 0.4 * 5 / 6))
    assert relationship_health(people, now=NOW, stale_after_days=90) == expected == 63
    assert relationship_health([], now=NOW, stale_after_days=90) is None


def test_exchange_rates_convert_through_the_base_and_refuse_unknown_currencies() -> None:
    rates = ExchangeRates("EUR", date(2026, 10, 1), "test", {"USD": Decimal("1.25"), "GBP": Decimal("0.5")})
    assert rates.convert(Decimal(100), "USD", "EUR") == (Decimal("80.00"), Decimal("0.8"))
    assert rates.convert(Decimal(100), "GBP", "USD") == (Decimal("250.00"), Decimal("2.5"))
    with pytest.raises(UnknownCurrency):
        rates.convert(Decimal(1), "XAU", "EUR")


def test_incremental_equals_rebuild_and_unknown_accounts_read_as_none(seeded: tuple) -> None:  # type: ignore[type-arg]
    app, _, _ = seeded
    projector = Projector.in_memory(app, ["account_view"])
    projector.catch_up()
    before = projector.view("account_view").documents_with_prefix("")
    projector.rebuild()
    assert projector.view("account_view").documents_with_prefix("") == before
    assert account_view(projector.view("account_view"), uuid4(), now=NOW) is None
