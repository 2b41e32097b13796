"""Commands on the deal pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, ClassVar
from uuid import UUID, uuid4

from domain.commands.base import Command, Spec
from domain.personal_text import TextKind
from domain.values import (
    PERSON_ELEMENTS,
    BuyingInfluenceRole,
    DealStage,
    InfluenceDegree,
    MeddpiccElement,
    Money,
    QualificationStatus,
)


@dataclass(frozen=True, kw_only=True)
class OpenDeal(Command):
    """Open a deal at a unit of the account, optionally supporting plan objectives."""

    entity_field: ClassVar[str] = "deal_id"
    creates: ClassVar[bool] = True

    deal_id: Annotated[UUID, Spec(description="Chosen by the client or the server.")] = field(default_factory=uuid4)
    account_id: UUID
    unit_id: Annotated[UUID, Spec(description="The customer unit that buys.")]
    title: Annotated[
        str,
        Spec(
            text=TextKind.CHECKED, min_length=1, max_length=300, examples=("Predictive maintenance roll-out, Nordics",)
        ),
    ]
    amount: Money
    expected_close: Annotated[
        date,
        Spec(
            examples=("2027-06-30",),
            description="Not before the day (UTC) the deal is opened; an imported history opens it at its own date.",
        ),
    ]
    owner: Annotated[
        str, Spec(text=TextKind.LABEL, min_length=1, max_length=300, examples=("sven.berg@vendor.example",))
    ]
    stage: DealStage = DealStage.PROSPECTING
    probability: Annotated[int | None, Spec(ge=0, le=100)] = None
    products: Annotated[
        tuple[str, ...], Spec(text=TextKind.LABEL, max_length=50, examples=(("Sensors", "Analytics"),))
    ] = ()
    plan_id: UUID | None = None
    linked_objective_ids: Annotated[tuple[UUID, ...], Spec(max_length=50)] = ()


@dataclass(frozen=True, kw_only=True)
class MoveDealStage(Command):
    """Move the deal to another open stage: forward one stage, or back to any earlier
    stage with the reason in ``reason`` (refused without one)."""

    entity_field: ClassVar[str] = "deal_id"

    deal_id: UUID
    to_stage: Annotated[DealStage, Spec(examples=("proposal",))]


@dataclass(frozen=True, kw_only=True)
class ChangeDealAmount(Command):
    """Change the deal's value (in the deal's currency)."""

    entity_field: ClassVar[str] = "deal_id"

    deal_id: UUID
    amount: Money


@dataclass(frozen=True, kw_only=True)
class ChangeDealCloseDate(Command):
    """Move the expected close date."""

    entity_field: ClassVar[str] = "deal_id"

    deal_id: UUID
    expected_close: Annotated[date, Spec(examples=("2027-09-30",))]


@dataclass(frozen=True, kw_only=True)
class ChangeDealProbability(Command):
    """Override the stage's default win probability."""

    entity_field: ClassVar[str] = "deal_id"

    deal_id: UUID
    probability: Annotated[int, Spec(ge=0, le=100, examples=(60,))]


@dataclass(frozen=True, kw_only=True)
class AssessQualification(Command):
    """Assess one qualification element of the deal, with evidence."""

    entity_field: ClassVar[str] = "deal_id"

    deal_id: UUID
    element: Annotated[MeddpiccElement, Spec(examples=("economic_buyer",), description="A MEDDPICC element.")]
    status: Annotated[QualificationStatus, Spec(examples=("confirmed",))]
    evidence: Annotated[
        str | None,
        Spec(
            text=TextKind.CHECKED,
            max_length=10_000,
            examples=("CFO signed off the budget line",),
            description="About the economic buyer or the champion and naming the stakeholder in "
            "`stakeholder_id`, personal (sealed under their key, erased with them; it may name them); "
            "otherwise business text, refused if it holds personal data.",
        ),
    ] = None
    stakeholder_id: Annotated[
        UUID | None,
        Spec(description="For the economic buyer or the champion: the stakeholder the evidence is about."),
    ] = None

    def text_kind(self, field: str) -> TextKind | None:
        """Evidence on the economic buyer or the champion that names the stakeholder is theirs,
        sealed under their key; without one it is stored in clear, so it is checked."""
        if field == "evidence" and self.element in PERSON_ELEMENTS and self.stakeholder_id is not None:
            return TextKind.PERSONAL  # a str or the member: both hash alike
        return super().text_kind(field)


@dataclass(frozen=True, kw_only=True)
class AttachBuyingInfluence(Command):
    """Name a stakeholder of the same account as a buying influence on this deal."""

    entity_field: ClassVar[str] = "deal_id"

    deal_id: UUID
    stakeholder_id: UUID
    role: Annotated[BuyingInfluenceRole, Spec(examples=("economic_buyer",))]
    degree: Annotated[InfluenceDegree, Spec(examples=("high",))]
    note: Annotated[str | None, Spec(text=TextKind.PERSONAL, max_length=10_000)] = None


@dataclass(frozen=True, kw_only=True)
class DetachBuyingInfluence(Command):
    """Take a stakeholder's buying influence off the deal."""

    entity_field: ClassVar[str] = "deal_id"

    deal_id: UUID
    stakeholder_id: UUID
    role: BuyingInfluenceRole


@dataclass(frozen=True, kw_only=True)
class WinDeal(Command):
    """Close the deal as won at its final amount."""

    entity_field: ClassVar[str] = "deal_id"

    deal_id: UUID
    final_amount: Money


@dataclass(frozen=True, kw_only=True)
class LoseDeal(Command):
    """Close the deal as lost, with the reason (and the competitor, if any)."""

    entity_field: ClassVar[str] = "deal_id"

    deal_id: UUID
    loss_reason: Annotated[
        str, Spec(text=TextKind.CHECKED, min_length=1, max_length=10_000, examples=("Price: competitor 18% cheaper",))
    ]
    competitor: Annotated[str | None, Spec(text=TextKind.LABEL, max_length=300, examples=("Acme Automation",))] = None


@dataclass(frozen=True, kw_only=True)
class ReopenDeal(Command):
    """Reopen a closed deal (say why in ``reason``)."""

    entity_field: ClassVar[str] = "deal_id"

    deal_id: UUID
