"""Commands on the global account: taking it on, its unit tree and our team."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

from fastapi import APIRouter, Response
from pydantic import Field

from domain.plan import plan_id_for
from domain.values import AccountTier, GovernanceModel, TeamRole, UnitLevel
from services import handlers as h
from services.api.access import Scope, on_account
from services.api.commands import CHANGE_RESPONSES, CREATE_RESPONSES, CommandAccepted, CommandBody, Gate
from services.app import GamApplication

router = APIRouter(prefix="/accounts", tags=["accounts"])


def account_scope(app: GamApplication, account_id: UUID, unit_id: UUID | None = None) -> Callable[[], Scope]:
    return lambda: on_account(app, account_id, unit_id)


class CreateAccount(CommandBody):
    account_id: UUID = Field(default_factory=uuid4, description="Chosen by the client or the server.")
    hq_unit_id: UUID = Field(default_factory=uuid4)
    name: str = Field(min_length=1, max_length=300, examples=["Nordwind Industrial Group"])
    industry: str = Field(min_length=1, max_length=300, examples=["Industrial machinery"])
    hq_country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2", examples=["SE"])
    reporting_currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217", examples=["EUR"])
    tier: AccountTier = AccountTier.TIER_1
    governance_model: GovernanceModel = GovernanceModel.COORDINATED
    hq_unit_name: str = Field(default="Headquarters", min_length=1, max_length=300)


@router.post("", status_code=201, response_model=CommandAccepted, responses=CREATE_RESPONSES)
def create_account(body: CreateAccount, gate: Gate) -> Response:
    """Take on a global account, with its HQ as the root of the unit tree."""
    return gate.create(
        body,
        scope=lambda: Scope(body.account_id),
        run=lambda meta: h.create_account(
            gate.app,
            meta,
            account_id=body.account_id,
            hq_unit_id=body.hq_unit_id,
            name=body.name,
            industry=body.industry,
            hq_country=body.hq_country,
            reporting_currency=body.reporting_currency,
            tier=body.tier.value,
            governance_model=body.governance_model.value,
            hq_unit_name=body.hq_unit_name,
        ),
        location=f"/accounts/{body.account_id}",
        created_id=body.hq_unit_id,
    )


class OnboardAccount(CreateAccount):
    fiscal_period: str = Field(
        min_length=1, max_length=10, examples=["FY2027"], description="FY2027, FY2027-H1 or FY2027-Q3"
    )


@router.post("/onboarding", status_code=201, response_model=CommandAccepted, responses=CREATE_RESPONSES)
def onboard_account(body: OnboardAccount, gate: Gate) -> Response:
    """Take on a global account and start its first plan, atomically (``created_id`` is the plan)."""
    plan_id = plan_id_for(body.account_id, body.fiscal_period.strip())
    return gate.create(
        body,
        scope=lambda: Scope(body.account_id),
        run=lambda meta: h.onboard_account(
            gate.app,
            meta,
            account_id=body.account_id,
            hq_unit_id=body.hq_unit_id,
            name=body.name,
            industry=body.industry,
            hq_country=body.hq_country,
            reporting_currency=body.reporting_currency,
            tier=body.tier.value,
            governance_model=body.governance_model.value,
            fiscal_period=body.fiscal_period,
        ),
        location=f"/accounts/{body.account_id}",
        created_id=plan_id,
    )


class AddUnit(CommandBody):
    unit_id: UUID = Field(default_factory=uuid4)
    parent_id: UUID = Field(description="The unit one level up.")
    name: str = Field(min_length=1, max_length=300, examples=["Nordics"])
    level: UnitLevel = Field(examples=["region"])
    code: str = Field(min_length=1, max_length=20, description="Region code or ISO country code", examples=["NORD"])


@router.post("/{account_id}/units", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def add_unit(account_id: UUID, body: AddUnit, gate: Gate) -> Response:
    """Add a unit below an open unit (``created_id`` is the new unit)."""
    return gate.change(
        body,
        scope=account_scope(gate.app, account_id, body.parent_id),
        run=lambda meta, v: h.add_unit(
            gate.app,
            meta,
            account_id=account_id,
            unit_id=body.unit_id,
            name=body.name,
            level=body.level.value,
            parent_id=body.parent_id,
            code=body.code,
            expected_version=v,
        ),
        created_id=body.unit_id,
    )


class RenameUnit(CommandBody):
    name: str = Field(min_length=1, max_length=300, examples=["Nordics & Baltics"])


@router.post("/{account_id}/units/{unit_id}/rename", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def rename_unit(account_id: UUID, unit_id: UUID, body: RenameUnit, gate: Gate) -> Response:
    """Rename a unit."""
    return gate.change(
        body,
        scope=account_scope(gate.app, account_id, unit_id),
        run=lambda meta, v: h.rename_unit(
            gate.app, meta, account_id=account_id, unit_id=unit_id, name=body.name, expected_version=v
        ),
    )


@router.post("/{account_id}/units/{unit_id}/close", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def close_unit(account_id: UUID, unit_id: UUID, body: CommandBody, gate: Gate) -> Response:
    """Close a unit with no open units below it; its history stays."""
    return gate.change(
        body,
        scope=account_scope(gate.app, account_id, unit_id),
        run=lambda meta, v: h.close_unit(gate.app, meta, account_id=account_id, unit_id=unit_id, expected_version=v),
    )


class TeamMember(CommandBody):
    member: str = Field(min_length=1, max_length=300, examples=["sven.berg@vendor.example"])
    unit_id: UUID
    role: TeamRole = Field(examples=["regional_am"])


@router.post("/{account_id}/team", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def assign_team_member(account_id: UUID, body: TeamMember, gate: Gate) -> Response:
    """Put one of our people on a unit of the account, in a role."""
    return gate.change(
        body,
        scope=account_scope(gate.app, account_id, body.unit_id),
        run=lambda meta, v: h.assign_team_member(
            gate.app,
            meta,
            account_id=account_id,
            member=body.member,
            unit_id=body.unit_id,
            role=body.role.value,
            expected_version=v,
        ),
    )


@router.post("/{account_id}/team/remove", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def remove_team_member(account_id: UUID, body: TeamMember, gate: Gate) -> Response:
    """Take one of our people off a unit."""
    return gate.change(
        body,
        scope=account_scope(gate.app, account_id, body.unit_id),
        run=lambda meta, v: h.remove_team_member(
            gate.app,
            meta,
            account_id=account_id,
            member=body.member,
            unit_id=body.unit_id,
            role=body.role.value,
            expected_version=v,
        ),
    )


@router.post("/{account_id}/archive", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def archive_account(account_id: UUID, body: CommandBody, gate: Gate) -> Response:
    """Archive the account: read-only from now on, its history kept."""
    return gate.change(
        body,
        scope=account_scope(gate.app, account_id),
        run=lambda meta, v: h.archive_account(gate.app, meta, account_id=account_id, expected_version=v),
    )
