"""Kafka clients (kafka-python), configured from settings.

The producer waits for every in-sync replica (``acks="all"``) and is idempotent
where the broker allows it, so retries neither duplicate nor reorder a
partition's records; where the broker refuses idempotence, one request in
flight per connection keeps the order. Batching (linger, batch size) and compression
are configuration (``GAM_KAFKA_LINGER_MS``, ``GAM_KAFKA_BATCH_BYTES``,
``GAM_KAFKA_COMPRESSION``); lz4 and zstd come with gam's dependencies (kafka-python reads
them through the ``lz4`` and ``zstandard`` packages).
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from infra.settings import Settings

log = logging.getLogger(__name__)


def create_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
        "client_id": "gam-relay",
        "acks": "all",
        "retries": 2_147_483_647,
        "linger_ms": settings.kafka_linger_ms,
        "batch_size": settings.kafka_batch_bytes,
        "compression_type": None if settings.kafka_compression == "none" else settings.kafka_compression,
        "max_in_flight_requests_per_connection": 5 if settings.kafka_idempotence else 1,
        "enable_idempotence": settings.kafka_idempotence,
        "request_timeout_ms": 15_000,
        **overrides,
    }
    try:
        return KafkaProducer(**config)
    except (KafkaError, ValueError) as error:
        log.warning("broker refused an idempotent producer (%s); using one request in flight", error)
        config.update(enable_idempotence=False, max_in_flight_requests_per_connection=1)
        return KafkaProducer(**config)


def create_consumer(settings: Settings, *, group: str | None, topic: str | None = None) -> KafkaConsumer:
    """A consumer that commits only when told to (after processing)."""
    poll_interval = settings.kafka_max_poll_interval_ms
    return KafkaConsumer(
        topic or settings.kafka_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        group_id=group,
        client_id="gam-subscriber",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_interval_ms=poll_interval,
        session_timeout_ms=min(10_000, poll_interval),
        heartbeat_interval_ms=min(3_000, poll_interval // 3),
    )
