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

from domain.base import GamEvent, event_id_for
from domain.catalog import PERSONAL_DATA_FIELDS, entity_type_of_class, personal_fields, subject_in
from projections.encoding import dumps_bytes
from projections.facts import EventFacts, facts_of

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
    return schema_version_of(type(event))


def schema_version_of(event_class: type[GamEvent]) -> int:
    return int(getattr(event_class, "class_version", 1))


def published_data(facts: EventFacts) -> dict[str, Any]:
    """The event's business fields as JSON, personal data redacted: each personal field that
    holds a value about someone (a deal's evidence that names no one is business text)."""
    personal = personal_fields(facts.event_class)
    data = {
        k: REDACTED
        if k in personal and v is not None and subject_in(personal[k], facts.payload, facts.entity) is not None
        else v
        for k, v in facts.payload.items()
    }
    data["actor"] = facts.actor
    data["reason"] = facts.reason
    data["version"] = facts.version
    return data


@dataclass(frozen=True)
class Message:
    """One Kafka record: key, value and headers."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def envelope(facts: EventFacts, *, account_id: UUID | None, position: int) -> dict[str, Any]:
    cls = facts.event_class
    kind = cloud_event_type_of(cls)
    return {
        "specversion": SPEC_VERSION,
        "id": str(event_id_for(facts.entity_id, facts.version)),
        "source": SOURCE,
        "type": kind,
        "subject": f"{entity_type_of_class(cls)}/{facts.entity}",
        "time": facts.at,
        "datacontenttype": "application/json",
        "dataschema": f"urn:gam:schema:{kind}:v{schema_version_of(cls)}",
        "gamaccount": None if account_id is None else str(account_id),
        "gamposition": position,
        "gamcorrelation": str(facts.correlation_id),
        "gamcausation": None if facts.causation_id is None else str(facts.causation_id),
        "data": published_data(facts),
    }


def to_message(event: GamEvent, *, account_id: UUID | None, position: int) -> Message:
    """Keyed by account, so each account's events stay in order on one partition."""
    return message_of(facts_of(event), account_id=account_id, position=position)


def message_of(facts: EventFacts, *, account_id: UUID | None, position: int) -> Message:
    """:func:`to_message` from the event's facts, as the relay reads them straight from
    the stored JSON (``infra.event_facts``) without building the domain event."""
    cls = facts.event_class
    return Message(
        key=str(account_id if account_id is not None else facts.entity_id).encode(),
        value=dumps_bytes(envelope(facts, account_id=account_id, position=position)),
        headers=[
            ("content-type", CONTENT_TYPE.encode()),
            ("ce_type", cloud_event_type_of(cls).encode()),
            ("ce_id", str(event_id_for(facts.entity_id, facts.version)).encode()),
            ("schema-version", str(schema_version_of(cls)).encode()),
            ("correlation-id", str(facts.correlation_id).encode()),
        ],
    )
