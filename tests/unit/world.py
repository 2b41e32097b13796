"""A small account to test rules against: HQ → EMEA → France → Paris, and
HQ → AMER → United States; a draft FY2027 plan with one HQ objective; one
stakeholder; one deal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from domain.plan import plan_id_for
from domain.values import Money, PersonalData, Target
from services import handlers as h
from services.app import GamApplication
from tests.support import meta


@dataclass
class World:
    app: GamApplication
    account: UUID
    hq: UUID
    emea: UUID
    france: UUID
    paris: UUID
    amer: UUID
    us: UUID
    plan: UUID
    objective: UUID
    person: UUID
    deal: UUID

    def events(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def assert_refused(self, error: type[Exception], handler: object, **kwargs: object) -> Exception:
        """The command raises ``error`` and stores nothing."""
        before = self.events()
        with pytest.raises(error) as raised:
            handler(self.app, meta(), **kwargs)  # type: ignore[operator]
        assert self.events() == before, "a rejected command stored events"
        return raised.value


def build_world(app: GamApplication) -> World:
    account, hq = uuid4(), uuid4()
    h.onboard_account(
        app, meta(), account_id=account, hq_unit_id=hq, name="Acme", industry="Chemicals", hq_country="DE",
        reporting_currency="EUR", tier="tier_1", governance_model="coordinated", fiscal_period="FY2027",
    )  # fmt: skip
    units = {name: uuid4() for name in ("emea", "france", "paris", "amer", "us")}
    for name, level, parent, code in (
        ("emea", "region", hq, "EMEA"), ("france", "country", units["emea"], "FR"),
        ("paris", "local", units["france"], "FR"), ("amer", "region", hq, "AMER"),
        ("us", "country", units["amer"], "US"),
    ):  # fmt: skip
        h.add_unit(app, meta(), account_id=account, unit_id=units[name], name=name.title(), level=level,
                   parent_id=parent, code=code)  # fmt: skip
    plan = plan_id_for(account, "FY2027")
    objective = uuid4()
    h.set_objective(app, meta(), plan_id=plan, objective_id=objective, unit_id=hq, title="Grow", description="",
                    target=Target("revenue", Decimal(1_000_000), "EUR"), due_date=date(2027, 12, 31))  # fmt: skip
    person = uuid4()
    h.identify_stakeholder(app, meta(), stakeholder_id=person, account_id=account, unit_id=hq, title="CPO",
                           personal=PersonalData("Ada Byron", "ada@example.com"))  # fmt: skip
    deal = uuid4()
    h.open_deal(app, meta(), deal_id=deal, account_id=account, unit_id=units["paris"], title="Platform",
                amount=Money(Decimal("1000.00"), "EUR"), expected_close=date(2027, 6, 30), owner="bob",
                plan_id=plan, linked_objective_ids=(objective,))  # fmt: skip
    return World(app, account, hq, plan=plan, objective=objective, person=person, deal=deal, **units)
