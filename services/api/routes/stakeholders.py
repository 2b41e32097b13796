"""Commands on the stakeholder map: the people at the customer, their roles,
influence and sentiment, who they report to, who on our side owns them, and
every interaction with them. Personal data (name, email, phone) is encrypted
per person; erasure is the compliance router's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from uuid import UUID, uuid4

from fastapi import APIRouter, Response
from pydantic import Field

from domain.stakeholder import Stakeholder
from domain.values import BuyingRole, InteractionChannel
from services import handlers as h
from services.api.access import Scope, on_account
from services.api.commands import CHANGE_RESPONSES, CREATE_RESPONSES, CommandAccepted, CommandBody, Gate
from services.api.values import Moment, PersonalDataIn
from services.app import GamApplication

router = APIRouter(prefix="/stakeholders", tags=["stakeholders"])


def stakeholder_scope(app: GamApplication, stakeholder_id: UUID) -> Callable[[], Scope]:
    def scope() -> Scope:
        person = app.load(Stakeholder, stakeholder_id)
        return Scope(person.account_id, person.unit_id)

    return scope


class IdentifyStakeholder(CommandBody):
    stakeholder_id: UUID = Field(default_factory=uuid4)
    account_id: UUID
    unit_id: UUID = Field(description="The customer unit the person works at.")
    title: str = Field(min_length=1, max_length=300, examples=["Chief Procurement Officer"])
    personal: PersonalDataIn


@router.post("", status_code=201, response_model=CommandAccepted, responses=CREATE_RESPONSES)
def identify_stakeholder(body: IdentifyStakeholder, gate: Gate) -> Response:
    """Put a person at the customer on the map."""
    return gate.create(
        body,
        scope=lambda: on_account(gate.app, body.account_id, body.unit_id),
        run=lambda meta: h.identify_stakeholder(
            gate.app,
            meta,
            stakeholder_id=body.stakeholder_id,
            account_id=body.account_id,
            unit_id=body.unit_id,
            title=body.title,
            personal=body.personal.to_domain(),
        ),
        location=f"/stakeholders/{body.stakeholder_id}",
    )


class ChangeTitle(CommandBody):
    title: str = Field(min_length=1, max_length=300, examples=["Chief Operating Officer"])


@router.post("/{stakeholder_id}/title", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def change_title(stakeholder_id: UUID, body: ChangeTitle, gate: Gate) -> Response:
    """The person's job title changed."""
    return gate.change(
        body,
        scope=stakeholder_scope(gate.app, stakeholder_id),
        run=lambda meta, v: h.change_stakeholder_title(
            gate.app, meta, stakeholder_id=stakeholder_id, title=body.title, expected_version=v
        ),
    )


class ChangeBuyingRole(CommandBody):
    role: BuyingRole = Field(examples=["decision_maker"])


@router.post("/{stakeholder_id}/buying-role", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def change_buying_role(stakeholder_id: UUID, body: ChangeBuyingRole, gate: Gate) -> Response:
    """The person's role in the customer's buying centre."""
    return gate.change(
        body,
        scope=stakeholder_scope(gate.app, stakeholder_id),
        run=lambda meta, v: h.change_buying_role(
            gate.app, meta, stakeholder_id=stakeholder_id, role=body.role.value, expected_version=v
        ),
    )


class RateInfluence(CommandBody):
    influence: int = Field(ge=1, le=5, description="1 low … 5 high", examples=[4])


@router.post("/{stakeholder_id}/influence", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def rate_influence(stakeholder_id: UUID, body: RateInfluence, gate: Gate) -> Response:
    """Our estimate of the person's influence."""
    return gate.change(
        body,
        scope=stakeholder_scope(gate.app, stakeholder_id),
        run=lambda meta, v: h.rate_influence(
            gate.app, meta, stakeholder_id=stakeholder_id, influence=body.influence, expected_version=v
        ),
    )


class RateSentiment(CommandBody):
    sentiment: int = Field(ge=-2, le=2, description="-2 hostile … +2 advocate", examples=[1])


@router.post("/{stakeholder_id}/sentiment", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def rate_sentiment(stakeholder_id: UUID, body: RateSentiment, gate: Gate) -> Response:
    """Our reading of the person's sentiment towards us."""
    return gate.change(
        body,
        scope=stakeholder_scope(gate.app, stakeholder_id),
        run=lambda meta, v: h.rate_sentiment(
            gate.app, meta, stakeholder_id=stakeholder_id, sentiment=body.sentiment, expected_version=v
        ),
    )


class AssignOwner(CommandBody):
    owner: str = Field(min_length=1, max_length=300, examples=["anna.lind@vendor.example"])


@router.post("/{stakeholder_id}/owner", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def assign_owner(stakeholder_id: UUID, body: AssignOwner, gate: Gate) -> Response:
    """Who on our side owns the relationship."""
    return gate.change(
        body,
        scope=stakeholder_scope(gate.app, stakeholder_id),
        run=lambda meta, v: h.assign_relationship_owner(
            gate.app, meta, stakeholder_id=stakeholder_id, owner=body.owner, expected_version=v
        ),
    )


class SetReportsTo(CommandBody):
    manager_id: UUID | None = Field(description="A stakeholder of the same account; null: reports to nobody mapped.")


@router.post("/{stakeholder_id}/reports-to", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def set_reports_to(stakeholder_id: UUID, body: SetReportsTo, gate: Gate) -> Response:
    """Who the person reports to (no cycles)."""
    return gate.change(
        body,
        scope=stakeholder_scope(gate.app, stakeholder_id),
        run=lambda meta, v: h.set_reports_to(
            gate.app, meta, stakeholder_id=stakeholder_id, manager_id=body.manager_id, expected_version=v
        ),
    )


class LogInteraction(CommandBody):
    interaction_id: UUID = Field(default_factory=uuid4)
    occurred_at: Moment = Field(examples=["2027-02-03T10:00:00Z"])
    channel: InteractionChannel = Field(examples=["meeting"])
    summary: str = Field(min_length=1, max_length=10_000, examples=["Discussed the 2027 modernisation budget"])


@router.post("/{stakeholder_id}/interactions", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def log_interaction(stakeholder_id: UUID, body: LogInteraction, gate: Gate) -> Response:
    """Record a meeting, call or mail with the person (the summary is personal data)."""
    occurred_at: datetime = body.occurred_at
    return gate.change(
        body,
        scope=stakeholder_scope(gate.app, stakeholder_id),
        run=lambda meta, v: h.log_interaction(
            gate.app,
            meta,
            stakeholder_id=stakeholder_id,
            interaction_id=body.interaction_id,
            occurred_at=occurred_at,
            channel=body.channel.value,
            summary=body.summary,
            expected_version=v,
        ),
        created_id=body.interaction_id,
    )


class RecordDeparture(CommandBody):
    left_on: date = Field(examples=["2027-05-31"])


@router.post("/{stakeholder_id}/departure", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def record_departure(stakeholder_id: UUID, body: RecordDeparture, gate: Gate) -> Response:
    """The person left the customer; their history stays on the map."""
    return gate.change(
        body,
        scope=stakeholder_scope(gate.app, stakeholder_id),
        run=lambda meta, v: h.record_departure(
            gate.app, meta, stakeholder_id=stakeholder_id, left_on=body.left_on, expected_version=v
        ),
    )


class CorrectPersonalData(CommandBody):
    personal: PersonalDataIn


@router.post("/{stakeholder_id}/personal-data", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def correct_personal_data(stakeholder_id: UUID, body: CorrectPersonalData, gate: Gate) -> Response:
    """Correct the person's name, email or phone."""
    return gate.change(
        body,
        scope=stakeholder_scope(gate.app, stakeholder_id),
        run=lambda meta, v: h.correct_personal_data(
            gate.app, meta, stakeholder_id=stakeholder_id, personal=body.personal.to_domain(), expected_version=v
        ),
    )
