"""Use cases on an account plan: objectives, the cascade and its answers,
actions, progress, SWOT, whitespace, business reviews and the plan's approval."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from domain.metadata import EventMetadata
from domain.plan import AccountPlan
from domain.values import Target
from services.app import CommandResult, GamApplication
from services.handlers.accounts import active_tree


def start_plan(app: GamApplication, meta: EventMetadata, *, account_id: UUID, fiscal_period: str) -> CommandResult:
    active_tree(app, account_id)
    plan = AccountPlan.start(account_id=account_id, fiscal_period=fiscal_period, meta=meta)
    return app.commit(plan)


def _plan(app: GamApplication, plan_id: UUID, expected_version: int | None) -> AccountPlan:
    return app.load(AccountPlan, plan_id, expected_version)


def set_objective(
    app: GamApplication,
    meta: EventMetadata,
    *,
    plan_id: UUID,
    objective_id: UUID,
    unit_id: UUID,
    title: str,
    description: str,
    target: Target,
    due_date: date,
    linked_objective_id: UUID | None = None,
    expected_version: int | None = None,
) -> CommandResult:
    plan = _plan(app, plan_id, expected_version)
    plan.set_objective(
        objective_id=objective_id,
        unit_id=unit_id,
        title=title,
        description=description,
        target=target,
        due_date=due_date,
        linked_objective_id=linked_objective_id,
        tree=active_tree(app, plan.account_id),
        meta=meta,
    )
    return app.commit(plan)


def cascade_objective(
    app: GamApplication,
    meta: EventMetadata,
    *,
    plan_id: UUID,
    objective_id: UUID,
    from_unit_id: UUID,
    to_unit_ids: tuple[UUID, ...],
    expected_version: int | None = None,
) -> CommandResult:
    plan = _plan(app, plan_id, expected_version)
    plan.cascade_objective(
        objective_id=objective_id,
        from_unit_id=from_unit_id,
        to_unit_ids=tuple(to_unit_ids),
        tree=active_tree(app, plan.account_id),
        meta=meta,
    )
    return app.commit(plan)


def respond_to_cascade(
    app: GamApplication,
    meta: EventMetadata,
    *,
    plan_id: UUID,
    objective_id: UUID,
    unit_id: UUID,
    answer: str,
    rationale: str | None = None,
    local_title: str | None = None,
    local_target: Target | None = None,
    expected_version: int | None = None,
) -> CommandResult:
    plan = _plan(app, plan_id, expected_version)
    active_tree(app, plan.account_id).require_open(unit_id)
    plan.respond_to_cascade(
        objective_id=objective_id,
        unit_id=unit_id,
        answer=answer,
        rationale=rationale,
        local_title=local_title,
        local_target=local_target,
        meta=meta,
    )
    return app.commit(plan)


def add_action(
    app: GamApplication,
    meta: EventMetadata,
    *,
    plan_id: UUID,
    action_id: UUID,
    objective_id: UUID,
    unit_id: UUID,
    title: str,
    owner: str,
    due_date: date,
    expected_version: int | None = None,
) -> CommandResult:
    plan = _plan(app, plan_id, expected_version)
    plan.add_action(
        action_id=action_id,
        objective_id=objective_id,
        unit_id=unit_id,
        title=title,
        owner=owner,
        due_date=due_date,
        tree=active_tree(app, plan.account_id),
        meta=meta,
    )
    return app.commit(plan)


def change_action_status(
    app: GamApplication,
    meta: EventMetadata,
    *,
    plan_id: UUID,
    action_id: UUID,
    status: str,
    expected_version: int | None = None,
) -> CommandResult:
    plan = _plan(app, plan_id, expected_version)
    active_tree(app, plan.account_id)
    plan.change_action_status(action_id=action_id, status=status, meta=meta)
    return app.commit(plan)


def report_progress(
    app: GamApplication,
    meta: EventMetadata,
    *,
    plan_id: UUID,
    objective_id: UUID,
    unit_id: UUID,
    percent: int,
    comment: str | None = None,
    expected_version: int | None = None,
) -> CommandResult:
    plan = _plan(app, plan_id, expected_version)
    active_tree(app, plan.account_id).require_open(unit_id)
    plan.report_progress(objective_id=objective_id, unit_id=unit_id, percent=percent, comment=comment, meta=meta)
    return app.commit(plan)


def add_swot_entry(
    app: GamApplication,
    meta: EventMetadata,
    *,
    plan_id: UUID,
    entry_id: UUID,
    kind: str,
    text: str,
    unit_id: UUID | None = None,
    expected_version: int | None = None,
) -> CommandResult:
    plan = _plan(app, plan_id, expected_version)
    plan.add_swot_entry(
        entry_id=entry_id, kind=kind, text=text, unit_id=unit_id, tree=active_tree(app, plan.account_id), meta=meta
    )
    return app.commit(plan)


def remove_swot_entry(
    app: GamApplication, meta: EventMetadata, *, plan_id: UUID, entry_id: UUID, expected_version: int | None = None
) -> CommandResult:
    plan = _plan(app, plan_id, expected_version)
    active_tree(app, plan.account_id)
    plan.remove_swot_entry(entry_id=entry_id, meta=meta)
    return app.commit(plan)


def set_whitespace_cell(
    app: GamApplication,
    meta: EventMetadata,
    *,
    plan_id: UUID,
    offering: str,
    unit_id: UUID,
    status: str,
    expected_version: int | None = None,
) -> CommandResult:
    plan = _plan(app, plan_id, expected_version)
    plan.set_whitespace_cell(
        offering=offering, unit_id=unit_id, status=status, tree=active_tree(app, plan.account_id), meta=meta
    )
    return app.commit(plan)


def hold_business_review(
    app: GamApplication,
    meta: EventMetadata,
    *,
    plan_id: UUID,
    review_id: UUID,
    held_on: date,
    participants: tuple[str, ...],
    decisions: tuple[str, ...] = (),
    follow_up_actions: tuple[str, ...] = (),
    expected_version: int | None = None,
) -> CommandResult:
    plan = _plan(app, plan_id, expected_version)
    active_tree(app, plan.account_id)
    plan.hold_business_review(
        review_id=review_id,
        held_on=held_on,
        participants=tuple(participants),
        decisions=tuple(decisions),
        follow_up_actions=tuple(follow_up_actions),
        meta=meta,
    )
    return app.commit(plan)


def submit_plan(
    app: GamApplication, meta: EventMetadata, *, plan_id: UUID, expected_version: int | None = None
) -> CommandResult:
    plan = _plan(app, plan_id, expected_version)
    active_tree(app, plan.account_id)
    plan.submit(meta=meta)
    return app.commit(plan)


def approve_plan(
    app: GamApplication, meta: EventMetadata, *, plan_id: UUID, expected_version: int | None = None
) -> CommandResult:
    plan = _plan(app, plan_id, expected_version)
    active_tree(app, plan.account_id)
    plan.approve(meta=meta)
    return app.commit(plan)


def reopen_plan(
    app: GamApplication, meta: EventMetadata, *, plan_id: UUID, expected_version: int | None = None
) -> CommandResult:
    plan = _plan(app, plan_id, expected_version)
    active_tree(app, plan.account_id)
    plan.reopen(meta=meta)
    return app.commit(plan)
