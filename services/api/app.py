"""The FastAPI application: the read side of gam over HTTP.

Views are kept up to date in this process (a follower thread) on the embedded
default; every answer says which log position its view had reached, and
``min_position`` makes a read wait (bounded) for a write the caller made, then
answer 503 with ``Retry-After``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse

from infra.settings import Settings
from projections.encoding import to_json_value
from projections.ports import AuditQuery, AuditRow
from services.api import compliance, problems
from services.app import GamApplication
from services.projector import Projector
from services.read_models import ReadModels
from services.time_travel import account_as_of

FOLLOW_SECONDS = 0.2
MinPosition = Annotated[int | None, Query(ge=1, description="Wait (bounded) until the view has this log position.")]


class Runtime:
    """The application, its views, and the thread that keeps them current."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = GamApplication(settings.eventsourcing_env())
        self.projector = Projector.open(self.app, settings)
        self.reads = ReadModels.from_settings(self.projector, settings)
        self.stopping = threading.Event()
        self.follower = threading.Thread(target=self._follow, name="gam-views", daemon=True)

    def _follow(self) -> None:
        while not self.stopping.is_set():
            try:
                if not self.projector.catch_up():
                    self.stopping.wait(FOLLOW_SECONDS)
            except Exception:
                self.stopping.wait(FOLLOW_SECONDS * 5)

    def start(self) -> None:
        self.follower.start()

    def stop(self) -> None:
        self.stopping.set()
        self.follower.join(timeout=5)
        self.projector.close()
        self.app.close()


def _rows(rows: list[AuditRow]) -> list[dict[str, Any]]:
    return [to_json_value(row) for row in rows]


def create_app(settings: Settings | None = None) -> FastAPI:
    runtime = Runtime(settings or Settings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        yield
        runtime.stop()

    api = FastAPI(
        title="gam",
        version="0.1.0",
        summary="Global account plans: the account view, the strategy flow and the audit trail.",
        lifespan=lifespan,
    )
    problems.install(api)
    api.state.runtime = runtime
    api.state.jwt_secret = runtime.settings.jwt_secret
    api.include_router(compliance.router)

    @api.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @api.get("/readyz", tags=["operations"], responses={503: {"description": "store unreachable"}})
    def readyz() -> JSONResponse:
        """The store answers; each view's position and how far it lags the log."""
        try:
            last = runtime.app.recorder.max_notification_id() or 0
            positions = runtime.projector.positions()
        except Exception as error:
            return problems.problem(503, "Store unavailable", str(error))
        body = {
            "status": "ready",
            "store": runtime.settings.describe_store(),
            "log_position": last,
            "views": {name: {"position": p, "lag": last - p} for name, p in positions.items()},
        }
        return JSONResponse(body)

    @api.get("/accounts/{account_id}/view", tags=["views"])
    def get_account_view(
        account_id: UUID,
        min_position: MinPosition = None,
        as_of: Annotated[datetime | None, Query(description="The view as it stood at this moment (UTC).")] = None,
    ) -> dict[str, Any]:
        if as_of is not None:
            moment = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
            state = account_as_of(runtime.app, runtime.projector, account_id, moment)
            if state.document is None:
                raise HTTPException(404, f"account {account_id} did not exist at {as_of.isoformat()}")
            return {"as_of": moment.isoformat(), "events": sum(state.versions.values()), "view": state.view()}
        result = runtime.reads.account_view(account_id, now=datetime.now(UTC), min_position=min_position)
        if result.data is None:
            raise HTTPException(404, f"account {account_id} not found")
        return {"position": result.position, "view": result.data}

    @api.get("/plans/{plan_id}/strategy-flow", tags=["views"])
    def get_strategy_flow(plan_id: UUID, min_position: MinPosition = None) -> dict[str, Any]:
        result = runtime.reads.strategy_flow(plan_id, now=datetime.now(UTC), min_position=min_position)
        if result.data is None:
            raise HTTPException(404, f"plan {plan_id} not found")
        return {"position": result.position, "flow": result.data}

    @api.get("/audit", tags=["views"])
    def get_audit_trail(
        account_id: UUID | None = None,
        entity_id: UUID | None = None,
        actor: Annotated[str | None, Query(max_length=300)] = None,
        event_type: Annotated[str | None, Query(max_length=100)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: Annotated[int, Query(ge=0, description="Position cursor: the last position of the previous page.")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        min_position: MinPosition = None,
    ) -> dict[str, Any]:
        query = AuditQuery(account_id, entity_id, actor, event_type, since, until, after, limit)
        result = runtime.reads.audit_trail(query, min_position=min_position)
        rows = _rows(result.data)
        next_cursor = rows[-1]["position"] if len(rows) == limit else None
        return {"position": result.position, "rows": rows, "next": next_cursor}

    @api.get("/entities/{entity_id}/history", tags=["views"])
    def get_entity_history(
        entity_id: UUID,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        min_position: MinPosition = None,
    ) -> dict[str, Any]:
        result = runtime.reads.entity_history(entity_id, after_position=after, limit=limit, min_position=min_position)
        if not result.data and after == 0:
            raise HTTPException(404, f"entity {entity_id} has no history")
        return {"position": result.position, "rows": _rows(result.data)}

    return api
