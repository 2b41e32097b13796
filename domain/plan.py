"""AccountPlan: one per account and fiscal period. Objectives are set at a unit
and cascaded down (directives); units answer (adopt, adapt, decline); actions
and progress flow back up; SWOT, whitespace and business reviews round it off."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Self
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.account import UnitTree
from domain.base import GamAggregate, GamEvent
from domain.errors import (
    AlreadyCascaded,
    AlreadyExists,
    CascadeAlreadyAnswered,
    CascadeNotAddressedToUnit,
    CascadeNotBelowSource,
    CascadeSourceNotEntitled,
    InvalidActionTransition,
    InvalidPlanTransition,
    InvalidValue,
    NotAnApprover,
    NotFound,
    PlanNotEditable,
    ProgressNotEntitled,
    ReconsiderNeedsDecline,
    SelfApproval,
    UnitOfAnotherAccount,
)
from domain.metadata import EventMetadata
from domain.values import (
    ACTION_TRANSITIONS,
    MAX_TEXT,
    ActionStatus,
    CascadeAnswer,
    PlanStatus,
    SwotKind,
    Target,
    WhitespaceStatus,
    optional_text,
    require_date,
    require_enum,
    require_int_range,
    require_text,
)

FISCAL_PERIOD = re.compile(r"^FY[0-9]{4}(-(H[12]|Q[1-4]))?$")
"""ASCII digits only: ``\\d`` would also take other scripts' digits (full-width, Arabic-Indic)."""
_PLAN_NAMESPACE = uuid5(NAMESPACE_URL, "urn:gam:account-plan")


def plan_id_for(account_id: UUID, fiscal_period: str) -> UUID:
    """Plans have a deterministic id, so the store itself refuses a second plan
    for the same account and fiscal period (two concurrent starts cannot both win)."""
    return uuid5(_PLAN_NAMESPACE, f"{account_id}/{fiscal_period}")


@dataclass(frozen=True)
class Objective:
    objective_id: UUID
    unit_id: UUID
    title: str
    description: str
    target: Target
    due_date: date
    linked_objective_id: UUID | None


@dataclass(frozen=True)
class Directive:
    """An objective cascaded from one unit to a unit below it, and its answer."""

    objective_id: UUID
    from_unit_id: UUID
    to_unit_id: UUID
    cascaded_at: datetime
    answer: str | None = None
    local_title: str | None = None
    local_target: Target | None = None
    rationale: str | None = None
    answered_at: datetime | None = None
    reconsider_note: str | None = None
    """Why the cascading unit asked for a new answer, after a decline (the earlier answer stays in the events)."""

    @property
    def taken_on(self) -> bool:
        return self.answer in (CascadeAnswer.ADOPTED, CascadeAnswer.ADAPTED)


@dataclass(frozen=True)
class Action:
    action_id: UUID
    objective_id: UUID
    unit_id: UUID
    title: str
    owner: str
    due_date: date
    status: str


@dataclass(frozen=True)
class ProgressReport:
    objective_id: UUID
    unit_id: UUID
    percent: int
    comment: str | None
    reported_at: datetime


@dataclass(frozen=True)
class SwotEntry:
    entry_id: UUID
    kind: str
    text: str
    unit_id: UUID | None


@dataclass(frozen=True)
class BusinessReview:
    review_id: UUID
    held_on: date
    participants: tuple[str, ...]
    decisions: tuple[str, ...]
    follow_up_actions: tuple[str, ...]


class AccountPlan(GamAggregate):
    """The GAM's plan for one account and fiscal period."""

    entity_type = "plan"

    if TYPE_CHECKING:
        account_id: UUID
        fiscal_period: str
        status: str
        baseline_version: int | None
        submitted_by: str | None
        objectives: dict[UUID, Objective]
        directives: dict[tuple[UUID, UUID], Directive]
        actions: dict[UUID, Action]
        progress: list[ProgressReport]
        swot: dict[UUID, SwotEntry]
        whitespace: dict[tuple[str, UUID], str]
        reviews: dict[UUID, BusinessReview]

    class Started(GamAggregate.Created, GamEvent):
        """The account plan for a fiscal period was started (as a draft)."""

        account_id: UUID
        fiscal_period: str

        def apply(self, plan: AccountPlan) -> None:
            plan.account_id = self.account_id
            plan.fiscal_period = self.fiscal_period
            plan.status = PlanStatus.DRAFT.value
            plan.baseline_version = None
            plan.submitted_by = None
            plan.objectives = {}
            plan.directives = {}
            plan.actions = {}
            plan.progress = []
            plan.swot = {}
            plan.whitespace = {}
            plan.reviews = {}

    class ObjectiveSet(GamEvent):
        """A unit set itself an objective with a measurable target, optionally in
        support of an objective of a unit above it."""

        objective_id: UUID
        unit_id: UUID
        title: str
        description: str
        target: Target
        due_date: date
        linked_objective_id: UUID | None

        def apply(self, plan: AccountPlan) -> None:
            plan.objectives[self.objective_id] = Objective(
                self.objective_id,
                self.unit_id,
                self.title,
                self.description,
                self.target,
                self.due_date,
                self.linked_objective_id,
            )

    class ObjectiveCascaded(GamEvent):
        """A unit passed an objective down to units below it, as a directive they must answer."""

        objective_id: UUID
        from_unit_id: UUID
        to_unit_ids: tuple[UUID, ...]

        def apply(self, plan: AccountPlan) -> None:
            for to_unit in self.to_unit_ids:
                plan.directives[(self.objective_id, to_unit)] = Directive(
                    self.objective_id, self.from_unit_id, to_unit, self.timestamp
                )

    class ObjectiveAdopted(GamEvent):
        """A unit took on a cascaded objective as it was given."""

        objective_id: UUID
        unit_id: UUID

        def apply(self, plan: AccountPlan) -> None:
            key = (self.objective_id, self.unit_id)
            plan.directives[key] = replace(
                plan.directives[key], answer=CascadeAnswer.ADOPTED.value, answered_at=self.timestamp
            )

    class ObjectiveAdapted(GamEvent):
        """A unit took on a cascaded objective in a local variant, and said why."""

        objective_id: UUID
        unit_id: UUID
        local_title: str
        local_target: Target
        rationale: str

        def apply(self, plan: AccountPlan) -> None:
            key = (self.objective_id, self.unit_id)
            plan.directives[key] = replace(
                plan.directives[key],
                answer=CascadeAnswer.ADAPTED.value,
                local_title=self.local_title,
                local_target=self.local_target,
                rationale=self.rationale,
                answered_at=self.timestamp,
            )

    class ObjectiveDeclined(GamEvent):
        """A unit declined a cascaded objective, and said why."""

        objective_id: UUID
        unit_id: UUID
        rationale: str

        def apply(self, plan: AccountPlan) -> None:
            key = (self.objective_id, self.unit_id)
            plan.directives[key] = replace(
                plan.directives[key],
                answer=CascadeAnswer.DECLINED.value,
                rationale=self.rationale,
                answered_at=self.timestamp,
            )

    class ReconsiderationRequested(GamEvent):
        """The unit that cascaded an objective asked a unit that declined it to answer
        again, with a note; the decline stays in the history, the directive awaits an answer."""

        objective_id: UUID
        unit_id: UUID
        note: str

        def apply(self, plan: AccountPlan) -> None:
            key = (self.objective_id, self.unit_id)
            plan.directives[key] = replace(
                plan.directives[key],
                answer=None,
                local_title=None,
                local_target=None,
                rationale=None,
                answered_at=None,
                reconsider_note=self.note,
            )

    class ActionAdded(GamEvent):
        """A unit committed to an action towards an objective, with an owner and a due date."""

        action_id: UUID
        objective_id: UUID
        unit_id: UUID
        title: str
        owner: str
        due_date: date

        def apply(self, plan: AccountPlan) -> None:
            plan.actions[self.action_id] = Action(
                self.action_id,
                self.objective_id,
                self.unit_id,
                self.title,
                self.owner,
                self.due_date,
                ActionStatus.PLANNED.value,
            )

    class ActionStatusChanged(GamEvent):
        """An action moved on (started, done, blocked, or back)."""

        action_id: UUID
        from_status: str
        to_status: str

        def apply(self, plan: AccountPlan) -> None:
            plan.actions[self.action_id] = replace(plan.actions[self.action_id], status=self.to_status)

    class ProgressReported(GamEvent):
        """A unit reported upward how far it has got with an objective."""

        objective_id: UUID
        unit_id: UUID
        percent: int
        comment: str | None

        def apply(self, plan: AccountPlan) -> None:
            plan.progress.append(
                ProgressReport(self.objective_id, self.unit_id, self.percent, self.comment, self.timestamp)
            )

    class SwotEntryAdded(GamEvent):
        """A strength, weakness, opportunity or threat was noted, for the account or one unit."""

        entry_id: UUID
        kind: str
        text: str
        unit_id: UUID | None

        def apply(self, plan: AccountPlan) -> None:
            plan.swot[self.entry_id] = SwotEntry(self.entry_id, self.kind, self.text, self.unit_id)

    class SwotEntryRemoved(GamEvent):
        """A SWOT entry no longer holds and was taken off the plan."""

        entry_id: UUID

        def apply(self, plan: AccountPlan) -> None:
            del plan.swot[self.entry_id]

    class WhitespaceCellSet(GamEvent):
        """The state of one of our offerings at one unit was recorded (in use,
        an opportunity, held by a competitor, or not a fit)."""

        offering: str
        unit_id: UUID
        status: str

        def apply(self, plan: AccountPlan) -> None:
            plan.whitespace[(self.offering, self.unit_id)] = self.status

    class BusinessReviewHeld(GamEvent):
        """A business review (QBR) with the customer took place, with its decisions and follow-ups."""

        review_id: UUID
        held_on: date
        participants: tuple[str, ...]
        decisions: tuple[str, ...]
        follow_up_actions: tuple[str, ...]

        def apply(self, plan: AccountPlan) -> None:
            plan.reviews[self.review_id] = BusinessReview(
                self.review_id, self.held_on, self.participants, self.decisions, self.follow_up_actions
            )

    class Submitted(GamEvent):
        """The GAM submitted the plan for approval; its strategy is frozen meanwhile."""

        def apply(self, plan: AccountPlan) -> None:
            plan.status = PlanStatus.SUBMITTED.value
            plan.submitted_by = self.actor

    class Approved(GamEvent):
        """The plan was approved; this version is the baseline progress is measured against."""

        baseline_version: int

        def apply(self, plan: AccountPlan) -> None:
            plan.status = PlanStatus.APPROVED.value
            plan.baseline_version = self.baseline_version

    class Reopened(GamEvent):
        """The plan was reopened for changes to its strategy (the last baseline stays on record)."""

        def apply(self, plan: AccountPlan) -> None:
            plan.status = PlanStatus.DRAFT.value

    # --- commands -------------------------------------------------------------------

    @classmethod
    def start(cls, *, account_id: UUID, fiscal_period: str, meta: EventMetadata) -> Self:
        period = require_text("fiscal_period", fiscal_period, max_len=10)
        if not FISCAL_PERIOD.match(period):
            raise InvalidValue("fiscal_period", "must look like FY2027, FY2027-H1 or FY2027-Q3")
        return cls._create_with(
            cls.Started, plan_id_for(account_id, period), meta, account_id=account_id, fiscal_period=period
        )

    def set_objective(
        self,
        *,
        objective_id: UUID,
        unit_id: UUID,
        title: str,
        description: str,
        target: Target,
        due_date: date,
        tree: UnitTree,
        meta: EventMetadata,
        linked_objective_id: UUID | None = None,
    ) -> None:
        self._require_editable()
        self._require_own(tree)
        tree.require_open(unit_id)
        if objective_id in self.objectives:
            raise AlreadyExists("objective", objective_id)
        if not isinstance(target, Target):
            raise InvalidValue("target", "must be a target")
        target.require_minor_units("target")
        if linked_objective_id is not None:
            parent = self._objective(linked_objective_id, "linked_objective_id")
            if not tree.is_below(unit_id, parent.unit_id):
                raise InvalidValue(
                    "linked_objective_id", "an objective can only support an objective of a unit above it"
                )
        self._record(
            self.ObjectiveSet,
            meta,
            objective_id=objective_id,
            unit_id=unit_id,
            title=require_text("title", title),
            description=require_text("description", description, max_len=MAX_TEXT, allow_empty=True),
            target=target,
            due_date=require_date("due_date", due_date),
            linked_objective_id=linked_objective_id,
        )

    def cascade_objective(
        self,
        *,
        objective_id: UUID,
        from_unit_id: UUID,
        to_unit_ids: tuple[UUID, ...],
        tree: UnitTree,
        meta: EventMetadata,
    ) -> None:
        self._require_own(tree)
        objective = self._objective(objective_id)
        tree.require_open(from_unit_id, "from_unit_id")
        if not self._holds(objective, from_unit_id):
            raise CascadeSourceNotEntitled(f"unit {from_unit_id} neither owns objective {objective_id} nor took it on")
        targets = tuple(dict.fromkeys(to_unit_ids))
        if not targets:
            raise InvalidValue("to_unit_ids", "name at least one unit")
        for index, to_unit in enumerate(targets):
            tree.require_open(to_unit, f"to_unit_ids[{index}]")
            if not tree.is_below(to_unit, from_unit_id):
                raise CascadeNotBelowSource(f"to_unit_ids[{index}]: unit {to_unit} is not below {from_unit_id}")
            if (objective_id, to_unit) in self.directives:
                raise AlreadyCascaded(f"to_unit_ids[{index}]: unit {to_unit} already received {objective_id}")
        self._record(
            self.ObjectiveCascaded, meta, objective_id=objective_id, from_unit_id=from_unit_id, to_unit_ids=targets
        )

    def respond_to_cascade(
        self,
        *,
        objective_id: UUID,
        unit_id: UUID,
        answer: str,
        tree: UnitTree,
        meta: EventMetadata,
        rationale: str | None = None,
        local_title: str | None = None,
        local_target: Target | None = None,
    ) -> None:
        tree.require_open(unit_id)
        self._objective(objective_id)
        directive = self.directives.get((objective_id, unit_id))
        if directive is None:
            raise CascadeNotAddressedToUnit(f"objective {objective_id} was not cascaded to unit {unit_id}")
        if directive.answer is not None:
            raise CascadeAlreadyAnswered(f"unit {unit_id} already {directive.answer} objective {objective_id}")
        kind = require_enum("answer", CascadeAnswer, answer)
        ids = {"objective_id": objective_id, "unit_id": unit_id}
        if kind is CascadeAnswer.ADOPTED:
            self._record(self.ObjectiveAdopted, meta, **ids)
        elif kind is CascadeAnswer.ADAPTED:
            if local_target is None or not isinstance(local_target, Target):
                raise InvalidValue("local_target", "an adapted objective needs its local target")
            local_target.require_minor_units("local_target")
            self._record(
                self.ObjectiveAdapted,
                meta,
                **ids,
                local_title=require_text("local_title", local_title or ""),
                local_target=local_target,
                rationale=require_text("rationale", rationale or "", max_len=MAX_TEXT),
            )
        else:
            self._record(
                self.ObjectiveDeclined,
                meta,
                **ids,
                rationale=require_text("rationale", rationale or "", max_len=MAX_TEXT),
            )

    def add_action(
        self,
        *,
        action_id: UUID,
        objective_id: UUID,
        unit_id: UUID,
        title: str,
        owner: str,
        due_date: date,
        tree: UnitTree,
        meta: EventMetadata,
    ) -> None:
        self._require_own(tree)
        objective = self._objective(objective_id)
        tree.require_open(unit_id)
        if action_id in self.actions:
            raise AlreadyExists("action", action_id)
        if not self._holds(objective, unit_id):
            raise ProgressNotEntitled(f"unit {unit_id} neither owns objective {objective_id} nor took it on")
        self._record(
            self.ActionAdded,
            meta,
            action_id=action_id,
            objective_id=objective_id,
            unit_id=unit_id,
            title=require_text("title", title),
            owner=require_text("owner", owner),
            due_date=require_date("due_date", due_date),
        )

    def change_action_status(self, *, action_id: UUID, status: str, meta: EventMetadata) -> None:
        action = self.actions.get(action_id)
        if action is None:
            raise NotFound("action", action_id)
        new = require_enum("status", ActionStatus, status)
        if new not in ACTION_TRANSITIONS[ActionStatus(action.status)]:
            raise InvalidActionTransition(f"an action cannot go from {action.status} to {new.value}")
        self._record(
            self.ActionStatusChanged, meta, action_id=action_id, from_status=action.status, to_status=new.value
        )

    def report_progress(
        self,
        *,
        objective_id: UUID,
        unit_id: UUID,
        percent: int,
        tree: UnitTree,
        meta: EventMetadata,
        comment: str | None = None,
    ) -> None:
        tree.require_open(unit_id)
        objective = self._objective(objective_id)
        if not self._holds(objective, unit_id):
            raise ProgressNotEntitled(f"unit {unit_id} neither owns objective {objective_id} nor took it on")
        self._record(
            self.ProgressReported,
            meta,
            objective_id=objective_id,
            unit_id=unit_id,
            percent=require_int_range("percent", percent, 0, 100),
            comment=optional_text("comment", comment),
        )

    def add_swot_entry(
        self, *, entry_id: UUID, kind: str, text: str, tree: UnitTree, meta: EventMetadata, unit_id: UUID | None = None
    ) -> None:
        self._require_editable()
        self._require_own(tree)
        if entry_id in self.swot:
            raise AlreadyExists("swot entry", entry_id)
        if unit_id is not None:
            tree.require_open(unit_id)
        self._record(
            self.SwotEntryAdded,
            meta,
            entry_id=entry_id,
            kind=require_enum("kind", SwotKind, kind).value,
            text=require_text("text", text, max_len=MAX_TEXT),
            unit_id=unit_id,
        )

    def remove_swot_entry(self, *, entry_id: UUID, meta: EventMetadata) -> None:
        self._require_editable()
        if entry_id not in self.swot:
            raise NotFound("swot entry", entry_id)
        self._record(self.SwotEntryRemoved, meta, entry_id=entry_id)

    def set_whitespace_cell(
        self, *, offering: str, unit_id: UUID, status: str, tree: UnitTree, meta: EventMetadata
    ) -> None:
        self._require_own(tree)
        tree.require_open(unit_id)
        self._record(
            self.WhitespaceCellSet,
            meta,
            offering=require_text("offering", offering),
            unit_id=unit_id,
            status=require_enum("status", WhitespaceStatus, status).value,
        )

    def hold_business_review(
        self,
        *,
        review_id: UUID,
        held_on: date,
        participants: tuple[str, ...],
        decisions: tuple[str, ...],
        follow_up_actions: tuple[str, ...],
        meta: EventMetadata,
    ) -> None:
        if review_id in self.reviews:
            raise AlreadyExists("business review", review_id)
        if not participants:
            raise InvalidValue("participants", "a review has participants")
        self._record(
            self.BusinessReviewHeld,
            meta,
            review_id=review_id,
            held_on=require_date("held_on", held_on),
            participants=tuple(require_text(f"participants[{i}]", p) for i, p in enumerate(participants)),
            decisions=tuple(require_text(f"decisions[{i}]", d, max_len=MAX_TEXT) for i, d in enumerate(decisions)),
            follow_up_actions=tuple(
                require_text(f"follow_up_actions[{i}]", f, max_len=MAX_TEXT) for i, f in enumerate(follow_up_actions)
            ),
        )

    def submit(self, *, meta: EventMetadata) -> None:
        if self.status != PlanStatus.DRAFT:
            raise InvalidPlanTransition(f"only a draft plan can be submitted; this one is {self.status}")
        if not self.objectives:
            raise InvalidPlanTransition("a plan without objectives cannot be submitted")
        self._record(self.Submitted, meta)

    def approve(
        self, *, meta: EventMetadata, approver_roles_held: frozenset[str], approver_roles: frozenset[str]
    ) -> None:
        """``approver_roles_held``: the approver's roles on the account's team, read by the
        caller from the account; ``approver_roles``: the roles that approve (configured)."""
        if self.status != PlanStatus.SUBMITTED:
            raise InvalidPlanTransition(f"only a submitted plan can be approved; this one is {self.status}")
        if meta.actor == getattr(self, "submitted_by", None):
            raise SelfApproval(f"{meta.actor} submitted this plan, so someone else approves it")
        if not approver_roles_held & approver_roles:
            roles = " or ".join(sorted(approver_roles))
            raise NotAnApprover(f"{meta.actor} is not {roles} on this account, so may not approve its plan")
        self._record(self.Approved, meta, baseline_version=self.version + 1)

    def ask_to_reconsider(self, *, objective_id: UUID, unit_id: UUID, note: str, meta: EventMetadata) -> None:
        """Answers after approval are allowed (and recorded against the baseline), so
        is asking for one: the plan's status is not checked."""
        self._objective(objective_id)
        directive = self.directives.get((objective_id, unit_id))
        if directive is None:
            raise CascadeNotAddressedToUnit(f"objective {objective_id} was not cascaded to unit {unit_id}")
        if directive.answer != CascadeAnswer.DECLINED:
            raise ReconsiderNeedsDecline(
                f"unit {unit_id} has {directive.answer or 'not answered'} objective {objective_id}; "
                "only a decline is sent back"
            )
        self._record(
            self.ReconsiderationRequested,
            meta,
            objective_id=objective_id,
            unit_id=unit_id,
            note=require_text("note", note, max_len=MAX_TEXT),
        )

    def reopen(self, *, meta: EventMetadata) -> None:
        if self.status == PlanStatus.DRAFT:
            raise InvalidPlanTransition("the plan is already open")
        self._record(self.Reopened, meta)

    # --- helpers --------------------------------------------------------------------

    def _objective(self, objective_id: UUID, field: str = "objective_id") -> Objective:
        objective = self.objectives.get(objective_id)
        if objective is None:
            if field == "objective_id":
                raise NotFound("objective", objective_id)
            raise InvalidValue(field, f"unknown objective {objective_id}")
        return objective

    def _holds(self, objective: Objective, unit_id: UUID) -> bool:
        """The unit owns the objective, or received it and took it on."""
        if objective.unit_id == unit_id:
            return True
        directive = self.directives.get((objective.objective_id, unit_id))
        return directive is not None and directive.taken_on

    def _require_editable(self) -> None:
        if self.status != PlanStatus.DRAFT:
            raise PlanNotEditable(f"the plan is {self.status}; reopen it to change its strategy")

    def _require_own(self, tree: UnitTree) -> None:
        if tree.account_id != self.account_id:
            raise UnitOfAnotherAccount(f"the plan belongs to account {self.account_id}, not {tree.account_id}")
