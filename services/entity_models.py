"""The public shape of each entity as stored: what ``GET /accounts|plans|
stakeholders|deals/{id}`` and the compliance as-of answer, declared once.

The models read the aggregates' attributes; the domain's value dataclasses (units,
objectives, directives, money, targets...) appear as they are. Maps keyed by more
than one id (the team, the cascade's directives, the whitespace grid, a deal's
buying influences) are lists of their values, so every key in the JSON is a plain
id or name, never a composite.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from domain.account import GlobalAccount, TeamAssignment, Unit
from domain.base import GamAggregate
from domain.deal import BuyingInfluence, Deal, Qualification
from domain.plan import AccountPlan, Action, BusinessReview, Directive, Objective, ProgressReport, SwotEntry
from domain.stakeholder import Interaction, Stakeholder
from domain.values import Money, PersonalData


def _values(mapping: Any) -> Any:
    return list(mapping.values()) if isinstance(mapping, dict) else mapping


def _cells(mapping: Any) -> Any:
    if isinstance(mapping, dict):
        return [
            {"offering": offering, "unit_id": unit, "status": status} for (offering, unit), status in mapping.items()
        ]
    return mapping


Listed = BeforeValidator(_values)


class WhitespaceCell(BaseModel):
    offering: str
    unit_id: UUID
    status: str


class EntityState(BaseModel):
    """What every stored entity has."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    version: int
    created_on: datetime
    modified_on: datetime


class AccountState(EntityState):
    name: str
    industry: str
    hq_country: str
    reporting_currency: str
    tier: str
    governance_model: str
    units: dict[UUID, Unit]
    team: Annotated[list[TeamAssignment], Listed]
    archived: bool


class PlanState(EntityState):
    account_id: UUID
    fiscal_period: str
    status: str
    baseline_version: int | None
    objectives: dict[UUID, Objective]
    directives: Annotated[list[Directive], Listed] = Field(description="Each cascade of an objective to a unit.")
    actions: dict[UUID, Action]
    progress: list[ProgressReport]
    swot: dict[UUID, SwotEntry]
    whitespace: Annotated[list[WhitespaceCell], BeforeValidator(_cells)]
    reviews: dict[UUID, BusinessReview]


class StakeholderState(EntityState):
    account_id: UUID
    unit_id: UUID
    title: str
    personal: PersonalData = Field(description="Reads ``[erased]`` after erasure.")
    buying_role: str | None
    influence: int | None
    sentiment: int | None
    relationship_owner: str | None
    reports_to: UUID | None
    interactions: list[Interaction]
    left_on: date | None
    erased: bool


class DealState(EntityState):
    account_id: UUID
    unit_id: UUID
    title: str
    amount: Money
    stage: str
    expected_close: date
    probability: int
    owner: str
    products: list[str]
    linked_objective_ids: list[UUID]
    status: str
    final_amount: Money | None
    loss_reason: str | None
    competitor: str | None
    influences: Annotated[list[BuyingInfluence], Listed]
    qualification: dict[str, Qualification]


STATES: dict[type[GamAggregate], type[EntityState]] = {
    GlobalAccount: AccountState,
    AccountPlan: PlanState,
    Stakeholder: StakeholderState,
    Deal: DealState,
}


def entity_state(aggregate: GamAggregate) -> EntityState:
    return STATES[type(aggregate)].model_validate(aggregate)


def entity_json(aggregate: GamAggregate) -> dict[str, Any]:
    """The entity's public state as JSON."""
    return entity_state(aggregate).model_dump(mode="json")
