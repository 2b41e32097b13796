"""Finding things: the caller's accounts, and per account its plans, stakeholders
and deals, filtered and paged by cursor.

Every answer comes from the account view's list rows (one row per entity, indexed
for the filters), never from an aggregate: a page of 50 of 10,000 deals reads 51 rows.
A cursor is the ``next`` of the previous page; pages stay stable while rows are written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field

from domain.values import BuyingRole, DealStage, DealStatus, PlanStatus
from projections.account_view.lists import ACCOUNT, DEAL, PLAN, STAKEHOLDER, BadCursor, decode_cursor, fold, subtree
from projections.ports import ListQuery
from services.api.access import AccountScope, listed_accounts, readable_accounts
from services.api.auth import Caller
from services.api.dependencies import RuntimeDep
from services.api.problems import problem_responses
from services.api.routes.queries import MinPosition, json_response
from services.api.values import TextWithoutNul
from services.bootstrap import Runtime

router = APIRouter(tags=["lists"])
T = TypeVar("T")

LISTED = problem_responses(
    {
        401: "No valid credential",
        403: "The caller may not read this account (or list every account)",
        404: "No such account",
        422: "Invalid parameters, or a cursor this server did not hand out (field paths in ``errors``)",
        503: "The view has not reached ``min_position`` yet; retry after Retry-After",
    }
)

After = Annotated[
    str | None,
    Query(max_length=500, pattern=r"^[A-Za-z0-9_-]+$", description="Cursor: the ``next`` of the previous page."),
]
Limit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
Name = Annotated[TextWithoutNul | None, Query(max_length=300)]


class MoneyOut(BaseModel):
    amount: Decimal = Field(description="Exact, as a string in JSON", examples=["250000.00"])
    currency: str = Field(description="ISO 4217 code", examples=["EUR"])


class AccountSummary(BaseModel):
    id: UUID
    name: str
    industry: str
    hq_country: str
    tier: str
    reporting_currency: str
    governance_model: str
    archived: bool


class PlanSummary(BaseModel):
    id: UUID
    account_id: UUID
    fiscal_period: str
    status: PlanStatus
    baseline_version: int | None
    objectives: int = Field(description="How many objectives the plan has")
    actions: int = Field(description="How many actions the plan has")


class StakeholderSummary(BaseModel):
    id: UUID
    account_id: UUID
    unit_id: UUID
    name: str = Field(description="``[erased]`` after the person's data was erased")
    title: str
    buying_role: BuyingRole | None
    influence: int | None
    sentiment: int | None
    relationship_owner: str | None
    reports_to: UUID | None
    last_contact: datetime | None
    left_on: date | None
    erased: bool


class DealSummary(BaseModel):
    id: UUID
    account_id: UUID
    unit_id: UUID
    title: str
    amount: MoneyOut
    stage: DealStage
    probability: int
    expected_close: date
    owner: str
    status: DealStatus
    final_amount: MoneyOut | None
    overdue: bool = Field(description="Still open, and its expected close date has passed (UTC)")


@dataclass(frozen=True)
class Paging:
    """Which page of a list: after which cursor, how many items, and the log position
    the view must have reached first (read-your-writes)."""

    after: str | None
    limit: int
    min_position: int | None


def paging(after: After = None, limit: Limit = 50, min_position: MinPosition = None) -> Paging:
    return Paging(after, limit, min_position)


PageAt = Annotated[Paging, Depends(paging)]


class Page(BaseModel, Generic[T]):
    """One page: the items, the cursor of the next page (``null`` after the last), and
    the log position the view had reached."""

    position: int
    items: list[T]
    next: str | None


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", field), "msg": message, "type": "value_error"}])


def _cursor(after: str | None) -> tuple[str, str] | None:
    if after is None:
        return None
    try:
        return decode_cursor(after)
    except BadCursor as error:
        raise _invalid("after", str(error)) from None


def _page(runtime: Runtime, query: ListQuery, min_position: int | None) -> Response:
    result = runtime.reads.list_page(query, min_position=min_position)
    return json_response({"position": result.position, "items": result.data.items, "next": result.data.next})


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _account_ids(runtime: Runtime, scope: AccountScope) -> frozenset[str] | None:
    if scope.everything:
        return None
    return frozenset(str(a) for a in scope.account_ids) | runtime.reads.accounts_of_units(scope.unit_ids)


@router.get("/accounts", response_model=Page[AccountSummary], responses=LISTED)
def list_accounts(
    runtime: RuntimeDep,
    principal: Caller,
    page: PageAt,
    all: Annotated[bool, Query(description="Every account, not only mine (admin and compliance).")] = False,
    q: Annotated[Name, Query(description="Part of the name, in any case.")] = None,
    industry: Name = None,
    hq_country: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")] = None,
    tier: Annotated[TextWithoutNul | None, Query(max_length=100)] = None,
) -> Response:
    """My accounts (those I work on), or with ``all=true`` every account; by name."""
    scope = listed_accounts(principal, runtime.reads.team_accounts, everything=all)
    equals = {k: v for k, v in (("industry", industry), ("hq_country", hq_country), ("tier", tier)) if v is not None}
    query = ListQuery(
        ACCOUNT,
        account_ids=_account_ids(runtime, scope),
        equals=equals,
        text=None if q is None else fold(q),
        after=_cursor(page.after),
        limit=page.limit,
    )
    return _page(runtime, query, page.min_position)


def _readable(runtime: Runtime, principal: Any, account_id: UUID) -> dict[str, Any]:
    """The account's units, once the caller may read the account (404 if the view does not know it)."""
    units = runtime.reads.units_of(account_id)
    if not units:
        raise HTTPException(404, f"account {account_id} not found")
    if not readable_accounts(principal, runtime.reads.team_accounts).includes(account_id, lambda: map(UUID, units)):
        raise HTTPException(403, f"{principal.subject} may not read account {account_id}")
    return units


def _units_below(units: dict[str, Any], unit: UUID | None) -> dict[str, frozenset[str]]:
    if unit is None:
        return {}
    if str(unit) not in units:
        raise _invalid("unit", f"{unit} is not a unit of this account")
    return {"unit_id": subtree(units, str(unit))}


def _account_page(
    runtime: Runtime,
    principal: Any,
    account_id: UUID,
    kind: str,
    facets: dict[str, str | None],
    page: Paging,
    *,
    unit: UUID | None = None,
    q: str | None = None,
    **more: Any,
) -> Response:
    """A page of one account's rows of ``kind``, once the caller may read the account:
    ``facets`` given (not None) must match, ``unit`` takes its subtree, ``q`` is part of
    the row's text."""
    units = _readable(runtime, principal, account_id)
    query = ListQuery(
        kind,
        account_ids=frozenset({str(account_id)}),
        equals={k: v for k, v in facets.items() if v is not None},
        within=_units_below(units, unit),
        text=None if q is None else fold(q),
        after=_cursor(page.after),
        limit=page.limit,
        **more,
    )
    return _page(runtime, query, page.min_position)


Unit = Annotated[UUID | None, Query(description="Only this unit and the units below it.")]
Owner = Annotated[TextWithoutNul | None, Query(max_length=300)]


@router.get("/accounts/{account_id}/plans", response_model=Page[PlanSummary], responses=LISTED)
def list_plans(
    runtime: RuntimeDep,
    account_id: UUID,
    principal: Caller,
    page: PageAt,
    status: PlanStatus | None = None,
) -> Response:
    """The account's plans by fiscal period."""
    facets = {"status": status.value if status else None}
    return _account_page(runtime, principal, account_id, PLAN, facets, page)


@router.get("/accounts/{account_id}/stakeholders", response_model=Page[StakeholderSummary], responses=LISTED)
def list_stakeholders(
    runtime: RuntimeDep,
    account_id: UUID,
    principal: Caller,
    page: PageAt,
    unit: Unit = None,
    buying_role: BuyingRole | None = None,
    owner: Annotated[Owner, Query(description="The relationship owner.")] = None,
    status: Annotated[str | None, Query(pattern="^(active|left)$", description="active, or left the customer")] = None,
    q: Annotated[Name, Query(description="Part of the job title, in any case (names are sealed).")] = None,
) -> Response:
    """The account's people by job title, in a unit's subtree, by buying role, owner or status;
    each person's name opened for the reader (``[erased]`` after erasure)."""
    facets = {"role": buying_role.value if buying_role else None, "owner": owner, "status": status}
    return _account_page(runtime, principal, account_id, STAKEHOLDER, facets, page, unit=unit, q=q)


@router.get("/accounts/{account_id}/deals", response_model=Page[DealSummary], responses=LISTED)
def list_deals(
    runtime: RuntimeDep,
    account_id: UUID,
    principal: Caller,
    page: PageAt,
    unit: Unit = None,
    stage: DealStage | None = None,
    owner: Owner = None,
    status: DealStatus | None = None,
    overdue: Annotated[
        bool | None, Query(description="true: only open deals past their expected close; false: the others.")
    ] = None,
    q: Annotated[Name, Query(description="Part of the title, in any case.")] = None,
) -> Response:
    """The account's deals by title, in a unit's subtree, by stage, owner, status, or overdue."""
    facets = {"stage": stage.value if stage else None, "owner": owner, "status": status.value if status else None}
    return _account_page(
        runtime, principal, account_id, DEAL, facets, page, unit=unit, q=q, overdue=overdue, today=_today()
    )
