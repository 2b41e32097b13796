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
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import PersistenceError, Tracking
from kafka import KafkaProducer
from kafka.errors import KafkaError

from domain.account import GlobalAccount
from domain.base import GamEvent
from infra.settings import Settings
from projections.ports import ViewRecorder
from services.app import GamApplication
from services.envelope import to_message
from services.observability import metrics, tracing
from services.projector import open_view

log = logging.getLogger(__name__)

BATCH = 500
POLL_SECONDS = 0.05
ACK_TIMEOUT_SECONDS = 60.0
OWNER_CACHE_SIZE = 100_000
RETRY_SECONDS = 1.0
REBUILD_AFTER_FAILURES = 3


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
        self._owners: OrderedDict[UUID, UUID | None] = OrderedDict()
        self._stopping = threading.Event()

    def position(self) -> int:
        return self.tracking.max_tracking_id(self.app.name) or 0

    def start_from(self, position: int) -> None:
        """Republish from ``position`` (inclusive) on: forget this topic's stored position."""
        self.tracking.reset(audit_rows=False)
        if position > 1:
            self.tracking.insert_tracking(Tracking(self.app.name, position - 1))

    def publish_batch(self, limit: int = BATCH) -> int:
        """Publish the next events after the stored position; returns how many."""
        notifications = self.app.recorder.select_notifications(start=self.position() + 1, limit=limit)
        if not notifications:
            return 0
        events = [(n.id, e) for n in notifications if isinstance(e := self.app.mapper.to_domain_event(n), GamEvent)]
        traceparents = [getattr(event, "traceparent", None) for _, event in events]
        attributes = {"messaging.destination.name": self.topic, "gam.events": len(events)}
        with tracing.batch("gam relay batch", traceparents, attributes):
            futures = [self._send(event, position, traceparent) for (position, event), traceparent in zip(
                events, traceparents, strict=True)]  # fmt: skip
            with metrics.publish_timed(self.topic, len(futures)):
                self.producer.flush(timeout=ACK_TIMEOUT_SECONDS)
                for future in futures:
                    future.get(timeout=ACK_TIMEOUT_SECONDS)  # raises if any record was not acknowledged
            self.tracking.insert_tracking(Tracking(self.app.name, notifications[-1].id))
        return len(notifications)

    def _send(self, event: GamEvent, position: int, traceparent: str | None) -> Any:
        """Send one record. Its ``traceparent`` header continues the trace that stored the
        event: written by the kafka-python instrumentation (its send span a child of the
        commit's) when tracing, else the stored context as it is."""
        message = to_message(event, account_id=self.account_of(event), position=position)
        headers = message.headers
        if traceparent is not None and not tracing.kafka_headers_traced():
            headers = [*headers, ("traceparent", traceparent.encode())]
        with tracing.under(traceparent):
            return self.producer.send(self.topic, key=message.key, value=message.value, headers=headers)

    def run(self, *, seconds: float | None = None, until_caught_up: bool = False) -> int:
        """Publish until stopped (or ``seconds`` pass, or the log is exhausted if asked)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        published = 0
        while (deadline is None or time.monotonic() < deadline) and not self._stopping.is_set():
            try:
                count = self.publish_batch()
            except KafkaError as error:
                # Nothing after the stored position counts as published: retry it all.
                self._failed(f"publishing failed ({error})")
                continue
            except (PersistenceError, psycopg.Error) as error:
                self._failed(f"the event store is unavailable ({type(error).__name__})")
                continue
            if self._failures:
                log.info("publishing again after %d failed attempts; position %d", self._failures, self.position())
                self._failures = 0
            published += count
            if count == 0:
                if until_caught_up:
                    break
                self._stopping.wait(POLL_SECONDS)
        return published

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

    def account_of(self, event: GamEvent) -> UUID | None:
        """The account an event belongs to: from the event, or from its entity's first event."""
        if isinstance(event, GlobalAccount.Event):
            return event.originator_id
        account_id = getattr(event, "account_id", None)
        if isinstance(account_id, UUID):
            return account_id
        if event.originator_id not in self._owners:
            first = next(iter(self.app.events.get(event.originator_id, lte=1)), None)
            self._owners[event.originator_id] = getattr(first, "account_id", None)
            if len(self._owners) > OWNER_CACHE_SIZE:
                self._owners.popitem(last=False)
        return self._owners[event.originator_id]

    def close(self) -> None:
        close = getattr(self.tracking, "close", None)
        if close:
            close()
