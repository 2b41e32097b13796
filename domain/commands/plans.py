"""Commands on account plans: objectives and their cascade down the tree, the
answers and progress that come back up, actions, SWOT, whitespace, reviews, and
the plan's own submit/approve cycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, ClassVar
from uuid import UUID, uuid4

from domain.commands.accounts import FISCAL_PERIOD
from domain.commands.base import Command, Spec
from domain.personal_text import TextKind
from domain.plan import plan_id_for
from domain.values import ActionStatus, CascadeAnswer, SwotKind, Target, WhitespaceStatus

TITLE = Spec(text=TextKind.CHECKED, min_length=1, max_length=300)
TEXT = Spec(text=TextKind.CHECKED, max_length=10_000)


@dataclass(frozen=True, kw_only=True)
class StartPlan(Command):
    """Start the account's plan for a fiscal period (one per period: its id follows from both)."""

    entity_field: ClassVar[str] = "account_id"
    creates: ClassVar[bool] = True

    account_id: UUID
    fiscal_period: Annotated[str, FISCAL_PERIOD]

    @property
    def entity_id(self) -> Any:
        return plan_id_for(self.account_id, self.fiscal_period.strip())


@dataclass(frozen=True, kw_only=True)
class SetObjective(Command):
    """Add an objective of a unit (``created_id`` is the objective); objectives are not revised in place."""

    entity_field: ClassVar[str] = "plan_id"
    created: ClassVar[str | None] = "objective_id"

    plan_id: UUID
    objective_id: Annotated[UUID, Spec(description="A new objective's id; an id already set is 409.")] = field(
        default_factory=uuid4
    )
    unit_id: Annotated[UUID, Spec(description="The unit that owns the objective.")]
    title: Annotated[
        str,
        Spec(
            text=TextKind.CHECKED,
            min_length=1,
            max_length=300,
            examples=("Become preferred automation partner in the Nordics",),
        ),
    ]
    description: Annotated[str, TEXT] = ""
    target: Target
    due_date: Annotated[date, Spec(examples=("2027-12-31",))]
    linked_objective_id: Annotated[UUID | None, Spec(description="The objective above that this one serves.")] = None


@dataclass(frozen=True, kw_only=True)
class CascadeObjective(Command):
    """Cascade an objective down to units below; each answers adopt, adapt or decline."""

    entity_field: ClassVar[str] = "plan_id"

    plan_id: UUID
    objective_id: UUID
    from_unit_id: Annotated[UUID, Spec(description="The unit passing the objective down.")]
    to_unit_ids: Annotated[tuple[UUID, ...], Spec(min_length=1, max_length=200, description="Units below it.")]


@dataclass(frozen=True, kw_only=True)
class RespondToCascade(Command):
    """A unit adopts, adapts (with its own title or target) or declines (with a rationale)."""

    entity_field: ClassVar[str] = "plan_id"

    plan_id: UUID
    objective_id: UUID
    unit_id: Annotated[UUID, Spec(description="The unit answering.")]
    answer: Annotated[CascadeAnswer, Spec(examples=("adapted",))]
    rationale: Annotated[
        str | None, Spec(text=TextKind.CHECKED, max_length=10_000, examples=("Market is half the size of Sweden",))
    ] = None
    local_title: Annotated[str | None, Spec(text=TextKind.CHECKED, max_length=300)] = None
    local_target: Target | None = None


@dataclass(frozen=True, kw_only=True)
class ReportProgress(Command):
    """Report a unit's progress on an objective it owns or took on."""

    entity_field: ClassVar[str] = "plan_id"

    plan_id: UUID
    objective_id: UUID
    unit_id: UUID
    percent: Annotated[int, Spec(ge=0, le=100, examples=(40,))]
    comment: Annotated[str | None, TEXT] = None


@dataclass(frozen=True, kw_only=True)
class AddAction(Command):
    """Add an action towards an objective (``created_id`` is the action)."""

    entity_field: ClassVar[str] = "plan_id"
    created: ClassVar[str | None] = "action_id"

    plan_id: UUID
    action_id: UUID = field(default_factory=uuid4)
    objective_id: UUID
    unit_id: UUID
    title: Annotated[
        str,
        Spec(
            text=TextKind.CHECKED, min_length=1, max_length=300, examples=("Run a joint innovation day in Stockholm",)
        ),
    ]
    owner: Annotated[
        str, Spec(text=TextKind.LABEL, min_length=1, max_length=300, examples=("sven.berg@vendor.example",))
    ]
    due_date: Annotated[date, Spec(examples=("2027-03-31",))]


@dataclass(frozen=True, kw_only=True)
class ChangeActionStatus(Command):
    """Move an action on (planned, in progress, blocked, done)."""

    entity_field: ClassVar[str] = "plan_id"

    plan_id: UUID
    action_id: UUID
    status: Annotated[ActionStatus, Spec(examples=("in_progress",))]


@dataclass(frozen=True, kw_only=True)
class AddSwotEntry(Command):
    """Add a strength, weakness, opportunity or threat (``created_id`` is the entry)."""

    entity_field: ClassVar[str] = "plan_id"
    created: ClassVar[str | None] = "entry_id"

    plan_id: UUID
    entry_id: UUID = field(default_factory=uuid4)
    kind: Annotated[SwotKind, Spec(examples=("opportunity",))]
    text: Annotated[
        str,
        Spec(
            text=TextKind.CHECKED,
            min_length=1,
            max_length=10_000,
            examples=("Plant modernisation budget approved for 2027",),
        ),
    ]
    unit_id: Annotated[UUID | None, Spec(description="The unit it is about; none for the whole account.")] = None


@dataclass(frozen=True, kw_only=True)
class RemoveSwotEntry(Command):
    """Take a SWOT entry out of the plan."""

    entity_field: ClassVar[str] = "plan_id"

    plan_id: UUID
    entry_id: UUID


@dataclass(frozen=True, kw_only=True)
class SetWhitespaceCell(Command):
    """Say where one offering stands at one unit (in use, opportunity, competitor holds, not a fit)."""

    entity_field: ClassVar[str] = "plan_id"

    plan_id: UUID
    offering: Annotated[
        str, Spec(text=TextKind.LABEL, min_length=1, max_length=300, examples=("Predictive maintenance",))
    ]
    unit_id: UUID
    status: Annotated[WhitespaceStatus, Spec(examples=("opportunity",))]


@dataclass(frozen=True, kw_only=True)
class HoldBusinessReview(Command):
    """Record a business review with the customer (``created_id`` is the review)."""

    entity_field: ClassVar[str] = "plan_id"
    created: ClassVar[str | None] = "review_id"

    plan_id: UUID
    review_id: UUID = field(default_factory=uuid4)
    held_on: Annotated[date, Spec(examples=("2027-04-15",))]
    participants: Annotated[
        tuple[str, ...],
        Spec(text=TextKind.CHECKED, min_length=1, max_length=100, examples=(("CFO", "Head of Operations", "GAM"),)),
    ]
    decisions: Annotated[tuple[str, ...], Spec(text=TextKind.CHECKED, max_length=100)] = ()
    follow_up_actions: Annotated[tuple[str, ...], Spec(text=TextKind.CHECKED, max_length=100)] = ()


@dataclass(frozen=True, kw_only=True)
class SubmitPlan(Command):
    """Submit the plan for approval."""

    entity_field: ClassVar[str] = "plan_id"

    plan_id: UUID


@dataclass(frozen=True, kw_only=True)
class AskToReconsider(Command):
    """The unit that cascaded an objective asks a unit that declined it to answer again."""

    entity_field: ClassVar[str] = "plan_id"

    plan_id: UUID
    objective_id: UUID
    unit_id: Annotated[UUID, Spec(description="The unit that declined.")]
    note: Annotated[
        str, Spec(text=TextKind.CHECKED, min_length=1, max_length=10_000, examples=("Lyon alone carries half of it",))
    ]


@dataclass(frozen=True, kw_only=True)
class ApprovePlan(Command):
    """Approve a submitted plan (by someone other than its submitter, who holds an
    approver role on the account's team: lead GAM or executive sponsor by default)."""

    entity_field: ClassVar[str] = "plan_id"

    plan_id: UUID


@dataclass(frozen=True, kw_only=True)
class ReopenPlan(Command):
    """Reopen a submitted or approved plan for changes (say why in ``reason``)."""

    entity_field: ClassVar[str] = "plan_id"

    plan_id: UUID
