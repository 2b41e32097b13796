"""Builders for the rule tests: an account with a unit tree, built through the
command handlers, and a helper that checks a refused command stored nothing.

The tree::

    HQ (DE)
    ├── EMEA
    │   └── France (FR)
    │       ├── Paris (FR)
    │       └── Lyon (FR)
    └── AMER
        └── United States (US)
            └── Houston (US)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.account import GlobalAccount
from domain.plan import AccountPlan, plan_id_for
from domain.values import Money, PersonalData, Target
from services import handlers as h
from services.app import GamApplication
from tests.support import meta

PERIOD = "FY2027"
DUE = date(2027, 12, 31)


def stored(app: GamApplication) -> int:
    """The position of the last stored event (0 for an empty store)."""
    return app.recorder.max_notification_id() or 0


Errors = type[BaseException] | tuple[type[BaseException], ...]


SPONSOR = "sponsor@vendor.example"
"""The executive sponsor who approves plans in these tests (the plans' submitter, ``meta()``'s
actor, may not: separation of duties)."""


def ensure_sponsor(app: GamApplication, plan_id: UUID) -> None:
    """Put :data:`SPONSOR` on the plan's account team as executive sponsor, unless there already."""
    account = app.load(GlobalAccount, app.load(AccountPlan, plan_id).account_id)
    hq = account.tree().hq().unit_id
    if (SPONSOR, hq, "executive_sponsor") not in account.team:
        h.assign_team_member(app, meta(), account_id=account.id, member=SPONSOR, unit_id=hq, role="executive_sponsor")


def approve_as_sponsor(app: GamApplication, _: Any = None, *, plan_id: UUID) -> Any:
    """Approve as the account's executive sponsor, put on its team first if need be."""
    ensure_sponsor(app, plan_id)
    return h.approve_plan(app, meta(SPONSOR), plan_id=plan_id)


def refused(app: GamApplication, error: Errors, handler: Callable[..., Any], **kwargs: Any) -> Any:
    """Run ``handler``; it must raise ``error`` (a class or a tuple of them) and store nothing."""
    before = stored(app)
    with pytest.raises(error) as raised:
        handler(app, meta(), **kwargs)
    assert stored(app) == before, f"{handler.__name__} was refused but stored events"
    return raised.value


@dataclass
class Org:
    """An account with its unit tree and (optionally) a draft plan."""

    app: GamApplication
    account: UUID
    hq: UUID
    emea: UUID
    france: UUID
    paris: UUID
    lyon: UUID
    amer: UUID
    us: UUID
    houston: UUID
    plan: UUID

    def refused(self, error: Errors, handler: Callable[..., Any], **kwargs: Any) -> Any:
        return refused(self.app, error, handler, **kwargs)

    # --- plan ---------------------------------------------------------------------

    def objective(
        self,
        unit: UUID | None = None,
        *,
        linked: UUID | None = None,
        target: Target | None = None,
    ) -> UUID:
        objective_id = uuid4()
        h.set_objective(
            self.app,
            meta(),
            plan_id=self.plan,
            objective_id=objective_id,
            unit_id=unit or self.hq,
            title="Grow digital services",
            description="",
            target=target or Target("revenue", Decimal(1_000_000), "EUR"),
            due_date=DUE,
            linked_objective_id=linked,
        )
        return objective_id

    def cascade(self, objective: UUID, source: UUID, *to: UUID) -> None:
        h.cascade_objective(
            self.app, meta(), plan_id=self.plan, objective_id=objective, from_unit_id=source, to_unit_ids=to
        )

    def respond(self, objective: UUID, unit: UUID, answer: str = "adopted", **kwargs: Any) -> None:
        if answer != "adopted":
            kwargs.setdefault("rationale", "Local market differs")
        if answer == "adapted":
            kwargs.setdefault("local_title", "Grow services in France")
            kwargs.setdefault("local_target", Target("revenue", Decimal(200_000), "EUR"))
        h.respond_to_cascade(
            self.app, meta(), plan_id=self.plan, objective_id=objective, unit_id=unit, answer=answer, **kwargs
        )

    def action(self, objective: UUID, unit: UUID) -> UUID:
        action_id = uuid4()
        h.add_action(
            self.app,
            meta(),
            plan_id=self.plan,
            action_id=action_id,
            objective_id=objective,
            unit_id=unit,
            title="Run a workshop",
            owner="bob@vendor.example",
            due_date=DUE,
        )
        return action_id

    # --- stakeholders and deals -----------------------------------------------------

    def stakeholder(self, unit: UUID | None = None, name: str = "Ada Byron") -> UUID:
        stakeholder_id = uuid4()
        h.identify_stakeholder(
            self.app,
            meta(),
            stakeholder_id=stakeholder_id,
            account_id=self.account,
            unit_id=unit or self.hq,
            title="Chief Procurement Officer",
            personal=PersonalData(name, "ada@customer.example"),
        )
        return stakeholder_id

    def deal(self, *, stage: str = "prospecting", amount: str = "1000.00", currency: str = "EUR") -> UUID:
        deal_id = uuid4()
        h.open_deal(
            self.app,
            meta(),
            deal_id=deal_id,
            account_id=self.account,
            unit_id=self.paris,
            title="Automation platform",
            amount=Money(Decimal(amount), currency),
            expected_close=date(2027, 6, 30),
            owner="bob@vendor.example",
            stage=stage,
        )
        return deal_id


def build_org(app: GamApplication, *, with_plan: bool = True, name: str = "Acme Chemicals") -> Org:
    """Create an account (and its FY2027 plan) with the unit tree in the module docstring."""
    account, hq = uuid4(), uuid4()
    common = {
        "account_id": account,
        "hq_unit_id": hq,
        "name": name,
        "industry": "Chemicals",
        "hq_country": "DE",
        "reporting_currency": "EUR",
        "tier": "tier_1",
        "governance_model": "coordinated",
    }
    if with_plan:
        h.onboard_account(app, meta(), fiscal_period=PERIOD, **common)
    else:
        h.create_account(app, meta(), **common)
    ids = {n: uuid4() for n in ("emea", "france", "paris", "lyon", "amer", "us", "houston")}
    for unit, level, parent, code in (
        ("emea", "region", hq, "EMEA"),
        ("france", "country", ids["emea"], "FR"),
        ("paris", "local", ids["france"], "FR"),
        ("lyon", "local", ids["france"], "FR"),
        ("amer", "region", hq, "AMER"),
        ("us", "country", ids["amer"], "US"),
        ("houston", "local", ids["us"], "US"),
    ):
        h.add_unit(
            app,
            meta(),
            account_id=account,
            unit_id=ids[unit],
            name=unit.title(),
            level=level,
            parent_id=parent,
            code=code,
        )
    return Org(app, account, hq, plan=plan_id_for(account, PERIOD), **ids)
