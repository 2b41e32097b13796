"""An event as the views read it: its class, its metadata and its business fields
as JSON values, decoded once for every view.

The views only ever read an event as data (ids and times as the text they store,
money as decimal strings), so they take :class:`EventFacts` rather than the domain
event. A follower builds them from the domain events the library hands it
(:func:`facts_of`); a catch-up or a rebuild builds them straight from the stored
JSON (``infra.event_facts``), which skips building an event object, its value
objects and their UUIDs only to turn them back into text, and decodes an event
once for all three views instead of once per view.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.base import GamEvent
from domain.catalog import payload_of
from projections.encoding import format_time, to_json_value


@dataclass(slots=True)
class EventFacts:
    """Not frozen, but never changed: a frozen dataclass costs a ``__setattr__`` per field to build."""

    event_class: type[GamEvent]
    entity_id: UUID
    entity: str
    """``str(entity_id)``, the form every view document uses."""
    version: int
    timestamp: datetime
    at: str
    """``format_time(timestamp)``, the form every view document uses."""
    actor: str
    reason: str | None
    correlation_id: UUID
    causation_id: UUID | None
    payload: dict[str, Any]
    """The business fields as :func:`~projections.encoding.to_json_value` makes them.
    Shared by every view: a view may keep parts of it in its documents, but never
    changes it in place."""
    traceparent: str | None = None
    """The W3C trace context of the commit that stored the event, if it was traced."""


def facts_of(event: GamEvent) -> EventFacts:
    """The facts of a domain event (the follower's way in; a rebuild decodes them
    from the stored JSON, to the same values)."""
    return EventFacts(
        event_class=type(event),
        entity_id=event.originator_id,
        entity=str(event.originator_id),
        version=event.originator_version,
        timestamp=event.timestamp,
        at=format_time(event.timestamp),
        actor=event.actor,
        reason=event.reason,
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
        payload=to_json_value(payload_of(event)),
        traceparent=getattr(event, "traceparent", None),
    )
