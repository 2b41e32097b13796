"""Use cases on the deal pipeline."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from domain.deal import Deal
from domain.errors import InvalidValue, UnitOfAnotherAccount
from domain.metadata import EventMetadata
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder
from domain.values import Money
from services.app import CommandResult, GamApplication
from services.handlers.accounts import active_tree


def open_deal(
    app: GamApplication,
    meta: EventMetadata,
    *,
    deal_id: UUID,
    account_id: UUID,
    unit_id: UUID,
    title: str,
    amount: Money,
    expected_close: date,
    owner: str,
    stage: str = "prospecting",
    probability: int | None = None,
    products: tuple[str, ...] = (),
    plan_id: UUID | None = None,
    linked_objective_ids: tuple[UUID, ...] = (),
) -> CommandResult:
    """Linked objectives must belong to ``plan_id``, a plan of the same account."""
    tree = active_tree(app, account_id)
    known: frozenset[UUID] = frozenset()
    if plan_id is not None:
        plan = app.load(AccountPlan, plan_id)
        if plan.account_id != account_id:
            raise UnitOfAnotherAccount(f"plan {plan_id} belongs to another account")
        known = frozenset(plan.objectives)
    elif linked_objective_ids:
        raise InvalidValue("plan_id", "name the plan whose objectives the deal supports")
    deal = Deal.open(
        deal_id=deal_id,
        unit_id=unit_id,
        title=title,
        amount=amount,
        expected_close=expected_close,
        owner=owner,
        stage=stage,
        probability=probability,
        products=tuple(products),
        linked_objective_ids=tuple(linked_objective_ids),
        known_objective_ids=known,
        tree=tree,
        meta=meta,
    )
    return app.commit(deal)


def _deal(app: GamApplication, deal_id: UUID, expected_version: int | None) -> Deal:
    deal = app.load(Deal, deal_id, expected_version)
    active_tree(app, deal.account_id)
    return deal


def move_deal_stage(
    app: GamApplication, meta: EventMetadata, *, deal_id: UUID, to_stage: str, expected_version: int | None = None
) -> CommandResult:
    deal = _deal(app, deal_id, expected_version)
    deal.move_stage(to_stage=to_stage, meta=meta)
    return app.commit(deal)


def change_deal_amount(
    app: GamApplication, meta: EventMetadata, *, deal_id: UUID, amount: Money, expected_version: int | None = None
) -> CommandResult:
    deal = _deal(app, deal_id, expected_version)
    deal.change_amount(amount=amount, meta=meta)
    return app.commit(deal)


def change_deal_close_date(
    app: GamApplication,
    meta: EventMetadata,
    *,
    deal_id: UUID,
    expected_close: date,
    expected_version: int | None = None,
) -> CommandResult:
    deal = _deal(app, deal_id, expected_version)
    deal.change_close_date(expected_close=expected_close, meta=meta)
    return app.commit(deal)


def change_deal_probability(
    app: GamApplication, meta: EventMetadata, *, deal_id: UUID, probability: int, expected_version: int | None = None
) -> CommandResult:
    deal = _deal(app, deal_id, expected_version)
    deal.change_probability(probability=probability, meta=meta)
    return app.commit(deal)


def win_deal(
    app: GamApplication, meta: EventMetadata, *, deal_id: UUID, final_amount: Money, expected_version: int | None = None
) -> CommandResult:
    deal = _deal(app, deal_id, expected_version)
    deal.win(final_amount=final_amount, meta=meta)
    return app.commit(deal)


def lose_deal(
    app: GamApplication,
    meta: EventMetadata,
    *,
    deal_id: UUID,
    loss_reason: str,
    competitor: str | None = None,
    expected_version: int | None = None,
) -> CommandResult:
    deal = _deal(app, deal_id, expected_version)
    deal.lose(loss_reason=loss_reason, competitor=competitor, meta=meta)
    return app.commit(deal)


def reopen_deal(
    app: GamApplication, meta: EventMetadata, *, deal_id: UUID, expected_version: int | None = None
) -> CommandResult:
    deal = _deal(app, deal_id, expected_version)
    deal.reopen(meta=meta)
    return app.commit(deal)


def attach_buying_influence(
    app: GamApplication,
    meta: EventMetadata,
    *,
    deal_id: UUID,
    stakeholder_id: UUID,
    role: str,
    degree: str,
    note: str | None = None,
    expected_version: int | None = None,
) -> CommandResult:
    deal = _deal(app, deal_id, expected_version)
    person = app.load(Stakeholder, stakeholder_id)
    deal.attach_buying_influence(
        stakeholder_id=stakeholder_id,
        stakeholder_account_id=person.account_id,
        role=role,
        degree=degree,
        note=note,
        meta=meta,
    )
    return app.commit(deal)


def detach_buying_influence(
    app: GamApplication,
    meta: EventMetadata,
    *,
    deal_id: UUID,
    stakeholder_id: UUID,
    role: str,
    expected_version: int | None = None,
) -> CommandResult:
    deal = _deal(app, deal_id, expected_version)
    deal.detach_buying_influence(stakeholder_id=stakeholder_id, role=role, meta=meta)
    return app.commit(deal)


def assess_qualification(
    app: GamApplication,
    meta: EventMetadata,
    *,
    deal_id: UUID,
    element: str,
    status: str,
    evidence: str | None = None,
    expected_version: int | None = None,
) -> CommandResult:
    deal = _deal(app, deal_id, expected_version)
    deal.assess_qualification(element=element, status=status, evidence=evidence, meta=meta)
    return app.commit(deal)
