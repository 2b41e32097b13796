"""Commands on account plans: objectives and their cascade down the tree, the
answers and progress that come back up, actions, SWOT, whitespace, reviews, and
the plan's own submit/approve cycle."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from uuid import UUID, uuid4

from fastapi import APIRouter, Response
from pydantic import Field

from domain.errors import NotFound
from domain.plan import AccountPlan, plan_id_for
from domain.values import ActionStatus, CascadeAnswer, SwotKind, WhitespaceStatus
from services import handlers as h
from services.api.access import Scope, on_account
from services.api.commands import CHANGE_RESPONSES, CREATE_RESPONSES, CommandAccepted, CommandBody, Gate
from services.api.values import TargetIn
from services.app import GamApplication

router = APIRouter(tags=["plans"])


def plan_scope(
    app: GamApplication, plan_id: UUID, unit_of: Callable[[AccountPlan], UUID | None] = lambda _: None
) -> Callable[[], Scope]:
    """The plan's account, and the unit the command is about (None: the plan as a whole)."""

    def scope() -> Scope:
        plan = app.load(AccountPlan, plan_id)
        return Scope(plan.account_id, unit_of(plan))

    return scope


class StartPlan(CommandBody):
    fiscal_period: str = Field(
        min_length=1, max_length=10, examples=["FY2027"], description="FY2027, FY2027-H1 or FY2027-Q3"
    )


@router.post(
    "/accounts/{account_id}/plans", status_code=201, response_model=CommandAccepted, responses=CREATE_RESPONSES
)
def start_plan(account_id: UUID, body: StartPlan, gate: Gate) -> Response:
    """Start the account's plan for a fiscal period (one per period: its id follows from both)."""
    plan_id = plan_id_for(account_id, body.fiscal_period.strip())
    return gate.create(
        body,
        scope=lambda: on_account(gate.app, account_id),
        run=lambda meta: h.start_plan(gate.app, meta, account_id=account_id, fiscal_period=body.fiscal_period),
        location=f"/plans/{plan_id}",
    )


class SetObjective(CommandBody):
    objective_id: UUID = Field(default_factory=uuid4, description="A new objective's id; an id already set is 409.")
    unit_id: UUID = Field(description="The unit that owns the objective.")
    title: str = Field(min_length=1, max_length=300, examples=["Become preferred automation partner in the Nordics"])
    description: str = Field(default="", max_length=10_000)
    target: TargetIn
    due_date: date = Field(examples=["2027-12-31"])
    linked_objective_id: UUID | None = Field(default=None, description="The objective above that this one serves.")


@router.post("/plans/{plan_id}/objectives", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def set_objective(plan_id: UUID, body: SetObjective, gate: Gate) -> Response:
    """Add an objective of a unit (``created_id`` is the objective); objectives are not revised in place."""
    return gate.change(
        body,
        scope=plan_scope(gate.app, plan_id, lambda _: body.unit_id),
        run=lambda meta, v: h.set_objective(
            gate.app,
            meta,
            plan_id=plan_id,
            objective_id=body.objective_id,
            unit_id=body.unit_id,
            title=body.title,
            description=body.description,
            target=body.target.to_domain(),
            due_date=body.due_date,
            linked_objective_id=body.linked_objective_id,
            expected_version=v,
        ),
        created_id=body.objective_id,
    )


class CascadeObjective(CommandBody):
    from_unit_id: UUID = Field(description="The unit passing the objective down.")
    to_unit_ids: list[UUID] = Field(min_length=1, max_length=200, description="Units below it.")


@router.post(
    "/plans/{plan_id}/objectives/{objective_id}/cascade", response_model=CommandAccepted, responses=CHANGE_RESPONSES
)
def cascade_objective(plan_id: UUID, objective_id: UUID, body: CascadeObjective, gate: Gate) -> Response:
    """Cascade an objective down to units below; each answers adopt, adapt or decline."""
    return gate.change(
        body,
        scope=plan_scope(gate.app, plan_id, lambda _: body.from_unit_id),
        run=lambda meta, v: h.cascade_objective(
            gate.app,
            meta,
            plan_id=plan_id,
            objective_id=objective_id,
            from_unit_id=body.from_unit_id,
            to_unit_ids=tuple(body.to_unit_ids),
            expected_version=v,
        ),
    )


class RespondToCascade(CommandBody):
    unit_id: UUID = Field(description="The unit answering.")
    answer: CascadeAnswer = Field(examples=["adapted"])
    rationale: str | None = Field(default=None, max_length=10_000, examples=["Market is half the size of Sweden"])
    local_title: str | None = Field(default=None, max_length=300)
    local_target: TargetIn | None = None


@router.post(
    "/plans/{plan_id}/objectives/{objective_id}/responses", response_model=CommandAccepted, responses=CHANGE_RESPONSES
)
def respond_to_cascade(plan_id: UUID, objective_id: UUID, body: RespondToCascade, gate: Gate) -> Response:
    """A unit adopts, adapts (with its own title or target) or declines (with a rationale)."""
    return gate.change(
        body,
        scope=plan_scope(gate.app, plan_id, lambda _: body.unit_id),
        run=lambda meta, v: h.respond_to_cascade(
            gate.app,
            meta,
            plan_id=plan_id,
            objective_id=objective_id,
            unit_id=body.unit_id,
            answer=body.answer.value,
            rationale=body.rationale,
            local_title=body.local_title,
            local_target=body.local_target.to_domain() if body.local_target else None,
            expected_version=v,
        ),
    )


class ReportProgress(CommandBody):
    unit_id: UUID
    percent: int = Field(ge=0, le=100, examples=[40])
    comment: str | None = Field(default=None, max_length=10_000)


@router.post(
    "/plans/{plan_id}/objectives/{objective_id}/progress", response_model=CommandAccepted, responses=CHANGE_RESPONSES
)
def report_progress(plan_id: UUID, objective_id: UUID, body: ReportProgress, gate: Gate) -> Response:
    """Report a unit's progress on an objective it owns or took on."""
    return gate.change(
        body,
        scope=plan_scope(gate.app, plan_id, lambda _: body.unit_id),
        run=lambda meta, v: h.report_progress(
            gate.app,
            meta,
            plan_id=plan_id,
            objective_id=objective_id,
            unit_id=body.unit_id,
            percent=body.percent,
            comment=body.comment,
            expected_version=v,
        ),
    )


class AddAction(CommandBody):
    action_id: UUID = Field(default_factory=uuid4)
    objective_id: UUID
    unit_id: UUID
    title: str = Field(min_length=1, max_length=300, examples=["Run a joint innovation day in Stockholm"])
    owner: str = Field(min_length=1, max_length=300, examples=["sven.berg@vendor.example"])
    due_date: date = Field(examples=["2027-03-31"])


@router.post("/plans/{plan_id}/actions", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def add_action(plan_id: UUID, body: AddAction, gate: Gate) -> Response:
    """Add an action towards an objective (``created_id`` is the action)."""
    return gate.change(
        body,
        scope=plan_scope(gate.app, plan_id, lambda _: body.unit_id),
        run=lambda meta, v: h.add_action(
            gate.app,
            meta,
            plan_id=plan_id,
            action_id=body.action_id,
            objective_id=body.objective_id,
            unit_id=body.unit_id,
            title=body.title,
            owner=body.owner,
            due_date=body.due_date,
            expected_version=v,
        ),
        created_id=body.action_id,
    )


def _action_unit(action_id: UUID) -> Callable[[AccountPlan], UUID]:
    def unit(plan: AccountPlan) -> UUID:
        if action_id not in plan.actions:
            raise NotFound("action", action_id)
        return plan.actions[action_id].unit_id

    return unit


class ChangeActionStatus(CommandBody):
    status: ActionStatus = Field(examples=["in_progress"])


@router.post("/plans/{plan_id}/actions/{action_id}/status", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def change_action_status(plan_id: UUID, action_id: UUID, body: ChangeActionStatus, gate: Gate) -> Response:
    """Move an action on (planned, in progress, blocked, done)."""
    return gate.change(
        body,
        scope=plan_scope(gate.app, plan_id, _action_unit(action_id)),
        run=lambda meta, v: h.change_action_status(
            gate.app, meta, plan_id=plan_id, action_id=action_id, status=body.status.value, expected_version=v
        ),
    )


class AddSwotEntry(CommandBody):
    entry_id: UUID = Field(default_factory=uuid4)
    kind: SwotKind = Field(examples=["opportunity"])
    text: str = Field(min_length=1, max_length=10_000, examples=["Plant modernisation budget approved for 2027"])
    unit_id: UUID | None = Field(default=None, description="The unit it is about; none for the whole account.")


@router.post("/plans/{plan_id}/swot", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def add_swot_entry(plan_id: UUID, body: AddSwotEntry, gate: Gate) -> Response:
    """Add a strength, weakness, opportunity or threat (``created_id`` is the entry)."""
    return gate.change(
        body,
        scope=plan_scope(gate.app, plan_id, lambda _: body.unit_id),
        run=lambda meta, v: h.add_swot_entry(
            gate.app,
            meta,
            plan_id=plan_id,
            entry_id=body.entry_id,
            kind=body.kind.value,
            text=body.text,
            unit_id=body.unit_id,
            expected_version=v,
        ),
        created_id=body.entry_id,
    )


def _swot_unit(entry_id: UUID) -> Callable[[AccountPlan], UUID | None]:
    def unit(plan: AccountPlan) -> UUID | None:
        if entry_id not in plan.swot:
            raise NotFound("SWOT entry", entry_id)
        return plan.swot[entry_id].unit_id

    return unit


@router.post("/plans/{plan_id}/swot/{entry_id}/remove", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def remove_swot_entry(plan_id: UUID, entry_id: UUID, body: CommandBody, gate: Gate) -> Response:
    """Take a SWOT entry out of the plan."""
    return gate.change(
        body,
        scope=plan_scope(gate.app, plan_id, _swot_unit(entry_id)),
        run=lambda meta, v: h.remove_swot_entry(gate.app, meta, plan_id=plan_id, entry_id=entry_id, expected_version=v),
    )


class SetWhitespaceCell(CommandBody):
    offering: str = Field(min_length=1, max_length=300, examples=["Predictive maintenance"])
    unit_id: UUID
    status: WhitespaceStatus = Field(examples=["opportunity"])


@router.post("/plans/{plan_id}/whitespace", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def set_whitespace_cell(plan_id: UUID, body: SetWhitespaceCell, gate: Gate) -> Response:
    """Say where one offering stands at one unit (in use, opportunity, competitor holds, not a fit)."""
    return gate.change(
        body,
        scope=plan_scope(gate.app, plan_id, lambda _: body.unit_id),
        run=lambda meta, v: h.set_whitespace_cell(
            gate.app,
            meta,
            plan_id=plan_id,
            offering=body.offering,
            unit_id=body.unit_id,
            status=body.status.value,
            expected_version=v,
        ),
    )


class HoldBusinessReview(CommandBody):
    review_id: UUID = Field(default_factory=uuid4)
    held_on: date = Field(examples=["2027-04-15"])
    participants: list[str] = Field(min_length=1, max_length=100, examples=[["CFO", "Head of Operations", "GAM"]])
    decisions: list[str] = Field(default_factory=list, max_length=100)
    follow_up_actions: list[str] = Field(default_factory=list, max_length=100)


@router.post("/plans/{plan_id}/reviews", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def hold_business_review(plan_id: UUID, body: HoldBusinessReview, gate: Gate) -> Response:
    """Record a business review with the customer (``created_id`` is the review)."""
    return gate.change(
        body,
        scope=plan_scope(gate.app, plan_id),
        run=lambda meta, v: h.hold_business_review(
            gate.app,
            meta,
            plan_id=plan_id,
            review_id=body.review_id,
            held_on=body.held_on,
            participants=tuple(body.participants),
            decisions=tuple(body.decisions),
            follow_up_actions=tuple(body.follow_up_actions),
            expected_version=v,
        ),
        created_id=body.review_id,
    )


@router.post("/plans/{plan_id}/submit", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def submit_plan(plan_id: UUID, body: CommandBody, gate: Gate) -> Response:
    """Submit the plan for approval."""
    return gate.change(
        body,
        scope=plan_scope(gate.app, plan_id),
        run=lambda meta, v: h.submit_plan(gate.app, meta, plan_id=plan_id, expected_version=v),
    )


@router.post("/plans/{plan_id}/approve", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def approve_plan(plan_id: UUID, body: CommandBody, gate: Gate) -> Response:
    """Approve a submitted plan."""
    return gate.change(
        body,
        scope=plan_scope(gate.app, plan_id),
        run=lambda meta, v: h.approve_plan(gate.app, meta, plan_id=plan_id, expected_version=v),
    )


@router.post("/plans/{plan_id}/reopen", response_model=CommandAccepted, responses=CHANGE_RESPONSES)
def reopen_plan(plan_id: UUID, body: CommandBody, gate: Gate) -> Response:
    """Reopen a submitted or approved plan for changes (say why in ``reason``)."""
    return gate.change(
        body,
        scope=plan_scope(gate.app, plan_id),
        run=lambda meta, v: h.reopen_plan(gate.app, meta, plan_id=plan_id, expected_version=v),
    )
