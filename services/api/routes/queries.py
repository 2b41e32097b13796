"""Reads: the entities as stored (with their ETag, for the next change), and the
projections (account view, stakeholder map, pipeline, strategy flow, audit
trail, one entity's history). A caller reads only the accounts they may read."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

import orjson
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from domain.account import GlobalAccount
from domain.base import GamAggregate
from domain.deal import Deal
from domain.errors import NotFound
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder
from projections.account_view import SECTIONS
from projections.encoding import to_json_value
from projections.ports import AuditQuery
from services.api.access import check_read
from services.api.auth import Caller, Principal
from services.api.commands import etag
from services.api.dependencies import RuntimeDep
from services.api.problems import problem_responses
from services.api.values import Moment, TextWithoutNul
from services.app import GamApplication
from services.bootstrap import Runtime
from services.entity_models import AccountState, DealState, EntityState, PlanState, StakeholderState, entity_json
from services.team import account_as_of as team_account_as_of
from services.team import team_json
from services.time_travel import account_as_of
from services.worklist import DEFAULT_STALE_DAYS, WorklistQuery

router = APIRouter()
S = TypeVar("S", bound=EntityState)

MinPosition = Annotated[
    int | None, Query(ge=1, le=2**62, description="Wait (bounded) until the view has this log position.")
]
NOT_FOUND = problem_responses(
    {
        401: "No valid credential",
        403: "The caller may not read this account",
        404: "Not found (or, with ``as_of``, not yet in existence then)",
        422: "Invalid parameters (field paths in ``errors``)",
        503: "The store is unavailable, or the view has not reached ``min_position`` yet; retry after Retry-After",
    }
)


def account_of(aggregate: GamAggregate) -> UUID:
    return aggregate.id if isinstance(aggregate, GlobalAccount) else aggregate.account_id  # type: ignore[attr-defined]


class Entity(BaseModel, Generic[S]):
    """An entity as stored: its version (also its ETag) and its public state."""

    id: UUID
    version: int
    state: S
    as_of: datetime | None = Field(default=None, description="With ``as_of``: the moment it is shown at.")


AsOf = Annotated[Moment | None, Query(description="As it stood at this moment (time travel).")]


def _entity(
    runtime: Runtime, principal: Principal, kind: type[GamAggregate], entity_id: UUID, as_of: datetime | None = None
) -> JSONResponse:
    app: GamApplication = runtime.app
    aggregate = app.load(kind, entity_id)
    check_read(principal, app, account_of(aggregate))
    if as_of is not None:
        moment = as_of.astimezone(UTC)
        version = runtime.projector.view("audit_trail").versions_at(account_of(aggregate), moment).get(entity_id)
        if version is None:
            raise HTTPException(404, f"{kind.entity_type} {entity_id} did not exist at {moment.isoformat()}")
        aggregate = app.repository.get(entity_id, version=version)
    body = {"id": str(entity_id), "version": aggregate.version, "state": entity_json(aggregate)}
    if as_of is not None:
        return JSONResponse({**body, "as_of": as_of.astimezone(UTC).isoformat()})
    return JSONResponse(body, headers={"ETag": etag(aggregate.version)})


@router.get("/accounts/{account_id}", tags=["accounts"], response_model=Entity[AccountState], responses=NOT_FOUND)
def get_account(runtime: RuntimeDep, account_id: UUID, principal: Caller, as_of: AsOf = None) -> JSONResponse:
    """The account as stored; its ETag is the version to send as If-Match."""
    return _entity(runtime, principal, GlobalAccount, account_id, as_of)


@router.get("/accounts/{account_id}/team", tags=["accounts"], responses=NOT_FOUND)
def get_account_team(runtime: RuntimeDep, account_id: UUID, principal: Caller, as_of: AsOf = None) -> JSONResponse:
    """The account team and what each member may do: who could read or change the
    account, or approve its plans; with ``as_of``, as the team stood at that moment
    (from the account's own events, so exact whatever the views' lag)."""
    check_read(principal, runtime.app, account_id)
    moment = None if as_of is None else as_of.astimezone(UTC)
    try:
        account = team_account_as_of(runtime.app, account_id, moment)
    except NotFound:
        raise HTTPException(404, f"account {account_id} did not exist at {moment and moment.isoformat()}") from None
    approvers = frozenset(runtime.settings.approver_roles)
    return JSONResponse(team_json(account, approvers, moment))


@router.get("/me/worklist", tags=["me"], responses=NOT_FOUND)
def get_my_worklist(
    runtime: RuntimeDep,
    principal: Caller,
    stale_days: Annotated[
        int, Query(ge=1, le=3650, description="Key stakeholders not contacted for this many days are listed.")
    ] = DEFAULT_STALE_DAYS,
    min_position: MinPosition = None,
) -> Response:
    """What waits for the caller on every account whose team they are on: directives
    awaiting their units' answer (days waiting, answer due), their overdue actions,
    their deals past the expected close, key stakeholders they own not contacted in
    ``stale_days``, and plans waiting for their approval (never their own)."""
    query = WorklistQuery(principal.subject, datetime.now(UTC), frozenset(runtime.settings.approver_roles), stale_days)
    result = runtime.reads.worklist(query, min_position=min_position)
    return json_response({"position": result.position, **result.data})


@router.get("/plans/{plan_id}/changes-since-baseline", tags=["plans"], responses=NOT_FOUND)
def get_changes_since_baseline(
    runtime: RuntimeDep,
    plan_id: UUID,
    principal: Caller,
    min_position: MinPosition = None,
) -> Response:
    """Every change to the plan after its approval (answers to the cascade, actions,
    progress, reopening), with who made it, when and why: what moved since the
    baseline the plan was approved as. Empty for a plan never approved."""
    plan = runtime.app.load(AccountPlan, plan_id)
    check_read(principal, runtime.app, plan.account_id)
    baseline = plan.baseline_version
    rows: list[dict[str, Any]] = []
    after, position = 0, 0
    while baseline is not None:
        page = runtime.reads.entity_history(plan_id, after_position=after, limit=1000, min_position=min_position)
        position = page.position
        rows.extend(to_json_value(row) for row in page.data if row.version > baseline)
        if len(page.data) < 1000:
            break
        after = page.data[-1].position
    return json_response(
        {"plan_id": str(plan_id), "baseline_version": baseline, "status": plan.status, "position": position,
         "changes": rows}
    )  # fmt: skip


@router.get("/plans/{plan_id}", tags=["plans"], response_model=Entity[PlanState], responses=NOT_FOUND)
def get_plan(runtime: RuntimeDep, plan_id: UUID, principal: Caller, as_of: AsOf = None) -> JSONResponse:
    """The plan as stored (objectives, cascade, actions, SWOT, whitespace, reviews), with its ETag."""
    return _entity(runtime, principal, AccountPlan, plan_id, as_of)


@router.get(
    "/stakeholders/{stakeholder_id}",
    tags=["stakeholders"],
    response_model=Entity[StakeholderState],
    responses=NOT_FOUND,
)
def get_stakeholder(runtime: RuntimeDep, stakeholder_id: UUID, principal: Caller, as_of: AsOf = None) -> JSONResponse:
    """The person as stored, with their ETag; personal data reads ``[erased]`` after erasure."""
    return _entity(runtime, principal, Stakeholder, stakeholder_id, as_of)


@router.get("/deals/{deal_id}", tags=["deals"], response_model=Entity[DealState], responses=NOT_FOUND)
def get_deal(runtime: RuntimeDep, deal_id: UUID, principal: Caller, as_of: AsOf = None) -> JSONResponse:
    """The deal as stored, with its ETag."""
    return _entity(runtime, principal, Deal, deal_id, as_of)


def json_response(content: dict[str, Any]) -> Response:
    """The answer as orjson writes it: the views' answers are JSON values already, and
    FastAPI's encoder walked every one of them again (anything else goes through
    ``to_json_value``)."""
    return Response(orjson.dumps(content, default=to_json_value), media_type="application/json")


def _account_view(
    runtime: Runtime,
    principal: Principal,
    account_id: UUID,
    min_position: int | None,
    as_of: datetime | None,
    sections: Collection[str] = SECTIONS,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Where the answer stands (its log position, or the moment it was rebuilt at) and
    the view, with only the ``sections`` asked for derived (as of a moment, all of them)."""
    check_read(principal, runtime.app, account_id)
    if as_of is not None:
        moment = as_of.astimezone(UTC)
        state = account_as_of(runtime.app, runtime.projector, account_id, moment)
        view = state.view()
        if view is None:
            raise HTTPException(404, f"account {account_id} did not exist at {moment.isoformat()}")
        return {"as_of": moment.isoformat(), "events": sum(state.versions.values())}, view
    result = runtime.reads.account_view(account_id, now=datetime.now(UTC), min_position=min_position, sections=sections)
    if result.data is None:
        raise HTTPException(404, f"account {account_id} not found")
    return {"position": result.position}, result.data


@router.get("/accounts/{account_id}/view", tags=["views"], responses=NOT_FOUND, response_model=dict[str, Any])
def get_account_view(
    runtime: RuntimeDep, account_id: UUID, principal: Caller, min_position: MinPosition = None, as_of: AsOf = None
) -> Response:
    """Unit tree, team, plans and their cascade, stakeholder map, whitespace, pipeline and roll-ups."""
    where, view = _account_view(runtime, principal, account_id, min_position, as_of)
    return json_response({**where, "view": view})


@router.get(
    "/accounts/{account_id}/stakeholder-map", tags=["views"], responses=NOT_FOUND, response_model=dict[str, Any]
)
def get_stakeholder_map(
    runtime: RuntimeDep, account_id: UUID, principal: Caller, min_position: MinPosition = None, as_of: AsOf = None
) -> Response:
    """People by unit and buying role, the org chart, owner coverage, who has not been contacted lately."""
    where, view = _account_view(runtime, principal, account_id, min_position, as_of, ("stakeholders",))
    return json_response({**where, "stakeholders": view["stakeholders"]})


@router.get("/accounts/{account_id}/pipeline", tags=["views"], responses=NOT_FOUND, response_model=dict[str, Any])
def get_pipeline(
    runtime: RuntimeDep, account_id: UUID, principal: Caller, min_position: MinPosition = None, as_of: AsOf = None
) -> Response:
    """Open deals by stage, level and unit, weighted and unweighted, in the reporting currency; win rate."""
    where, view = _account_view(runtime, principal, account_id, min_position, as_of, ("pipeline", "win_rate"))
    return json_response({**where, "pipeline": view["pipeline"], "win_rate": view["win_rate"]})


@router.get("/plans/{plan_id}/strategy-flow", tags=["views"], responses=NOT_FOUND, response_model=dict[str, Any])
def get_strategy_flow(
    runtime: RuntimeDep, plan_id: UUID, principal: Caller, min_position: MinPosition = None
) -> Response:
    """Each HQ objective's cascade down the tree, the answers and progress back up, and the gaps."""
    plan = runtime.app.load(AccountPlan, plan_id)
    check_read(principal, runtime.app, plan.account_id)
    result = runtime.reads.strategy_flow(plan_id, now=datetime.now(UTC), min_position=min_position)
    if result.data is None:
        raise HTTPException(404, f"plan {plan_id} not found")
    return json_response({"position": result.position, "flow": result.data})


_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def named(runtime: Runtime, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each audit row with ``names``: every id it mentions (its entity, its account,
    the units, objectives, deals and people in its changes) that the lists know, by
    what it names (a person's name reads ``[erased]`` after erasure), so a reader
    need not look ids up to follow the trail."""
    mentioned = [set(_ID.findall(orjson.dumps(row).decode())) for row in rows]
    names = runtime.reads.names_of(set().union(*mentioned)) if rows else {}
    return [
        {**row, "names": {i: names[i] for i in sorted(ids) if i in names}}
        for row, ids in zip(rows, mentioned, strict=True)
    ]


def _load_any(app: GamApplication, entity_id: UUID) -> GamAggregate:
    try:
        return app.load(GamAggregate, entity_id)
    except NotFound:
        raise HTTPException(404, f"entity {entity_id} has no history") from None


@router.get("/audit", tags=["views"], responses=NOT_FOUND)
def get_audit_trail(
    runtime: RuntimeDep,
    principal: Caller,
    account_id: UUID | None = None,
    entity_id: UUID | None = None,
    actor: Annotated[TextWithoutNul | None, Query(max_length=300)] = None,
    event_type: Annotated[TextWithoutNul | None, Query(max_length=100)] = None,
    since: Moment | None = None,
    until: Moment | None = None,
    after: Annotated[int, Query(ge=0, le=2**62, description="Cursor: the ``next`` of the previous page.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """Who changed what, when and why, one row per event with before → after; pages by position."""
    if not principal.has("admin", "compliance"):
        if account_id is None and entity_id is None:
            raise HTTPException(403, "only compliance and admin read the whole trail; name an account")
        scope = account_id if account_id is not None else account_of(_load_any(runtime.app, entity_id))  # type: ignore[arg-type]
        check_read(principal, runtime.app, scope)
        if account_id is None:
            account_id = scope
    query = AuditQuery(account_id, entity_id, actor, event_type, since, until, after, limit)
    result = runtime.reads.audit_trail(query, min_position=min_position)
    rows = named(runtime, [to_json_value(row) for row in result.data])
    next_cursor = rows[-1]["position"] if len(rows) == limit else None
    return {"position": result.position, "rows": rows, "next": next_cursor}


@router.get("/entities/{entity_id}/history", tags=["views"], responses=NOT_FOUND)
def get_entity_history(
    runtime: RuntimeDep,
    entity_id: UUID,
    principal: Caller,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """Every change to one account, plan, stakeholder or deal, oldest first."""
    check_read(principal, runtime.app, account_of(_load_any(runtime.app, entity_id)))
    result = runtime.reads.entity_history(entity_id, after_position=after, limit=limit, min_position=min_position)
    rows = named(runtime, [to_json_value(row) for row in result.data])
    next_cursor = rows[-1]["position"] if len(rows) == limit else None
    return {"position": result.position, "rows": rows, "next": next_cursor}
