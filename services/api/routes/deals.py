"""Commands on the deal pipeline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from uuid import UUID, uuid4

from fastapi import APIRouter, Response
from pydantic import Field

from domain.deal import Deal
from domain.values import BuyingInfluenceRole, DealStage, InfluenceDegree, MeddpiccElement, QualificationStatus
from services import handlers as h
from services.api.access import Scope, on_account
from services.api.commands import CHANGE_RESPONSES, CREATE_RESPONSES, CommandAccepted, CommandBody, Gate
from services.api.values import MoneyIn
from services.app import GamApplication

router = APIRouter(prefix="/deals", tags=["deals"])


def deal_scope(app: GamApplication, deal_id: UUID) -> Callable[[], Scope]:
    def scope() -> Scope:
        deal = app.load(Deal, deal_id)
        return Scope(deal.account_id, deal.unit_id)

    return scope


class OpenDeal(CommandBody):
    deal_id: UUID = Field(default_factory=uuid4, description="Chosen by the client or the server.")
    account_id: UUID
    unit_id: UUID = Field(description="The customer unit that buys.")
    title: str = Field(min_length=1, max_length=300, examples=["Predictive maintenance roll-out, Nordics"])
    amount: MoneyIn
    expected_close: date = Field(examples=["2027-06-30"])
    owner: str = Field(min_length=1, max_length=300, examples=["sven.berg@vendor.example"])
    stage: DealStage = DealStage.PROSPECTING
    probability: int | None = Field(default=None, ge=0, le=100)
    products: list[str] = Field(default_factory=list, max_length=50, examples=[["Sensors", "Analytics"]])
    plan_id: UUID | None = None
    linked_objective_ids: list[UUID] = Field(default_factory=list, max_length=50)


@router.post("", status_code=201, response_model=CommandAccepted, responses=CREATE_RESPONSES)
def open_deal(body: OpenDeal, gate: Gate) -> Response:
    """Open a deal at a unit of the account, optionally supporting plan objectives."""
    return gate.create(
        body,
        scope=lambda: on_account(gate.app, body.account_id, body.unit_id),
        run=lambda meta: h.open_deal(
            gate.app,
            meta,
            deal_id=body.deal_id,
            account_id=body.account_id,
            unit_id=body.unit_id,
            title=body.title,
            amount=body.amount.to_domain(),
            expected_close=body.expected_close,
            owner=body.owner,
            stage=body.stage.value,
            probability=body.probability,
            products=tuple(body.products),
            plan_id=body.plan_id,
            linked_objective_ids=tuple(body.linked_objective_ids),
        ),
        location=f"/deals/{body.deal_id}",
    )


class MoveStage(CommandBody):
    to_stage: DealStage = Field(examples=["proposal"])


@router.post("/{deal_id}/stage", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def move_stage(deal_id: UUID, body: MoveStage, gate: Gate) -> Response:
    """Move the deal to another open stage (forward, or back with a reason)."""
    return gate.change(
        body,
        scope=deal_scope(gate.app, deal_id),
        run=lambda meta, v: h.move_deal_stage(
            gate.app, meta, deal_id=deal_id, to_stage=body.to_stage.value, expected_version=v
        ),
    )


class ChangeAmount(CommandBody):
    amount: MoneyIn


@router.post("/{deal_id}/amount", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def change_amount(deal_id: UUID, body: ChangeAmount, gate: Gate) -> Response:
    """Change the deal's value (in the deal's currency)."""
    return gate.change(
        body,
        scope=deal_scope(gate.app, deal_id),
        run=lambda meta, v: h.change_deal_amount(
            gate.app, meta, deal_id=deal_id, amount=body.amount.to_domain(), expected_version=v
        ),
    )


class ChangeCloseDate(CommandBody):
    expected_close: date = Field(examples=["2027-09-30"])


@router.post("/{deal_id}/close-date", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def change_close_date(deal_id: UUID, body: ChangeCloseDate, gate: Gate) -> Response:
    """Move the expected close date."""
    return gate.change(
        body,
        scope=deal_scope(gate.app, deal_id),
        run=lambda meta, v: h.change_deal_close_date(
            gate.app, meta, deal_id=deal_id, expected_close=body.expected_close, expected_version=v
        ),
    )


class ChangeProbability(CommandBody):
    probability: int = Field(ge=0, le=100, examples=[60])


@router.post("/{deal_id}/probability", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def change_probability(deal_id: UUID, body: ChangeProbability, gate: Gate) -> Response:
    """Override the stage's default win probability."""
    return gate.change(
        body,
        scope=deal_scope(gate.app, deal_id),
        run=lambda meta, v: h.change_deal_probability(
            gate.app, meta, deal_id=deal_id, probability=body.probability, expected_version=v
        ),
    )


class AssessQualification(CommandBody):
    element: MeddpiccElement = Field(examples=["economic_buyer"], description="A MEDDPICC element.")
    status: QualificationStatus = Field(examples=["confirmed"])
    evidence: str | None = Field(default=None, max_length=10_000, examples=["CFO signed off the budget line"])


@router.post("/{deal_id}/qualification", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def assess_qualification(deal_id: UUID, body: AssessQualification, gate: Gate) -> Response:
    """Assess one qualification element of the deal, with evidence."""
    return gate.change(
        body,
        scope=deal_scope(gate.app, deal_id),
        run=lambda meta, v: h.assess_qualification(
            gate.app,
            meta,
            deal_id=deal_id,
            element=body.element.value,
            status=body.status.value,
            evidence=body.evidence,
            expected_version=v,
        ),
    )


class AttachInfluence(CommandBody):
    stakeholder_id: UUID
    role: BuyingInfluenceRole = Field(examples=["economic_buyer"])
    degree: InfluenceDegree = Field(examples=["high"])
    note: str | None = Field(default=None, max_length=10_000)


@router.post("/{deal_id}/buying-influences", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def attach_buying_influence(deal_id: UUID, body: AttachInfluence, gate: Gate) -> Response:
    """Name a stakeholder of the same account as a buying influence on this deal."""
    return gate.change(
        body,
        scope=deal_scope(gate.app, deal_id),
        run=lambda meta, v: h.attach_buying_influence(
            gate.app,
            meta,
            deal_id=deal_id,
            stakeholder_id=body.stakeholder_id,
            role=body.role.value,
            degree=body.degree.value,
            note=body.note,
            expected_version=v,
        ),
    )


class DetachInfluence(CommandBody):
    stakeholder_id: UUID
    role: BuyingInfluenceRole


@router.post("/{deal_id}/buying-influences/remove", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def detach_buying_influence(deal_id: UUID, body: DetachInfluence, gate: Gate) -> Response:
    """Take a stakeholder's buying influence off the deal."""
    return gate.change(
        body,
        scope=deal_scope(gate.app, deal_id),
        run=lambda meta, v: h.detach_buying_influence(
            gate.app,
            meta,
            deal_id=deal_id,
            stakeholder_id=body.stakeholder_id,
            role=body.role.value,
            expected_version=v,
        ),
    )


class WinDeal(CommandBody):
    final_amount: MoneyIn


@router.post("/{deal_id}/win", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def win_deal(deal_id: UUID, body: WinDeal, gate: Gate) -> Response:
    """Close the deal as won at its final amount."""
    return gate.change(
        body,
        scope=deal_scope(gate.app, deal_id),
        run=lambda meta, v: h.win_deal(
            gate.app, meta, deal_id=deal_id, final_amount=body.final_amount.to_domain(), expected_version=v
        ),
    )


class LoseDeal(CommandBody):
    loss_reason: str = Field(min_length=1, max_length=10_000, examples=["Price: competitor 18% cheaper"])
    competitor: str | None = Field(default=None, max_length=300, examples=["Acme Automation"])


@router.post("/{deal_id}/lose", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def lose_deal(deal_id: UUID, body: LoseDeal, gate: Gate) -> Response:
    """Close the deal as lost, with the reason (and the competitor, if any)."""
    return gate.change(
        body,
        scope=deal_scope(gate.app, deal_id),
        run=lambda meta, v: h.lose_deal(
            gate.app,
            meta,
            deal_id=deal_id,
            loss_reason=body.loss_reason,
            competitor=body.competitor,
            expected_version=v,
        ),
    )


@router.post("/{deal_id}/reopen", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def reopen_deal(deal_id: UUID, body: CommandBody, gate: Gate) -> Response:
    """Reopen a closed deal (say why in ``reason``)."""
    return gate.change(
        body,
        scope=deal_scope(gate.app, deal_id),
        run=lambda meta, v: h.reopen_deal(gate.app, meta, deal_id=deal_id, expected_version=v),
    )
