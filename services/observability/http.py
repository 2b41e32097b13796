"""What stands in front of every API request: its correlation id and log line, its
metrics, the rate limits, and failing fast while the store is known to be down.

One pure ASGI middleware (:class:`Guard`), so a request costs one extra call, not a
task per layer as Starlette's ``BaseHTTPMiddleware`` would.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.observability import logs, metrics

log = logging.getLogger("gam.http")

OPERATIONS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Never limited nor failed fast: they are how operators see what is going on."""

TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
MAX_KEYS = 100_000


class RateLimiter:
    """A token bucket per key (a caller, an address): ``rate`` requests a second on
    average, bursts of ``rate * burst_seconds``. ``rate`` 0 means no limit."""

    def __init__(self, rate: float, burst_seconds: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * burst_seconds)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int | None:
        """Take one request's token; None if allowed, else the seconds until one is free."""
        if not self.rate:
            return None
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            allowed = tokens >= 1
            self._buckets[key] = (tokens - 1 if allowed else tokens, now)
            if len(self._buckets) > MAX_KEYS:
                self._buckets.popitem(last=False)
        return None if allowed else max(1, math.ceil((1 - tokens) / self.rate))


class StoreBreaker:
    """Remembers that the store just failed a request, so the next ones answer 503 at
    once for ``seconds`` instead of each waiting for the database's timeouts; a
    request after that goes through and finds out again."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._until = 0.0

    def trip(self) -> None:
        if self.seconds and not self.is_open():
            log.warning("the store is unavailable; answering 503 at once for %g s", self.seconds)
        self._until = time.monotonic() + self.seconds

    def reset(self) -> None:
        if self.is_open():
            log.info("the store answers again")
        self._until = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self._until

    def retry_after(self) -> int:
        return max(1, math.ceil(self._until - time.monotonic()))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")


def _problem(status: int, title: str, detail: str, retry_after: int, **extra: Any) -> tuple[bytes, list[Any]]:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
    ]
    return body, headers


class Guard:
    """Correlation id, log line and metrics of each request; 429 past the per-address
    limit; 503 at once while the store is known to be down."""

    def __init__(self, app: ASGIApp, *, per_address: RateLimiter, breaker: StoreBreaker, measure: bool = True) -> None:
        self.app = app
        self.per_address = per_address
        self.breaker = breaker
        self.measure = measure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        correlation = _header(scope, b"x-correlation-id")
        if not correlation:
            correlation = str(uuid.uuid4())
            scope["headers"] = [*scope.get("headers", ()), (b"x-correlation-id", correlation.encode())]
        parent = TRACEPARENT.match(_header(scope, b"traceparent") or "")
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with logs.context(correlation=correlation, trace=parent.group(1) if parent else None):
            try:
                refusal = self._refusal(scope)
                if refusal is None:
                    await self.app(scope, receive, sending)
                else:
                    status, body, headers = refusal
                    await send({"type": "http.response.start", "status": status, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
            finally:
                self._record(scope, status, time.perf_counter() - started)

    def _refusal(self, scope: Scope) -> tuple[int, bytes, list[Any]] | None:
        if scope["path"] in OPERATIONS_PATHS:
            return None
        client = scope.get("client")
        address = client[0] if client else "unknown"
        wait = self.per_address.retry_after(address)
        if wait is not None:
            metrics.HTTP_RATE_LIMITED.labels("address").inc()
            body, headers = _problem(429, "Too Many Requests", "too many requests from this address", wait)
            return 429, body, headers
        if self.breaker.is_open():
            metrics.HTTP_FAST_FAILED.inc()
            detail = "the event store is unavailable; retry shortly"
            body, headers = _problem(
                503, "Store unavailable", detail, self.breaker.retry_after(), rule="store_unavailable"
            )
            return 503, body, headers
        return None

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
