"""Commands on the stakeholder map: the people at the customer, their roles,
influence and sentiment, who they report to, who on our side owns them, and
every interaction with them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, ClassVar
from uuid import UUID, uuid4

from domain.commands.base import Command, Spec
from domain.personal_text import TextKind
from domain.values import BuyingRole, InteractionChannel, PersonalData


@dataclass(frozen=True, kw_only=True)
class IdentifyStakeholder(Command):
    """Put a person at the customer on the map."""

    entity_field: ClassVar[str] = "stakeholder_id"
    creates: ClassVar[bool] = True

    stakeholder_id: UUID = field(default_factory=uuid4)
    account_id: UUID
    unit_id: Annotated[UUID, Spec(description="The customer unit the person works at.")]
    title: Annotated[
        str, Spec(text=TextKind.CHECKED, min_length=1, max_length=300, examples=("Chief Procurement Officer",))
    ]
    personal: PersonalData


@dataclass(frozen=True, kw_only=True)
class ChangeStakeholderTitle(Command):
    """The person's job title changed."""

    entity_field: ClassVar[str] = "stakeholder_id"

    stakeholder_id: UUID
    title: Annotated[
        str, Spec(text=TextKind.CHECKED, min_length=1, max_length=300, examples=("Chief Operating Officer",))
    ]


@dataclass(frozen=True, kw_only=True)
class ChangeBuyingRole(Command):
    """The person's role in the customer's buying centre."""

    entity_field: ClassVar[str] = "stakeholder_id"

    stakeholder_id: UUID
    role: Annotated[BuyingRole, Spec(examples=("decision_maker",))]


@dataclass(frozen=True, kw_only=True)
class RateInfluence(Command):
    """Our estimate of the person's influence."""

    entity_field: ClassVar[str] = "stakeholder_id"

    stakeholder_id: UUID
    influence: Annotated[int, Spec(ge=1, le=5, description="1 low … 5 high", examples=(4,))]


@dataclass(frozen=True, kw_only=True)
class RateSentiment(Command):
    """Our reading of the person's sentiment towards us."""

    entity_field: ClassVar[str] = "stakeholder_id"

    stakeholder_id: UUID
    sentiment: Annotated[int, Spec(ge=-2, le=2, description="-2 hostile … +2 advocate", examples=(1,))]


@dataclass(frozen=True, kw_only=True)
class AssignRelationshipOwner(Command):
    """Who on our side owns the relationship."""

    entity_field: ClassVar[str] = "stakeholder_id"

    stakeholder_id: UUID
    owner: Annotated[
        str, Spec(text=TextKind.LABEL, min_length=1, max_length=300, examples=("anna.lind@vendor.example",))
    ]


@dataclass(frozen=True, kw_only=True)
class SetReportsTo(Command):
    """Who the person reports to (no cycles)."""

    entity_field: ClassVar[str] = "stakeholder_id"

    stakeholder_id: UUID
    manager_id: Annotated[
        UUID | None, Spec(description="A stakeholder of the same account; null: reports to nobody mapped.")
    ]


@dataclass(frozen=True, kw_only=True)
class LogInteraction(Command):
    """Record a meeting, call or mail with the person (the summary is personal data)."""

    entity_field: ClassVar[str] = "stakeholder_id"
    created: ClassVar[str | None] = "interaction_id"

    stakeholder_id: UUID
    interaction_id: UUID = field(default_factory=uuid4)
    occurred_at: Annotated[datetime, Spec(examples=("2027-02-03T10:00:00Z",))]
    channel: Annotated[InteractionChannel, Spec(examples=("meeting",))]
    summary: Annotated[
        str,
        Spec(
            text=TextKind.PERSONAL,
            min_length=1,
            max_length=10_000,
            examples=("Discussed the 2027 modernisation budget",),
        ),
    ]


@dataclass(frozen=True, kw_only=True)
class RecordDeparture(Command):
    """The person left the customer; their history stays on the map."""

    entity_field: ClassVar[str] = "stakeholder_id"

    stakeholder_id: UUID
    left_on: Annotated[date, Spec(examples=("2027-05-31",))]


@dataclass(frozen=True, kw_only=True)
class CorrectPersonalData(Command):
    """Correct the person's name, email or phone."""

    entity_field: ClassVar[str] = "stakeholder_id"

    stakeholder_id: UUID
    personal: PersonalData


@dataclass(frozen=True, kw_only=True)
class ErasePersonalData(Command):
    """Destroy the person's key and record who erased them, when, and on what legal basis."""

    entity_field: ClassVar[str] = "stakeholder_id"

    stakeholder_id: UUID
    legal_basis: Annotated[
        str, Spec(text=TextKind.CHECKED, min_length=1, max_length=2000, examples=("GDPR Art. 17 request #4711",))
    ]
