"""The reference consumer: how a downstream service subscribes to gam's events.

It joins a consumer group, processes each record, and commits the group's
offsets only after processing, so a crash re-delivers rather than loses.
Re-delivery and a relay's republishing mean a consumer sees some events twice:
each event's ``id`` is stable, and within one entity (``subject``) versions
only grow, so :class:`Deduplicator` drops anything at or below the last version
seen for its subject. A durable service keeps that per-subject version in its
own database, in the same transaction as its own effects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from kafka.structs import OffsetAndMetadata, TopicPartition

from infra.kafka import create_consumer
from infra.settings import Settings

Envelope = dict[str, Any]


class Deduplicator:
    def __init__(self) -> None:
        self.last_version: dict[str, int] = {}

    def is_new(self, envelope: Envelope) -> bool:
        subject, version = envelope["subject"], int(envelope["data"]["version"])
        if version <= self.last_version.get(subject, 0):
            return False
        self.last_version[subject] = version
        return True


def describe(envelope: Envelope) -> str:
    """One readable line per event."""
    data = envelope["data"]
    fields = ", ".join(
        f"{k}={v}" for k, v in data.items() if k not in {"actor", "reason", "version"} and v not in (None, [], "")
    )
    reason = f" — {data['reason']}" if data.get("reason") else ""
    return f"#{envelope['gamposition']} {envelope['time']} {envelope['type']} by {data['actor']}: {fields}{reason}"


def subscribe(
    settings: Settings,
    *,
    group: str,
    handle: Callable[[Envelope], None],
    account: str | None = None,
    topic: str | None = None,
    seconds: float | None = None,
    max_events: int | None = None,
) -> int:
    """Consume, drop duplicates, hand each new event to ``handle``; commit exactly what was processed."""
    consumer = create_consumer(settings, group=group, topic=topic)
    dedup = Deduplicator()
    handled = 0
    deadline = None if seconds is None else time.monotonic() + seconds

    def wanted() -> bool:
        return (deadline is None or time.monotonic() < deadline) and (max_events is None or handled < max_events)

    try:
        while wanted():
            processed: dict[TopicPartition, int] = {}
            for partition, records in consumer.poll(timeout_ms=500).items():
                for record in records:
                    if not wanted():
                        break
                    envelope = json.loads(record.value)
                    if (account is None or envelope.get("gamaccount") == account) and dedup.is_new(envelope):
                        handle(envelope)
                        handled += 1
                    processed[partition] = record.offset + 1
            if processed:
                consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in processed.items()})
    finally:
        consumer.close()
    return handled
