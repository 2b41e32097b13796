"""The published form of an event: a CloudEvents 1.0 JSON envelope (structured
mode) plus Kafka headers, with personal data redacted.

Downstream services code against this. ``id`` is the event's stable id
(entity and version), so a republished event carries the same id and
consumers drop duplicates by it. Personal data never leaves in clear: the
stakeholder's ``personal`` block and free-text interaction summaries are
replaced by :data:`REDACTED`, before and after any erasure alike.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.base import GamEvent
from domain.catalog import PERSONAL_DATA_FIELDS, entity_type_of, entity_type_of_class, payload_of
from projections.encoding import dumps, format_time, to_json_value

SPEC_VERSION = "1.0"
SOURCE = "urn:gam:event-store"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
REDACTED = "[redacted]"
PERSONAL_FIELDS = PERSONAL_DATA_FIELDS
"""Fields that hold personal data, by event class; they are published redacted."""


@functools.cache
def cloud_event_type_of(event_class: type[GamEvent]) -> str:
    """``gam.deal.StageAdvanced``: stable, and the key of the event's JSON Schema
    (remembered per class)."""
    return f"gam.{entity_type_of_class(event_class)}.{event_class.__name__}"


def cloud_event_type(event: GamEvent) -> str:
    return cloud_event_type_of(type(event))


def schema_version(event: GamEvent) -> int:
    return int(getattr(type(event), "class_version", 1))


def published_data(event: GamEvent) -> dict[str, Any]:
    """The event's business fields as JSON, personal data redacted."""
    personal = PERSONAL_FIELDS.get(type(event), frozenset())
    data = {k: REDACTED if k in personal else to_json_value(v) for k, v in payload_of(event).items()}
    data["actor"] = event.actor
    data["reason"] = event.reason
    data["version"] = event.originator_version
    return data


@dataclass(frozen=True)
class Message:
    """One Kafka record: key, value and headers."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def envelope(event: GamEvent, *, account_id: UUID | None, position: int) -> dict[str, Any]:
    return {
        "specversion": SPEC_VERSION,
        "id": str(event.event_id),
        "source": SOURCE,
        "type": cloud_event_type(event),
        "subject": f"{entity_type_of(event)}/{event.originator_id}",
        "time": format_time(event.timestamp),
        "datacontenttype": "application/json",
        "dataschema": f"urn:gam:schema:{cloud_event_type(event)}:v{schema_version(event)}",
        "gamaccount": None if account_id is None else str(account_id),
        "gamposition": position,
        "gamcorrelation": str(event.correlation_id),
        "gamcausation": None if event.causation_id is None else str(event.causation_id),
        "data": published_data(event),
    }


def to_message(event: GamEvent, *, account_id: UUID | None, position: int) -> Message:
    """Keyed by account, so each account's events stay in order on one partition."""
    key = str(account_id if account_id is not None else event.originator_id).encode()
    return Message(
        key=key,
        value=dumps(envelope(event, account_id=account_id, position=position)).encode(),
        headers=[
            ("content-type", CONTENT_TYPE.encode()),
            ("ce_type", cloud_event_type(event).encode()),
            ("ce_id", str(event.event_id).encode()),
            ("schema-version", str(schema_version(event)).encode()),
            ("correlation-id", str(event.correlation_id).encode()),
        ],
    )
