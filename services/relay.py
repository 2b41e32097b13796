"""The Kafka relay: a tracked subscription to the event log that publishes every
event, in order, at least once.

Its position is kept in the event store's database (a tracking record, like a
view's) and advanced only after the broker has acknowledged every record up to
it. A relay killed between publishing and recording publishes those events
again, with the same ids, and never skips one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import NamedTuple
from uuid import UUID

import psycopg
from eventsourcing.persistence import PersistenceError, StoredEvent, Tracking
from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from domain.account import GlobalAccount
from infra.event_facts import FactsDecoder
from infra.settings import Settings
from projections.facts import EventFacts
from projections.ports import ViewRecorder
from services.app import GamApplication
from services.envelope import message_of
from services.observability import metrics, tracing
from services.projector import commit_notifications, open_view

log = logging.getLogger(__name__)

BATCH = 500
IN_FLIGHT = 4
"""Batches sent whose acknowledgement the relay has not seen yet."""
POLL_SECONDS = 0.05
"""How often a relay that has published everything looks for more, where the database
sends no notification (SQLite)."""
WAKE_SECONDS = 0.2
"""The longest the relay waits for a commit's NOTIFY (PostgreSQL) before it looks anyway."""
ACK_TIMEOUT_SECONDS = 60.0
OWNER_CACHE_SIZE = 100_000
RETRY_SECONDS = 1.0
REBUILD_AFTER_FAILURES = 3


_UNKNOWN = object()


class _Sent(NamedTuple):
    """A batch handed to the producer: its last position, how many events it read, the
    futures of the records it sent, and when."""

    last_position: int
    events: int
    futures: list[FutureRecordMetadata]
    started: float


class EventAccounts:
    """The account each event belongs to, which keys its record: from the event, or from
    its entity's first event. Every entity names its account in its first event, which
    the relay publishes before its others: it is remembered as it passes, so only a relay
    that starts after an entity was created looks its first event up (one query)."""

    def __init__(self, app: GamApplication, decode: Callable[[StoredEvent], EventFacts | None]) -> None:
        self.app = app
        self._decode = decode
        self._owners: OrderedDict[UUID, object] = OrderedDict()

    def __call__(self, facts: EventFacts) -> UUID | None:
        if issubclass(facts.event_class, GlobalAccount.Event):
            return facts.entity_id
        owner = self._owners.get(facts.entity_id, _UNKNOWN)
        if owner is _UNKNOWN:
            named = facts.payload.get("account_id")
            owner = UUID(named) if isinstance(named, str) else self._account_in_first_event(facts.entity_id)
            self._owners[facts.entity_id] = owner
            if len(self._owners) > OWNER_CACHE_SIZE:
                self._owners.popitem(last=False)
        return owner if isinstance(owner, UUID) else None

    def _account_in_first_event(self, entity_id: UUID) -> UUID | None:
        first = next(iter(self.app.recorder.select_events(entity_id, lte=1)), None)
        facts = self._decode(first) if first is not None else None
        named = facts.payload.get("account_id") if facts is not None else None
        return UUID(named) if isinstance(named, str) else None


def relay_view_name(topic: str) -> str:
    """The relay's tracking is kept per topic, so a backfill to a new topic has its own position."""
    return f"relay_{topic}"


class Relay:
    def __init__(
        self,
        app: GamApplication,
        settings: Settings,
        producer: KafkaProducer,
        topic: str | None = None,
        producer_factory: Callable[[], KafkaProducer] | None = None,
    ):
        self.app = app
        self.topic = topic or settings.kafka_topic
        self.producer = producer
        self.producer_factory = producer_factory
        """Builds a new producer when the current one keeps failing (see :meth:`run`)."""
        self._failures = 0
        self.tracking: ViewRecorder = open_view(settings, relay_view_name(self.topic))
        self._decode = FactsDecoder(app.mapper, keep_sealed=True).decode
        """Events read straight from their JSON, personal data left sealed: it is published
        as the store holds it, and the relay holds no key."""
        self.account_of = EventAccounts(app, self._decode)
        self._commits = commit_notifications(settings, app)
        """What wakes the relay when it has published everything (a NOTIFY on PostgreSQL)."""
        self._stopping = threading.Event()

    def position(self) -> int:
        return self.tracking.max_tracking_id(self.app.name) or 0

    def start_from(self, position: int) -> None:
        """Republish from ``position`` (inclusive) on: forget this topic's stored position."""
        self.tracking.reset(audit_rows=False)
        if position > 1:
            self.tracking.insert_tracking(Tracking(self.app.name, position - 1))

    def publish_batch(self, limit: int = BATCH) -> int:
        """Publish the next events after the stored position and wait until the broker
        has acknowledged them all; returns how many."""
        sent = self._send(self.position() + 1, limit)
        if sent is None:
            return 0
        self.producer.flush(timeout=ACK_TIMEOUT_SECONDS)
        return self._settle(deque([sent]), wait=True)

    def run(self, *, seconds: float | None = None, until_caught_up: bool = False) -> int:
        """Publish until stopped (or ``seconds`` pass, or the log is exhausted if asked).

        Up to :data:`IN_FLIGHT` batches are on their way at once: the next batch is read
        and sent while the broker acknowledges the previous ones, and the position is
        stored once per round for the batches acknowledged so far, oldest first. Waiting
        for each batch's acknowledgement before reading the next left the producer idle
        half the time (0.36–0.57x a bare producer sending the same messages)."""
        with tracing.background():
            return self._run(seconds, until_caught_up)

    def _run(self, seconds: float | None, until_caught_up: bool) -> int:
        deadline = None if seconds is None else time.monotonic() + seconds
        published = 0
        in_flight: deque[_Sent] = deque()
        next_start: int | None = None  # None: read the stored position first
        while (deadline is None or time.monotonic() < deadline) and not self._stopping.is_set():
            try:
                if next_start is None:
                    next_start = self.position() + 1
                sent = self._send(next_start, BATCH) if len(in_flight) < IN_FLIGHT else None
                if sent is not None:
                    in_flight.append(sent)
                    next_start = sent.last_position + 1
                elif in_flight and len(in_flight) < IN_FLIGHT:  # the log is drained: send what lingers
                    self.producer.flush(timeout=ACK_TIMEOUT_SECONDS)
                count = self._settle(in_flight, wait=sent is None)
            except KafkaError as error:
                # Nothing after the stored position counts as published: retry it all.
                in_flight.clear()
                next_start = None
                self._failed(f"publishing failed ({error})")
                continue
            except (PersistenceError, psycopg.Error) as error:
                in_flight.clear()
                next_start = None
                self._failed(f"the event store is unavailable ({type(error).__name__})")
                continue
            if self._failures:
                log.info("publishing again after %d failed attempts; position %d", self._failures, self.position())
                self._failures = 0
            published += count
            if sent is None and not in_flight:
                if until_caught_up:
                    break
                self._idle()
        return published

    def _send(self, start: int, limit: int) -> _Sent | None:
        """Read up to ``limit`` events from ``start`` on and hand them to the producer."""
        notifications = self.app.recorder.select_notifications(start=start, limit=limit)
        if not notifications:
            return None
        decoded = [(n.id, facts) for n in notifications if (facts := self._decode(n)) is not None]
        attributes = {"messaging.destination.name": self.topic, "gam.events": len(decoded)}
        headers_traced = tracing.kafka_headers_traced()
        with tracing.batch("gam relay batch", (facts.traceparent for _, facts in decoded), attributes):
            futures = [self._send_one(facts, position, headers_traced) for position, facts in decoded]
        return _Sent(notifications[-1].id, len(notifications), futures, time.perf_counter())

    def _send_one(self, facts: EventFacts, position: int, headers_traced: bool) -> FutureRecordMetadata:
        """Send one record. Its ``traceparent`` header continues the trace that stored the
        event: written by the kafka-python instrumentation (its send span a child of the
        commit's) when ``headers_traced``, else the stored context as it is."""
        message = message_of(facts, account_id=self.account_of(facts), position=position)
        if facts.traceparent is None:  # nothing to continue: no context to make current
            return self.producer.send(self.topic, key=message.key, value=message.value, headers=message.headers)
        headers = message.headers
        if not headers_traced:
            headers = [*headers, ("traceparent", facts.traceparent.encode())]
        with tracing.under(facts.traceparent):
            return self.producer.send(self.topic, key=message.key, value=message.value, headers=headers)

    def _settle(self, in_flight: deque[_Sent], *, wait: bool) -> int:
        """Take the acknowledged batches off the front (waiting for the oldest if asked)
        and store the position of the last of them; raises if a record was refused.
        Returns how many events those batches held."""
        settled: _Sent | None = None
        count = 0
        while in_flight and (wait or all(future.is_done for future in in_flight[0].futures)):
            sent = in_flight[0]
            for future in sent.futures:
                future.get(timeout=ACK_TIMEOUT_SECONDS)  # raises if the record was not acknowledged
            in_flight.popleft()
            metrics.batch_published(self.topic, len(sent.futures), time.perf_counter() - sent.started)
            settled, count, wait = sent, count + sent.events, False
        if settled is not None:
            self.tracking.insert_tracking(Tracking(self.app.name, settled.last_position))
        return count

    def _idle(self) -> None:
        """Wait for the next commit: its NOTIFY on PostgreSQL (at most :data:`WAKE_SECONDS`),
        else a poll."""
        if self._commits is not None:
            self._commits.wait(WAKE_SECONDS)
        else:
            self._stopping.wait(POLL_SECONDS)

    def _failed(self, why: str) -> None:
        """Wait and retry from the stored position; a producer that failed
        ``REBUILD_AFTER_FAILURES`` times in a row is replaced by a new one. A kafka-python
        producer can stay broken after the broker came back (an idempotent one keeps
        failing ``InitProducerId`` with ``UnknownError``), so retrying with it alone
        looped until a person restarted the relay."""
        self._failures += 1
        metrics.RELAY_RETRIES.labels(self.topic).inc()
        with contextlib.suppress(Exception):  # the store may be what is down
            log.warning("%s; retrying from position %d", why, self.position() + 1)
        self._stopping.wait(RETRY_SECONDS)
        if self.producer_factory is not None and self._failures % REBUILD_AFTER_FAILURES == 0:
            self._rebuild_producer()

    def _rebuild_producer(self) -> None:
        assert self.producer_factory is not None
        try:
            fresh = self.producer_factory()
        except Exception as error:  # the broker is still away: keep the old one, try again later
            log.warning("cannot build a new Kafka producer yet (%s)", error)
            return
        old, self.producer = self.producer, fresh
        with contextlib.suppress(Exception):
            old.close(timeout=0)
        metrics.RELAY_PRODUCER_RESTARTS.inc()
        log.info("built a new Kafka producer after %d failed attempts", self._failures)

    def stop(self) -> None:
        """Ask a running :meth:`run` (in another thread) to return."""
        self._stopping.set()

    def close(self) -> None:
        if self._commits is not None:
            self._commits.close()
        close = getattr(self.tracking, "close", None)
        if close:
            close()
