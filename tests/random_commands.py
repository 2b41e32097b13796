"""Random command sequences for property tests of views and replay.

Each step is (operation, a, b, c): small integers pick existing units,
objectives, people and deals modulo how many exist, so most commands are valid;
the ones a rule refuses raise a DomainError and must store nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from uuid import UUID, uuid4

from hypothesis import strategies as st

from domain.errors import DomainError
from domain.plan import plan_id_for
from domain.values import Money, PersonalData, Target
from services import handlers as h
from services.app import GamApplication
from tests.support import meta

OPERATIONS = (
    "add_unit", "set_objective", "cascade", "respond", "add_action", "action_status", "progress",
    "identify", "sentiment", "reports_to", "interaction", "open_deal", "move_stage", "amount", "win", "lose",
    "reopen", "influence", "whitespace", "catch_up",
)  # fmt: skip
LEVELS = ("region", "country", "local")
CODES = {"region": "EMEA", "country": "FR", "local": "FR"}

steps = st.lists(
    st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 40), st.integers(0, 40), st.integers(0, 4)),
    min_size=5,
    max_size=40,
)


class _Nothing(Exception):
    """The step names something that does not exist yet: no command is sent."""


@dataclass
class World:
    """What exists so far, so random indexes can name real things."""

    app: GamApplication
    account_id: UUID = field(default_factory=uuid4)
    units: list[tuple[UUID, str]] = field(default_factory=list)
    objectives: list[tuple[UUID, UUID]] = field(default_factory=list)
    actions: list[UUID] = field(default_factory=list)
    people: list[UUID] = field(default_factory=list)
    deals: list[UUID] = field(default_factory=list)
    rejected: int = 0

    @property
    def plan_id(self) -> UUID:
        return plan_id_for(self.account_id, "FY2027")

    def start(self) -> None:
        hq = uuid4()
        h.onboard_account(
            self.app, meta(), account_id=self.account_id, hq_unit_id=hq, name="Random AG", industry="Tests",
            hq_country="FR", reporting_currency="EUR", tier="tier_1", governance_model="coordinated",
            fiscal_period="FY2027",
        )  # fmt: skip
        self.units.append((hq, "hq"))

    def pick(self, items: list, n: int):  # type: ignore[no-untyped-def,type-arg]
        """The n-th existing item (modulo); when there is none the step is skipped."""
        if not items:
            raise _Nothing
        return items[n % len(items)]

    def run(self, operation: str, a: int, b: int, c: int) -> None:
        before = self.app.recorder.max_notification_id()
        try:
            getattr(self, "_" + operation)(a, b, c)
        except _Nothing:
            return
        except DomainError:
            self.rejected += 1
            assert self.app.recorder.max_notification_id() == before, f"rejected {operation} stored events"

    def _catch_up(self, a: int, b: int, c: int) -> None:
        """Marker: the caller catches its views up here."""

    def _add_unit(self, a: int, b: int, c: int) -> None:
        parent, level = self.pick(self.units, a)
        wanted = LEVELS[min(["hq", *LEVELS].index(level), 2)]
        unit = uuid4()
        h.add_unit(self.app, meta(), account_id=self.account_id, unit_id=unit, name=f"U{b}", level=wanted,
                   parent_id=parent, code=CODES[wanted])  # fmt: skip
        self.units.append((unit, wanted))

    def _set_objective(self, a: int, b: int, c: int) -> None:
        unit, _ = self.pick(self.units, a)
        objective = uuid4()
        linked = self.pick(self.objectives, b)[0] if c == 4 and self.objectives else None
        h.set_objective(self.app, meta(), plan_id=self.plan_id, objective_id=objective, unit_id=unit, title=f"O{b}",
                        description="", target=Target("revenue", Decimal(b * 1000), "EUR"), due_date=date(2027, 12, 31),
                        linked_objective_id=linked)  # fmt: skip
        self.objectives.append((objective, unit))

    def _cascade(self, a: int, b: int, c: int) -> None:
        objective, unit = self.pick(self.objectives, a)
        target, _ = self.pick(self.units, b)
        h.cascade_objective(self.app, meta(), plan_id=self.plan_id, objective_id=objective, from_unit_id=unit,
                            to_unit_ids=(target,))  # fmt: skip

    def _respond(self, a: int, b: int, c: int) -> None:
        objective, _ = self.pick(self.objectives, a)
        unit, _ = self.pick(self.units, b)
        answer = ("adopted", "adapted", "declined", "adopted", "adopted")[c]
        h.respond_to_cascade(self.app, meta(), plan_id=self.plan_id, objective_id=objective, unit_id=unit,
                             answer=answer, rationale="because", local_title="Local",
                             local_target=Target("revenue", Decimal(c), "EUR"))  # fmt: skip

    def _add_action(self, a: int, b: int, c: int) -> None:
        objective, unit = self.pick(self.objectives, a)
        action = uuid4()
        h.add_action(self.app, meta(), plan_id=self.plan_id, action_id=action, objective_id=objective, unit_id=unit,
                     title="Do it", owner="bob", due_date=date(2027, 6, 30))  # fmt: skip
        self.actions.append(action)

    def _action_status(self, a: int, b: int, c: int) -> None:
        action = self.pick(self.actions, a)
        status = ("in_progress", "done", "blocked", "planned", "in_progress")[c]
        h.change_action_status(self.app, meta(), plan_id=self.plan_id, action_id=action, status=status)

    def _progress(self, a: int, b: int, c: int) -> None:
        objective, unit = self.pick(self.objectives, a)
        h.report_progress(self.app, meta(), plan_id=self.plan_id, objective_id=objective, unit_id=unit,
                          percent=min(b * 3, 100), comment=f"p{c}")  # fmt: skip

    def _identify(self, a: int, b: int, c: int) -> None:
        unit, _ = self.pick(self.units, a)
        person = uuid4()
        h.identify_stakeholder(self.app, meta(), stakeholder_id=person, account_id=self.account_id, unit_id=unit,
                               title="CFO", personal=PersonalData(f"Person {b}", f"p{b}@example.com"))  # fmt: skip
        self.people.append(person)

    def _sentiment(self, a: int, b: int, c: int) -> None:
        person = self.pick(self.people, a)
        h.rate_sentiment(self.app, meta(), stakeholder_id=person, sentiment=c - 2)

    def _reports_to(self, a: int, b: int, c: int) -> None:
        person = self.pick(self.people, a)
        manager = self.pick(self.people, b)
        h.set_reports_to(self.app, meta(), stakeholder_id=person, manager_id=manager)

    def _interaction(self, a: int, b: int, c: int) -> None:
        person = self.pick(self.people, a)
        m = meta()
        h.log_interaction(self.app, m, stakeholder_id=person, interaction_id=uuid4(), occurred_at=m.at,
                          channel="call", summary=f"Call {b}")  # fmt: skip

    def _open_deal(self, a: int, b: int, c: int) -> None:
        unit, _ = self.pick(self.units, a)
        deal = uuid4()
        currency = ("EUR", "USD", "GBP", "JPY", "EUR")[c]
        amount = Money(Decimal(b * 1000 + 1), currency)
        h.open_deal(self.app, meta(), deal_id=deal, account_id=self.account_id, unit_id=unit, title=f"D{b}",
                    amount=amount, expected_close=date(2027, 3, 1), owner="bob")  # fmt: skip
        self.deals.append(deal)

    def _move_stage(self, a: int, b: int, c: int) -> None:
        deal = self.pick(self.deals, a)
        stage = ("prospecting", "qualification", "solution", "proposal", "negotiation")[c]
        h.move_deal_stage(self.app, meta(reason="Stage reviewed"), deal_id=deal, to_stage=stage)

    def _amount(self, a: int, b: int, c: int) -> None:
        deal = self.pick(self.deals, a)
        currency = ("EUR", "USD", "GBP", "JPY", "EUR")[c]
        h.change_deal_amount(self.app, meta(), deal_id=deal, amount=Money(Decimal(b * 500), currency))

    def _win(self, a: int, b: int, c: int) -> None:
        deal = self.pick(self.deals, a)
        currency = ("EUR", "USD", "GBP", "JPY", "EUR")[c]
        h.win_deal(self.app, meta(), deal_id=deal, final_amount=Money(Decimal(b * 900), currency))

    def _lose(self, a: int, b: int, c: int) -> None:
        deal = self.pick(self.deals, a)
        h.lose_deal(self.app, meta(), deal_id=deal, loss_reason="Price", competitor=f"Rival {c}" if c else None)

    def _reopen(self, a: int, b: int, c: int) -> None:
        deal = self.pick(self.deals, a)
        h.reopen_deal(self.app, meta(), deal_id=deal)

    def _influence(self, a: int, b: int, c: int) -> None:
        deal = self.pick(self.deals, a)
        person = self.pick(self.people, b)
        role = ("economic_buyer", "user_buyer", "technical_buyer", "coach", "coach")[c]
        note = f"Signs above {b} k" if c % 2 else None  # sealed under the person's key in every copy
        h.attach_buying_influence(self.app, meta(), deal_id=deal, stakeholder_id=person, role=role, degree="high",
                                  note=note)  # fmt: skip

    def _whitespace(self, a: int, b: int, c: int) -> None:
        unit, _ = self.pick(self.units, a)
        status = ("in_use", "opportunity", "competitor_holds", "not_a_fit", "in_use")[c]
        h.set_whitespace_cell(self.app, meta(), plan_id=self.plan_id, offering=f"Offer {b % 3}", unit_id=unit,
                              status=status)  # fmt: skip
