"""Many accounts, plans, stakeholders and deals in the account view, fast.

Deciding 40,000 commands through the bus takes minutes on a busy 2-core machine;
what the lists need is their rows as the account view's projection writes them. So
the events' facts are made here (the fields the view reads, as the stored JSON has
them) and go through the projection's own ``change`` in catch-up batches, as a
rebuild feeds it, with log positions past the store's (the view is then "ahead" of
an empty log, which nothing reading the lists minds). The lists' tests and
``bench.lists`` share it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import Tracking

from domain.account import GlobalAccount
from domain.base import GamEvent
from domain.deal import Deal
from domain.plan import AccountPlan, plan_id_for
from domain.stakeholder import Stakeholder
from domain.values import STAGE_PROBABILITY, DealStage
from projections.encoding import format_time
from projections.facts import EventFacts
from services.projector import Projector, batched

STAGES = tuple(DealStage)
OWNERS = ("ana@vendor.example", "bo@vendor.example", "cy@vendor.example")
INDUSTRIES = ("Chemicals", "Logistics", "Banking", "Retail")
COUNTRIES = ("DE", "SE", "US", "JP", "FR")
ROLES = ("decision_maker", "influencer", "user", "champion")
OVERDUE_CLOSE, LATER_CLOSE = "2020-06-30", "2099-06-30"


def periods(n: int) -> Iterator[str]:
    """``n`` distinct fiscal periods (FY2000, FY2000-H1, ...)."""
    suffixes = ("", "-H1", "-H2", "-Q1", "-Q2", "-Q3", "-Q4")
    count = 0
    for year in range(2000, 10_000):
        for suffix in suffixes:
            if count == n:
                return
            yield f"FY{year}{suffix}"
            count += 1


@dataclass
class BigAccount:
    """One account (HQ → region → country → local) holding many plans, people and
    deals, and many small accounts beside it."""

    account_id: UUID = field(default_factory=uuid4)
    hq: UUID = field(default_factory=uuid4)
    region: UUID = field(default_factory=uuid4)
    country: UUID = field(default_factory=uuid4)
    local: UUID = field(default_factory=uuid4)
    small_accounts: list[UUID] = field(default_factory=list)

    @property
    def units(self) -> tuple[UUID, UUID, UUID, UUID]:
        return self.hq, self.region, self.country, self.local


class _Facts:
    def __init__(self) -> None:
        self.at = datetime(2020, 1, 6, tzinfo=UTC)

    def __call__(self, event_class: type[GamEvent], entity: UUID, version: int, **payload: Any) -> EventFacts:
        self.at += timedelta(milliseconds=1)
        return EventFacts(
            event_class, entity, str(entity), version, self.at, format_time(self.at), "loader@vendor.example",
            None, uuid4(), None, payload,
        )  # fmt: skip


LEAD = "gam@vendor.example"
"""Leads the first three small accounts (and no other)."""
LOCAL_MANAGER = "ram@vendor.example"
"""The big account's local account manager at its local unit."""


def account_created(facts: _Facts, account_id: UUID, hq: UUID, n: int) -> EventFacts:
    return facts(
        GlobalAccount.Created, account_id, 1, name=f"Account {n:05d}", industry=INDUSTRIES[n % len(INDUSTRIES)],
        hq_country=COUNTRIES[n % len(COUNTRIES)], reporting_currency="EUR", tier="tier_1",
        governance_model="coordinated", hq_unit_id=str(hq), hq_unit_name="HQ",
        lead_gam=LEAD if 1 <= n <= 3 else "loader@vendor.example",
    )  # fmt: skip


def big_account_facts(
    big: BigAccount, *, accounts: int, plans: int, stakeholders: int, deals: int
) -> Iterator[EventFacts]:
    """The facts of: the big account and its units, ``accounts - 1`` small accounts,
    and the big account's ``plans``, ``stakeholders`` and ``deals``. People and deals
    cycle through the units (person ``n`` at unit ``n % 4``); deals through the stages
    and owners, and every third deal (``n % 3 == 0``) is overdue (it was expected to close in 2020)."""
    facts = _Facts()
    a = str(big.account_id)
    yield account_created(facts, big.account_id, big.hq, 0)
    for version, (unit, parent, name, level) in enumerate(
        ((big.region, big.hq, "EMEA", "region"), (big.country, big.region, "France", "country"),
         (big.local, big.country, "Paris", "local")),
        start=2,
    ):  # fmt: skip
        yield facts(
            GlobalAccount.UnitAdded, big.account_id, version, unit_id=str(unit), name=name, level=level,
            parent_id=str(parent), code="FR",
        )  # fmt: skip
    yield facts(
        GlobalAccount.TeamMemberAssigned, big.account_id, 5, member=LOCAL_MANAGER, unit_id=str(big.local),
        role="local_account_manager",
    )  # fmt: skip
    big.small_accounts = [uuid4() for _ in range(accounts - 1)]
    for n, account_id in enumerate(big.small_accounts, start=1):
        yield account_created(facts, account_id, uuid4(), n)
    for period in periods(plans):
        yield facts(AccountPlan.Started, plan_id_for(big.account_id, period), 1, account_id=a, fiscal_period=period)
    units = [str(u) for u in big.units]
    for n in range(stakeholders):
        person = uuid4()
        yield facts(
            Stakeholder.Identified, person, 1, account_id=a, unit_id=units[n % 4], title="Buyer",
            personal={"name": f"Person {n:05d}"},
        )  # fmt: skip
        if n % 2:  # every other person has a buying role
            yield facts(Stakeholder.BuyingRoleChanged, person, 2, from_role=None, to_role=ROLES[n % len(ROLES)])
    for n in range(deals):
        stage = STAGES[n % len(STAGES)]
        yield facts(
            Deal.Opened, uuid4(), 1, account_id=a, unit_id=units[n % 4], title=f"Deal {n:05d}",
            amount={"amount": f"{1000 + n}.00", "currency": "EUR"}, stage=stage.value,
            probability=STAGE_PROBABILITY[stage], expected_close=OVERDUE_CLOSE if n % 3 == 0 else LATER_CLOSE,
            owner=OWNERS[n % len(OWNERS)], products=[], linked_objective_ids=[],
        )  # fmt: skip


def load(projector: Projector, facts: Iterator[EventFacts], *, batch: int = 5_000) -> int:
    """Feed the facts to the account view's projection in catch-up batches; the last position."""
    projection = projector.projections["account_view"]
    application = projector.app.name
    position = projector.position("account_view")
    with batched([projection]) as (view,):
        for fact in facts:
            position += 1
            view.record(projection.change_for(fact, position), Tracking(application, position))
            if position % batch == 0:
                view.flush()
    return position
