"""Every aggregate and event type of the model, in one place (for schemas,
projections that must handle them all, and tests that check coverage), and the
pure helpers that read an event as data: its type, its entity's type, its
business fields."""

from __future__ import annotations

import functools
import sys
from typing import Any

from domain.account import GlobalAccount
from domain.base import GamAggregate, GamEvent
from domain.deal import Deal
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder

AGGREGATES: tuple[type[GamAggregate], ...] = (GlobalAccount, AccountPlan, Stakeholder, Deal)


def event_classes() -> list[type[GamEvent]]:
    """The event classes each aggregate declares, in declaration order."""
    found: list[type[GamEvent]] = []
    for aggregate in AGGREGATES:
        for value in vars(aggregate).values():
            if isinstance(value, type) and issubclass(value, GamEvent) and value not in found:
                found.append(value)
    return found


PERSONAL_DATA_FIELDS: dict[type[GamEvent], frozenset[str]] = {
    Stakeholder.Identified: frozenset({"personal"}),
    Stakeholder.PersonalDataCorrected: frozenset({"personal"}),
    Stakeholder.InteractionLogged: frozenset({"summary"}),
}
"""Event fields that hold a person's data (name, contact details, free-text notes
about them), by event class. They are kept apart so they can be sealed under the
person's key (in the store and on Kafka), left out of the audit trail, and erased."""


PERSONAL_DATA_SUBJECT_FIELDS: dict[type[GamEvent], str] = {}
"""For an event whose personal fields belong to someone other than its originator (a note
on a deal naming a stakeholder): the business field holding that person's id, whose key
seals them. An event not listed here seals its personal fields under its originator's key
(a stakeholder's own events). Published messages name the subject of every sealed field
from this (``services.envelope``)."""


def personal_data_subject(event_class: type[GamEvent], originator: str, payload: dict[str, Any]) -> str:
    """Whose key seals the event's personal fields: the id in the field
    :data:`PERSONAL_DATA_SUBJECT_FIELDS` names, else the originator's."""
    field = PERSONAL_DATA_SUBJECT_FIELDS.get(event_class)
    named = payload.get(field) if field is not None else None
    return named if isinstance(named, str) else originator


PERSONAL_STATE_FIELDS: dict[type[GamAggregate], dict[str, str | None]] = {
    Stakeholder: {"personal": None, "interactions": "summary"},
}
"""Snapshot state that holds a person's data, by aggregate class: a field sealed whole
(``None``), or the named field of each record in a list (each interaction's summary),
so an erased person's snapshot still holds the rest of each record."""


METADATA_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "actor", "correlation_id",
     "causation_id", "reason", "traceparent"}
)  # fmt: skip
"""The fields every event has besides its business fields: the library's and our metadata.
``traceparent`` is not a field of the event classes: the service layer adds it to an
event's stored state when it commits it (the W3C trace context of that commit)."""


@functools.cache
def aggregate_of(event_class: type) -> type[GamAggregate] | None:
    """``Deal.Opened`` → ``Deal``: the aggregate an event class is declared in
    (``None`` for a class declared in none). Remembered per class."""
    outer_name = event_class.__qualname__.split(".")[0]
    outer = getattr(sys.modules[event_class.__module__], outer_name, None)
    return outer if isinstance(outer, type) and issubclass(outer, GamAggregate) else None


def entity_type_of_class(event_class: type) -> str:
    """``Deal.Opened`` → ``deal``; ``unknown`` for an event of no aggregate."""
    aggregate = aggregate_of(event_class)
    return aggregate.entity_type if aggregate else "unknown"


def entity_type_of(event: object) -> str:
    """The type of the entity an event belongs to: ``deal``."""
    return entity_type_of_class(type(event))


def event_type_of(event: object) -> str:
    """Stable, readable event type: ``Deal.StageAdvanced``."""
    return type(event).__qualname__


def payload_of(event: object) -> dict[str, Any]:
    """The event's business fields, without the library's and our metadata."""
    return {k: v for k, v in vars(event).items() if k not in METADATA_FIELDS}
