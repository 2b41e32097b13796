"""Use cases on a global account and its unit tree."""

from __future__ import annotations

from uuid import UUID

from domain.account import GlobalAccount, UnitTree
from domain.errors import AccountArchived
from domain.metadata import EventMetadata
from domain.plan import AccountPlan
from services.app import CommandResult, GamApplication


def active_tree(app: GamApplication, account_id: UUID) -> UnitTree:
    """The unit tree of an account that is not archived (for other aggregates' rules)."""
    account = app.load(GlobalAccount, account_id)
    if account.archived:
        raise AccountArchived(f"account {account.name} ({account_id}) is archived")
    return account.tree()


def create_account(
    app: GamApplication,
    meta: EventMetadata,
    *,
    account_id: UUID,
    hq_unit_id: UUID,
    name: str,
    industry: str,
    hq_country: str,
    reporting_currency: str,
    tier: str,
    governance_model: str,
    hq_unit_name: str = "Headquarters",
) -> CommandResult:
    account = GlobalAccount.create(
        account_id=account_id,
        hq_unit_id=hq_unit_id,
        name=name,
        industry=industry,
        hq_country=hq_country,
        reporting_currency=reporting_currency,
        tier=tier,
        governance_model=governance_model,
        hq_unit_name=hq_unit_name,
        meta=meta,
    )
    return app.commit(account)


def onboard_account(
    app: GamApplication,
    meta: EventMetadata,
    *,
    account_id: UUID,
    hq_unit_id: UUID,
    name: str,
    industry: str,
    hq_country: str,
    reporting_currency: str,
    tier: str,
    governance_model: str,
    fiscal_period: str,
) -> CommandResult:
    """Take on a global account and start its first plan, atomically: either both
    exist afterwards or neither does."""
    account = GlobalAccount.create(
        account_id=account_id,
        hq_unit_id=hq_unit_id,
        name=name,
        industry=industry,
        hq_country=hq_country,
        reporting_currency=reporting_currency,
        tier=tier,
        governance_model=governance_model,
        meta=meta,
    )
    plan = AccountPlan.start(account_id=account_id, fiscal_period=fiscal_period, meta=meta)
    return app.commit(account, plan)


def add_unit(
    app: GamApplication,
    meta: EventMetadata,
    *,
    account_id: UUID,
    unit_id: UUID,
    name: str,
    level: str,
    parent_id: UUID,
    code: str,
    expected_version: int | None = None,
) -> CommandResult:
    account = app.load(GlobalAccount, account_id, expected_version)
    account.add_unit(unit_id=unit_id, name=name, level=level, parent_id=parent_id, code=code, meta=meta)
    return app.commit(account)


def rename_unit(
    app: GamApplication,
    meta: EventMetadata,
    *,
    account_id: UUID,
    unit_id: UUID,
    name: str,
    expected_version: int | None = None,
) -> CommandResult:
    account = app.load(GlobalAccount, account_id, expected_version)
    account.rename_unit(unit_id=unit_id, name=name, meta=meta)
    return app.commit(account)


def close_unit(
    app: GamApplication,
    meta: EventMetadata,
    *,
    account_id: UUID,
    unit_id: UUID,
    expected_version: int | None = None,
) -> CommandResult:
    account = app.load(GlobalAccount, account_id, expected_version)
    account.close_unit(unit_id=unit_id, meta=meta)
    return app.commit(account)


def assign_team_member(
    app: GamApplication,
    meta: EventMetadata,
    *,
    account_id: UUID,
    member: str,
    unit_id: UUID,
    role: str,
    expected_version: int | None = None,
) -> CommandResult:
    account = app.load(GlobalAccount, account_id, expected_version)
    account.assign_team_member(member=member, unit_id=unit_id, role=role, meta=meta)
    return app.commit(account)


def remove_team_member(
    app: GamApplication,
    meta: EventMetadata,
    *,
    account_id: UUID,
    member: str,
    unit_id: UUID,
    role: str,
    expected_version: int | None = None,
) -> CommandResult:
    account = app.load(GlobalAccount, account_id, expected_version)
    account.remove_team_member(member=member, unit_id=unit_id, role=role, meta=meta)
    return app.commit(account)


def archive_account(
    app: GamApplication, meta: EventMetadata, *, account_id: UUID, expected_version: int | None = None
) -> CommandResult:
    account = app.load(GlobalAccount, account_id, expected_version)
    account.archive(meta=meta)
    return app.commit(account)
