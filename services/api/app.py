"""The FastAPI application: the read side of gam over HTTP.

Views are kept up to date in this process (a follower thread) unless another
process holds the views lease (``gam project`` on PostgreSQL); every answer says
which log position its view had reached, and ``min_position`` makes a read wait
(bounded) for a write the caller made, then answer 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from infra.settings import Settings
from projections.ports import ViewRecorder
from services.api import compliance, problems
from services.api.auth import Verifier
from services.api.body_limit import BodySizeLimit
from services.api.flat_routes import include_flat
from services.api.route_plans import PlannedRoute
from services.api.routes import batches, commands, lists, personal_keys, queries, transparency
from services.bootstrap import Runtime, bootstrap
from services.gc_freeze import freeze_start_up_objects
from services.observability import tracing
from services.observability.http import Guard, RateLimiter, StoreBreaker, StoreKnownDown, StoreWatch, request_guard
from services.observability.metrics import exposition
from services.observability.readiness import describe, observe, progress_source, verdict
from services.projector import STANDBY_SECONDS, WAKE_SECONDS, commit_notifications, follow_step, open_view
from services.relay import relay_view_name

FOLLOW_SECONDS = 0.2
MinPosition = Annotated[int | None, Query(ge=1, description="Wait (bounded) until the view has this log position.")]


class ViewsFollower:
    """Keeps the views current in this process while it holds the views lease
    (``gam project`` on PostgreSQL may hold it instead)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._follow, name="gam-views", daemon=True)
        self.commits = commit_notifications(runtime.settings, runtime.app)
        """What wakes an idle follower (a commit's NOTIFY on PostgreSQL), as in ``gam project``:
        it slept 0.2 s, so a quiet API's read with ``min_position`` waited for that sleep."""

    def _follow(self) -> None:
        with tracing.background():
            self._follow_until_stopped()

    def _follow_until_stopped(self) -> None:
        lease, projector = self.runtime.lease, self.runtime.projector
        while not self.stopping.is_set():
            try:
                if not lease.holds() or lease.hand_over():
                    # another process writes the views: gam project, or gam rebuild that waited for them
                    self._stop_listening()
                    self.stopping.wait(STANDBY_SECONDS)
                else:  # without notifications (SQLite) it polls every FOLLOW_SECONDS
                    wait = self.stopping.wait
                    follow_step(projector, self.commits, wait, poll_seconds=FOLLOW_SECONDS, wake_seconds=WAKE_SECONDS)
            except Exception:
                self.stopping.wait(FOLLOW_SECONDS * 5)

    def _stop_listening(self) -> None:
        """A follower standing by reads no notifications, and PostgreSQL keeps every one for
        each listener until it reads it (commits fail once that queue is full): unlisten."""
        if self.commits is not None:
            self.commits.close()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self._stop_listening()


DOCS_ASSETS = "/docs-assets"
"""Where the documentation pages' scripts, styles and icon are served."""


def create_app(settings: Settings | None = None, *, server_process: bool = False) -> FastAPI:
    """The API. ``server_process``: this process serves it and nothing else (``gam serve``),
    so what start-up built is frozen out of the garbage collector's way once it is up."""
    runtime = bootstrap(settings or Settings()).open("projector", "reads", "idempotency", "access_log", "lease")
    settings = runtime.settings
    follower = ViewsFollower(runtime)
    checkpoints = transparency.checkpointer(runtime)
    readiness = Readiness(runtime)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop_observing = observe(runtime.app, readiness.snapshot)
        follower.start()
        checkpoints.start()
        if watch is not None and breaker.seconds:
            watch.start()
        if server_process:
            freeze_start_up_objects()
        yield
        if watch is not None:
            watch.stop()
        checkpoints.stop()
        follower.stop()
        stop_observing()
        readiness.close()
        runtime.close()

    about: dict[str, Any] = {
        "title": "gam",
        "version": "0.2.0",
        "summary": "Global account plans: commands on accounts, plans, stakeholders and deals; "
        "the account view, the strategy flow and the audit trail.",
        "description": API_DESCRIPTION,
        "lifespan": lifespan,
    }
    if settings.docs:  # Swagger UI and ReDoc from assets served here: no CDN, no browser call elsewhere
        api = FastAPIOffline(**about, static_url=DOCS_ASSETS)
    else:
        api = FastAPI(**about, docs_url=None, redoc_url=None, openapi_url=None)
    api.router.route_class = PlannedRoute  # every route added from here on (services.api.route_plans)
    problems.install(api)
    tracing.instrument_app(api)
    api.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                *("Authorization", "Content-Type", "If-Match"),
                *("Idempotency-Key", "X-API-Key", "X-Correlation-ID"),
            ],
            expose_headers=["ETag", "Location", "Retry-After", "X-Correlation-ID", "Idempotent-Replayed"],
        )
    breaker = StoreBreaker(settings.store_down_seconds)
    watch = StoreWatch(settings.postgres_conninfo(), breaker) if settings.store == "postgres" else None
    per_address = RateLimiter(settings.rate_limit_per_address, settings.rate_limit_burst_seconds)
    api.add_middleware(Guard, measure=settings.metrics)
    api.router.dependencies.insert(0, Depends(request_guard(per_address, breaker)))

    @api.exception_handler(StoreKnownDown)
    async def store_known_down(_: Request, error: StoreKnownDown) -> JSONResponse:
        headers = {"Retry-After": str(error.retry_after)}
        return problems.problem(503, "Store unavailable", str(error), headers, rule="store_unavailable")

    api.state.runtime = runtime
    api.state.verifier = Verifier.from_settings(settings)
    burst = settings.rate_limit_burst_seconds
    api.state.rate_limit_principal = RateLimiter(settings.rate_limit_per_principal, burst)
    api.state.rate_limit_failed_auth = RateLimiter(settings.rate_limit_failed_auth_per_address, burst)
    api.state.breaker = breaker
    for router in (
        commands.router,
        batches.router,
        lists.router,
        queries.router,
        compliance.router,
        transparency.router,
        personal_keys.router,
    ):
        include_flat(api, router)

    @api.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @api.get(
        "/readyz",
        tags=["operations"],
        responses=problems.problem_responses(
            {503: "The store is unreachable, a view (or the watched relay) lags too far, or the check took too long"}
        ),
    )
    async def readyz() -> JSONResponse:
        """Whether this process should get traffic: the store answers (within
        ``GAM_READY_TIMEOUT_SECONDS``) and no view lags more than ``GAM_READY_MAX_LAG_EVENTS``
        events or ``GAM_READY_MAX_LAG_SECONDS`` seconds; each view's position and lag."""
        try:
            snapshot = await asyncio.wait_for(
                anyio.to_thread.run_sync(readiness.snapshot, abandon_on_cancel=True), settings.ready_timeout_seconds
            )
        except TimeoutError:
            return problems.problem(503, "Not ready", "the store did not answer in time", rule="store_unavailable")
        except Exception as error:
            breaker.trip()
            return problems.problem(
                503, "Not ready", f"the store is unavailable ({type(error).__name__})", rule="store_unavailable"
            )
        breaker.reset()
        ok, reasons = verdict(snapshot, settings)
        shown = describe(snapshot)
        if not ok:
            return problems.problem(503, "Not ready", "; ".join(reasons), rule="lagging", **shown)
        return JSONResponse({"status": "ready", **shown})

    if settings.metrics:

        @api.get("/metrics", tags=["operations"], include_in_schema=False)
        def prometheus_metrics() -> Response:
            body, content_type = exposition()
            return Response(body, media_type=content_type)

    return api


def create_worker_app() -> FastAPI:
    """The app of one ``gam serve --workers N`` process: a new interpreter, so its logging
    is configured here as the CLI configures the parent's."""
    from services.observability.logs import configured_from_environment

    configured_from_environment("serve")
    tracing.configured_from_environment("serve")
    return create_app(server_process=True)


class Readiness:
    """What ``/readyz`` and the metrics read: the log, the views and, if watched
    (``GAM_READY_RELAY_TOPIC``), the relay's position, in one bounded snapshot."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._relay: ViewRecorder | None = None
        topic = runtime.settings.ready_relay_topic
        relays = (lambda: {topic: self._relay_position(topic)}) if topic else None
        self.snapshot = progress_source(runtime.app, runtime.projector.positions, relays, runtime.projector.generations)

    def _relay_position(self, topic: str) -> int:
        if self._relay is None:
            self._relay = open_view(self.runtime.settings, relay_view_name(topic))
        return self._relay.max_tracking_id(self.runtime.app.name) or 0

    def close(self) -> None:
        close = getattr(self._relay, "close", None)
        if close:
            close()


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
