"""Commands on a global account: taking it on, its unit tree and our team."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar
from uuid import UUID, uuid4

from domain.commands.base import Command, Spec
from domain.personal_text import TextKind
from domain.plan import plan_id_for
from domain.values import AccountTier, GovernanceModel, TeamRole, UnitLevel

NAME = Spec(text=TextKind.LABEL, min_length=1, max_length=300)
FISCAL_PERIOD = Spec(
    text=TextKind.LABEL, min_length=1, max_length=10, examples=("FY2027",), description="FY2027, FY2027-H1 or FY2027-Q3"
)


@dataclass(frozen=True, kw_only=True)
class CreateAccount(Command):
    """Take on a global account, with its HQ as the root of the unit tree."""

    entity_field: ClassVar[str] = "account_id"
    created: ClassVar[str | None] = "hq_unit_id"
    creates: ClassVar[bool] = True

    account_id: Annotated[UUID, Spec(description="Chosen by the client or the server.")] = field(default_factory=uuid4)
    hq_unit_id: UUID = field(default_factory=uuid4)
    name: Annotated[
        str, Spec(text=TextKind.LABEL, min_length=1, max_length=300, examples=("Nordwind Industrial Group",))
    ]
    industry: Annotated[
        str, Spec(text=TextKind.LABEL, min_length=1, max_length=300, examples=("Industrial machinery",))
    ]
    hq_country: Annotated[
        str, Spec(text=TextKind.LABEL, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2", examples=("SE",))
    ]
    reporting_currency: Annotated[
        str, Spec(text=TextKind.LABEL, pattern=r"^[A-Z]{3}$", description="ISO 4217", examples=("EUR",))
    ]
    tier: AccountTier = AccountTier.TIER_1
    governance_model: GovernanceModel = GovernanceModel.COORDINATED
    hq_unit_name: Annotated[str, NAME] = "Headquarters"


@dataclass(frozen=True, kw_only=True)
class OnboardAccount(CreateAccount):
    """Take on a global account and start its first plan, atomically (``created_id`` is the plan)."""

    created: ClassVar[str | None] = None

    fiscal_period: Annotated[str, FISCAL_PERIOD]

    @property
    def created_id(self) -> Any:
        return plan_id_for(self.account_id, self.fiscal_period.strip())


@dataclass(frozen=True, kw_only=True)
class AddUnit(Command):
    """Add a unit below an open unit (``created_id`` is the new unit)."""

    entity_field: ClassVar[str] = "account_id"
    created: ClassVar[str | None] = "unit_id"

    account_id: UUID
    unit_id: UUID = field(default_factory=uuid4)
    parent_id: Annotated[UUID, Spec(description="The unit one level up.")]
    name: Annotated[str, Spec(text=TextKind.LABEL, min_length=1, max_length=300, examples=("Nordics",))]
    level: Annotated[UnitLevel, Spec(examples=("region",))]
    code: Annotated[
        str,
        Spec(
            text=TextKind.LABEL,
            min_length=1,
            max_length=20,
            description="Region code or ISO country code",
            examples=("NORD",),
        ),
    ]


@dataclass(frozen=True, kw_only=True)
class RenameUnit(Command):
    """Rename a unit."""

    entity_field: ClassVar[str] = "account_id"

    account_id: UUID
    unit_id: UUID
    name: Annotated[str, Spec(text=TextKind.LABEL, min_length=1, max_length=300, examples=("Nordics & Baltics",))]


@dataclass(frozen=True, kw_only=True)
class CloseUnit(Command):
    """Close a unit with no open units below it; its history stays."""

    entity_field: ClassVar[str] = "account_id"

    account_id: UUID
    unit_id: UUID


@dataclass(frozen=True, kw_only=True)
class _TeamAssignment(Command):
    """One of our people in one role at one unit of the account."""

    entity_field: ClassVar[str] = "account_id"

    account_id: UUID
    member: Annotated[
        str, Spec(text=TextKind.LABEL, min_length=1, max_length=300, examples=("sven.berg@vendor.example",))
    ]
    unit_id: UUID
    role: Annotated[TeamRole, Spec(examples=("regional_am",))]


@dataclass(frozen=True, kw_only=True)
class AssignTeamMember(_TeamAssignment):
    """Put one of our people on a unit of the account, in a role."""


@dataclass(frozen=True, kw_only=True)
class RemoveTeamMember(_TeamAssignment):
    """Take one of our people off a unit."""


@dataclass(frozen=True, kw_only=True)
class ArchiveAccount(Command):
    """Archive the account: read-only from now on, its history kept."""

    entity_field: ClassVar[str] = "account_id"

    account_id: UUID
