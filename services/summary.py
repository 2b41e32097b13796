"""A plain-data summary of one account, read straight from its aggregates.

This is what ``gam demo`` prints. Listing an account's stakeholders and deals in
general is the projections' job; here the caller names them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from domain.account import GlobalAccount
from domain.deal import Deal
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder
from domain.values import DealStatus, UnitLevel
from services.app import GamApplication


@dataclass(frozen=True)
class AccountSummary:
    name: str
    governance_model: str
    reporting_currency: str
    units_by_level: dict[str, int]
    unit_tree: list[tuple[int, str, str]]
    team_size: int
    plan_status: str
    objectives: int
    cascade_answers: dict[str, int]
    actions_by_status: dict[str, int]
    stakeholders_by_role: dict[str, int]
    stakeholders_left: int
    deals_by_status: dict[str, int]
    open_pipeline_by_currency: dict[str, Decimal]
    won_by_currency: dict[str, Decimal]
    events: int


def summarise_account(
    app: GamApplication, account_id: UUID, plan_id: UUID, stakeholder_ids: list[UUID], deal_ids: list[UUID]
) -> AccountSummary:
    account = app.load(GlobalAccount, account_id)
    plan = app.load(AccountPlan, plan_id)
    people = [app.load(Stakeholder, s) for s in stakeholder_ids]
    deals = [app.load(Deal, d) for d in deal_ids]
    open_pipeline: dict[str, Decimal] = defaultdict(Decimal)
    won: dict[str, Decimal] = defaultdict(Decimal)
    for deal in deals:
        if deal.status == DealStatus.OPEN:
            open_pipeline[deal.amount.currency] += deal.amount.amount
        elif deal.status == DealStatus.WON and deal.final_amount is not None:
            won[deal.final_amount.currency] += deal.final_amount.amount
    return AccountSummary(
        name=account.name,
        governance_model=account.governance_model,
        reporting_currency=account.reporting_currency,
        units_by_level=dict(Counter(u.level for u in account.units.values())),
        unit_tree=_tree_lines(account),
        team_size=len({a.member for a in account.team.values()}),
        plan_status=f"{plan.fiscal_period} {plan.status} (baseline v{plan.baseline_version})",
        objectives=len(plan.objectives),
        cascade_answers=dict(Counter(d.answer or "awaiting" for d in plan.directives.values())),
        actions_by_status=dict(Counter(a.status for a in plan.actions.values())),
        stakeholders_by_role=dict(Counter(p.buying_role or "unknown" for p in people)),
        stakeholders_left=sum(1 for p in people if p.left_on is not None),
        deals_by_status=dict(Counter(d.status for d in deals)),
        open_pipeline_by_currency=dict(sorted(open_pipeline.items())),
        won_by_currency=dict(sorted(won.items())),
        events=account.version + plan.version + sum(p.version for p in people) + sum(d.version for d in deals),
    )


def _tree_lines(account: GlobalAccount) -> list[tuple[int, str, str]]:
    """(depth, name, code) in depth-first order, for an indented tree."""
    children: dict[UUID | None, list[UUID]] = defaultdict(list)
    for unit in account.units.values():
        children[unit.parent_id].append(unit.unit_id)
    lines: list[tuple[int, str, str]] = []

    def walk(unit_id: UUID) -> None:
        unit = account.units[unit_id]
        lines.append((UnitLevel(unit.level).depth, unit.name, unit.code))
        for child in children[unit_id]:
            walk(child)

    for root in children[None]:
        walk(root)
    return lines
