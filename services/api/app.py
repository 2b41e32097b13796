"""The FastAPI application: the read side of gam over HTTP.

Views are kept up to date in this process (a follower thread) unless another
process holds the views lease (``gam project`` on PostgreSQL); every answer says
which log position its view had reached, and ``min_position`` makes a read wait
(bounded) for a write the caller made, then answer 503 with ``Retry-After``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from infra.settings import Settings
from services.api import compliance, problems
from services.api.auth import Verifier
from services.api.body_limit import BodySizeLimit
from services.api.routes import batches, commands, queries, transparency
from services.bootstrap import Runtime, bootstrap
from services.projector import STANDBY_SECONDS

FOLLOW_SECONDS = 0.2
LINGER_SECONDS = 0.01
"""After a catch-up that found events, how long to let more arrive: under a steady
stream of commands, a follower that loops at once rewrites each account's view
document for every event or two, and takes that CPU from the requests."""
MinPosition = Annotated[int | None, Query(ge=1, description="Wait (bounded) until the view has this log position.")]


class ViewsFollower:
    """Keeps the views current in this process while it holds the views lease
    (``gam project`` on PostgreSQL may hold it instead)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._follow, name="gam-views", daemon=True)

    def _follow(self) -> None:
        lease, projector = self.runtime.lease, self.runtime.projector
        while not self.stopping.is_set():
            try:
                if not lease.holds() or lease.hand_over():
                    # another process writes the views: gam project, or gam rebuild that waited for them
                    self.stopping.wait(STANDBY_SECONDS)
                elif not projector.catch_up():
                    self.stopping.wait(FOLLOW_SECONDS)
                else:
                    self.stopping.wait(LINGER_SECONDS)
            except Exception:
                self.stopping.wait(FOLLOW_SECONDS * 5)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)


def create_app(settings: Settings | None = None) -> FastAPI:
    runtime = bootstrap(settings or Settings()).open("projector", "reads", "idempotency", "lease")
    follower = ViewsFollower(runtime)
    checkpoints = transparency.checkpointer(runtime)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        follower.start()
        checkpoints.start()
        yield
        checkpoints.stop()
        follower.stop()
        runtime.close()

    api = FastAPI(
        title="gam",
        version="0.2.0",
        summary="Global account plans: commands on accounts, plans, stakeholders and deals; "
        "the account view, the strategy flow and the audit trail.",
        description=API_DESCRIPTION,
        lifespan=lifespan,
    )
    problems.install(api)
    api.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_body_bytes)
    api.state.runtime = runtime
    api.state.verifier = Verifier.from_settings(runtime.settings)
    for router in (commands.router, batches.router, queries.router, compliance.router, transparency.router):
        api.include_router(router)

    @api.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @api.get("/readyz", tags=["operations"], responses=problems.problem_responses({503: "The store is unreachable"}))
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

    return api


API_DESCRIPTION = """
Every change is a command that stores immutable events; every read comes from the
projections or the stored entity.

* **Auth**: `Authorization: Bearer <JWT>` (claims `sub`, `roles`, `accounts`, `units`, `exp`)
  or `X-API-Key`. 401 without a valid credential, 403 without the right.
* **Concurrency**: entity responses carry an `ETag` (the version); every change needs
  `If-Match` with it (428 when missing, 412 with `current_version` when stale).
* **Retries**: send `Idempotency-Key` on POSTs; a retry with the same key and body returns
  the first answer (`Idempotent-Replayed: true`) and stores nothing new.
* **Read your writes**: a command answers its log `position`; pass it as `min_position` to a
  query, which waits (bounded) and then answers 503 with `Retry-After`.
* **Errors**: RFC 9457 `application/problem+json`; validation errors list field `path`s;
  a refusal by a domain rule names the `rule`. A refused request stores nothing.
"""
