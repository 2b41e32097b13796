"""Prometheus metrics of a gam process, in the default registry.

Labels are low-cardinality on purpose: a route *template*, a method, a status, a
command *type*, an outcome, a rule, a view or topic name. No entity id, caller or
correlation id is ever a label (those go to the logs), so a busy server keeps a
bounded number of series.

Counters and histograms are moved where things happen (one-line hooks in the bus,
the application's commit, the projector and the relay); positions and lags are
read from the store when Prometheus scrapes (:class:`ProgressCollector`), so they
are true also of views written by another process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from infra import hash_chain, views_lease

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "gam_http_requests", "HTTP requests answered, by route template, method and status.", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "gam_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_RATE_LIMITED = Counter("gam_http_rate_limited", "Requests answered 429, by what was limited.", ["limit"])
HTTP_FAST_FAILED = Counter("gam_http_store_down_fast_failures", "Requests answered 503 at once: the store is down.")

COMMANDS = Counter(
    "gam_commands",
    "Commands handled, by type and outcome (accepted, refused, conflict, forbidden, idempotent_replay, failed).",
    ["type", "outcome"],
)
REFUSALS = Counter("gam_command_refusals", "Commands refused by a rule of the domain, by rule.", ["rule"])
COMMAND_LATENCY = Histogram(
    "gam_command_duration_seconds", "Time to load, decide and store one command (or batch).", buckets=LATENCY_BUCKETS
)
COMMITS = Counter("gam_commits", "Transactions that stored events.")
EVENTS_STORED = Counter("gam_events_stored", "Events stored by this process.")
COMMIT_LATENCY = Histogram(
    "gam_commit_duration_seconds",
    "Time to store one transaction of events (waiting for the store's write lock included).",
    buckets=LATENCY_BUCKETS,
)

STORE_LOCK_WAIT = Histogram(
    "gam_store_write_lock_wait_seconds",
    "Time a storing transaction waited for the store's write lock (PostgreSQL's table lock, "
    "SQLite's BEGIN IMMEDIATE); part of gam_commit_duration_seconds.",
    buckets=LATENCY_BUCKETS,
)

VIEW_EVENTS_APPLIED = Counter("gam_view_events_applied", "Events applied to a view by this process.", ["view"])
VIEW_BATCH_LATENCY = Histogram(
    "gam_view_batch_duration_seconds",
    "Time to apply and store one batch of events to the views.",
    buckets=LATENCY_BUCKETS,
)
VIEW_PASS_PROGRESS = Gauge(
    "gam_view_catch_up_progress_ratio",
    "Share of the log a view has processed in this process's current catch-up or rebuild "
    "(0 to 1; 1 once it reached the end of the log it set out for).",
    ["view"],
)
VIEW_REBUILDING = Gauge("gam_view_rebuilding", "1 while this process rebuilds the view from the first event.", ["view"])
VIEWS_LEASE_HELD = Gauge("gam_views_lease_held", "1 while this process holds the views lease (writes the views).")
VIEWS_LEASE_CHANGES = Counter("gam_views_lease_changes", "Times this process took or lost the views lease.", ["change"])

RELAY_PUBLISHED = Counter("gam_relay_published", "Events the broker acknowledged, by topic.", ["topic"])
RELAY_PUBLISH_LATENCY = Histogram(
    "gam_relay_publish_duration_seconds",
    "Time from sending a batch to the broker's last acknowledgement.",
    buckets=LATENCY_BUCKETS,
)
RELAY_RETRIES = Counter("gam_relay_retries", "Batches the relay had to publish again, by topic.", ["topic"])
RELAY_PRODUCER_RESTARTS = Counter("gam_relay_producer_restarts", "Times the relay built a new Kafka producer.")


OUTCOMES = ("accepted", "refused", "conflict", "forbidden", "idempotent_replay", "failed")


def outcome_of(error: BaseException) -> str:
    """How a command that raised ``error`` ended, as a metric outcome."""
    from domain.errors import ConcurrencyConflict, DomainError

    if isinstance(error, ConcurrencyConflict):
        return "conflict"
    if isinstance(error, DomainError):
        return "refused"
    status = getattr(error, "status_code", None)
    if status in (401, 403):
        return "forbidden"
    if isinstance(status, int) and 400 <= status < 500:
        return "refused"
    return "failed"


@contextmanager
def command_handled(type_name: str) -> Iterator[None]:
    """Count one command (or a batch's commands) by type and outcome, and time it."""
    started = time.perf_counter()
    try:
        yield
    except BaseException as error:
        refused(type_name, error)
        raise
    finally:
        COMMAND_LATENCY.observe(time.perf_counter() - started)
    COMMANDS.labels(type_name, "accepted").inc()


def refused(type_name: str, error: BaseException) -> None:
    """Count a command that ``error`` stopped (and its rule, if a rule did)."""
    from services.bus import BatchRefused

    if isinstance(error, BatchRefused):
        error = error.refusal
    outcome = outcome_of(error)
    COMMANDS.labels(type_name, outcome).inc()
    rule = getattr(error, "rule", None)
    if outcome in ("refused", "conflict") and isinstance(rule, str):
        REFUSALS.labels(rule).inc()
        log.info("command %s refused by rule %s", type_name, rule)


def accepted(type_names: Iterable[str]) -> None:
    for name in type_names:
        COMMANDS.labels(name, "accepted").inc()


def replayed(type_name: str) -> None:
    COMMANDS.labels(type_name, "idempotent_replay").inc()


@contextmanager
def commit_timed(events: int) -> Iterator[None]:
    """Time one storing transaction; count it and its events once it succeeded."""
    started = time.perf_counter()
    yield
    COMMIT_LATENCY.observe(time.perf_counter() - started)
    COMMITS.inc()
    EVENTS_STORED.inc(events)


def views_advanced(before: Mapping[str, int], after: Mapping[str, int], seconds: float) -> None:
    """One batch of the projector: how many events each view applied, and how long it took."""
    for name, position in after.items():
        applied = position - before.get(name, position)
        if applied > 0:
            VIEW_EVENTS_APPLIED.labels(name).inc(applied)
    VIEW_BATCH_LATENCY.observe(seconds)


def views_progressed(positions: Mapping[str, int], last: int) -> None:
    """Where a catch-up (or rebuild) is, per view, against the end of the log it set out for."""
    for name, position in positions.items():
        VIEW_PASS_PROGRESS.labels(name).set(min(1.0, position / last) if last else 1.0)


@contextmanager
def rebuilding(names: Iterable[str]) -> Iterator[None]:
    chosen = list(names)
    for name in chosen:
        VIEW_REBUILDING.labels(name).set(1)
        VIEW_PASS_PROGRESS.labels(name).set(0)
    try:
        yield
    finally:
        for name in chosen:
            VIEW_REBUILDING.labels(name).set(0)


def batch_published(topic: str, records: int, seconds: float) -> None:
    """One batch acknowledged ``seconds`` after it was sent."""
    RELAY_PUBLISH_LATENCY.observe(seconds)
    RELAY_PUBLISHED.labels(topic).inc(records)


def lease_changed(held: bool) -> None:
    if held:
        VIEWS_LEASE_HELD.inc()
    else:
        VIEWS_LEASE_HELD.dec()
    VIEWS_LEASE_CHANGES.labels("taken" if held else "given_up").inc()


views_lease.lease_observer = lease_changed
hash_chain.lock_wait_observer = STORE_LOCK_WAIT.observe


# --------------------------------------------------------------------------- progress read at scrape time


@dataclass(frozen=True)
class Progress:
    """Where one follower of the log is: its position, and how far behind the log it is."""

    position: int
    lag_events: int
    lag_seconds: float


@dataclass(frozen=True)
class Generation:
    """A view's live generation and, while a rebuild builds the next one beside it (or
    left it unfinished), that one and its progress."""

    live: int
    building: int | None = None
    rebuild: Progress | None = None


@dataclass(frozen=True)
class Snapshot:
    """What a scrape (or a readiness check) found: the log's last position, and each follower's progress."""

    log_position: int
    views: dict[str, Progress]
    relays: dict[str, Progress]
    generations: dict[str, Generation] = field(default_factory=dict)


ProgressSource = Callable[[], Snapshot]


def progress_of(position: int, last: int, oldest_unapplied: Callable[[int], datetime | None]) -> Progress:
    """A follower at ``position`` of a log ending at ``last``; its lag in seconds is the age of
    the first event it has not applied yet (0 when it is up to date)."""
    lag = max(0, last - position)
    seconds = 0.0
    if lag:
        stored_at = oldest_unapplied(position + 1)
        if stored_at is not None:
            seconds = max(0.0, (datetime.now(UTC) - stored_at).total_seconds())
    return Progress(position, lag, seconds)


class ProgressCollector(Collector):
    """Positions and lags, read from the store when scraped. A process registers one
    source (its runtime, or the relay); the latest registered one is read."""

    def __init__(self, timeout: float = 2.0) -> None:
        self._sources: list[ProgressSource] = []
        self._lock = threading.Lock()
        self.timeout = timeout
        """A scrape waits this long for the store, then reports it down (``gam_store_up`` 0)."""

    def add(self, source: ProgressSource) -> Callable[[], None]:
        with self._lock:
            self._sources.append(source)

        def remove() -> None:
            with self._lock:
                if source in self._sources:
                    self._sources.remove(source)

        return remove

    def _read(self, source: ProgressSource) -> Snapshot:
        """The source's snapshot, read in a thread of its own so that a scrape answers in
        time; a read stuck on a dead database is left to finish (or fail) by itself, and
        the next scrape does not queue behind it."""
        found: list[Snapshot | BaseException] = []

        def read() -> None:
            try:
                found.append(source())
            except BaseException as error:
                found.append(error)

        reader = threading.Thread(target=read, name="gam-metrics-read", daemon=True)
        reader.start()
        reader.join(self.timeout)
        if not found:
            raise TimeoutError(f"the store did not answer within {self.timeout:g} s")
        if isinstance(found[0], BaseException):
            raise found[0]
        return found[0]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            sources = list(self._sources)
        up = GaugeMetricFamily("gam_store_up", "1 when the event store answered this scrape.")
        if not sources:
            return
        try:
            snapshot = self._read(sources[-1])
        except Exception as error:
            log.warning("metrics: the store did not answer (%s)", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        last = GaugeMetricFamily("gam_log_position", "Position of the last event stored.")
        last.add_metric([], snapshot.log_position)
        yield last
        yield from _progress_families("view", snapshot.views)
        yield from _progress_families("relay", snapshot.relays)
        yield from _generation_families(snapshot.generations)


def _generation_families(generations: Mapping[str, Generation]) -> Iterator[GaugeMetricFamily]:
    if not generations:
        return
    live = GaugeMetricFamily("gam_view_generation", "The view's live generation (readers see it).", labels=["view"])
    building = GaugeMetricFamily(
        "gam_view_rebuild_generation",
        "The generation a rebuild builds beside the live one (0: none).",
        labels=["view"],
    )
    position = GaugeMetricFamily(
        "gam_view_rebuild_position", "Last log position the generation being built has processed.", labels=["view"]
    )
    lag = GaugeMetricFamily(
        "gam_view_rebuild_lag_events",
        "Events stored that the generation being built has not processed.",
        labels=["view"],
    )
    for name, g in generations.items():
        live.add_metric([name], g.live)
        building.add_metric([name], g.building or 0)
        if g.rebuild is not None:
            position.add_metric([name], g.rebuild.position)
            lag.add_metric([name], g.rebuild.lag_events)
    yield from (live, building, position, lag)


def _progress_families(kind: str, progress: Mapping[str, Progress]) -> Iterator[GaugeMetricFamily]:
    label = "view" if kind == "view" else "topic"
    position = GaugeMetricFamily(f"gam_{kind}_position", f"Last log position the {kind} has processed.", labels=[label])
    events = GaugeMetricFamily(
        f"gam_{kind}_lag_events", f"Events stored that the {kind} has not processed.", labels=[label]
    )
    seconds = GaugeMetricFamily(
        f"gam_{kind}_lag_seconds",
        f"Age of the oldest event the {kind} has not processed (0 if none).",
        labels=[label],
    )
    for name, p in progress.items():
        position.add_metric([name], p.position)
        events.add_metric([name], p.lag_events)
        seconds.add_metric([name], p.lag_seconds)
    yield from (position, events, seconds)


PROGRESS = ProgressCollector()
REGISTRY.register(PROGRESS)


class PoolCollector(Collector):
    """Connection-pool use of the PostgreSQL pools this process registered (by pool name)."""

    def __init__(self) -> None:
        self._pools: dict[str, Any] = {}

    def add(self, name: str, pool: Any) -> None:
        self._pools[name] = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not self._pools:
            return
        size = GaugeMetricFamily("gam_db_pool_connections", "Connections a pool holds open.", labels=["pool"])
        idle = GaugeMetricFamily("gam_db_pool_idle_connections", "Connections idle in a pool.", labels=["pool"])
        waiting = GaugeMetricFamily("gam_db_pool_waiting", "Requests waiting for a connection.", labels=["pool"])
        for name, pool in list(self._pools.items()):
            stats = pool.get_stats()
            size.add_metric([name], stats.get("pool_size", 0))
            idle.add_metric([name], stats.get("pool_available", 0))
            waiting.add_metric([name], stats.get("requests_waiting", 0))
        yield from (size, idle, waiting)


POOLS = PoolCollector()
REGISTRY.register(POOLS)


def watch_pools(app: Any) -> None:
    """Report the application's PostgreSQL pool (nothing on SQLite and memory stores)."""
    pool = getattr(getattr(app.recorder, "datastore", None), "pool", None)
    if pool is not None and hasattr(pool, "get_stats"):
        POOLS.add("events", pool)


def exposition() -> tuple[bytes, str]:
    """The metrics as Prometheus text, with their content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
