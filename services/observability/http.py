"""What stands in front of every API request: its correlation id and log line, its
metrics, the rate limits, and failing fast while the store is known to be down.

One pure ASGI middleware (:class:`Guard`, a :class:`~services.asgi.HttpMiddleware`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.asgi import HttpMiddleware
from services.observability import logs, metrics, tracing

log = logging.getLogger("gam.http")

OPERATIONS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Never limited nor failed fast: they are how operators see what is going on."""

MAX_KEYS = 100_000


class RateLimiter:
    """A token bucket per key (a caller, an address): ``rate`` requests a second on
    average, bursts of ``rate * burst_seconds``. ``rate`` 0 means no limit."""

    def __init__(self, rate: float, burst_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * burst_seconds)
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int | None:
        """Take one request's token; None if allowed, else the seconds until one is free."""
        if not self.rate:
            return None
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            allowed = tokens >= 1
            self._buckets[key] = (tokens - 1 if allowed else tokens, now)
            if len(self._buckets) > MAX_KEYS:
                self._buckets.popitem(last=False)
        return None if allowed else max(1, math.ceil((1 - tokens) / self.rate))


class StoreBreaker:
    """Remembers that the store is down, so requests answer 503 at once instead of each
    waiting for the database's timeouts (the event store's recorder retries a lost
    connection ten times: a request could hang for 20 s). It opens for ``seconds``
    when a request failed on the store, and for as long as :class:`StoreWatch` finds
    the database unreachable."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._until = 0.0
        self.down = False

    def trip(self) -> None:
        if self.seconds and not self.is_open():
            log.warning("the store is unavailable; answering 503 at once for %g s", self.seconds)
        self._until = time.monotonic() + self.seconds

    def reset(self) -> None:
        """The store answered (a readiness check, or the watch)."""
        if self.is_open():
            log.info("the store answers again")
        self._until = 0.0
        self.down = False

    def is_open(self) -> bool:
        return self.down or time.monotonic() < self._until

    def retry_after(self) -> int:
        return max(1, math.ceil(self._until - time.monotonic()))


class StoreWatch:
    """Asks PostgreSQL ``SELECT 1`` every ``interval`` seconds on a connection of its own
    and holds the breaker open while it gets no answer: the API knows the database is
    gone within a second or two, not when a request has waited out every retry."""

    def __init__(self, conninfo: str, breaker: StoreBreaker, interval: float = 1.0, timeout: int = 2) -> None:
        self.conninfo = conninfo
        self.breaker = breaker
        self.interval = interval
        self.timeout = timeout
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="gam-store-watch", daemon=True)

    def _watch(self) -> None:
        import psycopg

        connection: psycopg.Connection[tuple[object, ...]] | None = None
        while not self.stopping.is_set():
            try:
                if connection is None or connection.closed:
                    connection = psycopg.connect(
                        self.conninfo, autocommit=True, connect_timeout=self.timeout, application_name="gam store watch"
                    )
                connection.execute("SELECT 1")
                self._answered(True)
            except psycopg.Error as error:
                if not self.breaker.down:
                    log.warning("lost the database (%s); answering 503 at once until it is back", type(error).__name__)
                self._answered(False)
                if connection is not None:
                    connection.close()
                connection = None
            self.stopping.wait(self.interval)
        if connection is not None:
            connection.close()

    def _answered(self, up: bool) -> None:
        if up and self.breaker.down:
            self.breaker.reset()
        self.breaker.down = not up

    def start(self) -> StoreWatch:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")


class Guard(HttpMiddleware):
    """Correlation id, log line and metrics of each request."""

    def __init__(self, app: ASGIApp, *, measure: bool = True) -> None:
        super().__init__(app)
        self.measure = measure

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        correlation = _header(scope, b"x-correlation-id")
        if not correlation:
            correlation = str(uuid.uuid4())
            scope["headers"] = [*scope.get("headers", ()), (b"x-correlation-id", correlation.encode())]
        incoming = tracing.incoming.set(tracing.valid_traceparent(_header(scope, b"traceparent")))
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with logs.context(correlation=correlation, trace=tracing.current_trace_id()):
            try:
                await self.app(scope, receive, sending)
            finally:
                self._record(scope, status, time.perf_counter() - started)
                tracing.incoming.reset(incoming)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route, method = _route(scope), scope["method"]
        if self.measure:
            metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
            metrics.HTTP_LATENCY.labels(route, method).observe(seconds)
        if scope["path"] in OPERATIONS_PATHS and status < 400:
            return  # probes and scrapes every few seconds would drown the requests
        state = scope.get("state") or {}
        log.log(
            logging.WARNING if status >= 500 else logging.INFO,
            "%s %s %d %.1f ms",
            method,
            route,
            status,
            seconds * 1000,
            extra={
                "route": route,
                "method": method,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                **({"actor": state["actor"]} if state.get("actor") else {}),
            },
        )


class StoreKnownDown(Exception):
    """The store is known to be down: answer 503 without trying it."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("the event store is unavailable; retry shortly")
        self.retry_after = retry_after


def request_guard(per_address: RateLimiter, breaker: StoreBreaker) -> Callable[[Request], Awaitable[None]]:
    """The API's first dependency, run once the route is known (so its metrics and log
    line name the route) and before authentication: 429 past the client address's
    limit, 503 at once while the store is known to be down."""

    async def guard(request: Request) -> None:
        if request.url.path in OPERATIONS_PATHS:
            return
        address = request.client.host if request.client else "unknown"
        wait = per_address.retry_after(address)
        if wait is not None:
            metrics.HTTP_RATE_LIMITED.labels("address").inc()
            raise HTTPException(429, "too many requests from this address", headers={"Retry-After": str(wait)})
        if breaker.is_open():
            metrics.HTTP_FAST_FAILED.inc()
            raise StoreKnownDown(breaker.retry_after())

    return guard
